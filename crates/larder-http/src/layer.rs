//! The [`CacheLayer`] and its settings.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderName;
use http::request::Parts;
use larder::Cache;
use tower_layer::Layer;

use crate::config::{Config, Mode};
use crate::purge::Purger;
use crate::service::{CacheService, Shared};

/// A tower [`Layer`] that caches responses in a larder [`Cache`]: memory, Redis, Memcached or
/// two-tier, whatever the cache was built with.
///
/// Two modes: [`shared`](Self::shared) follows RFC 9111 strictly, as a CDN or reverse proxy
/// would; [`application`](Self::application) is the app's own cache, where a ttl the app sets
/// applies to responses that say nothing about freshness.
///
/// ```no_run
/// use std::time::Duration;
/// use axum::{Router, routing::get};
/// use larder_http::CacheLayer;
///
/// # #[tokio::main] async fn main() {
/// let cache = larder::Cache::from_url("memory://").unwrap();
/// let layer = CacheLayer::application(cache, Duration::from_secs(60));
/// let purger = layer.purger(); // keep one to purge by URL or tag later
/// let app: Router = Router::new()
///     .route("/report", get(|| async { "expensive" }))
///     .layer(layer);
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await.unwrap();
/// axum::serve(listener, app).await.unwrap();
/// # drop(purger);
/// # }
/// ```
#[derive(Clone)]
pub struct CacheLayer {
    base: Cache,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLayer")
            .field("cache", &self.base)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl CacheLayer {
    /// A shared cache by RFC 9111: stores what the response's `Cache-Control`/`Expires` allow.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new());
    /// # let _ = layer;
    /// ```
    pub fn shared(cache: Cache) -> Self {
        Self::with_config(cache, Config::shared())
    }

    /// The application's cache: responses that say nothing about freshness are fresh for `ttl`.
    /// Explicit lifetimes still win, and `no-store`, `private`, `Set-Cookie` and `Vary: *`
    /// responses are still never stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::application(larder::Cache::new(), Duration::from_secs(30));
    /// # let _ = layer;
    /// ```
    pub fn application(cache: Cache, ttl: Duration) -> Self {
        Self::with_config(cache, Config::application(ttl))
    }

    fn with_config(cache: Cache, config: Config) -> Self {
        Self {
            shared: Arc::new(Shared::new(&cache, config)),
            base: cache,
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = self.shared.config.clone();
        f(&mut config);
        self.shared = Arc::new(Shared::new(&self.base, config));
        self
    }

    /// The mode this layer runs in.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new());
    /// assert_eq!(layer.mode(), larder_http::Mode::Shared);
    /// ```
    pub fn mode(&self) -> Mode {
        self.shared.config.mode
    }

    /// The cache namespace of this layer's entries (default `http`), so two layers on one cache
    /// never see each other's responses and [`Purger::purge_all`] empties only this one.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).namespace("pages");
    /// # let _ = layer;
    /// ```
    pub fn namespace(self, namespace: impl Into<Arc<str>>) -> Self {
        let namespace = namespace.into();
        self.configure(|c| c.namespace = namespace)
    }

    /// Builds the primary key from the request instead of host + path + sorted query; `None`
    /// passes the request to the service uncached. `Vary` variants are still told apart.
    ///
    /// ```
    /// // One entry per path, whatever the host and query.
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .key_fn(|parts| Some(parts.uri.path().to_owned()));
    /// # let _ = layer;
    /// ```
    pub fn key_fn<F>(self, f: F) -> Self
    where
        F: Fn(&Parts) -> Option<String> + Send + Sync + 'static,
    {
        let f = Arc::new(f);
        self.configure(|c| c.key_fn = Some(f))
    }

    /// The response header that says how a response was served (`HIT`, `MISS`, `STALE`,
    /// `REVALIDATED`, `BYPASS`); `None` leaves it out. Default `x-cache`.
    ///
    /// ```
    /// use http::HeaderName;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .status_header(Some(HeaderName::from_static("x-larder")));
    /// # let _ = layer;
    /// ```
    pub fn status_header(self, name: Option<HeaderName>) -> Self {
        self.configure(|c| c.status_header = name)
    }

    /// The response header in which the service tags a response for
    /// [`Purger::purge_tag`] (space- or comma-separated, surrogate-key style). The layer removes
    /// it before the response leaves. Default `surrogate-key`; `None` turns tagging off.
    ///
    /// ```
    /// use http::HeaderName;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .tag_header(Some(HeaderName::from_static("cache-tag")));
    /// # let _ = layer;
    /// ```
    pub fn tag_header(self, name: Option<HeaderName>) -> Self {
        self.configure(|c| c.tag_header = name)
    }

    /// The largest body stored (default 8 MiB). A larger body still streams to the client, but
    /// is not stored, and requests arriving once it has passed the cap call the service again.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).max_body_bytes(1 << 20);
    /// # let _ = layer;
    /// ```
    pub fn max_body_bytes(self, bytes: usize) -> Self {
        self.configure(|c| c.max_body = bytes)
    }

    /// How long a stale response with a validator (ETag, Last-Modified) is kept past its
    /// freshness, to be revalidated with a conditional request rather than fetched whole.
    /// Default 10 minutes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).keep_stale(Duration::from_secs(3600));
    /// # let _ = layer;
    /// ```
    pub fn keep_stale(self, keep: Duration) -> Self {
        self.configure(|c| c.keep_stale = keep)
    }

    /// Store responses that set cookies (default `false`: a `Set-Cookie` response is one
    /// client's, unless `no-cache="set-cookie"`/`private="set-cookie"` says to drop the field).
    /// When enabled, the `Set-Cookie` field is stored and replayed to every client.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).store_set_cookie(false);
    /// # let _ = layer;
    /// ```
    pub fn store_set_cookie(self, store: bool) -> Self {
        self.configure(|c| c.store_set_cookie = store)
    }

    /// In application mode, give stored 200 responses without an ETag a strong one computed
    /// from the body (SHA-256), so clients can revalidate with `If-None-Match` and get a 304.
    /// The first response, which streams before its body is known, goes out without it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::application(larder::Cache::new(), Duration::from_secs(60))
    ///     .etag_from_body(true);
    /// # let _ = layer;
    /// ```
    pub fn etag_from_body(self, enabled: bool) -> Self {
        self.configure(|c| c.etag_from_body = enabled)
    }

    /// The heuristic freshness for responses with Last-Modified and no explicit lifetime (RFC
    /// 9111 §4.2.2): `fraction` of the time since Last-Modified, at most `max`. Default 10%,
    /// at most a day.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .heuristic(0.05, Duration::from_secs(3600));
    /// # let _ = layer;
    /// ```
    pub fn heuristic(self, fraction: f64, max: Duration) -> Self {
        let fraction = if fraction.is_finite() {
            fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        self.configure(|c| {
            c.heuristic_fraction = fraction;
            c.heuristic_max = max;
        })
    }

    /// The wall clock used for ages and freshness (default [`SystemTime::now`]); for tests and
    /// simulations that move time forward. The cache's own expiry still runs on real time.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .clock(std::time::SystemTime::now);
    /// # let _ = layer;
    /// ```
    pub fn clock<F>(self, now: F) -> Self
    where
        F: Fn() -> SystemTime + Send + Sync + 'static,
    {
        let now = Arc::new(now);
        self.configure(|c| c.clock = now)
    }

    /// A handle to purge this layer's responses by key, URL or tag. Take it after the last
    /// setting: each setting starts a fresh layer state.
    ///
    /// ```
    /// let purger = larder_http::CacheLayer::shared(larder::Cache::new()).purger();
    /// # let _ = purger;
    /// ```
    pub fn purger(&self) -> Purger {
        Purger {
            shared: self.shared.clone(),
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            shared: self.shared.clone(),
        }
    }
}
