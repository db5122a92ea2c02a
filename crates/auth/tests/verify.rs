//! Attack and validity matrix for full verification, plus the error
//! mappings and Bearer header parsing.

mod common;

use common::*;
use serde_json::json;
use switchyard_auth::{
    mint, mint_dev, tcp_reason, AuthConfig, AuthError, ConfigError, Verifier, MAX_ID_LEN,
    MAX_TOKEN_LEN,
};
use AuthError::*;

const HS256: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn check(token: &str) -> Result<switchyard_auth::Identity, AuthError> {
    verifier().verify(token, NOW)
}

fn err_of(token: &str) -> AuthError {
    check(token).expect_err("token must be rejected")
}

// Goal: a well-formed token yields the expected identity.
#[test]
fn valid_token() {
    let id = check(&token("acct-1")).unwrap();
    assert_eq!(&*id.account_id, "acct-1");
    assert_eq!(&*id.session_id, "acct-1");
    assert_eq!(id.exp, NOW + DAY);
    assert_eq!(id.nbf, None);
    assert_eq!(id.kid, None);
    assert_eq!(&*id.scopes, "");
}

// Goal: alg "none" is refused, with or without a signature part.
#[test]
fn alg_none() {
    let h = b64(br#"{"alg":"none","typ":"JWT"}"#);
    let p = b64(valid_payload().as_bytes());
    assert_eq!(err_of(&format!("{h}.{p}.")), UnsupportedAlg);
    assert_eq!(
        err_of(&sign_raw(r#"{"alg":"none"}"#, &valid_payload())),
        UnsupportedAlg
    );
}

// Goal: an asymmetric alg is refused (no RS256 public-key/HMAC confusion).
#[test]
fn alg_rs256() {
    assert_eq!(
        err_of(&sign_raw(r#"{"alg":"RS256"}"#, &valid_payload())),
        UnsupportedAlg
    );
}

// Goal: near-miss alg names are refused: other HMAC sizes, wrong case, blanks.
#[test]
fn alg_confusion() {
    for alg in ["HS512", "HS384", "hs256", "Hs256", "HS256 ", ""] {
        let header = json!({ "alg": alg }).to_string();
        assert_eq!(
            err_of(&sign_raw(&header, &valid_payload())),
            UnsupportedAlg,
            "{alg:?}"
        );
    }
}

// Goal: a header without alg (or with alg null) is MissingAlg; a non-string alg is a bad header.
#[test]
fn missing_alg() {
    assert_eq!(
        err_of(&sign_raw(r#"{"typ":"JWT"}"#, &valid_payload())),
        MissingAlg
    );
    assert_eq!(
        err_of(&sign_raw(r#"{"alg":null}"#, &valid_payload())),
        MissingAlg
    );
    assert_eq!(
        err_of(&sign_raw(r#"{"alg":256}"#, &valid_payload())),
        InvalidJwtHeader
    );
}

// Goal: a token signed with another key fails the signature check.
#[test]
fn wrong_key() {
    let t = mint(b"some-other-secret", None, &claims("acct-1"));
    assert_eq!(err_of(&t), InvalidJwtSignature);
}

// Goal: changing the payload after signing is detected.
#[test]
fn tampered_payload() {
    let t = token("acct-1");
    let parts: Vec<&str> = t.split('.').collect();
    let forged = b64(claims("acct-2").to_string().as_bytes());
    assert_eq!(
        err_of(&format!("{}.{forged}.{}", parts[0], parts[2])),
        InvalidJwtSignature
    );
}

// Goal: changing any signature character is detected.
#[test]
fn tampered_signature() {
    let t = token("acct-1");
    let sig_start = t.rfind('.').unwrap() + 1;
    for i in sig_start..t.len() {
        let mut bytes = t.clone().into_bytes();
        bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(bytes).unwrap();
        assert_eq!(err_of(&forged), InvalidJwtSignature, "position {i}");
    }
}

// Goal: truncated tokens fail as bad signature, or bad format once a part is gone.
#[test]
fn truncated_token() {
    let t = token("acct-1");
    assert_eq!(err_of(&t[..t.len() - 1]), InvalidJwtSignature);
    assert_eq!(err_of(&t[..t.rfind('.').unwrap() + 1]), InvalidJwtSignature);
    assert_eq!(err_of(&t[..t.rfind('.').unwrap()]), InvalidJwtFormat);
    assert_eq!(err_of(&t[..10]), InvalidJwtFormat);
    assert_eq!(err_of(""), InvalidJwtFormat);
}

// Goal: only exactly three dot-separated parts are a JWT.
#[test]
fn two_and_four_parts() {
    let t = token("acct-1");
    assert_eq!(err_of(&format!("{t}.extra")), InvalidJwtFormat);
    assert_eq!(err_of(&format!("{t}.")), InvalidJwtFormat);
    assert_eq!(err_of("a.b"), InvalidJwtFormat);
    assert_eq!(err_of("..."), InvalidJwtFormat);
}

// Goal: bad base64url is attributed to the part it occurs in; padding and
// the standard alphabet are refused.
#[test]
fn bad_base64() {
    let p = b64(valid_payload().as_bytes());
    let h = b64(HS256.as_bytes());
    assert_eq!(
        err_of(&sign_parts(SECRET.as_bytes(), "e!!!", &p)),
        InvalidJwtHeader
    );
    assert_eq!(
        err_of(&sign_parts(SECRET.as_bytes(), &format!("{h}=="), &p)),
        InvalidJwtHeader
    );
    assert_eq!(
        err_of(&sign_parts(SECRET.as_bytes(), &h, "eyJ*")),
        InvalidJwtPayload
    );
    assert_eq!(
        err_of(&sign_parts(SECRET.as_bytes(), &h, &format!("{p}="))),
        InvalidJwtPayload
    );
    // A signature with a non-alphabet character, or padding.
    let t = token("acct-1");
    let cut = t.rfind('.').unwrap() + 1;
    assert_eq!(
        err_of(&format!("{}{}", &t[..cut], "+".repeat(43))),
        InvalidJwtSignature
    );
    assert_eq!(err_of(&format!("{t}=")), InvalidJwtSignature);
}

// Goal: a header that is not a JSON object is InvalidJwtHeader.
#[test]
fn header_not_json() {
    for header in [
        "not json",
        "[\"HS256\"]",
        "\"HS256\"",
        "",
        "{\"alg\":\"HS256\"",
    ] {
        assert_eq!(
            err_of(&sign_raw(header, &valid_payload())),
            InvalidJwtHeader,
            "{header:?}"
        );
    }
}

// Goal: a payload that is not a JSON object is InvalidJwtPayload, even when signed.
#[test]
fn payload_not_json() {
    for payload in ["not json", "[1,2]", "42", "", "{\"exp\":1"] {
        assert_eq!(
            err_of(&sign_raw(HS256, payload)),
            InvalidJwtPayload,
            "{payload:?}"
        );
    }
}

// Goal: header and payload must be UTF-8 throughout, even in members the
// verifier ignores (fuzz: a signed payload with `"audpe":"trade o\x86\x86ps"`
// verified, though it is not JSON text).
#[test]
fn parts_must_be_utf8() {
    let payload = [
        &br#"{"sub":"acct-1","exp":1700003600,"audpe":"trade o"#[..],
        &[0x86, 0x86],
        br#"ps"}"#,
    ]
    .concat();
    let t = sign_parts(SECRET.as_bytes(), &b64(HS256.as_bytes()), &b64(&payload));
    assert_eq!(err_of(&t), InvalidJwtPayload);
    assert!(verifier().verify_cached(t.as_bytes(), NOW).is_err());
    let header = [&br#"{"alg":"HS256","x":""#[..], &[0xff], br#""}"#].concat();
    let t = sign_parts(
        SECRET.as_bytes(),
        &b64(&header),
        &b64(valid_payload().as_bytes()),
    );
    assert_eq!(err_of(&t), InvalidJwtHeader);
}

// Goal: a claim of the wrong type makes the payload invalid.
#[test]
fn payload_wrong_types() {
    for payload in [
        json!({ "sub": 5, "exp": NOW + 60 }),
        json!({ "sub": "a", "exp": "soon" }),
        json!({ "sub": "a", "exp": NOW + 60, "aud": { "x": 1 } }),
    ] {
        assert_eq!(err_of(&token_with(payload)), InvalidJwtPayload);
    }
}

// Goal: exp is mandatory.
#[test]
fn missing_exp() {
    assert_eq!(err_of(&token_with(json!({ "sub": "acct-1" }))), MissingExp);
    assert_eq!(
        err_of(&token_with(json!({ "sub": "acct-1", "exp": null }))),
        MissingExp
    );
}

// Goal: a token past exp by more than the skew is expired.
#[test]
fn expired_beyond_skew() {
    let t = token_with(json!({ "sub": "a", "exp": NOW - 31 }));
    assert_eq!(err_of(&t), TokenExpired);
}

// Goal: a token past exp but within the skew (boundary included) is still valid.
#[test]
fn expired_within_skew() {
    assert!(check(&token_with(json!({ "sub": "a", "exp": NOW - 30 }))).is_ok());
    assert!(check(&token_with(json!({ "sub": "a", "exp": NOW - 1 }))).is_ok());
    let strict = verifier_with(|c| c.clock_skew_sec = 0);
    let t = token_with(json!({ "sub": "a", "exp": NOW - 1 }));
    assert_eq!(strict.verify(&t, NOW), Err(TokenExpired));
}

// Goal: a token whose nbf is further ahead than the skew is not yet valid.
#[test]
fn nbf_beyond_skew() {
    let t = token_with(json!({ "sub": "a", "exp": NOW + 600, "nbf": NOW + 31 }));
    assert_eq!(err_of(&t), TokenNotYetValid);
}

// Goal: an nbf ahead by no more than the skew is accepted and reported.
#[test]
fn nbf_within_skew() {
    let t = token_with(json!({ "sub": "a", "exp": NOW + 600, "nbf": NOW + 30 }));
    assert_eq!(check(&t).unwrap().nbf, Some(NOW + 30));
}

// Goal: fractional and negative NumericDates behave sensibly.
#[test]
fn numeric_date_forms() {
    assert!(check(&token_with(
        json!({ "sub": "a", "exp": (NOW + 60) as f64 + 0.5 })
    ))
    .is_ok());
    assert_eq!(
        err_of(&token_with(json!({ "sub": "a", "exp": -1 }))),
        TokenExpired
    );
    assert!(check(&token_with(
        json!({ "sub": "a", "exp": NOW + 60, "nbf": -1 })
    ))
    .is_ok());
}

// Goal: a configured issuer must match exactly; a missing iss fails too.
#[test]
fn issuer() {
    let v = verifier_with(|c| c.issuer = Some("https://idp.example".into()));
    let with_iss = |iss: &str| token_with(json!({ "sub": "a", "exp": NOW + 60, "iss": iss }));
    assert!(v.verify(&with_iss("https://idp.example"), NOW).is_ok());
    assert_eq!(
        v.verify(&with_iss("https://evil.example"), NOW),
        Err(InvalidIssuer)
    );
    assert_eq!(v.verify(&token("a"), NOW), Err(InvalidIssuer));
}

// Goal: without a configured issuer, iss is not checked (and "" means unconfigured).
#[test]
fn issuer_not_configured() {
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60, "iss": "anyone" }));
    assert!(check(&t).is_ok());
    assert!(verifier_with(|c| c.issuer = Some(String::new()))
        .verify(&t, NOW)
        .is_ok());
}

// Goal: audience may be a string or an array; any matching element is enough.
#[test]
fn audience() {
    let v = verifier_with(|c| c.audience = Some("switchyard".into()));
    let with_aud =
        |aud: serde_json::Value| token_with(json!({ "sub": "a", "exp": NOW + 60, "aud": aud }));
    assert!(v.verify(&with_aud(json!("switchyard")), NOW).is_ok());
    assert_eq!(
        v.verify(&with_aud(json!("backoffice")), NOW),
        Err(InvalidAudience)
    );
    assert!(v
        .verify(&with_aud(json!(["backoffice", "switchyard"])), NOW)
        .is_ok());
    assert_eq!(
        v.verify(&with_aud(json!(["backoffice"])), NOW),
        Err(InvalidAudience)
    );
    assert_eq!(v.verify(&with_aud(json!([])), NOW), Err(InvalidAudience));
    assert_eq!(v.verify(&token("a"), NOW), Err(InvalidAudience));
    // Unconfigured: any aud passes.
    assert!(check(&with_aud(json!("whatever"))).is_ok());
}

// Goal: checks run in the documented order (signature before claims, exp before iss).
#[test]
fn check_order() {
    let v = verifier_with(|c| c.issuer = Some("idp".into()));
    let expired_wrong_iss = token_with(json!({ "exp": NOW - 100, "iss": "evil" }));
    assert_eq!(v.verify(&expired_wrong_iss, NOW), Err(TokenExpired));
    let forged_expired = mint(b"wrong", None, &json!({ "exp": NOW - 100 }));
    assert_eq!(v.verify(&forged_expired, NOW), Err(InvalidJwtSignature));
    let wrong_iss_no_id = token_with(json!({ "exp": NOW + 60, "iss": "evil" }));
    assert_eq!(v.verify(&wrong_iss_no_id, NOW), Err(InvalidIssuer));
    let bad_header_bad_sig = format!("e30.{}.AAAA", b64(b"{}"));
    assert_eq!(v.verify(&bad_header_bad_sig, NOW), Err(MissingAlg));
}

// Goal: neither accountId nor sub (or only blank ones) is MissingAccountId.
#[test]
fn missing_sub_and_account_id() {
    assert_eq!(
        err_of(&token_with(json!({ "exp": NOW + 60 }))),
        MissingAccountId
    );
    let blank = json!({ "sub": " ", "accountId": "", "exp": NOW + 60 });
    assert_eq!(err_of(&token_with(blank)), MissingAccountId);
}

// Goal: accountId alone serves as both account and session id.
#[test]
fn account_id_only() {
    let id = check(&token_with(
        json!({ "accountId": "acct-9", "exp": NOW + 60 }),
    ))
    .unwrap();
    assert_eq!((&*id.account_id, &*id.session_id), ("acct-9", "acct-9"));
}

// Goal: sub alone serves as both account and session id.
#[test]
fn sub_only() {
    let id = check(&token_with(json!({ "sub": "user-7", "exp": NOW + 60 }))).unwrap();
    assert_eq!((&*id.account_id, &*id.session_id), ("user-7", "user-7"));
}

// Goal: with both claims, account comes from accountId and session from sub;
// a blank accountId falls back to sub.
#[test]
fn account_and_session_differ() {
    let t = token_with(json!({ "sub": "sess-1", "accountId": "acct-1", "exp": NOW + 60 }));
    let id = check(&t).unwrap();
    assert_eq!((&*id.account_id, &*id.session_id), ("acct-1", "sess-1"));
    let t = token_with(json!({ "sub": "sess-1", "accountId": "  ", "exp": NOW + 60 }));
    assert_eq!(&*check(&t).unwrap().account_id, "sess-1");
}

// Goal: ids up to 128 bytes pass, longer ones are InvalidJwtPayload.
#[test]
fn id_length_cap() {
    let ok = "a".repeat(MAX_ID_LEN);
    assert!(check(&token_with(json!({ "sub": ok, "exp": NOW + 60 }))).is_ok());
    let long = "a".repeat(MAX_ID_LEN + 1);
    let t = token_with(json!({ "accountId": long, "sub": "s", "exp": NOW + 60 }));
    assert_eq!(err_of(&t), InvalidJwtPayload);
    let t = token_with(json!({ "accountId": "a", "sub": long, "exp": NOW + 60 }));
    assert_eq!(err_of(&t), InvalidJwtPayload);
}

// Goal: tokens over 4096 bytes are InvalidJwtFormat even when correctly signed.
#[test]
fn oversized_token() {
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60, "pad": "x".repeat(4000) }));
    assert!(t.len() > MAX_TOKEN_LEN);
    assert_eq!(err_of(&t), InvalidJwtFormat);
    assert_eq!(
        verifier().verify_cached(t.as_bytes(), NOW),
        Err(InvalidJwtFormat)
    );
    // Just under the cap still verifies.
    let pad = "x".repeat(2900);
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60, "pad": pad }));
    assert!(t.len() <= MAX_TOKEN_LEN, "{}", t.len());
    assert!(check(&t).is_ok());
}

// Goal: with no secret configured, every call fails with SecretNotConfigured (HTTP 500).
#[test]
fn empty_secret() {
    let v = Verifier::new(&AuthConfig::default()).unwrap();
    assert_eq!(v.verify(&token("a"), NOW), Err(SecretNotConfigured));
    assert_eq!(v.verify("garbage", NOW), Err(SecretNotConfigured));
    assert_eq!(
        v.verify_cached(token("a").as_bytes(), NOW),
        Err(SecretNotConfigured)
    );
    assert_eq!(v.authenticate(None, NOW), Err(SecretNotConfigured));
    assert_eq!(SecretNotConfigured.http_status(), 500);
}

// Goal: a kid header selects that key, and only that key.
#[test]
fn kid_selects_key() {
    let v = verifier_with(|c| c.keys = "k1:first-secret,k2:base64:c2Vjb25kLXNlY3JldA".into());
    let t1 = mint(b"first-secret", Some("k1"), &claims("a"));
    let t2 = mint(b"second-secret", Some("k2"), &claims("b"));
    assert_eq!(v.verify(&t1, NOW).unwrap().kid.as_deref(), Some("k1"));
    assert_eq!(&*v.verify(&t2, NOW).unwrap().account_id, "b");
    // Right kid, other key's secret: refused.
    let crossed = mint(b"second-secret", Some("k1"), &claims("a"));
    assert_eq!(v.verify(&crossed, NOW), Err(InvalidJwtSignature));
    // A token signed with the default secret but naming a kid is refused.
    let named_default = mint(SECRET.as_bytes(), Some("k1"), &claims("a"));
    assert_eq!(v.verify(&named_default, NOW), Err(InvalidJwtSignature));
    // No kid: default key.
    assert!(v.verify(&token("c"), NOW).unwrap().kid.is_none());
}

// Goal: an unknown kid is UnknownKeyId (401, TCP INVALID), never a fallback to the default key.
#[test]
fn unknown_kid() {
    let v = verifier_with(|c| c.keys = "k1:first-secret".into());
    let t = mint(SECRET.as_bytes(), Some("k9"), &claims("a"));
    assert_eq!(v.verify(&t, NOW), Err(UnknownKeyId));
    assert_eq!(UnknownKeyId.http_status(), 401);
    assert_eq!(UnknownKeyId.tcp_reason_code(), tcp_reason::INVALID);
    // Named keys only: a token without kid has no key to check against.
    let only_named = Verifier::new(&AuthConfig {
        keys: "k1:first-secret".into(),
        ..AuthConfig::default()
    })
    .unwrap();
    assert_eq!(only_named.verify(&token("a"), NOW), Err(UnknownKeyId));
}

// Goal: a header listing critical extensions is refused (RFC 7515 §4.1.11).
#[test]
fn crit_header_rejected() {
    let t = sign_raw(r#"{"alg":"HS256","crit":["exp"]}"#, &valid_payload());
    assert_eq!(err_of(&t), InvalidJwtHeader);
}

// Goal: duplicate header fields are refused instead of letting one win.
#[test]
fn duplicate_alg_rejected() {
    let t = sign_raw(r#"{"alg":"none","alg":"HS256"}"#, &valid_payload());
    assert_eq!(err_of(&t), InvalidJwtHeader);
}

// Goal: scope may be a space-separated string or an array; has_scope matches whole words.
#[test]
fn scopes() {
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60, "scope": "trade  ops" }));
    let id = check(&t).unwrap();
    assert!(id.has_scope("ops") && id.has_scope("trade"));
    assert!(!id.has_scope("op") && !id.has_scope("") && !id.has_scope("trade ops"));
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60, "scope": ["read", "ops"] }));
    assert!(check(&t).unwrap().has_scope("ops"));
    assert!(!check(&token("a")).unwrap().has_scope("ops"));
}

// Goal: mint_dev produces the load generators' claim set and it verifies now.
#[test]
fn mint_dev_shape() {
    let t = mint_dev(SECRET, "acct-42", 86_400, Some("ops"));
    let now = switchyard_auth::now_sec();
    let id = verifier().verify(&t, now).unwrap();
    assert_eq!((&*id.account_id, &*id.session_id), ("acct-42", "acct-42"));
    assert!(id.exp >= now + 86_399 && id.exp <= now + 86_401);
    assert!(id.has_scope("ops"));
    let payload = t.split('.').nth(1).unwrap();
    let json: serde_json::Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(json["sub"], "acct-42");
    assert_eq!(
        json["exp"].as_u64().unwrap() - json["iat"].as_u64().unwrap(),
        86_400
    );
    assert!(mint_dev(SECRET, "a", 60, None).len() < 200);
}

// Goal: Bearer parsing accepts the documented variants and nothing else.
#[test]
fn bearer_parsing() {
    let ok = |h: &str| Verifier::bearer(Some(h.as_bytes())).map(|t| t.to_vec());
    assert_eq!(ok("Bearer abc"), Ok(b"abc".to_vec()));
    assert_eq!(ok("bearer abc"), Ok(b"abc".to_vec()));
    assert_eq!(ok("BEARER abc"), Ok(b"abc".to_vec()));
    assert_eq!(ok("  Bearer   abc  "), Ok(b"abc".to_vec()));
    assert_eq!(ok("Bearer\tabc"), Ok(b"abc".to_vec()));
    for bad in [
        "",
        "   ",
        "Bearer",
        "Bearer ",
        "Bearer    ",
        "Bearerabc",
        "Basic abc",
        "Token abc",
        "Bear abc",
        "abc",
    ] {
        assert_eq!(ok(bad), Err(MissingBearerToken), "{bad:?}");
    }
    assert_eq!(Verifier::bearer(None), Err(MissingBearerToken));
}

// Goal: authenticate chains bearer parsing and cached verification.
#[test]
fn authenticate_header() {
    let v = verifier();
    let header = format!("Bearer {}", token("acct-1"));
    let id = v.authenticate(Some(header.as_bytes()), NOW).unwrap();
    assert_eq!(&*id.account_id, "acct-1");
    assert_eq!(v.authenticate(None, NOW), Err(MissingBearerToken));
    assert_eq!(
        v.authenticate(Some(b"Bearer x.y.z"), NOW),
        Err(InvalidJwtHeader)
    );
}

// Goal: TCP reason codes follow the protocol table.
#[test]
fn tcp_reason_codes() {
    assert_eq!(TokenExpired.tcp_reason_code(), 202);
    assert_eq!(TokenNotYetValid.tcp_reason_code(), 203);
    assert_eq!(SecretNotConfigured.tcp_reason_code(), 204);
    for e in AuthError::ALL {
        if ![TokenExpired, TokenNotYetValid, SecretNotConfigured].contains(e) {
            assert_eq!(e.tcp_reason_code(), 201, "{e}");
        }
    }
}

// Goal: names, statuses and JSON bodies match the contract for every variant.
#[test]
fn error_names_statuses_and_bodies() {
    let names = [
        "SecretNotConfigured",
        "MissingBearerToken",
        "InvalidJwtFormat",
        "InvalidJwtHeader",
        "InvalidJwtPayload",
        "MissingAlg",
        "UnsupportedAlg",
        "UnknownKeyId",
        "InvalidJwtSignature",
        "MissingExp",
        "TokenExpired",
        "TokenNotYetValid",
        "InvalidIssuer",
        "InvalidAudience",
        "MissingAccountId",
    ];
    let got: Vec<&str> = AuthError::ALL.iter().map(AuthError::as_str).collect();
    assert_eq!(got, names);
    for e in AuthError::ALL {
        let status = if *e == SecretNotConfigured { 500 } else { 401 };
        assert_eq!(e.http_status(), status, "{e}");
        let body: serde_json::Value = serde_json::from_str(e.json_body()).unwrap();
        assert_eq!(body, json!({ "error": e.as_str() }));
        assert_eq!(e.to_string(), e.as_str());
    }
}

// Goal: a bad key list is a ConfigError naming the entry, and secrets stay out of Debug.
#[test]
fn config_errors_and_redaction() {
    let cfg = AuthConfig {
        keys: "good:x,oops".into(),
        ..config()
    };
    let err = Verifier::new(&cfg).unwrap_err();
    assert!(
        matches!(err, ConfigError::BadKeyEntry { index: 2, .. }),
        "{err}"
    );
    let shown = format!("{:?} {:?}", config(), verifier());
    assert!(!shown.contains(SECRET), "{shown}");
}
