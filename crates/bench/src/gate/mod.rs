//! Gates: a load run with pass marks, judged on the client's and the gateway's own figures,
//! guarded against a busy machine, written as JSON (`contracts/gate_result_v1.schema.json`)
//! with a one-line PASS/FAIL summary and an optional comparison with a stored baseline.
//!
//! | gate | load | pass marks |
//! |---|---|---|
//! | `stable` | open loop, TCP, 10 000/s, 300 s, 192 connections, 24 accounts | server ack p99 ≤ 100 µs, accepted-only ack p99 ≤ 40 µs, accepted ≥ 0.99, completed ≥ 0.99 × rate, dropped ≤ 0.001, nothing unanswered, no kills, no loss suspects |
//! | `capability` | open loop, TCP, 45 000/s, 120 s, 512 connections, 64 accounts | ack p99 ≤ 100 µs, accepted-only ≤ 40 µs, accepted ≥ 0.95, completed ≥ 0.99 × rate, no kills, no loss suspects |
//! | `absolute` | closed loop (wrk-style), HTTP `/v3/orders`, 400 connections, one account, 300 s; Linux only | ≥ 10 000 answers/s, ack p99 ≤ 200 µs, accepted ≥ 0.95 |
//! | `sweep` | open-loop levels (TCP) | the capability marks per level; reports the highest rate that met them |
//!
//! These are the reference's gates (spec §5). "Server ack" is the gateway's histogram from the
//! first byte of a request read to the last byte of its answer written, over the measured
//! window only (see [`server`]); the client's percentiles, measured from each request's
//! intended send time, are reported beside it. By default a gate starts its own gateway
//! (`switchyard gateway`, fresh journal, the caller's environment as its profile) and stops it
//! afterwards; `--tcp/--http/--secret` point it at one that runs already.

pub mod noise;
pub mod result;
pub mod server;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::{Args, Subcommand};

use crate::config::{LoadConfig, OpenConfig, Transport};
use crate::report::Report;
use noise::{CpuSample, NoiseReading};
use result::{comparison_table, Check, GateResult, Host, Noise, Params, Run, Verdict, SCHEMA};
use server::{ServerWindow, Target};

#[derive(Debug, Clone, Subcommand)]
pub enum GateCommand {
    /// Open loop 10 000/s over TCP for 300 s: ack p99 ≤ 100 µs, accepted-only ≤ 40 µs.
    Stable(GateArgs),
    /// Open loop 45 000/s over TCP for 120 s: accepted ≥ 0.95 with the same latency marks.
    Capability(GateArgs),
    /// Closed loop over HTTP, 400 connections, 300 s: ≥ 10 000/s, ack p99 ≤ 200 µs (Linux).
    Absolute(GateArgs),
    /// Open-loop levels: the highest rate that still meets the capability marks.
    Sweep(SweepArgs),
    /// Compares a result with a baseline result; exit 1 on a regression.
    Compare(CompareArgs),
}

#[derive(Debug, Clone, Args)]
pub struct GateArgs {
    /// Requests per second (open-loop gates). Default: the gate's.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Measured seconds. Default: the gate's.
    #[arg(long)]
    pub duration: Option<u64>,
    /// Connections. Default: the gate's.
    #[arg(long)]
    pub connections: Option<usize>,
    /// Accounts the connections use round-robin. Default: the gate's.
    #[arg(long)]
    pub accounts: Option<usize>,
    /// Transport. Default: the gate's (TCP, or HTTP for the absolute gate).
    #[arg(long, value_enum)]
    pub transport: Option<Transport>,
    #[command(flatten)]
    pub common: CommonGateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct SweepArgs {
    /// Rates to try, ascending, comma-separated.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "10000,20000,30000,40000,50000,60000"
    )]
    pub levels: Vec<f64>,
    /// Measured seconds per level.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Halvings of the gap between the last level that passed and the first that failed.
    #[arg(long, default_value_t = 2)]
    pub refine: u32,
    /// Connections per level (default 512, the capability gate's).
    #[arg(long, default_value_t = 512)]
    pub connections: usize,
    #[arg(long, default_value_t = 64)]
    pub accounts: usize,
    #[command(flatten)]
    pub common: CommonGateArgs,
}

#[derive(Debug, Clone, Args)]
pub struct CommonGateArgs {
    /// Unmeasured seconds of the same load before the window (default: 10, sweep levels 5).
    #[arg(long)]
    pub warmup: Option<u64>,
    /// An already running gateway's binary TCP ingress (with --http and --secret); by
    /// default the gate starts its own.
    #[arg(long, requires_all = ["http", "secret"])]
    pub tcp: Option<SocketAddr>,
    /// An already running gateway's HTTP listener (for /metrics and HTTP load).
    #[arg(long, requires = "secret")]
    pub http: Option<SocketAddr>,
    /// The running gateway's JWT_HS256_SECRET.
    #[arg(long, env = "JWT_HS256_SECRET", hide_env_values = true)]
    pub secret: Option<String>,
    /// The running gateway's pid, so that its CPU is not counted as noise.
    #[arg(long)]
    pub gateway_pid: Option<u32>,
    /// Sent as X-Metrics-Token when scraping a gateway that has GATEWAY_METRICS_TOKEN set.
    #[arg(long, env = "GATEWAY_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// The switchyard binary to start (default: this one).
    #[arg(long)]
    pub gateway_bin: Option<PathBuf>,
    /// Where results (and the started gateway's journal, removed afterwards) go.
    #[arg(long, default_value = "var/results")]
    pub results_dir: PathBuf,
    /// The JSON result file (default: <results-dir>/gate-<gate>-<unix time>.json).
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// A stored result of the same gate to compare with; a regression fails the gate.
    #[arg(long)]
    pub baseline: Option<PathBuf>,
    /// How much worse than the baseline a figure may be (0.2 = 20 %).
    #[arg(long, default_value_t = 0.2)]
    pub tolerance: f64,
    /// Foreign CPU (other processes + steal), in cores, above which the machine is busy.
    #[arg(long, default_value_t = 0.35)]
    pub noise_threshold: f64,
    /// Seconds of each noise reading.
    #[arg(long, default_value_t = 3)]
    pub noise_window: u64,
    /// Seconds to wait for a busy machine to become quiet before refusing to run.
    #[arg(long, default_value_t = 120)]
    pub quiet_wait: u64,
    /// Take noise readings but judge anyway.
    #[arg(long)]
    pub no_noise_guard: bool,
    /// See `bench open --spin-us`.
    #[arg(long, default_value_t = 50)]
    pub spin_us: u64,
    /// Nice value of the load generator's threads (0..=19), set after the gateway has started
    /// (which keeps its own). Sharing the cores with the server under test, a generator at
    /// equal priority preempts it mid-answer and the gate measures the co-location; 19 makes
    /// it yield. 0 = share equally.
    #[arg(long, default_value_t = 19, value_parser = clap::value_parser!(i32).range(0..=19))]
    pub nice: i32,
    /// Open-loop gates: the generator polls for answers from a busy thread instead of being
    /// woken (see `bench open --busy-poll`).
    #[arg(long)]
    pub busy_poll: bool,
}

#[derive(Debug, Clone, Args)]
pub struct CompareArgs {
    /// The stored baseline result.
    pub baseline: PathBuf,
    /// The result to judge.
    pub result: PathBuf,
    #[arg(long, default_value_t = 0.2)]
    pub tolerance: f64,
}

/// Pass marks of one run; `None` = not judged.
#[derive(Debug, Clone, Copy)]
struct Marks {
    ack_p99_us: Option<u64>,
    accepted_ack_p99_us: Option<u64>,
    accepted_rate: f64,
    /// Open loop: completed / (rate × duration).
    completed_share: Option<f64>,
    /// Closed loop: answers per second.
    min_rps: Option<f64>,
    /// Open loop: dropped_late / scheduled.
    max_dropped: Option<f64>,
    /// Nothing unanswered, no connection errors.
    clean: bool,
}

const STABLE: Marks = Marks {
    ack_p99_us: Some(100),
    accepted_ack_p99_us: Some(40),
    accepted_rate: 0.99,
    completed_share: Some(0.99),
    min_rps: None,
    max_dropped: Some(0.001),
    clean: true,
};

const CAPABILITY: Marks = Marks {
    accepted_rate: 0.95,
    max_dropped: None,
    clean: false,
    ..STABLE
};

const ABSOLUTE: Marks = Marks {
    ack_p99_us: Some(200),
    accepted_ack_p99_us: None,
    accepted_rate: 0.95,
    completed_share: None,
    min_rps: Some(10_000.0),
    max_dropped: None,
    clean: false,
};

/// One run to make.
#[derive(Debug, Clone)]
struct RunSpec {
    transport: Transport,
    /// `None`: closed loop.
    rate: Option<f64>,
    duration: u64,
    warmup: u64,
    connections: usize,
    accounts: usize,
    marks: Marks,
}

impl Marks {
    fn checks(&self, spec: &RunSpec, c: &Report, s: &ServerWindow) -> Vec<Check> {
        let mut out = Vec::new();
        if let Some(b) = self.ack_p99_us {
            out.push(Check::at_least(
                &format!("server_ack_share_within_{b}us"),
                s.ack.share_within(b),
                0.99,
            ));
        }
        if let Some(b) = self.accepted_ack_p99_us {
            out.push(Check::at_least(
                &format!("server_accepted_ack_share_within_{b}us"),
                s.ack_accepted.share_within(b),
                0.99,
            ));
        }
        out.push(Check::at_least(
            "accepted_rate",
            c.accepted_rate,
            self.accepted_rate,
        ));
        if let (Some(share), Some(rate)) = (self.completed_share, spec.rate) {
            out.push(Check::at_least(
                "completed_rps",
                c.rps,
                (rate * share * 100.0).round() / 100.0,
            ));
        }
        if let Some(min) = self.min_rps {
            out.push(Check::at_least("completed_rps", c.rps, min));
        }
        if let Some(max) = self.max_dropped {
            let scheduled = c.sent + c.dropped_late;
            let ratio = if scheduled > 0 {
                c.dropped_late as f64 / scheduled as f64
            } else {
                0.0
            };
            out.push(Check::at_most("dropped_ratio", ratio, max));
        }
        if self.clean {
            out.push(Check::zero("unanswered", c.unanswered));
            out.push(Check::zero(
                "connection_errors",
                c.errors.connect + c.errors.io,
            ));
        }
        out.push(Check::zero("rejected_killed", s.rejected_killed));
        out.push(Check::zero("loss_suspects", s.loss_suspects));
        out
    }
}

/// Runs a `switchyard bench gate` command; returns the process exit code.
pub async fn run(cmd: GateCommand) -> anyhow::Result<i32> {
    let (name, specs, common, sweep) = match cmd {
        GateCommand::Compare(a) => return compare_files(&a),
        GateCommand::Stable(a) => (
            "stable",
            vec![single(
                &a,
                Transport::Tcp,
                Some(10_000.0),
                300,
                192,
                24,
                STABLE,
            )],
            a.common,
            None,
        ),
        GateCommand::Capability(a) => (
            "capability",
            vec![single(
                &a,
                Transport::Tcp,
                Some(45_000.0),
                120,
                512,
                64,
                CAPABILITY,
            )],
            a.common,
            None,
        ),
        GateCommand::Absolute(a) => {
            let spec = RunSpec {
                rate: None,
                ..single(&a, Transport::Http, None, 300, 400, 1, ABSOLUTE)
            };
            ("absolute", vec![spec], a.common, None)
        }
        GateCommand::Sweep(a) => {
            if a.levels.is_empty() || a.levels.iter().any(|r| !(r.is_finite() && *r > 0.0)) {
                bail!("--levels must be positive rates");
            }
            if a.levels.windows(2).any(|w| w[0] >= w[1]) {
                bail!("--levels must be ascending");
            }
            let specs = a
                .levels
                .iter()
                .map(|&rate| RunSpec {
                    transport: Transport::Tcp,
                    rate: Some(rate),
                    duration: a.duration,
                    warmup: a.common.warmup.unwrap_or(5),
                    connections: a.connections,
                    accounts: a.accounts,
                    marks: CAPABILITY,
                })
                .collect();
            ("sweep", specs, a.common.clone(), Some(a.refine))
        }
    };
    for s in &specs {
        validate(s)?;
    }
    let started = now_iso();
    let mut result = GateResult {
        schema: SCHEMA.into(),
        gate: name.into(),
        verdict: Verdict::Unsupported,
        summary: String::new(),
        started_at: started,
        finished_at: String::new(),
        host: Host::here(),
        gateway_spawned: common.tcp.is_none(),
        runs: Vec::new(),
        capacity_rps: None,
        baseline: None,
    };
    if name == "absolute" && std::env::consts::OS != "linux" {
        // The reference's absolute gate is defined on Linux only; elsewhere it fails (exit 2).
        return finish(result, &common);
    }
    let mut target = match (common.tcp, common.http, &common.secret) {
        (Some(tcp), Some(http), Some(secret)) => {
            Target::external(http, tcp, secret.clone(), common.metrics_token.clone())
        }
        (None, None, _) => {
            let bin = match &common.gateway_bin {
                Some(b) => b.clone(),
                None => std::env::current_exe().context("cannot find this executable")?,
            };
            std::fs::create_dir_all(&common.results_dir)
                .with_context(|| format!("cannot create {}", common.results_dir.display()))?;
            eprintln!("starting {} gateway (fresh journal)", bin.display());
            Target::spawn(&bin, &common.results_dir).await?
        }
        _ => bail!("--tcp, --http and --secret go together (an external gateway)"),
    };
    if common.nice > 0 {
        yield_to_gateway(common.nice);
    }
    let mut own = vec![std::process::id()];
    own.extend(target.pid().or(common.gateway_pid));

    match sweep {
        None => {
            let run = measure(&specs[0], &target, &common, &own).await?;
            result.verdict = run.verdict;
            result.runs.push(run);
        }
        Some(refine) => {
            let (runs, capacity) = sweep_levels(&specs, refine, &target, &common, &own).await?;
            result.runs = runs;
            result.capacity_rps = capacity;
            result.verdict = if capacity.is_some() {
                Verdict::Pass
            } else if result.runs.iter().any(|r| r.verdict == Verdict::Noisy) {
                Verdict::Noisy
            } else {
                Verdict::Fail
            };
        }
    }
    target.stop();
    finish(result, &common)
}

/// Lowers every thread of this process to `nice` (Linux keeps nice per thread; threads made
/// later, such as the pacer, inherit it from their creator). Best effort: a thread that ends
/// meanwhile is skipped.
fn yield_to_gateway(nice: i32) {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    for t in tasks.flatten() {
        if let Some(tid) = t
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<libc::id_t>().ok())
        {
            // SAFETY: setpriority on one of our own thread ids; no memory is passed.
            unsafe {
                libc::setpriority(libc::PRIO_PROCESS, tid, nice);
            }
        }
    }
}

fn single(
    a: &GateArgs,
    transport: Transport,
    rate: Option<f64>,
    duration: u64,
    connections: usize,
    accounts: usize,
    marks: Marks,
) -> RunSpec {
    RunSpec {
        transport: a.transport.unwrap_or(transport),
        rate: a.rate.or(rate),
        duration: a.duration.unwrap_or(duration),
        warmup: a.common.warmup.unwrap_or(10),
        connections: a.connections.unwrap_or(connections),
        accounts: a.accounts.unwrap_or(accounts),
        marks,
    }
}

fn validate(s: &RunSpec) -> anyhow::Result<()> {
    if s.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        bail!("--rate must be a positive number of requests per second");
    }
    if s.duration == 0 {
        bail!("--duration must be at least 1 second");
    }
    if s.connections == 0 || s.accounts == 0 {
        bail!("--connections and --accounts must be at least 1");
    }
    Ok(())
}

/// Runs the levels in order until one fails, then halves the gap between the last pass and
/// the first failure `refine` times. A NOISY level ends the sweep (it cannot be judged).
async fn sweep_levels(
    specs: &[RunSpec],
    refine: u32,
    target: &Target,
    common: &CommonGateArgs,
    own: &[u32],
) -> anyhow::Result<(Vec<Run>, Option<f64>)> {
    let mut runs = Vec::new();
    let (mut pass, mut fail): (Option<f64>, Option<f64>) = (None, None);
    for s in specs {
        let run = measure(s, target, common, own).await?;
        let v = run.verdict;
        runs.push(run);
        match v {
            Verdict::Pass => pass = s.rate,
            Verdict::Fail => {
                fail = s.rate;
                break;
            }
            _ => return Ok((runs, pass)),
        }
    }
    if let Some(mut hi) = fail {
        let mut lo = pass.unwrap_or(0.0);
        for _ in 0..refine {
            let mid = ((lo + hi) / 2.0 / 100.0).round() * 100.0;
            if mid <= lo || mid >= hi {
                break;
            }
            let spec = RunSpec {
                rate: Some(mid),
                ..specs[0].clone()
            };
            let run = measure(&spec, target, common, own).await?;
            let v = run.verdict;
            runs.push(run);
            match v {
                Verdict::Pass => lo = mid,
                Verdict::Fail => hi = mid,
                _ => break,
            }
        }
        if lo > 0.0 {
            pass = Some(lo);
        }
    }
    Ok((runs, pass))
}

/// One measured run: noise check, warm-up, scrape, measured load, scrape, checks.
async fn measure(
    spec: &RunSpec,
    target: &Target,
    common: &CommonGateArgs,
    own: &[u32],
) -> anyhow::Result<Run> {
    let window = Duration::from_secs(common.noise_window.max(1));
    let params = Params {
        transport: spec.transport.as_str().into(),
        rate: spec.rate,
        duration_s: spec.duration,
        warmup_s: spec.warmup,
        connections: spec.connections,
        accounts: spec.accounts,
        generator_nice: common.nice,
    };
    let mut run = Run {
        params,
        verdict: Verdict::Noisy,
        checks: Vec::new(),
        client: None,
        server: None,
        noise: Noise {
            threshold_cores: common.noise_threshold,
            enforced: !common.no_noise_guard,
            before: None,
            during: None,
        },
    };
    // Without the guard one reading is still taken (and reported), but nothing waits for it.
    let patience = match common.no_noise_guard {
        true => Duration::ZERO,
        false => Duration::from_secs(common.quiet_wait),
    };
    let (before, quiet) = noise::wait_quiet(window, patience, common.noise_threshold, own)
        .await
        .context("cannot read /proc for the noise guard")?;
    eprintln!("noise guard: {}", before.describe());
    run.noise.before = Some(before);
    if !quiet && !common.no_noise_guard {
        eprintln!(
            "noise guard: the machine stayed busy for {} s; not running (exit 3)",
            common.quiet_wait
        );
        return Ok(run);
    }
    let rate = spec.rate.map_or("closed loop".into(), |r| format!("{r}/s"));
    eprintln!(
        "{} {rate}: {} s warm-up, {} s measured, {} connections, {} accounts",
        spec.transport.as_str(),
        spec.warmup,
        spec.duration,
        spec.connections,
        spec.accounts
    );
    if spec.warmup > 0 {
        load(spec, target, common, spec.warmup).await?;
    }
    let m0 = target.scrape().await?;
    let cpu0 = CpuSample::take()?;
    let client = load(spec, target, common, spec.duration).await?;
    let cpu1 = CpuSample::take()?;
    let m1 = target.scrape().await?;
    let during: NoiseReading = cpu0.reading(&cpu1, own);
    eprintln!("noise guard (during): {}", during.describe());
    let server = ServerWindow::between(&m0, &m1);
    run.checks = spec.marks.checks(spec, &client, &server);
    run.client = Some(client);
    run.server = Some(server);
    run.noise.during = Some(during);
    run.judge();
    for c in &run.checks {
        eprintln!(
            "  {:<5} {:<40} {} {} {}",
            if c.pass { "ok" } else { "FAIL" },
            c.name,
            c.value,
            c.op,
            c.limit
        );
    }
    Ok(run)
}

/// One load run of `secs` seconds (no warm-up of its own).
async fn load(
    spec: &RunSpec,
    target: &Target,
    common: &CommonGateArgs,
    secs: u64,
) -> anyhow::Result<Report> {
    let addr = match spec.transport {
        Transport::Tcp => target.tcp,
        Transport::Http => target.http,
    };
    let mut cfg = LoadConfig::new(spec.transport, addr.to_string(), target.secret.clone());
    cfg.connections = spec.connections;
    cfg.accounts = spec.accounts;
    cfg.duration = Duration::from_secs(secs);
    match spec.rate {
        Some(rate) => {
            let open = OpenConfig {
                load: cfg,
                rate,
                max_lag: Duration::from_secs(5),
                pacer_spin: Duration::from_micros(common.spin_us),
                busy_poll: common.busy_poll,
            };
            crate::open_loop::run_open(&open).await
        }
        None => crate::closed_loop::run_closed(&cfg).await,
    }
}

/// Compares with the baseline if asked, prints the summary, writes the JSON.
fn finish(mut result: GateResult, common: &CommonGateArgs) -> anyhow::Result<i32> {
    result.finished_at = now_iso();
    if let Some(path) = &common.baseline {
        let base = read_result(path)?;
        let cmp = result.compare(&base, &path.display().to_string(), common.tolerance);
        eprint!("{}", comparison_table(&cmp));
        if cmp.regressed && result.verdict == Verdict::Pass {
            result.verdict = Verdict::Fail;
        }
        result.baseline = Some(cmp);
    }
    result.summary = result.summary_line();
    let path = match &common.json {
        Some(p) => p.clone(),
        None => common
            .results_dir
            .join(format!("gate-{}-{}.json", result.gate, now_ms() / 1_000)),
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(&path, result.to_json() + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    eprintln!("result: {}", path.display());
    println!("{}", result.summary);
    Ok(result.verdict.exit_code())
}

fn compare_files(a: &CompareArgs) -> anyhow::Result<i32> {
    let base = read_result(&a.baseline)?;
    let cur = read_result(&a.result)?;
    if base.gate != cur.gate {
        bail!(
            "{} is a {} gate result, {} a {} gate result",
            a.baseline.display(),
            base.gate,
            a.result.display(),
            cur.gate
        );
    }
    let cmp = cur.compare(&base, &a.baseline.display().to_string(), a.tolerance);
    print!("{}", comparison_table(&cmp));
    println!(
        "{}",
        if cmp.regressed {
            "REGRESSED"
        } else {
            "no regression"
        }
    );
    Ok(i32::from(cmp.regressed))
}

fn read_result(path: &Path) -> anyhow::Result<GateResult> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let r: GateResult = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a gate result", path.display()))?;
    if r.schema != SCHEMA {
        bail!(
            "{} has schema {:?}, want {SCHEMA:?}",
            path.display(),
            r.schema
        );
    }
    Ok(r)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn now_iso() -> String {
    switchyard_protocol::venue::iso8601_ms(now_ms())
}
