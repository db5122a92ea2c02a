//! `[venues]`: which venues the gateway connects to and how orders are routed (§3.10).

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;
use switchyard_core::Symbol;

use super::{err, parse_num, ConfigError};

/// Most venues one gateway connects to (a venue index fits in a byte of every order).
pub const MAX_VENUES: usize = 16;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transport {
    /// No venues: durable-path orders stay ACCEPTED and cancels complete in the gateway.
    None,
    /// Connect to each venue over TCP (JSON lines, `docs/venue-sim.md`).
    Tcp,
    /// The `switchyard` binary starts one in-process venue simulator per venue name and
    /// connects to it over loopback TCP; the gateway itself only ever speaks TCP.
    Sim,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VenuesSection {
    /// `EXCHANGE_TRANSPORT`: `none`, `tcp` or `sim`. Unset, it is `tcp` when
    /// `EXCHANGE_TCP_HOST` is set (the reference's rule) and `none` otherwise.
    pub transport: String,
    /// `SOR_VENUES`: venue names, comma-separated (the reference's default `sim`).
    pub names: String,
    /// `SOR_DEFAULT_VENUE`: empty = the first of `names`.
    pub default_venue: String,
    /// `SOR_SYMBOL_ROUTES`: `BTC=simA,ETH=simA|simB`. A symbol routed to several venues goes
    /// to the one with the best price in its top of book, and fails over among them only.
    pub symbol_routes: String,
    /// `EXCHANGE_TCP_HOST` / `EXCHANGE_TCP_PORT`: address of every venue without its own.
    pub host: String,
    pub port: u16,
    /// `EXCHANGE_TCP_HOST_<VENUE>` per venue (name upper-cased, other characters `_`), TOML
    /// `[venues.hosts]`.
    pub hosts: BTreeMap<String, String>,
    /// `EXCHANGE_TCP_PORT_<VENUE>` per venue, TOML `[venues.ports]`.
    pub ports: BTreeMap<String, u16>,
    /// `GATEWAY_ID`: the identity the gateway logs on with. Venues keep orders and report
    /// sequence numbers per identity, so it must stay the same across restarts.
    pub gateway_id: String,
    /// `VENUE_HEARTBEAT_MS`: heartbeat interval asked for at logon; a venue silent for three
    /// intervals is treated as gone and the session reconnects.
    pub heartbeat_ms: u64,
    /// `VENUE_RECONNECT_MAX_MS`: reconnect backoff doubles from 50 ms up to this.
    pub reconnect_max_ms: u64,
    /// `VENUE_LOGON_TIMEOUT_MS`: how long to wait for `LOGON_ACK`.
    pub logon_timeout_ms: u64,
    /// `VENUE_STATUS_WINDOW`: the STATUS requests of the sweep after a logon that may be
    /// unanswered at a time, so that a venue holding many open orders is never handed more
    /// answers at once than its session's outbound queue takes.
    pub status_window: u64,
}

impl Default for VenuesSection {
    fn default() -> Self {
        VenuesSection {
            transport: String::new(),
            names: "sim".into(),
            default_venue: String::new(),
            symbol_routes: String::new(),
            host: "127.0.0.1".into(),
            port: 9901,
            hosts: BTreeMap::new(),
            ports: BTreeMap::new(),
            gateway_id: "switchyard-1".into(),
            heartbeat_ms: 1_000,
            reconnect_max_ms: 2_000,
            logon_timeout_ms: 2_000,
            status_window: 1_024,
        }
    }
}

/// A venue name as an environment variable suffix: upper case, anything but letters and
/// digits as `_` (`sim-b` → `SIM_B`), as the venue simulator spells its own overrides.
fn env_suffix(name: &str) -> String {
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

/// One configured venue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueSpec {
    pub name: String,
    pub host: String,
    pub port: u16,
}

/// The routing table: venue indexes into `VenuesSection::venues()`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Routes {
    pub default_venue: usize,
    pub by_symbol: HashMap<Symbol, Vec<usize>>,
}

impl VenuesSection {
    pub fn transport(&self) -> Result<Transport, ConfigError> {
        match self.transport.trim().to_ascii_lowercase().as_str() {
            "" | "none" | "off" => Ok(Transport::None),
            "tcp" => Ok(Transport::Tcp),
            "sim" => Ok(Transport::Sim),
            other => Err(err(
                "EXCHANGE_TRANSPORT",
                format!("must be none, tcp or sim, not {other:?}"),
            )),
        }
    }

    /// The venues, in `SOR_VENUES` order; empty when the transport is `none`.
    pub fn venues(&self) -> Result<Vec<VenueSpec>, ConfigError> {
        if self.transport()? == Transport::None {
            return Ok(Vec::new());
        }
        let mut out: Vec<VenueSpec> = Vec::new();
        for name in self
            .names
            .split(',')
            .map(str::trim)
            .filter(|n| !n.is_empty())
        {
            let ok = name.len() <= 32
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return Err(err(
                    "SOR_VENUES",
                    format!("venue name {name:?}: 1–32 of A–Z a–z 0–9 _ -"),
                ));
            }
            if out.iter().any(|v| v.name.eq_ignore_ascii_case(name)) {
                return Err(err("SOR_VENUES", format!("venue {name:?} listed twice")));
            }
            let key = env_suffix(name);
            out.push(VenueSpec {
                name: name.to_string(),
                host: self.hosts.get(&key).unwrap_or(&self.host).clone(),
                port: *self.ports.get(&key).unwrap_or(&self.port),
            });
        }
        if out.is_empty() {
            return Err(err("SOR_VENUES", "names no venue"));
        }
        if out.len() > MAX_VENUES {
            return Err(err("SOR_VENUES", format!("at most {MAX_VENUES} venues")));
        }
        Ok(out)
    }

    /// The routing table over `venues`.
    pub fn routes(&self, venues: &[VenueSpec]) -> Result<Routes, ConfigError> {
        let find = |key: &str, name: &str| {
            venues
                .iter()
                .position(|v| v.name == name)
                .ok_or_else(|| err(key, format!("unknown venue {name:?} (not in SOR_VENUES)")))
        };
        let default_venue = match self.default_venue.trim() {
            "" => 0,
            name => find("SOR_DEFAULT_VENUE", name)?,
        };
        let mut by_symbol = HashMap::new();
        for pair in self
            .symbol_routes
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            const KEY: &str = "SOR_SYMBOL_ROUTES";
            let (sym, list) = pair
                .split_once('=')
                .ok_or_else(|| err(KEY, format!("{pair:?} is not SYMBOL=venue[|venue…]")))?;
            let sym = super::parse_symbol(KEY, sym)?;
            let mut idx = Vec::new();
            for name in list.split('|').map(str::trim) {
                let i = find(KEY, name)?;
                if !idx.contains(&i) {
                    idx.push(i);
                }
            }
            if by_symbol.insert(sym, idx).is_some() {
                return Err(err(KEY, format!("symbol {sym} routed twice")));
            }
        }
        Ok(Routes {
            default_venue,
            by_symbol,
        })
    }

    /// The key of a venue in `hosts`/`ports` (`EXCHANGE_TCP_PORT_<key>`).
    pub fn key(name: &str) -> String {
        env_suffix(name)
    }

    /// Per-venue addresses from `EXCHANGE_TCP_HOST_<VENUE>` / `EXCHANGE_TCP_PORT_<VENUE>`.
    pub(super) fn apply_env(&mut self, env: &HashMap<String, String>) -> Result<(), ConfigError> {
        for (k, v) in env {
            if let Some(venue) = k.strip_prefix("EXCHANGE_TCP_HOST_") {
                self.hosts
                    .insert(venue.to_ascii_uppercase(), v.trim().to_string());
            } else if let Some(venue) = k.strip_prefix("EXCHANGE_TCP_PORT_") {
                self.ports
                    .insert(venue.to_ascii_uppercase(), parse_num(k, v)?);
            }
        }
        if self.transport.is_empty() && env.contains_key("EXCHANGE_TCP_HOST") {
            self.transport = "tcp".into();
        }
        Ok(())
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let venues = self.venues()?;
        if !venues.is_empty() {
            self.routes(&venues)?;
        }
        let id_ok = !self.gateway_id.is_empty()
            && self.gateway_id.len() <= 64
            && !self.gateway_id.bytes().any(|b| b.is_ascii_control());
        if !id_ok {
            return Err(err("GATEWAY_ID", "1–64 printable characters"));
        }
        if !(50..=60_000).contains(&self.heartbeat_ms) {
            return Err(err("VENUE_HEARTBEAT_MS", "must be 50..=60000"));
        }
        if !(50..=600_000).contains(&self.reconnect_max_ms) {
            return Err(err("VENUE_RECONNECT_MAX_MS", "must be 50..=600000"));
        }
        if !(100..=60_000).contains(&self.logon_timeout_ms) {
            return Err(err("VENUE_LOGON_TIMEOUT_MS", "must be 100..=60000"));
        }
        if !(1..=65_536).contains(&self.status_window) {
            return Err(err("VENUE_STATUS_WINDOW", "must be 1..=65536"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::Config;
    use super::*;

    // Goal: the reference's variables pick venues, addresses and routes; mistakes name the key.
    #[test]
    fn venues_from_env() {
        let c = Config::load(None, env(&[])).unwrap();
        assert_eq!(c.venues.transport().unwrap(), Transport::None);
        assert!(c.venues.venues().unwrap().is_empty());

        // EXCHANGE_TCP_HOST alone turns TCP on with the reference's single venue `sim`.
        let c = Config::load(None, env(&[("EXCHANGE_TCP_HOST", "10.0.0.5")])).unwrap();
        let v = c.venues.venues().unwrap();
        assert_eq!(
            v,
            vec![VenueSpec {
                name: "sim".into(),
                host: "10.0.0.5".into(),
                port: 9901
            }]
        );

        let c = Config::load(
            None,
            env(&[
                ("EXCHANGE_TRANSPORT", "tcp"),
                ("SOR_VENUES", "simA, simB"),
                ("SOR_DEFAULT_VENUE", "simB"),
                ("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simA"),
                ("EXCHANGE_TCP_PORT_SIMB", "9902"),
                ("EXCHANGE_TCP_HOST_SIMB", "venue-b"),
            ]),
        )
        .unwrap();
        let v = c.venues.venues().unwrap();
        assert_eq!((v[0].host.as_str(), v[0].port), ("127.0.0.1", 9901));
        assert_eq!((v[1].host.as_str(), v[1].port), ("venue-b", 9902));
        let r = c.venues.routes(&v).unwrap();
        assert_eq!(r.default_venue, 1);
        assert_eq!(r.by_symbol[&Symbol::parse(b"BTC").unwrap()], vec![0, 1]);
        assert_eq!(r.by_symbol[&Symbol::parse(b"ETH").unwrap()], vec![0]);

        for (pairs, key) in [
            (vec![("EXCHANGE_TRANSPORT", "udp")], "EXCHANGE_TRANSPORT"),
            (
                vec![("EXCHANGE_TRANSPORT", "tcp"), ("SOR_VENUES", "a,a")],
                "SOR_VENUES",
            ),
            (
                vec![("EXCHANGE_TRANSPORT", "tcp"), ("SOR_VENUES", "a b")],
                "SOR_VENUES",
            ),
            (
                vec![("EXCHANGE_TRANSPORT", "tcp"), ("SOR_DEFAULT_VENUE", "x")],
                "SOR_DEFAULT_VENUE",
            ),
            (
                vec![
                    ("EXCHANGE_TRANSPORT", "tcp"),
                    ("SOR_SYMBOL_ROUTES", "BTC=nope"),
                ],
                "SOR_SYMBOL_ROUTES",
            ),
            (
                vec![("EXCHANGE_TRANSPORT", "tcp"), ("SOR_SYMBOL_ROUTES", "BTC")],
                "SOR_SYMBOL_ROUTES",
            ),
            (
                vec![("EXCHANGE_TCP_PORT_SIM", "x")],
                "EXCHANGE_TCP_PORT_SIM",
            ),
            (vec![("VENUE_HEARTBEAT_MS", "1")], "VENUE_HEARTBEAT_MS"),
            (vec![("GATEWAY_ID", "")], "GATEWAY_ID"),
        ] {
            let e = Config::load(None, env(&pairs)).unwrap_err();
            assert_eq!(e.key, key, "{pairs:?}");
        }
    }
}
