//! The instants a run is organised around, and helpers every mode shares.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context as _;

use crate::config::LoadConfig;
use crate::stats::ConnStats;

/// Pause between reconnection attempts, so that a refused port is not hammered.
pub const RECONNECT_PAUSE: Duration = Duration::from_millis(50);

#[derive(Debug, Clone, Copy)]
pub struct Timeline {
    /// Load begins (warm-up first).
    pub start: Instant,
    /// Requests from here on are measured.
    pub measure_start: Instant,
    /// No new requests from here on.
    pub end: Instant,
    /// Outstanding requests are abandoned here (end + drain).
    pub deadline: Instant,
}

impl Timeline {
    pub fn starting_now(cfg: &LoadConfig) -> Timeline {
        let start = Instant::now();
        let measure_start = start + cfg.warmup;
        let end = measure_start + cfg.duration;
        Timeline {
            start,
            measure_start,
            end,
            deadline: end + cfg.drain,
        }
    }

    pub fn measured(&self, at: Instant) -> bool {
        at >= self.measure_start
    }
}

/// Runs `body` with the connection's stats until it finishes or the deadline passes, so that
/// a stalled server cannot hold the run open; the stats gathered so far survive either way.
pub async fn until_deadline(deadline: Instant, body: impl Future<Output = ()>) {
    let _ = tokio::time::timeout_at(tokio::time::Instant::from_std(deadline), body).await;
}

/// Opens `n` connections concurrently, before the clock starts, so that connection set-up is
/// not part of the measurement. A failed one is `None` (its task retries and counts it).
pub async fn preconnect<T, F, Fut>(n: usize, connect: F) -> Vec<Option<T>>
where
    T: Send + 'static,
    F: Fn(usize) -> Fut,
    Fut: Future<Output = std::io::Result<T>> + Send + 'static,
{
    let handles: Vec<_> = (0..n).map(|i| tokio::spawn(connect(i))).collect();
    let mut out = Vec::with_capacity(n);
    for h in handles {
        out.push(h.await.ok().and_then(Result::ok));
    }
    out
}

/// Waits for every connection task and merges their stats.
pub async fn merge_all(
    handles: Vec<tokio::task::JoinHandle<ConnStats>>,
) -> anyhow::Result<ConnStats> {
    let mut total = ConnStats::new();
    for h in handles {
        let s = h.await.context("a connection task failed")?;
        total.merge(&s);
    }
    Ok(total)
}
