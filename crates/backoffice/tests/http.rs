//! The HTTP API over real sockets, bytes in and bytes out: authentication, account scoping,
//! every endpoint's body, every parameter error, and the reconciliation report — on
//! PostgreSQL and SQLite.

mod common;

use std::net::SocketAddr;

use common::{accepted, report, Kind, TestDb};
use serde_json::Value;
use switchyard_backoffice::config::BackOfficeConfig;
use switchyard_backoffice::{service, ConsumerPosition};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SECRET: &str = "backoffice-test-secret";

/// One HTTP/1.1 exchange on a fresh connection; the body must be JSON.
async fn call(addr: SocketAddr, method: &str, path: &str, token: Option<&str>) -> (u16, Value) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    let req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n{auth}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}")),
    )
}

async fn start(db: &TestDb, secret: &str) -> service::Service {
    let mut cfg = BackOfficeConfig {
        host: "127.0.0.1".into(),
        port: 0,
        db_url: db.url.clone(),
        ..BackOfficeConfig::default()
    };
    cfg.kafka.enable = false;
    cfg.auth.secret = secret.into();
    service::start(cfg).await.expect("start the back office")
}

/// Goal: every endpoint answers the reference's body for the token's account, hides other
/// accounts, and refuses bad parameters with a JSON reason.
async fn api(kind: Kind) {
    let db = TestDb::new(kind).await;
    let svc = start(&db, SECRET).await;
    let addr = svc.local_addr;
    let events = vec![
        accepted("alice", "o1", "BTC", "BUY", 1),
        report("alice", "o1", 3, 3, 1_000, 2),
        accepted("alice", "o2", "BTC", "SELL", 3),
        report("alice", "o2", 1, 1, 1_100, 4),
        accepted("bob", "o3", "ETH", "BUY", 5),
        report("bob", "o3", 2, 2, 50, 6),
    ];
    svc.backoffice
        .apply(&events, ConsumerPosition::journal("gw-1", 6))
        .await
        .unwrap();
    let alice = switchyard_auth::mint_dev(SECRET, "alice", 3_600, None);
    let t = Some(alice.as_str());

    assert_eq!(
        call(addr, "GET", "/health", None).await,
        (200, serde_json::json!({"status": "ok"}))
    );
    let (s, b) = call(addr, "GET", "/positions", None).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("MissingBearerToken")));
    let (s, b) = call(addr, "GET", "/positions", Some("not.a.jwt")).await;
    assert_eq!((s, b["error"].as_str()), (401, Some("InvalidJwtHeader")));

    let (s, b) = call(addr, "GET", "/positions", t).await;
    assert_eq!(s, 200);
    assert_eq!(
        b,
        serde_json::json!({"positions": [{"accountId": "alice", "symbol": "BTC", "netQty": 2, "avgPrice": 1000}]})
    );
    let (s, b) = call(addr, "GET", "/positions?accountId=bob", t).await;
    assert_eq!((s, b["error"].as_str()), (404, Some("NOT_FOUND")));
    assert_eq!(
        call(addr, "GET", "/positions?accountId=alice", t).await.0,
        200
    );

    let (_, b) = call(addr, "GET", "/balances", t).await;
    // −3000 −3 (fee) + 1100 −1
    assert_eq!(
        b,
        serde_json::json!({"balances": [{"accountId": "alice", "currency": "JPY", "amount": -1904}]})
    );
    let (_, b) = call(addr, "GET", "/pnl", t).await;
    assert_eq!(
        b,
        serde_json::json!({"pnl": [{"accountId": "alice", "symbol": "BTC", "quoteCcy": "JPY", "realizedPnl": 100}]})
    );
    let (_, b) = call(addr, "GET", "/fills", t).await;
    let fills = b["fills"].as_array().unwrap();
    assert_eq!(fills.len(), 2);
    assert_eq!(fills[0]["orderId"], "o1");
    assert_eq!(fills[0]["quoteCashDelta"], -3003);
    assert_eq!(fills[0]["feeQuote"], 3);
    assert_eq!(fills[1]["side"], "SELL");
    for k in [
        "at",
        "accountId",
        "symbol",
        "filledQtyDelta",
        "filledQtyTotal",
        "price",
        "quoteCcy",
    ] {
        assert!(fills[1].get(k).is_some(), "{k}");
    }

    let (s, b) = call(addr, "GET", "/ledger", t).await;
    assert_eq!((s, b["accountId"].as_str()), (200, Some("alice")));
    assert_eq!(b["entries"].as_array().unwrap().len(), 4);
    let (_, b) = call(addr, "GET", "/ledger?type=fill", t).await;
    assert!(b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["type"] == "Fill"));
    let (_, b) = call(
        addr,
        "GET",
        "/ledger?type=Fill%3BorderAccepted&orderId=o2",
        t,
    )
    .await;
    let types: Vec<&str> = b["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["OrderAccepted", "Fill"]);
    let (_, b) = call(addr, "GET", "/ledger?limit=1", t).await;
    let entries = b["entries"].as_array().unwrap();
    assert_eq!(
        (entries.len(), entries[0]["orderId"].as_str()),
        (1, Some("o2")),
        "the newest"
    );
    let (_, b) = call(addr, "GET", "/ledger?since=2025-01-01T00:00:01Z", t).await;
    assert_eq!(
        b["entries"].as_array().unwrap().len(),
        2,
        "fills are at :01"
    );
    let (_, b) = call(addr, "GET", "/ledger?after=1735689600", t).await;
    assert_eq!(
        b["entries"].as_array().unwrap().len(),
        2,
        "after :00 (epoch s)"
    );
    let (_, b) = call(addr, "GET", "/ledger?since=1735689601001", t).await;
    assert_eq!(b["entries"].as_array().unwrap().len(), 0, "epoch ms");
    for (q, code) in [
        ("limit=0", "INVALID_LIMIT"),
        ("limit=1001", "INVALID_LIMIT"),
        ("limit=ten", "INVALID_LIMIT"),
        ("since=yesterday", "INVALID_SINCE"),
        ("after=2025-13-01", "INVALID_AFTER"),
        ("type=Fill,Cancel", "INVALID_TYPE"),
    ] {
        let (s, b) = call(addr, "GET", &format!("/ledger?{q}"), t).await;
        assert_eq!((s, b["error"].as_str()), (400, Some(code)), "{q}");
        assert!(b["reason"].is_string());
    }

    let (s, b) = call(addr, "GET", "/stats", t).await;
    assert_eq!(s, 200);
    assert_eq!(
        (b["processed"].as_u64(), b["booked"].as_u64()),
        (Some(6), Some(6))
    );
    assert_eq!(b["positions"][0]["stream"], "journal:gw-1");
    assert_eq!(b["positions"][0]["nextOffset"], 7);
    assert!(b["startedAt"].as_str().unwrap().ends_with('Z'));

    let (s, b) = call(addr, "GET", "/reconcile", t).await;
    assert_eq!((s, b["ok"].as_bool()), (200, Some(true)), "{b}");
    assert_eq!(b["balances"]["expected"]["JPY"], -1904);
    assert_eq!(b["balances"]["diffs"]["JPY"], 0);
    assert_eq!(b["positions"]["actual"]["BTC"], 2);
    let raw = db.raw().await;
    sqlx::query("UPDATE balances SET amount = amount + 7 WHERE account_id = 'alice'")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;
    let (_, b) = call(addr, "GET", "/reconcile?limit=5&quoteCcy=JPY", t).await;
    assert_eq!(
        (b["ok"].as_bool(), b["balances"]["ok"].as_bool()),
        (Some(false), Some(false))
    );
    assert_eq!(b["balances"]["diffs"]["JPY"], 7);
    assert_eq!(b["differences"][0]["kind"], "Balance");
    assert_eq!(b["positions"]["ok"], true);
    for q in ["limit=0", "limit=10001", "quoteCcy=%20"] {
        let (s, _) = call(addr, "GET", &format!("/reconcile?{q}"), t).await;
        assert_eq!(s, 400, "{q}");
    }

    let (s, b) = call(addr, "POST", "/positions", t).await;
    assert_eq!((s, b["error"].as_str()), (405, Some("METHOD_NOT_ALLOWED")));
    let (s, b) = call(addr, "GET", "/nowhere", t).await;
    assert_eq!((s, b["error"].as_str()), (404, Some("NOT_FOUND")));
    svc.stop().await.unwrap();
}

/// Goal: without a configured secret every protected call is 500 SecretNotConfigured (§2.1),
/// and `/health` still answers.
async fn no_secret(kind: Kind) {
    let db = TestDb::new(kind).await;
    let svc = start(&db, "").await;
    let (s, b) = call(svc.local_addr, "GET", "/balances", None).await;
    assert_eq!((s, b["error"].as_str()), (500, Some("SecretNotConfigured")));
    assert_eq!(call(svc.local_addr, "GET", "/health", None).await.0, 200);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_postgres() {
    api(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_on_sqlite() {
    api(Kind::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_on_sqlite() {
    no_secret(Kind::Sqlite).await;
}

/// One HTTP/1.1 exchange on a fresh connection: status, head and body as text.
async fn call_text(addr: SocketAddr, path: &str) -> (u16, String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete response");
    let status: u16 = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// The value of the sample `series` (name with its labels, as printed) in Prometheus text.
fn sample(body: &str, series: &str) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Goal: `GET /metrics` needs no token, answers Prometheus text with the counters of
/// `/stats`, the event-lag quantiles, and per stream partition the next offset and (once
/// the high watermark is known) the consumer lag; only GET is served.
async fn metrics(kind: Kind) {
    let db = TestDb::new(kind).await;
    let svc = start(&db, SECRET).await;
    let addr = svc.local_addr;
    let events = [
        accepted("alice", "o1", "BTC", "BUY", 1),
        report("alice", "o1", 3, 3, 1_000, 2),
        accepted("alice", "o2", "BTC", "SELL", 3),
        report("alice", "o2", 1, 1, 1_100, 4),
    ];
    svc.backoffice
        .apply(&events[..2], ConsumerPosition::journal("gw-1", 2))
        .await
        .unwrap();
    let topic = ConsumerPosition {
        stream: "orders.events".into(),
        partition: 1,
        next_offset: 5,
    };
    svc.backoffice.apply(&events[2..], topic).await.unwrap();
    svc.backoffice.set_high_watermark("orders.events", 1, 9);

    let (s, head, body) = call_text(addr, "/metrics").await;
    assert_eq!(s, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    for (series, want) in [
        ("backoffice_processed_total", 4.0),
        ("backoffice_booked_total", 4.0),
        ("backoffice_duplicates_total", 0.0),
        ("backoffice_skipped_total", 0.0),
        ("backoffice_batches_total", 2.0),
        (
            "backoffice_next_offset{stream=\"journal:gw-1\",partition=\"0\"}",
            3.0,
        ),
        (
            "backoffice_next_offset{stream=\"orders.events\",partition=\"1\"}",
            5.0,
        ),
        (
            "backoffice_consumer_lag{stream=\"orders.events\",partition=\"1\"}",
            4.0,
        ),
    ] {
        assert_eq!(sample(&body, series), Some(want), "{series} in\n{body}");
    }
    for name in [
        "backoffice_event_lag_ms_p50",
        "backoffice_event_lag_ms_p99",
        "backoffice_event_lag_ms_max",
    ] {
        assert!(sample(&body, name).is_some(), "{name} in\n{body}");
        assert!(body.contains(&format!("# TYPE {name} gauge")), "{name}");
    }
    assert!(
        !body.contains("backoffice_consumer_lag{stream=\"journal:gw-1\""),
        "no lag without a known high watermark:\n{body}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in body.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').expect(line);
        assert!(value.parse::<f64>().is_ok(), "{line}");
        assert!(series.starts_with("backoffice_"), "{line}");
    }
    let (s, _) = call(addr, "POST", "/metrics", None).await;
    assert_eq!(s, 405);
    // The other routes are unchanged: /stats still needs the token.
    assert_eq!(call(addr, "GET", "/stats", None).await.0, 401);
    svc.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_postgres() {
    metrics(Kind::Postgres).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_on_sqlite() {
    metrics(Kind::Sqlite).await;
}
