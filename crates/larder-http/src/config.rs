//! The layer's settings.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use http::HeaderName;

use crate::cookies::CookieRules;
use crate::key::KeyFn;

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
}

impl Config {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            namespace: Arc::from("http"),
            key_fn: None,
            status_header: Some(HeaderName::from_static("x-cache")),
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
        }
    }

    pub fn shared() -> Self {
        Self::new(Mode::Shared)
    }

    pub fn application(ttl: Duration) -> Self {
        Self::new(Mode::Application { ttl })
    }

    pub fn now_ms(&self) -> u64 {
        crate::policy::unix_ms((self.clock)())
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
            .finish_non_exhaustive()
    }
}
