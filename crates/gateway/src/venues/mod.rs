//! Venues: routing orders (§3.10), the session with each venue (§2.6 plus logon, sequence
//! numbers, heartbeats and recovery), and applying execution reports to the orders.
//!
//! Flow of a durable-path order:
//! 1. `orders::submit` picks the venue ([`Venues::route`]) and journals it inside
//!    `OrderAccepted`, so after a restart the order goes to, and is cancelled at, the same venue.
//! 2. Once the order is durable, the journal listener hands it to the venue's [`VenueLink`]
//!    (`Cmd::New`). Nothing reaches a venue before the gateway can survive a crash with it.
//! 3. The link's session thread marks the order SENT, journals `OrderSent` and writes `NEW`;
//!    cancels and amends go the same way (`CancelSent`, `ReplaceSent`), in the same FIFO.
//! 4. The session's reader applies each execution report through the one transition table
//!    ([`apply_report`], shared with replay), journals `ExecutionReport` (+ `OrderUpdated` when
//!    the order moved), updates the account's risk and publishes `execution_report` and
//!    `order_update` to the streams.
//!
//! Recovery: the venue numbers its reports per gateway identity; the link tracks the highest
//! number applied without a gap ([`SeqTrack`], rebuilt from the journal at startup) and logs on
//! with it, so the venue resends what the gateway missed. After each logon the session asks the
//! venue for the status of every order it believes open and repairs what a disconnect lost: an
//! order the venue never got is sent again, a cancel or amend it never got is repeated.

mod apply;
mod session;

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use switchyard_core::{NewOrder, OrderId, Side, Symbol};

use crate::config::{Routes, VenuesSection};
use crate::state::{Account, Gateway};

pub use apply::{apply_report, Applied};
pub use session::{
    after_logon, logon_message, next_message, on_logon_ack, on_venue_message, start, StatusSweep,
};

/// What the session thread is asked to do, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Cmd {
    /// Send the order (again, after a reconnect, if the venue does not know it).
    New(OrderId),
    Cancel(OrderId),
    Replace(OrderId),
    /// Ask the venue to resend reports from this sequence number.
    Resend(u64),
}

/// Best bid and ask of one symbol at one venue (from `TOB`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quote {
    pub bid: Option<u64>,
    pub ask: Option<u64>,
}

/// Venue report sequence numbers applied: everything up to `through`, plus a few above it
/// that arrived early (reordered) or after a gap.
#[derive(Debug, Default)]
pub struct SeqTrack {
    through: u64,
    above: BTreeSet<u64>,
}

impl SeqTrack {
    /// Highest number applied with none missing before it (what LOGON sends as `lastSeq`).
    pub fn through(&self) -> u64 {
        self.through
    }

    pub fn seen(&self, seq: u64) -> bool {
        seq <= self.through || self.above.contains(&seq)
    }

    pub fn mark(&mut self, seq: u64) {
        if seq <= self.through {
            return;
        }
        self.above.insert(seq);
        while self.above.remove(&(self.through + 1)) {
            self.through += 1;
        }
    }

    /// The first missing number, if a later one was applied already.
    pub fn gap(&self) -> Option<u64> {
        (!self.above.is_empty()).then_some(self.through + 1)
    }
}

/// One venue: its address, its session's state, and the orders it holds.
pub struct VenueLink {
    pub idx: usize,
    pub name: Box<str>,
    pub addr: String,
    /// Logged on and heard from within three heartbeat intervals.
    pub up: AtomicBool,
    /// Successful logons after the first.
    pub reconnects: AtomicU64,
    pub logons: AtomicU64,
    /// Reports applied, duplicates dropped, `RESEND`s asked for, reports about orders the
    /// gateway does not hold.
    pub reports: AtomicU64,
    pub duplicates: AtomicU64,
    pub resends: AtomicU64,
    pub unknown_orders: AtomicU64,
    /// Status reports received (answers to STATUS, and to a repeated NEW): the credit of the
    /// paced status sweep after a logon.
    pub status_answers: AtomicU64,
    tx: crossbeam_channel::Sender<Cmd>,
    rx: crossbeam_channel::Receiver<Cmd>,
    /// Orders routed here and not final: reports name only the order id, the store is keyed
    /// by account. Bounded by `ORDER_MAX_IN_MEMORY` like the orders themselves.
    orders: Mutex<HashMap<OrderId, Arc<Account>>>,
    tob: RwLock<HashMap<Symbol, Quote>>,
    seq: Mutex<SeqTrack>,
}

impl std::fmt::Debug for VenueLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VenueLink")
            .field("name", &self.name)
            .field("addr", &self.addr)
            .finish()
    }
}

impl VenueLink {
    /// Queues work for the session thread. The queue is unbounded on purpose: the journal
    /// listener feeds it and must never block; its length is bounded by the orders in memory.
    pub(crate) fn send(&self, cmd: Cmd) {
        let _ = self.tx.send(cmd);
    }

    /// The order is now this venue's concern until it is final.
    pub fn track(&self, id: OrderId, account: Arc<Account>) {
        self.orders.lock().insert(id, account);
    }

    pub fn untrack(&self, id: OrderId) {
        self.orders.lock().remove(&id);
    }

    pub fn account_of(&self, id: OrderId) -> Option<Arc<Account>> {
        self.orders.lock().get(&id).cloned()
    }

    pub fn open_orders(&self) -> usize {
        self.orders.lock().len()
    }

    /// The orders this venue holds, oldest first (a stable order: the repairs and status
    /// requests after a logon go out in it).
    pub fn tracked(&self) -> Vec<(OrderId, Arc<Account>)> {
        let mut v: Vec<(OrderId, Arc<Account>)> = self
            .orders
            .lock()
            .iter()
            .map(|(id, a)| (*id, a.clone()))
            .collect();
        v.sort_unstable_by_key(|(id, _)| id.0);
        v
    }

    pub fn quote(&self, sym: &Symbol) -> Option<Quote> {
        self.tob.read().get(sym).copied()
    }

    pub fn set_quote(&self, sym: Symbol, q: Quote) {
        self.tob.write().insert(sym, q);
    }

    pub fn seq_through(&self) -> u64 {
        self.seq.lock().through()
    }

    /// The first report number missing while a later one was applied, if any.
    pub fn seq_gap(&self) -> Option<u64> {
        self.seq.lock().gap()
    }

    /// Queues a `RESEND` of the venue's reports from `from` on.
    pub fn request_resend(&self, from: u64) {
        self.send(Cmd::Resend(from));
    }

    /// The venue starts numbering again after `through` (it lost its state).
    pub fn reset_seq(&self, through: u64) {
        *self.seq.lock() = SeqTrack {
            through,
            above: BTreeSet::new(),
        };
    }

    /// Replay: a report with this number is in the journal.
    pub fn replayed_seq(&self, seq: u64) {
        if seq > 0 {
            self.seq.lock().mark(seq);
        }
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    pub fn queue_len(&self) -> usize {
        self.rx.len()
    }
}

/// All venues and the routing table.
pub struct Venues {
    pub links: Vec<Arc<VenueLink>>,
    routes: Routes,
    /// Venue indexes sorted by name (the reference hashes symbols over the sorted names).
    sorted: Vec<usize>,
    /// Set at shutdown: session threads log off and exit.
    pub stop: AtomicBool,
}

impl Venues {
    /// Builds the links from a validated configuration (no venues when the transport is
    /// `none`). Nothing connects until [`start`].
    pub fn new(cfg: &VenuesSection) -> Venues {
        let specs = cfg.venues().unwrap_or_default();
        let routes = cfg.routes(&specs).unwrap_or_default();
        let links: Vec<Arc<VenueLink>> = specs
            .iter()
            .enumerate()
            .map(|(idx, v)| {
                let (tx, rx) = crossbeam_channel::unbounded();
                Arc::new(VenueLink {
                    idx,
                    name: v.name.as_str().into(),
                    addr: format!("{}:{}", v.host, v.port),
                    up: AtomicBool::new(false),
                    reconnects: AtomicU64::new(0),
                    logons: AtomicU64::new(0),
                    reports: AtomicU64::new(0),
                    duplicates: AtomicU64::new(0),
                    resends: AtomicU64::new(0),
                    unknown_orders: AtomicU64::new(0),
                    status_answers: AtomicU64::new(0),
                    tx,
                    rx,
                    orders: Mutex::new(HashMap::new()),
                    tob: RwLock::new(HashMap::new()),
                    seq: Mutex::new(SeqTrack::default()),
                })
            })
            .collect();
        let mut sorted: Vec<usize> = (0..links.len()).collect();
        sorted.sort_by(|a, b| links[*a].name.cmp(&links[*b].name));
        Venues {
            links,
            routes,
            sorted,
            stop: AtomicBool::new(false),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.links.is_empty()
    }

    /// The link of a journaled venue name; a venue no longer configured falls back to the
    /// default venue (the reference's rule after a restart).
    pub fn by_name(&self, name: &str) -> Option<Arc<VenueLink>> {
        if name.is_empty() {
            return None;
        }
        self.links
            .iter()
            .find(|l| &*l.name == name)
            .or_else(|| self.links.get(self.routes.default_venue))
            .cloned()
    }

    /// Picks the venue for a new order (§3.10, plus failover and best price):
    /// - a symbol routed to one venue goes there;
    /// - a symbol routed to several goes to the one up with the best price for the order's
    ///   side in its top of book (lowest ask for a BUY, highest bid for a SELL), else the first
    ///   one up, else the first listed (the order waits for it);
    /// - any other symbol goes to `hash(symbol) mod N` over the sorted names, or, if that
    ///   venue is down, to the next one up in that order.
    pub fn route(&self, order: &NewOrder) -> Option<Arc<VenueLink>> {
        let n = self.links.len();
        if n == 0 {
            return None;
        }
        let up = |i: usize| self.links[i].is_up();
        let pick = if let Some(list) = self.routes.by_symbol.get(&order.symbol) {
            let better = |a: u64, b: u64| match order.side {
                Side::Buy => a < b,
                Side::Sell => a > b,
            };
            let mut best: Option<(usize, u64)> = None;
            if list.len() > 1 {
                for &i in list.iter().filter(|&&i| up(i)) {
                    let q = self.links[i].quote(&order.symbol).unwrap_or_default();
                    let px = match order.side {
                        Side::Buy => q.ask,
                        Side::Sell => q.bid,
                    };
                    if let Some(px) = px {
                        if best.is_none_or(|(_, b)| better(px, b)) {
                            best = Some((i, px));
                        }
                    }
                }
            }
            best.map(|(i, _)| i)
                .or_else(|| list.iter().copied().find(|&i| up(i)))
                .unwrap_or(list[0])
        } else {
            let start = (fnv1a(order.symbol.as_bytes()) % n as u64) as usize;
            (0..n)
                .map(|k| self.sorted[(start + k) % n])
                .find(|&i| up(i))
                .unwrap_or(self.sorted[start])
        };
        Some(self.links[pick].clone())
    }

    /// Registers the open orders of the store with their venues and queues what has to
    /// happen next: the NEW of every order not sent yet, and the cancel or amend of an order
    /// whose request was journaled but not sent. Called once after replay.
    pub fn resume(&self, gw: &Gateway) {
        let mut pending = Vec::new();
        gw.orders.for_each_open(|o| {
            if let Some(link) = &o.venue {
                link.track(o.id, o.account.clone());
                if !o.sent {
                    pending.push((link.clone(), Cmd::New(o.id)));
                }
                if o.status == switchyard_core::OrderStatus::CancelRequested {
                    pending.push((link.clone(), Cmd::Cancel(o.id)));
                }
                if o.amend.is_some() {
                    pending.push((link.clone(), Cmd::Replace(o.id)));
                }
            }
        });
        // Oldest first, so that the venue sees orders in the order they were accepted.
        pending.sort_by_key(|(_, c)| match c {
            Cmd::New(id) | Cmd::Cancel(id) | Cmd::Replace(id) => id.0,
            Cmd::Resend(_) => 0,
        });
        for (link, cmd) in pending {
            link.send(cmd);
        }
    }
}

/// A stable hash of a symbol (the same after every restart, unlike the std hasher).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use switchyard_core::{OrderType, TimeInForce};

    fn venues(pairs: &[(&str, &str)]) -> Venues {
        let env = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string()));
        let cfg = Config::load(None, env).unwrap();
        Venues::new(&cfg.venues)
    }

    fn order(sym: &str, side: Side) -> NewOrder {
        NewOrder {
            symbol: Symbol::parse(sym.as_bytes()).unwrap(),
            side,
            order_type: OrderType::Limit,
            time_in_force: TimeInForce::Gtc,
            qty: 1,
            price: 100,
            expire_at_ms: None,
        }
    }

    fn quote(v: &Venues, i: usize, sym: &str, bid: u64, ask: u64) {
        v.links[i].set_quote(
            Symbol::parse(sym.as_bytes()).unwrap(),
            Quote {
                bid: Some(bid),
                ask: Some(ask),
            },
        );
    }

    // Goal: explicit routes, best price among a symbol's venues, failover when one is down,
    // and the reference's stable hash for unrouted symbols.
    #[test]
    fn routing_rules() {
        let v = venues(&[
            ("EXCHANGE_TRANSPORT", "tcp"),
            ("SOR_VENUES", "simA,simB,simC"),
            ("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simC"),
        ]);
        let name = |o: &NewOrder| v.route(o).unwrap().name.to_string();
        // All down: the first listed venue waits for the order.
        assert_eq!(name(&order("BTC", Side::Buy)), "simA");
        for l in &v.links {
            l.up.store(true, Ordering::Release);
        }
        // Up, no quotes: the first one up.
        assert_eq!(name(&order("BTC", Side::Buy)), "simA");
        quote(&v, 0, "BTC", 99, 103);
        quote(&v, 1, "BTC", 100, 102);
        assert_eq!(name(&order("BTC", Side::Buy)), "simB", "lower ask");
        quote(&v, 0, "BTC", 101, 104);
        assert_eq!(name(&order("BTC", Side::Sell)), "simA", "higher bid");
        // simA down: failover within the route.
        v.links[0].up.store(false, Ordering::Release);
        assert_eq!(name(&order("BTC", Side::Sell)), "simB");
        // A single-venue route is strict.
        assert_eq!(name(&order("ETH", Side::Buy)), "simC");
        v.links[2].up.store(false, Ordering::Release);
        assert_eq!(name(&order("ETH", Side::Buy)), "simC");
        // Unrouted: the hash pick is stable; when it is down the next venue up takes it.
        let first = name(&order("SOL", Side::Buy));
        assert_eq!(first, name(&order("SOL", Side::Sell)));
        for l in &v.links {
            l.up.store(l.name.as_ref() != first, Ordering::Release);
        }
        assert_ne!(name(&order("SOL", Side::Buy)), first);
        // No venues: no route.
        assert!(venues(&[]).route(&order("BTC", Side::Buy)).is_none());
    }

    // Goal: the watermark only passes numbers with nothing missing below them.
    #[test]
    fn seq_track_watermark() {
        let mut t = SeqTrack::default();
        t.mark(1);
        t.mark(3);
        assert_eq!((t.through(), t.gap()), (1, Some(2)));
        assert!(t.seen(3) && !t.seen(2));
        t.mark(2);
        assert_eq!((t.through(), t.gap()), (3, None));
        t.mark(2);
        assert_eq!(t.through(), 3);
    }
}
