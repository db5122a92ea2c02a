//! The `journal_segments` target's input format, and a reference reader written from the
//! format description in `crates/journal/src/{record,segment,reader}.rs` (module docs), to
//! compare `scan`, `verify`, `replay` and `JournalCursor` against.
//!
//! Input: up to [`MAX_SEGMENTS`] segments, each `[delta u8][mode u8][len u16 LE][len bytes]`.
//! - `delta`: the segment's first seq. The first segment starts at `1 + delta % 4`; a later one
//!   at `prev_first + delta` if `delta > 0`, else right after the previous segment's complete
//!   frames (the normal case), and always after the previous segment's first seq.
//! - `mode` bit 0: the bytes are the records only and a correct 16-byte segment header is put
//!   before them (otherwise the bytes are the whole file, header included);
//!   bit 1: recompute the CRC of every complete frame; bit 2: renumber complete frames from the
//!   segment's first seq; bit 3: make kind non-zero and flags zero. With bits 1–3 the fuzzer
//!   builds valid journals from mutated bytes, and damages them with the bits cleared.

use switchyard_journal::{HEADER_LEN, MAX_PAYLOAD, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};

pub const MAX_SEGMENTS: usize = 4;

/// One segment file to write: its name's first seq and its bytes.
#[derive(Debug, Clone)]
pub struct Segment {
    pub first_seq: u64,
    pub bytes: Vec<u8>,
}

/// Builds the segment files an input describes.
pub fn segments(data: &[u8]) -> Vec<Segment> {
    let mut out: Vec<Segment> = Vec::new();
    let mut at = 0;
    let mut after_prev = 1u64;
    while out.len() < MAX_SEGMENTS && at + 4 <= data.len() {
        let (delta, mode) = (u64::from(data[at]), data[at + 1]);
        let len = usize::from(u16::from_le_bytes([data[at + 2], data[at + 3]]));
        at += 4;
        let body = &data[at..(at + len).min(data.len())];
        at += body.len();
        let first_seq = match out.last() {
            None => 1 + delta % 4,
            Some(prev) if delta > 0 => prev.first_seq + delta,
            Some(prev) => after_prev.max(prev.first_seq + 1),
        };
        let mut bytes = Vec::with_capacity(body.len() + SEGMENT_HEADER_LEN);
        if mode & 1 != 0 {
            bytes.extend_from_slice(&SEGMENT_MAGIC);
            bytes.extend_from_slice(&first_seq.to_le_bytes());
        }
        bytes.extend_from_slice(body);
        let frames = restamp(&mut bytes, first_seq, mode);
        after_prev = first_seq + frames;
        out.push(Segment { first_seq, bytes });
    }
    out
}

/// Applies mode bits 1–3 to the complete frames after the header; returns their number.
fn restamp(b: &mut [u8], first_seq: u64, mode: u8) -> u64 {
    let mut off = SEGMENT_HEADER_LEN;
    let mut n = 0u64;
    while off + HEADER_LEN <= b.len() {
        let plen = u32_at(b, off) as usize;
        if plen > MAX_PAYLOAD || off + HEADER_LEN + plen > b.len() {
            break;
        }
        let frame = &mut b[off..off + HEADER_LEN + plen];
        if mode & 8 != 0 {
            if u16_at(frame, 24) == 0 {
                frame[24] = 1;
            }
            frame[26..28].copy_from_slice(&[0, 0]);
        }
        if mode & 4 != 0 {
            frame[8..16].copy_from_slice(&(first_seq + n).to_le_bytes());
        }
        if mode & 2 != 0 {
            let crc = crc32c::crc32c(&frame[8..]);
            frame[4..8].copy_from_slice(&crc.to_le_bytes());
        }
        n += 1;
        off += HEADER_LEN + plen;
    }
    n
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// A record as the reference reader found it: `(seq, time_ns, kind, payload)`.
pub type Rec = (u64, u64, u16, Vec<u8>);

/// A stretch the reference reader reports: segment index, file offset, expected seq, bytes
/// from the offset to the end of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Spot {
    pub segment: usize,
    pub offset: u64,
    pub seq: u64,
    pub bytes: u64,
}

/// What reading the whole journal must give.
#[derive(Debug, Clone, Default)]
pub struct Expected {
    /// Records handed out, in order (up to the corruption, if any).
    pub records: Vec<Rec>,
    /// Framed bytes of those records.
    pub record_bytes: u64,
    /// Damage at the end of the last segment (recovery cuts it).
    pub torn: Option<Spot>,
    /// Leftovers after a non-last segment's last needed record (recovery cuts them).
    pub superseded: Vec<Spot>,
    /// Zeros after a segment's last record (recovery cuts them without reporting a cut).
    pub unwritten: Vec<Spot>,
    /// Hard corruption: where reading stops with an error.
    pub corrupt: Option<Spot>,
    /// Segments entered before the walk ended.
    pub segments: usize,
    /// Seq expected next when the walk ended.
    pub next_seq: u64,
}

enum Stop {
    Eof,
    Unwritten,
    Limit,
    Damaged,
}

/// The reference reader: the rules of the reader's module doc, one segment after another.
pub fn expect(segs: &[Segment]) -> Expected {
    let mut e = Expected {
        next_seq: segs.first().map_or(0, |s| s.first_seq),
        ..Expected::default()
    };
    for (i, seg) in segs.iter().enumerate() {
        e.segments += 1;
        let next_first = segs.get(i + 1).map(|s| s.first_seq);
        if !expect_segment(i, seg, next_first, &mut e) {
            break;
        }
    }
    e
}

/// One segment; false when the walk stops (corruption).
fn expect_segment(i: usize, seg: &Segment, next_first: Option<u64>, e: &mut Expected) -> bool {
    let b = &seg.bytes;
    let len = b.len() as u64;
    let spot = |offset: u64, seq: u64| Spot {
        segment: i,
        offset,
        seq,
        bytes: len - offset,
    };
    if seg.first_seq != e.next_seq {
        e.corrupt = Some(spot(0, e.next_seq));
        return false;
    }
    if b.len() < SEGMENT_HEADER_LEN {
        if next_first.is_some() {
            e.corrupt = Some(spot(0, seg.first_seq));
            return false;
        }
        if !b.is_empty() {
            e.torn = Some(spot(0, e.next_seq));
        }
        return true;
    }
    if b[..8] != SEGMENT_MAGIC || u64_at(b, 8) != seg.first_seq {
        e.corrupt = Some(spot(0, seg.first_seq));
        return false;
    }
    let mut off = SEGMENT_HEADER_LEN;
    let zeros_from = |off: usize| b[off..].iter().all(|&x| x == 0);
    let stop = loop {
        if next_first.is_some_and(|n| e.next_seq >= n) {
            break match off < b.len() {
                true if zeros_from(off) => Stop::Unwritten,
                true => Stop::Limit,
                false => Stop::Eof,
            };
        }
        if off == b.len() {
            break Stop::Eof;
        }
        // An all-zero record header (or all-zero rest shorter than one) is unwritten space
        // when only zeros follow, damage otherwise.
        if b[off..b.len().min(off + HEADER_LEN)]
            .iter()
            .all(|&x| x == 0)
        {
            break match zeros_from(off) {
                true => Stop::Unwritten,
                false => Stop::Damaged,
            };
        }
        if b.len() - off < HEADER_LEN {
            break Stop::Damaged;
        }
        let plen = u32_at(b, off) as usize;
        if plen > MAX_PAYLOAD || b.len() - off < HEADER_LEN + plen {
            break Stop::Damaged;
        }
        let frame = &b[off..off + HEADER_LEN + plen];
        if u32_at(frame, 4) != crc32c::crc32c(&frame[8..]) {
            break Stop::Damaged;
        }
        let (seq, kind, flags) = (u64_at(frame, 8), u16_at(frame, 24), u16_at(frame, 26));
        if kind == 0 || flags != 0 || seq != e.next_seq {
            e.corrupt = Some(spot(off as u64, e.next_seq));
            return false;
        }
        e.records
            .push((seq, u64_at(frame, 16), kind, frame[HEADER_LEN..].to_vec()));
        e.record_bytes += frame.len() as u64;
        e.next_seq += 1;
        off += frame.len();
    };
    let off = off as u64;
    match (stop, next_first) {
        (Stop::Eof | Stop::Unwritten, Some(n)) if e.next_seq != n => {
            e.corrupt = Some(spot(off, e.next_seq));
            false
        }
        (Stop::Eof, _) => true,
        (Stop::Damaged, Some(_)) => {
            e.corrupt = Some(spot(off, e.next_seq));
            false
        }
        (Stop::Unwritten, _) => {
            e.unwritten.push(spot(off, e.next_seq));
            true
        }
        (Stop::Limit, _) => {
            e.superseded.push(spot(off, e.next_seq));
            true
        }
        (Stop::Damaged, None) => {
            e.torn = Some(spot(off, e.next_seq));
            true
        }
    }
}
