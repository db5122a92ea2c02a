//! What an execution report does to an order: one function, used live by the venue session and
//! at startup by replay, so both arrive at the same order, fills and risk state.

use switchyard_core::{OrderEvent, OrderStatus};
use switchyard_protocol::venue::ExecStatus;

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
    if r.status != X::Unknown {
        // The venue has the order, whatever the gateway journaled before a crash.
        o.sent = true;
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
        X::CancelRejected => {
            apply_event(o, OrderEvent::CancelRejected, now_ms);
        }
        X::Replaced => replaced(o, r.qty, r.limit_price, now_ms),
        X::ReplaceRejected => {
            if let Some(a) = o.amend.take() {
                o.account
                    .risk
                    .close_open(o.symbol_idx, o.order.side, a.reserved_qty);
            }
        }
        X::Unknown if was_final => {}
        // The venue never got the order: nothing to cancel there, or send it (again).
        X::Unknown if o.status == OrderStatus::CancelRequested => {
            apply_event(
                o,
                OrderEvent::Canceled {
                    filled_total: o.filled,
                },
                now_ms,
            );
        }
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
            if r.qty == a.qty && (a.price == 0 || r.limit_price == a.price) {
                replaced(o, r.qty, r.limit_price, now_ms);
            } else {
                then = Some(Cmd::Replace(o.id));
            }
        }
    }
    if !was_final && o.status.is_final() {
        let mut open = o.open_qty();
        if let Some(a) = o.amend.take() {
            open += a.reserved_qty;
        }
        o.account.risk.close_open(o.symbol_idx, o.order.side, open);
    }
    Applied {
        moved: before != (o.status, o.filled, o.order.qty, o.order.price, o.amend),
        first_fill: before.1 == 0 && o.filled > 0,
        then,
    }
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
    }
    o.order.qty = qty;
    if limit_price > 0 {
        o.order.price = limit_price;
    }
}
