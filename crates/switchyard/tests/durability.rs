//! What happens to accepted orders the journal is slow to confirm or cannot write (§3.6, §2.3.2):
//! LOSS_SUSPECT flagging and its session → shard → global escalation, the late durable outcome
//! overwriting LOSS_SUSPECT, a failed journal write reported as DURABLE_REJECTED and journaled so
//! that it survives a restart, new orders held back while the journal fails or its disk is
//! below the reserve, and V3_INGRESS_CLOSED for an order caught by a graceful shutdown.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;
use serde_json::json;

/// Polls `GET /v3/admin/kill-switches` until `done` holds.
fn wait_kill(port: u16, what: &str, done: impl Fn(&serde_json::Value) -> bool) {
    let ops = ops_token("ops");
    wait_for(10, what, || {
        let ks = kill_switches(port, &ops);
        if done(&ks) {
            Ok(())
        } else {
            Err(ks.to_string())
        }
    });
}

/// `/health` answers `code` with `status`.
fn assert_health(port: u16, code: u16, status: &str) {
    let (got, body) = http_get(port, "/health", None).unwrap();
    assert_eq!(
        (got, json(&body)["status"].as_str()),
        (code, Some(status)),
        "{body}"
    );
}

/// A new order over HTTP and over binary TCP is refused 503 V3_JOURNAL_UNAVAILABLE (TCP 2003),
/// and `/health` answers 503 `health_status`.
fn assert_journal_refuses(gw: &Gateway, tok: &str, health_status: &str) {
    assert_refused(
        &post_order(gw.http, tok, &good_order()),
        503,
        "REJECTED",
        "V3_JOURNAL_UNAVAILABLE",
    );
    assert_frame(
        &tcp_one(gw.tcp, frame(tok, "AAPL", 1, 1, 1, 100)),
        KIND_REJECTED,
        503,
        2003,
    );
    assert_health(gw.http, 503, health_status);
}

/// Posts an order every 10 ms while the journal's hold refuses it (503
/// V3_JOURNAL_UNAVAILABLE, nothing else) and returns the first answer that is not a refusal.
fn post_until_admitted(port: u16, tok: &str) -> HttpResponse {
    wait_for(15, "an order admitted after the journal's hold", || {
        let r = post_order(port, tok, &good_order());
        if r.status == 503 {
            assert_refused(&r, 503, "REJECTED", "V3_JOURNAL_UNAVAILABLE");
            return Err(r.body);
        }
        Ok(r)
    })
}

// Goal: a slow journal makes an order LOSS_SUSPECT, kills its session, then the late commit wins.
#[test]
fn loss_suspect_kills_the_session_then_resolves_durable() {
    // With a journal slower than V3_LOSS_GAP_TIMEOUT_MS, an accepted order becomes LOSS_SUSPECT
    // (DURABLE_CONFIRM_TIMEOUT) in the confirm query, the session is killed at once (threshold 1:
    // later orders 503 KILLED V3_SESSION_KILLED, TCP 2302, cause `loss_suspect` in the journal)
    // while other sessions go on, and when the journal finally commits, the late durable outcome
    // replaces LOSS_SUSPECT with DURABLE_ACCEPTED; the session stays killed.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "3000"),
            ("V3_LOSS_GAP_TIMEOUT_MS", "100"),
            ("V3_LOSS_SCAN_INTERVAL_MS", "10"),
        ],
    );
    let tok = token("loss-a");
    assert_eq!(
        assert_accepted(&post_order(gw.http, &tok, &good_order())),
        1
    );
    let v = wait_for(10, "loss-a/1 to leave VOLATILE_ACCEPT", || {
        let v = confirm(gw.http, &tok, "loss-a", 1);
        if v["status"] == "VOLATILE_ACCEPT" {
            Err(v.to_string())
        } else {
            Ok(v)
        }
    });
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("LOSS_SUSPECT"), Some("DURABLE_CONFIRM_TIMEOUT")),
        "{v}"
    );
    assert_eq!(v["attemptId"], "att_1");
    assert!(
        v["receivedAtNs"].as_u64().is_some() && v["updatedAtNs"].as_u64().is_some(),
        "{v}"
    );
    // Watched through the admin API: polling with orders would add loss suspects of its own.
    wait_kill(gw.http, "loss-a to be killed", |ks| {
        ks["sessions"] == json!(["loss-a"])
    });
    let r = post_order(gw.http, &tok, &good_order());
    assert_refused(&r, 503, "KILLED", "V3_SESSION_KILLED");
    assert_frame(
        &tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100)),
        KIND_KILLED,
        503,
        2302,
    );
    let ks = kill_switches(gw.http, &ops_token("ops"));
    assert_eq!(
        (ks["sessions"].clone(), ks["global"].clone()),
        (json!(["loss-a"]), json!(false)),
        "{ks}"
    );
    assert_eq!(
        ks["shards"][0]["killed"], false,
        "one loss suspect is below the shard threshold"
    );
    assert!(metric(gw.http, "gateway_v3_loss_suspect_total") >= 1.0);
    assert_eq!(metric(gw.http, "gateway_v3_session_killed_total"), 1.0);
    // Another session is not affected.
    assert_accepted(&post_order(gw.http, &token("loss-b"), &good_order()));
    // The journal finally commits order 1: the late durable outcome wins.
    let v = wait_confirm(gw.http, &tok, "loss-a", 1, "DURABLE_ACCEPTED");
    assert!(v.get("reason").is_none(), "{v}");
    assert_refused(
        &post_order(gw.http, &tok, &good_order()),
        503,
        "KILLED",
        "V3_SESSION_KILLED",
    );
    // The automatic kill was journaled with its cause.
    wait_for(15, "the session kill in the journal", || {
        let dump = journal_dump(dir.path());
        dump.iter()
            .find(|r| r["type"] == "KillSwitch" && r["data"]["scope"] == "session")
            .map(|r| {
                assert_eq!(
                    (
                        r["data"]["id"].as_str(),
                        r["data"]["on"].as_bool(),
                        r["data"]["cause"].as_str()
                    ),
                    (Some("loss-a"), Some(true), Some("loss_suspect")),
                    "{r}"
                );
            })
            .ok_or(format!("{} records, no session kill", dump.len()))
    });
}

// Goal: loss suspects escalate: shard threshold → V3_SHARD_KILLED, global threshold → V3_GLOBAL_KILLED.
#[test]
fn loss_suspects_escalate_to_shard_and_global() {
    // Loss suspects escalate by sliding-window counts: V3_SHARD_LOSS_SUSPECT_THRESHOLD (2) suspects
    // on one shard kill that shard (V3_SHARD_KILLED for every session on it, other shards go on),
    // and V3_GLOBAL_LOSS_SUSPECT_THRESHOLD (3) in total turn the global switch on (V3_GLOBAL_KILLED
    // everywhere, /health 503, every shard killed).
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "2"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "3000"),
            ("V3_LOSS_GAP_TIMEOUT_MS", "100"),
            ("V3_LOSS_SCAN_INTERVAL_MS", "10"),
            ("V3_SESSION_LOSS_SUSPECT_THRESHOLD", "100"),
            ("V3_SHARD_LOSS_SUSPECT_THRESHOLD", "2"),
            ("V3_GLOBAL_LOSS_SUSPECT_THRESHOLD", "3"),
        ],
    );
    let ops = ops_token("ops");
    // Sessions: esc-a and esc-c on shard 0, esc-b on shard 1 (fewest sessions, then lowest).
    let (a, b, c) = (token("esc-a"), token("esc-b"), token("esc-c"));
    for (t, s, shard) in [(&a, "esc-a", 0), (&b, "esc-b", 1), (&c, "esc-c", 0)] {
        assert_eq!(confirm(gw.http, t, s, 1)["shardId"], shard);
    }
    assert_eq!(assert_accepted(&post_order(gw.http, &a, &good_order())), 1);
    assert_eq!(assert_accepted(&post_order(gw.http, &a, &good_order())), 2);
    wait_kill(gw.http, "shard 0 to be killed", |ks| {
        ks["shards"][0]["killed"] == true
    });
    let r = post_order(gw.http, &c, &good_order());
    assert_refused(&r, 503, "KILLED", "V3_SHARD_KILLED");
    let ks = kill_switches(gw.http, &ops);
    assert_eq!(
        (
            ks["shards"][0]["killed"].clone(),
            ks["shards"][1]["killed"].clone(),
            ks["global"].clone()
        ),
        (json!(true), json!(false), json!(false)),
        "{ks}"
    );
    assert_eq!(
        ks["sessions"],
        json!([]),
        "the session threshold was not reached"
    );
    // Shard 1 still takes orders; its order becomes the third suspect → global kill.
    assert_eq!(assert_accepted(&post_order(gw.http, &b, &good_order())), 1);
    wait_kill(gw.http, "the global kill switch", |ks| ks["global"] == true);
    let r = post_order(gw.http, &b, &good_order());
    assert_refused(&r, 503, "KILLED", "V3_GLOBAL_KILLED");
    assert_frame(
        &tcp_one(gw.tcp, frame(&a, "AAPL", 1, 1, 1, 100)),
        KIND_KILLED,
        503,
        2301,
    );
    let ks = kill_switches(gw.http, &ops);
    assert_eq!(
        (
            ks["global"].clone(),
            ks["shards"][0]["killed"].clone(),
            ks["shards"][1]["killed"].clone()
        ),
        (json!(true), json!(true), json!(true)),
        "{ks}"
    );
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 503);
    assert_eq!(metric(gw.http, "gateway_v3_global_killed_total"), 1.0);
    assert!(metric(gw.http, "gateway_v3_loss_suspect_total") >= 3.0);
}

// Goal: a failed journal write is DURABLE_REJECTED, journaled, and still so after a fault-free restart.
#[test]
fn durable_rejected_is_journaled_and_survives_restart() {
    // A journal write failure (SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT=1) turns the first order into
    // DURABLE_REJECTED / WAL_DURABILITY_FAILED; the rejection is journaled (a `V3DurableRejected`
    // record), so after a restart WITHOUT the fault it is still DURABLE_REJECTED, the next order is
    // DURABLE_ACCEPTED and sequence numbers continue.
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT", "1"),
        ],
    );
    let tok = token("wal-fail");
    assert_eq!(
        assert_accepted(&post_order(gw.http, &tok, &good_order())),
        1
    );
    let v = wait_confirm(gw.http, &tok, "wal-fail", 1, "DURABLE_REJECTED");
    assert_eq!(
        (v["reason"].as_str(), v["attemptId"].as_str()),
        (Some("WAL_DURABILITY_FAILED"), Some("att_1")),
        "{v}"
    );
    assert_eq!(metric(gw.http, "gateway_v3_durable_rejected_total"), 1.0);
    assert_eq!(metric(gw.http, "gateway_v3_durable_write_error_total"), 1.0);
    // The journal works again after the failed commit: once its hold is over
    // (`JOURNAL_FAILURE_HOLD_MS`, 1 s) new orders are admitted and made durable.
    assert_eq!(assert_accepted(&post_until_admitted(gw.http, &tok)), 2);
    wait_confirm(gw.http, &tok, "wal-fail", 2, "DURABLE_ACCEPTED");
    wait_for(10, "the V3DurableRejected record", || {
        let dump = journal_dump(dir.path());
        dump.iter()
            .find(|r| r["type"] == "V3DurableRejected")
            .map(|r| assert_eq!(r["data"], json!({"sessionId": "wal-fail", "sessionSeq": 1, "reason": "WAL_DURABILITY_FAILED"})))
            .ok_or(format!("{dump:?}"))
    });
    let dump = journal_dump(dir.path());
    let orders: Vec<u64> = dump
        .iter()
        .filter(|r| r["type"] == "V3OrderAccepted")
        .map(|r| r["data"]["sessionSeq"].as_u64().unwrap())
        .collect();
    assert_eq!(
        orders,
        vec![2],
        "the failed write left no order record behind"
    );
    gw.terminate();

    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "1")]);
    let v = confirm(gw.http, &tok, "wal-fail", 1);
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("DURABLE_REJECTED"), Some("WAL_DURABILITY_FAILED")),
        "{v}"
    );
    assert_eq!(
        confirm(gw.http, &tok, "wal-fail", 2)["status"],
        "DURABLE_ACCEPTED"
    );
    assert_eq!(
        assert_accepted(&post_order(gw.http, &tok, &good_order())),
        3
    );
    wait_confirm(gw.http, &tok, "wal-fail", 3, "DURABLE_ACCEPTED");
}

// Goal: an order caught by a graceful shutdown is 503 KILLED V3_INGRESS_CLOSED, then a clean exit.
#[test]
fn ingress_closed_during_graceful_shutdown() {
    // An order whose body is still arriving when a graceful shutdown begins is answered 503 KILLED
    // V3_INGRESS_CLOSED (intake closed, nothing enqueued) rather than cut off, and the gateway then
    // exits cleanly. (The final journal commit is slowed to keep the process alive while the rest
    // of the body is sent.)
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "2000"),
        ],
    );
    let tok = token("closing");
    let body = good_order();
    let req = request(
        "POST",
        "/v3/orders",
        Some(&tok),
        "Content-Type: application/json\r\n",
        &body,
    );
    let mut s = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // Headers and all of the body but its last byte: the handler is now waiting for the body.
    s.write_all(&req[..req.len() - 1]).unwrap();
    // The handler verifies the token before it reads the body: one token cache miss (nothing
    // else here carries a token) means the request is in the handler.
    wait_for(10, "the request to be in the handler", || {
        match metric(gw.http, "gateway_auth_cache_misses_total") {
            n if n >= 1.0 => Ok(()),
            n => Err(format!("{n} tokens verified")),
        }
    });
    gw.sigterm();
    // The listener closes when shutdown begins, right as intake is switched off.
    wait_for(
        10,
        "the HTTP listener to close",
        || match TcpStream::connect(("127.0.0.1", gw.http)) {
            Err(_) => Ok(()),
            Ok(_) => Err("still accepting connections".into()),
        },
    );
    s.write_all(&req[req.len() - 1..]).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let r = parse_http(&raw);
    assert_refused(&r, 503, "KILLED", "V3_INGRESS_CLOSED");
    let status = gw.child.wait().unwrap();
    assert!(status.success(), "graceful shutdown: {status}");
}

// Goal: a journal volume below JOURNAL_DISK_RESERVE_MB refuses new orders over HTTP and TCP with
// 503 V3_JOURNAL_UNAVAILABLE (TCP 2003) before anything is accepted, and /health says why.
#[test]
fn disk_below_the_reserve_refuses_new_orders_up_front() {
    let dir = tempfile::tempdir().unwrap();
    // No volume this test runs on has a pebibyte free.
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("JOURNAL_DISK_RESERVE_MB", "1073741824"),
        ],
    );
    let tok = token("disk-low");
    assert_journal_refuses(&gw, &tok, "JOURNAL_DISK_LOW");
    assert_eq!(metric(gw.http, "gateway_journal_available"), 0.0);
    assert!(metric(gw.http, "gateway_journal_disk_free_bytes") > 0.0);
    assert_eq!(metric(gw.http, "gateway_v3_accepted_total"), 0.0);
    // Nothing was accepted, so nothing is waiting to become durable or be lost.
    assert_eq!(
        confirm(gw.http, &tok, "disk-low", 1)["status"],
        "UNKNOWN",
        "a refusal spends no sequence number"
    );
}

// Goal: after a failed journal commit new orders are refused 503 V3_JOURNAL_UNAVAILABLE for a
// hold (doubling while the journal keeps failing), /health says JOURNAL_FAILING, and once a
// commit succeeds orders are admitted and made durable again.
#[test]
fn failed_commits_hold_new_orders_back_until_the_journal_writes_again() {
    let dir = tempfile::tempdir().unwrap();
    // Commit 1 (the first order) and commit 2 (its journaled rejection) fail: holds of 1 s,
    // then 2 s; commit 3 (a probe order admitted after them) succeeds and ends the streak.
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT", "1"),
            ("SWITCHYARD_FAULT_FAIL_WRITE_COMMITS", "2"),
            ("JOURNAL_FAILURE_HOLD_MS", "1000"),
        ],
    );
    let tok = token("wal-hold");
    assert_eq!(
        assert_accepted(&post_order(gw.http, &tok, &good_order())),
        1
    );
    wait_confirm(gw.http, &tok, "wal-hold", 1, "DURABLE_REJECTED");
    assert_journal_refuses(&gw, &tok, "JOURNAL_FAILING");
    let r = post_until_admitted(gw.http, &tok);
    assert_eq!(assert_accepted(&r), 2, "refusals spend no sequence number");
    wait_confirm(gw.http, &tok, "wal-hold", 2, "DURABLE_ACCEPTED");
    assert_health(gw.http, 200, "OK");
    assert_eq!(metric(gw.http, "gateway_journal_available"), 1.0);
    assert_eq!(metric(gw.http, "gateway_v3_durable_rejected_total"), 1.0);
    assert_eq!(metric(gw.http, "gateway_v3_loss_suspect_total"), 0.0);
}
