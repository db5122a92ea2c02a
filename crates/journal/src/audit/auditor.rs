//! The `auditor` thread: follows the durable journal and appends one chain
//! entry per record, syncing the chain and replacing the anchor in batches.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::chain::{
    create_chain_file, last_entry, list_chain_files, ChainError, ChainFileInfo, ChainFileReader,
    Entry, EntryRead, ENTRY_LEN,
};
use super::cursor::{CursorError, JournalCursor};
use super::keys::{Hash, KeyRing};
use super::{chain_dir, default_anchor_path, write_file_atomic, Anchor};
use crate::error::JournalError;
use crate::writer::DurableWatch;

/// Records chained per pass before the thread looks at its sync deadline
/// and the stop flag again.
const PASS_RECORDS: u64 = 65_536;
/// Pause after an error before the chain is reopened and retried.
const ERROR_BACKOFF: Duration = Duration::from_secs(1);
const MS_PER_DAY: u64 = 86_400_000;

/// Auditor settings.
#[derive(Debug, Clone)]
pub struct AuditorConfig {
    pub journal_dir: PathBuf,
    pub keys: Arc<KeyRing>,
    /// `AUDIT_ANCHOR_PATH`; `None` = `<journal dir>/audit/anchor.json`.
    pub anchor_path: Option<PathBuf>,
    /// `AUDIT_ANCHOR_EXPORT_DIR`: the first anchor of each UTC day is copied here.
    pub anchor_export_dir: Option<PathBuf>,
    /// Sleep between looks at the durable watermark when idle.
    pub poll_interval: Duration,
    /// Longest time an appended entry waits for its fdatasync.
    pub sync_interval: Duration,
    /// ... or until this many entries are waiting.
    pub sync_entries: u64,
    /// Entries per chain file before a new file is started.
    pub entries_per_file: u64,
    /// Called first on the auditor thread (the gateway sets its scheduling policy there).
    pub thread_start: Option<fn()>,
}

impl AuditorConfig {
    pub fn new(journal_dir: impl Into<PathBuf>, keys: Arc<KeyRing>) -> AuditorConfig {
        AuditorConfig {
            journal_dir: journal_dir.into(),
            keys,
            anchor_path: None,
            anchor_export_dir: None,
            poll_interval: Duration::from_millis(25),
            sync_interval: Duration::from_millis(100),
            sync_entries: 16_384,
            entries_per_file: 1 << 20,
            thread_start: None,
        }
    }

    /// Where the anchor is written.
    pub fn anchor_path(&self) -> PathBuf {
        self.anchor_path
            .clone()
            .unwrap_or_else(|| default_anchor_path(&self.journal_dir))
    }
}

/// The chain's progress, for metrics and the API.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditStatus {
    /// Entries appended by this process.
    pub records_chained: u64,
    /// Highest chained seq (0 = none).
    pub chained_seq: u64,
    /// The journal's durable seq when the status was taken.
    pub durable_seq: u64,
    /// Durable records not chained yet.
    pub lag_records: u64,
    /// Seq of the last anchor written (0 = none yet).
    pub last_anchor_seq: u64,
    pub anchor: Option<Anchor>,
    /// Failed passes (each retried after a pause).
    pub errors: u64,
    pub last_error: Option<String>,
}

struct Shared {
    durable: DurableWatch,
    stop: AtomicBool,
    records_chained: AtomicU64,
    chained_seq: AtomicU64,
    anchor_seq: AtomicU64,
    errors: AtomicU64,
    anchor: Mutex<Option<Anchor>>,
    last_error: Mutex<Option<String>>,
}

/// Cheap, cloneable read access to a running auditor's status.
#[derive(Clone)]
pub struct AuditStatusHandle(Arc<Shared>);

impl std::fmt::Debug for AuditStatusHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("AuditStatusHandle")
            .field(&self.status())
            .finish()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl AuditStatusHandle {
    pub fn status(&self) -> AuditStatus {
        let s = &self.0;
        let chained_seq = s.chained_seq.load(Ordering::Acquire);
        let durable_seq = s.durable.durable_seq();
        AuditStatus {
            records_chained: s.records_chained.load(Ordering::Relaxed),
            chained_seq,
            durable_seq,
            lag_records: durable_seq.saturating_sub(chained_seq),
            last_anchor_seq: s.anchor_seq.load(Ordering::Acquire),
            anchor: lock(&s.anchor).clone(),
            errors: s.errors.load(Ordering::Relaxed),
            last_error: lock(&s.last_error).clone(),
        }
    }

    /// The last anchor this auditor wrote.
    pub fn anchor(&self) -> Option<Anchor> {
        lock(&self.0.anchor).clone()
    }
}

/// A running `auditor` thread. [`Auditor::stop`] chains everything durable,
/// syncs and writes a final anchor before returning; dropping the auditor
/// only asks the thread to stop.
pub struct Auditor {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

impl Auditor {
    /// Checks and repairs the chain (see the module docs), then starts the
    /// thread, which catches up with the journal and follows it. Errors here
    /// are I/O failures or a journal damaged under chained records.
    pub fn start(cfg: AuditorConfig, durable: DurableWatch) -> Result<Auditor, JournalError> {
        let state = Chain::open(&cfg, durable.durable_seq())?;
        let shared = Arc::new(Shared {
            durable,
            stop: AtomicBool::new(false),
            records_chained: AtomicU64::new(0),
            chained_seq: AtomicU64::new(state.last_seq),
            anchor_seq: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            anchor: Mutex::new(None),
            last_error: Mutex::new(None),
        });
        let thread_start = cfg.thread_start;
        let runner = Runner {
            cfg,
            shared: Arc::clone(&shared),
            chain: Some(state),
            last_export_day: None,
        };
        let thread = thread::Builder::new()
            .name("auditor".into())
            .spawn(move || {
                if let Some(f) = thread_start {
                    f();
                }
                runner.run()
            })
            .map_err(JournalError::Spawn)?;
        Ok(Auditor {
            shared,
            thread: Some(thread),
        })
    }

    pub fn status(&self) -> AuditStatus {
        self.status_handle().status()
    }

    pub fn status_handle(&self) -> AuditStatusHandle {
        AuditStatusHandle(Arc::clone(&self.shared))
    }

    /// Chains every durable record, syncs, writes the anchor, and joins the
    /// thread. Call after the journal writer has stopped to cover the whole
    /// journal.
    pub fn stop(mut self) -> AuditStatus {
        self.signal_stop();
        if let Some(t) = self.thread.take() {
            if t.join().is_err() {
                tracing::error!("audit chain: the auditor thread panicked");
            }
        }
        self.status()
    }

    fn signal_stop(&self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(t) = &self.thread {
            t.thread().unpark();
        }
    }
}

impl Drop for Auditor {
    fn drop(&mut self) {
        self.signal_stop();
    }
}

struct Runner {
    cfg: AuditorConfig,
    shared: Arc<Shared>,
    /// `None` after an error, until reopened.
    chain: Option<Chain>,
    last_export_day: Option<u64>,
}

impl Runner {
    fn run(mut self) {
        loop {
            let stopping = self.shared.stop.load(Ordering::Acquire);
            let result = self.step(stopping);
            match result {
                Ok(()) if stopping => break,
                Ok(()) => thread::park_timeout(self.cfg.poll_interval),
                Err(e) => {
                    self.note_error(&e);
                    if stopping {
                        break;
                    }
                    thread::park_timeout(ERROR_BACKOFF);
                }
            }
        }
        tracing::debug!(
            chained_seq = self.shared.chained_seq.load(Ordering::Relaxed),
            "auditor stopped"
        );
    }

    /// Chains what is durable (all of it when stopping), and syncs when due.
    /// Returns once caught up, or when a stop is requested mid-way.
    fn step(&mut self, stopping: bool) -> Result<(), String> {
        if self.chain.is_none() {
            let durable = self.shared.durable.durable_seq();
            self.chain = Some(Chain::open(&self.cfg, durable).map_err(|e| e.to_string())?);
        }
        loop {
            let durable = self.shared.durable.durable_seq();
            let Some(chain) = self.chain.as_mut() else {
                return Ok(());
            };
            let cfg = &self.cfg;
            let synced = chain.chain_to(durable, cfg, &self.shared).and_then(|()| {
                let due = chain.unsynced > 0
                    && (stopping
                        || chain.unsynced >= cfg.sync_entries
                        || chain.last_sync.elapsed() >= cfg.sync_interval);
                if due || chain.anchor_missing || (stopping && chain.anchor_behind()) {
                    chain.sync().map(|()| true)
                } else {
                    Ok(false)
                }
            });
            let caught_up = chain.last_seq >= self.shared.durable.durable_seq();
            match synced {
                Ok(true) => self.write_anchor(),
                Ok(false) => {}
                Err(e) => {
                    // The file's state is unknown after a failed write: it is
                    // reopened (cutting a torn tail) on the next attempt.
                    self.chain = None;
                    return Err(e);
                }
            }
            if caught_up || (!stopping && self.shared.stop.load(Ordering::Acquire)) {
                return Ok(());
            }
        }
    }

    /// Replaces the anchor with the chain's synced position, and exports the
    /// first anchor of each UTC day.
    fn write_anchor(&mut self) {
        let Some(chain) = self.chain.as_mut() else {
            return;
        };
        // One attempt per sync: a failing anchor is retried at the next one.
        chain.anchor_missing = false;
        let Some(hash) = chain.last_hash else {
            return;
        };
        let anchor = Anchor {
            seq: chain.last_seq,
            at_ms: now_ms(),
            key_id: chain.last_key_id.clone(),
            hash,
        };
        let path = self.cfg.anchor_path();
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            let _ = fs::create_dir_all(parent);
        }
        if let Err(e) = anchor.write_atomic(&path) {
            self.note_error(&format!("writing anchor {}: {e}", path.display()));
            return;
        }
        chain.anchored_seq = anchor.seq;
        self.shared.anchor_seq.store(anchor.seq, Ordering::Release);
        if let Some(dir) = self.cfg.anchor_export_dir.clone() {
            let day = anchor.at_ms / MS_PER_DAY;
            if self.last_export_day != Some(day) {
                match export_anchor(&dir, day, &anchor) {
                    Ok(()) => self.last_export_day = Some(day),
                    Err(e) => {
                        self.note_error(&format!("exporting anchor to {}: {e}", dir.display()))
                    }
                }
            }
        }
        *lock(&self.shared.anchor) = Some(anchor);
    }

    fn note_error(&self, e: &str) {
        tracing::error!(error = %e, "audit chain: auditor pass failed; retrying");
        self.shared.errors.fetch_add(1, Ordering::Relaxed);
        *lock(&self.shared.last_error) = Some(e.to_string());
    }
}

/// Writes `audit.anchor.<day>` unless that day already has one (the first
/// anchor of the day wins, also across restarts).
fn export_anchor(dir: &Path, day: u64, anchor: &Anchor) -> std::io::Result<()> {
    fs::create_dir_all(dir)?;
    let path = dir.join(format!("audit.anchor.{day}"));
    if path.exists() {
        return Ok(());
    }
    write_file_atomic(&path, format!("{}\n", anchor.to_json()).as_bytes())?;
    tracing::info!(file = %path.display(), seq = anchor.seq, "audit chain: daily anchor exported");
    Ok(())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The chain being appended to.
struct Chain {
    dir: PathBuf,
    keys: Arc<KeyRing>,
    out: BufWriter<File>,
    path: PathBuf,
    /// The active key's index in the open file's header.
    key_index: u16,
    /// Entries in the open file.
    entries: u64,
    last_seq: u64,
    last_hash: Option<Hash>,
    last_key_id: String,
    cursor: JournalCursor,
    unsynced: u64,
    last_sync: Instant,
    /// Seq of the last anchor written by this chain instance.
    anchored_seq: u64,
    /// An anchor should be written even without new entries (after opening).
    anchor_missing: bool,
}

/// Where the chain stands after its files were checked.
struct Resume {
    /// The newest file to append to, with its header's key ids and entry count.
    file: Option<(ChainFileInfo, Vec<String>, u64)>,
    last_seq: u64,
    last_hash: Option<Hash>,
    last_key_id: String,
}

impl Chain {
    /// Checks the newest chain file against the journal (repairing or setting
    /// it aside) and opens the chain for appending.
    fn open(cfg: &AuditorConfig, durable_seq: u64) -> Result<Chain, JournalError> {
        let dir = chain_dir(&cfg.journal_dir);
        fs::create_dir_all(&dir).map_err(|e| JournalError::io(&dir, e))?;
        let mut cursor = JournalCursor::new(&cfg.journal_dir);
        cursor.refresh().map_err(cursor_error)?;
        let resume = loop {
            let files = list_chain_files(&dir).map_err(|e| JournalError::io(&dir, e))?;
            match inspect(&files, &cfg.keys, &mut cursor, durable_seq)? {
                Ok(r) => break r,
                Err((bad, why)) => set_aside(&bad.path, &why)?,
            }
        };
        let next_seq = resume.last_seq + 1;
        cursor.seek(next_seq).map_err(cursor_error)?;
        let keys = Arc::clone(&cfg.keys);
        let active_id = keys.active().id().to_string();
        let reuse = resume.file.as_ref().and_then(|(info, ids, entries)| {
            let idx = ids.iter().position(|i| *i == active_id)?;
            (*entries < cfg.entries_per_file).then(|| (info.clone(), idx as u16, *entries))
        });
        let (file, path, key_index, entries) = match reuse {
            Some((info, idx, entries)) => {
                let f = fs::OpenOptions::new()
                    .append(true)
                    .open(&info.path)
                    .map_err(|e| JournalError::io(&info.path, e))?;
                (f, info.path, idx, entries)
            }
            None => {
                let (f, p, idx) = new_file(&dir, &keys, next_seq)?;
                (f, p, idx, 0)
            }
        };
        tracing::info!(
            file = %path.display(), chained_seq = resume.last_seq, journal_durable_seq = durable_seq,
            key = %active_id, "audit chain opened"
        );
        Ok(Chain {
            dir,
            keys,
            out: BufWriter::with_capacity(ENTRY_LEN * 1365, file),
            path,
            key_index,
            entries,
            last_seq: resume.last_seq,
            last_hash: resume.last_hash,
            last_key_id: resume.last_key_id,
            cursor,
            unsynced: 0,
            last_sync: Instant::now(),
            anchored_seq: 0,
            anchor_missing: true,
        })
    }

    fn anchor_behind(&self) -> bool {
        self.last_hash.is_some() && self.anchored_seq < self.last_seq
    }

    /// Appends entries for durable records up to `durable` (at most one pass).
    fn chain_to(
        &mut self,
        durable: u64,
        cfg: &AuditorConfig,
        shared: &Shared,
    ) -> Result<(), String> {
        if self.last_seq >= durable {
            return Ok(());
        }
        // New segments (a roll, or a retry after a failed commit) must be
        // known before records they hold are read; see cursor.rs.
        self.cursor.refresh().map_err(|e| describe_cursor(&e))?;
        let mut budget = PASS_RECORDS;
        let mut relisted = false;
        let keys = Arc::clone(&self.keys);
        let key = keys.active();
        while self.last_seq < durable && budget > 0 {
            if self.entries >= cfg.entries_per_file {
                self.roll()?;
            }
            if self.cursor.next_seq() != self.last_seq + 1 {
                return Err(format!(
                    "journal cursor at seq {} but the chain needs seq {}",
                    self.cursor.next_seq(),
                    self.last_seq + 1
                ));
            }
            let frame = match self.cursor.next() {
                Ok(Some(f)) => f,
                Ok(None) if !relisted => {
                    relisted = true;
                    self.cursor.refresh().map_err(|e| describe_cursor(&e))?;
                    continue;
                }
                Ok(None) => {
                    return Err(format!(
                        "durable record seq {} is not in the journal",
                        self.last_seq + 1
                    ))
                }
                Err(e) => return Err(describe_cursor(&e)),
            };
            let hash = key.chain(self.last_hash.as_ref(), frame);
            let entry = Entry {
                seq: self.last_seq + 1,
                key_index: self.key_index,
                hash,
            };
            self.out
                .write_all(&super::chain::encode_entry(&entry))
                .map_err(|e| format!("appending to {}: {e}", self.path.display()))?;
            self.last_seq = entry.seq;
            self.last_hash = Some(hash);
            if self.last_key_id != key.id() {
                self.last_key_id = key.id().to_string();
            }
            self.entries += 1;
            self.unsynced += 1;
            budget -= 1;
            shared.records_chained.fetch_add(1, Ordering::Relaxed);
            shared.chained_seq.store(entry.seq, Ordering::Release);
            if self.unsynced >= cfg.sync_entries {
                self.sync()?;
            }
        }
        Ok(())
    }

    /// Flushes and fdatasyncs the open file.
    fn sync(&mut self) -> Result<(), String> {
        let io = |e: std::io::Error| format!("syncing {}: {e}", self.path.display());
        self.out.flush().map_err(io)?;
        self.out.get_ref().sync_data().map_err(io)?;
        self.unsynced = 0;
        self.last_sync = Instant::now();
        Ok(())
    }

    /// Closes the full file (synced) and starts the next one.
    fn roll(&mut self) -> Result<(), String> {
        self.sync()?;
        let (file, path, idx) =
            new_file(&self.dir, &self.keys, self.last_seq + 1).map_err(|e| e.to_string())?;
        self.out = BufWriter::with_capacity(ENTRY_LEN * 1365, file);
        self.path = path;
        self.key_index = idx;
        self.entries = 0;
        Ok(())
    }
}

fn new_file(
    dir: &Path,
    keys: &KeyRing,
    first_seq: u64,
) -> Result<(File, PathBuf, u16), JournalError> {
    let ids: Vec<&str> = keys.keys().iter().map(|k| k.id()).collect();
    let (f, p, _) =
        create_chain_file(dir, first_seq, &ids).map_err(|e| JournalError::io(dir, e))?;
    Ok((f, p, keys.active_index() as u16))
}

fn cursor_error(e: CursorError) -> JournalError {
    match e {
        CursorError::Io(e) => e,
        CursorError::Damaged { seq, reason } => {
            JournalError::corrupt(PathBuf::new(), 0, seq, format!("audit chain: {reason}"))
        }
    }
}

fn describe_cursor(e: &CursorError) -> String {
    match e {
        CursorError::Io(e) => e.to_string(),
        CursorError::Damaged { seq, reason } => format!("journal damaged at seq {seq}: {reason}"),
    }
}

/// Renames a chain file that disagrees with the journal to `<name>.bad.<ms>`.
fn set_aside(path: &Path, why: &str) -> Result<(), JournalError> {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".bad.{}", now_ms()));
    let to = PathBuf::from(name);
    tracing::error!(
        file = %path.display(), renamed_to = %to.display(), reason = %why,
        "AUDIT CHAIN FILE SET ASIDE: it disagrees with the journal; the chain is rebuilt from its first seq"
    );
    fs::rename(path, &to).map_err(|e| JournalError::io(path, e))?;
    if let Some(dir) = path.parent() {
        crate::segment::sync_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    }
    Ok(())
}

type Verdict = Result<Resume, (ChainFileInfo, String)>;

/// Decides whether the chain can be continued from its newest file: `Ok(Ok)`
/// to resume, `Ok(Err(file, why))` if that file must be set aside. A torn
/// tail is cut here.
fn inspect(
    files: &[ChainFileInfo],
    keys: &KeyRing,
    cursor: &mut JournalCursor,
    durable_seq: u64,
) -> Result<Verdict, JournalError> {
    let Some(newest) = files.last() else {
        let first = cursor.first_seq().unwrap_or(1);
        return Ok(Ok(Resume {
            file: None,
            last_seq: first - 1,
            last_hash: None,
            last_key_id: String::new(),
        }));
    };
    let bad = |why: String| Ok(Err((newest.clone(), why)));
    // The entry before this file: the previous file's last one.
    let before = match files.len().checked_sub(2).map(|i| &files[i]) {
        None => None,
        Some(prev) => match last_entry(prev) {
            Ok(Some(e)) => Some(e),
            Ok(None) => {
                return bad(format!(
                    "previous chain file {} is empty",
                    prev.path.display()
                ))
            }
            Err(ChainError::Io(e)) => return Err(JournalError::io(&prev.path, e)),
            Err(ChainError::Damaged { reason, .. }) => {
                return bad(format!(
                    "previous chain file {}: {reason}",
                    prev.path.display()
                ))
            }
        },
    };
    match &before {
        Some((e, _)) if e.seq + 1 != newest.first_seq => {
            return bad(format!(
                "starts at seq {} but the previous file ends at seq {}",
                newest.first_seq, e.seq
            ));
        }
        None if cursor.first_seq().is_some_and(|j| j != newest.first_seq) => {
            return bad(format!(
                "starts at seq {} but the journal starts at seq {}",
                newest.first_seq,
                cursor.first_seq().unwrap_or(0)
            ));
        }
        _ => {}
    }
    // Walk every entry: structure first.
    let mut r = match ChainFileReader::open(newest) {
        Ok(r) => r,
        Err(ChainError::Io(e)) => return Err(JournalError::io(&newest.path, e)),
        Err(ChainError::Damaged { reason, .. }) => return bad(reason),
    };
    let mut last: Option<Entry> = None;
    let mut second_last: Option<Entry> = None;
    let mut count = 0u64;
    loop {
        match r.next_entry() {
            Ok(EntryRead::Entry(e)) => {
                second_last = last.replace(e);
                count += 1;
            }
            Ok(EntryRead::End) => break,
            Ok(EntryRead::Torn { offset, reason }) => {
                tracing::warn!(
                    file = %newest.path.display(), offset, reason = %reason,
                    "audit chain: cutting a torn tail (an append interrupted by a crash)"
                );
                cut(&newest.path, offset)?;
                break;
            }
            Err(ChainError::Io(e)) => return Err(JournalError::io(&newest.path, e)),
            Err(ChainError::Damaged { seq, reason }) => return bad(format!("seq {seq}: {reason}")),
        }
    }
    let ids = r.header.key_ids.clone();
    let (prev_hash, prev_key) = match &before {
        Some((e, id)) => (Some(e.hash), id.clone()),
        None => (None, String::new()),
    };
    let Some(last) = last else {
        return Ok(Ok(Resume {
            file: Some((newest.clone(), ids, 0)),
            last_seq: newest.first_seq - 1,
            last_hash: prev_hash,
            last_key_id: prev_key,
        }));
    };
    // Then content: the last entry must hash from the journal record it covers.
    if last.seq > durable_seq {
        return bad(format!(
            "chain reaches seq {} but the journal's durable records end at seq {durable_seq}",
            last.seq
        ));
    }
    let prev = second_last.map(|e| e.hash).or(prev_hash);
    let key_id = ids[last.key_index as usize].clone();
    cursor.seek(last.seq).map_err(cursor_error)?;
    let record = match cursor.next() {
        Ok(Some(rec)) => rec,
        Ok(None) => {
            return bad(format!(
                "journal has no record for chained seq {}",
                last.seq
            ))
        }
        Err(e) => return Err(cursor_error(e)),
    };
    match keys.get(&key_id) {
        Some(k) if k.chain(prev.as_ref(), record) != last.hash => {
            return bad(format!(
                "last entry (seq {}) does not match the journal record",
                last.seq
            ))
        }
        Some(_) => {}
        None => tracing::warn!(
            key = %key_id, seq = last.seq,
            "audit chain: the last entry's key is not configured; resuming without checking it"
        ),
    }
    Ok(Ok(Resume {
        file: Some((newest.clone(), ids, count)),
        last_seq: last.seq,
        last_hash: Some(last.hash),
        last_key_id: key_id,
    }))
}

fn cut(path: &Path, len: u64) -> Result<(), JournalError> {
    let io = |e| JournalError::io(path, e);
    let f = fs::OpenOptions::new().write(true).open(path).map_err(io)?;
    f.set_len(len).map_err(io)?;
    f.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::super::{chain_file_name, verify, AuditKey};
    use super::*;
    use crate::{start, Batch, BatchBuf, DurableListener, JournalHandle, WriterConfig};

    struct Null;
    impl DurableListener<()> for Null {
        fn on_durable(&mut self, _b: Batch<()>, _s: u64) {}
        fn on_failed(&mut self, _b: Batch<()>, e: &std::io::Error) {
            panic!("commit failed: {e}")
        }
    }

    fn ring(spec: &str, active: Option<&str>) -> Arc<KeyRing> {
        Arc::new(
            KeyRing::from_settings(Some(spec), None, active)
                .unwrap()
                .unwrap(),
        )
    }

    fn writer(dir: &Path) -> (JournalHandle<()>, JoinHandle<()>) {
        let cfg = WriterConfig {
            fsync: false,
            segment_bytes: 2048,
            ..WriterConfig::new(dir)
        };
        let (h, j, _) = start(cfg, Null).unwrap();
        (h, j)
    }

    /// Appends `n` records and waits until they are durable.
    fn append(h: &JournalHandle<()>, n: u64, tag: u8) {
        let target = h.durable_seq() + n;
        let mut b = BatchBuf::default();
        for i in 0..n {
            b.push(1 + (i % 3) as u16, i, &[tag; 40]).unwrap();
        }
        h.submit(Batch::new(b, ())).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while h.durable_seq() < target {
            assert!(Instant::now() < deadline, "journal did not commit");
            thread::sleep(Duration::from_millis(1));
        }
    }

    fn config(dir: &Path, keys: Arc<KeyRing>) -> AuditorConfig {
        AuditorConfig {
            poll_interval: Duration::from_millis(2),
            sync_interval: Duration::from_millis(5),
            ..AuditorConfig::new(dir, keys)
        }
    }

    fn wait_chained(a: &Auditor, seq: u64) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while a.status().chained_seq < seq {
            assert!(Instant::now() < deadline, "auditor stuck: {:?}", a.status());
            thread::sleep(Duration::from_millis(2));
        }
    }

    /// Runs an auditor over a journal no writer is appending to, to the end.
    fn catch_up(dir: &Path, keys: Arc<KeyRing>, durable: u64) -> AuditStatus {
        let a = Auditor::start(config(dir, keys), DurableWatch::fixed(durable)).unwrap();
        a.stop()
    }

    fn files(dir: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(chain_dir(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("chain-"))
            .collect();
        v.sort();
        v
    }

    // Goal: the auditor follows a live journal across segments, writes an anchor, and after a
    // restart chains only what it had not chained, continuing the same hash chain.
    #[test]
    fn chain_resumes_after_restart() {
        let dir = tempfile::tempdir().unwrap();
        let keys = ring("a:one", None);
        let (h, j) = writer(dir.path());
        let a = Auditor::start(config(dir.path(), keys.clone()), h.durable_watch()).unwrap();
        append(&h, 30, 1);
        append(&h, 20, 2);
        wait_chained(&a, 50);
        let st = a.stop();
        assert_eq!(
            (st.chained_seq, st.records_chained, st.lag_records),
            (50, 50, 0)
        );
        assert_eq!(st.last_anchor_seq, 50);
        let anchor = Anchor::read(&default_anchor_path(dir.path()))
            .unwrap()
            .unwrap();
        assert_eq!((anchor.seq, anchor.key_id.as_str()), (50, "a"));
        assert_eq!(Some(anchor.clone()), st.anchor);
        assert!(crate::list_segments(dir.path()).unwrap().len() > 1);

        // The gateway is down while 25 more records are written.
        append(&h, 25, 3);
        drop(h);
        j.join().unwrap();
        let st = catch_up(dir.path(), keys.clone(), 75);
        assert_eq!(
            (st.chained_seq, st.records_chained, st.last_anchor_seq),
            (75, 25, 75)
        );
        assert_eq!(files(dir.path()), vec![chain_file_name(1)]);
        let v = verify(dir.path(), Some(&keys), 0, u64::MAX);
        assert!(v.ok && v.checked == 75 && v.last_seq == 75, "{v:?}");
        // The old anchor still verifies against the longer chain.
        assert!(super::super::verify_anchor(dir.path(), Some(&keys), &anchor).ok);
        // A middle window verifies with its predecessor's stored hash.
        let v = verify(dir.path(), Some(&keys), 40, 10);
        assert_eq!((v.ok, v.checked, v.last_seq), (true, 10, 49));
        // Restarting with nothing new chains nothing and keeps the chain valid.
        let st = catch_up(dir.path(), keys.clone(), 75);
        assert_eq!((st.records_chained, st.chained_seq), (0, 75));
        assert!(verify(dir.path(), Some(&keys), 0, u64::MAX).ok);
    }

    // Goal: rotating the active key mid-chain starts a file naming the new key; the whole chain
    // still verifies with both keys, and not without the old one.
    #[test]
    fn key_rotation_mid_chain() {
        let dir = tempfile::tempdir().unwrap();
        let (h, j) = writer(dir.path());
        append(&h, 20, 1);
        let old = ring("old:one", None);
        catch_up(dir.path(), old.clone(), 20);
        append(&h, 15, 2);
        let both = ring("old:one,new:two", Some("new"));
        let st = catch_up(dir.path(), both.clone(), 35);
        assert_eq!(st.anchor.unwrap().key_id, "new");
        assert_eq!(
            files(dir.path()),
            vec![chain_file_name(1), chain_file_name(21)]
        );
        // Back to the old key: the newest file names it already, so it continues there.
        append(&h, 5, 3);
        let back = ring("old:one,new:two", Some("old"));
        catch_up(dir.path(), back.clone(), 40);
        assert_eq!(files(dir.path()).len(), 2);
        drop(h);
        j.join().unwrap();

        let v = verify(dir.path(), Some(&both), 0, u64::MAX);
        assert!(v.ok && v.checked == 40, "{v:?}");
        let only_new = ring("new:two", None);
        let v = verify(dir.path(), Some(&only_new), 0, u64::MAX);
        assert_eq!(
            v.error.as_deref(),
            Some("unknown audit key id: old at seq 1")
        );
        assert_eq!(v.bad_seq, Some(1));
        let v = verify(dir.path(), Some(&only_new), 21, 15);
        assert!(v.ok && v.checked == 15, "{v:?}");
        let wrong = ring("old:one,new:twoo", None);
        let v = verify(dir.path(), Some(&wrong), 0, u64::MAX);
        assert_eq!(v.error.as_deref(), Some("hash mismatch detected at seq 21"));
        assert_eq!((v.checked, v.last_seq), (20, 20));
        let v = verify(dir.path(), None, 0, 10);
        assert_eq!(v.error.as_deref(), Some("AUDIT_HMAC_KEY not configured"));
        // The same key bytes under another id are a different key to verify.
        assert!(AuditKey::new("x", b"one").is_ok());
    }

    // Goal: a torn chain tail (partial entry, or a last entry failing its checksum) is cut and
    // the records it covered are chained again at the next start.
    #[test]
    fn torn_chain_tail_is_cut_and_rechained() {
        let dir = tempfile::tempdir().unwrap();
        let (h, j) = writer(dir.path());
        append(&h, 30, 1);
        drop(h);
        j.join().unwrap();
        let keys = ring("a:one", None);
        catch_up(dir.path(), keys.clone(), 30);
        let path = chain_dir(dir.path()).join(chain_file_name(1));
        let full = fs::metadata(&path).unwrap().len();

        // A partial entry after a crash mid-append.
        let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[0x55; 20]).unwrap();
        drop(f);
        let st = catch_up(dir.path(), keys.clone(), 30);
        assert_eq!((st.records_chained, st.chained_seq), (0, 30));
        assert_eq!(fs::metadata(&path).unwrap().len(), full);

        // The last whole entry garbled (its data never reached the disk).
        let mut bytes = fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 10] ^= 0xFF;
        fs::write(&path, &bytes).unwrap();
        let v = verify(dir.path(), Some(&keys), 0, u64::MAX);
        assert!(
            v.ok && v.checked == 29,
            "a torn tail is lag, not damage: {v:?}"
        );
        let st = catch_up(dir.path(), keys.clone(), 30);
        assert_eq!((st.records_chained, st.chained_seq), (1, 30));
        assert_eq!(fs::metadata(&path).unwrap().len(), full);
        assert!(verify(dir.path(), Some(&keys), 0, u64::MAX).ok);
    }

    // Goal: a chain file damaged mid-way, or one whose last entry does not hash from the journal,
    // is set aside as .bad.<ms> and the chain is rebuilt.
    #[test]
    fn disagreeing_chain_file_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        let (h, j) = writer(dir.path());
        append(&h, 30, 1);
        drop(h);
        j.join().unwrap();
        let keys = ring("a:one", None);
        catch_up(dir.path(), keys.clone(), 30);
        let path = chain_dir(dir.path()).join(chain_file_name(1));

        let mut bytes = fs::read(&path).unwrap();
        let mid = bytes.len() - 15 * ENTRY_LEN + 20;
        bytes[mid] ^= 1;
        fs::write(&path, &bytes).unwrap();
        let v = verify(dir.path(), Some(&keys), 0, u64::MAX);
        assert_eq!(v.bad_seq, Some(16), "{v:?}");
        let st = catch_up(dir.path(), keys.clone(), 30);
        assert_eq!(st.records_chained, 30);
        assert!(verify(dir.path(), Some(&keys), 0, u64::MAX).ok);
        let bad_files = |d: &Path| {
            fs::read_dir(chain_dir(d))
                .unwrap()
                .filter(|e| {
                    e.as_ref()
                        .unwrap()
                        .file_name()
                        .to_string_lossy()
                        .contains(".bad.")
                })
                .count()
        };
        assert_eq!(bad_files(dir.path()), 1);

        // Same key id, different secret: the last entry no longer matches the journal.
        thread::sleep(Duration::from_millis(2));
        let changed = ring("a:other", None);
        let st = catch_up(dir.path(), changed.clone(), 30);
        assert_eq!(st.records_chained, 30);
        assert_eq!(bad_files(dir.path()), 2);
        assert!(verify(dir.path(), Some(&changed), 0, u64::MAX).ok);
    }

    // Goal: a failed commit (its seqs reused in a new segment) is followed correctly: the chain
    // covers only the records that became durable, and verifies.
    #[test]
    fn follows_a_failed_commit() {
        struct Counting(std::sync::mpsc::Sender<bool>);
        impl DurableListener<()> for Counting {
            fn on_durable(&mut self, _b: Batch<()>, _s: u64) {
                let _ = self.0.send(true);
            }
            fn on_failed(&mut self, _b: Batch<()>, _e: &std::io::Error) {
                let _ = self.0.send(false);
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let cfg = WriterConfig {
            fsync: false,
            fault: Some(crate::FaultPlan {
                fail_sync_at_commit: Some(2),
                ..Default::default()
            }),
            ..WriterConfig::new(dir.path())
        };
        let (h, j, _) = start(cfg, Counting(tx)).unwrap();
        let keys = ring("a:one", None);
        let a = Auditor::start(config(dir.path(), keys.clone()), h.durable_watch()).unwrap();
        let mut outcomes = Vec::new();
        for tag in 1..=3u8 {
            let mut b = BatchBuf::default();
            for i in 0..10 {
                b.push(1, i, &[tag; 16]).unwrap();
            }
            h.submit(Batch::new(b, ())).unwrap();
            outcomes.push(rx.recv_timeout(Duration::from_secs(10)).unwrap());
        }
        assert_eq!(outcomes, vec![true, false, true]);
        assert_eq!(h.durable_seq(), 20);
        wait_chained(&a, 20);
        drop(h);
        j.join().unwrap();
        let st = a.stop();
        assert_eq!((st.chained_seq, st.errors), (20, 0), "{st:?}");
        let v = verify(dir.path(), Some(&keys), 0, u64::MAX);
        assert!(v.ok && v.checked == 20, "{v:?}");
    }
}
