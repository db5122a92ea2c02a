//! Load generation for Switchyard, and the yardstick servers it is measured against.
//!
//! The load generator speaks both ingresses of the gateway — `POST /v3/orders` over HTTP/1.1
//! keep-alive and the v3 binary TCP frames — and has three modes:
//!
//! - **open** ([`open_loop`]): a fixed request rate. Every request has an *intended* send
//!   time (`start + i / rate`) and its latency is measured from that instant to the last byte
//!   of the answer, so a server that stalls is charged for every request queued behind the
//!   stall (no coordinated omission). Backlog is measured, not hidden; only requests that
//!   fall more than `--max-lag` behind are skipped, and counted as `dropped_late`.
//! - **closed** ([`closed_loop`]): each connection sends its next request when the previous
//!   answer is in — the throughput a fixed number of synchronous clients can get.
//! - **pipelined** ([`pipelined`]): binary TCP with a window of frames in flight per
//!   connection, which also checks that answers come back in order.
//!
//! Latencies go into per-connection HDR histograms (3 significant digits, ns) merged at the
//! end; [`report`] prints a summary and writes the JSON report.
//!
//! The **yardsticks** ([`yardstick`]) are the ceilings: a minimal hyper HTTP server and a
//! minimal frame server doing only what any server on the same transport must do (read,
//! parse, answer). The gap between a yardstick and the gateway is the gateway's own cost.
//!
//! This crate must not depend on the gateway crate: it measures the gateway from the outside,
//! through its wire protocols only, exactly as a client would (it uses the protocol crate's
//! frame codec and the auth crate's token minting, which clients use too).
//!
//! - **gate** ([`gate`]): the reference's gates (stable, capability, absolute, capacity
//!   sweep) with pass marks judged on the client's and the gateway's own figures, a noise
//!   guard, a JSON result (`contracts/gate_result_v1.schema.json`) and baseline comparison.
//!
//! - **sse** ([`sse`]): SSE fan-out — one `GET /stream` per account while an open loop posts
//!   durable orders over the same accounts; checks every order's events arrive once, in order.
//!
//! Entry points: [`run`] for the command line (`switchyard bench <mode> ...`), and for
//! in-process use [`open_loop::run_open`], [`closed_loop::run_closed`],
//! [`pipelined::run_pipelined`], [`yardstick::serve_http`] and [`yardstick::serve_tcp`].

pub mod cli;
pub mod closed_loop;
pub mod config;
pub mod fsync;
pub mod gate;
pub mod http_client;
pub mod metrics;
pub mod open_loop;
pub mod pipelined;
pub mod report;
pub mod soak;
pub mod sse;
pub mod stats;
pub mod tcp_client;
pub mod timeline;
pub mod yardstick;

use std::time::Duration;

use anyhow::Context as _;

pub use cli::BenchCommand;
pub use config::{LoadConfig, OpenConfig, OrderSpec, PipelinedConfig, Side, Transport};
pub use report::{Mode, Report};

/// Runs one `switchyard bench` subcommand to completion on its own tokio runtime.
pub fn run(cmd: BenchCommand) -> anyhow::Result<()> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    rt.block_on(run_async(cmd))
}

async fn run_async(cmd: BenchCommand) -> anyhow::Result<()> {
    let (report, json) = match cmd {
        BenchCommand::Open(a) => {
            let cfg = a.config()?;
            eprintln!(
                "open loop: {} {} at {}/s for {} s (+{} s warm-up), {} connections",
                cfg.load.transport.as_str(),
                cfg.load.target,
                cfg.rate,
                cfg.load.duration.as_secs(),
                cfg.load.warmup.as_secs(),
                cfg.load.connections
            );
            (open_loop::run_open(&cfg).await?, a.common.json)
        }
        BenchCommand::Closed(a) => {
            let cfg = a.config()?;
            eprintln!(
                "closed loop: {} {} for {} s (+{} s warm-up), {} connections",
                cfg.transport.as_str(),
                cfg.target,
                cfg.duration.as_secs(),
                cfg.warmup.as_secs(),
                cfg.connections
            );
            (closed_loop::run_closed(&cfg).await?, a.common.json)
        }
        BenchCommand::Pipelined(a) => {
            let cfg = a.config()?;
            eprintln!(
                "pipelined: tcp {} for {} s (+{} s warm-up), {} connections x {} in flight",
                cfg.load.target,
                cfg.load.duration.as_secs(),
                cfg.load.warmup.as_secs(),
                cfg.load.connections,
                cfg.window
            );
            (pipelined::run_pipelined(&cfg).await?, a.common.json)
        }
        BenchCommand::YardstickHttp(a) => {
            let listener = bind(&a.listen).await?;
            eprintln!("yardstick-http listening on {}", listener.local_addr()?);
            return Ok(yardstick::serve_http(listener, stop_signal(a.duration)).await?);
        }
        BenchCommand::Fsync(a) => {
            let r = fsync::run(
                &a.dir,
                Duration::from_secs(a.duration),
                a.bytes,
                a.overwrite,
            )?;
            println!(
                "fdatasync {} B ({}): {} syncs p50={}us p99={}us p99.9={}us max={}us",
                r.bytes_per_sync, r.mode, r.syncs, r.p50_us, r.p99_us, r.p999_us, r.max_us
            );
            if let Some(path) = a.json {
                std::fs::write(&path, serde_json::to_vec_pretty(&r)?)
                    .with_context(|| format!("cannot write {}", path.display()))?;
            }
            return Ok(());
        }
        BenchCommand::Sse(a) => {
            let cfg = a.config()?;
            eprintln!(
                "sse: {} streams on {}, POST /orders at {}/s for {} s ({}), {} connections",
                cfg.clients(),
                cfg.load.target,
                cfg.rate,
                cfg.load.duration.as_secs(),
                a.durability,
                cfg.load.connections
            );
            let report = sse::run_sse(&cfg).await?;
            print!("{}", report.human());
            if let Some(path) = a.json {
                std::fs::write(&path, report.to_json() + "\n").with_context(|| {
                    format!("cannot write the JSON report to {}", path.display())
                })?;
            }
            return Ok(());
        }
        BenchCommand::Gate { cmd } => {
            let code = gate::run(cmd).await?;
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
        BenchCommand::Soak { cmd } => {
            let code = soak::run(cmd).await?;
            if code != 0 {
                std::process::exit(code);
            }
            return Ok(());
        }
        BenchCommand::YardstickTcp(a) => {
            let listener = bind(&a.listen).await?;
            eprintln!("yardstick-tcp listening on {}", listener.local_addr()?);
            return Ok(yardstick::serve_tcp(listener, stop_signal(a.duration)).await?);
        }
    };
    print!("{}", report.human());
    if let Some(path) = json {
        std::fs::write(&path, report.to_json() + "\n")
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }
    Ok(())
}

async fn bind(listen: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))
}

/// Completes on Ctrl-C, or after `duration` seconds if given.
async fn stop_signal(duration: Option<u64>) {
    let ctrl_c = async {
        // If the signal handler cannot be installed, run until the duration (or forever).
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    match duration {
        Some(secs) => {
            tokio::select! {
                _ = ctrl_c => {}
                _ = tokio::time::sleep(Duration::from_secs(secs)) => {}
            }
        }
        None => ctrl_c.await,
    }
}
