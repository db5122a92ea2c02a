//! The Switchyard back office: it keeps the books from the bus events.
//!
//! Every `OrderAccepted` and every execution report that adds a fill becomes an entry of an
//! append-only ledger, and the ledger's projections — positions (net quantity, average
//! price), balances per currency, realized PnL, each order's filled total — are updated in
//! the same database transaction, together with the identities of the events processed and
//! the input stream's position. The bus delivers at least once; the books count every event
//! exactly once (§2.8 of the reference's contract, whose rules are kept). A reconciliation
//! recomputes every projection from the ledger and reports each difference.
//!
//! The parts, from the inside out:
//! - [`rules`]: the arithmetic (fill quantity, fee, cash, average price, realized PnL), pure
//!   functions on integers;
//! - [`event`]: what the books read out of a bus event;
//! - [`books`]: the rules applied event by event in memory, producing ledger entries;
//! - [`store`]: PostgreSQL or SQLite (sqlx `Any`, one set of SQL), migrations, batched
//!   reads and writes;
//! - [`BackOffice`]: the library API — [`BackOffice::apply`] books a batch in one
//!   transaction, [`BackOffice::position`] says where a stream continues,
//!   [`BackOffice::reconcile`] checks the books;
//! - [`reconcile`]: recompute and compare;
//! - [`consumer`]: the Kafka consumer (batches per partition, positions from the database);
//! - [`http`]: the HTTP API (`/positions`, `/balances`, `/fills`, `/pnl`, `/ledger`,
//!   `/stats`, `/reconcile`, `/health`), JWT as the gateway;
//! - [`config`] and [`service`]: the environment and the standalone service that
//!   `switchyard backoffice` runs.
//!
//! The gateway can feed the books in process from its journal (no Kafka) through the same
//! [`BackOffice::apply`], with the stream `journal:<gatewayId>`.
//!
//! What it must not do: trust the bus to deliver once or in order, use floating point for
//! money or quantities, or change a ledger entry once written.

pub mod books;
pub mod config;
pub mod consumer;
pub mod event;
pub mod http;
pub mod reconcile;
pub mod rules;
pub mod service;
pub mod store;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use serde::Serialize;
use switchyard_protocol::bus::{types, BusEvent};

pub use books::{EntryKind, FillFields, LedgerEntry, Outcome, Rules};
pub use config::BackOfficeConfig;
pub use reconcile::{DiffKind, Difference, Reconciliation};
pub use rules::{Position, Side};
pub use store::{Backend, LedgerQuery};

use books::Books;
use store::Store;

/// Why a back-office operation failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("database: {0}")]
    Db(#[from] sqlx::Error),
    #[error("database migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("unsupported database URL {0:?}: expected postgres://… or sqlite:…")]
    Url(String),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error("creating {0}: {1}")]
    Io(String, std::io::Error),
}

/// Where an input stream continues: the next offset to read from `partition` of `stream`.
/// Kafka: topic, partition, last offset booked + 1. Embedded: `journal:<gatewayId>`,
/// partition 0, last journal seq booked + 1.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConsumerPosition {
    pub stream: String,
    pub partition: i32,
    pub next_offset: i64,
}

impl ConsumerPosition {
    /// The position after journal record `last_seq` of gateway `gateway_id`.
    pub fn journal(gateway_id: &str, last_seq: u64) -> ConsumerPosition {
        ConsumerPosition {
            stream: format!("journal:{gateway_id}"),
            partition: 0,
            next_offset: i64::try_from(last_seq.saturating_add(1)).unwrap_or(i64::MAX),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApplyStats {
    /// Events in the batch (unparseable ones included).
    pub events: u64,
    /// `OrderAccepted` entries booked.
    pub orders: u64,
    /// `Fill` entries booked.
    pub fills: u64,
    /// Events dropped as already booked.
    pub duplicates: u64,
    /// Events not booked for another reason (other types, malformed, unknown order, …).
    pub skipped: u64,
    /// The stream was already past this batch: nothing in it was looked at.
    pub stale: bool,
}

/// One message of a stream, for [`BackOffice::apply_records`].
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// Its offset in the stream partition.
    pub offset: i64,
    /// Its bytes (`None` for a message without a payload, which is skipped).
    pub payload: Option<&'a [u8]>,
}

/// Counters since the process started, for `/stats`.
#[derive(Debug, Default)]
struct Counters {
    processed: AtomicU64,
    booked: AtomicU64,
    duplicates: AtomicU64,
    skipped: AtomicU64,
    batches: AtomicU64,
}

/// A copy of the counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatsSnapshot {
    pub started_at: String,
    pub processed: u64,
    pub booked: u64,
    pub duplicates: u64,
    pub skipped: u64,
    pub batches: u64,
    /// `at` of the last event booked.
    pub last_event_at: Option<String>,
}

struct Inner {
    store: Store,
    rules: Rules,
    /// One booking transaction at a time in this process: a batch reads the rows it
    /// changes, so two interleaved batches would lose updates.
    booking: tokio::sync::Mutex<()>,
    counters: Counters,
    /// When this process opened the books (RFC 3339), for `/stats`.
    started_at: String,
    /// `at` of the last event booked, for `/stats`.
    last_event_at: Mutex<Option<String>>,
    /// Event `at` (journal record time) → committed here, ms: the end-to-end lag.
    event_lag_ms: Mutex<hdrhistogram::Histogram<u64>>,
    /// Latest known end (high watermark) of each stream partition, set by the consumer so
    /// `/stats` can show the lag.
    high_watermarks: Mutex<HashMap<(String, i32), i64>>,
}

/// The back office: a handle on the books (cheap to clone, shared by the consumer, the HTTP
/// API and an in-process gateway).
#[derive(Clone)]
pub struct BackOffice {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for BackOffice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BackOffice")
            .field("backend", &self.inner.store.backend)
            .field("rules", &self.inner.rules)
            .finish()
    }
}

/// An event of a batch, with its offset when the stream gives one per event.
struct Item<'a> {
    /// `None` when the stream has no per-event offsets (`apply`).
    offset: Option<i64>,
    /// `None` when the message did not decode (skipped, but still passed over).
    event: Option<&'a BusEvent>,
}

impl BackOffice {
    /// Connects to `url` (`postgres://…`, or `sqlite:path?mode=rwc` / `sqlite::memory:`)
    /// and migrates the schema.
    pub async fn open(url: &str, rules: Rules) -> Result<BackOffice, Error> {
        let store = Store::open(url).await?;
        Ok(BackOffice {
            inner: Arc::new(Inner {
                store,
                rules,
                booking: tokio::sync::Mutex::new(()),
                counters: Counters::default(),
                started_at: now_rfc3339(),
                last_event_at: Mutex::new(None),
                event_lag_ms: Mutex::new(
                    hdrhistogram::Histogram::new_with_bounds(1, 3_600_000, 3)
                        .expect("valid histogram bounds"),
                ),
                high_watermarks: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// Books a batch of events read from `position.stream`/`position.partition`, and
    /// records that the stream continues at `position.next_offset` — all in one database
    /// transaction: either the whole batch and the new position are stored, or nothing.
    ///
    /// If the stored position is already at or beyond `position.next_offset`, the batch
    /// was booked before (a redelivery) and nothing is looked at (`stale`). Within a batch,
    /// duplicates are dropped by identity, order id and filled total (§2.8).
    pub async fn apply(
        &self,
        batch: &[BusEvent],
        position: ConsumerPosition,
    ) -> Result<ApplyStats, Error> {
        let items = batch
            .iter()
            .map(|e| Item {
                offset: None,
                event: Some(e),
            })
            .collect();
        self.apply_items(
            &position.stream,
            position.partition,
            items,
            position.next_offset,
        )
        .await
    }

    /// Books raw messages of one stream partition, in offset order: what the Kafka consumer
    /// calls. Unparseable messages are skipped (the position still moves past them), and
    /// messages below the stored position are dropped as already booked, so a partition
    /// re-read from an older offset books nothing twice.
    pub async fn apply_records(
        &self,
        stream: &str,
        partition: i32,
        records: &[Record<'_>],
    ) -> Result<ApplyStats, Error> {
        let Some(last) = records.last() else {
            return Ok(ApplyStats::default());
        };
        let decoded: Vec<Option<BusEvent>> = records
            .iter()
            .map(|r| r.payload.and_then(|p| BusEvent::decode(p).ok()))
            .collect();
        let items = records
            .iter()
            .zip(&decoded)
            .map(|(r, e)| Item {
                offset: Some(r.offset),
                event: e.as_ref(),
            })
            .collect();
        self.apply_items(stream, partition, items, last.offset + 1)
            .await
    }

    async fn apply_items(
        &self,
        stream: &str,
        partition: i32,
        items: Vec<Item<'_>>,
        next_offset: i64,
    ) -> Result<ApplyStats, Error> {
        let inner = &*self.inner;
        let _booking = inner.booking.lock().await;
        let mut tx = inner.store.begin_booking().await?;
        let mut stats = ApplyStats {
            events: items.len() as u64,
            ..ApplyStats::default()
        };
        let stored = store::stored_position(&mut tx, stream, partition).await?;
        if stored.is_some_and(|s| s >= next_offset) {
            tx.rollback().await?;
            stats.duplicates = stats.events;
            stats.stale = true;
            self.count(&stats, None);
            return Ok(stats);
        }
        let mut live = Vec::with_capacity(items.len());
        for item in items {
            match (item.offset, item.event) {
                (Some(o), _) if stored.is_some_and(|s| o < s) => stats.duplicates += 1,
                (_, None) => stats.skipped += 1,
                (_, Some(e)) => live.push(e),
            }
        }
        let mut books = self.load_books(&mut tx, &live).await?;
        let mut entries = Vec::new();
        let mut last_at = None;
        for e in &live {
            match books.book(e, &inner.rules) {
                Outcome::Booked(entry) => {
                    match entry.kind() {
                        EntryKind::OrderAccepted => stats.orders += 1,
                        EntryKind::Fill => stats.fills += 1,
                    }
                    last_at = Some(&e.at);
                    entries.push(entry);
                }
                Outcome::Duplicate(_) => stats.duplicates += 1,
                Outcome::Skipped(_) => stats.skipped += 1,
            }
        }
        let mut id = store::next_ledger_id(&mut tx).await?;
        for e in &mut entries {
            e.id = id;
            id += 1;
        }
        let at = (stream, partition, next_offset);
        store::write_batch(&mut tx, inner.store.backend, &entries, &books, at).await?;
        tx.commit().await?;
        self.count(&stats, last_at.cloned());
        // How long each event took from its journal record to these books (the clocks of
        // gateway and back office are the same host's, or NTP-close).
        let now = now_ms();
        let mut lag = lock(&inner.event_lag_ms);
        for e in &live {
            if let Some(at) = event::at_ms(&e.at) {
                let _ = lag.record(now.saturating_sub(at).max(0) as u64);
            }
        }
        Ok(stats)
    }

    /// Loads the rows the batch's events touch: their orders, filled totals, identities,
    /// and the positions of the orders' accounts and symbols.
    async fn load_books(
        &self,
        conn: &mut sqlx::AnyConnection,
        live: &[&BusEvent],
    ) -> Result<Books, Error> {
        let booking = |e: &BusEvent| {
            e.event_type == types::ORDER_ACCEPTED || e.event_type == types::EXECUTION_REPORT
        };
        let mut order_ids = HashSet::new();
        let mut identities = HashSet::new();
        for e in live.iter().filter(|e| booking(e)) {
            if let Some(o) = e.order_id.as_deref() {
                order_ids.insert(o);
            }
            if let (Some(s), Some(q)) = (e.source.as_deref(), e.seq) {
                if let Ok(q) = i64::try_from(q) {
                    identities.insert((s, q));
                }
            }
        }
        let order_ids: Vec<&str> = order_ids.into_iter().collect();
        let identities: Vec<(&str, i64)> = identities.into_iter().collect();
        let backend = self.inner.store.backend;
        let mut books = Books::default();
        store::load_orders(&mut *conn, backend, &mut books, &order_ids, &identities).await?;
        let mut keys: HashSet<(&str, &str)> = HashSet::new();
        for e in live.iter().filter(|e| booking(e)) {
            if e.event_type == types::ORDER_ACCEPTED {
                if let Some(symbol) = e.data.get("symbol").and_then(|s| s.as_str()) {
                    keys.insert((&e.account_id, symbol));
                }
            }
        }
        for meta in books.orders.values() {
            keys.insert((&meta.account_id, &meta.symbol));
        }
        let keys: Vec<(&str, &str)> = keys.into_iter().collect();
        let mut positions = Books::default();
        store::load_positions(&mut *conn, backend, &mut positions, &keys).await?;
        books.positions = positions.positions;
        Ok(books)
    }

    fn count(&self, s: &ApplyStats, last_at: Option<String>) {
        let c = &self.inner.counters;
        c.processed.fetch_add(s.events, Ordering::Relaxed);
        c.booked.fetch_add(s.orders + s.fills, Ordering::Relaxed);
        c.duplicates.fetch_add(s.duplicates, Ordering::Relaxed);
        c.skipped.fetch_add(s.skipped, Ordering::Relaxed);
        c.batches.fetch_add(1, Ordering::Relaxed);
        if let Some(at) = last_at {
            *lock(&self.inner.last_event_at) = Some(at);
        }
    }

    /// The stored next offset of `stream`/`partition` (`None`: nothing booked from it).
    pub async fn position(&self, stream: &str, partition: i32) -> Result<Option<i64>, Error> {
        let mut conn = self.inner.store.pool.acquire().await?;
        store::stored_position(&mut conn, stream, partition).await
    }

    /// Every stored stream position.
    pub async fn positions_all(&self) -> Result<Vec<ConsumerPosition>, Error> {
        Ok(store::consumer_positions(&self.inner.store.pool)
            .await?
            .into_iter()
            .map(|(stream, partition, next_offset, _)| ConsumerPosition {
                stream,
                partition,
                next_offset,
            })
            .collect())
    }

    /// Recomputes every projection from the whole ledger and compares it with the store.
    pub async fn reconcile(&self) -> Result<Reconciliation, Error> {
        reconcile::reconcile(&self.inner.store, None).await
    }

    /// The same for one account (its ledger entries and its projections only).
    pub async fn reconcile_account(&self, account_id: &str) -> Result<Reconciliation, Error> {
        reconcile::reconcile(&self.inner.store, Some(account_id)).await
    }

    /// Stored positions of an account, by symbol.
    pub async fn positions(&self, account_id: &str) -> Result<Vec<(String, Position)>, Error> {
        let mut conn = self.inner.store.pool.acquire().await?;
        Ok(store::positions(&mut conn, Some(account_id))
            .await?
            .into_iter()
            .map(|((_, symbol), p)| (symbol, p))
            .collect())
    }

    /// Stored balances of an account: `(currency, amount)`.
    pub async fn balances(&self, account_id: &str) -> Result<Vec<(String, i64)>, Error> {
        let mut conn = self.inner.store.pool.acquire().await?;
        Ok(store::balances(&mut conn, Some(account_id))
            .await?
            .into_iter()
            .map(|((_, ccy), amount)| (ccy, amount))
            .collect())
    }

    /// Stored realized PnL of an account: `(symbol, quote currency, pnl)`.
    pub async fn realized_pnl(
        &self,
        account_id: &str,
    ) -> Result<Vec<(String, String, i64)>, Error> {
        let mut conn = self.inner.store.pool.acquire().await?;
        Ok(store::realized_pnl(&mut conn, Some(account_id))
            .await?
            .into_iter()
            .map(|((_, symbol, ccy), pnl)| (symbol, ccy, pnl))
            .collect())
    }

    /// The newest `limit` fills of an account, oldest first.
    pub async fn fills(&self, account_id: &str, limit: i64) -> Result<Vec<LedgerEntry>, Error> {
        store::fills(&self.inner.store.pool, account_id, limit).await
    }

    /// Ledger entries matching `q` (the newest `q.limit`, oldest first).
    pub async fn ledger(&self, q: &LedgerQuery) -> Result<Vec<LedgerEntry>, Error> {
        store::ledger(&self.inner.store.pool, q).await
    }

    /// Counters since this process started.
    pub fn stats(&self) -> StatsSnapshot {
        let c = &self.inner.counters;
        StatsSnapshot {
            started_at: self.inner.started_at.clone(),
            processed: c.processed.load(Ordering::Relaxed),
            booked: c.booked.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            batches: c.batches.load(Ordering::Relaxed),
            last_event_at: lock(&self.inner.last_event_at).clone(),
        }
    }

    /// Percentiles (p50, p99, p99.9, max) and count of the end-to-end lag, ms.
    pub fn event_lag_ms(&self) -> (u64, u64, u64, u64, u64) {
        let h = lock(&self.inner.event_lag_ms);
        (
            h.value_at_quantile(0.5),
            h.value_at_quantile(0.99),
            h.value_at_quantile(0.999),
            h.max(),
            h.len(),
        )
    }

    /// Records the end of a stream partition (the consumer's latest high watermark).
    pub fn set_high_watermark(&self, stream: &str, partition: i32, high: i64) {
        lock(&self.inner.high_watermarks).insert((stream.to_owned(), partition), high);
    }

    /// The last recorded end of a stream partition.
    pub fn high_watermark(&self, stream: &str, partition: i32) -> Option<i64> {
        lock(&self.inner.high_watermarks)
            .get(&(stream.to_owned(), partition))
            .copied()
    }

    pub fn rules(&self) -> &Rules {
        &self.inner.rules
    }

    pub fn backend(&self) -> Backend {
        self.inner.store.backend
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        store::ping(&self.inner.store.pool).await
    }

    /// Closes the connection pool (waits for connections in use to come back).
    pub async fn close(&self) {
        self.inner.store.close().await;
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Wall clock in epoch milliseconds.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The current time as RFC 3339 UTC with milliseconds, like the bus's `at`.
pub(crate) fn now_rfc3339() -> String {
    let now = time::OffsetDateTime::now_utc();
    let ms = now.millisecond();
    let base = now.replace_millisecond(0).unwrap_or(now);
    let text = base
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    // `…:SSZ` → `…:SS.mmmZ`
    match text.strip_suffix('Z') {
        Some(head) => format!("{head}.{ms:03}Z"),
        None => text,
    }
}
