//! Closed loop: each connection sends its next request as soon as the previous answer is in.
//!
//! This measures the throughput a fixed number of synchronous clients can get, and the
//! latency each of them sees (from the actual send time: in a closed loop the load waits for
//! the server, which is exactly the coordinated omission an open loop avoids — use this mode
//! for capacity, the open loop for latency under a given load).

use std::net::SocketAddr;
use std::time::Instant;

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::config::{LoadConfig, Transport};
use crate::http_client::{HttpConn, HttpRequest};
use crate::report::{Mode, Report, RunShape};
use crate::stats::{ConnStats, OrderCheck};
use crate::tcp_client::{self, FrameReader};
use crate::timeline::{merge_all, preconnect, until_deadline, Timeline, RECONNECT_PAUSE};

/// Runs a closed-loop load and returns its report.
pub async fn run_closed(cfg: &LoadConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    let addr = cfg.resolve().await?;
    let tokens = cfg.tokens()?;
    let n = cfg.connections;
    let mut handles = Vec::with_capacity(n);
    match cfg.transport {
        Transport::Http => {
            let conns = preconnect(n, |_| HttpConn::connect(addr)).await;
            let timeline = Timeline::starting_now(cfg);
            let body = cfg.order.json_body();
            for (c, conn) in conns.into_iter().enumerate() {
                let request = cfg.http_request(&tokens[cfg.account_of(c)], &body, c);
                handles.push(tokio::spawn(http_conn(addr, timeline, conn, request)));
            }
        }
        Transport::Tcp => {
            let conns = preconnect(n, |_| tcp_client::connect(addr)).await;
            let timeline = Timeline::starting_now(cfg);
            for (c, conn) in conns.into_iter().enumerate() {
                let frame = tcp_client::build_frame(&tokens[cfg.account_of(c)], &cfg.order);
                handles.push(tokio::spawn(tcp_conn(addr, timeline, conn, frame)));
            }
        }
    }
    let stats = merge_all(handles).await?;
    Ok(Report::new(
        RunShape {
            mode: Mode::Closed,
            transport: cfg.transport,
            target_rate: None,
            duration: cfg.duration,
            warmup: cfg.warmup,
            connections: n,
            accounts: cfg.accounts,
            window: None,
        },
        &stats,
    ))
}

async fn http_conn(
    addr: SocketAddr,
    timeline: Timeline,
    mut conn: Option<HttpConn>,
    mut request: HttpRequest,
) -> ConnStats {
    let mut stats = ConnStats::new();
    if conn.is_none() {
        stats.connect_errors += 1;
    }
    until_deadline(timeline.deadline, async {
        loop {
            let sent_at = Instant::now();
            if sent_at >= timeline.end {
                return;
            }
            if conn.is_none() {
                match HttpConn::connect(addr).await {
                    Ok(c) => conn = Some(c),
                    Err(_) => {
                        stats.connect_errors += 1;
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                }
                // The connect took time: take the send time again.
                continue;
            }
            if conn.is_none() {
                continue;
            }
            let measured = timeline.measured(sent_at);
            if measured {
                stats.sent += 1;
            }
            stats
                .http_exchange(&mut conn, request.next_bytes(), measured, sent_at)
                .await;
        }
    })
    .await;
    stats
}

async fn tcp_conn(
    addr: SocketAddr,
    timeline: Timeline,
    mut stream: Option<TcpStream>,
    frame: [u8; switchyard_protocol::v3frame::REQUEST_LEN],
) -> ConnStats {
    let mut stats = ConnStats::new();
    if stream.is_none() {
        stats.connect_errors += 1;
    }
    let mut reader = FrameReader::new();
    let mut order = OrderCheck::default();
    until_deadline(timeline.deadline, async {
        loop {
            if Instant::now() >= timeline.end {
                return;
            }
            if stream.is_none() {
                reader.clear();
                order.reset();
                match tcp_client::connect(addr).await {
                    Ok(s) => stream = Some(s),
                    Err(_) => {
                        stats.connect_errors += 1;
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                    }
                }
                continue;
            }
            let Some(s) = stream.as_mut() else { continue };
            let sent_at = Instant::now();
            let measured = timeline.measured(sent_at);
            if measured {
                stats.sent += 1;
            }
            let answer = match s.write_all(&frame).await {
                Ok(()) => reader.read_frame(s).await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(resp) => {
                    if measured {
                        stats.record_latency(sent_at.elapsed());
                        tcp_client::record(&mut stats, &mut order, &resp);
                    }
                }
                Err(_) => {
                    stats.io_errors += 1;
                    stream = None;
                }
            }
        }
    })
    .await;
    stats
}
