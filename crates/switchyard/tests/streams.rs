//! The event streams through the real binary: authentication, the SSE head and keep-alives,
//! the stream limit, and a graceful shutdown that ends open streams cleanly. (Replay, resync,
//! slow consumers and WebSocket need events published in process: they are tested in
//! `crates/gateway/tests/streams.rs`.)

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Reads from `s` until `buf` contains every needle (or panics on EOF / timeout).
fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, needles: &[&str]) {
    let mut chunk = [0u8; 4096];
    while !needles
        .iter()
        .all(|n| String::from_utf8_lossy(buf).contains(n))
    {
        let n = s.read(&mut chunk).expect("read (timeout?)");
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

// Goal: GET /stream answers 401 without a token; with one it streams `ready` and keep-alive
// comments as text/event-stream; SSE_MAX_CLIENTS gives 503 TOO_MANY_STREAMS; SIGTERM ends
// the open stream with the final chunk and the gateway exits cleanly.
#[test]
fn sse_stream_through_the_binary() {
    let dir = tempfile::tempdir().unwrap();
    let mut g = Gateway::start(
        dir.path(),
        &[("SSE_KEEPALIVE_SEC", "0.05"), ("SSE_MAX_CLIENTS", "1")],
    );
    let (code, body) = http_get(g.http, "/stream", None).unwrap();
    assert_eq!(code, 401, "{body}");

    let mut s = TcpStream::connect(("127.0.0.1", g.http)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
        token("alice")
    )
    .unwrap();
    let mut buf = Vec::new();
    read_until(
        &mut s,
        &mut buf,
        &[
            "event: ready\ndata: {\"accountId\":\"alice\"}\n\n",
            ": keep-alive\n\n",
        ],
    );
    let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 200"), "{text}");
    assert!(text.contains("content-type: text/event-stream"), "{text}");
    assert!(text.contains("cache-control: no-cache"), "{text}");
    assert!(text.contains("transfer-encoding: chunked"), "{text}");

    let (code, body) = http_get(g.http, "/stream", Some(&token("bob"))).unwrap();
    assert_eq!(
        (code, json(&body)["error"].as_str()),
        (503, Some("TOO_MANY_STREAMS"))
    );
    let (_, metrics) = http_get(g.http, "/metrics", None).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "gateway_sse_clients{scope=\"account\"} 1"),
        "{metrics}"
    );

    g.terminate();
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    buf.extend_from_slice(&rest);
    assert!(
        buf.ends_with(b"\r\n0\r\n\r\n"),
        "the stream ends with the last chunk: {:?}",
        String::from_utf8_lossy(&buf[buf.len().saturating_sub(80)..])
    );
}
