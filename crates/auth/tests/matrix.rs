//! The JWT attack matrix (issue 7, item 4), table-driven: every row is one hostile or
//! borderline token and the exact verdict, checked through all three entry points —
//! `verify` (uncached), `verify_cached` (twice, so a second call could only be a cache hit)
//! and `authenticate` with a `Bearer` header — which must agree. Then the rows that depend on
//! the header text (whitespace), on key rotation, and on the verified-token cache.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::{json, Value};
use switchyard_auth::{mint, AuthConfig, AuthError, KeyRing, Verifier, MAX_TOKEN_LEN};
use AuthError::*;

/// One row: a token, an optional configuration change, and the expected account or error.
struct Case {
    name: &'static str,
    token: String,
    cfg: fn(&mut AuthConfig),
    want: Result<&'static str, AuthError>,
}

fn no_change(_: &mut AuthConfig) {}

fn case(name: &'static str, token: String, want: Result<&'static str, AuthError>) -> Case {
    Case {
        name,
        token,
        cfg: no_change,
        want,
    }
}

fn with_cfg(
    name: &'static str,
    token: String,
    cfg: fn(&mut AuthConfig),
    want: Result<&'static str, AuthError>,
) -> Case {
    Case {
        name,
        token,
        cfg,
        want,
    }
}

/// The valid claim set of `acct-1`, as JSON text.
fn payload() -> String {
    valid_payload()
}

/// Signs `header` (JSON text) over the valid payload with the test secret.
fn with_header(header: &str) -> String {
    sign_raw(header, &payload())
}

/// Signs the valid header over `payload` (JSON text) with the test secret.
fn with_payload(payload: &str) -> String {
    sign_raw(r#"{"alg":"HS256","typ":"JWT"}"#, payload)
}

/// A token signed with the test secret over claims `extra` merged into a valid set.
fn claims_plus(extra: Value) -> String {
    let mut c = claims("acct-1");
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    token_with(c)
}

/// A token signed with the test secret over the valid claims without `key`.
fn claims_minus(keys: &[&str]) -> String {
    let mut c = claims("acct-1");
    for k in keys {
        c.as_object_mut().unwrap().remove(*k);
    }
    token_with(c)
}

fn replace_sig(token: &str, sig: &str) -> String {
    format!("{}.{sig}", &token[..token.rfind('.').unwrap()])
}

fn issuer_cfg(c: &mut AuthConfig) {
    c.issuer = Some("https://idp.example".into());
}

fn audience_cfg(c: &mut AuthConfig) {
    c.audience = Some("switchyard".into());
}

fn kid_cfg(c: &mut AuthConfig) {
    c.keys = "k-old:old-secret,k-new:new-secret".into();
}

fn matrix() -> Vec<Case> {
    let good = token("acct-1");
    // Skipped unknown values are walked without recursion (serde_json's IgnoredAny), so depth
    // costs no stack; inside a known claim the shape is wrong at the first level.
    let nested = format!(
        r#"{{"sub":"acct-1","exp":{},"deep":{}{}}}"#,
        NOW + DAY,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    let nested_aud = format!(
        r#"{{"sub":"acct-1","exp":{},"aud":{}{}}}"#,
        NOW + DAY,
        "[".repeat(1000),
        "]".repeat(1000)
    );
    vec![
        case("baseline: a valid token", good.clone(), Ok("acct-1")),
        // ---- alg none and alg confusion ----
        case(
            "alg none, empty signature",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","typ":"JWT"}"#),
                b64(payload().as_bytes())
            ),
            Err(UnsupportedAlg),
        ),
        case(
            "alg none, signed anyway",
            with_header(r#"{"alg":"none"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg None",
            with_header(r#"{"alg":"None"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg NONE",
            with_header(r#"{"alg":"NONE"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "RS256 header, HS key used as HMAC secret",
            with_header(r#"{"alg":"RS256","typ":"JWT"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "ES256 header, HS key used as HMAC secret",
            with_header(r#"{"alg":"ES256","typ":"JWT"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "PS256 header",
            with_header(r#"{"alg":"PS256"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "EdDSA header",
            with_header(r#"{"alg":"EdDSA"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "HS512 header",
            with_header(r#"{"alg":"HS512"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg with a trailing space",
            with_header(r#"{"alg":"HS256 "}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg with a leading space",
            with_header(r#"{"alg":" HS256"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg with a trailing NUL",
            with_header(r#"{"alg":"HS256\u0000"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "lowercase alg",
            with_header(r#"{"alg":"hs256"}"#),
            Err(UnsupportedAlg),
        ),
        case(
            "alg as an array",
            with_header(r#"{"alg":["HS256"]}"#),
            Err(InvalidJwtHeader),
        ),
        case(
            "alg missing",
            with_header(r#"{"typ":"JWT"}"#),
            Err(MissingAlg),
        ),
        case(
            "Alg (wrong case key) is not alg",
            with_header(r#"{"Alg":"HS256"}"#),
            Err(MissingAlg),
        ),
        case(
            "duplicate alg: none then HS256",
            with_header(r#"{"alg":"none","alg":"HS256"}"#),
            Err(InvalidJwtHeader),
        ),
        case(
            "duplicate alg: HS256 twice",
            with_header(r#"{"alg":"HS256","alg":"HS256"}"#),
            Err(InvalidJwtHeader),
        ),
        case(
            "crit extension",
            with_header(r#"{"alg":"HS256","crit":["b64"],"b64":false}"#),
            Err(InvalidJwtHeader),
        ),
        case(
            "embedded jwk does not choose the key",
            sign_parts(
                b"attacker-key",
                &b64(br#"{"alg":"HS256","jwk":{"kty":"oct","k":"YXR0YWNrZXIta2V5"}}"#),
                &b64(payload().as_bytes()),
            ),
            Err(InvalidJwtSignature),
        ),
        case(
            "jku / x5u headers are ignored, the signature decides",
            with_header(r#"{"alg":"HS256","jku":"http://evil/keys","x5u":"http://evil/c"}"#),
            Ok("acct-1"),
        ),
        // ---- keys ----
        case(
            "signed with another key",
            mint(b"some-other-secret", None, &claims("acct-1")),
            Err(InvalidJwtSignature),
        ),
        case(
            "signed with an empty-looking key",
            mint(b"\0", None, &claims("acct-1")),
            Err(InvalidJwtSignature),
        ),
        case(
            "payload swapped after signing",
            format!(
                "{}.{}.{}",
                good.split('.').next().unwrap(),
                b64(claims("acct-2").to_string().as_bytes()),
                good.rsplit('.').next().unwrap()
            ),
            Err(InvalidJwtSignature),
        ),
        with_cfg(
            "kid not in JWT_HS256_KEYS (revoked or unknown)",
            mint(b"gone-secret", Some("k-revoked"), &claims("acct-1")),
            kid_cfg,
            Err(UnknownKeyId),
        ),
        with_cfg(
            "kid naming a path",
            mint(
                SECRET.as_bytes(),
                Some("../../../dev/null"),
                &claims("acct-1"),
            ),
            kid_cfg,
            Err(UnknownKeyId),
        ),
        with_cfg(
            "empty kid",
            mint(SECRET.as_bytes(), Some(""), &claims("acct-1")),
            kid_cfg,
            Err(UnknownKeyId),
        ),
        with_cfg(
            "kid of one key, signed with another's secret",
            mint(b"new-secret", Some("k-old"), &claims("acct-1")),
            kid_cfg,
            Err(InvalidJwtSignature),
        ),
        with_cfg(
            "kid signed with the default secret",
            mint(SECRET.as_bytes(), Some("k-old"), &claims("acct-1")),
            kid_cfg,
            Err(InvalidJwtSignature),
        ),
        with_cfg(
            "kid as a number",
            with_header(r#"{"alg":"HS256","kid":7}"#),
            kid_cfg,
            Err(InvalidJwtHeader),
        ),
        with_cfg(
            "a good kid token",
            mint(b"new-secret", Some("k-new"), &claims("acct-1")),
            kid_cfg,
            Ok("acct-1"),
        ),
        // ---- time ----
        case(
            "expired beyond the skew",
            claims_plus(json!({ "exp": NOW - 31 })),
            Err(TokenExpired),
        ),
        case(
            "expired long ago (negative exp)",
            claims_plus(json!({ "exp": -1 })),
            Err(TokenExpired),
        ),
        case(
            "expired within the skew is still valid",
            claims_plus(json!({ "exp": NOW - 30 })),
            Ok("acct-1"),
        ),
        case(
            "nbf beyond the skew",
            claims_plus(json!({ "nbf": NOW + 31 })),
            Err(TokenNotYetValid),
        ),
        case(
            "nbf within the skew",
            claims_plus(json!({ "nbf": NOW + 30 })),
            Ok("acct-1"),
        ),
        case(
            "expired and not yet valid: expiry is reported",
            claims_plus(json!({ "exp": NOW - 100, "nbf": NOW + 100 })),
            Err(TokenExpired),
        ),
        case(
            "exp as a string",
            claims_plus(json!({ "exp": "9999999999" })),
            Err(InvalidJwtPayload),
        ),
        case(
            "nbf as a boolean",
            claims_plus(json!({ "nbf": true })),
            Err(InvalidJwtPayload),
        ),
        // ---- missing claims ----
        case("missing exp", claims_minus(&["exp"]), Err(MissingExp)),
        case(
            "exp null",
            claims_plus(json!({ "exp": null })),
            Err(MissingExp),
        ),
        case(
            "missing accountId and sub",
            claims_minus(&["sub", "accountId"]),
            Err(MissingAccountId),
        ),
        case(
            "blank accountId and sub",
            claims_plus(json!({ "sub": "  ", "accountId": "" })),
            Err(MissingAccountId),
        ),
        case("no claims at all", with_payload("{}"), Err(MissingExp)),
        case(
            "sub as a number",
            claims_plus(json!({ "sub": 42 })),
            Err(InvalidJwtPayload),
        ),
        case(
            "accountId as an object",
            claims_plus(json!({ "accountId": { "id": "acct-2" } })),
            Err(InvalidJwtPayload),
        ),
        // ---- duplicate claims and trailing garbage ----
        case(
            "duplicate exp",
            with_payload(&format!(
                r#"{{"sub":"acct-1","exp":{},"exp":{}}}"#,
                NOW - 1000,
                NOW + DAY
            )),
            Err(InvalidJwtPayload),
        ),
        case(
            "duplicate accountId",
            with_payload(&format!(
                r#"{{"accountId":"acct-1","accountId":"acct-2","exp":{}}}"#,
                NOW + DAY
            )),
            Err(InvalidJwtPayload),
        ),
        case(
            "duplicate sub",
            with_payload(&format!(
                r#"{{"sub":"acct-1","sub":"acct-2","exp":{}}}"#,
                NOW + DAY
            )),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload JSON with trailing garbage",
            with_payload(&format!("{}garbage", payload())),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload: two JSON objects",
            with_payload(&format!("{}{}", payload(), payload())),
            Err(InvalidJwtPayload),
        ),
        case(
            "header JSON with trailing garbage",
            with_header(r#"{"alg":"HS256"}x"#),
            Err(InvalidJwtHeader),
        ),
        case(
            "signed JSON with trailing whitespace is still JSON",
            with_payload(&format!("{} \n", payload())),
            Ok("acct-1"),
        ),
        case(
            "a fourth part",
            format!("{good}.AAAA"),
            Err(InvalidJwtFormat),
        ),
        case("a trailing dot", format!("{good}."), Err(InvalidJwtFormat)),
        case(
            "garbage after the signature",
            format!("{good}xyz"),
            Err(InvalidJwtSignature),
        ),
        case(
            "base64 padding after the signature",
            format!("{good}="),
            Err(InvalidJwtSignature),
        ),
        // ---- malformed base64 / JSON / shape ----
        case(
            "header not base64url",
            sign_parts(SECRET.as_bytes(), "e!!!", &b64(payload().as_bytes())),
            Err(InvalidJwtHeader),
        ),
        case(
            "header in the standard alphabet",
            sign_parts(
                SECRET.as_bytes(),
                "eyJhbGciOiJIUzI1NiJ9+/",
                &b64(payload().as_bytes()),
            ),
            Err(InvalidJwtHeader),
        ),
        case(
            "payload not base64url",
            sign_parts(
                SECRET.as_bytes(),
                &b64(br#"{"alg":"HS256"}"#),
                "!!!not-base64",
            ),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload not JSON",
            with_payload("this is not json"),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload a JSON array",
            with_payload(r#"["acct-1",9999999999]"#),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload truncated JSON",
            with_payload(r#"{"sub":"acct-1","exp":1"#),
            Err(InvalidJwtPayload),
        ),
        case(
            "unknown claim nested 1000 deep (no stack overflow)",
            with_payload(&nested),
            Ok("acct-1"),
        ),
        case(
            "aud nested 1000 deep",
            with_payload(&nested_aud),
            Err(InvalidJwtPayload),
        ),
        case(
            "payload with a lone surrogate escape",
            with_payload(&format!(r#"{{"sub":"\ud800","exp":{}}}"#, NOW + DAY)),
            Err(InvalidJwtPayload),
        ),
        case(
            "header not JSON",
            with_header("not json"),
            Err(InvalidJwtHeader),
        ),
        case(
            "signature too short",
            replace_sig(&good, "AAAA"),
            Err(InvalidJwtSignature),
        ),
        case(
            "signature empty",
            replace_sig(&good, ""),
            Err(InvalidJwtSignature),
        ),
        case(
            "signature of 43 non-alphabet characters",
            replace_sig(&good, &"*".repeat(43)),
            Err(InvalidJwtSignature),
        ),
        case("two parts", "a.b".into(), Err(InvalidJwtFormat)),
        case(
            "five parts (a JWE)",
            "a.b.c.d.e".into(),
            Err(InvalidJwtFormat),
        ),
        case("empty token", String::new(), Err(InvalidJwtFormat)),
        case("only dots", "..".into(), Err(InvalidJwtHeader)),
        // ---- size ----
        case(
            "oversized token (over MAX_TOKEN_LEN), correctly signed",
            claims_plus(json!({ "pad": "x".repeat(MAX_TOKEN_LEN) })),
            Err(InvalidJwtFormat),
        ),
        case(
            "huge header, over the limit",
            sign_raw(
                &json!({ "alg": "HS256", "pad": "h".repeat(MAX_TOKEN_LEN) }).to_string(),
                &payload(),
            ),
            Err(InvalidJwtFormat),
        ),
        case(
            "large header under the limit is fine",
            sign_raw(
                &json!({ "alg": "HS256", "pad": "h".repeat(2000) }).to_string(),
                &payload(),
            ),
            Ok("acct-1"),
        ),
        case(
            "one megabyte of dots and letters",
            "a.".repeat(500_000),
            Err(InvalidJwtFormat),
        ),
        // ---- issuer / audience when configured ----
        with_cfg(
            "issuer configured, token has another",
            claims_plus(json!({ "iss": "https://evil.example" })),
            issuer_cfg,
            Err(InvalidIssuer),
        ),
        with_cfg(
            "issuer configured, token has none",
            good.clone(),
            issuer_cfg,
            Err(InvalidIssuer),
        ),
        with_cfg(
            "issuer configured, a prefix of it",
            claims_plus(json!({ "iss": "https://idp.example.evil" })),
            issuer_cfg,
            Err(InvalidIssuer),
        ),
        with_cfg(
            "issuer configured, iss as an array",
            claims_plus(json!({ "iss": ["https://idp.example"] })),
            issuer_cfg,
            Err(InvalidJwtPayload),
        ),
        with_cfg(
            "issuer configured and matching",
            claims_plus(json!({ "iss": "https://idp.example" })),
            issuer_cfg,
            Ok("acct-1"),
        ),
        with_cfg(
            "audience configured, token for another",
            claims_plus(json!({ "aud": "backoffice" })),
            audience_cfg,
            Err(InvalidAudience),
        ),
        with_cfg(
            "audience configured, token has none",
            good.clone(),
            audience_cfg,
            Err(InvalidAudience),
        ),
        with_cfg(
            "audience configured, different case",
            claims_plus(json!({ "aud": "Switchyard" })),
            audience_cfg,
            Err(InvalidAudience),
        ),
        with_cfg(
            "audience configured, in an array",
            claims_plus(json!({ "aud": ["backoffice", "switchyard"] })),
            audience_cfg,
            Ok("acct-1"),
        ),
        // ---- identity ----
        case(
            "escaped account id decodes to the same account",
            with_payload(&format!(r#"{{"sub":"\u0061cct-1","exp":{}}}"#, NOW + DAY)),
            Ok("acct-1"),
        ),
    ]
}

/// Runs one row through `verify`, `verify_cached` (twice) and `authenticate`.
fn run(c: &Case) {
    let mut cfg = config();
    (c.cfg)(&mut cfg);
    let v = Verifier::new(&cfg).expect("config");
    let got = v.verify(&c.token, NOW).map(|id| id.account_id.to_string());
    let want = c.want.map(str::to_string);
    assert_eq!(got, want, "verify: {}", c.name);
    for round in 0..2 {
        let cached = v
            .verify_cached(c.token.as_bytes(), NOW)
            .map(|id| id.account_id.to_string());
        assert_eq!(cached, want, "verify_cached #{round}: {}", c.name);
    }
    let header = format!("Bearer {}", c.token);
    let authed = v
        .authenticate(Some(header.as_bytes()), NOW)
        .map(|id| id.account_id.to_string());
    let want_authed = match (&want, c.token.is_empty()) {
        // "Bearer " with nothing after it has no token at all.
        (_, true) => Err(MissingBearerToken),
        (w, false) => w.clone(),
    };
    assert_eq!(authed, want_authed, "authenticate: {}", c.name);
    if let Err(e) = c.want {
        assert_eq!(e.http_status(), 401, "{}", c.name);
    }
}

// Goal: every row of the attack matrix gets exactly its verdict, the same through the
// uncached, cached and header entry points, and every refusal is a 401.
#[test]
fn attack_matrix() {
    let rows = matrix();
    assert!(rows.len() > 80, "{} rows", rows.len());
    for c in &rows {
        run(c);
    }
}

// Goal: whitespace around the token in the header is trimmed (spaces and tabs, as the
// Bearer syntax allows); whitespace inside the token, or any other control character around
// it, makes it invalid — never a different identity.
#[test]
fn whitespace_in_tokens() {
    let v = verifier();
    let t = token("acct-1");
    let ok = |h: String| {
        v.authenticate(Some(h.as_bytes()), NOW)
            .map(|i| i.account_id.to_string())
    };
    for h in [
        format!("Bearer {t}"),
        format!("Bearer   {t}"),
        format!("Bearer\t{t}"),
        format!("  Bearer {t}  "),
        format!("Bearer {t}\t"),
    ] {
        assert_eq!(ok(h.clone()), Ok("acct-1".into()), "{h:?}");
    }
    let (h, rest) = t.split_once('.').unwrap();
    let cases = [
        (format!("Bearer {t}\n"), InvalidJwtSignature),
        (format!("Bearer {t}\r"), InvalidJwtSignature),
        (format!("Bearer {t}\x0b"), InvalidJwtSignature),
        (format!("Bearer \n{t}"), InvalidJwtHeader),
        (format!("Bearer {h} .{rest}"), InvalidJwtHeader),
        // The signature covers the space, and is checked before the payload is read.
        (format!("Bearer {h}. {rest}"), InvalidJwtSignature),
        (
            format!("Bearer {}", t.replacen('.', " ", 1)),
            InvalidJwtFormat,
        ),
        (
            format!("Bearer {} {}", &t[..t.len() - 5], &t[t.len() - 5..]),
            InvalidJwtSignature,
        ),
        (format!("Bearer {t} {t}"), InvalidJwtFormat),
    ];
    for (header, want) in cases {
        assert_eq!(ok(header.clone()), Err(want), "{header:?}");
    }
    // Through verify/verify_cached (the TCP path: no trimming at all) a leading or trailing
    // space is part of the token, and it fails.
    assert_eq!(v.verify(&format!(" {t}"), NOW), Err(InvalidJwtHeader));
    assert_eq!(
        v.verify_cached(format!("{t} ").as_bytes(), NOW),
        Err(InvalidJwtSignature)
    );
}

// Goal: a token valid before a rotation that removed its kid fails after it — whether the
// ring is swapped at runtime (cached entry included) or the verifier is rebuilt from a
// configuration without the kid (a restart) — while tokens of the remaining key still pass.
#[test]
fn token_of_a_removed_kid_fails_after_rotation() {
    let old = mint(b"old-secret", Some("k-old"), &claims("acct-1"));
    let new = mint(b"new-secret", Some("k-new"), &claims("acct-2"));
    let v = verifier_with(kid_cfg);
    for _ in 0..2 {
        assert!(v.verify_cached(old.as_bytes(), NOW).is_ok());
        assert!(v.verify_cached(new.as_bytes(), NOW).is_ok());
    }
    v.rotate(KeyRing::parse(SECRET, "k-new:new-secret").unwrap());
    assert_eq!(v.verify_cached(old.as_bytes(), NOW), Err(UnknownKeyId));
    assert_eq!(v.verify(&old, NOW), Err(UnknownKeyId));
    assert!(v.verify_cached(new.as_bytes(), NOW).is_ok());

    // The restart form: a new verifier from the new configuration.
    let restarted = verifier_with(|c| c.keys = "k-new:new-secret".into());
    assert_eq!(restarted.verify(&old, NOW), Err(UnknownKeyId));
    assert!(restarted.verify(&new, NOW).is_ok());

    // Re-using the old kid for a new secret does not revive tokens of the old secret.
    v.rotate(KeyRing::parse(SECRET, "k-old:replacement,k-new:new-secret").unwrap());
    assert_eq!(
        v.verify_cached(old.as_bytes(), NOW),
        Err(InvalidJwtSignature)
    );
}

// Goal: the verified-token cache cannot be abused: once a good token is cached, the same
// header and payload with any other signature text (each other final character — the last
// base64 character carries 2 unused bits, so several spellings would decode to the same tag
// if non-canonical encodings were accepted — each flipped character, a truncation or an
// extension) is never a hit and never passes; and the cache honours expiry and nbf at the
// moment of use.
#[test]
fn cache_cannot_be_abused() {
    let v = verifier();
    let t = token("acct-1");
    let first = v.verify_cached(t.as_bytes(), NOW).unwrap();
    let base = v.cache_stats();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let (stem, last) = t.split_at(t.len() - 1);
    let mut tried = 0;
    for c in alphabet.chars().filter(|c| c.to_string() != last) {
        let forged = format!("{stem}{c}");
        assert!(
            v.verify_cached(forged.as_bytes(), NOW).is_err(),
            "last char {c:?} passed"
        );
        tried += 1;
    }
    let sig_start = t.rfind('.').unwrap() + 1;
    for i in sig_start..t.len() {
        let mut b = t.clone().into_bytes();
        b[i] = if b[i] == b'x' { b'y' } else { b'x' };
        assert!(v.verify_cached(&b, NOW).is_err(), "flip at {i}");
        tried += 1;
    }
    for forged in [
        t[..t.len() - 1].to_string(),
        format!("{t}A"),
        format!("{t}="),
        t[..sig_start].to_string(),
    ] {
        assert!(v.verify_cached(forged.as_bytes(), NOW).is_err(), "{forged}");
        tried += 1;
    }
    let after = v.cache_stats();
    assert_eq!(after.hits, base.hits, "a forged signature hit the cache");
    assert_eq!(after.misses, base.misses + tried);
    assert_eq!(after.inserts, base.inserts);
    // The genuine token is still a hit with the same identity.
    assert!(Arc::ptr_eq(
        &first,
        &v.verify_cached(t.as_bytes(), NOW).unwrap()
    ));

    // Expiry at the moment of use, not of caching (skew 0 makes the edge exact).
    let strict = verifier_with(|c| c.clock_skew_sec = 0);
    let short = token_with(json!({ "sub": "a", "exp": NOW + 10, "nbf": NOW }));
    assert!(strict.verify_cached(short.as_bytes(), NOW).is_ok());
    assert!(strict.verify_cached(short.as_bytes(), NOW + 10).is_ok());
    assert_eq!(
        strict.verify_cached(short.as_bytes(), NOW + 11),
        Err(TokenExpired)
    );
    assert_eq!(
        strict.verify_cached(short.as_bytes(), NOW - 1),
        Err(TokenNotYetValid)
    );

    // A refusal is never cached: a token not yet valid passes once its time comes.
    let early = token_with(json!({ "sub": "a", "exp": NOW + 600, "nbf": NOW + 100 }));
    assert_eq!(
        strict.verify_cached(early.as_bytes(), NOW),
        Err(TokenNotYetValid)
    );
    assert!(strict.verify_cached(early.as_bytes(), NOW + 100).is_ok());
}

// Goal: with no key configured every row fails with SecretNotConfigured (500), valid or not —
// the misconfiguration is never mistaken for a client error, and nothing passes.
#[test]
fn matrix_without_a_key_is_secret_not_configured() {
    let v = Verifier::new(&AuthConfig::default()).unwrap();
    for c in matrix() {
        assert_eq!(
            v.verify_cached(c.token.as_bytes(), NOW).map(|_| ()),
            Err(SecretNotConfigured),
            "{}",
            c.name
        );
    }
}
