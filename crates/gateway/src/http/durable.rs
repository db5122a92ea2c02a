//! The durable order API (§2.3.3–2.3.5): `POST /orders` and `/v2/orders`, order queries,
//! cancel, and the audit event history.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Method, Request, Response, StatusCode};
use serde_json::json;
use switchyard_core::{OrderId, OrderStatus, Reason};
use switchyard_protocol::http::{
    parse_amend, parse_order, query_pairs, write_order_refusal, write_order_response,
    ORDER_BODY_MAX,
};

use super::{
    auth_error, authenticate, body_error, json_error, json_response, read_json_body, status, Body,
};
use crate::clock::{mono_ns, wall_ns};
use crate::events::{parse_instant_ms, EventQuery, LIMIT_DEFAULT, LIMIT_MAX};
use crate::orders::{self, AmendOutcome, CancelOutcome, Durability, Submitted};
use crate::records::{order_ref, parse_order_ref};
use crate::state::{Account, Gateway};

/// Header naming the durability level of `POST /orders` (`volatile`, `local`, `replicated`).
pub const DURABILITY_HEADER: &str = "durability";

/// Which contract a path speaks: the legacy one (`/orders`) or v2 (`/v2/orders`, statuses
/// normalized to PENDING/DURABLE/REJECTED).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Api {
    Legacy,
    V2,
}

/// Routes every path under `/orders`, `/v2/orders` and `/accounts`.
pub async fn route(gw: &Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_string();
    let (api, rest) = match path.strip_prefix("/v2") {
        Some(rest) => (Api::V2, rest),
        None => (Api::Legacy, path.as_str()),
    };
    let parts: Vec<&str> = rest.trim_start_matches('/').split('/').collect();
    let method = req.method().clone();
    match (method, parts.as_slice()) {
        (Method::POST, ["orders"]) => post_order(gw, req, api).await,
        (Method::GET, ["orders", "client", cid]) => {
            with_account(gw, &req, |a| get_by_client(gw, a, cid))
        }
        (Method::POST, ["orders", id, "cancel"]) => post_cancel(gw, &req, id).await,
        (Method::POST, ["orders", id, "amend"]) if api == Api::Legacy => {
            let id = id.to_string();
            post_amend(gw, req, &id).await
        }
        (Method::GET, ["orders", id, "stream"]) if api == Api::Legacy => {
            get_order_stream(gw, &req, id)
        }
        (Method::GET, ["orders", id, "events"]) if api == Api::Legacy => {
            get_events(gw, &req, Some(id), None).await
        }
        (Method::GET, ["accounts", acct, "events"]) if api == Api::Legacy => {
            get_events(gw, &req, None, Some(acct)).await
        }
        (Method::GET, ["orders", id]) => with_account(gw, &req, |a| get_order(gw, a, id, api)),
        (_, parts) => match allowed_methods(api, parts) {
            Some(allow) => super::method_not_allowed(allow),
            None => json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        },
    }
}

/// The methods a path under `/orders`, `/v2/orders` or `/accounts` serves, for the `Allow`
/// header of a 405; `None` for a path that names nothing (404). v2 has no amend, events or
/// streams. `/orders/client/cancel` is both a client order id query (GET) and the cancel of
/// the order `client` (POST).
fn allowed_methods(api: Api, parts: &[&str]) -> Option<&'static str> {
    let legacy = api == Api::Legacy;
    match parts {
        ["orders"] => Some("POST"),
        ["orders", "client", "cancel"] => Some("GET, POST"),
        ["orders", "client", "amend"] if legacy => Some("GET, POST"),
        ["orders", "client", _] | ["orders", _] => Some("GET"),
        ["orders", _, "cancel"] => Some("POST"),
        ["orders", _, "amend"] if legacy => Some("POST"),
        ["orders", _, "events" | "stream"] | ["accounts", _, "events"] if legacy => Some("GET"),
        _ => None,
    }
}

fn with_account(
    gw: &Arc<Gateway>,
    req: &Request<Incoming>,
    f: impl FnOnce(&Arc<Account>) -> Response<Body>,
) -> Response<Body> {
    match authenticate(gw, req) {
        Ok(id) => f(&gw.account(&id.account_id)),
        Err(e) => auth_error(&e),
    }
}

fn refusal(gw: &Gateway, r: Reason) -> Response<Body> {
    gw.metrics.count_durable_refusal(r);
    let mut out = Vec::with_capacity(96);
    write_order_refusal(&mut out, r.as_str());
    json_response(status(r.http_status()), out)
}

async fn post_order(gw: &Arc<Gateway>, req: Request<Incoming>, api: Api) -> Response<Body> {
    let received_mono = mono_ns();
    let now_ns = wall_ns();
    let id = match authenticate(gw, &req) {
        Ok(id) => id,
        Err(e) => return auth_error(&e),
    };
    let header_key = req
        .headers()
        .get("idempotency-key")
        .map(|v| v.to_str().map(|s| s.trim().to_string()));
    let level = match (api, req.headers().get(DURABILITY_HEADER)) {
        // v2's contract is to wait for the journal.
        (Api::V2, _) => Some(Durability::Local),
        (_, None) => Durability::parse(&gw.cfg.orders.default_durability),
        (_, Some(v)) => v.to_str().ok().and_then(Durability::parse),
    };
    let body = match read_json_body(req, ORDER_BODY_MAX).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let parsed = match parse_order(&body) {
        Ok(p) => p,
        Err(e) => return body_error(&e),
    };
    let cid = parsed.client_order_id.as_deref().filter(|c| !c.is_empty());
    let key = match header_key {
        Some(Ok(k)) if !k.is_empty() => k,
        Some(Err(_)) => return refusal(gw, Reason::InvalidIdempotencyKey),
        _ => match cid {
            Some(c) => c.trim().to_string(),
            None => return refusal(gw, Reason::IdempotencyRequired),
        },
    };
    let max_key = gw.cfg.orders.max_key_len;
    if key.len() > max_key || cid.is_some_and(|c| c.len() > max_key) {
        return refusal(gw, Reason::InvalidIdempotencyKey);
    }
    let level = match level {
        None => return refusal(gw, Reason::InvalidDurability),
        // `replicated` needs the bus (KAFKA_ENABLE) or the embedded back office.
        Some(Durability::Replicated) if !gw.outbox_running() => {
            return refusal(gw, Reason::DurabilityUnavailable)
        }
        Some(l) => l,
    };
    let input = match parsed.to_input() {
        Ok(i) => i,
        Err(r) => return refusal(gw, r),
    };
    let account = gw.account(&id.account_id);
    let submitted = orders::submit(
        gw,
        &account,
        &input,
        &key,
        cid,
        level,
        now_ns,
        received_mono,
    );
    let created = match submitted {
        Err(r) => return refusal(gw, r),
        Ok(Submitted::Existing(hit)) => {
            gw.metrics.orders_existing.fetch_add(1, Ordering::Relaxed);
            let (code, word, reached) = match (api, hit.durable) {
                (Api::V2, true) => (StatusCode::OK, "DURABLE", Durability::Local),
                (Api::V2, false) => (StatusCode::ACCEPTED, "PENDING", Durability::Volatile),
                (Api::Legacy, d) => (
                    StatusCode::ACCEPTED,
                    "ACCEPTED",
                    if d {
                        Durability::Local
                    } else {
                        Durability::Volatile
                    },
                ),
            };
            return order_answer(
                code,
                &order_ref(hit.order_id),
                hit.accept_seq,
                cid,
                word,
                reached,
            );
        }
        Ok(Submitted::Created(c)) => c,
    };
    let word = if api == Api::V2 {
        "PENDING"
    } else {
        "ACCEPTED"
    };
    let oref = order_ref(created.order_id);
    let Some(rx) = created.durable else {
        gw.metrics.orders_volatile.fetch_add(1, Ordering::Relaxed);
        return order_answer(
            StatusCode::ACCEPTED,
            &oref,
            created.accept_seq,
            cid,
            word,
            Durability::Volatile,
        );
    };
    let (wait_ms, answered) = match level {
        Durability::Replicated => (
            gw.cfg.bus.replicated_wait_timeout_ms,
            &gw.metrics.orders_replicated,
        ),
        _ => (
            gw.cfg.orders.durable_wait_timeout_ms,
            &gw.metrics.orders_local,
        ),
    };
    match tokio::time::timeout(Duration::from_millis(wait_ms), rx).await {
        Ok(Ok(true)) => {
            answered.fetch_add(1, Ordering::Relaxed);
            order_answer(
                StatusCode::ACCEPTED,
                &oref,
                created.accept_seq,
                cid,
                word,
                level,
            )
        }
        Ok(_) => refusal(gw, Reason::WalDurabilityFailed),
        Err(_) => {
            gw.metrics
                .orders_wait_timeouts
                .fetch_add(1, Ordering::Relaxed);
            refusal(gw, Reason::DurabilityWaitTimeout)
        }
    }
}

fn order_answer(
    code: StatusCode,
    order_id: &str,
    accept_seq: u64,
    cid: Option<&str>,
    word: &'static str,
    reached: Durability,
) -> Response<Body> {
    let mut out = Vec::with_capacity(160);
    write_order_response(&mut out, order_id, accept_seq, cid, word, reached.as_str());
    let mut r = json_response(code, out);
    r.headers_mut().insert(
        DURABILITY_HEADER,
        HeaderValue::from_static(reached.as_str()),
    );
    r
}

/// The order id a path names (see `PartGuard::resolve`).
fn resolve(gw: &Gateway, account: &Account, id: &str) -> Option<OrderId> {
    gw.orders
        .lock(&account.id)
        .resolve(&account.id, id)
        .map(|o| o.id)
}

fn get_order(gw: &Gateway, account: &Arc<Account>, id: &str, api: Api) -> Response<Body> {
    let part = gw.orders.lock(&account.id);
    let Some(o) = part.resolve(&account.id, id) else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let word = match api {
        Api::V2 => v2_status(o.status, o.durable),
        Api::Legacy => o.status.as_str(),
    };
    let mut out = Vec::with_capacity(320);
    o.write_snapshot(&mut out, word);
    drop(part);
    json_response(StatusCode::OK, out)
}

/// `GET /orders/{id}/stream` (§2.5): SSE of one of the caller's orders, starting with an
/// `order_snapshot`. Subscribed before the snapshot is read, so no update falls between them
/// (one may arrive twice: the snapshot and the event carry the same state).
fn get_order_stream(gw: &Arc<Gateway>, req: &Request<Incoming>, id: &str) -> Response<Body> {
    let ident = match authenticate(gw, req) {
        Ok(i) => i,
        Err(e) => return auth_error(&e),
    };
    let last = match crate::stream::last_event_id(req) {
        Ok(n) => n,
        Err(r) => return r,
    };
    let account = gw.account(&ident.account_id);
    let Some(oid) = resolve(gw, &account, id) else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let filter = crate::stream::Filter::Order {
        account: account.id.to_string(),
        order_id: order_ref(oid),
    };
    let sub = match gw.hub.subscribe(filter, last) {
        Ok(s) => s,
        Err(e) => return crate::stream::sse::subscribe_error(e),
    };
    let snapshot = {
        let part = gw.orders.lock(&account.id);
        match part.get(&account.id, oid) {
            Some(o) => {
                let mut out = Vec::with_capacity(320);
                o.write_snapshot(&mut out, o.status.as_str());
                out
            }
            None => return json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        }
    };
    crate::stream::sse_subscription_response(gw, sub, Some(("order_snapshot", snapshot.into())))
}

fn v2_status(s: OrderStatus, durable: bool) -> &'static str {
    match (s, durable) {
        (OrderStatus::Rejected, _) => "REJECTED",
        (_, true) => "DURABLE",
        (_, false) => "PENDING",
    }
}

fn get_by_client(gw: &Gateway, account: &Arc<Account>, cid: &str) -> Response<Body> {
    let part = gw.orders.lock(&account.id);
    let (order_id, word) = match part.by_client(&account.id, cid) {
        None => (None, "UNKNOWN"),
        Some(Err(())) => (None, "REJECTED"),
        Some(Ok(oid)) => match part.get(&account.id, oid) {
            Some(o) => (Some(oid), v2_status(o.status, o.durable)),
            None => (Some(oid), "DURABLE"),
        },
    };
    drop(part);
    let v = json!({
        "clientOrderId": cid,
        "orderId": order_id.map(order_ref),
        "status": word,
    });
    json_response(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default())
}

async fn post_cancel(gw: &Arc<Gateway>, req: &Request<Incoming>, id: &str) -> Response<Body> {
    let ident = match authenticate(gw, req) {
        Ok(i) => i,
        Err(e) => return auth_error(&e),
    };
    let account = gw.account(&ident.account_id);
    let Some(oid) = resolve(gw, &account, id) else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let oref = order_ref(oid);
    let answer = |code: StatusCode, v: serde_json::Value| {
        json_response(code, serde_json::to_vec(&v).unwrap_or_default())
    };
    let requested = || {
        answer(
            StatusCode::ACCEPTED,
            json!({ "orderId": oref, "status": "CANCEL_REQUESTED" }),
        )
    };
    match orders::cancel(gw, &account, oid) {
        Err(r) => refusal(gw, r),
        Ok(CancelOutcome::NotFound) => json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        Ok(CancelOutcome::Final) => {
            gw.metrics.count_durable_refusal(Reason::OrderFinal);
            answer(
                StatusCode::CONFLICT,
                json!({ "orderId": oref, "status": "REJECTED", "reason": "ORDER_FINAL" }),
            )
        }
        Ok(CancelOutcome::AlreadyRequested) => requested(),
        Ok(CancelOutcome::Requested(rx)) => {
            let wait = Duration::from_millis(gw.cfg.orders.durable_wait_timeout_ms);
            match tokio::time::timeout(wait, rx).await {
                Ok(Ok(true)) => {
                    gw.metrics.orders_canceled.fetch_add(1, Ordering::Relaxed);
                    requested()
                }
                Ok(_) => refusal(gw, Reason::WalDurabilityFailed),
                Err(_) => refusal(gw, Reason::DurabilityWaitTimeout),
            }
        }
    }
}

/// `POST /orders/{id}/amend` (Switchyard's; the reference has no amend): `{"qty":…}`,
/// `{"price":…}` or both. 202 with the order once the request is durable; the venue's answer
/// arrives on the streams as `execution_report` (`REPLACED` / `REPLACE_REJECTED`) and
/// `order_update`.
async fn post_amend(gw: &Arc<Gateway>, req: Request<Incoming>, id: &str) -> Response<Body> {
    let ident = match authenticate(gw, &req) {
        Ok(i) => i,
        Err(e) => return auth_error(&e),
    };
    let body = match read_json_body(req, ORDER_BODY_MAX).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let (qty, price) = match parse_amend(&body).map(|a| a.terms()) {
        Ok(Ok(t)) => t,
        Ok(Err(r)) => return refusal(gw, r),
        Err(e) => return body_error(&e),
    };
    let account = gw.account(&ident.account_id);
    let Some(oid) = resolve(gw, &account, id) else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    let rx = match orders::amend(gw, &account, oid, qty, price) {
        Ok(AmendOutcome::Requested(rx)) => rx,
        Ok(AmendOutcome::NotFound) => return json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        Err(r) => return refusal(gw, r),
    };
    let wait = Duration::from_millis(gw.cfg.orders.durable_wait_timeout_ms);
    match tokio::time::timeout(wait, rx).await {
        Ok(Ok(true)) => {
            gw.metrics.orders_amended.fetch_add(1, Ordering::Relaxed);
            let part = gw.orders.lock(&account.id);
            let Some(o) = part.get(&account.id, oid) else {
                return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
            };
            let mut out = Vec::with_capacity(360);
            o.write_snapshot(&mut out, o.status.as_str());
            drop(part);
            json_response(StatusCode::ACCEPTED, out)
        }
        Ok(_) => refusal(gw, Reason::WalDurabilityFailed),
        Err(_) => refusal(gw, Reason::DurabilityWaitTimeout),
    }
}

/// `GET /orders/{id}/events` and `GET /accounts/{id}/events`.
async fn get_events(
    gw: &Arc<Gateway>,
    req: &Request<Incoming>,
    order: Option<&str>,
    account_path: Option<&str>,
) -> Response<Body> {
    let ident = match authenticate(gw, req) {
        Ok(i) => i,
        Err(e) => return auth_error(&e),
    };
    let account = gw.account(&ident.account_id);
    if account_path.is_some_and(|a| a != &*account.id) {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let order_id = match order {
        None => None,
        Some(id) => match resolve(gw, &account, id).or_else(|| parse_order_ref(id)) {
            Some(oid) => Some(oid),
            None => return json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
        },
    };
    let mut q = EventQuery {
        account: account.id.to_string(),
        order: order_id,
        since_ms: None,
        after_ms: None,
        limit: LIMIT_DEFAULT,
    };
    for (k, v) in query_pairs(req.uri().query().unwrap_or("")) {
        match k {
            "limit" => match v.parse::<usize>() {
                Ok(n) => q.limit = n.clamp(1, LIMIT_MAX),
                Err(_) => return json_error(StatusCode::BAD_REQUEST, "INVALID_LIMIT"),
            },
            "since" => match parse_instant_ms(&v) {
                Some(t) => q.since_ms = Some(t),
                None => return json_error(StatusCode::BAD_REQUEST, "INVALID_SINCE"),
            },
            "after" => match parse_instant_ms(&v) {
                Some(t) => q.after_ms = Some(t),
                None => return json_error(StatusCode::BAD_REQUEST, "INVALID_AFTER"),
            },
            _ => {}
        }
    }
    let dir = gw.cfg.journal.dir.clone();
    let q2 = q.clone();
    let events = match tokio::task::spawn_blocking(move || crate::events::query(&dir, &q2)).await {
        Ok(Ok(ev)) => ev,
        Ok(Err(e)) => {
            tracing::error!(%e, "events query failed");
            return json_error(StatusCode::INTERNAL_SERVER_ERROR, "JOURNAL_READ_FAILED");
        }
        Err(_) => return json_error(StatusCode::INTERNAL_SERVER_ERROR, "JOURNAL_READ_FAILED"),
    };
    if order.is_some()
        && events.is_empty()
        && order_id.is_some_and(|o| gw.orders.lock(&account.id).get(&account.id, o).is_none())
    {
        // Unknown to memory and to the journal for this account: not the caller's order.
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    let v = json!({
        "orderId": order_id.map(order_ref),
        "accountId": if order.is_some() { None } else { Some(&*account.id) },
        "events": events,
    });
    json_response(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default())
}
