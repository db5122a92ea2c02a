//! A small parser of the Prometheus text format (0.0.4): `name{label="value",…} value
//! [timestamp]` per line. Comments (`# HELP`, `# TYPE`, anything after `#`) and blank lines are
//! skipped; a line that does not parse is counted and skipped. It never panics, whatever the
//! input.

use std::collections::HashMap;

/// One series: its labels (in the order given) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

/// Everything one scrape returned, by metric name.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    series: HashMap<String, Vec<Series>>,
    /// Lines that were neither blank, a comment, nor a sample.
    pub bad_lines: usize,
}

impl Snapshot {
    pub fn parse(text: &str) -> Snapshot {
        let mut s = Snapshot::default();
        for line in text.lines() {
            match parse_line(line) {
                Ok(Some((name, labels, value))) => {
                    s.series
                        .entry(name)
                        .or_default()
                        .push(Series { labels, value });
                }
                Ok(None) => {}
                Err(()) => s.bad_lines += 1,
            }
        }
        s
    }

    /// Number of metric names seen.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    pub fn has(&self, name: &str) -> bool {
        self.series.contains_key(name)
    }

    /// The value of `name` without labels (else its first series).
    pub fn get(&self, name: &str) -> Option<f64> {
        let all = self.series.get(name)?;
        all.iter()
            .find(|s| s.labels.is_empty())
            .or_else(|| all.first())
            .map(|s| s.value)
    }

    /// `(value of label, value)` of every series of `name` that has `label`.
    pub fn by_label(&self, name: &str, label: &str) -> Vec<(String, f64)> {
        self.series
            .get(name)
            .map(|all| {
                all.iter()
                    .filter_map(|s| {
                        let (_, v) = s.labels.iter().find(|(k, _)| k == label)?;
                        Some((v.clone(), s.value))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

type Sample = (String, Vec<(String, String)>, f64);

/// `Ok(None)` for a blank line or a comment, `Err` for a line that is not a sample.
pub fn parse_line(line: &str) -> Result<Option<Sample>, ()> {
    let line = line.trim_matches(|c| c == ' ' || c == '\t' || c == '\r');
    if line.is_empty() || line.starts_with('#') {
        return Ok(None);
    }
    let b = line.as_bytes();
    let mut i = 0;
    let name_ok = |c: u8, first: bool| {
        c.is_ascii_alphabetic() || c == b'_' || c == b':' || (!first && c.is_ascii_digit())
    };
    while i < b.len() && name_ok(b[i], i == 0) {
        i += 1;
    }
    if i == 0 {
        return Err(());
    }
    let name = line[..i].to_string();
    i = skip_blank(b, i);
    let mut labels = Vec::new();
    if b.get(i) == Some(&b'{') {
        i = parse_labels(b, i + 1, &mut labels)?;
        i = skip_blank(b, i);
    } else if i == name.len() {
        // Neither labels nor a blank after the name: `foo7x 1` is fine, `foo-bar 1` is not.
        return Err(());
    }
    let rest = &line[i..];
    let mut words = rest.split([' ', '\t']).filter(|w| !w.is_empty());
    let value = parse_value(words.next().ok_or(())?)?;
    // An optional timestamp (ms), and nothing else.
    if let Some(ts) = words.next() {
        ts.parse::<i64>().map_err(|_| ())?;
    }
    if words.next().is_some() {
        return Err(());
    }
    Ok(Some((name, labels, value)))
}

fn skip_blank(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && (b[i] == b' ' || b[i] == b'\t') {
        i += 1;
    }
    i
}

/// From after `{` to after `}`.
fn parse_labels(b: &[u8], mut i: usize, out: &mut Vec<(String, String)>) -> Result<usize, ()> {
    loop {
        i = skip_blank(b, i);
        match b.get(i) {
            Some(b'}') => return Ok(i + 1),
            None => return Err(()),
            _ => {}
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
        }
        if i == start || b[start].is_ascii_digit() {
            return Err(());
        }
        let key = String::from_utf8_lossy(&b[start..i]).into_owned();
        i = skip_blank(b, i);
        if b.get(i) != Some(&b'=') {
            return Err(());
        }
        i = skip_blank(b, i + 1);
        if b.get(i) != Some(&b'"') {
            return Err(());
        }
        i += 1;
        let mut value = Vec::new();
        loop {
            match b.get(i) {
                None => return Err(()),
                Some(b'"') => break,
                Some(b'\\') => {
                    match b.get(i + 1) {
                        Some(b'n') => value.push(b'\n'),
                        Some(&c @ (b'\\' | b'"')) => value.push(c),
                        // Unknown escapes are kept as written.
                        Some(&c) => value.extend_from_slice(&[b'\\', c]),
                        None => return Err(()),
                    }
                    i += 2;
                }
                Some(&c) => {
                    value.push(c);
                    i += 1;
                }
            }
        }
        i = skip_blank(b, i + 1);
        out.push((key, String::from_utf8_lossy(&value).into_owned()));
        match b.get(i) {
            Some(b',') => i += 1,
            Some(b'}') => return Ok(i + 1),
            _ => return Err(()),
        }
    }
}

fn parse_value(w: &str) -> Result<f64, ()> {
    match w {
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        "NaN" => Ok(f64::NAN),
        _ => w.parse::<f64>().map_err(|_| ()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn labels(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // Goal: the lines the gateway writes parse into name, labels and value.
    #[test]
    fn gateway_lines() {
        assert_eq!(
            parse_line("gateway_live_ack_p99_us 45.3"),
            Ok(Some(("gateway_live_ack_p99_us".into(), vec![], 45.3)))
        );
        assert_eq!(
            parse_line(r#"gateway_v3_reject_total{reason="INVALID_QTY"} 3"#),
            Ok(Some((
                "gateway_v3_reject_total".into(),
                labels(&[("reason", "INVALID_QTY")]),
                3.0
            )))
        );
        assert_eq!(
            parse_line(r#"m{a="1",b="x y"} 1e3 1700000000000"#),
            Ok(Some((
                "m".into(),
                labels(&[("a", "1"), ("b", "x y")]),
                1000.0
            )))
        );
    }

    // Goal: the text format's corners: escapes, trailing comma, spaces, special values.
    #[test]
    fn format_corners() {
        let (_, l, v) = parse_line(r#"m{ a = "q\"\\\n" , } +Inf"#).unwrap().unwrap();
        assert_eq!(l, labels(&[("a", "q\"\\\n")]));
        assert_eq!(v, f64::INFINITY);
        assert!(parse_line("m NaN").unwrap().unwrap().2.is_nan());
        assert_eq!(
            parse_line("m{} -Inf").unwrap().unwrap().2,
            f64::NEG_INFINITY
        );
        assert_eq!(parse_line("  m\t2\r").unwrap().unwrap().2, 2.0);
        assert_eq!(
            parse_line(r#"m{v="ünï"} 1"#).unwrap().unwrap().1[0].1,
            "ünï"
        );
        for skip in ["", "   ", "# HELP m help", "# TYPE m counter", "#"] {
            assert_eq!(parse_line(skip), Ok(None), "{skip:?}");
        }
    }

    // Goal: malformed lines are refused, not half-read.
    #[test]
    fn bad_lines() {
        for bad in [
            "m",
            "m ",
            "1m 2",
            "m-x 2",
            "m two",
            "m 1 2 3",
            "m 1 notatime",
            r#"m{a="1" 2"#,
            r#"m{a=1} 2"#,
            r#"m{a="1"b="2"} 2"#,
            r#"m{="1"} 2"#,
            r#"m{1a="1"} 2"#,
            r#"m{a="unterminated} 2"#,
            r#"m{a="\"#,
            "{a=\"1\"} 2",
            "m{",
        ] {
            assert_eq!(parse_line(bad), Err(()), "{bad:?}");
        }
    }

    // Goal: a snapshot answers by name and by label, and counts what it skipped.
    #[test]
    fn snapshot() {
        let s = Snapshot::parse(
            "# TYPE x gauge\nx 1\nx{a=\"b\"} 2\ny{shard=\"0\"} 5\ny{shard=\"1\"} 6\ngarbage here now\n\n",
        );
        assert_eq!(s.get("x"), Some(1.0));
        assert_eq!(s.get("y"), Some(5.0));
        assert_eq!(s.get("z"), None);
        assert_eq!(
            s.by_label("y", "shard"),
            vec![("0".into(), 5.0), ("1".into(), 6.0)]
        );
        assert!(s.by_label("y", "nope").is_empty());
        assert_eq!(s.bad_lines, 1);
        assert_eq!(s.len(), 2);
    }

    proptest! {
        // Goal: no input makes the parser panic.
        #[test]
        fn never_panics(text in any::<String>()) {
            let _ = Snapshot::parse(&text);
        }

        // Goal: nor input that looks almost like the format.
        #[test]
        fn never_panics_near_format(text in r#"([a-z_{}="\\,# \t\n.0-9+eEIinfNa-]|\PC){0,200}"#) {
            let _ = Snapshot::parse(&text);
        }

        // Goal: what a well-behaved exporter writes comes back as written.
        #[test]
        fn round_trip(
            name in "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
            ls in proptest::collection::vec(("[a-zA-Z_][a-zA-Z0-9_]{0,8}", "\\PC{0,10}"), 0..4),
            value in any::<f64>().prop_filter("finite", |v| v.is_finite()),
        ) {
            let esc = |v: &str| v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n");
            let body: Vec<String> = ls.iter().map(|(k, v)| format!("{k}=\"{}\"", esc(v))).collect();
            let line = format!("{name}{{{}}} {value:?}", body.join(","));
            let (n, l, v) = parse_line(&line).unwrap().unwrap();
            prop_assert_eq!(n, name);
            prop_assert_eq!(l, ls);
            prop_assert_eq!(v, value);
        }
    }
}
