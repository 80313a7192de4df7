//! GET and SET operations per second with 1 KiB values through `RedisStore` (the `Store` trait)
//! and through a remote-only `Cache` (envelope encode/decode included), at several task counts.
//!
//! Run by `scripts/bench-redis.sh`, which starts the server and runs `redis-benchmark` beside it:
//! `LARDER_BENCH_URL=redis://127.0.0.1:PORT cargo bench -p larder-redis --bench throughput`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use larder::{Cache, EntryOptions};
use larder_redis::RedisStore;
use larder_store::{Store, StoreKey};
use larder_testkit::{BenchEnv, measure};

fn main() {
    let Some(env) = BenchEnv::from_env("scripts/bench-redis.sh") else {
        return;
    };
    let (url, duration, tasks) = (env.url.clone(), env.duration, env.tasks.clone());
    env.run(async move {
        let store = match RedisStore::open(&url) {
            Ok(s) => Arc::new(s),
            Err(e) => {
                eprintln!("bad LARDER_BENCH_URL: {e}");
                std::process::exit(1);
            }
        };
        let value = Bytes::from(vec![b'x'; 1024]);
        let ttl = Duration::from_secs(600);
        if let Err(e) = store.set(StoreKey::new("bench", "k"), value.clone(), ttl).await {
            eprintln!("cannot reach {url}: {e}");
            std::process::exit(1);
        }
        let cache = Cache::builder()
            .remote(store.clone())
            .memory(false)
            .store_timeout(Duration::from_secs(2))
            .build();
        let cached_value: Arc<Vec<u8>> = Arc::new(vec![b'x'; 1024]);
        let opts = EntryOptions::new().ttl(ttl);
        let _ = cache.set_with("k", (*cached_value).clone(), opts.clone()).await;
        println!("op,layer,tasks,ops_per_sec,errors");
        for &n in &tasks {
            let s = store.clone();
            let get = measure(n, duration, move |_| {
                let s = s.clone();
                async move {
                    matches!(s.get(StoreKey::new("bench", "k")).await, Ok(Some(v)) if v.len() == 1024)
                }
            })
            .await;
            println!("GET,store,{n},{:.0},{}", get.ops_per_sec, get.errors);
            let (s, v) = (store.clone(), value.clone());
            let set = measure(n, duration, move |t| {
                let (s, v) = (s.clone(), v.clone());
                async move {
                    let key = format!("k{}", t % 1000);
                    s.set(StoreKey::new("bench", &key), v, ttl).await.is_ok()
                }
            })
            .await;
            println!("SET,store,{n},{:.0},{}", set.ops_per_sec, set.errors);
            let c = cache.clone();
            let get = measure(n, duration, move |_| {
                let c = c.clone();
                async move { matches!(c.get::<Vec<u8>>("k").await, Ok(Some(v)) if v.len() == 1024) }
            })
            .await;
            println!("GET,cache,{n},{:.0},{}", get.ops_per_sec, get.errors);
            let (c, v, o) = (cache.clone(), cached_value.clone(), opts.clone());
            let set = measure(n, duration, move |t| {
                let (c, v, o) = (c.clone(), v.clone(), o.clone());
                async move {
                    let key = format!("c{}", t % 1000);
                    c.set_with(&key, (*v).clone(), o).await.is_ok()
                }
            })
            .await;
            println!("SET,cache,{n},{:.0},{}", set.ops_per_sec, set.errors);
        }
    });
}
