//! The ASGI response cache: larder-http's RFC 9111 engine (keys, Vary, ETag/304, Age,
//! Cache-Status, rules, coalescing, streaming recordings, purge) in front of a Python ASGI app.
//!
//! A request crosses into Rust once: [`Engine::handle`] builds an `http::Request` from the
//! scope and calls larder-http's `CacheService`. A fresh memory hit comes straight back as
//! `(status, headers, body)` on the caller's thread. Anything else is an awaitable resolving to
//! a [`response::AsgiResponse`] whose body the middleware streams; when the cache needs the app
//! (a miss, a revalidation, a write), [`app::AsgiApp`] runs it on the request's event loop and
//! turns what it sends into an `http::Response` whose body larder-http records as it streams.

mod app;
mod body;
mod request;
mod response;
mod settings;

pub(crate) use settings::HttpCache;

use std::task::{Context, Poll};

use http::Method;
use http_body::Body;
use larder_http::{CacheBody, CacheService};
use pyo3::prelude::*;
use std::sync::{Arc, Mutex};

use pyo3::types::{PyBytes, PyDict, PyTuple};
use tower_service::Service;

use crate::runtime::runtime;
use app::{AppCall, AppRequest, AsgiApp};
use body::AppBody;
use response::{AsgiResponse, head_to_python};

/// An ASGI app behind a response cache: what `larder.asgi.CacheMiddleware` calls per request.
#[pyclass(module = "larder", frozen)]
pub struct Engine {
    service: CacheService<AsgiApp>,
}

#[pymethods]
impl Engine {
    /// Answers one HTTP request (`scope`, `receive`): `(status, headers, body)` at once for a
    /// fresh hit in memory, `None` when the request cannot be read as HTTP (the middleware then
    /// hands it to the app untouched), a [`BodyWanted`] for a POST whose body the cache keys
    /// on, else an awaitable of an `AsgiResponse`.
    fn handle<'py>(
        &self,
        py: Python<'py>,
        scope: &Bound<'py, PyDict>,
        receive: Bound<'py, PyAny>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        if crate::switch::off() {
            // Switched off (larder.testing): the middleware hands the request to the app.
            return Ok(None);
        }
        let Some(mut req) = request::from_scope(scope)? else {
            return Ok(None);
        };
        let call = AppCall::of(scope);
        req.extensions_mut().insert(call.clone());
        if *req.method() == Method::POST
            && let Some(permit) = self.service.body_permit(&mut req)
        {
            // A POST a `key_body` rule keys: the middleware reads its body first.
            let wanted = BodyWanted {
                service: self.service.clone(),
                call,
                length: permit.len(),
                idle_timeout: permit.idle_timeout().as_secs_f64(),
                pending: Mutex::new(Some((req, permit))),
            };
            return Ok(Some(Bound::new(py, wanted)?.into_any()));
        }
        // The client's own `receive` only for requests whose body the app may read; a GET or
        // HEAD the cache forwards (and may refresh later, after the client left) gets an empty
        // body that never reports a disconnect, as a proxy's upstream request would.
        let receive =
            (!matches!(*req.method(), Method::GET | Method::HEAD)).then(|| receive.unbind());
        respond(py, &self.service, &call, req.map(|()| AppRequest(receive)))
    }
}

/// A POST whose body the cache keys on (a `key_body` rule): the middleware reads the body, at
/// most `length` bytes and waiting at most `idle_timeout` seconds for each message, and gives it
/// to `answer`; a body it cannot read whole goes to the app with what was read replayed. Holds
/// the room the body takes in the response cache's budget until it is dropped.
#[pyclass(module = "larder", frozen)]
pub struct BodyWanted {
    service: CacheService<AsgiApp>,
    call: Arc<AppCall>,
    /// The declared length: the body to read.
    #[pyo3(get)]
    length: usize,
    #[pyo3(get)]
    idle_timeout: f64,
    pending: Mutex<Option<(http::Request<()>, larder_http::BodyPermit)>>,
}

#[pymethods]
impl BodyWanted {
    /// Answers the request with its body read: as `Engine.handle` does (a tuple for a hit, an
    /// awaitable otherwise), or `None` when the body is not the declared length (the middleware
    /// then gives the request to the app, body and all).
    fn answer<'py>(
        &self,
        py: Python<'py>,
        body: Bound<'py, PyBytes>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let taken = self.pending.lock().ok().and_then(|mut p| p.take());
        let Some((mut req, permit)) = taken else {
            return Err(pyo3::exceptions::PyRuntimeError::new_err(
                "larder.asgi: a request's body was answered twice",
            ));
        };
        let Ok(keyed) = permit.accept(bytes::Bytes::copy_from_slice(body.as_bytes())) else {
            return Ok(None);
        };
        req.extensions_mut().insert(keyed);
        // The app gets the body read, from a `receive` that never reports a disconnect: the
        // call may fill the cache for other clients after this one left.
        let body = AppRequest(Some(body.into_any().unbind()));
        respond(py, &self.service, &self.call, req.map(|()| body))
    }
}

/// Calls the cache service for one request: `(status, headers, body)` for an answer at hand,
/// else an awaitable of an `AsgiResponse`.
fn respond<'py>(
    py: Python<'py>,
    service: &CacheService<AsgiApp>,
    call: &Arc<AppCall>,
    req: http::Request<AppRequest>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let mut service = service.clone();
    let pending = {
        // Fills and timeouts run on larder's runtime, which `call` finds through the context.
        let _entered = runtime().enter();
        let mut future = service.call(req);
        // Kept beyond `call` (by a fill, a refresh, a forward): the app may be called, on this
        // loop. A hit dropped the request, and never needs it.
        if Arc::strong_count(call) > 1 {
            call.take_loop(py)?;
        }
        match future.take_ready() {
            Some(response) => match full_body(py, response)? {
                Ok(answer) => return Ok(Some(answer)),
                Err(partial) => Err(partial),
            },
            None => Ok(future),
        }
    };
    let awaitable = crate::bridge::spawn(py, move |_locals| async move {
        let (response, first) = match pending {
            Ok(future) => (future.await.map_err(app::AppError::into_py)?, None),
            Err(partial) => partial,
        };
        Ok(AsgiResponse::new(response, first))
    })?;
    Ok(Some(awaitable))
}

type CachedResponse = http::Response<CacheBody<AppBody>>;
/// A response to stream, with the part of its body already read.
type Partial = (CachedResponse, Option<bytes::Bytes>);

/// A response whose whole body is at hand, as `(status, headers, body)`; else the response
/// back, with the part of its body already read.
fn full_body<'py>(
    py: Python<'py>,
    mut response: CachedResponse,
) -> PyResult<Result<Bound<'py, PyAny>, Partial>> {
    // Answered at once means served from the store: a whole body, ready without waiting.
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let data = match std::pin::Pin::new(response.body_mut()).poll_frame(&mut cx) {
        Poll::Ready(None) => bytes::Bytes::new(),
        Poll::Ready(Some(Ok(frame))) => {
            let data = frame.into_data().unwrap_or_default();
            if !response.body().is_end_stream() {
                return Ok(Err((response, Some(data))));
            }
            data
        }
        _ => return Ok(Err((response, None))),
    };
    let (status, headers) = head_to_python(py, &response)?;
    let body = PyBytes::new(py, &data);
    Ok(Ok(
        PyTuple::new(py, [status, headers, body.into_any()])?.into_any()
    ))
}

impl Engine {
    pub(crate) fn new(service: CacheService<AsgiApp>) -> Self {
        Self { service }
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<HttpCache>()?;
    m.add_class::<Engine>()?;
    m.add_class::<BodyWanted>()?;
    m.add_class::<AsgiResponse>()?;
    m.add_class::<app::Sink>()?;
    m.add_function(wrap_pyfunction!(settings::_http_defaults, m)?)?;
    Ok(())
}
