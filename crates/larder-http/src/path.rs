//! One canonical form of a request's path: what rules are matched on, keys are built from, and
//! the service is sent, so that no spelling of a path gets another path's rules.
//!
//! The canonical form (RFC 3986 §6.2.2 and §5.2.4, and what nginx sends upstream):
//! - escapes of unreserved characters are decoded (`%61` is `a`, `%2e` is `.`), every other escape
//!   gets upper-case hex, and a `%` that starts no escape is `%25`;
//! - dot segments are removed (`/a/./b`, `/z/../a`, `/%2e%2e/a`), never above the root;
//! - empty segments are merged (`//a///b` is `/a/b`); a trailing `/` stays (`/a/` is not `/a`).
//!
//! Spellings an origin may route to the same place but that are not the same URI are kept apart
//! in keys, and checked against the rules instead (see `LayerState::route`): a `;` parameter
//! (`/admin;x`, which Tomcat and Spring route to `/admin`), an encoded slash or backslash
//! (`/admin%2Fx`, which uvicorn decodes, so Starlette and FastAPI route it to `/admin/x`), and
//! letter case (`/ADMIN`, for case-insensitive origins). When any of them would get another rule
//! than the canonical path, the request passes uncached: never stored, never served from the
//! cache. A path holding an escaped control character (`%00`, `%0A`, which some origins cut the
//! path at) passes uncached too.

use std::borrow::Cow;
use std::fmt::Write;

/// Why a path has no canonical form the cache can trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsafe(pub &'static str);

/// The canonical form of `path` (an origin-form path, starting with `/`), borrowed when it is
/// canonical already.
///
/// ```text
/// /%61dmin/./x//y/../z  ->  /admin/x/z
/// ```
pub(crate) fn canonical(path: &str) -> Result<Cow<'_, str>, Unsafe> {
    if !path.starts_with('/') {
        return Err(Unsafe("not an origin-form path"));
    }
    if is_canonical(path.as_bytes()) {
        return Ok(Cow::Borrowed(path));
    }
    let mut decoded = String::with_capacity(path.len());
    decode_unreserved(path, &mut decoded)?;
    Ok(Cow::Owned(remove_dot_segments(&decoded)))
}

/// Whether the path needs no work: no escape, no empty segment but a trailing one, no dot
/// segment. One pass, no allocation: the hit path of a well-formed request.
fn is_canonical(path: &[u8]) -> bool {
    let mut segment_start = 1;
    for i in 1..=path.len() {
        let end = i == path.len();
        if !end && path[i] == b'%' {
            return false;
        }
        if end || path[i] == b'/' {
            let segment = &path[segment_start..i];
            let last = end;
            if segment == b"." || segment == b".." || (segment.is_empty() && !last) {
                return false;
            }
            segment_start = i + 1;
        }
    }
    true
}

/// Percent-encoding normalized: unreserved characters decoded, other escapes upper-case, a stray
/// `%` escaped. An escaped control character is refused.
fn decode_unreserved(input: &str, out: &mut String) -> Result<(), Unsafe> {
    let bytes = input.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if let (Some(h), Some(l)) = (hex(bytes.get(i + 1)), hex(bytes.get(i + 2))) {
                let decoded = (h << 4) | l;
                if decoded < 0x20 || decoded == 0x7f {
                    return Err(Unsafe("an escaped control character"));
                }
                if is_unreserved(decoded) {
                    out.push(decoded as char);
                } else {
                    let _ = write!(out, "%{decoded:02X}");
                }
                i += 3;
                continue;
            }
            out.push_str("%25");
        } else {
            out.push(b as char);
        }
        i += 1;
    }
    Ok(())
}

fn hex(b: Option<&u8>) -> Option<u8> {
    let b = *b?;
    (b as char).to_digit(16).map(|d| d as u8)
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// RFC 3986 §5.2.4 on a path whose escapes are normalized, with empty segments merged: `.` and
/// `..` go (a `..` at the root stays at the root), and a path that ended in a dot segment or a
/// `/` ends in `/`.
fn remove_dot_segments(path: &str) -> String {
    let mut kept: Vec<&str> = Vec::new();
    let mut trailing = false;
    let segments: Vec<&str> = path[1..].split('/').collect();
    let count = segments.len();
    for (i, segment) in segments.into_iter().enumerate() {
        let last = i + 1 == count;
        match segment {
            "" => trailing = last && !kept.is_empty(),
            "." => trailing = last && !kept.is_empty(),
            ".." => {
                kept.pop();
                trailing = last && !kept.is_empty();
            }
            s => {
                kept.push(s);
                trailing = false;
            }
        }
    }
    let mut out = String::with_capacity(path.len());
    for segment in &kept {
        out.push('/');
        out.push_str(segment);
    }
    if kept.is_empty() || trailing {
        out.push('/');
    }
    out
}

/// The other paths an origin may route the canonical path `path` to: without `;` parameters,
/// with encoded slashes and backslashes as slashes, and both; each canonical. Empty for the
/// usual path, which has neither.
pub(crate) fn other_spellings(path: &str) -> Vec<String> {
    let params = path.contains(';');
    let slashes = has_encoded_slash(path);
    if !params && !slashes {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(3);
    let mut push = |p: String| {
        let p = canonical(&p).map_or(p.clone(), Cow::into_owned);
        if p != path && !out.contains(&p) {
            out.push(p);
        }
    };
    if params {
        push(without_params(path));
    }
    if slashes {
        let decoded = decode_slashes(path);
        if params {
            push(without_params(&decoded));
        }
        push(decoded);
    }
    out
}

fn has_encoded_slash(path: &str) -> bool {
    path.contains("%2F") || path.contains("%5C")
}

/// Each segment up to its first `;` (RFC 2396 path parameters, as servlet containers read them).
fn without_params(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for (i, segment) in path.split('/').enumerate() {
        if i > 0 {
            out.push('/');
        }
        out.push_str(segment.split(';').next().unwrap_or(""));
    }
    out
}

fn decode_slashes(path: &str) -> String {
    path.replace("%2F", "/").replace("%5C", "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(p: &str) -> String {
        canonical(p).unwrap().into_owned()
    }

    #[test]
    fn canonical_paths_are_borrowed() {
        for p in ["/", "/a", "/a/", "/a/b.c/", "/a;b/c", "/.a/b..", "/a%20b"] {
            let expected = p != "/a%20b";
            assert_eq!(
                matches!(canonical(p), Ok(Cow::Borrowed(_))),
                expected,
                "{p}"
            );
        }
    }

    #[test]
    fn escapes_dots_and_empty_segments_are_normalized() {
        assert_eq!(c("/%61dmin"), "/admin");
        assert_eq!(c("/a%2fb"), "/a%2Fb");
        assert_eq!(c("/./admin"), "/admin");
        assert_eq!(c("/z/../admin"), "/admin");
        assert_eq!(c("/%2e%2e/admin"), "/admin");
        assert_eq!(c("/z/%2E%2e/admin/x"), "/admin/x");
        assert_eq!(c("/../../admin"), "/admin");
        assert_eq!(c("//admin"), "/admin");
        assert_eq!(c("/a//b///c"), "/a/b/c");
        assert_eq!(c("/a/b/.."), "/a/");
        assert_eq!(c("/a/."), "/a/");
        assert_eq!(c("/a//"), "/a/");
        assert_eq!(c("/.."), "/");
        assert_eq!(c("//"), "/");
        assert_eq!(c("/a%zz"), "/a%25zz");
        assert_eq!(c("/a/.b/..c"), "/a/.b/..c");
    }

    #[test]
    fn an_escaped_control_character_is_unsafe() {
        assert!(canonical("/admin%00.js").is_err());
        assert!(canonical("/a%0a").is_err());
        assert!(canonical("/a%7F").is_err());
        assert!(canonical("admin").is_err());
    }

    #[test]
    fn other_spellings_are_what_origins_may_route_it_to() {
        assert!(other_spellings("/admin/x").is_empty());
        assert_eq!(other_spellings("/admin;x"), ["/admin"]);
        assert_eq!(other_spellings("/admin%2Fx"), ["/admin/x"]);
        assert_eq!(other_spellings("/public/..;/admin"), ["/admin"]);
        assert_eq!(other_spellings("/a%2F..%2Fadmin"), ["/admin"]);
        assert_eq!(
            other_spellings("/a;p%2Fb"),
            ["/a", "/a/b", "/a;p/b"],
            "params stripped, then slashes decoded with and without"
        );
    }
}
