//! Property tests: hostile input never panics and never authenticates.

mod common;

use common::*;
use proptest::prelude::*;
use switchyard_auth::Verifier;

fn b64url_text() -> impl Strategy<Value = String> {
    proptest::string::string_regex("[A-Za-z0-9_-]{0,120}").expect("valid regex")
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    // Goal: arbitrary bytes never panic and never verify, cached or not.
    #[test]
    fn random_bytes_never_verify(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let v = verifier();
        prop_assert!(v.verify_cached(&bytes, NOW).is_err());
        prop_assert!(v.verify(&String::from_utf8_lossy(&bytes), NOW).is_err());
        let _ = Verifier::bearer(Some(&bytes));
        let _ = v.authenticate(Some(&bytes), NOW);
    }

    // Goal: well-shaped three-part strings of base64url text never verify.
    #[test]
    fn random_jwt_shapes_never_verify(h in b64url_text(), p in b64url_text(), s in b64url_text()) {
        let t = format!("{h}.{p}.{s}");
        prop_assert!(verifier().verify(&t, NOW).is_err());
    }

    // Goal: correctly signed but random JSON-ish payloads never panic.
    #[test]
    fn signed_random_payloads_never_panic(payload in "\\PC{0,200}") {
        let t = sign_raw(r#"{"alg":"HS256"}"#, &payload);
        let _ = verifier().verify(&t, NOW);
    }

    // Goal: changing any single byte of a valid token makes it fail.
    #[test]
    fn single_byte_mutation_never_verifies(pos in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let t = token("acct-1").into_bytes();
        let i = pos.index(t.len());
        prop_assume!(t[i] != byte);
        let mut forged = t.clone();
        forged[i] = byte;
        let v = verifier();
        prop_assert!(v.verify_cached(&t, NOW).is_ok());
        prop_assert!(v.verify_cached(&forged, NOW).is_err());
    }
}
