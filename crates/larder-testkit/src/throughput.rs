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
