//! API fuzzing: schemathesis against a live gateway, driven by the OpenAPI document the
//! gateway serves (`GET /openapi.yaml`, written by hand in `contracts/openapi.yaml`).
//!
//! - `openapi_document_is_served`: `GET /openapi.yaml` is the document byte for byte
//!   (`application/yaml`), `GET /openapi.json` the same document as JSON, both without a token.
//! - `schemathesis_finds_nothing`: a real gateway with two in-process simulated venues, the
//!   audit chain, the embedded back office (so `Durability: replicated` works) and a metrics
//!   token, and schemathesis (`st run`) over every operation but the streams (`/stream`,
//!   `/orders/{orderId}/stream`: an answer that never ends; `/ws`: an upgrade) with an ops
//!   token: examples, coverage, fuzzing and stateful phases (links from a placed order to its
//!   query, cancel, amend and events), a fixed seed, one worker. Checks: no 5xx, status codes,
//!   content types, bodies and headers as documented, 405 with `Allow` for other methods, 401
//!   without the token. Kill switches are fuzzed last and alone: a fuzzed switch that kills
//!   the account or the whole gateway turns the other operations' answers into the
//!   (documented) 503s. Any finding fails the test with schemathesis' report, and so does a
//!   panic in the gateway's stderr (one a handler caught and answered all the same).
//!   schemathesis comes from `scripts/services.sh install` (pip, pinned); `scripts/services.sh
//!   start` writes its path as `SWITCHYARD_TEST_SCHEMATHESIS` to `var/services/env`; without it
//!   the test fails, it never skips. `docs/reliability.md`, "API fuzzing (schemathesis)", has
//!   what it found.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Fixed, so that a finding reproduces (`st run … --seed`).
const SEED: &str = "20261121";
/// Test cases per operation and phase: ~3,000 requests in all, well under a minute.
const MAX_EXAMPLES: &str = "60";
const METRICS_TOKEN: &str = "fuzz-metrics-token";
/// What schemathesis checks on every response. Left out: `negative_data_rejection` and
/// `positive_data_acceptance`, which take the document's types for the business rules (a
/// schema-valid order for an unknown symbol is a correct 422; `/audit/verify` takes a bad
/// `limit` as the default, as the reference does).
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,\
response_schema_conformance,response_headers_conformance,unsupported_method,ignored_auth,\
missing_required_header,use_after_free,ensure_resource_availability";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// `st` of the pinned schemathesis; fails (never skips) without it.
fn schemathesis() -> String {
    let st = env_or_fail("SWITCHYARD_TEST_SCHEMATHESIS");
    assert!(
        Path::new(&st).is_file(),
        "SWITCHYARD_TEST_SCHEMATHESIS={st:?} is not a file: run `scripts/services.sh install` \
         (pip install schemathesis) and `scripts/services.sh start`"
    );
    st
}

/// A gateway as close to the single-node stack as a test gets (venues, audit chain, back
/// office), with the environment `Gateway::start` gives every test, and its stderr in `log`:
/// a panic the answer does not show (a blocking task's, caught and reported in a 200) must
/// fail the test too.
fn start_gateway(dir: &Path, log: &Path) -> Gateway {
    let http = free_port();
    let db = format!("sqlite:{}/backoffice.db?mode=rwc", dir.display());
    let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("gateway")
        .env_clear()
        .env("GATEWAY_HOST", "127.0.0.1")
        .env("GATEWAY_PORT", http.to_string())
        .env("JWT_HS256_SECRET", SECRET)
        .env("GATEWAY_JOURNAL_DIR", dir.join("journal"))
        // As `Gateway::start`: a slow shared disk must not flag orders LOSS_SUSPECT or refuse
        // them by confirm age in a test that is not about that.
        .env("V3_LOSS_GAP_TIMEOUT_MS", "600000")
        .env("V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US", "0")
        .env("V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US", "0")
        // Nor turn a `local`/`replicated` answer into 503 DURABILITY_WAIT_TIMEOUT: that is the
        // gateway protecting itself, not a bug.
        .env("V2_DURABLE_WAIT_TIMEOUT_MS", "20000")
        .env("BUS_REPLICATED_WAIT_TIMEOUT_MS", "20000")
        .env("EXCHANGE_TRANSPORT", "sim")
        .env("SOR_VENUES", "simA,simB")
        .env("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simA|simB")
        .env("GATEWAY_ID", "api-fuzz")
        .env("AUDIT_HMAC_KEYS", "fuzz:switchyard-api-fuzz-audit-key")
        .env("BACKOFFICE_EMBEDDED", "true")
        .env("BACKOFFICE_HOST", "127.0.0.1")
        .env("BACKOFFICE_PORT", free_port().to_string())
        .env("BACKOFFICE_DB_URL", &db)
        .env("GATEWAY_METRICS_TOKEN", METRICS_TOKEN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("spawn switchyard gateway");
    let mut g = Gateway {
        child,
        http,
        tcp: 0,
    };
    let metrics = format!("X-Metrics-Token: {METRICS_TOKEN}\r\n");
    wait_for(30, "the gateway with both simulated venues up", || {
        if let Ok(Some(s)) = g.child.try_wait() {
            panic!("gateway exited during startup ({s}): {}", read(log));
        }
        // Not listening yet is an error to wait out, not a failure.
        let (status, body) = http_raw(g.http, &request("GET", "/metrics", None, &metrics, ""))
            .map_err(|e| e.to_string())?;
        let up = body
            .lines()
            .find_map(|l| l.strip_prefix("gateway_venues_up "))
            .and_then(|v| v.trim().parse::<f64>().ok());
        if up == Some(2.0) {
            Ok(())
        } else {
            Err(format!("{status} {up:?}"))
        }
    });
    g
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Runs `st run <url>/openapi.yaml` with `extra` arguments; kills it after `limit`.
fn st_run(st: &str, port: u16, token: &str, extra: &[&str], limit: Duration) -> (Output, Duration) {
    let cwd = tempfile::tempdir().unwrap();
    let url = format!("http://127.0.0.1:{port}/openapi.yaml");
    let auth = format!("Authorization: Bearer {token}");
    let metrics = format!("X-Metrics-Token: {METRICS_TOKEN}");
    let mut cmd = Command::new(st);
    cmd.args(["run", &url, "-H", &auth, "-H", &metrics])
        .args(["--checks", CHECKS])
        .args(["--max-examples", MAX_EXAMPLES, "--seed", SEED])
        .args(["--workers", "1", "--request-timeout", "30"])
        .args(["--generation-database", "none", "--no-color"])
        .args(["--output-sanitize", "false"])
        .args(extra)
        // Nothing of schemathesis' (reports, a config file it would pick up) in the tree.
        .current_dir(cwd.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {st}: {e}"));
    // Drain the pipes on threads: the report can be larger than a pipe buffer.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stdout, &mut b).ok();
        b
    });
    let err_thread = std::thread::spawn(move || {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut stderr, &mut b).ok();
        b
    });
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let out = String::from_utf8_lossy(&out_thread.join().unwrap()).into_owned();
            panic!("schemathesis did not finish within {limit:?}; its output so far:\n{out}");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let output = Output {
        status,
        stdout: out_thread.join().unwrap(),
        stderr: err_thread.join().unwrap(),
    };
    (output, started.elapsed())
}

/// Asserts exit 0, printing schemathesis' whole report otherwise (and its summary always).
fn assert_clean(what: &str, (out, took): &(Output, Duration)) {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "schemathesis ({what}) found problems ({}) in {took:?}:\n{stdout}\n{stderr}",
        out.status
    );
    let summary: Vec<&str> = stdout
        .lines()
        .filter(|l| {
            let l = l.trim_start();
            l.starts_with("Operations:") || l.contains(" generated") || l.starts_with("Seed:")
        })
        .collect();
    eprintln!(
        "schemathesis ({what}) passed in {took:.1?}: {}",
        summary.join(" | ")
    );
}

// Goal: the gateway serves its OpenAPI document as written (YAML) and as the same document in
// JSON, without a token, and refuses other methods with 405 and `Allow`.
#[test]
fn openapi_document_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[]);
    let written = std::fs::read_to_string(repo_root().join("contracts/openapi.yaml")).unwrap();
    let yaml = http_full(g.http, &request("GET", "/openapi.yaml", None, "", ""));
    assert_eq!(yaml.status, 200, "{}", yaml.body);
    assert!(
        yaml.header("content-type")
            .is_some_and(|c| c.starts_with("application/yaml")),
        "{:?}",
        yaml.headers
    );
    assert_eq!(
        yaml.body, written,
        "GET /openapi.yaml is not contracts/openapi.yaml"
    );
    let json = http_full(g.http, &request("GET", "/openapi.json", None, "", ""));
    let served: serde_json::Value = json.assert_json("/openapi.json");
    let parsed: serde_json::Value = serde_yaml::from_str(&written).unwrap();
    assert_eq!(served, parsed, "GET /openapi.json is not the YAML document");
    assert!(served["paths"]["/v3/orders"]["post"].is_object());
    let r = http_full(g.http, &request("POST", "/openapi.yaml", None, "", ""));
    assert_eq!(
        (r.status, r.header("allow")),
        (405, Some("GET")),
        "{}",
        r.body
    );
}

// Goal: schemathesis, driven by the served document, finds no 5xx, no undocumented status,
// content type, body or header, no 405 without `Allow` and no operation that ignores its token,
// across every operation but the streams, with a fixed seed, within two minutes; and the
// gateway never panicked meanwhile.
#[test]
fn schemathesis_finds_nothing() {
    let st = schemathesis();
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("gateway.log");
    let mut g = start_gateway(dir.path(), &log);
    let ops = ops_token("fuzz-ops");
    let all = st_run(
        &st,
        g.http,
        &ops,
        &[
            "--exclude-path",
            "/stream",
            "--exclude-path",
            "/orders/{orderId}/stream",
            "--exclude-path",
            "/ws",
            "--exclude-operation-id",
            "postKillSwitch",
        ],
        Duration::from_secs(150),
    );
    assert_clean("every operation but the streams and kill switches", &all);
    assert!(
        g.child.try_wait().unwrap().is_none(),
        "the gateway exited during fuzzing"
    );
    // Kill switches last and alone; no stateful phase (no links lead to this operation).
    let kill = st_run(
        &st,
        g.http,
        &ops,
        &[
            "--include-operation-id",
            "postKillSwitch",
            "--phases",
            "examples,coverage,fuzzing",
        ],
        Duration::from_secs(60),
    );
    assert_clean("POST /v3/admin/kill-switches", &kill);
    // Still serving: /health answers (503 if a fuzzed global kill switch is left on).
    let (code, body) = http_get(g.http, "/health", None).expect("GET /health after fuzzing");
    assert!(matches!(code, 200 | 503), "{code} {body}");
    g.terminate();
    let log = read(&log);
    assert!(
        !log.contains("panicked"),
        "the gateway panicked while fuzzed (answered all the same):\n{log}"
    );
}
