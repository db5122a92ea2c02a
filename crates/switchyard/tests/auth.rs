//! Authentication failures of every kind, over HTTP (exact `{"error":"<Variant>"}` bodies with
//! 401/500, §2.1) and over the v3 binary protocol (kind 4 = DECODE_ERROR, codes 201–204, §2.4).

mod common;

use common::*;
use serde_json::{json, Value};

const ISS: &str = "sy-iss";
const AUD: &str = "sy-aud";
const ROTATED: &str = "rotated-secret";

fn now() -> u64 {
    switchyard_auth::now_sec()
}

/// Claims that pass every check of the gateway below (issuer and audience enforced).
fn claims() -> Value {
    json!({"sub": "au", "accountId": "au", "iat": now(), "exp": now() + 3600, "iss": ISS, "aud": AUD})
}

fn with(mut c: Value, key: &str, v: Value) -> Value {
    c[key] = v;
    c
}

fn without(mut c: Value, key: &str) -> Value {
    c.as_object_mut().unwrap().remove(key);
    c
}

fn sign(c: Value) -> String {
    token_with(c)
}

/// A token with a hand-made header (the signature is whatever `sig` says).
fn raw_token(header: &Value, payload: &Value, sig: &str) -> String {
    format!(
        "{}.{}.{sig}",
        b64url(header.to_string().as_bytes()),
        b64url(payload.to_string().as_bytes())
    )
}

struct Case {
    what: &'static str,
    /// The token (sent as `Authorization: Bearer <token>` and inside a TCP frame).
    token: String,
    variant: &'static str,
    tcp_code: u32,
}

fn cases() -> Vec<Case> {
    let case = |what, token, variant, tcp_code| Case {
        what,
        token,
        variant,
        tcp_code,
    };
    vec![
        case("not three parts", "abc".into(), "InvalidJwtFormat", 201),
        case("four parts", "a.b.c.d".into(), "InvalidJwtFormat", 201),
        case(
            "header not base64url",
            "!!!.e30.sig".into(),
            "InvalidJwtHeader",
            201,
        ),
        case(
            "header without alg",
            raw_token(&json!({"typ": "JWT"}), &claims(), "x"),
            "MissingAlg",
            201,
        ),
        case(
            "alg none",
            raw_token(&json!({"alg": "none", "typ": "JWT"}), &claims(), ""),
            "UnsupportedAlg",
            201,
        ),
        case(
            "alg HS512",
            raw_token(&json!({"alg": "HS512", "typ": "JWT"}), &claims(), "x"),
            "UnsupportedAlg",
            201,
        ),
        case(
            "kid not in the key ring",
            switchyard_auth::mint(SECRET.as_bytes(), Some("k9"), &claims()),
            "UnknownKeyId",
            201,
        ),
        case(
            "signed with another secret",
            switchyard_auth::mint(b"some-other-secret", None, &claims()),
            "InvalidJwtSignature",
            201,
        ),
        case(
            "signature cut short",
            {
                let t = sign(claims());
                t[..t.len() - 2].to_string()
            },
            "InvalidJwtSignature",
            201,
        ),
        case(
            "payload is not an object",
            sign(json!("just a string")),
            "InvalidJwtPayload",
            201,
        ),
        case(
            "missing exp",
            sign(without(claims(), "exp")),
            "MissingExp",
            201,
        ),
        case(
            "expired",
            sign(with(claims(), "exp", json!(now() - 3600))),
            "TokenExpired",
            202,
        ),
        case(
            "not yet valid",
            sign(with(claims(), "nbf", json!(now() + 3600))),
            "TokenNotYetValid",
            203,
        ),
        case(
            "wrong issuer",
            sign(with(claims(), "iss", json!("someone-else"))),
            "InvalidIssuer",
            201,
        ),
        case(
            "missing issuer",
            sign(without(claims(), "iss")),
            "InvalidIssuer",
            201,
        ),
        case(
            "wrong audience",
            sign(with(claims(), "aud", json!(["x", "y"]))),
            "InvalidAudience",
            201,
        ),
        case(
            "no accountId and no sub",
            sign(without(without(claims(), "sub"), "accountId")),
            "MissingAccountId",
            201,
        ),
        case(
            "blank accountId and sub",
            sign(with(
                with(claims(), "sub", json!(" ")),
                "accountId",
                json!(""),
            )),
            "MissingAccountId",
            201,
        ),
    ]
}

fn auth_gateway(dir: &std::path::Path) -> Gateway {
    Gateway::start(
        dir,
        &[
            ("V3_SHARD_COUNT", "1"),
            ("JWT_ISSUER", ISS),
            ("JWT_AUDIENCE", AUD),
            ("JWT_HS256_KEYS", &format!("k1:{ROTATED}")),
        ],
    )
}

fn assert_auth_error(r: &HttpResponse, status: u16, variant: &str, what: &str) {
    r.assert_json(what);
    assert_eq!(
        (r.status, r.body.as_str()),
        (status, format!("{{\"error\":\"{variant}\"}}").as_str()),
        "{what}"
    );
}

// Goal: each token defect is 401 with its exact {"error":"<Variant>"} body on every protected endpoint.
#[test]
fn http_auth_failures_have_exact_bodies() {
    // Every token defect gets its own variant, as an exact `{"error":…}` body with 401, on the hot
    // path, the confirm query and the admin API alike.
    let dir = tempfile::tempdir().unwrap();
    let gw = auth_gateway(dir.path());
    let body = good_order();
    for c in cases() {
        let r = post_order(gw.http, &c.token, &body);
        assert_auth_error(&r, 401, c.variant, c.what);
        let r = http_full(
            gw.http,
            &request("GET", "/v3/orders/au/1", Some(&c.token), "", ""),
        );
        assert_auth_error(&r, 401, c.variant, c.what);
        let r = http_full(
            gw.http,
            &request("GET", "/v3/admin/kill-switches", Some(&c.token), "", ""),
        );
        assert_auth_error(&r, 401, c.variant, c.what);
    }
    // Header-level defects: no header, another scheme, an empty bearer.
    let json_ct = "Content-Type: application/json\r\n";
    for (what, auth) in [
        ("no Authorization header", ""),
        ("Basic scheme", "Authorization: Basic YWxpY2U6cHc=\r\n"),
        ("empty bearer", "Authorization: Bearer \r\n"),
        ("scheme without separator", "Authorization: Bearerxyz\r\n"),
    ] {
        let r = http_full(
            gw.http,
            &request(
                "POST",
                "/v3/orders",
                None,
                &format!("{auth}{json_ct}"),
                &body,
            ),
        );
        assert_auth_error(&r, 401, "MissingBearerToken", what);
    }
    // Nothing above consumed a sequence number or created a session; a good token works.
    let r = post_order(gw.http, &sign(claims()), &body);
    assert_eq!(assert_accepted(&r), 1, "{}", r.body);
    assert!(metric(gw.http, "gateway_auth_failures_total") >= cases().len() as f64);
}

// Goal: case-insensitive scheme, aud arrays, rotated kid keys, sub-only/accountId-only tokens pass.
#[test]
fn http_auth_accepts_valid_variants() {
    // Identity rules — the scheme is case-insensitive, `aud` may be an array, a rotated key (`kid`)
    // verifies, `sub` alone or `accountId` alone is enough (session = sub, else account).
    let dir = tempfile::tempdir().unwrap();
    let gw = auth_gateway(dir.path());
    let body = good_order();
    let json_ct = "Content-Type: application/json\r\n";
    let t = sign(claims());
    let r = http_full(
        gw.http,
        &request(
            "POST",
            "/v3/orders",
            None,
            &format!("Authorization: bEaReR   {t}\r\n{json_ct}"),
            &body,
        ),
    );
    assert_accepted(&r);
    let r = post_order(
        gw.http,
        &sign(with(claims(), "aud", json!(["x", AUD]))),
        &body,
    );
    assert_accepted(&r);
    let rotated = switchyard_auth::mint(
        ROTATED.as_bytes(),
        Some("k1"),
        &with(claims(), "sub", json!("rot")),
    );
    assert_eq!(
        post_order(gw.http, &rotated, &body).json()["sessionId"],
        "rot"
    );
    let only_sub = sign(without(
        with(claims(), "sub", json!("only-sub")),
        "accountId",
    ));
    assert_eq!(
        post_order(gw.http, &only_sub, &body).json()["sessionId"],
        "only-sub"
    );
    let only_account = sign(without(
        with(claims(), "accountId", json!("only-acct")),
        "sub",
    ));
    assert_eq!(
        post_order(gw.http, &only_account, &body).json()["sessionId"],
        "only-acct"
    );
    // Inside the skew (30 s) an expired token still passes.
    let r = post_order(
        gw.http,
        &sign(with(claims(), "exp", json!(now() - 5))),
        &body,
    );
    assert_accepted(&r);
}

// Goal: over TCP token defects are kind 4, 401, code 201/202/203, and the connection survives them.
#[test]
fn tcp_auth_failures_have_codes() {
    // Over TCP the same defects answer kind 4 with 401 and codes 201 (invalid), 202 (expired), 203
    // (not yet valid); the connection survives every one of them.
    let dir = tempfile::tempdir().unwrap();
    let gw = auth_gateway(dir.path());
    let cases = cases();
    let mut frames: Vec<Vec<u8>> = cases
        .iter()
        .map(|c| {
            assert!(
                c.token.len() <= 256,
                "{}: token too long for a frame",
                c.what
            );
            frame(&c.token, "AAPL", 1, 1, 1, 100)
        })
        .collect();
    frames.push(frame(&sign(claims()), "AAPL", 1, 1, 1, 100));
    let mut s = tcp_connect(gw.tcp);
    let resp = tcp_exchange(&mut s, &frames);
    for (c, r) in cases.iter().zip(&resp) {
        assert_eq!(
            (r.kind, r.status, r.reason),
            (KIND_DECODE_ERROR, 401, c.tcp_code),
            "{}: {r:?}",
            c.what
        );
        assert_eq!(r.session_seq, 0);
    }
    let last = resp.last().unwrap();
    assert_eq!(
        (last.kind, last.status, last.session_seq),
        (KIND_ACCEPT, 202, 1),
        "{last:?}"
    );
}

// Goal: an empty JWT_HS256_SECRET makes every protected call 500 SecretNotConfigured (TCP 204).
#[test]
fn empty_secret_is_secret_not_configured() {
    // With an empty JWT_HS256_SECRET every protected call is 500 SecretNotConfigured — with or
    // without a token, on every protected endpoint — and TCP answers kind 4, 500, code 204;
    // unprotected endpoints still work.
    let dir = tempfile::tempdir().unwrap();
    let gw = Gateway::start(
        dir.path(),
        &[("JWT_HS256_SECRET", ""), ("V3_SHARD_COUNT", "1")],
    );
    let body = good_order();
    let valid = token("someone");
    let json_ct = "Content-Type: application/json\r\n";
    let requests = [
        request("POST", "/v3/orders", Some(&valid), json_ct, &body),
        request("POST", "/v3/orders", Some("garbage"), json_ct, &body),
        request("POST", "/v3/orders", None, json_ct, &body),
        request("GET", "/v3/orders/someone/1", Some(&valid), "", ""),
        request("GET", "/v3/orders/someone/1", None, "", ""),
        request(
            "GET",
            "/v3/admin/kill-switches",
            Some(&ops_token("ops")),
            "",
            "",
        ),
        request(
            "POST",
            "/v3/admin/kill-switches",
            None,
            json_ct,
            r#"{"scope":"global","on":true}"#,
        ),
    ];
    for req in &requests {
        let r = http_full(gw.http, req);
        let line = String::from_utf8_lossy(req)
            .lines()
            .next()
            .unwrap()
            .to_string();
        assert_auth_error(&r, 500, "SecretNotConfigured", &line);
    }
    let r = tcp_one(gw.tcp, frame(&valid, "AAPL", 1, 1, 1, 100));
    assert_frame(&r, KIND_DECODE_ERROR, 500, 204);
    let (code, _) = http_get(gw.http, "/health", None).unwrap();
    assert_eq!(code, 200);
    let (code, _) = http_get(gw.http, "/metrics", None).unwrap();
    assert_eq!(code, 200);
}
