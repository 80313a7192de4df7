//! larder for Python: the larder engine (memory tier, Redis / Memcached stores, single-flight,
//! fail-safe) as the `larder._larder` extension module. The Python package `larder` re-exports it.

mod asgi;
mod bridge;
mod cache;
mod call_key;
mod duration;
mod py_logging;
mod ready;
mod runtime;
mod switch;
mod value;

use pyo3::prelude::*;

/// The extension module.
#[pymodule]
fn _larder(m: &Bound<'_, PyModule>) -> PyResult<()> {
    py_logging::install();
    m.add_class::<cache::PyCache>()?;
    m.add_class::<ready::Ready>()?;
    m.add_class::<bridge::Deferred>()?;
    m.add_class::<call_key::CallKey>()?;
    asgi::register(m)?;
    m.add_function(wrap_pyfunction!(duration::_check_duration, m)?)?;
    m.add_function(wrap_pyfunction!(switch::_switch_off, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::drain, m)?)?;
    m.add_function(wrap_pyfunction!(bridge::_resolve, m)?)?;
    Ok(())
}
