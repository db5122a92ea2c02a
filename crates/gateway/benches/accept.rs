//! Goal: measure the in-process v3 accept path — JSON decode, cached token verification,
//! principal lookup, risk, admission, reservation, sequence number and enqueue — without the
//! network, the way the hot path runs it. Criterion reports the mean; a second pass times every
//! call into an HDR histogram and prints p50/p99/p99.9, the figure the issue's target is about.
//! An engine stand-in thread drains the shard queue as the real engine would.

use std::sync::Arc;
use std::time::Instant;

use criterion::{black_box, criterion_group, Criterion};
use switchyard_gateway::accept::{submit, Timing};
use switchyard_gateway::clock::{mono_ns, wall_ns};
use switchyard_gateway::server::{build_shards, build_verifier};
use switchyard_gateway::state::{Gateway, Task};
use switchyard_gateway::Config;
use switchyard_protocol::http::parse_order;

const BODY: &[u8] =
    br#"{"symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000,"timeInForce":"GTC"}"#;
const SECRET: &str = "bench-secret";

fn gateway() -> Arc<Gateway> {
    let mut cfg = Config::default();
    cfg.auth.secret = SECRET.into();
    cfg.v3.shard_count = 1;
    cfg.v3.ingress_queue_capacity = 1 << 16;
    let risk = cfg.risk_limits().unwrap();
    let auth = build_verifier(&cfg).unwrap();
    let (shards, queues) = build_shards(&cfg);
    let (control, _control_rx) = crossbeam_channel::bounded(1024);
    std::mem::forget(_control_rx);
    let gw = Arc::new(Gateway::new(cfg, risk, auth, shards, control));
    for (rx, _recycle) in queues {
        std::thread::spawn(move || {
            // Engine stand-in: take tasks off the queue and drop them.
            while let Ok(t) = rx.recv() {
                if matches!(t, Task::Stop) {
                    break;
                }
            }
        });
    }
    gw
}

/// One accept as the HTTP handler runs it after the body is read.
fn accept_once(gw: &Gateway, token: &[u8]) -> u64 {
    let t = Timing {
        received_at_ns: wall_ns(),
        received_mono_ns: mono_ns(),
        timed: true,
    };
    let id = gw
        .auth
        .verify_cached(token, switchyard_auth::now_sec())
        .unwrap();
    let req = parse_order(BODY).unwrap();
    let input = req.to_input().unwrap();
    let p = gw.principal(&id);
    submit(gw, &p, &input, t).unwrap()
}

fn bench_accept(c: &mut Criterion) {
    let gw = gateway();
    let token = switchyard_auth::mint_dev(SECRET, "bench", 86_400, None);
    c.bench_function("accept/v3_http_path", |b| {
        b.iter(|| black_box(accept_once(&gw, token.as_bytes())))
    });
}

/// Times each call separately (Instant costs ~20 ns, included) and prints percentiles.
fn percentiles() {
    let gw = gateway();
    let token = switchyard_auth::mint_dev(SECRET, "bench-hdr", 86_400, None);
    let mut h = hdrhistogram::Histogram::<u64>::new(3).unwrap();
    for _ in 0..50_000 {
        accept_once(&gw, token.as_bytes());
    }
    for _ in 0..1_000_000 {
        let t0 = Instant::now();
        black_box(accept_once(&gw, token.as_bytes()));
        h.record(t0.elapsed().as_nanos() as u64).unwrap();
    }
    println!(
        "accept/v3_http_path per call: p50 {} ns, p99 {} ns, p99.9 {} ns, max {} ns ({} calls)",
        h.value_at_quantile(0.5),
        h.value_at_quantile(0.99),
        h.value_at_quantile(0.999),
        h.max(),
        h.len()
    );
}

criterion_group!(benches, bench_accept);

fn main() {
    benches();
    criterion::Criterion::default()
        .configure_from_args()
        .final_summary();
    percentiles();
}
