//! HMAC keys of the audit chain: parsing the reference's variables into a
//! [`KeyRing`], and the per-record chaining step.

use std::fmt;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// Bytes of one chain hash (HMAC-SHA256 output).
pub const HASH_LEN: usize = 32;
/// One chain hash.
pub type Hash = [u8; HASH_LEN];

/// Most keys one ring (and one chain file header) may name.
pub const MAX_KEYS: usize = 64;
/// Longest key id, bytes.
pub const MAX_KEY_ID_LEN: usize = 64;
/// Key id given to `AUDIT_HMAC_KEY` (the reference's choice).
pub const DEFAULT_KEY_ID: &str = "key-1";

/// Environment variable: `id:value,id2:base64:...`.
pub const ENV_KEYS: &str = "AUDIT_HMAC_KEYS";
/// Environment variable: one key, id `key-1`.
pub const ENV_KEY: &str = "AUDIT_HMAC_KEY";
/// Environment variable: the id of the key new records are chained with.
pub const ENV_KEY_ID: &str = "AUDIT_KEY_ID";

/// A key configuration that cannot be used; the message names the variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyError(pub String);

impl fmt::Display for KeyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for KeyError {}

fn key_err(msg: impl Into<String>) -> KeyError {
    KeyError(msg.into())
}

/// One named HMAC-SHA256 key. The keyed state (the key block already
/// absorbed into the inner and outer hashes) is computed once here; each
/// record then costs a clone of that state plus the hashing of its bytes.
#[derive(Clone)]
pub struct AuditKey {
    id: String,
    mac: Hmac<Sha256>,
}

impl fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print key material.
        f.debug_struct("AuditKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl AuditKey {
    /// A key with id `id` and secret bytes `secret` (must not be empty).
    pub fn new(id: &str, secret: &[u8]) -> Result<AuditKey, KeyError> {
        validate_id(id)?;
        if secret.is_empty() {
            return Err(key_err(format!("audit key {id:?} has an empty value")));
        }
        let mac = <Hmac<Sha256> as Mac>::new_from_slice(secret)
            .map_err(|_| key_err(format!("audit key {id:?} cannot key HMAC-SHA256")))?;
        Ok(AuditKey {
            id: id.to_string(),
            mac,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// One step of the chain: `HMAC-SHA256(key, prev || record)`, where
    /// `prev` is absent (empty) for the first record of a chain.
    pub fn chain(&self, prev: Option<&Hash>, record: &[u8]) -> Hash {
        let mut mac = self.mac.clone();
        if let Some(p) = prev {
            mac.update(p);
        }
        mac.update(record);
        let mut out = [0u8; HASH_LEN];
        out.copy_from_slice(&mac.finalize().into_bytes());
        out
    }
}

/// Key ids are short, printable and free of the separators of the variables
/// and of JSON escapes, so they can be written anywhere without quoting.
fn validate_id(id: &str) -> Result<(), KeyError> {
    let ok_char = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
    if id.is_empty() || id.len() > MAX_KEY_ID_LEN || !id.chars().all(ok_char) {
        return Err(key_err(format!(
            "audit key id {id:?} must be 1..={MAX_KEY_ID_LEN} characters of [A-Za-z0-9._-]"
        )));
    }
    Ok(())
}

/// Every key the chain knows, and which one chains new records. Old keys
/// stay in the ring after a rotation so that older entries still verify.
#[derive(Clone, Debug)]
pub struct KeyRing {
    keys: Vec<AuditKey>,
    active: usize,
}

impl KeyRing {
    /// A ring of `keys` (unique ids, at least one); `active` names the key
    /// for new records, the first key when `None`.
    pub fn new(keys: Vec<AuditKey>, active: Option<&str>) -> Result<KeyRing, KeyError> {
        if keys.is_empty() {
            return Err(key_err("AUDIT_HMAC_KEY not configured"));
        }
        if keys.len() > MAX_KEYS {
            return Err(key_err(format!("at most {MAX_KEYS} audit keys")));
        }
        for (i, k) in keys.iter().enumerate() {
            if keys[..i].iter().any(|o| o.id == k.id) {
                return Err(key_err(format!(
                    "{ENV_KEYS}: key id {:?} listed twice",
                    k.id
                )));
            }
        }
        let active = match active.map(str::trim).filter(|a| !a.is_empty()) {
            None => 0,
            Some(id) => keys
                .iter()
                .position(|k| k.id == id)
                .ok_or_else(|| key_err(format!("{ENV_KEY_ID}: unknown audit key id: {id}")))?,
        };
        Ok(KeyRing { keys, active })
    }

    /// Parses the reference's settings: `keys` is `AUDIT_HMAC_KEYS`
    /// (`id:value,...`, a value may be `base64:...`), `key` is
    /// `AUDIT_HMAC_KEY` (id `key-1`, used only when `keys` is unset) and
    /// `active` is `AUDIT_KEY_ID`. `Ok(None)` when no key is configured: the
    /// chain is off.
    pub fn from_settings(
        keys: Option<&str>,
        key: Option<&str>,
        active: Option<&str>,
    ) -> Result<Option<KeyRing>, KeyError> {
        let keys = keys.map(str::trim).filter(|s| !s.is_empty());
        let key = key.map(str::trim).filter(|s| !s.is_empty());
        let list = match (keys, key) {
            (Some(spec), _) => parse_key_list(spec)?,
            (None, Some(value)) => vec![AuditKey::new(
                DEFAULT_KEY_ID,
                &decode_value(ENV_KEY, value)?,
            )?],
            (None, None) => {
                if active.is_some_and(|a| !a.trim().is_empty()) {
                    return Err(key_err(format!(
                        "{ENV_KEY_ID} is set but neither {ENV_KEYS} nor {ENV_KEY} is"
                    )));
                }
                return Ok(None);
            }
        };
        KeyRing::new(list, active).map(Some)
    }

    /// [`KeyRing::from_settings`] on the process environment.
    pub fn from_env() -> Result<Option<KeyRing>, KeyError> {
        let var = |k| std::env::var(k).ok();
        KeyRing::from_settings(
            var(ENV_KEYS).as_deref(),
            var(ENV_KEY).as_deref(),
            var(ENV_KEY_ID).as_deref(),
        )
    }

    /// The key that chains new records.
    pub fn active(&self) -> &AuditKey {
        &self.keys[self.active]
    }

    pub fn active_index(&self) -> usize {
        self.active
    }

    pub fn get(&self, id: &str) -> Option<&AuditKey> {
        self.keys.iter().find(|k| k.id == id)
    }

    pub fn keys(&self) -> &[AuditKey] {
        &self.keys
    }
}

fn parse_key_list(spec: &str) -> Result<Vec<AuditKey>, KeyError> {
    let mut out = Vec::new();
    for entry in spec.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (id, value) = entry.split_once(':').ok_or_else(|| {
            key_err(format!(
                "{ENV_KEYS}: entry {:?} must be id:value",
                redact(entry)
            ))
        })?;
        let id = id.trim();
        out.push(AuditKey::new(id, &decode_value(ENV_KEYS, value.trim())?)?);
    }
    if out.is_empty() {
        return Err(key_err(format!("{ENV_KEYS} lists no key")));
    }
    Ok(out)
}

/// A key value: raw bytes, or `base64:` followed by standard base64.
fn decode_value(var: &str, value: &str) -> Result<Vec<u8>, KeyError> {
    match value.strip_prefix("base64:") {
        None => Ok(value.as_bytes().to_vec()),
        Some(b64) => {
            let b64 = b64.trim();
            base64::engine::general_purpose::STANDARD
                .decode(b64)
                .or_else(|_| base64::engine::general_purpose::STANDARD_NO_PAD.decode(b64))
                .map_err(|e| key_err(format!("{var}: a base64: key value does not decode: {e}")))
        }
    }
}

/// The id part of a malformed entry, for error messages that must not echo secrets.
fn redact(entry: &str) -> String {
    let shown: String = entry.chars().take(8).collect();
    if entry.len() > shown.len() {
        format!("{shown}…")
    } else {
        shown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the chaining step is HMAC-SHA256 over prev || record, matching a one-shot HMAC.
    #[test]
    fn chain_step_is_hmac_of_prev_and_record() {
        let k = AuditKey::new("k", b"secret").unwrap();
        let one_shot = |data: &[u8]| {
            let mut m = <Hmac<Sha256> as Mac>::new_from_slice(b"secret").unwrap();
            m.update(data);
            let mut out = [0u8; 32];
            out.copy_from_slice(&m.finalize().into_bytes());
            out
        };
        let h1 = k.chain(None, b"record one");
        assert_eq!(h1, one_shot(b"record one"));
        let mut joined = h1.to_vec();
        joined.extend_from_slice(b"record two");
        assert_eq!(k.chain(Some(&h1), b"record two"), one_shot(&joined));
        // RFC 4231 test case 2 pins the primitive itself.
        let k = AuditKey::new("jefe", b"Jefe").unwrap();
        let h = k.chain(None, b"what do ya want for nothing?");
        assert_eq!(
            h[..4],
            [0x5b, 0xdc, 0xc1, 0x46],
            "HMAC-SHA256 RFC 4231 case 2"
        );
    }

    // Goal: the reference's variables parse into a ring with the right active key.
    #[test]
    fn settings_parse() {
        assert!(KeyRing::from_settings(None, None, None).unwrap().is_none());
        let r = KeyRing::from_settings(None, Some("s3cret"), None)
            .unwrap()
            .unwrap();
        assert_eq!(r.active().id(), DEFAULT_KEY_ID);
        let r = KeyRing::from_settings(Some("a:one, b:base64:dHdv"), Some("ignored"), Some("b"))
            .unwrap()
            .unwrap();
        assert_eq!(r.keys().len(), 2);
        assert_eq!(r.active().id(), "b");
        let b = AuditKey::new("b", b"two").unwrap();
        assert_eq!(r.active().chain(None, b"x"), b.chain(None, b"x"));
        let first = KeyRing::from_settings(Some("a:one,b:two"), None, None)
            .unwrap()
            .unwrap();
        assert_eq!(first.active().id(), "a");
    }

    // Goal: bad key settings are refused with messages that name the problem and never the secret.
    #[test]
    fn settings_errors() {
        let e = KeyRing::from_settings(Some("a:one"), None, Some("zz")).unwrap_err();
        assert!(e.0.contains("unknown audit key id: zz"), "{e}");
        let e = KeyRing::from_settings(Some("a:one,a:two"), None, None).unwrap_err();
        assert!(e.0.contains("twice"), "{e}");
        let e = KeyRing::from_settings(Some("nocolonsecretvalue"), None, None).unwrap_err();
        assert!(!e.0.contains("secretvalue"), "{e}");
        assert!(KeyRing::from_settings(Some("a:"), None, None).is_err());
        assert!(KeyRing::from_settings(Some("a b:x"), None, None).is_err());
        assert!(KeyRing::from_settings(Some("a:base64:!!!"), None, None).is_err());
        assert!(KeyRing::from_settings(None, None, Some("a")).is_err());
        let dbg = format!("{:?}", AuditKey::new("a", b"hunter2").unwrap());
        assert!(!dbg.contains("hunter2"));
    }
}
