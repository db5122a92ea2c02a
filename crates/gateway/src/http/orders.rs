//! `POST /v3/orders` (the hot path) and `GET /v3/orders/{sessionId}/{sessionSeq}` (§2.3.1–2).

use std::sync::atomic::Ordering;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use switchyard_protocol::http::{
    parse_order, write_confirm, write_volatile_accept, write_volatile_refusal, ConfirmView,
    ORDER_BODY_MAX,
};

use super::timed_io::{ConnTiming, PENDING_V3_ACCEPTED, PENDING_V3_REFUSED};
use super::{
    auth_error, authenticate, body_error, json_error, json_response, read_json_body, status, Body,
};
use crate::accept::{submit, Timing};
use crate::clock::{mono_ns, mono_ns_if, sample_stages, wall_ns};
use crate::state::Gateway;

pub async fn post_v3_order(
    gw: &Arc<Gateway>,
    timing: &ConnTiming,
    req: Request<Incoming>,
) -> Response<Body> {
    let t = Timing {
        received_at_ns: wall_ns(),
        received_mono_ns: timing.start(),
        timed: sample_stages(),
    };
    let id = match authenticate(gw, &req) {
        Ok(id) => id,
        Err(e) => return auth_error(&e),
    };
    if t.timed {
        gw.metrics.stage_auth.record(mono_ns() - t.received_mono_ns);
    }
    let body = match read_json_body(req, ORDER_BODY_MAX).await {
        Ok(b) => b,
        Err(resp) => return resp,
    };
    let parse_start = mono_ns_if(t.timed);
    let parsed = match parse_order(&body) {
        Ok(p) => p,
        Err(e) => return body_error(&e),
    };
    let principal = gw.principal(&id);
    let session_id = &principal.session.id;
    let result = match parsed.to_input() {
        Ok(input) => {
            if t.timed {
                gw.metrics.stage_parse.record(mono_ns() - parse_start);
            }
            submit(gw, &principal, &input, t)
        }
        Err(r) => {
            gw.metrics.count_refusal(r);
            Err(r)
        }
    };
    let ser_start = mono_ns_if(t.timed);
    let mut out = Vec::with_capacity(160);
    let (code, pending) = match result {
        Ok(seq) => {
            write_volatile_accept(&mut out, session_id, seq, t.received_at_ns);
            (StatusCode::ACCEPTED, PENDING_V3_ACCEPTED)
        }
        Err(r) => {
            write_volatile_refusal(
                &mut out,
                session_id,
                t.received_at_ns,
                r.verdict().as_str(),
                r.as_str(),
            );
            (status(r.http_status()), PENDING_V3_REFUSED)
        }
    };
    timing.pending.store(pending, Ordering::Relaxed);
    let resp = json_response(code, out);
    if t.timed {
        gw.metrics.stage_serialize.record(mono_ns() - ser_start);
    }
    resp
}

pub fn get_v3_confirm(gw: &Arc<Gateway>, req: &Request<Incoming>) -> Response<Body> {
    let id = match authenticate(gw, req) {
        Ok(id) => id,
        Err(e) => return auth_error(&e),
    };
    let rest = &req.uri().path()["/v3/orders/".len()..];
    let Some((session_enc, seq_str)) = rest.rsplit_once('/') else {
        return json_error(StatusCode::NOT_FOUND, "NOT_FOUND");
    };
    // Session ids are JWT subjects and may contain characters that travel percent-encoded.
    let session_id = switchyard_protocol::http::percent_decode_path(session_enc);
    if *id.session_id != *session_id {
        return json_error(StatusCode::FORBIDDEN, "forbidden");
    }
    let Ok(seq) = seq_str.parse::<u64>() else {
        return json_error(StatusCode::BAD_REQUEST, "INVALID_SESSION_SEQ");
    };
    let session = gw.session(&session_id, None);
    let assigned = session.assigned.load(Ordering::Acquire);
    let answer = gw.shards[session.shard as usize]
        .confirm
        .lock()
        .query(session.idx, seq, assigned);
    let mut out = Vec::with_capacity(200);
    write_confirm(
        &mut out,
        &ConfirmView {
            session_id: &session_id,
            session_seq: seq,
            status: answer.status,
            reason: answer.reason.as_str(),
            received_at_ns: answer.received_at_ns,
            updated_at_ns: answer.updated_at_ns.unwrap_or_else(wall_ns),
            shard_id: session.shard as u32,
        },
    );
    json_response(StatusCode::OK, out)
}
