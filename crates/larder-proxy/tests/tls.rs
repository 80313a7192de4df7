//! An https upstream: a real TLS origin (rustls, a certificate from a test CA) behind the real
//! proxy, trusted through `ca_file`, and refused when the proxy does not trust its CA.

mod common;

use std::sync::Arc;

use common::*;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};

/// A TLS origin on 127.0.0.1 answering "secure" with Cache-Control; returns its address and the
/// CA's PEM.
async fn tls_origin() -> (std::net::SocketAddr, String, tokio::task::JoinHandle<()>) {
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate().unwrap()).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca)
        .unwrap();
    let key = rustls_pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![leaf.der().clone()], key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return;
                };
                let svc = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(full(
                        200,
                        &[("cache-control", "max-age=60")],
                        "secure",
                    ))
                });
                let _ = auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    (addr, ca.pem(), task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_upstream_is_reached_with_the_configured_ca_and_refused_without() {
    let (addr, ca_pem, task) = tls_origin().await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let (_cfg_dir, config) = config_file(&format!(
        "[proxy]\nupstream = \"https://{addr}\"\n[upstream]\nca_file = {:?}\n",
        ca.to_str().unwrap()
    ));
    let proxy = Proxy::start_with(
        addr,
        &[
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            &format!("https://{addr}"),
        ],
        &[],
        None,
    );
    let (status, _, body) = get(&proxy.url("/"), &[]).await;
    assert_eq!((status, &body[..]), (200, &b"secure"[..]));
    let (_, h, _) = get(&proxy.url("/"), &[]).await;
    assert_eq!(h["x-cache"], "HIT");

    // Trusting only another CA: the handshake fails, and the client gets a 502, not a hang.
    let (_, other_ca, other) = tls_origin().await;
    other.abort();
    std::fs::write(&ca, other_ca).unwrap();
    let proxy = Proxy::start_with(
        addr,
        &[
            "--config",
            config.to_str().unwrap(),
            "--upstream",
            &format!("https://{addr}"),
        ],
        &[],
        None,
    );
    let (status, _, _) = get(&proxy.url("/other"), &[]).await;
    assert_eq!(status, 502);
    task.abort();
}
