//! Journal records as bus events v1 (`switchyard_protocol::bus`, §2.7).

use serde_json::{json, Value};
use switchyard_journal::Record;
use switchyard_protocol::bus::{types, BusEvent};

use crate::records::{
    order_ref, AmendRequested, ExecutionRecord, KillScope, KillSwitchChange, OrderAccepted,
    OrderChange, V3DurableRejected, V3OrderAccepted, VenueSent, KIND_AMEND_REQUESTED,
    KIND_CANCEL_REQUESTED, KIND_CANCEL_SENT, KIND_EXECUTION_REPORT, KIND_KILL_SWITCH,
    KIND_ORDER_ACCEPTED, KIND_ORDER_SENT, KIND_ORDER_UPDATED, KIND_REPLACE_SENT,
    KIND_V3_DURABLE_REJECTED, KIND_V3_ORDER_ACCEPTED,
};

/// `accountId` of events that belong to no account (global, shard and session kill switches).
pub const SYSTEM_ACCOUNT: &str = "_system";

/// The bus event of a journal record; `None` for records that are no event (the clean-shutdown
/// marker, a report about an order the gateway does not hold) or that do not decode.
pub fn bus_event(r: &Record<'_>, source: &str) -> Option<BusEvent> {
    let (event_type, account, order, data) = match r.kind {
        KIND_ORDER_ACCEPTED => {
            let o = OrderAccepted::decode(r.payload).ok()?;
            let n = &o.order;
            let data = json!({
                "symbol": n.symbol.as_str(), "side": n.side.as_str(), "type": n.order_type.as_str(),
                "qty": n.qty, "price": (n.price > 0).then_some(n.price),
                "timeInForce": n.time_in_force.as_str(), "expireAt": n.expire_at_ms,
                "clientOrderId": o.client_order_id, "acceptSeq": o.accept_seq,
                "venue": (!o.venue.is_empty()).then_some(o.venue),
            });
            (
                types::ORDER_ACCEPTED,
                o.account_id,
                Some(order_ref(o.order_id)),
                data,
            )
        }
        KIND_CANCEL_REQUESTED | KIND_ORDER_UPDATED => {
            let c = OrderChange::decode(r.kind, r.payload).ok()?;
            let (t, data) = if r.kind == KIND_CANCEL_REQUESTED {
                (types::CANCEL_REQUESTED, json!({}))
            } else {
                let d = json!({ "status": c.status.as_str(), "filledQty": c.filled });
                (types::ORDER_UPDATED, d)
            };
            (t, c.account_id, Some(order_ref(c.order_id)), data)
        }
        KIND_ORDER_SENT | KIND_CANCEL_SENT | KIND_REPLACE_SENT => {
            let v = VenueSent::decode(r.kind, r.payload).ok()?;
            let t = match r.kind {
                KIND_ORDER_SENT => types::ORDER_SENT,
                KIND_CANCEL_SENT => types::CANCEL_SENT,
                _ => types::REPLACE_SENT,
            };
            let data = json!({ "venue": v.venue });
            (t, v.account_id, Some(order_ref(v.order_id)), data)
        }
        KIND_EXECUTION_REPORT => {
            let x = ExecutionRecord::decode(r.payload).ok()?;
            let mut data = x.to_json();
            if let Value::Object(m) = &mut data {
                m.remove("orderId");
                m.remove("accountId");
            }
            (
                types::EXECUTION_REPORT,
                x.account_id,
                Some(order_ref(x.order_id)),
                data,
            )
        }
        KIND_AMEND_REQUESTED => {
            let a = AmendRequested::decode(r.payload).ok()?;
            let data = json!({ "qty": a.qty, "price": (a.price > 0).then_some(a.price) });
            (
                types::AMEND_REQUESTED,
                a.account_id,
                Some(order_ref(a.order_id)),
                data,
            )
        }
        KIND_V3_ORDER_ACCEPTED => {
            let o = V3OrderAccepted::decode(r.payload).ok()?;
            let n = &o.order;
            let data = json!({
                "sessionId": o.session_id, "sessionSeq": o.session_seq,
                "gatewayOrderId": order_ref(o.order_id),
                "symbol": n.symbol.as_str(), "side": n.side.as_str(), "type": n.order_type.as_str(),
                "qty": n.qty, "price": (n.price > 0).then_some(n.price),
                "timeInForce": n.time_in_force.as_str(),
            });
            let id = format!("v3/{}/{}", o.session_id, o.session_seq);
            (types::V3_DURABLE_ACCEPTED, o.account_id, Some(id), data)
        }
        KIND_V3_DURABLE_REJECTED => {
            // The record names the session, not the account; v3 sessions are per account.
            let x = V3DurableRejected::decode(r.payload).ok()?;
            let reason = switchyard_core::reason::ConfirmReason::from_u8(x.reason).as_str();
            let data =
                json!({ "sessionId": x.session_id, "sessionSeq": x.session_seq, "reason": reason });
            let id = format!("v3/{}/{}", x.session_id, x.session_seq);
            return finish(
                r,
                source,
                types::V3_DURABLE_REJECTED,
                x.session_id,
                Some(id),
                data,
            );
        }
        KIND_KILL_SWITCH => {
            let k = KillSwitchChange::decode(r.payload).ok()?;
            let account = if k.scope == KillScope::Account {
                k.id.as_str()
            } else {
                SYSTEM_ACCOUNT
            };
            let data = json!({
                "scope": k.scope.as_str(), "id": k.id, "on": k.on,
                "cause": k.cause.as_str(), "by": k.by, "note": k.note,
            });
            return finish(r, source, types::KILL_SWITCH, account, None, data);
        }
        _ => return None,
    };
    finish(r, source, event_type, account, order, data)
}

fn finish(
    r: &Record<'_>,
    source: &str,
    event_type: &str,
    account: &str,
    order_id: Option<String>,
    data: Value,
) -> Option<BusEvent> {
    if account.is_empty() {
        return None;
    }
    Some(BusEvent {
        event_type: event_type.to_string(),
        at: switchyard_protocol::venue::iso8601_ms(r.time_ns / 1_000_000),
        account_id: account.to_string(),
        order_id,
        data,
        source: Some(source.to_string()),
        seq: Some(r.seq),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{NewOrder, OrderId, OrderStatus, OrderType, Side, Symbol, TimeInForce};

    fn rec(kind: u16, payload: &[u8]) -> Record<'_> {
        Record {
            seq: 7,
            time_ns: 1_735_689_600_000_000_000,
            kind,
            payload,
        }
    }

    // Goal: events carry the reference's fields and shape, plus source and seq; records that
    // are no event give none.
    #[test]
    fn records_become_events() {
        let mut p = Vec::new();
        OrderAccepted {
            order_id: OrderId::new(0, 1),
            accept_seq: 3,
            received_at_ns: 0,
            order: NewOrder {
                symbol: Symbol::parse(b"BTC").unwrap(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtc,
                qty: 5,
                price: 100,
                expire_at_ms: None,
            },
            account_id: "acct-1",
            idempotency_key: "k",
            client_order_id: None,
            venue: "simA",
        }
        .encode(&mut p);
        let e = bus_event(&rec(KIND_ORDER_ACCEPTED, &p), "gw-1").unwrap();
        assert_eq!(
            (
                e.event_type.as_str(),
                e.account_id.as_str(),
                e.order_id.as_deref()
            ),
            ("OrderAccepted", "acct-1", Some("ord_0000000000000001"))
        );
        assert_eq!((e.seq, e.source.as_deref()), (Some(7), Some("gw-1")));
        assert_eq!(e.at, "2025-01-01T00:00:00.000Z");
        assert_eq!(
            (
                &e.data["symbol"],
                &e.data["side"],
                &e.data["qty"],
                &e.data["price"]
            ),
            (&json!("BTC"), &json!("BUY"), &json!(5), &json!(100))
        );
        // What the bus carries decodes under the v1 rules.
        assert_eq!(BusEvent::decode(&e.encode()).unwrap(), e);

        p.clear();
        OrderChange {
            order_id: OrderId::new(0, 1),
            status: OrderStatus::Filled,
            filled: 5,
            account_id: "acct-1",
        }
        .encode(&mut p);
        let e = bus_event(&rec(KIND_ORDER_UPDATED, &p), "gw-1").unwrap();
        assert_eq!(e.data, json!({"status": "FILLED", "filledQty": 5}));

        p.clear();
        ExecutionRecord {
            order_id: OrderId::new(0, 1),
            venue_seq: 9,
            filled_delta: 2,
            filled_total: 5,
            price: 101,
            qty: 0,
            limit_price: 0,
            status: switchyard_protocol::venue::ExecStatus::Filled,
            status_report: false,
            account_id: "",
            venue: "simA",
            reason: "",
        }
        .encode(&mut p);
        // A report about an order the gateway did not hold has no account: no event.
        assert!(bus_event(&rec(KIND_EXECUTION_REPORT, &p), "gw-1").is_none());
        assert!(bus_event(&rec(crate::records::KIND_CLEAN_SHUTDOWN, &[]), "gw-1").is_none());
    }
}
