//! The operations files under `deploy/` checked against the real thing: promtool validates
//! the Prometheus configuration and runs the alert unit tests; every YAML and JSON file
//! parses; the Kubernetes objects, the compose stack, the Grafana dashboard and the
//! Dockerfile have the structure operations rely on; and every metric name the alerts and
//! the dashboard use is one the real gateway or back office exports (both started here).
//!
//! Needs `promtool` (Debian package `prometheus`): the test fails, naming the package, when
//! it is missing.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value as Json;
use serde_yaml::Value as Yaml;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn deploy() -> PathBuf {
    root().join("deploy")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Every YAML document of a file (`---` separated), merge keys (`<<:`) applied.
fn yaml_docs(path: &Path) -> Vec<Yaml> {
    let text = read(path);
    let mut chunks = vec![String::new()];
    for line in text.lines() {
        if line.trim_end() == "---" {
            chunks.push(String::new());
        } else {
            let last = chunks.last_mut().unwrap();
            last.push_str(line);
            last.push('\n');
        }
    }
    chunks
        .iter()
        .map(|c| {
            let mut v: Yaml =
                serde_yaml::from_str(c).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            v.apply_merge()
                .unwrap_or_else(|e| panic!("{}: merge keys: {e}", path.display()));
            v
        })
        .filter(|v| !v.is_null())
        .collect()
}

fn yaml_one(path: &Path) -> Yaml {
    let mut docs = yaml_docs(path);
    assert_eq!(docs.len(), 1, "{}: one YAML document", path.display());
    docs.remove(0)
}

/// Every file under `dir`, recursively, sorted.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display())) {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn s<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a Yaml> {
    path.iter().try_fold(v, |v, k| v.get(*k))
}

fn str_at<'a>(v: &'a Yaml, path: &[&str]) -> Option<&'a str> {
    s(v, path).and_then(Yaml::as_str)
}

// ---- promtool ----------------------------------------------------------------------------

fn promtool(args: &[&str]) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(deploy().join("prometheus"))
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool not runnable ({e}): install it with `apt-get install -y prometheus` \
                 (Debian package `prometheus` ships /usr/bin/promtool)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

// Goal: Prometheus accepts the configuration and the rules, and the alert unit tests pass
// (ack p99 SLO, venue down, outbox stuck fire; nothing fires on healthy series).
#[test]
fn promtool_validates_config_rules_and_unit_tests() {
    let out = promtool(&["check", "config", "prometheus.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["check", "rules", "alerts.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let out = promtool(&["test", "rules", "alerts_test.yml"]);
    assert!(out.contains("SUCCESS"), "{out}");
    let tests = read(&deploy().join("prometheus/alerts_test.yml"));
    for name in [
        "SwitchyardAckP99AboveSLO",
        "SwitchyardVenueSessionDown",
        "SwitchyardOutboxStuck",
    ] {
        assert!(
            tests.matches(&format!("alertname: {name}")).count() >= 2,
            "{name}: a firing case and the healthy case in alerts_test.yml"
        );
    }
}

// ---- every file parses -------------------------------------------------------------------

// Goal: every YAML and JSON file under deploy/ parses (multi-document YAML included).
#[test]
fn every_yaml_and_json_file_parses() {
    let mut n = 0;
    for p in files(&deploy()) {
        match p.extension().and_then(|e| e.to_str()) {
            Some("yml" | "yaml") => {
                assert!(!yaml_docs(&p).is_empty(), "{}: empty", p.display());
                n += 1;
            }
            Some("json") => {
                serde_json::from_str::<Json>(&read(&p))
                    .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                n += 1;
            }
            _ => {}
        }
    }
    assert!(n >= 15, "only {n} YAML/JSON files under deploy/");
}

// ---- Kubernetes ----------------------------------------------------------------------------

fn k8s_objects() -> Vec<(PathBuf, Yaml)> {
    let mut out = Vec::new();
    for p in files(&deploy().join("k8s")) {
        if p.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        for d in yaml_docs(&p) {
            out.push((p.clone(), d));
        }
    }
    out
}

// Goal: every manifest is an object with apiVersion/kind/metadata.name; the kustomization
// lists every manifest but the example Secret; the gateway StatefulSet keeps its journal on
// a claim template, probes /health, drains for ≥ 30 s, has resources and reads its secrets
// from a Secret; a PodDisruptionBudget covers it; the back office is a Deployment.
#[test]
fn k8s_manifests() {
    let objects = k8s_objects();
    let kinds: Vec<&str> = objects
        .iter()
        .map(|(_, o)| str_at(o, &["kind"]).unwrap_or(""))
        .collect();
    for (p, o) in &objects {
        let kind = str_at(o, &["kind"]).unwrap_or_else(|| panic!("{}: kind", p.display()));
        assert!(
            str_at(o, &["apiVersion"]).is_some(),
            "{}: apiVersion",
            p.display()
        );
        if kind != "Kustomization" {
            assert!(
                str_at(o, &["metadata", "name"]).is_some_and(|n| !n.is_empty()),
                "{}: {kind} without metadata.name",
                p.display()
            );
        }
    }
    for want in [
        "StatefulSet",
        "PodDisruptionBudget",
        "Service",
        "ConfigMap",
        "Deployment",
        "Kustomization",
    ] {
        assert!(kinds.contains(&want), "no {want} in deploy/k8s: {kinds:?}");
    }

    // The kustomization ties every manifest (the example Secret excepted, on purpose).
    let kust = yaml_one(&deploy().join("k8s/kustomization.yaml"));
    let listed: BTreeSet<String> = s(&kust, &["resources"])
        .and_then(Yaml::as_sequence)
        .expect("kustomization resources")
        .iter()
        .map(|r| r.as_str().unwrap().to_owned())
        .collect();
    for r in &listed {
        assert!(deploy().join("k8s").join(r).is_file(), "missing {r}");
    }
    for p in files(&deploy().join("k8s")) {
        let name = p.file_name().unwrap().to_str().unwrap().to_owned();
        if name == "kustomization.yaml" || name.ends_with(".example.yaml") {
            continue;
        }
        assert!(listed.contains(&name), "{name} not in kustomization.yaml");
    }

    let find = |kind: &str, name: &str| {
        objects
            .iter()
            .map(|(_, o)| o)
            .find(|o| {
                str_at(o, &["kind"]) == Some(kind) && str_at(o, &["metadata", "name"]) == Some(name)
            })
            .unwrap_or_else(|| panic!("no {kind} {name}"))
    };
    let sts = find("StatefulSet", "switchyard-gateway");
    let pod = s(sts, &["spec", "template", "spec"]).expect("pod spec");
    let grace = s(pod, &["terminationGracePeriodSeconds"])
        .and_then(Yaml::as_u64)
        .expect("terminationGracePeriodSeconds");
    assert!(grace >= 30, "terminationGracePeriodSeconds {grace} < 30");
    let raw = read(&deploy().join("k8s/gateway-statefulset.yaml"));
    assert!(
        raw.contains("SIGTERM") && raw.contains("drain"),
        "the grace period needs its reason (SIGTERM → graceful drain) in a comment"
    );
    let claims = s(sts, &["spec", "volumeClaimTemplates"])
        .and_then(Yaml::as_sequence)
        .expect("volumeClaimTemplates");
    let claim = str_at(&claims[0], &["metadata", "name"]).expect("claim name");
    let c = &s(pod, &["containers"]).and_then(Yaml::as_sequence).unwrap()[0];
    assert_eq!(arg0(c), Some("gateway"));
    let journal_dir = str_at(
        find("ConfigMap", "switchyard-gateway-env"),
        &["data", "GATEWAY_JOURNAL_DIR"],
    )
    .expect("GATEWAY_JOURNAL_DIR in the ConfigMap");
    let mounts = s(c, &["volumeMounts"]).and_then(Yaml::as_sequence).unwrap();
    assert!(
        mounts.iter().any(|m| str_at(m, &["name"]) == Some(claim)
            && str_at(m, &["mountPath"]) == Some(journal_dir)),
        "the journal claim is mounted at GATEWAY_JOURNAL_DIR"
    );
    for probe in ["readinessProbe", "livenessProbe"] {
        assert_eq!(
            str_at(c, &[probe, "httpGet", "path"]),
            Some("/health"),
            "{probe}"
        );
    }
    for k in ["requests", "limits"] {
        for r in ["cpu", "memory"] {
            assert!(s(c, &["resources", k, r]).is_some(), "resources.{k}.{r}");
        }
    }
    let env = s(c, &["env"]).and_then(Yaml::as_sequence).unwrap();
    for key in ["JWT_HS256_SECRET", "AUDIT_HMAC_KEYS"] {
        assert!(
            env.iter().any(|e| str_at(e, &["name"]) == Some(key)
                && str_at(e, &["valueFrom", "secretKeyRef", "name"]).is_some()),
            "{key} from a Secret"
        );
    }

    let pdb = objects
        .iter()
        .map(|(_, o)| o)
        .find(|o| str_at(o, &["kind"]) == Some("PodDisruptionBudget"))
        .unwrap();
    let zero_unavailable = s(pdb, &["spec", "maxUnavailable"]).and_then(Yaml::as_u64) == Some(0);
    assert!(
        zero_unavailable || s(pdb, &["spec", "minAvailable"]).is_some(),
        "PDB: maxUnavailable 0 or minAvailable"
    );
    assert_eq!(
        s(pdb, &["spec", "selector", "matchLabels"]),
        s(sts, &["spec", "selector", "matchLabels"]),
        "the PDB selects the gateway"
    );
    let bo = find("Deployment", "switchyard-backoffice");
    let bc = &s(bo, &["spec", "template", "spec", "containers"])
        .and_then(Yaml::as_sequence)
        .unwrap()[0];
    assert_eq!(
        str_at(bc, &["readinessProbe", "httpGet", "path"]),
        Some("/health")
    );
}

fn arg0(c: &Yaml) -> Option<&str> {
    s(c, &["args"])
        .and_then(Yaml::as_sequence)
        .and_then(|a| a.first())
        .and_then(Yaml::as_str)
}

// ---- docker compose -------------------------------------------------------------------------

fn command_text(svc: &Yaml) -> String {
    match s(svc, &["command"]) {
        Some(Yaml::Sequence(a)) => a
            .iter()
            .filter_map(Yaml::as_str)
            .collect::<Vec<_>>()
            .join(" "),
        Some(Yaml::String(c)) => c.clone(),
        _ => String::new(),
    }
}

// Goal: the compose stack has the gateway (journal volume, SIGTERM grace), two venue
// simulators, the back office, the broker, PostgreSQL, Prometheus (with the rules) and
// Grafana (with provisioning), every one with a healthcheck.
#[test]
fn compose_stack() {
    let compose = yaml_one(&deploy().join("docker-compose.yml"));
    let services = s(&compose, &["services"])
        .and_then(Yaml::as_mapping)
        .expect("services");
    let get = |name: &str| {
        services
            .get(name)
            .unwrap_or_else(|| panic!("compose service {name}"))
    };
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        let test = s(svc, &["healthcheck", "test"]);
        assert!(
            test.is_some_and(|t| !matches!(t, Yaml::Null)),
            "{name}: healthcheck"
        );
        assert!(
            s(svc, &["image"]).is_some() || s(svc, &["build"]).is_some(),
            "{name}: image or build"
        );
    }
    let gw = get("gateway");
    assert!(command_text(gw).starts_with("gateway"));
    let env = |svc: &Yaml, k: &str| str_at(svc, &["environment", k]).map(str::to_owned);
    let journal = env(gw, "GATEWAY_JOURNAL_DIR").expect("gateway GATEWAY_JOURNAL_DIR");
    let vols = s(gw, &["volumes"]).and_then(Yaml::as_sequence).unwrap();
    assert!(
        vols.iter()
            .filter_map(Yaml::as_str)
            .any(|v| v.ends_with(&format!(":{journal}"))),
        "gateway journal volume at {journal}"
    );
    assert_eq!(str_at(gw, &["stop_signal"]), Some("SIGTERM"));
    assert!(env(gw, "JWT_HS256_SECRET").is_some());
    let sims = services
        .values()
        .filter(|v| command_text(v).starts_with("venue-sim"))
        .count();
    assert!(sims >= 2, "two venue simulators, found {sims}");
    assert!(command_text(get("backoffice")).starts_with("backoffice"));
    assert!(env(get("backoffice"), "BACKOFFICE_DB_URL")
        .unwrap()
        .starts_with("postgres://"));
    assert!(str_at(get("broker"), &["image"])
        .unwrap()
        .contains("tansu-io/tansu"));
    assert!(command_text(get("broker")).contains("memory://"));
    assert!(str_at(get("postgres"), &["image"])
        .unwrap()
        .starts_with("postgres"));
    let mounts = |svc: &Yaml| -> String {
        s(svc, &["volumes"])
            .and_then(Yaml::as_sequence)
            .map(|v| {
                v.iter()
                    .filter_map(Yaml::as_str)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default()
    };
    let prom = mounts(get("prometheus"));
    assert!(
        prom.contains("prometheus.yml") && prom.contains("alerts.yml"),
        "{prom}"
    );
    let graf = mounts(get("grafana"));
    assert!(
        graf.contains("grafana/provisioning") && graf.contains("grafana/dashboards"),
        "{graf}"
    );
    // Every mounted host path exists.
    for svc in services.values() {
        for m in mounts(svc).split(' ').filter(|m| m.starts_with("./")) {
            let host = m.split(':').next().unwrap();
            assert!(
                deploy().join(host).exists(),
                "compose mounts missing {host}"
            );
        }
    }
}

// ---- Prometheus config and alert rules ----------------------------------------------------

fn rules() -> Vec<Yaml> {
    let doc = yaml_one(&deploy().join("prometheus/alerts.yml"));
    s(&doc, &["groups"])
        .and_then(Yaml::as_sequence)
        .expect("groups")
        .iter()
        .flat_map(|g| {
            s(g, &["rules"])
                .and_then(Yaml::as_sequence)
                .unwrap()
                .clone()
        })
        .collect()
}

/// GitHub's anchor for a Markdown heading: lower case, spaces to `-`, punctuation dropped.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

// Goal: the scrape configuration covers the gateway and the back office every 5 s and loads
// the rules; every alert has `for`, a severity, summary/description and a runbook link to an
// existing section of docs/operations.md; the runbook's conditions are all covered.
#[test]
fn prometheus_config_and_alert_annotations() {
    let cfg = yaml_one(&deploy().join("prometheus/prometheus.yml"));
    assert_eq!(str_at(&cfg, &["global", "scrape_interval"]), Some("5s"));
    let rule_files = format!("{:?}", s(&cfg, &["rule_files"]).unwrap());
    assert!(rule_files.contains("alerts.yml"), "{rule_files}");
    let targets = format!("{:?}", s(&cfg, &["scrape_configs"]).unwrap());
    for t in ["gateway:8081", "backoffice:8082"] {
        assert!(targets.contains(t), "scrape target {t}");
    }

    let ops = read(&root().join("docs/operations.md"));
    let anchors: BTreeSet<String> = ops
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| slug(l.trim_start_matches('#')))
        .collect();
    let rules = rules();
    let mut names = BTreeSet::new();
    for r in &rules {
        let name = str_at(r, &["alert"]).expect("alerting rules only");
        names.insert(name.to_owned());
        assert!(str_at(r, &["for"]).is_some(), "{name}: for");
        assert!(
            matches!(
                str_at(r, &["labels", "severity"]),
                Some("critical" | "warning" | "info")
            ),
            "{name}: severity"
        );
        for a in ["summary", "description"] {
            assert!(
                str_at(r, &["annotations", a]).is_some_and(|v| !v.is_empty()),
                "{name}: {a}"
            );
        }
        let runbook = str_at(r, &["annotations", "runbook"]).expect("runbook");
        let anchor = runbook
            .strip_prefix("docs/operations.md#")
            .unwrap_or_else(|| panic!("{name}: runbook {runbook} is not docs/operations.md#…"));
        assert!(
            anchors.contains(anchor),
            "{name}: docs/operations.md has no section #{anchor}"
        );
    }
    for want in [
        "SwitchyardAckP99AboveSLO",
        "SwitchyardAcceptedRateBelowSLO",
        "SwitchyardLossSuspects",
        "SwitchyardGlobalKillSwitchOn",
        "SwitchyardShardKillSwitchOn",
        "SwitchyardJournalFsyncSlow",
        "SwitchyardJournalStall",
        "SwitchyardOutboxStuck",
        "SwitchyardBackOfficeLagHigh",
        "SwitchyardVenueSessionDown",
    ] {
        assert!(names.contains(want), "no alert {want}");
    }
}

// ---- Grafana -----------------------------------------------------------------------------

fn dashboard() -> Json {
    serde_json::from_str(&read(&deploy().join("grafana/dashboards/switchyard.json"))).unwrap()
}

/// Every panel, rows' nested panels included.
fn panels(d: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for p in d["panels"].as_array().expect("panels") {
        out.push(p.clone());
        if let Some(inner) = p["panels"].as_array() {
            out.extend(inner.iter().cloned());
        }
    }
    out
}

// Goal: the dashboard is valid, versioned, uses the provisioned datasource by uid in every
// panel and target, and every panel has a non-empty expression; the provisioning points at
// the directory compose mounts the dashboards in.
#[test]
fn grafana_dashboard_and_provisioning() {
    let ds = yaml_one(&deploy().join("grafana/provisioning/datasources/prometheus.yml"));
    let source = &s(&ds, &["datasources"])
        .and_then(Yaml::as_sequence)
        .unwrap()[0];
    let uid = str_at(source, &["uid"]).expect("datasource uid");
    assert_eq!(str_at(source, &["type"]), Some("prometheus"));
    let prov = yaml_one(&deploy().join("grafana/provisioning/dashboards/switchyard.yml"));
    let path = str_at(
        &s(&prov, &["providers"])
            .and_then(Yaml::as_sequence)
            .unwrap()[0],
        &["options", "path"],
    )
    .unwrap()
    .to_owned();
    let compose = read(&deploy().join("docker-compose.yml"));
    assert!(
        compose.contains(&format!("./grafana/dashboards:{path}")),
        "compose mounts the dashboards at {path}"
    );

    let d = dashboard();
    assert!(d["schemaVersion"].as_u64().is_some_and(|v| v >= 30));
    assert!(d["uid"].as_str().is_some_and(|u| !u.is_empty()));
    let mut titles = Vec::new();
    for p in panels(&d) {
        if p["type"] == "row" {
            continue;
        }
        let title = p["title"].as_str().unwrap_or("?").to_owned();
        assert_eq!(p["datasource"]["uid"], uid, "{title}: datasource uid");
        let targets = p["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title}: no targets");
        for t in targets {
            assert!(
                t["expr"].as_str().is_some_and(|e| !e.trim().is_empty()),
                "{title}: empty expr"
            );
            assert_eq!(
                t["datasource"]["uid"], uid,
                "{title}: target datasource uid"
            );
        }
        titles.push(title.to_lowercase());
    }
    for want in [
        "ack latency",
        "throughput",
        "rejects by reason",
        "queue depth per shard",
        "journal batch",
        "fdatasync",
        "outbox lag",
        "outbox backoff",
        "venue sessions",
        "reconnects",
        "orders open",
        "back-office",
    ] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "no panel about {want}: {titles:?}"
        );
    }
}

// ---- Dockerfile --------------------------------------------------------------------------

// Goal: a multi-stage build of the switchyard package, run as a non-root user, with a
// health check and SIGTERM as the stop signal.
#[test]
fn dockerfile() {
    let text = read(&deploy().join("Dockerfile"));
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .collect();
    let froms = lines.iter().filter(|l| l.starts_with("FROM ")).count();
    assert!(froms >= 2, "multi-stage: {froms} FROM");
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .expect("USER");
    assert!(
        !user.starts_with("root") && !user.starts_with('0'),
        "non-root USER, got {user}"
    );
    assert!(lines.iter().any(|l| l.starts_with("HEALTHCHECK ")));
    assert!(text.contains("/health"));
    assert!(lines.iter().any(|l| l.starts_with("STOPSIGNAL SIGTERM")));
    assert!(lines.iter().any(|l| l.starts_with("EXPOSE ")));
    let build = lines
        .iter()
        .find(|l| l.contains("cargo build"))
        .expect("a cargo build line");
    assert!(
        build.contains("--release") && build.contains("-p switchyard"),
        "{build}"
    );
    assert!(text.contains("cmake"), "librdkafka is built with cmake");
}

// ---- metric names against the real binaries -----------------------------------------------

/// A child process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn http_get(port: u16, path: &str) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let (head, body) = raw.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_owned())
}

/// Scrapes `/metrics` until it answers (the process may still be starting).
fn scrape(proc: &mut Proc, port: u16, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(body) = http_get(port, "/metrics") {
            return body;
        }
        if let Ok(Some(status)) = proc.0.try_wait() {
            panic!("{what} exited early: {status}");
        }
        assert!(Instant::now() < deadline, "{what}: no /metrics on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Metric names in Prometheus text (without the labels and histogram suffixes kept as is).
fn exported(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

/// Names starting with `gateway_` or `backoffice_` in a PromQL expression.
fn used(expr: &str, out: &mut BTreeSet<String>) {
    let mut cur = String::new();
    for c in expr.chars().chain(std::iter::once(' ')) {
        if c.is_ascii_alphanumeric() || c == '_' || c == ':' {
            cur.push(c);
        } else {
            if cur.starts_with("gateway_") || cur.starts_with("backoffice_") {
                out.insert(cur.clone());
            }
            cur.clear();
        }
    }
}

// Goal: every metric the alerts and the dashboard query exists: the real gateway (with two
// unreachable venues, so the per-venue series are present) and the real back office are
// started and scraped; labeled back-office series that need a Kafka partition are taken
// from its source.
#[test]
fn every_metric_used_is_exported() {
    let exe = env!("CARGO_BIN_EXE_switchyard");
    let tmp = tempfile::tempdir().unwrap();

    let gw_port = free_port();
    let dead_venue = free_port();
    let mut gw = Proc(
        Command::new(exe)
            .arg("gateway")
            .env("JWT_HS256_SECRET", "deploy-test-secret")
            .env("GATEWAY_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", gw_port.to_string())
            .env("GATEWAY_JOURNAL_DIR", tmp.path().join("journal"))
            .env("EXCHANGE_TRANSPORT", "tcp")
            .env("SOR_VENUES", "simA,simB")
            .env("EXCHANGE_TCP_HOST", "127.0.0.1")
            .env("EXCHANGE_TCP_PORT", dead_venue.to_string())
            .env("KAFKA_ENABLE", "false")
            .env("V3_SHARD_COUNT", "2")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchyard gateway"),
    );
    let bo_port = free_port();
    let mut bo = Proc(
        Command::new(exe)
            .args(["backoffice", "--no-kafka", "--port", &bo_port.to_string()])
            .env(
                "BACKOFFICE_DB_URL",
                format!("sqlite:{}/bo.db?mode=rwc", tmp.path().display()),
            )
            .env("BACKOFFICE_HOST", "127.0.0.1")
            .env("JWT_HS256_SECRET", "deploy-test-secret")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start switchyard backoffice"),
    );
    let gateway_text = scrape(&mut gw, gw_port, "gateway");
    let backoffice_text = scrape(&mut bo, bo_port, "backoffice");
    let mut known = exported(&gateway_text);
    known.extend(exported(&backoffice_text));
    assert!(known.contains("gateway_live_ack_p99_us"), "{gateway_text}");
    assert!(
        known.contains("gateway_venue_session_up"),
        "per-venue series present: {gateway_text}"
    );
    assert!(
        known.contains("backoffice_processed_total"),
        "{backoffice_text}"
    );
    // Labeled back-office series exist only once a partition is consumed: from the source.
    let src = read(&root().join("crates/backoffice/src/http.rs"));
    for name in ["backoffice_consumer_lag", "backoffice_next_offset"] {
        assert!(
            src.contains(&format!("\"{name}{{{{")),
            "{name} in the back office's /metrics"
        );
        known.insert(name.to_owned());
    }

    let mut wanted = BTreeSet::new();
    for r in rules() {
        used(str_at(&r, &["expr"]).unwrap(), &mut wanted);
    }
    let from_alerts = wanted.len();
    for p in panels(&dashboard()) {
        for t in p["targets"].as_array().into_iter().flatten() {
            used(t["expr"].as_str().unwrap_or(""), &mut wanted);
        }
    }
    assert!(from_alerts >= 10 && wanted.len() > from_alerts);
    let missing: Vec<&String> = wanted.iter().filter(|m| !known.contains(*m)).collect();
    assert!(
        missing.is_empty(),
        "metrics used in deploy/ but not exported: {missing:?}\n--- gateway /metrics:\n{gateway_text}"
    );
}
