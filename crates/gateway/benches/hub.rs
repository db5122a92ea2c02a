//! The stream hub's dispatcher with no subscriber, as on a gateway nobody is streaming from:
//! what every `POST /orders` costs the `sse-dispatch` thread. Each iteration publishes the two
//! events of 128 new orders (`order_update` at creation, `order_durable` at the fdatasync,
//! ~300-byte snapshots, 16 accounts) and dispatches them. The replay log is filled to its
//! default bound first, so every event also evicts the oldest one and prunes its rings — the
//! steady state of a busy gateway.
//!
//! `cargo bench -p switchyard-gateway --bench hub`

use std::sync::Arc;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use switchyard_core::OrderId;
use switchyard_gateway::config::StreamSection;
use switchyard_gateway::metrics::sse::SseMetrics;
use switchyard_gateway::records::order_ref;
use switchyard_gateway::stream::{Dispatcher, Hub, Limits};

const ORDERS_PER_ITER: u64 = 128;

fn snapshot(order: u64) -> Bytes {
    let mut s = format!(
        r#"{{"orderId":"ord_{order:016x}","accountId":"bench-{}","clientOrderId":"w9f2a60c-{order}","symbol":"AAPL","side":"BUY","type":"LIMIT","qty":100,"price":15000,"timeInForce":"GTC","status":"ACCEPTED","filledQty":0,"avgPrice":null,"venue":null,"#,
        order % 16
    );
    s.push_str(r#""createdAt":"2026-11-21T22:40:00.123456Z","updatedAt":"2026-11-21T22:40:00.123456Z","durable":false}"#);
    Bytes::from(s)
}

fn publish_orders(hub: &Hub, d: &mut Dispatcher, next: &mut u64, data: &[Bytes]) {
    for i in 0..ORDERS_PER_ITER {
        let n = *next + i;
        let account = ["bench-0", "bench-1", "bench-2", "bench-3"][(n % 4) as usize];
        let id = order_ref(OrderId(n));
        hub.publish(
            account,
            Some(&id),
            "order_update",
            data[(n % 64) as usize].clone(),
        );
        hub.publish(
            account,
            Some(&id),
            "order_durable",
            data[(n % 64) as usize].clone(),
        );
    }
    *next += ORDERS_PER_ITER;
    while d.step(false) {}
}

fn dispatch(c: &mut Criterion) {
    let limits = Limits::from_config(&StreamSection::default());
    let (hub, mut d) = Hub::unstarted(limits, Arc::new(SseMetrics::default()));
    let data: Vec<Bytes> = (0..64).map(snapshot).collect();
    let mut next = 0u64;
    while (next * 2) < limits.log_events as u64 + 1_000 {
        publish_orders(&hub, &mut d, &mut next, &data);
    }
    let mut g = c.benchmark_group("hub");
    g.throughput(Throughput::Elements(ORDERS_PER_ITER * 2));
    g.bench_function("dispatch_new_orders_no_subscriber", |b| {
        b.iter(|| publish_orders(&hub, &mut d, &mut next, &data))
    });
    g.finish();
}

criterion_group!(benches, dispatch);
criterion_main!(benches);
