//! `larder.HttpCache`: a response cache's settings and its purge handle, made once and shared by
//! every app it wraps (the middleware builds one when it is given none).

use std::time::Duration;

use http::HeaderName;
use larder_http::{CacheLayer, Purger, Rule};
use pyo3::exceptions::{PyTypeError, PyValueError};
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

/// The keyword settings given from Python, taken one by one: a setting not given keeps
/// larder-http's default (the one the proxy and Rust users get too), `None` turns an optional
/// one off, and a name left over is a `TypeError`.
struct Given<'py>(Option<Bound<'py, PyDict>>);

impl<'py> Given<'py> {
    /// The value given for `name`: `None` when not given, `Some(None)` when given as `None`.
    fn take(&self, name: &str) -> PyResult<Option<Option<Bound<'py, PyAny>>>> {
        let Some(dict) = &self.0 else {
            return Ok(None);
        };
        let Some(value) = dict.get_item(name)? else {
            return Ok(None);
        };
        dict.del_item(name)?;
        Ok(Some((!value.is_none()).then_some(value)))
    }

    fn value<T>(&self, name: &str) -> PyResult<Option<T>>
    where
        T: for<'a> FromPyObject<'a, 'py>,
        for<'a> <T as FromPyObject<'a, 'py>>::Error: Into<PyErr>,
    {
        match self.take(name)? {
            None => Ok(None),
            Some(None) => Err(PyValueError::new_err(format!("{name} cannot be None"))),
            Some(Some(v)) => v.extract::<T>().map(Some).map_err(|e| {
                let e: PyErr = e.into();
                PyValueError::new_err(format!("{name}: {e}"))
            }),
        }
    }

    fn duration(&self, name: &str) -> PyResult<Option<Duration>> {
        match self.take(name)? {
            None => Ok(None),
            Some(v) => duration(v.as_ref())
                .map_err(|e| PyValueError::new_err(format!("{name}: {e}")))?
                .map(Some)
                .ok_or_else(|| PyValueError::new_err(format!("{name} cannot be None"))),
        }
    }

    /// An optional header name: `Some(None)` when given as `None` (off).
    fn header(&self, name: &str) -> PyResult<Option<Option<HeaderName>>> {
        Ok(match self.take(name)? {
            None => None,
            Some(None) => Some(None),
            Some(Some(v)) => Some(optional_header(Some(v.extract()?), name)?),
        })
    }

    fn finish(self) -> PyResult<()> {
        match self.0 {
            Some(rest) if !rest.is_empty() => {
                let names: Vec<String> = rest.keys().iter().map(|k| k.to_string()).collect();
                Err(PyTypeError::new_err(format!(
                    "HttpCache got unexpected settings: {}",
                    names.join(", ")
                )))
            }
            _ => Ok(()),
        }
    }
}

#[pymethods]
impl HttpCache {
    /// `ttl` makes it the application's cache (responses that say nothing of freshness are
    /// fresh for `ttl`); without one it is a strict RFC 9111 shared cache. `rules` are JSON
    /// texts of larder-proxy's `[[rule]]` tables, one per rule (`larder.asgi` writes them). The
    /// other settings are larder-http's, by the proxy's names, each at larder-http's default
    /// unless given.
    #[new]
    #[pyo3(signature = (cache, *, ttl = None, rules = Vec::new(), **settings))]
    fn new(
        cache: &PyCache,
        ttl: Option<&Bound<'_, PyAny>>,
        rules: Vec<String>,
        settings: Option<&Bound<'_, PyDict>>,
    ) -> PyResult<Self> {
        let given = Given(settings.map(|d| d.copy()).transpose()?);
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
        // A rule an earlier one takes every request of is a mistake, refused as larder-proxy
        // refuses it (rules are numbered from 1 there, from 0 here, as Python lists are).
        if let Err(larder_http::RuleError::Shadowed { later, earlier, .. }) =
            Rule::check_order(&rules)
        {
            let (later, earlier) = (later - 1, earlier - 1);
            return Err(PyValueError::new_err(format!(
                "rules[{later}] ({}) is never used: rules[{earlier}] ({}) before it matches \
                 every request it would; put the narrower rule first",
                rules[later].pattern(),
                rules[earlier].pattern()
            )));
        }
        layer = layer.rules(rules);
        if let Some(ns) = given.value::<String>("namespace")? {
            layer = layer.namespace(ns);
        }
        if let Some(bytes) = given.value::<usize>("max_body")? {
            layer = layer.max_body_bytes(bytes);
        }
        if let Some(name) = given.header("status_header")? {
            layer = layer.status_header(name);
        }
        if let Some(name) = given.take("cache_status")? {
            let name: Option<String> = name.map(|n| n.extract()).transpose()?;
            layer = layer.cache_status(name.as_deref());
        }
        if let Some(name) = given.header("tag_header")? {
            layer = layer.tag_header(name);
        }
        if let Some(depth) = given.value::<usize>("purge_prefix_depth")? {
            layer = layer.prefix_purge_depth(depth);
        }
        if let Some(names) = given.value::<Vec<String>>("keyed_headers")? {
            layer = layer.keyed_headers(header_names(names, "keyed_headers")?);
        }
        if let Some(names) = given.value::<Vec<String>>("key_cookies")? {
            layer = layer.key_cookies(names);
        }
        if let Some(names) = given.value::<Vec<String>>("ignore_cookies")? {
            layer = layer.ignore_cookies(names);
        }
        // Keys on this host whatever the client's Host says (one site per app), so purges may
        // name paths alone.
        if let Some(host) = given.value::<String>("fixed_host")? {
            layer = layer.fixed_host(&host);
        }
        if let Some(t) = given.duration("fail_safe_throttle")? {
            layer = layer.fail_safe_throttle(t);
        }
        if let Some(t) = given.duration("response_timeout")? {
            layer = layer.response_timeout(t);
        }
        if let Some(t) = given.duration("body_idle_timeout")? {
            layer = layer.body_idle_timeout(t);
        }
        if let Some(t) = given.duration("hit_for_pass")? {
            layer = layer.hit_for_pass(t);
        }
        if let Some(t) = given.duration("keep_stale")? {
            layer = layer.keep_stale(t);
        }
        if let Some(bytes) = given.value::<u64>("recording_budget")? {
            layer = layer.recording_budget(bytes);
        }
        if let Some(bytes) = given.value::<u64>("finish_unread_below")? {
            layer = layer.finish_unread_below(bytes);
        }
        if let Some(store) = given.value::<bool>("store_set_cookie")? {
            layer = layer.store_set_cookie(store);
        }
        if let Some(etag) = given.value::<bool>("etag_from_body")? {
            layer = layer.etag_from_body(etag);
        }
        // JSON text of `True`, `False` or a dict (`larder.asgi` writes it): larder-http reads
        // it, as it reads larder-proxy's `[compression]`.
        if let Some(text) = given.value::<String>("compression")? {
            let compression = serde_json::from_str::<larder_http::Compression>(&text)
                .map_err(|e| PyValueError::new_err(format!("compression: {e}")))?;
            layer = layer.compression(compression);
        }
        // The lock processes sharing a store take before calling the app for a cold URL: on by
        // default (larder-http's wait and expiry); `False` or `None` turns it off, a duration
        // is how long to wait for another process's response.
        if let Some(lock) = given.take("distributed_lock")? {
            let (wait, expiry) = layer.settings().distributed_lock.unwrap_or_else(|| {
                larder_http::LayerSettings::default()
                    .distributed_lock
                    .unwrap_or_default()
            });
            layer = match lock {
                None => layer.distributed_lock(Duration::ZERO, expiry),
                Some(lock) => match lock.extract::<bool>() {
                    Ok(false) => layer.distributed_lock(Duration::ZERO, expiry),
                    Ok(true) => layer.distributed_lock(wait, expiry),
                    Err(_) => {
                        let wait = duration(Some(&lock))?.unwrap_or(wait);
                        layer.distributed_lock(wait, expiry.max(wait * 3))
                    }
                },
            };
        }
        given.finish()?;
        let purger = layer.purger();
        Ok(Self { layer, purger })
    }

    /// Every setting of this response cache, as a JSON text (`larder.asgi` reads it).
    fn _settings(&self) -> PyResult<String> {
        serde_json::to_string(&self.layer.settings())
            .map_err(|e| PyValueError::new_err(e.to_string()))
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
        d.set_item("non_canonical_paths", s.non_canonical_paths)?;
        d.set_item("recording_bytes", s.recording_bytes)?;
        d.set_item("fetches_in_flight", s.fetches_in_flight)?;
        Ok(d)
    }
}

/// larder-http's defaults for a shared response cache, as a JSON text: what every setting an
/// `HttpCache` is not given stays at (the proxy's defaults too).
#[pyfunction]
pub(crate) fn _http_defaults() -> PyResult<String> {
    serde_json::to_string(&larder_http::LayerSettings::default())
        .map_err(|e| PyValueError::new_err(e.to_string()))
}
