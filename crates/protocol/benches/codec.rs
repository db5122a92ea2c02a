//! Goal: cost of the wire formats on the hot path — decoding a v3 binary frame, parsing the
//! order JSON body (serde, borrowed), writing the accept response by hand, and encoding a
//! response frame.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use switchyard_protocol::http::{parse_order, write_volatile_accept};
use switchyard_protocol::v3frame::{decode_request, encode_request, RequestFields, Response};

fn bench(c: &mut Criterion) {
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJiZW5jaC0wIiwiYWNjb3VudElkIjoiYmVuY2gtMCIsImV4cCI6MX0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJlc2lnbmE";
    let frame = encode_request(&RequestFields {
        token: token.as_bytes(),
        symbol: b"AAPL",
        side: 1,
        order_type: 1,
        qty: 100,
        price: 15_000,
    });
    c.bench_function("v3frame/decode_request", |b| {
        b.iter(|| black_box(decode_request(black_box(&frame)).unwrap().order.qty))
    });
    c.bench_function("v3frame/encode_response", |b| {
        b.iter(|| black_box(Response::accept(black_box(42), 7).encode()))
    });
    let body = br#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000,"timeInForce":"GTC","expireAt":null,"clientOrderId":"c-1"}"#;
    c.bench_function("http/parse_order_and_input", |b| {
        b.iter(|| {
            let req = parse_order(black_box(body)).unwrap();
            black_box(req.to_input().unwrap().qty)
        })
    });
    let mut out = Vec::with_capacity(160);
    c.bench_function("http/write_volatile_accept", |b| {
        b.iter(|| {
            out.clear();
            write_volatile_accept(
                &mut out,
                black_box("bench-0"),
                42,
                1_795_000_000_000_000_000,
            );
            black_box(out.len())
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
