//! One `GET /metrics` over plain HTTP/1.1 on its own connection (`Connection: close`), with a
//! deadline on the whole exchange. Enough for a dashboard; TLS is not spoken.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

/// Largest body accepted (the gateway's is ~20 KiB).
const MAX_RESPONSE: usize = 16 << 20;

/// Where to scrape: `host:port` and the path.
#[derive(Debug, Clone, PartialEq)]
pub struct Target {
    pub authority: String,
    pub path: String,
}

impl Target {
    /// `http://host:port/path`, `http://host:port` (path `/metrics`) or `host:port`.
    pub fn parse(s: &str) -> anyhow::Result<Target> {
        let s = s.trim();
        let rest = match s.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) => anyhow::bail!(
                "--target {s}: only http:// is spoken (not {scheme}://); scrape the gateway directly"
            ),
            None => s,
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        anyhow::ensure!(!authority.is_empty(), "--target {s}: no host");
        let authority = if has_port(authority) {
            authority.to_string()
        } else {
            format!("{authority}:80")
        };
        let path = if path.is_empty() || path == "/" {
            "/metrics".to_string()
        } else {
            path.to_string()
        };
        Ok(Target { authority, path })
    }

    pub fn url(&self) -> String {
        format!("http://{}{}", self.authority, self.path)
    }
}

fn has_port(authority: &str) -> bool {
    match authority.rfind(':') {
        // `[::1]` has colons but no port; `[::1]:80` has one after the bracket.
        Some(i) => !authority[i..].contains(']'),
        None => false,
    }
}

/// Why a scrape gave no metrics.
#[derive(Debug)]
pub enum ScrapeError {
    Connect(String),
    Io(String),
    /// 401: whether a token was sent decides the hint.
    Unauthorized {
        token_sent: bool,
    },
    Status(u16, String),
    Malformed(&'static str),
}

impl std::fmt::Display for ScrapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ScrapeError::Connect(e) => write!(f, "cannot connect: {e}"),
            ScrapeError::Io(e) => write!(f, "{e}"),
            ScrapeError::Unauthorized { token_sent: false } => write!(
                f,
                "401 Unauthorized: the gateway wants a metrics token and none was given \
                 (--metrics-token or GATEWAY_METRICS_TOKEN)"
            ),
            ScrapeError::Unauthorized { token_sent: true } => write!(
                f,
                "401 Unauthorized: the metrics token was refused (wrong --metrics-token / \
                 GATEWAY_METRICS_TOKEN)"
            ),
            ScrapeError::Status(code, body) => write!(f, "HTTP {code}: {body}"),
            ScrapeError::Malformed(what) => write!(f, "malformed HTTP response: {what}"),
        }
    }
}

/// Fetches the metrics text; the whole exchange must end within `timeout`.
pub fn fetch(t: &Target, token: Option<&str>, timeout: Duration) -> Result<String, ScrapeError> {
    let deadline = Instant::now() + timeout;
    let addrs: Vec<SocketAddr> = t
        .authority
        .to_socket_addrs()
        .map_err(|e| ScrapeError::Connect(format!("{}: {e}", t.authority)))?
        .collect();
    let mut last = ScrapeError::Connect(format!("{}: no address", t.authority));
    let mut stream = None;
    for a in addrs {
        match TcpStream::connect_timeout(&a, timeout) {
            Ok(s) => {
                stream = Some(s);
                break;
            }
            Err(e) => last = ScrapeError::Connect(format!("{a}: {e}")),
        }
    }
    let mut s = stream.ok_or(last)?;
    let io = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut => {
            ScrapeError::Io(format!("no answer within {} ms", timeout.as_millis()))
        }
        _ => ScrapeError::Io(e.to_string()),
    };
    s.set_write_timeout(Some(timeout)).map_err(io)?;
    let token = token.filter(|t| !t.is_empty());
    let auth = token.map_or(String::new(), |t| format!("X-Metrics-Token: {t}\r\n"));
    let req = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: switchyard-top\r\nAccept: text/plain\r\n\
         {auth}Connection: close\r\n\r\n",
        t.path, t.authority
    );
    s.write_all(req.as_bytes()).map_err(io)?;
    let mut raw = Vec::with_capacity(32 * 1024);
    let mut buf = [0u8; 16 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io(std::io::ErrorKind::TimedOut.into()));
        }
        s.set_read_timeout(Some(left)).map_err(io)?;
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(io(e)),
        }
        if raw.len() > MAX_RESPONSE {
            return Err(ScrapeError::Malformed("larger than 16 MiB"));
        }
    }
    let (status, body) = parse_response(&raw)?;
    match status {
        200 => Ok(body),
        401 => Err(ScrapeError::Unauthorized {
            token_sent: token.is_some(),
        }),
        code => {
            let short: String = body.trim().chars().take(120).collect();
            Err(ScrapeError::Status(code, short))
        }
    }
}

/// Status and body of a complete HTTP/1.x response (Content-Length, chunked, or to the end).
pub fn parse_response(raw: &[u8]) -> Result<(u16, String), ScrapeError> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or(ScrapeError::Malformed("no end of headers"))?;
    let head = String::from_utf8_lossy(&raw[..end]);
    let body = &raw[end + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or("");
    let mut words = status_line.split(' ');
    if !words.next().is_some_and(|w| w.starts_with("HTTP/1.")) {
        return Err(ScrapeError::Malformed("not HTTP/1.x"));
    }
    let status: u16 = words
        .next()
        .and_then(|c| c.parse().ok())
        .ok_or(ScrapeError::Malformed("no status code"))?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            continue;
        };
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(
                v.parse::<usize>()
                    .map_err(|_| ScrapeError::Malformed("bad Content-Length"))?,
            );
        } else if k.eq_ignore_ascii_case("transfer-encoding") {
            chunked = v.to_ascii_lowercase().contains("chunked");
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else if let Some(n) = length {
        body.get(..n)
            .ok_or(ScrapeError::Malformed(
                "body shorter than its Content-Length",
            ))?
            .to_vec()
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, ScrapeError> {
    let bad = ScrapeError::Malformed;
    let mut out = Vec::with_capacity(b.len());
    loop {
        let eol = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or(bad("truncated chunk size"))?;
        let size_text = String::from_utf8_lossy(&b[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        b = &b[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = b.get(..size).ok_or(bad("truncated chunk"))?;
        out.extend_from_slice(chunk);
        b = b.get(size..).ok_or(bad("truncated chunk"))?;
        b = b.strip_prefix(b"\r\n").ok_or(bad("chunk without CRLF"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: the forms of --target an operator types.
    #[test]
    fn targets() {
        let t = |s: &str| Target::parse(s).unwrap();
        assert_eq!(
            t("http://127.0.0.1:8081").url(),
            "http://127.0.0.1:8081/metrics"
        );
        assert_eq!(t("127.0.0.1:9000").url(), "http://127.0.0.1:9000/metrics");
        assert_eq!(t("http://gw/").url(), "http://gw:80/metrics");
        assert_eq!(t("HTTP://gw:1/x/metrics").path, "/x/metrics");
        assert_eq!(t("http://[::1]:8081").authority, "[::1]:8081");
        assert_eq!(t("http://[::1]").authority, "[::1]:80");
        assert!(Target::parse("https://gw:443").is_err());
        assert!(Target::parse("http:///metrics").is_err());
    }

    // Goal: Content-Length, chunked and to-the-end bodies; status codes.
    #[test]
    fn responses() {
        let (c, b) = parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef").unwrap();
        assert_eq!((c, b.as_str()), (200, "abc"));
        let (c, b) = parse_response(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
        )
        .unwrap();
        assert_eq!((c, b.as_str()), (200, "abcde"));
        let (c, b) = parse_response(b"HTTP/1.0 401 Unauthorized\r\n\r\n{}").unwrap();
        assert_eq!((c, b.as_str()), (401, "{}"));
        for bad in [
            &b"HTTP/1.1 200 OK\r\n"[..],
            b"SSH-2.0\r\n\r\n",
            b"HTTP/1.1 abc\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            assert!(
                parse_response(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    // Goal: nothing listening is a connect error naming the address, not a hang.
    #[test]
    fn refused() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let t = Target::parse(&format!("127.0.0.1:{port}")).unwrap();
        let e = fetch(&t, None, Duration::from_secs(2)).unwrap_err();
        assert!(matches!(e, ScrapeError::Connect(_)), "{e}");
        assert!(e.to_string().contains("refused"), "{e}");
    }
}
