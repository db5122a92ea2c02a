//! Switchyard's journal: the append-only binary log that is the gateway's
//! single source of truth.
//!
//! Every fact the gateway must not forget (an accepted order, a kill-switch
//! change, ...) becomes a record: a `u16` kind, a producer timestamp and an
//! opaque payload. The journal frames, sequences, checksums and group-commits
//! those records, replays them at startup, and verifies them offline.
//!
//! What it must NOT do: know about HTTP, orders or any other payload
//! semantics. Payloads are bytes; kinds are numbers. Interpreting them is the
//! caller's business.
//!
//! Modules:
//! * `record.rs` — record framing (28-byte header), CRC32C, [`BatchBuf`].
//! * `segment.rs` — segment file naming, the 16-byte segment header, creation,
//!   and spares: segments laid down as zeros in advance.
//! * `writer.rs` — the `journal-writer` group-commit thread, [`JournalHandle`],
//!   [`DurableListener`], failure policy and the [`FaultPlan`] test hook; the
//!   `journal-prep` thread that prepares the spares.
//! * `reader.rs` — [`replay`] (recovery, repairs a torn tail, cuts unwritten
//!   zeros), [`scan`] (read-only) and [`verify`].
//! * `error.rs` — [`JournalError`].
//! * `audit.rs` — the HMAC-SHA256 hash chain over every record: key ring,
//!   the `auditor` thread that follows the durable journal, chain files,
//!   anchors and [`audit::verify`].
//!
//! Durability contract: a record is durable once [`DurableListener::on_durable`]
//! has been called for its batch (written and `fdatasync`'ed, unless
//! `WriterConfig::fsync` is off for tests); [`JournalHandle::durable_seq`]
//! is published just before.

#![forbid(unsafe_code)]

pub mod audit;
mod error;
mod reader;
mod record;
mod segment;
mod writer;

pub use audit::{CursorError, JournalCursor};
pub use error::JournalError;
pub use reader::{replay, scan, verify, Damage, RecoveryReport, ScanReport, VerifyReport};
pub use record::{
    frame_record, BatchBuf, Record, HEADER_LEN, MAX_BATCH_BYTES, MAX_PAYLOAD, MAX_RECORD_LEN,
};
pub use segment::{
    list_segments, segment_file_name, SegmentInfo, MAX_SEGMENTS, SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};
pub use writer::{
    start, start_with_replay, Batch, CommitStats, DurableListener, DurableWatch, FaultPlan,
    JournalHandle, SubmitError, WriterConfig,
};
