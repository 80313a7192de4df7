//! The tokio runtime larder owns for Python: every store call runs there, never on the event loop.

use std::future::Future;

use pyo3::prelude::*;
use tokio::runtime::Runtime;

pub(crate) fn runtime() -> &'static Runtime {
    pyo3_async_runtimes::tokio::get_runtime()
}

/// Runs `fut` to completion on larder's runtime for synchronous callers, with the GIL released.
pub(crate) fn block_on<F>(py: Python<'_>, fut: F) -> F::Output
where
    F: Future + Send,
    F::Output: Send,
{
    py.detach(|| runtime().block_on(fut))
}
