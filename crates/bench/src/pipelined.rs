//! Pipelined binary TCP: each connection keeps `window` frames in flight.
//!
//! The connection writes a full window in one write, then loops: read whatever answers have
//! arrived, and for every answer write one new frame — all of them in one write. This is the
//! binary protocol's throughput ceiling for a given number of connections, and it checks the
//! protocol's ordering promise on the way: answers come back in request order, so with one
//! account (session) per connection the `sessionSeq` of accepted answers must increase
//! strictly; every exception counts as an `order_violation`.
//!
//! Latency is from the write of a frame's batch to the read that delivered its answer, so it
//! includes the time spent queued behind the rest of the window.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::PipelinedConfig;
use crate::report::{Mode, Report, RunShape};
use crate::stats::{ConnStats, OrderCheck};
use crate::tcp_client::{self, FrameReader};
use crate::timeline::{merge_all, preconnect, until_deadline, Timeline, RECONNECT_PAUSE};

/// Runs a pipelined load and returns its report.
pub async fn run_pipelined(cfg: &PipelinedConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    let load = &cfg.load;
    let addr = load.resolve().await?;
    let tokens = load.tokens()?;
    let n = load.connections;
    let conns = preconnect(n, |_| tcp_client::connect(addr)).await;
    let timeline = Timeline::starting_now(load);
    let mut handles = Vec::with_capacity(n);
    for (c, conn) in conns.into_iter().enumerate() {
        let frame = tcp_client::build_frame(&tokens[load.account_of(c)], &load.order);
        // The whole window as one buffer: a refill of k frames writes its first k frames.
        let batch = frame.repeat(cfg.window);
        handles.push(tokio::spawn(conn_task(
            addr, timeline, conn, batch, cfg.window,
        )));
    }
    let stats = merge_all(handles).await?;
    Ok(Report::new(
        RunShape {
            mode: Mode::Pipelined,
            transport: load.transport,
            target_rate: None,
            duration: load.duration,
            warmup: load.warmup,
            connections: n,
            accounts: load.accounts,
            window: Some(cfg.window),
        },
        &stats,
    ))
}

async fn conn_task(
    addr: SocketAddr,
    timeline: Timeline,
    mut stream: Option<TcpStream>,
    batch: Vec<u8>,
    window: usize,
) -> ConnStats {
    let frame_len = batch.len() / window;
    let mut stats = ConnStats::new();
    if stream.is_none() {
        stats.connect_errors += 1;
    }
    // (send time, measured) per frame in flight, oldest first.
    let mut inflight: VecDeque<(Instant, bool)> = VecDeque::with_capacity(window);
    let mut reader = FrameReader::new();
    let mut order = OrderCheck::default();

    until_deadline(timeline.deadline, async {
        'connection: loop {
            if Instant::now() >= timeline.end {
                return;
            }
            let s = match stream.as_mut() {
                Some(s) => s,
                None => match tcp_client::connect(addr).await {
                    Ok(s) => stream.insert(s),
                    Err(_) => {
                        stats.connect_errors += 1;
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                },
            };
            // A fresh connection: nothing in flight, possibly a new session.
            inflight.clear();
            reader.clear();
            order.reset();

            let mut refill = window;
            loop {
                let now = Instant::now();
                if refill > 0 && now < timeline.end {
                    let measured = timeline.measured(now);
                    if s.write_all(&batch[..refill * frame_len]).await.is_err() {
                        stats.io_errors += 1;
                        stream = None;
                        continue 'connection;
                    }
                    for _ in 0..refill {
                        inflight.push_back((now, measured));
                    }
                    if measured {
                        stats.sent += refill as u64;
                    }
                }
                if inflight.is_empty() {
                    // The end has passed and every answer is in.
                    return;
                }
                if reader.fill(s).await.is_err() {
                    stats.io_errors += 1;
                    stream = None;
                    continue 'connection;
                }
                let now = Instant::now();
                refill = 0;
                while let Some(resp) = reader.next_frame() {
                    let Some((sent_at, measured)) = inflight.pop_front() else {
                        // More answers than requests: the stream is out of step.
                        stats.io_errors += 1;
                        stream = None;
                        continue 'connection;
                    };
                    refill += 1;
                    if measured {
                        stats.record_latency(now - sent_at);
                        tcp_client::record(&mut stats, &mut order, &resp);
                    }
                }
            }
        }
    })
    .await;
    stats
}
