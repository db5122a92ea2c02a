//! Server-Sent Events: `GET /stream` (the token's account; `?scope=all`: every account, for
//! `ops` tokens — the operations console's blotter) and the response any other stream
//! route builds with [`sse_response`] (`GET /orders/{id}/stream` uses `Filter::Order` and a
//! snapshot as `first`).
//!
//! Frames: `event: ready` (no id) first, then `first` if given (no id), then the replay or one
//! `resync_required` (no id), then live events `id: <n>\nevent: <name>\ndata: <json>\n\n`, and
//! `: keep-alive\n\n` every `SSE_KEEPALIVE_SEC`. The stream ends when the server shuts down
//! (`Hub::close`), or after a final `resync_required` (`"reason":"SLOW_CONSUMER"`) when the
//! client could not keep up.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Request, Response, StatusCode};
use tokio::time::{Interval, MissedTickBehavior};

use super::hub::{render_frame, Delivery, Filter, SubscribeError, Subscription};
use crate::http::{auth_error, authenticate, json_error, Body};
use crate::metrics::{inc, sse::SseMetrics};
use crate::state::Gateway;

const KEEP_ALIVE: &[u8] = b": keep-alive\n\n";

/// `GET /stream`: the account of the token, from `Last-Event-ID` if given. `?scope=all`
/// follows every account instead and needs a token whose `scope` claim contains `ops` (else
/// 403 `{"error":"forbidden"}`, as the admin endpoints); `?scope=account` is the default; any
/// other scope is 400 `{"error":"INVALID_SCOPE","detail":…}`.
pub fn get_stream(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Response<Body> {
    let id = match authenticate(gw, req) {
        Ok(id) => id,
        Err(e) => return auth_error(&e),
    };
    let filter = match query_param(req.uri().query(), "scope").as_deref() {
        None | Some("" | "account") => Filter::Account(id.account_id.to_string()),
        Some("all") if id.has_scope("ops") => Filter::All,
        Some("all") => return json_error(StatusCode::FORBIDDEN, "forbidden"),
        Some(_) => {
            let body = serde_json::json!({
                "error": "INVALID_SCOPE",
                "detail": "scope must be \"account\" (the token's account, the default) or \"all\" (every account; needs an ops token)",
            });
            return crate::http::json_response(
                StatusCode::BAD_REQUEST,
                serde_json::to_vec(&body).unwrap_or_default(),
            );
        }
    };
    let last = match last_event_id(req) {
        Ok(n) => n,
        Err(r) => return r,
    };
    sse_response(gw, filter, last, None)
}

/// An SSE response following `filter`: `ready`, then `first` (e.g. an `order_snapshot`
/// supplied by the caller), then replay after `last_event_id` or a resync notice, then live.
/// 503 `TOO_MANY_STREAMS` at `SSE_MAX_CLIENTS`, 503 `SHUTTING_DOWN` during shutdown.
///
/// A caller that sends a snapshot should rather subscribe first (`gw.hub.subscribe`), then
/// read the snapshot, then call [`sse_subscription_response`]: an update made between a
/// snapshot read first and the subscription would otherwise be in neither.
pub fn sse_response(
    gw: &Arc<Gateway>,
    filter: Filter,
    last_event_id: Option<u64>,
    first: Option<(&'static str, Bytes)>,
) -> Response<Body> {
    match gw.hub.subscribe(filter, last_event_id) {
        Ok(sub) => sse_subscription_response(gw, sub, first),
        Err(e) => subscribe_error(e),
    }
}

/// The SSE response of a subscription made by the caller.
pub fn sse_subscription_response(
    gw: &Arc<Gateway>,
    sub: Subscription,
    first: Option<(&'static str, Bytes)>,
) -> Response<Body> {
    let mut head = VecDeque::with_capacity(2);
    head.push_back(Bytes::from(render_frame(
        None,
        "ready",
        &ready_data(sub.filter()),
    )));
    if let Some((name, data)) = first {
        head.push_back(Bytes::from(render_frame(None, name, &data)));
    }
    let body = SseBody {
        head,
        sub,
        keepalive: keepalive(gw),
        metrics: gw.metrics.sse.clone(),
    };
    let mut r = Response::new(http_body_util::Either::Right(BoxBody::new(body)));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Proxies such as nginx buffer responses unless told otherwise.
    h.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    r
}

/// 503 `TOO_MANY_STREAMS` or `SHUTTING_DOWN`.
pub fn subscribe_error(e: SubscribeError) -> Response<Body> {
    let code = match e {
        SubscribeError::TooMany => "TOO_MANY_STREAMS",
        SubscribeError::Closed => "SHUTTING_DOWN",
    };
    json_error(StatusCode::SERVICE_UNAVAILABLE, code)
}

/// `{"accountId":…}` or `{"orderId":…}`, as the reference's `ready`; `{"scope":"all"}` for
/// an all-accounts stream.
pub(crate) fn ready_data(filter: &Filter) -> Vec<u8> {
    let v = match filter {
        Filter::Account(a) => serde_json::json!({ "accountId": a }),
        Filter::Order { order_id, .. } => serde_json::json!({ "orderId": order_id }),
        Filter::All => serde_json::json!({ "scope": "all" }),
    };
    serde_json::to_vec(&v).unwrap_or_default()
}

/// The keep-alive timer: first tick one period from now.
pub(crate) fn keepalive(gw: &Gateway) -> Interval {
    let period = Duration::from_millis(gw.cfg.stream.keepalive_ms.max(1));
    let mut i = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    i.set_missed_tick_behavior(MissedTickBehavior::Delay);
    i
}

/// The client's position: the `Last-Event-ID` header, else the `lastEventId` query parameter
/// (for clients that cannot set headers). Absent or empty: `None` (live only); `0` is live only
/// too. Anything but a decimal number is 400 `INVALID_LAST_EVENT_ID`: this server never sends
/// another kind of id, so such a value is a client bug, and treating it as absent would hide
/// the events the client missed.
#[allow(clippy::result_large_err)]
pub fn last_event_id(req: &Request<Incoming>) -> Result<Option<u64>, Response<Body>> {
    let header = req
        .headers()
        .get("last-event-id")
        .map(|v| v.to_str().unwrap_or("\u{fffd}").trim().to_string());
    let raw = header.or_else(|| query_param(req.uri().query(), "lastEventId"));
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(s) => s
            .parse::<u64>()
            .map(Some)
            .map_err(|_| json_error(StatusCode::BAD_REQUEST, "INVALID_LAST_EVENT_ID")),
    }
}

/// The (percent-decoded) value of `name` in a query string.
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
    switchyard_protocol::http::query_pairs(query?)
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The streaming body: head frames, then the subscription, with keep-alives when idle.
struct SseBody {
    head: VecDeque<Bytes>,
    sub: Subscription,
    keepalive: Interval,
    metrics: Arc<SseMetrics>,
}

impl hyper::body::Body for SseBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if let Some(b) = this.head.pop_front() {
            return Poll::Ready(Some(Ok(Frame::data(b))));
        }
        match this.sub.poll_next(cx) {
            Poll::Ready(Some(d)) => {
                let bytes = match d {
                    Delivery::Live(e) => {
                        this.metrics
                            .delivery_delay
                            .record(crate::clock::mono_ns().saturating_sub(e.published_mono_ns));
                        inc(&this.metrics.delivered);
                        e.frame()
                    }
                    Delivery::Replayed(e) => {
                        inc(&this.metrics.delivered);
                        e.frame()
                    }
                    Delivery::Notice { name, data } => Bytes::from(render_frame(None, name, &data)),
                };
                return Poll::Ready(Some(Ok(Frame::data(bytes))));
            }
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {}
        }
        if this.keepalive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(KEEP_ALIVE)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        false
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
}
