//! The books in memory: the rules of §2.8 applied event by event, producing ledger entries
//! and keeping the projections (order metadata, filled totals, positions, balances, realized
//! PnL) up to date.
//!
//! One type serves three purposes, so that all three use exactly the same rules:
//! - **apply**: a batch is booked on a `Books` loaded with just the rows the batch touches;
//!   positions and filled totals are absolute values, balances and PnL start at 0 and end as
//!   the batch's increments (the store adds them to what it holds);
//! - **reconcile**: the whole ledger is posted on an empty `Books` and the result compared
//!   with the stored projections;
//! - **tests**: a model that books a whole event sequence in memory.

use std::collections::{HashMap, HashSet};

use switchyard_protocol::bus::BusEvent;

use crate::event::{at_ms, Input};
use crate::rules::{apply_fill, fill_cash, fill_qty, FillQty, Position, Side};

/// The parts of the configuration the rules depend on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules {
    /// `BACKOFFICE_FEE_BPS`: fee in basis points of the notional (0..=10 000).
    pub fee_bps: i64,
    /// `BACKOFFICE_QUOTE_CCY`: the currency fills are paid in (bus events carry none).
    pub quote_ccy: String,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            fee_bps: 10,
            quote_ccy: "JPY".into(),
        }
    }
}

/// The two kinds of ledger entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    OrderAccepted,
    Fill,
}

impl EntryKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EntryKind::OrderAccepted => "OrderAccepted",
            EntryKind::Fill => "Fill",
        }
    }

    /// Case-insensitive, as the reference's `/ledger?type=` filter.
    pub fn parse(s: &str) -> Option<EntryKind> {
        if s.eq_ignore_ascii_case("OrderAccepted") {
            Some(EntryKind::OrderAccepted)
        } else if s.eq_ignore_ascii_case("Fill") {
            Some(EntryKind::Fill)
        } else {
            None
        }
    }
}

/// The fill part of a `Fill` ledger entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FillFields {
    /// The quantity booked (after dedup and clamping), > 0.
    pub filled_qty_delta: i64,
    /// The order's cumulative filled quantity after this fill.
    pub filled_qty_total: i64,
    /// Fill price; `None` when the report had none.
    pub price: Option<i64>,
    pub quote_ccy: String,
    pub quote_cash_delta: i64,
    pub fee_quote: i64,
}

/// One line of the append-only ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Position in the ledger, from 1; 0 until the store assigns it.
    pub id: i64,
    /// The event's `at`, as it came.
    pub at: String,
    /// `at` in epoch ms, for time filters; `None` when `at` does not parse.
    pub at_ms: Option<i64>,
    pub account_id: String,
    pub order_id: String,
    pub symbol: String,
    pub side: Side,
    /// `None` for `OrderAccepted`.
    pub fill: Option<FillFields>,
    /// The source event's identity (gateway instance, journal seq), when it had one: ties
    /// every entry back to the journal record it came from.
    pub source: Option<String>,
    pub seq: Option<i64>,
}

impl LedgerEntry {
    pub fn kind(&self) -> EntryKind {
        if self.fill.is_some() {
            EntryKind::Fill
        } else {
            EntryKind::OrderAccepted
        }
    }
}

/// What the books remember of an accepted order: enough to book its fills.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderMeta {
    pub account_id: String,
    pub symbol: String,
    pub side: Side,
}

/// What became of one event.
// Returned by value and consumed at once: boxing the entry would cost an allocation per
// booked event for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// It moved the books; this entry goes to the ledger.
    Booked(LedgerEntry),
    /// Already booked (same identity, same order id, or a filled total that did not grow).
    Duplicate(&'static str),
    /// Not ours, malformed, or not bookable; the reason says which.
    Skipped(&'static str),
}

/// `(accountId, symbol)`
pub type PositionKey = (String, String);
/// `(accountId, currency)`
pub type BalanceKey = (String, String);
/// `(accountId, symbol, quoteCcy)`
pub type PnlKey = (String, String, String);

/// The books (see the module doc for the three ways they are used).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Books {
    pub orders: HashMap<String, OrderMeta>,
    /// Last booked `filledQtyTotal` per order: the fill dedup of §2.8.
    pub filled: HashMap<String, i64>,
    pub positions: HashMap<PositionKey, Position>,
    pub balances: HashMap<BalanceKey, i64>,
    pub pnl: HashMap<PnlKey, i64>,
    /// Identities `(source, seq)` of booking events already processed.
    pub seen: HashSet<(String, i64)>,
    /// Identities added by `book`, in order: the rows the store must add to `seen_events`.
    pub seen_new: Vec<(String, i64)>,
}

impl Books {
    /// Books one event. On `Booked` the projections already include it.
    pub fn book(&mut self, e: &BusEvent, rules: &Rules) -> Outcome {
        let input = Input::of(e);
        if let Input::Invalid(why) = input {
            return Outcome::Skipped(why);
        }
        if !input.is_booking() {
            return Outcome::Skipped("IGNORED_TYPE");
        }
        // An identity is remembered whatever its event turns out to be, so a redelivered
        // event is dropped even when the books have changed since (say, its order has
        // arrived in between): every event counts once, at its first delivery.
        if let (Some(source), Some(seq)) = (&e.source, e.seq) {
            let Ok(seq) = i64::try_from(seq) else {
                return Outcome::Skipped("INVALID_SEQ");
            };
            if !self.seen.insert((source.clone(), seq)) {
                return Outcome::Duplicate("SEEN_EVENT");
            }
            self.seen_new.push((source.clone(), seq));
        }
        let entry = match input {
            Input::OrderAccepted {
                order_id,
                symbol,
                side,
            } => {
                if self.orders.contains_key(order_id) {
                    return Outcome::Duplicate("ORDER_KNOWN");
                }
                self.entry(e, order_id, symbol, side, None)
            }
            Input::Execution {
                order_id,
                delta,
                total,
                price,
                status_report,
            } => {
                let Some(meta) = self.orders.get(order_id) else {
                    return Outcome::Skipped("UNKNOWN_ORDER");
                };
                if meta.account_id != e.account_id {
                    return Outcome::Skipped("ACCOUNT_MISMATCH");
                }
                let last = self.filled.get(order_id).copied().unwrap_or(0);
                let qty = match fill_qty(delta, total, last, status_report) {
                    FillQty::Duplicate => return Outcome::Duplicate("FILLED_TOTAL_NOT_GREATER"),
                    FillQty::Zero => return Outcome::Skipped("ZERO_DELTA"),
                    FillQty::Qty(q) => q,
                };
                let Some(cash) = fill_cash(meta.side, qty, price, rules.fee_bps) else {
                    return Outcome::Skipped("OVERFLOW");
                };
                let (symbol, side) = (meta.symbol.clone(), meta.side);
                let fill = FillFields {
                    filled_qty_delta: qty,
                    filled_qty_total: total,
                    price,
                    quote_ccy: rules.quote_ccy.clone(),
                    quote_cash_delta: cash.quote_cash_delta,
                    fee_quote: cash.fee,
                };
                self.entry(e, order_id, &symbol, side, Some(fill))
            }
            Input::Other | Input::Invalid(_) => unreachable!("filtered above"),
        };
        match self.post(&entry) {
            Ok(()) => Outcome::Booked(entry),
            Err(why) => Outcome::Skipped(why),
        }
    }

    fn entry(
        &self,
        e: &BusEvent,
        order_id: &str,
        symbol: &str,
        side: Side,
        fill: Option<FillFields>,
    ) -> LedgerEntry {
        LedgerEntry {
            id: 0,
            at: e.at.clone(),
            at_ms: at_ms(&e.at),
            account_id: e.account_id.clone(),
            order_id: order_id.to_owned(),
            symbol: symbol.to_owned(),
            side,
            fill,
            source: e.source.clone(),
            seq: e.seq.and_then(|s| i64::try_from(s).ok()),
        }
    }

    /// Applies a ledger entry to the projections: the one place the effect of an entry is
    /// defined, used when booking and when replaying the ledger. Changes nothing and fails
    /// when a number would overflow.
    pub fn post(&mut self, entry: &LedgerEntry) -> Result<(), &'static str> {
        let Some(f) = &entry.fill else {
            self.orders.insert(
                entry.order_id.clone(),
                OrderMeta {
                    account_id: entry.account_id.clone(),
                    symbol: entry.symbol.clone(),
                    side: entry.side,
                },
            );
            return Ok(());
        };
        let pos_key = (entry.account_id.clone(), entry.symbol.clone());
        let bal_key = (entry.account_id.clone(), f.quote_ccy.clone());
        let pnl_key = (
            entry.account_id.clone(),
            entry.symbol.clone(),
            f.quote_ccy.clone(),
        );
        let pos = self.positions.get(&pos_key).copied().unwrap_or_default();
        let change = apply_fill(pos, entry.side, f.filled_qty_delta, f.price).ok_or("OVERFLOW")?;
        let balance = self.balances.get(&bal_key).copied().unwrap_or(0);
        let balance = balance.checked_add(f.quote_cash_delta).ok_or("OVERFLOW")?;
        let pnl = self.pnl.get(&pnl_key).copied().unwrap_or(0);
        let pnl = pnl.checked_add(change.realized_pnl).ok_or("OVERFLOW")?;
        self.positions.insert(pos_key, change.position);
        self.balances.insert(bal_key, balance);
        self.pnl.insert(pnl_key, pnl);
        self.filled
            .insert(entry.order_id.clone(), f.filled_qty_total);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn ev(t: &str, account: &str, order: &str, data: Value, seq: Option<u64>) -> BusEvent {
        BusEvent {
            event_type: t.into(),
            at: "2025-01-01T00:00:00.000Z".into(),
            account_id: account.into(),
            order_id: Some(order.into()),
            data,
            source: seq.map(|_| "gw-1".into()),
            seq,
        }
    }

    fn accepted(order: &str, side: &str, seq: Option<u64>) -> BusEvent {
        ev(
            "OrderAccepted",
            "acct",
            order,
            json!({"symbol":"BTC","side":side,"type":"LIMIT","qty":10,"price":100}),
            seq,
        )
    }

    fn report(order: &str, delta: i64, total: i64, price: i64, seq: Option<u64>) -> BusEvent {
        ev(
            "ExecutionReport",
            "acct",
            order,
            json!({"status":"PARTIALLY_FILLED","filledQtyDelta":delta,"filledQtyTotal":total,"price":price}),
            seq,
        )
    }

    fn booked(o: Outcome) -> LedgerEntry {
        match o {
            Outcome::Booked(e) => e,
            other => panic!("expected a booking, got {other:?}"),
        }
    }

    // Goal: an OrderAccepted is booked once per order id, whatever its identity.
    #[test]
    fn order_accepted_dedup_by_order_id() {
        let mut b = Books::default();
        let r = Rules::default();
        let e = booked(b.book(&accepted("o1", "BUY", Some(1)), &r));
        assert_eq!(
            (e.kind(), e.side, e.seq),
            (EntryKind::OrderAccepted, Side::Buy, Some(1))
        );
        assert_eq!(
            b.book(&accepted("o1", "SELL", Some(2)), &r),
            Outcome::Duplicate("ORDER_KNOWN")
        );
        assert_eq!(b.orders["o1"].side, Side::Buy);
    }

    // Goal: an event whose (source, seq) was processed is dropped, even if it would book now.
    #[test]
    fn dedup_by_source_seq() {
        let mut b = Books::default();
        let r = Rules::default();
        // A fill arriving before its order is skipped, and its identity remembered.
        assert_eq!(
            b.book(&report("o1", 1, 1, 100, Some(5)), &r),
            Outcome::Skipped("UNKNOWN_ORDER")
        );
        booked(b.book(&accepted("o1", "BUY", Some(1)), &r));
        assert_eq!(
            b.book(&report("o1", 1, 1, 100, Some(5)), &r),
            Outcome::Duplicate("SEEN_EVENT")
        );
        assert_eq!(
            b.book(&accepted("o1", "BUY", Some(1)), &r),
            Outcome::Duplicate("SEEN_EVENT")
        );
        assert_eq!(b.seen_new, vec![("gw-1".into(), 5), ("gw-1".into(), 1)]);
        // Without an identity, the same report books (the filled total is the only guard).
        booked(b.book(&report("o1", 1, 1, 100, None), &r));
    }

    // Goal: a report whose filled total does not exceed the last one is a duplicate; the
    // delta is clamped to the growth.
    #[test]
    fn dedup_by_filled_total_and_clamp() {
        let mut b = Books::default();
        let r = Rules::default();
        booked(b.book(&accepted("o1", "BUY", None), &r));
        let f = booked(b.book(&report("o1", 4, 4, 100, None), &r))
            .fill
            .unwrap();
        assert_eq!((f.filled_qty_delta, f.filled_qty_total), (4, 4));
        assert_eq!(
            b.book(&report("o1", 4, 4, 100, None), &r),
            Outcome::Duplicate("FILLED_TOTAL_NOT_GREATER")
        );
        assert_eq!(
            b.book(&report("o1", 1, 3, 100, None), &r),
            Outcome::Duplicate("FILLED_TOTAL_NOT_GREATER")
        );
        let f = booked(b.book(&report("o1", 9, 6, 100, None), &r))
            .fill
            .unwrap();
        assert_eq!(f.filled_qty_delta, 2, "clamped to total − last");
        assert_eq!(b.filled["o1"], 6);
        assert_eq!(b.positions[&("acct".into(), "BTC".into())].net_qty, 6);
    }

    // Goal: fee and cash land in the account's quote-currency balance.
    #[test]
    fn fee_and_balance() {
        let mut b = Books::default();
        let r = Rules {
            fee_bps: 25,
            quote_ccy: "USD".into(),
        };
        booked(b.book(&accepted("o1", "BUY", None), &r));
        let f = booked(b.book(&report("o1", 3, 3, 1_000, None), &r))
            .fill
            .unwrap();
        assert_eq!(
            (f.fee_quote, f.quote_cash_delta, f.quote_ccy.as_str()),
            (7, -3_007, "USD")
        );
        assert_eq!(b.balances[&("acct".into(), "USD".into())], -3_007);
    }

    // Goal: a round trip through a flip realizes PnL long and short, with the average price
    // following the rules (weighted, flip → fill price, flat → none).
    #[test]
    fn round_trip_positions_and_pnl() {
        let mut b = Books::default();
        let r = Rules {
            fee_bps: 0,
            quote_ccy: "JPY".into(),
        };
        let key = ("acct".to_string(), "BTC".to_string());
        booked(b.book(&accepted("b1", "BUY", None), &r));
        booked(b.book(&report("b1", 2, 2, 100, None), &r));
        booked(b.book(&report("b1", 2, 4, 103, None), &r));
        assert_eq!(
            b.positions[&key],
            Position {
                net_qty: 4,
                avg_price: Some(101)
            }
        );
        booked(b.book(&accepted("s1", "SELL", None), &r));
        booked(b.book(&report("s1", 6, 6, 110, None), &r)); // closes 4 (+36), opens −2 @110
        assert_eq!(
            b.positions[&key],
            Position {
                net_qty: -2,
                avg_price: Some(110)
            }
        );
        booked(b.book(&accepted("b2", "BUY", None), &r));
        booked(b.book(&report("b2", 2, 2, 100, None), &r)); // closes 2 short (+20)
        assert_eq!(b.positions[&key], Position::default());
        let pnl_key = ("acct".to_string(), "BTC".to_string(), "JPY".to_string());
        assert_eq!(b.pnl[&pnl_key], 36 + 20);
        assert_eq!(
            b.balances[&("acct".into(), "JPY".into())],
            -200 - 206 + 660 - 200
        );
    }

    // Goal: what cannot book is skipped with a reason, and changes nothing.
    #[test]
    fn skips_change_nothing() {
        let mut b = Books::default();
        let r = Rules::default();
        booked(b.book(&accepted("o1", "BUY", None), &r));
        let before = b.clone();
        let mut other = report("o1", 1, 1, 100, None);
        other.account_id = "intruder".into();
        assert_eq!(b.book(&other, &r), Outcome::Skipped("ACCOUNT_MISMATCH"));
        assert_eq!(
            b.book(&report("o1", -1, 1, 100, None), &r),
            Outcome::Skipped("ZERO_DELTA")
        );
        let sent = ev("OrderSent", "acct", "o1", json!({}), Some(9));
        assert_eq!(b.book(&sent, &r), Outcome::Skipped("IGNORED_TYPE"));
        assert_eq!(
            b.book(&report("o1", 1, 1, i64::MAX, None), &r),
            Outcome::Skipped("OVERFLOW")
        );
        assert_eq!(b, before);
    }
}
