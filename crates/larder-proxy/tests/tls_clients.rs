//! TLS to clients: the real proxy with a `[tls]` listener, real TLS clients (rustls) speaking
//! HTTP/2 and HTTP/1.1 as ALPN chose, certificates chosen by SNI, certificates read again on
//! SIGHUP while a connection stays open, a bad certificate refused by `check` and by a reload,
//! and a client that never finishes its handshake cut at the header timeout.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A test CA, and leaf certificates it signs, written as PEM files.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: PathBuf,
}

impl Ca {
    fn new(dir: &Path) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Self {
            issuer,
            dir: dir.to_owned(),
        }
    }

    /// A leaf for `names`, as `<file>.pem` and `<file>.key`; its DER back.
    fn leaf(&self, file: &str, names: &[&str]) -> (PathBuf, PathBuf, CertificateDer<'static>) {
        let key = KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| (*n).to_owned()).collect();
        let cert = CertificateParams::new(names)
            .unwrap()
            .signed_by(&key, &self.issuer)
            .unwrap();
        let (c, k) = (
            self.dir.join(format!("{file}.pem")),
            self.dir.join(format!("{file}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        std::fs::write(&k, key.serialize_pem()).unwrap();
        (c, k, cert.der().clone())
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

/// A TLS connection to the proxy's TLS port, asking for `name`, offering `alpn`, speaking only
/// `versions`.
async fn connect(
    port: u16,
    roots: rustls::RootCertStore,
    name: &str,
    alpn: &[&[u8]],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(versions)
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(("127.0.0.1", port)).await?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    connector
        .connect(ServerName::try_from(name.to_owned()).unwrap(), tcp)
        .await
}

const BOTH: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

/// The certificate the server presented.
fn served(stream: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    stream.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// A GET over an HTTP/2 connection: status, x-cache, body.
async fn h2_get(
    sender: &mut hyper::client::conn::http2::SendRequest<Empty<Bytes>>,
    path: &str,
) -> (u16, String, Bytes) {
    let req = http::Request::get(format!("https://localhost{path}"))
        .body(Empty::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_2);
    let status = resp.status().as_u16();
    let x = resp.headers()["x-cache"].to_str().unwrap().to_owned();
    (
        status,
        x,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

async fn h2(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
) -> hyper::client::conn::http2::SendRequest<Empty<Bytes>> {
    let (sender, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    sender
}

/// A GET over HTTP/1.1 on a new TLS connection: status, x-cache, body.
async fn h1_get(
    stream: tokio_rustls::client::TlsStream<TcpStream>,
    path: &str,
) -> (u16, String, Bytes) {
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.unwrap();
    assert_eq!(resp.version(), http::Version::HTTP_11);
    let status = resp.status().as_u16();
    let x = resp.headers()["x-cache"].to_str().unwrap().to_owned();
    (
        status,
        x,
        resp.into_body().collect().await.unwrap().to_bytes(),
    )
}

/// An origin that says which scheme the proxy told it, cacheable for a minute; and what it saw.
async fn origin() -> (Origin, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            let proto = req
                .headers()
                .get("x-forwarded-proto")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            log.lock()
                .unwrap()
                .push(format!("{} {proto}", req.uri().path()));
            Box::pin(async move {
                full(
                    200,
                    &[("cache-control", "max-age=60")],
                    format!("for {proto}"),
                )
            }) as futures::future::BoxFuture<'static, http::Response<OriginBody>>
        },
    ))
    .await;
    (origin, seen)
}

fn tls_config(default: (&Path, &Path), more: &[(&Path, &Path)], extra: &str) -> String {
    let mut text = format!(
        "[limits]\nheader_read_timeout = \"1s\"\n\n[tls]\nlisten = \"127.0.0.1:0\"\ncert = {:?}\nkey = {:?}\n{extra}",
        default.0, default.1
    );
    for (c, k) in more {
        text.push_str(&format!(
            "\n[[tls.certificate]]\ncert = {c:?}\nkey = {k:?}\n"
        ));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_clients_get_http2_or_http1_by_alpn_and_the_certificate_for_the_name_they_ask() {
    let (origin, seen) = origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (c1, k1, default_der) = ca.leaf("default", &["localhost", "127.0.0.1"]);
    let (c2, k2, api_der) = ca.leaf("api", &["api.example.test", "*.wild.test"]);
    let (_cfg, file) = config_file(&tls_config((&c1, &k1), &[(&c2, &k2)], ""));
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    assert_ne!(proxy.tls_port, 0, "{}", proxy.log_text());

    // HTTP/2 by ALPN: the first request fills, the next on the same connection hits; the origin
    // was told https.
    let stream = connect(
        proxy.tls_port,
        ca.roots(),
        "localhost",
        &[b"h2", b"http/1.1"],
        BOTH,
    )
    .await
    .unwrap();
    assert_eq!(stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    assert_eq!(served(&stream), default_der);
    let mut sender = h2(stream).await;
    let (status, x, body) = h2_get(&mut sender, "/page").await;
    assert_eq!(
        (status, x.as_str(), &body[..]),
        (200, "MISS", &b"for https"[..])
    );
    let (_, x, _) = h2_get(&mut sender, "/page").await;
    assert_eq!(x, "HIT");

    // HTTP/1.1 by ALPN, and with no ALPN at all: the same stored https answer.
    for alpn in [&[&b"http/1.1"[..]][..], &[]] {
        let stream = connect(proxy.tls_port, ca.roots(), "localhost", alpn, BOTH)
            .await
            .unwrap();
        let (status, x, body) = h1_get(stream, "/page").await;
        assert_eq!(
            (status, x.as_str(), &body[..]),
            (200, "HIT", &b"for https"[..])
        );
    }

    // Plain HTTP beside it is keyed apart: the origin's https links never reach it.
    let (status, headers, body) = get(&proxy.url("/page"), &[]).await;
    assert_eq!((status, &body[..]), (200, &b"for http"[..]));
    assert_eq!(headers["x-cache"], "MISS");
    assert_eq!(
        *seen.lock().unwrap(),
        ["/page https", "/page http"],
        "one origin call per scheme"
    );

    // SNI: a name the second certificate covers, exactly or by its wildcard, gets it.
    for name in ["api.example.test", "x.wild.test"] {
        let stream = connect(proxy.tls_port, ca.roots(), name, &[b"h2"], BOTH)
            .await
            .unwrap();
        assert_eq!(served(&stream), api_der, "{name}");
    }
    // A name no certificate covers gets the default, which the client rightly refuses.
    assert!(
        connect(proxy.tls_port, ca.roots(), "nobody.test", &[b"h2"], BOTH)
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_serves_a_renewed_certificate_to_new_connections_and_keeps_open_ones() {
    let (origin, _) = origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (c, k, first) = ca.leaf("site", &["localhost"]);
    let (_cfg, file) = config_file(&tls_config((&c, &k), &[], "min_version = \"1.3\"\n"));
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);

    // TLS 1.2 alone is refused when the floor is 1.3.
    let tls12 = &[&rustls::version::TLS12][..];
    assert!(
        connect(proxy.tls_port, ca.roots(), "localhost", &[b"h2"], tls12)
            .await
            .is_err()
    );

    let open = connect(proxy.tls_port, ca.roots(), "localhost", &[b"h2"], BOTH)
        .await
        .unwrap();
    assert_eq!(served(&open), first);
    let mut sender = h2(open).await;
    assert_eq!(h2_get(&mut sender, "/a").await.0, 200);

    // The certificate is renewed in place (same files), then SIGHUP.
    let (_, _, renewed) = ca.leaf("site", &["localhost"]);
    assert_ne!(renewed, first);
    let hup = Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    let mut now = None;
    for _ in 0..200 {
        if proxy.log_text().contains("(SIGHUP)") {
            let s = connect(proxy.tls_port, ca.roots(), "localhost", &[b"h2"], BOTH)
                .await
                .unwrap();
            now = Some(served(&s));
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(now.as_ref(), Some(&renewed), "{}", proxy.log_text());
    // The connection opened before the reload still serves.
    let (status, x, _) = h2_get(&mut sender, "/a").await;
    assert_eq!((status, x.as_str()), (200, "HIT"));

    // A key that is not the certificate's: the reload is refused and says why; nothing changes.
    let (_, other_key, _) = ca.leaf("other", &["localhost"]);
    std::fs::copy(&other_key, &k).unwrap();
    let (status, _, body) = send("POST", &proxy.admin_url("/reload"), &[], b"").await;
    let text = String::from_utf8_lossy(&body);
    assert_ne!(status, 200, "{text}");
    assert!(text.contains("[tls]"), "{text}");
    let s = connect(proxy.tls_port, ca.roots(), "localhost", &[b"h2"], BOTH)
        .await
        .unwrap();
    assert_eq!(served(&s), renewed);
    let (status, x, _) = h1_get(
        connect(
            proxy.tls_port,
            ca.roots(),
            "localhost",
            &[b"http/1.1"],
            BOTH,
        )
        .await
        .unwrap(),
        "/a",
    )
    .await;
    assert_eq!((status, x.as_str()), (200, "HIT"));

    // `check` reads the files too, and refuses the pair.
    let out = Command::new(env!("CARGO_BIN_EXE_larder-proxy"))
        .args(["check", "--config", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("[tls]") && err.contains("site.key"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_finishes_its_handshake_is_cut_at_the_header_timeout() {
    let (origin, _) = origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path());
    let (c, k, _) = ca.leaf("site", &["localhost"]);
    let (_cfg, file) = config_file(&tls_config((&c, &k), &[], ""));
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    // Silent, and half a ClientHello: both closed (header_read_timeout is 1 s; the bound here
    // is generous for a loaded machine, the point is that it ends).
    for sent in [&b""[..], &[0x16, 0x03, 0x01, 0x02, 0x00, 0x01][..]] {
        let out = tokio::task::spawn_blocking({
            let port = proxy.tls_port;
            move || raw_exchange(port, sent, Duration::from_secs(30))
        })
        .await
        .unwrap();
        let _ = out;
    }
    let metrics = get(&proxy.admin_url("/metrics"), &[]).await.2;
    let text = String::from_utf8_lossy(&metrics);
    assert!(
        text.contains("larder_proxy_tls_handshakes_total{result=\"timeout\"} 2"),
        "{text}"
    );
}
