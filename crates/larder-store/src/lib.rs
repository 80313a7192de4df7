//! The byte-level remote store: what Redis, Memcached or any shared store implements to sit
//! behind (or instead of) the memory tier of a `larder::Cache`.
//!
//! This crate holds only the trait and its types, so that the core (`larder`) and the store crates
//! (`larder-redis`, `larder-memcached`) depend on it and not on each other; `larder` re-exports
//! everything here. The trait is object-safe (`Arc<dyn Store>`), every method returns a boxed
//! future, and values are opaque envelopes written by the core. A store decides its own physical key
//! layout from the namespace and key it is given, so that it can clear a namespace its own way (SCAN
//! on Redis, a version key on Memcached).
#![warn(missing_docs)]

mod backplane;
mod helpers;

pub use backplane::{Backplane, BackplaneEvent, BackplaneSink, Subscription};
pub use helpers::{escape_namespace, percent_decode, redact_url};

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;

/// A future returned by a [`Store`].
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where an entry lives: its namespace and its key inside that namespace.
///
/// ```
/// let k = larder_store::StoreKey::new("users", "42");
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
    /// The store does not offer this operation (for example locks).
    #[error("the store does not support {0}")]
    Unsupported(&'static str),
}

impl StoreError {
    /// A connection failure caused by `error`.
    ///
    /// ```
    /// let e = larder_store::StoreError::connection(std::io::Error::other("refused"));
    /// assert!(e.to_string().contains("refused"));
    /// ```
    pub fn connection(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Connection(Box::new(error))
    }

    /// An error reply from the store.
    ///
    /// ```
    /// let e = larder_store::StoreError::server(std::io::Error::other("OOM"));
    /// assert!(e.to_string().contains("OOM"));
    /// ```
    pub fn server(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self::Server(Box::new(error))
    }
}

/// What [`Store::get_within`] found under a key.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreRead {
    /// The envelope, whole.
    Whole(Bytes),
    /// An envelope longer than the limit: its length in bytes, not read.
    Longer(u64),
}

/// A byte-level remote store.
///
/// Implementors must be cheap to call concurrently from many tasks. Time limits and the circuit
/// breaker live in the cache that calls the store, not here; a store should still bound its own
/// connection attempts so that a dead server does not pile up work behind the cache's timeout.
///
/// A store that keeps nothing, to show the shape of an implementation:
///
/// ```
/// use std::time::Duration;
/// use bytes::Bytes;
/// use larder_store::{Store, StoreEntry, StoreFuture, StoreKey};
///
/// struct Nothing;
///
/// impl Store for Nothing {
///     fn name(&self) -> &str { "nothing" }
///     fn get<'a>(&'a self, _: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>> {
///         Box::pin(async { Ok(None) })
///     }
///     fn get_many<'a>(&'a self, keys: &'a [StoreKey<'a>]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
///         Box::pin(async move { Ok(vec![None; keys.len()]) })
///     }
///     fn set<'a>(&'a self, _: StoreKey<'a>, _: Bytes, _: Duration) -> StoreFuture<'a, ()> {
///         Box::pin(async { Ok(()) })
///     }
///     fn set_many<'a>(&'a self, _: Vec<StoreEntry<'a>>) -> StoreFuture<'a, ()> {
///         Box::pin(async { Ok(()) })
///     }
///     fn delete<'a>(&'a self, _: StoreKey<'a>) -> StoreFuture<'a, bool> {
///         Box::pin(async { Ok(false) })
///     }
///     fn clear_namespace<'a>(&'a self, _: &'a str) -> StoreFuture<'a, ()> {
///         Box::pin(async { Ok(()) })
///     }
///     fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>> {
///         Box::pin(async move { Ok(vec![0; tags.len()]) })
///     }
///     fn invalidate_tags<'a>(&'a self, _: &'a [&'a str]) -> StoreFuture<'a, ()> {
///         Box::pin(async { Ok(()) })
///     }
///     fn ping(&self) -> StoreFuture<'_, ()> {
///         Box::pin(async { Ok(()) })
///     }
/// }
///
/// let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(Nothing);
/// assert_eq!(store.name(), "nothing");
/// ```
pub trait Store: Send + Sync + 'static {
    /// A short name for logs and metrics ("redis", "memcached", ...).
    fn name(&self) -> &str;

    /// The envelope under `key`, if any.
    fn get<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>>;

    /// The envelope under `key` if it is at most `limit` bytes long; if it is longer, only its
    /// length, so the caller can make room before it reads that much. The default reads it
    /// whole whatever its length ([`StoreRead::Whole`]); Redis asks for the length and the value in
    /// one round trip.
    fn get_within<'a>(
        &'a self,
        key: StoreKey<'a>,
        limit: usize,
    ) -> StoreFuture<'a, Option<StoreRead>> {
        let _ = limit;
        let got = self.get(key);
        Box::pin(async move { Ok(got.await?.map(StoreRead::Whole)) })
    }

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

    /// The current version of each tag. Entries remember the versions they were written under and
    /// read as misses once a version moved, so a store must never hand out a version it handed
    /// out before for the same tag, even after losing the counter (eviction, flush): starting a
    /// missing counter at the current time is one way.
    fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>>;

    /// Bumps the version of each tag, so entries written under an older version read as misses.
    fn invalidate_tags<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, ()>;

    /// Checks that the store answers.
    fn ping(&self) -> StoreFuture<'_, ()>;

    /// Takes the lock `key` for `ttl`, marked with `token`, unless someone holds it; whether it
    /// was taken. The lock must expire by itself after `ttl`, so a holder that dies frees it.
    /// The default: [`StoreError::Unsupported`], and callers then go on without a lock.
    fn try_lock<'a>(
        &'a self,
        key: StoreKey<'a>,
        token: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let _ = (key, token, ttl);
        Box::pin(async { Err(StoreError::Unsupported("locks")) })
    }

    /// Releases the lock `key` if `token` still holds it (not if it expired and someone else took
    /// it since).
    fn unlock<'a>(&'a self, key: StoreKey<'a>, token: &'a [u8]) -> StoreFuture<'a, ()> {
        let _ = (key, token);
        Box::pin(async { Err(StoreError::Unsupported("locks")) })
    }
}
