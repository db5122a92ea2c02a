//! Reconciliation: recompute every projection from the whole ledger with the booking rules
//! and compare it with what the store holds. Exact: every difference is reported, as
//! `diff = actual − expected`.
//!
//! The ledger and the projections are read in one snapshot (PostgreSQL REPEATABLE READ, an
//! SQLite read transaction), so a reconciliation running while batches are booked compares
//! a consistent state rather than reporting the batch in flight. The ledger is read in pages
//! of `PAGE` entries; what is held in memory is the recomputed projections (one entry per
//! position, balance, PnL line and filled order), not the ledger.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::books::{Books, PositionKey};
use crate::rules::Position;
use crate::store::{self, Store};
use crate::Error;

/// Ledger entries read per query.
const PAGE: i64 = 10_000;

/// What is compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum DiffKind {
    /// Net quantity of `(account, symbol)`; key = symbol.
    Position,
    /// Average price of `(account, symbol)`; key = symbol.
    AvgPrice,
    /// Balance of `(account, currency)`; key = currency.
    Balance,
    /// Realized PnL of `(account, symbol, quote currency)`; key = `symbol/currency`.
    RealizedPnl,
    /// Filled total of an order; key = order id.
    FilledTotal,
}

/// One projection value that does not match the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Difference {
    pub account_id: String,
    pub kind: DiffKind,
    pub key: String,
    /// From the ledger; `None` when the ledger implies no such row (or a null average).
    pub expected: Option<i64>,
    /// From the store; `None` when it has no such row (or a null average).
    pub actual: Option<i64>,
    /// `actual − expected`, a missing value counting as 0.
    pub diff: i64,
}

/// The projections, keyed for comparison.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projections {
    pub positions: BTreeMap<PositionKey, Position>,
    /// `(account, currency)` → amount
    pub balances: BTreeMap<(String, String), i64>,
    /// `(account, symbol, quote currency)` → realized PnL
    pub pnl: BTreeMap<(String, String, String), i64>,
    /// order id → `(account, filled total)`
    pub filled: BTreeMap<String, (String, i64)>,
}

impl Projections {
    /// The projections `books` hold (the account of each filled order from its metadata).
    pub fn of_books(books: &Books) -> Projections {
        Projections {
            positions: books
                .positions
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            balances: books
                .balances
                .iter()
                .map(|(k, v)| (k.clone(), *v))
                .collect(),
            pnl: books.pnl.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            filled: books
                .filled
                .iter()
                .map(|(order, total)| {
                    let account = books
                        .orders
                        .get(order)
                        .map_or_else(String::new, |m| m.account_id.clone());
                    (order.clone(), (account, *total))
                })
                .collect(),
        }
    }
}

/// The result of a reconciliation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// The account reconciled, or `None` for the whole database.
    pub account_id: Option<String>,
    /// Ledger entries replayed.
    pub ledger_entries: u64,
    /// Recomputed from the ledger.
    pub expected: Projections,
    /// Read from the store.
    pub actual: Projections,
    /// Every mismatch, in key order.
    pub differences: Vec<Difference>,
    /// Ids of ledger entries the rules refuse on replay (arithmetic overflow): never
    /// expected, since booking refuses them before they reach the ledger.
    pub invalid_entries: Vec<i64>,
}

impl Reconciliation {
    /// True when the store matches the ledger exactly.
    pub fn ok(&self) -> bool {
        self.differences.is_empty() && self.invalid_entries.is_empty()
    }
}

/// Reconciles one account (`Some`) or the whole database (`None`).
pub async fn reconcile(store: &Store, account: Option<&str>) -> Result<Reconciliation, Error> {
    let mut tx = store.begin_snapshot().await?;
    let mut books = Books::default();
    let mut entries = 0u64;
    let mut invalid = Vec::new();
    let mut after = 0;
    loop {
        let page = store::ledger_page(&mut tx, account, after, PAGE).await?;
        for e in &page {
            if books.post(e).is_err() {
                invalid.push(e.id);
            }
        }
        entries += page.len() as u64;
        match page.last() {
            Some(last) if page.len() as i64 == PAGE => after = last.id,
            _ => break,
        }
    }
    let actual = Projections {
        positions: store::positions(&mut tx, account)
            .await?
            .into_iter()
            .collect(),
        balances: store::balances(&mut tx, account)
            .await?
            .into_iter()
            .collect(),
        pnl: store::realized_pnl(&mut tx, account)
            .await?
            .into_iter()
            .collect(),
        filled: filled_with_accounts(&mut tx, account, &books).await?,
    };
    tx.rollback().await?;
    let expected = Projections::of_books(&books);
    let differences = compare(&expected, &actual);
    Ok(Reconciliation {
        account_id: account.map(str::to_owned),
        ledger_entries: entries,
        expected,
        actual,
        differences,
        invalid_entries: invalid,
    })
}

/// Stored filled totals with their accounts (from the stored order metadata when an account
/// is given, which the query filters on; else from the recomputed books, falling back to
/// "" for an order the ledger does not know).
async fn filled_with_accounts(
    conn: &mut sqlx::AnyConnection,
    account: Option<&str>,
    books: &Books,
) -> Result<BTreeMap<String, (String, i64)>, Error> {
    let rows = store::filled_totals(conn, account).await?;
    Ok(rows
        .into_iter()
        .map(|(order, total)| {
            let acct = match account {
                Some(a) => a.to_owned(),
                None => books
                    .orders
                    .get(&order)
                    .map_or_else(String::new, |m| m.account_id.clone()),
            };
            (order, (acct, total))
        })
        .collect())
}

/// Every difference between two sets of projections, in key order.
pub fn compare(expected: &Projections, actual: &Projections) -> Vec<Difference> {
    let mut out = Vec::new();
    let mut push = |account: &str, kind, key: String, e: Option<i64>, a: Option<i64>| {
        if e != a {
            out.push(Difference {
                account_id: account.to_owned(),
                kind,
                key,
                expected: e,
                actual: a,
                diff: a.unwrap_or(0).saturating_sub(e.unwrap_or(0)),
            });
        }
    };
    for key in union(&expected.positions, &actual.positions) {
        let (e, a) = (expected.positions.get(key), actual.positions.get(key));
        let symbol = key.1.clone();
        push(
            &key.0,
            DiffKind::Position,
            symbol.clone(),
            e.map(|p| p.net_qty),
            a.map(|p| p.net_qty),
        );
        push(
            &key.0,
            DiffKind::AvgPrice,
            symbol,
            e.and_then(|p| p.avg_price),
            a.and_then(|p| p.avg_price),
        );
    }
    for key in union(&expected.balances, &actual.balances) {
        let (e, a) = (expected.balances.get(key), actual.balances.get(key));
        push(
            &key.0,
            DiffKind::Balance,
            key.1.clone(),
            e.copied(),
            a.copied(),
        );
    }
    for key in union(&expected.pnl, &actual.pnl) {
        let (e, a) = (expected.pnl.get(key), actual.pnl.get(key));
        push(
            &key.0,
            DiffKind::RealizedPnl,
            format!("{}/{}", key.1, key.2),
            e.copied(),
            a.copied(),
        );
    }
    for order in union(&expected.filled, &actual.filled) {
        let (e, a) = (expected.filled.get(order), actual.filled.get(order));
        let account = e.or(a).map_or("", |(acct, _)| acct.as_str());
        push(
            account,
            DiffKind::FilledTotal,
            order.clone(),
            e.map(|x| x.1),
            a.map(|x| x.1),
        );
    }
    out
}

fn union<'a, K: Ord, V>(a: &'a BTreeMap<K, V>, b: &'a BTreeMap<K, V>) -> BTreeSet<&'a K> {
    a.keys().chain(b.keys()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: equal projections give no difference; each kind of mismatch is reported once
    // with diff = actual − expected, including rows only one side has.
    #[test]
    fn compare_reports_every_mismatch() {
        let mut e = Projections::default();
        let k = ("a".to_string(), "BTC".to_string());
        e.positions.insert(
            k.clone(),
            Position {
                net_qty: 5,
                avg_price: Some(100),
            },
        );
        e.balances.insert(("a".into(), "JPY".into()), -500);
        e.pnl.insert(("a".into(), "BTC".into(), "JPY".into()), 0);
        e.filled.insert("o1".into(), ("a".into(), 5));
        assert!(compare(&e, &e).is_empty());
        let mut a = e.clone();
        a.positions.insert(
            k,
            Position {
                net_qty: 4,
                avg_price: None,
            },
        );
        a.balances.insert(("a".into(), "JPY".into()), -490);
        a.pnl.clear();
        a.filled.insert("o2".into(), ("a".into(), 1));
        let d = compare(&e, &a);
        let summary: Vec<_> = d.iter().map(|d| (d.kind, d.key.as_str(), d.diff)).collect();
        assert_eq!(
            summary,
            vec![
                (DiffKind::Position, "BTC", -1),
                (DiffKind::AvgPrice, "BTC", -100),
                (DiffKind::Balance, "JPY", 10),
                (DiffKind::RealizedPnl, "BTC/JPY", 0),
                (DiffKind::FilledTotal, "o2", 1),
            ]
        );
        assert_eq!((d[3].expected, d[3].actual), (Some(0), None));
    }
}
