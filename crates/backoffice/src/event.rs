//! What the back office reads out of a bus event (§2.7): the two types that move the books,
//! checked field by field, and everything else as "not ours".

use serde_json::Value;
use switchyard_protocol::bus::{types, BusEvent};

use crate::rules::Side;

/// An event as the books see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input<'a> {
    /// `OrderAccepted`: an order the books must know before its fills.
    OrderAccepted {
        order_id: &'a str,
        symbol: &'a str,
        side: Side,
    },
    /// `ExecutionReport`: possibly a fill.
    Execution {
        order_id: &'a str,
        /// `filledQtyDelta`; `None` when absent or null.
        delta: Option<i64>,
        /// `filledQtyTotal`, the order's cumulative fill.
        total: i64,
        /// `price`; `None` when absent, null or 0 (no price).
        price: Option<i64>,
        /// `statusReport`: the venue's answer to a status query, not a fill of its own.
        status_report: bool,
    },
    /// Any other type, known or not: counted, never booked.
    Other,
    /// One of our types with a field missing or malformed; the reason says which.
    Invalid(&'static str),
}

impl<'a> Input<'a> {
    pub fn of(e: &'a BusEvent) -> Input<'a> {
        match e.event_type.as_str() {
            types::ORDER_ACCEPTED => order_accepted(e).unwrap_or_else(Input::Invalid),
            types::EXECUTION_REPORT => execution(e).unwrap_or_else(Input::Invalid),
            _ => Input::Other,
        }
    }

    /// Whether this event can change the books (and so is remembered by its identity).
    pub fn is_booking(&self) -> bool {
        matches!(self, Input::OrderAccepted { .. } | Input::Execution { .. })
    }
}

fn order_id(e: &BusEvent) -> Result<&str, &'static str> {
    match e.order_id.as_deref() {
        Some(id) if !id.is_empty() => Ok(id),
        _ => Err("MISSING_ORDER_ID"),
    }
}

fn order_accepted(e: &BusEvent) -> Result<Input<'_>, &'static str> {
    let symbol = match e.data.get("symbol") {
        Some(Value::String(s)) if !s.is_empty() => s.as_str(),
        _ => return Err("MISSING_SYMBOL"),
    };
    let side = e
        .data
        .get("side")
        .and_then(Value::as_str)
        .and_then(Side::parse)
        .ok_or("INVALID_SIDE")?;
    Ok(Input::OrderAccepted {
        order_id: order_id(e)?,
        symbol,
        side,
    })
}

fn execution(e: &BusEvent) -> Result<Input<'_>, &'static str> {
    let total = int(&e.data, "filledQtyTotal")?.ok_or("MISSING_FILLED_QTY_TOTAL")?;
    if total < 0 {
        return Err("INVALID_FILLED_QTY_TOTAL");
    }
    let price = match int(&e.data, "price")? {
        Some(p) if p < 0 => return Err("INVALID_PRICE"),
        Some(0) | None => None,
        p => p,
    };
    let status_report = match e.data.get("statusReport") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err("INVALID_STATUS_REPORT"),
    };
    Ok(Input::Execution {
        order_id: order_id(e)?,
        delta: int(&e.data, "filledQtyDelta")?,
        total,
        price,
        status_report,
    })
}

/// An integer field: absent or null is `None`; anything but an integer that fits `i64`
/// (a fraction, a string, a huge number) is malformed. Quantities and prices are integers in
/// minor units on the bus, so a fraction is a producer bug, not something to round.
fn int(data: &Value, field: &'static str) -> Result<Option<i64>, &'static str> {
    let malformed = match field {
        "price" => "INVALID_PRICE",
        "filledQtyDelta" => "INVALID_FILLED_QTY_DELTA",
        _ => "INVALID_FILLED_QTY_TOTAL",
    };
    match data.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_i64().map(Some).ok_or(malformed),
    }
}

/// `at` in epoch milliseconds (RFC 3339); `None` when it does not parse, in which case the
/// ledger keeps the text and time filters do not match the entry.
pub fn at_ms(at: &str) -> Option<i64> {
    let t = time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(t: &str, order: Option<&str>, data: Value) -> BusEvent {
        BusEvent {
            event_type: t.into(),
            at: "2025-01-01T00:00:00.000Z".into(),
            account_id: "a".into(),
            order_id: order.map(Into::into),
            data,
            source: None,
            seq: None,
        }
    }

    // Goal: the reference fixture and the gateway's report decode; malformed fields do not.
    #[test]
    fn decodes_and_refuses() {
        let oa = ev(
            "OrderAccepted",
            Some("o1"),
            json!({"symbol":"BTC","side":"buy","qty":1,"price":100}),
        );
        assert_eq!(
            Input::of(&oa),
            Input::OrderAccepted {
                order_id: "o1",
                symbol: "BTC",
                side: Side::Buy
            }
        );
        let er = ev(
            "ExecutionReport",
            Some("o1"),
            json!({"status":"PARTIALLY_FILLED","filledQtyDelta":2,"filledQtyTotal":2,"price":100,
                   "venue":"simA","venueSeq":7,"statusReport":false}),
        );
        assert!(matches!(
            Input::of(&er),
            Input::Execution {
                delta: Some(2),
                total: 2,
                price: Some(100),
                status_report: false,
                ..
            }
        ));
        let no_price = ev(
            "ExecutionReport",
            Some("o1"),
            json!({"filledQtyTotal":2,"price":null}),
        );
        assert!(matches!(
            Input::of(&no_price),
            Input::Execution {
                price: None,
                delta: None,
                ..
            }
        ));
        for (e, why) in [
            (
                ev("OrderAccepted", None, json!({"symbol":"X","side":"BUY"})),
                "MISSING_ORDER_ID",
            ),
            (
                ev("OrderAccepted", Some("o"), json!({"side":"BUY"})),
                "MISSING_SYMBOL",
            ),
            (
                ev(
                    "OrderAccepted",
                    Some("o"),
                    json!({"symbol":"X","side":"HOLD"}),
                ),
                "INVALID_SIDE",
            ),
            (
                ev("ExecutionReport", Some("o"), json!({})),
                "MISSING_FILLED_QTY_TOTAL",
            ),
            (
                ev("ExecutionReport", Some("o"), json!({"filledQtyTotal":1.5})),
                "INVALID_FILLED_QTY_TOTAL",
            ),
            (
                ev(
                    "ExecutionReport",
                    Some("o"),
                    json!({"filledQtyTotal":1,"price":"1"}),
                ),
                "INVALID_PRICE",
            ),
            (
                ev(
                    "ExecutionReport",
                    Some("o"),
                    json!({"filledQtyTotal":1,"price":-1}),
                ),
                "INVALID_PRICE",
            ),
        ] {
            assert_eq!(Input::of(&e), Input::Invalid(why));
        }
        assert_eq!(
            Input::of(&ev("OrderSent", Some("o"), json!({}))),
            Input::Other
        );
        assert_eq!(Input::of(&ev("Whatever", None, json!({}))), Input::Other);
    }

    // Goal: `at` parses to epoch ms, with or without fractions.
    #[test]
    fn at_parses() {
        assert_eq!(at_ms("2025-01-01T00:00:00Z"), Some(1_735_689_600_000));
        assert_eq!(at_ms("2025-01-01T00:00:00.250Z"), Some(1_735_689_600_250));
        assert_eq!(at_ms("yesterday"), None);
    }
}
