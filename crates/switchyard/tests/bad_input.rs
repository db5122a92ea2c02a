//! Bad HTTP input never crashes the gateway and is always answered with a JSON error body and
//! `Content-Type: application/json`: malformed JSON, unknown/missing/mistyped fields, oversized
//! bodies (declared and chunked), wrong or missing content type, unknown paths, wrong methods.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

const JSON_CT: &str = "Content-Type: application/json\r\n";

fn gateway(dir: &std::path::Path) -> Gateway {
    Gateway::start(dir, &[("V3_SHARD_COUNT", "1")])
}

/// Asserts a body error `{"status":"REJECTED","reason":…}` with the given HTTP status.
fn assert_body_error(r: &HttpResponse, status: u16, reason: &str, what: &str) {
    let v = r.assert_json(what);
    assert_eq!(
        (r.status, v["status"].as_str(), v["reason"].as_str()),
        (status, Some("REJECTED"), Some(reason)),
        "{what}: {}",
        r.body
    );
}

/// The gateway still serves: health is fine and a good order is accepted.
fn still_serving(gw: &Gateway, tok: &str) -> u64 {
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 200);
    assert_accepted(&post_order(gw.http, tok, &good_order()))
}

// Goal: malformed/unknown/missing/mistyped bodies are JSON 400s with their reason; nothing breaks.
#[test]
fn malformed_bodies_are_json_400s() {
    // Malformed, incomplete and mistyped bodies are 400 with INVALID_JSON, UNKNOWN_FIELD,
    // MISSING_FIELD or INVALID_FIELD; none spends a sequence number or stops the gateway.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let tok = token("bad-body");
    let deep = "[".repeat(2000) + &"]".repeat(2000);
    let cases: Vec<(&str, String, &str)> = vec![
        ("truncated", "{".into(), "INVALID_JSON"),
        ("not JSON", "not json".into(), "INVALID_JSON"),
        ("empty body", String::new(), "INVALID_JSON"),
        ("trailing garbage", format!("{} x", good_order()), "INVALID_JSON"),
        ("deeply nested array", deep, "INVALID_FIELD"),
        ("unknown field", r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":100,"account":"x"}"#.into(), "UNKNOWN_FIELD"),
        ("snake_case field", r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":100,"time_in_force":"GTC"}"#.into(), "UNKNOWN_FIELD"),
        ("missing qty", r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","price":100}"#.into(), "MISSING_FIELD"),
        ("missing symbol", r#"{"side":"BUY","type":"LIMIT","qty":1,"price":100}"#.into(), "MISSING_FIELD"),
        ("missing side", r#"{"symbol":"AAPL","type":"LIMIT","qty":1,"price":100}"#.into(), "MISSING_FIELD"),
        ("missing type", r#"{"symbol":"AAPL","side":"BUY","qty":1,"price":100}"#.into(), "MISSING_FIELD"),
        ("empty object", "{}".into(), "MISSING_FIELD"),
        ("symbol is a number", r#"{"symbol":1,"side":"BUY","type":"LIMIT","qty":1,"price":100}"#.into(), "INVALID_FIELD"),
        ("qty is a string", r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":"1","price":100}"#.into(), "INVALID_FIELD"),
        ("price is a bool", r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":1,"price":true}"#.into(), "INVALID_FIELD"),
        ("side is null", r#"{"symbol":"AAPL","side":null,"type":"LIMIT","qty":1,"price":100}"#.into(), "INVALID_FIELD"),
        ("body is an array", "[1,2,3]".into(), "INVALID_FIELD"),
        ("body is a string", r#""order""#.into(), "INVALID_FIELD"),
    ];
    for (what, body, reason) in &cases {
        let r = http_full(
            gw.http,
            &request("POST", "/v3/orders", Some(&tok), JSON_CT, body),
        );
        assert_body_error(&r, 400, reason, what);
    }
    // Invalid UTF-8 inside a string.
    let mut req = request(
        "POST",
        "/v3/orders",
        Some(&tok),
        JSON_CT,
        r#"{"symbol":"AA?L","side":"BUY","type":"LIMIT","qty":1,"price":100}"#,
    );
    let at = req.windows(3).position(|w| w == b"AA?").unwrap() + 2;
    req[at] = 0xff;
    assert_body_error(
        &http_full(gw.http, &req),
        400,
        "INVALID_JSON",
        "invalid UTF-8",
    );
    assert_eq!(
        still_serving(&gw, &tok),
        1,
        "no bad body spent a sequence number"
    );
}

// Goal: bodies over 4 096 bytes are 413 BODY_TOO_LARGE, declared by Content-Length or chunked.
#[test]
fn oversized_bodies_are_413() {
    // Bodies over 4 096 bytes are 413 BODY_TOO_LARGE, whether announced by Content-Length (refused
    // before reading) or arriving chunked (refused when the limit is crossed).
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let tok = token("big-body");
    // Declared too large; the body itself is never sent.
    let head = format!(
        "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n{JSON_CT}Content-Length: 1000000\r\nConnection: close\r\n\r\n"
    );
    assert_body_error(
        &http_full(gw.http, head.as_bytes()),
        413,
        "BODY_TOO_LARGE",
        "Content-Length",
    );
    // Chunked, 3 × 2 000 bytes: the limit is crossed inside the third chunk.
    let chunk = format!("{:x}\r\n{}\r\n", 2000, " ".repeat(2000));
    let req = format!(
        "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n{JSON_CT}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{}",
        chunk.repeat(3)
    );
    assert_body_error(
        &http_full(gw.http, req.as_bytes()),
        413,
        "BODY_TOO_LARGE",
        "chunked",
    );
    // A small chunked body is fine.
    let body = good_order();
    let req = format!(
        "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n{JSON_CT}Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{:x}\r\n{body}\r\n0\r\n\r\n",
        body.len()
    );
    assert_eq!(assert_accepted(&http_full(gw.http, req.as_bytes())), 1);
    // Just at the limit: 4 096 bytes of valid JSON (padded with spaces) is accepted.
    let padded = format!("{}{}", body, " ".repeat(4096 - body.len()));
    assert_eq!(assert_accepted(&post_order(gw.http, &tok, &padded)), 2);
    let r = post_order(gw.http, &tok, &format!("{padded} "));
    assert_body_error(&r, 413, "BODY_TOO_LARGE", "4 097 bytes");
    // Admin bodies have their own (smaller) limit and answer the same way.
    let r = http_full(
        gw.http,
        &request(
            "POST",
            "/v3/admin/kill-switches",
            Some(&ops_token("op")),
            JSON_CT,
            &" ".repeat(5000),
        ),
    );
    assert_body_error(&r, 413, "BODY_TOO_LARGE", "admin body");
    assert_eq!(still_serving(&gw, &tok), 3);
}

// Goal: a body not declared application/json is 415 UNSUPPORTED_MEDIA_TYPE; JSON with params is fine.
#[test]
fn content_type_is_checked() {
    // A body that is not declared as JSON is 415 UNSUPPORTED_MEDIA_TYPE (missing or other content
    // type); `application/json` with parameters or in another case is accepted.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let tok = token("ctype");
    let body = good_order();
    for ct in [
        "",
        "Content-Type: text/plain\r\n",
        "Content-Type: application/x-www-form-urlencoded\r\n",
        "Content-Type: application/jsonx\r\n",
    ] {
        let r = http_full(
            gw.http,
            &request("POST", "/v3/orders", Some(&tok), ct, &body),
        );
        assert_body_error(&r, 415, "UNSUPPORTED_MEDIA_TYPE", ct);
    }
    for ct in [
        "Content-Type: application/json; charset=utf-8\r\n",
        "Content-Type: Application/JSON\r\n",
    ] {
        assert_accepted(&http_full(
            gw.http,
            &request("POST", "/v3/orders", Some(&tok), ct, &body),
        ));
    }
}

// Goal: unknown paths are 404 NOT_FOUND, wrong methods 405 METHOD_NOT_ALLOWED, bad seqs 400, all JSON.
#[test]
fn unknown_paths_and_methods() {
    // Unknown paths are 404 {"error":"NOT_FOUND"} and wrong methods on known paths 405
    // {"error":"METHOD_NOT_ALLOWED"}, all JSON; a malformed confirm path is 400/404 JSON.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let tok = token("paths");
    for (method, path) in [
        ("GET", "/"),
        ("GET", "/nope"),
        ("POST", "/v1/orders"),
        ("GET", "/orders/a/b/c"),
        ("GET", "/accounts/x"),
        ("GET", "/v3/orders/"),
        ("GET", "/v3/orders/paths"),
        ("POST", "/v3/orders/paths"),
        ("GET", "/v3/admin"),
        ("GET", "/health/x"),
        // v2 has no amend, events or streams: nothing there, not a wrong method.
        ("POST", "/v2/orders/x/amend"),
        ("GET", "/v2/orders/x/events"),
        ("GET", "/v2/orders/x/stream"),
        ("GET", "/v2/accounts/paths/events"),
    ] {
        let r = http_full(gw.http, &request(method, path, Some(&tok), JSON_CT, ""));
        let v = r.assert_json(path);
        assert_eq!(
            (r.status, v),
            (404, serde_json::json!({"error": "NOT_FOUND"})),
            "{method} {path}"
        );
    }
    // Every 405 names the methods the path serves in `Allow` (RFC 9110 requires it). Found by
    // the API fuzzing test (api_fuzz.rs, schemathesis' unsupported_method check): 405s had no
    // `Allow`, and other methods on /audit/verify, /audit/anchor,
    // /v3/orders/{sessionId}/{sessionSeq}, /orders/client/{id} and /accounts/{id}/events were
    // 404 (and on v2 paths that do not exist, 405).
    for (method, path, allow) in [
        ("GET", "/v3/orders", "POST"),
        ("PUT", "/v3/orders", "POST"),
        ("DELETE", "/v3/orders", "POST"),
        ("POST", "/v3/orders/paths/1", "GET"),
        ("GET", "/orders", "POST"),
        ("DELETE", "/v2/orders", "POST"),
        ("DELETE", "/orders/ord_0000000000000001", "GET"),
        ("PATCH", "/v2/orders/x", "GET"),
        ("POST", "/orders/client/c-1", "GET"),
        ("POST", "/v2/orders/client/c-1", "GET"),
        ("PUT", "/orders/client/cancel", "GET, POST"),
        ("GET", "/orders/x/cancel", "POST"),
        ("GET", "/v2/orders/x/cancel", "POST"),
        ("GET", "/orders/x/amend", "POST"),
        ("POST", "/orders/x/events", "GET"),
        ("POST", "/orders/x/stream", "GET"),
        ("POST", "/accounts/paths/events", "GET"),
        ("POST", "/health", "GET"),
        ("POST", "/metrics", "GET"),
        ("DELETE", "/stats", "GET"),
        ("POST", "/audit/verify", "GET"),
        ("TRACE", "/audit/anchor", "GET"),
        ("POST", "/stream", "GET"),
        ("PUT", "/v3/admin/kill-switches", "GET, POST"),
        ("POST", "/ui", "GET, HEAD"),
        ("DELETE", "/openapi.yaml", "GET"),
    ] {
        let r = http_full(gw.http, &request(method, path, Some(&tok), JSON_CT, ""));
        let v = r.assert_json(path);
        assert_eq!(
            (r.status, v, r.header("allow")),
            (
                405,
                serde_json::json!({"error": "METHOD_NOT_ALLOWED"}),
                Some(allow)
            ),
            "{method} {path}"
        );
    }
    for (path, status, error) in [
        ("/v3/orders/paths/abc", 400, "INVALID_SESSION_SEQ"),
        ("/v3/orders/paths/-1", 400, "INVALID_SESSION_SEQ"),
        (
            "/v3/orders/paths/99999999999999999999999",
            400,
            "INVALID_SESSION_SEQ",
        ),
        ("/v3/orders/paths/", 400, "INVALID_SESSION_SEQ"),
    ] {
        let r = http_full(gw.http, &request("GET", path, Some(&tok), "", ""));
        let v = r.assert_json(path);
        assert_eq!(
            (r.status, v["error"].as_str()),
            (status, Some(error)),
            "{path}: {}",
            r.body
        );
    }
    assert_eq!(still_serving(&gw, &tok), 1);
}

// Goal: non-HTTP bytes, cut-off requests and mixed keep-alive bursts never take the gateway down.
#[test]
fn protocol_garbage_does_not_crash() {
    // Protocol-level garbage (not HTTP at all, a cut-off request, a huge header, a burst of bad
    // requests on one keep-alive connection) never takes the gateway down.
    let dir = tempfile::tempdir().unwrap();
    let gw = gateway(dir.path());
    let tok = token("garbage");
    // Not HTTP: hyper answers 400 itself (an empty body, see the report) and closes.
    let r = http_full(gw.http, b"GARBAGE\r\n\r\n");
    assert_eq!(r.status, 400);
    let r = http_full(gw.http, &[0u8, 1, 2, 255, 254, b'\r', b'\n', b'\r', b'\n']);
    assert_eq!(r.status, 400);
    // Cut off in the middle of the body, then the client goes away.
    {
        let mut s = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
        let req = request("POST", "/v3/orders", Some(&tok), JSON_CT, &good_order());
        s.write_all(&req[..req.len() - 10]).unwrap();
    }
    // Several requests on one keep-alive connection, bad and good mixed, answered in order.
    let mut s = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let keep = |body: &str| {
        format!(
            "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {tok}\r\n{JSON_CT}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    let burst = [
        keep("{"),
        keep(r#"{"x":1}"#),
        keep(&good_order()),
        keep("[]"),
        keep(&good_order()),
    ];
    s.write_all(burst.concat().as_bytes()).unwrap();
    s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw);
    let statuses: Vec<&str> = text
        .split("HTTP/1.1 ")
        .skip(1)
        .map(|r| r.split(' ').next().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["400", "400", "202", "400", "202", "200"],
        "{text}"
    );
    assert_eq!(
        text.matches("content-type: application/json").count(),
        6,
        "{text}"
    );
    assert_eq!(still_serving(&gw, &tok), 3);
}
