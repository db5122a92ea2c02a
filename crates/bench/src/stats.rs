//! Per-connection counters and histograms.
//!
//! Every connection task owns one [`ConnStats`] and touches nothing shared while the run is
//! going (no locks or atomics on the request path); the run merges them at the end.

use std::collections::HashMap;
use std::time::Duration;

use hdrhistogram::Histogram;

/// Highest latency a histogram tracks: one hour, in nanoseconds. Larger values saturate.
const HIST_MAX_NS: u64 = 3_600 * 1_000_000_000;

/// A nanosecond histogram with 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that hdrhistogram accepts; failure would be a programming error.
    Histogram::new_with_bounds(1, HIST_MAX_NS, 3).expect("valid histogram bounds")
}

#[derive(Debug, Clone)]
pub struct ConnStats {
    /// Response latency in ns: from the intended send time (open loop) or the actual send
    /// time (closed loop, pipelined) to the response's last byte.
    pub latency: Histogram<u64>,
    /// Open loop only: how late each request was actually written, in ns. Large values mean
    /// the connection was backlogged (or the generator itself could not keep up).
    pub send_lag: Histogram<u64>,
    pub sent: u64,
    pub completed: u64,
    pub accepted: u64,
    pub dropped_late: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub order_violations: u64,
    pub status_counts: HashMap<u16, u64>,
    pub reasons: HashMap<String, u64>,
}

impl Default for ConnStats {
    fn default() -> Self {
        ConnStats::new()
    }
}

impl ConnStats {
    pub fn new() -> ConnStats {
        ConnStats {
            latency: new_histogram(),
            send_lag: new_histogram(),
            sent: 0,
            completed: 0,
            accepted: 0,
            dropped_late: 0,
            connect_errors: 0,
            io_errors: 0,
            order_violations: 0,
            status_counts: HashMap::new(),
            reasons: HashMap::new(),
        }
    }

    pub fn record_latency(&mut self, d: Duration) {
        self.latency.saturating_record(nanos(d));
    }

    pub fn record_send_lag(&mut self, d: Duration) {
        self.send_lag.saturating_record(nanos(d));
    }

    /// Sends `request` on `conn` and counts the outcome: the reply, with its latency taken
    /// from `from` (the intended or the actual send time), when `measured`; an I/O error
    /// always. The connection is dropped when the server closes it or it fails.
    pub async fn http_exchange(
        &mut self,
        conn: &mut Option<crate::http_client::HttpConn>,
        request: &[u8],
        measured: bool,
        from: std::time::Instant,
    ) {
        let Some(c) = conn.as_mut() else { return };
        match c.roundtrip(request).await {
            Ok(reply) => {
                if measured {
                    self.record_latency(from.elapsed());
                    let reason = (reply.status != 202)
                        .then(|| crate::http_client::find_reason(reply.body()))
                        .flatten();
                    self.record_response(reply.status, reason);
                }
                if reply.close {
                    *conn = None;
                }
            }
            Err(_) => {
                self.io_errors += 1;
                *conn = None;
            }
        }
    }

    /// Counts one completed response; 202 is an accept, anything else may carry a reason.
    pub fn record_response(&mut self, status: u16, reason: Option<&str>) {
        self.completed += 1;
        if status == 202 {
            self.accepted += 1;
        }
        *self.status_counts.entry(status).or_insert(0) += 1;
        if let Some(r) = reason {
            // Look up by &str first so that only a reason's first occurrence allocates.
            match self.reasons.get_mut(r) {
                Some(n) => *n += 1,
                None => {
                    self.reasons.insert(r.to_owned(), 1);
                }
            }
        }
    }

    pub fn merge(&mut self, other: &ConnStats) {
        // Both histograms have identical bounds, so adding cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.send_lag.add(&other.send_lag);
        self.sent += other.sent;
        self.completed += other.completed;
        self.accepted += other.accepted;
        self.dropped_late += other.dropped_late;
        self.connect_errors += other.connect_errors;
        self.io_errors += other.io_errors;
        self.order_violations += other.order_violations;
        for (k, v) in &other.status_counts {
            *self.status_counts.entry(*k).or_insert(0) += v;
        }
        for (k, v) in &other.reasons {
            *self.reasons.entry(k.clone()).or_insert(0) += v;
        }
    }
}

fn nanos(d: Duration) -> u64 {
    // Zero would be below the histogram's lowest trackable value of 1; clamp it.
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX).max(1)
}

/// Checks that accepted responses on one connection carry strictly increasing `sessionSeq`.
#[derive(Debug, Default, Clone)]
pub struct OrderCheck {
    last: Option<u64>,
}

impl OrderCheck {
    /// Returns false if `seq` does not follow the previous accepted one.
    pub fn observe(&mut self, seq: u64) -> bool {
        let ok = match self.last {
            Some(last) => seq > last,
            None => true,
        };
        self.last = Some(seq);
        ok
    }

    /// A new connection may be a new session with its own numbering.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: merging sums counters, maps and histograms.
    #[test]
    fn merge_sums_everything() {
        let mut a = ConnStats::new();
        a.record_response(202, None);
        a.record_latency(Duration::from_micros(100));
        let mut b = ConnStats::new();
        b.record_response(429, Some("V3_BACKPRESSURE_SOFT"));
        b.record_response(429, Some("V3_BACKPRESSURE_SOFT"));
        b.record_latency(Duration::from_micros(300));
        b.io_errors = 2;
        a.merge(&b);
        assert_eq!((a.completed, a.accepted, a.io_errors), (3, 1, 2));
        assert_eq!(a.status_counts[&429], 2);
        assert_eq!(a.reasons["V3_BACKPRESSURE_SOFT"], 2);
        assert_eq!(a.latency.len(), 2);
    }

    // Goal: the order check flags repeats and regressions, and forgets across reconnects.
    #[test]
    fn order_check() {
        let mut c = OrderCheck::default();
        assert!(c.observe(5));
        assert!(c.observe(6));
        assert!(!c.observe(6));
        assert!(!c.observe(2));
        c.reset();
        assert!(c.observe(1));
    }
}
