//! State shared by ingress, engines, the journal listener and the monitor: sessions, accounts,
//! shards, kill switches. Hot-path fields are atomics; maps are read-mostly and consulted only
//! when a connection meets a session for the first time (see `principal`).

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};
use switchyard_auth::{Identity, Verifier};
use switchyard_core::risk::{AccountRisk, AccountRules, Reservation, RiskLimits};
use switchyard_core::NewOrder;
use switchyard_journal::{BatchBuf, JournalHandle};

use crate::config::Config;
use crate::confirm::ConfirmStore;
use crate::metrics::Metrics;
use crate::records::{KillCause, KillScope, KillSwitchChange};

/// A transport session (JWT `sub`): owns the sequence numbers and sticks to one shard.
#[derive(Debug)]
pub struct Session {
    pub id: Box<str>,
    /// Dense index used as the confirm-store key.
    pub idx: u32,
    pub shard: u16,
    /// Last sequence number handed out; the next order gets `assigned + 1`.
    pub assigned: AtomicU64,
    pub killed: AtomicBool,
}

/// A business account (`accountId`): risk state and its kill switch.
#[derive(Debug)]
pub struct Account {
    pub id: Box<str>,
    pub rules: AccountRules,
    pub risk: AccountRisk,
    pub killed: AtomicBool,
    /// This instance serves the account (`ACCOUNT_SHARDS_OWNED`); orders of others are 421.
    pub owned: bool,
}

/// The session and account a token resolves to.
#[derive(Debug)]
pub struct Principal {
    pub session: Arc<Session>,
    pub account: Arc<Account>,
}

/// One accepted order on its way to the engine.
pub struct OrderTask {
    pub session: Arc<Session>,
    pub account: Arc<Account>,
    pub seq: u64,
    pub order: NewOrder,
    pub received_at_ns: u64,
    pub received_mono_ns: u64,
    pub reservation: Reservation,
}

/// Records of the durable path (`/orders`) and of the venue sessions, encoded by whoever
/// decided them, journaled by the account's shard engine in arrival order.
pub struct DurableTask {
    pub records: Vec<(u16, Vec<u8>)>,
    /// What to do once durable; none for records whose effect is already applied (venue
    /// sessions apply reports at once and journal them behind).
    pub meta: Option<DurableMeta>,
}

/// What the journal listener needs to apply a durable-path task once it is durable.
pub struct DurableMeta {
    pub account: Arc<Account>,
    pub order_id: switchyard_core::OrderId,
    pub op: DurableOp,
    pub received_mono_ns: u64,
    /// The HTTP request waiting for the fdatasync (`local`), if any.
    pub waiter: Option<tokio::sync::oneshot::Sender<bool>>,
    /// The waiter wants the bus's acknowledgement too (`replicated`), not just the fdatasync.
    pub replicated: bool,
    /// Index of the task's first record in its journal batch (set by the engine), so that the
    /// listener knows the record's sequence number.
    pub record_offset: u32,
}

pub enum DurableOp {
    /// A new order; the reservation is given back if the journal fails.
    Accept(Reservation),
    Cancel,
    /// An amend; `reserved_qty` is the position reserved for a larger size.
    Amend(crate::orders::PendingAmend),
}

pub enum Task {
    Order(OrderTask),
    Durable(DurableTask),
    /// Drain marker for graceful shutdown: everything queued before it is journaled first.
    Stop,
}

/// What travels with each journal batch to the listener.
pub enum BatchMeta {
    Orders {
        shard: u16,
        orders: Vec<OrderMeta>,
    },
    Durable(Vec<DurableMeta>),
    Control {
        done: Option<tokio::sync::oneshot::Sender<bool>>,
    },
}

pub struct OrderMeta {
    pub session: Arc<Session>,
    pub account: Arc<Account>,
    pub seq: u64,
    pub reservation: Reservation,
}

pub type Recycled = (BatchBuf, Vec<OrderMeta>);

pub struct Shard {
    pub id: u16,
    pub tx: crossbeam_channel::Sender<Task>,
    pub capacity: usize,
    pub killed: AtomicBool,
    pub kill_cause: AtomicU8,
    pub killed_at_ms: AtomicU64,
    pub sessions: AtomicU32,
    pub confirm: Mutex<ConfirmStore>,
    /// Order-id counter of this shard (v3 engine batches and durable-path requests share it).
    pub next_order: AtomicU64,
    /// Monotonic ns at which the oldest order not yet durable was received; 0 = none. Kept
    /// exact by whoever changes the in-flight FIFO, so ingress reads the age with one load.
    pub oldest_inflight_mono: AtomicU64,
    /// Buffers the journal listener hands back to this shard's engine (no allocation per batch).
    pub recycle_tx: crossbeam_channel::Sender<Recycled>,
}

impl Shard {
    pub fn depth(&self) -> usize {
        self.tx.len()
    }

    pub fn utilization_pct(&self) -> u64 {
        (self.tx.len() as u64 * 100) / self.capacity as u64
    }

    /// Publishes the confirm store's oldest in-flight order (call with its lock held).
    pub fn publish_oldest(&self, c: &ConfirmStore) {
        self.oldest_inflight_mono
            .store(c.oldest_inflight_mono_ns().unwrap_or(0), Ordering::Relaxed);
    }

    /// Age of the oldest order not yet durable at `now_mono_ns`, µs.
    pub fn oldest_inflight_age_us(&self, now_mono_ns: u64) -> u64 {
        match self.oldest_inflight_mono.load(Ordering::Relaxed) {
            0 => 0,
            t => now_mono_ns.saturating_sub(t) / 1_000,
        }
    }
}

/// Messages to the monitor thread, which owns everything slow or rare.
pub enum Control {
    /// Journal a kill switch change (already applied in memory); answer when durable.
    Kill(KillSwitchChange, Option<tokio::sync::oneshot::Sender<bool>>),
    /// Orders the journal failed to write: journal their rejection.
    Rejected(Vec<(Arc<Session>, u64)>),
    /// A loss suspect found at ingress (queue full/closed).
    Loss(Arc<Session>),
    /// Shutdown: finish what was asked before this, then exit.
    Stop,
}

pub struct Gateway {
    pub cfg: Config,
    pub risk: RiskLimits,
    pub auth: Verifier,
    pub metrics: Metrics,
    pub shards: Vec<Shard>,
    pub global_killed: AtomicBool,
    /// False once shutdown began: ingress answers `V3_INGRESS_CLOSED`.
    pub accepting: AtomicBool,
    /// Records submitted to the journal and not yet durable or failed.
    pub journal_backlog: AtomicU64,
    pub journal: Mutex<Option<JournalHandle<BatchMeta>>>,
    pub control: crossbeam_channel::Sender<Control>,
    /// The durable path: orders, idempotency keys, its backpressure, `acceptSeq`.
    pub orders: crate::orders::OrderStore,
    pub durable_bp: crate::orders::Backpressure,
    /// Whether the journal can take new orders (disk reserve, failed commits).
    pub journal_health: crate::journal_health::JournalHealth,
    pub accept_seq: AtomicU64,
    /// Order event streams (SSE, WebSocket): `hub.publish(...)` from anywhere, never blocks.
    pub hub: crate::stream::Hub,
    /// The outbox's figures, and the `replicated` answers waiting for it.
    pub outbox_stats: Arc<crate::outbox::OutboxStats>,
    pub outbox_waiters: Arc<crate::outbox::Waiters>,
    /// Set while an outbox runs.
    pub outbox_live: AtomicBool,
    /// Account shards this instance serves (`[cluster]`).
    owned_shards: Vec<bool>,
    /// Venue sessions and routing (empty when `EXCHANGE_TRANSPORT` is `none`).
    pub venues: crate::venues::Venues,
    /// The audit chain's status and keys, when the chain is on (set once at startup).
    pub audit: crate::audit::AuditLink,
    pub started_ms: u64,
    /// Unique per gateway instance (several may share a test process).
    pub instance: u64,
    sessions: RwLock<HashMap<Box<str>, Arc<Session>>>,
    accounts: RwLock<HashMap<Box<str>, Arc<Account>>>,
    next_session_idx: AtomicU32,
}

static INSTANCES: AtomicU64 = AtomicU64::new(1);

/// (gateway instance, identity address) → the identity (held so the address cannot be reused
/// while the entry lives) and its principal.
type PrincipalCache = HashMap<(u64, usize), (Arc<Identity>, Arc<Principal>), ahash::RandomState>;

thread_local! {
    static PRINCIPALS: RefCell<PrincipalCache> = RefCell::new(HashMap::default());
}
const PRINCIPAL_CACHE_MAX: usize = 4_096;

impl Gateway {
    pub fn new(
        cfg: Config,
        risk: RiskLimits,
        auth: Verifier,
        shards: Vec<Shard>,
        control: crossbeam_channel::Sender<Control>,
    ) -> Gateway {
        let orders = crate::orders::OrderStore::new(
            cfg.orders.store_shards,
            cfg.orders.max_orders_in_memory,
            cfg.orders.idempotency_ttl_sec,
            cfg.orders.finished_retention_sec,
        );
        let durable_bp = crate::orders::Backpressure::new(&cfg.orders);
        let journal_health = crate::journal_health::JournalHealth::new(
            cfg.journal.disk_reserve_mb,
            cfg.journal.failure_hold_ms,
        );
        let metrics = Metrics::default();
        let hub = crate::stream::Hub::new(&cfg.stream, metrics.sse.clone());
        let venues = crate::venues::Venues::new(&cfg.venues);
        Gateway {
            venues,
            outbox_stats: Default::default(),
            outbox_waiters: Default::default(),
            outbox_live: AtomicBool::new(false),
            owned_shards: cfg.cluster.owned_set().unwrap_or_default(),
            cfg,
            risk,
            auth,
            metrics,
            hub,
            audit: Default::default(),
            shards,
            global_killed: AtomicBool::new(false),
            accepting: AtomicBool::new(true),
            journal_backlog: AtomicU64::new(0),
            journal: Mutex::new(None),
            orders,
            durable_bp,
            journal_health,
            accept_seq: AtomicU64::new(0),
            control,
            started_ms: crate::clock::wall_ms(),
            instance: INSTANCES.fetch_add(1, Ordering::Relaxed),
            sessions: RwLock::new(HashMap::new()),
            accounts: RwLock::new(HashMap::new()),
            next_session_idx: AtomicU32::new(0),
        }
    }

    /// The principal of a verified identity, cached per thread so that the steady state takes
    /// no lock.
    pub fn principal(&self, id: &Arc<Identity>) -> Arc<Principal> {
        let key = (self.instance, Arc::as_ptr(id) as usize);
        let hit = PRINCIPALS.with(|m| m.borrow().get(&key).map(|(_, p)| p.clone()));
        if let Some(p) = hit {
            return p;
        }
        let p = Arc::new(Principal {
            session: self.session(&id.session_id, None),
            account: self.account(&id.account_id),
        });
        PRINCIPALS.with(|m| {
            let mut m = m.borrow_mut();
            if m.len() >= PRINCIPAL_CACHE_MAX {
                m.clear();
            }
            m.insert(key, (id.clone(), p.clone()));
        });
        p
    }

    /// Finds or creates a session. New sessions go to the shard with the fewest sessions, ties
    /// to the shallower queue; replay passes the shard the journal recorded.
    pub fn session(&self, id: &str, shard: Option<u16>) -> Arc<Session> {
        if let Some(s) = self.sessions.read().get(id) {
            return s.clone();
        }
        let mut map = self.sessions.write();
        if let Some(s) = map.get(id) {
            return s.clone();
        }
        let shard = shard
            .filter(|&s| (s as usize) < self.shards.len())
            .unwrap_or_else(|| self.least_loaded_shard());
        self.shards[shard as usize]
            .sessions
            .fetch_add(1, Ordering::Relaxed);
        let s = Arc::new(Session {
            id: id.into(),
            idx: self.next_session_idx.fetch_add(1, Ordering::Relaxed),
            shard,
            assigned: AtomicU64::new(0),
            killed: AtomicBool::new(false),
        });
        map.insert(id.into(), s.clone());
        s
    }

    fn least_loaded_shard(&self) -> u16 {
        self.shards
            .iter()
            .min_by_key(|s| (s.sessions.load(Ordering::Relaxed), s.depth()))
            .map_or(0, |s| s.id)
    }

    pub fn account(&self, id: &str) -> Arc<Account> {
        if let Some(a) = self.accounts.read().get(id) {
            return a.clone();
        }
        let mut map = self.accounts.write();
        map.entry(id.into())
            .or_insert_with(|| {
                Arc::new(Account {
                    id: id.into(),
                    rules: self.risk.rules_for(id).clone(),
                    risk: AccountRisk::new(self.risk.position_slots()),
                    killed: AtomicBool::new(false),
                    owned: self.owned_shards[self.cfg.cluster.shard_of(id) as usize],
                })
            })
            .clone()
    }

    pub fn sessions_snapshot(&self) -> Vec<Arc<Session>> {
        self.sessions.read().values().cloned().collect()
    }

    pub fn accounts_snapshot(&self) -> Vec<Arc<Account>> {
        self.accounts.read().values().cloned().collect()
    }

    pub fn session_count(&self) -> usize {
        self.sessions.read().len()
    }

    /// Applies a kill switch change in memory. Returns false if the target does not exist.
    pub fn apply_kill(&self, k: &KillSwitchChange) -> bool {
        match k.scope {
            KillScope::Global => {
                self.global_killed.store(k.on, Ordering::Release);
                if k.on {
                    crate::metrics::inc(&self.metrics.global_killed);
                }
            }
            KillScope::Shard => {
                let Some(shard) = k.id.parse::<usize>().ok().and_then(|i| self.shards.get(i))
                else {
                    return false;
                };
                shard.kill_cause.store(k.cause as u8, Ordering::Relaxed);
                shard
                    .killed_at_ms
                    .store(crate::clock::wall_ms(), Ordering::Relaxed);
                let was = shard.killed.swap(k.on, Ordering::AcqRel);
                if k.on && !was {
                    crate::metrics::inc(&self.metrics.shard_killed);
                }
            }
            KillScope::Session => {
                let s = self.session(&k.id, None);
                let was = s.killed.swap(k.on, Ordering::AcqRel);
                if k.on && !was {
                    crate::metrics::inc(&self.metrics.session_killed);
                }
            }
            KillScope::Account => {
                self.account(&k.id).killed.store(k.on, Ordering::Release);
            }
        }
        true
    }

    /// Applies a change and asks the monitor to journal it (the hot path never blocks on this).
    pub fn kill(&self, scope: KillScope, id: String, cause: KillCause, note: &str) {
        let change = KillSwitchChange {
            scope,
            id,
            on: true,
            cause,
            by: "gateway".into(),
            note: note.into(),
        };
        self.apply_kill(&change);
        let _ = self.control.try_send(Control::Kill(change, None));
    }

    /// The shard that journals an account's durable-path records (stable for its lifetime,
    /// so one account's records stay in order).
    pub fn account_shard(&self, account: &str) -> u16 {
        let h = ahash::RandomState::with_seeds(7, 11, 13, 17).hash_one(account);
        (h % self.shards.len() as u64) as u16
    }

    /// An outbox is delivering the journal somewhere (Kafka, or the embedded back office):
    /// `Durability: replicated` can be answered.
    pub fn outbox_running(&self) -> bool {
        self.outbox_live.load(Ordering::Acquire)
    }

    pub fn journal_handle(&self) -> Option<JournalHandle<BatchMeta>> {
        self.journal.lock().clone()
    }
}
