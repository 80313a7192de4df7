//! The layer on shared stores, really started: two app instances (two caches, two layers) in
//! front of one redis-server or memcached share responses, variants and purges.

mod common;

use std::time::Duration;

use common::*;
use larder::Cache;
use larder_http::CacheLayer;
use larder_testkit::{MemcachedServer, RedisServer};

fn counting(req: &http::Request<axum::body::Body>, n: usize) -> http::Response<axum::body::Body> {
    let accept = req
        .headers()
        .get("accept")
        .map_or("-", |v| v.to_str().unwrap())
        .to_owned();
    reply(
        200,
        &[
            ("cache-control", "max-age=60"),
            ("vary", "accept"),
            ("surrogate-key", "t1"),
            ("etag", "\"e\""),
        ],
        &format!("{accept}:{n}:{}", "x".repeat(10_000)),
    )
}

/// Two instances on `url`: the first stores, the second serves it from the store; a purge on one
/// is seen by the other. Remote-only caches, so no memory tier hides what the store holds
/// (keeping memory tiers coherent across instances is the backplane's job).
async fn two_instances_share(url: &str) {
    let instance = |url: &str| {
        let cache = Cache::builder()
            .memory(false)
            .remote_url(url)
            .unwrap()
            .build();
        CacheLayer::shared(cache)
    };
    let mut a = harness(instance(url), counting);
    let mut b = harness(instance(url), counting);

    let first = a.send(get("http://s.test/r", &[("accept", "json")])).await;
    assert_eq!(first.cache(), "MISS");
    let shared = b.send(get("http://s.test/r", &[("accept", "json")])).await;
    assert_eq!(
        (shared.cache(), shared.body.len()),
        ("HIT", first.body.len())
    );
    assert!(shared.text().starts_with("json:0:"));
    let other_variant = b.send(get("http://s.test/r", &[("accept", "csv")])).await;
    assert_eq!(other_variant.cache(), "MISS");
    assert_eq!(
        a.send(get("http://s.test/r", &[("accept", "csv")]))
            .await
            .cache(),
        "HIT"
    );
    let nm = a
        .send(get(
            "http://s.test/r",
            &[("accept", "json"), ("if-none-match", "\"e\"")],
        ))
        .await;
    assert_eq!(nm.status, 304);

    assert!(a.purger.purge_url("http://s.test/r").await.unwrap());
    assert_eq!(
        b.send(get("http://s.test/r", &[("accept", "json")]))
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(
        a.send(get("http://s.test/r", &[("accept", "json")]))
            .await
            .cache(),
        "HIT"
    );
    b.purger.purge_tag("t1").await;
    assert_eq!(
        a.send(get("http://s.test/r", &[("accept", "json")]))
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(a.seen.count() + b.seen.count(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_responses_through_redis() {
    let redis = RedisServer::start().expect("redis-server");
    two_instances_share(&redis.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_responses_through_memcached() {
    let memcached = MemcachedServer::start().expect("memcached");
    two_instances_share(&memcached.url()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_outage_degrades_to_calling_the_service() {
    let mut redis = RedisServer::start().expect("redis-server");
    let cache = Cache::builder()
        .remote_url(&redis.url())
        .unwrap()
        .store_timeout(Duration::from_millis(200))
        .build();
    // Coherent before the first request: the backplane's first subscription drops memory.
    assert!(cache.backplane_ready(Duration::from_secs(10)).await);
    let mut h = harness(CacheLayer::shared(cache), |_, n| {
        reply(200, &[("cache-control", "max-age=60")], &format!("v{n}"))
    });
    h.get("/a").await;
    redis.kill();
    // The memory tier still answers, and a new key still reaches the service.
    assert_eq!(h.get("/a").await.cache(), "HIT");
    let b = h.get("/b").await;
    assert_eq!((b.status.as_u16(), b.cache()), (200, "MISS"));
}
