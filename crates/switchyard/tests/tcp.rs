//! The v3 binary protocol (§2.4) on the wire: decode errors 101–105 (kind 4, status 422) with
//! the connection kept open, 500 pipelined frames answered in order with consecutive sequence
//! numbers, frames split across TCP segments, and abrupt disconnects.

mod common;

use std::io::Write;
use std::time::Duration;

use common::*;
use switchyard_protocol::v3frame::{Response, REQUEST_LEN};

const TOKEN_LEN_AT: usize = 0;
const TOKEN_AT: usize = 2;
const SYMBOL_AT: usize = 258;
const SIDE_AT: usize = 274;
const TYPE_AT: usize = 275;

/// A valid frame with one defect applied; returns it with the decode error code it must get.
fn defective(tok: &str, defect: u32) -> Vec<u8> {
    let mut f = frame(tok, "AAPL", 1, 1, 1, 100);
    match defect {
        101 => f[TOKEN_LEN_AT..TOKEN_LEN_AT + 2].copy_from_slice(&0u16.to_le_bytes()),
        102 => f[SYMBOL_AT..SYMBOL_AT + 16].fill(0),
        103 => f[SIDE_AT] = 3,
        104 => f[TYPE_AT] = 0,
        105 => f[TOKEN_AT] = 0xff,
        _ => unreachable!(),
    }
    f
}

// Goal: each frame defect gets its decode code 101–105 (kind 4, 422) and the connection stays usable.
#[test]
fn decode_errors_keep_the_connection() {
    // Each decode defect gets its code — 101 token_len 0 or > 256, 102 empty or non-UTF-8 symbol,
    // 103 side not 1/2, 104 type not 1/2, 105 token not UTF-8 — as kind 4 with 422, and the
    // connection stays usable after every one.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "1")]);
    let tok = token("tcp-dec");
    let mut cases: Vec<(Vec<u8>, u32)> = [101, 102, 103, 104, 105]
        .iter()
        .map(|&c| (defective(&tok, c), c))
        .collect();
    let mut long = frame(&tok, "AAPL", 1, 1, 1, 100);
    long[0..2].copy_from_slice(&257u16.to_le_bytes());
    cases.push((long, 101));
    let mut bad_utf8_symbol = frame(&tok, "AAPL", 1, 1, 1, 100);
    bad_utf8_symbol[SYMBOL_AT] = 0xc3; // a lone UTF-8 lead byte
    cases.push((bad_utf8_symbol, 102));
    let mut sell9 = frame(&tok, "AAPL", 9, 1, 1, 100);
    sell9[SIDE_AT] = 9;
    cases.push((sell9, 103));
    cases.push((frame(&tok, "AAPL", 1, 3, 1, 100), 104));
    // Checks run in the reference's order: token length before everything else.
    let mut several = defective(&tok, 103);
    several[0..2].copy_from_slice(&0u16.to_le_bytes());
    cases.push((several, 101));
    let mut s = tcp_connect(gw.tcp);
    let mut seq = 0;
    for (f, code) in cases {
        let r = tcp_exchange(&mut s, &[f, frame(&tok, "AAPL", 1, 1, 1, 100)]);
        assert_frame(&r[0], KIND_DECODE_ERROR, 422, code);
        seq += 1;
        assert_eq!(
            (r[1].kind, r[1].status, r[1].session_seq),
            (KIND_ACCEPT, 202, seq),
            "after {code}: {:?}",
            r[1]
        );
    }
    assert!(metric(gw.http, "gateway_v3_decode_error_total") >= 10.0);
}

// Goal: 500 pipelined frames get 500 in-order answers, seqs +1, malformed ones answered in place.
#[test]
fn pipelined_500_frames_in_order() {
    // 500 frames written in one go on one connection get 500 responses in request order: accepted
    // ones carry sessionSeq = attemptSeq increasing by exactly 1, the malformed frames in the
    // middle (codes 101–105) and a business refusal (INVALID_QTY 1001) are answered in their place,
    // and later frames are still accepted.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "1")]);
    let tok = token("tcp-pipe");
    let special: [(usize, u32); 7] = [
        (100, 102),
        (101, 103),
        (200, 101),
        (250, 104),
        (300, 105),
        (301, 1001),
        (499, 103),
    ];
    let frames: Vec<Vec<u8>> = (0..500)
        .map(|i| match special.iter().find(|(at, _)| *at == i) {
            Some((_, 1001)) => frame(&tok, "AAPL", 1, 1, 0, 100),
            Some((_, code)) => defective(&tok, *code),
            // Distinct quantities: nothing is coalesced or reordered unnoticed.
            None => frame(&tok, "AAPL", 1 + (i % 2) as u8, 1, 1 + (i % 7) as u64, 100),
        })
        .collect();
    let mut s = tcp_connect(gw.tcp);
    let resp = tcp_exchange(&mut s, &frames);
    assert_eq!(resp.len(), 500);
    let mut seq = 0;
    for (i, r) in resp.iter().enumerate() {
        match special.iter().find(|(at, _)| *at == i) {
            Some((_, 1001)) => assert_frame(r, KIND_REJECTED, 422, 1001),
            Some((_, code)) => assert_frame(r, KIND_DECODE_ERROR, 422, *code),
            None => {
                seq += 1;
                assert_eq!(
                    (r.kind, r.status, r.reason, r.session_seq, r.attempt_seq),
                    (KIND_ACCEPT, 202, 0, seq, seq),
                    "frame {i}: {r:?}"
                );
                assert!(r.received_at_ns > 0);
            }
        }
    }
    assert_eq!(seq, 493);
    // The connection is still open and the sequence goes on.
    let r = tcp_exchange(&mut s, &[frame(&tok, "AAPL", 1, 1, 1, 100)]);
    assert_eq!(r[0].session_seq, 494, "{:?}", r[0]);
    wait_confirm(gw.http, &tok, "tcp-pipe", 494, "DURABLE_ACCEPTED");
}

// Goal: frames split across writes are reassembled; clients vanishing mid-frame do no harm.
#[test]
fn split_frames_and_disconnects() {
    // Frames arriving in pieces (a frame split over several writes, two frames straddling a write
    // boundary) are reassembled; a client vanishing mid-frame leaves the gateway serving.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[("V3_SHARD_COUNT", "1")]);
    let tok = token("tcp-split");
    let f = frame(&tok, "AAPL", 1, 1, 1, 100);
    let mut s = tcp_connect(gw.tcp);
    // One frame in three writes, each flushed separately (TCP_NODELAY).
    for part in [&f[..1], &f[1..200], &f[200..]] {
        s.write_all(part).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut buf = [0u8; 32];
    std::io::Read::read_exact(&mut s, &mut buf).unwrap();
    assert_eq!(Response::decode(&buf).session_seq, 1);
    // Two frames whose boundary falls inside the second write.
    let two = [f.clone(), f.clone()].concat();
    s.write_all(&two[..REQUEST_LEN + 7]).unwrap();
    s.flush().unwrap();
    std::thread::sleep(Duration::from_millis(5));
    s.write_all(&two[REQUEST_LEN + 7..]).unwrap();
    for seq in [2, 3] {
        std::io::Read::read_exact(&mut s, &mut buf).unwrap();
        assert_eq!(Response::decode(&buf).session_seq, seq);
    }
    // Half a frame, then the client goes away.
    {
        let mut gone = tcp_connect(gw.tcp);
        gone.write_all(&f[..150]).unwrap();
    }
    // Half a frame, then a half-close: no answer, no crash.
    {
        let mut half = tcp_connect(gw.tcp);
        half.write_all(&f[..150]).unwrap();
        half.shutdown(std::net::Shutdown::Write).unwrap();
        let mut rest = Vec::new();
        std::io::Read::read_to_end(&mut half, &mut rest).unwrap();
        assert!(
            rest.is_empty(),
            "an incomplete frame was answered: {rest:?}"
        );
    }
    let r = tcp_one(gw.tcp, f.clone());
    assert_eq!((r.kind, r.session_seq), (KIND_ACCEPT, 4), "{r:?}");
    assert_eq!(http_get(gw.http, "/health", None).unwrap().0, 200);
}
