//! Minimal JSON writing helpers for hand-encoded responses, and the one way JSON objects are
//! read from the wire ([`object_from_slice`]).

use serde::de::{Error as _, Unexpected};
use serde::Deserialize;

/// Reads a JSON object from untrusted bytes into `T`: `serde_json::from_slice`, refusing two
/// things it lets through. A derived struct or tagged enum also reads a JSON *array*, field by
/// field, which no contract here allows; and serde_json skips the strings of members it
/// ignores without checking that they are UTF-8, while JSON text must be UTF-8 throughout.
/// (Both found by fuzzing: `fuzz/`.) Errors keep serde_json's categories: bad UTF-8 is a
/// syntax error, an array a data error (a wrong type), like a number or a string.
pub fn object_from_slice<'a, T: Deserialize<'a>>(bytes: &'a [u8]) -> serde_json::Result<T> {
    let Ok(text) = std::str::from_utf8(bytes) else {
        // Let serde_json find and place the bad bytes: reading every string, it must fail.
        let err = serde_json::from_slice::<serde_json::Value>(bytes).err();
        return Err(err.unwrap_or_else(|| serde_json::Error::custom("JSON text is not UTF-8")));
    };
    let value = serde_json::from_str(text)?;
    if text
        .trim_start_matches([' ', '\t', '\n', '\r'])
        .starts_with('[')
    {
        return Err(serde_json::Error::invalid_type(
            Unexpected::Seq,
            &"a JSON object",
        ));
    }
    Ok(value)
}

/// Appends `s` as a JSON string literal (with quotes), escaping what JSON requires.
#[inline]
pub fn push_str(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    let bytes = s.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let esc: &[u8] = match b {
            b'"' => b"\\\"",
            b'\\' => b"\\\\",
            b'\n' => b"\\n",
            b'\r' => b"\\r",
            b'\t' => b"\\t",
            0..=0x1f => {
                out.extend_from_slice(&bytes[start..i]);
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 0xf) as usize]);
                start = i + 1;
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        out.extend_from_slice(esc);
        start = i + 1;
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends the `digits` low hex digits of `v`, lowercase, most significant first:
/// `{v:0digits$x}` without the formatter's machinery, which costs more than the rest of
/// building an order's id (this runs for every order and every event published).
#[inline]
pub fn push_hex(out: &mut Vec<u8>, v: u64, digits: u32) {
    for i in (0..digits).rev() {
        out.push(HEX[((v >> (4 * i)) & 0xf) as usize]);
    }
}

#[inline]
pub fn push_u64(out: &mut Vec<u8>, v: u64) {
    let mut buf = itoa::Buffer::new();
    out.extend_from_slice(buf.format(v).as_bytes());
}

/// Writes one JSON object field by field, placing the commas. Keys are literals of ours and
/// are not escaped; string values are.
pub struct Obj<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> Obj<'a> {
    #[inline]
    pub fn new(out: &'a mut Vec<u8>) -> Obj<'a> {
        out.push(b'{');
        Obj { out, first: true }
    }

    #[inline]
    fn key(&mut self, key: &str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    #[inline]
    pub fn str(&mut self, key: &str, v: &str) -> &mut Self {
        self.key(key);
        push_str(self.out, v);
        self
    }

    #[inline]
    pub fn u64(&mut self, key: &str, v: u64) -> &mut Self {
        self.key(key);
        push_u64(self.out, v);
        self
    }

    /// A string value that is a literal of ours (a status or reason word): no escaping needed.
    #[inline]
    pub fn word(&mut self, key: &str, v: &'static str) -> &mut Self {
        debug_assert!(v
            .bytes()
            .all(|b| b.is_ascii_graphic() && b != b'"' && b != b'\\'));
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(v.as_bytes());
        self.out.push(b'"');
        self
    }

    /// A string made of an ASCII prefix and a number, e.g. `"att_42"`, without allocating.
    #[inline]
    pub fn prefixed_u64(&mut self, key: &str, prefix: &str, v: u64) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(prefix.as_bytes());
        push_u64(self.out, v);
        self.out.push(b'"');
        self
    }

    /// A string made of an ASCII prefix and 16 lowercase hex digits, e.g. `"ord_00…2a"`.
    #[inline]
    pub fn prefixed_hex(&mut self, key: &str, prefix: &str, v: u64) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(prefix.as_bytes());
        push_hex(self.out, v, 16);
        self.out.push(b'"');
        self
    }

    /// A JSON literal of ours written as is (`true`, `false`, `null`).
    #[inline]
    pub fn raw(&mut self, key: &str, literal: &'static str) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(literal.as_bytes());
        self
    }

    /// An optional string: the value or `null`.
    #[inline]
    pub fn opt_str(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        match v {
            Some(v) => self.str(key, v),
            None => self.raw(key, "null"),
        }
    }

    /// An optional number: the value or `null`.
    #[inline]
    pub fn opt_u64(&mut self, key: &str, v: Option<u64>) -> &mut Self {
        match v {
            Some(v) => self.u64(key, v),
            None => self.raw(key, "null"),
        }
    }

    #[inline]
    pub fn end(&mut self) {
        self.out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every field writer produces valid JSON with the intended values.
    #[test]
    fn object_fields() {
        let mut out = Vec::new();
        Obj::new(&mut out)
            .prefixed_hex("id", "ord_", 0x2a)
            .opt_str("a", None)
            .opt_str("b", Some("x\"y"))
            .opt_u64("c", Some(7))
            .opt_u64("d", None)
            .raw("e", "true")
            .end();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"id": "ord_000000000000002a", "a": null, "b": "x\"y", "c": 7, "d": null, "e": true})
        );
    }

    // Goal: objects are read, arrays and non-UTF-8 text are refused with serde_json's
    // categories (fuzz: an amend body `[0,88E8]` was read as `{"qty":0,"price":88E8}`, and a
    // venue line with a non-UTF-8 unknown member was accepted).
    #[test]
    fn objects_only() {
        use serde_json::error::Category;
        #[derive(Debug, Deserialize)]
        struct P {
            #[allow(dead_code)]
            a: Option<u64>,
        }
        assert!(object_from_slice::<P>(br#" {"a":1,"b":"x"}"#).is_ok());
        let e = object_from_slice::<P>(b" \n[1]").unwrap_err();
        assert_eq!(e.classify(), Category::Data);
        assert!(e.to_string().contains("sequence"), "{e}");
        let e = object_from_slice::<P>(b"{\"b\":\"\xe1x\"}").unwrap_err();
        assert_eq!(e.classify(), Category::Syntax);
        let e = object_from_slice::<P>(br#"{"a":1"#).unwrap_err();
        assert_eq!(e.classify(), Category::Eof);
    }

    // Goal: escaped strings parse back to the original with a real JSON parser.
    #[test]
    fn escaping_roundtrips() {
        for s in [
            "plain",
            "q\"uote",
            "back\\slash",
            "nl\n\t\r",
            "\u{1}\u{1f}",
            "ünï",
        ] {
            let mut out = Vec::new();
            push_str(&mut out, s);
            let back: String = serde_json::from_slice(&out).unwrap();
            assert_eq!(back, s);
        }
    }
}
