//! `switchyard backoffice`: runs the back office (`switchyard-backoffice`) on its own until
//! SIGINT or SIGTERM — the books in PostgreSQL or SQLite, the HTTP API, and the Kafka
//! consumer unless `KAFKA_ENABLE` is false. Configuration comes from the environment with the
//! reference's names (`BACKOFFICE_*`, `KAFKA_*`, `JWT_*`; see `docs/backoffice.md`); the flags
//! here beat it.

use std::time::Duration;

use anyhow::Context as _;

/// Flags of `switchyard backoffice`.
#[derive(clap::Args)]
pub struct Args {
    /// HTTP port (overrides BACKOFFICE_PORT; 0 = any free port).
    #[arg(long)]
    pub port: Option<u16>,
    /// Database URL, `postgres://…` or `sqlite:…` (overrides BACKOFFICE_DB_URL).
    #[arg(long)]
    pub db_url: Option<String>,
    /// Serve the API only: do not consume Kafka (same as KAFKA_ENABLE=false).
    #[arg(long)]
    pub no_kafka: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    let mut cfg = switchyard_backoffice::BackOfficeConfig::from_env(std::env::vars())?;
    if let Some(p) = args.port {
        cfg.port = p;
    }
    if let Some(url) = args.db_url {
        cfg.db_url = url;
    }
    if args.no_kafka {
        cfg.kafka.enable = false;
    }
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let result = rt.block_on(async move {
        switchyard_backoffice::service::start(cfg)
            .await?
            .run_until_signal()
            .await
    });
    // Do not wait forever for blocking work still running (a Kafka close that hangs).
    rt.shutdown_timeout(Duration::from_secs(5));
    result
}
