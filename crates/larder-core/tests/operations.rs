//! The typed operations, namespaces, tags, and the memory tier's bounds.

use std::time::Duration;

use larder::{Cache, EntryOptions, ErrorKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct User {
    id: u64,
    name: String,
}

#[tokio::test]
async fn set_get_delete_contains() {
    let cache = Cache::new();
    let ada = User {
        id: 1,
        name: "Ada".into(),
    };
    cache.set("user:1", ada.clone()).await.unwrap();
    assert!(cache.contains("user:1").await);
    let got = cache.get::<User>("user:1").await.unwrap().unwrap();
    assert_eq!(*got, ada);
    // A hit hands out the same allocation: no clone of T, no decoding.
    let again = cache.get::<User>("user:1").await.unwrap().unwrap();
    assert!(std::sync::Arc::ptr_eq(&got, &again));
    assert!(cache.delete("user:1").await);
    assert!(!cache.delete("user:1").await);
    assert!(cache.get::<User>("user:1").await.unwrap().is_none());
}

#[tokio::test]
async fn reading_as_another_type_is_a_typed_error() {
    let cache = Cache::new();
    cache.set("n", 5u64).await.unwrap();
    match cache.get::<String>("n").await.map_err(|e| e.kind().clone()) {
        Err(ErrorKind::TypeMismatch { key, expected }) => {
            assert_eq!(key, "n");
            assert!(expected.contains("String"));
        }
        other => panic!("expected TypeMismatch, got {other:?}"),
    }
    let err = cache
        .get_or_fetch("n", || async { Ok::<_, ()>("x".to_string()) })
        .await
        .unwrap_err();
    assert!(matches!(
        err,
        larder::FetchError::Cache(e) if matches!(e.kind(), ErrorKind::TypeMismatch { .. })
    ));
}

#[tokio::test]
async fn ttl_expires_entries() {
    let cache = Cache::new();
    cache
        .set_with("k", 1u8, EntryOptions::new().ttl(Duration::from_millis(40)))
        .await
        .unwrap();
    assert!(cache.contains("k").await);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(!cache.contains("k").await);
    assert!(cache.get::<u8>("k").await.unwrap().is_none());
}

/// Hits far from expiry skip the clock read; expiry must stay exact all the same.
#[tokio::test]
async fn a_longer_ttl_expires_on_time_too() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(Duration::from_millis(1_300))
        .eager_refresh(0.9);
    cache.set_with("k", 1u8, opts.clone()).await.unwrap();
    for _ in 0..3 {
        assert_eq!(cache.get::<u8>("k").await.unwrap().as_deref(), Some(&1));
        let hit = cache
            .get_or_fetch_with("k", opts.clone(), || async { Ok::<_, ()>(2u8) })
            .await
            .unwrap();
        assert_eq!(*hit, 1, "fresh, and not yet due for refresh");
    }
    tokio::time::sleep(Duration::from_millis(1_450)).await;
    assert!(cache.get::<u8>("k").await.unwrap().is_none());
    assert_eq!(cache.stats().factory_runs, 0);
}

#[tokio::test]
async fn get_many_and_set_many() {
    let cache = Cache::new();
    cache
        .set_many((0..5u32).map(|i| (larder::key!("n", i), i * 10)))
        .await
        .unwrap();
    let keys: Vec<String> = (0..7u32).map(|i| larder::key!("n", i)).collect();
    let got = cache.get_many::<u32>(&keys).await.unwrap();
    let got: Vec<Option<u32>> = got.into_iter().map(|v| v.map(|v| *v)).collect();
    assert_eq!(
        got,
        vec![Some(0), Some(10), Some(20), Some(30), Some(40), None, None]
    );
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses), (5, 2));
}

#[tokio::test]
async fn namespaces_keep_keys_apart_and_clear_one_namespace_only() {
    let cache = Cache::new();
    let users = cache.namespace("users");
    let posts = cache.namespace("posts");
    users.set("1", "ada".to_string()).await.unwrap();
    posts.set("1", "hello".to_string()).await.unwrap();
    cache.set("1", "root".to_string()).await.unwrap();
    assert_eq!(*users.get::<String>("1").await.unwrap().unwrap(), "ada");
    assert_eq!(*posts.get::<String>("1").await.unwrap().unwrap(), "hello");

    users.clear().await;
    assert!(users.get::<String>("1").await.unwrap().is_none());
    assert_eq!(*posts.get::<String>("1").await.unwrap().unwrap(), "hello");
    assert_eq!(*cache.get::<String>("1").await.unwrap().unwrap(), "root");

    // The namespace option on a call is the same thing as a namespaced handle.
    let v = cache
        .get_or_fetch_with("1", EntryOptions::new().namespace("posts"), || async {
            Ok::<_, ()>(String::new())
        })
        .await
        .unwrap();
    assert_eq!(*v, "hello");
}

#[tokio::test]
async fn invalidating_a_tag_drops_exactly_the_tagged_entries() {
    let cache = Cache::new();
    let t1 = EntryOptions::new().tags(["user:1"]);
    cache.set_with("profile:1", 1u8, t1.clone()).await.unwrap();
    cache
        .set_with(
            "posts:1",
            2u8,
            EntryOptions::new().tags(["user:1", "posts"]),
        )
        .await
        .unwrap();
    cache
        .set_with("profile:2", 3u8, EntryOptions::new().tags(["user:2"]))
        .await
        .unwrap();
    cache.set("untagged", 4u8).await.unwrap();
    cache
        .namespace("other")
        .set_with("x", 5u8, t1.clone())
        .await
        .unwrap();

    cache.invalidate_tag("user:1").await;
    assert!(!cache.contains("profile:1").await);
    assert!(!cache.contains("posts:1").await);
    assert!(
        !cache.namespace("other").contains("x").await,
        "tags span namespaces"
    );
    assert!(cache.contains("profile:2").await);
    assert!(cache.contains("untagged").await);

    // Entries written after the invalidation are live.
    cache.set_with("profile:1", 6u8, t1).await.unwrap();
    assert_eq!(
        cache.get::<u8>("profile:1").await.unwrap().as_deref(),
        Some(&6)
    );
}

#[tokio::test]
async fn a_tag_invalidated_while_a_fetch_runs_applies_to_its_result() {
    let cache = Cache::new();
    let c = cache.clone();
    let fetch = tokio::spawn(async move {
        c.get_or_fetch_with("k", EntryOptions::new().tags(["t"]), || async {
            tokio::time::sleep(Duration::from_millis(100)).await;
            Ok::<_, ()>("computed from old data".to_string())
        })
        .await
    });
    tokio::time::sleep(Duration::from_millis(30)).await;
    cache.invalidate_tag("t").await;
    assert_eq!(*fetch.await.unwrap().unwrap(), "computed from old data");
    assert!(
        !cache.contains("k").await,
        "the result predates the invalidation"
    );
}

#[tokio::test]
async fn the_entry_bound_holds_and_evictions_are_counted() {
    let cache = Cache::builder().max_entries(100).build();
    for i in 0..1_000u32 {
        cache.set(&larder::key!("k", i), i).await.unwrap();
    }
    let stats = cache.stats();
    assert!(stats.entries <= 100, "{stats:?}");
    assert!(stats.evictions >= 900, "{stats:?}");
}

#[tokio::test]
async fn the_weight_bound_holds_with_the_default_estimate() {
    let cache = Cache::builder().max_bytes(100_000).build();
    for i in 0..200u32 {
        cache
            .set(&larder::key!("blob", i), vec![7u8; 4_000])
            .await
            .unwrap();
    }
    let stats = cache.stats();
    assert!(stats.weight <= 100_000, "{stats:?}");
    // 4 KB values: about 24 fit, far fewer than the 100,000-entry default count bound.
    assert!(stats.entries <= 25 && stats.entries >= 5, "{stats:?}");
}

#[tokio::test]
async fn the_weight_bound_holds_with_a_user_weigher() {
    let cache = Cache::builder()
        .max_entries(1_000)
        .max_bytes(10_000)
        .weigher(|_, v: &String| v.len() as u64)
        .build();
    for i in 0..100u32 {
        cache
            .set(&larder::key!("s", i), "x".repeat(1_000))
            .await
            .unwrap();
    }
    let stats = cache.stats();
    assert!(stats.weight <= 10_000, "{stats:?}");
    assert!(stats.entries < 10, "{stats:?}");
    // Small values are bounded by count instead.
    let small = Cache::builder().max_entries(10).max_bytes(1 << 30).build();
    for i in 0..100u32 {
        small.set(&larder::key!("n", i), i).await.unwrap();
    }
    assert!(small.stats().entries <= 10);
}

#[tokio::test]
async fn a_value_larger_than_the_cache_is_not_kept_and_nothing_breaks() {
    let cache = Cache::builder().max_bytes(1_000).build();
    cache.set("huge", vec![0u8; 100_000]).await.unwrap();
    assert!(cache.get::<Vec<u8>>("huge").await.unwrap().is_none());
    cache.set("small", 1u8).await.unwrap();
    assert!(cache.contains("small").await);
}

#[tokio::test]
async fn keys_built_from_parts_never_collide() {
    let cache = Cache::new();
    cache.set(&larder::key!("a:b", "c"), 1u8).await.unwrap();
    cache.set(&larder::key!("a", "b:c"), 2u8).await.unwrap();
    assert_eq!(
        cache
            .get::<u8>(&larder::key!("a:b", "c"))
            .await
            .unwrap()
            .as_deref(),
        Some(&1)
    );
    assert_eq!(
        cache
            .get::<u8>(&larder::key!("a", "b:c"))
            .await
            .unwrap()
            .as_deref(),
        Some(&2)
    );
}

/// `Duration::MAX` in any option means "no limit" to a caller; it must never panic on an
/// `Instant` overflow.
#[tokio::test]
async fn the_longest_durations_are_accepted_everywhere() {
    let store = larder::InProcessStore::new();
    let cache = Cache::builder().remote(std::sync::Arc::new(store)).build();
    let max = Duration::MAX;
    let opts = EntryOptions::new()
        .ttl(max)
        .stale(max)
        .soft_timeout(max)
        .hard_timeout(max)
        .distributed_lock(max)
        .lock_expiry(max)
        .fail_safe_throttle(max);
    let v = cache
        .get_or_fetch_with("k", opts.clone(), || async { Ok::<_, String>(7u8) })
        .await
        .unwrap();
    assert_eq!(*v, 7);
    cache.set_with("k2", 1u8, opts).await.unwrap();
    assert!(cache.backplane_ready(max).await);
    assert_eq!(*cache.get::<u8>("k2").await.unwrap().unwrap(), 1);
}
