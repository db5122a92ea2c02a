//! The order state machine (§3.1) as one transition table, and the v3 confirm states.
//!
//! `transition` is the only place that decides how an order's status moves. Every pair of
//! (status, event) is listed; pairs that are harmless repeats or late arrivals return
//! `Transition::Unchanged`, pairs that must never happen are typed errors.

/// Durable-path order status (`OrderSnapshot.status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum OrderStatus {
    Accepted = 1,
    Sent = 2,
    CancelRequested = 3,
    PartiallyFilled = 4,
    Filled = 5,
    Canceled = 6,
    Rejected = 7,
}

impl OrderStatus {
    /// The inverse of `as u8` (journal payloads).
    pub fn from_code(code: u8) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|s| *s as u8 == code)
    }

    pub const ALL: [OrderStatus; 7] = [
        OrderStatus::Accepted,
        OrderStatus::Sent,
        OrderStatus::CancelRequested,
        OrderStatus::PartiallyFilled,
        OrderStatus::Filled,
        OrderStatus::Canceled,
        OrderStatus::Rejected,
    ];

    pub fn is_final(self) -> bool {
        matches!(
            self,
            OrderStatus::Filled | OrderStatus::Canceled | OrderStatus::Rejected
        )
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Accepted => "ACCEPTED",
            OrderStatus::Sent => "SENT",
            OrderStatus::CancelRequested => "CANCEL_REQUESTED",
            OrderStatus::PartiallyFilled => "PARTIALLY_FILLED",
            OrderStatus::Filled => "FILLED",
            OrderStatus::Canceled => "CANCELED",
            OrderStatus::Rejected => "REJECTED",
        }
    }

    pub fn parse(s: &str) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| st.as_str() == s)
    }

    pub fn from_u8(v: u8) -> Option<OrderStatus> {
        OrderStatus::ALL.into_iter().find(|st| *st as u8 == v)
    }
}

/// Something that happens to an order. Venue reports carry the venue's cumulative filled
/// quantity, never a delta, so that duplicates and reordering are harmless.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderEvent {
    /// The engine handed the order to a venue.
    Sent,
    /// A client asked to cancel.
    CancelRequested,
    /// The venue acknowledged the order (no fill).
    VenueAccepted,
    /// The venue reports fills up to `filled_total`.
    Fill { filled_total: u64 },
    /// The venue cancelled the order (after `filled_total` was filled).
    Canceled { filled_total: u64 },
    /// The venue refused the order (or, from a reference venue, answered a cancel of an order
    /// it no longer holds).
    Rejected,
    /// The venue refused a cancel: the order lives on.
    CancelRejected,
    /// An amend took effect: the order's quantity is now `qty` (the caller sets the new terms).
    Replaced { qty: u64 },
}

/// The result of applying an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transition {
    /// The status (or the filled quantity) changed.
    Moved { status: OrderStatus, filled: u64 },
    /// Nothing changed but the last-update time: a duplicate, a late or stale report.
    Unchanged,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("order already final ({0:?}); cancel refused")]
    AlreadyFinal(OrderStatus),
    #[error("fill total {filled_total} exceeds order quantity {qty}")]
    Overfill { filled_total: u64, qty: u64 },
    #[error("event {event:?} is not valid in status {status:?}")]
    Invalid {
        status: OrderStatus,
        event: OrderEvent,
    },
}

/// The one transition table. `filled` is the order's cumulative filled quantity, `qty` its size.
pub fn transition(
    status: OrderStatus,
    filled: u64,
    qty: u64,
    event: OrderEvent,
) -> Result<Transition, TransitionError> {
    use OrderEvent as E;
    use OrderStatus as S;
    let moved = |status, filled| Ok(Transition::Moved { status, filled });
    match (status, event) {
        // A client cancel of a final order is the one client-visible error (409 ORDER_FINAL).
        (s, E::CancelRequested) if s.is_final() => Err(TransitionError::AlreadyFinal(s)),
        // A report about a final order changes nothing: the venue may repeat itself or a fill may
        // race a cancel; the first final status wins and is never changed.
        (s, _) if s.is_final() => Ok(Transition::Unchanged),
        (_, E::Fill { filled_total } | E::Canceled { filled_total }) if filled_total > qty => {
            Err(TransitionError::Overfill { filled_total, qty })
        }

        (S::Accepted, E::Sent) => moved(S::Sent, filled),
        // Sent twice (a resend after reconnect) is harmless.
        (S::Sent | S::PartiallyFilled | S::CancelRequested, E::Sent) => Ok(Transition::Unchanged),
        (S::Accepted | S::Sent | S::PartiallyFilled, E::CancelRequested) => {
            moved(S::CancelRequested, filled)
        }
        // Cancel is idempotent.
        (S::CancelRequested, E::CancelRequested) => Ok(Transition::Unchanged),
        (_, E::VenueAccepted) => Ok(Transition::Unchanged),

        // Fills: the cumulative total only grows; an older or duplicate report is ignored.
        (_, E::Fill { filled_total }) if filled_total <= filled => Ok(Transition::Unchanged),
        (_, E::Fill { filled_total }) if filled_total == qty => moved(S::Filled, filled_total),
        // A partial fill while a cancel is pending keeps CANCEL_REQUESTED: the venue's answer to
        // the cancel decides, but the filled quantity is recorded.
        (S::CancelRequested, E::Fill { filled_total }) => moved(S::CancelRequested, filled_total),
        (_, E::Fill { filled_total }) => moved(S::PartiallyFilled, filled_total),

        (_, E::Canceled { filled_total }) => moved(S::Canceled, filled.max(filled_total)),

        // A reject after fills never downgrades the order (§3.1): the fills happened. With a
        // cancel pending, a reference venue's REJECTED means it refused the cancel: live again.
        (S::CancelRequested, E::Rejected) if filled > 0 => moved(S::PartiallyFilled, filled),
        (S::PartiallyFilled, E::Rejected) => Ok(Transition::Unchanged),
        (S::Accepted | S::Sent | S::CancelRequested, E::Rejected) => moved(S::Rejected, filled),

        // A refused cancel puts the order back to what it was before the request.
        (S::CancelRequested, E::CancelRejected) if filled > 0 => moved(S::PartiallyFilled, filled),
        (S::CancelRequested, E::CancelRejected) => moved(S::Sent, filled),
        (_, E::CancelRejected) => Ok(Transition::Unchanged),

        // An amend can never take the size to or below what is filled; the venue refuses that.
        (_, E::Replaced { qty }) if qty <= filled => {
            Err(TransitionError::Invalid { status, event })
        }
        (s, E::Replaced { .. }) => moved(s, filled),

        (status, event) => Err(TransitionError::Invalid { status, event }),
    }
}

/// v3 durable confirm state of one `(sessionId, sessionSeq)` (§2.3.2, §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ConfirmStatus {
    Unknown = 0,
    VolatileAccept = 1,
    DurableAccepted = 2,
    DurableRejected = 3,
    LossSuspect = 4,
}

impl ConfirmStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ConfirmStatus::Unknown => "UNKNOWN",
            ConfirmStatus::VolatileAccept => "VOLATILE_ACCEPT",
            ConfirmStatus::DurableAccepted => "DURABLE_ACCEPTED",
            ConfirmStatus::DurableRejected => "DURABLE_REJECTED",
            ConfirmStatus::LossSuspect => "LOSS_SUSPECT",
        }
    }

    pub fn from_u8(v: u8) -> ConfirmStatus {
        match v {
            1 => ConfirmStatus::VolatileAccept,
            2 => ConfirmStatus::DurableAccepted,
            3 => ConfirmStatus::DurableRejected,
            4 => ConfirmStatus::LossSuspect,
            _ => ConfirmStatus::Unknown,
        }
    }

    pub fn is_durable_outcome(self) -> bool {
        matches!(
            self,
            ConfirmStatus::DurableAccepted | ConfirmStatus::DurableRejected
        )
    }

    /// Whether `self` may be replaced by `next` (§3.1): durable outcomes are never downgraded,
    /// LOSS_SUSPECT is not re-marked, and a late durable outcome overwrites LOSS_SUSPECT.
    pub fn may_become(self, next: ConfirmStatus) -> bool {
        use ConfirmStatus as C;
        match (self, next) {
            (C::DurableAccepted | C::DurableRejected, _) => false,
            (C::LossSuspect, C::LossSuspect) => false,
            (_, C::Unknown) => false,
            (C::LossSuspect, C::DurableAccepted | C::DurableRejected) => true,
            (C::LossSuspect, C::VolatileAccept) => false,
            (C::Unknown | C::VolatileAccept, _) => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn event_strategy(qty: u64) -> impl Strategy<Value = OrderEvent> {
        prop_oneof![
            Just(OrderEvent::Sent),
            Just(OrderEvent::CancelRequested),
            Just(OrderEvent::VenueAccepted),
            Just(OrderEvent::Rejected),
            Just(OrderEvent::CancelRejected),
            (0..=qty + 2).prop_map(|filled_total| OrderEvent::Fill { filled_total }),
            (0..=qty + 2).prop_map(|filled_total| OrderEvent::Canceled { filled_total }),
            (1..=qty + 2).prop_map(|qty| OrderEvent::Replaced { qty }),
        ]
    }

    // Goal: the happy path of §3.1 and the cancel path.
    #[test]
    fn lifecycle_paths() {
        let t = |s, f, e| transition(s, f, 10, e).unwrap();
        assert_eq!(
            t(OrderStatus::Accepted, 0, OrderEvent::Sent),
            Transition::Moved {
                status: OrderStatus::Sent,
                filled: 0
            }
        );
        assert_eq!(
            t(OrderStatus::Sent, 0, OrderEvent::Fill { filled_total: 4 }),
            Transition::Moved {
                status: OrderStatus::PartiallyFilled,
                filled: 4
            }
        );
        assert_eq!(
            t(
                OrderStatus::PartiallyFilled,
                4,
                OrderEvent::Fill { filled_total: 10 }
            ),
            Transition::Moved {
                status: OrderStatus::Filled,
                filled: 10
            }
        );
        assert_eq!(
            t(OrderStatus::Sent, 0, OrderEvent::CancelRequested),
            Transition::Moved {
                status: OrderStatus::CancelRequested,
                filled: 0
            }
        );
        assert_eq!(
            t(
                OrderStatus::CancelRequested,
                0,
                OrderEvent::Canceled { filled_total: 0 }
            ),
            Transition::Moved {
                status: OrderStatus::Canceled,
                filled: 0
            }
        );
        assert_eq!(
            transition(OrderStatus::Filled, 10, 10, OrderEvent::CancelRequested),
            Err(TransitionError::AlreadyFinal(OrderStatus::Filled))
        );
        // A reject after a fill keeps the fill.
        assert_eq!(
            t(OrderStatus::PartiallyFilled, 3, OrderEvent::Rejected),
            Transition::Unchanged
        );
    }

    // Goal: the odd arms — refused cancels, rejects while a cancel is pending, amends, stale
    // and duplicate reports, reports after the end.
    #[test]
    fn odd_arms() {
        use OrderEvent as E;
        use OrderStatus as S;
        let t = |s, f, e| transition(s, f, 10, e);
        let moved = |status, filled| Ok(Transition::Moved { status, filled });
        assert_eq!(
            t(S::CancelRequested, 0, E::CancelRejected),
            moved(S::Sent, 0)
        );
        assert_eq!(
            t(S::CancelRequested, 4, E::CancelRejected),
            moved(S::PartiallyFilled, 4)
        );
        assert_eq!(t(S::Sent, 0, E::CancelRejected), Ok(Transition::Unchanged));
        assert_eq!(t(S::CancelRequested, 0, E::Rejected), moved(S::Rejected, 0));
        assert_eq!(
            t(S::CancelRequested, 2, E::Rejected),
            moved(S::PartiallyFilled, 2)
        );
        assert_eq!(t(S::Accepted, 0, E::Rejected), moved(S::Rejected, 0));
        // A fill while the cancel is pending is recorded; the cancel answer decides.
        assert_eq!(
            t(S::CancelRequested, 0, E::Fill { filled_total: 3 }),
            moved(S::CancelRequested, 3)
        );
        // The fill completes the order even with a cancel pending.
        assert_eq!(
            t(S::CancelRequested, 3, E::Fill { filled_total: 10 }),
            moved(S::Filled, 10)
        );
        // Stale and duplicate fills change nothing; an overfill is an error.
        assert_eq!(
            t(S::PartiallyFilled, 5, E::Fill { filled_total: 5 }),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            t(S::PartiallyFilled, 5, E::Fill { filled_total: 2 }),
            Ok(Transition::Unchanged)
        );
        assert_eq!(
            t(S::Sent, 0, E::Fill { filled_total: 11 }),
            Err(TransitionError::Overfill {
                filled_total: 11,
                qty: 10
            })
        );
        // A cancel report keeps the higher of the two fill totals.
        assert_eq!(
            t(S::PartiallyFilled, 6, E::Canceled { filled_total: 4 }),
            moved(S::Canceled, 6)
        );
        // Reports after the end change nothing; a second cancel request is a no-op.
        for s in [S::Filled, S::Canceled, S::Rejected] {
            assert_eq!(
                t(s, 1, E::Fill { filled_total: 2 }),
                Ok(Transition::Unchanged)
            );
            assert_eq!(t(s, 1, E::Replaced { qty: 5 }), Ok(Transition::Unchanged));
            assert_eq!(t(s, 1, E::Sent), Ok(Transition::Unchanged));
        }
        assert_eq!(
            t(S::CancelRequested, 0, E::CancelRequested),
            Ok(Transition::Unchanged)
        );
        assert_eq!(t(S::Sent, 0, E::VenueAccepted), Ok(Transition::Unchanged));
        assert_eq!(t(S::Sent, 0, E::Sent), Ok(Transition::Unchanged));
        // Amends keep the status and cannot go to or below the filled quantity.
        assert_eq!(
            t(S::PartiallyFilled, 4, E::Replaced { qty: 8 }),
            moved(S::PartiallyFilled, 4)
        );
        assert!(matches!(
            t(S::PartiallyFilled, 4, E::Replaced { qty: 4 }),
            Err(TransitionError::Invalid { .. })
        ));
    }

    proptest! {
        // Goal: over any event sequence, a final status never changes, the filled quantity never
        // decreases nor exceeds the order size, and only final statuses refuse a cancel.
        #[test]
        fn invariants_hold(qty in 1u64..50, events in prop::collection::vec(event_strategy(50), 0..40)) {
            let mut status = OrderStatus::Accepted;
            let mut filled = 0u64;
            for e in events {
                let before = status;
                match transition(status, filled, qty, e) {
                    Ok(Transition::Moved { status: s, filled: f }) => {
                        prop_assert!(!before.is_final(), "final {before:?} moved by {e:?}");
                        prop_assert!(f >= filled);
                        prop_assert!(f <= qty);
                        if s == OrderStatus::Filled { prop_assert_eq!(f, qty); }
                        status = s;
                        filled = f;
                    }
                    Ok(Transition::Unchanged) => {}
                    Err(TransitionError::AlreadyFinal(s)) => {
                        prop_assert!(s.is_final());
                        prop_assert_eq!(e, OrderEvent::CancelRequested);
                    }
                    Err(TransitionError::Overfill { filled_total, .. }) => prop_assert!(filled_total > qty),
                    Err(TransitionError::Invalid { .. }) => {}
                }
            }
        }

        // Goal: confirm states follow §3.1 — durable outcomes are never downgraded.
        #[test]
        fn confirm_never_downgrades(seq in prop::collection::vec(0u8..5, 0..20)) {
            let mut cur = ConfirmStatus::Unknown;
            for v in seq {
                let next = ConfirmStatus::from_u8(v);
                if cur.may_become(next) {
                    prop_assert!(!cur.is_durable_outcome());
                    cur = next;
                }
            }
        }
    }
}
