//! The matching engine: one price-time-priority limit order book per symbol, and [`Market`],
//! the set of books the venue's matching thread owns.
//!
//! Layout, chosen so that a steady stream of operations allocates nothing:
//! - Orders live in a slab (`Vec<Slot>`) with a free list; a freed slot is reused by the next
//!   order. An index maps the caller's order key to its slot.
//! - A price level is an intrusive doubly linked FIFO through the slots (`prev`/`next`), so
//!   appending, removing any order and popping the oldest are O(1).
//! - Each side is a `Vec` of levels sorted so that the best price is the **last** element:
//!   best-price access is O(1), and the levels that change most (near the touch) are the cheap
//!   ones to insert or remove. Lookup of a level by price is a binary search.
//! - Fills are pushed into a caller-provided `Vec<Fill>` that the caller clears and reuses.
//!
//! Rules: trades happen at the resting (maker) order's price; within a level, the earliest
//! order fills first; a market order or an IOC order never rests (its remainder is reported as
//! cancelled); a replace that changes the price or raises the quantity loses time priority
//! (the order goes to the back of its new level, and may trade at once if the new price
//! crosses), a replace that only lowers the quantity keeps it. Self-trade is allowed: this is a
//! simulator and the same gateway may well sit on both sides.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use switchyard_core::{Side, Symbol};

/// The caller's name for an order. The venue gives every order (its gateways' and its market
/// makers') a distinct key.
pub type OrderKey = u64;

/// "No slot": the end of a list.
const NIL: u32 = u32::MAX;

/// Order keys are already unique integers; a multiply-and-fold spreads them over the table at
/// a fraction of SipHash's cost.
#[derive(Default, Clone, Copy)]
pub struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ b as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        let h = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        self.0 = h ^ (h >> 32);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

type KeyMap<V> = HashMap<OrderKey, V, BuildHasherDefault<KeyHasher>>;

/// An order to place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewOrder {
    pub key: OrderKey,
    pub side: Side,
    /// Limit price in minor units; `None` is a market order (never rests).
    pub limit: Option<u64>,
    /// Immediate or cancel: whatever does not trade at once is cancelled, never rests.
    pub ioc: bool,
    pub qty: u64,
}

/// One trade between an incoming (taker) order and a resting (maker) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fill {
    pub taker: OrderKey,
    pub maker: OrderKey,
    pub taker_side: Side,
    /// The maker's price: trades happen at the resting order's price.
    pub price: u64,
    pub qty: u64,
    /// The taker's filled quantity after this fill, including fills before a replace.
    pub taker_filled: u64,
    /// The maker's filled quantity after this fill.
    pub maker_filled: u64,
    /// What the maker still has resting after this fill (0: it is gone from the book).
    pub maker_open: u64,
}

/// What became of a placed order's quantity: `filled + resting + cancelled == qty`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Placed {
    pub filled: u64,
    pub resting: u64,
    /// Not filled and not resting: the remainder of an IOC or market order.
    pub cancelled: u64,
}

/// A cancelled order's final numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cancelled {
    /// The quantity that was resting and is now cancelled.
    pub cancelled: u64,
    pub filled: u64,
    pub side: Side,
    pub price: u64,
}

/// A replaced order's new terms and what happened at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Replaced {
    /// New total quantity (filled included).
    pub qty: u64,
    pub price: u64,
    /// Filled in total after the replace (it may have traded at the new price).
    pub filled: u64,
    /// Still resting after the replace (0: fully filled by it).
    pub resting: u64,
    /// True for a pure quantity decrease (or no change): the order kept its place in the queue.
    pub kept_priority: bool,
}

/// A resting order as the book holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestingOrder {
    pub key: OrderKey,
    pub side: Side,
    pub price: u64,
    pub open: u64,
    pub filled: u64,
}

/// Best bid and ask: price and the total quantity resting at it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Bbo {
    pub bid: Option<(u64, u64)>,
    pub ask: Option<(u64, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BookError {
    #[error("an order with this key is already resting")]
    DuplicateKey,
    #[error("no resting order with this key")]
    UnknownOrder,
    #[error("quantity must be above zero")]
    ZeroQty,
    #[error("limit price must be above zero")]
    ZeroPrice,
    #[error("new quantity must be above the filled quantity")]
    QtyNotAboveFilled,
}

/// One order's storage. Free slots chain through `next`.
#[derive(Debug, Clone, Copy)]
struct Slot {
    key: OrderKey,
    price: u64,
    /// Quantity still resting.
    open: u64,
    /// Quantity traded so far (kept across replaces so a replace can refuse `qty <= filled`).
    filled: u64,
    /// Older neighbour in the level's FIFO (NIL: this is the head).
    prev: u32,
    /// Younger neighbour in the level's FIFO, or the next free slot.
    next: u32,
    side: Side,
}

impl Slot {
    const EMPTY: Slot = Slot {
        key: 0,
        price: 0,
        open: 0,
        filled: 0,
        prev: NIL,
        next: NIL,
        side: Side::Buy,
    };
}

#[derive(Debug, Clone, Copy)]
struct Level {
    price: u64,
    /// Sum of the resting quantity of the level's orders (the top of book's quantity).
    open: u64,
    /// Oldest order: fills first.
    head: u32,
    /// Youngest order: new arrivals go behind it.
    tail: u32,
}

/// One side of a book: levels sorted so that the best price is last.
#[derive(Debug, Clone)]
struct Ladder {
    levels: Vec<Level>,
    /// Bids rank by price, asks by inverted price, so both sort ascending with best last.
    bid: bool,
}

impl Ladder {
    fn new(bid: bool, capacity: usize) -> Ladder {
        Ladder {
            levels: Vec::with_capacity(capacity),
            bid,
        }
    }

    #[inline]
    fn rank(&self, price: u64) -> u64 {
        if self.bid {
            price
        } else {
            !price
        }
    }

    /// Index of the level at `price`, or where it would be inserted.
    #[inline]
    fn find(&self, price: u64) -> Result<usize, usize> {
        let want = self.rank(price);
        // Most activity is near the touch, at the end of the vector: look there first.
        let n = self.levels.len();
        if n > 0 {
            let last = self.rank(self.levels[n - 1].price);
            if want > last {
                return Err(n);
            }
            if want == last {
                return Ok(n - 1);
            }
        }
        self.levels
            .binary_search_by(|l| self.rank(l.price).cmp(&want))
    }
}

/// A limit order book for one symbol. See the module documentation for the layout.
#[derive(Debug, Clone)]
pub struct Book {
    /// Order storage; a slot's index is stable while the order rests.
    slots: Vec<Slot>,
    /// Head of the free-slot list (NIL: none free, the slab grows).
    free: u32,
    /// Order key → slot, for cancel and replace.
    index: KeyMap<u32>,
    bids: Ladder,
    asks: Ladder,
}

impl Default for Book {
    fn default() -> Self {
        Book::with_capacity(1024, 64)
    }
}

impl Book {
    /// A book preallocated for `orders` resting orders and `levels` price levels per side;
    /// it grows past them if it must (and then stays grown).
    pub fn with_capacity(orders: usize, levels: usize) -> Book {
        let mut index = KeyMap::default();
        index.reserve(orders);
        Book {
            slots: Vec::with_capacity(orders),
            free: NIL,
            index,
            bids: Ladder::new(true, levels),
            asks: Ladder::new(false, levels),
        }
    }

    /// Number of resting orders.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Places an order: trades it against the opposite side as far as its limit allows, then
    /// rests the remainder (GTC limit) or cancels it (IOC, market).
    pub fn place(&mut self, o: NewOrder, fills: &mut Vec<Fill>) -> Result<Placed, BookError> {
        if o.qty == 0 {
            return Err(BookError::ZeroQty);
        }
        if o.limit == Some(0) {
            return Err(BookError::ZeroPrice);
        }
        if self.index.contains_key(&o.key) {
            return Err(BookError::DuplicateKey);
        }
        let filled = self.match_incoming(o.key, o.side, o.limit, o.qty, 0, fills);
        let rest = o.qty - filled;
        match o.limit {
            Some(price) if rest > 0 && !o.ioc => {
                self.rest(o.key, o.side, price, rest, filled);
                Ok(Placed {
                    filled,
                    resting: rest,
                    cancelled: 0,
                })
            }
            _ => Ok(Placed {
                filled,
                resting: 0,
                cancelled: rest,
            }),
        }
    }

    /// Puts back an order that was resting before a restart, with what it had filled: it goes
    /// to the back of its level (callers restore in original time order) and trades first if
    /// the book has moved through its price.
    pub fn restore(
        &mut self,
        key: OrderKey,
        side: Side,
        price: u64,
        open: u64,
        filled_before: u64,
        fills: &mut Vec<Fill>,
    ) -> Result<Placed, BookError> {
        if open == 0 {
            return Err(BookError::ZeroQty);
        }
        if price == 0 {
            return Err(BookError::ZeroPrice);
        }
        if self.index.contains_key(&key) {
            return Err(BookError::DuplicateKey);
        }
        let now = self.match_incoming(key, side, Some(price), open, filled_before, fills);
        let rest = open - now;
        if rest > 0 {
            self.rest(key, side, price, rest, filled_before + now);
        }
        Ok(Placed {
            filled: now,
            resting: rest,
            cancelled: 0,
        })
    }

    /// Cancels a resting order.
    pub fn cancel(&mut self, key: OrderKey) -> Result<Cancelled, BookError> {
        let s = self.index.remove(&key).ok_or(BookError::UnknownOrder)?;
        let slot = self.slots[s as usize];
        self.unlink(s);
        self.release(s);
        Ok(Cancelled {
            cancelled: slot.open,
            filled: slot.filled,
            side: slot.side,
            price: slot.price,
        })
    }

    /// Amends a resting order to a new total quantity (filled included) and limit price.
    pub fn replace(
        &mut self,
        key: OrderKey,
        qty: u64,
        price: u64,
        fills: &mut Vec<Fill>,
    ) -> Result<Replaced, BookError> {
        let s = *self.index.get(&key).ok_or(BookError::UnknownOrder)?;
        let slot = self.slots[s as usize];
        if price == 0 {
            return Err(BookError::ZeroPrice);
        }
        if qty <= slot.filled {
            return Err(BookError::QtyNotAboveFilled);
        }
        let open = qty - slot.filled;
        if price == slot.price && open <= slot.open {
            // A pure decrease keeps the order's place in the queue.
            let cut = slot.open - open;
            self.slots[s as usize].open = open;
            let ladder = self.ladder_mut(slot.side);
            let i = ladder.find(price).expect("resting order has a level");
            ladder.levels[i].open -= cut;
            return Ok(Replaced {
                qty,
                price,
                filled: slot.filled,
                resting: open,
                kept_priority: true,
            });
        }
        // Anything else loses priority: out of the book, then in again as if new.
        self.index.remove(&key);
        self.unlink(s);
        self.release(s);
        let now = self.match_incoming(key, slot.side, Some(price), open, slot.filled, fills);
        let rest = open - now;
        if rest > 0 {
            self.rest(key, slot.side, price, rest, slot.filled + now);
        }
        Ok(Replaced {
            qty,
            price,
            filled: slot.filled + now,
            resting: rest,
            kept_priority: false,
        })
    }

    /// The best bid and ask with their level quantities.
    pub fn bbo(&self) -> Bbo {
        let top = |l: &Ladder| l.levels.last().map(|l| (l.price, l.open));
        Bbo {
            bid: top(&self.bids),
            ask: top(&self.asks),
        }
    }

    /// A resting order, if `key` rests here.
    pub fn order(&self, key: OrderKey) -> Option<RestingOrder> {
        let s = *self.index.get(&key)?;
        let slot = &self.slots[s as usize];
        Some(RestingOrder {
            key,
            side: slot.side,
            price: slot.price,
            open: slot.open,
            filled: slot.filled,
        })
    }

    /// The levels of one side, best first: `(price, resting quantity)`.
    pub fn levels(&self, side: Side) -> impl Iterator<Item = (u64, u64)> + '_ {
        self.ladder(side)
            .levels
            .iter()
            .rev()
            .map(|l| (l.price, l.open))
    }

    /// The orders resting at one price, oldest (first to fill) first.
    pub fn queue(&self, side: Side, price: u64) -> Vec<RestingOrder> {
        let ladder = self.ladder(side);
        let mut out = Vec::new();
        if let Ok(i) = ladder.find(price) {
            let mut s = ladder.levels[i].head;
            while s != NIL {
                let slot = &self.slots[s as usize];
                out.push(RestingOrder {
                    key: slot.key,
                    side: slot.side,
                    price: slot.price,
                    open: slot.open,
                    filled: slot.filled,
                });
                s = slot.next;
            }
        }
        out
    }

    /// Checks every structural invariant: sorted ladders, level sums and links, the index,
    /// the free list, and that the book is not crossed. For tests and debugging; O(n).
    pub fn check_invariants(&self) -> Result<(), String> {
        let mut seen = 0usize;
        for ladder in [&self.bids, &self.asks] {
            for w in ladder.levels.windows(2) {
                if ladder.rank(w[0].price) >= ladder.rank(w[1].price) {
                    return Err(format!(
                        "levels out of order: {} / {}",
                        w[0].price, w[1].price
                    ));
                }
            }
            for l in &ladder.levels {
                let (mut sum, mut prev, mut s) = (0u64, NIL, l.head);
                if s == NIL {
                    return Err(format!("empty level {}", l.price));
                }
                while s != NIL {
                    let slot = &self.slots[s as usize];
                    if slot.prev != prev || slot.price != l.price || slot.open == 0 {
                        return Err(format!("bad slot {s} at level {}", l.price));
                    }
                    if (slot.side == Side::Buy) != ladder.bid {
                        return Err(format!("order {} on the wrong side", slot.key));
                    }
                    if self.index.get(&slot.key) != Some(&s) {
                        return Err(format!("order {} not indexed", slot.key));
                    }
                    sum += slot.open;
                    seen += 1;
                    prev = s;
                    s = slot.next;
                }
                if prev != l.tail || sum != l.open {
                    return Err(format!("level {} tail or sum wrong", l.price));
                }
            }
        }
        if seen != self.index.len() {
            return Err(format!("{} indexed, {seen} linked", self.index.len()));
        }
        let mut free = 0usize;
        let mut s = self.free;
        while s != NIL {
            free += 1;
            if free > self.slots.len() {
                return Err("free list loops".into());
            }
            s = self.slots[s as usize].next;
        }
        if free + seen != self.slots.len() {
            return Err(format!("{free} free + {seen} used != {}", self.slots.len()));
        }
        if let (Some((b, _)), Some((a, _))) = (self.bbo().bid, self.bbo().ask) {
            if b >= a {
                return Err(format!("crossed book: bid {b} >= ask {a}"));
            }
        }
        Ok(())
    }

    fn ladder(&self, side: Side) -> &Ladder {
        match side {
            Side::Buy => &self.bids,
            Side::Sell => &self.asks,
        }
    }

    fn ladder_mut(&mut self, side: Side) -> &mut Ladder {
        match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        }
    }

    /// Trades an incoming order against the opposite side; returns the quantity filled.
    /// `filled_before` is what the taker had filled earlier (a replaced order), for `Fill`.
    #[inline]
    fn match_incoming(
        &mut self,
        taker: OrderKey,
        side: Side,
        limit: Option<u64>,
        qty: u64,
        filled_before: u64,
        fills: &mut Vec<Fill>,
    ) -> u64 {
        let Book {
            slots,
            free,
            index,
            bids,
            asks,
        } = self;
        let opposite = match side {
            Side::Buy => asks,
            Side::Sell => bids,
        };
        let mut remaining = qty;
        while remaining > 0 {
            let Some(level) = opposite.levels.last_mut() else {
                break;
            };
            let crosses = match (side, limit) {
                (_, None) => true,
                (Side::Buy, Some(p)) => level.price <= p,
                (Side::Sell, Some(p)) => level.price >= p,
            };
            if !crosses {
                break;
            }
            while remaining > 0 && level.head != NIL {
                let s = level.head;
                let maker = &mut slots[s as usize];
                let q = remaining.min(maker.open);
                maker.open -= q;
                maker.filled += q;
                level.open -= q;
                remaining -= q;
                fills.push(Fill {
                    taker,
                    maker: maker.key,
                    taker_side: side,
                    price: level.price,
                    qty: q,
                    taker_filled: filled_before + (qty - remaining),
                    maker_filled: maker.filled,
                    maker_open: maker.open,
                });
                if maker.open == 0 {
                    // The head leaves: its successor becomes the head.
                    let next = maker.next;
                    index.remove(&maker.key);
                    maker.next = *free;
                    maker.prev = NIL;
                    *free = s;
                    level.head = next;
                    if next == NIL {
                        level.tail = NIL;
                    } else {
                        slots[next as usize].prev = NIL;
                    }
                }
            }
            if level.head == NIL {
                opposite.levels.pop();
            }
        }
        qty - remaining
    }

    /// Appends an order to the back of its level (creating the level).
    fn rest(&mut self, key: OrderKey, side: Side, price: u64, open: u64, filled: u64) {
        let s = self.alloc(Slot {
            key,
            price,
            open,
            filled,
            prev: NIL,
            next: NIL,
            side,
        });
        self.index.insert(key, s);
        let ladder = match side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        match ladder.find(price) {
            Ok(i) => {
                let level = &mut ladder.levels[i];
                let tail = level.tail;
                self.slots[s as usize].prev = tail;
                self.slots[tail as usize].next = s;
                level.tail = s;
                level.open += open;
            }
            Err(i) => ladder.levels.insert(
                i,
                Level {
                    price,
                    open,
                    head: s,
                    tail: s,
                },
            ),
        }
    }

    /// Takes slot `s` out of its level's list (removing the level if it empties). The slot
    /// itself is left for the caller to release.
    fn unlink(&mut self, s: u32) {
        let slot = self.slots[s as usize];
        let ladder = match slot.side {
            Side::Buy => &mut self.bids,
            Side::Sell => &mut self.asks,
        };
        let i = ladder.find(slot.price).expect("resting order has a level");
        let level = &mut ladder.levels[i];
        level.open -= slot.open;
        if slot.prev == NIL {
            level.head = slot.next;
        } else {
            self.slots[slot.prev as usize].next = slot.next;
        }
        if slot.next == NIL {
            level.tail = slot.prev;
        } else {
            self.slots[slot.next as usize].prev = slot.prev;
        }
        if level.head == NIL {
            ladder.levels.remove(i);
        }
    }

    fn alloc(&mut self, slot: Slot) -> u32 {
        if self.free != NIL {
            let s = self.free;
            self.free = self.slots[s as usize].next;
            self.slots[s as usize] = slot;
            s
        } else {
            let s = self.slots.len();
            assert!(s < NIL as usize, "order slab full");
            self.slots.push(slot);
            s as u32
        }
    }

    fn release(&mut self, s: u32) {
        self.slots[s as usize] = Slot {
            next: self.free,
            ..Slot::EMPTY
        };
        self.free = s;
    }
}

/// Which book of a [`Market`]; stable for the market's life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BookId(pub u32);

/// All books of the venue, by symbol. Owned by one thread: no locks anywhere.
#[derive(Debug, Default)]
pub struct Market {
    /// Indexed by `BookId`.
    books: Vec<Book>,
    /// Each book's symbol, indexed by `BookId`.
    symbols: Vec<Symbol>,
    by_symbol: HashMap<Symbol, BookId>,
    /// Slab size each new book starts with.
    orders_per_book: usize,
}

impl Market {
    /// A market whose books each start with room for `orders_per_book` resting orders.
    pub fn new(orders_per_book: usize) -> Market {
        Market {
            orders_per_book,
            ..Market::default()
        }
    }

    pub fn book_id(&self, symbol: &Symbol) -> Option<BookId> {
        self.by_symbol.get(symbol).copied()
    }

    /// The book for `symbol`, created empty if it does not exist; `true` if it was created.
    pub fn open_book(&mut self, symbol: Symbol) -> (BookId, bool) {
        if let Some(id) = self.book_id(&symbol) {
            return (id, false);
        }
        let id = BookId(self.books.len() as u32);
        self.books
            .push(Book::with_capacity(self.orders_per_book.max(16), 64));
        self.symbols.push(symbol);
        self.by_symbol.insert(symbol, id);
        (id, true)
    }

    pub fn len(&self) -> usize {
        self.books.len()
    }

    pub fn is_empty(&self) -> bool {
        self.books.is_empty()
    }

    pub fn ids(&self) -> impl Iterator<Item = BookId> {
        (0..self.books.len() as u32).map(BookId)
    }

    pub fn symbol(&self, id: BookId) -> Symbol {
        self.symbols[id.0 as usize]
    }

    pub fn book(&self, id: BookId) -> &Book {
        &self.books[id.0 as usize]
    }

    pub fn place(
        &mut self,
        id: BookId,
        o: NewOrder,
        fills: &mut Vec<Fill>,
    ) -> Result<Placed, BookError> {
        self.books[id.0 as usize].place(o, fills)
    }

    pub fn cancel(&mut self, id: BookId, key: OrderKey) -> Result<Cancelled, BookError> {
        self.books[id.0 as usize].cancel(key)
    }

    pub fn replace(
        &mut self,
        id: BookId,
        key: OrderKey,
        qty: u64,
        price: u64,
        fills: &mut Vec<Fill>,
    ) -> Result<Replaced, BookError> {
        self.books[id.0 as usize].replace(key, qty, price, fills)
    }

    #[allow(clippy::too_many_arguments)]
    pub fn restore(
        &mut self,
        id: BookId,
        key: OrderKey,
        side: Side,
        price: u64,
        open: u64,
        filled_before: u64,
        fills: &mut Vec<Fill>,
    ) -> Result<Placed, BookError> {
        self.books[id.0 as usize].restore(key, side, price, open, filled_before, fills)
    }

    pub fn top_of_book(&self, id: BookId) -> Bbo {
        self.books[id.0 as usize].bbo()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(key: u64, side: Side, price: u64, qty: u64) -> NewOrder {
        NewOrder {
            key,
            side,
            limit: Some(price),
            ioc: false,
            qty,
        }
    }

    fn book() -> Book {
        Book::with_capacity(8, 4)
    }

    // Goal: a passive order rests and shows in the top of book; nothing trades.
    #[test]
    fn passive_orders_rest() {
        let mut b = book();
        let mut f = Vec::new();
        let p = b.place(limit(1, Side::Buy, 99, 5), &mut f).unwrap();
        assert_eq!(
            p,
            Placed {
                filled: 0,
                resting: 5,
                cancelled: 0
            }
        );
        b.place(limit(2, Side::Sell, 101, 7), &mut f).unwrap();
        b.place(limit(3, Side::Buy, 99, 1), &mut f).unwrap();
        assert!(f.is_empty());
        assert_eq!(
            b.bbo(),
            Bbo {
                bid: Some((99, 6)),
                ask: Some((101, 7))
            }
        );
        b.check_invariants().unwrap();
    }

    // Goal: an aggressive order walks the book best level first, oldest first within a level,
    // at the makers' prices, and rests its remainder.
    #[test]
    fn aggressive_order_sweeps_in_price_time_order() {
        let mut b = book();
        let mut f = Vec::new();
        b.place(limit(1, Side::Sell, 102, 3), &mut f).unwrap();
        b.place(limit(2, Side::Sell, 101, 2), &mut f).unwrap();
        b.place(limit(3, Side::Sell, 101, 4), &mut f).unwrap();
        let p = b.place(limit(9, Side::Buy, 102, 10), &mut f).unwrap();
        assert_eq!(
            p,
            Placed {
                filled: 9,
                resting: 1,
                cancelled: 0
            }
        );
        let got: Vec<_> = f
            .iter()
            .map(|x| (x.maker, x.price, x.qty, x.taker_filled))
            .collect();
        assert_eq!(got, vec![(2, 101, 2, 2), (3, 101, 4, 6), (1, 102, 3, 9)]);
        assert_eq!(
            b.bbo(),
            Bbo {
                bid: Some((102, 1)),
                ask: None
            }
        );
        b.check_invariants().unwrap();
    }

    // Goal: IOC and market remainders are cancelled, never rest.
    #[test]
    fn ioc_and_market_never_rest() {
        let mut b = book();
        let mut f = Vec::new();
        b.place(limit(1, Side::Sell, 100, 3), &mut f).unwrap();
        let ioc = NewOrder {
            ioc: true,
            ..limit(2, Side::Buy, 100, 5)
        };
        assert_eq!(
            b.place(ioc, &mut f).unwrap(),
            Placed {
                filled: 3,
                resting: 0,
                cancelled: 2
            }
        );
        let mkt = NewOrder {
            limit: None,
            ..limit(3, Side::Sell, 0, 4)
        };
        assert_eq!(
            b.place(mkt, &mut f).unwrap(),
            Placed {
                filled: 0,
                resting: 0,
                cancelled: 4
            }
        );
        assert!(b.is_empty());
        b.check_invariants().unwrap();
    }

    // Goal: a partially filled maker keeps its place; cancel returns the open quantity.
    #[test]
    fn partial_fill_then_cancel() {
        let mut b = book();
        let mut f = Vec::new();
        b.place(limit(1, Side::Buy, 50, 10), &mut f).unwrap();
        b.place(limit(2, Side::Buy, 50, 10), &mut f).unwrap();
        b.place(limit(3, Side::Sell, 50, 4), &mut f).unwrap();
        assert_eq!((f[0].maker, f[0].maker_open, f[0].maker_filled), (1, 6, 4));
        let c = b.cancel(1).unwrap();
        assert_eq!((c.cancelled, c.filled), (6, 4));
        assert_eq!(b.cancel(1), Err(BookError::UnknownOrder));
        assert_eq!(b.bbo().bid, Some((50, 10)));
        b.check_invariants().unwrap();
    }

    // Goal: a decrease keeps priority, an increase or a price change loses it, a replace
    // below the filled quantity is refused, and a crossing replace trades at once.
    #[test]
    fn replace_rules() {
        let mut b = book();
        let mut f = Vec::new();
        b.place(limit(1, Side::Buy, 50, 10), &mut f).unwrap();
        b.place(limit(2, Side::Buy, 50, 10), &mut f).unwrap();
        let r = b.replace(1, 8, 50, &mut f).unwrap();
        assert!(r.kept_priority);
        assert_eq!(b.queue(Side::Buy, 50)[0].key, 1);
        let r = b.replace(1, 9, 50, &mut f).unwrap();
        assert!(!r.kept_priority);
        assert_eq!(b.queue(Side::Buy, 50)[0].key, 2);
        b.place(limit(3, Side::Sell, 50, 12), &mut f).unwrap();
        // 2 is filled (10), 1 has 2 of 9 filled.
        assert_eq!(b.order(1).map(|o| (o.open, o.filled)), Some((7, 2)));
        assert_eq!(
            b.replace(1, 2, 50, &mut f),
            Err(BookError::QtyNotAboveFilled)
        );
        b.place(limit(4, Side::Sell, 60, 5), &mut f).unwrap();
        f.clear();
        let r = b.replace(1, 9, 61, &mut f).unwrap();
        assert_eq!((r.filled, r.resting, r.kept_priority), (7, 2, false));
        assert_eq!(f.len(), 1);
        assert_eq!(
            (f[0].maker, f[0].price, f[0].qty, f[0].taker_filled),
            (4, 60, 5, 7)
        );
        assert_eq!(
            b.bbo(),
            Bbo {
                bid: Some((61, 2)),
                ask: None
            }
        );
        b.check_invariants().unwrap();
    }

    // Goal: keys are unique among resting orders; zero quantities and prices are refused.
    #[test]
    fn bad_input_is_refused() {
        let mut b = book();
        let mut f = Vec::new();
        b.place(limit(1, Side::Buy, 50, 1), &mut f).unwrap();
        assert_eq!(
            b.place(limit(1, Side::Buy, 50, 1), &mut f),
            Err(BookError::DuplicateKey)
        );
        assert_eq!(
            b.place(limit(2, Side::Buy, 50, 0), &mut f),
            Err(BookError::ZeroQty)
        );
        assert_eq!(
            b.place(limit(2, Side::Buy, 0, 1), &mut f),
            Err(BookError::ZeroPrice)
        );
        assert_eq!(b.replace(9, 1, 1, &mut f), Err(BookError::UnknownOrder));
    }

    // Goal: freed slots are reused, so a steady state does not grow the slab.
    #[test]
    fn slots_are_recycled() {
        let mut b = book();
        let mut f = Vec::new();
        for k in 0..1000 {
            b.place(limit(k, Side::Buy, 10 + k % 3, 1), &mut f).unwrap();
            if k % 2 == 1 {
                b.cancel(k).unwrap();
                b.cancel(k - 1).unwrap();
            }
        }
        assert!(b.slots.len() <= 2);
        b.check_invariants().unwrap();
    }

    // Goal: restore rests without reordering and trades if the book moved through the price.
    #[test]
    fn restore_keeps_given_order_and_trades_if_crossed() {
        let mut b = book();
        let mut f = Vec::new();
        b.restore(1, Side::Sell, 100, 5, 3, &mut f).unwrap();
        b.restore(2, Side::Sell, 100, 5, 0, &mut f).unwrap();
        assert_eq!(
            b.queue(Side::Sell, 100)
                .iter()
                .map(|o| o.key)
                .collect::<Vec<_>>(),
            [1, 2]
        );
        b.place(limit(3, Side::Buy, 99, 4), &mut f).unwrap();
        let p = b.restore(4, Side::Sell, 98, 6, 0, &mut f).unwrap();
        assert_eq!((p.filled, p.resting), (4, 2));
        assert_eq!(f[0].price, 99);
        assert_eq!(b.order(1).unwrap().filled, 3);
        b.check_invariants().unwrap();
    }

    // Goal: the market keeps one book per symbol and routes operations to it.
    #[test]
    fn market_routes_by_symbol() {
        let mut m = Market::new(16);
        let (a, new_a) = m.open_book(Symbol::parse(b"AAA").unwrap());
        let (b, _) = m.open_book(Symbol::parse(b"BBB").unwrap());
        assert!(new_a);
        assert_eq!(m.open_book(Symbol::parse(b"aaa").unwrap()), (a, false));
        let mut f = Vec::new();
        m.place(a, limit(1, Side::Buy, 10, 1), &mut f).unwrap();
        assert_eq!(m.top_of_book(a).bid, Some((10, 1)));
        assert_eq!(m.top_of_book(b), Bbo::default());
        assert_eq!(m.cancel(b, 1), Err(BookError::UnknownOrder));
        assert_eq!(m.symbol(b).as_str(), "BBB");
    }
}
