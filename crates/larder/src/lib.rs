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
//! use larder::Cache;
//!
//! async fn forecast(city: &str) -> Result<String, std::io::Error> {
//!     Ok(format!("sun in {city}")) // a slow upstream call
//! }
//!
//! let cache = Cache::new();
//! let weather = cache.get_or_fetch("weather:Berlin", || forecast("Berlin")).await.unwrap();
//! assert_eq!(*weather, "sun in Berlin");
//! # }
//! ```
//!
//! One dependency line brings the rest, by feature:
//!
//! | feature | brings |
//! |---|---|
//! | `redis` | `redis://`, `rediss://`, `redis+cluster://` in [`Cache::from_url`]; [`redis`] |
//! | `memcached` | `memcached://` in [`Cache::from_url`]; [`memcached`] |
//! | `macros` | [`#[cached]`](cached): memoize a function in one line |
//! | `http` | [`http`]: the RFC 9111 response cache layer for axum and any tower service |
//!
//! ```toml
//! larder = { version = "0.1", features = ["redis", "http"] }
//! ```
//!
//! Stats are available as a snapshot ([`Cache::stats`]) and through the `metrics` facade.
//! The engine lives in `larder-core`, re-exported here whole; `ARCHITECTURE.md` in the
//! repository says why.
#![warn(missing_docs)]

pub use larder_core::*;

/// The Redis store (`redis` feature): `RedisStore` for standalone servers, TLS and Redis
/// Cluster.
#[cfg(feature = "redis")]
pub use larder_redis as redis;

/// The Memcached store (`memcached` feature).
#[cfg(feature = "memcached")]
pub use larder_memcached as memcached;

/// `#[cached]` (`macros` feature): memoize a function in a [`Cache`].
#[cfg(feature = "macros")]
pub use larder_macros::cached;

/// The HTTP response cache (`http` feature): an RFC 9111 cache as a tower `Layer`, stored in a
/// [`Cache`].
///
/// ```
/// # #[cfg(feature = "http")] {
/// use std::time::Duration;
/// let cache = larder::Cache::new();
/// let layer = larder::http::CacheLayer::application(cache, Duration::from_secs(60));
/// # let _ = layer;
/// # }
/// ```
#[cfg(feature = "http")]
pub use larder_http as http;

/// The README's code blocks, compiled and run as doctests so the tour cannot rot.
#[doc = include_str!("../../../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
