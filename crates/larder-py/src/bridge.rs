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
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use pyo3::IntoPyObjectExt;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyDict;

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

/// Runs `fut` on larder's runtime and returns an asyncio future of the running loop that gets
/// its result (or its exception). Cancelling the asyncio future cancels nothing else: the work
/// finishes, and its result is dropped.
pub(crate) fn spawn<'py, F, T>(py: Python<'py>, fut: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = PyResult<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let locals = pyo3_async_runtimes::tokio::get_current_locals(py)?;
    let event_loop = locals.event_loop(py);
    let py_future = event_loop.call_method0("create_future")?;
    let target = py_future.clone().unbind();
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
    Ok(py_future)
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
