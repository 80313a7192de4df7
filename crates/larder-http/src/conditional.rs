//! Validators: answering a client's conditional request from a stored response (RFC 9110 §13),
//! revalidating a stored response with the origin (RFC 9111 §4.3), and a strong ETag computed
//! from a body.

use http::header::{
    self, CONTENT_LENGTH, ETAG, IF_MATCH, IF_MODIFIED_SINCE, IF_NONE_MATCH, IF_RANGE,
    IF_UNMODIFIED_SINCE,
};
use http::{HeaderMap, HeaderValue};
use sha2::{Digest, Sha256};

use crate::stored::CachedResponse;

/// Whether the client's validators match the stored response, so a 304 answers it. If-None-Match
/// wins over If-Modified-Since (§13.2.2); only a 200 is ever turned into a 304.
pub(crate) fn not_modified(request: &HeaderMap, stored: &CachedResponse) -> bool {
    response_matches(request, stored.status, &stored.headers)
}

/// [`not_modified`] for a response's status and header fields.
pub(crate) fn response_matches(
    request: &HeaderMap,
    status: http::StatusCode,
    response: &HeaderMap,
) -> bool {
    if status != http::StatusCode::OK {
        return false;
    }
    if request.contains_key(IF_NONE_MATCH) {
        let etag = response.get(ETAG).map(HeaderValue::as_bytes);
        // An entity-tag may hold a comma inside its quotes (and obs-text): split the list outside
        // them, compare bytes. `*` matches any current representation, with an ETag or without
        // (RFC 9110 §13.1.2).
        return request
            .get_all(IF_NONE_MATCH)
            .iter()
            .flat_map(|v| crate::directives::split_list_bytes(v.as_bytes()))
            .any(|candidate| candidate == b"*" || etag.is_some_and(|e| weak_eq(candidate, e)));
    }
    let (Some(since), Some(modified)) = (
        request.get(IF_MODIFIED_SINCE).and_then(http_date),
        response.get(header::LAST_MODIFIED).and_then(http_date),
    ) else {
        return false;
    };
    modified <= since
}

/// Weak comparison (§8.8.3.2): equal opaque tags, either or both weak.
fn weak_eq(a: &[u8], b: &[u8]) -> bool {
    a.strip_prefix(b"W/").unwrap_or(a) == b.strip_prefix(b"W/").unwrap_or(b)
}

fn http_date(v: &HeaderValue) -> Option<std::time::SystemTime> {
    httpdate::parse_http_date(v.to_str().ok()?).ok()
}

/// The header fields a 304 carries (§15.4.5): those of the stored 200 that describe the cache
/// semantics, so the client can update its own copy.
pub(crate) fn not_modified_headers(stored: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [
        header::CACHE_CONTROL,
        header::CONTENT_LOCATION,
        header::DATE,
        ETAG,
        header::EXPIRES,
        header::VARY,
    ] {
        for v in stored.get_all(&name) {
            out.append(name.clone(), v.clone());
        }
    }
    out
}

/// Clears the client's own validators from a request the cache forwards to fill or refresh an
/// entry (the origin must answer with the full response, not a 304 meant for one client), then
/// adds the stored response's validators when revalidating it.
pub(crate) fn prepare_origin_request(
    headers: &mut HeaderMap,
    revalidating: Option<&CachedResponse>,
) {
    for name in [
        IF_NONE_MATCH,
        IF_MODIFIED_SINCE,
        IF_MATCH,
        IF_UNMODIFIED_SINCE,
        IF_RANGE,
    ] {
        headers.remove(name);
    }
    let Some(stored) = revalidating else { return };
    if let Some(etag) = stored.etag() {
        headers.insert(IF_NONE_MATCH, etag.clone());
    }
    if let Some(lm) = stored.last_modified() {
        headers.insert(IF_MODIFIED_SINCE, lm.clone());
    }
}

/// Updates a stored response's header fields from a 304 (RFC 9111 §3.2, §4.3.4): every field of
/// the 304 replaces the stored one, except Content-Length and the hop-by-hop fields.
pub(crate) fn freshen(stored: &mut HeaderMap, update: &HeaderMap) {
    let mut replaced: Vec<&header::HeaderName> = Vec::new();
    for (name, value) in update {
        if name == CONTENT_LENGTH || crate::headers::is_hop_by_hop(name) {
            continue;
        }
        if !replaced.contains(&name) {
            stored.remove(name);
            replaced.push(name);
        }
        stored.append(name.clone(), value.clone());
    }
}

/// A strong ETag from the body's SHA-256 (128 bits of it, hex), for application mode.
pub(crate) fn body_etag(body: &[u8]) -> HeaderValue {
    let digest = Sha256::digest(body);
    let mut tag = String::with_capacity(34);
    tag.push('"');
    for b in &digest[..16] {
        tag.push_str(&format!("{b:02x}"));
    }
    tag.push('"');
    // Only hex digits and quotes: always a valid header value.
    HeaderValue::from_str(&tag).unwrap_or_else(|_| HeaderValue::from_static("\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stored::Rules;

    fn stored(pairs: &[(&str, &str)]) -> CachedResponse {
        let mut headers = HeaderMap::new();
        for (n, v) in pairs {
            headers.append(
                header::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                v.parse().unwrap(),
            );
        }
        CachedResponse {
            status: http::StatusCode::OK,
            headers,
            body: bytes::Bytes::new(),
            response_time_ms: 0,
            initial_age: 0,
            lifetime: 60,
            rules: Rules::default(),
            tags: Vec::new(),
        }
    }

    fn req(pairs: &[(&str, &str)]) -> HeaderMap {
        stored(pairs).headers
    }

    #[test]
    fn if_none_match_uses_weak_comparison_and_lists() {
        let s = stored(&[("etag", "\"v2\"")]);
        assert!(not_modified(
            &req(&[("if-none-match", "\"v1\", W/\"v2\"")]),
            &s
        ));
        assert!(not_modified(&req(&[("if-none-match", "*")]), &s));
        let comma = stored(&[("etag", "\"a,b\"")]);
        assert!(not_modified(&req(&[("if-none-match", "\"a,b\"")]), &comma));
        assert!(not_modified(
            &req(&[("if-none-match", "\"x\", \"a,b\"")]),
            &comma
        ));
        assert!(!not_modified(&req(&[("if-none-match", "\"a\"")]), &comma));
        assert!(!not_modified(&req(&[("if-none-match", "b\"")]), &comma));
        assert!(!not_modified(&req(&[("if-none-match", "\"v1\"")]), &s));
        assert!(!not_modified(
            &req(&[("if-none-match", "\"v2\"")]),
            &stored(&[])
        ));
        assert!(
            not_modified(&req(&[("if-none-match", "*")]), &stored(&[])),
            "* matches a representation without an ETag too"
        );
        assert!(
            not_modified(&req(&[("if-none-match", "*")]), &stored(&[])),
            "* matches a representation without an ETag too"
        );
    }

    #[test]
    fn if_modified_since_only_without_if_none_match() {
        let s = stored(&[
            ("etag", "\"v2\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        assert!(not_modified(
            &req(&[("if-modified-since", "Tue, 01 Jan 2030 00:00:00 GMT")]),
            &s
        ));
        assert!(!not_modified(
            &req(&[("if-modified-since", "Mon, 31 Dec 2029 00:00:00 GMT")]),
            &s
        ));
        assert!(!not_modified(
            &req(&[
                ("if-modified-since", "Tue, 01 Jan 2030 00:00:00 GMT"),
                ("if-none-match", "\"v1\"")
            ]),
            &s
        ));
    }

    #[test]
    fn origin_requests_lose_client_validators_and_gain_ours() {
        let mut h = req(&[
            ("if-none-match", "\"client\""),
            ("if-range", "x"),
            ("accept", "a"),
        ]);
        prepare_origin_request(&mut h, None);
        assert!(!h.contains_key(IF_NONE_MATCH) && !h.contains_key(IF_RANGE));
        assert!(h.contains_key("accept"));
        let s = stored(&[
            ("etag", "\"v2\""),
            ("last-modified", "Tue, 01 Jan 2030 00:00:00 GMT"),
        ]);
        prepare_origin_request(&mut h, Some(&s));
        assert_eq!(h[IF_NONE_MATCH], "\"v2\"");
        assert_eq!(h[IF_MODIFIED_SINCE], "Tue, 01 Jan 2030 00:00:00 GMT");
    }

    #[test]
    fn freshen_replaces_fields_but_not_content_length() {
        let mut s = req(&[
            ("cache-control", "max-age=1"),
            ("content-length", "5"),
            ("x-a", "1"),
        ]);
        freshen(
            &mut s,
            &req(&[
                ("cache-control", "max-age=9"),
                ("content-length", "0"),
                ("connection", "close"),
            ]),
        );
        assert_eq!(s["cache-control"], "max-age=9");
        assert_eq!(s["content-length"], "5");
        assert_eq!(s["x-a"], "1");
        assert!(!s.contains_key("connection"));
    }

    #[test]
    fn body_etags_are_strong_and_stable() {
        let a = body_etag(b"hello");
        assert_eq!(a, body_etag(b"hello"));
        assert_ne!(a, body_etag(b"hello!"));
        assert!(a.to_str().unwrap().starts_with('"'));
        assert_eq!(a.len(), 34);
    }
}
