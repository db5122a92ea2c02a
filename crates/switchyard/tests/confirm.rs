//! The durable confirm query `GET /v3/orders/{sessionId}/{sessionSeq}` (§2.3.2): ownership,
//! UNKNOWN for numbers never issued, and the VOLATILE_ACCEPT → DURABLE_ACCEPTED transition with
//! the response fields of the contract.

mod common;

use common::*;

// Goal: only the session itself may query its orders: anyone else gets 403 {"error":"forbidden"}.
#[test]
fn other_sessions_are_forbidden() {
    // Only the session itself may ask: another session's path is 403 {"error":"forbidden"} (even
    // for a number that exists), while the owner sees its order.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "1")]);
    let (a, b) = (token("conf-a"), token("conf-b"));
    assert_eq!(assert_accepted(&post_order(gw.http, &a, &good_order())), 1);
    for path in [
        "/v3/orders/conf-a/1",
        "/v3/orders/conf-a/999",
        "/v3/orders/nobody/1",
    ] {
        let r = http_full(gw.http, &request("GET", path, Some(&b), "", ""));
        r.assert_json(path);
        assert_eq!(
            (r.status, r.body.as_str()),
            (403, r#"{"error":"forbidden"}"#),
            "{path}"
        );
    }
    // Same account, different session (sub): still forbidden — the session owns the numbers.
    let sibling = session_token("conf-a2", "conf-a");
    let r = http_full(
        gw.http,
        &request("GET", "/v3/orders/conf-a/1", Some(&sibling), "", ""),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    let v = wait_confirm(gw.http, &a, "conf-a", 1, "DURABLE_ACCEPTED");
    assert_eq!(v["sessionId"], "conf-a");
}

// Goal: a never-issued number is 200 UNKNOWN with updatedAtNs and shardId, and asking spends nothing.
#[test]
fn never_issued_is_unknown() {
    // A number never issued (beyond the last one, zero, or of a session that never sent anything)
    // is 200 UNKNOWN with `updatedAtNs` (now) and the session's `shardId`, and without attemptId,
    // reason or receivedAtNs; asking does not create or spend a number.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "3")]);
    let tok = token("conf-u");
    let before = switchyard_gateway_now_ns();
    for seq in [0, 1, 2, u64::MAX] {
        let v = confirm(gw.http, &tok, "conf-u", seq);
        assert_eq!(v["status"], "UNKNOWN", "{v}");
        assert_eq!(v["sessionSeq"], seq);
        assert!(
            v["updatedAtNs"].as_u64().is_some_and(|t| t >= before),
            "{v}"
        );
        assert!(v["shardId"].as_u64().is_some_and(|s| s < 3), "{v}");
        for absent in ["attemptId", "reason", "receivedAtNs"] {
            assert!(v.get(absent).is_none(), "{absent} in {v}");
        }
    }
    let shard = confirm(gw.http, &tok, "conf-u", 1)["shardId"].clone();
    assert_eq!(
        assert_accepted(&post_order(gw.http, &tok, &good_order())),
        1,
        "queries spent no number"
    );
    let v = wait_confirm(gw.http, &tok, "conf-u", 1, "DURABLE_ACCEPTED");
    assert_eq!(
        v["shardId"], shard,
        "the session keeps the shard it was given on first sight"
    );
    assert_eq!(confirm(gw.http, &tok, "conf-u", 2)["status"], "UNKNOWN");
    // Percent-encoded session ids are decoded before the ownership check.
    let odd = token("user@desk 1");
    assert_accepted(&post_order(gw.http, &odd, &good_order()));
    let v = wait_confirm(gw.http, &odd, "user%40desk%201", 1, "DURABLE_ACCEPTED");
    assert_eq!(v["sessionId"], "user@desk 1");
}

fn switchyard_gateway_now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

// Goal: an accepted order reads VOLATILE_ACCEPT, then DURABLE_ACCEPTED, with attemptId att_<n>.
#[test]
fn volatile_then_durable() {
    // An accepted order is VOLATILE_ACCEPT until the journal has made it durable, then
    // DURABLE_ACCEPTED; both answers carry attemptId `att_<n>`, updatedAtNs and shardId, no reason
    // (and receivedAtNs, optional, only if it equals the accept's). (The journal is slowed to 1 s
    // per commit so that the volatile state can be seen.)
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "1000"),
        ],
    );
    let tok = token("conf-v");
    let r = post_order(gw.http, &tok, &good_order());
    assert_eq!(assert_accepted(&r), 1);
    let accept = r.json();
    let v = confirm(gw.http, &tok, "conf-v", 1);
    assert_eq!(v["status"], "VOLATILE_ACCEPT", "{v}");
    for v in [
        v,
        wait_confirm(gw.http, &tok, "conf-v", 1, "DURABLE_ACCEPTED"),
    ] {
        assert_eq!(v["sessionId"], "conf-v");
        assert_eq!(v["sessionSeq"], 1);
        assert_eq!(v["attemptId"], "att_1");
        // `receivedAtNs?` is optional (§2.3.2); the watermark store keeps it only for
        // exceptions, but if given it must be the accept's.
        if let Some(t) = v.get("receivedAtNs") {
            assert_eq!(*t, accept["receivedAtNs"], "{v}");
        }
        assert!(v["updatedAtNs"].as_u64().is_some_and(|t| t > 0), "{v}");
        assert_eq!(v["shardId"], 0);
        assert!(v.get("reason").is_none(), "{v}");
    }
    // Over TCP the same: the number given in the binary response is queryable.
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_eq!(r.session_seq, 2);
    let v = wait_confirm(gw.http, &tok, "conf-v", 2, "DURABLE_ACCEPTED");
    assert_eq!(v["attemptId"], "att_2");
    assert!(metric(gw.http, "gateway_v3_durable_accepted_total") >= 2.0);
}
