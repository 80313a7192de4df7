//! Memory-tier hit cost: larder's `get` and `get_or_fetch` beside quick_cache's `get` and moka's
//! `future::Cache::get`, on the same keys and values, with 1 and 2 threads.
//!
//! Run: `cargo bench -p larder-core --bench memory_hit`
//!
//! Async calls that complete without waiting (every hit) are polled once with a no-op waker, the
//! same way for larder and moka, so the executor's cost is not part of either figure. Each reader
//! is pinned to a core of its own (`common::pin`).

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};

mod common;
use common::{SUBJECTS, Subjects, WORKING_SETS, pin};

fn hits(c: &mut Criterion) {
    for n in WORKING_SETS {
        hits_on(c, n);
    }
}

fn hits_on(c: &mut Criterion, n: usize) {
    let subjects = Arc::new(Subjects::new(n));
    let mut group = c.benchmark_group(format!("memory_hit_{n}_keys"));
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_secs(1));
    for threads in [1usize, 2] {
        for name in SUBJECTS {
            group.bench_with_input(
                BenchmarkId::new(name, format!("{threads}t")),
                &threads,
                |b, &threads| {
                    b.iter_custom(|iters| {
                        let iters = iters as usize;
                        let barrier = Arc::new(Barrier::new(threads + 1));
                        let workers: Vec<_> = (0..threads)
                            .map(|t| {
                                let (s, barrier) = (subjects.clone(), barrier.clone());
                                std::thread::spawn(move || {
                                    pin(threads, t);
                                    barrier.wait();
                                    let start = Instant::now();
                                    let found = s.run(name, t * 104_729, iters);
                                    assert_eq!(black_box(found), iters);
                                    start.elapsed()
                                })
                            })
                            .collect();
                        barrier.wait();
                        // The slowest thread's time: every thread did `iters` operations in it.
                        workers
                            .into_iter()
                            .map(|w| w.join().unwrap())
                            .max()
                            .unwrap()
                    });
                },
            );
        }
    }
    group.finish();
}

criterion_group!(benches, hits);
criterion_main!(benches);
