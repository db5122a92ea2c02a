//! Goal: measure how fast the back office books bus events into the real PostgreSQL
//! (`SWITCHYARD_TEST_PG`; target ≥ 20 000 events/s), and into the embedded SQLite for
//! comparison. A realistic stream — orders accepted, sent and filled in 1–3 parts, across
//! 1 000 accounts and 8 symbols, ~100 000 events — is applied in batches of `BENCH_BATCH`
//! (1 000) events, each batch one transaction with its stream position, exactly as the
//! consumer does. The books are reconciled afterwards (not timed) to prove they are exact.
//!
//! Run: `source var/services/env && cargo bench -p switchyard-backoffice --bench apply`
//! (env: `BENCH_ORDERS` (25 000), `BENCH_BATCH` (1 000), `BENCH_SQLITE=0` to skip SQLite).

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use switchyard_backoffice::{BackOffice, ConsumerPosition, Rules};

fn env_usize(k: &str, default: usize) -> usize {
    std::env::var(k)
        .ok()
        .map(|v| {
            v.parse()
                .unwrap_or_else(|_| panic!("{k}={v:?} is not a number"))
        })
        .unwrap_or(default)
}

async fn run(label: &str, url: &str, events: &[switchyard_protocol::bus::BusEvent], batch: usize) {
    let bo = BackOffice::open(url, Rules::default()).await.expect("open");
    let mut latencies: Vec<Duration> = Vec::new();
    let (mut booked, mut next) = (0u64, 0i64);
    let start = Instant::now();
    for chunk in events.chunks(batch) {
        next += chunk.len() as i64;
        let t = Instant::now();
        let s = bo
            .apply(
                chunk,
                ConsumerPosition {
                    stream: "bench".into(),
                    partition: 0,
                    next_offset: next,
                },
            )
            .await
            .expect("apply");
        latencies.push(t.elapsed());
        booked += s.orders + s.fills;
    }
    let took = start.elapsed();
    latencies.sort();
    let t = Instant::now();
    let r = bo.reconcile().await.expect("reconcile");
    let reconcile_took = t.elapsed();
    assert!(
        r.ok(),
        "{label}: books do not reconcile: {:?}",
        &r.differences[..r.differences.len().min(5)]
    );
    assert_eq!(r.ledger_entries, booked);
    let rate = events.len() as f64 / took.as_secs_f64();
    println!(
        "{label}: {} events ({} booked) in {} batches of {batch}: {:.2} s = {:.0} events/s; \
         batch p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; reconcile of {} ledger entries {:.2} s: ok",
        events.len(),
        booked,
        latencies.len(),
        took.as_secs_f64(),
        rate,
        latencies[latencies.len() / 2].as_secs_f64() * 1e3,
        latencies[latencies.len() * 99 / 100].as_secs_f64() * 1e3,
        latencies.last().unwrap().as_secs_f64() * 1e3,
        r.ledger_entries,
        reconcile_took.as_secs_f64(),
    );
    bo.close().await;
}

fn main() {
    let orders = env_usize("BENCH_ORDERS", 25_000);
    let batch = env_usize("BENCH_BATCH", 1_000);
    let events = common::workload(orders, 1_000, 1, 42);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let pg = common::TestDb::postgres().await;
        run("postgres", &pg.url, &events, batch).await;
        if std::env::var("BENCH_SQLITE").as_deref() != Ok("0") {
            let lite = common::TestDb::sqlite();
            run("sqlite", &lite.url, &events, batch).await;
        }
    });
}
