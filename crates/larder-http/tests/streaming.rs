//! Streaming bodies and coalescing: chunks reach clients as the service produces them, requests
//! arriving meanwhile read the same recording, and only bodies that end cleanly within the cap
//! are stored.

mod feeding;

use std::time::Duration;

use feeding::*;
use larder_http::CacheLayer;

#[tokio::test]
async fn chunks_reach_the_first_client_and_a_joining_client_as_they_are_produced() {
    let feeds = Feeds::default();
    let mut svc = service(
        &CacheLayer::shared(larder::Cache::new()),
        &feeds,
        Duration::ZERO,
    );

    let first = call(&mut svc).await;
    assert_eq!(first.headers()["x-cache"], "MISS");
    let mut first = first.into_body();
    feeds.send(0, "one ");
    assert_eq!(
        next_chunk(&mut first).await.unwrap().unwrap(),
        "one ",
        "before the body has ended"
    );

    let joined = call(&mut svc).await;
    assert_eq!(joined.headers()["x-cache"], "HIT");
    let mut joined = joined.into_body();
    assert_eq!(
        next_chunk(&mut joined).await.unwrap().unwrap(),
        "one ",
        "the recording so far"
    );
    feeds.send(0, "two");
    assert_eq!(next_chunk(&mut first).await.unwrap().unwrap(), "two");
    assert_eq!(
        next_chunk(&mut joined).await.unwrap().unwrap(),
        "two",
        "and then as it grows"
    );
    feeds.end(0);
    assert!(next_chunk(&mut first).await.is_none());
    assert!(next_chunk(&mut joined).await.is_none());

    let stored = call(&mut svc).await;
    assert_eq!(stored.headers()["x-cache"], "HIT");
    assert_eq!(rest(stored.into_body()).await.unwrap(), "one two");
    assert_eq!(feeds.calls(), 1);
}

#[tokio::test]
async fn concurrent_misses_make_one_service_call() {
    let feeds = Feeds::default();
    let svc = service(
        &CacheLayer::shared(larder::Cache::new()),
        &feeds,
        Duration::from_millis(100),
    );
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let mut svc = svc.clone();
            tokio::spawn(async move { rest(call(&mut svc).await.into_body()).await })
        })
        .collect();
    // Wait until the one call has begun, then give it a body.
    while feeds.calls() == 0 {
        tokio::task::yield_now().await;
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    feeds.send(0, "shared body");
    feeds.end(0);
    for c in clients {
        assert_eq!(c.await.unwrap().unwrap(), "shared body");
    }
    assert_eq!(
        feeds.calls(),
        1,
        "50 concurrent misses, one call to the service"
    );
}

#[tokio::test]
async fn a_failing_body_fails_its_readers_and_is_not_stored() {
    let feeds = Feeds::default();
    let mut svc = service(
        &CacheLayer::shared(larder::Cache::new()),
        &feeds,
        Duration::ZERO,
    );
    let first = call(&mut svc).await.into_body();
    let joined = call(&mut svc).await.into_body();
    feeds.send(0, "partial");
    feeds.fail(0);
    let err = rest(first).await.unwrap_err();
    assert!(err.contains("upstream reset"), "{err}");
    assert!(
        rest(joined).await.is_err(),
        "the joined client sees the failure too"
    );

    let again = call(&mut svc).await;
    assert_eq!(again.headers()["x-cache"], "MISS");
    feeds.send(1, "whole");
    feeds.end(1);
    assert_eq!(rest(again.into_body()).await.unwrap(), "whole");
    assert_eq!(feeds.calls(), 2);
}

#[tokio::test]
async fn a_body_past_the_cap_streams_through_whole_but_is_not_stored() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new()).max_body_bytes(8);
    let mut svc = service(&layer, &feeds, Duration::ZERO);
    let first = call(&mut svc).await.into_body();
    let joined = call(&mut svc).await.into_body();
    for c in ["12345", "67890", "abcde"] {
        feeds.send(0, c);
    }
    feeds.end(0);
    // Past the cap the readers move together (at most the cap is buffered for the slowest), so
    // they are read concurrently, as two clients would.
    let (a, b) = tokio::join!(rest(first), rest(joined));
    assert_eq!(a.unwrap(), "1234567890abcde");
    assert_eq!(b.unwrap(), "1234567890abcde");

    let again = call(&mut svc).await;
    assert_eq!(again.headers()["x-cache"], "MISS", "not stored");
    feeds.end(1);
    drop(again);
    assert_eq!(feeds.calls(), 2);
}

#[tokio::test]
async fn a_declared_length_past_the_cap_is_passed_through_unrecorded() {
    let feeds = Feeds::default();
    let layer = CacheLayer::shared(larder::Cache::new()).max_body_bytes(4);
    static HEADERS: &[(&str, &str)] = &[("cache-control", "max-age=60"), ("content-length", "10")];
    let mut svc = tower::Layer::layer(
        &layer,
        feeding_origin(feeds.clone(), Duration::ZERO, HEADERS),
    );
    let first = call(&mut svc).await.into_body();
    feeds.send(0, "0123456789");
    feeds.end(0);
    assert_eq!(rest(first).await.unwrap(), "0123456789");
    let _ = call(&mut svc).await;
    assert_eq!(feeds.calls(), 2);
}

#[tokio::test]
async fn a_client_that_hangs_up_stops_nobody_else_and_the_body_is_still_stored() {
    let feeds = Feeds::default();
    let mut svc = service(
        &CacheLayer::shared(larder::Cache::new()),
        &feeds,
        Duration::ZERO,
    );
    let first = call(&mut svc).await;
    let joined = call(&mut svc).await.into_body();
    feeds.send(0, "a");
    drop(first);
    feeds.send(0, "b");
    feeds.end(0);
    assert_eq!(rest(joined).await.unwrap(), "ab");
    let stored = call(&mut svc).await;
    assert_eq!(stored.headers()["x-cache"], "HIT");
    assert_eq!(rest(stored.into_body()).await.unwrap(), "ab");
    assert_eq!(feeds.calls(), 1);
}

#[tokio::test]
async fn a_leader_cancelled_before_its_response_hands_over_to_the_next_request() {
    let feeds = Feeds::default();
    let svc = service(
        &CacheLayer::shared(larder::Cache::new()),
        &feeds,
        Duration::from_millis(200),
    );
    let mut leader = svc.clone();
    let leader = tokio::spawn(async move { call(&mut leader).await });
    while feeds.calls() == 0 {
        tokio::task::yield_now().await;
    }
    let mut follower = svc.clone();
    let follower = tokio::spawn(async move { rest(call(&mut follower).await.into_body()).await });
    tokio::time::sleep(Duration::from_millis(20)).await;
    leader.abort();
    // The follower becomes the leader of a second call.
    while feeds.calls() < 2 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    feeds.send(1, "second");
    feeds.end(1);
    assert_eq!(follower.await.unwrap().unwrap(), "second");
}

#[tokio::test]
async fn a_response_that_needs_validation_is_not_shared_with_waiting_requests() {
    let feeds = Feeds::default();
    static HEADERS: &[(&str, &str)] = &[("cache-control", "no-cache"), ("etag", "\"v\"")];
    let layer = CacheLayer::shared(larder::Cache::new());
    let mut svc = tower::Layer::layer(
        &layer,
        feeding_origin(feeds.clone(), Duration::ZERO, HEADERS),
    );
    let first = call(&mut svc).await.into_body();
    let mut second_svc = svc.clone();
    let second = tokio::spawn(async move { rest(call(&mut second_svc).await.into_body()).await });
    for _ in 0..400 {
        if feeds.calls() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(feeds.calls(), 2, "the waiting request made its own call");
    feeds.send(0, "first");
    feeds.end(0);
    feeds.send(1, "second");
    feeds.end(1);
    assert_eq!(rest(first).await.unwrap(), "first");
    assert_eq!(
        second.await.unwrap().unwrap(),
        "second",
        "its own call, not the first's body"
    );
}
