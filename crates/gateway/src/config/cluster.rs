//! `[cluster]`: which accounts this gateway instance serves, when several share the work.
//!
//! Accounts map to `ACCOUNT_SHARDS_TOTAL` account shards by a stable hash of the account id
//! (FNV-1a, the same on every instance and every restart); each instance owns a set of them
//! (`ACCOUNT_SHARDS_OWNED`) and refuses orders of the others with 421 `ACCOUNT_NOT_OWNED`, so
//! that one account's orders, positions and journal records live on exactly one instance.

use serde::Deserialize;

use super::{err, ConfigError};

/// Most account shards.
pub const MAX_ACCOUNT_SHARDS: u32 = 4096;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterSection {
    /// `ACCOUNT_SHARDS_TOTAL`: account shards across all instances (1 = one instance).
    pub account_shards: u32,
    /// `ACCOUNT_SHARDS_OWNED`: this instance's shards, e.g. `0-15,32`; empty = all.
    pub owned: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        ClusterSection {
            account_shards: 1,
            owned: String::new(),
        }
    }
}

impl ClusterSection {
    /// The owned shards as a bitmap of `account_shards` entries.
    pub fn owned_set(&self) -> Result<Vec<bool>, ConfigError> {
        const KEY: &str = "ACCOUNT_SHARDS_OWNED";
        let n = self.account_shards as usize;
        if self.owned.trim().is_empty() {
            return Ok(vec![true; n]);
        }
        let mut set = vec![false; n];
        for part in self
            .owned
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            let parse = |s: &str| {
                s.trim()
                    .parse::<usize>()
                    .map_err(|_| err(KEY, format!("{part:?} is not N or N-M")))
            };
            let (a, b) = (parse(a)?, parse(b)?);
            if a > b || b >= n {
                return Err(err(
                    KEY,
                    format!("{part:?}: shards are 0..{} (ACCOUNT_SHARDS_TOTAL)", n - 1),
                ));
            }
            set[a..=b].iter_mut().for_each(|s| *s = true);
        }
        Ok(set)
    }

    /// The account shard of an account id.
    pub fn shard_of(&self, account: &str) -> u32 {
        let h = account.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
        });
        (h % self.account_shards.max(1) as u64) as u32
    }

    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=MAX_ACCOUNT_SHARDS).contains(&self.account_shards) {
            return Err(err(
                "ACCOUNT_SHARDS_TOTAL",
                format!("must be 1..={MAX_ACCOUNT_SHARDS}"),
            ));
        }
        if !self.owned_set()?.iter().any(|o| *o) {
            return Err(err("ACCOUNT_SHARDS_OWNED", "owns no shard"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::env;
    use super::super::Config;

    // Goal: ranges and lists parse, mistakes name the key, the hash is stable.
    #[test]
    fn owned_shards() {
        let c = Config::load(
            None,
            env(&[
                ("ACCOUNT_SHARDS_TOTAL", "8"),
                ("ACCOUNT_SHARDS_OWNED", "0-2, 5"),
            ]),
        )
        .unwrap();
        let set = c.cluster.owned_set().unwrap();
        assert_eq!(set, [true, true, true, false, false, true, false, false]);
        assert_eq!(c.cluster.shard_of("alice"), c.cluster.shard_of("alice"));
        assert!(c.cluster.shard_of("alice") < 8);
        for (pairs, key) in [
            (vec![("ACCOUNT_SHARDS_TOTAL", "0")], "ACCOUNT_SHARDS_TOTAL"),
            (
                vec![
                    ("ACCOUNT_SHARDS_TOTAL", "4"),
                    ("ACCOUNT_SHARDS_OWNED", "3-5"),
                ],
                "ACCOUNT_SHARDS_OWNED",
            ),
            (
                vec![("ACCOUNT_SHARDS_TOTAL", "4"), ("ACCOUNT_SHARDS_OWNED", "x")],
                "ACCOUNT_SHARDS_OWNED",
            ),
            (
                vec![("ACCOUNT_SHARDS_TOTAL", "4"), ("ACCOUNT_SHARDS_OWNED", ",")],
                "ACCOUNT_SHARDS_OWNED",
            ),
        ] {
            assert_eq!(
                Config::load(None, env(&pairs)).unwrap_err().key,
                key,
                "{pairs:?}"
            );
        }
    }
}
