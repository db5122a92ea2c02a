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
pub use store::{IdemHit, Order, OrderStore, StoreStats};
pub use submit::{apply_durable, cancel, fail_durable, submit, CancelOutcome, Created, Submitted};

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
