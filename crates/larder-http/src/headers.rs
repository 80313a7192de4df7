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

/// Sets `Age` and the status header on a response about to leave.
pub(crate) fn mark(
    headers: &mut HeaderMap,
    status_header: Option<&HeaderName>,
    status: CacheStatus,
    age: Option<u64>,
) {
    if let Some(age) = age {
        headers.insert(header::AGE, HeaderValue::from(age));
    }
    if let Some(name) = status_header {
        headers.insert(name.clone(), HeaderValue::from_static(status.as_str()));
    }
}

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
    fn tags_split_on_spaces_and_commas() {
        let mut h = HeaderMap::new();
        h.append("surrogate-key", "a b,c".parse().unwrap());
        h.append("surrogate-key", "a".parse().unwrap());
        let name = HeaderName::from_static("surrogate-key");
        assert_eq!(tags(&h, Some(&name)), ["a", "b", "c"]);
        assert!(tags(&h, None).is_empty());
    }
}
