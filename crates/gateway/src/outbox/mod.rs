//! The outbox (§3.9, fixing what the reference left out): a thread that follows the journal and
//! hands every durable record, as a bus event v1, to a [`Sink`] — Kafka in production
//! ([`KafkaSink`]), or the back office directly in the single-node stack.
//!
//! The journal is the outbox: nothing is published that is not durable, and nothing durable is
//! skipped. The sink keeps its own position (the next journal sequence number to publish) and
//! moves it only once what came before is safely delivered, so a crash, a broker outage or a
//! restart resumes where delivery stopped: at-least-once, and every event carries `source` and
//! `seq` so that consumers drop what they see twice. A failed publish is retried from the
//! stored position with a doubling pause (`OUTBOX_BACKOFF_BASE_MS` → `OUTBOX_BACKOFF_MAX_MS`).
//!
//! `Durability: replicated` answers wait here ([`Waiters`]): an order's answer is released when
//! the sink has taken the record that accepted it.

mod events;
mod kafka;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use parking_lot::Mutex;
use switchyard_journal::{frame_record, DurableWatch, JournalCursor};
use switchyard_protocol::bus::BusEvent;

pub use events::{bus_event, SYSTEM_ACCOUNT};
pub use kafka::KafkaSink;

/// Where published events go.
pub trait Sink: Send {
    /// The next journal sequence number to publish, from the sink's durable position.
    fn resume_at(&mut self) -> Result<u64, String>;
    /// Delivers `events` (in journal order) and records, durably, that everything before
    /// `next_seq` is delivered. All or nothing as far as the position goes: on `Err` the
    /// outbox publishes the same records again.
    fn publish(&mut self, events: &[BusEvent], next_seq: u64) -> Result<(), String>;
}

/// Figures for `/metrics`.
#[derive(Debug, Default)]
pub struct OutboxStats {
    /// Next journal sequence number to publish (everything before it is delivered).
    pub next_seq: AtomicU64,
    pub published: AtomicU64,
    /// Records that are no event (clean-shutdown markers, reports about unknown orders).
    pub skipped: AtomicU64,
    pub batches: AtomicU64,
    pub errors: AtomicU64,
    /// Current retry pause, ms (0 when publishing works).
    pub backoff_ms: AtomicU64,
    /// Journal records durable but not yet delivered, as of the last round.
    pub lag_records: AtomicU64,
}

/// Requests waiting for their record to be delivered (`Durability: replicated`).
#[derive(Default)]
pub struct Waiters {
    /// Next sequence number not yet delivered (mirrors `OutboxStats::next_seq`).
    delivered_below: AtomicU64,
    waiting: Mutex<BTreeMap<u64, Vec<tokio::sync::oneshot::Sender<bool>>>>,
}

impl Waiters {
    /// Answers `tx` once journal record `seq` is delivered (at once if it is already).
    pub fn register(&self, seq: u64, tx: tokio::sync::oneshot::Sender<bool>) {
        let mut w = self.waiting.lock();
        if seq < self.delivered_below.load(Ordering::Acquire) {
            let _ = tx.send(true);
            return;
        }
        w.entry(seq).or_default().push(tx);
    }

    fn delivered(&self, below: u64) {
        let mut w = self.waiting.lock();
        self.delivered_below.store(below, Ordering::Release);
        let rest = w.split_off(&below);
        for tx in std::mem::replace(&mut *w, rest).into_values().flatten() {
            let _ = tx.send(true);
        }
    }

    pub fn pending(&self) -> usize {
        self.waiting.lock().values().map(Vec::len).sum()
    }
}

pub struct OutboxConfig {
    pub journal_dir: std::path::PathBuf,
    /// The gateway instance (`GATEWAY_ID`): every event's `source`.
    pub source: String,
    pub batch_max: usize,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

/// A running outbox thread.
pub struct Outbox {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    pub stats: Arc<OutboxStats>,
}

impl Outbox {
    pub fn start(
        cfg: OutboxConfig,
        durable: DurableWatch,
        sink: Box<dyn Sink>,
        stats: Arc<OutboxStats>,
        waiters: Arc<Waiters>,
    ) -> std::io::Result<Outbox> {
        let stop = Arc::new(AtomicBool::new(false));
        let runner = Runner {
            cursor: JournalCursor::new(&cfg.journal_dir),
            cfg,
            durable,
            sink,
            stats: stats.clone(),
            waiters,
            stop: stop.clone(),
            events: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("outbox".into())
            .spawn(move || {
                crate::sched::background();
                runner.run()
            })?;
        Ok(Outbox {
            stop,
            thread: Some(thread),
            stats,
        })
    }

    /// Publishes what is durable now (up to one more round), then stops.
    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
    }
}

struct Runner {
    cfg: OutboxConfig,
    cursor: JournalCursor,
    durable: DurableWatch,
    sink: Box<dyn Sink>,
    stats: Arc<OutboxStats>,
    waiters: Arc<Waiters>,
    stop: Arc<AtomicBool>,
    events: Vec<BusEvent>,
}

/// Pause when there is nothing to publish: short, since `replicated` answers wait for it.
const IDLE: Duration = Duration::from_millis(1);

impl Runner {
    fn run(mut self) {
        let mut backoff = self.cfg.backoff_base;
        let mut next = loop {
            match self.sink.resume_at() {
                Ok(n) => break n.max(1),
                Err(e) => {
                    if !self.fail("reading the outbox position", &e, &mut backoff) {
                        return;
                    }
                }
            }
        };
        self.position(next);
        let mut seek = true;
        loop {
            let stopping = self.stop.load(Ordering::Acquire);
            if seek {
                if let Err(e) = self.cursor.seek(next) {
                    if !self.fail("seeking the journal", &format!("{e:?}"), &mut backoff) {
                        return;
                    }
                    continue;
                }
                seek = false;
            }
            let (last, read_error) = self.read_round(next);
            if let Some(e) = read_error {
                if !self.fail("reading the journal", &e, &mut backoff) {
                    return;
                }
                seek = true;
                continue;
            }
            let Some(last) = last else {
                if stopping {
                    return;
                }
                std::thread::sleep(IDLE);
                continue;
            };
            match self.sink.publish(&self.events, last + 1) {
                Ok(()) => {
                    let s = &self.stats;
                    s.published
                        .fetch_add(self.events.len() as u64, Ordering::Relaxed);
                    s.skipped.fetch_add(
                        (last + 1 - next).saturating_sub(self.events.len() as u64),
                        Ordering::Relaxed,
                    );
                    s.batches.fetch_add(1, Ordering::Relaxed);
                    next = last + 1;
                    self.position(next);
                    backoff = self.cfg.backoff_base;
                    self.stats.backoff_ms.store(0, Ordering::Relaxed);
                }
                Err(e) => {
                    if !self.fail("publishing", &e, &mut backoff) {
                        return;
                    }
                    seek = true;
                }
            }
        }
    }

    /// Reads the durable records from `next` on (at most `batch_max` events) into `events`;
    /// the last sequence number read, if any.
    fn read_round(&mut self, next: u64) -> (Option<u64>, Option<String>) {
        self.events.clear();
        let durable = self.durable.durable_seq();
        self.stats
            .lag_records
            .store(durable.saturating_sub(next - 1), Ordering::Relaxed);
        let mut last = None;
        let mut refreshed = false;
        while self.events.len() < self.cfg.batch_max && self.cursor.next_seq() <= durable {
            match self.cursor.next() {
                Ok(Some(frame)) => {
                    let r = frame_record(frame);
                    if let Some(e) = bus_event(&r, &self.cfg.source) {
                        self.events.push(e);
                    }
                    last = Some(r.seq);
                }
                // The end of what is on disk as last listed: a new segment may have started.
                Ok(None) if !refreshed => {
                    refreshed = true;
                    if let Err(e) = self.cursor.refresh() {
                        return (last, Some(format!("{e:?}")));
                    }
                }
                Ok(None) => break,
                Err(e) => return (last, Some(format!("{e:?}"))),
            }
        }
        (last, None)
    }

    fn position(&self, next: u64) {
        self.stats.next_seq.store(next, Ordering::Relaxed);
        self.waiters.delivered(next);
    }

    /// Counts and logs a failure, then waits out the backoff (doubling it). False when the
    /// outbox is stopping: it gives up instead of waiting.
    fn fail(&self, what: &str, e: &str, backoff: &mut Duration) -> bool {
        let n = self.stats.errors.fetch_add(1, Ordering::Relaxed);
        // An outage fails every round: the first, then every hundredth.
        if n.is_multiple_of(100) {
            tracing::warn!(error = %e, backoff_ms = backoff.as_millis() as u64, "outbox: {what} failed; retrying");
        }
        self.stats
            .backoff_ms
            .store(backoff.as_millis() as u64, Ordering::Relaxed);
        let until = std::time::Instant::now() + *backoff;
        while std::time::Instant::now() < until {
            if self.stop.load(Ordering::Acquire) {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *backoff = (*backoff * 2).min(self.cfg.backoff_max);
        true
    }
}
