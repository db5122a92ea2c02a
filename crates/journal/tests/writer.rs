//! Writer behaviour through the public API: round trips across segment
//! rolls and restarts, group commit, listener ordering, fault injection,
//! backpressure and shutdown.

mod common;

use std::fs;
use std::thread;
use std::time::Duration;

use common::*;
use proptest::prelude::*;
use switchyard_journal::{
    start, start_with_replay, verify, Batch, BatchBuf, DurableListener, FaultPlan, SubmitError,
    SEGMENT_HEADER_LEN,
};

/// Writes `batches` in one writer session and returns the events seen.
fn write_session(cfg: switchyard_journal::WriterConfig, batches: &[Vec<Rec>]) -> Vec<Event> {
    let (l, rx) = listener();
    let (h, join, _) = start(cfg, l).unwrap();
    for (i, recs) in batches.iter().enumerate() {
        h.submit(batch(i as u64, recs)).unwrap();
    }
    drop(h);
    join.join().unwrap();
    rx.try_iter().collect()
}

fn rec_strategy() -> impl Strategy<Value = Rec> {
    (
        1u16..,
        any::<u64>(),
        prop::collection::vec(any::<u8>(), 0..300),
    )
}

fn batches_strategy() -> impl Strategy<Value = Vec<Vec<Rec>>> {
    prop::collection::vec(prop::collection::vec(rec_strategy(), 0..6), 1..20)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    // Goal: random batches written by the real writer over two sessions, with tiny segments, replay identically.
    #[test]
    fn roundtrip_across_rolls_and_restarts(
        first in batches_strategy(),
        second in batches_strategy(),
        segment_bytes in 64u64..4096,
        max_commit_bytes in 64usize..10_000,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let cfg = switchyard_journal::WriterConfig { segment_bytes, max_commit_bytes, ..test_config(dir.path()) };
        write_session(cfg.clone(), &first);
        write_session(cfg, &second);
        let all: Vec<Rec> = first.iter().chain(second.iter()).flatten().cloned().collect();
        prop_assert_eq!(read_all(dir.path()), numbered(1, &all));
        let v = verify(dir.path()).unwrap();
        prop_assert!(v.is_clean());
        prop_assert_eq!(v.last_seq, all.len() as u64);
        // A segment only exceeds segment_bytes when it holds one oversized batch.
        let biggest = first.iter().chain(second.iter()).map(|b| batch(0, b).records.bytes()).max().unwrap_or(0);
        for seg in segments(dir.path()) {
            let len = fs::metadata(&seg).unwrap().len();
            prop_assert!(len <= segment_bytes.max((SEGMENT_HEADER_LEN + biggest) as u64));
        }
    }
}

// Goal: the same round trip works with real fdatasync, and events report contiguous seqs.
#[test]
fn roundtrip_with_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<Rec>> = (0..20).map(|i| simple_recs(1 + i % 3, i as u8)).collect();
    let cfg = switchyard_journal::WriterConfig {
        fsync: true,
        segment_bytes: 512,
        ..test_config(dir.path())
    };
    let events = write_session(cfg, &batches);
    let durable = events
        .iter()
        .filter(|e| matches!(e, Event::Durable { .. }))
        .count();
    assert_eq!(durable, batches.len());
    let all: Vec<Rec> = batches.into_iter().flatten().collect();
    assert_eq!(read_all(dir.path()), numbered(1, &all));
    assert!(segments(dir.path()).len() > 1);
}

// Goal: on_durable runs in submission order with contiguous first_seq, and the watermarks agree.
#[test]
fn listener_order_and_durable_seq() {
    let dir = tempfile::tempdir().unwrap();
    let (l, rx) = listener();
    let (h, join, _) = start(test_config(dir.path()), l).unwrap();
    let mut total = 0u64;
    for i in 0..500u64 {
        let recs = simple_recs((i % 4) as usize, 1);
        total += recs.len() as u64;
        h.submit(batch(i, &recs)).unwrap();
    }
    let mut next_seq = 1;
    for i in 0..500u64 {
        match next_outcome(&rx) {
            Event::Durable {
                meta,
                first_seq,
                len,
            } => {
                assert_eq!((meta, first_seq), (i, next_seq));
                next_seq += len as u64;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(h.durable_seq(), total);
    assert_eq!(h.last_assigned_seq(), total);
    assert_eq!(h.oldest_pending_age(), None);
    drop(h);
    join.join().unwrap();
}

// Goal: with a slow writer, many submitters get grouped into fewer commits, all durable and in order.
#[test]
fn group_commit_batches_concurrent_submitters() {
    let dir = tempfile::tempdir().unwrap();
    let (mut l, rx) = listener();
    l.commit_delay = Some(Duration::from_millis(2));
    let cfg = switchyard_journal::WriterConfig {
        fsync: true,
        ..test_config(dir.path())
    };
    let (h, join, _) = start(cfg, l).unwrap();
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 100;
    let producers: Vec<_> = (0..THREADS)
        .map(|t| {
            let h = h.clone();
            thread::spawn(move || {
                for i in 0..PER_THREAD {
                    let recs = simple_recs(1 + (i % 2) as usize, t as u8);
                    h.submit(batch(t * 1000 + i, &recs)).unwrap();
                }
            })
        })
        .collect();
    for p in producers {
        p.join().unwrap();
    }
    drop(h);
    join.join().unwrap();
    let events: Vec<Event> = rx.try_iter().collect();
    let commits: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::Commit(s) => Some(*s),
            _ => None,
        })
        .collect();
    let durable: Vec<(u64, u64, usize)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Durable {
                meta,
                first_seq,
                len,
            } => Some((*meta, *first_seq, *len)),
            _ => None,
        })
        .collect();
    assert_eq!(durable.len() as u64, THREADS * PER_THREAD);
    assert!(
        commits.len() < durable.len(),
        "{} commits for {} batches",
        commits.len(),
        durable.len()
    );
    assert_eq!(
        commits.iter().map(|c| u64::from(c.batches)).sum::<u64>(),
        THREADS * PER_THREAD
    );
    // Contiguous seqs in callback order, and each thread's batches in its own order.
    let mut next = 1;
    let mut last_per_thread = [None::<u64>; THREADS as usize];
    for (meta, first_seq, len) in durable {
        assert_eq!(first_seq, next);
        next += len as u64;
        let (t, i) = ((meta / 1000) as usize, meta % 1000);
        assert!(last_per_thread[t].is_none_or(|prev| prev < i));
        last_per_thread[t] = Some(i);
    }
    assert_eq!(read_all(dir.path()).len() as u64, next - 1);
}

/// Runs: good batch A, failing batch B (per `fault`), good batch C; returns the dir.
fn fault_scenario(fault: FaultPlan, fail_first: bool) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let (l, rx) = listener();
    let cfg = switchyard_journal::WriterConfig {
        fault: Some(fault),
        ..test_config(dir.path())
    };
    let (h, join, _) = start(cfg, l).unwrap();
    let (a, b, c) = (
        simple_recs(3, 0xA),
        simple_recs(2, 0xB),
        simple_recs(2, 0xC),
    );
    let mut good = Vec::new();
    if !fail_first {
        assert_eq!(
            commit_one(&h, &rx, 1, &a),
            Event::Durable {
                meta: 1,
                first_seq: 1,
                len: 3
            }
        );
        good.extend(a);
    }
    assert_eq!(
        commit_one(&h, &rx, 2, &b),
        Event::Failed { meta: 2, len: 2 }
    );
    assert_eq!(h.durable_seq(), good.len() as u64);
    assert_eq!(h.last_assigned_seq(), good.len() as u64);
    let expect_first = good.len() as u64 + 1;
    assert_eq!(
        commit_one(&h, &rx, 3, &c),
        Event::Durable {
            meta: 3,
            first_seq: expect_first,
            len: 2
        }
    );
    good.extend(c);
    drop(h);
    join.join().unwrap();
    // The failed records are gone, the rest is contiguous, C sits in a fresh segment.
    assert_eq!(read_all(dir.path()), numbered(1, &good));
    let segs = segments(dir.path());
    assert_eq!(segs.len(), if fail_first { 1 } else { 2 });
    let last = segs.last().unwrap();
    assert!(last.ends_with(switchyard_journal::segment_file_name(expect_first)));
    assert!(verify(dir.path()).unwrap().is_clean());
    dir
}

// Goal: a failed write fails its batches, leaves no trace in the log, and the next commit lands in a new segment.
#[test]
fn failed_write_is_rejected_and_log_stays_contiguous() {
    let plan = |n| FaultPlan {
        fail_write_at_commit: Some(n),
        fail_sync_at_commit: None,
        ..FaultPlan::default()
    };
    fault_scenario(plan(2), false);
    fault_scenario(plan(1), true);
}

// Goal: a failed fsync fails its batches, the written bytes are cut, and the log stays contiguous.
#[test]
fn failed_sync_is_rejected_and_log_stays_contiguous() {
    let plan = |n| FaultPlan {
        fail_write_at_commit: None,
        fail_sync_at_commit: Some(n),
        ..FaultPlan::default()
    };
    let dir = fault_scenario(plan(2), false);
    let first = &segments(dir.path())[0];
    let a_bytes = batch(0, &simple_recs(3, 0xA)).records.bytes();
    assert_eq!(
        fs::metadata(first).unwrap().len(),
        (SEGMENT_HEADER_LEN + a_bytes) as u64
    );
    fault_scenario(plan(1), true);
}

// Goal: after a failure and a restart, recovery sees only good records and appending continues contiguously.
#[test]
fn restart_after_failure_continues_seqs() {
    let plan = FaultPlan {
        fail_write_at_commit: None,
        fail_sync_at_commit: Some(2),
        ..FaultPlan::default()
    };
    let dir = fault_scenario(plan, false);
    let (l, rx) = listener();
    let mut seen = 0;
    let (h, join, report) = start_with_replay(test_config(dir.path()), l, |_| seen += 1).unwrap();
    assert_eq!(
        (
            report.last_seq,
            report.records,
            seen,
            report.truncated_bytes
        ),
        (5, 5, 5, 0)
    );
    assert_eq!(
        commit_one(&h, &rx, 9, &simple_recs(1, 9)),
        Event::Durable {
            meta: 9,
            first_seq: 6,
            len: 1
        }
    );
    drop(h);
    join.join().unwrap();
    assert_eq!(read_all(dir.path()).last().unwrap().0, 6);
}

/// Listener that parks inside on_durable until the test releases it.
struct GateListener {
    entered: crossbeam_channel::Sender<u64>,
    gate: crossbeam_channel::Receiver<()>,
}

impl DurableListener<u64> for GateListener {
    fn on_durable(&mut self, batch: Batch<u64>, _first_seq: u64) {
        let _ = self.entered.send(batch.meta);
        let _ = self.gate.recv();
    }
    fn on_failed(&mut self, _batch: Batch<u64>, _error: &std::io::Error) {}
}

// Goal: a full queue gives the batch back from try_submit, and oldest_pending_age reflects the stall.
#[test]
fn backpressure_full_queue_and_pending_age() {
    let dir = tempfile::tempdir().unwrap();
    let (entered_tx, entered) = crossbeam_channel::unbounded();
    let (gate_tx, gate) = crossbeam_channel::unbounded();
    let cfg = switchyard_journal::WriterConfig {
        queue_batches: 2,
        ..test_config(dir.path())
    };
    let (h, join, _) = start(
        cfg,
        GateListener {
            entered: entered_tx,
            gate,
        },
    )
    .unwrap();
    assert_eq!(h.queue_capacity(), 2);
    h.submit(batch(0, &simple_recs(1, 0))).unwrap();
    assert_eq!(entered.recv_timeout(Duration::from_secs(10)).unwrap(), 0);
    // The writer is parked: at most one more batch is held by it, two fit in the queue.
    let mut accepted = 0u64;
    let refused = loop {
        match h.try_submit(batch(1 + accepted, &simple_recs(1, 1))) {
            Ok(()) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted <= 3, "queue never filled");
    };
    assert!(matches!(refused, SubmitError::Full(_)));
    assert_eq!(refused.into_batch().meta, 1 + accepted);
    assert_eq!(h.queued_batches(), 2);
    thread::sleep(Duration::from_millis(30));
    let age = h.oldest_pending_age().expect("a batch is pending");
    assert!(age >= Duration::from_millis(30), "{age:?}");
    for _ in 0..=accepted {
        gate_tx.send(()).unwrap();
    }
    for _ in 0..accepted {
        entered.recv_timeout(Duration::from_secs(10)).unwrap();
    }
    assert_eq!(h.durable_seq(), 1 + accepted);
    drop(h);
    join.join().unwrap();
}

struct PanicListener;

impl DurableListener<u64> for PanicListener {
    fn on_durable(&mut self, _batch: Batch<u64>, _first_seq: u64) {
        panic!("listener bug (expected by the test)");
    }
    fn on_failed(&mut self, _batch: Batch<u64>, _error: &std::io::Error) {}
}

// Goal: if the writer thread dies, submissions fail with Closed and hand the batch back.
#[test]
fn dead_writer_reports_closed() {
    let dir = tempfile::tempdir().unwrap();
    let (h, join, _) = start(test_config(dir.path()), PanicListener).unwrap();
    h.submit(batch(1, &simple_recs(1, 1))).unwrap();
    assert!(join.join().is_err());
    match h.submit(batch(2, &simple_recs(1, 2))) {
        Err(SubmitError::Closed(b)) => assert_eq!(b.meta, 2),
        other => panic!("expected Closed, got {other:?}"),
    }
    assert!(matches!(
        h.try_submit(batch(3, &[])),
        Err(SubmitError::Closed(_))
    ));
}

// Goal: start creates a missing directory with a first segment and refuses a bad config.
#[test]
fn start_creates_dir_and_validates_config() {
    let dir = tempfile::tempdir().unwrap();
    let jdir = dir.path().join("a/b/journal");
    let (l, _rx) = listener();
    let (h, join, report) = start::<u64, _>(test_config(&jdir), l).unwrap();
    assert_eq!(
        (report.segments, report.records, report.last_seq),
        (0, 0, 0)
    );
    assert_eq!(segments(&jdir).len(), 1);
    drop(h);
    join.join().unwrap();
    let (l, _rx) = listener();
    let bad = switchyard_journal::WriterConfig {
        queue_batches: 0,
        ..test_config(&jdir)
    };
    assert!(start::<u64, _>(bad, l).is_err());
}

// Goal: empty batches are acknowledged without consuming sequence numbers.
#[test]
fn empty_batches_are_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let (l, rx) = listener();
    let (h, join, _) = start(test_config(dir.path()), l).unwrap();
    assert_eq!(
        commit_one(&h, &rx, 1, &[]),
        Event::Durable {
            meta: 1,
            first_seq: 1,
            len: 0
        }
    );
    assert_eq!(
        commit_one(&h, &rx, 2, &simple_recs(2, 2)),
        Event::Durable {
            meta: 2,
            first_seq: 1,
            len: 2
        }
    );
    drop(h);
    join.join().unwrap();
    assert_eq!(read_all(dir.path()).len(), 2);
}

// Goal: a batch bigger than max_commit_bytes and segment_bytes is committed alone in its own segment.
#[test]
fn oversized_batch_is_committed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = switchyard_journal::WriterConfig {
        segment_bytes: 1024,
        max_commit_bytes: 512,
        ..test_config(dir.path())
    };
    let big = vec![(7u16, 1u64, vec![9u8; 4000])];
    let batches = vec![simple_recs(2, 1), big.clone(), simple_recs(2, 3)];
    write_session(cfg, &batches);
    let all: Vec<Rec> = batches.into_iter().flatten().collect();
    assert_eq!(read_all(dir.path()), numbered(1, &all));
    assert_eq!(segments(dir.path()).len(), 3);
}

// Goal: BatchBuf handed back to the listener carries the stamped sequence numbers.
#[test]
fn listener_gets_stamped_records() {
    struct Check(crossbeam_channel::Sender<Vec<u64>>);
    impl DurableListener<()> for Check {
        fn on_durable(&mut self, batch: Batch<()>, _first_seq: u64) {
            let _ = self.0.send(batch.records.iter().map(|r| r.seq).collect());
        }
        fn on_failed(&mut self, _batch: Batch<()>, _error: &std::io::Error) {}
    }
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let (h, join, _) = start(test_config(dir.path()), Check(tx)).unwrap();
    let mut b = BatchBuf::with_capacity(64);
    b.push(1, 1, b"x").unwrap();
    b.push(1, 2, b"y").unwrap();
    h.submit(Batch::new(b, ())).unwrap();
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(10)).unwrap(),
        vec![1, 2]
    );
    drop(h);
    join.join().unwrap();
}

// Goal: the group-commit window gathers batches that arrive within it into one commit, and the
// record target ends the wait early.
#[test]
fn commit_window_gathers_later_batches() {
    struct Commits(crossbeam_channel::Sender<u64>);
    impl DurableListener<()> for Commits {
        fn on_durable(&mut self, _batch: Batch<()>, _first_seq: u64) {}
        fn on_failed(&mut self, _batch: Batch<()>, _error: &std::io::Error) {}
        fn on_commit(&mut self, stats: &switchyard_journal::CommitStats) {
            let _ = self.0.send(stats.records);
        }
    }
    let one = |h: &switchyard_journal::JournalHandle<()>| {
        let mut b = BatchBuf::with_capacity(64);
        b.push(1, 1, b"x").unwrap();
        h.submit(Batch::new(b, ())).unwrap();
    };
    let dir = tempfile::tempdir().unwrap();
    let (tx, rx) = crossbeam_channel::unbounded();
    let mut cfg = test_config(dir.path());
    cfg.max_wait = std::time::Duration::from_secs(2);
    cfg.commit_records_target = 3;
    let (h, join, _) = start(cfg, Commits(tx)).unwrap();
    for _ in 0..3 {
        one(&h);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Three batches 20 ms apart inside a 2 s window: one commit, ended by the target of 3.
    assert_eq!(
        rx.recv_timeout(std::time::Duration::from_secs(1)).unwrap(),
        3
    );
    drop(h);
    join.join().unwrap();
    assert!(rx.try_recv().is_err(), "no further commit");
}

// Goal: with segments laid down as zeros in advance, records still round-trip across rolls and
// restarts, the active segment is really preallocated (its file longer than its records), a
// finished one ends at its last record, and a restart cuts the zeros and carries on.
#[test]
fn preallocated_segments_roundtrip_across_rolls_and_restarts() {
    let dir = tempfile::tempdir().unwrap();
    let segment_bytes = 4096;
    let cfg = switchyard_journal::WriterConfig {
        fsync: true,
        preallocate: true,
        segment_bytes,
        ..test_config(dir.path())
    };
    let recs: Vec<Vec<Rec>> = (1..=120u8).map(|i| simple_recs(4, i)).collect();
    let mut all = Vec::new();
    for session in 0..2 {
        let (l, rx) = listener();
        let (h, join, report) = start(cfg.clone(), l).unwrap();
        assert_eq!(
            (report.last_seq, report.truncated_bytes),
            (all.len() as u64, 0)
        );
        for (i, r) in recs.iter().enumerate() {
            assert!(matches!(
                commit_one(&h, &rx, i as u64, r),
                Event::Durable { .. }
            ));
            all.extend(r.iter().cloned());
        }
        // The spare asked for is ready well within this; the next commit moves onto it.
        thread::sleep(Duration::from_millis(300));
        let last = simple_recs(1, 200 + session);
        assert!(matches!(
            commit_one(&h, &rx, 999, &last),
            Event::Durable { .. }
        ));
        all.extend(last);
        let active = segments(dir.path()).pop().unwrap();
        assert_eq!(fs::metadata(&active).unwrap().len(), segment_bytes);
        let (preallocated, _plain) = h.rolls();
        assert!(preallocated >= 2, "{:?}", h.rolls());
        drop(h);
        join.join().unwrap();
        // A clean stop gives the active segment's unused zeros back too.
        assert!(fs::metadata(&active).unwrap().len() < segment_bytes);
        assert_eq!(read_all(dir.path()), numbered(1, &all));
        assert!(verify(dir.path()).unwrap().is_clean());
    }
    let segs = segments(dir.path());
    assert!(segs.len() > 4, "{} segments", segs.len());
    for seg in &segs {
        let bytes = fs::read(seg).unwrap();
        assert!(bytes.len() as u64 <= segment_bytes);
        assert_ne!(bytes.last(), Some(&0), "{} ends in zeros", seg.display());
    }
}

// Goal: when no segment can be laid down in advance (here: the spare's name is taken by a
// directory), the writer keeps rolling onto plain segments and nothing is lost.
#[test]
fn plain_segments_when_spares_cannot_be_prepared() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = switchyard_journal::WriterConfig {
        fsync: true,
        preallocate: true,
        segment_bytes: 4096,
        ..test_config(dir.path())
    };
    let (l, rx) = listener();
    let (h, join, _) = start(cfg, l).unwrap();
    for n in 1..=4 {
        fs::create_dir(dir.path().join(format!("spare-{n}.seg.tmp"))).unwrap();
    }
    let mut all = Vec::new();
    for i in 1..=120u8 {
        let r = simple_recs(4, i);
        assert!(matches!(commit_one(&h, &rx, 0, &r), Event::Durable { .. }));
        all.extend(r);
    }
    let (preallocated, plain) = h.rolls();
    assert_eq!(preallocated, 0);
    assert!(plain >= 3, "{:?}", h.rolls());
    drop(h);
    join.join().unwrap();
    assert_eq!(read_all(dir.path()), numbered(1, &all));
    assert!(verify(dir.path()).unwrap().is_clean());
}
