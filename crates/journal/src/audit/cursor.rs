//! A forward cursor over journal records by sequence number, for readers
//! that follow a journal another thread is appending to (the auditor) or
//! that start in the middle (verify from a given seq).
//!
//! Unlike `reader.rs`, which reads each file once to its end, the cursor may
//! hit the end of the last segment, come back later and find more records.
//! It never modifies anything. It hands out each record's exact on-disk bytes
//! (header and payload) after checking its CRC and that its seq is the next
//! one. A segment is read only up to the next segment's first seq: past that
//! lie leftovers of a failed commit whose numbers were reissued.
//!
//! The segment being written may be laid down as zeros in advance, with records
//! written over them (`segment.rs`, `prepare_spare`): bytes buffered past the
//! last record can change later. So the cursor never trusts buffered bytes
//! that do not form the next record: it reads them again from the file once
//! before it calls them the end (an all-zero header) or damage. It must only
//! be asked for records known to be written (its callers read up to the
//! durable watermark): half a commit written over zeros reads as damage.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;
use crate::record::{check_frame, payload_len, HEADER_LEN, MAX_PAYLOAD};
use crate::segment::{decode_header, list_segments, SegmentInfo, SEGMENT_HEADER_LEN};

/// Bytes asked of the OS per read.
const CHUNK: usize = 256 << 10;

/// Why the cursor stopped short.
#[derive(Debug)]
pub enum CursorError {
    Io(JournalError),
    /// The record that should carry `seq` is missing, damaged or out of place.
    Damaged {
        seq: u64,
        reason: String,
    },
}

pub struct JournalCursor {
    dir: PathBuf,
    segs: Vec<SegmentInfo>,
    /// Index into `segs` of the open segment.
    idx: usize,
    file: Option<File>,
    /// The open segment's header has not been read and checked yet.
    header_pending: bool,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// File offset of `buf[end]` (where the next read starts).
    pos: u64,
    next_seq: u64,
}

impl JournalCursor {
    pub fn new(dir: &Path) -> JournalCursor {
        JournalCursor {
            dir: dir.to_path_buf(),
            segs: Vec::new(),
            idx: 0,
            file: None,
            header_pending: false,
            buf: Vec::new(),
            start: 0,
            end: 0,
            pos: 0,
            next_seq: 1,
        }
    }

    /// Sequence number of the record `next` will return.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// First sequence number of the journal as last listed; `None` without segments.
    pub fn first_seq(&self) -> Option<u64> {
        self.segs.first().map(|s| s.first_seq)
    }

    fn io(&self, path: &Path, e: io::Error) -> CursorError {
        CursorError::Io(JournalError::io(path, e))
    }

    /// Re-lists the segments, so that a segment created since (a roll, or a
    /// new segment after a failed commit) bounds the open one.
    pub fn refresh(&mut self) -> Result<(), CursorError> {
        self.segs = list_segments(&self.dir).map_err(CursorError::Io)?;
        if self.file.is_none() {
            // No segment was open (the journal was empty): start at next_seq.
            return match self.segs.is_empty() {
                true => Ok(()),
                false => self.seek(self.next_seq),
            };
        }
        // The open segment keeps its place unless a segment now starts at or
        // before next_seq after it (new segments only come after it).
        let open = self.segs.iter().rposition(|s| s.first_seq <= self.next_seq);
        if open != Some(self.idx) {
            return self.seek(self.next_seq);
        }
        Ok(())
    }

    /// Positions the cursor at `seq`, or at the journal's first record if
    /// `seq` precedes it. When the journal ends before `seq`, the cursor stops
    /// at its end (`next_seq` tells where).
    pub fn seek(&mut self, seq: u64) -> Result<(), CursorError> {
        self.segs = list_segments(&self.dir).map_err(CursorError::Io)?;
        self.file = None;
        let Some(idx) = self
            .segs
            .iter()
            .rposition(|s| s.first_seq <= seq)
            .or(if self.segs.is_empty() { None } else { Some(0) })
        else {
            self.next_seq = seq.max(1);
            return Ok(());
        };
        self.open_index(idx)?;
        while self.next_seq < seq {
            if self.next()?.is_none() {
                break;
            }
        }
        Ok(())
    }

    fn open_index(&mut self, idx: usize) -> Result<(), CursorError> {
        let seg = &self.segs[idx];
        let file = File::open(&seg.path).map_err(|e| self.io(&seg.path, e))?;
        self.next_seq = seg.first_seq;
        self.idx = idx;
        self.file = Some(file);
        self.header_pending = true;
        self.start = 0;
        self.end = 0;
        self.pos = 0;
        Ok(())
    }

    /// First seq of the segment after the open one, if one is listed.
    fn limit(&self) -> Option<u64> {
        self.segs.get(self.idx + 1).map(|s| s.first_seq)
    }

    /// The next record's framed bytes, or `None` if it is not (yet) in the
    /// journal. (Not an `Iterator`: it lends a slice of its own buffer.)
    #[allow(clippy::should_implement_trait)]
    pub fn next(&mut self) -> Result<Option<&[u8]>, CursorError> {
        // The offset whose bytes this call read again (see the module docs).
        let mut reread = None;
        loop {
            if self.file.is_none() {
                return Ok(None);
            }
            if self.limit().is_some_and(|l| self.next_seq >= l) {
                self.open_index(self.idx + 1)?;
                continue;
            }
            if self.header_pending {
                if !self.fill(SEGMENT_HEADER_LEN)? {
                    return self.at_end();
                }
                let mut h = [0u8; SEGMENT_HEADER_LEN];
                h.copy_from_slice(&self.buf[self.start..self.start + SEGMENT_HEADER_LEN]);
                let first = self.segs[self.idx].first_seq;
                match decode_header(&h) {
                    Ok(f) if f == first => {}
                    Ok(f) => {
                        return Err(self.damaged(format!(
                            "segment header says first seq {f}, its name says {first}"
                        )))
                    }
                    Err(why) => return Err(self.damaged(why.to_string())),
                }
                self.start += SEGMENT_HEADER_LEN;
                self.header_pending = false;
            }
            if !self.fill(HEADER_LEN)? {
                return self.at_end();
            }
            if self.buf[self.start..self.start + HEADER_LEN]
                .iter()
                .all(|&b| b == 0)
            {
                // Unwritten space, unless the zeros were buffered before a record landed.
                if self.read_again(&mut reread) {
                    continue;
                }
                return self.at_end();
            }
            let len = payload_len(&self.buf[self.start..]);
            if len > MAX_PAYLOAD {
                if self.read_again(&mut reread) {
                    continue;
                }
                return Err(self.damaged(format!("payload_len {len} exceeds the maximum")));
            }
            let total = HEADER_LEN + len;
            if !self.fill(total)? {
                return self.at_end();
            }
            let range = self.start..self.start + total;
            let checked = check_frame(&self.buf[range.clone()]).map(|r| r.seq);
            match checked {
                Err(_) if self.read_again(&mut reread) => continue,
                Err(e) => return Err(self.damaged(format!("record damaged: {}", e.describe()))),
                Ok(seq) if seq != self.next_seq => {
                    let why = format!(
                        "found seq {seq} where seq {} belongs (records removed or out of order)",
                        self.next_seq
                    );
                    return Err(self.damaged(why));
                }
                Ok(_) => {}
            }
            self.start += total;
            self.next_seq += 1;
            return Ok(Some(&self.buf[range]));
        }
    }

    /// Drops the buffered bytes from the record at `start` on, so that the next `fill`
    /// reads them from the file again. False if this call of `next` (`reread`) read them
    /// again already.
    fn read_again(&mut self, reread: &mut Option<u64>) -> bool {
        let at = self.pos - (self.end - self.start) as u64;
        if *reread == Some(at) {
            return false;
        }
        *reread = Some(at);
        self.pos = at;
        self.end = self.start;
        true
    }

    fn damaged(&self, reason: String) -> CursorError {
        CursorError::Damaged {
            seq: self.next_seq,
            reason,
        }
    }

    /// The open segment has no more complete record. That is the end of the
    /// journal (for now) if it is the last segment; otherwise a segment
    /// stopped short of its successor and records are missing.
    fn at_end(&self) -> Result<Option<&[u8]>, CursorError> {
        match self.limit() {
            None => Ok(None),
            Some(l) => Err(self.damaged(format!(
                "segment {} ends before seq {l}, where the next segment starts",
                self.segs[self.idx].path.display()
            ))),
        }
    }

    /// Makes `n` bytes available at `start`; false if the file has fewer now.
    /// Not sticky: a later call reads what was appended since.
    fn fill(&mut self, n: usize) -> Result<bool, CursorError> {
        if self.end - self.start >= n {
            return Ok(true);
        }
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let want = n.max(CHUNK);
        if self.buf.len() < want {
            self.buf.resize(want, 0);
        }
        let Some(file) = self.file.as_mut() else {
            return Ok(false);
        };
        while self.end < n {
            match file.read_at(&mut self.buf[self.end..], self.pos) {
                Ok(0) => return Ok(false),
                Ok(got) => {
                    self.end += got;
                    self.pos += got as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let path = self.segs[self.idx].path.clone();
                    return Err(self.io(&path, e));
                }
            }
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{stamp_batch, BatchBuf};
    use crate::segment::create_segment;
    use std::io::Write;

    fn frames(first: u64, n: u64) -> Vec<u8> {
        let mut b = BatchBuf::default();
        for s in first..first + n {
            b.push(3, s, &s.to_le_bytes()).unwrap();
        }
        let count = b.count();
        stamp_batch(b.as_mut_bytes(), count, first).unwrap();
        b.as_bytes().to_vec()
    }

    fn seqs(c: &mut JournalCursor) -> Vec<u64> {
        let mut out = Vec::new();
        while let Some(f) = c.next().unwrap() {
            out.push(u64::from_le_bytes(f[8..16].try_into().unwrap()));
        }
        out
    }

    // Goal: the cursor follows a growing segment, crosses into new segments, and skips
    // leftovers past the next segment's first seq.
    #[test]
    fn follows_growth_and_segments() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = create_segment(dir.path(), 1, false).unwrap();
        f.write_all(&frames(1, 3)).unwrap();
        let mut c = JournalCursor::new(dir.path());
        c.seek(2).unwrap();
        assert_eq!(seqs(&mut c), vec![2, 3]);
        // Half a record appended: not returned yet.
        let more = frames(4, 2);
        f.write_all(&more[..10]).unwrap();
        assert!(c.next().unwrap().is_none());
        f.write_all(&more[10..]).unwrap();
        assert_eq!(seqs(&mut c), vec![4, 5]);
        // A failed commit left seq 6..7 in segment 1; they were reissued in segment 6.
        f.write_all(&frames(6, 2)).unwrap();
        let (mut g, _) = create_segment(dir.path(), 6, false).unwrap();
        g.write_all(&frames(6, 1)).unwrap();
        c.refresh().unwrap();
        assert_eq!(seqs(&mut c), vec![6]);
        assert_eq!(c.next_seq(), 7);
        // Seeking before the first record starts at the first record.
        c.seek(0).unwrap();
        assert_eq!(c.next_seq(), 1);
        assert_eq!(seqs(&mut c), vec![1, 2, 3, 4, 5, 6]);
    }

    // Goal: a seq jump and a segment that stops short of its successor are damage at the
    // missing seq.
    #[test]
    fn gaps_are_damage() {
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = create_segment(dir.path(), 1, false).unwrap();
        f.write_all(&frames(1, 2)).unwrap();
        f.write_all(&frames(4, 1)).unwrap();
        let mut c = JournalCursor::new(dir.path());
        c.seek(1).unwrap();
        assert_eq!(c.next().unwrap().map(<[u8]>::len), Some(36));
        c.next().unwrap();
        match c.next() {
            Err(CursorError::Damaged { seq: 3, reason }) => assert!(reason.contains("found seq 4")),
            other => panic!("{other:?}"),
        }
        let dir = tempfile::tempdir().unwrap();
        let (mut f, _) = create_segment(dir.path(), 1, false).unwrap();
        f.write_all(&frames(1, 2)).unwrap();
        let (mut g, _) = create_segment(dir.path(), 5, false).unwrap();
        g.write_all(&frames(5, 1)).unwrap();
        let mut c = JournalCursor::new(dir.path());
        c.seek(1).unwrap();
        c.next().unwrap();
        c.next().unwrap();
        assert!(matches!(c.next(), Err(CursorError::Damaged { seq: 3, .. })));
    }

    // Goal: in a segment laid down as zeros, the cursor stops at the zeros and then reads the
    // records written over them later, although it had buffered those zeros.
    #[test]
    fn follows_records_written_over_zeros() {
        use std::os::unix::fs::FileExt;
        let dir = tempfile::tempdir().unwrap();
        let (f, _) = create_segment(dir.path(), 1, false).unwrap();
        let mut at = SEGMENT_HEADER_LEN as u64;
        f.write_all_at(&vec![0u8; 64 << 10], at).unwrap();
        let mut c = JournalCursor::new(dir.path());
        c.seek(1).unwrap();
        for (first, n) in [(1, 2), (3, 3), (6, 3)] {
            assert!(c.next().unwrap().is_none());
            let more = frames(first, n);
            f.write_all_at(&more, at).unwrap();
            at += more.len() as u64;
            assert_eq!(seqs(&mut c), (first..first + n).collect::<Vec<_>>());
        }
        assert_eq!(c.next_seq(), 9);
    }
}
