//! `/health`, `/metrics`, `/stats`.

use std::sync::atomic::Ordering;

use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{json_response, Body};
use crate::metrics::render;
use crate::state::Gateway;

/// `{"status":"OK",queueLen,latencyP50Ns,latencyP99Ns,…}`: the reference's fields plus what a
/// load balancer needs to decide. 503 when the gateway cannot take orders at all.
pub fn health(gw: &Gateway) -> Response<Body> {
    let v = render::health(gw);
    let serving = gw.accepting.load(Ordering::Acquire) && !gw.global_killed.load(Ordering::Acquire);
    let code = if serving {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json_response(code, v.to_string().into_bytes())
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
