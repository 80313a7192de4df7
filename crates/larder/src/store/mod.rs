//! The byte-level remote store: what Redis, Memcached or any shared store implements to sit
//! behind (or instead of) the memory tier.
//!
//! The trait is object-safe (`Arc<dyn Store>`), every method returns a boxed future, and values are
//! opaque envelopes (see [`codec`](crate::codec)). A store decides its own physical key layout from
//! the namespace and key it is given, so that it can clear a namespace its own way (SCAN on Redis,
//! a version key on Memcached).

mod in_process;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

pub use in_process::InProcessStore;

/// A future returned by a [`Store`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where an entry lives: its namespace and its key inside that namespace.
///
/// ```
/// let k = larder::StoreKey::new("users", "42");
/// assert_eq!((k.namespace, k.key), ("users", "42"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StoreKey<'a> {
    /// The namespace ("" for the default one).
    pub namespace: &'a str,
    /// The key within the namespace.
    pub key: &'a str,
}

impl<'a> StoreKey<'a> {
    /// A key in a namespace.
    pub fn new(namespace: &'a str, key: &'a str) -> Self {
        Self { namespace, key }
    }
}

/// One entry of a [`Store::set_many`] call.
#[derive(Debug, Clone)]
pub struct StoreEntry<'a> {
    /// Where it goes.
    pub key: StoreKey<'a>,
    /// The envelope.
    pub value: Bytes,
    /// Physical expiry: the end of the entry's stale window.
    pub ttl: Duration,
}

/// Why a store call failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The call did not finish within the store's timeout.
    #[error("store call timed out after {0:?}")]
    Timeout(Duration),
    /// The store could not be reached or the connection broke.
    #[error("store connection failed: {0}")]
    Connection(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store answered with an error.
    #[error("store replied with an error: {0}")]
    Server(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The store's answer was not what the protocol allows.
    #[error("unexpected reply from the store: {0}")]
    Protocol(String),
}

/// A byte-level remote store.
///
/// Implementors must be cheap to call concurrently from many tasks. Time limits, retries and the
/// circuit breaker live in the [`Cache`](crate::Cache), not here.
///
/// ```
/// use std::sync::Arc;
/// use larder::{Cache, InProcessStore, Store};
///
/// let store: Arc<dyn Store> = Arc::new(InProcessStore::new());
/// let cache = Cache::builder().remote(store).build();
/// # let _ = cache;
/// ```
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and metrics ("redis", "memcached", ...).
    fn name(&self) -> &str;

    /// The envelope under `key`, if any.
    fn get<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>>;

    /// The envelopes under `keys`, in order.
    fn get_many<'a>(&'a self, keys: &'a [StoreKey<'a>]) -> StoreFuture<'a, Vec<Option<Bytes>>>;

    /// Stores `value` under `key`, expiring after `ttl`.
    fn set<'a>(&'a self, key: StoreKey<'a>, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()>;

    /// Stores many entries (pipelined where the store can).
    fn set_many<'a>(&'a self, entries: Vec<StoreEntry<'a>>) -> StoreFuture<'a, ()>;

    /// Deletes `key`; whether something was there.
    fn delete<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, bool>;

    /// Removes (or makes unreachable) every entry of `namespace`.
    fn clear_namespace<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, ()>;

    /// The current version of each tag (0 for a tag never invalidated).
    fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>>;

    /// Bumps the version of each tag, so entries written under an older version read as misses.
    fn invalidate_tags<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, ()>;

    /// Checks that the store answers.
    fn ping(&self) -> StoreFuture<'_, ()>;
}
