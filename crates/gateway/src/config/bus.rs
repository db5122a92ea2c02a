//! `[bus]`: the outbox that publishes every journaled event to Kafka (§2.7, §3.9).

use serde::Deserialize;

use super::{err, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BusSection {
    /// `KAFKA_ENABLE`: publish to Kafka (and offer `Durability: replicated`).
    pub enable: bool,
    /// `KAFKA_BOOTSTRAP_SERVERS`.
    pub bootstrap_servers: String,
    /// `KAFKA_TOPIC`.
    pub topic: String,
    /// `KAFKA_CLIENT_ID`.
    pub client_id: String,
    /// `KAFKA_LINGER_MS`: how long the producer waits to fill a batch.
    pub linger_ms: u64,
    /// `OUTBOX_OFFSET_PATH`: where the next journal sequence number to publish is kept (decimal
    /// text, replaced atomically after the broker acknowledged everything before it); empty =
    /// `<journal dir>/outbox.offset`.
    pub offset_path: String,
    /// `OUTBOX_BACKOFF_BASE_MS` / `OUTBOX_BACKOFF_MAX_MS`: retry pause after a failed publish,
    /// doubling from base to max; reset by a publish that succeeds.
    pub backoff_base_ms: u64,
    pub backoff_max_ms: u64,
    /// `OUTBOX_BATCH_MAX`: events published (and acknowledged) per round at most.
    pub batch_max: usize,
    /// `BUS_REPLICATED_WAIT_TIMEOUT_MS`: how long `Durability: replicated` waits for the
    /// broker's acknowledgement before 503 `DURABILITY_WAIT_TIMEOUT` (the order stays).
    pub replicated_wait_timeout_ms: u64,
}

impl Default for BusSection {
    fn default() -> Self {
        BusSection {
            enable: false,
            bootstrap_servers: "localhost:9092".into(),
            topic: "events".into(),
            client_id: "gateway-rust".into(),
            linger_ms: 5,
            offset_path: String::new(),
            backoff_base_ms: 200,
            backoff_max_ms: 5_000,
            batch_max: 20_000,
            replicated_wait_timeout_ms: 5_000,
        }
    }
}

impl BusSection {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if self.enable && self.bootstrap_servers.trim().is_empty() {
            return Err(err(
                "KAFKA_BOOTSTRAP_SERVERS",
                "empty while KAFKA_ENABLE is on",
            ));
        }
        let topic_ok = !self.topic.is_empty()
            && self.topic.len() <= 249
            && self
                .topic
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
        if !topic_ok {
            return Err(err("KAFKA_TOPIC", "1–249 of A–Z a–z 0–9 . _ -"));
        }
        if self.linger_ms > 10_000 {
            return Err(err("KAFKA_LINGER_MS", "must be ≤ 10000"));
        }
        if self.backoff_base_ms == 0 || self.backoff_max_ms < self.backoff_base_ms {
            return Err(err(
                "OUTBOX_BACKOFF_MAX_MS",
                "base must be > 0 and max ≥ base",
            ));
        }
        if !(1..=1_000_000).contains(&self.batch_max) {
            return Err(err("OUTBOX_BATCH_MAX", "must be 1..=1000000"));
        }
        if !(10..=600_000).contains(&self.replicated_wait_timeout_ms) {
            return Err(err("BUS_REPLICATED_WAIT_TIMEOUT_MS", "must be 10..=600000"));
        }
        Ok(())
    }
}
