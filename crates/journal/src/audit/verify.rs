//! Verification: walk journal records and chain entries in lockstep and
//! recompute every hash with the key the entry names.

use std::path::Path;

use super::chain::{
    list_chain_files, ChainError, ChainFileInfo, ChainFileReader, Entry, EntryRead,
};
use super::cursor::{CursorError, JournalCursor};
use super::keys::{Hash, KeyRing};
use super::{chain_dir, Anchor};

/// Result of [`verify`] (the body of `GET /audit/verify`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyOutcome {
    /// True when every record checked matched its chain entry.
    pub ok: bool,
    /// Records whose hash was recomputed and matched.
    pub checked: u64,
    /// Seq of the last record that matched (0 when none did).
    pub last_seq: u64,
    pub error: Option<String>,
    /// Where the first problem is, when it is tied to a record.
    pub bad_seq: Option<u64>,
}

impl VerifyOutcome {
    fn fail(checked: u64, last_seq: u64, error: String, bad_seq: Option<u64>) -> Self {
        VerifyOutcome {
            ok: false,
            checked,
            last_seq,
            error: Some(error),
            bad_seq,
        }
    }
}

/// Verifies up to `limit` records from `from_seq` (0 or anything before the
/// chain = from its first record): each journal record must be present, in
/// order, and hash (with its predecessor's stored hash and the key its entry
/// names) to its entry. Stops quietly at the end of the chain: records not
/// yet chained are lag, not damage. Never panics on bad files; every problem
/// is reported in the outcome with the seq where it is.
pub fn verify(
    journal_dir: &Path,
    keys: Option<&KeyRing>,
    from_seq: u64,
    limit: u64,
) -> VerifyOutcome {
    walk(journal_dir, keys, from_seq, limit).0
}

/// Checks an anchor (typically an exported copy) against the journal and the
/// chain: the record at `anchor.seq` must verify and its entry must carry the
/// anchor's key id and hash. Catches a journal and chain truncated together
/// or rebuilt from some point on, which [`verify`] alone cannot see.
pub fn verify_anchor(journal_dir: &Path, keys: Option<&KeyRing>, anchor: &Anchor) -> VerifyOutcome {
    if anchor.seq == 0 {
        return VerifyOutcome::fail(0, 0, "anchor seq is 0".into(), None);
    }
    let (outcome, last) = walk(journal_dir, keys, anchor.seq, 1);
    if !outcome.ok {
        return outcome;
    }
    let seq = anchor.seq;
    match last {
        Some((e, id)) if e.seq == seq && e.hash == anchor.hash && id == anchor.key_id => outcome,
        Some((e, _)) if e.seq == seq => VerifyOutcome::fail(
            0,
            0,
            format!("anchor mismatch at seq {seq}: the chain entry differs from the anchor"),
            Some(seq),
        ),
        _ => VerifyOutcome::fail(
            0,
            0,
            format!("the audit chain or the journal ends before the anchor at seq {seq}"),
            Some(seq),
        ),
    }
}

/// The walk behind both functions; also returns the last matching entry.
fn walk(
    journal_dir: &Path,
    keys: Option<&KeyRing>,
    from_seq: u64,
    limit: u64,
) -> (VerifyOutcome, Option<(Entry, String)>) {
    let Some(keys) = keys else {
        return (
            VerifyOutcome::fail(0, 0, "AUDIT_HMAC_KEY not configured".into(), None),
            None,
        );
    };
    let mut w = Walk {
        checked: 0,
        last: None,
    };
    let outcome = match w.run(journal_dir, keys, from_seq, limit) {
        Ok(()) => VerifyOutcome {
            ok: true,
            checked: w.checked,
            last_seq: w.last_seq(),
            error: None,
            bad_seq: None,
        },
        Err((error, bad_seq)) => VerifyOutcome::fail(w.checked, w.last_seq(), error, bad_seq),
    };
    (outcome, w.last)
}

type Failure = (String, Option<u64>);

struct Walk {
    checked: u64,
    last: Option<(Entry, String)>,
}

impl Walk {
    fn last_seq(&self) -> u64 {
        self.last.as_ref().map_or(0, |(e, _)| e.seq)
    }

    fn run(
        &mut self,
        journal_dir: &Path,
        keys: &KeyRing,
        from_seq: u64,
        limit: u64,
    ) -> Result<(), Failure> {
        let dir = chain_dir(journal_dir);
        let files = list_chain_files(&dir)
            .map_err(|e| (format!("cannot read {}: {e}", dir.display()), None))?;
        let mut journal = JournalCursor::new(journal_dir);
        journal.refresh().map_err(cursor_failure)?;
        let Some(chain_first) = files.first().map(|f| f.first_seq) else {
            journal.seek(0).map_err(cursor_failure)?;
            return match journal.next().map_err(cursor_failure)? {
                None => Ok(()),
                Some(_) => Err((
                    format!("no audit chain in {}", dir.display()),
                    journal.first_seq(),
                )),
            };
        };
        let start = from_seq.max(chain_first);
        let mut chain = ChainIter::new(files);
        let mut prev: Option<Hash> = None;
        if start == chain_first {
            if let Some(j) = journal.first_seq().filter(|&j| j != chain_first) {
                return Err((
                    format!("audit chain starts at seq {chain_first} but the journal at seq {j}"),
                    Some(j.min(chain_first)),
                ));
            }
            chain.position(start).map_err(chain_failure)?;
        } else {
            chain.position(start - 1).map_err(chain_failure)?;
            match chain.next().map_err(chain_failure)? {
                Some((e, _)) => prev = Some(e.hash),
                // The chain ends before `start`: nothing to check.
                None => return Ok(()),
            }
        }
        journal.seek(start).map_err(cursor_failure)?;
        if journal.next_seq() > start {
            return Err((
                format!(
                    "journal has no record for seq {start}: it starts at seq {}",
                    journal.next_seq()
                ),
                Some(start),
            ));
        }
        while self.checked < limit {
            let Some((entry, key_id)) = chain.next().map_err(chain_failure)? else {
                break;
            };
            let seq = entry.seq;
            let key = keys.get(key_id).ok_or_else(|| {
                (
                    format!("unknown audit key id: {key_id} at seq {seq}"),
                    Some(seq),
                )
            })?;
            let record = match journal.next() {
                Ok(Some(r)) => r,
                Ok(None) => {
                    return Err((
                        format!("journal has no record for seq {seq}, which the audit chain covers (records removed)"),
                        Some(seq),
                    ))
                }
                Err(e) => return Err(cursor_failure(e)),
            };
            if key.chain(prev.as_ref(), record) != entry.hash {
                return Err((format!("hash mismatch detected at seq {seq}"), Some(seq)));
            }
            prev = Some(entry.hash);
            self.checked += 1;
            let key_id = key.id().to_string();
            self.last = Some((entry, key_id));
        }
        Ok(())
    }
}

fn cursor_failure(e: CursorError) -> Failure {
    match e {
        CursorError::Io(e) => (format!("cannot read the journal: {e}"), None),
        CursorError::Damaged { seq, reason } => {
            (format!("journal damaged at seq {seq}: {reason}"), Some(seq))
        }
    }
}

fn chain_failure(e: ChainError) -> Failure {
    match e {
        ChainError::Io(e) => (format!("cannot read the audit chain: {e}"), None),
        ChainError::Damaged { seq: 0, reason } => {
            (format!("audit chain file damaged: {reason}"), None)
        }
        ChainError::Damaged { seq, reason } => (
            format!("audit chain damaged at seq {seq}: {reason}"),
            Some(seq),
        ),
    }
}

/// Entries across chain files, checking that each file starts where the
/// previous one ended.
struct ChainIter {
    files: Vec<ChainFileInfo>,
    fi: usize,
    reader: Option<ChainFileReader>,
    next_seq: u64,
}

impl ChainIter {
    fn new(files: Vec<ChainFileInfo>) -> ChainIter {
        ChainIter {
            files,
            fi: 0,
            reader: None,
            next_seq: 0,
        }
    }

    /// Positions at the entry for `seq` (not before the first file).
    fn position(&mut self, seq: u64) -> Result<(), ChainError> {
        let fi = self
            .files
            .iter()
            .rposition(|f| f.first_seq <= seq)
            .unwrap_or(0);
        let mut r = ChainFileReader::open(&self.files[fi])?;
        r.seek_to(seq)?;
        self.fi = fi;
        self.reader = Some(r);
        self.next_seq = seq.max(self.files[fi].first_seq);
        Ok(())
    }

    /// The next entry and its key id; `None` at the end of the newest file.
    fn next(&mut self) -> Result<Option<(Entry, &str)>, ChainError> {
        loop {
            let Some(r) = self.reader.as_mut() else {
                return Ok(None);
            };
            let newest = self.fi + 1 == self.files.len();
            match r.next_entry()? {
                EntryRead::Entry(e) => {
                    self.next_seq = e.seq + 1;
                    let r = self.reader.as_ref().map(|r| r.key_id(&e));
                    return Ok(r.map(|id| (e, id)));
                }
                // A torn tail of the newest file is an append the auditor had
                // not finished; it is cut and redone at its next start.
                EntryRead::End | EntryRead::Torn { .. } if newest => return Ok(None),
                EntryRead::Torn { reason, .. } => {
                    return Err(ChainError::Damaged {
                        seq: self.next_seq,
                        reason: format!("{reason} in a chain file that is not the newest"),
                    })
                }
                EntryRead::End => {
                    let next = &self.files[self.fi + 1];
                    if next.first_seq != self.next_seq {
                        let reason = match next.first_seq > self.next_seq {
                            true => format!(
                                "no chain entry for seq {} (the next chain file starts at seq {})",
                                self.next_seq, next.first_seq
                            ),
                            false => format!("chain files overlap at seq {}", next.first_seq),
                        };
                        return Err(ChainError::Damaged {
                            seq: self.next_seq,
                            reason,
                        });
                    }
                    self.fi += 1;
                    self.reader = Some(ChainFileReader::open(&self.files[self.fi])?);
                }
            }
        }
    }
}
