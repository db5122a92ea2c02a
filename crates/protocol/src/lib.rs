//! Wire formats of Switchyard, and nothing else: bytes in, typed values out, and back.
//!
//! - [`v3frame`]: the v3 binary TCP ingress — 304-byte little-endian request frames carrying
//!   the JWT, 32-byte response frames (§2.4). Hand-written: fixed offsets, no allocation.
//! - [`http`]: the JSON bodies of the HTTP API — the order request (§2.2) decoded with serde
//!   into borrowed fields, and the hot-path responses written by hand into a reused buffer,
//!   because they are small, fixed-shape and on every request.
//! - [`venue`]: the venue session protocol — the reference's JSON lines (§2.6) plus logon,
//!   sequence numbers, heartbeats, resend, status requests, amend and top of book.
//! - [`bus`]: bus events v1 (§2.7), published to Kafka and consumed by the back office
//!   (`contracts/bus_event_v1.schema.json`).
//! - [`json`]: the few helpers the hand-written encoders share (string escaping, integers).
//!
//! This crate holds no state and does no I/O; validation beyond syntax is `core`'s job.

pub mod bus;
pub mod http;
pub mod json;
pub mod v3frame;
pub mod venue;
