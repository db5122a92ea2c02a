//! Reading the gateway's `GET /metrics` from the outside: one scrape on a fresh connection,
//! Prometheus text into name → value. Used by `bench sse` and the gates, which compare two
//! scrapes taken around a measured window.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use anyhow::bail;

use crate::http_client::HttpConn;

/// Series by name, labels kept in the name as written (`x_bucket{le="40"}`).
pub type Metrics = BTreeMap<String, f64>;

/// `GET /metrics` on a fresh connection, with `X-Metrics-Token` when the gateway wants one
/// (`GATEWAY_METRICS_TOKEN`).
pub async fn scrape_metrics(
    addr: SocketAddr,
    host: &str,
    token: Option<&str>,
) -> anyhow::Result<Metrics> {
    let mut conn = HttpConn::connect(addr).await?;
    let auth = token.map_or(String::new(), |t| format!("X-Metrics-Token: {t}\r\n"));
    let req = format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n{auth}Connection: close\r\n\r\n");
    let reply = conn.roundtrip(req.as_bytes()).await?;
    match reply.status {
        200 => Ok(parse_metrics(&String::from_utf8_lossy(reply.body()))),
        401 => bail!("GET /metrics answered 401: the gateway wants a metrics token (--metrics-token / GATEWAY_METRICS_TOKEN)"),
        s => bail!("GET /metrics answered {s}"),
    }
}

/// `name value` lines (Prometheus text format); comments and other lines are skipped.
pub fn parse_metrics(text: &str) -> Metrics {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (name, value) = l.rsplit_once(' ')?;
            Some((name.trim().to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

/// The difference of a counter between two scrapes (0 when missing; never negative, which a
/// restarted gateway would otherwise give).
pub fn delta(before: &Metrics, after: &Metrics, name: &str) -> u64 {
    let get = |m: &Metrics| m.get(name).copied().unwrap_or(0.0);
    (get(after) - get(before)).max(0.0) as u64
}

/// A labelled family's values by label value, e.g. `gateway_v3_reject_total{reason="X"}` →
/// `X → n`, for one label only.
pub fn by_label<'a>(m: &'a Metrics, family: &str, label: &str) -> BTreeMap<&'a str, f64> {
    let prefix = format!("{family}{{{label}=\"");
    m.iter()
        .filter_map(|(k, v)| {
            let rest = k.strip_prefix(&prefix)?;
            let (value, tail) = rest.split_once('"')?;
            (tail == "}").then_some((value, *v))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: metrics text is read into name → value, labels kept in the name.
    #[test]
    fn metrics_text() {
        let m = parse_metrics(
            "# HELP x\ngateway_sse_delivery_delay_p99_us 812.5\ngateway_sse_clients{scope=\"account\"} 200\nbad line\n",
        );
        assert_eq!(m["gateway_sse_delivery_delay_p99_us"], 812.5);
        assert_eq!(m["gateway_sse_clients{scope=\"account\"}"], 200.0);
        assert_eq!(m.len(), 2);
    }

    // Goal: counter deltas and label families read the way the gates use them.
    #[test]
    fn deltas_and_labels() {
        let a = parse_metrics("c 10\nr{reason=\"A\"} 1\n");
        let b = parse_metrics("c 25\nr{reason=\"A\"} 4\nr{reason=\"B\"} 2\nr{other=\"x\"} 9\n");
        assert_eq!(delta(&a, &b, "c"), 15);
        assert_eq!(delta(&b, &a, "c"), 0);
        assert_eq!(delta(&a, &b, "missing"), 0);
        let r = by_label(&b, "r", "reason");
        assert_eq!(
            r.into_iter().collect::<Vec<_>>(),
            vec![("A", 4.0), ("B", 2.0)]
        );
    }
}
