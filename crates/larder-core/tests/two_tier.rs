//! The two-tier read and write path through a byte-level `Store` (the in-process one here; Redis
//! and Memcached plug into the same trait).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use larder::codec::Format;
use larder::{Cache, EntryOptions, InProcessStore};

fn node(store: &InProcessStore) -> Cache {
    Cache::builder().remote(Arc::new(store.clone())).build()
}

#[tokio::test]
async fn a_value_written_by_one_node_is_read_by_another() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    a.set("k", vec![1u32, 2, 3]).await.unwrap();
    let got = b.get::<Vec<u32>>("k").await.unwrap().unwrap();
    assert_eq!(*got, vec![1, 2, 3]);
    let stats = b.stats();
    assert_eq!((stats.remote_hits, stats.hits), (1, 1));
    // The remote hit filled b's memory tier: the next read does not touch the store.
    store.set_failing(true);
    assert!(b.get::<Vec<u32>>("k").await.unwrap().is_some());
    assert_eq!(b.stats().store_errors, 0);
}

#[tokio::test]
async fn get_or_fetch_finds_the_remote_value_instead_of_running_the_factory() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    let runs = Arc::new(AtomicUsize::new(0));
    for cache in [&a, &b] {
        let runs = runs.clone();
        let v = cache
            .get_or_fetch("k", move || async move {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>("computed once".to_string())
            })
            .await
            .unwrap();
        assert_eq!(*v, "computed once");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(b.stats().remote_hits, 1);
}

#[tokio::test]
async fn memory_is_filled_with_the_remaining_ttl_never_longer() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    a.set_with(
        "k",
        1u8,
        EntryOptions::new().ttl(Duration::from_millis(300)),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        b.get::<u8>("k").await.unwrap().is_some(),
        "b reads it with ~100 ms left"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        b.get::<u8>("k").await.unwrap().is_none(),
        "b's memory copy expired with the original, not 300 ms after b read it"
    );
}

#[tokio::test]
async fn get_many_and_set_many_go_through_the_store() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    a.set_many([("x", 1u16), ("y", 2u16)]).await.unwrap();
    b.set("z", 3u16).await.unwrap();
    let got = b.get_many::<u16>(&["x", "y", "z", "w"]).await.unwrap();
    let got: Vec<_> = got.into_iter().map(|v| v.map(|v| *v)).collect();
    assert_eq!(got, vec![Some(1), Some(2), Some(3), None]);
}

#[tokio::test]
async fn deletes_clears_and_tags_reach_the_store() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    a.set("d", 1u8).await.unwrap();
    a.namespace("ns").set("n", 1u8).await.unwrap();
    a.set_with("t", 1u8, EntryOptions::new().tags(["tag"]))
        .await
        .unwrap();

    b.delete("d").await;
    b.namespace("ns").clear().await;
    b.invalidate_tag("tag").await;

    // A third node with an empty memory tier sees all three gone from the store.
    let c = node(&store);
    assert!(!c.contains("d").await);
    assert!(!c.namespace("ns").contains("n").await);
    assert!(!c.contains("t").await);
    assert!(c.get::<u8>("t").await.unwrap().is_none());
}

#[tokio::test]
async fn corrupt_or_foreign_bytes_read_as_a_counted_miss_and_are_overwritten() {
    let store = InProcessStore::new();
    let cache = node(&store);
    for junk in [&b"not an envelope"[..], b"LRDR\x01\x02\x00\x00\x00", b""] {
        store.put_raw(
            "",
            "k",
            Bytes::copy_from_slice(junk),
            Duration::from_secs(60),
        );
        assert!(cache.get::<String>("k").await.unwrap().is_none());
    }
    assert_eq!(cache.stats().decode_errors, 3);
    let v = cache
        .get_or_fetch("k", || async { Ok::<_, ()>("fixed".to_string()) })
        .await
        .unwrap();
    assert_eq!(*v, "fixed");
    assert_eq!(
        *node(&store).get::<String>("k").await.unwrap().unwrap(),
        "fixed"
    );
}

#[tokio::test]
async fn a_value_of_another_shape_in_the_store_is_a_miss_not_an_error() {
    // After a deploy changes a type, old entries must not break reads.
    let store = InProcessStore::new();
    node(&store)
        .set("k", "old shape".to_string())
        .await
        .unwrap();
    let got = node(&store).get::<Vec<u64>>("k").await.unwrap();
    assert!(got.is_none());
}

#[tokio::test]
async fn a_failing_store_never_fails_a_call() {
    let store = InProcessStore::new();
    let cache = Cache::builder()
        .remote(Arc::new(store.clone()))
        .breaker_backoff(Duration::from_millis(20), Duration::from_millis(20))
        .build();
    store.set_failing(true);
    cache.set("k", 1u8).await.unwrap();
    assert_eq!(
        cache.get::<u8>("k").await.unwrap().as_deref(),
        Some(&1),
        "memory tier still works"
    );
    let v = cache
        .get_or_fetch("f", || async { Ok::<_, ()>(2u8) })
        .await
        .unwrap();
    assert_eq!(*v, 2);
    assert!(cache.get::<u8>("missing").await.unwrap().is_none());
    cache.delete("k").await;
    cache.clear().await;
    cache.invalidate_tag("t").await;
    assert!(cache.stats().store_errors > 0);

    store.set_failing(false);
    tokio::time::sleep(Duration::from_millis(100)).await;
    cache.set("after", 3u8).await.unwrap();
    assert_eq!(*node(&store).get::<u8>("after").await.unwrap().unwrap(), 3);
}

#[tokio::test]
async fn an_open_breaker_skips_the_store_until_a_probe_succeeds() {
    let store = InProcessStore::new();
    let cache = Cache::builder()
        .remote(Arc::new(store.clone()))
        .breaker_failures(3)
        .breaker_backoff(Duration::from_millis(50), Duration::from_millis(50))
        .build();
    store.set_failing(true);
    for i in 0..3 {
        assert!(cache.get::<u8>(&format!("m{i}")).await.unwrap().is_none());
    }
    let stats = cache.stats();
    assert_eq!((stats.store_errors, stats.breaker_trips), (3, 1));
    assert!(stats.breaker_open);

    // Open: calls do not reach the store at all, and still answer.
    for i in 0..10 {
        let v = cache
            .get_or_fetch(&format!("f{i}"), move || async move { Ok::<_, ()>(i) })
            .await
            .unwrap();
        assert_eq!(*v, i);
    }
    let stats = cache.stats();
    assert_eq!(stats.store_errors, 3, "no call was made while open");
    assert!(stats.store_calls_skipped >= 10);

    // The store recovers; after the back-off one probe closes the breaker.
    store.set_failing(false);
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(cache.get::<u8>("probe").await.unwrap().is_none());
    assert!(!cache.stats().breaker_open);
    cache.set("k", 7u8).await.unwrap();
    assert_eq!(*node(&store).get::<u8>("k").await.unwrap().unwrap(), 7);
}

#[tokio::test]
async fn a_failed_probe_keeps_the_breaker_open() {
    let store = InProcessStore::new();
    let cache = Cache::builder()
        .remote(Arc::new(store.clone()))
        .breaker_backoff(Duration::from_millis(30), Duration::from_secs(60))
        .build();
    store.set_failing(true);
    for i in 0..3 {
        let _ = cache.get::<u8>(&format!("m{i}")).await;
    }
    tokio::time::sleep(Duration::from_millis(80)).await;
    let _ = cache.get::<u8>("probe").await;
    let stats = cache.stats();
    assert_eq!(stats.store_errors, 4, "exactly one probe went through");
    assert!(stats.breaker_open);
    assert_eq!(stats.breaker_trips, 1, "a failed probe is not a new trip");
}

#[tokio::test]
async fn a_slow_store_is_cut_off_by_the_store_timeout() {
    // A store that never answers.
    struct Hanging;
    impl larder::Store for Hanging {
        fn name(&self) -> &str {
            "hanging"
        }
        fn get<'a>(&'a self, _: larder::StoreKey<'a>) -> larder::StoreFuture<'a, Option<Bytes>> {
            Box::pin(std::future::pending())
        }
        fn get_many<'a>(
            &'a self,
            _: &'a [larder::StoreKey<'a>],
        ) -> larder::StoreFuture<'a, Vec<Option<Bytes>>> {
            Box::pin(std::future::pending())
        }
        fn set<'a>(
            &'a self,
            _: larder::StoreKey<'a>,
            _: Bytes,
            _: Duration,
        ) -> larder::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
        fn set_many<'a>(&'a self, _: Vec<larder::StoreEntry<'a>>) -> larder::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
        fn delete<'a>(&'a self, _: larder::StoreKey<'a>) -> larder::StoreFuture<'a, bool> {
            Box::pin(std::future::pending())
        }
        fn clear_namespace<'a>(&'a self, _: &'a str) -> larder::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
        fn tag_versions<'a>(&'a self, _: &'a [&'a str]) -> larder::StoreFuture<'a, Vec<u64>> {
            Box::pin(std::future::pending())
        }
        fn invalidate_tags<'a>(&'a self, _: &'a [&'a str]) -> larder::StoreFuture<'a, ()> {
            Box::pin(std::future::pending())
        }
        fn ping(&self) -> larder::StoreFuture<'_, ()> {
            Box::pin(std::future::pending())
        }
    }
    let cache = Cache::builder()
        .remote(Arc::new(Hanging))
        .store_timeout(Duration::from_millis(30))
        .build();
    // Many calls: the first few wait out the timeout, then the breaker skips the store.
    for i in 0..20u8 {
        let v = cache
            .get_or_fetch(&format!("k{i}"), move || async move { Ok::<_, ()>(i) })
            .await
            .unwrap();
        assert_eq!(*v, i);
    }
    let stats = cache.stats();
    assert!(stats.store_errors >= 1);
    assert!(stats.breaker_open);
    assert!(stats.store_calls_skipped > 0);
}

#[tokio::test]
async fn tags_invalidated_on_one_node_invalidate_the_store_copy_for_all() {
    let store = InProcessStore::new();
    let (a, b) = (node(&store), node(&store));
    a.set_with("p", 1u8, EntryOptions::new().tags(["user:1"]))
        .await
        .unwrap();
    a.invalidate_tag("user:1").await;
    assert!(b.get::<u8>("p").await.unwrap().is_none());
    // Written again after the invalidation: visible.
    a.set_with("p", 2u8, EntryOptions::new().tags(["user:1"]))
        .await
        .unwrap();
    assert_eq!(b.get::<u8>("p").await.unwrap().as_deref(), Some(&2));
}

#[tokio::test]
async fn json_and_compressed_envelopes_work_end_to_end() {
    let store = InProcessStore::new();
    let json = Cache::builder()
        .remote(Arc::new(store.clone()))
        .format(Format::Json)
        .compress_above(Some(64))
        .build();
    let big = "abc".repeat(10_000);
    json.set("big", big.clone()).await.unwrap();
    assert_eq!(
        *node(&store).get::<String>("big").await.unwrap().unwrap(),
        big
    );
}

#[tokio::test]
async fn remote_only_cache_works_without_a_memory_tier() {
    let store = InProcessStore::new();
    let cache = Cache::builder()
        .remote(Arc::new(store.clone()))
        .memory(false)
        .build();
    cache.set("k", 5u8).await.unwrap();
    assert_eq!(store.len(), 1);
    assert_eq!(cache.get::<u8>("k").await.unwrap().as_deref(), Some(&5));
    assert_eq!(cache.stats().remote_hits, 1);
}

#[tokio::test]
async fn fail_safe_uses_a_stale_value_from_the_store() {
    let store = InProcessStore::new();
    let opts = EntryOptions::new()
        .ttl(Duration::from_millis(50))
        .stale(Duration::from_secs(60));
    node(&store)
        .set_with("k", "old".to_string(), opts.clone())
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(150)).await;
    // A fresh node: nothing in memory, the stale copy only in the store.
    let fresh_node = node(&store);
    let v = fresh_node
        .get_or_fetch_with::<String, _, _, _>("k", opts.clone(), || async { Err("down") })
        .await
        .unwrap();
    assert_eq!(*v, "old");

    // The fail-safe throttle holds it in this node's memory: the next call neither runs the
    // factory nor reads the store, and the store keeps its own (stale) copy untouched.
    store.set_failing(true);
    let v = fresh_node
        .get_or_fetch_with::<String, &str, _, _>("k", opts, || async { Ok("new".to_string()) })
        .await
        .unwrap();
    assert_eq!(*v, "old");
    let stats = fresh_node.stats();
    assert_eq!((stats.factory_runs, stats.store_errors), (1, 0));
}

/// The memory tier weighs what it holds, decoded, not the (compressed) envelope the store holds:
/// compressible values read from the store must not overfill the byte bound.
#[tokio::test]
async fn the_memory_tier_weighs_values_decoded_whatever_the_store_holds() {
    let store = InProcessStore::new();
    let bound = 1u64 << 20;
    let bounded = || {
        Cache::builder()
            .max_bytes(bound)
            .remote(Arc::new(store.clone()))
            .build()
    };
    let (writer, reader) = (bounded(), bounded());
    let body = "x".repeat(100_000); // compresses about 200-fold
    for i in 0..50 {
        writer.set(&format!("k{i}"), body.clone()).await.unwrap();
        let s = writer.stats();
        assert!(s.weight <= bound, "written: {} > {bound}", s.weight);
    }
    assert!(
        writer.stats().entries <= 10,
        "at most ten 100 kB values in 1 MiB"
    );
    for i in 0..50 {
        assert!(
            reader
                .get::<String>(&format!("k{i}"))
                .await
                .unwrap()
                .is_some()
        );
    }
    let s = reader.stats();
    assert_eq!(s.remote_hits, 50);
    assert!(s.weight <= bound && s.entries <= 10, "{s:?}");
}
