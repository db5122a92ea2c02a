//! Goal: the gateway's journal record payloads (`crates/gateway/src/records.rs`) decode only
//! what an encoder could have written, and everything the gateway journals decodes again.
//!
//! Replay, the events API and the outbox decode these payloads after a restart; a payload the
//! gateway wrote but cannot read back stops replay, and the gateway with it.
//!
//! The input is used twice:
//! - as a payload for every decoder: one that decodes re-encodes to a canonical payload that
//!   decodes to the same value and re-encodes to itself, and the decoder refuses the payload
//!   with two more bytes after it (a decoder reads the whole payload, nothing is ignored);
//!   `to_json` (journal dump) never panics and reports no error for a decodable payload;
//! - as the source of record values, with strings of any length and any characters (a
//!   venue's `reason`, an idempotency key, ids): encoding then decoding gives the value back,
//!   strings cut to what the format holds (255 or 65 535 bytes) at a character boundary.
//!
//! Also `parse_order_ref` (order ids in URLs and venue reports): an id it accepts is the one
//! `order_ref` spells (hex digits in either case), and `order_ref` output parses back.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use switchyard_core::{NewOrder, OrderId, OrderStatus, OrderType, Side, Symbol, TimeInForce};
use switchyard_fuzz::records::*;
use switchyard_protocol::venue::ExecStatus;

/// Decoded, canonical re-encoding, and the two checks every decoder gets.
macro_rules! check_decoder {
    ($data:expr, $decode:expr) => {{
        let decode = $decode;
        if let Ok(v) = decode($data) {
            let mut canon = Vec::new();
            v.encode(&mut canon);
            let v2 = decode(&canon).expect("a canonical payload decodes");
            assert_eq!(v2, v, "canonical payload decodes differently");
            let mut canon2 = Vec::new();
            v2.encode(&mut canon2);
            assert_eq!(canon2, canon, "canonical payload is not stable");
            let mut longer = $data.to_vec();
            longer.extend_from_slice(&[0, 0]);
            assert!(
                decode(&longer).is_err(),
                "decoder ignored bytes after the payload"
            );
        }
    }};
}

fn check_raw(data: &[u8]) {
    check_decoder!(data, |p| V3OrderAccepted::decode(p));
    check_decoder!(data, |p| V3DurableRejected::decode(p));
    check_decoder!(data, |p| KillSwitchChange::decode(p));
    check_decoder!(data, |p| OrderAccepted::decode(p));
    check_decoder!(data, |p| OrderChange::decode(KIND_ORDER_UPDATED, p));
    check_decoder!(data, |p| VenueSent::decode(KIND_ORDER_SENT, p));
    check_decoder!(data, |p| ExecutionRecord::decode(p));
    check_decoder!(data, |p| AmendRequested::decode(p));
    for kind in (0..=13).chain([u16::MAX]) {
        let j = to_json(7, 9, kind, data);
        assert_eq!(j["type"], kind_name(kind));
        let decodable = match kind {
            KIND_V3_ORDER_ACCEPTED => V3OrderAccepted::decode(data).is_ok(),
            KIND_ORDER_ACCEPTED => OrderAccepted::decode(data).is_ok(),
            KIND_EXECUTION_REPORT => ExecutionRecord::decode(data).is_ok(),
            _ => false,
        };
        if decodable {
            assert!(j["data"].get("error").is_none(), "{j}");
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a character boundary.
fn cut(s: &str, max: usize) -> &str {
    let mut n = s.len().min(max);
    while !s.is_char_boundary(n) {
        n -= 1;
    }
    &s[..n]
}

/// A string of any length: an arbitrary piece, repeated (so that long multi-byte strings,
/// which straddle the format's length limits, are easy to reach).
fn text(u: &mut Unstructured<'_>) -> Result<String> {
    let piece: String = u.arbitrary()?;
    let times = u.int_in_range(1..=400usize)?;
    let mut s = piece.repeat(times);
    s.truncate(cut(&s, 70_000).len());
    Ok(s)
}

fn order(u: &mut Unstructured<'_>) -> Result<NewOrder> {
    let raw: Vec<u8> = u.arbitrary()?;
    Ok(NewOrder {
        symbol: Symbol::parse(&raw).unwrap_or_else(|_| Symbol::parse(b"BTC").expect("valid")),
        side: *u.choose(&[Side::Buy, Side::Sell])?,
        order_type: *u.choose(&[OrderType::Limit, OrderType::Market])?,
        time_in_force: *u.choose(&[TimeInForce::Gtc, TimeInForce::Gtd, TimeInForce::Ioc])?,
        qty: u.arbitrary()?,
        price: u.arbitrary()?,
        // 0 is how the format spells "none".
        expire_at_ms: u.arbitrary::<Option<u64>>()?.filter(|&x| x != 0),
    })
}

fn roundtrip<'a, T: PartialEq + std::fmt::Debug>(
    buf: &'a mut Vec<u8>,
    encode: impl FnOnce(&mut Vec<u8>),
    decode: impl FnOnce(&'a [u8]) -> std::result::Result<T, PayloadError>,
    want: T,
) {
    buf.clear();
    encode(&mut *buf);
    let bytes: &'a Vec<u8> = buf;
    match decode(bytes) {
        Ok(got) => assert_eq!(got, want, "journaled record reads back differently"),
        Err(e) => panic!("the gateway journaled a record it cannot read: {e} ({want:?})"),
    }
}

fn check_values(u: &mut Unstructured<'_>) -> Result<()> {
    let (a, b, c) = (text(u)?, text(u)?, text(u)?);
    let mut buf = Vec::new();

    let v = V3OrderAccepted {
        order_id: OrderId(u.arbitrary()?),
        session_seq: u.arbitrary()?,
        received_at_ns: u.arbitrary()?,
        shard: u.arbitrary()?,
        order: order(u)?,
        session_id: &a,
        account_id: &b,
    };
    let want = V3OrderAccepted {
        session_id: cut(&a, 255),
        account_id: cut(&b, 255),
        ..v
    };
    roundtrip(&mut buf, |o| v.encode(o), V3OrderAccepted::decode, want);

    let cid: Option<&str> = if u.arbitrary()? { Some(&c) } else { None };
    let v = OrderAccepted {
        order_id: OrderId(u.arbitrary()?),
        accept_seq: u.arbitrary()?,
        received_at_ns: u.arbitrary()?,
        order: order(u)?,
        account_id: &a,
        idempotency_key: &b,
        client_order_id: cid,
        venue: &c,
    };
    let want = OrderAccepted {
        account_id: cut(&a, 255),
        idempotency_key: cut(&b, 65_535),
        client_order_id: cid.map(|c| cut(c, 65_535)),
        venue: cut(&c, 255),
        ..v
    };
    roundtrip(&mut buf, |o| v.encode(o), OrderAccepted::decode, want);

    let v = OrderChange {
        order_id: OrderId(u.arbitrary()?),
        status: *u.choose(&OrderStatus::ALL)?,
        filled: u.arbitrary()?,
        account_id: &a,
    };
    let want = OrderChange {
        account_id: cut(&a, 255),
        ..v
    };
    let kind = *u.choose(&[KIND_CANCEL_REQUESTED, KIND_ORDER_UPDATED])?;
    roundtrip(
        &mut buf,
        |o| v.encode(o),
        |p| OrderChange::decode(kind, p),
        want,
    );

    let v = VenueSent {
        order_id: OrderId(u.arbitrary()?),
        account_id: &a,
        venue: &b,
    };
    let want = VenueSent {
        account_id: cut(&a, 255),
        venue: cut(&b, 255),
        ..v
    };
    let kind = *u.choose(&[KIND_ORDER_SENT, KIND_CANCEL_SENT, KIND_REPLACE_SENT])?;
    roundtrip(
        &mut buf,
        |o| v.encode(o),
        |p| VenueSent::decode(kind, p),
        want,
    );

    let v = ExecutionRecord {
        order_id: OrderId(u.arbitrary()?),
        venue_seq: u.arbitrary()?,
        filled_delta: u.arbitrary()?,
        filled_total: u.arbitrary()?,
        price: u.arbitrary()?,
        qty: u.arbitrary()?,
        limit_price: u.arbitrary()?,
        status: *u.choose(&ExecStatus::ALL)?,
        status_report: u.arbitrary()?,
        account_id: &a,
        venue: &b,
        reason: &c,
    };
    let want = ExecutionRecord {
        account_id: cut(&a, 255),
        venue: cut(&b, 255),
        reason: cut(&c, 255),
        ..v
    };
    roundtrip(&mut buf, |o| v.encode(o), ExecutionRecord::decode, want);

    let v = AmendRequested {
        order_id: OrderId(u.arbitrary()?),
        qty: u.arbitrary()?,
        price: u.arbitrary()?,
        account_id: &a,
    };
    let want = AmendRequested {
        account_id: cut(&a, 255),
        ..v
    };
    roundtrip(&mut buf, |o| v.encode(o), AmendRequested::decode, want);

    let v = V3DurableRejected {
        session_seq: u.arbitrary()?,
        reason: u.arbitrary()?,
        session_id: &a,
    };
    let want = V3DurableRejected {
        session_id: cut(&a, 255),
        ..v
    };
    roundtrip(&mut buf, |o| v.encode(o), V3DurableRejected::decode, want);

    let v = KillSwitchChange {
        scope: *u.choose(&[
            KillScope::Global,
            KillScope::Shard,
            KillScope::Session,
            KillScope::Account,
        ])?,
        id: a.clone(),
        on: u.arbitrary()?,
        cause: *u.choose(&[
            KillCause::Operator,
            KillCause::QueueWatermark,
            KillCause::LossSuspect,
            KillCause::AutoRecover,
        ])?,
        by: b.clone(),
        note: c.clone(),
    };
    let want = KillSwitchChange {
        id: cut(&a, 255).to_string(),
        by: cut(&b, 255).to_string(),
        note: cut(&c, 255).to_string(),
        ..v.clone()
    };
    roundtrip(&mut buf, |o| v.encode(o), KillSwitchChange::decode, want);

    let id = OrderId(u.arbitrary()?);
    assert_eq!(parse_order_ref(&order_ref(id)), Some(id));
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    check_raw(data);
    let _ = check_values(&mut Unstructured::new(data));
    if let Ok(s) = std::str::from_utf8(data) {
        if let Some(id) = parse_order_ref(s) {
            assert!(
                order_ref(id).eq_ignore_ascii_case(s),
                "{s:?} read as order {id:?}"
            );
        }
    }
});
