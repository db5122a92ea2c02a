//! HS256 signing of raw header and payload bytes, so the `jwt` target can hand the verifier
//! tokens whose signature is right and whose JSON is anything at all (`mint` only signs
//! well-formed claims).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The default key (tokens without `kid`).
pub const DEFAULT_SECRET: &str = "fuzz-default-secret";
/// The one named key, `kid` = [`KID`].
pub const KID: &str = "k1";
pub const KID_SECRET: &str = "fuzz-k1-secret";
/// A key the verifier does not hold.
pub const WRONG_SECRET: &str = "fuzz-wrong-secret";

/// HMAC-SHA256 of `data` under `key`.
pub fn hmac(key: &[u8], data: &[u8]) -> [u8; 32] {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// `b64(header).b64(payload).b64(HS256(key, signed part))`.
pub fn sign(header: &[u8], payload: &[u8], key: &[u8]) -> String {
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(payload, &mut token);
    let tag = hmac(key, token.as_bytes());
    token.push('.');
    URL_SAFE_NO_PAD.encode_string(tag, &mut token);
    token
}
