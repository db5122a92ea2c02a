//! The matching thread: the single owner of the books, the client orders, the gateways'
//! report streams and the sessions' routing. Everything that changes venue state happens
//! here, one inbound message at a time, so nothing needs a lock.
//!
//! Handling one message: decide (place, cancel, replace, answer), number every report for its
//! gateway, collect the log lines and the outbound lines; then [`Engine::commit`] writes all
//! the log lines in one `write(2)` and only after that queues the lines to the connections'
//! writers. A report a gateway can see is always in the log.

use std::collections::{HashMap, VecDeque};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};
use switchyard_core::{OrderType, Side, Symbol};
use switchyard_protocol::venue::{
    encode_line, iso8601_ms, ExecReport, ExecStatus, FromVenue, Logon, LogonAck, NewOrderMsg,
    ReplaceMsg, SessionReject, ToVenue, TopOfBook,
};

use crate::book::{Bbo, BookError, BookId, Fill, Market, NewOrder, OrderKey};
use crate::config::{VenueConfig, HEARTBEAT_MS_MAX, HEARTBEAT_MS_MIN};
use crate::mm::{MarketMaker, Quote};
use crate::session::{ConnId, ConnShared, Inbound, NewConn, Out, OutKind};
use crate::store::{encode_record, encode_report, OrderRecord, Record, Store};

/// Market-maker order keys have the top bit set; client order keys never do.
const MM_KEY_BIT: u64 = 1 << 63;
/// A resend fills at most what is free of the connection's outbound queue less a 1/N margin.
const RESEND_MARGIN_DIV: usize = 4;
/// The gateway a reference gateway (no `LOGON`) is taken to be.
pub const DEFAULT_GATEWAY: &str = "default";

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// A gateway identity: its report stream survives connections and restarts.
struct Gateway {
    /// The `gatewayId` of its `LOGON` (or [`DEFAULT_GATEWAY`]).
    id: String,
    /// Last report seq numbered for this gateway.
    seq: u64,
    /// The most recent reports (`retention` of them), encoded, for catch-up and `RESEND`.
    retained: VecDeque<(u64, Arc<[u8]>)>,
    /// The gateway's orders by its order id.
    orders: HashMap<String, u32>,
    /// The connection its reports go to, if one is attached.
    conn: Option<ConnId>,
}

/// An order a gateway sent, in whatever state.
struct ClientOrder {
    /// Index of the owning gateway in `Engine::gateways`.
    gw: u32,
    /// The gateway's order id.
    id: String,
    /// Absent or unreadable only for a rejected order.
    symbol: Option<Symbol>,
    /// As the gateway wrote them, for the log.
    symbol_raw: Option<String>,
    side_raw: Option<String>,
    type_raw: Option<String>,
    /// Time in force as sent (GTC/DAY/GTD rest; IOC does not).
    tif_raw: Option<String>,
    /// Its book; `None` only for a rejected order.
    book: Option<BookId>,
    side: Side,
    /// Total quantity (filled included); a replace changes it.
    qty: u64,
    /// Limit price; `None` for a market order.
    limit: Option<u64>,
    filled: u64,
    /// What a `STATUS` answers: ACCEPTED/PARTIALLY_FILLED while open, then final.
    status: ExecStatus,
    /// Book key while resting.
    key: OrderKey,
    /// Time priority stamp (restored resting orders are re-queued in this order).
    prio: u64,
}

impl ClientOrder {
    fn is_open(&self) -> bool {
        matches!(
            self.status,
            ExecStatus::Accepted | ExecStatus::PartiallyFilled
        )
    }

    fn record(&self, gw: &str) -> OrderRecord {
        OrderRecord {
            gw: gw.to_string(),
            order_id: self.id.clone(),
            symbol: self.symbol_raw.clone(),
            side: self.side_raw.clone(),
            order_type: self.type_raw.clone(),
            time_in_force: self.tif_raw.clone(),
            qty: self.qty,
            price: self.limit,
            filled: self.filled,
            status: self.status,
            prio: self.prio,
        }
    }
}

/// Per book: its market maker and what the sessions last heard about its top.
struct BookState {
    /// `None` until the book has a reference price (or with market makers off).
    mm: Option<MarketMaker>,
    /// Last `TOB` sent, to send only changes.
    tob_sent: Option<Bbo>,
    /// When it was sent (the throttle).
    tob_sent_at: Option<Instant>,
    /// In `Engine::tob_dirty`: changed since the last `TOB`.
    dirty: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Connected, no `LOGON` and no order yet.
    Unbound,
    /// The gateway's session; `explicit` = by `LOGON` (heartbeats, `TOB`), otherwise a
    /// reference gateway taken as [`DEFAULT_GATEWAY`].
    Gateway { gw: u32, explicit: bool },
    /// Read-only: answers to `STATUS` about the gateway's orders, nothing else.
    Observer { gw: u32 },
}

struct Conn {
    /// To shut the socket down on takeover, slow consumption or venue shutdown; `None` for a
    /// connection without a socket (the in-process venue of [`crate::inproc`]).
    stream: Option<TcpStream>,
    /// The writer thread's queue.
    tx: Sender<Out>,
    /// Heartbeat interval and fault switch, read by the connection's threads.
    shared: Arc<ConnShared>,
    /// For log lines.
    peer: SocketAddr,
    /// What the connection is allowed to do and whose reports it gets.
    role: Role,
    /// Next gateway `seq` expected (0: the gateway does not number its messages).
    next_in_seq: u64,
}

/// A validated `NEW`.
struct Valid {
    symbol: Symbol,
    side: Side,
    limit: Option<u64>,
    ioc: bool,
    qty: u64,
}

/// The venue's whole state; owned by the matching thread.
pub struct Engine {
    cfg: VenueConfig,
    /// Every book: gateway orders and market-maker quotes.
    market: Market,
    /// Parallel to the market's book ids.
    books: Vec<BookState>,
    /// Every gateway identity ever seen (from the log, too).
    gateways: Vec<Gateway>,
    /// `gatewayId` → index in `gateways`.
    gw_by_id: HashMap<String, u32>,
    /// Every client order ever seen, final ones included (idempotent NEW, STATUS).
    orders: Vec<ClientOrder>,
    /// Resting client orders by book key.
    by_key: HashMap<OrderKey, u32>,
    /// Live connections, logged on or not.
    conns: HashMap<ConnId, Conn>,
    /// The state log; `None` when memory-only.
    store: Option<Store>,
    /// Next client order book key (the top bit is never set).
    next_key: u64,
    /// Next market-maker order number (its key gets the top bit).
    next_mm_key: u64,
    /// Next time-priority stamp.
    next_prio: u64,
    /// Reused for every book operation.
    fills: Vec<Fill>,
    /// Reused for every re-quote.
    quotes: Vec<Quote>,
    /// Log lines of the message being handled, written in one go by `commit`.
    log_buf: Vec<u8>,
    /// Lines for connections, queued by `commit` after the log write.
    outbox: Vec<(ConnId, Out)>,
    /// The market makers' random walk (seeded from the config for reproducible runs).
    rng: fastrand::Rng,
    /// When the market makers next step and re-quote.
    next_mm_tick: Instant,
    /// Books whose top may have changed since their last `TOB`.
    tob_dirty: Vec<BookId>,
}

impl Engine {
    /// Builds the venue's state from the log records (empty for a fresh venue), rewrites the
    /// log compactly, puts resting orders back and starts the market makers.
    pub fn new(cfg: VenueConfig, store: Option<Store>, records: Vec<Record>) -> Engine {
        let seed = cfg.seed.unwrap_or_else(|| fastrand::u64(..));
        let mut e = Engine {
            market: Market::new(1024),
            books: Vec::new(),
            gateways: Vec::new(),
            gw_by_id: HashMap::new(),
            orders: Vec::new(),
            by_key: HashMap::new(),
            conns: HashMap::new(),
            store,
            next_key: 1,
            next_mm_key: 1,
            next_prio: 1,
            fills: Vec::with_capacity(64),
            quotes: Vec::new(),
            log_buf: Vec::with_capacity(4096),
            outbox: Vec::new(),
            rng: fastrand::Rng::with_seed(seed),
            next_mm_tick: Instant::now() + Duration::from_millis(cfg.mm.interval_ms),
            tob_dirty: Vec::new(),
            cfg,
        };
        let replayed = records.len();
        for r in records {
            e.replay(r);
        }
        // Orders logged without any report were never acknowledged: forget them, so that the
        // gateway's retry creates them afresh.
        let pending = e
            .orders
            .iter()
            .filter(|o| o.status == ExecStatus::Pending)
            .count();
        if pending > 0 {
            e.drop_pending_orders();
        }
        e.next_prio = e.orders.iter().map(|o| o.prio).max().unwrap_or(0) + 1;
        if replayed > 0 {
            tracing::info!(
                venue = %e.cfg.name,
                records = replayed,
                gateways = e.gateways.len(),
                orders = e.orders.len(),
                "state rebuilt from the log"
            );
        }
        e.compact();
        e.restore_resting();
        for (symbol, reference) in e.cfg.mm.symbols.clone() {
            let (id, _) = e.market.open_book(symbol);
            e.ensure_book_state(id);
            if e.cfg.mm.enabled && e.books[id.0 as usize].mm.is_none() {
                e.books[id.0 as usize].mm = Some(MarketMaker::new(reference));
            }
        }
        for id in e.market.ids().collect::<Vec<_>>() {
            e.requote(id);
        }
        e.commit();
        e
    }

    /// Serves inbound messages and timers until `Shutdown` (or every sender is gone).
    pub fn run(mut self, rx: Receiver<Inbound>) {
        loop {
            let deadline = self.next_deadline();
            match rx.recv_deadline(deadline) {
                Ok(Inbound::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(m) => self.handle(m),
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.on_timers();
        }
        self.commit();
        for (_, c) in self.conns.drain() {
            if let Some(s) = &c.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
        }
        tracing::info!(venue = %self.cfg.name, "venue stopped");
    }

    fn next_deadline(&self) -> Instant {
        let mut at = Instant::now() + Duration::from_secs(1);
        if self.cfg.mm.enabled {
            at = at.min(self.next_mm_tick);
        }
        let interval = Duration::from_millis(self.cfg.tob_interval_ms);
        for id in &self.tob_dirty {
            let due = self.books[id.0 as usize]
                .tob_sent_at
                .map_or_else(Instant::now, |t| t + interval);
            at = at.min(due);
        }
        at
    }

    fn on_timers(&mut self) {
        let now = Instant::now();
        if self.cfg.mm.enabled && now >= self.next_mm_tick {
            let interval = Duration::from_millis(self.cfg.mm.interval_ms);
            self.next_mm_tick += interval;
            if self.next_mm_tick < now {
                self.next_mm_tick = now + interval;
            }
            for id in self.market.ids().collect::<Vec<_>>() {
                if let Some(mm) = self.books[id.0 as usize].mm.as_mut() {
                    mm.walk(&self.cfg.mm, &mut self.rng);
                }
                self.requote(id);
            }
            self.commit();
        }
        self.flush_tobs(now);
    }

    pub(crate) fn handle(&mut self, m: Inbound) {
        match m {
            Inbound::Connected(c) => self.on_connected(c),
            Inbound::Msg { conn, msg } => self.on_msg(conn, msg),
            Inbound::BadLine { conn, reason } => {
                tracing::info!(conn, %reason, "unreadable message");
                self.send_control(conn, &reject(0, reason), OutKind::Control);
            }
            Inbound::TooLong { conn } => {
                tracing::info!(conn, "line too long; closing the session");
                self.send_control(
                    conn,
                    &reject(0, "LINE_TOO_LONG".into()),
                    OutKind::CloseAfter,
                );
            }
            Inbound::Closed { conn } => self.on_closed(conn),
            Inbound::Shutdown => {}
        }
        self.commit();
    }

    // ---- sessions -------------------------------------------------------------------------

    fn on_connected(&mut self, c: NewConn) {
        tracing::debug!(conn = c.id, peer = %c.peer, "connected");
        self.conns.insert(
            c.id,
            Conn {
                stream: c.stream,
                tx: c.tx,
                shared: c.shared,
                peer: c.peer,
                role: Role::Unbound,
                next_in_seq: 0,
            },
        );
    }

    fn on_closed(&mut self, conn: ConnId) {
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        tracing::debug!(conn, peer = %c.peer, "disconnected");
        if let Role::Gateway { gw, .. } = c.role {
            let g = &mut self.gateways[gw as usize];
            if g.conn == Some(conn) {
                g.conn = None;
            }
        }
        // Dropping `c.tx` lets the writer finish what is queued (a REJECT before a close).
    }

    /// Closes a connection now (takeover, slow consumer).
    fn close_conn(&mut self, conn: ConnId, why: &str) {
        if let Some(c) = self.conns.remove(&conn) {
            tracing::info!(conn, peer = %c.peer, why, "closing connection");
            if let Some(s) = &c.stream {
                let _ = s.shutdown(Shutdown::Both);
            }
            if let Role::Gateway { gw, .. } = c.role {
                let g = &mut self.gateways[gw as usize];
                if g.conn == Some(conn) {
                    g.conn = None;
                }
            }
        }
    }

    fn on_msg(&mut self, conn: ConnId, msg: ToVenue) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        let seq = msg.seq();
        if seq != 0 {
            if c.next_in_seq != 0 && seq != c.next_in_seq {
                tracing::warn!(
                    conn,
                    got = seq,
                    expected = c.next_in_seq,
                    "gateway message sequence gap or repeat"
                );
            }
            c.next_in_seq = seq + 1;
        }
        let role = c.role;
        match (msg, role) {
            (ToVenue::Logon(l), Role::Unbound) => self.on_logon(conn, l),
            (ToVenue::Logon(_), _) => self.send_control(
                conn,
                &reject(seq, "ALREADY_LOGGED_ON".into()),
                OutKind::Control,
            ),
            (ToVenue::Heartbeat(_), _) => {}
            (ToVenue::Status(r), Role::Observer { gw }) => {
                let er = self.status_report(gw, &r.order_id);
                // Observer answers are not part of the gateway's numbered stream.
                self.send_control(conn, &FromVenue::Exec(er), OutKind::Control);
            }
            (_, Role::Observer { .. }) => self.send_control(
                conn,
                &reject(seq, "OBSERVER_READ_ONLY".into()),
                OutKind::Control,
            ),
            (msg, Role::Unbound) => {
                // A reference gateway: no LOGON, it is the default gateway.
                let gw = self.gateway(DEFAULT_GATEWAY);
                self.bind(conn, gw, false);
                self.on_gateway_msg(conn, gw, msg);
            }
            (msg, Role::Gateway { gw, explicit }) => {
                if !explicit {
                    self.gateways[gw as usize].conn = Some(conn);
                }
                self.on_gateway_msg(conn, gw, msg)
            }
        }
    }

    fn on_gateway_msg(&mut self, conn: ConnId, gw: u32, msg: ToVenue) {
        match msg {
            ToVenue::New(n) => self.on_new(gw, n),
            ToVenue::Cancel(r) => self.on_cancel(gw, &r.order_id),
            ToVenue::Replace(r) => self.on_replace(gw, r),
            ToVenue::Status(r) => {
                let er = self.status_report(gw, &r.order_id);
                self.emit(gw, er, 0);
            }
            ToVenue::Resend(r) => self.resend(conn, gw, r.from_seq),
            ToVenue::Logon(_) | ToVenue::Heartbeat(_) => {}
        }
    }

    fn on_logon(&mut self, conn: ConnId, l: Logon) {
        if l.gateway_id.trim().is_empty() {
            self.send_control(
                conn,
                &reject(l.seq, "MISSING_GATEWAY_ID".into()),
                OutKind::Control,
            );
            return;
        }
        let hb = match l.heartbeat_ms {
            0 => self.cfg.heartbeat_ms,
            ms => ms.clamp(HEARTBEAT_MS_MIN, HEARTBEAT_MS_MAX),
        };
        let gw = self.gateway(&l.gateway_id);
        let last_seq = self.gateways[gw as usize].seq;
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.shared.heartbeat_ms.store(hb, Ordering::Release);
        let ack = FromVenue::LogonAck(LogonAck {
            venue: self.cfg.name.clone(),
            last_seq,
            heartbeat_ms: hb,
        });
        if l.observer {
            c.role = Role::Observer { gw };
            tracing::info!(conn, gateway = %l.gateway_id, "observer logged on");
            self.send_line(conn, encoded(&ack), OutKind::Control, last_seq);
            return;
        }
        tracing::info!(conn, gateway = %l.gateway_id, last_seq = l.last_seq,
            venue_seq = last_seq, "gateway logged on");
        if let Some(c) = self.conns.get(&conn) {
            c.shared.silence_timeout.store(true, Ordering::Release);
        }
        self.bind(conn, gw, true);
        self.send_line(conn, encoded(&ack), OutKind::Control, last_seq);
        if l.last_seq > last_seq {
            tracing::warn!(gateway = %l.gateway_id, theirs = l.last_seq, ours = last_seq,
                "gateway claims reports this venue does not have");
        }
        self.resend(conn, gw, l.last_seq + 1);
        // The current prices, so a new session can route at once.
        for id in self.market.ids().collect::<Vec<_>>() {
            let bbo = self.market.top_of_book(id);
            if bbo != Bbo::default() {
                let line = encoded(&self.tob_msg(id, bbo));
                self.send_line(conn, line, OutKind::Control, 0);
            }
        }
    }

    /// Makes `conn` the session of gateway `gw`. A `LOGON` closes the connection it replaces;
    /// a reference gateway runs several worker connections without one, so those coexist
    /// and reports go to whichever sent last.
    fn bind(&mut self, conn: ConnId, gw: u32, explicit: bool) {
        if let Some(old) = self.gateways[gw as usize].conn {
            if old != conn && explicit {
                self.close_conn(old, "session taken over by a new logon");
            }
        }
        self.gateways[gw as usize].conn = Some(conn);
        if let Some(c) = self.conns.get_mut(&conn) {
            c.role = Role::Gateway { gw, explicit };
            c.shared.faults.store(true, Ordering::Release);
        }
    }

    /// Resends the gateway's retained reports from `from` on.
    fn resend(&mut self, conn: ConnId, gw: u32, from: u64) {
        let g = &self.gateways[gw as usize];
        let oldest = g.retained.front().map_or(g.seq + 1, |(s, _)| *s);
        if from < oldest && from <= g.seq {
            tracing::warn!(gateway = %g.id, from, oldest,
                "resend asked for reports older than retention; sending from the oldest kept");
        }
        // At most what the connection's outbound queue has room for, less a margin for live
        // reports: a longer resend would overflow it and close the session, and the next
        // logon would ask for the same again. The gateway sees the rest missing (heartbeats
        // carry the last number) and asks again from there.
        let room = self.conns.get(&conn).map_or(0, |c| {
            let cap = c.tx.capacity().unwrap_or(usize::MAX);
            cap.saturating_sub(c.tx.len())
                .saturating_sub(cap / RESEND_MARGIN_DIV)
        });
        let lines: Vec<(u64, Arc<[u8]>)> = g
            .retained
            .iter()
            .filter(|(s, _)| *s >= from)
            .take(room)
            .map(|(s, l)| (*s, l.clone()))
            .collect();
        for (seq, line) in lines {
            self.send_line(conn, line, OutKind::Resent, seq);
        }
    }

    fn gateway(&mut self, id: &str) -> u32 {
        if let Some(&g) = self.gw_by_id.get(id) {
            return g;
        }
        let g = self.gateways.len() as u32;
        self.gateways.push(Gateway {
            id: id.to_string(),
            seq: 0,
            retained: VecDeque::new(),
            orders: HashMap::new(),
            conn: None,
        });
        self.gw_by_id.insert(id.to_string(), g);
        g
    }

    // ---- orders ---------------------------------------------------------------------------

    fn on_new(&mut self, gw: u32, n: NewOrderMsg) {
        if let Some(&oi) = self.gateways[gw as usize].orders.get(&n.order_id) {
            // NEW is idempotent: a repeat learns the order's state.
            let er = self.status_of(oi);
            self.emit(gw, er, 0);
            return;
        }
        let checked = validate(&n).and_then(|v| {
            if self.cfg.faults.reject_all {
                Err("REJECT_ALL")
            } else {
                Ok(v)
            }
        });
        let (valid, book) = match checked {
            Ok(v) => match self.book_for(v.symbol, v.limit) {
                Some(b) => (Some(v), Some(b)),
                None => (None, None),
            },
            Err(reason) => {
                let oi = self.create_order(gw, &n, None, None);
                self.reject_new(oi, reason);
                return;
            }
        };
        let (Some(v), Some(book)) = (valid, book) else {
            let oi = self.create_order(gw, &n, None, None);
            self.reject_new(oi, "TOO_MANY_SYMBOLS");
            return;
        };
        let oi = self.create_order(gw, &n, Some(&v), Some(book));
        self.set_status(oi, ExecStatus::Accepted);
        let key = self.orders[oi as usize].key;
        let mut er = self.er(oi, ExecStatus::Accepted, 0, None);
        er.qty = Some(v.qty);
        er.limit_price = v.limit;
        self.emit(gw, er, 0);

        // Indexed while it trades, so its fills find it; unindexed unless it rests.
        self.by_key.insert(key, oi);
        let order = NewOrder {
            key,
            side: v.side,
            limit: v.limit,
            ioc: v.ioc,
            qty: v.qty,
        };
        let mut fills = std::mem::take(&mut self.fills);
        fills.clear();
        let placed = self.market.place(book, order, &mut fills);
        self.apply_fills(&fills);
        self.fills = fills;
        if !matches!(placed, Ok(p) if p.resting > 0) {
            self.by_key.remove(&key);
        }
        match placed {
            Ok(p) if p.resting > 0 => {}
            Ok(p) if p.cancelled > 0 => {
                let reason = if v.limit.is_none() {
                    "MARKET_REMAINDER"
                } else {
                    "IOC_REMAINDER"
                };
                self.set_status(oi, ExecStatus::Canceled);
                let mut er = self.er(oi, ExecStatus::Canceled, 0, None);
                er.reason = Some(reason.into());
                self.emit(gw, er, 0);
            }
            Ok(_) => {}
            Err(e) => {
                // Validation makes this unreachable; never leave the order in limbo.
                tracing::error!(error = %e, "book refused a validated order");
                self.set_status(oi, ExecStatus::Canceled);
                let mut er = self.er(oi, ExecStatus::Canceled, 0, None);
                er.reason = Some("INTERNAL".into());
                self.emit(gw, er, 0);
            }
        }
        self.touch(book);
    }

    fn reject_new(&mut self, oi: u32, reason: &str) {
        self.set_status(oi, ExecStatus::Rejected);
        let mut er = self.er(oi, ExecStatus::Rejected, 0, None);
        er.reason = Some(reason.to_string());
        let gw = self.orders[oi as usize].gw;
        self.emit(gw, er, 0);
    }

    /// Records a new client order (and logs it), with a book key and priority stamp if valid.
    fn create_order(
        &mut self,
        gw: u32,
        n: &NewOrderMsg,
        v: Option<&Valid>,
        book: Option<BookId>,
    ) -> u32 {
        let oi = self.orders.len() as u32;
        let key = if v.is_some() { self.alloc_key() } else { 0 };
        let prio = if v.is_some() { self.alloc_prio() } else { 0 };
        self.orders.push(ClientOrder {
            gw,
            id: n.order_id.clone(),
            symbol: v.map(|v| v.symbol),
            symbol_raw: n.symbol.clone(),
            side_raw: n.side.clone(),
            type_raw: n.order_type.clone(),
            tif_raw: n.time_in_force.clone(),
            book,
            side: v.map_or(Side::Buy, |v| v.side),
            qty: n.qty.unwrap_or(0),
            limit: v.and_then(|v| v.limit),
            filled: 0,
            status: ExecStatus::Pending,
            key,
            prio,
        });
        self.gateways[gw as usize]
            .orders
            .insert(n.order_id.clone(), oi);
        if self.store.is_some() {
            let rec =
                Record::Order(self.orders[oi as usize].record(&self.gateways[gw as usize].id));
            encode_record(&rec, &mut self.log_buf);
        }
        oi
    }

    fn on_cancel(&mut self, gw: u32, order_id: &str) {
        let Some(&oi) = self.gateways[gw as usize].orders.get(order_id) else {
            let er = unknown_report(order_id, ExecStatus::CancelRejected);
            self.emit(gw, er, 0);
            return;
        };
        if !self.orders[oi as usize].is_open() {
            let mut er = self.er(oi, ExecStatus::CancelRejected, 0, None);
            er.reason = Some("ORDER_FINAL".into());
            self.emit(gw, er, 0);
            return;
        }
        let (book, key) = {
            let o = &self.orders[oi as usize];
            (o.book.expect("open order has a book"), o.key)
        };
        if let Err(e) = self.market.cancel(book, key) {
            tracing::error!(error = %e, order = order_id, "open order not in its book");
        }
        self.by_key.remove(&key);
        self.set_status(oi, ExecStatus::Canceled);
        let er = self.er(oi, ExecStatus::Canceled, 0, None);
        self.emit(gw, er, 0);
        self.touch(book);
    }

    fn on_replace(&mut self, gw: u32, r: ReplaceMsg) {
        let Some(&oi) = self.gateways[gw as usize].orders.get(&r.order_id) else {
            let er = unknown_report(&r.order_id, ExecStatus::ReplaceRejected);
            self.emit(gw, er, 0);
            return;
        };
        let refuse = |e: &mut Engine, reason: &str| {
            let mut er = e.er(oi, ExecStatus::ReplaceRejected, 0, None);
            let o = &e.orders[oi as usize];
            er.qty = Some(o.qty);
            er.limit_price = o.limit;
            er.reason = Some(reason.into());
            e.emit(gw, er, 0);
        };
        let o = &self.orders[oi as usize];
        let (open, cur_qty, cur_limit, filled) = (o.is_open(), o.qty, o.limit, o.filled);
        let (book, key) = (o.book, o.key);
        if !open {
            return refuse(self, "ORDER_FINAL");
        }
        if r.qty.is_none() && r.price.is_none() {
            return refuse(self, "NOTHING_TO_REPLACE");
        }
        let (qty, price) = (r.qty.unwrap_or(cur_qty), r.price.or(cur_limit).unwrap_or(0));
        if qty <= filled {
            return refuse(self, "QTY_NOT_ABOVE_FILLED");
        }
        if price == 0 {
            return refuse(self, "BAD_PRICE");
        }
        let book = book.expect("open order has a book");
        let mut fills = std::mem::take(&mut self.fills);
        fills.clear();
        match self.market.replace(book, key, qty, price, &mut fills) {
            Ok(rep) => {
                if !rep.kept_priority {
                    let prio = self.alloc_prio();
                    self.orders[oi as usize].prio = prio;
                }
                let o = &mut self.orders[oi as usize];
                o.qty = rep.qty;
                o.limit = Some(rep.price);
                let prio = o.prio;
                let mut er = self.er(oi, ExecStatus::Replaced, 0, None);
                er.qty = Some(rep.qty);
                er.limit_price = Some(rep.price);
                self.emit(gw, er, prio);
                self.apply_fills(&fills);
                if rep.resting == 0 {
                    self.by_key.remove(&key);
                }
            }
            Err(e) => {
                let reason = match e {
                    BookError::QtyNotAboveFilled => "QTY_NOT_ABOVE_FILLED",
                    BookError::ZeroPrice => "BAD_PRICE",
                    _ => "INTERNAL",
                };
                tracing::warn!(error = %e, "replace refused by the book");
                refuse(self, reason);
            }
        }
        self.fills = fills;
        self.touch(book);
    }

    /// Reports every fill to the client orders involved (market-maker orders report to no
    /// one).
    fn apply_fills(&mut self, fills: &[Fill]) {
        for f in fills {
            for (key, filled_after) in [(f.taker, f.taker_filled), (f.maker, f.maker_filled)] {
                if key & MM_KEY_BIT != 0 {
                    continue;
                }
                let Some(oi) = self.order_by_key(key) else {
                    continue;
                };
                let o = &mut self.orders[oi as usize];
                debug_assert_eq!(o.filled + f.qty, filled_after);
                o.filled = filled_after;
                let status = if o.filled >= o.qty {
                    ExecStatus::Filled
                } else {
                    ExecStatus::PartiallyFilled
                };
                o.status = status;
                if status == ExecStatus::Filled {
                    self.by_key.remove(&key);
                }
                let gw = o.gw;
                let er = self.er(oi, status, f.qty, Some(f.price));
                self.emit(gw, er, 0);
            }
        }
    }

    /// The client order with book key `key` (resting, or the taker being handled).
    fn order_by_key(&self, key: OrderKey) -> Option<u32> {
        self.by_key.get(&key).copied()
    }

    fn status_report(&self, gw: u32, order_id: &str) -> ExecReport {
        match self.gateways[gw as usize].orders.get(order_id) {
            Some(&oi) => self.status_of(oi),
            None => {
                let mut er = unknown_report(order_id, ExecStatus::Unknown);
                er.status_report = true;
                er
            }
        }
    }

    fn status_of(&self, oi: u32) -> ExecReport {
        let o = &self.orders[oi as usize];
        let mut er = self.er(oi, o.status, 0, None);
        er.qty = Some(o.qty);
        er.limit_price = o.limit;
        er.status_report = true;
        er
    }

    fn er(&self, oi: u32, status: ExecStatus, delta: u64, price: Option<u64>) -> ExecReport {
        let o = &self.orders[oi as usize];
        ExecReport {
            seq: 0,
            order_id: o.id.clone(),
            status,
            filled_qty_delta: delta,
            filled_qty_total: o.filled,
            price,
            qty: None,
            limit_price: None,
            at: iso8601_ms(now_ms()),
            reason: None,
            status_report: false,
        }
    }

    fn set_status(&mut self, oi: u32, s: ExecStatus) {
        self.orders[oi as usize].status = s;
    }

    fn alloc_key(&mut self) -> OrderKey {
        let k = self.next_key;
        self.next_key += 1;
        k
    }

    fn alloc_prio(&mut self) -> u64 {
        let p = self.next_prio;
        self.next_prio += 1;
        p
    }

    /// Numbers a report for its gateway, retains it, logs it and queues it for the session.
    fn emit(&mut self, gw: u32, mut er: ExecReport, prio: u64) {
        let g = &mut self.gateways[gw as usize];
        g.seq += 1;
        er.seq = g.seq;
        if self.store.is_some() {
            encode_report(&g.id, prio, &er, &mut self.log_buf);
        }
        let mut line = Vec::with_capacity(200);
        encode_line(&FromVenue::Exec(er), &mut line);
        let line: Arc<[u8]> = line.into();
        g.retained.push_back((g.seq, line.clone()));
        while g.retained.len() > self.cfg.retention {
            g.retained.pop_front();
        }
        if let Some(conn) = g.conn {
            let seq = g.seq;
            self.send_line(conn, line, OutKind::Report, seq);
        }
    }

    // ---- books, market makers, top of book -------------------------------------------------

    /// The book for a symbol, opened on first use (quoted around the first limit price).
    fn book_for(&mut self, symbol: Symbol, limit: Option<u64>) -> Option<BookId> {
        let id = match self.market.book_id(&symbol) {
            Some(id) => id,
            None if self.market.len() >= self.cfg.max_symbols => return None,
            None => {
                let (id, _) = self.market.open_book(symbol);
                tracing::info!(symbol = %symbol, "new book opened on first use");
                id
            }
        };
        self.ensure_book_state(id);
        let st = &mut self.books[id.0 as usize];
        if self.cfg.mm.enabled && st.mm.is_none() {
            if let Some(p) = limit {
                st.mm = Some(MarketMaker::new(p));
                self.requote(id);
            }
        }
        Some(id)
    }

    fn ensure_book_state(&mut self, id: BookId) {
        while self.books.len() <= id.0 as usize {
            self.books.push(BookState {
                mm: None,
                tob_sent: None,
                tob_sent_at: None,
                dirty: false,
            });
        }
    }

    /// Cancels the maker's quotes of a book and places fresh ones around its reference price.
    fn requote(&mut self, id: BookId) {
        self.ensure_book_state(id);
        let Some(mut mm) = self.books[id.0 as usize].mm.take() else {
            return;
        };
        for key in mm.live.drain(..) {
            // Quotes that traded away are no longer in the book: nothing to cancel.
            let _ = self.market.cancel(id, key);
        }
        let mut quotes = std::mem::take(&mut self.quotes);
        mm.quotes(&self.cfg.mm, self.cfg.partial_steps, &mut quotes);
        let mut fills = std::mem::take(&mut self.fills);
        for q in &quotes {
            let key = MM_KEY_BIT | self.next_mm_key;
            self.next_mm_key += 1;
            fills.clear();
            let o = NewOrder {
                key,
                side: q.side,
                limit: Some(q.price),
                ioc: false,
                qty: q.qty,
            };
            if let Ok(p) = self.market.place(id, o, &mut fills) {
                if p.resting > 0 {
                    mm.live.push(key);
                }
            }
            self.apply_fills(&fills);
        }
        self.fills = fills;
        self.quotes = quotes;
        self.books[id.0 as usize].mm = Some(mm);
        self.touch(id);
    }

    fn touch(&mut self, id: BookId) {
        let st = &mut self.books[id.0 as usize];
        if !st.dirty {
            st.dirty = true;
            self.tob_dirty.push(id);
        }
    }

    fn tob_msg(&self, id: BookId, bbo: Bbo) -> FromVenue {
        FromVenue::Tob(TopOfBook {
            symbol: self.market.symbol(id).as_str().to_string(),
            bid: bbo.bid.map(|(p, _)| p),
            bid_qty: bbo.bid.map_or(0, |(_, q)| q),
            ask: bbo.ask.map(|(p, _)| p),
            ask_qty: bbo.ask.map_or(0, |(_, q)| q),
        })
    }

    /// Sends `TOB` for every changed book whose throttle interval has passed.
    fn flush_tobs(&mut self, now: Instant) {
        let interval = Duration::from_millis(self.cfg.tob_interval_ms);
        let mut i = 0;
        while i < self.tob_dirty.len() {
            let id = self.tob_dirty[i];
            let st = &self.books[id.0 as usize];
            if st.tob_sent_at.is_some_and(|t| now < t + interval) {
                i += 1;
                continue;
            }
            self.tob_dirty.swap_remove(i);
            let bbo = self.market.top_of_book(id);
            let st = &mut self.books[id.0 as usize];
            st.dirty = false;
            if st.tob_sent == Some(bbo) {
                continue;
            }
            st.tob_sent = Some(bbo);
            st.tob_sent_at = Some(now);
            let line = encoded(&self.tob_msg(id, bbo));
            let targets: Vec<ConnId> = self
                .conns
                .iter()
                .filter(|(_, c)| matches!(c.role, Role::Gateway { explicit: true, .. }))
                .map(|(id, _)| *id)
                .collect();
            for conn in targets {
                self.send_line(conn, line.clone(), OutKind::Control, 0);
            }
        }
        self.commit();
    }

    // ---- output ----------------------------------------------------------------------------

    fn send_control(&mut self, conn: ConnId, msg: &FromVenue, kind: OutKind) {
        self.send_line(conn, encoded(msg), kind, 0);
    }

    fn send_line(&mut self, conn: ConnId, line: Arc<[u8]>, kind: OutKind, seq: u64) {
        self.outbox.push((
            conn,
            Out {
                due: Instant::now(),
                line,
                kind,
                seq,
            },
        ));
    }

    /// Writes the handled message's log lines, then hands its outbound lines to the writers.
    pub fn commit(&mut self) {
        if !self.log_buf.is_empty() {
            if let Some(store) = self.store.as_mut() {
                if let Err(e) = store.append(&self.log_buf) {
                    tracing::error!(path = %store.path().display(), error = %e,
                        "state log write failed; state will not survive a restart");
                }
            }
            self.log_buf.clear();
        }
        if self.outbox.is_empty() {
            return;
        }
        let due = Instant::now() + Duration::from_millis(self.cfg.delay_ms);
        let mut outbox = std::mem::take(&mut self.outbox);
        let mut slow = Vec::new();
        for (conn, mut out) in outbox.drain(..) {
            let Some(c) = self.conns.get(&conn) else {
                continue;
            };
            out.due = due;
            match c.tx.try_send(out) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => slow.push(conn),
            }
        }
        self.outbox = outbox;
        slow.dedup();
        for conn in slow {
            // Its reports are retained: the gateway catches up after reconnecting.
            self.close_conn(conn, "outbound queue full (slow consumer)");
        }
    }

    // ---- in-process driving ------------------------------------------------------------------

    /// One market-maker step for every book (walk, re-quote), as the timer does, without
    /// looking at the clock; `TOB`s are not sent. For the in-process venue.
    pub(crate) fn mm_step(&mut self) {
        if !self.cfg.mm.enabled {
            return;
        }
        for id in self.market.ids().collect::<Vec<_>>() {
            if let Some(mm) = self.books[id.0 as usize].mm.as_mut() {
                mm.walk(&self.cfg.mm, &mut self.rng);
            }
            self.requote(id);
        }
        self.commit();
    }

    /// Every client order of gateway `gw_id`, in the order the venue first saw them.
    pub(crate) fn orders_of(&self, gw_id: &str) -> Vec<crate::inproc::VenueOrder> {
        let Some(&g) = self.gw_by_id.get(gw_id) else {
            return Vec::new();
        };
        self.orders
            .iter()
            .filter(|o| o.gw == g)
            .map(|o| crate::inproc::VenueOrder {
                order_id: o.id.clone(),
                symbol: o.symbol_raw.clone(),
                side: o.side_raw.clone(),
                qty: o.qty,
                limit: o.limit,
                filled: o.filled,
                status: o.status,
            })
            .collect()
    }

    /// The last report number given to gateway `gw_id` (0: none).
    pub(crate) fn last_seq(&self, gw_id: &str) -> u64 {
        self.gw_by_id
            .get(gw_id)
            .map_or(0, |&g| self.gateways[g as usize].seq)
    }

    // ---- recovery --------------------------------------------------------------------------

    fn replay(&mut self, r: Record) {
        match r {
            Record::Gateway { gw, seq } => {
                let g = self.gateway(&gw);
                let g = &mut self.gateways[g as usize];
                g.seq = g.seq.max(seq);
            }
            Record::Order(rec) => self.replay_order(rec),
            Record::Report { gw, prio, er } => {
                let g = self.gateway(&gw);
                let oi = self.gateways[g as usize].orders.get(&er.order_id).copied();
                if let (Some(oi), false) = (oi, er.status_report) {
                    let o = &mut self.orders[oi as usize];
                    match er.status {
                        ExecStatus::Accepted
                        | ExecStatus::PartiallyFilled
                        | ExecStatus::Filled
                        | ExecStatus::Canceled
                        | ExecStatus::Rejected => {
                            o.status = er.status;
                            o.filled = o.filled.max(er.filled_qty_total);
                        }
                        ExecStatus::Replaced => {
                            o.qty = er.qty.unwrap_or(o.qty);
                            o.limit = er.limit_price.or(o.limit);
                            if prio > 0 {
                                o.prio = prio;
                            }
                        }
                        _ => {}
                    }
                }
                let g = &mut self.gateways[g as usize];
                g.seq = g.seq.max(er.seq);
                let mut line = Vec::with_capacity(200);
                encode_line(&FromVenue::Exec(er), &mut line);
                g.retained.push_back((g.seq, line.into()));
                while g.retained.len() > self.cfg.retention {
                    g.retained.pop_front();
                }
            }
        }
    }

    fn replay_order(&mut self, rec: OrderRecord) {
        let gw = self.gateway(&rec.gw);
        let msg = NewOrderMsg {
            seq: 0,
            order_id: rec.order_id.clone(),
            symbol: rec.symbol.clone(),
            side: rec.side.clone(),
            qty: Some(rec.qty),
            price: rec.price,
            order_type: rec.order_type.clone(),
            time_in_force: rec.time_in_force.clone(),
        };
        let v = validate(&msg).ok();
        let o = ClientOrder {
            gw,
            id: rec.order_id.clone(),
            symbol: v.as_ref().map(|v| v.symbol),
            symbol_raw: rec.symbol,
            side_raw: rec.side,
            type_raw: rec.order_type,
            tif_raw: rec.time_in_force,
            book: None,
            side: v.as_ref().map_or(Side::Buy, |v| v.side),
            qty: rec.qty,
            limit: rec.price,
            filled: rec.filled,
            status: rec.status,
            key: 0,
            prio: rec.prio,
        };
        match self.gateways[gw as usize].orders.get(&rec.order_id) {
            Some(&oi) => self.orders[oi as usize] = o,
            None => {
                let oi = self.orders.len() as u32;
                self.orders.push(o);
                self.gateways[gw as usize].orders.insert(rec.order_id, oi);
            }
        }
    }

    fn drop_pending_orders(&mut self) {
        let old = std::mem::take(&mut self.orders);
        for g in &mut self.gateways {
            g.orders.clear();
        }
        for o in old.into_iter().filter(|o| o.status != ExecStatus::Pending) {
            let oi = self.orders.len() as u32;
            self.gateways[o.gw as usize].orders.insert(o.id.clone(), oi);
            self.orders.push(o);
        }
    }

    /// Rewrites the log as the state just rebuilt (nothing if memory-only).
    fn compact(&mut self) {
        if self.store.is_none() {
            return;
        }
        let mut recs = Vec::new();
        for g in &self.gateways {
            recs.push(Record::Gateway {
                gw: g.id.clone(),
                seq: g.seq,
            });
            for (_, line) in &g.retained {
                // No priority stamps here: the order lines below carry them.
                if let FromVenue::Exec(er) = decode_er(line) {
                    recs.push(Record::Report {
                        gw: g.id.clone(),
                        prio: 0,
                        er,
                    });
                }
            }
        }
        // Orders after the reports: their state overrides whatever the reports replay.
        for o in &self.orders {
            recs.push(Record::Order(o.record(&self.gateways[o.gw as usize].id)));
        }
        let store = self.store.as_mut().expect("checked above");
        if let Err(e) = store.rewrite(&recs) {
            tracing::warn!(error = %e, "state log compaction failed; appending to the old log");
        }
    }

    /// Puts the open client orders back into their books, oldest priority first.
    fn restore_resting(&mut self) {
        let mut open: Vec<u32> = (0..self.orders.len() as u32)
            .filter(|&oi| self.orders[oi as usize].is_open())
            .collect();
        open.sort_by_key(|&oi| self.orders[oi as usize].prio);
        let mut fills = std::mem::take(&mut self.fills);
        for oi in open {
            let o = &self.orders[oi as usize];
            let (Some(symbol), Some(price)) = (o.symbol, o.limit) else {
                continue;
            };
            let (side, open_qty, filled) = (o.side, o.qty.saturating_sub(o.filled), o.filled);
            if open_qty == 0 {
                continue;
            }
            let (id, _) = self.market.open_book(symbol);
            self.ensure_book_state(id);
            if self.cfg.mm.enabled && self.books[id.0 as usize].mm.is_none() {
                let configured = self.cfg.mm.symbols.iter().find(|(s, _)| *s == symbol);
                let reference = configured.map_or(price, |(_, p)| *p);
                self.books[id.0 as usize].mm = Some(MarketMaker::new(reference));
            }
            let key = self.alloc_key();
            let o = &mut self.orders[oi as usize];
            o.key = key;
            o.book = Some(id);
            fills.clear();
            self.by_key.insert(key, oi);
            let restored = self
                .market
                .restore(id, key, side, price, open_qty, filled, &mut fills);
            self.apply_fills(&fills);
            match restored {
                Ok(p) if p.resting > 0 => {}
                Ok(_) => {
                    self.by_key.remove(&key);
                }
                Err(e) => {
                    self.by_key.remove(&key);
                    tracing::error!(error = %e, "could not restore a resting order");
                }
            }
            self.touch(id);
        }
        self.fills = fills;
    }
}

fn encoded(msg: &FromVenue) -> Arc<[u8]> {
    let mut line = Vec::with_capacity(128);
    encode_line(msg, &mut line);
    line.into()
}

fn decode_er(line: &[u8]) -> FromVenue {
    switchyard_protocol::venue::decode_from_venue(&line[..line.len() - 1])
        .expect("own report decodes")
}

fn reject(ref_seq: u64, reason: String) -> FromVenue {
    FromVenue::Reject(SessionReject { ref_seq, reason })
}

fn unknown_report(order_id: &str, status: ExecStatus) -> ExecReport {
    ExecReport {
        seq: 0,
        order_id: order_id.to_string(),
        status,
        filled_qty_delta: 0,
        filled_qty_total: 0,
        price: None,
        qty: None,
        limit_price: None,
        at: iso8601_ms(now_ms()),
        reason: Some(switchyard_protocol::venue::REASON_UNKNOWN_ORDER.into()),
        status_report: false,
    }
}

/// Checks a `NEW`; the error is the `REJECTED` reason.
fn validate(n: &NewOrderMsg) -> Result<Valid, &'static str> {
    let symbol = match n.symbol.as_deref() {
        None | Some("") => return Err("MISSING_SYMBOL"),
        Some(s) => Symbol::parse(s.as_bytes()).map_err(|_| "BAD_SYMBOL")?,
    };
    let side = match n.side.as_deref() {
        None => return Err("MISSING_SIDE"),
        Some(s) => Side::parse(s).ok_or("BAD_SIDE")?,
    };
    let qty = match n.qty {
        None => return Err("MISSING_QTY"),
        Some(0) => return Err("BAD_QTY"),
        Some(q) => q,
    };
    let order_type = match n.order_type.as_deref() {
        // A reference gateway sends no type: a price means LIMIT, none means MARKET.
        None => {
            if n.price.is_some() {
                OrderType::Limit
            } else {
                OrderType::Market
            }
        }
        Some(t) => OrderType::parse(t).ok_or("BAD_ORDER_TYPE")?,
    };
    let limit = match (order_type, n.price) {
        (OrderType::Market, _) => None,
        (OrderType::Limit, None) => return Err("MISSING_PRICE"),
        (OrderType::Limit, Some(0)) => return Err("BAD_PRICE"),
        (OrderType::Limit, Some(p)) => Some(p),
    };
    let ioc = match n
        .time_in_force
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GTC") | Some("DAY") | Some("GTD") => false,
        Some("IOC") => true,
        Some(_) => return Err("BAD_TIME_IN_FORCE"),
    };
    Ok(Valid {
        symbol,
        side,
        limit,
        ioc,
        qty,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn new(
        symbol: Option<&str>,
        side: Option<&str>,
        qty: Option<u64>,
        price: Option<u64>,
    ) -> NewOrderMsg {
        NewOrderMsg {
            seq: 0,
            order_id: "o".into(),
            symbol: symbol.map(Into::into),
            side: side.map(Into::into),
            qty,
            price,
            order_type: None,
            time_in_force: None,
        }
    }

    // Goal: every malformed NEW has its own reject reason; reference-style NEWs are valid.
    #[test]
    fn validation_reasons() {
        let r = |n: NewOrderMsg| validate(&n).err();
        assert_eq!(
            r(new(None, Some("BUY"), Some(1), Some(1))),
            Some("MISSING_SYMBOL")
        );
        assert_eq!(
            r(new(Some("TOO-LONG-SYM"), Some("BUY"), Some(1), Some(1))),
            Some("BAD_SYMBOL")
        );
        assert_eq!(
            r(new(Some("A"), Some("HOLD"), Some(1), Some(1))),
            Some("BAD_SIDE")
        );
        assert_eq!(
            r(new(Some("A"), Some("BUY"), None, Some(1))),
            Some("MISSING_QTY")
        );
        assert_eq!(
            r(new(Some("A"), Some("BUY"), Some(0), Some(1))),
            Some("BAD_QTY")
        );
        let mut n = new(Some("A"), Some("BUY"), Some(1), None);
        n.order_type = Some("LIMIT".into());
        assert_eq!(r(n.clone()), Some("MISSING_PRICE"));
        n.price = Some(0);
        assert_eq!(r(n.clone()), Some("BAD_PRICE"));
        n.price = Some(5);
        n.time_in_force = Some("FOK".into());
        assert_eq!(r(n), Some("BAD_TIME_IN_FORCE"));
        let v = validate(&new(Some("btc"), Some("sell"), Some(3), None)).unwrap();
        assert_eq!(
            (v.limit, v.side, v.symbol.as_str()),
            (None, Side::Sell, "BTC")
        );
        let v = validate(&new(Some("BTC"), Some("BUY"), Some(3), Some(9))).unwrap();
        assert_eq!((v.limit, v.ioc), (Some(9), false));
    }
}
