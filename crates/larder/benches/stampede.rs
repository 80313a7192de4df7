//! 1,000 concurrent cold callers of one key: larder's `get_or_fetch` beside moka's coalescing
//! `get_with`, on a 2-worker tokio runtime. Each iteration uses a fresh key, spawns 1,000 tasks
//! that all ask for it, and waits for all of them; the factory yields once (a stand-in for I/O).
//!
//! Run: `cargo bench -p larder --bench stampede`

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use larder::{Cache, EntryOptions};

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
    let runs = Arc::new(AtomicU64::new(0));
    let next = AtomicU64::new(0);
    group.bench_function("larder_get_or_fetch", |b| {
        b.to_async(&rt).iter(|| {
            let key = format!("cold:{}", next.fetch_add(1, Ordering::Relaxed));
            let (cache, runs) = (larder.clone(), runs.clone());
            async move {
                let tasks: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        let (cache, runs, key) = (cache.clone(), runs.clone(), key.clone());
                        tokio::spawn(async move {
                            cache
                                .get_or_fetch(&key, EntryOptions::new(), move || async move {
                                    runs.fetch_add(1, Ordering::Relaxed);
                                    tokio::task::yield_now().await;
                                    Ok::<u64, std::io::Error>(7)
                                })
                                .await
                                .map(|v| *v)
                        })
                    })
                    .collect();
                for t in tasks {
                    assert_eq!(t.await.unwrap().unwrap(), 7);
                }
            }
        });
    });
    let iterations = next.load(Ordering::Relaxed);
    assert_eq!(
        runs.load(Ordering::Relaxed),
        iterations,
        "one factory run per cold key"
    );

    let moka: moka::future::Cache<String, u64> = moka::future::Cache::new(1_000_000);
    let runs = Arc::new(AtomicU64::new(0));
    let next = AtomicU64::new(0);
    group.bench_function("moka_get_with", |b| {
        b.to_async(&rt).iter(|| {
            let key = format!("cold:{}", next.fetch_add(1, Ordering::Relaxed));
            let (cache, runs) = (moka.clone(), runs.clone());
            async move {
                let tasks: Vec<_> = (0..CALLERS)
                    .map(|_| {
                        let (cache, runs, key) = (cache.clone(), runs.clone(), key.clone());
                        tokio::spawn(async move {
                            cache
                                .get_with(key, async move {
                                    runs.fetch_add(1, Ordering::Relaxed);
                                    tokio::task::yield_now().await;
                                    7
                                })
                                .await
                        })
                    })
                    .collect();
                for t in tasks {
                    assert_eq!(t.await.unwrap(), 7);
                }
            }
        });
    });
    assert_eq!(runs.load(Ordering::Relaxed), next.load(Ordering::Relaxed));
    group.finish();
}

criterion_group!(benches, stampede);
criterion_main!(benches);
