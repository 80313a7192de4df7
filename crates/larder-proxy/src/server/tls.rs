//! TLS for client connections (rustls): the certificates from PEM files, the one a client gets
//! chosen by the name it asks for (SNI), HTTP/2 offered by ALPN beside HTTP/1.1, TLS 1.2 and
//! 1.3 only, session tickets on (resumption spares a returning client the full handshake).
//!
//! The configuration is swapped whole on reload ([`Tls::reload`]): connections accepted after
//! it get the new certificates; those open keep theirs. The ticket key outlives reloads, so a
//! reload does not cost every returning client a full handshake.
//!
//! ```no_run
//! use larder_proxy::server::{Certificate, Tls, TlsSettings};
//! let settings = TlsSettings::new(
//!     "127.0.0.1:8443".parse().unwrap(),
//!     Certificate::new("/etc/larder/cert.pem", "/etc/larder/key.pem"),
//! );
//! let tls = Tls::load(&settings)?;
//! # Ok::<(), larder_proxy::server::TlsError>(())
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::{ClientHello, ProducesTickets, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// Why TLS cannot be set up from the settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// A file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// What reading it said.
        source: std::io::Error,
    },
    /// A file holds no certificate, no key, or a malformed one.
    #[error("{path}: {reason}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key does not belong to the certificate, or rustls refuses the pair.
    #[error("{cert} with {key}: {reason}")]
    Pair {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
        /// Why they do not go together.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS: {0}")]
    Config(String),
}

/// A certificate chain (PEM, the server's certificate first) and its private key (PEM: PKCS#8,
/// PKCS#1 or SEC1).
///
/// ```
/// let c = larder_proxy::server::Certificate::new("cert.pem", "key.pem");
/// assert_eq!(c.cert.to_str(), Some("cert.pem"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Certificate {
    /// The chain's file.
    pub cert: PathBuf,
    /// The key's file.
    pub key: PathBuf,
}

impl Certificate {
    /// The pair of files.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        Self {
            cert: cert.into(),
            key: key.into(),
        }
    }
}

/// The oldest protocol version a client may speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MinVersion {
    /// TLS 1.2 and 1.3 (the default; rustls never speaks older ones).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// The TLS listener's settings (`[tls]` in the configuration file).
///
/// ```
/// use larder_proxy::server::{Certificate, TlsSettings};
/// let s = TlsSettings::new("127.0.0.1:8443".parse().unwrap(), Certificate::new("c.pem", "k.pem"));
/// assert!(s.http2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsSettings {
    /// Where TLS clients connect.
    pub listen: SocketAddr,
    /// The certificate for a client that names no host, or one no other certificate covers.
    pub default: Certificate,
    /// More certificates: a client gets the first that covers the name it asks for (SNI),
    /// wildcards included.
    pub more: Vec<Certificate>,
    /// Offer HTTP/2 by ALPN (default true); HTTP/1.1 always.
    pub http2: bool,
    /// The oldest version accepted.
    pub min_version: MinVersion,
}

impl TlsSettings {
    /// A listener on `listen` with one certificate, HTTP/2 offered, TLS 1.2 and up.
    pub fn new(listen: SocketAddr, default: Certificate) -> Self {
        Self {
            listen,
            default,
            more: Vec::new(),
            http2: true,
            min_version: MinVersion::Tls12,
        }
    }
}

/// A TLS listener's configuration, which a reload replaces for the connections that come next.
#[derive(Clone)]
pub struct Tls {
    config: Arc<arc_swap::ArcSwap<rustls::ServerConfig>>,
    tickets: Arc<dyn ProducesTickets>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("alpn", &self.config.load().alpn_protocols)
            .finish_non_exhaustive()
    }
}

impl Tls {
    /// Reads and checks the certificates and keys `settings` name.
    pub fn load(settings: &TlsSettings) -> Result<Self, TlsError> {
        let tickets =
            rustls::crypto::ring::Ticketer::new().map_err(|e| TlsError::Config(e.to_string()))?;
        let config = server_config(settings, tickets.clone())?;
        Ok(Self {
            config: Arc::new(arc_swap::ArcSwap::from_pointee(config)),
            tickets,
        })
    }

    /// Reads the files again (renewed certificates) and applies `settings` to the connections
    /// accepted from now on; on an error nothing changes.
    pub fn reload(&self, settings: &TlsSettings) -> Result<(), TlsError> {
        let config = server_config(settings, self.tickets.clone())?;
        self.config.store(Arc::new(config));
        Ok(())
    }

    /// The acceptor for the next connection.
    pub(super) fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        tokio_rustls::TlsAcceptor::from(self.config.load_full())
    }
}

/// Checks that the files `settings` names make a working configuration (for `check`).
///
/// ```no_run
/// # fn f(s: &larder_proxy::server::TlsSettings) {
/// if let Err(e) = larder_proxy::server::check_tls(s) {
///     eprintln!("{e}");
/// }
/// # }
/// ```
pub fn check_tls(settings: &TlsSettings) -> Result<(), TlsError> {
    Tls::load(settings).map(drop)
}

fn server_config(
    settings: &TlsSettings,
    tickets: Arc<dyn ProducesTickets>,
) -> Result<rustls::ServerConfig, TlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let default = certified(&settings.default, &provider)?;
    let more = settings
        .more
        .iter()
        .map(|c| certified(c, &provider))
        .collect::<Result<Vec<_>, _>>()?;
    let versions: &[&rustls::SupportedProtocolVersion] = match settings.min_version {
        MinVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
        MinVersion::Tls13 => &[&rustls::version::TLS13],
    };
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| TlsError::Config(e.to_string()))?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(ByName { default, more }));
    config.alpn_protocols = if settings.http2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    config.ticketer = tickets;
    Ok(config)
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.to_owned(),
        source,
    })
}

/// A certificate and its key, checked to belong together.
fn certified(c: &Certificate, provider: &CryptoProvider) -> Result<Arc<CertifiedKey>, TlsError> {
    let pem = |path: &Path, reason: String| TlsError::Pem {
        path: path.to_owned(),
        reason,
    };
    let chain = CertificateDer::pem_slice_iter(&read(&c.cert)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem(&c.cert, e.to_string()))?;
    let Some(leaf) = chain.first() else {
        return Err(pem(&c.cert, "no CERTIFICATE in the file".into()));
    };
    webpki::EndEntityCert::try_from(leaf).map_err(|e| {
        pem(
            &c.cert,
            format!("the first certificate does not parse: {e}"),
        )
    })?;
    let key = PrivateKeyDer::from_pem_slice(&read(&c.key)?)
        .map_err(|e| pem(&c.key, format!("no private key read: {e}")))?;
    let pair = CertifiedKey::from_der(chain, key, provider).map_err(|e| TlsError::Pair {
        cert: c.cert.clone(),
        key: c.key.clone(),
        reason: e.to_string(),
    })?;
    Ok(Arc::new(pair))
}

/// Chooses a certificate by the name the client asks for.
#[derive(Debug)]
struct ByName {
    default: Arc<CertifiedKey>,
    more: Vec<Arc<CertifiedKey>>,
}

impl ResolvesServerCert for ByName {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let Some(name) = hello.server_name() else {
            return Some(self.default.clone());
        };
        let Ok(name) = ServerName::try_from(name) else {
            return Some(self.default.clone());
        };
        // A few microseconds a certificate, beside a handshake's signature: parsing the
        // leaf here keeps one copy of it and lets webpki judge names and wildcards.
        let covers = |c: &&Arc<CertifiedKey>| {
            c.cert.first().is_some_and(|leaf| {
                webpki::EndEntityCert::try_from(leaf)
                    .is_ok_and(|cert| cert.verify_is_valid_for_subject_name(&name).is_ok())
            })
        };
        Some(
            self.more
                .iter()
                .find(covers)
                .unwrap_or(&self.default)
                .clone(),
        )
    }
}

/// Runs the handshake within `timeout` (a client that stalls it is dropped, as one that stalls
/// its request head); the stream and the protocol ALPN chose come back.
pub(super) async fn handshake(
    acceptor: tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    timeout: std::time::Duration,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    super::connection::Protocol,
)> {
    let (result, done) = match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(stream)) => {
            let protocol = match stream.get_ref().1.alpn_protocol() {
                Some(b"h2") => super::connection::Protocol::Http2,
                _ => super::connection::Protocol::Http1,
            };
            ("ok", Some((stream, protocol)))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            ("failed", None)
        }
        Err(_) => ("timeout", None),
    };
    metrics::counter!("larder_proxy_tls_handshakes_total", "result" => result).increment(1);
    done
}
