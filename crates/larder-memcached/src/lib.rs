//! # larder-memcached
//!
//! A memcached remote store for [larder](https://docs.rs/larder), speaking memcached's meta
//! protocol (1.6 or later) on a few pipelined connections of its own. Use it through
//! `larder::Cache::from_url("memcached://host:11211")` (feature `memcached` of `larder`) or hand a
//! [`MemcachedStore`] to `Cache::builder().remote(..)`:
//!
//! ```
//! use std::sync::Arc;
//! use larder::Cache;
//! use larder_memcached::MemcachedStore;
//!
//! // Memory tier in front of memcached; nothing connects until the first call.
//! let store = MemcachedStore::open("memcached://127.0.0.1:11211").unwrap();
//! let cache = Cache::builder().remote(Arc::new(store)).build();
//! # let _ = cache;
//! ```
//!
//! Memcached cannot list its keys, so namespaces and tags work by version keys (see
//! [`MemcachedStore`]). Time limits, the circuit breaker and the degradation to memory and factory
//! when memcached is down live in the `Cache`.
#![warn(missing_docs)]

mod connection;
mod generations;
mod layout;
mod pool;
mod store;
mod wire;

pub use store::{MemcachedStore, MemcachedStoreBuilder};

/// Why a [`MemcachedStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not one the store understands.
    #[error("invalid memcached URL {url}: {reason}")]
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The key prefix has spaces, control bytes or is over 100 bytes.
    #[error(
        "invalid memcached key prefix {0:?}: use at most 100 printable ASCII bytes without spaces"
    )]
    InvalidPrefix(String),
}
