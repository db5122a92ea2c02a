//! Serde shapes of the JWT header and payload.
//!
//! Strings are borrowed from the decoded buffer whenever they contain no
//! escapes, so parsing a typical token allocates only for the few values
//! that end up in the [`crate::Identity`].

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use serde::Deserialize;

/// The JOSE header fields this crate looks at. Unknown fields are ignored;
/// duplicate fields make the header invalid (serde rejects them), which
/// closes the "which `alg` wins?" ambiguity.
#[derive(Deserialize)]
pub(crate) struct Header<'a> {
    #[serde(borrow, default)]
    pub alg: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    pub kid: Option<CowStr<'a>>,
    /// RFC 7515 says a verifier must reject a token whose `crit` lists
    /// extensions it does not understand; this crate understands none.
    #[serde(default)]
    pub crit: Option<IgnoredAny>,
}

/// The registered and custom claims this crate uses.
#[derive(Deserialize)]
pub(crate) struct Claims<'a> {
    #[serde(borrow, default)]
    pub sub: Option<CowStr<'a>>,
    #[serde(borrow, default, rename = "accountId")]
    pub account_id: Option<CowStr<'a>>,
    #[serde(default)]
    pub exp: Option<NumericDate>,
    #[serde(default)]
    pub nbf: Option<NumericDate>,
    /// Parsed so that a malformed `iat` is caught, but not enforced: the
    /// reference system does not check it either.
    #[serde(default)]
    #[allow(dead_code)]
    pub iat: Option<NumericDate>,
    #[serde(borrow, default)]
    pub iss: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    pub aud: Option<StrList<'a>>,
    #[serde(borrow, default)]
    pub scope: Option<StrList<'a>>,
}

/// A JSON string, borrowed when it had no escapes.
///
/// serde's own `Cow<str>` impl always allocates; this one borrows.
pub(crate) struct CowStr<'a>(pub Cow<'a, str>);

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_str(CowStrVisitor)
    }
}

struct CowStrVisitor;

impl<'de> Visitor<'de> for CowStrVisitor {
    type Value = CowStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(CowStr(Cow::Owned(v)))
    }
}

/// A claim that may be one string or an array of strings (`aud` by RFC
/// 7519; `scope` is accepted in both forms too because some issuers emit
/// an array).
pub(crate) enum StrList<'a> {
    One(Cow<'a, str>),
    Many(Vec<Cow<'a, str>>),
}

impl StrList<'_> {
    pub fn contains(&self, wanted: &str) -> bool {
        match self {
            StrList::One(s) => s == wanted,
            StrList::Many(v) => v.iter().any(|s| s == wanted),
        }
    }

    /// Space-joined form, the OAuth `scope` representation.
    pub fn joined(&self) -> Box<str> {
        match self {
            StrList::One(s) => Box::from(&**s),
            StrList::Many(v) => v.join(" ").into_boxed_str(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for StrList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrListVisitor)
    }
}

struct StrListVisitor;

impl<'de> Visitor<'de> for StrListVisitor {
    type Value = StrList<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(StrList::One(Cow::Borrowed(v)))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(StrList::One(Cow::Owned(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(StrList::One(Cow::Owned(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
        while let Some(CowStr(s)) = seq.next_element::<CowStr<'de>>()? {
            items.push(s);
        }
        Ok(StrList::Many(items))
    }
}

/// RFC 7519 NumericDate: seconds since the epoch, integer or fractional.
///
/// Fractions are truncated and negative values clamp to 0, which keeps the
/// meaning intact for both uses: a negative `exp` is long expired, a
/// negative `nbf` long valid. Values beyond `u64` saturate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct NumericDate(pub u64);

impl<'de> Deserialize<'de> for NumericDate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NumericDateVisitor)
    }
}

struct NumericDateVisitor;

impl Visitor<'_> for NumericDateVisitor {
    type Value = NumericDate;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds since the epoch")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(NumericDate(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        Ok(NumericDate(u64::try_from(v).unwrap_or(0)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        // `as` saturates and maps negatives to 0; JSON cannot carry NaN.
        Ok(NumericDate(v as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(json: &str) -> Result<Claims<'_>, serde_json::Error> {
        serde_json::from_str(json)
    }

    // Goal: plain strings are borrowed, escaped ones still decode correctly.
    #[test]
    fn strings_borrow_when_possible() {
        let c = claims(r#"{"sub":"alice","iss":"a\"b"}"#).unwrap();
        assert!(matches!(c.sub.unwrap().0, Cow::Borrowed("alice")));
        assert_eq!(c.iss.unwrap().0, "a\"b");
    }

    // Goal: aud accepts a string or an array, and rejects other types.
    #[test]
    fn aud_shapes() {
        assert!(claims(r#"{"aud":"x"}"#).unwrap().aud.unwrap().contains("x"));
        let c = claims(r#"{"aud":["y","x"]}"#).unwrap();
        assert!(c.aud.unwrap().contains("x"));
        assert!(claims(r#"{"aud":5}"#).is_err());
        assert!(claims(r#"{"aud":["x",5]}"#).is_err());
    }

    // Goal: NumericDate handles integers, fractions, negatives and huge values.
    #[test]
    fn numeric_dates() {
        let exp = |j: &str| claims(j).unwrap().exp.unwrap().0;
        assert_eq!(exp(r#"{"exp":10}"#), 10);
        assert_eq!(exp(r#"{"exp":10.9}"#), 10);
        assert_eq!(exp(r#"{"exp":-5}"#), 0);
        assert_eq!(exp(r#"{"exp":1e300}"#), u64::MAX);
        assert!(claims(r#"{"exp":"10"}"#).is_err());
        assert!(claims(r#"{"exp":null}"#).unwrap().exp.is_none());
    }

    // Goal: a claim given twice is rejected rather than silently picking one.
    #[test]
    fn duplicate_claims_rejected() {
        assert!(claims(r#"{"sub":"a","sub":"b"}"#).is_err());
    }
}
