//! Recovery and damage detection: torn tails at every byte, single flipped
//! bytes anywhere in a record, and damaged segments at startup.

mod common;

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};

use common::*;
use proptest::prelude::*;
use switchyard_journal::{
    replay, scan, start, verify, JournalError, WriterConfig, HEADER_LEN, SEGMENT_HEADER_LEN,
};

/// Writes `batches` with a stopped-and-joined writer.
fn build_journal(dir: &Path, cfg: WriterConfig, batches: &[Vec<Rec>]) {
    let (l, rx) = listener();
    let (h, join, _) = start(cfg, l).unwrap();
    for (i, recs) in batches.iter().enumerate() {
        h.submit(batch(i as u64, recs)).unwrap();
    }
    drop(h);
    join.join().unwrap();
    assert!(rx.try_iter().all(|e| !matches!(e, Event::Failed { .. })));
    assert!(verify(dir).unwrap().is_clean());
}

/// Copies every segment of `from` into a fresh temp dir.
fn clone_journal(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for seg in segments(from) {
        fs::copy(&seg, to.path().join(seg.file_name().unwrap())).unwrap();
    }
    to
}

fn truncate(path: &Path, len: u64) {
    OpenOptions::new()
        .write(true)
        .open(path)
        .unwrap()
        .set_len(len)
        .unwrap();
}

// Goal: cutting the last segment at every byte inside its last record is repaired by start, which then appends the right seq.
#[test]
fn torn_tail_at_every_offset_is_truncated_and_appending_continues() {
    let base = tempfile::tempdir().unwrap();
    let recs = simple_recs(3, 7);
    let last_payload = 40;
    let batches = vec![recs.clone(), vec![(9, 99, vec![0xEE; last_payload])]];
    build_journal(base.path(), test_config(base.path()), &batches);
    let seg = segments(base.path()).pop().unwrap();
    let full = fs::metadata(&seg).unwrap().len();
    let last_start = full - (HEADER_LEN + last_payload) as u64;
    for cut in last_start..full {
        let dir = clone_journal(base.path());
        let path = dir.path().join(seg.file_name().unwrap());
        truncate(&path, cut);
        let (l, rx) = listener();
        let (h, join, report) = start(test_config(dir.path()), l).unwrap();
        assert_eq!(report.last_seq, 3, "cut at {cut}");
        assert_eq!(report.truncated_bytes, cut - last_start, "cut at {cut}");
        let expect_seg: Option<PathBuf> = (cut > last_start).then(|| path.clone());
        assert_eq!(report.truncated_segment, expect_seg);
        let next = commit_one(&h, &rx, 1, &[(5, 5, b"after".to_vec())]);
        assert_eq!(
            next,
            Event::Durable {
                meta: 1,
                first_seq: 4,
                len: 1
            }
        );
        drop(h);
        join.join().unwrap();
        let mut expect = numbered(1, &recs);
        expect.push((4, 5, 5, b"after".to_vec()));
        assert_eq!(read_all(dir.path()), expect);
        assert!(verify(dir.path()).unwrap().is_clean());
    }
}

// Goal: a torn segment header in the last segment is cut and the segment recreated by start.
#[test]
fn torn_last_segment_header_is_recreated() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        segment_bytes: 100,
        ..test_config(dir.path())
    };
    build_journal(
        dir.path(),
        cfg.clone(),
        &[simple_recs(2, 1), simple_recs(2, 2)],
    );
    let last = segments(dir.path()).pop().unwrap();
    truncate(&last, 0);
    fs::write(&last, b"SWYJ").unwrap();
    let s = scan(dir.path(), |_| {}).unwrap();
    assert_eq!(
        (s.last_seq, s.torn_tail.as_ref().map(|d| d.bytes)),
        (2, Some(4))
    );
    let (l, rx) = listener();
    let (h, join, report) = start(cfg, l).unwrap();
    assert_eq!((report.last_seq, report.truncated_bytes), (2, 4));
    assert_eq!(
        commit_one(&h, &rx, 1, &simple_recs(1, 3)),
        Event::Durable {
            meta: 1,
            first_seq: 3,
            len: 1
        }
    );
    drop(h);
    join.join().unwrap();
    assert_eq!(read_all(dir.path()).len(), 3);
    assert_eq!(
        fs::metadata(&last).unwrap().len() as usize,
        SEGMENT_HEADER_LEN + batch(0, &simple_recs(1, 3)).records.bytes()
    );
}

// Goal: start refuses a journal with corruption in a non-last segment and leaves it untouched.
#[test]
fn start_refuses_hard_corruption() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = WriterConfig {
        segment_bytes: 100,
        ..test_config(dir.path())
    };
    build_journal(
        dir.path(),
        cfg.clone(),
        &[simple_recs(2, 1), simple_recs(2, 2), simple_recs(2, 3)],
    );
    let first = segments(dir.path()).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xFF;
    fs::write(&first, &bytes).unwrap();
    let (l, _rx) = listener();
    let err = start::<u64, _>(cfg, l).unwrap_err();
    assert!(matches!(err, JournalError::Corrupt { seq: 2, .. }), "{err}");
    assert_eq!(fs::read(&first).unwrap(), bytes);
}

/// Where a flipped byte lands: the record's seq, its file offset, and whether
/// it is in the last segment.
struct Target {
    path: PathBuf,
    at: usize,
    seq: u64,
    record_start: u64,
    last_segment: bool,
}

/// Picks the byte at `pick` (modulo the record bytes) across all segments.
fn locate(dir: &Path, pick: usize) -> Target {
    let segs = switchyard_journal::list_segments(dir).unwrap();
    let sizes: Vec<usize> = segs
        .iter()
        .map(|s| fs::metadata(&s.path).unwrap().len() as usize - SEGMENT_HEADER_LEN)
        .collect();
    let mut rem = pick % sizes.iter().sum::<usize>();
    let i = sizes
        .iter()
        .position(|&n| {
            rem < n || {
                rem -= n;
                false
            }
        })
        .unwrap();
    let bytes = fs::read(&segs[i].path).unwrap();
    let (mut off, mut seq) = (SEGMENT_HEADER_LEN, segs[i].first_seq);
    loop {
        let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
        let end = off + HEADER_LEN + len;
        if SEGMENT_HEADER_LEN + rem < end {
            return Target {
                path: segs[i].path.clone(),
                at: SEGMENT_HEADER_LEN + rem,
                seq,
                record_start: off as u64,
                last_segment: i + 1 == segs.len(),
            };
        }
        off = end;
        seq += 1;
    }
}

fn recs_strategy() -> impl Strategy<Value = Vec<Vec<Rec>>> {
    let rec = (
        1u16..,
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..64),
    );
    prop::collection::vec(prop::collection::vec(rec, 1..5), 1..6)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    // Goal: any single flipped byte in any record is reported (never accepted) and the intact prefix still replays.
    #[test]
    fn flipped_byte_is_detected_and_prefix_replays(
        batches in recs_strategy(),
        segment_bytes in prop::sample::select(vec![150u64, 400, 1 << 20]),
        pick in any::<usize>(),
        xor in 1u8..=255,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = WriterConfig { segment_bytes, ..test_config(dir.path()) };
        build_journal(dir.path(), cfg, &batches);
        let original = read_all(dir.path());
        let t = locate(dir.path(), pick);
        let mut bytes = fs::read(&t.path).unwrap();
        bytes[t.at] ^= xor;
        fs::write(&t.path, &bytes).unwrap();
        let prefix: Vec<_> = original.iter().take_while(|r| r.0 < t.seq).cloned().collect();

        // scan: the prefix is delivered, the damage is reported at the right record.
        let mut seen = Vec::new();
        let res = scan(dir.path(), |r| seen.push((r.seq, r.kind, r.time_ns, r.payload.to_vec())));
        prop_assert_eq!(&seen, &prefix);
        let v = verify(dir.path()).unwrap();
        prop_assert!(!v.is_clean());
        let bad = v.first_bad().unwrap();
        prop_assert_eq!((bad.seq, bad.offset), (t.seq, t.record_start));
        if t.last_segment {
            let s = res.unwrap();
            prop_assert_eq!(s.torn_tail.map(|d| d.seq), Some(t.seq));
            // replay cuts the damaged tail and keeps exactly the prefix.
            let mut replayed = Vec::new();
            let r = replay(dir.path(), |r| replayed.push((r.seq, r.kind, r.time_ns, r.payload.to_vec()))).unwrap();
            prop_assert_eq!(&replayed, &prefix);
            prop_assert_eq!(r.truncated_segment.as_ref(), Some(&t.path));
            prop_assert!(verify(dir.path()).unwrap().is_clean());
        } else {
            let is_corrupt = matches!(res, Err(JournalError::Corrupt { seq, .. }) if seq == t.seq);
            prop_assert!(is_corrupt);
            let replay_failed = replay(dir.path(), |_| ()).is_err();
            prop_assert!(replay_failed);
            prop_assert_eq!(fs::read(&t.path).unwrap(), bytes);
        }
    }
}
