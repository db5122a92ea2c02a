//! `GET /audit/verify?fromSeq=&limit=` and `GET /audit/anchor` (§2.3.6): any valid token.
//! Verification reads journal and chain files, so it runs on the blocking pool.

use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::json;
use switchyard_journal::audit::{self, Anchor, VerifyOutcome};

use super::{auth_error, authenticate, json_error, json_response, Body};
use crate::state::Gateway;

const LIMIT_DEFAULT: u64 = 1_000;
const LIMIT_MAX: u64 = 10_000;

/// `fromSeq` (default 0 = the first record) and `limit` (default 1000, clamped to 1..=10000).
/// Values that are not unsigned numbers fall back to the defaults, as in the reference.
fn parse_query(query: Option<&str>) -> (u64, u64) {
    let (mut from, mut limit) = (0, LIMIT_DEFAULT);
    for pair in query.unwrap_or("").split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match (k, v.parse::<u64>()) {
            ("fromSeq", Ok(n)) => from = n,
            ("limit", Ok(n)) => limit = n,
            _ => {}
        }
    }
    (from, limit.clamp(1, LIMIT_MAX))
}

fn not_configured() -> VerifyOutcome {
    VerifyOutcome {
        ok: false,
        checked: 0,
        last_seq: 0,
        error: Some("AUDIT_HMAC_KEY not configured".into()),
        bad_seq: None,
    }
}

/// Always 200 once authenticated: the outcome is in the body.
pub async fn verify(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Response<Body> {
    if let Err(e) = authenticate(gw, req) {
        return auth_error(&e);
    }
    let (from, limit) = parse_query(req.uri().query());
    let outcome = match gw.audit.get() {
        None => not_configured(),
        Some(rt) => {
            let (keys, dir) = (rt.keys.clone(), rt.journal_dir.clone());
            tokio::task::spawn_blocking(move || audit::verify(&dir, Some(&keys), from, limit))
                .await
                .unwrap_or_else(|e| VerifyOutcome {
                    ok: false,
                    checked: 0,
                    last_seq: 0,
                    error: Some(format!("verification failed to run: {e}")),
                    bad_seq: None,
                })
        }
    };
    let mut body = json!({
        "ok": outcome.ok,
        "checked": outcome.checked,
        "lastSeq": outcome.last_seq,
        "error": outcome.error,
    });
    if let Some(seq) = outcome.bad_seq {
        body["badSeq"] = seq.into();
    }
    json_response(StatusCode::OK, body.to_string().into_bytes())
}

/// The latest anchor: the auditor's in memory, else the anchor file (written by an earlier
/// run); 404 when there is none or the chain is off.
pub async fn anchor(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Response<Body> {
    if let Err(e) = authenticate(gw, req) {
        return auth_error(&e);
    }
    let anchor = match gw.audit.get() {
        None => None,
        Some(rt) => match rt.status.anchor() {
            Some(a) => Some(a),
            None => {
                let path = rt.anchor_path.clone();
                tokio::task::spawn_blocking(move || Anchor::read(&path))
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .flatten()
            }
        },
    };
    match anchor {
        Some(a) => {
            let body = json!({
                "seq": a.seq,
                "at": a.at_ms,
                "keyId": a.key_id,
                "hash": a.hash_base64(),
            });
            json_response(StatusCode::OK, body.to_string().into_bytes())
        }
        None => json_error(StatusCode::NOT_FOUND, "anchor not available"),
    }
}

#[cfg(test)]
mod tests {
    // Goal: query defaults and clamps follow §2.3.6.
    #[test]
    fn query_defaults_and_clamps() {
        use super::parse_query;
        assert_eq!(parse_query(None), (0, 1_000));
        assert_eq!(parse_query(Some("fromSeq=5&limit=20")), (5, 20));
        assert_eq!(parse_query(Some("limit=0")), (0, 1));
        assert_eq!(parse_query(Some("limit=99999&fromSeq=x")), (0, 10_000));
        assert_eq!(parse_query(Some("limit=-3&other")), (0, 1_000));
    }
}
