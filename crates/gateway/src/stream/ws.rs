//! `GET /ws`: the same events as the SSE streams, as WebSocket text messages
//! `{"id":n,"event":"<name>","data":{…}}` (`id` absent on `ready` and `resync_required`
//! notices). The token comes from `Authorization: Bearer …` or, since browsers cannot set
//! headers on a WebSocket, from `?token=`. `?lastEventId=` (or `Last-Event-ID`) replays like
//! SSE; `?orderId=` narrows the stream to one order of the token's account (no snapshot).
//!
//! The handshake is answered here (hyper's upgrade), framing is `tokio-tungstenite`. The
//! server pings every `SSE_KEEPALIVE_SEC` and answers pings; the subscription has the same
//! bounded queue as SSE, and a client that cannot keep up gets a final `resync_required` and a
//! close with code 1013 (try again later). Shutdown closes with 1001 (going away).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

use super::hub::{Delivery, Filter, Subscription};
use super::sse::{keepalive, last_event_id, query_param, ready_data, subscribe_error};
use crate::http::{auth_error, authenticate, full, json_error, Body};
use crate::metrics::inc;
use crate::state::Gateway;

/// Clients only send control frames and closes; anything large is a mistake or an attack.
const MAX_CLIENT_MESSAGE: usize = 4 * 1024;

pub fn get_ws(gw: &Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let query = req.uri().query();
    let identity = match (
        req.headers().contains_key(hyper::header::AUTHORIZATION),
        query_param(query, "token"),
    ) {
        (false, Some(token)) => {
            let header = format!("Bearer {token}");
            gw.auth
                .authenticate(Some(header.as_bytes()), switchyard_auth::now_sec())
                .inspect_err(|_| inc(&gw.metrics.auth_failures))
        }
        _ => authenticate(gw, &req),
    };
    let identity = match identity {
        Ok(i) => i,
        Err(e) => return auth_error(&e),
    };
    let Some(key) = websocket_key(&req) else {
        let mut r = json_error(StatusCode::UPGRADE_REQUIRED, "WEBSOCKET_UPGRADE_REQUIRED");
        r.headers_mut()
            .insert(UPGRADE, HeaderValue::from_static("websocket"));
        return r;
    };
    let last = match last_event_id(&req) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let account = identity.account_id.to_string();
    let filter = match query_param(query, "orderId").filter(|o| !o.is_empty()) {
        Some(order_id) => Filter::Order { account, order_id },
        None => Filter::Account(account),
    };
    let sub = match gw.hub.subscribe(filter, last) {
        Ok(s) => s,
        Err(e) => return subscribe_error(e),
    };
    let accept = derive_accept_key(key.as_bytes());
    let upgrade = hyper::upgrade::on(req);
    let task_gw = gw.clone();
    tokio::spawn(async move {
        match upgrade.await {
            Ok(io) => serve(task_gw, TokioIo::new(io), sub).await,
            Err(e) => tracing::debug!(%e, "websocket upgrade failed"),
        }
    });
    let mut r = Response::new(full(Bytes::new()));
    *r.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = r.headers_mut();
    h.insert(CONNECTION, HeaderValue::from_static("Upgrade"));
    h.insert(UPGRADE, HeaderValue::from_static("websocket"));
    if let Ok(v) = HeaderValue::from_str(&accept) {
        h.insert(SEC_WEBSOCKET_ACCEPT, v);
    }
    r
}

/// The client's key if this is a valid version-13 upgrade request.
fn websocket_key(req: &Request<Incoming>) -> Option<String> {
    let h = req.headers();
    let has_token = |name, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let version_ok = h
        .get("sec-websocket-version")
        .is_some_and(|v| v.as_bytes() == b"13");
    if !(has_token(CONNECTION, "upgrade") && has_token(UPGRADE, "websocket") && version_ok) {
        return None;
    }
    h.get(SEC_WEBSOCKET_KEY)
        .and_then(|v| v.to_str().ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// Counts an open WebSocket for as long as it lives.
struct WsGauge(Arc<Gateway>);

impl Drop for WsGauge {
    fn drop(&mut self) {
        self.0
            .metrics
            .sse
            .ws_clients
            .fetch_sub(1, Ordering::Relaxed);
    }
}

async fn serve<S>(gw: Arc<Gateway>, io: S, mut sub: Subscription)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    gw.metrics.sse.ws_clients.fetch_add(1, Ordering::Relaxed);
    let _gauge = WsGauge(gw.clone());
    let config = WebSocketConfig::default()
        .max_message_size(Some(MAX_CLIENT_MESSAGE))
        .max_frame_size(Some(MAX_CLIENT_MESSAGE));
    let ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let (mut tx, mut rx) = ws.split();
    let metrics = gw.metrics.sse.clone();
    let ready = message(None, "ready", &ready_data(sub.filter()));
    if tx.send(ready).await.is_err() {
        return;
    }
    let mut keepalive = keepalive(&gw);
    loop {
        tokio::select! {
            d = sub.next() => {
                let msg = match d {
                    Some(Delivery::Live(e)) => {
                        metrics.delivery_delay.record(
                            crate::clock::mono_ns().saturating_sub(e.published_mono_ns),
                        );
                        inc(&metrics.delivered);
                        message(Some(e.id), e.name, &e.data)
                    }
                    Some(Delivery::Replayed(e)) => {
                        inc(&metrics.delivered);
                        message(Some(e.id), e.name, &e.data)
                    }
                    Some(Delivery::Notice { name, data }) => message(None, name, &data),
                    None => {
                        let (code, reason) = if sub.was_cut_off() {
                            (CloseCode::Again, "slow consumer")
                        } else {
                            (CloseCode::Away, "server shutting down")
                        };
                        let _ = tx
                            .send(Message::Close(Some(CloseFrame {
                                code,
                                reason: reason.into(),
                            })))
                            .await;
                        break;
                    }
                };
                if tx.send(msg).await.is_err() {
                    break;
                }
            }
            m = rx.next() => match m {
                // Pings are answered by tungstenite itself (the pong goes out with the next
                // read or write); text, binary and pongs need nothing.
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break,
                Some(Ok(_)) => {}
            },
            _ = keepalive.tick() => {
                if tx.send(Message::Ping(Bytes::new())).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = tx.close().await;
}

/// `{"id":n,"event":"<name>","data":<data>}`; no `id` for notices.
fn message(id: Option<u64>, name: &str, data: &[u8]) -> Message {
    let data = String::from_utf8_lossy(data);
    let data = if data.trim().is_empty() {
        "null"
    } else {
        &data
    };
    let text = match id {
        Some(id) => format!("{{\"id\":{id},\"event\":\"{name}\",\"data\":{data}}}"),
        None => format!("{{\"event\":\"{name}\",\"data\":{data}}}"),
    };
    Message::text(text)
}
