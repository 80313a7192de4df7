//! Timeouts and cached errors in `#[cached]` functions that return `Result`.

use std::sync::LazyLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use larder::{Cache, EntryOptions, cached};

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
enum ApiError {
    NotFound,
    Unavailable,
    TimedOut(Duration),
}

impl From<larder::Timeout> for ApiError {
    fn from(t: larder::Timeout) -> Self {
        ApiError::TimedOut(t.0)
    }
}

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = CACHE.clone(), hard_timeout = "100ms")]
async fn slow(delay_ms: u64) -> Result<u64, ApiError> {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(delay_ms)
}

#[tokio::test]
async fn a_call_past_its_hard_timeout_answers_the_error_type_and_is_not_cached() {
    let started = std::time::Instant::now();
    assert_eq!(
        slow(5_000).await,
        Err(ApiError::TimedOut(Duration::from_millis(100)))
    );
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped, not waited out"
    );
    assert_eq!(
        slow(5_000).await,
        Err(ApiError::TimedOut(Duration::from_millis(100)))
    );
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        2,
        "a timeout is not cached"
    );
    assert_eq!(slow(1).await, Ok(1));
}

static STALE_CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SLOW_NOW: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = STALE_CACHE.clone(), key = "price", ttl = "50ms", stale = "1m", hard_timeout = "100ms")]
async fn price() -> Result<u64, ApiError> {
    if SLOW_NOW.load(Ordering::SeqCst) == 1 {
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    Ok(7)
}

#[tokio::test]
async fn with_a_stale_value_a_timeout_serves_it_instead() {
    assert_eq!(price().await, Ok(7));
    tokio::time::sleep(Duration::from_millis(150)).await;
    SLOW_NOW.store(1, Ordering::SeqCst);
    assert_eq!(price().await, Ok(7), "stale, within the 1 m window");
    assert_eq!(STALE_CACHE.stats().stale_served, 1);
}

/// A cache whose default options carry a hard timeout, and a function that names none.
static STRICT_CACHE: LazyLock<Cache> = LazyLock::new(|| {
    Cache::builder()
        .default_options(EntryOptions::new().hard_timeout(Duration::from_millis(50)))
        .build()
});

#[cached(cache = STRICT_CACHE.clone())]
async fn under_the_cache_default(delay_ms: u64) -> Result<u64, ApiError> {
    tokio::time::sleep(Duration::from_millis(delay_ms)).await;
    Ok(delay_ms)
}

#[tokio::test]
async fn a_cache_wide_hard_timeout_reaches_an_error_type_that_takes_it() {
    assert_eq!(
        under_the_cache_default(5_000).await,
        Err(ApiError::TimedOut(Duration::from_millis(50)))
    );
}

static LOOKUP_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = CACHE.clone(), cache_err = |e: &ApiError| *e == ApiError::NotFound)]
async fn user(id: u32) -> Result<String, ApiError> {
    LOOKUP_RUNS.fetch_add(1, Ordering::SeqCst);
    match id {
        0 => Err(ApiError::NotFound),
        1 => Err(ApiError::Unavailable),
        n => Ok(format!("user {n}")),
    }
}

#[tokio::test]
async fn cache_err_keeps_the_errors_it_accepts() {
    let runs = || LOOKUP_RUNS.load(Ordering::SeqCst);
    assert_eq!(user(0).await, Err(ApiError::NotFound));
    assert_eq!(user(0).await, Err(ApiError::NotFound));
    assert_eq!(runs(), 1, "NotFound is cached");
    assert_eq!(user(1).await, Err(ApiError::Unavailable));
    assert_eq!(user(1).await, Err(ApiError::Unavailable));
    assert_eq!(runs(), 3, "Unavailable is not");
    assert_eq!(user(2).await, Ok("user 2".into()));
    assert_eq!(user(2).await, Ok("user 2".into()));
    assert_eq!(runs(), 4);
    assert!(user::invalidate(&0).await);
    assert_eq!(user(0).await, Err(ApiError::NotFound));
    assert_eq!(runs(), 5);
}
