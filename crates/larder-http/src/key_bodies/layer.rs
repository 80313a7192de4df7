//! The [`KeyBodiesLayer`]: a [`CacheLayer`] that reads the bodies its `key_body` rules key on.

use tower_layer::Layer;

use super::KeyBodies;
use crate::CacheLayer;

/// A [`CacheLayer`] that reads the body of each POST its [`key_body`](crate::Rule::key_body)
/// rules cover, so the cache can key it; from [`CacheLayer::key_bodies`]. Every other request
/// goes to the cache service untouched. The service's request body type must be buildable from
/// the bytes read (`From<Bytes>`: axum's `Body`, `Full<Bytes>`).
///
/// ```
/// use std::time::Duration;
/// let rule = larder_http::Rule::path("/search")?.ttl(Duration::from_secs(60)).key_body(64 << 10);
/// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).rules([rule]).key_bodies();
/// # let _ = layer;
/// # Ok::<(), larder_http::RuleError>(())
/// ```
#[derive(Debug, Clone)]
pub struct KeyBodiesLayer {
    pub(crate) cache: CacheLayer,
}

impl<S> Layer<S> for KeyBodiesLayer {
    type Service = KeyBodies<S>;

    fn layer(&self, inner: S) -> KeyBodies<S> {
        KeyBodies {
            inner: self.cache.layer(inner),
        }
    }
}
