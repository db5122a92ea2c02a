//! `switchyard journal dump|verify|anchor`: read a journal offline, never modifying it.
//! `verify` also checks the audit hash chain when keys are given; `anchor` prints (and can
//! export) the chain's current anchor.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use clap::Subcommand;
use switchyard_journal::audit::{self, Anchor, KeyRing, VerifyOutcome, ENV_KEY, ENV_KEYS};

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
    /// Check every checksum, sequence number and segment header, and with audit keys the hash
    /// chain and the anchor; exit 1 on damage.
    Verify {
        #[arg(
            long,
            default_value = "var/gateway/journal",
            env = "GATEWAY_JOURNAL_DIR"
        )]
        dir: PathBuf,
        /// Audit chain keys, `id:value,id2:base64:...`; without it `AUDIT_HMAC_KEYS` or
        /// `AUDIT_HMAC_KEY` from the environment. No keys: the chain is not checked.
        #[arg(long)]
        keys: Option<String>,
        /// Anchor to check the chain against, e.g. an exported copy (default: the gateway's
        /// anchor file, if there is one).
        #[arg(long)]
        anchor: Option<PathBuf>,
    },
    /// Print the audit chain's current anchor as JSON.
    Anchor {
        #[arg(
            long,
            default_value = "var/gateway/journal",
            env = "GATEWAY_JOURNAL_DIR"
        )]
        dir: PathBuf,
        /// The anchor file (default `<dir>/audit/anchor.json`).
        #[arg(long, env = "AUDIT_ANCHOR_PATH")]
        anchor_path: Option<PathBuf>,
        /// Also write it to this file, atomically, for storage outside the gateway's host.
        #[arg(long)]
        export: Option<PathBuf>,
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
        JournalCommand::Verify { dir, keys, anchor } => verify(&dir, keys.as_deref(), anchor),
        JournalCommand::Anchor {
            dir,
            anchor_path,
            export,
        } => anchor(&dir, anchor_path, export.as_deref()),
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

fn verify(dir: &Path, keys: Option<&str>, anchor: Option<PathBuf>) -> anyhow::Result<()> {
    if !dir.is_dir() {
        bail!("journal directory {} does not exist", dir.display());
    }
    let r = switchyard_journal::verify(dir)?;
    let ring = match keys {
        Some(k) => KeyRing::from_settings(Some(k), None, None),
        None => KeyRing::from_settings(
            env_var(ENV_KEYS).as_deref(),
            env_var(ENV_KEY).as_deref(),
            None,
        ),
    }
    .map_err(|e| anyhow::anyhow!("audit keys: {e}"))?;
    let chain = ring.as_ref().map(|ring| verify_chain(dir, ring, anchor));
    let chain_ok = !matches!(chain, Some((false, _)));
    let mut out = serde_json::json!({
            "ok": r.is_clean(),
            "segments": r.segments,
            "records": r.records,
            "firstSeq": r.first_seq,
            "lastSeq": r.last_seq,
            "tornTail": r.torn_tail.as_ref().map(|d| serde_json::json!({"segment": d.segment, "offset": d.offset, "seq": d.seq, "reason": d.reason})),
            "corrupt": r.corrupt.as_ref().map(|d| serde_json::json!({"segment": d.segment, "offset": d.offset, "seq": d.seq, "reason": d.reason})),
    });
    if let Some((_, audit)) = chain {
        out["audit"] = audit;
    }
    println!("{out}");
    if !r.is_clean() || !chain_ok {
        std::process::exit(1);
    }
    Ok(())
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

/// Verifies the whole chain, then the anchor (the one given, else the gateway's anchor file if
/// it exists). Returns (ok, the JSON report); damage is also printed to stderr with its seq.
fn verify_chain(dir: &Path, ring: &KeyRing, anchor: Option<PathBuf>) -> (bool, serde_json::Value) {
    let v = audit::verify(dir, Some(ring), 0, u64::MAX);
    let mut report = outcome_json(&v);
    let mut ok = v.ok;
    if let Some(e) = &v.error {
        eprintln!("audit chain: {e}");
    }
    let (path, explicit) = match anchor {
        Some(p) => (p, true),
        None => (
            env_var(audit::ENV_ANCHOR_PATH)
                .map(PathBuf::from)
                .unwrap_or_else(|| audit::default_anchor_path(dir)),
            false,
        ),
    };
    match Anchor::read(&path) {
        Ok(Some(a)) => {
            let av = audit::verify_anchor(dir, Some(ring), &a);
            if let Some(e) = &av.error {
                eprintln!("audit anchor {}: {e}", path.display());
            }
            ok &= av.ok;
            report["anchor"] = serde_json::json!({
                "path": path,
                "seq": a.seq,
                "ok": av.ok,
                "error": av.error,
                "badSeq": av.bad_seq,
            });
        }
        Ok(None) if !explicit => {}
        Ok(None) => {
            eprintln!("audit anchor {} does not exist", path.display());
            ok = false;
        }
        Err(e) => {
            eprintln!("audit anchor: {e}");
            ok = false;
            report["anchor"] = serde_json::json!({"path": path, "ok": false, "error": e});
        }
    }
    (ok, report)
}

fn outcome_json(v: &VerifyOutcome) -> serde_json::Value {
    serde_json::json!({
        "ok": v.ok,
        "checked": v.checked,
        "lastSeq": v.last_seq,
        "error": v.error,
        "badSeq": v.bad_seq,
    })
}

/// Prints the anchor; with `export`, also writes it atomically to that file.
fn anchor(dir: &Path, anchor_path: Option<PathBuf>, export: Option<&Path>) -> anyhow::Result<()> {
    let path = anchor_path.unwrap_or_else(|| audit::default_anchor_path(dir));
    let a = Anchor::read(&path)
        .map_err(|e| anyhow::anyhow!("reading the anchor: {e}"))?
        .with_context(|| format!("no anchor at {} (is the audit chain on?)", path.display()))?;
    let json = a.to_json();
    println!("{json}");
    if let Some(to) = export {
        audit::write_file_atomic(to, format!("{json}\n").as_bytes())
            .with_context(|| format!("writing {}", to.display()))?;
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
