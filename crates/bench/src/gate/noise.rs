//! The noise guard: how much CPU the rest of the machine takes, from `/proc`.
//!
//! A gate measures microseconds on a machine it may share. Two readings of `/proc/stat` and
//! of every `/proc/<pid>/stat` some seconds apart give each process's CPU over the interval,
//! in cores (its jiffies over the elapsed jiffies of one CPU, so `CLK_TCK` never matters).
//! *Foreign* CPU is what every process other than the bench itself and the gateway under test
//! used, plus the hypervisor's steal time (CPU this VM was ready to use but did not get).
//! Kernel time spent on behalf of the load (loopback softirqs) belongs to no process and is
//! not counted against the machine.
//!
//! Before a run the gate waits (up to `--quiet-wait`) for foreign CPU to fall below the
//! threshold and refuses to start otherwise; the same reading over the measured window
//! decides whether a failed run is judged (FAIL) or not (NOISY).

use std::collections::HashMap;
use std::fs;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// One reading of the machine's and every process's CPU counters.
#[derive(Debug, Clone, Default)]
pub struct CpuSample {
    /// Sum of every field of the `cpu` line of `/proc/stat`.
    total: u64,
    /// `idle + iowait`.
    idle: u64,
    steal: u64,
    cpus: usize,
    /// pid → (command name, utime + stime).
    procs: HashMap<u32, (String, u64)>,
    at: Option<Instant>,
}

/// A process that used CPU over an interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcCpu {
    pub pid: u32,
    pub name: String,
    pub cores: f64,
}

/// What the machine did over an interval, in cores (1.0 = one CPU busy the whole time).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NoiseReading {
    pub interval_s: f64,
    pub cpus: usize,
    /// Every CPU's non-idle time.
    pub busy_cores: f64,
    /// The bench and the gateway under test.
    pub own_cores: f64,
    pub steal_cores: f64,
    /// Other processes plus steal: what the guard judges.
    pub foreign_cores: f64,
    /// The busiest other processes, highest first (at most five).
    pub top_foreign: Vec<ProcCpu>,
}

impl NoiseReading {
    pub fn is_noisy(&self, threshold_cores: f64) -> bool {
        self.foreign_cores > threshold_cores
    }

    /// One line for the terminal.
    pub fn describe(&self) -> String {
        let top: Vec<String> = self
            .top_foreign
            .iter()
            .map(|p| format!("{}[{}] {:.2}", p.name, p.pid, p.cores))
            .collect();
        format!(
            "foreign CPU {:.2} cores (steal {:.2}; own {:.2}; busy {:.2} of {}){}",
            self.foreign_cores,
            self.steal_cores,
            self.own_cores,
            self.busy_cores,
            self.cpus,
            if top.is_empty() {
                String::new()
            } else {
                format!("; top: {}", top.join(", "))
            }
        )
    }
}

impl CpuSample {
    /// Reads `/proc` now. Processes that vanish while being read are skipped.
    pub fn take() -> std::io::Result<CpuSample> {
        let mut s = parse_proc_stat(&fs::read_to_string("/proc/stat")?);
        s.at = Some(Instant::now());
        for entry in fs::read_dir("/proc")?.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            if let Ok(text) = fs::read_to_string(entry.path().join("stat")) {
                if let Some(p) = parse_pid_stat(&text) {
                    s.procs.insert(pid, p);
                }
            }
        }
        Ok(s)
    }

    /// The interval from `self` to `later`; `own` are the pids that are not noise.
    pub fn reading(&self, later: &CpuSample, own: &[u32]) -> NoiseReading {
        let cpus = later.cpus.max(1);
        let elapsed = later.total.saturating_sub(self.total);
        if elapsed == 0 {
            return NoiseReading {
                cpus,
                ..NoiseReading::default()
            };
        }
        // Jiffies of one CPU over the interval: a process using this much used one core.
        let per_cpu = elapsed as f64 / cpus as f64;
        let cores = |j: u64| j as f64 / per_cpu;
        let busy = (later.total - later.idle).saturating_sub(self.total - self.idle);
        let (mut own_cores, mut others) = (0.0, Vec::new());
        for (pid, (name, j)) in &later.procs {
            // A process that started inside the interval counts from zero.
            let before = self.procs.get(pid).map_or(0, |(_, b)| *b);
            let c = cores(j.saturating_sub(before));
            if own.contains(pid) {
                own_cores += c;
            } else if c > 0.0 {
                others.push(ProcCpu {
                    pid: *pid,
                    name: name.clone(),
                    cores: c,
                });
            }
        }
        let steal_cores = cores(later.steal.saturating_sub(self.steal));
        let other_cores: f64 = others.iter().map(|p| p.cores).sum();
        others.sort_by(|a, b| b.cores.total_cmp(&a.cores));
        others.truncate(5);
        let round = |x: f64| (x * 1000.0).round() / 1000.0;
        NoiseReading {
            interval_s: match (self.at, later.at) {
                (Some(a), Some(b)) => round(b.duration_since(a).as_secs_f64()),
                _ => 0.0,
            },
            cpus,
            busy_cores: round(cores(busy)),
            own_cores: round(own_cores),
            steal_cores: round(steal_cores),
            foreign_cores: round(other_cores + steal_cores),
            top_foreign: others
                .into_iter()
                .map(|p| ProcCpu {
                    cores: round(p.cores),
                    ..p
                })
                .collect(),
        }
    }
}

/// Measures the machine for `window`.
pub async fn measure(window: Duration, own: &[u32]) -> std::io::Result<NoiseReading> {
    let a = CpuSample::take()?;
    tokio::time::sleep(window).await;
    let b = CpuSample::take()?;
    Ok(a.reading(&b, own))
}

/// Waits until the machine is quiet: measures `window` at a time until foreign CPU is at most
/// `threshold` cores or `patience` has passed. Returns the last reading and whether it was
/// quiet.
pub async fn wait_quiet(
    window: Duration,
    patience: Duration,
    threshold: f64,
    own: &[u32],
) -> std::io::Result<(NoiseReading, bool)> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        let r = measure(window, own).await?;
        let quiet = !r.is_noisy(threshold);
        if quiet || tokio::time::Instant::now() >= deadline {
            return Ok((r, quiet));
        }
        eprintln!("noise guard: machine busy, waiting — {}", r.describe());
    }
}

/// The `cpu` line of `/proc/stat` and the number of `cpuN` lines.
fn parse_proc_stat(text: &str) -> CpuSample {
    let mut s = CpuSample::default();
    for line in text.lines() {
        let mut f = line.split_ascii_whitespace();
        match f.next() {
            Some("cpu") => {
                let v: Vec<u64> = f.filter_map(|x| x.parse().ok()).collect();
                // user nice system idle iowait irq softirq steal guest guest_nice; guest time
                // is already inside user, so only the first eight are summed.
                let at = |i: usize| v.get(i).copied().unwrap_or(0);
                s.total = (0..8).map(at).sum();
                s.idle = at(3) + at(4);
                s.steal = at(7);
            }
            Some(c) if c.starts_with("cpu") => s.cpus += 1,
            _ => {}
        }
    }
    s
}

/// `(comm, utime + stime)` from `/proc/<pid>/stat`. The command name is in parentheses and
/// may itself contain spaces or parentheses, so the fields are counted after the last `)`.
fn parse_pid_stat(text: &str) -> Option<(String, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let name = text.get(open + 1..close)?.to_string();
    let mut f = text.get(close + 1..)?.split_ascii_whitespace();
    // After the name: state(3) ppid(4) … utime is field 14, stime 15 (1-based over the line).
    let utime: u64 = f.nth(11)?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some((name, utime + stime))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(total: u64, idle: u64, steal: u64, procs: &[(u32, &str, u64)]) -> CpuSample {
        CpuSample {
            total,
            idle,
            steal,
            cpus: 2,
            procs: procs
                .iter()
                .map(|(p, n, j)| (*p, (n.to_string(), *j)))
                .collect(),
            at: None,
        }
    }

    // Goal: cores are jiffies over one CPU's elapsed jiffies; own pids and steal are
    // accounted as documented; new processes count from zero.
    #[test]
    fn reading_in_cores() {
        // 2 CPUs × 300 jiffies elapsed = 600 in total.
        let a = sample(
            1_000,
            800,
            10,
            &[(1, "bench", 100), (2, "gw", 50), (3, "yes", 0)],
        );
        let b = sample(
            1_600,
            1_000,
            40,
            &[
                (1, "bench", 250),
                (2, "gw", 200),
                (3, "yes", 150),
                (4, "new", 30),
            ],
        );
        let r = a.reading(&b, &[1, 2]);
        assert_eq!(r.cpus, 2);
        assert!((r.busy_cores - 400.0 / 300.0).abs() < 1e-3);
        assert!((r.own_cores - 1.0).abs() < 1e-3);
        assert!((r.steal_cores - 0.1).abs() < 1e-3);
        assert!((r.foreign_cores - (0.5 + 0.1 + 0.1)).abs() < 1e-3);
        assert_eq!(r.top_foreign[0].name, "yes");
        assert_eq!(r.top_foreign[1].name, "new");
        assert!(r.is_noisy(0.35) && !r.is_noisy(0.8));
        assert!(r.describe().contains("yes[3] 0.5"));
        // No time elapsed: a zero reading, not a division by zero.
        assert_eq!(a.reading(&a, &[]).foreign_cores, 0.0);
    }

    // Goal: /proc formats are read right, including a command name with spaces and ')'.
    #[test]
    fn proc_formats() {
        let s = parse_proc_stat(
            "cpu  10 1 5 100 4 0 2 3 7 0\ncpu0 5 0 2 50 2 0 1 1 0 0\ncpu1 5 1 3 50 2 0 1 2 0 0\nintr 1\n",
        );
        assert_eq!((s.total, s.idle, s.steal, s.cpus), (125, 104, 3, 2));
        let line =
            "4242 (tokio (w) 1) S 1 4242 4242 0 -1 4194560 500 0 0 0 1234 56 0 0 20 0 3 0 100 0 0";
        assert_eq!(parse_pid_stat(line), Some(("tokio (w) 1".into(), 1290)));
        assert_eq!(parse_pid_stat("garbage"), None);
        assert_eq!(parse_pid_stat("1 (x) S 1 2"), None);
    }

    // Goal: the live /proc of this machine reads (Linux only), and this process is in it.
    #[test]
    #[cfg(target_os = "linux")]
    fn live_proc() {
        let s = CpuSample::take().unwrap();
        assert!(s.cpus >= 1 && s.total > 0);
        assert!(s.procs.contains_key(&std::process::id()));
    }
}
