//! What every [`Store`] must do, checked against a live store. Each store crate runs it against its
//! real server, so Redis, Redis Cluster and Memcached are held to one definition.

use std::time::Duration;

use bytes::Bytes;
use larder_store::{Store, StoreEntry, StoreKey};

/// Runs every check of the store contract, panicking (as a test does) on the first broken one.
///
/// `coarse_expiry` is the store's expiry granularity (Redis: milliseconds, so pass a small value;
/// Memcached: whole seconds). The store should have a prefix or namespace of its own, since the
/// check clears namespaces `contract-a`, `contract-a:b` and `contract-a*`.
///
/// ```no_run
/// # async fn run(store: &dyn larder_store::Store) {
/// larder_testkit::check_store_contract(store, std::time::Duration::from_millis(50)).await;
/// # }
/// ```
pub async fn check_store_contract(store: &dyn Store, coarse_expiry: Duration) {
    let ttl = Duration::from_secs(60);
    store.ping().await.expect("ping");

    // Absent keys, round trips of binary values of every size, odd and long keys.
    let k = |key| StoreKey::new("contract", key);
    assert_eq!(store.get(k("absent")).await.expect("get"), None);
    let big = Bytes::from(
        (0..1_048_576u32)
            .map(|i| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    );
    let long_key = "k".repeat(300);
    let cases: [(&str, Bytes); 5] = [
        ("plain", Bytes::from_static(b"value")),
        (
            "binary \0\r\n key with spaces",
            Bytes::from_static(b"\0\xff\r\nEND\r\n"),
        ),
        ("unicode: kl\u{e9} \u{1f511}", Bytes::from_static(b"")),
        (&long_key, Bytes::from_static(b"long key")),
        ("big", big.clone()),
    ];
    for (key, value) in &cases {
        store.set(k(key), value.clone(), ttl).await.expect("set");
    }
    for (key, value) in &cases {
        let got = store.get(k(key)).await.expect("get");
        assert_eq!(got.as_ref(), Some(value), "round trip of {:.40?}", key);
    }

    // get_many keeps the order of its keys, with None for the absent ones.
    let keys = [k("plain"), k("absent"), k("big"), k("plain")];
    let got = store.get_many(&keys).await.expect("get_many");
    assert_eq!(got.len(), 4);
    assert_eq!(got[0].as_deref(), Some(&b"value"[..]));
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref(), Some(&big));
    assert_eq!(got[3].as_deref(), Some(&b"value"[..]));
    assert!(
        store
            .get_many(&[])
            .await
            .expect("empty get_many")
            .is_empty()
    );

    // set_many writes every entry, across many keys (and hash slots).
    let names: Vec<String> = (0..200).map(|i| format!("many-{i}")).collect();
    let entries = names
        .iter()
        .map(|n| StoreEntry {
            key: k(n),
            value: Bytes::from(n.clone()),
            ttl,
        })
        .collect();
    store.set_many(entries).await.expect("set_many");
    let keys: Vec<StoreKey<'_>> = names.iter().map(|n| k(n)).collect();
    let got = store.get_many(&keys).await.expect("get_many");
    for (name, value) in names.iter().zip(&got) {
        assert_eq!(value.as_deref(), Some(name.as_bytes()));
    }
    store.set_many(Vec::new()).await.expect("empty set_many");

    // delete says whether something was there.
    assert!(store.delete(k("plain")).await.expect("delete"));
    assert!(!store.delete(k("plain")).await.expect("delete again"));
    assert_eq!(store.get(k("plain")).await.expect("get"), None);

    // Entries expire after their ttl.
    store
        .set(k("short"), Bytes::from_static(b"x"), coarse_expiry)
        .await
        .expect("set short");
    assert!(store.get(k("short")).await.expect("get").is_some());
    tokio::time::sleep(coarse_expiry * 2 + Duration::from_millis(1_100)).await;
    assert_eq!(store.get(k("short")).await.expect("get"), None, "expired");

    // Clearing a namespace removes its entries and nothing of any other namespace.
    let spaces = ["contract-a", "contract-a:b", "contract-a*", ""];
    for ns in spaces {
        for i in 0..30 {
            let key = format!("ns-key-{i}");
            store
                .set(StoreKey::new(ns, &key), Bytes::from_static(b"v"), ttl)
                .await
                .expect("set in namespace");
        }
    }
    store.clear_namespace("contract-a").await.expect("clear");
    for ns in spaces {
        let present = store
            .get(StoreKey::new(ns, "ns-key-7"))
            .await
            .expect("get")
            .is_some();
        assert_eq!(
            present,
            ns != "contract-a",
            "namespace {ns:?} after clearing contract-a"
        );
    }
    store
        .clear_namespace("contract-a")
        .await
        .expect("clear an empty namespace");

    // Tags: version 0 until invalidated, then higher; other tags untouched.
    let t1 = "contract-tag-1";
    let t2 = "contract-tag-2";
    let before = store.tag_versions(&[t1, t2]).await.expect("tag_versions");
    assert_eq!(before.len(), 2);
    store.invalidate_tags(&[t1]).await.expect("invalidate");
    let after = store.tag_versions(&[t1, t2]).await.expect("tag_versions");
    assert!(after[0] > before[0], "{before:?} -> {after:?}");
    assert_eq!(after[1], before[1]);
    assert!(store.tag_versions(&[]).await.expect("no tags").is_empty());
    store
        .invalidate_tags(&[])
        .await
        .expect("invalidate nothing");
}

/// Checks a store's distributed locks: one holder at a time, release only by the holder's token,
/// expiry by itself, and no clash with entries or other namespaces. `coarse_expiry` as for
/// [`check_store_contract`].
///
/// ```no_run
/// # async fn run(store: &dyn larder_store::Store) {
/// larder_testkit::check_lock_contract(store, std::time::Duration::from_millis(50)).await;
/// # }
/// ```
pub async fn check_lock_contract(store: &dyn Store, coarse_expiry: Duration) {
    let k = StoreKey::new("contract-locks", "job");
    let long = Duration::from_secs(30);
    store
        .unlock(k, b"stale-token")
        .await
        .expect("unlock of a free lock");
    assert!(store.try_lock(k, b"one", long).await.expect("try_lock"));
    assert!(
        !store.try_lock(k, b"two", long).await.expect("try_lock"),
        "held"
    );
    store.unlock(k, b"two").await.expect("unlock");
    assert!(
        !store.try_lock(k, b"two", long).await.expect("try_lock"),
        "another token cannot release it"
    );

    // Locks live apart from entries and from other namespaces.
    store
        .set(k, Bytes::from_static(b"entry"), long)
        .await
        .expect("set");
    assert_eq!(
        store.get(k).await.expect("get").as_deref(),
        Some(&b"entry"[..])
    );
    let other = StoreKey::new("contract-locks-2", "job");
    assert!(store.try_lock(other, b"x", long).await.expect("try_lock"));
    store.unlock(other, b"x").await.expect("unlock");

    store.unlock(k, b"one").await.expect("unlock");
    assert!(
        store
            .try_lock(k, b"three", coarse_expiry)
            .await
            .expect("try_lock"),
        "released by its holder"
    );
    tokio::time::sleep(coarse_expiry * 3).await;
    assert!(
        store.try_lock(k, b"four", long).await.expect("try_lock"),
        "expired by itself"
    );
    store.unlock(k, b"four").await.expect("unlock");
    store.delete(k).await.expect("delete");
}
