//! Cookies as cache inputs. A cookie is a credential unless the layer was told otherwise: keyed
//! cookies become part of the key (each value its own entry), ignored ones (analytics, say) are
//! known not to change a response. A request carrying any other cookie is only served a shared
//! entry that the origin marked for sharing (`public` or `s-maxage`), as Varnish's builtin VCL
//! passes such requests by default.

use http::HeaderMap;
use http::header::COOKIE;

/// Which cookies the layer keys on and which it ignores.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CookieRules {
    /// Cookie names whose values key the entry, sorted and deduplicated.
    pub keyed: Vec<String>,
    /// Cookie names (or `prefix*` patterns) that never change a response.
    pub ignored: Vec<String>,
}

impl CookieRules {
    /// Whether the request carries a cookie that is neither keyed nor ignored. A `,` separates
    /// cookies here as well as `;`: some servers split on it (RFC 2109's syntax), so
    /// `_ga=1, session=alice` carries a session even though it reads as one `_ga` cookie.
    pub fn credentialed(&self, headers: &HeaderMap) -> bool {
        split_pairs(headers, |b| b == b';' || b == b',')
            .any(|(name, _)| !self.is_keyed(name) && !self.is_ignored(name))
    }

    /// Whether the request carries one of the keyed cookies.
    pub fn any_keyed(&self, headers: &HeaderMap) -> bool {
        !self.keyed.is_empty() && pairs(headers).any(|(name, _)| self.is_keyed(name))
    }

    fn is_keyed(&self, name: &[u8]) -> bool {
        self.keyed.iter().any(|k| k.as_bytes() == name)
    }

    fn is_ignored(&self, name: &[u8]) -> bool {
        self.ignored
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix.as_bytes()),
                None => pattern.as_bytes() == name,
            })
    }
}

/// The request's cookies as (name, value) byte pairs, across every `Cookie` line (HTTP/2 sends
/// one line per cookie). Names and values are trimmed; a pair without `=` has an empty value.
pub(crate) fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&[u8], &[u8])> {
    split_pairs(headers, |b| b == b';')
}

fn split_pairs(
    headers: &HeaderMap,
    separator: fn(u8) -> bool,
) -> impl Iterator<Item = (&[u8], &[u8])> {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(move |line| line.as_bytes().split(move |b| separator(*b)))
        .filter_map(|pair| {
            let pair = pair.trim_ascii();
            if pair.is_empty() {
                return None;
            }
            Some(match pair.iter().position(|b| *b == b'=') {
                Some(i) => (pair[..i].trim_ascii(), pair[i + 1..].trim_ascii()),
                None => (pair, &pair[pair.len()..]),
            })
        })
}

/// The values of cookie `name` in the request, in order (a name may repeat).
pub(crate) fn values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a [u8]> {
    pairs(headers)
        .filter(move |(n, _)| *n == name.as_bytes())
        .map(|(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(COOKIE, l.parse().unwrap());
        }
        h
    }

    fn rules(keyed: &[&str], ignored: &[&str]) -> CookieRules {
        CookieRules {
            keyed: keyed.iter().map(|s| s.to_string()).collect(),
            ignored: ignored.iter().map(|s| s.to_string()).collect(),
        }
    }

    #[test]
    fn pairs_span_lines_and_tolerate_odd_spacing() {
        let h = headers(&[" a=1 ;b = 2;;flag", "c=x=y"]);
        let got: Vec<_> = pairs(&h).collect();
        assert_eq!(
            got,
            [
                (&b"a"[..], &b"1"[..]),
                (b"b", b"2"),
                (b"flag", b""),
                (b"c", b"x=y")
            ]
        );
        assert_eq!(values(&h, "b").collect::<Vec<_>>(), [b"2"]);
    }

    #[test]
    fn a_cookie_is_a_credential_unless_keyed_or_ignored() {
        let h = headers(&["lang=en; _ga=GA1.2; _ga_XYZ=1"]);
        assert!(rules(&[], &[]).credentialed(&h));
        assert!(rules(&["lang"], &[]).credentialed(&h));
        assert!(rules(&["lang"], &["_ga"]).credentialed(&h));
        assert!(!rules(&["lang"], &["_ga*"]).credentialed(&h));
        assert!(rules(&["lang"], &[]).any_keyed(&h));
        assert!(!rules(&["session"], &["*"]).any_keyed(&h));
        assert!(!rules(&[], &["*"]).credentialed(&h));
        assert!(!rules(&[], &[]).credentialed(&HeaderMap::new()));
    }

    /// The finding: `Cookie: _ga=1, session=alice` read as one `_ga` cookie under
    /// `ignore_cookies = ["_ga*"]`, so a server that splits on `,` answered from the session and
    /// the response was shared.
    #[test]
    fn a_comma_never_makes_a_credential_ignorable() {
        let r = rules(&[], &["_ga*"]);
        assert!(r.credentialed(&headers(&["_ga=1, session=alice"])));
        assert!(r.credentialed(&headers(&["_ga=1,session=alice"])));
        assert!(!r.credentialed(&headers(&["_ga=1, _gab=2"])));
    }
}
