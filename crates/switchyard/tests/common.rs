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

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub struct Gateway {
    pub child: Child,
    pub http: u16,
    pub tcp: u16,
}

impl Gateway {
    /// Starts `switchyard gateway` on the journal `dir` with extra environment.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> Gateway {
        let (http, tcp) = (free_port(), free_port());
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_switchyard"));
        cmd.arg("gateway")
            .env_clear()
            .env("GATEWAY_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", http.to_string())
            .env("V3_TCP_ENABLE", "true")
            .env("V3_TCP_PORT", tcp.to_string())
            .env("JWT_HS256_SECRET", SECRET)
            .env("GATEWAY_JOURNAL_DIR", dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("spawn switchyard");
        let g = Gateway { child, http, tcp };
        g.wait_ready();
        g
    }

    fn wait_ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok((200, _)) = http_get(self.http, "/health", None) {
                return;
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
        self.child.wait().unwrap();
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
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(request)?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)?;
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok((status, body))
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
