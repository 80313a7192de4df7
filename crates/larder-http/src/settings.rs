//! [`LayerSettings`]: every setting of a layer as plain values, the one place their defaults are
//! read from. larder-proxy and larder for Python take their defaults from here, and their tests
//! compare the whole struct, so a setting added later cannot get a second default unnoticed.

use std::time::Duration;

use http::HeaderName;
use serde::Serialize;

use crate::config::{Config, Mode};
use crate::rule::Rule;

/// Every setting of a [`CacheLayer`](crate::CacheLayer), as values: what
/// [`CacheLayer::settings`](crate::CacheLayer::settings) reports, and with
/// [`LayerSettings::default`] the defaults of a shared (RFC 9111) layer, which larder-proxy and
/// larder for Python use for anything their user does not set.
///
/// ```
/// use std::time::Duration;
/// let defaults = larder_http::LayerSettings::default();
/// assert_eq!(defaults.max_body, 8 << 20);
/// assert_eq!(defaults.response_timeout, Duration::from_secs(60));
///
/// let layer = larder_http::CacheLayer::shared(larder::Cache::new()).max_body_bytes(1 << 20);
/// assert_eq!(layer.settings().max_body, 1 << 20);
/// assert_eq!(layer.settings().response_timeout, defaults.response_timeout);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct LayerSettings {
    /// Shared (RFC 9111) or the application's cache with its ttl.
    #[serde(serialize_with = "mode")]
    pub mode: Mode,
    /// The cache namespace of the layer's entries.
    pub namespace: String,
    /// The `X-Cache`-style status header, if any.
    #[serde(serialize_with = "header_name")]
    pub status_header: Option<HeaderName>,
    /// This cache's name in `Cache-Status`, if it adds one.
    pub cache_status: Option<String>,
    /// The response header holding purge tags, if any.
    #[serde(serialize_with = "header_name")]
    pub tag_header: Option<HeaderName>,
    /// The largest body stored, in bytes.
    pub max_body: usize,
    /// How long a stale response with validators is kept for revalidation.
    #[serde(serialize_with = "seconds")]
    pub keep_stale: Duration,
    /// Whether responses that set cookies are stored.
    pub store_set_cookie: bool,
    /// Whether application mode computes a strong ETag from the body.
    pub etag_from_body: bool,
    /// The heuristic freshness's fraction of the time since `Last-Modified`.
    pub heuristic_fraction: f64,
    /// The heuristic freshness's upper bound.
    #[serde(serialize_with = "seconds")]
    pub heuristic_max: Duration,
    /// The host every request is keyed on, if fixed.
    pub fixed_host: Option<String>,
    /// Request headers that key an entry when present.
    #[serde(serialize_with = "header_names")]
    pub keyed_headers: Vec<HeaderName>,
    /// Cookies that key every entry.
    pub key_cookies: Vec<String>,
    /// Cookies that never change a response.
    pub ignore_cookies: Vec<String>,
    /// The longest wait for the next chunk of a body being recorded.
    #[serde(serialize_with = "seconds")]
    pub body_idle_timeout: Duration,
    /// The longest wait for the response head of a fill.
    #[serde(serialize_with = "seconds")]
    pub response_timeout: Duration,
    /// Bytes all recordings may hold at once.
    pub recording_budget: u64,
    /// A fill whose readers all left finishes only below this size.
    pub finish_unread_below: u64,
    /// Path segments entries are tagged with, for purges by prefix.
    pub prefix_purge_depth: usize,
    /// The fill lock across processes sharing a store: (wait, expiry), or `None` for none.
    #[serde(serialize_with = "lock")]
    pub distributed_lock: Option<(Duration, Duration)>,
    /// How long a URL whose response was not storable skips coalescing.
    #[serde(serialize_with = "seconds")]
    pub hit_for_pass: Duration,
    /// How long a stale copy that stood in for a failing origin answers without asking it.
    #[serde(serialize_with = "seconds")]
    pub fail_safe_throttle: Duration,
    /// The rules, in order.
    #[serde(serialize_with = "rules")]
    pub rules: Vec<Rule>,
    /// Response compression.
    pub compression: crate::coding::Compression,
}

impl Default for LayerSettings {
    /// The settings of `CacheLayer::shared` on a cache with the core's defaults.
    fn default() -> Self {
        Self::of(&Config::shared())
    }
}

impl LayerSettings {
    pub(crate) fn of(c: &Config) -> Self {
        Self {
            mode: c.mode,
            namespace: c.namespace.to_string(),
            status_header: c.status_header.clone(),
            cache_status: c.cache_status.as_deref().map(str::to_owned),
            tag_header: c.tag_header.clone(),
            max_body: c.max_body,
            keep_stale: c.keep_stale,
            store_set_cookie: c.store_set_cookie,
            etag_from_body: c.etag_from_body,
            heuristic_fraction: c.heuristic_fraction,
            heuristic_max: c.heuristic_max,
            fixed_host: c.fixed_host.as_ref().map(|(h, _)| h.clone()),
            keyed_headers: c.keyed_headers.clone(),
            key_cookies: c.cookies.keyed.clone(),
            ignore_cookies: c.cookies.ignored.clone(),
            body_idle_timeout: c.body_idle_timeout,
            response_timeout: c.response_timeout,
            recording_budget: c.recording_budget,
            finish_unread_below: c.finish_unread_below,
            prefix_purge_depth: c.prefix_purge_depth,
            distributed_lock: c.lock,
            hit_for_pass: c.hit_for_pass,
            fail_safe_throttle: c.fail_safe_throttle,
            rules: c.rules.to_vec(),
            compression: (*c.compression).clone(),
        }
    }
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn lock<S: serde::Serializer>(l: &Option<(Duration, Duration)>, s: S) -> Result<S::Ok, S::Error> {
    l.map(|(wait, expiry)| [wait.as_secs_f64(), expiry.as_secs_f64()])
        .serialize(s)
}

fn header_name<S: serde::Serializer>(name: &Option<HeaderName>, s: S) -> Result<S::Ok, S::Error> {
    name.as_ref().map(HeaderName::as_str).serialize(s)
}

fn header_names<S: serde::Serializer>(names: &[HeaderName], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(names.iter().map(HeaderName::as_str))
}

fn mode<S: serde::Serializer>(m: &Mode, s: S) -> Result<S::Ok, S::Error> {
    match m {
        Mode::Shared => s.serialize_str("shared"),
        Mode::Application { ttl } => {
            s.serialize_str(&format!("application (ttl {}s)", ttl.as_secs_f64()))
        }
    }
}

fn rules<S: serde::Serializer>(rules: &[Rule], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(rules.iter().map(ToString::to_string))
}
