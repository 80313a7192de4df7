//! larder switched off, for tests (`larder.testing`): `@cached`, `cache_response` and
//! `get_or_fetch` call the function every time and store nothing, and `CacheMiddleware` hands
//! every request to the app. One atomic flag, read where each of those starts (a relaxed load:
//! nothing on a hit path grows).

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use pyo3::prelude::*;

static OFF: AtomicBool = AtomicBool::new(false);

/// Whether larder is switched off.
#[inline]
pub(crate) fn off() -> bool {
    OFF.load(Relaxed)
}

/// Switches larder off (`True`) or back on; what it was.
#[pyfunction]
pub(crate) fn _switch_off(off: bool) -> bool {
    OFF.swap(off, Relaxed)
}
