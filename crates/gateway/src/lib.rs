//! The Switchyard gateway: everything between a client's bytes and the journal.
//!
//! Flow (see `docs/architecture.md`): ingress ([`http`], [`tcp`]) decodes, authenticates with
//! a cached verifier, and runs the accept path ([`accept`]: kill switches, risk, admission,
//! watermarks), which `try_send`s into the session's shard queue and answers
//! `VOLATILE_ACCEPT` at once. One [`engine`] thread per shard — the single writer of that
//! shard — journals orders in batches; the journal's writer thread group-commits and its
//! listener moves each order to DURABLE_ACCEPTED in the [`confirm`] store. The [`monitor`]
//! thread does what is periodic or rare: loss-suspect scans and escalation, shard recovery,
//! GC, journaling kill switch changes. [`replay`] rebuilds all of it from the journal at
//! startup; [`server`] wires it and drains it on shutdown.
//!
//! What does not belong here: business rules (they are in `switchyard-core`), wire formats
//! (`switchyard-protocol`), record framing (`switchyard-journal`), token rules
//! (`switchyard-auth`).

pub mod accept;
pub mod audit;
pub mod clock;
pub mod config;
pub mod confirm;
pub mod engine;
pub mod events;
pub mod http;
pub mod journal_health;
pub mod metrics;
pub mod monitor;
pub mod orders;
pub mod outbox;
pub mod records;
pub mod replay;
pub mod sched;
pub mod server;
pub mod state;
pub mod stream;
pub mod tcp;
pub mod tls;
pub mod venues;

pub use config::Config;
pub use server::{start, Server};

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;

/// Accepts connections until `shutdown` fires and serves each on its own task, holding one of
/// the `GATEWAY_MAX_CONNECTIONS` slots (and one of its address's
/// `GATEWAY_MAX_CONNECTIONS_PER_IP`) for as long as it lives; a connection over either limit
/// is closed at once, before a byte is read. `serve` gets the gateway, the stream
/// (TCP_NODELAY set) and its own copy of the shutdown signal; it runs on the connection's
/// task, so a slow TLS handshake never holds up the loop.
pub(crate) async fn accept_loop<F, Fut>(
    gw: std::sync::Arc<state::Gateway>,
    listener: tokio::net::TcpListener,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
    serve: F,
) where
    F: Fn(
        std::sync::Arc<state::Gateway>,
        tokio::net::TcpStream,
        tokio::sync::watch::Receiver<bool>,
    ) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(guard) = ConnectionGuard::acquire(&gw, peer.ip()) else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let conn = serve(gw.clone(), stream, shutdown.clone());
        tokio::spawn(async move {
            let _guard = guard;
            conn.await;
        });
    }
}

/// Open connections per client address, for `GATEWAY_MAX_CONNECTIONS_PER_IP`. Touched once
/// when a connection opens and once when it closes (never per request); an address leaves
/// the map with its last connection, so the map holds at most `GATEWAY_MAX_CONNECTIONS`
/// entries.
#[derive(Default)]
pub struct PerIpConnections(parking_lot::Mutex<HashMap<IpAddr, u32>>);

impl PerIpConnections {
    /// Counts one more connection from `ip` unless it has `limit` already.
    fn try_add(&self, ip: IpAddr, limit: usize) -> bool {
        let mut map = self.0.lock();
        let n = map.entry(ip).or_insert(0);
        if *n as usize >= limit {
            if *n == 0 {
                map.remove(&ip);
            }
            return false;
        }
        *n += 1;
        true
    }

    fn remove(&self, ip: IpAddr) {
        let mut map = self.0.lock();
        if let Some(n) = map.get_mut(&ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&ip);
            }
        }
    }

    /// Open connections from `ip` (tests, diagnostics).
    pub fn get(&self, ip: IpAddr) -> u32 {
        self.0.lock().get(&canonical(ip)).copied().unwrap_or(0)
    }

    /// Addresses with an open connection.
    pub fn addresses(&self) -> usize {
        self.0.lock().len()
    }
}

/// An IPv4 client reaching a dual-stack listener shows up as `::ffff:a.b.c.d`: count it as
/// `a.b.c.d`, so one client has one budget whichever way it connects.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// Holds one of the `GATEWAY_MAX_CONNECTIONS` slots (and, with a per-address limit, one of
/// its address's) while a connection task runs.
pub(crate) struct ConnectionGuard {
    gw: std::sync::Arc<state::Gateway>,
    /// The address counted against `GATEWAY_MAX_CONNECTIONS_PER_IP`, when that limit is on.
    ip: Option<IpAddr>,
}

impl ConnectionGuard {
    /// Takes a slot, or refuses (and counts it) when all are taken or `ip` has all of its own.
    pub(crate) fn acquire(
        gw: &std::sync::Arc<state::Gateway>,
        ip: IpAddr,
    ) -> Option<ConnectionGuard> {
        let m = &gw.metrics;
        let open = m.connections_open.fetch_add(1, Ordering::AcqRel);
        if open as usize >= gw.cfg.gateway.max_connections {
            m.connections_open.fetch_sub(1, Ordering::AcqRel);
            metrics::inc(&m.connections_refused);
            return None;
        }
        let per_ip = gw.cfg.gateway.max_connections_per_ip;
        let ip = if per_ip == 0 {
            None
        } else {
            let ip = canonical(ip);
            if !m.connections_per_ip.try_add(ip, per_ip) {
                m.connections_open.fetch_sub(1, Ordering::AcqRel);
                metrics::inc(&m.connections_refused);
                metrics::inc(&m.connections_refused_per_ip);
                tracing::debug!(%ip, limit = per_ip, "connection refused: per-address limit");
                return None;
            }
            Some(ip)
        };
        Some(ConnectionGuard { gw: gw.clone(), ip })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let m = &self.gw.metrics;
        if let Some(ip) = self.ip {
            m.connections_per_ip.remove(ip);
        }
        m.connections_open.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the per-address table enforces its limit per address and forgets an address with
    // its last connection; IPv4-mapped IPv6 counts as the IPv4 address.
    #[test]
    fn per_ip_table() {
        let t = PerIpConnections::default();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert!(t.try_add(a, 2) && t.try_add(a, 2));
        assert!(!t.try_add(a, 2));
        assert!(t.try_add(b, 2));
        assert_eq!((t.get(a), t.get(b), t.addresses()), (2, 1, 2));
        t.remove(a);
        assert!(t.try_add(a, 2));
        t.remove(a);
        t.remove(a);
        t.remove(b);
        assert_eq!(t.addresses(), 0);
        // A refused first connection (limit 0 is never passed here, but be safe) leaves nothing.
        assert!(!t.try_add(a, 0));
        assert_eq!(t.addresses(), 0);
        let mapped: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
        assert_eq!(canonical(mapped), a);
        assert_eq!(t.get(mapped), 0);
    }
}
