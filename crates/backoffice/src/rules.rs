//! The book-keeping arithmetic of §2.8 as pure functions on integers: how much of an
//! execution report is a new fill, what it costs in quote currency, and how it moves a
//! position and its realized PnL.
//!
//! Everything is an integer in minor units. Products are formed in `i128` and checked back
//! into `i64`, so an absurd report is refused (`None`) instead of wrapping around; the caller
//! skips such an event, and since the refused fill never reaches the ledger, recomputing the
//! books from the ledger meets the same arithmetic and never fails either.

/// Basis points in one whole (the fee is `notional × fee_bps / 10 000`).
pub const BPS_PER_UNIT: i128 = 10_000;

/// The side of an order: the order core's, which parses `BUY`/`SELL` case-insensitively as the
/// reference does.
pub use switchyard_core::Side;

/// `qty` with the sign `side` moves a position by (+ for BUY).
fn signed(side: Side, qty: i64) -> i64 {
    match side {
        Side::Buy => qty,
        Side::Sell => -qty,
    }
}

/// What an execution report means for an order whose fills so far total `last_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FillQty {
    /// `filledQtyTotal` did not grow: a resend or an older report arriving late.
    Duplicate,
    /// The total grew but the report carries no quantity to book (a negative delta).
    Zero,
    /// Book this many units.
    Qty(i64),
}

/// The quantity an execution report adds (§2.8): the report must raise the order's filled
/// total; the fill is `filledQtyDelta` clamped to `0 ..= total − last`; a missing or zero
/// delta with a grown total books the growth (the venue told us the total only). A status
/// report (`statusReport: true`, the venue's answer to "what do you hold?") carries no fill
/// of its own: when its total grew, the growth is exactly the fills we missed, whatever its
/// delta field says.
pub fn fill_qty(delta: Option<i64>, total: i64, last_total: i64, status_report: bool) -> FillQty {
    if total <= last_total {
        return FillQty::Duplicate;
    }
    let growth = total - last_total;
    let qty = match delta {
        _ if status_report => growth,
        None | Some(0) => growth,
        Some(d) => d.clamp(0, growth),
    };
    if qty == 0 {
        FillQty::Zero
    } else {
        FillQty::Qty(qty)
    }
}

/// The cash side of one fill, in quote-currency minor units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FillCash {
    /// `qty × price`, 0 for a fill without a price.
    pub notional: i64,
    /// `floor(notional × fee_bps / 10 000)`.
    pub fee: i64,
    /// What the account's quote balance moves by: `−notional − fee` for a buy,
    /// `+notional − fee` for a sell.
    pub quote_cash_delta: i64,
}

/// Cash for a fill of `qty` at `price` (`None` = no price, notional 0). `None` when a product
/// does not fit in `i64`.
pub fn fill_cash(side: Side, qty: i64, price: Option<i64>, fee_bps: i64) -> Option<FillCash> {
    let notional = i64::try_from(i128::from(qty) * i128::from(price.unwrap_or(0))).ok()?;
    // notional and fee_bps are non-negative, so integer division is the floor.
    let fee = i64::try_from(i128::from(notional) * i128::from(fee_bps) / BPS_PER_UNIT).ok()?;
    let gross = match side {
        Side::Buy => -notional,
        Side::Sell => notional,
    };
    Some(FillCash {
        notional,
        fee,
        quote_cash_delta: gross.checked_sub(fee)?,
    })
}

/// A position in one symbol: signed quantity and the average price of the open quantity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    /// Long > 0, short < 0.
    pub net_qty: i64,
    /// Average entry price of the open quantity; `None` exactly when flat.
    pub avg_price: Option<i64>,
}

/// A position after a fill, and the PnL the fill realized.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PositionChange {
    pub position: Position,
    pub realized_pnl: i64,
}

/// Applies a fill of `qty` (> 0) on `side` at `price` to `pos`.
///
/// - Opening or adding: the average is the weighted average of the old open quantity at the
///   old average and the fill at its price, rounded down:
///   `avg = floor((|q|·avg + qty·px) / |q + qty|)`.
/// - Reducing: the closed part realizes `(px − avg) × closed` on a long, `(avg − px) × closed`
///   on a short; the average of what stays open is unchanged.
/// - Flat after the fill: the average is `None`. Crossing zero (a flip): the part beyond zero
///   opens a new position at the fill's price.
/// - A fill without a price is valued at the position's average (0 when flat): it moves
///   quantity and realizes nothing; its cash was 0 already.
///
/// `None` when a number does not fit in `i64`.
pub fn apply_fill(
    pos: Position,
    side: Side,
    qty: i64,
    price: Option<i64>,
) -> Option<PositionChange> {
    debug_assert!(qty > 0, "fills are positive");
    debug_assert_eq!(
        pos.net_qty == 0,
        pos.avg_price.is_none(),
        "avg exactly when open"
    );
    let q = pos.net_qty;
    let avg = pos.avg_price.unwrap_or(0);
    let px = price.unwrap_or(avg);
    let signed = signed(side, qty);
    let new_q = q.checked_add(signed)?;
    if q == 0 || (q > 0) == (signed > 0) {
        let cost =
            i128::from(q.unsigned_abs()) * i128::from(avg) + i128::from(qty) * i128::from(px);
        // The quotient lies between the two prices averaged, so it fits in i64.
        let new_avg = i64::try_from(cost / i128::from(new_q.unsigned_abs())).ok()?;
        return Some(PositionChange {
            position: Position {
                net_qty: new_q,
                avg_price: Some(new_avg),
            },
            realized_pnl: 0,
        });
    }
    // `abs` would overflow on a short of i64::MIN (reachable: a sell of i64::MAX without a
    // price onto a short of 1); `qty` <= i64::MAX, so saturating keeps the minimum exact.
    let closed = qty.min(q.saturating_abs());
    let per_unit = if q > 0 {
        px.checked_sub(avg)?
    } else {
        avg.checked_sub(px)?
    };
    let avg_price = if new_q == 0 {
        None
    } else if (new_q > 0) == (q > 0) {
        Some(avg)
    } else {
        Some(px)
    };
    Some(PositionChange {
        position: Position {
            net_qty: new_q,
            avg_price,
        },
        realized_pnl: per_unit.checked_mul(closed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(net_qty: i64, avg: i64) -> Position {
        Position {
            net_qty,
            avg_price: Some(avg),
        }
    }

    // Goal: a report must raise the filled total; the delta is clamped into 0..=growth.
    #[test]
    fn fill_qty_dedups_by_total_and_clamps() {
        assert_eq!(fill_qty(Some(5), 5, 5, false), FillQty::Duplicate);
        assert_eq!(fill_qty(Some(5), 3, 5, false), FillQty::Duplicate);
        assert_eq!(fill_qty(Some(2), 7, 5, false), FillQty::Qty(2));
        assert_eq!(
            fill_qty(Some(9), 7, 5, false),
            FillQty::Qty(2),
            "clamped to growth"
        );
        assert_eq!(
            fill_qty(Some(-3), 7, 5, false),
            FillQty::Zero,
            "negative clamps to 0"
        );
        assert_eq!(
            fill_qty(Some(0), 7, 5, false),
            FillQty::Qty(2),
            "0 books the growth"
        );
        assert_eq!(
            fill_qty(None, 7, 5, false),
            FillQty::Qty(2),
            "missing books the growth"
        );
    }

    // Goal: a short of i64::MIN reduces like any other (found while writing the bus_event fuzz
    // target's properties, reproduced there: `q.abs()` overflowed, a panic in debug builds and
    // a realized PnL of i64::MIN for one unit closed in release builds).
    #[test]
    fn reducing_the_largest_short() {
        let c = apply_fill(Position::default(), Side::Sell, 1, Some(5)).unwrap();
        let c = apply_fill(c.position, Side::Sell, i64::MAX, None).unwrap();
        assert_eq!(c.position.net_qty, i64::MIN);
        let c = apply_fill(c.position, Side::Buy, 1, Some(4)).unwrap();
        assert_eq!((c.position.net_qty, c.realized_pnl), (i64::MIN + 1, 1));
        assert_eq!(c.position.avg_price, Some(5));
    }

    // Goal: a status report books exactly the missed growth, and nothing when it did not grow.
    #[test]
    fn status_report_books_only_growth() {
        assert_eq!(fill_qty(Some(1), 10, 4, true), FillQty::Qty(6));
        assert_eq!(fill_qty(Some(3), 4, 4, true), FillQty::Duplicate);
    }

    // Goal: fee in integer basis points rounds down; cash is −notional−fee for a buy and
    // +notional−fee for a sell; no price means no cash.
    #[test]
    fn fee_and_cash() {
        let b = fill_cash(Side::Buy, 3, Some(1_001), 10).unwrap();
        assert_eq!((b.notional, b.fee, b.quote_cash_delta), (3_003, 3, -3_006));
        let s = fill_cash(Side::Sell, 3, Some(1_001), 10).unwrap();
        assert_eq!((s.notional, s.fee, s.quote_cash_delta), (3_003, 3, 3_000));
        let small = fill_cash(Side::Sell, 1, Some(999), 10).unwrap();
        assert_eq!(small.fee, 0, "0.999 rounds down");
        let none = fill_cash(Side::Buy, 4, None, 10).unwrap();
        assert_eq!((none.notional, none.fee, none.quote_cash_delta), (0, 0, 0));
        assert!(
            fill_cash(Side::Buy, i64::MAX, Some(2), 10).is_none(),
            "overflow refused"
        );
    }

    // Goal: adding to a position averages its price, rounding down.
    #[test]
    fn weighted_average_rounds_down() {
        let c = apply_fill(Position::default(), Side::Buy, 2, Some(100)).unwrap();
        assert_eq!(c.position, open(2, 100));
        let c = apply_fill(c.position, Side::Buy, 1, Some(101)).unwrap();
        assert_eq!(c.position, open(3, 100), "301/3 = 100.33 → 100");
        assert_eq!(c.realized_pnl, 0);
        let c = apply_fill(open(-2, 100), Side::Sell, 2, Some(103)).unwrap();
        assert_eq!(c.position, open(-4, 101), "406/4 = 101.5 → 101");
    }

    // Goal: closing a long realizes (px − avg) × closed; the average stays.
    #[test]
    fn realized_pnl_long_close() {
        let c = apply_fill(open(10, 100), Side::Sell, 4, Some(110)).unwrap();
        assert_eq!(c.position, open(6, 100));
        assert_eq!(c.realized_pnl, 40);
        let c = apply_fill(open(10, 100), Side::Sell, 4, Some(90)).unwrap();
        assert_eq!(c.realized_pnl, -40);
    }

    // Goal: closing a short realizes (avg − px) × closed.
    #[test]
    fn realized_pnl_short_close() {
        let c = apply_fill(open(-10, 100), Side::Buy, 3, Some(95)).unwrap();
        assert_eq!(c.position, open(-7, 100));
        assert_eq!(c.realized_pnl, 15);
        let c = apply_fill(open(-10, 100), Side::Buy, 3, Some(105)).unwrap();
        assert_eq!(c.realized_pnl, -15);
    }

    // Goal: going flat clears the average.
    #[test]
    fn flat_clears_average() {
        let c = apply_fill(open(5, 100), Side::Sell, 5, Some(120)).unwrap();
        assert_eq!(c.position, Position::default());
        assert_eq!(c.realized_pnl, 100);
    }

    // Goal: a flip realizes the closed part and opens the rest at the fill price.
    #[test]
    fn flip_opens_at_fill_price() {
        let c = apply_fill(open(5, 100), Side::Sell, 8, Some(90)).unwrap();
        assert_eq!(c.position, open(-3, 90));
        assert_eq!(c.realized_pnl, -50);
        let c = apply_fill(open(-2, 50), Side::Buy, 6, Some(40)).unwrap();
        assert_eq!(c.position, open(4, 40));
        assert_eq!(c.realized_pnl, 20);
    }

    // Goal: an unpriced fill moves quantity at the average and realizes nothing.
    #[test]
    fn unpriced_fill_uses_average() {
        let c = apply_fill(open(5, 100), Side::Buy, 5, None).unwrap();
        assert_eq!((c.position, c.realized_pnl), (open(10, 100), 0));
        let c = apply_fill(open(5, 100), Side::Sell, 2, None).unwrap();
        assert_eq!((c.position, c.realized_pnl), (open(3, 100), 0));
    }
}
