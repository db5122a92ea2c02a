//! Outbox throughput to a real broker: journal records → bus events v1 → Kafka (idempotent,
//! acks=all) → position stored. Target: at least 100 000 events/s to the local broker.
//!
//! Writes a journal of `OUTBOX_BENCH_EVENTS` (default 400 000) durable-path records — per order
//! an `OrderAccepted`, an `OrderSent`, an `ExecutionReport` and an `OrderUpdated`, over 1 000
//! accounts — then times the outbox from its first record to the broker's acknowledgement of
//! the last, three rounds, each on a fresh 3-partition topic. Prints each round and the median.
//!
//! Needs the broker: `scripts/services.sh start && source var/services/env`, then
//! `cargo bench -p switchyard-gateway --bench outbox`.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use switchyard_core::{NewOrder, OrderId, OrderType, Side, Symbol, TimeInForce};
use switchyard_gateway::config::BusSection;
use switchyard_gateway::outbox::{KafkaSink, Outbox, OutboxConfig, OutboxStats, Waiters};
use switchyard_gateway::records::{
    ExecutionRecord, OrderAccepted, OrderChange, VenueSent, KIND_EXECUTION_REPORT,
    KIND_ORDER_ACCEPTED, KIND_ORDER_SENT, KIND_ORDER_UPDATED,
};
use switchyard_journal::{Batch, BatchBuf, DurableListener, DurableWatch, WriterConfig};

struct Nop;
impl DurableListener<()> for Nop {
    fn on_durable(&mut self, _: Batch<()>, _: u64) {}
    fn on_failed(&mut self, _: Batch<()>, _: &std::io::Error) {}
}

/// Writes `orders` orders' worth of records (4 per order); returns the last sequence number.
fn write_journal(dir: &std::path::Path, orders: u64) -> u64 {
    let cfg = WriterConfig {
        fsync: false,
        ..WriterConfig::new(dir)
    };
    let (journal, writer, _) = switchyard_journal::start(cfg, Nop).expect("journal");
    let mut buf = BatchBuf::with_capacity(1 << 20);
    let mut p = Vec::with_capacity(256);
    let symbol = Symbol::parse(b"BTC").unwrap();
    for i in 0..orders {
        let account = format!("acct-{}", i % 1_000);
        let id = OrderId::new(0, i + 1);
        let side = if i % 2 == 0 { Side::Buy } else { Side::Sell };
        let key = format!("key-{i}");
        p.clear();
        OrderAccepted {
            order_id: id,
            accept_seq: i + 1,
            received_at_ns: 1,
            order: NewOrder {
                symbol,
                side,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtc,
                qty: 10,
                price: 6_000_000,
                expire_at_ms: None,
            },
            account_id: &account,
            idempotency_key: &key,
            client_order_id: None,
            venue: "simA",
        }
        .encode(&mut p);
        buf.push(KIND_ORDER_ACCEPTED, 1, &p).unwrap();
        p.clear();
        VenueSent {
            order_id: id,
            account_id: &account,
            venue: "simA",
        }
        .encode(&mut p);
        buf.push(KIND_ORDER_SENT, 1, &p).unwrap();
        p.clear();
        ExecutionRecord {
            order_id: id,
            venue_seq: i + 1,
            filled_delta: 10,
            filled_total: 10,
            price: 6_000_100,
            qty: 0,
            limit_price: 0,
            status: switchyard_protocol::venue::ExecStatus::Filled,
            status_report: false,
            account_id: &account,
            venue: "simA",
            reason: "",
        }
        .encode(&mut p);
        buf.push(KIND_EXECUTION_REPORT, 1, &p).unwrap();
        p.clear();
        OrderChange {
            order_id: id,
            status: switchyard_core::OrderStatus::Filled,
            filled: 10,
            account_id: &account,
        }
        .encode(&mut p);
        buf.push(KIND_ORDER_UPDATED, 1, &p).unwrap();
        if buf.len() >= 4_000 {
            let full = std::mem::replace(&mut buf, BatchBuf::with_capacity(1 << 20));
            journal.submit(Batch::new(full, ())).unwrap();
        }
    }
    if !buf.is_empty() {
        journal.submit(Batch::new(buf, ())).unwrap();
    }
    while journal.durable_seq() < orders * 4 {
        std::thread::sleep(Duration::from_millis(5));
    }
    let last = journal.durable_seq();
    drop(journal);
    let _ = writer.join();
    last
}

fn create_topic(bootstrap: &str, topic: &str) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let new = NewTopic::new(topic, 3, TopicReplication::Fixed(1));
    for r in rt
        .block_on(admin.create_topics([&new], &AdminOptions::new()))
        .unwrap()
    {
        r.unwrap();
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` would too: nothing else to parse.
    let Ok(bootstrap) = std::env::var("SWITCHYARD_TEST_KAFKA") else {
        eprintln!("SWITCHYARD_TEST_KAFKA is not set: scripts/services.sh start && source var/services/env");
        std::process::exit(2);
    };
    let events: u64 = std::env::var("OUTBOX_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400_000);
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    let last = write_journal(&journal_dir, events / 4);
    let mut rates = Vec::new();
    for round in 0..3 {
        let topic = format!("bench-outbox-{}-{round}", std::process::id());
        create_topic(&bootstrap, &topic);
        let bus = BusSection {
            enable: true,
            bootstrap_servers: bootstrap.clone(),
            topic,
            ..BusSection::default()
        };
        let sink = KafkaSink::new(&bus, dir.path().join(format!("pos-{round}"))).unwrap();
        let stats = Arc::new(OutboxStats::default());
        let start = Instant::now();
        let outbox = Outbox::start(
            OutboxConfig {
                journal_dir: journal_dir.clone(),
                source: "bench".into(),
                batch_max: bus.batch_max,
                backoff_base: Duration::from_millis(200),
                backoff_max: Duration::from_secs(5),
            },
            DurableWatch::fixed(last),
            Box::new(sink),
            stats.clone(),
            Arc::new(Waiters::default()),
        )
        .unwrap();
        while stats.next_seq.load(Ordering::Relaxed) <= last {
            std::thread::sleep(Duration::from_millis(2));
        }
        let secs = start.elapsed().as_secs_f64();
        outbox.stop();
        let published = stats.published.load(Ordering::Relaxed);
        let rate = published as f64 / secs;
        println!("round {round}: {published} events in {secs:.3} s = {rate:.0} events/s");
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    println!("outbox median: {:.0} events/s (target ≥ 100000)", rates[1]);
}
