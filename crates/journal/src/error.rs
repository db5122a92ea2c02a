//! Error type of the journal.
//!
//! Bad bytes on disk always surface as [`JournalError::Corrupt`] (or as a
//! reported torn tail), never as a panic: the journal is the source of truth,
//! so the operator must be told exactly where it is damaged.

use std::io;
use std::path::PathBuf;

use crate::record::{MAX_BATCH_BYTES, MAX_PAYLOAD};

/// Everything that can go wrong in the journal.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    /// An operating-system call failed on `path`.
    #[error("journal I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The log is damaged somewhere recovery is not allowed to repair it
    /// (a non-last segment, a sequence gap, a bad segment header, ...).
    /// `seq` is the sequence number expected at `offset`.
    #[error("journal corrupt in {} at offset {offset} (expected seq {seq}): {reason}", segment.display())]
    Corrupt {
        segment: PathBuf,
        offset: u64,
        seq: u64,
        reason: String,
    },
    /// A payload longer than [`MAX_PAYLOAD`] was offered.
    #[error("payload of {len} bytes exceeds the maximum of {MAX_PAYLOAD} bytes")]
    PayloadTooLarge { len: usize },
    /// Kind 0 is reserved as "invalid" so that zeroed bytes never look like a record.
    #[error("record kind 0 is invalid")]
    InvalidKind,
    /// A batch would grow beyond [`MAX_BATCH_BYTES`] or `u32::MAX` records.
    #[error("batch would exceed {MAX_BATCH_BYTES} bytes or u32::MAX records")]
    BatchTooLarge,
    /// The writer configuration makes no sense.
    #[error("invalid journal writer config: {0}")]
    Config(&'static str),
    /// The writer thread could not be spawned.
    #[error("could not spawn the journal writer thread: {0}")]
    Spawn(#[source] io::Error),
}

impl JournalError {
    /// Wraps an I/O error with the path it happened on.
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        JournalError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(
        segment: impl Into<PathBuf>,
        offset: u64,
        seq: u64,
        reason: impl Into<String>,
    ) -> Self {
        JournalError::Corrupt {
            segment: segment.into(),
            offset,
            seq,
            reason: reason.into(),
        }
    }
}
