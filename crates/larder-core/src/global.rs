//! The default cache that `#[cached]` functions use when they name none.

use std::sync::OnceLock;

use crate::Cache;

static DEFAULT: OnceLock<Cache> = OnceLock::new();

/// Sets the cache that `#[cached]` functions without a `cache = ...` option use. Call it once at
/// start-up, before the first memoized call; later calls return the cache back as `Err`.
///
/// ```
/// let cache = larder::Cache::builder().name("memo").build();
/// assert!(larder::set_default_cache(cache).is_ok());
/// assert_eq!(larder::default_cache().name(), "memo");
/// assert!(larder::set_default_cache(larder::Cache::new()).is_err());
/// ```
pub fn set_default_cache(cache: Cache) -> Result<(), Cache> {
    DEFAULT.set(cache)
}

/// The default cache: the one given to [`set_default_cache`], or else a memory-only
/// [`Cache::new`] made on first use.
///
/// ```
/// let cache = larder::default_cache();
/// # let _ = cache;
/// ```
pub fn default_cache() -> &'static Cache {
    DEFAULT.get_or_init(Cache::new)
}
