//! Goal: the outbox publishes every journaled event to a real Kafka-protocol broker (tansu,
//! started by `scripts/services.sh`), keyed by account, each exactly identified by (source,
//! seq); `Durability: replicated` answers only after the broker has the order; and a broker
//! outage in the middle of the load loses nothing.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use switchyard_protocol::bus::BusEvent;

const PARTITIONS: i32 = 3;

fn unique_topic(tag: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("it-{tag}-{}-{nanos}", std::process::id())
}

/// The events on the topic, read from the start of each partition until every journal
/// sequence number in `want` has arrived.
fn consume(bootstrap: &str, topic: &str, want: &BTreeSet<u64>) -> Vec<(i32, String, BusEvent)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .set("enable.auto.commit", "false")
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !want.is_subset(&seen) {
        assert!(
            Instant::now() < deadline,
            "{} of {} events on {topic}",
            seen.intersection(want).count(),
            want.len()
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("consume");
            let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
            let e = BusEvent::decode(m.payload().unwrap_or_default()).expect("bus event v1");
            seen.insert(e.seq.unwrap_or(0));
            out.push((m.partition(), key, e));
        }
    }
    // Anything published beyond the journal would show up now.
    while let Some(m) = c.poll(Duration::from_millis(300)) {
        let m = m.expect("consume");
        let key = String::from_utf8(m.key().unwrap_or_default().to_vec()).unwrap();
        let e = BusEvent::decode(m.payload().unwrap_or_default()).expect("bus event v1");
        out.push((m.partition(), key, e));
    }
    out
}

/// The sequence numbers of the journal records that are events (what the outbox must deliver).
fn journal_event_seqs(dir: &Path) -> BTreeSet<u64> {
    journal_dump(dir)
        .into_iter()
        .filter(|r| {
            let t = r["type"].as_str().unwrap_or("");
            let no_account = t == "ExecutionReport" && r["data"]["accountId"] == "";
            t != "CleanShutdown" && !no_account
        })
        .map(|r| r["seq"].as_u64().unwrap())
        .collect()
}

fn bus_gateway(dir: &Path, bootstrap: &str, topic: &str, venue_port: u16) -> Gateway {
    let port = venue_port.to_string();
    Gateway::start(
        dir,
        &[
            ("KAFKA_ENABLE", "1"),
            ("KAFKA_BOOTSTRAP_SERVERS", bootstrap),
            ("KAFKA_TOPIC", topic),
            ("GATEWAY_ID", "gw-bus"),
            ("OUTBOX_BACKOFF_BASE_MS", "50"),
            ("OUTBOX_BACKOFF_MAX_MS", "400"),
            ("EXCHANGE_TRANSPORT", "tcp"),
            ("SOR_VENUES", "simA"),
            ("EXCHANGE_TCP_PORT", &port),
        ],
    )
}

fn place_mix(port: u16, tag: &str, accounts: &[&str], n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let account = accounts[i % accounts.len()];
            let body = if i % 2 == 0 {
                order_json("BTC", "BUY", 2, None)
            } else {
                order_json("ETH", "SELL", 1, Some(90_000_000))
            };
            let id = place(port, &token(account), &format!("{tag}-{i}"), &body);
            (account.to_string(), id)
        })
        .collect()
}

fn wait_delivered(port: u16) {
    wait_for(60, "outbox caught up", || {
        let lag = metric(port, "gateway_outbox_lag_records");
        let published = metric(port, "gateway_outbox_published_total");
        if lag == 0.0 && published > 0.0 {
            Ok(())
        } else {
            Err(format!("lag {lag}, published {published}"))
        }
    });
}

/// Checks the bus against the journal: every event exactly once by seq (duplicates allowed
/// only as exact copies), keyed by account, on one partition per account, in journal order.
fn check_bus(events: &[(i32, String, BusEvent)], journal: &BTreeSet<u64>) {
    let mut by_seq: BTreeMap<u64, &BusEvent> = BTreeMap::new();
    let mut partition_of: BTreeMap<&str, i32> = BTreeMap::new();
    let mut last_seq: BTreeMap<&str, u64> = BTreeMap::new();
    for (p, key, e) in events {
        assert_eq!(key, &e.account_id, "key is the account");
        assert_eq!(e.source.as_deref(), Some("gw-bus"));
        let seq = e.seq.expect("seq");
        if let Some(prev) = by_seq.insert(seq, e) {
            assert_eq!(prev, e, "a duplicate must be an exact copy");
            continue;
        }
        let part = *partition_of.entry(&e.account_id).or_insert(*p);
        assert_eq!(part, *p, "one account, one partition");
        let last = last_seq.entry(&e.account_id).or_insert(0);
        assert!(seq > *last, "account {} out of journal order", e.account_id);
        *last = seq;
    }
    let on_bus: BTreeSet<u64> = by_seq.keys().copied().collect();
    assert_eq!(&on_bus, journal, "the bus has exactly the journal's events");
}

// Goal: every journaled event reaches the broker — orders, venue messages, reports, updates,
// cancels — keyed by account and in journal order per account; `replicated` is answered with
// the level reached once the broker acknowledged the order.
#[test]
fn outbox_publishes_every_event() {
    let bootstrap = env_or_fail("SWITCHYARD_TEST_KAFKA");
    let topic = unique_topic("outbox");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start("simA", vport, &dir.path().join("venue"), &[]);
    let gw_dir = dir.path().join("gw");
    let mut g = bus_gateway(&gw_dir, &bootstrap, &topic, vport);
    let orders = place_mix(g.http, "o", &["alice", "bob", "carol"], 30);
    for (account, id) in orders.iter().skip(1).step_by(2) {
        let r = http_full(
            g.http,
            &request(
                "POST",
                &format!("/orders/{id}/cancel"),
                Some(&token(account)),
                "",
                "",
            ),
        );
        assert!(matches!(r.status, 202 | 409), "{}", r.body);
    }
    let headers =
        "Content-Type: application/json\r\nIdempotency-Key: rep-1\r\nDurability: replicated\r\n";
    let body = order_json("BTC", "SELL", 1, None);
    let r = http_full(
        g.http,
        &request("POST", "/orders", Some(&token("alice")), headers, &body),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["durability"], "replicated", "{}", r.body);
    assert_eq!(r.header("durability"), Some("replicated"));
    assert!(metric(g.http, "gateway_orders_replicated_total") >= 1.0);

    // Let the venue finish, then stop cleanly: the outbox delivers everything durable.
    std::thread::sleep(Duration::from_millis(500));
    wait_delivered(g.http);
    g.terminate();
    let journal = journal_event_seqs(&gw_dir);
    let events = consume(&bootstrap, &topic, &journal);
    check_bus(&events, &journal);
    let types: BTreeSet<&str> = events
        .iter()
        .map(|(_, _, e)| e.event_type.as_str())
        .collect();
    for t in [
        "OrderAccepted",
        "OrderSent",
        "ExecutionReport",
        "OrderUpdated",
        "CancelRequested",
    ] {
        assert!(types.contains(t), "{t} missing: {types:?}");
    }
}

// Goal: the broker stops answering (SIGSTOP) in the middle of the load; orders are still
// accepted and made durable, `replicated` answers wait (and time out rather than lie), the
// outbox backs off; after SIGCONT it catches up and the bus has every event, none lost.
#[test]
fn broker_outage_loses_nothing() {
    let broker = Broker::start();
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = unique_topic("outage");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start("simA", vport, &dir.path().join("venue"), &[]);
    let gw_dir = dir.path().join("gw");
    let mut g = Gateway::start(
        &gw_dir,
        &[
            ("KAFKA_ENABLE", "1"),
            ("KAFKA_BOOTSTRAP_SERVERS", &bootstrap),
            ("KAFKA_TOPIC", &topic),
            ("GATEWAY_ID", "gw-bus"),
            ("OUTBOX_BACKOFF_BASE_MS", "50"),
            ("OUTBOX_BACKOFF_MAX_MS", "400"),
            ("BUS_REPLICATED_WAIT_TIMEOUT_MS", "300"),
            ("EXCHANGE_TRANSPORT", "tcp"),
            ("SOR_VENUES", "simA"),
            ("EXCHANGE_TCP_PORT", &vport.to_string()),
        ],
    );
    place_mix(g.http, "before", &["alice", "bob"], 20);
    wait_delivered(g.http);

    broker.signal("-STOP");
    place_mix(g.http, "during", &["alice", "bob", "carol"], 30);
    let headers =
        "Content-Type: application/json\r\nIdempotency-Key: rep-out\r\nDurability: replicated\r\n";
    let body = order_json("BTC", "BUY", 1, None);
    let r = http_full(
        g.http,
        &request("POST", "/orders", Some(&token("alice")), headers, &body),
    );
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.json()["reason"], "DURABILITY_WAIT_TIMEOUT", "{}", r.body);
    assert!(metric(g.http, "gateway_outbox_lag_records") > 0.0);
    std::thread::sleep(Duration::from_secs(2));
    broker.signal("-CONT");

    place_mix(g.http, "after", &["bob"], 10);
    std::thread::sleep(Duration::from_millis(500));
    wait_delivered(g.http);
    g.terminate();
    let journal = journal_event_seqs(&gw_dir);
    let events = consume(&bootstrap, &topic, &journal);
    check_bus(&events, &journal);
}

/// The account shard of an account id, as the gateway computes it (FNV-1a mod total).
fn account_shard(account: &str, total: u64) -> u64 {
    let h = account.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    });
    h % total
}

// Goal: scale-out — two gateway instances, each owning half of the account shards with its
// own journal, publish to one topic; each refuses the other's accounts (421
// ACCOUNT_NOT_OWNED); the bus carries both journals' events, each identified by its source.
#[test]
fn two_instances_share_the_topic() {
    let bootstrap = env_or_fail("SWITCHYARD_TEST_KAFKA");
    let topic = unique_topic("scale");
    create_topic(&bootstrap, &topic, PARTITIONS);
    let dir = tempfile::tempdir().unwrap();
    let accounts: Vec<String> = (0..40).map(|i| format!("acct-{i}")).collect();
    let mut gws = Vec::new();
    for (i, id) in ["gw-a", "gw-b"].into_iter().enumerate() {
        let g = Gateway::start(
            &dir.path().join(id),
            &[
                ("KAFKA_ENABLE", "1"),
                ("KAFKA_BOOTSTRAP_SERVERS", &bootstrap),
                ("KAFKA_TOPIC", &topic),
                ("GATEWAY_ID", id),
                ("ACCOUNT_SHARDS_TOTAL", "2"),
                ("ACCOUNT_SHARDS_OWNED", if i == 0 { "0" } else { "1" }),
            ],
        );
        gws.push((id, g));
    }
    for (n, a) in accounts.iter().enumerate() {
        let owner = account_shard(a, 2) as usize;
        for (i, (_, g)) in gws.iter().enumerate() {
            let headers = format!("Content-Type: application/json\r\nIdempotency-Key: k-{n}\r\n");
            let body = order_json("BTC", "BUY", 1, Some(100));
            let r = http_full(
                g.http,
                &request("POST", "/orders", Some(&token(a)), &headers, &body),
            );
            if i == owner {
                assert_eq!(r.status, 202, "{a} at its owner: {}", r.body);
            } else {
                assert_eq!(r.status, 421, "{a} elsewhere: {}", r.body);
                assert_eq!(r.json()["reason"], "ACCOUNT_NOT_OWNED", "{}", r.body);
            }
        }
    }
    let mut want: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    for (id, mut g) in gws {
        wait_delivered(g.http);
        g.terminate();
        want.insert(id.to_string(), journal_event_seqs(&dir.path().join(id)));
    }
    // Read until both sources are complete.
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", format!("{topic}-reader"))
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(&topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let mut seen: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while seen != want {
        assert!(
            Instant::now() < deadline,
            "bus {seen:?} vs journals {want:?}"
        );
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let e = BusEvent::decode(m.unwrap().payload().unwrap()).unwrap();
            let owner = account_shard(&e.account_id, 2);
            let source = e.source.clone().unwrap();
            assert_eq!(source, if owner == 0 { "gw-a" } else { "gw-b" }, "{e:?}");
            seen.entry(source).or_default().insert(e.seq.unwrap());
        }
    }
}
