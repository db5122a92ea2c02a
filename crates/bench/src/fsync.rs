//! `switchyard bench fsync`: the raw fdatasync latency of a disk, the yardstick for durable
//! answers ("`local` answer p99 ≤ 3× raw fdatasync p99 of the same disk").
//!
//! Appends `bytes` to a file in `dir` and fdatasyncs it, back to back, like a journal that
//! syncs every append; each append+sync is one sample. The file grows (so every sync also
//! carries the file's size change) and is removed at the end. With `overwrite`, the file is
//! first written as 64 MiB of zeros and synced, and the probe writes over them (wrapping
//! around), as the journal does in segments laid down in advance: the syncs then carry data
//! only.

use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

/// Percentiles of append+fdatasync, µs, and the number of syncs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FsyncReport {
    /// `append` or `overwrite`.
    pub mode: &'static str,
    pub syncs: u64,
    pub bytes_per_sync: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

/// Size of the zeroed file of the `overwrite` mode.
const OVERWRITE_FILE: u64 = 64 << 20;

pub fn run(
    dir: &Path,
    duration: Duration,
    bytes: usize,
    overwrite: bool,
) -> anyhow::Result<FsyncReport> {
    let path = dir.join(format!("switchyard-fsync-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .write(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let result = (|| {
        let buf = vec![0x5au8; bytes];
        let wrap = OVERWRITE_FILE.max(bytes as u64) / bytes.max(1) as u64 * bytes as u64;
        if overwrite {
            let zeros = vec![0u8; 1 << 20];
            for _ in 0..wrap.div_ceil(zeros.len() as u64) {
                file.write_all(&zeros)?;
            }
            file.sync_all()?;
        }
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let end = Instant::now() + duration;
        let mut at = 0u64;
        while Instant::now() < end {
            let t = Instant::now();
            if overwrite {
                file.write_all_at(&buf, at)?;
                at = (at + bytes as u64) % wrap;
            } else {
                file.write_all(&buf)?;
            }
            file.sync_data()?;
            h.saturating_record(t.elapsed().as_micros() as u64);
        }
        let us = |q: f64| h.value_at_quantile(q) as f64;
        Ok(FsyncReport {
            mode: if overwrite { "overwrite" } else { "append" },
            syncs: h.len(),
            bytes_per_sync: bytes,
            p50_us: us(0.5),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64,
        })
    })();
    let _ = std::fs::remove_file(&path);
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: both modes sync for real, say which they were, and leave nothing behind.
    #[test]
    fn both_modes_measure_and_clean_up() {
        let dir = tempfile::tempdir().unwrap();
        for overwrite in [false, true] {
            let r = run(dir.path(), Duration::from_millis(200), 4096, overwrite).unwrap();
            assert!(r.syncs > 0 && r.p50_us > 0.0, "{r:?}");
            assert_eq!(r.mode, if overwrite { "overwrite" } else { "append" });
        }
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
