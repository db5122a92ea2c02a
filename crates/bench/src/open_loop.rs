//! Open loop: requests at a fixed rate, whatever the server does.
//!
//! Request `i` is *intended* to be sent at `start + i / rate` and goes to connection
//! `i % connections`. Latency is measured from that intended instant to the response's last
//! byte, so when the server stalls, the requests queued behind the stall are charged the
//! wait (no coordinated omission: a slow answer cannot silently slow the load down).
//!
//! Pacing. A dedicated OS thread (the pacer) walks the schedule, sleeps with
//! `std::thread::sleep` until each intended instant and hands it to its connection's task
//! over a channel; the task sends as soon as it can. Why not `tokio::time::sleep_until` in
//! each task: tokio's timer wheel has 1 ms resolution and rounds deadlines up, so every send
//! would leave on average ~0.5 ms after its intended time, and because latency is measured
//! from the intended time, that generator-side delay would be added to every sample — it
//! would dominate the p50 of a server answering in ~100 µs. Measuring from the intended time
//! keeps the numbers honest about *backlog* whatever the timer does, but not about timer
//! slack. A thread sleep on Linux overshoots by ~50–70 µs (timer slack), so the pacer sleeps
//! until `pacer_spin` (default 50 µs, at most half the interval) before the intended time and
//! polls the clock for the rest, which costs a little CPU (`--spin-us 0` turns it off). When
//! the rate is higher than the sleep granularity the pacer simply releases every request that
//! has come due in one go (each keeps its own intended time). The report's `send_lag_us` shows
//! how late sends actually left, which tells a generator limit apart from a server one.
//!
//! Backlog. A connection that falls behind still sends in order; a request whose intended
//! time is more than `max_lag` in the past when its turn comes is skipped and counted as
//! `dropped_late`, so that a dead server cannot make the run last forever.
//!
//! HTTP connections carry one request at a time (keep-alive, no pipelining), like a browser
//! or wrk. Binary TCP connections write each request when due without waiting for earlier
//! answers — the protocol answers in order, so each response is matched to the oldest
//! outstanding request.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

use crate::config::{OpenConfig, Transport};
use crate::http_client::{HttpConn, HttpRequest};
use crate::report::{Mode, Report, RunShape};
use crate::stats::{ConnStats, OrderCheck};
use crate::tcp_client::{self, FrameReader};
use crate::timeline::{merge_all, preconnect, until_deadline, Timeline, RECONNECT_PAUSE};

/// The open-loop schedule: when each request is due and which connection sends it.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    rate: f64,
    connections: usize,
    span: Duration,
}

impl Schedule {
    /// `rate` requests per second over `connections` for `span`.
    pub fn new(rate: f64, connections: usize, span: Duration) -> Schedule {
        Schedule {
            rate,
            connections: connections.max(1),
            span,
        }
    }

    /// Offset of request `i`'s intended send time from the start: `i / rate`.
    pub fn offset(&self, i: u64) -> Duration {
        // Computed from `i` each time rather than by adding intervals, so rounding never
        // accumulates over a long run.
        Duration::from_nanos((i as f64 * 1e9 / self.rate).round() as u64)
    }

    /// Number of requests whose offset falls inside the span.
    pub fn len(&self) -> u64 {
        let mut n = (self.span.as_secs_f64() * self.rate).ceil() as u64;
        while n > 0 && self.offset(n - 1) >= self.span {
            n -= 1;
        }
        while self.offset(n) < self.span {
            n += 1;
        }
        n
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The connection that sends request `i` (round-robin).
    pub fn connection(&self, i: u64) -> usize {
        (i % self.connections as u64) as usize
    }
}

/// The pacer: releases each request to its connection at its intended time. Runs on its own
/// thread (see the module docs for why). Returns when the schedule is done or every
/// connection task is gone.
fn pace(
    schedule: Schedule,
    start: Instant,
    spin: Duration,
    senders: Vec<mpsc::UnboundedSender<Instant>>,
) {
    pace_with(schedule, start, spin, |i, at| {
        senders[schedule.connection(i)].send(at).is_ok() || !senders.iter().all(|s| s.is_closed())
    });
}

/// The pacer's clock: calls `release(i, intended)` for each request `i` of the schedule at its
/// intended time, in order, until the schedule is done or `release` returns false. Blocks the
/// calling thread (run it on its own thread).
pub(crate) fn pace_with(
    schedule: Schedule,
    start: Instant,
    spin: Duration,
    mut release: impl FnMut(u64, Instant) -> bool,
) {
    // Polling for longer than half an interval would keep the thread busy for good at high
    // rates, where sleeping and releasing what has come due in batches works as well.
    let spin = spin.min(schedule.offset(1) / 2);
    for i in 0..schedule.len() {
        let at = start + schedule.offset(i);
        let now = Instant::now();
        if at > now + spin {
            std::thread::sleep(at - spin - now);
        }
        // The last stretch: yield rather than spin, to stay polite on a shared machine.
        while Instant::now() < at {
            std::thread::yield_now();
        }
        if !release(i, at) {
            return;
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Ctx {
    addr: SocketAddr,
    timeline: Timeline,
    max_lag: Duration,
}

impl Ctx {
    fn too_late(&self, intended: Instant, now: Instant) -> bool {
        now.saturating_duration_since(intended) > self.max_lag
    }
}

/// Runs an open-loop load and returns its report.
pub async fn run_open(cfg: &OpenConfig) -> anyhow::Result<Report> {
    cfg.validate()?;
    let load = &cfg.load;
    let addr = load.resolve().await?;
    let tokens = load.tokens()?;
    let n = load.connections;

    let mut receivers = Vec::with_capacity(n);
    let mut senders = Vec::with_capacity(n);
    for _ in 0..n {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        receivers.push(rx);
    }

    let mut handles = Vec::with_capacity(n);
    let timeline;
    match load.transport {
        Transport::Http => {
            let conns = preconnect(n, |_| HttpConn::connect(addr)).await;
            timeline = Timeline::starting_now(load);
            let ctx = Ctx {
                addr,
                timeline,
                max_lag: cfg.max_lag,
            };
            let body = load.order.json_body();
            for (c, (conn, rx)) in conns.into_iter().zip(receivers).enumerate() {
                let request = load.http_request(&tokens[load.account_of(c)], &body, c);
                handles.push(tokio::spawn(http_conn(ctx, conn, request, rx)));
            }
        }
        Transport::Tcp => {
            let conns = preconnect(n, |_| tcp_client::connect(addr)).await;
            timeline = Timeline::starting_now(load);
            let ctx = Ctx {
                addr,
                timeline,
                max_lag: cfg.max_lag,
            };
            for (c, (conn, rx)) in conns.into_iter().zip(receivers).enumerate() {
                let frame = tcp_client::build_frame(&tokens[load.account_of(c)], &load.order);
                handles.push(tokio::spawn(tcp_conn(ctx, conn, frame, rx)));
            }
        }
    }

    let schedule = Schedule::new(cfg.rate, n, timeline.end - timeline.start);
    let spin = cfg.pacer_spin;
    let pacer = tokio::task::spawn_blocking(move || pace(schedule, timeline.start, spin, senders));
    let poller = cfg.busy_poll.then(|| {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = stop.clone();
        let task = tokio::spawn(async move {
            // Every yield lets the worker run ready tasks and, every few dozen, poll the IO
            // driver without blocking: readiness is found, never signalled.
            while !s.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::task::yield_now().await;
            }
        });
        (stop, task)
    });
    let stats = merge_all(handles).await?;
    pacer.await?;
    if let Some((stop, task)) = poller {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        task.await?;
    }

    Ok(Report::new(
        RunShape {
            mode: Mode::Open,
            transport: load.transport,
            target_rate: Some(cfg.rate),
            duration: load.duration,
            warmup: load.warmup,
            connections: n,
            accounts: load.accounts,
            window: None,
        },
        &stats,
    ))
}

/// Requests still queued when a task stopped were never sent: they count as dropped.
fn drain_unsent(ctx: &Ctx, rx: &mut mpsc::UnboundedReceiver<Instant>, stats: &mut ConnStats) {
    rx.close();
    while let Ok(intended) = rx.try_recv() {
        if ctx.timeline.measured(intended) {
            stats.dropped_late += 1;
        }
    }
}

/// One HTTP connection: one request at a time, each sent when due (or as soon as the previous
/// answer is in, if that is later).
async fn http_conn(
    ctx: Ctx,
    mut conn: Option<HttpConn>,
    mut request: HttpRequest,
    mut rx: mpsc::UnboundedReceiver<Instant>,
) -> ConnStats {
    let mut stats = ConnStats::new();
    if conn.is_none() {
        stats.connect_errors += 1;
    }
    until_deadline(ctx.timeline.deadline, async {
        while let Some(intended) = rx.recv().await {
            let measured = ctx.timeline.measured(intended);
            loop {
                let now = Instant::now();
                if ctx.too_late(intended, now) {
                    if measured {
                        stats.dropped_late += 1;
                    }
                    break;
                }
                if conn.is_none() {
                    match HttpConn::connect(ctx.addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            stats.connect_errors += 1;
                            tokio::time::sleep(RECONNECT_PAUSE).await;
                            continue;
                        }
                    }
                }
                if conn.is_none() {
                    continue;
                }
                let sent_at = Instant::now();
                if measured {
                    stats.sent += 1;
                    stats.record_send_lag(sent_at - intended);
                }
                stats
                    .http_exchange(&mut conn, request.next_bytes(), measured, intended)
                    .await;
                break;
            }
        }
    })
    .await;
    drain_unsent(&ctx, &mut rx, &mut stats);
    stats
}

/// What woke a TCP connection task.
enum Event {
    Readable(std::io::Result<()>),
    Due(Option<Instant>),
}

/// One binary TCP connection: frames are written when due, without waiting for earlier
/// answers; answers are matched to the oldest outstanding frame.
async fn tcp_conn(
    ctx: Ctx,
    mut stream: Option<TcpStream>,
    frame: [u8; switchyard_protocol::v3frame::REQUEST_LEN],
    mut rx: mpsc::UnboundedReceiver<Instant>,
) -> ConnStats {
    let mut stats = ConnStats::new();
    if stream.is_none() {
        stats.connect_errors += 1;
    }
    // (intended time, measured) of each frame written and not yet answered.
    let mut inflight: VecDeque<(Instant, bool)> = VecDeque::new();
    let mut reader = FrameReader::new();
    let mut order = OrderCheck::default();
    let mut wbuf: Vec<u8> = Vec::with_capacity(16 * frame.len());
    let mut schedule_done = false;

    until_deadline(ctx.timeline.deadline, async {
        loop {
            if schedule_done && inflight.is_empty() {
                return;
            }
            if stream.is_none() {
                // Whatever was outstanding died with the old connection (it shows up as
                // `sent - completed`); a new connection may be a new session.
                inflight.clear();
                reader.clear();
                order.reset();
                if schedule_done || (rx.is_closed() && rx.is_empty()) {
                    return;
                }
                match tcp_client::connect(ctx.addr).await {
                    Ok(s) => stream = Some(s),
                    Err(_) => {
                        stats.connect_errors += 1;
                        tokio::time::sleep(RECONNECT_PAUSE).await;
                        continue;
                    }
                }
            }
            let Some(s) = stream.as_mut() else { continue };

            // Reads first (biased), so answers are timed as soon as they are there.
            let event = tokio::select! {
                biased;
                r = reader.fill(s), if !inflight.is_empty() => Event::Readable(r),
                t = rx.recv(), if !schedule_done => Event::Due(t),
            };
            match event {
                Event::Readable(Err(_)) => {
                    stats.io_errors += 1;
                    stream = None;
                }
                Event::Readable(Ok(())) => {
                    let now = Instant::now();
                    while let Some(resp) = reader.next_frame() {
                        let Some((intended, measured)) = inflight.pop_front() else {
                            // An answer to nothing: the stream is out of step; start over.
                            stats.io_errors += 1;
                            stream = None;
                            break;
                        };
                        if measured {
                            stats.record_latency(now - intended);
                            tcp_client::record(&mut stats, &mut order, &resp);
                        }
                    }
                }
                Event::Due(None) => schedule_done = true,
                Event::Due(Some(first)) => {
                    // Write every frame that is due in one go: under backlog this batches.
                    wbuf.clear();
                    let now = Instant::now();
                    let mut next = Some(first);
                    while let Some(intended) = next {
                        let measured = ctx.timeline.measured(intended);
                        if ctx.too_late(intended, now) {
                            if measured {
                                stats.dropped_late += 1;
                            }
                        } else {
                            wbuf.extend_from_slice(&frame);
                            inflight.push_back((intended, measured));
                            if measured {
                                stats.sent += 1;
                                stats.record_send_lag(now - intended);
                            }
                        }
                        next = rx.try_recv().ok();
                    }
                    if !wbuf.is_empty() && s.write_all(&wbuf).await.is_err() {
                        stats.io_errors += 1;
                        stream = None;
                    }
                }
            }
        }
    })
    .await;
    drain_unsent(&ctx, &mut rx, &mut stats);
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: intended times are i/rate from the start, spread round-robin over connections,
    // and exactly the requests inside the span are scheduled.
    #[test]
    fn schedule_intended_times() {
        let s = Schedule::new(1000.0, 4, Duration::from_secs(1));
        assert_eq!(s.offset(0), Duration::ZERO);
        assert_eq!(s.offset(1), Duration::from_millis(1));
        assert_eq!(s.offset(999), Duration::from_millis(999));
        assert_eq!(s.len(), 1000);
        assert_eq!(
            (0..8).map(|i| s.connection(i)).collect::<Vec<_>>(),
            [0, 1, 2, 3, 0, 1, 2, 3]
        );
        // Connection 2 sends requests 2, 6, 10, ...: every 4 ms, starting at 2 ms.
        let c2: Vec<_> = (0..s.len())
            .filter(|&i| s.connection(i) == 2)
            .take(3)
            .map(|i| s.offset(i))
            .collect();
        assert_eq!(c2, [2, 6, 10].map(Duration::from_millis));

        // Fractional rates and a span that is not a whole number of intervals.
        let s = Schedule::new(3.0, 1, Duration::from_millis(1500));
        assert_eq!(s.offset(1), Duration::from_nanos(333_333_333));
        assert_eq!(s.len(), 5); // 0, 0.33, 0.67, 1.0, 1.33 s
        let s = Schedule::new(0.5, 1, Duration::from_secs(1));
        assert_eq!(s.len(), 1);
    }

    // Goal: offsets do not drift over a long, fast run (no accumulated rounding).
    #[test]
    fn schedule_does_not_drift() {
        let s = Schedule::new(7_000.0, 64, Duration::from_secs(3600));
        assert_eq!(s.len(), 7_000 * 3600);
        assert_eq!(s.offset(7_000 * 1800), Duration::from_secs(1800));
    }

    // Goal: the pacer releases each request to its connection at (not before) its intended
    // time, in order.
    #[test]
    fn pacer_releases_on_time() {
        let s = Schedule::new(200.0, 2, Duration::from_millis(100));
        let (tx0, mut rx0) = mpsc::unbounded_channel();
        let (tx1, mut rx1) = mpsc::unbounded_channel();
        let start = Instant::now();
        pace(s, start, Duration::from_micros(50), vec![tx0, tx1]);
        let mut got = Vec::new();
        while let Ok(t) = rx0.try_recv() {
            got.push(t - start);
        }
        assert_eq!(got.len(), 10);
        assert_eq!(got[1], Duration::from_millis(10));
        let mut n1 = 0;
        while let Ok(t) = rx1.try_recv() {
            assert_eq!((t - start).as_nanos() % 10_000_000, 5_000_000);
            n1 += 1;
        }
        assert_eq!(n1, 10);
        // The pacer slept until the last one was due.
        assert!(start.elapsed() >= Duration::from_millis(95));
    }
}
