//! The operations console: `GET /ui` (and `/ui/`) is its page, `GET /ui/<asset>` its
//! stylesheet, scripts and icon. Plain HTML, CSS and ES modules from `crates/gateway/ui/`,
//! embedded in the binary at build time (no file is read at run time, nothing is fetched from
//! elsewhere: the page works offline and cannot drift from the gateway it ships with).
//!
//! The page holds no data, so it needs no token; every call it makes for data carries the
//! operator's token (`Authorization: Bearer …`, and `X-Metrics-Token` for `/metrics` and
//! `/stats` when `GATEWAY_METRICS_TOKEN` is set). Every answer has `Cache-Control: no-cache`
//! (a browser revalidates after an upgrade) and a strict `Content-Security-Policy`: only this
//! origin, no inline script or style, no plugins, no framing.

use hyper::header::{
    HeaderName, HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE,
    X_CONTENT_TYPE_OPTIONS,
};
use hyper::{Response, StatusCode};

use super::{full, json_error, Body};

/// `default-src 'self'` and nothing looser: scripts and styles only from files of this origin
/// (no inline code, no `eval`), data calls only to this origin.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; \
frame-ancestors 'none'";

/// One embedded file: its name under `/ui/`, content type and bytes.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $ct:expr) => {
        Asset {
            name: $name,
            content_type: $ct,
            body: include_bytes!(concat!("../../ui/", $name)),
        }
    };
}

const HTML: &str = "text/html; charset=utf-8";
const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";
const SVG: &str = "image/svg+xml";

static ASSETS: &[Asset] = &[
    asset!("index.html", HTML),
    asset!("console.css", CSS),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("sse.js", JS),
    asset!("chart.js", JS),
    asset!("prom.js", JS),
    asset!("dom.js", JS),
    asset!("favicon.svg", SVG),
];

/// True for the paths this module serves: `/ui`, `/ui/` and `/ui/<anything>`.
pub fn is_ui_path(path: &str) -> bool {
    path == "/ui" || path.starts_with("/ui/")
}

/// `GET /ui`, `/ui/` → the page; `/ui/<asset>` → the asset; anything else under `/ui/` → 404
/// `{"error":"NOT_FOUND"}` like every unknown path.
pub fn get(path: &str) -> Response<Body> {
    let name = match path {
        "/ui" | "/ui/" | "/ui/index.html" => "index.html",
        p => p.strip_prefix("/ui/").unwrap_or(""),
    };
    match ASSETS.iter().find(|a| a.name == name) {
        Some(a) => respond(a),
        None => json_error(StatusCode::NOT_FOUND, "NOT_FOUND"),
    }
}

fn respond(a: &Asset) -> Response<Body> {
    let mut r = Response::new(full(a.body));
    let h = r.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(a.content_type));
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every path of the console answers with its content type, no-cache and the CSP;
    // unknown assets are the JSON 404 of every unknown path; nothing leaves `/ui/`.
    #[test]
    fn assets_have_types_and_headers() {
        for (path, ct) in [
            ("/ui", HTML),
            ("/ui/", HTML),
            ("/ui/index.html", HTML),
            ("/ui/app.js", JS),
            ("/ui/console.css", CSS),
            ("/ui/favicon.svg", SVG),
        ] {
            let r = get(path);
            assert_eq!(r.status(), StatusCode::OK, "{path}");
            let h = r.headers();
            assert_eq!(h[CONTENT_TYPE], ct, "{path}");
            assert_eq!(h[CACHE_CONTROL], "no-cache", "{path}");
            assert_eq!(h[CONTENT_SECURITY_POLICY], CSP, "{path}");
        }
        for path in [
            "/ui/nope.js",
            "/ui/../Cargo.toml",
            "/ui/app.js/",
            "/ui//app.js",
        ] {
            let r = get(path);
            assert_eq!(r.status(), StatusCode::NOT_FOUND, "{path}");
            assert_eq!(r.headers()[CONTENT_TYPE], "application/json", "{path}");
        }
        assert!(is_ui_path("/ui") && is_ui_path("/ui/x") && !is_ui_path("/uix"));
    }

    // Goal: the page loads only files of this origin, every script is a module file (no
    // inline script or handler a strict CSP would block), and every module it imports is
    // served.
    #[test]
    fn page_references_only_embedded_assets() {
        let html = std::str::from_utf8(ASSETS[0].body).unwrap();
        assert!(!html.contains("<script>") && !html.contains(" onclick="));
        assert!(!html.contains("http://") && !html.contains("https://"));
        for a in ASSETS {
            let text = std::str::from_utf8(a.body).unwrap();
            assert!(!text.contains("innerHTML"), "{} uses innerHTML", a.name);
            for line in text.lines().filter(|l| l.starts_with("import ")) {
                let file = line
                    .rsplit_once("'./")
                    .and_then(|(_, f)| f.split_once('\''))
                    .map(|(f, _)| f)
                    .unwrap_or_else(|| panic!("{}: unexpected import {line}", a.name));
                assert!(ASSETS.iter().any(|x| x.name == file), "{file} not embedded");
            }
        }
    }
}
