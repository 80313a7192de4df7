//! Support for the code `#[cached]` generates. Not a public API: names here may change in any
//! release.

use std::sync::Arc;

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
