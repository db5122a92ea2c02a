//! The venue without sockets or threads: the same matching engine ([`crate::engine`]) driven
//! one message at a time by its caller, which plays the network. The deterministic simulation
//! (`crates/sim`) uses it; `spawn`/`run` are the TCP venue.
//!
//! Each call handles one inbound message exactly as the matching thread does (decide, number
//! reports, write the state log, queue lines) and returns at once; the lines queued for a
//! connection are read back with [`InProcVenue::take`]. Nothing here reads the clock: market
//! makers move only on [`InProcVenue::mm_step`], and `TOB`s go out only at logon.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::Arc;

use crossbeam_channel::Receiver;
use switchyard_protocol::venue::{decode_from_venue, ExecStatus, FromVenue, ToVenue};

use crate::config::VenueConfig;
use crate::engine::Engine;
use crate::session::{ConnId, ConnShared, Inbound, NewConn, Out, OutKind};
use crate::store::Store;

/// A client order as the venue holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VenueOrder {
    pub order_id: String,
    pub symbol: Option<String>,
    pub side: Option<String>,
    /// Total quantity (a replace changes it).
    pub qty: u64,
    pub limit: Option<u64>,
    pub filled: u64,
    pub status: ExecStatus,
}

/// What a line queued for a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineKind {
    /// A report sent for the first time.
    Report,
    /// A report sent again (logon catch-up, `RESEND`).
    Resent,
    /// `LOGON_ACK`, `TOB`, `REJECT`, observer answers.
    Control,
    /// The venue closes the connection after this line.
    CloseAfter,
}

/// A venue driven in process.
pub struct InProcVenue {
    engine: Engine,
    conns: Vec<(ConnId, Receiver<Out>)>,
    next_conn: ConnId,
}

impl InProcVenue {
    /// Builds the venue; with `cfg.state_dir` set, from its state log (as a restarted venue
    /// does). `cfg.seed` should be set: the market makers' walk is random.
    pub fn new(cfg: VenueConfig) -> std::io::Result<InProcVenue> {
        cfg.validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
        let (store, records) = match &cfg.state_dir {
            Some(dir) => {
                let (s, r) = Store::open(dir, &cfg.name, cfg.fsync)?;
                (Some(s), r)
            }
            None => (None, Vec::new()),
        };
        Ok(InProcVenue {
            engine: Engine::new(cfg, store, records),
            conns: Vec::new(),
            next_conn: 1,
        })
    }

    /// A new connection (not logged on yet).
    pub fn connect(&mut self) -> ConnId {
        let id = self.next_conn;
        self.next_conn += 1;
        let (tx, rx) = crossbeam_channel::unbounded();
        self.engine.handle(Inbound::Connected(NewConn {
            id,
            peer: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            stream: None,
            tx,
            shared: Arc::new(ConnShared::new()),
        }));
        self.conns.push((id, rx));
        id
    }

    /// One message from the connection's peer.
    pub fn send(&mut self, conn: ConnId, msg: ToVenue) {
        self.engine.handle(Inbound::Msg { conn, msg });
    }

    /// The connection is gone (closed by the peer or the network).
    pub fn disconnect(&mut self, conn: ConnId) {
        self.engine.handle(Inbound::Closed { conn });
        self.conns.retain(|(c, _)| *c != conn);
    }

    /// The lines queued for `conn` since the last call, decoded, in order.
    pub fn take(&mut self, conn: ConnId) -> Vec<(LineKind, FromVenue)> {
        let Some((_, rx)) = self.conns.iter().find(|(c, _)| *c == conn) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for o in rx.try_iter() {
            let kind = match o.kind {
                OutKind::Report => LineKind::Report,
                OutKind::Resent => LineKind::Resent,
                OutKind::Control => LineKind::Control,
                OutKind::CloseAfter => LineKind::CloseAfter,
            };
            let line = o.line.strip_suffix(b"\n").unwrap_or(&o.line);
            if line.is_empty() {
                continue;
            }
            if let Ok(msg) = decode_from_venue(line) {
                out.push((kind, msg));
            }
        }
        out
    }

    /// One market-maker step: every book's reference price walks and its quotes are renewed
    /// (which may trade against resting client orders).
    pub fn mm_step(&mut self) {
        self.engine.mm_step();
    }

    /// Every order gateway `gateway_id` sent, in the order the venue first saw them.
    pub fn orders(&self, gateway_id: &str) -> Vec<VenueOrder> {
        self.engine.orders_of(gateway_id)
    }

    /// The last report number the venue gave gateway `gateway_id` (what its heartbeats
    /// announce).
    pub fn last_seq(&self, gateway_id: &str) -> u64 {
        self.engine.last_seq(gateway_id)
    }
}
