//! What an execution report does to an order: one function, used live by the venue session and
//! at startup by replay, so both arrive at the same order, fills and risk state.

use switchyard_core::{OrderEvent, OrderStatus};
use switchyard_protocol::venue::{ExecStatus, REASON_UNKNOWN_ORDER};

use super::Cmd;
use crate::orders::{apply_event, Order};
use crate::records::ExecutionRecord;

/// The outcome of one report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Applied {
    /// Status, fills, terms or the pending amend changed: journal `OrderUpdated`, publish.
    pub moved: bool,
    /// The order's first fill.
    pub first_fill: bool,
    /// What the session must send to repair a loss (live only; replay ignores it).
    pub(crate) then: Option<Cmd>,
}

/// Applies `r` to `o` through the transition table (§3.1): fills only grow, a final order
/// never changes, a reject after fills never downgrades. Also keeps the account's projected
/// position right: an order's unfilled remainder leaves it when the order ends, and an amend
/// moves it by the size change.
pub fn apply_report(o: &mut Order, r: &ExecutionRecord<'_>, now_ms: u64) -> Applied {
    use ExecStatus as X;
    let before = (o.status, o.filled, o.order.qty, o.order.price, o.amend);
    let was_final = o.status.is_final();
    let mut then = None;
    // A report older than one already applied to the order shows a past state: its size says
    // nothing about a pending amend (an ACCEPTED resent after the REPLACED that followed it
    // names the size from before the amend).
    let current = r.venue_seq == 0 || r.venue_seq > o.venue_seq;
    o.venue_seq = o.venue_seq.max(r.venue_seq);
    if r.status != X::Unknown {
        // The venue has the order, whatever the gateway journaled before a crash (its
        // `OrderSent` may be missing: lost in a failed commit): so it is at least SENT.
        o.sent = true;
        o.acked = true;
        apply_event(o, OrderEvent::Sent, now_ms);
    }
    // A report the order's size cannot explain shows that the venue took the pending amend
    // and its REPLACED report is late (lost and resent, or behind this one): it names the new
    // size, or fills beyond the old one, or ends the order short of it. Take the amend first,
    // so the fill lands on the size the venue fills against.
    if let (Some(a), false, true) = (o.amend, was_final, current) {
        let took = match r.status {
            X::Replaced | X::ReplaceRejected | X::Unknown => false,
            _ if r.qty > 0 => {
                r.qty == a.qty && r.qty != o.order.qty && (a.price == 0 || r.limit_price == a.price)
            }
            X::PartiallyFilled => r.filled_total >= o.order.qty && a.qty > r.filled_total,
            X::Filled => r.filled_total != o.order.qty && a.qty == r.filled_total,
            _ => false,
        };
        if took {
            replaced(o, a.qty, a.price, now_ms);
        }
    }
    // Any report may carry a higher fill total (a status report, a reject after fills).
    if r.filled_total > o.filled && !matches!(r.status, X::Canceled | X::Unknown) {
        apply_event(
            o,
            OrderEvent::Fill {
                filled_total: r.filled_total,
            },
            now_ms,
        );
    }
    match r.status {
        X::Pending | X::Accepted | X::Sent | X::PartiallyFilled | X::Filled => {
            apply_event(o, OrderEvent::VenueAccepted, now_ms);
        }
        X::Canceled => {
            apply_event(
                o,
                OrderEvent::Canceled {
                    filled_total: r.filled_total,
                },
                now_ms,
            );
        }
        X::Rejected => {
            apply_event(o, OrderEvent::Rejected, now_ms);
        }
        // The venue refused the cancel because it does not hold the order: the NEW has not
        // arrived (lost with a connection). Not a refusal of a live order: send the NEW again,
        // the cancel follows it.
        X::CancelRejected
            if r.reason == REASON_UNKNOWN_ORDER && o.status == OrderStatus::CancelRequested =>
        {
            then = Some(Cmd::New(o.id));
        }
        X::CancelRejected => {
            apply_event(o, OrderEvent::CancelRejected, now_ms);
        }
        // The venue may answer a REPLACE more than once (it goes again after a reconnect): an
        // answer naming the terms the order already has, while another amend waits, belongs to
        // the earlier amend and must not settle the one pending.
        X::Replaced if answers_earlier_amend(o, r) => {}
        X::Replaced => replaced(o, r.qty, r.limit_price, now_ms),
        X::ReplaceRejected => o.drop_amend(),
        X::Unknown if was_final => {}
        // The venue has not seen the order: send it again (NEW is idempotent by order id).
        // Even with a cancel pending the gateway cannot cancel it alone: the first NEW may
        // still be on its way (unread on a connection the venue has not closed yet), so the
        // NEW goes again and the cancel after it.
        X::Unknown => then = Some(Cmd::New(o.id)),
    }
    // A status report shows what a disconnect lost: a cancel or an amend the venue never got
    // is repeated; an amend it did apply (its REPLACED report lost with a venue crash) is taken.
    let live_there = matches!(
        r.status,
        X::Pending | X::Accepted | X::Sent | X::PartiallyFilled
    );
    if r.status_report && live_there && !o.status.is_final() {
        if o.status == OrderStatus::CancelRequested {
            then = Some(Cmd::Cancel(o.id));
        } else if let Some(a) = o.amend {
            if current && r.qty == a.qty && (a.price == 0 || r.limit_price == a.price) {
                replaced(o, r.qty, r.limit_price, now_ms);
            } else if a.durable {
                // (One not durable yet goes out once it is, from the journal listener.)
                then = Some(Cmd::Replace(o.id));
            }
        }
    }
    if !was_final && o.status.is_final() {
        o.release_open();
    }
    Applied {
        moved: before != (o.status, o.filled, o.order.qty, o.order.price, o.amend),
        first_fill: before.1 == 0 && o.filled > 0,
        then,
    }
}

/// A REPLACED that repeats the order's current terms while a different amend is pending.
fn answers_earlier_amend(o: &Order, r: &ExecutionRecord<'_>) -> bool {
    let Some(a) = o.amend else {
        return false;
    };
    let price = |p: u64| if p == 0 { o.order.price } else { p };
    let names_current = r.qty == o.order.qty && price(r.limit_price) == o.order.price;
    let names_pending = r.qty == a.qty && (a.price == 0 || price(r.limit_price) == a.price);
    r.qty > 0 && names_current && !names_pending
}

/// The venue took an amend: new size and price, and the position follows a smaller size.
fn replaced(o: &mut Order, qty: u64, limit_price: u64, now_ms: u64) {
    let qty = if qty == 0 { o.order.qty } else { qty };
    // Refused by the table (final, or not above the filled quantity): nothing changes.
    if !apply_event(o, OrderEvent::Replaced { qty }, now_ms) {
        return;
    }
    let reserved = o.amend.take().map_or(0, |a| a.reserved_qty);
    // The position held the old size plus what the amend reserved; keep exactly the new size.
    let held = o.order.qty + reserved;
    if qty < held {
        o.account
            .risk
            .close_open(o.symbol_idx, o.order.side, held - qty);
    } else if qty > held {
        // The venue took a larger size than the position counts (a REPLACE still on its way
        // when the gateway took the amend as refused): the position follows the venue.
        o.account
            .risk
            .close_open(o.symbol_idx, o.order.side.opposite(), qty - held);
    }
    o.order.qty = qty;
    if limit_price > 0 {
        o.order.price = limit_price;
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    use switchyard_core::risk::{AccountRisk, AccountRules};
    use switchyard_core::{NewOrder, OrderId, OrderType, Side, Symbol, TimeInForce};

    use super::*;
    use crate::orders::PendingAmend;
    use crate::state::Account;

    /// A SENT buy of 10, its 10 already in the account's projected position.
    fn order() -> Order {
        let account = Arc::new(Account {
            id: "a".into(),
            rules: AccountRules::default(),
            risk: AccountRisk::new(2),
            killed: AtomicBool::new(false),
            owned: true,
        });
        account.risk.close_open(0, Side::Sell, 10); // +10, as the reservation made it
        Order {
            id: OrderId::new(0, 1),
            accept_seq: 1,
            account,
            client_order_id: None,
            order: NewOrder {
                symbol: Symbol::parse(b"BTC").unwrap(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtc,
                qty: 10,
                price: 100,
                expire_at_ms: None,
            },
            symbol_idx: 0,
            status: OrderStatus::Sent,
            filled: 0,
            accepted_ns: 0,
            last_update_ms: 0,
            durable: true,
            cancel_pending: false,
            venue: None,
            sent: true,
            maybe_sent: false,
            venue_seq: 0,
            acked: true,
            amend: None,
        }
    }

    /// A durable amend to `qty` at the same price, `reserved_qty` of it reserved.
    fn amend(qty: u64, reserved_qty: u64) -> PendingAmend {
        PendingAmend {
            qty,
            price: 0,
            reserved_qty,
            durable: true,
        }
    }

    fn report(status: ExecStatus, filled_total: u64) -> ExecutionRecord<'static> {
        ExecutionRecord {
            order_id: OrderId::new(0, 1),
            venue_seq: 1,
            filled_delta: 0,
            filled_total,
            price: 0,
            qty: 0,
            limit_price: 0,
            status,
            status_report: false,
            account_id: "a",
            venue: "v",
            reason: "",
        }
    }

    // Goal: fills grow, a cancel after a partial fill gives the unfilled rest back to the
    // position, and later reports change nothing.
    #[test]
    fn fills_then_cancel_release_the_rest() {
        let mut o = order();
        let a = apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 4), 1);
        assert!(a.moved && a.first_fill);
        assert_eq!((o.status, o.filled), (OrderStatus::PartiallyFilled, 4));
        // A duplicate and an older report: nothing.
        assert!(!apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 4), 2).moved);
        assert!(!apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 2), 3).moved);
        apply_report(&mut o, &report(ExecStatus::Canceled, 4), 4);
        assert_eq!((o.status, o.filled), (OrderStatus::Canceled, 4));
        assert_eq!(o.account.risk.position(0), 4, "the 6 never filled left");
        assert!(!apply_report(&mut o, &report(ExecStatus::Filled, 10), 5).moved);
        assert_eq!(o.account.risk.position(0), 4);
    }

    // Goal: a report about an order still ACCEPTED (its `OrderSent` never reached the journal)
    // shows the venue holds it: SENT, not left ACCEPTED for good.
    #[test]
    fn a_report_shows_the_order_was_sent() {
        let mut o = order();
        o.status = OrderStatus::Accepted;
        o.sent = false;
        let a = apply_report(&mut o, &report(ExecStatus::Accepted, 0), 1);
        assert!(a.moved);
        assert_eq!((o.status, o.sent, o.acked), (OrderStatus::Sent, true, true));
        let mut o = order();
        o.status = OrderStatus::Accepted;
        apply_report(&mut o, &report(ExecStatus::Unknown, 0), 1);
        assert_eq!(o.status, OrderStatus::Accepted);
    }

    // Goal: a reject after fills keeps the fills; a refused cancel makes the order live again.
    #[test]
    fn rejects_and_refused_cancels() {
        let mut o = order();
        apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 3), 1);
        apply_report(&mut o, &report(ExecStatus::Rejected, 3), 2);
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        o.status = OrderStatus::CancelRequested;
        apply_report(&mut o, &report(ExecStatus::CancelRejected, 3), 3);
        assert_eq!(o.status, OrderStatus::PartiallyFilled);
        let mut o = order();
        apply_report(&mut o, &report(ExecStatus::Rejected, 0), 1);
        assert_eq!(o.status, OrderStatus::Rejected);
        assert_eq!(o.account.risk.position(0), 0);
    }

    // Goal: what a status report after a reconnect repairs — an order the venue never got is
    // sent again (its cancel after it, if one is pending); a cancel or an amend the venue
    // never got is repeated; an amend it did apply is taken.
    #[test]
    fn status_reports_repair() {
        let mut o = order();
        let a = apply_report(&mut o, &report(ExecStatus::Unknown, 0), 1);
        assert_eq!(a.then, Some(Cmd::New(o.id)));
        o.status = OrderStatus::CancelRequested;
        let a = apply_report(&mut o, &report(ExecStatus::Unknown, 0), 2);
        assert_eq!(
            (o.status, a.then),
            (OrderStatus::CancelRequested, Some(Cmd::New(o.id)))
        );

        // A cancel refused because the NEW never arrived is no refusal: NEW again.
        let mut o = order();
        o.status = OrderStatus::CancelRequested;
        let mut r = report(ExecStatus::CancelRejected, 0);
        r.reason = REASON_UNKNOWN_ORDER;
        let a = apply_report(&mut o, &r, 1);
        assert_eq!(
            (o.status, a.then),
            (OrderStatus::CancelRequested, Some(Cmd::New(o.id)))
        );

        let mut o = order();
        o.status = OrderStatus::CancelRequested;
        let mut r = report(ExecStatus::Accepted, 0);
        r.status_report = true;
        assert_eq!(apply_report(&mut o, &r, 1).then, Some(Cmd::Cancel(o.id)));

        let mut o = order();
        o.amend = Some(amend(12, 2));
        r.qty = 10;
        assert_eq!(apply_report(&mut o, &r, 2).then, Some(Cmd::Replace(o.id)));
        r.qty = 12;
        r.venue_seq = 2; // each report has its own number
        let a = apply_report(&mut o, &r, 3);
        assert!(a.moved && a.then.is_none());
        assert_eq!((o.order.qty, o.amend), (12, None));
    }

    // Goal: a REPLACED report that comes late (after fills on the new size) still leaves the
    // order on the venue's terms, fills and position.
    #[test]
    fn late_replaced_reports() {
        // Amend 10 → 14 (4 reserved); the venue fills 12 and the REPLACED comes after.
        let mut o = order();
        o.account.risk.close_open(0, Side::Sell, 4);
        o.amend = Some(amend(14, 4));
        apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 12), 1);
        assert_eq!(
            (o.status, o.filled, o.order.qty),
            (OrderStatus::PartiallyFilled, 12, 14)
        );
        assert_eq!(o.amend, None);
        assert_eq!(o.account.risk.position(0), 14);
        // The venue fills exactly the old size: PARTIALLY_FILLED 10 of 14, not FILLED.
        let mut o = order();
        o.amend = Some(amend(14, 4));
        o.account.risk.close_open(0, Side::Sell, 4);
        apply_report(&mut o, &report(ExecStatus::PartiallyFilled, 10), 1);
        assert_eq!((o.status, o.order.qty), (OrderStatus::PartiallyFilled, 14));
        // Amend 10 → 6; the venue fills 6 (FILLED) before the REPLACED arrives.
        let mut o = order();
        o.amend = Some(amend(6, 0));
        apply_report(&mut o, &report(ExecStatus::Filled, 6), 1);
        assert_eq!(
            (o.status, o.filled, o.order.qty),
            (OrderStatus::Filled, 6, 6)
        );
        assert_eq!(o.account.risk.position(0), 6);
    }

    // Goal: a report older than one already applied (resent after a gap) is not read as the
    // venue taking a pending amend, even when the size it names is the amend's: the order was
    // 10, amended to 14 (REPLACED #11 applied), then amended back to 10; the ACCEPTED #10 that
    // arrives late names 10 from before the first amend, and the second amend stays pending.
    #[test]
    fn stale_reports_do_not_settle_an_amend() {
        let mut o = order();
        o.account.risk.close_open(0, Side::Sell, 4);
        o.amend = Some(amend(14, 4));
        let replaced = ExecutionRecord {
            venue_seq: 11,
            qty: 14,
            ..report(ExecStatus::Replaced, 0)
        };
        apply_report(&mut o, &replaced, 1);
        assert_eq!((o.order.qty, o.amend, o.venue_seq), (14, None, 11));
        let back = amend(10, 0);
        o.amend = Some(back);
        let late = ExecutionRecord {
            venue_seq: 10,
            qty: 10,
            ..report(ExecStatus::Accepted, 0)
        };
        apply_report(&mut o, &late, 2);
        assert_eq!(
            (o.order.qty, o.amend),
            (14, Some(back)),
            "stale report taken"
        );
        assert_eq!(o.venue_seq, 11);
        // The same report, current (numbered after #11), does show the venue took it.
        let current = ExecutionRecord {
            venue_seq: 12,
            ..late
        };
        apply_report(&mut o, &current, 3);
        assert_eq!((o.order.qty, o.amend), (10, None));
        assert_eq!(o.account.risk.position(0), 10);
    }

    // Goal: a second answer to an amend already applied (the REPLACE went twice) does not
    // settle the next amend: the order is 14 after amending 10 → 14, an amend to 6 waits, and a
    // REPLACED naming 14 arrives; the amend to 6 stays pending until its own answer.
    #[test]
    fn repeated_replaced_does_not_settle_the_next_amend() {
        let mut o = order();
        o.order.qty = 14;
        let pending = amend(6, 0);
        o.amend = Some(pending);
        let again = ExecutionRecord {
            venue_seq: 5,
            qty: 14,
            limit_price: 100,
            ..report(ExecStatus::Replaced, 0)
        };
        apply_report(&mut o, &again, 1);
        assert_eq!((o.order.qty, o.amend), (14, Some(pending)));
        let answer = ExecutionRecord {
            venue_seq: 6,
            qty: 6,
            ..again
        };
        apply_report(&mut o, &answer, 2);
        assert_eq!((o.order.qty, o.amend), (6, None));
    }

    // Goal: the venue took an amend the gateway had seen refused (the REPLACE was still on its
    // way when the venue said it did not know the order): the size and the position follow
    // the venue.
    #[test]
    fn a_larger_replace_without_pending_amend_counts_in_the_position() {
        let mut o = order();
        let late = ExecutionRecord {
            venue_seq: 9,
            qty: 14,
            ..report(ExecStatus::Replaced, 0)
        };
        apply_report(&mut o, &late, 1);
        assert_eq!(o.order.qty, 14);
        assert_eq!(o.account.risk.position(0), 14);
    }

    // Goal: an amend moves the position by the size change; a refused one gives back what it
    // reserved.
    #[test]
    fn amends_move_the_position() {
        let mut o = order();
        o.amend = Some(PendingAmend {
            qty: 6,
            price: 90,
            reserved_qty: 0,
            durable: true,
        });
        let mut r = report(ExecStatus::Replaced, 0);
        r.qty = 6;
        r.limit_price = 90;
        assert!(apply_report(&mut o, &r, 1).moved);
        assert_eq!((o.order.qty, o.order.price), (6, 90));
        assert_eq!(o.account.risk.position(0), 6);
        // A larger size was reserved (+4) and refused: back to 6.
        o.account.risk.close_open(0, Side::Sell, 4);
        o.amend = Some(amend(10, 4));
        apply_report(&mut o, &report(ExecStatus::ReplaceRejected, 0), 2);
        assert_eq!((o.order.qty, o.amend), (6, None));
        assert_eq!(o.account.risk.position(0), 6);
    }
}
