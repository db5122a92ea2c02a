//! Goal: a SIGKILL in the middle of load loses no order that was reported DURABLE_ACCEPTED,
//! sequence numbers continue after the restart, and nothing that was not accepted is invented.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;

const SESSIONS: usize = 3;
const WINDOW: usize = 16;

#[test]
fn sigkill_mid_load_loses_no_durable_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), &[]);
    let stop = Arc::new(AtomicBool::new(false));
    // Per session: every seq the client was told VOLATILE_ACCEPT.
    let accepted: Arc<Mutex<BTreeMap<String, BTreeSet<u64>>>> = Default::default();
    // Per session: every seq a confirm query reported DURABLE_ACCEPTED before the kill.
    let durable: Arc<Mutex<BTreeMap<String, BTreeSet<u64>>>> = Default::default();

    let senders: Vec<_> = (0..SESSIONS)
        .map(|i| {
            let (stop, accepted, port) = (stop.clone(), accepted.clone(), gw.tcp);
            std::thread::spawn(move || {
                let session = format!("restart-{i}");
                let tok = token(&session);
                let mut s = tcp_connect(port);
                let batch: Vec<Vec<u8>> = (0..WINDOW)
                    .map(|_| frame(&tok, "AAPL", 1, 1, 1, 100))
                    .collect();
                while !stop.load(Ordering::Relaxed) {
                    let Ok(()) = std::io::Write::write_all(&mut s, &batch.concat()) else {
                        break;
                    };
                    let mut buf = [0u8; 32];
                    for _ in 0..WINDOW {
                        if std::io::Read::read_exact(&mut s, &mut buf).is_err() {
                            return;
                        }
                        let r = switchyard_protocol::v3frame::Response::decode(&buf);
                        if r.status == 202 {
                            accepted
                                .lock()
                                .unwrap()
                                .entry(session.clone())
                                .or_default()
                                .insert(r.session_seq);
                        }
                    }
                }
            })
        })
        .collect();

    // Confirm poller: records what the gateway says is durable while load runs.
    let poller = {
        let (stop, accepted, durable, port) =
            (stop.clone(), accepted.clone(), durable.clone(), gw.http);
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                let snapshot: Vec<(String, Vec<u64>)> = accepted
                    .lock()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.iter().rev().take(20).copied().collect()))
                    .collect();
                for (session, seqs) in snapshot {
                    let tok = token(&session);
                    for seq in seqs {
                        let Ok((200, body)) =
                            http_get(port, &format!("/v3/orders/{session}/{seq}"), Some(&tok))
                        else {
                            continue;
                        };
                        if json(&body)["status"] == "DURABLE_ACCEPTED" {
                            durable
                                .lock()
                                .unwrap()
                                .entry(session.clone())
                                .or_default()
                                .insert(seq);
                        }
                    }
                }
            }
        })
    };

    std::thread::sleep(Duration::from_millis(1500));
    gw.kill9();
    stop.store(true, Ordering::Relaxed);
    for s in senders {
        let _ = s.join();
    }
    poller.join().unwrap();

    let accepted = accepted.lock().unwrap().clone();
    let durable = durable.lock().unwrap().clone();
    let total_durable: usize = durable.values().map(|s| s.len()).sum();
    assert!(
        accepted.values().map(|s| s.len()).sum::<usize>() > 100,
        "load too small to mean anything"
    );
    assert!(
        total_durable > 10,
        "too few durable confirmations observed: {total_durable}"
    );

    // The journal left by SIGKILL verifies (a torn tail is allowed: start-up truncates it).
    let gw = Gateway::start(dir.path(), &[]);
    for (session, seqs) in &accepted {
        let tok = token(session);
        let max = *seqs.iter().max().unwrap();
        let status = |seq: u64| {
            let (code, body) =
                http_get(gw.http, &format!("/v3/orders/{session}/{seq}"), Some(&tok)).unwrap();
            assert_eq!(code, 200, "{body}");
            json(&body)["status"].as_str().unwrap().to_string()
        };
        for &seq in durable.get(session).into_iter().flatten() {
            assert_eq!(
                status(seq),
                "DURABLE_ACCEPTED",
                "{session}/{seq} was durable before the kill"
            );
        }
        // A VOLATILE_ACCEPT that never reached the journal is lost: LOSS_SUSPECT if a later
        // seq was journaled, UNKNOWN if it was above every journaled seq.
        let mut lost = 0;
        let n = seqs.len();
        let sample = seqs
            .iter()
            .enumerate()
            .filter(|(i, _)| i % 97 == 0 || *i + 300 >= n);
        for (_, &seq) in sample {
            let s = status(seq);
            assert!(
                ["DURABLE_ACCEPTED", "LOSS_SUSPECT", "UNKNOWN"].contains(&s.as_str()),
                "{session}/{seq}: {s}"
            );
            lost += (s != "DURABLE_ACCEPTED") as usize;
        }
        eprintln!(
            "{session}: {} accepted, {} seen durable before the kill, {lost} lost in the sample",
            seqs.len(),
            durable.get(session).map_or(0, |d| d.len())
        );
        // Nothing beyond what could have been in flight is invented.
        for seq in max + WINDOW as u64 + 1..max + WINDOW as u64 + 20 {
            assert_eq!(status(seq), "UNKNOWN", "{session}/{seq} invented");
        }
        // The sequence continues past every number handed out before the crash.
        let mut s = tcp_connect(gw.tcp);
        let r = tcp_exchange(&mut s, &[frame(&tok, "AAPL", 1, 1, 1, 100)]);
        assert_eq!(r[0].status, 202, "{session}: {:?}", r[0]);
        assert!(
            r[0].session_seq > max + WINDOW as u64,
            "seq {} reused (max before {max})",
            r[0].session_seq
        );
    }
}

#[test]
fn graceful_restart_continues_sequence_without_gap() {
    let dir = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(dir.path(), &[]);
    let tok = token("graceful");
    let mut s = tcp_connect(gw.tcp);
    let frames: Vec<_> = (0..10).map(|_| frame(&tok, "AAPL", 1, 1, 1, 100)).collect();
    let r = tcp_exchange(&mut s, &frames);
    assert_eq!(
        r.iter().map(|r| r.session_seq).collect::<Vec<_>>(),
        (1..=10).collect::<Vec<_>>()
    );
    drop(s);
    gw.terminate();
    let gw = Gateway::start(dir.path(), &[]);
    for seq in 1..=10 {
        let (_, body) =
            http_get(gw.http, &format!("/v3/orders/graceful/{seq}"), Some(&tok)).unwrap();
        assert_eq!(json(&body)["status"], "DURABLE_ACCEPTED");
    }
    let mut s = tcp_connect(gw.tcp);
    let r = tcp_exchange(&mut s, &frames[..1]);
    assert_eq!(
        r[0].session_seq, 11,
        "clean shutdown: the sequence continues with no gap"
    );
}
