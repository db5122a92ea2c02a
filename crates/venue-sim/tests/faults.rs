//! Each fault mode, observed on the wire: duplicates carry the same seq twice, reordering
//! delivers a higher seq first, lost reports leave a gap that RESEND fills, drop-after closes
//! the connection after exactly N lines, reject-all rejects every NEW, a stall holds all
//! traffic, and the delay holds every message back. The venue's own state is untouched:
//! resent reports and observer answers tell the truth.

mod common;

use std::time::{Duration, Instant};

use common::*;
use switchyard_protocol::venue::{ExecStatus, FromVenue};
use switchyard_venue_sim::{spawn, FaultConfig, VenueConfig, VenueHandle};

fn venue_with(faults: FaultConfig) -> VenueHandle {
    spawn(VenueConfig {
        faults,
        ..venue_cfg()
    })
    .unwrap()
}

// Goal: with DUPLICATE_PCT=100 every report arrives twice with the same seq and content.
#[test]
fn duplicate_sends_the_same_seq_twice() {
    let venue = venue_with(FaultConfig {
        duplicate_pct: 100,
        ..FaultConfig::default()
    });
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order("d1", "BUY", 1, Some(9_000), None);
    c.status("d1");
    let ers = c.ers(4);
    assert_eq!(ers.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 1, 2, 2]);
    assert_eq!(ers[0], ers[1]);
    assert_eq!(ers[2], ers[3]);
}

// Goal: with REORDER_PCT=100 each report is held back and sent after the next one, so seqs
// arrive out of order (2 before 1, 4 before 3).
#[test]
fn reorder_sends_a_report_after_the_next() {
    let venue = venue_with(FaultConfig {
        reorder_pct: 100,
        ..FaultConfig::default()
    });
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    // Passive orders far from the touch: no market data in between.
    for id in ["r1", "r2", "r3", "r4"] {
        c.new_order(id, "BUY", 1, Some(9_000), None);
    }
    let ers = c.ers(4);
    let got: Vec<_> = ers.iter().map(|e| (e.seq, e.order_id.as_str())).collect();
    assert_eq!(got, [(2, "r2"), (1, "r1"), (4, "r4"), (3, "r3")]);
}

// Goal: with LOSE_PCT=100 no report reaches the wire, the heartbeat's lastSeq reveals the
// gap, RESEND recovers every report, and an observer sees the true state throughout.
#[test]
fn lost_reports_are_recovered_by_resend() {
    let venue = venue_with(FaultConfig {
        lose_pct: 100,
        ..FaultConfig::default()
    });
    let mut c = Client::connect(venue.local_addr());
    c.logon_with("gwA", 0, 1_000, false);
    c.new_order("l1", "BUY", 3, Some(9_000), None);
    c.new_order("l2", "SELL", 2, Some(BEST_BID), None);
    let last = loop {
        match c.recv().expect("connection open") {
            FromVenue::Heartbeat(h) if h.last_seq > 0 => break h.last_seq,
            FromVenue::Heartbeat(_) | FromVenue::Tob(_) => {}
            other => panic!("a lost report arrived: {other:?}"),
        }
    };
    assert_eq!(last, 3);
    c.resend(1);
    let ers = c.ers(3);
    assert_er(&ers[0], "l1", "ACCEPTED", 0, 0, None);
    assert_er(&ers[1], "l2", "ACCEPTED", 0, 0, None);
    assert_er(&ers[2], "l2", "FILLED", 2, 2, Some(BEST_BID));
    assert_eq!(ers.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);

    let mut obs = Client::connect(venue.local_addr());
    obs.logon_with("gwA", 0, 10_000, true);
    obs.status("l2");
    let er = obs.next_er();
    assert_eq!((er.status, er.filled_qty_total), (ExecStatus::Filled, 2));
}

// Goal: with DROP_AFTER=3 the venue closes each connection after exactly 3 lines, and a new
// connection counts from zero again.
#[test]
fn drop_after_closes_the_connection_after_n_lines() {
    let venue = venue_with(FaultConfig {
        drop_after: 3,
        ..FaultConfig::default()
    });
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order("x1", "BUY", 1, Some(9_000), None);
    // LOGON_ACK was the first line.
    assert_eq!(1 + c.lines_until_eof(), 3);
    let (mut c, ack) = Client::logon(venue.local_addr(), "gwA", 0);
    assert_eq!(ack.last_seq, 1);
    assert_eq!(1 + c.lines_until_eof(), 3);
}

// Goal: with REJECT_ALL every NEW is REJECTED with reason REJECT_ALL, and STATUS agrees.
#[test]
fn reject_all_rejects_every_new() {
    let venue = venue_with(FaultConfig {
        reject_all: true,
        ..FaultConfig::default()
    });
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    c.new_order("j1", "BUY", 1, Some(BEST_ASK), None);
    let er = c.next_er();
    assert_eq!(
        (er.status, er.reason.as_deref()),
        (ExecStatus::Rejected, Some("REJECT_ALL"))
    );
    c.status("j1");
    let er = c.next_er();
    assert_eq!((er.status, er.status_report), (ExecStatus::Rejected, true));
}

// Goal: with STALL_AFTER=2 the venue goes quiet after the second line (LOGON_ACK, TOB) for
// STALL_MS: an answer to a message sent just after cannot come before the stall ends.
#[test]
fn stall_holds_all_traffic() {
    let stall = Duration::from_millis(1_500);
    let venue = venue_with(FaultConfig {
        stall_after: 2,
        stall_ms: stall.as_millis() as u64,
        ..FaultConfig::default()
    });
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    assert!(matches!(c.recv(), Some(FromVenue::Tob(_))));
    let t0 = Instant::now();
    c.status("s1");
    assert_eq!(c.next_er().status, ExecStatus::Unknown);
    // Lower bound only (the stall began just before the TOB reached us).
    assert!(
        t0.elapsed() >= stall / 2,
        "answered during the stall after {:?}",
        t0.elapsed()
    );
}

// Goal: with DELAY_MS every message leaves no earlier than the delay after the venue decided.
#[test]
fn delay_holds_every_message_back() {
    let venue = spawn(VenueConfig {
        delay_ms: 200,
        ..venue_cfg()
    })
    .unwrap();
    let (mut c, _) = Client::logon(venue.local_addr(), "gwA", 0);
    let t0 = Instant::now();
    c.new_order("y1", "BUY", 2, Some(BEST_ASK), None);
    let ers = c.ers(2);
    assert!(t0.elapsed() >= Duration::from_millis(200));
    assert_er(&ers[1], "y1", "FILLED", 2, 2, Some(BEST_ASK));
}
