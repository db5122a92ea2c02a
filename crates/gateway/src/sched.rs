//! Which threads the kernel should favour.
//!
//! The ingress threads (tokio's workers) answer orders in microseconds; every other thread of
//! the gateway — engines, the journal writer and auditor, the monitor, the stream dispatcher,
//! the outbox, venue sessions — works in batches against millisecond deadlines. Those run
//! under `SCHED_BATCH` (`GATEWAY_BACKGROUND_SCHED=batch`, the default on Linux): still their
//! fair share of CPU, but a batch thread that wakes (an fdatasync completing, a nap ending)
//! never preempts an ingress thread in the middle of an answer. On the 2-core machine of
//! `docs/benchmarks.md` this took the v3 TCP ack p99 at 10 000/s from 74 µs to 56 µs; durable
//! confirmations, which wait for the next group commit anyway, kept their p99.

use std::sync::atomic::{AtomicBool, Ordering};

static BATCH: AtomicBool = AtomicBool::new(false);

/// Sets the policy [`background`] applies; call once at startup, before threads start.
pub fn configure(batch: bool) {
    BATCH.store(batch, Ordering::Relaxed);
}

/// Called first on every background thread: moves the calling thread to `SCHED_BATCH` when
/// configured. A refusal by the kernel is logged once per thread and otherwise ignored (the
/// thread just keeps the normal policy).
pub fn background() {
    if !BATCH.load(Ordering::Relaxed) {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 = the calling thread; `param` lives across the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
            tracing::debug!(
                error = %std::io::Error::last_os_error(),
                "SCHED_BATCH refused; this thread keeps the normal policy"
            );
        }
    }
}

/// The calling thread's policy is `SCHED_BATCH` (Linux; false elsewhere).
pub fn is_batch() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: pid 0 = the calling thread.
        unsafe { libc::sched_getscheduler(0) == libc::SCHED_BATCH }
    }
    #[cfg(not(target_os = "linux"))]
    false
}

#[cfg(test)]
mod tests {
    // Goal: a background thread runs SCHED_BATCH when configured, the caller's thread is left
    // alone, and with the switch off nothing changes.
    #[test]
    #[cfg(target_os = "linux")]
    fn background_threads_are_batch() {
        super::configure(true);
        let on = std::thread::spawn(|| {
            super::background();
            super::is_batch()
        })
        .join()
        .unwrap();
        assert!(on);
        assert!(!super::is_batch());
        super::configure(false);
        let off = std::thread::spawn(|| {
            super::background();
            super::is_batch()
        })
        .join()
        .unwrap();
        assert!(!off);
    }
}
