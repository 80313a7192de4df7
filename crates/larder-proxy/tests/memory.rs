//! Every byte counted: 200 concurrent misses of distinct 5 MB responses through a proxy bounded to
//! 64 MiB keep its resident memory under that bound plus a fixed overhead (the runtime, and each
//! connection's bounded buffers), whether the clients read everything or hang up after the
//! headers, over the memory store or Redis.

mod common;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;

const CLIENTS: usize = 200;
const BODY: usize = 5 << 20;
const BOUND_MIB: u64 = 64;
/// What the proxy may hold beyond its memory bound, and why it is fixed for a given number of
/// connections:
/// - its binary, runtime and allocator: about 16 MiB at rest (a debug build; 6 MiB in release);
/// - per connection at most 160 KiB: a 32 KiB streaming window and one 32 KiB chunk past it,
///   the upstream connection's 32 KiB read buffer, and a 64 KiB write queue to the client;
///   200 × 160 KiB ≈ 31 MiB;
/// - the copy a fill makes of its body to store it: one large body at a time (the store gate),
///   at most 8 MiB;
/// - and room for the allocator's fragmentation (glibc keeps freed chunks in per-thread
///   arenas): 80 MiB in all.
///
/// Measured peaks are in TESTING.md.
const OVERHEAD_MIB: u64 = 80;
/// Over a remote store, the copies a write makes besides (the encode buffer as it grows, the
/// compressor's output, the envelope): at most three of the largest body stored (8 MiB), one
/// large body at a time.
const REMOTE_COPIES_MIB: u64 = 24;

/// An origin with a distinct 5 MB body at every `/big/<n>` (the same bytes, cheaply shared:
/// the origin's memory is the test's, not the proxy's). `compressible` bodies are one byte
/// repeated; the others look random.
async fn big_origin(compressible: bool) -> Origin {
    let body: Bytes = if compressible {
        Bytes::from(vec![b'x'; BODY])
    } else {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        (0..BODY)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect::<Vec<u8>>()
            .into()
    };
    Origin::start(Arc::new(move |_req| {
        let body = body.clone();
        Box::pin(async move { full(200, &[("cache-control", "max-age=600")], body) })
    }))
    .await
}

/// `CLIENTS` concurrent GETs of distinct URLs; each reads its whole body, or drops the response
/// once the head is in. Returns how many got a 200.
async fn drive(proxy: &Proxy, hang_up: bool) -> usize {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(0)
        .build_http::<http_body_util::Empty<Bytes>>();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|i| {
            let client = client.clone();
            let url = proxy.url(&format!("/big/{i}"));
            tokio::spawn(async move {
                let req = http::Request::get(url)
                    .body(http_body_util::Empty::new())
                    .unwrap();
                let Ok(resp) = client.request(req).await else {
                    return false;
                };
                if resp.status() != 200 {
                    return false;
                }
                if hang_up {
                    return true;
                }
                resp.into_body()
                    .collect()
                    .await
                    .is_ok_and(|b| b.to_bytes().len() == BODY)
            })
        })
        .collect();
    let mut ok = 0;
    for t in tasks {
        if tokio::time::timeout(Duration::from_secs(300), t)
            .await
            .expect("a client finished in time")
            .unwrap()
        {
            ok += 1;
        }
    }
    ok
}

fn peak_mib(proxy: &Proxy) -> u64 {
    proxy.status_kb("VmHWM") / 1024
}

async fn run(store: Option<String>, hang_up: bool, compressible: bool) {
    let origin = big_origin(compressible).await;
    let mut env = Vec::new();
    if let Some(url) = &store {
        env.push(("LARDER_URL", url.as_str()));
    }
    let bound = BOUND_MIB.to_string();
    let overhead = OVERHEAD_MIB
        + if store.is_some() {
            REMOTE_COPIES_MIB
        } else {
            0
        };
    let proxy = Proxy::start(origin.addr, &["--memory-mib", &bound], &env);
    let at_rest = proxy.status_kb("VmRSS") / 1024;
    let ok = drive(&proxy, hang_up).await;
    assert_eq!(ok, CLIENTS, "every client was served");
    // Past the response heads, fills may still be finishing; let them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = peak_mib(&proxy);
    let after = proxy.status_kb("VmRSS") / 1024;
    // A second wave of the same URLs: what was kept is served (and held while it is sent, even
    // once evicted, as Varnish holds objects in delivery), the rest filled again. Measured, not
    // bounded by the setting: see TESTING.md.
    let second = if hang_up {
        None
    } else {
        assert_eq!(drive(&proxy, false).await, CLIENTS);
        Some(peak_mib(&proxy))
    };
    eprintln!(
        "store={} hang_up={hang_up} compressible={compressible}: at rest {at_rest} MiB, peak {peak} MiB, after {after} MiB, peak after a second wave {second:?} MiB (bound {BOUND_MIB} MiB + {overhead} MiB overhead)",
        store.as_deref().unwrap_or("memory://"),
    );
    assert!(
        peak <= BOUND_MIB + overhead,
        "peak RSS {peak} MiB past the bound {BOUND_MIB} MiB + {overhead} MiB"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_large_misses_stay_within_the_bound() {
    run(None, false, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_large_misses_whose_clients_hang_up_stay_within_the_bound() {
    run(None, true, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_redis_compressible_bodies_are_weighed_as_held() {
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    run(Some(redis.url()), false, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_redis_misses_whose_clients_hang_up_stay_within_the_bound() {
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    run(Some(redis.url()), true, false).await;
}
