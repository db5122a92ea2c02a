//! What the fuzz targets share: the parsers that live in crates too heavy to build under
//! libFuzzer, the JWT signing the `jwt` target needs, and the `journal_segments` target's
//! input format with a reference reader of the journal's on-disk format.
//!
//! The gateway and back-office crates pull in librdkafka (built from C sources), sqlx, tokio
//! and hyper; instrumenting all of that would take most of the CI budget. Their parsers are
//! plain modules with no dependency on the rest of their crate, so they are compiled here
//! from the very same source files (`#[path]`): the code fuzzed is the code shipped.

pub mod journal;
pub mod jwt;

/// `crates/gateway/src/records.rs`: the gateway's journal record payloads.
#[path = "../../crates/gateway/src/records.rs"]
pub mod records;

/// `crates/backoffice/src/rules.rs`: the book-keeping arithmetic (`books` uses it).
#[path = "../../crates/backoffice/src/rules.rs"]
pub mod rules;

/// `crates/backoffice/src/event.rs`: what the back office reads out of a bus event.
#[path = "../../crates/backoffice/src/event.rs"]
pub mod event;

/// `crates/backoffice/src/books.rs`: events booked into the in-memory books.
#[path = "../../crates/backoffice/src/books.rs"]
pub mod books;

/// Where targets that need files put them: a directory on tmpfs when there is one (journal
/// recovery syncs what it truncates, which on a disk would dominate the run), chosen by
/// `SWITCHYARD_FUZZ_TMP` (scripts/fuzz.sh points it at a directory it removes afterwards).
pub fn scratch_dir(name: &str) -> std::path::PathBuf {
    let base = std::env::var_os("SWITCHYARD_FUZZ_TMP")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let shm = std::path::Path::new("/dev/shm");
            if shm.is_dir() {
                shm.to_path_buf()
            } else {
                std::env::temp_dir()
            }
        });
    base.join(format!("switchyard-fuzz-{name}-{}", std::process::id()))
}
