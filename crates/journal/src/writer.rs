//! The group-commit writer thread.
//!
//! Producers submit [`Batch`]es into a bounded queue. The writer blocks on
//! the first batch (no polling: an idle journal costs no CPU), takes whatever
//! else is queued up to `max_commit_bytes`, stamps sequence numbers and CRCs,
//! and makes the whole group durable with one write and one `fdatasync`.
//! Only then does it publish the durable watermark and tell the listener.
//!
//! Failure policy (write or fsync error):
//! * every batch of the failed commit goes to [`DurableListener::on_failed`];
//! * the segment is cut back to its length before the commit (best effort)
//!   and abandoned: after a failed fsync the kernel may have dropped dirty
//!   pages and a later fsync of the same file can falsely succeed, so that
//!   file is never synced again; the writer rolls to a new segment at once;
//! * sequence numbers rewind to the last durable one, so the records that do
//!   reach the log stay contiguous. If the cut did not reach the disk, the
//!   failed records remain in the old segment past the new segment's first
//!   seq; readers recognise and discard them (see `reader.rs`).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TryRecvError, TrySendError};

use crate::error::JournalError;
use crate::reader::{replay, RecoveryReport};
use crate::record::{stamp_batch, BatchBuf, Record, HEADER_LEN, MAX_BATCH_BYTES};
use crate::segment::{
    create_segment, discard_spare, install_spare, list_segments, prepare_spare, remove_stale_temps,
    Spare, SEGMENT_HEADER_LEN,
};

/// Largest accepted `queue_batches`.
const MAX_QUEUE_BATCHES: usize = 1 << 20;
/// Largest accepted `segment_bytes` (1 TiB).
const MAX_SEGMENT_BYTES: u64 = 1 << 40;

/// Test hook: makes the Nth commit (1-based, counting commits that reach
/// the disk) fail with an `io::Error` instead of writing, or write and then
/// fail instead of syncing. Lets callers prove how they handle a journal
/// that cannot make records durable. Not for production configs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub fail_write_at_commit: Option<u64>,
    /// How many consecutive commits fail from `fail_write_at_commit` on (0 and 1: that one).
    pub fail_write_commits: u64,
    pub fail_sync_at_commit: Option<u64>,
    /// Sleeps this long before every sync: a slow disk, so that callers can test their
    /// backpressure and timeouts deterministically.
    pub sync_delay: Option<Duration>,
}

/// Writer configuration.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Journal directory (created if missing).
    pub dir: PathBuf,
    /// Roll to a new segment when the current one would grow past this.
    pub segment_bytes: u64,
    /// Capacity of the submission queue, in batches.
    pub queue_batches: usize,
    /// Cap on the bytes of one group commit (a larger single batch is still
    /// committed, alone).
    pub max_commit_bytes: usize,
    /// `fdatasync` each commit. `false` only for tests and benchmarks:
    /// records are then "durable" as soon as the OS has them, which a power
    /// cut can undo.
    pub fsync: bool,
    /// Group-commit pacing: at most one commit per `max_wait`. A commit whose first batch
    /// arrives later than `max_wait` after the previous commit started goes at once (no added
    /// latency at low load); under load the writer gathers until that interval has passed (or
    /// `commit_records_target` records are in). Each fdatasync costs CPU as well as time, so
    /// syncing a handful of records at a time wastes a core; 0 = never wait.
    pub max_wait: Duration,
    /// Upper bound of the pacing interval. The interval grows with the record rate
    /// (20 ns per record/s: 200 µs at 10 k/s, 1 ms at 50 k/s), so the CPU spent in fdatasync
    /// stays bounded as load grows while light loads keep the short interval. Equal to
    /// `max_wait` = fixed pacing.
    pub max_wait_high: Duration,
    /// Stop waiting once this many records are gathered.
    pub commit_records_target: usize,
    /// Test hook, see [`FaultPlan`]. `None` in production.
    pub fault: Option<FaultPlan>,
    /// Called first on the writer's threads, `journal-writer` and `journal-prep` (the gateway
    /// sets their scheduling policy there).
    pub thread_start: Option<fn()>,
    /// Lay each next segment down as zeros in advance (thread `journal-prep`), so that
    /// commits overwrite allocated blocks instead of growing the file and every fdatasync
    /// flushes data only (see `segment::prepare_spare`). Only with `fsync` and segments of
    /// at most 1 GiB; otherwise, and until a spare is ready, commits append.
    pub preallocate: bool,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            dir: PathBuf::from("journal"),
            segment_bytes: 64 << 20,
            queue_batches: 4096,
            max_commit_bytes: 8 << 20,
            fsync: true,
            max_wait: Duration::ZERO,
            max_wait_high: Duration::ZERO,
            commit_records_target: 1024,
            fault: None,
            thread_start: None,
            preallocate: true,
        }
    }
}

impl WriterConfig {
    /// Default configuration for the journal in `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        WriterConfig {
            dir: dir.into(),
            ..WriterConfig::default()
        }
    }

    fn validate(&self) -> Result<(), JournalError> {
        let min_segment = (SEGMENT_HEADER_LEN + HEADER_LEN) as u64;
        if !(min_segment..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes) {
            return Err(JournalError::Config("segment_bytes must be in 44..=1 TiB"));
        }
        if !(1..=MAX_QUEUE_BATCHES).contains(&self.queue_batches) {
            return Err(JournalError::Config(
                "queue_batches must be in 1..=1_048_576",
            ));
        }
        if !(1..=MAX_BATCH_BYTES).contains(&self.max_commit_bytes) {
            return Err(JournalError::Config(
                "max_commit_bytes must be in 1..=64 MiB",
            ));
        }
        Ok(())
    }
}

/// A batch of records submitted to the writer, with caller metadata `T`
/// handed back to the listener (e.g. which orders it holds).
#[derive(Debug)]
pub struct Batch<T> {
    pub records: BatchBuf,
    pub meta: T,
    /// When the batch was created; drives [`JournalHandle::oldest_pending_age`].
    pub enqueued_at: Instant,
}

impl<T> Batch<T> {
    /// A batch stamped with the current time.
    pub fn new(records: BatchBuf, meta: T) -> Self {
        Batch {
            records,
            meta,
            enqueued_at: Instant::now(),
        }
    }
}

/// Per-commit numbers for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CommitStats {
    pub records: u64,
    pub bytes: u64,
    pub batches: u32,
    pub write_ns: u64,
    pub sync_ns: u64,
    /// Highest sequence number made durable by this commit.
    pub last_seq: u64,
}

/// Receives commit outcomes. Runs on the writer thread, so it must be quick
/// and must never block on submitting to the same journal (the queue may be
/// full of batches only this thread can drain). Keeping a [`JournalHandle`]
/// inside the listener would also keep the writer from ever shutting down.
pub trait DurableListener<T>: Send + 'static {
    /// The batch's records are written and fdatasync'ed; they got sequence
    /// numbers `first_seq..first_seq + batch.records.len()`. Called in
    /// submission order. The batch's buffer holds the stamped records.
    fn on_durable(&mut self, batch: Batch<T>, first_seq: u64);
    /// Writing or syncing failed: these records are NOT durable and are not
    /// part of the log.
    fn on_failed(&mut self, batch: Batch<T>, error: &io::Error);
    /// Once per successful group commit, before its `on_durable` calls.
    fn on_commit(&mut self, stats: &CommitStats) {
        let _ = stats;
    }
    /// Once per failed group commit, before its `on_failed` calls.
    fn on_commit_failed(&mut self, error: &io::Error) {
        let _ = error;
    }
}

/// Why a submission was refused; the batch is handed back either way.
pub enum SubmitError<T> {
    /// The queue is full (only from `try_submit`).
    Full(Batch<T>),
    /// The writer thread is gone (it only exits early if the listener panicked).
    Closed(Batch<T>),
}

impl<T> SubmitError<T> {
    pub fn into_batch(self) -> Batch<T> {
        match self {
            SubmitError::Full(b) | SubmitError::Closed(b) => b,
        }
    }
}

impl<T> std::fmt::Debug for SubmitError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("Full(..)"),
            SubmitError::Closed(_) => f.write_str("Closed(..)"),
        }
    }
}

impl<T> std::fmt::Display for SubmitError<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubmitError::Full(_) => f.write_str("journal queue is full"),
            SubmitError::Closed(_) => f.write_str("journal writer has stopped"),
        }
    }
}

impl<T> std::error::Error for SubmitError<T> {}

/// State shared between handles and the writer; everything is an atomic so
/// that readers (metrics, backpressure) never contend with the writer.
struct Shared {
    durable_seq: AtomicU64,
    last_assigned: AtomicU64,
    /// Enqueue time of the oldest unfinished batch, as ns since `epoch` plus
    /// one; 0 means none. The writer sets it for what it holds; a producer
    /// sets it only when it is 0, so a batch queued while the writer is busy
    /// in listener callbacks is still seen.
    oldest_pending: AtomicU64,
    /// True while the writer is gathering, writing or syncing a commit (false while it waits
    /// for work), so producers can tell whether handing over a batch now would be faster.
    busy: std::sync::atomic::AtomicBool,
    /// Earliest start of the next commit (pacing), as ns since `epoch`.
    next_commit_at: AtomicU64,
    /// Segments the writer rolled to: laid down in advance, and plain (none was ready).
    rolls_preallocated: AtomicU64,
    rolls_plain: AtomicU64,
    epoch: Instant,
}

impl Shared {
    fn new(last_seq: u64) -> Self {
        Shared {
            durable_seq: AtomicU64::new(last_seq),
            last_assigned: AtomicU64::new(last_seq),
            oldest_pending: AtomicU64::new(0),
            busy: std::sync::atomic::AtomicBool::new(false),
            next_commit_at: AtomicU64::new(0),
            rolls_preallocated: AtomicU64::new(0),
            rolls_plain: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn encode_instant(&self, t: Instant) -> u64 {
        let ns = t.saturating_duration_since(self.epoch).as_nanos();
        u64::try_from(ns).unwrap_or(u64::MAX - 1) + 1
    }

    /// Writer side: publishes the oldest batch it holds (or none).
    fn mark_oldest(&self, at: Option<Instant>) {
        let v = at.map_or(0, |t| self.encode_instant(t));
        self.oldest_pending.store(v, Ordering::Release);
    }

    /// Producer side, called before sending: claims the marker only if no
    /// batch is pending. Doing it before the send (not after) means a batch
    /// the writer has already finished can never leave a stale marker behind
    /// (the writer overwrites the marker after every commit). A refused
    /// `try_submit` can leave one only while the queue is full, i.e. while
    /// the writer is busy and about to overwrite it.
    fn note_submit(&self, at: Instant) {
        if self.oldest_pending.load(Ordering::Relaxed) == 0 {
            let v = self.encode_instant(at);
            let _ = self
                .oldest_pending
                .compare_exchange(0, v, Ordering::AcqRel, Ordering::Relaxed);
        }
    }
}

/// Handle to the writer thread. Cheap to clone; the writer shuts down after
/// the last clone is dropped and the queue is drained.
pub struct JournalHandle<T> {
    tx: Sender<Batch<T>>,
    shared: Arc<Shared>,
}

impl<T> Clone for JournalHandle<T> {
    fn clone(&self) -> Self {
        JournalHandle {
            tx: self.tx.clone(),
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> std::fmt::Debug for JournalHandle<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalHandle")
            .field(
                "durable_seq",
                &self.shared.durable_seq.load(Ordering::Relaxed),
            )
            .field("queued_batches", &self.tx.len())
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> JournalHandle<T> {
    /// Non-blocking submit; gives the batch back if the queue is full or the
    /// writer is gone.
    pub fn try_submit(&self, batch: Batch<T>) -> Result<(), SubmitError<T>> {
        self.shared.note_submit(batch.enqueued_at);
        self.tx.try_send(batch).map_err(|e| match e {
            TrySendError::Full(b) => SubmitError::Full(b),
            TrySendError::Disconnected(b) => SubmitError::Closed(b),
        })
    }

    /// Blocking submit: waits for queue space, so backpressure reaches the
    /// caller instead of an accepted record being dropped.
    pub fn submit(&self, batch: Batch<T>) -> Result<(), SubmitError<T>> {
        self.shared.note_submit(batch.enqueued_at);
        self.tx.send(batch).map_err(|e| SubmitError::Closed(e.0))
    }

    /// Batches waiting in the queue (not counting the commit in flight).
    /// True while the writer is in a commit. A producer that finds it busy can batch up a
    /// little longer at no cost in latency: its records would wait for this commit anyway.
    pub fn writer_busy(&self) -> bool {
        self.shared.busy.load(Ordering::Relaxed) || !self.tx.is_empty()
    }

    /// How long until the writer may start its next commit (its pacing), if it is busy now:
    /// a producer that hands its batch over just before then joins that commit without
    /// waking anyone earlier than needed. `None` when the writer is idle.
    pub fn until_next_commit(&self) -> Option<Duration> {
        if !self.writer_busy() {
            return None;
        }
        let at = self.shared.next_commit_at.load(Ordering::Relaxed);
        let now = self.shared.encode_instant(Instant::now());
        Some(Duration::from_nanos(at.saturating_sub(now)))
    }

    pub fn queued_batches(&self) -> usize {
        self.tx.len()
    }

    /// Segments this writer rolled to since it started: (laid down in advance, plain). Plain
    /// rolls while preallocation is on mean `journal-prep` was not ready (or is failing).
    pub fn rolls(&self) -> (u64, u64) {
        let s = &self.shared;
        (
            s.rolls_preallocated.load(Ordering::Relaxed),
            s.rolls_plain.load(Ordering::Relaxed),
        )
    }

    pub fn queue_capacity(&self) -> usize {
        self.tx.capacity().unwrap_or(0)
    }

    /// Highest sequence number known to be durable.
    pub fn durable_seq(&self) -> u64 {
        self.shared.durable_seq.load(Ordering::Acquire)
    }

    /// A view of the durable watermark that does not keep the writer running.
    pub fn durable_watch(&self) -> DurableWatch {
        DurableWatch(Arc::clone(&self.shared))
    }

    /// Highest sequence number handed out to a commit in flight (rewinds if
    /// that commit fails).
    pub fn last_assigned_seq(&self) -> u64 {
        self.shared.last_assigned.load(Ordering::Acquire)
    }

    /// Age of the oldest batch submitted but not yet durable (or failed), for
    /// "journal age" backpressure: one atomic load. It is exact for what the
    /// writer holds; a batch racing with the end of a commit can be missed
    /// for the duration of that commit's listener callbacks.
    pub fn oldest_pending_age(&self) -> Option<Duration> {
        match self.shared.oldest_pending.load(Ordering::Acquire) {
            0 => None,
            v => {
                let at = Duration::from_nanos(v - 1);
                Some(self.shared.epoch.elapsed().saturating_sub(at))
            }
        }
    }
}

/// Read-only view of a journal's durable watermark that does not keep the
/// writer alive (unlike a [`JournalHandle`], which holds the submission
/// queue open). Followers such as the audit chain poll it.
#[derive(Clone)]
pub struct DurableWatch(Arc<Shared>);

impl DurableWatch {
    /// A watermark that never moves: for offline tools and tests that follow
    /// a journal no writer is appending to.
    pub fn fixed(durable_seq: u64) -> Self {
        DurableWatch(Arc::new(Shared::new(durable_seq)))
    }

    /// Highest sequence number known to be durable.
    pub fn durable_seq(&self) -> u64 {
        self.0.durable_seq.load(Ordering::Acquire)
    }
}

impl std::fmt::Debug for DurableWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("DurableWatch")
            .field(&self.durable_seq())
            .finish()
    }
}

/// Opens (or creates) the journal in `cfg.dir`, recovers its tail (see
/// [`replay`]) and starts the writer thread `journal-writer`.
pub fn start<T: Send + 'static, L: DurableListener<T>>(
    cfg: WriterConfig,
    listener: L,
) -> Result<(JournalHandle<T>, JoinHandle<()>, RecoveryReport), JournalError> {
    start_with_replay(cfg, listener, |_| {})
}

/// Like [`start`], but also hands every recovered record to `f`, so a caller
/// that rebuilds its state from the journal reads it only once at startup.
pub fn start_with_replay<T: Send + 'static, L: DurableListener<T>>(
    cfg: WriterConfig,
    listener: L,
    f: impl FnMut(Record<'_>),
) -> Result<(JournalHandle<T>, JoinHandle<()>, RecoveryReport), JournalError> {
    cfg.validate()?;
    std::fs::create_dir_all(&cfg.dir).map_err(|e| JournalError::io(&cfg.dir, e))?;
    remove_stale_temps(&cfg.dir)?;
    let report = replay(&cfg.dir, f)?;
    let seg = open_tail_segment(&cfg, report.last_seq + 1)?;
    tracing::info!(
        dir = %cfg.dir.display(), segments = report.segments, records = report.records,
        last_seq = report.last_seq, truncated_bytes = report.truncated_bytes, "journal recovered"
    );
    let shared = Arc::new(Shared::new(report.last_seq));
    let (tx, rx) = crossbeam_channel::bounded(cfg.queue_batches);
    let spares = Spares::start(&cfg)?;
    let mut writer = Writer::new(
        cfg,
        rx,
        Arc::clone(&shared),
        listener,
        seg,
        report.last_seq + 1,
    );
    writer.spares = spares;
    let thread_start = writer.cfg.thread_start;
    let join = thread::Builder::new()
        .name("journal-writer".into())
        .spawn(move || {
            if let Some(f) = thread_start {
                f();
            }
            writer.run()
        })
        .map_err(JournalError::Spawn)?;
    Ok((JournalHandle { tx, shared }, join, report))
}

/// The segment currently written to. Commits go at `len` (positioned writes): past the end
/// of a plain segment, over zeros in a preallocated one.
struct ActiveSegment {
    file: File,
    path: PathBuf,
    /// Bytes of header and records.
    len: u64,
    /// `len` when this process took the segment over.
    opened_len: u64,
    /// Laid down as zeros in advance (a spare), so the file is longer than `len`.
    preallocated: bool,
}

impl ActiveSegment {
    fn create(cfg: &WriterConfig, first_seq: u64) -> io::Result<Self> {
        let (file, path) = create_segment(&cfg.dir, first_seq, cfg.fsync)?;
        Ok(ActiveSegment::new(
            file,
            path,
            SEGMENT_HEADER_LEN as u64,
            false,
        ))
    }

    fn new(file: File, path: PathBuf, len: u64, preallocated: bool) -> Self {
        ActiveSegment {
            file,
            path,
            len,
            opened_len: len,
            preallocated,
        }
    }

    fn has_records(&self) -> bool {
        self.len > SEGMENT_HEADER_LEN as u64
    }

    /// Done with: a preallocated segment gives its unused zeros back, so a finished segment
    /// ends at its last record like any other. Not synced: if the cut is lost in a crash,
    /// readers take the zeros for what they are (unwritten space).
    fn seal(self) {
        if self.preallocated {
            if let Err(e) = self.file.set_len(self.len) {
                tracing::warn!(segment = %self.path.display(), error = %e, "journal: cannot cut a finished segment's unused space");
            }
        }
    }
}

/// Largest segment laid down in advance (bigger ones append).
const MAX_PREALLOCATE_BYTES: u64 = 1 << 30;
/// A plain segment asks for a spare after this many bytes written by this process, so an
/// idle or lightly used journal never writes a segment of zeros.
const PLAIN_BYTES_BEFORE_SPARE: u64 = 1 << 20;
/// Wait before retrying a spare that could not be prepared, doubling with each failure in a
/// row up to `SPARE_RETRY_MAX` (on a full disk each try writes until ENOSPC).
const SPARE_RETRY: Duration = Duration::from_secs(1);
const SPARE_RETRY_MAX: Duration = Duration::from_secs(64);

/// The writer's end of the `journal-prep` thread: asks for the next segment's zeros early
/// enough that they are ready when it rolls. At most one spare is asked for or held.
struct Spares {
    want: Sender<()>,
    ready: Receiver<Spare>,
    held: Option<Spare>,
    asked: bool,
}

impl Spares {
    fn start(cfg: &WriterConfig) -> Result<Option<Spares>, JournalError> {
        if !cfg.preallocate || !cfg.fsync || cfg.segment_bytes > MAX_PREALLOCATE_BYTES {
            return Ok(None);
        }
        let (want, want_rx) = crossbeam_channel::bounded::<()>(1);
        let (ready_tx, ready) = crossbeam_channel::bounded::<Spare>(1);
        let (dir, bytes, thread_start) = (cfg.dir.clone(), cfg.segment_bytes, cfg.thread_start);
        thread::Builder::new()
            .name("journal-prep".into())
            .spawn(move || {
                if let Some(f) = thread_start {
                    f();
                }
                prepare_spares(&dir, bytes, &want_rx, &ready_tx)
            })
            .map_err(JournalError::Spawn)?;
        Ok(Some(Spares {
            want,
            ready,
            held: None,
            asked: false,
        }))
    }

    fn ask(&mut self) {
        if !self.asked && self.held.is_none() {
            self.asked = self.want.try_send(()).is_ok();
        }
    }

    /// True once a spare is in hand (taking it from the thread if it is done).
    fn ready(&mut self) -> bool {
        if self.held.is_none() {
            if let Ok(s) = self.ready.try_recv() {
                self.held = Some(s);
                self.asked = false;
            }
        }
        self.held.is_some()
    }

    fn take(&mut self) -> Option<Spare> {
        self.ready();
        self.held.take()
    }
}

impl Drop for Spares {
    fn drop(&mut self) {
        // The thread stops when `want` goes; a spare it finishes after this is discarded
        // by the thread itself (its send fails), one left by a crash at the next start.
        if let Some(s) = self.held.take() {
            discard_spare(s);
        }
        while let Ok(s) = self.ready.try_recv() {
            discard_spare(s);
        }
    }
}

/// The `journal-prep` thread: one spare per request, retried after a failure (a full disk
/// included) while the writer still wants it.
fn prepare_spares(dir: &std::path::Path, bytes: u64, want: &Receiver<()>, ready: &Sender<Spare>) {
    let mut n = 0u64;
    let mut retry = None::<Duration>;
    while want.recv().is_ok() {
        loop {
            n += 1;
            match prepare_spare(dir, n, bytes) {
                Ok(spare) => {
                    if retry.take().is_some() {
                        tracing::info!("journal: preparing segments in advance again");
                    }
                    if let Err(e) = ready.send(spare) {
                        discard_spare(e.into_inner());
                        return;
                    }
                    break;
                }
                Err(e) => {
                    let wait = match retry {
                        None => {
                            tracing::warn!(error = %e, "journal: cannot prepare the next segment in advance; commits append meanwhile");
                            SPARE_RETRY
                        }
                        Some(w) => (w * 2).min(SPARE_RETRY_MAX),
                    };
                    retry = Some(wait);
                    if let Err(RecvTimeoutError::Disconnected) = want.recv_timeout(wait) {
                        return;
                    }
                }
            }
        }
    }
}

/// Reopens the last segment after recovery, or creates the first one. A
/// last segment too short for its header is recreated (recovery left it empty).
fn open_tail_segment(cfg: &WriterConfig, next_seq: u64) -> Result<ActiveSegment, JournalError> {
    let segs = list_segments(&cfg.dir)?;
    let io = |p: &PathBuf, e| JournalError::io(p, e);
    let Some(last) = segs.last() else {
        return ActiveSegment::create(cfg, next_seq).map_err(|e| io(&cfg.dir, e));
    };
    let file = OpenOptions::new()
        .write(true)
        .open(&last.path)
        .map_err(|e| io(&last.path, e))?;
    let len = file.metadata().map_err(|e| io(&last.path, e))?.len();
    if len < SEGMENT_HEADER_LEN as u64 {
        debug_assert_eq!(last.first_seq, next_seq);
        drop(file);
        return ActiveSegment::create(cfg, last.first_seq).map_err(|e| io(&last.path, e));
    }
    if cfg.fsync {
        // A previous process may have died with replayed records still only
        // in the page cache; make them durable before building on them.
        file.sync_data().map_err(|e| io(&last.path, e))?;
    }
    Ok(ActiveSegment::new(file, last.path.clone(), len, false))
}

/// The writer thread's state.
struct Writer<T, L> {
    rx: Receiver<Batch<T>>,
    shared: Arc<Shared>,
    listener: L,
    cfg: WriterConfig,
    /// `None` after a failure when no new segment could be created yet.
    seg: Option<ActiveSegment>,
    next_seq: u64,
    /// Commits that reached the disk, for the fault plan.
    attempts: u64,
    /// Batches of the commit being built (reused: no allocation per commit).
    pending: Vec<Batch<T>>,
    /// A batch taken from the queue that belongs to the next commit.
    carry: Option<Batch<T>>,
    /// Contiguous copy of a multi-batch commit, reused across commits.
    commit_buf: Vec<u8>,
    /// When the previous commit started gathering (group-commit pacing).
    last_commit_start: Instant,
    /// Smoothed record arrival rate, records per second (adaptive pacing).
    rate_ewma: f64,
    /// Commits failed since the last one that succeeded: the first of a streak is logged as
    /// an error, the rest only counted, so a full disk does not also flood the log.
    failed_streak: u64,
    /// Segments laid down in advance; `None` when `preallocate` is off.
    spares: Option<Spares>,
}

impl<T: Send + 'static, L: DurableListener<T>> Writer<T, L> {
    fn new(
        cfg: WriterConfig,
        rx: Receiver<Batch<T>>,
        shared: Arc<Shared>,
        listener: L,
        seg: ActiveSegment,
        next_seq: u64,
    ) -> Self {
        Writer {
            rx,
            shared,
            listener,
            seg: Some(seg),
            next_seq,
            attempts: 0,
            pending: Vec::with_capacity(cfg.queue_batches.min(1024)),
            carry: None,
            commit_buf: Vec::new(),
            last_commit_start: Instant::now(),
            rate_ewma: 0.0,
            failed_streak: 0,
            spares: None,
            cfg,
        }
    }

    /// Creates segment `first_seq`, from a spare when one is ready.
    fn new_segment(&mut self, first_seq: u64) -> io::Result<ActiveSegment> {
        if let Some(spare) = self.spares.as_mut().and_then(Spares::take) {
            match install_spare(&self.cfg.dir, spare, first_seq) {
                Ok((file, path)) => {
                    self.shared
                        .rolls_preallocated
                        .fetch_add(1, Ordering::Relaxed);
                    let len = SEGMENT_HEADER_LEN as u64;
                    return Ok(ActiveSegment::new(file, path, len, true));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "journal: cannot use the prepared segment; creating a plain one")
                }
            }
        }
        let seg = ActiveSegment::create(&self.cfg, first_seq)?;
        self.shared.rolls_plain.fetch_add(1, Ordering::Relaxed);
        Ok(seg)
    }

    /// Asks for the next spare once the active segment is half full, or, for a plain one
    /// (after a restart), once it has taken real traffic.
    fn ask_for_spare(&mut self) {
        let (Some(spares), Some(seg)) = (self.spares.as_mut(), self.seg.as_ref()) else {
            return;
        };
        let half = self.cfg.segment_bytes / 2;
        let due = match seg.preallocated {
            true => seg.len >= half,
            false => seg.len - seg.opened_len >= PLAIN_BYTES_BEFORE_SPARE.min(half),
        };
        if due {
            spares.ask();
        }
    }

    /// A plain segment gives way to a spare as soon as one is ready.
    fn spare_waiting(&mut self) -> bool {
        let plain = self.seg.as_ref().is_some_and(|s| !s.preallocated);
        plain && self.spares.as_mut().is_some_and(Spares::ready)
    }

    fn run(mut self) {
        while let Some(first) = self.next_batch() {
            self.shared.busy.store(true, Ordering::Relaxed);
            self.gather(first);
            self.commit();
            self.shared.busy.store(false, Ordering::Relaxed);
        }
        // A clean stop leaves every segment ending at its last record.
        if let Some(seg) = self.seg.take() {
            seg.seal();
        }
        tracing::debug!(
            last_seq = self.next_seq - 1,
            "journal writer drained and stopped"
        );
    }

    /// The first batch of the next commit. Blocks while idle; returns `None`
    /// once every handle is dropped and the queue is empty.
    fn next_batch(&mut self) -> Option<Batch<T>> {
        if let Some(b) = self.carry.take() {
            return Some(b);
        }
        let b = self.rx.recv().ok()?;
        self.shared.mark_oldest(Some(b.enqueued_at));
        Some(b)
    }

    /// True if a commit of `bytes` must go to a fresh segment.
    fn needs_roll(&self, bytes: usize) -> bool {
        self.seg
            .as_ref()
            .is_some_and(|s| s.has_records() && s.len + bytes as u64 > self.cfg.segment_bytes)
    }

    /// Fills `pending` with `first` and whatever else is queued, within the
    /// commit cap and the room left in the segment the commit will land in
    /// (a commit never spans segments). A batch that does not fit is carried
    /// over to the next commit.
    fn gather(&mut self, first: Batch<T>) {
        let used = match &self.seg {
            Some(s) if !self.needs_roll(first.records.bytes()) => s.len,
            _ => SEGMENT_HEADER_LEN as u64,
        };
        let seg_room =
            usize::try_from(self.cfg.segment_bytes.saturating_sub(used)).unwrap_or(usize::MAX);
        let room = seg_room.min(self.cfg.max_commit_bytes);
        let mut total = first.records.bytes();
        let mut records = first.records.len();
        self.pending.push(first);
        let previous_start = self.last_commit_start;
        let deadline = previous_start + self.pacing_interval();
        self.last_commit_start = Instant::now();
        let next = self.last_commit_start + self.pacing_interval();
        self.shared
            .next_commit_at
            .store(self.shared.encode_instant(next), Ordering::Relaxed);
        while self.pending.len() < self.cfg.queue_batches {
            let next = match self.rx.try_recv() {
                Ok(b) => b,
                Err(TryRecvError::Disconnected) => break,
                Err(TryRecvError::Empty) => {
                    // The commit window: wait a little for more, bounded in time and size.
                    if records >= self.cfg.commit_records_target || self.cfg.max_wait.is_zero() {
                        break;
                    }
                    // Sleep out the window rather than block on the channel: a blocking
                    // receive spins and yields the CPU first (a syscall and a context switch
                    // each, thousands per second under load), and anything arriving before
                    // the deadline would wait for it anyway. Slices of at most 1 ms let the
                    // record target end a long window early.
                    let now = Instant::now();
                    if now >= deadline {
                        break;
                    }
                    std::thread::sleep((deadline - now).min(WINDOW_SLICE));
                    continue;
                }
            };
            if total + next.records.bytes() > room {
                self.carry = Some(next);
                break;
            }
            total += next.records.bytes();
            records += next.records.len();
            self.pending.push(next);
        }
        self.observe_rate(records as u64, previous_start);
    }

    /// Minimum time between commit starts: `max_wait`, stretched towards `max_wait_high` as
    /// the record rate grows (20 ns per record/s).
    fn pacing_interval(&self) -> Duration {
        pacing(self.rate_ewma, self.cfg.max_wait, self.cfg.max_wait_high)
    }

    /// Folds one commit's records over the time since the previous commit into the rate.
    fn observe_rate(&mut self, records: u64, since: Instant) {
        let secs = since.elapsed().as_secs_f64().max(1e-6);
        self.rate_ewma = 0.8 * self.rate_ewma + 0.2 * (records as f64 / secs);
    }

    /// Makes `pending` durable (or fails it) and notifies the listener.
    fn commit(&mut self) {
        let first_seq = self.next_seq;
        let (records, bytes) = self.stamp_pending(first_seq);
        if self.pending.is_empty() {
            // Every batch was malformed and already failed.
            self.refresh_oldest();
            return;
        }
        let last_seq = first_seq + records - 1;
        self.shared.last_assigned.store(last_seq, Ordering::Release);
        match self.write_and_sync(bytes) {
            Ok((write_ns, sync_ns)) => {
                let batches = u32::try_from(self.pending.len()).unwrap_or(u32::MAX);
                let stats = CommitStats {
                    records,
                    bytes: bytes as u64,
                    batches,
                    write_ns,
                    sync_ns,
                    last_seq,
                };
                self.succeed(stats, first_seq);
            }
            Err((error, pre_len)) => self.fail(first_seq, error, pre_len),
        }
    }

    /// Stamps seqs and CRCs into every pending batch. A batch whose bytes do
    /// not walk cleanly (a `push_with` closure broke the append-only rule)
    /// is failed on its own rather than written. Returns (records, bytes).
    fn stamp_pending(&mut self, first_seq: u64) -> (u64, usize) {
        let (mut seq, mut bytes, mut i) = (first_seq, 0usize, 0usize);
        while i < self.pending.len() {
            let rec = &mut self.pending[i].records;
            let count = rec.count();
            match stamp_batch(rec.as_mut_bytes(), count, seq) {
                Some(n) => {
                    seq += u64::from(n);
                    bytes += rec.bytes();
                    i += 1;
                }
                None => {
                    let bad = self.pending.remove(i);
                    let err = io::Error::new(io::ErrorKind::InvalidData, "malformed batch buffer");
                    tracing::error!("journal: refusing a malformed batch");
                    self.listener.on_failed(bad, &err);
                }
            }
        }
        (seq - first_seq, bytes)
    }

    /// One write and one fdatasync for the whole commit. On error, returns
    /// the segment length before the commit (if a write was attempted) so
    /// the caller can cut the file back.
    fn write_and_sync(&mut self, bytes: usize) -> Result<(u64, u64), (io::Error, Option<u64>)> {
        if bytes == 0 {
            return Ok((0, 0));
        }
        if self.seg.is_none() || self.needs_roll(bytes) || self.spare_waiting() {
            let seg = self.new_segment(self.next_seq).map_err(|e| (e, None))?;
            if let Some(old) = self.seg.replace(seg) {
                old.seal();
            }
        }
        self.attempts += 1;
        let fault = self.cfg.fault.unwrap_or_default();
        let (fsync, attempt) = (self.cfg.fsync, Some(self.attempts));
        let Some(seg) = self.seg.as_mut() else {
            return Err((io::Error::other("no active segment"), None));
        };
        let pre_len = seg.len;
        let t0 = Instant::now();
        let failing = fault
            .fail_write_at_commit
            .is_some_and(|n| (n..n + fault.fail_write_commits.max(1)).contains(&self.attempts));
        let written = match failing {
            true => Err(io::Error::other("injected write failure (FaultPlan)")),
            false => write_commit(&seg.file, seg.len, &self.pending, &mut self.commit_buf),
        };
        written.map_err(|e| (e, Some(pre_len)))?;
        let t1 = Instant::now();
        if let Some(d) = fault.sync_delay {
            std::thread::sleep(d);
        }
        let synced = match (fault.fail_sync_at_commit == attempt, fsync) {
            (true, _) => Err(io::Error::other("injected fsync failure (FaultPlan)")),
            (false, true) => seg.file.sync_data(),
            (false, false) => Ok(()),
        };
        synced.map_err(|e| (e, Some(pre_len)))?;
        seg.len += bytes as u64;
        let done = (nanos(t1 - t0), nanos(t1.elapsed()));
        self.ask_for_spare();
        Ok(done)
    }

    fn succeed(&mut self, stats: CommitStats, first_seq: u64) {
        if self.failed_streak > 0 {
            tracing::warn!(
                failed_commits = self.failed_streak,
                "journal committing again after a streak of failed commits"
            );
            self.failed_streak = 0;
        }
        self.next_seq = stats.last_seq + 1;
        self.shared
            .durable_seq
            .store(stats.last_seq, Ordering::Release);
        self.refresh_oldest();
        self.listener.on_commit(&stats);
        let mut seq = first_seq;
        for b in self.pending.drain(..) {
            let n = b.records.len() as u64;
            self.listener.on_durable(b, seq);
            seq += n;
        }
    }

    /// See the module docs for the failure policy.
    fn fail(&mut self, first_seq: u64, error: io::Error, pre_len: Option<u64>) {
        if self.failed_streak == 0 {
            tracing::error!(error = %error, first_seq, batches = self.pending.len(), "journal commit failed; later failures of this streak are counted, not logged");
        } else {
            tracing::debug!(error = %error, first_seq, batches = self.pending.len(), "journal commit failed");
        }
        self.failed_streak += 1;
        // Failed records are not in the log: rewind so seqs stay contiguous.
        self.next_seq = first_seq;
        self.shared
            .last_assigned
            .store(first_seq - 1, Ordering::Release);
        if let Some(len) = pre_len {
            self.abandon_segment(len);
            // Roll right away so the damaged file stops being the last
            // segment even if we crash before the next commit.
            match self.new_segment(first_seq) {
                Ok(seg) => self.seg = Some(seg),
                Err(e) if self.failed_streak == 1 => {
                    tracing::error!(error = %e, "journal: cannot create a new segment; will retry")
                }
                Err(_) => {}
            }
        }
        self.refresh_oldest();
        self.listener.on_commit_failed(&error);
        for b in self.pending.drain(..) {
            self.listener.on_failed(b, &error);
        }
    }

    /// Cuts the failed segment back to `len` and drops its handle for good.
    fn abandon_segment(&mut self, len: u64) {
        if let Some(seg) = self.seg.take() {
            if let Err(e) = seg.file.set_len(len) {
                tracing::error!(segment = %seg.path.display(), error = %e, "journal: cannot cut failed commit");
            }
        }
    }

    /// Publishes the enqueue time of the oldest batch still to be committed.
    /// Peeks one batch from the queue so the age keeps running while the
    /// listener callbacks of the finished commit execute.
    fn refresh_oldest(&mut self) {
        if self.carry.is_none() {
            self.carry = self.rx.try_recv().ok();
        }
        self.shared
            .mark_oldest(self.carry.as_ref().map(|b| b.enqueued_at));
    }
}

/// Longest single sleep inside a commit window (see `gather`).
const WINDOW_SLICE: Duration = Duration::from_millis(1);

/// The pacing rule: 20 ns per record/s of arrival rate, kept within `[low, high]`.
fn pacing(rate_per_sec: f64, low: Duration, high: Duration) -> Duration {
    Duration::from_nanos((rate_per_sec * 20.0) as u64).clamp(low, high.max(low))
}

/// Writes all pending batches at `at` with one positioned write: a single batch straight
/// from its buffer, several through the reused contiguous commit buffer.
fn write_commit<T>(
    file: &File,
    at: u64,
    pending: &[Batch<T>],
    buf: &mut Vec<u8>,
) -> io::Result<()> {
    if let [only] = pending {
        return file.write_all_at(only.records.as_bytes(), at);
    }
    buf.clear();
    for b in pending {
        buf.extend_from_slice(b.records.as_bytes());
    }
    file.write_all_at(buf, at)
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: light loads keep the short pacing interval, heavy loads stretch it to the cap.
    #[test]
    fn pacing_follows_the_rate() {
        let (lo, hi) = (Duration::from_micros(200), Duration::from_micros(1_000));
        assert_eq!(pacing(0.0, lo, hi), lo);
        assert_eq!(pacing(10_000.0, lo, hi), lo);
        assert_eq!(pacing(25_000.0, lo, hi), Duration::from_micros(500));
        assert_eq!(pacing(1e9, lo, hi), hi);
        // A cap below the floor means fixed pacing.
        assert_eq!(pacing(1e9, lo, Duration::ZERO), lo);
    }
}
