//! Kill switch administration: read all switches, flip one. Needs a token whose `scope` claim
//! contains `ops`. Every change is journaled before the answer (so it survives a restart and
//! leaves an audit trail); the switch itself takes effect at once.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::{authenticate, json_error, json_response, read_body, Body};
use crate::records::{KillCause, KillScope, KillSwitchChange};
use crate::state::{Control, Gateway};

/// The operator's account, or the (status, error code) to answer with.
fn require_ops(
    gw: &Gateway,
    req: &Request<Incoming>,
) -> Result<String, (StatusCode, &'static str)> {
    let id = authenticate(gw, req).map_err(|e| (super::status(e.http_status()), e.as_str()))?;
    if !id.has_scope("ops") {
        return Err((StatusCode::FORBIDDEN, "forbidden"));
    }
    Ok(id.account_id.to_string())
}

pub fn get_kill_switches(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Response<Body> {
    if let Err((code, error)) = require_ops(gw, req) {
        return json_error(code, error);
    }
    json_response(
        StatusCode::OK,
        serde_json::to_vec(&snapshot(gw)).unwrap_or_default(),
    )
}

pub fn snapshot(gw: &Gateway) -> serde_json::Value {
    let shards: Vec<_> = gw
        .shards
        .iter()
        .map(|s| {
            json!({
                "shard": s.id,
                "killed": s.killed.load(Ordering::Acquire),
                "utilizationPct": s.utilization_pct(),
            })
        })
        .collect();
    let mut sessions: Vec<String> = gw
        .sessions_snapshot()
        .into_iter()
        .filter(|s| s.killed.load(Ordering::Acquire))
        .map(|s| s.id.to_string())
        .collect();
    sessions.sort();
    let mut accounts: Vec<String> = gw
        .accounts_snapshot()
        .into_iter()
        .filter(|a| a.killed.load(Ordering::Acquire))
        .map(|a| a.id.to_string())
        .collect();
    accounts.sort();
    json!({
        "global": gw.global_killed.load(Ordering::Acquire),
        "shards": shards,
        "sessions": sessions,
        "accounts": accounts,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KillRequest {
    scope: String,
    #[serde(default)]
    id: String,
    on: bool,
    #[serde(default)]
    note: String,
}

pub async fn post_kill_switch(gw: &Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    let by = match require_ops(gw, &req) {
        Ok(by) => by,
        Err((code, error)) => return json_error(code, error),
    };
    let body = match read_body(req, 4096).await {
        Ok(b) => b,
        Err(r) => return r,
    };
    let k: KillRequest = match serde_json::from_slice(&body) {
        Ok(k) => k,
        Err(e) => {
            let body = json!({"error": "INVALID_REQUEST", "detail": e.to_string()});
            return json_response(StatusCode::BAD_REQUEST, body.to_string().into_bytes());
        }
    };
    let Some(scope) = KillScope::parse(&k.scope) else {
        return json_error(StatusCode::BAD_REQUEST, "INVALID_SCOPE");
    };
    if scope != KillScope::Global && (k.id.is_empty() || k.id.len() > 128) {
        return json_error(StatusCode::BAD_REQUEST, "INVALID_ID");
    }
    let change = KillSwitchChange {
        scope,
        id: if scope == KillScope::Global {
            String::new()
        } else {
            k.id
        },
        on: k.on,
        cause: KillCause::Operator,
        by,
        note: k.note.chars().take(200).collect(),
    };
    if !gw.apply_kill(&change) {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    }
    tracing::warn!(scope = scope.as_str(), id = %change.id, on = change.on, by = %change.by, "kill switch changed");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let journaled = gw
        .control
        .try_send(Control::Kill(change.clone(), Some(tx)))
        .is_ok()
        && rx.await.unwrap_or(false);
    let body = json!({
        "scope": scope.as_str(), "id": change.id, "on": change.on, "journaled": journaled,
    });
    let code = if journaled {
        StatusCode::OK
    } else {
        StatusCode::INTERNAL_SERVER_ERROR
    };
    json_response(code, body.to_string().into_bytes())
}
