//! Single-flight: concurrent cold callers share one factory run, its value or its error, and
//! survive the cancellation or panic of any of them.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use larder::{Cache, EntryOptions, FetchError};
use tokio::sync::Barrier;

fn counter() -> Arc<AtomicUsize> {
    Arc::new(AtomicUsize::new(0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_cold_callers_cause_one_factory_run() {
    let cache = Cache::new();
    let runs = counter();
    let barrier = Arc::new(Barrier::new(1000));
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let (cache, runs, barrier) = (cache.clone(), runs.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                cache
                    .get_or_fetch("cold", move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok::<_, std::io::Error>("value".to_string())
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        assert_eq!(*t.await.unwrap().unwrap(), "value");
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    let stats = cache.stats();
    assert_eq!(stats.factory_runs, 1);
    assert!(stats.coalesced_waiters >= 900, "{stats:?}");
    // And the value is now cached.
    assert_eq!(
        *cache.get::<String>("cold").await.unwrap().unwrap(),
        "value"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_reaches_every_waiter_and_is_not_cached() {
    let cache = Cache::new();
    let runs = counter();
    let tasks: Vec<_> = (0..50)
        .map(|_| {
            let (cache, runs) = (cache.clone(), runs.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch::<u32, _, _, _>("k", move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Err("upstream down".to_string())
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let err = t.await.unwrap().unwrap_err();
        assert_eq!(
            err.factory_error().map(String::as_str),
            Some("upstream down")
        );
    }
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(!cache.contains("k").await, "errors are not cached");
    // The next call runs the factory again and can succeed.
    let v = cache
        .get_or_fetch("k", || async { Ok::<_, String>(9u32) })
        .await
        .unwrap();
    assert_eq!(*v, 9);
    assert_eq!(cache.stats().factory_errors, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_the_first_caller_cancels_nobody_else() {
    let cache = Cache::new();
    let runs = counter();
    let factory = {
        let runs = runs.clone();
        move || async move {
            runs.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(200)).await;
            Ok::<_, std::io::Error>(42u64)
        }
    };
    let first = {
        let cache = cache.clone();
        let factory = factory.clone();
        tokio::spawn(async move { cache.get_or_fetch("k", factory).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    let second = {
        let cache = cache.clone();
        let factory = factory.clone();
        tokio::spawn(async move { cache.get_or_fetch("k", factory).await })
    };
    tokio::time::sleep(Duration::from_millis(30)).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());
    let got = tokio::time::timeout(Duration::from_secs(5), second)
        .await
        .expect("the second caller must not hang")
        .unwrap()
        .unwrap();
    assert_eq!(*got, 42);
    assert_eq!(
        runs.load(Ordering::SeqCst),
        1,
        "the fetch went on without its first caller"
    );
    assert!(cache.contains("k").await, "and its value was cached");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_caller_still_caches_the_value() {
    let cache = Cache::new();
    let fut = cache.get_or_fetch("k", || async {
        tokio::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, std::io::Error>(1u8)
    });
    // Poll once so the flight starts, then give up.
    assert!(
        tokio::time::timeout(Duration::from_millis(5), fut)
            .await
            .is_err()
    );
    tokio::time::sleep(Duration::from_millis(150)).await;
    assert_eq!(cache.get::<u8>("k").await.unwrap().as_deref(), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_factory_is_an_error_for_every_waiter_never_a_hang() {
    let cache = Cache::new();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let cache = cache.clone();
            tokio::spawn(async move {
                cache
                    .get_or_fetch::<u8, std::io::Error, _, _>("k", || async {
                        tokio::time::sleep(Duration::from_millis(30)).await;
                        panic!("factory blew up");
                    })
                    .await
            })
        })
        .collect();
    for t in tasks {
        let res = tokio::time::timeout(Duration::from_secs(5), t)
            .await
            .expect("no waiter hangs")
            .unwrap();
        match res {
            Err(FetchError::Panicked(msg)) => assert!(msg.contains("factory blew up")),
            other => panic!("expected Panicked, got {other:?}"),
        }
    }
    // The key is usable afterwards.
    let v = cache
        .get_or_fetch("k", || async { Ok::<_, std::io::Error>(3u8) })
        .await
        .unwrap();
    assert_eq!(*v, 3);
}

#[tokio::test]
async fn different_keys_do_not_coalesce() {
    let cache = Cache::new();
    let runs = counter();
    let mut tasks = Vec::new();
    for i in 0..10 {
        let (cache, runs) = (cache.clone(), runs.clone());
        tasks.push(tokio::spawn(async move {
            let key = larder::key!("item", i);
            cache
                .get_or_fetch(&key, move || async move {
                    runs.fetch_add(1, Ordering::SeqCst);
                    Ok::<_, std::io::Error>(i)
                })
                .await
                .map(|v| *v)
        }));
    }
    for (i, t) in tasks.into_iter().enumerate() {
        assert_eq!(t.await.unwrap().unwrap(), i);
    }
    assert_eq!(runs.load(Ordering::SeqCst), 10);
}

#[test]
fn works_without_a_tokio_runtime() {
    // No runtime: the caller drives the fetch itself instead of panicking.
    let cache = Cache::new();
    let v = futures::executor::block_on(
        cache.get_or_fetch("k", || async { Ok::<_, std::io::Error>(5u8) }),
    )
    .unwrap();
    assert_eq!(*v, 5);
    let hit = futures::executor::block_on(cache.get::<u8>("k")).unwrap();
    assert_eq!(hit.as_deref(), Some(&5));
}

#[test]
fn timeouts_and_a_remote_store_work_without_a_tokio_runtime() {
    // Outside tokio the timer cannot be armed: the options are ignored instead of panicking.
    let store = larder::InProcessStore::new();
    let cache = Cache::builder().remote(Arc::new(store)).build();
    let opts = EntryOptions::new()
        .hard_timeout(Duration::from_secs(1))
        .soft_timeout(Duration::from_millis(1));
    let v = futures::executor::block_on(
        cache.get_or_fetch_with("k", opts, || async { Ok::<_, std::io::Error>(6u8) }),
    )
    .unwrap();
    assert_eq!(*v, 6);
    assert!(futures::executor::block_on(cache.contains("k")));
}

#[tokio::test]
async fn a_set_or_delete_during_a_fetch_wins_over_the_fetched_value() {
    let cache = Cache::new();
    for action in ["set", "delete", "clear"] {
        let release = Arc::new(tokio::sync::Notify::new());
        let started = Arc::new(tokio::sync::Notify::new());
        let fetch = {
            let (cache, release, started) = (cache.clone(), release.clone(), started.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch("k", move || async move {
                        started.notify_one();
                        release.notified().await;
                        Ok::<_, ()>("fetched (old)".to_string())
                    })
                    .await
            })
        };
        started.notified().await;
        match action {
            "set" => cache.set("k", "written (new)".to_string()).await.unwrap(),
            "delete" => {
                cache.delete("k").await;
            }
            _ => cache.clear().await,
        }
        release.notify_one();
        let got = fetch.await.unwrap().unwrap();
        assert_eq!(
            *got, "fetched (old)",
            "waiters still get the fetch's result"
        );
        let now = cache.get::<String>("k").await.unwrap();
        let expected = (action == "set").then(|| "written (new)".to_string());
        assert_eq!(now.as_deref().cloned(), expected, "after {action}");
        cache.delete("k").await;
    }
}

/// An error nobody else shares reaches its caller by value (`E` is not `Clone` here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_nobody_joined_gets_its_error_by_value() {
    #[derive(Debug, PartialEq)]
    struct Gone(u32);
    async fn load(i: u32) -> Result<String, Gone> {
        tokio::task::yield_now().await;
        Err(Gone(i))
    }
    let cache = Cache::new();
    for i in 0..200 {
        let err = cache
            .get_or_fetch(&format!("k{i}"), move || load(i))
            .await
            .unwrap_err();
        assert_eq!(err.try_into_factory_error().unwrap(), Gone(i));
    }
}
