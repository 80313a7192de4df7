//! GET and SET operations per second with 1 KiB values through `MemcachedStore`, and beside it a
//! raw client loop (one connection per task, text protocol, no parsing beyond the reply's end) as
//! the peer, against the same server in the same run.
//!
//! Run by `scripts/bench-memcached.sh`:
//! `LARDER_BENCH_URL=memcached://127.0.0.1:PORT cargo bench -p larder-memcached --bench throughput`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use larder_memcached::MemcachedStore;
use larder_store::{Store, StoreKey};
use larder_testkit::{BenchEnv, measure};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

fn main() {
    let Some(env) = BenchEnv::from_env("scripts/bench-memcached.sh") else {
        return;
    };
    let (url, duration, tasks) = (env.url.clone(), env.duration, env.tasks.clone());
    // The store's own default unless LARDER_BENCH_POOL says otherwise.
    let pool: Option<usize> = std::env::var("LARDER_BENCH_POOL")
        .ok()
        .and_then(|s| s.parse().ok());
    let addr = url
        .trim_start_matches("memcached://")
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned();
    env.run(async move {
        let builder = MemcachedStore::builder(&url);
        let builder = match pool {
            Some(n) => builder.pool_size(n),
            None => builder,
        };
        let pool = pool.map_or("default".to_owned(), |n| n.to_string());
        let store = match builder.build() {
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
        println!("op,client,tasks,ops_per_sec,errors");
        for &n in &tasks {
            let s = store.clone();
            let get = measure(n, duration, move |_| {
                let s = s.clone();
                async move {
                    matches!(s.get(StoreKey::new("bench", "k")).await, Ok(Some(v)) if v.len() == 1024)
                }
            })
            .await;
            println!("GET,larder(pool={pool}),{n},{:.0},{}", get.ops_per_sec, get.errors);
            let (s, v) = (store.clone(), value.clone());
            let set = measure(n, duration, move |t| {
                let (s, v) = (s.clone(), v.clone());
                async move {
                    let key = format!("k{}", t % 1000);
                    s.set(StoreKey::new("bench", &key), v, ttl).await.is_ok()
                }
            })
            .await;
            println!("SET,larder(pool={pool}),{n},{:.0},{}", set.ops_per_sec, set.errors);

            let conns = Arc::new(raw_connections(&addr, n).await);
            let c = conns.clone();
            let get = measure(n, duration, move |t| {
                let c = c.clone();
                async move { raw_get(&mut *c[t].lock().await).await }
            })
            .await;
            println!("GET,raw(conns={n}),{n},{:.0},{}", get.ops_per_sec, get.errors);
            let c = conns.clone();
            let set = measure(n, duration, move |t| {
                let c = c.clone();
                async move { raw_set(&mut *c[t].lock().await, t).await }
            })
            .await;
            println!("SET,raw(conns={n}),{n},{:.0},{}", set.ops_per_sec, set.errors);
        }
    });
}

type Conn = BufReader<TcpStream>;

async fn raw_connections(addr: &str, n: usize) -> Vec<Mutex<Conn>> {
    let mut conns = Vec::with_capacity(n);
    for _ in 0..n {
        match TcpStream::connect(addr).await {
            Ok(s) => {
                let _ = s.set_nodelay(true);
                conns.push(Mutex::new(BufReader::new(s)));
            }
            Err(e) => {
                eprintln!("raw client cannot connect to {addr}: {e}");
                std::process::exit(1);
            }
        }
    }
    // The raw client reads the key larder wrote, header and all: the same 1 KiB + 8 bytes.
    conns
}

async fn raw_get(conn: &mut Conn) -> bool {
    if conn
        .get_mut()
        .write_all(b"get larder:bench:k\r\n")
        .await
        .is_err()
    {
        return false;
    }
    let mut header = String::new();
    if conn.read_line(&mut header).await.is_err() {
        return false;
    }
    let Some(len) = header
        .trim_end()
        .rsplit(' ')
        .next()
        .and_then(|n| n.parse::<usize>().ok())
    else {
        return false;
    };
    // data, \r\n, END\r\n
    let mut rest = vec![0; len + 2 + 5];
    conn.read_exact(&mut rest).await.is_ok() && len >= 1024
}

async fn raw_set(conn: &mut Conn, task: usize) -> bool {
    let mut request = format!("set raw:{} 0 600 1024\r\n", task % 1000).into_bytes();
    request.extend_from_slice(&[b'x'; 1024]);
    request.extend_from_slice(b"\r\n");
    if conn.get_mut().write_all(&request).await.is_err() {
        return false;
    }
    let mut line = String::new();
    conn.read_line(&mut line).await.is_ok() && line == "STORED\r\n"
}
