//! The audit chain in the gateway: starts the journal crate's `auditor` thread when a key is
//! configured (`[audit]`, `AUDIT_HMAC_KEY(S)`), and holds what the `/audit/*` endpoints and the
//! metrics read. The chain itself (format, resume, verify) is `switchyard_journal::audit`.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use switchyard_journal::audit::{AuditStatusHandle, Auditor, AuditorConfig, KeyRing};
use switchyard_journal::DurableWatch;

use crate::config::Config;
use crate::state::Gateway;

/// What a running chain exposes to the rest of the gateway.
pub struct AuditRuntime {
    pub keys: Arc<KeyRing>,
    pub status: AuditStatusHandle,
    pub journal_dir: PathBuf,
    pub anchor_path: PathBuf,
}

/// Set once at startup when the chain is on; empty otherwise.
#[derive(Default)]
pub struct AuditLink(OnceLock<AuditRuntime>);

impl AuditLink {
    pub fn get(&self) -> Option<&AuditRuntime> {
        self.0.get()
    }
}

/// Builds the auditor configuration; `None` when no key is configured.
pub fn auditor_config(cfg: &Config) -> anyhow::Result<Option<AuditorConfig>> {
    let Some(keys) = cfg.audit.key_ring()? else {
        return Ok(None);
    };
    let a = &cfg.audit;
    Ok(Some(AuditorConfig {
        anchor_path: a.anchor_path.clone(),
        anchor_export_dir: a.anchor_export_dir.clone(),
        poll_interval: Duration::from_millis(a.poll_interval_ms),
        sync_interval: Duration::from_millis(a.sync_interval_ms),
        thread_start: Some(crate::sched::background),
        ..AuditorConfig::new(cfg.journal.dir.clone(), Arc::new(keys))
    }))
}

/// Starts the auditor next to the journal writer, if the chain is on, and publishes its
/// status to `gw.audit`.
pub fn start(gw: &Gateway, durable: DurableWatch) -> anyhow::Result<Option<Auditor>> {
    let Some(acfg) = auditor_config(&gw.cfg)? else {
        tracing::info!("audit chain off (no AUDIT_HMAC_KEY / AUDIT_HMAC_KEYS)");
        return Ok(None);
    };
    let keys = acfg.keys.clone();
    let journal_dir = acfg.journal_dir.clone();
    let anchor_path = acfg.anchor_path();
    let auditor = Auditor::start(acfg, durable)
        .map_err(|e| anyhow::anyhow!("starting the audit chain: {e}"))?;
    let runtime = AuditRuntime {
        keys,
        status: auditor.status_handle(),
        journal_dir,
        anchor_path,
    };
    if gw.audit.0.set(runtime).is_err() {
        anyhow::bail!("the audit chain was started twice");
    }
    Ok(Some(auditor))
}

/// Chain figures for `/metrics` and `/stats`.
pub fn figures(gw: &Gateway, put: &mut dyn FnMut(&str, f64)) {
    let Some(rt) = gw.audit.get() else {
        put("gateway_audit_chain_enabled", 0.0);
        return;
    };
    let st = rt.status.status();
    put("gateway_audit_chain_enabled", 1.0);
    put(
        "gateway_audit_chain_records_total",
        st.records_chained as f64,
    );
    put("gateway_audit_chain_seq", st.chained_seq as f64);
    put("gateway_audit_chain_lag_records", st.lag_records as f64);
    put("gateway_audit_anchor_seq", st.last_anchor_seq as f64);
    put("gateway_audit_chain_errors_total", st.errors as f64);
}
