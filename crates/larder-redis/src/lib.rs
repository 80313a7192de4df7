//! # larder-redis
//!
//! A Redis remote store for [larder](https://docs.rs/larder): standalone servers, TLS
//! (`rediss://`), and Redis Cluster (`redis+cluster://host1,host2`). Use it through
//! `larder::Cache::from_url` (feature `redis` of `larder`) or hand a [`RedisStore`] to
//! `Cache::builder().remote(..)`:
//!
//! ```
//! use std::sync::Arc;
//! use larder::Cache;
//! use larder_redis::RedisStore;
//!
//! // Memory tier in front of Redis; nothing connects until the first call.
//! let store = RedisStore::open("redis://127.0.0.1:6379").unwrap();
//! let cache = Cache::builder().remote(Arc::new(store)).build();
//! # let _ = cache;
//! ```
//!
//! Time limits, the circuit breaker and the degradation to memory and factory when Redis is down
//! live in the `Cache`; this crate only speaks Redis.
#![warn(missing_docs)]

mod backplane;
mod connection;
mod layout;
mod store;
mod url;

use std::path::PathBuf;

pub use backplane::RedisBackplane;
pub use store::{RedisStore, RedisStoreBuilder};

/// Why a [`RedisStore`] could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The URL is not one the store understands.
    #[error("invalid Redis URL {url}: {reason}")]
    InvalidUrl {
        /// The URL, with any password hidden.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The CA file named by `ca_file=` could not be read.
    #[error("cannot read the CA file {path}: {source}")]
    CaFile {
        /// The path.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A custom CA was given but this build has no TLS (enable the `tls` feature).
    #[error("TLS options given but larder-redis was built without its `tls` feature")]
    TlsNotCompiled,
    /// The store was used outside a tokio runtime, which the Redis client needs.
    #[error("the Redis store needs a tokio runtime")]
    NoRuntime,
    /// The Redis client rejected the configuration, or connecting failed.
    #[error(transparent)]
    Redis(#[from] redis::RedisError),
}
