//! The ASGI app as a tower service: what larder-http calls when it needs the origin. The app
//! runs on the event loop of the request that needed it; what it sends comes back through a
//! [`Sink`] as an `http::Response` whose body streams while the app produces it.

use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderMap, HeaderName, HeaderValue, Request, Response, StatusCode};
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyTypeError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList};
use tokio::sync::{SetOnce, mpsc, oneshot};
use tower_service::Service;

use super::body::{AppBody, Part};
use crate::bridge::attach;
use crate::ready::Ready;

/// Body parts an app may send ahead of the reader (the recording or the client): each is one
/// `http.response.body` message; past this the app's `send` waits.
const PARTS_AHEAD: usize = 8;

/// What went wrong in the app, as larder-http sees it.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AppError {
    /// The app raised; the exception reaches the caller as itself.
    #[error("the ASGI app raised: {0}")]
    Raised(PyErr),
    #[error("the ASGI app returned without starting a response")]
    NoResponse,
    #[error("the ASGI app ended its response before its last body message")]
    Truncated,
    #[error("the ASGI app sent {0}")]
    BadMessage(String),
    #[error("larder could not run the ASGI app: {0}")]
    Bridge(PyErr),
}

impl AppError {
    /// The exception Python sees: the app's own when it raised one.
    pub(crate) fn into_py(self) -> PyErr {
        match self {
            Self::Raised(e) | Self::Bridge(e) => e,
            other => PyRuntimeError::new_err(other.to_string()),
        }
    }
}

/// The request's scope, and its event loop and context once taken, carried in the request's
/// extensions from the middleware to wherever larder-http calls the app (a fill, a background
/// refresh, a forwarded write).
pub(crate) struct AppCall {
    scope: Py<PyDict>,
    /// Taken on the loop's thread only for a request something kept (a fill, a refresh): a
    /// hit, which never calls the app, does not pay for them.
    on_loop: SetOnce<Result<OnLoop, String>>,
}

struct OnLoop {
    event_loop: Py<PyAny>,
    context: Py<PyAny>,
}

impl AppCall {
    pub(crate) fn of(scope: &Bound<'_, PyDict>) -> Arc<Self> {
        Arc::new(Self {
            scope: scope.clone().unbind(),
            on_loop: SetOnce::new(),
        })
    }

    /// Takes the running loop and a copy of the context: on the loop's thread, as soon as
    /// larder-http's `call` returned having kept the request. A call of the app already waiting
    /// goes on then.
    pub(crate) fn take_loop(&self, py: Python<'_>) -> PyResult<()> {
        static RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        static COPY_CONTEXT: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
        let taken = (|| {
            let running_loop = RUNNING_LOOP.import(py, "asyncio", "get_running_loop")?;
            let copy_context = COPY_CONTEXT.import(py, "contextvars", "copy_context")?;
            PyResult::Ok(OnLoop {
                event_loop: running_loop.call0()?.unbind(),
                context: copy_context.call0()?.unbind(),
            })
        })();
        let told = taken.as_ref().map(|_| ()).map_err(|e| e.to_string());
        let _ = self.on_loop.set(taken.map_err(|e| e.to_string()));
        told.map_err(pyo3::exceptions::PyRuntimeError::new_err)
    }

    async fn on_loop(&self) -> Result<&OnLoop, AppError> {
        self.on_loop
            .wait()
            .await
            .as_ref()
            .map_err(|e| AppError::BadMessage(format!("no event loop to run the app on: {e}")))
    }
}

/// The body larder-http forwards with a request: the client's `receive` for a request whose
/// body the app may read, `None` for an empty one.
pub(crate) struct AppRequest(pub Option<Py<PyAny>>);

/// An ASGI app, started by `larder.asgi`'s `_start(app, scope, receive, sink)` on the loop.
#[derive(Clone)]
pub(crate) struct AsgiApp {
    start: Arc<Py<PyAny>>,
}

impl AsgiApp {
    /// `start` is the app bound into larder's starter: called on the event loop with
    /// `(scope, receive, sink)`.
    pub(crate) fn new(start: Py<PyAny>) -> Self {
        Self {
            start: Arc::new(start),
        }
    }
}

impl Service<Request<AppRequest>> for AsgiApp {
    type Response = Response<AppBody>;
    type Error = AppError;
    type Future = BoxFuture<'static, Result<Response<AppBody>, AppError>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), AppError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<AppRequest>) -> Self::Future {
        let start = self.start.clone();
        Box::pin(async move {
            let (parts, AppRequest(receive)) = req.into_parts();
            let call =
                parts
                    .extensions
                    .get::<Arc<AppCall>>()
                    .cloned()
                    .ok_or(AppError::BadMessage(
                        "no scope: a request that did not come from ASGI".into(),
                    ))?;
            let on_loop = call.on_loop().await?;
            let (head_tx, head_rx) = oneshot::channel();
            let (body_tx, body_rx) = mpsc::channel(PARTS_AHEAD);
            attach(|py| {
                let scope = call.scope.bind(py).copy()?;
                scope.set_item("method", parts.method.as_str())?;
                scope.set_item("headers", headers_to_python(py, &parts.headers)?)?;
                canonical_path(&scope, parts.uri.path())?;
                forget_send_extensions(&scope)?;
                let sink = Sink {
                    state: Mutex::new(SinkState::Head(head_tx, body_tx)),
                };
                let kwargs = PyDict::new(py);
                kwargs.set_item("context", on_loop.context.bind(py))?;
                on_loop.event_loop.bind(py).call_method(
                    "call_soon_threadsafe",
                    (start.bind(py), scope, receive, sink),
                    Some(&kwargs),
                )?;
                Ok(())
            })
            .map_err(AppError::Bridge)?;
            let head = head_rx.await.map_err(|_| AppError::NoResponse)??;
            let mut response = Response::new(AppBody::new(body_rx));
            *response.status_mut() = head.status;
            *response.headers_mut() = head.headers;
            Ok(response)
        })
    }
}

/// The path the cache matched its rules on and keyed the request by (larder-http's canonical
/// form: escapes normalized, dot segments and doubled slashes gone) is the one the app routes
/// on: `raw_path` as sent upstream by a proxy, and `path` decoded from it as an ASGI server
/// decodes it.
fn canonical_path(scope: &Bound<'_, PyDict>, path: &str) -> PyResult<()> {
    let sent = scope.get_item("raw_path")?;
    if sent
        .as_ref()
        .and_then(|raw| raw.cast::<PyBytes>().ok())
        .is_some_and(|raw| raw.as_bytes() == path.as_bytes())
    {
        return Ok(());
    }
    scope.set_item("raw_path", PyBytes::new(scope.py(), path.as_bytes()))?;
    scope.set_item("path", percent_decoded(path))?;
    Ok(())
}

/// `%XX` escapes decoded, the bytes read as UTF-8 with replacement (uvicorn's `unquote`).
fn percent_decoded(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |j: usize| bytes.get(j).and_then(|b| (*b as char).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
        {
            out.push((h * 16 + l) as u8);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The response extensions a recording cannot carry (a file sent by path, zero-copy sends):
/// the app is told they are not there, so it sends its body as bytes.
fn forget_send_extensions(scope: &Bound<'_, PyDict>) -> PyResult<()> {
    if let Some(ext) = scope.get_item("extensions")?
        && let Ok(ext) = ext.cast::<PyDict>()
    {
        let kept = ext.copy()?;
        for name in ["http.response.pathsend", "http.response.zerocopysend"] {
            if kept.contains(name)? {
                kept.del_item(name)?;
            }
        }
        scope.set_item("extensions", kept)?;
    }
    Ok(())
}

/// ASGI headers: a list of `(name, value)` byte-string pairs.
pub(crate) fn headers_to_python<'py>(
    py: Python<'py>,
    headers: &HeaderMap,
) -> PyResult<Bound<'py, PyList>> {
    let list = PyList::empty(py);
    for (name, value) in headers {
        list.append((
            PyBytes::new(py, name.as_str().as_bytes()),
            PyBytes::new(py, value.as_bytes()),
        ))?;
    }
    Ok(list)
}

struct Head {
    status: StatusCode,
    headers: HeaderMap,
}

enum SinkState {
    /// Before `http.response.start`.
    Head(
        oneshot::Sender<Result<Head, AppError>>,
        mpsc::Sender<Result<Part, AppError>>,
    ),
    /// Between the start and the last body message.
    Body(mpsc::Sender<Result<Part, AppError>>),
    Done,
}

/// The app's `send`: takes `http.response.start` and `http.response.body` messages and hands
/// them to larder-http as a response head and body parts.
#[pyclass(module = "larder", frozen)]
pub struct Sink {
    state: Mutex<SinkState>,
}

#[pymethods]
impl Sink {
    /// One ASGI message; returns an awaitable, done at once unless the reader is behind.
    fn send<'py>(
        &self,
        py: Python<'py>,
        message: &Bound<'py, PyDict>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kind: String = message
            .get_item("type")?
            .ok_or_else(|| PyTypeError::new_err("an ASGI message needs a 'type'"))?
            .extract()?;
        let mut state = self
            .state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
        match (
            kind.as_str(),
            std::mem::replace(&mut *state, SinkState::Done),
        ) {
            ("http.response.start", SinkState::Head(head_tx, body_tx)) => {
                let head = read_head(message);
                let failed = head.is_err();
                let _ = head_tx.send(head.map_err(AppError::BadMessage));
                if !failed {
                    *state = SinkState::Body(body_tx);
                }
                Ready::now(py, py.None())
            }
            ("http.response.body", SinkState::Body(body_tx)) => {
                let more = match message.get_item("more_body")? {
                    Some(m) => m.is_truthy()?,
                    None => false,
                };
                let data = match message.get_item("body")? {
                    Some(b) if !b.is_none() => match b.cast::<PyBytes>() {
                        Ok(bytes) => Bytes::copy_from_slice(bytes.as_bytes()),
                        Err(_) => Bytes::from(b.extract::<Vec<u8>>()?),
                    },
                    _ => Bytes::new(),
                };
                let part = if more {
                    Part::Data(data)
                } else {
                    Part::Last(data)
                };
                if more {
                    *state = SinkState::Body(body_tx.clone());
                }
                drop(state);
                push(py, body_tx, Ok(part))
            }
            // Trailers are not recorded; the body's last message ends the response.
            ("http.response.trailers", s) => {
                *state = s;
                Ready::now(py, py.None())
            }
            // After the last message (or once the reader is gone) there is nobody to tell.
            (_, SinkState::Done) => Ready::now(py, py.None()),
            (other, s) => {
                let what = format!("{other:?} out of order");
                fail_state(s, AppError::BadMessage(what.clone()));
                Err(PyRuntimeError::new_err(format!("larder.asgi: {what}")))
            }
        }
    }

    /// The app raised `exc`: the response fails with it.
    fn fail(&self, exc: Bound<'_, PyAny>) {
        if let Ok(mut state) = self.state.lock() {
            let s = std::mem::replace(&mut *state, SinkState::Done);
            fail_state(s, AppError::Raised(PyErr::from_value(exc)));
        }
    }

    /// The app returned: a response it left unfinished fails.
    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            let s = std::mem::replace(&mut *state, SinkState::Done);
            match s {
                SinkState::Head(..) => fail_state(s, AppError::NoResponse),
                _ => fail_state(s, AppError::Truncated),
            }
        }
    }
}

fn fail_state(state: SinkState, error: AppError) {
    match state {
        SinkState::Head(head_tx, _) => {
            let _ = head_tx.send(Err(error));
        }
        // Best effort: a reader that is behind sees the channel end without the last part,
        // which it reads as a truncated body all the same.
        SinkState::Body(body_tx) => {
            let _ = body_tx.try_send(Err(error));
        }
        SinkState::Done => {}
    }
}

/// Queues a body part; waits on larder's runtime only when the reader is `PARTS_AHEAD` behind.
fn push<'py>(
    py: Python<'py>,
    tx: mpsc::Sender<Result<Part, AppError>>,
    part: Result<Part, AppError>,
) -> PyResult<Bound<'py, PyAny>> {
    match tx.try_send(part) {
        Ok(()) => Ready::now(py, py.None()),
        Err(mpsc::error::TrySendError::Closed(_)) => Err(gone()),
        Err(mpsc::error::TrySendError::Full(part)) => {
            crate::bridge::spawn(py, move |_| async move {
                tx.send(part).await.map_err(|_| gone())
            })
        }
    }
}

/// Nobody reads the response any more (its clients left and it is not being recorded): as ASGI
/// 2.4 says of a closed connection, `send` raises `OSError`, so an endless stream stops.
fn gone() -> PyErr {
    PyOSError::new_err("larder.asgi: nobody reads this response any more")
}

fn read_head(message: &Bound<'_, PyDict>) -> Result<Head, String> {
    let status: u16 = message
        .get_item("status")
        .ok()
        .flatten()
        .and_then(|s| s.extract().ok())
        .ok_or("http.response.start without an integer status")?;
    let status = StatusCode::from_u16(status)
        .ok()
        .filter(|s| !s.is_informational())
        .ok_or_else(|| format!("the status {status}, which is not a final HTTP status"))?;
    let mut headers = HeaderMap::new();
    if let Some(list) = message.get_item("headers").ok().flatten() {
        let pairs = list.try_iter().map_err(|_| "headers that are not a list")?;
        for pair in pairs {
            let (name, value): (Vec<u8>, Vec<u8>) = pair
                .and_then(|p| p.extract())
                .map_err(|_| "a header that is not a (name, value) pair of bytes")?;
            let name = HeaderName::from_bytes(&name)
                .map_err(|_| format!("a bad header name {:?}", String::from_utf8_lossy(&name)))?;
            let value = HeaderValue::from_bytes(&value)
                .map_err(|_| format!("a bad value for the header {name}"))?;
            headers.append(name, value);
        }
    }
    Ok(Head { status, headers })
}
