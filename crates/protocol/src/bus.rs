//! Bus events v1 (§2.7): what the gateway publishes to Kafka for every journaled event, and
//! what the back office consumes. The JSON Schema is `contracts/bus_event_v1.schema.json`.
//!
//! The reference's fields keep their meaning: `type`, `at` (RFC 3339 UTC with milliseconds),
//! `accountId`, `orderId` (optional), `data`. Two optional fields are added, a compatible
//! change under the reference's versioning policy: `source` (the gateway instance, its
//! `GATEWAY_ID`) and `seq` (the journal sequence number of the record the event comes from).
//! Together they identify an event exactly, so consumers of the at-least-once bus drop
//! duplicates without guessing.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Event types the gateway publishes (the `type` field).
pub mod types {
    pub const ORDER_ACCEPTED: &str = "OrderAccepted";
    pub const ORDER_SENT: &str = "OrderSent";
    pub const CANCEL_REQUESTED: &str = "CancelRequested";
    pub const CANCEL_SENT: &str = "CancelSent";
    pub const EXECUTION_REPORT: &str = "ExecutionReport";
    pub const ORDER_UPDATED: &str = "OrderUpdated";
    pub const AMEND_REQUESTED: &str = "AmendRequested";
    pub const REPLACE_SENT: &str = "ReplaceSent";
    /// A v3 hot-path order made durable (`orderId` = `v3/<sessionId>/<sessionSeq>`).
    pub const V3_DURABLE_ACCEPTED: &str = "V3DurableAccepted";
    pub const V3_DURABLE_REJECTED: &str = "V3DurableRejected";
    pub const KILL_SWITCH: &str = "KillSwitch";
}

/// One bus event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct BusEvent {
    #[serde(rename = "type")]
    pub event_type: String,
    /// RFC 3339 UTC with milliseconds and `Z`.
    pub at: String,
    pub account_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<String>,
    pub data: Value,
    /// The gateway instance that journaled the event (its `GATEWAY_ID`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The journal sequence number of the record; with `source`, the event's identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seq: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusEventError {
    #[error("bus event is not valid JSON of the v1 schema: {0}")]
    Json(#[from] serde_json::Error),
    #[error("bus event field {0} is empty")]
    Empty(&'static str),
    #[error("bus event `data` is not an object")]
    DataNotObject,
}

impl BusEvent {
    /// Decodes and checks what the schema requires beyond types (non-empty `type` and
    /// `accountId`, `data` an object).
    pub fn decode(bytes: &[u8]) -> Result<BusEvent, BusEventError> {
        let e: BusEvent = crate::json::object_from_slice(bytes)?;
        if e.event_type.is_empty() {
            return Err(BusEventError::Empty("type"));
        }
        if e.account_id.is_empty() {
            return Err(BusEventError::Empty("accountId"));
        }
        if !e.data.is_object() {
            return Err(BusEventError::DataNotObject);
        }
        Ok(e)
    }

    pub fn encode(&self) -> Vec<u8> {
        // A struct of strings, numbers and a JSON value always serializes.
        serde_json::to_vec(self).expect("bus event serializes")
    }

    /// The Kafka message key: the account, so that one account's events stay in order on one
    /// partition (positions and balances depend on that order). The reference keyed by order
    /// id, which orders only each order's own events.
    pub fn key(&self) -> &str {
        &self.account_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the reference's fixture decodes; our events round-trip; what the schema forbids is
    // refused.
    #[test]
    fn fixture_roundtrip_and_refusals() {
        let fixture = br#"{"type":"OrderAccepted","at":"2025-01-01T00:00:00Z","accountId":"acct-1","orderId":"ord-1","data":{"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100}}"#;
        let e = BusEvent::decode(fixture).unwrap();
        assert_eq!(
            (e.event_type.as_str(), e.key()),
            ("OrderAccepted", "acct-1")
        );
        assert_eq!(e.data["qty"], 1);
        let ours = BusEvent {
            seq: Some(42),
            source: Some("gw-1".into()),
            ..e
        };
        assert_eq!(BusEvent::decode(&ours.encode()).unwrap(), ours);
        for bad in [
            &br#"{"type":"","at":"x","accountId":"a","data":{}}"#[..],
            br#"{"type":"T","at":"x","accountId":"","data":{}}"#,
            br#"{"type":"T","at":"x","accountId":"a","data":[]}"#,
            br#"{"type":"T","at":"x","accountId":"a","data":{},"extra":1}"#,
            br#"{"type":"T","accountId":"a","data":{}}"#,
            b"nope",
            // An array with the fields in order is not an event.
            br#"["T","2025-01-01T00:00:00Z","a",null,{}]"#,
        ] {
            assert!(
                BusEvent::decode(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // Goal: numbers in `data` survive decode → encode → decode (fuzz: an integer too large
    // for u64, read as a float, came back as another float; serde_json parses floats exactly
    // only with its `float_roundtrip` feature).
    #[test]
    fn numbers_roundtrip() {
        let raw = br#"{"type":"T","at":"x","accountId":"a","data":{"price":10018446744073516160000000,"f":0.1,"g":1e-300,"h":-0}}"#;
        let e = BusEvent::decode(raw).unwrap();
        // The nearest f64, as Rust's own (exact) parser finds it.
        let exact: f64 = "10018446744073516160000000".parse().unwrap();
        assert_eq!(e.data["price"].as_f64(), Some(exact));
        assert_eq!(BusEvent::decode(&e.encode()).unwrap(), e);
    }
}
