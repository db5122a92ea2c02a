//! A gate's result: the checks and their verdict, the JSON written for it (schema
//! `contracts/gate_result_v1.schema.json`), the one-line summary, and the comparison with a
//! stored baseline.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::noise::NoiseReading;
use super::server::ServerWindow;
use crate::report::Report;

/// The value of the result's `schema` field.
pub const SCHEMA: &str = "switchyard.gate.v1";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Pass,
    Fail,
    /// A check failed while the machine was busy with other work: not judged.
    Noisy,
    /// The gate cannot run here (the absolute gate off Linux).
    Unsupported,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Noisy => "NOISY",
            Verdict::Unsupported => "UNSUPPORTED",
        }
    }

    /// The process exit code: 0 pass, 1 fail, 2 unsupported, 3 not judged (noisy).
    pub fn exit_code(self) -> i32 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Unsupported => 2,
            Verdict::Noisy => 3,
        }
    }
}

/// One pass mark: `value` compared with `limit` by `op`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    /// `<=`, `>=` or `==`.
    pub op: String,
    pub limit: f64,
    pub value: f64,
    pub pass: bool,
}

impl Check {
    pub fn at_most(name: &str, value: f64, limit: f64) -> Check {
        Check::new(name, "<=", value, limit, value <= limit)
    }

    pub fn at_least(name: &str, value: f64, limit: f64) -> Check {
        Check::new(name, ">=", value, limit, value >= limit)
    }

    pub fn zero(name: &str, value: u64) -> Check {
        Check::new(name, "==", value as f64, 0.0, value == 0)
    }

    fn new(name: &str, op: &str, value: f64, limit: f64, pass: bool) -> Check {
        Check {
            name: name.to_string(),
            op: op.to_string(),
            limit,
            value: (value * 1e6).round() / 1e6,
            pass,
        }
    }
}

/// The run parameters a result echoes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    pub transport: String,
    /// Open loop: requests per second asked for; closed loop: none.
    pub rate: Option<f64>,
    pub duration_s: u64,
    pub warmup_s: u64,
    pub connections: usize,
    pub accounts: usize,
    /// Nice value the load generator ran at (`--nice`).
    pub generator_nice: i32,
}

/// Noise readings around the run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Noise {
    pub threshold_cores: f64,
    /// False with `--no-noise-guard`: readings are taken but never block a verdict.
    pub enforced: bool,
    pub before: Option<NoiseReading>,
    pub during: Option<NoiseReading>,
}

/// One measured run: what the client saw, what the gateway says, the checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    pub params: Params,
    pub verdict: Verdict,
    pub checks: Vec<Check>,
    pub client: Option<Report>,
    pub server: Option<ServerWindow>,
    pub noise: Noise,
}

impl Run {
    /// PASS when every check passes; otherwise FAIL, or NOISY when the guard is enforced and
    /// the machine was busy during the window (a failure then says nothing about the gateway).
    pub fn judge(&mut self) {
        let noisy = self.noise.enforced
            && self
                .noise
                .during
                .as_ref()
                .is_some_and(|r| r.is_noisy(self.noise.threshold_cores));
        self.verdict = if self.checks.iter().all(|c| c.pass) {
            Verdict::Pass
        } else if noisy {
            Verdict::Noisy
        } else {
            Verdict::Fail
        };
    }

    pub fn failed_checks(&self) -> Vec<String> {
        self.checks
            .iter()
            .filter(|c| !c.pass)
            .map(|c| format!("{} = {} (limit {} {})", c.name, c.value, c.op, c.limit))
            .collect()
    }
}

/// A metric compared with the baseline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    pub metric: String,
    pub baseline: f64,
    pub current: f64,
    /// `current / baseline`.
    pub ratio: f64,
    /// "lower" or "higher": which way is better.
    pub better: String,
    /// Worse than the baseline by more than the tolerance.
    pub regressed: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineCompare {
    pub file: String,
    pub tolerance: f64,
    pub comparisons: Vec<Comparison>,
    pub regressed: bool,
}

/// The whole result file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateResult {
    pub schema: String,
    /// `stable`, `capability`, `absolute` or `sweep`.
    pub gate: String,
    pub verdict: Verdict,
    /// The one-line summary, as printed.
    pub summary: String,
    pub started_at: String,
    pub finished_at: String,
    pub host: Host,
    /// Spawned by the gate (fresh journal, default profile plus the caller's environment) or
    /// an external gateway.
    pub gateway_spawned: bool,
    /// Single gates: the run. Sweep: the last level run.
    pub runs: Vec<Run>,
    /// Sweep only: the highest rate whose run passed.
    pub capacity_rps: Option<f64>,
    pub baseline: Option<BaselineCompare>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Host {
    pub os: String,
    pub arch: String,
    pub cpus: usize,
    pub version: String,
}

impl Host {
    pub fn here() -> Host {
        Host {
            os: std::env::consts::OS.into(),
            arch: std::env::consts::ARCH.into(),
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            version: env!("CARGO_PKG_VERSION").into(),
        }
    }
}

impl GateResult {
    /// `PASS stable gate: …` — the verdict, the headline figures, and what failed.
    pub fn summary_line(&self) -> String {
        let mut s = format!("{} {} gate", self.verdict.as_str(), self.gate);
        if let Some(c) = self.capacity_rps {
            let _ = write!(s, ": capacity {c:.0}/s");
        } else if let Some(r) = self.runs.last() {
            let _ = write!(s, ":");
            if let (None, Some(n)) = (&r.client, &r.noise.before) {
                let _ = write!(
                    s,
                    " not run, machine busy (foreign CPU {:.2} cores > {:.2})",
                    n.foreign_cores, r.noise.threshold_cores
                );
            }
            if let Some(c) = &r.client {
                let _ = write!(
                    s,
                    " {:.0}/s completed, accepted {:.4}, client p99 {} µs",
                    c.rps, c.accepted_rate, c.latency_us.p99
                );
            }
            if let Some(w) = &r.server {
                let le = |x: Option<u64>| x.map_or("> 1 s".into(), |b| format!("≤ {b} µs"));
                let _ = write!(
                    s,
                    "; server ack p99 {} (accepted {})",
                    le(w.ack.p99_le_us),
                    le(w.ack_accepted.p99_le_us)
                );
                // The disk's part: a stall here explains late confirmations and loss suspects.
                let sync = &w.journal_fdatasync;
                if sync.count > 0 {
                    let _ = write!(
                        s,
                        "; journal fdatasync p99 {}, max {}",
                        le(sync.p99_le_us),
                        le(sync.max_le_us)
                    );
                }
            }
        }
        let failed: Vec<String> = self.runs.last().map_or(vec![], Run::failed_checks);
        if !failed.is_empty() && self.capacity_rps.is_none() {
            let _ = write!(s, "; failed: {}", failed.join(", "));
        }
        if let Some(b) = &self.baseline {
            let worse: Vec<&str> = b
                .comparisons
                .iter()
                .filter(|c| c.regressed)
                .map(|c| c.metric.as_str())
                .collect();
            if worse.is_empty() {
                let _ = write!(s, "; baseline ok");
            } else {
                let _ = write!(s, "; regressed vs baseline: {}", worse.join(", "));
            }
        }
        s
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The figures compared with a baseline, each with the direction that is better.
    fn headline(&self) -> Vec<(&'static str, f64, &'static str)> {
        let mut out = Vec::new();
        if let Some(c) = self.capacity_rps {
            out.push(("capacity_rps", c, "higher"));
        }
        if let Some(r) = self.runs.last() {
            if let Some(c) = &r.client {
                out.push(("client.rps", c.rps, "higher"));
                out.push(("client.accepted_rate", c.accepted_rate, "higher"));
                out.push(("client.latency_us.p50", c.latency_us.p50, "lower"));
                out.push(("client.latency_us.p99", c.latency_us.p99, "lower"));
            }
            if let Some(w) = &r.server {
                out.push((
                    "server.since_start_ack_p99_us",
                    w.since_start_ack_p99_us,
                    "lower",
                ));
                out.push((
                    "server.since_start_ack_accepted_p99_us",
                    w.since_start_ack_accepted_p99_us,
                    "lower",
                ));
            }
        }
        out
    }

    /// Compares with `baseline` (a result of the same gate): a figure regresses when it is
    /// worse by more than `tolerance` (0.2 = 20 %). Figures missing on either side are skipped.
    pub fn compare(&self, baseline: &GateResult, file: &str, tolerance: f64) -> BaselineCompare {
        let base = baseline.headline();
        let comparisons: Vec<Comparison> = self
            .headline()
            .into_iter()
            .filter_map(|(metric, current, better)| {
                let (_, b, _) = base.iter().find(|(m, _, _)| *m == metric)?;
                let b = *b;
                let ratio = if b != 0.0 { current / b } else { 1.0 };
                let regressed = match better {
                    "lower" => current > b * (1.0 + tolerance),
                    _ => current < b * (1.0 - tolerance),
                };
                Some(Comparison {
                    metric: metric.to_string(),
                    baseline: b,
                    current,
                    ratio: (ratio * 1e4).round() / 1e4,
                    better: better.to_string(),
                    regressed,
                })
            })
            .collect();
        BaselineCompare {
            file: file.to_string(),
            tolerance,
            regressed: comparisons.iter().any(|c| c.regressed),
            comparisons,
        }
    }
}

/// A table of a comparison for the terminal.
pub fn comparison_table(b: &BaselineCompare) -> String {
    let mut o = format!(
        "baseline {} (tolerance {:.0} %)\n",
        b.file,
        b.tolerance * 100.0
    );
    for c in &b.comparisons {
        let _ = writeln!(
            o,
            "  {:<42} {:>12.3} -> {:>12.3}  x{:<7.3} ({} is better){}",
            c.metric,
            c.baseline,
            c.current,
            c.ratio,
            c.better,
            if c.regressed { "  REGRESSED" } else { "" }
        );
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(p99: f64, rps: f64) -> GateResult {
        let client: Report = serde_json::from_value(serde_json::json!({
            "mode": "open", "transport": "tcp", "target_rate": 10000.0, "duration_s": 10.0,
            "warmup_s": 2.0, "connections": 8, "accounts": 4, "window": null, "sent": 100000,
            "completed": 100000, "accepted": 100000, "unanswered": 0, "accepted_rate": 1.0,
            "rps": rps, "accepted_rps": rps, "errors": {"connect": 0, "io": 0},
            "dropped_late": 0, "status_counts": {"202": 100000}, "reasons": {},
            "latency_us": {"p50": 50.0, "p90": 80.0, "p99": p99, "p999": 300.0, "max": 900.0, "mean": 55.0},
            "send_lag_us": null, "order_violations": 0
        }))
        .unwrap();
        let mut run = Run {
            params: Params {
                transport: "tcp".into(),
                rate: Some(10_000.0),
                duration_s: 10,
                warmup_s: 2,
                connections: 8,
                accounts: 4,
                generator_nice: 19,
            },
            verdict: Verdict::Fail,
            checks: vec![Check::at_most("client_p99_us", p99, 200.0)],
            client: Some(client),
            server: None,
            noise: Noise {
                threshold_cores: 0.35,
                enforced: true,
                before: None,
                during: None,
            },
        };
        run.judge();
        GateResult {
            schema: SCHEMA.into(),
            gate: "stable".into(),
            verdict: run.verdict,
            summary: String::new(),
            started_at: String::new(),
            finished_at: String::new(),
            host: Host::here(),
            gateway_spawned: true,
            runs: vec![run],
            capacity_rps: None,
            baseline: None,
        }
    }

    // Goal: a failed check fails the run unless the machine was busy during it (NOISY); a
    // passing run passes even on a busy machine.
    #[test]
    fn verdicts() {
        assert_eq!(result(150.0, 1e4).verdict, Verdict::Pass);
        let mut r = result(250.0, 1e4);
        assert_eq!(r.verdict, Verdict::Fail);
        assert!(r
            .summary_line()
            .starts_with("FAIL stable gate: 10000/s completed"));
        assert!(r
            .summary_line()
            .contains("failed: client_p99_us = 250 (limit <= 200)"));
        let run = &mut r.runs[0];
        run.noise.during = Some(NoiseReading {
            foreign_cores: 0.9,
            ..NoiseReading::default()
        });
        run.judge();
        assert_eq!(run.verdict, Verdict::Noisy);
        run.noise.enforced = false;
        run.judge();
        assert_eq!(run.verdict, Verdict::Fail);
        assert_eq!(
            [
                Verdict::Pass,
                Verdict::Fail,
                Verdict::Unsupported,
                Verdict::Noisy
            ]
            .map(Verdict::exit_code),
            [0, 1, 2, 3]
        );
    }

    // Goal: the baseline comparison flags only figures worse than the tolerance, in the
    // right direction for each.
    #[test]
    fn baseline() {
        let base = result(100.0, 10_000.0);
        let same = result(110.0, 9_500.0).compare(&base, "b.json", 0.2);
        assert!(!same.regressed, "{same:?}");
        let worse = result(130.0, 7_000.0).compare(&base, "b.json", 0.2);
        let bad: Vec<&str> = worse
            .comparisons
            .iter()
            .filter(|c| c.regressed)
            .map(|c| c.metric.as_str())
            .collect();
        assert_eq!(bad, ["client.rps", "client.latency_us.p99"]);
        // Better is never a regression.
        assert!(!result(10.0, 50_000.0).compare(&base, "b", 0.0).regressed);
        let mut r = result(130.0, 7_000.0);
        r.baseline = Some(worse);
        assert!(r
            .summary_line()
            .contains("regressed vs baseline: client.rps, client.latency_us.p99"));
        assert!(comparison_table(r.baseline.as_ref().unwrap()).contains("REGRESSED"));
        // The JSON reads back.
        let back: GateResult = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(back, r);
    }
}
