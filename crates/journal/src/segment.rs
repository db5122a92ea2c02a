//! Segment files: naming, the 16-byte header, listing and creation.
//!
//! A segment is `{first_seq:020}.seg` in the journal directory and starts
//! with `SWYJRNL1` followed by `first_seq` (u64 LE). Zero-padded names make
//! lexical order equal numeric order, which keeps `ls` output meaningful.

use std::ffi::OsStr;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Seek, SeekFrom, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::JournalError;

/// Magic bytes opening every segment file (the trailing `1` is the format version).
pub const SEGMENT_MAGIC: [u8; 8] = *b"SWYJRNL1";
/// Bytes of the segment header: magic plus `first_seq`.
pub const SEGMENT_HEADER_LEN: usize = 16;
/// Upper bound on segments in one directory; beyond it something is wrong
/// (64 MiB segments would make this a 64 PiB journal).
pub const MAX_SEGMENTS: usize = 1 << 20;

const SEGMENT_EXT: &str = ".seg";
/// Suffix of a segment being created; it is renamed into place once its
/// header is durable, so a crash never leaves a half-written header under a
/// real segment name.
const TEMP_EXT: &str = ".seg.tmp";
const NAME_DIGITS: usize = 20;

/// One segment file found in the journal directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentInfo {
    pub path: PathBuf,
    /// First sequence number, taken from the file name.
    pub first_seq: u64,
}

/// File name of the segment whose first record has `first_seq`.
pub fn segment_file_name(first_seq: u64) -> String {
    format!("{first_seq:0NAME_DIGITS$}{SEGMENT_EXT}")
}

/// Parses `{first_seq:020}.seg`; anything else (including seq 0) is not a segment.
fn parse_segment_name(name: &OsStr) -> Option<u64> {
    let digits = name.to_str()?.strip_suffix(SEGMENT_EXT)?;
    if digits.len() != NAME_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|&s| s > 0)
}

pub(crate) fn encode_header(first_seq: u64) -> [u8; SEGMENT_HEADER_LEN] {
    let mut h = [0u8; SEGMENT_HEADER_LEN];
    h[..8].copy_from_slice(&SEGMENT_MAGIC);
    h[8..].copy_from_slice(&first_seq.to_le_bytes());
    h
}

/// Decodes a segment header, returning its `first_seq`.
pub(crate) fn decode_header(h: &[u8; SEGMENT_HEADER_LEN]) -> Result<u64, &'static str> {
    if h[..8] != SEGMENT_MAGIC {
        return Err("bad segment magic");
    }
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&h[8..]);
    Ok(u64::from_le_bytes(seq))
}

/// Lists the segments of `dir` sorted by `first_seq`. Files that are not
/// named like segments are ignored (they are not part of the log).
pub fn list_segments(dir: &Path) -> Result<Vec<SegmentInfo>, JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        if let Some(first_seq) = parse_segment_name(&entry.file_name()) {
            if out.len() == MAX_SEGMENTS {
                let why = format!("more than {MAX_SEGMENTS} segment files");
                return Err(JournalError::corrupt(dir, 0, 0, why));
            }
            out.push(SegmentInfo {
                path: entry.path(),
                first_seq,
            });
        }
    }
    out.sort_unstable_by_key(|s| s.first_seq);
    Ok(out)
}

/// Removes `*.seg.tmp` leftovers of a segment creation interrupted by a crash.
pub(crate) fn remove_stale_temps(dir: &Path) -> Result<(), JournalError> {
    let entries = fs::read_dir(dir).map_err(|e| JournalError::io(dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| JournalError::io(dir, e))?;
        let name = entry.file_name();
        if name.to_str().is_some_and(|n| n.ends_with(TEMP_EXT)) {
            tracing::warn!(file = %entry.path().display(), "removing stale journal temp file");
            fs::remove_file(entry.path()).map_err(|e| JournalError::io(entry.path(), e))?;
        }
    }
    Ok(())
}

/// Makes directory entries (new or renamed files) durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Creates segment `first_seq` and returns it opened for writing, positioned
/// after its header (the writer itself writes at explicit offsets).
///
/// The header is written to a temp file, synced, then renamed over the final
/// name and the directory is synced. Renaming (rather than creating the final
/// name directly) also atomically replaces a same-named segment left empty by
/// a failed commit, whose handle must never be synced again.
pub(crate) fn create_segment(
    dir: &Path,
    first_seq: u64,
    fsync: bool,
) -> io::Result<(File, PathBuf)> {
    let path = dir.join(segment_file_name(first_seq));
    let tmp = dir.join(format!("{first_seq:0NAME_DIGITS$}{TEMP_EXT}"));
    let mut f = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&tmp)?;
    f.write_all(&encode_header(first_seq))?;
    if fsync {
        f.sync_data()?;
    }
    drop(f);
    fs::rename(&tmp, &path)?;
    if fsync {
        sync_dir(dir)?;
    }
    let mut file = OpenOptions::new().write(true).open(&path)?;
    file.seek(SeekFrom::Start(SEGMENT_HEADER_LEN as u64))?;
    Ok((file, path))
}

/// A zero-filled file of a whole segment's size, made durable in advance, waiting to become
/// the next segment (see [`prepare_spare`]).
#[derive(Debug)]
pub(crate) struct Spare {
    pub file: File,
    pub path: PathBuf,
}

/// Zeros are written in pieces of this size, and synced every `SPARE_SYNC_EVERY` bytes so
/// that the page cache never holds a whole segment of dirty zeros for one long flush.
const ZERO_CHUNK: usize = 1 << 20;
const SPARE_SYNC_EVERY: usize = 16 << 20;

/// Writes `spare-{n}.seg.tmp`, `bytes` of real zeros (not a hole, not `fallocate`d unwritten
/// extents), and syncs it with its size. Records later written over those zeros change
/// neither the file's size nor its block map, so each commit's fdatasync flushes data only
/// and the file system commits no metadata for it. (Appending instead changes the size, and
/// ext4 then commits its journal in every fdatasync: measured on this project's disk, about
/// a quarter more time and CPU per sync; see docs/benchmarks.md.) The name ends in `.seg.tmp`,
/// so a spare left by a crash is removed at the next start.
pub(crate) fn prepare_spare(dir: &Path, n: u64, bytes: u64) -> io::Result<Spare> {
    let path = dir.join(format!("spare-{n}{TEMP_EXT}"));
    let fill = || -> io::Result<File> {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&path)?;
        let zeros = vec![0u8; ZERO_CHUNK];
        let (mut left, mut unsynced) = (bytes, 0usize);
        while left > 0 {
            let n = usize::try_from(left).map_or(ZERO_CHUNK, |l| l.min(ZERO_CHUNK));
            f.write_all(&zeros[..n])?;
            left -= n as u64;
            unsynced += n;
            if unsynced >= SPARE_SYNC_EVERY {
                f.sync_data()?;
                unsynced = 0;
            }
        }
        f.sync_all()?;
        Ok(f)
    };
    match fill() {
        Ok(file) => Ok(Spare { file, path }),
        Err(e) => {
            let _ = fs::remove_file(&path);
            Err(e)
        }
    }
}

/// Turns a prepared spare into segment `first_seq`: the header is written over its first
/// bytes and synced before the rename (as in [`create_segment`], a crash never leaves a
/// segment name on a file without its header), then the directory is synced. A spare that
/// fails before the rename is discarded.
pub(crate) fn install_spare(
    dir: &Path,
    spare: Spare,
    first_seq: u64,
) -> io::Result<(File, PathBuf)> {
    let path = dir.join(segment_file_name(first_seq));
    let renamed = spare
        .file
        .write_all_at(&encode_header(first_seq), 0)
        .and_then(|()| spare.file.sync_data())
        .and_then(|()| fs::rename(&spare.path, &path));
    if let Err(e) = renamed {
        discard_spare(spare);
        return Err(e);
    }
    sync_dir(dir)?;
    Ok((spare.file, path))
}

/// Discards a spare that will not be used.
pub(crate) fn discard_spare(spare: Spare) {
    drop(spare.file);
    if let Err(e) = fs::remove_file(&spare.path) {
        tracing::debug!(file = %spare.path.display(), error = %e, "journal: cannot remove a spare segment");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: segment names round-trip and only exact `{020}.seg` names are accepted.
    #[test]
    fn names_roundtrip_and_reject_others() {
        assert_eq!(segment_file_name(42), "00000000000000000042.seg");
        assert_eq!(
            parse_segment_name(OsStr::new(&segment_file_name(42))),
            Some(42)
        );
        for bad in [
            "42.seg",
            "00000000000000000000.seg",
            "0000000000000000004x.seg",
            "00000000000000000042.seg.tmp",
            "00000000000000000042.log",
        ] {
            assert_eq!(parse_segment_name(OsStr::new(bad)), None, "{bad}");
        }
    }

    // Goal: the segment header round-trips and a wrong magic is refused.
    #[test]
    fn header_roundtrip() {
        let h = encode_header(7);
        assert_eq!(decode_header(&h), Ok(7));
        let mut bad = h;
        bad[0] ^= 1;
        assert!(decode_header(&bad).is_err());
    }

    // Goal: create_segment leaves exactly one header-only file under the final name, listed in order.
    #[test]
    fn create_and_list() {
        let dir = tempfile::tempdir().unwrap();
        create_segment(dir.path(), 10, true).unwrap();
        create_segment(dir.path(), 2, false).unwrap();
        // Replacing an existing segment of the same name is allowed.
        create_segment(dir.path(), 10, false).unwrap();
        fs::write(dir.path().join("README"), b"not a segment").unwrap();
        let segs = list_segments(dir.path()).unwrap();
        let seqs: Vec<u64> = segs.iter().map(|s| s.first_seq).collect();
        assert_eq!(seqs, vec![2, 10]);
        let bytes = fs::read(&segs[1].path).unwrap();
        assert_eq!(bytes, encode_header(10));
        fs::write(dir.path().join("00000000000000000011.seg.tmp"), b"x").unwrap();
        remove_stale_temps(dir.path()).unwrap();
        assert!(!dir.path().join("00000000000000000011.seg.tmp").exists());
    }
}
