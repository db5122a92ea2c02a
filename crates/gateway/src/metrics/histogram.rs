//! A latency histogram that the hot path can record into without a lock.
//!
//! Buckets are log-linear like an HDR histogram with two significant digits: values below 128
//! get a bucket each, above that every power of two is split into 64 buckets (relative error
//! under 1.6 %). Each bucket is an `AtomicU64`, so recording is one relaxed `fetch_add` from
//! any thread; readers sum the buckets. The buckets are striped: each recording thread uses
//! its own copy, so cores never fight over a cache line on the hot path. Written by hand because the HDR crate's concurrent
//! recorder needs every recording thread to take part in each snapshot, which an idle tokio
//! worker would never do.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

const LINEAR: u64 = 128;
const SUB_BITS: u32 = 6; // 64 sub-buckets per power of two
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (LINEAR + (64 - 7) * SUB) as usize;
/// Copies of the buckets; threads are spread over them round-robin.
const STRIPES: usize = 4;

static NEXT_STRIPE: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static STRIPE: usize = NEXT_STRIPE.fetch_add(1, Ordering::Relaxed) % STRIPES;
}

pub struct AtomicHistogram {
    /// `STRIPES` bucket arrays, each its own allocation (so on its own cache lines).
    stripes: Box<[Box<[AtomicU64]>]>,
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
            stripes: (0..STRIPES)
                .map(|_| (0..BUCKETS).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            max: AtomicU64::new(0),
        }
    }

    #[inline]
    pub fn record(&self, v: u64) {
        self.record_n(v, 1);
    }

    /// Records `n` samples of the same value (a batch answered by one write).
    #[inline]
    pub fn record_n(&self, v: u64, n: u64) {
        let stripe = STRIPE.with(|s| *s);
        self.stripes[stripe][index(v)].fetch_add(n, Ordering::Relaxed);
        if v > self.max.load(Ordering::Relaxed) {
            self.max.fetch_max(v, Ordering::Relaxed);
        }
    }

    pub fn count(&self) -> u64 {
        self.stripes
            .iter()
            .flat_map(|s| s.iter())
            .map(|b| b.load(Ordering::Relaxed))
            .sum()
    }

    pub fn max(&self) -> u64 {
        self.max.load(Ordering::Relaxed)
    }

    /// Samples in bucket `i`, all stripes together.
    fn bucket(&self, i: usize) -> u64 {
        self.stripes
            .iter()
            .map(|s| s[i].load(Ordering::Relaxed))
            .sum()
    }

    /// The value reported for the `p`th percentile of the buckets weighted by `weights`
    /// (0 when empty).
    fn ranked(&self, weights: &[u128], p: f64) -> u64 {
        let total: u128 = weights.iter().sum();
        if total == 0 {
            return 0;
        }
        let rank = ((p / 100.0) * total as f64).ceil().max(1.0) as u128;
        let mut seen = 0;
        for (i, &w) in weights.iter().enumerate() {
            seen += w;
            if seen >= rank.min(total) {
                return upper(i).min(self.max());
            }
        }
        self.max()
    }

    /// Several percentiles (each in 0..=100), reading the buckets once.
    pub fn percentiles<const N: usize>(&self, ps: [f64; N]) -> [u64; N] {
        let counts: Vec<u128> = (0..BUCKETS).map(|i| u128::from(self.bucket(i))).collect();
        ps.map(|p| self.ranked(&counts, p))
    }

    pub fn percentile(&self, p: f64) -> u64 {
        self.percentiles([p])[0]
    }

    /// The `p`th percentile of durations weighted by their own length: the duration of the
    /// one in progress at a random instant of the time they covered. For fdatasync this is
    /// what an order arriving at a random moment meets — one 50 ms sync among a thousand
    /// 0.2 ms ones is 0.1 % of the calls but a fifth of the time, and of the orders waiting.
    pub fn time_weighted_percentile(&self, p: f64) -> u64 {
        let weights: Vec<u128> = (0..BUCKETS)
            .map(|i| u128::from(self.bucket(i)) * u128::from(upper(i)))
            .collect();
        self.ranked(&weights, p)
    }

    /// Cumulative counts for Prometheus `le` buckets: for each bound (ascending, ns), the
    /// samples in buckets lying wholly at or below it. A bucket that straddles a bound is left
    /// out, so a count never claims a sample was faster than it may have been (it reads up to
    /// 1.6 % low at the bound instead).
    pub fn cumulative_le(&self, bounds_ns: &[u64]) -> Vec<u64> {
        let mut out = Vec::with_capacity(bounds_ns.len());
        let (mut seen, mut i) = (0u64, 0usize);
        for &bound in bounds_ns {
            while i < BUCKETS && upper(i) <= bound {
                seen += self.bucket(i);
                i += 1;
            }
            out.push(seen);
        }
        out
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
    }

    // Goal: the time-weighted percentile sees a rare long duration that the per-call one
    // hides: 999 syncs of 200 µs and one of 50 ms — per call p99 is 200 µs, but the long one
    // covers 20 % of the time, so an arrival meets it more than 1 % of the time.
    #[test]
    fn time_weighted_percentile_sees_the_long_tail() {
        let h = AtomicHistogram::new();
        h.record_n(200_000, 999);
        h.record(50_000_000);
        assert!((200_000..=203_200).contains(&h.percentile(99.0)));
        let w = h.time_weighted_percentile(99.0);
        assert!((49_000_000..=50_000_000).contains(&w), "{w}");
        assert!((200_000..=203_200).contains(&h.time_weighted_percentile(50.0)));
        assert_eq!(AtomicHistogram::new().time_weighted_percentile(99.0), 0);
    }

    // Goal: samples recorded from several threads (different stripes) are all counted.
    #[test]
    fn stripes_add_up() {
        let h = std::sync::Arc::new(AtomicHistogram::new());
        let hs: Vec<_> = (0..6)
            .map(|i| {
                let h = h.clone();
                std::thread::spawn(move || h.record_n(1_000 * (i + 1), 10))
            })
            .collect();
        hs.into_iter().for_each(|t| t.join().unwrap());
        assert_eq!(h.count(), 60);
        assert_eq!(h.max(), 6_000);
        assert!((990..=1_010).contains(&h.percentile(10.0)));
    }

    // Goal: `le` counts include every sample at or below a bound and none above it (values
    // chosen on bucket edges, where the straddling rule cannot apply).
    #[test]
    fn cumulative_le_counts() {
        let h = AtomicHistogram::new();
        for v in [10, 100, 127, 40_000, 40_000, 99_000, 250_000] {
            h.record(v);
        }
        // 40 µs and 100 µs fall inside buckets; their counts hold only wholly-below buckets.
        let c = h.cumulative_le(&[100, 127, 39_000, 40_959, 101_000, u64::MAX]);
        assert_eq!(c, vec![2, 3, 3, 5, 6, 7]);
        assert_eq!(h.cumulative_le(&[]), Vec::<u64>::new());
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
