//! The kill switch admin API (`/v3/admin/kill-switches`): scope `ops` required, each scope
//! (global, shard, session, account) on and off with its refusal over HTTP and TCP, the
//! precedence of §2.3.1 rows 1–3 (+ account), every change journaled (`"journaled":true`,
//! `KillSwitch` records in `switchyard journal dump`) and restored after a graceful restart and
//! after kill -9.

mod common;

use common::*;
use serde_json::json;

const ENV: &[(&str, &str)] = &[("V3_SHARD_COUNT", "1")];

/// Flips a switch, asserting 200 and `"journaled":true`.
fn flip(gw: &Gateway, scope: &str, id: &str, on: bool) {
    let r = set_kill(
        gw.http,
        &ops_token("op-alice"),
        json!({"scope": scope, "id": id, "on": on, "note": "test"}),
    );
    let v = r.assert_json("kill switch change");
    assert_eq!(r.status, 200, "{}", r.body);
    let want_id = if scope == "global" { "" } else { id };
    assert_eq!(
        v,
        json!({"scope": scope, "id": want_id, "on": on, "journaled": true})
    );
}

/// Refusal of an order from `session`/`account` over HTTP and TCP.
fn assert_killed(gw: &Gateway, session: &str, account: &str, reason: &str, code: u32) {
    let tok = session_token(session, account);
    let r = post_order(gw.http, &tok, &good_order());
    assert_refused(&r, 503, "KILLED", reason);
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_KILLED, 503, code);
}

fn assert_live(gw: &Gateway, session: &str, account: &str) {
    let tok = session_token(session, account);
    let r = post_order(gw.http, &tok, &good_order());
    assert_accepted(&r);
}

// Goal: the admin API needs scope ops (403 forbidden) and refuses malformed changes with JSON errors.
#[test]
fn admin_needs_ops_scope_and_valid_changes() {
    // The admin API needs a token with scope `ops`: 403 {"error":"forbidden"} without it, 401
    // without a token; malformed changes are 400/404 JSON errors and change nothing.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), ENV);
    let user = token("not-an-operator");
    let r = http_full(
        gw.http,
        &request("GET", "/v3/admin/kill-switches", Some(&user), "", ""),
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"error":"forbidden"}"#)
    );
    r.assert_json("403");
    let r = set_kill(gw.http, &user, json!({"scope": "global", "on": true}));
    assert_eq!(
        (r.status, r.body.as_str()),
        (403, r#"{"error":"forbidden"}"#)
    );
    // Another scope, or `ops` as part of a word, is not `ops`.
    let almost = token_with(
        json!({"sub": "x", "exp": switchyard_auth::now_sec() + 60, "scope": "opsx read"}),
    );
    let r = set_kill(gw.http, &almost, json!({"scope": "global", "on": true}));
    assert_eq!(r.status, 403, "{}", r.body);
    // Scope lists (space-separated string or array) containing `ops` are fine.
    let listed = token_with(
        json!({"sub": "x", "exp": switchyard_auth::now_sec() + 60, "scope": ["read", "ops"]}),
    );
    let r = http_full(
        gw.http,
        &request("GET", "/v3/admin/kill-switches", Some(&listed), "", ""),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = http_full(
        gw.http,
        &request("GET", "/v3/admin/kill-switches", None, "", ""),
    );
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, r#"{"error":"MissingBearerToken"}"#)
    );

    let ops = ops_token("op");
    for (body, status, error) in [
        (json!({"scope": "planet", "on": true}), 400, "INVALID_SCOPE"),
        (json!({"scope": "shard", "on": true}), 400, "INVALID_ID"),
        (
            json!({"scope": "session", "id": "x".repeat(129), "on": true}),
            400,
            "INVALID_ID",
        ),
        (
            json!({"scope": "shard", "id": "7", "on": true}),
            404,
            "NOT_FOUND",
        ),
        (
            json!({"scope": "shard", "id": "zero", "on": true}),
            404,
            "NOT_FOUND",
        ),
        (
            json!({"scope": "global", "on": true, "extra": 1}),
            400,
            "INVALID_REQUEST",
        ),
        (json!({"scope": "global"}), 400, "INVALID_REQUEST"),
        (
            json!({"scope": "global", "on": "yes"}),
            400,
            "INVALID_REQUEST",
        ),
    ] {
        let r = set_kill(gw.http, &ops, body.clone());
        let v = r.assert_json("bad change");
        assert_eq!(
            (r.status, v["error"].as_str()),
            (status, Some(error)),
            "{body}: {}",
            r.body
        );
    }
    let r = http_full(
        gw.http,
        &request(
            "POST",
            "/v3/admin/kill-switches",
            Some(&ops),
            "Content-Type: application/json\r\n",
            "{",
        ),
    );
    assert_eq!(
        (r.status, r.assert_json("bad JSON")["error"].as_str()),
        (400, Some("INVALID_REQUEST"))
    );
    let ks = kill_switches(gw.http, &ops);
    assert_eq!(ks["global"], false);
    assert_eq!(ks["shards"][0]["killed"], false);
    assert_live(&gw, "still-live", "still-live");
}

// Goal: each kill scope refuses exactly its orders, lifts when off, respects precedence, and is journaled.
#[test]
fn each_scope_on_and_off() {
    // Each scope on → its refusal (V3_GLOBAL_KILLED 2301, V3_SHARD_KILLED 2303, V3_SESSION_KILLED
    // 2302, V3_ACCOUNT_KILLED 2304; 503 KILLED, TCP kind 2) for exactly the orders it covers,
    // visible in GET, /health and /metrics; off → accepted again; precedence global > session >
    // shard > account (§2.3.1 rows 1–3, account after them); every change is a `KillSwitch` record
    // in the journal with the operator's account as `by`.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), ENV);
    let ops = ops_token("op-alice");
    // Sessions s1 and s2 belong to account acct-a; s3 to acct-b.
    for s in ["s1", "s2"] {
        assert_live(&gw, s, "acct-a");
    }
    assert_live(&gw, "s3", "acct-b");

    flip(&gw, "global", "", true);
    for (s, a) in [("s1", "acct-a"), ("s3", "acct-b")] {
        assert_killed(&gw, s, a, "V3_GLOBAL_KILLED", 2301);
    }
    assert_eq!(kill_switches(gw.http, &ops)["global"], true);
    let (code, _) = http_get(gw.http, "/health", None).unwrap();
    assert_eq!(code, 503, "/health while globally killed");
    assert_eq!(metric(gw.http, "gateway_v3_kill_switch"), 1.0);
    flip(&gw, "global", "", false);
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 200);
    assert_eq!(metric(gw.http, "gateway_v3_kill_switch"), 0.0);
    assert_live(&gw, "s1", "acct-a");

    flip(&gw, "shard", "0", true);
    assert_killed(&gw, "s1", "acct-a", "V3_SHARD_KILLED", 2303);
    assert_killed(&gw, "s3", "acct-b", "V3_SHARD_KILLED", 2303);
    assert_eq!(kill_switches(gw.http, &ops)["shards"][0]["killed"], true);
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 1.0);
    flip(&gw, "shard", "0", false);
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 0.0);
    assert_live(&gw, "s3", "acct-b");

    flip(&gw, "session", "s1", true);
    assert_killed(&gw, "s1", "acct-a", "V3_SESSION_KILLED", 2302);
    assert_live(&gw, "s2", "acct-a");
    assert_eq!(kill_switches(gw.http, &ops)["sessions"], json!(["s1"]));
    flip(&gw, "session", "s1", false);
    assert_live(&gw, "s1", "acct-a");

    flip(&gw, "account", "acct-a", true);
    assert_killed(&gw, "s1", "acct-a", "V3_ACCOUNT_KILLED", 2304);
    assert_killed(&gw, "s2", "acct-a", "V3_ACCOUNT_KILLED", 2304);
    assert_live(&gw, "s3", "acct-b");
    assert_eq!(kill_switches(gw.http, &ops)["accounts"], json!(["acct-a"]));

    // Precedence, with account acct-a still killed.
    flip(&gw, "shard", "0", true);
    assert_killed(&gw, "s1", "acct-a", "V3_SHARD_KILLED", 2303);
    flip(&gw, "session", "s1", true);
    assert_killed(&gw, "s1", "acct-a", "V3_SESSION_KILLED", 2302);
    flip(&gw, "global", "", true);
    assert_killed(&gw, "s1", "acct-a", "V3_GLOBAL_KILLED", 2301);
    for (scope, id) in [
        ("global", ""),
        ("session", "s1"),
        ("shard", "0"),
        ("account", "acct-a"),
    ] {
        flip(&gw, scope, id, false);
    }
    for (s, a) in [("s1", "acct-a"), ("s2", "acct-a"), ("s3", "acct-b")] {
        assert_live(&gw, s, a);
    }
    let ks = kill_switches(gw.http, &ops);
    assert_eq!(
        ks,
        json!({"global": false, "shards": [{"shard": 0, "killed": false, "utilizationPct": 0}], "sessions": [], "accounts": []})
    );

    // Journaled changes are durable when answered, so the dump sees every one of them.
    let changes: Vec<(String, String, bool)> = journal_dump(dir.path())
        .into_iter()
        .filter(|r| r["type"] == "KillSwitch")
        .map(|r| {
            let d = &r["data"];
            assert_eq!(
                (d["cause"].as_str(), d["by"].as_str(), d["note"].as_str()),
                (Some("operator"), Some("op-alice"), Some("test")),
                "{r}"
            );
            (
                d["scope"].as_str().unwrap().to_string(),
                d["id"].as_str().unwrap().to_string(),
                d["on"].as_bool().unwrap(),
            )
        })
        .collect();
    let expect: Vec<(String, String, bool)> = [
        ("global", "", true),
        ("global", "", false),
        ("shard", "0", true),
        ("shard", "0", false),
        ("session", "s1", true),
        ("session", "s1", false),
        ("account", "acct-a", true),
        ("shard", "0", true),
        ("session", "s1", true),
        ("global", "", true),
        ("global", "", false),
        ("session", "s1", false),
        ("shard", "0", false),
        ("account", "acct-a", false),
    ]
    .iter()
    .map(|(s, i, o)| (s.to_string(), i.to_string(), *o))
    .collect();
    assert_eq!(changes, expect);
}

/// Turns on one switch of each scope, checks the effect, restarts (graceful or kill -9) and
/// checks that every switch is back.
fn switches_survive_restart(graceful: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "2")]);
    let ops = ops_token("op");
    // Two shards. A confirm query creates a session without queueing anything, so the layout
    // is exactly "fewest sessions, then lowest shard": 0, 1, 0, 1, 0.
    let sessions = [
        ("r-s0", "r-a0"),
        ("r-s1", "r-a1"),
        ("r-acct-s", "r-killed-acct"),
        ("r-s3", "r-a3"),
        ("r-s2", "r-a2"),
    ];
    for (i, (s, a)) in sessions.iter().enumerate() {
        let v = confirm(gw.http, &session_token(s, a), s, 1);
        assert_eq!(
            (v["status"].as_str(), v["shardId"].as_u64()),
            (Some("UNKNOWN"), Some(i as u64 % 2)),
            "{v}"
        );
    }
    // One journaled order each, so that replay knows every session's shard.
    for (s, a) in sessions {
        assert_live(&gw, s, a);
    }
    flip(&gw, "shard", "1", true);
    flip(&gw, "session", "r-s0", true);
    flip(&gw, "account", "r-killed-acct", true);
    // A switch turned on and off again must come back off.
    flip(&gw, "global", "", true);
    flip(&gw, "global", "", false);
    let before = kill_switches(gw.http, &ops);
    if graceful {
        gw.terminate();
    } else {
        gw.kill9();
    }
    let mut gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "2")]);
    let after = kill_switches(gw.http, &ops);
    assert_eq!(before, after, "kill switches after the restart");
    assert_eq!(after["sessions"], json!(["r-s0"]));
    assert_eq!(after["accounts"], json!(["r-killed-acct"]));
    assert_eq!(after["shards"][1]["killed"], true);
    assert_killed(&gw, "r-s0", "r-a0", "V3_SESSION_KILLED", 2302);
    // Sessions keep their shard across the restart: r-s1 is on the killed shard 1.
    assert_killed(&gw, "r-s1", "r-a1", "V3_SHARD_KILLED", 2303);
    assert_killed(&gw, "r-s3", "r-a3", "V3_SHARD_KILLED", 2303);
    assert_killed(&gw, "r-acct-s", "r-killed-acct", "V3_ACCOUNT_KILLED", 2304);
    assert_live(&gw, "r-s2", "r-a2");

    // A global switch also survives (the gateway then starts with /health 503).
    flip(&gw, "global", "", true);
    if graceful {
        gw.terminate();
    } else {
        gw.kill9();
    }
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "2")]);
    assert_eq!(kill_switches(gw.http, &ops)["global"], true);
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 503);
    assert_killed(&gw, "r-s2", "r-a2", "V3_GLOBAL_KILLED", 2301);
    flip(&gw, "global", "", false);
    assert_live(&gw, "r-s2", "r-a2");
}

// Goal: kill switches are restored from the journal after a graceful restart (SIGTERM).
#[test]
fn switches_survive_graceful_restart() {
    // Kill switches are restored from the journal after a graceful restart (SIGTERM).
    switches_survive_restart(true);
}

// Goal: kill switches are restored from the journal after kill -9 (durable when the API answered).
#[test]
fn switches_survive_kill9() {
    // Kill switches are restored from the journal after kill -9 (they were durable when the API
    // answered).
    switches_survive_restart(false);
}
