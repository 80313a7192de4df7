//! # larder-http
//!
//! An HTTP response cache for axum and any tower service, following RFC 9111, stored in a larder
//! [`Cache`](larder::Cache), so memory, Redis, Memcached and two-tier caches all work.
//!
//! - **Keys**: host (validated as `host[:port]`, or the request is refused with 400), path and
//!   query parameters (sorted, percent-encoding normalized), joined so that no part can read as
//!   another; for a response with `Vary`, and for requests carrying the headers origins commonly
//!   reflect (`X-Forwarded-Host`, ...) or keyed cookies, their normalized values as well.
//! - **Two modes**: [`CacheLayer::shared`] is a strict shared cache (storable methods and status
//!   codes, `Cache-Control`, `Expires`, heuristic freshness only where allowed, `Vary: *` never
//!   stored, invalidation after unsafe requests); [`CacheLayer::application`] adds the app's ttl
//!   where a response says nothing.
//! - **Validation**: `If-None-Match` / `If-Modified-Since` answered with 304 from the cache; stale
//!   entries revalidated with the origin by a conditional request; stale-while-revalidate and
//!   stale-if-error.
//! - **Streaming**: a response streams to its client while it is recorded; requests for the same
//!   key that arrive meanwhile make no call of their own and read the recording as it grows. A
//!   body that fails or passes the size cap is not stored.
//! - **Safety**: `Authorization`, cookies, `Set-Cookie`, `private` and method overrides are
//!   handled so that no request header outside the key can change what another client receives.
//! - **Bounded**: every wait on the service has a timeout (the response head, and the body
//!   between chunks), and the bytes recordings hold share the cache's byte bound and the layer's
//!   budget, across all requests at once.
//! - **Purge** by key, URL or tag ([`Purger`]); `Age` and `X-Cache` on the way out.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use axum::{Router, routing::get};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let cache = larder::Cache::new();
//! let app = Router::new()
//!     .route("/slow", get(|| async { "computed once" }))
//!     .layer(larder_http::CacheLayer::application(cache, Duration::from_secs(60)));
//!
//! let first = app.clone().oneshot(Request::get("/slow").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! # let _ = axum::body::to_bytes(axum::body::Body::new(first.into_body()), usize::MAX).await;
//! # tokio::time::sleep(Duration::from_millis(10)).await;
//! let second = app.oneshot(Request::get("/slow").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! assert_eq!(second.headers()["x-cache"], "HIT");
//! assert_eq!(second.headers()["age"], "0");
//! # let _: Option<Infallible> = None;
//! # }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answer;
mod body;
mod budget;
mod coalesce;
mod coding;
mod conditional;
mod config;
mod cookies;
mod deliver;
mod directives;
mod fill;
mod forward;
mod future;
#[cfg(any(test, feature = "fuzzing"))]
#[doc(hidden)]
pub mod fuzz;
#[cfg(test)]
mod glob_reference;
mod headers;
mod hit;
mod host;
mod key;
pub mod key_bodies;
mod layer;
mod lookup;
mod origin;
mod path;
mod policy;
mod pump;
mod purge;
mod recording;
mod remembered;
mod rule;
mod rule_fields;
mod service;
mod settings;
mod state;
mod stats;
mod stored;
mod vary;
mod write;

pub use body::{BoxError, CacheBody};
pub use coding::{
    Coding, Compression, CompressionLevel, DEFAULT_COMPRESSIBLE_TYPES, UnknownCoding,
};
pub use config::Mode;
pub use future::ResponseFuture;
pub use headers::{CacheStatus, remove_hop_by_hop};
pub use key::QueryKey;
pub use key_bodies::{BodyPermit, KeyBodies, KeyBodiesLayer, KeyedBody};
pub use layer::CacheLayer;
pub use purge::{PurgeError, Purger};
pub use recording::BodyError;
pub use rule::{DEFAULT_RULE_STATUSES, Rule, RuleError};
pub use rule_fields::{deserialize_duration, parse_duration, parse_size};
pub use service::CacheService;
pub use settings::LayerSettings;
pub use stats::LayerStats;
