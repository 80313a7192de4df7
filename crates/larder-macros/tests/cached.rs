//! `#[larder::cached]` end to end: recursion, single-flight, invalidation, keys, options.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use larder::{Cache, cached};

static FIB_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = FIB_CACHE.clone())]
async fn fib(n: u64) -> u64 {
    FIB_RUNS.fetch_add(1, Ordering::SeqCst);
    if n < 2 {
        n
    } else {
        fib(n - 1).await + fib(n - 2).await
    }
}

static FIB_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[tokio::test]
async fn recursive_fib_90_runs_once_per_argument() {
    assert_eq!(fib(90).await, 2_880_067_194_370_816_120);
    assert_eq!(
        FIB_RUNS.load(Ordering::SeqCst),
        91,
        "fib(0) ..= fib(90), each once"
    );
    assert_eq!(fib(90).await, 2_880_067_194_370_816_120);
    assert_eq!(FIB_RUNS.load(Ordering::SeqCst), 91);
}

/// Runs per city (the tests run in parallel, each on its own cities).
static WEATHER_RUNS: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());

fn runs(city: &str) -> usize {
    WEATHER_RUNS
        .lock()
        .unwrap()
        .iter()
        .filter(|c| *c == city)
        .count()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Weather {
    city: String,
    celsius: i32,
    run: usize,
}

#[derive(Debug, Clone, PartialEq)]
struct ApiError(String);

#[cached(cache = WEATHER_CACHE.clone(), key = "weather:{city}", ttl = "1h", skip(request_id))]
async fn weather(city: &str, request_id: u64) -> Result<Weather, ApiError> {
    let _ = request_id;
    let run = {
        let mut all = WEATHER_RUNS.lock().unwrap();
        all.push(city.to_owned());
        all.len()
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    if city == "Atlantis" {
        return Err(ApiError("no such city".into()));
    }
    Ok(Weather {
        city: city.to_owned(),
        celsius: 21,
        run,
    })
}

static WEATHER_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[tokio::test]
async fn concurrent_cold_calls_run_once_and_invalidate_forces_a_new_run() {
    let calls: Vec<_> = (0..20)
        .map(|i| tokio::spawn(weather("Berlin", i)))
        .collect();
    for c in calls {
        assert_eq!(c.await.unwrap().unwrap().city, "Berlin");
    }
    assert_eq!(runs("Berlin"), 1, "20 concurrent callers, one run");
    // The template key is an ordinary key of the cache; request_id is not part of it.
    assert!(WEATHER_CACHE.contains("weather:Berlin").await);

    assert!(weather::invalidate("Berlin").await);
    assert!(!weather::invalidate("Berlin").await);
    let again = weather("Berlin", 99).await.unwrap();
    assert_eq!(runs("Berlin"), 2);

    let refreshed = weather::refresh("Berlin", 0).await.unwrap();
    assert_ne!(refreshed.run, again.run);
    assert_eq!(
        weather("Berlin", 1).await.unwrap(),
        refreshed,
        "refresh stored its value"
    );
}

#[tokio::test]
async fn errors_reach_the_caller_and_are_not_cached() {
    assert_eq!(
        weather("Atlantis", 0).await,
        Err(ApiError("no such city".into()))
    );
    assert_eq!(
        weather("Atlantis", 0).await,
        Err(ApiError("no such city".into()))
    );
    assert_eq!(runs("Atlantis"), 2);
}

static LOOKUPS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = LOOKUP_CACHE.clone())]
async fn find(id: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    (id % 2 == 0).then(|| format!("user {id}"))
}

#[cached(cache = LOOKUP_CACHE.clone(), cache_none)]
async fn find_remembering_none(id: u32) -> Option<String> {
    LOOKUPS.fetch_add(1, Ordering::SeqCst);
    (id % 2 == 0).then(|| format!("user {id}"))
}

static LOOKUP_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[tokio::test]
async fn option_caches_some_and_none_only_when_asked() {
    let n = || LOOKUPS.load(Ordering::SeqCst);
    let start = n();
    assert_eq!(find(2).await.as_deref(), Some("user 2"));
    assert_eq!(find(2).await.as_deref(), Some("user 2"));
    assert_eq!(n() - start, 1);
    assert_eq!(find(3).await, None);
    assert_eq!(find(3).await, None);
    assert_eq!(n() - start, 3, "None is not cached");
    assert_eq!(find_remembering_none(5).await, None);
    assert_eq!(find_remembering_none(5).await, None);
    assert_eq!(n() - start, 4, "cache_none keeps the None");
}

static UNLESS_RUNS: AtomicUsize = AtomicUsize::new(0);
static COUNT_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[cached(cache = COUNT_CACHE.clone(), unless = |v: &u32| *v == 0, namespace = "counts")]
async fn count(x: u32) -> u32 {
    UNLESS_RUNS.fetch_add(1, Ordering::SeqCst);
    x
}

#[tokio::test]
async fn unless_decides_not_to_cache_a_value() {
    let runs = || UNLESS_RUNS.load(Ordering::SeqCst);
    assert_eq!((count(0).await, count(0).await), (0, 0));
    assert_eq!(runs(), 2, "0 is never cached");
    assert_eq!((count(5).await, count(5).await), (5, 5));
    assert_eq!(runs(), 3, "5 is");
    assert!(
        count::invalidate(&5).await,
        "companions use the namespace too"
    );
}

/// A service handle: methods memoize with the handle's own cache.
#[derive(Clone)]
struct Users {
    cache: Cache,
    runs: Arc<AtomicUsize>,
}

impl Users {
    #[cached(cache = self.cache, ttl = Duration::from_secs(30), tags = ["user:{id}"])]
    async fn name(&self, id: u64) -> String {
        self.runs.fetch_add(1, Ordering::SeqCst);
        format!("user-{id}")
    }
}

#[tokio::test]
async fn methods_use_the_cache_the_expression_names_and_tags_use_arguments() {
    let users = Users {
        cache: Cache::new(),
        runs: Arc::default(),
    };
    assert_eq!(users.name(7).await, "user-7");
    assert_eq!(users.name(7).await, "user-7");
    assert_eq!(users.runs.load(Ordering::SeqCst), 1);
    users.cache.invalidate_tag("user:7").await;
    users.name(7).await;
    assert_eq!(users.runs.load(Ordering::SeqCst), 2);
    assert!(users.name_invalidate(&7).await);
    users.name(7).await;
    assert_eq!(users.runs.load(Ordering::SeqCst), 3);
    assert_eq!(users.name_refresh(8).await, "user-8");
    users.name(8).await;
    assert_eq!(users.runs.load(Ordering::SeqCst), 4, "refresh stored it");
}

static DEFAULT_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached]
async fn on_the_default_cache(a: String, b: String) -> String {
    DEFAULT_RUNS.fetch_add(1, Ordering::SeqCst);
    format!("{a}{b}")
}

#[tokio::test]
async fn the_default_key_tells_arguments_apart_unambiguously() {
    let start = DEFAULT_RUNS.load(Ordering::SeqCst);
    assert_eq!(on_the_default_cache("a:".into(), "b".into()).await, "a:b");
    assert_eq!(on_the_default_cache("a".into(), ":b".into()).await, "a:b");
    assert_eq!(
        DEFAULT_RUNS.load(Ordering::SeqCst) - start,
        2,
        "two argument lists, two entries"
    );
    on_the_default_cache("a".into(), ":b".into()).await;
    assert_eq!(DEFAULT_RUNS.load(Ordering::SeqCst) - start, 2);
}

/// A large value, cloned only when the test says so.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Catalog {
    items: Vec<String>,
}

impl Clone for Catalog {
    fn clone(&self) -> Self {
        CATALOG_CLONES.fetch_add(1, Ordering::SeqCst);
        Self {
            items: self.items.clone(),
        }
    }
}

static CATALOG_CLONES: AtomicUsize = AtomicUsize::new(0);
static ARC_CACHE: std::sync::LazyLock<Cache> = std::sync::LazyLock::new(Cache::new);

#[cached(cache = ARC_CACHE.clone())]
async fn catalog(shop: u32) -> Arc<Catalog> {
    Arc::new(Catalog {
        items: vec![format!("shop {shop}"); 1_000],
    })
}

#[cached(cache = ARC_CACHE.clone())]
async fn catalog_or_none(shop: u32) -> Option<Arc<Catalog>> {
    (shop != 0).then(|| Arc::new(Catalog { items: vec![] }))
}

#[cached(cache = ARC_CACHE.clone())]
fn catalog_sync(shop: u32) -> Result<Arc<Catalog>, String> {
    Ok(Arc::new(Catalog {
        items: vec![format!("sync {shop}")],
    }))
}

#[tokio::test]
async fn an_arc_return_is_the_caches_own_value_with_no_clone_on_a_hit() {
    let first = catalog(7).await;
    let second = catalog(7).await;
    assert!(
        Arc::ptr_eq(&first, &second),
        "a hit hands out the cached Arc"
    );
    assert_eq!(first.items.len(), 1_000);
    let some = catalog_or_none(1).await.unwrap();
    assert!(Arc::ptr_eq(&some, &catalog_or_none(1).await.unwrap()));
    assert_eq!(catalog_or_none(0).await, None);
    let sync = catalog_sync(3).unwrap();
    assert!(Arc::ptr_eq(&sync, &catalog_sync(3).unwrap()));
    assert_eq!(
        CATALOG_CLONES.load(Ordering::SeqCst),
        0,
        "no clone on a miss (the body's Arc is unwrapped) nor on a hit"
    );
}
