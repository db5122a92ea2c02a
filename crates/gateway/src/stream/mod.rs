//! Order event streams (§2.5): the [`Hub`] that publishers feed, and its two transports,
//! Server-Sent Events ([`sse`]: `GET /stream`, and [`sse_response`] for routes built
//! elsewhere such as `GET /orders/{id}/stream`) and WebSocket ([`ws`]: `GET /ws`).
//!
//! Events: `order_snapshot`, `order_update`, `order_durable`, `execution_report` (published
//! with [`Hub::publish`], each given a global monotonically increasing id by the hub's single
//! dispatcher), and the id-less notices `ready` (first on every stream) and `resync_required`
//! (a client missed events and must re-sync from the REST events API). A `resync_required`
//! that *does* carry an id marks a dispatch-queue overflow on a live stream (see [`hub`]).
//!
//! Design and memory bounds: see the documentation of [`hub`] and `docs/architecture.md`.

pub mod hub;
mod rings;
pub mod sse;
pub mod ws;

pub use hub::{Delivery, Dispatcher, Event, Filter, Hub, Limits, SubscribeError, Subscription};
pub use sse::{last_event_id, sse_response, sse_subscription_response};
