//! Many proxies, one cache: three real larder-proxy processes on one redis-server in front of one
//! origin. A cold URL asked of all three at once is fetched once; a proxy killed while it holds
//! the fill's lock leaves the others to fetch once the lock expires, with nobody hanging or
//! failing; a purge sent to one proxy's admin listener reaches them all.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;

/// An origin that counts calls per path and answers after `delay`, with no Cache-Control.
async fn slow_origin(delay: Duration) -> (Origin, Arc<std::sync::Mutex<Vec<String>>>) {
    let calls = Arc::new(std::sync::Mutex::new(Vec::new()));
    let c = calls.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            c.lock().unwrap().push(req.uri().path().to_owned());
            Box::pin(async move {
                tokio::time::sleep(delay).await;
                full(200, &[("content-type", "text/plain")], "filled once")
            }) as futures::future::BoxFuture<'static, _>
        },
    ))
    .await;
    (origin, calls)
}

fn calls_for(calls: &std::sync::Mutex<Vec<String>>, path: &str) -> usize {
    calls.lock().unwrap().iter().filter(|p| *p == path).count()
}

const CONFIG: &str = r#"
[cache]
lock_wait = "10s"
lock_expiry = "2s"

[[rule]]
path = "/"
ttl = "60s"
"#;

fn three_proxies(
    origin: std::net::SocketAddr,
    redis: &str,
    config: &std::path::Path,
) -> Vec<Proxy> {
    (0..3)
        .map(|_| {
            Proxy::start(
                origin,
                &["--config", config.to_str().unwrap(), "--store", redis],
                &[],
            )
        })
        .collect()
}

/// 100 concurrent GETs of `path` on `proxy`: each one's status and how long the slowest took.
fn burst(proxy: &Proxy, path: &str, n: usize) -> Vec<tokio::task::JoinHandle<(u16, Duration)>> {
    (0..n)
        .map(|_| {
            let url = proxy.url(path);
            tokio::spawn(async move {
                let started = Instant::now();
                let (status, _, body) = get(&url, &[]).await;
                assert_eq!(&body[..], b"filled once");
                (status, started.elapsed())
            })
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proxies_fill_a_cold_url_once() {
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    let (origin, calls) = slow_origin(Duration::from_millis(500)).await;
    let (_dir, config) = config_file(CONFIG);
    let proxies = three_proxies(origin.addr, &redis.url(), &config);

    let started = Instant::now();
    let mut all = Vec::new();
    for p in &proxies {
        all.extend(burst(p, "/cold", 100));
    }
    let mut slowest = Duration::ZERO;
    for r in all {
        let Ok((status, took)) = r.await else {
            for p in &proxies {
                eprintln!("---- proxy log:\n{}", p.log_text());
            }
            panic!("a request failed");
        };
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    assert_eq!(
        calls_for(&calls, "/cold"),
        1,
        "origin calls for 300 cold requests"
    );
    println!(
        "300 cold requests over 3 proxies: 1 origin call, slowest waiter {slowest:?} (all done in {:?})",
        started.elapsed()
    );

    // A purge sent to one proxy's admin listener is applied by all.
    for p in &proxies {
        let (_, h, _) = get(&p.url("/cold"), &[]).await;
        assert_eq!(h["x-cache"], "HIT");
    }
    let (s, _, _) = send("POST", &proxies[0].admin_url("/purge?url=/cold"), &[], b"").await;
    assert_eq!(s, 200);
    // The backplane carries the purge to the others' memory tiers.
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in &proxies[1..] {
        loop {
            let (_, h, _) = get(&p.url("/cold"), &[("cache-control", "only-if-cached")]).await;
            if h["x-cache"] != "HIT" {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the purge did not reach every proxy"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The same with memcached as the shared store (its `add` is the lock; it has no backplane, so
/// only the fill, not memory-tier coherence, is checked here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_proxies_on_memcached_fill_a_cold_url_once() {
    let memcached = larder_testkit::MemcachedServer::start().expect("memcached");
    let (origin, calls) = slow_origin(Duration::from_millis(500)).await;
    let (_dir, config) = config_file(CONFIG);
    let proxies = three_proxies(origin.addr, &memcached.url(), &config);
    let mut all = Vec::new();
    for p in &proxies {
        all.extend(burst(p, "/cold", 100));
    }
    for r in all {
        assert_eq!(r.await.unwrap().0, 200);
    }
    assert_eq!(
        calls_for(&calls, "/cold"),
        1,
        "origin calls for 300 cold requests"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_that_dies_mid_fill_leaves_the_others_to_fetch_after_expiry() {
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    let (origin, calls) = slow_origin(Duration::from_millis(1500)).await;
    let (_dir, config) = config_file(CONFIG);
    let mut proxies = three_proxies(origin.addr, &redis.url(), &config);

    // The first proxy takes the lock and starts fetching...
    let holder_url: http::Uri = proxies[0].url("/orphan").parse().unwrap();
    let holder = tokio::spawn(async move {
        let client =
            hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                .build_http::<http_body_util::Empty<bytes::Bytes>>();
        // Its proxy is killed: the connection drops without a response.
        client.get(holder_url).await.is_err()
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while calls_for(&calls, "/orphan") == 0 {
        assert!(
            Instant::now() < deadline,
            "the first proxy never reached the origin"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // ...the others queue behind its lock...
    let waiting: Vec<_> = proxies[1..]
        .iter()
        .flat_map(|p| burst(p, "/orphan", 20))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...and it dies before its response arrives.
    // SAFETY: kill sends a signal to the child process this test started.
    assert_eq!(
        unsafe { libc::kill(proxies[0].pid() as i32, libc::SIGKILL) },
        0
    );
    assert!(
        holder.await.unwrap(),
        "the killed proxy's client got no response"
    );
    let _ = proxies[0].wait_exit(Duration::from_secs(5));

    let mut slowest = Duration::ZERO;
    for w in waiting {
        let (status, took) = tokio::time::timeout(Duration::from_secs(30), w)
            .await
            .expect("no waiter hangs")
            .unwrap();
        assert_eq!(status, 200);
        slowest = slowest.max(took);
    }
    // The dead holder's call, then one more after its lock expired: not one per waiter.
    assert_eq!(calls_for(&calls, "/orphan"), 2);
    println!("40 waiters behind a killed lock holder: 2 origin calls, slowest waiter {slowest:?}");
    drop(proxies);
}
