//! `larder.HttpCache`: a response cache's settings and its purge handle, made once and shared by
//! every app it wraps (the middleware builds one when it is given none).

use std::time::Duration;

use http::HeaderName;
use larder_http::{CacheLayer, Purger, Rule};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use tower_layer::Layer;

use super::Engine;
use super::app::AsgiApp;
use crate::cache::PyCache;
use crate::duration::duration;

impl HttpCache {
    /// A purge on larder's runtime, as an awaitable; a bad URL or prefix is a `ValueError`.
    fn purge<'py, F, Fut, T>(&self, py: Python<'py>, purge: F) -> PyResult<Bound<'py, PyAny>>
    where
        F: FnOnce(Purger) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<T, larder_http::PurgeError>> + Send + 'static,
        T: for<'a> IntoPyObject<'a> + Send + 'static,
    {
        let purger = self.purger.clone();
        crate::bridge::spawn(py, move |_| async move {
            purge(purger)
                .await
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    }
}

/// larder-http's layer with the settings given from Python, and the purger for its entries.
#[pyclass(module = "larder", frozen)]
pub struct HttpCache {
    layer: CacheLayer,
    purger: Purger,
}

fn header_names(names: Vec<String>, what: &str) -> PyResult<Vec<HeaderName>> {
    names
        .iter()
        .map(|n| {
            HeaderName::from_bytes(n.as_bytes())
                .map_err(|_| PyValueError::new_err(format!("{what}: not a header name: {n:?}")))
        })
        .collect()
}

fn optional_header(name: Option<String>, what: &str) -> PyResult<Option<HeaderName>> {
    Ok(header_names(name.into_iter().collect(), what)?.pop())
}

#[pymethods]
impl HttpCache {
    /// `ttl` makes it the application's cache (responses that say nothing of freshness are
    /// fresh for `ttl`); without one it is a strict RFC 9111 shared cache. `rules` are JSON
    /// texts of larder-proxy's `[[rule]]` tables, one per rule (`larder.asgi` writes them).
    #[new]
    #[pyo3(signature = (cache, *, ttl = None, rules = Vec::new(), namespace = None, max_body = None,
        status_header = Some("x-cache".to_owned()), cache_status = Some("larder".to_owned()),
        tag_header = Some("surrogate-key".to_owned()), purge_prefix_depth = 3,
        keyed_headers = Vec::new(), key_cookies = Vec::new(), ignore_cookies = Vec::new(),
        response_timeout = None, body_idle_timeout = None, distributed_lock = None,
        fixed_host = None, fail_safe_throttle = None))]
    #[allow(clippy::too_many_arguments)] // Python keyword arguments
    fn new(
        cache: &PyCache,
        ttl: Option<&Bound<'_, PyAny>>,
        rules: Vec<String>,
        namespace: Option<String>,
        max_body: Option<usize>,
        status_header: Option<String>,
        cache_status: Option<String>,
        tag_header: Option<String>,
        purge_prefix_depth: usize,
        keyed_headers: Vec<String>,
        key_cookies: Vec<String>,
        ignore_cookies: Vec<String>,
        response_timeout: Option<&Bound<'_, PyAny>>,
        body_idle_timeout: Option<&Bound<'_, PyAny>>,
        distributed_lock: Option<&Bound<'_, PyAny>>,
        fixed_host: Option<String>,
        fail_safe_throttle: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let base = cache.engine().clone();
        let mut layer = match duration(ttl)? {
            Some(ttl) => CacheLayer::application(base, ttl),
            None => CacheLayer::shared(base),
        };
        let rules = rules
            .iter()
            .enumerate()
            .map(|(i, text)| {
                serde_json::from_str::<Rule>(text)
                    .map_err(|e| PyValueError::new_err(format!("rules[{i}]: {e}")))
            })
            .collect::<PyResult<Vec<_>>>()?;
        if let Some(ns) = namespace {
            layer = layer.namespace(ns);
        }
        if let Some(bytes) = max_body {
            layer = layer.max_body_bytes(bytes);
        }
        layer = layer
            .rules(rules)
            .status_header(optional_header(status_header, "status_header")?)
            .cache_status(cache_status.as_deref())
            .tag_header(optional_header(tag_header, "tag_header")?)
            .prefix_purge_depth(purge_prefix_depth)
            .keyed_headers(header_names(keyed_headers, "keyed_headers")?)
            .key_cookies(key_cookies)
            .ignore_cookies(ignore_cookies);
        // Keys on this host whatever the client's Host says (one site per app), so purges may
        // name paths alone.
        if let Some(host) = fixed_host {
            layer = layer.fixed_host(&host);
        }
        if let Some(t) = duration(fail_safe_throttle)? {
            layer = layer.fail_safe_throttle(t);
        }
        if let Some(t) = duration(response_timeout)? {
            layer = layer.response_timeout(t);
        }
        if let Some(t) = duration(body_idle_timeout)? {
            layer = layer.body_idle_timeout(t);
        }
        // The lock processes sharing a store take before calling the app for a cold URL:
        // `True` for the proxy's defaults, or how long to wait for another process's response.
        if let Some(lock) = distributed_lock {
            let wait = match lock.extract::<bool>() {
                Ok(false) => None,
                Ok(true) => Some(Duration::from_secs(10)),
                Err(_) => duration(Some(lock))?,
            };
            if let Some(wait) = wait {
                layer = layer.distributed_lock(wait, (wait * 3).max(Duration::from_secs(5)));
            }
        }
        let purger = layer.purger();
        Ok(Self { layer, purger })
    }

    /// The cache in front of an app: `start` is the app bound into `larder.asgi`'s starter.
    fn _engine(&self, start: Py<PyAny>) -> Engine {
        Engine::new(self.layer.clone().layer(AsgiApp::new(start)))
    }

    /// Drops the stored response for a URL, every variant of it; `True` if there was one. Keys
    /// hold the request's host, so the URL names it (`http://host/path?query`), unless the cache
    /// has a `fixed_host` (then a path will do).
    fn purge_url<'py>(&self, py: Python<'py>, url: String) -> PyResult<Bound<'py, PyAny>> {
        self.purge(py, |p| async move { p.purge_url(&url).await })
    }

    /// Drops every stored response under a prefix (`http://host/users` takes `/users/42` too;
    /// a path alone with a `fixed_host`), on every process sharing the store; prefixes up to
    /// `purge_prefix_depth` segments deep.
    fn purge_prefix<'py>(&self, py: Python<'py>, prefix: String) -> PyResult<Bound<'py, PyAny>> {
        self.purge(py, |p| async move { p.purge_prefix(&prefix).await })
    }

    /// Drops every response the app tagged with `tag` (in its `Surrogate-Key` header).
    fn purge_tag<'py>(&self, py: Python<'py>, tag: String) -> PyResult<Bound<'py, PyAny>> {
        self.purge(py, |p| async move {
            p.purge_tag(&tag).await;
            Ok(())
        })
    }

    /// Drops every response this cache stored (its namespace only).
    fn purge_all<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.purge(py, |p| async move {
            p.purge_all().await;
            Ok(())
        })
    }

    /// The response cache's own counters (fills, unrecorded or stalled ones, …) as a dict.
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let s = self.purger.stats();
        let d = PyDict::new(py);
        d.set_item("fills", s.fills)?;
        d.set_item("fills_unrecorded", s.fills_unrecorded)?;
        d.set_item("fills_stalled", s.fills_stalled)?;
        d.set_item("fills_abandoned", s.fills_abandoned)?;
        d.set_item("response_timeouts", s.response_timeouts)?;
        d.set_item("bad_requests", s.bad_requests)?;
        d.set_item("recording_bytes", s.recording_bytes)?;
        d.set_item("fetches_in_flight", s.fetches_in_flight)?;
        Ok(d)
    }
}
