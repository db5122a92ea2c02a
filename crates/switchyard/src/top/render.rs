//! The dashboard as text: a pure function of two scrapes and the time between them. Rates are
//! counter deltas over that time (a counter that went down, a restarted gateway, counts from
//! zero); latency percentiles are what the gateway exposes, computed over its whole uptime,
//! plus the v3 acks of the last interval from the `gateway_live_ack*_us_bucket` histograms.

use std::fmt::Write;
use std::time::Duration;

use super::parse::Snapshot;

/// Reject reasons listed before "… and N more".
const MAX_REASONS: usize = 10;

/// `(row label, metric prefix)`: `<prefix>_p50_us`, `_p99_us`, `_p999_us` (and `_max_us`).
const LATENCIES: [(&str, &str); 6] = [
    ("ack v3, all", "gateway_live_ack"),
    ("ack v3, accepted", "gateway_live_ack_accepted"),
    ("ack /orders (durable)", "gateway_durable_ack"),
    ("v3 accept → durable", "gateway_v3_durable_confirm"),
    ("accept → sent to venue", "gateway_order_accept_to_sent"),
    ("accept → first fill", "gateway_order_accept_to_first_fill"),
];

/// Counters of orders accepted: v3 (HTTP and TCP) and each answer of the durable path.
const ACCEPTED_V3: &str = "gateway_v3_accepted_total";
const ACCEPTED_DURABLE: [&str; 3] = [
    "gateway_orders_volatile_total",
    "gateway_orders_local_total",
    "gateway_orders_replicated_total",
];
/// Every refusal of either path, by reason.
const REJECTS: &str = "gateway_v3_reject_total";

/// Two scrapes and the seconds between them.
struct View<'a> {
    prev: &'a Snapshot,
    cur: &'a Snapshot,
    secs: f64,
}

impl View<'_> {
    fn v(&self, name: &str) -> Option<f64> {
        self.cur.get(name)
    }

    fn delta(&self, name: &str) -> Option<f64> {
        Some(counter_delta(self.prev.get(name)?, self.cur.get(name)?))
    }

    /// Per second; None before a second scrape.
    fn rate(&self, name: &str) -> Option<f64> {
        self.per_sec(self.delta(name)?)
    }

    fn per_sec(&self, delta: f64) -> Option<f64> {
        (self.secs > 0.0).then(|| delta / self.secs)
    }

    /// Sum of the deltas of the counters present (None when none is).
    fn delta_sum(&self, names: &[&str]) -> Option<f64> {
        names
            .iter()
            .filter_map(|n| self.delta(n))
            .fold(None, |acc, d| Some(acc.unwrap_or(0.0) + d))
    }

    fn total_sum(&self, names: &[&str]) -> Option<f64> {
        names
            .iter()
            .filter_map(|n| self.v(n))
            .fold(None, |acc, d| Some(acc.unwrap_or(0.0) + d))
    }

    /// `(label value, total, delta)` of a labelled counter.
    fn labelled(&self, name: &str, label: &str) -> Vec<(String, f64, Option<f64>)> {
        let before = self.prev.by_label(name, label);
        self.cur
            .by_label(name, label)
            .into_iter()
            .map(|(l, v)| {
                let d = before
                    .iter()
                    .find(|(p, _)| *p == l)
                    .map(|(_, p)| counter_delta(*p, v));
                (l, v, d)
            })
            .collect()
    }
}

/// A counter's increase; one that went down was reset, and counts from zero.
fn counter_delta(prev: f64, cur: f64) -> f64 {
    if cur >= prev {
        cur - prev
    } else {
        cur
    }
}

/// One frame of the dashboard; every line at most `width` characters.
pub fn render(prev: &Snapshot, cur: &Snapshot, dt: Duration, width: usize) -> String {
    let v = View {
        prev,
        cur,
        secs: dt.as_secs_f64(),
    };
    let mut out: Vec<String> = Vec::new();
    let mut head = String::new();
    if let Some(up) = v.v("gateway_uptime_seconds") {
        let _ = write!(head, "gateway up {}", uptime(up));
    } else {
        head.push_str("gateway uptime unknown");
    }
    if v.secs > 0.0 {
        let _ = write!(head, " · rates over the last {:.2} s", v.secs);
    } else {
        head.push_str(" · rates after the next scrape");
    }
    let _ = write!(head, " · {} metrics", cur.len());
    if cur.bad_lines > 0 {
        let _ = write!(head, " · {} unparsable lines", cur.bad_lines);
    }
    out.push(head);
    if !cur.has(ACCEPTED_V3) && !cur.has("gateway_uptime_seconds") {
        out.push("!! no Switchyard gateway metrics at this address".into());
    }
    throughput(&v, &mut out);
    safety(&v, &mut out);
    latency(&v, &mut out);
    rejects(&v, &mut out);
    queues(&v, &mut out, width);
    journal(&v, &mut out);
    venues(&v, &mut out);
    downstream(&v, &mut out);
    fit(&out, width)
}

fn throughput(v: &View, out: &mut Vec<String>) {
    out.push(format!("THROUGHPUT {:>18} {:>12}", "rate", "total"));
    let mut names = vec![ACCEPTED_V3];
    names.extend(ACCEPTED_DURABLE);
    let acc_d = v.delta_sum(&names);
    let acc_total = v.total_sum(&names);
    let rej = v.labelled(REJECTS, "reason");
    let rej_d = rej
        .iter()
        .filter_map(|r| r.2)
        .fold(None, |a: Option<f64>, d| Some(a.unwrap_or(0.0) + d));
    let rej_total: f64 = rej.iter().map(|r| r.1).sum();
    let v3 = v.rate(ACCEPTED_V3);
    let durable = v.delta_sum(&ACCEPTED_DURABLE).and_then(|d| v.per_sec(d));
    out.push(format!(
        "  accepted {:>18} {:>12}   v3 {} · /orders {}",
        rate(acc_d.and_then(|d| v.per_sec(d))),
        count(acc_total),
        rate(v3),
        rate(durable),
    ));
    let share = match (acc_d, rej_d) {
        (Some(a), Some(r)) if a + r > 0.0 => format!("   {} of orders", pct(r / (a + r))),
        _ => String::new(),
    };
    out.push(format!(
        "  rejected {:>18} {:>12}{share}",
        rate(rej_d.and_then(|d| v.per_sec(d))),
        count(Some(rej_total)),
    ));
    out.push(format!(
        "  cancels {} · amends {} · idempotent replays {}",
        rate(v.rate("gateway_orders_canceled_total")),
        rate(v.rate("gateway_orders_amended_total")),
        rate(v.rate("gateway_orders_existing_total")),
    ));
    let mut l = format!(
        "  http {} · tcp frames {} · connections {}",
        rate(v.rate("gateway_http_requests_total")),
        rate(v.rate("gateway_v3_tcp_frames_total")),
        count(v.v("gateway_connections_open")),
    );
    if let Some(r) = v.v("gateway_v3_accepted_rate") {
        let _ = write!(l, " · v3 accepted rate since start {}", pct(r));
    }
    out.push(l);
}

fn safety(v: &View, out: &mut Vec<String>) {
    let global = v.v("gateway_v3_kill_switch").unwrap_or(0.0) > 0.0;
    let shards = v.v("gateway_v3_shard_kill_switches").unwrap_or(0.0);
    let lanes = v.v("gateway_v3_durable_lanes");
    let loss = v.v("gateway_v3_loss_suspect_total").unwrap_or(0.0);
    let alarm = global || shards > 0.0 || loss > 0.0;
    out.push(if alarm { "SAFETY !!" } else { "SAFETY" }.into());
    out.push(format!(
        "  kill switches: global {} · shards killed {}{} · sessions killed {}{}",
        if global { "ON !!" } else { "off" },
        count(Some(shards)),
        lanes.map_or(String::new(), |n| format!(" of {}", count(Some(n)))),
        count(v.v("gateway_v3_session_killed_total")),
        plus(v.delta("gateway_v3_session_killed_total")),
    ));
    out.push(format!(
        "  loss suspects: {}{}{}",
        count(Some(loss)),
        plus(v.delta("gateway_v3_loss_suspect_total")),
        if loss > 0.0 { " !!" } else { "" },
    ));
}

fn latency(v: &View, out: &mut Vec<String>) {
    out.push(format!(
        "{:<24}{:>9} {:>9} {:>9} {:>9}",
        "LATENCY (since start)", "p50", "p99", "p999", "max"
    ));
    let mut any = false;
    for (label, prefix) in LATENCIES {
        let p = |s: &str| v.v(&format!("{prefix}_{s}_us"));
        if p("p50").is_none() && p("p99").is_none() {
            continue;
        }
        any = true;
        out.push(format!(
            "  {label:<22}{:>9} {:>9} {:>9} {:>9}",
            micros(p("p50")),
            micros(p("p99")),
            micros(p("p999")),
            micros(p("max")),
        ));
    }
    for (label, family) in INTERVAL_ACKS {
        if let Some((p50, p99)) = interval_quantiles(v, family) {
            any = true;
            out.push(format!(
                "  {label:<22}{:>9} {:>9} {:>9} {:>9}",
                at_most(p50),
                at_most(p99),
                "-",
                "-"
            ));
        }
    }
    if !any {
        out.push("  no latency figures exposed".into());
    }
}

/// `(row label, histogram family)` of the acks shown over the last interval.
const INTERVAL_ACKS: [(&str, &str); 2] = [
    ("ack v3, last interval", "gateway_live_ack_us"),
    ("  accepted, last intvl", "gateway_live_ack_accepted_us"),
];

/// p50 and p99 of the samples a `<family>_bucket{le}` histogram gained between the scrapes,
/// each as the smallest bucket bound (µs) holding that share (`None` = beyond every finite
/// bound); `None` when the interval had no samples.
fn interval_quantiles(v: &View, family: &str) -> Option<(Option<f64>, Option<f64>)> {
    let name = format!("{family}_bucket");
    let before: std::collections::HashMap<String, f64> =
        v.prev.by_label(&name, "le").into_iter().collect();
    let mut buckets: Vec<(f64, f64)> = v
        .cur
        .by_label(&name, "le")
        .into_iter()
        .filter_map(|(le, n)| {
            let bound = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((bound, counter_delta(before.get(&le).copied()?, n)))
        })
        .collect();
    buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = buckets.last().filter(|b| b.0.is_infinite())?.1;
    if total <= 0.0 {
        return None;
    }
    let at = |q: f64| {
        buckets
            .iter()
            .find(|(_, n)| *n >= q * total)
            .map(|(b, _)| *b)
            .filter(|b| b.is_finite())
    };
    Some((at(0.50), at(0.99)))
}

/// `≤40µs`, or `>max` beyond the largest finite bound.
fn at_most(bound: Option<f64>) -> String {
    match bound {
        Some(b) => format!("≤{}", micros(Some(b))),
        None => ">max".into(),
    }
}

fn rejects(v: &View, out: &mut Vec<String>) {
    out.push(format!(
        "{:<28}{:>9} {:>12}",
        "REJECTS BY REASON", "rate", "total"
    ));
    let mut rows: Vec<_> = v
        .labelled(REJECTS, "reason")
        .into_iter()
        .filter(|r| r.1 > 0.0 || r.2.is_some_and(|d| d > 0.0))
        .collect();
    rows.sort_by(|a, b| {
        let d = |r: &(String, f64, Option<f64>)| r.2.unwrap_or(0.0);
        d(b).total_cmp(&d(a))
            .then(b.1.total_cmp(&a.1))
            .then_with(|| a.0.cmp(&b.0))
    });
    if rows.is_empty() {
        out.push("  none".into());
    }
    for (reason, total, d) in rows.iter().take(MAX_REASONS) {
        let r = d.and_then(|d| v.per_sec(d));
        let mark = if r.is_some_and(|r| r > 0.0) { " *" } else { "" };
        out.push(format!(
            "  {reason:<26}{:>9} {:>12}{mark}",
            rate(r),
            count(Some(*total))
        ));
    }
    if rows.len() > MAX_REASONS {
        out.push(format!("  … and {} more", rows.len() - MAX_REASONS));
    }
}

fn queues(v: &View, out: &mut Vec<String>, width: usize) {
    out.push("QUEUES".into());
    let mut shards = v.cur.by_label("gateway_v3_queue_depth_per_shard", "shard");
    shards.sort_by(|a, b| {
        let n = |s: &str| s.parse::<u64>().unwrap_or(u64::MAX);
        n(&a.0).cmp(&n(&b.0)).then_with(|| a.0.cmp(&b.0))
    });
    out.push(format!(
        "  ingress {} of {} · busiest shard {}",
        count(v.v("gateway_v3_queue_depth")),
        count(v.v("gateway_v3_queue_capacity")),
        percent(v.v("gateway_v3_queue_utilization_pct")),
    ));
    if !shards.is_empty() {
        let items: Vec<String> = shards
            .iter()
            .map(|(s, d)| format!("{s}:{}", count(Some(*d))))
            .collect();
        wrap(out, "  depth per shard ", &items, width);
    }
    out.push(format!(
        "  journal backlog (v3) {} of {} ({}) · confirms in flight {} · oldest {}",
        count(v.v("gateway_v3_durable_queue_depth")),
        count(v.v("gateway_v3_durable_queue_capacity")),
        percent(v.v("gateway_v3_durable_queue_utilization_pct")),
        count(v.v("gateway_v3_confirm_inflight")),
        micros(v.v("gateway_v3_confirm_oldest_inflight_us")),
    ));
    out.push(format!(
        "  /orders in flight {} (limit {})",
        count(v.v("gateway_durable_inflight")),
        count(v.v("gateway_inflight_limit_dynamic")),
    ));
}

fn journal(v: &View, out: &mut Vec<String>) {
    out.push(match v.v("gateway_journal_available") {
        Some(0.0) => {
            "JOURNAL !! new orders refused: volume below its reserve, or commits failing (/health)"
                .into()
        }
        _ => "JOURNAL".into(),
    });
    let commits = v.delta("gateway_journal_commits_total");
    let records = v.delta("gateway_journal_records_total");
    let avg = match (records, commits) {
        (Some(r), Some(c)) if c > 0.0 => format!("{:.1}", r / c),
        _ => "-".into(),
    };
    out.push(format!(
        "  fsync {} · batch {} records (p50 {}, p99 {}, max {}) · fsync p50 {} p99 {} (time-weighted {})",
        rate(commits.and_then(|c| v.per_sec(c))),
        avg,
        count(v.v("gateway_journal_batch_records_p50")),
        count(v.v("gateway_journal_batch_records_p99")),
        count(v.v("gateway_journal_batch_records_max")),
        micros(v.v("gateway_fdatasync_p50_us")),
        micros(v.v("gateway_fdatasync_p99_us")),
        micros(v.v("gateway_fdatasync_time_weighted_p99_us")),
    ));
    out.push(format!(
        "  records {} · {} · write p50 {} p99 {} · durable seq {} · WAL age {} ms",
        rate(records.and_then(|r| v.per_sec(r))),
        bytes_rate(v.rate("gateway_journal_bytes_total")),
        micros(v.v("gateway_journal_write_p50_us")),
        micros(v.v("gateway_journal_write_p99_us")),
        count(v.v("gateway_journal_durable_seq")),
        count(v.v("gateway_wal_age_ms")),
    ));
    if let Some(free) = v.v("gateway_journal_disk_free_bytes") {
        out.push(format!(
            "  volume free {} · reserve {}",
            size(free),
            size(v.v("gateway_journal_disk_reserve_bytes").unwrap_or(0.0)),
        ));
    }
}

/// A byte count in binary units.
fn size(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut x = b.max(0.0);
    let mut unit = 0;
    while x >= 1024.0 && unit + 1 < UNITS.len() {
        x /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{x:.0} B"),
        _ => format!("{x:.1} {}", UNITS[unit]),
    }
}

fn venues(v: &View, out: &mut Vec<String>) {
    let n = v.v("gateway_venues").unwrap_or(0.0);
    let mut up = v.cur.by_label("gateway_venue_session_up", "venue");
    if n == 0.0 && up.is_empty() {
        out.push("VENUES none configured".into());
        return;
    }
    let n_up = v
        .v("gateway_venues_up")
        .unwrap_or(up.iter().filter(|u| u.1 > 0.0).count() as f64);
    let down = n_up < n;
    out.push(format!(
        "VENUES {} of {} up{}",
        count(Some(n_up)),
        count(Some(n)),
        if down { " !!" } else { "" }
    ));
    up.sort_by(|a, b| a.0.cmp(&b.0));
    let find = |name: &str, venue: &str| {
        v.labelled(name, "venue")
            .into_iter()
            .find(|r| r.0 == venue)
            .map(|r| (r.1, r.2))
    };
    for (venue, state) in &up {
        let reconnects = find("gateway_venue_reconnects_total", venue);
        let reports = find("gateway_venue_reports_total", venue);
        out.push(format!(
            "  {venue:<10} {:<5} open {:>6} · reconnects {}{} · queue {} · reports {}",
            if *state > 0.0 { "up" } else { "DOWN" },
            count(find("gateway_venue_orders_open", venue).map(|r| r.0)),
            count(reconnects.map(|r| r.0)),
            plus(reconnects.and_then(|r| r.1)),
            count(find("gateway_venue_queue_depth", venue).map(|r| r.0)),
            rate(reports.and_then(|r| r.1).and_then(|d| v.per_sec(d))),
        ));
    }
}

/// The outbox to the bus, the audit chain and the event streams: what trails the journal.
fn downstream(v: &View, out: &mut Vec<String>) {
    if let Some(running) = v.v("gateway_outbox_running") {
        if running > 0.0 {
            out.push(format!(
                "OUTBOX running · lag {} records · published {} · errors {}{} · backoff {} ms",
                count(v.v("gateway_outbox_lag_records")),
                rate(v.rate("gateway_outbox_published_total")),
                count(v.v("gateway_outbox_errors_total")),
                plus(v.delta("gateway_outbox_errors_total")),
                count(v.v("gateway_outbox_backoff_ms")),
            ));
        } else {
            out.push("OUTBOX not running (no bus, no embedded back office)".into());
        }
    }
    if v.v("gateway_audit_chain_enabled").unwrap_or(0.0) > 0.0 {
        out.push(format!(
            "AUDIT chain lag {} records · errors {}",
            count(v.v("gateway_audit_chain_lag_records")),
            count(v.v("gateway_audit_chain_errors_total")),
        ));
    }
    if v.cur.has("gateway_sse_subscribers") {
        out.push(format!(
            "STREAMS subscribers {} · delivered {} · dropped {}{}",
            count(v.v("gateway_sse_subscribers")),
            rate(v.rate("gateway_sse_events_delivered_total")),
            count(v.v("gateway_sse_dropped_total")),
            plus(v.delta("gateway_sse_dropped_total")),
        ));
    }
}

/// The frame as the terminal shows it: a title, the scrape's state, then the dashboard (if
/// there has been a good scrape).
pub fn frame(title: &str, error: Option<&str>, body: Option<&str>, width: usize) -> String {
    let mut lines = vec![title.to_string()];
    if let Some(e) = error {
        lines.push(format!("scrape failed: {e}"));
        if body.is_some() {
            lines.push("(the figures below are from the last good scrape)".into());
        }
    }
    let mut out = fit(&lines, width);
    if let Some(b) = body {
        out.push_str(b);
    }
    out
}

/// Lines cut to `width` characters (0: no limit), each ended by `\n`.
fn fit(lines: &[String], width: usize) -> String {
    let mut out = String::new();
    for l in lines {
        let l = l.trim_end();
        if width > 0 && l.chars().count() > width {
            out.extend(l.chars().take(width));
        } else {
            out.push_str(l);
        }
        out.push('\n');
    }
    out
}

/// `prefix a b c …` over as many lines as `width` needs.
fn wrap(out: &mut Vec<String>, prefix: &str, items: &[String], width: usize) {
    let indent = " ".repeat(prefix.chars().count());
    let mut line = prefix.to_string();
    let mut empty = true;
    for it in items {
        let len = line.chars().count();
        if !empty && width > 0 && len + 1 + it.chars().count() > width {
            out.push(std::mem::replace(&mut line, indent.clone()));
            empty = true;
        }
        if !empty {
            line.push(' ');
        }
        line.push_str(it);
        empty = false;
    }
    out.push(line);
}

fn rate(r: Option<f64>) -> String {
    match r {
        None => "…/s".into(),
        Some(r) if r.abs() >= 10_000.0 => format!("{:.1}k/s", r / 1_000.0),
        Some(r) => format!("{r:.1}/s"),
    }
}

fn count(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e15 => format!("{v:.0}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn plus(d: Option<f64>) -> String {
    match d {
        Some(d) if d > 0.0 => format!(" (+{})", count(Some(d))),
        _ => String::new(),
    }
}

fn pct(ratio: f64) -> String {
    format!("{:.2} %", ratio * 100.0)
}

fn percent(v: Option<f64>) -> String {
    v.map_or("-".into(), |p| format!("{} %", count(Some(p))))
}

/// A latency in µs, in the unit that reads best; `-` for none (0: no samples yet).
fn micros(v: Option<f64>) -> String {
    match v {
        None | Some(0.0) => "-".into(),
        Some(u) if !u.is_finite() => format!("{u}"),
        Some(u) if u < 10.0 => format!("{u:.2}µs"),
        Some(u) if u < 1_000.0 => format!("{u:.1}µs"),
        Some(u) if u < 1_000_000.0 => format!("{:.2}ms", u / 1_000.0),
        Some(u) => format!("{:.2}s", u / 1_000_000.0),
    }
}

fn bytes_rate(r: Option<f64>) -> String {
    match r {
        None => "…B/s".into(),
        Some(b) => format!("{}/s", size(b)),
    }
}

fn uptime(secs: f64) -> String {
    let s = if secs.is_finite() && secs > 0.0 {
        secs as u64
    } else {
        0
    };
    let (d, h, m, s) = (s / 86_400, s / 3_600 % 24, s / 60 % 60, s % 60);
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) => format!("{m}m {s:02}s"),
        (0, _, _) => format!("{h}h {m:02}m {s:02}s"),
        _ => format!("{d}d {h:02}h {m:02}m"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scrape as the gateway writes it, with `n` as the figures' clock.
    fn scrape(n: u64) -> Snapshot {
        Snapshot::parse(&format!(
            "gateway_uptime_seconds {up}
gateway_live_ack_p50_us 12.5
gateway_live_ack_p99_us 48
gateway_live_ack_p999_us 950
gateway_live_ack_max_us 2100
gateway_durable_ack_p50_us 0
gateway_durable_ack_p99_us 0
gateway_durable_ack_p999_us 0
gateway_v3_accepted_total {acc}
gateway_orders_local_total {loc}
gateway_v3_accepted_rate 0.995
gateway_v3_kill_switch 0
gateway_v3_shard_kill_switches 0
gateway_v3_durable_lanes 2
gateway_v3_loss_suspect_total 0
gateway_v3_queue_depth 3
gateway_v3_queue_capacity 8192
gateway_v3_queue_utilization_pct 0
gateway_journal_commits_total {commits}
gateway_journal_records_total {records}
gateway_journal_bytes_total {bytes}
gateway_fdatasync_p50_us 850
gateway_fdatasync_p99_us 2100
gateway_journal_available {avail}
gateway_journal_disk_free_bytes 53687091200
gateway_journal_disk_reserve_bytes 536870912
gateway_venues 2
gateway_venues_up 1
gateway_outbox_running 1
gateway_outbox_lag_records 4
gateway_outbox_published_total {records}
gateway_v3_reject_total{{reason=\"INVALID_QTY\"}} {qty}
gateway_v3_reject_total{{reason=\"INVALID_SYMBOL\"}} {sym}
gateway_v3_reject_total{{reason=\"RATE_LIMITED\"}} 0
gateway_v3_queue_depth_per_shard{{shard=\"1\"}} 2
gateway_v3_queue_depth_per_shard{{shard=\"0\"}} 1
gateway_venue_session_up{{venue=\"simA\"}} 1
gateway_venue_session_up{{venue=\"simB\"}} 0
gateway_venue_reconnects_total{{venue=\"simB\"}} {n}
gateway_venue_orders_open{{venue=\"simA\"}} 7
",
            up = 3_700 + n,
            acc = 1_000 * n,
            loc = 100 * n,
            commits = 10 * n,
            records = 1_100 * n,
            bytes = 100_000 * n,
            qty = 5 * n,
            sym = 20 + n,
            // The journal refuses new orders at "time" 9.
            avail = u8::from(n != 9),
        ))
    }

    // Goal: the last interval's ack percentiles come from the bucket deltas, as the smallest
    // bound holding the share; an interval without acks shows no row.
    #[test]
    fn interval_acks_from_buckets() {
        let hist = |n40: u64, n100: u64, inf: u64| {
            Snapshot::parse(&format!(
                "gateway_live_ack_us_bucket{{le=\"40\"}} {n40}\n\
                 gateway_live_ack_us_bucket{{le=\"100\"}} {n100}\n\
                 gateway_live_ack_us_bucket{{le=\"+Inf\"}} {inf}\n"
            ))
        };
        let (a, b) = (hist(100, 100, 100), hist(1_100, 1_180, 1_200));
        let v = View {
            prev: &a,
            cur: &b,
            secs: 1.0,
        };
        // 1 100 new acks: 1 000 within 40 µs (p50), 1 080 within 100 (98 %: p99 beyond).
        assert_eq!(
            interval_quantiles(&v, "gateway_live_ack_us"),
            Some((Some(40.0), None))
        );
        let mut out = Vec::new();
        latency(&v, &mut out);
        let row = out.iter().find(|l| l.contains("last interval")).unwrap();
        assert!(row.contains("≤40.0µs") && row.contains(">max"), "{row}");
        let idle = View {
            prev: &b,
            cur: &b,
            secs: 1.0,
        };
        assert_eq!(interval_quantiles(&idle, "gateway_live_ack_us"), None);
        assert_eq!(interval_quantiles(&v, "gateway_live_ack_accepted_us"), None);
    }

    fn line<'a>(frame: &'a str, start: &str) -> &'a str {
        frame
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_else(|| panic!("no line {start:?} in\n{frame}"))
    }

    // Goal: rates are counter deltas over the interval; totals, percentiles and per-label
    // rows are shown as exposed.
    #[test]
    fn figures() {
        let f = render(&scrape(1), &scrape(3), Duration::from_secs(2), 100);
        assert!(
            f.starts_with("gateway up 1h 01m 43s · rates over the last 2.00 s"),
            "{f}"
        );
        // (2 × 1000 + 2 × 100) / 2 s; v3 1000/s, /orders 100/s.
        assert!(line(&f, "accepted").contains("1100.0/s"), "{f}");
        assert!(line(&f, "accepted").contains("3300"), "{f}");
        assert!(
            line(&f, "accepted").contains("v3 1000.0/s · /orders 100.0/s"),
            "{f}"
        );
        // (2 × 5 + 2) / 2 s = 6/s over 15 + 23 = 38 in all.
        let rej = line(&f, "rejected");
        assert!(rej.contains("6.0/s") && rej.contains("38"), "{f}");
        assert!(rej.contains("0.54 % of orders"), "{f}");
        // Sorted by rate: INVALID_QTY (5/s) before INVALID_SYMBOL (1/s); RATE_LIMITED (0) hidden.
        let qty = f.find("INVALID_QTY").unwrap();
        let sym = f.find("INVALID_SYMBOL").unwrap();
        assert!(qty < sym, "{f}");
        assert!(line(&f, "INVALID_QTY").contains("5.0/s"), "{f}");
        assert!(!f.contains("RATE_LIMITED"), "{f}");
        let ack = line(&f, "ack v3, all");
        for want in ["12.5µs", "48.0µs", "950.0µs", "2.10ms"] {
            assert!(ack.contains(want), "{want}: {f}");
        }
        // No samples: dashes, not zeros.
        assert!(
            line(&f, "ack /orders").ends_with("-         -         -         -"),
            "{f}"
        );
        // Absent figures are left out.
        assert!(!f.contains("first fill"), "{f}");
        assert!(line(&f, "depth per shard").ends_with("0:1 1:2"), "{f}");
        // 20 commits and 2200 records in 2 s: 10 fsyncs/s of 110 records.
        let j = line(&f, "fsync");
        assert!(j.contains("fsync 10.0/s · batch 110.0 records"), "{f}");
        assert!(j.contains("p50 850.0µs p99 2.10ms"), "{f}");
        assert!(line(&f, "records").contains("97.7 KiB/s"), "{f}");
        assert!(f.contains("\nJOURNAL\n"), "{f}");
        assert_eq!(
            line(&f, "volume free"),
            "  volume free 50.0 GiB · reserve 512.0 MiB",
            "{f}"
        );
        let refusing = render(&scrape(3), &scrape(9), Duration::from_secs(2), 100);
        assert!(
            line(&refusing, "JOURNAL").contains("JOURNAL !! new orders refused"),
            "{refusing}"
        );
        assert!(line(&f, "VENUES").contains("1 of 2 up !!"), "{f}");
        assert!(line(&f, "simA").contains("open      7"), "{f}");
        assert!(
            line(&f, "simB").contains("DOWN") && line(&f, "simB").contains("(+2)"),
            "{f}"
        );
        assert!(
            line(&f, "OUTBOX").contains("lag 4 records · published 1100.0/s"),
            "{f}"
        );
        assert!(
            line(&f, "kill switches").contains("global off · shards killed 0 of 2"),
            "{f}"
        );
    }

    // Goal: the first frame (one scrape) shows totals and no rates; nothing breaks.
    #[test]
    fn first_frame() {
        let s = scrape(1);
        let f = render(&s, &s, Duration::ZERO, 100);
        assert!(f.contains("rates after the next scrape"), "{f}");
        assert!(line(&f, "accepted").contains("…/s"), "{f}");
        assert!(line(&f, "fsync").contains("batch - records"), "{f}");
    }

    // Goal: a counter that goes down (the gateway restarted) counts from zero.
    #[test]
    fn reset() {
        let f = render(&scrape(5), &scrape(1), Duration::from_secs(1), 100);
        assert!(line(&f, "accepted").contains("1100.0/s"), "{f}");
    }

    // Goal: kill switches and loss suspects stand out.
    #[test]
    fn alarms() {
        let bad = Snapshot::parse(
            "gateway_v3_kill_switch 1\ngateway_v3_shard_kill_switches 2\ngateway_v3_loss_suspect_total 3\n",
        );
        let f = render(&Snapshot::default(), &bad, Duration::from_secs(1), 0);
        assert!(f.contains("SAFETY !!"), "{f}");
        assert!(f.contains("global ON !! · shards killed 2"), "{f}");
        assert!(f.contains("loss suspects: 3 !!"), "{f}");
        assert!(f.contains("no Switchyard gateway metrics"), "{f}");
    }

    // Goal: no line is wider than asked, in characters; long shard lists wrap.
    #[test]
    fn width() {
        let mut text = String::from("gateway_uptime_seconds 1\n");
        for s in 0..64 {
            text.push_str(&format!(
                "gateway_v3_queue_depth_per_shard{{shard=\"{s}\"}} {s}\n"
            ));
        }
        let s = Snapshot::parse(&text);
        for w in [20, 40, 80] {
            let f = render(&s, &s, Duration::from_secs(1), w);
            assert!(f.lines().all(|l| l.chars().count() <= w), "{w}:\n{f}");
        }
        let f = render(&s, &s, Duration::from_secs(1), 80);
        assert!(f.contains("63:63"), "{f}");
    }

    // Goal: garbage in, a frame out (no panic on NaN, infinities, huge or negative values).
    #[test]
    fn odd_values() {
        let odd = Snapshot::parse(
            "gateway_uptime_seconds NaN\ngateway_v3_accepted_total +Inf\ngateway_live_ack_p50_us -Inf\n\
             gateway_journal_commits_total -5\ngateway_v3_queue_depth 1e300\n\
             gateway_v3_reject_total{reason=\"X\"} NaN\ngateway_venue_session_up{venue=\"\"} 1\n",
        );
        let f = render(&scrape(1), &odd, Duration::from_millis(1), 60);
        assert!(f.contains("THROUGHPUT"), "{f}");
        let _ = render(&odd, &odd, Duration::from_secs(1), 0);
    }

    // Goal: a failed scrape says why above the last figures, or alone.
    #[test]
    fn frames() {
        let f = frame(
            "switchyard top",
            Some("cannot connect: refused, retrying"),
            None,
            0,
        );
        assert_eq!(
            f,
            "switchyard top\nscrape failed: cannot connect: refused, retrying\n"
        );
        let f = frame("t", Some("x"), Some("body\n"), 0);
        assert!(
            f.contains("last good scrape") && f.ends_with("body\n"),
            "{f}"
        );
        assert_eq!(frame("t", None, Some("b\n"), 0), "t\nb\n");
    }
}
