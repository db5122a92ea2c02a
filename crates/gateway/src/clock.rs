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

pub fn mono_of(t: Instant) -> u64 {
    t.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_nanos() as u64
}
