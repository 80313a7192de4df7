//! Crossing between larder's tokio runtime and Python, safely at interpreter exit too.
//!
//! Every time a runtime thread needs Python (to deliver a result to the event loop, to encode or
//! decode a value, to start a factory coroutine) it goes through [`attach`], which counts it.
//! At exit, before the interpreter finalizes, `larder` calls [`drain`] (an `atexit` hook): it
//! stops new crossings and waits, without the GIL, for those under way. A runtime thread that
//! took the GIL while the interpreter finalized would be a fatal error in CPython (seen as
//! `PyGILState_Release: thread state must be current` aborts when a process exited right after
//! its last result arrived).

use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3_async_runtimes::TaskLocals;

use crate::runtime::runtime;

static CROSSING: AtomicUsize = AtomicUsize::new(0);
static CLOSED: AtomicBool = AtomicBool::new(false);

/// Runs `f` with the GIL from a runtime thread, unless the interpreter is shutting down.
pub(crate) fn attach<R>(f: impl for<'py> FnOnce(Python<'py>) -> PyResult<R>) -> PyResult<R> {
    CROSSING.fetch_add(1, Ordering::SeqCst);
    let result = if CLOSED.load(Ordering::SeqCst) {
        Err(PyRuntimeError::new_err("the interpreter is shutting down"))
    } else {
        Python::attach(f)
    };
    CROSSING.fetch_sub(1, Ordering::SeqCst);
    result
}

/// Stops new crossings and waits (at most `limit`, GIL released) for those under way.
#[pyfunction]
#[pyo3(signature = (limit = 2.0))]
pub(crate) fn drain(py: Python<'_>, limit: f64) {
    CLOSED.store(true, Ordering::SeqCst);
    let deadline = Instant::now() + Duration::from_secs_f64(limit.clamp(0.0, 60.0));
    py.detach(|| {
        while CROSSING.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
    });
}

/// An awaitable for work on larder's runtime, built by `build` when first awaited (so, like a
/// coroutine, it can be handed to `asyncio.run` or `gather` before a loop runs). `build` gets the
/// awaiting loop's task locals, for work that calls back into Python coroutines. Cancelling the
/// await cancels nothing else: the work finishes and its result is dropped.
pub(crate) fn spawn<'py, B, F, T>(py: Python<'py>, build: B) -> PyResult<Bound<'py, PyAny>>
where
    B: FnOnce(TaskLocals) -> F + Send + 'static,
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let start: Start = Box::new(move |py| {
        let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
        let event_loop = locals.event_loop(py);
        let py_future = event_loop.call_method0("create_future")?;
        let target = py_future.clone().unbind();
        let fut = build(locals.clone());
        runtime().spawn(async move {
            let result = fut.await;
            let _ = attach(|py| {
                let (ok, value) = match result.and_then(|v| v.into_py_any(py)) {
                    Ok(v) => (true, v),
                    Err(e) => (false, e.into_value(py).into_any()),
                };
                let kwargs = PyDict::new(py);
                kwargs.set_item("context", locals.context(py))?;
                let resolve = py.import("larder._larder")?.getattr("_resolve")?;
                locals.event_loop(py).call_method(
                    "call_soon_threadsafe",
                    (resolve, target.bind(py), ok, value),
                    Some(&kwargs),
                )?;
                Ok(())
            });
        });
        Ok(py_future.unbind())
    });
    Ok(Bound::new(py, Deferred::new(start))?.into_any())
}

type Start = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// Work on larder's runtime that starts when awaited. It is a coroutine (registered as
/// `collections.abc.Coroutine`), so `asyncio.run`, `gather` and `create_task` take it.
#[pyclass(module = "larder")]
pub struct Deferred {
    state: Mutex<Phase>,
}

enum Phase {
    NotStarted(Start),
    /// The asyncio future's `__await__` iterator, which the await drives.
    Awaiting(Py<PyAny>),
    Done,
}

impl Deferred {
    fn new(start: Start) -> Self {
        Self {
            state: Mutex::new(Phase::NotStarted(start)),
        }
    }

    /// The iterator the await drives, starting the work on first use.
    fn iterator(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let mut state = self
            .state
            .lock()
            .map_err(|_| PyRuntimeError::new_err("poisoned"))?;
        match std::mem::replace(&mut *state, Phase::Done) {
            Phase::NotStarted(start) => {
                let future = start(py)?;
                let iter = future.bind(py).call_method0("__await__")?.unbind();
                *state = Phase::Awaiting(iter.clone_ref(py));
                Ok(iter)
            }
            Phase::Awaiting(iter) => {
                *state = Phase::Awaiting(iter.clone_ref(py));
                Ok(iter)
            }
            Phase::Done => Err(PyRuntimeError::new_err(
                "cannot reuse an already awaited larder awaitable",
            )),
        }
    }
}

#[pymethods]
impl Deferred {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        self.send(py, py.None())
    }

    fn send(&self, py: Python<'_>, value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        let iter = self.iterator(py)?;
        let result = if value.is_none(py) {
            iter.bind(py).call_method0("__next__")
        } else {
            iter.bind(py).call_method1("send", (value,))
        };
        if result.is_err() {
            // Finished (StopIteration carries the result) or failed: nothing more to drive.
            if let Ok(mut state) = self.state.lock() {
                *state = Phase::Done;
            }
        }
        Ok(result?.unbind())
    }

    #[pyo3(signature = (typ, val = None, tb = None))]
    fn throw(
        &self,
        py: Python<'_>,
        typ: Py<PyAny>,
        val: Option<Py<PyAny>>,
        tb: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        let iter = self.iterator(py)?;
        let args = (
            typ,
            val.unwrap_or_else(|| py.None()),
            tb.unwrap_or_else(|| py.None()),
        );
        Ok(iter.bind(py).call_method1("throw", args)?.unbind())
    }

    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let phase = match self.state.lock() {
            Ok(mut state) => std::mem::replace(&mut *state, Phase::Done),
            Err(_) => return Ok(()),
        };
        if let Phase::Awaiting(iter) = phase {
            let _ = iter.bind(py).call_method0("close");
        }
        Ok(())
    }
}

/// Sets an asyncio future's outcome, on its loop, unless it is done already (cancelled).
#[pyfunction]
pub(crate) fn _resolve(
    future: &Bound<'_, PyAny>,
    ok: bool,
    value: Bound<'_, PyAny>,
) -> PyResult<()> {
    if future.call_method0("done")?.extract::<bool>()? {
        return Ok(());
    }
    if ok {
        future.call_method1("set_result", (value,))?;
    } else {
        future.call_method1("set_exception", (value,))?;
    }
    Ok(())
}
