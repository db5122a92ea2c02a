//! Orders, idempotency keys and client order ids, partitioned by account.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, MutexGuard};
use switchyard_core::{NewOrder, OrderId, OrderStatus};

use crate::state::Account;

/// One durable-path order as the gateway knows it now.
#[derive(Debug)]
pub struct Order {
    pub id: OrderId,
    pub accept_seq: u64,
    pub account: Arc<Account>,
    pub client_order_id: Option<Box<str>>,
    pub order: NewOrder,
    /// Index of the symbol's position slot in the account's risk state.
    pub symbol_idx: u16,
    pub status: OrderStatus,
    pub filled: u64,
    /// Wall-clock time of acceptance, ns (`acceptedAt`, and the accept→sent and
    /// accept→first-fill latencies).
    pub accepted_ns: u64,
    pub last_update_ms: u64,
    /// The journal has fdatasync'ed its `OrderAccepted` record.
    pub durable: bool,
    /// A cancel record is on its way to the journal (concurrent cancels do not repeat it).
    pub cancel_pending: bool,
    /// The venue the order was routed to; none when no venue is configured.
    pub venue: Option<Arc<crate::venues::VenueLink>>,
    /// The NEW went to the venue (`OrderSent` journaled); until then a cancel needs no venue.
    pub sent: bool,
    /// Replayed without an `OrderSent`: an earlier run may have sent the NEW all the same
    /// (its record lost in the crash), so the gateway never cancels it alone; the NEW goes
    /// again (idempotent at the venue) and the cancel after it.
    pub maybe_sent: bool,
    /// The venue has reported on the order: it holds it. After a reconnect an order sent but
    /// never acknowledged gets its NEW again at once instead of a STATUS round trip.
    pub acked: bool,
    /// The highest venue report number applied to the order (0: none yet). A report numbered
    /// below it (resent after a gap, or reordered) shows an older state of the order.
    pub venue_seq: u64,
    /// An amend the venue has not answered yet.
    pub amend: Option<PendingAmend>,
}

/// An amend waiting for the venue: the new terms, and the position reserved for a larger
/// size (given back if the venue refuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingAmend {
    pub qty: u64,
    pub price: u64,
    pub reserved_qty: u64,
    /// Its `AmendRequested` record is durable: only then may a REPLACE go to the venue.
    pub durable: bool,
}

impl Order {
    /// `OrderSnapshotResponse` (§2.3.4) plus `durable`, with `status` as given (the order's own
    /// word, or v2's normalised one): the body of `GET /orders/{id}` and of `order_snapshot` /
    /// `order_update` stream events. Written by hand: it is on the path of every order.
    pub fn write_snapshot(&self, out: &mut Vec<u8>, status: &'static str) {
        let n = &self.order;
        let mut o = switchyard_protocol::json::Obj::new(out);
        o.prefixed_hex("orderId", "ord_", self.id.0)
            .str("accountId", &self.account.id)
            .opt_str("clientOrderId", self.client_order_id.as_deref())
            .str("symbol", n.symbol.as_str())
            .word("side", n.side.as_str())
            .word("type", n.order_type.as_str())
            .u64("qty", n.qty)
            .opt_u64("price", (n.price > 0).then_some(n.price))
            .word("timeInForce", n.time_in_force.as_str())
            .opt_u64("expireAt", n.expire_at_ms)
            .word("status", status)
            .u64("acceptedAt", self.accepted_ns / 1_000_000)
            .u64("lastUpdateAt", self.last_update_ms)
            .u64("filledQty", self.filled)
            .raw("durable", if self.durable { "true" } else { "false" })
            .opt_str("venue", self.venue_name())
            .raw(
                "amendPending",
                if self.amend.is_some() {
                    "true"
                } else {
                    "false"
                },
            )
            .end();
    }

    /// The venue's name, if the order was routed.
    pub fn venue_name(&self) -> Option<&str> {
        self.venue.as_deref().map(|v| &*v.name)
    }

    /// Quantity not filled yet.
    pub fn open_qty(&self) -> u64 {
        self.order.qty.saturating_sub(self.filled)
    }

    /// The pending amend is over without the venue taking it (refused, its journal write
    /// failed, or its answer was lost): what it reserved leaves the account's projected position.
    pub fn drop_amend(&mut self) {
        if let Some(a) = self.amend.take() {
            self.account
                .risk
                .close_open(self.symbol_idx, self.order.side, a.reserved_qty);
        }
    }

    /// The order has ended: its unfilled rest and what a pending amend reserved leave the
    /// account's projected position, and the amend is over.
    pub fn release_open(&mut self) {
        let open = self.open_qty() + self.amend.take().map_or(0, |a| a.reserved_qty);
        self.account
            .risk
            .close_open(self.symbol_idx, self.order.side, open);
    }

    /// Publishes the order's current state to its stream subscribers.
    pub fn publish(&self, hub: &crate::stream::Hub, name: &'static str) {
        let mut data = Vec::with_capacity(320);
        self.write_snapshot(&mut data, self.status.as_str());
        hub.publish(
            &self.account.id,
            Some(&crate::records::order_ref(self.id)),
            name,
            data.into(),
        );
    }
}

/// What an idempotency key remembers: enough to answer a replay without the order itself,
/// which may have left memory already.
#[derive(Debug, Clone, Copy)]
struct IdemEntry {
    order_id: OrderId,
    accept_seq: u64,
    created_ns: u64,
}

/// Longest idempotency key kept inside the map entry itself (a UUID has 36 bytes).
const INLINE_KEY_MAX: usize = 38;

/// An idempotency key as the store keeps it: a short key inside the hash map's own entry, a
/// longer one in a heap block of its own. One heap block per key would be a million small
/// blocks for a million keys, living for the key's TTL among the short-lived blocks of the
/// requests around them; once they are freed, glibc can seldom give their pages back because
/// blocks allocated later sit between them. An inline key leaves nothing behind but the table,
/// and costs no more (40 bytes against 16 for the box plus its 32- or 48-byte block).
enum IdemKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_MAX],
    },
    Heap(Box<str>),
}

impl IdemKey {
    fn as_str(&self) -> &str {
        match self {
            // The bytes were copied whole from a `str` (`from`), so they are valid UTF-8.
            IdemKey::Inline { len, bytes } => {
                std::str::from_utf8(&bytes[..*len as usize]).unwrap_or_default()
            }
            IdemKey::Heap(s) => s,
        }
    }
}

impl From<&str> for IdemKey {
    fn from(s: &str) -> IdemKey {
        if s.len() > INLINE_KEY_MAX {
            return IdemKey::Heap(s.into());
        }
        let mut bytes = [0; INLINE_KEY_MAX];
        bytes[..s.len()].copy_from_slice(s.as_bytes());
        IdemKey::Inline {
            len: s.len() as u8,
            bytes,
        }
    }
}

// Lookups take a `&str`: hashing and equality must be exactly those of the `str`.
impl Borrow<str> for IdemKey {
    fn borrow(&self) -> &str {
        self.as_str()
    }
}

impl Hash for IdemKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state)
    }
}

impl PartialEq for IdemKey {
    fn eq(&self, other: &IdemKey) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for IdemKey {}

/// The answer to a replayed key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IdemHit {
    pub order_id: OrderId,
    pub accept_seq: u64,
    /// Unknown (`false`) once the order left memory; it is durable then (it was replayed or
    /// finished), so callers treat a missing order as durable.
    pub durable: bool,
}

#[derive(Debug, Clone, Copy)]
enum ClientRef {
    Order(OrderId),
    /// The last attempt with this client order id was refused (§2.3.4 `REJECTED`).
    Rejected {
        at_ns: u64,
    },
}

#[derive(Default)]
struct AccountOrders {
    /// Boxed: an `Order` is ~200 bytes, and a table that held them inline would copy all of
    /// them and fault in twice their size in fresh pages each time it doubled — on a gateway
    /// taking 40 k orders/s that was a tenth of its CPU (`clear_page_erms` under
    /// `reserve_rehash` in `perf`). A box costs one allocation per order and a pointer.
    orders: HashMap<OrderId, Box<Order>>,
    idem: HashMap<IdemKey, IdemEntry>,
    by_client: HashMap<Box<str>, ClientRef>,
}

impl AccountOrders {
    fn is_empty(&self) -> bool {
        self.orders.is_empty() && self.idem.is_empty() && self.by_client.is_empty()
    }
}

#[derive(Default)]
pub struct Part {
    accounts: HashMap<Box<str>, AccountOrders>,
}

/// Counts for `/stats` and `/metrics`.
#[derive(Debug, Default, Clone, Copy)]
pub struct StoreStats {
    pub orders: usize,
    pub open: usize,
    pub idempotency_keys: usize,
}

pub struct OrderStore {
    parts: Box<[Mutex<Part>]>,
    hasher: ahash::RandomState,
    /// Orders in memory (open + finished not yet collected).
    in_memory: AtomicUsize,
    pub max_in_memory: usize,
    ttl_ns: u64,
    retention_ns: u64,
    next_gc_part: AtomicUsize,
    pub idem_checked: AtomicU64,
    pub idem_hits: AtomicU64,
    pub idem_creates: AtomicU64,
    pub idem_expired: AtomicU64,
    pub gc_orders: AtomicU64,
    pub gc_keys: AtomicU64,
}

impl OrderStore {
    pub fn new(parts: usize, max_in_memory: usize, ttl_sec: u64, retention_sec: u64) -> Self {
        OrderStore {
            parts: (0..parts.max(1))
                .map(|_| Mutex::new(Part::default()))
                .collect(),
            hasher: ahash::RandomState::with_seeds(1, 2, 3, 4),
            in_memory: AtomicUsize::new(0),
            max_in_memory,
            ttl_ns: ttl_sec.saturating_mul(1_000_000_000),
            retention_ns: retention_sec.saturating_mul(1_000_000_000),
            next_gc_part: AtomicUsize::new(0),
            idem_checked: AtomicU64::new(0),
            idem_hits: AtomicU64::new(0),
            idem_creates: AtomicU64::new(0),
            idem_expired: AtomicU64::new(0),
            gc_orders: AtomicU64::new(0),
            gc_keys: AtomicU64::new(0),
        }
    }

    /// The partition of an account, locked.
    pub fn lock(&self, account: &str) -> PartGuard<'_> {
        let i = (self.hasher.hash_one(account) % self.parts.len() as u64) as usize;
        PartGuard {
            store: self,
            part: self.parts[i].lock(),
        }
    }

    pub fn in_memory(&self) -> usize {
        self.in_memory.load(Ordering::Relaxed)
    }

    /// One step of the memory schedule: visits the next partition and drops expired
    /// idempotency keys and finished orders past their retention. Called by the monitor; a
    /// full round takes `parts` calls. Returns how many entries (orders, keys, client order
    /// ids) it removed.
    pub fn gc_step(&self, now_ns: u64) -> u64 {
        let i = self.next_gc_part.fetch_add(1, Ordering::Relaxed) % self.parts.len();
        let mut part = self.parts[i].lock();
        let (mut orders, mut keys, mut client_ids) = (0u64, 0u64, 0u64);
        part.accounts.retain(|_, a| {
            let before = a.orders.len();
            a.orders.retain(|_, o| {
                !(o.status.is_final()
                    && now_ns.saturating_sub(o.last_update_ms.saturating_mul(1_000_000))
                        >= self.retention_ns)
            });
            orders += (before - a.orders.len()) as u64;
            let before = a.idem.len();
            a.idem
                .retain(|_, e| now_ns.saturating_sub(e.created_ns) < self.ttl_ns);
            keys += (before - a.idem.len()) as u64;
            let orders_left = &a.orders;
            let before = a.by_client.len();
            a.by_client.retain(|_, r| match *r {
                ClientRef::Order(id) => orders_left.contains_key(&id),
                ClientRef::Rejected { at_ns } => now_ns.saturating_sub(at_ns) < self.ttl_ns,
            });
            client_ids += (before - a.by_client.len()) as u64;
            shrink(&mut a.orders);
            shrink(&mut a.idem);
            shrink(&mut a.by_client);
            !a.is_empty()
        });
        shrink(&mut part.accounts);
        self.in_memory.fetch_sub(orders as usize, Ordering::Relaxed);
        self.gc_orders.fetch_add(orders, Ordering::Relaxed);
        self.gc_keys.fetch_add(keys, Ordering::Relaxed);
        self.idem_expired.fetch_add(keys, Ordering::Relaxed);
        orders + keys + client_ids
    }

    /// Calls `f` with every order not final, one partition lock at a time (startup and venue
    /// reconnects: rare, and each visit is short).
    pub fn for_each_open(&self, mut f: impl FnMut(&Order)) {
        for p in self.parts.iter() {
            let p = p.lock();
            for o in p.accounts.values().flat_map(|a| a.orders.values()) {
                if !o.status.is_final() {
                    f(o);
                }
            }
        }
    }

    pub fn stats(&self) -> StoreStats {
        let mut s = StoreStats::default();
        for p in self.parts.iter() {
            let p = p.lock();
            for a in p.accounts.values() {
                s.orders += a.orders.len();
                s.open += a.orders.values().filter(|o| !o.status.is_final()).count();
                s.idempotency_keys += a.idem.len();
            }
        }
        s
    }
}

/// Hash maps keep their capacity after removals; give memory back once mostly empty.
fn shrink<K: Eq + Hash, V, S: BuildHasher>(m: &mut HashMap<K, V, S>) {
    if m.capacity() > 64 && m.capacity() > 4 * m.len() {
        m.shrink_to_fit();
    }
}

/// A locked partition. Everything about one account happens under one guard.
pub struct PartGuard<'a> {
    store: &'a OrderStore,
    part: MutexGuard<'a, Part>,
}

impl PartGuard<'_> {
    /// The live entry of `(account, key)`; an expired one is removed and counted.
    pub fn idempotent(&mut self, account: &str, key: &str, now_ns: u64) -> Option<IdemHit> {
        let store = self.store;
        store.idem_checked.fetch_add(1, Ordering::Relaxed);
        let a = self.part.accounts.get_mut(account)?;
        let e = *a.idem.get(key)?;
        if now_ns.saturating_sub(e.created_ns) >= store.ttl_ns {
            a.idem.remove(key);
            store.idem_expired.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        store.idem_hits.fetch_add(1, Ordering::Relaxed);
        Some(IdemHit {
            order_id: e.order_id,
            accept_seq: e.accept_seq,
            durable: a.orders.get(&e.order_id).is_none_or(|o| o.durable),
        })
    }

    /// Inserts a new order with its key (and client order id). The caller checked the key.
    pub fn create(&mut self, order: Order, key: &str, created_ns: u64) {
        let store = self.store;
        let accounts = &mut self.part.accounts;
        // No `entry` here: it would copy the account id for every order.
        if !accounts.contains_key(&*order.account.id) {
            accounts.insert(order.account.id.clone(), AccountOrders::default());
        }
        let Some(a) = accounts.get_mut(&*order.account.id) else {
            return; // inserted just above
        };
        a.idem.insert(
            key.into(),
            IdemEntry {
                order_id: order.id,
                accept_seq: order.accept_seq,
                created_ns,
            },
        );
        if let Some(cid) = &order.client_order_id {
            a.by_client.insert(cid.clone(), ClientRef::Order(order.id));
        }
        a.orders.insert(order.id, Box::new(order));
        store.idem_creates.fetch_add(1, Ordering::Relaxed);
        store.in_memory.fetch_add(1, Ordering::Relaxed);
    }

    /// Undoes `create` (the journal could not take the order, or the queue refused it).
    pub fn remove(&mut self, account: &str, id: OrderId, key: Option<&str>) -> Option<Order> {
        let a = self.part.accounts.get_mut(account)?;
        let o = *a.orders.remove(&id)?;
        self.store.in_memory.fetch_sub(1, Ordering::Relaxed);
        if let Some(k) = key {
            if a.idem.get(k).is_some_and(|e| e.order_id == id) {
                a.idem.remove(k);
            }
        } else {
            a.idem.retain(|_, e| e.order_id != id);
        }
        if let Some(cid) = &o.client_order_id {
            a.by_client.remove(cid);
        }
        Some(o)
    }

    /// Remembers that an attempt with this client order id was refused.
    pub fn client_rejected(&mut self, account: &str, cid: &str, now_ns: u64) {
        let a = self.part.accounts.entry(account.into()).or_default();
        if !matches!(a.by_client.get(cid), Some(ClientRef::Order(_))) {
            a.by_client
                .insert(cid.into(), ClientRef::Rejected { at_ns: now_ns });
        }
    }

    pub fn get(&self, account: &str, id: OrderId) -> Option<&Order> {
        self.part
            .accounts
            .get(account)?
            .orders
            .get(&id)
            .map(|o| &**o)
    }

    pub fn get_mut(&mut self, account: &str, id: OrderId) -> Option<&mut Order> {
        self.part
            .accounts
            .get_mut(account)?
            .orders
            .get_mut(&id)
            .map(|o| &mut **o)
    }

    /// The order a path names: an `ord_…` id, or (as the reference does) a client order id
    /// of the same account.
    pub fn resolve(&self, account: &str, id: &str) -> Option<&Order> {
        let by_id = crate::records::parse_order_ref(id).and_then(|oid| self.get(account, oid));
        by_id.or_else(|| match self.by_client(account, id)? {
            Ok(oid) => self.get(account, oid),
            Err(()) => None,
        })
    }

    /// `Some(Ok(id))` for a known order, `Some(Err(()))` for a refused client order id.
    pub fn by_client(&self, account: &str, cid: &str) -> Option<Result<OrderId, ()>> {
        match self.part.accounts.get(account)?.by_client.get(cid)? {
            ClientRef::Order(id) => Some(Ok(*id)),
            ClientRef::Rejected { .. } => Some(Err(())),
        }
    }

    /// Restores an idempotency key from the journal (the order may be finished and gone).
    pub fn restore_key(&mut self, account: &str, key: &str, id: OrderId, seq: u64, at_ns: u64) {
        let a = self.part.accounts.entry(account.into()).or_default();
        a.idem.insert(
            key.into(),
            IdemEntry {
                order_id: id,
                accept_seq: seq,
                created_ns: at_ns,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a key is found by its `&str` and reads back unchanged, kept inline up to the limit
    // and on the heap beyond it, multi-byte characters included.
    #[test]
    fn idem_keys_inline_and_heap() {
        let at_limit = "k".repeat(INLINE_KEY_MAX);
        let over = "k".repeat(INLINE_KEY_MAX + 1);
        let wide_at_limit = "é".repeat(INLINE_KEY_MAX / 2);
        let wide_over = "é".repeat(INLINE_KEY_MAX / 2 + 1);
        let keys = [
            "",
            "a",
            "123e4567-e89b-12d3-a456-426614174000",
            &at_limit,
            &over,
            "ключ-✓",
            &wide_at_limit,
            &wide_over,
        ];
        let mut m = HashMap::new();
        for (i, k) in keys.iter().enumerate() {
            assert!(m.insert(IdemKey::from(*k), i).is_none(), "{k}");
        }
        for (i, k) in keys.iter().enumerate() {
            assert_eq!(m.get(*k), Some(&i), "{k}");
            assert_eq!(IdemKey::from(*k).as_str(), *k);
        }
        assert!(!m.contains_key("k"));
        assert!(matches!(IdemKey::from(&*at_limit), IdemKey::Inline { .. }));
        assert!(matches!(
            IdemKey::from(&*wide_at_limit),
            IdemKey::Inline { .. }
        ));
        assert!(matches!(IdemKey::from(&*over), IdemKey::Heap(_)));
        assert!(std::mem::size_of::<IdemKey>() <= 40);
    }

    // Goal: a GC step removes expired keys (short and long), reports how many, and leaves
    // live ones answering replays.
    #[test]
    fn gc_step_reports_expired_keys() {
        const S: u64 = 1_000_000_000;
        let store = OrderStore::new(1, 10, 2, 1);
        let long = "x".repeat(100);
        {
            let mut p = store.lock("acc");
            p.restore_key("acc", "k1", OrderId::new(0, 1), 1, 0);
            p.restore_key("acc", &long, OrderId::new(0, 2), 2, 0);
            p.restore_key("acc", "k3", OrderId::new(0, 3), 3, 3 * S);
        }
        assert_eq!(store.gc_step(S), 0);
        let hit = store.lock("acc").idempotent("acc", &long, S);
        assert_eq!(hit.map(|h| h.accept_seq), Some(2));
        assert_eq!(store.gc_step(3 * S), 2);
        assert_eq!(store.gc_keys.load(Ordering::Relaxed), 2);
        let mut p = store.lock("acc");
        assert!(p.idempotent("acc", "k1", 3 * S).is_none());
        assert!(p.idempotent("acc", &long, 3 * S).is_none());
        assert_eq!(
            p.idempotent("acc", "k3", 3 * S).map(|h| h.accept_seq),
            Some(3)
        );
    }
}
