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

    /// The coroutine protocol (it is registered as one, for `asyncio.run` and `create_task`).
    fn send(&mut self, py: Python<'_>, _value: Py<PyAny>) -> PyResult<Py<PyAny>> {
        self.__next__(py)
    }

    #[pyo3(signature = (typ, val = None, _tb = None))]
    fn throw(
        &mut self,
        py: Python<'_>,
        typ: Bound<'_, PyAny>,
        val: Option<Py<PyAny>>,
        _tb: Option<Py<PyAny>>,
    ) -> PyResult<Py<PyAny>> {
        self.value = None;
        let exc = match val {
            Some(v) if !v.is_none(py) => v.into_bound(py),
            _ if typ.is_instance_of::<pyo3::types::PyType>() => typ.call0()?,
            _ => typ,
        };
        Err(PyErr::from_value(exc))
    }

    fn close(&mut self) {
        self.value = None;
    }
}
