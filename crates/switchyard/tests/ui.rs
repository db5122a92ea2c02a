//! The operations console (`/ui`) and the stream it reads (`GET /stream?scope=all`).
//!
//! - `stream_scope_all_is_for_ops_only`: the all-accounts stream through the real binary — 403
//!   without scope `ops`, 400 for an unknown scope, and with an ops token the events of two
//!   accounts both arrive (and replay after `Last-Event-ID`), while an account stream still
//!   sees only its own account.
//! - `console_in_a_real_browser`: a real gateway with two in-process simulated venues and the
//!   audit chain, and `node ui-tests/console.mjs` driving Debian's chromium through
//!   playwright-core: log in, see an order placed through the API appear and fill, charts,
//!   venues, journal and audit panels with data, a kill switch flipped through the console's
//!   confirmation step (checked through the API) and back, a screenshot. It needs chromium,
//!   node and `ui-tests/node_modules`: `scripts/services.sh install` provides them and
//!   `scripts/services.sh start` writes `SWITCHYARD_TEST_CHROMIUM` and
//!   `SWITCHYARD_TEST_UI_NODE_MODULES` to `var/services/env`; without them the test fails.
//!   With `SWITCHYARD_UI_SCREENSHOT` set the screenshot goes to `docs/ui-console.png`.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// Reads from `s` until `buf` contains every needle (or panics on EOF / timeout).
fn read_until(s: &mut TcpStream, buf: &mut Vec<u8>, needles: &[&str]) {
    let mut chunk = [0u8; 4096];
    while !needles
        .iter()
        .all(|n| String::from_utf8_lossy(buf).contains(n))
    {
        let n = s.read(&mut chunk).unwrap_or_else(|e| {
            panic!(
                "read ({e}) waiting for {needles:?}; got: {}",
                String::from_utf8_lossy(buf)
            )
        });
        assert!(
            n > 0,
            "stream ended early: {}",
            String::from_utf8_lossy(buf)
        );
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Opens `GET path` as a stream (headers sent, nothing read yet).
fn open_stream(port: u16, path: &str, token: &str, last_event_id: Option<&str>) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(15))).unwrap();
    let last = last_event_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n{last}\r\n"
    )
    .unwrap();
    s
}

/// The `id:` of the first SSE frame whose data contains `needle`.
fn id_of_frame_with(text: &str, needle: &str) -> String {
    text.split("\n\n")
        .find(|f| f.contains(needle))
        .and_then(|f| f.lines().find_map(|l| l.strip_prefix("id: ")))
        .unwrap_or_else(|| panic!("no frame with an id containing {needle}: {text}"))
        .trim()
        .to_string()
}

// Goal: `GET /stream?scope=all` is for ops tokens only (403 with the admin endpoints' error
// otherwise, 400 naming the problem for an unknown scope); an ops stream receives the events
// of every account, and replays them after `Last-Event-ID`; an account stream beside it still
// receives only its own account's events.
#[test]
fn stream_scope_all_is_for_ops_only() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[]);

    let r = http_full(
        g.http,
        &request("GET", "/stream?scope=all", Some(&token("alice")), "", ""),
    );
    assert_eq!(
        (r.status, r.assert_json("non-ops")["error"].as_str()),
        (403, Some("forbidden")),
        "{}",
        r.body
    );
    // The same answer as the admin endpoints give a non-ops token.
    let admin = http_full(
        g.http,
        &request(
            "GET",
            "/v3/admin/kill-switches",
            Some(&token("alice")),
            "",
            "",
        ),
    );
    assert_eq!((admin.status, &admin.body), (r.status, &r.body));
    let r = http_full(
        g.http,
        &request(
            "GET",
            "/stream?scope=everything",
            Some(&ops_token("ops")),
            "",
            "",
        ),
    );
    let v = r.assert_json("bad scope");
    assert_eq!(
        (r.status, v["error"].as_str()),
        (400, Some("INVALID_SCOPE"))
    );
    assert!(v["detail"].as_str().unwrap().contains("all"), "{}", r.body);
    let (code, _) = http_get(g.http, "/stream?scope=all", None).unwrap();
    assert_eq!(code, 401);

    let ops = ops_token("ops-desk");
    let mut all = open_stream(g.http, "/stream?scope=all", &ops, None);
    let mut own = open_stream(g.http, "/stream?scope=account", &token("alice"), None);
    let mut buf = Vec::new();
    read_until(
        &mut all,
        &mut buf,
        &["event: ready\ndata: {\"scope\":\"all\"}"],
    );
    let mut own_buf = Vec::new();
    read_until(
        &mut own,
        &mut own_buf,
        &["event: ready\ndata: {\"accountId\":\"alice\"}"],
    );

    let a = place(
        g.http,
        &token("alice"),
        "a-1",
        &order_json("AAPL", "BUY", 1, Some(100)),
    );
    let b = place(
        g.http,
        &token("bob"),
        "b-1",
        &order_json("MSFT", "SELL", 2, Some(200)),
    );
    let (na, nb) = (
        format!("\"orderId\":\"{a}\""),
        format!("\"orderId\":\"{b}\""),
    );
    read_until(
        &mut all,
        &mut buf,
        &[
            &na,
            &nb,
            "\"accountId\":\"alice\"",
            "\"accountId\":\"bob\"",
            "event: order_durable",
        ],
    );
    let text = String::from_utf8_lossy(&buf).into_owned();
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.to_ascii_lowercase()
            .contains("content-type: text/event-stream"),
        "{text}"
    );

    // alice's own stream: her order, never bob's (a third order of alice marks the end).
    let c = place(
        g.http,
        &token("alice"),
        "a-2",
        &order_json("AAPL", "BUY", 3, Some(100)),
    );
    read_until(
        &mut own,
        &mut own_buf,
        &[&na, &format!("\"orderId\":\"{c}\"")],
    );
    let own_text = String::from_utf8_lossy(&own_buf);
    assert!(
        !own_text.contains("bob") && !own_text.contains(&nb),
        "{own_text}"
    );

    // Reconnect after alice's first event: the replay holds bob's order too.
    let first = id_of_frame_with(&text, &na);
    let mut again = open_stream(g.http, "/stream?scope=all", &ops, Some(&first));
    let mut buf2 = Vec::new();
    read_until(
        &mut again,
        &mut buf2,
        &[&nb, &format!("\"orderId\":\"{c}\"")],
    );
    let replay = String::from_utf8_lossy(&buf2);
    assert!(!replay.contains("resync_required"), "{replay}");
    drop((all, own, again));
}

/// The repository root (tests run with the crate directory as the working directory).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

/// What the browser test needs from `scripts/services.sh`; fails (never skips) without it.
fn browser_env() -> (String, PathBuf) {
    let chromium = env_or_fail("SWITCHYARD_TEST_CHROMIUM");
    let modules = PathBuf::from(env_or_fail("SWITCHYARD_TEST_UI_NODE_MODULES"));
    assert!(
        Path::new(&chromium).is_file(),
        "SWITCHYARD_TEST_CHROMIUM={chromium} does not exist: run `scripts/services.sh install` \
         (Debian package chromium)"
    );
    assert!(
        modules.join("playwright-core/index.mjs").is_file(),
        "no playwright-core in SWITCHYARD_TEST_UI_NODE_MODULES={}: run `scripts/services.sh \
         install` (npm ci --prefix ui-tests)",
        modules.display()
    );
    let node = Command::new("node").arg("--version").output();
    assert!(
        node.is_ok_and(|o| o.status.success()),
        "node is not on PATH: run `scripts/services.sh install` (Debian package nodejs)"
    );
    (chromium, modules)
}

// Goal: the console works in a real browser against a real gateway: see the module
// documentation and ui-tests/console.mjs for every step it checks.
#[test]
fn console_in_a_real_browser() {
    let (chromium, modules) = browser_env();
    let root = repo_root();
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(
        dir.path(),
        &[
            ("EXCHANGE_TRANSPORT", "sim"),
            ("SOR_VENUES", "simA,simB"),
            ("SOR_SYMBOL_ROUTES", "BTC=simA|simB,ETH=simA|simB"),
            ("AUDIT_HMAC_KEYS", "ui:switchyard-ui-test-audit-key"),
            ("GATEWAY_ID", "ui-test"),
        ],
    );
    wait_for(30, "both simulated venues up", || {
        let up = metric(g.http, "gateway_venues_up");
        if up == 2.0 {
            Ok(())
        } else {
            Err(format!("{up} up"))
        }
    });
    let screenshot = match std::env::var("SWITCHYARD_UI_SCREENSHOT") {
        Ok(v) if !v.is_empty() => root.join("docs/ui-console.png"),
        _ => dir.path().join("ui-console.png"),
    };
    let started = Instant::now();
    let mut child = Command::new("node")
        .arg(root.join("ui-tests/console.mjs"))
        .current_dir(root.join("ui-tests"))
        .env("UI_BASE_URL", format!("http://127.0.0.1:{}", g.http))
        .env("UI_OPS_TOKEN", ops_token("ops-desk"))
        .env("UI_TRADER_TOKEN", token("ui-trader-1"))
        .env("UI_TRADER_ACCOUNT", "ui-trader-1")
        .env("UI_TRADER2_TOKEN", token("ui-trader-2"))
        .env("UI_TRADER2_ACCOUNT", "ui-trader-2")
        .env("UI_SCREENSHOT", &screenshot)
        .env("SWITCHYARD_TEST_CHROMIUM", &chromium)
        .env("SWITCHYARD_TEST_UI_NODE_MODULES", &modules)
        .stdout(Stdio::inherit())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run node ui-tests/console.mjs");
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(240) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("ui-tests/console.mjs did not finish within 240 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.success(),
        "the browser test failed ({status}): see the [ui] lines above for the step and reason"
    );
    assert!(
        screenshot.is_file(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!(
        "console_in_a_real_browser: {:.1} s, screenshot {}",
        started.elapsed().as_secs_f64(),
        screenshot.display()
    );
}
