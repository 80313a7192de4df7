//! Compression (`CacheLayer::compression`): one stored copy, compressed once, served to each
//! client as its `Accept-Encoding` allows; checked with independent decoders (flate2, brotli,
//! zstd), against an origin that sends JSON uncompressed and one that compresses itself.

use std::convert::Infallible;
use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response};
use larder_http::{CacheLayer, Compression};
use tower::{Layer, ServiceExt};

type Origin = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

fn json() -> String {
    let items: Vec<String> = (0..400)
        .map(|i| format!("{{\"id\":{i},\"name\":\"user {i}\",\"active\":true}}"))
        .collect();
    format!("[{}]", items.join(","))
}

/// An origin answering `body` with these headers; it counts its calls and records the
/// `Accept-Encoding` it was asked with.
fn origin(
    headers: &'static [(&'static str, &'static str)],
    body: Bytes,
    calls: Arc<AtomicUsize>,
    asked: Arc<std::sync::Mutex<Vec<String>>>,
) -> Origin {
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req: Request<Body>| {
        calls.fetch_add(1, Ordering::SeqCst);
        asked.lock().unwrap().push(
            req.headers()
                .get("accept-encoding")
                .map_or("-", |v| v.to_str().unwrap())
                .to_owned(),
        );
        let mut b = Response::builder();
        for (n, v) in headers {
            b = b.header(*n, *v);
        }
        let body = body.clone();
        async move { Ok::<_, Infallible>(b.body(Body::from(body)).unwrap()) }
    }))
}

async fn get(svc: &Origin, layer: &CacheLayer, path: &str, ae: Option<&str>) -> (HeaderMap, Bytes) {
    get_with(svc, layer, path, &[("accept-encoding", ae)]).await
}

async fn get_with(
    svc: &Origin,
    layer: &CacheLayer,
    path: &str,
    headers: &[(&str, Option<&str>)],
) -> (HeaderMap, Bytes) {
    let mut req = Request::get(format!("http://api.test{path}"));
    for (n, v) in headers {
        if let Some(v) = v {
            req = req.header(*n, *v);
        }
    }
    let resp = layer
        .layer(svc.clone())
        .oneshot(req.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = http_body_util::BodyExt::collect(body)
        .await
        .unwrap()
        .to_bytes();
    (parts.headers, body)
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

/// Waits until the fill's body is stored (a task stores it).
async fn stored(layer: &CacheLayer) {
    let purger = layer.purger();
    for _ in 0..200 {
        if purger.fetches_in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn one_compressed_copy_serves_every_client_as_it_accepts() {
    let body = Bytes::from(json());
    let calls = Arc::new(AtomicUsize::new(0));
    let asked = Arc::default();
    let svc = origin(
        &[
            ("content-type", "application/json"),
            ("cache-control", "max-age=60"),
            ("etag", "\"v1\""),
        ],
        body.clone(),
        calls.clone(),
        Arc::clone(&asked),
    );
    let cache = larder::Cache::new();
    let layer = CacheLayer::shared(cache.clone());

    // The miss: the origin is asked in the stored coding; this client (brotli) gets brotli.
    let (h, b) = get(&svc, &layer, "/users", Some("br")).await;
    assert_eq!(h["x-cache"], "MISS");
    assert_eq!(h["content-encoding"], "br");
    assert_eq!(decode(Some("br"), &b), body);
    assert_eq!(*asked.lock().unwrap(), ["gzip"]);
    stored(&layer).await;

    // The stored copy is gzip, a fraction of the body, and counts so in the memory bound.
    let weight = cache.stats().weight;
    assert!(
        weight < body.len() as u64 / 3,
        "stored {weight} for {}",
        body.len()
    );

    for (ae, coding) in [
        (Some("gzip, deflate, br, zstd"), Some("gzip")),
        // The stored coding whenever the client takes it at all: no work per hit.
        (Some("gzip;q=0.5, br;q=1"), Some("gzip")),
        (Some("br"), Some("br")),
        (Some("zstd"), Some("zstd")),
        (Some("identity"), None),
        (None, None),
        (Some("gzip;q=0, *;q=0"), None),
    ] {
        let (h, b) = get(&svc, &layer, "/users", ae).await;
        assert_eq!(h["x-cache"], "HIT", "{ae:?}");
        assert_eq!(
            h.get("content-encoding").map(|v| v.to_str().unwrap()),
            coding,
            "{ae:?}"
        );
        assert_eq!(decode(coding, &b), body, "{ae:?}");
        let vary: Vec<_> = h.get_all("vary").iter().collect();
        assert_eq!(vary, ["accept-encoding"], "{ae:?}");
        assert_eq!(
            h["etag"], "W/\"v1\"",
            "{ae:?}: bytes differ, meaning does not"
        );
        assert!(
            h.get("content-length")
                .is_none_or(|l| l.to_str().unwrap() == b.len().to_string()),
            "{ae:?}"
        );
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one origin call for every client"
    );

    // Conditional requests match the weak tag, in either spelling, whatever the coding.
    for tag in ["W/\"v1\"", "\"v1\""] {
        let (h, b) = get_with(
            &svc,
            &layer,
            "/users",
            &[
                ("if-none-match", Some(tag)),
                ("accept-encoding", Some("gzip")),
            ],
        )
        .await;
        assert!(b.is_empty(), "{tag}: a 304");
        assert_eq!(h["vary"], "accept-encoding");
    }
}

#[tokio::test]
async fn an_origin_that_compresses_and_varies_is_stored_once_not_per_accept_encoding() {
    let body = Bytes::from(json());
    let gz = {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut e, &body).unwrap();
        Bytes::from(e.finish().unwrap())
    };
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = origin(
        &[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
            ("vary", "Accept-Encoding"),
            ("cache-control", "max-age=60"),
        ],
        gz.clone(),
        calls.clone(),
        Arc::default(),
    );
    let layer = CacheLayer::shared(larder::Cache::new());
    let (_, b) = get(&svc, &layer, "/v", Some("gzip")).await;
    assert_eq!(b, gz, "passed as the origin sent it");
    stored(&layer).await;
    for ae in [Some("gzip"), Some("br, gzip"), None, Some("br")] {
        let (h, b) = get(&svc, &layer, "/v", ae).await;
        assert_eq!(h["x-cache"], "HIT", "{ae:?}");
        let coding = h
            .get("content-encoding")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(decode(coding.as_deref(), &b), body, "{ae:?}");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn what_must_not_be_compressed_is_not() {
    let big = Bytes::from(vec![b'a'; 10_000]);
    for headers in [
        &[
            ("content-type", "image/png"),
            ("cache-control", "max-age=60"),
        ][..],
        &[
            ("content-type", "text/plain"),
            ("cache-control", "max-age=60, no-transform"),
        ][..],
        &[
            ("content-type", "text/plain"),
            ("cache-control", "max-age=60"),
            ("content-length", "10"),
        ][..],
    ] {
        let headers: &'static [(&'static str, &'static str)] =
            Box::leak(headers.to_vec().into_boxed_slice());
        let body = if headers.iter().any(|(n, _)| *n == "content-length") {
            Bytes::from_static(b"0123456789")
        } else {
            big.clone()
        };
        let svc = origin(headers, body.clone(), Arc::default(), Arc::default());
        let layer = CacheLayer::shared(larder::Cache::new());
        for _ in 0..2 {
            let (h, b) = get(&svc, &layer, "/x", Some("gzip, br")).await;
            assert!(h.get("content-encoding").is_none(), "{headers:?}");
            assert_eq!(b, body, "{headers:?}");
            stored(&layer).await;
        }
    }
    // Compression off: the origin's bytes and its Vary, nothing added.
    let svc = origin(
        &[
            ("content-type", "application/json"),
            ("cache-control", "max-age=60"),
        ],
        big.clone(),
        Arc::default(),
        Arc::default(),
    );
    let layer = CacheLayer::shared(larder::Cache::new()).compression(Compression::off());
    let (h, b) = get(&svc, &layer, "/x", Some("gzip")).await;
    assert!(h.get("content-encoding").is_none() && h.get("vary").is_none());
    assert_eq!(b, big);
}

#[tokio::test]
async fn with_compression_off_accept_encoding_spellings_share_one_variant() {
    let calls = Arc::new(AtomicUsize::new(0));
    let svc = origin(
        &[
            ("content-type", "text/plain"),
            ("vary", "accept-encoding"),
            ("cache-control", "max-age=60"),
        ],
        Bytes::from_static(b"plain"),
        calls.clone(),
        Arc::default(),
    );
    let layer = CacheLayer::shared(larder::Cache::new()).compression(Compression::off());
    get(&svc, &layer, "/n", Some("gzip, br")).await;
    stored(&layer).await;
    for ae in ["br, gzip", "gzip;q=1.0, deflate, br", "GZIP, BR"] {
        let (h, _) = get(&svc, &layer, "/n", Some(ae)).await;
        assert_eq!(h["x-cache"], "HIT", "{ae}");
    }
    let (h, _) = get(&svc, &layer, "/n", Some("gzip")).await;
    assert_eq!(h["x-cache"], "MISS", "a different set of codings");
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}
