//! Run configurations shared by the load modes, their validation, and the per-account tokens.
//!
//! These are plain structs (no clap) so that tests and other crates can drive a run in-process;
//! `cli` turns command-line arguments into them.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// Which ingress a load mode talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// `POST /v3/orders`, HTTP/1.1 keep-alive, JSON bodies.
    Http,
    /// The v3 binary frames (304-byte requests, 32-byte responses).
    Tcp,
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Http => "http",
            Transport::Tcp => "tcp",
        }
    }
}

/// Order side, spelled as on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Side {
    #[value(name = "BUY", alias = "buy")]
    Buy,
    #[value(name = "SELL", alias = "sell")]
    Sell,
}

impl Side {
    pub fn as_str(self) -> &'static str {
        match self {
            Side::Buy => "BUY",
            Side::Sell => "SELL",
        }
    }

    /// The binary frame's side code (1 BUY, 2 SELL).
    pub fn code(self) -> u8 {
        match self {
            Side::Buy => 1,
            Side::Sell => 2,
        }
    }
}

/// The one order every request of a run carries (a LIMIT order).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderSpec {
    pub symbol: String,
    pub side: Side,
    pub qty: u64,
    pub price: u64,
}

impl Default for OrderSpec {
    fn default() -> Self {
        OrderSpec {
            symbol: "AAPL".into(),
            side: Side::Buy,
            qty: 100,
            price: 15_000,
        }
    }
}

impl OrderSpec {
    /// The HTTP JSON body. serde_json writes it so that any symbol is escaped correctly.
    pub fn json_body(&self) -> Vec<u8> {
        serde_json::json!({
            "symbol": self.symbol,
            "side": self.side.as_str(),
            "type": "LIMIT",
            "qty": self.qty,
            "price": self.price,
        })
        .to_string()
        .into_bytes()
    }
}

/// What every load mode needs: where, how many connections and accounts, how long.
#[derive(Debug, Clone)]
pub struct LoadConfig {
    pub transport: Transport,
    /// `host:port` of the ingress; also sent as the HTTP `Host` header.
    pub target: String,
    pub connections: usize,
    /// Accounts `bench-0 .. bench-{n-1}`; connection `c` uses account `c % accounts`.
    pub accounts: usize,
    /// HS256 secret the tokens are signed with (the gateway's `JWT_HS256_SECRET`).
    pub secret: String,
    /// Measured time. Only requests sent (closed, pipelined) or due (open) inside it count.
    pub duration: Duration,
    /// Load before the measured time, not recorded (JIT-free Rust still has cold caches,
    /// lazily grown buffers and TCP windows to settle).
    pub warmup: Duration,
    /// How long to wait for outstanding answers after the measured time before giving up;
    /// it bounds the run when the server stalls.
    pub drain: Duration,
    pub order: OrderSpec,
    /// HTTP only: send `POST /orders` at this durability (`volatile`, `local`) with a unique
    /// Idempotency-Key per request, instead of `POST /v3/orders`.
    pub durability: Option<String>,
}

impl LoadConfig {
    /// The request of HTTP connection `c`.
    pub fn http_request(
        &self,
        token: &str,
        body: &[u8],
        c: usize,
    ) -> crate::http_client::HttpRequest {
        use crate::http_client::HttpRequest;
        match &self.durability {
            None => HttpRequest::v3(&self.target, token, body),
            Some(level) => {
                // Unique per run and connection, so repeated runs never replay old keys.
                let run = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos() as u64);
                HttpRequest::durable(&self.target, token, body, level, &format!("b{run:x}c{c}"))
            }
        }
    }

    /// A configuration with the CLI's defaults for everything but the essentials.
    pub fn new(transport: Transport, target: impl Into<String>, secret: impl Into<String>) -> Self {
        LoadConfig {
            transport,
            target: target.into(),
            connections: 16,
            accounts: 16,
            secret: secret.into(),
            duration: Duration::from_secs(10),
            warmup: Duration::ZERO,
            drain: Duration::from_secs(5),
            order: OrderSpec::default(),
            durability: None,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.connections == 0 {
            bail!("--connections must be at least 1");
        }
        if self.accounts == 0 {
            bail!("--accounts must be at least 1");
        }
        if self.duration < Duration::from_secs(1) {
            bail!("--duration must be at least 1 second");
        }
        if self.target.is_empty() {
            bail!("--target must be host:port");
        }
        if self.order.symbol.is_empty() {
            bail!("--symbol must not be empty");
        }
        Ok(())
    }

    /// Resolves the target once, up front, so a typo fails before any load is generated.
    pub async fn resolve(&self) -> anyhow::Result<SocketAddr> {
        tokio::net::lookup_host(&self.target)
            .await
            .with_context(|| format!("cannot resolve --target {:?} (want host:port)", self.target))?
            .next()
            .with_context(|| format!("--target {:?} resolves to no address", self.target))
    }

    /// One token per account, valid for the whole run plus margin. Minting is done once: the
    /// gateway caches verified tokens, and a per-request token would measure HMAC instead.
    pub fn tokens(&self) -> anyhow::Result<Vec<String>> {
        let ttl = (self.warmup + self.duration + self.drain).as_secs() + 3600;
        let tokens: Vec<String> = (0..self.accounts)
            .map(|i| switchyard_auth::mint_dev(&self.secret, &account_name(i), ttl, None))
            .collect();
        if self.transport == Transport::Tcp {
            if let Some(t) = tokens
                .iter()
                .find(|t| t.len() > switchyard_protocol::v3frame::TOKEN_MAX)
            {
                bail!(
                    "token of {} bytes does not fit the binary frame's {} bytes",
                    t.len(),
                    switchyard_protocol::v3frame::TOKEN_MAX
                );
            }
        }
        Ok(tokens)
    }

    /// The account a connection uses (round-robin).
    pub fn account_of(&self, connection: usize) -> usize {
        connection % self.accounts
    }
}

pub fn account_name(i: usize) -> String {
    format!("bench-{i}")
}

/// Open loop: a fixed request rate.
#[derive(Debug, Clone)]
pub struct OpenConfig {
    pub load: LoadConfig,
    /// Requests per second over all connections.
    pub rate: f64,
    /// A request whose intended send time is further in the past than this when its connection
    /// gets to it is skipped and counted as `dropped_late`: the backlog is measured, but a dead
    /// server cannot make the run last forever.
    pub max_lag: Duration,
    /// How much of each wait the pacer spends yielding in a loop instead of sleeping (capped
    /// at half the interval between requests). A thread sleep overshoots by ~50-70 µs (the
    /// kernel's timer slack), which would otherwise be added to every latency sample; the
    /// final short wait is spent polling the clock instead. Zero sleeps only.
    pub pacer_spin: Duration,
    /// Keep one runtime thread busy (a task that yields in a loop), so that answers are picked
    /// up by polling rather than by waking a sleeping thread. On loopback the server's
    /// `send(2)` does the receiver's work inline, including that wake-up (an IPI between vCPUs
    /// in a VM); a client on another host costs the server nothing of the kind, so a polling
    /// client measures the server more like production. Costs one core (give the generator a
    /// low priority so the server still gets it first).
    pub busy_poll: bool,
}

impl OpenConfig {
    /// `rate` requests per second with the CLI's defaults: 5 s `max_lag`, 50 µs `pacer_spin`.
    pub fn new(load: LoadConfig, rate: f64) -> OpenConfig {
        OpenConfig {
            load,
            rate,
            max_lag: Duration::from_secs(5),
            pacer_spin: Duration::from_micros(50),
            busy_poll: false,
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.load.validate()?;
        if !(self.rate.is_finite() && self.rate > 0.0) {
            bail!("--rate must be a positive number of requests per second");
        }
        // Above ~1e9/s the per-request offset (in ns) would round to zero.
        if self.rate > 1e9 {
            bail!("--rate above 1e9 requests per second is not meaningful");
        }
        if self.max_lag.is_zero() {
            bail!("--max-lag must be positive");
        }
        Ok(())
    }
}

/// Pipelined binary TCP: a window of frames in flight per connection.
#[derive(Debug, Clone)]
pub struct PipelinedConfig {
    /// `load.transport` must be `Tcp`.
    pub load: LoadConfig,
    pub window: usize,
}

impl PipelinedConfig {
    pub fn validate(&self) -> anyhow::Result<()> {
        self.load.validate()?;
        if self.load.transport != Transport::Tcp {
            bail!("pipelined mode speaks the binary TCP protocol only");
        }
        if self.window == 0 {
            bail!("--window must be at least 1");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: nonsensical rates, connection counts and durations are refused with a clear message.
    #[test]
    fn validation_messages() {
        let load = LoadConfig::new(Transport::Http, "127.0.0.1:1", "s");
        let ok = OpenConfig::new(load.clone(), 100.0);
        ok.validate().unwrap();
        for rate in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let e = OpenConfig { rate, ..ok.clone() }.validate().unwrap_err();
            assert!(e.to_string().contains("--rate"), "{e}");
        }
        let mut bad = ok.clone();
        bad.load.connections = 0;
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--connections"));
        let mut bad = ok.clone();
        bad.load.duration = Duration::from_millis(500);
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("--duration"));
        let p = PipelinedConfig { load, window: 4 };
        assert!(p.validate().unwrap_err().to_string().contains("TCP"));
    }

    // Goal: the JSON body is the gateway's order shape.
    #[test]
    fn json_body_shape() {
        let v: serde_json::Value =
            serde_json::from_slice(&OrderSpec::default().json_body()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000})
        );
    }
}
