//! Goal: journal recovery (`switchyard-journal`) reads arbitrary segment files exactly as the
//! format says, never hands out a damaged record, and repairs only what it may.
//!
//! The input describes up to four segment files (`switchyard_fuzz::journal`), written to a
//! scratch directory on tmpfs. A reference reader written from the format's description says
//! which records are good, where a torn tail, unwritten space (zeros to the end of a segment)
//! or superseded leftovers start, and where hard corruption stops the journal. Then:
//! - `scan` hands out exactly those records (seq, time, kind, payload: so every record it
//!   yields has a matching CRC, kind ≠ 0, no flags, the next seq), reports the same torn tail
//!   and leftovers, or fails where the corruption is;
//! - `verify` reports the same counts, damage and corruption (segment, offset, seq);
//! - `JournalCursor` (the auditor's reader) hands out the same records, as the exact framed
//!   bytes on disk;
//! - `replay` hands out the same records, cuts each segment exactly at its torn tail,
//!   leftovers or unwritten space and nowhere else (the bytes before stay as they were;
//!   only the first two are reported as cuts), and a second `scan` then finds the same
//!   records and nothing left to repair.
#![no_main]

use std::fs;
use std::path::{Path, PathBuf};

use libfuzzer_sys::fuzz_target;
use switchyard_fuzz::journal::{expect, segments, Expected, Rec, Segment, Spot};
use switchyard_journal::{
    frame_record, replay, scan, segment_file_name, verify, Damage, JournalCursor, JournalError,
    Record,
};

fn own(r: Record<'_>) -> Rec {
    (r.seq, r.time_ns, r.kind, r.payload.to_vec())
}

fn path_of(dir: &Path, segs: &[Segment], s: &Spot) -> PathBuf {
    dir.join(segment_file_name(segs[s.segment].first_seq))
}

fn same_spot(dir: &Path, segs: &[Segment], d: &Damage, s: &Spot) -> bool {
    d.segment == path_of(dir, segs, s)
        && d.offset == s.offset
        && d.seq == s.seq
        && d.bytes == s.bytes
}

fn same_spots(dir: &Path, segs: &[Segment], d: &[Damage], s: &[Spot]) -> bool {
    d.len() == s.len() && d.iter().zip(s).all(|(d, s)| same_spot(dir, segs, d, s))
}

fn check_corrupt(dir: &Path, segs: &[Segment], err: &JournalError, want: &Expected) {
    let spot = want
        .corrupt
        .as_ref()
        .unwrap_or_else(|| panic!("error {err} where the format sees none"));
    match err {
        JournalError::Corrupt {
            segment,
            offset,
            seq,
            ..
        } => assert!(
            *segment == path_of(dir, segs, spot) && *offset == spot.offset && *seq == spot.seq,
            "corruption reported at {segment:?}@{offset} seq {seq}, expected {spot:?}"
        ),
        other => panic!("unexpected error {other}"),
    }
}

fn check_scan(dir: &Path, segs: &[Segment], want: &Expected) {
    let mut got = Vec::new();
    match scan(dir, |r| got.push(own(r))) {
        Ok(rep) => {
            assert!(
                want.corrupt.is_none(),
                "scan missed corruption {:?}",
                want.corrupt
            );
            assert_eq!(rep.records, want.records.len() as u64);
            assert_eq!(rep.segments, segs.len());
            assert_eq!(rep.first_seq, segs[0].first_seq);
            assert_eq!(rep.last_seq, want.next_seq - 1);
            assert_eq!(rep.bytes, want.record_bytes);
            match (&rep.torn_tail, &want.torn) {
                (None, None) => {}
                (Some(d), Some(s)) => assert!(same_spot(dir, segs, d, s), "torn {d:?} vs {s:?}"),
                (d, s) => panic!("torn tail {d:?}, expected {s:?}"),
            }
            assert!(
                same_spots(dir, segs, &rep.superseded, &want.superseded),
                "superseded {:?} vs {:?}",
                rep.superseded,
                want.superseded
            );
        }
        Err(e) => check_corrupt(dir, segs, &e, want),
    }
    assert_eq!(got, want.records, "scan handed out other records");
}

fn check_verify(dir: &Path, segs: &[Segment], want: &Expected) {
    let v = verify(dir).expect("verify fails only on I/O");
    assert_eq!(v.records, want.records.len() as u64);
    match (&v.corrupt, &want.corrupt) {
        (None, None) => {}
        (Some(d), Some(s)) => assert!(
            d.segment == path_of(dir, segs, s) && d.offset == s.offset && d.seq == s.seq,
            "corrupt {d:?} vs {s:?}"
        ),
        (d, s) => panic!("verify corrupt {d:?}, expected {s:?}"),
    }
    if want.corrupt.is_none() {
        assert_eq!(v.is_clean(), want.torn.is_none());
        assert_eq!(v.last_seq, want.next_seq - 1);
    }
}

fn check_cursor(dir: &Path, want: &Expected) {
    let mut c = JournalCursor::new(dir);
    let mut got = Vec::new();
    if c.seek(1).is_ok() {
        while let Ok(Some(frame)) = c.next() {
            // A frame the cursor hands out checks by itself.
            let crc = u32::from_le_bytes(frame[4..8].try_into().expect("4 bytes"));
            assert_eq!(
                crc,
                crc32c::crc32c(&frame[8..]),
                "cursor frame with a bad CRC"
            );
            got.push(own(frame_record(frame)));
            assert!(
                got.len() <= want.records.len(),
                "cursor read past the good records"
            );
        }
    }
    assert_eq!(got, want.records, "cursor handed out other records");
}

fn check_replay(dir: &Path, segs: &[Segment], want: &Expected) {
    let mut got = Vec::new();
    match replay(dir, |r| got.push(own(r))) {
        Ok(rep) => {
            assert!(want.corrupt.is_none(), "replay missed corruption");
            assert_eq!(rep.records, want.records.len() as u64);
            assert_eq!(rep.last_seq, want.next_seq - 1);
            let mut cuts: Vec<Spot> = want.superseded.clone();
            cuts.extend(want.torn);
            assert!(
                same_spots(dir, segs, &rep.truncations, &cuts),
                "truncations"
            );
            assert_eq!(
                rep.truncated_bytes,
                cuts.iter().map(|s| s.bytes).sum::<u64>()
            );
            for (i, seg) in segs.iter().enumerate() {
                let keep = cuts
                    .iter()
                    .chain(&want.unwritten)
                    .find(|s| s.segment == i)
                    .map_or(seg.bytes.len(), |s| s.offset as usize);
                let now = fs::read(dir.join(segment_file_name(seg.first_seq))).expect("read");
                assert_eq!(now, seg.bytes[..keep], "segment {i} after repair");
            }
            // Repaired: the same records, nothing left to cut.
            let mut again = Vec::new();
            let s = scan(dir, |r| again.push(own(r))).expect("scan after replay");
            assert_eq!(again, want.records);
            assert!(s.torn_tail.is_none() && s.superseded.is_empty(), "{s:?}");
        }
        Err(e) => {
            check_corrupt(dir, segs, &e, want);
            assert_eq!(got, want.records, "replay handed out other records");
        }
    }
    if want.corrupt.is_none() {
        assert_eq!(got, want.records, "replay handed out other records");
    }
}

fuzz_target!(|data: &[u8]| {
    let segs = segments(data);
    if segs.is_empty() {
        return;
    }
    let dir = switchyard_fuzz::scratch_dir("journal");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).expect("scratch dir");
    for s in &segs {
        fs::write(dir.join(segment_file_name(s.first_seq)), &s.bytes).expect("write segment");
    }
    let want = expect(&segs);
    check_scan(&dir, &segs, &want);
    check_verify(&dir, &segs, &want);
    check_cursor(&dir, &want);
    check_replay(&dir, &segs, &want);
});
