//! `switchyard journal dump|verify`: read a journal offline, never modifying it.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context};
use clap::Subcommand;

#[derive(Subcommand)]
pub enum JournalCommand {
    /// Print records as JSON lines, optionally only a time window (an incident's events).
    Dump {
        #[arg(
            long,
            default_value = "var/gateway/journal",
            env = "GATEWAY_JOURNAL_DIR"
        )]
        dir: PathBuf,
        /// Inclusive start: RFC 3339 (`2026-11-21T10:00:00Z`), epoch seconds or epoch ms.
        #[arg(long)]
        since: Option<String>,
        /// Exclusive end, same formats.
        #[arg(long)]
        until: Option<String>,
        /// Stop after this many records.
        #[arg(long)]
        limit: Option<u64>,
    },
    /// Check every checksum, sequence number and segment header; exit 1 on damage.
    Verify {
        #[arg(
            long,
            default_value = "var/gateway/journal",
            env = "GATEWAY_JOURNAL_DIR"
        )]
        dir: PathBuf,
    },
}

pub fn run(cmd: JournalCommand) -> anyhow::Result<()> {
    match cmd {
        JournalCommand::Dump {
            dir,
            since,
            until,
            limit,
        } => dump(&dir, since.as_deref(), until.as_deref(), limit),
        JournalCommand::Verify { dir } => verify(&dir),
    }
}

/// Parses a time bound into ns since the epoch: ≤ 10 digits = seconds, more = milliseconds,
/// otherwise RFC 3339.
pub fn parse_time_ns(s: &str) -> anyhow::Result<u64> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        let v: u64 = s.parse().context("time out of range")?;
        return Ok(if s.len() <= 10 {
            v * 1_000_000_000
        } else {
            v * 1_000_000
        });
    }
    let t = humantime::parse_rfc3339_weak(s)
        .with_context(|| format!("{s:?} is neither epoch seconds/ms nor RFC 3339"))?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)?.as_nanos() as u64)
}

fn dump(
    dir: &std::path::Path,
    since: Option<&str>,
    until: Option<&str>,
    limit: Option<u64>,
) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("journal directory {} does not exist", dir.display());
    }
    let since = since.map(parse_time_ns).transpose()?.unwrap_or(0);
    let until = until.map(parse_time_ns).transpose()?.unwrap_or(u64::MAX);
    let limit = limit.unwrap_or(u64::MAX);
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let mut printed = 0u64;
    let mut write_err = None;
    let report = switchyard_journal::scan(dir, |r| {
        if printed >= limit || r.time_ns < since || r.time_ns >= until || write_err.is_some() {
            return;
        }
        let line = switchyard_gateway::records::to_json(r.seq, r.time_ns, r.kind, r.payload);
        if let Err(e) = writeln!(out, "{line}") {
            write_err = Some(e);
        }
        printed += 1;
    })?;
    out.flush()?;
    if let Some(e) = write_err {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Err(e.into());
        }
    }
    if let Some(t) = &report.torn_tail {
        eprintln!(
            "note: torn tail in {} at offset {} (seq {}): {}",
            t.segment.display(),
            t.offset,
            t.seq,
            t.reason
        );
    }
    eprintln!("{printed} of {} records printed", report.records);
    Ok(())
}

fn verify(dir: &std::path::Path) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("journal directory {} does not exist", dir.display());
    }
    let r = switchyard_journal::verify(dir)?;
    println!(
        "{}",
        serde_json::json!({
            "ok": r.is_clean(),
            "segments": r.segments,
            "records": r.records,
            "firstSeq": r.first_seq,
            "lastSeq": r.last_seq,
            "tornTail": r.torn_tail.as_ref().map(|d| serde_json::json!({"segment": d.segment, "offset": d.offset, "seq": d.seq, "reason": d.reason})),
            "corrupt": r.corrupt.as_ref().map(|d| serde_json::json!({"segment": d.segment, "offset": d.offset, "seq": d.seq, "reason": d.reason})),
        })
    );
    if !r.is_clean() {
        std::process::exit(1);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    // Goal: every accepted time format lands on the same instant.
    #[test]
    fn time_formats() {
        let ns = 1_700_000_000u64 * 1_000_000_000;
        assert_eq!(super::parse_time_ns("1700000000").unwrap(), ns);
        assert_eq!(super::parse_time_ns("1700000000000").unwrap(), ns);
        assert_eq!(super::parse_time_ns("2023-11-14T22:13:20Z").unwrap(), ns);
        assert!(super::parse_time_ns("yesterday").is_err());
    }
}
