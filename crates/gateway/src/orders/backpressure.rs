//! Durable-path backpressure (§3.5): the in-flight limit (static, or the dynamic controller),
//! journal bytes, journal age and free disk, each with the reference's reason and status.
//!
//! Requests read atomics only. The slow measurements (directory size, `statvfs`, the
//! journal's oldest pending batch) and the controller run on the monitor thread, so every
//! gate recovers by itself as soon as the measured value falls back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use switchyard_core::Reason;

use crate::config::OrdersSection;

#[derive(Debug)]
pub struct Backpressure {
    /// Durable-path orders created and not yet durable (or failed).
    pub inflight: AtomicU64,
    /// Durable-path orders made durable, ever (the controller's commit rate).
    pub committed: AtomicU64,
    pub wal_bytes: AtomicU64,
    pub wal_age_ms: AtomicU64,
    /// Free space of the journal's file system, percent; 100 until measured.
    pub disk_free_pct: AtomicU64,
    /// The dynamic controller's current limit and its two refusal states.
    pub limit: AtomicU64,
    rejecting: AtomicBool,
    pub declining: AtomicBool,
}

impl Backpressure {
    pub fn new(cfg: &OrdersSection) -> Backpressure {
        Backpressure {
            inflight: AtomicU64::new(0),
            committed: AtomicU64::new(0),
            wal_bytes: AtomicU64::new(0),
            wal_age_ms: AtomicU64::new(0),
            disk_free_pct: AtomicU64::new(100),
            limit: AtomicU64::new(
                cfg.inflight_initial
                    .clamp(cfg.inflight_min, cfg.inflight_cap),
            ),
            rejecting: AtomicBool::new(false),
            declining: AtomicBool::new(false),
        }
    }

    /// The reference's order: dynamic in-flight (429), then the static gates by priority —
    /// in-flight, journal bytes, journal age, disk free (503) and the soft age (429).
    pub fn check(&self, cfg: &OrdersSection) -> Result<(), Reason> {
        let inflight = self.inflight.load(Ordering::Relaxed);
        if cfg.inflight_dynamic {
            let limit = self.limit.load(Ordering::Relaxed);
            let rejecting = self.rejecting.load(Ordering::Relaxed);
            let off = limit as f64 * cfg.inflight_hysteresis_off_ratio;
            if inflight >= limit || (rejecting && inflight as f64 >= off) {
                if !rejecting {
                    self.rejecting.store(true, Ordering::Relaxed);
                }
                return Err(Reason::BackpressureInflightSoft);
            }
            if rejecting {
                self.rejecting.store(false, Ordering::Relaxed);
            }
            if self.declining.load(Ordering::Relaxed) && inflight > 0 {
                return Err(Reason::BackpressureDurableRateDecline);
            }
        } else if cfg.inflight_max > 0 && inflight > cfg.inflight_max {
            return Err(Reason::BackpressureInflight);
        }
        if cfg.wal_bytes_max > 0 && self.wal_bytes.load(Ordering::Relaxed) > cfg.wal_bytes_max {
            return Err(Reason::BackpressureWalBytes);
        }
        let age = self.wal_age_ms.load(Ordering::Relaxed);
        if cfg.wal_age_ms_max > 0 && age > cfg.wal_age_ms_max {
            return Err(Reason::BackpressureWalAge);
        }
        if cfg.disk_free_pct_min > 0
            && self.disk_free_pct.load(Ordering::Relaxed) < cfg.disk_free_pct_min
        {
            return Err(Reason::BackpressureDiskFree);
        }
        if cfg.soft_wal_age_ms_max > 0 && age > cfg.soft_wal_age_ms_max {
            return Err(Reason::BackpressureSoftWalAge);
        }
        Ok(())
    }
}

/// The dynamic in-flight controller: limit = α × commit-rate EWMA × target journal age,
/// clamped to [min, cap] and moved at most `slew` per tick; a commit rate that stays below
/// `decline_ratio` × its average for `decline_streak` ticks while orders wait sets the
/// rate-decline refusal.
#[derive(Debug, Default)]
pub struct InflightController {
    ewma: f64,
    last_committed: u64,
    streak: u32,
    primed: bool,
}

impl InflightController {
    /// One tick of `dt_sec`; updates `bp.limit` and `bp.declining`.
    pub fn tick(&mut self, bp: &Backpressure, cfg: &OrdersSection, dt_sec: f64) {
        if dt_sec <= 0.0 {
            return;
        }
        let committed = bp.committed.load(Ordering::Relaxed);
        let rate = committed.saturating_sub(self.last_committed) as f64 / dt_sec;
        self.last_committed = committed;
        let previous = self.ewma;
        self.ewma = if self.primed {
            cfg.inflight_beta * rate + (1.0 - cfg.inflight_beta) * self.ewma
        } else {
            rate
        };
        self.primed = true;
        let waiting = bp.inflight.load(Ordering::Relaxed) > 0;
        // The tick's rate against the smoothed one: the EWMA itself can fall by at most β per
        // tick, so comparing it with its own previous value would never see a collapse.
        if waiting && previous > 0.0 && rate < cfg.inflight_decline_ratio * previous {
            self.streak += 1;
        } else {
            self.streak = 0;
        }
        bp.declining.store(
            self.streak >= cfg.inflight_decline_streak,
            Ordering::Relaxed,
        );
        if !waiting && rate == 0.0 {
            return; // idle: keep the limit where it is
        }
        let desired = (cfg.inflight_alpha * self.ewma * cfg.inflight_target_wal_age_sec)
            .clamp(cfg.inflight_min as f64, cfg.inflight_cap as f64);
        let current = bp.limit.load(Ordering::Relaxed) as f64;
        let step = (current * cfg.inflight_slew_ratio).max(1.0);
        let next = desired.clamp(current - step, current + step);
        bp.limit.store(
            (next as u64).clamp(cfg.inflight_min, cfg.inflight_cap),
            Ordering::Relaxed,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> OrdersSection {
        OrdersSection::default()
    }

    // Goal: each static gate answers its reason in the reference's priority and clears by itself.
    #[test]
    fn static_gates_in_priority_order() {
        let mut c = cfg();
        c.inflight_max = 10;
        c.wal_bytes_max = 1_000;
        c.wal_age_ms_max = 500;
        c.soft_wal_age_ms_max = 100;
        c.disk_free_pct_min = 5;
        let bp = Backpressure::new(&c);
        assert_eq!(bp.check(&c), Ok(()));
        bp.disk_free_pct.store(4, Ordering::Relaxed);
        bp.wal_age_ms.store(200, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureDiskFree));
        bp.disk_free_pct.store(50, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureSoftWalAge));
        bp.wal_age_ms.store(600, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureWalAge));
        bp.wal_bytes.store(2_000, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureWalBytes));
        bp.inflight.store(11, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureInflight));
        for (a, v) in [(&bp.inflight, 0), (&bp.wal_bytes, 0), (&bp.wal_age_ms, 0)] {
            a.store(v, Ordering::Relaxed);
        }
        assert_eq!(bp.check(&c), Ok(()));
    }

    // Goal: the dynamic limit follows the commit rate within its slew, rejects at the limit and
    // keeps rejecting until in-flight falls below the hysteresis ratio.
    #[test]
    fn dynamic_limit_follows_rate_with_hysteresis() {
        let mut c = cfg();
        c.inflight_dynamic = true;
        let bp = Backpressure::new(&c);
        let mut ctl = InflightController::default();
        assert_eq!(bp.limit.load(Ordering::Relaxed), 2_000);
        // 10 000 commits/s sustained: desired 8 000, reached in 20 % steps.
        let mut last = 2_000;
        for _ in 0..20 {
            bp.committed.fetch_add(2_500, Ordering::Relaxed);
            bp.inflight.store(100, Ordering::Relaxed);
            ctl.tick(&bp, &c, 0.25);
            let l = bp.limit.load(Ordering::Relaxed);
            assert!(
                l >= last && l as f64 <= last as f64 * 1.2 + 1.0,
                "{last} -> {l}"
            );
            last = l;
        }
        assert_eq!(last, 8_000);
        bp.inflight.store(8_000, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureInflightSoft));
        bp.inflight.store(7_500, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureInflightSoft));
        bp.inflight.store(7_100, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Ok(()));
        // The commit rate collapses while orders wait: rate-decline after the streak.
        for i in 0..4 {
            bp.committed.fetch_add(100 >> i, Ordering::Relaxed);
            ctl.tick(&bp, &c, 0.25);
        }
        assert!(bp.declining.load(Ordering::Relaxed));
        // The limit followed the rate down; below it, the decline itself refuses.
        assert!(bp.limit.load(Ordering::Relaxed) < 7_100);
        bp.inflight.store(10, Ordering::Relaxed);
        assert_eq!(bp.check(&c), Err(Reason::BackpressureDurableRateDecline));
        bp.inflight.store(0, Ordering::Relaxed);
        ctl.tick(&bp, &c, 0.25);
        assert_eq!(bp.check(&c), Ok(()));
    }
}
