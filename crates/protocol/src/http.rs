//! JSON bodies of the HTTP API.
//!
//! The order request (§2.2, `additionalProperties: false`) is decoded by serde into borrowed
//! fields. Numbers are read leniently (any JSON number) so that a negative or fractional `qty`
//! or `price` reaches risk and is refused as `INVALID_QTY`/`INVALID_PRICE` with 422 like any
//! other bad value, rather than as an opaque type error. Every failure has a reason word.

use std::borrow::Cow;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;
use switchyard_core::risk::OrderInput;
use switchyard_core::{ConfirmStatus, OrderType, Reason, Side, TimeInForce};

use crate::json::Obj;

/// Largest order body accepted; the reference fixture is ~120 bytes.
pub const ORDER_BODY_MAX: usize = 4096;

/// A JSON number that is a valid u64, or a marker that it was not (negative, fractional,
/// too large). Keeps the request decodable so that risk reports the right reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonU64 {
    Valid(u64),
    Invalid,
}

impl<'de> Deserialize<'de> for JsonU64 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = JsonU64;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an integer")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<JsonU64, E> {
                Ok(JsonU64::Valid(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<JsonU64, E> {
                Ok(u64::try_from(v).map_or(JsonU64::Invalid, JsonU64::Valid))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<JsonU64, E> {
                Ok(JsonU64::Invalid)
            }
        }
        d.deserialize_any(V)
    }
}

/// `CreateOrderRequest` (§2.2), camelCase, unknown fields refused.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OrderRequest<'a> {
    #[serde(borrow)]
    pub symbol: Cow<'a, str>,
    #[serde(borrow)]
    pub side: Cow<'a, str>,
    #[serde(rename = "type", borrow)]
    pub order_type: Cow<'a, str>,
    pub qty: JsonU64,
    #[serde(default)]
    pub price: Option<JsonU64>,
    #[serde(default, borrow)]
    pub time_in_force: Option<Cow<'a, str>>,
    #[serde(default)]
    pub expire_at: Option<JsonU64>,
    #[serde(default, borrow)]
    pub client_order_id: Option<Cow<'a, str>>,
}

/// Why a body could not be turned into an order, with the HTTP status to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BodyError {
    pub status: u16,
    pub reason: &'static str,
    pub detail: String,
}

impl BodyError {
    pub fn new(status: u16, reason: &'static str, detail: impl Into<String>) -> BodyError {
        BodyError {
            status,
            reason,
            detail: detail.into(),
        }
    }

    pub fn too_large(limit: usize) -> BodyError {
        BodyError::new(413, "BODY_TOO_LARGE", format!("body exceeds {limit} bytes"))
    }
}

/// Parses an order body. Syntax errors are 400 `INVALID_JSON`, unknown fields 400
/// `UNKNOWN_FIELD`, missing fields 400 `MISSING_FIELD`, wrong JSON types 400 `INVALID_FIELD`.
pub fn parse_order(body: &[u8]) -> Result<OrderRequest<'_>, BodyError> {
    crate::json::object_from_slice(body).map_err(|e| json_body_error(&e))
}

/// `POST /orders/{id}/amend`: the order's new total size and/or limit price.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AmendRequest {
    pub qty: Option<JsonU64>,
    pub price: Option<JsonU64>,
}

impl AmendRequest {
    /// The new terms, or the reason they are refused (like the order body: a bad number is
    /// 422 `INVALID_QTY`/`INVALID_PRICE`, nothing to change is 400 `INVALID_AMEND`).
    pub fn terms(&self) -> Result<(Option<u64>, Option<u64>), Reason> {
        let qty = match self.qty {
            None => None,
            Some(JsonU64::Valid(q)) if q > 0 => Some(q),
            Some(_) => return Err(Reason::InvalidQty),
        };
        let price = match self.price {
            None => None,
            Some(JsonU64::Valid(p)) if p > 0 => Some(p),
            Some(_) => return Err(Reason::InvalidPrice),
        };
        if qty.is_none() && price.is_none() {
            return Err(Reason::InvalidAmend);
        }
        Ok((qty, price))
    }
}

pub fn parse_amend(body: &[u8]) -> Result<AmendRequest, BodyError> {
    crate::json::object_from_slice(body).map_err(|e| json_body_error(&e))
}

/// A serde error as the 400 body every JSON endpoint answers with.
fn json_body_error(e: &serde_json::Error) -> BodyError {
    {
        let msg = e.to_string();
        let reason = match e.classify() {
            serde_json::error::Category::Data if msg.starts_with("unknown field") => {
                "UNKNOWN_FIELD"
            }
            serde_json::error::Category::Data if msg.starts_with("missing field") => {
                "MISSING_FIELD"
            }
            serde_json::error::Category::Data => "INVALID_FIELD",
            _ => "INVALID_JSON",
        };
        BodyError::new(400, reason, msg)
    }
}

impl<'a> OrderRequest<'a> {
    /// Turns the request into risk input. Bad enum words are 422 with the matching reason
    /// (an unknown side is left to risk, which reports `INVALID_SIDE` in its place in the
    /// evaluation order).
    pub fn to_input(&'a self) -> Result<OrderInput<'a>, Reason> {
        let order_type = OrderType::parse(&self.order_type).ok_or(Reason::InvalidType)?;
        let time_in_force = match &self.time_in_force {
            None => TimeInForce::Gtc,
            Some(t) => TimeInForce::parse(t).ok_or(Reason::InvalidTimeInForce)?,
        };
        let qty = match self.qty {
            JsonU64::Valid(q) => q,
            JsonU64::Invalid => 0,
        };
        let price = match self.price {
            None => None,
            Some(JsonU64::Valid(p)) => Some(p),
            Some(JsonU64::Invalid) if order_type == OrderType::Limit => {
                return Err(Reason::InvalidPrice)
            }
            Some(JsonU64::Invalid) => None,
        };
        let expire_at_ms = match self.expire_at {
            None => None,
            Some(JsonU64::Valid(v)) => Some(v),
            Some(JsonU64::Invalid) => return Err(Reason::ExpireAtInPast),
        };
        Ok(OrderInput {
            symbol: self.symbol.as_bytes(),
            side: Side::parse(&self.side),
            order_type,
            time_in_force,
            qty,
            price,
            expire_at_ms,
        })
    }
}

/// `VolatileOrderResponse` for an accepted order:
/// `{"sessionId","sessionSeq","attemptId":"att_<seq>","receivedAtNs","status":"VOLATILE_ACCEPT"}`.
pub fn write_volatile_accept(out: &mut Vec<u8>, session_id: &str, seq: u64, received_at_ns: u64) {
    Obj::new(out)
        .str("sessionId", session_id)
        .u64("sessionSeq", seq)
        .prefixed_u64("attemptId", "att_", seq)
        .u64("receivedAtNs", received_at_ns)
        .word("status", "VOLATILE_ACCEPT")
        .end();
}

/// `VolatileOrderResponse` for a refusal: `{"sessionId","receivedAtNs","status","reason"}`.
pub fn write_volatile_refusal(
    out: &mut Vec<u8>,
    session_id: &str,
    received_at_ns: u64,
    status: &'static str,
    reason: &'static str,
) {
    Obj::new(out)
        .str("sessionId", session_id)
        .u64("receivedAtNs", received_at_ns)
        .word("status", status)
        .word("reason", reason)
        .end();
}

/// `OrderResponse` of the durable path (§2.3.3) for a created or replayed order:
/// `{"orderId","acceptSeq","requestId":"req_<acceptSeq>","clientOrderId"?,"status","durability"}`.
/// `durability` (Switchyard's addition) names the level reached when the answer was sent.
pub fn write_order_response(
    out: &mut Vec<u8>,
    order_id: &str,
    accept_seq: u64,
    client_order_id: Option<&str>,
    status: &'static str,
    durability: &'static str,
) {
    let mut o = Obj::new(out);
    o.str("orderId", order_id)
        .u64("acceptSeq", accept_seq)
        .prefixed_u64("requestId", "req_", accept_seq);
    if let Some(c) = client_order_id {
        o.str("clientOrderId", c);
    }
    o.word("status", status)
        .word("durability", durability)
        .end();
}

/// `OrderResponse` of a refusal: `{"orderId":"","status":"REJECTED","reason"}`.
pub fn write_order_refusal(out: &mut Vec<u8>, reason: &'static str) {
    Obj::new(out)
        .word("orderId", "")
        .word("status", "REJECTED")
        .word("reason", reason)
        .end();
}

/// Body of a request that never became an order (bad body, wrong content type...):
/// `{"status":"REJECTED","reason":…,"detail":…}`.
pub fn write_body_error(out: &mut Vec<u8>, err: &BodyError) {
    let mut o = Obj::new(out);
    o.word("status", "REJECTED").word("reason", err.reason);
    if !err.detail.is_empty() {
        o.str("detail", &err.detail);
    }
    o.end();
}

/// One v3 confirm record as returned by `GET /v3/orders/{sessionId}/{sessionSeq}` (§2.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmView<'a> {
    pub session_id: &'a str,
    pub session_seq: u64,
    pub status: ConfirmStatus,
    pub reason: Option<&'a str>,
    pub received_at_ns: Option<u64>,
    pub updated_at_ns: u64,
    pub shard_id: u32,
}

pub fn write_confirm(out: &mut Vec<u8>, v: &ConfirmView<'_>) {
    let mut o = Obj::new(out);
    o.str("sessionId", v.session_id)
        .u64("sessionSeq", v.session_seq)
        .word("status", v.status.as_str());
    if v.status != ConfirmStatus::Unknown {
        o.prefixed_u64("attemptId", "att_", v.session_seq);
    }
    if let Some(r) = v.reason {
        o.str("reason", r);
    }
    if let Some(t) = v.received_at_ns {
        o.u64("receivedAtNs", t);
    }
    o.u64("updatedAtNs", v.updated_at_ns)
        .u64("shardId", v.shard_id as u64)
        .end();
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    // Goal: the reference fixture decodes, and its fields reach risk input unchanged.
    #[test]
    fn fixture_decodes() {
        let body = br#"{"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTC","expireAt":null,"clientOrderId":"c-1"}"#;
        let req = parse_order(body).unwrap();
        let i = req.to_input().unwrap();
        assert_eq!(i.symbol, b"BTC");
        assert_eq!(i.side, Some(Side::Buy));
        assert_eq!(i.qty, 1);
        assert_eq!(i.price, Some(100));
        assert_eq!(req.client_order_id.as_deref(), Some("c-1"));
    }

    // Goal: each kind of bad body gets its own reason and status.
    #[test]
    fn body_errors() {
        let e = |b: &[u8]| parse_order(b).unwrap_err().reason;
        assert_eq!(e(b"{"), "INVALID_JSON");
        assert_eq!(e(b"not json"), "INVALID_JSON");
        assert_eq!(
            e(br#"{"symbol":"A","side":"BUY","type":"LIMIT","qty":1,"x":1}"#),
            "UNKNOWN_FIELD"
        );
        assert_eq!(
            e(br#"{"symbol":"A","side":"BUY","type":"LIMIT"}"#),
            "MISSING_FIELD"
        );
        assert_eq!(
            e(br#"{"symbol":1,"side":"BUY","type":"LIMIT","qty":1}"#),
            "INVALID_FIELD"
        );
        let r = |b: &[u8]| parse_order(b).unwrap().to_input().map(|i| i.qty);
        assert_eq!(
            r(br#"{"symbol":"A","side":"BUY","type":"STOP","qty":1}"#),
            Err(Reason::InvalidType)
        );
        assert_eq!(
            r(br#"{"symbol":"A","side":"BUY","type":"LIMIT","qty":1,"timeInForce":"X"}"#),
            Err(Reason::InvalidTimeInForce)
        );
        // Negative qty reaches risk as 0 → INVALID_QTY.
        assert_eq!(
            r(br#"{"symbol":"A","side":"BUY","type":"LIMIT","qty":-1}"#),
            Ok(0)
        );
        assert_eq!(
            r(br#"{"symbol":"A","side":"BUY","type":"LIMIT","qty":1,"price":-1}"#),
            Err(Reason::InvalidPrice)
        );
        // An array is not an order (fuzz: `[0,88E8]` was read as an amend), nor an amend.
        assert_eq!(e(br#"["A","BUY","LIMIT",1]"#), "INVALID_FIELD");
        assert_eq!(e(br#"["A","#), "INVALID_JSON");
        let amend = parse_amend(b"[0,88E8]").unwrap_err();
        assert_eq!((amend.status, amend.reason), (400, "INVALID_FIELD"));
    }

    // Goal: hand-written responses are valid JSON with the contract's field names.
    #[test]
    fn responses_are_json() {
        let mut out = Vec::new();
        write_volatile_accept(&mut out, "s\"1", 9, 123);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["sessionId"], "s\"1");
        assert_eq!(v["sessionSeq"], 9);
        assert_eq!(v["attemptId"], "att_9");
        assert_eq!(v["status"], "VOLATILE_ACCEPT");
        out.clear();
        write_volatile_refusal(&mut out, "s", 5, "KILLED", "V3_GLOBAL_KILLED");
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["reason"], "V3_GLOBAL_KILLED");
        assert!(v.get("sessionSeq").is_none());
        out.clear();
        write_confirm(
            &mut out,
            &ConfirmView {
                session_id: "s",
                session_seq: 3,
                status: ConfirmStatus::DurableAccepted,
                reason: None,
                received_at_ns: Some(1),
                updated_at_ns: 2,
                shard_id: 1,
            },
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["status"], "DURABLE_ACCEPTED");
        assert_eq!(v["shardId"], 1);
        out.clear();
        write_body_error(&mut out, &BodyError::new(400, "INVALID_JSON", "eof \"x\""));
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["reason"], "INVALID_JSON");
    }
}

/// A URL query (`a=1&b=x%20y`) as (name, decoded value) pairs, in order.
pub fn query_pairs(q: &str) -> impl Iterator<Item = (&str, String)> {
    q.split('&').filter(|p| !p.is_empty()).map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k, percent_decode(v))
    })
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; a broken
/// escape is kept as it is.
pub fn percent_decode(s: &str) -> String {
    decode_escapes(s, true)
}

/// A path segment's decoding: `%XX` a byte, `+` stays `+`; a broken escape is kept as it is.
pub fn percent_decode_path(s: &str) -> String {
    decode_escapes(s, false)
}

/// Works on bytes, never on `str` indices: an escape followed by a multi-byte character
/// (`%aé`) is a broken escape, not a slice across a character boundary.
fn decode_escapes(s: &str, plus_is_space: bool) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' if plus_is_space => out.push(b' '),
            // Exactly two hex digits: `from_str_radix` alone also takes a sign ("%+1").
            b'%' if i + 2 < b.len() && b[i + 1..i + 3].iter().all(u8::is_ascii_hexdigit) => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("0");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod query_tests {
    use super::*;

    // Goal: path segments decode escapes but keep `+`; broken escapes stay as they are, also
    // when a multi-byte character follows the `%` (no slicing inside a character).
    #[test]
    fn path_segments() {
        assert_eq!(percent_decode_path("a%20b+c"), "a b+c");
        assert_eq!(percent_decode_path("a%2"), "a%2");
        assert_eq!(percent_decode_path("%zz"), "%zz");
        assert_eq!(percent_decode_path("%aé"), "%aé");
        assert_eq!(percent_decode_path("%é1"), "%é1");
        assert_eq!(percent_decode("%aé+"), "%aé ");
    }

    // Goal: query strings decode like form bodies; broken escapes stay as they are.
    #[test]
    fn query_decoding() {
        let pairs: Vec<(&str, String)> = query_pairs("a=1&b=x%20y+z&&c&d=%zz&e=%4").collect();
        assert_eq!(
            pairs,
            vec![
                ("a", "1".to_string()),
                ("b", "x y z".to_string()),
                ("c", String::new()),
                ("d", "%zz".to_string()),
                ("e", "%4".to_string()),
            ]
        );
        assert_eq!(percent_decode("caf%C3%A9"), "café");
    }

    // Goal: an escape is two hex digits, nothing else (fuzz: `%+f` decoded as byte 0x0f).
    #[test]
    fn signs_are_not_hex_digits() {
        // The `%` stays; the `+` after it is still a space.
        assert_eq!(percent_decode("%+f"), "% f");
        assert_eq!(percent_decode("%+1x%-1"), "% 1x%-1");
        assert_eq!(percent_decode("%2B1"), "+1");
    }
}
