//! Support for the code `#[cached]` generates, and nothing else. Not a public API: names here
//! may change in any release.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::{Cache, CacheValue, EntryOptions, Timeout};

/// A result the memoized function returned but that is not to be cached (an `Err`, a `None`, or
/// a value `unless` rejected). It travels to every waiter as the fetch's "error".
#[derive(Debug)]
pub struct Uncached<R>(pub R);

/// The value out of a shared [`Uncached`]: moved out when this caller holds the last reference,
/// cloned otherwise.
pub fn take_uncached<R: Clone>(shared: Arc<Uncached<R>>) -> R {
    match Arc::try_unwrap(shared) {
        Ok(u) => u.0,
        Err(shared) => shared.0.clone(),
    }
}

/// The boxed future a memoized function returns.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'static>>;

/// What a memoized call does when the cache could not run it: the body panicked (the panic
/// continues in the caller, as it would without the cache), the runtime is shutting down, or
/// another function stored a value of another type under the same key.
#[track_caller]
pub fn unrecoverable<E>(function: &str, key: &str, error: crate::FetchError<E>) -> ! {
    use crate::FetchError;
    match error {
        FetchError::Panicked(msg) => panic!("#[cached] {function} (key {key:?}) panicked: {msg}"),
        FetchError::Cache(e) => panic!("#[cached] {function} (key {key:?}): {e}"),
        FetchError::Timeout(d) => {
            panic!("#[cached] {function} (key {key:?}) timed out after {d:?}")
        }
        FetchError::Cancelled => {
            panic!("#[cached] {function} (key {key:?}): the runtime is shutting down")
        }
        FetchError::Factory(_) => panic!("#[cached] {function} (key {key:?}) failed"),
    }
}

/// A memoized call timed out and its error type cannot carry a [`Timeout`] (no
/// `From<larder::Timeout>`): it has nothing of its return type to give.
#[track_caller]
pub fn timed_out(function: &str, key: &str, after: std::time::Duration) -> ! {
    panic!(
        "#[cached] {function} (key {key:?}) timed out after {after:?}; implement From<larder::Timeout> for its error type to get an Err instead"
    )
}

/// Compiles only when `E: From<Timeout>`: the check behind `#[cached(hard_timeout = ...)]`.
pub fn needs_from_timeout<E: From<Timeout>>() {}

/// Stores `value` under `key` in the memory tier only: `refresh` of a memoized plain `fn`, whose
/// calls use the memory tier alone (see `Cache::get_or_compute`).
pub fn remember<T: CacheValue>(cache: &Cache, key: &str, value: T, opts: EntryOptions) {
    cache.remember(key, value, opts);
}

/// Removes `key` from the memory tier only: `invalidate` of a memoized plain `fn`.
pub fn forget(cache: &Cache, key: &str) -> bool {
    cache.forget(key)
}

/// Turns a [`Timeout`] into a memoized function's error type `E` when `E: From<Timeout>`, and
/// into `None` otherwise, chosen at compile time for the concrete `E` (autoref specialization):
/// `(&TimeoutInto::<E>::new()).timeout_error(t)` with both traits in scope.
pub struct TimeoutInto<E>(PhantomData<E>);

impl<E> TimeoutInto<E> {
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Self(PhantomData)
    }
}

/// Chosen when `E: From<Timeout>`.
pub trait TimeoutViaFrom<E> {
    fn timeout_error(&self, timeout: Timeout) -> Option<E>;
}

impl<E: From<Timeout>> TimeoutViaFrom<E> for TimeoutInto<E> {
    fn timeout_error(&self, timeout: Timeout) -> Option<E> {
        Some(E::from(timeout))
    }
}

/// The fallback for any other `E`.
pub trait TimeoutUnconvertible<E> {
    fn timeout_error(&self, timeout: Timeout) -> Option<E>;
}

impl<E> TimeoutUnconvertible<E> for &TimeoutInto<E> {
    fn timeout_error(&self, _: Timeout) -> Option<E> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq)]
    struct Convertible(Timeout);

    impl From<Timeout> for Convertible {
        fn from(t: Timeout) -> Self {
            Self(t)
        }
    }

    #[test]
    // The borrow picks between the two traits: it is the point, not an accident.
    #[allow(clippy::needless_borrow)]
    fn a_timeout_converts_only_where_from_exists() {
        let t = Timeout(std::time::Duration::from_secs(1));
        assert_eq!(
            (&TimeoutInto::<Convertible>::new()).timeout_error(t),
            Some(Convertible(t))
        );
        assert_eq!((&TimeoutInto::<String>::new()).timeout_error(t), None);
    }
}
