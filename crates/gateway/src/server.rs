//! Wiring: build the gateway, replay the journal, start the journal writer, the shard engines,
//! the monitor and the listeners; and the graceful shutdown that drains every accepted order
//! into the journal before the process exits (the mini-redis pattern: broadcast stop, let each
//! part reach a safe point, wait for all).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use anyhow::Context;
use parking_lot::Mutex;
use switchyard_auth::{AuthConfig, Verifier};
use switchyard_journal::{Batch, BatchBuf, FaultPlan, WriterConfig};
use tokio::net::TcpListener;

use crate::config::Config;
use crate::confirm::ConfirmStore;
use crate::engine::{Engine, Listener};
use crate::monitor::Monitor;
use crate::records::KIND_CLEAN_SHUTDOWN;
use crate::replay::{ReplayStats, Replayer};
use crate::state::{BatchMeta, Control, Gateway, Shard, Task};

/// Capacity of the control channel to the monitor (kill changes, rejections, loss events).
const CONTROL_CAPACITY: usize = 65_536;

/// A running gateway.
pub struct Server {
    pub gw: Arc<Gateway>,
    pub http_addr: SocketAddr,
    pub tcp_addr: Option<SocketAddr>,
    pub replay: ReplayStats,
    /// How long replay took, ms.
    pub replay_ms: u64,
    shutdown: tokio::sync::watch::Sender<bool>,
    engines: Vec<JoinHandle<()>>,
    monitor: JoinHandle<()>,
    writer: JoinHandle<()>,
    /// The audit chain's `auditor` thread, when a key is configured.
    auditor: Option<switchyard_journal::audit::Auditor>,
    /// Venue session threads.
    venues: Vec<JoinHandle<()>>,
    /// The outbox (Kafka when `KAFKA_ENABLE`, or a sink the binary attached).
    outbox: Option<crate::outbox::Outbox>,
    durable: switchyard_journal::DurableWatch,
    listeners: Vec<tokio::task::JoinHandle<()>>,
}

pub async fn start(cfg: Config) -> anyhow::Result<Server> {
    let risk = cfg.risk_limits()?;
    let auth = build_verifier(&cfg)?;
    if cfg.auth.secret.is_empty() && cfg.auth.keys.is_empty() {
        tracing::warn!(
            "JWT_HS256_SECRET is empty: every protected call will fail with SecretNotConfigured"
        );
    }

    let (control_tx, control_rx) = crossbeam_channel::bounded(CONTROL_CAPACITY);
    let (shards, queues) = build_shards(&cfg);
    let journal_cfg = WriterConfig {
        dir: cfg.journal.dir.clone(),
        segment_bytes: cfg.journal.segment_bytes,
        queue_batches: cfg.journal.queue_batches,
        fsync: cfg.journal.fsync,
        preallocate: cfg.journal.preallocate,
        max_wait: std::time::Duration::from_micros(cfg.journal.fdatasync_max_wait_us),
        max_wait_high: std::time::Duration::from_micros(cfg.journal.fdatasync_max_wait_high_us),
        commit_records_target: cfg.journal.fdatasync_max_batch,
        fault: fault_plan(&cfg),
        thread_start: Some(crate::sched::background),
        ..WriterConfig::default()
    };
    crate::sched::configure(cfg.gateway.background_sched_batch);
    let gw = Arc::new(Gateway::new(cfg, risk, auth, shards, control_tx));

    let replay_start = Instant::now();
    let mut replayer = Replayer::new(&gw);
    let (journal, writer, report) =
        switchyard_journal::start_with_replay(journal_cfg, Listener::new(gw.clone()), |r| {
            replayer.apply(r)
        })
        .with_context(|| format!("opening journal {}", gw.cfg.journal.dir.display()))?;
    let replay = replayer.finish(&report).context("replaying the journal")?;
    let replay_ms = replay_start.elapsed().as_millis() as u64;
    tracing::info!(
        records = report.records,
        orders = replay.orders,
        sessions = replay.sessions,
        clean = replay.clean_shutdown,
        lost = replay.lost_on_restart,
        ms = replay_ms,
        "journal replayed"
    );
    *gw.journal.lock() = Some(journal.clone());
    let auditor = crate::audit::start(&gw, journal.durable_watch())?;
    for (shard, next) in gw.shards.iter().zip(&replay.next_order) {
        shard
            .next_order
            .store(*next, std::sync::atomic::Ordering::Relaxed);
    }
    if !replay.clean_shutdown {
        // Where this incarnation starts numbering, durable before anything is numbered: a
        // crash before any of its orders reach the journal must not let the next start reuse
        // the numbers it handed out.
        let (tx, rx) = tokio::sync::oneshot::channel();
        let batch = Batch {
            records: crate::replay::restart_floor_records(&gw),
            meta: BatchMeta::Control { done: Some(tx) },
            enqueued_at: Instant::now(),
        };
        if journal.submit(batch).is_err() || !matches!(rx.await, Ok(true)) {
            anyhow::bail!("the journal could not make the restart numbering durable");
        }
    }

    let mut engines = Vec::new();
    for (i, (rx, recycle_rx)) in queues.into_iter().enumerate() {
        let engine = Engine {
            gw: gw.clone(),
            shard: i as u16,
            rx,
            recycle_rx,
            journal: journal.clone(),
        };
        engines.push(
            std::thread::Builder::new()
                .name(format!("engine-{i}"))
                .spawn(move || {
                    crate::sched::background();
                    engine.run()
                })?,
        );
    }
    let venues = crate::venues::start(&gw)?;
    let durable = journal.durable_watch();
    let monitor = Monitor::new(gw.clone(), control_rx, journal);
    let monitor = std::thread::Builder::new()
        .name("monitor".into())
        .spawn(move || {
            crate::sched::background();
            monitor.run()
        })?;

    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let http_addr: SocketAddr = format!("{}:{}", gw.cfg.gateway.host, gw.cfg.gateway.port)
        .parse()
        .context("configuration: GATEWAY_HOST/GATEWAY_PORT do not form an address")?;
    // Every listener is bound before any is served: `/health` answering means the TCP ingress
    // accepts connections too (a client that waits for health must not be refused on TCP).
    let http = TcpListener::bind(http_addr)
        .await
        .with_context(|| format!("binding HTTP {http_addr}"))?;
    let http_addr = http.local_addr()?;
    let tcp = if gw.cfg.v3.tcp_enable {
        let addr: SocketAddr = format!("{}:{}", gw.cfg.gateway.host, gw.cfg.v3.tcp_port).parse()?;
        let tcp = TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding v3 TCP {addr}"))?;
        Some(tcp)
    } else {
        None
    };
    let tcp_addr = tcp.as_ref().map(|t| t.local_addr()).transpose()?;
    let mut listeners = Vec::new();
    if let Some(tcp) = tcp {
        listeners.push(tokio::spawn(crate::tcp::serve(
            gw.clone(),
            tcp,
            shutdown_rx.clone(),
        )));
    }
    listeners.push(tokio::spawn(crate::http::serve(
        gw.clone(),
        http,
        shutdown_rx,
    )));
    tracing::info!(%http_addr, ?tcp_addr, shards = gw.shards.len(), "gateway listening");
    Ok(Server {
        gw,
        http_addr,
        tcp_addr,
        replay,
        replay_ms,
        shutdown,
        engines,
        monitor,
        writer,
        auditor,
        venues,
        listeners,
        outbox: None,
        durable,
    })
    .and_then(|mut s| {
        if s.gw.cfg.bus.enable {
            let sink = crate::outbox::KafkaSink::new(&s.gw.cfg.bus, s.outbox_offset_path())
                .map_err(|e| anyhow::anyhow!("outbox: {e}"))?;
            s.attach_sink(Box::new(sink))?;
        }
        Ok(s)
    })
}

/// The engines' ends of each shard's queues.
pub type ShardQueues = Vec<(
    crossbeam_channel::Receiver<Task>,
    crossbeam_channel::Receiver<crate::state::Recycled>,
)>;

/// Builds the shards with their bounded queues; the receivers go to the engines.
pub fn build_shards(cfg: &Config) -> (Vec<Shard>, ShardQueues) {
    let mut shards = Vec::new();
    let mut queues = Vec::new();
    for id in 0..cfg.v3.shard_count as u16 {
        let (tx, rx) = crossbeam_channel::bounded(cfg.v3.ingress_queue_capacity);
        let (recycle_tx, recycle_rx) = crossbeam_channel::bounded(64);
        shards.push(Shard {
            id,
            tx,
            capacity: cfg.v3.ingress_queue_capacity,
            killed: Default::default(),
            kill_cause: Default::default(),
            killed_at_ms: Default::default(),
            sessions: Default::default(),
            confirm: Mutex::new(ConfirmStore::new(cfg.v3.confirm_ttl_ms)),
            oldest_inflight_mono: Default::default(),
            next_order: std::sync::atomic::AtomicU64::new(1),
            recycle_tx,
        });
        queues.push((rx, recycle_rx));
    }
    (shards, queues)
}

/// Builds the token verifier from configuration.
pub fn build_verifier(cfg: &Config) -> anyhow::Result<Verifier> {
    Verifier::new(&AuthConfig {
        secret: cfg.auth.secret.clone(),
        keys: cfg.auth.keys.clone(),
        issuer: cfg.auth.issuer.clone(),
        audience: cfg.auth.audience.clone(),
        clock_skew_sec: cfg.auth.clock_skew_sec,
        cache_capacity: cfg.auth.cache_capacity,
    })
    .map_err(|e| anyhow::anyhow!("configuration: JWT_HS256_KEYS: {e}"))
}

/// A gateway built in-process for unit tests, no thread started: `Config::default()` with a
/// unit-test secret and one shard, then whatever `tune` changes. Returns the gateway, its shard
/// queues (the engines' ends) and the control queue's receiver.
#[cfg(test)]
pub(crate) fn unit_gateway(
    tune: impl FnOnce(&mut Config),
) -> (Gateway, ShardQueues, crossbeam_channel::Receiver<Control>) {
    let mut cfg = Config::default();
    cfg.auth.secret = "unit-secret".into();
    cfg.v3.shard_count = 1;
    tune(&mut cfg);
    let risk = cfg.risk_limits().expect("risk limits");
    let auth = build_verifier(&cfg).expect("verifier");
    let (shards, queues) = build_shards(&cfg);
    let (control, control_rx) = crossbeam_channel::bounded(64);
    (
        Gateway::new(cfg, risk, auth, shards, control),
        queues,
        control_rx,
    )
}

/// The journal fault plan asked for by configuration (tests and drills only).
fn fault_plan(cfg: &Config) -> Option<FaultPlan> {
    let j = &cfg.journal;
    if j.fault_sync_delay_ms == 0 && j.fault_fail_write_at_commit == 0 {
        return None;
    }
    tracing::warn!(?j.fault_sync_delay_ms, ?j.fault_fail_write_at_commit, ?j.fault_fail_write_commits, "journal FAULT INJECTION is on");
    Some(FaultPlan {
        fail_write_at_commit: Some(j.fault_fail_write_at_commit).filter(|&n| n > 0),
        fail_write_commits: j.fault_fail_write_commits,
        fail_sync_at_commit: None,
        sync_delay: Some(std::time::Duration::from_millis(j.fault_sync_delay_ms))
            .filter(|d| !d.is_zero()),
    })
}

impl Server {
    /// `OUTBOX_OFFSET_PATH`, or `<journal dir>/outbox.offset`.
    pub fn outbox_offset_path(&self) -> std::path::PathBuf {
        match self.gw.cfg.bus.offset_path.as_str() {
            "" => self.gw.cfg.journal.dir.join("outbox.offset"),
            p => p.into(),
        }
    }

    /// Starts the outbox with `sink` (at most one: Kafka, or the embedded back office).
    pub fn attach_sink(&mut self, sink: Box<dyn crate::outbox::Sink>) -> anyhow::Result<()> {
        anyhow::ensure!(self.outbox.is_none(), "an outbox is running already");
        let gw = &self.gw;
        let cfg = crate::outbox::OutboxConfig {
            journal_dir: gw.cfg.journal.dir.clone(),
            source: gw.cfg.venues.gateway_id.clone(),
            batch_max: gw.cfg.bus.batch_max,
            backoff_base: std::time::Duration::from_millis(gw.cfg.bus.backoff_base_ms),
            backoff_max: std::time::Duration::from_millis(gw.cfg.bus.backoff_max_ms),
        };
        self.outbox = Some(crate::outbox::Outbox::start(
            cfg,
            self.durable.clone(),
            sink,
            gw.outbox_stats.clone(),
            gw.outbox_waiters.clone(),
        )?);
        gw.outbox_live.store(true, Ordering::Release);
        Ok(())
    }

    /// Graceful shutdown: stop intake, drain every queue into the journal, write the
    /// clean-shutdown marker, wait for the final fdatasync.
    pub async fn shutdown(self) -> anyhow::Result<()> {
        let gw = self.gw.clone();
        let _ = self.shutdown.send(true);
        // Ends every SSE/WebSocket stream, so connections can finish their graceful shutdown.
        gw.hub.close();
        gw.accepting.store(false, Ordering::Release);
        for l in self.listeners {
            let _ = l.await;
        }
        let engines = self.engines;
        let monitor = self.monitor;
        let writer = self.writer;
        let auditor = self.auditor;
        let venues = self.venues;
        let outbox = self.outbox;
        tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
            // Venue sessions first: what they still apply reaches the journal below.
            gw.venues.stop.store(true, Ordering::Release);
            for v in venues {
                let _ = v.join();
            }
            for s in &gw.shards {
                let _ = s.tx.send(Task::Stop);
            }
            for e in engines {
                let _ = e.join();
            }
            let _ = gw.control.send(Control::Stop);
            let _ = monitor.join();
            if let Some(j) = gw.journal.lock().take() {
                let mut buf = BatchBuf::with_capacity(64);
                buf.push(KIND_CLEAN_SHUTDOWN, crate::clock::wall_ns(), &[])?;
                let (tx, rx) = tokio::sync::oneshot::channel();
                let _ = j.submit(Batch {
                    records: buf,
                    meta: BatchMeta::Control { done: Some(tx) },
                    enqueued_at: Instant::now(),
                });
                drop(j);
                let _ = rx.blocking_recv();
            }
            let _ = writer.join();
            // Everything is durable: the outbox delivers it (unless the sink is down) and stops.
            if let Some(o) = outbox {
                o.stop();
                gw.outbox_live.store(false, Ordering::Release);
            }
            // Everything is durable now: chain it all, sync, and write the final anchor.
            if let Some(a) = auditor {
                let st = a.stop();
                tracing::info!(
                    chained_seq = st.chained_seq,
                    anchor_seq = st.last_anchor_seq,
                    "audit chain closed"
                );
            }
            tracing::info!("gateway stopped; journal closed cleanly");
            Ok(())
        })
        .await?
    }

    /// Runs until SIGINT or SIGTERM, then shuts down gracefully.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        tracing::info!("signal received: draining");
        self.shutdown().await
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
