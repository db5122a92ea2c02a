//! `switchyard bench fsync`: the raw fdatasync latency of a disk, the yardstick for durable
//! answers ("`local` answer p99 ≤ 3× raw fdatasync p99 of the same disk").
//!
//! Appends `bytes` to a file in `dir` and fdatasyncs it, back to back, like a journal that
//! syncs every append; each append+sync is one sample. The file grows (so every sync also
//! carries the file's size change, as a journal's do) and is removed at the end.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use hdrhistogram::Histogram;

/// Percentiles of append+fdatasync, µs, and the number of syncs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FsyncReport {
    pub syncs: u64,
    pub bytes_per_sync: usize,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

pub fn run(dir: &Path, duration: Duration, bytes: usize) -> anyhow::Result<FsyncReport> {
    let path = dir.join(format!("switchyard-fsync-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .create_new(true)
        .append(true)
        .open(&path)
        .with_context(|| format!("cannot create {}", path.display()))?;
    let result = (|| {
        let buf = vec![0x5au8; bytes];
        let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        let end = Instant::now() + duration;
        while Instant::now() < end {
            let t = Instant::now();
            file.write_all(&buf)?;
            file.sync_data()?;
            h.saturating_record(t.elapsed().as_micros() as u64);
        }
        let us = |q: f64| h.value_at_quantile(q) as f64;
        Ok(FsyncReport {
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
