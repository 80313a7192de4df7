//! The host a request is for (RFC 9110 §7.2, RFC 9112 §3.2): the target's authority in absolute
//! form, else the `Host` field. It is validated as a host and an optional port and nothing else,
//! so no value can carry a path, a query or user info into a cache key.

use http::header::HOST;
use http::request::Parts;

/// Why a request's host makes it a bad request (RFC 9112 §3.2: a server responds 400).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadHost {
    /// More than one `Host` field line.
    Repeated,
    /// A `Host` (or an absolute target's authority) that is not `host[:port]`.
    Malformed,
}

impl BadHost {
    pub fn reason(self) -> &'static str {
        match self {
            Self::Repeated => "more than one Host header",
            Self::Malformed => "a Host that is not host[:port]",
        }
    }
}

/// What the request's host is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RequestHost {
    /// Normalized: lower case, default port dropped; empty when the request names none.
    Named(String),
    /// An absolute target whose authority and `Host` name different hosts. Valid, but the
    /// origin may answer for either: such a request is never keyed.
    Conflicting,
}

/// The host of `parts`, normalized; `Err` when the request must be refused with 400.
pub(crate) fn request_host(parts: &Parts) -> Result<RequestHost, BadHost> {
    let mut lines = parts.headers.get_all(HOST).iter();
    let header = lines.next();
    if lines.next().is_some() {
        return Err(BadHost::Repeated);
    }
    let scheme = parts.uri.scheme_str();
    let header = match header {
        Some(v) => {
            let text = v.to_str().map_err(|_| BadHost::Malformed)?;
            Some(normalize(text, scheme).ok_or(BadHost::Malformed)?)
        }
        None => None,
    };
    let target = match parts.uri.authority() {
        Some(a) => Some(normalize(a.as_str(), scheme).ok_or(BadHost::Malformed)?),
        None => None,
    };
    Ok(match (target, header) {
        (Some(t), Some(h)) if t != h => RequestHost::Conflicting,
        (Some(t), _) => RequestHost::Named(t),
        (None, Some(h)) => RequestHost::Named(h),
        (None, None) => RequestHost::Named(String::new()),
    })
}

/// `authority` as `host[:port]` in lower case without the scheme's default port, or `None` when
/// it is anything else: user info, a path, a query, a bad port, characters no host may have.
///
/// The host is an IP literal (`[` IPv6 `]`, written in its canonical form) or a reg-name
/// (RFC 3986 §3.2.2: unreserved characters and sub-delims; percent-encoding, which no DNS name
/// needs, is refused). The port is up to five digits, at most 65535, written without leading
/// zeros; an empty port is the default one. An empty authority is an empty host.
pub(crate) fn normalize(authority: &str, scheme: Option<&str>) -> Option<String> {
    let (host, port) = split(authority)?;
    let mut out = String::with_capacity(authority.len());
    match host {
        Host::Ipv6(addr) => {
            out.push('[');
            out.push_str(&addr.to_string());
            out.push(']');
        }
        Host::Name(name) => {
            if !name.bytes().all(is_reg_name_byte) {
                return None;
            }
            out.push_str(name);
            out.make_ascii_lowercase();
        }
    }
    let default = if scheme == Some("https") { 443 } else { 80 };
    if let Some(port) = port
        && port != default
    {
        use std::fmt::Write;
        let _ = write!(out, ":{port}");
    }
    Some(out)
}

enum Host<'a> {
    Ipv6(std::net::Ipv6Addr),
    Name(&'a str),
}

/// Splits `host[:port]`; the port is `None` when absent or empty.
fn split(authority: &str) -> Option<(Host<'_>, Option<u16>)> {
    let (host, rest) = match authority.strip_prefix('[') {
        Some(literal) => {
            let (inside, rest) = literal.split_once(']')?;
            (Host::Ipv6(inside.parse().ok()?), rest)
        }
        None => match authority.find(':') {
            Some(i) => (Host::Name(&authority[..i]), &authority[i..]),
            None => (Host::Name(authority), ""),
        },
    };
    let port = match rest {
        "" => None,
        _ => {
            let digits = rest.strip_prefix(':')?;
            if digits.is_empty() {
                None
            } else {
                if digits.len() > 5 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return None;
                }
                Some(digits.parse::<u16>().ok()?)
            }
        }
    };
    Some((host, port))
}

/// RFC 3986 reg-name bytes without percent-encoding: unreserved and sub-delims.
fn is_reg_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, hosts: &[&str]) -> Parts {
        let mut req = http::Request::builder().uri(uri).body(()).unwrap();
        for h in hosts {
            req.headers_mut()
                .append(HOST, http::HeaderValue::from_bytes(h.as_bytes()).unwrap());
        }
        req.into_parts().0
    }

    fn host(uri: &str, hosts: &[&str]) -> Result<RequestHost, BadHost> {
        request_host(&parts(uri, hosts))
    }

    fn named(s: &str) -> Result<RequestHost, BadHost> {
        Ok(RequestHost::Named(s.to_owned()))
    }

    #[test]
    fn hosts_are_normalized() {
        assert_eq!(host("/p", &["API.Test"]), named("api.test"));
        assert_eq!(host("/p", &["api.test:80"]), named("api.test"));
        assert_eq!(host("/p", &["api.test:"]), named("api.test"));
        assert_eq!(host("/p", &["api.test:0080"]), named("api.test"));
        assert_eq!(host("/p", &["api.test:8080"]), named("api.test:8080"));
        assert_eq!(host("https://api.test:443/p", &[]), named("api.test"));
        assert_eq!(host("/p", &["[0:0::1]:8080"]), named("[::1]:8080"));
        assert_eq!(host("/p", &["[::FFFF:1.2.3.4]"]), named("[::ffff:1.2.3.4]"));
        assert_eq!(host("/p", &["10.0.0.1:81"]), named("10.0.0.1:81"));
        assert_eq!(host("/p", &[]), named(""));
        assert_eq!(host("/p", &[""]), named(""));
    }

    #[test]
    fn anything_but_a_host_and_a_port_is_refused() {
        for bad in [
            "127.0.0.1:8080/victim",
            "api.test/",
            "api.test?x",
            "api.test#x",
            "user@api.test",
            "api.test:80:80",
            "api.test:65536",
            "api.test:123456",
            "api.test:8o",
            "api.test:-1",
            "api.test:+80",
            "api test",
            "api.test\t",
            "ex%41mple.test",
            "[::1",
            "[::1]x",
            "[fe80::1%25eth0]",
            "[v1.x]",
            "\"quoted\"",
            "api.test\\x",
        ] {
            assert_eq!(host("/p", &[bad]), Err(BadHost::Malformed), "{bad:?}");
        }
        assert_eq!(host("/p", &["a.test", "b.test"]), Err(BadHost::Repeated));
        assert_eq!(host("/p", &["a.test", "a.test"]), Err(BadHost::Repeated));
        let mut p = parts("/p", &[]);
        p.headers.insert(
            HOST,
            http::HeaderValue::from_bytes(b"caf\xe9.test").unwrap(),
        );
        assert_eq!(request_host(&p), Err(BadHost::Malformed));
    }

    #[test]
    fn an_absolute_target_wins_and_a_disagreeing_host_is_a_conflict() {
        assert_eq!(host("http://a.test/p", &["a.test:80"]), named("a.test"));
        assert_eq!(
            host("http://a.test/p", &["b.test"]),
            Ok(RequestHost::Conflicting)
        );
        assert_eq!(
            host("http://a.test/p", &["a.test/x"]),
            Err(BadHost::Malformed)
        );
    }
}
