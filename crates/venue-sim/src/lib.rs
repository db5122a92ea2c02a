//! `switchyard-venue-sim`: a simulated exchange that a gateway connects to over TCP — a real
//! venue, not a timer. Orders rest in price-time-priority books and trade against each other
//! and against simulated market makers; every execution report is numbered per gateway,
//! logged before it is sent, and can be resent; the venue survives `kill -9` and restarts with
//! the same orders and sequence numbers. Latency and wire faults (loss, duplicates,
//! reordering, stalls, dropped connections, reject-all) are injected on purpose, never into
//! the venue's own state.
//!
//! It speaks the venue session protocol of `switchyard_protocol::venue` (LOGON, sequence
//! numbers, RESEND, HEARTBEAT, STATUS, REPLACE, TOB) and still understands a reference
//! gateway's bare `NEW`/`CANCEL` lines.
//!
//! Structure:
//! - [`book`] — the matching engine: one order book per symbol and the [`book::Market`] of
//!   all books; slab-allocated orders, intrusive FIFO price levels, no allocation per
//!   operation in steady state.
//! - `engine` — the matching thread, single writer of all venue state: orders, reports,
//!   sessions, market makers, top-of-book.
//! - `session` — a connection's reader thread (lines in) and writer thread (delay queue,
//!   heartbeats, wire faults).
//! - [`mm`] — the market makers' quoting and random walk.
//! - [`store`] — the append-only state log and its replay.
//! - [`config`] — [`VenueConfig`] from environment variables and [`config::SimArgs`] flags.
//! - `server` — [`spawn`] (embedded, returns a [`VenueHandle`]) and [`run`] (blocking, for
//!   `switchyard venue-sim`).
//! - [`inproc`] — the same engine without sockets or threads, driven one message at a time
//!   (the deterministic simulation, `crates/sim`).
//!
//! What it must not do: depend on the gateway, or share code with it beyond
//! `switchyard-core` and `switchyard-protocol`.

pub mod book;
pub mod config;
mod engine;
pub mod inproc;
pub mod mm;
mod server;
mod session;
pub mod store;

pub use config::{ConfigError, FaultConfig, MmConfig, SimArgs, VenueConfig};
pub use engine::DEFAULT_GATEWAY;
pub use server::{run, spawn, VenueHandle};
