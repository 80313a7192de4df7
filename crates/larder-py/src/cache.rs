//! `larder.Cache`: the engine's `Cache` from Python, async first, with `_sync` counterparts.

use larder::{Cache as Engine, EntryOptions, FetchError};
use pyo3::exceptions::{PyRuntimeError, PyTimeoutError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::duration::duration;
use crate::ready::Ready;
use crate::runtime::{block_on, runtime};
use crate::value::{PyValue, check};

/// An async cache: an in-process memory tier holding your objects as they are, and optionally a
/// shared store (Redis, Redis Cluster, Memcached) behind it.
#[pyclass(module = "larder", name = "Cache", frozen, weakref)]
pub struct PyCache {
    engine: Engine,
    /// Values the native encoding cannot hold are pickled (asked for with `pickle=True`).
    pickle: bool,
}

impl PyCache {
    /// The engine, for the response cache built on it.
    pub(crate) fn engine(&self) -> &Engine {
        &self.engine
    }
}

/// `cache` as a Python object, noted (weakly) among the process's caches, which
/// `larder.testing.clear_all` clears.
fn registered(py: Python<'_>, cache: PyCache) -> PyResult<Bound<'_, PyCache>> {
    let cache = Bound::new(py, cache)?;
    py.import("larder._registry")?
        .call_method1("add_cache", (&cache,))?;
    Ok(cache)
}

fn engine_error(e: larder::Error) -> PyErr {
    PyRuntimeError::new_err(e.to_string())
}

/// Per-call options, from keyword arguments.
fn options(
    ttl: Option<&Bound<'_, PyAny>>,
    stale: Option<&Bound<'_, PyAny>>,
    tags: Option<Vec<String>>,
) -> PyResult<EntryOptions> {
    let mut opts = EntryOptions::new();
    if let Some(t) = duration(ttl)? {
        opts = opts.ttl(t);
    }
    if let Some(s) = duration(stale)? {
        opts = opts.stale(s);
    }
    if let Some(tags) = tags {
        opts = opts.tags(tags);
    }
    Ok(opts)
}

#[pymethods]
impl PyCache {
    /// `Cache.from_url("memory://" | "redis://…" | "rediss://…" | "redis+cluster://…" |
    /// "memcached://…", max_entries=, max_bytes=, ttl=, stale=, namespace=)`.
    #[staticmethod]
    ///
    /// `pickle=True` lets values the native encoding cannot hold travel through the store
    /// pickled. Unpickling runs code the store's data names, so only ask for it when everything
    /// that can write to the store is trusted; it also lets every cache of this process read
    /// pickled values.
    #[pyo3(signature = (url = "memory://", *, max_entries = None, max_bytes = None, ttl = None, stale = None, namespace = None, pickle = false))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn from_url<'py>(
        py: Python<'py>,
        url: &str,
        max_entries: Option<u64>,
        max_bytes: Option<u64>,
        ttl: Option<&Bound<'py, PyAny>>,
        stale: Option<&Bound<'py, PyAny>>,
        namespace: Option<String>,
        pickle: bool,
    ) -> PyResult<Bound<'py, Self>> {
        // The engine starts its background work (backplane, breaker probes) on our runtime.
        let _guard = runtime().enter();
        let mut builder = Engine::builder();
        if let Some(n) = max_entries {
            builder = builder.max_entries(n);
        }
        if let Some(b) = max_bytes {
            builder = builder.max_bytes(b);
        }
        builder = builder.default_options(options(ttl, stale, None)?);
        let builder = builder
            .remote_url(url)
            .map_err(|e| PyValueError::new_err(format!("{url:?}: {e}")))?;
        let engine = builder.build();
        let engine = match namespace {
            Some(ns) => engine.namespace(ns),
            None => engine,
        };
        if pickle {
            crate::value::allow_unpickling();
        }
        registered(py, Self { engine, pickle })
    }

    /// The value under `key`, or `None`. A memory hit is answered at once, without a trip to the
    /// runtime.
    fn get<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let ready = self.engine.get::<PyValue>(&key).try_ready().ok();
        match ready {
            Some(result) => {
                let value = result
                    .map_err(engine_error)?
                    .map_or_else(|| py.None(), |v| v.0.clone_ref(py));
                Ready::now(py, value)
            }
            None => {
                let engine = self.engine.clone();
                crate::bridge::spawn(py, move |_| async move {
                    let v = engine.get::<PyValue>(&key).await.map_err(engine_error)?;
                    crate::bridge::attach(|py| {
                        Ok(v.map_or_else(|| py.None(), |v| v.0.clone_ref(py)))
                    })
                })
            }
        }
    }

    /// The value under `key` if this process's memory tier holds it fresh, else `default`: no
    /// store, no waiting (what `@cached` tries first on every call).
    #[pyo3(signature = (key, default = None))]
    fn peek(&self, py: Python<'_>, key: &str, default: Option<Py<PyAny>>) -> Py<PyAny> {
        if crate::switch::off() {
            return default.unwrap_or_else(|| py.None());
        }
        match self.engine.get::<PyValue>(key).try_ready() {
            Ok(Ok(Some(v))) => v.0.clone_ref(py),
            _ => default.unwrap_or_else(|| py.None()),
        }
    }

    /// `@cached`'s hit path in one call: the key of a positional call by `call_key`, and the
    /// memory tier's value for it, else `default` (also for a call of another shape).
    fn peek_call(
        &self,
        py: Python<'_>,
        call_key: &crate::call_key::CallKey,
        args: &Bound<'_, pyo3::types::PyTuple>,
        default: Py<PyAny>,
    ) -> PyResult<Py<PyAny>> {
        let Some(key) = call_key.of_positional(args)? else {
            return Ok(default);
        };
        if crate::switch::off() {
            return Ok(default);
        }
        Ok(match self.engine.get::<PyValue>(&key).try_ready() {
            Ok(Ok(Some(v))) => v.0.clone_ref(py),
            _ => default,
        })
    }

    /// `get` for code that is not async.
    fn get_sync(&self, py: Python<'_>, key: String) -> PyResult<Py<PyAny>> {
        let engine = self.engine.clone();
        let v =
            block_on(py, async move { engine.get::<PyValue>(&key).await }).map_err(engine_error)?;
        Ok(v.map_or_else(|| py.None(), |v| v.0.clone_ref(py)))
    }

    /// Stores `value` under `key` (`ttl`, `stale`: seconds, timedelta or "5m"; `tags` for
    /// `invalidate_tag`). A value that cannot be encoded is a `TypeError`; nothing is stored.
    #[pyo3(signature = (key, value, *, ttl = None, stale = None, tags = None))]
    fn set<'py>(
        &self,
        py: Python<'py>,
        key: String,
        value: Bound<'py, PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
        stale: Option<&Bound<'py, PyAny>>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        check(&value, self.pickle)?;
        let opts = options(ttl, stale, tags)?;
        let engine = self.engine.clone();
        let value = PyValue(value.unbind(), self.pickle);
        crate::bridge::spawn(py, move |_| async move {
            engine
                .set_with(&key, value, opts)
                .await
                .map_err(engine_error)
        })
    }

    /// `set` for code that is not async.
    #[pyo3(signature = (key, value, *, ttl = None, stale = None, tags = None))]
    fn set_sync(
        &self,
        py: Python<'_>,
        key: String,
        value: Bound<'_, PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        stale: Option<&Bound<'_, PyAny>>,
        tags: Option<Vec<String>>,
    ) -> PyResult<()> {
        check(&value, self.pickle)?;
        let opts = options(ttl, stale, tags)?;
        let engine = self.engine.clone();
        let value = PyValue(value.unbind(), self.pickle);
        block_on(py, async move { engine.set_with(&key, value, opts).await }).map_err(engine_error)
    }

    /// Removes `key`; whether it was there.
    fn delete<'py>(&self, py: Python<'py>, key: String) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine.clone();
        crate::bridge::spawn(py, move |_| async move { Ok(engine.delete(&key).await) })
    }

    /// `delete` for code that is not async.
    fn delete_sync(&self, py: Python<'_>, key: String) -> bool {
        let engine = self.engine.clone();
        block_on(py, async move { engine.delete(&key).await })
    }

    /// Drops every entry tagged `tag`, here and in every process sharing the store.
    fn invalidate_tag<'py>(&self, py: Python<'py>, tag: String) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine.clone();
        crate::bridge::spawn(py, move |_| async move {
            engine.invalidate_tag(&tag).await;
            Ok(())
        })
    }

    /// Drops every entry tagged with any of `tags`.
    fn invalidate_tags<'py>(
        &self,
        py: Python<'py>,
        tags: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine.clone();
        crate::bridge::spawn(py, move |_| async move {
            let tags: Vec<&str> = tags.iter().map(String::as_str).collect();
            engine.invalidate_tags(&tags).await;
            Ok(())
        })
    }

    /// Drops every entry of this cache's namespace, or of `namespace`.
    #[pyo3(signature = (*, namespace = None))]
    fn clear<'py>(
        &self,
        py: Python<'py>,
        namespace: Option<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = match namespace {
            Some(ns) => self.engine.namespace(ns),
            None => self.engine.clone(),
        };
        crate::bridge::spawn(py, move |_| async move {
            engine.clear().await;
            Ok(())
        })
    }

    /// A handle on the same cache whose keys live in `namespace`: its own keys, its own
    /// `clear()`.
    fn namespace<'py>(&self, py: Python<'py>, namespace: String) -> PyResult<Bound<'py, Self>> {
        let handle = Self {
            pickle: self.pickle,
            engine: self.engine.namespace(namespace),
        };
        registered(py, handle)
    }

    /// The values under `keys`, in order (`None` where missing): one round trip to the store for
    /// all the memory tier did not have.
    fn get_many<'py>(&self, py: Python<'py>, keys: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine.clone();
        crate::bridge::spawn(py, move |_| async move {
            let found = engine
                .get_many::<PyValue>(&keys)
                .await
                .map_err(engine_error)?;
            crate::bridge::attach(|py| {
                Ok(found
                    .into_iter()
                    .map(|v| v.map_or_else(|| py.None(), |v| v.0.clone_ref(py)))
                    .collect::<Vec<_>>())
            })
        })
    }

    /// Stores every `key: value` of `items` with the cache's default options.
    fn set_many<'py>(
        &self,
        py: Python<'py>,
        items: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut pairs = Vec::with_capacity(items.len());
        for (k, v) in items.iter() {
            check(&v, self.pickle)?;
            pairs.push((k.extract::<String>()?, PyValue(v.unbind(), self.pickle)));
        }
        let engine = self.engine.clone();
        crate::bridge::spawn(py, move |_| async move {
            engine.set_many(pairs).await.map_err(engine_error)
        })
    }

    /// The value under `key`, or the result of `await factory()`, run once however many
    /// coroutines ask for the same cold key at once. The factory's exception reaches every
    /// waiter as itself; with a `stale` window, a failing or timed-out factory serves the stale
    /// value instead. Cancelling one waiter cancels no one else.
    ///
    /// `eager_refresh` (a fraction of the ttl, 0.8 say) starts one background refresh of a hit
    /// late in its life; `distributed_lock` (how long to wait) makes every process sharing the
    /// store run the factory once for a cold key.
    #[pyo3(signature = (key, factory, *, ttl = None, stale = None, soft_timeout = None, hard_timeout = None, eager_refresh = None, distributed_lock = None, tags = None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn get_or_fetch<'py>(
        &self,
        py: Python<'py>,
        key: String,
        factory: Py<PyAny>,
        ttl: Option<&Bound<'py, PyAny>>,
        stale: Option<&Bound<'py, PyAny>>,
        soft_timeout: Option<&Bound<'py, PyAny>>,
        hard_timeout: Option<&Bound<'py, PyAny>>,
        eager_refresh: Option<f64>,
        distributed_lock: Option<&Bound<'py, PyAny>>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        if crate::switch::off() {
            // Switched off (larder.testing): the factory's own coroutine, awaited by the caller.
            return factory.bind(py).call0();
        }
        // Eager refresh needs the hit judged on the read path; without it a memory hit is
        // answered here.
        if eager_refresh.is_none()
            && let Ok(Ok(Some(hit))) = self.engine.get::<PyValue>(&key).try_ready()
        {
            return Ready::now(py, hit.0.clone_ref(py));
        }
        let mut opts = options(ttl, stale, tags)?;
        if let Some(f) = eager_refresh {
            opts = opts.eager_refresh(f);
        }
        if let Some(wait) = duration(distributed_lock)? {
            opts = opts.distributed_lock(wait);
        }
        if let Some(t) = duration(soft_timeout)? {
            opts = opts.soft_timeout(t);
        }
        if let Some(t) = duration(hard_timeout)? {
            opts = opts.hard_timeout(t);
        }
        let engine = self.engine.clone();
        let pickle = self.pickle;
        crate::bridge::spawn(py, move |locals| async move {
            let fetched = engine
                .get_or_fetch_with::<PyValue, PyErr, _, _>(&key, opts, move || async move {
                    let awaiting = crate::bridge::attach(|py| {
                        let coroutine = factory.bind(py).call0()?;
                        pyo3_async_runtimes::into_future_with_locals(&locals, coroutine)
                    })?;
                    let value = awaiting.await?;
                    crate::bridge::attach(|py| check(value.bind(py), pickle))?;
                    Ok(PyValue(value, pickle))
                })
                .await;
            crate::bridge::attach(|py| match fetched {
                Ok(v) => Ok(v.0.clone_ref(py)),
                Err(e) => Err(fetch_error(py, e)),
            })
        })
    }

    /// The value under `key`, or `factory()`'s result, for code that is not async (a `def`
    /// endpoint, a script): the factory runs on this thread, once however many threads ask for
    /// the same cold key (they wait, without the GIL, and share its result). With a shared store
    /// the store is read first and written after.
    #[pyo3(signature = (key, factory, *, ttl = None, stale = None, tags = None))]
    fn get_or_fetch_sync(
        &self,
        py: Python<'_>,
        key: String,
        factory: Py<PyAny>,
        ttl: Option<&Bound<'_, PyAny>>,
        stale: Option<&Bound<'_, PyAny>>,
        tags: Option<Vec<String>>,
    ) -> PyResult<Py<PyAny>> {
        if crate::switch::off() {
            return Ok(factory.bind(py).call0()?.unbind());
        }
        let opts = options(ttl, stale, tags)?;
        let engine = self.engine.clone();
        let remote = engine.remote_name().is_some();
        if remote {
            let (engine, key) = (engine.clone(), key.clone());
            let found = block_on(py, async move { engine.get::<PyValue>(&key).await })
                .map_err(engine_error)?;
            if let Some(v) = found {
                return Ok(v.0.clone_ref(py));
            }
        }
        let mut ran = false;
        let pickle = self.pickle;
        let computed = py.detach(|| {
            engine.get_or_compute_with::<PyValue, PyErr, _>(&key, opts.clone(), || {
                ran = true;
                crate::bridge::attach(|py| {
                    let value = factory.bind(py).call0()?;
                    check(&value, pickle)?;
                    Ok(PyValue(value.unbind(), pickle))
                })
            })
        });
        let value = computed.map_err(|e| fetch_error(py, e))?;
        if remote && ran {
            let stored = PyValue(value.0.clone_ref(py), self.pickle);
            block_on(py, async move { engine.set_with(&key, stored, opts).await })
                .map_err(engine_error)?;
        }
        Ok(value.0.clone_ref(py))
    }

    /// The cache's counters: hits, misses, factory runs, coalesced waiters, stale values
    /// served, evictions, store errors, breaker state...
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.engine.stats();
        let d = PyDict::new(py);
        d.set_item("hits", s.hits)?;
        d.set_item("misses", s.misses)?;
        d.set_item("stale_served", s.stale_served)?;
        d.set_item("coalesced_waiters", s.coalesced_waiters)?;
        d.set_item("factory_runs", s.factory_runs)?;
        d.set_item("factory_errors", s.factory_errors)?;
        d.set_item("evictions", s.evictions)?;
        d.set_item("remote_hits", s.remote_hits)?;
        d.set_item("remote_misses", s.remote_misses)?;
        d.set_item("remote_reads_deferred", s.remote_reads_deferred)?;
        d.set_item("store_errors", s.store_errors)?;
        d.set_item("breaker_open", s.breaker_open)?;
        d.set_item("entries", s.entries)?;
        Ok(d)
    }

    fn __repr__(&self) -> String {
        format!("<larder.Cache {}>", self.engine.name())
    }
}

/// A fetch's failure as the Python exception it was, or one that says what happened.
fn fetch_error(py: Python<'_>, e: FetchError<PyErr>) -> PyErr {
    match e {
        FetchError::Factory(err) => err.clone_ref(py),
        FetchError::Timeout(d) => {
            PyTimeoutError::new_err(format!("the factory took longer than {d:?}"))
        }
        FetchError::Panicked(msg) => {
            PyRuntimeError::new_err(format!("the factory panicked: {msg}"))
        }
        FetchError::Cancelled => PyRuntimeError::new_err("the cache's runtime is shutting down"),
        FetchError::Cache(e) => engine_error(e),
        other => PyRuntimeError::new_err(other.to_string()),
    }
}
