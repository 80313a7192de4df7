//! Two-tier coherence through the Redis backplane, with several caches that each have their own
//! connections, as replicas of an application do: every kind of invalidation reaches every other
//! node's memory tier, a node ignores its own messages, a node that lost its subscription drops
//! its memory when it is back, and the same on a Redis Cluster.

use std::time::Duration;

use larder::{Cache, EntryOptions, RemoteWrite};
use larder_testkit::{RedisCluster, RedisServer, eventually};

const LONG: Duration = Duration::from_secs(3600);

/// One replica: memory tier in front of Redis, with the backplane `from_url` sets up.
fn node(url: &str) -> Cache {
    Cache::builder()
        .remote_url(url)
        .unwrap()
        .default_options(EntryOptions::new().ttl(LONG))
        .breaker_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .build()
}

async fn subscribed(nodes: &[&Cache]) {
    for n in nodes {
        assert!(
            eventually(Duration::from_secs(10), async || n
                .stats()
                .backplane_connected)
            .await,
            "backplane never subscribed"
        );
    }
}

/// Waits until `node` has applied `n` messages from other nodes.
async fn heard(node: &Cache, n: u64) -> bool {
    eventually(Duration::from_secs(5), async || {
        node.stats().backplane_received >= n
    })
    .await
}

/// `key` as `node` serves it now (memory first).
async fn seen(node: &Cache, key: &str) -> Option<String> {
    node.get::<String>(key)
        .await
        .unwrap()
        .map(|v| v.as_str().to_owned())
}

/// Waits until `node` serves `want` for `key`; with a one-hour ttl, only an eviction by the
/// backplane can make its memory tier let go of the old value.
async fn converges(node: &Cache, key: &str, want: Option<&str>) -> bool {
    eventually(Duration::from_secs(5), async || {
        seen(node, key).await.as_deref() == want
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_invalidation_reaches_every_other_node() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b, c) = (node(&redis.url()), node(&redis.url()), node(&redis.url()));
    subscribed(&[&a, &b, &c]).await;

    // Writes: b and c hold "v1" in memory, then a writes "v2".
    a.set("k", "v1".to_string()).await.unwrap();
    for n in [&b, &c] {
        assert_eq!(seen(n, "k").await.as_deref(), Some("v1"));
    }
    a.set("k", "v2".to_string()).await.unwrap();
    for n in [&b, &c] {
        assert!(converges(n, "k", Some("v2")).await, "set did not reach");
    }

    // Deletes.
    a.delete("k").await;
    for n in [&b, &c] {
        assert!(converges(n, "k", None).await, "delete did not reach");
    }

    // Many writes in one message.
    a.set_many([("m1", "x".to_string()), ("m2", "y".to_string())])
        .await
        .unwrap();
    let _ = (seen(&b, "m1").await, seen(&b, "m2").await);
    a.set_many([("m1", "x2".to_string()), ("m2", "y2".to_string())])
        .await
        .unwrap();
    assert!(converges(&b, "m1", Some("x2")).await && converges(&b, "m2", Some("y2")).await);

    // A namespace clear, and only that namespace.
    let (a_users, b_users) = (a.namespace("users"), b.namespace("users"));
    a_users.set("1", "ada".to_string()).await.unwrap();
    a.set("outside", "kept".to_string()).await.unwrap();
    assert_eq!(seen(&b_users, "1").await.as_deref(), Some("ada"));
    assert_eq!(seen(&b, "outside").await.as_deref(), Some("kept"));
    a_users.clear().await;
    assert!(converges(&b_users, "1", None).await, "clear did not reach");
    assert_eq!(seen(&b, "outside").await.as_deref(), Some("kept"));

    // A tag invalidation.
    let tagged = EntryOptions::new().ttl(LONG).tags(["user:7"]);
    a.set_with("profile:7", "p".to_string(), tagged.clone())
        .await
        .unwrap();
    assert_eq!(seen(&c, "profile:7").await.as_deref(), Some("p"));
    a.invalidate_tag("user:7").await;
    assert!(converges(&c, "profile:7", None).await, "tag did not reach");

    // A value a factory produced on one node replaces what another node held.
    c.set("f", "old".to_string()).await.unwrap();
    assert_eq!(seen(&b, "f").await.as_deref(), Some("old"));
    c.delete("f").await;
    let fetched = a
        .get_or_fetch("f", || async { Ok::<_, String>("fetched".to_string()) })
        .await
        .unwrap();
    assert_eq!(*fetched, "fetched");
    // c's delete may reach a only after its fetch began; that fetch read what the delete left,
    // so it is stored all the same.
    assert!(converges(&b, "f", Some("fetched")).await);

    assert!(b.stats().backplane_received > 0);
    assert!(a.stats().backplane_published > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_keeps_what_it_wrote_itself() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    subscribed(&[&a, &b]).await;
    a.set("mine", 1u32).await.unwrap();
    // b's write of another key makes sure a's own message had time to come back to it.
    b.set("other", 2u32).await.unwrap();
    assert!(heard(&a, 1).await);
    let before = a.stats();
    assert_eq!(a.get::<u32>("mine").await.unwrap().as_deref(), Some(&1));
    let after = a.stats();
    assert_eq!(after.remote_hits, before.remote_hits, "served from memory");
    assert_eq!(after.backplane_received, 1, "only b's message applied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_elsewhere_during_a_fetch_wins_over_what_the_fetch_read() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b, c) = (node(&redis.url()), node(&redis.url()), node(&redis.url()));
    subscribed(&[&a, &b, &c]).await;
    let (began_tx, began_rx) = tokio::sync::oneshot::channel();
    let (release_tx, release_rx) = tokio::sync::oneshot::channel::<()>();
    let slow = tokio::spawn({
        let a = a.clone();
        async move {
            a.get_or_fetch_with("k", EntryOptions::new().ttl(LONG), || async move {
                let _ = began_tx.send(());
                let _ = release_rx.await;
                Ok::<_, String>("read before the write".to_string())
            })
            .await
        }
    });
    began_rx.await.unwrap();
    b.set("k", "written during the fetch".to_string())
        .await
        .unwrap();
    // Released once a has heard b's write.
    assert!(heard(&a, 1).await);
    release_tx.send(()).unwrap();
    let served = slow.await.unwrap().unwrap();
    assert_eq!(
        *served, "read before the write",
        "its callers get what it read"
    );
    for n in [&a, &c] {
        assert_eq!(
            seen(n, "k").await.as_deref(),
            Some("written during the fetch"),
            "the write stays in the store and no memory tier holds the older read"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn background_writes_reach_the_store_and_the_other_nodes() {
    let redis = RedisServer::start().expect("redis-server");
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    subscribed(&[&a, &b]).await;
    a.set("k", "v1".to_string()).await.unwrap();
    assert_eq!(seen(&b, "k").await.as_deref(), Some("v1"));
    let background = EntryOptions::new().remote_write(RemoteWrite::Background);
    a.set_with("k", "v2".to_string(), background).await.unwrap();
    assert_eq!(seen(&a, "k").await.as_deref(), Some("v2"), "at once here");
    assert!(converges(&b, "k", Some("v2")).await, "soon there");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_lost_its_subscription_drops_its_memory_when_it_is_back() {
    let mut redis = RedisServer::start().expect("redis-server");
    let (a, b) = (node(&redis.url()), node(&redis.url()));
    subscribed(&[&a, &b]).await;
    a.set("k", "before".to_string()).await.unwrap();
    // a's message about that write must be behind b before b reads: arriving after the read, it
    // would evict what b just read, and the outage below would find b's memory empty.
    assert!(heard(&b, a.stats().backplane_published).await);
    assert_eq!(seen(&b, "k").await.as_deref(), Some("before"));
    let resyncs = b.stats().backplane_resyncs;

    // The server goes away and comes back empty: whatever was written meanwhile, b cannot know.
    redis.kill();
    assert!(
        eventually(Duration::from_secs(10), async || !b
            .stats()
            .backplane_connected)
        .await,
        "the loss was noticed"
    );
    assert_eq!(
        seen(&b, "k").await.as_deref(),
        Some("before"),
        "memory serves during the outage"
    );
    redis.restart().unwrap();
    assert!(
        eventually(Duration::from_secs(15), async || b
            .stats()
            .backplane_resyncs
            > resyncs)
        .await,
        "resubscribed"
    );
    // Dropped on resubscription: the next read goes to the (empty) store.
    assert_eq!(seen(&b, "k").await, None);

    // And the backplane works again.
    a.set("k", "after".to_string()).await.unwrap();
    assert_eq!(seen(&b, "k").await.as_deref(), Some("after"));
    a.set("k", "again".to_string()).await.unwrap();
    assert!(converges(&b, "k", Some("again")).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_backplane_works_on_a_redis_cluster() {
    let cluster = RedisCluster::start(3).expect("redis cluster");
    let (a, b) = (node(&cluster.url()), node(&cluster.url()));
    subscribed(&[&a, &b]).await;
    // Keys over all three masters: messages published through any node reach every subscriber.
    let keys: Vec<String> = (0..12).map(|i| format!("key-{i}")).collect();
    for k in &keys {
        a.set(k, "v1".to_string()).await.unwrap();
        assert_eq!(seen(&b, k).await.as_deref(), Some("v1"));
    }
    for k in &keys {
        a.set(k, "v2".to_string()).await.unwrap();
    }
    for k in &keys {
        assert!(converges(&b, k, Some("v2")).await, "{k}");
    }
    a.invalidate_tag("nothing-tagged").await;
    a.namespace("ns").clear().await;
}

#[tokio::test]
async fn backplane_off_in_the_url_means_none() {
    let cache = Cache::from_url("redis://127.0.0.1:1?backplane=off").unwrap();
    assert!(!format!("{cache:?}").contains("backplane: Some"));
    let cache = Cache::from_url("redis://127.0.0.1:1").unwrap();
    assert!(format!("{cache:?}").contains("backplane: Some"));
}
