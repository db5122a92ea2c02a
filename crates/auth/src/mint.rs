//! Token minting for development tools, load generators and tests.
//!
//! Production tokens come from an identity provider; these helpers exist so
//! `switchyard token`, the benchmarks and the tests can make valid tokens
//! without one.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;
use serde_json::{json, Value};

use crate::keyring::HmacSha256;

/// Signs `claims` with HS256 under `secret`, adding a `kid` header if given.
pub fn mint(secret: &[u8], kid: Option<&str>, claims: &Value) -> String {
    let header = match kid {
        Some(kid) => json!({ "alg": "HS256", "typ": "JWT", "kid": kid }),
        None => json!({ "alg": "HS256", "typ": "JWT" }),
    };
    // Serialising a `Value` cannot fail (its map keys are always strings).
    let header = serde_json::to_vec(&header).unwrap_or_default();
    let payload = serde_json::to_vec(claims).unwrap_or_default();

    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let tag = sign(secret, token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}

/// The load generators' token shape:
/// `{"sub":account,"accountId":account,"iat":now,"exp":now+ttl[,"scope":scope]}`.
pub fn mint_dev(secret: &str, account: &str, ttl_sec: u64, scope: Option<&str>) -> String {
    let now = crate::now_sec();
    let mut claims = json!({
        "sub": account,
        "accountId": account,
        "iat": now,
        "exp": now.saturating_add(ttl_sec),
    });
    if let (Some(scope), Some(map)) = (scope, claims.as_object_mut()) {
        map.insert("scope".into(), Value::from(scope));
    }
    mint(secret.as_bytes(), None, &claims)
}

fn sign(secret: &[u8], data: &[u8]) -> [u8; 32] {
    // HMAC takes keys of any length, so this never fails; the fallback
    // (an all-zero tag) would simply never verify.
    match HmacSha256::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().into()
        }
        Err(_) => [0; 32],
    }
}
