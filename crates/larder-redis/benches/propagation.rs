//! Invalidation propagation latency through the Redis backplane on loopback: node A invalidates
//! an entry that node B holds in memory (a set, a delete or a tag invalidation, in turn), and we
//! time how long until B has dropped it, and until B serves the new state.
//!
//! Run: `cargo bench -p larder-redis --bench propagation` (starts its own redis-server;
//! `LARDER_BENCH_N` sets the number of invalidations, default 10,000).

use std::time::{Duration, Instant};

use larder::{Cache, EntryOptions};
use larder_testkit::RedisServer;

fn main() {
    let n: usize = std::env::var("LARDER_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10_000);
    let redis = match RedisServer::start() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("cannot start redis-server: {e}");
            std::process::exit(1);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(run(&redis.url(), n));
}

fn node(url: &str) -> Cache {
    Cache::builder()
        .remote_url(url)
        .expect("a Redis URL")
        .store_timeout(Duration::from_secs(2))
        .build()
}

/// Spins (yielding the CPU) until `done` holds; false after 5 s.
fn until(mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::yield_now();
    }
    true
}

async fn run(url: &str, n: usize) {
    let (a, b) = (node(url), node(url));
    let long_wait = Duration::from_secs(10);
    if !(a.backplane_ready(long_wait).await && b.backplane_ready(long_wait).await) {
        eprintln!("the backplane never subscribed");
        std::process::exit(1);
    }
    let long = Duration::from_secs(3600);
    let mut received = b.stats().backplane_received;
    let (mut applied, mut visible, mut call) = (Vec::new(), Vec::new(), Vec::new());
    let warmup = n / 20;
    for i in 0..n + warmup {
        let key = format!("k{}", i % 64);
        let tag = format!("t{}", i % 64);
        let opts = EntryOptions::new().ttl(long).tags([tag.clone()]);
        // B holds the key in memory (after applying A's message about writing it).
        a.set_with(&key, i as u64, opts.clone()).await.expect("set");
        received += 1;
        if !until(|| b.stats().backplane_received >= received) {
            eprintln!("B never heard the preparing write");
            std::process::exit(1);
        }
        let held = b.get::<u64>(&key).await.expect("get");
        assert_eq!(held.as_deref(), Some(&(i as u64)));

        // The invalidation, and what B must serve after it.
        let started = Instant::now();
        let want = match i % 3 {
            0 => {
                a.set_with(&key, u64::MAX - i as u64, opts)
                    .await
                    .expect("set");
                Some(u64::MAX - i as u64)
            }
            1 => {
                a.delete(&key).await;
                None
            }
            _ => {
                a.invalidate_tag(&tag).await;
                None
            }
        };
        let returned = started.elapsed();
        received += 1;
        let ok = until(|| b.stats().backplane_received >= received);
        let dropped = started.elapsed();
        let mut served = b.get::<u64>(&key).await.expect("get").map(|v| *v);
        while served != want && ok {
            std::thread::yield_now();
            served = b.get::<u64>(&key).await.expect("get").map(|v| *v);
        }
        let seen = started.elapsed();
        if !ok {
            eprintln!("invalidation {i} never reached B");
            std::process::exit(1);
        }
        if i >= warmup {
            call.push(returned);
            applied.push(dropped);
            visible.push(seen);
        }
    }
    println!(
        "{n} invalidations (set, delete, tag in turn), node A -> node B over the Redis backplane on loopback"
    );
    println!("measure,p50_ms,p90_ms,p99_ms,max_ms");
    report("A's call returns", call);
    report("B has dropped the entry", applied);
    report("B serves the new state", visible);
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1e3
    };
    println!(
        "{what},{:.3},{:.3},{:.3},{:.3}",
        at(0.50),
        at(0.90),
        at(0.99),
        at(1.0)
    );
}
