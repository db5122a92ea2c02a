//! Goal: orders reach a real venue (`switchyard venue-sim`, a separate process, over TCP) and
//! come back filled, cancelled, amended or rejected; every step shows on the order's SSE
//! stream; and after venue crashes, gateway crashes, dropped, duplicated and reordered
//! reports and stalls, the gateway and the venue agree on every order, order by order.

mod common;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

/// The gateway identity the tests log on with (observer sessions use it too).
const GATEWAY_ID: &str = "it-gateway";

/// A gateway connected to the given venues (`name`, port).
fn gateway(dir: &Path, venues: &[(&str, u16)], extra: &[(&str, &str)]) -> Gateway {
    let names = venues.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(",");
    let ports: Vec<(String, String)> = venues
        .iter()
        .map(|(n, p)| {
            (
                format!("EXCHANGE_TCP_PORT_{}", n.to_ascii_uppercase()),
                p.to_string(),
            )
        })
        .collect();
    let mut env: Vec<(&str, &str)> = vec![
        ("EXCHANGE_TRANSPORT", "tcp"),
        ("EXCHANGE_TCP_HOST", "127.0.0.1"),
        ("SOR_VENUES", &names),
        ("GATEWAY_ID", GATEWAY_ID),
        ("VENUE_HEARTBEAT_MS", "200"),
        ("VENUE_RECONNECT_MAX_MS", "200"),
    ];
    env.extend(ports.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    env.extend_from_slice(extra);
    let g = Gateway::start(dir, &env);
    wait_for(30, "venue sessions up", || {
        let up = metric(g.http, "gateway_venues_up");
        if up as usize == venues.len() {
            Ok(())
        } else {
            Err(format!("{up} up"))
        }
    });
    g
}

fn post(port: u16, token: &str, path: &str, body: &str) -> HttpResponse {
    http_full(
        port,
        &request(
            "POST",
            path,
            Some(token),
            "Content-Type: application/json\r\n",
            body,
        ),
    )
}

fn wait_status(port: u16, token: &str, id: &str, want: &[&str]) -> Value {
    wait_for(30, &format!("{id} in {want:?}"), || {
        let o = order(port, token, id);
        if want.contains(&o["status"].as_str().unwrap_or("")) {
            Ok(o)
        } else {
            Err(o.to_string())
        }
    })
}

/// Waits until the order is final; if it never gets there, fails with its journaled history.
fn wait_final(port: u16, token: &str, id: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let o = order(port, token, id);
        if is_final(o["status"].as_str().unwrap_or("")) {
            return o;
        }
        if Instant::now() > deadline {
            let path = format!("/orders/{id}/events?limit=1000");
            let r = http_full(port, &request("GET", &path, Some(token), "", ""));
            let history: Vec<String> = r.json()["events"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| {
                            let d = &e["data"];
                            format!(
                                "{} {} {} {}",
                                e["type"], d["status"], d["venueSeq"], d["reason"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            panic!("{id} not final: {o}\nhistory:\n{}", history.join("\n"));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn is_final(status: &str) -> bool {
    matches!(status, "FILLED" | "CANCELED" | "REJECTED")
}

/// A read-only session at the venue: asks for the venue's view of orders.
struct Observer {
    out: TcpStream,
    lines: BufReader<TcpStream>,
    seq: u64,
}

impl Observer {
    fn connect(port: u16) -> Observer {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut o = Observer {
            lines: BufReader::new(s.try_clone().unwrap()),
            out: s,
            seq: 0,
        };
        o.send(serde_json::json!({"type":"LOGON","gatewayId":GATEWAY_ID,"lastSeq":0,"heartbeatMs":1000,"observer":true}));
        let ack = o.next_where(|m| m["type"] == "LOGON_ACK");
        assert!(ack["venue"].is_string(), "{ack}");
        o
    }

    fn send(&mut self, mut v: Value) {
        self.seq += 1;
        v["seq"] = self.seq.into();
        let mut line = serde_json::to_vec(&v).unwrap();
        line.push(b'\n');
        self.out.write_all(&line).unwrap();
    }

    fn next_where(&mut self, want: impl Fn(&Value) -> bool) -> Value {
        loop {
            let mut line = String::new();
            let n = self
                .lines
                .read_line(&mut line)
                .expect("venue answer (timeout?)");
            assert!(n > 0, "venue closed the observer session");
            let v: Value = serde_json::from_str(line.trim()).unwrap();
            if want(&v) {
                return v;
            }
        }
    }

    /// The venue's (status, filledQtyTotal) of an order.
    fn status(&mut self, id: &str) -> (String, u64) {
        self.send(serde_json::json!({"type":"STATUS","orderId":id}));
        let r = self
            .next_where(|m| m["type"] == "ER" && m["orderId"] == id && m["statusReport"] == true);
        (
            r["status"].as_str().unwrap().to_string(),
            r["filledQtyTotal"].as_u64().unwrap_or(0),
        )
    }
}

/// Cancels every open order, waits until the gateway has them all final, then checks the
/// venue says the same status and filled quantity for each.
/// Waits until venue `simA`'s session is up again after its `times`-th reconnect (up alone
/// could still be a killed session the gateway has not seen end yet).
fn wait_reconnected(g: &Gateway, times: u32) {
    wait_for(30, &format!("reconnect {times}"), || {
        let n = metric(g.http, "gateway_venue_reconnects_total{venue=\"simA\"}");
        let up = metric(g.http, "gateway_venue_session_up{venue=\"simA\"}");
        (n >= f64::from(times) && up == 1.0)
            .then_some(())
            .ok_or(format!("reconnects {n}, up {up}"))
    });
}

fn settle_and_compare(
    g: &Gateway,
    venue_port: u16,
    token: &str,
    ids: &[String],
) -> BTreeMap<String, usize> {
    for id in ids {
        let o = order(g.http, token, id);
        if !is_final(o["status"].as_str().unwrap()) {
            let r = post(g.http, token, &format!("/orders/{id}/cancel"), "");
            assert!(matches!(r.status, 202 | 409), "{}", r.body);
        }
    }
    let mut by_status = BTreeMap::new();
    let finals: Vec<Value> = ids.iter().map(|id| wait_final(g.http, token, id)).collect();
    let mut obs = Observer::connect(venue_port);
    for (id, o) in ids.iter().zip(finals) {
        let gw_status = o["status"].as_str().unwrap().to_string();
        let gw_filled = o["filledQty"].as_u64().unwrap();
        let (v_status, v_filled) = obs.status(id);
        assert_eq!(
            (gw_status.as_str(), gw_filled),
            (v_status.as_str(), v_filled),
            "order {id}: gateway {o} vs venue ({v_status}, {v_filled})"
        );
        *by_status.entry(gw_status).or_insert(0) += 1;
    }
    by_status
}

/// The account's SSE stream (`GET /stream`), read in the background.
struct Stream {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Stream {
    fn open(port: u16, token: &str) -> Stream {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "GET /stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\r\n"
        )
        .unwrap();
        let mut st = Stream { s, buf: Vec::new() };
        st.until(|ev| ev.iter().any(|(e, _, _)| e == "ready"));
        st
    }

    /// Reads until `done` holds for the (event, orderId, status) triples seen so far.
    fn until(
        &mut self,
        done: impl Fn(&[(String, String, String)]) -> bool,
    ) -> Vec<(String, String, String)> {
        let mut chunk = [0u8; 8192];
        loop {
            let events = sse_events(&String::from_utf8_lossy(&self.buf));
            if done(&events) {
                return events;
            }
            let n = self.s.read(&mut chunk).expect("stream read (timeout?)");
            assert!(
                n > 0,
                "stream ended: {}",
                String::from_utf8_lossy(&self.buf)
            );
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    /// The statuses `order_update` events gave one order, in stream order, until `last`.
    fn statuses(&mut self, id: &str, last: &str) -> Vec<String> {
        let events = self.until(|ev| {
            ev.iter()
                .any(|(e, o, st)| e == "order_update" && o == id && st == last)
        });
        let mut out: Vec<String> = Vec::new();
        for (e, o, st) in events {
            if e == "order_update" && o == id && out.last() != Some(&st) {
                out.push(st);
            }
        }
        out
    }
}

fn sse_events(text: &str) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut event = String::new();
    for line in text.lines() {
        if let Some(e) = line.strip_prefix("event: ") {
            event = e.to_string();
        } else if let Some(d) = line.strip_prefix("data: ") {
            if let Ok(v) = serde_json::from_str::<Value>(d) {
                let field = |k: &str| v[k].as_str().unwrap_or("").to_string();
                out.push((event.clone(), field("orderId"), field("status")));
            }
        }
    }
    out
}

// Goal: the documented end-to-end run — an order that sweeps several price levels goes
// ACCEPTED → SENT → PARTIALLY_FILLED → FILLED on its stream; a resting order goes
// CANCEL_REQUESTED → CANCELED; an amend is REPLACED at the venue; a reject-all venue rejects
// and gives the position back; per-venue metrics show the session.
#[test]
fn lifecycle_on_the_stream() {
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start("simA", vport, &dir.path().join("venue"), &[]);
    let g = gateway(&dir.path().join("gw"), &[("simA", vport)], &[]);
    let t = token("alice");
    let mut stream = Stream::open(g.http, &t);

    // Marketable and larger than the best level: several fills.
    let sweep = place(g.http, &t, "s-1", &order_json("BTC", "BUY", 400, None));
    let seen = stream.statuses(&sweep, "FILLED");
    assert_eq!(seen[..2], ["ACCEPTED", "SENT"], "{seen:?}");
    assert!(
        seen.iter().filter(|s| *s == "PARTIALLY_FILLED").count() >= 1,
        "{seen:?}"
    );
    assert_eq!(seen.last().map(String::as_str), Some("FILLED"), "{seen:?}");
    let o = order(g.http, &t, &sweep);
    assert_eq!(
        (o["filledQty"].as_u64(), o["venue"].as_str()),
        (Some(400), Some("simA"))
    );
    // The events API reads the journal, which the venue session's records reach a group
    // commit after the order moved in memory (and on the stream).
    wait_for(30, "the order's history journaled", || {
        let path = format!("/orders/{sweep}/events");
        let r = http_full(g.http, &request("GET", &path, Some(&t), "", ""));
        let events = r.json();
        let types: Vec<&str> = events["events"]
            .as_array()
            .map(|a| a.iter().map(|e| e["type"].as_str().unwrap_or("")).collect())
            .unwrap_or_default();
        let wanted = [
            "OrderAccepted",
            "OrderSent",
            "ExecutionReport",
            "OrderUpdated",
        ];
        match wanted.iter().find(|w| !types.contains(w)) {
            None => Ok(()),
            Some(w) => Err(format!("{w} missing: {}", r.body)),
        }
    });

    // Resting far below the market: amended at the venue, then cancelled.
    let resting = place(g.http, &t, "r-1", &order_json("BTC", "BUY", 5, Some(100)));
    wait_status(g.http, &t, &resting, &["SENT"]);
    let r = post(
        g.http,
        &t,
        &format!("/orders/{resting}/amend"),
        r#"{"qty":7,"price":101}"#,
    );
    assert_eq!(r.status, 202, "{}", r.body);
    assert_eq!(r.json()["amendPending"], true, "{}", r.body);
    wait_for(30, "amend applied", || {
        let o = order(g.http, &t, &resting);
        if o["qty"] == 7 && o["price"] == 101 && o["amendPending"] == false {
            Ok(())
        } else {
            Err(o.to_string())
        }
    });
    // One amend at a time, and none of a final order.
    let r = post(g.http, &t, &format!("/orders/{resting}/cancel"), "");
    assert_eq!(r.status, 202, "{}", r.body);
    let seen = stream.statuses(&resting, "CANCELED");
    assert_eq!(
        seen,
        ["ACCEPTED", "SENT", "CANCEL_REQUESTED", "CANCELED"],
        "{seen:?}"
    );
    let r = post(
        g.http,
        &t,
        &format!("/orders/{resting}/amend"),
        r#"{"qty":9}"#,
    );
    assert_eq!(
        (r.status, r.json()["reason"].as_str()),
        (409, Some("ORDER_FINAL")),
        "{}",
        r.body
    );

    assert_eq!(
        metric(g.http, "gateway_venue_session_up{venue=\"simA\"}"),
        1.0
    );
    assert!(metric(g.http, "gateway_order_accept_to_sent_p99_us") > 0.0);
    assert!(metric(g.http, "gateway_order_accept_to_first_fill_p99_us") > 0.0);
    assert!(metric(g.http, "gateway_venue_reports_total{venue=\"simA\"}") >= 3.0);
    let by = settle_and_compare(&g, vport, &t, &[resting, sweep]);
    assert_eq!(by.values().sum::<usize>(), 2);
}

/// Places `n` orders from `threads` threads: every third marketable (fills at once), the rest
/// resting far from the market (they stay open until cancelled). Returns the order ids.
fn load(port: u16, token: &str, tag: &str, n: usize, threads: usize) -> Vec<String> {
    let per = n / threads;
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (token, tag) = (token.to_string(), tag.to_string());
            std::thread::spawn(move || {
                (0..per)
                    .map(|i| {
                        let body = match i % 3 {
                            0 => {
                                order_json("BTC", if i % 2 == 0 { "BUY" } else { "SELL" }, 3, None)
                            }
                            1 => order_json("ETH", "BUY", 2 + i as u64 % 5, Some(1_000 + i as u64)),
                            _ => order_json("SOL", "SELL", 4, Some(200_000_000 + i as u64)),
                        };
                        place(port, &token, &format!("{tag}-{t}-{i}"), &body)
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect()
}

// Goal: the venue is killed (SIGKILL) and restarted from its state directory in the middle of
// the load; the gateway reconnects, recovers what it missed, and in the end every order has
// the same status and filled quantity on the gateway and on the venue.
#[test]
fn venue_crash_under_load_ends_in_agreement() {
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let state = dir.path().join("venue");
    let mut venue = Venue::start("simA", vport, &state, &[]);
    let g = gateway(&dir.path().join("gw"), &[("simA", vport)], &[]);
    let t = token("alice");

    let mut ids = load(g.http, &t, "a", 90, 3);
    venue.kill9();
    // Orders accepted while the venue is down wait for it.
    ids.extend(load(g.http, &t, "b", 60, 3));
    let mut venue = Venue::start("simA", vport, &state, &[]);
    // The second crash must hit a session the gateway has re-established (else, with the
    // load done before its reconnect backoff ends, it would only ever reconnect once).
    wait_reconnected(&g, 1);
    ids.extend(load(g.http, &t, "c", 90, 3));
    venue.kill9();
    let _venue = Venue::start("simA", vport, &state, &[]);
    wait_reconnected(&g, 2);
    let by = settle_and_compare(&g, vport, &t, &ids);
    assert_eq!(by.values().sum::<usize>(), ids.len());
    assert!(by.get("FILLED").copied().unwrap_or(0) > 0, "{by:?}");
    assert!(by.get("CANCELED").copied().unwrap_or(0) > 0, "{by:?}");
}

// Goal: after a reconnect the gateway asks the venue for the status of every open order, and
// each answer is a report the venue queues for the session; with more open orders than the
// venue's outbound queue holds, all at once would overflow it, the venue would close the
// session as a slow consumer, and every logon would start over (the soak found this with
// 450 000 resting orders). The sweep goes out paced by its answers (`VENUE_STATUS_WINDOW`):
// one reconnect, and every order answered. Scaled down: a 64-message queue, 400 orders.
#[test]
fn status_sweep_after_reconnect_fits_the_venue_queue() {
    const ORDERS: usize = 400;
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let state = dir.path().join("venue");
    let venue_env = [("EXCHANGE_SIM_OUTBOUND_QUEUE", "64")];
    let mut venue = Venue::start("simA", vport, &state, &venue_env);
    let g = gateway(
        &dir.path().join("gw"),
        &[("simA", vport)],
        &[("VENUE_STATUS_WINDOW", "16")],
    );
    let t = token("alice");
    for i in 0..ORDERS {
        let body = order_json("SOL", "SELL", 1, Some(200_000_000 + i as u64));
        place(g.http, &t, &format!("rest-{i}"), &body);
    }
    let reports = |g: &Gateway| metric(g.http, "gateway_venue_reports_total{venue=\"simA\"}");
    wait_for(30, "every order acknowledged by the venue", || {
        let n = reports(&g);
        (n >= ORDERS as f64).then_some(()).ok_or(n.to_string())
    });
    venue.kill9();
    let _venue = Venue::start("simA", vport, &state, &venue_env);
    let answers =
        |g: &Gateway| metric(g.http, "gateway_venue_status_reports_total{venue=\"simA\"}");
    wait_for(30, "every open order's status answered", || {
        let n = answers(&g);
        (n >= ORDERS as f64).then_some(()).ok_or(n.to_string())
    });
    // The session stays: one reconnect (the venue restart), none after the sweep.
    std::thread::sleep(Duration::from_secs(1));
    let reconnects = "gateway_venue_reconnects_total{venue=\"simA\"}";
    assert_eq!(metric(g.http, reconnects), 1.0);
    assert_eq!(
        metric(g.http, "gateway_venue_session_up{venue=\"simA\"}"),
        1.0
    );
    assert_eq!(answers(&g), ORDERS as f64, "one answer per open order");
}

// Goal: a venue that duplicates, reorders and loses reports still ends in agreement with the
// gateway: duplicates are dropped by number, lost reports are asked for again (RESEND),
// reordered ones are harmless; and one that drops the connection every 40 messages is
// reconnected to and caught up through the logon's sequence number.
#[test]
fn wire_faults_end_in_agreement() {
    let faults: [&[(&str, &str)]; 2] = [
        &[
            ("EXCHANGE_SIM_DUPLICATE_PCT", "20"),
            ("EXCHANGE_SIM_REORDER_PCT", "20"),
            ("EXCHANGE_SIM_LOSE_PCT", "10"),
        ],
        &[
            ("EXCHANGE_SIM_DROP_AFTER", "40"),
            ("EXCHANGE_SIM_LOSE_PCT", "5"),
        ],
    ];
    for (round, env) in faults.into_iter().enumerate() {
        let dir = tempfile::tempdir().unwrap();
        let vport = free_port();
        let _venue = Venue::start("simA", vport, &dir.path().join("venue"), env);
        let g = gateway(&dir.path().join("gw"), &[("simA", vport)], &[]);
        let t = token("alice");
        let ids = load(g.http, &t, "f", 150, 3);
        let by = settle_and_compare(&g, vport, &t, &ids);
        assert_eq!(by.values().sum::<usize>(), ids.len());
        let m = |name: &str| metric(g.http, &format!("{name}{{venue=\"simA\"}}"));
        if round == 0 {
            assert!(m("gateway_venue_reports_duplicate_total") > 0.0);
            assert!(m("gateway_venue_resend_requests_total") > 0.0);
        } else {
            assert!(m("gateway_venue_reconnects_total") > 0.0);
        }
    }
}

// Goal: a venue that stops talking (no reports, no heartbeats) is noticed within three
// heartbeat intervals, the session reconnects, and the orders still complete in agreement.
// (The venue stalls a connection after every 60 lines it writes; no market makers, whose
// top-of-book lines would use that budget up before the orders' reports.)
#[test]
fn stalled_venue_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start(
        "simA",
        vport,
        &dir.path().join("venue"),
        &[
            ("EXCHANGE_SIM_STALL_AFTER", "10"),
            ("EXCHANGE_SIM_STALL_MS", "3000"),
        ],
    );
    let g = gateway(&dir.path().join("gw"), &[("simA", vport)], &[]);
    let t = token("alice");
    let ids = load(g.http, &t, "s", 30, 1);
    wait_for(30, "a reconnect after the stall", || {
        let r = metric(g.http, "gateway_venue_reconnects_total{venue=\"simA\"}");
        (r >= 1.0).then_some(()).ok_or(r.to_string())
    });
    let by = settle_and_compare(&g, vport, &t, &ids);
    assert_eq!(by.values().sum::<usize>(), ids.len());
}

// Goal: each order's venue is journaled — after a gateway SIGKILL and restart, a cancel goes
// to the venue that holds the order (two venues, explicit routes), and venue report numbers
// continue without replaying what was applied.
#[test]
fn gateway_restart_cancels_at_the_right_venue() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    let _a = Venue::start("simA", pa, &dir.path().join("va"), &[]);
    let _b = Venue::start("simB", pb, &dir.path().join("vb"), &[]);
    let routes = [("SOR_SYMBOL_ROUTES", "ETH=simA,SOL=simB")];
    let gw_dir = dir.path().join("gw");
    let mut g = gateway(&gw_dir, &[("simA", pa), ("simB", pb)], &routes);
    let t = token("alice");
    let on_a = place(g.http, &t, "k-a", &order_json("ETH", "BUY", 2, Some(1_000)));
    let on_b = place(
        g.http,
        &t,
        "k-b",
        &order_json("SOL", "SELL", 2, Some(200_000_000)),
    );
    for id in [&on_a, &on_b] {
        wait_status(g.http, &t, id, &["SENT"]);
    }
    assert_eq!(order(g.http, &t, &on_b)["venue"], "simB");
    g.kill9();
    let g = gateway(&gw_dir, &[("simA", pa), ("simB", pb)], &routes);
    assert_eq!(order(g.http, &t, &on_b)["venue"], "simB");
    assert_eq!(order(g.http, &t, &on_a)["venue"], "simA");
    let by = settle_and_compare(&g, pb, &t, std::slice::from_ref(&on_b));
    assert_eq!(by.get("CANCELED"), Some(&1), "{by:?}");
    let by = settle_and_compare(&g, pa, &t, std::slice::from_ref(&on_a));
    assert_eq!(by.get("CANCELED"), Some(&1), "{by:?}");
    assert_eq!(
        metric(
            g.http,
            "gateway_venue_reports_duplicate_total{venue=\"simA\"}"
        ),
        0.0
    );
}

// Goal: a venue that rejects everything: the order ends REJECTED with its reason journaled,
// and the position it reserved is given back (a position-limited account can trade again).
#[test]
fn rejects_release_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start(
        "simA",
        vport,
        &dir.path().join("venue"),
        &[("EXCHANGE_SIM_REJECT_ALL", "1")],
    );
    let g = gateway(
        &dir.path().join("gw"),
        &[("simA", vport)],
        &[("V3_RISK_MAX_ABS_POSITION_QTY", "10")],
    );
    let t = token("alice");
    for i in 0..3 {
        let id = place(
            g.http,
            &t,
            &format!("rj-{i}"),
            &order_json("ETH", "BUY", 10, Some(1_000)),
        );
        wait_status(g.http, &t, &id, &["REJECTED"]);
    }
}

// Goal: a symbol that trades on two venues goes to the better price in their top of book (a
// BUY to the lower ask, a SELL to the higher bid), and to the other venue when one is down.
#[test]
fn best_price_routing_and_failover() {
    let dir = tempfile::tempdir().unwrap();
    let (pa, pb) = (free_port(), free_port());
    // simA quotes BTC around 60 000.00, simB around 50 000.00: simB has the lower ask, simA
    // the higher bid.
    let mut a = Venue::start(
        "simA",
        pa,
        &dir.path().join("va"),
        &[("EXCHANGE_SIM_SYMBOLS", "BTC=6000000")],
    );
    let _b = Venue::start(
        "simB",
        pb,
        &dir.path().join("vb"),
        &[("EXCHANGE_SIM_SYMBOLS", "BTC=5000000")],
    );
    let routes = [("SOR_SYMBOL_ROUTES", "BTC=simA|simB")];
    let g = gateway(
        &dir.path().join("gw"),
        &[("simA", pa), ("simB", pb)],
        &routes,
    );
    let t = token("alice");
    // Quotes arrive with the first top-of-book lines after logon.
    let mut n = 0;
    let mut venue_of = |side: &str| {
        n += 1;
        let id = place(
            g.http,
            &t,
            &format!("bp-{n}"),
            &order_json("BTC", side, 1, None),
        );
        order(g.http, &t, &id)["venue"]
            .as_str()
            .unwrap()
            .to_string()
    };
    wait_for(30, "quotes from both venues", || {
        let (buy, sell) = (venue_of("BUY"), venue_of("SELL"));
        if (buy.as_str(), sell.as_str()) == ("simB", "simA") {
            Ok(())
        } else {
            Err(format!("BUY → {buy}, SELL → {sell}"))
        }
    });
    a.kill9();
    wait_for(30, "simA seen down", || {
        let up = metric(g.http, "gateway_venue_session_up{venue=\"simA\"}");
        (up == 0.0).then_some(()).ok_or(up.to_string())
    });
    assert_eq!(venue_of("SELL"), "simB", "failover while simA is down");
}

// Goal: `switchyard demo` places, amends and cancels orders across accounts and symbols at a
// gentle rate against a live stack, so the stack shows fills, amends and cancels.
#[test]
fn demo_traffic_places_amends_and_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let vport = free_port();
    let _venue = Venue::start("simA", vport, &dir.path().join("venue"), &[]);
    let g = gateway(&dir.path().join("gw"), &[("simA", vport)], &[]);
    let out = run_switchyard(
        &[
            "demo",
            "--target",
            &format!("127.0.0.1:{}", g.http),
            "--rate",
            "40",
            "--duration",
            "4",
            "--accounts",
            "3",
        ],
        &[("JWT_HS256_SECRET", SECRET)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout);
    for action in ["place", "amend", "cancel"] {
        assert!(
            lines
                .lines()
                .any(|l| l.starts_with(action) && l.contains("→ 202")),
            "no successful {action}:\n{lines}"
        );
    }
    wait_for(30, "fills, amends and cancels on the gateway", || {
        let filled = metric(g.http, "gateway_order_accept_to_first_fill_p50_us");
        let amended = metric(g.http, "gateway_orders_amended_total");
        if filled > 0.0 && amended > 0.0 {
            Ok(())
        } else {
            Err(format!("first fill p50 {filled}, amended {amended}"))
        }
    });
}
