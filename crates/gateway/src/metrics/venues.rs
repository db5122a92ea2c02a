//! Figures of the venue sessions and the order lifecycle behind them: accept→sent and
//! accept→first-fill latency, and per venue the session state, reconnects, orders open and
//! report counts (labelled `venue="…"`).

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
