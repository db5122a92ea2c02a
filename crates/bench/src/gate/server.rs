//! The gateway under test — started by the gate or already running — and what its own
//! `/metrics` says about a measured window.
//!
//! The server-side figures a gate judges come from two scrapes, one at the start of the
//! measured window and one after it: counters are differenced, and the ack latencies come from
//! the `gateway_live_ack_us_bucket{le}` histograms (first byte read to response written), so
//! warm-up traffic and anything before the run never count. The histogram's `le` counts leave
//! out a bucket that straddles the bound, so "99 % within 100 µs" can only be understated.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

use crate::metrics::{by_label, delta, scrape_metrics, Metrics};

/// Where the gateway listens, and the process if the gate started it.
pub struct Target {
    pub http: SocketAddr,
    pub tcp: SocketAddr,
    pub secret: String,
    pub metrics_token: Option<String>,
    child: Option<Child>,
    journal: Option<PathBuf>,
}

impl Target {
    /// A gateway someone else runs.
    pub fn external(
        http: SocketAddr,
        tcp: SocketAddr,
        secret: String,
        metrics_token: Option<String>,
    ) -> Target {
        Target {
            http,
            tcp,
            secret,
            metrics_token,
            child: None,
            journal: None,
        }
    }

    /// Starts `<bin> gateway` on free loopback ports with a fresh journal under `work`, the
    /// caller's environment (so `V3_*` profiles apply) and a random secret, and waits until
    /// `/health` answers 200.
    pub async fn spawn(bin: &std::path::Path, work: &std::path::Path) -> anyhow::Result<Target> {
        let journal = work.join(format!("journal-{}", std::process::id()));
        std::fs::create_dir_all(&journal)
            .with_context(|| format!("cannot create {}", journal.display()))?;
        let (http, tcp) = (free_port()?, free_port()?);
        let secret = format!("gate-{:016x}{:016x}", fastrand::u64(..), fastrand::u64(..));
        let child = Command::new(bin)
            .arg("gateway")
            .env("GATEWAY_HOST", "127.0.0.1")
            .env("GATEWAY_PORT", http.to_string())
            .env("V3_TCP_ENABLE", "true")
            .env("V3_TCP_PORT", tcp.to_string())
            .env("JWT_HS256_SECRET", &secret)
            .env("GATEWAY_JOURNAL_DIR", &journal)
            .env("GATEWAY_METRICS_TOKEN", "")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or("warn".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {} gateway", bin.display()))?;
        let mut t = Target {
            http: ([127, 0, 0, 1], http).into(),
            tcp: ([127, 0, 0, 1], tcp).into(),
            secret,
            metrics_token: None,
            child: Some(child),
            journal: Some(journal),
        };
        t.wait_ready(Duration::from_secs(60)).await?;
        Ok(t)
    }

    async fn wait_ready(&mut self, patience: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + patience;
        loop {
            if let Some(c) = self.child.as_mut() {
                if let Some(status) = c.try_wait()? {
                    bail!("the gateway exited during start-up ({status}); see its log above");
                }
            }
            if self.scrape().await.is_ok() {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("the gateway did not answer /metrics within {patience:?}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    pub fn spawned(&self) -> bool {
        self.child.is_some()
    }

    pub async fn scrape(&self) -> anyhow::Result<Metrics> {
        scrape_metrics(
            self.http,
            &self.http.to_string(),
            self.metrics_token.as_deref(),
        )
        .await
    }

    /// Stops a spawned gateway (SIGTERM: it drains into its journal) and removes its journal.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            terminate(&mut c);
        }
        if let Some(j) = self.journal.take() {
            let _ = std::fs::remove_dir_all(j);
        }
    }
}

impl Drop for Target {
    fn drop(&mut self) {
        self.stop();
    }
}

fn terminate(c: &mut Child) {
    // SAFETY: kill(2) on our own child's pid; no memory is involved.
    unsafe {
        libc::kill(c.id() as libc::pid_t, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = c.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = c.kill();
    let _ = c.wait();
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Ack latency of a window from the `le` buckets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct WindowLatency {
    /// Acks in the window.
    pub count: u64,
    /// The smallest bucket bound holding at least 99 % of them (so p99 ≤ this); `None` when
    /// the 99th percentile is beyond the largest bound.
    pub p99_le_us: Option<u64>,
    /// The smallest bucket bound holding all of them (so the slowest ≤ this); `None` when one
    /// is beyond the largest bound.
    #[serde(default)]
    pub max_le_us: Option<u64>,
    /// Share of acks at or below each bound, by bound in µs.
    pub share_le: BTreeMap<u64, f64>,
}

impl WindowLatency {
    fn from(before: &Metrics, after: &Metrics, family: &str) -> WindowLatency {
        let le = |m: &Metrics| {
            by_label(m, &format!("{family}_bucket"), "le")
                .into_iter()
                .filter_map(|(k, v)| Some((k.parse::<u64>().ok()?, v)))
                .collect::<BTreeMap<u64, f64>>()
        };
        let (a, b) = (le(before), le(after));
        let count = delta(before, after, &format!("{family}_count"));
        let mut out = WindowLatency {
            count,
            ..WindowLatency::default()
        };
        for (bound, n) in &b {
            let d = (n - a.get(bound).copied().unwrap_or(0.0)).max(0.0);
            let share = if count > 0 { d / count as f64 } else { 1.0 };
            out.share_le.insert(*bound, (share * 1e6).round() / 1e6);
            if out.p99_le_us.is_none() && share >= 0.99 {
                out.p99_le_us = Some(*bound);
            }
            if out.max_le_us.is_none() && d as u64 >= count {
                out.max_le_us = Some(*bound);
            }
        }
        out
    }

    /// Share of acks within `bound_us` (a bound the gateway exports), or 0 if it does not.
    pub fn share_within(&self, bound_us: u64) -> f64 {
        self.share_le.get(&bound_us).copied().unwrap_or(0.0)
    }
}

/// What the gateway itself reports about the measured window.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ServerWindow {
    /// Every answer (accepts and rejects).
    pub ack: WindowLatency,
    /// Accepted answers only.
    pub ack_accepted: WindowLatency,
    /// The journal's fdatasync calls (`gateway_fdatasync_us`): a stall here is what makes
    /// confirmations late and orders LOSS_SUSPECT. Empty for a gateway without the buckets.
    #[serde(default)]
    pub journal_fdatasync: WindowLatency,
    pub processed: u64,
    pub accepted: u64,
    /// `accepted / processed` over the window.
    pub accepted_rate: f64,
    pub rejected_killed: u64,
    pub loss_suspects: u64,
    pub decode_errors: u64,
    /// Rejects in the window by reason.
    pub rejects: BTreeMap<String, u64>,
    /// The gateway's own since-start percentiles at the end (finer than the buckets; they
    /// include warm-up and anything before the run).
    pub since_start_ack_p99_us: f64,
    pub since_start_ack_accepted_p99_us: f64,
}

impl ServerWindow {
    pub fn between(before: &Metrics, after: &Metrics) -> ServerWindow {
        let d = |n: &str| delta(before, after, n);
        let (processed, accepted) = (
            d("gateway_v3_processed_total"),
            d("gateway_v3_accepted_total"),
        );
        let before_rejects = by_label(before, "gateway_v3_reject_total", "reason");
        let rejects = by_label(after, "gateway_v3_reject_total", "reason")
            .into_iter()
            .map(|(r, n)| {
                let was = before_rejects.get(r).copied().unwrap_or(0.0);
                (r.to_string(), (n - was).max(0.0) as u64)
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        let gauge = |n: &str| after.get(n).copied().unwrap_or(0.0);
        ServerWindow {
            ack: WindowLatency::from(before, after, "gateway_live_ack_us"),
            ack_accepted: WindowLatency::from(before, after, "gateway_live_ack_accepted_us"),
            journal_fdatasync: WindowLatency::from(before, after, "gateway_fdatasync_us"),
            processed,
            accepted,
            accepted_rate: if processed > 0 {
                accepted as f64 / processed as f64
            } else {
                0.0
            },
            rejected_killed: d("gateway_v3_rejected_killed_total"),
            loss_suspects: d("gateway_v3_loss_suspect_total"),
            decode_errors: d("gateway_v3_decode_error_total"),
            rejects,
            since_start_ack_p99_us: gauge("gateway_live_ack_p99_us"),
            since_start_ack_accepted_p99_us: gauge("gateway_live_ack_accepted_p99_us"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::parse_metrics;

    fn scrape(acks: [u64; 4], accepted: [u64; 4], counters: [u64; 4]) -> Metrics {
        let mut t = String::new();
        for (family, b) in [
            ("gateway_live_ack_us", acks),
            ("gateway_live_ack_accepted_us", accepted),
        ] {
            for (le, n) in ["40", "100", "1000"].iter().zip(b) {
                t += &format!("{family}_bucket{{le=\"{le}\"}} {n}\n");
            }
            t += &format!(
                "{family}_bucket{{le=\"+Inf\"}} {0}\n{family}_count {0}\n",
                b[3]
            );
        }
        let [p, a, k, l] = counters;
        t += &format!(
            "gateway_v3_processed_total {p}\ngateway_v3_accepted_total {a}\n\
             gateway_v3_rejected_killed_total {k}\ngateway_v3_loss_suspect_total {l}\n\
             gateway_v3_reject_total{{reason=\"V3_BACKPRESSURE_SOFT\"}} {}\n\
             gateway_live_ack_p99_us 55.5\n",
            p - a
        );
        parse_metrics(&t)
    }

    // Goal: the window is the difference of two scrapes: percentiles from bucket deltas,
    // counters and rejects by reason differenced, since-start gauges from the later scrape.
    #[test]
    fn window_from_two_scrapes() {
        let before = scrape(
            [500, 900, 1_000, 1_000],
            [500, 900, 1_000, 1_000],
            [1_000; 4],
        );
        // 10 000 more acks: 9 950 within 40 µs, 9 995 within 100 µs, all within 1 ms.
        let after = scrape(
            [10_450, 10_895, 11_000, 11_000],
            [10_450, 10_895, 10_990, 10_990],
            [11_000, 10_990, 1_000, 1_003],
        );
        let w = ServerWindow::between(&before, &after);
        assert_eq!(w.ack.count, 10_000);
        assert_eq!(w.ack.share_within(40), 0.995);
        assert_eq!(w.ack.share_within(100), 0.9995);
        assert_eq!(w.ack.p99_le_us, Some(40));
        assert_eq!(w.ack.max_le_us, Some(1_000));
        assert_eq!(w.ack.share_within(7), 0.0);
        assert_eq!(w.ack_accepted.count, 9_990);
        assert_eq!((w.processed, w.accepted), (10_000, 9_990));
        assert!((w.accepted_rate - 0.999).abs() < 1e-9);
        assert_eq!((w.rejected_killed, w.loss_suspects), (0, 3));
        assert_eq!(w.rejects["V3_BACKPRESSURE_SOFT"], 10);
        assert_eq!(w.since_start_ack_p99_us, 55.5);
        // A tail beyond every bound has no p99 bound.
        let slow = scrape([10_000, 10_500, 10_800, 11_000], [0; 4], [0; 4]);
        let w = ServerWindow::between(&before, &slow);
        assert_eq!((w.ack.p99_le_us, w.ack.max_le_us), (None, None));
        // An idle window is not a failure of the latency shares.
        assert_eq!(
            ServerWindow::between(&before, &before).ack.share_within(40),
            1.0
        );
    }
}
