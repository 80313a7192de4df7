//! # larder
//!
//! Async caching for Rust web services.
//!
//! A [`Cache`] has an in-process memory tier (decoded values, bounded by count and weight,
//! S3-FIFO eviction) and optionally a remote [`Store`] shared by every process. Its read path,
//! [`Cache::get_or_fetch`], runs the expensive work once per cold key however many callers ask
//! (single-flight), serves stale values when the source fails (fail-safe), bounds the work with
//! soft and hard timeouts, and refreshes hot entries before they expire (eager refresh).
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! use std::time::Duration;
//! use larder::{Cache, EntryOptions};
//!
//! let cache = Cache::new();
//! let opts = EntryOptions::new().ttl(Duration::from_secs(300));
//! let weather = cache
//!     .get_or_fetch_with(&larder::key!("weather", "Berlin"), opts, || async {
//!         // a slow upstream call
//!         Ok::<_, std::io::Error>("sunny".to_string())
//!     })
//!     .await
//!     .unwrap();
//! assert_eq!(*weather, "sunny");
//! # }
//! ```
//!
//! Stats are available as a snapshot ([`Cache::stats`]) and through the `metrics` facade.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod backplane;
mod breaker;
mod builder;
mod cache;
mod clock;
pub mod codec;
mod compute;
pub mod engine;
mod error;
mod fetch;
mod fill;
mod flight;
mod future;
mod global;
mod guard;
mod in_process;
mod key;
mod lock;
mod memory;
mod options;
mod random;
mod remote;
mod reservation;
mod stats;
mod url;
mod write;

pub use builder::CacheBuilder;
pub use cache::{Cache, CacheValue};
pub use error::{Error, ErrorKind, FetchError, Timeout};
pub use future::{Get, GetOrFetch};
pub use global::{default_cache, set_default_cache};
pub use in_process::InProcessStore;
pub use key::{KEY_SEPARATOR, KeyBuilder, escape_key_part};
pub use larder_store::{
    Backplane, BackplaneEvent, BackplaneSink, Store, StoreEntry, StoreError, StoreFuture, StoreKey,
    StoreRead, Subscription,
};

/// The Redis store (`redis` feature): `RedisStore` for
/// standalone servers, TLS and Redis Cluster.
#[cfg(feature = "redis")]
pub use larder_redis as redis;

/// `#[cached]` (`macros` feature): memoize an async function in a [`Cache`].
#[cfg(feature = "macros")]
pub use larder_macros::cached;

/// The Memcached store (`memcached` feature).
#[cfg(feature = "memcached")]
pub use larder_memcached as memcached;
pub use options::{EntryOptions, RemoteWrite};
pub use stats::Stats;

/// The README's code blocks, compiled and run as doctests so the tour cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
