//! Simulated counterparties: one market maker per symbol.
//!
//! The maker keeps a two-sided market around a reference price: `levels` bids below it and
//! `levels` asks above it, `spread` apart at the touch and `level_gap` apart from each other,
//! `size` at each level. Every interval the reference price takes one random-walk step (up or
//! down by `step`) and the maker re-quotes: its old orders are cancelled and new ones placed.
//! A marketable gateway order therefore trades at once, and a passive one trades when the walk
//! brings the maker's quotes through its price (at the gateway order's price: it was resting).
//!
//! Each level is shown as `partial_steps` equal orders (the reference simulator's partial
//! steps): an order that takes a whole level fills in that many reports.
//!
//! All arithmetic is integer, in minor units; basis points are rounded down, with the spread
//! at least 2 and the gap and step at least 1 so that no quote collapses onto another.

use switchyard_core::Side;

use crate::book::OrderKey;
use crate::config::MmConfig;

/// One quote to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub side: Side,
    pub price: u64,
    pub qty: u64,
}

/// The market maker of one symbol.
#[derive(Debug, Clone)]
pub struct MarketMaker {
    /// Mid price the quotes are built around; moves by the random walk.
    pub reference: u64,
    /// Keys of the maker's orders placed at the last re-quote (some may have traded away).
    pub live: Vec<OrderKey>,
}

fn bps(price: u64, bps: u64) -> u64 {
    (price as u128 * bps as u128 / 10_000) as u64
}

impl MarketMaker {
    pub fn new(reference: u64) -> MarketMaker {
        MarketMaker {
            reference: reference.max(1),
            live: Vec::new(),
        }
    }

    /// One random-walk step: up or down by `step_bps` of the price (at least 1 unit), never
    /// below 1. A zero step keeps the price.
    pub fn walk(&mut self, cfg: &MmConfig, rng: &mut fastrand::Rng) {
        if cfg.step_bps == 0 {
            return;
        }
        let step = bps(self.reference, cfg.step_bps).max(1);
        self.reference = if rng.bool() {
            self.reference.saturating_add(step)
        } else {
            self.reference.saturating_sub(step).max(1)
        };
    }

    /// The quotes for the current reference price, best levels first, bids then asks. Bids
    /// that would be priced at or below zero are left out.
    pub fn quotes(&self, cfg: &MmConfig, partial_steps: u32, out: &mut Vec<Quote>) {
        out.clear();
        let r = self.reference;
        let spread = bps(r, cfg.spread_bps).max(2);
        let gap = bps(r, cfg.level_gap_bps).max(1);
        let best_bid = r.saturating_sub(spread / 2);
        let best_ask = best_bid.saturating_add(spread);
        let pieces = (partial_steps as u64).clamp(1, cfg.size.max(1));
        let piece = cfg.size / pieces;
        for side in [Side::Buy, Side::Sell] {
            for level in 0..cfg.levels as u64 {
                let offset = gap.saturating_mul(level);
                let price = match side {
                    Side::Buy => best_bid.saturating_sub(offset),
                    Side::Sell => best_ask.saturating_add(offset),
                };
                if price == 0 {
                    break;
                }
                for i in 0..pieces {
                    // The last piece takes the remainder, so a level always totals `size`.
                    let qty = if i + 1 == pieces {
                        cfg.size - piece * (pieces - 1)
                    } else {
                        piece
                    };
                    out.push(Quote { side, price, qty });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> MmConfig {
        MmConfig {
            levels: 3,
            size: 100,
            spread_bps: 10,
            level_gap_bps: 10,
            step_bps: 5,
            ..MmConfig::default()
        }
    }

    // Goal: quotes straddle the reference, levels are spaced, each level totals `size` in
    // `partial_steps` pieces.
    #[test]
    fn quotes_are_two_sided_ladders() {
        let mm = MarketMaker::new(10_000);
        let mut q = Vec::new();
        mm.quotes(&cfg(), 2, &mut q);
        let bids: Vec<_> = q
            .iter()
            .filter(|x| x.side == Side::Buy)
            .map(|x| (x.price, x.qty))
            .collect();
        let asks: Vec<_> = q
            .iter()
            .filter(|x| x.side == Side::Sell)
            .map(|x| (x.price, x.qty))
            .collect();
        assert_eq!(
            bids,
            [
                (9995, 50),
                (9995, 50),
                (9985, 50),
                (9985, 50),
                (9975, 50),
                (9975, 50)
            ]
        );
        assert_eq!(
            asks,
            [
                (10005, 50),
                (10005, 50),
                (10015, 50),
                (10015, 50),
                (10025, 50),
                (10025, 50)
            ]
        );
        mm.quotes(&MmConfig { size: 5, ..cfg() }, 3, &mut q);
        assert_eq!(
            q.iter().take(3).map(|x| x.qty).collect::<Vec<_>>(),
            [1, 1, 3]
        );
    }

    // Goal: tiny prices keep a spread of at least 2 and never quote at zero.
    #[test]
    fn tiny_prices_stay_valid() {
        let mm = MarketMaker::new(2);
        let mut q = Vec::new();
        mm.quotes(&cfg(), 1, &mut q);
        assert!(q.iter().all(|x| x.price > 0));
        let best_bid = q
            .iter()
            .filter(|x| x.side == Side::Buy)
            .map(|x| x.price)
            .max()
            .unwrap();
        let best_ask = q
            .iter()
            .filter(|x| x.side == Side::Sell)
            .map(|x| x.price)
            .min()
            .unwrap();
        assert!(best_bid < best_ask);
    }

    // Goal: the walk moves by the step in either direction and stays above zero.
    #[test]
    fn walk_moves_by_step() {
        let mut mm = MarketMaker::new(10_000);
        let mut rng = fastrand::Rng::with_seed(1);
        for _ in 0..100 {
            let before = mm.reference;
            mm.walk(&cfg(), &mut rng);
            assert_eq!(before.abs_diff(mm.reference), (before * 5 / 10_000).max(1));
        }
        let mut low = MarketMaker::new(1);
        for _ in 0..50 {
            low.walk(&cfg(), &mut rng);
            assert!(low.reference >= 1);
        }
    }
}
