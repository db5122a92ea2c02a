//! Whether the journal can take new orders: enough free space on its volume, and commits that
//! succeed. Without this gate a gateway whose disk fills keeps answering VOLATILE_ACCEPT at
//! full speed and then fails every one of those orders (DURABLE_REJECTED) a moment later —
//! measured: 15.7 M acceptances in 15 s against a full 400 MB journal volume, 11.6 M of them
//! rejected after the fact. With it, new orders are refused up front (503
//! `V3_JOURNAL_UNAVAILABLE` on v3, `BACKPRESSURE_DISK_FREE` / `JOURNAL_UNAVAILABLE` on
//! `/orders`) while cancels and control records (kill switches, rejections) still write into
//! the reserve: a trader with a full disk can still take risk off.
//!
//! Two causes, kept apart because two threads own them:
//! * **low disk** — the monitor measures the volume's free bytes every tick (one `statvfs`)
//!   and refuses below `JOURNAL_DISK_RESERVE_MB`, resuming 10 % above it;
//! * **failing** — the journal listener reports each failed and each successful commit. After
//!   a failure new orders are refused for a hold (`JOURNAL_FAILURE_HOLD_MS`) that doubles with
//!   every further failure of the streak, up to 32×. When the hold runs out, [`PROBE_ORDERS`]
//!   orders are admitted to try the disk; the first commit that succeeds after the hold ends
//!   the streak, one that fails starts the next, longer hold. Commits during the hold (a
//!   cancel, the journaled rejections) lift nothing: a full disk takes those small records
//!   whenever a failed commit is cut back, and then fails the next large one. Orders caught in
//!   a failed commit get DURABLE_REJECTED as before; the probes bound that to one commit's
//!   worth for the first failure and [`PROBE_ORDERS`] for each later one.
//!
//!   `/health` and `gateway_journal_available` show the hold only, not the probing: a load
//!   balancer that took the gateway out of service while it probes would starve it of the
//!   orders that prove the disk works again.
//!
//! The accept path reads two relaxed atomics; only transitions write.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering::Relaxed};

/// The longest hold, as a multiple of the first.
const HOLD_MAX_FACTOR: u64 = 32;

/// Orders admitted after a hold to try the disk again, before a commit tells how it went.
pub const PROBE_ORDERS: i64 = 64;

/// Why new orders are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Free space of the journal's volume below the reserve.
    LowDisk,
    /// A commit failed recently (write or fdatasync error).
    Failing,
}

#[derive(Debug)]
pub struct JournalHealth {
    reserve_bytes: u64,
    hold_ns: u64,
    /// Free bytes of the journal volume at the last measurement (u64::MAX until measured).
    free_bytes: AtomicU64,
    low_disk: AtomicBool,
    /// Monotonic ns until which new orders are refused after a failed commit; stays set
    /// (expired) while probing, 0 once a commit succeeded after the hold.
    failing_until_ns: AtomicU64,
    /// Orders still to admit while probing (may go negative: refused).
    probes: AtomicI64,
    /// Failed commits in the current streak. Written by the journal listener only.
    streak: AtomicU64,
}

impl JournalHealth {
    pub fn new(reserve_mb: u64, hold_ms: u64) -> JournalHealth {
        JournalHealth {
            reserve_bytes: reserve_mb.saturating_mul(1 << 20),
            hold_ns: hold_ms.saturating_mul(1_000_000),
            free_bytes: AtomicU64::new(u64::MAX),
            low_disk: AtomicBool::new(false),
            failing_until_ns: AtomicU64::new(0),
            probes: AtomicI64::new(0),
            streak: AtomicU64::new(0),
        }
    }

    /// Whether a new order may be admitted now (`now_mono_ns` from `clock::mono_ns`). While
    /// probing, an admission uses up one probe.
    #[inline]
    pub fn admits(&self, now_mono_ns: u64) -> Result<(), Unavailable> {
        if self.low_disk.load(Relaxed) {
            return Err(Unavailable::LowDisk);
        }
        let until = self.failing_until_ns.load(Relaxed);
        if until != 0 && (now_mono_ns < until || self.probes.fetch_sub(1, Relaxed) <= 0) {
            return Err(Unavailable::Failing);
        }
        Ok(())
    }

    /// The monitor's measurement of the volume's free bytes. Returns `Some(low)` when the
    /// low-disk state changed.
    pub fn measured_free(&self, free: u64) -> Option<bool> {
        self.free_bytes.store(free, Relaxed);
        let was = self.low_disk.load(Relaxed);
        let now = if was {
            free < self.reserve_bytes.saturating_add(self.reserve_bytes / 10)
        } else {
            free < self.reserve_bytes
        };
        (now != was).then(|| {
            self.low_disk.store(now, Relaxed);
            now
        })
    }

    /// A commit failed: refuse new orders for the streak's hold, then probe. Returns true for
    /// the first failure of a streak (the one worth a log line).
    pub fn commit_failed(&self, now_mono_ns: u64) -> bool {
        let n = self.streak.fetch_add(1, Relaxed);
        let hold = self
            .hold_ns
            .saturating_mul(1 << n.min(HOLD_MAX_FACTOR.trailing_zeros() as u64));
        self.probes.store(PROBE_ORDERS, Relaxed);
        self.failing_until_ns
            .store(now_mono_ns.saturating_add(hold), Relaxed);
        n == 0
    }

    /// A commit succeeded. After the hold that ends the streak (returns true); during the
    /// hold it changes nothing.
    #[inline]
    pub fn commit_succeeded(&self, now_mono_ns: u64) -> bool {
        let until = self.failing_until_ns.load(Relaxed);
        if until == 0 || now_mono_ns < until {
            return false;
        }
        self.failing_until_ns.store(0, Relaxed);
        self.streak.store(0, Relaxed);
        true
    }

    /// Free bytes at the last measurement (`u64::MAX` before the first).
    pub fn free_bytes(&self) -> u64 {
        self.free_bytes.load(Relaxed)
    }

    pub fn reserve_bytes(&self) -> u64 {
        self.reserve_bytes
    }

    /// Whether new orders are admitted now, probing included (`gateway_journal_available`,
    /// `/health`).
    pub fn available(&self, now_mono_ns: u64) -> bool {
        self.status(now_mono_ns).is_none()
    }

    /// The state `/health` shows: None when orders are admitted (or probing).
    pub fn status(&self, now_mono_ns: u64) -> Option<&'static str> {
        if self.low_disk.load(Relaxed) {
            Some("JOURNAL_DISK_LOW")
        } else if now_mono_ns < self.failing_until_ns.load(Relaxed) {
            Some("JOURNAL_FAILING")
        } else {
            None
        }
    }
}

/// `statvfs(2)` of `dir`.
pub fn statvfs(dir: &std::path::Path) -> Option<libc::statvfs> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: `c` is a valid NUL-terminated path and `st` a properly sized out-parameter that
    // statvfs fully initialises on success (checked by the return value).
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        (libc::statvfs(c.as_ptr(), &mut st) == 0).then_some(st)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1 << 20;

    #[test]
    fn low_disk_refuses_below_the_reserve_and_resumes_ten_percent_above() {
        let h = JournalHealth::new(100, 1_000);
        assert_eq!(h.admits(0), Ok(()), "unmeasured: admitted");
        assert_eq!(h.measured_free(200 * MB), None);
        assert_eq!(
            h.measured_free(100 * MB),
            None,
            "exactly the reserve is enough"
        );
        assert_eq!(h.measured_free(100 * MB - 1), Some(true));
        assert_eq!(h.admits(0), Err(Unavailable::LowDisk));
        assert_eq!(
            h.measured_free(105 * MB),
            None,
            "inside the hysteresis band"
        );
        assert_eq!(h.admits(0), Err(Unavailable::LowDisk));
        assert_eq!(h.measured_free(110 * MB), Some(false));
        assert_eq!(h.admits(0), Ok(()));
        assert_eq!(h.free_bytes(), 110 * MB);
    }

    #[test]
    fn a_zero_reserve_never_refuses() {
        let h = JournalHealth::new(0, 1_000);
        assert_eq!(h.measured_free(0), None);
        assert_eq!(h.admits(0), Ok(()));
    }

    #[test]
    fn failed_commits_hold_orders_back_for_a_doubling_time_then_probe() {
        let ms = 1_000_000;
        let h = JournalHealth::new(0, 10);
        assert!(h.commit_failed(ms), "first of a streak");
        assert_eq!(h.admits(10 * ms), Err(Unavailable::Failing));
        assert_eq!(h.status(10 * ms), Some("JOURNAL_FAILING"));
        // The hold is over: PROBE_ORDERS orders try the disk, then refusals until a commit.
        let admitted = (0..100).filter(|_| h.admits(11 * ms).is_ok()).count();
        assert_eq!(admitted as i64, PROBE_ORDERS);
        assert_eq!(h.status(11 * ms), None, "probing shows as available");
        assert!(!h.commit_failed(12 * ms), "same streak");
        assert_eq!(h.admits(31 * ms), Err(Unavailable::Failing), "hold doubled");
        assert_eq!(h.admits(32 * ms), Ok(()));
        let mut at = 32 * ms;
        for _ in 0..10 {
            at += 400 * ms;
            assert!(!h.commit_failed(at));
        }
        assert_eq!(h.admits(at + 320 * ms - 1), Err(Unavailable::Failing));
        assert_eq!(
            h.admits(at + 320 * ms),
            Ok(()),
            "capped at 32× the first hold"
        );
    }

    #[test]
    fn only_a_commit_after_the_hold_ends_the_streak() {
        let ms = 1_000_000;
        let h = JournalHealth::new(0, 10);
        assert!(!h.commit_succeeded(0), "nothing to end");
        h.commit_failed(ms);
        assert!(
            !h.commit_succeeded(5 * ms),
            "a small record during the hold proves nothing"
        );
        assert_eq!(h.admits(5 * ms), Err(Unavailable::Failing));
        assert!(h.commit_succeeded(11 * ms), "the probes went through");
        assert_eq!(h.status(11 * ms), None);
        let admitted = (0..100).filter(|_| h.admits(12 * ms).is_ok()).count();
        assert_eq!(admitted, 100, "healthy: no probe budget");
        assert!(h.commit_failed(20 * ms), "a new streak");
        assert_eq!(h.admits(30 * ms), Ok(()), "back to the first hold");
    }
}
