//! Cost of authenticating one order with a realistic (~180-byte) HS256
//! token: full verification (base64 + JSON + HMAC, what a cache miss
//! pays), a verified-token cache hit (what a client reusing its token pays
//! per order), and the same hit reached through `authenticate`, which also
//! parses the `Authorization` header.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use switchyard_auth::{mint, now_sec, AuthConfig, Verifier};

const SECRET: &str = "bench-secret-0123456789abcdef0123456789";

/// The load generators' claim shape, with a typical account id.
fn realistic_token(now: u64) -> String {
    let claims = json!({
        "sub": "acct-000042",
        "accountId": "acct-000042",
        "iat": now,
        "exp": now + 86_400,
    });
    mint(SECRET.as_bytes(), None, &claims)
}

fn bench_auth(c: &mut Criterion) {
    let cfg = AuthConfig {
        secret: SECRET.into(),
        ..AuthConfig::default()
    };
    let verifier = Verifier::new(&cfg).expect("valid config");
    let now = now_sec();
    let token = realistic_token(now);
    let header = format!("Bearer {token}");
    assert!(verifier.verify(&token, now).is_ok());
    eprintln!("token length: {} bytes", token.len());

    let mut group = c.benchmark_group("auth");
    group.bench_function("verify_full", |b| {
        b.iter(|| verifier.verify(black_box(&token), black_box(now)))
    });
    group.bench_function("verify_cached_hit", |b| {
        b.iter(|| verifier.verify_cached(black_box(token.as_bytes()), black_box(now)))
    });
    group.bench_function("authenticate_header_hit", |b| {
        b.iter(|| verifier.authenticate(black_box(Some(header.as_bytes())), black_box(now)))
    });
    group.finish();
}

criterion_group!(benches, bench_auth);
criterion_main!(benches);
