//! Goal: the short soak with faults (`scripts/soak.sh` is the long one). Durable `POST /orders`
//! load from `switchyard bench soak run` against the real stack — the gateway (journal with
//! the audit chain, outbox to a private tansu broker), two `switchyard venue-sim` processes
//! (simA, simB, routed by symbol), `switchyard backoffice` on SQLite consuming the bus — with
//! one of each fault: a venue SIGKILL and restart, a broker outage (the test's own broker
//! frozen by SIGSTOP, so that no other test's broker is disturbed), and a gateway SIGKILL and
//! restart, after which the generator resends every unanswered order with its key. Afterwards
//! `switchyard bench soak check` must find nothing lost (every order acknowledged `local` is
//! in the journal and known to the restarted gateway), nothing duplicated (no key with two
//! orders, no order twice at a venue or at two venues), the venues' fills equal to the
//! gateway's, and the back office reconciled with positions equal to the gateway's fills.

mod common;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

const GATEWAY_ID: &str = "soak-it";
const AUDIT_KEYS: &str = "soak-key:soak-secret";
const RATE: &str = "250";
const LOAD_SECS: u64 = 24;

/// A child process killed (SIGKILL) when dropped.
struct Proc(Child);

impl Proc {
    /// SIGTERM, and wait for a clean exit (the gateway's graceful shutdown).
    fn terminate(&mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -TERM");
        let status = self.0.wait().unwrap();
        assert!(status.success(), "graceful shutdown failed: {status}");
    }

    fn kill9(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_switchyard"));
    c.env_clear().env("RUST_LOG", "warn");
    c
}

/// `switchyard gateway` on a fixed HTTP port (a restart must come back where the load
/// generator sends), connected to both venues and the broker.
fn gateway(dir: &Path, http: u16, venues: (u16, u16), bootstrap: &str, topic: &str) -> Proc {
    let mut cmd = bin();
    cmd.arg("gateway")
        .env("GATEWAY_HOST", "127.0.0.1")
        .env("GATEWAY_PORT", http.to_string())
        .env("JWT_HS256_SECRET", SECRET)
        .env("GATEWAY_JOURNAL_DIR", dir)
        .env("GATEWAY_ID", GATEWAY_ID)
        .env("AUDIT_HMAC_KEYS", AUDIT_KEYS)
        // As common::Gateway: a shared machine's slow disk must not trip the v3 loss gates.
        .env("V3_LOSS_GAP_TIMEOUT_MS", "600000")
        .env("V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US", "0")
        .env("V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US", "0")
        .env("EXCHANGE_TRANSPORT", "tcp")
        .env("EXCHANGE_TCP_HOST", "127.0.0.1")
        .env("SOR_VENUES", "simA,simB")
        .env("EXCHANGE_TCP_PORT_SIMA", venues.0.to_string())
        .env("EXCHANGE_TCP_PORT_SIMB", venues.1.to_string())
        .env(
            "SOR_SYMBOL_ROUTES",
            "AAPL=simA,MSFT=simA,NVDA=simB,BTC=simB,ETH=simA|simB,SOL=simA|simB",
        )
        .env("VENUE_HEARTBEAT_MS", "200")
        .env("VENUE_RECONNECT_MAX_MS", "200")
        .env("KAFKA_ENABLE", "1")
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .env("KAFKA_TOPIC", topic)
        .env("OUTBOX_BACKOFF_BASE_MS", "50")
        .env("OUTBOX_BACKOFF_MAX_MS", "400")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let mut p = Proc(cmd.spawn().expect("spawn the gateway"));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok((200, _)) = http_get(http, "/health", None) {
            return p;
        }
        if let Ok(Some(s)) = p.0.try_wait() {
            panic!("the gateway exited during startup: {s}");
        }
        assert!(
            Instant::now() < deadline,
            "the gateway never became healthy"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn venue(name: &str, port: u16, dir: &Path) -> Venue {
    Venue::start(
        name,
        port,
        &dir.join(name),
        &[("EXCHANGE_SIM_MM_SIZE", "100000")],
    )
}

fn backoffice(port: u16, db: &Path, bootstrap: &str, topic: &str) -> Proc {
    let mut cmd = bin();
    cmd.arg("backoffice")
        .env("BACKOFFICE_HOST", "127.0.0.1")
        .env("BACKOFFICE_PORT", port.to_string())
        .env(
            "BACKOFFICE_DB_URL",
            format!("sqlite:{}?mode=rwc", db.display()),
        )
        .env("KAFKA_ENABLE", "1")
        .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
        .env("KAFKA_TOPIC", topic)
        .env("KAFKA_GROUP_ID", format!("{topic}-bo"))
        .env("BACKOFFICE_KAFKA_SESSION_TIMEOUT_MS", "6000")
        .env("BACKOFFICE_KAFKA_HEARTBEAT_INTERVAL_MS", "500")
        .env("JWT_HS256_SECRET", SECRET)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    let p = Proc(cmd.spawn().expect("spawn the back office"));
    wait_for(30, "the back office listening", || {
        http_get(port, "/health", None)
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    p
}

/// The back office's `/stats`.
fn bo_stats(port: u16) -> serde_json::Value {
    let (code, body) = http_get(port, "/stats", Some(&token("bench-0"))).expect("GET /stats");
    assert_eq!(code, 200, "{body}");
    json(&body)
}

/// Waits until the back office has booked everything the broker holds: no lag on any
/// partition, and nothing new processed for 12 s — its watermarks are refreshed every 5 s
/// (also when idle), so a lag of 0 read from a watermark older than its last batch is not
/// trusted.
fn wait_bo_caught_up(port: u16) {
    let mut last = None;
    let mut since = Instant::now();
    wait_for(120, "the back office caught up", || {
        let s = bo_stats(port);
        let processed = s["processed"].as_u64();
        if processed != last {
            last = processed;
            since = Instant::now();
        }
        let parts = s["positions"].as_array().cloned().unwrap_or_default();
        let no_lag = !parts.is_empty() && parts.iter().all(|p| p["lag"].as_i64() == Some(0));
        if no_lag && since.elapsed() >= Duration::from_secs(12) {
            Ok(())
        } else {
            Err(s.to_string())
        }
    });
}

fn unique_topic() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("it-soak-{}-{nanos}", std::process::id())
}

#[test]
fn soak_with_faults_loses_and_duplicates_nothing() {
    let started = Instant::now();
    let broker = Broker::start();
    let bootstrap = format!("127.0.0.1:{}", broker.port);
    let topic = unique_topic();
    create_topic(&bootstrap, &topic, 3);
    let dir = tempfile::tempdir().unwrap();
    let gw_dir = dir.path().join("gw");
    let (va_port, vb_port, gw_port, bo_port) = (free_port(), free_port(), free_port(), free_port());
    let mut sim_a = venue("simA", va_port, dir.path());
    let mut sim_b = venue("simB", vb_port, dir.path());
    let ports = (va_port, vb_port);
    let mut gw = gateway(&gw_dir, gw_port, ports, &bootstrap, &topic);
    let _bo = backoffice(bo_port, &dir.path().join("bo.db"), &bootstrap, &topic);
    wait_for(30, "both venue sessions up", || {
        let up = metric(gw_port, "gateway_venues_up");
        (up == 2.0).then_some(()).ok_or(up.to_string())
    });
    // The consumer has joined its group once a first order is booked.
    place(
        gw_port,
        &token("bench-0"),
        "warm-up",
        &order_json("AAPL", "BUY", 1, Some(9_000)),
    );
    wait_for(60, "the back office consuming", || {
        let n = bo_stats(bo_port)["processed"].as_u64().unwrap_or(0);
        (n > 0).then_some(()).ok_or(n.to_string())
    });

    let acked = dir.path().join("acked.tsv");
    let driver_json = dir.path().join("driver.json");
    let mut driver = Proc(
        bin()
            .args(["bench", "soak", "run", "--target"])
            .arg(format!("127.0.0.1:{gw_port}"))
            .args(["--secret", SECRET, "--rate", RATE, "--duration"])
            .arg(LOAD_SECS.to_string())
            .args(["--connections", "8", "--accounts", "4", "--retry-for", "40"])
            .args(["--reply-timeout", "5", "--progress", "0", "--acked"])
            .arg(&acked)
            .arg("--json")
            .arg(&driver_json)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the load generator"),
    );
    let t0 = Instant::now();
    let at = |s: f64| {
        let when = t0 + Duration::from_secs_f64(s);
        if let Some(d) = when.checked_duration_since(Instant::now()) {
            std::thread::sleep(d);
        }
    };
    at(4.0);
    sim_a.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    sim_a = venue("simA", va_port, dir.path());
    at(8.0);
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_secs(4));
    broker.signal("-CONT");
    at(13.0);
    gw.kill9();
    gw = gateway(&gw_dir, gw_port, ports, &bootstrap, &topic);
    at(18.0);
    sim_b.kill9();
    std::thread::sleep(Duration::from_millis(1500));
    sim_b = venue("simB", vb_port, dir.path());

    let status = driver.0.wait().unwrap();
    assert!(status.success(), "the load generator failed: {status}");
    let run = json(&std::fs::read_to_string(&driver_json).unwrap());
    eprintln!("soak run: {run}");
    assert_eq!(
        run["unresolved"], 0,
        "unanswered orders after retries: {run}"
    );
    assert!(
        run["acked_durable"].as_u64().unwrap() > 1_000,
        "too little load to mean anything: {run}"
    );

    // Let the venues, the outbox and the books settle.
    wait_for(60, "the outbox drained", || {
        let lag = metric(gw_port, "gateway_outbox_lag_records");
        (lag == 0.0).then_some(()).ok_or(lag.to_string())
    });
    std::thread::sleep(Duration::from_secs(1));
    wait_bo_caught_up(bo_port);
    eprintln!("back office: {}", bo_stats(bo_port)["positions"]);

    let mut dump = bin()
        .args(["journal", "dump", "--dir"])
        .arg(&gw_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let check_json = dir.path().join("check.json");
    let out = bin()
        .args(["bench", "soak", "check", "--acked"])
        .arg(&acked)
        .args(["--journal", "-", "--venue-log"])
        .arg(dir.path().join("simA/venue-simA.jsonl"))
        .arg("--venue-log")
        .arg(dir.path().join("simB/venue-simB.jsonl"))
        .args(["--gateway-id", GATEWAY_ID, "--secret", SECRET, "--target"])
        .arg(format!("127.0.0.1:{gw_port}"))
        .arg("--backoffice")
        .arg(format!("127.0.0.1:{bo_port}"))
        .args(["--backoffice-wait", "60"])
        .arg("--json")
        .arg(&check_json)
        .stdin(dump.stdout.take().unwrap())
        .output()
        .unwrap();
    assert!(dump.wait().unwrap().success());
    let text = String::from_utf8_lossy(&out.stdout);
    eprintln!("{text}{}", String::from_utf8_lossy(&out.stderr));
    let c = json(&std::fs::read_to_string(&check_json).unwrap());
    assert_eq!(c["lost"], 0, "{text}");
    assert_eq!(c["duplicated"], 0, "{text}");
    assert!(out.status.success(), "the check failed:\n{text}");
    let s = &c["summary"];
    assert_eq!(s["acked"]["lines"], run["acked"], "{text}");
    assert_eq!(c["gateway"]["ok"], run["acked"], "{text}");
    assert!(s["filledOrders"].as_u64().unwrap() > 0, "{text}");
    assert!(s["venueOrders"].as_u64().unwrap() > 0, "{text}");
    assert_eq!(s["venueFillMismatches"], 0, "{text}");
    assert_eq!(c["backoffice"]["reconcileOk"], true, "{text}");
    assert_eq!(c["backoffice"]["positionsMatch"], true, "{text}");
    assert_eq!(c["backoffice"]["ledgerEntriesMatch"], true, "{text}");

    gw.terminate();
    let out = run_switchyard(
        &["journal", "verify", "--dir", gw_dir.to_str().unwrap()],
        &[("AUDIT_HMAC_KEYS", AUDIT_KEYS)],
    );
    assert!(
        out.status.success(),
        "journal verify: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    drop((sim_a, sim_b));
    eprintln!("soak test took {:.1} s", started.elapsed().as_secs_f64());
}
