//! `switchyard bench gate …` end to end: each gate started as the real binary, which starts its
//! own gateway, loads it, and writes a result that must match `contracts/gate_result_v1.schema.json`.
//! The runs are short and small (this is a test of the gate, not of the machine): verdicts are
//! checked for consistency with their checks, never for PASS — except that the figures behind
//! the checks must agree with each other (the gateway counted every answer the client got).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use serde_json::Value;

fn schema() -> jsonschema::Validator {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contracts/gate_result_v1.schema.json");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    jsonschema::validator_for(&s).expect("the schema itself is valid")
}

/// Runs `switchyard bench gate <args>` writing its result to `dir/r.json`; returns the
/// process output and the result (checked against the schema).
fn gate(dir: &Path, args: &[&str]) -> (Output, Value) {
    let json = dir.join("r.json");
    let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .args(["bench", "gate"])
        .args(args)
        .arg("--results-dir")
        .arg(dir)
        .arg("--json")
        .arg(&json)
        .args(["--noise-window", "1"])
        .env_remove("JWT_HS256_SECRET")
        .env_remove("GATEWAY_METRICS_TOKEN")
        .env("RUST_LOG", "error")
        .output()
        .expect("run switchyard bench gate");
    let text = std::fs::read_to_string(&json).unwrap_or_else(|e| {
        panic!(
            "no result file ({e}); stderr:\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let v: Value = serde_json::from_str(&text).unwrap();
    let errors: Vec<String> = schema()
        .iter_errors(&v)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "result does not match the schema: {errors:#?}\n{text}"
    );
    (out, v)
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The verdict follows the checks, the exit code and the summary line follow the verdict.
fn assert_consistent(out: &Output, v: &Value) {
    let verdict = v["verdict"].as_str().unwrap();
    let code = out.status.code().unwrap();
    let want = match verdict {
        "PASS" => 0,
        "FAIL" => 1,
        "UNSUPPORTED" => 2,
        _ => 3,
    };
    assert_eq!(
        code,
        want,
        "exit code for {verdict}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout(out);
    assert!(
        line.starts_with(&format!("{verdict} {} gate", v["gate"].as_str().unwrap())),
        "{line}"
    );
    assert_eq!(line.trim_end(), v["summary"].as_str().unwrap());
    for run in v["runs"].as_array().unwrap() {
        let checks = run["checks"].as_array().unwrap();
        let all = checks.iter().all(|c| c["pass"] == true);
        match run["verdict"].as_str().unwrap() {
            "PASS" => assert!(all && !checks.is_empty()),
            "FAIL" => assert!(!all),
            _ => {}
        }
        for c in checks {
            let (value, limit) = (c["value"].as_f64().unwrap(), c["limit"].as_f64().unwrap());
            let holds = match c["op"].as_str().unwrap() {
                "<=" => value <= limit,
                ">=" => value >= limit,
                _ => value == limit,
            };
            assert_eq!(c["pass"].as_bool().unwrap(), holds, "{c}");
        }
    }
}

fn tmp() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

// Goal: a short stable gate over TCP runs against a gateway it starts itself, writes a result
// matching the schema whose verdict, exit code and summary agree, and whose server-side counts
// agree with the client's (every answer the client got was counted by the gateway's own
// histogram in the same window; warm-up traffic was not).
#[test]
fn stable_gate_end_to_end() {
    let d = tmp();
    let (out, v) = gate(
        d.path(),
        &[
            "stable",
            "--rate",
            "2000",
            "--duration",
            "2",
            "--warmup",
            "1",
            "--connections",
            "8",
            "--accounts",
            "4",
            "--no-noise-guard",
        ],
    );
    assert_consistent(&out, &v);
    assert_eq!(v["gate"], "stable");
    assert_eq!(v["gateway_spawned"], true);
    let run = &v["runs"][0];
    assert_eq!(run["params"]["transport"], "tcp");
    let client = &run["client"];
    let completed = client["completed"].as_u64().unwrap();
    assert_eq!(client["sent"], 4_000, "2 s at 2 000/s");
    assert_eq!(completed, 4_000);
    let server = &run["server"];
    // A warm-up answer's record may race the scrape by a frame or so per connection, never more.
    let acks = server["ack"]["count"].as_u64().unwrap();
    assert!(
        (completed..=completed + 8).contains(&acks),
        "server counted {acks}, client {completed}"
    );
    // Every answer is an order the engine processed or a reject the gateway counted by reason
    // (a disk stall can make the confirm-age gate shed a few even in 2 s).
    let rejects: u64 = server["rejects"]
        .as_object()
        .unwrap()
        .values()
        .map(|n| n.as_u64().unwrap())
        .sum();
    assert_eq!(server["processed"].as_u64().unwrap() + rejects, acks);
    // The journal synced in the window (group commit: fewer syncs than orders), and the
    // slowest sync is bounded by a bucket the summary line names.
    let syncs = &server["journal_fdatasync"];
    let n = syncs["count"].as_u64().unwrap();
    assert!((1..=acks).contains(&n), "{n} fdatasyncs for {acks} acks");
    assert!(
        syncs.as_object().unwrap().contains_key("max_le_us"),
        "{syncs}"
    );
    if let (Some(max), Some(p99)) = (syncs["max_le_us"].as_u64(), syncs["p99_le_us"].as_u64()) {
        assert!(max >= p99, "{syncs}");
    }
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .contains("journal fdatasync p99"),
        "{}",
        v["summary"]
    );
    let names: Vec<&str> = run["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for want in [
        "server_ack_share_within_100us",
        "server_accepted_ack_share_within_40us",
        "accepted_rate",
        "completed_rps",
        "dropped_ratio",
        "unanswered",
        "rejected_killed",
        "loss_suspects",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    // The noise guard still reports what it saw.
    assert!(run["noise"]["during"]["cpus"].as_u64().unwrap() >= 1);
    assert_eq!(run["noise"]["enforced"], false);

    // Compared with itself: no regression. Compared with a baseline twice as fast: the
    // throughput and latency figures regress, exit 1, and the table names them.
    let r = d.path().join("r.json");
    let base = d.path().join("base.json");
    std::fs::copy(&r, &base).unwrap();
    let compare = |b: &Path| {
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["bench", "gate", "compare"])
            .arg(b)
            .arg(&r)
            .output()
            .unwrap()
    };
    let same = compare(&base);
    assert_eq!(same.status.code(), Some(0), "{}", stdout(&same));
    assert!(stdout(&same).contains("no regression"));
    let mut faster = v.clone();
    let c = &mut faster["runs"][0]["client"];
    c["rps"] = (c["rps"].as_f64().unwrap() * 2.0).into();
    c["latency_us"]["p99"] = (c["latency_us"]["p99"].as_f64().unwrap() / 2.0).into();
    std::fs::write(&base, faster.to_string()).unwrap();
    let worse = compare(&base);
    assert_eq!(worse.status.code(), Some(1));
    let t = stdout(&worse);
    assert!(t.contains("client.rps") && t.contains("REGRESSED"), "{t}");
    // A file that is not a result is refused with a reason.
    std::fs::write(&base, "{}").unwrap();
    let bad = compare(&base);
    assert_ne!(bad.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("is not a gate result"));

    // --baseline on a gate run: the comparison lands in the result.
    std::fs::write(&base, faster.to_string()).unwrap();
    let (out, v) = gate(
        d.path(),
        &[
            "stable",
            "--rate",
            "1000",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--connections",
            "4",
            "--accounts",
            "2",
            "--no-noise-guard",
            "--baseline",
            base.to_str().unwrap(),
        ],
    );
    assert_consistent(&out, &v);
    assert_eq!(v["baseline"]["regressed"], true);
    assert_eq!(v["verdict"], "FAIL", "a regression fails the gate");
}

// Goal: the noise guard refuses to run while another process keeps a core busy: NOISY, exit 3,
// no load sent, and the busy process is named in the reading.
#[test]
fn noise_guard_refuses_a_busy_machine() {
    let d = tmp();
    let stop = Arc::new(AtomicBool::new(false));
    let spin = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let mut x = 0u64;
            while !stop.load(Ordering::Relaxed) {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        })
    };
    let (out, v) = gate(
        d.path(),
        &[
            "stable",
            "--rate",
            "100",
            "--duration",
            "1",
            "--quiet-wait",
            "0",
            "--noise-threshold",
            "0.3",
        ],
    );
    stop.store(true, Ordering::Relaxed);
    spin.join().unwrap();
    assert_consistent(&out, &v);
    assert_eq!(v["verdict"], "NOISY");
    let run = &v["runs"][0];
    assert!(run["client"].is_null() && run["checks"].as_array().unwrap().is_empty());
    let before = &run["noise"]["before"];
    assert!(before["foreign_cores"].as_f64().unwrap() > 0.3, "{before}");
    let me = std::process::id();
    assert!(
        before["top_foreign"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["pid"] == me),
        "the spinning test process is named: {before}"
    );
    assert!(stdout(&out).contains("machine busy"));
}

// Goal: a capacity sweep runs its levels in order (each its own judged run) and reports the
// highest passing rate; the absolute gate runs a closed loop over HTTP. Both results match the
// schema and are consistent.
#[test]
fn sweep_and_absolute() {
    let d = tmp();
    let (out, v) = gate(
        d.path(),
        &[
            "sweep",
            "--levels",
            "300,600",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--refine",
            "1",
            "--connections",
            "4",
            "--accounts",
            "2",
            "--no-noise-guard",
        ],
    );
    assert_consistent(&out, &v);
    let runs = v["runs"].as_array().unwrap();
    assert!(!runs.is_empty() && runs.len() <= 3);
    assert_eq!(runs[0]["params"]["rate"], 300.0);
    let passed: Vec<f64> = runs
        .iter()
        .filter(|r| r["verdict"] == "PASS")
        .map(|r| r["params"]["rate"].as_f64().unwrap())
        .collect();
    let best = passed
        .iter()
        .copied()
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    assert_eq!(v["capacity_rps"].as_f64(), best);

    let (out, v) = gate(
        d.path(),
        &[
            "absolute",
            "--duration",
            "1",
            "--warmup",
            "0",
            "--connections",
            "8",
            "--no-noise-guard",
        ],
    );
    assert_consistent(&out, &v);
    let run = &v["runs"][0];
    assert_eq!(run["params"]["transport"], "http");
    assert!(run["params"]["rate"].is_null(), "closed loop");
    assert_eq!(run["client"]["mode"], "closed");
    assert!(run["client"]["completed"].as_u64().unwrap() > 0);
}

// Goal: bad arguments are refused before anything starts, with the flag named.
#[test]
fn bad_arguments() {
    for (args, want) in [
        (&["stable", "--rate", "0"][..], "--rate"),
        (&["sweep", "--levels", "2000,1000"][..], "ascending"),
        (&["stable", "--tcp", "127.0.0.1:1"][..], "--http"),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["bench", "gate"])
            .args(args)
            .arg("--results-dir")
            .arg(PathBuf::from("/nonexistent/never-created"))
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(want), "{args:?}: {err}");
    }
}
