//! Verified-token cache behaviour: hits, expiry while cached, and
//! invalidation by rotation and revocation across threads.

mod common;

use std::sync::Arc;

use common::*;
use serde_json::json;
use switchyard_auth::{mint, AuthError, CacheStats, KeyRing, Verifier};

fn kid_verifier() -> Verifier {
    verifier_with(|c| c.keys = "k1:first-secret,k2:second-secret".into())
}

// Goal: the verifier can be shared between threads behind an Arc.
#[test]
fn verifier_is_send_and_sync() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Verifier>();
    assert_send_sync::<Arc<Verifier>>();
}

// Goal: a second use of a token is a hit returning the very same identity.
#[test]
fn cache_hit_returns_same_identity() {
    let v = verifier();
    let t = token("acct-1");
    let first = v.verify_cached(t.as_bytes(), NOW).unwrap();
    let second = v.verify_cached(t.as_bytes(), NOW + 5).unwrap();
    assert!(Arc::ptr_eq(&first, &second));
    assert_eq!(*first, v.verify(&t, NOW).unwrap());
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 1,
            misses: 1,
            inserts: 1,
            evictions: 0
        }
    );
}

// Goal: a cached token that expires is refused from the cache, without re-verification.
#[test]
fn cached_token_expires() {
    let v = verifier();
    let t = token_with(json!({ "sub": "a", "exp": NOW + 60 }));
    assert!(v.verify_cached(t.as_bytes(), NOW).is_ok());
    assert!(v.verify_cached(t.as_bytes(), NOW + 60 + 30).is_ok());
    assert_eq!(
        v.verify_cached(t.as_bytes(), NOW + 60 + 31),
        Err(AuthError::TokenExpired)
    );
    let stats = v.cache_stats();
    assert_eq!((stats.hits, stats.misses, stats.inserts), (2, 1, 1));
    // Expired entries are dropped; the next try re-verifies and fails the same way.
    assert_eq!(
        v.verify_cached(t.as_bytes(), NOW + 100),
        Err(AuthError::TokenExpired)
    );
    assert_eq!(v.cache_stats().misses, 2);
}

// Goal: nbf is re-checked on hits too (e.g. after the clock steps back).
#[test]
fn cached_token_nbf_rechecked() {
    let v = verifier();
    let t = token_with(json!({ "sub": "a", "exp": NOW + 600, "nbf": NOW }));
    assert!(v.verify_cached(t.as_bytes(), NOW).is_ok());
    assert_eq!(
        v.verify_cached(t.as_bytes(), NOW - 31),
        Err(AuthError::TokenNotYetValid)
    );
    assert!(v.verify_cached(t.as_bytes(), NOW).is_ok());
    assert_eq!(v.cache_stats().misses, 1);
}

// Goal: rejected tokens are never cached, so each attempt is fully verified.
#[test]
fn failures_are_not_cached() {
    let v = verifier();
    let forged = mint(b"wrong", None, &claims("a"));
    for _ in 0..3 {
        assert_eq!(
            v.verify_cached(forged.as_bytes(), NOW),
            Err(AuthError::InvalidJwtSignature)
        );
    }
    assert_eq!(
        v.cache_stats(),
        CacheStats {
            hits: 0,
            misses: 3,
            inserts: 0,
            evictions: 0
        }
    );
}

// Goal: revoking a kid makes its tokens fail immediately, even when cached.
#[test]
fn revoked_kid_fails_even_when_cached() {
    let v = kid_verifier();
    let t1 = mint(b"first-secret", Some("k1"), &claims("a"));
    let t2 = mint(b"second-secret", Some("k2"), &claims("b"));
    for _ in 0..2 {
        assert!(v.verify_cached(t1.as_bytes(), NOW).is_ok());
        assert!(v.verify_cached(t2.as_bytes(), NOW).is_ok());
    }
    assert!(v.revoke("k1"));
    assert!(!v.revoke("k1"));
    assert_eq!(
        v.verify_cached(t1.as_bytes(), NOW),
        Err(AuthError::UnknownKeyId)
    );
    assert!(v.verify_cached(t2.as_bytes(), NOW).is_ok());
    assert!(!v.key_ring().contains("k1"));
}

// Goal: revocation reaches entries cached on other threads.
#[test]
fn revocation_reaches_other_threads() {
    let v = Arc::new(kid_verifier());
    let t1 = mint(b"first-secret", Some("k1"), &claims("a"));
    let barrier = std::sync::Barrier::new(3);
    std::thread::scope(|s| {
        for _ in 0..2 {
            s.spawn(|| {
                assert!(v.verify_cached(t1.as_bytes(), NOW).is_ok());
                assert!(v.verify_cached(t1.as_bytes(), NOW).is_ok());
                barrier.wait(); // both threads hold a cached entry
                barrier.wait(); // main thread has revoked
                assert_eq!(
                    v.verify_cached(t1.as_bytes(), NOW),
                    Err(AuthError::UnknownKeyId)
                );
            });
        }
        barrier.wait();
        assert!(v.revoke("k1"));
        barrier.wait();
    });
    assert!(v.cache_stats().hits >= 2);
}

// Goal: installing a new ring invalidates every cached entry.
#[test]
fn rotation_invalidates_cache() {
    let v = verifier();
    let t = token("acct-1");
    v.verify_cached(t.as_bytes(), NOW).unwrap();
    v.verify_cached(t.as_bytes(), NOW).unwrap();
    let before = v.cache_stats();

    // Same default key under a new generation: one re-verification, then hits.
    v.rotate(KeyRing::parse(SECRET, "").unwrap());
    assert_eq!(v.ring_generation(), 1);
    v.verify_cached(t.as_bytes(), NOW).unwrap();
    v.verify_cached(t.as_bytes(), NOW).unwrap();
    let after = v.cache_stats();
    assert_eq!(after.misses, before.misses + 1);
    assert_eq!(after.hits, before.hits + 1);

    // A ring without the old secret: the cached token now fails.
    v.rotate(KeyRing::parse("brand-new-secret", "").unwrap());
    assert_eq!(
        v.verify_cached(t.as_bytes(), NOW),
        Err(AuthError::InvalidJwtSignature)
    );
    // And an empty ring turns every call into SecretNotConfigured.
    v.rotate(KeyRing::new());
    assert_eq!(
        v.verify_cached(t.as_bytes(), NOW),
        Err(AuthError::SecretNotConfigured)
    );
    assert_eq!(
        v.authenticate(None, NOW),
        Err(AuthError::SecretNotConfigured)
    );
}

// Goal: keys added at runtime are usable at once, without touching the others.
#[test]
fn add_key_at_runtime() {
    let v = kid_verifier();
    let t3 = mint(b"third-secret", Some("k3"), &claims("c"));
    assert_eq!(
        v.verify_cached(t3.as_bytes(), NOW),
        Err(AuthError::UnknownKeyId)
    );
    v.add_key("k3", b"third-secret").unwrap();
    assert_eq!(
        &*v.verify_cached(t3.as_bytes(), NOW).unwrap().account_id,
        "c"
    );
    assert!(v.add_key("bad kid", b"x").is_err());
    assert_eq!(v.key_ring().kids(), vec!["k1", "k2", "k3"]);
}

// Goal: two verifiers on one thread never answer from each other's cache.
#[test]
fn verifiers_do_not_share_entries() {
    let open = verifier();
    let strict = verifier_with(|c| c.issuer = Some("idp".into()));
    let t = token("acct-1");
    assert!(open.verify_cached(t.as_bytes(), NOW).is_ok());
    assert!(open.verify_cached(t.as_bytes(), NOW).is_ok());
    assert_eq!(
        strict.verify_cached(t.as_bytes(), NOW),
        Err(AuthError::InvalidIssuer)
    );
    let other_secret = verifier_with(|c| c.secret = "different".into());
    assert_eq!(
        other_secret.verify_cached(t.as_bytes(), NOW),
        Err(AuthError::InvalidJwtSignature)
    );
}

// Goal: the cache stays bounded under many distinct tokens and still serves hits.
#[test]
fn cache_is_bounded() {
    let v = verifier_with(|c| c.cache_capacity = 16);
    assert_eq!(v.cache_per_thread(), 16);
    let tokens: Vec<String> = (0..200).map(|i| token(&format!("acct-{i}"))).collect();
    for t in &tokens {
        v.verify_cached(t.as_bytes(), NOW).unwrap();
    }
    let stats = v.cache_stats();
    assert_eq!(stats.inserts, 200);
    assert!(stats.evictions >= 200 - 16, "{stats:?}");
    // The most recent token is still cached.
    v.verify_cached(tokens[199].as_bytes(), NOW).unwrap();
    assert_eq!(v.cache_stats().hits, 1);
}

// Goal: capacity 0 disables caching but keeps verification working.
#[test]
fn cache_disabled() {
    let v = verifier_with(|c| c.cache_capacity = 0);
    let t = token("acct-1");
    for _ in 0..3 {
        assert_eq!(
            &*v.verify_cached(t.as_bytes(), NOW).unwrap().account_id,
            "acct-1"
        );
    }
    assert_eq!(v.cache_stats(), CacheStats::default());
    assert_eq!(v.cache_per_thread(), 0);
}

// Goal: a token that is a byte-prefix or near-copy of a cached one is not a hit.
#[test]
fn near_copies_are_not_hits() {
    let v = verifier();
    let t = token("acct-1");
    v.verify_cached(t.as_bytes(), NOW).unwrap();
    assert!(v.verify_cached(&t.as_bytes()[..t.len() - 1], NOW).is_err());
    assert!(v.verify_cached(format!("{t} ").as_bytes(), NOW).is_err());
    assert_eq!(v.cache_stats().hits, 0);
}

// Goal: many threads hammering the cache with rotations in between stay consistent.
#[test]
fn concurrent_use_with_rotation() {
    let v = Arc::new(verifier_with(|c| c.cache_capacity = 64));
    let tokens: Vec<String> = (0..32).map(|i| token(&format!("acct-{i}"))).collect();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for round in 0..50 {
                    for (i, t) in tokens.iter().enumerate() {
                        let id = v.verify_cached(t.as_bytes(), NOW).unwrap();
                        assert_eq!(&*id.account_id, format!("acct-{i}"), "round {round}");
                    }
                }
            });
        }
        for _ in 0..20 {
            v.rotate(KeyRing::parse(SECRET, "").unwrap());
            std::thread::yield_now();
        }
    });
    let stats = v.cache_stats();
    assert_eq!(stats.hits + stats.misses, 4 * 50 * 32);
}
