//! Caching POST requests by their body (search and inference endpoints): a rule with
//! [`key_body`](crate::Rule::key_body) keys each POST it matches on a SHA-256 of the request's
//! body, its `Content-Type` and `Content-Encoding`, beside the URL and the rule's keyed headers.
//!
//! The body has to be read before the request can be looked up, and [`CacheService`] takes any
//! body type, so reading is a step of its own: [`CacheLayer::key_bodies`] gives a layer that
//! reads the body of each POST a `key_body` rule covers (within the rule's size, the layer's
//! body idle timeout and the recording budget, which buffered bodies share with recordings) into
//! a [`KeyedBody`], and hands the request on with the same bytes as its body. Surfaces that read
//! bodies their own way (larder for Python's ASGI middleware) ask [`CacheService::body_permit`]
//! and give the bytes to [`BodyPermit::accept`].
//!
//! A POST is never cached when it carries credentials (`Authorization`, or a cookie the layer
//! neither keys nor ignores), a conditional header, no `Content-Length`, or a body past the
//! rule's size: it passes to the service uncached, as sent, and its `Cache-Status` says why.
//!
//! ```
//! use std::convert::Infallible;
//! use std::time::Duration;
//! use axum::{Router, body::Body, routing::post};
//! use http::Request;
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let search = larder_http::Rule::path("/search").unwrap()
//!     .ttl(Duration::from_secs(60))
//!     .key_body(64 << 10);
//! let cache = larder_http::CacheLayer::shared(larder::Cache::new()).rules([search]);
//! let app = Router::new()
//!     .route("/search", post(|body: String| async move { format!("results for {body}") }))
//!     .layer(cache.key_bodies());
//!
//! let ask = |q: &'static str| Request::post("/search").header("content-length", q.len()).body(Body::from(q)).unwrap();
//! let first = app.clone().oneshot(ask("rust")).await.unwrap();
//! assert_eq!(first.headers()["x-cache"], "MISS");
//! # let _ = axum::body::to_bytes(Body::new(first.into_body()), usize::MAX).await;
//! # tokio::time::sleep(Duration::from_millis(10)).await;
//! let again = app.clone().oneshot(ask("rust")).await.unwrap();
//! assert_eq!(again.headers()["x-cache"], "HIT");
//! let other = app.oneshot(ask("python")).await.unwrap();
//! assert_eq!(other.headers()["x-cache"], "MISS");
//! # let _: Option<Infallible> = None;
//! # }
//! ```
//!
//! [`CacheService`]: crate::CacheService
//! [`CacheLayer::key_bodies`]: crate::CacheLayer::key_bodies
//! [`CacheService::body_permit`]: crate::CacheService::body_permit

mod layer;
pub(crate) mod permit;
mod service;

pub use layer::KeyBodiesLayer;
pub use permit::{BodyPermit, BodyReadError, KeyedBody};
pub(crate) use permit::{permit, with_body_key};
pub use service::KeyBodies;

/// The largest body a `key_body = true` rule keys on (64 KiB): a search form or an inference
/// request, not an upload.
pub const DEFAULT_KEY_BODY_MAX: usize = 64 << 10;
