//! Yardsticks: the smallest servers that do the unavoidable part of the gateway's job, to
//! measure the gateway against.
//!
//! Whatever the gateway adds on top of a yardstick (auth, risk, sequencing, the journal) is
//! its own cost; whatever the yardstick itself costs is the price of the transport and the
//! runtime, which no gateway built on them can beat.
//!
//! - HTTP: hyper 1.x HTTP/1.1 with keep-alive on tokio's multi-thread runtime — what a real
//!   Rust server would use — reading the body and parsing it with serde_json into a struct
//!   with the order's fields, answering 202 with a body the size of the gateway's accept. No
//!   auth.
//! - TCP: reads 304-byte frames, decodes each with the protocol crate's decoder and answers a
//!   32-byte ACCEPT. It takes every complete frame that is buffered and writes all the answers
//!   in one write, so pipelined clients are served in batches.

use std::borrow::Cow;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::{Buf, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use switchyard_protocol::v3frame::{self, REQUEST_LEN};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

/// Same limit as the gateway's order body.
const BODY_MAX: usize = 4096;

/// The order body, with the gateway's field names and its refusal of unknown fields.
/// Parsing is the point; nothing reads the values.
#[allow(dead_code)]
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Order<'a> {
    #[serde(borrow)]
    symbol: Cow<'a, str>,
    #[serde(borrow)]
    side: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    order_type: Cow<'a, str>,
    qty: u64,
    #[serde(default)]
    price: Option<u64>,
    #[serde(default, borrow)]
    time_in_force: Option<Cow<'a, str>>,
    #[serde(default)]
    expire_at: Option<u64>,
    #[serde(default, borrow)]
    client_order_id: Option<Cow<'a, str>>,
}

/// Serves the HTTP yardstick on `listener` until `shutdown` completes. Open connections are
/// closed when it returns.
pub async fn serve_http(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    let seq = Arc::new(AtomicU64::new(0));
    serve(listener, shutdown, move |stream| {
        let seq = seq.clone();
        async move {
            let service = service_fn(move |req| handle_http(req, seq.clone()));
            // Errors here are the client's (reset, malformed request): end this connection.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        }
    })
    .await
}

async fn handle_http(
    req: Request<Incoming>,
    seq: Arc<AtomicU64>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // The same answer for the hot path and the durable path (`/orders`): the ceiling for both.
    if req.method() != Method::POST || !matches!(req.uri().path(), "/v3/orders" | "/orders") {
        return Ok(json_response(
            StatusCode::NOT_FOUND,
            r#"{"status":"REJECTED","reason":"NOT_FOUND"}"#.into(),
        ));
    }
    let body = match Limited::new(req.into_body(), BODY_MAX).collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return Ok(json_response(
                StatusCode::PAYLOAD_TOO_LARGE,
                r#"{"status":"REJECTED","reason":"BODY_TOO_LARGE"}"#.into(),
            ))
        }
    };
    if serde_json::from_slice::<Order<'_>>(&body).is_err() {
        return Ok(json_response(
            StatusCode::BAD_REQUEST,
            r#"{"status":"REJECTED","reason":"INVALID_JSON"}"#.into(),
        ));
    }
    // Shaped and sized like the gateway's accept body.
    let n = seq.fetch_add(1, Ordering::Relaxed) + 1;
    let body = format!(
        r#"{{"sessionId":"yardstick","sessionSeq":{n},"attemptId":"att_{n}","receivedAtNs":{},"status":"VOLATILE_ACCEPT"}}"#,
        now_ns()
    );
    Ok(json_response(StatusCode::ACCEPTED, body))
}

fn json_response(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// Serves the TCP yardstick on `listener` until `shutdown` completes.
pub async fn serve_tcp(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
) -> io::Result<()> {
    serve(listener, shutdown, |stream| async move {
        // A connection error only ends that connection.
        let _ = tcp_conn(stream).await;
    })
    .await
}

async fn tcp_conn(mut stream: TcpStream) -> io::Result<()> {
    stream.set_nodelay(true)?;
    let mut rbuf = BytesMut::with_capacity(64 * 1024);
    let mut wbuf: Vec<u8> = Vec::with_capacity(4 * 1024);
    let mut seq = 0u64;
    loop {
        if rbuf.capacity() - rbuf.len() < REQUEST_LEN * 16 {
            rbuf.reserve(64 * 1024);
        }
        if stream.read_buf(&mut rbuf).await? == 0 {
            return Ok(());
        }
        let complete = rbuf.len() / REQUEST_LEN * REQUEST_LEN;
        let received_at = now_ns();
        for chunk in rbuf[..complete].chunks_exact(REQUEST_LEN) {
            let Ok(frame) = <&[u8; REQUEST_LEN]>::try_from(chunk) else {
                continue; // chunks_exact only yields full frames
            };
            let resp = match v3frame::decode_request(frame) {
                Ok(_) => {
                    seq += 1;
                    v3frame::Response::accept(seq, received_at)
                }
                Err(e) => v3frame::Response::decode_error(e, received_at),
            };
            wbuf.extend_from_slice(&resp.encode());
        }
        rbuf.advance(complete);
        if !wbuf.is_empty() {
            stream.write_all(&wbuf).await?;
            wbuf.clear();
        }
    }
}

/// Accept loop shared by both yardsticks.
async fn serve<F, Fut>(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    on_conn: F,
) -> io::Result<()>
where
    F: Fn(TcpStream) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    // Small answers must leave at once (Nagle would hold them for the ACK).
                    let _ = stream.set_nodelay(true);
                    conns.spawn(on_conn(stream));
                }
                // Out of file descriptors and the like: keep serving the open connections.
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(10)).await,
            },
            // Reap finished connections so the set does not grow with every client.
            Some(_) = conns.join_next(), if !conns.is_empty() => {}
        }
    }
    conns.shutdown().await;
    Ok(())
}

/// Monotonic nanoseconds since the process's first call, standing in for the gateway's
/// receive timestamp.
fn now_ns() -> u64 {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    u64::try_from(epoch.elapsed().as_nanos()).unwrap_or(u64::MAX)
}
