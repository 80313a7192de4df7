//! Cache keys: the primary key of a request (host, path, sorted query), and the secondary key
//! of one variant when the stored response has `Vary`.
//!
//! Keys are built, never concatenated from raw input: every part is normalized so that requests
//! the origin cannot tell apart share one entry, and nothing a client sends can make two
//! different resources share one.

use std::fmt::Write;
use std::sync::Arc;

use http::header::HOST;
use http::request::Parts;
use http::{HeaderMap, HeaderName, Method};

/// A user's key function: the primary key of a request, or `None` to pass it by uncached.
pub(crate) type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// The primary key of a GET or HEAD request: `host` + normalized path + `?` + sorted, normalized
/// query. HEAD shares GET's key, so a HEAD is answered from a stored GET.
///
/// `None` when the request cannot be keyed safely: more than one `Host`, or a `Host` that
/// disagrees with the request target's authority (a classic cache-poisoning lever).
pub(crate) fn primary_key(parts: &Parts) -> Option<String> {
    let host = request_host(parts)?;
    let mut key = String::with_capacity(host.len() + parts.uri.path().len() + 16);
    for b in host.bytes() {
        key.push(b.to_ascii_lowercase() as char);
    }
    normalize_percent(parts.uri.path(), &mut key, false);
    key.push('?');
    if let Some(query) = parts.uri.query() {
        push_sorted_query(query, &mut key);
    }
    Some(key)
}

/// The primary key for a URL given to purge (`http://host/path?query` or `/path?query`), so that
/// it names the same entry the request for it did.
pub(crate) fn url_key(uri: &http::Uri) -> Option<String> {
    let mut req = http::Request::builder()
        .method(Method::GET)
        .uri(uri.clone());
    if let Some(auth) = uri.authority() {
        req = req.header(HOST, auth.as_str());
    }
    let (parts, ()) = req.body(()).ok()?.into_parts();
    primary_key(&parts)
}

fn request_host(parts: &Parts) -> Option<String> {
    let mut hosts = parts.headers.get_all(HOST).iter();
    let header = hosts.next();
    if hosts.next().is_some() {
        return None;
    }
    let header = match header {
        Some(h) => Some(h.to_str().ok()?),
        None => None,
    };
    let authority = parts.uri.authority().map(|a| a.as_str());
    let host = match (authority, header) {
        (Some(a), Some(h)) if !same_host(a, h, parts.uri.scheme_str()) => return None,
        (Some(a), _) => a,
        (None, Some(h)) => h,
        (None, None) => "",
    };
    Some(strip_default_port(host, parts.uri.scheme_str()).to_owned())
}

fn same_host(a: &str, b: &str, scheme: Option<&str>) -> bool {
    strip_default_port(a, scheme).eq_ignore_ascii_case(strip_default_port(b, scheme))
}

fn strip_default_port<'a>(host: &'a str, scheme: Option<&str>) -> &'a str {
    let default = match scheme {
        Some("https") => ":443",
        _ => ":80",
    };
    host.strip_suffix(default).unwrap_or(host)
}

/// Appends the query's `name=value` pairs, each normalized, sorted by name, joined by `&`. Empty
/// pairs go; `a` and `a=` are the same pair, as every form decoder reads them. The sort is stable:
/// repeated names keep their order, because `a=1&a=2` and `a=2&a=1` can mean different things to
/// the app (first value wins, or last), and sharing one entry would let one poison the other.
fn push_sorted_query(query: &str, out: &mut String) {
    let mut pairs: Vec<String> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut p = String::with_capacity(pair.len() + 1);
            normalize_percent(name, &mut p, true);
            p.push('=');
            normalize_percent(value, &mut p, true);
            p
        })
        .collect();
    pairs.sort_by(|a, b| pair_name(a).cmp(pair_name(b)));
    for (i, p) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(p);
    }
}

fn pair_name(pair: &str) -> &str {
    pair.split_once('=').map_or(pair, |(n, _)| n)
}

/// Normalizes percent-encoding (RFC 3986 §6.2.2): escapes of unreserved characters are decoded,
/// every other escape gets upper-case hex, and a `%` that starts no escape is escaped itself. In a
/// query, `+` is a space (form encoding) and becomes `%20`. Reserved characters stay encoded, so
/// `%2F` and `/` remain different.
fn normalize_percent(input: &str, out: &mut String, query: bool) {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b'%' => match (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                (Some(h), Some(l)) => {
                    let decoded = h << 4 | l;
                    if is_unreserved(decoded) {
                        out.push(decoded as char);
                    } else {
                        push_escape(out, decoded);
                    }
                    i += 3;
                    continue;
                }
                _ => out.push_str("%25"),
            },
            b'+' if query => out.push_str("%20"),
            // `&` and `=` cannot reach here unescaped inside a name or value; anything else a
            // Uri accepted is visible ASCII and kept as sent.
            _ => out.push(b as char),
        }
        i += 1;
    }
}

fn push_escape(out: &mut String, byte: u8) {
    let _ = write!(out, "%{byte:02X}");
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The secondary key of one variant: the primary key, the index's nonce (so a purged index
/// orphans its old variants), then each varied header's normalized value from the request.
pub(crate) fn variant_key(
    primary: &str,
    nonce: u64,
    vary: &[HeaderName],
    headers: &HeaderMap,
) -> String {
    let mut key = String::with_capacity(primary.len() + 24 + vary.len() * 24);
    key.push_str(primary);
    let _ = write!(key, "#v{nonce:x}");
    for name in vary {
        key.push('|');
        key.push_str(name.as_str());
        push_vary_value(name, headers, &mut key);
    }
    key
}

/// The normalized values of the varied headers alone, to compare two requests' variants.
pub(crate) fn vary_values(vary: &[HeaderName], headers: &HeaderMap) -> String {
    variant_key("", 0, vary, headers)
}

/// The primary key of another URI on the same host as `parts` (a `Location` or
/// `Content-Location` after an unsafe request, §4.4): `None` for another host or a bad URI.
pub(crate) fn related_parts(parts: &Parts, location: &str) -> Option<Parts> {
    let uri: http::Uri = location.parse().ok()?;
    let host = request_host(parts)?;
    if let Some(auth) = uri.authority()
        && !same_host(auth.as_str(), &host, uri.scheme_str())
    {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let (related, ()) = http::Request::builder()
        .method(Method::GET)
        .uri(path)
        .header(HOST, host)
        .body(())
        .ok()?
        .into_parts();
    Some(related)
}

/// The normalized value of a varied header (§4.1): all field lines joined as one list, members
/// trimmed and empty ones dropped, whitespace runs collapsed, and for the `Accept*` family, whose
/// values are case-insensitive tokens, lower-cased. An absent header differs from an empty one.
fn push_vary_value(name: &HeaderName, headers: &HeaderMap, out: &mut String) {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        out.push('!');
        return;
    }
    out.push('=');
    let fold_case = name.as_str().starts_with("accept");
    let mut first = true;
    for line in lines {
        let text = String::from_utf8_lossy(line.as_bytes());
        for member in text.split(',') {
            let member = member.trim();
            if member.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let mut last_space = false;
            for c in member.chars() {
                if c.is_ascii_whitespace() {
                    if !last_space {
                        out.push(' ');
                    }
                    last_space = true;
                    continue;
                }
                last_space = false;
                // The separators of the key itself never appear raw inside a value.
                match c {
                    '|' => out.push_str("%7C"),
                    c if fold_case => out.push(c.to_ascii_lowercase()),
                    c => out.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(uri: &str, host: Option<&str>) -> Option<String> {
        let mut b = http::Request::builder().uri(uri);
        if let Some(h) = host {
            b = b.header(HOST, h);
        }
        primary_key(&b.body(()).unwrap().into_parts().0)
    }

    #[test]
    fn query_order_and_encoding_do_not_matter() {
        let a = key("/users?skip=0&limit=10&q=a%2fb", Some("api.test"));
        let b = key("/users?limit=10&q=a%2Fb&skip=0&", Some("API.test:80"));
        assert_eq!(a, b);
        assert_eq!(a.as_deref(), Some("api.test/users?limit=10&q=a%2Fb&skip=0"));
        assert_eq!(key("/p?x=%41+b", None), key("/p?x=A%20b", None));
        assert_eq!(key("/p?flag", None), key("/p?flag=", None));
    }

    #[test]
    fn repeated_names_keep_their_order() {
        assert_ne!(key("/p?a=1&a=2", None), key("/p?a=2&a=1", None));
        assert_eq!(key("/p?b=0&a=1&a=2", None), key("/p?a=1&b=0&a=2", None));
    }

    #[test]
    fn different_resources_never_share_a_key() {
        assert_ne!(key("/a%2Fb", None), key("/a/b", None));
        assert_ne!(key("/p?a=1&b=2", None), key("/p?a=1%26b%3D2", None));
        assert_ne!(key("/p", Some("one.test")), key("/p", Some("two.test")));
        assert_ne!(key("/p?", None), key("/p%3F", None));
        assert_eq!(key("/p?x=%zz", None).as_deref(), Some("/p?x=%25zz"));
    }

    #[test]
    fn conflicting_or_repeated_hosts_are_not_keyed() {
        assert!(key("http://a.test/p", Some("b.test")).is_none());
        assert!(key("http://a.test/p", Some("a.test:80")).is_some());
        let mut req = http::Request::builder().uri("/p").body(()).unwrap();
        req.headers_mut().append(HOST, "a.test".parse().unwrap());
        req.headers_mut().append(HOST, "b.test".parse().unwrap());
        assert!(primary_key(&req.into_parts().0).is_none());
    }

    #[test]
    fn variant_keys_normalize_values_and_tell_absent_from_empty() {
        let vary = [http::header::ACCEPT, HeaderName::from_static("x-tenant")];
        let mut a = HeaderMap::new();
        a.append(
            http::header::ACCEPT,
            "Text/CSV ,  application/json".parse().unwrap(),
        );
        let mut b = HeaderMap::new();
        b.append(http::header::ACCEPT, "text/csv".parse().unwrap());
        b.append(http::header::ACCEPT, "application/json".parse().unwrap());
        assert_eq!(
            variant_key("k", 1, &vary, &a),
            variant_key("k", 1, &vary, &b)
        );
        let mut c = b.clone();
        c.insert("x-tenant", "".parse().unwrap());
        assert_ne!(
            variant_key("k", 1, &vary, &b),
            variant_key("k", 1, &vary, &c)
        );
        assert_ne!(
            variant_key("k", 1, &vary, &b),
            variant_key("k", 2, &vary, &b)
        );
        let mut d = b.clone();
        d.insert("x-tenant", "A".parse().unwrap());
        assert_ne!(
            variant_key("k", 1, &vary, &c),
            variant_key("k", 1, &vary, &d)
        );
    }

    proptest! {
        #[test]
        fn every_permutation_of_a_query_gives_one_key(
            pairs in proptest::collection::btree_map("[a-z%+]{1,4}", "[a-zA-Z0-9%+ ]{0,5}", 1..6),
            seed in any::<u64>(),
        ) {
            // Distinct names (the order of a repeated name is kept on purpose), each normalized
            // to a distinct name too.
            let names: std::collections::HashSet<String> = pairs.keys().map(|k| {
                let mut n = String::new();
                normalize_percent(k, &mut n, true);
                n
            }).collect();
            prop_assume!(names.len() == pairs.len());
            let encode = |s: &str| s.replace(' ', "+");
            let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
            let mut shuffled = query.clone();
            // A deterministic shuffle from the seed: proptest shrinks it like any input.
            let mut s = seed;
            for i in (1..shuffled.len()).rev() {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (s >> 33) as usize % (i + 1));
            }
            let a = format!("/p?{}", query.join("&"));
            let b = format!("/p?{}", shuffled.join("&"));
            prop_assume!(a.parse::<http::Uri>().is_ok());
            prop_assert_eq!(key(&a, None), key(&b, None));
        }
    }
}
