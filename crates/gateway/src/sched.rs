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
//!
//! For a latency-first deployment the ingress threads can go further and run `SCHED_FIFO`
//! (`GATEWAY_INGRESS_RT_PRIORITY`, off by default; needs `CAP_SYS_NICE` or `RLIMIT_RTPRIO`):
//! then no normal thread on the machine — the woken client of a loopback answer included —
//! preempts one mid-answer. A real-time thread that is always busy would starve every normal
//! thread on its core, the journal writer among them, so with a priority set the runtime leaves
//! one core without an ingress worker unless `GATEWAY_WORKER_THREADS` says otherwise
//! ([`ingress_runtime`]).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

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

/// How many ingress workers to run: the configured count, else one per core — minus one core
/// when they run real-time, so that the engines and the journal writer always have a core.
fn ingress_workers(configured: usize, rt_priority: u8, cores: usize) -> usize {
    match (configured, rt_priority) {
        (n, _) if n > 0 => n,
        (_, 0) => cores.max(1),
        _ => cores.saturating_sub(1).max(1),
    }
}

/// Builds the runtime whose workers serve HTTP and the v3 TCP ingress. With `rt_priority` in
/// 1..=99 each worker moves itself to `SCHED_FIFO` at that priority as it starts; the threads
/// tokio starts later for `spawn_blocking` (audit verification, event queries) keep the normal
/// policy. Tokio starts its workers first, while the runtime is built, so the first `workers`
/// threads are the workers. A refusal (no `CAP_SYS_NICE` or `RLIMIT_RTPRIO`) is logged and the
/// worker keeps the normal policy.
pub fn ingress_runtime(
    configured_workers: usize,
    rt_priority: u8,
) -> std::io::Result<tokio::runtime::Runtime> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let workers = ingress_workers(configured_workers, rt_priority, cores);
    if rt_priority > 0 && workers >= cores {
        tracing::warn!(
            workers,
            cores,
            "real-time ingress workers on every core: under saturating load they can starve \
             the journal writer and the engines (GATEWAY_WORKER_THREADS)"
        );
    }
    let started = Arc::new(AtomicUsize::new(0));
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .on_thread_start(move || {
            if rt_priority > 0 && started.fetch_add(1, Ordering::Relaxed) < workers {
                real_time(rt_priority);
            }
        })
        .enable_all()
        .build()
}

/// Moves the calling thread to `SCHED_FIFO` at `priority`.
fn real_time(priority: u8) {
    #[cfg(target_os = "linux")]
    {
        let param = libc::sched_param {
            sched_priority: i32::from(priority),
        };
        // SAFETY: pid 0 = the calling thread; `param` lives across the call.
        if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
            tracing::warn!(
                error = %std::io::Error::last_os_error(),
                priority,
                "SCHED_FIFO refused (needs CAP_SYS_NICE or an RLIMIT_RTPRIO of at least the priority); this ingress worker keeps the normal policy"
            );
        }
    }
    #[cfg(not(target_os = "linux"))]
    tracing::warn!(
        priority,
        "real-time ingress workers are supported on Linux only"
    );
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

    // Goal: with a priority set, one core is left without a worker unless the count is
    // configured; without one, one worker per core.
    #[test]
    fn worker_count_leaves_a_core_for_the_journal() {
        use super::ingress_workers;
        assert_eq!(ingress_workers(0, 0, 2), 2);
        assert_eq!(ingress_workers(0, 10, 2), 1);
        assert_eq!(ingress_workers(0, 10, 1), 1);
        assert_eq!(ingress_workers(0, 10, 8), 7);
        assert_eq!(ingress_workers(2, 10, 2), 2);
        assert_eq!(ingress_workers(3, 0, 2), 3);
    }

    /// The calling thread's real-time priority, 0 when it runs a normal policy.
    #[cfg(target_os = "linux")]
    fn rt_priority() -> i32 {
        let mut param = libc::sched_param { sched_priority: 0 };
        // SAFETY: pid 0 = the calling thread; `param` is written by the call.
        unsafe {
            if libc::sched_getscheduler(0) != libc::SCHED_FIFO {
                return 0;
            }
            libc::sched_getparam(0, &mut param);
        }
        param.sched_priority
    }

    // Goal: the runtime's workers run SCHED_FIFO at the configured priority and its blocking
    // threads do not. Setting a real-time policy needs CAP_SYS_NICE; without it the workers
    // keep the normal policy, which the test then checks instead.
    #[test]
    #[cfg(target_os = "linux")]
    fn ingress_workers_run_real_time_and_blocking_threads_do_not() {
        let rt = super::ingress_runtime(2, 7).unwrap();
        let workers: Vec<i32> = rt.block_on(async {
            let mut seen = Vec::new();
            for _ in 0..16 {
                seen.push(tokio::spawn(async { rt_priority() }).await.unwrap());
            }
            seen
        });
        let blocking = rt
            .block_on(async { tokio::task::spawn_blocking(rt_priority).await })
            .unwrap();
        let permitted = std::thread::spawn(|| {
            let param = libc::sched_param { sched_priority: 1 };
            // SAFETY: pid 0 = this probe thread, which ends right after.
            unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) == 0 }
        })
        .join()
        .unwrap();
        let want = if permitted { 7 } else { 0 };
        assert!(
            workers.iter().all(|&p| p == want),
            "{workers:?}, want {want}"
        );
        assert_eq!(blocking, 0);
        let plain = super::ingress_runtime(2, 0).unwrap();
        let p = plain.block_on(async { tokio::spawn(async { rt_priority() }).await });
        assert_eq!(p.unwrap(), 0);
    }
}
