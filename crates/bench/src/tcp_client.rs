//! Binary TCP client pieces: connecting, the request frame, decoding and naming responses.

use std::borrow::Cow;
use std::io;
use std::net::SocketAddr;

use bytes::{Buf, BytesMut};
use switchyard_protocol::v3frame::{
    encode_request, DecodeError, RequestFields, Response, REQUEST_LEN, RESPONSE_LEN,
};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::config::OrderSpec;
use crate::stats::{ConnStats, OrderCheck};

pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    // Frames are written as soon as they are due; Nagle would hold them back.
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// The request frame of one connection: every frame it sends is identical.
pub fn build_frame(token: &str, order: &OrderSpec) -> [u8; REQUEST_LEN] {
    encode_request(&RequestFields {
        token: token.as_bytes(),
        symbol: order.symbol.as_bytes(),
        side: order.side.code(),
        order_type: 1, // LIMIT
        qty: order.qty,
        price: order.price,
    })
}

/// A name for a response's reason code: the gateway's reason word when it is one, the frame
/// decoder's and the authenticator's codes spelled out, the number otherwise.
pub fn reason_name(code: u32) -> Cow<'static, str> {
    use switchyard_auth::tcp_reason;
    let fixed = match code {
        c if c == DecodeError::BadTokenLen.code() => "DECODE_BAD_TOKEN_LEN",
        c if c == DecodeError::BadSymbol.code() => "DECODE_BAD_SYMBOL",
        c if c == DecodeError::BadSide.code() => "DECODE_BAD_SIDE",
        c if c == DecodeError::BadType.code() => "DECODE_BAD_TYPE",
        c if c == DecodeError::BadTokenUtf8.code() => "DECODE_BAD_TOKEN_UTF8",
        tcp_reason::INVALID => "AUTH_INVALID",
        tcp_reason::EXPIRED => "AUTH_EXPIRED",
        tcp_reason::NOT_YET_VALID => "AUTH_NOT_YET_VALID",
        tcp_reason::INTERNAL => "AUTH_INTERNAL",
        c => match switchyard_core::Reason::from_tcp_code(c) {
            Some(r) => r.as_str(),
            None => return Cow::Owned(format!("CODE_{c}")),
        },
    };
    Cow::Borrowed(fixed)
}

/// Counts one response; accepted ones also go through the per-connection order check.
pub fn record(stats: &mut ConnStats, order: &mut OrderCheck, r: &Response) {
    if r.status == 202 {
        stats.record_response(202, None);
        if !order.observe(r.session_seq) {
            stats.order_violations += 1;
        }
    } else {
        stats.record_response(r.status, Some(&reason_name(r.reason)));
    }
}

/// Buffered reader of 32-byte response frames.
pub struct FrameReader {
    buf: BytesMut,
}

impl Default for FrameReader {
    fn default() -> Self {
        FrameReader::new()
    }
}

impl FrameReader {
    pub fn new() -> FrameReader {
        FrameReader {
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// Reads whatever the socket has (at least one byte); EOF is an error because the caller
    /// only reads while answers are outstanding.
    pub async fn fill<R: AsyncReadExt + Unpin>(&mut self, r: &mut R) -> io::Result<()> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 * 1024);
        }
        if r.read_buf(&mut self.buf).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "server closed the connection",
            ));
        }
        Ok(())
    }

    /// Takes the next complete frame, if buffered.
    pub fn next_frame(&mut self) -> Option<Response> {
        if self.buf.len() < RESPONSE_LEN {
            return None;
        }
        let mut frame = [0u8; RESPONSE_LEN];
        frame.copy_from_slice(&self.buf[..RESPONSE_LEN]);
        self.buf.advance(RESPONSE_LEN);
        Some(Response::decode(&frame))
    }

    /// Reads until one frame is available and returns it.
    pub async fn read_frame<R: AsyncReadExt + Unpin>(&mut self, r: &mut R) -> io::Result<Response> {
        loop {
            if let Some(f) = self.next_frame() {
                return Ok(f);
            }
            self.fill(r).await?;
        }
    }

    pub fn clear(&mut self) {
        self.buf.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::Reason;

    // Goal: reason codes map to the gateway's words, decoder/auth codes and unknowns get names.
    #[test]
    fn reason_names() {
        assert_eq!(reason_name(2101), "V3_BACKPRESSURE_SOFT");
        assert_eq!(
            reason_name(Reason::QueueKilled.tcp_code()),
            Reason::QueueKilled.as_str()
        );
        assert_eq!(reason_name(103), "DECODE_BAD_SIDE");
        assert_eq!(reason_name(202), "AUTH_EXPIRED");
        assert_eq!(reason_name(424242), "CODE_424242");
        assert_eq!(reason_name(9999), "CODE_9999");
    }

    // Goal: responses are counted by status and reason and accepts feed the order check.
    #[test]
    fn record_counts() {
        let mut s = ConnStats::new();
        let mut o = OrderCheck::default();
        record(&mut s, &mut o, &Response::accept(2, 0));
        record(&mut s, &mut o, &Response::accept(1, 0));
        record(
            &mut s,
            &mut o,
            &Response::refused(Reason::BackpressureSoft, 0),
        );
        assert_eq!((s.completed, s.accepted, s.order_violations), (3, 2, 1));
        assert_eq!(s.reasons["V3_BACKPRESSURE_SOFT"], 1);
    }
}
