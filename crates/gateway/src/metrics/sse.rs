//! Figures of the event stream hub (`crate::stream`): SSE and WebSocket subscribers, the
//! dispatch queue, the replay log, and the delivery delay. The hub owns an `Arc` of these (its
//! dispatcher thread cannot reach the gateway), the gateway's `Metrics` holds the same `Arc`.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;

use super::{get, AtomicHistogram};
use crate::state::Gateway;

#[derive(Default)]
pub struct SseMetrics {
    /// `publish` calls that entered the dispatch queue.
    pub published: AtomicU64,
    /// `publish` calls refused because the dispatch queue was full (`gateway_sse_dropped_total`).
    pub dropped: AtomicU64,
    /// Events given an id by the dispatcher.
    pub dispatched: AtomicU64,
    /// Event frames handed to a client's connection (SSE body frame or WebSocket message).
    pub delivered: AtomicU64,
    /// Events sent from the replay rings after a `Last-Event-ID`.
    pub replayed: AtomicU64,
    /// `resync_required` notices: on reconnect, after a dispatch overflow, to a cut-off client.
    pub resyncs: AtomicU64,
    /// Subscribers cut off because their queue was full.
    pub slow_consumer_disconnects: AtomicU64,
    /// Subscriptions refused with `TOO_MANY_STREAMS`.
    pub refused: AtomicU64,
    /// Open subscriptions by scope (SSE and WebSocket together), and WebSockets among them.
    pub clients_account: AtomicU64,
    pub clients_order: AtomicU64,
    pub ws_clients: AtomicU64,
    /// Replay log and scope tracking, as of the dispatcher's last batch.
    pub log_events: AtomicU64,
    pub log_bytes: AtomicU64,
    pub tracked_accounts: AtomicU64,
    pub tracked_orders: AtomicU64,
    /// `publish` call → the event's frame handed to the client's connection, ns (live events).
    pub delivery_delay: AtomicHistogram,
}

const NS_PER_US: f64 = 1_000.0;

/// The hub's figures for `/metrics` and `/stats`.
pub fn figures(gw: &Gateway, f: &mut Vec<(String, f64)>) {
    let m = &*gw.metrics.sse;
    let counters = [
        ("gateway_sse_events_published_total", &m.published),
        ("gateway_sse_dropped_total", &m.dropped),
        // The reference's (Kotlin) name of the same counter.
        ("gateway_sse_dispatch_dropped_total", &m.dropped),
        ("gateway_sse_events_dispatched_total", &m.dispatched),
        ("gateway_sse_events_delivered_total", &m.delivered),
        ("gateway_sse_events_replayed_total", &m.replayed),
        ("gateway_sse_resync_total", &m.resyncs),
        (
            "gateway_sse_slow_consumer_disconnects_total",
            &m.slow_consumer_disconnects,
        ),
        ("gateway_sse_refused_total", &m.refused),
        ("gateway_sse_ws_clients", &m.ws_clients),
        ("gateway_sse_replay_log_events", &m.log_events),
        ("gateway_sse_replay_log_bytes", &m.log_bytes),
        ("gateway_sse_tracked_accounts", &m.tracked_accounts),
        ("gateway_sse_tracked_orders", &m.tracked_orders),
    ];
    for (name, c) in counters {
        f.push((name.to_string(), get(c) as f64));
    }
    f.push((
        "gateway_sse_subscribers".to_string(),
        (get(&m.clients_account) + get(&m.clients_order)) as f64,
    ));
    f.push((
        "gateway_sse_dispatch_queue_depth".to_string(),
        gw.hub.dispatch_depth() as f64,
    ));
    f.push((
        "gateway_sse_dispatch_queue_capacity".to_string(),
        gw.cfg.stream.dispatch_queue_capacity as f64,
    ));
    let h = &m.delivery_delay;
    let p = h.percentiles([50.0, 99.0, 99.9]);
    for (suffix, v) in ["p50", "p99", "p999"].iter().zip(p) {
        f.push((
            format!("gateway_sse_delivery_delay_{suffix}_us"),
            v as f64 / NS_PER_US,
        ));
    }
    f.push((
        "gateway_sse_delivery_delay_max_us".to_string(),
        h.max() as f64 / NS_PER_US,
    ));
    f.push((
        "gateway_sse_delivery_delay_count".to_string(),
        h.count() as f64,
    ));
}

/// Labelled series: `gateway_sse_clients{scope="account"|"order"}` (the reference's name).
pub fn prometheus_labeled(gw: &Gateway, out: &mut String) {
    let m = &*gw.metrics.sse;
    let _ = writeln!(
        out,
        "gateway_sse_clients{{scope=\"account\"}} {}\ngateway_sse_clients{{scope=\"order\"}} {}",
        get(&m.clients_account),
        get(&m.clients_order)
    );
}
