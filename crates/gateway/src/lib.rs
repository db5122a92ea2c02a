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
pub mod venues;

pub use config::Config;
pub use server::{start, Server};

use std::sync::atomic::Ordering;

/// Accepts connections until `shutdown` fires and serves each on its own task, holding one of
/// the `GATEWAY_MAX_CONNECTIONS` slots for as long as it lives. `serve` gets the gateway, the
/// stream (TCP_NODELAY set) and its own copy of the shutdown signal.
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
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(%e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(guard) = ConnectionGuard::acquire(&gw) else {
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

/// Holds one of the `GATEWAY_MAX_CONNECTIONS` slots while a connection task runs.
pub(crate) struct ConnectionGuard(std::sync::Arc<state::Gateway>);

impl ConnectionGuard {
    /// Takes a slot, or refuses (and counts it) when all are taken.
    pub(crate) fn acquire(gw: &std::sync::Arc<state::Gateway>) -> Option<ConnectionGuard> {
        let open = gw.metrics.connections_open.fetch_add(1, Ordering::AcqRel);
        if open as usize >= gw.cfg.gateway.max_connections {
            gw.metrics.connections_open.fetch_sub(1, Ordering::AcqRel);
            metrics::inc(&gw.metrics.connections_refused);
            return None;
        }
        Some(ConnectionGuard(gw.clone()))
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.0
            .metrics
            .connections_open
            .fetch_sub(1, Ordering::AcqRel);
    }
}
