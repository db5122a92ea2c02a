//! The venue end to end over real TCP: a venue started with `spawn` on 127.0.0.1:0 and
//! clients speaking the session protocol line by line. Orders trade against the market maker
//! and each other; reports are numbered per gateway, resent after a reconnect, and answer
//! STATUS, CANCEL and REPLACE. No sleeps: every wait is for a line, under a generous timeout.

mod common;

use common::*;
use switchyard_protocol::venue::{ExecStatus, FromVenue};
use switchyard_venue_sim::{spawn, MmConfig, VenueConfig};

// Goal: a marketable order fills against the maker at once, in `partial_steps` reports, at
// the maker's price, with consistent totals and consecutive sequence numbers.
#[test]
fn marketable_order_fills_against_the_market_maker() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, ack) = Client::logon(venue.local_addr(), "gwA", 0);
    assert_eq!(
        (ack.venue.as_str(), ack.last_seq, ack.heartbeat_ms),
        ("simT", 0, 10_000)
    );
    c.new_order("b1", "BUY", 100, Some(BEST_ASK), None);
    let ers = c.ers(3);
    assert_er(&ers[0], "b1", "ACCEPTED", 0, 0, None);
    assert_eq!(
        (ers[0].qty, ers[0].limit_price),
        (Some(100), Some(BEST_ASK))
    );
    assert_er(&ers[1], "b1", "PARTIALLY_FILLED", 50, 50, Some(BEST_ASK));
    assert_er(&ers[2], "b1", "FILLED", 50, 100, Some(BEST_ASK));
    assert_eq!(ers.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);

    // A sweep through two levels, each fill at its level's price.
    c.new_order("b2", "BUY", 120, Some(10_025), None);
    let ers = c.ers(4);
    assert_er(&ers[0], "b2", "ACCEPTED", 0, 0, None);
    assert_er(&ers[1], "b2", "PARTIALLY_FILLED", 50, 50, Some(10_015));
    assert_er(&ers[2], "b2", "PARTIALLY_FILLED", 50, 100, Some(10_015));
    assert_er(&ers[3], "b2", "FILLED", 20, 120, Some(10_025));

    // A market sell takes the best bid; an IOC that cannot trade is cancelled.
    c.new_order("s1", "SELL", 30, None, None);
    let ers = c.ers(2);
    assert_er(&ers[0], "s1", "ACCEPTED", 0, 0, None);
    assert_er(&ers[1], "s1", "FILLED", 30, 30, Some(BEST_BID));
    c.new_order("i1", "BUY", 10, Some(9_000), Some("IOC"));
    let ers = c.ers(2);
    assert_er(&ers[1], "i1", "CANCELED", 0, 0, None);
    assert_eq!(ers[1].reason.as_deref(), Some("IOC_REMAINDER"));
    assert_eq!(ers[1].seq, 11);
}

// Goal: a resting order can be cancelled once; a second cancel and a cancel of an unknown
// order are refused with reasons, and the order stays final.
#[test]
fn cancel_of_a_resting_order() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order("r1", "BUY", 10, Some(9_000), None);
    assert_er(&c.next_er(), "r1", "ACCEPTED", 0, 0, None);
    c.cancel("r1");
    assert_er(&c.next_er(), "r1", "CANCELED", 0, 0, None);
    c.cancel("r1");
    let er = c.next_er();
    assert_eq!(
        (er.status, er.reason.as_deref()),
        (ExecStatus::CancelRejected, Some("ORDER_FINAL"))
    );
    c.cancel("nope");
    let er = c.next_er();
    assert_eq!(
        (er.status, er.reason.as_deref()),
        (ExecStatus::CancelRejected, Some("UNKNOWN_ORDER"))
    );
    c.status("r1");
    let er = c.next_er();
    assert!(er.status_report);
    assert_eq!(er.status, ExecStatus::Canceled);
}

// Goal: REPLACE changes quantity and price, may trade at once (fills reported after
// REPLACED), keeps the filled quantity, and refuses final orders, quantities at or below the
// filled quantity, and unknown orders.
#[test]
fn replace_amends_and_may_trade() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order("r1", "BUY", 10, Some(9_000), None);
    c.next_er();
    c.replace("r1", Some(20), None);
    let er = c.next_er();
    assert_er(&er, "r1", "REPLACED", 0, 0, None);
    assert_eq!((er.qty, er.limit_price), (Some(20), Some(9_000)));
    c.replace("r1", None, Some(BEST_ASK));
    let ers = c.ers(2);
    assert_eq!(
        (ers[0].status, ers[0].qty, ers[0].limit_price),
        (ExecStatus::Replaced, Some(20), Some(BEST_ASK))
    );
    assert_er(&ers[1], "r1", "FILLED", 20, 20, Some(BEST_ASK));
    c.replace("r1", Some(30), None);
    assert_eq!(c.next_er().reason.as_deref(), Some("ORDER_FINAL"));

    // 80 left at the best ask: a buy of 200 fills 80 and rests 120.
    c.new_order("r2", "BUY", 200, Some(BEST_ASK), None);
    let ers = c.ers(3);
    assert_er(&ers[2], "r2", "PARTIALLY_FILLED", 50, 80, Some(BEST_ASK));
    c.replace("r2", Some(80), None);
    let er = c.next_er();
    assert_eq!(
        (er.status, er.reason.as_deref()),
        (ExecStatus::ReplaceRejected, Some("QTY_NOT_ABOVE_FILLED"))
    );
    c.replace("r2", Some(100), None);
    let er = c.next_er();
    assert_eq!(
        (er.status, er.qty, er.filled_qty_total),
        (ExecStatus::Replaced, Some(100), 80)
    );
    c.status("r2");
    let er = c.next_er();
    assert_eq!(
        (er.status, er.qty, er.filled_qty_total, er.limit_price),
        (ExecStatus::PartiallyFilled, Some(100), 80, Some(BEST_ASK))
    );
    c.cancel("r2");
    assert_er(&c.next_er(), "r2", "CANCELED", 0, 80, None);
    c.replace("zz", Some(5), None);
    let er = c.next_er();
    assert_eq!(
        (er.status, er.reason.as_deref()),
        (ExecStatus::ReplaceRejected, Some("UNKNOWN_ORDER"))
    );
}

// Goal: STATUS answers the order's current state, and UNKNOWN for an order never seen; both
// are numbered reports; a repeated NEW is answered with a status report, not a new order.
#[test]
fn status_unknown_and_idempotent_new() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.status("ghost");
    let er = c.next_er();
    assert_eq!(
        (er.status, er.status_report, er.seq),
        (ExecStatus::Unknown, true, 1)
    );
    c.new_order("n1", "SELL", 7, Some(10_500), None);
    assert_er(&c.next_er(), "n1", "ACCEPTED", 0, 0, None);
    c.new_order("n1", "SELL", 7, Some(10_500), None);
    let er = c.next_er();
    assert!(er.status_report);
    assert_eq!(
        (er.status, er.qty, er.limit_price, er.seq),
        (ExecStatus::Accepted, Some(7), Some(10_500), 3)
    );
    c.cancel("n1");
    assert_er(&c.next_er(), "n1", "CANCELED", 0, 0, None);
    // Had the repeat created a second order, this cancel would find one open.
    c.cancel("n1");
    assert_eq!(c.next_er().status, ExecStatus::CancelRejected);
}

// Goal: a bad NEW is REJECTED with a reason naming what is wrong.
#[test]
fn bad_new_orders_are_rejected() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    let cases: [(&[u8], &str); 5] = [
        (br#"{"type":"NEW","orderId":"a","side":"BUY","qty":5,"price":1}"#, "MISSING_SYMBOL"),
        (br#"{"type":"NEW","orderId":"b","symbol":"TST","side":"HOLD","qty":5,"price":1}"#, "BAD_SIDE"),
        (br#"{"type":"NEW","orderId":"c","symbol":"TST","side":"BUY","price":1}"#, "MISSING_QTY"),
        (br#"{"type":"NEW","orderId":"d","symbol":"TST","side":"BUY","qty":0,"price":1}"#, "BAD_QTY"),
        (br#"{"type":"NEW","orderId":"e","symbol":"TST","side":"BUY","qty":5,"orderType":"LIMIT"}"#, "MISSING_PRICE"),
    ];
    for (line, reason) in cases {
        c.send_raw(line);
        c.send_raw(b"\n");
        let er = c.next_er();
        assert_eq!(
            (er.status, er.reason.as_deref()),
            (ExecStatus::Rejected, Some(reason)),
            "{er:?}"
        );
    }
}

// Goal: a gateway that reconnects with lastSeq gets exactly the reports it missed, right
// after LOGON_ACK, including fills that happened while it was away.
#[test]
fn reconnect_with_last_seq_gets_exactly_the_missed_reports() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut a, _) = Client::logon(venue.local_addr(), "gwA", 0);
    a.new_order("a1", "SELL", 10, Some(10_004), None);
    assert_eq!(a.next_er().seq, 1);
    drop(a);

    let (mut b, _) = Client::logon(venue.local_addr(), "gwB", 0);
    b.new_order("b1", "BUY", 10, Some(10_004), None);
    let ers = b.ers(2);
    assert_er(&ers[1], "b1", "FILLED", 10, 10, Some(10_004));

    let (mut a, ack) = Client::logon(venue.local_addr(), "gwA", 1);
    assert_eq!(ack.last_seq, 2);
    let er = a.next_er();
    assert_eq!(er.seq, 2);
    assert_er(&er, "a1", "FILLED", 10, 10, Some(10_004));
    // Nothing else was pending: the next report is the answer to this STATUS.
    a.status("a1");
    let er = a.next_er();
    assert_eq!((er.seq, er.status_report), (3, true));

    // From scratch, everything comes again, in order.
    drop(a);
    let (mut a, ack) = Client::logon(venue.local_addr(), "gwA", 0);
    assert_eq!(ack.last_seq, 3);
    assert_eq!(
        a.ers(3).iter().map(|e| e.seq).collect::<Vec<_>>(),
        [1, 2, 3]
    );
}

// Goal: RESEND resends from the asked sequence number; asking for more than retention keeps
// sends what is left from the oldest.
#[test]
fn resend_from_seq_and_beyond_retention() {
    let venue = spawn(VenueConfig {
        retention: 3,
        ..venue_cfg()
    })
    .unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    for i in 0..5 {
        c.status(&format!("x{i}"));
    }
    assert_eq!(c.ers(5).last().unwrap().seq, 5);
    c.resend(4);
    assert_eq!(c.ers(2).iter().map(|e| e.seq).collect::<Vec<_>>(), [4, 5]);
    c.resend(1);
    assert_eq!(
        c.ers(3).iter().map(|e| e.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
}

// Goal: a second LOGON with the same gatewayId takes the session over and the old
// connection is closed; the new one gets the reports.
#[test]
fn second_logon_takes_the_session_over() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut old, _) = Client::logon(venue.local_addr(), "gwA", 0);
    let (mut new, _) = Client::logon(venue.local_addr(), "gwA", 0);
    // The old connection ends (after whatever market data it had been sent).
    while let Some(m) = old.recv() {
        assert!(matches!(m, FromVenue::Tob(_)), "old session got {m:?}");
    }
    new.new_order("t1", "BUY", 1, Some(9_000), None);
    assert_eq!(new.next_er().seq, 1);
}

// Goal: an observer logon does not take the session over, can ask STATUS about the
// gateway's orders (unnumbered answers) and may do nothing else.
#[test]
fn observer_reads_without_taking_over() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut gw, _) = Client::logon(venue.local_addr(), "gwA", 0);
    gw.new_order("o1", "BUY", 4, Some(9_100), None);
    assert_eq!(gw.next_er().seq, 1);

    let mut obs = Client::connect(venue.local_addr());
    let ack = obs.logon_with("gwA", 0, 100, true);
    assert_eq!(ack.last_seq, 1);
    // Observers are tooling: idle for more than three heartbeat intervals, still served.
    std::thread::sleep(std::time::Duration::from_millis(500));
    obs.status("o1");
    let er = obs.next_er();
    assert_eq!(
        (er.status, er.seq, er.qty, er.status_report),
        (ExecStatus::Accepted, 0, Some(4), true)
    );
    obs.status("missing");
    assert_eq!(obs.next_er().status, ExecStatus::Unknown);
    obs.new_order("o2", "BUY", 1, Some(1), None);
    match obs.next_non_md() {
        Some(FromVenue::Reject(r)) => assert_eq!(r.reason, "OBSERVER_READ_ONLY"),
        other => panic!("{other:?}"),
    }
    // The gateway's session is intact and its numbering untouched by the observer.
    gw.status("o1");
    assert_eq!(gw.next_er().seq, 2);
}

// Goal: a malformed line gets REJECT and the session goes on; a line longer than LINE_MAX
// gets REJECT and the connection is closed.
#[test]
fn malformed_and_oversized_lines() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.send_raw(b"{not json\n");
    match c.next_non_md() {
        Some(FromVenue::Reject(r)) => assert!(r.reason.starts_with("BAD_MESSAGE"), "{r:?}"),
        other => panic!("{other:?}"),
    }
    c.new_order("m1", "BUY", 1, Some(9_000), None);
    assert_eq!(c.next_er().status, ExecStatus::Accepted);
    let long = vec![b'x'; switchyard_protocol::venue::LINE_MAX + 10];
    c.send_raw(&long);
    c.send_raw(b"\n");
    match c.next_non_md() {
        Some(FromVenue::Reject(r)) => assert_eq!(r.reason, "LINE_TOO_LONG"),
        other => panic!("{other:?}"),
    }
    assert!(
        c.next_non_md().is_none(),
        "connection closed after LINE_TOO_LONG"
    );
}

// Goal: a reference gateway (no LOGON, no seq) is served as gateway "default", and its
// several worker connections coexist.
#[test]
fn reference_gateway_without_logon() {
    let venue = spawn(venue_cfg()).unwrap();
    let mut c = Client::connect(venue.local_addr());
    c.send_raw(b"{\"type\":\"NEW\",\"orderId\":\"42\",\"symbol\":\"TST\",\"side\":\"BUY\",\"qty\":5,\"price\":10005}\n");
    let ers = c.ers(2);
    assert_er(&ers[0], "42", "ACCEPTED", 0, 0, None);
    assert_er(&ers[1], "42", "FILLED", 5, 5, Some(BEST_ASK));
    c.send_raw(b"{\"type\":\"CANCEL\",\"orderId\":\"42\"}\n");
    assert_eq!(c.next_er().status, ExecStatus::CancelRejected);
    // A second worker connection does not push the first one out.
    let mut w2 = Client::connect(venue.local_addr());
    w2.send_raw(b"{\"type\":\"CANCEL\",\"orderId\":\"43\"}\n");
    assert_eq!(w2.next_er().reason.as_deref(), Some("UNKNOWN_ORDER"));
    c.send_raw(b"{\"type\":\"CANCEL\",\"orderId\":\"44\"}\n");
    assert_eq!(c.next_er().order_id, "44");
    // The same stream is the default gateway's, visible to a logged-on observer.
    let mut obs = Client::connect(venue.local_addr());
    let ack = obs.logon_with(switchyard_venue_sim::DEFAULT_GATEWAY, 0, 10_000, true);
    assert_eq!(ack.last_seq, 5);
}

// Goal: the venue sends HEARTBEAT with its last report seq when silent, and closes a
// gateway connection that stays silent for three intervals.
#[test]
fn heartbeats_and_silence_timeout() {
    let venue = spawn(venue_cfg()).unwrap();
    let mut c = Client::connect(venue.local_addr());
    let ack = c.logon_with("gwA", 0, 300, false);
    assert_eq!(ack.heartbeat_ms, 300);
    c.status("x");
    assert_eq!(c.next_er().seq, 1);
    loop {
        match c.recv().expect("a heartbeat before the close") {
            FromVenue::Heartbeat(h) => {
                assert_eq!(h.last_seq, 1);
                break;
            }
            FromVenue::Tob(_) => {}
            other => panic!("{other:?}"),
        }
    }
    // We stay silent: the venue hangs up.
    while let Some(m) = c.recv() {
        assert!(
            matches!(m, FromVenue::Heartbeat(_) | FromVenue::Tob(_)),
            "{m:?}"
        );
    }
}

// Goal: a logged-on session gets the top of book at logon and after changes.
#[test]
fn top_of_book_at_logon_and_on_change() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    match c.recv() {
        Some(FromVenue::Tob(t)) => {
            assert_eq!(
                (t.symbol.as_str(), t.bid, t.bid_qty, t.ask, t.ask_qty),
                ("TST", Some(BEST_BID), 100, Some(BEST_ASK), 100)
            );
        }
        other => panic!("{other:?}"),
    }
    c.new_order("t1", "BUY", 10, Some(9_999), None);
    loop {
        if let Some(FromVenue::Tob(t)) = c.recv() {
            if t.bid == Some(9_999) {
                assert_eq!((t.bid_qty, t.ask), (10, Some(BEST_ASK)));
                break;
            }
        }
    }
}

// Goal: a symbol nobody configured gets a book on first use, quoted around the first
// order's limit price; orders then trade in it (self-trade allowed).
#[test]
fn unconfigured_symbol_opens_a_book() {
    let venue = spawn(venue_cfg()).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order_in("NEWSYM", "n1", "BUY", 10, Some(5_000), None);
    assert_er(&c.next_er(), "n1", "ACCEPTED", 0, 0, None);
    c.new_order_in("NEWSYM", "n2", "SELL", 10, Some(4_990), None);
    let ers = c.ers(3);
    // Both sides are ours: the resting buy fills at its own price.
    let statuses: Vec<_> = ers
        .iter()
        .map(|e| (e.order_id.as_str(), e.status.as_str(), e.price))
        .collect();
    assert_eq!(
        statuses,
        [
            ("n2", "ACCEPTED", None),
            ("n2", "FILLED", Some(5_000)),
            ("n1", "FILLED", Some(5_000))
        ]
    );
}

// Goal: a passive order fills when the market maker's random walk reaches its price, at the
// order's own (resting) price.
#[test]
fn passive_order_fills_when_the_walk_reaches_it() {
    let cfg = VenueConfig {
        mm: MmConfig {
            step_bps: 30,
            interval_ms: 5,
            ..venue_cfg().mm
        },
        ..venue_cfg()
    };
    let venue = spawn(cfg).unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    // Far from the maker's bid of ~9995, it rests until the walk comes down to it.
    c.new_order("w1", "BUY", 10, Some(9_940), None);
    assert_eq!(c.next_er().status, ExecStatus::Accepted);
    let mut total = 0;
    while total < 10 {
        let er = c.next_er();
        assert_eq!(er.order_id, "w1");
        assert_eq!(
            er.price,
            Some(9_940),
            "passive fills are at the resting price"
        );
        total = er.filled_qty_total;
        c.heartbeat();
    }
}
