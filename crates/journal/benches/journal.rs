//! Journal benchmarks.
//!
//! * `encode/push_100B` — framing cost on the producer side: `BatchBuf::push`
//!   of a 100-byte payload (per record; the batch is recycled with `clear`).
//! * `replay/1M_records_100B` — `replay` of a 1,000,000-record journal
//!   (100-byte payloads, 128 bytes framed, ~122 MiB in 2 segments). The files
//!   are in the page cache after the first pass, so this measures parsing and
//!   CRC checking, not the disk. Target: >= 1,000,000 records/s.
//! * `writer/commit_nofsync` — end-to-end writer throughput with `fsync` off
//!   (stamping, CRC, copy, write, callbacks), batches of 100 records.
//! * `audit/chain_step_128B` — one audit chain step: HMAC-SHA256 over the
//!   previous hash and a 128-byte framed record (clone of the pre-keyed state,
//!   3 compressions with SHA-NI when the CPU has it) plus the entry encoding.
//! * `audit/catch_up_100k` — the auditor chaining a 100,000-record journal
//!   from scratch (reading segments, hashing, appending entries, one final
//!   sync and anchor); per record.
//!
//! Run: `cargo bench -p switchyard-journal -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::io;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard_journal::audit::{chain_dir, AuditKey, Auditor, AuditorConfig, KeyRing};
use switchyard_journal::{
    replay, start, Batch, BatchBuf, DurableListener, DurableWatch, WriterConfig,
};

const PAYLOAD: [u8; 100] = [0x5A; 100];
const REPLAY_RECORDS: u64 = 1_000_000;
const RECORDS_PER_BATCH: usize = 100;

/// Counts durable batches so the bench can wait for the writer.
struct Counter(crossbeam_channel::Sender<()>);

impl DurableListener<()> for Counter {
    fn on_durable(&mut self, _batch: Batch<()>, _first_seq: u64) {
        let _ = self.0.send(());
    }
    fn on_failed(&mut self, _batch: Batch<()>, error: &io::Error) {
        panic!("bench commit failed: {error}");
    }
}

fn full_batch() -> BatchBuf {
    let mut b = BatchBuf::with_capacity(RECORDS_PER_BATCH * 128);
    for i in 0..RECORDS_PER_BATCH {
        b.push(1, i as u64, &PAYLOAD).unwrap();
    }
    b
}

fn bench_config(dir: &Path) -> WriterConfig {
    WriterConfig {
        fsync: false,
        ..WriterConfig::new(dir)
    }
}

/// Writes `batches` full batches through the writer and waits until durable.
fn write_batches(dir: &Path, batches: u64) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let (h, join, _) = start(bench_config(dir), Counter(tx)).unwrap();
    for _ in 0..batches {
        h.submit(Batch::new(full_batch(), ())).unwrap();
    }
    drop(h);
    join.join().unwrap();
    assert_eq!(rx.try_iter().count() as u64, batches);
}

fn encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");
    g.throughput(Throughput::Elements(1));
    let mut batch = BatchBuf::with_capacity(1 << 20);
    g.bench_function("push_100B", |b| {
        b.iter(|| {
            if batch.bytes() > (1 << 20) - 256 {
                batch.clear();
            }
            batch
                .push(black_box(7), black_box(42), black_box(&PAYLOAD))
                .unwrap();
        })
    });
    g.finish();
}

fn replay_1m(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), REPLAY_RECORDS / RECORDS_PER_BATCH as u64);
    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(REPLAY_RECORDS));
    g.bench_function("1M_records_100B", |b| {
        b.iter(|| {
            let mut bytes = 0usize;
            let report = replay(dir.path(), |r| bytes += r.payload.len()).unwrap();
            assert_eq!(report.records, REPLAY_RECORDS);
            black_box(bytes)
        })
    });
    g.finish();
}

fn writer(c: &mut Criterion) {
    let mut g = c.benchmark_group("writer");
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS_PER_BATCH as u64));
    g.bench_function("commit_nofsync", |b| {
        // A fresh journal per sample keeps disk use bounded; the batches are
        // prebuilt so only the writer's work is timed.
        b.iter_custom(|iters| {
            let dir = tempfile::tempdir().unwrap();
            let batches: Vec<BatchBuf> = (0..iters).map(|_| full_batch()).collect();
            let (tx, rx) = crossbeam_channel::unbounded();
            let (h, join, _) = start(bench_config(dir.path()), Counter(tx)).unwrap();
            let t0 = Instant::now();
            for b in batches {
                h.submit(Batch::new(b, ())).unwrap();
            }
            for _ in 0..iters {
                rx.recv_timeout(Duration::from_secs(60)).unwrap();
            }
            let elapsed = t0.elapsed();
            drop(h);
            join.join().unwrap();
            elapsed
        })
    });
    g.finish();
}

fn audit(c: &mut Criterion) {
    let mut g = c.benchmark_group("audit");
    g.throughput(Throughput::Elements(1));
    let key = AuditKey::new("key-1", b"a bench key of thirty-two bytes!").unwrap();
    let record = [0x5Au8; 128];
    let mut prev = key.chain(None, &record);
    g.bench_function("chain_step_128B", |b| {
        b.iter(|| {
            prev = key.chain(Some(black_box(&prev)), black_box(&record));
            black_box(prev)
        })
    });

    const RECORDS: u64 = 100_000;
    let dir = tempfile::tempdir().unwrap();
    write_batches(dir.path(), RECORDS / RECORDS_PER_BATCH as u64);
    let keys = std::sync::Arc::new(
        KeyRing::from_settings(None, Some("a bench key"), None)
            .unwrap()
            .unwrap(),
    );
    g.sample_size(10);
    g.throughput(Throughput::Elements(RECORDS));
    g.bench_function("catch_up_100k", |b| {
        b.iter(|| {
            let _ = std::fs::remove_dir_all(chain_dir(dir.path()));
            let cfg = AuditorConfig::new(dir.path(), keys.clone());
            let a = Auditor::start(cfg, DurableWatch::fixed(RECORDS)).unwrap();
            let st = a.stop();
            assert_eq!(st.chained_seq, RECORDS);
        })
    });
    g.finish();
}

criterion_group!(benches, encode, replay_1m, writer, audit);
criterion_main!(benches);
