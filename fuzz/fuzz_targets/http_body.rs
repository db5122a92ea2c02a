//! Goal: the HTTP API's parsers of client bytes (`protocol::http`) accept exactly the
//! contract's shapes and lose nothing they accept.
//!
//! Every input goes through each parser:
//! - `parse_order` (POST /v3/orders, /orders): an accepted body is a JSON object (what a
//!   general JSON parser reads) with only the contract's keys and all required ones; its
//!   fields re-encoded as JSON parse back to the same fields; `to_input` agrees with them;
//!   a refused body gets 400 and one of the four reason words, and its error body is JSON;
//! - `parse_amend` (POST /orders/{id}/amend): the same object rule and round trip, and
//!   `terms()` only hands out positive numbers, at least one of them;
//! - `query_pairs`/`percent_decode` (query strings): the pairs are the `&`-separated parts,
//!   split at the first `=`, and the values agree with a reference form decoder (`+` is a
//!   space, `%XX` with two hex digits is a byte, anything else stays as it is);
//! - `json::push_str` (every hand-written response): any string comes back from a JSON parser
//!   unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Map, Value};
use switchyard_protocol::http::{
    parse_amend, parse_order, percent_decode, query_pairs, write_body_error, JsonU64,
};
use switchyard_protocol::json::push_str;

const ORDER_KEYS: [&str; 8] = [
    "symbol",
    "side",
    "type",
    "qty",
    "price",
    "timeInForce",
    "expireAt",
    "clientOrderId",
];
const ORDER_REQUIRED: [&str; 4] = ["symbol", "side", "type", "qty"];

/// What a general JSON parser makes of an accepted body: it must be an object whose keys
/// are all in `allowed`.
fn accepted_object(body: &[u8], allowed: &[&str]) -> Map<String, Value> {
    let v: Value = serde_json::from_slice(body).expect("an accepted body is JSON");
    let Value::Object(map) = v else {
        panic!("an accepted body is not a JSON object: {v}");
    };
    for k in map.keys() {
        assert!(allowed.contains(&k.as_str()), "accepted unknown key {k:?}");
    }
    map
}

/// A JSON number for a lenient `JsonU64` that reads back the same.
fn num(v: JsonU64) -> Value {
    match v {
        JsonU64::Valid(n) => json!(n),
        JsonU64::Invalid => json!(-1),
    }
}

fn check_order(body: &[u8]) {
    let req = match parse_order(body) {
        Ok(r) => r,
        Err(e) => {
            assert_eq!(e.status, 400);
            assert!(
                [
                    "INVALID_JSON",
                    "UNKNOWN_FIELD",
                    "MISSING_FIELD",
                    "INVALID_FIELD"
                ]
                .contains(&e.reason),
                "unexpected reason {}",
                e.reason
            );
            let mut out = Vec::new();
            write_body_error(&mut out, &e);
            let v: Value = serde_json::from_slice(&out).expect("error body is JSON");
            assert_eq!(v["reason"], e.reason);
            if !e.detail.is_empty() {
                assert_eq!(v["detail"], e.detail.as_str());
            }
            return;
        }
    };
    let map = accepted_object(body, &ORDER_KEYS);
    for k in ORDER_REQUIRED {
        assert!(map.contains_key(k), "accepted without {k}");
    }
    let mut o = json!({
        "symbol": req.symbol, "side": req.side, "type": req.order_type, "qty": num(req.qty),
    });
    let m = o.as_object_mut().expect("object");
    if let Some(p) = req.price {
        m.insert("price".into(), num(p));
    }
    if let Some(t) = &req.time_in_force {
        m.insert("timeInForce".into(), json!(t));
    }
    if let Some(x) = req.expire_at {
        m.insert("expireAt".into(), num(x));
    }
    if let Some(c) = &req.client_order_id {
        m.insert("clientOrderId".into(), json!(c));
    }
    let text = serde_json::to_vec(&o).expect("serializes");
    let back = parse_order(&text).expect("re-encoded order parses");
    assert_eq!(
        (
            &back.symbol,
            &back.side,
            &back.order_type,
            back.qty,
            back.price
        ),
        (&req.symbol, &req.side, &req.order_type, req.qty, req.price)
    );
    assert_eq!(
        (&back.time_in_force, back.expire_at, &back.client_order_id),
        (&req.time_in_force, req.expire_at, &req.client_order_id)
    );
    if let Ok(input) = req.to_input() {
        assert_eq!(input.symbol, req.symbol.as_bytes());
        let qty = match req.qty {
            JsonU64::Valid(q) => q,
            JsonU64::Invalid => 0,
        };
        assert_eq!(input.qty, qty);
        if let Some(JsonU64::Valid(p)) = req.price {
            assert_eq!(input.price, Some(p));
        }
    }
}

fn check_amend(body: &[u8]) {
    let Ok(a) = parse_amend(body) else { return };
    accepted_object(body, &["qty", "price"]);
    let mut o = Map::new();
    if let Some(q) = a.qty {
        o.insert("qty".into(), num(q));
    }
    if let Some(p) = a.price {
        o.insert("price".into(), num(p));
    }
    let back = parse_amend(&serde_json::to_vec(&o).expect("serializes")).expect("re-parses");
    assert_eq!((back.qty, back.price), (a.qty, a.price));
    if let Ok((q, p)) = a.terms() {
        assert!(q.is_some() || p.is_some(), "an amend that changes nothing");
        assert!(q.is_none_or(|q| q > 0) && p.is_none_or(|p| p > 0));
        assert_eq!(q.is_some(), a.qty.is_some());
        assert_eq!(p.is_some(), a.price.is_some());
    }
}

/// The form decoding the docs describe, written independently.
fn reference_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len()
                && b[i + 1].is_ascii_hexdigit()
                && b[i + 2].is_ascii_hexdigit() =>
            {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).expect("ascii");
                out.push(u8::from_str_radix(hex, 16).expect("two hex digits"));
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn check_query(q: &str) {
    let parts: Vec<&str> = q.split('&').filter(|p| !p.is_empty()).collect();
    let pairs: Vec<(&str, String)> = query_pairs(q).collect();
    assert_eq!(pairs.len(), parts.len());
    for ((k, v), part) in pairs.iter().zip(&parts) {
        let (pk, pv) = part.split_once('=').unwrap_or((part, ""));
        assert_eq!(*k, pk);
        assert_eq!(*v, reference_decode(pv), "value of {part:?}");
    }
    assert_eq!(
        percent_decode(q),
        reference_decode(q),
        "percent_decode({q:?})"
    );
    // Every byte escaped decodes back to the string.
    let escaped: String = q.bytes().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(percent_decode(&escaped), q);
}

fuzz_target!(|data: &[u8]| {
    check_order(data);
    check_amend(data);
    if let Ok(s) = std::str::from_utf8(data) {
        check_query(s);
        let mut out = Vec::new();
        push_str(&mut out, s);
        let back: String = serde_json::from_slice(&out).expect("escaped string is JSON");
        assert_eq!(back, s);
    }
});
