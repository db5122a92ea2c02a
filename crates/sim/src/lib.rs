//! `switchyard-sim`: deterministic simulation of the order lifecycle (issue 7 item 2).
//!
//! What it is for: to find the bugs that only show up when crashes, torn writes, failing
//! fsyncs, dropped connections and lost, duplicated or reordered venue messages meet in an
//! unlucky order — and to make each one reproducible from a single number. One seed drives
//! one single-threaded run: a seeded RNG ([`fastrand::Rng::with_seed`]) picks every action
//! and every fault, the clock is simulated, maps are iterated in a fixed order, so a failing
//! seed fails again the same way, at the same step (`SIM_SEED=<n> cargo test -p
//! switchyard-sim --test seeds one_seed -- --nocapture`).
//!
//! What runs is production code wherever it can be driven from one thread
//! (`docs/simulation.md` has the full list):
//! - the gateway's startup path (`Gateway::new`, `server::build_shards`, `replay::Replayer`
//!   through `journal::start_with_replay`, `Venues::resume`), the durable order path
//!   (`orders::submit`, `cancel`, `amend`), the shard engines (`Engine::step`, the same code
//!   as the engine thread's loop), the journal writer thread with its real listener
//!   (`engine::Listener` → `orders::apply_durable` / `fail_durable`) and `FaultPlan`;
//! - the venue session's decisions (`venues::logon_message`, `on_logon_ack`, `after_logon`,
//!   `next_message`, `on_venue_message` → `apply_report`, the same functions the session
//!   threads call) and the order core's transition table under all of them;
//! - the journal's recovery (torn tails, superseded leftovers), `verify`, and the audit chain
//!   (`Auditor` resumed, repaired and run to the durable seq, then `audit::verify` and
//!   `verify_anchor`, as `switchyard journal verify` does);
//! - the venue simulator's matching engine, state log and restart (`venue_sim::inproc`).
//!
//! What is modelled: the disk (a temp directory whose files the harness cuts, tears and
//! patches at crash points), the network (two FIFO queues per venue connection that the
//! harness delivers from, loses, duplicates and reorders), the client (requests with
//! idempotency keys, retries, cancels, amends), and the order of events that threads and
//! timers would otherwise decide.
//!
//! After every step the invariants are checked ([`harness`] docs): nothing acknowledged as
//! durable is lost, nothing is duplicated, every observed transition is one the core's table
//! allows, positions equal what the orders hold and never run ahead of the venues' fills, and
//! after each recovery and at the end the journal verifies clean and the audit chain verifies
//! to the durable seq.

pub mod config;
pub mod harness;
mod node;

pub use config::{Faults, SimConfig, Stats, Weights};
pub use harness::{run_seed, SimFailure, SimReport};
