//! Goal: SIGKILL at random moments under `POST /orders` load, many times over, loses no order
//! that was answered at `local` durability, never creates an order twice (the idempotency
//! keys come back from the journal), and leaves a journal and an audit chain that verify.
//!
//! `CRASH_CYCLES` (default 20) sets the number of kills; `scripts/crash-soak.sh` runs more.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const CLIENTS: usize = 4;
/// The audit chain runs too: after all the kills it must still verify end to end.
const AUDIT_KEYS: (&str, &str) = ("AUDIT_HMAC_KEYS", "crash-key:crash-secret");
/// Small segments: every life of the gateway rolls a few times onto segments laid down as
/// zeros in advance (`GATEWAY_JOURNAL_PREALLOCATE`, the default), so most kills land in one,
/// with zeros after its last record, and some in the middle of a roll.
const SEGMENT_BYTES: u64 = 64 << 10;
const SEGMENTS: (&str, &str) = ("GATEWAY_JOURNAL_SEGMENT_BYTES", "65536");

/// True if the journal's last segment is one laid down in advance: a whole segment long and
/// ending in zeros (its unused space).
fn last_segment_preallocated(dir: &std::path::Path) -> bool {
    let Some(last) = switchyard_journal::list_segments(dir).unwrap().pop() else {
        return false;
    };
    let bytes = std::fs::read(&last.path).unwrap();
    bytes.len() as u64 == SEGMENT_BYTES && bytes[bytes.len() - 64..].iter().all(|&b| b == 0)
}

/// Per key: the order id the client was told at `local` (None = no such answer).
type Answers = Arc<Mutex<BTreeMap<String, Option<String>>>>;

fn post_key(port: u16, token: &str, key: &str) -> std::io::Result<HttpResponse> {
    let body = good_order();
    let req = request(
        "POST",
        "/orders",
        Some(token),
        &format!(
            "Content-Type: application/json\r\nIdempotency-Key: {key}\r\nDurability: local\r\n"
        ),
        &body,
    );
    let (status, text) = http_raw(port, &req)?;
    Ok(HttpResponse {
        status,
        headers: Vec::new(),
        body: text,
    })
}

fn account(client: usize) -> String {
    format!("crash-{client}")
}

#[test]
fn sigkill_under_orders_load_loses_nothing_answered_local() {
    let cycles: u64 = std::env::var("CRASH_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let dir = tempfile::tempdir().unwrap();
    // Pseudo-random kill moments, reproducible from the cycle number.
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next_rand = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    // Every key ever tried, with the order id answered at `local` if there was one.
    let mut history: Vec<(usize, String, Option<String>)> = Vec::new();
    let mut answered_total = 0usize;
    let mut kills_in_preallocated = 0usize;
    let mut rolls_preallocated = 0u64;
    // Keys before this index were resent after an earlier restart already.
    let mut checked = 0usize;
    // The last round only restarts and checks.
    for cycle in 0..=cycles {
        let mut gw = Gateway::start(dir.path(), &[AUDIT_KEYS, SEGMENTS]);
        // After each restart: every order answered `local` before the kill is there, and every
        // key tried before it returns its original order (or creates one, once).
        let mut known: HashMap<(usize, String), String> = HashMap::new();
        for (client, key, answered) in &history[checked..] {
            let t = token(&account(*client));
            let r = post_key(gw.http, &t, key).expect("resend after restart");
            assert_eq!(r.status, 202, "cycle {cycle} resend {key}: {}", r.body);
            let id = json(&r.body)["orderId"].as_str().unwrap().to_string();
            if let Some(a) = answered {
                assert_eq!(
                    &id, a,
                    "cycle {cycle}: key {key} answered {a} before a kill"
                );
            }
            known.insert((*client, key.clone()), id);
        }
        for ((client, key), id) in &known {
            let (code, body) = http_get(
                gw.http,
                &format!("/orders/{id}"),
                Some(&token(&account(*client))),
            )
            .unwrap();
            assert_eq!(code, 200, "cycle {cycle}: {key} → {id} missing: {body}");
        }
        // The resends made every earlier key an order: remember them as answered.
        for h in &mut history[checked..] {
            h.2 = known.get(&(h.0, h.1.clone())).cloned();
        }
        checked = history.len();
        if cycle == cycles {
            gw.terminate();
            break;
        }

        let stop = Arc::new(AtomicBool::new(false));
        let answers: Vec<Answers> = (0..CLIENTS).map(|_| Answers::default()).collect();
        let threads: Vec<_> = (0..CLIENTS)
            .map(|c| {
                let (stop, answers, port) = (stop.clone(), answers[c].clone(), gw.http);
                std::thread::spawn(move || {
                    let t = token(&account(c));
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        n += 1;
                        let key = format!("k-{cycle}-{c}-{n}");
                        answers.lock().unwrap().insert(key.clone(), None);
                        match post_key(port, &t, &key) {
                            Ok(r) if r.status == 202 => {
                                let v = json(&r.body);
                                assert_eq!(v["durability"], "local", "{}", r.body);
                                let id = v["orderId"].as_str().unwrap().to_string();
                                answers.lock().unwrap().insert(key, Some(id));
                            }
                            // 0: the connection closed before a status line (killed).
                            Ok(r) if r.status == 0 => {}
                            Ok(r) => {
                                assert!(r.status >= 500, "unexpected {}: {}", r.status, r.body)
                            }
                            Err(_) => {} // the server died mid-request
                        }
                    }
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(40 + next_rand() % 260));
        rolls_preallocated += metric(gw.http, "gateway_journal_rolls_preallocated_total") as u64;
        gw.kill9();
        kills_in_preallocated += last_segment_preallocated(dir.path()) as usize;
        stop.store(true, Ordering::Relaxed);
        for t in threads {
            t.join().unwrap();
        }
        for (c, a) in answers.iter().enumerate() {
            for (key, id) in a.lock().unwrap().iter() {
                answered_total += id.is_some() as usize;
                history.push((c, key.clone(), id.clone()));
            }
        }
    }
    assert!(
        answered_total > cycles as usize,
        "too little load to mean anything: {answered_total}"
    );
    assert!(
        kills_in_preallocated > 0 && rolls_preallocated > 0,
        "no kill landed in a segment laid down in advance ({rolls_preallocated} rolls onto one)"
    );

    // Finally: one OrderAccepted per key and per order id in the whole journal, and it verifies.
    let mut per_key: HashMap<(String, String), usize> = HashMap::new();
    let mut per_id: HashMap<String, usize> = HashMap::new();
    for r in journal_dump(dir.path()) {
        if r["type"] == "OrderAccepted" {
            let d = &r["data"];
            *per_key
                .entry((
                    d["accountId"].as_str().unwrap().into(),
                    d["idempotencyKey"].as_str().unwrap().into(),
                ))
                .or_default() += 1;
            *per_id
                .entry(d["orderId"].as_str().unwrap().into())
                .or_default() += 1;
        }
    }
    assert!(
        per_key.values().all(|&n| n == 1),
        "a key created two orders"
    );
    assert!(
        per_id.values().all(|&n| n == 1),
        "an order id was used twice"
    );
    assert_eq!(
        per_key.len(),
        history.len(),
        "every key tried became exactly one order"
    );
    let out = run_switchyard(
        &["journal", "verify", "--dir", dir.path().to_str().unwrap()],
        &[AUDIT_KEYS],
    );
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "journal verify: {report}");
    let v = json(report.trim());
    assert_eq!(v["audit"]["ok"], true, "{v}");
    assert_eq!(
        v["audit"]["checked"], v["records"],
        "every record is chained: {v}"
    );
    eprintln!(
        "{cycles} SIGKILLs ({kills_in_preallocated} inside a segment laid down in advance): {} \
         keys tried, {answered_total} answered local before a kill, none lost, one order per \
         key; journal and audit chain verify ({} records)",
        history.len(),
        v["records"]
    );
}
