//! `get_or_compute`, the blocking read path: single-flight across threads, fail-safe, panics,
//! and the cases where blocking would deadlock (its own key, a flight a task runs).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use larder::{Cache, EntryOptions, FetchError};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_computed_value_is_cached() {
    let cache = Cache::new();
    let runs = AtomicUsize::new(0);
    for _ in 0..3 {
        let v = cache
            .get_or_compute("k", || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(42u32)
            })
            .unwrap();
        assert_eq!(*v, 42);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!((stats.hits, stats.misses, stats.factory_runs), (2, 1, 1));
}

#[test]
fn concurrent_threads_on_one_cold_key_share_one_run() {
    let cache = Cache::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (cache, runs, start) = (cache.clone(), runs.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                cache
                    .get_or_compute("cold", || {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(ms(200));
                        Ok::<_, String>("computed".to_string())
                    })
                    .unwrap()
            })
        })
        .collect();
    for t in threads {
        assert_eq!(*t.join().unwrap(), "computed");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert_eq!(cache.stats().coalesced_waiters, 7);
}

#[test]
fn an_error_reaches_every_waiter_and_is_not_cached() {
    let cache = Cache::new();
    let start = Arc::new(Barrier::new(4));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (cache, start) = (cache.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                cache.get_or_compute::<u8, String, _>("k", || {
                    std::thread::sleep(ms(100));
                    Err("bad input".into())
                })
            })
        })
        .collect();
    for t in threads {
        match t.join().unwrap() {
            Err(FetchError::Factory(e)) => assert_eq!(*e, "bad input"),
            other => panic!("expected the factory's error, got {other:?}"),
        }
    }
    let v = cache.get_or_compute("k", || Ok::<_, String>(1u8)).unwrap();
    assert_eq!(*v, 1, "the error was not cached");
}

#[test]
fn a_panic_is_an_error_for_every_waiter_never_a_hang() {
    let cache = Cache::new();
    let start = Arc::new(Barrier::new(3));
    let threads: Vec<_> = (0..3)
        .map(|_| {
            let (cache, start) = (cache.clone(), start.clone());
            std::thread::spawn(move || {
                start.wait();
                cache.get_or_compute::<u8, String, _>("k", || {
                    std::thread::sleep(ms(100));
                    panic!("boom")
                })
            })
        })
        .collect();
    for t in threads {
        assert!(matches!(t.join().unwrap(), Err(FetchError::Panicked(m)) if m.contains("boom")));
    }
}

#[test]
fn fail_safe_serves_the_stale_value_and_throttles() {
    let cache = Cache::new();
    let opts = EntryOptions::new()
        .ttl(ms(50))
        .stale(Duration::from_secs(60))
        .fail_safe_throttle(Duration::from_secs(60));
    cache
        .get_or_compute_with("k", opts.clone(), || Ok::<_, String>("old".to_string()))
        .unwrap();
    std::thread::sleep(ms(150));
    let v = cache
        .get_or_compute_with::<String, String, _>("k", opts.clone(), || Err("down".into()))
        .unwrap();
    assert_eq!(*v, "old");
    // Throttled: the next call does not run the work.
    let v = cache
        .get_or_compute_with::<String, String, _>("k", opts, || unreachable!("throttled"))
        .unwrap();
    assert_eq!(*v, "old");
    assert_eq!(cache.stats().stale_served, 2);
}

#[test]
fn work_that_asks_for_its_own_key_runs_instead_of_deadlocking() {
    let cache = Cache::new();
    let v = cache
        .get_or_compute("k", || {
            let inner = cache
                .get_or_compute("k", || Ok::<_, String>(1u32))
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(*inner + 1)
        })
        .unwrap();
    assert_eq!(*v, 2);
}

#[tokio::test(flavor = "current_thread")]
async fn on_a_current_thread_runtime_it_never_waits_for_a_task_run_flight() {
    let cache = Cache::new();
    // An async fetch of "k" is in flight, run by a task of this very runtime...
    let fetching = {
        let cache = cache.clone();
        tokio::spawn(async move {
            cache
                .get_or_fetch("k", || async {
                    tokio::time::sleep(ms(100)).await;
                    Ok::<_, String>("async".to_string())
                })
                .await
                .unwrap()
        })
    };
    tokio::task::yield_now().await; // let the task start its flight
    // ...so blocking on it here would stall the runtime forever; the work runs here instead.
    let v = cache
        .get_or_compute("k", || Ok::<_, String>("sync".to_string()))
        .unwrap();
    assert_eq!(*v, "sync");
    assert_eq!(*fetching.await.unwrap(), "async");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_async_caller_joins_a_run_another_thread_leads() {
    let cache = Cache::new();
    let runs = Arc::new(AtomicUsize::new(0));
    let leader = {
        let (cache, runs) = (cache.clone(), runs.clone());
        std::thread::spawn(move || {
            cache
                .get_or_compute("k", || {
                    runs.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(ms(300));
                    Ok::<_, String>("from the thread".to_string())
                })
                .unwrap()
        })
    };
    tokio::time::sleep(ms(100)).await;
    let v = cache
        .get_or_fetch("k", || async {
            Ok::<_, String>("from the task".to_string())
        })
        .await
        .unwrap();
    assert_eq!(*v, "from the thread");
    assert_eq!(*leader.join().unwrap(), "from the thread");
    assert_eq!(runs.load(Ordering::SeqCst), 1);
}

#[test]
fn without_a_memory_tier_every_call_runs_the_work() {
    let store = larder::InProcessStore::new();
    let cache = Cache::builder()
        .remote(Arc::new(store))
        .memory(false)
        .build();
    let runs = AtomicUsize::new(0);
    for _ in 0..2 {
        cache
            .get_or_compute("k", || {
                runs.fetch_add(1, Ordering::SeqCst);
                Ok::<_, String>(1u8)
            })
            .unwrap();
    }
    assert_eq!(runs.load(Ordering::SeqCst), 2);
}
