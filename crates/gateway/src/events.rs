//! The audit event history (`GET /orders/{id}/events`, `GET /accounts/{id}/events`, §2.3.5),
//! read from the journal — the source of truth — not from memory, so it covers orders that
//! have long left the order store.
//!
//! A query scans the journal's segments and keeps the last `limit` matching events in a ring,
//! so its memory is bounded by `limit` whatever the journal size. It runs on a blocking
//! thread (`spawn_blocking`), never on the ingress runtime's workers.

use std::collections::VecDeque;
use std::path::Path;

use serde_json::{json, Value};
use switchyard_core::OrderId;

use crate::records::{
    order_ref, AmendRequested, ExecutionRecord, OrderAccepted, OrderChange, V3OrderAccepted,
    VenueSent, KIND_AMEND_REQUESTED, KIND_CANCEL_REQUESTED, KIND_CANCEL_SENT,
    KIND_EXECUTION_REPORT, KIND_ORDER_ACCEPTED, KIND_ORDER_SENT, KIND_ORDER_UPDATED,
    KIND_REPLACE_SENT, KIND_V3_ORDER_ACCEPTED,
};

pub const LIMIT_DEFAULT: usize = 100;
pub const LIMIT_MAX: usize = 1_000;

#[derive(Debug, Clone)]
pub struct EventQuery {
    pub account: String,
    /// Only this order's events (else every event of the account).
    pub order: Option<OrderId>,
    /// `at ≥ since`, epoch ms.
    pub since_ms: Option<u64>,
    /// `at > after`, epoch ms.
    pub after_ms: Option<u64>,
    pub limit: usize,
}

/// Parses `since`/`after`: epoch seconds (≤ 10 digits), epoch milliseconds (more digits), or
/// an RFC 3339 / ISO-8601 instant (`2025-01-01T00:00:00Z`, `…+02:00`, fractions allowed).
pub fn parse_instant_ms(s: &str) -> Option<u64> {
    let s = s.trim();
    if !s.is_empty() && s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = s.parse().ok()?;
        return Some(if s.len() <= 10 { v * 1_000 } else { v });
    }
    let t = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

/// Runs a query over the journal in `dir`. Events come in journal order (oldest first).
pub fn query(dir: &Path, q: &EventQuery) -> Result<Vec<Value>, switchyard_journal::JournalError> {
    let mut ring: VecDeque<Value> = VecDeque::with_capacity(q.limit.min(LIMIT_MAX));
    let account = q.account.as_bytes();
    switchyard_journal::scan(dir, |r| {
        let at_ms = r.time_ns / 1_000_000;
        if q.since_ms.is_some_and(|s| at_ms < s) || q.after_ms.is_some_and(|a| at_ms <= a) {
            return;
        }
        // Cheap filter before decoding: the account id must appear in the payload.
        if !contains(r.payload, account) {
            return;
        }
        let Some(ev) = event(r.kind, at_ms, r.payload, q) else {
            return;
        };
        if ring.len() == q.limit {
            ring.pop_front();
        }
        ring.push_back(ev);
    })?;
    Ok(ring.into())
}

/// The `AuditEvent` of one record if it belongs to the query: `{type, at, accountId, orderId,
/// data}` with `at` in epoch ms (the Rust reference's form).
fn event(kind: u16, at_ms: u64, payload: &[u8], q: &EventQuery) -> Option<Value> {
    let wanted = |account: &str, id: Option<OrderId>| {
        account == q.account && (q.order.is_none() || q.order == id)
    };
    match kind {
        KIND_ORDER_ACCEPTED => {
            let o = OrderAccepted::decode(payload).ok()?;
            wanted(o.account_id, Some(o.order_id)).then(|| {
                json!({
                    "type": "OrderAccepted", "at": at_ms, "accountId": o.account_id,
                    "orderId": order_ref(o.order_id),
                    "data": {
                        "symbol": o.order.symbol.as_str(), "side": o.order.side.as_str(),
                        "type": o.order.order_type.as_str(), "qty": o.order.qty,
                        "price": (o.order.price > 0).then_some(o.order.price),
                        "timeInForce": o.order.time_in_force.as_str(), "expireAt": o.order.expire_at_ms,
                        "clientOrderId": o.client_order_id, "idempotencyKey": o.idempotency_key,
                    },
                })
            })
        }
        KIND_CANCEL_REQUESTED | KIND_ORDER_UPDATED => {
            let c = OrderChange::decode(kind, payload).ok()?;
            wanted(c.account_id, Some(c.order_id)).then(|| {
                let data = if kind == KIND_CANCEL_REQUESTED {
                    json!({})
                } else {
                    json!({ "status": c.status.as_str(), "filledQty": c.filled })
                };
                json!({
                    "type": crate::records::kind_name(kind), "at": at_ms,
                    "accountId": c.account_id, "orderId": order_ref(c.order_id), "data": data,
                })
            })
        }
        KIND_ORDER_SENT | KIND_CANCEL_SENT | KIND_REPLACE_SENT => {
            let v = VenueSent::decode(kind, payload).ok()?;
            wanted(v.account_id, Some(v.order_id)).then(|| {
                json!({
                    "type": crate::records::kind_name(kind), "at": at_ms,
                    "accountId": v.account_id, "orderId": order_ref(v.order_id),
                    "data": { "venue": v.venue },
                })
            })
        }
        KIND_EXECUTION_REPORT => {
            let x = ExecutionRecord::decode(payload).ok()?;
            wanted(x.account_id, Some(x.order_id)).then(|| {
                json!({
                    "type": "ExecutionReport", "at": at_ms, "accountId": x.account_id,
                    "orderId": order_ref(x.order_id), "data": x.to_json(),
                })
            })
        }
        KIND_AMEND_REQUESTED => {
            let a = AmendRequested::decode(payload).ok()?;
            wanted(a.account_id, Some(a.order_id)).then(|| {
                json!({
                    "type": "AmendRequested", "at": at_ms, "accountId": a.account_id,
                    "orderId": order_ref(a.order_id),
                    "data": { "qty": a.qty, "price": (a.price > 0).then_some(a.price) },
                })
            })
        }
        KIND_V3_ORDER_ACCEPTED if q.order.is_none() => {
            let o = V3OrderAccepted::decode(payload).ok()?;
            wanted(o.account_id, None).then(|| {
                json!({
                    "type": "V3DurableAccepted", "at": at_ms, "accountId": o.account_id,
                    "orderId": format!("v3/{}/{}", o.session_id, o.session_seq),
                    "data": {
                        "sessionSeq": o.session_seq, "attemptId": format!("att_{}", o.session_seq),
                        "symbol": o.order.symbol.as_str(), "side": o.order.side.as_str(), "qty": o.order.qty,
                    },
                })
            })
        }
        _ => None,
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    needle.is_empty() || hay.windows(needle.len()).any(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: both epoch forms and ISO-8601 are understood; garbage is refused.
    #[test]
    fn instants() {
        assert_eq!(parse_instant_ms("1700000000"), Some(1_700_000_000_000));
        assert_eq!(parse_instant_ms("1700000000123"), Some(1_700_000_000_123));
        assert_eq!(
            parse_instant_ms("2025-01-01T00:00:00Z"),
            Some(1_735_689_600_000)
        );
        assert_eq!(
            parse_instant_ms("2025-01-01T01:00:00.250+01:00"),
            Some(1_735_689_600_250)
        );
        for bad in ["", "yesterday", "2025-13-01T00:00:00Z", "12ab", "-5"] {
            assert_eq!(parse_instant_ms(bad), None, "{bad}");
        }
    }
}
