//! `get_or_compute`: the blocking counterpart of `get_or_fetch`, for synchronous work (parsing,
//! rendering, a pure computation) and for `#[cached]` on a plain `fn`.
//!
//! ```text
//! memory fresh              -> value
//! otherwise                 -> join the flight for the key
//!   no flight               -> run the work on this thread; others wait for it
//!   one run by another thread -> block until it ends, share its result
//!   one run by a task, or by this very thread -> run the work here, alone
//!   Ok(v)                   -> write memory, v
//!   Err / panic             -> stale value if one is within its window (fail-safe), else the error
//! ```
//!
//! A blocking caller never waits for a flight that a task runs: on a current-thread runtime that
//! task could need the very thread the caller would block. Nor does it wait for its own thread
//! (a computation that asks for its own key), which could only deadlock.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use crate::cache::{Cache, CacheValue, downcast};
use crate::clock;
use crate::error::FetchError;
use crate::fetch::Fallback;
use crate::flight::{Join, Led, Outcome, Source, Ticket, panic_message};
use crate::memory::{AnyValue, Lookup};
use crate::options::{EntryOptions, Resolved};
use crate::stats::Counter;

impl Cache {
    /// Returns the fresh value under `key`, or runs `factory` on this thread to produce it; other
    /// threads that ask for the same key meanwhile wait for that run and share its result.
    ///
    /// This is the blocking counterpart of [`get_or_fetch`](Cache::get_or_fetch), for work that is
    /// synchronous. It uses the memory tier only: the remote store is async, so it is neither read
    /// nor written here (with no memory tier, every call runs `factory`). Fail-safe and the fail-safe
    /// throttle apply; timeouts and eager refresh do not, since synchronous work cannot be stopped
    /// or moved to the background. A panic in `factory` becomes [`FetchError::Panicked`] for every
    /// caller that shared the run.
    ///
    /// Call it from synchronous code, or from async code for work short enough to run on the
    /// executor's thread; a caller that waits for another thread's run blocks its own thread.
    ///
    /// ```
    /// use larder::Cache;
    ///
    /// let cache = Cache::new();
    /// let render = |name: &str| -> Result<String, std::fmt::Error> { Ok(format!("<h1>{name}</h1>")) };
    /// let page = cache.get_or_compute("page:home", || render("home")).unwrap();
    /// assert_eq!(*page, "<h1>home</h1>");
    /// // Cached: the closure does not run again.
    /// let again = cache.get_or_compute("page:home", || -> Result<String, std::fmt::Error> {
    ///     unreachable!()
    /// });
    /// assert_eq!(*again.unwrap(), "<h1>home</h1>");
    /// ```
    pub fn get_or_compute<T, E, F>(&self, key: &str, factory: F) -> Result<Arc<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Result<T, E>,
    {
        self.get_or_compute_with(key, EntryOptions::new(), factory)
    }

    /// [`get_or_compute`](Cache::get_or_compute) with options for this call: `opts` override the
    /// handle's defaults field by field.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder::{Cache, EntryOptions};
    ///
    /// let cache = Cache::new();
    /// let opts = EntryOptions::new().ttl(Duration::from_secs(5)).tags(["pages"]);
    /// let page = cache.get_or_compute_with("page:about", opts, || -> Result<_, std::fmt::Error> {
    ///     Ok("<h1>about</h1>".to_string())
    /// });
    /// assert_eq!(*page.unwrap(), "<h1>about</h1>");
    /// ```
    pub fn get_or_compute_with<T, E, F>(
        &self,
        key: &str,
        opts: EntryOptions,
        factory: F,
    ) -> Result<Arc<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Result<T, E>,
    {
        let ns = opts.namespace.as_ref().unwrap_or(&self.defaults.namespace);
        let mut fallback = None;
        if let Some(mem) = &self.inner.memory {
            // A plain hit takes `get`'s path; a stale fallback needs the full lookup.
            if let Some(value) = mem.fresh(ns, key) {
                return downcast(value, key).map_err(FetchError::Cache);
            }
            match mem.lookup(ns, key, clock::now_nanos()) {
                Lookup::Fresh(entry) => {
                    self.inner.stats.incr(Counter::Hit);
                    return downcast(mem.serve(entry), key).map_err(FetchError::Cache);
                }
                Lookup::Stale(entry) => fallback = Some(Fallback::from_stale(entry)),
                Lookup::Miss => {}
            }
        }
        self.compute(key, opts, fallback, factory)
    }

    /// The miss path: lead, wait for another thread's run, or run alone.
    #[inline(never)]
    fn compute<T, E, F>(
        &self,
        key: &str,
        opts: EntryOptions,
        fallback: Option<Fallback>,
        factory: F,
    ) -> Result<Arc<T>, FetchError<E>>
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Result<T, E>,
    {
        let opts = opts.or(&self.defaults);
        if self.inner.memory.is_none() {
            // Nothing to share a result through: every call runs the work.
            let outcome = self.run_here(&opts, key, None, factory, None);
            return self.resolve(key, outcome, None);
        }
        let me = std::thread::current().id();
        let outcome = match self
            .inner
            .flights
            .join(&opts.namespace, key, Led::ByThread(me))
        {
            Join::Leader(ticket, _) => {
                let outcome = self.run_here(&opts, key, fallback.clone(), factory, Some(&ticket));
                ticket.finish(outcome.clone());
                outcome
            }
            Join::Follower(shared, Led::ByThread(leader)) if leader != me => {
                self.inner.stats.incr(Counter::Coalesced);
                futures::executor::block_on(shared)
            }
            Join::Follower(..) => self.run_here(&opts, key, fallback.clone(), factory, None),
        };
        self.resolve(key, outcome, fallback)
    }

    /// Runs the work on this thread and writes its value to the memory tier. `ticket` is the
    /// flight this run leads, if it leads one.
    fn run_here<T, E, F>(
        &self,
        opts: &Resolved,
        key: &str,
        fallback: Option<Fallback>,
        factory: F,
        ticket: Option<&Ticket>,
    ) -> Outcome
    where
        T: CacheValue,
        E: Send + Sync + 'static,
        F: FnOnce() -> Result<T, E>,
    {
        let origin = self.origin();
        // Another run may have filled memory between this caller's miss and its joining.
        if let Some(mem) = &self.inner.memory
            && let Lookup::Fresh(entry) = mem.lookup(&opts.namespace, key, origin.at)
        {
            return Outcome::Value {
                value: entry.value(),
                source: Source::Memory,
            };
        }
        self.inner.stats.incr(Counter::FactoryRun);
        let superseded = || ticket.is_some_and(Ticket::superseded);
        let failure = match std::panic::catch_unwind(AssertUnwindSafe(factory)) {
            Ok(Ok(value)) => {
                let value = Arc::new(value);
                // A set, delete or clear of this key since the run began wins over it.
                if !superseded() {
                    self.store_memory(key, &value, opts, origin, None);
                }
                return Outcome::Value {
                    value: AnyValue::new(value),
                    source: Source::Factory,
                };
            }
            Ok(Err(e)) => Outcome::Factory(Arc::new(e)),
            Err(panic) => Outcome::Panicked(panic_message(&*panic)),
        };
        // Counted here: synchronous work has no hard timeout, so `call_source` is not for it.
        self.inner.stats.incr(Counter::FactoryError);
        self.fail_safe(opts, key, fallback, failure, superseded())
    }
}
