//! Stampede protection across caches that share a Redis: with the distributed lock, concurrent
//! misses of one key in several caches (each with its own connections, as separate processes
//! have) run the factory once; a dead or failing holder delays no one past the wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use larder::{Cache, EntryOptions, FetchError};
use larder_redis::RedisStore;
use larder_store::{Store, StoreKey};
use larder_testkit::RedisServer;

fn node(url: &str) -> Cache {
    Cache::builder().remote_url(url).unwrap().build()
}

/// `callers` concurrent misses of `key` in each of `caches`; the factory takes 300 ms and counts
/// its runs. Returns the runs.
async fn stampede(caches: &[Cache], callers: usize, key: &str, opts: EntryOptions) -> usize {
    let runs = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for cache in caches {
        for _ in 0..callers {
            let (cache, runs, opts, key) =
                (cache.clone(), runs.clone(), opts.clone(), key.to_owned());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch_with(&key, opts, move || async move {
                        let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        Ok::<_, String>(format!("computed by run {run}"))
                    })
                    .await
                    .map(|v| v.as_str().to_owned())
            }));
        }
    }
    let mut values = Vec::new();
    for t in tasks {
        values.push(t.await.unwrap().unwrap());
    }
    let runs = runs.load(Ordering::SeqCst);
    if runs == 1 {
        assert!(
            values.iter().all(|v| v == "computed by run 1"),
            "one value for all"
        );
    }
    runs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_misses_in_several_caches_run_the_factory_once() {
    let redis = RedisServer::start().expect("redis-server");
    let caches: Vec<Cache> = (0..4).map(|_| node(&redis.url())).collect();
    let locked = EntryOptions::new().distributed_lock(Duration::from_secs(10));
    assert_eq!(stampede(&caches, 100, "report", locked).await, 1);
    let acquired: u64 = caches.iter().map(|c| c.stats().locks_acquired).sum();
    let served: u64 = caches.iter().map(|c| c.stats().lock_waits_served).sum();
    assert_eq!(
        (acquired, served),
        (1, 3),
        "one holder, three caches served by it"
    );

    // Without the lock each cache still coalesces its own callers, but runs its own factory:
    // what the lock saves.
    let unlocked = EntryOptions::new();
    assert_eq!(stampede(&caches, 100, "report-unlocked", unlocked).await, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_holder_that_never_releases_delays_callers_by_the_wait_at_most() {
    let redis = RedisServer::start().expect("redis-server");
    let store = RedisStore::open(&redis.url()).unwrap();
    // A process took the lock and died.
    assert!(
        store
            .try_lock(StoreKey::new("", "k"), b"dead", Duration::from_secs(60))
            .await
            .unwrap()
    );
    let cache = node(&redis.url());
    let started = Instant::now();
    let v = cache
        .get_or_fetch_with(
            "k",
            EntryOptions::new().distributed_lock(Duration::from_millis(300)),
            || async { Ok::<_, String>("mine".to_string()) },
        )
        .await
        .unwrap();
    assert_eq!(*v, "mine");
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(cache.stats().lock_waits_given_up, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_whose_holder_died_expires_and_the_next_caller_takes_it() {
    let redis = RedisServer::start().expect("redis-server");
    let store = RedisStore::open(&redis.url()).unwrap();
    assert!(
        store
            .try_lock(StoreKey::new("", "k"), b"dead", Duration::from_millis(200))
            .await
            .unwrap()
    );
    let cache = node(&redis.url());
    let v = cache
        .get_or_fetch_with(
            "k",
            EntryOptions::new().distributed_lock(Duration::from_secs(10)),
            || async { Ok::<_, String>("after expiry".to_string()) },
        )
        .await
        .unwrap();
    assert_eq!(*v, "after expiry");
    let stats = cache.stats();
    assert_eq!((stats.locks_acquired, stats.lock_waits_given_up), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_holder_releases_the_lock_for_the_next_caller() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    let locked = EntryOptions::new().distributed_lock(Duration::from_secs(10));
    let failing = {
        let (a, locked) = (a.clone(), locked.clone());
        tokio::spawn(async move {
            a.get_or_fetch_with::<String, _, _, _>("k", locked, || async {
                tokio::time::sleep(Duration::from_millis(200)).await;
                Err("upstream down".to_string())
            })
            .await
        })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    let v = b
        .get_or_fetch_with("k", locked, || async {
            Ok::<_, String>("b's value".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "b's value");
    assert!(matches!(
        failing.await.unwrap(),
        Err(FetchError::Factory(_))
    ));
    assert_eq!(b.stats().locks_acquired, 1, "b took it once a released it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_the_lock_is_skipped_and_the_call_still_answers() {
    let mut redis = RedisServer::start().expect("redis-server");
    let cache = node(&redis.url());
    redis.kill();
    let started = Instant::now();
    let v = cache
        .get_or_fetch_with(
            "k",
            EntryOptions::new().distributed_lock(Duration::from_secs(30)),
            || async { Ok::<_, String>("from the source".to_string()) },
        )
        .await
        .unwrap();
    assert_eq!(*v, "from the source");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "no waiting on a lock that cannot be had"
    );
}

/// `Duration::MAX` as the lock's wait and expiry, and as the entry's lifetime, is "as long as
/// possible": the lock is taken in Redis (its expiry clamped), the value stored and shared.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_longest_durations_take_the_lock_and_store_the_value() {
    let redis = RedisServer::start().expect("redis-server");
    let caches: Vec<Cache> = (0..2).map(|_| node(&redis.url())).collect();
    let max = EntryOptions::new()
        .ttl(Duration::MAX)
        .stale(Duration::MAX)
        .distributed_lock(Duration::MAX)
        .lock_expiry(Duration::MAX);
    assert_eq!(stampede(&caches, 10, "forever", max).await, 1);
    let acquired: u64 = caches.iter().map(|c| c.stats().locks_acquired).sum();
    assert_eq!(acquired, 1, "the lock was really taken");
    let errors: u64 = caches.iter().map(|c| c.stats().store_errors).sum();
    assert_eq!(errors, 0, "Redis accepted every expiry");
}
