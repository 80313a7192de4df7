//! The store contract against real servers: standalone, password, TLS, and a 3-master cluster.

use std::time::Duration;

use larder_redis::RedisStore;
use larder_store::{Store, StoreKey};
use larder_testkit::{RedisCluster, RedisServer, check_lock_contract, check_store_contract};

const REDIS_EXPIRY: Duration = Duration::from_millis(50);

#[tokio::test]
async fn standalone_server_keeps_the_store_contract() {
    let redis = RedisServer::start().expect("redis-server");
    let store = RedisStore::open(&format!("{}/3?prefix=contract:", redis.url())).unwrap();
    check_store_contract(&store, REDIS_EXPIRY).await;
    check_lock_contract(&store, REDIS_EXPIRY).await;
    // The database index and prefix are honoured: the keys are in db 3 under the prefix.
    let keys = redis.command(&["KEYS", "*"]).unwrap();
    assert_eq!(keys, "", "db 0 stays empty");
    redis.command(&["SELECT", "3"]).unwrap();
}

#[tokio::test]
async fn keys_carry_the_prefix_and_entries_expire_at_the_physical_ttl() {
    let redis = RedisServer::start().expect("redis-server");
    let store = RedisStore::open(&format!("{}?prefix=app%3A", redis.url())).unwrap();
    store
        .set(
            StoreKey::new("users", "42"),
            "v".into(),
            Duration::from_secs(90),
        )
        .await
        .unwrap();
    assert_eq!(redis.command(&["EXISTS", "app:users:42"]).unwrap(), "1");
    let pttl: u64 = redis
        .command(&["PTTL", "app:users:42"])
        .unwrap()
        .parse()
        .unwrap();
    assert!((89_000..=90_000).contains(&pttl), "{pttl}");
}

#[tokio::test]
async fn a_password_protected_server_is_reached_with_the_url_credentials() {
    let redis = RedisServer::builder().password("s3cret").start().unwrap();
    let store = RedisStore::open(&redis.url()).unwrap();
    check_store_contract(&store, REDIS_EXPIRY).await;

    let wrong = RedisStore::open(&format!("redis://:wrong@127.0.0.1:{}", redis.port())).unwrap();
    let err = wrong.ping().await.unwrap_err().to_string();
    assert!(!err.contains("s3cret"), "{err}");
}

#[tokio::test]
async fn an_acl_user_is_reached_with_username_and_password() {
    let redis = RedisServer::start().expect("redis-server");
    redis
        .command(&["ACL", "SETUSER", "app", "on", ">apppw", "~*", "+@all"])
        .unwrap();
    let url = format!("redis://app:apppw@127.0.0.1:{}", redis.port());
    check_store_contract(&RedisStore::open(&url).unwrap(), REDIS_EXPIRY).await;
    let wrong = format!("redis://app:nope@127.0.0.1:{}", redis.port());
    assert!(RedisStore::open(&wrong).unwrap().ping().await.is_err());
}

#[test]
fn a_cache_on_redis_used_outside_a_runtime_degrades_instead_of_panicking() {
    let redis = RedisServer::start().expect("redis-server");
    let cache = larder::Cache::builder()
        .remote_url(&redis.url())
        .unwrap()
        .build();
    let got = futures::executor::block_on(cache.get::<u8>("k")).unwrap();
    assert!(got.is_none());
    assert!(cache.stats().store_errors > 0);
}

#[tokio::test]
async fn tls_server_is_reached_with_a_private_ca() {
    let redis = RedisServer::builder().tls(true).start().unwrap();
    let ca = redis.ca_cert_path().unwrap();
    let url = format!("{}?ca_file={}", redis.url(), ca.display());
    let store = RedisStore::open(&url).unwrap();
    check_store_contract(&store, REDIS_EXPIRY).await;

    // Without the CA the server's certificate is not trusted.
    let untrusted = RedisStore::open(&redis.url()).unwrap();
    assert!(untrusted.ping().await.is_err());
}

#[tokio::test]
async fn three_master_cluster_keeps_the_store_contract() {
    let cluster = RedisCluster::start(3).expect("redis cluster");
    let store = RedisStore::open(&cluster.url()).unwrap();
    assert!(store.is_cluster());
    check_lock_contract(&store, REDIS_EXPIRY).await;
    check_store_contract(&store, REDIS_EXPIRY).await;
    // The entries really are spread over the masters.
    for node in 0..cluster.len() {
        let size: u64 = cluster.command(node, &["DBSIZE"]).unwrap().parse().unwrap();
        assert!(size > 0, "node {node} holds nothing");
    }
}

#[tokio::test]
async fn a_store_can_be_built_while_redis_is_down_and_connects_later() {
    let mut redis = RedisServer::start().expect("redis-server");
    redis.kill();
    let store = RedisStore::open(&redis.url()).unwrap();
    assert!(store.ping().await.is_err());
    redis.restart().unwrap();
    let mut ok = false;
    for _ in 0..100 {
        if store.ping().await.is_ok() {
            ok = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(ok, "the store reconnected by itself");
}

#[test]
fn bad_urls_are_clear_errors() {
    for url in [
        "http://x",
        "redis+cluster://h1,h2/4",
        "redis://h?ca_file=/nonexistent",
    ] {
        let err = RedisStore::open(url).unwrap_err().to_string();
        assert!(!err.is_empty(), "{url}");
    }
    let err = RedisStore::open("rediss://h?ca_file=/nonexistent/ca.pem").unwrap_err();
    assert!(err.to_string().contains("/nonexistent/ca.pem"), "{err}");
}
