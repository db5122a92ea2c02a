//! Helpers shared by the integration tests: run the real `switchyard` binary on free ports and
//! speak raw HTTP/1.1 and raw v3 frames to it.
#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use switchyard_protocol::v3frame::{encode_request, RequestFields, Response, RESPONSE_LEN};

pub const SECRET: &str = "integration-test-secret";

/// A port nothing listens on now. Ports are never handed out twice in one test process: the
/// kernel may return a port again once its probe socket is closed, and two gateways started in
/// parallel on the same port would have one fail to bind while its test talks to the other.
pub fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

pub struct Gateway {
    pub child: Child,
    pub http: u16,
    pub tcp: u16,
}

impl Gateway {
    /// Starts `switchyard gateway` on the journal `dir` with extra environment.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        Gateway::start_with_config(dir, None, env)
    }

    /// Like `start`, with a TOML file passed as `switchyard --config <file> gateway`.
    pub fn start_with_config(dir: &Path, config: Option<&Path>, env: &[(&str, &str)]) -> Gateway {
        let (http, tcp) = (free_port(), free_port());
        let mut cmd = Gateway::command(dir, config, http, tcp);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn switchyard");
        let mut g = Gateway { child, http, tcp };
        g.wait_ready();
        g
    }

    /// The `switchyard gateway` command the tests run: a clean environment, the given ports and
    /// journal, and the test profile below; callers add their own variables (later ones win).
    pub fn command(dir: &Path, config: Option<&Path>, http: u16, tcp: u16) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        cmd.arg("gateway")
            .env_clear()
            .env("GATEWAY_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", http.to_string())
            .env("V3_TCP_ENABLE", "true")
            .env("V3_TCP_PORT", tcp.to_string())
            .env("JWT_HS256_SECRET", SECRET)
            .env("GATEWAY_JOURNAL_DIR", dir)
            // The machine is shared and its disk may be slow (other jobs fdatasync too). Gates
            // that react to slow confirmations would then refuse orders, or flag them
            // LOSS_SUSPECT and kill sessions (journaled, so for good), in tests that are not
            // about them: the loss timeout is pushed out and the confirm-age gates are off.
            // Tests of those mechanisms set their own values (later `env` entries win).
            .env("V3_LOSS_GAP_TIMEOUT_MS", "600000")
            .env("V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US", "0")
            .env("V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US", "0")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        cmd
    }

    /// Ready = `/health` answers at all: 200, or 503 when a restored global kill switch is on.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200 | 503, _)) = http_get(self.http, "/health", None) {
                // The answer must come from our child, not from something else on the port.
                if let Ok(Some(status)) = self.child.try_wait() {
                    panic!("gateway exited during startup: {status}");
                }
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("gateway exited during startup: {status}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("gateway did not become ready");
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap(); // SIGKILL
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait: graceful shutdown.
    pub fn terminate(&mut self) {
        unsafe_free_sigterm(self.child.id());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "graceful shutdown failed: {status}");
    }

    /// SIGTERM without waiting: the caller observes the shutdown in progress.
    pub fn sigterm(&self) {
        unsafe_free_sigterm(self.child.id());
    }
}

fn unsafe_free_sigterm(pid: u32) {
    Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .unwrap();
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn token(account: &str) -> String {
    switchyard_auth::mint_dev(SECRET, account, 3_600, None)
}

pub fn ops_token(account: &str) -> String {
    switchyard_auth::mint_dev(SECRET, account, 3_600, Some("ops"))
}

/// One raw HTTP/1.1 exchange on a fresh connection; returns (status, body).
pub fn http_raw(port: u16, request: &[u8]) -> std::io::Result<(u16, String)> {
    try_http_full(port, request).map(|r| (r.status, r.body))
}

pub fn http_get(port: u16, path: &str, token: Option<&str>) -> std::io::Result<(u16, String)> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http_raw(
        port,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{auth}Connection: close\r\n\r\n").as_bytes(),
    )
}

pub fn http_post(
    port: u16,
    path: &str,
    token: Option<&str>,
    content_type: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    http_raw(
        port,
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\n{auth}Content-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    )
}

pub fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body}"))
}

pub fn frame(token: &str, symbol: &str, side: u8, order_type: u8, qty: u64, price: u64) -> Vec<u8> {
    encode_request(&RequestFields {
        token: token.as_bytes(),
        symbol: symbol.as_bytes(),
        side,
        order_type,
        qty,
        price,
    })
    .to_vec()
}

/// Sends frames on one connection (all at once: pipelined) and reads one response each.
pub fn tcp_exchange(stream: &mut TcpStream, frames: &[Vec<u8>]) -> Vec<Response> {
    let all: Vec<u8> = frames.concat();
    stream.write_all(&all).unwrap();
    let mut out = Vec::with_capacity(frames.len());
    let mut buf = [0u8; RESPONSE_LEN];
    for _ in frames {
        stream.read_exact(&mut buf).unwrap();
        out.push(Response::decode(&buf));
    }
    out
}

pub fn tcp_connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nodelay(true).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

// ---------------------------------------------------------------------------------------------
// Helpers added for the contract tests (reasons, auth, admission, kill switches, bad input).

/// Response `kind` bytes of v3 binary frames (§2.4).
pub const KIND_ACCEPT: u8 = 0;
pub const KIND_REJECTED: u8 = 1;
pub const KIND_KILLED: u8 = 2;
pub const KIND_DECODE_ERROR: u8 = 4;

/// One parsed HTTP/1.1 response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        json(&self.body)
    }

    /// Asserts the response is a JSON document with `Content-Type: application/json`.
    pub fn assert_json(&self, what: &str) -> serde_json::Value {
        let ct = self.header("content-type").unwrap_or("<none>");
        assert!(
            ct.starts_with("application/json"),
            "{what}: content type {ct:?}, status {}, body {}",
            self.status,
            self.body
        );
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("{what}: body is not JSON ({e}): {:?}", self.body))
    }
}

/// Parses a raw HTTP/1.1 response (Content-Length or to end of stream; no chunked replies
/// come from the gateway).
pub fn parse_http(raw: &[u8]) -> HttpResponse {
    let text = String::from_utf8_lossy(raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((text.as_str(), ""));
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = match headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        Some(n) => body.get(..n).unwrap_or(body).to_string(),
        None => body.to_string(),
    };
    HttpResponse {
        status,
        headers,
        body,
    }
}

/// One raw exchange on a fresh connection (the request should say `Connection: close`).
pub fn http_full(port: u16, request: &[u8]) -> HttpResponse {
    try_http_full(port, request).expect("HTTP exchange")
}

fn try_http_full(port: u16, request: &[u8]) -> std::io::Result<HttpResponse> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    Ok(parse_http(&buf))
}

/// A request with optional bearer token, extra header lines and a body (Content-Length set).
pub fn request(
    method: &str,
    path: &str,
    token: Option<&str>,
    extra_headers: &str,
    body: &str,
) -> Vec<u8> {
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    format!(
        "{method} {path} HTTP/1.1\r\nHost: x\r\n{auth}{extra_headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// `POST /v3/orders` with a JSON body.
pub fn post_order(port: u16, token: &str, body: &str) -> HttpResponse {
    http_full(
        port,
        &request(
            "POST",
            "/v3/orders",
            Some(token),
            "Content-Type: application/json\r\n",
            body,
        ),
    )
}

/// A §2.2 order body; `price` None leaves the field out.
pub fn order_body(
    symbol: &str,
    side: &str,
    order_type: &str,
    qty: i64,
    price: Option<i64>,
) -> String {
    let mut v = serde_json::json!({"symbol": symbol, "side": side, "type": order_type, "qty": qty});
    if let Some(p) = price {
        v["price"] = p.into();
    }
    v.to_string()
}

/// A plain valid order: BUY 1 AAPL LIMIT 100.
pub fn good_order() -> String {
    order_body("AAPL", "BUY", "LIMIT", 1, Some(100))
}

/// Asserts a v3 refusal: HTTP status, `status` word, reason, and no sequence number.
pub fn assert_refused(r: &HttpResponse, http: u16, status: &str, reason: &str) {
    let v = r.assert_json(reason);
    assert_eq!(
        (r.status, v["status"].as_str(), v["reason"].as_str()),
        (http, Some(status), Some(reason)),
        "expected {http} {status} {reason}, got {} {}",
        r.status,
        r.body
    );
    assert!(
        v.get("sessionSeq").is_none(),
        "refusal with a sessionSeq: {}",
        r.body
    );
    assert!(
        v.get("attemptId").is_none(),
        "refusal with an attemptId: {}",
        r.body
    );
    assert!(
        v["receivedAtNs"].as_u64().is_some_and(|t| t > 0),
        "{}",
        r.body
    );
    assert!(v["sessionId"].is_string(), "{}", r.body);
}

/// Asserts a 202 VOLATILE_ACCEPT and returns its sequence number.
pub fn assert_accepted(r: &HttpResponse) -> u64 {
    let v = r.assert_json("accept");
    assert_eq!(
        (r.status, v["status"].as_str()),
        (202, Some("VOLATILE_ACCEPT")),
        "expected 202 VOLATILE_ACCEPT, got {} {}",
        r.status,
        r.body
    );
    let seq = v["sessionSeq"].as_u64().expect("sessionSeq");
    assert_eq!(v["attemptId"], format!("att_{seq}"), "{}", r.body);
    seq
}

/// Asserts a binary refusal frame: kind, status and reason code.
pub fn assert_frame(r: &Response, kind: u8, status: u16, code: u32) {
    assert_eq!(
        (r.kind, r.status, r.reason),
        (kind, status, code),
        "expected kind {kind} status {status} code {code}, got {r:?}"
    );
    if kind != KIND_ACCEPT {
        assert_eq!((r.session_seq, r.attempt_seq), (0, 0), "{r:?}");
    }
    assert!(r.received_at_ns > 0, "{r:?}");
}

/// One frame on a fresh connection.
pub fn tcp_one(port: u16, frame: Vec<u8>) -> Response {
    let mut s = tcp_connect(port);
    tcp_exchange(&mut s, &[frame])[0]
}

/// Signs arbitrary claims with the test secret.
pub fn token_with(claims: serde_json::Value) -> String {
    switchyard_auth::mint(SECRET.as_bytes(), None, &claims)
}

/// A token whose session (`sub`) differs from its account (`accountId`).
pub fn session_token(session: &str, account: &str) -> String {
    let now = switchyard_auth::now_sec();
    token_with(
        serde_json::json!({"sub": session, "accountId": account, "iat": now, "exp": now + 3600}),
    )
}

/// Value of an unlabelled Prometheus metric.
pub fn metric(port: u16, name: &str) -> f64 {
    let (code, body) = http_get(port, "/metrics", None).expect("GET /metrics");
    assert_eq!(code, 200);
    body.lines()
        .find_map(|l| {
            let (k, v) = l.split_once(' ')?;
            (k == name).then(|| v.trim().parse::<f64>().ok()).flatten()
        })
        .unwrap_or_else(|| panic!("metric {name} not found"))
}

/// Polls `probe` every 10 ms until it returns Some, for at most `secs` seconds; panics naming
/// `what` (and the last observation) otherwise.
pub fn wait_for<T>(secs: u64, what: &str, mut probe: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut last = String::new();
    while Instant::now() < deadline {
        match probe() {
            Ok(v) => return v,
            Err(seen) => last = seen,
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    panic!("timed out after {secs} s waiting for {what}; last seen: {last}");
}

/// `GET /v3/orders/{session}/{seq}` as JSON (asserting 200).
pub fn confirm(port: u16, token: &str, session: &str, seq: u64) -> serde_json::Value {
    let r = http_full(
        port,
        &request(
            "GET",
            &format!("/v3/orders/{session}/{seq}"),
            Some(token),
            "",
            "",
        ),
    );
    assert_eq!(r.status, 200, "confirm {session}/{seq}: {}", r.body);
    r.assert_json("confirm")
}

/// Polls the confirm query until `status` is reported.
pub fn wait_confirm(
    port: u16,
    token: &str,
    session: &str,
    seq: u64,
    status: &str,
) -> serde_json::Value {
    wait_for(10, &format!("{session}/{seq} to become {status}"), || {
        let v = confirm(port, token, session, seq);
        if v["status"] == status {
            Ok(v)
        } else {
            Err(v.to_string())
        }
    })
}

/// Waits until every shard's ingress queue is empty (the engines took every accepted order).
pub fn wait_queue_empty(port: u16) {
    wait_for(10, "the ingress queues to drain into the engines", || {
        let depth = metric(port, "gateway_v3_queue_depth");
        if depth == 0.0 {
            Ok(())
        } else {
            Err(format!("depth {depth}"))
        }
    })
}

/// `POST /v3/admin/kill-switches`.
pub fn set_kill(port: u16, token: &str, body: serde_json::Value) -> HttpResponse {
    http_full(
        port,
        &request(
            "POST",
            "/v3/admin/kill-switches",
            Some(token),
            "Content-Type: application/json\r\n",
            &body.to_string(),
        ),
    )
}

/// `GET /v3/admin/kill-switches` as JSON (asserting 200).
pub fn kill_switches(port: u16, token: &str) -> serde_json::Value {
    let r = http_full(
        port,
        &request("GET", "/v3/admin/kill-switches", Some(token), "", ""),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.assert_json("kill switches")
}

/// Runs the `switchyard` binary to completion with a clean environment plus `env`.
pub fn run_switchyard(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    cmd.args(args).env_clear().env("RUST_LOG", "warn");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run switchyard")
}

/// `switchyard journal dump --dir <dir>`: every record as JSON.
pub fn journal_dump(dir: &Path) -> Vec<serde_json::Value> {
    let out = run_switchyard(&["journal", "dump", "--dir", dir.to_str().unwrap()], &[]);
    assert!(
        out.status.success(),
        "journal dump failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(json)
        .collect()
}

/// Starts `switchyard gateway` expecting it to refuse its configuration: returns stderr.
/// Fails if it is still running after 10 s (the configuration was accepted) or exits 0.
pub fn startup_error(config: Option<&Path>, env: &[(&str, &str)]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    cmd.arg("gateway")
        .env_clear()
        .env("RUST_LOG", "warn")
        .env("GATEWAY_HOST", "127.0.0.1")
        .env("GATEWAY_PORT", free_port().to_string())
        .env("JWT_HS256_SECRET", SECRET)
        .env("GATEWAY_JOURNAL_DIR", dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("spawn switchyard");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("gateway started with a bad configuration {env:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "exit status 0 for {env:?}: {stderr}");
    stderr
}

/// base64url without padding (for hand-made, deliberately broken tokens).
pub fn b64url(data: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | (b as u32) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(A[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A `switchyard venue-sim` process.
pub struct Venue {
    child: Child,
}

impl Venue {
    pub fn start(name: &str, port: u16, state: &Path, env: &[(&str, &str)]) -> Venue {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("venue-sim")
            .arg("--name")
            .arg(name)
            .env_clear()
            .env("EXCHANGE_TCP_BIND", "127.0.0.1")
            .env("EXCHANGE_TCP_PORT", port.to_string())
            .env("EXCHANGE_SIM_STATE_DIR", state)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn venue-sim");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(s)) = child.try_wait() {
                panic!("venue-sim exited during startup: {s}");
            }
            assert!(Instant::now() < deadline, "venue-sim did not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        Venue { child }
    }

    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Venue {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A durable-path order body: LIMIT GTC with a price, MARKET IOC without.
pub fn order_json(symbol: &str, side: &str, qty: u64, price: Option<u64>) -> String {
    match price {
        Some(p) => format!(
            r#"{{"symbol":"{symbol}","side":"{side}","type":"LIMIT","qty":{qty},"price":{p},"timeInForce":"GTC"}}"#
        ),
        None => format!(
            r#"{{"symbol":"{symbol}","side":"{side}","type":"MARKET","qty":{qty},"timeInForce":"IOC"}}"#
        ),
    }
}

/// `POST /orders` (durability `local`); the order id.
pub fn place(port: u16, token: &str, key: &str, body: &str) -> String {
    let headers = format!("Content-Type: application/json\r\nIdempotency-Key: {key}\r\n");
    let r = http_full(
        port,
        &request("POST", "/orders", Some(token), &headers, body),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    r.json()["orderId"].as_str().unwrap().to_string()
}

pub fn order(port: u16, token: &str, id: &str) -> serde_json::Value {
    let r = http_full(
        port,
        &request("GET", &format!("/orders/{id}"), Some(token), "", ""),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

/// A variable `scripts/services.sh` exports; its absence fails the test with what to do.
pub fn env_or_fail(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run `scripts/services.sh start` and `source var/services/env`")
    })
}

/// A broker of the test's own (so that stopping it disturbs no other test).
pub struct Broker {
    pub child: Child,
    pub port: u16,
}

impl Broker {
    pub fn start() -> Broker {
        let bin = env_or_fail("SWITCHYARD_TANSU_BIN");
        let port = free_port();
        let url = format!("tcp://127.0.0.1:{port}");
        let child = Command::new(bin)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start tansu");
        wait_for(30, "tansu listening", || {
            std::net::TcpStream::connect(("127.0.0.1", port))
                .map(|_| ())
                .map_err(|e| e.to_string())
        });
        Broker { child, port }
    }

    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .args([sig, &self.child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill {sig}");
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Creates a topic with `partitions` partitions on the broker at `bootstrap`.
pub fn create_topic(bootstrap: &str, topic: &str, partitions: i32) {
    let admin: rdkafka::admin::AdminClient<rdkafka::client::DefaultClientContext> =
        rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .create()
            .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = rdkafka::admin::NewTopic::new(
        topic,
        partitions,
        rdkafka::admin::TopicReplication::Fixed(1),
    );
    let res = rt
        .block_on(admin.create_topics([&new], &rdkafka::admin::AdminOptions::new()))
        .expect("create topic");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create topic {t}: {e}"));
    }
}
