//! Persistence: one append-only JSON-lines log per venue (`<state dir>/venue-<name>.jsonl`).
//!
//! The matching thread appends, in one `write(2)` per handled message, every line that
//! message produced: the orders it created (`O`) and the reports it numbered (`R`), **before**
//! any of those reports is handed to a socket. The page cache survives a process kill, so a
//! `kill -9` loses nothing a gateway has seen; with `fsync` on, a machine crash neither.
//!
//! On start the log is read back: a torn last line (no `\n`, or not JSON) is cut off, and the
//! records rebuild the gateways' sequence numbers and retained reports and the client orders'
//! states. The log is then rewritten compactly (gateway sequence numbers `G`, the retained
//! reports `R`, every client order's current state `O`) through a temporary file and a rename,
//! so it does not grow across restarts beyond what the venue keeps in memory anyway.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use switchyard_protocol::venue::{ExecReport, ExecStatus};

fn is_zero(v: &u64) -> bool {
    *v == 0
}

/// A client order's terms and state, as written to the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderRecord {
    /// The owning gateway's id.
    pub gw: String,
    pub order_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub symbol: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub side: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_in_force: Option<String>,
    #[serde(default)]
    pub qty: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub price: Option<u64>,
    /// Filled so far (0 at creation; the current figure after compaction).
    #[serde(default)]
    pub filled: u64,
    /// `PENDING` when written at creation; the reports that follow move it on.
    pub status: ExecStatus,
    /// Time priority stamp: resting orders are restored into their levels in this order.
    #[serde(default)]
    pub prio: u64,
}

/// One line of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "t")]
pub enum Record {
    /// A gateway's last report sequence number (compaction writes it, so that a gateway
    /// whose reports all aged out of retention still continues its numbering).
    #[serde(rename = "G")]
    Gateway { gw: String, seq: u64 },
    /// A client order created, or (after compaction) its whole current state.
    #[serde(rename = "O")]
    Order(OrderRecord),
    /// A report numbered for a gateway; `prio` is the order's priority stamp after a
    /// `REPLACED`.
    #[serde(rename = "R")]
    Report {
        gw: String,
        #[serde(default, skip_serializing_if = "is_zero")]
        prio: u64,
        er: ExecReport,
    },
}

/// The borrowed form of [`Record::Report`], so the hot path need not clone the report.
#[derive(Serialize)]
struct ReportLine<'a> {
    t: &'static str,
    gw: &'a str,
    #[serde(skip_serializing_if = "is_zero")]
    prio: u64,
    er: &'a ExecReport,
}

/// Appends a report line to `out`.
pub fn encode_report(gw: &str, prio: u64, er: &ExecReport, out: &mut Vec<u8>) {
    let line = ReportLine {
        t: "R",
        gw,
        prio,
        er,
    };
    serde_json::to_writer(&mut *out, &line).expect("report record serializes");
    out.push(b'\n');
}

/// Appends any record to `out`.
pub fn encode_record(r: &Record, out: &mut Vec<u8>) {
    serde_json::to_writer(&mut *out, r).expect("record serializes");
    out.push(b'\n');
}

/// The open log.
pub struct Store {
    file: File,
    path: PathBuf,
    /// fdatasync after every append.
    fsync: bool,
}

impl Store {
    /// Opens (creating) the log of venue `name` in `dir` and reads it back. A torn tail is
    /// cut off; a complete line that does not parse is skipped with a warning.
    pub fn open(dir: &Path, name: &str, fsync: bool) -> io::Result<(Store, Vec<Record>)> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(format!("venue-{name}.jsonl"));
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data)?;
        let (records, good_len) = parse_log(&data, &path);
        if good_len < data.len() {
            tracing::warn!(
                path = %path.display(),
                dropped_bytes = data.len() - good_len,
                "state log ends in a torn line; cutting it off"
            );
            file.set_len(good_len as u64)?;
        }
        Ok((Store { file, path, fsync }, records))
    }

    /// Appends bytes (whole lines) in one write.
    pub fn append(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file.write_all(bytes)?;
        if self.fsync {
            self.file.sync_data()?;
        }
        Ok(())
    }

    /// Replaces the log with `records` (temporary file, fsync, rename, fsync of the folder).
    pub fn rewrite(&mut self, records: &[Record]) -> io::Result<()> {
        let tmp = self.path.with_extension("jsonl.tmp");
        let mut buf = Vec::with_capacity(records.len() * 160);
        for r in records {
            encode_record(r, &mut buf);
        }
        {
            let mut f = File::create(&tmp)?;
            f.write_all(&buf)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            File::open(dir)?.sync_all()?;
        }
        self.file = OpenOptions::new().append(true).open(&self.path)?;
        Ok(())
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Parses complete lines; returns the records and the length of the complete part.
fn parse_log(data: &[u8], path: &Path) -> (Vec<Record>, usize) {
    let mut records = Vec::new();
    let mut start = 0;
    let mut good = 0;
    while let Some(nl) = data[start..].iter().position(|&b| b == b'\n') {
        let line = &data[start..start + nl];
        let end = start + nl + 1;
        if !line.iter().all(u8::is_ascii_whitespace) {
            match serde_json::from_slice::<Record>(line) {
                Ok(r) => records.push(r),
                Err(e) if end == data.len() => {
                    // A last line that is complete but unreadable was torn mid-write.
                    tracing::warn!(path = %path.display(), error = %e, "torn last line");
                    return (records, good);
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), offset = start, error = %e,
                        "unreadable state log line skipped");
                }
            }
        }
        start = end;
        good = end;
    }
    (records, good)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(seq: u64) -> ExecReport {
        ExecReport {
            seq,
            order_id: "o1".into(),
            status: ExecStatus::Accepted,
            filled_qty_delta: 0,
            filled_qty_total: 0,
            price: None,
            qty: Some(5),
            limit_price: Some(10),
            at: "2024-01-01T00:00:00.000Z".into(),
            reason: None,
            status_report: false,
        }
    }

    // Goal: what is appended is read back, the borrowed encoding reads as a `Record`, and a
    // torn tail is cut off so later appends start on a clean line.
    #[test]
    fn append_read_back_and_cut_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, recs) = Store::open(dir.path(), "t", false).unwrap();
        assert!(recs.is_empty());
        let mut buf = Vec::new();
        encode_record(
            &Record::Gateway {
                gw: "g".into(),
                seq: 4,
            },
            &mut buf,
        );
        encode_report("g", 3, &report(5), &mut buf);
        s.append(&buf).unwrap();
        s.append(br#"{"t":"R","gw":"g","er":{"seq":6,"ord"#)
            .unwrap();
        drop(s);
        let (mut s, recs) = Store::open(dir.path(), "t", false).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[1],
            Record::Report {
                gw: "g".into(),
                prio: 3,
                er: report(5)
            }
        );
        let mut buf = Vec::new();
        encode_report("g", 0, &report(6), &mut buf);
        s.append(&buf).unwrap();
        drop(s);
        let (_, recs) = Store::open(dir.path(), "t", false).unwrap();
        assert_eq!(recs.len(), 3);
    }

    // Goal: a rewrite replaces the content and appends continue after it.
    #[test]
    fn rewrite_compacts() {
        let dir = tempfile::tempdir().unwrap();
        let (mut s, _) = Store::open(dir.path(), "t", true).unwrap();
        let mut buf = Vec::new();
        for i in 1..=10 {
            encode_report("g", 0, &report(i), &mut buf);
        }
        s.append(&buf).unwrap();
        s.rewrite(&[Record::Gateway {
            gw: "g".into(),
            seq: 10,
        }])
        .unwrap();
        let mut buf = Vec::new();
        encode_report("g", 0, &report(11), &mut buf);
        s.append(&buf).unwrap();
        drop(s);
        let (_, recs) = Store::open(dir.path(), "t", false).unwrap();
        assert_eq!(recs.len(), 2);
        assert_eq!(
            recs[0],
            Record::Gateway {
                gw: "g".into(),
                seq: 10
            }
        );
    }
}
