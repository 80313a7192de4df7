//! A `Cache` in front of real Redis: entries shared between processes' caches, invalidation
//! through the store, corrupt bytes, and outages (kill and restart) that no caller feels.

use std::time::Duration;

use larder::{Cache, EntryOptions};
use larder_testkit::{Load, RedisCluster, RedisServer};

fn cache(url: &str) -> Cache {
    Cache::builder()
        .remote_url(url)
        .unwrap()
        .breaker_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .build()
}

/// Waits until `check` holds, up to 10 s; false if it never does.
async fn eventually(check: impl AsyncFnMut() -> bool) -> bool {
    larder_testkit::eventually(Duration::from_secs(10), check).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_on_one_redis_share_entries_tags_and_clears() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b) = (cache(&redis.url()), cache(&redis.url()));
    assert_eq!(a.remote_name(), Some("redis"));

    let v = a
        .get_or_fetch("user:1", || async {
            Ok::<_, std::io::Error>("Ada".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "Ada");
    let v = b
        .get_or_fetch("user:1", || async {
            Ok::<_, std::io::Error>("not called".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "Ada", "b read a's entry from Redis");
    assert_eq!((b.stats().remote_hits, b.stats().factory_runs), (1, 0));

    // A tag invalidated through a reaches b's next read of the store copy.
    a.set_with("page", 1u8, EntryOptions::new().tags(["users"]))
        .await
        .unwrap();
    a.invalidate_tag("users").await;
    assert!(b.get::<u8>("page").await.unwrap().is_none());

    // A namespace cleared through a is gone for a fresh cache.
    let ns = a.namespace("sessions");
    ns.set("s1", 1u8).await.unwrap();
    a.set("kept", 2u8).await.unwrap();
    ns.clear().await;
    let c = cache(&redis.url());
    assert!(
        c.namespace("sessions")
            .get::<u8>("s1")
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(c.get::<u8>("kept").await.unwrap().as_deref(), Some(&2));
    assert_eq!(a.stats().store_errors, 0);
}

#[tokio::test]
async fn corrupt_bytes_read_as_a_counted_miss_and_are_overwritten() {
    let redis = RedisServer::start().expect("redis-server");
    let cache = cache(&redis.url());
    for garbage in ["garbage", "LRDR\u{1}\u{0}", ""] {
        redis.command(&["SET", "larder::k", garbage]).unwrap();
        assert!(cache.get::<String>("k").await.unwrap().is_none());
    }
    // An empty value reads as no value (a read asks for the length first, and no envelope is
    // empty): a miss, not a decode error.
    assert_eq!(cache.stats().decode_errors, 2);
    cache.set("k", "good".to_string()).await.unwrap();
    let fresh = self::cache(&redis.url());
    assert_eq!(
        fresh
            .get::<String>("k")
            .await
            .unwrap()
            .as_deref()
            .map(String::as_str),
        Some("good")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_redis_fails_no_call() {
    let mut redis = RedisServer::start().expect("redis-server");
    let cache = cache(&redis.url());
    let load = Load::start(&cache, 50, 40, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = load.calls();
    redis.kill();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let during = load.calls() - before;
    redis.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let report = load.stop().await;
    eprintln!("{report:?}, {during} calls while down, {:?}", cache.stats());

    assert_eq!(report.failures, 0, "{:?}", report.first_failure);
    assert_eq!(report.wrong_values, 0);
    assert!(
        during > 0,
        "callers kept being answered while Redis was down"
    );
    let stats = cache.stats();
    assert!(
        stats.store_errors > 0 && stats.breaker_trips > 0,
        "{stats:?}"
    );

    // After the restart the store is used again: a fresh cache reads what this one writes.
    let fresh = self::cache(&redis.url());
    assert!(
        eventually(async || {
            cache.set("after", 1u8).await.unwrap();
            fresh.get::<u8>("after").await.unwrap().is_some()
        })
        .await,
        "remote hits resume after the restart"
    );
    assert!(!cache.stats().breaker_open);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_serves_caches_and_survives_a_master_restart() {
    let mut cluster = RedisCluster::start(3).expect("redis cluster");
    let url = cluster.url();
    let (a, b) = (cache(&url), cache(&url));
    assert_eq!(a.remote_name(), Some("redis-cluster"));

    // Multi-key operations across hash slots.
    let items: Vec<(String, u32)> = (0..100).map(|i| (format!("k{i}"), i)).collect();
    a.set_many(items.clone()).await.unwrap();
    let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
    let got = b.get_many::<u32>(&keys).await.unwrap();
    assert!(
        got.iter().all(Option::is_some),
        "every key found through MGET"
    );
    assert_eq!(b.stats().remote_hits, 100);

    let load = Load::start(&a, 50, 40, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    cluster.kill_node(1);
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    cluster.restart_node(1).unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let report = load.stop().await;
    eprintln!("{report:?}, {:?}", a.stats());
    assert_eq!(report.failures, 0, "{:?}", report.first_failure);
    assert_eq!(report.wrong_values, 0);
    assert!(
        a.stats().store_errors > 0,
        "the outage was felt by the store"
    );

    // Every slot, the restarted master's included, is written and read again.
    assert!(
        eventually(async || {
            let items: Vec<(String, u32)> = (0..60).map(|i| (format!("after{i}"), i)).collect();
            a.set_many(items.clone()).await.unwrap();
            let fresh = cache(&url);
            let keys: Vec<&str> = items.iter().map(|(k, _)| k.as_str()).collect();
            fresh
                .get_many::<u32>(&keys)
                .await
                .unwrap()
                .iter()
                .all(Option::is_some)
        })
        .await,
        "remote hits resume on every master"
    );
}

#[test]
fn from_url_rejects_what_it_cannot_use() {
    assert!(Cache::from_url("redis+cluster://h1,h2/3").is_err());
    let err = Cache::from_url("rediss://:pw@h?ca_file=/nonexistent").unwrap_err();
    assert!(err.to_string().contains("nonexistent"), "{err}");
    assert!(Cache::from_url("mongodb://h").is_err());
}

/// A value past the whole-read limit (256 KiB) is read in two steps (its length, then within
/// the read budget, the value): on a server and on a cluster alike it comes back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_value_is_read_within_the_read_budget() {
    let redis = RedisServer::start().expect("redis-server");
    let big: Vec<u8> = (0..(3u32 << 20))
        .map(|i| i.wrapping_mul(2654435761) as u8)
        .collect();
    cache(&redis.url()).set("big", big.clone()).await.unwrap();
    let fresh = larder::Cache::builder()
        .remote_url(&redis.url())
        .unwrap()
        .remote_read_budget(1 << 20)
        .build();
    let got = fresh
        .get::<Vec<u8>>("big")
        .await
        .unwrap()
        .expect("a remote hit");
    assert_eq!(*got, big);
    let stats = fresh.stats();
    assert_eq!((stats.remote_hits, stats.remote_reads_deferred), (1, 0));
}
