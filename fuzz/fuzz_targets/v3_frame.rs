//! Goal: the v3 binary TCP frames (`protocol::v3frame`) decode exactly as §2.4 lays them out.
//!
//! The input is a byte stream cut into 304-byte request frames, as the TCP ingress cuts what
//! it reads (the remainder waits for more bytes). For every frame:
//! - `decode_request` gives the same answer as a reference decoder written from the layout in
//!   the module doc (same error code, in the same check order; same fields);
//! - a decoded frame re-encodes (`encode_request`) to the same bytes, apart from the bytes
//!   the decoder ignores (token after its length, symbol after its NUL, padding, a MARKET
//!   order's price, the unused tail), and decoding that again gives the same request;
//! - the token and symbol it returns are views of the frame at their documented offsets.
//!
//! The first 32 bytes are also read as a response frame: `Response::decode` then `encode`
//! gives back the bytes (apart from the reserved byte 1), and `decode(encode(r)) == r`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use switchyard_core::{OrderType, Side};
use switchyard_protocol::v3frame::{
    decode_request, encode_request, DecodeError, Request, RequestFields, Response, REQUEST_LEN,
    RESPONSE_LEN, TOKEN_MAX,
};

/// A well-formed frame as the layout reads it.
#[derive(Debug, PartialEq, Eq)]
struct Layout {
    token: Vec<u8>,
    symbol: Vec<u8>,
    side: u8,
    order_type: u8,
    qty: u64,
    price: Option<u64>,
}

/// The reference decoder: §2.4 as the module doc states it, checks in the reference's order.
fn reference(f: &[u8; REQUEST_LEN]) -> Result<Layout, DecodeError> {
    let token_len = usize::from(u16::from_le_bytes([f[0], f[1]]));
    if !(1..=TOKEN_MAX).contains(&token_len) {
        return Err(DecodeError::BadTokenLen);
    }
    let sym = &f[258..274];
    let sym_len = sym.iter().position(|&b| b == 0).unwrap_or(16);
    if sym_len == 0 || std::str::from_utf8(&sym[..sym_len]).is_err() {
        return Err(DecodeError::BadSymbol);
    }
    if !matches!(f[274], 1 | 2) {
        return Err(DecodeError::BadSide);
    }
    if !matches!(f[275], 1 | 2) {
        return Err(DecodeError::BadType);
    }
    if std::str::from_utf8(&f[2..2 + token_len]).is_err() {
        return Err(DecodeError::BadTokenUtf8);
    }
    let u64_at = |at: usize| u64::from_le_bytes(f[at..at + 8].try_into().expect("8 bytes"));
    Ok(Layout {
        token: f[2..2 + token_len].to_vec(),
        symbol: sym[..sym_len].to_vec(),
        side: f[274],
        order_type: f[275],
        qty: u64_at(280),
        price: (f[275] == 1).then(|| u64_at(288)),
    })
}

fn side_code(s: Side) -> u8 {
    match s {
        Side::Buy => 1,
        Side::Sell => 2,
    }
}

fn type_code(t: OrderType) -> u8 {
    match t {
        OrderType::Limit => 1,
        OrderType::Market => 2,
    }
}

/// A decoded request as the layout describes it.
fn layout(r: &Request<'_>) -> Layout {
    let o = &r.order;
    Layout {
        token: r.token.to_vec(),
        symbol: o.symbol.to_vec(),
        side: o.side.map_or(0, side_code),
        order_type: type_code(o.order_type),
        qty: o.qty,
        price: o.price,
    }
}

fn check_frame(frame: &[u8; REQUEST_LEN]) {
    let got = decode_request(frame);
    let want = reference(frame);
    let r = match (&got, want) {
        (Err(g), Err(w)) => {
            assert_eq!(*g, w, "decode error differs from the layout's");
            return;
        }
        (Ok(r), Ok(w)) => {
            assert_eq!(layout(r), w, "decoded fields differ from the layout's");
            // Views of the frame at their offsets, not copies.
            assert_eq!(r.token.as_ptr(), frame[2..].as_ptr(), "token not at 2");
            assert_eq!(
                r.order.symbol.as_ptr(),
                frame[258..].as_ptr(),
                "symbol not at 258"
            );
            r
        }
        (g, w) => panic!("decoder says {g:?}, the layout says {w:?}"),
    };
    // Re-encode; what the decoder ignores is zero in the re-encoded frame.
    let price_field = u64::from_le_bytes(frame[288..296].try_into().unwrap());
    let again = encode_request(&RequestFields {
        token: r.token,
        symbol: r.order.symbol,
        side: side_code(r.order.side.expect("decoded side")),
        order_type: type_code(r.order.order_type),
        qty: r.order.qty,
        price: r.order.price.unwrap_or(price_field),
    });
    let mut canonical = *frame;
    canonical[2 + r.token.len()..258].fill(0);
    canonical[258 + r.order.symbol.len()..274].fill(0);
    canonical[276..280].fill(0);
    canonical[296..].fill(0);
    assert_eq!(
        again[..],
        canonical[..],
        "re-encoded frame differs from the decoded one"
    );
    let r2 = decode_request(&again).expect("a re-encoded frame decodes");
    assert_eq!(layout(&r2), layout(r), "decode(encode(decode(f))) differs");
}

fn check_response(b: &[u8; RESPONSE_LEN]) {
    let r = Response::decode(b);
    let mut bytes = *b;
    bytes[1] = 0; // reserved
    assert_eq!(r.encode(), bytes, "response re-encodes differently");
    assert_eq!(Response::decode(&r.encode()), r);
}

fuzz_target!(|data: &[u8]| {
    for chunk in data.chunks_exact(REQUEST_LEN) {
        check_frame(chunk.try_into().expect("exact chunk"));
    }
    // Short inputs still reach the decoder: zero-padded to one frame.
    if data.len() < REQUEST_LEN {
        let mut frame = [0u8; REQUEST_LEN];
        frame[..data.len()].copy_from_slice(data);
        check_frame(&frame);
    }
    if let Some(head) = data.get(..RESPONSE_LEN) {
        check_response(head.try_into().expect("32 bytes"));
    }
});
