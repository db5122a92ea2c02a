//! What a run does: how many steps, how often each action and each fault happens.

/// Fault probabilities. "Per step" faults are drawn when the step's action is chosen (they
/// are actions with a weight, see [`Weights`]); the others are drawn where they can happen.
#[derive(Debug, Clone, PartialEq)]
pub struct Faults {
    /// Per engine pump with work queued: the process dies in the middle of the commit (the
    /// listener never runs) and the commit's bytes are torn at a random offset, then
    /// sometimes followed by zeros or junk.
    pub torn_commit: f64,
    /// Per commit: the fdatasync fails (drawn as the `FaultPlan` of each writer's life; at
    /// most one per life).
    pub fsync_fail: f64,
    /// Per commit: the write fails (likewise, at most one per writer's life).
    pub write_fail: f64,
    /// At a crash after a failed commit: the writer's cut of the failed bytes never reached
    /// the disk, so they are still in the old segment (superseded leftovers).
    pub lost_cut: f64,
    /// At a crash: the audit chain loses the tail it had not synced (a torn last entry).
    pub chain_tear: f64,
    /// Per venue → gateway report delivered: lost (the venue still retains it).
    pub report_lose: f64,
    /// ... delivered twice.
    pub report_dup: f64,
    /// ... swapped with the message behind it.
    pub report_reorder: f64,
    /// Per gateway → venue message: lost (a half-open connection swallowing it).
    pub order_lose: f64,
}

impl Default for Faults {
    fn default() -> Faults {
        Faults {
            torn_commit: 0.02,
            fsync_fail: 0.004,
            write_fail: 0.002,
            lost_cut: 0.5,
            chain_tear: 0.3,
            report_lose: 0.05,
            report_dup: 0.05,
            report_reorder: 0.05,
            order_lose: 0.01,
        }
    }
}

impl Faults {
    /// No faults at all (the settle phase at the end of a run).
    pub fn none() -> Faults {
        Faults {
            torn_commit: 0.0,
            fsync_fail: 0.0,
            write_fail: 0.0,
            lost_cut: 0.0,
            chain_tear: 0.0,
            report_lose: 0.0,
            report_dup: 0.0,
            report_reorder: 0.0,
            order_lose: 0.0,
        }
    }
}

/// Relative weights of the step actions (among those possible at the time).
#[derive(Debug, Clone, PartialEq)]
pub struct Weights {
    pub new_order: u32,
    pub retry: u32,
    pub cancel: u32,
    pub amend: u32,
    pub pump: u32,
    pub session_send: u32,
    pub to_venue: u32,
    pub to_gateway: u32,
    pub venue_heartbeat: u32,
    pub idle_tick: u32,
    pub mm_step: u32,
    pub connect: u32,
    /// A venue connection drops (both directions lose what is in flight).
    pub disconnect: u32,
    /// The gateway process crashes between steps.
    pub crash: u32,
    /// A venue process restarts from its state log.
    pub venue_restart: u32,
}

impl Default for Weights {
    fn default() -> Weights {
        Weights {
            new_order: 140,
            retry: 30,
            cancel: 50,
            amend: 30,
            pump: 200,
            session_send: 120,
            to_venue: 120,
            to_gateway: 180,
            venue_heartbeat: 20,
            idle_tick: 20,
            mm_step: 30,
            connect: 40,
            disconnect: 8,
            crash: 6,
            venue_restart: 3,
        }
    }
}

/// One run.
#[derive(Debug, Clone, PartialEq)]
pub struct SimConfig {
    /// Random steps before the settle phase.
    pub steps: u64,
    pub faults: Faults,
    pub weights: Weights,
    /// Steps kept in the trace printed on failure.
    pub trace_len: usize,
    /// Also verify the audit chain every this many steps (it is always verified after each
    /// recovery and at the end).
    pub audit_every: u64,
    /// Client accounts.
    pub accounts: usize,
}

impl Default for SimConfig {
    fn default() -> SimConfig {
        SimConfig {
            steps: 1_500,
            faults: Faults::default(),
            weights: Weights::default(),
            trace_len: 40,
            audit_every: 500,
            accounts: 3,
        }
    }
}

impl SimConfig {
    /// A harsher mix for campaigns (`SIM_PROFILE=stress`): three times the message faults,
    /// more fsync and write failures, more amends and cancels racing the reports.
    pub fn stress() -> SimConfig {
        let d = SimConfig::default();
        SimConfig {
            faults: Faults {
                fsync_fail: 0.015,
                write_fail: 0.008,
                report_lose: 0.12,
                report_dup: 0.12,
                report_reorder: 0.2,
                order_lose: 0.03,
                ..d.faults
            },
            weights: Weights {
                amend: 120,
                cancel: 90,
                disconnect: 16,
                ..d.weights
            },
            ..d
        }
    }
}

/// What a run did, for the campaign figures.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub steps: u64,
    pub orders_submitted: u64,
    pub orders_created: u64,
    pub orders_acked_durable: u64,
    pub orders_refused: u64,
    pub commits: u64,
    pub records_durable: u64,
    pub reports_applied: u64,
    pub fills_at_venue: u64,
    pub cancels_acked: u64,
    pub amends_acked: u64,
    pub recoveries: u64,
    pub audit_checks: u64,
    // Faults injected, by kind.
    pub crashes: u64,
    pub torn_commits: u64,
    pub torn_with_junk: u64,
    pub fsync_failures: u64,
    pub write_failures: u64,
    pub lost_cuts: u64,
    pub chain_tears: u64,
    pub disconnects: u64,
    pub venue_restarts: u64,
    pub reports_lost: u64,
    pub reports_duplicated: u64,
    pub reports_reordered: u64,
    pub orders_lost: u64,
    /// Unacknowledged orders that a crash lost (allowed: the client was never told).
    pub unacked_lost: u64,
    /// Acknowledged-durable orders lost (must stay 0; a failure otherwise).
    pub acked_lost: u64,
}

impl Stats {
    pub fn add(&mut self, o: &Stats) {
        macro_rules! sum {
            ($($f:ident),*) => { $( self.$f += o.$f; )* };
        }
        sum!(
            steps,
            orders_submitted,
            orders_created,
            orders_acked_durable,
            orders_refused,
            commits,
            records_durable,
            reports_applied,
            fills_at_venue,
            cancels_acked,
            amends_acked,
            recoveries,
            audit_checks,
            crashes,
            torn_commits,
            torn_with_junk,
            fsync_failures,
            write_failures,
            lost_cuts,
            chain_tears,
            disconnects,
            venue_restarts,
            reports_lost,
            reports_duplicated,
            reports_reordered,
            orders_lost,
            unacked_lost,
            acked_lost
        );
    }
}
