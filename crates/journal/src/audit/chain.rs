//! The chain file format (see the module docs of `audit` for the layout):
//! naming, header and entry codecs, listing, creation, and a pull reader
//! that tells a torn tail from damage.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::keys::{Hash, HASH_LEN, MAX_KEYS, MAX_KEY_ID_LEN};
use crate::segment::sync_dir;

/// Magic bytes opening every chain file (the trailing `1` is the format version).
pub const CHAIN_MAGIC: [u8; 8] = *b"SWYAUDC1";
/// Bytes of one chain entry.
pub const ENTRY_LEN: usize = 48;
/// Fixed part of the header: magic, first_seq, key count, header length.
const FIXED_HEADER: usize = 20;
/// Largest possible header: the fixed part, every id at its longest, the crc.
const MAX_HEADER: usize = FIXED_HEADER + MAX_KEYS * (1 + MAX_KEY_ID_LEN) + 4;

const NAME_PREFIX: &str = "chain-";
const NAME_SUFFIX: &str = ".log";
const NAME_DIGITS: usize = 20;

/// File name of the chain file whose first entry is for `first_seq`.
pub fn chain_file_name(first_seq: u64) -> String {
    format!("{NAME_PREFIX}{first_seq:0NAME_DIGITS$}{NAME_SUFFIX}")
}

/// `chain-{first_seq:020}.log` → first_seq. Set-aside files (`.bad.<ms>`) and
/// temp files do not parse, so they are never part of the chain.
fn parse_chain_name(name: &str) -> Option<u64> {
    let digits = name.strip_prefix(NAME_PREFIX)?.strip_suffix(NAME_SUFFIX)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s > 0)
}

/// One chain file in the chain directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainFileInfo {
    pub path: PathBuf,
    pub first_seq: u64,
}

/// Chain files of `dir` by first seq; a missing directory has none.
pub fn list_chain_files(dir: &Path) -> io::Result<Vec<ChainFileInfo>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry?;
        if let Some(first_seq) = entry.file_name().to_str().and_then(parse_chain_name) {
            out.push(ChainFileInfo {
                path: entry.path(),
                first_seq,
            });
        }
    }
    out.sort_unstable_by_key(|f| f.first_seq);
    Ok(out)
}

/// The decoded header of a chain file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHeader {
    pub first_seq: u64,
    /// Key ids; an entry names its key by index into this list.
    pub key_ids: Vec<String>,
    /// Header bytes; entries start here.
    pub len: usize,
}

pub fn encode_header(first_seq: u64, key_ids: &[&str]) -> Vec<u8> {
    debug_assert!(!key_ids.is_empty() && key_ids.len() <= MAX_KEYS);
    let len = FIXED_HEADER + key_ids.iter().map(|k| 1 + k.len()).sum::<usize>() + 4;
    let mut h = Vec::with_capacity(len);
    h.extend_from_slice(&CHAIN_MAGIC);
    h.extend_from_slice(&first_seq.to_le_bytes());
    h.extend_from_slice(&(key_ids.len() as u16).to_le_bytes());
    h.extend_from_slice(&(len as u16).to_le_bytes());
    for id in key_ids {
        // Key ids are validated to at most MAX_KEY_ID_LEN (< 256) bytes.
        h.push(id.len() as u8);
        h.extend_from_slice(id.as_bytes());
    }
    let crc = crc32c::crc32c(&h);
    h.extend_from_slice(&crc.to_le_bytes());
    debug_assert_eq!(h.len(), len);
    h
}

/// Decodes a header from the first bytes of a file (`bytes` may run past it).
pub fn decode_header(bytes: &[u8]) -> Result<ChainHeader, String> {
    if bytes.len() < FIXED_HEADER {
        return Err("file shorter than a chain header".into());
    }
    if bytes[..8] != CHAIN_MAGIC {
        return Err("bad chain file magic".into());
    }
    let first_seq = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| "header")?);
    let count = u16::from_le_bytes([bytes[16], bytes[17]]) as usize;
    let len = u16::from_le_bytes([bytes[18], bytes[19]]) as usize;
    if count == 0 || count > MAX_KEYS || !(FIXED_HEADER + 4..=MAX_HEADER).contains(&len) {
        return Err(format!("impossible header (keys {count}, length {len})"));
    }
    if bytes.len() < len {
        return Err("file shorter than its chain header".into());
    }
    let stored = u32::from_le_bytes(bytes[len - 4..len].try_into().map_err(|_| "header")?);
    if crc32c::crc32c(&bytes[..len - 4]) != stored {
        return Err("chain header checksum mismatch".into());
    }
    let mut key_ids = Vec::with_capacity(count);
    let mut off = FIXED_HEADER;
    for _ in 0..count {
        let n = *bytes.get(off).ok_or("key ids overrun the header")? as usize;
        let id = bytes
            .get(off + 1..off + 1 + n)
            .filter(|_| off + 1 + n <= len - 4)
            .ok_or("key ids overrun the header")?;
        key_ids.push(String::from_utf8(id.to_vec()).map_err(|_| "key id is not UTF-8")?);
        off += 1 + n;
    }
    if off != len - 4 {
        return Err("header length disagrees with its key ids".into());
    }
    Ok(ChainHeader {
        first_seq,
        key_ids,
        len,
    })
}

/// One chain entry: the hash after the record `seq`, made with key `key_index`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub seq: u64,
    pub key_index: u16,
    pub hash: Hash,
}

pub fn encode_entry(e: &Entry) -> [u8; ENTRY_LEN] {
    let mut b = [0u8; ENTRY_LEN];
    b[0..8].copy_from_slice(&e.seq.to_le_bytes());
    b[8..10].copy_from_slice(&e.key_index.to_le_bytes());
    // 10..12 reserved, zero.
    b[16..16 + HASH_LEN].copy_from_slice(&e.hash);
    let crc = entry_crc(&b);
    b[12..16].copy_from_slice(&crc.to_le_bytes());
    b
}

/// CRC32C over the entry without its crc field.
fn entry_crc(b: &[u8; ENTRY_LEN]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&b[..12]), &b[16..])
}

/// Decodes an entry; `None` when its checksum or reserved bytes are wrong.
pub fn decode_entry(b: &[u8; ENTRY_LEN]) -> Option<Entry> {
    let stored = u32::from_le_bytes([b[12], b[13], b[14], b[15]]);
    if stored != entry_crc(b) || b[10..12] != [0, 0] {
        return None;
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&b[0..8]);
    let mut hash = [0u8; HASH_LEN];
    hash.copy_from_slice(&b[16..]);
    Some(Entry {
        seq: u64::from_le_bytes(seq),
        key_index: u16::from_le_bytes([b[8], b[9]]),
        hash,
    })
}

/// Creates chain file `first_seq` in `dir` holding only its header, the way
/// segments are created (temp file, sync, rename, directory sync), so a crash
/// never leaves a half-written header under a real chain file name.
pub fn create_chain_file(
    dir: &Path,
    first_seq: u64,
    key_ids: &[&str],
) -> io::Result<(File, PathBuf, ChainHeader)> {
    let path = dir.join(chain_file_name(first_seq));
    let tmp = dir.join(format!("{}.tmp", chain_file_name(first_seq)));
    let header = encode_header(first_seq, key_ids);
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)?;
    f.write_all(&header)?;
    f.sync_data()?;
    drop(f);
    fs::rename(&tmp, &path)?;
    sync_dir(dir)?;
    let file = OpenOptions::new().append(true).open(&path)?;
    let header = ChainHeader {
        first_seq,
        key_ids: key_ids.iter().map(|s| s.to_string()).collect(),
        len: header.len(),
    };
    Ok((file, path, header))
}

/// What the next read from a chain file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryRead {
    Entry(Entry),
    /// No more complete entries (as of when the file was opened).
    End,
    /// From `offset` on, the file holds only a partial or checksum-failing
    /// tail and no valid entry after it: an interrupted append.
    Torn {
        offset: u64,
        reason: String,
    },
}

/// Why a chain file cannot be read as a chain.
#[derive(Debug)]
pub enum ChainError {
    Io(io::Error),
    /// The file is damaged where a crash cannot explain it; `seq` is the
    /// sequence number whose entry is bad (0 for the header).
    Damaged {
        seq: u64,
        reason: String,
    },
}

impl From<io::Error> for ChainError {
    fn from(e: io::Error) -> Self {
        ChainError::Io(e)
    }
}

/// Sequential reader of one chain file.
pub struct ChainFileReader {
    file: BufReader<File>,
    pub header: ChainHeader,
    /// Index of the next entry.
    index: u64,
    /// File length when opened: entries appended later are not seen.
    len: u64,
}

impl ChainFileReader {
    /// Opens `info` and checks its header against its name.
    pub fn open(info: &ChainFileInfo) -> Result<ChainFileReader, ChainError> {
        let mut file = File::open(&info.path)?;
        let len = file.metadata()?.len();
        let mut head = Vec::with_capacity(MAX_HEADER);
        (&mut file).take(MAX_HEADER as u64).read_to_end(&mut head)?;
        let damaged = |reason: String| ChainError::Damaged { seq: 0, reason };
        let header = decode_header(&head).map_err(damaged)?;
        if header.first_seq != info.first_seq {
            return Err(damaged(format!(
                "header says first seq {}, file name says {}",
                header.first_seq, info.first_seq
            )));
        }
        file.seek(SeekFrom::Start(header.len as u64))?;
        Ok(ChainFileReader {
            file: BufReader::with_capacity(64 << 10, file),
            header,
            index: 0,
            len,
        })
    }

    /// Complete entries in the file (a partial tail not counted).
    pub fn entry_count(&self) -> u64 {
        self.len.saturating_sub(self.header.len as u64) / ENTRY_LEN as u64
    }

    fn offset_of(&self, index: u64) -> u64 {
        self.header.len as u64 + index * ENTRY_LEN as u64
    }

    /// Positions the reader at the entry for `seq` (which must not precede the file); a `seq`
    /// past the last entry positions at the end (any `seq`: `GET /audit/verify?fromSeq=` is a
    /// client's number, and its byte offset must not overflow).
    pub fn seek_to(&mut self, seq: u64) -> io::Result<()> {
        let index = seq
            .saturating_sub(self.header.first_seq)
            .min(self.entry_count());
        self.file.seek(SeekFrom::Start(self.offset_of(index)))?;
        self.index = index;
        Ok(())
    }

    /// The next entry, checked for checksum, contiguity and key index.
    pub fn next_entry(&mut self) -> Result<EntryRead, ChainError> {
        let offset = self.offset_of(self.index);
        let expected = self.header.first_seq + self.index;
        if offset + ENTRY_LEN as u64 > self.len {
            return Ok(match offset >= self.len {
                true => EntryRead::End,
                false => EntryRead::Torn {
                    offset,
                    reason: "partial entry".into(),
                },
            });
        }
        let mut b = [0u8; ENTRY_LEN];
        self.file.read_exact(&mut b)?;
        let Some(entry) = decode_entry(&b) else {
            if self.valid_entry_follows()? {
                return Err(ChainError::Damaged {
                    seq: expected,
                    reason: "chain entry checksum mismatch".into(),
                });
            }
            return Ok(EntryRead::Torn {
                offset,
                reason: "entry checksum mismatch at the end of the file".into(),
            });
        };
        if entry.seq != expected {
            return Err(ChainError::Damaged {
                seq: expected,
                reason: format!(
                    "chain entry for seq {} found where seq {expected} belongs",
                    entry.seq
                ),
            });
        }
        if entry.key_index as usize >= self.header.key_ids.len() {
            return Err(ChainError::Damaged {
                seq: expected,
                reason: format!(
                    "chain entry names key #{} but its file lists {} key ids",
                    entry.key_index,
                    self.header.key_ids.len()
                ),
            });
        }
        self.index += 1;
        Ok(EntryRead::Entry(entry))
    }

    /// True if any complete entry after the current position has a valid
    /// checksum: then a bad entry before it is damage, not a torn append.
    /// Consumes the rest of the file.
    fn valid_entry_follows(&mut self) -> io::Result<bool> {
        let mut b = [0u8; ENTRY_LEN];
        let mut offset = self.offset_of(self.index + 1);
        while offset + ENTRY_LEN as u64 <= self.len {
            self.file.read_exact(&mut b)?;
            if decode_entry(&b).is_some() {
                return Ok(true);
            }
            offset += ENTRY_LEN as u64;
        }
        Ok(false)
    }

    /// Key id of an entry read from this file.
    pub fn key_id(&self, e: &Entry) -> &str {
        &self.header.key_ids[e.key_index as usize]
    }
}

/// Reads the last valid entry of a complete (non-newest) chain file.
pub fn last_entry(info: &ChainFileInfo) -> Result<Option<(Entry, String)>, ChainError> {
    let mut r = ChainFileReader::open(info)?;
    let n = r.entry_count();
    if n == 0 {
        return Ok(None);
    }
    r.seek_to(info.first_seq + n - 1)?;
    match r.next_entry()? {
        EntryRead::Entry(e) => {
            let id = r.key_id(&e).to_string();
            Ok(Some((e, id)))
        }
        EntryRead::End | EntryRead::Torn { .. } => Err(ChainError::Damaged {
            seq: info.first_seq + n - 1,
            reason: "last entry of a closed chain file is damaged".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: names, headers and entries round-trip; damage is refused.
    #[test]
    fn codecs_roundtrip() {
        assert_eq!(chain_file_name(7), "chain-00000000000000000007.log");
        assert_eq!(parse_chain_name(&chain_file_name(7)), Some(7));
        for bad in [
            "chain-7.log",
            "chain-00000000000000000007.log.bad.123",
            "chain-00000000000000000007.log.tmp",
            "chain-00000000000000000000.log",
        ] {
            assert_eq!(parse_chain_name(bad), None, "{bad}");
        }
        let h = encode_header(42, &["key-1", "k2"]);
        let d = decode_header(&h).unwrap();
        assert_eq!((d.first_seq, d.len), (42, h.len()));
        assert_eq!(d.key_ids, vec!["key-1", "k2"]);
        let mut bad = h.clone();
        bad[21] ^= 1;
        assert!(decode_header(&bad).is_err());
        assert!(decode_header(&h[..h.len() - 1]).is_err());

        let e = Entry {
            seq: 9,
            key_index: 1,
            hash: [7; 32],
        };
        let b = encode_entry(&e);
        assert_eq!(decode_entry(&b), Some(e));
        for i in 0..ENTRY_LEN {
            let mut x = b;
            x[i] ^= 0x10;
            assert_eq!(decode_entry(&x), None, "byte {i}");
        }
        assert_eq!(decode_entry(&[0u8; ENTRY_LEN]), None);
    }
}
