//! Goal: `switchyard journal dump` cuts a time window out of a real journal and `verify`
//! reports a clean journal as clean and a corrupted one with the place of the damage.

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;

fn dump(dir: &std::path::Path, extra: &[&str]) -> Vec<serde_json::Value> {
    let mut args = vec!["journal", "dump", "--dir", dir.to_str().unwrap()];
    args.extend_from_slice(extra);
    let out = run_switchyard(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

// Goal: two bursts of orders separated in time; a window around each returns only that burst.
#[test]
fn dump_cuts_a_time_window() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), &[]);
    let tok = token("window");
    let mut s = tcp_connect(gw.tcp);
    let first: Vec<_> = (0..5).map(|_| frame(&tok, "AAPL", 1, 1, 1, 100)).collect();
    assert!(tcp_exchange(&mut s, &first).iter().all(|r| r.status == 202));
    std::thread::sleep(Duration::from_millis(1_100));
    let between = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(1_100));
    let second: Vec<_> = (0..3).map(|_| frame(&tok, "MSFT", 2, 1, 1, 100)).collect();
    assert!(tcp_exchange(&mut s, &second)
        .iter()
        .all(|r| r.status == 202));
    drop(s);
    gw.terminate();

    let all = dump(dir.path(), &[]);
    let orders = |v: &[serde_json::Value]| {
        v.iter()
            .filter(|r| r["type"] == "V3OrderAccepted")
            .map(|r| r["data"]["symbol"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(orders(&all).len(), 8);
    assert_eq!(all.last().unwrap()["type"], "CleanShutdown");
    let before = dump(dir.path(), &["--until", &between.to_string()]);
    assert_eq!(orders(&before), vec!["AAPL"; 5]);
    let after = dump(dir.path(), &["--since", &between.to_string()]);
    assert_eq!(orders(&after), vec!["MSFT"; 3]);
    // RFC 3339 bounds work too; a window in the far past is empty.
    let past = dump(dir.path(), &["--until", "2001-01-01T00:00:00Z"]);
    assert!(past.is_empty());
    // Garbage bounds are a clear error, not an empty dump.
    let bad = run_switchyard(
        &[
            "journal",
            "dump",
            "--dir",
            dir.path().to_str().unwrap(),
            "--since",
            "soon",
        ],
        &[],
    );
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("soon"));
}

// Goal: verify says ok for a clean journal and points at the damaged record of a corrupted one.
#[test]
fn verify_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), &[]);
    let tok = token("verify");
    let mut s = tcp_connect(gw.tcp);
    let frames: Vec<_> = (0..50).map(|_| frame(&tok, "AAPL", 1, 1, 1, 100)).collect();
    assert!(tcp_exchange(&mut s, &frames)
        .iter()
        .all(|r| r.status == 202));
    drop(s);
    gw.terminate();
    let d = dir.path().to_str().unwrap();
    let ok = run_switchyard(&["journal", "verify", "--dir", d], &[]);
    assert!(ok.status.success());
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["ok"], true);
    assert_eq!(report["records"], 51);

    // Flip one byte in the middle of the segment: verify fails and names where.
    let seg = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "seg"))
        .unwrap();
    let mut bytes = std::fs::read(&seg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x40;
    std::fs::write(&seg, &bytes).unwrap();
    let bad = run_switchyard(&["journal", "verify", "--dir", d], &[]);
    assert!(!bad.status.success());
    let report: serde_json::Value = serde_json::from_slice(&bad.stdout).unwrap();
    assert_eq!(report["ok"], false);
    let damage = if report["corrupt"].is_null() {
        &report["tornTail"]
    } else {
        &report["corrupt"]
    };
    assert!(damage["seq"].as_u64().unwrap() > 1, "{report}");
}
