//! Security checks over the wire (issue 7, item 4), against the real binary:
//!
//! 1. the JWT attack matrix on `POST /v3/orders`, `POST /orders`, `GET /stream` and the binary
//!    TCP frames, plus key rotation by restart and the verified-token cache;
//! 2. cross-account access on every route of `crates/gateway/src/http/mod.rs` (404 where the
//!    reference hides an order, 403 where the contract says so), SSE and WebSocket included;
//! 3. the `ops` scope of the admin endpoints (word match: `devops` is not `ops`);
//! 4. limits: body and header size, connection count, per-address connections, slow heads,
//!    slow bodies and stalled TCP frames;
//! 5. TLS on both listeners (rustls), with a certificate made here by rcgen.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{json, Value};
use switchyard_protocol::v3frame::{Response, RESPONSE_LEN};

const JSON_CT: &str = "Content-Type: application/json\r\n";

fn now() -> u64 {
    switchyard_auth::now_sec()
}

// ---------------------------------------------------------------------------------------------
// Small HTTP helpers that do not wait for the end of a stream.

/// Sends `request` and reads the response head (and a Content-Length body, if any) within
/// `secs`; for streaming answers (SSE) only the head. The connection is then dropped.
fn http_head(port: u16, request: &[u8]) -> HttpResponse {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request).unwrap();
    read_response(&mut s)
}

/// Reads one response from `s`: head, then a Content-Length body if the head names one.
fn read_response(s: &mut impl Read) -> HttpResponse {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = find(&buf, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            match len {
                Some(n) if buf.len() < end + 4 + n => {}
                _ => break,
            }
        }
        match s.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(_) => break,
        }
    }
    parse_http(&buf)
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn assert_auth_error(r: &HttpResponse, variant: &str, what: &str) {
    let expected = format!("{{\"error\":\"{variant}\"}}");
    assert_eq!(
        (r.status, r.body.as_str()),
        (401, expected.as_str()),
        "{what}: {r:?}"
    );
    r.assert_json(what);
}

fn get(path: &str, token: Option<&str>) -> Vec<u8> {
    request("GET", path, token, "", "")
}

fn post_json(path: &str, token: Option<&str>, extra: &str, body: &str) -> Vec<u8> {
    request("POST", path, token, &format!("{JSON_CT}{extra}"), body)
}

// ---------------------------------------------------------------------------------------------
// 1. The JWT attack matrix over the wire.

const ISS: &str = "sy-idp";
const AUD: &str = "sy";
const NEW_KEY: &str = "new-secret-0123456789";

/// Claims that pass every check of `auth_gateway` (issuer and audience enforced).
fn claims(account: &str) -> Value {
    json!({"sub": account, "accountId": account, "exp": now() + 3600, "iss": ISS, "aud": AUD})
}

fn plus(mut c: Value, k: &str, v: Value) -> Value {
    c[k] = v;
    c
}

fn minus(mut c: Value, keys: &[&str]) -> Value {
    for k in keys {
        c.as_object_mut().unwrap().remove(*k);
    }
    c
}

/// `header.payload` signed with HS256 under `secret`, whatever the header says.
fn sign_raw(secret: &[u8], header: &str, payload: &str) -> String {
    let signed = format!(
        "{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes())
    );
    let tag = hmac_sha256(secret, signed.as_bytes());
    format!("{signed}.{}", b64url(&tag))
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    use hmac::Mac;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).expect("any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// A correctly signed (test secret) token over arbitrary claims, standard header.
fn signed(claims: &Value) -> String {
    token_with(claims.clone())
}

struct AuthCase {
    what: &'static str,
    token: String,
    /// The `{"error":…}` variant over HTTP.
    variant: &'static str,
    /// The TCP answer: (kind, status, code). Tokens over 256 bytes do not fit a frame (101).
    tcp: (u8, u16, u32),
}

fn auth_cases() -> Vec<AuthCase> {
    let inv = (KIND_DECODE_ERROR, 401, 201);
    let good = signed(&claims("sa"));
    let payload = claims("sa").to_string();
    let c = |what, token, variant, tcp| AuthCase {
        what,
        token,
        variant,
        tcp,
    };
    let hdr = |h: &str| sign_raw(SECRET.as_bytes(), h, &payload);
    vec![
        c(
            "alg none, no signature",
            format!(
                "{}.{}.",
                b64url(br#"{"alg":"none"}"#),
                b64url(payload.as_bytes())
            ),
            "UnsupportedAlg",
            inv,
        ),
        c(
            "alg none, signed",
            hdr(r#"{"alg":"none"}"#),
            "UnsupportedAlg",
            inv,
        ),
        c(
            "RS256 header, HS key as HMAC secret",
            hdr(r#"{"alg":"RS256","typ":"JWT"}"#),
            "UnsupportedAlg",
            inv,
        ),
        c(
            "ES256 header, HS key as HMAC secret",
            hdr(r#"{"alg":"ES256","typ":"JWT"}"#),
            "UnsupportedAlg",
            inv,
        ),
        c(
            "\"HS256 \"",
            hdr(r#"{"alg":"HS256 "}"#),
            "UnsupportedAlg",
            inv,
        ),
        c(
            "lowercase hs256",
            hdr(r#"{"alg":"hs256"}"#),
            "UnsupportedAlg",
            inv,
        ),
        c("no alg", hdr(r#"{"typ":"JWT"}"#), "MissingAlg", inv),
        c(
            "duplicate alg",
            hdr(r#"{"alg":"none","alg":"HS256"}"#),
            "InvalidJwtHeader",
            inv,
        ),
        c(
            "wrong key",
            switchyard_auth::mint(b"not-the-secret", None, &claims("sa")),
            "InvalidJwtSignature",
            inv,
        ),
        c(
            "expired",
            signed(&plus(claims("sa"), "exp", json!(now() - 3600))),
            "TokenExpired",
            (KIND_DECODE_ERROR, 401, 202),
        ),
        c(
            "not yet valid (nbf)",
            signed(&plus(claims("sa"), "nbf", json!(now() + 3600))),
            "TokenNotYetValid",
            (KIND_DECODE_ERROR, 401, 203),
        ),
        c(
            "missing exp",
            signed(&minus(claims("sa"), &["exp"])),
            "MissingExp",
            inv,
        ),
        c(
            "missing accountId and sub",
            signed(&minus(claims("sa"), &["sub", "accountId"])),
            "MissingAccountId",
            inv,
        ),
        c("no claims", signed(&json!({})), "MissingExp", inv),
        c(
            "header not base64url",
            format!("e!!.{}", good.split_once('.').unwrap().1),
            "InvalidJwtHeader",
            inv,
        ),
        c(
            "payload not JSON",
            sign_raw(SECRET.as_bytes(), r#"{"alg":"HS256"}"#, "not json"),
            "InvalidJwtPayload",
            inv,
        ),
        c(
            "duplicate claims",
            sign_raw(
                SECRET.as_bytes(),
                r#"{"alg":"HS256"}"#,
                &format!(
                    r#"{{"sub":"sa","sub":"sb","exp":{},"iss":"{ISS}","aud":"{AUD}"}}"#,
                    now() + 60
                ),
            ),
            "InvalidJwtPayload",
            inv,
        ),
        c(
            "payload with trailing garbage",
            sign_raw(
                SECRET.as_bytes(),
                r#"{"alg":"HS256"}"#,
                &format!("{payload}x"),
            ),
            "InvalidJwtPayload",
            inv,
        ),
        c(
            "garbage after the signature",
            format!("{good}AA"),
            "InvalidJwtSignature",
            inv,
        ),
        c(
            "a fourth part",
            format!("{good}.x"),
            "InvalidJwtFormat",
            inv,
        ),
        c(
            "signature of another token",
            format!(
                "{}.{}",
                &good[..good.rfind('.').unwrap()],
                signed(&claims("sb")).rsplit('.').next().unwrap()
            ),
            "InvalidJwtSignature",
            inv,
        ),
        c(
            "wrong issuer",
            signed(&plus(claims("sa"), "iss", json!("evil"))),
            "InvalidIssuer",
            inv,
        ),
        c(
            "no issuer",
            signed(&minus(claims("sa"), &["iss"])),
            "InvalidIssuer",
            inv,
        ),
        c(
            "wrong audience",
            signed(&plus(claims("sa"), "aud", json!("backoffice"))),
            "InvalidAudience",
            inv,
        ),
        c(
            "unknown (revoked) kid",
            switchyard_auth::mint(b"old-secret", Some("k-gone"), &claims("sa")),
            "UnknownKeyId",
            inv,
        ),
        c(
            "kid of one key, signed with the default secret",
            switchyard_auth::mint(SECRET.as_bytes(), Some("k-new"), &claims("sa")),
            "InvalidJwtSignature",
            inv,
        ),
        c(
            "oversized token (over 4096 bytes)",
            signed(&plus(claims("sa"), "pad", json!("x".repeat(4200)))),
            "InvalidJwtFormat",
            (KIND_DECODE_ERROR, 422, 101),
        ),
        c(
            "huge header (over 4096 bytes)",
            sign_raw(
                SECRET.as_bytes(),
                &json!({"alg": "HS256", "pad": "h".repeat(4200)}).to_string(),
                &payload,
            ),
            "InvalidJwtFormat",
            (KIND_DECODE_ERROR, 422, 101),
        ),
        c(
            "whitespace inside the token",
            good.replacen('.', ". ", 1),
            "InvalidJwtSignature",
            inv,
        ),
    ]
}

fn auth_gateway(dir: &std::path::Path, keys: &str) -> Gateway {
    Gateway::start(
        dir,
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
            ("JWT_ISSUER", ISS),
            ("JWT_AUDIENCE", AUD),
            ("JWT_HS256_KEYS", keys),
        ],
    )
}

// Goal: every row of the attack matrix is 401 with its exact `{"error":…}` body on
// POST /v3/orders, POST /orders (durable path) and GET /stream, and the matching DECODE_ERROR
// answer on one TCP connection (which survives them all); a good token passes everywhere.
#[test]
fn jwt_attack_matrix_over_http_and_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let gw = auth_gateway(dir.path(), &format!("k-new:{NEW_KEY}"));
    let order = good_order();
    let mut tcp = tcp_connect(gw.tcp);
    let cases = auth_cases();
    for (i, c) in cases.iter().enumerate() {
        let r = http_full(
            gw.http,
            &post_json("/v3/orders", Some(&c.token), "", &order),
        );
        assert_auth_error(&r, c.variant, &format!("POST /v3/orders: {}", c.what));
        let key = format!("Idempotency-Key: sec-{i}\r\n");
        let r = http_full(gw.http, &post_json("/orders", Some(&c.token), &key, &order));
        assert_auth_error(&r, c.variant, &format!("POST /orders: {}", c.what));
        let r = http_head(gw.http, &get("/stream", Some(&c.token)));
        assert_auth_error(&r, c.variant, &format!("GET /stream: {}", c.what));
        let f = frame(&c.token, "AAPL", 1, 1, 1, 100);
        let resp = if c.token.len() <= 256 {
            tcp_exchange(&mut tcp, &[f])[0]
        } else {
            // The frame cannot carry it: encode the length field by hand.
            let mut f = frame("x", "AAPL", 1, 1, 1, 100);
            f[0..2].copy_from_slice(&(c.token.len() as u16).to_le_bytes());
            tcp_exchange(&mut tcp, &[f])[0]
        };
        let (kind, status, code) = c.tcp;
        assert_frame(&resp, kind, status, code);
    }
    // The hand-made signing above is a real HS256: the same claims signed by hand with the
    // right secret pass (so the refusals above are about the defect, not the signing).
    let by_hand = sign_raw(
        SECRET.as_bytes(),
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims("sa").to_string(),
    );
    assert_accepted(&post_order(gw.http, &by_hand, &order));
    // The good token and a good kid token pass everywhere, on the same TCP connection too.
    let good = signed(&claims("sa"));
    let kid = switchyard_auth::mint(NEW_KEY.as_bytes(), Some("k-new"), &claims("sa"));
    for t in [&good, &kid] {
        assert_accepted(&post_order(gw.http, t, &order));
        let r = http_full(
            gw.http,
            &post_json(
                "/orders",
                Some(t),
                &format!("Idempotency-Key: good-{}\r\n", t.len()),
                &order,
            ),
        );
        assert_eq!(r.status, 202, "{}", r.body);
        let r = http_head(gw.http, &get("/stream", Some(t)));
        assert_eq!(r.status, 200, "{r:?}");
        let resp = tcp_exchange(&mut tcp, &[frame(t, "AAPL", 1, 1, 1, 100)])[0];
        assert_eq!((resp.kind, resp.status), (KIND_ACCEPT, 202), "{resp:?}");
    }
    // Header-level defects.
    for (what, auth, variant) in [
        ("no header", "", "MissingBearerToken"),
        (
            "Basic scheme",
            "Authorization: Basic YTpi\r\n",
            "MissingBearerToken",
        ),
        (
            "two tokens",
            &*format!("Authorization: Bearer {good} {good}\r\n"),
            "InvalidJwtFormat",
        ),
    ] {
        let r = http_full(
            gw.http,
            &request(
                "POST",
                "/v3/orders",
                None,
                &format!("{auth}{JSON_CT}"),
                &order,
            ),
        );
        assert_auth_error(&r, variant, what);
    }
    // Surrounding whitespace is trimmed (tab separator, trailing spaces): still the good token.
    let r = http_full(
        gw.http,
        &request(
            "POST",
            "/v3/orders",
            None,
            &format!("Authorization: Bearer\t{good}   \r\n{JSON_CT}"),
            &order,
        ),
    );
    assert_accepted(&r);
}

// Goal: a token valid before a key rotation removed its kid is refused after the restart that
// applies the rotation (401 UnknownKeyId, TCP 201), while the new key's tokens keep working.
#[test]
fn rotation_by_restart_revokes_the_old_kid() {
    let dir = tempfile::tempdir().unwrap();
    let old = switchyard_auth::mint(b"old-secret-0123", Some("k-old"), &claims("rot"));
    let new = switchyard_auth::mint(NEW_KEY.as_bytes(), Some("k-new"), &claims("rot"));
    let mut gw = auth_gateway(
        dir.path(),
        &format!("k-old:old-secret-0123,k-new:{NEW_KEY}"),
    );
    for t in [&old, &new] {
        assert_accepted(&post_order(gw.http, t, &good_order()));
        assert_eq!(tcp_one(gw.tcp, frame(t, "AAPL", 1, 1, 1, 100)).status, 202);
    }
    gw.terminate();
    let gw = auth_gateway(dir.path(), &format!("k-new:{NEW_KEY}"));
    assert_auth_error(
        &post_order(gw.http, &old, &good_order()),
        "UnknownKeyId",
        "old kid after rotation",
    );
    assert_frame(
        &tcp_one(gw.tcp, frame(&old, "AAPL", 1, 1, 1, 100)),
        KIND_DECODE_ERROR,
        401,
        201,
    );
    assert_accepted(&post_order(gw.http, &new, &good_order()));
}

// Goal: the verified-token cache cannot be abused over the wire: after a good token has been
// used (and cached) on a connection, the same token with any other last signature character
// is refused on that connection; and a cached token stops working when it expires.
#[test]
fn token_cache_cannot_be_abused_over_the_wire() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
            ("JWT_CLOCK_SKEW_SEC", "0"),
        ],
    );
    let good = token("cache");
    let mut tcp = tcp_connect(gw.tcp);
    for _ in 0..3 {
        let r = tcp_exchange(&mut tcp, &[frame(&good, "AAPL", 1, 1, 1, 100)])[0];
        assert_eq!(r.status, 202);
    }
    let hits_before = metric(gw.http, "gateway_auth_cache_hits_total");
    assert!(hits_before >= 2.0, "the good token was not cached");
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (stem, last) = good.split_at(good.len() - 1);
    let forged: Vec<Vec<u8>> = alphabet
        .chars()
        .filter(|c| c.to_string() != last)
        .map(|c| frame(&format!("{stem}{c}"), "AAPL", 1, 1, 1, 100))
        .collect();
    for r in tcp_exchange(&mut tcp, &forged) {
        assert_frame(&r, KIND_DECODE_ERROR, 401, 201);
    }
    let mut keep = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    keep.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    for c in ['A', 'Q', 'g', 'w']
        .iter()
        .filter(|c| c.to_string() != last)
    {
        let body = good_order();
        let req = format!(
            "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {stem}{c}\r\n{JSON_CT}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        keep.write_all(req.as_bytes()).unwrap();
        assert_auth_error(&read_response(&mut keep), "InvalidJwtSignature", "forged");
    }

    // Expiry is checked at use: a token cached while valid is refused once it has expired.
    let exp = now() + 2;
    let short = token_with(json!({"sub": "short", "accountId": "short", "exp": exp}));
    let r = tcp_exchange(&mut tcp, &[frame(&short, "AAPL", 1, 1, 1, 100)])[0];
    assert_eq!(r.status, 202, "{r:?}");
    assert_accepted(&post_order(gw.http, &short, &good_order()));
    while now() <= exp {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = tcp_exchange(&mut tcp, &[frame(&short, "AAPL", 1, 1, 1, 100)])[0];
    assert_frame(&r, KIND_DECODE_ERROR, 401, 202);
    assert_auth_error(
        &post_order(gw.http, &short, &good_order()),
        "TokenExpired",
        "expired while cached",
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Cross-account access.

/// A minimal WebSocket client: the upgrade, then unmasked server frames.
struct Ws {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Ws {
    fn connect(port: u16, path: &str, token: &str) -> Result<Ws, HttpResponse> {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        );
        s.write_all(req.as_bytes()).unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let end = loop {
            if let Some(e) = find(&buf, b"\r\n\r\n") {
                break e;
            }
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed during the upgrade");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head = parse_http(&buf[..end + 4]);
        if head.status != 101 {
            return Err(read_rest(s, buf));
        }
        Ok(Ws {
            s,
            buf: buf[end + 4..].to_vec(),
        })
    }

    /// Text messages received within `dur` (pings and other control frames skipped).
    fn texts_for(&mut self, dur: Duration) -> Vec<String> {
        let deadline = Instant::now() + dur;
        let mut out = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            while let Some((opcode, payload, used)) = ws_frame(&self.buf) {
                self.buf.drain(..used);
                if opcode == 1 {
                    out.push(String::from_utf8_lossy(&payload).into_owned());
                }
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return out;
            }
            self.s
                .set_read_timeout(Some(left.max(Duration::from_millis(1))))
                .unwrap();
            match self.s.read(&mut chunk) {
                Ok(0) => return out,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                Err(_) => return out,
            }
        }
    }
}

fn read_rest(mut s: TcpStream, mut buf: Vec<u8>) -> HttpResponse {
    let mut rest = Vec::new();
    let _ = s.read_to_end(&mut rest);
    buf.extend_from_slice(&rest);
    parse_http(&buf)
}

/// (opcode, payload, bytes used) of the first complete frame in `b`.
fn ws_frame(b: &[u8]) -> Option<(u8, Vec<u8>, usize)> {
    if b.len() < 2 {
        return None;
    }
    let opcode = b[0] & 0x0f;
    let (len, mut at) = match b[1] & 0x7f {
        126 if b.len() >= 4 => (u16::from_be_bytes([b[2], b[3]]) as usize, 4),
        127 if b.len() >= 10 => (u64::from_be_bytes(b[2..10].try_into().ok()?) as usize, 10),
        126 | 127 => return None,
        n => (n as usize, 2),
    };
    if b[1] & 0x80 != 0 {
        at += 4; // masked (never from a server)
    }
    (b.len() >= at + len).then(|| (opcode, b[at..at + len].to_vec(), at + len))
}

/// Reads an SSE response's text for `dur` (or until it has `until`).
fn sse_text(s: &mut TcpStream, dur: Duration, until: Option<&str>) -> String {
    let deadline = Instant::now() + dur;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&buf).into_owned();
        if until.is_some_and(|u| text.contains(u)) {
            return text;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return text;
        }
        s.set_read_timeout(Some(left.max(Duration::from_millis(1))))
            .unwrap();
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&buf).into_owned(),
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn open_sse(port: u16, path: &str, token: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(&get(path, Some(token))).unwrap();
    s
}

/// What account A must get on a route that names something of account B.
#[derive(Debug, Clone, Copy)]
enum Expect {
    /// 404 `{"error":"NOT_FOUND"}`: existence hidden (the reference's rule).
    NotFound,
    /// 403 `{"error":"forbidden"}`: the contract's answer (v3 confirm of another session,
    /// `scope=all` without ops).
    Forbidden,
    /// 200 `{"status":"UNKNOWN","orderId":null}`: the client-id status query answers for the
    /// caller's account only, so another account's id is simply unknown.
    Unknown,
}

// Goal: account A's token cannot read, cancel, amend, stream or list account B's orders and
// events on any route (by order id, client order id, account path, v3 session, SSE and
// WebSocket): 404 where existence is hidden, 403 where the contract says so, UNKNOWN for the
// client-id query; and nothing of B's changes.
#[test]
fn cross_account_access_is_refused_on_every_route() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
        ],
    );
    let (a, b) = (token("sec-alice"), token("sec-bob"));
    // B's orders: a durable one with a client order id, and a v3 one (session sec-bob, seq 1).
    let body_b = r#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":10,"price":100,"clientOrderId":"cid-bob"}"#;
    let id_b = place(gw.http, &b, "key-bob", body_b);
    assert_eq!(assert_accepted(&post_order(gw.http, &b, &good_order())), 1);
    let cancel = r#"{}"#;
    let amend = r#"{"qty":5}"#;
    let rows: Vec<(&str, String, &str, Expect)> = vec![
        ("GET", format!("/orders/{id_b}"), "", Expect::NotFound),
        ("GET", format!("/v2/orders/{id_b}"), "", Expect::NotFound),
        ("GET", "/orders/cid-bob".into(), "", Expect::NotFound),
        ("GET", "/v2/orders/cid-bob".into(), "", Expect::NotFound),
        ("GET", "/orders/client/cid-bob".into(), "", Expect::Unknown),
        (
            "GET",
            "/v2/orders/client/cid-bob".into(),
            "",
            Expect::Unknown,
        ),
        (
            "POST",
            format!("/orders/{id_b}/cancel"),
            cancel,
            Expect::NotFound,
        ),
        (
            "POST",
            format!("/v2/orders/{id_b}/cancel"),
            cancel,
            Expect::NotFound,
        ),
        (
            "POST",
            "/orders/cid-bob/cancel".into(),
            cancel,
            Expect::NotFound,
        ),
        (
            "POST",
            format!("/orders/{id_b}/amend"),
            amend,
            Expect::NotFound,
        ),
        (
            "POST",
            "/orders/cid-bob/amend".into(),
            amend,
            Expect::NotFound,
        ),
        (
            "GET",
            format!("/orders/{id_b}/events"),
            "",
            Expect::NotFound,
        ),
        ("GET", "/orders/cid-bob/events".into(), "", Expect::NotFound),
        (
            "GET",
            "/accounts/sec-bob/events".into(),
            "",
            Expect::NotFound,
        ),
        (
            "GET",
            "/accounts/sec-bob/events?limit=1000&since=0".into(),
            "",
            Expect::NotFound,
        ),
        (
            "GET",
            format!("/orders/{id_b}/stream"),
            "",
            Expect::NotFound,
        ),
        ("GET", "/orders/cid-bob/stream".into(), "", Expect::NotFound),
        ("GET", "/v3/orders/sec-bob/1".into(), "", Expect::Forbidden),
        ("GET", "/v3/orders/sec-bob/2".into(), "", Expect::Forbidden),
        (
            "GET",
            "/v3/orders/sec%2Dbob/1".into(),
            "",
            Expect::Forbidden,
        ),
        ("GET", "/stream?scope=all".into(), "", Expect::Forbidden),
    ];
    for (method, path, body, expect) in &rows {
        let req = if *method == "POST" {
            post_json(path, Some(&a), "", body)
        } else {
            get(path, Some(&a))
        };
        let r = http_head(gw.http, &req);
        let what = format!("{method} {path}");
        let v = r.assert_json(&what);
        match expect {
            Expect::NotFound => {
                assert_eq!(
                    (r.status, &v),
                    (404, &json!({"error": "NOT_FOUND"})),
                    "{what}"
                )
            }
            Expect::Forbidden => {
                assert_eq!(
                    (r.status, &v),
                    (403, &json!({"error": "forbidden"})),
                    "{what}"
                )
            }
            Expect::Unknown => assert_eq!(
                (r.status, &v),
                (
                    200,
                    &json!({"clientOrderId": "cid-bob", "orderId": null, "status": "UNKNOWN"})
                ),
                "{what}"
            ),
        }
        assert!(
            !r.body.contains(&id_b),
            "{what} leaked B's order id: {}",
            r.body
        );
        // The same request with B's own token is not a 404/403: the row tests access, not
        // a route that does not exist.
        let own = if *method == "POST" {
            continue;
        } else {
            get(path, Some(&b))
        };
        let r = http_head(gw.http, &own);
        if !path.contains("scope=all") {
            assert!(
                r.status == 200,
                "{what} as the owner: {} {}",
                r.status,
                r.body
            );
        }
    }
    // The same idempotency key as B's creates A's own order, never returns B's.
    let id_a = place(
        gw.http,
        &a,
        "key-bob",
        &order_json("AAPL", "BUY", 1, Some(100)),
    );
    assert_ne!(id_a, id_b);
    assert_eq!(order(gw.http, &a, &id_a)["accountId"], "sec-alice");
    // B's order is untouched: no cancel, no amend.
    let ob = order(gw.http, &b, &id_b);
    assert_eq!(
        (ob["status"].as_str(), ob["qty"].as_u64()),
        (Some("ACCEPTED"), Some(10)),
        "{ob}"
    );
    let ev = http_full(gw.http, &get(&format!("/orders/{id_b}/events"), Some(&b))).json();
    let types: Vec<&str> = ev["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert!(
        !types.contains(&"CancelRequested") && !types.contains(&"AmendRequested"),
        "{types:?}"
    );
    // A's account events and A's v3 confirm never include B's.
    let ev = http_full(gw.http, &get("/accounts/sec-alice/events", Some(&a)));
    assert_eq!(ev.status, 200);
    assert!(!ev.body.contains("sec-bob"), "{}", ev.body);

    // SSE: A's account stream sees A's next order and nothing of B's (B's comes first).
    let mut sse = open_sse(gw.http, "/stream", &a);
    let head = sse_text(&mut sse, Duration::from_secs(5), Some("event: ready"));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let id_b2 = place(
        gw.http,
        &b,
        "key-bob-2",
        &order_json("AAPL", "BUY", 1, Some(100)),
    );
    let id_a2 = place(
        gw.http,
        &a,
        "key-alice-2",
        &order_json("AAPL", "BUY", 1, Some(100)),
    );
    let seen = sse_text(&mut sse, Duration::from_secs(10), Some(&id_a2));
    let seen = seen + &sse_text(&mut sse, Duration::from_millis(300), None);
    assert!(seen.contains(&id_a2), "A's own event missing: {seen}");
    assert!(
        !seen.contains(&id_b2) && !seen.contains("sec-bob"),
        "B's event on A's stream: {seen}"
    );

    // WebSocket: A following B's order by id gets a `ready` and then nothing of it, even when
    // B cancels it; A's account WebSocket likewise.
    let mut ws_order = Ws::connect(gw.http, &format!("/ws?orderId={id_b}"), &a).unwrap();
    let mut ws_acct = Ws::connect(gw.http, "/ws", &a).unwrap();
    let first = ws_order.texts_for(Duration::from_millis(300));
    assert!(
        first.len() == 1 && first[0].contains("\"ready\""),
        "{first:?}"
    );
    let r = http_full(
        gw.http,
        &post_json(&format!("/orders/{id_b}/cancel"), Some(&b), "", "{}"),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id_a3 = place(
        gw.http,
        &a,
        "key-alice-3",
        &order_json("AAPL", "BUY", 1, Some(100)),
    );
    let acct = ws_acct.texts_for(Duration::from_secs(2));
    assert!(acct.iter().any(|m| m.contains(&id_a3)), "{acct:?}");
    assert!(
        !acct
            .iter()
            .any(|m| m.contains(&id_b) || m.contains("sec-bob")),
        "{acct:?}"
    );
    let later = ws_order.texts_for(Duration::from_millis(500));
    assert!(
        later.is_empty(),
        "B's order events on A's WebSocket: {later:?}"
    );
    // `?token=` cannot override the header's identity either way: with A's header and B's
    // token in the query, the stream is A's.
    let mut ws_mixed = Ws::connect(gw.http, &format!("/ws?token={b}"), &a).unwrap();
    let ready = ws_mixed.texts_for(Duration::from_millis(300));
    assert!(ready.iter().any(|m| m.contains("sec-alice")), "{ready:?}");

    // The remaining routes hold no per-account data: audit verify/anchor (chain status for
    // any token), health, metrics, stats, the console.
    for path in ["/audit/verify", "/audit/anchor"] {
        let r = http_full(gw.http, &get(path, Some(&a)));
        assert!(r.status == 200 || r.status == 404, "{path}: {}", r.body);
        assert!(
            !r.body.contains("sec-bob") && !r.body.contains(&id_b),
            "{path}: {}",
            r.body
        );
    }
}

// Goal: a path with a `%` escape followed by a non-ASCII character (valid UTF-8, which hyper
// accepts in a path) gets an answer. (The session id decoder once sliced the path by byte index
// inside that character and panicked; the release profile aborts on panic, so any valid token
// could stop the gateway.)
#[test]
fn non_ascii_after_percent_in_v3_confirm_path_is_answered() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
        ],
    );
    let t = token("utf8");
    let mut req = b"GET /v3/orders/%a".to_vec();
    req.extend_from_slice("é".as_bytes());
    req.extend_from_slice(
        format!("/1 HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let r = http_head(gw.http, &req);
    assert_eq!(r.status, 403, "{r:?}");
}

// ---------------------------------------------------------------------------------------------
// 3. Admin endpoints need the ops scope (a whole word of the `scope` claim).

// Goal: kill-switch reads and writes and `GET /stream?scope=all` need a token whose scope
// claim has the word `ops` (string or array): no scope, `devops`, `ops-admin`, `OPS`,
// `["devops"]` are 403 forbidden, `read ops` and `["read","ops"]` pass; a bad token is 401.
#[test]
fn admin_endpoints_need_the_ops_scope_word() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
        ],
    );
    let with_scope = |scope: Value| {
        let mut c = json!({"sub": "op", "accountId": "op", "exp": now() + 600});
        if !scope.is_null() {
            c["scope"] = scope;
        }
        token_with(c)
    };
    let kill_body = json!({"scope": "session", "id": "nobody-sec", "on": false}).to_string();
    let probes = |t: &str| -> Vec<(String, u16, String)> {
        [
            (
                "GET /v3/admin/kill-switches",
                get("/v3/admin/kill-switches", Some(t)),
            ),
            (
                "POST /v3/admin/kill-switches",
                post_json("/v3/admin/kill-switches", Some(t), "", &kill_body),
            ),
            ("GET /stream?scope=all", get("/stream?scope=all", Some(t))),
        ]
        .into_iter()
        .map(|(what, req)| {
            let r = http_head(gw.http, &req);
            (what.to_string(), r.status, r.body)
        })
        .collect()
    };
    for scope in [
        Value::Null,
        json!(""),
        json!("devops"),
        json!("ops-admin"),
        json!("opsx"),
        json!("OPS"),
        json!("trade,ops"),
        json!(["devops"]),
        json!(["read ops-x"]),
    ] {
        for (what, status, body) in probes(&with_scope(scope.clone())) {
            assert_eq!(
                (status, body.as_str()),
                (403, r#"{"error":"forbidden"}"#),
                "{what} with scope {scope}"
            );
        }
    }
    for scope in [json!("ops"), json!("read ops"), json!(["read", "ops"])] {
        for (what, status, body) in probes(&with_scope(scope.clone())) {
            assert_eq!(status, 200, "{what} with scope {scope}: {body}");
        }
    }
    // No token or a bad one is 401, not 403.
    for (what, status, body) in probes("not.a.token") {
        assert_eq!(
            (status, body.as_str()),
            (401, r#"{"error":"InvalidJwtHeader"}"#),
            "{what}"
        );
    }
    let r = http_full(gw.http, &get("/v3/admin/kill-switches", None));
    assert_auth_error(&r, "MissingBearerToken", "no token");
}

// ---------------------------------------------------------------------------------------------
// 4. Limits.

// Goal: an oversized body is 413 JSON BODY_TOO_LARGE (v3 and durable path); an oversized
// request head is 431 (hyper's answer: a status line, no body) and too many header lines
// likewise; the gateway keeps serving.
#[test]
fn body_and_header_size_limits() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
        ],
    );
    let t = token("limits");
    let big = format!(r#"{{"symbol":"AAPL","pad":"{}"}}"#, "x".repeat(5000));
    for (path, extra) in [("/v3/orders", ""), ("/orders", "Idempotency-Key: k\r\n")] {
        let r = http_full(gw.http, &post_json(path, Some(&t), extra, &big));
        let v = r.assert_json(path);
        assert_eq!(
            (r.status, v["reason"].as_str()),
            (413, Some("BODY_TOO_LARGE")),
            "{path}"
        );
    }
    // One 100 KiB header line.
    let huge = format!("X-Pad: {}\r\n", "a".repeat(100 * 1024));
    let r = http_full(gw.http, &request("GET", "/health", None, &huge, ""));
    assert_eq!(r.status, 431, "{r:?}");
    // A token of 70 KiB in the Authorization header: the same.
    let r = http_full(
        gw.http,
        &request("GET", "/stream", Some(&"a".repeat(70 * 1024)), "", ""),
    );
    assert_eq!(r.status, 431, "{r:?}");
    // 200 small header lines (hyper's limit is 100).
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = http_full(gw.http, &request("GET", "/health", None, &many, ""));
    assert_eq!(r.status, 431, "{r:?}");
    // Still serving.
    assert_accepted(&post_order(gw.http, &t, &good_order()));
}

/// True when the server closes `s` (EOF or reset) within `within`, without answering.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut b = [0u8; 64];
    match s.read(&mut b) {
        Ok(0) => true,
        Ok(_) => false,
        Err(e) => matches!(
            e.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted
        ),
    }
}

/// A connection from the loopback address `src` (e.g. 127.0.0.2) to 127.0.0.1:`port`.
fn connect_from(src: &str, port: u16) -> TcpStream {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind(format!("{src}:0").parse::<SocketAddr>().unwrap())
            .unwrap();
        sock.connect(SocketAddr::from(([127, 0, 0, 1], port)))
            .await
            .unwrap()
    });
    let s = s.into_std().unwrap();
    s.set_nonblocking(false).unwrap();
    s
}

/// Two keep-alive HTTP connections and one TCP connection, each proven open and counted by an
/// answered request (a connection the gateway is still closing — the readiness probe's — may
/// be counted for a moment, so a refused one is retried).
fn hold_three(gw: &Gateway) -> Vec<TcpStream> {
    let t = token("held");
    let open_http = || {
        wait_for(5, "a held HTTP connection", || {
            let mut s = tcp_connect(gw.http);
            s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
                .map_err(|e| e.to_string())?;
            let r = read_response(&mut s);
            if r.status == 200 {
                Ok(s)
            } else {
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("{r:?}"))
            }
        })
    };
    let first = open_http();
    let second = open_http();
    let third = wait_for(5, "a held TCP connection", || {
        let mut s = tcp_connect(gw.tcp);
        s.write_all(&frame(&t, "AAPL", 1, 1, 1, 100))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; RESPONSE_LEN];
        match s.read_exact(&mut buf) {
            Ok(()) => Ok(s),
            Err(e) => {
                std::thread::sleep(Duration::from_millis(100));
                Err(e.to_string())
            }
        }
    });
    vec![first, second, third]
}

// Goal: GATEWAY_MAX_CONNECTIONS (HTTP and TCP together): the connection over the limit is
// closed at once, counted, and a slot freed is usable again.
#[test]
fn connection_limit_closes_the_excess_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
            ("GATEWAY_MAX_CONNECTIONS", "3"),
            ("GATEWAY_MAX_CONNECTIONS_PER_IP", "0"),
        ],
    );
    let held = hold_three(&gw);
    let t0 = Instant::now();
    let mut over = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)),
        "not closed"
    );
    let mut over_tcp = TcpStream::connect(("127.0.0.1", gw.tcp)).unwrap();
    assert!(
        closed_within(&mut over_tcp, Duration::from_secs(2)),
        "TCP not closed"
    );
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    drop(held);
    let refused = wait_for(5, "a slot to free up", || {
        http_get(gw.http, "/metrics", None)
            .map_err(|e| e.to_string())
            .and_then(|(code, body)| {
                if code != 200 {
                    return Err(format!("{code}"));
                }
                body.lines()
                    .find_map(|l| l.strip_prefix("gateway_connections_refused_total "))
                    .and_then(|v| v.parse::<f64>().ok())
                    .ok_or_else(|| body.clone())
            })
    });
    assert!(refused >= 2.0, "refused {refused}");
}

// Goal: GATEWAY_MAX_CONNECTIONS_PER_IP counts HTTP and TCP connections of one address
// together; the one over the limit is closed at once and counted in
// gateway_connections_refused_per_ip_total; another address is unaffected; a slot freed is
// usable again.
#[test]
fn per_ip_connection_limit() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
            ("GATEWAY_MAX_CONNECTIONS_PER_IP", "3"),
        ],
    );
    let mut held = hold_three(&gw);
    // Read from another loopback address, which has its own budget (so reading works while
    // 127.0.0.1 is full).
    let refused_per_ip = || {
        let mut other = connect_from("127.0.0.2", gw.http);
        other
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        other
            .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let r = read_response(&mut other);
        assert_eq!(r.status, 200, "{r:?}");
        r.body
            .lines()
            .find_map(|l| l.strip_prefix("gateway_connections_refused_per_ip_total "))
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_else(|| panic!("no per-IP counter: {}", r.body))
    };
    let before = refused_per_ip();
    let mut over = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    assert!(
        closed_within(&mut over, Duration::from_secs(2)),
        "HTTP over the limit"
    );
    let mut over_tcp = TcpStream::connect(("127.0.0.1", gw.tcp)).unwrap();
    assert!(
        closed_within(&mut over_tcp, Duration::from_secs(2)),
        "TCP over the limit"
    );
    assert_eq!(refused_per_ip() - before, 2.0);
    // The held TCP connection still works (it was counted, not disturbed).
    let r = tcp_exchange(&mut held[2], &[frame(&token("ip"), "AAPL", 1, 1, 1, 100)])[0];
    assert_eq!(r.status, 202);
    // Freeing one slot lets the address in again.
    held.pop();
    wait_for(5, "the freed slot", || {
        http_get(gw.http, "/health", None)
            .map_err(|e| e.to_string())
            .and_then(|(c, _)| if c == 200 { Ok(()) } else { Err(c.to_string()) })
    });
}

// Goal: slow clients are cut off: a head trickled past GATEWAY_HEADER_READ_TIMEOUT_MS, a body
// trickled past GATEWAY_BODY_READ_TIMEOUT_MS (408 JSON BODY_READ_TIMEOUT), and a TCP frame
// left half-sent past V3_TCP_PARTIAL_FRAME_TIMEOUT_MS (counted from its first byte, so
// trickling does not extend it); a TCP connection idle between frames stays open.
#[test]
fn slow_clients_are_cut_off() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
            ("V2_DURABLE_WAIT_TIMEOUT_MS", "20000"),
            ("GATEWAY_HEADER_READ_TIMEOUT_MS", "600"),
            ("GATEWAY_BODY_READ_TIMEOUT_MS", "600"),
            ("V3_TCP_PARTIAL_FRAME_TIMEOUT_MS", "600"),
        ],
    );
    let t = token("slow");
    let run = |what: &str, f: &dyn Fn() -> (bool, Duration)| {
        let (closed, took) = f();
        assert!(closed, "{what}: not closed");
        assert!(
            took >= Duration::from_millis(400) && took < Duration::from_secs(5),
            "{what}: closed after {took:?}"
        );
    };
    // Slowloris on the head: one header line every 200 ms, for ever.
    run("trickled head", &|| {
        let mut s = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
        let t0 = Instant::now();
        s.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").unwrap();
        s.set_read_timeout(Some(Duration::from_millis(200)))
            .unwrap();
        let mut b = [0u8; 1024];
        for i in 0..50 {
            match s.read(&mut b) {
                Ok(0) => return (true, t0.elapsed()),
                Ok(n) => {
                    // hyper may say 408 before closing; that counts as cut off too.
                    let text = String::from_utf8_lossy(&b[..n]).to_string();
                    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
                    return (true, t0.elapsed());
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {
                    return (true, t0.elapsed())
                }
                Err(_) => {}
            }
            if s.write_all(format!("X-{i}: y\r\n").as_bytes()).is_err() {
                return (true, t0.elapsed());
            }
        }
        (false, t0.elapsed())
    });
    // Slow body: the head is complete, the body never is.
    run("trickled body", &|| {
        let mut s = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let t0 = Instant::now();
        s.write_all(
            format!(
                "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n{JSON_CT}Content-Length: 100\r\n\r\n{{\"sym"
            )
            .as_bytes(),
        )
        .unwrap();
        let r = read_response(&mut s);
        let v = r.assert_json("slow body");
        assert_eq!(
            (r.status, v["reason"].as_str()),
            (408, Some("BODY_READ_TIMEOUT")),
            "{r:?}"
        );
        (true, t0.elapsed())
    });
    // Half a frame, then silence.
    run("half a frame", &|| {
        let mut s = tcp_connect(gw.tcp);
        let f = frame(&t, "AAPL", 1, 1, 1, 100);
        let t0 = Instant::now();
        s.write_all(&f[..150]).unwrap();
        (closed_within(&mut s, Duration::from_secs(8)), t0.elapsed())
    });
    // A frame trickled one byte per 100 ms: the deadline runs from its first byte.
    run("trickled frame", &|| {
        let mut s = tcp_connect(gw.tcp);
        let f = frame(&t, "AAPL", 1, 1, 1, 100);
        let t0 = Instant::now();
        for b in &f[..100] {
            if s.write_all(&[*b]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
            if t0.elapsed() > Duration::from_secs(3) {
                break;
            }
        }
        (closed_within(&mut s, Duration::from_secs(5)), t0.elapsed())
    });
    // Frames complete, then idle well past the timeout: the session stays.
    let mut s = tcp_connect(gw.tcp);
    let f = frame(&t, "AAPL", 1, 1, 1, 100);
    assert_eq!(
        tcp_exchange(&mut s, std::slice::from_ref(&f))[0].status,
        202
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(
        tcp_exchange(&mut s, std::slice::from_ref(&f))[0].status,
        202
    );
    // A partial frame completed in time is fine.
    s.write_all(&f[..200]).unwrap();
    std::thread::sleep(Duration::from_millis(200));
    s.write_all(&f[200..]).unwrap();
    let mut buf = [0u8; RESPONSE_LEN];
    s.read_exact(&mut buf).unwrap();
    assert_eq!(Response::decode(&buf).status, 202);
}

// ---------------------------------------------------------------------------------------------
// 5. TLS.

struct Tls {
    _dir: tempfile::TempDir,
    cert_path: String,
    key_path: String,
    cert_der: Vec<u8>,
}

fn make_cert() -> Tls {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, ck.cert.pem()).unwrap();
    std::fs::write(&key_path, ck.key_pair.serialize_pem()).unwrap();
    Tls {
        cert_path: cert_path.to_str().unwrap().into(),
        key_path: key_path.to_str().unwrap().into(),
        cert_der: ck.cert.der().to_vec(),
        _dir: dir,
    }
}

fn client_config(cert_der: &[u8]) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(cert_der.to_vec()))
        .unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Arc::new(
        rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    )
}

type TlsConn = rustls::StreamOwned<rustls::ClientConnection, TcpStream>;

fn tls_connect(cfg: &Arc<rustls::ClientConfig>, port: u16) -> std::io::Result<TlsConn> {
    let sock = TcpStream::connect(("127.0.0.1", port))?;
    sock.set_read_timeout(Some(Duration::from_secs(10)))?;
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let conn = rustls::ClientConnection::new(cfg.clone(), name).map_err(std::io::Error::other)?;
    let mut s = rustls::StreamOwned::new(conn, sock);
    // Drive the handshake now, so a failure shows here.
    while s.conn.is_handshaking() {
        s.conn.complete_io(&mut s.sock)?;
    }
    Ok(s)
}

fn https(cfg: &Arc<rustls::ClientConfig>, port: u16, req: &[u8]) -> std::io::Result<HttpResponse> {
    let mut s = tls_connect(cfg, port)?;
    s.write_all(req)?;
    s.flush()?;
    Ok(read_response(&mut s))
}

/// Starts `switchyard gateway` with TLS; ready once `/health` answers over HTTPS.
fn start_tls(dir: &std::path::Path, tls: &Tls, env: &[(&str, &str)]) -> Gateway {
    let (http, tcp) = (free_port(), free_port());
    let mut cmd = Gateway::command(dir, None, http, tcp);
    cmd.env("V3_SHARD_COUNT", "1")
        // The machine is shared: a slow fdatasync must not turn a 202 into a timeout.
        .env("V2_DURABLE_WAIT_TIMEOUT_MS", "20000")
        .env("GATEWAY_TLS_CERT", &tls.cert_path)
        .env("GATEWAY_TLS_KEY", &tls.key_path);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().expect("spawn switchyard");
    let mut gw = Gateway { child, http, tcp };
    let cfg = client_config(&tls.cert_der);
    let req = get("/health", None);
    wait_for(30, "the TLS gateway to answer /health", || {
        if let Ok(Some(status)) = gw.child.try_wait() {
            panic!("gateway exited during startup: {status}");
        }
        match https(&cfg, http, &req) {
            Ok(r) if r.status == 200 => Ok(()),
            Ok(r) => Err(format!("{r:?}")),
            Err(e) => Err(e.to_string()),
        }
    });
    gw
}

fn tls_frames(conn: &mut TlsConn, frames: &[Vec<u8>]) -> Vec<Response> {
    conn.write_all(&frames.concat()).unwrap();
    conn.flush().unwrap();
    frames
        .iter()
        .map(|_| {
            let mut buf = [0u8; RESPONSE_LEN];
            conn.read_exact(&mut buf).unwrap();
            Response::decode(&buf)
        })
        .collect()
}

// Goal: with GATEWAY_TLS_CERT/KEY the HTTP listener is HTTPS (an order placed, a durable order
// placed, a keep-alive connection reused, an SSE stream opened) and the v3 TCP ingress speaks frames inside TLS
// (pipelined); plain HTTP or plain frames to the TLS ports are dropped cleanly and the server
// keeps serving; a client that does not trust the certificate fails the handshake.
#[test]
fn tls_on_both_listeners() {
    let tls = make_cert();
    let dir = tempfile::tempdir().unwrap();
    let mut gw = start_tls(dir.path(), &tls, &[]);
    let cfg = client_config(&tls.cert_der);
    let t = token("tls");
    let r = https(
        &cfg,
        gw.http,
        &post_json("/v3/orders", Some(&t), "", &good_order()),
    )
    .unwrap();
    assert_eq!(assert_accepted(&r), 1);
    let r = https(
        &cfg,
        gw.http,
        &post_json(
            "/orders",
            Some(&t),
            "Idempotency-Key: tls-1\r\n",
            &good_order(),
        ),
    )
    .unwrap();
    assert_eq!(r.status, 202, "{r:?}");
    // Keep-alive over TLS: two requests on one connection.
    let mut conn = tls_connect(&cfg, gw.http).unwrap();
    for _ in 0..2 {
        let body = good_order();
        let req = format!(
            "POST /v3/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {t}\r\n{JSON_CT}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        conn.write_all(req.as_bytes()).unwrap();
        conn.flush().unwrap();
        assert_accepted(&read_response(&mut conn));
    }
    assert_eq!(
        conn.conn.alpn_protocol(),
        None,
        "the client offered no ALPN, so none is chosen"
    );
    // Binary frames inside TLS, pipelined.
    let mut tcp = tls_connect(&cfg, gw.tcp).unwrap();
    let f = frame(&t, "AAPL", 1, 1, 1, 100);
    let answers = tls_frames(
        &mut tcp,
        &[f.clone(), f.clone(), frame(&t, "", 1, 1, 1, 100)],
    );
    assert_eq!(
        answers.iter().map(|a| a.status).collect::<Vec<_>>(),
        [202, 202, 422]
    );
    assert!(answers[1].session_seq > answers[0].session_seq);
    // A stream over TLS: SSE frames are flushed through TLS as they come.
    let mut sse = tls_connect(&cfg, gw.http).unwrap();
    sse.write_all(&get("/stream", Some(&t))).unwrap();
    sse.flush().unwrap();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    while !String::from_utf8_lossy(&seen).contains("event: ready") {
        let n = sse.read(&mut chunk).unwrap();
        assert!(
            n > 0,
            "SSE over TLS ended: {}",
            String::from_utf8_lossy(&seen)
        );
        seen.extend_from_slice(&chunk[..n]);
    }
    assert!(seen.starts_with(b"HTTP/1.1 200"));
    drop(sse);
    // Plain HTTP to the TLS port: no HTTP answer, the connection is dropped.
    let mut plain = TcpStream::connect(("127.0.0.1", gw.http)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    plain
        .write_all(b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(
        !got.starts_with(b"HTTP/"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    // Plain frames to the TLS TCP port: dropped too.
    let mut plain = TcpStream::connect(("127.0.0.1", gw.tcp)).unwrap();
    plain
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let _ = plain.write_all(&f);
    let mut got = Vec::new();
    let _ = plain.read_to_end(&mut got);
    assert!(got.len() != RESPONSE_LEN, "answered a plain frame");
    // A client that does not trust the certificate fails.
    let other = make_cert();
    assert!(tls_connect(&client_config(&other.cert_der), gw.http).is_err());
    // The server is alive and still serving both listeners.
    assert!(gw.child.try_wait().unwrap().is_none(), "gateway died");
    assert_eq!(
        https(&cfg, gw.http, &get("/health", None)).unwrap().status,
        200
    );
    assert_eq!(tls_frames(&mut tcp, &[f])[0].status, 202);
    gw.terminate();
}

// Goal: V3_TCP_TLS=false keeps the binary ingress plain beside an HTTPS listener.
#[test]
fn tls_http_with_plain_tcp() {
    let tls = make_cert();
    let dir = tempfile::tempdir().unwrap();
    let gw = start_tls(dir.path(), &tls, &[("V3_TCP_TLS", "false")]);
    let r = tcp_one(gw.tcp, frame(&token("mixed"), "AAPL", 1, 1, 1, 100));
    assert_eq!(r.status, 202);
}

// Goal: TLS configuration mistakes stop startup with a message naming the variable: a
// certificate without a key, a key without a certificate, V3_TCP_TLS=true without either, an
// unreadable file, a key of another certificate.
#[test]
fn tls_configuration_errors_name_the_variable() {
    let tls = make_cert();
    let other = make_cert();
    for (env, key) in [
        (
            vec![("GATEWAY_TLS_CERT", tls.cert_path.as_str())],
            "GATEWAY_TLS_KEY",
        ),
        (
            vec![("GATEWAY_TLS_KEY", tls.key_path.as_str())],
            "GATEWAY_TLS_CERT",
        ),
        (vec![("V3_TCP_TLS", "true")], "V3_TCP_TLS"),
        (
            vec![
                ("GATEWAY_TLS_CERT", "/nonexistent/cert.pem"),
                ("GATEWAY_TLS_KEY", tls.key_path.as_str()),
            ],
            "GATEWAY_TLS_CERT",
        ),
        (
            vec![
                ("GATEWAY_TLS_CERT", tls.cert_path.as_str()),
                ("GATEWAY_TLS_KEY", other.key_path.as_str()),
            ],
            "GATEWAY_TLS_KEY",
        ),
        (vec![("V3_TCP_TLS", "maybe")], "V3_TCP_TLS"),
        (
            vec![("GATEWAY_MAX_CONNECTIONS_PER_IP", "-1")],
            "GATEWAY_MAX_CONNECTIONS_PER_IP",
        ),
        (
            vec![("V3_TCP_PARTIAL_FRAME_TIMEOUT_MS", "soon")],
            "V3_TCP_PARTIAL_FRAME_TIMEOUT_MS",
        ),
    ] {
        let err = startup_error(None, &env);
        assert!(err.contains(key), "{env:?}: {err}");
    }
}
