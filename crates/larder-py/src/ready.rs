//! An awaitable that is already done: what a memory hit returns, so it never waits on the
//! event loop or the runtime.

use pyo3::exceptions::PyStopIteration;
use pyo3::prelude::*;

/// `await`ing it gives its value at once.
#[pyclass(module = "larder")]
pub struct Ready {
    value: Option<Py<PyAny>>,
}

impl Ready {
    pub(crate) fn now(py: Python<'_>, value: Py<PyAny>) -> PyResult<Bound<'_, PyAny>> {
        Ok(Bound::new(py, Ready { value: Some(value) })?.into_any())
    }
}

#[pymethods]
impl Ready {
    fn __await__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__(&mut self, py: Python<'_>) -> PyResult<Py<PyAny>> {
        let value = self.value.take().unwrap_or_else(|| py.None());
        // A 1-tuple, so a tuple value is not spread into StopIteration's arguments.
        Err(PyStopIteration::new_err((value,)))
    }
}
