//! Optional TLS for both listeners (`GATEWAY_TLS_CERT` / `GATEWAY_TLS_KEY`; the v3 TCP
//! ingress follows unless `V3_TCP_TLS=false`): rustls on the ring backend, certificates and
//! keys from PEM files, TLS 1.2 and 1.3 with rustls' safe defaults, no client certificates.
//!
//! The plain path pays nothing for this: the connection functions are generic over the stream,
//! so a plain connection runs the `TcpStream` instance and a TLS one the `TlsStream` instance;
//! no boxing, no per-read branch. The handshake runs on the connection's own task (never in
//! the accept loop) and is bounded by `GATEWAY_HEADER_READ_TIMEOUT_MS`, so a client that opens
//! a connection and never finishes its hello holds it no longer than a slow HTTP head would.
//!
//! Certificates are read once at startup; rotating them is a restart (see
//! `docs/operations.md`, "TLS").

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::{Config, ConfigError};

pub use tokio_rustls::server::TlsStream;
pub use tokio_rustls::TlsAcceptor;

/// Which listener an acceptor is for: HTTP announces `http/1.1` by ALPN, the binary protocol
/// announces nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    Http,
    Tcp,
}

fn cfg_err(key: &str, message: String) -> ConfigError {
    ConfigError {
        key: key.to_string(),
        message,
    }
}

/// Reads the certificate chain and private key (PEM) and builds a server configuration.
/// Errors name the variable whose file is at fault.
pub fn server_config(cert_path: &str, key_path: &str) -> Result<rustls::ServerConfig, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_path)
        .map_err(|e| cfg_err("GATEWAY_TLS_CERT", format!("cannot read {cert_path}: {e}")))?
        .collect::<Result<_, _>>()
        .map_err(|e| cfg_err("GATEWAY_TLS_CERT", format!("bad PEM in {cert_path}: {e}")))?;
    if certs.is_empty() {
        return Err(cfg_err(
            "GATEWAY_TLS_CERT",
            format!("{cert_path} holds no CERTIFICATE block"),
        ));
    }
    let key = PrivateKeyDer::from_pem_file(key_path).map_err(|e| {
        cfg_err(
            "GATEWAY_TLS_KEY",
            format!("no usable private key (PKCS#8, PKCS#1 or SEC1 PEM) in {key_path}: {e}"),
        )
    })?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cfg_err("GATEWAY_TLS_CERT", format!("TLS setup: {e}")))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            cfg_err(
                "GATEWAY_TLS_KEY",
                format!("the key in {key_path} does not fit the certificate in {cert_path}: {e}"),
            )
        })
}

/// The acceptor for `listener`, or `None` when that listener is plain.
pub fn acceptor(cfg: &Config, listener: Listener) -> Result<Option<TlsAcceptor>, ConfigError> {
    let on = match listener {
        Listener::Http => cfg.http_tls(),
        Listener::Tcp => cfg.tcp_tls(),
    };
    if !on {
        return Ok(None);
    }
    let mut sc = server_config(&cfg.gateway.tls_cert, &cfg.gateway.tls_key)?;
    if listener == Listener::Http {
        sc.alpn_protocols = vec![b"http/1.1".to_vec()];
    }
    Ok(Some(TlsAcceptor::from(Arc::new(sc))))
}

/// Runs the server side of the handshake within `timeout`; `None` (after a debug log) when
/// the client fails it, sends something that is not TLS (plain HTTP to the TLS port), or is
/// too slow. The caller then simply drops the connection.
pub async fn handshake<S>(
    acceptor: &TlsAcceptor,
    stream: S,
    timeout: Duration,
) -> Option<TlsStream<S>>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            tracing::debug!(%e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake timed out");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn self_signed(dir: &std::path::Path) -> (String, String) {
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, ck.cert.pem()).unwrap();
        std::fs::write(&key, ck.key_pair.serialize_pem()).unwrap();
        (
            cert.to_str().unwrap().to_string(),
            key.to_str().unwrap().to_string(),
        )
    }

    // Goal: a generated certificate and key load; ALPN is announced on HTTP only.
    #[test]
    fn loads_pem_and_sets_alpn() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        assert!(server_config(&cert, &key).is_ok());
        let mut cfg = Config::default();
        cfg.gateway.tls_cert = cert;
        cfg.gateway.tls_key = key;
        assert!(acceptor(&cfg, Listener::Http).unwrap().is_some());
        assert!(acceptor(&cfg, Listener::Tcp).unwrap().is_some());
        cfg.v3.tcp_tls = Some(false);
        assert!(acceptor(&cfg, Listener::Tcp).unwrap().is_none());
        assert!(acceptor(&Config::default(), Listener::Http)
            .unwrap()
            .is_none());
    }

    // Goal: missing files, empty PEM, swapped files and a key of another certificate are
    // errors naming the variable at fault.
    #[test]
    fn bad_files_name_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let e = server_config("/nonexistent/cert.pem", &key).unwrap_err();
        assert_eq!(e.key, "GATEWAY_TLS_CERT", "{e}");
        let e = server_config(&cert, "/nonexistent/key.pem").unwrap_err();
        assert_eq!(e.key, "GATEWAY_TLS_KEY", "{e}");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a pem file\n").unwrap();
        assert_eq!(
            server_config(empty.to_str().unwrap(), &key)
                .unwrap_err()
                .key,
            "GATEWAY_TLS_CERT"
        );
        // Key and certificate swapped.
        assert_eq!(
            server_config(&key, &cert).unwrap_err().key,
            "GATEWAY_TLS_CERT"
        );
        // A key of another certificate.
        let other = tempfile::tempdir().unwrap();
        let (_, other_key) = self_signed(other.path());
        assert_eq!(
            server_config(&cert, &other_key).unwrap_err().key,
            "GATEWAY_TLS_KEY"
        );
    }

    // Goal: certificate and key come both or neither; V3_TCP_TLS=true needs them; the
    // configuration check reads the files.
    #[test]
    fn config_rules() {
        use crate::config::Config;
        let env = |pairs: &[(&str, &str)]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<Vec<_>>()
        };
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = self_signed(dir.path());
        let e = Config::load(None, env(&[("GATEWAY_TLS_CERT", &cert)])).unwrap_err();
        assert_eq!(e.key, "GATEWAY_TLS_KEY");
        let e = Config::load(None, env(&[("GATEWAY_TLS_KEY", &key)])).unwrap_err();
        assert_eq!(e.key, "GATEWAY_TLS_CERT");
        let e = Config::load(None, env(&[("V3_TCP_TLS", "true")])).unwrap_err();
        assert_eq!(e.key, "V3_TCP_TLS");
        let e = Config::load(
            None,
            env(&[("GATEWAY_TLS_CERT", "/nope.pem"), ("GATEWAY_TLS_KEY", &key)]),
        )
        .unwrap_err();
        assert_eq!(e.key, "GATEWAY_TLS_CERT");
        let c = Config::load(
            None,
            env(&[("GATEWAY_TLS_CERT", &cert), ("GATEWAY_TLS_KEY", &key)]),
        )
        .unwrap();
        assert!(c.http_tls() && c.tcp_tls());
        let c = Config::load(
            None,
            env(&[
                ("GATEWAY_TLS_CERT", &cert),
                ("GATEWAY_TLS_KEY", &key),
                ("V3_TCP_TLS", "false"),
            ]),
        )
        .unwrap();
        assert!(c.http_tls() && !c.tcp_tls());
        let c = Config::load(None, env(&[])).unwrap();
        assert!(!c.http_tls() && !c.tcp_tls());
    }
}
