//! POSTs keyed on their body (`Rule::key_body`, `CacheLayer::key_bodies`): one origin call per
//! body, never for credentials or preconditions, bounded by size and by the recording budget,
//! coalesced like GETs, and purged with their URL.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use larder_http::{CacheLayer, Rule};
use tower::{Layer, ServiceExt};

/// What the origin got: each request's method, path and body.
#[derive(Clone, Default)]
struct Seen(Arc<Mutex<Vec<(String, String, Bytes)>>>);

impl Seen {
    fn count(&self) -> usize {
        self.0.lock().unwrap().len()
    }
    fn last_body(&self) -> Bytes {
        self.0.lock().unwrap().last().unwrap().2.clone()
    }
}

type Origin = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// An origin that reads the whole body and answers `call N: <body>`, after `delay`.
fn origin(seen: Seen, delay: Duration) -> Origin {
    let calls = Arc::new(AtomicUsize::new(0));
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req: Request<Body>| {
        let (seen, calls) = (seen.clone(), calls.clone());
        async move {
            let (parts, body) = req.into_parts();
            let body = axum::body::to_bytes(body, usize::MAX).await.unwrap();
            let n = calls.fetch_add(1, Ordering::SeqCst);
            seen.0.lock().unwrap().push((
                parts.method.to_string(),
                parts.uri.path().to_owned(),
                body.clone(),
            ));
            tokio::time::sleep(delay).await;
            let text = format!("call {n}: {}", String::from_utf8_lossy(&body));
            Ok::<_, Infallible>(Response::new(Body::from(text)))
        }
    }))
}

fn search_rule(max: usize) -> Rule {
    Rule::path("/search")
        .unwrap()
        .ttl(Duration::from_secs(60))
        .key_body(max)
        .vary([http::HeaderName::from_static("x-tenant")])
}

fn layer() -> CacheLayer {
    CacheLayer::shared(larder::Cache::new()).rules([search_rule(1024)])
}

struct Got {
    status: StatusCode,
    headers: HeaderMap,
    body: Bytes,
}

impl Got {
    fn cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .map_or("", |v| v.to_str().unwrap())
    }
    fn status_detail(&self) -> &str {
        self.headers
            .get("cache-status")
            .map_or("", |v| v.to_str().unwrap())
    }
    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

fn post(path: &str, body: &'static str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b =
        Request::post(format!("http://api.test{path}")).header("content-length", body.len());
    if !headers.iter().any(|(n, _)| *n == "content-type") {
        b = b.header("content-type", "application/json");
    }
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Body::from(body)).unwrap()
}

/// The layer that reads bodies in front of `origin`, with its purger (to wait for stores).
#[derive(Clone)]
struct Keyed {
    svc: larder_http::KeyBodies<Origin>,
    purger: larder_http::Purger,
}

fn keyed(cache: CacheLayer, origin: Origin) -> Keyed {
    Keyed {
        purger: cache.purger(),
        svc: cache.key_bodies().layer(origin),
    }
}

async fn send(keyed: &Keyed, req: Request<Body>) -> Got {
    let resp = keyed.svc.clone().oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .unwrap();
    // Let the recording's task store the body before the next request, however busy the
    // machine: the fill is done when no fetch is in flight.
    for _ in 0..500 {
        tokio::task::yield_now().await;
        if keyed.purger.fetches_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[tokio::test]
async fn a_post_is_answered_from_the_cache_for_the_same_body_only() {
    let seen = Seen::default();
    let svc = keyed(layer(), origin(seen.clone(), Duration::ZERO));

    let first = send(&svc, post("/search", r#"{"q":"rust"}"#, &[])).await;
    assert_eq!((first.status, first.cache()), (StatusCode::OK, "MISS"));
    assert_eq!(
        seen.last_body(),
        r#"{"q":"rust"}"#,
        "the origin gets the body"
    );
    let again = send(&svc, post("/search", r#"{"q":"rust"}"#, &[])).await;
    assert_eq!(again.cache(), "HIT");
    assert_eq!(again.text(), first.text());

    let other = send(&svc, post("/search", r#"{"q":"go"}"#, &[])).await;
    assert_eq!(other.cache(), "MISS");
    assert_eq!(other.text(), r#"call 1: {"q":"go"}"#);
    // The same bytes as another type, or for another tenant (the rule's vary), are another
    // question.
    let form = send(
        &svc,
        post(
            "/search",
            r#"{"q":"rust"}"#,
            &[("content-type", "text/plain")],
        ),
    )
    .await;
    assert_eq!(form.cache(), "MISS");
    let tenant = send(
        &svc,
        post("/search", r#"{"q":"rust"}"#, &[("x-tenant", "b")]),
    )
    .await;
    assert_eq!(tenant.cache(), "MISS");
    // Two Content-Type lines are not the first alone: an app may read either.
    let two_types = send(
        &svc,
        post(
            "/search",
            r#"{"q":"rust"}"#,
            &[
                ("content-type", "application/json"),
                ("content-type", "text/plain"),
            ],
        ),
    )
    .await;
    assert_eq!(two_types.cache(), "MISS");
    assert_eq!(seen.count(), 5);
}

#[tokio::test]
async fn a_get_and_a_post_of_one_url_never_answer_each_other() {
    let seen = Seen::default();
    let svc = keyed(layer(), origin(seen.clone(), Duration::ZERO));
    let get = Request::get("http://api.test/search")
        .body(Body::empty())
        .unwrap();
    let g = send(&svc, get).await;
    assert_eq!((g.cache(), g.text()), ("MISS", "call 0: "));
    let p = send(&svc, post("/search", "", &[])).await;
    assert_eq!(p.cache(), "MISS", "an empty POST is not the GET");
    let get = Request::get("http://api.test/search")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&svc, get).await.text(), "call 0: ");
    assert_eq!(seen.count(), 2);
}

#[tokio::test]
async fn credentials_preconditions_and_unsized_or_large_bodies_pass_uncached_and_whole() {
    let seen = Seen::default();
    let svc = keyed(layer(), origin(seen.clone(), Duration::ZERO));
    for (headers, detail) in [
        (&[("authorization", "Bearer x")][..], "authorization"),
        (&[("cookie", "session=1")][..], "cookie"),
        (&[("if-none-match", "\"v1\"")][..], "conditional"),
    ] {
        for _ in 0..2 {
            let got = send(&svc, post("/search", "q", headers)).await;
            assert_eq!(got.cache(), "BYPASS", "{headers:?}");
            assert!(
                got.status_detail().contains(&format!("detail={detail}")),
                "{}",
                got.status_detail()
            );
        }
    }
    assert_eq!(seen.count(), 6, "each went to the origin");

    let big: &'static str = "x".repeat(2000).leak();
    for _ in 0..2 {
        let got = send(&svc, post("/search", big, &[])).await;
        assert!(got.status_detail().contains("detail=body-too-large"));
        assert_eq!(seen.last_body().len(), 2000, "passed on whole");
    }
    // A streamed body of unknown length is never buffered.
    let chunks = futures::stream::iter([Ok::<_, Infallible>(Bytes::from_static(b"ab"))]);
    let unsized_req = Request::post("http://api.test/search")
        .body(Body::from_stream(chunks))
        .unwrap();
    let got = send(&svc, unsized_req).await;
    assert!(got.status_detail().contains("detail=body-unsized"));
    assert_eq!(seen.last_body(), "ab");
    assert_eq!(seen.count(), 9);
}

#[tokio::test]
async fn concurrent_posts_of_one_body_make_one_call() {
    let seen = Seen::default();
    let svc = keyed(layer(), origin(seen.clone(), Duration::from_millis(200)));
    let asks = (0..20).map(|_| {
        let svc = svc.clone();
        tokio::spawn(async move { send(&svc, post("/search", "same", &[])).await })
    });
    let answers = futures::future::join_all(asks).await;
    for a in answers {
        assert_eq!(a.unwrap().text(), "call 0: same");
    }
    assert_eq!(seen.count(), 1);
}

#[tokio::test]
async fn purging_or_writing_to_the_url_drops_its_posts() {
    let seen = Seen::default();
    let cache = layer().rules([
        search_rule(1024),
        Rule::path("/search").unwrap().methods([http::Method::PUT]),
    ]);
    let svc = keyed(cache, origin(seen.clone(), Duration::ZERO));
    send(&svc, post("/search", "a", &[])).await;
    assert_eq!(send(&svc, post("/search", "a", &[])).await.cache(), "HIT");
    svc.purger
        .purge_url("http://api.test/search")
        .await
        .unwrap();
    assert_eq!(send(&svc, post("/search", "a", &[])).await.cache(), "MISS");
    assert_eq!(send(&svc, post("/search", "a", &[])).await.cache(), "HIT");
    let put = Request::put("http://api.test/search")
        .body(Body::empty())
        .unwrap();
    assert_eq!(send(&svc, put).await.status, StatusCode::OK);
    assert_eq!(
        send(&svc, post("/search", "a", &[])).await.cache(),
        "MISS",
        "a write to the URL invalidates the answers to its POSTs (RFC 9111 §4.4)"
    );
}

#[tokio::test]
async fn bodies_held_for_keys_share_the_recording_budget_and_give_it_back() {
    let seen = Seen::default();
    let cache = larder::Cache::new();
    let svc = keyed(
        CacheLayer::shared(cache.clone())
            .rules([search_rule(1024)])
            .recording_budget(4),
        origin(seen.clone(), Duration::ZERO),
    );
    let got = send(&svc, post("/search", "too long", &[])).await;
    assert!(got.status_detail().contains("detail=no-room"));
    assert_eq!(seen.last_body(), "too long");

    let roomy = keyed(
        CacheLayer::shared(cache.clone()).rules([search_rule(1024)]),
        origin(seen.clone(), Duration::ZERO),
    );
    send(&roomy, post("/search", "fits", &[])).await;
    assert_eq!(
        send(&roomy, post("/search", "fits", &[])).await.cache(),
        "HIT"
    );
    let mut reserved = u64::MAX;
    for _ in 0..100 {
        reserved = cache.stats().reserved_bytes;
        if reserved == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(reserved, 0, "every body held was given back");
}

#[tokio::test]
async fn a_body_that_stalls_or_lies_about_its_length_is_refused_not_sent_on() {
    let seen = Seen::default();
    let svc = keyed(
        layer().body_idle_timeout(Duration::from_millis(100)),
        origin(seen.clone(), Duration::ZERO),
    );
    // Declares 10 bytes, sends 2, then nothing.
    let (tx, rx) = futures::channel::mpsc::channel::<Result<Bytes, Infallible>>(1);
    let mut tx = tx;
    tx.try_send(Ok(Bytes::from_static(b"ab"))).unwrap();
    let stalled = Request::post("http://api.test/search")
        .header("content-length", "10")
        .body(Body::from_stream(rx))
        .unwrap();
    // Bounded: were the body passed on, the origin would wait on it for ever.
    let got = tokio::time::timeout(Duration::from_secs(30), send(&svc, stalled))
        .await
        .expect("a stalled body is answered at the idle timeout");
    assert_eq!(got.status, StatusCode::REQUEST_TIMEOUT);
    assert!(got.status_detail().contains("detail=body-stalled"));
    drop(tx);

    let short = Request::post("http://api.test/search")
        .header("content-length", "10")
        .body(Body::from("ab"))
        .unwrap();
    assert_eq!(send(&svc, short).await.status, StatusCode::BAD_REQUEST);
    let long = Request::post("http://api.test/search")
        .header("content-length", "1")
        .body(Body::from("ab"))
        .unwrap();
    assert_eq!(send(&svc, long).await.status, StatusCode::BAD_REQUEST);
    assert_eq!(seen.count(), 0, "nothing half-read reached the origin");
}

#[tokio::test]
async fn without_key_bodies_a_keyed_post_passes_whole_and_says_why() {
    let seen = Seen::default();
    let svc = layer().layer(origin(seen.clone(), Duration::ZERO));
    for _ in 0..2 {
        let resp = svc
            .clone()
            .oneshot(post("/search", "q", &[]))
            .await
            .unwrap();
        let detail = resp.headers()["cache-status"].to_str().unwrap().to_owned();
        assert!(detail.contains("detail=body-unread"), "{detail}");
    }
    assert_eq!((seen.count(), seen.last_body()), (2, Bytes::from("q")));
}

#[tokio::test]
async fn a_post_no_key_body_rule_covers_is_still_a_write() {
    let seen = Seen::default();
    let cache = CacheLayer::shared(larder::Cache::new()).rules([
        search_rule(1024),
        Rule::path("/items").unwrap().ttl(Duration::from_secs(60)),
    ]);
    let svc = keyed(cache, origin(seen.clone(), Duration::ZERO));
    let get = || {
        Request::get("http://api.test/items")
            .body(Body::empty())
            .unwrap()
    };
    send(&svc, get()).await;
    assert_eq!(send(&svc, get()).await.cache(), "HIT");
    let written = send(&svc, post("/items", "new", &[])).await;
    assert_eq!(written.cache(), "BYPASS");
    assert_eq!(
        send(&svc, get()).await.cache(),
        "MISS",
        "the POST invalidated it"
    );
}
