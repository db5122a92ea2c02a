//! Helpers shared by the integration tests: a fixed clock, a known secret,
//! and a way to sign arbitrary (even malformed) header/payload text.
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use switchyard_auth::{mint, AuthConfig, Verifier};

pub const SECRET: &str = "test-secret-with-enough-bytes-0123456789";
pub const NOW: u64 = 1_700_000_000;
pub const DAY: u64 = 86_400;

pub fn config() -> AuthConfig {
    AuthConfig {
        secret: SECRET.into(),
        ..AuthConfig::default()
    }
}

pub fn verifier() -> Verifier {
    Verifier::new(&config()).expect("valid config")
}

pub fn verifier_with(f: impl FnOnce(&mut AuthConfig)) -> Verifier {
    let mut cfg = config();
    f(&mut cfg);
    Verifier::new(&cfg).expect("valid config")
}

/// The load generators' claim set for `account`, valid for a day from NOW.
pub fn claims(account: &str) -> Value {
    json!({ "sub": account, "accountId": account, "iat": NOW, "exp": NOW + DAY })
}

/// A valid token for `account`, signed with the default secret.
pub fn token(account: &str) -> String {
    mint(SECRET.as_bytes(), None, &claims(account))
}

/// A token with the given claims, signed with the default secret.
pub fn token_with(claims: Value) -> String {
    mint(SECRET.as_bytes(), None, &claims)
}

pub fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Correct HS256 signature over `header_b64.payload_b64`, whatever they hold.
pub fn sign_parts(secret: &[u8], header_b64: &str, payload_b64: &str) -> String {
    let signed = format!("{header_b64}.{payload_b64}");
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(signed.as_bytes());
    format!("{signed}.{}", b64(&mac.finalize().into_bytes()))
}

/// Signs raw header and payload text (encoded here), for crafted tokens.
pub fn sign_raw(header: &str, payload: &str) -> String {
    sign_parts(
        SECRET.as_bytes(),
        &b64(header.as_bytes()),
        &b64(payload.as_bytes()),
    )
}

pub fn valid_payload() -> String {
    claims("acct-1").to_string()
}
