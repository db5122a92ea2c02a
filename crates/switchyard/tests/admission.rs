//! Admission control over the wire (§3.5): the shard ingress watermarks SOFT/HARD/KILL reached by
//! filling a 16-slot queue behind a deliberately slow journal, shard auto-recovery, and the
//! durable admission gates (journal backlog soft/hard, oldest-unconfirmed age soft/hard).
//!
//! How the queue fills deterministically: `SWITCHYARD_FAULT_SYNC_DELAY_MS` makes the journal
//! sleep before every fdatasync, one order per commit (`V3_ENGINE_BATCH_MAX=1`,
//! `GATEWAY_JOURNAL_QUEUE_BATCHES=1`), so the single engine blocks and accepted orders stay in
//! the shard queue. Utilization = depth × 100 / 16. A refused order never enters the queue, so
//! the first watermark a sequential fill meets is the only one it can reach; each test sets the
//! thresholds so that the watermark under test is that first one:
//! defaults 70/85/95 → SOFT at depth 12; 86/87/95 → HARD at depth 14; 96/97/98 → KILL at 16.
//! The journal drains one order per delay (seconds), far slower than the fill (microseconds).

mod common;

use common::*;
use switchyard_protocol::v3frame::Response;

const SLOW: &[(&str, &str)] = &[
    ("V3_SHARD_COUNT", "1"),
    ("V3_INGRESS_QUEUE_CAPACITY", "16"),
    ("V3_ENGINE_BATCH_MAX", "1"),
    ("GATEWAY_JOURNAL_QUEUE_BATCHES", "1"),
    // Accepted orders wait for the slow journal far longer than the default loss timeout:
    // keep the loss monitor from killing the session meanwhile (durability.rs tests that).
    ("V3_LOSS_GAP_TIMEOUT_MS", "600000"),
];

fn slow_gateway(dir: &std::path::Path, delay_ms: &str, extra: &[(&str, &str)]) -> Gateway {
    let mut env: Vec<(&str, &str)> = SLOW.to_vec();
    env.push(("SWITCHYARD_FAULT_SYNC_DELAY_MS", delay_ms));
    env.extend_from_slice(extra);
    Gateway::start(dir, &env)
}

/// Pipelines `n` orders on one connection; returns (accepted seqs, refusals in order).
/// The accepted ones carry consecutive sequence numbers from 1: a refusal spends none. While
/// the engine is still taking its first few orders off the queue, an order after a refusal
/// may be accepted again; that only refills the queue to the same mark.
fn fill(gw: &Gateway, tok: &str, n: usize) -> (Vec<u64>, Vec<Response>) {
    let frames: Vec<_> = (0..n).map(|_| frame(tok, "AAPL", 1, 1, 1, 100)).collect();
    let mut s = tcp_connect(gw.tcp);
    let resp = tcp_exchange(&mut s, &frames);
    let (ok, refused): (Vec<&Response>, Vec<&Response>) =
        resp.iter().partition(|r| r.kind == KIND_ACCEPT);
    assert!(
        !refused.is_empty(),
        "{n} orders into a 16-slot queue were all accepted: {resp:?}"
    );
    let accepted: Vec<u64> = ok.iter().map(|r| r.session_seq).collect();
    assert_eq!(
        accepted,
        (1..=accepted.len() as u64).collect::<Vec<_>>(),
        "accepted seqs"
    );
    (accepted, refused.into_iter().copied().collect())
}

/// Posts orders over HTTP until one is refused (a drain between requests only lets one more
/// order in, which fills the slot again); returns the refusal.
fn http_until_refused(gw: &Gateway, tok: &str) -> HttpResponse {
    (0..20)
        .map(|_| post_order(gw.http, tok, &good_order()))
        .find(|r| r.status != 202)
        .expect("20 HTTP orders into a full queue were all accepted")
}

// Goal: a queue at ≥ 70 % (12 of 16) refuses 429 V3_BACKPRESSURE_SOFT (TCP 1/429/2101), never kills.
#[test]
fn soft_watermark() {
    // A queue at ≥ 70 % (depth 12 of 16, defaults) refuses with 429 REJECTED V3_BACKPRESSURE_SOFT
    // (TCP kind 1, 429, 2101) — and only with that — without a kill.
    let dir = tempfile::tempdir().unwrap();
    let gw = slow_gateway(dir.path(), "3000", &[]);
    let tok = token("wm-soft");
    let (accepted, refused) = fill(&gw, &tok, 30);
    assert!(
        accepted.len() >= 12,
        "refused before the queue could hold 12: {}",
        accepted.len()
    );
    for r in &refused {
        // Refusals do not enqueue: the depth never passes the soft mark, so never hard or kill.
        assert_frame(r, KIND_REJECTED, 429, 2101);
    }
    assert_refused(
        &http_until_refused(&gw, &tok),
        429,
        "REJECTED",
        "V3_BACKPRESSURE_SOFT",
    );
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 0.0);
    assert!(metric(gw.http, "gateway_v3_rejected_soft_total") >= 1.0);
}

// Goal: with SOFT out of the way, a queue at ≥ 85 % (14 of 16) refuses 503 V3_BACKPRESSURE_HARD (2102).
#[test]
fn hard_watermark() {
    // With SOFT moved out of the way (86 %), a queue at ≥ 85 % (depth 14) refuses with 503 REJECTED
    // V3_BACKPRESSURE_HARD (TCP kind 1, 503, 2102), not KILLED.
    let dir = tempfile::tempdir().unwrap();
    let gw = slow_gateway(
        dir.path(),
        "3000",
        &[("V3_SOFT_REJECT_PCT", "86"), ("V3_HARD_REJECT_PCT", "87")],
    );
    let tok = token("wm-hard");
    let (accepted, refused) = fill(&gw, &tok, 30);
    assert!(
        accepted.len() >= 14,
        "refused too early: {}",
        accepted.len()
    );
    for r in &refused {
        assert_frame(r, KIND_REJECTED, 503, 2102);
    }
    assert_refused(
        &http_until_refused(&gw, &tok),
        503,
        "REJECTED",
        "V3_BACKPRESSURE_HARD",
    );
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 0.0);
    assert!(metric(gw.http, "gateway_v3_rejected_hard_total") >= 1.0);
}

// Goal: a full queue answers V3_QUEUE_KILLED (2201) once, then the shard stays killed (2303, admin, metrics).
#[test]
fn kill_watermark_kills_the_shard() {
    // A full queue (100 % ≥ KILL) answers 503 KILLED V3_QUEUE_KILLED (kind 2, 2201) once and turns
    // the shard's kill switch on: later orders are V3_SHARD_KILLED (2303) even as the queue drains,
    // the switch shows in GET /v3/admin/kill-switches and in /metrics
    // (gateway_v3_shard_kill_switches), and without V3_KILL_AUTO_RECOVER it stays on.
    let dir = tempfile::tempdir().unwrap();
    let gw = slow_gateway(
        dir.path(),
        "3000",
        &[
            ("V3_SOFT_REJECT_PCT", "96"),
            ("V3_HARD_REJECT_PCT", "97"),
            ("V3_KILL_REJECT_PCT", "98"),
        ],
    );
    let tok = token("wm-kill");
    let (accepted, refused) = fill(&gw, &tok, 30);
    assert!(
        accepted.len() >= 16,
        "refused before the queue was full: {}",
        accepted.len()
    );
    assert_frame(&refused[0], KIND_KILLED, 503, 2201);
    for r in &refused[1..] {
        assert_frame(r, KIND_KILLED, 503, 2303);
    }
    let r = post_order(gw.http, &tok, &good_order());
    assert_refused(&r, 503, "KILLED", "V3_SHARD_KILLED");
    // Another session on the same (only) shard is refused as well.
    let r = post_order(gw.http, &token("wm-kill-other"), &good_order());
    assert_refused(&r, 503, "KILLED", "V3_SHARD_KILLED");
    let ks = kill_switches(gw.http, &ops_token("ops"));
    assert_eq!(ks["shards"][0]["shard"], 0);
    assert_eq!(ks["shards"][0]["killed"], true, "{ks}");
    assert_eq!(ks["global"], false);
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 1.0);
    assert_eq!(metric(gw.http, "gateway_v3_shard_killed_total"), 1.0);
    assert!(metric(gw.http, "gateway_v3_rejected_killed_total") >= refused.len() as f64);
    assert_eq!(metric(gw.http, "gateway_v3_kill_recovered_total"), 0.0);
}

// Goal: with V3_KILL_AUTO_RECOVER a watermark kill lifts once the journal caught up; nothing is lost.
#[test]
fn kill_watermark_auto_recovers() {
    // With V3_KILL_AUTO_RECOVER=true a watermark kill lifts by itself once the journal has caught
    // up (utilization ≤ 60 % and V3_KILL_RECOVER_AFTER_MS passed): the switch goes off in the admin
    // view and /metrics, gateway_v3_kill_recovered_total counts it, orders are accepted again with
    // the sequence continuing, and every accepted order becomes DURABLE_ACCEPTED.
    let dir = tempfile::tempdir().unwrap();
    let gw = slow_gateway(
        dir.path(),
        "40",
        &[
            ("V3_SOFT_REJECT_PCT", "96"),
            ("V3_HARD_REJECT_PCT", "97"),
            ("V3_KILL_REJECT_PCT", "98"),
            ("V3_KILL_AUTO_RECOVER", "true"),
            ("V3_KILL_RECOVER_AFTER_MS", "100"),
            ("V3_LOSS_SCAN_INTERVAL_MS", "10"),
        ],
    );
    let tok = token("wm-recover");
    let (accepted, refused) = fill(&gw, &tok, 40);
    assert_frame(&refused[0], KIND_KILLED, 503, 2201);
    let ops = ops_token("ops");
    wait_for(10, "the shard kill switch to lift", || {
        let ks = kill_switches(gw.http, &ops);
        if ks["shards"][0]["killed"] == false {
            Ok(())
        } else {
            Err(ks.to_string())
        }
    });
    assert_eq!(metric(gw.http, "gateway_v3_shard_kill_switches"), 0.0);
    assert_eq!(metric(gw.http, "gateway_v3_kill_recovered_total"), 1.0);
    let next = assert_accepted(&post_order(gw.http, &tok, &good_order()));
    assert_eq!(
        next,
        *accepted.last().unwrap() + 1,
        "refusals spent no sequence number"
    );
    for seq in [1, *accepted.last().unwrap(), next] {
        wait_confirm(gw.http, &tok, "wm-recover", seq, "DURABLE_ACCEPTED");
    }
}

/// Posts one order at a time, waiting for the engine to hand each accepted one to the journal,
/// until one is refused; returns (accepted count, refusal).
fn backlog_until_refused(gw: &Gateway, tok: &str) -> (usize, HttpResponse) {
    for n in 0..100 {
        let r = post_order(gw.http, tok, &good_order());
        if r.status != 202 {
            return (n, r);
        }
        wait_queue_empty(gw.http);
    }
    panic!("100 orders behind a stalled journal were all accepted");
}

// Goal: a journal backlog ≥ the durable soft % refuses 429 V3_DURABLE_BACKPRESSURE_SOFT (TCP 2001).
#[test]
fn durable_backpressure_soft() {
    // A journal backlog at ≥ V3_DURABLE_SOFT_REJECT_PCT of V3_DURABILITY_QUEUE_CAPACITY refuses
    // with 429 REJECTED V3_DURABLE_BACKPRESSURE_SOFT (TCP 429, 2001), before the ingress queue is
    // anywhere near a watermark.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("V3_ENGINE_BATCH_MAX", "1"),
            ("GATEWAY_JOURNAL_QUEUE_BATCHES", "64"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "5000"),
            ("V3_LOSS_GAP_TIMEOUT_MS", "600000"),
            // Backlog 5 of 10 → soft; hard only at 10 of 10.
            ("V3_DURABILITY_QUEUE_CAPACITY", "10"),
            ("V3_DURABLE_SOFT_REJECT_PCT", "50"),
            ("V3_DURABLE_HARD_REJECT_PCT", "100"),
        ],
    );
    let tok = token("dur-soft");
    let (accepted, r) = backlog_until_refused(&gw, &tok);
    assert!(accepted >= 5, "refused with a backlog below 5: {accepted}");
    assert_refused(&r, 429, "REJECTED", "V3_DURABLE_BACKPRESSURE_SOFT");
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_REJECTED, 429, 2001);
    assert_eq!(metric(gw.http, "gateway_v3_queue_depth"), 0.0);
    assert!(metric(gw.http, "gateway_v3_durable_backpressure_soft_total") >= 2.0);
}

// Goal: a journal backlog ≥ the durable hard % refuses 503 V3_DURABLE_BACKPRESSURE_HARD (TCP 2002).
#[test]
fn durable_backpressure_hard() {
    // A journal backlog at ≥ V3_DURABLE_HARD_REJECT_PCT refuses with 503 REJECTED
    // V3_DURABLE_BACKPRESSURE_HARD (TCP 503, 2002).
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[
            ("V3_SHARD_COUNT", "1"),
            ("V3_ENGINE_BATCH_MAX", "1"),
            ("GATEWAY_JOURNAL_QUEUE_BATCHES", "64"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "5000"),
            ("V3_LOSS_GAP_TIMEOUT_MS", "600000"),
            // Utilization moves in steps of 10 %: 98 % soft is unreachable, 99 % hard = 10 of 10.
            ("V3_DURABILITY_QUEUE_CAPACITY", "10"),
            ("V3_DURABLE_SOFT_REJECT_PCT", "98"),
            ("V3_DURABLE_HARD_REJECT_PCT", "99"),
        ],
    );
    let tok = token("dur-hard");
    let (accepted, r) = backlog_until_refused(&gw, &tok);
    assert!(
        accepted >= 10,
        "refused with a backlog below 10: {accepted}"
    );
    assert_refused(&r, 503, "REJECTED", "V3_DURABLE_BACKPRESSURE_HARD");
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_REJECTED, 503, 2002);
    assert!(metric(gw.http, "gateway_v3_durable_backpressure_hard_total") >= 2.0);
}

/// A gateway whose journal takes 8 s per commit, with one confirm-age gate set.
fn age_gateway(dir: &std::path::Path, gate: &str) -> Gateway {
    Gateway::start(
        dir,
        &[
            ("V3_SHARD_COUNT", "1"),
            ("SWITCHYARD_FAULT_SYNC_DELAY_MS", "8000"),
            ("V3_LOSS_GAP_TIMEOUT_MS", "600000"),
            ("V3_LOSS_SCAN_INTERVAL_MS", "10"),
            (gate, "150000"),
        ],
    )
}

/// Sends one order (it will wait 8 s for the journal), then polls with further orders until
/// the age gate refuses one.
fn age_refusal(gw: &Gateway, tok: &str) -> HttpResponse {
    assert_eq!(assert_accepted(&post_order(gw.http, tok, &good_order())), 1);
    wait_for(10, "the confirm-age gate to refuse", || {
        let r = post_order(gw.http, tok, &good_order());
        if r.status == 202 {
            Err(r.body)
        } else {
            Ok(r)
        }
    })
}

// Goal: an unconfirmed order older than the soft age gate makes orders 429 V3_DURABLE_CONFIRM_AGE_SOFT (9999).
#[test]
fn confirm_age_soft() {
    // Once the oldest not-yet-durable order is older than V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US,
    // orders get 429 REJECTED V3_DURABLE_CONFIRM_AGE_SOFT (TCP kind 1, 429, code 9999 "other").
    let dir = tempfile::tempdir().unwrap();
    let gw = age_gateway(dir.path(), "V3_DURABLE_CONFIRM_SOFT_REJECT_AGE_US");
    let tok = token("age-soft");
    assert_refused(
        &age_refusal(&gw, &tok),
        429,
        "REJECTED",
        "V3_DURABLE_CONFIRM_AGE_SOFT",
    );
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_REJECTED, 429, 9999);
    assert!(metric(gw.http, "gateway_v3_durable_confirm_age_soft_reject_total") >= 2.0);
    assert!(metric(gw.http, "gateway_v3_confirm_oldest_inflight_us") >= 150_000.0);
}

// Goal: an unconfirmed order older than the hard age gate makes orders 503 V3_DURABLE_CONFIRM_AGE_HARD (9999).
#[test]
fn confirm_age_hard() {
    // The hard age gate answers 503 REJECTED V3_DURABLE_CONFIRM_AGE_HARD (TCP 503, 9999).
    let dir = tempfile::tempdir().unwrap();
    let gw = age_gateway(dir.path(), "V3_DURABLE_CONFIRM_HARD_REJECT_AGE_US");
    let tok = token("age-hard");
    assert_refused(
        &age_refusal(&gw, &tok),
        503,
        "REJECTED",
        "V3_DURABLE_CONFIRM_AGE_HARD",
    );
    let r = tcp_one(gw.tcp, frame(&tok, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_REJECTED, 503, 9999);
    assert!(metric(gw.http, "gateway_v3_durable_confirm_age_hard_reject_total") >= 2.0);
}
