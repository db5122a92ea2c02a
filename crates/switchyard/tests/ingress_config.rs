//! Configuration at the edges: the ingress switches (`V3_HTTP_INGRESS_ENABLE`,
//! `V3_HTTP_CONFIRM_ENABLE`, `V3_HTTP_ENABLE`, `V3_TCP_ENABLE`) and startup refusing bad
//! environment values and unknown TOML keys with a message that names them.

mod common;

use std::net::TcpStream;

use common::*;

fn probe(gw: &Gateway) -> (HttpResponse, HttpResponse) {
    let tok = token("sw");
    let post = post_order(gw.http, &tok, &good_order());
    let get = http_full(
        gw.http,
        &request("GET", "/v3/orders/sw/1", Some(&tok), "", ""),
    );
    (post, get)
}

fn assert_not_found(r: &HttpResponse) {
    let v = r.assert_json("switched off");
    assert_eq!(
        (r.status, v),
        (404, serde_json::json!({"error": "NOT_FOUND"}))
    );
}

// Goal: V3_HTTP_INGRESS_ENABLE=false makes POST /v3/orders 404 JSON; confirm and TCP stay.
#[test]
fn http_ingress_switch() {
    // V3_HTTP_INGRESS_ENABLE=false removes POST /v3/orders (404 JSON) but keeps the confirm query
    // and TCP ingress.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_HTTP_INGRESS_ENABLE", "false")]);
    let (post, _) = probe(&gw);
    assert_not_found(&post);
    let r = tcp_one(gw.tcp, frame(&token("sw"), "AAPL", 1, 1, 1, 100));
    assert_eq!((r.kind, r.session_seq), (KIND_ACCEPT, 1));
    wait_confirm(gw.http, &token("sw"), "sw", 1, "DURABLE_ACCEPTED");
}

// Goal: V3_HTTP_CONFIRM_ENABLE=false makes GET /v3/orders/{s}/{n} 404 JSON; POST stays.
#[test]
fn http_confirm_switch() {
    // V3_HTTP_CONFIRM_ENABLE=false removes GET /v3/orders/{s}/{n} (404 JSON) but keeps POST
    // /v3/orders.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_HTTP_CONFIRM_ENABLE", "0")]);
    let (post, get) = probe(&gw);
    assert_accepted(&post);
    assert_not_found(&get);
}

// Goal: V3_HTTP_ENABLE=false removes both v3 HTTP routes; health, admin and TCP stay.
#[test]
fn http_umbrella_switch() {
    // V3_HTTP_ENABLE=false removes both v3 HTTP routes; /health, /metrics, the admin API and TCP
    // ingress remain.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_HTTP_ENABLE", "off")]);
    let (post, get) = probe(&gw);
    assert_not_found(&post);
    assert_not_found(&get);
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 200);
    assert_eq!(kill_switches(gw.http, &ops_token("op"))["global"], false);
    let r = tcp_one(gw.tcp, frame(&token("sw"), "AAPL", 1, 1, 1, 100));
    assert_eq!(r.kind, KIND_ACCEPT);
}

// Goal: V3_TCP_ENABLE=false leaves the v3 TCP port closed (connection refused); HTTP works.
#[test]
fn tcp_switch() {
    // V3_TCP_ENABLE=false leaves the TCP port closed (connections refused); HTTP works.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_TCP_ENABLE", "false")]);
    let err = TcpStream::connect(("127.0.0.1", gw.tcp))
        .expect_err("the v3 TCP port accepted a connection");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionRefused, "{err}");
    assert_accepted(&probe(&gw).0);
}

// Goal: a bad environment value stops startup with a non-zero exit and a message naming the variable.
#[test]
fn bad_env_values_stop_startup() {
    // A bad environment value stops startup (non-zero exit) with a message naming the variable —
    // unparsable numbers and booleans, out-of-range and inconsistent values.
    for (var, value) in [
        ("V3_SHARD_COUNT", "abc"),
        ("V3_SHARD_COUNT", "0"),
        ("GATEWAY_PORT", "99999"),
        ("V3_TCP_ENABLE", "maybe"),
        ("V3_INGRESS_QUEUE_CAPACITY", "8"),
        ("V3_SOFT_REJECT_PCT", "100"),
        ("V3_HARD_REJECT_PCT", "50"),
        ("V3_KILL_REJECT_PCT", "101"),
        ("V3_KILL_RECOVER_PCT", "95"),
        ("V3_DURABLE_HARD_REJECT_PCT", "10"),
        ("V3_DURABILITY_QUEUE_CAPACITY", "0"),
        ("V3_LOSS_SCAN_INTERVAL_MS", "5"),
        ("V3_ENGINE_BATCH_MAX", "0"),
        ("V3_SEQ_RESTART_GAP", "10"),
        ("V3_RISK_SYMBOL_LIMITS", "AAPL:x"),
        ("V3_RISK_SYMBOL_LIMITS", "AAPL,AAPL"),
        ("V3_RISK_SYMBOL_PRICE_BANDS", "ZZZZ:1:2"),
        ("V3_RISK_SYMBOL_COLLARS", "AAPL:1"),
        ("RISK_ALLOWED_SIDES", "BUY|HOLD"),
        ("RISK_RATE_PER_SEC", "-1"),
        ("JWT_CLOCK_SKEW_SEC", "soon"),
        ("JWT_HS256_KEYS", "k1"),
        ("AUDIT_FDATASYNC", "sometimes"),
    ] {
        let stderr = startup_error(None, &[(var, value)]);
        assert!(
            stderr.contains(var),
            "{var}={value}: stderr does not name it: {stderr}"
        );
    }
    // V3_TCP_ENABLE=true without a port is refused rather than silently ignored.
    let stderr = startup_error(None, &[("V3_TCP_ENABLE", "true")]);
    assert!(stderr.contains("V3_TCP_PORT"), "{stderr}");
}

// Goal: an unknown or mistyped TOML key stops startup with a message naming the key.
#[test]
fn bad_toml_stops_startup() {
    // An unknown TOML key — top-level section, field, per-account field — or a mistyped value stops
    // startup with a message naming the key.
    let cfg = tempfile::tempdir().unwrap();
    for (toml, name) in [
        ("[v3]\nshard_cout = 2\n", "shard_cout"),
        ("[gatewy]\nport = 1\n", "gatewy"),
        ("[risk.accounts.bob]\nmax_qtty = 2\n", "max_qtty"),
        ("colour = \"blue\"\n", "colour"),
        ("[v3]\nshard_count = \"four\"\n", "shard_count"),
    ] {
        let path = cfg.path().join("bad.toml");
        std::fs::write(&path, toml).unwrap();
        let stderr = startup_error(Some(&path), &[]);
        assert!(
            stderr.contains(name),
            "{toml:?}: stderr does not name {name}: {stderr}"
        );
    }
    // A missing file is an error too, naming the file.
    let missing = cfg.path().join("missing.toml");
    let stderr = startup_error(Some(&missing), &[]);
    assert!(stderr.contains("missing.toml"), "{stderr}");
    // A good file works (and environment variables override it).
    let path = cfg.path().join("good.toml");
    std::fs::write(&path, "[v3]\nshard_count = 3\n[risk]\nmax_order_qty = 5\n").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start_with_config(dir.path(), Some(&path), &[("MAX_ORDER_QTY", "7")]);
    let tok = token("toml");
    assert_accepted(&post_order(
        gw.http,
        &tok,
        &order_body("AAPL", "BUY", "LIMIT", 7, Some(1)),
    ));
    let r = post_order(
        gw.http,
        &tok,
        &order_body("AAPL", "BUY", "LIMIT", 8, Some(1)),
    );
    assert_refused(&r, 422, "REJECTED", "INVALID_QTY");
    let ks = kill_switches(gw.http, &ops_token("op"));
    assert_eq!(ks["shards"].as_array().unwrap().len(), 3, "{ks}");
}

// Goal: GATEWAY_METRICS_TOKEN protects /metrics and /stats (X-Metrics-Token as the reference,
// or a bearer token as Prometheus sends it); /health stays open; without it all is open.
#[test]
fn metrics_token() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[("GATEWAY_METRICS_TOKEN", "scrape-me")]);
    let get = |path: &str, header: &str| {
        http_full(
            g.http,
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n{header}Connection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    for path in ["/metrics", "/stats"] {
        let r = get(path, "");
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        assert_eq!(r.json()["error"], "INVALID_METRICS_TOKEN");
        assert_eq!(get(path, "X-Metrics-Token: wrong\r\n").status, 401);
        assert_eq!(get(path, "X-Metrics-Token: scrape-me\r\n").status, 200);
        assert_eq!(get(path, "Authorization: Bearer scrape-me\r\n").status, 200);
    }
    assert_eq!(get("/health", "").status, 200);
    let open = tempfile::tempdir().unwrap();
    let g2 = Gateway::start(open.path(), &[]);
    assert_eq!(http_get(g2.http, "/metrics", None).unwrap().0, 200);
}
