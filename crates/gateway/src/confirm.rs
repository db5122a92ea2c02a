//! The v3 confirm store of one shard: the durable outcome of every `(session, sessionSeq)`.
//!
//! Instead of one map entry per order (the reference's design, which costs ~50 bytes per order
//! for ten minutes and then forgets durable orders), each session keeps a *watermark*: every
//! sequence number at or below it is resolved. Resolved means durable, unless the number has an
//! *exception* (rejected, loss-suspect). Orders cost memory only while in flight (the FIFO
//! below) or when something went wrong (exceptions), and a durable order stays
//! DURABLE_ACCEPTED for as long as the process runs.
//!
//! Writers: the journal listener (durable/failed), the loss monitor (timeouts), ingress on an
//! enqueue failure, replay. All hold the shard's mutex briefly; the accept path never does.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use switchyard_core::reason::ConfirmReason;
use switchyard_core::ConfirmStatus;

/// Most GC'd-exception ranges kept per session before neighbours are merged.
const FORGOTTEN_RANGES_MAX: usize = 1_024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Exception {
    pub status: ConfirmStatus,
    pub reason: ConfirmReason,
    pub received_at_ns: u64,
    pub updated_at_ns: u64,
}

#[derive(Debug, Default)]
struct SessionConfirm {
    /// Every seq ≤ watermark is resolved (durable unless it has an exception).
    watermark: u64,
    /// Resolved seqs above the watermark (out-of-order completion; small).
    ahead: BTreeSet<u64>,
    exceptions: BTreeMap<u64, Exception>,
    /// Seq ranges whose exception was garbage-collected, or that may have been handed out
    /// before a crash and never journaled: answered UNKNOWN.
    forgotten: Vec<(u64, u64)>,
}

impl SessionConfirm {
    fn resolve(&mut self, seq: u64) {
        if seq <= self.watermark {
            return;
        }
        if seq == self.watermark + 1 {
            self.watermark = seq;
            while self.ahead.remove(&(self.watermark + 1)) {
                self.watermark += 1;
            }
        } else {
            self.ahead.insert(seq);
        }
    }

    fn is_resolved(&self, seq: u64) -> bool {
        seq <= self.watermark || self.ahead.contains(&seq)
    }

    fn forget(&mut self, lo: u64, hi: u64) {
        self.forgotten.push((lo, hi));
        if self.forgotten.len() > FORGOTTEN_RANGES_MAX {
            // Merge the two closest neighbours: a few seqs may then read UNKNOWN, never wrong.
            self.forgotten.sort_unstable();
            let i = (0..self.forgotten.len() - 1)
                .min_by_key(|&i| self.forgotten[i + 1].0 - self.forgotten[i].1)
                .unwrap_or(0);
            let next = self.forgotten.remove(i + 1);
            self.forgotten[i].1 = self.forgotten[i].1.max(next.1);
        }
    }

    fn is_forgotten(&self, seq: u64) -> bool {
        self.forgotten
            .iter()
            .any(|&(lo, hi)| lo <= seq && seq <= hi)
    }
}

/// An accepted order waiting for the journal, in journal submission order.
#[derive(Debug, Clone, Copy)]
pub struct Inflight {
    pub session: u32,
    pub seq: u64,
    pub received_at_ns: u64,
    /// Monotonic ns at acceptance, for loss timeouts and durable-confirm latency.
    pub received_mono_ns: u64,
}

/// What a query answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfirmAnswer {
    pub status: ConfirmStatus,
    pub reason: ConfirmReason,
    pub received_at_ns: Option<u64>,
    pub updated_at_ns: Option<u64>,
}

#[derive(Debug, Default)]
pub struct ConfirmStore {
    /// Exceptions are forgotten this long after their last update.
    ttl_ms: u64,
    sessions: HashMap<u32, SessionConfirm>,
    inflight: VecDeque<Inflight>,
    /// How many entries at the front of `inflight` were already flagged LOSS_SUSPECT.
    flagged_front: usize,
    /// (expiry ms, session, seq) of exceptions, oldest first.
    gc: VecDeque<(u64, u32, u64)>,
    exceptions: usize,
}

impl ConfirmStore {
    pub fn new(ttl_ms: u64) -> ConfirmStore {
        ConfirmStore {
            ttl_ms,
            ..ConfirmStore::default()
        }
    }

    /// The engine handed these orders to the journal.
    pub fn push_inflight(&mut self, entry: Inflight) {
        self.inflight.push_back(entry);
    }

    pub fn inflight_len(&self) -> usize {
        self.inflight.len()
    }

    pub fn exceptions_len(&self) -> usize {
        self.exceptions
    }

    /// Age of the oldest order still waiting for durability, if any.
    pub fn oldest_inflight_mono_ns(&self) -> Option<u64> {
        self.inflight.front().map(|i| i.received_mono_ns)
    }

    /// The journal made the next `n` in-flight orders durable (`failed` = None) or they failed
    /// with the given outcome. Returns them so the caller can record latency.
    pub fn complete_front(
        &mut self,
        n: usize,
        failed: Option<(ConfirmStatus, ConfirmReason)>,
        now_ns: u64,
        out: &mut Vec<Inflight>,
    ) {
        for _ in 0..n {
            let Some(e) = self.inflight.pop_front() else {
                debug_assert!(false, "journal completed more orders than were in flight");
                return;
            };
            self.flagged_front = self.flagged_front.saturating_sub(1);
            match failed {
                None => self.durable(e.session, e.seq),
                Some((status, reason)) => {
                    self.set_exception(e.session, e.seq, status, reason, e.received_at_ns, now_ns);
                }
            }
            out.push(e);
        }
    }

    /// Marks one order durable (also used by replay).
    pub fn durable(&mut self, session: u32, seq: u64) {
        let s = self.sessions.entry(session).or_default();
        // A late durable outcome overwrites LOSS_SUSPECT (§3.1).
        if let Some(ex) = s.exceptions.get(&seq) {
            if ex.status == ConfirmStatus::LossSuspect {
                s.exceptions.remove(&seq);
                self.exceptions -= 1;
            }
        }
        s.resolve(seq);
    }

    /// Records a non-durable outcome. Returns false if the current state may not change
    /// (durable outcomes are final, LOSS_SUSPECT is not re-marked).
    pub fn set_exception(
        &mut self,
        session: u32,
        seq: u64,
        status: ConfirmStatus,
        reason: ConfirmReason,
        received_at_ns: u64,
        now_ns: u64,
    ) -> bool {
        let s = self.sessions.entry(session).or_default();
        let current = match s.exceptions.get(&seq) {
            Some(e) => e.status,
            None if s.is_resolved(seq) => ConfirmStatus::DurableAccepted,
            None => ConfirmStatus::VolatileAccept,
        };
        if !current.may_become(status) {
            return false;
        }
        let fresh = s
            .exceptions
            .insert(
                seq,
                Exception {
                    status,
                    reason,
                    received_at_ns,
                    updated_at_ns: now_ns,
                },
            )
            .is_none();
        if fresh {
            self.exceptions += 1;
        }
        self.gc
            .push_back((now_ns / 1_000_000 + self.ttl_ms, session, seq));
        // Rejections and ingress losses are outcomes; a timeout flag still waits for one.
        if status != ConfirmStatus::LossSuspect || reason != ConfirmReason::DurableConfirmTimeout {
            s.resolve(seq);
        }
        true
    }

    /// Loss monitor: flags orders in flight for longer than `timeout_ns` (at most `budget`).
    pub fn scan_timeouts(
        &mut self,
        now_mono_ns: u64,
        now_ns: u64,
        timeout_ns: u64,
        budget: usize,
        flagged: &mut Vec<Inflight>,
    ) {
        let mut i = self.flagged_front;
        while i < self.inflight.len() && flagged.len() < budget {
            let e = self.inflight[i];
            if now_mono_ns.saturating_sub(e.received_mono_ns) < timeout_ns {
                break;
            }
            if self.set_exception(
                e.session,
                e.seq,
                ConfirmStatus::LossSuspect,
                ConfirmReason::DurableConfirmTimeout,
                e.received_at_ns,
                now_ns,
            ) {
                flagged.push(e);
            }
            i += 1;
        }
        self.flagged_front = i;
    }

    /// Forgets exceptions older than their TTL (their seqs then read UNKNOWN).
    pub fn gc(&mut self, now_ms: u64, budget: usize) -> usize {
        let ttl_ms = self.ttl_ms;
        let mut removed = 0;
        while removed < budget {
            let Some(&(expiry, session, seq)) = self.gc.front() else {
                break;
            };
            if expiry > now_ms {
                break;
            }
            self.gc.pop_front();
            if let Some(s) = self.sessions.get_mut(&session) {
                let stale = s
                    .exceptions
                    .get(&seq)
                    .is_some_and(|e| e.updated_at_ns / 1_000_000 + ttl_ms <= now_ms);
                if stale {
                    s.exceptions.remove(&seq);
                    s.forget(seq, seq);
                    self.exceptions -= 1;
                    removed += 1;
                }
            }
        }
        removed
    }

    /// After replay: seqs up to `journaled_max` not found in the journal were lost in the
    /// crash (LOSS_SUSPECT); seqs in `(journaled_max, next_start)` may never have existed
    /// (UNKNOWN). Returns how many orders were marked lost.
    pub fn seal_after_restart(
        &mut self,
        session: u32,
        journaled_max: u64,
        next_start: u64,
        now_ns: u64,
    ) -> u64 {
        let s = self.sessions.entry(session).or_default();
        let mut lost = 0;
        let mut seq = s.watermark + 1;
        while seq <= journaled_max {
            if !s.ahead.contains(&seq) && !s.exceptions.contains_key(&seq) {
                s.exceptions.insert(
                    seq,
                    Exception {
                        status: ConfirmStatus::LossSuspect,
                        reason: ConfirmReason::LostOnRestart,
                        received_at_ns: 0,
                        updated_at_ns: now_ns,
                    },
                );
                self.exceptions += 1;
                lost += 1;
            }
            seq += 1;
        }
        s.ahead.clear();
        s.watermark = s.watermark.max(journaled_max);
        if next_start > journaled_max + 1 {
            s.forget(journaled_max + 1, next_start - 1);
            s.watermark = next_start - 1;
        }
        lost
    }

    /// Answers a confirm query. `assigned` is the session's last handed-out seq.
    pub fn query(&self, session: u32, seq: u64, assigned: u64) -> ConfirmAnswer {
        let unknown = ConfirmAnswer {
            status: ConfirmStatus::Unknown,
            reason: ConfirmReason::None,
            received_at_ns: None,
            updated_at_ns: None,
        };
        if seq == 0 || seq > assigned {
            return unknown;
        }
        let Some(s) = self.sessions.get(&session) else {
            // Handed out but nothing recorded yet: still on its way through the engine.
            return ConfirmAnswer {
                status: ConfirmStatus::VolatileAccept,
                ..unknown
            };
        };
        if let Some(e) = s.exceptions.get(&seq) {
            return ConfirmAnswer {
                status: e.status,
                reason: e.reason,
                received_at_ns: Some(e.received_at_ns).filter(|&t| t > 0),
                updated_at_ns: Some(e.updated_at_ns),
            };
        }
        if s.is_forgotten(seq) {
            return unknown;
        }
        let status = if s.is_resolved(seq) {
            ConfirmStatus::DurableAccepted
        } else {
            ConfirmStatus::VolatileAccept
        };
        ConfirmAnswer { status, ..unknown }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inflight(seq: u64) -> Inflight {
        Inflight {
            session: 1,
            seq,
            received_at_ns: 10,
            received_mono_ns: seq,
        }
    }

    // Goal: orders move VOLATILE → DURABLE in order, and out of order, with no per-order entry.
    #[test]
    fn watermark_moves() {
        let mut c = ConfirmStore::default();
        for s in 1..=3 {
            c.push_inflight(inflight(s));
        }
        assert_eq!(c.query(1, 2, 3).status, ConfirmStatus::VolatileAccept);
        let mut out = Vec::new();
        c.complete_front(2, None, 0, &mut out);
        assert_eq!(c.query(1, 2, 3).status, ConfirmStatus::DurableAccepted);
        assert_eq!(c.query(1, 3, 3).status, ConfirmStatus::VolatileAccept);
        assert_eq!(c.query(1, 4, 3).status, ConfirmStatus::Unknown);
        c.durable(1, 5);
        assert_eq!(c.query(1, 5, 5).status, ConfirmStatus::DurableAccepted);
        assert_eq!(c.query(1, 4, 5).status, ConfirmStatus::VolatileAccept);
        assert_eq!(c.exceptions_len(), 0);
    }

    // Goal: a failed write is DURABLE_REJECTED and is final.
    #[test]
    fn failed_write_is_final() {
        let mut c = ConfirmStore::default();
        c.push_inflight(inflight(1));
        let mut out = Vec::new();
        c.complete_front(
            1,
            Some((
                ConfirmStatus::DurableRejected,
                ConfirmReason::WalDurabilityFailed,
            )),
            5,
            &mut out,
        );
        let a = c.query(1, 1, 1);
        assert_eq!(a.status, ConfirmStatus::DurableRejected);
        assert_eq!(a.reason, ConfirmReason::WalDurabilityFailed);
        c.durable(1, 1);
        assert_eq!(c.query(1, 1, 1).status, ConfirmStatus::DurableRejected);
    }

    // Goal: a timeout flags LOSS_SUSPECT once, and a late durable outcome overwrites it.
    #[test]
    fn loss_suspect_then_durable() {
        let mut c = ConfirmStore::default();
        c.push_inflight(inflight(1));
        c.push_inflight(inflight(2));
        let mut flagged = Vec::new();
        c.scan_timeouts(1_000, 0, 999, 10, &mut flagged);
        assert_eq!(flagged.len(), 1);
        c.scan_timeouts(1_000, 0, 999, 10, &mut flagged);
        assert_eq!(flagged.len(), 1, "not re-marked");
        assert_eq!(c.query(1, 1, 2).status, ConfirmStatus::LossSuspect);
        let mut out = Vec::new();
        c.complete_front(2, None, 0, &mut out);
        assert_eq!(c.query(1, 1, 2).status, ConfirmStatus::DurableAccepted);
        assert_eq!(c.exceptions_len(), 0);
    }

    // Goal: after a crash, journaled orders stay durable, holes are lost, the skipped range is
    // unknown, and nothing is invented.
    #[test]
    fn seal_after_restart() {
        let mut c = ConfirmStore::default();
        for s in [1, 2, 4] {
            c.durable(1, s);
        }
        let lost = c.seal_after_restart(1, 4, 100, 0);
        assert_eq!(lost, 1);
        assert_eq!(c.query(1, 2, 100).status, ConfirmStatus::DurableAccepted);
        assert_eq!(c.query(1, 3, 100).status, ConfirmStatus::LossSuspect);
        assert_eq!(c.query(1, 4, 100).status, ConfirmStatus::DurableAccepted);
        assert_eq!(c.query(1, 50, 100).status, ConfirmStatus::Unknown);
        c.durable(1, 100);
        assert_eq!(c.query(1, 100, 100).status, ConfirmStatus::DurableAccepted);
    }

    // Goal: expired exceptions are forgotten as UNKNOWN, never turned into DURABLE.
    #[test]
    fn gc_forgets_as_unknown() {
        let mut c = ConfirmStore::new(10);
        c.set_exception(
            1,
            1,
            ConfirmStatus::DurableRejected,
            ConfirmReason::WalDurabilityFailed,
            0,
            0,
        );
        assert_eq!(c.gc(5, 100), 0);
        assert_eq!(c.gc(10, 100), 1);
        assert_eq!(c.query(1, 1, 1).status, ConfirmStatus::Unknown);
    }
}
