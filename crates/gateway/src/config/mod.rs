//! Configuration: one TOML file (`deny_unknown_fields`), then environment overrides under the
//! reference's variable names (§4). Defaults live here and only here. A bad value anywhere
//! stops startup with a message naming the key or variable.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use switchyard_core::risk::{AccountRules, RiskLimits, SymbolLimits, DAILY_NOTIONAL_MAX};
use switchyard_core::{OrderType, Side, Symbol};

mod bus;
mod cluster;
mod venues;
pub use bus::BusSection;
pub use cluster::ClusterSection;
pub use venues::{Routes, Transport, VenueSpec, VenuesSection, MAX_VENUES};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub gateway: GatewayConfig,
    pub auth: AuthSection,
    pub risk: RiskSection,
    pub v3: V3Config,
    pub journal: JournalSection,
    pub orders: OrdersSection,
    pub stream: StreamSection,
    pub audit: AuditSection,
    pub venues: VenuesSection,
    pub bus: BusSection,
    pub cluster: ClusterSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GatewayConfig {
    /// HTTP listen address (host part); `GATEWAY_PORT` sets the port.
    pub host: String,
    pub port: u16,
    /// Open HTTP + TCP connections at most; further connections are closed at once.
    pub max_connections: usize,
    /// Slow clients (slowloris) must send a full request head within this time; it also
    /// bounds a TLS handshake on either listener.
    pub header_read_timeout_ms: u64,
    /// `GATEWAY_MAX_CONNECTIONS_PER_IP`: open HTTP + TCP connections from one client address
    /// at most (0 = no per-address limit); further connections are closed at once.
    pub max_connections_per_ip: usize,
    /// `GATEWAY_BODY_READ_TIMEOUT_MS`: a request body must arrive within this time once its
    /// handler starts reading it (slow-body attacks); else 408 `BODY_READ_TIMEOUT`. 0 = off.
    pub body_read_timeout_ms: u64,
    /// `GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY`: PEM files of the certificate chain and its
    /// private key. Both set = TLS on the HTTP listener (and on the v3 TCP ingress unless
    /// `V3_TCP_TLS=false`); both empty = plain TCP. One without the other is an error.
    pub tls_cert: String,
    pub tls_key: String,
    /// Tokio worker threads (the ingress); 0 = one per core, or one per core but one when
    /// `ingress_rt_priority` is set.
    pub worker_threads: usize,
    /// `GATEWAY_INGRESS_RT_PRIORITY`: 1..=99 runs the ingress workers `SCHED_FIFO` at that
    /// priority (needs `CAP_SYS_NICE` or `RLIMIT_RTPRIO`), for the lowest ack tail; 0 (default)
    /// = normal policy.
    /// See `sched` and docs/operations.md.
    pub ingress_rt_priority: u8,
    /// `GATEWAY_BACKGROUND_SCHED=batch|normal`: run the background threads (engines, journal
    /// writer, auditor, monitor, stream dispatcher, outbox, venue sessions) under
    /// `SCHED_BATCH` so that they never preempt an ingress thread mid-answer (see `sched`).
    pub background_sched_batch: bool,
    /// `GATEWAY_METRICS_TOKEN`: when set, `/metrics` and `/stats` need it in `X-Metrics-Token`
    /// (the reference's header) or as `Authorization: Bearer` (what Prometheus can send).
    pub metrics_token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthSection {
    /// `JWT_HS256_SECRET`: key for tokens without `kid`; empty = every protected call fails.
    pub secret: String,
    /// `JWT_HS256_KEYS`: `kid:secret,kid2:base64:...` for rotation.
    pub keys: String,
    pub issuer: Option<String>,
    pub audience: Option<String>,
    pub clock_skew_sec: u64,
    pub cache_capacity: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RiskSection {
    pub max_order_qty: u64,
    pub max_notional: u64,
    pub strict_symbols: bool,
    /// `SYM:maxQty:maxNotional,…` (the reference's `V3_RISK_SYMBOL_LIMITS`).
    pub symbol_limits: String,
    /// `SYM:minPrice:maxPrice,…`
    pub symbol_price_bands: String,
    /// `SYM:referencePrice:collarBps,…`
    pub symbol_collars: String,
    pub daily_notional_limit: u64,
    pub max_abs_position_qty: u64,
    pub rate_per_sec: u32,
    pub rate_burst: u32,
    /// `BUY|SELL` globally allowed sides.
    pub allowed_sides: String,
    pub allow_market: bool,
    pub min_price: u64,
    pub max_price: u64,
    /// Per-account overrides.
    pub accounts: HashMap<String, AccountSection>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountSection {
    pub allowed_symbols: Option<Vec<String>>,
    pub allowed_sides: Option<String>,
    pub allow_market: Option<bool>,
    pub max_qty: Option<u64>,
    pub max_notional: Option<u64>,
    pub min_price: Option<u64>,
    pub max_price: Option<u64>,
    pub daily_notional_limit: Option<u64>,
    pub max_abs_position_qty: Option<u64>,
    pub rate_per_sec: Option<u32>,
    pub rate_burst: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct V3Config {
    pub http_ingress_enable: bool,
    pub http_confirm_enable: bool,
    pub tcp_enable: bool,
    pub tcp_port: u16,
    pub shard_count: usize,
    pub ingress_queue_capacity: usize,
    pub soft_reject_pct: u64,
    pub hard_reject_pct: u64,
    pub kill_reject_pct: u64,
    pub kill_auto_recover: bool,
    pub kill_recover_pct: u64,
    pub kill_recover_after_ms: u64,
    /// Journal backlog (records submitted, not yet durable) at which durable admission trips.
    pub durable_backlog_capacity: u64,
    pub durable_soft_reject_pct: u64,
    pub durable_hard_reject_pct: u64,
    /// Oldest not-yet-durable order age gates, µs; 0 = off. The reference leaves them off;
    /// Switchyard turns them on below `loss_gap_timeout_ms`, because they are what keeps an
    /// overloaded journal from aging orders into LOSS_SUSPECT (and the kill switches).
    pub durable_confirm_soft_reject_age_us: u64,
    pub durable_confirm_hard_reject_age_us: u64,
    pub loss_gap_timeout_ms: u64,
    pub loss_scan_interval_ms: u64,
    pub loss_scan_batch: usize,
    pub loss_window_sec: u64,
    pub session_loss_suspect_threshold: u32,
    pub shard_loss_suspect_threshold: u32,
    pub global_loss_suspect_threshold: u32,
    /// Rejected/loss-suspect confirm records are forgotten this long after their last update.
    pub confirm_ttl_ms: u64,
    /// After a crash, each session's sequence jumps by this much so that no sequence number
    /// handed out before the crash (and possibly lost) is ever handed out again.
    pub seq_restart_gap: u64,
    /// Orders one engine takes from its queue per journal batch.
    pub engine_batch_max: usize,
    /// `V3_TCP_TLS`: TLS on the v3 TCP ingress. Unset = on exactly when `GATEWAY_TLS_CERT`
    /// is set (one certificate for both listeners); `false` keeps TCP plain beside an HTTPS
    /// listener; `true` without a certificate is an error.
    pub tcp_tls: Option<bool>,
    /// `V3_TCP_PARTIAL_FRAME_TIMEOUT_MS`: a v3 TCP connection holding part of a frame must
    /// complete it within this time (from the frame's first byte), else it is closed. A
    /// connection idle between frames is never timed out. 0 = off.
    pub tcp_partial_frame_timeout_ms: u64,
    /// Longest nap, µs: while the journal writer is busy, an engine that finds its queue
    /// empty sleeps until the writer's next commit can start (at most this long) instead of
    /// being woken per order; 0 = always block and be woken at once.
    pub engine_nap_us: u64,
    /// Shortest nap, µs: when the writer is already past its pacing point (a long sync), the
    /// engine still sleeps this long rather than spinning on short naps.
    pub engine_nap_min_us: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct JournalSection {
    pub dir: PathBuf,
    pub segment_bytes: u64,
    /// false only for benchmarks that want to measure without the disk (documented as unsafe).
    pub fsync: bool,
    /// Lay the next segment down as zeros in advance, so that commits overwrite allocated
    /// blocks and each fdatasync flushes data but no file-system metadata (see the journal's
    /// `WriterConfig::preallocate`). Costs one segment of disk space ahead.
    pub preallocate: bool,
    pub queue_batches: usize,
    /// Group-commit pacing in µs (the reference's `AUDIT_FDATASYNC_MAX_WAIT_US`, 200): at most
    /// one fdatasync per this interval; a commit after a quiet spell goes at once.
    pub fdatasync_max_wait_us: u64,
    /// Upper bound of the adaptive pacing interval, µs: the interval stretches with the
    /// record rate (20 ns per record/s) so fdatasync CPU stays bounded under heavy load.
    pub fdatasync_max_wait_high_us: u64,
    /// ... or until this many records (`AUDIT_FDATASYNC_MAX_BATCH`).
    pub fdatasync_max_batch: usize,
    /// Fault injection for tests and drills, never for production: sleep before every
    /// fdatasync (a slow disk) ...
    pub fault_sync_delay_ms: u64,
    /// ... or fail the Nth group commit's write (0 = never) ...
    pub fault_fail_write_at_commit: u64,
    /// ... and this many commits from it on (a disk that stays broken for a while).
    pub fault_fail_write_commits: u64,
    /// `JOURNAL_DISK_RESERVE_MB`: new orders are refused while the journal's volume has less
    /// free space than this (cancels and control records still write into it); 0 = off.
    pub disk_reserve_mb: u64,
    /// `JOURNAL_FAILURE_HOLD_MS`: after a failed commit new orders are refused this long,
    /// doubling with each further failure of the streak (up to 32×).
    pub failure_hold_ms: u64,
}

/// The durable order path (`/orders`, `/v2/orders`): idempotency, durability levels, the
/// order store's memory bounds and the durable-path backpressure of §3.5.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OrdersSection {
    /// `IDEMPOTENCY_TTL_SEC`: how long an idempotency key returns its original order.
    pub idempotency_ttl_sec: u64,
    /// `ORDER_STORE_SHARDS`: lock partitions of the order store (by account).
    pub store_shards: usize,
    /// Longest accepted `Idempotency-Key` / `clientOrderId`, bytes.
    pub max_key_len: usize,
    /// Orders held in memory at most (open ones plus finished ones not yet aged out); beyond
    /// it new orders get 503 `ORDER_STORE_FULL`.
    pub max_orders_in_memory: usize,
    /// Finished orders leave memory this long after their last change (the journal keeps them).
    pub finished_retention_sec: u64,
    /// `volatile`, `local` or `replicated`: the level when the request names none.
    pub default_durability: String,
    /// A `local` answer waits at most this long for the fdatasync (`V2_DURABLE_WAIT_TIMEOUT_MS`);
    /// then 503 `DURABILITY_WAIT_TIMEOUT` and the order stays.
    pub durable_wait_timeout_ms: u64,
    /// Static backpressure (each 0 = off): in-flight requests, journal bytes on disk, age of
    /// the oldest record waiting for the journal, free disk %, and the soft (429) age limit.
    pub inflight_max: u64,
    pub wal_bytes_max: u64,
    pub wal_age_ms_max: u64,
    pub disk_free_pct_min: u64,
    pub soft_wal_age_ms_max: u64,
    /// The dynamic in-flight controller (`BACKPRESSURE_INFLIGHT_DYNAMIC`) and its knobs.
    pub inflight_dynamic: bool,
    pub inflight_target_wal_age_sec: f64,
    pub inflight_alpha: f64,
    pub inflight_beta: f64,
    pub inflight_min: u64,
    pub inflight_cap: u64,
    pub inflight_initial: u64,
    pub inflight_tick_ms: u64,
    pub inflight_slew_ratio: f64,
    pub inflight_hysteresis_off_ratio: f64,
    pub inflight_decline_ratio: f64,
    pub inflight_decline_streak: u32,
}

impl Default for OrdersSection {
    fn default() -> Self {
        OrdersSection {
            idempotency_ttl_sec: 86_400,
            store_shards: 64,
            max_key_len: 128,
            max_orders_in_memory: 2_000_000,
            finished_retention_sec: 600,
            default_durability: "local".into(),
            // The reference waits 200 ms; a group commit on a shared disk can take longer
            // now and then, and a timeout answer is worse for the client than a late one.
            durable_wait_timeout_ms: 1_000,
            inflight_max: 0,
            wal_bytes_max: 0,
            wal_age_ms_max: 0,
            disk_free_pct_min: 0,
            soft_wal_age_ms_max: 0,
            inflight_dynamic: false,
            inflight_target_wal_age_sec: 1.0,
            inflight_alpha: 0.8,
            inflight_beta: 0.2,
            inflight_min: 256,
            inflight_cap: 10_000,
            inflight_initial: 2_000,
            inflight_tick_ms: 250,
            inflight_slew_ratio: 0.2,
            inflight_hysteresis_off_ratio: 0.9,
            inflight_decline_ratio: 0.8,
            inflight_decline_streak: 3,
        }
    }
}

impl Default for GatewayConfig {
    fn default() -> Self {
        GatewayConfig {
            host: "0.0.0.0".into(),
            port: 8081,
            max_connections: 10_000,
            header_read_timeout_ms: 10_000,
            max_connections_per_ip: 1_000,
            body_read_timeout_ms: 10_000,
            tls_cert: String::new(),
            tls_key: String::new(),
            metrics_token: String::new(),
            worker_threads: 0,
            ingress_rt_priority: 0,
            background_sched_batch: cfg!(target_os = "linux"),
        }
    }
}

impl Default for AuthSection {
    fn default() -> Self {
        AuthSection {
            secret: String::new(),
            keys: String::new(),
            issuer: None,
            audience: None,
            clock_skew_sec: 30,
            cache_capacity: 65_536,
        }
    }
}

impl Default for RiskSection {
    fn default() -> Self {
        RiskSection {
            max_order_qty: 10_000,
            max_notional: 1_000_000_000,
            strict_symbols: true,
            symbol_limits: "AAPL,MSFT,NVDA,BTC,ETH,SOL".into(),
            symbol_price_bands: String::new(),
            symbol_collars: String::new(),
            daily_notional_limit: 0,
            max_abs_position_qty: 0,
            rate_per_sec: 0,
            rate_burst: 0,
            allowed_sides: "BUY|SELL".into(),
            allow_market: true,
            min_price: 0,
            max_price: 0,
            accounts: HashMap::new(),
        }
    }
}

impl Default for V3Config {
    fn default() -> Self {
        V3Config {
            http_ingress_enable: true,
            http_confirm_enable: true,
            tcp_enable: false,
            tcp_port: 0,
            // Half the cores: an engine is one thread and the ingress runtime needs the rest.
            // (The reference's clamp(cpus, 4, 8) paid off with one WAL per lane; here all
            // shards share one journal and extra engines on 2 cores only cost wake-ups —
            // measured in docs/benchmarks.md.)
            shard_count: (std::thread::available_parallelism().map_or(2, |n| n.get()) / 2)
                .clamp(1, 8),
            ingress_queue_capacity: 65_536,
            soft_reject_pct: 70,
            hard_reject_pct: 85,
            kill_reject_pct: 95,
            kill_auto_recover: false,
            kill_recover_pct: 60,
            kill_recover_after_ms: 3_000,
            durable_backlog_capacity: 200_000,
            durable_soft_reject_pct: 55,
            durable_hard_reject_pct: 75,
            durable_confirm_soft_reject_age_us: 100_000,
            durable_confirm_hard_reject_age_us: 250_000,
            loss_gap_timeout_ms: 500,
            loss_scan_interval_ms: 50,
            loss_scan_batch: 2_048,
            loss_window_sec: 60,
            session_loss_suspect_threshold: 1,
            shard_loss_suspect_threshold: 3,
            global_loss_suspect_threshold: 6,
            confirm_ttl_ms: 600_000,
            seq_restart_gap: 1 << 20,
            engine_batch_max: 256,
            engine_nap_us: 500,
            engine_nap_min_us: 200,
            tcp_tls: None,
            tcp_partial_frame_timeout_ms: 10_000,
        }
    }
}

impl Default for JournalSection {
    fn default() -> Self {
        JournalSection {
            dir: PathBuf::from("var/gateway/journal"),
            segment_bytes: 64 << 20,
            fsync: true,
            preallocate: true,
            queue_batches: 1_024,
            fdatasync_max_wait_us: 200,
            fdatasync_max_wait_high_us: 2_000,
            fdatasync_max_batch: 1_024,
            fault_sync_delay_ms: 0,
            fault_fail_write_at_commit: 0,
            fault_fail_write_commits: 1,
            disk_reserve_mb: 512,
            failure_hold_ms: 1_000,
        }
    }
}

impl OrdersSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let o = self;
        if o.store_shards == 0 || o.store_shards > 1024 {
            return Err(err("ORDER_STORE_SHARDS", "must be 1..=1024"));
        }
        if o.idempotency_ttl_sec == 0 {
            return Err(err("IDEMPOTENCY_TTL_SEC", "must be > 0"));
        }
        if !(8..=1024).contains(&o.max_key_len) {
            return Err(err("ORDER_MAX_KEY_LEN", "must be 8..=1024"));
        }
        if o.max_orders_in_memory == 0 {
            return Err(err("ORDER_MAX_IN_MEMORY", "must be > 0"));
        }
        if crate::orders::Durability::parse(&o.default_durability).is_none() {
            return Err(err(
                "ORDER_DEFAULT_DURABILITY",
                "must be volatile, local or replicated",
            ));
        }
        if o.durable_wait_timeout_ms == 0 {
            return Err(err("V2_DURABLE_WAIT_TIMEOUT_MS", "must be > 0"));
        }
        if o.disk_free_pct_min > 100 {
            return Err(err("BACKPRESSURE_DISK_FREE_PCT_MIN", "must be 0..=100"));
        }
        if o.inflight_min == 0 || o.inflight_min > o.inflight_cap {
            return Err(err(
                "BACKPRESSURE_INFLIGHT_MIN",
                "must be > 0 and <= BACKPRESSURE_INFLIGHT_CAP",
            ));
        }
        if o.inflight_tick_ms == 0 {
            return Err(err("BACKPRESSURE_INFLIGHT_TICK_MS", "must be > 0"));
        }
        for (key, v) in [
            ("BACKPRESSURE_INFLIGHT_ALPHA", o.inflight_alpha),
            ("BACKPRESSURE_INFLIGHT_BETA", o.inflight_beta),
            ("BACKPRESSURE_INFLIGHT_SLEW_RATIO", o.inflight_slew_ratio),
            (
                "BACKPRESSURE_INFLIGHT_HYSTERESIS_OFF_RATIO",
                o.inflight_hysteresis_off_ratio,
            ),
            (
                "BACKPRESSURE_INFLIGHT_DECLINE_RATIO",
                o.inflight_decline_ratio,
            ),
        ] {
            if v.is_nan() || v <= 0.0 || v > 1.0 {
                return Err(err(key, "must be in (0, 1]"));
            }
        }
        if o.inflight_target_wal_age_sec.is_nan() || o.inflight_target_wal_age_sec <= 0.0 {
            return Err(err(
                "BACKPRESSURE_INFLIGHT_TARGET_WAL_AGE_SEC",
                "must be > 0",
            ));
        }
        Ok(())
    }
}

/// A configuration error that names the offending key or variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration: {key}: {message}")]
pub struct ConfigError {
    pub key: String,
    pub message: String,
}

fn err(key: &str, message: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message: message.into(),
    }
}

type Setter = fn(&mut Config, &str, &str) -> Result<(), ConfigError>;

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| err(key, format!("not a valid number: {v:?}")))
}

/// The reference's boolean words: 1/true/yes/on and 0/false/no/off.
pub fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(err(
            key,
            format!("not a boolean (1/0, true/false, yes/no, on/off): {v:?}"),
        )),
    }
}

macro_rules! env_table {
    ($( $name:literal => |$c:ident, $k:ident, $v:ident| $body:expr; )*) => {
        /// Environment variables understood, in the reference's names.
        pub const ENV_VARS: &[(&str, Setter)] = &[
            $( ($name, |$c: &mut Config, $k: &str, $v: &str| { $body; Ok(()) }), )*
        ];
    };
}

env_table! {
    "GATEWAY_HOST" => |c, _k, v| c.gateway.host = v.to_string();
    "GATEWAY_PORT" => |c, k, v| c.gateway.port = parse_num(k, v)?;
    "GATEWAY_MAX_CONNECTIONS" => |c, k, v| c.gateway.max_connections = parse_num(k, v)?;
    "GATEWAY_HEADER_READ_TIMEOUT_MS" => |c, k, v| c.gateway.header_read_timeout_ms = parse_num(k, v)?;
    "GATEWAY_MAX_CONNECTIONS_PER_IP" => |c, k, v| c.gateway.max_connections_per_ip = parse_num(k, v)?;
    "GATEWAY_BODY_READ_TIMEOUT_MS" => |c, k, v| c.gateway.body_read_timeout_ms = parse_num(k, v)?;
    "GATEWAY_TLS_CERT" => |c, _k, v| c.gateway.tls_cert = v.trim().to_string();
    "GATEWAY_TLS_KEY" => |c, _k, v| c.gateway.tls_key = v.trim().to_string();
    "GATEWAY_WORKER_THREADS" => |c, k, v| c.gateway.worker_threads = parse_num(k, v)?;
    "GATEWAY_INGRESS_RT_PRIORITY" => |c, k, v| c.gateway.ingress_rt_priority = parse_num(k, v)?;
    "GATEWAY_BACKGROUND_SCHED" => |c, k, v| c.gateway.background_sched_batch = match v.trim() {
        "batch" => true,
        "normal" => false,
        _ => return Err(err(k, format!("expected batch or normal, got {v:?}"))),
    };
    "GATEWAY_METRICS_TOKEN" => |c, _k, v| c.gateway.metrics_token = v.trim().to_string();
    "JWT_HS256_SECRET" => |c, _k, v| c.auth.secret = v.to_string();
    "JWT_HS256_KEYS" => |c, _k, v| c.auth.keys = v.to_string();
    "JWT_ISSUER" => |c, _k, v| c.auth.issuer = Some(v.to_string()).filter(|s| !s.is_empty());
    "JWT_AUDIENCE" => |c, _k, v| c.auth.audience = Some(v.to_string()).filter(|s| !s.is_empty());
    "JWT_CLOCK_SKEW_SEC" => |c, k, v| c.auth.clock_skew_sec = parse_num(k, v)?;
    "JWT_CACHE_CAPACITY" => |c, k, v| c.auth.cache_capacity = parse_num(k, v)?;
    "MAX_ORDER_QTY" => |c, k, v| c.risk.max_order_qty = parse_num(k, v)?;
    "MAX_NOTIONAL" => |c, k, v| c.risk.max_notional = parse_num(k, v)?;
    "V3_RISK_SYMBOL_LIMITS" => |c, _k, v| c.risk.symbol_limits = v.to_string();
    "V3_RISK_SYMBOL_PRICE_BANDS" => |c, _k, v| c.risk.symbol_price_bands = v.to_string();
    "V3_RISK_SYMBOL_COLLARS" => |c, _k, v| c.risk.symbol_collars = v.to_string();
    "V3_RISK_STRICT_SYMBOLS" => |c, k, v| c.risk.strict_symbols = parse_bool(k, v)?;
    "V3_RISK_DAILY_NOTIONAL_LIMIT" => |c, k, v| c.risk.daily_notional_limit = parse_num(k, v)?;
    "V3_RISK_MAX_ABS_POSITION_QTY" => |c, k, v| c.risk.max_abs_position_qty = parse_num(k, v)?;
    "RISK_RATE_PER_SEC" => |c, k, v| c.risk.rate_per_sec = parse_num(k, v)?;
    "RISK_RATE_BURST" => |c, k, v| c.risk.rate_burst = parse_num(k, v)?;
    "RISK_ALLOWED_SIDES" => |c, _k, v| c.risk.allowed_sides = v.to_string();
    "RISK_ALLOW_MARKET" => |c, k, v| c.risk.allow_market = parse_bool(k, v)?;
    "RISK_MIN_PRICE" => |c, k, v| c.risk.min_price = parse_num(k, v)?;
    "RISK_MAX_PRICE" => |c, k, v| c.risk.max_price = parse_num(k, v)?;
    "V3_HTTP_INGRESS_ENABLE" => |c, k, v| c.v3.http_ingress_enable = parse_bool(k, v)?;
    "V3_HTTP_CONFIRM_ENABLE" => |c, k, v| c.v3.http_confirm_enable = parse_bool(k, v)?;
    "V3_TCP_ENABLE" => |c, k, v| c.v3.tcp_enable = parse_bool(k, v)?;
    "V3_TCP_PORT" => |c, k, v| c.v3.tcp_port = parse_num(k, v)?;
    "V3_TCP_TLS" => |c, k, v| c.v3.tcp_tls = match v.trim() {
        "" => None,
        v => Some(parse_bool(k, v)?),
    };
    "V3_TCP_PARTIAL_FRAME_TIMEOUT_MS" => |c, k, v| c.v3.tcp_partial_frame_timeout_ms = parse_num(k, v)?;
    "V3_SHARD_COUNT" => |c, k, v| c.v3.shard_count = parse_num(k, v)?;
    "V3_INGRESS_QUEUE_CAPACITY" => |c, k, v| c.v3.ingress_queue_capacity = parse_num(k, v)?;
    "V3_SOFT_REJECT_PCT" => |c, k, v| c.v3.soft_reject_pct = parse_num(k, v)?;
    "V3_HARD_REJECT_PCT" => |c, k, v| c.v3.hard_reject_pct = parse_num(k, v)?;
    "V3_KILL_REJECT_PCT" => |c, k, v| c.v3.kill_reject_pct = parse_num(k, v)?;
    "V3_KILL_AUTO_RECOVER" => |c, k, v| c.v3.kill_auto_recover = parse_bool(k, v)?;
    "V3_KILL_RECOVER_PCT" => |c, k, v| c.v3.kill_recover_pct = parse_num(k, v)?;
    "V3_KILL_RECOVER_AFTER_MS" => |c, k, v| c.v3.kill_recover_after_ms = parse_num(k, v)?;
    "V3_DURABILITY_QUEUE_CAPACITY" => |c, k, v| c.v3.durable_backlog_capacity = parse_num(k, v)?;
    "V3_DURABLE_SOFT_REJECT_PCT" => |c, k, v| c.v3.durable_soft_reject_pct = parse_num(k, v)?;
    "V3_DURABLE_HARD_REJECT_PCT" => |c, k, v| c.v3.durable_hard_reject_pct = parse_num(k, v)?;
    "V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US" => |c, k, v| c.v3.durable_confirm_soft_reject_age_us = parse_num(k, v)?;
    "V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US" => |c, k, v| c.v3.durable_confirm_hard_reject_age_us = parse_num(k, v)?;
    "V3_LOSS_GAP_TIMEOUT_MS" => |c, k, v| c.v3.loss_gap_timeout_ms = parse_num(k, v)?;
    "V3_LOSS_SCAN_INTERVAL_MS" => |c, k, v| c.v3.loss_scan_interval_ms = parse_num(k, v)?;
    "V3_LOSS_SCAN_BATCH" => |c, k, v| c.v3.loss_scan_batch = parse_num(k, v)?;
    "V3_LOSS_WINDOW_SEC" => |c, k, v| c.v3.loss_window_sec = parse_num(k, v)?;
    "V3_SESSION_LOSS_SUSPECT_THRESHOLD" => |c, k, v| c.v3.session_loss_suspect_threshold = parse_num(k, v)?;
    "V3_SHARD_LOSS_SUSPECT_THRESHOLD" => |c, k, v| c.v3.shard_loss_suspect_threshold = parse_num(k, v)?;
    "V3_GLOBAL_LOSS_SUSPECT_THRESHOLD" => |c, k, v| c.v3.global_loss_suspect_threshold = parse_num(k, v)?;
    "V3_CONFIRM_TTL_MS" => |c, k, v| c.v3.confirm_ttl_ms = parse_num(k, v)?;
    "V3_SEQ_RESTART_GAP" => |c, k, v| c.v3.seq_restart_gap = parse_num(k, v)?;
    "V3_ENGINE_NAP_US" => |c, k, v| c.v3.engine_nap_us = parse_num(k, v)?;
    "V3_ENGINE_NAP_MIN_US" => |c, k, v| c.v3.engine_nap_min_us = parse_num(k, v)?;
    "V3_ENGINE_BATCH_MAX" => |c, k, v| c.v3.engine_batch_max = parse_num(k, v)?;
    "GATEWAY_WAL_PATH" => |c, _k, v| c.journal.dir = PathBuf::from(v);
    "GATEWAY_JOURNAL_DIR" => |c, _k, v| c.journal.dir = PathBuf::from(v);
    "GATEWAY_JOURNAL_SEGMENT_BYTES" => |c, k, v| c.journal.segment_bytes = parse_num(k, v)?;
    "AUDIT_FDATASYNC" => |c, k, v| c.journal.fsync = parse_bool(k, v)?;
    "GATEWAY_JOURNAL_PREALLOCATE" => |c, k, v| c.journal.preallocate = parse_bool(k, v)?;
    "AUDIT_FDATASYNC_MAX_WAIT_US" => |c, k, v| c.journal.fdatasync_max_wait_us = parse_num(k, v)?;
    "AUDIT_FDATASYNC_MAX_WAIT_HIGH_US" => |c, k, v| c.journal.fdatasync_max_wait_high_us = parse_num(k, v)?;
    "AUDIT_FDATASYNC_MAX_BATCH" => |c, k, v| c.journal.fdatasync_max_batch = parse_num(k, v)?;
    "GATEWAY_JOURNAL_QUEUE_BATCHES" => |c, k, v| c.journal.queue_batches = parse_num(k, v)?;
    "JOURNAL_DISK_RESERVE_MB" => |c, k, v| c.journal.disk_reserve_mb = parse_num(k, v)?;
    "JOURNAL_FAILURE_HOLD_MS" => |c, k, v| c.journal.failure_hold_ms = parse_num(k, v)?;
    "SWITCHYARD_FAULT_SYNC_DELAY_MS" => |c, k, v| c.journal.fault_sync_delay_ms = parse_num(k, v)?;
    "SWITCHYARD_FAULT_FAIL_WRITE_AT_COMMIT" => |c, k, v| c.journal.fault_fail_write_at_commit = parse_num(k, v)?;
    "SWITCHYARD_FAULT_FAIL_WRITE_COMMITS" => |c, k, v| c.journal.fault_fail_write_commits = parse_num(k, v)?;
    "IDEMPOTENCY_TTL_SEC" => |c, k, v| c.orders.idempotency_ttl_sec = parse_num(k, v)?;
    "ORDER_STORE_SHARDS" => |c, k, v| c.orders.store_shards = parse_num(k, v)?;
    "ORDER_MAX_KEY_LEN" => |c, k, v| c.orders.max_key_len = parse_num(k, v)?;
    "ORDER_MAX_IN_MEMORY" => |c, k, v| c.orders.max_orders_in_memory = parse_num(k, v)?;
    "ORDER_FINISHED_RETENTION_SEC" => |c, k, v| c.orders.finished_retention_sec = parse_num(k, v)?;
    "ORDER_DEFAULT_DURABILITY" => |c, _k, v| c.orders.default_durability = v.trim().to_ascii_lowercase();
    "V2_DURABLE_WAIT_TIMEOUT_MS" => |c, k, v| c.orders.durable_wait_timeout_ms = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_MAX" => |c, k, v| c.orders.inflight_max = parse_num(k, v)?;
    "BACKPRESSURE_WAL_BYTES_MAX" => |c, k, v| c.orders.wal_bytes_max = parse_num(k, v)?;
    "BACKPRESSURE_WAL_AGE_MS_MAX" => |c, k, v| c.orders.wal_age_ms_max = parse_num(k, v)?;
    "BACKPRESSURE_DISK_FREE_PCT_MIN" => |c, k, v| c.orders.disk_free_pct_min = parse_num(k, v)?;
    "BACKPRESSURE_SOFT_WAL_AGE_MS_MAX" => |c, k, v| c.orders.soft_wal_age_ms_max = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_DYNAMIC" => |c, k, v| c.orders.inflight_dynamic = parse_bool(k, v)?;
    "BACKPRESSURE_INFLIGHT_TARGET_WAL_AGE_SEC" => |c, k, v| c.orders.inflight_target_wal_age_sec = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_ALPHA" => |c, k, v| c.orders.inflight_alpha = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_BETA" => |c, k, v| c.orders.inflight_beta = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_MIN" => |c, k, v| c.orders.inflight_min = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_CAP" => |c, k, v| c.orders.inflight_cap = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_INITIAL" => |c, k, v| c.orders.inflight_initial = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_TICK_MS" => |c, k, v| c.orders.inflight_tick_ms = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_SLEW_RATIO" => |c, k, v| c.orders.inflight_slew_ratio = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_HYSTERESIS_OFF_RATIO" => |c, k, v| c.orders.inflight_hysteresis_off_ratio = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_DECLINE_RATIO" => |c, k, v| c.orders.inflight_decline_ratio = parse_num(k, v)?;
    "BACKPRESSURE_INFLIGHT_DECLINE_STREAK" => |c, k, v| c.orders.inflight_decline_streak = parse_num(k, v)?;
    // [stream]: the event stream hub (SSE and WebSocket, §2.5).
    "SSE_BUFFER_SIZE" => |c, k, v| c.stream.buffer_size = parse_num(k, v)?;
    "SSE_ORDER_BUFFER_SIZE" => |c, k, v| c.stream.order_buffer_size = parse_num(k, v)?;
    "SSE_KEEPALIVE_SEC" => |c, k, v| c.stream.keepalive_ms = parse_secs_as_ms(k, v)?;
    "SSE_DISPATCH_QUEUE_CAPACITY" => |c, k, v| c.stream.dispatch_queue_capacity = parse_num(k, v)?;
    "SSE_CLIENT_QUEUE_CAPACITY" => |c, k, v| c.stream.client_queue_capacity = parse_num(k, v)?;
    "SSE_CLIENT_QUEUE_MAX_BYTES" => |c, k, v| c.stream.client_queue_max_bytes = parse_num(k, v)?;
    "SSE_MAX_CLIENTS" => |c, k, v| c.stream.max_clients = parse_num(k, v)?;
    "SSE_REPLAY_MAX_EVENTS" => |c, k, v| c.stream.replay_max_events = parse_num(k, v)?;
    "SSE_REPLAY_MAX_BYTES" => |c, k, v| c.stream.replay_max_bytes = parse_num(k, v)?;
    // [audit]: the hash chain over the journal (§3.8).
    "AUDIT_HMAC_KEY" => |c, _k, v| c.audit.hmac_key = v.to_string();
    "AUDIT_HMAC_KEYS" => |c, _k, v| c.audit.hmac_keys = v.to_string();
    "AUDIT_KEY_ID" => |c, _k, v| c.audit.key_id = v.trim().to_string();
    "AUDIT_ANCHOR_PATH" => |c, _k, v| c.audit.anchor_path = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
    "AUDIT_ANCHOR_EXPORT_DIR" => |c, _k, v| c.audit.anchor_export_dir = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
    "AUDIT_CHAIN_POLL_MS" => |c, k, v| c.audit.poll_interval_ms = parse_num(k, v)?;
    "AUDIT_CHAIN_SYNC_MS" => |c, k, v| c.audit.sync_interval_ms = parse_num(k, v)?;
    "EXCHANGE_TRANSPORT" => |c, _k, v| c.venues.transport = v.trim().to_string();
    "SOR_VENUES" => |c, _k, v| c.venues.names = v.to_string();
    "SOR_DEFAULT_VENUE" => |c, _k, v| c.venues.default_venue = v.trim().to_string();
    "SOR_SYMBOL_ROUTES" => |c, _k, v| c.venues.symbol_routes = v.to_string();
    "EXCHANGE_TCP_HOST" => |c, _k, v| c.venues.host = v.trim().to_string();
    "EXCHANGE_TCP_PORT" => |c, k, v| c.venues.port = parse_num(k, v)?;
    "GATEWAY_ID" => |c, _k, v| c.venues.gateway_id = v.trim().to_string();
    "VENUE_HEARTBEAT_MS" => |c, k, v| c.venues.heartbeat_ms = parse_num(k, v)?;
    "VENUE_RECONNECT_MAX_MS" => |c, k, v| c.venues.reconnect_max_ms = parse_num(k, v)?;
    "VENUE_LOGON_TIMEOUT_MS" => |c, k, v| c.venues.logon_timeout_ms = parse_num(k, v)?;
    "VENUE_STATUS_WINDOW" => |c, k, v| c.venues.status_window = parse_num(k, v)?;
    "ACCOUNT_SHARDS_TOTAL" => |c, k, v| c.cluster.account_shards = parse_num(k, v)?;
    "ACCOUNT_SHARDS_OWNED" => |c, _k, v| c.cluster.owned = v.to_string();
    "KAFKA_ENABLE" => |c, k, v| c.bus.enable = parse_bool(k, v)?;
    "KAFKA_BOOTSTRAP_SERVERS" => |c, _k, v| c.bus.bootstrap_servers = v.trim().to_string();
    "KAFKA_TOPIC" => |c, _k, v| c.bus.topic = v.trim().to_string();
    "KAFKA_CLIENT_ID" => |c, _k, v| c.bus.client_id = v.trim().to_string();
    "KAFKA_LINGER_MS" => |c, k, v| c.bus.linger_ms = parse_num(k, v)?;
    "OUTBOX_OFFSET_PATH" => |c, _k, v| c.bus.offset_path = v.trim().to_string();
    "OUTBOX_BACKOFF_BASE_MS" => |c, k, v| c.bus.backoff_base_ms = parse_num(k, v)?;
    "OUTBOX_BACKOFF_MAX_MS" => |c, k, v| c.bus.backoff_max_ms = parse_num(k, v)?;
    "OUTBOX_BATCH_MAX" => |c, k, v| c.bus.batch_max = parse_num(k, v)?;
    "BUS_REPLICATED_WAIT_TIMEOUT_MS" => |c, k, v| c.bus.replicated_wait_timeout_ms = parse_num(k, v)?;
}

impl Config {
    /// Loads the TOML file (if any), applies the environment, validates.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut cfg = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .map_err(|e| err(&p.display().to_string(), e.to_string()))?;
                toml::from_str(&text).map_err(|e| toml_error(p, &text, &e))?
            }
            None => Config::default(),
        };
        cfg.apply_env(env)?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn apply_env(
        &mut self,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(), ConfigError> {
        let env: HashMap<String, String> = env.into_iter().collect();
        // `V3_HTTP_ENABLE` sets both HTTP flags unless they are set themselves (§4).
        if let Some(v) = env.get("V3_HTTP_ENABLE") {
            let on = parse_bool("V3_HTTP_ENABLE", v)?;
            self.v3.http_ingress_enable = on;
            self.v3.http_confirm_enable = on;
        }
        for (name, set) in ENV_VARS {
            if let Some(v) = env.get(*name) {
                set(self, name, v)?;
            }
        }
        self.venues.apply_env(&env)
    }

    /// Cross-field rules; the reference's clamps become errors so a typo cannot go unnoticed.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.orders.validate()?;
        self.stream.validate()?;
        self.audit.validate()?;
        self.venues.validate()?;
        self.bus.validate()?;
        self.cluster.validate()?;
        if self.gateway.ingress_rt_priority > 99 {
            return Err(err(
                "GATEWAY_INGRESS_RT_PRIORITY",
                "must be 0 (off) or 1..=99",
            ));
        }
        let v = &self.v3;
        if v.shard_count == 0 || v.shard_count > 256 {
            return Err(err("V3_SHARD_COUNT", "must be 1..=256"));
        }
        if v.ingress_queue_capacity < 16 || v.ingress_queue_capacity > 1 << 24 {
            return Err(err("V3_INGRESS_QUEUE_CAPACITY", "must be 16..=16777216"));
        }
        if !(1..=99).contains(&v.soft_reject_pct) {
            return Err(err("V3_SOFT_REJECT_PCT", "must be 1..=99"));
        }
        if v.hard_reject_pct <= v.soft_reject_pct || v.hard_reject_pct > 100 {
            return Err(err(
                "V3_HARD_REJECT_PCT",
                "must be above V3_SOFT_REJECT_PCT and ≤ 100",
            ));
        }
        if v.kill_reject_pct <= v.hard_reject_pct || v.kill_reject_pct > 100 {
            return Err(err(
                "V3_KILL_REJECT_PCT",
                "must be above V3_HARD_REJECT_PCT and ≤ 100",
            ));
        }
        if v.kill_recover_pct > 94 {
            return Err(err("V3_KILL_RECOVER_PCT", "must be ≤ 94"));
        }
        if v.durable_hard_reject_pct <= v.durable_soft_reject_pct || v.durable_hard_reject_pct > 100
        {
            return Err(err(
                "V3_DURABLE_HARD_REJECT_PCT",
                "must be above V3_DURABLE_SOFT_REJECT_PCT and ≤ 100",
            ));
        }
        if v.durable_backlog_capacity == 0 {
            return Err(err("V3_DURABILITY_QUEUE_CAPACITY", "must be > 0"));
        }
        if v.durable_confirm_soft_reject_age_us > 0
            && v.durable_confirm_hard_reject_age_us > 0
            && v.durable_confirm_soft_reject_age_us > v.durable_confirm_hard_reject_age_us
        {
            return Err(err(
                "V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US",
                "must not exceed V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US",
            ));
        }
        if v.loss_scan_interval_ms < 10 {
            return Err(err("V3_LOSS_SCAN_INTERVAL_MS", "must be ≥ 10"));
        }
        if v.engine_nap_us > 100_000 {
            return Err(err("V3_ENGINE_NAP_US", "must be ≤ 100000"));
        }
        if v.engine_batch_max == 0 || v.engine_batch_max > 65_536 {
            return Err(err("V3_ENGINE_BATCH_MAX", "must be 1..=65536"));
        }
        let in_flight_max = (v.ingress_queue_capacity as u64)
            + (self.journal.queue_batches as u64) * (v.engine_batch_max as u64);
        if v.seq_restart_gap < in_flight_max {
            return Err(err(
                "V3_SEQ_RESTART_GAP",
                format!("must be ≥ the most orders that can be in flight ({in_flight_max})"),
            ));
        }
        if v.tcp_enable && v.tcp_port == 0 {
            // The reference silently leaves TCP off in this case; say so instead.
            return Err(err(
                "V3_TCP_PORT",
                "V3_TCP_ENABLE=true needs V3_TCP_PORT > 0",
            ));
        }
        self.validate_tls()?;
        if self.risk.daily_notional_limit > DAILY_NOTIONAL_MAX {
            return Err(err(
                "V3_RISK_DAILY_NOTIONAL_LIMIT",
                format!("must be ≤ {DAILY_NOTIONAL_MAX}"),
            ));
        }
        if self.journal.segment_bytes < 4096 {
            return Err(err("GATEWAY_JOURNAL_SEGMENT_BYTES", "must be ≥ 4096"));
        }
        if self.journal.fdatasync_max_wait_us > 100_000 {
            return Err(err("AUDIT_FDATASYNC_MAX_WAIT_US", "must be ≤ 100000"));
        }
        if self.journal.fdatasync_max_wait_high_us > 100_000 {
            return Err(err("AUDIT_FDATASYNC_MAX_WAIT_HIGH_US", "must be ≤ 100000"));
        }
        if self.journal.fdatasync_max_batch == 0 {
            return Err(err("AUDIT_FDATASYNC_MAX_BATCH", "must be > 0"));
        }
        if self.journal.queue_batches == 0 {
            return Err(err("journal.queue_batches", "must be > 0"));
        }
        if self.journal.disk_reserve_mb > 1 << 30 {
            return Err(err(
                "JOURNAL_DISK_RESERVE_MB",
                "must be ≤ 1073741824 (1 PiB)",
            ));
        }
        if !(1..=60_000).contains(&self.journal.failure_hold_ms) {
            return Err(err("JOURNAL_FAILURE_HOLD_MS", "must be in 1..=60000"));
        }
        self.risk_limits().map(|_| ())
    }

    /// TLS settings: certificate and key both or neither, `V3_TCP_TLS=true` only with them,
    /// and the files readable and usable (so a bad path stops startup, naming the variable).
    fn validate_tls(&self) -> Result<(), ConfigError> {
        let g = &self.gateway;
        match (g.tls_cert.is_empty(), g.tls_key.is_empty()) {
            (true, true) => {
                if self.v3.tcp_tls == Some(true) {
                    return Err(err(
                        "V3_TCP_TLS",
                        "V3_TCP_TLS=true needs GATEWAY_TLS_CERT and GATEWAY_TLS_KEY",
                    ));
                }
                Ok(())
            }
            (false, true) => Err(err(
                "GATEWAY_TLS_KEY",
                "GATEWAY_TLS_CERT is set, so GATEWAY_TLS_KEY (the private key's PEM file) must be too",
            )),
            (true, false) => Err(err(
                "GATEWAY_TLS_CERT",
                "GATEWAY_TLS_KEY is set, so GATEWAY_TLS_CERT (the certificate chain's PEM file) must be too",
            )),
            (false, false) => crate::tls::server_config(&g.tls_cert, &g.tls_key).map(|_| ()),
        }
    }

    /// Whether the HTTP listener speaks TLS.
    pub fn http_tls(&self) -> bool {
        !self.gateway.tls_cert.is_empty()
    }

    /// Whether the v3 TCP ingress speaks TLS (`V3_TCP_TLS`, by default as the HTTP listener).
    pub fn tcp_tls(&self) -> bool {
        self.v3.tcp_tls.unwrap_or(true) && self.http_tls()
    }

    /// Builds the risk tables from the configuration.
    pub fn risk_limits(&self) -> Result<RiskLimits, ConfigError> {
        let r = &self.risk;
        let mut symbols = parse_symbol_limits(&r.symbol_limits, r.max_order_qty, r.max_notional)?;
        apply_symbol_pairs(
            &r.symbol_price_bands,
            "V3_RISK_SYMBOL_PRICE_BANDS",
            &mut symbols,
            |s, a, b| {
                s.min_price = a;
                s.max_price = b;
            },
        )?;
        apply_symbol_pairs(
            &r.symbol_collars,
            "V3_RISK_SYMBOL_COLLARS",
            &mut symbols,
            |s, a, b| {
                s.ref_price.store(a, std::sync::atomic::Ordering::Relaxed);
                s.collar_bps = b.min(u32::MAX as u64) as u32;
            },
        )?;
        let default_rules = AccountRules {
            allowed_symbols: None,
            allowed_sides: parse_sides("RISK_ALLOWED_SIDES", &r.allowed_sides)?,
            allowed_types: types_mask(r.allow_market),
            max_qty: None,
            max_notional: None,
            min_price: r.min_price,
            max_price: r.max_price,
            daily_notional_limit: r.daily_notional_limit,
            max_abs_position: r.max_abs_position_qty,
            rate_per_sec: r.rate_per_sec,
            rate_burst: if r.rate_burst == 0 {
                r.rate_per_sec
            } else {
                r.rate_burst
            },
        };
        let mut accounts = HashMap::new();
        for (name, a) in &r.accounts {
            accounts.insert(name.clone(), account_rules(name, a, &default_rules)?);
        }
        Ok(RiskLimits::new(
            r.max_order_qty,
            r.max_notional,
            r.strict_symbols,
            symbols,
            default_rules,
            accounts,
        ))
    }
}

fn toml_error(path: &Path, text: &str, e: &toml::de::Error) -> ConfigError {
    err(
        &path.display().to_string(),
        e.message().to_string() + &span_hint(text, e),
    )
}

/// Where the error is: the line number and the line itself, so that a mistyped value names its
/// key (serde's message alone says only "invalid type: …").
fn span_hint(text: &str, e: &toml::de::Error) -> String {
    e.span().map_or(String::new(), |s| {
        let before = text.get(..s.start).unwrap_or(text);
        let line_no = before.matches('\n').count() + 1;
        let line = text.lines().nth(line_no - 1).unwrap_or("").trim();
        format!(" (line {line_no}: {line})")
    })
}

fn parse_symbol(key: &str, s: &str) -> Result<Symbol, ConfigError> {
    Symbol::parse(s.trim().as_bytes()).map_err(|e| err(key, format!("bad symbol {s:?}: {e:?}")))
}

fn parse_symbol_limits(
    spec: &str,
    max_qty: u64,
    max_notional: u64,
) -> Result<Vec<SymbolLimits>, ConfigError> {
    const KEY: &str = "V3_RISK_SYMBOL_LIMITS";
    let mut out: Vec<SymbolLimits> = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let mut parts = entry.split(':');
        let sym = parse_symbol(KEY, parts.next().unwrap_or(""))?;
        let qty = match parts.next().map(str::trim) {
            Some(q) if !q.is_empty() => parse_num(KEY, q)?,
            _ => max_qty,
        };
        let notional = match parts.next().map(str::trim) {
            Some(n) if !n.is_empty() => parse_num(KEY, n)?,
            _ => max_notional,
        };
        if parts.next().is_some() {
            return Err(err(KEY, format!("entry {entry:?} has more than 3 parts")));
        }
        if out.iter().any(|s| s.symbol == sym) {
            return Err(err(KEY, format!("symbol {sym} listed twice")));
        }
        out.push(SymbolLimits::new(sym, qty, notional));
    }
    if out.len() > 4096 {
        return Err(err(KEY, "at most 4096 symbols"));
    }
    Ok(out)
}

fn apply_symbol_pairs(
    spec: &str,
    key: &str,
    symbols: &mut [SymbolLimits],
    set: impl Fn(&mut SymbolLimits, u64, u64),
) -> Result<(), ConfigError> {
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let parts: Vec<&str> = entry.split(':').collect();
        if parts.len() != 3 {
            return Err(err(key, format!("entry {entry:?} must be SYM:a:b")));
        }
        let sym = parse_symbol(key, parts[0])?;
        let target = symbols
            .iter_mut()
            .find(|s| s.symbol == sym)
            .ok_or_else(|| err(key, format!("symbol {sym} is not in V3_RISK_SYMBOL_LIMITS")))?;
        set(target, parse_num(key, parts[1])?, parse_num(key, parts[2])?);
    }
    Ok(())
}

fn parse_sides(key: &str, spec: &str) -> Result<u8, ConfigError> {
    let mut mask = 0;
    for s in spec
        .split(['|', ','])
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        mask |= Side::parse(s)
            .ok_or_else(|| err(key, format!("unknown side {s:?}")))?
            .mask();
    }
    Ok(mask)
}

fn types_mask(allow_market: bool) -> u8 {
    OrderType::Limit.mask()
        | if allow_market {
            OrderType::Market.mask()
        } else {
            0
        }
}

fn account_rules(
    name: &str,
    a: &AccountSection,
    d: &AccountRules,
) -> Result<AccountRules, ConfigError> {
    let key = format!("risk.accounts.{name}");
    let allowed_symbols = match &a.allowed_symbols {
        None => None,
        Some(list) => Some(
            list.iter()
                .map(|s| parse_symbol(&key, s))
                .collect::<Result<Vec<_>, _>>()?,
        ),
    };
    let rate = a.rate_per_sec.unwrap_or(d.rate_per_sec);
    Ok(AccountRules {
        allowed_symbols,
        allowed_sides: match &a.allowed_sides {
            Some(s) => parse_sides(&key, s)?,
            None => d.allowed_sides,
        },
        allowed_types: a.allow_market.map_or(d.allowed_types, types_mask),
        max_qty: a.max_qty,
        max_notional: a.max_notional,
        min_price: a.min_price.unwrap_or(d.min_price),
        max_price: a.max_price.unwrap_or(d.max_price),
        daily_notional_limit: a.daily_notional_limit.unwrap_or(d.daily_notional_limit),
        max_abs_position: a.max_abs_position_qty.unwrap_or(d.max_abs_position),
        rate_per_sec: rate,
        rate_burst: a.rate_burst.unwrap_or(if a.rate_per_sec.is_some() {
            rate
        } else {
            d.rate_burst
        }),
    })
}

// ---- [stream]: the event stream hub (SSE and WebSocket, §2.5; crate::stream) ----

/// The event stream hub. Every queue and buffer is bounded; see `docs/architecture.md` for
/// what the bounds add up to in bytes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StreamSection {
    /// `SSE_BUFFER_SIZE`: replay ring per account, events.
    pub buffer_size: usize,
    /// `SSE_ORDER_BUFFER_SIZE`: replay ring per order, events.
    pub order_buffer_size: usize,
    /// `SSE_KEEPALIVE_SEC` (seconds, decimals allowed: `0.05`): period of the SSE
    /// `: keep-alive` comment and of WebSocket pings, ms.
    pub keepalive_ms: u64,
    /// `SSE_DISPATCH_QUEUE_CAPACITY`: publish calls waiting for the dispatcher; beyond it an
    /// event is dropped, counted, and its account's subscribers get `resync_required`.
    pub dispatch_queue_capacity: usize,
    /// `SSE_CLIENT_QUEUE_CAPACITY`: events queued per subscriber; a subscriber that would
    /// exceed it is cut off.
    pub client_queue_capacity: usize,
    /// `SSE_CLIENT_QUEUE_MAX_BYTES`: frame bytes queued per subscriber, likewise.
    pub client_queue_max_bytes: usize,
    /// `SSE_MAX_CLIENTS`: open SSE and WebSocket streams; beyond it 503 `TOO_MANY_STREAMS`.
    pub max_clients: usize,
    /// `SSE_REPLAY_MAX_EVENTS`: events kept for replay, all scopes together (also bounds
    /// the tracked accounts and orders: a scope is forgotten with its last buffered event).
    pub replay_max_events: usize,
    /// `SSE_REPLAY_MAX_BYTES`: bytes kept for replay (data + key + 192 B per event).
    pub replay_max_bytes: usize,
}

impl Default for StreamSection {
    fn default() -> Self {
        StreamSection {
            buffer_size: 1_000,
            order_buffer_size: 64,
            keepalive_ms: 15_000,
            dispatch_queue_capacity: 10_000,
            client_queue_capacity: 4_096,
            client_queue_max_bytes: 1 << 20,
            max_clients: 10_000,
            replay_max_events: 100_000,
            replay_max_bytes: 32 << 20,
        }
    }
}

impl StreamSection {
    fn validate(&self) -> Result<(), ConfigError> {
        let s = self;
        if !(1..=100_000).contains(&s.buffer_size) {
            return Err(err("SSE_BUFFER_SIZE", "must be 1..=100000"));
        }
        if !(1..=10_000).contains(&s.order_buffer_size) {
            return Err(err("SSE_ORDER_BUFFER_SIZE", "must be 1..=10000"));
        }
        if !(10..=3_600_000).contains(&s.keepalive_ms) {
            return Err(err("SSE_KEEPALIVE_SEC", "must be 0.01..=3600 seconds"));
        }
        if !(1..=1 << 24).contains(&s.dispatch_queue_capacity) {
            return Err(err("SSE_DISPATCH_QUEUE_CAPACITY", "must be 1..=16777216"));
        }
        if !(1..=1 << 20).contains(&s.client_queue_capacity) {
            return Err(err("SSE_CLIENT_QUEUE_CAPACITY", "must be 1..=1048576"));
        }
        if s.client_queue_max_bytes < 1024 {
            return Err(err("SSE_CLIENT_QUEUE_MAX_BYTES", "must be ≥ 1024"));
        }
        if !(1..=1_000_000).contains(&s.max_clients) {
            return Err(err("SSE_MAX_CLIENTS", "must be 1..=1000000"));
        }
        if !(1..=1 << 24).contains(&s.replay_max_events) {
            return Err(err("SSE_REPLAY_MAX_EVENTS", "must be 1..=16777216"));
        }
        if s.replay_max_bytes < 64 * 1024 {
            return Err(err("SSE_REPLAY_MAX_BYTES", "must be ≥ 65536"));
        }
        Ok(())
    }
}

/// Seconds, decimals allowed (`15`, `0.05`), as milliseconds.
fn parse_secs_as_ms(key: &str, v: &str) -> Result<u64, ConfigError> {
    let secs: f64 = parse_num(key, v)?;
    if !secs.is_finite() || secs < 0.0 {
        return Err(err(key, format!("not a number of seconds: {v:?}")));
    }
    Ok((secs * 1_000.0).round() as u64)
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    use super::tests::env;

    // Goal: the SSE_* variables set the [stream] section, seconds may have decimals, and bad
    // values are refused naming the variable; the TOML section rejects unknown keys.
    #[test]
    fn stream_section_env_and_validation() {
        let c = Config::load(
            None,
            env(&[
                ("SSE_BUFFER_SIZE", "10"),
                ("SSE_KEEPALIVE_SEC", "0.05"),
                ("SSE_DISPATCH_QUEUE_CAPACITY", "20"),
                ("SSE_MAX_CLIENTS", "3"),
            ]),
        )
        .unwrap();
        assert_eq!(c.stream.buffer_size, 10);
        assert_eq!(c.stream.keepalive_ms, 50);
        assert_eq!(c.stream.dispatch_queue_capacity, 20);
        assert_eq!(c.stream.max_clients, 3);
        assert_eq!(Config::default().stream.keepalive_ms, 15_000);
        for (k, v) in [
            ("SSE_BUFFER_SIZE", "0"),
            ("SSE_KEEPALIVE_SEC", "0"),
            ("SSE_KEEPALIVE_SEC", "soon"),
            ("SSE_CLIENT_QUEUE_MAX_BYTES", "10"),
            ("SSE_MAX_CLIENTS", "0"),
        ] {
            let e = Config::load(None, env(&[(k, v)])).unwrap_err();
            assert_eq!(e.key, k, "{k}={v}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[stream]\nbuffer_size = 5\norder_buffer_size = 2\n").unwrap();
        let c = Config::load(Some(&p), env(&[])).unwrap();
        assert_eq!((c.stream.buffer_size, c.stream.order_buffer_size), (5, 2));
        std::fs::write(&p, "[stream]\nbufer_size = 5\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err();
        assert!(e.message.contains("bufer_size"), "{e}");
    }
}

// ---- [audit]: the tamper-evident hash chain over the journal (§3.8; switchyard_journal::audit) ----

/// The audit chain: on when a key is configured (`hmac_key` or `hmac_keys`).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditSection {
    /// `AUDIT_HMAC_KEY`: one key, id `key-1` (`base64:` prefix allowed).
    pub hmac_key: String,
    /// `AUDIT_HMAC_KEYS`: `id:value,id2:base64:...` for rotation; wins over `hmac_key`.
    pub hmac_keys: String,
    /// `AUDIT_KEY_ID`: the key new records are chained with; empty = the first.
    pub key_id: String,
    /// `AUDIT_ANCHOR_PATH`; unset = `<journal dir>/audit/anchor.json`.
    pub anchor_path: Option<PathBuf>,
    /// `AUDIT_ANCHOR_EXPORT_DIR`: the first anchor of each UTC day is copied there.
    pub anchor_export_dir: Option<PathBuf>,
    /// `AUDIT_CHAIN_POLL_MS`: how often the idle auditor looks for new durable records.
    pub poll_interval_ms: u64,
    /// `AUDIT_CHAIN_SYNC_MS`: longest wait before new chain entries are fdatasynced and the
    /// anchor is replaced.
    pub sync_interval_ms: u64,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            hmac_key: String::new(),
            hmac_keys: String::new(),
            key_id: String::new(),
            anchor_path: None,
            anchor_export_dir: None,
            poll_interval_ms: 25,
            sync_interval_ms: 100,
        }
    }
}

impl std::fmt::Debug for AuditSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Key values are secrets: show only whether they are set.
        f.debug_struct("AuditSection")
            .field("hmac_key", &(!self.hmac_key.is_empty()).then_some("<set>"))
            .field(
                "hmac_keys",
                &(!self.hmac_keys.is_empty()).then_some("<set>"),
            )
            .field("key_id", &self.key_id)
            .field("anchor_path", &self.anchor_path)
            .field("anchor_export_dir", &self.anchor_export_dir)
            .field("poll_interval_ms", &self.poll_interval_ms)
            .field("sync_interval_ms", &self.sync_interval_ms)
            .finish()
    }
}

impl AuditSection {
    /// The key ring; `None` when no key is configured (the chain is off).
    pub fn key_ring(&self) -> Result<Option<switchyard_journal::audit::KeyRing>, ConfigError> {
        let opt = |s: &str| Some(s.to_string()).filter(|s| !s.trim().is_empty());
        let (keys, key, id) = (opt(&self.hmac_keys), opt(&self.hmac_key), opt(&self.key_id));
        switchyard_journal::audit::KeyRing::from_settings(
            keys.as_deref(),
            key.as_deref(),
            id.as_deref(),
        )
        .map_err(|e| {
            let var = if e.0.starts_with("AUDIT_KEY_ID") {
                "AUDIT_KEY_ID"
            } else if keys.is_some() {
                "AUDIT_HMAC_KEYS"
            } else {
                "AUDIT_HMAC_KEY"
            };
            err(var, e.0)
        })
    }

    fn validate(&self) -> Result<(), ConfigError> {
        self.key_ring()?;
        if !(1..=1_000).contains(&self.poll_interval_ms) {
            return Err(err("AUDIT_CHAIN_POLL_MS", "must be 1..=1000"));
        }
        if !(1..=60_000).contains(&self.sync_interval_ms) {
            return Err(err("AUDIT_CHAIN_SYNC_MS", "must be 1..=60000"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod audit_tests {
    use super::*;

    use super::tests::env;

    // Goal: the chain is off without a key, on with the reference's variables, and a bad key
    // setting stops startup naming the variable without echoing the secret.
    #[test]
    fn audit_section_env_and_validation() {
        let c = Config::load(None, env(&[])).unwrap();
        assert!(c.audit.key_ring().unwrap().is_none());
        let c = Config::load(
            None,
            env(&[
                ("AUDIT_HMAC_KEYS", "k1:first,k2:base64:c2Vjb25k"),
                ("AUDIT_KEY_ID", "k2"),
                ("AUDIT_ANCHOR_PATH", "/tmp/x/anchor.json"),
                ("AUDIT_ANCHOR_EXPORT_DIR", "/tmp/x/export"),
            ]),
        )
        .unwrap();
        let ring = c.audit.key_ring().unwrap().unwrap();
        assert_eq!((ring.keys().len(), ring.active().id()), (2, "k2"));
        assert_eq!(
            c.audit.anchor_path,
            Some(PathBuf::from("/tmp/x/anchor.json"))
        );
        assert!(!format!("{:?}", c.audit).contains("first"));
        let c = Config::load(None, env(&[("AUDIT_HMAC_KEY", "solo")])).unwrap();
        assert_eq!(c.audit.key_ring().unwrap().unwrap().active().id(), "key-1");
        for (vars, key) in [
            (
                &[("AUDIT_HMAC_KEYS", "k1:a"), ("AUDIT_KEY_ID", "nope")][..],
                "AUDIT_KEY_ID",
            ),
            (&[("AUDIT_HMAC_KEYS", "k1:a,k1:b")][..], "AUDIT_HMAC_KEYS"),
            (&[("AUDIT_HMAC_KEY", "base64:***")][..], "AUDIT_HMAC_KEY"),
            (&[("AUDIT_CHAIN_POLL_MS", "0")][..], "AUDIT_CHAIN_POLL_MS"),
        ] {
            let e = Config::load(None, env(vars)).unwrap_err();
            assert_eq!(e.key, key, "{vars:?}: {e}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[audit]\nhmac_keys = \"a:b\"\nsync_interval_ms = 50\n").unwrap();
        let c = Config::load(Some(&p), env(&[])).unwrap();
        assert_eq!(c.audit.sync_interval_ms, 50);
        std::fs::write(&p, "[audit]\nhmac_kyes = \"a:b\"\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err();
        assert!(e.message.contains("hmac_kyes"), "{e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Environment pairs as `Config::load` takes them (shared by the section test modules).
    pub(super) fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Goal: reference variable names override defaults and bad values name the variable.
    #[test]
    fn env_overrides_and_errors() {
        let c = Config::load(
            None,
            env(&[
                ("GATEWAY_PORT", "9000"),
                ("V3_TCP_ENABLE", "yes"),
                ("V3_TCP_PORT", "9100"),
            ]),
        )
        .unwrap();
        assert_eq!(c.gateway.port, 9000);
        assert!(c.v3.tcp_enable);
        let e = Config::load(None, env(&[("GATEWAY_PORT", "abc")])).unwrap_err();
        assert_eq!(e.key, "GATEWAY_PORT");
        let e = Config::load(None, env(&[("V3_TCP_ENABLE", "maybe")])).unwrap_err();
        assert_eq!(e.key, "V3_TCP_ENABLE");
        let e = Config::load(None, env(&[("V3_HARD_REJECT_PCT", "60")])).unwrap_err();
        assert_eq!(e.key, "V3_HARD_REJECT_PCT");
        let e = Config::load(None, env(&[("V3_RISK_SYMBOL_LIMITS", "AAPL:x")])).unwrap_err();
        assert_eq!(e.key, "V3_RISK_SYMBOL_LIMITS");
        let c = Config::load(None, env(&[("GATEWAY_BACKGROUND_SCHED", "normal")])).unwrap();
        assert!(!c.gateway.background_sched_batch);
        let e = Config::load(None, env(&[("GATEWAY_BACKGROUND_SCHED", "fifo")])).unwrap_err();
        assert_eq!(e.key, "GATEWAY_BACKGROUND_SCHED");
        let c = Config::load(None, env(&[("GATEWAY_INGRESS_RT_PRIORITY", "10")])).unwrap();
        assert_eq!(c.gateway.ingress_rt_priority, 10);
        for bad in ["100", "-1", "high"] {
            let e = Config::load(None, env(&[("GATEWAY_INGRESS_RT_PRIORITY", bad)])).unwrap_err();
            assert_eq!(e.key, "GATEWAY_INGRESS_RT_PRIORITY", "{bad}");
        }
    }

    // Goal: V3_HTTP_ENABLE sets both HTTP switches unless they are given themselves.
    #[test]
    fn http_enable_umbrella() {
        let c = Config::load(None, env(&[("V3_HTTP_ENABLE", "false")])).unwrap();
        assert!(!c.v3.http_ingress_enable && !c.v3.http_confirm_enable);
        let c = Config::load(
            None,
            env(&[("V3_HTTP_ENABLE", "false"), ("V3_HTTP_CONFIRM_ENABLE", "1")]),
        )
        .unwrap();
        assert!(!c.v3.http_ingress_enable && c.v3.http_confirm_enable);
    }

    // Goal: unknown TOML keys stop startup with the key named.
    #[test]
    fn toml_unknown_key() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "[gateway]\nport = 1\nprot = 2\n").unwrap();
        let e = Config::load(Some(&p), env(&[])).unwrap_err();
        assert!(e.message.contains("prot"), "{e}");
        std::fs::write(&p, "[risk]\nsymbol_limits = \"AAPL:5\"\n[risk.accounts.alice]\nmax_qty = 3\nallowed_sides = \"BUY\"\n").unwrap();
        let c = Config::load(Some(&p), env(&[])).unwrap();
        let limits = c.risk_limits().unwrap();
        assert_eq!(limits.rules_for("alice").max_qty, Some(3));
        assert_eq!(limits.symbols()[0].max_qty, 5);
    }
}
