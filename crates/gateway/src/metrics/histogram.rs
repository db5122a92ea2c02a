//! A latency histogram that the hot path can record into without a lock.
//!
//! Buckets are log-linear like an HDR histogram with two significant digits: values below 128
//! get a bucket each, above that every power of two is split into 64 buckets (relative error
//! under 1.6 %). Each bucket is an `AtomicU64`, so recording is one relaxed `fetch_add` from
//! any thread; readers sum the buckets. Written by hand because the HDR crate's concurrent
//! recorder needs every recording thread to take part in each snapshot, which an idle tokio
//! worker would never do.

use std::sync::atomic::{AtomicU64, Ordering};

const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6; // 64 sub-buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB) as usize;

pub struct AtomicHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    max: AtomicU64,
}

impl Default for AtomicHistogram {
    fn default() -> Self {
        Self::new()
    }
}

fn index(v: u64) -> usize {
    if v < LINEAR {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // ≥ 7
    let shift = exp - SUB_BITS;
    let mantissa = (v >> shift) - SUB; // 0..64
    (LINEAR + (exp as u64 - 7) * SUB + mantissa) as usize
}

/// Highest value that falls in bucket `i` (what percentiles report, so they never understate).
fn upper(i: usize) -> u64 {
    let i = i as u64;
    if i < LINEAR {
        return i;
    }
    let exp = (i - LINEAR) / SUB + 7;
    let mantissa = (i - LINEAR) % SUB + SUB;
    let shift = exp as u32 - SUB_BITS;
    // u128: the top bucket's bound is 2^64 − 1 and its shift would overflow a u64.
    (((mantissa as u128 + 1) << shift) - 1).min(u64::MAX as u128) as u64
}

impl AtomicHistogram {
    pub fn new() -> AtomicHistogram {
        AtomicHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn record(&self, v: u64) {
        self.buckets[index(v)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(v, Ordering::Relaxed);
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    pub fn mean(&self) -> u64 {
        self.sum.load(Ordering::Relaxed) / self.count().max(1)
    }

    /// Several percentiles (each in 0..=100) in one pass over the buckets.
    pub fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [u64; N] {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|b| b.load(Ordering::Relaxed))
            .collect();
        let total: u64 = counts.iter().sum();
        let mut out = [0u64; N];
        if total == 0 {
            return out;
        }
        for (o, p) in out.iter_mut().zip(ps) {
            let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            for (i, &c) in counts.iter().enumerate() {
                seen += c;
                if seen >= rank {
                    *o = upper(i).min(self.max());
                    break;
                }
            }
        }
        out
    }

    pub fn percentile(&self, p: f64) -> u64 {
        self.percentiles([p])[0]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    // Goal: percentiles of a known distribution are within the bucket error.
    #[test]
    fn percentiles_of_uniform() {
        let h = AtomicHistogram::new();
        for v in 1..=100_000u64 {
            h.record(v);
        }
        let [p50, p99, p100] = h.percentiles([50.0, 99.0, 100.0]);
        assert!((49_000..=51_000).contains(&p50), "{p50}");
        assert!((98_000..=100_600).contains(&p99), "{p99}");
        assert_eq!(p100, 100_000);
        assert_eq!(h.count(), 100_000);
        assert_eq!(h.mean(), 50_000);
    }

    proptest! {
        // Goal: every value lands in a bucket whose bounds contain it, within 1.6 %.
        #[test]
        fn bucket_bounds(v in any::<u64>()) {
            let i = index(v);
            prop_assert!(i < BUCKETS);
            prop_assert!(upper(i) >= v);
            prop_assert!(i == 0 || upper(i - 1) < v);
            prop_assert!((upper(i) - v) as f64 <= v as f64 / 64.0 + 1.0);
        }
    }
}
