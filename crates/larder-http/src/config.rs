//! The layer's settings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderName;

use crate::cookies::CookieRules;
use crate::key::KeyFn;
use crate::key::QueryKey;
use crate::rule::Rule;

/// Request headers that origins commonly reflect into responses (absolute links, redirects) and
/// that therefore key an entry by default: a request carrying one of them is served only the
/// variant stored for its value. See `CacheLayer::keyed_headers`.
pub(crate) const DEFAULT_KEYED_HEADERS: [&str; 8] = [
    "forwarded",
    "x-forwarded-host",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-proto",
    "x-forwarded-scheme",
    "x-host",
    "x-original-host",
];

/// How the layer decides what to store and for how long.
///
/// ```
/// use std::time::Duration;
/// use larder_http::Mode;
/// assert_ne!(Mode::Shared, Mode::Application { ttl: Duration::from_secs(60) });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Mode {
    /// A shared cache by RFC 9111, as a CDN or reverse proxy: only what the response's headers
    /// allow is stored, for as long as they say (with the RFC's heuristic where it permits one).
    Shared,
    /// The application's own cache: `ttl` applies wherever the response says nothing about
    /// freshness. A response's own `max-age`/`s-maxage`/`Expires` still win, and `no-store`,
    /// `private`, `Set-Cookie` and `Vary: *` responses are still never stored.
    Application {
        /// Freshness for responses without their own.
        ttl: Duration,
    },
}

pub(crate) type Clock = Arc<dyn Fn() -> SystemTime + Send + Sync>;

#[derive(Clone)]
pub(crate) struct Config {
    pub mode: Mode,
    pub namespace: Arc<str>,
    pub key_fn: Option<KeyFn>,
    pub status_header: Option<HeaderName>,
    /// This cache's name in `Cache-Status` (RFC 9211); `None` leaves the field alone.
    pub cache_status: Option<Arc<str>>,
    pub tag_header: Option<HeaderName>,
    pub max_body: usize,
    pub keep_stale: Duration,
    pub store_set_cookie: bool,
    pub etag_from_body: bool,
    pub heuristic_fraction: f64,
    pub heuristic_max: Duration,
    pub clock: Clock,
    /// The host every key uses instead of the request's (a proxy in front of one origin), and
    /// the `Host` value the service is sent.
    pub fixed_host: Option<(String, http::HeaderValue)>,
    /// Request headers that vary every entry when present, sorted.
    pub keyed_headers: Vec<HeaderName>,
    pub cookies: CookieRules,
    /// The longest wait for the next chunk of a body being recorded.
    pub body_idle_timeout: Duration,
    /// The longest wait for a response head when the layer fetches for the cache.
    pub response_timeout: Duration,
    /// Bytes all of this layer's recordings may hold at once.
    pub recording_budget: u64,
    /// A recording whose clients all left is finished (and stored) only up to this size.
    pub finish_unread_below: u64,
    /// Entries are tagged with their path's first this many segments, for purges by prefix.
    pub prefix_purge_depth: usize,
    /// A fill's lock across processes sharing the store: how long to wait for another
    /// process's fill, and how long a lock outlives a holder that died.
    pub lock: Option<(std::time::Duration, std::time::Duration)>,
    /// How long a URL whose response was not storable skips coalescing.
    pub hit_for_pass: Duration,
    /// How long, after the origin failed and a stale copy stood in, that copy answers without
    /// asking the origin again.
    pub fail_safe_throttle: Duration,
    /// The layer's rules, in order; each request gets the first match's settings (see
    /// `Config::with_rule`).
    pub rules: Arc<[Rule]>,
    /// The settings below come from the matched rule; a layer without one has the defaults.
    pub rule: Option<Arc<str>>,
    /// That rule (for its path template's variables in `invalidate`).
    pub matched: Option<Arc<Rule>>,
    /// The statuses `Mode::Application`'s ttl applies to; `None` for every heuristically
    /// cacheable one (RFC 9110 §15.1).
    pub ttl_statuses: Option<Vec<u16>>,
    /// The rule's ttl wins over the origin's freshness and its `no-store`/`private`/`no-cache`.
    pub override_origin: bool,
    /// The least stale-if-error and stale-while-revalidate windows, in seconds.
    pub stale_if_error: u64,
    pub stale_while_revalidate: u64,
    /// With a stale copy that may stand in, the longest wait for the origin's refresh.
    pub soft_timeout: Option<Duration>,
    /// The fraction of a response's lifetime after which a hit starts one background refresh.
    pub eager_refresh: Option<f64>,
    pub query: QueryKey,
    /// Request headers that vary every entry (as if each response's Vary named them), sorted.
    pub vary: Vec<HeaderName>,
    pub bypass: bool,
    /// Path prefixes purged after a successful unsafe request (`{path}`: its own path).
    pub invalidate: Vec<String>,
    /// The request's `no-cache` (and `max-age=0`, `Pragma: no-cache`) is not heeded.
    pub ignore_client_no_cache: bool,
    /// POSTs are keyed on their body, when it is at most this many bytes.
    pub key_body: Option<usize>,
    /// Response compression (layer-wide; no rule changes it).
    pub compression: Arc<crate::coding::Compression>,
}

impl Config {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            namespace: Arc::from("http"),
            key_fn: None,
            status_header: Some(HeaderName::from_static("x-cache")),
            cache_status: Some(Arc::from("larder")),
            tag_header: Some(HeaderName::from_static("surrogate-key")),
            max_body: 8 << 20,
            keep_stale: Duration::from_secs(600),
            store_set_cookie: false,
            etag_from_body: false,
            heuristic_fraction: 0.1,
            heuristic_max: Duration::from_secs(86_400),
            clock: Arc::new(SystemTime::now),
            fixed_host: None,
            keyed_headers: DEFAULT_KEYED_HEADERS
                .iter()
                .map(|h| HeaderName::from_static(h))
                .collect(),
            cookies: CookieRules::default(),
            body_idle_timeout: Duration::from_secs(10),
            response_timeout: Duration::from_secs(60),
            recording_budget: 64 << 20,
            finish_unread_below: 256 << 10,
            prefix_purge_depth: 4,
            lock: Some((Duration::from_secs(10), Duration::from_secs(30))),
            hit_for_pass: Duration::from_secs(10),
            fail_safe_throttle: Duration::from_secs(30),
            rules: Arc::new([]),
            rule: None,
            matched: None,
            ttl_statuses: None,
            override_origin: false,
            stale_if_error: 0,
            stale_while_revalidate: 0,
            soft_timeout: None,
            eager_refresh: None,
            query: QueryKey::All,
            vary: Vec::new(),
            bypass: false,
            invalidate: Vec::new(),
            ignore_client_no_cache: false,
            key_body: None,
            compression: Arc::new(crate::coding::Compression::default()),
        }
    }

    /// These settings as `rule` changes them: what a request the rule matches is served with.
    pub fn with_rule(&self, rule: &Rule) -> Self {
        let mut c = self.clone();
        c.rule = Some(rule.source.clone());
        c.matched = Some(Arc::new(rule.clone()));
        if let Some(ttl) = rule.ttl {
            c.mode = Mode::Application { ttl };
            c.ttl_statuses = Some(rule.ttl_statuses());
            c.override_origin = rule.override_origin;
        }
        c.stale_if_error = rule.stale.map_or(0, |d| d.as_secs());
        c.stale_while_revalidate = rule.stale_while_revalidate.map_or(0, |d| d.as_secs());
        c.soft_timeout = rule.soft_timeout;
        c.eager_refresh = rule.eager_refresh;
        c.query = rule.query.clone();
        c.vary = rule.vary.clone();
        c.cookies.keyed.extend(rule.key_cookies.iter().cloned());
        c.cookies.keyed.sort_unstable();
        c.cookies.keyed.dedup();
        c.bypass = rule.bypass;
        c.invalidate = rule.invalidate.clone();
        c.ignore_client_no_cache = rule.ignore_client_no_cache;
        c.key_body = rule.key_body;
        c
    }

    pub fn shared() -> Self {
        Self::new(Mode::Shared)
    }

    pub fn application(ttl: Duration) -> Self {
        Self::new(Mode::Application { ttl })
    }

    /// Whether the request carries one of the inputs these settings key on (headers or
    /// cookies).
    pub fn has_keyed_inputs(&self, request: &http::HeaderMap) -> bool {
        // One pass over the request's few fields, comparing names, costs less on every hit than
        // hashing each keyed name for a lookup.
        let keyed = &self.keyed_headers;
        (!keyed.is_empty() && request.keys().any(|name| keyed.contains(name)))
            || self.cookies.any_keyed(request)
    }

    pub fn now_ms(&self) -> u64 {
        unix_ms((self.clock)())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("mode", &self.mode)
            .field("namespace", &self.namespace)
            .field("custom_key", &self.key_fn.is_some())
            .field("status_header", &self.status_header)
            .field("tag_header", &self.tag_header)
            .field("max_body", &self.max_body)
            .field("keep_stale", &self.keep_stale)
            .field("store_set_cookie", &self.store_set_cookie)
            .field("etag_from_body", &self.etag_from_body)
            .field("fixed_host", &self.fixed_host.as_ref().map(|h| &h.0))
            .field("keyed_headers", &self.keyed_headers)
            .field("cookies", &self.cookies)
            .field("body_idle_timeout", &self.body_idle_timeout)
            .field("response_timeout", &self.response_timeout)
            .field("recording_budget", &self.recording_budget)
            .field("finish_unread_below", &self.finish_unread_below)
            .field("prefix_purge_depth", &self.prefix_purge_depth)
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch (0 before it): the unit every stored instant uses.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
