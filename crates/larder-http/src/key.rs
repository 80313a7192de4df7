//! Cache keys: the primary key of a request (host, path, sorted query), and the secondary key
//! of one variant when the stored response varies (by `Vary`, keyed headers or keyed cookies).
//!
//! Keys are built, never concatenated from raw input: every part is validated and normalized so
//! that requests the origin cannot tell apart share one entry, and nothing a client sends can make
//! two different resources share one. The host is `host[:port]` and nothing else (see `host`),
//! so it holds no `/`; the path always starts with `/`, so the first `/` ends the host; the query
//! follows the first `?`, which no host or path holds; and a variant's part follows `#`, which no
//! request target holds, with every value escaped so that it cannot forge a separator.

use std::fmt::Write;
use std::sync::Arc;

use http::Uri;
use http::request::Parts;

/// Which part of the query keys an entry.
///
/// ```
/// use larder_http::QueryKey;
/// let key = QueryKey::Except(vec!["utm_*".into(), "fbclid".into()]);
/// # let _ = key;
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum QueryKey {
    /// Every parameter, sorted by name (the default): `?b=2&a=1` and `?a=1&b=2` share an entry.
    #[default]
    All,
    /// Only these parameters (sorted); the rest never reach the key. A name ending in `*`
    /// matches every name it starts.
    Only(Vec<String>),
    /// Every parameter but these (tracking parameters, say). `*` as in `Only`.
    Except(Vec<String>),
    /// No parameter: one entry per path, whatever the query.
    Ignore,
}

impl QueryKey {
    /// Whether a (normalized) parameter name is part of the key.
    pub(crate) fn keeps(&self, name: &str) -> bool {
        match self {
            Self::All => true,
            Self::Only(names) => names.iter().any(|p| name_matches(p, name)),
            Self::Except(names) => !names.iter().any(|p| name_matches(p, name)),
            Self::Ignore => false,
        }
    }
}

fn name_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => pattern == name,
    }
}

/// A user's key function: the primary key of a request, or `None` to pass it by uncached.
pub(crate) type KeyFn = Arc<dyn Fn(&Parts) -> Option<String> + Send + Sync>;

/// The primary key of a GET or HEAD request for `host` (already normalized): host + normalized
/// path + `?` + sorted, normalized query. HEAD shares GET's key, so a HEAD is answered from a
/// stored GET. `None` for a target that is not a path (authority or asterisk form).
pub(crate) fn primary_key(host: &str, uri: &Uri, query: &QueryKey) -> Option<String> {
    // The canonical path (see `path.rs`): borrowed, at the cost of one scan, for the request
    // the service already made canonical; `None` for one that has no canonical form.
    let path = crate::path::canonical(uri.path()).ok()?;
    let mut key = String::with_capacity(host.len() + path.len() + 16);
    key.push_str(host);
    key.push_str(&path);
    key.push('?');
    if let Some(q) = uri.query()
        && *query != QueryKey::Ignore
    {
        push_sorted_query(q, query, &mut key);
    }
    Some(key)
}

/// The tag that marks every entry under the path prefix `prefix_key` (a primary key's host and
/// path up to a segment's end), so a purge by prefix is one tag invalidation. The space keeps
/// it apart from the service's own tags, which are split on spaces.
pub(crate) fn prefix_tag(prefix_key: &str) -> String {
    format!("prefix {prefix_key}")
}

/// The tag of every POST entry keyed on a body under the primary key `url` (see
/// `key_bodies`), so that purging or writing to the URL drops them too.
pub(crate) fn body_tag(url: &str) -> String {
    format!("body {url}")
}

/// The prefix tags of a primary key: its host plus each of its path's first `depth` segments,
/// cumulatively (`h/a`, `h/a/b`, ...).
pub(crate) fn prefix_tags(key: &str, depth: usize) -> Vec<String> {
    let end = key.find('?').unwrap_or(key.len());
    let Some(start) = key[..end].find('/') else {
        return Vec::new();
    };
    let path = &key[start..end];
    let mut tags = Vec::new();
    let mut at = 0;
    for segment in path[1..].split('/').take(depth) {
        if segment.is_empty() {
            break;
        }
        at += 1 + segment.len();
        tags.push(prefix_tag(&key[..start + at]));
    }
    tags
}

/// Appends the query's `name=value` pairs, each normalized, sorted by name, joined by `&`. Empty
/// pairs go; `a` and `a=` are the same pair, as every form decoder reads them. The sort is stable:
/// repeated names keep their order, because `a=1&a=2` and `a=2&a=1` can mean different things to
/// the app (first value wins, or last), and sharing one entry would let one poison the other.
fn push_sorted_query(query: &str, keep: &QueryKey, out: &mut String) {
    let mut pairs: Vec<std::borrow::Cow<'_, str>> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            // Most pairs are normal already (`name=value`, no escape, no `+`): borrowed.
            if pair.contains('=') && !pair.bytes().any(|b| b == b'%' || b == b'+') {
                return std::borrow::Cow::Borrowed(pair);
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let mut p = String::with_capacity(pair.len() + 1);
            normalize_percent(name, &mut p, true);
            p.push('=');
            normalize_percent(value, &mut p, true);
            std::borrow::Cow::Owned(p)
        })
        .filter(|p| *keep == QueryKey::All || keep.keeps(pair_name(p)))
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
pub(crate) fn normalize_percent(input: &str, out: &mut String, query: bool) {
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

pub(crate) fn push_escape(out: &mut String, byte: u8) {
    let _ = write!(out, "%{byte:02X}");
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The primary key of another URI on the same host as `parts` (a `Location` or
/// `Content-Location` after an unsafe request, §4.4): `None` for another host or a bad URI.
pub(crate) fn related_parts(parts: &Parts, host: &str, location: &str) -> Option<Parts> {
    let uri: Uri = location.parse().ok()?;
    if let Some(auth) = uri.authority()
        && crate::host::normalize(auth.as_str(), uri.scheme_str()).as_deref() != Some(host)
    {
        return None;
    }
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut related = http::Request::builder()
        .method(http::Method::GET)
        .uri(path)
        .body(())
        .ok()?
        .into_parts()
        .0;
    related.headers = parts.headers.clone();
    related.headers.remove(http::header::HOST);
    if !host.is_empty() {
        related
            .headers
            .insert(http::header::HOST, http::HeaderValue::from_str(host).ok()?);
    }
    Some(related)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::host::{RequestHost, request_host};
    // Variant keys are built on primary keys: their properties are checked together here.
    use crate::vary::{Varied, variant_key};
    use http::header::HOST;
    use http::{HeaderMap, HeaderName};
    use proptest::prelude::*;

    /// The key the layer's default keying gives a GET of `uri` with these `Host` lines; `None`
    /// when it is refused (400) or not keyed.
    fn key_of(uri: &str, hosts: &[&str]) -> Option<String> {
        let mut req = http::Request::builder().uri(uri).body(()).ok()?;
        for h in hosts {
            req.headers_mut()
                .append(HOST, http::HeaderValue::from_bytes(h.as_bytes()).ok()?);
        }
        let parts = req.into_parts().0;
        match request_host(&parts) {
            Ok(RequestHost::Named(host)) => primary_key(&host, &parts.uri, &QueryKey::All),
            _ => None,
        }
    }

    fn key(uri: &str, host: Option<&str>) -> Option<String> {
        key_of(uri, host.as_slice())
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
    fn prefix_tags_follow_whole_segments() {
        assert_eq!(
            prefix_tags("h/a/b/c?x=1", 2),
            [prefix_tag("h/a"), prefix_tag("h/a/b")]
        );
        assert_eq!(prefix_tags("h/a/?", 4), [prefix_tag("h/a")]);
        assert!(prefix_tags("h/?x", 4).is_empty());
        assert!(prefix_tags("no-path", 4).is_empty());
    }

    #[test]
    fn a_query_key_filter_keeps_only_what_the_rule_names() {
        let only = QueryKey::Only(vec!["a".into()]);
        let uri: Uri = "/p?b=2&a=1&a=0".parse().unwrap();
        assert_eq!(primary_key("h", &uri, &only).unwrap(), "h/p?a=1&a=0");
        assert_eq!(primary_key("h", &uri, &QueryKey::Ignore).unwrap(), "h/p?");
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

    /// The finding that opened issue 15: `GET /page` with `Host: 127.0.0.1:8080/victim` was stored
    /// under the key of `GET /victim/page` on that host.
    #[test]
    fn no_host_value_reads_as_a_path() {
        let victim = key("/victim/page", Some("127.0.0.1:8080"));
        assert!(victim.is_some());
        assert_eq!(key("/page", Some("127.0.0.1:8080/victim")), None);
        assert_eq!(key("/page", Some("127.0.0.1:8080?")), None);
        assert_eq!(key("/page", Some("127.0.0.1:8080#")), None);
    }

    #[test]
    fn conflicting_or_repeated_hosts_are_not_keyed() {
        assert!(key("http://a.test/p", Some("b.test")).is_none());
        assert!(key("http://a.test/p", Some("a.test:80")).is_some());
        assert!(key_of("/p", &["a.test", "b.test"]).is_none());
    }

    #[test]
    fn targets_that_are_not_paths_are_not_keyed() {
        assert_eq!(
            primary_key("a.test", &"*".parse().unwrap(), &QueryKey::All),
            None
        );
        assert_eq!(
            primary_key("a.test", &"a.test:443".parse().unwrap(), &QueryKey::All),
            None
        );
    }

    #[test]
    fn no_request_target_holds_the_variant_separator() {
        for uri in ["/p#frag", "/p?a=1#frag", "http://a.test/p#x"] {
            if let Some(k) = key(uri, None) {
                assert!(!k.contains('#'), "{uri} -> {k}");
            }
        }
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                http::HeaderValue::from_bytes(v).unwrap(),
            );
        }
        h
    }

    fn varied<'a>(names: &'a [HeaderName], cookies: &'a [String]) -> Varied<'a> {
        Varied {
            headers: names,
            cookies,
        }
    }

    #[test]
    fn variant_keys_normalize_values_and_tell_absent_from_empty() {
        let vary = [http::header::ACCEPT, HeaderName::from_static("x-tenant")];
        let v = varied(&vary, &[]);
        let a = headers(&[("accept", b"Text/CSV ,  application/json")]);
        let b = headers(&[("accept", b"text/csv"), ("accept", b"application/json")]);
        assert_eq!(variant_key("k", 1, v, &a), variant_key("k", 1, v, &b));
        let mut c = b.clone();
        c.insert("x-tenant", "".parse().unwrap());
        assert_ne!(variant_key("k", 1, v, &b), variant_key("k", 1, v, &c));
        assert_ne!(variant_key("k", 1, v, &b), variant_key("k", 2, v, &b));
        let mut d = b.clone();
        d.insert("x-tenant", "A".parse().unwrap());
        assert_ne!(variant_key("k", 1, v, &c), variant_key("k", 1, v, &d));
    }

    #[test]
    fn no_value_forges_an_escape_or_a_separator() {
        let vary = [
            HeaderName::from_static("x-tenant"),
            HeaderName::from_static("x-b"),
        ];
        let v = varied(&vary, &[]);
        let pairs: [(&[u8], &[u8]); 4] = [
            (b"a|b", b"a%7Cb"),
            (b"a", b"a|x-b=1"),
            (b"\xff", b"\xfe"),
            (b"a#v1", b"a%23v1"),
        ];
        for (x, y) in pairs {
            let kx = variant_key("k", 1, v, &headers(&[("x-tenant", x)]));
            let ky = variant_key("k", 1, v, &headers(&[("x-tenant", y)]));
            assert_ne!(kx, ky, "{x:?} vs {y:?}");
        }
        let cookies = ["lang".to_owned()];
        let c = varied(&[], &cookies);
        let kx = variant_key("k", 1, c, &headers(&[("cookie", b"lang=a,b")]));
        let ky = variant_key("k", 1, c, &headers(&[("cookie", b"lang=a; lang=b")]));
        assert_ne!(kx, ky);
        let none = variant_key("k", 1, c, &headers(&[("cookie", b"other=1")]));
        let empty = variant_key("k", 1, c, &headers(&[("cookie", b"lang=")]));
        assert_ne!(none, empty, "an absent cookie differs from an empty one");
    }

    /// One character of a URI part as the reference model sees it: a literal character, or an
    /// escaped byte. `%41` is the literal `A` (unreserved characters decode, RFC 3986 §6.2.2.2),
    /// `%2f` is the escaped `/` and differs from a literal `/`, and a `%` that starts no escape is
    /// an escaped `%`.
    #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
    enum Tok {
        Lit(char),
        Esc(u8),
    }

    fn toks(s: &str, query: bool) -> Vec<Tok> {
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let hex = |j: usize| b.get(j).and_then(|c| (*c as char).to_digit(16));
            if b[i] == b'%'
                && let (Some(h), Some(l)) = (hex(i + 1), hex(i + 2))
            {
                let byte = (h * 16 + l) as u8;
                out.push(if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
                    Tok::Lit(byte as char)
                } else {
                    Tok::Esc(byte)
                });
                i += 3;
                continue;
            }
            out.push(match b[i] {
                b'%' => Tok::Esc(b'%'),
                b'+' if query => Tok::Esc(b' '),
                c => Tok::Lit(c as char),
            });
            i += 1;
        }
        out
    }

    type Canon = (String, Vec<Tok>, Vec<(Vec<Tok>, Vec<Tok>)>);

    /// What makes two requests the same resource, computed apart from the key builder: the host
    /// (case-insensitive, default port dropped), the path's characters, and the query's pairs
    /// ordered by name (stably: a repeated name keeps its order). `None` for a host the layer
    /// refuses.
    fn canon(host: &str, path: &str, query: Option<&str>) -> Option<Canon> {
        let (name, port) = match host.split_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        };
        let ok_name = name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b));
        let port = match port {
            None | Some("") => 80,
            Some(p) if p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u16>().ok()?
            }
            Some(_) => return None,
        };
        if !ok_name {
            return None;
        }
        let host = format!("{}:{port}", name.to_ascii_lowercase());
        let mut pairs: Vec<(Vec<Tok>, Vec<Tok>)> = query
            .unwrap_or("")
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (n, v) = p.split_once('=').unwrap_or((p, ""));
                (toks(n, true), toks(v, true))
            })
            .collect();
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        Some((host, canonical_path(toks(path, false))?, pairs))
    }

    /// The reference model of `path.rs`: an escaped control character has no canonical form;
    /// empty segments merge, `.` and `..` segments go (RFC 3986 §5.2.4), a trailing `/` stays.
    fn canonical_path(path: Vec<Tok>) -> Option<Vec<Tok>> {
        if path
            .iter()
            .any(|t| matches!(t, Tok::Esc(b) if *b < 0x20 || *b == 0x7f))
        {
            return None;
        }
        let slash = Tok::Lit('/');
        let segments: Vec<&[Tok]> = path[1..].split(|t| *t == slash).collect();
        let (mut kept, mut trailing) = (Vec::<&[Tok]>::new(), false);
        for (i, segment) in segments.iter().enumerate() {
            let last = i + 1 == segments.len();
            match *segment {
                [] | [Tok::Lit('.')] => trailing = last && !kept.is_empty(),
                [Tok::Lit('.'), Tok::Lit('.')] => {
                    kept.pop();
                    trailing = last && !kept.is_empty();
                }
                s => {
                    kept.push(s);
                    trailing = false;
                }
            }
        }
        let mut out = Vec::new();
        for segment in &kept {
            out.push(slash.clone());
            out.extend_from_slice(segment);
        }
        if kept.is_empty() || trailing {
            out.push(slash);
        }
        Some(out)
    }

    /// Hosts, paths and queries from alphabets that hold every separator the key uses, escapes
    /// (valid, invalid, of reserved and unreserved characters) and case.
    fn host_part() -> impl Strategy<Value = String> {
        prop_oneof![
            "[aA.]{1,3}(:[0-9]{0,3})?",
            "[aA./?#@%:\\[\\]&=+ ]{0,6}",
            Just("a:80".to_owned()),
            Just("a:080".to_owned()),
            Just("a:".to_owned()),
        ]
    }

    fn path_part() -> impl Strategy<Value = String> {
        "(/|%2[fF]|%41|A|a|\\?|%3[fF]|%|%z|#|\\+|&|=|\\||\\.|%2[eE]|%00){0,6}"
            .prop_map(|s| format!("/{s}"))
    }

    fn query_part() -> impl Strategy<Value = Option<String>> {
        proptest::option::of("(a|A|%41|%61|=|&|\\+|%20|%2[bB]|%|%zz|\\?|/|#|\\|){0,8}")
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

        /// Two requests share a key only when they are the same resource, and always when they
        /// are: the key is a function of the reference's equivalence and nothing else.
        #[test]
        fn two_requests_share_a_key_exactly_when_they_are_equivalent(
            a in (host_part(), path_part(), query_part()),
            b in (host_part(), path_part(), query_part()),
        ) {
            let target = |(_, p, q): &(String, String, Option<String>)| match q {
                Some(q) => format!("{p}?{q}"),
                None => p.clone(),
            };
            // The reference knows reg-names only; IP literals have their own unit tests.
            prop_assume!(!a.0.starts_with('[') && !b.0.starts_with('['));
            let request = |x: &(String, String, Option<String>)| {
                let uri: Uri = target(x).parse().ok()?;
                let key = key_of(&target(x), &[&x.0]);
                let canon = canon(&x.0, uri.path(), uri.query());
                Some((key, canon))
            };
            let (Some(ra), Some(rb)) = (request(&a), request(&b)) else {
                return Ok(());
            };
            for (x, r) in [(&a, &ra), (&b, &rb)] {
                prop_assert_eq!(r.0.is_some(), r.1.is_some(), "keyed exactly when valid: {:?} -> {:?}", x, r.0);
            }
            let ((Some(ka), Some(ca)), (Some(kb), Some(cb))) = (ra, rb) else {
                return Ok(());
            };
            prop_assert_eq!(ka == kb, ca == cb, "{:?} -> {} / {:?} -> {}", a, ka, b, kb);
        }

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

        /// Variant keys: two requests' keys agree exactly when their varied values do, after the
        /// normalization RFC 9111 §4.1 allows (list members trimmed, lines joined).
        #[test]
        fn variant_keys_agree_exactly_when_the_varied_values_do(
            x in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("field byte", |b| *b >= 0x20 && *b != 0x7f || *b == b'\t'), 0..6), 0..3),
            y in proptest::collection::vec(proptest::collection::vec(any::<u8>().prop_filter("field byte", |b| *b >= 0x20 && *b != 0x7f || *b == b'\t'), 0..6), 0..3),
        ) {
            let name = HeaderName::from_static("x-v");
            let map = |lines: &Vec<Vec<u8>>| {
                let mut h = HeaderMap::new();
                for l in lines {
                    if let Ok(v) = http::HeaderValue::from_bytes(l) {
                        h.append(name.clone(), v);
                    }
                }
                h
            };
            let members = |h: &HeaderMap| -> Option<Vec<Vec<u8>>> {
                let mut lines = h.get_all(&name).iter().peekable();
                lines.peek()?;
                Some(lines.flat_map(|l| l.as_bytes().split(|b| *b == b',').map(|m| {
                    // Whitespace runs collapse to one space.
                    let mut out = Vec::new();
                    for &b in m.trim_ascii() {
                        let space = b.is_ascii_whitespace();
                        if !(space && out.last() == Some(&b' ')) {
                            out.push(if space { b' ' } else { b });
                        }
                    }
                    out
                }).filter(|m| !m.is_empty()).collect::<Vec<_>>()).collect())
            };
            let (hx, hy) = (map(&x), map(&y));
            let names = [name.clone()];
            let v = varied(&names, &[]);
            prop_assert_eq!(
                variant_key("k", 1, v, &hx) == variant_key("k", 1, v, &hy),
                members(&hx) == members(&hy)
            );
        }
    }
}
