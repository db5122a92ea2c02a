//! `GET /openapi.yaml` and `GET /openapi.json`: the HTTP API's OpenAPI document
//! (`contracts/openapi.yaml`), embedded at build time. The JSON rendering is made by
//! `build.rs`, so serving either costs nothing and the gateway needs no YAML parser. No token:
//! the document describes the API, it holds no data.

use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::Response;

use super::{full, Body};

/// The document as written.
pub const YAML: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../contracts/openapi.yaml"
));

/// The same document as JSON.
pub const JSON: &str = include_str!(concat!(env!("OUT_DIR"), "/openapi.json"));

pub fn yaml() -> Response<Body> {
    respond(YAML, "application/yaml; charset=utf-8")
}

pub fn json() -> Response<Body> {
    respond(JSON, "application/json")
}

fn respond(body: &'static str, content_type: &'static str) -> Response<Body> {
    let mut r = Response::new(full(body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

#[cfg(test)]
mod tests {
    // Goal: both renderings are the same document, and it names every route family of
    // `route` (a path added to the router without documenting it shows up here).
    #[test]
    fn yaml_and_json_agree() {
        let v: serde_json::Value = serde_json::from_str(super::JSON).unwrap();
        assert!(v["openapi"].as_str().unwrap().starts_with("3."));
        assert!(super::YAML.starts_with("openapi: "));
        let paths = v["paths"].as_object().unwrap();
        for p in [
            "/v3/orders",
            "/v3/orders/{sessionId}/{sessionSeq}",
            "/v3/admin/kill-switches",
            "/orders",
            "/v2/orders",
            "/orders/{orderId}",
            "/orders/client/{clientOrderId}",
            "/orders/{orderId}/cancel",
            "/orders/{orderId}/amend",
            "/orders/{orderId}/events",
            "/orders/{orderId}/stream",
            "/accounts/{accountId}/events",
            "/stream",
            "/ws",
            "/audit/verify",
            "/audit/anchor",
            "/health",
            "/metrics",
            "/stats",
            "/ui",
            "/openapi.yaml",
            "/openapi.json",
        ] {
            assert!(paths.contains_key(p), "{p} is not documented");
        }
    }
}
