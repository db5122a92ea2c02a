//! The shard engine: one thread per shard, the single writer of that shard's order flow.
//!
//! It takes accepted orders from the shard's bounded queue in batches, assigns order ids,
//! encodes one journal record per order into a recycled buffer, registers the orders as in
//! flight in the confirm store, and hands the batch to the journal writer. If the journal's
//! queue is full it waits: accepted orders are never dropped, and the wait shows up upstream
//! as queue watermarks (429/503) — backpressure, not loss.
//!
//! The journal listener (`Listener`, on the writer thread) completes batches: it resolves the
//! confirm store, records durable-confirm latency, releases what failed, and returns the
//! buffers to the engine.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use switchyard_core::reason::ConfirmReason;
use switchyard_core::{ConfirmStatus, OrderId};
use switchyard_journal::{Batch, BatchBuf, CommitStats, DurableListener, JournalHandle};

use crate::clock::{mono_ns, wall_ns};
use crate::confirm::Inflight;
use crate::records::{V3OrderAccepted, KIND_V3_ORDER_ACCEPTED};
use crate::state::{
    BatchMeta, Control, DurableTask, Gateway, OrderMeta, OrderTask, Recycled, Task,
};

const BATCH_BUF_BYTES: usize = 64 * 1024;
/// How long an engine naps through an empty queue before it blocks.
const IDLE_BEFORE_PARK: std::time::Duration = std::time::Duration::from_millis(10);

pub struct Engine {
    pub gw: Arc<Gateway>,
    pub shard: u16,
    pub rx: crossbeam_channel::Receiver<Task>,
    pub recycle_rx: crossbeam_channel::Receiver<Recycled>,
    pub journal: JournalHandle<BatchMeta>,
}

impl Engine {
    pub fn run(mut self) {
        let max = self.gw.cfg.v3.engine_batch_max;
        let mut tasks: Vec<OrderTask> = Vec::with_capacity(max);
        let mut durable: Vec<DurableTask> = Vec::new();
        let mut stop = false;
        let nap_max = std::time::Duration::from_micros(self.gw.cfg.v3.engine_nap_us);
        let nap_min =
            std::time::Duration::from_micros(self.gw.cfg.v3.engine_nap_min_us).min(nap_max);
        let mut idle_since: Option<std::time::Instant> = None;
        while !stop {
            // While the journal writer is busy, nap instead of blocking: a blocked receiver
            // makes every sender pay a wake-up syscall and the engine a context switch per
            // order, and the orders would wait for the writer's next commit anyway — so the
            // nap ends just before that commit can start. When the writer is idle, block and
            // hand orders over at once (lowest latency at light load). After IDLE_BEFORE_PARK
            // without orders, always block: an idle gateway costs no CPU.
            let first = match self.rx.try_recv() {
                Ok(t) => t,
                Err(crossbeam_channel::TryRecvError::Empty) => {
                    let idle = *idle_since.get_or_insert_with(std::time::Instant::now);
                    let until = self.journal.until_next_commit();
                    match until {
                        Some(u) if !nap_max.is_zero() && idle.elapsed() < IDLE_BEFORE_PARK => {
                            std::thread::sleep(u.clamp(nap_min, nap_max));
                            continue;
                        }
                        _ => match self.rx.recv() {
                            Ok(t) => t,
                            Err(_) => break,
                        },
                    }
                }
                Err(crossbeam_channel::TryRecvError::Disconnected) => break,
            };
            idle_since = None;
            stop = self.drain(first, max, &mut tasks, &mut durable).1;
        }
        tracing::debug!(shard = self.shard, "engine stopped");
    }

    /// One pass without waiting: journals what is queued now (up to `V3_ENGINE_BATCH_MAX`
    /// tasks) exactly as `run` does, and returns the number of journal batches submitted
    /// (0 when the queue is empty). For callers that drive the engine from their own thread
    /// (the deterministic simulation, `crates/sim`); `run` is the production loop.
    pub fn step(&mut self) -> usize {
        let Ok(first) = self.rx.try_recv() else {
            return 0;
        };
        let max = self.gw.cfg.v3.engine_batch_max;
        self.drain(first, max, &mut Vec::new(), &mut Vec::new()).0
    }

    /// Takes `first` and up to `max - 1` more queued tasks and journals them: v3 orders as one
    /// batch, durable-path records as another. Returns (batches submitted, stop marker seen).
    fn drain(
        &mut self,
        first: Task,
        max: usize,
        tasks: &mut Vec<OrderTask>,
        durable: &mut Vec<DurableTask>,
    ) -> (usize, bool) {
        let mut stop = false;
        for t in std::iter::once(first).chain(self.rx.try_iter().take(max - 1)) {
            match t {
                Task::Order(o) => tasks.push(o),
                Task::Durable(d) => durable.push(d),
                Task::Stop => {
                    stop = true;
                    break;
                }
            }
        }
        let mut batches = 0;
        if !tasks.is_empty() {
            self.journal_batch(tasks);
            batches += 1;
        }
        if !durable.is_empty() {
            self.journal_durable(durable);
            batches += 1;
        }
        (batches, stop)
    }

    fn journal_batch(&mut self, tasks: &mut Vec<OrderTask>) {
        let gw = &self.gw;
        let (mut buf, mut metas) = self
            .recycle_rx
            .try_recv()
            .unwrap_or_else(|_| (BatchBuf::with_capacity(BATCH_BUF_BYTES), Vec::new()));
        buf.clear();
        metas.clear();
        let now = wall_ns();
        let shard = &gw.shards[self.shard as usize];
        let mut next_order = shard
            .next_order
            .fetch_add(tasks.len() as u64, Ordering::Relaxed);
        {
            // In-flight registration happens before the journal can possibly complete them.
            let mut confirm = shard.confirm.lock();
            for t in tasks.iter() {
                let id = OrderId::new(self.shard, next_order);
                next_order += 1;
                let rec = V3OrderAccepted {
                    order_id: id,
                    session_seq: t.seq,
                    received_at_ns: t.received_at_ns,
                    shard: self.shard,
                    order: t.order,
                    session_id: &t.session.id,
                    account_id: &t.account.id,
                };
                // Payloads are far below the journal's limit; a failure would be a bug.
                let pushed = buf.push_with(KIND_V3_ORDER_ACCEPTED, now, |out| rec.encode(out));
                debug_assert!(pushed.is_ok());
                confirm.push_inflight(Inflight {
                    session: t.session.idx,
                    seq: t.seq,
                    received_at_ns: t.received_at_ns,
                    received_mono_ns: t.received_mono_ns,
                });
            }
            shard.publish_oldest(&confirm);
        }
        for t in tasks.drain(..) {
            metas.push(OrderMeta {
                session: t.session,
                account: t.account,
                seq: t.seq,
                reservation: t.reservation,
            });
        }
        let n = metas.len() as u64;
        gw.metrics.processed.fetch_add(n, Ordering::Relaxed);
        gw.journal_backlog.fetch_add(n, Ordering::Relaxed);
        let batch = Batch {
            records: buf,
            meta: BatchMeta::Orders {
                shard: self.shard,
                orders: metas,
            },
            enqueued_at: Instant::now(),
        };
        if let Err(e) = self.journal.submit(batch) {
            // The journal is gone (shutdown raced or the writer died): these orders are lost
            // suspects, never silently dropped.
            let batch = e.into_batch();
            if let BatchMeta::Orders { orders, .. } = batch.meta {
                fail_orders(
                    gw,
                    self.shard,
                    &orders,
                    ConfirmReason::DurabilityQueueClosed,
                );
            }
        }
    }
}

impl Engine {
    /// Journals durable-path records (already encoded by their request handlers) as one batch.
    fn journal_durable(&mut self, tasks: &mut Vec<DurableTask>) {
        let bytes: usize = tasks
            .iter()
            .flat_map(|t| t.records.iter())
            .map(|(_, p)| p.len() + switchyard_journal::HEADER_LEN)
            .sum();
        let mut buf = BatchBuf::with_capacity(bytes);
        let now = wall_ns();
        let mut metas = Vec::with_capacity(tasks.len());
        for t in tasks.drain(..) {
            let first = buf.len() as u32;
            for (kind, payload) in &t.records {
                // Request handlers bound every field; a failure would be a bug.
                let pushed = buf.push(*kind, now, payload);
                debug_assert!(pushed.is_ok());
            }
            metas.extend(t.meta.map(|mut m| {
                m.record_offset = first;
                m
            }));
        }
        let batch = Batch {
            records: buf,
            meta: BatchMeta::Durable(metas),
            enqueued_at: Instant::now(),
        };
        if let Err(e) = self.journal.submit(batch) {
            if let BatchMeta::Durable(metas) = e.into_batch().meta {
                for m in metas {
                    crate::orders::fail_durable(&self.gw, m);
                }
            }
        }
    }
}

/// Marks orders that never reached the disk and gives back their risk reservations.
fn fail_orders(gw: &Gateway, shard: u16, orders: &[OrderMeta], reason: ConfirmReason) {
    let now = wall_ns();
    let mut done = Vec::with_capacity(orders.len());
    {
        let status = if reason == ConfirmReason::WalDurabilityFailed {
            ConfirmStatus::DurableRejected
        } else {
            ConfirmStatus::LossSuspect
        };
        let shard = &gw.shards[shard as usize];
        let mut c = shard.confirm.lock();
        c.complete_front(orders.len(), Some((status, reason)), now, &mut done);
        shard.publish_oldest(&c);
    }
    gw.journal_backlog
        .fetch_sub(orders.len() as u64, Ordering::Relaxed);
    for o in orders {
        o.account.risk.release(&o.reservation);
    }
}

/// Runs on the journal writer thread after each group commit.
pub struct Listener {
    pub gw: Arc<Gateway>,
    scratch: Vec<Inflight>,
}

impl Listener {
    pub fn new(gw: Arc<Gateway>) -> Listener {
        Listener {
            gw,
            scratch: Vec::new(),
        }
    }
}

impl DurableListener<BatchMeta> for Listener {
    fn on_durable(&mut self, batch: Batch<BatchMeta>, first_seq: u64) {
        let Batch { records, meta, .. } = batch;
        match meta {
            BatchMeta::Orders { shard, orders } => {
                let gw = &self.gw;
                let now_mono = mono_ns();
                self.scratch.clear();
                {
                    let s = &gw.shards[shard as usize];
                    let mut c = s.confirm.lock();
                    c.complete_front(orders.len(), None, 0, &mut self.scratch);
                    s.publish_oldest(&c);
                }
                for e in &self.scratch {
                    gw.metrics
                        .durable_confirm
                        .record(now_mono.saturating_sub(e.received_mono_ns));
                }
                let n = orders.len() as u64;
                gw.metrics.durable_accepted.fetch_add(n, Ordering::Relaxed);
                gw.journal_backlog.fetch_sub(n, Ordering::Relaxed);
                // Dropping the Arcs here, on the writer thread, keeps that work off the engine.
                let _ = gw.shards[shard as usize]
                    .recycle_tx
                    .try_send((records, recycle(orders)));
            }
            BatchMeta::Durable(metas) => {
                for m in metas {
                    crate::orders::apply_durable(&self.gw, m, first_seq);
                }
            }
            BatchMeta::Control { done } => {
                if let Some(d) = done {
                    let _ = d.send(true);
                }
            }
        }
    }

    fn on_failed(&mut self, batch: Batch<BatchMeta>, error: &std::io::Error) {
        let gw = &self.gw;
        crate::metrics::inc(&gw.metrics.durable_write_errors);
        tracing::debug!(%error, "journal write failed; orders of the batch are DURABLE_REJECTED");
        match batch.meta {
            BatchMeta::Orders { shard, orders } => {
                fail_orders(gw, shard, &orders, ConfirmReason::WalDurabilityFailed);
                gw.metrics
                    .durable_rejected
                    .fetch_add(orders.len() as u64, Ordering::Relaxed);
                let rejected = orders.iter().map(|o| (o.session.clone(), o.seq)).collect();
                if gw.control.try_send(Control::Rejected(rejected)).is_err() {
                    tracing::error!("control queue full: a durable rejection was not journaled");
                }
            }
            BatchMeta::Durable(metas) => {
                for m in metas {
                    crate::orders::fail_durable(gw, m);
                }
            }
            BatchMeta::Control { done } => {
                if let Some(d) = done {
                    let _ = d.send(false);
                }
            }
        }
    }

    fn on_commit_failed(&mut self, error: &std::io::Error) {
        let gw = &self.gw;
        if gw.journal_health.commit_failed(mono_ns()) {
            tracing::error!(
                %error,
                hold_ms = gw.cfg.journal.failure_hold_ms,
                "journal commit failed: its orders are DURABLE_REJECTED, and new orders are \
                 refused (V3_JOURNAL_UNAVAILABLE) for a hold, then a few admitted to try the \
                 disk; the hold doubles with each failed commit until one succeeds"
            );
        }
    }

    fn on_commit(&mut self, s: &CommitStats) {
        if self.gw.journal_health.commit_succeeded(mono_ns()) {
            tracing::warn!("journal committing again: new orders are admitted");
        }
        let m = &self.gw.metrics;
        m.fdatasync.record(s.sync_ns);
        m.journal_write.record(s.write_ns);
        m.journal_batch_records.record(s.records);
        m.journal_batch_bytes.record(s.bytes);
        m.journal_commits.fetch_add(1, Ordering::Relaxed);
        m.journal_records.fetch_add(s.records, Ordering::Relaxed);
        m.journal_bytes.fetch_add(s.bytes, Ordering::Relaxed);
    }
}

fn recycle(mut orders: Vec<OrderMeta>) -> Vec<OrderMeta> {
    orders.clear();
    orders
}
