//! The HTTP API (§2.8) on hyper 1: `GET /health` and `GET /metrics` (Prometheus text, no
//! auth, for the scraper), and with a bearer JWT
//! `/positions`, `/balances`, `/fills`, `/pnl`, `/ledger`, `/stats`, `/reconcile`.
//!
//! Every data endpoint takes an optional `accountId`; one that is not the token's account
//! is 404 (existence is hidden), as in the reference. Departures from the reference, and
//! why: errors are JSON `{"error":"<CODE>","reason":"…"}` everywhere (the reference answers
//! some with plain text), so clients parse one shape; authentication errors are the
//! gateway's `{"error":"<Variant>"}` with its statuses, so one token works the same on both
//! services; `/reconcile` compares the whole ledger (the reference only its last `limit`
//! entries, which reports false differences once the ledger is longer) and `limit` bounds
//! only how many differences and keys are listed.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{json, Map, Value};
use switchyard_auth::{Identity, Verifier};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::books::{EntryKind, LedgerEntry};
use crate::reconcile::{DiffKind, Reconciliation};
use crate::store::LedgerQuery;
use crate::BackOffice;

/// Most connections served at once; more wait in the listen backlog.
const MAX_CONNECTIONS: usize = 1_024;
/// `/ledger` limit: 1..=1000, default 100 (§2.8).
const LEDGER_LIMIT_MAX: i64 = 1_000;
const LEDGER_LIMIT_DEFAULT: i64 = 100;
/// `/reconcile` limit: 1..=10 000, default 1000 (§2.8).
const RECONCILE_LIMIT_MAX: i64 = 10_000;
const RECONCILE_LIMIT_DEFAULT: i64 = 1_000;

/// What the handlers share.
#[derive(Clone)]
pub struct Api {
    pub backoffice: BackOffice,
    pub verifier: Arc<Verifier>,
    /// `BACKOFFICE_MAX_FILLS`: most fills `/fills` returns.
    pub max_fills: i64,
}

type Body = Full<Bytes>;

/// Serves the API on `listener` until `shutdown` turns true; open connections finish their
/// request in flight and close.
pub async fn serve(api: Api, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let slots = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    loop {
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => match s { Ok(s) => s, Err(_) => return },
            _ = shutdown.changed() => return,
        };
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::warn!(%e, "back office: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let api = api.clone();
        let mut stop = shutdown.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let svc = hyper::service::service_fn(move |req| {
                let api = api.clone();
                async move { Ok::<_, Infallible>(route(&api, req).await) }
            });
            let conn = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(10))
                .serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                _ = conn.as_mut() => {}
                _ = stop.changed() => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
}

async fn route(api: &Api, req: Request<Incoming>) -> Response<Body> {
    let path = req.uri().path().to_owned();
    const PROTECTED: [&str; 7] = [
        "/positions",
        "/balances",
        "/fills",
        "/pnl",
        "/ledger",
        "/stats",
        "/reconcile",
    ];
    if path != "/health" && path != "/metrics" && !PROTECTED.contains(&path.as_str()) {
        return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such path");
    }
    if req.method() != Method::GET {
        return error(
            StatusCode::METHOD_NOT_ALLOWED,
            "METHOD_NOT_ALLOWED",
            "only GET is served",
        );
    }
    if path == "/health" {
        return ok(json!({"status": "ok"}));
    }
    if path == "/metrics" {
        return metrics(api)
            .await
            .unwrap_or_else(|r| error(r.status, r.code, &r.reason));
    }
    let header = req
        .headers()
        .get(hyper::header::AUTHORIZATION)
        .map(|v| v.as_bytes());
    let identity = match api
        .verifier
        .authenticate(header, switchyard_auth::now_sec())
    {
        Ok(i) => i,
        Err(e) => {
            let status =
                StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json_response(status, e.json_body().as_bytes().to_vec());
        }
    };
    let params = Params::parse(req.uri().query().unwrap_or(""));
    let account = match params.get("accountId") {
        Some(a) if a != &*identity.account_id => {
            return error(StatusCode::NOT_FOUND, "NOT_FOUND", "no such account")
        }
        _ => identity.account_id.to_string(),
    };
    let result = match path.as_str() {
        "/positions" => positions(api, &account).await,
        "/balances" => balances(api, &account).await,
        "/fills" => fills(api, &account).await,
        "/pnl" => pnl(api, &account).await,
        "/ledger" => ledger(api, &account, &params).await,
        "/stats" => stats(api).await,
        _ => reconcile(api, &account, &params, &identity).await,
    };
    result.unwrap_or_else(|r| error(r.status, r.code, &r.reason))
}

/// A request refused: the status, the error code and a reason for people.
struct Refusal {
    status: StatusCode,
    code: &'static str,
    reason: String,
}

fn refuse(status: StatusCode, code: &'static str, reason: &str) -> Refusal {
    Refusal {
        status,
        code,
        reason: reason.to_owned(),
    }
}

type Answer = Result<Response<Body>, Refusal>;

fn internal(e: crate::Error) -> Refusal {
    tracing::error!(%e, "back office: request failed");
    refuse(
        StatusCode::INTERNAL_SERVER_ERROR,
        "ERROR",
        "internal error (see the back office log)",
    )
}

async fn positions(api: &Api, account: &str) -> Answer {
    let rows = api.backoffice.positions(account).await.map_err(internal)?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|(symbol, p)| {
            json!({"accountId": account, "symbol": symbol, "netQty": p.net_qty, "avgPrice": p.avg_price})
        })
        .collect();
    Ok(ok(json!({ "positions": list })))
}

async fn balances(api: &Api, account: &str) -> Answer {
    let rows = api.backoffice.balances(account).await.map_err(internal)?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|(ccy, amount)| json!({"accountId": account, "currency": ccy, "amount": amount}))
        .collect();
    Ok(ok(json!({ "balances": list })))
}

async fn pnl(api: &Api, account: &str) -> Answer {
    let rows = api
        .backoffice
        .realized_pnl(account)
        .await
        .map_err(internal)?;
    let list: Vec<Value> = rows
        .into_iter()
        .map(|(symbol, ccy, pnl)| {
            json!({"accountId": account, "symbol": symbol, "quoteCcy": ccy, "realizedPnl": pnl})
        })
        .collect();
    Ok(ok(json!({ "pnl": list })))
}

async fn fills(api: &Api, account: &str) -> Answer {
    let rows = api
        .backoffice
        .fills(account, api.max_fills)
        .await
        .map_err(internal)?;
    let list: Vec<Value> = rows.iter().map(entry_json).collect();
    Ok(ok(json!({ "fills": list })))
}

async fn ledger(api: &Api, account: &str, params: &Params) -> Answer {
    let limit = limit(params, LEDGER_LIMIT_DEFAULT, LEDGER_LIMIT_MAX)?;
    let instant = |name: &str, code: &'static str| match params.get(name) {
        None => Ok(None),
        Some(v) => parse_instant_ms(v).map(Some).ok_or_else(|| {
            refuse(
                StatusCode::BAD_REQUEST,
                code,
                "expected epoch seconds, epoch milliseconds or an ISO-8601 instant",
            )
        }),
    };
    let since_ms = instant("since", "INVALID_SINCE")?;
    let after_ms = instant("after", "INVALID_AFTER")?;
    let mut kinds = Vec::new();
    if let Some(list) = params.get("type") {
        for t in list
            .split([',', ';'])
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            let kind = EntryKind::parse(t).ok_or_else(|| {
                refuse(
                    StatusCode::BAD_REQUEST,
                    "INVALID_TYPE",
                    "type must list OrderAccepted and/or Fill",
                )
            })?;
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
    }
    let q = LedgerQuery {
        account_id: account.to_owned(),
        order_id: params.get("orderId").filter(|o| !o.is_empty()).cloned(),
        since_ms,
        after_ms,
        kinds,
        limit,
    };
    let rows = api.backoffice.ledger(&q).await.map_err(internal)?;
    let list: Vec<Value> = rows.iter().map(entry_json).collect();
    Ok(ok(json!({ "accountId": account, "entries": list })))
}

async fn stats(api: &Api) -> Answer {
    let bo = &api.backoffice;
    let s = bo.stats();
    let positions = bo.positions_all().await.map_err(internal)?;
    let list: Vec<Value> = positions
        .iter()
        .map(|p| {
            let high = bo.high_watermark(&p.stream, p.partition);
            json!({
                "stream": p.stream, "partition": p.partition, "nextOffset": p.next_offset,
                "highWatermark": high, "lag": high.map(|h| (h - p.next_offset).max(0)),
            })
        })
        .collect();
    // The reference's `lastKafkaOffset` ("topic:partition:offset" of the last message
    // booked); here the first Kafka stream's, as streams are listed in name order.
    let last_kafka = positions
        .iter()
        .find(|p| !p.stream.starts_with("journal:") && p.next_offset > 0)
        .map(|p| format!("{}:{}:{}", p.stream, p.partition, p.next_offset - 1));
    let (p50, p99, p999, max, n) = bo.event_lag_ms();
    Ok(ok(json!({
        "eventLagMs": { "p50": p50, "p99": p99, "p999": p999, "max": max, "count": n },
        "startedAt": s.started_at, "processed": s.processed, "booked": s.booked,
        "skipped": s.skipped, "duplicates": s.duplicates, "batches": s.batches,
        "lastEventAt": s.last_event_at, "lastKafkaOffset": last_kafka,
        "positions": list,
    })))
}

/// `GET /metrics`: the figures of `/stats` in the Prometheus text format (0.0.4), for the
/// scraper and the alert on consumer lag: counters, event-lag quantiles, and per stream
/// partition the next offset to book and the lag behind the high watermark (absent while
/// the high watermark is unknown, e.g. for the journal feed).
async fn metrics(api: &Api) -> Answer {
    use std::fmt::Write as _;
    let bo = &api.backoffice;
    let s = bo.stats();
    let positions = bo.positions_all().await.map_err(internal)?;
    let (p50, p99, p999, max, n) = bo.event_lag_ms();
    let mut out = String::with_capacity(2_048);
    let mut metric = |name: &str, kind: &str, help: &str, value: u64| {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        let _ = writeln!(out, "{name} {value}");
    };
    metric(
        "backoffice_processed_total",
        "counter",
        "Events read from the bus or the journal.",
        s.processed,
    );
    metric(
        "backoffice_booked_total",
        "counter",
        "Events booked into the ledger.",
        s.booked,
    );
    metric(
        "backoffice_duplicates_total",
        "counter",
        "Events already booked (redelivered), ignored.",
        s.duplicates,
    );
    metric(
        "backoffice_skipped_total",
        "counter",
        "Events skipped (not booked: other types or invalid).",
        s.skipped,
    );
    metric(
        "backoffice_batches_total",
        "counter",
        "Batches committed to the store.",
        s.batches,
    );
    metric(
        "backoffice_event_lag_ms_p50",
        "gauge",
        "Median lag from an event's time to its booking, ms.",
        p50,
    );
    metric(
        "backoffice_event_lag_ms_p99",
        "gauge",
        "99th percentile lag from an event's time to its booking, ms.",
        p99,
    );
    metric(
        "backoffice_event_lag_ms_p999",
        "gauge",
        "99.9th percentile lag from an event's time to its booking, ms.",
        p999,
    );
    metric(
        "backoffice_event_lag_ms_max",
        "gauge",
        "Largest lag from an event's time to its booking, ms.",
        max,
    );
    metric(
        "backoffice_event_lag_samples",
        "gauge",
        "Events measured for the event-lag quantiles.",
        n,
    );
    let _ = writeln!(
        out,
        "# HELP backoffice_next_offset Next offset to book per stream partition."
    );
    let _ = writeln!(out, "# TYPE backoffice_next_offset gauge");
    for p in &positions {
        let _ = writeln!(
            out,
            "backoffice_next_offset{{stream=\"{}\",partition=\"{}\"}} {}",
            label(&p.stream),
            p.partition,
            p.next_offset
        );
    }
    let _ = writeln!(
        out,
        "# HELP backoffice_consumer_lag Records between the next offset and the high watermark."
    );
    let _ = writeln!(out, "# TYPE backoffice_consumer_lag gauge");
    for p in &positions {
        if let Some(high) = bo.high_watermark(&p.stream, p.partition) {
            let _ = writeln!(
                out,
                "backoffice_consumer_lag{{stream=\"{}\",partition=\"{}\"}} {}",
                label(&p.stream),
                p.partition,
                (high - p.next_offset).max(0)
            );
        }
    }
    let mut r = Response::new(Full::new(Bytes::from(out)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

async fn reconcile(api: &Api, account: &str, params: &Params, _who: &Identity) -> Answer {
    let limit = limit(params, RECONCILE_LIMIT_DEFAULT, RECONCILE_LIMIT_MAX)? as usize;
    let ccy = match params.get("quoteCcy") {
        None => api.backoffice.rules().quote_ccy.clone(),
        Some(c)
            if !c.is_empty() && c.len() <= 16 && c.bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            c.clone()
        }
        Some(_) => {
            return Err(refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_QUOTE_CCY",
                "quoteCcy must be 1–16 letters or digits",
            ))
        }
    };
    let r = api
        .backoffice
        .reconcile_account(account)
        .await
        .map_err(internal)?;
    Ok(ok(reconcile_json(&r, account, &ccy, limit)))
}

/// The reconciliation of one account: the reference's `balances` and `positions` sections
/// (`ok`, `expected`, `actual`, `diffs` with diff = actual − expected), then sections for
/// average prices, realized PnL and filled totals, and every difference as a list. Maps
/// and the list hold at most `limit` items each (`truncated` says when there were more).
pub fn reconcile_json(r: &Reconciliation, account: &str, ccy: &str, limit: usize) -> Value {
    let mut truncated = false;
    let mut section = |kind: DiffKind,
                       expected: Vec<(String, Option<i64>)>,
                       actual: Vec<(String, Option<i64>)>| {
        let e: BTreeMap<String, Option<i64>> = expected.into_iter().collect();
        let a: BTreeMap<String, Option<i64>> = actual.into_iter().collect();
        let ok = !r.differences.iter().any(|d| d.kind == kind);
        let keys: std::collections::BTreeSet<&String> = e.keys().chain(a.keys()).collect();
        truncated |= keys.len() > limit;
        let (mut em, mut am, mut dm) = (Map::new(), Map::new(), Map::new());
        for k in keys.into_iter().take(limit) {
            let (ev, av) = (e.get(k).copied().flatten(), a.get(k).copied().flatten());
            em.insert(k.clone(), json!(ev));
            am.insert(k.clone(), json!(av));
            dm.insert(
                k.clone(),
                json!(av.unwrap_or(0).saturating_sub(ev.unwrap_or(0))),
            );
        }
        json!({"ok": ok, "expected": em, "actual": am, "diffs": dm})
    };
    let pos = |p: &crate::reconcile::Projections, f: fn(&crate::Position) -> Option<i64>| {
        p.positions
            .iter()
            .map(|((_, s), v)| (s.clone(), f(v)))
            .collect::<Vec<_>>()
    };
    let net = |p: &crate::Position| Some(p.net_qty);
    let avg = |p: &crate::Position| p.avg_price;
    let bal = |p: &crate::reconcile::Projections| {
        p.balances
            .iter()
            .filter(|((_, c), _)| c == ccy)
            .map(|((_, c), v)| (c.clone(), Some(*v)))
            .collect::<Vec<_>>()
    };
    let pnl = |p: &crate::reconcile::Projections| {
        p.pnl
            .iter()
            .filter(|((_, _, c), _)| c == ccy)
            .map(|((_, s, _), v)| (s.clone(), Some(*v)))
            .collect::<Vec<_>>()
    };
    let filled = |p: &crate::reconcile::Projections| {
        p.filled
            .iter()
            .map(|(o, (_, t))| (o.clone(), Some(*t)))
            .collect::<Vec<_>>()
    };
    let balances = section(DiffKind::Balance, bal(&r.expected), bal(&r.actual));
    let positions = section(
        DiffKind::Position,
        pos(&r.expected, net),
        pos(&r.actual, net),
    );
    let avg_prices = section(
        DiffKind::AvgPrice,
        pos(&r.expected, avg),
        pos(&r.actual, avg),
    );
    let realized = section(DiffKind::RealizedPnl, pnl(&r.expected), pnl(&r.actual));
    let filled_totals = section(
        DiffKind::FilledTotal,
        filled(&r.expected),
        filled(&r.actual),
    );
    truncated |= r.differences.len() > limit;
    let differences: Vec<&crate::Difference> = r.differences.iter().take(limit).collect();
    json!({
        "accountId": account,
        "quoteCcy": ccy,
        "ok": r.ok(),
        "ledgerEntries": r.ledger_entries,
        "balances": balances,
        "positions": positions,
        "avgPrices": avg_prices,
        "realizedPnl": realized,
        "filledTotals": filled_totals,
        "differences": differences,
        "invalidEntries": r.invalid_entries,
        "truncated": truncated,
    })
}

/// A ledger entry as `/ledger` and `/fills` show it: the reference's fields, plus `id`
/// and the source event's identity.
pub fn entry_json(e: &LedgerEntry) -> Value {
    let mut v = json!({
        "id": e.id, "type": e.kind().as_str(), "at": e.at, "accountId": e.account_id,
        "orderId": e.order_id, "symbol": e.symbol, "side": e.side.as_str(),
    });
    if let Some(f) = &e.fill {
        let m = v.as_object_mut().expect("object");
        m.insert("filledQtyDelta".into(), json!(f.filled_qty_delta));
        m.insert("filledQtyTotal".into(), json!(f.filled_qty_total));
        m.insert("price".into(), json!(f.price));
        m.insert("quoteCcy".into(), json!(f.quote_ccy));
        m.insert("quoteCashDelta".into(), json!(f.quote_cash_delta));
        m.insert("feeQuote".into(), json!(f.fee_quote));
    }
    if let (Some(source), Some(seq)) = (&e.source, e.seq) {
        let m = v.as_object_mut().expect("object");
        m.insert("source".into(), json!(source));
        m.insert("seq".into(), json!(seq));
    }
    v
}

fn limit(params: &Params, default: i64, max: i64) -> Result<i64, Refusal> {
    match params.get("limit") {
        None => Ok(default),
        Some(v) => match v.trim().parse::<i64>() {
            Ok(n) if (1..=max).contains(&n) => Ok(n),
            _ => Err(refuse(
                StatusCode::BAD_REQUEST,
                "INVALID_LIMIT",
                &format!("limit must be an integer in 1..={max}"),
            )),
        },
    }
}

/// `since`/`after`: epoch seconds (≤ 10 digits), epoch milliseconds (more digits), or an
/// RFC 3339 / ISO-8601 instant.
pub fn parse_instant_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 18 && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: i64 = s.parse().ok()?;
        return Some(if s.len() <= 10 { v * 1_000 } else { v });
    }
    crate::event::at_ms(s)
}

/// Decoded query parameters (the first occurrence of a name wins).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Params {
        Params(
            query
                .split('&')
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once('=').unwrap_or((p, ""));
                    (
                        switchyard_protocol::http::percent_decode(k),
                        switchyard_protocol::http::percent_decode(v),
                    )
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&String> {
        self.0.iter().find(|(k, _)| k == name).map(|(_, v)| v)
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn ok(v: Value) -> Response<Body> {
    json_response(StatusCode::OK, serde_json::to_vec(&v).unwrap_or_default())
}

fn error(status: StatusCode, code: &str, reason: &str) -> Response<Body> {
    json_response(
        status,
        serde_json::to_vec(&json!({"error": code, "reason": reason})).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: query strings decode (+, %XX, broken escapes kept) and instants parse in all
    // three forms.
    #[test]
    fn params_and_instants() {
        let p = Params::parse(
            "since=2025-01-01T00%3A00%3A00%2B00%3A00&type=Fill%3BorderAccepted&x=%zz&y=a+b&z=%4",
        );
        assert_eq!(p.get("since").unwrap(), "2025-01-01T00:00:00+00:00");
        assert_eq!(p.get("type").unwrap(), "Fill;orderAccepted");
        assert_eq!(p.get("x").unwrap(), "%zz");
        assert_eq!(p.get("y").unwrap(), "a b");
        assert_eq!(p.get("z").unwrap(), "%4");
        assert_eq!(parse_instant_ms("1735689600"), Some(1_735_689_600_000));
        assert_eq!(parse_instant_ms("1735689600123"), Some(1_735_689_600_123));
        assert_eq!(
            parse_instant_ms("2025-01-01T00:00:00+00:00"),
            Some(1_735_689_600_000)
        );
        assert_eq!(parse_instant_ms("soon"), None);
    }
}
