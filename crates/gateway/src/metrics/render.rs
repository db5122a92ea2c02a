//! Renders the gateway's figures: one list of (name, value) pairs feeds both the Prometheus
//! text of `/metrics` and the JSON of `/stats`, so the two can never disagree.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde_json::{json, Map, Value};
use switchyard_core::Reason;

use super::{get, AtomicHistogram};
use crate::state::Gateway;

const NS_PER_US: f64 = 1_000.0;

/// Every figure, in µs for latencies (the reference's units), with its Prometheus name.
pub fn figures(gw: &Gateway) -> Vec<(String, f64)> {
    let m = &gw.metrics;
    let v3 = &gw.cfg.v3;
    let mut f: Vec<(String, f64)> = Vec::with_capacity(160);

    for prefix in ["gateway_live_ack", "gateway_v3_live_ack"] {
        hist_us3(&mut f, prefix, &m.ack_all);
    }
    for prefix in ["gateway_live_ack_accepted", "gateway_v3_live_ack_accepted"] {
        hist_us3(&mut f, prefix, &m.ack_accepted);
    }
    hist_us3(&mut f, "gateway_v3_durable_confirm", &m.durable_confirm);
    hist_us3(&mut f, "gateway_durable_ack", &m.durable_ack);
    let mut put = |name: &str, v: f64| f.push((name.to_string(), v));
    put(
        "gateway_live_ack_max_us",
        m.ack_all.max() as f64 / NS_PER_US,
    );
    put("gateway_live_ack_count", m.ack_all.count() as f64);
    put(
        "gateway_live_ack_accepted_count",
        m.ack_accepted.count() as f64,
    );
    put("gateway_v3_accepted_rate", m.accepted_rate());
    let counters = [
        ("gateway_v3_accepted_total", &m.accepted),
        ("gateway_v3_rejected_soft_total", &m.rejected_soft),
        ("gateway_v3_rejected_hard_total", &m.rejected_hard),
        ("gateway_v3_rejected_killed_total", &m.rejected_killed),
        ("gateway_v3_rejected_client_total", &m.rejected_client),
        ("gateway_v3_loss_suspect_total", &m.loss_suspect),
        ("gateway_v3_processed_total", &m.processed),
        ("gateway_v3_decode_error_total", &m.decode_errors),
        ("gateway_auth_failures_total", &m.auth_failures),
        ("gateway_v3_durable_accepted_total", &m.durable_accepted),
        ("gateway_v3_durable_rejected_total", &m.durable_rejected),
        (
            "gateway_v3_durable_write_error_total",
            &m.durable_write_errors,
        ),
    ];
    for (name, c) in counters {
        put(name, get(c) as f64);
    }
    // Each shard is a durable lane into one group-commit journal.
    put("gateway_v3_durable_lanes", gw.shards.len() as f64);
    put("gateway_v3_confirm_store_lanes", gw.shards.len() as f64);
    let backlog = gw.journal_backlog.load(Ordering::Relaxed);
    put("gateway_v3_durable_queue_depth", backlog as f64);
    put(
        "gateway_v3_durable_queue_capacity",
        v3.durable_backlog_capacity as f64,
    );
    put(
        "gateway_v3_durable_queue_utilization_pct",
        (backlog * 100 / v3.durable_backlog_capacity) as f64,
    );
    put(
        "gateway_v3_durable_backpressure_soft_total",
        m.reason_count(Reason::DurableBackpressureSoft) as f64,
    );
    put(
        "gateway_v3_durable_backpressure_hard_total",
        m.reason_count(Reason::DurableBackpressureHard) as f64,
    );
    put(
        "gateway_v3_durable_confirm_age_soft_reject_total",
        m.reason_count(Reason::DurableConfirmAgeSoft) as f64,
    );
    put(
        "gateway_v3_durable_confirm_age_hard_reject_total",
        m.reason_count(Reason::DurableConfirmAgeHard) as f64,
    );

    hist_us(&mut f, "gateway_v3_stage_parse", &m.stage_parse);
    hist_us(&mut f, "gateway_v3_stage_auth", &m.stage_auth);
    hist_us(&mut f, "gateway_v3_stage_risk", &m.stage_risk);
    hist_us(&mut f, "gateway_v3_stage_risk_limits", &m.stage_risk);
    hist_us(
        &mut f,
        "gateway_v3_stage_risk_position",
        &m.stage_risk_position,
    );
    hist_us(&mut f, "gateway_v3_stage_enqueue", &m.stage_enqueue);
    hist_us(&mut f, "gateway_v3_stage_serialize", &m.stage_serialize);
    hist_us(&mut f, "gateway_fdatasync", &m.fdatasync);
    // The sync an order arriving at a random moment waits behind: the p99 of the durable
    // confirm follows this one, not the per-call p99, on a disk with a long tail.
    f.push((
        "gateway_fdatasync_time_weighted_p99_us".into(),
        m.fdatasync.time_weighted_percentile(99.0) as f64 / NS_PER_US,
    ));
    hist_us(&mut f, "gateway_v3_durable_fdatasync", &m.fdatasync);
    hist_us(&mut f, "gateway_journal_write", &m.journal_write);
    let mut put = |name: &str, v: f64| f.push((name.to_string(), v));
    let br = m.journal_batch_records.percentiles([50.0, 99.0]);
    put("gateway_journal_batch_records_p50", br[0] as f64);
    put("gateway_journal_batch_records_p99", br[1] as f64);
    put(
        "gateway_journal_batch_records_max",
        m.journal_batch_records.max() as f64,
    );
    let bb = m.journal_batch_bytes.percentiles([50.0, 99.0]);
    put("gateway_journal_batch_bytes_p50", bb[0] as f64);
    put("gateway_journal_batch_bytes_p99", bb[1] as f64);
    put(
        "gateway_journal_batch_bytes_max",
        m.journal_batch_bytes.max() as f64,
    );
    put(
        "gateway_journal_commits_total",
        get(&m.journal_commits) as f64,
    );
    put(
        "gateway_journal_records_total",
        get(&m.journal_records) as f64,
    );
    put("gateway_journal_bytes_total", get(&m.journal_bytes) as f64);
    let health = &gw.journal_health;
    put(
        "gateway_journal_available",
        health.available(crate::clock::mono_ns()) as u8 as f64,
    );
    put(
        "gateway_journal_disk_reserve_bytes",
        health.reserve_bytes() as f64,
    );
    if health.free_bytes() != u64::MAX {
        put(
            "gateway_journal_disk_free_bytes",
            health.free_bytes() as f64,
        );
    }
    if let Some(j) = gw.journal_handle() {
        put("gateway_journal_durable_seq", j.durable_seq() as f64);
        put("gateway_journal_queue_batches", j.queued_batches() as f64);
        let (preallocated, plain) = j.rolls();
        put(
            "gateway_journal_rolls_preallocated_total",
            preallocated as f64,
        );
        put("gateway_journal_rolls_plain_total", plain as f64);
    }
    crate::audit::figures(gw, &mut put);
    crate::orders::figures(gw, &mut put);

    let depth: usize = gw.shards.iter().map(|s| s.depth()).sum();
    let capacity: usize = gw.shards.iter().map(|s| s.capacity).sum();
    put("gateway_v3_queue_depth", depth as f64);
    put("gateway_v3_queue_capacity", capacity as f64);
    put(
        "gateway_v3_queue_utilization_pct",
        gw.shards
            .iter()
            .map(|s| s.utilization_pct())
            .max()
            .unwrap_or(0) as f64,
    );
    put(
        "gateway_v3_kill_switch",
        gw.global_killed.load(Ordering::Acquire) as u8 as f64,
    );
    put(
        "gateway_v3_shard_kill_switches",
        gw.shards
            .iter()
            .filter(|s| s.killed.load(Ordering::Acquire))
            .count() as f64,
    );
    put(
        "gateway_v3_session_killed_total",
        get(&m.session_killed) as f64,
    );
    put("gateway_v3_shard_killed_total", get(&m.shard_killed) as f64);
    put(
        "gateway_v3_global_killed_total",
        get(&m.global_killed) as f64,
    );
    put(
        "gateway_v3_kill_recovered_total",
        get(&m.kill_recovered) as f64,
    );
    put(
        "gateway_v3_confirm_oldest_inflight_us",
        gw.shards
            .iter()
            .map(|s| s.oldest_inflight_age_us(crate::clock::mono_ns()))
            .max()
            .unwrap_or(0) as f64,
    );
    let (inflight, exceptions) = gw.shards.iter().fold((0, 0), |(i, e), s| {
        let c = s.confirm.lock();
        (i + c.inflight_len(), e + c.exceptions_len())
    });
    put("gateway_v3_confirm_inflight", inflight as f64);
    put("gateway_v3_confirm_store_size", exceptions as f64);
    put("gateway_v3_sessions", gw.session_count() as f64);

    // Configuration echoes (the reference's gates read some of these).
    put("gateway_v3_soft_reject_pct", v3.soft_reject_pct as f64);
    put("gateway_v3_hard_reject_pct", v3.hard_reject_pct as f64);
    put("gateway_v3_kill_reject_pct", v3.kill_reject_pct as f64);
    put(
        "gateway_v3_kill_auto_recover_enabled",
        v3.kill_auto_recover as u8 as f64,
    );
    put("gateway_v3_kill_recover_pct", v3.kill_recover_pct as f64);
    put(
        "gateway_v3_kill_recover_after_ms",
        v3.kill_recover_after_ms as f64,
    );
    put(
        "gateway_v3_session_loss_suspect_threshold",
        v3.session_loss_suspect_threshold as f64,
    );
    put(
        "gateway_v3_risk_max_order_qty",
        gw.risk.max_order_qty as f64,
    );
    put("gateway_v3_risk_max_notional", gw.risk.max_notional as f64);
    put(
        "gateway_v3_risk_strict_symbols",
        gw.risk.strict_symbols as u8 as f64,
    );
    put(
        "gateway_v3_risk_daily_notional_limit",
        gw.risk.default_rules.daily_notional_limit as f64,
    );
    put(
        "gateway_v3_risk_max_abs_position_qty",
        gw.risk.default_rules.max_abs_position as f64,
    );
    put(
        "gateway_v3_symbol_limits_count",
        gw.risk.symbols().len() as f64,
    );

    let c = gw.auth.cache_stats();
    put("gateway_auth_cache_hits_total", c.hits as f64);
    put("gateway_auth_cache_misses_total", c.misses as f64);
    put("gateway_auth_cache_evictions_total", c.evictions as f64);
    put("gateway_connections_open", get(&m.connections_open) as f64);
    put(
        "gateway_connections_refused_total",
        get(&m.connections_refused) as f64,
    );
    put(
        "gateway_connections_refused_per_ip_total",
        get(&m.connections_refused_per_ip) as f64,
    );
    put("gateway_http_requests_total", get(&m.http_requests) as f64);
    put("gateway_v3_tcp_frames_total", get(&m.tcp_frames) as f64);
    put(
        "gateway_uptime_seconds",
        (crate::clock::wall_ms().saturating_sub(gw.started_ms) / 1_000) as f64,
    );
    super::sse::figures(gw, &mut f);
    super::venues::figures(gw, &mut f);
    f
}

/// `<prefix>_p50_us`, `_p99_us` and `_p999_us` of a histogram recorded in ns.
pub(super) fn hist_us3(f: &mut Vec<(String, f64)>, prefix: &str, h: &AtomicHistogram) {
    let p = h.percentiles([50.0, 99.0, 99.9]);
    for (suffix, v) in ["p50", "p99", "p999"].iter().zip(p) {
        f.push((format!("{prefix}_{suffix}_us"), v as f64 / NS_PER_US));
    }
}

fn hist_us(f: &mut Vec<(String, f64)>, prefix: &str, h: &AtomicHistogram) {
    let [p50, p99] = h.percentiles([50.0, 99.0]);
    f.push((format!("{prefix}_p50_us"), p50 as f64 / NS_PER_US));
    f.push((format!("{prefix}_p99_us"), p99 as f64 / NS_PER_US));
}

fn reasons(gw: &Gateway) -> impl Iterator<Item = (Reason, u64)> + '_ {
    Reason::ALL.iter().map(|&r| (r, gw.metrics.reason_count(r)))
}

pub fn prometheus(gw: &Gateway) -> String {
    let mut out = String::with_capacity(16 * 1024);
    for (name, v) in figures(gw) {
        let _ = writeln!(out, "{name} {v}");
    }
    for (r, n) in reasons(gw) {
        let _ = writeln!(
            out,
            "gateway_v3_reject_total{{reason=\"{}\"}} {n}",
            r.as_str()
        );
    }
    le_buckets(
        &mut out,
        "gateway_live_ack_us",
        &ACK_LE_US,
        &gw.metrics.ack_all,
    );
    le_buckets(
        &mut out,
        "gateway_live_ack_accepted_us",
        &ACK_LE_US,
        &gw.metrics.ack_accepted,
    );
    le_buckets(
        &mut out,
        "gateway_fdatasync_us",
        &FDATASYNC_LE_US,
        &gw.metrics.fdatasync,
    );
    for s in &gw.shards {
        let _ = writeln!(
            out,
            "gateway_v3_queue_depth_per_shard{{shard=\"{}\"}} {}\ngateway_v3_shard_killed{{shard=\"{}\"}} {}",
            s.id,
            s.depth(),
            s.id,
            s.killed.load(Ordering::Acquire) as u8
        );
    }
    super::sse::prometheus_labeled(gw, &mut out);
    super::venues::prometheus_labeled(gw, &mut out);
    out
}

/// `le` bounds of the ack histograms in µs: fine around the SLOs (40 and 100 µs), coarse in
/// the tail.
const ACK_LE_US: [u64; 22] = [
    5, 10, 15, 20, 25, 30, 35, 40, 50, 60, 70, 80, 90, 100, 150, 200, 500, 1_000, 5_000, 10_000,
    100_000, 1_000_000,
];

/// `le` bounds of the journal's fdatasync histogram in µs: from a fast SSD's sync to the
/// stalls that trip the loss monitor (`V3_LOSS_GAP_TIMEOUT_MS`, 500 ms by default).
const FDATASYNC_LE_US: [u64; 14] = [
    50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000, 500_000,
    1_000_000,
];

/// A latency histogram as a Prometheus histogram (`_bucket{le}` and `_count`; no `_sum`, which
/// the lock-free histogram does not keep), so that a window's percentile can be computed from
/// two scrapes (`histogram_quantile` over `rate(...)`, or `switchyard bench gate`) rather than
/// only the since-start gauges above.
fn le_buckets(out: &mut String, name: &str, le_us: &[u64], h: &AtomicHistogram) {
    let bounds: Vec<u64> = le_us.iter().map(|us| us * 1_000).collect();
    for (us, n) in le_us.iter().zip(h.cumulative_le(&bounds)) {
        let _ = writeln!(out, "{name}_bucket{{le=\"{us}\"}} {n}");
    }
    let total = h.count();
    let _ = writeln!(
        out,
        "{name}_bucket{{le=\"+Inf\"}} {total}\n{name}_count {total}"
    );
}

pub fn stats(gw: &Gateway) -> Value {
    let mut obj = Map::new();
    for (name, v) in figures(gw) {
        obj.insert(name, json!(v));
    }
    let by_reason: Map<String, Value> = reasons(gw)
        .filter(|(_, n)| *n > 0)
        .map(|(r, n)| (r.as_str().to_string(), json!(n)))
        .collect();
    obj.insert("rejectsByReason".into(), Value::Object(by_reason));
    obj.insert("venues".into(), super::venues::stats(gw));
    Value::Object(obj)
}

pub fn health(gw: &Gateway) -> Value {
    let m = &gw.metrics;
    let [p50, p99] = m.ack_all.percentiles([50.0, 99.0]);
    let status = if !gw.accepting.load(Ordering::Acquire) {
        "STOPPING"
    } else if gw.global_killed.load(Ordering::Acquire) {
        "KILLED"
    } else {
        gw.journal_health
            .status(crate::clock::mono_ns())
            .unwrap_or("OK")
    };
    json!({
        "status": status,
        "queueLen": gw.shards.iter().map(|s| s.depth()).sum::<usize>(),
        "latencyP50Ns": p50,
        "latencyP99Ns": p99,
        "shards": gw.shards.len(),
        "shardsKilled": gw.shards.iter().filter(|s| s.killed.load(Ordering::Acquire)).count(),
        "journalBacklog": gw.journal_backlog.load(Ordering::Relaxed),
        "journalDurableSeq": gw.journal_handle().map_or(0, |j| j.durable_seq()),
        "acceptedRate": m.accepted_rate(),
        "uptimeSec": crate::clock::wall_ms().saturating_sub(gw.started_ms) / 1_000,
    })
}
