//! `#[cached]` over a real Redis: two processes' caches (two `Cache` values, each with its own
//! connection) share memoized results through the store.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use larder::{Cache, cached};
use larder_testkit::RedisServer;

/// A service handle, as each replica of an API would hold one.
#[derive(Clone)]
struct Reports {
    cache: Cache,
    runs: Arc<AtomicUsize>,
}

impl Reports {
    #[cached(cache = self.cache, key = "report:{month}", ttl = "1h")]
    async fn monthly(&self, month: u32) -> Vec<u64> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        (0..month as u64).collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_memoized_results_through_redis() {
    let redis = RedisServer::start().expect("redis-server");
    let runs = Arc::new(AtomicUsize::new(0));
    let replica = || Reports {
        cache: Cache::from_url(&redis.url()).unwrap(),
        runs: runs.clone(),
    };
    let (a, b) = (replica(), replica());
    assert_eq!(a.monthly(3).await, vec![0, 1, 2]);
    assert_eq!(b.monthly(3).await, vec![0, 1, 2]);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "b read a's result from Redis"
    );
    assert_eq!(b.cache.stats().remote_hits, 1);

    // Invalidation through one replica reaches the store, so the other misses in Redis too
    // (its own memory tier still holds the value until issue 6's backplane evicts it).
    assert!(a.monthly_invalidate(&3).await);
    let fresh = Reports {
        cache: Cache::from_url(&redis.url()).unwrap(),
        runs: runs.clone(),
    };
    assert_eq!(fresh.monthly(3).await, vec![0, 1, 2]);
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
