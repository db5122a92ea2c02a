//! Unit tests of the hub's logic, driving the dispatcher step by step (no thread, no timing).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use serde_json::Value;

use super::*;

fn limits() -> Limits {
    Limits {
        account_ring: 1_000,
        order_ring: 64,
        dispatch_queue: 10_000,
        client_queue: 4_096,
        client_queue_bytes: 1 << 20,
        max_clients: 100,
        log_events: 100_000,
        log_bytes: 32 << 20,
    }
}

fn hub(l: Limits) -> (Hub, Dispatcher) {
    Hub::unstarted(l, Arc::new(SseMetrics::default()))
}

/// Runs the dispatcher until the publish queue is empty.
fn settle(d: &mut Dispatcher) {
    while d.step(false) {}
}

fn acct(a: &str) -> Filter {
    Filter::Account(a.into())
}

fn order(a: &str, o: &str) -> Filter {
    Filter::Order {
        account: a.into(),
        order_id: o.into(),
    }
}

fn data(i: u64) -> Bytes {
    Bytes::from(format!("{{\"n\":{i}}}"))
}

/// What a subscription has ready now, without waiting.
fn drain(sub: &mut Subscription) -> Vec<Delivery> {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    let mut out = Vec::new();
    while let Poll::Ready(Some(d)) = sub.poll_next(&mut cx) {
        out.push(d);
    }
    out
}

/// Whether the subscription has ended (yields `None`).
fn ended(sub: &mut Subscription) -> bool {
    let mut cx = Context::from_waker(futures_util::task::noop_waker_ref());
    matches!(sub.poll_next(&mut cx), Poll::Ready(None))
}

/// (id, name, data) of events; notices get id 0.
fn view(ds: &[Delivery]) -> Vec<(u64, &'static str, Value)> {
    ds.iter()
        .map(|d| match d {
            Delivery::Live(e) | Delivery::Replayed(e) => {
                (e.id, e.name, serde_json::from_slice(&e.data).unwrap())
            }
            Delivery::Notice { name, data } => (0, *name, serde_json::from_slice(data).unwrap()),
        })
        .collect()
}

fn ids(ds: &[Delivery]) -> Vec<u64> {
    view(ds).into_iter().map(|(id, _, _)| id).collect()
}

/// Publishes `n` events on (account, order) and dispatches them; returns their ids.
fn publish_n(h: &Hub, d: &mut Dispatcher, account: &str, order: Option<&str>, n: u64) -> Vec<u64> {
    let first = h.next_id();
    for i in 0..n {
        h.publish(account, order, "order_update", data(i));
    }
    settle(d);
    (first..first + n).collect()
}

// Goal: events reach exactly the subscribers of their account and order, in publish order,
// with increasing ids shared by all streams.
#[test]
fn live_delivery_is_ordered_and_scoped() {
    let (h, mut d) = hub(limits());
    let mut a = h.subscribe(acct("A"), None).unwrap();
    let mut a1 = h.subscribe(order("A", "o1"), None).unwrap();
    let mut b = h.subscribe(acct("B"), None).unwrap();
    // Same order id under another account: must not see A's order.
    let mut b1 = h.subscribe(order("B", "o1"), None).unwrap();
    h.publish("A", Some("o1"), "order_snapshot", data(1));
    h.publish("B", Some("o3"), "order_update", data(2));
    h.publish("A", Some("o2"), "order_durable", data(3));
    h.publish("A", None, "execution_report", data(4));
    h.publish("A", Some("o1"), "order_update", data(5));
    settle(&mut d);
    let va = view(&drain(&mut a));
    let ns: Vec<_> = va
        .iter()
        .map(|(_, _, v)| v["n"].as_u64().unwrap())
        .collect();
    assert_eq!(ns, [1, 3, 4, 5]);
    assert!(
        va.windows(2).all(|w| w[0].0 < w[1].0),
        "ids increase: {va:?}"
    );
    let names: Vec<_> = va.iter().map(|(_, n, _)| *n).collect();
    assert_eq!(
        names,
        [
            "order_snapshot",
            "order_durable",
            "execution_report",
            "order_update"
        ]
    );
    let v1 = view(&drain(&mut a1));
    assert_eq!(
        v1.iter().map(|(id, _, _)| *id).collect::<Vec<_>>(),
        [va[0].0, va[3].0]
    );
    let vb = view(&drain(&mut b));
    assert_eq!(vb.len(), 1);
    assert!(vb[0].0 > va[0].0 && vb[0].0 < va[1].0, "one global counter");
    assert!(drain(&mut b1).is_empty());
    assert_eq!(h.metrics().dispatched.load(Ordering::Relaxed), 5);
}

// Goal: the frame is `id/event/data`, multi-line data becomes several `data:` lines (a line
// ends at `\n`, `\r` or `\r\n`; empty lines stay), and a frame is never longer than what
// it counts against a subscriber's byte bound.
#[test]
fn frames_carry_id_event_and_data_lines() {
    assert_eq!(
        render_frame(Some(7), "order_update", b"{\"a\":1}"),
        b"id: 7\nevent: order_update\ndata: {\"a\":1}\n\n"
    );
    assert_eq!(
        render_frame(None, "ready", b"{\n\"a\":1\r\n}"),
        b"event: ready\ndata: {\ndata: \"a\":1\ndata: }\n\n"
    );
    assert_eq!(
        render_frame(None, "x", b"a\rb\n\nc\r"),
        b"event: x\ndata: a\ndata: b\ndata: \ndata: c\ndata: \n\n"
    );
    let (h, mut d) = hub(limits());
    let mut s = h.subscribe(acct("A"), None).unwrap();
    h.publish(
        "A",
        None,
        "order_update",
        Bytes::from_static(b"{\"x\":[1,2]}"),
    );
    settle(&mut d);
    let got = drain(&mut s);
    let Delivery::Live(e) = &got[0] else {
        panic!("expected a live event")
    };
    assert!(e.frame().len() <= e.frame_size());
    assert_eq!(
        e.frame(),
        Bytes::from(format!(
            "id: {}\nevent: order_update\ndata: {{\"x\":[1,2]}}\n\n",
            e.id
        ))
    );
    assert_eq!(e.data, Bytes::from_static(b"{\"x\":[1,2]}"));
    assert_eq!((e.account(), e.order_id()), ("A", None));
}

// Goal: Last-Event-ID n replays exactly the scope's events after n, then live ones follow
// with neither gap nor duplicate.
#[test]
fn replay_after_last_event_id_is_exact() {
    let (h, mut d) = hub(limits());
    let ids_a = publish_n(&h, &mut d, "A", Some("o1"), 10);
    publish_n(&h, &mut d, "B", None, 3);
    let mut s = h.subscribe(acct("A"), Some(ids_a[3])).unwrap();
    let mut o = h.subscribe(order("A", "o1"), Some(ids_a[7])).unwrap();
    let more = publish_n(&h, &mut d, "A", Some("o1"), 2);
    let got = drain(&mut s);
    assert!(matches!(got[0], Delivery::Replayed(_)));
    assert!(matches!(got[6], Delivery::Live(_)));
    let mut want = ids_a[4..].to_vec();
    want.extend(&more);
    assert_eq!(ids(&got), want);
    assert_eq!(s.last_event_id(), *more.last().unwrap());
    let mut want = ids_a[8..].to_vec();
    want.extend(&more);
    assert_eq!(ids(&drain(&mut o)), want);
    // Up to date: nothing to replay.
    let mut t = h.subscribe(acct("A"), Some(*more.last().unwrap())).unwrap();
    assert!(drain(&mut t).is_empty());
    assert_eq!(h.metrics().replayed.load(Ordering::Relaxed), 6 + 2);
}

// Goal: a client whose position is older than what the ring still holds gets one
// `resync_required` with the reference's fields and no id, then live events (no replay).
#[test]
fn resync_when_the_ring_dropped_events() {
    let l = Limits {
        account_ring: 4,
        order_ring: 2,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let id = publish_n(&h, &mut d, "A", Some("o1"), 10);
    let mut s = h.subscribe(acct("A"), Some(id[1])).unwrap();
    let got = drain(&mut s);
    let v = view(&got);
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].0, v[0].1), (0, "resync_required"));
    assert_eq!(
        v[0].2,
        serde_json::json!({
            "scope": "account", "id": "A", "lastEventId": id[1],
            "oldestAvailableId": id[6], "eventsEndpoint": "/accounts/A/events"
        })
    );
    let live = publish_n(&h, &mut d, "A", Some("o1"), 1);
    assert_eq!(ids(&drain(&mut s)), live);
    // Exactly at the newest dropped id (the live event pushed id[6] out): exact replay.
    let mut s = h.subscribe(acct("A"), Some(id[6])).unwrap();
    let mut want = id[7..].to_vec();
    want.extend(&live);
    assert_eq!(ids(&drain(&mut s)), want);
    // Order scope: its own ring and fields.
    let mut o = h.subscribe(order("A", "o1"), Some(id[7])).unwrap();
    let v = view(&drain(&mut o));
    assert_eq!(v[0].1, "resync_required");
    assert_eq!(v[0].2["scope"], "order");
    assert_eq!(v[0].2["id"], "o1");
    assert_eq!(v[0].2["oldestAvailableId"], id[9]);
    assert_eq!(v[0].2["eventsEndpoint"], "/orders/o1/events");
}

// Goal: positions this process cannot vouch for (before its first id, or never issued) are
// answered with a resync; none or 0 is live only.
#[test]
fn unknown_positions_resync_and_zero_is_live_only() {
    let (h, mut d) = hub(limits());
    let id = publish_n(&h, &mut d, "A", None, 3);
    for n in [5, id[0] - 10, id[2] + 1, u64::MAX] {
        let mut s = h.subscribe(acct("A"), Some(n)).unwrap();
        let v = view(&drain(&mut s));
        assert_eq!(v.len(), 1, "n={n}");
        assert_eq!(v[0].1, "resync_required", "n={n}");
        assert_eq!(v[0].2["oldestAvailableId"], id[0]);
    }
    // An account with no events: a position from this process is fine, nothing to replay.
    let mut s = h.subscribe(acct("Z"), Some(id[2])).unwrap();
    assert!(drain(&mut s).is_empty());
    for last in [None, Some(0)] {
        let mut s = h.subscribe(acct("A"), last).unwrap();
        assert!(drain(&mut s).is_empty());
        let live = publish_n(&h, &mut d, "A", None, 1);
        assert_eq!(ids(&drain(&mut s)), live);
        assert_eq!(s.last_event_id(), live[0]);
    }
}

// Goal: the replay log is bounded in events and bytes; evicting an event prunes its rings,
// a scope whose last event left is forgotten (bounded tracking), and a client of a forgotten
// scope is told to resync instead of silently getting nothing.
#[test]
fn log_eviction_bounds_memory_and_forgets_scopes() {
    let l = Limits {
        log_events: 5,
        log_bytes: 5 * (EVENT_OVERHEAD + 64),
        ..limits()
    };
    let (h, mut d) = hub(l);
    let mut first = Vec::new();
    for i in 0..20 {
        first.push(publish_n(&h, &mut d, &format!("acct{i}"), Some("o"), 1)[0]);
    }
    let m = h.metrics();
    assert!(m.log_events.load(Ordering::Relaxed) <= 5);
    assert!(m.log_bytes.load(Ordering::Relaxed) as usize <= l.log_bytes);
    assert!(m.tracked_accounts.load(Ordering::Relaxed) <= 5);
    assert!(m.tracked_orders.load(Ordering::Relaxed) <= 5);
    let mut gone = h.subscribe(acct("acct0"), Some(first[0] - 1)).unwrap();
    let v = view(&drain(&mut gone));
    assert_eq!((v.len(), v[0].1), (1, "resync_required"));
    let mut gone = h
        .subscribe(order("acct0", "o"), Some(first[0] - 1))
        .unwrap();
    assert_eq!(view(&drain(&mut gone))[0].1, "resync_required");
    let mut kept = h.subscribe(acct("acct19"), Some(first[19] - 1)).unwrap();
    assert_eq!(ids(&drain(&mut kept)), [first[19]]);
    // A forgotten scope that comes back remembers what it lost.
    let again = publish_n(&h, &mut d, "acct0", None, 1);
    let mut s = h.subscribe(acct("acct0"), Some(first[0] - 1)).unwrap();
    assert_eq!(view(&drain(&mut s))[0].1, "resync_required");
    let mut s = h.subscribe(acct("acct0"), Some(first[0])).unwrap();
    assert_eq!(ids(&drain(&mut s)), again);
    // Big events are bounded by bytes too.
    let big = Bytes::from(format!("\"{}\"", "x".repeat(400)));
    for _ in 0..10 {
        h.publish("A", None, "order_update", big.clone());
    }
    settle(&mut d);
    assert!(m.log_bytes.load(Ordering::Relaxed) as usize <= l.log_bytes);
}

// Goal: a subscriber whose queue is full is cut off (counted), gets a final resync_required
// telling where it stopped, and ends; the others keep receiving everything; the dispatcher
// never waits for it.
#[test]
fn slow_consumer_is_cut_off_and_others_continue() {
    let l = Limits {
        client_queue: 4,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let mut slow = h.subscribe(acct("A"), None).unwrap();
    let start = slow.last_event_id();
    let mut fast = h.subscribe(acct("A"), None).unwrap();
    let mut seen = Vec::new();
    let mut all = Vec::new();
    for _ in 0..10 {
        all.extend(publish_n(&h, &mut d, "A", None, 1));
        seen.extend(ids(&drain(&mut fast)));
    }
    assert_eq!(seen, all);
    assert_eq!(
        h.metrics()
            .slow_consumer_disconnects
            .load(Ordering::Relaxed),
        1
    );
    assert!(slow.was_cut_off());
    let v = view(&drain(&mut slow));
    assert_eq!(v.len(), 1, "queued events are discarded: {v:?}");
    assert_eq!(v[0].1, "resync_required");
    assert_eq!(v[0].2["reason"], "SLOW_CONSUMER");
    assert_eq!(v[0].2["lastEventId"], start);
    assert_eq!(v[0].2["oldestAvailableId"], all[0]);
    assert!(ended(&mut slow));
    // It reconnects from where it stopped and gets exactly what it missed.
    let mut back = h.subscribe(acct("A"), Some(start)).unwrap();
    assert_eq!(ids(&drain(&mut back)), all);
}

// Goal: the byte cap cuts off a subscriber as the count cap does.
#[test]
fn slow_consumer_byte_cap() {
    let l = Limits {
        client_queue_bytes: 2048,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let mut slow = h.subscribe(acct("A"), None).unwrap();
    let mut fast = h.subscribe(acct("A"), None).unwrap();
    let big = Bytes::from(format!("\"{}\"", "x".repeat(900)));
    let mut got = 0;
    for _ in 0..4 {
        h.publish("A", None, "order_update", big.clone());
        settle(&mut d);
        got += drain(&mut fast).len();
    }
    assert_eq!(got, 4);
    let v = view(&drain(&mut slow));
    assert_eq!(v.last().unwrap().2["reason"], "SLOW_CONSUMER");
    assert!(ended(&mut slow));
}

// Goal: a full dispatch queue drops (and counts) the event, and every live subscriber of
// the account gets a resync_required carrying an id after everything queued before; a
// reconnect from before that id is told to resync, from it on replays normally.
#[test]
fn dispatch_overflow_is_never_silent() {
    let l = Limits {
        dispatch_queue: 4,
        ..limits()
    };
    let (h, mut d) = hub(l);
    // An account in another loss slot must not be disturbed.
    let other = (0..100)
        .map(|i| format!("other{i}"))
        .find(|o| h.shared.loss_slot(o) != h.shared.loss_slot("A"))
        .unwrap();
    let mut a = h.subscribe(acct("A"), None).unwrap();
    let start = a.last_event_id();
    let mut ao = h.subscribe(order("A", "o9"), None).unwrap();
    let mut b = h.subscribe(acct(&other), None).unwrap();
    for i in 0..6 {
        h.publish("A", Some("o1"), "order_update", data(i));
    }
    assert_eq!(h.metrics().dropped.load(Ordering::Relaxed), 2);
    assert_eq!(h.metrics().published.load(Ordering::Relaxed), 4);
    settle(&mut d);
    let v = view(&drain(&mut a));
    assert_eq!(v.len(), 5, "{v:?}");
    let marker = v[4].0;
    assert_eq!(v[4].1, "resync_required");
    assert_eq!(v[4].2["reason"], "DISPATCH_OVERFLOW");
    assert!(v[..4].iter().all(|e| e.0 < marker));
    // The order stream of the same account is told too, though its order had no events.
    let vo = view(&drain(&mut ao));
    assert_eq!((vo.len(), vo[0].0, vo[0].1), (1, marker, "resync_required"));
    assert_eq!(vo[0].2["scope"], "order");
    assert!(drain(&mut b).is_empty());
    let mut re = h.subscribe(acct("A"), Some(start)).unwrap();
    assert_eq!(view(&drain(&mut re))[0].1, "resync_required");
    let mut re = h.subscribe(acct("A"), Some(marker)).unwrap();
    assert!(drain(&mut re).is_empty());
    let live = publish_n(&h, &mut d, "A", None, 1);
    assert_eq!(ids(&drain(&mut re)), live);
}

// Goal: SSE_MAX_CLIENTS is enforced and slots come back when subscriptions end; close()
// ends every stream (not as a cut-off) and refuses new ones.
#[test]
fn client_limit_and_close() {
    let l = Limits {
        max_clients: 2,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let s1 = h.subscribe(acct("A"), None).unwrap();
    let mut s2 = h.subscribe(order("A", "o"), None).unwrap();
    assert_eq!(
        h.subscribe(acct("B"), None).err(),
        Some(SubscribeError::TooMany)
    );
    assert_eq!(h.metrics().refused.load(Ordering::Relaxed), 1);
    assert_eq!(h.metrics().clients_account.load(Ordering::Relaxed), 1);
    assert_eq!(h.metrics().clients_order.load(Ordering::Relaxed), 1);
    drop(s1);
    assert_eq!(h.clients(), 1);
    assert_eq!(h.metrics().clients_account.load(Ordering::Relaxed), 0);
    let mut s3 = h.subscribe(acct("B"), None).unwrap();
    // Unregistered on drop: publishing to A finds no subscriber left.
    assert!(!h.shared.state.lock().account_subs.contains_key("A"));
    publish_n(&h, &mut d, "B", None, 1);
    assert_eq!(drain(&mut s3).len(), 1);
    h.close();
    assert!(ended(&mut s2) && ended(&mut s3));
    assert!(!s3.was_cut_off());
    drop((s2, s3));
    assert_eq!(
        h.subscribe(acct("A"), None).err(),
        Some(SubscribeError::Closed)
    );
    assert_eq!(h.clients(), 0);
}

// Goal: with the dispatcher on its own thread and publishers racing subscribers, a
// subscription made at any moment with any Last-Event-ID sees exactly the events after it,
// without gap or duplicate (replay and live join atomically).
#[test]
fn replay_and_live_join_without_gap_under_concurrency() {
    let (h, d) = hub(Limits {
        account_ring: 10_000,
        ..limits()
    });
    let h = Arc::new(h);
    std::thread::spawn(move || d.run());
    let mut witness = h.subscribe(acct("A"), None).unwrap();
    const N: u64 = 3_000;
    let publisher = {
        let h = h.clone();
        std::thread::spawn(move || {
            for i in 0..N {
                h.publish("A", Some("o"), "order_update", data(i));
                if i % 64 == 0 {
                    std::thread::yield_now();
                }
            }
        })
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut seen = Vec::new();
        let mut checks = 0;
        while (seen.len() as u64) < N {
            let Some(Delivery::Live(e)) = witness.next().await else {
                panic!("witness ended")
            };
            seen.push(e.id);
            // Every 300 events, join from a position already seen and follow to the end.
            if seen.len() % 300 == 0 && (seen.len() as u64) < N {
                let from = seen.len() - 150;
                let mut s = h.subscribe(acct("A"), Some(seen[from - 1])).unwrap();
                let want = 300.min(N as usize - from);
                let mut got = Vec::with_capacity(want);
                while got.len() < want {
                    match s.next().await.unwrap() {
                        Delivery::Live(e) | Delivery::Replayed(e) => got.push(e.id),
                        Delivery::Notice { name, .. } => panic!("unexpected {name}"),
                    }
                }
                let n0 = seen[from];
                let expect: Vec<u64> = (n0..n0 + want as u64).collect();
                assert_eq!(got, expect);
                checks += 1;
            }
        }
        assert!(seen.windows(2).all(|w| w[1] == w[0] + 1));
        assert!(checks >= 5);
    });
    publisher.join().unwrap();
    assert_eq!(h.metrics().dropped.load(Ordering::Relaxed), 0);
}

// Goal: an all-accounts subscription (the operators' `GET /stream?scope=all`) gets every
// event of every account, in id order; the account and order subscriptions beside it still
// see only their own account; dropping it unregisters it and its gauge.
#[test]
fn all_scope_sees_every_account_and_others_stay_scoped() {
    let (h, mut d) = hub(limits());
    let mut all = h.subscribe(Filter::All, None).unwrap();
    let mut a = h.subscribe(acct("A"), None).unwrap();
    let mut b1 = h.subscribe(order("B", "o1"), None).unwrap();
    h.publish("A", Some("o1"), "order_update", data(1));
    h.publish("B", Some("o1"), "execution_report", data(2));
    h.publish("C", None, "order_durable", data(3));
    settle(&mut d);
    let v = view(&drain(&mut all));
    let ns: Vec<_> = v.iter().map(|(_, _, x)| x["n"].as_u64().unwrap()).collect();
    assert_eq!(ns, [1, 2, 3]);
    assert!(v.windows(2).all(|w| w[0].0 < w[1].0), "ids increase: {v:?}");
    assert_eq!(ids(&drain(&mut a)), [v[0].0]);
    assert_eq!(ids(&drain(&mut b1)), [v[1].0]);
    assert_eq!(all.last_event_id(), v[2].0);
    assert_eq!(all.filter().scope(), "all");
    assert_eq!(h.metrics().clients_account.load(Ordering::Relaxed), 2);
    drop(all);
    assert!(h.shared.state.lock().all_subs.is_empty());
    assert_eq!(h.metrics().clients_account.load(Ordering::Relaxed), 1);
    assert_eq!(h.clients(), 2);
}

// Goal: an all-accounts subscription replays every account's events after Last-Event-ID from
// the log, exactly, then live; a position the log no longer covers, or one this process never
// issued, is answered with one resync_required (scope "all", no events endpoint).
#[test]
fn all_scope_replays_from_the_log_or_resyncs() {
    let l = Limits {
        account_ring: 2,
        log_events: 8,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let a = publish_n(&h, &mut d, "A", None, 3);
    let b = publish_n(&h, &mut d, "B", Some("o1"), 3);
    // The account ring of A holds only 2 events, but the log still has all 6.
    let mut s = h.subscribe(Filter::All, Some(a[0])).unwrap();
    let mut want = a[1..].to_vec();
    want.extend(&b);
    let got = drain(&mut s);
    assert!(got.iter().all(|x| matches!(x, Delivery::Replayed(_))));
    assert_eq!(ids(&got), want);
    let live = publish_n(&h, &mut d, "C", None, 1);
    assert_eq!(ids(&drain(&mut s)), live);
    // Push the first events out of the log: a reconnect from before them resyncs.
    let more = publish_n(&h, &mut d, "D", None, 4);
    let mut s = h.subscribe(Filter::All, Some(a[0])).unwrap();
    let v = view(&drain(&mut s));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].1, "resync_required");
    assert_eq!(
        v[0].2,
        serde_json::json!({
            "scope": "all", "id": "*", "lastEventId": a[0],
            "oldestAvailableId": b[0], "eventsEndpoint": null
        })
    );
    // From the newest evicted id on, the log has everything: exact replay.
    let mut s = h.subscribe(Filter::All, Some(a[2])).unwrap();
    let mut want = b.clone();
    want.extend(&live);
    want.extend(&more);
    assert_eq!(ids(&drain(&mut s)), want);
    for n in [5, u64::MAX] {
        let mut s = h.subscribe(Filter::All, Some(n)).unwrap();
        assert_eq!(view(&drain(&mut s))[0].1, "resync_required", "n={n}");
    }
}

// Goal: a dispatch overflow on any account reaches all-accounts subscribers as a
// resync_required with an id, and a reconnect from before it resyncs; a slow all-accounts
// subscriber is cut off like any other, without disturbing account subscribers.
#[test]
fn all_scope_overflow_and_slow_consumer() {
    let l = Limits {
        dispatch_queue: 4,
        client_queue: 8,
        ..limits()
    };
    let (h, mut d) = hub(l);
    let mut all = h.subscribe(Filter::All, None).unwrap();
    let start = all.last_event_id();
    for i in 0..6 {
        h.publish("A", None, "order_update", data(i));
    }
    settle(&mut d);
    let v = view(&drain(&mut all));
    assert_eq!(v.len(), 5, "{v:?}");
    let marker = v[4].0;
    assert_eq!(
        (v[4].1, v[4].2["reason"].as_str()),
        ("resync_required", Some("DISPATCH_OVERFLOW"))
    );
    assert_eq!(v[4].2["scope"], "all");
    let mut re = h.subscribe(Filter::All, Some(start)).unwrap();
    assert_eq!(view(&drain(&mut re))[0].1, "resync_required");
    let mut re = h.subscribe(Filter::All, Some(marker)).unwrap();
    assert!(drain(&mut re).is_empty());
    drop(re);
    // Slow: `all` does not read while 9 events arrive for two accounts.
    let mut a = h.subscribe(acct("A"), None).unwrap();
    let mut seen = 0;
    for i in 0..9 {
        let acc = if i % 2 == 0 { "A" } else { "B" };
        publish_n(&h, &mut d, acc, None, 1);
        seen += drain(&mut a).len();
    }
    assert_eq!(seen, 5);
    assert!(all.was_cut_off());
    let v = view(&drain(&mut all));
    assert_eq!(v.last().unwrap().2["reason"], "SLOW_CONSUMER");
    assert!(ended(&mut all));
}

// Goal: scopes whose ring hashes collide share a ring, yet a replay delivers only the events
// of the subscription's own account or order (here every scope collides).
#[test]
fn colliding_scopes_replay_only_their_own_events() {
    let (h, mut d) = hub(limits());
    h.shared.collide.store(true, Ordering::Relaxed);
    let start = h.next_id();
    for (i, (a, o)) in [
        ("A", "o1"),
        ("B", "o2"),
        ("A", "o2"),
        ("A", "o1"),
        ("B", "o1"),
    ]
    .into_iter()
    .enumerate()
    {
        h.publish(a, Some(o), "order_update", data(i as u64));
    }
    settle(&mut d);
    let ns = |ds: &[Delivery]| -> Vec<u64> {
        view(ds)
            .iter()
            .map(|(_, _, v)| v["n"].as_u64().unwrap())
            .collect()
    };
    let mut s = h.subscribe(order("A", "o1"), Some(start - 1)).unwrap();
    assert_eq!(ns(&drain(&mut s)), [0, 3]);
    let mut s = h.subscribe(order("B", "o1"), Some(start - 1)).unwrap();
    assert_eq!(ns(&drain(&mut s)), [4]);
    let mut s = h.subscribe(acct("A"), Some(start - 1)).unwrap();
    assert_eq!(ns(&drain(&mut s)), [0, 2, 3]);
    let mut s = h.subscribe(acct("B"), Some(start - 1)).unwrap();
    assert_eq!(ns(&drain(&mut s)), [1, 4]);
}
