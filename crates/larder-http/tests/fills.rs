//! A fill can never hang anyone, and every byte it holds is counted: a stalled body is cut, a
//! missing head times out for the leader and its followers alike, `no-cache` requests never join
//! a fill, recordings stay within their budget and the cache's bound, and a fill nobody reads any
//! more stops downloading.

mod feeding;

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use feeding::*;
use http::{Request, Response};
use http_body_util::BodyExt;
use larder_http::CacheLayer;
use tower::{Service, ServiceExt};

#[tokio::test]
async fn a_stalled_body_is_cut_for_every_reader_and_the_next_request_fetches_afresh() {
    let feeds = Feeds::default();
    let layer =
        CacheLayer::shared(larder::Cache::new()).body_idle_timeout(Duration::from_millis(300));
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    let joined = call(&mut svc).await;
    assert_eq!(joined.headers()["x-cache"], "HIT", "it joined the fill");
    feeds.send(0, Bytes::from_static(b"half a bo"));
    // ...and the origin says no more, but keeps the connection open.
    let started = Instant::now();
    let (a, b) = tokio::join!(rest(first), rest(joined.into_body()));
    let waited = started.elapsed();
    for err in [a.unwrap_err(), b.unwrap_err()] {
        assert!(err.contains("stalled"), "{err}");
    }
    assert!(
        waited < Duration::from_secs(3),
        "cut after the idle timeout, not when the origin gives up ({waited:?})"
    );
    let purger = layer.purger();
    assert_eq!(purger.stats().fills_stalled, 1);
    assert_eq!(purger.fetches_in_flight(), 0, "the key is free again");

    let again = call(&mut svc).await;
    assert_eq!(again.headers()["x-cache"], "MISS", "nothing was stored");
    feeds.send(1, Bytes::from_static(b"whole"));
    feeds.end(1);
    assert_eq!(rest(again.into_body()).await.unwrap(), "whole");
    assert_eq!(feeds.calls(), 2);
}

/// A `no-cache` request never joins a fill that began before it arrived: it waits for that
/// one to end and shares the next (which began after it), so reloads cost one call per fill.
#[tokio::test]
async fn a_no_cache_request_never_joins_a_fill_that_began_before_it() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new());
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    let mut reloads = Vec::new();
    for no_cache in [
        &[("cache-control", "no-cache")][..],
        &[("pragma", "no-cache")][..],
    ] {
        let mut svc = svc.clone();
        reloads.push(tokio::spawn(
            async move { call_with(&mut svc, no_cache).await },
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        feeds.calls(),
        1,
        "the reloads wait for the fill in flight to end"
    );
    assert!(reloads.iter().all(|r| !r.is_finished()));
    feeds.send(0, Bytes::from_static(b"body 0"));
    feeds.end(0);
    assert_eq!(rest(first).await.unwrap(), "body 0");
    for _ in 0..200 {
        if feeds.calls() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    feeds.send(1, Bytes::from_static(b"body 1"));
    feeds.end(1);
    for reload in reloads {
        let own = reload.await.unwrap();
        assert_eq!(
            rest(own.into_body()).await.unwrap(),
            "body 1",
            "made after it arrived"
        );
    }
    assert_eq!(feeds.calls(), 2, "the two reloads shared one call");
}

#[tokio::test]
async fn a_missing_head_times_out_for_the_leader_and_everyone_waiting_on_it() {
    let feeds = Feeds::default();
    let layer =
        CacheLayer::shared(larder::Cache::new()).response_timeout(Duration::from_millis(300));
    let svc = service(&layer, &feeds, Duration::from_secs(3600));
    let started = Instant::now();
    let waiting: Vec<_> = (0..5)
        .map(|_| {
            let mut svc = svc.clone();
            tokio::spawn(async move { call(&mut svc).await.status() })
        })
        .collect();
    for w in waiting {
        assert_eq!(w.await.unwrap(), 504);
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    assert_eq!(feeds.calls(), 1, "the followers gave up with the leader");
    assert_eq!(layer.purger().stats().response_timeouts, 1);
}

#[tokio::test]
async fn past_the_recording_budget_a_fill_streams_unrecorded() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new()).recording_budget(10);
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    feeds.send(0, Bytes::from_static(b"0123456789"));
    feeds.send(0, Bytes::from_static(b"abcdef"));
    feeds.end(0);
    assert_eq!(rest(first).await.unwrap(), "0123456789abcdef");
    let stats = layer.purger().stats();
    assert_eq!((stats.fills, stats.fills_unrecorded), (1, 1));
    assert_eq!(
        stats.recording_bytes, 0,
        "everything it held was given back"
    );
    let again = call(&mut svc).await;
    assert_eq!(again.headers()["x-cache"], "MISS", "not stored");
}

#[tokio::test]
async fn recordings_share_the_caches_byte_bound_with_its_entries() {
    let feeds = Feeds::default();
    let cache = larder::Cache::builder().max_bytes(1 << 20).build();
    let layer = CacheLayer::shared(cache.clone());
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    feeds.send(0, Bytes::from(vec![b'x'; 100_000]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.stats().reserved_bytes, 100_000, "held while recorded");
    assert_eq!(layer.purger().stats().recording_bytes, 100_000);
    // Past half the bound, it stops keeping the body and only streams it.
    feeds.send(0, Bytes::from(vec![b'y'; 500_000]));
    feeds.end(0);
    assert_eq!(rest(first).await.unwrap().len(), 600_000);
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(cache.stats().reserved_bytes, 0);
    assert_eq!(layer.purger().stats().fills_unrecorded, 1);
    assert_eq!(
        call(&mut svc).await.headers()["x-cache"],
        "MISS",
        "not stored"
    );
}

#[tokio::test]
async fn a_large_fill_whose_clients_all_left_stops_downloading() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new()).finish_unread_below(1000);
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await;
    drop(first);
    feeds.send(0, Bytes::from(vec![b'x'; 2000]));
    for _ in 0..200 {
        if feeds.dropped(0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(feeds.dropped(0), "the layer let go of the origin's body");
    assert_eq!(layer.purger().stats().fills_abandoned, 1);
    assert_eq!(call(&mut svc).await.headers()["x-cache"], "MISS");
}

#[tokio::test]
async fn a_small_fill_whose_clients_all_left_is_finished_and_stored() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new()).finish_unread_below(1000);
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    drop(call(&mut svc).await);
    feeds.send(0, Bytes::from_static(b"small"));
    feeds.end(0);
    for _ in 0..200 {
        if layer.purger().fetches_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let stored = call(&mut svc).await;
    assert_eq!(stored.headers()["x-cache"], "HIT");
    assert_eq!(rest(stored.into_body()).await.unwrap(), "small");
    assert_eq!(feeds.calls(), 1);
}

/// The layer on an executor that is not tokio: it passes requests by, uncached, rather than
/// panic in `tokio::spawn`.
#[test]
fn outside_a_tokio_runtime_the_layer_steps_aside() {
    let layer = CacheLayer::shared(larder::Cache::new());
    let origin = tower::service_fn(|_req: Request<String>| async {
        Ok::<_, Infallible>(
            Response::builder()
                .header("cache-control", "max-age=60")
                .body(http_body_util::Full::new(Bytes::from_static(b"hi")))
                .unwrap(),
        )
    });
    let mut svc = tower::Layer::layer(&layer, origin);
    futures::executor::block_on(async {
        for _ in 0..2 {
            let resp = svc
                .ready()
                .await
                .unwrap()
                .call(Request::get("http://a.test/").body(String::new()).unwrap())
                .await
                .unwrap();
            assert_eq!(resp.headers()["x-cache"], "BYPASS");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            assert_eq!(body, "hi");
        }
    });
}

/// HTTP fills count in the cache's own stats, as `get_or_fetch` does: one factory run per fill,
/// the requests that shared it as coalesced waiters, a failed origin as a factory error, and a
/// stale copy served in its place as stale served.
#[tokio::test]
async fn fills_count_in_the_caches_own_stats() {
    let feeds = Feeds::default();
    let cache = larder::Cache::new();
    let layer = CacheLayer::shared(cache.clone());
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    let mut joined = Vec::new();
    for _ in 0..4 {
        joined.push(call(&mut svc).await.into_body());
    }
    feeds.send(0, Bytes::from_static(b"shared"));
    feeds.end(0);
    assert_eq!(rest(first).await.unwrap(), "shared");
    for j in joined {
        assert_eq!(rest(j).await.unwrap(), "shared");
    }
    let stats = cache.stats();
    assert_eq!(stats.factory_runs, 1);
    assert_eq!(stats.coalesced_waiters, 4);
    assert_eq!(stats.factory_errors, 0);

    // A failing origin behind a stale-if-error copy.
    let cache = larder::Cache::new();
    let layer = CacheLayer::shared(cache.clone());
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = calls.clone();
    let origin = tower::service_fn(move |_req: Request<axum::body::Body>| {
        let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            let (status, cc) = if n == 0 {
                (200, "max-age=0, stale-if-error=600")
            } else {
                (503, "no-store")
            };
            Ok::<_, Infallible>(
                Response::builder()
                    .status(status)
                    .header("cache-control", cc)
                    .header("etag", "\"v1\"")
                    .body(axum::body::Body::from("v"))
                    .unwrap(),
            )
        }
    });
    let mut svc = tower::Layer::layer(&layer, origin);
    // The third request gets the stale copy without asking (the core's fail-safe throttle).
    for expect in ["MISS", "STALE", "STALE"] {
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(
                Request::get("http://s.test/r")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.headers()["x-cache"], expect);
        let _ = resp.into_body().collect().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = cache.stats();
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(stats.factory_runs, 2);
    assert_eq!(stats.factory_errors, 1);
    assert_eq!(stats.stale_served, 2);
}

/// Hit-for-pass: once a URL's response proved unstorable, the next concurrent requests for it go
/// to the origin together instead of queueing behind one another's response heads.
#[tokio::test]
async fn after_an_unstorable_response_requests_do_not_queue_behind_each_other() {
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(0));
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (g, c) = (gate.clone(), calls.clone());
    let origin = tower::service_fn(move |_req: Request<axum::body::Body>| {
        let (g, c) = (g.clone(), c.clone());
        async move {
            let n = c.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            if n > 0 {
                // Every call after the first waits for the test to open the gate.
                g.acquire().await.unwrap().forget();
            }
            Ok::<_, Infallible>(
                Response::builder()
                    .header("cache-control", "no-store")
                    .body(axum::body::Body::from("private"))
                    .unwrap(),
            )
        }
    });
    let layer = CacheLayer::shared(larder::Cache::new());
    let svc = tower::Layer::layer(&layer, origin);
    let get = |mut svc: larder_http::CacheService<_>| async move {
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(
                Request::get("http://s.test/me")
                    .body(axum::body::Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        resp.into_body().collect().await.unwrap().to_bytes()
    };
    assert_eq!(get(svc.clone()).await, "private");
    let waiting: Vec<_> = (0..5).map(|_| tokio::spawn(get(svc.clone()))).collect();
    // All five reach the origin while it holds them; without hit-for-pass four would wait for the
    // first one's head and this would never happen.
    tokio::time::timeout(Duration::from_secs(5), async {
        while calls.load(std::sync::atomic::Ordering::SeqCst) < 6 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("all five requests at the origin at once");
    gate.add_permits(5);
    for w in waiting {
        assert_eq!(w.await.unwrap(), "private");
    }
}

/// A purge, made however a test likes, awaited before the fill goes on.
type Purge = Box<dyn Fn() -> futures::future::BoxFuture<'static, ()>>;

/// A purge while a response is being recorded: the recording still reaches its readers, but is
/// not stored, and requests after the purge fetch afresh rather than follow it. By URL and by
/// tag in this process, and from another process sharing Redis (through the backplane): the
/// fill is a flight of the core's, superseded like any fetch.
#[tokio::test]
async fn a_purge_during_a_fill_keeps_it_from_being_stored() {
    let tagged: &'static [(&str, &str)] =
        &[("cache-control", "max-age=60"), ("surrogate-key", "t1")];
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    let cache = |name: &str| {
        larder::Cache::builder()
            .name(name)
            .remote_url(&redis.url())
            .unwrap()
            .build()
    };
    let (here, there) = (cache("here"), cache("there"));
    for c in [&here, &there] {
        assert!(c.backplane_ready(Duration::from_secs(5)).await);
    }
    let layer = CacheLayer::shared(here);
    let elsewhere = CacheLayer::shared(there).purger();
    let purger = layer.purger();
    let purges: [(&str, Purge); 3] = [
        ("url", {
            let p = purger.clone();
            Box::new(move || {
                let p = p.clone();
                Box::pin(async move { drop(p.purge_url("http://s.test/stream").await) })
            })
        }),
        ("tag", {
            let p = purger.clone();
            Box::new(move || {
                let p = p.clone();
                Box::pin(async move { p.purge_tag("t1").await })
            })
        }),
        ("another process", {
            let p = elsewhere.clone();
            Box::new(move || {
                let p = p.clone();
                Box::pin(async move {
                    drop(p.purge_url("http://s.test/stream").await);
                    // The backplane's message is applied here within milliseconds.
                    tokio::time::sleep(Duration::from_millis(300)).await;
                })
            })
        }),
    ];
    let feeds = Feeds::default();
    let mut svc = tower::Layer::layer(
        &layer,
        feeding_origin(feeds.clone(), Duration::ZERO, tagged),
    );
    for (call, (how, purge)) in purges.iter().enumerate() {
        let first = call_with(&mut svc, &[]).await;
        assert_eq!(first.headers()["x-cache"], "MISS", "{how}");
        feeds.send(2 * call, Bytes::from_static(b"before "));
        purge().await;
        // After the purge, a request does not follow the fill that began before it.
        let after = call_with(&mut svc, &[]).await;
        assert_eq!(
            after.headers()["x-cache"],
            "MISS",
            "{how}: a fill of its own"
        );
        feeds.send(2 * call, Bytes::from_static(b"the purge"));
        feeds.end(2 * call);
        assert_eq!(
            rest(first.into_body()).await.unwrap(),
            "before the purge",
            "{how}"
        );
        feeds.send(2 * call + 1, Bytes::from_static(b"after"));
        feeds.end(2 * call + 1);
        assert_eq!(rest(after.into_body()).await.unwrap(), "after", "{how}");
        for _ in 0..200 {
            if purger.fetches_in_flight() == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // What is stored is the fill that began after the purge.
        let stored = call_with(&mut svc, &[]).await;
        assert_eq!(stored.headers()["x-cache"], "HIT", "{how}");
        assert_eq!(rest(stored.into_body()).await.unwrap(), "after", "{how}");
        purger.purge_all().await;
    }
    assert_eq!(feeds.calls(), 6);
}
