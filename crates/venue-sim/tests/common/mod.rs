//! Shared helpers of the venue's integration tests: a venue on 127.0.0.1:0 with one quiet
//! market (the maker quotes `TST` around 10 000 and never moves), and a line-level client
//! that speaks the real protocol over TCP.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use switchyard_core::Symbol;
use switchyard_protocol::venue::{
    decode_from_venue, encode_line, ExecReport, FromVenue, Heartbeat, Logon, LogonAck, NewOrderMsg,
    OrderRef, ReplaceMsg, Resend, ToVenue,
};
use switchyard_venue_sim::{MmConfig, VenueConfig};

/// Only turns a hang into a failure; nothing waits this long when things work.
pub const WAIT: Duration = Duration::from_secs(20);

/// The maker's quotes with `venue_cfg()`: bids 9995/9985/9975, asks 10005/10015/10025, 100 at
/// each level in two orders of 50.
pub const BEST_BID: u64 = 9995;
pub const BEST_ASK: u64 = 10005;

pub fn venue_cfg() -> VenueConfig {
    VenueConfig {
        name: "simT".into(),
        bind: "127.0.0.1".parse().unwrap(),
        port: 0,
        seed: Some(42),
        partial_steps: 2,
        mm: MmConfig {
            enabled: true,
            symbols: vec![(Symbol::parse(b"TST").unwrap(), 10_000)],
            levels: 3,
            size: 100,
            spread_bps: 10,
            level_gap_bps: 10,
            step_bps: 0,
            interval_ms: 3_600_000,
        },
        ..VenueConfig::default()
    }
}

pub struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    /// Per-connection gateway sequence number of the last message sent.
    seq: u64,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(WAIT)).unwrap();
        s.set_nodelay(true).unwrap();
        Client {
            reader: BufReader::new(s.try_clone().unwrap()),
            writer: s,
            seq: 0,
        }
    }

    /// Connects and logs on; a long heartbeat so that a quiet test is not timed out.
    pub fn logon(addr: SocketAddr, gw: &str, last_seq: u64) -> (Client, LogonAck) {
        let mut c = Client::connect(addr);
        let ack = c.logon_with(gw, last_seq, 10_000, false);
        (c, ack)
    }

    pub fn logon_with(
        &mut self,
        gw: &str,
        last_seq: u64,
        heartbeat_ms: u64,
        observer: bool,
    ) -> LogonAck {
        let seq = self.next_seq();
        self.send(&ToVenue::Logon(Logon {
            seq,
            gateway_id: gw.into(),
            last_seq,
            heartbeat_ms,
            observer,
        }));
        match self.recv().expect("LOGON_ACK") {
            FromVenue::LogonAck(a) => a,
            other => panic!("expected LOGON_ACK, got {other:?}"),
        }
    }

    fn next_seq(&mut self) -> u64 {
        self.seq += 1;
        self.seq
    }

    pub fn send(&mut self, m: &ToVenue) {
        let mut line = Vec::new();
        encode_line(m, &mut line);
        self.writer.write_all(&line).unwrap();
    }

    pub fn send_raw(&mut self, line: &[u8]) {
        self.writer.write_all(line).unwrap();
    }

    /// The next message; `None` when the venue closed the connection.
    pub fn recv(&mut self) -> Option<FromVenue> {
        let mut line = Vec::new();
        match self.reader.read_until(b'\n', &mut line) {
            Ok(0) => None,
            Ok(_) => Some(decode_from_venue(line.trim_ascii_end()).expect("venue line decodes")),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => None,
            Err(e) => panic!("read failed (timeout?): {e}"),
        }
    }

    /// The next execution report, skipping market data and heartbeats.
    pub fn next_er(&mut self) -> ExecReport {
        loop {
            match self.recv().expect("connection open") {
                FromVenue::Exec(er) => return er,
                FromVenue::Tob(_) | FromVenue::Heartbeat(_) => {}
                other => panic!("expected a report, got {other:?}"),
            }
        }
    }

    /// The next `n` reports.
    pub fn ers(&mut self, n: usize) -> Vec<ExecReport> {
        (0..n).map(|_| self.next_er()).collect()
    }

    /// The next message that is neither market data nor a heartbeat.
    pub fn next_non_md(&mut self) -> Option<FromVenue> {
        loop {
            match self.recv()? {
                FromVenue::Tob(_) | FromVenue::Heartbeat(_) => {}
                m => return Some(m),
            }
        }
    }

    pub fn new_order(
        &mut self,
        id: &str,
        side: &str,
        qty: u64,
        price: Option<u64>,
        tif: Option<&str>,
    ) {
        self.new_order_in("TST", id, side, qty, price, tif);
    }

    pub fn new_order_in(
        &mut self,
        symbol: &str,
        id: &str,
        side: &str,
        qty: u64,
        price: Option<u64>,
        tif: Option<&str>,
    ) {
        let seq = self.next_seq();
        self.send(&ToVenue::New(NewOrderMsg {
            seq,
            order_id: id.into(),
            symbol: Some(symbol.into()),
            side: Some(side.into()),
            qty: Some(qty),
            price,
            order_type: Some(if price.is_some() { "LIMIT" } else { "MARKET" }.into()),
            time_in_force: tif.map(Into::into),
        }));
    }

    pub fn cancel(&mut self, id: &str) {
        let seq = self.next_seq();
        self.send(&ToVenue::Cancel(OrderRef {
            seq,
            order_id: id.into(),
        }));
    }

    pub fn status(&mut self, id: &str) {
        let seq = self.next_seq();
        self.send(&ToVenue::Status(OrderRef {
            seq,
            order_id: id.into(),
        }));
    }

    pub fn replace(&mut self, id: &str, qty: Option<u64>, price: Option<u64>) {
        let seq = self.next_seq();
        self.send(&ToVenue::Replace(ReplaceMsg {
            seq,
            order_id: id.into(),
            qty,
            price,
        }));
    }

    pub fn resend(&mut self, from_seq: u64) {
        let seq = self.next_seq();
        self.send(&ToVenue::Resend(Resend { seq, from_seq }));
    }

    pub fn heartbeat(&mut self) {
        let seq = self.next_seq();
        self.send(&ToVenue::Heartbeat(Heartbeat { seq, last_seq: 0 }));
    }

    /// Reads until the venue closes the connection; returns how many lines came first.
    pub fn lines_until_eof(&mut self) -> usize {
        let mut n = 0;
        while self.recv().is_some() {
            n += 1;
        }
        n
    }
}

/// Asserts a report's essentials.
#[track_caller]
pub fn assert_er(
    er: &ExecReport,
    id: &str,
    status: &str,
    delta: u64,
    total: u64,
    price: Option<u64>,
) {
    assert_eq!(
        (
            er.order_id.as_str(),
            er.status.as_str(),
            er.filled_qty_delta,
            er.filled_qty_total,
            er.price
        ),
        (id, status, delta, total, price),
        "report {er:?}"
    );
}
