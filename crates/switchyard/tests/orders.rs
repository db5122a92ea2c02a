//! Goal: the durable order API (`/orders`, `/v2/orders`, queries, cancel, events) answers every
//! status and reason of its contract over raw HTTP against the real server, keeps idempotency
//! exact under concurrency and across restarts, and never answers `local` before the journal.

mod common;

use std::collections::BTreeSet;
use std::sync::{Arc, Barrier};

use common::*;
use serde_json::Value;

/// `POST <path>` with an optional Idempotency-Key and Durability header.
fn post_durable(
    port: u16,
    path: &str,
    token: &str,
    key: Option<&str>,
    durability: Option<&str>,
    body: &str,
) -> HttpResponse {
    let mut headers = String::from("Content-Type: application/json\r\n");
    if let Some(k) = key {
        headers += &format!("Idempotency-Key: {k}\r\n");
    }
    if let Some(d) = durability {
        headers += &format!("Durability: {d}\r\n");
    }
    http_full(port, &request("POST", path, Some(token), &headers, body))
}

fn post(port: u16, token: &str, key: &str, body: &str) -> HttpResponse {
    post_durable(port, "/orders", token, Some(key), None, body)
}

fn get(port: u16, path: &str, token: &str) -> HttpResponse {
    http_full(port, &request("GET", path, Some(token), "", ""))
}

fn cancel(port: u16, id: &str, token: &str) -> HttpResponse {
    http_full(
        port,
        &request("POST", &format!("/orders/{id}/cancel"), Some(token), "", ""),
    )
}

fn assert_order_refused(r: &HttpResponse, http: u16, reason: &str) {
    let v = r.assert_json(reason);
    assert_eq!(r.status, http, "{reason}: {}", r.body);
    assert_eq!(v["status"], "REJECTED", "{}", r.body);
    assert_eq!(v["reason"], reason, "{}", r.body);
    assert_eq!(v["orderId"], "", "{}", r.body);
}

/// For polling: Ok once `r` is the refusal `(http, reason)`, else the body seen.
fn refused_yet(r: &HttpResponse, http: u16, reason: &str) -> Result<(), String> {
    if r.status != http {
        return Err(r.body.clone());
    }
    assert_order_refused(r, http, reason);
    Ok(())
}

/// Asserts 202 ACCEPTED at `level`; returns the order id.
fn assert_created(r: &HttpResponse, level: &str) -> String {
    let v = r.assert_json("accepted");
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(v["status"], "ACCEPTED", "{}", r.body);
    assert_eq!(v["durability"], level, "{}", r.body);
    assert_eq!(r.header("durability"), Some(level));
    let seq = v["acceptSeq"].as_u64().expect("acceptSeq");
    assert_eq!(v["requestId"], format!("req_{seq}"));
    v["orderId"].as_str().expect("orderId").to_string()
}

// Goal: the happy paths — local (the default), volatile, v2, replays — and their bodies.
#[test]
fn accept_levels_and_replays() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let t = token("acct-levels");
    let body = r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":5,"price":100,"clientOrderId":"c-1"}"#;

    let local = assert_created(&post(gw.http, &t, "k-local", body), "local");
    assert!(local.starts_with("ord_"), "{local}");
    // A `local` answer never precedes the fdatasync: the order is durable when we look.
    let snap = get(gw.http, &format!("/orders/{local}"), &t).assert_json("snapshot");
    assert_eq!(snap["durable"], true);
    assert_eq!(snap["status"], "ACCEPTED");
    assert_eq!(snap["clientOrderId"], "c-1");
    assert_eq!(snap["qty"], 5);

    let r = post_durable(
        gw.http,
        "/orders",
        &t,
        Some("k-vol"),
        Some("VOLATILE"),
        body,
    );
    let vol = assert_created(&r, "volatile");
    assert_ne!(vol, local);

    // Replay: the original order, nothing re-run (same acceptSeq, no second record).
    let again = post(gw.http, &t, "k-local", body);
    assert_eq!(again.status, 202);
    assert_eq!(again.json()["orderId"], local.as_str());
    let first_seq = post(gw.http, &t, "k-local", body).json()["acceptSeq"].clone();
    assert_eq!(again.json()["acceptSeq"], first_seq);

    // The key is scoped per account: another account's same key is a new order.
    let other = assert_created(
        &post(gw.http, &token("acct-other"), "k-local", body),
        "local",
    );
    assert_ne!(other, local);

    // Without the header the body's clientOrderId is the key.
    let by_cid = assert_created(
        &post_durable(
            gw.http,
            "/orders",
            &t,
            None,
            None,
            &body.replace("c-1", "c-2"),
        ),
        "local",
    );
    let replay = post_durable(
        gw.http,
        "/orders",
        &t,
        None,
        None,
        &body.replace("c-1", "c-2"),
    );
    assert_eq!(replay.json()["orderId"], by_cid.as_str());

    // v2: a new order answers PENDING after the journal; a replay of a durable one 200 DURABLE.
    let r = post_durable(gw.http, "/v2/orders", &t, Some("k-v2"), None, body);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "PENDING");
    assert_eq!(r.json()["durability"], "local");
    let r = post_durable(gw.http, "/v2/orders", &t, Some("k-v2"), None, body);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["status"], "DURABLE");

    let accounts_events = get(gw.http, "/accounts/acct-levels/events?limit=1000", &t).json();
    let accepted = accounts_events["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "OrderAccepted")
        .count();
    assert_eq!(accepted, 4, "{accounts_events}");
}

// Goal: every refusal of the request itself: auth, content type, body, key, durability, risk.
#[test]
fn request_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("ORDER_MAX_KEY_LEN", "16")]);
    let t = token("acct-bad");
    let good = good_order();

    let r = http_full(
        gw.http,
        &request(
            "POST",
            "/orders",
            None,
            "Content-Type: application/json\r\n",
            &good,
        ),
    );
    assert_eq!(r.status, 401, "{}", r.body);
    assert_eq!(r.assert_json("401")["error"], "MissingBearerToken");

    let r = http_full(
        gw.http,
        &request("POST", "/orders", Some(&t), "Idempotency-Key: a\r\n", &good),
    );
    assert_eq!(r.status, 415, "{}", r.body);

    let r = post(gw.http, &t, "k1", "{not json");
    assert_eq!(r.status, 400);
    assert_eq!(r.assert_json("bad json")["reason"], "INVALID_JSON");

    assert_order_refused(
        &post_durable(gw.http, "/orders", &t, None, None, &good),
        400,
        "IDEMPOTENCY_REQUIRED",
    );
    assert_order_refused(
        &post(gw.http, &t, &"k".repeat(17), &good),
        400,
        "INVALID_IDEMPOTENCY_KEY",
    );
    assert_order_refused(
        &post_durable(
            gw.http,
            "/orders",
            &t,
            Some("k2"),
            Some("eventually"),
            &good,
        ),
        400,
        "INVALID_DURABILITY",
    );
    assert_order_refused(
        &post_durable(
            gw.http,
            "/orders",
            &t,
            Some("k3"),
            Some("replicated"),
            &good,
        ),
        501,
        "DURABILITY_LEVEL_UNAVAILABLE",
    );
    for (body, reason) in [
        (
            order_body("AAPL", "BUY", "LIMIT", 10_001, Some(1)),
            "INVALID_QTY",
        ),
        (
            order_body("ZZZZ", "BUY", "LIMIT", 1, Some(1)),
            "INVALID_SYMBOL",
        ),
        (
            order_body("AAPL", "HOLD", "LIMIT", 1, Some(1)),
            "INVALID_SIDE",
        ),
        (order_body("AAPL", "BUY", "LIMIT", 1, None), "INVALID_PRICE"),
        (
            order_body("AAPL", "BUY", "LIMIT", 10_000, Some(1_000_000)),
            "RISK_REJECT",
        ),
    ] {
        assert_order_refused(&post(gw.http, &t, "k-risk", &body), 422, reason);
    }
    // Refusals are not remembered under the key: the same key now creates the order.
    assert_created(&post(gw.http, &t, "k-risk", &good), "local");
    // A refused clientOrderId reports REJECTED.
    let body = r#"{"symbol":"ZZZZ","side":"BUY","type":"LIMIT","qty":1,"price":1,"clientOrderId":"bad-1"}"#;
    assert_order_refused(&post(gw.http, &t, "k-cid", body), 422, "INVALID_SYMBOL");
    let v = get(gw.http, "/orders/client/bad-1", &t).assert_json("client");
    assert_eq!(v["status"], "REJECTED");
    assert_eq!(
        get(gw.http, "/orders/client/never", &t).json()["status"],
        "UNKNOWN"
    );

    let r = http_full(gw.http, &request("DELETE", "/orders", Some(&t), "", ""));
    assert_eq!(r.status, 405);
}

// Goal: the account's rate limit and kill switch stop durable orders too.
#[test]
fn rate_limit_and_kill_switch() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[("RISK_RATE_PER_SEC", "1"), ("RISK_RATE_BURST", "1")],
    );
    let t = token("acct-rate");
    assert_created(&post(gw.http, &t, "r1", &good_order()), "local");
    assert_order_refused(&post(gw.http, &t, "r2", &good_order()), 429, "RATE_LIMITED");

    let ops = ops_token("operator");
    let r = set_kill(
        gw.http,
        &ops,
        serde_json::json!({"scope": "account", "id": "acct-kill", "on": true}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_order_refused(
        &post(gw.http, &token("acct-kill"), "x", &good_order()),
        503,
        "V3_ACCOUNT_KILLED",
    );
}

// Goal: queries and cancel: own orders only (others' are 404), v2 normalisation, 409 on a
// final order, the cancel journaled once.
#[test]
fn queries_and_cancel() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let t = token("acct-q");
    let stranger = token("acct-stranger");
    let body = r#"{"symbol":"MSFT","side":"SELL","type":"LIMIT","qty":3,"price":250,"clientOrderId":"q-1"}"#;
    let id = assert_created(&post(gw.http, &t, "q-key", body), "local");

    let v = get(gw.http, &format!("/orders/{id}"), &t).assert_json("snapshot");
    for (k, want) in [
        ("orderId", Value::from(id.as_str())),
        ("accountId", "acct-q".into()),
        ("symbol", "MSFT".into()),
        ("side", "SELL".into()),
        ("type", "LIMIT".into()),
        ("qty", 3.into()),
        ("price", 250.into()),
        ("timeInForce", "GTC".into()),
        ("status", "ACCEPTED".into()),
        ("filledQty", 0.into()),
    ] {
        assert_eq!(v[k], want, "{k}: {v}");
    }
    assert!(v["acceptedAt"].as_u64().unwrap() > 1_600_000_000_000);
    // By client order id, and the client-id view.
    assert_eq!(
        get(gw.http, "/orders/q-1", &t).json()["orderId"],
        id.as_str()
    );
    let c = get(gw.http, "/orders/client/q-1", &t).json();
    assert_eq!(
        (c["orderId"].as_str(), c["status"].as_str()),
        (Some(id.as_str()), Some("DURABLE"))
    );
    assert_eq!(
        get(gw.http, &format!("/v2/orders/{id}"), &t).json()["status"],
        "DURABLE"
    );
    // Cross-account access is hidden as 404, for reads, cancels and events.
    for path in [
        format!("/orders/{id}"),
        format!("/orders/{id}/events"),
        "/orders/client/q-1".into(),
    ] {
        let r = get(gw.http, &path, &stranger);
        if path.contains("client") {
            assert_eq!(r.json()["status"], "UNKNOWN", "{path}");
        } else {
            assert_eq!(r.status, 404, "{path}: {}", r.body);
        }
    }
    assert_eq!(cancel(gw.http, &id, &stranger).status, 404);
    assert_eq!(cancel(gw.http, "ord_00000000000000ff", &t).status, 404);
    assert_eq!(
        get(gw.http, "/accounts/acct-q/events", &stranger).status,
        404
    );

    let r = cancel(gw.http, &id, &t);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "CANCEL_REQUESTED");
    assert_eq!(r.json()["orderId"], id.as_str());
    let v = get(gw.http, &format!("/orders/{id}"), &t).json();
    assert_eq!(v["status"], "CANCELED", "{v}");
    let r = cancel(gw.http, &id, &t);
    assert_eq!(r.status, 409, "{}", r.body);
    let v = r.json();
    assert_eq!(
        (v["status"].as_str(), v["reason"].as_str()),
        (Some("REJECTED"), Some("ORDER_FINAL"))
    );

    let ev = get(gw.http, &format!("/orders/{id}/events"), &t).assert_json("events");
    let types: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        ["OrderAccepted", "CancelRequested", "OrderUpdated"],
        "{ev}"
    );
    assert_eq!(ev["orderId"], id.as_str());
    assert_eq!(ev["events"][0]["data"]["clientOrderId"], "q-1");
    assert_eq!(ev["events"][2]["data"]["status"], "CANCELED");
}

// Goal: the events API filters by time in both epoch and ISO forms, limits to the last N, and
// refuses garbage with 400.
#[test]
fn events_filters() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let t = token("acct-ev");
    for i in 0..5 {
        assert_created(
            &post(gw.http, &t, &format!("ev-{i}"), &good_order()),
            "local",
        );
    }
    let all = get(gw.http, "/accounts/acct-ev/events", &t).assert_json("all");
    let events = all["events"].as_array().unwrap();
    assert_eq!(events.len(), 5);
    assert_eq!(all["accountId"], "acct-ev");
    let last_two = get(gw.http, "/accounts/acct-ev/events?limit=2", &t).json();
    assert_eq!(last_two["events"].as_array().unwrap()[..], events[3..]);
    let at3 = events[3]["at"].as_u64().unwrap();
    // The `at` of every event a query returns.
    let ats = |query: String| -> Vec<u64> {
        let v = get(gw.http, &format!("/accounts/acct-ev/events?{query}"), &t).json();
        v["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["at"].as_u64().unwrap())
            .collect()
    };
    let since = ats(format!("since={at3}"));
    assert!(since.iter().all(|&a| a >= at3));
    assert!(since.len() >= 2);
    assert!(ats(format!("after={at3}")).iter().all(|&a| a > at3));
    assert_eq!(ats("since=2000-01-01T00:00:00Z".into()).len(), 5);
    assert!(ats("since=4000000000".into()).is_empty());
    for (q, reason) in [
        ("since=yesterday", "INVALID_SINCE"),
        ("after=12:00", "INVALID_AFTER"),
    ] {
        let r = get(gw.http, &format!("/accounts/acct-ev/events?{q}"), &t);
        assert_eq!(r.status, 400, "{q}");
        assert_eq!(r.json()["error"], reason);
    }
}

// Goal: the same Idempotency-Key fired from many connections at once creates exactly one order.
#[test]
fn concurrent_duplicates_create_one_order() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let port = gw.http;
    const N: usize = 24;
    let barrier = Arc::new(Barrier::new(N));
    let threads: Vec<_> = (0..N)
        .map(|i| {
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                let t = token("acct-dup");
                let level = if i % 2 == 0 { "local" } else { "volatile" };
                barrier.wait();
                let r = post_durable(
                    port,
                    "/orders",
                    &t,
                    Some("same-key"),
                    Some(level),
                    &good_order(),
                );
                assert_eq!(r.status, 202, "{}", r.body);
                r.json()["orderId"].as_str().unwrap().to_string()
            })
        })
        .collect();
    let ids: BTreeSet<String> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let ev = get(port, "/accounts/acct-dup/events", &token("acct-dup")).json();
    assert_eq!(ev["events"].as_array().unwrap().len(), 1, "{ev}");
}

// Goal: keys, orders and cancels survive a restart (rebuilt from the journal), acceptSeq and
// order ids continue, and a replayed key after the restart returns the original order.
#[test]
fn restart_keeps_keys_and_orders() {
    let dir = tempfile::tempdir().unwrap();
    let t = token("acct-restart");
    let (a, b, seq);
    {
        let mut gw = Gateway::start(dir.path(), &[]);
        a = assert_created(&post(gw.http, &t, "rk-a", &good_order()), "local");
        b = assert_created(&post(gw.http, &t, "rk-b", &good_order()), "local");
        seq = post(gw.http, &t, "rk-b", &good_order()).json()["acceptSeq"]
            .as_u64()
            .unwrap();
        assert_eq!(cancel(gw.http, &b, &t).status, 202);
        gw.kill9();
    }
    let gw = Gateway::start(dir.path(), &[]);
    let r = post(gw.http, &t, "rk-a", &good_order());
    assert_eq!(r.json()["orderId"], a.as_str(), "{}", r.body);
    assert_eq!(r.json()["durability"], "local");
    assert_eq!(
        get(gw.http, &format!("/orders/{b}"), &t).json()["status"],
        "CANCELED"
    );
    assert_eq!(cancel(gw.http, &b, &t).status, 409);
    let c = assert_created(&post(gw.http, &t, "rk-c", &good_order()), "local");
    assert!(c != a && c != b);
    let next = post(gw.http, &t, "rk-c", &good_order()).json()["acceptSeq"]
        .as_u64()
        .unwrap();
    assert!(next > seq, "acceptSeq must continue: {next} after {seq}");
}

// Goal: journal failure answers 500 WAL_DURABILITY_FAILED and rolls back (the key creates anew);
// a slow disk answers 503 DURABILITY_WAIT_TIMEOUT and the order stays (a resend finds it).
#[test]
fn journal_failure_and_wait_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let t = token("acct-fail");
    {
        let gw = Gateway::start(
            dir.path(),
            &[("SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT", "1")],
        );
        assert_order_refused(
            &post(gw.http, &t, "f-1", &good_order()),
            500,
            "WAL_DURABILITY_FAILED",
        );
        assert_eq!(
            get(gw.http, "/accounts/acct-fail/events", &t).json()["events"],
            serde_json::json!([])
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "400"),
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "50"),
        ],
    );
    assert_order_refused(
        &post(gw.http, &t, "slow-1", &good_order()),
        503,
        "DURABILITY_WAIT_TIMEOUT",
    );
    let r = wait_for(10, "the slow order to become durable", || {
        let r = post_durable(
            gw.http,
            "/v2/orders",
            &t,
            Some("slow-1"),
            None,
            &good_order(),
        );
        if r.status == 200 {
            Ok(r)
        } else {
            Err(r.body)
        }
    });
    assert_eq!(r.json()["status"], "DURABLE");
}

// Goal: the journal's health gates new orders on the durable path too: below the disk reserve
// a new order is 503 BACKPRESSURE_DISK_FREE while a cancel of an open order still goes through
// (it writes into the reserve); after a failed commit the next new order is 503
// JOURNAL_UNAVAILABLE until the hold runs out.
#[test]
fn journal_health_gates_new_orders_not_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let t = token("acct-disk");
    let id = {
        let gw = Gateway::start(dir.path(), &[]);
        assert_created(&post(gw.http, &t, "disk-0", &good_order()), "local")
    };
    // The same journal, restarted with a reserve no volume can meet.
    let gw = Gateway::start(dir.path(), &[("JOURNAL_DISK_RESERVE_MB", "1073741824")]);
    assert_order_refused(
        &post(gw.http, &t, "disk-1", &good_order()),
        503,
        "BACKPRESSURE_DISK_FREE",
    );
    let r = cancel(gw.http, &id, &t);
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["status"], "CANCEL_REQUESTED", "{}", r.body);
    let v = get(gw.http, &format!("/orders/{id}"), &t).json();
    assert_eq!(v["status"], "CANCELED", "{v}");
    drop(gw);

    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT", "1"),
            ("JOURNAL_FAILURE_HOLD_MS", "2000"),
        ],
    );
    assert_order_refused(
        &post(gw.http, &t, "fail-1", &good_order()),
        500,
        "WAL_DURABILITY_FAILED",
    );
    assert_order_refused(
        &post(gw.http, &t, "fail-2", &good_order()),
        503,
        "JOURNAL_UNAVAILABLE",
    );
    wait_for(10, "an order created after the hold", || {
        let r = post(gw.http, &t, "fail-3", &good_order());
        if r.status == 202 {
            Ok(assert_created(&r, "local"))
        } else {
            refused_yet(&r, 503, "JOURNAL_UNAVAILABLE")?;
            Err(r.body)
        }
    });
}

// Goal: each durable-path backpressure gate answers its reason and status, and clears by
// itself once the cause passes.
#[test]
fn backpressure_gates() {
    let t = token("acct-bp");
    // Journal bytes: any journal is larger than 1 byte once measured (within a second).
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("BACKPRESSURE_WAL_BYTES_MAX", "1")]);
    assert_created(&post(gw.http, &t, "b-0", &good_order()), "local");
    wait_for(5, "BACKPRESSURE_WAL_BYTES", || {
        let r = post(gw.http, &t, "b-1", &good_order());
        refused_yet(&r, 503, "BACKPRESSURE_WAL_BYTES")
    });
    drop(gw);
    // Free disk: no file system is 100 % free.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("BACKPRESSURE_DISK_FREE_PCT_MIN", "100")]);
    wait_for(5, "BACKPRESSURE_DISK_FREE", || {
        let r = post(gw.http, &t, "d-1", &good_order());
        refused_yet(&r, 503, "BACKPRESSURE_DISK_FREE")
    });
    drop(gw);
    // In-flight and journal age: a slow disk keeps volatile orders in flight; both gates clear
    // once the disk catches up.
    for (env, reason, code) in [
        (
            vec![("BACKPRESSURE_INFLIGHT_MAX", "1")],
            "BACKPRESSURE_INFLIGHT",
            503,
        ),
        (
            vec![
                ("BACKPRESSURE_INFLIGHT_DYNAMIC", "true"),
                ("BACKPRESSURE_INFLIGHT_MIN", "1"),
                ("BACKPRESSURE_INFLIGHT_INITIAL", "1"),
            ],
            "BACKPRESSURE_INFLIGHT_SOFT",
            429,
        ),
        (
            vec![("BACKPRESSURE_SOFT_WAL_AGE_MS_MAX", "100")],
            "BACKPRESSURE_SOFT_WAL_AGE",
            429,
        ),
        (
            vec![("BACKPRESSURE_WAL_AGE_MS_MAX", "100")],
            "BACKPRESSURE_WAL_AGE",
            503,
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut env = env;
        env.push(("SWITCHYARD_FAULT_SYNC_DELAY_MS", "700"));
        let gw = Gateway::start(dir.path(), &env);
        let mut i = 0;
        wait_for(10, reason, || {
            i += 1;
            let r = post_durable(
                gw.http,
                "/orders",
                &t,
                Some(&format!("{reason}-{i}")),
                Some("volatile"),
                &good_order(),
            );
            refused_yet(&r, code, reason)
        });
        wait_for(10, &format!("{reason} to clear"), || {
            i += 1;
            let r = post_durable(
                gw.http,
                "/orders",
                &t,
                Some(&format!("{reason}-{i}")),
                Some("local"),
                &good_order(),
            );
            if r.status == 202 {
                Ok(())
            } else {
                Err(r.body)
            }
        });
    }
}

// Goal: bounded queues and memory: a full shard queue answers 503 QUEUE_REJECT, a full order
// store 503 ORDER_STORE_FULL.
#[test]
fn queue_and_store_limits() {
    let t = token("acct-lim");
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("ORDER_MAX_IN_MEMORY", "2")]);
    assert_created(&post(gw.http, &t, "m-1", &good_order()), "local");
    assert_created(&post(gw.http, &t, "m-2", &good_order()), "local");
    assert_order_refused(
        &post(gw.http, &t, "m-3", &good_order()),
        503,
        "ORDER_STORE_FULL",
    );
    drop(gw);

    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "2000"),
            ("GATEWAY_JOURNAL_QUEUE_BATCHES", "1"),
            ("V3_INGRESS_QUEUE_CAPACITY", "16"),
        ],
    );
    let mut i = 0;
    wait_for(20, "QUEUE_REJECT", || {
        i += 1;
        let r = post_durable(
            gw.http,
            "/orders",
            &t,
            Some(&format!("q-{i}")),
            Some("volatile"),
            &good_order(),
        );
        refused_yet(&r, 503, "QUEUE_REJECT")
    });
}
