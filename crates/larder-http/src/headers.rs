//! Header fields the layer removes or adds on the way out.

use http::header::{self, HeaderName};
use http::{HeaderMap, HeaderValue};

/// The hop-by-hop fields (RFC 9110 §7.6.1), which a cache never stores.
pub(crate) fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TRANSFER_ENCODING
        || name == header::TE
        || name == header::TRAILER
        || name == header::UPGRADE
        || name == header::PROXY_AUTHENTICATE
        || name == header::PROXY_AUTHORIZATION
        || name.as_str() == "keep-alive"
        || name.as_str() == "proxy-connection"
}

/// The header map to store: without hop-by-hop fields, the fields `Connection` names, and the
/// extra fields a qualified `private`/`no-cache` named.
pub(crate) fn storable(headers: &HeaderMap, strip: &[String]) -> HeaderMap {
    let connection_named = connection_named(headers);
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let n = name.as_str();
        if is_hop_by_hop(name)
            || strip.iter().any(|s| s == n)
            || connection_named.iter().any(|s| s == n)
        {
            continue;
        }
        out.append(name.clone(), value.clone());
    }
    out
}

/// The field names a `Connection` header lists, lower-case.
fn connection_named(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .filter(|n| !n.is_empty())
        .collect()
}

/// Removes the hop-by-hop fields and the fields `Connection` names (RFC 9110 §7.6.1), as a proxy
/// must before forwarding a message either way.
///
/// ```
/// let mut h = http::HeaderMap::new();
/// h.insert("connection", "x-trace".parse().unwrap());
/// h.insert("x-trace", "1".parse().unwrap());
/// h.insert("keep-alive", "5".parse().unwrap());
/// h.insert("content-type", "text/plain".parse().unwrap());
/// larder_http::remove_hop_by_hop(&mut h);
/// assert_eq!(h.len(), 1);
/// ```
pub fn remove_hop_by_hop(headers: &mut HeaderMap) {
    for name in connection_named(headers) {
        headers.remove(name.as_str());
    }
    let hop: Vec<HeaderName> = headers
        .keys()
        .filter(|n| is_hop_by_hop(n))
        .cloned()
        .collect();
    for name in hop {
        headers.remove(name);
    }
}

/// The purge tags a response carries in `tag_header` (space- or comma-separated).
pub(crate) fn tags(headers: &HeaderMap, tag_header: Option<&HeaderName>) -> Vec<String> {
    let Some(name) = tag_header else {
        return Vec::new();
    };
    let mut tags: Vec<String> = headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split([' ', ',']))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    tags.sort_unstable();
    tags.dedup();
    tags
}

/// How a response was served, for the status header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CacheStatus {
    /// Served from the cache (or from another request's response as it arrived).
    Hit,
    /// Fetched from the service; stored if the rules allow.
    Miss,
    /// A stale stored response (max-stale, stale-while-revalidate or stale-if-error).
    Stale,
    /// Served from the cache after the service confirmed it with a 304.
    Revalidated,
    /// The cache was not consulted (method, Range, unkeyable request).
    Bypass,
}

impl CacheStatus {
    /// The header value: `HIT`, `MISS`, `STALE`, `REVALIDATED` or `BYPASS`.
    ///
    /// ```
    /// assert_eq!(larder_http::CacheStatus::Hit.as_str(), "HIT");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "HIT",
            Self::Miss => "MISS",
            Self::Stale => "STALE",
            Self::Revalidated => "REVALIDATED",
            Self::Bypass => "BYPASS",
        }
    }
}

/// How a response was served, in full: what `Cache-Status` (RFC 9211) reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    pub status: CacheStatus,
    /// The stored response's age, for `Age`.
    pub age: Option<u64>,
    /// Freshness left, in seconds; negative once stale.
    pub ttl: Option<i64>,
    /// The status the origin answered this request's forward with.
    pub fwd_status: Option<u16>,
    /// The response is being stored.
    pub stored: bool,
    /// The request shared another request's forward.
    pub collapsed: bool,
    pub detail: Option<&'static str>,
}

impl From<CacheStatus> for Outcome {
    fn from(status: CacheStatus) -> Self {
        Self {
            status,
            age: None,
            ttl: None,
            fwd_status: None,
            stored: false,
            collapsed: false,
            detail: None,
        }
    }
}

impl Outcome {
    pub fn fwd_status(mut self, status: http::StatusCode) -> Self {
        self.fwd_status = Some(status.as_u16());
        self
    }

    pub fn detail(mut self, detail: &'static str) -> Self {
        self.detail = Some(detail);
        self
    }

    /// The `Cache-Status` member for this cache, named `name`.
    fn cache_status(&self, name: &str) -> String {
        use std::fmt::Write;
        let mut out = String::with_capacity(name.len() + 40);
        push_sf_name(name, &mut out);
        let fwd = match self.status {
            CacheStatus::Hit if !self.collapsed => None,
            CacheStatus::Stale if self.fwd_status.is_none() => None,
            CacheStatus::Bypass => Some("bypass"),
            CacheStatus::Stale | CacheStatus::Revalidated => Some("stale"),
            CacheStatus::Hit | CacheStatus::Miss => Some("uri-miss"),
        };
        match fwd {
            None => out.push_str("; hit"),
            Some(fwd) => {
                let _ = write!(out, "; fwd={fwd}");
                if let Some(s) = self.fwd_status {
                    let _ = write!(out, "; fwd-status={s}");
                }
            }
        }
        if let Some(ttl) = self.ttl {
            let _ = write!(out, "; ttl={ttl}");
        }
        if self.stored {
            out.push_str("; stored");
        }
        if self.collapsed {
            out.push_str("; collapsed");
        }
        if let Some(detail) = self.detail {
            let _ = write!(out, "; detail={detail}");
        }
        out
    }
}

/// A cache name as an sf-token where it is one, else as an sf-string (RFC 8941).
fn push_sf_name(name: &str, out: &mut String) {
    let token = name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '*')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~:/".contains(&b));
    if token {
        out.push_str(name);
        return;
    }
    out.push('"');
    for c in name.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
}

/// Sets `Age`, the status header and `Cache-Status` (appended to the origin's members, as
/// RFC 9211 §2 asks) on a response about to leave.
pub(crate) fn mark(headers: &mut HeaderMap, cfg: &crate::config::Config, outcome: Outcome) {
    // Room for the three fields at once: a stored map cloned has none to spare, and growing
    // it field by field rehashes it each time.
    headers.reserve(3);
    if let Some(age) = outcome.age {
        headers.insert(header::AGE, HeaderValue::from(age));
    }
    if let Some(name) = &cfg.status_header {
        headers.insert(
            name.clone(),
            HeaderValue::from_static(outcome.status.as_str()),
        );
    }
    if let Some(cache) = &cfg.cache_status {
        let ours = outcome.cache_status(cache);
        let joined = match headers.get(CACHE_STATUS).and_then(|v| v.to_str().ok()) {
            Some(theirs) if !theirs.trim().is_empty() => format!("{theirs}, {ours}"),
            _ => ours,
        };
        if let Ok(v) = HeaderValue::from_str(&joined) {
            headers.insert(CACHE_STATUS, v);
        }
    }
}

/// RFC 9211's field.
pub(crate) const CACHE_STATUS: HeaderName = HeaderName::from_static("cache-status");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storable_drops_hop_by_hop_connection_named_and_stripped_fields() {
        let mut h = HeaderMap::new();
        h.insert("connection", "x-conn".parse().unwrap());
        h.insert("x-conn", "1".parse().unwrap());
        h.insert("keep-alive", "5".parse().unwrap());
        h.insert("x-secret", "s".parse().unwrap());
        h.insert("content-type", "text/plain".parse().unwrap());
        let out = storable(&h, &["x-secret".into()]);
        assert_eq!(out.len(), 1);
        assert!(out.contains_key("content-type"));
    }

    #[test]
    fn hop_by_hop_fields_and_those_connection_names_go() {
        let mut h = HeaderMap::new();
        h.insert("connection", "x-a, , keep-alive".parse().unwrap());
        h.insert("x-a", "1".parse().unwrap());
        h.insert("keep-alive", "5".parse().unwrap());
        h.insert("te", "trailers".parse().unwrap());
        h.insert("x-b", "2".parse().unwrap());
        remove_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1);
        assert!(h.contains_key("x-b"));
    }

    #[test]
    fn cache_status_says_hit_forward_and_why() {
        let o = |s: CacheStatus| Outcome::from(s);
        let hit = Outcome {
            ttl: Some(30),
            ..o(CacheStatus::Hit)
        };
        assert_eq!(hit.cache_status("larder"), "larder; hit; ttl=30");
        let stored = Outcome {
            stored: true,
            ttl: Some(60),
            ..o(CacheStatus::Miss).fwd_status(http::StatusCode::OK)
        };
        assert_eq!(
            stored.cache_status("larder"),
            "larder; fwd=uri-miss; fwd-status=200; ttl=60; stored"
        );
        let stale = Outcome {
            ttl: Some(-5),
            ..o(CacheStatus::Stale).fwd_status(http::StatusCode::SERVICE_UNAVAILABLE)
        };
        assert_eq!(
            stale.cache_status("larder"),
            "larder; fwd=stale; fwd-status=503; ttl=-5"
        );
        assert_eq!(
            o(CacheStatus::Bypass).cache_status("my cache"),
            "\"my cache\"; fwd=bypass"
        );
        let collapsed = Outcome {
            collapsed: true,
            ..o(CacheStatus::Hit)
        };
        assert_eq!(
            collapsed.cache_status("larder"),
            "larder; fwd=uri-miss; collapsed"
        );
    }

    #[test]
    fn tags_split_on_spaces_and_commas() {
        let mut h = HeaderMap::new();
        h.append("surrogate-key", "a b,c".parse().unwrap());
        h.append("surrogate-key", "a".parse().unwrap());
        let name = HeaderName::from_static("surrogate-key");
        assert_eq!(tags(&h, Some(&name)), ["a", "b", "c"]);
        assert!(tags(&h, None).is_empty());
    }
}
