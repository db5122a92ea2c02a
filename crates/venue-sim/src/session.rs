//! One TCP connection: a reader thread that cuts and decodes lines and feeds them to the
//! matching thread, and a writer thread that drains the connection's outbound queue.
//!
//! The writer is where latency and wire faults happen, and only there: it holds each
//! message until its due time (the delay queue), sends heartbeats when the connection has
//! been silent for the agreed interval, and, for gateway sessions, duplicates, reorders, loses
//! reports, stalls or drops the connection as configured. The venue's state never sees any
//! of it. The reader closes a logged-on connection that has been silent for three intervals.

use std::io::{self, BufWriter, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use switchyard_protocol::venue::{
    decode_to_venue, encode_line, FromVenue, Heartbeat, LineError, ToVenue, LINE_MAX,
};

use crate::config::FaultConfig;

/// A connection's number, unique for the venue's life.
pub type ConnId = u64;

/// How long a blocked read waits before the reader checks for silence and stalls.
const READ_POLL: Duration = Duration::from_millis(100);
/// How long a connection being closed for a protocol error waits for the peer to close.
const DRAIN_MAX: Duration = Duration::from_secs(5);
/// Silent this many heartbeat intervals: the peer is gone.
const SILENT_INTERVALS: u64 = 3;

/// What the connection threads tell the matching thread.
pub enum Inbound {
    /// A new connection; sent before its reader starts, so it arrives before its lines.
    Connected(NewConn),
    Msg {
        conn: ConnId,
        msg: ToVenue,
    },
    /// A line that is not a valid message; the session goes on.
    BadLine {
        conn: ConnId,
        reason: String,
    },
    /// A line longer than `LINE_MAX`; the session is closed after a `REJECT`.
    TooLong {
        conn: ConnId,
    },
    /// The reader has stopped: the peer closed, an error, or silence.
    Closed {
        conn: ConnId,
    },
    /// Stop the venue.
    Shutdown,
}

/// What the matching thread needs to talk to a new connection.
pub struct NewConn {
    pub id: ConnId,
    pub peer: SocketAddr,
    /// A handle to shut the socket down (takeover, slow consumer, venue shutdown); `None`
    /// without a socket (the in-process venue).
    pub stream: Option<TcpStream>,
    /// The writer's queue.
    pub tx: Sender<Out>,
    pub shared: Arc<ConnShared>,
}

/// State the matching thread and both connection threads share.
pub struct ConnShared {
    /// Heartbeat interval agreed at logon, ms; 0 before an explicit `LOGON` (a reference
    /// gateway gets no heartbeats and is never timed out).
    pub heartbeat_ms: AtomicU64,
    /// Wire faults apply (a gateway session; not an observer, not before logon).
    pub faults: AtomicBool,
    /// Close the connection after three silent heartbeat intervals (a logged-on gateway;
    /// observers are tooling and may idle).
    pub silence_timeout: AtomicBool,
    /// While the writer stalls, the reader must not read either: until this many ms after
    /// `epoch`.
    stall_until_ms: AtomicU64,
    /// Time base of `stall_until_ms`.
    epoch: Instant,
}

impl ConnShared {
    pub(crate) fn new() -> ConnShared {
        ConnShared {
            heartbeat_ms: AtomicU64::new(0),
            faults: AtomicBool::new(false),
            silence_timeout: AtomicBool::new(false),
            stall_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
        }
    }

    fn stalled_for(&self) -> Option<Duration> {
        let until = self.stall_until_ms.load(Ordering::Acquire);
        let now = self.epoch.elapsed().as_millis() as u64;
        (until > now).then(|| Duration::from_millis(until - now))
    }

    fn stall(&self, d: Duration) {
        let until = self.epoch.elapsed() + d;
        self.stall_until_ms
            .store(until.as_millis() as u64, Ordering::Release);
    }
}

/// What a queued line is, for the writer's fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutKind {
    /// A report sent for the first time: faults may hit it.
    Report,
    /// A report sent again (logon catch-up, `RESEND`): never faulted, so recovery converges.
    Resent,
    /// Session traffic: `LOGON_ACK`, `TOB`, `REJECT`, observer answers.
    Control,
    /// Write `line` (may be empty), then close the connection.
    CloseAfter,
}

/// One message for a connection's writer.
pub struct Out {
    /// Not before this instant (the configured delay).
    pub due: Instant,
    pub line: Arc<[u8]>,
    pub kind: OutKind,
    /// Report sequence number carried (or, for `LOGON_ACK`, the venue's last one): the
    /// writer's heartbeats announce the highest it has handled.
    pub seq: u64,
}

/// What every connection of a venue shares: where to send inbound messages and how to
/// misbehave.
pub struct Connector {
    /// Names the connection threads.
    pub venue: String,
    pub inbound: Sender<Inbound>,
    pub faults: FaultConfig,
    /// Mixed with the connection id, seeds each writer's fault dice.
    pub seed: u64,
    /// Bound of each writer's queue.
    pub out_capacity: usize,
    /// Open connections, decremented when a reader ends.
    pub open: Arc<AtomicUsize>,
}

/// Starts the two threads of an accepted connection and announces it to the matching thread.
pub fn start(stream: TcpStream, id: ConnId, c: &Connector) -> io::Result<()> {
    let (venue, inbound, faults, seed) = (&c.venue, &c.inbound, &c.faults, c.seed);
    let (out_capacity, open_conns) = (c.out_capacity, c.open.clone());
    stream.set_nodelay(true)?;
    let peer = stream.peer_addr()?;
    let shared = Arc::new(ConnShared::new());
    let (tx, rx) = crossbeam_channel::bounded(out_capacity);
    let writer = Writer {
        out: BufWriter::with_capacity(64 * 1024, stream.try_clone()?),
        stream: stream.try_clone()?,
        shared: shared.clone(),
        faults: faults.clone(),
        rng: fastrand::Rng::with_seed(seed ^ id.wrapping_mul(0x9E37_79B9_7F4A_7C15)),
        sent: 0,
        until_stall: faults.stall_after,
        max_seq: 0,
        held: None,
        last_write: Instant::now(),
        graceful: false,
    };
    let reader_stream = stream.try_clone()?;
    inbound
        .send(Inbound::Connected(NewConn {
            id,
            peer,
            stream: Some(stream),
            tx,
            shared: shared.clone(),
        }))
        .map_err(|_| io::Error::other("venue stopped"))?;
    std::thread::Builder::new()
        .name(format!("{venue}-wr-{id}"))
        .spawn(move || writer.run(rx))?;
    let inbound = inbound.clone();
    std::thread::Builder::new()
        .name(format!("{venue}-rd-{id}"))
        .spawn(move || {
            read_loop(reader_stream, id, &inbound, &shared);
            open_conns.fetch_sub(1, Ordering::AcqRel);
            let _ = inbound.send(Inbound::Closed { conn: id });
        })?;
    Ok(())
}

fn read_loop(mut stream: TcpStream, id: ConnId, inbound: &Sender<Inbound>, shared: &ConnShared) {
    if stream.set_read_timeout(Some(READ_POLL)).is_err() {
        return;
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut line: Vec<u8> = Vec::with_capacity(LINE_MAX + 1);
    let mut last_rx = Instant::now();
    loop {
        if let Some(d) = shared.stalled_for() {
            std::thread::sleep(d);
            last_rx = Instant::now();
            continue;
        }
        let n = match stream.read(&mut buf) {
            Ok(0) => return,
            Ok(n) => n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                let hb = shared.heartbeat_ms.load(Ordering::Acquire);
                let timed = shared.silence_timeout.load(Ordering::Acquire);
                if timed
                    && hb > 0
                    && last_rx.elapsed() > Duration::from_millis(hb * SILENT_INTERVALS)
                {
                    tracing::info!(
                        conn = id,
                        "peer silent for {SILENT_INTERVALS} heartbeat intervals; closing"
                    );
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
                continue;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return,
        };
        last_rx = Instant::now();
        let mut chunk = &buf[..n];
        while let Some(nl) = chunk.iter().position(|&b| b == b'\n') {
            if line.len() + nl > LINE_MAX + 1 {
                let _ = inbound.send(Inbound::TooLong { conn: id });
                drain(&mut stream, &mut buf);
                return;
            }
            line.extend_from_slice(&chunk[..nl]);
            chunk = &chunk[nl + 1..];
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            // Lines that arrived just before a stall wait for its end.
            while let Some(d) = shared.stalled_for() {
                std::thread::sleep(d);
            }
            if !dispatch(&line, id, inbound) {
                return;
            }
            line.clear();
        }
        line.extend_from_slice(chunk);
        if line.len() > LINE_MAX {
            let _ = inbound.send(Inbound::TooLong { conn: id });
            drain(&mut stream, &mut buf);
            return;
        }
    }
}

/// Reads and discards until the peer closes (or a few seconds pass), so that the socket is
/// closed with nothing unread: closing over unread bytes sends a reset, which can destroy
/// the `REJECT` still on its way to the peer.
fn drain(stream: &mut TcpStream, buf: &mut [u8]) {
    let until = Instant::now() + DRAIN_MAX;
    while Instant::now() < until {
        match stream.read(buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock
                        | io::ErrorKind::TimedOut
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(_) => return,
        }
    }
}

/// Decodes one line and hands it over; false if the venue has stopped.
fn dispatch(line: &[u8], conn: ConnId, inbound: &Sender<Inbound>) -> bool {
    if line.iter().all(u8::is_ascii_whitespace) {
        return true;
    }
    let m = match decode_to_venue(line) {
        Ok(msg) => Inbound::Msg { conn, msg },
        Err(LineError::TooLong) => Inbound::TooLong { conn },
        Err(LineError::Json(e)) => Inbound::BadLine {
            conn,
            reason: format!("BAD_MESSAGE: {e}"),
        },
    };
    inbound.send(m).is_ok()
}

/// The writer's side of a connection.
struct Writer {
    out: BufWriter<TcpStream>,
    /// To shut the socket down when the writer stops.
    stream: TcpStream,
    shared: Arc<ConnShared>,
    faults: FaultConfig,
    rng: fastrand::Rng,
    /// Lines written on this connection, for `drop_after`.
    sent: u64,
    /// Lines left before the next stall (`stall_after` counts down).
    until_stall: u64,
    /// Highest report seq handled (written, lost or held): what heartbeats announce.
    max_seq: u64,
    /// A report held back by the reorder fault, written after the next line.
    held: Option<Arc<[u8]>>,
    /// When the connection last carried a line (heartbeats fill silences).
    last_write: Instant,
    /// Closing after a `REJECT` (the peer should get it): half-close instead of a reset.
    graceful: bool,
}

/// Whether the writer goes on.
enum Flow {
    Go,
    Stop,
}

impl Writer {
    fn run(mut self, rx: Receiver<Out>) {
        let _ = self.serve(&rx);
        let _ = self.out.flush();
        // A protocol-error close only ends our direction: the reader drains what the peer
        // still sends until it closes too. Anything else is an abrupt close.
        let how = if self.graceful {
            Shutdown::Write
        } else {
            Shutdown::Both
        };
        let _ = self.stream.shutdown(how);
    }

    fn serve(&mut self, rx: &Receiver<Out>) -> io::Result<()> {
        loop {
            let msg = match self.heartbeat_deadline() {
                None => match rx.recv() {
                    Ok(m) => m,
                    Err(_) => return self.release_held().map(|_| ()),
                },
                Some(at) => match rx.recv_deadline(at) {
                    Ok(m) => m,
                    Err(RecvTimeoutError::Timeout) => {
                        if let Flow::Stop = self.heartbeat()? {
                            return Ok(());
                        }
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => return self.release_held().map(|_| ()),
                },
            };
            // The delay queue: every message waits the same delay, so order is kept.
            while Instant::now() < msg.due {
                self.out.flush()?;
                let wake = match self.heartbeat_deadline() {
                    Some(hb) if hb < msg.due => hb,
                    _ => msg.due,
                };
                std::thread::sleep(wake.saturating_duration_since(Instant::now()));
                if self
                    .heartbeat_deadline()
                    .is_some_and(|hb| hb <= Instant::now())
                {
                    if let Flow::Stop = self.heartbeat()? {
                        return Ok(());
                    }
                }
            }
            if let Flow::Stop = self.handle(msg)? {
                return Ok(());
            }
            if rx.is_empty() {
                self.out.flush()?;
            }
        }
    }

    fn heartbeat_deadline(&self) -> Option<Instant> {
        let hb = self.shared.heartbeat_ms.load(Ordering::Acquire);
        (hb > 0).then(|| self.last_write + Duration::from_millis(hb))
    }

    fn heartbeat(&mut self) -> io::Result<Flow> {
        if let Flow::Stop = self.release_held()? {
            return Ok(Flow::Stop);
        }
        let mut line = Vec::with_capacity(48);
        encode_line(
            &FromVenue::Heartbeat(Heartbeat {
                seq: 0,
                last_seq: self.max_seq,
            }),
            &mut line,
        );
        let flow = self.put(&line)?;
        self.out.flush()?;
        Ok(flow)
    }

    fn roll(&mut self, pct: u8) -> bool {
        pct > 0 && self.rng.u8(0..100) < pct
    }

    fn handle(&mut self, msg: Out) -> io::Result<Flow> {
        self.max_seq = self.max_seq.max(msg.seq);
        let faulty = msg.kind == OutKind::Report && self.shared.faults.load(Ordering::Acquire);
        if faulty && self.roll(self.faults.lose_pct) {
            tracing::debug!(seq = msg.seq, "fault: report lost on the wire");
            return Ok(Flow::Go);
        }
        if faulty && self.held.is_none() && self.roll(self.faults.reorder_pct) {
            tracing::debug!(seq = msg.seq, "fault: report held back");
            self.held = Some(msg.line);
            return Ok(Flow::Go);
        }
        if msg.kind == OutKind::CloseAfter {
            self.graceful = true;
            if let Flow::Stop = self.release_held()? {
                return Ok(Flow::Stop);
            }
            if !msg.line.is_empty() {
                self.put(&msg.line)?;
            }
            return Ok(Flow::Stop);
        }
        if let Flow::Stop = self.put(&msg.line)? {
            return Ok(Flow::Stop);
        }
        if faulty && self.roll(self.faults.duplicate_pct) {
            tracing::debug!(seq = msg.seq, "fault: report duplicated");
            if let Flow::Stop = self.put(&msg.line)? {
                return Ok(Flow::Stop);
            }
        }
        self.release_held()
    }

    fn release_held(&mut self) -> io::Result<Flow> {
        match self.held.take() {
            Some(line) => self.put(&line),
            None => Ok(Flow::Go),
        }
    }

    /// Writes one line and applies the connection-level faults that count lines.
    fn put(&mut self, line: &[u8]) -> io::Result<Flow> {
        self.out.write_all(line)?;
        self.sent += 1;
        self.last_write = Instant::now();
        if !self.shared.faults.load(Ordering::Acquire) {
            return Ok(Flow::Go);
        }
        let f = &self.faults;
        if f.drop_after > 0 && self.sent >= f.drop_after {
            tracing::info!(sent = self.sent, "fault: dropping the connection");
            self.out.flush()?;
            return Ok(Flow::Stop);
        }
        if f.stall_after > 0 {
            self.until_stall -= 1;
        }
        if f.stall_after > 0 && self.until_stall == 0 {
            self.until_stall = f.stall_after;
            tracing::info!(
                sent = self.sent,
                stall_ms = f.stall_ms,
                "fault: stalling the connection"
            );
            self.out.flush()?;
            let d = Duration::from_millis(f.stall_ms);
            self.shared.stall(d);
            std::thread::sleep(d);
            self.last_write = Instant::now();
        }
        Ok(Flow::Go)
    }
}
