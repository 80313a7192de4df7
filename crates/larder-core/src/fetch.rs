//! `get_or_fetch`: the one read path that ties the tiers, single-flight, timeouts, fail-safe and
//! eager refresh together.
//!
//! ```text
//! memory fresh            -> value (past the eager-refresh point: start one background refresh)
//! memory stale, marked    -> value (the fail-safe throttle: it stands in for a failing source)
//! otherwise               -> join the flight for the key (start it if none)
//!   flight task:             remote fresh? -> fill memory, value
//!                            call_source: the factory under the hard timeout, counted
//!       Ok(v)             -> write memory (+ remote), v
//!       Err/timeout/panic -> stale value if one is within its window (fail-safe: marked in
//!                            the one map for the throttle), else the error
//!   caller: within_soft_timeout (with a stale value at hand, the stale value once the soft
//!           timeout passes, while the flight finishes in the background)
//! ```
//!
//! larder-http's fills (and so larder-proxy's and the Python ASGI middleware's) run on the same
//! pieces, through `larder::engine`:
//!
//! ```text
//! the flight             Flights, the one registry: a fill is a flight whose value is
//!                        published when it starts (`Cache::join_fill`, fill.rs), the
//!                        recording that concurrent requests follow as it grows; writes,
//!                        deletes, clears and tag invalidations (here or via the backplane)
//!                        supersede fills as they do fetches. Joining counts a coalesced
//!                        waiter; `join_fill_early` counts an eager refresh
//! the distributed lock   lock.rs, public as `Cache::lock_key`
//! the hard timeout       `call_source` (resilience.rs): the origin called under the response
//!                        timeout, a run counted, a failure (5xx, error, timeout) counted
//! the soft timeout       `within_soft_timeout`: a leader races its fetch task, a follower the
//!                        recording it reads
//! the fail-safe throttle the one map (failing.rs): `stood_in` marks the stale response that
//!                        answered for a failing origin, `standing_in` asks
//! ```
//!
//! What stays in larder-http, because RFC 9111 decides it and this path does not: whether a
//! stale response may stand in at all (`must-revalidate` forbids it whatever the window; the
//! windows are the response's `stale-if-error` / `stale-while-revalidate` or the rule's), and
//! so the one count it makes itself, a stale response served (`engine::served_stale`).

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use futures::FutureExt;
use futures::future::BoxFuture;

use crate::cache::{Cache, CacheValue, downcast};
use crate::clock;
use crate::error::{ErrorKind, FetchError};
use crate::flight::{Join, Led, Outcome, Source, Ticket, panic_message, spawn_or_inline};
use crate::future::GetOrFetch;
use crate::lock::LockWait;
use crate::memory::{AnyValue, Entry, Lookup};
use crate::options::{EntryOptions, Resolved, valid_fraction};
use crate::remote::RemoteLookup;
use crate::resilience::{Raced, SourceFailed, call_source, within_soft_timeout};
use crate::stats::Counter;

/// Why a flight runs: a caller needs the value, or a hit asked for an early refresh.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Miss,
    Refresh,
}

/// A stale value a caller or the flight can fall back on, with the end of its window.
#[derive(Clone)]
pub(crate) struct Fallback {
    pub(crate) value: AnyValue,
    pub(crate) stale_until: u64,
}

impl Fallback {
    /// The fallback an entry past its ttl offers.
    pub(crate) fn from_stale(entry: Entry) -> Self {
        Self {
            stale_until: entry.stale_until(),
            value: entry.value(),
        }
    }

    fn usable(&self) -> bool {
        clock::now_nanos() < self.stale_until
    }
}

impl Cache {
    /// Returns the fresh value under `key`, or runs `factory` to produce it — once, however many
    /// callers ask for the same cold key at the same time — with the cache's default options
    /// ([`CacheBuilder::default_options`](crate::CacheBuilder::default_options)).
    ///
    /// - The factory runs in a task of its own: a caller that gives up (its future is dropped)
    ///   cancels nobody else's result, and the value is still cached.
    /// - An `Err` (or a panic, or the hard timeout) reaches every waiter and is not cached; with a
    ///   stale value inside its window, that value is served instead (fail-safe).
    /// - With a soft timeout and a stale value at hand, a slow factory is left to finish in the
    ///   background while the caller gets the stale value.
    /// - With eager refresh, a hit late in the entry's ttl starts one background refresh.
    ///
    /// Options for this call alone: [`get_or_fetch_with`](Cache::get_or_fetch_with).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use larder::Cache;
    ///
    /// async fn load_user(id: u64) -> Result<String, std::io::Error> {
    ///     Ok(format!("user {id}")) // a database read
    /// }
    ///
    /// let cache = Cache::new();
    /// let user = cache.get_or_fetch("user:7", || load_user(7)).await.unwrap();
    /// assert_eq!(*user, "user 7");
    /// # }
    /// ```
    #[inline]
    pub fn get_or_fetch<'a, T, E, F, Fut>(
        &'a self,
        key: &'a str,
        factory: F,
    ) -> GetOrFetch<'a, T, E>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        self.get_or_fetch_with(key, EntryOptions::new(), factory)
    }

    /// [`get_or_fetch`](Cache::get_or_fetch) with options for this call: `opts` override the
    /// handle's defaults field by field.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use larder::{Cache, EntryOptions, FetchError};
    ///
    /// async fn forecast(city: &str) -> Result<String, String> {
    ///     if city == "Atlantis" { Err("upstream down".into()) } else { Ok(format!("sun in {city}")) }
    /// }
    ///
    /// let cache = Cache::new();
    /// let opts = EntryOptions::new()
    ///     .ttl(Duration::from_secs(60))
    ///     .stale(Duration::from_secs(600))
    ///     .hard_timeout(Duration::from_secs(2));
    /// let v = cache.get_or_fetch_with("Berlin", opts.clone(), || forecast("Berlin")).await;
    /// assert_eq!(*v.unwrap(), "sun in Berlin");
    ///
    /// let err = cache.get_or_fetch_with("Atlantis", opts, || forecast("Atlantis")).await.unwrap_err();
    /// assert!(matches!(err, FetchError::Factory(_)));
    /// # }
    /// ```
    #[inline]
    pub fn get_or_fetch_with<'a, T, E, F, Fut>(
        &'a self,
        key: &'a str,
        opts: EntryOptions,
        factory: F,
    ) -> GetOrFetch<'a, T, E>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        // A fresh memory hit is answered synchronously; everything else runs in one boxed state
        // machine, which a hit never builds.
        let ns = opts.namespace.as_ref().unwrap_or(&self.defaults.namespace);
        let eager = match opts.eager_refresh {
            Some(f) => valid_fraction(f),
            None => self.defaults.eager_refresh,
        };
        // Without eager refresh a hit needs only the value: `get`'s own path, which hands it over
        // in registers. Anything else (a refresh to judge, a stale fallback) takes the full lookup.
        if eager.is_none()
            && let Some(mem) = &self.inner.memory
            && let Some(value) = mem.fresh(ns, key)
        {
            return GetOrFetch::ready(downcast(value, key));
        }
        self.get_or_fetch_slow(key, opts, eager, factory)
    }

    /// The hit with eager refresh, and every miss. Out of line, so that a plain hit's frame stays
    /// small; the miss path's state machine is built here.
    #[inline(never)]
    fn get_or_fetch_slow<'a, T, E, F, Fut>(
        &'a self,
        key: &'a str,
        opts: EntryOptions,
        eager: Option<f64>,
        factory: F,
    ) -> GetOrFetch<'a, T, E>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let ns = opts.namespace.as_ref().unwrap_or(&self.defaults.namespace);
        let mut fallback = None;
        if let Some(mem) = &self.inner.memory {
            match mem.lookup_now(ns, key) {
                Lookup::Fresh(entry) => {
                    self.inner.stats.incr(Counter::Hit);
                    if let Some(fraction) = eager
                        && entry.wants_refresh(fraction)
                    {
                        self.refresh_in_background(key, &opts, factory);
                    }
                    return GetOrFetch::ready(downcast(mem.serve(entry), key));
                }
                Lookup::Stale(entry) => fallback = Some(Fallback::from_stale(entry)),
                Lookup::Miss => {}
            }
        }
        GetOrFetch::running(self.fetch(key, opts, fallback, factory).boxed())
    }

    /// The miss path: join (or start) the flight and wait for it, with this caller's fallback.
    async fn fetch<T, E, F, Fut>(
        &self,
        key: &str,
        opts: EntryOptions,
        fallback: Option<Fallback>,
        factory: F,
    ) -> Result<Arc<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let opts = opts.or(&self.defaults);
        let (shared, inline) = match self.inner.flights.join(&opts.namespace, key, Led::ByTask) {
            Join::Leader(ticket, shared) => {
                let task = self.fetch_task(
                    ticket,
                    key,
                    opts.clone(),
                    fallback.clone(),
                    factory,
                    Kind::Miss,
                );
                (shared, spawn_or_inline(task))
            }
            Join::Follower(shared, _) => {
                self.inner.stats.incr(Counter::Coalesced);
                (shared, None)
            }
        };
        if let Some(task) = inline {
            // No tokio runtime: the caller drives the fetch itself.
            task.await;
        }
        let outcome = match within_soft_timeout(opts.soft_timeout, fallback.clone(), shared).await {
            Raced::Done(outcome) => outcome,
            Raced::StoodIn(stale) => Outcome::Value {
                value: stale.value,
                source: Source::Stale,
            },
        };
        self.resolve(key, outcome, fallback)
    }

    /// Starts one background refresh of `key` unless a fetch for it is already running.
    fn refresh_in_background<T, E, F, Fut>(&self, key: &str, opts: &EntryOptions, factory: F)
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let opts = opts.or(&self.defaults);
        if let Join::Leader(ticket, _) = self.inner.flights.join(&opts.namespace, key, Led::ByTask)
        {
            self.inner.stats.incr(Counter::EagerRefresh);
            let task = self.fetch_task(ticket, key, opts, None, factory, Kind::Refresh);
            // Outside a runtime there is nothing to run it on; dropping the task unregisters it.
            drop(spawn_or_inline(task));
        }
    }

    /// After a failed factory run: the stale value if one is still usable, else the failure. A
    /// stale value served this way is marked in the cache's one fail-safe map (`failing.rs`), so
    /// the callers that follow get it from memory at once, as if fresh, instead of each waiting
    /// on the failing source; unless a newer write or delete `superseded` the run.
    pub(crate) fn fail_safe(
        &self,
        opts: &Resolved,
        key: &str,
        fallback: Option<Fallback>,
        failure: Outcome,
        superseded: bool,
    ) -> Outcome {
        let Some(stale) = fallback.filter(Fallback::usable) else {
            return failure;
        };
        if !superseded && !opts.fail_safe_throttle.is_zero() {
            let now = clock::now_nanos();
            // Never past the value's own stale window.
            let until = clock::deadline(now, opts.fail_safe_throttle).min(stale.stale_until);
            let (ns, key) = (opts.namespace.as_bytes(), key.as_bytes());
            (self.inner.failing).mark(ns, key, stale.value.addr(), until, now);
        }
        Outcome::Value {
            value: stale.value,
            source: Source::Stale,
        }
    }

    /// Turns the flight's outcome into this caller's answer, applying its own fallback.
    pub(crate) fn resolve<T: CacheValue, E: Send + Sync + 'static>(
        &self,
        key: &str,
        outcome: Outcome,
        fallback: Option<Fallback>,
    ) -> Result<Arc<T>, FetchError<E>> {
        let stats = &self.inner.stats;
        let failure = match outcome {
            Outcome::Value { value, source } => {
                stats.incr(match source {
                    Source::Memory | Source::Remote => Counter::Hit,
                    Source::Factory | Source::Stale => Counter::Miss,
                });
                if source == Source::Stale {
                    stats.incr(Counter::StaleServed);
                }
                return downcast(value, key).map_err(FetchError::Cache);
            }
            Outcome::Factory(e) => match e.downcast::<E>() {
                Ok(e) => FetchError::Factory(e),
                Err(_) => FetchError::Cache(
                    ErrorKind::TypeMismatch {
                        key: key.to_owned(),
                        expected: std::any::type_name::<E>(),
                    }
                    .into(),
                ),
            },
            Outcome::Timeout(d) => FetchError::Timeout(d),
            Outcome::Panicked(m) => FetchError::Panicked(m),
            Outcome::Cancelled => FetchError::Cancelled,
        };
        stats.incr(Counter::Miss);
        // A waiter that joined a flight with a stale value of its own still gets fail-safe.
        match fallback.filter(Fallback::usable) {
            Some(stale) => {
                stats.incr(Counter::StaleServed);
                downcast(stale.value, key).map_err(FetchError::Cache)
            }
            None => Err(failure),
        }
    }

    /// The task that runs one flight to its end and reports through `ticket`.
    fn fetch_task<T, E, F, Fut>(
        &self,
        ticket: Ticket,
        key: &str,
        opts: Resolved,
        mut fallback: Option<Fallback>,
        factory: F,
        kind: Kind,
    ) -> BoxFuture<'static, ()>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
    {
        let cache = self.clone();
        let key = key.to_owned();
        async move {
            let origin = cache.origin();
            // A caller can miss in memory just before another flight fills it and join just after
            // that flight ends: look again, now that this flight is registered.
            if kind == Kind::Miss
                && let Some(mem) = &cache.inner.memory
                && let Lookup::Fresh(entry) = mem.lookup(&opts.namespace, &key, origin.at)
            {
                ticket.finish(Outcome::Value {
                    value: entry.value(),
                    source: Source::Memory,
                });
                return;
            }
            if kind == Kind::Miss
                && let Some(remote) = &cache.inner.remote
            {
                match cache.read_remote::<T>(remote, &opts.namespace, &key).await {
                    RemoteLookup::Fresh(value) => {
                        ticket.finish(Outcome::Value {
                            value: AnyValue::new(value),
                            source: Source::Remote,
                        });
                        return;
                    }
                    RemoteLookup::Stale(value, stale_until) if fallback.is_none() => {
                        fallback = Some(Fallback {
                            value: AnyValue::new(value),
                            stale_until,
                        });
                    }
                    _ => {}
                }
            }
            let mut held = None;
            if kind == Kind::Miss
                && let Some(wait) = opts.lock_wait
            {
                cache.warn_lock_without_store();
                match cache.lock_or_wait::<T>(&opts, &key, wait).await {
                    LockWait::Acquired(lock) => held = Some(lock),
                    LockWait::Found(value) => {
                        ticket.finish(Outcome::Value {
                            value,
                            source: Source::Remote,
                        });
                        return;
                    }
                    LockWait::Alone => {}
                }
            }
            let run = async move {
                match AssertUnwindSafe(async move { factory().await })
                    .catch_unwind()
                    .await
                {
                    Ok(Ok(value)) => Ok(value),
                    Ok(Err(e)) => Err(Outcome::Factory(Arc::new(e))),
                    Err(panic) => Err(Outcome::Panicked(panic_message(&*panic))),
                }
            };
            let failure = match call_source(&cache, opts.hard_timeout, run).await {
                Ok(value) => {
                    let value = Arc::new(value);
                    // A set, delete or clear of this key since the fetch began wins over it.
                    if !ticket.superseded()
                        && let Err(error) = cache.store(&key, value.clone(), &opts, origin).await
                    {
                        tracing::warn!(cache = %cache.inner.name, key, %error, "fetched value not cached");
                    }
                    ticket.finish(Outcome::Value {
                        value: AnyValue::new(value),
                        source: Source::Factory,
                    });
                    if let Some(lock) = held {
                        cache.unlock(&opts, &key, lock).await;
                    }
                    return;
                }
                Err(SourceFailed::Error(failure)) => failure,
                Err(SourceFailed::TimedOut(limit)) => Outcome::Timeout(limit),
            };
            let outcome = cache.fail_safe(&opts, &key, fallback, failure, ticket.superseded());
            ticket.finish(outcome);
            if let Some(lock) = held {
                cache.unlock(&opts, &key, lock).await;
            }
        }
        .boxed()
    }
}
