//! The store contract against a real memcached, and what memcached makes special: no key listing,
//! key limits, second-granularity expiry, counters that can be evicted.

use std::time::Duration;

use larder_memcached::MemcachedStore;
use larder_store::{Store, StoreKey};
use larder_testkit::{MemcachedServer, check_lock_contract, check_store_contract};

#[tokio::test]
async fn memcached_keeps_the_store_contract() {
    let mc = MemcachedServer::start().expect("memcached");
    let store = MemcachedStore::open(&format!("{}?prefix=contract:", mc.url())).unwrap();
    check_store_contract(&store, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn memcached_keeps_the_lock_contract() {
    let mc = MemcachedServer::start().expect("memcached");
    let store = MemcachedStore::open(&format!("{}?prefix=locks:", mc.url())).unwrap();
    check_lock_contract(&store, Duration::from_secs(1)).await;
}

#[tokio::test]
async fn an_evicted_tag_counter_never_revives_old_entries() {
    let mc = MemcachedServer::start().expect("memcached");
    let store = MemcachedStore::open(&mc.url()).unwrap();
    let v1 = store.tag_versions(&["t"]).await.unwrap()[0];
    store.invalidate_tags(&["t"]).await.unwrap();
    // Memcached may evict the counter; flushing everything is the worst case.
    raw_flush(mc.port());
    let v3 = store.tag_versions(&["t"]).await.unwrap()[0];
    assert_ne!(v3, v1, "a recreated counter starts at a new value");
}

#[tokio::test]
async fn the_store_reconnects_after_memcached_restarts() {
    let mut mc = MemcachedServer::start().expect("memcached");
    let store = MemcachedStore::open(&mc.url()).unwrap();
    store
        .set(
            StoreKey::new("ns", "k"),
            "v".into(),
            Duration::from_secs(60),
        )
        .await
        .unwrap();
    mc.kill();
    assert!(store.get(StoreKey::new("ns", "k")).await.is_err());
    mc.restart().unwrap();
    // The pool drops broken connections and reconnects on the next call.
    let mut answer = None;
    for _ in 0..50 {
        if let Ok(v) = store.get(StoreKey::new("ns", "k")).await {
            answer = Some(v);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        answer,
        Some(None),
        "reconnected, and the restarted server is empty"
    );
}

#[test]
fn bad_urls_and_prefixes_are_clear_errors() {
    for url in [
        "redis://h",
        "memcached://",
        "memcached://h1,h2",
        "memcached://h?pool=0",
        "memcached://h?what=1",
        "memcached://h?prefix=has%20space",
    ] {
        assert!(MemcachedStore::open(url).is_err(), "{url}");
    }
    assert!(
        MemcachedStore::builder("memcached://h")
            .prefix("a b")
            .build()
            .is_err()
    );
    assert!(MemcachedStore::open("memcached://h").is_ok());
}

fn raw_flush(port: u16) {
    use std::io::{BufRead, BufReader, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(b"flush_all\r\n").unwrap();
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line).unwrap();
    assert_eq!(line, "OK\r\n");
}

/// Requests from many callers share pipelined connections: each caller still gets its own
/// replies, in every mix of reads, writes, misses, deletes and multi-key reads, with values from
/// empty to past the read buffer's size.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_callers_on_pipelined_connections_each_get_their_own_replies() {
    let mc = MemcachedServer::start().expect("memcached");
    let store = std::sync::Arc::new(MemcachedStore::open(&mc.url()).unwrap());
    let ttl = Duration::from_secs(60);
    let value = |i: usize| -> bytes::Bytes {
        // Sizes 0 .. ~200 KiB, each filled with its own byte.
        let len = (i * 7_919) % (200 << 10);
        vec![(i % 251) as u8; len].into()
    };
    let tasks: Vec<_> = (0..400)
        .map(|i| {
            let store = store.clone();
            tokio::spawn(async move {
                let ns = format!("ns{}", i % 3);
                let key = format!("k{i}");
                store
                    .set(StoreKey::new(&ns, &key), value(i), ttl)
                    .await
                    .unwrap();
                for _ in 0..5 {
                    let got = store.get(StoreKey::new(&ns, &key)).await.unwrap();
                    assert_eq!(got.as_deref(), Some(&value(i)[..]), "key {i}");
                    let missing = format!("missing{i}");
                    assert_eq!(store.get(StoreKey::new(&ns, &missing)).await.unwrap(), None);
                    let other = format!("k{}", (i + 1) % 400);
                    let both = [StoreKey::new(&ns, &key), StoreKey::new("elsewhere", &other)];
                    let many = store.get_many(&both).await.unwrap();
                    assert_eq!(
                        many[0].as_deref(),
                        Some(&value(i)[..]),
                        "key {i} in get_many"
                    );
                }
                assert!(store.delete(StoreKey::new(&ns, &key)).await.unwrap());
                assert_eq!(store.get(StoreKey::new(&ns, &key)).await.unwrap(), None);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
}

/// Requests that together owe more replies than a connection allows outstanding (4,096) still
/// all complete: what is gathered goes out before the writer waits for the allowance.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_past_the_in_flight_allowance_all_complete() {
    let mc = MemcachedServer::start().expect("memcached");
    let store = std::sync::Arc::new(
        MemcachedStore::builder(mc.url())
            .pool_size(1)
            .build()
            .unwrap(),
    );
    let names: Vec<String> = (0..5_000).map(|i| format!("k{i}")).collect();
    let names = std::sync::Arc::new(names);
    let tasks: Vec<_> = (0..8)
        .map(|t| {
            let (store, names) = (store.clone(), names.clone());
            tokio::spawn(async move {
                let keys: Vec<StoreKey<'_>> =
                    names.iter().map(|n| StoreKey::new("big", n)).collect();
                let found = store.get_many(&keys).await.unwrap();
                assert_eq!(found.len(), 5_000);
                let one = format!("small{t}");
                assert_eq!(store.get(StoreKey::new("s", &one)).await.unwrap(), None);
            })
        })
        .collect();
    // A hang is the failure this guards against; 60 s is far past any honest run.
    let all = futures::future::join_all(tasks);
    let done = tokio::time::timeout(Duration::from_secs(60), all)
        .await
        .expect("no hang");
    for t in done {
        t.unwrap();
    }
}
