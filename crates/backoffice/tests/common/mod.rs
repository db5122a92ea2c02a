//! Shared by the integration tests: throwaway databases on the real services, and event
//! builders.
#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;
use sqlx::{Connection, Executor};
use switchyard_protocol::bus::BusEvent;

/// The PostgreSQL server the tests use; a missing variable fails the test, never skips it.
pub fn pg_admin_url() -> String {
    std::env::var("SWITCHYARD_TEST_PG").unwrap_or_else(|_| {
        panic!(
            "SWITCHYARD_TEST_PG is not set: run scripts/services.sh start, then \
             `source var/services/env` (this test needs the real PostgreSQL)"
        )
    })
}

/// The Kafka-protocol broker (tansu) the tests use.
pub fn kafka_bootstrap() -> String {
    std::env::var("SWITCHYARD_TEST_KAFKA").unwrap_or_else(|_| {
        panic!(
            "SWITCHYARD_TEST_KAFKA is not set: run scripts/services.sh start, then \
             `source var/services/env` (this test needs the real broker)"
        )
    })
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A name no other test (or test run) uses.
pub fn unique(prefix: &str) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{}_{nanos}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Which database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Postgres,
    Sqlite,
}

/// A database that exists for one test: a new PostgreSQL database or a temporary SQLite
/// file, dropped (deleted) when this value is.
pub struct TestDb {
    pub url: String,
    pub kind: Kind,
    name: String,
}

impl TestDb {
    pub async fn new(kind: Kind) -> TestDb {
        match kind {
            Kind::Postgres => TestDb::postgres().await,
            Kind::Sqlite => TestDb::sqlite(),
        }
    }

    pub async fn postgres() -> TestDb {
        sqlx::any::install_default_drivers();
        let admin = pg_admin_url();
        let name = unique("bo_test");
        let mut conn = sqlx::AnyConnection::connect(&admin)
            .await
            .expect("connect to SWITCHYARD_TEST_PG (run scripts/services.sh start)");
        conn.execute(format!("CREATE DATABASE {name}").as_str())
            .await
            .expect("create test database");
        conn.close().await.ok();
        let base = admin.rsplit_once('/').expect("URL with a database").0;
        TestDb {
            url: format!("{base}/{name}"),
            kind: Kind::Postgres,
            name,
        }
    }

    pub fn sqlite() -> TestDb {
        let path = std::env::temp_dir().join(format!("{}.db", unique("bo_test")));
        TestDb {
            url: format!("sqlite:{}?mode=rwc", path.display()),
            kind: Kind::Sqlite,
            name: path.display().to_string(),
        }
    }

    /// A plain connection pool on the same database, for poking at it behind the back
    /// office's back.
    pub async fn raw(&self) -> sqlx::AnyPool {
        sqlx::any::install_default_drivers();
        sqlx::any::AnyPoolOptions::new()
            .max_connections(1)
            .connect(&self.url)
            .await
            .expect("raw connection")
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        match self.kind {
            Kind::Sqlite => {
                for suffix in ["", "-wal", "-shm"] {
                    let _ = std::fs::remove_file(format!("{}{suffix}", self.name));
                }
            }
            Kind::Postgres => {
                // Drop runs inside the test's runtime: do the async work on a thread of its
                // own, with a runtime of its own.
                let (admin, name) = (pg_admin_url(), self.name.clone());
                let _ = std::thread::spawn(move || {
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .unwrap();
                    rt.block_on(async {
                        if let Ok(mut c) = sqlx::AnyConnection::connect(&admin).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = c.execute(sql.as_str()).await;
                            let _ = c.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// `OrderAccepted` of `order` with identity `("gw-1", seq)` (or none for `seq` 0).
pub fn accepted(account: &str, order: &str, symbol: &str, side: &str, seq: u64) -> BusEvent {
    BusEvent {
        event_type: "OrderAccepted".into(),
        at: "2025-01-01T00:00:00.000Z".into(),
        account_id: account.into(),
        order_id: Some(order.into()),
        data: json!({"symbol": symbol, "side": side, "type": "LIMIT", "qty": 100, "price": 100}),
        source: (seq > 0).then(|| "gw-1".to_string()),
        seq: (seq > 0).then_some(seq),
    }
}

/// An `ExecutionReport` as the gateway publishes it.
pub fn report(
    account: &str,
    order: &str,
    delta: i64,
    total: i64,
    price: i64,
    seq: u64,
) -> BusEvent {
    BusEvent {
        event_type: "ExecutionReport".into(),
        at: "2025-01-01T00:00:01.000Z".into(),
        account_id: account.into(),
        order_id: Some(order.into()),
        data: json!({
            "status": "PARTIALLY_FILLED", "filledQtyDelta": delta, "filledQtyTotal": total,
            "price": price, "venue": "simA", "venueSeq": seq, "statusReport": false,
        }),
        source: (seq > 0).then(|| "gw-1".to_string()),
        seq: (seq > 0).then_some(seq),
    }
}

/// An event the books ignore.
pub fn sent(account: &str, order: &str, seq: u64) -> BusEvent {
    BusEvent {
        event_type: "OrderSent".into(),
        at: "2025-01-01T00:00:00.500Z".into(),
        account_id: account.into(),
        order_id: Some(order.into()),
        data: json!({"venue": "simA"}),
        source: Some("gw-1".into()),
        seq: Some(seq),
    }
}

/// A realistic stream: `orders` orders over `accounts` accounts and 8 symbols, each
/// accepted, sent, and filled in 1–3 parts at prices around 10 000, with buys and sells
/// mixed so positions open, close and flip. Identities are consecutive from `first_seq`.
pub fn workload(orders: usize, accounts: usize, first_seq: u64, seed: u64) -> Vec<BusEvent> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut seq = first_seq;
    let mut next = || {
        seq += 1;
        seq - 1
    };
    let mut out = Vec::with_capacity(orders * 4);
    for i in 0..orders {
        let account = format!("acct-{}", rng.usize(0..accounts));
        let order = format!("ord-{seed}-{i}");
        let symbol = format!("SYM{}", rng.usize(0..8));
        let side = if rng.bool() { "BUY" } else { "SELL" };
        out.push(accepted(&account, &order, &symbol, side, next()));
        out.push(sent(&account, &order, next()));
        let mut total = 0;
        for _ in 0..rng.usize(1..=3) {
            let delta = rng.i64(1..=50);
            total += delta;
            let price = 10_000 + rng.i64(-200..=200);
            out.push(report(&account, &order, delta, total, price, next()));
        }
    }
    out
}
