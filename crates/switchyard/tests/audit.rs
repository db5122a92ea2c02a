//! Goal: the audit hash chain catches deliberate tampering that the record CRCs and sequence
//! checks cannot (an edited record with a recomputed CRC, a removed record with the rest
//! renumbered, two records swapped), at the right sequence number, through the library and
//! through `switchyard journal verify`'s exit code; and the gateway runs the chain and serves
//! `/audit/verify` and `/audit/anchor`.

mod common;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use switchyard_journal::audit::{self, Anchor, Auditor, AuditorConfig, KeyRing};
use switchyard_journal::{
    list_segments, segment_file_name, start, Batch, BatchBuf, DurableListener, WriterConfig,
    SEGMENT_HEADER_LEN, SEGMENT_MAGIC,
};

const KEYS: &str = "k1:tamper-test-key,k2:base64:c2Vjb25kLWtleQ==";
const RECORDS: u64 = 40;

struct Null;
impl DurableListener<()> for Null {
    fn on_durable(&mut self, _b: Batch<()>, _s: u64) {}
    fn on_failed(&mut self, _b: Batch<()>, e: &io::Error) {
        panic!("commit failed: {e}")
    }
}

fn ring() -> Arc<KeyRing> {
    Arc::new(
        KeyRing::from_settings(Some(KEYS), None, None)
            .unwrap()
            .unwrap(),
    )
}

/// A journal of `RECORDS` records over several small segments, written by the real writer and
/// chained by the real auditor following it live.
fn build_journal(dir: &Path) {
    let cfg = WriterConfig {
        fsync: false,
        segment_bytes: 512,
        ..WriterConfig::new(dir)
    };
    let (h, writer, _) = start(cfg, Null).unwrap();
    let acfg = AuditorConfig {
        poll_interval: Duration::from_millis(2),
        sync_interval: Duration::from_millis(5),
        ..AuditorConfig::new(dir, ring())
    };
    let auditor = Auditor::start(acfg, h.durable_watch()).unwrap();
    for chunk in 0..RECORDS / 5 {
        let mut b = BatchBuf::default();
        for i in chunk * 5..chunk * 5 + 5 {
            b.push(7, 1_000 + i, format!("order-{i:03}").as_bytes())
                .unwrap();
        }
        h.submit(Batch::new(b, ())).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while h.durable_seq() < RECORDS {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(1));
    }
    drop(h);
    writer.join().unwrap();
    let st = auditor.stop();
    assert_eq!((st.chained_seq, st.last_anchor_seq), (RECORDS, RECORDS));
    assert!(
        list_segments(dir).unwrap().len() > 2,
        "want several segments"
    );
}

/// The journal as segments of raw frames, for surgery.
fn load(dir: &Path) -> Vec<Vec<Vec<u8>>> {
    list_segments(dir)
        .unwrap()
        .iter()
        .map(|s| {
            let bytes = std::fs::read(&s.path).unwrap();
            let mut frames = Vec::new();
            let mut off = SEGMENT_HEADER_LEN;
            while off < bytes.len() {
                let len = u32::from_le_bytes(bytes[off..off + 4].try_into().unwrap()) as usize;
                frames.push(bytes[off..off + 28 + len].to_vec());
                off += 28 + len;
            }
            frames
        })
        .collect()
}

fn seq_of(frame: &[u8]) -> u64 {
    u64::from_le_bytes(frame[8..16].try_into().unwrap())
}

/// What an attacker who knows the format does after an edit: recompute the CRC32C.
fn fix_crc(frame: &mut [u8]) {
    let crc = crc32c::crc32c(&frame[8..]);
    frame[4..8].copy_from_slice(&crc.to_le_bytes());
}

/// Rewrites the journal from `segs`. With `renumber`, every record gets its position's seq
/// (and a fixed CRC) and segments are renamed to their new first seq, so that the journal is
/// internally consistent again.
fn store(dir: &Path, mut segs: Vec<Vec<Vec<u8>>>, renumber: bool) {
    for s in list_segments(dir).unwrap() {
        std::fs::remove_file(s.path).unwrap();
    }
    let mut next = 1u64;
    for frames in &mut segs {
        if renumber {
            for f in frames.iter_mut() {
                f[8..16].copy_from_slice(&next.to_le_bytes());
                fix_crc(f);
                next += 1;
            }
        }
        let first = seq_of(&frames[0]);
        let mut bytes = SEGMENT_MAGIC.to_vec();
        bytes.extend_from_slice(&first.to_le_bytes());
        for f in frames.iter() {
            bytes.extend_from_slice(f);
        }
        std::fs::write(dir.join(segment_file_name(first)), bytes).unwrap();
    }
}

/// (segment index, frame index) of the record `seq`.
fn locate(segs: &[Vec<Vec<u8>>], seq: u64) -> (usize, usize) {
    for (i, s) in segs.iter().enumerate() {
        if let Some(j) = s.iter().position(|f| seq_of(f) == seq) {
            return (i, j);
        }
    }
    panic!("seq {seq} not found");
}

/// `journal verify --keys`: (exit code, stdout JSON, stderr).
fn cli_verify(dir: &Path, extra: &[&str]) -> (i32, serde_json::Value, String) {
    let mut args = vec![
        "journal",
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "--keys",
        KEYS,
    ];
    args.extend_from_slice(extra);
    let out = run_switchyard(&args, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (
        out.status.code().unwrap_or(-1),
        json(stdout.trim()),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The library and the CLI both report a failure at `seq` whose message contains `what`.
fn assert_caught(dir: &Path, seq: u64, what: &str) {
    let v = audit::verify(dir, Some(&ring()), 0, u64::MAX);
    assert!(!v.ok, "tampering not detected: {v:?}");
    assert_eq!(v.bad_seq, Some(seq), "{v:?}");
    assert_eq!((v.checked, v.last_seq), (seq - 1, seq - 1), "{v:?}");
    let err = v.error.unwrap();
    assert!(
        err.contains(what) && err.contains(&format!("seq {seq}")),
        "{err}"
    );
    let (code, out, stderr) = cli_verify(dir, &[]);
    assert_eq!(code, 1, "CLI exit code; stdout {out}, stderr {stderr}");
    assert_eq!(out["audit"]["ok"], false, "{out}");
    assert_eq!(out["audit"]["badSeq"], seq, "{out}");
    assert!(stderr.contains(&format!("seq {seq}")), "{stderr}");
}

/// Baseline: the untouched journal verifies, through the library and the CLI (keys from the
/// flag or the environment), and its anchor can be printed and exported.
fn assert_clean(dir: &Path) {
    let v = audit::verify(dir, Some(&ring()), 0, u64::MAX);
    assert!(
        v.ok && v.checked == RECORDS && v.last_seq == RECORDS,
        "{v:?}"
    );
    let (code, out, stderr) = cli_verify(dir, &[]);
    assert_eq!(code, 0, "{out} {stderr}");
    assert_eq!(out["audit"]["checked"], RECORDS);
    assert_eq!(out["audit"]["anchor"]["ok"], true, "{out}");
    let env_run = run_switchyard(
        &["journal", "verify", "--dir", dir.to_str().unwrap()],
        &[("AUDIT_HMAC_KEYS", KEYS)],
    );
    assert!(env_run.status.success());
    assert!(String::from_utf8_lossy(&env_run.stdout).contains("\"audit\""));
}

// Goal (a): one payload byte changed and the CRC recomputed: the journal's own verify is
// satisfied, the chain is not, at that seq.
#[test]
fn edited_record_with_fixed_crc_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    build_journal(dir.path());
    assert_clean(dir.path());
    let mut segs = load(dir.path());
    let (i, j) = locate(&segs, 17);
    let f = &mut segs[i][j];
    let last = f.len() - 1;
    f[last] ^= 0x01; // "order-016" becomes "order-017"
    fix_crc(f);
    store(dir.path(), segs, false);
    assert!(switchyard_journal::verify(dir.path()).unwrap().is_clean());
    assert_caught(dir.path(), 17, "hash mismatch detected");
}

// Goal (b): one record removed and every later record renumbered (CRCs and segment names
// fixed): a consistent journal to every check but the chain, which fails at the gap.
#[test]
fn removed_record_is_caught() {
    let dir = tempfile::tempdir().unwrap();
    build_journal(dir.path());
    let mut segs = load(dir.path());
    let (i, j) = locate(&segs, 17);
    segs[i].remove(j);
    store(dir.path(), segs.clone(), true);
    let plain = switchyard_journal::verify(dir.path()).unwrap();
    assert!(
        plain.is_clean() && plain.last_seq == RECORDS - 1,
        "{plain:?}"
    );
    assert_caught(dir.path(), 17, "hash mismatch detected");

    // The clumsy version (no renumbering) is caught as a sequence gap at the same seq.
    let dir = tempfile::tempdir().unwrap();
    build_journal(dir.path());
    let mut segs = load(dir.path());
    let (i, j) = locate(&segs, 17);
    segs[i].remove(j);
    store(dir.path(), segs, false);
    assert_caught(dir.path(), 17, "found seq 18");
}

// Goal (c): two records swapped, with seqs and CRCs rewritten to match their new places.
#[test]
fn swapped_records_are_caught() {
    let dir = tempfile::tempdir().unwrap();
    build_journal(dir.path());
    let mut segs = load(dir.path());
    let (i, j) = locate(&segs, 23);
    let (k, l) = locate(&segs, 24);
    let a = segs[i][j].clone();
    segs[i][j] = std::mem::replace(&mut segs[k][l], a);
    store(dir.path(), segs.clone(), true);
    assert!(switchyard_journal::verify(dir.path()).unwrap().is_clean());
    assert_caught(dir.path(), 23, "hash mismatch detected");
    // Swapped without renumbering: valid frames, out of order at the first swapped seq.
    store(dir.path(), segs, false);
    assert_caught(dir.path(), 23, "found seq 24");
}

// Goal: cutting the journal's last records together with their chain entries leaves a chain
// that verifies on its own; the exported anchor catches it, and `journal anchor --export`
// produces that anchor.
#[test]
fn truncation_of_journal_and_chain_is_caught_by_the_anchor() {
    let dir = tempfile::tempdir().unwrap();
    build_journal(dir.path());
    let exported = dir.path().join("outside").join("anchor.json");
    std::fs::create_dir_all(exported.parent().unwrap()).unwrap();
    let out = run_switchyard(
        &[
            "journal",
            "anchor",
            "--dir",
            dir.path().to_str().unwrap(),
            "--export",
            exported.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = json(String::from_utf8_lossy(&out.stdout).trim());
    assert_eq!(printed["seq"], RECORDS);
    assert_eq!(printed["keyId"], "k1");
    let anchor = Anchor::read(&exported).unwrap().unwrap();
    assert_eq!(anchor.hash_base64(), printed["hash"].as_str().unwrap());

    // Drop records 36..40 from the journal and their entries from the chain, and the local
    // anchor with them.
    let mut segs = load(dir.path());
    for seq in (36..=RECORDS).rev() {
        let (i, j) = locate(&segs, seq);
        segs[i].remove(j);
    }
    segs.retain(|s| !s.is_empty());
    store(dir.path(), segs, false);
    let chain: PathBuf = audit::chain_dir(dir.path()).join(audit::chain_file_name(1));
    let len = std::fs::metadata(&chain).unwrap().len();
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(&chain)
        .unwrap();
    f.set_len(len - 5 * audit::ENTRY_LEN as u64).unwrap();
    std::fs::remove_file(audit::default_anchor_path(dir.path())).unwrap();
    assert!(audit::verify(dir.path(), Some(&ring()), 0, u64::MAX).ok);
    let (code, _, _) = cli_verify(dir.path(), &[]);
    assert_eq!(code, 0, "without the anchor the cut is invisible");
    let v = audit::verify_anchor(dir.path(), Some(&ring()), &anchor);
    assert_eq!(v.bad_seq, Some(RECORDS), "{v:?}");
    let (code, out, _) = cli_verify(dir.path(), &["--anchor", exported.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert_eq!(out["audit"]["anchor"]["badSeq"], RECORDS, "{out}");
}

fn get(port: u16, path: &str, token: Option<&str>) -> HttpResponse {
    http_full(port, &request("GET", path, token, "", ""))
}

// Goal: with AUDIT_HMAC_KEYS the gateway chains the orders it journals, `/audit/verify` and
// `/audit/anchor` answer (only with a token), metrics show the chain, the first anchor of the
// day is exported, and after a graceful shutdown the whole journal verifies offline.
#[test]
fn gateway_serves_audit_verify_and_anchor() {
    let dir = tempfile::tempdir().unwrap();
    let export = tempfile::tempdir().unwrap();
    let mut gw = Gateway::start(
        dir.path(),
        &[
            ("AUDIT_HMAC_KEYS", KEYS),
            ("AUDIT_KEY_ID", "k2"),
            ("AUDIT_ANCHOR_EXPORT_DIR", export.path().to_str().unwrap()),
        ],
    );
    let tok = token("audit-acct");
    for _ in 0..10 {
        assert_accepted(&post_order(gw.http, &tok, &good_order()));
    }
    let anchor = wait_for(10, "an anchor covering the orders", || {
        let r = get(gw.http, "/audit/anchor", Some(&tok));
        let v = if r.status == 200 {
            r.json()
        } else {
            serde_json::Value::Null
        };
        match v["seq"].as_u64() {
            Some(s) if s >= 10 => Ok(v),
            _ => Err(format!("{} {}", r.status, r.body)),
        }
    });
    assert_eq!(anchor["keyId"], "k2");
    assert!(anchor["at"].as_u64().unwrap() > 1_600_000_000_000);
    assert_eq!(anchor["hash"].as_str().unwrap().len(), 44, "{anchor}");

    let r = get(gw.http, "/audit/verify", Some(&tok));
    assert_eq!(r.status, 200);
    let v = r.assert_json("verify");
    assert_eq!(v["ok"], true, "{v}");
    assert!(v["checked"].as_u64().unwrap() >= 10, "{v}");
    assert!(v["lastSeq"].as_u64().unwrap() >= 10, "{v}");
    assert!(v["error"].is_null(), "{v}");
    let v = get(gw.http, "/audit/verify?fromSeq=3&limit=2", Some(&tok)).json();
    assert_eq!(
        (
            v["ok"].as_bool(),
            v["checked"].as_u64(),
            v["lastSeq"].as_u64()
        ),
        (Some(true), Some(2), Some(4)),
        "{v}"
    );
    // A `fromSeq` past the chain's end, however large, has nothing to check. Found by the API
    // fuzzing test (api_fuzz.rs): the chain entry's byte offset overflowed (a panic in debug
    // builds, answered as "verification failed to run"; a wrapped offset, so a false "audit
    // chain damaged", in release builds).
    for from in [1_000_000, 1 << 59, u64::MAX] {
        let v = get(
            gw.http,
            &format!("/audit/verify?fromSeq={from}"),
            Some(&tok),
        )
        .json();
        assert_eq!(
            (
                v["ok"].as_bool(),
                v["checked"].as_u64(),
                v["error"].is_null()
            ),
            (Some(true), Some(0), true),
            "fromSeq={from}: {v}"
        );
    }

    for path in ["/audit/verify", "/audit/anchor"] {
        let r = get(gw.http, path, None);
        assert_eq!(r.status, 401, "{path}: {}", r.body);
        let r = get(gw.http, path, Some("not.a.token"));
        assert_eq!(r.status, 401, "{path}: {}", r.body);
    }

    assert_eq!(metric(gw.http, "gateway_audit_chain_enabled"), 1.0);
    assert!(metric(gw.http, "gateway_audit_chain_records_total") >= 10.0);
    wait_for(10, "the chain to catch up", || {
        let lag = metric(gw.http, "gateway_audit_chain_lag_records");
        if lag == 0.0 {
            Ok(())
        } else {
            Err(format!("lag {lag}"))
        }
    });
    let stats = get(gw.http, "/stats", None).json();
    assert!(
        stats["gateway_audit_anchor_seq"].as_f64().unwrap() >= 10.0,
        "{stats}"
    );
    let exported: Vec<_> = std::fs::read_dir(export.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(exported.len(), 1, "{exported:?}");
    assert!(exported[0].starts_with("audit.anchor."), "{exported:?}");

    gw.terminate();
    // The final anchor covers the last record (the clean-shutdown marker).
    let last = switchyard_journal::verify(dir.path()).unwrap().last_seq;
    let a = Anchor::read(&audit::default_anchor_path(dir.path()))
        .unwrap()
        .unwrap();
    assert_eq!(a.seq, last);
    let (code, out, stderr) = cli_verify(dir.path(), &[]);
    assert_eq!(code, 0, "{out} {stderr}");
    assert_eq!(out["audit"]["checked"], last);
}

// Goal: without a key the endpoints say so instead of pretending: verify is 200 with the
// reference's error, the anchor is 404.
#[test]
fn gateway_without_keys_reports_chain_off() {
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(dir.path(), &[]);
    let tok = token("audit-off");
    let r = get(gw.http, "/audit/verify", Some(&tok));
    assert_eq!(r.status, 200);
    let v = r.assert_json("verify");
    assert_eq!(v["ok"], false);
    assert_eq!(v["error"], "AUDIT_HMAC_KEY not configured");
    let r = get(gw.http, "/audit/anchor", Some(&tok));
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("anchor not available"))
    );
    assert_eq!(metric(gw.http, "gateway_audit_chain_enabled"), 0.0);
}
