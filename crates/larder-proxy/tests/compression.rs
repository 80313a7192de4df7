//! Compression through the real proxy binary, on by default: a FastAPI-like origin sends JSON
//! uncompressed; the proxy stores one gzip copy (one origin call) and every client gets what its
//! `Accept-Encoding` allows, checked with independent decoders; what the cache does not store
//! is compressed as it streams; `[compression] enabled = false` passes the origin's bytes.

mod common;

use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::*;

fn json(n: usize) -> String {
    let items: Vec<String> = (0..n)
        .map(|i| format!("{{\"id\":{i},\"email\":\"user{i}@example.test\"}}"))
        .collect();
    format!("[{}]", items.join(","))
}

fn decode(coding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match coding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .unwrap();
        }
        Some("zstd") => out = zstd::decode_all(body).unwrap(),
        Some(other) => panic!("unexpected coding {other}"),
    }
    out
}

async fn origin(calls: Arc<AtomicUsize>, asked: Arc<Mutex<Vec<String>>>) -> Origin {
    Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let ae = req
                .headers()
                .get("accept-encoding")
                .map_or("-", |v| v.to_str().unwrap())
                .to_owned();
            asked
                .lock()
                .unwrap()
                .push(format!("{} {ae}", req.uri().path()));
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                match path.as_str() {
                    "/items" => full(
                        200,
                        &[
                            ("content-type", "application/json"),
                            ("cache-control", "max-age=60"),
                        ],
                        json(500),
                    ),
                    "/me" => full(
                        200,
                        &[
                            ("content-type", "application/json"),
                            ("cache-control", "private"),
                        ],
                        json(300),
                    ),
                    _ => full(
                        200,
                        &[
                            ("content-type", "image/png"),
                            ("cache-control", "max-age=60"),
                        ],
                        vec![7u8; 5000],
                    ),
                }
            }) as futures::future::BoxFuture<'static, http::Response<OriginBody>>
        },
    ))
    .await
}

fn coding(h: &http::HeaderMap) -> Option<String> {
    h.get("content-encoding")
        .map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_compresses_once_and_serves_every_client_as_it_accepts() {
    let calls = Arc::new(AtomicUsize::new(0));
    let asked = Arc::new(Mutex::new(Vec::new()));
    let origin = origin(calls.clone(), asked.clone()).await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    let body = json(500).into_bytes();

    // A client that takes gzip fills; then one that takes nothing must get plain JSON (the
    // gzip copy never reaches a client that cannot read it), and others their codings.
    let (status, h, b) = get(&proxy.url("/items"), &[("accept-encoding", "gzip, br")]).await;
    assert_eq!(status, 200);
    assert_eq!(coding(&h).as_deref(), Some("gzip"));
    assert_eq!(decode(Some("gzip"), &b), body);
    for _ in 0..50 {
        if get(&proxy.url("/items"), &[]).await.1["x-cache"] == "HIT" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    for (ae, want) in [
        (None, None),
        (Some("identity"), None),
        (Some("gzip"), Some("gzip")),
        (Some("br"), Some("br")),
        (Some("zstd"), Some("zstd")),
        (Some("deflate, gzip;q=0.1"), Some("gzip")),
    ] {
        let headers: Vec<(&str, &str)> = ae.map(|v| ("accept-encoding", v)).into_iter().collect();
        let (status, h, b) = get(&proxy.url("/items"), &headers).await;
        assert_eq!(status, 200);
        assert_eq!(h["x-cache"], "HIT", "{ae:?}");
        assert_eq!(coding(&h).as_deref(), want, "{ae:?}");
        assert_eq!(decode(want, &b), body, "{ae:?}");
        assert_eq!(h["vary"], "accept-encoding", "{ae:?}");
        if want == Some("gzip") {
            assert!(
                b.len() * 4 < body.len(),
                "the stored copy, compressed: {}",
                b.len()
            );
        }
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "{:?}",
        asked.lock().unwrap()
    );
    assert_eq!(
        asked.lock().unwrap()[0],
        "/items gzip",
        "fills ask for the stored coding"
    );

    // Not stored (private): compressed as it streams for the client that takes it.
    let (_, h, b) = get(&proxy.url("/me"), &[("accept-encoding", "br")]).await;
    assert_eq!(coding(&h).as_deref(), Some("br"));
    assert_eq!(decode(Some("br"), &b), json(300).into_bytes());
    assert!(
        asked.lock().unwrap().contains(&"/me gzip".to_owned()),
        "a GET that might be stored asks in the stored coding"
    );
    // Not compressible: as it came.
    let (_, h, b) = get(&proxy.url("/logo.png"), &[("accept-encoding", "gzip")]).await;
    assert!(coding(&h).is_none());
    assert_eq!(b.len(), 5000);

    let text = String::from_utf8(get(&proxy.admin_url("/metrics"), &[]).await.2.to_vec()).unwrap();
    assert!(text.contains("larder_proxy_requests_total"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn compression_turned_off_passes_the_origins_bytes() {
    let origin = origin(Arc::default(), Arc::default()).await;
    let (_dir, file) = config_file("[compression]\nenabled = false\n");
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    let (_, h, b) = get(&proxy.url("/items"), &[("accept-encoding", "gzip")]).await;
    assert!(coding(&h).is_none() && h.get("vary").is_none());
    assert_eq!(b, json(500).into_bytes());
}
