//! Goal: bus events (`protocol::bus`), as the back office reads them (`backoffice::event`)
//! and books them (`backoffice::books`), are taken only in the contract's shape, and booking
//! any sequence of them keeps the books' promises.
//!
//! The input is a stream of messages, one per line. Each message:
//! - `BusEvent::decode` accepts only a JSON object (`additionalProperties: false`) with a
//!   non-empty `type` and `accountId` and an object `data`, and an event re-encodes to bytes
//!   that decode to the same event;
//! - `Input::of` hands out only what the event says: the order id, a non-empty symbol, a side
//!   that parses, a non-negative filled total, a positive price or none.
//!
//! The decoded events are booked in order on empty books (`Books::book`, what the back office
//! applies to every batch). Then:
//! - posting the booked ledger entries alone on empty books gives the same projections
//!   (positions, balances, PnL, filled totals, orders): the reconciliation's promise, and
//!   posting never fails on an entry that was booked;
//! - every booked event delivered again books nothing (the bus delivers at least once; the
//!   books count each event once).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use switchyard_fuzz::books::{Books, Outcome, Rules};
use switchyard_fuzz::event::Input;
use switchyard_protocol::bus::BusEvent;

const MAX_EVENTS: usize = 64;

fn check_decode(bytes: &[u8]) -> Option<BusEvent> {
    let e = BusEvent::decode(bytes).ok()?;
    let v: Value = serde_json::from_slice(bytes).expect("an accepted event is JSON");
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("an accepted event is not an object: {v}"));
    for k in obj.keys() {
        assert!(
            [
                "type",
                "at",
                "accountId",
                "orderId",
                "data",
                "source",
                "seq"
            ]
            .contains(&k.as_str()),
            "accepted unknown key {k:?}"
        );
    }
    assert!(!e.event_type.is_empty() && !e.account_id.is_empty() && e.data.is_object());
    assert_eq!(obj["type"], e.event_type.as_str());
    assert_eq!(obj["accountId"], e.account_id.as_str());
    let again = BusEvent::decode(&e.encode()).expect("an encoded event decodes");
    assert_eq!(again, e, "event changed through encode/decode");
    match Input::of(&e) {
        Input::OrderAccepted {
            order_id,
            symbol,
            side: _,
        } => {
            assert_eq!(Some(order_id), e.order_id.as_deref());
            assert!(!order_id.is_empty() && !symbol.is_empty());
            assert_eq!(e.data["symbol"], symbol);
        }
        Input::Execution {
            order_id,
            delta,
            total,
            price,
            status_report: _,
        } => {
            assert_eq!(Some(order_id), e.order_id.as_deref());
            assert!(total >= 0 && price.is_none_or(|p| p > 0));
            assert_eq!(e.data["filledQtyTotal"].as_i64(), Some(total));
            assert_eq!(e.data.get("filledQtyDelta").and_then(Value::as_i64), delta);
        }
        Input::Other | Input::Invalid(_) => {}
    }
    Some(e)
}

fn check_books(events: &[BusEvent]) {
    let rules = Rules::default();
    let mut books = Books::default();
    let mut booked = Vec::new();
    for e in events {
        if let Outcome::Booked(entry) = books.book(e, &rules) {
            booked.push((e, entry));
        }
    }
    // The ledger alone rebuilds the projections.
    let mut replayed = Books::default();
    for (_, entry) in &booked {
        replayed
            .post(entry)
            .unwrap_or_else(|why| panic!("a booked entry does not post again: {why}"));
    }
    assert_eq!(replayed.orders, books.orders, "orders");
    assert_eq!(replayed.filled, books.filled, "filled totals");
    assert_eq!(replayed.positions, books.positions, "positions");
    assert_eq!(replayed.balances, books.balances, "balances");
    assert_eq!(replayed.pnl, books.pnl, "pnl");
    // Redelivered, nothing books twice.
    for (e, _) in &booked {
        let again = books.book(e, &rules);
        assert!(
            !matches!(again, Outcome::Booked(_)),
            "an event booked twice: {e:?}"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    let events: Vec<BusEvent> = data
        .split(|&b| b == b'\n')
        .take(MAX_EVENTS)
        .filter_map(check_decode)
        .collect();
    check_books(&events);
});
