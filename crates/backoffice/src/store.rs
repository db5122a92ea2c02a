//! The SQL store: PostgreSQL or SQLite through sqlx's `Any` driver, with one set of SQL for
//! both. Placeholders are `$N` (SQLite accepts them too), upserts are `ON CONFLICT … DO
//! UPDATE` (both), and every value is a 64-bit integer or text, the types both share. The
//! only differences are the migrations (one directory per backend), the snapshot isolation
//! level of a reconciliation, and PostgreSQL's advisory lock that keeps two back-office
//! processes from booking into the same database at once.
//!
//! Writes are batched: one multi-row statement per table per batch (chunked under both
//! databases' bind-parameter limits), so a batch of a thousand events costs about a dozen
//! round trips whatever its size.

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{AnyConnection, AnyPool, Connection as _, Executor as _, Row as _};

use crate::books::{Books, EntryKind, FillFields, LedgerEntry, OrderMeta, PositionKey};
use crate::rules::{Position, Side};
use crate::Error;

/// Key of the PostgreSQL advisory lock held by every booking transaction ("BO" in ASCII).
const BOOKING_LOCK_KEY: i64 = 0x424F;

static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");
static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// Which database a URL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Some(Backend::Postgres)
        } else if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else {
            None
        }
    }
}

/// A connection pool and what it is connected to.
#[derive(Debug, Clone)]
pub struct Store {
    pub pool: AnyPool,
    pub backend: Backend,
}

/// The columns of a ledger row, in the order `ledger_entry` reads them.
const LEDGER_COLUMNS: &str = "id, at, at_ms, entry_type, account_id, order_id, symbol, side, \
     filled_qty_delta, filled_qty_total, price, quote_ccy, quote_cash_delta, fee_quote, source, seq";

impl Store {
    /// Connects and brings the schema up to date.
    pub async fn open(url: &str) -> Result<Store, Error> {
        sqlx::any::install_default_drivers();
        let backend = Backend::of_url(url).ok_or_else(|| Error::Url(url.to_owned()))?;
        let options = AnyConnectOptions::from_str(url)?;
        let pool = match backend {
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await?
            }
            Backend::Sqlite => {
                create_parent_dir(url)?;
                // An in-memory database exists once per connection: keep exactly one.
                let memory = url.contains(":memory:") || url.contains("mode=memory");
                AnyPoolOptions::new()
                    .max_connections(if memory { 1 } else { 4 })
                    .min_connections(if memory { 1 } else { 0 })
                    .idle_timeout(None)
                    .max_lifetime(None)
                    .acquire_timeout(Duration::from_secs(30))
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            // WAL: readers (the HTTP API) do not wait for the booking writer.
                            // synchronous=NORMAL: a power cut may undo the last commits, but
                            // the consumer position is undone with them, so the events are
                            // booked again, never lost nor doubled.
                            conn.execute("PRAGMA journal_mode = WAL").await?;
                            conn.execute("PRAGMA synchronous = NORMAL").await?;
                            conn.execute("PRAGMA busy_timeout = 30000").await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await?
            }
        };
        match backend {
            Backend::Postgres => POSTGRES_MIGRATIONS.run(&pool).await?,
            Backend::Sqlite => SQLITE_MIGRATIONS.run(&pool).await?,
        }
        Ok(Store { pool, backend })
    }

    /// Starts a booking transaction that holds the database's write lock from its first
    /// statement, so that booking transactions of several processes on one database run one
    /// at a time (a batch reads the rows it then rewrites): PostgreSQL's advisory lock, or
    /// SQLite's `BEGIN IMMEDIATE`.
    pub async fn begin_booking(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        match self.backend {
            Backend::Postgres => {
                let mut tx = self.pool.begin().await?;
                // The function returns `void`, which the Any driver cannot decode: select a
                // constant from it instead.
                sqlx::query("SELECT 1 FROM pg_advisory_xact_lock($1)")
                    .bind(BOOKING_LOCK_KEY)
                    .fetch_one(&mut *tx)
                    .await?;
                Ok(tx)
            }
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
        }
    }

    /// Starts a read-only transaction that sees one snapshot of the database throughout
    /// (SQLite: a deferred transaction reads one WAL snapshot from its first read on).
    pub async fn begin_snapshot(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, Error> {
        Ok(match self.backend {
            Backend::Postgres => {
                self.pool
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?
            }
            Backend::Sqlite => self.pool.begin().await?,
        })
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// `sqlite:path/to/file.db?…` needs its directory to exist before `mode=rwc` can create it.
fn create_parent_dir(url: &str) -> Result<(), Error> {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    let path = rest.split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(dir) = Path::new(path)
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
    {
        std::fs::create_dir_all(dir).map_err(|e| Error::Io(dir.display().to_string(), e))?;
    }
    Ok(())
}

// ---------------------------------------------------------------- batches as one parameter

/// How a column of a JSON row is read back in SQL.
#[derive(Clone, Copy)]
enum Col {
    Int,
    Text,
}

/// `SELECT <columns> FROM <the rows of JSON parameter $n>`: a batch of rows travels as one
/// text parameter holding a JSON array of arrays. Statements then have a fixed shape
/// whatever the batch size, so each is prepared once per connection, and PostgreSQL is
/// spared parsing and planning thousands of bind parameters (a 750-row multi-row VALUES
/// insert took 11–17 ms, most of a batch). The only SQL that differs per backend is this
/// row source: `jsonb_array_elements` on PostgreSQL, `json_each` on SQLite.
fn json_rows(backend: Backend, param: usize, cols: &[Col]) -> String {
    let mut s = String::from("SELECT ");
    for (i, c) in cols.iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = match (backend, c) {
            (Backend::Postgres, Col::Int) => write!(s, "(r->>{i})::bigint"),
            (Backend::Postgres, Col::Text) => write!(s, "r->>{i}"),
            (Backend::Sqlite, _) => write!(s, "json_extract(r.value, '$[{i}]')"),
        };
    }
    let _ = match backend {
        Backend::Postgres => write!(s, " FROM jsonb_array_elements(${param}::text::jsonb) AS r"),
        // `WHERE true` lets SQLite parse an upsert after INSERT … SELECT.
        Backend::Sqlite => write!(s, " FROM json_each(${param}) AS r WHERE true"),
    };
    s
}

/// `SELECT <each element>` of a JSON array parameter of scalars (an `IN (…)` list).
fn json_list(backend: Backend, param: usize, col: Col) -> String {
    match (backend, col) {
        (Backend::Postgres, Col::Text) => {
            format!("SELECT jsonb_array_elements_text(${param}::text::jsonb)")
        }
        (Backend::Postgres, Col::Int) => {
            format!("SELECT (jsonb_array_elements_text(${param}::text::jsonb))::bigint")
        }
        (Backend::Sqlite, _) => format!("SELECT value FROM json_each(${param})"),
    }
}

fn to_json<T: serde::Serialize>(rows: &T) -> String {
    // Tuples of integers and strings always serialize.
    serde_json::to_string(rows).expect("rows serialize")
}

// ---------------------------------------------------------------- booking: reads

/// The stored next offset of a stream partition.
pub async fn stored_position(
    conn: &mut AnyConnection,
    stream: &str,
    partition: i32,
) -> Result<Option<i64>, Error> {
    let row = sqlx::query(
        "SELECT next_offset FROM consumer_positions WHERE stream = $1 AND partition_id = $2",
    )
    .bind(stream)
    .bind(i64::from(partition))
    .fetch_optional(conn)
    .await?;
    Ok(row.map(|r| r.try_get::<i64, _>(0)).transpose()?)
}

/// Loads into `books` the orders and filled totals of `order_ids`, and which of
/// `identities` were already processed.
pub async fn load_orders(
    conn: &mut AnyConnection,
    backend: Backend,
    books: &mut Books,
    order_ids: &[&str],
    identities: &[(&str, i64)],
) -> Result<(), Error> {
    if !order_ids.is_empty() {
        let sql = format!(
            "SELECT m.order_id, m.account_id, m.symbol, m.side, f.filled_total FROM order_meta m \
             LEFT JOIN order_filled_total f ON f.order_id = m.order_id WHERE m.order_id IN ({})",
            json_list(backend, 1, Col::Text)
        );
        let rows = sqlx::query(&sql)
            .bind(to_json(&order_ids))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            let (order_id, side): (String, String) = (row.try_get(0)?, row.try_get(3)?);
            if let Some(total) = row.try_get::<Option<i64>, _>(4)? {
                books.filled.insert(order_id.clone(), total);
            }
            books.orders.insert(
                order_id,
                OrderMeta {
                    account_id: row.try_get(1)?,
                    symbol: row.try_get(2)?,
                    side: parse_side(&side)?,
                },
            );
        }
    }
    let mut by_source: HashMap<&str, Vec<i64>> = HashMap::new();
    for (source, seq) in identities {
        by_source.entry(source).or_default().push(*seq);
    }
    let sql = format!(
        "SELECT seq FROM seen_events WHERE source = $1 AND seq IN ({})",
        json_list(backend, 2, Col::Int)
    );
    for (source, seqs) in by_source {
        let rows = sqlx::query(&sql)
            .bind(source)
            .bind(to_json(&seqs))
            .fetch_all(&mut *conn)
            .await?;
        for row in rows {
            books.seen.insert((source.to_owned(), row.try_get(0)?));
        }
    }
    Ok(())
}

/// Loads into `books` the stored positions of `keys` (account, symbol).
pub async fn load_positions(
    conn: &mut AnyConnection,
    backend: Backend,
    books: &mut Books,
    keys: &[(&str, &str)],
) -> Result<(), Error> {
    if keys.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "SELECT account_id, symbol, net_qty, avg_price FROM positions \
         WHERE (account_id, symbol) IN ({})",
        json_rows(backend, 1, &[Col::Text, Col::Text])
    );
    let rows = sqlx::query(&sql)
        .bind(to_json(&keys))
        .fetch_all(&mut *conn)
        .await?;
    for row in rows {
        books
            .positions
            .insert((row.try_get(0)?, row.try_get(1)?), position(&row, 2)?);
    }
    Ok(())
}

/// The id the next ledger entry gets.
pub async fn next_ledger_id(conn: &mut AnyConnection) -> Result<i64, Error> {
    let row = sqlx::query("SELECT COALESCE(MAX(id), 0) FROM ledger")
        .fetch_one(conn)
        .await?;
    Ok(row.try_get::<i64, _>(0)? + 1)
}

// ---------------------------------------------------------------- booking: writes

/// Runs `INSERT INTO <head> <rows of $1> <tail>` with `rows` as the JSON parameter, unless
/// there are none.
async fn insert_rows<T: serde::Serialize>(
    conn: &mut AnyConnection,
    backend: Backend,
    head: &str,
    cols: &[Col],
    tail: &str,
    rows: &[T],
) -> Result<(), Error> {
    if rows.is_empty() {
        return Ok(());
    }
    let sql = format!("INSERT INTO {head} {} {tail}", json_rows(backend, 1, cols));
    sqlx::query(&sql)
        .bind(to_json(&rows))
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Writes a booked batch: the ledger entries (ids assigned), the projections they touched
/// (positions and filled totals as absolute values, balances and PnL as the increments the
/// batch's `books` hold), the new identities, and the stream position.
pub async fn write_batch(
    conn: &mut AnyConnection,
    backend: Backend,
    entries: &[LedgerEntry],
    books: &Books,
    position: (&str, i32, i64),
) -> Result<(), Error> {
    use Col::{Int, Text};
    let ledger: Vec<_> = entries.iter().map(ledger_row).collect();
    insert_rows(
        conn,
        backend,
        &format!("ledger ({LEDGER_COLUMNS})"),
        &[
            Int, Text, Int, Text, Text, Text, Text, Text, Int, Int, Int, Text, Int, Int, Text, Int,
        ],
        "",
        &ledger,
    )
    .await?;
    let mut orders = Vec::new();
    let mut filled = Vec::new();
    let mut positions = Vec::new();
    let mut seen_orders = HashSet::new();
    let mut seen_positions = HashSet::new();
    for e in entries {
        match e.kind() {
            EntryKind::OrderAccepted => {
                orders.push((&e.order_id, &e.account_id, &e.symbol, e.side.as_str()))
            }
            EntryKind::Fill => {
                if seen_orders.insert(e.order_id.as_str()) {
                    filled.push((&e.order_id, books.filled[&e.order_id]));
                }
                let key = (e.account_id.clone(), e.symbol.clone());
                if seen_positions.insert(key.clone()) {
                    let (k, p) = books.positions.get_key_value(&key).expect("posted");
                    positions.push((&k.0, &k.1, p.net_qty, p.avg_price));
                }
            }
        }
    }
    insert_rows(
        conn,
        backend,
        "order_meta (order_id, account_id, symbol, side)",
        &[Text, Text, Text, Text],
        "",
        &orders,
    )
    .await?;
    insert_rows(
        conn,
        backend,
        "order_filled_total (order_id, filled_total)",
        &[Text, Int],
        "ON CONFLICT (order_id) DO UPDATE SET filled_total = excluded.filled_total",
        &filled,
    )
    .await?;
    insert_rows(
        conn,
        backend,
        "positions (account_id, symbol, net_qty, avg_price)",
        &[Text, Text, Int, Int],
        "ON CONFLICT (account_id, symbol) DO UPDATE \
         SET net_qty = excluded.net_qty, avg_price = excluded.avg_price",
        &positions,
    )
    .await?;
    let balances: Vec<_> = books.balances.iter().map(|((a, c), v)| (a, c, v)).collect();
    insert_rows(
        conn,
        backend,
        "balances (account_id, currency, amount)",
        &[Text, Text, Int],
        "ON CONFLICT (account_id, currency) DO UPDATE SET amount = balances.amount + excluded.amount",
        &balances,
    )
    .await?;
    let pnl: Vec<_> = books
        .pnl
        .iter()
        .map(|((a, s, c), v)| (a, s, c, v))
        .collect();
    insert_rows(
        conn,
        backend,
        "realized_pnl (account_id, symbol, quote_ccy, realized_pnl)",
        &[Text, Text, Text, Int],
        "ON CONFLICT (account_id, symbol, quote_ccy) DO UPDATE \
         SET realized_pnl = realized_pnl.realized_pnl + excluded.realized_pnl",
        &pnl,
    )
    .await?;
    insert_rows(
        conn,
        backend,
        "seen_events (source, seq)",
        &[Text, Int],
        "",
        &books.seen_new,
    )
    .await?;
    let (stream, partition, next_offset) = position;
    sqlx::query(
        "INSERT INTO consumer_positions (stream, partition_id, next_offset, updated_at_ms) \
         VALUES ($1, $2, $3, $4) ON CONFLICT (stream, partition_id) DO UPDATE \
         SET next_offset = excluded.next_offset, updated_at_ms = excluded.updated_at_ms",
    )
    .bind(stream)
    .bind(i64::from(partition))
    .bind(next_offset)
    .bind(crate::now_ms())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A ledger entry as a JSON row, in `LEDGER_COLUMNS` order.
#[allow(clippy::type_complexity)]
fn ledger_row(
    e: &LedgerEntry,
) -> (
    i64,
    &str,
    Option<i64>,
    &str,
    &str,
    &str,
    &str,
    &str,
    Option<i64>,
    Option<i64>,
    Option<i64>,
    Option<&str>,
    Option<i64>,
    Option<i64>,
    Option<&str>,
    Option<i64>,
) {
    let f = e.fill.as_ref();
    (
        e.id,
        &e.at,
        e.at_ms,
        e.kind().as_str(),
        &e.account_id,
        &e.order_id,
        &e.symbol,
        e.side.as_str(),
        f.map(|f| f.filled_qty_delta),
        f.map(|f| f.filled_qty_total),
        f.and_then(|f| f.price),
        f.map(|f| f.quote_ccy.as_str()),
        f.map(|f| f.quote_cash_delta),
        f.map(|f| f.fee_quote),
        e.source.as_deref(),
        e.seq,
    )
}

// ---------------------------------------------------------------- reads for the API

fn parse_side(s: &str) -> Result<Side, Error> {
    Side::parse(s).ok_or_else(|| Error::Corrupt(format!("side {s:?}")))
}

fn position(row: &AnyRow, first: usize) -> Result<Position, Error> {
    Ok(Position {
        net_qty: row.try_get(first)?,
        avg_price: row.try_get(first + 1)?,
    })
}

/// Reads one ledger row selected with `LEDGER_COLUMNS`.
fn ledger_entry(row: &AnyRow) -> Result<LedgerEntry, Error> {
    let kind: String = row.try_get(3)?;
    let kind =
        EntryKind::parse(&kind).ok_or_else(|| Error::Corrupt(format!("entry type {kind:?}")))?;
    let side: String = row.try_get(7)?;
    let fill = match kind {
        EntryKind::OrderAccepted => None,
        EntryKind::Fill => {
            let id: i64 = row.try_get(0)?;
            let need = |v: Option<i64>, what: &str| {
                v.ok_or_else(|| Error::Corrupt(format!("fill {id} without {what}")))
            };
            Some(FillFields {
                filled_qty_delta: need(row.try_get(8)?, "filled_qty_delta")?,
                filled_qty_total: need(row.try_get(9)?, "filled_qty_total")?,
                price: row.try_get(10)?,
                quote_ccy: row
                    .try_get::<Option<String>, _>(11)?
                    .ok_or_else(|| Error::Corrupt(format!("fill {id} without quote_ccy")))?,
                quote_cash_delta: need(row.try_get(12)?, "quote_cash_delta")?,
                fee_quote: need(row.try_get(13)?, "fee_quote")?,
            })
        }
    };
    Ok(LedgerEntry {
        id: row.try_get(0)?,
        at: row.try_get(1)?,
        at_ms: row.try_get(2)?,
        account_id: row.try_get(4)?,
        order_id: row.try_get(5)?,
        symbol: row.try_get(6)?,
        side: parse_side(&side)?,
        fill,
        source: row.try_get(14)?,
        seq: row.try_get(15)?,
    })
}

/// A `/ledger` query.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LedgerQuery {
    pub account_id: String,
    pub order_id: Option<String>,
    /// `at ≥ since`, epoch ms.
    pub since_ms: Option<i64>,
    /// `at > after`, epoch ms.
    pub after_ms: Option<i64>,
    /// Only these kinds (empty = both).
    pub kinds: Vec<EntryKind>,
    /// The newest `limit` matching entries are returned, oldest first.
    pub limit: i64,
}

pub async fn ledger(pool: &AnyPool, q: &LedgerQuery) -> Result<Vec<LedgerEntry>, Error> {
    let mut sql = format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE account_id = $1");
    let mut n = 1;
    let mut next = || {
        n += 1;
        n
    };
    if q.order_id.is_some() {
        let _ = write!(sql, " AND order_id = ${}", next());
    }
    if q.since_ms.is_some() {
        let _ = write!(sql, " AND at_ms >= ${}", next());
    }
    if q.after_ms.is_some() {
        let _ = write!(sql, " AND at_ms > ${}", next());
    }
    if q.kinds.len() == 1 {
        let _ = write!(sql, " AND entry_type = ${}", next());
    }
    let _ = write!(sql, " ORDER BY id DESC LIMIT ${}", next());
    let mut query = sqlx::query(&sql).bind(&q.account_id);
    if let Some(o) = &q.order_id {
        query = query.bind(o);
    }
    if let Some(s) = q.since_ms {
        query = query.bind(s);
    }
    if let Some(a) = q.after_ms {
        query = query.bind(a);
    }
    if q.kinds.len() == 1 {
        query = query.bind(q.kinds[0].as_str());
    }
    let rows = query.bind(q.limit).fetch_all(pool).await?;
    let mut out = rows
        .iter()
        .map(ledger_entry)
        .collect::<Result<Vec<_>, _>>()?;
    out.reverse();
    Ok(out)
}

/// The newest `limit` fills of an account, oldest first.
pub async fn fills(pool: &AnyPool, account: &str, limit: i64) -> Result<Vec<LedgerEntry>, Error> {
    ledger(
        pool,
        &LedgerQuery {
            account_id: account.to_owned(),
            kinds: vec![EntryKind::Fill],
            limit,
            ..LedgerQuery::default()
        },
    )
    .await
}

/// Reads ledger entries with `id > after_id` (optionally of one account), at most `limit`,
/// in ledger order: the page reader of a reconciliation.
pub async fn ledger_page(
    conn: &mut AnyConnection,
    account: Option<&str>,
    after_id: i64,
    limit: i64,
) -> Result<Vec<LedgerEntry>, Error> {
    let rows = match account {
        Some(a) => {
            let sql = format!(
                "SELECT {LEDGER_COLUMNS} FROM ledger WHERE account_id = $1 AND id > $2 ORDER BY id LIMIT $3"
            );
            sqlx::query(&sql)
                .bind(a)
                .bind(after_id)
                .bind(limit)
                .fetch_all(conn)
                .await?
        }
        None => {
            let sql =
                format!("SELECT {LEDGER_COLUMNS} FROM ledger WHERE id > $1 ORDER BY id LIMIT $2");
            sqlx::query(&sql)
                .bind(after_id)
                .bind(limit)
                .fetch_all(conn)
                .await?
        }
    };
    rows.iter().map(ledger_entry).collect()
}

/// Builds `SELECT <cols> FROM <table> [WHERE account_id = $1] ORDER BY <order>`.
fn by_account(cols: &str, table: &str, order: &str, account: Option<&str>) -> String {
    let filter = if account.is_some() {
        " WHERE account_id = $1"
    } else {
        ""
    };
    format!("SELECT {cols} FROM {table}{filter} ORDER BY {order}")
}

async fn fetch_by_account(
    conn: &mut AnyConnection,
    sql: &str,
    account: Option<&str>,
) -> Result<Vec<AnyRow>, Error> {
    let mut q = sqlx::query(sql);
    if let Some(a) = account {
        q = q.bind(a);
    }
    Ok(q.fetch_all(conn).await?)
}

/// Stored positions (of one account, or all).
pub async fn positions(
    conn: &mut AnyConnection,
    account: Option<&str>,
) -> Result<Vec<(PositionKey, Position)>, Error> {
    let sql = by_account(
        "account_id, symbol, net_qty, avg_price",
        "positions",
        "account_id, symbol",
        account,
    );
    fetch_by_account(conn, &sql, account)
        .await?
        .iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), position(r, 2)?)))
        .collect()
}

/// Stored balances: `((account, currency), amount)`.
pub async fn balances(
    conn: &mut AnyConnection,
    account: Option<&str>,
) -> Result<Vec<((String, String), i64)>, Error> {
    let sql = by_account(
        "account_id, currency, amount",
        "balances",
        "account_id, currency",
        account,
    );
    fetch_by_account(conn, &sql, account)
        .await?
        .iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?), r.try_get(2)?)))
        .collect()
}

/// Stored realized PnL: `((account, symbol, quote currency), pnl)`.
pub async fn realized_pnl(
    conn: &mut AnyConnection,
    account: Option<&str>,
) -> Result<Vec<((String, String, String), i64)>, Error> {
    let sql = by_account(
        "account_id, symbol, quote_ccy, realized_pnl",
        "realized_pnl",
        "account_id, symbol, quote_ccy",
        account,
    );
    fetch_by_account(conn, &sql, account)
        .await?
        .iter()
        .map(|r| Ok(((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?), r.try_get(3)?)))
        .collect()
}

/// Stored filled totals `(order id, total)` (of one account's orders, or all).
pub async fn filled_totals(
    conn: &mut AnyConnection,
    account: Option<&str>,
) -> Result<Vec<(String, i64)>, Error> {
    let sql = match account {
        Some(_) => "SELECT f.order_id, f.filled_total FROM order_filled_total f \
                    JOIN order_meta m ON m.order_id = f.order_id WHERE m.account_id = $1"
            .to_owned(),
        None => "SELECT order_id, filled_total FROM order_filled_total".to_owned(),
    };
    fetch_by_account(conn, &sql, account)
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Every stored stream position: `(stream, partition, next offset, updated at ms)`.
pub async fn consumer_positions(pool: &AnyPool) -> Result<Vec<(String, i32, i64, i64)>, Error> {
    let rows = sqlx::query(
        "SELECT stream, partition_id, next_offset, updated_at_ms FROM consumer_positions \
         ORDER BY stream, partition_id",
    )
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|r| {
            let partition: i64 = r.try_get(1)?;
            let partition = i32::try_from(partition)
                .map_err(|_| Error::Corrupt(format!("partition {partition}")))?;
            Ok((r.try_get(0)?, partition, r.try_get(2)?, r.try_get(3)?))
        })
        .collect()
}

/// Checks the connection (for `/health`-style probes and tests).
pub async fn ping(pool: &AnyPool) -> Result<(), Error> {
    let mut conn = pool.acquire().await?;
    conn.ping().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: a JSON batch parameter is read back column by column on either backend.
    #[test]
    fn json_row_sources() {
        assert_eq!(
            json_rows(Backend::Postgres, 1, &[Col::Text, Col::Int]),
            "SELECT r->>0, (r->>1)::bigint FROM jsonb_array_elements($1::text::jsonb) AS r"
        );
        assert_eq!(
            json_rows(Backend::Sqlite, 2, &[Col::Text]),
            "SELECT json_extract(r.value, '$[0]') FROM json_each($2) AS r WHERE true"
        );
        assert_eq!(
            json_list(Backend::Sqlite, 1, Col::Text),
            "SELECT value FROM json_each($1)"
        );
    }

    // Goal: URLs are sorted into backends, and SQLite files get their directory.
    #[test]
    fn urls() {
        assert_eq!(
            Backend::of_url("postgres://u@h/db"),
            Some(Backend::Postgres)
        );
        assert_eq!(Backend::of_url("sqlite::memory:"), Some(Backend::Sqlite));
        assert_eq!(Backend::of_url("mysql://x"), None);
        let dir = std::env::temp_dir().join(format!("bo-store-{}", std::process::id()));
        let url = format!("sqlite:{}/sub/bo.db?mode=rwc", dir.display());
        create_parent_dir(&url).unwrap();
        assert!(dir.join("sub").is_dir());
        let _ = std::fs::remove_dir_all(dir);
    }
}
