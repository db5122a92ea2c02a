//! Clocks. Wall time (ns since the epoch) is what records and responses carry; monotonic time
//! (ns since process start) is what latencies and timeouts are measured with.

use std::sync::OnceLock;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

static START: OnceLock<Instant> = OnceLock::new();

pub fn wall_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

pub fn wall_ms() -> u64 {
    wall_ns() / 1_000_000
}

/// Monotonic ns since the first call in this process.
pub fn mono_ns() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// Every this many requests per thread, per-stage timings are taken. Each clock read costs tens
/// of ns and a request has six stage boundaries; profiling showed the reads at ~15 % of the
/// pipelined TCP path, so stages are sampled. The ack histogram is never sampled.
pub const STAGE_SAMPLE_EVERY: u32 = 16;

thread_local! {
    static STAGE_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// True for one request in `STAGE_SAMPLE_EVERY` on this thread.
#[inline]
pub fn sample_stages() -> bool {
    STAGE_TICK.with(|t| {
        let n = t.get().wrapping_add(1);
        t.set(n);
        n % STAGE_SAMPLE_EVERY == 0
    })
}

/// `mono_ns()` when `on`, else 0 (skips the clock read).
#[inline]
pub fn mono_ns_if(on: bool) -> u64 {
    if on {
        mono_ns()
    } else {
        0
    }
}
