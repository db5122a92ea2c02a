//! One session per venue: a thread that connects, logs on and writes, and per connection a
//! reader thread that applies what the venue says. Blocking std I/O on purpose: a handful of
//! connections, each with a steady stream of small lines, and a reader that may wait on a
//! full journal queue without holding up anything else.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, BufWriter, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use switchyard_core::{OrderEvent, OrderId, OrderStatus, OrderType, Symbol};
use switchyard_protocol::venue::{
    decode_from_venue, encode_line, ExecReport, FromVenue, Heartbeat, Logon, LogonAck, NewOrderMsg,
    OrderRef, ReplaceMsg, Resend, ToVenue, LINE_MAX,
};

use super::{apply_report, Cmd, Quote, VenueLink};
use crate::clock::wall_ns;
use crate::orders::{apply_event, Order};
use crate::records::{
    order_ref, parse_order_ref, ExecutionRecord, OrderChange, VenueSent, KIND_CANCEL_SENT,
    KIND_EXECUTION_REPORT, KIND_ORDER_SENT, KIND_ORDER_UPDATED, KIND_REPLACE_SENT,
};
use crate::state::{DurableTask, Gateway, Task};

const BACKOFF_MIN: Duration = Duration::from_millis(50);
/// A venue silent for this many heartbeat intervals is gone.
const SILENT_INTERVALS: u32 = 3;
/// How often a writer waiting for status answers looks whether it may send more.
const SWEEP_POLL: Duration = Duration::from_millis(1);

/// Registers replayed open orders with their venues and starts one session thread per venue.
pub fn start(gw: &Arc<Gateway>) -> std::io::Result<Vec<JoinHandle<()>>> {
    gw.venues.resume(gw);
    let mut threads = Vec::new();
    for link in &gw.venues.links {
        let (gw, link) = (gw.clone(), link.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("venue-{}", link.name))
                .spawn(move || {
                    crate::sched::background();
                    run(gw, link)
                })?,
        );
    }
    Ok(threads)
}

fn stopped(gw: &Gateway) -> bool {
    gw.venues.stop.load(Ordering::Acquire)
}

fn run(gw: Arc<Gateway>, link: Arc<VenueLink>) {
    let max = Duration::from_millis(gw.cfg.venues.reconnect_max_ms);
    let mut backoff = BACKOFF_MIN;
    let mut failures = 0u64;
    while !stopped(&gw) {
        match Connection::open(&gw, &link) {
            Ok(conn) => {
                backoff = BACKOFF_MIN;
                failures = 0;
                conn.serve(&gw, &link);
            }
            Err(e) => {
                // Every failure while a venue is down would flood the log: the first, then
                // every hundredth.
                if failures.is_multiple_of(100) {
                    tracing::warn!(venue = %link.name, addr = %link.addr, %e, "venue connect failed");
                }
                failures += 1;
                let until = Instant::now() + backoff;
                while Instant::now() < until && !stopped(&gw) {
                    std::thread::sleep(Duration::from_millis(10));
                }
                backoff = (backoff * 2).min(max);
            }
        }
    }
}

/// Reads newline-terminated lines, at most `LINE_MAX` bytes, across read timeouts.
struct LineReader {
    inner: BufReader<TcpStream>,
    buf: Vec<u8>,
}

enum Line {
    /// A whole line (without `\n`) is in `buf`.
    Ready,
    /// The read timed out; what was read so far stays buffered.
    Idle,
    Closed,
}

impl LineReader {
    fn next(&mut self) -> std::io::Result<Line> {
        let room = (LINE_MAX + 1).saturating_sub(self.buf.len()) as u64;
        match (&mut self.inner)
            .take(room)
            .read_until(b'\n', &mut self.buf)
        {
            Ok(_) if self.buf.last() == Some(&b'\n') => {
                self.buf.pop();
                Ok(Line::Ready)
            }
            Ok(_) if self.buf.len() > LINE_MAX => Err(std::io::Error::new(
                ErrorKind::InvalidData,
                "venue line longer than LINE_MAX",
            )),
            Ok(_) => Ok(Line::Closed),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Ok(Line::Idle)
            }
            Err(e) => Err(e),
        }
    }
}

/// The writing half of a connection.
struct Writer {
    out: BufWriter<TcpStream>,
    /// Per-connection sequence number of the next gateway message (LOGON is 1).
    out_seq: u64,
    /// The line being written, reused.
    line: Vec<u8>,
}

impl Writer {
    /// Writes one message with the next sequence number (buffered; the caller flushes).
    fn write(&mut self, mut msg: ToVenue) -> std::io::Result<()> {
        msg.set_seq(self.out_seq);
        self.out_seq += 1;
        self.line.clear();
        encode_line(&msg, &mut self.line);
        self.out.write_all(&self.line)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }
}

struct Connection {
    stream: TcpStream,
    writer: Writer,
    lines: LineReader,
    heartbeat: Duration,
}

impl Connection {
    /// Connects, logs on with the highest report number applied, waits for `LOGON_ACK`.
    fn open(gw: &Gateway, link: &VenueLink) -> std::io::Result<Connection> {
        let cfg = &gw.cfg.venues;
        let timeout = Duration::from_millis(cfg.logon_timeout_ms);
        let addr = link.addr.to_socket_addrs()?.next().ok_or_else(|| {
            std::io::Error::new(ErrorKind::NotFound, "venue address resolves to nothing")
        })?;
        let stream = TcpStream::connect_timeout(&addr, timeout)?;
        stream.set_nodelay(true)?;
        let heartbeat = Duration::from_millis(cfg.heartbeat_ms);
        stream.set_read_timeout(Some(heartbeat.min(timeout)))?;
        let mut conn = Connection {
            writer: Writer {
                out: BufWriter::new(stream.try_clone()?),
                out_seq: 1,
                line: Vec::with_capacity(256),
            },
            lines: LineReader {
                inner: BufReader::new(stream.try_clone()?),
                buf: Vec::with_capacity(512),
            },
            stream,
            heartbeat,
        };
        conn.writer.write(logon_message(gw, link))?;
        conn.writer.flush()?;
        let deadline = Instant::now() + timeout;
        loop {
            match conn.lines.next()? {
                Line::Ready => {
                    let msg = decode_from_venue(&conn.lines.buf);
                    conn.lines.buf.clear();
                    match msg {
                        Ok(FromVenue::LogonAck(ack)) => {
                            on_logon_ack(link, &ack);
                            tracing::info!(venue = %link.name, venue_name = %ack.venue,
                                venue_last_seq = ack.last_seq, our_last_seq = link.seq_through(),
                                "venue session logged on");
                            if ack.heartbeat_ms > 0 {
                                conn.heartbeat = Duration::from_millis(ack.heartbeat_ms)
                                    .max(Duration::from_millis(cfg.heartbeat_ms));
                            }
                            conn.stream.set_read_timeout(Some(conn.heartbeat))?;
                            return Ok(conn);
                        }
                        Ok(FromVenue::Reject(r)) => {
                            return Err(std::io::Error::new(
                                ErrorKind::PermissionDenied,
                                format!("logon refused: {}", r.reason),
                            ))
                        }
                        _ => {}
                    }
                }
                Line::Idle if Instant::now() < deadline => {}
                Line::Idle => return Err(std::io::Error::new(ErrorKind::TimedOut, "no LOGON_ACK")),
                Line::Closed => {
                    return Err(std::io::Error::new(
                        ErrorKind::ConnectionAborted,
                        "venue closed before LOGON_ACK",
                    ))
                }
            }
        }
    }

    /// Runs the session until the connection fails, the venue goes silent or shutdown.
    fn serve(self, gw: &Arc<Gateway>, link: &Arc<VenueLink>) {
        let Connection {
            stream,
            mut writer,
            lines,
            heartbeat,
        } = self;
        let alive = Arc::new(AtomicBool::new(true));
        let reader = {
            let (gw, link, alive) = (gw.clone(), link.clone(), alive.clone());
            std::thread::Builder::new()
                .name(format!("venue-{}-rx", link.name))
                .spawn(move || {
                    crate::sched::background();
                    read_loop(&gw, &link, lines, heartbeat);
                    alive.store(false, Ordering::Release);
                })
        };
        let Ok(reader) = reader else {
            return;
        };
        if link.logons.fetch_add(1, Ordering::Relaxed) > 0 {
            link.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        link.up.store(true, Ordering::Release);
        let result = write_loop(gw, link, &mut writer, heartbeat, &alive);
        link.up.store(false, Ordering::Release);
        if let Err(e) = result {
            tracing::warn!(venue = %link.name, %e, "venue session ended");
        }
        let _ = stream.shutdown(Shutdown::Both);
        let _ = reader.join();
    }
}

// ---- One session's decisions, without a socket --------------------------------------------
//
// The session threads above own the sockets, the timers and the threads; what they decide is
// in the functions below, which the deterministic simulation (`crates/sim`) also calls from its
// single thread, with its own network in between.

/// The `LOGON` every connection opens with: who the gateway is and the highest report number
/// it applied without a gap, so the venue resends what came after.
pub fn logon_message(gw: &Gateway, link: &VenueLink) -> ToVenue {
    let cfg = &gw.cfg.venues;
    ToVenue::Logon(Logon {
        seq: 0,
        gateway_id: cfg.gateway_id.clone(),
        last_seq: link.seq_through(),
        heartbeat_ms: cfg.heartbeat_ms,
        observer: false,
    })
}

/// What a `LOGON_ACK` changes: a venue behind what was applied lost its reports (a
/// memory-only venue restarted), so numbering continues from where it is, and the status
/// sweep after logon finds what it no longer knows.
pub fn on_logon_ack(link: &VenueLink, ack: &LogonAck) {
    if ack.last_seq < link.seq_through() {
        tracing::warn!(venue = %link.name, venue_last_seq = ack.last_seq,
            our_last_seq = link.seq_through(),
            "venue is behind what was applied: it lost its state");
        link.reset_seq(ack.last_seq);
    }
}

/// What a session sends right after logon. Repairs first, handed to `write` at once: an order
/// the venue never acknowledged gets its NEW again (idempotent at the venue), a pending cancel
/// its CANCEL again — a flaky connection may give a session little time, and a STATUS round
/// trip first would spend it. Then the returned sweep: a STATUS for every order the venue
/// should hold, whose answer shows what else a disconnect swallowed (an amend, a venue that
/// lost its state). Orders go oldest first.
pub fn after_logon<E>(
    gw: &Gateway,
    link: &VenueLink,
    mut write: impl FnMut(ToVenue) -> Result<(), E>,
) -> Result<StatusSweep, E> {
    let mut ask = VecDeque::new();
    for (id, account) in link.tracked() {
        let state = gw
            .orders
            .lock(&account.id)
            .get(&account.id, id)
            .filter(|o| o.sent && !o.status.is_final())
            .map(|o| (o.acked, o.status == OrderStatus::CancelRequested));
        let repair = match state {
            None => continue,
            Some((false, _)) => Cmd::New(id),
            Some((true, true)) => Cmd::Cancel(id),
            Some((true, false)) => {
                ask.push_back(id);
                continue;
            }
        };
        if let Some(m) = prepare(gw, link, repair) {
            write(m)?;
        }
    }
    Ok(StatusSweep {
        ask,
        sent: 0,
        answered_at_start: link.status_answers.load(Ordering::Acquire),
        progress: (0, Instant::now()),
    })
}

/// The STATUS requests of the sweep after a logon, for the writer to send at most `window`
/// unanswered at a time. Every STATUS is answered with a numbered status report; a venue
/// holding hundreds of thousands of open orders would otherwise queue as many answers at once,
/// more than a session's outbound queue takes, and drop the session — whose next logon starts
/// the sweep again. (The soak found it: with 450 000 resting orders per venue the sessions
/// reconnected every second, for good.)
#[derive(Debug)]
pub struct StatusSweep {
    ask: VecDeque<OrderId>,
    sent: u64,
    /// `VenueLink::status_answers` when the sweep began: answers since then are its credit.
    answered_at_start: u64,
    /// Answers counted, and when that count last moved (for the stall rule).
    progress: (u64, Instant),
}

impl StatusSweep {
    /// Every request sent.
    pub fn is_empty(&self) -> bool {
        self.ask.is_empty()
    }

    /// Every request at once, for a caller that paces delivery itself (the simulation).
    pub fn into_messages(self) -> impl Iterator<Item = ToVenue> {
        self.ask.into_iter().map(status_request)
    }

    /// The next request if fewer than `window` are unanswered. Answers that stop coming for
    /// `stall` (a venue that does not answer some STATUS) count the ones outstanding as
    /// answered, so the sweep never hangs.
    fn next(&mut self, link: &VenueLink, window: u64, stall: Duration) -> Option<ToVenue> {
        let id = *self.ask.front()?;
        let answered = link
            .status_answers
            .load(Ordering::Acquire)
            .wrapping_sub(self.answered_at_start);
        let now = Instant::now();
        if answered != self.progress.0 {
            self.progress = (answered, now);
        }
        if self.sent.saturating_sub(answered) >= window {
            if now.duration_since(self.progress.1) < stall {
                return None;
            }
            tracing::warn!(venue = %link.name, unanswered = self.sent - answered,
                "status sweep: answers stopped; going on");
            self.answered_at_start = self.answered_at_start.wrapping_sub(self.sent - answered);
            self.progress = (self.sent, now);
        }
        self.ask.pop_front();
        self.sent += 1;
        Some(status_request(id))
    }
}

fn status_request(id: OrderId) -> ToVenue {
    ToVenue::Status(OrderRef {
        seq: 0,
        order_id: order_ref(id),
    })
}

/// The next command queued for the session as the message to write: `None` when the queue
/// is empty, `Some(None)` when the command needs no message (its order is final, or the
/// gateway decided alone).
pub fn next_message(gw: &Gateway, link: &VenueLink) -> Option<Option<ToVenue>> {
    let cmd = link.rx.try_recv().ok()?;
    Some(prepare(gw, link, cmd))
}

/// Applies one message from the venue as the session's reader does. `resend(from)` is called
/// when reports from `from` on must be asked for again (the caller decides how often).
pub fn on_venue_message(
    gw: &Gateway,
    link: &VenueLink,
    msg: FromVenue,
    resend: &mut dyn FnMut(u64),
) {
    match msg {
        FromVenue::Exec(er) => on_report(gw, link, er),
        FromVenue::Heartbeat(hb) => {
            if hb.last_seq > link.seq_through() {
                resend(link.seq_through() + 1);
            }
        }
        FromVenue::Tob(t) => {
            if let Ok(sym) = Symbol::parse(t.symbol.as_bytes()) {
                link.set_quote(
                    sym,
                    Quote {
                        bid: t.bid,
                        ask: t.ask,
                    },
                );
            }
        }
        FromVenue::Reject(r) => {
            tracing::warn!(venue = %link.name, ref_seq = r.ref_seq, reason = %r.reason,
                "venue rejected a message");
        }
        FromVenue::LogonAck(_) => {}
    }
}

fn write_loop(
    gw: &Gateway,
    link: &VenueLink,
    w: &mut Writer,
    heartbeat: Duration,
    alive: &AtomicBool,
) -> std::io::Result<()> {
    let mut sweep = after_logon(gw, link, |m| w.write(m))?;
    w.flush()?;
    let window = gw.cfg.venues.status_window;
    let stall = heartbeat * SILENT_INTERVALS;
    let tick = heartbeat / 2;
    let mut last_write = Instant::now();
    while alive.load(Ordering::Acquire) && !stopped(gw) {
        if !sweep.is_empty() {
            let mut wrote = false;
            while let Some(m) = sweep.next(link, window, stall) {
                w.write(m)?;
                wrote = true;
            }
            if wrote {
                w.flush()?;
                last_write = Instant::now();
            }
        }
        // While the sweep waits for answers, look again soon; commands still come first.
        let wait = if sweep.is_empty() {
            tick
        } else {
            SWEEP_POLL.min(tick)
        };
        match link.rx.recv_timeout(wait) {
            Ok(cmd) => {
                if let Some(msg) = prepare(gw, link, cmd) {
                    w.write(msg)?;
                    last_write = Instant::now();
                }
                if link.rx.is_empty() {
                    w.flush()?;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if last_write.elapsed() >= heartbeat {
                    w.write(ToVenue::Heartbeat(Heartbeat::default()))?;
                    w.flush()?;
                    last_write = Instant::now();
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
    }
    Ok(())
}

/// Journals records of one account's orders through its shard engine, after the decision
/// they record was made under the account's partition lock (and that lock was released).
/// Blocks while the shard queue is full: a venue session slows down rather than drop a record.
fn journal(gw: &Gateway, account: Option<&str>, records: Vec<(u16, Vec<u8>)>) {
    if records.is_empty() {
        return;
    }
    let shard = account.map_or(0, |a| gw.account_shard(a));
    let task = Task::Durable(DurableTask {
        records,
        meta: None,
    });
    if gw.shards[shard as usize].tx.send(task).is_err() {
        tracing::error!("journal queue closed: venue records not journaled");
    }
}

fn order_updated(o: &Order) -> (u16, Vec<u8>) {
    let mut p = Vec::with_capacity(32 + o.account.id.len());
    OrderChange {
        order_id: o.id,
        status: o.status,
        filled: o.filled,
        account_id: &o.account.id,
    }
    .encode(&mut p);
    (KIND_ORDER_UPDATED, p)
}

fn venue_sent(kind: u16, o: &Order, venue: &str) -> (u16, Vec<u8>) {
    let mut p = Vec::with_capacity(32 + o.account.id.len());
    VenueSent {
        order_id: o.id,
        account_id: &o.account.id,
        venue,
    }
    .encode(&mut p);
    (kind, p)
}

/// Cancels an order the venue never got: no venue message, the gateway decides.
fn cancel_here(gw: &Gateway, o: &mut Order, now_ms: u64) -> Vec<(u16, Vec<u8>)> {
    if crate::orders::cancel_without_venue(gw, o, now_ms) {
        vec![order_updated(o)]
    } else {
        Vec::new()
    }
}

/// Turns a queued command into the message to write, after recording the decision (status,
/// journal, stream) under the account's partition lock. `None`: nothing to send.
fn prepare(gw: &Gateway, link: &VenueLink, cmd: Cmd) -> Option<ToVenue> {
    let id = match cmd {
        Cmd::Resend(from) => {
            link.resends.fetch_add(1, Ordering::Relaxed);
            return Some(ToVenue::Resend(Resend {
                seq: 0,
                from_seq: from,
            }));
        }
        Cmd::New(id) | Cmd::Cancel(id) | Cmd::Replace(id) => id,
    };
    let account = link.account_of(id)?;
    let now_ns = wall_ns();
    let now_ms = now_ns / 1_000_000;
    let mut part = gw.orders.lock(&account.id);
    let o = part.get_mut(&account.id, id)?;
    if o.status.is_final() {
        drop(part);
        link.untrack(id);
        return None;
    }
    let oref = order_ref(id);
    let (records, msg) = match cmd {
        Cmd::New(_) | Cmd::Cancel(_)
            if !o.sent && !o.maybe_sent && o.status == OrderStatus::CancelRequested =>
        {
            (cancel_here(gw, o, now_ms), None)
        }
        Cmd::New(_) => {
            let resend = o.sent;
            if !o.sent {
                o.sent = true;
                gw.metrics
                    .accept_to_sent
                    .record(now_ns.saturating_sub(o.accepted_ns));
            }
            if apply_event(o, OrderEvent::Sent, now_ms) {
                o.publish(&gw.hub, "order_update");
            }
            let n = &o.order;
            let msg = ToVenue::New(NewOrderMsg {
                seq: 0,
                order_id: oref,
                symbol: Some(n.symbol.as_str().to_string()),
                side: Some(n.side.as_str().to_string()),
                qty: Some(n.qty),
                price: (n.order_type == OrderType::Limit).then_some(n.price),
                order_type: Some(n.order_type.as_str().to_string()),
                time_in_force: Some(n.time_in_force.as_str().to_string()),
            });
            if o.status == OrderStatus::CancelRequested {
                // A resend of an order whose cancel is pending: the cancel follows it.
                link.send(Cmd::Cancel(id));
            } else if resend && o.amend.is_some_and(|a| a.durable) {
                // Likewise a durable amend: its REPLACE may have been lost with the NEW (a
                // venue that never saw the order answers the NEW afresh, with no status to
                // show the amend missing).
                link.send(Cmd::Replace(id));
            }
            (vec![venue_sent(KIND_ORDER_SENT, o, &link.name)], Some(msg))
        }
        Cmd::Cancel(_) if !o.sent => (Vec::new(), None),
        Cmd::Cancel(_) => (
            vec![venue_sent(KIND_CANCEL_SENT, o, &link.name)],
            Some(ToVenue::Cancel(OrderRef {
                seq: 0,
                order_id: oref,
            })),
        ),
        Cmd::Replace(_) => match o.amend {
            Some(a) if o.sent => (
                vec![venue_sent(KIND_REPLACE_SENT, o, &link.name)],
                Some(ToVenue::Replace(ReplaceMsg {
                    seq: 0,
                    order_id: oref,
                    qty: Some(a.qty),
                    price: (a.price > 0).then_some(a.price),
                })),
            ),
            _ => (Vec::new(), None),
        },
        Cmd::Resend(_) => (Vec::new(), None),
    };
    let done = o.status.is_final();
    drop(part);
    journal(gw, Some(&account.id), records);
    if done {
        link.untrack(id);
    }
    msg
}

fn read_loop(gw: &Gateway, link: &VenueLink, mut lines: LineReader, heartbeat: Duration) {
    let mut last_heard = Instant::now();
    let mut last_resend: Option<Instant> = None;
    let silent_max = heartbeat * SILENT_INTERVALS;
    // Asks for a resend of a gap, at most once per heartbeat interval (a reordered report
    // usually closes the gap on its own a moment later).
    let ask_resend = |from: u64, last_resend: &mut Option<Instant>| {
        if last_resend.is_none_or(|t| t.elapsed() >= heartbeat) {
            link.send(Cmd::Resend(from));
            *last_resend = Some(Instant::now());
        }
    };
    while !stopped(gw) {
        match lines.next() {
            Ok(Line::Ready) => {
                last_heard = Instant::now();
                match decode_from_venue(&lines.buf) {
                    Ok(msg) => on_venue_message(gw, link, msg, &mut |from| {
                        ask_resend(from, &mut last_resend)
                    }),
                    Err(e) => {
                        tracing::warn!(venue = %link.name, %e, "unreadable venue line skipped");
                    }
                }
                lines.buf.clear();
            }
            Ok(Line::Idle) => {
                if last_heard.elapsed() >= silent_max {
                    tracing::warn!(venue = %link.name, "venue silent for {SILENT_INTERVALS} heartbeats; reconnecting");
                    return;
                }
                if let Some(from) = link.seq_gap() {
                    ask_resend(from, &mut last_resend);
                }
            }
            Ok(Line::Closed) => return,
            Err(e) => {
                tracing::warn!(venue = %link.name, %e, "venue connection failed");
                return;
            }
        }
    }
}

/// Applies one execution report: journal, order, risk, streams — in that order of decision,
/// all under the account's partition lock except the journal hand-off.
fn on_report(gw: &Gateway, link: &VenueLink, er: ExecReport) {
    if er.seq > 0 && link.seq.lock().seen(er.seq) {
        link.duplicates.fetch_add(1, Ordering::Relaxed);
        return;
    }
    link.reports.fetch_add(1, Ordering::Relaxed);
    if er.status_report {
        link.status_answers.fetch_add(1, Ordering::Release);
    }
    let id = parse_order_ref(&er.order_id).unwrap_or(OrderId(0));
    let account = link.account_of(id);
    let rec = ExecutionRecord {
        order_id: id,
        venue_seq: er.seq,
        filled_delta: er.filled_qty_delta,
        filled_total: er.filled_qty_total,
        price: er.price.unwrap_or(0),
        qty: er.qty.unwrap_or(0),
        limit_price: er.limit_price.unwrap_or(0),
        status: er.status,
        status_report: er.status_report,
        account_id: account.as_deref().map_or("", |a| &a.id),
        venue: &link.name,
        reason: er.reason.as_deref().unwrap_or(""),
    };
    let mut payload = Vec::with_capacity(96);
    rec.encode(&mut payload);
    let mut records = vec![(KIND_EXECUTION_REPORT, payload)];
    let mut then = None;
    let mut done = false;
    match &account {
        Some(acc) => {
            let now_ns = wall_ns();
            let mut part = gw.orders.lock(&acc.id);
            if let Some(o) = part.get_mut(&acc.id, id) {
                let a = apply_report(o, &rec, now_ns / 1_000_000);
                gw.hub.publish(
                    &acc.id,
                    Some(&er.order_id),
                    "execution_report",
                    rec.to_json().to_string().into(),
                );
                if a.moved {
                    records.push(order_updated(o));
                    o.publish(&gw.hub, "order_update");
                }
                if a.first_fill {
                    gw.metrics
                        .accept_to_first_fill
                        .record(now_ns.saturating_sub(o.accepted_ns));
                }
                then = a.then;
                done = o.status.is_final();
            }
        }
        None => {
            link.unknown_orders.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(venue = %link.name, order = %er.order_id, "report for an order not held");
        }
    }
    journal(gw, account.as_deref().map(|a| &*a.id), records);
    if done {
        link.untrack(id);
    }
    if let Some(c) = then {
        link.send(c);
    }
    if er.seq > 0 {
        link.seq.lock().mark(er.seq);
    }
}
