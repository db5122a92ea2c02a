//! Property tests of the matching engine: after any random sequence of place (limit/market,
//! GTC/IOC), cancel and replace operations, the book is never crossed, every order's quantity
//! is accounted for, buys and sells fill the same total, fills respect price-time priority,
//! and the book agrees fill for fill with a deliberately naive reference model.

use std::collections::HashMap;

use proptest::prelude::*;
use switchyard_core::Side;
use switchyard_venue_sim::book::{Book, BookError, Fill, NewOrder, RestingOrder};

#[derive(Debug, Clone)]
enum Op {
    Place {
        side: Side,
        /// None: market order.
        limit: Option<u64>,
        ioc: bool,
        qty: u64,
    },
    /// Cancel the order placed `pick`-th (modulo), live or not.
    Cancel { pick: usize },
    /// Replace the order placed `pick`-th with a new total quantity and maybe a new price.
    Replace {
        pick: usize,
        qty: u64,
        price: Option<u64>,
    },
}

fn side() -> impl Strategy<Value = Side> {
    prop_oneof![Just(Side::Buy), Just(Side::Sell)]
}

fn op() -> impl Strategy<Value = Op> {
    // A narrow price range so that orders meet often.
    prop_oneof![
        6 => (side(), 95u64..=105, any::<bool>(), 1u64..=20)
            .prop_map(|(side, p, ioc, qty)| Op::Place { side, limit: Some(p), ioc, qty }),
        1 => (side(), 1u64..=30).prop_map(|(side, qty)| Op::Place { side, limit: None, ioc: false, qty }),
        2 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        2 => (any::<usize>(), 1u64..=30, proptest::option::of(95u64..=105))
            .prop_map(|(pick, qty, price)| Op::Replace { pick, qty, price }),
    ]
}

/// The reference model: a flat list of resting orders, matched by scanning for the best price
/// and then the earliest arrival. Slow and obviously right.
#[derive(Default)]
struct Model {
    resting: Vec<MOrder>,
    clock: u64,
}

#[derive(Debug, Clone, Copy)]
struct MOrder {
    key: u64,
    side: Side,
    price: u64,
    open: u64,
    filled: u64,
    time: u64,
}

impl Model {
    fn best_maker(&self, side: Side, limit: Option<u64>) -> Option<usize> {
        let mut best: Option<usize> = None;
        for (i, o) in self.resting.iter().enumerate() {
            if o.side == side {
                continue;
            }
            let crosses = match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(p)) => o.price <= p,
                (Side::Sell, Some(p)) => o.price >= p,
            };
            if !crosses {
                continue;
            }
            best = match best {
                None => Some(i),
                Some(b) => {
                    let cur = &self.resting[b];
                    let better_price = match side {
                        Side::Buy => o.price < cur.price,
                        Side::Sell => o.price > cur.price,
                    };
                    if better_price || (o.price == cur.price && o.time < cur.time) {
                        Some(i)
                    } else {
                        Some(b)
                    }
                }
            };
        }
        best
    }

    /// Returns the fills as (maker, price, qty) and the quantity filled.
    fn take(&mut self, side: Side, limit: Option<u64>, qty: u64) -> (Vec<(u64, u64, u64)>, u64) {
        let mut out = Vec::new();
        let mut left = qty;
        while left > 0 {
            let Some(i) = self.best_maker(side, limit) else {
                break;
            };
            let m = &mut self.resting[i];
            let q = left.min(m.open);
            m.open -= q;
            m.filled += q;
            left -= q;
            out.push((m.key, m.price, q));
            if m.open == 0 {
                self.resting.remove(i);
            }
        }
        (out, qty - left)
    }

    fn rest(&mut self, key: u64, side: Side, price: u64, open: u64, filled: u64) {
        self.clock += 1;
        self.resting.push(MOrder {
            key,
            side,
            price,
            open,
            filled,
            time: self.clock,
        });
    }

    fn find(&self, key: u64) -> Option<usize> {
        self.resting.iter().position(|o| o.key == key)
    }
}

/// What the test knows about each order, to check conservation of quantity.
#[derive(Debug, Default, Clone, Copy)]
struct Account {
    side_buy: bool,
    qty: u64,
    filled: u64,
    cancelled: u64,
}

/// The opposite side before an operation, best level first, each level's queue oldest first.
fn snapshot(book: &Book, taker: Side) -> Vec<Vec<RestingOrder>> {
    let opp = taker.opposite();
    let prices: Vec<u64> = book.levels(opp).map(|(p, _)| p).collect();
    prices.into_iter().map(|p| book.queue(opp, p)).collect()
}

/// Price-time priority, stated directly: each fill is at the best level that still had volume
/// and against the oldest order there that still had volume, at that order's price.
fn check_priority(mut snap: Vec<Vec<RestingOrder>>, fills: &[Fill]) -> Result<(), TestCaseError> {
    for f in fills {
        let level = snap
            .iter_mut()
            .find(|l| l.iter().any(|o| o.open > 0))
            .ok_or_else(|| TestCaseError::fail("fill with no resting volume"))?;
        let first = level.iter_mut().find(|o| o.open > 0).unwrap();
        prop_assert_eq!(f.price, first.price, "fill not at the best level");
        prop_assert_eq!(f.maker, first.key, "fill skipped an older order");
        prop_assert!(f.qty <= first.open);
        first.open -= f.qty;
    }
    Ok(())
}

fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut book = Book::with_capacity(4, 2);
    let mut model = Model::default();
    let mut fills = Vec::new();
    let mut keys: Vec<u64> = Vec::new();
    let mut acct: HashMap<u64, Account> = HashMap::new();
    let mut next_key = 1u64;

    for op in ops {
        fills.clear();
        match op {
            Op::Place {
                side,
                limit,
                ioc,
                qty,
            } => {
                let key = next_key;
                next_key += 1;
                keys.push(key);
                acct.insert(
                    key,
                    Account {
                        side_buy: side == Side::Buy,
                        qty,
                        ..Default::default()
                    },
                );
                let snap = snapshot(&book, side);
                let placed = book
                    .place(
                        NewOrder {
                            key,
                            side,
                            limit,
                            ioc,
                            qty,
                        },
                        &mut fills,
                    )
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_priority(snap, &fills)?;
                let (want, filled) = model.take(side, limit, qty);
                let rest = qty - filled;
                match limit {
                    Some(p) if rest > 0 && !ioc => model.rest(key, side, p, rest, filled),
                    _ => acct.get_mut(&key).unwrap().cancelled += rest,
                }
                let got: Vec<_> = fills.iter().map(|f| (f.maker, f.price, f.qty)).collect();
                prop_assert_eq!(got, want);
                prop_assert_eq!(placed.filled + placed.resting + placed.cancelled, qty);
            }
            Op::Cancel { pick } => {
                if keys.is_empty() {
                    continue;
                }
                let key = keys[pick % keys.len()];
                let got = book.cancel(key);
                match model.find(key) {
                    Some(i) => {
                        let m = model.resting.remove(i);
                        let c = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                        prop_assert_eq!((c.cancelled, c.filled), (m.open, m.filled));
                        acct.get_mut(&key).unwrap().cancelled += c.cancelled;
                    }
                    None => prop_assert_eq!(got, Err(BookError::UnknownOrder)),
                }
            }
            Op::Replace { pick, qty, price } => {
                if keys.is_empty() {
                    continue;
                }
                let key = keys[pick % keys.len()];
                let Some(i) = model.find(key) else {
                    prop_assert_eq!(
                        book.replace(key, qty, price.unwrap_or(100), &mut fills)
                            .err(),
                        Some(BookError::UnknownOrder)
                    );
                    continue;
                };
                let m = model.resting[i];
                let price = price.unwrap_or(m.price);
                let snap = snapshot(&book, m.side);
                let got = book.replace(key, qty, price, &mut fills);
                if qty <= m.filled {
                    prop_assert_eq!(got, Err(BookError::QtyNotAboveFilled));
                    continue;
                }
                let r = got.map_err(|e| TestCaseError::fail(e.to_string()))?;
                check_priority(snap, &fills)?;
                let open = qty - m.filled;
                let keeps = price == m.price && open <= m.open;
                prop_assert_eq!(r.kept_priority, keeps);
                acct.get_mut(&key).unwrap().qty = qty;
                if keeps {
                    model.resting[i].open = open;
                } else {
                    model.resting.remove(i);
                    let (want, now) = model.take(m.side, Some(price), open);
                    if open > now {
                        model.rest(key, m.side, price, open - now, m.filled + now);
                    }
                    let got: Vec<_> = fills.iter().map(|f| (f.maker, f.price, f.qty)).collect();
                    prop_assert_eq!(got, want);
                }
            }
        }
        for f in &fills {
            prop_assert_ne!(
                Some(f.taker_side == Side::Buy),
                acct.get(&f.maker).map(|a| a.side_buy)
            );
            acct.get_mut(&f.taker).unwrap().filled += f.qty;
            acct.get_mut(&f.maker).unwrap().filled += f.qty;
        }

        // Invariants after every operation.
        book.check_invariants().map_err(TestCaseError::fail)?;
        let bbo = book.bbo();
        if let (Some((b, _)), Some((a, _))) = (bbo.bid, bbo.ask) {
            prop_assert!(b < a, "crossed: {} >= {}", b, a);
        }
        let (mut buys, mut sells) = (0u64, 0u64);
        for (&key, a) in &acct {
            let open = book.order(key).map_or(0, |o| o.open);
            prop_assert_eq!(
                a.qty,
                a.filled + open + a.cancelled,
                "order {} leaks quantity",
                key
            );
            if let Some(o) = book.order(key) {
                prop_assert_eq!(o.filled, a.filled);
            }
            if a.side_buy {
                buys += a.filled;
            } else {
                sells += a.filled;
            }
        }
        prop_assert_eq!(buys, sells);
        // The book and the model hold the same orders, in the same queues.
        prop_assert_eq!(book.len(), model.resting.len());
        for m in &model.resting {
            let o = book
                .order(m.key)
                .ok_or_else(|| TestCaseError::fail("model order missing"))?;
            prop_assert_eq!(
                (o.side, o.price, o.open, o.filled),
                (m.side, m.price, m.open, m.filled)
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    // Goal: every invariant of the module documentation holds after every step of any
    // sequence of operations.
    #[test]
    fn book_invariants_hold(ops in proptest::collection::vec(op(), 1..200)) {
        run(ops)?;
    }
}
