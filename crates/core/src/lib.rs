//! The order domain of Switchyard.
//!
//! What lives here: identifiers, symbols, sides, order types, time in force, integer prices and
//! quantities ([`types`]); the order state machine as one transition table and the v3 confirm
//! states ([`state`]); every reject reason with the blame, retryability, HTTP status and binary
//! reason code that follow from it, decided in one place ([`reason`]); pre-trade risk limits and
//! checks, including the per-account stateful ones kept in atomics ([`risk`]).
//!
//! What must not live here: I/O, async, clocks read implicitly (callers pass time in), HTTP or
//! wire formats. Everything in this crate is deterministic given its inputs, which is what lets
//! the engine, the simulator and the tests share it.

pub mod reason;
pub mod risk;
pub mod state;
pub mod types;

pub use reason::{Blame, Reason, Verdict};
pub use state::{ConfirmStatus, OrderEvent, OrderStatus, Transition, TransitionError};
pub use types::{NewOrder, OrderId, OrderType, Side, Symbol, SymbolError, TimeInForce};
