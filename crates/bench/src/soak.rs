//! Soak with faults: `switchyard bench soak run | check | proxy`.
//!
//! **run** drives durable `POST /orders` load (`Durability: local`) at a fixed rate for a
//! fixed time, open loop (the pacer of [`crate::open_loop`]), over keep-alive connections of
//! the hand-written client. Every order carries a unique `Idempotency-Key` (also its
//! `clientOrderId`); a mix of marketable orders (`MARKET IOC`, they fill at once) and resting
//! ones (`LIMIT GTC` far from the market, they stay open). Unlike `bench open`, an order whose
//! answer never came (the connection died: a gateway killed mid-request), that was answered
//! 503 `DURABILITY_WAIT_TIMEOUT`, or whose resend was answered 202 with `durability: volatile`
//! (a replay answers at once with the level the order has reached) is **sent again with the
//! same key** until it is answered `local` or `--retry-for` has passed — what a client that
//! wants `local` must do when a gateway restarts under it or its disk is slow. Each
//! connection has at most one order outstanding, so at most `--connections` orders wait for
//! a retry at any time. Every acknowledged order goes as one line to the `--acked` file
//! (`account key orderId kind durability retried`, tab-separated): memory stays bounded
//! whatever the length of the run. Latency is measured from each order's *intended* send time
//! to its 202 (retries and outages included, no coordinated omission) and kept per minute.
//!
//! **check** verifies a run afterwards: it reads the gateway's journal (`switchyard journal
//! dump`, streamed on stdin or from a file), the venues' state logs and the acked file, and
//! optionally asks the running gateway (`GET /orders/{id}` for every acked order) and the back
//! office (`/positions` and `/reconcile` per account). It counts *lost* orders (acknowledged
//! but absent from the journal, or unknown to the gateway), *duplicates* (a key that created
//! two orders, an order id journaled twice, a key answered with another order than the
//! journal has, an order created twice at a venue or held by two venues, a venue order the
//! journal does not know), and whether the venues, the gateway and the back office agree on
//! the fills. It keeps per order a few words keyed by 64-bit hashes, not the keys themselves.
//! Exit status 1 when anything was lost, duplicated or disagrees.
//!
//! **proxy** forwards TCP connections (`--listen` → `--to`). The soak puts it between the
//! clients of the broker and the broker, so that killing the proxy is a broker outage with
//! connections reset and refused, without losing the data of a broker that keeps its
//! topics in memory.
//!
//! `scripts/soak.sh` runs the whole stack with faults around these; the integration test
//! `crates/switchyard/tests/soak.rs` is its short version.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::config::account_name;
use crate::http_client::{find_reason, find_str_field, HttpConn};
use crate::open_loop::{pace_with, Schedule};
use crate::report::LatencySummary;
use crate::stats::new_histogram;
use crate::timeline::preconnect;

/// Pause before a retry or a reconnection attempt.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// Symbols and the venues' default reference prices (minor units): resting orders are priced
/// far from them (a BUY at half, a SELL at twice), so they stay open.
const SYMBOLS: [(&str, u64); 6] = [
    ("AAPL", 19_000),
    ("MSFT", 42_000),
    ("NVDA", 12_000),
    ("BTC", 6_000_000),
    ("ETH", 300_000),
    ("SOL", 15_000),
];

#[derive(Debug, Clone, Subcommand)]
pub enum SoakCommand {
    /// Durable `POST /orders` load at a fixed rate; unanswered orders are retried with the
    /// same Idempotency-Key; every acknowledged order is written to `--acked`.
    Run(RunArgs),
    /// Verify a run: lost and duplicated orders, fills of venues, gateway and back office.
    Check(CheckArgs),
    /// Forward TCP connections from `--listen` to `--to` until killed.
    Proxy(ProxyArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The gateway's HTTP listener, host:port.
    #[arg(long, default_value = "127.0.0.1:8081")]
    pub target: String,
    /// HS256 secret to sign the accounts' tokens with.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub secret: String,
    /// Orders per second over all connections.
    #[arg(long, default_value_t = 10_000.0)]
    pub rate: f64,
    /// Seconds of load.
    #[arg(long, default_value_t = 300)]
    pub duration: u64,
    #[arg(long, default_value_t = 64)]
    pub connections: usize,
    /// Accounts bench-0 .. bench-{n-1}; connection c uses account c % n.
    #[arg(long, default_value_t = 16)]
    pub accounts: usize,
    /// Percentage of resting orders (LIMIT GTC far from the market); the rest are
    /// marketable (MARKET IOC).
    #[arg(long, default_value_t = 30)]
    pub resting_pct: u8,
    /// Seconds an order may fall behind its intended send time before it is skipped.
    #[arg(long, default_value_t = 5.0)]
    pub max_lag: f64,
    /// Seconds an unanswered order is retried (same key) before it counts as unresolved.
    #[arg(long, default_value_t = 120)]
    pub retry_for: u64,
    /// Seconds to wait for an answer before the connection is dropped and the order retried.
    #[arg(long, default_value_t = 10)]
    pub reply_timeout: u64,
    /// See `bench open --spin-us`.
    #[arg(long, default_value_t = 50)]
    pub spin_us: u64,
    /// Keys are `<prefix>-<connection>-<n>` (default: `s` and the start time in hex).
    #[arg(long)]
    pub key_prefix: Option<String>,
    /// File every acknowledged order is appended to (created or truncated).
    #[arg(long)]
    pub acked: PathBuf,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Seconds between progress lines on stderr (0: none).
    #[arg(long, default_value_t = 10)]
    pub progress: u64,
}

impl RunArgs {
    pub fn validate(&self) -> anyhow::Result<()> {
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1e9) {
            bail!("--rate must be a positive number of orders per second");
        }
        if self.duration == 0 {
            bail!("--duration must be at least 1 second");
        }
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.accounts == 0 {
            bail!("--accounts must be at least 1");
        }
        if self.resting_pct > 100 {
            bail!("--resting-pct must be 0..=100");
        }
        if !(self.max_lag.is_finite() && self.max_lag > 0.0) {
            bail!("--max-lag must be a positive number of seconds");
        }
        if self.reply_timeout == 0 {
            bail!("--reply-timeout must be at least 1 second");
        }
        if let Some(p) = &self.key_prefix {
            if p.is_empty() || p.len() > 64 || !p.bytes().all(|b| b.is_ascii_alphanumeric()) {
                bail!("--key-prefix must be 1-64 letters or digits");
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    /// The acked file of the run.
    #[arg(long)]
    pub acked: PathBuf,
    /// Output of `switchyard journal dump` for the gateway's journal (`-`: stdin).
    #[arg(long, default_value = "-")]
    pub journal: String,
    /// A venue's state log (`venue-<name>.jsonl`); repeat for each venue.
    #[arg(long = "venue-log")]
    pub venue_logs: Vec<PathBuf>,
    /// The gateway's `GATEWAY_ID` (venues keep orders per gateway identity).
    #[arg(long, default_value = "switchyard-1")]
    pub gateway_id: String,
    /// The running gateway, host:port: `GET /orders/{id}` for every acked order.
    #[arg(long)]
    pub target: Option<String>,
    /// The back office, host:port: `/positions` and `/reconcile` of every account.
    #[arg(long)]
    pub backoffice: Option<String>,
    /// Seconds to keep asking the back office while its books do not match the journal yet.
    #[arg(long, default_value_t = 300)]
    pub backoffice_wait: u64,
    /// HS256 secret for the tokens of `--target` and `--backoffice`.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// Connections for the `GET /orders/{id}` checks.
    #[arg(long, default_value_t = 16)]
    pub connections: usize,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct ProxyArgs {
    #[arg(long)]
    pub listen: String,
    #[arg(long)]
    pub to: String,
}

/// Runs one soak subcommand; returns the process exit code.
pub async fn run(cmd: SoakCommand) -> anyhow::Result<i32> {
    match cmd {
        SoakCommand::Run(a) => {
            a.validate()?;
            eprintln!(
                "soak: POST /orders (local) to {} at {}/s for {} s, {} connections, {} accounts, {} % resting",
                a.target, a.rate, a.duration, a.connections, a.accounts, a.resting_pct
            );
            let report = run_soak(&a).await?;
            print!("{}", report.human());
            if let Some(path) = &a.json {
                write_json(path, &report)?;
            }
            Ok(0)
        }
        SoakCommand::Check(a) => {
            let report = run_check(&a).await?;
            print!("{}", report.human());
            if let Some(path) = &a.json {
                write_json(path, &report)?;
            }
            Ok(if report.ok { 0 } else { 1 })
        }
        SoakCommand::Proxy(a) => {
            proxy(&a.listen, &a.to).await?;
            Ok(0)
        }
    }
}

fn write_json(path: &std::path::Path, v: &impl Serialize) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(v)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

async fn resolve(target: &str) -> anyhow::Result<SocketAddr> {
    tokio::net::lookup_host(target)
        .await
        .with_context(|| format!("cannot resolve {target:?} (want host:port)"))?
        .next()
        .with_context(|| format!("{target:?} resolves to no address"))
}

// ---------------------------------------------------------------------------------------------
// run

/// What an order is: the marketable ones fill, the resting ones stay open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Marketable,
    Resting,
}

impl Kind {
    fn letter(self) -> char {
        match self {
            Kind::Marketable => 'm',
            Kind::Resting => 'r',
        }
    }
}

/// splitmix64: a cheap, well-mixed hash of the order's coordinates.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The JSON body of order `n` of connection `c` (deterministic), and its kind.
pub fn order_body(c: usize, n: u64, resting_pct: u8, key: &str) -> (String, Kind) {
    let r = mix(((c as u64) << 40) ^ n);
    let (symbol, reference) = SYMBOLS[((r >> 8) % SYMBOLS.len() as u64) as usize];
    let buy = (r >> 16) & 1 == 0;
    let side = if buy { "BUY" } else { "SELL" };
    let qty = 1 + (r >> 20) % 3;
    if (r % 100) < u64::from(resting_pct) {
        let jitter = (r >> 32) % 100;
        let price = if buy {
            reference / 2 - jitter
        } else {
            reference * 2 + jitter
        };
        (
            format!(
                r#"{{"symbol":"{symbol}","side":"{side}","type":"LIMIT","qty":{qty},"price":{price},"timeInForce":"GTC","clientOrderId":"{key}"}}"#
            ),
            Kind::Resting,
        )
    } else {
        (
            format!(
                r#"{{"symbol":"{symbol}","side":"{side}","type":"MARKET","qty":{qty},"timeInForce":"IOC","clientOrderId":"{key}"}}"#
            ),
            Kind::Marketable,
        )
    }
}

/// `POST /orders` at `local` with `key`, into `out` (reused between orders).
pub fn order_request(out: &mut Vec<u8>, host: &str, token: &str, key: &str, body: &str) {
    out.clear();
    // Writing into a Vec cannot fail.
    let _ = write!(
        VecWriter(out),
        "POST /orders HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nDurability: local\r\nIdempotency-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
}

struct VecWriter<'a>(&'a mut Vec<u8>);

impl std::fmt::Write for VecWriter<'_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

/// Counters the progress line reads while the run goes on.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    acked: AtomicU64,
    refused: AtomicU64,
    late: AtomicU64,
    retrying: AtomicU64,
    retried: AtomicU64,
}

struct RunCtx {
    addr: SocketAddr,
    host: String,
    start: Instant,
    max_lag: Duration,
    retry_for: Duration,
    reply_timeout: Duration,
    resting_pct: u8,
    prefix: String,
    acked: Mutex<BufWriter<std::fs::File>>,
    progress: Progress,
}

/// One connection's results, merged at the end.
#[derive(Debug)]
struct SoakStats {
    sent: u64,
    acked: u64,
    acked_durable: u64,
    acked_marketable: u64,
    acked_resting: u64,
    acked_after_retry: u64,
    retried: u64,
    refusals: BTreeMap<String, u64>,
    unresolved: u64,
    skipped_late: u64,
    io_errors: u64,
    connect_errors: u64,
    wait_timeouts: u64,
    not_durable_replays: u64,
    bad_answers: u64,
    latency: Histogram<u64>,
    /// Latency of acked orders by the minute of their intended send time.
    per_minute: Vec<Histogram<u64>>,
}

impl SoakStats {
    fn new() -> SoakStats {
        SoakStats {
            sent: 0,
            acked: 0,
            acked_durable: 0,
            acked_marketable: 0,
            acked_resting: 0,
            acked_after_retry: 0,
            retried: 0,
            refusals: BTreeMap::new(),
            unresolved: 0,
            skipped_late: 0,
            io_errors: 0,
            connect_errors: 0,
            wait_timeouts: 0,
            not_durable_replays: 0,
            bad_answers: 0,
            latency: new_histogram(),
            per_minute: Vec::new(),
        }
    }

    fn record(&mut self, minute: usize, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(ns);
        while self.per_minute.len() <= minute {
            self.per_minute.push(new_histogram());
        }
        self.per_minute[minute].saturating_record(ns);
    }

    fn merge(&mut self, o: SoakStats) {
        self.sent += o.sent;
        self.acked += o.acked;
        self.acked_durable += o.acked_durable;
        self.acked_marketable += o.acked_marketable;
        self.acked_resting += o.acked_resting;
        self.acked_after_retry += o.acked_after_retry;
        self.retried += o.retried;
        for (k, v) in o.refusals {
            *self.refusals.entry(k).or_insert(0) += v;
        }
        self.unresolved += o.unresolved;
        self.skipped_late += o.skipped_late;
        self.io_errors += o.io_errors;
        self.connect_errors += o.connect_errors;
        self.wait_timeouts += o.wait_timeouts;
        self.not_durable_replays += o.not_durable_replays;
        self.bad_answers += o.bad_answers;
        // Same bounds everywhere: adding cannot fail.
        let _ = self.latency.add(&o.latency);
        for (i, h) in o.per_minute.into_iter().enumerate() {
            while self.per_minute.len() <= i {
                self.per_minute.push(new_histogram());
            }
            let _ = self.per_minute[i].add(&h);
        }
    }
}

/// The outcome of one order after all its attempts.
enum Outcome {
    Acked {
        order_id: String,
        durability: String,
    },
    Refused(String),
    Unresolved,
}

/// The outcome when `--retry-for` has passed: acknowledged but not durable if a replay
/// named the order, else unresolved.
fn gave_up(not_durable: Option<String>) -> Outcome {
    match not_durable {
        Some(order_id) => Outcome::Acked {
            order_id,
            durability: "volatile".to_string(),
        },
        None => Outcome::Unresolved,
    }
}

async fn conn_task(
    ctx: Arc<RunCtx>,
    c: usize,
    account: String,
    token: String,
    mut conn: Option<HttpConn>,
    mut rx: mpsc::UnboundedReceiver<Instant>,
) -> SoakStats {
    let mut st = SoakStats::new();
    let mut n = 0u64;
    let mut request = Vec::with_capacity(1024);
    let mut line = String::with_capacity(160);
    while let Some(intended) = rx.recv().await {
        if Instant::now().saturating_duration_since(intended) > ctx.max_lag {
            st.skipped_late += 1;
            ctx.progress.late.fetch_add(1, Ordering::Relaxed);
            continue;
        }
        n += 1;
        let key = format!("{}-{c}-{n}", ctx.prefix);
        let (body, kind) = order_body(c, n, ctx.resting_pct, &key);
        order_request(&mut request, &ctx.host, &token, &key, &body);
        st.sent += 1;
        ctx.progress.sent.fetch_add(1, Ordering::Relaxed);
        let first = Instant::now();
        let mut retried = false;
        // A 202 that replayed the key of an order not yet durable (`durability: volatile`).
        let mut not_durable: Option<String> = None;
        let outcome = loop {
            if conn.is_none() {
                match HttpConn::connect(ctx.addr).await {
                    Ok(new) => conn = Some(new),
                    Err(_) => {
                        st.connect_errors += 1;
                        if first.elapsed() > ctx.retry_for {
                            break gave_up(not_durable.take());
                        }
                        if !retried {
                            retried = true;
                            ctx.progress.retrying.fetch_add(1, Ordering::Relaxed);
                        }
                        tokio::time::sleep(RETRY_PAUSE).await;
                        continue;
                    }
                }
            }
            let Some(live) = conn.as_mut() else { continue };
            let answer = tokio::time::timeout(ctx.reply_timeout, live.roundtrip(&request)).await;
            let again = match answer {
                Ok(Ok(reply)) => {
                    if reply.close {
                        conn = None;
                    }
                    let body = reply.body();
                    match reply.status {
                        202 => {
                            match (
                                find_str_field(body, "orderId"),
                                find_str_field(body, "durability"),
                            ) {
                                (Some(id), Some("local" | "replicated")) if !id.is_empty() => {
                                    break Outcome::Acked {
                                        order_id: id.to_string(),
                                        durability: "local".to_string(),
                                    }
                                }
                                // A replay answers at once with the level the order has
                                // reached (its first answer was lost or timed out): a client
                                // that wants `local` asks again until the order is durable.
                                (Some(id), Some(_)) if !id.is_empty() => {
                                    st.not_durable_replays += 1;
                                    not_durable = Some(id.to_string());
                                    true
                                }
                                _ => {
                                    st.bad_answers += 1;
                                    break Outcome::Refused("202 without orderId".into());
                                }
                            }
                        }
                        // The order stays and a resend finds it: resend.
                        503 if find_reason(body) == Some("DURABILITY_WAIT_TIMEOUT") => {
                            st.wait_timeouts += 1;
                            true
                        }
                        s => {
                            break Outcome::Refused(format!(
                                "{s} {}",
                                find_reason(body).unwrap_or("-")
                            ))
                        }
                    }
                }
                // No answer (killed gateway, reset, timeout): the order may or may not exist.
                Ok(Err(_)) | Err(_) => {
                    st.io_errors += 1;
                    conn = None;
                    true
                }
            };
            if again {
                if first.elapsed() > ctx.retry_for {
                    break gave_up(not_durable.take());
                }
                if !retried {
                    retried = true;
                    ctx.progress.retrying.fetch_add(1, Ordering::Relaxed);
                }
                tokio::time::sleep(RETRY_PAUSE).await;
            }
        };
        if retried {
            st.retried += 1;
            ctx.progress.retrying.fetch_sub(1, Ordering::Relaxed);
            ctx.progress.retried.fetch_add(1, Ordering::Relaxed);
        }
        match outcome {
            Outcome::Acked {
                order_id,
                durability,
            } => {
                st.acked += 1;
                ctx.progress.acked.fetch_add(1, Ordering::Relaxed);
                if durability == "local" || durability == "replicated" {
                    st.acked_durable += 1;
                }
                match kind {
                    Kind::Marketable => st.acked_marketable += 1,
                    Kind::Resting => st.acked_resting += 1,
                }
                if retried {
                    st.acked_after_retry += 1;
                }
                let minute =
                    (intended.saturating_duration_since(ctx.start).as_secs() / 60) as usize;
                st.record(minute, intended.elapsed());
                line.clear();
                let _ = writeln!(
                    line,
                    "{account}\t{key}\t{order_id}\t{}\t{durability}\t{}",
                    kind.letter(),
                    u8::from(retried)
                );
                let mut w = ctx.acked.lock().unwrap_or_else(|e| e.into_inner());
                if let Err(e) = w.write_all(line.as_bytes()) {
                    eprintln!("soak: cannot write the acked file: {e}");
                    std::process::exit(2);
                }
            }
            Outcome::Refused(what) => {
                ctx.progress.refused.fetch_add(1, Ordering::Relaxed);
                *st.refusals.entry(what).or_insert(0) += 1;
            }
            Outcome::Unresolved => st.unresolved += 1,
        }
    }
    st
}

/// Per-minute latency of acknowledged orders (by intended send time).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MinuteLatency {
    pub minute: usize,
    pub acked: u64,
    pub latency_us: LatencySummary,
}

/// What `soak run` reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunReport {
    pub target: String,
    pub rate: f64,
    pub duration_s: u64,
    pub connections: usize,
    pub accounts: usize,
    pub resting_pct: u8,
    pub key_prefix: String,
    /// Orders the schedule held.
    pub scheduled: u64,
    /// Orders sent at least once (each with its own key).
    pub sent: u64,
    /// Answered 202.
    pub acked: u64,
    /// Answered 202 with `durability` local (or better).
    pub acked_durable: u64,
    pub acked_marketable: u64,
    pub acked_resting: u64,
    /// Orders sent more than once (same key): no answer the first time.
    pub retried: u64,
    pub acked_after_retry: u64,
    /// Answered with a refusal ("status reason" → count).
    pub refusals: BTreeMap<String, u64>,
    pub refused: u64,
    /// Never answered within `--retry-for`.
    pub unresolved: u64,
    /// Skipped: due more than `--max-lag` ago when their connection got to them.
    pub skipped_late: u64,
    pub io_errors: u64,
    pub connect_errors: u64,
    pub durability_wait_timeouts: u64,
    /// 202 answers to a resent key whose order was not durable yet (asked again).
    pub not_durable_replays: u64,
    pub bad_answers: u64,
    /// Intended send time → 202, acked orders.
    pub latency_us: LatencySummary,
    pub per_minute: Vec<MinuteLatency>,
    pub elapsed_s: f64,
}

impl RunReport {
    pub fn human(&self) -> String {
        let mut s = String::new();
        let l = &self.latency_us;
        let _ = writeln!(
            s,
            "soak run: {}/s for {} s to {}: scheduled {} sent {} acked {} (durable {}, after retry {}) refused {} unresolved {} skipped_late {}",
            self.rate, self.duration_s, self.target, self.scheduled, self.sent, self.acked,
            self.acked_durable, self.acked_after_retry, self.refused, self.unresolved,
            self.skipped_late
        );
        let _ = writeln!(
            s,
            "  marketable {} resting {}; retried {}; io errors {} connect errors {}; wait timeouts {}, not-durable replays {} (both asked again)",
            self.acked_marketable,
            self.acked_resting,
            self.retried,
            self.io_errors,
            self.connect_errors,
            self.durability_wait_timeouts,
            self.not_durable_replays
        );
        for (k, v) in &self.refusals {
            let _ = writeln!(s, "  refused {k}: {v}");
        }
        let _ = writeln!(
            s,
            "  latency (intended send → 202) p50 {} us p99 {} us p99.9 {} us max {} us",
            l.p50, l.p99, l.p999, l.max
        );
        for m in &self.per_minute {
            let _ = writeln!(
                s,
                "  minute {}: acked {} p50 {} us p99 {} us p99.9 {} us max {} us",
                m.minute,
                m.acked,
                m.latency_us.p50,
                m.latency_us.p99,
                m.latency_us.p999,
                m.latency_us.max
            );
        }
        s
    }
}

fn default_prefix() -> String {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    format!("s{t:x}")
}

/// Runs the soak load; returns its report once every connection is done.
pub async fn run_soak(a: &RunArgs) -> anyhow::Result<RunReport> {
    a.validate()?;
    let addr = resolve(&a.target).await?;
    let ttl = a.duration + a.retry_for + 3_600;
    let tokens: Vec<String> = (0..a.accounts)
        .map(|i| switchyard_auth::mint_dev(&a.secret, &account_name(i), ttl, None))
        .collect();
    let file = std::fs::File::create(&a.acked)
        .with_context(|| format!("cannot create {}", a.acked.display()))?;
    let prefix = a.key_prefix.clone().unwrap_or_else(default_prefix);
    let n = a.connections;
    let conns = preconnect(n, |_| HttpConn::connect(addr)).await;
    let start = Instant::now();
    let ctx = Arc::new(RunCtx {
        addr,
        host: a.target.clone(),
        start,
        max_lag: Duration::from_secs_f64(a.max_lag),
        retry_for: Duration::from_secs(a.retry_for),
        reply_timeout: Duration::from_secs(a.reply_timeout),
        resting_pct: a.resting_pct,
        prefix: prefix.clone(),
        acked: Mutex::new(BufWriter::with_capacity(1 << 20, file)),
        progress: Progress::default(),
    });
    let mut senders = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for (c, conn) in conns.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        let account = account_name(c % a.accounts);
        let token = tokens[c % a.accounts].clone();
        handles.push(tokio::spawn(conn_task(
            ctx.clone(),
            c,
            account,
            token,
            conn,
            rx,
        )));
    }
    let printer = (a.progress > 0).then(|| {
        let ctx = ctx.clone();
        let every = Duration::from_secs(a.progress);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let p = &ctx.progress;
                eprintln!(
                    "soak: t={:.0}s sent={} acked={} refused={} late={} retrying={} retried={}",
                    ctx.start.elapsed().as_secs_f64(),
                    p.sent.load(Ordering::Relaxed),
                    p.acked.load(Ordering::Relaxed),
                    p.refused.load(Ordering::Relaxed),
                    p.late.load(Ordering::Relaxed),
                    p.retrying.load(Ordering::Relaxed),
                    p.retried.load(Ordering::Relaxed),
                );
            }
        })
    });
    let schedule = Schedule::new(a.rate, n, Duration::from_secs(a.duration));
    let spin = Duration::from_micros(a.spin_us);
    let pacer = tokio::task::spawn_blocking(move || {
        pace_with(schedule, start, spin, |i, at| {
            senders[schedule.connection(i)].send(at).is_ok()
                || !senders.iter().all(|s| s.is_closed())
        })
    });
    pacer.await.context("the pacer failed")?;
    let mut total = SoakStats::new();
    for h in handles {
        total.merge(h.await.context("a connection task failed")?);
    }
    if let Some(p) = printer {
        p.abort();
    }
    ctx.acked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .flush()
        .context("cannot write the acked file")?;
    let per_minute = total
        .per_minute
        .iter()
        .enumerate()
        .map(|(minute, h)| MinuteLatency {
            minute,
            acked: h.len(),
            latency_us: LatencySummary::from_ns(h),
        })
        .collect();
    Ok(RunReport {
        target: a.target.clone(),
        rate: a.rate,
        duration_s: a.duration,
        connections: n,
        accounts: a.accounts,
        resting_pct: a.resting_pct,
        key_prefix: prefix,
        scheduled: schedule.len(),
        sent: total.sent,
        acked: total.acked,
        acked_durable: total.acked_durable,
        acked_marketable: total.acked_marketable,
        acked_resting: total.acked_resting,
        retried: total.retried,
        acked_after_retry: total.acked_after_retry,
        refused: total.refusals.values().sum(),
        refusals: total.refusals,
        unresolved: total.unresolved,
        skipped_late: total.skipped_late,
        io_errors: total.io_errors,
        connect_errors: total.connect_errors,
        durability_wait_timeouts: total.wait_timeouts,
        not_durable_replays: total.not_durable_replays,
        bad_answers: total.bad_answers,
        latency_us: LatencySummary::from_ns(&total.latency),
        per_minute,
        elapsed_s: start.elapsed().as_secs_f64(),
    })
}

// ---------------------------------------------------------------------------------------------
// check

/// A 64-bit hash of the parts (`DefaultHasher::new()` has fixed keys: the same for every
/// call in this process).
fn h64(parts: &[&str]) -> u64 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for p in parts {
        p.hash(&mut h);
    }
    h.finish()
}

/// `ord_<16 hex digits>` → the number.
fn parse_order_ref(s: &str) -> Option<u64> {
    let hex = s.strip_prefix("ord_")?;
    if hex.is_empty() || hex.len() > 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Interns short strings (accounts, symbols, statuses, venues) as small numbers.
#[derive(Debug, Default)]
struct Names {
    names: Vec<String>,
    index: HashMap<String, u16>,
}

impl Names {
    fn id(&mut self, name: &str) -> u16 {
        if let Some(&i) = self.index.get(name) {
            return i;
        }
        let i = self.names.len() as u16;
        self.names.push(name.to_string());
        self.index.insert(name.to_string(), i);
        i
    }

    fn name(&self, i: u16) -> &str {
        &self.names[i as usize]
    }
}

/// What the check keeps per journaled order.
#[derive(Debug, Clone, Copy)]
struct OrderEntry {
    account: u16,
    symbol: u16,
    /// +1 BUY, −1 SELL.
    side: i8,
    /// OrderAccepted records with this order id.
    accepted: u8,
    /// Last OrderUpdated status (`Names` index), or SENT after an OrderSent; u16::MAX while
    /// neither.
    status: u16,
    qty: u64,
    /// Highest filled total the gateway journaled.
    filled: u64,
    /// The back office's rule replayed on the journaled reports: last total booked.
    booked_total: u64,
    /// Bit per venue log that holds the order; creations (`O` lines before compaction
    /// rewrote them) summed over venues.
    venues: u8,
    venue_creations: u8,
    venue_filled: u64,
}

/// One journal line, as much of it as the check reads.
#[derive(Debug, Deserialize)]
struct JournalLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    data: JournalData<'a>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct JournalData<'a> {
    #[serde(default, borrow)]
    order_id: Option<IdField<'a>>,
    #[serde(default, borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    idempotency_key: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    symbol: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    side: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    status: Option<Cow<'a, str>>,
    #[serde(default)]
    qty: Option<u64>,
    #[serde(default)]
    filled_qty_total: Option<u64>,
    #[serde(default)]
    filled_qty_delta: Option<u64>,
    #[serde(default)]
    filled_qty: Option<u64>,
    #[serde(default)]
    status_report: Option<bool>,
}

/// Durable-path order ids are strings; v3 orders' are numbers (not checked here).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IdField<'a> {
    #[serde(borrow)]
    Str(Cow<'a, str>),
    #[allow(dead_code)]
    Num(u64),
}

impl IdField<'_> {
    fn order(&self) -> Option<u64> {
        match self {
            IdField::Str(s) => parse_order_ref(s),
            IdField::Num(_) => None,
        }
    }
}

/// One line of a venue's state log (`O`, `R`, `G`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VenueLine {
    t: String,
    #[serde(default)]
    gw: String,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    filled: u64,
    #[serde(default)]
    er: Option<VenueReport>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct VenueReport {
    order_id: String,
    #[serde(default)]
    filled_qty_total: u64,
}

/// The journal, venue and acked-file side of the check (no I/O of its own: lines in, figures
/// out), so that it can be tested on hand-made lines.
#[derive(Debug, Default)]
pub struct Checker {
    accounts: Names,
    symbols: Names,
    statuses: Names,
    orders: HashMap<u64, OrderEntry>,
    /// (account, key) hash → (orders created, the first order id).
    keys: HashMap<u64, (u32, u64)>,
    /// Per account: ledger entries the back office should hold (orders + fills booked).
    ledger: HashMap<u16, u64>,
    /// Per (account, symbol): position by the back office's rule replayed on the journal.
    booked_position: HashMap<(u16, u16), i64>,
    pub journal_records: u64,
    pub journal_bad_lines: u64,
    pub reports_unknown_order: u64,
    venue_unknown: Vec<u64>,
    venue_bad_lines: Vec<u64>,
    venue_names: Vec<String>,
    acked: AckedCounts,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AckedCounts {
    pub lines: u64,
    pub durable: u64,
    /// Acked, but no OrderAccepted with that key in the journal.
    pub missing_in_journal: u64,
    /// Acked with an order id the journal has under another key, or the key's order in the
    /// journal is another one.
    pub order_id_mismatch: u64,
    pub bad_lines: u64,
}

/// An acked order to ask the gateway about.
#[derive(Debug, Clone)]
pub struct AckedOrder {
    pub account: String,
    pub key: String,
    pub order_id: String,
    /// The journal's filled total, if the journal has the order.
    pub filled: Option<u64>,
}

impl Checker {
    pub fn new() -> Checker {
        Checker::default()
    }

    /// One line of `switchyard journal dump`.
    pub fn journal_line(&mut self, line: &str) {
        self.journal_records += 1;
        let Ok(rec) = serde_json::from_str::<JournalLine<'_>>(line) else {
            self.journal_bad_lines += 1;
            return;
        };
        let d = &rec.data;
        match &*rec.kind {
            "OrderAccepted" => {
                let (Some(id), Some(account), Some(key)) = (
                    d.order_id.as_ref().and_then(IdField::order),
                    d.account_id.as_deref(),
                    d.idempotency_key.as_deref(),
                ) else {
                    self.journal_bad_lines += 1;
                    return;
                };
                let acct = self.accounts.id(account);
                let symbol = self.symbols.id(d.symbol.as_deref().unwrap_or(""));
                let side = if d.side.as_deref() == Some("SELL") {
                    -1
                } else {
                    1
                };
                let kh = h64(&[account, key]);
                let k = self.keys.entry(kh).or_insert((0, id));
                k.0 += 1;
                *self.ledger.entry(acct).or_insert(0) += 1;
                let e = self.orders.entry(id).or_insert(OrderEntry {
                    account: acct,
                    symbol,
                    side,
                    accepted: 0,
                    status: u16::MAX,
                    qty: d.qty.unwrap_or(0),
                    filled: 0,
                    booked_total: 0,
                    venues: 0,
                    venue_creations: 0,
                    venue_filled: 0,
                });
                e.accepted = e.accepted.saturating_add(1);
            }
            "ExecutionReport" => {
                let Some(id) = d.order_id.as_ref().and_then(IdField::order) else {
                    return;
                };
                if d.account_id.as_deref().unwrap_or("").is_empty() {
                    return; // not an event: a report about an order the gateway does not know
                }
                let Some(e) = self.orders.get_mut(&id) else {
                    self.reports_unknown_order += 1;
                    return;
                };
                let total = d.filled_qty_total.unwrap_or(0);
                e.filled = e.filled.max(total);
                // The back office's rule (backoffice::rules::fill_qty): a report books only
                // when the total grew; the delta, clamped to the growth, unless it is a status
                // report or has no delta.
                if total > e.booked_total {
                    let growth = total - e.booked_total;
                    let qty = match d.filled_qty_delta {
                        _ if d.status_report == Some(true) => growth,
                        None | Some(0) => growth,
                        Some(delta) => delta.min(growth),
                    };
                    e.booked_total = total;
                    *self.ledger.entry(e.account).or_insert(0) += 1;
                    *self
                        .booked_position
                        .entry((e.account, e.symbol))
                        .or_insert(0) += i64::from(e.side) * qty as i64;
                }
            }
            "OrderSent" => {
                let Some(id) = d.order_id.as_ref().and_then(IdField::order) else {
                    return;
                };
                let sent = self.statuses.id("SENT");
                if let Some(e) = self.orders.get_mut(&id) {
                    if e.status == u16::MAX {
                        e.status = sent;
                    }
                }
            }
            "OrderUpdated" => {
                let Some(id) = d.order_id.as_ref().and_then(IdField::order) else {
                    return;
                };
                let status = self.statuses.id(d.status.as_deref().unwrap_or(""));
                if let Some(e) = self.orders.get_mut(&id) {
                    e.status = status;
                    e.filled = e.filled.max(d.filled_qty.unwrap_or(0));
                }
            }
            _ => {}
        }
    }

    /// Starts a venue's log; returns its index for [`Checker::venue_line`].
    pub fn add_venue(&mut self, name: &str) -> usize {
        self.venue_names.push(name.to_string());
        self.venue_unknown.push(0);
        self.venue_bad_lines.push(0);
        self.venue_names.len() - 1
    }

    /// One line of venue `v`'s state log; only the orders of `gateway_id` count.
    pub fn venue_line(&mut self, v: usize, gateway_id: &str, line: &str) {
        let Ok(l) = serde_json::from_str::<VenueLine>(line) else {
            self.venue_bad_lines[v] += 1;
            return;
        };
        if l.gw != gateway_id {
            return;
        }
        let (id, filled, creation) = match (l.t.as_str(), &l.order_id, &l.er) {
            ("O", Some(id), _) => (id.as_str(), l.filled, true),
            ("R", _, Some(er)) => (er.order_id.as_str(), er.filled_qty_total, false),
            _ => return,
        };
        let Some(e) = parse_order_ref(id).and_then(|id| self.orders.get_mut(&id)) else {
            if creation {
                self.venue_unknown[v] += 1;
            }
            return;
        };
        let bit = 1u8 << (v.min(7));
        e.venues |= bit;
        if creation {
            e.venue_creations = e.venue_creations.saturating_add(1);
        }
        e.venue_filled = e.venue_filled.max(filled);
    }

    /// One line of the acked file; the order to ask the gateway about.
    pub fn acked_line(&mut self, line: &str) -> Option<AckedOrder> {
        let mut f = line.split('\t');
        let (Some(account), Some(key), Some(order_id), _, Some(durability)) =
            (f.next(), f.next(), f.next(), f.next(), f.next())
        else {
            self.acked.bad_lines += 1;
            return None;
        };
        self.acked.lines += 1;
        if durability == "local" || durability == "replicated" {
            self.acked.durable += 1;
        }
        let id = parse_order_ref(order_id);
        let journaled = self.keys.get(&h64(&[account, key])).copied();
        let mut filled = None;
        match journaled {
            None => self.acked.missing_in_journal += 1,
            Some((_, first)) => {
                let same = id == Some(first)
                    && self
                        .orders
                        .get(&first)
                        .is_some_and(|e| self.accounts.name(e.account) == account);
                if !same {
                    self.acked.order_id_mismatch += 1;
                }
                filled = self.orders.get(&first).map(|e| e.filled);
            }
        }
        Some(AckedOrder {
            account: account.to_string(),
            key: key.to_string(),
            order_id: order_id.to_string(),
            filled,
        })
    }

    /// The accounts the journal has orders of.
    pub fn account_names(&self) -> Vec<String> {
        self.accounts.names.clone()
    }

    /// The journal's figures, the venues' and the duplicates.
    pub fn summary(&self) -> CheckSummary {
        let mut s = CheckSummary {
            journal_records: self.journal_records,
            journal_bad_lines: self.journal_bad_lines,
            orders: self.orders.len() as u64,
            keys: self.keys.len() as u64,
            reports_unknown_order: self.reports_unknown_order,
            acked: self.acked.clone(),
            ..CheckSummary::default()
        };
        s.keys_with_several_orders = self.keys.values().filter(|k| k.0 > 1).count() as u64;
        let mut by_status: BTreeMap<String, u64> = BTreeMap::new();
        let mut venues: Vec<VenueSummary> = self
            .venue_names
            .iter()
            .enumerate()
            .map(|(i, n)| VenueSummary {
                name: n.clone(),
                unknown_orders: self.venue_unknown[i],
                bad_lines: self.venue_bad_lines[i],
                ..VenueSummary::default()
            })
            .collect();
        for e in self.orders.values() {
            if e.accepted > 1 {
                s.order_ids_journaled_twice += 1;
            }
            let status = if e.status == u16::MAX {
                "ACCEPTED"
            } else {
                self.statuses.name(e.status)
            };
            *by_status.entry(status.to_string()).or_insert(0) += 1;
            s.filled_qty += e.filled;
            if e.filled > 0 {
                s.orders_with_fills += 1;
            }
            if e.qty > 0 && e.filled >= e.qty {
                s.filled_orders += 1;
            }
            if e.venues.count_ones() > 1 {
                s.orders_on_two_venues += 1;
            }
            if e.venues != 0 {
                s.venue_orders += 1;
                if e.venue_filled != e.filled {
                    s.venue_fill_mismatches += 1;
                }
                if e.venue_filled > 0 && e.venue_filled >= e.qty {
                    s.venue_filled_orders += 1;
                }
            }
            for (i, v) in venues.iter_mut().enumerate() {
                if e.venues & (1 << i.min(7)) != 0 {
                    v.orders += 1;
                    v.filled_qty += e.venue_filled;
                }
            }
            if u32::from(e.venue_creations) > e.venues.count_ones() {
                s.venue_orders_created_twice += 1;
            }
        }
        s.unknown_venue_orders = venues.iter().map(|v| v.unknown_orders).sum();
        s.by_status = by_status;
        s.venues = venues;
        s.lost = s.acked.missing_in_journal;
        s.duplicated = s.keys_with_several_orders
            + s.order_ids_journaled_twice
            + s.acked.order_id_mismatch
            + s.orders_on_two_venues
            + s.venue_orders_created_twice
            + s.unknown_venue_orders;
        s
    }

    /// Per account: the net position per symbol from the gateway's fills (truth: the highest
    /// filled total per order), by the back office's rule replayed on the journal, and the
    /// ledger entries the back office should have.
    pub fn expected_books(&self) -> BTreeMap<String, ExpectedBooks> {
        let mut out: BTreeMap<String, ExpectedBooks> = BTreeMap::new();
        for e in self.orders.values() {
            let b = out
                .entry(self.accounts.name(e.account).to_string())
                .or_default();
            b.orders += 1;
            *b.positions
                .entry(self.symbols.name(e.symbol).to_string())
                .or_insert(0) += i64::from(e.side) * e.filled as i64;
        }
        for (&(a, sym), &q) in &self.booked_position {
            let b = out.entry(self.accounts.name(a).to_string()).or_default();
            *b.booked_positions
                .entry(self.symbols.name(sym).to_string())
                .or_insert(0) += q;
        }
        for (&a, &n) in &self.ledger {
            out.entry(self.accounts.name(a).to_string())
                .or_default()
                .ledger_entries = n;
        }
        for b in out.values_mut() {
            b.positions.retain(|_, q| *q != 0);
            b.booked_positions.retain(|_, q| *q != 0);
        }
        out
    }
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExpectedBooks {
    pub positions: BTreeMap<String, i64>,
    pub booked_positions: BTreeMap<String, i64>,
    pub ledger_entries: u64,
    pub orders: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VenueSummary {
    pub name: String,
    /// Orders of this gateway the venue's log holds.
    pub orders: u64,
    pub filled_qty: u64,
    /// Orders in the venue's log that the gateway's journal does not have.
    pub unknown_orders: u64,
    pub bad_lines: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckSummary {
    pub journal_records: u64,
    pub journal_bad_lines: u64,
    /// Durable-path orders in the journal (OrderAccepted).
    pub orders: u64,
    pub keys: u64,
    pub by_status: BTreeMap<String, u64>,
    /// Orders filled completely (gateway's view).
    pub filled_orders: u64,
    pub orders_with_fills: u64,
    pub filled_qty: u64,
    pub reports_unknown_order: u64,
    pub acked: AckedCounts,
    pub keys_with_several_orders: u64,
    pub order_ids_journaled_twice: u64,
    pub venues: Vec<VenueSummary>,
    /// Orders some venue holds.
    pub venue_orders: u64,
    /// Orders filled completely (venues' view).
    pub venue_filled_orders: u64,
    pub venue_fill_mismatches: u64,
    pub orders_on_two_venues: u64,
    pub venue_orders_created_twice: u64,
    pub unknown_venue_orders: u64,
    /// Acked durable and missing (journal; the gateway check adds its own).
    pub lost: u64,
    pub duplicated: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayCheck {
    pub checked: u64,
    pub ok: u64,
    pub not_found: u64,
    /// Found, but another account or client order id than acked.
    pub mismatched: u64,
    /// The gateway's filledQty differs from the journal's (informational: the journal
    /// follows memory by a group commit).
    pub filled_differs: u64,
    pub errors: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackOfficeAccount {
    pub account: String,
    pub reconcile_ok: bool,
    pub ledger_entries: u64,
    pub expected_ledger_entries: u64,
    pub positions: BTreeMap<String, i64>,
    pub expected_positions: BTreeMap<String, i64>,
    pub positions_match: bool,
    /// The back office's rule replayed on the journal's reports gives its positions too
    /// (when `positions_match` is false, this tells a booking rule from a missing event).
    pub booked_positions_match: bool,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BackOfficeCheck {
    pub accounts: Vec<BackOfficeAccount>,
    pub reconcile_ok: bool,
    pub positions_match: bool,
    pub ledger_entries_match: bool,
    pub fills_booked: u64,
    /// Seconds the check waited for the back office to match.
    pub waited_s: u64,
}

#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CheckReport {
    pub ok: bool,
    pub lost: u64,
    pub duplicated: u64,
    pub summary: CheckSummary,
    pub gateway: Option<GatewayCheck>,
    pub backoffice: Option<BackOfficeCheck>,
    pub problems: Vec<String>,
}

impl CheckReport {
    pub fn human(&self) -> String {
        let s = &self.summary;
        let mut o = String::new();
        let _ = writeln!(
            o,
            "soak check: {} — lost {} duplicated {}",
            if self.ok { "OK" } else { "FAILED" },
            self.lost,
            self.duplicated
        );
        let _ = writeln!(
            o,
            "  journal: {} records, {} orders ({} keys), statuses {:?}; filled {} orders, {} with fills, {} qty",
            s.journal_records, s.orders, s.keys, s.by_status, s.filled_orders,
            s.orders_with_fills, s.filled_qty
        );
        let _ = writeln!(
            o,
            "  acked: {} ({} durable): missing in journal {}, other order than journaled {}",
            s.acked.lines, s.acked.durable, s.acked.missing_in_journal, s.acked.order_id_mismatch
        );
        let _ = writeln!(
            o,
            "  duplicates: keys with several orders {}, order ids journaled twice {}, on two venues {}, created twice at a venue {}, unknown to the journal {}",
            s.keys_with_several_orders, s.order_ids_journaled_twice, s.orders_on_two_venues,
            s.venue_orders_created_twice, s.unknown_venue_orders
        );
        for v in &s.venues {
            let _ = writeln!(
                o,
                "  venue {}: {} orders, filled qty {}",
                v.name, v.orders, v.filled_qty
            );
        }
        let _ = writeln!(
            o,
            "  venues hold {} orders, {} filled; fills differing from the gateway's: {}",
            s.venue_orders, s.venue_filled_orders, s.venue_fill_mismatches
        );
        if let Some(g) = &self.gateway {
            let _ = writeln!(
                o,
                "  gateway GET /orders/{{id}}: {} checked, {} ok, {} not found, {} mismatched, {} errors, {} filledQty differs",
                g.checked, g.ok, g.not_found, g.mismatched, g.errors, g.filled_differs
            );
        }
        if let Some(b) = &self.backoffice {
            let _ = writeln!(
                o,
                "  back office: {} accounts, reconcile ok {}, positions match the gateway's fills {}, ledger entries match {}, fills booked {}",
                b.accounts.len(), b.reconcile_ok, b.positions_match, b.ledger_entries_match,
                b.fills_booked
            );
        }
        for p in &self.problems {
            let _ = writeln!(o, "  problem: {p}");
        }
        o
    }
}

fn open_lines(path: &str) -> anyhow::Result<Box<dyn BufRead>> {
    Ok(if path == "-" {
        Box::new(BufReader::with_capacity(1 << 20, std::io::stdin()))
    } else {
        let f = std::fs::File::open(path).with_context(|| format!("cannot open {path}"))?;
        Box::new(BufReader::with_capacity(1 << 20, f))
    })
}

/// Calls `f` with every line (without its newline) of `r`.
fn for_each_line(mut r: impl BufRead, mut f: impl FnMut(&str)) -> anyhow::Result<()> {
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let l = line.trim_end_matches(['\n', '\r']);
        if !l.is_empty() {
            f(l);
        }
    }
}

/// Runs the whole check.
pub async fn run_check(a: &CheckArgs) -> anyhow::Result<CheckReport> {
    let mut ck = Checker::new();
    for_each_line(open_lines(&a.journal)?, |l| ck.journal_line(l))?;
    for path in &a.venue_logs {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let v = ck.add_venue(&name);
        let f = std::fs::File::open(path)
            .with_context(|| format!("cannot open the venue log {}", path.display()))?;
        for_each_line(BufReader::with_capacity(1 << 20, f), |l| {
            ck.venue_line(v, &a.gateway_id, l)
        })?;
    }
    let secret = a.secret.clone().unwrap_or_default();
    if (a.target.is_some() || a.backoffice.is_some()) && secret.is_empty() {
        bail!("--target and --backoffice need --secret (or JWT_HS256_SECRET)");
    }
    let accounts = ck.account_names();
    let tokens: Arc<HashMap<String, String>> = Arc::new(
        accounts
            .iter()
            .map(|acct| {
                (
                    acct.clone(),
                    switchyard_auth::mint_dev(&secret, acct, 24 * 3_600, None),
                )
            })
            .collect(),
    );

    // The acked file, against the journal and (concurrently) the gateway.
    let acked = std::fs::File::open(&a.acked)
        .with_context(|| format!("cannot open {}", a.acked.display()))?;
    let mut gateway = None;
    match &a.target {
        Some(target) => {
            let addr = resolve(target).await?;
            let (tx, rx) = mpsc::channel::<AckedOrder>(4096);
            let rx = Arc::new(tokio::sync::Mutex::new(rx));
            let workers: Vec<_> = (0..a.connections.max(1))
                .map(|_| {
                    let (rx, tokens, host) = (rx.clone(), tokens.clone(), target.clone());
                    tokio::spawn(gateway_worker(addr, host, tokens, rx))
                })
                .collect();
            // A blocking thread reads the file and feeds the workers through the bounded
            // channel, so memory stays bounded whatever the file's length.
            let reader = tokio::task::spawn_blocking(move || -> anyhow::Result<Checker> {
                for_each_line(BufReader::with_capacity(1 << 20, acked), |l| {
                    if let Some(o) = ck.acked_line(l) {
                        let _ = tx.blocking_send(o);
                    }
                })?;
                Ok(ck)
            });
            ck = reader.await.context("the acked file reader failed")??;
            let mut g = GatewayCheck::default();
            for w in workers {
                let r = w.await.context("a gateway check worker failed")?;
                g.checked += r.checked;
                g.ok += r.ok;
                g.not_found += r.not_found;
                g.mismatched += r.mismatched;
                g.filled_differs += r.filled_differs;
                g.errors += r.errors;
            }
            gateway = Some(g);
        }
        None => {
            for_each_line(BufReader::with_capacity(1 << 20, acked), |l| {
                let _ = ck.acked_line(l);
            })?;
        }
    }

    let summary = ck.summary();
    let mut problems = Vec::new();
    let backoffice = match &a.backoffice {
        Some(bo) => {
            let wait = Duration::from_secs(a.backoffice_wait);
            Some(check_backoffice(bo, &tokens, &ck.expected_books(), wait, &mut problems).await?)
        }
        None => None,
    };
    let lost = summary.lost + gateway.as_ref().map_or(0, |g| g.not_found);
    let duplicated = summary.duplicated + gateway.as_ref().map_or(0, |g| g.mismatched);
    if summary.journal_bad_lines > 0 {
        problems.push(format!(
            "{} journal lines could not be read",
            summary.journal_bad_lines
        ));
    }
    if summary.venue_fill_mismatches > 0 {
        problems.push(format!(
            "{} orders have other fills at their venue than at the gateway",
            summary.venue_fill_mismatches
        ));
    }
    if let Some(g) = &gateway {
        if g.errors > 0 {
            problems.push(format!("{} gateway queries failed", g.errors));
        }
    }
    let bo_ok = backoffice
        .as_ref()
        .is_none_or(|b| b.reconcile_ok && b.positions_match && b.ledger_entries_match);
    let ok = lost == 0
        && duplicated == 0
        && summary.journal_bad_lines == 0
        && summary.venue_fill_mismatches == 0
        && gateway.as_ref().is_none_or(|g| g.errors == 0)
        && bo_ok;
    Ok(CheckReport {
        ok,
        lost,
        duplicated,
        summary,
        gateway,
        backoffice,
        problems,
    })
}

/// `GET /orders/{id}` for acked orders taken from the shared queue.
async fn gateway_worker(
    addr: SocketAddr,
    host: String,
    tokens: Arc<HashMap<String, String>>,
    rx: Arc<tokio::sync::Mutex<mpsc::Receiver<AckedOrder>>>,
) -> GatewayCheck {
    let mut g = GatewayCheck::default();
    let mut conn: Option<HttpConn> = None;
    let mut req = Vec::with_capacity(512);
    loop {
        let next = rx.lock().await.recv().await;
        let Some(o) = next else { return g };
        g.checked += 1;
        let Some(token) = tokens.get(&o.account) else {
            // An acked account the journal has no order of: the order is lost.
            g.not_found += 1;
            continue;
        };
        req.clear();
        let _ = write!(
            VecWriter(&mut req),
            "GET /orders/{} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\r\n",
            o.order_id
        );
        let mut answered = None;
        for _ in 0..3 {
            if conn.is_none() {
                conn = HttpConn::connect(addr).await.ok();
            }
            let Some(c) = conn.as_mut() else {
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            match tokio::time::timeout(Duration::from_secs(10), c.roundtrip(&req)).await {
                Ok(Ok(r)) => {
                    if r.close {
                        conn = None;
                    }
                    answered = Some((r.status, r.body().to_vec()));
                    break;
                }
                _ => conn = None,
            }
        }
        match answered {
            Some((200, body)) => {
                let same = find_str_field(&body, "clientOrderId") == Some(o.key.as_str())
                    && find_str_field(&body, "accountId") == Some(o.account.as_str());
                if same {
                    g.ok += 1;
                } else {
                    g.mismatched += 1;
                }
                if let (Some(j), Some(h)) = (o.filled, find_u64_field(&body, "filledQty")) {
                    if j != h {
                        g.filled_differs += 1;
                    }
                }
            }
            Some((404, _)) => g.not_found += 1,
            _ => g.errors += 1,
        }
    }
}

/// The value of the first `"<key>":<digits>` in a flat JSON object.
fn find_u64_field(body: &[u8], key: &str) -> Option<u64> {
    let pat = format!("\"{key}\":");
    let at = body.windows(pat.len()).position(|w| w == pat.as_bytes())? + pat.len();
    let digits: &[u8] = &body[at..];
    let end = digits
        .iter()
        .position(|b| !b.is_ascii_digit())
        .unwrap_or(digits.len());
    std::str::from_utf8(&digits[..end]).ok()?.parse().ok()
}

async fn get_json(
    addr: SocketAddr,
    host: &str,
    path: &str,
    token: &str,
) -> anyhow::Result<serde_json::Value> {
    let mut c = HttpConn::connect(addr).await?;
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    );
    let r = tokio::time::timeout(Duration::from_secs(300), c.roundtrip(req.as_bytes()))
        .await
        .with_context(|| format!("GET {path}: no answer"))??;
    if r.status != 200 {
        bail!(
            "GET {path}: {} {}",
            r.status,
            String::from_utf8_lossy(r.body())
        );
    }
    Ok(serde_json::from_slice(r.body())?)
}

/// Compares the back office's books with the journal's, asking again every 5 s until they
/// match or `wait` has passed: after a broker outage the consumer may still be rejoining its
/// group when the backlog looks drained.
async fn check_backoffice(
    target: &str,
    tokens: &HashMap<String, String>,
    expected: &BTreeMap<String, ExpectedBooks>,
    wait: Duration,
    problems: &mut Vec<String>,
) -> anyhow::Result<BackOfficeCheck> {
    let addr = resolve(target).await?;
    let started = Instant::now();
    loop {
        let (mut out, issues) = backoffice_once(addr, target, tokens, expected).await?;
        let good = out.reconcile_ok && out.positions_match && out.ledger_entries_match;
        if good || started.elapsed() >= wait {
            out.waited_s = started.elapsed().as_secs();
            problems.extend(issues);
            return Ok(out);
        }
        eprintln!(
            "soak check: the back office does not match the journal yet ({}); asking again in 5 s",
            issues.first().map_or("", String::as_str)
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

async fn backoffice_once(
    addr: SocketAddr,
    target: &str,
    tokens: &HashMap<String, String>,
    expected: &BTreeMap<String, ExpectedBooks>,
) -> anyhow::Result<(BackOfficeCheck, Vec<String>)> {
    let mut problems = Vec::new();
    let mut out = BackOfficeCheck {
        reconcile_ok: true,
        positions_match: true,
        ledger_entries_match: true,
        ..BackOfficeCheck::default()
    };
    for (account, want) in expected {
        let Some(token) = tokens.get(account) else {
            continue;
        };
        let p = get_json(addr, target, "/positions", token).await?;
        let mut positions = BTreeMap::new();
        for row in p["positions"].as_array().into_iter().flatten() {
            let (Some(sym), Some(q)) = (row["symbol"].as_str(), row["netQty"].as_i64()) else {
                continue;
            };
            if q != 0 {
                positions.insert(sym.to_string(), q);
            }
        }
        let r = get_json(addr, target, "/reconcile", token).await?;
        let reconcile_ok = r["ok"].as_bool() == Some(true);
        let ledger_entries = r["ledgerEntries"].as_u64().unwrap_or(0);
        out.fills_booked += ledger_entries.saturating_sub(want.orders);
        let a = BackOfficeAccount {
            account: account.clone(),
            reconcile_ok,
            ledger_entries,
            expected_ledger_entries: want.ledger_entries,
            positions_match: positions == want.positions,
            booked_positions_match: positions == want.booked_positions,
            positions,
            expected_positions: want.positions.clone(),
        };
        if !a.reconcile_ok {
            out.reconcile_ok = false;
            problems.push(format!("back office reconcile of {account} is not ok: {r}"));
        }
        if !a.positions_match {
            out.positions_match = false;
            problems.push(format!(
                "back office positions of {account} {:?}, the gateway's fills say {:?} (its rule on the journal: {:?})",
                a.positions, a.expected_positions, want.booked_positions
            ));
        }
        if a.ledger_entries != a.expected_ledger_entries {
            out.ledger_entries_match = false;
            problems.push(format!(
                "back office ledger of {account} has {} entries, the journal says {}",
                a.ledger_entries, a.expected_ledger_entries
            ));
        }
        out.accounts.push(a);
    }
    Ok((out, problems))
}

// ---------------------------------------------------------------------------------------------
// proxy

/// Forwards every connection to `listen` to `to`, until the process is killed.
pub async fn proxy(listen: &str, to: &str) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    eprintln!("soak proxy: {} → {to}", listener.local_addr()?);
    loop {
        let (mut inbound, _) = listener.accept().await?;
        let to = to.to_string();
        tokio::spawn(async move {
            if let Ok(mut outbound) = tokio::net::TcpStream::connect(&to).await {
                let _ = inbound.set_nodelay(true);
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: orders are deterministic, valid JSON with the key as clientOrderId, about the
    // asked share is resting, and resting orders are priced far from the market.
    #[test]
    fn order_mix() {
        let mut resting = 0;
        for n in 0..10_000 {
            let (body, kind) = order_body(3, n, 30, "k-1");
            assert_eq!(order_body(3, n, 30, "k-1"), (body.clone(), kind));
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["clientOrderId"], "k-1");
            let (sym, reference) = SYMBOLS
                .iter()
                .find(|(s, _)| v["symbol"] == *s)
                .copied()
                .unwrap();
            assert!(!sym.is_empty());
            assert!((1..=3).contains(&v["qty"].as_u64().unwrap()));
            match kind {
                Kind::Resting => {
                    resting += 1;
                    assert_eq!(
                        (v["type"].as_str(), v["timeInForce"].as_str()),
                        (Some("LIMIT"), Some("GTC"))
                    );
                    let p = v["price"].as_u64().unwrap();
                    if v["side"] == "BUY" {
                        assert!(p <= reference / 2, "{body}");
                    } else {
                        assert!(p >= reference * 2, "{body}");
                    }
                }
                Kind::Marketable => {
                    assert_eq!(
                        (v["type"].as_str(), v["timeInForce"].as_str()),
                        (Some("MARKET"), Some("IOC"))
                    );
                    assert!(v.get("price").is_none());
                }
            }
        }
        assert!((2_700..3_300).contains(&resting), "{resting}");
        assert!((0..100).all(|n| order_body(0, n, 0, "k").1 == Kind::Marketable));
        assert!((0..100).all(|n| order_body(0, n, 100, "k").1 == Kind::Resting));
    }

    // Goal: the request is a well-formed durable POST with the key and the right length.
    #[test]
    fn request_shape() {
        let mut out = Vec::new();
        order_request(&mut out, "h:1", "tok", "key-7", r#"{"a":1}"#);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.starts_with("POST /orders HTTP/1.1\r\nHost: h:1\r\n"),
            "{text}"
        );
        assert!(text.contains("\r\nAuthorization: Bearer tok\r\n"));
        assert!(text.contains("\r\nDurability: local\r\nIdempotency-Key: key-7\r\n"));
        assert!(
            text.ends_with("\r\nContent-Length: 7\r\n\r\n{\"a\":1}"),
            "{text}"
        );
    }

    fn accepted(seq: u64, id: u64, account: &str, key: &str, side: &str, qty: u64) -> String {
        serde_json::json!({"seq": seq, "timeNs": 1, "type": "OrderAccepted", "data": {
            "orderId": format!("ord_{id:016x}"), "accountId": account, "idempotencyKey": key,
            "symbol": "BTC", "side": side, "type": "MARKET", "qty": qty}})
        .to_string()
    }

    fn report(id: u64, account: &str, delta: u64, total: u64, status_report: bool) -> String {
        serde_json::json!({"seq": 9, "timeNs": 1, "type": "ExecutionReport", "data": {
            "orderId": format!("ord_{id:016x}"), "accountId": account, "venue": "simA",
            "status": "FILLED", "filledQtyDelta": delta, "filledQtyTotal": total,
            "statusReport": status_report}})
        .to_string()
    }

    // Goal: the check finds lost and duplicated orders, compares venues and gateway, and
    // computes the books the back office should hold.
    #[test]
    fn checker_counts_lost_duplicated_and_fills() {
        let mut ck = Checker::new();
        ck.journal_line(&accepted(1, 1, "a", "k1", "BUY", 3));
        ck.journal_line(&accepted(2, 2, "a", "k2", "SELL", 2));
        // The same key again under another order id: a duplicate.
        ck.journal_line(&accepted(3, 3, "a", "k2", "SELL", 2));
        ck.journal_line(&accepted(4, 4, "b", "k1", "BUY", 1));
        // Order 1 fills 1 then 3 (a duplicate report in between), order 2 fills 2.
        ck.journal_line(&report(1, "a", 1, 1, false));
        ck.journal_line(&report(1, "a", 1, 1, false));
        ck.journal_line(&report(1, "a", 2, 3, false));
        ck.journal_line(&report(2, "a", 0, 2, true));
        ck.journal_line(r#"{"seq":10,"timeNs":1,"type":"OrderUpdated","data":{"orderId":"ord_0000000000000001","accountId":"a","status":"FILLED","filledQty":3}}"#);
        ck.journal_line(r#"{"seq":11,"timeNs":1,"type":"V3OrderAccepted","data":{"orderId":7}}"#);
        ck.journal_line(r#"{"seq":12,"timeNs":1,"type":"CleanShutdown","data":{}}"#);
        ck.journal_line("not json");
        let va = ck.add_venue("venue-simA.jsonl");
        let vb = ck.add_venue("venue-simB.jsonl");
        let o = |id: u64, filled: u64| {
            format!(
                r#"{{"t":"O","gw":"gw","orderId":"ord_{id:016x}","qty":3,"filled":{filled},"status":"FILLED"}}"#
            )
        };
        ck.venue_line(va, "gw", &o(1, 0));
        ck.venue_line(va, "gw", r#"{"t":"R","gw":"gw","er":{"seq":5,"orderId":"ord_0000000000000001","status":"FILLED","filledQtyTotal":3}}"#);
        ck.venue_line(va, "gw", &o(2, 1)); // the venue says 1, the gateway 2
        ck.venue_line(vb, "gw", &o(4, 0));
        ck.venue_line(va, "gw", &o(4, 0)); // on two venues
        ck.venue_line(vb, "gw", &o(99, 0)); // unknown to the journal
        ck.venue_line(vb, "other-gw", &o(98, 0)); // another gateway's: ignored
        ck.venue_line(vb, "gw", r#"{"t":"G","gw":"gw","seq":4}"#);
        ck.venue_line(vb, "gw", r#"{"t":"O","gw":"#); // torn tail
        for line in [
            "a\tk1\tord_0000000000000001\tm\tlocal\t0",
            "a\tk2\tord_0000000000000003\tm\tlocal\t1", // the journal's first order is 2
            "a\tk9\tord_0000000000000009\tm\tlocal\t0", // lost
            "b\tk1\tord_0000000000000004\tr\tvolatile\t0",
            "short line",
        ] {
            ck.acked_line(line);
        }
        let s = ck.summary();
        assert_eq!((s.orders, s.keys, s.journal_bad_lines), (4, 3, 1));
        assert_eq!(
            (s.acked.lines, s.acked.durable, s.acked.bad_lines),
            (4, 3, 1)
        );
        assert_eq!(s.acked.missing_in_journal, 1);
        assert_eq!(s.acked.order_id_mismatch, 1);
        assert_eq!(s.lost, 1);
        assert_eq!(s.keys_with_several_orders, 1);
        assert_eq!(s.orders_on_two_venues, 1);
        assert_eq!(s.unknown_venue_orders, 1);
        assert_eq!(s.duplicated, 1 + 1 + 1 + 1);
        assert_eq!((s.filled_orders, s.filled_qty), (2, 5));
        assert_eq!(s.by_status["FILLED"], 1);
        assert_eq!(s.venue_orders, 3);
        assert_eq!(s.venue_fill_mismatches, 1, "order 2");
        assert_eq!(s.venues[1].bad_lines, 1);
        let books = ck.expected_books();
        let a = &books["a"];
        assert_eq!(a.positions, BTreeMap::from([("BTC".to_string(), 3 - 2)]));
        assert_eq!(a.booked_positions, a.positions);
        // 3 orders + fills booked: order 1 twice (1, then 2 more), order 2 once.
        assert_eq!((a.orders, a.ledger_entries), (3, 6));
        assert_eq!(books["b"].ledger_entries, 1);
        assert!(books["b"].positions.is_empty());
    }

    // Goal: the back office's clamping rule is replayed: a delta smaller than the growth books
    // only the delta, a status report books the growth.
    #[test]
    fn checker_replays_the_booking_rule() {
        let mut ck = Checker::new();
        ck.journal_line(&accepted(1, 1, "a", "k1", "BUY", 5));
        ck.journal_line(&report(1, "a", 1, 3, false)); // books 1, total 3
        ck.journal_line(&report(1, "a", 0, 5, true)); // books the growth 2
        let b = &ck.expected_books()["a"];
        assert_eq!(b.positions["BTC"], 5);
        assert_eq!(b.booked_positions["BTC"], 3);
    }

    // Goal: numbers are found by exact key.
    #[test]
    fn u64_fields() {
        let body = br#"{"qty":5,"filledQty":12,"x":"y"}"#;
        assert_eq!(find_u64_field(body, "filledQty"), Some(12));
        assert_eq!(find_u64_field(body, "qty"), Some(5));
        assert_eq!(find_u64_field(body, "missing"), None);
        assert_eq!(parse_order_ref("ord_00000000000000ff"), Some(255));
        assert_eq!(parse_order_ref("v3/x/1"), None);
    }

    // Goal: the documented command lines parse; bad values are refused naming the flag.
    #[test]
    fn command_lines() {
        use clap::Parser;
        #[derive(Parser)]
        struct Cli {
            #[command(subcommand)]
            cmd: SoakCommand,
        }
        let parse = |args: &[&str]| {
            Cli::try_parse_from(std::iter::once("soak").chain(args.iter().copied()))
                .unwrap()
                .cmd
        };
        let SoakCommand::Run(r) = parse(&[
            "run",
            "--secret",
            "s",
            "--rate",
            "500",
            "--duration",
            "30",
            "--acked",
            "a.tsv",
        ]) else {
            panic!()
        };
        r.validate().unwrap();
        assert_eq!(
            (r.rate, r.duration, r.connections, r.resting_pct),
            (500.0, 30, 64, 30)
        );
        for (flag, value) in [
            ("--rate", "0"),
            ("--resting-pct", "101"),
            ("--key-prefix", "a-b"),
        ] {
            let SoakCommand::Run(r) = parse(&["run", "--secret", "s", "--acked", "a", flag, value])
            else {
                panic!()
            };
            assert!(
                r.validate().unwrap_err().to_string().contains(flag),
                "{flag}"
            );
        }
        let SoakCommand::Check(c) = parse(&[
            "check",
            "--acked",
            "a",
            "--venue-log",
            "x",
            "--venue-log",
            "y",
            "--gateway-id",
            "g",
        ]) else {
            panic!()
        };
        assert_eq!((c.journal.as_str(), c.venue_logs.len()), ("-", 2));
    }
}
