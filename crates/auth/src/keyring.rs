//! The set of HS256 keys a verifier accepts.
//!
//! Rotation works by naming keys: a token carrying a `kid` header is checked
//! against that key only, so a new key can be added, clients moved over, and
//! the old key revoked, all without a restart. Tokens without a `kid` use the
//! default key (the plain `JWT_HS256_SECRET`), which keeps the reference
//! system's single-secret setup working unchanged.

use std::fmt;

use ahash::AHashMap;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::error::ConfigError;

pub(crate) type HmacSha256 = Hmac<Sha256>;

/// Standard base64 for secrets in the key list. Operators paste these from
/// many tools, so padding is accepted whether present or not.
const SECRET_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Marks a key-list secret as base64 rather than literal text.
const BASE64_PREFIX: &str = "base64:";

/// One HS256 key, kept as an HMAC state with the key already absorbed.
///
/// Absorbing the key costs two SHA-256 compressions; doing it once here and
/// cloning the state per token saves that work on every verification.
#[derive(Clone)]
pub(crate) struct Key {
    mac: HmacSha256,
}

impl Key {
    fn new(secret: &[u8]) -> Option<Key> {
        if secret.is_empty() {
            return None;
        }
        HmacSha256::new_from_slice(secret)
            .ok()
            .map(|mac| Key { mac })
    }

    /// A fresh MAC state keyed with this secret.
    pub(crate) fn mac(&self) -> HmacSha256 {
        self.mac.clone()
    }
}

/// Named HS256 secrets plus an optional default one.
///
/// A `KeyRing` is a plain value: build it, then hand it to
/// [`crate::Verifier::rotate`], which swaps it in atomically.
#[derive(Clone, Default)]
pub struct KeyRing {
    default: Option<Key>,
    named: AHashMap<Box<str>, Key>,
}

impl KeyRing {
    /// An empty ring. A verifier with an empty ring answers every call with
    /// [`crate::AuthError::SecretNotConfigured`].
    pub fn new() -> KeyRing {
        KeyRing::default()
    }

    /// Builds a ring from configuration text.
    ///
    /// `default_secret` is the raw `JWT_HS256_SECRET` (empty = no default
    /// key). `keys` is a comma-separated list of `kid:secret` entries, where
    /// a secret starting with `base64:` is standard base64 (padding
    /// optional) and anything else is taken literally. The secret is
    /// everything after the first `:`, so literal secrets may contain `:` but
    /// not `,` (use base64 for those). Whitespace around entries is ignored,
    /// as are empty entries (a trailing comma).
    pub fn parse(default_secret: &str, keys: &str) -> Result<KeyRing, ConfigError> {
        let mut ring = KeyRing::new();
        ring.set_default(default_secret.as_bytes());
        for (i, raw) in keys.split(',').enumerate() {
            let entry = raw.trim();
            if entry.is_empty() {
                continue;
            }
            let (kid, secret) = parse_entry(i + 1, entry)?;
            if ring.contains(kid) {
                return Err(ConfigError::DuplicateKid(kid.to_owned()));
            }
            ring.insert(kid, &secret)?;
        }
        Ok(ring)
    }

    /// Sets (or, with an empty secret, clears) the key used for tokens that
    /// carry no `kid`.
    pub fn set_default(&mut self, secret: &[u8]) {
        self.default = Key::new(secret);
    }

    /// Adds or replaces the key named `kid`.
    pub fn insert(&mut self, kid: &str, secret: &[u8]) -> Result<(), ConfigError> {
        if !kid_is_valid(kid) {
            return Err(ConfigError::BadKid(kid.to_owned()));
        }
        let key = Key::new(secret).ok_or_else(|| ConfigError::EmptySecret(kid.to_owned()))?;
        self.named.insert(kid.into(), key);
        Ok(())
    }

    /// Removes the key named `kid`; returns whether it was present.
    pub fn remove(&mut self, kid: &str) -> bool {
        self.named.remove(kid).is_some()
    }

    /// Whether a key named `kid` is present.
    pub fn contains(&self, kid: &str) -> bool {
        self.named.contains_key(kid)
    }

    /// Whether tokens without a `kid` can be verified.
    pub fn has_default(&self) -> bool {
        self.default.is_some()
    }

    /// Names of the keys in the ring, sorted (for logs and admin views).
    pub fn kids(&self) -> Vec<&str> {
        let mut kids: Vec<&str> = self.named.keys().map(|k| &**k).collect();
        kids.sort_unstable();
        kids
    }

    /// Number of named keys (the default key is not counted).
    pub fn len(&self) -> usize {
        self.named.len()
    }

    /// True when the ring holds no key at all, default included.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.named.is_empty()
    }

    /// The key a token must be verified with: the named one if the token has
    /// a `kid`, else the default. Never falls back from a named key to the
    /// default, or a revoked kid would still verify under the default key.
    pub(crate) fn key_for(&self, kid: Option<&str>) -> Option<&Key> {
        match kid {
            Some(kid) => self.named.get(kid),
            None => self.default.as_ref(),
        }
    }
}

/// Prints key names only: secrets must never reach a log line.
impl fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRing")
            .field("has_default", &self.has_default())
            .field("kids", &self.kids())
            .finish()
    }
}

/// Kids must survive a round trip through the `kid:secret,...` syntax.
fn kid_is_valid(kid: &str) -> bool {
    !kid.is_empty() && !kid.contains([',', ':']) && !kid.contains(char::is_whitespace)
}

/// Splits and decodes one `kid:secret` entry. Errors name the entry by
/// position and kid, never by content, so the secret is not echoed.
fn parse_entry(index: usize, entry: &str) -> Result<(&str, Vec<u8>), ConfigError> {
    let bad = |kid: Option<&str>, reason| ConfigError::BadKeyEntry {
        index,
        kid: kid.map(str::to_owned),
        reason,
    };
    let Some((kid, secret)) = entry.split_once(':') else {
        return Err(bad(None, "missing ':' (expected kid:secret)"));
    };
    let kid = kid.trim();
    if kid.is_empty() {
        return Err(bad(None, "empty key id"));
    }
    if !kid_is_valid(kid) {
        return Err(bad(Some(kid), "key id contains whitespace"));
    }
    let secret = match secret.strip_prefix(BASE64_PREFIX) {
        Some(b64) => SECRET_B64
            .decode(b64.trim())
            .map_err(|_| bad(Some(kid), "secret is not valid base64"))?,
        None => secret.as_bytes().to_vec(),
    };
    if secret.is_empty() {
        return Err(bad(Some(kid), "empty secret"));
    }
    Ok((kid, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the documented example parses into two named keys and a default.
    #[test]
    fn parses_plain_and_base64_entries() {
        let ring = KeyRing::parse("dflt", "kid1:secret1, kid2:base64:c2VjcmV0").unwrap();
        assert!(ring.has_default());
        assert_eq!(ring.kids(), vec!["kid1", "kid2"]);
    }

    // Goal: base64 secrets decode to the same key as their literal form.
    #[test]
    fn base64_secret_equals_literal() {
        let a = KeyRing::parse("", "k:base64:c2VjcmV0").unwrap();
        let b = KeyRing::parse("", "k:secret").unwrap();
        let tag = |r: &KeyRing| r.key_for(Some("k")).unwrap().mac().finalize().into_bytes();
        assert_eq!(tag(&a), tag(&b));
    }

    // Goal: literal secrets keep everything after the first colon.
    #[test]
    fn literal_secret_may_contain_colons() {
        let a = KeyRing::parse("", "k:a:b:c").unwrap();
        let mut b = KeyRing::new();
        b.insert("k", b"a:b:c").unwrap();
        let tag = |r: &KeyRing| r.key_for(Some("k")).unwrap().mac().finalize().into_bytes();
        assert_eq!(tag(&a), tag(&b));
    }

    // Goal: empty inputs give an empty ring, and trailing commas are harmless.
    #[test]
    fn empty_and_trailing_commas() {
        assert!(KeyRing::parse("", "").unwrap().is_empty());
        assert_eq!(KeyRing::parse("", "a:x,,b:y,").unwrap().len(), 2);
    }

    // Goal: each malformed entry is reported by position, without its secret.
    #[test]
    fn bad_entries_are_named_not_echoed() {
        let err = KeyRing::parse("", "a:x,topsecret").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("#2"), "{msg}");
        assert!(!msg.contains("topsecret"), "{msg}");

        let err = KeyRing::parse("", "a:x,b:base64:!!!").unwrap_err();
        assert_eq!(
            err,
            ConfigError::BadKeyEntry {
                index: 2,
                kid: Some("b".into()),
                reason: "secret is not valid base64"
            }
        );
        assert!(err.to_string().contains("\"b\""));

        assert!(matches!(
            KeyRing::parse("", ":x"),
            Err(ConfigError::BadKeyEntry { index: 1, .. })
        ));
        assert!(matches!(
            KeyRing::parse("", "a:"),
            Err(ConfigError::BadKeyEntry { index: 1, .. })
        ));
        assert!(matches!(
            KeyRing::parse("", "a b:x"),
            Err(ConfigError::BadKeyEntry { .. })
        ));
        assert!(matches!(
            KeyRing::parse("", "a:x,a:y"),
            Err(ConfigError::DuplicateKid(k)) if k == "a"
        ));
    }

    // Goal: a named key is never replaced by the default for a known kid, and
    // an unknown kid finds nothing even when a default exists.
    #[test]
    fn kid_lookup_does_not_fall_back() {
        let ring = KeyRing::parse("dflt", "a:x").unwrap();
        assert!(ring.key_for(Some("a")).is_some());
        assert!(ring.key_for(Some("b")).is_none());
        assert!(ring.key_for(None).is_some());
    }

    // Goal: Debug output lists kids but no secret bytes.
    #[test]
    fn debug_hides_secrets() {
        let ring = KeyRing::parse("dflt-secret", "a:very-secret").unwrap();
        let s = format!("{ring:?}");
        assert!(s.contains("\"a\"") && !s.contains("secret"), "{s}");
    }

    // Goal: programmatic inserts reject kids the list syntax could not express.
    #[test]
    fn insert_validates() {
        let mut ring = KeyRing::new();
        assert!(ring.insert("", b"x").is_err());
        assert!(ring.insert("a,b", b"x").is_err());
        assert!(ring.insert("a", b"").is_err());
        assert!(ring.insert("a", b"x").is_ok());
        assert!(ring.remove("a"));
        assert!(!ring.remove("a"));
    }
}
