//! A `Cache` in front of real memcached: entries shared between caches, namespace clears and tags
//! through version keys, corrupt bytes, and a kill and restart that no caller feels.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::Duration;

use larder::{Cache, EntryOptions};
use larder_testkit::{Load, MemcachedServer};

fn cache(url: &str) -> Cache {
    Cache::builder()
        .remote_url(url)
        .unwrap()
        .breaker_backoff(Duration::from_millis(100), Duration::from_millis(400))
        .build()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_caches_on_one_memcached_share_entries_tags_and_clears() {
    let mc = MemcachedServer::start().expect("memcached");
    let (a, b) = (cache(&mc.url()), cache(&mc.url()));
    assert_eq!(a.remote_name(), Some("memcached"));

    a.set("user:1", "Ada".to_string()).await.unwrap();
    let got = b.get::<String>("user:1").await.unwrap();
    assert_eq!(got.as_deref().map(String::as_str), Some("Ada"));
    assert_eq!(b.stats().remote_hits, 1);

    let long_key = "k".repeat(1_000);
    a.set(&long_key, 5u8).await.unwrap();
    assert_eq!(
        cache(&mc.url())
            .get::<u8>(&long_key)
            .await
            .unwrap()
            .as_deref(),
        Some(&5)
    );

    a.set_with("page", 1u8, EntryOptions::new().tags(["users"]))
        .await
        .unwrap();
    a.invalidate_tag("users").await;
    assert!(cache(&mc.url()).get::<u8>("page").await.unwrap().is_none());

    let ns = a.namespace("sessions");
    ns.set("s1", 1u8).await.unwrap();
    a.set("kept", 2u8).await.unwrap();
    ns.clear().await;
    let c = cache(&mc.url());
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
    let mc = MemcachedServer::start().expect("memcached");
    let cache = cache(&mc.url());
    cache.set("k", "first".to_string()).await.unwrap();
    // Keep the namespace generation (the first 8 bytes) so the garbage reaches the decoder.
    let stored = raw_get(mc.port(), "larder::k");
    let mut garbage = stored[..8].to_vec();
    garbage.extend_from_slice(b"not an envelope");
    raw_set(mc.port(), "larder::k", &garbage);

    let fresh = self::cache(&mc.url());
    assert!(fresh.get::<String>("k").await.unwrap().is_none());
    assert_eq!(fresh.stats().decode_errors, 1);
    fresh.set("k", "good".to_string()).await.unwrap();
    let got = self::cache(&mc.url()).get::<String>("k").await.unwrap();
    assert_eq!(got.as_deref().map(String::as_str), Some("good"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_and_restarting_memcached_fails_no_call() {
    let mut mc = MemcachedServer::start().expect("memcached");
    let cache = cache(&mc.url());
    let load = Load::start(&cache, 50, 40, Duration::from_millis(50));
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = load.calls();
    mc.kill();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let during = load.calls() - before;
    mc.restart().unwrap();
    tokio::time::sleep(Duration::from_millis(1_000)).await;
    let report = load.stop().await;
    eprintln!("{report:?}, {during} calls while down, {:?}", cache.stats());

    assert_eq!(report.failures, 0, "{:?}", report.first_failure);
    assert_eq!(report.wrong_values, 0);
    assert!(during > 0);
    let stats = cache.stats();
    assert!(
        stats.store_errors > 0 && stats.breaker_trips > 0,
        "{stats:?}"
    );

    let fresh = self::cache(&mc.url());
    let mut resumed = false;
    for _ in 0..200 {
        cache.set("after", 1u8).await.unwrap();
        if fresh.get::<u8>("after").await.unwrap().is_some() {
            resumed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(resumed, "remote hits resume after the restart");
}

fn raw(port: u16, request: &[u8]) -> BufReader<std::net::TcpStream> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.write_all(request).unwrap();
    BufReader::new(s)
}

fn raw_get(port: u16, key: &str) -> Vec<u8> {
    let mut r = raw(port, format!("get {key}\r\n").as_bytes());
    let mut header = String::new();
    r.read_line(&mut header).unwrap();
    let len: usize = header
        .trim_end()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let mut data = vec![0; len];
    r.read_exact(&mut data).unwrap();
    data
}

fn raw_set(port: u16, key: &str, value: &[u8]) {
    let mut request = format!("set {key} 0 60 {}\r\n", value.len()).into_bytes();
    request.extend_from_slice(value);
    request.extend_from_slice(b"\r\n");
    let mut line = String::new();
    raw(port, &request).read_line(&mut line).unwrap();
    assert_eq!(line, "STORED\r\n");
}
