//! Property: whatever the bus does — duplicates, duplicates delivered late and out of order,
//! partial fills, flips, reports without a price or with odd deltas, status reports, batches
//! cut anywhere, stale batches delivered again — the books equal those of booking the
//! deduplicated sequence once, equal the in-memory model, and reconcile with no difference.
//! Runs on SQLite (many cases) and on the real PostgreSQL (a few).

mod common;

use proptest::prelude::*;
use serde_json::json;
use switchyard_backoffice::books::{Books, Rules};
use switchyard_backoffice::reconcile::Projections;
use switchyard_backoffice::{BackOffice, ConsumerPosition};
use switchyard_protocol::bus::BusEvent;

#[derive(Debug, Clone)]
struct FillSpec {
    /// How much the order's filled total grows.
    step: i64,
    price: Option<i64>,
    /// 0–4: delta = step; 5: no delta; 6: delta too large; 7: negative delta.
    delta_mode: u8,
    status_report: bool,
}

#[derive(Debug, Clone)]
struct OrderSpec {
    account: u8,
    symbol: u8,
    buy: bool,
    fills: Vec<FillSpec>,
}

#[derive(Debug, Clone)]
struct Scenario {
    orders: Vec<OrderSpec>,
    /// Which order emits its next event, in turn: the interleaving.
    picks: Vec<usize>,
    /// Events that lose their identity (as the reference's events have none).
    anonymous: Vec<usize>,
    /// `(which event, how far after it)` for each duplicate delivered.
    duplicates: Vec<(usize, usize)>,
    /// Batch sizes, used in turn.
    batch_sizes: Vec<usize>,
    /// Batches delivered again, stale, at the end.
    replays: Vec<usize>,
}

fn fill_spec() -> impl Strategy<Value = FillSpec> {
    (
        1i64..6,
        prop_oneof![8 => (90i64..=110).prop_map(Some), 1 => Just(None)],
        0u8..8,
        prop::bool::weighted(0.15),
    )
        .prop_map(|(step, price, delta_mode, status_report)| FillSpec {
            step,
            price,
            delta_mode,
            status_report,
        })
}

fn scenario() -> impl Strategy<Value = Scenario> {
    let order = (
        0u8..3,
        0u8..2,
        any::<bool>(),
        prop::collection::vec(fill_spec(), 0..4),
    )
        .prop_map(|(account, symbol, buy, fills)| OrderSpec {
            account,
            symbol,
            buy,
            fills,
        });
    (
        prop::collection::vec(order, 1..8),
        prop::collection::vec(0usize..64, 0..48),
        prop::collection::vec(0usize..1_000, 0..4),
        prop::collection::vec((0usize..1_000, 0usize..1_000), 0..12),
        prop::collection::vec(1usize..12, 1..6),
        prop::collection::vec(0usize..100, 0..3),
    )
        .prop_map(
            |(orders, picks, anonymous, duplicates, batch_sizes, replays)| Scenario {
                orders,
                picks,
                anonymous,
                duplicates,
                batch_sizes,
                replays,
            },
        )
}

fn event(t: &str, account: &str, order: &str, data: serde_json::Value) -> BusEvent {
    BusEvent {
        event_type: t.into(),
        at: "2025-01-01T00:00:00.000Z".into(),
        account_id: account.into(),
        order_id: Some(order.into()),
        data,
        source: None,
        seq: None,
    }
}

/// The events of each order, in the order the gateway would publish them.
fn order_events(i: usize, o: &OrderSpec) -> Vec<BusEvent> {
    let (account, order) = (format!("acct-{}", o.account), format!("ord-{i}"));
    let side = if o.buy { "BUY" } else { "SELL" };
    let mut out = vec![
        event(
            "OrderAccepted",
            &account,
            &order,
            json!({"symbol": format!("S{}", o.symbol), "side": side, "type": "LIMIT", "qty": 20}),
        ),
        event("OrderSent", &account, &order, json!({"venue": "simA"})),
    ];
    let mut total = 0;
    for f in &o.fills {
        total += f.step;
        let delta = match f.delta_mode {
            0..=4 => json!(f.step),
            5 => json!(null),
            6 => json!(f.step + 3),
            _ => json!(-1),
        };
        out.push(event(
            "ExecutionReport",
            &account,
            &order,
            json!({"status": "PARTIALLY_FILLED", "filledQtyDelta": delta, "filledQtyTotal": total,
                   "price": f.price, "statusReport": f.status_report}),
        ));
    }
    out
}

/// The sequence the gateway journals (interleaved orders, each with its identity) and the
/// sequence the bus delivers (with duplicates inserted after their originals).
fn sequences(s: &Scenario) -> (Vec<BusEvent>, Vec<BusEvent>) {
    let mut per_order: Vec<std::collections::VecDeque<BusEvent>> = s
        .orders
        .iter()
        .enumerate()
        .map(|(i, o)| order_events(i, o).into())
        .collect();
    let mut base = Vec::new();
    let n = per_order.len();
    for p in &s.picks {
        if let Some(e) = per_order[p % n].pop_front() {
            base.push(e);
        }
    }
    for q in &mut per_order {
        base.extend(q.drain(..));
    }
    for (i, e) in base.iter_mut().enumerate() {
        e.source = Some("gw-1".into());
        e.seq = Some(i as u64 + 1);
    }
    for a in &s.anonymous {
        let i = a % base.len();
        base[i].source = None;
        base[i].seq = None;
    }
    let mut delivered = base.clone();
    for (which, gap) in &s.duplicates {
        let original = &base[which % base.len()];
        let at = delivered.iter().position(|e| e == original).unwrap();
        let to = at + 1 + gap % (delivered.len() - at);
        delivered.insert(to, original.clone());
    }
    (base, delivered)
}

/// Books the delivered sequence in batches (plus stale replays) and returns the
/// reconciliation; checks every stale replay books nothing.
async fn book_in_batches(bo: &BackOffice, s: &Scenario, delivered: &[BusEvent]) {
    let mut batches = Vec::new();
    let mut start = 0;
    for size in s.batch_sizes.iter().cycle() {
        if start >= delivered.len() {
            break;
        }
        let end = (start + size).min(delivered.len());
        batches.push((start, end));
        start = end;
    }
    let position = |end: usize| ConsumerPosition {
        stream: "bus".into(),
        partition: 0,
        next_offset: end as i64,
    };
    for &(start, end) in &batches {
        let stats = bo
            .apply(&delivered[start..end], position(end))
            .await
            .unwrap();
        assert!(!stats.stale);
        assert_eq!(stats.events as usize, end - start);
    }
    for r in &s.replays {
        let (start, end) = batches[r % batches.len()];
        let stats = bo
            .apply(&delivered[start..end], position(end))
            .await
            .unwrap();
        assert!(stats.stale && stats.orders + stats.fills == 0);
    }
}

async fn check(url_a: &str, url_b: &str, s: &Scenario) {
    let (base, delivered) = sequences(s);
    let rules = Rules::default();
    let a = BackOffice::open(url_a, rules.clone()).await.unwrap();
    book_in_batches(&a, s, &delivered).await;
    let b = BackOffice::open(url_b, rules.clone()).await.unwrap();
    b.apply(
        &base,
        ConsumerPosition {
            stream: "bus".into(),
            partition: 0,
            next_offset: 1,
        },
    )
    .await
    .unwrap();
    let mut model = Books::default();
    let mut model_entries = 0;
    for e in &base {
        if let switchyard_backoffice::Outcome::Booked(_) = model.book(e, &rules) {
            model_entries += 1;
        }
    }
    let ra = a.reconcile().await.unwrap();
    let rb = b.reconcile().await.unwrap();
    assert!(
        ra.ok(),
        "batched books do not reconcile: {:?}",
        ra.differences
    );
    assert!(
        rb.ok(),
        "single-batch books do not reconcile: {:?}",
        rb.differences
    );
    assert_eq!(ra.actual, rb.actual, "batched ≠ deduplicated once");
    assert_eq!(ra.actual, Projections::of_books(&model), "store ≠ model");
    assert_eq!(ra.ledger_entries, model_entries);
    assert_eq!(rb.ledger_entries, model_entries);
    a.close().await;
    b.close().await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    // Goal: the property above, on SQLite (in memory).
    #[test]
    fn sqlite_batches_equal_dedup_once(s in scenario()) {
        runtime().block_on(check("sqlite::memory:", "sqlite::memory:", &s));
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    // Goal: the property above, on the real PostgreSQL.
    #[test]
    fn postgres_batches_equal_dedup_once(s in scenario()) {
        runtime().block_on(async {
            let (a, b) = (common::TestDb::postgres().await, common::TestDb::postgres().await);
            check(&a.url, &b.url, &s).await;
        });
    }
}
