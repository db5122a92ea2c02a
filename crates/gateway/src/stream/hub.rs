//! The hub: one dispatcher, a replay log with per-scope rings, bounded subscriber queues.
//!
//! `publish` puts a small record on a bounded crossbeam queue (`try_send`, never blocks). One
//! dispatcher thread drains it in batches and, under the state lock, for each event: assigns
//! the next global id, appends the event to the replay log and the id to its account's and
//! order's rings, and `try_send`s an `Arc` of it to the queue of each subscriber of that
//! account and of that order (the fan-out; no other per-event work depends on the number of
//! subscribers). The SSE frame is rendered by the consumer that writes it, not here: most
//! events are never streamed (every order publishes two, whether or not anyone listens), and
//! the dispatcher is one thread for the whole gateway. `subscribe` takes the same lock to
//! compute its replay and register, so replay and live join without gap or duplicate.
//!
//! Memory is bounded by count and bytes wherever it can grow:
//! - the replay log holds at most `replay_max_events` events and `replay_max_bytes` bytes
//!   (data + key + [`EVENT_OVERHEAD`] each); evicting an event also removes its id from the
//!   front of its rings, so every ring entry is in the log, and a scope whose ring empties is
//!   forgotten (least recently updated first, by construction): tracked accounts and orders
//!   are each at most `replay_max_events`;
//! - rings are capped at `buffer_size` (account) and `order_buffer_size` (order) ids;
//! - the dispatch queue at `dispatch_queue_capacity` records;
//! - each subscriber's queue at `client_queue_capacity` events and `client_queue_max_bytes`
//!   frame bytes ([`Event::frame_size`]): a subscriber that would exceed either is cut off
//!   (never waited for);
//! - subscribers at `max_clients`.
//!
//! [`Filter::All`] (the operations console's `GET /stream?scope=all`, for `ops` tokens only)
//! follows every event of every account: its subscribers sit in one list the dispatcher feeds
//! after the account's and order's lists, and its replay reads the log itself (everything after
//! `Last-Event-ID` that is still in the log, or a resync once the log or a dispatch overflow
//! lost something after it). The other filters are untouched by it: an `Account` or `Order`
//! subscriber still only ever sees events keyed by its own account.
//!
//! What a client missed is never skipped silently:
//! - a ring that dropped events remembers the newest dropped id (`lost_upto`); a forgotten
//!   scope leaves its `lost_upto` in a small hashed table (`gone_*`) that a re-created scope
//!   starts from;
//! - a dispatch queue overflow marks the account's slot of a hashed table; the dispatcher,
//!   once it has consumed everything queued when it noticed, takes one id `L` for a loss marker,
//!   sends every live subscriber in a marked slot a `resync_required` event with id `L`, and
//!   remembers `L` for the slot, so a later reconnect from before `L` is answered with
//!   `resync_required` too (hash collisions can only cause extra resyncs, never fewer);
//! - ids start at the wall clock in µs, so ids keep increasing across restarts, and a
//!   `Last-Event-ID` from an earlier process (or from the future) is answered with a resync.

use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::Mutex;
use tokio::sync::mpsc;

use super::rings::Rings;
use crate::config::StreamSection;
use crate::metrics::{inc, sse::SseMetrics};

/// Bookkeeping bytes per event in the replay log beyond its data and key: the `Event` in its
/// `Arc` (96), the shared header of the data's `Bytes` (32), the log slot and two ring slots
/// (24), the spare capacity of the data's buffer, rounded up.
pub const EVENT_OVERHEAD: usize = 192;
/// An SSE frame's bytes beyond its name and data: `id: ` with up to 20 digits and a line
/// break, `event: ` and its line break, `data: `, and the closing blank line.
const FRAME_FIXED: usize = 4 + 20 + 1 + 7 + 1 + 6 + 2;
/// Slots of the table of dispatch-overflow losses, by account hash.
const LOSS_SLOTS: usize = 1024;
/// Events the dispatcher handles per lock hold (bounds how long `subscribe` can wait).
const BATCH_MAX: usize = 256;
/// Fixed seeds: publishers and the dispatcher must agree on slots.
const SEEDS: [u64; 4] = [
    0x5157_4954_4348_5944,
    0x9e37_79b9_7f4a_7c15,
    0x2545_f491_4f6c_dd1d,
    0x27d4_eb2f_1656_67c5,
];

/// What a subscription follows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// Every event of the account.
    Account(String),
    /// The events of one order of the account (events are keyed by both, so a subscriber can
    /// never see another account's order).
    Order { account: String, order_id: String },
    /// Every event of every account (`GET /stream?scope=all`): for operators only; the HTTP
    /// route checks the token's `ops` scope before subscribing.
    All,
}

impl Filter {
    /// The account followed; empty for [`Filter::All`] (no one account).
    pub fn account(&self) -> &str {
        match self {
            Filter::Account(a) => a,
            Filter::Order { account, .. } => account,
            Filter::All => "",
        }
    }

    /// `"account"`, `"order"` or `"all"`, the `scope` of `resync_required`.
    pub fn scope(&self) -> &'static str {
        match self {
            Filter::Account(_) => "account",
            Filter::Order { .. } => "order",
            Filter::All => "all",
        }
    }

    /// The account id, the order id, or `*` (all accounts): the `id` of `resync_required`.
    pub fn scope_id(&self) -> &str {
        match self {
            Filter::Account(a) => a,
            Filter::Order { order_id, .. } => order_id,
            Filter::All => "*",
        }
    }

    /// The REST endpoint a client re-syncs from; none for [`Filter::All`] (there is no
    /// all-accounts events endpoint: the console re-reads what it shows and continues live).
    pub fn events_endpoint(&self) -> Option<String> {
        match self {
            Filter::Account(a) => Some(format!("/accounts/{a}/events")),
            Filter::Order { order_id, .. } => Some(format!("/orders/{order_id}/events")),
            Filter::All => None,
        }
    }

    fn kind(&self) -> Kind {
        match self {
            Filter::Account(_) => Kind::Account,
            Filter::Order { .. } => Kind::Order,
            Filter::All => Kind::All,
        }
    }
}

/// Which subscriber list a filter's subscription sits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Account,
    Order,
    All,
}

/// One published event, shared by the log, the rings' subscribers and their queues.
pub struct Event {
    /// Global, monotonically increasing.
    pub id: u64,
    pub name: &'static str,
    /// The event's JSON, as published.
    pub data: Bytes,
    /// Monotonic ns of the `publish` call (for the delivery delay).
    pub published_mono_ns: u64,
    key: ScopeKey,
}

impl Event {
    pub fn account(&self) -> &str {
        self.key.account()
    }

    pub fn order_id(&self) -> Option<&str> {
        self.key.order()
    }

    /// `id: <id>\nevent: <name>\ndata: <json>\n\n`, rendered for the connection that writes
    /// it (a copy of the data, ~300 bytes: cheaper than keeping a second copy of every event
    /// in the replay log for the few that are streamed).
    pub fn frame(&self) -> Bytes {
        Bytes::from(render_frame(Some(self.id), self.name, &self.data))
    }

    /// What the event's frame counts against a subscriber's `client_queue_max_bytes`: its
    /// length, give or take the id's digits and the extra `data: ` prefixes of multi-line data.
    pub fn frame_size(&self) -> usize {
        self.data.len() + self.name.len() + FRAME_FIXED
    }

    fn cost(&self) -> usize {
        self.data.len() + self.key.0.len() + EVENT_OVERHEAD
    }

    /// Whether the event belongs to an `Account` or `Order` subscription with map key `key`.
    fn in_scope(&self, filter: &Filter, key: &str) -> bool {
        match filter {
            Filter::Account(a) => self.account() == a,
            Filter::Order { .. } => &*self.key.0 == key,
            Filter::All => true,
        }
    }
}

/// Account and optional order in one allocation: 8 hex digits of the account's length, the
/// account, the order id. The whole key names an order scope; `account()` an account scope.
#[derive(Clone, PartialEq, Eq, Hash)]
struct ScopeKey(Box<str>);

impl ScopeKey {
    fn new(account: &str, order_id: Option<&str>) -> ScopeKey {
        let mut s = Vec::with_capacity(8 + account.len() + order_id.map_or(0, str::len));
        switchyard_protocol::json::push_hex(&mut s, account.len() as u64, 8);
        s.extend_from_slice(account.as_bytes());
        if let Some(o) = order_id {
            s.extend_from_slice(o.as_bytes());
        }
        // Hex digits and two `str`s: valid UTF-8 by construction.
        ScopeKey(String::from_utf8(s).unwrap_or_default().into_boxed_str())
    }

    fn account_len(&self) -> usize {
        usize::from_str_radix(&self.0[..8], 16).unwrap_or(0)
    }

    fn account(&self) -> &str {
        &self.0[8..8 + self.account_len()]
    }

    fn order(&self) -> Option<&str> {
        let rest = &self.0[8 + self.account_len()..];
        (!rest.is_empty()).then_some(rest)
    }
}

/// What a subscription yields.
pub enum Delivery {
    /// An event from the replay rings (after `Last-Event-ID`).
    Replayed(Arc<Event>),
    /// A live event.
    Live(Arc<Event>),
    /// A message without an id: `resync_required` on reconnect, or the last message of a
    /// subscriber that was cut off.
    Notice { name: &'static str, data: Bytes },
}

/// Why `subscribe` refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscribeError {
    /// `max_clients` subscriptions are open (503 `TOO_MANY_STREAMS`).
    TooMany,
    /// The server is shutting down.
    Closed,
}

/// Limits copied from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub account_ring: usize,
    pub order_ring: usize,
    pub dispatch_queue: usize,
    pub client_queue: usize,
    pub client_queue_bytes: usize,
    pub max_clients: usize,
    pub log_events: usize,
    pub log_bytes: usize,
}

impl Limits {
    pub fn from_config(c: &StreamSection) -> Limits {
        Limits {
            account_ring: c.buffer_size.max(1),
            order_ring: c.order_buffer_size.max(1),
            dispatch_queue: c.dispatch_queue_capacity.max(1),
            client_queue: c.client_queue_capacity.max(1),
            client_queue_bytes: c.client_queue_max_bytes.max(1),
            max_clients: c.max_clients,
            log_events: c.replay_max_events.max(1),
            log_bytes: c.replay_max_bytes.max(1),
        }
    }
}

/// A publish call on its way to the dispatcher.
struct Pending {
    key: ScopeKey,
    name: &'static str,
    data: Bytes,
    at: u64,
}

/// Publishes events and hands out subscriptions. See the module documentation.
pub struct Hub {
    tx: Sender<Pending>,
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    metrics: Arc<SseMetrics>,
    limits: Limits,
    hasher: ahash::RandomState,
    /// Set by a publisher whose event did not fit the dispatch queue.
    loss_pending: AtomicBool,
    loss_slots: Box<[AtomicBool]>,
    clients: AtomicUsize,
    /// Tests: every scope gets the same hash, so all of them share one ring per kind.
    #[cfg(test)]
    collide: AtomicBool,
}

impl Shared {
    fn loss_slot(&self, account: &str) -> usize {
        (self.hasher.hash_one(account) % LOSS_SLOTS as u64) as usize
    }

    /// The key of a scope's ring: the hash of the account, or of the order's [`ScopeKey`].
    fn scope_hash(&self, key: &str) -> u64 {
        #[cfg(test)]
        if self.collide.load(Ordering::Relaxed) {
            return 7;
        }
        self.hasher.hash_one(key)
    }
}

/// One subscriber's side shared with the dispatcher.
#[derive(Default)]
struct SubShared {
    /// Frame bytes queued and not yet taken by the consumer.
    queued_bytes: AtomicUsize,
    /// Set (before the sender is dropped) when the dispatcher cut the subscriber off.
    cut_off: AtomicBool,
    /// The oldest id still buffered for the subscriber's scope when it was cut off.
    cut_oldest: AtomicU64,
}

/// A registered subscriber, as the dispatcher sees it.
struct Sub {
    id: u64,
    tx: mpsc::Sender<Arc<Event>>,
    shared: Arc<SubShared>,
}

type Map<V> = HashMap<Box<str>, V, ahash::RandomState>;

/// Everything the dispatcher and `subscribe` share, behind one lock.
struct State {
    /// The first id of this process.
    base_id: u64,
    next_id: u64,
    closed: bool,
    log: VecDeque<Arc<Event>>,
    log_bytes: usize,
    /// The ids of each scope's events in the log (every ring entry is in the log).
    accounts: Rings,
    orders: Rings,
    /// Per loss slot: the id of the latest loss marker (events before it may be missing).
    loss_mark: Box<[u64]>,
    account_subs: Map<Vec<Sub>>,
    order_subs: Map<Vec<Sub>>,
    /// Subscribers of [`Filter::All`].
    all_subs: Vec<Sub>,
    /// The newest id evicted from the log (0 = none): an `All` replay from before it resyncs.
    log_lost_upto: u64,
    /// The id of the latest dispatch-overflow loss marker, whatever its accounts (0 = none).
    last_loss_mark: u64,
    next_sub: u64,
}

impl Hub {
    /// Builds the hub and starts its dispatcher thread (which ends when the hub is dropped).
    pub fn new(cfg: &StreamSection, metrics: Arc<SseMetrics>) -> Hub {
        let (hub, dispatcher) = Hub::unstarted(Limits::from_config(cfg), metrics);
        std::thread::Builder::new()
            .name("sse-dispatch".into())
            .spawn(move || {
                crate::sched::background();
                dispatcher.run()
            })
            .expect("spawning the SSE dispatcher thread");
        hub
    }

    /// The hub and its dispatcher, not yet running (tests and the criterion benchmark drive
    /// it step by step).
    #[doc(hidden)]
    pub fn unstarted(limits: Limits, metrics: Arc<SseMetrics>) -> (Hub, Dispatcher) {
        let (tx, rx) = crossbeam_channel::bounded(limits.dispatch_queue);
        let base_id = crate::clock::wall_ns() / 1_000;
        let hasher = ahash::RandomState::with_seeds(SEEDS[0], SEEDS[1], SEEDS[2], SEEDS[3]);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                base_id,
                next_id: base_id,
                closed: false,
                log: VecDeque::new(),
                log_bytes: 0,
                accounts: Rings::new(limits.account_ring),
                orders: Rings::new(limits.order_ring),
                loss_mark: vec![0; LOSS_SLOTS].into_boxed_slice(),
                account_subs: Map::default(),
                order_subs: Map::default(),
                all_subs: Vec::new(),
                log_lost_upto: 0,
                last_loss_mark: 0,
                next_sub: 1,
            }),
            metrics,
            limits,
            hasher,
            loss_pending: AtomicBool::new(false),
            loss_slots: (0..LOSS_SLOTS).map(|_| AtomicBool::new(false)).collect(),
            clients: AtomicUsize::new(0),
            #[cfg(test)]
            collide: AtomicBool::new(false),
        });
        let dispatcher = Dispatcher {
            rx,
            shared: shared.clone(),
            batch: Vec::with_capacity(BATCH_MAX),
            consumed: 0,
            marker_after: None,
            marker_slots: vec![false; LOSS_SLOTS],
        };
        (Hub { tx, shared }, dispatcher)
    }

    /// Never blocks and never allocates a lot: called from the journal writer thread and
    /// ingress tasks. One small allocation (account + order id) and a `try_send`; a full
    /// dispatch queue drops the event, counts it and makes sure the account's live and
    /// reconnecting subscribers get `resync_required`.
    pub fn publish(&self, account: &str, order_id: Option<&str>, name: &'static str, data: Bytes) {
        let p = Pending {
            key: ScopeKey::new(account, order_id),
            name,
            data,
            at: crate::clock::mono_ns(),
        };
        let m = &self.shared.metrics;
        match self.tx.try_send(p) {
            Ok(()) => inc(&m.published),
            Err(TrySendError::Full(_)) => {
                inc(&m.dropped);
                let slot = self.shared.loss_slot(account);
                self.shared.loss_slots[slot].store(true, Ordering::Relaxed);
                self.shared.loss_pending.store(true, Ordering::Release);
            }
            Err(TrySendError::Disconnected(_)) => inc(&m.dropped),
        }
    }

    /// Subscribes to `filter`. With `last_event_id` = `Some(n)`, n > 0: the events of the
    /// scope with id > n come first (exactly, from the rings), or, if some are no longer
    /// available, one `resync_required` notice; then live events. `None` or 0: live only.
    pub fn subscribe(
        &self,
        filter: Filter,
        last_event_id: Option<u64>,
    ) -> Result<Subscription, SubscribeError> {
        let sh = &self.shared;
        if sh.clients.fetch_add(1, Ordering::AcqRel) >= sh.limits.max_clients {
            sh.clients.fetch_sub(1, Ordering::AcqRel);
            inc(&sh.metrics.refused);
            return Err(SubscribeError::TooMany);
        }
        let kind = filter.kind();
        let slot = ClientSlot { shared: sh.clone() };
        let (tx, rx) = mpsc::channel(sh.limits.client_queue);
        let sub_shared = Arc::new(SubShared::default());
        let map_key: Box<str> = match &filter {
            Filter::Account(a) => a.as_str().into(),
            Filter::Order { account, order_id } => ScopeKey::new(account, Some(order_id)).0,
            Filter::All => "*".into(),
        };
        let mut st = sh.state.lock();
        if st.closed {
            return Err(SubscribeError::Closed);
        }
        let (prelude, position) = st.replay(sh, &filter, &map_key, last_event_id);
        let id = st.next_sub;
        st.next_sub += 1;
        let sub = Sub {
            id,
            tx,
            shared: sub_shared.clone(),
        };
        match kind {
            Kind::Account => st
                .account_subs
                .entry(map_key.clone())
                .or_default()
                .push(sub),
            Kind::Order => st.order_subs.entry(map_key.clone()).or_default().push(sub),
            Kind::All => st.all_subs.push(sub),
        }
        drop(st);
        client_gauge(&sh.metrics, kind).fetch_add(1, Ordering::Relaxed);
        Ok(Subscription {
            prelude,
            rx: Some(rx),
            shared: sub_shared,
            hub: sh.clone(),
            filter,
            map_key,
            id,
            last_id: position,
            finished: false,
            _slot: slot,
        })
    }

    /// Ends every subscription (their streams finish) and refuses new ones: graceful shutdown.
    pub fn close(&self) {
        let mut st = self.shared.state.lock();
        st.closed = true;
        st.account_subs.clear();
        st.order_subs.clear();
        st.all_subs.clear();
    }

    /// Records waiting for the dispatcher.
    pub fn dispatch_depth(&self) -> usize {
        self.tx.len()
    }

    /// Open subscriptions (SSE and WebSocket).
    pub fn clients(&self) -> usize {
        self.shared.clients.load(Ordering::Acquire)
    }

    /// The id the next event will get.
    pub fn next_id(&self) -> u64 {
        self.shared.state.lock().next_id
    }

    pub fn metrics(&self) -> &SseMetrics {
        &self.shared.metrics
    }

    pub fn limits(&self) -> Limits {
        self.shared.limits
    }
}

/// Holds one of the `max_clients` slots.
struct ClientSlot {
    shared: Arc<Shared>,
}

/// The `gateway_sse_clients` gauge a subscription counts in: `scope="order"` for order
/// streams, `scope="account"` for account streams and the operators' all-accounts streams.
fn client_gauge(m: &SseMetrics, kind: Kind) -> &AtomicU64 {
    match kind {
        Kind::Order => &m.clients_order,
        Kind::Account | Kind::All => &m.clients_account,
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        self.shared.clients.fetch_sub(1, Ordering::AcqRel);
    }
}

/// While events flow, the dispatcher polls the queue this often instead of blocking on it.
const NAP: std::time::Duration = std::time::Duration::from_micros(500);
/// After this long without events the dispatcher blocks (no idle CPU).
const IDLE_BLOCK_AFTER: std::time::Duration = std::time::Duration::from_millis(10);

enum Step {
    Dispatched,
    Empty,
    Closed,
}

/// The dispatcher: drains the publish queue. Runs on its own thread (`run`); tests and the
/// criterion benchmark call `step`.
#[doc(hidden)]
pub struct Dispatcher {
    rx: Receiver<Pending>,
    shared: Arc<Shared>,
    batch: Vec<Pending>,
    /// Records taken from the queue so far.
    consumed: u64,
    /// After a dispatch overflow: emit the loss marker once `consumed` reaches this (everything
    /// queued when the overflow was noticed has then got its id).
    marker_after: Option<u64>,
    marker_slots: Vec<bool>,
}

impl Dispatcher {
    /// The dispatcher thread. While events flow it naps between empty polls instead of
    /// blocking, so publishers never pay for waking it (a futex wake is a syscall on the
    /// journal writer's thread); after `IDLE_BLOCK_AFTER` without events it blocks.
    pub(crate) fn run(mut self) {
        let mut idle_since: Option<std::time::Instant> = None;
        loop {
            match self.next_batch(false) {
                Step::Dispatched => idle_since = None,
                Step::Closed => return,
                Step::Empty => {
                    let since = *idle_since.get_or_insert_with(std::time::Instant::now);
                    if since.elapsed() < IDLE_BLOCK_AFTER {
                        std::thread::sleep(NAP);
                    } else if let Step::Closed = self.next_batch(true) {
                        return;
                    } else {
                        idle_since = None;
                    }
                }
            }
        }
    }

    /// Handles one batch (tests and the benchmark drive the dispatcher with this). Blocks for
    /// the first record if `block`. False when there was nothing to do.
    #[doc(hidden)]
    pub fn step(&mut self, block: bool) -> bool {
        matches!(self.next_batch(block), Step::Dispatched)
    }

    fn next_batch(&mut self, block: bool) -> Step {
        let first = if block {
            self.rx.recv().map_err(|_| Step::Closed)
        } else {
            self.rx.try_recv().map_err(|e| match e {
                crossbeam_channel::TryRecvError::Empty => Step::Empty,
                crossbeam_channel::TryRecvError::Disconnected => Step::Closed,
            })
        };
        let first = match first {
            Ok(p) => p,
            Err(step) => return step,
        };
        self.batch.push(first);
        while self.batch.len() < BATCH_MAX {
            match self.rx.try_recv() {
                Ok(p) => self.batch.push(p),
                Err(_) => break,
            }
        }
        let sh = &*self.shared;
        let loss = sh.loss_pending.swap(false, Ordering::AcqRel);
        let mut st = sh.state.lock();
        if loss {
            for (i, s) in sh.loss_slots.iter().enumerate() {
                if s.swap(false, Ordering::Relaxed) {
                    self.marker_slots[i] = true;
                }
            }
            let after = self.consumed + (self.batch.len() + self.rx.len()) as u64;
            self.marker_after = Some(self.marker_after.map_or(after, |m| m.max(after)));
        }
        for p in self.batch.drain(..) {
            st.dispatch(sh, p);
            self.consumed += 1;
        }
        if self.marker_after.is_some_and(|m| self.consumed >= m) {
            st.emit_loss_marker(sh, &self.marker_slots);
            self.marker_slots.iter_mut().for_each(|s| *s = false);
            self.marker_after = None;
        }
        let m = &sh.metrics;
        m.log_events.store(st.log.len() as u64, Ordering::Relaxed);
        m.log_bytes.store(st.log_bytes as u64, Ordering::Relaxed);
        m.tracked_accounts
            .store(st.accounts.len() as u64, Ordering::Relaxed);
        m.tracked_orders
            .store(st.orders.len() as u64, Ordering::Relaxed);
        Step::Dispatched
    }
}

/// Renders an SSE frame: `id:` (if any), `event:`, one `data:` line per line of `data` (a
/// line ends at `\n`, `\r` or `\r\n`). Copies `data` in runs between line breaks; JSON from
/// our serializer has none, so that is one copy.
pub fn render_frame(id: Option<u64>, name: &str, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + name.len() + FRAME_FIXED);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let mut rest = data;
    while let Some(i) = memchr::memchr2(b'\n', b'\r', rest) {
        out.extend_from_slice(&rest[..i]);
        out.extend_from_slice(b"\ndata: ");
        let crlf = rest[i] == b'\r' && rest.get(i + 1) == Some(&b'\n');
        rest = &rest[i + 1 + usize::from(crlf)..];
    }
    out.extend_from_slice(rest);
    out.extend_from_slice(b"\n\n");
    out
}

/// The data of a `resync_required` (§2.5), plus `reason` when it is not a reconnect.
pub fn resync_data(
    filter: &Filter,
    last_event_id: Option<u64>,
    oldest_available: Option<u64>,
    reason: Option<&str>,
) -> Bytes {
    let mut v = serde_json::json!({
        "scope": filter.scope(),
        "id": filter.scope_id(),
        "lastEventId": last_event_id,
        "oldestAvailableId": oldest_available,
        "eventsEndpoint": filter.events_endpoint(),
    });
    if let Some(r) = reason {
        v["reason"] = serde_json::Value::from(r);
    }
    Bytes::from(serde_json::to_vec(&v).unwrap_or_default())
}

enum Push {
    Ok,
    CutOff,
    Closed,
}

/// Queues `ev` for one subscriber, or says why not.
fn push(sub: &Sub, ev: &Arc<Event>, limits: &Limits) -> Push {
    let size = ev.frame_size();
    let queued = sub.shared.queued_bytes.fetch_add(size, Ordering::AcqRel);
    if queued > 0 && queued + size > limits.client_queue_bytes {
        sub.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
        return Push::CutOff;
    }
    match sub.tx.try_send(ev.clone()) {
        Ok(()) => Push::Ok,
        Err(e) => {
            sub.shared.queued_bytes.fetch_sub(size, Ordering::AcqRel);
            match e {
                mpsc::error::TrySendError::Full(_) => Push::CutOff,
                mpsc::error::TrySendError::Closed(_) => Push::Closed,
            }
        }
    }
}

/// Delivers `ev` to every subscriber in `subs`, removing those cut off or gone.
fn fan_out(subs: &mut Vec<Sub>, ev: &Arc<Event>, oldest: u64, sh: &Shared) {
    let mut i = 0;
    while i < subs.len() {
        match push(&subs[i], ev, &sh.limits) {
            Push::Ok => i += 1,
            Push::CutOff => {
                let s = subs.swap_remove(i);
                s.shared.cut_oldest.store(oldest, Ordering::Relaxed);
                s.shared.cut_off.store(true, Ordering::Release);
                inc(&sh.metrics.slow_consumer_disconnects);
                // Dropping `s` drops the sender: the consumer wakes up and sees the flag.
            }
            Push::Closed => {
                subs.swap_remove(i);
            }
        }
    }
}

impl State {
    fn dispatch(&mut self, sh: &Shared, p: Pending) {
        let id = self.next_id;
        self.next_id += 1;
        let ev = Arc::new(Event {
            id,
            name: p.name,
            data: p.data,
            published_mono_ns: p.at,
            key: p.key,
        });
        inc(&sh.metrics.dispatched);
        self.log_bytes += ev.cost();
        self.log.push_back(ev.clone());

        let account = ev.key.account();
        let acct_oldest = self.accounts.push(sh.scope_hash(account), id);
        let order_oldest = ev
            .key
            .order()
            .map(|_| self.orders.push(sh.scope_hash(&ev.key.0), id));

        if let Some(subs) = self.account_subs.get_mut(account) {
            fan_out(subs, &ev, acct_oldest, sh);
            if subs.is_empty() {
                self.account_subs.remove(account);
            }
        }
        if let Some(oldest) = order_oldest {
            if let Some(subs) = self.order_subs.get_mut(&*ev.key.0) {
                fan_out(subs, &ev, oldest, sh);
                if subs.is_empty() {
                    self.order_subs.remove(&*ev.key.0);
                }
            }
        }
        if !self.all_subs.is_empty() {
            let oldest = self.log.front().map_or(id, |e| e.id);
            fan_out(&mut self.all_subs, &ev, oldest, sh);
        }
        self.evict(sh);
    }

    /// Drops the oldest events until the log is within its bounds.
    fn evict(&mut self, sh: &Shared) {
        while self.log.len() > sh.limits.log_events || self.log_bytes > sh.limits.log_bytes {
            let Some(e) = self.log.pop_front() else {
                break;
            };
            self.log_bytes -= e.cost();
            self.log_lost_upto = self.log_lost_upto.max(e.id);
            self.accounts.prune(sh.scope_hash(e.key.account()), e.id);
            if e.key.order().is_some() {
                self.orders.prune(sh.scope_hash(&e.key.0), e.id);
            }
        }
    }

    /// After a dispatch overflow: one id for the loss, remembered per marked slot and sent to
    /// every live subscriber whose account falls in a marked slot.
    fn emit_loss_marker(&mut self, sh: &Shared, slots: &[bool]) {
        let id = self.next_id;
        self.next_id += 1;
        for (i, _) in slots.iter().enumerate().filter(|(_, &s)| s) {
            self.loss_mark[i] = id;
        }
        self.last_loss_mark = id;
        let now = crate::clock::mono_ns();
        let marker = |filter: &Filter, oldest: u64| {
            let data = resync_data(filter, None, Some(oldest), Some("DISPATCH_OVERFLOW"));
            Arc::new(Event {
                id,
                name: "resync_required",
                data,
                published_mono_ns: now,
                key: ScopeKey::new(filter.account(), None),
            })
        };
        for (account, subs) in self.account_subs.iter_mut() {
            if slots[sh.loss_slot(account)] {
                let ev = marker(&Filter::Account(account.to_string()), id + 1);
                inc(&sh.metrics.resyncs);
                fan_out(subs, &ev, id + 1, sh);
            }
        }
        for (key, subs) in self.order_subs.iter_mut() {
            let key = ScopeKey(key.clone());
            if slots[sh.loss_slot(key.account())] {
                let filter = Filter::Order {
                    account: key.account().to_string(),
                    order_id: key.order().unwrap_or_default().to_string(),
                };
                inc(&sh.metrics.resyncs);
                fan_out(subs, &marker(&filter, id + 1), id + 1, sh);
            }
        }
        if !self.all_subs.is_empty() && slots.iter().any(|&s| s) {
            inc(&sh.metrics.resyncs);
            fan_out(
                &mut self.all_subs,
                &marker(&Filter::All, id + 1),
                id + 1,
                sh,
            );
        }
        self.account_subs.retain(|_, s| !s.is_empty());
        self.order_subs.retain(|_, s| !s.is_empty());
    }

    /// The prelude of a new subscription and the position it starts from (the id a client
    /// has seen everything up to, as far as this stream is concerned).
    fn replay(
        &self,
        sh: &Shared,
        filter: &Filter,
        map_key: &str,
        last: Option<u64>,
    ) -> (VecDeque<Delivery>, u64) {
        let live_from = self.next_id - 1;
        let Some(n) = last.filter(|&n| n > 0) else {
            return (VecDeque::new(), live_from);
        };
        let h = sh.scope_hash(map_key);
        let rings = match filter {
            Filter::Account(_) => &self.accounts,
            Filter::Order { .. } => &self.orders,
            Filter::All => return self.replay_all(sh, n, live_from),
        };
        let (ring, gone) = (rings.get(h), rings.gone(h));
        let lost = ring
            .map_or(gone, |r| r.lost_upto)
            .max(self.loss_mark[sh.loss_slot(filter.account())]);
        let unknown = n.saturating_add(1) < self.base_id || n > live_from;
        let mut out = VecDeque::new();
        if unknown || n < lost {
            let oldest = ring.and_then(|r| r.oldest()).unwrap_or(self.next_id);
            inc(&sh.metrics.resyncs);
            out.push_back(Delivery::Notice {
                name: "resync_required",
                data: resync_data(filter, Some(n), Some(oldest), None),
            });
            return (out, live_from);
        }
        if let Some(r) = ring {
            for id in r.after(n) {
                match self.log.binary_search_by_key(&id, |e| e.id) {
                    // A ring is shared by scopes whose hashes collide: deliver only this one's.
                    Ok(i) if self.log[i].in_scope(filter, map_key) => {
                        out.push_back(Delivery::Replayed(self.log[i].clone()))
                    }
                    Ok(_) => {}
                    // Every ring entry is in the log; if that ever failed, say so.
                    Err(_) => {
                        out.clear();
                        inc(&sh.metrics.resyncs);
                        out.push_back(Delivery::Notice {
                            name: "resync_required",
                            data: resync_data(filter, Some(n), r.oldest(), None),
                        });
                        return (out, live_from);
                    }
                }
            }
        }
        sh.metrics
            .replayed
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        (out, n)
    }

    /// The replay of a [`Filter::All`] subscription from `n`: every event after `n` from the
    /// log itself, or one resync if the log (or a dispatch overflow) lost any event after `n`.
    fn replay_all(&self, sh: &Shared, n: u64, live_from: u64) -> (VecDeque<Delivery>, u64) {
        let unknown = n.saturating_add(1) < self.base_id || n > live_from;
        let mut out = VecDeque::new();
        if unknown || n < self.log_lost_upto.max(self.last_loss_mark) {
            let oldest = self.log.front().map_or(self.next_id, |e| e.id);
            inc(&sh.metrics.resyncs);
            out.push_back(Delivery::Notice {
                name: "resync_required",
                data: resync_data(&Filter::All, Some(n), Some(oldest), None),
            });
            return (out, live_from);
        }
        let from = self.log.partition_point(|e| e.id <= n);
        out.extend(
            self.log
                .range(from..)
                .map(|e| Delivery::Replayed(e.clone())),
        );
        sh.metrics
            .replayed
            .fetch_add(out.len() as u64, Ordering::Relaxed);
        (out, n)
    }

    fn unregister(&mut self, kind: Kind, key: &str, id: u64) {
        let map = match kind {
            Kind::Order => &mut self.order_subs,
            Kind::Account => &mut self.account_subs,
            Kind::All => {
                self.all_subs.retain(|s| s.id != id);
                return;
            }
        };
        if let Some(subs) = map.get_mut(key) {
            subs.retain(|s| s.id != id);
            if subs.is_empty() {
                map.remove(key);
            }
        }
    }
}

/// A subscriber: the replay (or resync notice) first, then live events, until the hub closes
/// or the subscriber is cut off (then one last `resync_required` notice). Dropping it
/// unregisters it.
pub struct Subscription {
    prelude: VecDeque<Delivery>,
    rx: Option<mpsc::Receiver<Arc<Event>>>,
    shared: Arc<SubShared>,
    hub: Arc<Shared>,
    filter: Filter,
    map_key: Box<str>,
    id: u64,
    /// The newest id this stream has delivered (or started after).
    last_id: u64,
    finished: bool,
    _slot: ClientSlot,
}

impl Subscription {
    pub fn filter(&self) -> &Filter {
        &self.filter
    }

    /// The newest event id this subscription has yielded, or the position it started at: a
    /// client that reconnects with it as `Last-Event-ID` misses nothing.
    pub fn last_event_id(&self) -> u64 {
        self.last_id
    }

    /// True once the dispatcher cut this subscriber off for being too slow.
    pub fn was_cut_off(&self) -> bool {
        self.shared.cut_off.load(Ordering::Acquire)
    }

    pub async fn next(&mut self) -> Option<Delivery> {
        poll_fn(|cx| self.poll_next(cx)).await
    }

    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Delivery>> {
        if let Some(d) = self.prelude.pop_front() {
            if let Delivery::Replayed(e) = &d {
                self.last_id = e.id;
            }
            return Poll::Ready(Some(d));
        }
        if self.finished {
            return Poll::Ready(None);
        }
        if self.was_cut_off() {
            return Poll::Ready(Some(self.cut_off_notice()));
        }
        let Some(rx) = self.rx.as_mut() else {
            return Poll::Ready(None);
        };
        match rx.poll_recv(cx) {
            Poll::Ready(Some(ev)) => {
                self.shared
                    .queued_bytes
                    .fetch_sub(ev.frame_size(), Ordering::AcqRel);
                self.last_id = ev.id;
                Poll::Ready(Some(Delivery::Live(ev)))
            }
            Poll::Ready(None) if self.was_cut_off() => Poll::Ready(Some(self.cut_off_notice())),
            Poll::Ready(None) => {
                self.finished = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    /// The last message of a cut-off subscriber: what it has and where the scope's buffer
    /// starts, so it can reconnect with `Last-Event-ID` (or re-sync if that is gone too).
    /// Events still queued are discarded at once.
    fn cut_off_notice(&mut self) -> Delivery {
        self.finished = true;
        self.rx = None;
        inc(&self.hub.metrics.resyncs);
        Delivery::Notice {
            name: "resync_required",
            data: resync_data(
                &self.filter,
                Some(self.last_id),
                Some(self.shared.cut_oldest.load(Ordering::Relaxed)),
                Some("SLOW_CONSUMER"),
            ),
        }
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        let kind = self.filter.kind();
        self.hub
            .state
            .lock()
            .unregister(kind, &self.map_key, self.id);
        client_gauge(&self.hub.metrics, kind).fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
#[path = "hub_tests.rs"]
mod tests;
