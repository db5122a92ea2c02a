//! `switchyard bench sse`: the SSE fan-out check of issue 3 — N clients, each on its own
//! account's `GET /stream`, while an open loop posts durable orders (`POST /orders`) round-robin
//! over the same accounts. Every order answered 202 must show up on its account's stream as an
//! `order_update` and an `order_durable`, once each, in order.
//!
//! Per stream, a reader task parses the response by hand (HTTP head, chunked transfer coding,
//! SSE frames — [`ChunkedDecoder`], [`SseParser`]) and records, per `orderId`, when each event
//! kind arrived and how often; it also checks that event ids strictly increase. The senders
//! record the `orderId` of every 202 with the answer's arrival time. After the load and a drain
//! the two are compared per account: missing, duplicate, out-of-order (id not increasing, or
//! `order_durable` before `order_update`), events of orders never answered 202 (`unknown`) and
//! of another account's orders (`foreign`).
//!
//! Delays. The client cannot know when the server made an order durable, so the primary figure
//! is the gateway's own `gateway_sse_delivery_delay_*_us` (the `publish` call → the frame handed
//! to the connection; `order_durable` is published when the journal's fdatasync is applied),
//! scraped from `GET /metrics` at the end. The client-side figure is the 202's arrival → the
//! `order_durable` event's arrival, which includes the journal's commit and fdatasync.
//!
//! The sender reuses the open loop's schedule and pacer: request `i` is due at `start + i/rate`,
//! goes to connection `i % connections` and is for account `i % clients`.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use serde::Serialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::config::{account_name, LoadConfig};
use crate::http_client::{
    self, find_head_end, parse_decimal, parse_status_line, trim_cr, trim_ows, HttpConn,
    HttpRequest, ParseError,
};
use crate::metrics::scrape_metrics;
use crate::open_loop::{pace_with, Schedule};
use crate::report::LatencySummary;
use crate::stats::{new_histogram, ConnStats};
use crate::timeline::{preconnect, until_deadline, RECONNECT_PAUSE};

/// Longest chunk-size or trailer line accepted.
const MAX_CHUNK_LINE: usize = 4096;
/// Longest SSE line accepted (an event's data line).
const MAX_SSE_LINE: usize = 1024 * 1024;
/// After every expected event is in, how long to keep reading for duplicates.
const GRACE: Duration = Duration::from_secs(1);

// ---------------------------------------------------------------------------------------------
// Parsing: the response head, chunked transfer coding, SSE frames.

/// The head of the `GET /stream` response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamHead {
    pub status: u16,
    /// Bytes of the status line and headers, including the blank line.
    pub head_len: usize,
    /// `Transfer-Encoding: chunked`.
    pub chunked: bool,
    pub content_length: Option<usize>,
}

/// Parses a response head at the front of `buf`; `Ok(None)` means more bytes are needed.
pub fn parse_stream_head(buf: &[u8]) -> Result<Option<StreamHead>, ParseError> {
    let Some(end) = find_head_end(buf) else {
        if buf.len() > 16 * 1024 {
            return Err(ParseError::TooLarge);
        }
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n').map(trim_cr);
    let status = parse_status_line(lines.next().unwrap_or_default())?;
    let mut head = StreamHead {
        status,
        head_len: end + 4,
        chunked: false,
        content_length: None,
    };
    for line in lines {
        let colon = line
            .iter()
            .position(|&b| b == b':')
            .ok_or(ParseError::Malformed("header without colon"))?;
        let (name, value) = (&line[..colon], trim_ows(&line[colon + 1..]));
        if name.eq_ignore_ascii_case(b"transfer-encoding") {
            // Chunked must be the last coding; nothing else is expected here.
            let last = value.rsplit(|&b| b == b',').next().map(trim_ows);
            if !last.is_some_and(|c| c.eq_ignore_ascii_case(b"chunked")) {
                return Err(ParseError::Malformed("unsupported transfer coding"));
            }
            head.chunked = true;
        } else if name.eq_ignore_ascii_case(b"content-length") {
            head.content_length =
                Some(parse_decimal(value).ok_or(ParseError::Malformed("bad Content-Length"))?);
        }
    }
    Ok(Some(head))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside a chunk's data, this many bytes left.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last (zero) chunk: trailer lines until a blank one.
    Trailer,
    Done,
}

/// Incremental decoder of the chunked transfer coding (RFC 9112 §7.1). Chunk extensions and
/// trailers are skipped; a bare LF is accepted where CRLF is due.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: ChunkState,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

impl ChunkedDecoder {
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
        }
    }

    /// The last chunk and the trailer went by: the body is complete.
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes what is complete at the front of `input`, appending chunk data to `out`, and
    /// returns how many bytes it consumed; the rest (an incomplete size line or CRLF) must be
    /// offered again followed by more bytes. Bytes after the end of the body are not consumed.
    pub fn decode(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<usize, ParseError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                ChunkState::Done => return Ok(pos),
                ChunkState::Size | ChunkState::Trailer => {
                    let Some(nl) = rest.iter().position(|&b| b == b'\n') else {
                        if rest.len() > MAX_CHUNK_LINE {
                            return Err(ParseError::TooLarge);
                        }
                        return Ok(pos);
                    };
                    if nl > MAX_CHUNK_LINE {
                        return Err(ParseError::TooLarge);
                    }
                    let line = trim_cr(&rest[..nl]);
                    pos += nl + 1;
                    if self.state == ChunkState::Trailer {
                        if line.is_empty() {
                            self.state = ChunkState::Done;
                        }
                        continue;
                    }
                    let size = line.split(|&b| b == b';').next().unwrap_or_default();
                    let size =
                        parse_hex(trim_ows(size)).ok_or(ParseError::Malformed("chunk size"))?;
                    self.state = if size == 0 {
                        ChunkState::Trailer
                    } else {
                        ChunkState::Data(size)
                    };
                }
                ChunkState::Data(left) => {
                    if rest.is_empty() {
                        return Ok(pos);
                    }
                    let take = left.min(rest.len());
                    out.extend_from_slice(&rest[..take]);
                    pos += take;
                    self.state = if take == left {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left - take)
                    };
                }
                ChunkState::DataEnd => {
                    match rest {
                        [b'\r', b'\n', ..] => pos += 2,
                        [b'\n', ..] => pos += 1,
                        [] | [b'\r'] => return Ok(pos),
                        _ => return Err(ParseError::Malformed("chunk data not followed by CRLF")),
                    }
                    self.state = ChunkState::Size;
                }
            }
        }
    }
}

fn parse_hex(v: &[u8]) -> Option<usize> {
    // 15 hex digits are far beyond any chunk, and cannot overflow a u64.
    if v.is_empty() || v.len() > 15 {
        return None;
    }
    v.iter().try_fold(0usize, |n, &b| {
        let d = (b as char).to_digit(16)?;
        Some(n * 16 + d as usize)
    })
}

/// One SSE event as dispatched at a blank line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `id:` field of this event, if it had one.
    pub id: Option<u64>,
    /// The `event:` field; `message` if absent.
    pub event: String,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// What the SSE parser yields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SseItem {
    /// A comment line (`: keep-alive`), without the colon and one leading space.
    Comment(String),
    Event(SseEvent),
}

/// Incremental parser of `text/event-stream` (the WHATWG grammar, lines ending in LF or CRLF).
/// Unlike a browser it keeps an event's own id (not the last one seen), refuses an `id` that
/// is not a decimal number (this server never sends one, so it is a finding), and dispatches
/// an event that has an `event` or `id` field but no data. `retry` and unknown fields are
/// ignored.
#[derive(Debug, Clone, Default)]
pub struct SseParser {
    /// The incomplete line at the end of what was fed so far.
    partial: Vec<u8>,
    cur: SseEvent,
    has_fields: bool,
    data_lines: usize,
}

impl SseParser {
    pub fn new() -> SseParser {
        SseParser::default()
    }

    /// Feeds decoded body bytes; complete items are appended to `out`.
    pub fn feed(&mut self, mut bytes: &[u8], out: &mut Vec<SseItem>) -> Result<(), ParseError> {
        while let Some(nl) = bytes.iter().position(|&b| b == b'\n') {
            if self.partial.is_empty() {
                self.line(&bytes[..nl], out)?;
            } else {
                let mut line = std::mem::take(&mut self.partial);
                line.extend_from_slice(&bytes[..nl]);
                self.line(&line, out)?;
                line.clear();
                self.partial = line; // keep the allocation
            }
            bytes = &bytes[nl + 1..];
        }
        if self.partial.len() + bytes.len() > MAX_SSE_LINE {
            return Err(ParseError::TooLarge);
        }
        self.partial.extend_from_slice(bytes);
        Ok(())
    }

    fn line(&mut self, line: &[u8], out: &mut Vec<SseItem>) -> Result<(), ParseError> {
        let line = trim_cr(line);
        if line.is_empty() {
            if self.has_fields {
                let mut e = std::mem::take(&mut self.cur);
                if e.event.is_empty() {
                    e.event.push_str("message");
                }
                out.push(SseItem::Event(e));
            }
            self.has_fields = false;
            self.data_lines = 0;
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &b""[..]),
        };
        match field {
            b"" => out.push(SseItem::Comment(
                String::from_utf8_lossy(value).into_owned(),
            )),
            b"id" => {
                self.cur.id = if value.is_empty() {
                    None
                } else {
                    Some(parse_decimal(value).ok_or(ParseError::Malformed("SSE event id"))? as u64)
                };
                self.has_fields = true;
            }
            b"event" => {
                self.cur.event = String::from_utf8_lossy(value).into_owned();
                self.has_fields = true;
            }
            b"data" => {
                if self.data_lines > 0 {
                    self.cur.data.push('\n');
                }
                self.cur.data.push_str(&String::from_utf8_lossy(value));
                self.data_lines += 1;
                self.has_fields = true;
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Configuration.

/// A run of `bench sse`.
#[derive(Debug, Clone)]
pub struct SseConfig {
    /// `accounts` = the number of SSE clients (one stream per account); `connections` = the
    /// POST connection pool; `durability` = the `Durability` of every order (required);
    /// `drain` bounds both the wait for outstanding answers and the wait for the last events.
    pub load: LoadConfig,
    /// Orders per second over all accounts.
    pub rate: f64,
    /// An order more than this late when its connection gets to it is skipped (dropped_late).
    pub max_lag: Duration,
    /// See [`crate::config::OpenConfig::pacer_spin`].
    pub pacer_spin: Duration,
    /// How long the streams may take to connect and send `ready`.
    pub ready_timeout: Duration,
    /// The pass mark for the server's delivery-delay p99.
    pub p99_limit: Duration,
}

impl SseConfig {
    pub fn clients(&self) -> usize {
        self.load.accounts
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        self.load
            .validate()
            .map_err(|e| anyhow::anyhow!(e.to_string().replace("--accounts", "--clients")))?;
        if !(self.rate.is_finite() && self.rate > 0.0 && self.rate <= 1e9) {
            bail!("--rate must be a positive number of orders per second");
        }
        if self.max_lag.is_zero() {
            bail!("--max-lag must be positive");
        }
        match self.load.durability.as_deref() {
            Some("volatile" | "local") => {}
            _ => bail!("--durability must be volatile or local"),
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// The stream readers.

/// What one stream saw of one order.
#[derive(Debug, Clone, Copy, Default)]
struct Seen {
    updates: u32,
    durables: u32,
    update_at: Option<Instant>,
    durable_at: Option<Instant>,
    /// The first `order_durable` arrived before any `order_update`.
    durable_first: bool,
}

/// Everything one stream saw.
#[derive(Debug)]
struct StreamLog {
    ready: bool,
    orders: HashMap<String, Seen>,
    last_id: Option<u64>,
    /// Events whose id was not above the previous event's id.
    id_regressions: u64,
    /// `order_update` / `order_durable` events without an id.
    missing_ids: u64,
    updates: u64,
    durables: u64,
    without_order_id: u64,
    other_events: u64,
    comments: u64,
    /// The data of each `resync_required`.
    resyncs: Vec<String>,
    /// Why the stream ended before the run stopped it (EOF, error, refusal).
    ended: Option<String>,
}

impl StreamLog {
    fn new() -> StreamLog {
        StreamLog {
            ready: false,
            orders: HashMap::new(),
            last_id: None,
            id_regressions: 0,
            missing_ids: 0,
            updates: 0,
            durables: 0,
            without_order_id: 0,
            other_events: 0,
            comments: 0,
            resyncs: Vec::new(),
            ended: None,
        }
    }

    /// Takes in one item that arrived at `now`; returns true if it was the stream's `ready`.
    fn observe(&mut self, item: SseItem, now: Instant, progress: &AtomicU64) -> bool {
        let e = match item {
            SseItem::Comment(_) => {
                self.comments += 1;
                return false;
            }
            SseItem::Event(e) => e,
        };
        if !self.ready {
            if e.event == "ready" && e.id.is_none() {
                self.ready = true;
                return true;
            }
            // Anything before `ready` breaks the documented framing; count it as out of place.
            self.other_events += 1;
            return false;
        }
        if let Some(id) = e.id {
            if self.last_id.is_some_and(|last| id <= last) {
                self.id_regressions += 1;
            }
            self.last_id = Some(id);
        }
        let durable = match e.event.as_str() {
            "order_update" => false,
            "order_durable" => true,
            "resync_required" => {
                self.resyncs.push(e.data);
                return false;
            }
            _ => {
                self.other_events += 1;
                return false;
            }
        };
        progress.fetch_add(1, Ordering::Relaxed);
        if e.id.is_none() {
            self.missing_ids += 1;
        }
        if durable {
            self.durables += 1;
        } else {
            self.updates += 1;
        }
        let Some(order_id) = http_client::find_str_field(e.data.as_bytes(), "orderId") else {
            self.without_order_id += 1;
            return false;
        };
        let seen = match self.orders.get_mut(order_id) {
            Some(s) => s,
            None => self.orders.entry(order_id.to_owned()).or_default(),
        };
        if durable {
            seen.durables += 1;
            if seen.durable_at.is_none() {
                seen.durable_at = Some(now);
                seen.durable_first = seen.updates == 0;
            }
        } else {
            seen.updates += 1;
            if seen.update_at.is_none() {
                seen.update_at = Some(now);
            }
        }
        false
    }
}

fn stream_request(host: &str, token: &str) -> Vec<u8> {
    format!(
        "GET /stream HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\n\
         Accept: text/event-stream\r\n\r\n"
    )
    .into_bytes()
}

/// One stream: sends the request, reports `ready` (or why not) on `ready_tx`, then records
/// every event until `stop` changes.
async fn read_stream(
    mut stream: TcpStream,
    request: Vec<u8>,
    account: usize,
    ready_tx: mpsc::UnboundedSender<(usize, Result<(), String>)>,
    mut stop: watch::Receiver<bool>,
    progress: Arc<AtomicU64>,
) -> StreamLog {
    let mut log = StreamLog::new();
    let mut ready_tx = Some(ready_tx);
    let result: anyhow::Result<()> = async {
        stream.write_all(&request).await?;
        let mut raw = BytesMut::with_capacity(16 * 1024);
        let head = loop {
            if let Some(h) = parse_stream_head(&raw)? {
                break h;
            }
            tokio::select! {
                _ = stop.changed() => return Ok(()),
                r = stream.read_buf(&mut raw) => if r? == 0 {
                    bail!("server closed the connection before the response head");
                },
            }
        };
        if head.status != 200 {
            // The refusal's JSON body is short; show what arrived with the head.
            let body = String::from_utf8_lossy(&raw[head.head_len..]).into_owned();
            bail!("HTTP {}: {}", head.status, body.trim());
        }
        raw.advance(head.head_len);
        let mut chunked = head.chunked.then(ChunkedDecoder::new);
        let mut parser = SseParser::new();
        let mut data = Vec::with_capacity(16 * 1024);
        let mut items = Vec::new();
        let mut now = Instant::now();
        loop {
            match chunked.as_mut() {
                Some(d) => {
                    let n = d.decode(&raw, &mut data)?;
                    raw.advance(n);
                }
                None => {
                    data.extend_from_slice(&raw);
                    raw.clear();
                }
            }
            parser.feed(&data, &mut items)?;
            data.clear();
            for item in items.drain(..) {
                if log.observe(item, now, &progress) {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send((account, Ok(())));
                    }
                }
            }
            if chunked.as_ref().is_some_and(ChunkedDecoder::is_done) {
                bail!("the server ended the stream (last chunk)");
            }
            if raw.capacity() - raw.len() < 4096 {
                raw.reserve(16 * 1024);
            }
            tokio::select! {
                biased;
                _ = stop.changed() => return Ok(()),
                r = stream.read_buf(&mut raw) => {
                    now = Instant::now();
                    if r? == 0 {
                        bail!("the server closed the connection");
                    }
                }
            }
        }
    }
    .await;
    if let Err(e) = result {
        let msg = format!("{e:#}");
        if let Some(tx) = ready_tx.take() {
            let _ = tx.send((account, Err(msg.clone())));
        }
        log.ended = Some(msg);
    }
    log
}

// ---------------------------------------------------------------------------------------------
// The order senders.

/// Builds the requests of one connection, one per account it serves.
struct Requests {
    host: String,
    tokens: Vec<String>,
    body: Vec<u8>,
    level: String,
    run: u64,
}

impl Requests {
    fn make(&self, connection: usize, account: usize) -> HttpRequest {
        HttpRequest::durable(
            &self.host,
            &self.tokens[account],
            &self.body,
            &self.level,
            &format!("s{:x}c{connection}a{account}", self.run),
        )
    }
}

/// What one sender connection did.
#[derive(Debug, Default)]
struct SenderOut {
    stats: ConnStats,
    /// (account, orderId, arrival of the 202) of every accepted order.
    accepted: Vec<(usize, String, Instant)>,
    /// 202 answers whose body had no `orderId`.
    without_order_id: u64,
}

#[derive(Debug, Clone, Copy)]
struct SendCtx {
    addr: SocketAddr,
    clients: usize,
    max_lag: Duration,
    deadline: Instant,
}

/// One POST connection: one order at a time, each sent when due (or when the previous answer
/// is in, if later).
async fn send_orders(
    ctx: SendCtx,
    connection: usize,
    mut conn: Option<HttpConn>,
    requests: Arc<Requests>,
    mut rx: mpsc::UnboundedReceiver<(u64, Instant)>,
) -> SenderOut {
    let mut out = SenderOut::default();
    if conn.is_none() {
        out.stats.connect_errors += 1;
    }
    let mut by_account: HashMap<usize, HttpRequest> = HashMap::new();
    until_deadline(ctx.deadline, async {
        while let Some((i, intended)) = rx.recv().await {
            let account = (i % ctx.clients as u64) as usize;
            loop {
                if Instant::now().saturating_duration_since(intended) > ctx.max_lag {
                    out.stats.dropped_late += 1;
                    break;
                }
                let Some(c) = conn.as_mut() else {
                    match HttpConn::connect(ctx.addr).await {
                        Ok(c) => conn = Some(c),
                        Err(_) => {
                            out.stats.connect_errors += 1;
                            tokio::time::sleep(RECONNECT_PAUSE).await;
                        }
                    }
                    continue;
                };
                let request = by_account
                    .entry(account)
                    .or_insert_with(|| requests.make(connection, account));
                let sent_at = Instant::now();
                out.stats.sent += 1;
                out.stats.record_send_lag(sent_at - intended);
                match c.roundtrip(request.next_bytes()).await {
                    Ok(reply) => {
                        let now = Instant::now();
                        out.stats.record_latency(now - intended);
                        if reply.status == 202 {
                            match http_client::find_str_field(reply.body(), "orderId") {
                                Some(id) if !id.is_empty() => {
                                    out.accepted.push((account, id.to_owned(), now))
                                }
                                _ => out.without_order_id += 1,
                            }
                            out.stats.record_response(202, None);
                        } else {
                            let reason = http_client::find_reason(reply.body());
                            out.stats.record_response(reply.status, reason);
                        }
                        if reply.close {
                            conn = None;
                        }
                    }
                    Err(_) => {
                        out.stats.io_errors += 1;
                        conn = None;
                    }
                }
                break;
            }
        }
    })
    .await;
    rx.close();
    while rx.try_recv().is_ok() {
        out.stats.dropped_late += 1;
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Metrics.

/// The series the report keeps (besides every `gateway_sse_*`).
const KEPT_METRICS: [&str; 6] = [
    "gateway_durable_ack_p50_us",
    "gateway_durable_ack_p99_us",
    "gateway_fdatasync_p50_us",
    "gateway_fdatasync_p99_us",
    "gateway_journal_commits_total",
    "gateway_journal_records_total",
];

// ---------------------------------------------------------------------------------------------
// The report.

#[derive(Debug, Clone, Serialize)]
pub struct OrderFigures {
    pub sent: u64,
    pub answered: u64,
    /// Answered 202 with an `orderId`: each must produce two events on its account's stream.
    pub accepted: u64,
    pub accepted_without_order_id: u64,
    /// Sent, never answered (connection lost, or still outstanding at the end).
    pub unanswered: u64,
    pub dropped_late: u64,
    pub connect_errors: u64,
    pub io_errors: u64,
    pub status_counts: BTreeMap<String, u64>,
    pub reasons: BTreeMap<String, u64>,
    /// From each order's intended send time to its answer (coordinated-omission correct).
    pub latency_us: LatencySummary,
    pub send_lag_us: LatencySummary,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EventFigures {
    /// 2 per accepted order (`order_update` + `order_durable`).
    pub expected: u64,
    /// `order_update` + `order_durable` events received, all streams.
    pub received: u64,
    pub order_update: u64,
    pub order_durable: u64,
    /// Expected events that never arrived: `missing_update + missing_durable`.
    pub missing: u64,
    pub missing_update: u64,
    pub missing_durable: u64,
    /// Extra copies of an order's `order_update` or `order_durable` on its stream.
    pub duplicates: u64,
    /// `id_regressions + durable_before_update`.
    pub out_of_order: u64,
    /// Events whose id was not above the previous event's on the same stream.
    pub id_regressions: u64,
    /// Orders whose `order_durable` arrived before their `order_update`.
    pub durable_before_update: u64,
    /// Order events without an `id:` line.
    pub missing_ids: u64,
    /// Events of an order accepted for another account.
    pub foreign: u64,
    /// Events of orders not answered 202 (e.g. the answer was lost).
    pub unknown: u64,
    pub without_order_id: u64,
    /// Other events after `ready` (neither order events nor `resync_required`).
    pub other: u64,
    pub resync_required: u64,
    /// Keep-alive comments.
    pub comments: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientFigures {
    pub account: String,
    pub accepted: u64,
    pub expected: u64,
    pub received: u64,
    pub missing: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub resync_required: u64,
    /// Why the stream ended before the run stopped it.
    pub ended: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ClientDelay {
    /// Orders with both a 202 and an `order_durable`.
    pub count: u64,
    pub us: LatencySummary,
    /// `order_durable` read before the order's 202 (counted as 0 in the percentiles).
    pub durable_before_202: u64,
}

#[derive(Debug, Clone, Serialize)]
pub struct ServerFigures {
    /// `gateway_sse_delivery_delay_*_us`: `publish` → frame handed to the connection, every
    /// live event since the gateway started.
    pub delivery_delay_p50_us: Option<f64>,
    pub delivery_delay_p99_us: Option<f64>,
    pub delivery_delay_p999_us: Option<f64>,
    pub delivery_delay_max_us: Option<f64>,
    pub delivery_delay_count: Option<f64>,
    /// Increases over the run.
    pub slow_consumer_disconnects: f64,
    pub dispatch_dropped: f64,
    pub resyncs: f64,
    pub events_published: f64,
    pub events_delivered: f64,
    /// The kept series at the end of the run.
    pub metrics: BTreeMap<String, f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    /// missing = duplicates = out-of-order = foreign = 0, no resync_required, no stream
    /// ended early, no slow-consumer disconnect, every stream ready, and at least one order.
    pub delivered_in_order: bool,
    pub p99_limit_us: f64,
    /// The server's delivery-delay p99 is at most `p99_limit_us`.
    pub server_p99_ok: bool,
    pub pass: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct SseReport {
    pub target: String,
    pub clients: usize,
    pub streams_ready: usize,
    pub rate: f64,
    pub duration_s: f64,
    pub durability: String,
    pub connections: usize,
    /// Unix time the load started.
    pub started_unix_s: u64,
    /// Time spent waiting for the last events after the load.
    pub drain_s: f64,
    pub orders: OrderFigures,
    pub events: EventFigures,
    /// 202 arrival → `order_durable` arrival, client side.
    pub client_delay_202_to_durable: ClientDelay,
    pub server: ServerFigures,
    pub checks: Checks,
    pub per_client: Vec<ClientFigures>,
}

// ---------------------------------------------------------------------------------------------
// The run.

/// Opens the streams, waits for every `ready`, runs the order load, drains, compares.
pub async fn run_sse(cfg: &SseConfig) -> anyhow::Result<SseReport> {
    cfg.validate()?;
    let load = &cfg.load;
    let clients = cfg.clients();
    let addr = load.resolve().await?;
    let tokens = load.tokens()?;
    let before = scrape_metrics(addr, &load.target, None)
        .await
        .with_context(|| format!("cannot read GET /metrics from {addr}"))?;

    // 1. The streams, one per account, connected one after the other (the listen backlog is
    //    finite), then all waited for.
    let (stop_tx, stop_rx) = watch::channel(false);
    let (ready_tx, mut ready_rx) = mpsc::unbounded_channel();
    let progress = Arc::new(AtomicU64::new(0));
    let mut readers = Vec::with_capacity(clients);
    for (a, token) in tokens.iter().enumerate() {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("stream {a}: cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        readers.push(tokio::spawn(read_stream(
            stream,
            stream_request(&load.target, token),
            a,
            ready_tx.clone(),
            stop_rx.clone(),
            progress.clone(),
        )));
    }
    drop(ready_tx);
    let ready_by = tokio::time::Instant::now() + cfg.ready_timeout;
    let (mut ready, mut refused) = (0, Vec::new());
    while ready + refused.len() < clients {
        match tokio::time::timeout_at(ready_by, ready_rx.recv()).await {
            Ok(Some((_, Ok(())))) => ready += 1,
            Ok(Some((a, Err(e)))) => refused.push(format!("{}: {e}", account_name(a))),
            Ok(None) | Err(_) => break,
        }
    }
    if ready < clients {
        let _ = stop_tx.send(true);
        bail!(
            "only {ready} of {clients} streams sent `ready` within {} s{}",
            cfg.ready_timeout.as_secs_f64(),
            refused
                .first()
                .map(|e| format!(" (first failure: {e})"))
                .unwrap_or_default()
        );
    }
    eprintln!("{ready} streams ready");

    // 2. The order load.
    let n = load.connections;
    let conns = preconnect(n, |_| HttpConn::connect(addr)).await;
    let requests = Arc::new(Requests {
        host: load.target.clone(),
        tokens,
        body: load.order.json_body(),
        level: load.durability.clone().unwrap_or_default(),
        run: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    });
    let started_unix_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let start = Instant::now();
    let ctx = SendCtx {
        addr,
        clients,
        max_lag: cfg.max_lag,
        deadline: start + load.duration + load.drain,
    };
    let mut senders = Vec::with_capacity(n);
    let mut handles = Vec::with_capacity(n);
    for (c, conn) in conns.into_iter().enumerate() {
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        handles.push(tokio::spawn(send_orders(
            ctx,
            c,
            conn,
            requests.clone(),
            rx,
        )));
    }
    let schedule = Schedule::new(cfg.rate, n, load.duration);
    let spin = cfg.pacer_spin;
    let pacer = tokio::task::spawn_blocking(move || {
        pace_with(schedule, start, spin, |i, at| {
            senders[schedule.connection(i)].send((i, at)).is_ok()
                || !senders.iter().all(|s| s.is_closed())
        })
    });
    let mut stats = ConnStats::new();
    let mut accepted: Vec<HashMap<String, Instant>> = vec![HashMap::new(); clients];
    let mut accepted_without_order_id = 0;
    for h in handles {
        let out = h.await.context("an order sender failed")?;
        stats.merge(&out.stats);
        accepted_without_order_id += out.without_order_id;
        for (a, id, at) in out.accepted {
            accepted[a].insert(id, at);
        }
    }
    pacer.await?;
    let accepted_total: u64 = accepted.iter().map(|m| m.len() as u64).sum();

    // 3. The drain: until every expected event is in (then a grace for late duplicates), or
    //    `drain` has passed.
    let drain_start = Instant::now();
    let expected = 2 * accepted_total;
    let drain_end = drain_start + load.drain;
    loop {
        let now = Instant::now();
        if progress.load(Ordering::Relaxed) >= expected {
            tokio::time::sleep_until((now + GRACE).min(drain_end).into()).await;
            break;
        }
        if now >= drain_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let drain_s = drain_start.elapsed().as_secs_f64();
    let _ = stop_tx.send(true);
    let mut logs = Vec::with_capacity(clients);
    for r in readers {
        logs.push(r.await.context("a stream reader failed")?);
    }
    let after = scrape_metrics(addr, &load.target, None)
        .await
        .context("cannot read GET /metrics after the run")?;

    // 4. The comparison.
    let owner: HashMap<&str, usize> = accepted
        .iter()
        .enumerate()
        .flat_map(|(a, m)| m.keys().map(move |k| (k.as_str(), a)))
        .collect();
    let mut ev = EventFigures {
        expected,
        ..EventFigures::default()
    };
    let mut delay: Histogram<u64> = new_histogram();
    let mut durable_before_202 = 0;
    let mut per_client = Vec::with_capacity(clients);
    for (a, log) in logs.iter().enumerate() {
        let mine = &accepted[a];
        let (mut missing, mut dups, mut before_update) = (0, 0, 0);
        for (id, answered) in mine {
            let Some(s) = log.orders.get(id) else {
                ev.missing_update += 1;
                ev.missing_durable += 1;
                missing += 2;
                continue;
            };
            if s.updates == 0 {
                ev.missing_update += 1;
                missing += 1;
            }
            if s.durables == 0 {
                ev.missing_durable += 1;
                missing += 1;
            }
            dups += u64::from(s.updates.saturating_sub(1) + s.durables.saturating_sub(1));
            if s.durable_first && s.updates > 0 {
                before_update += 1;
            }
            if let Some(d) = s.durable_at {
                if d < *answered {
                    durable_before_202 += 1;
                }
                let ns = d.saturating_duration_since(*answered).as_nanos();
                delay.saturating_record(u64::try_from(ns).unwrap_or(u64::MAX).max(1));
            }
        }
        for (id, s) in &log.orders {
            if !mine.contains_key(id) {
                let n = u64::from(s.updates + s.durables);
                match owner.get(id.as_str()) {
                    Some(_) => ev.foreign += n,
                    None => ev.unknown += n,
                }
            }
        }
        let received = log.updates + log.durables;
        ev.received += received;
        ev.order_update += log.updates;
        ev.order_durable += log.durables;
        ev.duplicates += dups;
        ev.id_regressions += log.id_regressions;
        ev.durable_before_update += before_update;
        ev.missing_ids += log.missing_ids;
        ev.without_order_id += log.without_order_id;
        ev.other += log.other_events;
        ev.resync_required += log.resyncs.len() as u64;
        ev.comments += log.comments;
        per_client.push(ClientFigures {
            account: account_name(a),
            accepted: mine.len() as u64,
            expected: 2 * mine.len() as u64,
            received,
            missing,
            duplicates: dups,
            out_of_order: log.id_regressions + before_update,
            resync_required: log.resyncs.len() as u64,
            ended: log.ended.clone(),
        });
    }
    ev.missing = ev.missing_update + ev.missing_durable;
    ev.out_of_order = ev.id_regressions + ev.durable_before_update;

    let delta = |name: &str| {
        after.get(name).copied().unwrap_or(0.0) - before.get(name).copied().unwrap_or(0.0)
    };
    let server = ServerFigures {
        delivery_delay_p50_us: after.get("gateway_sse_delivery_delay_p50_us").copied(),
        delivery_delay_p99_us: after.get("gateway_sse_delivery_delay_p99_us").copied(),
        delivery_delay_p999_us: after.get("gateway_sse_delivery_delay_p999_us").copied(),
        delivery_delay_max_us: after.get("gateway_sse_delivery_delay_max_us").copied(),
        delivery_delay_count: after.get("gateway_sse_delivery_delay_count").copied(),
        slow_consumer_disconnects: delta("gateway_sse_slow_consumer_disconnects_total"),
        dispatch_dropped: delta("gateway_sse_dropped_total"),
        resyncs: delta("gateway_sse_resync_total"),
        events_published: delta("gateway_sse_events_published_total"),
        events_delivered: delta("gateway_sse_events_delivered_total"),
        metrics: after
            .iter()
            .filter(|(k, _)| k.starts_with("gateway_sse_") || KEPT_METRICS.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), *v))
            .collect(),
    };
    let ended_early = per_client.iter().filter(|c| c.ended.is_some()).count();
    let delivered_in_order = accepted_total > 0
        && ev.missing == 0
        && ev.duplicates == 0
        && ev.out_of_order == 0
        && ev.foreign == 0
        && ev.missing_ids == 0
        && ev.resync_required == 0
        && ended_early == 0
        && server.slow_consumer_disconnects == 0.0;
    let p99_limit_us = cfg.p99_limit.as_secs_f64() * 1e6;
    let server_p99_ok = server
        .delivery_delay_p99_us
        .is_some_and(|p| p <= p99_limit_us);

    Ok(SseReport {
        target: load.target.clone(),
        clients,
        streams_ready: ready,
        rate: cfg.rate,
        duration_s: load.duration.as_secs_f64(),
        durability: load.durability.clone().unwrap_or_default(),
        connections: n,
        started_unix_s,
        drain_s,
        orders: OrderFigures {
            sent: stats.sent,
            answered: stats.completed,
            accepted: accepted_total,
            accepted_without_order_id,
            unanswered: stats.sent.saturating_sub(stats.completed),
            dropped_late: stats.dropped_late,
            connect_errors: stats.connect_errors,
            io_errors: stats.io_errors,
            status_counts: stats
                .status_counts
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            reasons: stats.reasons.iter().map(|(k, v)| (k.clone(), *v)).collect(),
            latency_us: LatencySummary::from_ns(&stats.latency),
            send_lag_us: LatencySummary::from_ns(&stats.send_lag),
        },
        events: ev,
        client_delay_202_to_durable: ClientDelay {
            count: delay.len(),
            us: LatencySummary::from_ns(&delay),
            durable_before_202,
        },
        server,
        checks: Checks {
            delivered_in_order,
            p99_limit_us,
            server_p99_ok,
            pass: delivered_in_order && server_p99_ok,
        },
        per_client,
    })
}

fn pass(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

fn opt_us(v: Option<f64>) -> String {
    v.map_or_else(|| "n/a".to_string(), |v| format!("{v}us"))
}

impl SseReport {
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A summary for a terminal, ending with the verdict lines.
    pub fn human(&self) -> String {
        let mut o = String::new();
        let (ord, ev, d, s) = (
            &self.orders,
            &self.events,
            &self.client_delay_202_to_durable,
            &self.server,
        );
        let _ = writeln!(
            o,
            "sse fan-out on {}: {} clients ({} ready), POST /orders at {}/s for {} s, durability {}, {} connections",
            self.target, self.clients, self.streams_ready, self.rate, self.duration_s, self.durability, self.connections
        );
        let _ = writeln!(
            o,
            "  orders: sent {}  answered {}  accepted(202) {}  unanswered {}  dropped_late {}  errors connect {} io {}  statuses {:?}  reasons {:?}",
            ord.sent, ord.answered, ord.accepted, ord.unanswered, ord.dropped_late, ord.connect_errors, ord.io_errors, ord.status_counts, ord.reasons
        );
        let l = &ord.latency_us;
        let _ = writeln!(
            o,
            "  order answer latency (from intended send): p50={}us p99={}us max={}us",
            l.p50, l.p99, l.max
        );
        let _ = writeln!(
            o,
            "  events: expected {}  received {} (order_update {}, order_durable {})  drain {:.1} s",
            ev.expected, ev.received, ev.order_update, ev.order_durable, self.drain_s
        );
        let _ = writeln!(
            o,
            "  missing {} (update {}, durable {})  duplicates {}  out-of-order {} (id regressions {}, durable before update {})  foreign {}  unknown {}  without id {}",
            ev.missing, ev.missing_update, ev.missing_durable, ev.duplicates, ev.out_of_order, ev.id_regressions, ev.durable_before_update, ev.foreign, ev.unknown, ev.missing_ids
        );
        let recv = self.per_client.iter().map(|c| c.received);
        let exp = self.per_client.iter().map(|c| c.expected);
        let ended: Vec<_> = self
            .per_client
            .iter()
            .filter_map(|c| c.ended.as_ref().map(|e| format!("{}: {e}", c.account)))
            .collect();
        let _ = writeln!(
            o,
            "  per client: expected {}..{}  received {}..{}  clients short {}  resync_required {}  streams ended early {}{}",
            exp.clone().min().unwrap_or(0),
            exp.max().unwrap_or(0),
            recv.clone().min().unwrap_or(0),
            recv.max().unwrap_or(0),
            self.per_client.iter().filter(|c| c.missing > 0).count(),
            ev.resync_required,
            ended.len(),
            ended.first().map(|e| format!(" (first: {e})")).unwrap_or_default(),
        );
        let _ = writeln!(
            o,
            "  client 202 -> order_durable: n={} p50={}us p99={}us max={}us (durable event before the 202: {})",
            d.count, d.us.p50, d.us.p99, d.us.max, d.durable_before_202
        );
        let _ = writeln!(
            o,
            "  server delivery delay (publish -> frame written): p50={} p99={} p999={} max={} count={}",
            opt_us(s.delivery_delay_p50_us),
            opt_us(s.delivery_delay_p99_us),
            opt_us(s.delivery_delay_p999_us),
            opt_us(s.delivery_delay_max_us),
            s.delivery_delay_count.unwrap_or(0.0)
        );
        let _ = writeln!(
            o,
            "  server during the run: published {}  delivered {}  slow-consumer disconnects {}  dispatch dropped {}  resyncs {}",
            s.events_published, s.events_delivered, s.slow_consumer_disconnects, s.dispatch_dropped, s.resyncs
        );
        let _ = writeln!(
            o,
            "{} every event delivered in order: received {}/{}, missing {}, duplicates {}, out-of-order {}, resync {}, disconnects {}",
            pass(self.checks.delivered_in_order),
            ev.received,
            ev.expected,
            ev.missing,
            ev.duplicates,
            ev.out_of_order,
            ev.resync_required,
            ended.len() as f64 + s.slow_consumer_disconnects
        );
        let _ = writeln!(
            o,
            "{} server delivery delay p99 {} <= {}us",
            pass(self.checks.server_p99_ok),
            opt_us(s.delivery_delay_p99_us),
            self.checks.p99_limit_us
        );
        let _ = writeln!(o, "{} sse fan-out", pass(self.checks.pass));
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(d: &mut ChunkedDecoder, input: &[u8]) -> (Vec<u8>, usize) {
        let mut out = Vec::new();
        let n = d.decode(input, &mut out).unwrap();
        (out, n)
    }

    // Goal: chunked bodies decode to their payload at every split point, fed in two pieces,
    // with extensions and trailers skipped and the end of the body detected.
    #[test]
    fn chunked_split_anywhere() {
        let body = b"7\r\nevent: \r\n18;ext=1\r\nready\ndata: {\"a\":1}\n\n:x\n\r\n0\r\nTrailer: t\r\n\r\n";
        let want = b"event: ready\ndata: {\"a\":1}\n\n:x\n";
        for cut in 0..=body.len() {
            let mut d = ChunkedDecoder::new();
            let mut out = Vec::new();
            let n = d.decode(&body[..cut], &mut out).unwrap();
            // The unconsumed rest is offered again with the following bytes.
            let mut rest = body[n..cut].to_vec();
            rest.extend_from_slice(&body[cut..]);
            let m = d.decode(&rest, &mut out).unwrap();
            assert_eq!(m, rest.len(), "cut {cut}");
            assert_eq!(out, want, "cut {cut}");
            assert!(d.is_done());
        }
        // Byte by byte, keeping the unconsumed bytes as a reader does.
        let mut d = ChunkedDecoder::new();
        let (mut buf, mut out) = (Vec::new(), Vec::new());
        for &b in body.iter() {
            buf.push(b);
            let n = d.decode(&buf, &mut out).unwrap();
            buf.drain(..n);
        }
        assert_eq!((out.as_slice(), buf.len()), (&want[..], 0));
    }

    // Goal: bytes after the last chunk are left alone, and malformed framing is an error.
    #[test]
    fn chunked_end_and_errors() {
        let mut d = ChunkedDecoder::new();
        let (out, n) = decode_all(&mut d, b"3\r\nabc\r\n0\r\n\r\nHTTP/1.1");
        assert_eq!((out.as_slice(), n), (&b"abc"[..], 13));
        assert!(d.is_done());
        for bad in [
            &b"zz\r\n"[..],
            b"3\r\nabcX\r\n",
            b"\r\n",
            b"1234567890abcdef0\r\n",
        ] {
            let mut d = ChunkedDecoder::new();
            assert!(d.decode(bad, &mut Vec::new()).is_err(), "{bad:?}");
        }
        let mut d = ChunkedDecoder::new();
        assert_eq!(
            d.decode(&[b'1'; MAX_CHUNK_LINE + 1], &mut Vec::new()),
            Err(ParseError::TooLarge)
        );
        // Upper-case hex and a bare LF after the data.
        let mut d = ChunkedDecoder::new();
        let (out, _) = decode_all(&mut d, b"A\r\n0123456789\n0\n\n");
        assert_eq!(out, b"0123456789");
        assert!(d.is_done());
    }

    fn parse_all(pieces: &[&[u8]]) -> Vec<SseItem> {
        let mut p = SseParser::new();
        let mut out = Vec::new();
        for piece in pieces {
            p.feed(piece, &mut out).unwrap();
        }
        out
    }

    fn event(id: Option<u64>, name: &str, data: &str) -> SseItem {
        SseItem::Event(SseEvent {
            id,
            event: name.into(),
            data: data.into(),
        })
    }

    const STREAM: &[u8] = b"event: ready\ndata: {\"accountId\":\"bench-0\"}\n\n\
: keep-alive\n\n\
id: 17\nevent: order_update\ndata: {\"orderId\":\"ord_1\",\"status\":\"ACCEPTED\"}\n\n\
id: 18\r\nevent: order_durable\r\ndata: line one\r\ndata:line two\r\ndata\r\n\r\n";

    fn stream_items() -> Vec<SseItem> {
        vec![
            event(None, "ready", "{\"accountId\":\"bench-0\"}"),
            SseItem::Comment("keep-alive".into()),
            event(
                Some(17),
                "order_update",
                "{\"orderId\":\"ord_1\",\"status\":\"ACCEPTED\"}",
            ),
            event(Some(18), "order_durable", "line one\nline two\n"),
        ]
    }

    // Goal: events, ids, comments and multi-line data (LF and CRLF lines, `data:` without a
    // space, a bare `data` field) come out as the server framed them.
    #[test]
    fn sse_frames() {
        assert_eq!(parse_all(&[STREAM]), stream_items());
    }

    // Goal: the same stream split at every byte, and fed byte by byte, parses the same.
    #[test]
    fn sse_split_anywhere() {
        for cut in 0..=STREAM.len() {
            assert_eq!(
                parse_all(&[&STREAM[..cut], &STREAM[cut..]]),
                stream_items(),
                "cut {cut}"
            );
        }
        let bytes: Vec<&[u8]> = STREAM.chunks(1).collect();
        assert_eq!(parse_all(&bytes), stream_items());
    }

    // Goal: chunked framing and SSE framing together, with chunk boundaries inside lines.
    #[test]
    fn chunked_sse_together() {
        let mut wire = Vec::new();
        for piece in STREAM.chunks(7) {
            wire.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            wire.extend_from_slice(piece);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n\r\n");
        for read in [1, 3, 64, wire.len()] {
            let (mut d, mut p) = (ChunkedDecoder::new(), SseParser::new());
            let (mut raw, mut data, mut items) = (Vec::new(), Vec::new(), Vec::new());
            for r in wire.chunks(read) {
                raw.extend_from_slice(r);
                let n = d.decode(&raw, &mut data).unwrap();
                raw.drain(..n);
                p.feed(&data, &mut items).unwrap();
                data.clear();
            }
            assert_eq!(items, stream_items(), "reads of {read}");
            assert!(d.is_done());
        }
    }

    // Goal: odd but legal input: comments only, an event without a name, unknown fields and
    // `retry` ignored, a blank line with nothing before it; a non-numeric id is an error.
    #[test]
    fn sse_edge_cases() {
        let items = parse_all(&[b"\n\n:c1\n:  two\nretry: 10\nfoo: bar\ndata: x\n\nid: 3\n\n"]);
        assert_eq!(
            items,
            vec![
                SseItem::Comment("c1".into()),
                SseItem::Comment(" two".into()),
                event(None, "message", "x"),
                event(Some(3), "message", ""),
            ]
        );
        let mut p = SseParser::new();
        assert!(p.feed(b"id: x1\n\n", &mut Vec::new()).is_err());
        // An event cut short is not dispatched.
        assert_eq!(parse_all(&[b"event: order_update\ndata: {}\n"]), vec![]);
    }

    // Goal: the stream's response head is read with its status and framing.
    #[test]
    fn stream_head() {
        let ok = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n7\r\n";
        let h = parse_stream_head(ok).unwrap().unwrap();
        assert_eq!((h.status, h.chunked, h.content_length), (200, true, None));
        assert_eq!(&ok[h.head_len..], b"7\r\n");
        assert_eq!(parse_stream_head(&ok[..20]), Ok(None));
        let refused = b"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 30\r\n\r\n{\"error\":\"TOO_MANY_STREAMS\"}";
        let h = parse_stream_head(refused).unwrap().unwrap();
        assert_eq!(
            (h.status, h.chunked, h.content_length),
            (503, false, Some(30))
        );
        assert!(parse_stream_head(b"HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n").is_err());
    }

    // Goal: the per-stream log counts order events by orderId, flags id regressions and a
    // durable event before its update, and reports `ready` once.
    #[test]
    fn stream_log_checks() {
        let progress = AtomicU64::new(0);
        let mut log = StreamLog::new();
        let t = Instant::now();
        let ev = |id: u64, name: &str, order: &str| {
            event(
                Some(id),
                name,
                &format!("{{\"orderId\":\"{order}\",\"x\":1}}"),
            )
        };
        assert!(log.observe(event(None, "ready", "{}"), t, &progress));
        assert!(!log.observe(ev(5, "order_update", "a"), t, &progress));
        log.observe(ev(6, "order_durable", "b"), t, &progress);
        log.observe(ev(7, "order_update", "b"), t, &progress);
        log.observe(ev(7, "order_durable", "a"), t, &progress);
        log.observe(ev(8, "order_durable", "a"), t, &progress);
        log.observe(SseItem::Comment("keep-alive".into()), t, &progress);
        log.observe(
            event(None, "resync_required", "{\"reason\":\"SLOW_CONSUMER\"}"),
            t,
            &progress,
        );
        assert_eq!(progress.load(Ordering::Relaxed), 5);
        assert_eq!((log.updates, log.durables, log.id_regressions), (2, 3, 1));
        assert_eq!((log.comments, log.resyncs.len()), (1, 1));
        let a = log.orders["a"];
        assert_eq!((a.updates, a.durables, a.durable_first), (1, 2, false));
        assert!(log.orders["b"].durable_first);
    }
}
