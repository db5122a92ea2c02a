//! Configuration: [`VenueConfig`] with its defaults in one place, built from environment
//! variables under the reference's names (`EXCHANGE_TCP_BIND`, `EXCHANGE_TCP_PORT`,
//! `EXCHANGE_SIM_*`, §2.6 and §3.10), where `<VAR>_<VENUE>` (venue name upper-cased, e.g.
//! `EXCHANGE_SIM_REJECT_ALL_SIMA`) beats `<VAR>`; then [`SimArgs`] (command-line flags) beat
//! both. A bad value is an error that names the variable or flag.

use std::net::IpAddr;
use std::path::PathBuf;

use switchyard_core::Symbol;

/// What the venue does, how it misbehaves on purpose, and its market makers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueConfig {
    /// The venue's name: sent in `LOGON_ACK`, names the state file, and is the suffix of
    /// per-venue environment overrides.
    pub name: String,
    pub bind: IpAddr,
    /// TCP port; 0 picks a free one (tests, embedded sims).
    pub port: u16,
    /// Where the append-only state log lives; `None` keeps everything in memory only.
    pub state_dir: Option<PathBuf>,
    /// fdatasync the state log after every write; without it the log survives a process
    /// kill (page cache) but not a machine crash.
    pub fsync: bool,
    /// Every message to a gateway leaves this long after the venue decided it.
    pub delay_ms: u64,
    /// The market maker shows each price level as this many equal orders, so an order that
    /// takes a whole level fills in this many reports (the reference's partial steps).
    pub partial_steps: u32,
    /// Heartbeat interval when a `LOGON` asks for none (0).
    pub heartbeat_ms: u64,
    /// Reports kept per gateway for `RESEND` and logon catch-up.
    pub retention: usize,
    /// Messages queued for one connection's writer at most; a connection that falls this
    /// far behind is closed as a slow consumer (its reports stay retained).
    pub outbound_queue: usize,
    /// At most one `TOB` per symbol per this many milliseconds (0: every change).
    pub tob_interval_ms: u64,
    /// Open connections at most; more are closed at once.
    pub max_connections: usize,
    /// Books at most; a `NEW` for one more symbol is rejected (`TOO_MANY_SYMBOLS`).
    pub max_symbols: usize,
    /// Seed of every random choice (market-maker walk, faults); `None`: from the clock.
    pub seed: Option<u64>,
    pub faults: FaultConfig,
    pub mm: MmConfig,
}

/// Deliberate misbehaviour. Faults touch only the wire: the venue's books, orders, report
/// log and sequence numbers are never affected, so a gateway can always recover the truth
/// with `RESEND` and `STATUS`. They apply to gateway sessions, not to observers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FaultConfig {
    /// Every `NEW` is answered `REJECTED` (reason `REJECT_ALL`).
    pub reject_all: bool,
    /// Close a connection after it has carried this many messages (0: never); a new
    /// connection counts from zero again.
    pub drop_after: u64,
    /// After every this many messages on a connection (0: never), stop reading and writing
    /// it (heartbeats included) for `stall_ms`.
    pub stall_after: u64,
    /// How long each stall lasts.
    pub stall_ms: u64,
    /// Percent of reports sent twice (same `seq`).
    pub duplicate_pct: u8,
    /// Percent of reports held back and sent after the next message.
    pub reorder_pct: u8,
    /// Percent of reports not sent at all (still retained: `RESEND` recovers them).
    pub lose_pct: u8,
}

/// The simulated counterparties: one market maker per symbol.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MmConfig {
    pub enabled: bool,
    /// Symbols quoted from the start, with their starting reference prices (minor units).
    pub symbols: Vec<(Symbol, u64)>,
    /// Price levels quoted on each side.
    pub levels: u32,
    /// Quantity quoted at each level.
    pub size: u64,
    /// Distance from best bid to best ask, in basis points of the reference price (≥ 2
    /// minor units).
    pub spread_bps: u64,
    /// Distance between consecutive levels, in basis points (≥ 1 minor unit).
    pub level_gap_bps: u64,
    /// Size of one random-walk step of the reference price, in basis points (0: no walk).
    pub step_bps: u64,
    /// How often the reference price steps and the maker re-quotes (refilling what traded).
    pub interval_ms: u64,
}

/// The gateway's default symbol table, with plausible prices in cents.
pub const DEFAULT_SYMBOLS: &str =
    "AAPL=19000,MSFT=42000,NVDA=12000,BTC=6000000,ETH=300000,SOL=15000";

/// Heartbeat intervals a `LOGON` may ask for are clamped to this range (milliseconds).
pub const HEARTBEAT_MS_MIN: u64 = 50;
pub const HEARTBEAT_MS_MAX: u64 = 60_000;

impl Default for VenueConfig {
    fn default() -> Self {
        VenueConfig {
            name: "sim".into(),
            bind: IpAddr::from([0, 0, 0, 0]),
            port: 9901,
            state_dir: None,
            fsync: false,
            // The reference simulator waits 50 ms; this venue is a test partner for a fast
            // gateway, so by default it answers at once.
            delay_ms: 0,
            partial_steps: 2,
            heartbeat_ms: 1000,
            retention: 100_000,
            outbound_queue: 65_536,
            tob_interval_ms: 20,
            max_connections: 64,
            max_symbols: 1024,
            seed: None,
            faults: FaultConfig::default(),
            mm: MmConfig::default(),
        }
    }
}

impl Default for MmConfig {
    fn default() -> Self {
        MmConfig {
            enabled: true,
            symbols: parse_symbols("EXCHANGE_SIM_SYMBOLS", DEFAULT_SYMBOLS)
                .expect("default symbols parse"),
            levels: 5,
            size: 100,
            spread_bps: 10,
            level_gap_bps: 5,
            step_bps: 5,
            interval_ms: 250,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key}: {msg}")]
pub struct ConfigError {
    /// The variable or flag that holds the bad value.
    pub key: String,
    pub msg: String,
}

fn err(key: &str, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        msg: msg.into(),
    }
}

fn parse_num<T: std::str::FromStr>(key: &str, v: &str) -> Result<T, ConfigError> {
    v.trim()
        .parse()
        .map_err(|_| err(key, format!("not a valid number: {v:?}")))
}

fn parse_bool(key: &str, v: &str) -> Result<bool, ConfigError> {
    match v.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(err(
            key,
            format!("not a boolean (1/0, true/false, yes/no, on/off): {v:?}"),
        )),
    }
}

fn parse_pct(key: &str, v: &str) -> Result<u8, ConfigError> {
    let n: u64 = parse_num(key, v)?;
    if n > 100 {
        return Err(err(key, format!("a percentage must be 0..=100, got {n}")));
    }
    Ok(n as u8)
}

/// `SYM=price,SYM=price`, prices in minor units.
pub fn parse_symbols(key: &str, v: &str) -> Result<Vec<(Symbol, u64)>, ConfigError> {
    let mut out: Vec<(Symbol, u64)> = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (sym, price) = part
            .split_once('=')
            .ok_or_else(|| err(key, format!("expected SYMBOL=price, got {part:?}")))?;
        let sym = Symbol::parse(sym.trim().as_bytes())
            .map_err(|e| err(key, format!("bad symbol {sym:?}: {e:?}")))?;
        let price: u64 = parse_num(key, price)?;
        if price == 0 {
            return Err(err(
                key,
                format!("reference price of {sym} must be above 0"),
            ));
        }
        if out.iter().any(|(s, _)| *s == sym) {
            return Err(err(key, format!("{sym} listed twice")));
        }
        out.push((sym, price));
    }
    Ok(out)
}

type Setter = fn(&mut VenueConfig, &str, &str) -> Result<(), ConfigError>;

/// Every environment variable the venue reads, with what it sets.
pub const ENV_VARS: &[(&str, Setter)] = &[
    ("EXCHANGE_TCP_BIND", |c, k, v| {
        c.bind = v
            .trim()
            .parse()
            .map_err(|_| err(k, format!("not an IP address: {v:?}")))?;
        Ok(())
    }),
    ("EXCHANGE_TCP_PORT", |c, k, v| {
        c.port = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_STATE_DIR", |c, _, v| {
        c.state_dir = (!v.trim().is_empty()).then(|| PathBuf::from(v.trim()));
        Ok(())
    }),
    ("EXCHANGE_SIM_FSYNC", |c, k, v| {
        c.fsync = parse_bool(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_DELAY_MS", |c, k, v| {
        c.delay_ms = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_PARTIAL_STEPS", |c, k, v| {
        c.partial_steps = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_HEARTBEAT_MS", |c, k, v| {
        c.heartbeat_ms = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_RETENTION", |c, k, v| {
        c.retention = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_OUTBOUND_QUEUE", |c, k, v| {
        c.outbound_queue = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_TOB_INTERVAL_MS", |c, k, v| {
        c.tob_interval_ms = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MAX_CONNECTIONS", |c, k, v| {
        c.max_connections = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MAX_SYMBOLS", |c, k, v| {
        c.max_symbols = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_SEED", |c, k, v| {
        c.seed = Some(parse_num(k, v)?);
        Ok(())
    }),
    ("EXCHANGE_SIM_REJECT_ALL", |c, k, v| {
        c.faults.reject_all = parse_bool(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_DROP_AFTER", |c, k, v| {
        c.faults.drop_after = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_STALL_AFTER", |c, k, v| {
        c.faults.stall_after = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_STALL_MS", |c, k, v| {
        c.faults.stall_ms = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_DUPLICATE_PCT", |c, k, v| {
        c.faults.duplicate_pct = parse_pct(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_REORDER_PCT", |c, k, v| {
        c.faults.reorder_pct = parse_pct(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_LOSE_PCT", |c, k, v| {
        c.faults.lose_pct = parse_pct(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_SYMBOLS", |c, k, v| {
        c.mm.symbols = parse_symbols(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_ENABLE", |c, k, v| {
        c.mm.enabled = parse_bool(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_LEVELS", |c, k, v| {
        c.mm.levels = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_SIZE", |c, k, v| {
        c.mm.size = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_SPREAD_BPS", |c, k, v| {
        c.mm.spread_bps = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_LEVEL_GAP_BPS", |c, k, v| {
        c.mm.level_gap_bps = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_STEP_BPS", |c, k, v| {
        c.mm.step_bps = parse_num(k, v)?;
        Ok(())
    }),
    ("EXCHANGE_SIM_MM_INTERVAL_MS", |c, k, v| {
        c.mm.interval_ms = parse_num(k, v)?;
        Ok(())
    }),
];

/// `sim-A` → `SIM_A`: the suffix of per-venue variables.
pub fn env_suffix(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

impl VenueConfig {
    /// Builds the configuration of venue `name` (`None`: `EXCHANGE_SIM_NAME`, else `sim`)
    /// from the process environment.
    pub fn from_env(name: Option<&str>) -> Result<VenueConfig, ConfigError> {
        VenueConfig::from_vars(name, std::env::vars())
    }

    /// As [`VenueConfig::from_env`], from the given variables (tests, embedding).
    pub fn from_vars<I, K, V>(name: Option<&str>, vars: I) -> Result<VenueConfig, ConfigError>
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        let vars: Vec<(String, String)> = vars
            .into_iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect();
        let get = |k: &str| {
            vars.iter()
                .rev()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.as_str())
        };
        let mut cfg = VenueConfig {
            name: name
                .map(str::to_string)
                .or_else(|| get("EXCHANGE_SIM_NAME").map(str::to_string))
                .unwrap_or_else(|| "sim".into()),
            ..VenueConfig::default()
        };
        if cfg.name.trim().is_empty() {
            return Err(err("EXCHANGE_SIM_NAME", "venue name is empty"));
        }
        let suffix = env_suffix(&cfg.name);
        for (var, set) in ENV_VARS {
            let specific = format!("{var}_{suffix}");
            if let Some(v) = get(&specific) {
                set(&mut cfg, &specific, v)?;
            } else if let Some(v) = get(var) {
                set(&mut cfg, var, v)?;
            }
        }
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks the values that cannot work together or at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.partial_steps == 0 {
            return Err(err("EXCHANGE_SIM_PARTIAL_STEPS", "must be at least 1"));
        }
        if !(HEARTBEAT_MS_MIN..=HEARTBEAT_MS_MAX).contains(&self.heartbeat_ms) {
            return Err(err(
                "EXCHANGE_SIM_HEARTBEAT_MS",
                format!("must be {HEARTBEAT_MS_MIN}..={HEARTBEAT_MS_MAX}"),
            ));
        }
        if self.retention == 0 {
            return Err(err("EXCHANGE_SIM_RETENTION", "must be at least 1"));
        }
        if !(16..=1 << 24).contains(&self.outbound_queue) {
            return Err(err("EXCHANGE_SIM_OUTBOUND_QUEUE", "must be 16..=16777216"));
        }
        if self.max_connections == 0 {
            return Err(err("EXCHANGE_SIM_MAX_CONNECTIONS", "must be at least 1"));
        }
        if self.max_symbols == 0 {
            return Err(err("EXCHANGE_SIM_MAX_SYMBOLS", "must be at least 1"));
        }
        if self.delay_ms > 60_000 {
            return Err(err("EXCHANGE_SIM_DELAY_MS", "at most 60000"));
        }
        if self.faults.stall_after > 0 && self.faults.stall_ms == 0 {
            return Err(err(
                "EXCHANGE_SIM_STALL_MS",
                "must be above 0 when EXCHANGE_SIM_STALL_AFTER is set",
            ));
        }
        let f = &self.faults;
        for (k, v) in [
            ("EXCHANGE_SIM_DUPLICATE_PCT", f.duplicate_pct),
            ("EXCHANGE_SIM_REORDER_PCT", f.reorder_pct),
            ("EXCHANGE_SIM_LOSE_PCT", f.lose_pct),
        ] {
            if v > 100 {
                return Err(err(k, "a percentage must be 0..=100"));
            }
        }
        if self.mm.enabled {
            if !(1..=100).contains(&self.mm.levels) {
                return Err(err("EXCHANGE_SIM_MM_LEVELS", "must be 1..=100"));
            }
            if self.mm.size == 0 {
                return Err(err("EXCHANGE_SIM_MM_SIZE", "must be at least 1"));
            }
            if self.mm.interval_ms == 0 {
                return Err(err("EXCHANGE_SIM_MM_INTERVAL_MS", "must be at least 1"));
            }
            if self.mm.spread_bps > 5_000
                || self.mm.level_gap_bps > 5_000
                || self.mm.step_bps > 1_000
            {
                return Err(err(
                    "EXCHANGE_SIM_MM_SPREAD_BPS",
                    "spread and level gap at most 5000 bps, step at most 1000 bps",
                ));
            }
        }
        Ok(())
    }
}

/// Command-line flags of `switchyard venue-sim`; each one, when given, beats the environment.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SimArgs {
    /// Venue name (`EXCHANGE_SIM_NAME`, default `sim`); also the suffix of per-venue variables.
    #[arg(long)]
    pub name: Option<String>,
    /// Listen address (`EXCHANGE_TCP_BIND`, default 0.0.0.0).
    #[arg(long)]
    pub bind: Option<IpAddr>,
    /// Listen port (`EXCHANGE_TCP_PORT`, default 9901; 0 picks a free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// State directory for the append-only log (`EXCHANGE_SIM_STATE_DIR`; none: memory only).
    #[arg(long)]
    pub state_dir: Option<PathBuf>,
    /// fdatasync the state log after every write (`EXCHANGE_SIM_FSYNC`).
    #[arg(long)]
    pub fsync: bool,
    /// Delay before each message goes out, ms (`EXCHANGE_SIM_DELAY_MS`, default 0).
    #[arg(long)]
    pub delay_ms: Option<u64>,
    /// Orders per market-maker level = fill reports for a level-sized order
    /// (`EXCHANGE_SIM_PARTIAL_STEPS`, default 2).
    #[arg(long)]
    pub partial_steps: Option<u32>,
    /// Default heartbeat interval, ms (`EXCHANGE_SIM_HEARTBEAT_MS`, default 1000).
    #[arg(long)]
    pub heartbeat_ms: Option<u64>,
    /// Reports kept per gateway for resends (`EXCHANGE_SIM_RETENTION`, default 100000).
    #[arg(long)]
    pub retention: Option<usize>,
    /// Messages queued per connection before it is closed as a slow consumer
    /// (`EXCHANGE_SIM_OUTBOUND_QUEUE`, default 65536).
    #[arg(long)]
    pub outbound_queue: Option<usize>,
    /// Minimum ms between two TOB messages of a symbol (`EXCHANGE_SIM_TOB_INTERVAL_MS`, 20).
    #[arg(long)]
    pub tob_interval_ms: Option<u64>,
    /// Random seed for the walk and the faults (`EXCHANGE_SIM_SEED`).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Reject every NEW (`EXCHANGE_SIM_REJECT_ALL`).
    #[arg(long)]
    pub reject_all: bool,
    /// Close each connection after N messages (`EXCHANGE_SIM_DROP_AFTER`, 0: off).
    #[arg(long)]
    pub drop_after: Option<u64>,
    /// Stall each connection after every N messages (`EXCHANGE_SIM_STALL_AFTER`, 0: off).
    #[arg(long)]
    pub stall_after: Option<u64>,
    /// Stall length, ms (`EXCHANGE_SIM_STALL_MS`).
    #[arg(long)]
    pub stall_ms: Option<u64>,
    /// Percent of reports sent twice (`EXCHANGE_SIM_DUPLICATE_PCT`).
    #[arg(long)]
    pub duplicate_pct: Option<u8>,
    /// Percent of reports sent after the next message (`EXCHANGE_SIM_REORDER_PCT`).
    #[arg(long)]
    pub reorder_pct: Option<u8>,
    /// Percent of reports not sent, recoverable by RESEND (`EXCHANGE_SIM_LOSE_PCT`).
    #[arg(long)]
    pub lose_pct: Option<u8>,
    /// Quoted symbols and reference prices, `SYM=price,...` (`EXCHANGE_SIM_SYMBOLS`).
    #[arg(long)]
    pub symbols: Option<String>,
    /// No market makers (`EXCHANGE_SIM_MM_ENABLE=0`).
    #[arg(long)]
    pub no_mm: bool,
    /// Market-maker levels per side (`EXCHANGE_SIM_MM_LEVELS`, 5).
    #[arg(long)]
    pub mm_levels: Option<u32>,
    /// Market-maker quantity per level (`EXCHANGE_SIM_MM_SIZE`, 100).
    #[arg(long)]
    pub mm_size: Option<u64>,
    /// Market-maker bid/ask spread, bps (`EXCHANGE_SIM_MM_SPREAD_BPS`, 10).
    #[arg(long)]
    pub mm_spread_bps: Option<u64>,
    /// Market-maker level gap, bps (`EXCHANGE_SIM_MM_LEVEL_GAP_BPS`, 5).
    #[arg(long)]
    pub mm_level_gap_bps: Option<u64>,
    /// Random-walk step, bps (`EXCHANGE_SIM_MM_STEP_BPS`, 5).
    #[arg(long)]
    pub mm_step_bps: Option<u64>,
    /// Random-walk and re-quote interval, ms (`EXCHANGE_SIM_MM_INTERVAL_MS`, 250).
    #[arg(long)]
    pub mm_interval_ms: Option<u64>,
}

impl SimArgs {
    /// The configuration: environment first (for the venue named here or in the
    /// environment), then these flags on top.
    pub fn to_config(&self) -> Result<VenueConfig, ConfigError> {
        let mut c = VenueConfig::from_env(self.name.as_deref())?;
        self.apply(&mut c)?;
        Ok(c)
    }

    /// Overrides `c` with every flag given.
    pub fn apply(&self, c: &mut VenueConfig) -> Result<(), ConfigError> {
        fn set<T: Clone>(dst: &mut T, v: &Option<T>) {
            if let Some(v) = v {
                *dst = v.clone();
            }
        }
        if let Some(n) = &self.name {
            c.name = n.clone();
        }
        set(&mut c.bind, &self.bind);
        set(&mut c.port, &self.port);
        if self.state_dir.is_some() {
            c.state_dir = self.state_dir.clone();
        }
        c.fsync |= self.fsync;
        set(&mut c.delay_ms, &self.delay_ms);
        set(&mut c.partial_steps, &self.partial_steps);
        set(&mut c.heartbeat_ms, &self.heartbeat_ms);
        set(&mut c.retention, &self.retention);
        set(&mut c.outbound_queue, &self.outbound_queue);
        set(&mut c.tob_interval_ms, &self.tob_interval_ms);
        if self.seed.is_some() {
            c.seed = self.seed;
        }
        c.faults.reject_all |= self.reject_all;
        set(&mut c.faults.drop_after, &self.drop_after);
        set(&mut c.faults.stall_after, &self.stall_after);
        set(&mut c.faults.stall_ms, &self.stall_ms);
        set(&mut c.faults.duplicate_pct, &self.duplicate_pct);
        set(&mut c.faults.reorder_pct, &self.reorder_pct);
        set(&mut c.faults.lose_pct, &self.lose_pct);
        if let Some(s) = &self.symbols {
            c.mm.symbols = parse_symbols("--symbols", s)?;
        }
        if self.no_mm {
            c.mm.enabled = false;
        }
        set(&mut c.mm.levels, &self.mm_levels);
        set(&mut c.mm.size, &self.mm_size);
        set(&mut c.mm.spread_bps, &self.mm_spread_bps);
        set(&mut c.mm.level_gap_bps, &self.mm_level_gap_bps);
        set(&mut c.mm.step_bps, &self.mm_step_bps);
        set(&mut c.mm.interval_ms, &self.mm_interval_ms);
        c.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: with no variables the defaults are the documented ones.
    #[test]
    fn defaults() {
        let c = VenueConfig::from_vars(None, Vec::<(String, String)>::new()).unwrap();
        assert_eq!(c, VenueConfig::default());
        assert_eq!(c.port, 9901);
        assert_eq!(c.bind.to_string(), "0.0.0.0");
        let syms: Vec<_> = c.mm.symbols.iter().map(|(s, _)| s.as_str()).collect();
        assert_eq!(syms, ["AAPL", "MSFT", "NVDA", "BTC", "ETH", "SOL"]);
    }

    // Goal: `<VAR>_<VENUE>` beats `<VAR>`, and only for that venue.
    #[test]
    fn per_venue_overrides_win() {
        let vars = [
            ("EXCHANGE_SIM_REJECT_ALL", "0"),
            ("EXCHANGE_SIM_REJECT_ALL_SIMA", "1"),
            ("EXCHANGE_TCP_PORT", "9000"),
            ("EXCHANGE_TCP_PORT_SIM_B", "9002"),
            ("EXCHANGE_SIM_SYMBOLS", "btc=100, ETH=7"),
        ];
        let a = VenueConfig::from_vars(Some("simA"), vars).unwrap();
        let b = VenueConfig::from_vars(Some("sim-b"), vars).unwrap();
        assert!(a.faults.reject_all);
        assert!(!b.faults.reject_all);
        assert_eq!((a.port, b.port), (9000, 9002));
        assert_eq!(a.mm.symbols[0], (Symbol::parse(b"BTC").unwrap(), 100));
        let named = VenueConfig::from_vars(None, [("EXCHANGE_SIM_NAME", "x1")]).unwrap();
        assert_eq!(named.name, "x1");
    }

    // Goal: a bad value is an error naming the exact variable that held it.
    #[test]
    fn bad_values_name_the_variable() {
        let e = VenueConfig::from_vars(Some("simA"), [("EXCHANGE_SIM_LOSE_PCT_SIMA", "101")])
            .unwrap_err();
        assert_eq!(e.key, "EXCHANGE_SIM_LOSE_PCT_SIMA");
        let e = VenueConfig::from_vars(None, [("EXCHANGE_TCP_PORT", "x")]).unwrap_err();
        assert_eq!(e.key, "EXCHANGE_TCP_PORT");
        let e = VenueConfig::from_vars(None, [("EXCHANGE_SIM_SYMBOLS", "BTC")]).unwrap_err();
        assert_eq!(e.key, "EXCHANGE_SIM_SYMBOLS");
        let e = VenueConfig::from_vars(None, [("EXCHANGE_SIM_REJECT_ALL", "maybe")]).unwrap_err();
        assert_eq!(e.key, "EXCHANGE_SIM_REJECT_ALL");
        let e = VenueConfig::from_vars(None, [("EXCHANGE_SIM_PARTIAL_STEPS", "0")]).unwrap_err();
        assert_eq!(e.key, "EXCHANGE_SIM_PARTIAL_STEPS");
    }

    // Goal: command-line flags beat the environment.
    #[test]
    fn flags_override() {
        let mut c = VenueConfig::from_vars(None, [("EXCHANGE_SIM_DELAY_MS", "5")]).unwrap();
        let args = SimArgs {
            delay_ms: Some(7),
            no_mm: true,
            reject_all: true,
            symbols: Some("ZZ=3".into()),
            ..SimArgs::default()
        };
        args.apply(&mut c).unwrap();
        assert_eq!(c.delay_ms, 7);
        assert!(!c.mm.enabled && c.faults.reject_all);
        assert_eq!(c.mm.symbols.len(), 1);
    }
}
