//! A minimal HTTP/1.1 keep-alive client, written by hand over a `TcpStream`.
//!
//! Why not hyper's client or reqwest: a load generator shares the machine with the server it
//! measures, and a generic client spends per request what a server under test should be
//! charged for — building header maps, a request object and a body type, pool bookkeeping,
//! task hand-offs. Like wrk, this client builds each connection's request bytes once and per
//! request does one `write_all` of a constant buffer and a scan of the answer for the end of
//! the head and `Content-Length`. What it does not do (chunked bodies, bodies delimited by
//! close, 1xx) is refused as an error rather than guessed at: the servers measured here never
//! send them.

use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Largest response head accepted; real ones are ~100 bytes.
const MAX_HEAD: usize = 16 * 1024;
/// Largest response body accepted.
const MAX_BODY: usize = 1024 * 1024;

/// The request bytes of one connection: every request it sends is identical.
/// The request of one connection. For the durable path (`POST /orders`) every request must
/// carry a fresh `Idempotency-Key`: the key's last 16 characters are hex digits of a counter,
/// rewritten in place before each send (no allocation, the rest of the bytes stay constant).
#[derive(Debug, Clone)]
pub struct HttpRequest {
    bytes: Vec<u8>,
    key_at: Option<usize>,
    counter: u64,
}

impl HttpRequest {
    /// `POST /v3/orders`: every request identical.
    pub fn v3(host: &str, token: &str, body: &[u8]) -> HttpRequest {
        HttpRequest {
            bytes: build_request(host, "/v3/orders", token, body),
            key_at: None,
            counter: 0,
        }
    }

    /// `POST /orders` with `Durability: <level>` and a unique key per request; `key_prefix`
    /// keeps keys unique across connections and runs.
    pub fn durable(host: &str, token: &str, body: &[u8], level: &str, key_prefix: &str) -> Self {
        let mut bytes = build_request(host, "/orders", token, body);
        let head_end = bytes.len() - body.len() - 2;
        let extra =
            format!("Durability: {level}\r\nIdempotency-Key: {key_prefix}-0000000000000000\r\n");
        let key_at = head_end + extra.len() - 2 - 16;
        bytes.splice(head_end..head_end, extra.into_bytes());
        HttpRequest {
            bytes,
            key_at: Some(key_at),
            counter: 0,
        }
    }

    /// The bytes of the next request.
    pub fn next_bytes(&mut self) -> &[u8] {
        if let Some(at) = self.key_at {
            self.counter += 1;
            let hex = b"0123456789abcdef";
            for (i, b) in self.bytes[at..at + 16].iter_mut().enumerate() {
                *b = hex[((self.counter >> ((15 - i) * 4)) & 0xf) as usize];
            }
        }
        &self.bytes
    }
}

pub fn build_request(host: &str, path: &str, token: &str, body: &[u8]) -> Vec<u8> {
    let mut r = Vec::with_capacity(160 + token.len() + body.len());
    r.extend_from_slice(b"POST ");
    r.extend_from_slice(path.as_bytes());
    r.extend_from_slice(b" HTTP/1.1\r\nHost: ");
    r.extend_from_slice(host.as_bytes());
    r.extend_from_slice(b"\r\nAuthorization: Bearer ");
    r.extend_from_slice(token.as_bytes());
    r.extend_from_slice(b"\r\nContent-Type: application/json\r\nContent-Length: ");
    r.extend_from_slice(body.len().to_string().as_bytes());
    r.extend_from_slice(b"\r\n\r\n");
    r.extend_from_slice(body);
    r
}

/// Why a response could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Malformed(&'static str),
    /// `Transfer-Encoding` (chunked) bodies are not supported.
    Chunked,
    /// A response that may have a body but has no `Content-Length`.
    NoContentLength,
    TooLarge,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParseError::Malformed(what) => write!(f, "malformed HTTP response: {what}"),
            ParseError::Chunked => f.write_str("chunked HTTP responses are not supported"),
            ParseError::NoContentLength => f.write_str("HTTP response without Content-Length"),
            ParseError::TooLarge => f.write_str("HTTP response too large"),
        }
    }
}

impl std::error::Error for ParseError {}

impl From<ParseError> for io::Error {
    fn from(e: ParseError) -> io::Error {
        io::Error::new(io::ErrorKind::InvalidData, e)
    }
}

/// Where one complete response sits at the front of a buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    /// Bytes of the status line and headers, including the blank line.
    pub head_len: usize,
    pub body_len: usize,
    /// The server said `Connection: close`: this connection must not be reused.
    pub close: bool,
}

impl ResponseHead {
    pub fn total_len(&self) -> usize {
        self.head_len + self.body_len
    }
}

/// Parses the response at the front of `buf`. `Ok(None)` means more bytes are needed; a
/// complete response may be followed by the start of the next one, which is left alone.
pub fn parse_response(buf: &[u8]) -> Result<Option<ResponseHead>, ParseError> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > MAX_HEAD {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let head_len = end + 4;
    let mut lines = buf[..end].split(|&b| b == b'\n').map(trim_cr);
    let status_line = lines.next().unwrap_or_default();
    let status = parse_status_line(status_line)?;

    let mut content_length = None;
    let mut close = false;
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::Malformed("header without colon"))?;
        let name = &line[..colon];
        let value = trim_ows(&line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = parse_decimal(value).ok_or(ParseError::Malformed("bad Content-Length"))?;
            if content_length.is_some_and(|old| old != n) {
                return Err(ParseError::Malformed("conflicting Content-Length"));
            }
            content_length = Some(n);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            return Err(ParseError::Chunked);
        } else if name.eq_ignore_ascii_case(b"connection") {
            close = value
                .split(|&b| b == b',')
                .any(|t| trim_ows(t).eq_ignore_ascii_case(b"close"));
        }
    }

    // 1xx, 204 and 304 never have a body (RFC 9112 §6.3).
    let bodiless = status < 200 || status == 204 || status == 304;
    let body_len = match (content_length, bodiless) {
        (_, true) => 0,
        (Some(n), false) => n,
        (None, false) => return Err(ParseError::NoContentLength),
    };
    if body_len > MAX_BODY {
        return Err(ParseError::TooLarge);
    }
    if buf.len() < head_len + body_len {
        return Ok(None);
    }
    Ok(Some(ResponseHead {
        status,
        head_len,
        body_len,
        close,
    }))
}

pub(crate) fn find_head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n")
}

pub(crate) fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

pub(crate) fn trim_ows(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

pub(crate) fn parse_decimal(v: &[u8]) -> Option<usize> {
    if v.is_empty() {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        if !b.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(usize::from(b - b'0'))
    })
}

pub(crate) fn parse_status_line(line: &[u8]) -> Result<u16, ParseError> {
    // "HTTP/1.1 202 Accepted" (the reason phrase may be empty).
    let rest = line
        .strip_prefix(b"HTTP/1.")
        .ok_or(ParseError::Malformed("status line"))?;
    match rest {
        [_, b' ', a, b, c, ..] if [a, b, c].iter().all(|d| d.is_ascii_digit()) => {
            Ok(u16::from(a - b'0') * 100 + u16::from(b - b'0') * 10 + u16::from(c - b'0'))
        }
        _ => Err(ParseError::Malformed("status code")),
    }
}

/// The `"reason"` of a refusal body, found by substring search: the bodies are small and
/// flat, and a full JSON parse per response would cost the generator more than it needs.
pub fn find_reason(body: &[u8]) -> Option<&str> {
    find_str_field(body, "reason")
}

/// The value of the first `"<key>":"<value>"` in a flat JSON object (no escapes in the value),
/// by substring search; e.g. the `orderId` of an answer or an event.
pub fn find_str_field<'a>(body: &'a [u8], key: &str) -> Option<&'a str> {
    let k = key.as_bytes();
    // `"` key `":"`
    let at = body
        .windows(k.len() + 4)
        .position(|w| w[0] == b'"' && &w[1..=k.len()] == k && &w[k.len() + 1..] == b"\":\"")?
        + k.len()
        + 4;
    let rest = &body[at..];
    let end = rest.iter().position(|&b| b == b'"')?;
    std::str::from_utf8(&rest[..end]).ok()
}

/// One complete response taken off the connection.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub close: bool,
    /// Head and body; `body()` is the body.
    raw: BytesMut,
    head_len: usize,
}

impl Reply {
    pub fn body(&self) -> &[u8] {
        &self.raw[self.head_len..]
    }
}

/// A keep-alive connection. One request at a time: these modes do not pipeline HTTP.
pub struct HttpConn {
    stream: TcpStream,
    buf: BytesMut,
}

impl HttpConn {
    pub async fn connect(addr: SocketAddr) -> io::Result<HttpConn> {
        let stream = TcpStream::connect(addr).await?;
        // Requests are single small writes that must leave now, not wait for Nagle.
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: BytesMut::with_capacity(8 * 1024),
        })
    }

    /// Writes `request` and reads its response.
    pub async fn roundtrip(&mut self, request: &[u8]) -> io::Result<Reply> {
        self.stream.write_all(request).await?;
        self.read_reply().await
    }

    /// Reads the next response, which may already be (partly) buffered.
    pub async fn read_reply(&mut self) -> io::Result<Reply> {
        loop {
            if let Some(head) = parse_response(&self.buf)? {
                // split_to hands out the front without copying; the rest stays for the next
                // response.
                let raw = self.buf.split_to(head.total_len());
                return Ok(Reply {
                    status: head.status,
                    close: head.close,
                    raw,
                    head_len: head.head_len,
                });
            }
            if self.buf.capacity() - self.buf.len() < 4096 {
                self.buf.reserve(8 * 1024);
            }
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "server closed the connection",
                ));
            }
        }
    }

    /// Bytes read from the socket but not yet handed out as a reply.
    pub fn buffered(&self) -> usize {
        self.buf.remaining()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ACCEPT: &[u8] = b"HTTP/1.1 202 Accepted\r\ncontent-type: application/json\r\ncontent-length: 17\r\ndate: x\r\n\r\n{\"status\":\"OK\"}\r\n";

    // Goal: a complete response is found with its status, head and body lengths.
    #[test]
    fn parses_complete_response() {
        let h = parse_response(ACCEPT).unwrap().unwrap();
        assert_eq!(h.status, 202);
        assert_eq!(h.body_len, 17);
        assert_eq!(h.total_len(), ACCEPT.len());
        assert!(!h.close);
    }

    // Goal: every split point of a response is reported as incomplete, never as an error.
    #[test]
    fn split_reads_wait_for_more() {
        for cut in 0..ACCEPT.len() {
            assert_eq!(parse_response(&ACCEPT[..cut]), Ok(None), "cut at {cut}");
        }
    }

    // Goal: two responses in one read are taken one at a time, in order.
    #[test]
    fn pipelined_responses() {
        let refuse = b"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 52\r\n\r\n{\"status\":\"REJECTED\",\"reason\":\"V3_BACKPRESSURE_SOFT\"}";
        let mut buf = ACCEPT.to_vec();
        buf.extend_from_slice(refuse);
        buf.extend_from_slice(&ACCEPT[..10]);
        let a = parse_response(&buf).unwrap().unwrap();
        assert_eq!(a.status, 202);
        let rest = &buf[a.total_len()..];
        let b = parse_response(rest).unwrap().unwrap();
        assert_eq!(b.status, 429);
        assert_eq!(
            find_reason(&rest[b.head_len..b.total_len()]),
            Some("V3_BACKPRESSURE_SOFT")
        );
        assert_eq!(parse_response(&rest[b.total_len()..]), Ok(None));
    }

    // Goal: Content-Length 0 and bodiless statuses complete at the end of the head.
    #[test]
    fn empty_bodies() {
        let r = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\nConnection: keep-alive, close\r\n\r\n";
        let h = parse_response(r).unwrap().unwrap();
        assert_eq!((h.status, h.body_len, h.total_len()), (503, 0, r.len()));
        assert!(h.close);
        let r = b"HTTP/1.1 204 No Content\r\n\r\n";
        assert_eq!(parse_response(r).unwrap().unwrap().total_len(), r.len());
    }

    // Goal: what the client does not support is an error, not a silent misparse.
    #[test]
    fn unsupported_and_malformed() {
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Err(ParseError::Chunked));
        let no_len = b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\nbody";
        assert_eq!(parse_response(no_len), Err(ParseError::NoContentLength));
        assert!(parse_response(b"HTTX/1.1 200 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nbroken\r\n\r\n").is_err());
        assert_eq!(
            parse_response(&vec![b'a'; MAX_HEAD + 1]),
            Err(ParseError::TooLarge)
        );
    }

    // Goal: string fields are found by exact key, not by a key that merely ends the same.
    #[test]
    fn string_fields() {
        let body = br#"{"xorderId":"no","orderId":"ord_1","status":"ACCEPTED"}"#;
        assert_eq!(find_str_field(body, "orderId"), Some("ord_1"));
        assert_eq!(find_str_field(body, "status"), Some("ACCEPTED"));
        assert_eq!(find_str_field(body, "missing"), None);
        assert_eq!(find_str_field(br#"{"orderId":"cut"#, "orderId"), None);
        assert_eq!(find_str_field(br#"{"orderId":7}"#, "orderId"), None);
    }

    // Goal: the pre-built request is a well-formed POST with the right Content-Length.
    #[test]
    fn request_bytes() {
        let mut d = HttpRequest::durable("h:1", "tok", b"{}", "local", "b0");
        let first = String::from_utf8(d.next_bytes().to_vec()).unwrap();
        assert!(first.starts_with("POST /orders HTTP/1.1\r\n"), "{first}");
        assert!(
            first.contains(
                "\r\nDurability: local\r\nIdempotency-Key: b0-0000000000000001\r\n\r\n{}"
            ),
            "{first}"
        );
        let second = String::from_utf8(d.next_bytes().to_vec()).unwrap();
        assert!(
            second.contains("Idempotency-Key: b0-0000000000000002\r\n"),
            "{second}"
        );
        let r = build_request("h:1", "/v3/orders", "tok", b"{}");
        assert_eq!(
            r,
            b"POST /v3/orders HTTP/1.1\r\nHost: h:1\r\nAuthorization: Bearer tok\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
    }

    // Goal: the reader reassembles responses split across TCP reads and keeps a following
    // response buffered for the next call.
    #[tokio::test]
    async fn conn_reads_split_and_coalesced() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut two = ACCEPT.to_vec();
            two.extend_from_slice(ACCEPT);
            for piece in two.chunks(7) {
                s.write_all(piece).await.unwrap();
                s.flush().await.unwrap();
                tokio::time::sleep(std::time::Duration::from_millis(1)).await;
            }
            // A third, sent together with nothing else, then close.
            s.write_all(ACCEPT).await.unwrap();
        });
        let mut c = HttpConn::connect(addr).await.unwrap();
        for _ in 0..3 {
            let r = c.read_reply().await.unwrap();
            assert_eq!(r.status, 202);
            assert_eq!(r.body(), b"{\"status\":\"OK\"}\r\n");
        }
        server.await.unwrap();
        assert_eq!(c.buffered(), 0);
        let e = c.read_reply().await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
