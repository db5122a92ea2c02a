//! What the single-node stack runs in process beside the gateway: simulated venues
//! (`EXCHANGE_TRANSPORT=sim`) and, without Kafka, the back office fed straight from the journal
//! through the same outbox loop and the same booking code as with a bus.

use anyhow::Context;
use switchyard_backoffice::{BackOffice, BackOfficeConfig, ConsumerPosition};
use switchyard_gateway::config::{Transport, VenuesSection};
use switchyard_gateway::outbox::Sink;
use switchyard_protocol::bus::BusEvent;

/// `EXCHANGE_TRANSPORT=sim`: one venue simulator per configured venue, in this process, on a
/// loopback port of its own; the gateway connects to them over TCP like to any venue. Each keeps
/// its state beside the journal (`<journal dir>/venues/<name>`), so orders and report numbers
/// survive restarts of the stack. The handles keep the simulators running.
pub fn start_venues(
    cfg: &mut switchyard_gateway::Config,
) -> anyhow::Result<Vec<switchyard_venue_sim::VenueHandle>> {
    if cfg.venues.transport()? != Transport::Sim {
        return Ok(Vec::new());
    }
    let mut handles = Vec::new();
    for spec in cfg.venues.venues()? {
        let mut v = switchyard_venue_sim::VenueConfig::from_env(Some(&spec.name))
            .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
        v.name = spec.name.clone();
        v.bind = std::net::Ipv4Addr::LOCALHOST.into();
        v.port = 0;
        v.state_dir = Some(cfg.journal.dir.join("venues").join(&spec.name));
        let h = switchyard_venue_sim::spawn(v)
            .with_context(|| format!("starting the simulated venue {}", spec.name))?;
        let key = VenuesSection::key(&spec.name);
        cfg.venues.hosts.insert(key.clone(), "127.0.0.1".into());
        cfg.venues.ports.insert(key, h.local_addr().port());
        tracing::info!(venue = %spec.name, addr = %h.local_addr(), "simulated venue started");
        handles.push(h);
    }
    Ok(handles)
}

/// The back office as the outbox's sink: each batch of journal events is booked in one
/// database transaction together with the stream position (`journal:<gatewayId>`), so the
/// books count every event once across crashes and restarts.
struct BackOfficeSink {
    backoffice: BackOffice,
    gateway_id: String,
    /// The async runtime the store lives on; the outbox thread blocks on it.
    rt: tokio::runtime::Handle,
}

impl Sink for BackOfficeSink {
    fn resume_at(&mut self) -> Result<u64, String> {
        let stream = ConsumerPosition::journal(&self.gateway_id, 0).stream;
        let pos = self
            .rt
            .block_on(self.backoffice.position(&stream, 0))
            .map_err(|e| e.to_string())?;
        Ok(pos.map_or(1, |n| n.max(1) as u64))
    }

    fn publish(&mut self, events: &[BusEvent], next_seq: u64) -> Result<(), String> {
        let position = ConsumerPosition::journal(&self.gateway_id, next_seq.saturating_sub(1));
        self.rt
            .block_on(self.backoffice.apply(events, position))
            .map(|_| ())
            .map_err(|e| e.to_string())
    }
}

/// Starts the embedded back office (its HTTP API on `BACKOFFICE_PORT`, its store at
/// `BACKOFFICE_DB_URL`) and attaches it to the gateway's outbox. Call inside the runtime.
pub async fn start_backoffice(
    server: &mut switchyard_gateway::Server,
) -> anyhow::Result<switchyard_backoffice::service::Service> {
    let mut cfg = BackOfficeConfig::from_env(std::env::vars())
        .map_err(|e| anyhow::anyhow!("configuration: {e}"))?;
    // Fed from the journal, not a bus; the same tokens as the gateway.
    cfg.kafka.enable = false;
    let g = &server.gw.cfg;
    cfg.auth.secret = g.auth.secret.clone();
    cfg.auth.keys = g.auth.keys.clone();
    if std::env::var("BACKOFFICE_HOST").is_err() {
        cfg.host = g.gateway.host.clone();
    }
    let service = switchyard_backoffice::service::start(cfg).await?;
    let sink = BackOfficeSink {
        backoffice: service.backoffice.clone(),
        gateway_id: g.venues.gateway_id.clone(),
        rt: tokio::runtime::Handle::current(),
    };
    server.attach_sink(Box::new(sink))?;
    Ok(service)
}
