//! `switchyard top` against a real gateway: the `--once` frame while orders flow (throughput,
//! rejects by reason, latency, queues, journal), plain frames when stdout is not a terminal,
//! and what it says when the metrics token is missing or wrong, or nothing listens.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;

fn top(port: u16, args: &[&str], env: &[(&str, &str)]) -> (bool, String, String) {
    let target = format!("http://127.0.0.1:{port}");
    let mut all = vec!["top", "--target", &target];
    all.extend_from_slice(args);
    let out = run_switchyard(&all, env);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn line<'a>(frame: &'a str, start: &str) -> &'a str {
    frame
        .lines()
        .find(|l| l.trim_start().starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{frame}"))
}

/// The first `…/s` figure of a line.
fn rate_of(line: &str) -> f64 {
    line.split_whitespace()
        .find_map(|w| w.strip_suffix("/s")?.parse().ok())
        .unwrap_or_else(|| panic!("no rate in {line:?}"))
}

/// Orders until stopped: v3 accepts, durable accepts, and two kinds of refusal (a symbol too
/// long, a quantity over `V3_RISK_MAX_ORDER_QTY`).
struct Traffic {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Traffic {
    fn start(port: u16) -> Traffic {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let t = token("top-trader");
            let mut n = 0u64;
            while !s.load(Ordering::Relaxed) {
                let side = if n.is_multiple_of(2) { "BUY" } else { "SELL" };
                let ok = post_order(port, &t, &order_body("AAPL", side, "LIMIT", 1, Some(100)));
                assert_eq!(ok.status, 202, "{}", ok.body);
                let unknown = post_order(
                    port,
                    &t,
                    &order_body("ABCDEFGHI", side, "LIMIT", 1, Some(100)),
                );
                assert_eq!(unknown.status, 422, "{}", unknown.body);
                if n.is_multiple_of(3) {
                    let big = post_order(
                        port,
                        &t,
                        &order_body("AAPL", side, "LIMIT", 10_001, Some(1)),
                    );
                    assert_eq!(big.status, 422, "{}", big.body);
                    place(
                        port,
                        &t,
                        &format!("top-{n}"),
                        &order_json("MSFT", side, 1, Some(100)),
                    );
                }
                n += 1;
                std::thread::sleep(Duration::from_millis(5));
            }
            n
        });
        Traffic {
            stop,
            thread: Some(thread),
        }
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().unwrap().join().expect("traffic thread")
    }
}

impl Drop for Traffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

// Goal: one `--once` frame of a busy gateway shows its throughput, the reject reasons by name,
// the ack percentiles, the queue and journal lines, and is plain text.
#[test]
fn once_frame_while_orders_flow() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[]);
    let traffic = Traffic::start(g.http);
    std::thread::sleep(Duration::from_millis(300));
    let (ok, frame, err) = top(g.http, &["--once", "--interval-ms", "1000"], &[]);
    let sent = traffic.stop();
    assert!(ok, "top failed: {err}\n{frame}");
    assert!(sent > 0);
    assert!(!frame.contains('\x1b'), "escape codes in --once:\n{frame}");
    assert!(!frame.contains("scrape failed"), "{frame}");
    assert!(frame.starts_with(&format!(
        "switchyard top · http://127.0.0.1:{}/metrics\n",
        g.http
    )));

    let accepted = line(&frame, "accepted");
    assert!(rate_of(accepted) > 0.0, "{frame}");
    assert!(accepted.contains("/orders"), "{frame}");
    let v3 = accepted.split("v3 ").nth(1).expect("v3 rate");
    assert!(rate_of(v3) > 0.0, "{frame}");
    assert!(rate_of(line(&frame, "rejected")) > 0.0, "{frame}");

    // Both refusals by name, with a rate; unknown symbols came more often than big orders.
    let symbol = line(&frame, "INVALID_SYMBOL");
    let qty = line(&frame, "INVALID_QTY");
    assert!(rate_of(symbol) > 0.0 && rate_of(qty) > 0.0, "{frame}");
    assert!(
        frame.find("INVALID_SYMBOL") < frame.find("INVALID_QTY"),
        "{frame}"
    );

    assert!(frame.contains("LATENCY (since start)"), "{frame}");
    let ack = line(&frame, "ack v3, all");
    assert!(
        ack.matches("µs").count() + ack.matches("ms").count() >= 3,
        "no ack percentiles: {frame}"
    );
    let durable = line(&frame, "ack /orders (durable)");
    let figures = durable.split(')').nth(1).unwrap();
    assert!(figures.contains("µs") || figures.contains("ms"), "{frame}");

    assert!(frame.contains("\nQUEUES\n"), "{frame}");
    assert!(line(&frame, "ingress").contains(" of "), "{frame}");
    assert!(frame.contains("depth per shard 0:"), "{frame}");
    assert!(frame.contains("\nJOURNAL\n"), "{frame}");
    let fsync = line(&frame, "fsync");
    assert!(rate_of(fsync) > 0.0, "no fsync rate: {frame}");
    assert!(line(&frame, "records").contains("durable seq"), "{frame}");
    assert!(
        line(&frame, "kill switches").contains("global off"),
        "{frame}"
    );
    assert!(
        line(&frame, "loss suspects").ends_with("suspects: 0"),
        "{frame}"
    );
    assert!(frame.contains("VENUES none configured"), "{frame}");
}

// Goal: without a terminal, `--frames N` prints N plain frames, one per interval.
#[test]
fn plain_frames() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[]);
    let (ok, out, err) = top(g.http, &["--frames", "2", "--interval-ms", "200"], &[]);
    assert!(ok, "{err}\n{out}");
    assert_eq!(out.matches("switchyard top · ").count(), 2, "{out}");
    assert_eq!(out.matches("THROUGHPUT").count(), 2, "{out}");
    assert!(!out.contains('\x1b'), "{out}");
}

// Goal: a gateway with GATEWAY_METRICS_TOKEN: no token → a clear 401 and exit status 1; a
// wrong one → refused; the right one (environment or flag) → a frame.
#[test]
fn metrics_token() {
    let dir = tempfile::tempdir().unwrap();
    let g = Gateway::start(dir.path(), &[("GATEWAY_METRICS_TOKEN", "scrape-me")]);
    let once = ["--once", "--interval-ms", "100"];

    let (ok, out, err) = top(g.http, &once, &[]);
    assert!(!ok, "succeeded without the token:\n{out}");
    let l = line(&out, "scrape failed");
    assert!(l.contains("401") && l.contains("none was given"), "{out}");
    assert!(l.contains("GATEWAY_METRICS_TOKEN"), "{out}");
    assert!(!out.contains("THROUGHPUT"), "{out}");
    assert!(err.contains("401"), "{err}");

    let (ok, out, _) = top(g.http, &once, &[("GATEWAY_METRICS_TOKEN", "wrong")]);
    assert!(!ok, "{out}");
    assert!(
        line(&out, "scrape failed").contains("401 Unauthorized: the metrics token was refused"),
        "{out}"
    );

    let (ok, out, err) = top(g.http, &once, &[("GATEWAY_METRICS_TOKEN", "scrape-me")]);
    assert!(ok, "{err}\n{out}");
    assert!(
        out.contains("THROUGHPUT") && !out.contains("scrape failed"),
        "{out}"
    );

    let mut flag = once.to_vec();
    flag.extend(["--metrics-token", "scrape-me"]);
    let (ok, out, err) = top(g.http, &flag, &[]);
    assert!(ok && out.contains("JOURNAL"), "{err}\n{out}");
}

// Goal: nothing listening → the frame says it could not connect; exit status 1, at once.
#[test]
fn nothing_listening() {
    let port = free_port();
    let started = std::time::Instant::now();
    let (ok, out, _) = top(port, &["--once"], &[]);
    assert!(!ok, "{out}");
    assert!(
        line(&out, "scrape failed").contains("cannot connect"),
        "{out}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
}
