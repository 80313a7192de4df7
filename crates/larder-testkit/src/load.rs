//! A steady run of concurrent `get_or_fetch` calls against a cache, to break its store under and
//! count what the callers felt.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use larder::{Cache, EntryOptions};
use tokio::task::JoinHandle;

/// Callers running until [`Load::stop`].
#[derive(Debug)]
pub struct Load {
    stop: Arc<AtomicBool>,
    calls: Arc<AtomicU64>,
    failures: Arc<AtomicU64>,
    wrong: Arc<AtomicU64>,
    tasks: Vec<JoinHandle<Option<String>>>,
}

/// What the callers saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadReport {
    /// Calls made.
    pub calls: u64,
    /// Calls that returned an error.
    pub failures: u64,
    /// Calls that returned another key's value.
    pub wrong_values: u64,
    /// The first error, if any.
    pub first_failure: Option<String>,
}

impl Load {
    /// Starts `tasks` callers, each calling `get_or_fetch` in turn over `keys` keys whose entries
    /// live `ttl` (short, so the store keeps being read and written). The factory answers at once
    /// with a value made from the key, which the callers check.
    pub fn start(cache: &Cache, tasks: usize, keys: usize, ttl: Duration) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let wrong = Arc::new(AtomicU64::new(0));
        let handles = (0..tasks)
            .map(|t| {
                let (cache, stop) = (cache.clone(), stop.clone());
                let (calls, failures, wrong) = (calls.clone(), failures.clone(), wrong.clone());
                tokio::spawn(async move {
                    let mut first = None;
                    let mut i = t;
                    while !stop.load(Relaxed) {
                        let key = format!("load-{}", i % keys.max(1));
                        i += 1;
                        let expected = format!("value of {key}");
                        let made = expected.clone();
                        let opts = EntryOptions::new().ttl(ttl);
                        let result = cache
                            .get_or_fetch_with(&key, opts, move || async move {
                                Ok::<_, std::io::Error>(made)
                            })
                            .await;
                        calls.fetch_add(1, Relaxed);
                        match result {
                            Ok(v) if *v == expected => {}
                            Ok(_) => {
                                wrong.fetch_add(1, Relaxed);
                            }
                            Err(e) => {
                                failures.fetch_add(1, Relaxed);
                                first.get_or_insert_with(|| e.to_string());
                            }
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                    }
                    first
                })
            })
            .collect();
        Self {
            stop,
            calls,
            failures,
            wrong,
            tasks: handles,
        }
    }

    /// Calls made so far.
    pub fn calls(&self) -> u64 {
        self.calls.load(Relaxed)
    }

    /// Stops the callers and reports. A caller task that panicked counts as a failure.
    pub async fn stop(self) -> LoadReport {
        self.stop.store(true, Relaxed);
        let mut first_failure = None;
        let mut panicked = 0;
        for task in self.tasks {
            match task.await {
                Ok(first) => {
                    if first_failure.is_none() {
                        first_failure = first;
                    }
                }
                Err(e) => {
                    panicked += 1;
                    first_failure.get_or_insert_with(|| e.to_string());
                }
            }
        }
        LoadReport {
            calls: self.calls.load(Relaxed),
            failures: self.failures.load(Relaxed) + panicked,
            wrong_values: self.wrong.load(Relaxed),
            first_failure,
        }
    }
}
