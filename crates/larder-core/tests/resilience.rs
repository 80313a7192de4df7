//! Fail-safe, soft and hard timeouts, and eager refresh.
//!
//! Expiry runs on the real (coarse, ~4 ms) clock, so entries here live for tens of milliseconds
//! and the tests sleep past them with a wide margin.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use larder::{Cache, EntryOptions, FetchError};

const TTL: Duration = Duration::from_millis(60);
const PAST_TTL: Duration = Duration::from_millis(150);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

async fn prime(cache: &Cache, opts: &EntryOptions, value: &str) {
    let value = value.to_owned();
    cache
        .get_or_fetch_with(
            "k",
            opts.clone(),
            move || async move { Ok::<_, String>(value) },
        )
        .await
        .unwrap();
}

/// `get_or_fetch` of "k" with a factory that fails.
async fn fetch_failing(
    cache: &Cache,
    opts: EntryOptions,
) -> Result<Arc<String>, FetchError<String>> {
    cache
        .get_or_fetch_with("k", opts, || async { Err("down".to_string()) })
        .await
}

#[tokio::test]
async fn fail_safe_serves_the_stale_value_when_the_factory_fails() {
    let cache = Cache::new();
    // No throttle: the very next call tries the source again.
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .fail_safe_throttle(Duration::ZERO);
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    assert!(
        cache.get::<String>("k").await.unwrap().is_none(),
        "get returns fresh values only"
    );

    let v = fetch_failing(&cache, opts.clone()).await.unwrap();
    assert_eq!(*v, "old");
    let stats = cache.stats();
    assert_eq!(stats.stale_served, 1);
    assert_eq!(stats.factory_errors, 1);

    // When the source comes back, the fresh value replaces the stale one.
    let v = cache
        .get_or_fetch_with("k", opts, || async { Ok::<_, String>("new".to_string()) })
        .await
        .unwrap();
    assert_eq!(*v, "new");
}

/// A factory for "k" that counts its runs and answers `value`.
fn counted(
    runs: &Arc<AtomicUsize>,
    value: &'static str,
) -> impl FnOnce() -> std::future::Ready<Result<String, String>> + Send + 'static {
    let runs = runs.clone();
    move || {
        runs.fetch_add(1, Ordering::SeqCst);
        std::future::ready(Ok(value.to_string()))
    }
}

#[tokio::test]
async fn after_a_failure_the_stale_value_is_served_without_calling_the_source_for_the_throttle() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .fail_safe_throttle(ms(300));
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(*fetch_failing(&cache, opts.clone()).await.unwrap(), "old");

    // Inside the throttle the source is not called again, even though it has recovered.
    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..5 {
        let v = cache
            .get_or_fetch_with("k", opts.clone(), counted(&runs, "new"))
            .await
            .unwrap();
        assert_eq!(*v, "old");
    }
    assert_eq!(
        cache
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("old")
    );
    assert_eq!(
        runs.load(Ordering::SeqCst),
        0,
        "no call to the source inside the throttle"
    );
    let stats = cache.stats();
    assert_eq!(
        stats.stale_served,
        1 + 5 + 1,
        "every answer from the stale value is counted"
    );
    assert_eq!(stats.factory_runs, 2, "prime and the failed call");

    // After it, one call retries the source and its fresh value replaces the stale one.
    tokio::time::sleep(ms(400)).await;
    let v = cache
        .get_or_fetch_with("k", opts.clone(), counted(&runs, "new"))
        .await
        .unwrap();
    assert_eq!(*v, "new");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn a_write_of_the_key_ends_the_throttle() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .fail_safe_throttle(Duration::from_secs(60));
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(*fetch_failing(&cache, opts.clone()).await.unwrap(), "old");
    // A newer value is written, and goes stale in turn, well inside the 60 s throttle: the
    // throttle named the old value, so the source is asked for the new one.
    cache
        .set_with("k", "written".to_string(), opts.clone())
        .await
        .unwrap();
    tokio::time::sleep(PAST_TTL).await;
    let runs = Arc::new(AtomicUsize::new(0));
    let v = cache
        .get_or_fetch_with("k", opts.clone(), counted(&runs, "new"))
        .await
        .unwrap();
    assert_eq!((v.as_str(), runs.load(Ordering::SeqCst)), ("new", 1));
}

#[tokio::test]
async fn a_stand_in_marked_by_another_surface_is_asked_of_the_same_map() {
    // larder-http marks the stale response that answered a failing origin through the engine;
    // the mark names that very value and lasts its period.
    let cache = Cache::new();
    let stale = Arc::new("stale page".to_string());
    assert!(!larder::engine::standing_in(&cache, "/p", &stale));
    larder::engine::stood_in(&cache, "/p", &stale, ms(2_000));
    assert!(larder::engine::standing_in(&cache, "/p", &stale));
    assert!(!larder::engine::standing_in(
        &cache.namespace("other"),
        "/p",
        &stale
    ));
    assert!(!larder::engine::standing_in(
        &cache,
        "/p",
        &Arc::new("stale page".to_string())
    ));
    tokio::time::sleep(ms(2_100)).await;
    assert!(!larder::engine::standing_in(&cache, "/p", &stale));
}

#[tokio::test]
async fn a_zero_throttle_calls_the_source_on_every_request() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .fail_safe_throttle(Duration::ZERO);
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    for _ in 0..3 {
        assert_eq!(*fetch_failing(&cache, opts.clone()).await.unwrap(), "old");
    }
    assert_eq!(cache.stats().factory_errors, 3);
    assert!(
        cache.get::<String>("k").await.unwrap().is_none(),
        "still stale, not fresh"
    );
}

#[tokio::test]
async fn the_throttle_never_outlives_the_stale_window() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(ms(200))
        .fail_safe_throttle(Duration::from_secs(60));
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(*fetch_failing(&cache, opts.clone()).await.unwrap(), "old");
    // ttl + stale = 260 ms after priming; the 60 s throttle ends with it.
    tokio::time::sleep(ms(250)).await;
    assert!(matches!(
        fetch_failing(&cache, opts).await,
        Err(FetchError::Factory(_))
    ));
}

#[tokio::test]
async fn a_throttled_value_still_obeys_tag_invalidation() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .tags(["t"]);
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    assert_eq!(*fetch_failing(&cache, opts.clone()).await.unwrap(), "old");
    assert!(cache.contains("k").await, "throttled: served as fresh");
    cache.invalidate_tag("t").await;
    assert!(
        !cache.contains("k").await,
        "a tag invalidation still removes it"
    );
    assert!(fetch_failing(&cache, opts).await.is_err());
}

#[tokio::test]
async fn without_a_stale_window_the_error_comes_through() {
    let cache = Cache::new();
    let opts = EntryOptions::new().ttl(TTL);
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    let err = fetch_failing(&cache, opts).await.unwrap_err();
    assert!(matches!(err, FetchError::Factory(_)));
}

#[tokio::test]
async fn past_the_stale_window_the_entry_is_gone() {
    let cache = Cache::new();
    let opts = EntryOptions::new().ttl(ms(30)).stale(ms(30));
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(ms(150)).await;
    let err = fetch_failing(&cache, opts).await.unwrap_err();
    assert!(matches!(err, FetchError::Factory(_)));
}

#[tokio::test]
async fn hard_timeout_without_stale_is_a_timeout_error() {
    let cache = Cache::new();
    let started = Instant::now();
    let err = cache
        .get_or_fetch_with::<u8, std::io::Error, _, _>(
            "slow",
            EntryOptions::new().hard_timeout(ms(50)),
            || async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(1)
            },
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, FetchError::Timeout(d) if d == ms(50)),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(cache.stats().factory_errors, 1);
}

#[tokio::test]
async fn hard_timeout_with_stale_serves_stale() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(TTL)
        .stale(Duration::from_secs(60))
        .hard_timeout(ms(50));
    prime(&cache, &opts, "old").await;
    tokio::time::sleep(PAST_TTL).await;
    let v = cache
        .get_or_fetch_with("k", opts, || async {
            tokio::time::sleep(Duration::from_secs(30)).await;
            Ok::<_, String>("never".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "old");
    assert_eq!(cache.stats().stale_served, 1);
}

#[tokio::test]
async fn soft_timeout_returns_stale_at_once_and_the_factory_finishes_in_the_background() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(Duration::from_secs(60))
        .stale(Duration::from_secs(60))
        .soft_timeout(ms(20));
    // Prime with a short ttl so it is stale, but keep the soft-timeout options for the refresh.
    prime(&cache, &opts.clone().ttl(TTL), "old").await;
    tokio::time::sleep(PAST_TTL).await;

    let runs = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let r = runs.clone();
    let v = cache
        .get_or_fetch_with("k", opts.clone(), move || async move {
            r.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(ms(200)).await;
            Ok::<_, String>("new".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "old", "stale value at the soft timeout");
    assert!(
        started.elapsed() < ms(150),
        "answered before the factory finished"
    );

    // The factory keeps running and its value lands in the cache.
    tokio::time::sleep(ms(400)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(*cache.get::<String>("k").await.unwrap().unwrap(), "new");
}

#[tokio::test]
async fn soft_timeout_without_stale_waits_for_the_factory() {
    let cache = Cache::new();
    let v = cache
        .get_or_fetch_with("k", EntryOptions::new().soft_timeout(ms(5)), || async {
            tokio::time::sleep(ms(50)).await;
            Ok::<_, String>(1u8)
        })
        .await
        .unwrap();
    assert_eq!(*v, 1);
}

#[tokio::test]
async fn eager_refresh_returns_the_value_and_starts_exactly_one_refresh() {
    let cache = Cache::new();
    let opts = EntryOptions::new().ttl(ms(400)).eager_refresh(0.25);
    prime(&cache, &opts, "v1").await;
    tokio::time::sleep(ms(150)).await; // past 25% of the ttl, still fresh

    let runs = Arc::new(AtomicUsize::new(0));
    for _ in 0..20 {
        let r = runs.clone();
        let v = cache
            .get_or_fetch_with("k", opts.clone(), move || async move {
                r.fetch_add(1, Ordering::SeqCst);
                tokio::time::sleep(ms(200)).await;
                Ok::<_, String>("v2".to_string())
            })
            .await
            .unwrap();
        assert_eq!(*v, "v1", "hits return the current value without waiting");
    }
    tokio::time::sleep(ms(300)).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1, "one background refresh");
    assert_eq!(cache.stats().eager_refreshes, 1);
    assert_eq!(*cache.get::<String>("k").await.unwrap().unwrap(), "v2");
}

#[tokio::test]
async fn eager_refresh_failure_keeps_the_current_value() {
    let cache = Cache::new();
    let opts = EntryOptions::new().ttl(ms(400)).eager_refresh(0.1);
    prime(&cache, &opts, "v1").await;
    tokio::time::sleep(ms(100)).await;
    let v = cache
        .get_or_fetch_with::<String, _, _, _>("k", opts, || async { Err("down".to_string()) })
        .await
        .unwrap();
    assert_eq!(*v, "v1");
    tokio::time::sleep(ms(50)).await;
    assert_eq!(*cache.get::<String>("k").await.unwrap().unwrap(), "v1");
    assert_eq!(cache.stats().factory_errors, 1);
}

#[tokio::test]
async fn defaults_apply_and_per_call_options_override_them() {
    let cache = Cache::builder()
        .default_options(EntryOptions::new().ttl(TTL).stale(Duration::from_secs(60)))
        .build();
    prime(&cache, &EntryOptions::new(), "old").await;
    tokio::time::sleep(PAST_TTL).await;
    // The default stale window gives fail-safe...
    let v = cache
        .get_or_fetch::<String, _, _, _>("k", || async { Err(()) })
        .await
        .unwrap();
    assert_eq!(*v, "old");
    // ...and a per-call ttl overrides the default one.
    cache
        .set_with(
            "long",
            1u8,
            EntryOptions::new().ttl(Duration::from_secs(60)),
        )
        .await
        .unwrap();
    tokio::time::sleep(PAST_TTL).await;
    assert!(cache.contains("long").await);
}

#[tokio::test]
async fn the_ttl_counts_from_when_the_value_arrives_not_when_the_fetch_started() {
    let cache = Cache::new();
    let opts = EntryOptions::new().ttl(ms(200));
    cache
        .get_or_fetch_with("slow", opts, || async {
            tokio::time::sleep(ms(150)).await;
            Ok::<_, ()>(1u8)
        })
        .await
        .unwrap();
    tokio::time::sleep(ms(100)).await;
    // 250 ms after the fetch started, 100 ms after the value arrived: still fresh.
    assert!(cache.contains("slow").await);
}
