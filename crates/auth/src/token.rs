//! Full (uncached) verification of one compact HS256 JWT.
//!
//! Checks run in a fixed order — format, header, alg, key, signature,
//! payload, exp, nbf, iss, aud, identity — so a given bad token always
//! yields the same error, and nothing in the payload is looked at before the
//! signature has vouched for it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::Mac;
use subtle::ConstantTimeEq;

use crate::claims::{Claims, Header};
use crate::error::AuthError;
use crate::keyring::KeyRing;
use crate::Identity;

/// Longest token accepted, in bytes. Real tokens are a few hundred bytes;
/// the cap bounds the work an anonymous client can make us do.
pub const MAX_TOKEN_LEN: usize = 4096;

/// Longest accepted account or session id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Largest decoded header or payload: 3 bytes per 4 base64 characters.
const MAX_DECODED: usize = MAX_TOKEN_LEN / 4 * 3;

/// An HS256 signature is one SHA-256 output.
const SIG_LEN: usize = 32;

/// Unpadded base64url length of a 32-byte signature.
const SIG_B64_LEN: usize = 43;

/// The claim checks that do not depend on the key ring.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    pub issuer: Option<Box<str>>,
    pub audience: Option<Box<str>>,
    pub skew: u64,
}

impl Policy {
    /// `now > exp + skew`, written to avoid overflow.
    pub fn is_expired(&self, exp: u64, now: u64) -> bool {
        now > exp.saturating_add(self.skew)
    }

    /// `now < nbf - skew`, written to avoid underflow.
    pub fn is_not_yet_valid(&self, nbf: u64, now: u64) -> bool {
        now < nbf.saturating_sub(self.skew)
    }

    /// The time checks shared by full verification and cache hits.
    pub fn check_times(&self, exp: u64, nbf: Option<u64>, now: u64) -> Result<(), AuthError> {
        if self.is_expired(exp, now) {
            return Err(AuthError::TokenExpired);
        }
        match nbf {
            Some(nbf) if self.is_not_yet_valid(nbf, now) => Err(AuthError::TokenNotYetValid),
            _ => Ok(()),
        }
    }
}

/// The three parts of a compact JWT, still base64url-encoded.
struct Parts<'t> {
    header: &'t [u8],
    payload: &'t [u8],
    signature: &'t [u8],
    /// `header.payload`, the bytes the signature covers.
    signed: &'t [u8],
}

/// Verifies `token` against `ring` and `policy` at time `now`.
pub(crate) fn verify(
    token: &[u8],
    ring: &KeyRing,
    policy: &Policy,
    now: u64,
) -> Result<Identity, AuthError> {
    if ring.is_empty() {
        return Err(AuthError::SecretNotConfigured);
    }
    let parts = split(token)?;
    // Decoded parts live on the stack: no allocation unless a string
    // needs unescaping.
    let mut header_buf = [0u8; MAX_DECODED];
    let header = read_header(parts.header, &mut header_buf)?;
    let kid = header.kid.as_ref().map(|k| &*k.0);
    let key = ring.key_for(kid).ok_or(AuthError::UnknownKeyId)?;
    check_signature(key.mac(), &parts)?;

    let mut payload_buf = [0u8; MAX_DECODED];
    let claims = read_claims(parts.payload, &mut payload_buf)?;
    let exp = check_claims(&claims, policy, now)?;
    identity(&claims, exp, kid)
}

/// Decodes the header and checks `crit` and `alg`. Only HS256 passes:
/// accepting anything the token asks for is how "alg: none" and
/// RS256-as-HMAC forgeries work.
fn read_header<'b>(part: &[u8], buf: &'b mut [u8]) -> Result<Header<'b>, AuthError> {
    let json = decode_part(part, buf).ok_or(AuthError::InvalidJwtHeader)?;
    let header: Header<'b> = parse_object(json).ok_or(AuthError::InvalidJwtHeader)?;
    if header.crit.is_some() {
        return Err(AuthError::InvalidJwtHeader);
    }
    match header.alg.as_ref() {
        None => Err(AuthError::MissingAlg),
        Some(alg) if alg.0 != "HS256" => Err(AuthError::UnsupportedAlg),
        Some(_) => Ok(header),
    }
}

/// Decodes and parses the payload (only ever called on signed bytes).
fn read_claims<'b>(part: &[u8], buf: &'b mut [u8]) -> Result<Claims<'b>, AuthError> {
    let json = decode_part(part, buf).ok_or(AuthError::InvalidJwtPayload)?;
    parse_object(json).ok_or(AuthError::InvalidJwtPayload)
}

/// Exactly three dot-separated parts, within the size cap.
fn split(token: &[u8]) -> Result<Parts<'_>, AuthError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(AuthError::InvalidJwtFormat);
    }
    let mut dots = token
        .iter()
        .enumerate()
        .filter(|(_, &b)| b == b'.')
        .map(|(i, _)| i);
    let (Some(d1), Some(d2), None) = (dots.next(), dots.next(), dots.next()) else {
        return Err(AuthError::InvalidJwtFormat);
    };
    Ok(Parts {
        header: &token[..d1],
        payload: &token[d1 + 1..d2],
        signature: &token[d2 + 1..],
        signed: &token[..d2],
    })
}

/// Strict base64url (no padding, canonical trailing bits) into `buf`.
fn decode_part<'b>(part: &[u8], buf: &'b mut [u8]) -> Option<&'b [u8]> {
    let n = URL_SAFE_NO_PAD.decode_slice(part, buf).ok()?;
    buf.get(..n)
}

/// Parses a JSON object. serde's derived structs would also accept a JSON
/// array (fields by position), which a JWT must never be, so the first
/// significant byte is checked. The text must be UTF-8 throughout (RFC 7515
/// §5.2): serde_json does not check the strings of members it skips, so
/// that is checked first (found by fuzzing: `fuzz/fuzz_targets/jwt.rs`).
fn parse_object<'a, T: serde::Deserialize<'a>>(json: &'a [u8]) -> Option<T> {
    let first = json.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first != b'{' {
        return None;
    }
    serde_json::from_str(std::str::from_utf8(json).ok()?).ok()
}

/// Recomputes the HMAC and compares it in constant time, so response timing
/// reveals nothing about how many leading bytes of a forged tag were right.
fn check_signature(
    mut mac: crate::keyring::HmacSha256,
    parts: &Parts<'_>,
) -> Result<(), AuthError> {
    if parts.signature.len() != SIG_B64_LEN {
        return Err(AuthError::InvalidJwtSignature);
    }
    let mut given = [0u8; SIG_LEN];
    match URL_SAFE_NO_PAD.decode_slice(parts.signature, &mut given) {
        Ok(SIG_LEN) => {}
        _ => return Err(AuthError::InvalidJwtSignature),
    }
    mac.update(parts.signed);
    let expected = mac.finalize().into_bytes();
    if bool::from(expected.as_slice().ct_eq(&given)) {
        Ok(())
    } else {
        Err(AuthError::InvalidJwtSignature)
    }
}

/// exp, nbf, iss, aud — in that order. Returns `exp`, which is mandatory.
fn check_claims(claims: &Claims<'_>, policy: &Policy, now: u64) -> Result<u64, AuthError> {
    let exp = claims.exp.ok_or(AuthError::MissingExp)?.0;
    policy.check_times(exp, claims.nbf.map(|n| n.0), now)?;
    if let Some(want) = &policy.issuer {
        if claims.iss.as_ref().map(|s| &*s.0) != Some(&**want) {
            return Err(AuthError::InvalidIssuer);
        }
    }
    if let Some(want) = &policy.audience {
        if !claims.aud.as_ref().is_some_and(|aud| aud.contains(want)) {
            return Err(AuthError::InvalidAudience);
        }
    }
    Ok(exp)
}

/// A claim counts as present only if it has a non-blank value: the
/// reference system falls back on falsy values (`accountId || sub`), and an
/// all-blank id would be useless as an account key anyway.
fn non_blank<'c>(claim: &'c Option<crate::claims::CowStr<'_>>) -> Option<&'c str> {
    claim
        .as_ref()
        .map(|s| &*s.0)
        .filter(|s| !s.trim().is_empty())
}

/// `account_id = accountId, else sub`; `session_id = sub, else account_id`.
///
/// Both absent (or blank) is `MissingAccountId`; a present id longer than
/// [`MAX_ID_LEN`] is `InvalidJwtPayload`, since the claim exists but is
/// malformed. Ids are kept verbatim (not trimmed): trimming would let two
/// distinct subjects map to one account.
fn identity(claims: &Claims<'_>, exp: u64, kid: Option<&str>) -> Result<Identity, AuthError> {
    let sub = non_blank(&claims.sub);
    let account = non_blank(&claims.account_id)
        .or(sub)
        .ok_or(AuthError::MissingAccountId)?;
    let session = sub.unwrap_or(account);
    if account.len() > MAX_ID_LEN || session.len() > MAX_ID_LEN {
        return Err(AuthError::InvalidJwtPayload);
    }
    Ok(Identity {
        account_id: account.into(),
        session_id: session.into(),
        exp,
        nbf: claims.nbf.map(|n| n.0),
        scopes: claims
            .scope
            .as_ref()
            .map_or_else(Box::default, |s| s.joined()),
        kid: kid.map(Box::from),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: splitting finds exactly three parts and the signed prefix.
    #[test]
    fn split_parts() {
        let p = split(b"aa.bb.cc").unwrap();
        assert_eq!(
            (p.header, p.payload, p.signature, p.signed),
            (&b"aa"[..], &b"bb"[..], &b"cc"[..], &b"aa.bb"[..])
        );
        assert!(split(b"aa.bb").is_err());
        assert!(split(b"a.b.c.d").is_err());
        assert!(split(b"").is_err());
    }

    // Goal: padded or non-canonical base64url is refused, like standard JWT.
    #[test]
    fn strict_base64url() {
        let mut buf = [0u8; 16];
        assert_eq!(decode_part(b"YQ", &mut buf), Some(&b"a"[..]));
        assert_eq!(decode_part(b"YQ==", &mut buf), None);
        assert_eq!(decode_part(b"YR", &mut buf), None); // stray trailing bits
        assert_eq!(decode_part(b"Y+", &mut buf), None); // standard alphabet
    }

    // Goal: skew arithmetic never overflows at the extremes.
    #[test]
    fn skew_edges() {
        let p = Policy {
            issuer: None,
            audience: None,
            skew: 30,
        };
        assert!(!p.is_expired(u64::MAX, u64::MAX));
        assert!(!p.is_not_yet_valid(10, 0));
        assert!(p.is_not_yet_valid(31, 0));
        assert!(p.is_expired(0, 31));
        assert!(!p.is_expired(0, 30));
    }
}
