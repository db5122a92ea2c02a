//! Booking into the real databases — PostgreSQL (`SWITCHYARD_TEST_PG`) and SQLite — through
//! the same code: a batch and its stream position are one transaction, redeliveries book
//! nothing, the ledger is append-only, and reconciliation finds tampering.

mod common;

use common::{accepted, report, sent, workload, Kind, TestDb};
use switchyard_backoffice::{BackOffice, ConsumerPosition, DiffKind, Position, Rules};

fn pos(stream: &str, next: i64) -> ConsumerPosition {
    ConsumerPosition {
        stream: stream.into(),
        partition: 0,
        next_offset: next,
    }
}

async fn open(db: &TestDb) -> BackOffice {
    BackOffice::open(&db.url, Rules::default())
        .await
        .expect("open")
}

// ------------------------------------------------------------------ scenarios

/// Goal: a batch books orders and fills into every projection, records its position, and
/// reconciles.
async fn books_a_batch(kind: Kind) {
    let db = TestDb::new(kind).await;
    let bo = open(&db).await;
    let batch = vec![
        accepted("a", "o1", "BTC", "BUY", 1),
        sent("a", "o1", 2),
        report("a", "o1", 3, 3, 1_000, 3),
        report("a", "o1", 2, 5, 1_100, 4),
        accepted("a", "o2", "BTC", "SELL", 5),
        report("a", "o2", 7, 7, 1_200, 6),
        accepted("b", "o3", "ETH", "SELL", 7),
        report("b", "o3", 1, 1, 50, 8),
    ];
    let stats = bo
        .apply(&batch, ConsumerPosition::journal("gw-1", 8))
        .await
        .unwrap();
    assert_eq!(
        (stats.orders, stats.fills, stats.skipped, stats.duplicates),
        (3, 4, 1, 0)
    );
    assert_eq!(bo.position("journal:gw-1", 0).await.unwrap(), Some(9));
    assert_eq!(bo.position("journal:gw-1", 1).await.unwrap(), None);
    // a: buys 3@1000 + 2@1100 → 5 @1040; sells 7@1200 → closes 5 (+800), short 2 @1200.
    assert_eq!(
        bo.positions("a").await.unwrap(),
        vec![(
            "BTC".to_string(),
            Position {
                net_qty: -2,
                avg_price: Some(1_200)
            }
        )]
    );
    assert_eq!(
        bo.realized_pnl("a").await.unwrap(),
        vec![("BTC".into(), "JPY".into(), 800)]
    );
    // cash: −3000−3 −2200−2 +8400−8
    assert_eq!(bo.balances("a").await.unwrap(), vec![("JPY".into(), 3_187)]);
    assert_eq!(bo.balances("b").await.unwrap(), vec![("JPY".into(), 50)]);
    let fills = bo.fills("a", 10).await.unwrap();
    assert_eq!(fills.len(), 3);
    assert_eq!(fills[2].fill.as_ref().unwrap().filled_qty_total, 7);
    assert!(fills.windows(2).all(|w| w[0].id < w[1].id), "oldest first");
    let r = bo.reconcile().await.unwrap();
    assert!(r.ok(), "{:?}", r.differences);
    assert_eq!(r.ledger_entries, 7);
}

/// Goal: redelivery books nothing twice — a batch at or below the stored position is
/// stale, and the same events in a later batch are dropped by identity, order id and
/// filled total.
async fn redelivery_books_nothing(kind: Kind) {
    let db = TestDb::new(kind).await;
    let bo = open(&db).await;
    let batch = vec![
        accepted("a", "o1", "BTC", "BUY", 1),
        report("a", "o1", 3, 3, 1_000, 2),
    ];
    bo.apply(&batch, pos("t", 2)).await.unwrap();
    let again = bo.apply(&batch, pos("t", 2)).await.unwrap();
    assert!(again.stale);
    assert_eq!(again.duplicates, 2);
    let later = bo.apply(&batch, pos("t", 4)).await.unwrap();
    assert!(!later.stale);
    assert_eq!((later.orders, later.fills, later.duplicates), (0, 0, 2));
    // Without identities, the order id and the filled total still catch them.
    let anonymous = vec![
        accepted("a", "o1", "BTC", "BUY", 0),
        report("a", "o1", 3, 3, 1_000, 0),
    ];
    let s = bo.apply(&anonymous, pos("t", 6)).await.unwrap();
    assert_eq!((s.orders, s.fills, s.duplicates), (0, 0, 2));
    assert_eq!(bo.position("t", 0).await.unwrap(), Some(6));
    assert_eq!(bo.fills("a", 100).await.unwrap().len(), 1);
    assert!(bo.reconcile().await.unwrap().ok());
}

/// Goal: a batch whose transaction fails leaves no trace — no ledger rows, no projection,
/// no position — and the same batch books completely afterwards.
async fn failed_batch_leaves_nothing(kind: Kind) {
    let db = TestDb::new(kind).await;
    let bo = open(&db).await;
    let raw = db.raw().await;
    // A trigger that fails the last statement of the transaction (the position) for one
    // offset: everything written before it in the batch must roll back.
    let trigger = match kind {
        Kind::Postgres => vec![
            "CREATE FUNCTION fail_666() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN IF NEW.next_offset = 666 THEN RAISE EXCEPTION 'injected'; END IF; RETURN NEW; END; $$",
            "CREATE TRIGGER fail_666 BEFORE INSERT OR UPDATE ON consumer_positions \
             FOR EACH ROW EXECUTE FUNCTION fail_666()",
        ],
        Kind::Sqlite => vec![
            "CREATE TRIGGER fail_666 BEFORE INSERT ON consumer_positions \
             WHEN NEW.next_offset = 666 BEGIN SELECT RAISE(ABORT, 'injected'); END",
        ],
    };
    for sql in trigger {
        sqlx::raw_sql(sql).execute(&raw).await.unwrap();
    }
    let batch = workload(20, 3, 1, 7);
    let err = bo.apply(&batch, pos("t", 666)).await.unwrap_err();
    assert!(err.to_string().contains("injected"), "{err}");
    let count = |table: &'static str| {
        let raw = raw.clone();
        async move {
            let row: (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
                .fetch_one(&raw)
                .await
                .unwrap();
            row.0
        }
    };
    for table in [
        "ledger",
        "order_meta",
        "order_filled_total",
        "positions",
        "balances",
        "realized_pnl",
        "seen_events",
        "consumer_positions",
    ] {
        assert_eq!(count(table).await, 0, "{table} after a failed batch");
    }
    assert_eq!(bo.position("t", 0).await.unwrap(), None);
    let s = bo.apply(&batch, pos("t", 667)).await.unwrap();
    assert_eq!(s.orders, 20);
    assert!(count("ledger").await > 20);
    assert!(bo.reconcile().await.unwrap().ok());
    raw.close().await;
}

/// Goal: the database refuses to change or delete ledger entries.
async fn ledger_is_append_only(kind: Kind) {
    let db = TestDb::new(kind).await;
    let bo = open(&db).await;
    bo.apply(&[accepted("a", "o1", "BTC", "BUY", 1)], pos("t", 1))
        .await
        .unwrap();
    let raw = db.raw().await;
    for sql in ["UPDATE ledger SET symbol = 'ETH'", "DELETE FROM ledger"] {
        let e = sqlx::query(sql).execute(&raw).await.unwrap_err();
        assert!(e.to_string().contains("append-only"), "{sql}: {e}");
    }
    raw.close().await;
}

/// Goal: reconciliation reports each tampered projection with diff = actual − expected.
async fn reconcile_finds_tampering(kind: Kind) {
    let db = TestDb::new(kind).await;
    let bo = open(&db).await;
    bo.apply(&workload(50, 4, 1, 11), pos("t", 1_000))
        .await
        .unwrap();
    assert!(bo.reconcile().await.unwrap().ok());
    let raw = db.raw().await;
    for sql in [
        "UPDATE balances SET amount = amount + 5 WHERE account_id = 'acct-1'",
        "UPDATE positions SET net_qty = net_qty - 1 WHERE account_id = 'acct-2' AND symbol = \
         (SELECT MIN(symbol) FROM positions WHERE account_id = 'acct-2')",
        "DELETE FROM order_filled_total WHERE order_id = 'ord-11-0'",
    ] {
        sqlx::query(sql).execute(&raw).await.unwrap();
    }
    let r = bo.reconcile().await.unwrap();
    assert!(!r.ok());
    let mut kinds: Vec<(DiffKind, String, i64)> = r
        .differences
        .iter()
        .map(|d| (d.kind, d.account_id.clone(), d.diff))
        .collect();
    kinds.sort();
    let pos_diff = kinds.iter().find(|k| k.0 == DiffKind::Position).unwrap();
    assert_eq!((pos_diff.1.as_str(), pos_diff.2), ("acct-2", -1));
    let bal = kinds.iter().find(|k| k.0 == DiffKind::Balance).unwrap();
    assert_eq!((bal.1.as_str(), bal.2), ("acct-1", 5));
    let filled = r
        .differences
        .iter()
        .find(|d| d.kind == DiffKind::FilledTotal)
        .unwrap();
    assert_eq!(filled.key, "ord-11-0");
    assert_eq!(filled.actual, None);
    assert_eq!(filled.diff, -filled.expected.unwrap());
    assert_eq!(r.differences.len(), 3, "{:?}", r.differences);
    // One account's reconciliation sees exactly that account's differences.
    let one = bo.reconcile_account("acct-1").await.unwrap();
    let mine: Vec<_> = r
        .differences
        .iter()
        .filter(|d| d.account_id == "acct-1")
        .cloned()
        .collect();
    assert_eq!(one.differences, mine);
    assert!(one
        .differences
        .iter()
        .any(|d| d.kind == DiffKind::Balance && d.diff == 5));
    raw.close().await;
}

/// Goal: concurrent feeds of the same events (two streams, two back-office handles on one
/// database) book each event once.
async fn concurrent_feeds_book_once(kind: Kind) {
    let db = TestDb::new(kind).await;
    let a = open(&db).await;
    let b = open(&db).await;
    let events = workload(200, 5, 1, 3);
    let chunks: Vec<Vec<_>> = events.chunks(50).map(<[_]>::to_vec).collect();
    let feed = |bo: BackOffice, stream: &'static str| {
        let chunks = chunks.clone();
        async move {
            let mut next = 0;
            for c in &chunks {
                next += c.len() as i64;
                bo.apply(c, pos(stream, next)).await.unwrap();
            }
        }
    };
    tokio::join!(feed(a.clone(), "s1"), feed(b.clone(), "s2"));
    let single = TestDb::new(kind).await;
    let once = open(&single).await;
    once.apply(&events, pos("s", 1)).await.unwrap();
    let (r, expected) = (
        a.reconcile().await.unwrap(),
        once.reconcile().await.unwrap(),
    );
    assert!(r.ok(), "{:?}", r.differences);
    assert_eq!(r.actual, expected.actual);
    assert_eq!(r.ledger_entries, expected.ledger_entries);
}

// ------------------------------------------------------------------ the tests

macro_rules! on_both {
    ($($name:ident),* $(,)?) => {
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Postgres).await;
                }
            )*
        }
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Kind::Sqlite).await;
                }
            )*
        }
    };
}

on_both!(
    books_a_batch,
    redelivery_books_nothing,
    failed_batch_leaves_nothing,
    ledger_is_append_only,
    reconcile_finds_tampering,
    concurrent_feeds_book_once,
);
