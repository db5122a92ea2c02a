//! Configuration from the environment, with the reference's variable names (§4). A bad
//! value is an error that names the variable; secrets are never echoed.

use std::collections::HashMap;

use switchyard_auth::AuthConfig;

use crate::books::Rules;

/// The embedded default store: an SQLite file beside the other state.
pub const DEFAULT_DB_URL: &str = "sqlite:var/backoffice/backoffice.db?mode=rwc";

/// A configuration value that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("configuration: {var}: {why}")]
pub struct ConfigError {
    /// The environment variable at fault.
    pub var: &'static str,
    pub why: String,
}

/// The Kafka consumer's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaConfig {
    /// `KAFKA_ENABLE`: consume the bus. For `switchyard backoffice` unset means on (a
    /// standalone back office has nothing else to read); `0`/`false` serves the API only.
    pub enable: bool,
    /// `KAFKA_BOOTSTRAP_SERVERS` (localhost:9092).
    pub bootstrap_servers: String,
    /// `KAFKA_TOPIC` (events).
    pub topic: String,
    /// `KAFKA_GROUP_ID` (backoffice).
    pub group_id: String,
    /// `KAFKA_CLIENT_ID` (switchyard-backoffice).
    pub client_id: String,
    /// `BACKOFFICE_BATCH_MAX` (5000): most messages booked in one transaction (5000 kept up
    /// with 30 k events/s where 1000 fell seconds behind, `scripts/bench/e2e-lag.sh`).
    pub batch_max: usize,
    /// `BACKOFFICE_BATCH_WAIT_MS` (20): how long a batch may wait to fill up once it has a
    /// message; bounds the delay the batching adds.
    pub batch_wait_ms: u64,
    /// Extra librdkafka properties (`BACKOFFICE_KAFKA_<name with _ for .>`, e.g.
    /// `BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS=6000`); tests lower the group timeouts this way.
    pub properties: Vec<(String, String)>,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        KafkaConfig {
            enable: true,
            bootstrap_servers: "localhost:9092".into(),
            topic: "events".into(),
            group_id: "backoffice".into(),
            client_id: "switchyard-backoffice".into(),
            batch_max: 5_000,
            batch_wait_ms: 20,
            properties: Vec::new(),
        }
    }
}

/// Everything the standalone back office needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackOfficeConfig {
    /// `BACKOFFICE_HOST` (0.0.0.0): the address the HTTP API binds.
    pub host: String,
    /// `BACKOFFICE_PORT` (8082); 0 = any free port.
    pub port: u16,
    /// `BACKOFFICE_DB_URL`: `postgres://…` or `sqlite:…` ([`DEFAULT_DB_URL`]).
    pub db_url: String,
    /// `BACKOFFICE_FEE_BPS` (10) and `BACKOFFICE_QUOTE_CCY` (JPY).
    pub rules: Rules,
    /// `BACKOFFICE_MAX_FILLS` (10 000): most fills `/fills` returns per account.
    pub max_fills: i64,
    pub kafka: KafkaConfig,
    /// `JWT_HS256_SECRET`, `JWT_HS256_KEYS`, `JWT_ISSUER`, `JWT_AUDIENCE`,
    /// `JWT_CLOCK_SKEW_SEC`.
    pub auth: AuthConfig,
}

impl Default for BackOfficeConfig {
    fn default() -> Self {
        BackOfficeConfig {
            host: "0.0.0.0".into(),
            port: 8082,
            db_url: DEFAULT_DB_URL.into(),
            rules: Rules::default(),
            max_fills: 10_000,
            kafka: KafkaConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl BackOfficeConfig {
    /// Reads the configuration from environment variables (`std::env::vars()` or a test's
    /// list); unset variables keep their defaults.
    pub fn from_env<I>(vars: I) -> Result<BackOfficeConfig, ConfigError>
    where
        I: IntoIterator<Item = (String, String)>,
    {
        let env: HashMap<String, String> = vars.into_iter().collect();
        let get = |k: &str| env.get(k).map(|v| v.trim()).filter(|v| !v.is_empty());
        let mut c = BackOfficeConfig::default();
        if let Some(v) = get("BACKOFFICE_HOST") {
            c.host = v.to_owned();
        }
        if let Some(v) = get("BACKOFFICE_PORT") {
            c.port = number("BACKOFFICE_PORT", v, 0, u64::from(u16::MAX))? as u16;
        }
        if let Some(v) = get("BACKOFFICE_DB_URL") {
            if crate::store::Backend::of_url(v).is_none() {
                return Err(ConfigError {
                    var: "BACKOFFICE_DB_URL",
                    why: "expected a postgres://… or sqlite:… URL".into(),
                });
            }
            c.db_url = v.to_owned();
        }
        if let Some(v) = get("BACKOFFICE_FEE_BPS") {
            c.rules.fee_bps = number("BACKOFFICE_FEE_BPS", v, 0, 10_000)? as i64;
        }
        if let Some(v) = get("BACKOFFICE_QUOTE_CCY") {
            let ok = v.len() <= 16 && v.bytes().all(|b| b.is_ascii_alphanumeric());
            if !ok {
                return Err(ConfigError {
                    var: "BACKOFFICE_QUOTE_CCY",
                    why: format!("{v:?} is not a currency code (1–16 letters or digits)"),
                });
            }
            c.rules.quote_ccy = v.to_owned();
        }
        if let Some(v) = get("BACKOFFICE_MAX_FILLS") {
            c.max_fills = number("BACKOFFICE_MAX_FILLS", v, 1, 1_000_000)? as i64;
        }
        if let Some(v) = get("KAFKA_ENABLE") {
            c.kafka.enable = boolean("KAFKA_ENABLE", v)?;
        }
        if let Some(v) = get("KAFKA_BOOTSTRAP_SERVERS") {
            c.kafka.bootstrap_servers = v.to_owned();
        }
        if let Some(v) = get("KAFKA_TOPIC") {
            c.kafka.topic = v.to_owned();
        }
        if let Some(v) = get("KAFKA_GROUP_ID") {
            c.kafka.group_id = v.to_owned();
        }
        if let Some(v) = get("KAFKA_CLIENT_ID") {
            c.kafka.client_id = v.to_owned();
        }
        if let Some(v) = get("BACKOFFICE_BATCH_MAX") {
            c.kafka.batch_max = number("BACKOFFICE_BATCH_MAX", v, 1, 10_000)? as usize;
        }
        if let Some(v) = get("BACKOFFICE_BATCH_WAIT_MS") {
            c.kafka.batch_wait_ms = number("BACKOFFICE_BATCH_WAIT_MS", v, 0, 10_000)?;
        }
        let mut props: Vec<(String, String)> = env
            .iter()
            .filter_map(|(k, v)| {
                let name = k.strip_prefix("BACKOFFICE_KAFKA_")?;
                Some((name.to_ascii_lowercase().replace('_', "."), v.clone()))
            })
            .collect();
        props.sort();
        c.kafka.properties = props;
        c.auth.secret = env.get("JWT_HS256_SECRET").cloned().unwrap_or_default();
        c.auth.keys = env.get("JWT_HS256_KEYS").cloned().unwrap_or_default();
        c.auth.issuer = get("JWT_ISSUER").map(str::to_owned);
        c.auth.audience = get("JWT_AUDIENCE").map(str::to_owned);
        if let Some(v) = get("JWT_CLOCK_SKEW_SEC") {
            c.auth.clock_skew_sec = number("JWT_CLOCK_SKEW_SEC", v, 0, 86_400)?;
        }
        // The key list is checked now, so a typo stops startup instead of every request.
        switchyard_auth::KeyRing::parse(&c.auth.secret, &c.auth.keys).map_err(|e| ConfigError {
            var: "JWT_HS256_KEYS",
            why: e.to_string(),
        })?;
        Ok(c)
    }
}

fn number(var: &'static str, v: &str, min: u64, max: u64) -> Result<u64, ConfigError> {
    match v.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(ConfigError {
            var,
            why: format!("{v:?} is not an integer in {min}..={max}"),
        }),
    }
}

fn boolean(var: &'static str, v: &str) -> Result<bool, ConfigError> {
    match v.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError {
            var,
            why: format!("{v:?} is not a boolean (1/true/yes/on or 0/false/no/off)"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Goal: defaults are the reference's; set variables override them.
    #[test]
    fn defaults_and_overrides() {
        let c = BackOfficeConfig::from_env(env(&[])).unwrap();
        assert_eq!(
            (c.port, c.rules.fee_bps, c.rules.quote_ccy.as_str()),
            (8082, 10, "JPY")
        );
        assert_eq!(
            (c.kafka.topic.as_str(), c.kafka.group_id.as_str()),
            ("events", "backoffice")
        );
        assert_eq!(c.db_url, DEFAULT_DB_URL);
        let c = BackOfficeConfig::from_env(env(&[
            ("BACKOFFICE_PORT", "9000"),
            ("BACKOFFICE_FEE_BPS", "0"),
            ("BACKOFFICE_QUOTE_CCY", "USD"),
            ("BACKOFFICE_DB_URL", "postgres://x@y/z"),
            ("KAFKA_ENABLE", "false"),
            ("BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS", "6000"),
            ("JWT_HS256_SECRET", "s"),
        ]))
        .unwrap();
        assert_eq!(
            (c.port, c.rules.fee_bps, c.rules.quote_ccy.as_str()),
            (9000, 0, "USD")
        );
        assert!(!c.kafka.enable);
        assert_eq!(
            c.kafka.properties,
            vec![("session.timeout.ms".into(), "6000".into())]
        );
        assert_eq!(c.auth.secret, "s");
    }

    // Goal: a bad value names its variable.
    #[test]
    fn bad_values_name_the_variable() {
        for (k, v) in [
            ("BACKOFFICE_PORT", "eighty"),
            ("BACKOFFICE_PORT", "70000"),
            ("BACKOFFICE_FEE_BPS", "-1"),
            ("BACKOFFICE_FEE_BPS", "10001"),
            ("BACKOFFICE_QUOTE_CCY", "J P Y"),
            ("BACKOFFICE_DB_URL", "mysql://x"),
            ("KAFKA_ENABLE", "maybe"),
            ("BACKOFFICE_BATCH_MAX", "0"),
            ("JWT_HS256_KEYS", "no-colon"),
        ] {
            let e = BackOfficeConfig::from_env(env(&[(k, v)])).unwrap_err();
            assert_eq!(e.var, k, "{e}");
            assert!(e.to_string().contains(k));
        }
    }
}
