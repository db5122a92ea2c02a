//! What the gateway writes into the journal: record kinds and their binary payloads.
//!
//! The journal frames and checksums records; this module gives them meaning. Payloads are
//! fixed little-endian fields followed by length-prefixed strings, encoded into the engine's
//! reused batch buffer (no allocation per order) and decoded borrowing from the read buffer.

use serde_json::{json, Value};
use switchyard_core::{NewOrder, OrderId, OrderStatus, OrderType, Side, Symbol, TimeInForce};

pub const KIND_V3_ORDER_ACCEPTED: u16 = 1;
pub const KIND_V3_DURABLE_REJECTED: u16 = 2;
pub const KIND_KILL_SWITCH: u16 = 3;
pub const KIND_CLEAN_SHUTDOWN: u16 = 4;
pub const KIND_ORDER_ACCEPTED: u16 = 5;
pub const KIND_CANCEL_REQUESTED: u16 = 6;
pub const KIND_ORDER_UPDATED: u16 = 7;
pub const KIND_ORDER_SENT: u16 = 8;
pub const KIND_CANCEL_SENT: u16 = 9;
pub const KIND_EXECUTION_REPORT: u16 = 10;
pub const KIND_AMEND_REQUESTED: u16 = 11;
pub const KIND_REPLACE_SENT: u16 = 12;
pub const KIND_RESTART_FLOOR: u16 = 13;

pub fn kind_name(kind: u16) -> &'static str {
    match kind {
        KIND_V3_ORDER_ACCEPTED => "V3OrderAccepted",
        KIND_V3_DURABLE_REJECTED => "V3DurableRejected",
        KIND_KILL_SWITCH => "KillSwitch",
        KIND_CLEAN_SHUTDOWN => "CleanShutdown",
        KIND_ORDER_ACCEPTED => "OrderAccepted",
        KIND_CANCEL_REQUESTED => "CancelRequested",
        KIND_ORDER_UPDATED => "OrderUpdated",
        KIND_ORDER_SENT => "OrderSent",
        KIND_CANCEL_SENT => "CancelSent",
        KIND_EXECUTION_REPORT => "ExecutionReport",
        KIND_AMEND_REQUESTED => "AmendRequested",
        KIND_REPLACE_SENT => "ReplaceSent",
        KIND_RESTART_FLOOR => "RestartFloor",
        _ => "Unknown",
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("record payload of kind {kind} is malformed: {what}")]
pub struct PayloadError {
    pub kind: u16,
    pub what: &'static str,
}

/// An accepted v3 order: everything needed to rebuild the order, confirm and risk state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3OrderAccepted<'a> {
    pub order_id: OrderId,
    pub session_seq: u64,
    pub received_at_ns: u64,
    pub shard: u16,
    pub order: NewOrder,
    pub session_id: &'a str,
    pub account_id: &'a str,
}

fn push_str8(out: &mut Vec<u8>, s: &[u8]) {
    let n = fit(s, 255);
    out.push(n as u8);
    out.extend_from_slice(&s[..n]);
}

fn push_str16(out: &mut Vec<u8>, s: &[u8]) {
    let n = fit(s, u16::MAX as usize);
    out.extend_from_slice(&(n as u16).to_le_bytes());
    out.extend_from_slice(&s[..n]);
}

/// How many bytes of the UTF-8 text `s` fit in `max`, cut at a character boundary: a string
/// cut inside a character would not decode, and replay would stop at its record.
fn fit(s: &[u8], max: usize) -> usize {
    let mut n = s.len().min(max);
    // Back off continuation bytes (0b10xx_xxxx) to the start of the character.
    while n > 0 && n < s.len() && s[n] & 0xc0 == 0x80 {
        n -= 1;
    }
    n
}

impl V3OrderAccepted<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.order_id.0,
            self.session_seq,
            self.received_at_ns,
            self.order.qty,
            self.order.price,
            self.order.expire_at_ms.unwrap_or(0),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&self.shard.to_le_bytes());
        out.push(self.order.side as u8);
        out.push(self.order.order_type as u8);
        out.push(self.order.time_in_force as u8);
        push_str8(out, self.order.symbol.as_bytes());
        push_str8(out, self.session_id.as_bytes());
        push_str8(out, self.account_id.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<V3OrderAccepted<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_V3_ORDER_ACCEPTED,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let order_id = OrderId(r.u64().ok_or(e("order id"))?);
        let session_seq = r.u64().ok_or(e("session seq"))?;
        let received_at_ns = r.u64().ok_or(e("received at"))?;
        let qty = r.u64().ok_or(e("qty"))?;
        let price = r.u64().ok_or(e("price"))?;
        let expire = r.u64().ok_or(e("expire at"))?;
        let shard = r.u16().ok_or(e("shard"))?;
        let side = r.u8().and_then(Side::from_code).ok_or(e("side"))?;
        let order_type = r.u8().and_then(OrderType::from_code).ok_or(e("type"))?;
        let time_in_force = r.u8().and_then(TimeInForce::from_code).ok_or(e("tif"))?;
        let symbol = r
            .str8()
            .and_then(|s| Symbol::parse(s.as_bytes()).ok())
            .ok_or(e("symbol"))?;
        let session_id = r.str8().ok_or(e("session id"))?;
        let account_id = r.str8().ok_or(e("account id"))?;
        r.end().ok_or(e("trailing bytes"))?;
        Ok(V3OrderAccepted {
            order_id,
            session_seq,
            received_at_ns,
            shard,
            order: NewOrder {
                symbol,
                side,
                order_type,
                time_in_force,
                qty,
                price,
                expire_at_ms: (expire != 0).then_some(expire),
            },
            session_id,
            account_id,
        })
    }
}

/// An order accepted on the durable path (`/orders`): everything needed to rebuild the order,
/// its idempotency key and the account's risk state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderAccepted<'a> {
    pub order_id: OrderId,
    /// The gateway-wide acceptance counter (`acceptSeq`, `requestId` = `req_<acceptSeq>`).
    pub accept_seq: u64,
    pub received_at_ns: u64,
    pub order: NewOrder,
    pub account_id: &'a str,
    pub idempotency_key: &'a str,
    pub client_order_id: Option<&'a str>,
    /// The venue chosen at acceptance ("" when no venue is configured): journaled with the
    /// order so that after a restart it goes to, and is cancelled at, the same venue.
    pub venue: &'a str,
}

impl OrderAccepted<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.order_id.0,
            self.accept_seq,
            self.received_at_ns,
            self.order.qty,
            self.order.price,
            self.order.expire_at_ms.unwrap_or(0),
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(self.order.side as u8);
        out.push(self.order.order_type as u8);
        out.push(self.order.time_in_force as u8);
        out.push(self.client_order_id.is_some() as u8);
        push_str8(out, self.order.symbol.as_bytes());
        push_str8(out, self.account_id.as_bytes());
        push_str16(out, self.idempotency_key.as_bytes());
        push_str16(out, self.client_order_id.unwrap_or("").as_bytes());
        push_str8(out, self.venue.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<OrderAccepted<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_ORDER_ACCEPTED,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let order_id = OrderId(r.u64().ok_or(e("order id"))?);
        let accept_seq = r.u64().ok_or(e("accept seq"))?;
        let received_at_ns = r.u64().ok_or(e("received at"))?;
        let qty = r.u64().ok_or(e("qty"))?;
        let price = r.u64().ok_or(e("price"))?;
        let expire = r.u64().ok_or(e("expire at"))?;
        let side = r.u8().and_then(Side::from_code).ok_or(e("side"))?;
        let order_type = r.u8().and_then(OrderType::from_code).ok_or(e("type"))?;
        let time_in_force = r.u8().and_then(TimeInForce::from_code).ok_or(e("tif"))?;
        let has_cid = r.u8().ok_or(e("flags"))? != 0;
        let symbol = r
            .str8()
            .and_then(|s| Symbol::parse(s.as_bytes()).ok())
            .ok_or(e("symbol"))?;
        let account_id = r.str8().ok_or(e("account id"))?;
        let idempotency_key = r.str16().ok_or(e("idempotency key"))?;
        let cid = r.str16().ok_or(e("client order id"))?;
        // Records written before routing existed end here.
        let venue = if r.at == p.len() {
            ""
        } else {
            r.str8().ok_or(e("venue"))?
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(OrderAccepted {
            order_id,
            accept_seq,
            received_at_ns,
            order: NewOrder {
                symbol,
                side,
                order_type,
                time_in_force,
                qty,
                price,
                expire_at_ms: (expire != 0).then_some(expire),
            },
            account_id,
            idempotency_key,
            client_order_id: has_cid.then_some(cid),
            venue,
        })
    }
}

/// A change of a durable-path order: a cancel request (`CancelRequested`) or a new status
/// (`OrderUpdated`, also used for the fills venues report later).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OrderChange<'a> {
    pub order_id: OrderId,
    pub status: OrderStatus,
    pub filled: u64,
    pub account_id: &'a str,
}

impl OrderChange<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.order_id.0.to_le_bytes());
        out.extend_from_slice(&self.filled.to_le_bytes());
        out.push(self.status as u8);
        push_str8(out, self.account_id.as_bytes());
    }

    pub fn decode(kind: u16, p: &[u8]) -> Result<OrderChange<'_>, PayloadError> {
        let e = |what| PayloadError { kind, what };
        let mut r = Reader { buf: p, at: 0 };
        let change = OrderChange {
            order_id: OrderId(r.u64().ok_or(e("order id"))?),
            filled: r.u64().ok_or(e("filled"))?,
            status: r.u8().and_then(OrderStatus::from_code).ok_or(e("status"))?,
            account_id: r.str8().ok_or(e("account id"))?,
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(change)
    }
}

/// A message the gateway sent a venue about an order: `OrderSent` (NEW), `CancelSent`,
/// `ReplaceSent`. Journaled when the session hands it to the socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VenueSent<'a> {
    pub order_id: OrderId,
    pub account_id: &'a str,
    pub venue: &'a str,
}

impl VenueSent<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.order_id.0.to_le_bytes());
        push_str8(out, self.account_id.as_bytes());
        push_str8(out, self.venue.as_bytes());
    }

    pub fn decode(kind: u16, p: &[u8]) -> Result<VenueSent<'_>, PayloadError> {
        let e = |what| PayloadError { kind, what };
        let mut r = Reader { buf: p, at: 0 };
        let sent = VenueSent {
            order_id: OrderId(r.u64().ok_or(e("order id"))?),
            account_id: r.str8().ok_or(e("account id"))?,
            venue: r.str8().ok_or(e("venue"))?,
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(sent)
    }
}

/// An execution report as the venue sent it, journaled before its effect is visible to
/// anyone, so that replay re-applies exactly the reports the gateway applied. `venue_seq`
/// rebuilds the session's "applied without a gap" watermark.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecutionRecord<'a> {
    pub order_id: OrderId,
    pub venue_seq: u64,
    pub filled_delta: u64,
    pub filled_total: u64,
    /// Fill price; 0 = none.
    pub price: u64,
    /// The order's size and limit price as the venue holds them (status reports, REPLACED);
    /// 0 = not given.
    pub qty: u64,
    pub limit_price: u64,
    pub status: switchyard_protocol::venue::ExecStatus,
    pub status_report: bool,
    pub account_id: &'a str,
    pub venue: &'a str,
    /// The venue's reason (rejects, venue cancels, unknown orders); "" = none.
    pub reason: &'a str,
}

impl ExecutionRecord<'_> {
    /// The report as `execution_report` stream events, the events API and dumps show it.
    pub fn to_json(&self) -> Value {
        let opt = |v: u64| (v > 0).then_some(v);
        json!({
            "orderId": order_ref(self.order_id), "accountId": self.account_id,
            "venue": self.venue, "venueSeq": self.venue_seq, "status": self.status.as_str(),
            "filledQtyDelta": self.filled_delta, "filledQtyTotal": self.filled_total,
            "price": opt(self.price), "qty": opt(self.qty), "limitPrice": opt(self.limit_price),
            "statusReport": self.status_report,
            "reason": (!self.reason.is_empty()).then_some(self.reason),
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.order_id.0,
            self.venue_seq,
            self.filled_delta,
            self.filled_total,
            self.price,
            self.qty,
            self.limit_price,
        ] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.push(self.status as u8);
        out.push(self.status_report as u8);
        push_str8(out, self.account_id.as_bytes());
        push_str8(out, self.venue.as_bytes());
        push_str8(out, self.reason.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<ExecutionRecord<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_EXECUTION_REPORT,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let rec = ExecutionRecord {
            order_id: OrderId(r.u64().ok_or(e("order id"))?),
            venue_seq: r.u64().ok_or(e("venue seq"))?,
            filled_delta: r.u64().ok_or(e("filled delta"))?,
            filled_total: r.u64().ok_or(e("filled total"))?,
            price: r.u64().ok_or(e("price"))?,
            qty: r.u64().ok_or(e("qty"))?,
            limit_price: r.u64().ok_or(e("limit price"))?,
            status: r
                .u8()
                .and_then(switchyard_protocol::venue::ExecStatus::from_code)
                .ok_or(e("status"))?,
            status_report: r.u8().ok_or(e("status report"))? != 0,
            account_id: r.str8().ok_or(e("account id"))?,
            venue: r.str8().ok_or(e("venue"))?,
            reason: r.str8().ok_or(e("reason"))?,
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(rec)
    }
}

/// A client's amend (`POST /orders/{id}/amend`): the order's requested new size and price.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AmendRequested<'a> {
    pub order_id: OrderId,
    pub qty: u64,
    pub price: u64,
    pub account_id: &'a str,
}

impl AmendRequested<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [self.order_id.0, self.qty, self.price] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        push_str8(out, self.account_id.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<AmendRequested<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_AMEND_REQUESTED,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let rec = AmendRequested {
            order_id: OrderId(r.u64().ok_or(e("order id"))?),
            qty: r.u64().ok_or(e("qty"))?,
            price: r.u64().ok_or(e("price"))?,
            account_id: r.str8().ok_or(e("account id"))?,
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(rec)
    }
}

/// Where a gateway that restarted after a crash starts numbering: the `acceptSeq` and each
/// shard's order-id counter it starts from, and each v3 session's last handed-out seq.
/// Journaled (and fdatasync'ed) at startup before anything is numbered, so that a later
/// restart starts above everything this incarnation may have handed out even if none of it
/// reached the journal. Replay takes these as floors. Several records when the sessions do
/// not fit one payload (the later ones carry sessions only: zero `accept_seq`, no shards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestartFloor<'a> {
    pub accept_seq: u64,
    /// Next order-id counter per shard.
    pub next_order: Vec<u64>,
    /// (session id, last seq handed out).
    pub sessions: Vec<(&'a str, u64)>,
}

impl RestartFloor<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.accept_seq.to_le_bytes());
        out.extend_from_slice(&(self.next_order.len() as u16).to_le_bytes());
        for n in &self.next_order {
            out.extend_from_slice(&n.to_le_bytes());
        }
        out.extend_from_slice(&(self.sessions.len() as u32).to_le_bytes());
        for (id, seq) in &self.sessions {
            push_str8(out, id.as_bytes());
            out.extend_from_slice(&seq.to_le_bytes());
        }
    }

    pub fn decode(p: &[u8]) -> Result<RestartFloor<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_RESTART_FLOOR,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let accept_seq = r.u64().ok_or(e("accept seq"))?;
        let shards = r.u16().ok_or(e("shards"))?;
        let next_order = (0..shards)
            .map(|_| r.u64().ok_or(e("next order")))
            .collect::<Result<_, _>>()?;
        let n = r
            .take(4)
            .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .ok_or(e("sessions"))?;
        let mut sessions = Vec::new();
        for _ in 0..n {
            let id = r.str8().ok_or(e("session id"))?;
            sessions.push((id, r.u64().ok_or(e("session seq"))?));
        }
        r.end().ok_or(e("trailing bytes"))?;
        Ok(RestartFloor {
            accept_seq,
            next_order,
            sessions,
        })
    }
}

/// A v3 order that was acknowledged but could not be made durable (fixing §8.9: the
/// reference kept these in memory only).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct V3DurableRejected<'a> {
    pub session_seq: u64,
    pub reason: u8,
    pub session_id: &'a str,
}

impl V3DurableRejected<'_> {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.session_seq.to_le_bytes());
        out.push(self.reason);
        push_str8(out, self.session_id.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<V3DurableRejected<'_>, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_V3_DURABLE_REJECTED,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let rec = V3DurableRejected {
            session_seq: r.u64().ok_or(e("session seq"))?,
            reason: r.u8().ok_or(e("reason"))?,
            session_id: r.str8().ok_or(e("session id"))?,
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(rec)
    }
}

/// Kill switch scopes (§2.3.1 rows 1–3 plus accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum KillScope {
    Global = 0,
    Shard = 1,
    Session = 2,
    Account = 3,
}

impl KillScope {
    pub fn parse(s: &str) -> Option<KillScope> {
        match s.to_ascii_lowercase().as_str() {
            "global" => Some(KillScope::Global),
            "shard" => Some(KillScope::Shard),
            "session" => Some(KillScope::Session),
            "account" => Some(KillScope::Account),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            KillScope::Global => "global",
            KillScope::Shard => "shard",
            KillScope::Session => "session",
            KillScope::Account => "account",
        }
    }

    fn from_u8(v: u8) -> Option<KillScope> {
        [
            KillScope::Global,
            KillScope::Shard,
            KillScope::Session,
            KillScope::Account,
        ]
        .into_iter()
        .find(|s| *s as u8 == v)
    }
}

/// Who flipped a switch: an operator, or the gateway protecting itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum KillCause {
    Operator = 0,
    QueueWatermark = 1,
    LossSuspect = 2,
    AutoRecover = 3,
}

impl KillCause {
    pub fn as_str(self) -> &'static str {
        match self {
            KillCause::Operator => "operator",
            KillCause::QueueWatermark => "queue_watermark",
            KillCause::LossSuspect => "loss_suspect",
            KillCause::AutoRecover => "auto_recover",
        }
    }

    fn from_u8(v: u8) -> Option<KillCause> {
        [
            KillCause::Operator,
            KillCause::QueueWatermark,
            KillCause::LossSuspect,
            KillCause::AutoRecover,
        ]
        .into_iter()
        .find(|s| *s as u8 == v)
    }
}

/// A kill switch change, journaled so that switches survive restarts and can be audited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KillSwitchChange {
    pub scope: KillScope,
    /// Shard number, session id or account id; empty for global.
    pub id: String,
    pub on: bool,
    pub cause: KillCause,
    /// The operator (token account) or a short explanation.
    pub by: String,
    pub note: String,
}

impl KillSwitchChange {
    pub fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.scope as u8);
        out.push(self.on as u8);
        out.push(self.cause as u8);
        push_str8(out, self.id.as_bytes());
        push_str8(out, self.by.as_bytes());
        push_str8(out, self.note.as_bytes());
    }

    pub fn decode(p: &[u8]) -> Result<KillSwitchChange, PayloadError> {
        let e = |what| PayloadError {
            kind: KIND_KILL_SWITCH,
            what,
        };
        let mut r = Reader { buf: p, at: 0 };
        let change = KillSwitchChange {
            scope: r.u8().and_then(KillScope::from_u8).ok_or(e("scope"))?,
            on: r.u8().ok_or(e("on"))? != 0,
            cause: r.u8().and_then(KillCause::from_u8).ok_or(e("cause"))?,
            id: r.str8().ok_or(e("id"))?.to_string(),
            by: r.str8().ok_or(e("by"))?.to_string(),
            note: r.str8().ok_or(e("note"))?.to_string(),
        };
        r.end().ok_or(e("trailing bytes"))?;
        Ok(change)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// `Some` when every byte was read (a payload has nothing after its last field).
    fn end(&self) -> Option<()> {
        (self.at == self.buf.len()).then_some(())
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(s)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_le_bytes([b[0], b[1]]))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
    }
    fn str8(&mut self) -> Option<&'a str> {
        let n = self.u8()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
    fn str16(&mut self) -> Option<&'a str> {
        let n = self.u16()? as usize;
        std::str::from_utf8(self.take(n)?).ok()
    }
}

/// The external id of a durable-path order: `ord_` and 16 hex digits (shard and counter).
pub fn order_ref(id: OrderId) -> String {
    let mut s = Vec::with_capacity(20);
    s.extend_from_slice(b"ord_");
    switchyard_protocol::json::push_hex(&mut s, id.0, 16);
    // ASCII by construction.
    String::from_utf8(s).unwrap_or_default()
}

/// The inverse of [`order_ref`].
pub fn parse_order_ref(s: &str) -> Option<OrderId> {
    let hex = s.strip_prefix("ord_")?;
    // Sixteen hex digits: `from_str_radix` alone also takes a sign ("ord_+0…").
    if hex.len() != 16 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(hex, 16).ok().map(OrderId)
}

/// A record as JSON for `switchyard journal dump` and incident hand-over.
pub fn to_json(seq: u64, time_ns: u64, kind: u16, payload: &[u8]) -> Value {
    let data = match kind {
        KIND_V3_ORDER_ACCEPTED => V3OrderAccepted::decode(payload).map(|o| {
            json!({
                "orderId": o.order_id.0, "sessionId": o.session_id, "sessionSeq": o.session_seq,
                "accountId": o.account_id, "shard": o.shard, "symbol": o.order.symbol.as_str(),
                "side": o.order.side.as_str(), "type": o.order.order_type.as_str(),
                "timeInForce": o.order.time_in_force.as_str(), "qty": o.order.qty, "price": o.order.price,
                "expireAt": o.order.expire_at_ms, "receivedAtNs": o.received_at_ns,
            })
        }),
        KIND_V3_DURABLE_REJECTED => V3DurableRejected::decode(payload).map(|r| {
            json!({
                "sessionId": r.session_id, "sessionSeq": r.session_seq,
                "reason": switchyard_core::reason::ConfirmReason::from_u8(r.reason).as_str(),
            })
        }),
        KIND_KILL_SWITCH => KillSwitchChange::decode(payload).map(|k| {
            json!({
                "scope": k.scope.as_str(), "id": k.id, "on": k.on,
                "cause": k.cause.as_str(), "by": k.by, "note": k.note,
            })
        }),
        KIND_CLEAN_SHUTDOWN => Ok(json!({})),
        KIND_RESTART_FLOOR => RestartFloor::decode(payload).map(|f| {
            json!({
                "acceptSeq": f.accept_seq, "nextOrder": f.next_order,
                "sessions": f.sessions.len(),
            })
        }),
        KIND_ORDER_ACCEPTED => OrderAccepted::decode(payload).map(|o| {
            json!({
                "orderId": order_ref(o.order_id), "acceptSeq": o.accept_seq,
                "accountId": o.account_id, "idempotencyKey": o.idempotency_key,
                "clientOrderId": o.client_order_id, "symbol": o.order.symbol.as_str(),
                "side": o.order.side.as_str(), "type": o.order.order_type.as_str(),
                "timeInForce": o.order.time_in_force.as_str(), "qty": o.order.qty, "price": o.order.price,
                "expireAt": o.order.expire_at_ms, "receivedAtNs": o.received_at_ns,
                "venue": o.venue,
            })
        }),
        KIND_ORDER_SENT | KIND_CANCEL_SENT | KIND_REPLACE_SENT => VenueSent::decode(kind, payload).map(|v| {
            json!({ "orderId": order_ref(v.order_id), "accountId": v.account_id, "venue": v.venue })
        }),
        KIND_EXECUTION_REPORT => ExecutionRecord::decode(payload).map(|x| x.to_json()),
        KIND_AMEND_REQUESTED => AmendRequested::decode(payload).map(|a| {
            json!({
                "orderId": order_ref(a.order_id), "accountId": a.account_id,
                "qty": a.qty, "price": a.price,
            })
        }),
        KIND_CANCEL_REQUESTED | KIND_ORDER_UPDATED => OrderChange::decode(kind, payload).map(|c| {
            json!({
                "orderId": order_ref(c.order_id), "accountId": c.account_id,
                "status": c.status.as_str(), "filledQty": c.filled,
            })
        }),
        _ => Ok(json!({ "bytes": payload.len() })),
    };
    let data = data.unwrap_or_else(|e| json!({ "error": e.to_string() }));
    json!({ "seq": seq, "timeNs": time_ns, "type": kind_name(kind), "data": data })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sample() -> V3OrderAccepted<'static> {
        V3OrderAccepted {
            order_id: OrderId::new(3, 99),
            session_seq: 7,
            received_at_ns: 123,
            shard: 3,
            order: NewOrder {
                symbol: Symbol::parse(b"AAPL").unwrap(),
                side: Side::Sell,
                order_type: OrderType::Limit,
                time_in_force: TimeInForce::Gtd,
                qty: 100,
                price: 15_000,
                expire_at_ms: Some(9),
            },
            session_id: "sess-1",
            account_id: "acct-1",
        }
    }

    // Goal: every payload decodes to what was encoded.
    #[test]
    fn roundtrips() {
        let mut b = Vec::new();
        sample().encode(&mut b);
        assert_eq!(V3OrderAccepted::decode(&b).unwrap(), sample());
        let k = KillSwitchChange {
            scope: KillScope::Session,
            id: "s".into(),
            on: true,
            cause: KillCause::LossSuspect,
            by: "gateway".into(),
            note: "3 loss suspects".into(),
        };
        b.clear();
        k.encode(&mut b);
        assert_eq!(KillSwitchChange::decode(&b).unwrap(), k);
        let r = V3DurableRejected {
            session_seq: 5,
            reason: 1,
            session_id: "s",
        };
        b.clear();
        r.encode(&mut b);
        assert_eq!(V3DurableRejected::decode(&b).unwrap(), r);
        let key = "k".repeat(600);
        for cid in [None, Some("c-1")] {
            let o = OrderAccepted {
                order_id: OrderId::new(1, 42),
                accept_seq: 9,
                received_at_ns: 5,
                order: NewOrder {
                    symbol: Symbol::parse(b"BTC").unwrap(),
                    side: Side::Buy,
                    order_type: OrderType::Market,
                    time_in_force: TimeInForce::Ioc,
                    qty: 3,
                    price: 0,
                    expire_at_ms: None,
                },
                account_id: "a",
                idempotency_key: &key,
                client_order_id: cid,
                venue: if cid.is_some() { "simA" } else { "" },
            };
            b.clear();
            o.encode(&mut b);
            assert_eq!(OrderAccepted::decode(&b).unwrap(), o);
        }
        let c = OrderChange {
            order_id: OrderId::new(0, 1),
            status: OrderStatus::Canceled,
            filled: 2,
            account_id: "a",
        };
        b.clear();
        c.encode(&mut b);
        assert_eq!(OrderChange::decode(KIND_ORDER_UPDATED, &b).unwrap(), c);
        assert_eq!(parse_order_ref(&order_ref(c.order_id)), Some(c.order_id));
        let v = VenueSent {
            order_id: OrderId::new(2, 5),
            account_id: "a",
            venue: "simB",
        };
        b.clear();
        v.encode(&mut b);
        assert_eq!(VenueSent::decode(KIND_ORDER_SENT, &b).unwrap(), v);
        let x = ExecutionRecord {
            order_id: OrderId::new(2, 5),
            venue_seq: 77,
            filled_delta: 2,
            filled_total: 5,
            price: 101,
            qty: 9,
            limit_price: 102,
            status: switchyard_protocol::venue::ExecStatus::PartiallyFilled,
            status_report: true,
            account_id: "a",
            venue: "simB",
            reason: "UNKNOWN_ORDER",
        };
        b.clear();
        x.encode(&mut b);
        assert_eq!(ExecutionRecord::decode(&b).unwrap(), x);
        let a = AmendRequested {
            order_id: OrderId::new(2, 5),
            qty: 12,
            price: 0,
            account_id: "a",
        };
        b.clear();
        a.encode(&mut b);
        assert_eq!(AmendRequested::decode(&b).unwrap(), a);
        let f = RestartFloor {
            accept_seq: 1 << 21,
            next_order: vec![1 << 20, (1 << 20) + 7],
            sessions: vec![("s-1", 9), ("s-2", (1 << 20) + 3)],
        };
        b.clear();
        f.encode(&mut b);
        assert_eq!(RestartFloor::decode(&b).unwrap(), f);
        assert_eq!(parse_order_ref("ord_xyz"), None);
    }

    // Goal: strings longer than their length field are cut at a character boundary, so the
    // record still decodes (fuzz: a venue `reason` of 254 ASCII bytes and an `é` was cut in
    // the middle of the `é`, and replay then stopped at that record).
    #[test]
    fn long_strings_are_cut_between_characters() {
        let reason = format!("{}é", "x".repeat(254));
        let key = format!("{}ϡ", "k".repeat(65_534));
        let x = ExecutionRecord {
            order_id: OrderId::new(2, 5),
            venue_seq: 1,
            filled_delta: 0,
            filled_total: 0,
            price: 0,
            qty: 0,
            limit_price: 0,
            status: switchyard_protocol::venue::ExecStatus::Rejected,
            status_report: false,
            account_id: "a",
            venue: "simB",
            reason: &reason,
        };
        let mut b = Vec::new();
        x.encode(&mut b);
        let back = ExecutionRecord::decode(&b).unwrap();
        assert_eq!(back.reason, "x".repeat(254));
        b.clear();
        sample_order("a", &key).encode(&mut b);
        let o = OrderAccepted::decode(&b).unwrap();
        assert_eq!(o.idempotency_key, "k".repeat(65_534));
        assert_eq!(fit("ϡϡ".as_bytes(), 3), 2);
        assert_eq!(fit("ϡϡ".as_bytes(), 4), 4);
        assert_eq!(fit(b"", 0), 0);
    }

    fn sample_order<'a>(account_id: &'a str, idempotency_key: &'a str) -> OrderAccepted<'a> {
        OrderAccepted {
            order_id: OrderId::new(1, 42),
            accept_seq: 9,
            received_at_ns: 5,
            order: sample().order,
            account_id,
            idempotency_key,
            client_order_id: None,
            venue: "",
        }
    }

    // Goal: an order ref is `ord_` and 16 hex digits, nothing else (fuzz:
    // `ord_+002300000000005` was read as an order id).
    #[test]
    fn order_refs_are_hex_digits_only() {
        assert_eq!(parse_order_ref("ord_+002300000000005"), None);
        assert_eq!(parse_order_ref("ord_-002300000000005"), None);
        assert_eq!(parse_order_ref("ord_ 002300000000005"), None);
        let id = OrderId::new(2, 5);
        assert_eq!(parse_order_ref("ord_0002000000000005"), Some(id));
        assert_eq!(
            parse_order_ref("ord_000200000000000A"),
            Some(OrderId(id.0 + 5))
        );
    }

    // Goal: the hand-written hex of `order_ref` is exactly `ord_{:016x}` and reads back.
    #[test]
    fn order_refs_are_sixteen_lower_hex_digits() {
        for v in [0, 1, 0xa, 0xdead_beef, 0x0123_4567_89ab_cdef, u64::MAX] {
            let r = order_ref(OrderId(v));
            assert_eq!(r, format!("ord_{v:016x}"));
            assert_eq!(parse_order_ref(&r), Some(OrderId(v)));
        }
    }

    // Goal: a payload with bytes after its last field is refused by every decoder (fuzz:
    // `V3DurableRejected` and `KillSwitchChange` read past nothing and accepted them).
    #[test]
    fn trailing_bytes_are_refused() {
        let mut b = Vec::new();
        V3DurableRejected {
            session_seq: 5,
            reason: 1,
            session_id: "s",
        }
        .encode(&mut b);
        b.extend_from_slice(&[0, 0]);
        assert!(V3DurableRejected::decode(&b).is_err());
        b.clear();
        KillSwitchChange {
            scope: KillScope::Global,
            id: String::new(),
            on: true,
            cause: KillCause::Operator,
            by: "ops".into(),
            note: String::new(),
        }
        .encode(&mut b);
        assert!(KillSwitchChange::decode(&b).is_ok());
        b.push(0);
        assert!(KillSwitchChange::decode(&b).is_err());
    }

    proptest! {
        // Goal: truncated or garbage payloads are errors, never panics.
        #[test]
        fn garbage_is_an_error(cut in 0usize..80, junk in prop::collection::vec(any::<u8>(), 0..100)) {
            let mut b = Vec::new();
            sample().encode(&mut b);
            if cut < b.len() {
                prop_assert!(V3OrderAccepted::decode(&b[..cut]).is_err());
            }
            let _ = V3OrderAccepted::decode(&junk);
            let _ = KillSwitchChange::decode(&junk);
            let _ = V3DurableRejected::decode(&junk);
            let _ = OrderAccepted::decode(&junk);
            let _ = OrderChange::decode(KIND_ORDER_UPDATED, &junk);
            let _ = VenueSent::decode(KIND_ORDER_SENT, &junk);
            let _ = ExecutionRecord::decode(&junk);
            let _ = AmendRequested::decode(&junk);
            let _ = RestartFloor::decode(&junk);
        }
    }
}
