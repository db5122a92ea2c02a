//! Error types: what a verification can fail with, and how each failure is
//! reported over HTTP and over the binary TCP protocol.
//!
//! The variant names are part of the wire contract (`{"error":"<Variant>"}`),
//! so they are spelled out once, in a single table, and every mapping is
//! generated from it. Adding a variant means adding one table row.

use std::fmt;

/// Reason codes the binary TCP protocol uses for authentication failures.
pub mod tcp_reason {
    /// Any authentication failure that is the client's fault.
    pub const INVALID: u32 = 201;
    /// The token's `exp` (plus skew) is in the past.
    pub const EXPIRED: u32 = 202;
    /// The token's `nbf` (minus skew) is in the future.
    pub const NOT_YET_VALID: u32 = 203;
    /// The gateway itself is misconfigured (no secret).
    pub const INTERNAL: u32 = 204;
}

macro_rules! auth_errors {
    ($( $(#[$doc:meta])* $name:ident => $status:expr, $tcp:expr; )+) => {
        /// Why a request was not authenticated.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum AuthError {
            $( $(#[$doc])* $name, )+
        }

        impl AuthError {
            /// Every variant, in declaration order (handy for exhaustive tests
            /// and for documentation generators).
            pub const ALL: &'static [AuthError] = &[$(AuthError::$name),+];

            /// The variant name, exactly as it appears in error bodies.
            pub const fn as_str(&self) -> &'static str {
                match self { $( AuthError::$name => stringify!($name), )+ }
            }

            /// HTTP status code for this failure.
            pub const fn http_status(&self) -> u16 {
                match self { $( AuthError::$name => $status, )+ }
            }

            /// Reason code for the binary TCP protocol (see [`tcp_reason`]).
            pub const fn tcp_reason_code(&self) -> u32 {
                match self { $( AuthError::$name => $tcp, )+ }
            }

            /// The complete HTTP error body, `{"error":"<Variant>"}`, as a
            /// static string so the error path allocates nothing.
            pub const fn json_body(&self) -> &'static str {
                match self {
                    $( AuthError::$name => concat!("{\"error\":\"", stringify!($name), "\"}"), )+
                }
            }
        }
    };
}

auth_errors! {
    /// No HS256 key is configured at all; a server-side problem.
    SecretNotConfigured => 500, tcp_reason::INTERNAL;
    /// No `Authorization: Bearer <token>` header (or an empty token).
    MissingBearerToken => 401, tcp_reason::INVALID;
    /// Not three dot-separated parts, or longer than the size cap.
    InvalidJwtFormat => 401, tcp_reason::INVALID;
    /// Header is not base64url, not JSON, not an object, or has bad fields.
    InvalidJwtHeader => 401, tcp_reason::INVALID;
    /// Payload is not base64url, not JSON, not an object, or has bad fields.
    InvalidJwtPayload => 401, tcp_reason::INVALID;
    /// Header has no `alg`.
    MissingAlg => 401, tcp_reason::INVALID;
    /// `alg` is anything but `HS256` (including `none`).
    UnsupportedAlg => 401, tcp_reason::INVALID;
    /// The token names a `kid` the key ring does not hold (or has no `kid`
    /// while the ring has no default key).
    UnknownKeyId => 401, tcp_reason::INVALID;
    /// Signature does not match, or is not a 32-byte base64url value.
    InvalidJwtSignature => 401, tcp_reason::INVALID;
    /// Payload has no `exp`.
    MissingExp => 401, tcp_reason::INVALID;
    /// `now > exp + skew`.
    TokenExpired => 401, tcp_reason::EXPIRED;
    /// `now < nbf - skew`.
    TokenNotYetValid => 401, tcp_reason::NOT_YET_VALID;
    /// An issuer is configured and `iss` does not equal it.
    InvalidIssuer => 401, tcp_reason::INVALID;
    /// An audience is configured and no `aud` element equals it.
    InvalidAudience => 401, tcp_reason::INVALID;
    /// Neither a usable `accountId` nor `sub` claim.
    MissingAccountId => 401, tcp_reason::INVALID;
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::error::Error for AuthError {}

/// A configuration problem found while building a [`crate::KeyRing`] or a
/// [`crate::Verifier`]. Messages never contain secret material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    /// One entry of the `kid:secret,...` list is malformed. `index` is
    /// 1-based so it matches how an operator counts entries.
    #[error("JWT key list entry #{index}{}: {reason}", kid_suffix(.kid))]
    BadKeyEntry {
        /// 1-based position of the entry in the list.
        index: usize,
        /// The entry's kid, when it could be read.
        kid: Option<String>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same kid appears twice; which secret is meant would be ambiguous.
    #[error("JWT key id {0:?} is defined more than once")]
    DuplicateKid(String),
    /// A kid given programmatically is empty or contains characters the
    /// list syntax reserves.
    #[error("JWT key id {0:?} is not usable (empty, or contains ',', ':' or whitespace)")]
    BadKid(String),
    /// A secret given programmatically is empty.
    #[error("JWT secret for key id {0:?} is empty")]
    EmptySecret(String),
}

fn kid_suffix(kid: &Option<String>) -> String {
    match kid {
        Some(k) => format!(" (kid {k:?})"),
        None => String::new(),
    }
}
