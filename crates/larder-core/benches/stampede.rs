//! 1,000 concurrent cold callers of one key: larder's `get_or_fetch` beside moka's coalescing
//! `get_with`, on a 2-worker tokio runtime. Each iteration uses a fresh key, spawns 1,000 tasks
//! that all ask for it, and waits for all of them; the factory yields once (a stand-in for I/O).
//!
//! Run: `cargo bench -p larder-core --bench stampede`

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use larder::Cache;

const CALLERS: usize = 1_000;

fn stampede(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("stampede_1000_callers");
    group.measurement_time(Duration::from_secs(6));
    group.sample_size(50);

    let larder = Cache::new();
    bench_stampede(&mut group, &rt, "larder_get_or_fetch", move |key, runs| {
        let cache = larder.clone();
        async move {
            let v = cache
                .get_or_fetch(&key, move || async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                    Ok::<u64, std::io::Error>(7)
                })
                .await;
            v.map(|v| *v).unwrap_or(0)
        }
    });

    let moka: moka::future::Cache<String, u64> = moka::future::Cache::new(1_000_000);
    bench_stampede(&mut group, &rt, "moka_get_with", move |key, runs| {
        let cache = moka.clone();
        async move {
            cache
                .get_with(key, async move {
                    runs.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                    7
                })
                .await
        }
    });
    group.finish();
}

/// Times `CALLERS` concurrent tasks calling `call(key, runs)` for one fresh key per iteration,
/// then checks that exactly one factory ran per key.
fn bench_stampede<F, Fut>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    rt: &tokio::runtime::Runtime,
    name: &str,
    call: F,
) where
    F: Fn(String, Arc<AtomicU64>) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = u64> + Send + 'static,
{
    let runs = Arc::new(AtomicU64::new(0));
    let next = AtomicU64::new(0);
    group.bench_function(name, |b| {
        b.to_async(rt).iter(|| {
            let key = format!("cold:{}", next.fetch_add(1, Ordering::Relaxed));
            let tasks: Vec<_> = (0..CALLERS)
                .map(|_| tokio::spawn(call.clone()(key.clone(), runs.clone())))
                .collect();
            async move {
                for t in tasks {
                    assert_eq!(t.await.unwrap(), 7);
                }
            }
        });
    });
    assert_eq!(
        runs.load(Ordering::Relaxed),
        next.load(Ordering::Relaxed),
        "{name}: one factory run per cold key"
    );
}

criterion_group!(benches, stampede);
criterion_main!(benches);
