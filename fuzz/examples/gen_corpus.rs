//! Writes the seed corpora under `fuzz/corpus/<target>/`: a few small valid inputs per
//! target, built with the project's own encoders so they stay valid as formats evolve.
//!
//! `cargo run --manifest-path fuzz/Cargo.toml --example gen_corpus` (from the repository root;
//! an argument overrides the output directory). Files are named `seed-*` and rewritten.

use std::fs;
use std::path::{Path, PathBuf};

use switchyard_core::{NewOrder, OrderId, OrderStatus, OrderType, Side, Symbol, TimeInForce};
use switchyard_fuzz::jwt::{sign, DEFAULT_SECRET, KID_SECRET};
use switchyard_fuzz::records::*;
use switchyard_journal::{HEADER_LEN, SEGMENT_HEADER_LEN, SEGMENT_MAGIC};
use switchyard_protocol::v3frame::{encode_request, RequestFields, Response};
use switchyard_protocol::venue::*;

fn write(dir: &Path, target: &str, name: &str, bytes: &[u8]) {
    let d = dir.join(target);
    fs::create_dir_all(&d).expect("corpus dir");
    fs::write(d.join(format!("seed-{name}")), bytes).expect("write seed");
}

fn v3(dir: &Path) {
    let token = sign(
        br#"{"alg":"HS256"}"#,
        br#"{"sub":"acct-1","exp":4102444800}"#,
        DEFAULT_SECRET.as_bytes(),
    );
    let limit = encode_request(&RequestFields {
        token: token.as_bytes(),
        symbol: b"AAPL",
        side: 1,
        order_type: 1,
        qty: 100,
        price: 15_000,
    });
    let market = encode_request(&RequestFields {
        token: b"abc.def.ghi",
        symbol: b"BTC-USD",
        side: 2,
        order_type: 2,
        qty: 3,
        price: 0,
    });
    write(dir, "v3_frame", "limit", &limit);
    let mut stream = limit.to_vec();
    stream.extend_from_slice(&market);
    stream.extend_from_slice(&limit[..100]);
    write(dir, "v3_frame", "stream", &stream);
    write(
        dir,
        "v3_frame",
        "response",
        &Response::accept(42, 7).encode(),
    );
}

fn http(dir: &Path) {
    let seeds: [(&str, &[u8]); 6] = [
        ("fixture", br#"{"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100,"timeInForce":"GTC","expireAt":null,"clientOrderId":"c-1"}"#),
        ("market", br#"{"symbol":"eth","side":"sell","type":"MARKET","qty":30,"timeInForce":"IOC"}"#),
        ("negative", br#"{"symbol":"A","side":"BUY","type":"LIMIT","qty":-1,"price":1.5}"#),
        ("amend", br#"{"qty":8,"price":101}"#),
        ("query", b"account=demo&since=2025-01-01T00%3A00%3A00Z&type=Fill+x&&c&d=%zz&e=%4"),
        ("escapes", br#"{"symbol":"A\u0042","side":"BUY","type":"LIMIT","qty":1,"clientOrderId":"\"\\\n\u00e9"}"#),
    ];
    for (name, body) in seeds {
        write(dir, "http_body", name, body);
    }
}

fn jwt(dir: &Path) {
    let signed = |mode: u8, header: &str, payload: &str| {
        let mut v = vec![mode];
        v.extend_from_slice(header.as_bytes());
        v.push(0xff);
        v.extend_from_slice(payload.as_bytes());
        v
    };
    let claims = r#"{"sub":"acct-1","accountId":"acct-1","iat":1700000000,"exp":1700003600,"scope":"trade ops"}"#;
    write(
        dir,
        "jwt",
        "default",
        &signed(1, r#"{"alg":"HS256","typ":"JWT"}"#, claims),
    );
    write(
        dir,
        "jwt",
        "kid",
        &signed(
            3,
            r#"{"alg":"HS256","kid":"k1"}"#,
            r#"{"sub":"s","exp":1700000030.5,"nbf":1699999990}"#,
        ),
    );
    write(
        dir,
        "jwt",
        "policy",
        &signed(
            1,
            r#"{"alg":"HS256"}"#,
            r#"{"accountId":"a","iss":"iss-1","aud":["x","aud-1"],"exp":1800000000,"scope":["a","b"]}"#,
        ),
    );
    let token = sign(
        br#"{"alg":"HS256","kid":"k1"}"#,
        claims.as_bytes(),
        KID_SECRET.as_bytes(),
    );
    let mut raw = vec![0u8];
    raw.extend_from_slice(token.as_bytes());
    write(dir, "jwt", "raw-token", &raw);
    let mut bearer = b"\0Bearer  ".to_vec();
    bearer.extend_from_slice(token.as_bytes());
    write(dir, "jwt", "bearer", &bearer);
}

/// Framed journal records `first..first+n` (CRC left 0: the input's mode bits stamp it).
fn frames(first: u64, n: u64) -> Vec<u8> {
    let mut out = Vec::new();
    for s in first..first + n {
        let payload = format!("record {s}");
        out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&s.to_le_bytes());
        out.extend_from_slice(&(s * 1_000).to_le_bytes());
        out.extend_from_slice(&[1 + (s % 12) as u8, 0, 0, 0]);
        out.extend_from_slice(payload.as_bytes());
    }
    assert!(out.len() >= HEADER_LEN * n as usize);
    out
}

/// One segment of the `journal_segments` input format.
fn seg(delta: u8, mode: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![delta, mode];
    v.extend_from_slice(&(body.len() as u16).to_le_bytes());
    v.extend_from_slice(body);
    v
}

fn journal(dir: &Path) {
    // Two clean segments: records 1..=3, then 4..=5 (header added, seq and CRC stamped).
    let mut clean = seg(0, 0b1111, &frames(1, 3));
    clean.extend(seg(0, 0b1111, &frames(4, 2)));
    write(dir, "journal_segments", "clean", &clean);
    // A torn tail: the last record cut short.
    let f = frames(1, 3);
    write(
        dir,
        "journal_segments",
        "torn",
        &seg(0, 0b1111, &f[..f.len() - 5]),
    );
    // Leftovers of a failed commit: the first segment holds 1..=4, the next restarts at 3.
    let mut sup = seg(0, 0b1111, &frames(1, 4));
    sup.extend(seg(2, 0b1111, &frames(3, 2)));
    write(dir, "journal_segments", "superseded", &sup);
    // A whole file given raw, header included; CRCs stamped.
    let mut file = SEGMENT_MAGIC.to_vec();
    file.extend_from_slice(&1u64.to_le_bytes());
    file.extend_from_slice(&frames(1, 2));
    assert!(file.len() > SEGMENT_HEADER_LEN);
    write(dir, "journal_segments", "raw-file", &seg(0, 0b0110, &file));
}

fn records(dir: &Path) {
    let order = NewOrder {
        symbol: Symbol::parse(b"AAPL").expect("symbol"),
        side: Side::Sell,
        order_type: OrderType::Limit,
        time_in_force: TimeInForce::Gtd,
        qty: 100,
        price: 15_000,
        expire_at_ms: Some(9),
    };
    let mut seeds: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut b = Vec::new();
    V3OrderAccepted {
        order_id: OrderId::new(3, 99),
        session_seq: 7,
        received_at_ns: 123,
        shard: 3,
        order,
        session_id: "sess-1",
        account_id: "acct-1",
    }
    .encode(&mut b);
    seeds.push(("v3-order", std::mem::take(&mut b)));
    OrderAccepted {
        order_id: OrderId::new(1, 42),
        accept_seq: 9,
        received_at_ns: 5,
        order,
        account_id: "a",
        idempotency_key: "key-1",
        client_order_id: Some("c-1"),
        venue: "simA",
    }
    .encode(&mut b);
    seeds.push(("order", std::mem::take(&mut b)));
    OrderChange {
        order_id: OrderId::new(0, 1),
        status: OrderStatus::Canceled,
        filled: 2,
        account_id: "a",
    }
    .encode(&mut b);
    seeds.push(("change", std::mem::take(&mut b)));
    ExecutionRecord {
        order_id: OrderId::new(2, 5),
        venue_seq: 77,
        filled_delta: 2,
        filled_total: 5,
        price: 101,
        qty: 9,
        limit_price: 102,
        status: ExecStatus::PartiallyFilled,
        status_report: true,
        account_id: "a",
        venue: "simB",
        reason: "UNKNOWN_ORDER",
    }
    .encode(&mut b);
    seeds.push(("exec", std::mem::take(&mut b)));
    KillSwitchChange {
        scope: KillScope::Session,
        id: "s".into(),
        on: true,
        cause: KillCause::LossSuspect,
        by: "gateway".into(),
        note: "3 loss suspects".into(),
    }
    .encode(&mut b);
    seeds.push(("kill", std::mem::take(&mut b)));
    V3DurableRejected {
        session_seq: 5,
        reason: 1,
        session_id: "s",
    }
    .encode(&mut b);
    seeds.push(("v3-rejected", std::mem::take(&mut b)));
    seeds.push(("order-ref", order_ref(OrderId::new(2, 5)).into_bytes()));
    for (name, bytes) in seeds {
        write(dir, "journal_records", name, &bytes);
    }
}

fn venue(dir: &Path) {
    let mut lines: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut line = |name, f: &dyn Fn(&mut Vec<u8>)| {
        let mut out = Vec::new();
        f(&mut out);
        out.pop(); // the '\n': readers cut it
        lines.push((name, out));
    };
    line("logon", &|o| {
        encode_line(
            &ToVenue::Logon(Logon {
                seq: 1,
                gateway_id: "gw-1".into(),
                last_seq: 41,
                heartbeat_ms: 1000,
                observer: false,
            }),
            o,
        )
    });
    line("new", &|o| {
        encode_line(
            &ToVenue::New(NewOrderMsg {
                seq: 2,
                order_id: "ord_0001000000000007".into(),
                symbol: Some("BTC-USD".into()),
                side: Some("BUY".into()),
                qty: Some(10),
                price: Some(101),
                order_type: Some("LIMIT".into()),
                time_in_force: Some("IOC".into()),
            }),
            o,
        )
    });
    line("replace", &|o| {
        encode_line(
            &ToVenue::Replace(ReplaceMsg {
                seq: 4,
                order_id: "ord_1".into(),
                qty: None,
                price: Some(99),
            }),
            o,
        )
    });
    line("er", &|o| {
        encode_line(
            &FromVenue::Exec(ExecReport {
                seq: 10,
                order_id: "ord_1".into(),
                status: ExecStatus::PartiallyFilled,
                filled_qty_delta: 3,
                filled_qty_total: 5,
                price: Some(100),
                qty: None,
                limit_price: None,
                at: iso8601_ms(1_700_000_000_123),
                reason: None,
                status_report: false,
            }),
            o,
        )
    });
    line("tob", &|o| {
        encode_line(
            &FromVenue::Tob(TopOfBook {
                symbol: "BTC-USD".into(),
                bid: Some(99),
                bid_qty: 4,
                ask: None,
                ask_qty: 0,
            }),
            o,
        )
    });
    line("ack", &|o| {
        encode_line(
            &FromVenue::LogonAck(LogonAck {
                venue: "simA".into(),
                last_seq: 9,
                heartbeat_ms: 500,
            }),
            o,
        )
    });
    lines.push((
        "reference-er",
        br#"{"orderId":"42","status":"FILLED","filledQtyDelta":2,"filledQtyTotal":5,"price":100,"at":"2024-01-01T00:00:00Z"}"#.to_vec(),
    ));
    // Refused: `type` twice (venue.rs `type_given_twice_is_an_error`).
    lines.push((
        "type-twice",
        br#"{"type":"HEARTBEAT","type":"HEARTBEAT","orderId":"1","status":"FILLED"}"#.to_vec(),
    ));
    for (name, bytes) in lines {
        write(dir, "venue_msg", name, &bytes);
    }
}

fn bus(dir: &Path) {
    let accepted = |order: &str, side: &str, seq: u64| {
        format!(
            r#"{{"type":"OrderAccepted","at":"2025-01-01T00:00:00.000Z","accountId":"acct-1","orderId":"{order}","data":{{"symbol":"BTC","side":"{side}","type":"LIMIT","qty":10,"price":100}},"source":"gw-1","seq":{seq}}}"#
        )
    };
    let report = |order: &str, delta: i64, total: i64, price: i64, seq: u64| {
        format!(
            r#"{{"type":"ExecutionReport","at":"2025-01-01T00:00:01.000Z","accountId":"acct-1","orderId":"{order}","data":{{"status":"PARTIALLY_FILLED","filledQtyDelta":{delta},"filledQtyTotal":{total},"price":{price},"venue":"simA","venueSeq":{seq},"statusReport":false}},"source":"gw-1","seq":{seq}}}"#
        )
    };
    let fixture = r#"{"type":"OrderAccepted","at":"2025-01-01T00:00:00Z","accountId":"acct-1","orderId":"ord-1","data":{"symbol":"BTC","side":"BUY","type":"LIMIT","qty":1,"price":100}}"#;
    write(dir, "bus_event", "fixture", fixture.as_bytes());
    let stream = [
        accepted("o1", "BUY", 1),
        report("o1", 2, 2, 100, 2),
        report("o1", 3, 5, 101, 3),
        accepted("o2", "SELL", 4),
        report("o2", 7, 7, 102, 5),
        report("o1", 0, 5, 0, 6),
    ]
    .join("\n");
    write(dir, "bus_event", "stream", stream.as_bytes());
    let big = [
        accepted("o1", "SELL", 1),
        report("o1", 1_000_000_000, 1_000_000_000, 1_000_000_000, 2),
        accepted("o2", "BUY", 3),
        report("o2", 1, 4_000_000_000_000_000_000, 2, 4),
    ]
    .join("\n");
    write(dir, "bus_event", "big", big.as_bytes());
    // The largest short there is, then reduced (rules.rs `reducing_the_largest_short`).
    let short = [
        accepted("o1", "SELL", 1),
        report("o1", 1, 1, 5, 2),
        accepted("o2", "SELL", 3),
        report("o2", i64::MAX, i64::MAX, 0, 4),
        accepted("o3", "BUY", 5),
        report("o3", 1, 1, 4, 6),
    ]
    .join("\n");
    write(dir, "bus_event", "largest-short", short.as_bytes());
}

fn main() {
    let dir: PathBuf = std::env::args_os()
        .nth(1)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("fuzz/corpus"));
    v3(&dir);
    http(&dir);
    jwt(&dir);
    journal(&dir);
    records(&dir);
    venue(&dir);
    bus(&dir);
    println!("seed corpora written under {}", dir.display());
}
