//! Reading the journal back: [`replay`] (recovery, may truncate a torn tail),
//! [`scan`] (read-only, reports instead of repairing) and [`verify`].
//!
//! Segments are read through one reusable buffer of about 9 MiB, so memory
//! stays bounded whatever the segment size, and a record is handed to the
//! callback straight from that buffer (no copy, no allocation per record).
//!
//! What counts as damage, and what is done about it:
//!
//! * **Torn tail** — in the *last* segment, an incomplete header or payload,
//!   an impossible `payload_len`, or a CRC mismatch. This is what a crash in
//!   the middle of a group commit leaves behind; those records were never
//!   acknowledged as durable. `replay` cuts the file at the last good record,
//!   `scan`/`verify` only report it.
//! * **Superseded bytes** — in a *non-last* segment, bytes after the record
//!   just before the next segment's `first_seq`. The writer rolls to a fresh
//!   segment after a failed write/fsync and reuses the failed sequence
//!   numbers there; if truncating the failed segment did not reach the disk,
//!   the failed records are still in it. Every sequence number is accounted
//!   for by then, so the leftovers are reported (and cut by `replay`), never
//!   replayed.
//! * **Unwritten space** — zeros after the last record. The writer lays a
//!   segment down as zeros in advance and overwrites them with records
//!   (`segment.rs`, `prepare_spare`), so a segment may end in zeros rather
//!   than at its file length. An all-zero record header can never be a
//!   record (seq 0, kind 0), so it marks the end of the records, provided
//!   nothing but zeros follows it; `replay` cuts the zeros (nothing is lost:
//!   they were never written) and does not report them. A zero header with
//!   data after it is damage like any other.
//! * **Corruption** — anything else: damage in a non-last segment before its
//!   last needed record, a sequence gap or jump, a bad segment header, or a
//!   record whose CRC is valid but whose kind/flags are impossible. This is
//!   a hard [`JournalError::Corrupt`]; nothing is skipped silently.
//!
//! Note the format cannot tell a torn tail from a flipped bit in the last
//! segment's durable records: both are a CRC mismatch followed by whatever.
//! Recovery treats both as a torn tail, and reports how many bytes it cut.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::record::{check_frame, payload_len, Record, HEADER_LEN, MAX_PAYLOAD, MAX_RECORD_LEN};
use crate::segment::{decode_header, list_segments, SegmentInfo, SEGMENT_HEADER_LEN};

/// Bytes read per refill; big reads keep replay far above 1M records/s.
const CHUNK: usize = 8 << 20;
/// Reader buffer size: a chunk plus room for one record straddling its end.
const READ_BUF_MAX: usize = CHUNK + MAX_RECORD_LEN;

/// A damaged or discarded stretch of a segment file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    pub segment: PathBuf,
    /// Byte offset in the segment file where the damage starts.
    pub offset: u64,
    /// Sequence number expected at `offset`.
    pub seq: u64,
    /// Bytes from `offset` to the end of the file.
    pub bytes: u64,
    pub reason: String,
}

/// Outcome of [`replay`] (and of the recovery done by `start`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    pub segments: usize,
    /// Records replayed.
    pub records: u64,
    /// Highest valid sequence number; 0 for an empty journal.
    pub last_seq: u64,
    /// Total bytes cut off (torn tail plus superseded leftovers).
    pub truncated_bytes: u64,
    /// The last segment that was cut, if any.
    pub truncated_segment: Option<PathBuf>,
    /// Every cut, in segment order (at most one per segment).
    pub truncations: Vec<Damage>,
}

/// Outcome of [`scan`]: like a recovery report, but nothing was changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub segments: usize,
    pub records: u64,
    /// First sequence number in the journal; 0 when there are no segments.
    pub first_seq: u64,
    pub last_seq: u64,
    /// Framed bytes of valid records (segment headers excluded).
    pub bytes: u64,
    /// Damage at the end of the last segment, which `replay` would cut.
    pub torn_tail: Option<Damage>,
    /// Leftovers of failed commits in non-last segments, which `replay` would cut.
    pub superseded: Vec<Damage>,
}

/// Outcome of [`verify`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    pub segments: usize,
    /// Valid records before the first problem (or in total when clean).
    pub records: u64,
    pub first_seq: u64,
    pub last_seq: u64,
    pub torn_tail: Option<Damage>,
    /// Hard corruption: where the journal stops being trustworthy.
    pub corrupt: Option<Damage>,
    pub superseded: Vec<Damage>,
}

impl VerifyReport {
    /// No corruption and no torn tail. Superseded leftovers of a failed
    /// commit are expected after an I/O error and do not make a journal unclean.
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_none() && self.torn_tail.is_none()
    }

    /// The first bad spot: corruption if any, else the torn tail.
    pub fn first_bad(&self) -> Option<&Damage> {
        self.corrupt.as_ref().or(self.torn_tail.as_ref())
    }
}

/// Replays every record in order, calling `f`, and repairs the journal:
/// a torn tail in the last segment and superseded leftovers in earlier
/// segments are cut (`set_len` + sync) and reported. Hard corruption is an
/// error. A missing directory is created (an empty journal).
pub fn replay(dir: &Path, mut f: impl FnMut(Record<'_>)) -> Result<RecoveryReport, JournalError> {
    fs::create_dir_all(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut w = Walk::default();
    walk(dir, Mode::Repair, &mut w, &mut f)?;
    Ok(w.into_recovery())
}

/// Like [`replay`] but strictly read-only: never truncates, reports a torn
/// tail and superseded leftovers instead. Used by `journal dump`.
pub fn scan(dir: &Path, mut f: impl FnMut(Record<'_>)) -> Result<ScanReport, JournalError> {
    let mut w = Walk::default();
    walk(dir, Mode::ReadOnly, &mut w, &mut f)?;
    Ok(w.into_scan())
}

/// Checks every CRC, sequence continuity within and across segments, and
/// segment headers, without changing anything. Corruption is reported in the
/// result; only I/O failures are errors.
pub fn verify(dir: &Path) -> Result<VerifyReport, JournalError> {
    let mut w = Walk::default();
    let corrupt = match walk(dir, Mode::ReadOnly, &mut w, &mut |_| {}) {
        Ok(()) => None,
        Err(JournalError::Corrupt {
            segment,
            offset,
            seq,
            reason,
        }) => Some(Damage {
            bytes: file_len(&segment).saturating_sub(offset),
            segment,
            offset,
            seq,
            reason,
        }),
        Err(e) => return Err(e),
    };
    Ok(w.into_verify(corrupt))
}

fn file_len(path: &Path) -> u64 {
    fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Cut torn tails and superseded leftovers (recovery).
    Repair,
    /// Report only.
    ReadOnly,
}

/// Running state of a walk over all segments.
#[derive(Debug, Default)]
struct Walk {
    segments: usize,
    records: u64,
    first_seq: u64,
    /// Sequence number expected next; 0 until the first segment is seen.
    next_seq: u64,
    bytes: u64,
    torn_tail: Option<Damage>,
    superseded: Vec<Damage>,
}

impl Walk {
    fn last_seq(&self) -> u64 {
        self.next_seq.saturating_sub(1)
    }

    fn into_recovery(self) -> RecoveryReport {
        let last_seq = self.last_seq();
        let mut truncations = self.superseded;
        truncations.extend(self.torn_tail);
        RecoveryReport {
            segments: self.segments,
            records: self.records,
            last_seq,
            truncated_bytes: truncations.iter().map(|d| d.bytes).sum(),
            truncated_segment: truncations.last().map(|d| d.segment.clone()),
            truncations,
        }
    }

    fn into_scan(self) -> ScanReport {
        ScanReport {
            segments: self.segments,
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.last_seq(),
            bytes: self.bytes,
            torn_tail: self.torn_tail,
            superseded: self.superseded,
        }
    }

    fn into_verify(self, corrupt: Option<Damage>) -> VerifyReport {
        VerifyReport {
            segments: self.segments,
            records: self.records,
            first_seq: self.first_seq,
            last_seq: self.last_seq(),
            torn_tail: self.torn_tail,
            corrupt,
            superseded: self.superseded,
        }
    }
}

fn walk(
    dir: &Path,
    mode: Mode,
    w: &mut Walk,
    f: &mut impl FnMut(Record<'_>),
) -> Result<(), JournalError> {
    let segs = list_segments(dir)?;
    let mut rd = ChunkReader::default();
    for (i, seg) in segs.iter().enumerate() {
        let next_first = segs.get(i + 1).map(|s| s.first_seq);
        walk_segment(seg, next_first, mode, &mut rd, w, f)?;
    }
    Ok(())
}

/// How the record loop of one segment ended.
enum Stop {
    /// End of file at a record boundary.
    Eof,
    /// Only zeros from this offset to the end of the file (unwritten space).
    Unwritten(u64),
    /// A non-last segment reached the record before the next segment's
    /// first seq, with bytes (not only zeros) left over from this offset.
    Limit(u64),
    /// Torn-looking damage at this offset.
    Damaged(u64, String),
}

fn walk_segment(
    seg: &SegmentInfo,
    next_first: Option<u64>,
    mode: Mode,
    rd: &mut ChunkReader,
    w: &mut Walk,
    f: &mut impl FnMut(Record<'_>),
) -> Result<(), JournalError> {
    let file = File::open(&seg.path).map_err(|e| JournalError::io(&seg.path, e))?;
    let len = file
        .metadata()
        .map_err(|e| JournalError::io(&seg.path, e))?
        .len();
    rd.reset(file, len);
    w.segments += 1;
    if w.segments == 1 {
        // The oldest segment may start anywhere (old segments can be archived).
        w.first_seq = seg.first_seq;
        w.next_seq = seg.first_seq;
    }
    if seg.first_seq != w.next_seq {
        let why = format!("segment starts at seq {}", seg.first_seq);
        return Err(JournalError::corrupt(&seg.path, 0, w.next_seq, why));
    }
    if !read_segment_header(seg, next_first.is_none(), mode, rd, w)? {
        return Ok(());
    }
    let limit = next_first.map(|n| n - 1);
    let stop = walk_records(seg, limit, rd, w, f)?;
    finish_segment(seg, next_first, stop, mode, rd.offset(), len, w)
}

/// At an all-zero record header (or an all-zero remainder shorter than one):
/// unwritten space if zeros run to the end of the file, else damage there.
fn zeros_to_end(seg: &SegmentInfo, rd: &mut ChunkReader) -> Result<Stop, JournalError> {
    let at = rd.offset();
    loop {
        if rd.bytes().iter().any(|&b| b != 0) {
            let why = "an all-zero record header with data after it";
            return Ok(Stop::Damaged(at, why.into()));
        }
        rd.consume(rd.avail());
        if !rd.fill(1).map_err(|e| JournalError::io(&seg.path, e))? {
            return Ok(Stop::Unwritten(at));
        }
    }
}

/// Checks the 16-byte header. Returns false when the last segment is too
/// short to hold one (nothing more to read; the writer recreates it).
fn read_segment_header(
    seg: &SegmentInfo,
    is_last: bool,
    mode: Mode,
    rd: &mut ChunkReader,
    w: &mut Walk,
) -> Result<bool, JournalError> {
    let corrupt = |why: &str| JournalError::corrupt(&seg.path, 0, seg.first_seq, why);
    if !rd
        .fill(SEGMENT_HEADER_LEN)
        .map_err(|e| JournalError::io(&seg.path, e))?
    {
        let have = rd.avail() as u64;
        if !is_last {
            return Err(corrupt("segment shorter than its header"));
        }
        if have > 0 {
            let d = damage(seg, 0, have, w.next_seq, "incomplete segment header");
            note_torn_tail(d, mode, w)?;
        }
        return Ok(false);
    }
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h.copy_from_slice(&rd.bytes()[..SEGMENT_HEADER_LEN]);
    let first = decode_header(&h).map_err(corrupt)?;
    if first != seg.first_seq {
        return Err(corrupt(&format!(
            "header says first_seq {first}, file name disagrees"
        )));
    }
    rd.consume(SEGMENT_HEADER_LEN);
    Ok(true)
}

/// Hands every valid record to `f` until the end, the limit, or damage.
/// Returns hard corruption as an error.
fn walk_records(
    seg: &SegmentInfo,
    limit: Option<u64>,
    rd: &mut ChunkReader,
    w: &mut Walk,
    f: &mut impl FnMut(Record<'_>),
) -> Result<Stop, JournalError> {
    let io = |e| JournalError::io(&seg.path, e);
    loop {
        if limit.is_some_and(|l| w.next_seq > l) {
            let at = rd.offset();
            if !rd.fill(1).map_err(io)? {
                return Ok(Stop::Eof);
            }
            return Ok(match zeros_to_end(seg, rd)? {
                Stop::Unwritten(at) => Stop::Unwritten(at),
                _ => Stop::Limit(at),
            });
        }
        let whole_header = rd.fill(HEADER_LEN).map_err(io)?;
        let head = &rd.bytes()[..rd.avail().min(HEADER_LEN)];
        if !head.is_empty() && head.iter().all(|&b| b == 0) {
            return zeros_to_end(seg, rd);
        }
        let at = rd.offset();
        if !whole_header {
            return Ok(match rd.avail() {
                0 => Stop::Eof,
                _ => Stop::Damaged(at, "incomplete record header".into()),
            });
        }
        let len = payload_len(rd.bytes());
        if len > MAX_PAYLOAD {
            let why = format!("payload_len {len} exceeds MAX_PAYLOAD");
            return Ok(Stop::Damaged(at, why));
        }
        let total = HEADER_LEN + len;
        if !rd.fill(total).map_err(io)? {
            return Ok(Stop::Damaged(at, "incomplete record payload".into()));
        }
        let corrupt = |why: String| JournalError::corrupt(&seg.path, at, w.next_seq, why);
        match check_frame(&rd.bytes()[..total]) {
            Err(e) if e.is_torn() => return Ok(Stop::Damaged(at, e.describe())),
            Err(e) => return Err(corrupt(e.describe())),
            Ok(rec) if rec.seq != w.next_seq => {
                return Err(corrupt(format!("found seq {} (sequence gap)", rec.seq)))
            }
            Ok(rec) => f(rec),
        }
        w.records += 1;
        w.next_seq += 1;
        w.bytes += total as u64;
        rd.consume(total);
    }
}

/// Decides what the end of a segment means (see the module docs).
fn finish_segment(
    seg: &SegmentInfo,
    next_first: Option<u64>,
    stop: Stop,
    mode: Mode,
    offset: u64,
    len: u64,
    w: &mut Walk,
) -> Result<(), JournalError> {
    let rest = |at: u64| len.saturating_sub(at);
    let ends_early = |at: u64, n: u64| {
        let why = format!("segment ends before seq {n}, where the next segment starts");
        Err(JournalError::corrupt(&seg.path, at, w.next_seq, why))
    };
    match (stop, next_first) {
        (Stop::Eof, None) => Ok(()),
        (Stop::Eof, Some(n)) if w.next_seq == n => Ok(()),
        (Stop::Eof, Some(n)) => ends_early(offset, n),
        (Stop::Unwritten(at), Some(n)) if w.next_seq != n => ends_early(at, n),
        (Stop::Unwritten(at), _) => {
            // Never written, so nothing is lost; cut so that the file ends at its last record
            // again, which is where the writer continues.
            let d = damage(seg, at, rest(at), w.next_seq, "unwritten (zero) space");
            cut(&d, mode, false)
        }
        (Stop::Limit(at), _) => {
            let why = "leftover of a failed commit after the next segment's first seq";
            note_superseded(damage(seg, at, rest(at), w.next_seq, why), mode, w)
        }
        (Stop::Damaged(at, why), None) => {
            note_torn_tail(damage(seg, at, rest(at), w.next_seq, &why), mode, w)
        }
        (Stop::Damaged(at, why), Some(_)) => {
            Err(JournalError::corrupt(&seg.path, at, w.next_seq, why))
        }
    }
}

fn damage(seg: &SegmentInfo, offset: u64, bytes: u64, seq: u64, reason: &str) -> Damage {
    Damage {
        segment: seg.path.clone(),
        offset,
        seq,
        bytes,
        reason: reason.to_string(),
    }
}

fn note_torn_tail(d: Damage, mode: Mode, w: &mut Walk) -> Result<(), JournalError> {
    cut(&d, mode, true)?;
    w.torn_tail = Some(d);
    Ok(())
}

fn note_superseded(d: Damage, mode: Mode, w: &mut Walk) -> Result<(), JournalError> {
    cut(&d, mode, true)?;
    w.superseded.push(d);
    Ok(())
}

/// In repair mode, truncates the segment at the damage and makes that durable
/// before anything is appended after it. `loud`: damage, logged as a warning.
fn cut(d: &Damage, mode: Mode, loud: bool) -> Result<(), JournalError> {
    if mode == Mode::ReadOnly {
        return Ok(());
    }
    if loud {
        tracing::warn!(
            segment = %d.segment.display(), offset = d.offset, seq = d.seq,
            bytes = d.bytes, reason = %d.reason, "journal recovery: truncating"
        );
    } else {
        tracing::debug!(segment = %d.segment.display(), offset = d.offset, bytes = d.bytes, "journal recovery: cutting unwritten space");
    }
    let io = |e| JournalError::io(&d.segment, e);
    let f = OpenOptions::new()
        .write(true)
        .open(&d.segment)
        .map_err(io)?;
    f.set_len(d.offset).map_err(io)?;
    f.sync_all().map_err(io)
}

/// Buffered sequential reader that exposes its buffer, so records can be
/// checked and handed out in place. Reads big chunks to keep syscalls rare.
#[derive(Default)]
struct ChunkReader {
    file: Option<File>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[0]`.
    base: u64,
    /// Size hint for the buffer (the file length when opened).
    hint: usize,
    eof: bool,
}

impl ChunkReader {
    fn reset(&mut self, file: File, len: u64) {
        self.file = Some(file);
        self.start = 0;
        self.end = 0;
        self.base = 0;
        self.hint = usize::try_from(len).unwrap_or(usize::MAX);
        self.eof = false;
    }

    fn avail(&self) -> usize {
        self.end - self.start
    }

    fn bytes(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// File offset of the first unconsumed byte.
    fn offset(&self) -> u64 {
        self.base + self.start as u64
    }

    fn consume(&mut self, n: usize) {
        debug_assert!(n <= self.avail());
        self.start += n;
    }

    /// Makes at least `n` (<= MAX_RECORD_LEN) bytes available; false if the
    /// file ends first.
    fn fill(&mut self, n: usize) -> io::Result<bool> {
        debug_assert!(n <= READ_BUF_MAX);
        if self.avail() >= n {
            return Ok(true);
        }
        if self.eof {
            return Ok(false);
        }
        self.make_room(n);
        while self.avail() < n {
            let Some(file) = self.file.as_mut() else {
                return Ok(false);
            };
            match file.read(&mut self.buf[self.end..]) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(got) => self.end += got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Slides unconsumed bytes to the front and grows the buffer (up to
    /// READ_BUF_MAX) so that `n` bytes fit from `start`.
    fn make_room(&mut self, n: usize) {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.base += self.start as u64;
            self.end -= self.start;
            self.start = 0;
        }
        // Size to the file (within bounds) so small journals stay cheap.
        let want = n.max(self.hint.clamp(64 << 10, READ_BUF_MAX));
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{stamp_batch, BatchBuf};
    use crate::segment::{create_segment, encode_header, segment_file_name};
    use std::io::Write;

    /// Writes a segment holding records `first..first+n` (payload = seq bytes).
    fn write_segment(dir: &Path, first: u64, n: u64) -> PathBuf {
        let (mut f, path) = create_segment(dir, first, false).unwrap();
        f.write_all(&frames(first, n)).unwrap();
        path
    }

    fn frames(first: u64, n: u64) -> Vec<u8> {
        let mut b = BatchBuf::default();
        for s in first..first + n {
            b.push(3, s * 10, &s.to_le_bytes()).unwrap();
        }
        let count = b.count();
        stamp_batch(b.as_mut_bytes(), count, first).unwrap();
        b.as_bytes().to_vec()
    }

    fn seqs(dir: &Path) -> Vec<u64> {
        let mut out = Vec::new();
        scan(dir, |r| out.push(r.seq)).unwrap();
        out
    }

    // Goal: records spread over several segments replay in order with contiguous seqs.
    #[test]
    fn replays_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 5);
        write_segment(dir.path(), 6, 3);
        let mut got = Vec::new();
        let rep = replay(dir.path(), |r| {
            got.push((r.seq, r.time_ns, r.payload.to_vec()))
        })
        .unwrap();
        assert_eq!((rep.segments, rep.records, rep.last_seq), (2, 8, 8));
        assert_eq!(got[7], (8, 80, 8u64.to_le_bytes().to_vec()));
        assert!(verify(dir.path()).unwrap().is_clean());
    }

    // Goal: a zero-length or header-only last segment is accepted as an empty tail.
    #[test]
    fn empty_last_segments_are_fine() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 2);
        create_segment(dir.path(), 3, false).unwrap();
        assert_eq!(verify(dir.path()).unwrap().last_seq, 2);
        File::create(dir.path().join(segment_file_name(3))).unwrap();
        let v = verify(dir.path()).unwrap();
        assert!(v.is_clean() && v.last_seq == 2 && v.segments == 2);
    }

    // Goal: damage in a non-last segment is a hard error for replay, scan and verify.
    #[test]
    fn non_last_corruption_is_hard_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 4);
        write_segment(dir.path(), 5, 1);
        let mut bytes = fs::read(&p).unwrap();
        let at = SEGMENT_HEADER_LEN + HEADER_LEN + 8 + HEADER_LEN + 3;
        bytes[at] ^= 0x40;
        fs::write(&p, &bytes).unwrap();
        assert_eq!(seqs_until_error(dir.path()), vec![1]);
        let err = replay(dir.path(), |_| {}).unwrap_err();
        assert!(matches!(err, JournalError::Corrupt { seq: 2, .. }), "{err}");
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.corrupt.as_ref().map(|d| d.seq), Some(2));
        // Nothing was truncated by the failed replay.
        assert_eq!(fs::read(&p).unwrap(), bytes);
    }

    fn seqs_until_error(dir: &Path) -> Vec<u64> {
        let mut out = Vec::new();
        assert!(scan(dir, |r| out.push(r.seq)).is_err());
        out
    }

    // Goal: a gap between segments and a bad segment header are hard errors.
    #[test]
    fn gaps_and_bad_headers_are_hard_errors() {
        let dir = tempfile::tempdir().unwrap();
        write_segment(dir.path(), 1, 2);
        write_segment(dir.path(), 4, 1);
        let v = verify(dir.path()).unwrap();
        assert!(v.corrupt.unwrap().reason.contains("before seq 4"));

        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 2);
        let mut bytes = fs::read(&p).unwrap();
        bytes[..SEGMENT_HEADER_LEN].copy_from_slice(&encode_header(9));
        fs::write(&p, &bytes).unwrap();
        assert!(matches!(
            replay(dir.path(), |_| {}),
            Err(JournalError::Corrupt { .. })
        ));
        bytes[0] = b'X';
        fs::write(&p, &bytes).unwrap();
        assert!(verify(dir.path())
            .unwrap()
            .corrupt
            .unwrap()
            .reason
            .contains("magic"));
    }

    // Goal: a record with a valid crc but the wrong seq is corruption, not a torn tail.
    #[test]
    fn seq_jump_inside_segment_is_hard_error() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = create_segment(dir.path(), 1, false).unwrap();
        f.write_all(&frames(1, 2)).unwrap();
        f.write_all(&frames(4, 1)).unwrap();
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.corrupt.unwrap().seq, 3);
        assert_eq!(v.records, 2);
    }

    // Goal: leftovers of a failed commit in a non-last segment are reported by scan and cut by replay.
    #[test]
    fn superseded_leftovers_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, p) = create_segment(dir.path(), 1, false).unwrap();
        f.write_all(&frames(1, 3)).unwrap();
        let good_len = f.metadata().unwrap().len();
        // Records 4..5 "failed" and were re-issued in the next segment.
        f.write_all(&frames(4, 2)).unwrap();
        f.write_all(b"partial").unwrap();
        write_segment(dir.path(), 4, 2);
        let s = scan(dir.path(), |_| {}).unwrap();
        assert_eq!((s.records, s.last_seq, s.superseded.len()), (5, 5, 1));
        assert_eq!(s.superseded[0].offset, good_len);
        assert!(verify(dir.path()).unwrap().is_clean());
        assert_eq!(seqs(dir.path()), vec![1, 2, 3, 4, 5]);
        let r = replay(dir.path(), |_| {}).unwrap();
        assert_eq!(r.truncations.len(), 1);
        assert_eq!(fs::metadata(&p).unwrap().len(), good_len);
        assert!(scan(dir.path(), |_| {}).unwrap().superseded.is_empty());
    }

    fn append(p: &Path, bytes: &[u8]) {
        let mut f = OpenOptions::new().append(true).open(p).unwrap();
        f.write_all(bytes).unwrap();
    }

    // Goal: zeros after the last record (a segment laid down in advance, or a file extended but
    // never written) are unwritten space: not damage, nothing replayed from them, and cut by
    // replay so that the file ends at its last record again.
    #[test]
    fn zero_tail_is_unwritten_space() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 3);
        let len = fs::metadata(&p).unwrap().len();
        append(&p, &[0u8; 4096]);
        let s = scan(dir.path(), |_| {}).unwrap();
        assert_eq!((s.last_seq, s.torn_tail, s.superseded.len()), (3, None, 0));
        assert!(verify(dir.path()).unwrap().is_clean());
        let r = replay(dir.path(), |_| {}).unwrap();
        assert_eq!((r.truncated_bytes, r.last_seq), (0, 3));
        assert_eq!(fs::metadata(&p).unwrap().len(), len);
        // Fewer zeros than a record header are unwritten space as well.
        append(&p, &[0u8; 5]);
        assert!(verify(dir.path()).unwrap().is_clean());
    }

    // Goal: an all-zero header followed by anything but zeros is damage, never the end: a
    // commit whose first block did not reach the disk but whose later one did must not leave
    // its records behind to be read later, after new records overwrite the zeros.
    #[test]
    fn zero_header_with_data_after_it_is_damage() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 3);
        let len = fs::metadata(&p).unwrap().len();
        append(&p, &[0u8; 100]);
        append(&p, &frames(4, 1));
        append(&p, &[0u8; 100]);
        let s = scan(dir.path(), |_| {}).unwrap();
        let t = s.torn_tail.unwrap();
        assert_eq!((s.last_seq, t.offset, t.seq), (3, len, 4));
        let r = replay(dir.path(), |_| {}).unwrap();
        assert_eq!((r.last_seq, r.truncated_bytes), (3, t.bytes));
        assert_eq!(fs::metadata(&p).unwrap().len(), len);
    }

    // Goal: a finished segment may keep zeros after its last record (its unused space was not
    // cut before a crash): fine when the next segment continues the sequence, corruption
    // when records are missing, and never mistaken for leftovers of a failed commit.
    #[test]
    fn zero_tail_of_an_earlier_segment() {
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 3);
        append(&p, &[0u8; 300]);
        write_segment(dir.path(), 4, 2);
        let v = verify(dir.path()).unwrap();
        assert!(v.is_clean() && v.superseded.is_empty(), "{v:?}");
        assert_eq!(seqs(dir.path()), vec![1, 2, 3, 4, 5]);
        // Records 1..3 then zeros, but the next segment starts at 5: seq 4 is missing.
        let dir = tempfile::tempdir().unwrap();
        let p = write_segment(dir.path(), 1, 3);
        append(&p, &[0u8; 300]);
        write_segment(dir.path(), 5, 1);
        let v = verify(dir.path()).unwrap();
        assert_eq!(v.corrupt.map(|d| d.seq), Some(4));
    }

    // Goal: records larger than one read chunk and chunk-straddling records are read correctly.
    #[test]
    fn big_records_straddle_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = create_segment(dir.path(), 1, false).unwrap();
        let mut b = BatchBuf::default();
        let payload = vec![7u8; MAX_PAYLOAD];
        for _ in 0..10 {
            b.push(1, 0, &payload).unwrap();
        }
        stamp_batch(b.as_mut_bytes(), 10, 1).unwrap();
        f.write_all(b.as_bytes()).unwrap();
        let mut n = 0;
        let s = scan(dir.path(), |r| {
            assert_eq!(r.payload.len(), MAX_PAYLOAD);
            n += 1;
        })
        .unwrap();
        assert_eq!((n, s.last_seq), (10, 10));
    }

    // Goal: scan and verify refuse a missing directory instead of creating it.
    #[test]
    fn read_only_functions_do_not_create_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        assert!(matches!(
            scan(&missing, |_| {}),
            Err(JournalError::Io { .. })
        ));
        assert!(verify(&missing).is_err());
        assert!(!missing.exists());
        assert_eq!(replay(&missing, |_| {}).unwrap().records, 0);
        assert!(missing.exists());
    }
}
