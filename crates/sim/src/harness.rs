//! The step loop: a seeded RNG picks one action per step (a client request, an engine pump,
//! a message crossing the simulated network, a fault), the action runs through the real
//! components, and every invariant is checked before the next step.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use switchyard_core::risk::OrderInput;
use switchyard_core::{OrderEvent, OrderId, OrderStatus, OrderType, Side, TimeInForce, Transition};
use switchyard_gateway::config::Config;
use switchyard_gateway::orders::{self, AmendOutcome, CancelOutcome, Durability, Submitted};
use switchyard_gateway::records::{
    order_ref, parse_order_ref, OrderAccepted, OrderChange, VenueSent, KIND_CANCEL_REQUESTED,
    KIND_ORDER_ACCEPTED, KIND_ORDER_SENT, KIND_ORDER_UPDATED,
};
use switchyard_gateway::state::Gateway;
use switchyard_gateway::venues;
use switchyard_journal::audit::{self, Anchor, Auditor};
use switchyard_journal::{DurableWatch, FaultPlan, HEADER_LEN};
use switchyard_protocol::venue::{ExecStatus, FromVenue, Heartbeat, ToVenue};
use switchyard_venue_sim::inproc::{InProcVenue, LineKind, VenueOrder};
use switchyard_venue_sim::VenueConfig;
use tokio::sync::oneshot::error::TryRecvError;
use tokio::sync::oneshot::Receiver;

use crate::config::{Faults, SimConfig, Stats};
use crate::node::{FailedCommit, Node, Outcome};

/// The gateway identity the venues know.
pub const GATEWAY_ID: &str = "sim-gw";
/// The venues, in `SOR_VENUES` order (the gateway's link `i` talks to venue `i`).
pub const VENUES: [&str; 2] = ["simA", "simB"];
/// Symbols and the venues' starting reference prices (minor units).
pub const SYMBOLS: [(&str, u64); 2] = [("BTC", 6_000_000), ("ETH", 300_000)];
/// The simulated clock starts here (2023-11-14) and moves 1 ms per step.
const CLOCK_START_NS: u64 = 1_700_000_000_000_000_000;

/// A run that broke an invariant.
#[derive(Debug, Clone)]
pub struct SimFailure {
    pub seed: u64,
    pub step: u64,
    pub message: String,
    /// The last steps, oldest first.
    pub trace: Vec<String>,
    /// The run's files (journal, audit chain, venue logs), kept when `SIM_KEEP=1`.
    pub kept_dir: Option<PathBuf>,
}

impl std::fmt::Display for SimFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "simulation seed {} failed at step {}: {}",
            self.seed, self.step, self.message
        )?;
        writeln!(f, "last {} steps:", self.trace.len())?;
        for t in &self.trace {
            writeln!(f, "  {t}")?;
        }
        if let Some(d) = &self.kept_dir {
            writeln!(f, "files kept in {}", d.display())?;
        }
        write!(
            f,
            "rerun: SIM_SEED={} cargo test -p switchyard-sim --test seeds one_seed -- --nocapture",
            self.seed
        )
    }
}

/// A run that held every invariant.
#[derive(Debug, Clone)]
pub struct SimReport {
    pub seed: u64,
    pub stats: Stats,
    /// FNV-1a of the whole trace: two runs of one seed must agree.
    pub digest: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    symbol: &'static str,
    side: Side,
    order_type: OrderType,
    tif: TimeInForce,
    qty: u64,
    price: Option<u64>,
}

/// One idempotency key, as the client remembers it.
struct KeyState {
    key: String,
    account: usize,
    spec: Spec,
    /// Every order the gateway created for this key, oldest first.
    ids: Vec<u64>,
    /// The order the client was told is durable.
    acked: Option<u64>,
    /// The answer still awaited.
    pending: Option<(u64, Receiver<bool>)>,
}

/// What the gateway holds about one order, as seen between steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Obs {
    status: OrderStatus,
    filled: u64,
    qty: u64,
    amend_qty: Option<u64>,
    reserved: u64,
    symbol_idx: u16,
    sent: bool,
    acked: bool,
    durable: bool,
    cancel_pending: bool,
    venue: Option<usize>,
}

/// One order, as the harness tracks it.
struct OrderState {
    id: OrderId,
    key: usize,
    account: usize,
    spec: Spec,
    /// The client was told it is durable.
    acked: bool,
    /// The journal refused its record (the client was told so): it must be gone.
    rolled_back: bool,
    /// Its `OrderAccepted` record is durable in the journal (what replay must find).
    durable: bool,
    /// Its status and fills as the durable records say.
    truth: (OrderStatus, u64),
    /// Last observation in the current gateway incarnation.
    last: Option<Obs>,
    /// Counted once when a crash took it (never acknowledged).
    lost: bool,
    cancel_acked: bool,
    cancel_refused: bool,
    pending_cancel: Option<Receiver<bool>>,
    amend_acked: Option<u64>,
    amend_refused: bool,
    pending_amend: Option<(u64, Receiver<bool>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LinkState {
    Down,
    /// `LOGON` sent on this connection, `LOGON_ACK` not yet received.
    LoggingOn(u64),
    Up(u64),
}

impl LinkState {
    fn conn(self) -> Option<u64> {
        match self {
            LinkState::Down => None,
            LinkState::LoggingOn(c) | LinkState::Up(c) => Some(c),
        }
    }
}

/// The simulated network between the gateway's link `i` and venue `i`: two FIFO queues that
/// lose what is in them when the connection drops.
struct Link {
    state: LinkState,
    to_venue: VecDeque<ToVenue>,
    to_gw: VecDeque<FromVenue>,
    /// Per-connection number of the next gateway message (the session writer's counter).
    out_seq: u64,
    last_resend_step: u64,
}

struct VenueBox {
    cfg: VenueConfig,
    venue: InProcVenue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Action {
    NewOrder,
    Retry,
    Cancel,
    Amend,
    Pump,
    SessionSend,
    ToVenue,
    ToGateway,
    VenueHeartbeat,
    IdleTick,
    MmStep,
    Connect,
    Disconnect,
    Crash,
    VenueRestart,
}

type Check = Result<(), String>;

pub(crate) struct Sim {
    seed: u64,
    cfg: SimConfig,
    faults: Faults,
    rng: fastrand::Rng,
    dir: Option<tempfile::TempDir>,
    step: u64,
    now_ns: u64,
    node: Option<Node>,
    venues: Vec<VenueBox>,
    links: Vec<Link>,
    keys: Vec<KeyState>,
    orders: BTreeMap<u64, OrderState>,
    /// Keys and orders with an answer outstanding.
    pending_keys: Vec<usize>,
    pending_orders: Vec<u64>,
    trace: VecDeque<String>,
    digest: u64,
    stats: Stats,
    /// `SIM_TRACE=1`: every trace line goes to stderr as it happens.
    echo: bool,
    /// `SIM_WATCH=ord_…`: every change of that order goes to the trace.
    watch: Option<u64>,
}

fn account_name(i: usize) -> String {
    format!("acct-{i}")
}

fn fnv(h: u64, bytes: &[u8]) -> u64 {
    bytes.iter().fold(h, |h, b| {
        (h ^ *b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The gateway's configuration for a run whose files live in `dir`.
fn gateway_config(dir: &Path) -> Result<Config, String> {
    let journal = dir.join("journal");
    let env = [
        ("EXCHANGE_TRANSPORT", "tcp".to_string()),
        ("SOR_VENUES", VENUES.join(",")),
        // BTC goes to the better price of both venues (their TOB at logon), ETH to simB only.
        ("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simB".to_string()),
        ("GATEWAY_ID", GATEWAY_ID.to_string()),
        ("GATEWAY_JOURNAL_DIR", journal.display().to_string()),
        // Small segments: rolls happen often.
        ("GATEWAY_JOURNAL_SEGMENT_BYTES", "8192".to_string()),
        // The disk is simulated: what a crash keeps is decided by the harness.
        ("AUDIT_FDATASYNC", "false".to_string()),
        (
            "AUDIT_HMAC_KEY",
            "sim-audit-key-0123456789abcdef".to_string(),
        ),
        ("V3_SHARD_COUNT", "2".to_string()),
        ("ORDER_STORE_SHARDS", "4".to_string()),
        ("V3_RISK_MAX_ABS_POSITION_QTY", "400".to_string()),
        ("JWT_HS256_SECRET", "sim-secret".to_string()),
    ];
    Config::load(None, env.into_iter().map(|(k, v)| (k.to_string(), v)))
        .map_err(|e| format!("gateway configuration: {e}"))
}

fn venue_config(name: &str, dir: &Path, seed: u64) -> VenueConfig {
    let mut c = VenueConfig {
        name: name.to_string(),
        port: 0,
        state_dir: Some(dir.join("venues")),
        fsync: false,
        seed: Some(seed),
        ..VenueConfig::default()
    };
    c.mm.symbols = SYMBOLS
        .iter()
        .map(|(s, p)| {
            (
                switchyard_core::Symbol::parse(s.as_bytes()).expect("symbol"),
                *p,
            )
        })
        .collect();
    c
}

/// Whether the core's transition table can take an order from `from` to `to` (status,
/// filled, quantity) with some sequence of events: what one step may do to an order.
fn reachable(from: (OrderStatus, u64, u64), to: (OrderStatus, u64, u64)) -> bool {
    if from == to {
        return true;
    }
    let (_, f1, _) = from;
    let (_, f2, q2) = to;
    let events = [
        OrderEvent::Sent,
        OrderEvent::CancelRequested,
        OrderEvent::VenueAccepted,
        OrderEvent::Rejected,
        OrderEvent::CancelRejected,
        OrderEvent::Fill { filled_total: f2 },
        OrderEvent::Canceled { filled_total: f2 },
        OrderEvent::Canceled { filled_total: f1 },
        OrderEvent::Replaced { qty: q2 },
    ];
    let mut seen = vec![from];
    let mut queue = VecDeque::from([from]);
    while let Some((s, f, q)) = queue.pop_front() {
        for e in events {
            if let Ok(Transition::Moved { status, filled }) =
                switchyard_core::state::transition(s, f, q, e)
            {
                let q = match e {
                    OrderEvent::Replaced { qty } => qty,
                    _ => q,
                };
                let next = (status, filled, q);
                if next == to {
                    return true;
                }
                if !seen.contains(&next) {
                    seen.push(next);
                    queue.push_back(next);
                }
            }
        }
    }
    false
}

fn same_status(g: OrderStatus, v: ExecStatus) -> bool {
    matches!(
        (g, v),
        (OrderStatus::Sent, ExecStatus::Accepted)
            | (OrderStatus::PartiallyFilled, ExecStatus::PartiallyFilled)
            | (OrderStatus::Filled, ExecStatus::Filled)
            | (OrderStatus::Canceled, ExecStatus::Canceled)
            | (OrderStatus::Rejected, ExecStatus::Rejected)
    )
}

fn signed(side: Side, qty: u64) -> i64 {
    match side {
        Side::Buy => qty as i64,
        Side::Sell => -(qty as i64),
    }
}

/// A commit number drawn per commit with probability `p`: the first success of a geometric
/// draw, or none.
fn draw_commit(rng: &mut fastrand::Rng, p: f64) -> Option<u64> {
    if p <= 0.0 {
        return None;
    }
    let u = rng.f64().max(f64::MIN_POSITIVE);
    let k = (u.ln() / (1.0 - p).ln()).floor();
    (k < 1e9).then_some(k as u64 + 1)
}

impl Sim {
    pub fn new(seed: u64, cfg: SimConfig) -> Result<Sim, String> {
        let dir = tempfile::Builder::new()
            .prefix("switchyard-sim-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?;
        let mut rng = fastrand::Rng::with_seed(seed);
        let mut venues_v = Vec::new();
        for name in VENUES {
            let cfg = venue_config(name, dir.path(), rng.u64(..));
            let venue = InProcVenue::new(cfg.clone()).map_err(|e| format!("venue {name}: {e}"))?;
            venues_v.push(VenueBox { cfg, venue });
        }
        let links = VENUES
            .iter()
            .map(|_| Link {
                state: LinkState::Down,
                to_venue: VecDeque::new(),
                to_gw: VecDeque::new(),
                out_seq: 1,
                last_resend_step: 0,
            })
            .collect();
        let faults = cfg.faults.clone();
        let mut sim = Sim {
            seed,
            cfg,
            faults,
            rng,
            dir: Some(dir),
            step: 0,
            now_ns: CLOCK_START_NS,
            node: None,
            venues: venues_v,
            links,
            keys: Vec::new(),
            orders: BTreeMap::new(),
            pending_keys: Vec::new(),
            pending_orders: Vec::new(),
            trace: VecDeque::new(),
            digest: 0xcbf2_9ce4_8422_2325,
            stats: Stats::default(),
            echo: std::env::var("SIM_TRACE").as_deref() == Ok("1"),
            watch: std::env::var("SIM_WATCH")
                .ok()
                .and_then(|w| parse_order_ref(&w))
                .map(|id| id.0),
        };
        sim.start_gateway()?;
        Ok(sim)
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("run dir").path()
    }

    fn note(&mut self, line: String) {
        if self.echo {
            eprintln!("{line}");
        }
        self.digest = fnv(self.digest, line.as_bytes());
        self.digest = fnv(self.digest, b"\n");
        if self.trace.len() == self.cfg.trace_len {
            self.trace.pop_front();
        }
        self.trace.push_back(line);
    }

    fn gw(&self) -> Arc<Gateway> {
        self.node.as_ref().expect("gateway running").gw.clone()
    }

    fn failure(&mut self, message: String) -> SimFailure {
        let kept_dir = match std::env::var("SIM_KEEP").as_deref() {
            Ok("1") => self.dir.take().map(|d| d.keep()),
            _ => None,
        };
        SimFailure {
            seed: self.seed,
            step: self.step,
            message,
            trace: self.trace.iter().cloned().collect(),
            kept_dir,
        }
    }

    /// The whole run: random steps, then the settle phase and the convergence checks.
    pub fn run(mut self) -> Result<SimReport, SimFailure> {
        let steps = self.cfg.steps;
        for _ in 0..steps {
            self.step += 1;
            self.now_ns += 1_000_000;
            let r = self.one_step();
            if let Err(m) = r {
                return Err(self.failure(m));
            }
        }
        if let Err(m) = self.settle() {
            return Err(self.failure(m));
        }
        self.stats.steps = steps;
        let report = SimReport {
            seed: self.seed,
            stats: self.stats.clone(),
            digest: self.digest,
        };
        if let Some(node) = self.node.take() {
            if let Err(m) = node.crash() {
                return Err(self.failure(m));
            }
        }
        Ok(report)
    }

    fn one_step(&mut self) -> Check {
        let action = self.pick();
        self.act(action)?;
        self.poll_answers()?;
        self.check_step()?;
        if self.cfg.audit_every > 0 && self.step.is_multiple_of(self.cfg.audit_every) {
            self.audit_check()?;
        }
        Ok(())
    }

    fn pick(&mut self) -> Action {
        let w = &self.cfg.weights;
        let any_up = self
            .links
            .iter()
            .any(|l| matches!(l.state, LinkState::Up(_)));
        let any_down = self.links.iter().any(|l| l.state == LinkState::Down);
        let any_conn = self.links.iter().any(|l| l.state != LinkState::Down);
        let has_orders = !self.orders.is_empty();
        let table = [
            (Action::NewOrder, w.new_order, true),
            (Action::Retry, w.retry, !self.keys.is_empty()),
            (Action::Cancel, w.cancel, has_orders),
            (Action::Amend, w.amend, has_orders),
            (Action::Pump, w.pump, true),
            (Action::SessionSend, w.session_send, any_up),
            (Action::ToVenue, w.to_venue, any_conn),
            (Action::ToGateway, w.to_gateway, any_conn),
            (Action::VenueHeartbeat, w.venue_heartbeat, any_up),
            (Action::IdleTick, w.idle_tick, any_up),
            (Action::MmStep, w.mm_step, true),
            (Action::Connect, w.connect, any_down),
            (Action::Disconnect, w.disconnect, any_conn),
            (Action::Crash, w.crash, true),
            (Action::VenueRestart, w.venue_restart, true),
        ];
        let total: u32 = table.iter().filter(|t| t.2).map(|t| t.1).sum();
        let mut r = self.rng.u32(..total.max(1));
        for (a, weight, ok) in table {
            if !ok {
                continue;
            }
            if r < weight {
                return a;
            }
            r -= weight;
        }
        Action::Pump
    }

    fn act(&mut self, a: Action) -> Check {
        match a {
            Action::NewOrder => self.new_order(),
            Action::Retry => {
                let k = self.rng.usize(..self.keys.len());
                self.submit(k, true)
            }
            Action::Cancel => self.cancel(),
            Action::Amend => self.amend(),
            Action::Pump => self.pump(),
            Action::SessionSend => {
                let i = self.pick_link(|s| matches!(s, LinkState::Up(_)));
                let n = self.rng.u32(1..=4);
                self.session_send(i, n as usize);
                Ok(())
            }
            Action::ToVenue => {
                let i = self.pick_link(|s| s != LinkState::Down);
                self.deliver_to_venue(i);
                Ok(())
            }
            Action::ToGateway => {
                let i = self.pick_link(|s| s != LinkState::Down);
                self.deliver_to_gateway(i)
            }
            Action::VenueHeartbeat => {
                let i = self.pick_link(|s| matches!(s, LinkState::Up(_)));
                self.venue_heartbeat(i);
                Ok(())
            }
            Action::IdleTick => {
                let i = self.pick_link(|s| matches!(s, LinkState::Up(_)));
                self.idle_tick(i);
                Ok(())
            }
            Action::MmStep => {
                let i = self.rng.usize(..self.venues.len());
                self.venues[i].venue.mm_step();
                self.collect(i);
                self.note(format!("#{} mm step at {}", self.step, VENUES[i]));
                Ok(())
            }
            Action::Connect => {
                let i = self.pick_link(|s| s == LinkState::Down);
                self.connect(i);
                Ok(())
            }
            Action::Disconnect => {
                let i = self.pick_link(|s| s != LinkState::Down);
                self.stats.disconnects += 1;
                self.note(format!("#{} FAULT disconnect {}", self.step, VENUES[i]));
                self.drop_link(i);
                Ok(())
            }
            Action::Crash => {
                self.note(format!("#{} FAULT gateway crash", self.step));
                self.crash(None)
            }
            Action::VenueRestart => {
                let i = self.rng.usize(..self.venues.len());
                self.venue_restart(i)
            }
        }
    }

    /// A random link whose state passes `f` (the caller made sure one does).
    fn pick_link(&mut self, f: impl Fn(LinkState) -> bool) -> usize {
        let ok: Vec<usize> = (0..self.links.len())
            .filter(|&i| f(self.links[i].state))
            .collect();
        ok[self.rng.usize(..ok.len())]
    }

    // ---- the client ---------------------------------------------------------------------------

    fn new_order(&mut self) -> Check {
        let rng = &mut self.rng;
        let (symbol, reference) = SYMBOLS[usize::from(rng.u8(..10) >= 6)];
        let side = if rng.bool() { Side::Buy } else { Side::Sell };
        let market = rng.u8(..100) < 12;
        let (order_type, tif, price) = if market {
            (OrderType::Market, TimeInForce::Ioc, None)
        } else {
            let bps = rng.i64(-25..=25);
            let price = (reference as i64 + reference as i64 * bps / 10_000) as u64;
            let tif = if rng.u8(..100) < 15 {
                TimeInForce::Ioc
            } else {
                TimeInForce::Gtc
            };
            (OrderType::Limit, tif, Some(price))
        };
        let spec = Spec {
            symbol,
            side,
            order_type,
            tif,
            qty: rng.u64(1..=60),
            price,
        };
        let account = rng.usize(..self.cfg.accounts);
        let k = self.keys.len();
        self.keys.push(KeyState {
            key: format!("key-{k}"),
            account,
            spec,
            ids: Vec::new(),
            acked: None,
            pending: None,
        });
        self.submit(k, false)
    }

    fn exists(&self, account: usize, id: u64) -> bool {
        let gw = self.gw();
        let name = account_name(account);
        let part = gw.orders.lock(&name);
        part.get(&name, OrderId(id)).is_some()
    }

    fn submit(&mut self, k: usize, retry: bool) -> Check {
        let gw = self.gw();
        let (key, account, spec) = {
            let ks = &self.keys[k];
            (ks.key.clone(), ks.account, ks.spec)
        };
        let acct = gw.account(&account_name(account));
        let input = OrderInput {
            symbol: spec.symbol.as_bytes(),
            side: Some(spec.side),
            order_type: spec.order_type,
            time_in_force: spec.tif,
            qty: spec.qty,
            price: spec.price,
            expire_at_ms: None,
        };
        self.stats.orders_submitted += 1;
        let what = if retry { "retry" } else { "new" };
        let r = orders::submit(
            &gw,
            &acct,
            &input,
            &key,
            None,
            Durability::Local,
            self.now_ns,
            self.now_ns,
        );
        match r {
            Ok(Submitted::Created(c)) => {
                let id = c.order_id.0;
                if self.orders.contains_key(&id) {
                    return Err(format!(
                        "order id {} handed out twice (key {key})",
                        order_ref(c.order_id)
                    ));
                }
                if let Some(a) = self.keys[k].acked {
                    return Err(format!(
                        "DUPLICATE: key {key} of acknowledged order {} created another order {}",
                        order_ref(OrderId(a)),
                        order_ref(c.order_id)
                    ));
                }
                let prev: Vec<u64> = self.keys[k].ids.clone();
                for p in prev {
                    if self.exists(account, p) {
                        return Err(format!(
                            "DUPLICATE: key {key} has two live orders, {} and {}",
                            order_ref(OrderId(p)),
                            order_ref(c.order_id)
                        ));
                    }
                }
                let Some(rx) = c.durable else {
                    return Err("a local-durability order came without a waiter".into());
                };
                self.orders.insert(
                    id,
                    OrderState {
                        id: c.order_id,
                        key: k,
                        account,
                        spec,
                        acked: false,
                        rolled_back: false,
                        durable: false,
                        truth: (OrderStatus::Accepted, 0),
                        last: None,
                        lost: false,
                        cancel_acked: false,
                        cancel_refused: false,
                        pending_cancel: None,
                        amend_acked: None,
                        amend_refused: false,
                        pending_amend: None,
                    },
                );
                let ks = &mut self.keys[k];
                ks.ids.push(id);
                ks.pending = Some((id, rx));
                self.pending_keys.push(k);
                self.stats.orders_created += 1;
                let s = format!(
                    "#{} {what} {key} {} {:?} {} {:?}@{:?} {:?} -> created {}",
                    self.step,
                    account_name(account),
                    spec.side,
                    spec.symbol,
                    spec.qty,
                    spec.price,
                    spec.tif,
                    order_ref(c.order_id)
                );
                self.note(s);
            }
            Ok(Submitted::Existing(hit)) => {
                let id = hit.order_id.0;
                let ks = &self.keys[k];
                if !ks.ids.contains(&id) {
                    return Err(format!(
                        "DUPLICATE: key {key} answered with {}, an order of another key",
                        order_ref(hit.order_id)
                    ));
                }
                if ks.acked.is_some_and(|a| a != id) {
                    return Err(format!(
                        "key {key} answered with {} instead of its acknowledged order",
                        order_ref(hit.order_id)
                    ));
                }
                self.note(format!(
                    "#{} {what} {key} -> existing {}",
                    self.step,
                    order_ref(hit.order_id)
                ));
            }
            Err(reason) => {
                self.stats.orders_refused += 1;
                self.note(format!("#{} {what} {key} -> refused {reason:?}", self.step));
            }
        }
        Ok(())
    }

    /// A random order the gateway holds now (`None`: none found in a few tries).
    fn random_live_order(&mut self) -> Option<(u64, usize)> {
        let ids: Vec<(u64, usize)> = self
            .orders
            .values()
            .filter(|o| o.last.is_some())
            .map(|o| (o.id.0, o.account))
            .collect();
        if ids.is_empty() {
            return None;
        }
        Some(ids[self.rng.usize(..ids.len())])
    }

    fn cancel(&mut self) -> Check {
        let Some((id, account)) = self.random_live_order() else {
            return Ok(());
        };
        let gw = self.gw();
        let acct = gw.account(&account_name(account));
        let r = orders::cancel(&gw, &acct, OrderId(id));
        let what = match r {
            Ok(CancelOutcome::Requested(rx)) => {
                if let Some(o) = self.orders.get_mut(&id) {
                    o.pending_cancel = Some(rx);
                }
                self.pending_orders.push(id);
                "requested".to_string()
            }
            Ok(other) => format!("{other:?}"),
            Err(reason) => format!("refused {reason:?}"),
        };
        self.note(format!(
            "#{} cancel {} -> {what}",
            self.step,
            order_ref(OrderId(id))
        ));
        Ok(())
    }

    fn amend(&mut self) -> Check {
        let Some((id, account)) = self.random_live_order() else {
            return Ok(());
        };
        let Some(obs) = self.orders.get(&id).and_then(|o| o.last) else {
            return Ok(());
        };
        let qty = self.rng.u64(obs.filled + 1..=obs.qty + 20);
        let gw = self.gw();
        let acct = gw.account(&account_name(account));
        let r = orders::amend(&gw, &acct, OrderId(id), Some(qty), None);
        let what = match r {
            Ok(AmendOutcome::Requested(rx)) => {
                if let Some(o) = self.orders.get_mut(&id) {
                    o.pending_amend = Some((qty, rx));
                }
                self.pending_orders.push(id);
                "requested".to_string()
            }
            Ok(AmendOutcome::NotFound) => "not found".to_string(),
            Err(reason) => format!("refused {reason:?}"),
        };
        self.note(format!(
            "#{} amend {} qty {qty} -> {what}",
            self.step,
            order_ref(OrderId(id))
        ));
        Ok(())
    }

    /// Reads every answer that arrived (durable, failed, or lost with a crash).
    fn poll_answers(&mut self) -> Check {
        let mut still = Vec::new();
        for k in std::mem::take(&mut self.pending_keys) {
            let Some((id, mut rx)) = self.keys[k].pending.take() else {
                continue;
            };
            match rx.try_recv() {
                Ok(true) => {
                    let o = self.orders.get_mut(&id).expect("tracked order");
                    if !o.durable {
                        return Err(format!(
                            "{} acknowledged durable before its record was durable",
                            order_ref(o.id)
                        ));
                    }
                    o.acked = true;
                    self.keys[k].acked = Some(id);
                    self.stats.orders_acked_durable += 1;
                }
                Ok(false) => {
                    let o = self.orders.get_mut(&id).expect("tracked order");
                    if o.durable {
                        return Err(format!(
                            "{} answered not durable although its record is durable",
                            order_ref(o.id)
                        ));
                    }
                    o.rolled_back = true;
                }
                Err(TryRecvError::Empty) => {
                    self.keys[k].pending = Some((id, rx));
                    still.push(k);
                }
                Err(TryRecvError::Closed) => {}
            }
        }
        self.pending_keys = still;
        let mut still = Vec::new();
        for id in std::mem::take(&mut self.pending_orders) {
            let Some(o) = self.orders.get_mut(&id) else {
                continue;
            };
            let mut keep = false;
            if let Some(mut rx) = o.pending_cancel.take() {
                match rx.try_recv() {
                    Ok(true) => {
                        o.cancel_acked = true;
                        o.cancel_refused = false;
                        self.stats.cancels_acked += 1;
                    }
                    Ok(false) | Err(TryRecvError::Closed) => {}
                    Err(TryRecvError::Empty) => {
                        o.pending_cancel = Some(rx);
                        keep = true;
                    }
                }
            }
            if let Some((q, mut rx)) = o.pending_amend.take() {
                match rx.try_recv() {
                    Ok(true) => {
                        o.amend_acked = Some(q);
                        o.amend_refused = false;
                        self.stats.amends_acked += 1;
                    }
                    Ok(false) | Err(TryRecvError::Closed) => {}
                    Err(TryRecvError::Empty) => {
                        o.pending_amend = Some((q, rx));
                        keep = true;
                    }
                }
            }
            if keep {
                still.push(id);
            }
        }
        self.pending_orders = still;
        Ok(())
    }

    // ---- the journal ------------------------------------------------------------------------

    /// Folds durable records into what replay must find.
    fn absorb(&mut self, records: &[(u16, Vec<u8>)]) -> Check {
        for (kind, p) in records {
            match *kind {
                KIND_ORDER_ACCEPTED => {
                    let o = OrderAccepted::decode(p).map_err(|e| e.to_string())?;
                    let Some(st) = self.orders.get_mut(&o.order_id.0) else {
                        return Err(format!(
                            "journaled {} that no client submitted",
                            order_ref(o.order_id)
                        ));
                    };
                    st.durable = true;
                }
                KIND_ORDER_SENT => {
                    let v = VenueSent::decode(*kind, p).map_err(|e| e.to_string())?;
                    if let Some(st) = self.orders.get_mut(&v.order_id.0) {
                        if st.truth.0 == OrderStatus::Accepted {
                            st.truth.0 = OrderStatus::Sent;
                        }
                    }
                }
                KIND_CANCEL_REQUESTED | KIND_ORDER_UPDATED => {
                    // A cancel request and a final status hold as recorded; a live status
                    // only says how much is filled (the reports decide the rest).
                    let c = OrderChange::decode(*kind, p).map_err(|e| e.to_string())?;
                    if let Some(st) = self.orders.get_mut(&c.order_id.0) {
                        let (s, f) = st.truth;
                        if s.is_final() {
                        } else if *kind == KIND_CANCEL_REQUESTED || c.status.is_final() {
                            st.truth = (c.status, f.max(c.filled));
                        } else if c.filled > f {
                            let s = match s {
                                OrderStatus::CancelRequested => s,
                                _ => OrderStatus::PartiallyFilled,
                            };
                            st.truth = (s, c.filled);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn outcomes(&mut self, outs: Vec<Outcome>) -> Check {
        for o in outs {
            self.stats.commits += 1;
            match o {
                Outcome::Durable {
                    first_seq, records, ..
                } => {
                    self.stats.records_durable += records.len() as u64;
                    self.note(format!(
                        "#{} commit seq {first_seq}+{} durable",
                        self.step,
                        records.len()
                    ));
                    self.absorb(&records)?;
                }
                Outcome::Failed { first_seq, .. } => {
                    let sync = self
                        .node
                        .as_ref()
                        .and_then(|n| n.failed.as_ref())
                        .is_some_and(|f| f.sync_failed);
                    if sync {
                        self.stats.fsync_failures += 1;
                    } else {
                        self.stats.write_failures += 1;
                    }
                    let what = if sync { "fdatasync" } else { "write" };
                    self.note(format!(
                        "#{} FAULT commit seq {first_seq} failed ({what})",
                        self.step
                    ));
                }
            }
        }
        Ok(())
    }

    fn pump(&mut self) -> Check {
        let node = self.node.as_mut().expect("gateway running");
        if node.queued() == 0 {
            self.note(format!("#{} pump: idle", self.step));
            return Ok(());
        }
        if self.rng.f64() < self.faults.torn_commit {
            return self.torn_crash();
        }
        let outs = node.pump(false, false)?;
        self.outcomes(outs)
    }

    /// The process dies while a commit is being written: the commit reached the disk only
    /// up to a random offset (maybe whole, maybe not at all), and nobody was told anything.
    fn torn_crash(&mut self) -> Check {
        let node = self.node.as_mut().expect("gateway running");
        let mut outs = node.pump(true, true)?;
        let last = outs.pop();
        for o in outs {
            // Earlier commits of the pass are whole on disk, just never acknowledged.
            if let Outcome::Durable { records, .. } = o {
                self.absorb(&records)?;
            }
        }
        self.stats.commits += 1;
        let tear = match last {
            Some(Outcome::Durable { records, bytes, .. }) => Some((records, bytes)),
            _ => None,
        };
        self.note(format!("#{} FAULT crash during a commit", self.step));
        self.crash(tear)
    }

    /// Cuts the last segment inside the commit that was being written (its `bytes` are the
    /// segment's tail) and sometimes leaves zeros or junk after the cut.
    fn tear_tail(&mut self, dir: &Path, records: &[(u16, Vec<u8>)], bytes: u64) -> Check {
        let segs = switchyard_journal::list_segments(dir).map_err(|e| e.to_string())?;
        let last = segs.last().ok_or("no segment to tear")?;
        let len = std::fs::metadata(&last.path)
            .map_err(|e| e.to_string())?
            .len();
        let start = len
            .checked_sub(bytes)
            .ok_or("the commit is not the segment's tail")?;
        let cut = match self.rng.u8(..10) {
            0 => start,
            1 => len,
            _ => start + self.rng.u64(..bytes.max(1)),
        };
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(&last.path)
            .map_err(|e| e.to_string())?;
        f.set_len(cut).map_err(|e| e.to_string())?;
        let mut end = start;
        let mut whole = Vec::new();
        for (kind, p) in records {
            end += (HEADER_LEN + p.len()) as u64;
            if end > cut {
                break;
            }
            whole.push((*kind, p.clone()));
        }
        let junk = match self.rng.u8(..3) {
            0 => vec![0u8; self.rng.usize(1..=64)],
            1 => (0..self.rng.usize(1..=64))
                .map(|_| self.rng.u8(..))
                .collect(),
            _ => Vec::new(),
        };
        if !junk.is_empty() {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .append(true)
                .open(&last.path)
                .map_err(|e| e.to_string())?;
            f.write_all(&junk).map_err(|e| e.to_string())?;
            self.stats.torn_with_junk += 1;
        }
        self.stats.torn_commits += 1;
        self.note(format!(
            "#{} torn commit: {} of {} bytes kept ({} of {} records whole), {} junk bytes",
            self.step,
            cut - start,
            bytes,
            whole.len(),
            records.len(),
            junk.len()
        ));
        self.absorb(&whole)
    }

    /// The writer cut a failed commit back, but the cut never reached the disk: the failed
    /// records (some of them) are still in the old segment.
    fn restore_leftovers(&mut self, f: &FailedCommit) -> Check {
        let Some(mark) = &f.segment else {
            return Ok(());
        };
        let Ok(meta) = std::fs::metadata(&mark.path) else {
            return Ok(());
        };
        if meta.len() != mark.len || f.frames.is_empty() {
            return Ok(());
        }
        let n = self.rng.usize(1..=f.frames.len());
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&mark.path)
            .map_err(|e| e.to_string())?;
        file.write_all(&f.frames[..n]).map_err(|e| e.to_string())?;
        self.stats.lost_cuts += 1;
        self.note(format!(
            "#{} FAULT the cut of failed commit seq {} was lost: {n} bytes left over",
            self.step, f.first_seq
        ));
        Ok(())
    }

    /// The audit chain loses what it had not synced: its last entries, the last one torn.
    fn tear_chain(&mut self, dir: &Path) -> Check {
        let chain_dir = audit::chain_dir(dir);
        let Ok(entries) = std::fs::read_dir(&chain_dir) else {
            return Ok(());
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("chain-") && n.ends_with(".log"))
            })
            .collect();
        files.sort();
        let Some(last) = files.last() else {
            return Ok(());
        };
        let bytes = std::fs::read(last).map_err(|e| e.to_string())?;
        if bytes.len() < 20 {
            return Ok(());
        }
        let header = u16::from_le_bytes([bytes[18], bytes[19]]) as u64;
        let body = (bytes.len() as u64).saturating_sub(header);
        if body == 0 {
            return Ok(());
        }
        let cut = self.rng.u64(1..=body.min(5 * audit::ENTRY_LEN as u64));
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(last)
            .map_err(|e| e.to_string())?;
        f.set_len(bytes.len() as u64 - cut)
            .map_err(|e| e.to_string())?;
        self.stats.chain_tears += 1;
        self.note(format!(
            "#{} FAULT audit chain lost its last {cut} bytes",
            self.step
        ));
        Ok(())
    }

    // ---- crashes and recovery ------------------------------------------------------------------

    fn draw_plan(&mut self) -> FaultPlan {
        FaultPlan {
            fail_sync_at_commit: draw_commit(&mut self.rng, self.faults.fsync_fail),
            fail_write_at_commit: draw_commit(&mut self.rng, self.faults.write_fail),
            fail_write_commits: 1,
            sync_delay: None,
        }
    }

    fn start_gateway(&mut self) -> Check {
        loop {
            let plan = self.draw_plan();
            let cfg = gateway_config(self.dir())?;
            let node = Node::start(cfg, plan)?;
            self.note(format!(
                "#{} gateway started: {} records replayed, {} bytes cut, clean {}",
                self.step,
                node.recovery.records,
                node.recovery.truncated_bytes,
                node.replay.clean_shutdown
            ));
            let Some(sync) = node.startup_failed else {
                self.node = Some(node);
                return Ok(());
            };
            // The restart floor's commit failed: the gateway refuses to start; start again.
            if sync {
                self.stats.fsync_failures += 1;
            } else {
                self.stats.write_failures += 1;
            }
            self.note(format!(
                "#{} FAULT the restart floor's commit failed; the gateway exits",
                self.step
            ));
            let failed = node.failed.clone();
            node.crash()?;
            if let Some(f) = failed {
                if self.rng.f64() < self.faults.lost_cut {
                    self.restore_leftovers(&f)?;
                }
            }
        }
    }

    /// The gateway dies (during a commit when `tear` holds that commit) and restarts.
    fn crash(&mut self, tear: Option<Tear>) -> Check {
        self.stats.crashes += 1;
        for i in 0..self.links.len() {
            self.drop_link(i);
        }
        let node = self.node.take().expect("gateway running");
        let failed = node.failed.clone();
        let journal_dir = node.journal_dir().to_path_buf();
        node.crash()?;
        if let Some((records, bytes)) = tear {
            self.tear_tail(&journal_dir, &records, bytes)?;
        }
        if let Some(f) = failed {
            if self.rng.f64() < self.faults.lost_cut {
                self.restore_leftovers(&f)?;
            }
        }
        if self.rng.f64() < self.faults.chain_tear {
            self.tear_chain(&journal_dir)?;
        }
        // Every answer still awaited is lost with the process.
        self.poll_answers()?;
        for k in std::mem::take(&mut self.pending_keys) {
            self.keys[k].pending = None;
        }
        for id in std::mem::take(&mut self.pending_orders) {
            if let Some(o) = self.orders.get_mut(&id) {
                o.pending_cancel = None;
                o.pending_amend = None;
            }
        }
        self.start_gateway()?;
        self.stats.recoveries += 1;
        self.after_recovery()?;
        self.audit_check()
    }

    /// What a recovered gateway must hold: every order whose record is durable (above all
    /// those the client was told are durable), as the durable records left it; nothing else;
    /// acknowledged cancels and amends; every acknowledged key answering with its order.
    fn after_recovery(&mut self) -> Check {
        let gw = self.gw();
        let ids: Vec<u64> = self.orders.keys().copied().collect();
        for id in ids {
            let o = &self.orders[&id];
            let name = account_name(o.account);
            let obs = observe(&gw, &name, o.id);
            let oref = order_ref(o.id);
            match (obs, o.durable) {
                (None, true) if o.acked => {
                    self.stats.acked_lost += 1;
                    return Err(format!(
                        "ACKNOWLEDGED-DURABLE ORDER LOST: {oref} (key {}) is gone after recovery",
                        self.keys[o.key].key
                    ));
                }
                (None, true) => {
                    return Err(format!(
                        "{oref}: its OrderAccepted record is durable but recovery lost it"
                    ))
                }
                (Some(_), false) => {
                    return Err(format!(
                        "{oref}: recovery restored an order whose record never became durable"
                    ))
                }
                (None, false) => {
                    let o = self.orders.get_mut(&id).expect("order");
                    if o.last.is_some() && !o.lost && !o.rolled_back {
                        o.lost = true;
                        self.stats.unacked_lost += 1;
                    }
                    o.last = None;
                    continue;
                }
                (Some(obs), true) => {
                    // Replay may be ahead of the last `OrderUpdated` only by execution reports
                    // journaled with it (a torn commit can keep the report and lose the
                    // update), that is, by moves the table allows.
                    let (ts, tf) = o.truth;
                    if !reachable((ts, tf, obs.qty), (obs.status, obs.filled, obs.qty)) {
                        return Err(format!(
                            "{oref}: recovered as {:?} filled {}, the journal says {:?} filled {}",
                            obs.status, obs.filled, ts, tf
                        ));
                    }
                    if o.cancel_acked
                        && !o.cancel_refused
                        && obs.status != OrderStatus::CancelRequested
                        && !obs.status.is_final()
                    {
                        return Err(format!(
                            "{oref}: an acknowledged cancel was lost by recovery ({:?})",
                            obs.status
                        ));
                    }
                    if let Some(q) = o.amend_acked {
                        if !o.amend_refused
                            && obs.amend_qty != Some(q)
                            && obs.qty != q
                            && !obs.status.is_final()
                        {
                            return Err(format!(
                                "{oref}: an acknowledged amend to {q} was lost by recovery"
                            ));
                        }
                    }
                    if self.watch == Some(id) {
                        self.note(format!("#{} WATCH {oref} recovered: {obs:?}", self.step));
                    }
                    self.orders.get_mut(&id).expect("order").last = Some(obs);
                }
            }
        }
        for k in 0..self.keys.len() {
            let ks = &self.keys[k];
            let Some(a) = ks.acked else {
                continue;
            };
            let name = account_name(ks.account);
            let hit = gw
                .orders
                .lock(&name)
                .idempotent(&name, &ks.key, self.now_ns);
            if hit.map(|h| h.order_id.0) != Some(a) {
                return Err(format!(
                    "key {} of acknowledged {} answers {:?} after recovery",
                    ks.key,
                    order_ref(OrderId(a)),
                    hit.map(|h| order_ref(h.order_id))
                ));
            }
        }
        Ok(())
    }

    /// The chain, driven synchronously with the production auditor (resume and repair its
    /// files, chain everything durable, sync, anchor), then checked with the verifier that
    /// `switchyard journal verify` runs; and the journal itself verified clean.
    fn audit_check(&mut self) -> Check {
        let node = self.node.as_ref().expect("gateway running");
        let durable = node.journal.durable_seq();
        let dir = node.journal_dir().to_path_buf();
        let acfg = switchyard_gateway::audit::auditor_config(&node.gw.cfg)
            .map_err(|e| e.to_string())?
            .ok_or("the audit chain is off")?;
        let keys = acfg.keys.clone();
        let anchor_path = acfg.anchor_path();
        let auditor = Auditor::start(acfg, DurableWatch::fixed(durable))
            .map_err(|e| format!("audit chain: {e}"))?;
        let st = auditor.stop();
        if st.chained_seq != durable {
            return Err(format!(
                "audit chain: chained to seq {}, the journal is durable to {durable} ({:?})",
                st.chained_seq, st.last_error
            ));
        }
        let v = audit::verify(&dir, Some(&keys), 0, u64::MAX);
        if !v.ok || v.last_seq != durable {
            return Err(format!(
                "audit chain does not verify: {:?} at seq {:?} (checked to {} of {durable})",
                v.error, v.bad_seq, v.last_seq
            ));
        }
        if durable > 0 {
            let anchor = Anchor::read(&anchor_path)?.ok_or("no audit anchor")?;
            let av = audit::verify_anchor(&dir, Some(&keys), &anchor);
            if !av.ok || anchor.seq != durable {
                return Err(format!(
                    "audit anchor at seq {} does not verify: {:?}",
                    anchor.seq, av.error
                ));
            }
        }
        let j = switchyard_journal::verify(&dir).map_err(|e| e.to_string())?;
        if !j.is_clean() || j.last_seq != durable {
            return Err(format!(
                "journal verify: clean {}, last seq {} of {durable}: {:?}",
                j.is_clean(),
                j.last_seq,
                j.first_bad()
            ));
        }
        self.stats.audit_checks += 1;
        self.note(format!(
            "#{} audit chain and journal verified to seq {durable}",
            self.step
        ));
        Ok(())
    }

    fn venue_restart(&mut self, i: usize) -> Check {
        self.drop_link(i);
        // Everything the old process decided is in its state log already (it writes each
        // message's lines before queueing them), so dropping it loses only sockets.
        let cfg = self.venues[i].cfg.clone();
        self.venues[i].venue = InProcVenue::new(cfg).map_err(|e| format!("venue restart: {e}"))?;
        self.stats.venue_restarts += 1;
        self.note(format!(
            "#{} FAULT venue {} restarted",
            self.step, VENUES[i]
        ));
        Ok(())
    }

    // ---- the network --------------------------------------------------------------------------

    fn drop_link(&mut self, i: usize) {
        let l = &mut self.links[i];
        if let Some(conn) = l.state.conn() {
            self.venues[i].venue.disconnect(conn);
        }
        l.state = LinkState::Down;
        l.to_venue.clear();
        l.to_gw.clear();
        if let Some(node) = &self.node {
            node.gw.venues.links[i].up.store(false, Ordering::Release);
        }
    }

    fn push_to_venue(&mut self, i: usize, mut msg: ToVenue) {
        let l = &mut self.links[i];
        msg.set_seq(l.out_seq);
        l.out_seq += 1;
        l.to_venue.push_back(msg);
    }

    fn connect(&mut self, i: usize) {
        let conn = self.venues[i].venue.connect();
        let gw = self.gw();
        let logon = venues::logon_message(&gw, &gw.venues.links[i]);
        let l = &mut self.links[i];
        l.state = LinkState::LoggingOn(conn);
        l.out_seq = 1;
        self.push_to_venue(i, logon);
        self.note(format!(
            "#{} connect {} (conn {conn})",
            self.step, VENUES[i]
        ));
    }

    /// Moves what venue `i` queued for its connection onto the wire.
    fn collect(&mut self, i: usize) {
        let Some(conn) = self.links[i].state.conn() else {
            return;
        };
        for (kind, msg) in self.venues[i].venue.take(conn) {
            if let (LineKind::Report, FromVenue::Exec(er)) = (kind, &msg) {
                if er.filled_qty_delta > 0 {
                    self.stats.fills_at_venue += 1;
                }
            }
            self.links[i].to_gw.push_back(msg);
        }
    }

    fn session_send(&mut self, i: usize, n: usize) {
        let gw = self.gw();
        let link = gw.venues.links[i].clone();
        let mut sent = Vec::new();
        for _ in 0..n {
            match venues::next_message(&gw, &link) {
                None => break,
                Some(None) => sent.push("-".to_string()),
                Some(Some(m)) => {
                    sent.push(describe_to_venue(&m));
                    self.push_to_venue(i, m);
                }
            }
        }
        self.note(format!(
            "#{} session {} writes [{}]",
            self.step,
            VENUES[i],
            sent.join(", ")
        ));
    }

    fn deliver_to_venue(&mut self, i: usize) {
        let Some(conn) = self.links[i].state.conn() else {
            return;
        };
        let Some(msg) = self.links[i].to_venue.pop_front() else {
            self.note(format!("#{} wire to {}: empty", self.step, VENUES[i]));
            return;
        };
        let d = describe_to_venue(&msg);
        if !matches!(msg, ToVenue::Logon(_)) && self.rng.f64() < self.faults.order_lose {
            self.stats.orders_lost += 1;
            self.note(format!(
                "#{} FAULT lost on the way to {}: {d}",
                self.step, VENUES[i]
            ));
            return;
        }
        self.venues[i].venue.send(conn, msg);
        self.collect(i);
        self.note(format!("#{} {} receives {d}", self.step, VENUES[i]));
    }

    fn deliver_to_gateway(&mut self, i: usize) -> Check {
        let state = self.links[i].state;
        let Some(mut msg) = self.links[i].to_gw.pop_front() else {
            self.note(format!("#{} wire from {}: empty", self.step, VENUES[i]));
            return Ok(());
        };
        let report = matches!(msg, FromVenue::Exec(_) | FromVenue::Heartbeat(_));
        let mut fault = "";
        if report && matches!(state, LinkState::Up(_)) {
            let f = &self.faults;
            let (lose, dup, reorder) = (f.report_lose, f.report_dup, f.report_reorder);
            let r = self.rng.f64();
            if r < lose {
                self.stats.reports_lost += 1;
                let d = describe_from_venue(&msg);
                self.note(format!("#{} FAULT lost from {}: {d}", self.step, VENUES[i]));
                return Ok(());
            } else if r < lose + dup {
                self.stats.reports_duplicated += 1;
                self.links[i].to_gw.push_front(msg.clone());
                fault = " (FAULT duplicated)";
            } else if r < lose + dup + reorder {
                let next_is_report = matches!(
                    self.links[i].to_gw.front(),
                    Some(FromVenue::Exec(_) | FromVenue::Heartbeat(_))
                );
                if next_is_report {
                    let next = self.links[i].to_gw.pop_front().expect("front");
                    self.links[i].to_gw.push_front(msg);
                    msg = next;
                    self.stats.reports_reordered += 1;
                    fault = " (FAULT reordered)";
                }
            }
        }
        let d = describe_from_venue(&msg);
        self.note(format!(
            "#{} gateway gets from {}: {d}{fault}",
            self.step, VENUES[i]
        ));
        let gw = self.gw();
        let link = gw.venues.links[i].clone();
        match state {
            LinkState::LoggingOn(conn) => {
                // Before its LOGON_ACK the session reads nothing else (Connection::open).
                if let FromVenue::LogonAck(ack) = msg {
                    venues::on_logon_ack(&link, &ack);
                    link.logons.fetch_add(1, Ordering::Relaxed);
                    link.up.store(true, Ordering::Release);
                    self.links[i].state = LinkState::Up(conn);
                    let mut out = Vec::new();
                    // The session paces the status sweep by its answers; here the network's
                    // queues are unbounded, so it goes out whole.
                    if let Ok(sweep) = venues::after_logon(&gw, &link, |m| {
                        out.push(m);
                        Ok::<(), ()>(())
                    }) {
                        out.extend(sweep.into_messages());
                    }
                    let n = out.len();
                    for m in out {
                        self.push_to_venue(i, m);
                    }
                    self.note(format!(
                        "#{} {} logged on; {n} repair/status messages",
                        self.step, VENUES[i]
                    ));
                }
            }
            LinkState::Up(_) => {
                if matches!(msg, FromVenue::Exec(_)) {
                    self.stats.reports_applied += 1;
                }
                let mut want = None;
                venues::on_venue_message(&gw, &link, msg, &mut |from| want = Some(from));
                if let Some(from) = want {
                    self.resend(i, from);
                }
            }
            LinkState::Down => {}
        }
        Ok(())
    }

    /// Asks for a resend, at most once per 3 steps per link (the session's throttle).
    fn resend(&mut self, i: usize, from: u64) {
        if self.step >= self.links[i].last_resend_step + 3 {
            self.links[i].last_resend_step = self.step;
            self.gw().venues.links[i].request_resend(from);
            self.note(format!(
                "#{} {} resend from {from} asked",
                self.step, VENUES[i]
            ));
        }
    }

    fn venue_heartbeat(&mut self, i: usize) {
        let last_seq = self.venues[i].venue.last_seq(GATEWAY_ID);
        self.links[i]
            .to_gw
            .push_back(FromVenue::Heartbeat(Heartbeat { seq: 0, last_seq }));
        self.note(format!(
            "#{} {} heartbeat last_seq {last_seq}",
            self.step, VENUES[i]
        ));
    }

    fn idle_tick(&mut self, i: usize) {
        let gap = self.gw().venues.links[i].seq_gap();
        if let Some(from) = gap {
            self.resend(i, from);
        }
        self.note(format!("#{} {} idle, gap {gap:?}", self.step, VENUES[i]));
    }

    // ---- invariants -----------------------------------------------------------------------------

    /// After every step: legal transitions only, orders gone only when their journal write
    /// failed, positions equal to what the orders hold, and every venue order known to the
    /// gateway with no more fills on the gateway's side than the venue made, at most one
    /// venue order per idempotency key.
    fn check_step(&mut self) -> Check {
        let gw = self.gw();
        // Expected projected position per (account, symbol slot).
        let mut expected: BTreeMap<(usize, u16), i64> = BTreeMap::new();
        let mut filled: BTreeMap<u64, u64> = BTreeMap::new();
        let ids: Vec<u64> = self.orders.keys().copied().collect();
        for id in ids {
            let (account, oid, prev, rolled_back, side) = {
                let o = &self.orders[&id];
                (o.account, o.id, o.last, o.rolled_back, o.spec.side)
            };
            let name = account_name(account);
            let cur = observe(&gw, &name, oid);
            let oref = order_ref(oid);
            if self.watch == Some(id) && prev != cur {
                self.note(format!("#{} WATCH {oref}: {prev:?} -> {cur:?}", self.step));
            }
            match (prev, cur) {
                (Some(p), Some(c)) => {
                    let from = (p.status, p.filled, p.qty);
                    let to = (c.status, c.filled, c.qty);
                    if !reachable(from, to) {
                        return Err(format!(
                            "ILLEGAL TRANSITION of {oref}: {:?} filled {} qty {} -> {:?} filled {} qty {}",
                            p.status, p.filled, p.qty, c.status, c.filled, c.qty
                        ));
                    }
                    let o = self.orders.get_mut(&id).expect("order");
                    if p.status == OrderStatus::CancelRequested
                        && c.status != OrderStatus::CancelRequested
                        && !c.status.is_final()
                    {
                        o.cancel_refused = true;
                    }
                    if let Some(q) = p.amend_qty {
                        if c.amend_qty.is_none() && c.qty != q {
                            o.amend_refused = true;
                        }
                    }
                }
                (Some(_), None) if !rolled_back => {
                    return Err(format!(
                        "{oref} vanished from the order store without a journal failure"
                    ));
                }
                _ => {}
            }
            if let Some(c) = cur {
                if rolled_back {
                    return Err(format!("{oref} kept after its journal write failed"));
                }
                let open = if c.status.is_final() {
                    0
                } else {
                    c.qty - c.filled + c.reserved
                };
                *expected.entry((account, c.symbol_idx)).or_default() +=
                    signed(side, c.filled + open);
                filled.insert(id, c.filled);
            }
            self.orders.get_mut(&id).expect("order").last = cur;
        }
        let slots = gw.risk.position_slots();
        for a in 0..self.cfg.accounts {
            let acct = gw.account(&account_name(a));
            for slot in 0..slots {
                let want = expected.get(&(a, slot as u16)).copied().unwrap_or(0);
                let have = acct.risk.position(slot);
                if have != want {
                    let held: Vec<String> = self
                        .orders
                        .values()
                        .filter(|o| o.account == a)
                        .filter_map(|o| {
                            let c = o.last.filter(|c| c.symbol_idx as usize == slot)?;
                            Some(format!(
                                "{} {:?} {:?} qty {} filled {} amend {:?} reserved {}",
                                order_ref(o.id),
                                o.spec.side,
                                c.status,
                                c.qty,
                                c.filled,
                                c.amend_qty,
                                c.reserved
                            ))
                        })
                        .collect();
                    return Err(format!(
                        "POSITION of {} slot {slot} is {have}, its orders hold {want}: [{}]",
                        account_name(a),
                        held.join("; ")
                    ));
                }
            }
        }
        let mut per_key: BTreeMap<usize, u32> = BTreeMap::new();
        for (v, vb) in self.venues.iter().enumerate() {
            for vo in vb.venue.orders(GATEWAY_ID) {
                let Some(id) = parse_order_ref(&vo.order_id) else {
                    return Err(format!("{} holds unknown order {}", VENUES[v], vo.order_id));
                };
                let Some(o) = self.orders.get(&id.0) else {
                    return Err(format!(
                        "{} holds {}, which no client created",
                        VENUES[v], vo.order_id
                    ));
                };
                let Some(obs) = o.last else {
                    return Err(format!(
                        "{} holds {} but the gateway does not know it",
                        VENUES[v], vo.order_id
                    ));
                };
                if obs.venue != Some(v) {
                    return Err(format!(
                        "{} holds {}, routed to {:?}",
                        VENUES[v], vo.order_id, obs.venue
                    ));
                }
                if vo.symbol.as_deref() != Some(o.spec.symbol)
                    || vo.side.as_deref() != Some(o.spec.side.as_str())
                {
                    return Err(format!(
                        "{} holds {} as {:?} {:?}, the gateway as {:?} {}",
                        VENUES[v], vo.order_id, vo.side, vo.symbol, o.spec.side, o.spec.symbol
                    ));
                }
                if obs.filled > vo.filled {
                    return Err(format!(
                        "FILLS: the gateway has {} filled {}, the venue only {}",
                        vo.order_id, obs.filled, vo.filled
                    ));
                }
                filled.remove(&id.0);
                let n = per_key.entry(o.key).or_default();
                *n += 1;
                if *n > 1 {
                    return Err(format!(
                        "DUPLICATE at the venues: key {} has more than one order",
                        self.keys[o.key].key
                    ));
                }
            }
        }
        if let Some((id, f)) = filled.into_iter().find(|(_, f)| *f > 0) {
            return Err(format!(
                "FILLS: {} has {f} filled at the gateway and no venue holds it",
                order_ref(OrderId(id))
            ));
        }
        Ok(())
    }

    /// The end of a run: faults off, every link reconnected (the logon repairs and status
    /// sweep), and everything delivered until nothing moves. Then gateway and venues agree.
    fn settle(&mut self) -> Check {
        self.faults = Faults::none();
        self.note(format!("#{} settle", self.step));
        for i in 0..self.links.len() {
            self.drop_link(i);
            self.connect(i);
        }
        let mut quiet = 0;
        for _ in 0..100_000 {
            self.step += 1;
            let mut progress = false;
            if self.node.as_ref().is_some_and(|n| n.queued() > 0) {
                let outs = self
                    .node
                    .as_mut()
                    .expect("gateway running")
                    .pump(false, false)?;
                self.outcomes(outs)?;
                progress = true;
            }
            for i in 0..self.links.len() {
                if matches!(self.links[i].state, LinkState::Up(_)) {
                    let gw = self.gw();
                    let link = gw.venues.links[i].clone();
                    while let Some(m) = venues::next_message(&gw, &link) {
                        progress = true;
                        if let Some(m) = m {
                            self.push_to_venue(i, m);
                        }
                    }
                }
                while !self.links[i].to_venue.is_empty() {
                    self.deliver_to_venue(i);
                    progress = true;
                }
                while !self.links[i].to_gw.is_empty() {
                    self.deliver_to_gateway(i)?;
                    progress = true;
                }
            }
            self.poll_answers()?;
            if !progress {
                for i in 0..self.links.len() {
                    if !matches!(self.links[i].state, LinkState::Up(_)) {
                        continue;
                    }
                    let link = self.gw().venues.links[i].clone();
                    let behind = link.seq_through() < self.venues[i].venue.last_seq(GATEWAY_ID);
                    if behind || link.seq_gap().is_some() {
                        self.venue_heartbeat(i);
                        progress = true;
                    }
                }
            }
            if progress {
                quiet = 0;
            } else {
                quiet += 1;
                if quiet > 3 {
                    self.check_step()?;
                    self.check_converged()?;
                    return self.audit_check();
                }
            }
        }
        Err("the system did not settle".into())
    }

    /// Quiescence: every order the gateway holds is where the venue says it is (status,
    /// fills, size), nothing is pending, and per account and symbol the filled position the
    /// gateway holds equals the venues' fills.
    fn check_converged(&mut self) -> Check {
        let gw = self.gw();
        let mut at_venue: BTreeMap<u64, (usize, VenueOrder)> = BTreeMap::new();
        for (v, vb) in self.venues.iter().enumerate() {
            for vo in vb.venue.orders(GATEWAY_ID) {
                if let Some(id) = parse_order_ref(&vo.order_id) {
                    at_venue.insert(id.0, (v, vo));
                }
            }
        }
        let mut gw_pos: BTreeMap<(usize, &str), i64> = BTreeMap::new();
        let mut venue_pos: BTreeMap<(usize, &str), i64> = BTreeMap::new();
        for o in self.orders.values() {
            let oref = order_ref(o.id);
            let Some(obs) = observe(&gw, &account_name(o.account), o.id) else {
                continue;
            };
            if !obs.durable {
                return Err(format!("{oref} still not durable after settling"));
            }
            if obs.cancel_pending || obs.amend_qty.is_some() {
                return Err(format!("{oref} still has a request pending after settling"));
            }
            *gw_pos.entry((o.account, o.spec.symbol)).or_default() +=
                signed(o.spec.side, obs.filled);
            match at_venue.get(&o.id.0) {
                None => {
                    if obs.sent || !obs.status.is_final() {
                        return Err(format!(
                            "CONVERGENCE: {oref} is {:?} (sent {}) but no venue holds it",
                            obs.status, obs.sent
                        ));
                    }
                }
                Some((_, vo)) => {
                    *venue_pos.entry((o.account, o.spec.symbol)).or_default() +=
                        signed(o.spec.side, vo.filled);
                    // A cancelled or rejected order may end on an older size: a REPLACED
                    // report arriving after the end concerns an order the link no longer
                    // tracks, and is dropped by design (it holds no position either way).
                    let ended = matches!(obs.status, OrderStatus::Canceled | OrderStatus::Rejected);
                    if !same_status(obs.status, vo.status)
                        || obs.filled != vo.filled
                        || (obs.qty != vo.qty && !ended)
                    {
                        return Err(format!(
                            "CONVERGENCE: {oref} is {:?} filled {} qty {} at the gateway, {:?} filled {} qty {} at the venue",
                            obs.status, obs.filled, obs.qty, vo.status, vo.filled, vo.qty
                        ));
                    }
                }
            }
        }
        if gw_pos != venue_pos {
            return Err(format!(
                "POSITIONS: the gateway's fills {gw_pos:?} differ from the venues' {venue_pos:?}"
            ));
        }
        self.note(format!(
            "#{} converged: {} orders, positions {gw_pos:?}",
            self.step,
            self.orders.len()
        ));
        Ok(())
    }
}

fn observe(gw: &Gateway, account: &str, id: OrderId) -> Option<Obs> {
    let part = gw.orders.lock(account);
    part.get(account, id).map(|o| Obs {
        status: o.status,
        filled: o.filled,
        qty: o.order.qty,
        amend_qty: o.amend.map(|a| a.qty),
        reserved: o.amend.map_or(0, |a| a.reserved_qty),
        symbol_idx: o.symbol_idx,
        sent: o.sent,
        acked: o.acked,
        durable: o.durable,
        cancel_pending: o.cancel_pending,
        venue: o.venue.as_ref().map(|l| l.idx),
    })
}

fn describe_to_venue(m: &ToVenue) -> String {
    match m {
        ToVenue::Logon(l) => format!("LOGON lastSeq {}", l.last_seq),
        ToVenue::New(n) => format!("NEW {} {:?} {:?}", n.order_id, n.qty, n.price),
        ToVenue::Cancel(c) => format!("CANCEL {}", c.order_id),
        ToVenue::Replace(r) => format!("REPLACE {} qty {:?}", r.order_id, r.qty),
        ToVenue::Status(s) => format!("STATUS {}", s.order_id),
        ToVenue::Resend(r) => format!("RESEND from {}", r.from_seq),
        ToVenue::Heartbeat(_) => "HEARTBEAT".into(),
    }
}

fn describe_from_venue(m: &FromVenue) -> String {
    match m {
        FromVenue::LogonAck(a) => format!("LOGON_ACK lastSeq {}", a.last_seq),
        FromVenue::Exec(e) => format!(
            "ER #{} {} {} total {}{}{}",
            e.seq,
            e.order_id,
            e.status.as_str(),
            e.filled_qty_total,
            if e.status_report { " (status)" } else { "" },
            e.reason
                .as_deref()
                .map(|r| format!(" {r}"))
                .unwrap_or_default()
        ),
        FromVenue::Heartbeat(h) => format!("HEARTBEAT lastSeq {}", h.last_seq),
        FromVenue::Tob(t) => format!("TOB {} {:?}/{:?}", t.symbol, t.bid, t.ask),
        FromVenue::Reject(r) => format!("REJECT {}", r.reason),
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, cfg: &SimConfig) -> Result<SimReport, SimFailure> {
    let sim = Sim::new(seed, cfg.clone()).map_err(|message| SimFailure {
        seed,
        step: 0,
        message,
        trace: Vec::new(),
        kept_dir: None,
    })?;
    sim.run()
}

/// A torn commit at a crash: the records (kind, payload) of the commit being written and how
/// many of its bytes reached the disk.
type Tear = (Vec<(u16, Vec<u8>)>, u64);

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the reachability check follows the core's table (a fill then a cancel is one
    // step's worth; a final order never moves; a fill total never goes down).
    #[test]
    fn reachability_uses_the_table() {
        use OrderStatus as S;
        assert!(reachable((S::Sent, 0, 10), (S::Canceled, 4, 10)));
        assert!(reachable((S::Accepted, 0, 10), (S::Filled, 10, 10)));
        assert!(reachable((S::Sent, 2, 10), (S::Filled, 8, 8)));
        assert!(!reachable((S::Filled, 10, 10), (S::Canceled, 10, 10)));
        assert!(!reachable(
            (S::PartiallyFilled, 5, 10),
            (S::PartiallyFilled, 3, 10)
        ));
        assert!(!reachable((S::Canceled, 0, 10), (S::Sent, 0, 10)));
        assert!(reachable(
            (S::CancelRequested, 3, 10),
            (S::PartiallyFilled, 3, 10)
        ));
    }

    // Goal: the geometric draw gives a commit number (1-based) or none when off.
    #[test]
    fn draws_commit_numbers() {
        let mut rng = fastrand::Rng::with_seed(1);
        assert_eq!(draw_commit(&mut rng, 0.0), None);
        assert_eq!(draw_commit(&mut rng, 1.0), Some(1));
        let n = draw_commit(&mut rng, 0.01).unwrap();
        assert!(n >= 1);
    }
}
