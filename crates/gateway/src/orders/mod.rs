//! The durable order path (`/orders`, `/v2/orders`): the order store, idempotency, durability
//! levels and the path's own backpressure (§2.3.3–2.3.4, §3.2, §3.5).
//!
//! The store is partitioned by account (`ORDER_STORE_SHARDS` mutexes). Every operation touches
//! one partition for a few hundred nanoseconds, so check-and-create of an idempotency key is
//! atomic without a global lock. Access is always through the caller's own account, which is
//! also what hides other accounts' orders (a foreign order id is simply not found).
//!
//! The journal stays the source of truth: the store is rebuilt from it at startup, finished
//! orders and expired keys leave memory on a schedule (`gc_step`), and the events API reads
//! the journal, not the store.

mod backpressure;
mod store;
mod submit;

pub use backpressure::{Backpressure, InflightController};
pub use store::{IdemHit, Order, OrderStore, PendingAmend, StoreStats};
pub use submit::{
    amend, apply_durable, apply_event, cancel, fail_durable, submit, AmendOutcome, CancelOutcome,
    Created, Submitted,
};
pub(crate) use submit::{amend_without_venue, cancel_without_venue};

/// When the answer to `POST /orders` is sent (request header `Durability`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Once the order is queued for the journal (it may be lost in a crash).
    Volatile,
    /// After the journal's fdatasync covering the order.
    Local,
    /// After the event bus acknowledged it (acks=all); not available until the bus exists.
    Replicated,
}

impl Durability {
    pub fn parse(s: &str) -> Option<Durability> {
        match s.trim().to_ascii_lowercase().as_str() {
            "volatile" => Some(Durability::Volatile),
            "local" => Some(Durability::Local),
            "replicated" => Some(Durability::Replicated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Durability::Volatile => "volatile",
            Durability::Local => "local",
            Durability::Replicated => "replicated",
        }
    }
}

/// The durable path's figures for `/metrics` and `/stats` (the reference's names, §2.10).
pub fn figures(gw: &crate::state::Gateway, put: &mut dyn FnMut(&str, f64)) {
    use std::sync::atomic::Ordering::Relaxed;
    use switchyard_core::Reason;
    let bp = &gw.durable_bp;
    let m = &gw.metrics;
    let s = &gw.orders;
    let inflight = bp.inflight.load(Relaxed) as f64;
    put("gateway_inflight", inflight);
    put("gateway_durable_inflight", inflight);
    put(
        "gateway_inflight_dynamic_enabled",
        gw.cfg.orders.inflight_dynamic as u8 as f64,
    );
    put(
        "gateway_inflight_limit_dynamic",
        bp.limit.load(Relaxed) as f64,
    );
    put("gateway_wal_age_ms", bp.wal_age_ms.load(Relaxed) as f64);
    put("gateway_wal_bytes", bp.wal_bytes.load(Relaxed) as f64);
    put(
        "gateway_wal_disk_free_pct",
        bp.disk_free_pct.load(Relaxed) as f64,
    );
    for (name, r) in [
        (
            "gateway_backpressure_soft_wal_age_total",
            Reason::BackpressureSoftWalAge,
        ),
        (
            "gateway_backpressure_soft_rate_decline_total",
            Reason::BackpressureDurableRateDecline,
        ),
        (
            "gateway_backpressure_inflight_soft_total",
            Reason::BackpressureInflightSoft,
        ),
        (
            "gateway_backpressure_inflight_total",
            Reason::BackpressureInflight,
        ),
        (
            "gateway_backpressure_wal_bytes_total",
            Reason::BackpressureWalBytes,
        ),
        (
            "gateway_backpressure_wal_age_total",
            Reason::BackpressureWalAge,
        ),
        (
            "gateway_backpressure_disk_free_total",
            Reason::BackpressureDiskFree,
        ),
        ("gateway_reject_queue_full_total", Reason::QueueReject),
        (
            "gateway_orders_wal_failed_total",
            Reason::WalDurabilityFailed,
        ),
        ("gateway_order_store_full_total", Reason::OrderStoreFull),
    ] {
        put(name, m.reason_count(r) as f64);
    }
    let checked = s.idem_checked.load(Relaxed);
    let hits = s.idem_hits.load(Relaxed);
    let expired = s.idem_expired.load(Relaxed);
    put("gateway_idempotency_checked_total", checked as f64);
    put("gateway_idempotency_hits_total", hits as f64);
    put(
        "gateway_idempotency_creates_total",
        s.idem_creates.load(Relaxed) as f64,
    );
    put("gateway_idempotency_expired_total", expired as f64);
    put(
        "gateway_idempotency_handled_ratio",
        hits as f64 / checked.max(1) as f64,
    );
    put(
        "gateway_idempotency_expired_ratio",
        expired as f64 / checked.max(1) as f64,
    );
    put(
        "gateway_order_store_shards",
        gw.cfg.orders.store_shards as f64,
    );
    put("gateway_order_store_in_memory", s.in_memory() as f64);
    put(
        "gateway_order_store_gc_orders_total",
        s.gc_orders.load(Relaxed) as f64,
    );
    put(
        "gateway_order_store_gc_keys_total",
        s.gc_keys.load(Relaxed) as f64,
    );
    for (name, c) in [
        ("gateway_orders_volatile_total", &m.orders_volatile),
        ("gateway_orders_local_total", &m.orders_local),
        ("gateway_orders_existing_total", &m.orders_existing),
        ("gateway_orders_refused_total", &m.orders_refused),
        ("gateway_orders_canceled_total", &m.orders_canceled),
        (
            "gateway_v2_durable_wait_timeout_total",
            &m.orders_wait_timeouts,
        ),
    ] {
        put(name, c.load(Relaxed) as f64);
    }
}
