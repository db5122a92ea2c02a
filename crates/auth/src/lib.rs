//! Bearer-token authentication for Switchyard.
//!
//! Every order that reaches the gateway, over HTTP or the binary TCP
//! protocol, carries an HS256 JWT. This crate decides whether that token is
//! genuine and current, and which account and session it speaks for. The
//! back office reuses it to authenticate its own callers, which is why it
//! knows nothing about the gateway.
//!
//! What it provides:
//!
//! * [`Verifier`]: full verification ([`Verifier::verify`]) and a lock-free
//!   thread-local cache of verified tokens ([`Verifier::verify_cached`]) so
//!   a client that reuses its token pays no HMAC per order.
//! * [`KeyRing`]: several named keys (`kid`) plus a default one, swapped
//!   atomically at runtime for rotation and revocation without downtime.
//! * [`AuthError`]: the failure vocabulary, with its HTTP status, JSON body
//!   and TCP reason code.
//! * [`mint`] / [`mint_dev`]: token minting for tools, tests and benchmarks.
//!
//! What it must not do: any I/O (no files, sockets, environment or logging —
//! callers pass in configuration text and the current time), or depend on
//! HTTP or protocol types (headers arrive as byte slices, errors leave as
//! plain codes). That keeps it usable from any front end and easy to test
//! with a fixed clock. It also never panics on untrusted input.
//!
//! ```
//! use switchyard_auth::{mint_dev, now_sec, AuthConfig, Verifier};
//!
//! let cfg = AuthConfig { secret: "dev-secret".into(), ..AuthConfig::default() };
//! let verifier = Verifier::new(&cfg)?;
//! let header = format!("Bearer {}", mint_dev("dev-secret", "acct-1", 3600, None));
//! let identity = verifier.authenticate(Some(header.as_bytes()), now_sec())?;
//! assert_eq!(&*identity.account_id, "acct-1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod cache;
mod claims;
mod error;
mod keyring;
mod mint;
mod token;
mod verifier;

pub use cache::CacheStats;
pub use error::{tcp_reason, AuthError, ConfigError};
pub use keyring::KeyRing;
pub use mint::{mint, mint_dev};
pub use token::{MAX_ID_LEN, MAX_TOKEN_LEN};
pub use verifier::{
    AuthConfig, Identity, Verifier, DEFAULT_CACHE_CAPACITY, DEFAULT_CLOCK_SKEW_SEC,
};

/// Current time in whole seconds since the Unix epoch (0 if the clock is
/// set before 1970, rather than panicking).
pub fn now_sec() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
