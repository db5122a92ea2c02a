//! HTTP ingress on hyper 1 (HTTP/1.1, keep-alive), routed by hand: a handful of fixed paths
//! do not need a router, and a match costs nothing on the hot path.
//!
//! Every error is a JSON body with a reason, never a plain-text framework error: unknown paths
//! 404, wrong methods 405, wrong content type 415, oversized bodies 413, bad JSON 400.

mod admin;
mod audit;
pub mod durable;
mod openapi;
mod ops;
mod orders;
pub mod timed_io;
mod ui;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use switchyard_auth::{AuthError, Identity};
use tokio::net::TcpListener;

use crate::metrics::inc;
use crate::state::Gateway;
use timed_io::{ConnTiming, TimedIo};

/// Every response body: a complete buffer (all JSON answers; no allocation beyond the bytes)
/// or a boxed stream (SSE and other long-lived responses).
pub type Body = http_body_util::Either<Full<Bytes>, BoxBody<Bytes, Infallible>>;

/// A complete body from bytes.
pub fn full(bytes: impl Into<Bytes>) -> Body {
    http_body_util::Either::Left(Full::new(bytes.into()))
}

/// Serves HTTP/1.1 until `shutdown` fires; HTTPS when `GATEWAY_TLS_CERT` is set.
pub async fn serve(
    gw: Arc<Gateway>,
    listener: TcpListener,
    shutdown: tokio::sync::watch::Receiver<bool>,
) {
    let tls = match crate::tls::acceptor(&gw.cfg, crate::tls::Listener::Http) {
        Ok(t) => t,
        Err(e) => {
            // Validated at startup; only a file changed since then gets here.
            tracing::error!(%e, "HTTP listener not served");
            return;
        }
    };
    BODY_READ_TIMEOUT_MS.store(gw.cfg.gateway.body_read_timeout_ms, Ordering::Relaxed);
    let handshake_timeout = Duration::from_millis(gw.cfg.gateway.header_read_timeout_ms);
    crate::accept_loop(gw, listener, shutdown, move |gw, stream, stop| {
        let tls = tls.clone();
        async move {
            match tls {
                None => connection(gw, stream, stop).await,
                Some(acceptor) => {
                    // A plain-HTTP request to the TLS port fails the handshake here and the
                    // connection is dropped; nothing else is disturbed.
                    if let Some(s) =
                        crate::tls::handshake(&acceptor, stream, handshake_timeout).await
                    {
                        connection(gw, s, stop).await
                    }
                }
            }
        }
    })
    .await
}

/// One HTTP/1.1 connection over a plain socket or a TLS stream (generic: the plain path has
/// no indirection).
async fn connection<S>(gw: Arc<Gateway>, stream: S, mut stop: tokio::sync::watch::Receiver<bool>)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let timing = Arc::new(ConnTiming::default());
    let io = TokioIo::new(TimedIo::new(stream, timing.clone(), gw.clone()));
    let svc_gw = gw.clone();
    let svc = hyper::service::service_fn(move |req| {
        let gw = svc_gw.clone();
        let timing = timing.clone();
        async move { Ok::<_, Infallible>(route(&gw, &timing, req).await) }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(Duration::from_millis(gw.cfg.gateway.header_read_timeout_ms))
        .max_buf_size(HEAD_MAX)
        // `max_buf_size` alone is checked only between reads, so a head arriving in a few
        // large reads could pass it; this bounds the parsed head itself (431 from hyper).
        .max_header_size(HEAD_MAX)
        .serve_connection(io, svc)
        // `GET /ws` hands the connection over to a WebSocket.
        .with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        _ = stop.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// Longest request head (start line and header lines): 431 beyond it. Tokens are at most
/// 4 KiB, so honest heads are far below.
const HEAD_MAX: usize = 64 * 1024;

/// `GATEWAY_BODY_READ_TIMEOUT_MS` of the gateway serving in this process (set by [`serve`];
/// one gateway per process outside tests, and tests that start several use one value).
/// Kept here rather than passed down so the body readers keep their signatures.
static BODY_READ_TIMEOUT_MS: AtomicU64 = AtomicU64::new(10_000);

async fn route(gw: &Arc<Gateway>, timing: &ConnTiming, req: Request<Incoming>) -> Response<Body> {
    inc(&gw.metrics.http_requests);
    let path = req.uri().path();
    let v3 = &gw.cfg.v3;
    match (req.method(), path) {
        (&Method::POST, "/v3/orders") if v3.http_ingress_enable => {
            orders::post_v3_order(gw, timing, req).await
        }
        (_, "/v3/orders") if v3.http_ingress_enable => method_not_allowed("POST"),
        (&Method::GET, p) if v3.http_confirm_enable && p.starts_with("/v3/orders/") => {
            orders::get_v3_confirm(gw, &req)
        }
        // `/v3/orders/{sessionId}/{sessionSeq}` with another method.
        (_, p) if v3.http_confirm_enable && is_confirm_path(p) => method_not_allowed("GET"),
        (&Method::GET, "/v3/admin/kill-switches") => admin::get_kill_switches(gw, &req),
        (&Method::POST, "/v3/admin/kill-switches") => admin::post_kill_switch(gw, req).await,
        (_, "/v3/admin/kill-switches") => method_not_allowed("GET, POST"),
        (_, p)
            if p == "/orders"
                || p.starts_with("/orders/")
                || p == "/v2/orders"
                || p.starts_with("/v2/orders/")
                || p.starts_with("/accounts/") =>
        {
            durable::route(gw, req).await
        }
        (&Method::GET, "/stream") => crate::stream::sse::get_stream(gw, &req),
        (&Method::GET, "/ws") => crate::stream::ws::get_ws(gw, req),
        (_, "/stream" | "/ws") => method_not_allowed("GET"),
        (&Method::GET, "/audit/verify") => audit::verify(gw, &req).await,
        (&Method::GET, "/audit/anchor") => audit::anchor(gw, &req).await,
        (_, "/audit/verify" | "/audit/anchor") => method_not_allowed("GET"),
        (&Method::GET, "/health") => ops::health(gw),
        (&Method::GET, "/metrics" | "/stats") if !ops::metrics_allowed(gw, &req) => {
            json_error(StatusCode::UNAUTHORIZED, "INVALID_METRICS_TOKEN")
        }
        (&Method::GET, "/metrics") => ops::metrics(gw),
        (&Method::GET, "/stats") => ops::stats(gw),
        (_, "/health" | "/metrics" | "/stats") => method_not_allowed("GET"),
        // The API's OpenAPI document (contracts/openapi.yaml), no token.
        (&Method::GET, "/openapi.yaml") => openapi::yaml(),
        (&Method::GET, "/openapi.json") => openapi::json(),
        (_, "/openapi.yaml" | "/openapi.json") => method_not_allowed("GET"),
        // The operations console: static files, no token (the page holds no data).
        (&Method::GET | &Method::HEAD, p) if ui::is_ui_path(p) => ui::get(p),
        (_, p) if ui::is_ui_path(p) => method_not_allowed("GET, HEAD"),
        _ => json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
    }
}

pub fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(full(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// `{"error":"<code>"}` — the reference's shape for auth and lookup errors.
pub fn json_error(status: StatusCode, code: &str) -> Response<Body> {
    json_response(
        status,
        serde_json::to_vec(&serde_json::json!({ "error": code })).unwrap_or_default(),
    )
}

/// 405 `{"error":"METHOD_NOT_ALLOWED"}` with the `Allow` header RFC 9110 requires of it: the
/// methods the path does serve (`allow`).
pub fn method_not_allowed(allow: &'static str) -> Response<Body> {
    let mut r = json_error(StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED");
    r.headers_mut()
        .insert(hyper::header::ALLOW, HeaderValue::from_static(allow));
    r
}

/// `/v3/orders/<session>/<seq>`: the confirm query's shape (a path without the second
/// segment is no resource at all: 404).
fn is_confirm_path(p: &str) -> bool {
    p.strip_prefix("/v3/orders/")
        .is_some_and(|rest| rest.contains('/'))
}

pub fn status(code: u16) -> StatusCode {
    StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// Verifies the bearer token (cached: a reused token costs no HMAC). With no key configured
/// every call fails with `SecretNotConfigured` (§2.1), even one without a bearer token.
pub fn authenticate(gw: &Gateway, req: &Request<Incoming>) -> Result<Arc<Identity>, AuthError> {
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    gw.auth
        .authenticate(header, switchyard_auth::now_sec())
        .inspect_err(|e| {
            if *e != AuthError::MissingBearerToken {
                inc(&gw.metrics.auth_failures);
            }
        })
}

pub fn auth_error(e: &AuthError) -> Response<Body> {
    json_error(status(e.http_status()), e.as_str())
}

/// Reads a body of at most `limit` bytes; the error is the response to send.
pub async fn read_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    use switchyard_protocol::http::{write_body_error, BodyError};
    let too_large = |limit| {
        let mut out = Vec::new();
        write_body_error(&mut out, &BodyError::too_large(limit));
        json_response(StatusCode::PAYLOAD_TOO_LARGE, out)
    };
    let declared = req
        .headers()
        .get(hyper::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let collect = Limited::new(req.into_body(), limit).collect();
    // A client that declares a body and then trickles it (or never sends it) would hold the
    // connection and its handler for ever: the body gets `GATEWAY_BODY_READ_TIMEOUT_MS`.
    let collected = match BODY_READ_TIMEOUT_MS.load(Ordering::Relaxed) {
        0 => collect.await,
        ms => match tokio::time::timeout(Duration::from_millis(ms), collect).await {
            Ok(r) => r,
            Err(_) => {
                return Err(body_error(&BodyError::new(
                    408,
                    "BODY_READ_TIMEOUT",
                    "the request body did not arrive within GATEWAY_BODY_READ_TIMEOUT_MS",
                )))
            }
        },
    };
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e)
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some() =>
        {
            Err(too_large(limit))
        }
        Err(_) => Err(json_error(StatusCode::BAD_REQUEST, "BODY_READ_FAILED")),
    }
}

/// True for `application/json` with optional parameters (`; charset=utf-8`).
/// Reads a JSON request body: another content type is 415 `UNSUPPORTED_MEDIA_TYPE`, and
/// `read_body`'s limits apply; every refusal is a JSON error with a reason.
pub async fn read_json_body(req: Request<Incoming>, limit: usize) -> Result<Bytes, Response<Body>> {
    if !is_json(&req) {
        return Err(body_error(&switchyard_protocol::http::BodyError::new(
            415,
            "UNSUPPORTED_MEDIA_TYPE",
            "Content-Type must be application/json",
        )));
    }
    read_body(req, limit).await
}

/// A body error (§ JSON 4xx with `reason`) as a response.
pub fn body_error(e: &switchyard_protocol::http::BodyError) -> Response<Body> {
    let mut out = Vec::with_capacity(128);
    switchyard_protocol::http::write_body_error(&mut out, e);
    json_response(status(e.status), out)
}

pub fn is_json(req: &Request<Incoming>) -> bool {
    req.headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
}

pub fn accepting(gw: &Gateway) -> bool {
    gw.accepting.load(Ordering::Acquire)
}
