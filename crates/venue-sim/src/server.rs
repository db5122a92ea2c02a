//! Starting and stopping a venue: the listener, the acceptor thread, the matching thread.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Sender;

use crate::config::VenueConfig;
use crate::engine::Engine;
use crate::session::{self, Inbound};
use crate::store::Store;

/// Inbound messages waiting for the matching thread at most; readers block beyond it, which
/// pushes back on the gateways through TCP.
const INBOUND_CAPACITY: usize = 4096;

/// A running venue. Dropping it stops the venue as [`VenueHandle::shutdown`] does.
pub struct VenueHandle {
    addr: SocketAddr,
    name: String,
    inbound: Sender<Inbound>,
    /// Tells the acceptor to stop at its next wake-up.
    stopping: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
    engine: Option<JoinHandle<()>>,
}

impl VenueHandle {
    /// The address the venue listens on (with the real port when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Stops the venue: no more connections, every session closed, the state log written
    /// and closed. Returns when the matching thread has finished.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        if self.stopping.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.inbound.send(Inbound::Shutdown);
        if let Some(h) = self.engine.take() {
            let _ = h.join();
        }
        // Wake the acceptor out of `accept` with a connection of our own.
        let _ = TcpStream::connect(wake_addr(self.addr));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
    }
}

impl Drop for VenueHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A connectable address for a listener bound to `addr` (the unspecified address is not).
fn wake_addr(addr: SocketAddr) -> SocketAddr {
    let ip = match addr.ip() {
        IpAddr::V4(v) if v.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v) if v.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, addr.port())
}

/// Starts a venue: binds (port 0 picks one), rebuilds its state from the state directory if
/// it has one, and starts the acceptor and matching threads.
pub fn spawn(cfg: VenueConfig) -> io::Result<VenueHandle> {
    cfg.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    let listener = TcpListener::bind((cfg.bind, cfg.port))?;
    let addr = listener.local_addr()?;
    let (store, records) = match &cfg.state_dir {
        Some(dir) => {
            let (s, r) = Store::open(dir, &cfg.name, cfg.fsync)?;
            (Some(s), r)
        }
        None => (None, Vec::new()),
    };
    let name = cfg.name.clone();
    let seed = cfg.seed.unwrap_or_else(|| fastrand::u64(..));
    let faults = cfg.faults.clone();
    let max_connections = cfg.max_connections;
    let out_capacity = cfg.outbound_queue;
    let engine = Engine::new(cfg, store, records);
    let (tx, rx) = crossbeam_channel::bounded(INBOUND_CAPACITY);
    let engine = std::thread::Builder::new()
        .name(format!("{name}-engine"))
        .spawn(move || engine.run(rx))?;

    let stopping = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let stopping = stopping.clone();
        let connector = session::Connector {
            venue: name.clone(),
            inbound: tx.clone(),
            faults,
            seed,
            out_capacity,
            open: Arc::new(AtomicUsize::new(0)),
        };
        std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                let mut next_id = 1u64;
                for stream in listener.incoming() {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let stream = match stream {
                        Ok(s) => s,
                        Err(e) => {
                            tracing::warn!(error = %e, "accept failed");
                            std::thread::sleep(std::time::Duration::from_millis(10));
                            continue;
                        }
                    };
                    if connector.open.load(Ordering::Acquire) >= max_connections {
                        tracing::warn!(max_connections, "too many connections; closing a new one");
                        continue;
                    }
                    connector.open.fetch_add(1, Ordering::AcqRel);
                    let id = next_id;
                    next_id += 1;
                    if let Err(e) = session::start(stream, id, &connector) {
                        connector.open.fetch_sub(1, Ordering::AcqRel);
                        tracing::warn!(error = %e, "could not start a connection");
                    }
                }
            })?
    };
    tracing::info!(venue = %name, %addr, "venue listening");
    Ok(VenueHandle {
        addr,
        name,
        inbound: tx,
        stopping,
        acceptor: Some(acceptor),
        engine: Some(engine),
    })
}

/// Runs a venue until SIGINT or SIGTERM, then stops it cleanly.
pub fn run(cfg: VenueConfig) -> anyhow::Result<()> {
    // Blocked here, before any thread starts, so every thread inherits the mask and the
    // signals wait for `sigwait` below instead of killing the process.
    let set = block_stop_signals()?;
    let venue = spawn(cfg)?;
    eprintln!("venue {} listening on {}", venue.name(), venue.local_addr());
    let sig = wait_for(&set)?;
    tracing::info!(signal = sig, "stopping the venue");
    venue.shutdown();
    Ok(())
}

fn block_stop_signals() -> io::Result<libc::sigset_t> {
    // SAFETY: plain libc calls on a local, zero-initialised signal set.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::sigaddset(&mut set, libc::SIGTERM);
        let rc = libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        if rc != 0 {
            return Err(io::Error::from_raw_os_error(rc));
        }
        Ok(set)
    }
}

fn wait_for(set: &libc::sigset_t) -> io::Result<i32> {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` is a valid signal set; `sig` is a valid out pointer.
    let rc = unsafe { libc::sigwait(set, &mut sig) };
    if rc != 0 {
        return Err(io::Error::from_raw_os_error(rc));
    }
    Ok(sig)
}
