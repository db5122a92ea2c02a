//! The end-of-run report: one struct, printed for humans and written as JSON.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::config::Transport;
use crate::stats::ConnStats;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Open,
    Closed,
    Pipelined,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Open => "open",
            Mode::Closed => "closed",
            Mode::Pipelined => "pipelined",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ErrorCounts {
    /// Failed connection attempts.
    pub connect: u64,
    /// Connections lost mid-run (reset, EOF, malformed response); each one may leave
    /// requests unanswered.
    pub io: u64,
}

/// Latency percentiles in microseconds (0.1 µs rounding).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencySummary {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl LatencySummary {
    /// Summarises a nanosecond histogram.
    pub fn from_ns(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: f64| (ns / 100.0).round() / 10.0;
        LatencySummary {
            p50: us(h.value_at_quantile(0.50) as f64),
            p90: us(h.value_at_quantile(0.90) as f64),
            p99: us(h.value_at_quantile(0.99) as f64),
            p999: us(h.value_at_quantile(0.999) as f64),
            max: us(h.max() as f64),
            mean: us(h.mean()),
        }
    }
}

/// What a run measured. Counts cover the measured window only (warm-up excluded), except
/// `errors`, which count the whole run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub mode: Mode,
    pub transport: Transport,
    /// Requests per second asked for (open loop only).
    pub target_rate: Option<f64>,
    pub duration_s: f64,
    pub warmup_s: f64,
    pub connections: usize,
    pub accounts: usize,
    /// Frames in flight per connection (pipelined only).
    pub window: Option<usize>,
    /// Requests written.
    pub sent: u64,
    /// Responses received.
    pub completed: u64,
    /// Responses with status 202.
    pub accepted: u64,
    /// `sent - completed`: written but never answered (connection lost, or still outstanding
    /// when the drain time ran out).
    pub unanswered: u64,
    /// `accepted / completed` (0 when nothing completed).
    pub accepted_rate: f64,
    /// `completed / duration_s`.
    pub rps: f64,
    /// `accepted / duration_s`.
    pub accepted_rps: f64,
    pub errors: ErrorCounts,
    /// Open loop: requests skipped because their intended send time was already more than
    /// `max_lag` in the past (or the run ended before the connection got to them).
    pub dropped_late: u64,
    /// Response count per status code (as a string key, for JSON).
    pub status_counts: BTreeMap<String, u64>,
    /// Refusal count per reason word.
    pub reasons: BTreeMap<String, u64>,
    pub latency_us: LatencySummary,
    /// Open loop only: intended-to-actual send delay.
    pub send_lag_us: Option<LatencySummary>,
    /// Accepted responses whose `sessionSeq` did not increase on their connection (TCP).
    pub order_violations: u64,
}

/// The run parameters a report echoes.
#[derive(Debug, Clone, Copy)]
pub struct RunShape {
    pub mode: Mode,
    pub transport: Transport,
    pub target_rate: Option<f64>,
    pub duration: Duration,
    pub warmup: Duration,
    pub connections: usize,
    pub accounts: usize,
    pub window: Option<usize>,
}

impl Report {
    pub fn new(shape: RunShape, s: &ConnStats) -> Report {
        let secs = shape.duration.as_secs_f64();
        let per_sec = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
        Report {
            mode: shape.mode,
            transport: shape.transport,
            target_rate: shape.target_rate,
            duration_s: secs,
            warmup_s: shape.warmup.as_secs_f64(),
            connections: shape.connections,
            accounts: shape.accounts,
            window: shape.window,
            sent: s.sent,
            completed: s.completed,
            accepted: s.accepted,
            unanswered: s.sent.saturating_sub(s.completed),
            accepted_rate: if s.completed > 0 {
                s.accepted as f64 / s.completed as f64
            } else {
                0.0
            },
            rps: per_sec(s.completed),
            accepted_rps: per_sec(s.accepted),
            errors: ErrorCounts {
                connect: s.connect_errors,
                io: s.io_errors,
            },
            dropped_late: s.dropped_late,
            status_counts: s
                .status_counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            reasons: s.reasons.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            latency_us: LatencySummary::from_ns(&s.latency),
            send_lag_us: (shape.mode == Mode::Open).then(|| LatencySummary::from_ns(&s.send_lag)),
            order_violations: s.order_violations,
        }
    }

    pub fn to_json(&self) -> String {
        // A struct of numbers, strings and string-keyed maps always serialises.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A few lines for a terminal.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let rate = match self.target_rate {
            Some(r) => format!(" at {r}/s"),
            None => String::new(),
        };
        let window = match self.window {
            Some(w) => format!(" x {w} in flight"),
            None => String::new(),
        };
        let _ = writeln!(
            o,
            "{} over {}{rate}: {} s measured (+{} s warm-up), {} connections{window}, {} accounts",
            match self.mode {
                Mode::Open => "open loop",
                Mode::Closed => "closed loop",
                Mode::Pipelined => "pipelined",
            },
            self.transport.as_str(),
            self.duration_s,
            self.warmup_s,
            self.connections,
            self.accounts,
        );
        let _ = writeln!(
            o,
            "  sent {}  completed {}  accepted {} ({:.2}%)  unanswered {}  dropped_late {}",
            self.sent,
            self.completed,
            self.accepted,
            self.accepted_rate * 100.0,
            self.unanswered,
            self.dropped_late,
        );
        let _ = writeln!(
            o,
            "  throughput {:.1}/s  accepted {:.1}/s",
            self.rps, self.accepted_rps
        );
        let _ = writeln!(
            o,
            "  errors: connect {}  io {}  order_violations {}",
            self.errors.connect, self.errors.io, self.order_violations
        );
        let join = |m: &BTreeMap<String, u64>| {
            m.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        let _ = writeln!(o, "  status: {}", join(&self.status_counts));
        if !self.reasons.is_empty() {
            let _ = writeln!(o, "  reasons: {}", join(&self.reasons));
        }
        let since = if self.mode == Mode::Open {
            "intended send time"
        } else {
            "send time"
        };
        let l = &self.latency_us;
        let _ = writeln!(
            o,
            "  latency µs (from {since}): p50 {}  p90 {}  p99 {}  p99.9 {}  max {}  mean {}",
            l.p50, l.p90, l.p99, l.p999, l.max, l.mean
        );
        if let Some(l) = &self.send_lag_us {
            let _ = writeln!(
                o,
                "  send lag µs: p50 {}  p99 {}  max {}",
                l.p50, l.p99, l.max
            );
        }
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> RunShape {
        RunShape {
            mode: Mode::Open,
            transport: Transport::Http,
            target_rate: Some(1000.0),
            duration: Duration::from_secs(2),
            warmup: Duration::ZERO,
            connections: 4,
            accounts: 2,
            window: None,
        }
    }

    // Goal: the JSON report has the documented keys, derived rates and percentiles in µs.
    #[test]
    fn report_json_fields() {
        let mut s = ConnStats::new();
        s.sent = 5;
        for _ in 0..3 {
            s.record_response(202, None);
            s.record_latency(Duration::from_micros(100));
        }
        s.record_response(429, Some("V3_BACKPRESSURE_SOFT"));
        s.record_latency(Duration::from_micros(1000));
        s.dropped_late = 7;
        s.io_errors = 1;
        let r = Report::new(shape(), &s);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["mode"], "open");
        assert_eq!(v["transport"], "http");
        assert_eq!(v["target_rate"], 1000.0);
        assert_eq!(v["duration_s"], 2.0);
        assert_eq!(v["connections"], 4);
        assert_eq!(v["sent"], 5);
        assert_eq!(v["completed"], 4);
        assert_eq!(v["accepted"], 3);
        assert_eq!(v["unanswered"], 1);
        assert_eq!(v["accepted_rate"], 0.75);
        assert_eq!(v["rps"], 2.0);
        assert_eq!(v["accepted_rps"], 1.5);
        assert_eq!(v["errors"], serde_json::json!({"connect": 0, "io": 1}));
        assert_eq!(v["dropped_late"], 7);
        assert_eq!(v["status_counts"], serde_json::json!({"202": 3, "429": 1}));
        assert_eq!(v["reasons"], serde_json::json!({"V3_BACKPRESSURE_SOFT": 1}));
        assert_eq!(v["order_violations"], 0);
        let lat = &v["latency_us"];
        for k in ["p50", "p90", "p99", "p999", "max", "mean"] {
            assert!(lat[k].is_number(), "{k}");
        }
        // 3 significant digits: 100 µs reads back as 100.0 ± 0.1.
        assert!((lat["p50"].as_f64().unwrap() - 100.0).abs() <= 0.1);
        assert!((lat["max"].as_f64().unwrap() - 1000.0).abs() <= 1.0);
        assert!(v["send_lag_us"].is_object());
        // And it reads back into the same struct.
        let back: Report = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
        assert!(r.human().contains("V3_BACKPRESSURE_SOFT=1"));
    }

    // Goal: an empty run reports zeros rather than NaN (which JSON cannot carry).
    #[test]
    fn empty_report_has_no_nan() {
        let r = Report::new(
            RunShape {
                mode: Mode::Closed,
                target_rate: None,
                ..shape()
            },
            &ConnStats::new(),
        );
        assert_eq!(r.accepted_rate, 0.0);
        assert_eq!(r.latency_us, LatencySummary::default());
        assert!(r.send_lag_us.is_none());
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert!(v["target_rate"].is_null());
    }
}
