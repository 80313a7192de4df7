//! Resilience, written once for every read path: the call of the source under the hard timeout
//! (counted where it is made), the soft-timeout race with a stale value at hand, and the
//! fail-safe throttle's marks. `get_or_fetch`'s flights use them (fetch.rs), and so do
//! larder-http's fills, through [`larder::engine`](crate::engine).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::cache::Cache;
use crate::clock;
use crate::stats::Counter;

/// Why a call of the source gave no value: [`call_source`]'s error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceFailed<E> {
    /// The source answered with this error.
    Error(E),
    /// The source did not answer within the hard timeout, which is given.
    TimedOut(Duration),
}

/// Calls the source for the cache: counted in the cache's [`Stats`](crate::Stats) as a factory
/// run, and as a factory error when it fails or runs past `hard_timeout` (then it is dropped,
/// and [`SourceFailed::TimedOut`] is the answer). `get_or_fetch`'s flights call their factory
/// through it; larder-http calls its origin through it, with a 5xx response as the error.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use larder::{Cache, engine::{SourceFailed, call_source}};
///
/// let cache = Cache::new();
/// let slow = async { tokio::time::sleep(Duration::from_secs(60)).await; Ok::<u8, ()>(1) };
/// let got = call_source(&cache, Some(Duration::from_millis(10)), slow).await;
/// assert_eq!(got, Err(SourceFailed::TimedOut(Duration::from_millis(10))));
/// assert_eq!((cache.stats().factory_runs, cache.stats().factory_errors), (1, 1));
/// # }
/// ```
pub async fn call_source<T, E, F>(
    cache: &Cache,
    hard_timeout: Option<Duration>,
    call: F,
) -> Result<T, SourceFailed<E>>
where
    F: Future<Output = Result<T, E>>,
{
    let stats = &cache.inner.stats;
    stats.incr(Counter::FactoryRun);
    let result = match hard_timeout {
        Some(limit) => match clock::timeout(limit, call).await {
            Ok(result) => result.map_err(SourceFailed::Error),
            Err(()) => Err(SourceFailed::TimedOut(limit)),
        },
        None => call.await.map_err(SourceFailed::Error),
    };
    if result.is_err() {
        stats.incr(Counter::FactoryError);
    }
    result
}

/// What a wait under a soft timeout gave: see [`within_soft_timeout`].
#[derive(Debug, PartialEq, Eq)]
pub enum Raced<T, S> {
    /// The work finished in time (or there was no race to run).
    Done(T),
    /// The soft timeout passed first: the stand-in answers, and the work was let go (a caller
    /// that wants it to finish runs it in a task of its own and races the task's handle).
    StoodIn(S),
}

/// Waits for `work`; when there is a soft timeout *and* a stale value that may stand in, no
/// longer than the soft timeout, and then the stand-in answers. Without either, it simply waits.
/// Every read path races this way: `get_or_fetch`'s callers on their flight, larder-http's
/// leaders on their fetch and its followers on the recording they read.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::time::Duration;
/// use larder::engine::{Raced, within_soft_timeout};
///
/// let slow = tokio::time::sleep(Duration::from_secs(60));
/// let soft = Some(Duration::from_millis(10));
/// assert_eq!(within_soft_timeout(soft, Some("stale"), slow).await, Raced::StoodIn("stale"));
/// assert_eq!(within_soft_timeout(soft, None::<&str>, async { 7 }).await, Raced::Done(7));
/// # }
/// ```
pub async fn within_soft_timeout<F: Future, S>(
    soft_timeout: Option<Duration>,
    stand_in: Option<S>,
    work: F,
) -> Raced<F::Output, S> {
    match (soft_timeout, stand_in) {
        (Some(soft), Some(stand_in)) => match clock::timeout(soft, work).await {
            Ok(done) => Raced::Done(done),
            Err(()) => Raced::StoodIn(stand_in),
        },
        _ => Raced::Done(work.await),
    }
}

/// Marks `stand_in`, a stale value of `key` (in `cache`'s namespace) that just answered for
/// its failing source, in the cache's one fail-safe map for `period`: until then,
/// [`standing_in`] says so, and `get_or_fetch` serves it without calling the source. A write of
/// the key ends it (the value written is not the one marked).
///
/// ```
/// use std::{sync::Arc, time::Duration};
/// use larder::{Cache, engine};
///
/// let cache = Cache::new();
/// let stale = Arc::new("yesterday's page");
/// engine::stood_in(&cache, "/news", &stale, Duration::from_secs(30));
/// assert!(engine::standing_in(&cache, "/news", &stale));
/// assert!(!engine::standing_in(&cache, "/news", &Arc::new("another value")));
/// ```
pub fn stood_in<T>(cache: &Cache, key: &str, stand_in: &Arc<T>, period: Duration) {
    if period.is_zero() {
        return;
    }
    let now = clock::now_nanos();
    let ns = cache.defaults.namespace.as_bytes();
    (cache.inner.failing).mark(
        ns,
        key.as_bytes(),
        addr(stand_in),
        clock::deadline(now, period),
        now,
    );
}

/// Whether `stand_in` answers for `key`'s failing source now (see [`stood_in`]).
pub fn standing_in<T>(cache: &Cache, key: &str, stand_in: &Arc<T>) -> bool {
    let ns = cache.defaults.namespace.as_bytes();
    (cache.inner.failing).holds(ns, key.as_bytes(), addr(stand_in), clock::now_nanos())
}

fn addr<T>(value: &Arc<T>) -> usize {
    Arc::as_ptr(value).cast::<()>() as usize
}
