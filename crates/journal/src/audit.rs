//! Tamper-evident audit chain over the journal.
//!
//! Every journal record gets a keyed hash that covers it and, through the
//! previous hash, every record before it:
//!
//! ```text
//! hash_1 = HMAC-SHA256(key, record_1)              (empty previous hash)
//! hash_n = HMAC-SHA256(key, hash_{n-1} || record_n)
//! ```
//!
//! where `record_n` is the record exactly as framed on disk: the 28-byte
//! header (length, CRC32C, seq, time, kind, flags) and the payload. The
//! chain, like the rest of this crate, does not know what records mean.
//!
//! The record CRC already catches accidental damage and naive edits; the
//! chain catches deliberate ones: whoever edits a record and fixes its CRC,
//! removes a record and renumbers the rest, or reorders records cannot
//! produce the matching hashes without the key. Truncating the journal and
//! the chain together is caught by comparing with an exported anchor.
//!
//! # Who computes it
//!
//! The [`Auditor`] thread (`auditor`), off the hot path: it follows the
//! segment files up to [`crate::JournalHandle::durable_seq`], so the writer
//! and the order path never wait for a hash. It sleeps while there is nothing
//! new (one atomic load per wake-up, every `poll_interval`, 25 ms by default).
//!
//! # Keys
//!
//! [`KeyRing`] takes the reference's variables: `AUDIT_HMAC_KEYS` =
//! `id:value,id2:base64:...` (several keys for rotation), else
//! `AUDIT_HMAC_KEY` (id `key-1`); `AUDIT_KEY_ID` picks the key for new
//! records (default: the first). Each entry records its key id, so after a
//! rotation the old entries still verify as long as the old key stays in the
//! ring. A key id must keep its value forever: changing the secret behind an
//! id makes every entry made with it fail to verify.
//!
//! # Files (all in `<journal dir>/audit/`, integers little-endian)
//!
//! Chain files `chain-{first_seq:020}.log`, a new one every
//! `entries_per_file` entries and whenever the active key is not named in
//! the current file's header:
//!
//! ```text
//! header:
//!   0   8  magic "SWYAUDC1"
//!   8   8  first_seq        seq of the file's first entry
//!   16  2  key_count        1..=64
//!   18  2  header_len       bytes of the whole header
//!   20  ..  key ids          key_count × (u8 length, ASCII id)
//!   ..  4  crc32c           over every header byte before it
//! entries, fixed size, from header_len on; entry i is for seq first_seq + i:
//!   0   8  seq
//!   8   2  key_index        into the header's key ids
//!   10  2  reserved, 0
//!   12  4  crc32c           over bytes 0..12 and 16..48
//!   16  32 hash             HMAC-SHA256 chain value after record `seq`
//! ```
//!
//! The first file starts at the journal's first seq. Each later file starts
//! right after the previous file's last entry and continues its hash.
//!
//! The anchor `anchor.json` (or `AUDIT_ANCHOR_PATH`) is
//! `{"seq":N,"at":<epoch ms>,"keyId":"...","hash":"<base64>"}` for the last
//! entry made durable, replaced atomically (temp file, fsync, rename,
//! directory fsync) after each chain sync. With `AUDIT_ANCHOR_EXPORT_DIR`,
//! the first anchor of each UTC day is also copied to
//! `audit.anchor.<days since epoch>` there, meant for storage the gateway's
//! host cannot rewrite.
//!
//! # Crash window and recovery
//!
//! Entries are appended through a buffer and `fdatasync`ed in batches (every
//! `sync_interval` or `sync_entries`), so after a crash the chain can end
//! before the journal's durable records, and its last entry can be torn.
//! Those records passed their CRC and are chained at the next start: the
//! window in which an edit to them would go unnoticed is the time between
//! their fdatasync in the journal and the next chain sync (about 100 ms in
//! normal operation, longer while the gateway is down). At startup the
//! auditor checks the newest chain file: a torn tail (partial entry, or
//! checksum-failing entries with nothing valid after them) is cut; a file
//! whose structure is damaged, or whose last entry does not hash from the
//! journal record it claims, or which reaches past the journal, is renamed
//! `<name>.bad.<ms>` (logged at error level) and the chain is rebuilt from
//! that file's first seq on, continuing the previous file's hash.

mod auditor;
mod chain;
mod cursor;
mod keys;
mod verify;

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine as _;

pub use auditor::{AuditStatus, AuditStatusHandle, Auditor, AuditorConfig};
pub use chain::{chain_file_name, ENTRY_LEN};
pub use cursor::{CursorError, JournalCursor};
pub use keys::{
    AuditKey, Hash, KeyError, KeyRing, DEFAULT_KEY_ID, ENV_KEY, ENV_KEYS, ENV_KEY_ID, HASH_LEN,
};
pub use verify::{verify, verify_anchor, VerifyOutcome};

/// Environment variable naming the anchor file.
pub const ENV_ANCHOR_PATH: &str = "AUDIT_ANCHOR_PATH";
/// Environment variable naming the directory daily anchors are exported to.
pub const ENV_ANCHOR_EXPORT_DIR: &str = "AUDIT_ANCHOR_EXPORT_DIR";

/// Directory of the chain files of the journal in `journal_dir`.
pub fn chain_dir(journal_dir: &Path) -> PathBuf {
    journal_dir.join("audit")
}

/// Default anchor file of the journal in `journal_dir`.
pub fn default_anchor_path(journal_dir: &Path) -> PathBuf {
    chain_dir(journal_dir).join("anchor.json")
}

/// The chain's position at one moment: enough to prove later that the
/// journal up to `seq` has not been rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    /// When the anchor was written, ms since the UNIX epoch.
    pub at_ms: u64,
    pub key_id: String,
    pub hash: Hash,
}

impl Anchor {
    /// The hash in standard base64.
    pub fn hash_base64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.hash)
    }

    /// `{"seq":N,"at":N,"keyId":"...","hash":"..."}`. Key ids are validated
    /// to need no escaping.
    pub fn to_json(&self) -> String {
        format!(
            r#"{{"seq":{},"at":{},"keyId":"{}","hash":"{}"}}"#,
            self.seq,
            self.at_ms,
            self.key_id,
            self.hash_base64()
        )
    }

    /// Parses the JSON written by [`Anchor::to_json`] (any key order and
    /// whitespace; strings without escapes).
    pub fn from_json(text: &str) -> Result<Anchor, String> {
        let fields = parse_flat_object(text)?;
        let get = |k: &str| {
            fields
                .iter()
                .find(|(name, _)| name == k)
                .map(|(_, v)| v.as_str())
                .ok_or_else(|| format!("anchor has no {k:?}"))
        };
        let num = |k: &str| -> Result<u64, String> {
            get(k)?
                .parse()
                .map_err(|_| format!("anchor {k:?} is not a number"))
        };
        let hash_b64 = get("hash")?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(hash_b64)
            .map_err(|e| format!("anchor hash is not base64: {e}"))?;
        let hash: Hash = bytes
            .as_slice()
            .try_into()
            .map_err(|_| format!("anchor hash has {} bytes, not {HASH_LEN}", bytes.len()))?;
        Ok(Anchor {
            seq: num("seq")?,
            at_ms: num("at")?,
            key_id: get("keyId")?.to_string(),
            hash,
        })
    }

    /// Reads an anchor file; `Ok(None)` if it does not exist.
    pub fn read(path: &Path) -> Result<Option<Anchor>, String> {
        match fs::read_to_string(path) {
            Ok(text) => Anchor::from_json(&text)
                .map(Some)
                .map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Replaces `path` with this anchor atomically: temp file, fsync, rename,
    /// fsync of the directory. A reader sees the old anchor or the new one.
    pub fn write_atomic(&self, path: &Path) -> std::io::Result<()> {
        write_file_atomic(path, format!("{}\n", self.to_json()).as_bytes())
    }
}

/// Atomically replaces `path` with `bytes` (temp file, fsync, rename,
/// directory fsync).
pub fn write_file_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp_name = path.as_os_str().to_owned();
    tmp_name.push(".tmp");
    let tmp = PathBuf::from(tmp_name);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&tmp, path)?;
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    crate::segment::sync_dir(dir)
}

/// A flat JSON object of unsigned numbers and escape-free strings, as
/// (name, raw value) pairs. Enough for the anchor, which this crate writes.
fn parse_flat_object(text: &str) -> Result<Vec<(String, String)>, String> {
    let bad = |what: &str| format!("anchor is not the expected JSON: {what}");
    let body = text
        .trim()
        .strip_prefix('{')
        .and_then(|t| t.strip_suffix('}'))
        .ok_or_else(|| bad("not an object"))?;
    let mut out = Vec::new();
    let mut rest = body.trim();
    while !rest.is_empty() {
        let after_quote = rest.strip_prefix('"').ok_or_else(|| bad("key"))?;
        let (name, tail) = after_quote.split_once('"').ok_or_else(|| bad("key"))?;
        let tail = tail
            .trim_start()
            .strip_prefix(':')
            .ok_or_else(|| bad(":"))?;
        let tail = tail.trim_start();
        let (value, tail) = if let Some(s) = tail.strip_prefix('"') {
            let (v, t) = s.split_once('"').ok_or_else(|| bad("string"))?;
            if v.contains('\\') {
                return Err(bad("escaped string"));
            }
            (v, t)
        } else {
            let end = tail
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(tail.len());
            if end == 0 {
                return Err(bad("value"));
            }
            tail.split_at(end)
        };
        out.push((name.to_string(), value.to_string()));
        let tail = tail.trim_start();
        rest = match tail.strip_prefix(',') {
            Some(t) => t.trim_start(),
            None if tail.is_empty() => tail,
            None => return Err(bad("separator")),
        };
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: an anchor survives JSON both ways and a damaged file is refused.
    #[test]
    fn anchor_json_roundtrip() {
        let a = Anchor {
            seq: 42,
            at_ms: 1_700_000_000_123,
            key_id: "key-1".into(),
            hash: [0xAB; 32],
        };
        let json = a.to_json();
        assert!(json.starts_with(r#"{"seq":42,"at":1700000000123,"keyId":"key-1","hash":""#));
        assert_eq!(Anchor::from_json(&json).unwrap(), a);
        let spaced = format!(
            "{{ \"hash\" : \"{}\", \"keyId\":\"key-1\" ,\"at\":1700000000123, \"seq\": 42 }}\n",
            a.hash_base64()
        );
        assert_eq!(Anchor::from_json(&spaced).unwrap(), a);
        for bad in [
            "",
            "{}",
            r#"{"seq":1,"at":2,"keyId":"k","hash":"AAAA"}"#,
            r#"{"seq":-1,"at":2,"keyId":"k","hash":"AAAA"}"#,
            &json[..json.len() - 2],
        ] {
            assert!(Anchor::from_json(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("anchor.json");
        assert_eq!(Anchor::read(&p).unwrap(), None);
        a.write_atomic(&p).unwrap();
        assert_eq!(Anchor::read(&p).unwrap(), Some(a));
        assert!(!dir.path().join("anchor.json.tmp").exists());
    }
}
