//! `/health`, `/metrics`, `/stats` (the last two behind `GATEWAY_METRICS_TOKEN` when it is set).

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{json_response, Body};
use crate::metrics::render;
use crate::state::Gateway;

/// `{"status":"OK",queueLen,latencyP50Ns,latencyP99Ns,…}`: the reference's fields plus what a
/// load balancer needs to decide. 503 when the gateway cannot take orders at all: stopping,
/// globally killed, or its journal unavailable (`JOURNAL_DISK_LOW`, `JOURNAL_FAILING`).
pub fn health(gw: &Gateway) -> Response<Body> {
    let v = render::health(gw);
    let code = if v["status"] == "OK" {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, v.to_string().into_bytes())
}

/// `GATEWAY_METRICS_TOKEN` unset, or given in `X-Metrics-Token` or as a bearer token
/// (compared in constant time).
pub fn metrics_allowed(gw: &Gateway, req: &hyper::Request<hyper::body::Incoming>) -> bool {
    use subtle::ConstantTimeEq;
    let want = gw.cfg.gateway.metrics_token.as_bytes();
    if want.is_empty() {
        return true;
    }
    let h = req.headers();
    let given = h.get("x-metrics-token").map(|v| v.as_bytes()).or_else(|| {
        h.get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.as_bytes().strip_prefix(b"Bearer "))
    });
    given.is_some_and(|g| bool::from(g.ct_eq(want)))
}

pub fn metrics(gw: &Gateway) -> Response<Body> {
    let mut r = Response::new(super::full(render::prometheus(gw)));
    r.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    r
}

pub fn stats(gw: &Gateway) -> Response<Body> {
    json_response(StatusCode::OK, render::stats(gw).to_string().into_bytes())
}
