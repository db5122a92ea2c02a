//! Metrics: lock-free counters and histograms the hot path records into, and their
//! Prometheus and JSON renderings (`render`). Names follow the reference's contract (§2.10).

mod histogram;
pub mod render;
pub mod sse;
pub mod venues;

use std::sync::atomic::{AtomicU64, Ordering};

pub use histogram::AtomicHistogram;
use switchyard_core::reason::Pressure;
use switchyard_core::Reason;

/// Every counter and histogram of the gateway. Shared by `Arc`; recording is relaxed atomics.
#[derive(Default)]
pub struct Metrics {
    /// Server-side ack latency of every v3 response, ns: first byte read → last byte written.
    pub ack_all: AtomicHistogram,
    /// The same for accepted orders only (rejects are fast and flatter the overall figure).
    pub ack_accepted: AtomicHistogram,
    /// VOLATILE_ACCEPT → DURABLE_ACCEPTED, ns.
    pub durable_confirm: AtomicHistogram,
    /// Durable path (`/orders`): request received → its record fdatasync'ed (t2 − t0), ns.
    pub durable_ack: AtomicHistogram,
    /// Durable path answers by level, refusals, and `local` answers that timed out.
    pub orders_volatile: AtomicU64,
    pub orders_local: AtomicU64,
    pub orders_replicated: AtomicU64,
    pub orders_existing: AtomicU64,
    pub orders_refused: AtomicU64,
    pub orders_wait_timeouts: AtomicU64,
    pub orders_canceled: AtomicU64,
    pub orders_amended: AtomicU64,
    /// Durable path with venues: accepted → NEW written to the venue, and accepted → first
    /// fill reported, ns (wall clock: both ends may be in different processes' lifetimes).
    pub accept_to_sent: AtomicHistogram,
    pub accept_to_first_fill: AtomicHistogram,
    pub stage_parse: AtomicHistogram,
    pub stage_auth: AtomicHistogram,
    pub stage_risk: AtomicHistogram,
    pub stage_risk_position: AtomicHistogram,
    pub stage_enqueue: AtomicHistogram,
    pub stage_serialize: AtomicHistogram,
    /// Journal group commit: fdatasync duration (ns), write duration (ns), records and bytes per commit.
    pub fdatasync: AtomicHistogram,
    pub journal_write: AtomicHistogram,
    pub journal_batch_records: AtomicHistogram,
    pub journal_batch_bytes: AtomicHistogram,
    pub journal_commits: AtomicU64,
    pub journal_records: AtomicU64,
    pub journal_bytes: AtomicU64,

    pub accepted: AtomicU64,
    pub rejected_soft: AtomicU64,
    pub rejected_hard: AtomicU64,
    pub rejected_killed: AtomicU64,
    pub rejected_client: AtomicU64,
    reasons: ReasonCounters,
    pub decode_errors: AtomicU64,
    pub auth_failures: AtomicU64,
    pub processed: AtomicU64,
    pub loss_suspect: AtomicU64,
    pub durable_accepted: AtomicU64,
    pub durable_rejected: AtomicU64,
    pub durable_write_errors: AtomicU64,
    pub session_killed: AtomicU64,
    pub shard_killed: AtomicU64,
    pub global_killed: AtomicU64,
    pub kill_recovered: AtomicU64,
    pub connections_open: AtomicU64,
    /// Connections closed at accept for any limit (`GATEWAY_MAX_CONNECTIONS` or per address).
    pub connections_refused: AtomicU64,
    /// Of those, the ones over `GATEWAY_MAX_CONNECTIONS_PER_IP`.
    pub connections_refused_per_ip: AtomicU64,
    /// Open connections per client address (the accept loop's table, kept beside
    /// `connections_open`, which it complements).
    pub connections_per_ip: crate::PerIpConnections,
    pub http_requests: AtomicU64,
    pub tcp_frames: AtomicU64,
    /// The event stream hub's figures (shared with its dispatcher thread).
    pub sse: std::sync::Arc<sse::SseMetrics>,
}

impl Metrics {
    /// Counts a refusal under its reason and its pressure class.
    pub fn count_refusal(&self, r: Reason) {
        self.reasons.0[r as usize].fetch_add(1, Ordering::Relaxed);
        let c = match r.pressure() {
            Pressure::Soft => &self.rejected_soft,
            Pressure::Hard => &self.rejected_hard,
            Pressure::Killed => &self.rejected_killed,
            Pressure::None => &self.rejected_client,
        };
        c.fetch_add(1, Ordering::Relaxed);
    }

    /// A durable-path refusal: counted by reason only (the v3 pressure counters feed the
    /// v3 accepted rate and stay v3's).
    pub fn count_durable_refusal(&self, r: Reason) {
        self.reasons.0[r as usize].fetch_add(1, Ordering::Relaxed);
        self.orders_refused.fetch_add(1, Ordering::Relaxed);
    }

    pub fn reason_count(&self, r: Reason) -> u64 {
        self.reasons.0[r as usize].load(Ordering::Relaxed)
    }

    /// accepted / (accepted + soft + hard + killed), the reference's definition; 1 when idle.
    pub fn accepted_rate(&self) -> f64 {
        let a = self.accepted.load(Ordering::Relaxed) as f64;
        let denom = a
            + (self.rejected_soft.load(Ordering::Relaxed)
                + self.rejected_hard.load(Ordering::Relaxed)
                + self.rejected_killed.load(Ordering::Relaxed)) as f64;
        if denom == 0.0 {
            1.0
        } else {
            a / denom
        }
    }
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

pub fn inc(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

/// One counter per `Reason` (indexed by its discriminant).
struct ReasonCounters([AtomicU64; 64]);

impl Default for ReasonCounters {
    fn default() -> Self {
        const { assert!(Reason::ALL.len() <= 64) };
        ReasonCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}
