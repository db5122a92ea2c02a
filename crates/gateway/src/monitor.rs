//! The monitor thread: everything periodic or rare, kept off the hot path.
//!
//! Each tick (`V3_LOSS_SCAN_INTERVAL_MS`): flag orders not durable within
//! `V3_LOSS_GAP_TIMEOUT_MS` as LOSS_SUSPECT, escalate loss suspects session → shard → global
//! over sliding windows (§3.6), publish each shard's oldest in-flight age for admission, try
//! shard auto-recovery, and garbage-collect expired confirm exceptions. Between ticks it
//! journals what others asked for: kill switch changes and durable rejections.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_journal::{Batch, BatchBuf, JournalHandle};

use crate::clock::{mono_ns, wall_ms, wall_ns};
use crate::metrics::inc;
use crate::records::{
    KillCause, KillScope, KillSwitchChange, V3DurableRejected, KIND_KILL_SWITCH,
    KIND_V3_DURABLE_REJECTED,
};
use crate::state::{BatchMeta, Control, Gateway, Session, Shard};

/// Sliding-window counters of loss suspects (§3.6).
#[derive(Default)]
struct LossWindows {
    sessions: HashMap<u32, VecDeque<u64>>,
    shards: HashMap<u16, VecDeque<u64>>,
    global: VecDeque<u64>,
}

fn bump(w: &mut VecDeque<u64>, now_ms: u64, window_ms: u64, cap: usize) -> usize {
    while w.front().is_some_and(|&t| t + window_ms <= now_ms) {
        w.pop_front();
    }
    if w.len() < cap {
        w.push_back(now_ms);
    }
    w.len()
}

pub struct Monitor {
    gw: Arc<Gateway>,
    rx: crossbeam_channel::Receiver<Control>,
    journal: JournalHandle<BatchMeta>,
    windows: LossWindows,
    scratch: Vec<crate::confirm::Inflight>,
    durable: DurableChores,
}

/// The durable path's periodic work: backpressure measurements, the in-flight controller,
/// and the order store's memory schedule.
struct DurableChores {
    controller: crate::orders::InflightController,
    last_controller: Instant,
    last_disk: Option<Instant>,
    last_gc: Option<Instant>,
    trim: HeapTrim,
}

/// Hands memory that the order store's garbage collection freed back to the system.
///
/// glibc's malloc keeps what `free` returns inside its arenas for reuse. It gives pages back by
/// itself only from the top of an arena, and only once the free top exceeds a threshold that
/// it raises on its own (up to 64 MiB) after large blocks were freed; whatever is freed below
/// live blocks stays resident. After a million orders and keys left memory that was tens of
/// MiB nothing used (`scripts/bench/memory.sh`, docs/benchmarks.md). So after a large
/// collection (`TRIM_AFTER_ENTRIES`, at most once per `TRIM_MIN_INTERVAL`) `malloc_trim`
/// returns every whole free page in the arenas' free lists; it took 0.5–4 ms there, holding
/// one arena lock at a time.
#[derive(Default)]
struct HeapTrim {
    /// Orders, keys and client order ids collected since the last trim.
    collected: u64,
    last: Option<Instant>,
}

const TRIM_AFTER_ENTRIES: u64 = 10_000;
const TRIM_MIN_INTERVAL: Duration = Duration::from_secs(5);

impl HeapTrim {
    /// Counts what a GC step removed; trims when enough was freed since the last trim.
    fn collected(&mut self, entries: u64) {
        self.collected += entries;
        if self.collected < TRIM_AFTER_ENTRIES
            || self.last.is_some_and(|t| t.elapsed() < TRIM_MIN_INTERVAL)
        {
            return;
        }
        let started = Instant::now();
        let released = trim_heap();
        tracing::debug!(
            entries = self.collected,
            released,
            took_us = started.elapsed().as_micros() as u64,
            "heap trimmed after order store GC"
        );
        self.collected = 0;
        self.last = Some(started);
    }
}

/// Returns free memory of the allocator's arenas to the system; true if any was released.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn trim_heap() -> bool {
    // SAFETY: malloc_trim only walks glibc's own arenas under their locks; it takes no
    // pointers from us and is safe to call from any thread at any time.
    unsafe { libc::malloc_trim(0) == 1 }
}

/// Other allocators give memory back by themselves (or offer no such call).
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn trim_heap() -> bool {
    false
}

/// How often the order store's GC visits its next partition (a full round of 64 partitions
/// takes 16 s). A visit walks the partition's maps under its lock, so visiting less often
/// keeps that pause away from the partition's requests; keys and finished orders live for
/// minutes to hours, so a few seconds' delay in collecting them costs nothing.
const GC_STEP_EVERY: Duration = Duration::from_millis(250);

/// How often the journal's size is measured (a directory listing). Its volume's free space
/// is measured every tick (`measure_volume`: one statvfs).
const DISK_MEASURE_EVERY: Duration = Duration::from_secs(1);

impl Monitor {
    pub fn new(
        gw: Arc<Gateway>,
        rx: crossbeam_channel::Receiver<Control>,
        journal: JournalHandle<BatchMeta>,
    ) -> Monitor {
        measure_volume(&gw);
        Monitor {
            gw,
            rx,
            journal,
            windows: LossWindows::default(),
            scratch: Vec::new(),
            durable: DurableChores {
                controller: Default::default(),
                last_controller: Instant::now(),
                last_disk: None,
                last_gc: None,
                trim: HeapTrim::default(),
            },
        }
    }

    /// Runs until the control channel closes (every sender dropped at shutdown).
    pub fn run(mut self) {
        let tick = Duration::from_millis(self.gw.cfg.v3.loss_scan_interval_ms);
        let mut next = Instant::now() + tick;
        loop {
            match self.rx.recv_deadline(next) {
                Ok(Control::Stop) => break,
                Ok(msg) => self.handle(msg),
                Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                    self.tick();
                    next = Instant::now() + tick;
                }
                Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn handle(&mut self, msg: Control) {
        match msg {
            Control::Kill(change, done) => self.journal_kill(&change, done),
            Control::Rejected(list) => self.journal_rejections(&list),
            Control::Loss(session) => self.escalate(&session),
            Control::Stop => {}
        }
    }

    fn journal_kill(
        &self,
        change: &KillSwitchChange,
        done: Option<tokio::sync::oneshot::Sender<bool>>,
    ) {
        let mut buf = BatchBuf::with_capacity(256);
        if buf
            .push_with(KIND_KILL_SWITCH, wall_ns(), |out| change.encode(out))
            .is_err()
        {
            return;
        }
        self.submit(buf, done);
    }

    fn journal_rejections(&self, list: &[(Arc<Session>, u64)]) {
        let mut buf = BatchBuf::with_capacity(64 * list.len());
        for (session, seq) in list {
            let rec = V3DurableRejected {
                session_seq: *seq,
                reason: switchyard_core::reason::ConfirmReason::WalDurabilityFailed as u8,
                session_id: &session.id,
            };
            let _ = buf.push_with(KIND_V3_DURABLE_REJECTED, wall_ns(), |out| rec.encode(out));
        }
        self.submit(buf, None);
    }

    fn submit(&self, records: BatchBuf, done: Option<tokio::sync::oneshot::Sender<bool>>) {
        let batch = Batch {
            records,
            meta: BatchMeta::Control { done },
            enqueued_at: Instant::now(),
        };
        if self.journal.submit(batch).is_err() {
            tracing::error!("journal closed: a control record was not written");
        }
    }

    fn tick(&mut self) {
        let gw = self.gw.clone();
        let v3 = &gw.cfg.v3;
        let now_mono = mono_ns();
        let now = wall_ns();
        for shard in &gw.shards {
            self.scratch.clear();
            {
                let mut c = shard.confirm.lock();
                c.scan_timeouts(
                    now_mono,
                    now,
                    v3.loss_gap_timeout_ms * 1_000_000,
                    v3.loss_scan_batch,
                    &mut self.scratch,
                );
                c.gc(now / 1_000_000, v3.loss_scan_batch);
            }
            if !self.scratch.is_empty() {
                gw.metrics
                    .loss_suspect
                    .fetch_add(self.scratch.len() as u64, Ordering::Relaxed);
                let sessions: HashMap<u32, Arc<Session>> = gw
                    .sessions_snapshot()
                    .into_iter()
                    .map(|s| (s.idx, s))
                    .collect();
                let flagged: Vec<u32> = self.scratch.iter().map(|e| e.session).collect();
                for idx in flagged {
                    if let Some(s) = sessions.get(&idx) {
                        self.escalate(s);
                    }
                }
            }
            if shard.killed.load(Ordering::Acquire) {
                try_recover_shard(&gw, shard);
            }
        }
        self.durable_tick(&gw, now);
    }

    fn durable_tick(&mut self, gw: &Gateway, now_ns: u64) {
        let bp = &gw.durable_bp;
        let age_ms = self
            .journal
            .oldest_pending_age()
            .map_or(0, |d| d.as_millis() as u64);
        bp.wal_age_ms.store(age_ms, Ordering::Relaxed);
        measure_volume(gw);
        let d = &mut self.durable;
        if d.last_disk
            .is_none_or(|t| t.elapsed() >= DISK_MEASURE_EVERY)
        {
            d.last_disk = Some(Instant::now());
            bp.wal_bytes
                .store(journal_bytes(&gw.cfg.journal.dir), Ordering::Relaxed);
        }
        let cfg = &gw.cfg.orders;
        let since = d.last_controller.elapsed();
        if cfg.inflight_dynamic && since >= Duration::from_millis(cfg.inflight_tick_ms) {
            d.last_controller = Instant::now();
            d.controller.tick(bp, cfg, since.as_secs_f64());
        }
        if d.last_gc.is_none_or(|t| t.elapsed() >= GC_STEP_EVERY) {
            d.last_gc = Some(Instant::now());
            let collected = gw.orders.gc_step(now_ns);
            d.trim.collected(collected);
        }
    }

    /// Records a loss suspect of `session` and trips the switches whose window is full.
    fn escalate(&mut self, session: &Session) {
        let gw = &self.gw;
        let v3 = &gw.cfg.v3;
        let now = wall_ms();
        let window = v3.loss_window_sec * 1_000;
        let shard = session.shard;
        let s = bump(
            self.windows.sessions.entry(session.idx).or_default(),
            now,
            window,
            v3.session_loss_suspect_threshold as usize + 1,
        );
        if s >= v3.session_loss_suspect_threshold as usize
            && !session.killed.load(Ordering::Acquire)
        {
            gw.kill(
                KillScope::Session,
                session.id.to_string(),
                KillCause::LossSuspect,
                "session loss-suspect threshold",
            );
        }
        let h = bump(
            self.windows.shards.entry(shard).or_default(),
            now,
            window,
            v3.shard_loss_suspect_threshold as usize + 1,
        );
        if h >= v3.shard_loss_suspect_threshold as usize
            && !gw.shards[shard as usize].killed.load(Ordering::Acquire)
        {
            gw.kill(
                KillScope::Shard,
                shard.to_string(),
                KillCause::LossSuspect,
                "shard loss-suspect threshold",
            );
        }
        let g = bump(
            &mut self.windows.global,
            now,
            window,
            v3.global_loss_suspect_threshold as usize + 1,
        );
        if g >= v3.global_loss_suspect_threshold as usize
            && !gw.global_killed.load(Ordering::Acquire)
        {
            gw.kill(
                KillScope::Global,
                String::new(),
                KillCause::LossSuspect,
                "global loss-suspect threshold",
            );
            for s in &gw.shards {
                gw.kill(
                    KillScope::Shard,
                    s.id.to_string(),
                    KillCause::LossSuspect,
                    "global loss-suspect threshold",
                );
            }
        }
    }
}

/// Shard auto-recovery (§3.6): only kills the gateway made itself, only when enabled, after
/// `V3_KILL_RECOVER_AFTER_MS` and with the queue drained to `V3_KILL_RECOVER_PCT`, and never
/// while the global switch is on. Returns true if the shard is (now) live.
pub fn try_recover_shard(gw: &Gateway, shard: &Shard) -> bool {
    let v3 = &gw.cfg.v3;
    if !v3.kill_auto_recover || gw.global_killed.load(Ordering::Acquire) {
        return false;
    }
    let cause = shard.kill_cause.load(Ordering::Relaxed);
    if cause == KillCause::Operator as u8 {
        return false;
    }
    let since = wall_ms().saturating_sub(shard.killed_at_ms.load(Ordering::Relaxed));
    if since < v3.kill_recover_after_ms || shard.utilization_pct() > v3.kill_recover_pct {
        return false;
    }
    if shard
        .killed
        .compare_exchange(true, false, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
    {
        inc(&gw.metrics.kill_recovered);
        let change = KillSwitchChange {
            scope: KillScope::Shard,
            id: shard.id.to_string(),
            on: false,
            cause: KillCause::AutoRecover,
            by: "gateway".into(),
            note: "auto recovery".into(),
        };
        let _ = gw.control.try_send(Control::Kill(change, None));
    }
    true
}

/// Bytes of the journal's segment files.
fn journal_bytes(dir: &std::path::Path) -> u64 {
    switchyard_journal::list_segments(dir)
        .map(|segs| {
            segs.iter()
                .filter_map(|s| std::fs::metadata(&s.path).ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0)
}

/// Measures the free space of the journal's volume (one statvfs): the percentage for
/// `BACKPRESSURE_DISK_FREE_PCT_MIN`, the bytes for `JOURNAL_DISK_RESERVE_MB` (logging its
/// transitions). Every monitor tick, and once when the monitor is created so that a gateway
/// started on a full disk refuses from its first order. Space as `df` shows it: what an
/// unprivileged writer may use.
fn measure_volume(gw: &Gateway) {
    let Some(st) = crate::journal_health::statvfs(&gw.cfg.journal.dir) else {
        return;
    };
    if st.f_blocks > 0 {
        let pct = st.f_bavail as u128 * 100 / st.f_blocks as u128;
        gw.durable_bp
            .disk_free_pct
            .store(pct as u64, Ordering::Relaxed);
    }
    let free = st.f_bavail.saturating_mul(st.f_frsize);
    match gw.journal_health.measured_free(free) {
        Some(true) => tracing::error!(
            free_mb = free >> 20,
            reserve_mb = gw.cfg.journal.disk_reserve_mb,
            dir = %gw.cfg.journal.dir.display(),
            "journal volume below JOURNAL_DISK_RESERVE_MB: new orders are refused \
             (V3_JOURNAL_UNAVAILABLE, BACKPRESSURE_DISK_FREE) until space is freed; cancels \
             still go through"
        ),
        Some(false) => tracing::warn!(
            free_mb = free >> 20,
            "journal volume has room again: new orders are admitted"
        ),
        None => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the sliding window forgets events older than the window and stays bounded.
    #[test]
    fn window_slides() {
        let mut w = VecDeque::new();
        assert_eq!(bump(&mut w, 0, 100, 10), 1);
        assert_eq!(bump(&mut w, 50, 100, 10), 2);
        assert_eq!(bump(&mut w, 120, 100, 10), 2);
        assert_eq!(bump(&mut w, 300, 100, 10), 1);
        for t in 0..100 {
            bump(&mut w, 300 + t, 1_000, 3);
        }
        assert_eq!(w.len(), 3);
    }
}
