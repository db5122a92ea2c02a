//! Figures of what leaves the gateway: the venue sessions and the order lifecycle behind them
//! (accept→sent and accept→first-fill latency; per venue the session state, reconnects, orders
//! open and report counts, labelled `venue="…"`), and the outbox to the bus.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use super::get;
use crate::state::Gateway;

/// Unlabelled figures (they join `/metrics` and `/stats`).
pub fn figures(gw: &Gateway, f: &mut Vec<(String, f64)>) {
    let m = &gw.metrics;
    super::render::hist_us3(f, "gateway_order_accept_to_sent", &m.accept_to_sent);
    super::render::hist_us3(
        f,
        "gateway_order_accept_to_first_fill",
        &m.accept_to_first_fill,
    );
    f.push((
        "gateway_orders_amended_total".into(),
        get(&m.orders_amended) as f64,
    ));
    f.push(("gateway_venues".into(), gw.venues.links.len() as f64));
    let up = gw.venues.links.iter().filter(|l| l.is_up()).count();
    f.push(("gateway_venues_up".into(), up as f64));
    let o = &gw.outbox_stats;
    for (name, v) in [
        ("gateway_outbox_running", gw.outbox_running() as u64),
        ("gateway_outbox_next_seq", get(&o.next_seq)),
        ("gateway_outbox_published_total", get(&o.published)),
        ("gateway_outbox_skipped_total", get(&o.skipped)),
        ("gateway_outbox_batches_total", get(&o.batches)),
        ("gateway_outbox_errors_total", get(&o.errors)),
        ("gateway_outbox_backoff_ms", get(&o.backoff_ms)),
        ("gateway_outbox_lag_records", get(&o.lag_records)),
        (
            "gateway_outbox_replicated_waiting",
            gw.outbox_waiters.pending() as u64,
        ),
        ("gateway_orders_replicated_total", get(&m.orders_replicated)),
    ] {
        f.push((name.into(), v as f64));
    }
}

/// One series per venue and figure.
pub fn prometheus_labeled(gw: &Gateway, out: &mut String) {
    for l in &gw.venues.links {
        let n = &l.name;
        let rows = [
            ("gateway_venue_session_up", l.is_up() as u64),
            (
                "gateway_venue_logons_total",
                l.logons.load(Ordering::Relaxed),
            ),
            (
                "gateway_venue_reconnects_total",
                l.reconnects.load(Ordering::Relaxed),
            ),
            ("gateway_venue_orders_open", l.open_orders() as u64),
            ("gateway_venue_queue_depth", l.queue_len() as u64),
            (
                "gateway_venue_reports_total",
                l.reports.load(Ordering::Relaxed),
            ),
            (
                "gateway_venue_reports_duplicate_total",
                l.duplicates.load(Ordering::Relaxed),
            ),
            (
                "gateway_venue_reports_unknown_order_total",
                l.unknown_orders.load(Ordering::Relaxed),
            ),
            (
                "gateway_venue_resend_requests_total",
                l.resends.load(Ordering::Relaxed),
            ),
            (
                "gateway_venue_status_reports_total",
                l.status_answers.load(Ordering::Relaxed),
            ),
            ("gateway_venue_report_seq", l.seq_through()),
        ];
        for (name, v) in rows {
            let _ = writeln!(out, "{name}{{venue=\"{n}\"}} {v}");
        }
    }
}

/// `/stats` → `venues`: the same per venue, as JSON.
pub fn stats(gw: &Gateway) -> Value {
    Value::Array(
        gw.venues
            .links
            .iter()
            .map(|l| {
                json!({
                    "venue": &*l.name, "addr": l.addr, "up": l.is_up(),
                    "logons": l.logons.load(Ordering::Relaxed),
                    "reconnects": l.reconnects.load(Ordering::Relaxed),
                    "ordersOpen": l.open_orders(), "queueDepth": l.queue_len(),
                    "reports": l.reports.load(Ordering::Relaxed),
                    "duplicates": l.duplicates.load(Ordering::Relaxed),
                    "unknownOrders": l.unknown_orders.load(Ordering::Relaxed),
                    "resendRequests": l.resends.load(Ordering::Relaxed),
                    "reportSeq": l.seq_through(),
                })
            })
            .collect(),
    )
}
