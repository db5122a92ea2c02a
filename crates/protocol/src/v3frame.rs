//! The v3 binary TCP frames (§2.4). All integers little-endian; fixed sizes, no header.
//!
//! Request, 304 bytes: `token_len u16 @0` (1..=256), `jwt [256] @2`, `symbol [16] @258`
//! (ASCII, NUL-padded), `side u8 @274` (1 BUY, 2 SELL), `type u8 @275` (1 LIMIT, 2 MARKET),
//! pad 4, `qty u64 @280`, `price u64 @288` (ignored for MARKET), unused 8.
//! Response, 32 bytes: `kind u8 @0`, reserved, `status u16 @2`, `reason u32 @4`,
//! `sessionSeq u64 @8`, `attemptSeq u64 @16`, `receivedAtNs u64 @24`.

use switchyard_core::risk::OrderInput;
use switchyard_core::{OrderType, Reason, Side, TimeInForce};

pub const REQUEST_LEN: usize = 304;
pub const RESPONSE_LEN: usize = 32;
pub const TOKEN_MAX: usize = 256;
const TOKEN_AT: usize = 2;
const SYMBOL_AT: usize = 258;
const SYMBOL_LEN: usize = 16;
const SIDE_AT: usize = 274;
const TYPE_AT: usize = 275;
const QTY_AT: usize = 280;
const PRICE_AT: usize = 288;

/// Response `kind` byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    Accept = 0,
    Rejected = 1,
    Killed = 2,
    /// Decode and auth failures.
    DecodeError = 4,
}

/// Decode failures with the reference's reason codes (HTTP-equivalent status 422).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
pub enum DecodeError {
    BadTokenLen = 101,
    BadSymbol = 102,
    BadSide = 103,
    BadType = 104,
    BadTokenUtf8 = 105,
}

impl DecodeError {
    pub fn code(self) -> u32 {
        self as u32
    }
}

/// A decoded request frame, borrowing the token and symbol from the frame buffer.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub token: &'a [u8],
    pub order: OrderInput<'a>,
}

fn u64_at(b: &[u8; REQUEST_LEN], at: usize) -> u64 {
    let mut v = [0u8; 8];
    v.copy_from_slice(&b[at..at + 8]);
    u64::from_le_bytes(v)
}

/// Decodes one request frame; the checks run in the reference's code order.
pub fn decode_request(frame: &[u8; REQUEST_LEN]) -> Result<Request<'_>, DecodeError> {
    let token_len = u16::from_le_bytes([frame[0], frame[1]]) as usize;
    if token_len == 0 || token_len > TOKEN_MAX {
        return Err(DecodeError::BadTokenLen);
    }
    let token = &frame[TOKEN_AT..TOKEN_AT + token_len];
    let raw_symbol = &frame[SYMBOL_AT..SYMBOL_AT + SYMBOL_LEN];
    let sym_len = raw_symbol
        .iter()
        .position(|&b| b == 0)
        .unwrap_or(SYMBOL_LEN);
    let symbol = &raw_symbol[..sym_len];
    if symbol.is_empty() || std::str::from_utf8(symbol).is_err() {
        return Err(DecodeError::BadSymbol);
    }
    let side = Side::from_code(frame[SIDE_AT]).ok_or(DecodeError::BadSide)?;
    let order_type = OrderType::from_code(frame[TYPE_AT]).ok_or(DecodeError::BadType)?;
    if std::str::from_utf8(token).is_err() {
        return Err(DecodeError::BadTokenUtf8);
    }
    let price = match order_type {
        OrderType::Limit => Some(u64_at(frame, PRICE_AT)),
        OrderType::Market => None,
    };
    Ok(Request {
        token,
        order: OrderInput {
            symbol,
            side: Some(side),
            order_type,
            time_in_force: TimeInForce::Gtc,
            qty: u64_at(frame, QTY_AT),
            price,
            expire_at_ms: None,
        },
    })
}

/// Fields of a request frame for encoders (load generators, tests). Raw codes are kept so
/// that invalid frames can be built on purpose.
#[derive(Debug, Clone, Copy)]
pub struct RequestFields<'a> {
    pub token: &'a [u8],
    pub symbol: &'a [u8],
    pub side: u8,
    pub order_type: u8,
    pub qty: u64,
    pub price: u64,
}

/// Encodes a request frame. Oversized token/symbol are cut to fit (the length field keeps the
/// real token length so a too-long token still produces decode error 101).
pub fn encode_request(f: &RequestFields<'_>) -> [u8; REQUEST_LEN] {
    let mut b = [0u8; REQUEST_LEN];
    b[0..2].copy_from_slice(&(f.token.len().min(u16::MAX as usize) as u16).to_le_bytes());
    let t = f.token.len().min(TOKEN_MAX);
    b[TOKEN_AT..TOKEN_AT + t].copy_from_slice(&f.token[..t]);
    let s = f.symbol.len().min(SYMBOL_LEN);
    b[SYMBOL_AT..SYMBOL_AT + s].copy_from_slice(&f.symbol[..s]);
    b[SIDE_AT] = f.side;
    b[TYPE_AT] = f.order_type;
    b[QTY_AT..QTY_AT + 8].copy_from_slice(&f.qty.to_le_bytes());
    b[PRICE_AT..PRICE_AT + 8].copy_from_slice(&f.price.to_le_bytes());
    b
}

/// A response frame's fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Response {
    pub kind: u8,
    pub status: u16,
    pub reason: u32,
    pub session_seq: u64,
    pub attempt_seq: u64,
    pub received_at_ns: u64,
}

impl Response {
    pub fn accept(session_seq: u64, received_at_ns: u64) -> Response {
        Response {
            kind: Kind::Accept as u8,
            status: 202,
            reason: 0,
            session_seq,
            attempt_seq: session_seq,
            received_at_ns,
        }
    }

    pub fn refused(reason: Reason, received_at_ns: u64) -> Response {
        Response {
            kind: reason.verdict().tcp_kind(),
            status: reason.http_status(),
            reason: reason.tcp_code(),
            session_seq: 0,
            attempt_seq: 0,
            received_at_ns,
        }
    }

    pub fn decode_error(err: DecodeError, received_at_ns: u64) -> Response {
        Response::error(422, err.code(), received_at_ns)
    }

    /// Auth failures and other errors reported with kind DECODE_ERROR.
    pub fn error(status: u16, reason: u32, received_at_ns: u64) -> Response {
        Response {
            kind: Kind::DecodeError as u8,
            status,
            reason,
            session_seq: 0,
            attempt_seq: 0,
            received_at_ns,
        }
    }

    pub fn encode(&self) -> [u8; RESPONSE_LEN] {
        let mut b = [0u8; RESPONSE_LEN];
        b[0] = self.kind;
        b[2..4].copy_from_slice(&self.status.to_le_bytes());
        b[4..8].copy_from_slice(&self.reason.to_le_bytes());
        b[8..16].copy_from_slice(&self.session_seq.to_le_bytes());
        b[16..24].copy_from_slice(&self.attempt_seq.to_le_bytes());
        b[24..32].copy_from_slice(&self.received_at_ns.to_le_bytes());
        b
    }

    pub fn decode(b: &[u8; RESPONSE_LEN]) -> Response {
        let u64_at = |at: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&b[at..at + 8]);
            u64::from_le_bytes(v)
        };
        Response {
            kind: b[0],
            status: u16::from_le_bytes([b[2], b[3]]),
            reason: u32::from_le_bytes([b[4], b[5], b[6], b[7]]),
            session_seq: u64_at(8),
            attempt_seq: u64_at(16),
            received_at_ns: u64_at(24),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn fields<'a>(token: &'a [u8], symbol: &'a [u8]) -> RequestFields<'a> {
        RequestFields {
            token,
            symbol,
            side: 1,
            order_type: 1,
            qty: 100,
            price: 15_000,
        }
    }

    // Goal: a well-formed frame decodes to the same fields, at the documented offsets.
    #[test]
    fn roundtrip_and_offsets() {
        let f = encode_request(&fields(b"abc.def.ghi", b"AAPL"));
        assert_eq!(&f[0..2], &11u16.to_le_bytes());
        assert_eq!(&f[258..262], b"AAPL");
        assert_eq!(f[274], 1);
        assert_eq!(&f[280..288], &100u64.to_le_bytes());
        let r = decode_request(&f).unwrap();
        assert_eq!(r.token, b"abc.def.ghi");
        assert_eq!(r.order.symbol, b"AAPL");
        assert_eq!(r.order.side, Some(Side::Buy));
        assert_eq!(r.order.qty, 100);
        assert_eq!(r.order.price, Some(15_000));
    }

    // Goal: each decode error code is produced by the matching defect.
    #[test]
    fn decode_errors() {
        let mut f = encode_request(&fields(b"tok", b"AAPL"));
        f[0..2].copy_from_slice(&0u16.to_le_bytes());
        assert_eq!(decode_request(&f).unwrap_err(), DecodeError::BadTokenLen);
        f[0..2].copy_from_slice(&257u16.to_le_bytes());
        assert_eq!(decode_request(&f).unwrap_err(), DecodeError::BadTokenLen);
        let f = encode_request(&fields(b"tok", b""));
        assert_eq!(decode_request(&f).unwrap_err(), DecodeError::BadSymbol);
        let f = encode_request(&fields(b"tok", &[0xff, 0xfe]));
        assert_eq!(decode_request(&f).unwrap_err(), DecodeError::BadSymbol);
        let mut x = fields(b"tok", b"AAPL");
        x.side = 3;
        assert_eq!(
            decode_request(&encode_request(&x)).unwrap_err(),
            DecodeError::BadSide
        );
        x.side = 2;
        x.order_type = 0;
        assert_eq!(
            decode_request(&encode_request(&x)).unwrap_err(),
            DecodeError::BadType
        );
        let f = encode_request(&fields(&[0xc3, 0x28], b"AAPL"));
        assert_eq!(decode_request(&f).unwrap_err(), DecodeError::BadTokenUtf8);
        // MARKET ignores the price field.
        x.order_type = 2;
        assert_eq!(
            decode_request(&encode_request(&x)).unwrap().order.price,
            None
        );
    }

    // Goal: response frames keep the documented layout both ways.
    #[test]
    fn response_layout() {
        let r = Response::accept(42, 7);
        let b = r.encode();
        assert_eq!(b[0], 0);
        assert_eq!(&b[2..4], &202u16.to_le_bytes());
        assert_eq!(&b[8..16], &42u64.to_le_bytes());
        assert_eq!(&b[16..24], &42u64.to_le_bytes());
        assert_eq!(Response::decode(&b), r);
        let k = Response::refused(Reason::QueueKilled, 1);
        assert_eq!((k.kind, k.status, k.reason), (2, 503, 2201));
    }

    proptest! {
        // Goal: no byte pattern makes the decoder panic.
        #[test]
        fn decoder_total(bytes in prop::collection::vec(any::<u8>(), REQUEST_LEN)) {
            let frame: [u8; REQUEST_LEN] = bytes.try_into().unwrap();
            let _ = decode_request(&frame);
        }
    }
}
