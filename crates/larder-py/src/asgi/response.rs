//! A response on its way to the ASGI server: its head, and its body read part by part, each
//! part handed over at once when it is there and awaited on larder's runtime when it is not.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::Response;
use http_body::Body;
use larder_http::CacheBody;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyList};

use super::app::AppError;
use super::body::AppBody;

type Reading = Arc<Mutex<Option<CacheBody<AppBody>>>>;

/// The status and headers of a response, as ASGI's `http.response.start` carries them.
pub(crate) fn head_to_python<'py, B>(
    py: Python<'py>,
    response: &Response<B>,
) -> PyResult<(Bound<'py, PyAny>, Bound<'py, PyAny>)> {
    let status = response.status().as_u16().into_pyobject(py)?.into_any();
    Ok((status, response_headers(py, response.headers())?.into_any()))
}

/// A response's headers for the ASGI server, without `Date`: servers add their own (uvicorn,
/// hypercorn), and a stored response's second `Date` would contradict it. Freshness does not
/// suffer: the `Age` a hit carries tells clients how old it is.
fn response_headers<'py>(
    py: Python<'py>,
    headers: &http::HeaderMap,
) -> PyResult<Bound<'py, PyList>> {
    let pairs = headers
        .iter()
        .filter(|(name, _)| **name != http::header::DATE)
        .map(|(name, value)| (header_name(py, name), PyBytes::new(py, value.as_bytes())));
    PyList::new(py, pairs)
}

/// The names every hit carries, made into Python bytes once.
const COMMON_NAMES: [&str; 10] = [
    "content-length",
    "content-type",
    "age",
    "x-cache",
    "cache-status",
    "etag",
    "last-modified",
    "vary",
    "cache-control",
    "content-encoding",
];

/// A header's name as Python bytes: shared for the common names, new for the others.
fn header_name<'py>(py: Python<'py>, name: &http::HeaderName) -> Bound<'py, PyBytes> {
    static NAMES: PyOnceLock<Vec<Py<PyBytes>>> = PyOnceLock::new();
    let names = NAMES.get_or_init(py, || {
        COMMON_NAMES
            .iter()
            .map(|n| PyBytes::new(py, n.as_bytes()).unbind())
            .collect()
    });
    let name = name.as_str();
    match COMMON_NAMES.iter().position(|n| *n == name) {
        Some(i) => names[i].bind(py).clone(),
        None => PyBytes::new(py, name.as_bytes()),
    }
}

/// A response from the cache or the app: `status`, `headers`, and `next_chunk()` until `None`.
#[pyclass(module = "larder", frozen)]
pub struct AsgiResponse {
    status: u16,
    headers: http::HeaderMap,
    first: Mutex<Option<Bytes>>,
    body: Reading,
}

impl AsgiResponse {
    pub(crate) fn new(response: Response<CacheBody<AppBody>>, first: Option<Bytes>) -> Self {
        let (parts, body) = response.into_parts();
        Self {
            status: parts.status.as_u16(),
            headers: parts.headers,
            first: Mutex::new(first),
            body: Arc::new(Mutex::new(Some(body))),
        }
    }
}

#[pymethods]
impl AsgiResponse {
    #[getter]
    fn status(&self) -> u16 {
        self.status
    }

    #[getter]
    fn headers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        response_headers(py, &self.headers)
    }

    /// The next part of the body: `bytes` when it is there, `None` at the end, else an
    /// awaitable of either. A body that fails (the app raised, or its response was cut) raises:
    /// the app's own exception when it raised one.
    fn next_chunk<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        if let Some(first) = self.first.lock().ok().and_then(|mut f| f.take()) {
            return Ok(Some(PyBytes::new(py, &first).into_any()));
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        match poll_part(&self.body, &mut cx) {
            Poll::Ready(part) => Ok(part?.map(|data| PyBytes::new(py, &data).into_any())),
            Poll::Pending => {
                let body = self.body.clone();
                let awaitable = crate::bridge::spawn(py, move |_| async move {
                    let part = std::future::poll_fn(|cx| poll_part(&body, cx)).await?;
                    Ok(part.map(|data| data.to_vec()))
                })?;
                Ok(Some(awaitable))
            }
        }
    }
}

/// Polls the body for its next data frame (trailers are skipped): `None` at the end.
fn poll_part(body: &Reading, cx: &mut Context<'_>) -> Poll<PyResult<Option<Bytes>>> {
    let Ok(mut slot) = body.lock() else {
        return Poll::Ready(Err(PyRuntimeError::new_err("poisoned")));
    };
    let Some(inner) = slot.as_mut() else {
        return Poll::Ready(Ok(None));
    };
    loop {
        match Pin::new(&mut *inner).poll_frame(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(None) => {
                *slot = None;
                return Poll::Ready(Ok(None));
            }
            Poll::Ready(Some(Err(e))) => {
                *slot = None;
                return Poll::Ready(Err(body_error(e)));
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    return Poll::Ready(Ok(Some(data)));
                }
            }
        }
    }
}

/// The app's own exception when it raised one, else what larder-http says went wrong.
fn body_error(e: larder_http::BoxError) -> PyErr {
    match e.downcast::<AppError>() {
        Ok(app) => app.into_py(),
        Err(other) => PyRuntimeError::new_err(format!("the response body failed: {other}")),
    }
}
