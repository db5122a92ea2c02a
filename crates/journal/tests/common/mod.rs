//! Helpers shared by the integration tests: a listener that forwards every
//! callback to a channel, and small builders for batches and journals.
#![allow(dead_code)]

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use switchyard_journal::{
    scan, Batch, BatchBuf, CommitStats, DurableListener, JournalHandle, WriterConfig,
};

/// One record as the tests describe it: (kind, time_ns, payload).
pub type Rec = (u16, u64, Vec<u8>);

/// A listener callback, as observed by a test.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Durable {
        meta: u64,
        first_seq: u64,
        len: usize,
    },
    Failed {
        meta: u64,
        len: usize,
    },
    Commit(CommitStats),
}

/// Forwards callbacks to a channel; optionally slows commits down.
pub struct ChanListener {
    pub tx: Sender<Event>,
    pub commit_delay: Option<Duration>,
}

impl DurableListener<u64> for ChanListener {
    fn on_durable(&mut self, batch: Batch<u64>, first_seq: u64) {
        let len = batch.records.len();
        let _ = self.tx.send(Event::Durable {
            meta: batch.meta,
            first_seq,
            len,
        });
    }

    fn on_failed(&mut self, batch: Batch<u64>, _error: &io::Error) {
        let len = batch.records.len();
        let _ = self.tx.send(Event::Failed {
            meta: batch.meta,
            len,
        });
    }

    fn on_commit(&mut self, stats: &CommitStats) {
        if let Some(d) = self.commit_delay {
            std::thread::sleep(d);
        }
        let _ = self.tx.send(Event::Commit(*stats));
    }
}

pub fn listener() -> (ChanListener, Receiver<Event>) {
    let (tx, rx) = crossbeam_channel::unbounded();
    (
        ChanListener {
            tx,
            commit_delay: None,
        },
        rx,
    )
}

/// A fast (no fsync) config with tiny limits suitable for tests.
pub fn test_config(dir: &Path) -> WriterConfig {
    WriterConfig {
        fsync: false,
        ..WriterConfig::new(dir)
    }
}

pub fn batch(meta: u64, recs: &[Rec]) -> Batch<u64> {
    let mut b = BatchBuf::with_capacity(256);
    for (kind, time, payload) in recs {
        b.push(*kind, *time, payload).unwrap();
    }
    Batch::new(b, meta)
}

/// Waits for the next Durable/Failed event, skipping Commit events.
pub fn next_outcome(rx: &Receiver<Event>) -> Event {
    loop {
        match rx
            .recv_timeout(Duration::from_secs(20))
            .expect("listener event")
        {
            Event::Commit(_) => continue,
            e => return e,
        }
    }
}

/// Submits one batch and waits for its outcome.
pub fn commit_one(h: &JournalHandle<u64>, rx: &Receiver<Event>, meta: u64, recs: &[Rec]) -> Event {
    h.submit(batch(meta, recs)).unwrap();
    next_outcome(rx)
}

/// Every record in the journal, read-only, as (seq, kind, time, payload).
pub fn read_all(dir: &Path) -> Vec<(u64, u16, u64, Vec<u8>)> {
    let mut out = Vec::new();
    scan(dir, |r| {
        out.push((r.seq, r.kind, r.time_ns, r.payload.to_vec()))
    })
    .unwrap();
    out
}

/// Segment files in order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    switchyard_journal::list_segments(dir)
        .unwrap()
        .into_iter()
        .map(|s| s.path)
        .collect()
}

/// `recs` numbered from `first_seq`, in the shape `read_all` returns.
pub fn numbered(first_seq: u64, recs: &[Rec]) -> Vec<(u64, u16, u64, Vec<u8>)> {
    recs.iter()
        .enumerate()
        .map(|(i, (k, t, p))| (first_seq + i as u64, *k, *t, p.clone()))
        .collect()
}

pub fn simple_recs(n: usize, tag: u8) -> Vec<Rec> {
    (0..n)
        .map(|i| (1 + i as u16, 1000 + i as u64, vec![tag; 10 + i]))
        .collect()
}
