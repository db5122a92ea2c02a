//! Goal: the whole chain keeps exact books — orders through the gateway, fills from the real
//! venue simulator, events through a real broker, two back-office consumers in one group
//! sharing the partitions on a real PostgreSQL — across a broker outage under load
//! (SIGSTOP/SIGCONT) and a back-office SIGKILL and restart:
//! every fill booked once, positions equal to what the gateway says was filled, and
//! `/reconcile` without a single difference.

mod common;

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

/// A database of the test's own on the shared PostgreSQL, dropped at the end.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    fn create(tag: &str) -> Database {
        let admin = env_or_fail("SWITCHYARD_TEST_PG");
        let name = format!("it_{tag}_{}_{}", std::process::id(), free_port());
        psql(&admin, &format!("CREATE DATABASE {name}"));
        Database { admin, name }
    }

    fn url(&self) -> String {
        let base = self.admin.rsplit_once('/').map_or(&*self.admin, |(b, _)| b);
        format!("{base}/{}", self.name)
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                &self.admin,
                "-q",
                "-c",
                &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            ])
            .output();
    }
}

fn psql(url: &str, sql: &str) {
    let out = Command::new("psql")
        .args([url, "-q", "-v", "ON_ERROR_STOP=1", "-c", sql])
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A `switchyard backoffice` process.
struct BackOffice {
    child: Child,
    port: u16,
}

impl BackOffice {
    fn start(db: &str, bootstrap: &str, topic: &str) -> BackOffice {
        let port = free_port();
        let child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .arg("backoffice")
            .env_clear()
            .env("BACKOFFICE_HOST", "127.0.0.1")
            .env("BACKOFFICE_PORT", port.to_string())
            .env("BACKOFFICE_DB_URL", db)
            .env("KAFKA_ENABLE", "1")
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .env("KAFKA_TOPIC", topic)
            .env("KAFKA_GROUP_ID", format!("{topic}-books"))
            .env("BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS", "6000")
            .env("BACKOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS", "500")
            .env("JWT_HS256_SECRET", SECRET)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn backoffice");
        let b = BackOffice { child, port };
        wait_for(30, "back office /health", || {
            http_get(b.port, "/health", None)
                .map_err(|e| e.to_string())
                .and_then(|(c, body)| (c == 200).then_some(()).ok_or(body))
        });
        b
    }

    fn get(&self, path: &str, account: &str) -> Value {
        let (code, body) = http_get(self.port, path, Some(&token(account))).expect("back office");
        assert_eq!(code, 200, "{path}: {body}");
        json(&body)
    }

    fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BackOffice {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// Places `n` marketable orders (they fill at the venue's market makers) for `accounts`,
/// alternating sides; returns (account, order id).
fn trade(port: u16, tag: &str, accounts: &[&str], n: usize) -> Vec<(String, String)> {
    (0..n)
        .map(|i| {
            let a = accounts[i % accounts.len()];
            let side = if (i / accounts.len()) % 3 == 2 {
                "SELL"
            } else {
                "BUY"
            };
            let sym = if i % 2 == 0 { "BTC" } else { "ETH" };
            let id = place(
                port,
                &token(a),
                &format!("{tag}-{i}"),
                &order_json(sym, side, 1 + (i % 4) as u64, None),
            );
            (a.to_string(), id)
        })
        .collect()
}

/// What the gateway says each account holds: (account, symbol) → net filled quantity.
fn gateway_positions(port: u16, orders: &[(String, String)]) -> BTreeMap<(String, String), i64> {
    let mut net = BTreeMap::new();
    for (a, id) in orders {
        let o = wait_for(30, "order final", || {
            let o = order(port, &token(a), id);
            match o["status"].as_str() {
                Some("FILLED" | "CANCELED" | "REJECTED") => Ok(o),
                _ => Err(o.to_string()),
            }
        });
        let q = o["filledQty"].as_i64().unwrap();
        let signed = if o["side"] == "BUY" { q } else { -q };
        *net.entry((a.clone(), o["symbol"].as_str().unwrap().to_string()))
            .or_insert(0) += signed;
    }
    net.retain(|_, q| *q != 0);
    net
}

fn books_positions(bo: &BackOffice, accounts: &[&str]) -> BTreeMap<(String, String), i64> {
    let mut net = BTreeMap::new();
    for a in accounts {
        for p in bo.get("/positions", a)["positions"].as_array().unwrap() {
            let q = p["netQty"].as_i64().unwrap();
            if q != 0 {
                net.insert(
                    (a.to_string(), p["symbol"].as_str().unwrap().to_string()),
                    q,
                );
            }
        }
    }
    net
}

// Goal: see the module header; the end-to-end run.
#[test]
fn books_stay_exact_through_outages() {
    let broker = Broker::start();
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = format!("books-{}", std::process::id());
    // Three partitions, so that two back-office consumers in one group share them.
    create_topic(&bootstrap, &topic, 3);
    let db = Database::create("books");
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start("simA", vport, &dir.path().join("venue"), &[]);
    let g = Gateway::start(
        &dir.path().join("gw"),
        &[
            ("KAFKA_ENABLE", "1"),
            ("KAFKA_BOOTSTRAP_SERVERS", &bootstrap),
            ("KAFKA_TOPIC", &topic),
            ("OUTBOX_BACKOFF_BASE_MS", "50"),
            ("OUTBOX_BACKOFF_MAX_MS", "400"),
            ("EXCHANGE_TRANSPORT", "tcp"),
            ("SOR_VENUES", "simA"),
            ("EXCHANGE_TCP_PORT", &vport.to_string()),
        ],
    );
    let accounts = ["alice", "bob", "carol"];
    let mut orders = trade(g.http, "a", &accounts, 30);
    let mut bo = BackOffice::start(&db.url(), &bootstrap, &topic);
    // A second consumer in the same group, on the same database: the partitions are shared.
    let bo2 = BackOffice::start(&db.url(), &bootstrap, &topic);

    // The broker stops answering under load; the gateway keeps accepting and filling.
    broker.signal("-STOP");
    orders.extend(trade(g.http, "b", &accounts, 30));
    std::thread::sleep(Duration::from_secs(2));
    broker.signal("-CONT");
    orders.extend(trade(g.http, "c", &accounts, 30));
    // The back office dies mid-stream and comes back from its database position.
    bo.kill9();
    orders.extend(trade(g.http, "d", &accounts, 30));
    let bo = BackOffice::start(&db.url(), &bootstrap, &topic);

    let expected = gateway_positions(g.http, &orders);
    assert!(!expected.is_empty());
    wait_for(60, "books equal to the gateway's fills", || {
        let got = books_positions(&bo, &accounts);
        if got == expected {
            Ok(())
        } else {
            Err(format!("books {got:?} vs gateway {expected:?}"))
        }
    });
    // One set of books, whichever consumer booked what.
    assert_eq!(books_positions(&bo2, &accounts), expected);
    for a in accounts {
        let r = bo.get("/reconcile", a);
        assert_eq!(r["differences"], serde_json::json!([]), "{a}: {r}");
        // Every fill once: per order, the booked deltas add up to the order's filled quantity.
        let fills = bo.get("/fills", a)["fills"].as_array().unwrap().clone();
        let mut booked: BTreeMap<String, i64> = BTreeMap::new();
        for f in &fills {
            *booked
                .entry(f["orderId"].as_str().unwrap().to_string())
                .or_insert(0) += f["filledQtyDelta"].as_i64().unwrap();
        }
        for (acct, id) in orders.iter().filter(|(acct, _)| acct == a) {
            let filled = order(g.http, &token(acct), id)["filledQty"]
                .as_i64()
                .unwrap();
            assert_eq!(booked.get(id).copied().unwrap_or(0), filled, "order {id}");
        }
    }
}
