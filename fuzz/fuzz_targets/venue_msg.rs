//! Goal: the venue session protocol's parsers (`protocol::venue`) read a line only as the
//! message it is, in both directions: `decode_from_venue` (the gateway reading a venue) and
//! `decode_to_venue` (the venue simulator reading a gateway; it has no parser of its own).
//!
//! The input is one line (the `\n` already cut, as both readers do). For each direction:
//! - an accepted line is a JSON object of at most `LINE_MAX` bytes;
//! - a message re-encodes (`encode_line`) to one line that decodes to the same message;
//! - a line whose `type` is not `ER` is never taken for an execution report (only a line
//!   without `type` is a reference venue's report), and a typed message has the type of its
//!   line;
//! - longer than `LINE_MAX` is `TooLong`, whatever the bytes.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;
use switchyard_protocol::venue::{
    decode_from_venue, decode_to_venue, encode_line, FromVenue, LineError, ToVenue, LINE_MAX,
};

/// The `type` members of a JSON object, in order; other members are skipped unread (JSON's
/// grammar allows numbers such as `1e400` that a `Value` cannot hold, and the parsers skip
/// them too). An array or any other value is an error.
struct Types(Vec<Value>);

impl<'de> Deserialize<'de> for Types {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Types;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Types, A::Error> {
                let mut types = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == "type" {
                        types.push(map.next_value::<Value>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Types(types))
            }
        }
        d.deserialize_map(V)
    }
}

/// An accepted line as a general JSON parser reads it: UTF-8 text of one object, with at
/// most one `type` member; its value.
fn object_type(line: &[u8]) -> Option<String> {
    assert!(line.len() <= LINE_MAX, "accepted a line over LINE_MAX");
    let text = std::str::from_utf8(line).expect("an accepted line is UTF-8");
    let Types(types) = serde_json::from_str(text).expect("an accepted line is a JSON object");
    assert!(
        types.len() <= 1,
        "accepted a line with {} `type` members",
        types.len()
    );
    types
        .first()
        .map(|t| t.as_str().unwrap_or("<not a string>").to_string())
}

fn to_type(m: &ToVenue) -> &'static str {
    match m {
        ToVenue::Logon(_) => "LOGON",
        ToVenue::New(_) => "NEW",
        ToVenue::Cancel(_) => "CANCEL",
        ToVenue::Replace(_) => "REPLACE",
        ToVenue::Status(_) => "STATUS",
        ToVenue::Resend(_) => "RESEND",
        ToVenue::Heartbeat(_) => "HEARTBEAT",
    }
}

fn from_type(m: &FromVenue) -> &'static str {
    match m {
        FromVenue::LogonAck(_) => "LOGON_ACK",
        FromVenue::Exec(_) => "ER",
        FromVenue::Heartbeat(_) => "HEARTBEAT",
        FromVenue::Tob(_) => "TOB",
        FromVenue::Reject(_) => "REJECT",
    }
}

fn check(line: &[u8]) {
    match decode_to_venue(line) {
        Ok(m) => {
            let t = object_type(line);
            assert_eq!(t.as_deref(), Some(to_type(&m)), "message of another type");
            let mut out = Vec::new();
            encode_line(&m, &mut out);
            assert_eq!(out.pop(), Some(b'\n'));
            assert!(!out.contains(&b'\n'), "an encoded message spans lines");
            assert_eq!(
                decode_to_venue(&out).expect("re-encoded message decodes"),
                m
            );
        }
        Err(LineError::TooLong) => assert!(line.len() > LINE_MAX),
        Err(LineError::Json(_)) => assert!(line.len() <= LINE_MAX),
    }
    match decode_from_venue(line) {
        Ok(m) => {
            let t = object_type(line);
            let want = from_type(&m);
            match t.as_deref() {
                None => assert_eq!(want, "ER", "an untyped line is only a report"),
                Some(t) => assert_eq!(t, want, "message of another type"),
            }
            let mut out = Vec::new();
            encode_line(&m, &mut out);
            assert_eq!(out.pop(), Some(b'\n'));
            assert!(!out.contains(&b'\n'), "an encoded message spans lines");
            assert_eq!(
                decode_from_venue(&out).expect("re-encoded message decodes"),
                m
            );
        }
        Err(LineError::TooLong) => assert!(line.len() > LINE_MAX),
        Err(LineError::Json(_)) => assert!(line.len() <= LINE_MAX),
    }
}

fuzz_target!(|data: &[u8]| {
    check(data);
    // Just past the limit, whatever the bytes: refused for length alone.
    if !data.is_empty() && data.len() <= LINE_MAX {
        let long: Vec<u8> = data.iter().copied().cycle().take(LINE_MAX + 1).collect();
        assert!(matches!(decode_to_venue(&long), Err(LineError::TooLong)));
        assert!(matches!(decode_from_venue(&long), Err(LineError::TooLong)));
    }
});
