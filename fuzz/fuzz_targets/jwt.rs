//! Goal: the JWT verifier (`switchyard-auth`) accepts only what a careful reading of RFC 7519
//! and §2.1 accepts, and its cache never answers differently from a full verification.
//!
//! Input: `[mode][rest]`. Mode bit 0 set: `rest` is `header JSON 0xFF payload JSON` (no
//! 0xFF: the header is `{"alg":"HS256"}`), signed by the harness with the key that bits 1–2
//! pick (default key, the `k1` key, a key the verifier does not hold), so the claims parser
//! and the checks after the signature are reached. Bit 0 clear: `rest` is the token as sent,
//! and also an `Authorization` header value.
//!
//! Checked for every token, at several clock readings (now, 0, u64::MAX, just inside and
//! outside the skew, now again):
//! - the cached path (`verify_cached`, miss then hits) equals full verification (`verify`);
//! - an accepted token is sound: a JSON object header with `alg` HS256, no `crit`, the kid's
//!   key (or the default key without kid) really signed it, an object payload with a numeric
//!   `exp` not past (with the skew), `nbf` not ahead, and the identity is `accountId` else
//!   `sub` (non-blank, at most 128 bytes), session `sub` else the account, scopes as given;
//! - a stricter policy (issuer, audience) accepts a subset, only with the right `iss`/`aud`;
//! - changing the signature's last character, or revoking the kid, makes it fail — cached too;
//! - `bearer` returns the trimmed token after a case-insensitive `Bearer` and a space or tab,
//!   and `authenticate` is `bearer` then `verify_cached`.
#![no_main]

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use switchyard_auth::{AuthConfig, AuthError, Identity, Verifier, MAX_ID_LEN};
use switchyard_fuzz::jwt::{hmac, sign, DEFAULT_SECRET, KID, KID_SECRET, WRONG_SECRET};

const NOW: u64 = 1_700_000_000;
const SKEW: u64 = 30;
const ISSUER: &str = "iss-1";
const AUDIENCE: &str = "aud-1";

fn config(policy: bool) -> AuthConfig {
    AuthConfig {
        secret: DEFAULT_SECRET.into(),
        keys: format!("{KID}:{KID_SECRET}"),
        issuer: policy.then(|| ISSUER.into()),
        audience: policy.then(|| AUDIENCE.into()),
        clock_skew_sec: SKEW,
        // Small, so that evictions and the young/old generations are exercised.
        cache_capacity: 4,
    }
}

fn same(cached: &Result<Arc<Identity>, AuthError>, full: &Result<Identity, AuthError>) -> bool {
    match (cached, full) {
        (Ok(a), Ok(b)) => **a == *b,
        (Err(a), Err(b)) => a == b,
        _ => false,
    }
}

/// Cached and full verification agree at `now`; returns the full result.
fn agree(v: &Verifier, token: &[u8], now: u64) -> Result<Identity, AuthError> {
    let full = match std::str::from_utf8(token) {
        Ok(t) => v.verify(t, now),
        // `verify` takes text; non-UTF-8 bytes only reach the byte API.
        Err(_) => v.verify_cached(token, now).map(|a| (*a).clone()),
    };
    for _ in 0..2 {
        let cached = v.verify_cached(token, now);
        assert!(
            same(&cached, &full),
            "cached {cached:?} != full {full:?} at {now}"
        );
    }
    full
}

/// The header members the verifier reads, as a general JSON parser reads them. (Other
/// members are skipped, as by the verifier: JSON's grammar allows numbers such as `1e400`
/// that a `Value` cannot hold.)
#[derive(Deserialize)]
struct HeaderView {
    #[serde(default)]
    alg: Option<Value>,
    #[serde(default)]
    kid: Option<Value>,
    #[serde(default)]
    crit: Option<Value>,
}

/// The claims the verifier reads.
#[derive(Deserialize)]
struct ClaimsView {
    #[serde(default)]
    sub: Option<Value>,
    #[serde(default, rename = "accountId")]
    account_id: Option<Value>,
    #[serde(default)]
    exp: Option<Value>,
    #[serde(default)]
    nbf: Option<Value>,
    #[serde(default)]
    iat: Option<Value>,
    #[serde(default)]
    iss: Option<Value>,
    #[serde(default)]
    aud: Option<Value>,
    #[serde(default)]
    scope: Option<Value>,
}

/// An accepted part: base64url of UTF-8 text holding one JSON object.
fn decode_part<T: DeserializeOwned>(part: &[u8]) -> T {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .expect("accepted part is base64url");
    let text = std::str::from_utf8(&bytes).expect("accepted part is UTF-8");
    let body = text.trim_start_matches([' ', '\t', '\n', '\r']);
    assert!(body.starts_with('{'), "accepted part is not an object");
    serde_json::from_str(text).expect("accepted part is a JSON object")
}

/// RFC 7519 NumericDate as §2.1 reads it: fractions cut, negatives 0, huge values saturate.
fn numeric(v: &Value) -> u64 {
    let n = v.as_number().expect("a NumericDate is a number");
    n.as_u64()
        .or_else(|| n.as_i64().map(|_| 0))
        .unwrap_or_else(|| n.as_f64().expect("number") as u64)
}

fn non_blank(v: Option<&Value>) -> Option<&str> {
    v.and_then(Value::as_str).filter(|s| !s.trim().is_empty())
}

/// An accepted token must deserve it.
fn sound(token: &[u8], id: &Identity, now: u64, policy: bool) {
    let parts: Vec<&[u8]> = token.split(|&b| b == b'.').collect();
    assert_eq!(parts.len(), 3, "accepted token without three parts");
    let header: HeaderView = decode_part(parts[0]);
    assert_eq!(header.alg, Some(Value::from("HS256")));
    assert!(header.crit.is_none(), "crit accepted");
    let kid = header
        .kid
        .as_ref()
        .map(|k| k.as_str().expect("kid is a string"));
    assert_eq!(id.kid.as_deref(), kid);
    let key = match kid {
        None => DEFAULT_SECRET,
        Some(KID) => KID_SECRET,
        Some(other) => panic!("accepted unknown kid {other:?}"),
    };
    let signed = &token[..parts[0].len() + 1 + parts[1].len()];
    let sig = URL_SAFE_NO_PAD
        .decode(parts[2])
        .expect("signature base64url");
    assert_eq!(
        sig,
        hmac(key.as_bytes(), signed),
        "accepted a wrong signature"
    );

    let claims: ClaimsView = decode_part(parts[1]);
    let exp = numeric(claims.exp.as_ref().expect("accepted without exp"));
    assert_eq!(id.exp, exp);
    assert!(now <= exp.saturating_add(SKEW), "accepted expired token");
    let nbf = claims.nbf.as_ref().map(numeric);
    assert_eq!(id.nbf, nbf);
    if let Some(nbf) = nbf {
        assert!(now >= nbf.saturating_sub(SKEW), "accepted token before nbf");
    }
    if let Some(iat) = &claims.iat {
        assert!(iat.is_number(), "accepted non-numeric iat");
    }
    let sub = non_blank(claims.sub.as_ref());
    let account = non_blank(claims.account_id.as_ref())
        .or(sub)
        .expect("no account");
    assert_eq!(&*id.account_id, account);
    assert_eq!(&*id.session_id, sub.unwrap_or(account));
    assert!(id.account_id.len() <= MAX_ID_LEN && id.session_id.len() <= MAX_ID_LEN);
    let scopes = match &claims.scope {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(a)) => a
            .iter()
            .map(|s| s.as_str().expect("scope element is a string"))
            .collect::<Vec<_>>()
            .join(" "),
        Some(other) => panic!("accepted scope {other}"),
    };
    assert_eq!(&*id.scopes, scopes);
    if policy {
        assert_eq!(claims.iss.as_ref().and_then(Value::as_str), Some(ISSUER));
        let aud_ok = match &claims.aud {
            Some(Value::String(s)) => s == AUDIENCE,
            Some(Value::Array(a)) => a.iter().any(|s| s.as_str() == Some(AUDIENCE)),
            _ => false,
        };
        assert!(aud_ok, "accepted without the audience");
    }
}

/// A token with its signature's last character changed (still base64url).
fn tampered(token: &[u8]) -> Vec<u8> {
    let mut t = token.to_vec();
    if let Some(last) = t.last_mut() {
        *last = if *last == b'A' { b'Q' } else { b'A' };
    }
    t
}

fn check_token(v: &Verifier, strict: &Verifier, token: &[u8]) {
    let times = [NOW, 0, u64::MAX, NOW + SKEW + 1, NOW - SKEW - 1, NOW];
    for now in times {
        let r = agree(v, token, now);
        let rs = agree(strict, token, now);
        if let Ok(id) = &r {
            sound(token, id, now, false);
            let bad = tampered(token);
            if bad != token {
                assert_eq!(
                    agree(v, &bad, now),
                    Err(AuthError::InvalidJwtSignature),
                    "tampered signature"
                );
            }
        }
        if let Ok(id) = &rs {
            sound(token, id, now, true);
            assert!(
                r.is_ok(),
                "the strict policy accepted what the lax one refused"
            );
        }
        if now == NOW {
            if let Ok(Identity { kid: Some(_), .. }) = &r {
                // A revoked key fails at once, cached or not; put back, it verifies again.
                assert!(v.revoke(KID));
                assert_eq!(agree(v, token, now), Err(AuthError::UnknownKeyId));
                v.add_key(KID, KID_SECRET.as_bytes()).expect("kid is valid");
                assert!(agree(v, token, now).is_ok(), "re-added key");
            }
        }
    }
}

fn check_bearer(v: &Verifier, header: &[u8]) {
    let is_space = |b: &u8| *b == b' ' || *b == b'\t';
    match Verifier::bearer(Some(header)) {
        Ok(tok) => {
            assert!(!tok.is_empty());
            assert!(!is_space(&tok[0]) && !is_space(&tok[tok.len() - 1]));
            let start = tok.as_ptr() as usize - header.as_ptr() as usize;
            let lead = header.iter().take_while(|b| is_space(b)).count();
            assert!(
                header[lead..].len() > 6 && header[lead..lead + 6].eq_ignore_ascii_case(b"bearer")
            );
            assert!(is_space(&header[lead + 6]));
            assert!(header[lead + 6..start].iter().all(is_space));
            assert!(header[start + tok.len()..].iter().all(is_space));
            let direct = v.verify_cached(tok, NOW);
            let auth = v.authenticate(Some(header), NOW);
            assert_eq!(auth.map(|a| (*a).clone()), direct.map(|a| (*a).clone()));
        }
        Err(e) => {
            assert_eq!(e, AuthError::MissingBearerToken);
            assert_eq!(v.authenticate(Some(header), NOW).err(), Some(e));
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    // Fresh verifiers: each input starts with empty caches, so a run is reproducible.
    let v = Verifier::new(&config(false)).expect("config");
    let strict = Verifier::new(&config(true)).expect("config");
    if mode & 1 == 0 {
        check_token(&v, &strict, rest);
        check_bearer(&v, rest);
        return;
    }
    let (header, payload) = match rest.iter().position(|&b| b == 0xff) {
        Some(i) => (&rest[..i], &rest[i + 1..]),
        None => (&br#"{"alg":"HS256"}"#[..], rest),
    };
    let key = match (mode >> 1) & 3 {
        0 | 3 => DEFAULT_SECRET,
        1 => KID_SECRET,
        _ => WRONG_SECRET,
    };
    let token = sign(header, payload, key.as_bytes());
    check_token(&v, &strict, token.as_bytes());
    check_bearer(&v, format!("bearer \t{token} ").as_bytes());
});
