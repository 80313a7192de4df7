//! `Cache-Control` parsing (RFC 9111 §5.2), for requests and responses alike.
//!
//! Unknown directives are ignored, as the RFC requires. Where a directive repeats, the first
//! occurrence wins (§4.2.1). A delta-seconds that is not a number makes the response stale
//! (`max-age=abc` reads as 0); one too large for the cache saturates at 2^31 (§1.2.2).

use http::HeaderMap;
use http::header::{CACHE_CONTROL, PRAGMA};

/// The largest delta-seconds the RFC asks a cache to represent.
pub(crate) const DELTA_MAX: u64 = 2_147_483_648;

/// The directives of the `Cache-Control` field lines of one message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CacheControl {
    pub no_store: bool,
    pub no_cache: bool,
    /// `no-cache="a, b"`: the response may be stored and served without these fields.
    pub no_cache_fields: Vec<String>,
    pub private: bool,
    /// `private="a, b"`: a shared cache may store the response without these fields.
    pub private_fields: Vec<String>,
    pub public: bool,
    pub must_revalidate: bool,
    pub proxy_revalidate: bool,
    pub max_age: Option<u64>,
    pub s_maxage: Option<u64>,
    pub stale_while_revalidate: Option<u64>,
    pub stale_if_error: Option<u64>,
    /// Request only: `max-stale` alone is `Some(None)` (any staleness).
    pub max_stale: Option<Option<u64>>,
    pub min_fresh: Option<u64>,
    pub only_if_cached: bool,
}

impl CacheControl {
    /// The directives of a request: `Pragma: no-cache` counts as `no-cache` when the request has
    /// no `Cache-Control` (§5.4).
    pub fn of_request(headers: &HeaderMap) -> Self {
        if !headers.contains_key(CACHE_CONTROL) {
            let pragma_no_cache = headers.get_all(PRAGMA).iter().any(|v| {
                v.to_str().is_ok_and(|s| {
                    s.split(',')
                        .any(|d| d.trim().eq_ignore_ascii_case("no-cache"))
                })
            });
            return Self {
                no_cache: pragma_no_cache,
                ..Self::default()
            };
        }
        Self::parse(headers)
    }

    /// The directives of a request as `cfg` heeds them: a rule that ignores the client's
    /// `no-cache` drops it, and `max-age=0`, a reload's other spelling.
    pub fn of_request_under(cfg: &crate::config::Config, headers: &HeaderMap) -> Self {
        let mut cc = Self::of_request(headers);
        if cfg.ignore_client_no_cache {
            cc.no_cache = false;
            if cc.max_age == Some(0) {
                cc.max_age = None;
            }
        }
        cc
    }

    /// The directives of a response.
    pub fn of_response(headers: &HeaderMap) -> Self {
        Self::parse(headers)
    }

    fn parse(headers: &HeaderMap) -> Self {
        let mut cc = Self::default();
        for line in headers.get_all(CACHE_CONTROL) {
            // A field line that is not visible ASCII cannot hold a directive we understand.
            let Ok(line) = line.to_str() else { continue };
            for directive in split_list(line) {
                cc.apply(directive);
            }
        }
        cc
    }

    fn apply(&mut self, directive: &str) {
        let (name, arg) = match directive.split_once('=') {
            Some((n, a)) => (n.trim(), Some(unquote(a.trim()))),
            None => (directive.trim(), None),
        };
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("no-store") {
            self.no_store = true;
        } else if is("no-cache") {
            match arg {
                Some(fields) if !fields.is_empty() => {
                    self.no_cache_fields.extend(field_names(fields))
                }
                _ => self.no_cache = true,
            }
        } else if is("private") {
            match arg {
                Some(fields) if !fields.is_empty() => {
                    self.private_fields.extend(field_names(fields))
                }
                _ => self.private = true,
            }
        } else if is("public") {
            self.public = true;
        } else if is("must-revalidate") {
            self.must_revalidate = true;
        } else if is("proxy-revalidate") {
            self.proxy_revalidate = true;
        } else if is("only-if-cached") {
            self.only_if_cached = true;
        } else if is("max-age") {
            self.max_age.get_or_insert(delta(arg));
        } else if is("s-maxage") {
            self.s_maxage.get_or_insert(delta(arg));
        } else if is("stale-while-revalidate") {
            self.stale_while_revalidate.get_or_insert(delta(arg));
        } else if is("stale-if-error") {
            self.stale_if_error.get_or_insert(delta(arg));
        } else if is("min-fresh") {
            self.min_fresh.get_or_insert(delta(arg));
        } else if is("max-stale") {
            self.max_stale.get_or_insert(arg.map(|a| delta(Some(a))));
        }
    }
}

/// delta-seconds: digits only. Anything else reads as 0, so a malformed lifetime errs towards
/// stale, never towards serving something longer than the origin meant.
fn delta(arg: Option<&str>) -> u64 {
    arg.and_then(delta_seconds).unwrap_or(0)
}

/// A delta-seconds value (RFC 9111 §1.2.2): one or more digits, saturating at 2^31 however long
/// (a value too large to represent counts as 2^31); `None` when it is no such number.
pub(crate) fn delta_seconds(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(text.parse::<u64>().map_or(DELTA_MAX, |v| v.min(DELTA_MAX)))
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

fn field_names(list: &str) -> impl Iterator<Item = String> + '_ {
    list.split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .map(str::to_ascii_lowercase)
}

/// Splits a comma-separated list, keeping commas inside double quotes.
pub(crate) fn split_list(line: &str) -> impl Iterator<Item = &str> {
    // Splitting at ASCII commas keeps every piece valid UTF-8.
    split_list_bytes(line.as_bytes()).filter_map(|item| std::str::from_utf8(item).ok())
}

/// [`split_list`] on raw field bytes (obs-text included), trimming spaces and tabs around items
/// and dropping empty ones.
pub(crate) fn split_list_bytes(line: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut rest = line;
    std::iter::from_fn(move || {
        loop {
            if rest.is_empty() {
                return None;
            }
            let mut quoted = false;
            let mut end = rest.len();
            for (i, b) in rest.iter().enumerate() {
                match b {
                    b'"' => quoted = !quoted,
                    b',' if !quoted => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let item = rest[..end].trim_ascii();
            rest = rest.get(end + 1..).unwrap_or(&[]);
            if !item.is_empty() {
                return Some(item);
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn cc(lines: &[&str]) -> CacheControl {
        let mut h = HeaderMap::new();
        for l in lines {
            h.append(CACHE_CONTROL, HeaderValue::from_str(l).unwrap());
        }
        CacheControl::of_response(&h)
    }

    #[test]
    fn parses_every_directive_case_insensitively_across_lines() {
        let c = cc(&[
            "Public, MAX-AGE=60, s-maxage=\"120\"",
            "must-revalidate,proxy-revalidate, stale-while-revalidate=5, stale-if-error=9",
        ]);
        assert!(c.public && c.must_revalidate && c.proxy_revalidate);
        assert_eq!(
            (
                c.max_age,
                c.s_maxage,
                c.stale_while_revalidate,
                c.stale_if_error
            ),
            (Some(60), Some(120), Some(5), Some(9))
        );
    }

    #[test]
    fn qualified_no_cache_and_private_name_fields_instead_of_forbidding() {
        let c = cc(&["no-cache=\"Set-Cookie, X-User\", private=\"X-Secret\""]);
        assert!(!c.no_cache && !c.private);
        assert_eq!(c.no_cache_fields, ["set-cookie", "x-user"]);
        assert_eq!(c.private_fields, ["x-secret"]);
        let c = cc(&["no-cache, private"]);
        assert!(c.no_cache && c.private);
    }

    #[test]
    fn first_occurrence_wins_and_bad_numbers_read_as_stale() {
        assert_eq!(cc(&["max-age=10", "max-age=99"]).max_age, Some(10));
        assert_eq!(cc(&["max-age=abc"]).max_age, Some(0));
        assert_eq!(cc(&["max-age=-5"]).max_age, Some(0));
        assert_eq!(cc(&["max-age"]).max_age, Some(0));
        assert_eq!(
            cc(&["max-age=99999999999999999999999"]).max_age,
            Some(DELTA_MAX)
        );
    }

    #[test]
    fn request_directives_and_pragma() {
        let mut h = HeaderMap::new();
        h.insert(
            CACHE_CONTROL,
            HeaderValue::from_static("max-stale, min-fresh=3, only-if-cached"),
        );
        let c = CacheControl::of_request(&h);
        assert_eq!((c.max_stale, c.min_fresh), (Some(None), Some(3)));
        assert!(c.only_if_cached);

        let mut h = HeaderMap::new();
        h.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        assert!(CacheControl::of_request(&h).no_cache);
        h.insert(CACHE_CONTROL, HeaderValue::from_static("max-age=5"));
        assert!(
            !CacheControl::of_request(&h).no_cache,
            "Cache-Control wins over Pragma"
        );
    }

    #[test]
    fn lists_split_outside_quotes_only() {
        let items: Vec<_> = split_list(" a, b=\"x, y\" ,, c ").collect();
        assert_eq!(items, ["a", "b=\"x, y\"", "c"]);
    }
}
