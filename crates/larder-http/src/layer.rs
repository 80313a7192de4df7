//! The [`CacheLayer`] and its settings.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderName;
use http::request::Parts;
use larder::Cache;
use tower_layer::Layer;

use crate::config::{Config, Mode};
use crate::purge::Purger;
use crate::rule::Rule;
use crate::service::CacheService;
use crate::state::LayerState;

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
    state: Arc<LayerState>,
}

impl std::fmt::Debug for CacheLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheLayer")
            .field("cache", &self.base)
            .field("config", &self.state.config())
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

    fn with_config(cache: Cache, mut config: Config) -> Self {
        // One fail-safe setting for both read paths: the cache's own, unless the layer says.
        config.fail_safe_throttle = larder::engine::fail_safe_throttle(&cache);
        Self {
            state: Arc::new(LayerState::new(&cache, config)),
            base: cache,
        }
    }

    fn configure(mut self, f: impl FnOnce(&mut Config)) -> Self {
        let mut config = Config::clone(&self.state.config());
        f(&mut config);
        self.state = Arc::new(LayerState::new(&self.base, config));
        self
    }

    /// The mode this layer runs in.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new());
    /// assert_eq!(layer.mode(), larder_http::Mode::Shared);
    /// ```
    pub fn mode(&self) -> Mode {
        self.state.current().config.mode
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

    /// This cache's name in the `Cache-Status` field (RFC 9211) it adds to every response,
    /// after the members caches nearer the origin added: `larder; hit; ttl=42`, `larder;
    /// fwd=uri-miss; fwd-status=200; stored`, `larder; fwd=stale; fwd-status=503` (served stale
    /// because the origin failed), `larder; fwd=bypass`. Default `larder`; `None` leaves the
    /// field alone.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).cache_status(Some("edge-1"));
    /// # let _ = layer;
    /// ```
    pub fn cache_status(self, name: Option<&str>) -> Self {
        let name = name.map(Arc::from);
        self.configure(|c| c.cache_status = name)
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

    /// Response compression (on by default: see [`Compression`](crate::Compression)). A stored
    /// copy is kept compressed once and served to each client as it accepts; panics never,
    /// but a `Compression` that does not [`check`](crate::Compression::check) is replaced by
    /// [`Compression::off`](crate::Compression::off) with a warning.
    ///
    /// ```
    /// use larder_http::{CacheLayer, Compression, CompressionLevel};
    /// let layer = CacheLayer::shared(larder::Cache::new()).compression(Compression {
    ///     level: CompressionLevel::Best,
    ///     ..Compression::default()
    /// });
    /// assert_eq!(layer.settings().compression.level, CompressionLevel::Best);
    /// ```
    pub fn compression(self, compression: crate::Compression) -> Self {
        let compression = match compression.check() {
            Ok(()) => compression,
            Err(e) => {
                tracing::warn!("larder-http: compression settings refused ({e}); compression off");
                crate::Compression::off()
            }
        };
        self.configure(|c| c.compression = Arc::new(compression))
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

    /// Keys every request on `host` instead of its own `Host`, as a reverse proxy in front of one
    /// origin wants: requests for any host name share entries, and the service sees `Host:
    /// host` (an absolute request target loses its authority). A `Host` that is malformed is
    /// still refused with 400. `host` is `name[:port]`; an invalid one leaves the setting off.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).fixed_host("api.internal:8000");
    /// # let _ = layer;
    /// ```
    pub fn fixed_host(self, host: &str) -> Self {
        let host = crate::host::normalize(host, None)
            .and_then(|h| Some((h.clone(), http::HeaderValue::from_str(&h).ok()?)));
        if host.is_none() {
            tracing::warn!("larder-http: fixed_host is not host[:port]; ignored");
        }
        self.configure(|c| c.fixed_host = host)
    }

    /// The request headers that vary every entry when a request carries them, so a value the
    /// origin reflects into its response (an absolute link built from `X-Forwarded-Host`, say)
    /// is served only to requests with the same value. The default is the headers proxies and
    /// frameworks commonly honour: `Forwarded`, `X-Forwarded-Host`, `-Port`, `-Prefix`,
    /// `-Proto`, `-Scheme`, `X-Host` and `X-Original-Host`. A URL requested with one of them is
    /// indexed like a `Vary` response (one lookup more per hit); a URL never requested with them
    /// is stored as plainly as before. Replace the list with the headers your origin reads, or
    /// with none if nothing in front of the layer can set them.
    ///
    /// ```
    /// use http::HeaderName;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .keyed_headers([HeaderName::from_static("x-forwarded-proto"), HeaderName::from_static("x-tenant")]);
    /// # let _ = layer;
    /// ```
    pub fn keyed_headers(self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        let mut headers: Vec<HeaderName> = headers.into_iter().collect();
        headers.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        headers.dedup();
        self.configure(|c| c.keyed_headers = headers)
    }

    /// Cookies whose values key the entry (a language, a theme, an A/B bucket): requests with
    /// different values get different entries, and a request whose cookies are all keyed or
    /// [ignored](Self::ignore_cookies) is served shared entries.
    ///
    /// By default every cookie is a credential: a request carrying a `Cookie` is only served, and
    /// only stores, responses the origin marked `public` or `s-maxage`, since the origin may have
    /// answered from the cookie (a session) and another client must never receive that
    /// answer. That is Varnish's default too, and it holds in both modes.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).key_cookies(["lang"]);
    /// # let _ = layer;
    /// ```
    pub fn key_cookies<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut names: Vec<String> = names.into_iter().map(Into::into).collect();
        names.sort_unstable();
        names.dedup();
        self.configure(|c| c.cookies.keyed = names)
    }

    /// Cookies the origin never answers from for cacheable requests (analytics, consent): they
    /// neither key the entry nor count as credentials. A name ending in `*` matches every cookie
    /// it starts (`_ga*`). See [`key_cookies`](Self::key_cookies).
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .ignore_cookies(["_ga*", "_gid", "consent"]);
    /// # let _ = layer;
    /// ```
    pub fn ignore_cookies<I, S>(self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let names: Vec<String> = names.into_iter().map(Into::into).collect();
        self.configure(|c| c.cookies.ignored = names)
    }

    /// The longest the layer waits for the next chunk of a body it is recording (default 10 s).
    /// Past it the fill is cut: nothing is stored, every request reading it gets an error at
    /// once (a cut response), and the next request starts a fresh fill. Bodies that pass by the
    /// cache unrecorded are the service's to time out.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).body_idle_timeout(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn body_idle_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.body_idle_timeout = timeout)
    }

    /// The longest the layer waits for the service's response head when it fetches for the
    /// cache (default 60 s). Past it, the request and every request waiting on the same fetch
    /// get a stale copy where stale-if-error allows, else 504.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).response_timeout(Duration::from_secs(15));
    /// # let _ = layer;
    /// ```
    pub fn response_timeout(self, timeout: Duration) -> Self {
        self.configure(|c| c.response_timeout = timeout)
    }

    /// The most bytes of response bodies this layer's recordings hold at once, across all
    /// requests (default 64 MiB). When the cache has a byte bound
    /// ([`max_bytes`](larder::CacheBuilder::max_bytes)), recordings also count against it
    /// beside the stored entries, and take at most half of it. A fill that finds no room streams
    /// to its clients unrecorded (counted in [`LayerStats::fills_unrecorded`](crate::LayerStats)),
    /// and so does one that runs out of room part-way.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).recording_budget(16 << 20);
    /// # let _ = layer;
    /// ```
    pub fn recording_budget(self, bytes: u64) -> Self {
        self.configure(|c| c.recording_budget = bytes)
    }

    /// When every client reading a fill has left, the fill still runs to its end (and is
    /// stored) only if its body is at most this many bytes (default 256 KiB); a larger one
    /// stops downloading.
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).finish_unread_below(1 << 20);
    /// # let _ = layer;
    /// ```
    pub fn finish_unread_below(self, bytes: u64) -> Self {
        self.configure(|c| c.finish_unread_below = bytes)
    }

    /// Rules for the requests whose method and path they match, in order: the first match
    /// decides the request's ttl, stale windows, key and whether it is cached at all (see
    /// [`Rule`]). A request no rule matches gets the layer's own settings. Replaces earlier
    /// rules.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder_http::{CacheLayer, QueryKey, Rule};
    ///
    /// let layer = CacheLayer::shared(larder::Cache::new()).rules([
    ///     Rule::path("/admin")?.bypass(true),
    ///     Rule::path("/users")?.ttl(Duration::from_secs(60)).stale(Duration::from_secs(600)),
    ///     Rule::path("/search")?.ttl(Duration::from_secs(10)).query(QueryKey::Only(vec!["q".into()])),
    /// ]);
    /// # let _ = layer;
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn rules(self, rules: impl IntoIterator<Item = Rule>) -> Self {
        let rules: Arc<[Rule]> = rules.into_iter().collect();
        if let Err(e) = Rule::check_order(&rules) {
            tracing::warn!("larder-http: {e}");
        }
        self.configure(|c| c.rules = rules)
    }

    /// Gives the services this layer built `from`'s settings and rules, for the requests that
    /// come next (a configuration reload): requests in flight finish with the ones they came
    /// with, and the cache, the fills in flight, the budgets and the counters stay. Settings
    /// that cannot change while the layer serves (its namespace, `max_body`, the recording
    /// budget, the fixed host) keep their values; their names come back, for the caller to
    /// say so.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder_http::{CacheLayer, Rule};
    /// let cache = larder::Cache::new();
    /// let running = CacheLayer::shared(cache.clone());
    /// let edited = CacheLayer::shared(cache).rules([Rule::path("/")?.ttl(Duration::from_secs(60))]);
    /// assert!(running.reconfigure(&edited).is_empty());
    /// assert_eq!(running.settings().rules.len(), 1);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn reconfigure(&self, from: &CacheLayer) -> Vec<&'static str> {
        self.state.reconfigure(Config::clone(&from.state.config()))
    }

    /// This layer, reading the body of each POST its [`key_body`](Rule::key_body) rules cover
    /// before the cache looks it up, so such POSTs are cached by their body (see
    /// [`key_bodies`](crate::key_bodies)). Use it in place of the layer, once its settings are
    /// made; the service's request body type must be buildable from `Bytes` (axum's `Body`).
    ///
    /// ```
    /// use std::time::Duration;
    /// use axum::{Router, routing::post};
    /// use larder_http::{CacheLayer, Rule};
    ///
    /// let search = Rule::path("/search")?.ttl(Duration::from_secs(60)).key_body(64 << 10);
    /// let app: Router = Router::new()
    ///     .route("/search", post(|q: String| async move { q }))
    ///     .layer(CacheLayer::shared(larder::Cache::new()).rules([search]).key_bodies());
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn key_bodies(&self) -> crate::KeyBodiesLayer {
        crate::KeyBodiesLayer {
            cache: self.clone(),
        }
    }

    /// Tags every stored response with its path's first `depth` segments (`/users`,
    /// `/users/42`, ...), so [`Purger::purge_prefix`] can drop everything under a prefix with
    /// one tag invalidation, in every process sharing the store. Default 4, as in larder-proxy
    /// and larder for Python; 0 turns it off (each tag costs a little on every hit, and a remote
    /// read one round trip more for the tag versions).
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).prefix_purge_depth(3);
    /// # let _ = layer;
    /// ```
    pub fn prefix_purge_depth(self, depth: usize) -> Self {
        self.configure(|c| c.prefix_purge_depth = depth)
    }

    /// Fills one URL once across every process sharing the cache's remote store (Redis,
    /// Memcached): the first process to miss takes a lock on the key in the store and fetches;
    /// the others wait up to `wait` for its response to land in the store and serve that. A
    /// holder that dies leaves the lock to expire after `expiry`, after which the next process
    /// fetches; a wait that runs out fetches without the lock. This is the core's lock
    /// ([`larder::Cache::lock_key`], the same as `get_or_fetch`'s distributed lock) and its
    /// counters. Without a remote store it costs nothing. Default on: a 10 s wait and a 30 s
    /// expiry; a zero `wait` turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .distributed_lock(Duration::from_secs(10), Duration::from_secs(30));
    /// # let _ = layer;
    /// ```
    pub fn distributed_lock(self, wait: std::time::Duration, expiry: std::time::Duration) -> Self {
        self.configure(|c| c.lock = (!wait.is_zero()).then_some((wait, expiry)))
    }

    /// How long a URL whose response could not be stored (`no-store`, `private`, `Set-Cookie`,
    /// too large, ...) sends its next requests straight to the service instead of letting them
    /// wait for one another's response heads (Varnish's hit-for-miss). Default 10 s; zero turns
    /// it off. A storable response ends it early.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).hit_for_pass(Duration::from_secs(30));
    /// # let _ = layer;
    /// ```
    pub fn hit_for_pass(self, period: Duration) -> Self {
        self.configure(|c| c.hit_for_pass = period)
    }

    /// After the origin failed (refused, reset, 5xx, no response in time) and a stale copy
    /// answered in its place (the response's `stale-if-error` or a rule's `stale`), how long
    /// that copy keeps answering the URL without asking the origin again: one request per period
    /// retries it, instead of every request waiting on a failing origin. Defaults to the cache's
    /// own fail-safe throttle ([`larder::EntryOptions::fail_safe_throttle`], 30 s unless the
    /// cache says otherwise), the same as `get_or_fetch`'s; zero asks the origin every time. A
    /// request with `Cache-Control: no-cache` still asks.
    ///
    /// ```
    /// use std::time::Duration;
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .fail_safe_throttle(Duration::from_secs(5));
    /// # let _ = layer;
    /// ```
    pub fn fail_safe_throttle(self, period: Duration) -> Self {
        self.configure(|c| c.fail_safe_throttle = period)
    }

    /// Every setting of this layer, as values (the defaults for those not set).
    ///
    /// ```
    /// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).prefix_purge_depth(2);
    /// let settings = layer.settings();
    /// assert_eq!(settings.prefix_purge_depth, 2);
    /// assert_eq!(settings.tag_header.unwrap(), "surrogate-key");
    /// ```
    pub fn settings(&self) -> crate::LayerSettings {
        crate::LayerSettings::of(&self.state.config())
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
            state: self.state.clone(),
        }
    }
}

impl<S> Layer<S> for CacheLayer {
    type Service = CacheService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        CacheService {
            inner,
            state: self.state.clone(),
        }
    }
}
