//! The event streams end to end, in process: a gateway started as `server.rs` does (real
//! journal in a temp dir, HTTP on 127.0.0.1:0), events published with `gw.hub.publish`,
//! and real clients reading the bytes: hyper's HTTP/1 client for SSE, tokio-tungstenite for
//! WebSocket. No sleeps: every wait is for a frame or a counter, under a generous timeout
//! that only turns a hang into a failure.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use switchyard_gateway::state::Gateway;
use switchyard_gateway::stream::{sse_response, Filter};
use switchyard_gateway::{Config, Server};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "stream-test-secret";
const WAIT: Duration = Duration::from_secs(20);

struct Running {
    server: Option<Server>,
    _dir: tempfile::TempDir,
}

impl Running {
    fn gw(&self) -> &Arc<Gateway> {
        &self.server.as_ref().unwrap().gw
    }

    fn addr(&self) -> std::net::SocketAddr {
        self.server.as_ref().unwrap().http_addr
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.server.take() {
            // Stop the engines and the journal; streams end with the hub.
            let _ = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(s.shutdown())
            });
        }
    }
}

async fn start(extra: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut env: Vec<(String, String)> = [
        ("GATEWAY_HOST", "127.0.0.1"),
        ("GATEWAY_PORT", "0"),
        ("JWT_HS256_SECRET", SECRET),
        ("V3_SHARD_COUNT", "1"),
        ("AUDIT_FDATASYNC", "false"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    env.push((
        "GATEWAY_JOURNAL_DIR".into(),
        dir.path().display().to_string(),
    ));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let cfg = Config::load(None, env).unwrap();
    let server = switchyard_gateway::start(cfg).await.unwrap();
    Running {
        server: Some(server),
        _dir: dir,
    }
}

fn token(account: &str) -> String {
    switchyard_auth::mint_dev(SECRET, account, 3_600, None)
}

/// One request on a fresh connection with hyper's client.
async fn request(
    addr: std::net::SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> Response<Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    request_on(tcp, method, path, headers).await
}

async fn request_on(
    tcp: TcpStream,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
) -> Response<Incoming> {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    sender
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .unwrap()
}

async fn body_json(r: Response<Incoming>) -> Value {
    let b = r.into_body().collect().await.unwrap().to_bytes();
    serde_json::from_slice(&b).unwrap()
}

/// One SSE message: a comment, or an event with optional id.
#[derive(Debug, Clone, PartialEq)]
enum Sse {
    Comment(String),
    Event {
        id: Option<u64>,
        event: String,
        data: Value,
    },
}

impl Sse {
    fn id(&self) -> Option<u64> {
        match self {
            Sse::Event { id, .. } => *id,
            Sse::Comment(_) => None,
        }
    }

    fn name(&self) -> &str {
        match self {
            Sse::Event { event, .. } => event,
            Sse::Comment(_) => ":",
        }
    }

    fn data(&self) -> &Value {
        match self {
            Sse::Event { data, .. } => data,
            Sse::Comment(_) => &Value::Null,
        }
    }
}

/// Reads an SSE body and splits it into messages at blank lines, whatever the chunking.
struct SseReader {
    body: Incoming,
    buf: Vec<u8>,
}

impl SseReader {
    fn new(r: Response<Incoming>) -> SseReader {
        assert_eq!(r.status(), StatusCode::OK);
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        assert_eq!(r.headers()["cache-control"], "no-cache");
        SseReader {
            body: r.into_body(),
            buf: Vec::new(),
        }
    }

    /// The next message; `None` when the stream ended.
    async fn next(&mut self) -> Option<Sse> {
        tokio::time::timeout(WAIT, self.next_inner())
            .await
            .expect("no SSE message in time")
    }

    async fn next_inner(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n\n") {
                let msg: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Some(parse_sse(&msg[..end]));
            }
            match self.body.frame().await {
                Some(Ok(f)) => {
                    if let Ok(d) = f.into_data() {
                        self.buf.extend_from_slice(&d);
                    }
                }
                Some(Err(e)) => panic!("body error: {e}"),
                None => {
                    assert!(self.buf.is_empty(), "partial message at the end");
                    return None;
                }
            }
        }
    }

    /// The next message that is not a keep-alive comment.
    async fn event(&mut self) -> Sse {
        loop {
            match self.next().await.expect("stream ended") {
                Sse::Comment(_) => continue,
                e => return e,
            }
        }
    }
}

fn parse_sse(msg: &[u8]) -> Sse {
    let text = std::str::from_utf8(msg).unwrap();
    if let Some(c) = text.strip_prefix(':') {
        return Sse::Comment(c.trim().to_string());
    }
    let (mut id, mut event, mut data) = (None, String::new(), Vec::new());
    for line in text.lines() {
        let (k, v) = line.split_once(": ").unwrap_or((line, ""));
        match k {
            "id" => id = Some(v.parse().unwrap()),
            "event" => event = v.to_string(),
            "data" => data.push(v.to_string()),
            other => panic!("unexpected SSE field {other:?} in {text:?}"),
        }
    }
    Sse::Event {
        id,
        event,
        data: serde_json::from_str(&data.join("\n")).unwrap(),
    }
}

async fn open_stream(addr: std::net::SocketAddr, account: &str, last: Option<u64>) -> SseReader {
    let mut h = vec![("authorization", format!("Bearer {}", token(account)))];
    if let Some(n) = last {
        h.push(("last-event-id", n.to_string()));
    }
    let mut r = SseReader::new(request(addr, "GET", "/stream", &h).await);
    let ready = r.event().await;
    assert_eq!(
        ready,
        Sse::Event {
            id: None,
            event: "ready".into(),
            data: json!({ "accountId": account }),
        }
    );
    r
}

fn publish(gw: &Gateway, account: &str, order: Option<&str>, name: &'static str, n: u64) {
    gw.hub.publish(
        account,
        order,
        name,
        Bytes::from(json!({ "n": n, "orderId": order }).to_string()),
    );
}

/// Reads `n` events (skipping keep-alives).
async fn events(r: &mut SseReader, n: usize) -> Vec<Sse> {
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        out.push(r.event().await);
    }
    out
}

fn ids(v: &[Sse]) -> Vec<u64> {
    v.iter().map(|e| e.id().expect("an id")).collect()
}

// Goal: GET /stream delivers the token account's events live, in publish order, with
// increasing ids, and nothing of other accounts; the hub's metrics show on /metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_live_delivery_in_order() {
    let g = start(&[]).await;
    let mut alice = open_stream(g.addr(), "alice", None).await;
    for i in 0..50 {
        publish(g.gw(), "alice", Some("o1"), "order_update", i);
        publish(g.gw(), "bob", None, "order_update", 1_000 + i);
    }
    publish(g.gw(), "alice", None, "execution_report", 50);
    let got = events(&mut alice, 51).await;
    let ns: Vec<u64> = got
        .iter()
        .map(|e| e.data()["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, (0..=50).collect::<Vec<_>>());
    assert!(ids(&got).windows(2).all(|w| w[0] < w[1]));
    assert_eq!(got[0].name(), "order_update");
    assert_eq!(got[50].name(), "execution_report");

    let m = request(g.addr(), "GET", "/metrics", &[]).await;
    let text =
        String::from_utf8(m.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    for line in [
        "gateway_sse_clients{scope=\"account\"} 1",
        "gateway_sse_events_published_total 101",
        "gateway_sse_dropped_total 0",
        "gateway_sse_delivery_delay_count 51",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?}");
    }
    assert!(text.contains("gateway_sse_delivery_delay_p99_us "));
}

// Goal: reconnecting with Last-Event-ID n replays exactly the events after n, then live
// ones follow: no gap, no duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_last_event_id_replays_exactly() {
    let g = start(&[]).await;
    let mut witness = open_stream(g.addr(), "alice", None).await;
    for i in 0..10 {
        publish(g.gw(), "alice", Some("o1"), "order_update", i);
    }
    let first = ids(&events(&mut witness, 10).await);
    let mut again = open_stream(g.addr(), "alice", Some(first[4])).await;
    let replayed = events(&mut again, 5).await;
    assert_eq!(ids(&replayed), first[5..]);
    assert_eq!(replayed[0].data()["n"], 5);
    for i in 10..13 {
        publish(g.gw(), "alice", None, "order_durable", i);
    }
    let live = ids(&events(&mut witness, 3).await);
    assert_eq!(ids(&events(&mut again, 3).await), live);
    // Up to date: live only.
    let mut current = open_stream(g.addr(), "alice", Some(live[2])).await;
    publish(g.gw(), "alice", None, "order_update", 13);
    let next = events(&mut current, 1).await;
    assert_eq!(next[0].data()["n"], 13);
    assert!(next[0].id().unwrap() > live[2]);
}

// Goal: a client further behind than the account ring gets `resync_required` (no id, the
// reference's fields) and then live events only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_resync_when_too_far_behind() {
    let g = start(&[("SSE_BUFFER_SIZE", "4")]).await;
    let mut witness = open_stream(g.addr(), "alice", None).await;
    for i in 0..10 {
        publish(g.gw(), "alice", None, "order_update", i);
    }
    let id = ids(&events(&mut witness, 10).await);
    let mut late = open_stream(g.addr(), "alice", Some(id[1])).await;
    let r = late.event().await;
    assert_eq!(
        r,
        Sse::Event {
            id: None,
            event: "resync_required".into(),
            data: json!({
                "scope": "account", "id": "alice", "lastEventId": id[1],
                "oldestAvailableId": id[6], "eventsEndpoint": "/accounts/alice/events"
            }),
        }
    );
    publish(g.gw(), "alice", None, "order_update", 10);
    let next = late.event().await;
    assert_eq!(next.data()["n"], 10, "live, not replay: {next:?}");
}

// Goal: an idle stream carries `: keep-alive` comments every SSE_KEEPALIVE_SEC and keeps
// delivering events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sse_keepalive_comments_arrive() {
    let g = start(&[("SSE_KEEPALIVE_SEC", "0.05")]).await;
    let mut s = open_stream(g.addr(), "alice", None).await;
    for _ in 0..2 {
        assert_eq!(s.next().await, Some(Sse::Comment("keep-alive".into())));
    }
    publish(g.gw(), "alice", None, "order_update", 1);
    assert_eq!(s.event().await.data()["n"], 1);
}

// Goal: a client that stops reading is cut off once its queue is full (counted), gets a
// final resync_required telling the last id it was sent, and its stream ends; a client
// reading at the same time receives every event, in order, without a resync.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_consumer_is_cut_off_while_others_keep_receiving() {
    let g = start(&[
        ("SSE_CLIENT_QUEUE_CAPACITY", "8"),
        ("SSE_CLIENT_QUEUE_MAX_BYTES", "65536"),
    ])
    .await;
    // The slow client: a small receive buffer, and its body is not read until the end.
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(4096).unwrap();
    let tcp = sock.connect(g.addr()).await.unwrap();
    let h = [("authorization", format!("Bearer {}", token("alice")))];
    let mut slow = SseReader::new(request_on(tcp, "GET", "/stream", &h).await);
    let mut fast = open_stream(g.addr(), "alice", None).await;
    let pad = "x".repeat(8_000);
    let m = &g.gw().metrics.sse;
    let mut sent = Vec::new();
    // Lock-step with the fast client, so only the slow one can fall behind.
    for i in 0..20_000u64 {
        g.gw().hub.publish(
            "alice",
            None,
            "order_update",
            Bytes::from(json!({ "n": i, "pad": pad }).to_string()),
        );
        let e = fast.event().await;
        assert_eq!(e.data()["n"], i);
        sent.push(e.id().unwrap());
        if m.slow_consumer_disconnects.load(Ordering::Relaxed) > 0 {
            break;
        }
    }
    assert_eq!(m.slow_consumer_disconnects.load(Ordering::Relaxed), 1);
    // The slow client now reads: ready, a prefix of the events, the final notice, the end.
    assert_eq!(slow.event().await.name(), "ready");
    let mut got = Vec::new();
    let last = loop {
        let e = slow.event().await;
        if e.name() == "resync_required" {
            break e;
        }
        got.push(e.id().unwrap());
    };
    assert_eq!(got, sent[..got.len()], "a prefix, in order");
    assert_eq!(last.id(), None);
    assert_eq!(last.data()["reason"], "SLOW_CONSUMER");
    assert_eq!(last.data()["lastEventId"], *got.last().unwrap());
    assert_eq!(slow.next().await, None, "the stream ends after the notice");
    // The fast client is unaffected.
    publish(g.gw(), "alice", None, "order_update", 99_999);
    assert_eq!(fast.event().await.data()["n"], 99_999);
    assert_eq!(m.dropped.load(Ordering::Relaxed), 0);
}

async fn ws_connect(
    addr: std::net::SocketAddr,
    path_and_query: &str,
    bearer: Option<&str>,
) -> tokio_tungstenite::WebSocketStream<TcpStream> {
    let mut req = format!("ws://{addr}{path_and_query}")
        .into_client_request()
        .unwrap();
    if let Some(t) = bearer {
        req.headers_mut()
            .insert("authorization", format!("Bearer {t}").parse().unwrap());
    }
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (ws, resp) = tokio_tungstenite::client_async(req, tcp).await.unwrap();
    assert_eq!(resp.status(), StatusCode::SWITCHING_PROTOCOLS);
    ws
}

/// The next text message as JSON (answering nothing, skipping server pings).
async fn ws_json(ws: &mut tokio_tungstenite::WebSocketStream<TcpStream>) -> Value {
    loop {
        let m = tokio::time::timeout(WAIT, ws.next())
            .await
            .expect("no WebSocket message in time")
            .expect("WebSocket ended")
            .unwrap();
        match m {
            Message::Text(t) => return serde_json::from_str(&t).unwrap(),
            Message::Ping(_) | Message::Pong(_) => continue,
            other => panic!("unexpected {other:?}"),
        }
    }
}

// Goal: GET /ws carries the same events as SSE (same ids, names, data) as JSON text
// messages, with the token in the header or the query; lastEventId replays; pings are
// answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_receives_the_same_events() {
    let g = start(&[]).await;
    let mut sse = open_stream(g.addr(), "alice", None).await;
    let t = token("alice");
    let mut by_header = ws_connect(g.addr(), "/ws", Some(&t)).await;
    let mut by_query = ws_connect(g.addr(), &format!("/ws?token={t}"), None).await;
    let mut narrow = ws_connect(g.addr(), &format!("/ws?token={t}&orderId=o2"), None).await;
    for ws in [&mut by_header, &mut by_query] {
        assert_eq!(
            ws_json(ws).await,
            json!({"event": "ready", "data": {"accountId": "alice"}})
        );
    }
    assert_eq!(
        ws_json(&mut narrow).await,
        json!({"event": "ready", "data": {"orderId": "o2"}})
    );
    for i in 0..5 {
        let order = if i == 3 { "o2" } else { "o1" };
        publish(g.gw(), "alice", Some(order), "order_update", i);
    }
    publish(g.gw(), "bob", Some("o2"), "order_update", 7);
    let from_sse = events(&mut sse, 5).await;
    let want: Vec<Value> = from_sse
        .iter()
        .map(|e| json!({"id": e.id().unwrap(), "event": e.name(), "data": e.data()}))
        .collect();
    for ws in [&mut by_header, &mut by_query] {
        let mut got = Vec::new();
        for _ in 0..5 {
            got.push(ws_json(ws).await);
        }
        assert_eq!(got, want);
    }
    assert_eq!(ws_json(&mut narrow).await, want[3]);

    // Ping → pong.
    by_header
        .send(Message::Ping(Bytes::from_static(b"hi")))
        .await
        .unwrap();
    let pong = loop {
        match tokio::time::timeout(WAIT, by_header.next()).await.unwrap() {
            Some(Ok(Message::Pong(p))) => break p,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a pong, got {other:?}"),
        }
    };
    assert_eq!(&pong[..], b"hi");

    // Replay from the query's lastEventId.
    let n = want[1]["id"].as_u64().unwrap();
    let mut replay = ws_connect(g.addr(), &format!("/ws?token={t}&lastEventId={n}"), None).await;
    assert_eq!(ws_json(&mut replay).await["event"], "ready");
    for w in &want[2..] {
        assert_eq!(&ws_json(&mut replay).await, w);
    }
}

// Goal: no token → 401 on both endpoints; a bad Last-Event-ID → 400; a plain GET on /ws →
// 426; a wrong method → 405.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals() {
    let g = start(&[]).await;
    let r = request(g.addr(), "GET", "/stream", &[]).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert!(body_json(r).await["error"].is_string());
    let upgrade = [
        ("connection", "Upgrade".to_string()),
        ("upgrade", "websocket".to_string()),
        ("sec-websocket-version", "13".to_string()),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==".to_string()),
    ];
    let r = request(g.addr(), "GET", "/ws", &upgrade).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let r = request(g.addr(), "GET", "/ws?token=not.a.token", &upgrade).await;
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let auth = ("authorization", format!("Bearer {}", token("alice")));
    let r = request(
        g.addr(),
        "GET",
        "/stream",
        &[auth.clone(), ("last-event-id", "abc".into())],
    )
    .await;
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body_json(r).await,
        json!({"error": "INVALID_LAST_EVENT_ID"})
    );
    let r = request(g.addr(), "GET", "/ws", std::slice::from_ref(&auth)).await;
    assert_eq!(r.status(), StatusCode::UPGRADE_REQUIRED);
    let r = request(g.addr(), "POST", "/stream", &[auth]).await;
    assert_eq!(r.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(g.gw().hub.clients(), 0);
}

// Goal: SSE_MAX_CLIENTS bounds SSE and WebSocket streams together: 503 TOO_MANY_STREAMS.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn too_many_streams() {
    let g = start(&[("SSE_MAX_CLIENTS", "2")]).await;
    let _a = open_stream(g.addr(), "alice", None).await;
    let _b = ws_connect(g.addr(), &format!("/ws?token={}", token("bob")), None).await;
    let h = [("authorization", format!("Bearer {}", token("carol")))];
    let r = request(g.addr(), "GET", "/stream", &h).await;
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body_json(r).await, json!({"error": "TOO_MANY_STREAMS"}));
    let req = format!("ws://{}/ws?token={}", g.addr(), token("carol"));
    let tcp = TcpStream::connect(g.addr()).await.unwrap();
    match tokio_tungstenite::client_async(req, tcp).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(r)) => {
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE)
        }
        other => panic!("expected 503, got {other:?}"),
    }
    assert_eq!(g.gw().metrics.sse.refused.load(Ordering::Relaxed), 2);
}

// Goal: `sse_response` with `Filter::Order` and a caller-supplied snapshot (how
// GET /orders/{id}/stream is built): ready, the snapshot, then only that order's events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_stream_with_snapshot_first() {
    let g = start(&[]).await;
    let filter = Filter::Order {
        account: "alice".into(),
        order_id: "o1".into(),
    };
    let snapshot = Bytes::from(json!({"orderId": "o1", "status": "ACCEPTED"}).to_string());
    let r = sse_response(g.gw(), filter, None, Some(("order_snapshot", snapshot)));
    let (parts, mut body) = r.into_parts();
    assert_eq!(parts.headers["content-type"], "text/event-stream");
    assert_eq!(
        next_frame(&mut body).await,
        Sse::Event {
            id: None,
            event: "ready".into(),
            data: json!({"orderId": "o1"})
        }
    );
    assert_eq!(
        next_frame(&mut body).await,
        Sse::Event {
            id: None,
            event: "order_snapshot".into(),
            data: json!({"orderId": "o1", "status": "ACCEPTED"})
        }
    );
    publish(g.gw(), "alice", Some("o2"), "order_update", 1);
    publish(g.gw(), "bob", Some("o1"), "order_update", 2);
    publish(g.gw(), "alice", Some("o1"), "order_durable", 3);
    let e = next_frame(&mut body).await;
    assert_eq!(
        (e.name(), e.data()["n"].as_u64()),
        ("order_durable", Some(3))
    );
    assert!(e.id().is_some());
}

/// The next frame of a body built in process, as one SSE message.
async fn next_frame(body: &mut switchyard_gateway::http::Body) -> Sse {
    let f = tokio::time::timeout(WAIT, body.frame()).await.unwrap();
    let d = f.unwrap().unwrap().into_data().unwrap();
    parse_sse(
        std::str::from_utf8(&d)
            .unwrap()
            .trim_end_matches('\n')
            .as_bytes(),
    )
}

// Goal: graceful shutdown ends open SSE streams (the body completes) and closes WebSockets
// with 1001, and does not hang on them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_streams() {
    let mut g = start(&[]).await;
    let mut sse = open_stream(g.addr(), "alice", None).await;
    let mut ws = ws_connect(g.addr(), &format!("/ws?token={}", token("alice")), None).await;
    assert_eq!(ws_json(&mut ws).await["event"], "ready");
    let server = g.server.take().unwrap();
    tokio::time::timeout(WAIT, server.shutdown())
        .await
        .expect("shutdown hung")
        .unwrap();
    assert_eq!(sse.next().await, None);
    let close = loop {
        match tokio::time::timeout(WAIT, ws.next()).await.unwrap() {
            Some(Ok(Message::Close(c))) => break c,
            Some(Ok(Message::Ping(_))) => continue,
            other => panic!("expected a close, got {other:?}"),
        }
    };
    assert_eq!(close.map(|c| u16::from(c.code)), Some(1001), "going away");
}

/// `POST` with a JSON body on a fresh connection.
async fn post_json(
    addr: std::net::SocketAddr,
    path: &str,
    headers: &[(&str, String)],
    body: &str,
) -> Response<Incoming> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .unwrap();
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("host", "localhost")
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, v);
    }
    let body = http_body_util::Full::new(Bytes::from(body.to_string()));
    sender.send_request(req.body(body).unwrap()).await.unwrap()
}

// Goal: real orders drive the streams — a durable-path order shows up on the account stream as
// `order_update` (ACCEPTED) then `order_durable`, its own stream starts with an
// `order_snapshot`, a cancel streams CANCEL_REQUESTED then CANCELED on both, and reconnecting
// with Last-Event-ID replays exactly what followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_drive_the_streams() {
    let g = start(&[]).await;
    let auth = vec![("authorization", format!("Bearer {}", token("trader")))];
    let mut account = open_stream(g.addr(), "trader", None).await;
    let mut h = auth.clone();
    h.push(("idempotency-key", "s-1".into()));
    let r = post_json(
        g.addr(),
        "/orders",
        &h,
        r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":2,"price":100}"#,
    )
    .await;
    assert_eq!(r.status(), 202);
    let order_id = body_json(r).await["orderId"].as_str().unwrap().to_string();
    let first = events(&mut account, 2).await;
    assert_eq!(first[0].name(), "order_update");
    assert_eq!(first[0].data()["status"], "ACCEPTED");
    assert_eq!(first[0].data()["orderId"], order_id.as_str());
    assert_eq!(first[1].name(), "order_durable");
    assert_eq!(first[1].data()["eventType"], "OrderAccepted");
    assert_eq!(first[1].data()["orderId"], order_id.as_str());

    let mut order = SseReader::new(
        request(
            g.addr(),
            "GET",
            &format!("/orders/{order_id}/stream"),
            &auth,
        )
        .await,
    );
    assert_eq!(order.event().await.name(), "ready");
    let snap = order.event().await;
    assert_eq!(snap.name(), "order_snapshot");
    assert_eq!(snap.data()["durable"], true);
    // Another account cannot open it.
    let other = vec![("authorization", format!("Bearer {}", token("intruder")))];
    let r = request(
        g.addr(),
        "GET",
        &format!("/orders/{order_id}/stream"),
        &other,
    )
    .await;
    assert_eq!(r.status(), 404);

    let r = post_json(g.addr(), &format!("/orders/{order_id}/cancel"), &auth, "").await;
    assert_eq!(r.status(), 202);
    for stream in [&mut account, &mut order] {
        let upd = events(stream, 2).await;
        let statuses: Vec<&str> = upd
            .iter()
            .map(|e| e.data()["status"].as_str().unwrap())
            .collect();
        assert_eq!(statuses, ["CANCEL_REQUESTED", "CANCELED"]);
    }

    // Reconnect after the first event: exactly the three that followed, in order.
    let from = first[0].id().unwrap();
    let mut again = open_stream(g.addr(), "trader", Some(from)).await;
    let replay = events(&mut again, 3).await;
    assert_eq!(
        replay.iter().map(|e| e.name()).collect::<Vec<_>>(),
        ["order_durable", "order_update", "order_update"]
    );
    assert_eq!(replay[0].id(), first[1].id());
    assert!(ids(&replay).windows(2).all(|w| w[0] < w[1]));
}
