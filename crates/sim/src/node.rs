//! One incarnation of the gateway: built from the journal with the production startup code
//! (`Gateway::new`, `server::build_shards`, `Replayer`, `journal::start_with_replay`,
//! `Venues::resume`), with the shard engines driven by [`Node::pump`] instead of their
//! threads, and dropped whole by [`Node::crash`].
//!
//! The journal writer is the one production thread that runs: the harness hands it one batch
//! at a time (`queue_batches = 1`, no pacing) and waits for the outcome, so every commit holds
//! exactly one batch and the commit numbers the `FaultPlan` counts are the harness's own.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use switchyard_gateway::config::Config;
use switchyard_gateway::engine::{Engine, Listener};
use switchyard_gateway::replay::{ReplayStats, Replayer};
use switchyard_gateway::server::{build_shards, build_verifier};
use switchyard_gateway::state::{BatchMeta, Control, Gateway};
use switchyard_journal::{
    Batch, BatchBuf, CommitStats, DurableListener, FaultPlan, JournalHandle, RecoveryReport,
    WriterConfig, HEADER_LEN,
};

/// What became of one journal batch.
pub(crate) enum Outcome {
    /// Written and (as far as the writer knows) synced. `records` are (kind, payload).
    Durable {
        first_seq: u64,
        records: Vec<(u16, Vec<u8>)>,
        bytes: u64,
    },
    /// The write or the sync failed; `frames` are the records as they were framed on disk.
    Failed { first_seq: u64, frames: Vec<u8> },
}

/// The production listener (`engine::Listener`), wrapped: it reports every outcome to the
/// harness after the real listener has run, and, while `withhold` is set, does not run it at
/// all (the process dies in the middle of the commit: nobody is told anything).
struct SimListener {
    inner: Listener,
    tx: Sender<Outcome>,
    withhold: Arc<AtomicBool>,
}

impl DurableListener<BatchMeta> for SimListener {
    fn on_durable(&mut self, batch: Batch<BatchMeta>, first_seq: u64) {
        let records = batch
            .records
            .iter()
            .map(|r| (r.kind, r.payload.to_vec()))
            .collect();
        let bytes = batch.records.bytes() as u64;
        if self.withhold.load(Ordering::Acquire) {
            drop(batch);
        } else {
            self.inner.on_durable(batch, first_seq);
        }
        let _ = self.tx.send(Outcome::Durable {
            first_seq,
            records,
            bytes,
        });
    }

    fn on_failed(&mut self, batch: Batch<BatchMeta>, error: &std::io::Error) {
        let frames = reframe(&batch.records);
        let first_seq = batch.records.iter().next().map_or(0, |r| r.seq);
        if !self.withhold.load(Ordering::Acquire) {
            self.inner.on_failed(batch, error);
        }
        let _ = self.tx.send(Outcome::Failed { first_seq, frames });
    }

    fn on_commit(&mut self, stats: &CommitStats) {
        if !self.withhold.load(Ordering::Acquire) {
            self.inner.on_commit(stats);
        }
    }

    // Not forwarded: after a failed commit the production listener holds new orders back for
    // a wall-clock time (`journal_health`), which would make a run depend on how fast the
    // machine executes it. The simulation checks what happens to the orders of the failed
    // commit; the hold is tested in `journal_health` and `tests/durability.rs`.
    fn on_commit_failed(&mut self, _error: &std::io::Error) {}
}

/// The records of a stamped batch as framed on disk (the journal's documented layout), for
/// writing back the leftovers of a failed commit whose cut never reached the disk.
fn reframe(records: &BatchBuf) -> Vec<u8> {
    let mut out = Vec::with_capacity(records.bytes());
    for r in records.iter() {
        let start = out.len();
        out.extend_from_slice(&(r.payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&r.seq.to_le_bytes());
        out.extend_from_slice(&r.time_ns.to_le_bytes());
        out.extend_from_slice(&r.kind.to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(r.payload);
        let crc = crc32c::crc32c(&out[start + 8..]);
        out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
        debug_assert_eq!(out.len() - start, HEADER_LEN + r.payload.len());
    }
    out
}

/// Where the segment a commit would be written to stood before it (for the leftovers fault).
#[derive(Debug, Clone)]
pub(crate) struct SegmentMark {
    pub path: PathBuf,
    pub len: u64,
}

/// A commit the fault plan failed, remembered until the next crash.
#[derive(Debug, Clone)]
pub(crate) struct FailedCommit {
    pub first_seq: u64,
    pub frames: Vec<u8>,
    /// The segment the commit went into and its length before it; `None` when the commit
    /// went to a fresh segment of its own (which the writer then replaced: nothing to leave).
    pub segment: Option<SegmentMark>,
    pub sync_failed: bool,
}

pub(crate) struct Node {
    pub gw: Arc<Gateway>,
    engines: Vec<Engine>,
    pub journal: JournalHandle<BatchMeta>,
    writer: Option<JoinHandle<()>>,
    outcomes: Receiver<Outcome>,
    withhold: Arc<AtomicBool>,
    control_rx: Receiver<Control>,
    /// Commits attempted in this writer's life (the fault plan counts the same).
    pub commits: u64,
    /// The restart floor could not be made durable (`Some(true)`: its fdatasync failed), so
    /// the gateway refuses to start, as `server::start` does.
    pub startup_failed: Option<bool>,
    pub plan: FaultPlan,
    pub failed: Option<FailedCommit>,
    pub replay: ReplayStats,
    pub recovery: RecoveryReport,
    segment_bytes: u64,
    journal_dir: PathBuf,
}

/// Longest wait for the writer thread's answer before the run is declared stuck.
const OUTCOME_TIMEOUT: Duration = Duration::from_secs(120);

impl Node {
    /// Starts a gateway over the journal in `cfg.journal.dir`, recovering it as production
    /// startup does.
    pub fn start(cfg: Config, plan: FaultPlan) -> Result<Node, String> {
        let risk = cfg.risk_limits().map_err(|e| format!("risk: {e}"))?;
        let auth = build_verifier(&cfg).map_err(|e| format!("auth: {e}"))?;
        let (control_tx, control_rx) = crossbeam_channel::bounded(65_536);
        let (shards, queues) = build_shards(&cfg);
        let journal_dir = cfg.journal.dir.clone();
        let segment_bytes = cfg.journal.segment_bytes;
        let wcfg = WriterConfig {
            dir: cfg.journal.dir.clone(),
            segment_bytes: cfg.journal.segment_bytes,
            // One batch per commit, no pacing: the harness decides what each commit holds.
            queue_batches: 1,
            fsync: cfg.journal.fsync,
            max_wait: Duration::ZERO,
            max_wait_high: Duration::ZERO,
            commit_records_target: 1,
            // Segments end at their file length here: the harness tears a commit by cutting
            // the file (`tear_tail`), which a segment laid down as zeros would not model.
            preallocate: false,
            fault: Some(plan),
            thread_start: None,
            ..WriterConfig::default()
        };
        let gw = Arc::new(Gateway::new(cfg, risk, auth, shards, control_tx));
        let (tx, outcomes) = crossbeam_channel::unbounded();
        let withhold = Arc::new(AtomicBool::new(false));
        let listener = SimListener {
            inner: Listener::new(gw.clone()),
            tx,
            withhold: withhold.clone(),
        };
        let mut replayer = Replayer::new(&gw);
        let (journal, writer, recovery) =
            switchyard_journal::start_with_replay(wcfg, listener, |r| replayer.apply(r))
                .map_err(|e| format!("journal recovery failed: {e}"))?;
        let replay = match replayer.finish(&recovery) {
            Ok(r) => r,
            Err(e) => {
                drop(journal);
                let _ = writer.join();
                return Err(format!("replay failed: {e}"));
            }
        };
        *gw.journal.lock() = Some(journal.clone());
        for (shard, next) in gw.shards.iter().zip(&replay.next_order) {
            shard.next_order.store(*next, Ordering::Relaxed);
        }
        let engines = queues
            .into_iter()
            .enumerate()
            .map(|(i, (rx, recycle_rx))| Engine {
                gw: gw.clone(),
                shard: i as u16,
                rx,
                recycle_rx,
                journal: journal.clone(),
            })
            .collect();
        let mut commits = 0;
        let mut startup_failed = None;
        let mut failed = None;
        if !replay.clean_shutdown {
            let mark = segment_mark(&journal_dir);
            // As `server::start`: the numbering this incarnation starts from, durable first.
            let (done, mut answer) = tokio::sync::oneshot::channel();
            let batch = Batch::new(
                switchyard_gateway::replay::restart_floor_records(&gw),
                BatchMeta::Control { done: Some(done) },
            );
            if journal.submit(batch).is_err() {
                return Err("the journal writer is gone".into());
            }
            let o = outcomes
                .recv_timeout(OUTCOME_TIMEOUT)
                .map_err(|_| "the journal writer gave no outcome (stuck?)".to_string())?;
            commits = 1;
            match (o, answer.try_recv()) {
                (Outcome::Durable { .. }, Ok(true)) => {}
                (Outcome::Failed { first_seq, frames }, Ok(false)) => {
                    // Production refuses to start; the process is restarted.
                    let sync = plan.fail_sync_at_commit == Some(1);
                    startup_failed = Some(sync);
                    failed = Some(failed_commit(first_seq, frames, mark, segment_bytes, sync));
                }
                _ => return Err("the restart floor's outcome and answer disagree".into()),
            }
        }
        // What `venues::start` does before it starts the session threads.
        gw.venues.resume(&gw);
        Ok(Node {
            gw,
            engines,
            journal,
            writer: Some(writer),
            outcomes,
            withhold,
            control_rx,
            commits,
            startup_failed,
            plan,
            failed,
            replay,
            recovery,
            segment_bytes,
            journal_dir,
        })
    }

    /// Tasks waiting in the shard queues.
    pub fn queued(&self) -> usize {
        self.gw.shards.iter().map(|s| s.depth()).sum()
    }

    /// Runs the engines until their queues are empty (or, with `one`, for a single engine
    /// pass) and returns every commit's outcome, in order. With `withhold`, the listener is
    /// not run: the process is taken to die during these commits.
    pub fn pump(&mut self, one: bool, withhold: bool) -> Result<Vec<Outcome>, String> {
        self.withhold.store(withhold, Ordering::Release);
        let mut out = Vec::new();
        'engines: for i in 0..self.engines.len() {
            loop {
                let next = self.commits + 1;
                let faulted = [
                    self.plan.fail_sync_at_commit,
                    self.plan.fail_write_at_commit,
                ]
                .contains(&Some(next));
                let mark = if faulted {
                    segment_mark(&self.journal_dir)
                } else {
                    None
                };
                let n = self.engines[i].step();
                if n == 0 {
                    break;
                }
                for _ in 0..n {
                    let o = self
                        .outcomes
                        .recv_timeout(OUTCOME_TIMEOUT)
                        .map_err(|_| "the journal writer gave no outcome (stuck?)".to_string())?;
                    self.commits += 1;
                    if let Outcome::Failed { first_seq, frames } = &o {
                        let sync_failed = self.plan.fail_sync_at_commit == Some(self.commits);
                        let write_failed = self.plan.fail_write_at_commit == Some(self.commits);
                        if !sync_failed && !write_failed {
                            return Err(format!(
                                "commit {} failed without an injected fault",
                                self.commits
                            ));
                        }
                        // A commit that needed a new segment went to a fresh file, which the
                        // writer replaced by another of the same name after the failure.
                        self.failed = Some(failed_commit(
                            *first_seq,
                            frames.clone(),
                            mark.clone(),
                            self.segment_bytes,
                            sync_failed,
                        ));
                    } else if [
                        self.plan.fail_sync_at_commit,
                        self.plan.fail_write_at_commit,
                    ]
                    .contains(&Some(self.commits))
                    {
                        return Err(format!(
                            "the fault plan's commit {} did not fail",
                            self.commits
                        ));
                    }
                    out.push(o);
                }
                if one {
                    break 'engines;
                }
            }
        }
        self.withhold.store(false, Ordering::Release);
        // Kill switch changes and v3 rejections for the monitor: none are expected here.
        while self.control_rx.try_recv().is_ok() {}
        Ok(out)
    }

    /// The process dies: everything in memory is dropped (queued tasks, venue link queues,
    /// unanswered requests); the journal writer thread, idle, is joined.
    pub fn crash(self) -> Result<(), String> {
        let Node {
            gw,
            engines,
            journal,
            writer,
            ..
        } = self;
        drop(engines);
        gw.journal.lock().take();
        drop(journal);
        drop(gw);
        if let Some(w) = writer {
            w.join()
                .map_err(|_| "the journal writer thread panicked".to_string())?;
        }
        Ok(())
    }

    pub fn journal_dir(&self) -> &Path {
        &self.journal_dir
    }
}

/// `switchyard_journal::SEGMENT_HEADER_LEN`.
const SEGMENT_HEADER: usize = switchyard_journal::SEGMENT_HEADER_LEN;

/// The last segment of the journal in `dir` and its length now.
fn segment_mark(dir: &Path) -> Option<SegmentMark> {
    let segs = switchyard_journal::list_segments(dir).ok()?;
    let last = segs.last()?;
    let len = std::fs::metadata(&last.path).ok()?.len();
    Some(SegmentMark {
        path: last.path.clone(),
        len,
    })
}

/// The failed commit as it may have been left on disk: in the segment `mark` names, unless
/// the writer's roll replaced that file.
fn failed_commit(
    first_seq: u64,
    frames: Vec<u8>,
    mark: Option<SegmentMark>,
    segment_bytes: u64,
    sync_failed: bool,
) -> FailedCommit {
    let bytes = frames.len() as u64;
    // Left behind only in a segment that held records before: a commit into a segment without
    // records starts at that segment's own first seq, so the writer's roll after the failure
    // creates the replacement under the same name (an atomic rename over it), and a commit
    // too big for the segment went to a fresh one of its own.
    let segment = mark.filter(|m| m.len > SEGMENT_HEADER as u64 && m.len + bytes <= segment_bytes);
    FailedCommit {
        first_seq,
        frames,
        segment,
        sync_failed,
    }
}
