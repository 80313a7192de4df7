//! Durations as Python code writes them: seconds (int or float), a `datetime.timedelta`, or a
//! string such as `"90s"`, `"5m"`, `"1h 30m"`.

use std::time::Duration;

use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyFloat, PyInt, PyString};

/// Checks a duration where it is written (a decorator's arguments), so that a bad one is an
/// error when the module is imported rather than at the first call: its seconds, or `None`.
/// The error names the argument (`what`).
#[pyfunction]
#[pyo3(signature = (value, what))]
pub(crate) fn _check_duration(
    py: Python<'_>,
    value: Option<&Bound<'_, PyAny>>,
    what: &str,
) -> PyResult<Option<f64>> {
    duration(value)
        .map(|d| d.map(|d| d.as_secs_f64()))
        .map_err(|e| {
            let message = format!("{what}: {}", e.value(py));
            if e.is_instance_of::<PyTypeError>(py) {
                PyTypeError::new_err(message)
            } else {
                PyValueError::new_err(message)
            }
        })
}

/// Reads a duration; `None` stays `None`.
pub(crate) fn duration(value: Option<&Bound<'_, PyAny>>) -> PyResult<Option<Duration>> {
    let Some(v) = value else {
        return Ok(None);
    };
    if v.is_none() {
        return Ok(None);
    }
    if v.is_instance_of::<PyString>() {
        let text: String = v.extract()?;
        let text = text.trim();
        return match text.parse::<f64>() {
            Ok(secs) => seconds(secs).map(Some),
            Err(_) => humantime::parse_duration(text).map(Some).map_err(|e| {
                PyValueError::new_err(format!(
                    "not a duration: {text:?} ({e}); write \"90s\", \"5m\" or \"1h\""
                ))
            }),
        };
    }
    if v.is_instance_of::<PyInt>() || v.is_instance_of::<PyFloat>() {
        return seconds(v.extract::<f64>()?).map(Some);
    }
    if let Ok(total) = v.call_method0("total_seconds") {
        return seconds(total.extract::<f64>()?).map(Some);
    }
    Err(PyTypeError::new_err(format!(
        "a duration is seconds, a timedelta or a string such as \"5m\", not {}",
        v.get_type().name()?
    )))
}

fn seconds(secs: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(secs)
        .map_err(|_| PyValueError::new_err(format!("not a duration in seconds: {secs}")))
}
