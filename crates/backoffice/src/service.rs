//! The standalone back office (`switchyard backoffice`): the books, the HTTP API and, when
//! enabled, the Kafka consumer, until told to stop.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::BackOfficeConfig;
use crate::http::{self, Api};
use crate::BackOffice;

/// How long the HTTP API and the consumer get to finish after the stop signal.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// A running back office.
pub struct Service {
    pub backoffice: BackOffice,
    /// Where the HTTP API listens (useful with `BACKOFFICE_PORT=0`).
    pub local_addr: std::net::SocketAddr,
    /// Turned true to stop the API and the consumer.
    stop: watch::Sender<bool>,
    /// The API and consumer tasks, named for error messages.
    tasks: Vec<(&'static str, tokio::task::JoinHandle<anyhow::Result<()>>)>,
}

/// Opens the store, binds the API and starts the consumer (if `cfg.kafka.enable`).
pub async fn start(cfg: BackOfficeConfig) -> anyhow::Result<Service> {
    let verifier = switchyard_auth::Verifier::new(&cfg.auth)
        .map_err(|e| anyhow::anyhow!("configuration: JWT_HS256_KEYS: {e}"))?;
    if cfg.auth.secret.is_empty() && cfg.auth.keys.is_empty() {
        tracing::warn!(
            "back office: no JWT_HS256_SECRET / JWT_HS256_KEYS: every protected call answers 500 SecretNotConfigured"
        );
    }
    let backoffice = BackOffice::open(&cfg.db_url, cfg.rules.clone())
        .await
        .with_context(|| format!("opening the back-office store {}", redact(&cfg.db_url)))?;
    let listener = TcpListener::bind((cfg.host.as_str(), cfg.port))
        .await
        .with_context(|| format!("binding the back-office API on {}:{}", cfg.host, cfg.port))?;
    let local_addr = listener.local_addr()?;
    let (stop, stopped) = watch::channel(false);
    let api = Api {
        backoffice: backoffice.clone(),
        verifier: Arc::new(verifier),
        max_fills: cfg.max_fills,
    };
    let mut tasks = Vec::new();
    let http_stop = stopped.clone();
    tasks.push((
        "http",
        tokio::spawn(async move {
            http::serve(api, listener, http_stop).await;
            Ok(())
        }),
    ));
    if cfg.kafka.enable {
        let (bo, kafka) = (backoffice.clone(), cfg.kafka.clone());
        tasks.push((
            "consumer",
            tokio::spawn(crate::consumer::run(bo, kafka, stopped)),
        ));
    }
    tracing::info!(
        addr = %local_addr,
        backend = ?backoffice.backend(),
        kafka = cfg.kafka.enable,
        "back office started"
    );
    Ok(Service {
        backoffice,
        local_addr,
        stop,
        tasks,
    })
}

impl Service {
    /// Stops the API and the consumer and waits for them (bounded), then closes the store.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(true);
        let mut result = Ok(());
        for (name, task) in self.tasks {
            match tokio::time::timeout(STOP_TIMEOUT, task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => result = Err(e.context(format!("back office {name}"))),
                Ok(Err(e)) => result = Err(anyhow::anyhow!("back office {name} panicked: {e}")),
                Err(_) => tracing::warn!(name, "back office: task did not stop in time"),
            }
        }
        self.backoffice.close().await;
        result
    }

    /// Runs until SIGINT or SIGTERM, then stops.
    pub async fn run_until_signal(self) -> anyhow::Result<()> {
        wait_for_signal().await;
        tracing::info!("back office stopping");
        self.stop().await
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

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.find('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    // Goal: passwords never reach a message.
    #[test]
    fn redacts_passwords() {
        assert_eq!(
            super::redact("postgres://u:pw@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(super::redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(super::redact("sqlite:x.db"), "sqlite:x.db");
    }
}
