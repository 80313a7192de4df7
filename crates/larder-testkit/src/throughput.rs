//! Operations per second of an async operation run by many tasks at once, for the store
//! benchmarks (`scripts/bench-redis.sh`, `scripts/bench-memcached.sh`).

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

/// What a throughput run measured.
#[derive(Debug, Clone, Copy)]
pub struct Throughput {
    /// Successful operations per second.
    pub ops_per_sec: f64,
    /// Operations that failed.
    pub errors: u64,
}

/// Runs `op` in `tasks` concurrent tasks, each calling it again as soon as it returns, for
/// `duration` after a warm-up of a fifth of that; `op(task)` returns whether it succeeded.
pub async fn measure<F, Fut>(tasks: usize, duration: Duration, op: F) -> Throughput
where
    F: Fn(usize) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = bool> + Send,
{
    let counting = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let ok = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..tasks)
        .map(|t| {
            let op = op.clone();
            let (counting, stop) = (counting.clone(), stop.clone());
            let (ok, errors) = (ok.clone(), errors.clone());
            tokio::spawn(async move {
                while !stop.load(Relaxed) {
                    let success = op(t).await;
                    if counting.load(Relaxed) {
                        if success {
                            ok.fetch_add(1, Relaxed);
                        } else {
                            errors.fetch_add(1, Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(duration / 5).await;
    counting.store(true, Relaxed);
    let started = Instant::now();
    tokio::time::sleep(duration).await;
    counting.store(false, Relaxed);
    let elapsed = started.elapsed();
    stop.store(true, Relaxed);
    for h in handles {
        let _ = h.await;
    }
    Throughput {
        ops_per_sec: ok.load(Relaxed) as f64 / elapsed.as_secs_f64(),
        errors: errors.load(Relaxed),
    }
}

/// What a store benchmark binary reads from its environment, as set by `scripts/bench-*.sh`.
#[derive(Debug, Clone)]
pub struct BenchEnv {
    /// `LARDER_BENCH_URL`: the server to measure.
    pub url: String,
    /// `LARDER_BENCH_SECS` (default 5): how long each measurement runs.
    pub duration: Duration,
    /// `LARDER_BENCH_TASKS` (default `1,50,500`): the task counts to measure at.
    pub tasks: Vec<usize>,
}

impl BenchEnv {
    /// The settings, or `None` (with a line on stderr naming `script`) when no URL is set, as
    /// under a plain `cargo bench`.
    pub fn from_env(script: &str) -> Option<Self> {
        let Ok(url) = std::env::var("LARDER_BENCH_URL") else {
            eprintln!("set LARDER_BENCH_URL ({script} does); skipping");
            return None;
        };
        let secs: f64 = std::env::var("LARDER_BENCH_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .filter(|s: &f64| s.is_finite() && *s > 0.0)
            .unwrap_or(5.0);
        let tasks = std::env::var("LARDER_BENCH_TASKS")
            .unwrap_or_else(|_| "1,50,500".into())
            .split(',')
            .filter_map(|t| t.trim().parse().ok())
            .collect();
        Some(Self {
            url,
            duration: Duration::from_secs_f64(secs),
            tasks,
        })
    }

    /// Runs `bench` on a multi-thread tokio runtime, exiting with a message if none can start.
    pub fn run<F: Future<Output = ()>>(&self, bench: F) {
        match tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(bench),
            Err(e) => {
                eprintln!("cannot start a runtime: {e}");
                std::process::exit(1);
            }
        }
    }
}
