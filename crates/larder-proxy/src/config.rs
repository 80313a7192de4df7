//! The configuration file (`--config larder.toml`): the proxy's settings and its rules.
//!
//! Every field is optional; what the file leaves out, flags and the defaults give. Unknown
//! fields are errors (a typo must not silently change nothing). Durations are seconds or
//! strings such as `"90s"`, `"5m"`, `"1h 30m"`; sizes are bytes or strings such as `"512KiB"`,
//! `"8MiB"`.
//!
//! ```toml
//! [proxy]
//! upstream = "http://127.0.0.1:8000"
//! listen = "127.0.0.1:8080"
//! admin_listen = "127.0.0.1:8081"
//!
//! [cache]
//! store = "memory://"
//! memory_mib = 256
//!
//! [[rule]]
//! path = "/users"
//! ttl = "60s"
//! stale = "10m"
//! query = ["skip", "limit"]
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use http::{HeaderName, Uri};
pub use larder_http::parse_duration;
use larder_http::{Rule, deserialize_duration};
use serde::Deserialize;
use serde::de::{self, Deserializer};

/// Why a configuration file cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// What reading it said.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or a value in it is not valid where it stands.
    #[error("{path}:{line}:{column}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line of the offending value.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// The configuration file, as written.
///
/// ```
/// let file = larder_proxy::config::File::parse("[cache]\nmemory_mib = 64\n", "inline").unwrap();
/// assert_eq!(file.cache.memory_mib, Some(64));
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct File {
    /// Where the proxy listens and forwards.
    #[serde(default)]
    pub proxy: ProxySection,
    /// The cache: store, memory bound, keys.
    #[serde(default)]
    pub cache: CacheSection,
    /// Client connection limits.
    #[serde(default)]
    pub limits: LimitsSection,
    /// The upstream client.
    #[serde(default)]
    pub upstream: UpstreamSection,
    /// A TLS listener beside the plain one.
    pub tls: Option<TlsSection>,
    /// Response compression (on by default): `[compression]` with `enabled`, `encodings`,
    /// `level`, `min_size`, `types` (larder-http's [`Compression`](larder_http::Compression)).
    pub compression: Option<larder_http::Compression>,
    /// The rules, in order: the first that matches a request decides.
    #[serde(default, rename = "rule")]
    pub rules: Vec<Rule>,
}

/// `[proxy]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct ProxySection {
    /// The origin: `http://host:port` or `https://host`.
    #[serde(default, deserialize_with = "upstream_uri")]
    pub upstream: Option<Uri>,
    /// Where clients connect (default 127.0.0.1:8080).
    pub listen: Option<SocketAddr>,
    /// The admin listener: purge, stats, metrics, health (default 127.0.0.1:8081; `"off"`
    /// for none).
    #[serde(default, deserialize_with = "admin_listen")]
    pub admin_listen: Option<String>,
    /// The bearer token the admin listener requires (required when it binds a non-loopback
    /// address; never blank). `LARDER_ADMIN_TOKEN` in the environment takes its place.
    #[serde(default, deserialize_with = "token")]
    pub admin_token: Option<String>,
    /// Pass the client's `Host` to the origin (and key on it) instead of the upstream's.
    pub pass_host: Option<bool>,
    /// The largest request body forwarded (default 10 MiB, more than 0); a larger one gets 413.
    #[serde(default, deserialize_with = "request_body_size")]
    pub max_request_body: Option<u64>,
    /// The access log: `"text"` (default), `"json"` or `"off"`.
    pub access_log: Option<LogFormat>,
    /// Add `X-Cache: HIT|MISS|STALE|...` beside `Cache-Status` (default true).
    pub x_cache: Option<bool>,
    /// This proxy's name in `Cache-Status` (default `larder`).
    pub cache_status_name: Option<String>,
}

/// How the access log is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// One readable line per request.
    Text,
    /// One JSON object per request.
    Json,
    /// No access log.
    Off,
}

/// `[cache]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheSection {
    /// `memory://`, `redis://…`, `rediss://…`, `redis+cluster://…`, `memcached://…`.
    #[serde(default, deserialize_with = "store_url")]
    pub store: Option<String>,
    /// The memory tier's bound in MiB (stored responses and bodies being recorded; 1 to
    /// 1,048,576).
    #[serde(default, deserialize_with = "memory_mib")]
    pub memory_mib: Option<u64>,
    /// The largest response body stored (default 8 MiB; more than 0, at most 1 GiB).
    #[serde(default, deserialize_with = "body_size")]
    pub max_body: Option<u64>,
    /// The response header that tags responses for purges (default `surrogate-key`).
    #[serde(default, deserialize_with = "header_name")]
    pub tag_header: Option<HeaderName>,
    /// How many leading path segments entries are tagged with, for purges by prefix (default 4;
    /// 0 turns purges by prefix off; at most 16, since each is a tag every hit checks).
    #[serde(default, deserialize_with = "prefix_depth")]
    pub purge_prefix_depth: Option<usize>,
    /// With a shared store, how long a proxy that misses waits for another proxy already
    /// fetching the same URL (default 10 s; `"0s"` turns the lock off).
    #[serde(default, deserialize_with = "deserialize_duration")]
    pub lock_wait: Option<Duration>,
    /// How long a fill's lock outlives a proxy that died holding it (default 30 s; more than 0).
    #[serde(default, deserialize_with = "positive_duration")]
    pub lock_expiry: Option<Duration>,
    /// After the upstream failed and a rule's stale copy answered, how long that copy answers
    /// without asking the upstream again (default 30 s; `"0s"` asks every time).
    #[serde(default, deserialize_with = "deserialize_duration")]
    pub fail_safe_throttle: Option<Duration>,
    /// Cookies that key every entry.
    pub key_cookies: Option<Vec<String>>,
    /// Cookies that never change a response (analytics): `["_ga*", "consent"]`.
    pub ignore_cookies: Option<Vec<String>>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct LimitsSection {
    /// Client connections open at once (default: from the descriptor limit; at least 1).
    #[serde(default, deserialize_with = "count")]
    pub max_connections: Option<usize>,
    /// Time a client has to send a request head once it starts one, or once it connects.
    #[serde(default, deserialize_with = "positive_duration")]
    pub header_read_timeout: Option<Duration>,
    /// Time a connection may sit idle or stall.
    #[serde(default, deserialize_with = "positive_duration")]
    pub idle_timeout: Option<Duration>,
    /// How long shutdown waits for requests in flight.
    #[serde(default, deserialize_with = "deserialize_duration")]
    pub shutdown_grace: Option<Duration>,
    /// HTTP/2 streams in flight per connection (default 128; at least 1).
    #[serde(default, deserialize_with = "stream_count")]
    pub max_h2_streams: Option<u32>,
}

/// `[upstream]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct UpstreamSection {
    /// Time to open a connection (and finish TLS).
    #[serde(default, deserialize_with = "positive_duration")]
    pub connect_timeout: Option<Duration>,
    /// Time to the response head.
    #[serde(default, deserialize_with = "positive_duration")]
    pub response_timeout: Option<Duration>,
    /// Time between two chunks of a body, the origin's response or the client's upload.
    #[serde(default, deserialize_with = "positive_duration")]
    pub body_idle_timeout: Option<Duration>,
    /// How long an unused pooled connection is kept.
    #[serde(default, deserialize_with = "positive_duration")]
    pub pool_idle_timeout: Option<Duration>,
    /// Idle connections kept per host (default: 256, within the descriptor budget).
    pub pool_max_idle: Option<usize>,
    /// Connections to the upstream busy at once, tunnels included (default: from the descriptor
    /// limit; at least 1); a request that finds them all busy waits, within its response
    /// timeout.
    #[serde(default, deserialize_with = "count")]
    pub max_connections: Option<usize>,
    /// Requests waiting for a connection to the upstream (default 1,024; at least 1); past it,
    /// 503.
    #[serde(default, deserialize_with = "count")]
    pub max_waiting: Option<usize>,
    /// Tunnels (WebSocket) open at once (default: a quarter of the descriptor limit; at least 1).
    #[serde(default, deserialize_with = "count")]
    pub max_tunnels: Option<usize>,
    /// A PEM file of CA certificates to trust for an https upstream instead of the system's.
    pub ca_file: Option<String>,
}

/// `[tls]`: a listener for HTTPS clients (HTTP/2 by ALPN and HTTP/1.1), beside the plain one.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct TlsSection {
    /// Where TLS clients connect (`"0.0.0.0:8443"`).
    pub listen: SocketAddr,
    /// The certificate chain, PEM, the server's certificate first: for clients that name no
    /// host, or one no `[[tls.certificate]]` covers.
    pub cert: String,
    /// Its private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: String,
    /// More certificates: a client gets the first whose names cover the host it asks for
    /// (SNI), wildcards included.
    #[serde(default, rename = "certificate")]
    pub certificates: Vec<CertificateFiles>,
    /// Offer HTTP/2 by ALPN (default true).
    pub http2: Option<bool>,
    /// The oldest TLS version accepted: `"1.2"` (default) or `"1.3"`.
    #[serde(default, deserialize_with = "tls_version")]
    pub min_version: Option<crate::server::MinVersion>,
}

/// `[[tls.certificate]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct CertificateFiles {
    /// The chain, PEM.
    pub cert: String,
    /// Its key, PEM.
    pub key: String,
}

fn tls_version<'de, D: Deserializer<'de>>(
    d: D,
) -> Result<Option<crate::server::MinVersion>, D::Error> {
    match String::deserialize(d)?.as_str() {
        "1.2" => Ok(Some(crate::server::MinVersion::Tls12)),
        "1.3" => Ok(Some(crate::server::MinVersion::Tls13)),
        other => Err(de::Error::custom(format!(
            "min_version: {other:?} is not \"1.2\" or \"1.3\" (rustls speaks no older TLS)"
        ))),
    }
}

impl File {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let bytes = std::fs::read(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            let at = e.valid_up_to();
            // The valid prefix is UTF-8: the position of the first bad byte in it.
            let prefix = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
            let (line, column) = line_and_column(prefix, at);
            ConfigError::Invalid {
                path: path.display().to_string(),
                line,
                column,
                message: format!("not UTF-8: byte {at} (0x{:02x})", bytes[at]),
            }
        })?;
        Self::parse(text, &path.display().to_string())
    }

    /// Parses and checks configuration text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let invalid = |at: usize, message: String| {
            let (line, column) = line_and_column(text, at);
            ConfigError::Invalid {
                path: origin.to_owned(),
                line,
                column,
                message,
            }
        };
        let file: Self = toml::from_str(text).map_err(|e| {
            let message = e.message().trim().to_owned();
            // A rule's error names its key first (`invalidate: ...`): point at that key, not
            // at the rule's first line, which is all the span says.
            let at = e.span().map_or(0, |span| {
                // ... or, for a key serde does not know, that key.
                let unknown = message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split_once('`'))
                    .map(|(k, _)| k);
                let key = unknown.or_else(|| message.split_once(':').map(|(k, _)| k.trim()));
                key.and_then(|k| key_in(text, table_from(text, span.start), k))
                    .unwrap_or(span.start)
            });
            invalid(at, message)
        })?;
        if let Err(e) = Rule::check_order(&file.rules) {
            let at = match &e {
                larder_http::RuleError::Shadowed { later, .. } => {
                    rule_table(text, *later - 1).and_then(|table| key_in(text, table, "path"))
                }
                _ => None,
            };
            return Err(invalid(at.unwrap_or(0), e.to_string()));
        }
        Ok(file)
    }

    /// The rules, in order.
    pub fn rules(&self) -> Vec<Rule> {
        self.rules.clone()
    }
}

/// Where the key `key` is written within `span` of the text: the start of its line's name.
fn key_in(text: &str, span: std::ops::Range<usize>, key: &str) -> Option<usize> {
    let within = text.get(span.clone())?;
    let mut at = span.start;
    for line in within.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if let Some(rest) = trimmed.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return Some(at + (line.len() - trimmed.len()));
        }
        at += line.len();
    }
    None
}

/// The table that `at` is in or starts: to the next table's header.
fn table_from(text: &str, at: usize) -> std::ops::Range<usize> {
    let mut end = at;
    for (i, line) in text[at..].split_inclusive('\n').enumerate() {
        if i > 0 && line.trim_start().starts_with('[') {
            break;
        }
        end += line.len();
    }
    at..end
}

/// The text of the `index`-th `[[rule]]` table (from 0): from its header to the next table.
fn rule_table(text: &str, index: usize) -> Option<std::ops::Range<usize>> {
    let mut starts = Vec::new();
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        let t = line.trim();
        if t.starts_with('[') {
            starts.push((at, t.replace(' ', "") == "[[rule]]"));
        }
        at += line.len();
    }
    let (i, (start, _)) = starts
        .iter()
        .enumerate()
        .filter(|(_, (_, r))| *r)
        .nth(index)?;
    let end = starts.get(i + 1).map_or(text.len(), |(s, _)| *s);
    Some(*start..end)
}

fn line_and_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// Bytes (an integer) or a string with a unit: `"512KiB"`, `"8MiB"`, `"1GiB"`, `"10MB"`.
fn size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Bytes(u64),
        Text(String),
    }
    Ok(Some(match Raw::deserialize(d)? {
        Raw::Bytes(b) => b,
        Raw::Text(t) => parse_size(&t).map_err(de::Error::custom)?,
    }))
}

/// A size as bytes or with a unit: larder-http's reading, so rules and the rest of the file
/// read sizes alike.
///
/// ```
/// assert_eq!(larder_proxy::config::parse_size("8MiB"), Ok(8 << 20));
/// ```
pub use larder_http::parse_size;

/// The largest `purge_prefix_depth`.
pub const MAX_PREFIX_DEPTH: usize = 16;
/// The largest `max_body`.
pub const MAX_BODY: u64 = 1 << 30;
/// The largest `memory_mib` (1 TiB).
pub const MAX_MEMORY_MIB: u64 = 1 << 20;

/// An upstream the binary can serve: `http://` or `https://` with a host.
fn upstream_uri<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Uri>, D::Error> {
    let s = String::deserialize(d)?;
    check_upstream(&s).map(Some).map_err(de::Error::custom)
}

/// The upstream URL, or why the binary cannot serve it.
pub fn check_upstream(s: &str) -> Result<Uri, String> {
    let uri: Uri = s.parse().map_err(|_| format!("not a URL: {s:?}"))?;
    match (uri.scheme_str(), uri.authority()) {
        (Some("http" | "https"), Some(_)) => Ok(uri),
        _ => Err(format!(
            "the upstream must be http://host[:port] or https://host[:port], not {s:?}"
        )),
    }
}

/// A store URL the binary can open (no connection is made).
fn store_url<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    check_store(&s).map(|()| Some(s)).map_err(de::Error::custom)
}

/// Whether the binary can open the store `url` names (nothing connects).
pub fn check_store(url: &str) -> Result<(), String> {
    if !url.contains("://") {
        return Err(format!(
            "not a store URL: {url:?}; write memory://, redis://host:port, rediss://, redis+cluster://host:port,... or memcached://host:port"
        ));
    }
    larder::Cache::builder()
        .remote_url(url)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// `host:port`, or `"off"`.
fn admin_listen<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s != "off" && s.parse::<SocketAddr>().is_err() {
        return Err(de::Error::custom(format!(
            "admin_listen: {s:?} is neither host:port (127.0.0.1:8081) nor \"off\""
        )));
    }
    Ok(Some(s))
}

/// A token that is not blank.
fn token<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = String::deserialize(d)?;
    if s.trim().is_empty() {
        return Err(de::Error::custom(
            "a blank admin token would let anyone purge: give one, or leave the key out",
        ));
    }
    Ok(Some(s))
}

/// A duration of more than zero.
fn positive_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    match deserialize_duration(d)? {
        Some(t) if t.is_zero() => Err(de::Error::custom(
            "must be more than 0 (a zero timeout or expiry cannot work)",
        )),
        other => Ok(other),
    }
}

/// A count of at least 1.
fn count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    match usize::deserialize(d)? {
        0 => Err(de::Error::custom(
            "must be at least 1 (a zero cap serves nothing)",
        )),
        n => Ok(Some(n)),
    }
}

fn stream_count<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    match u32::deserialize(d)? {
        0 => Err(de::Error::custom(
            "must be at least 1 (a zero cap serves nothing)",
        )),
        n => Ok(Some(n)),
    }
}

fn prefix_depth<'de, D: Deserializer<'de>>(d: D) -> Result<Option<usize>, D::Error> {
    let n = usize::deserialize(d)?;
    if n > MAX_PREFIX_DEPTH {
        return Err(de::Error::custom(format!(
            "at most {MAX_PREFIX_DEPTH} (each segment is a tag every hit checks)"
        )));
    }
    Ok(Some(n))
}

fn memory_mib<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let n = u64::deserialize(d)?;
    if !(1..=MAX_MEMORY_MIB).contains(&n) {
        return Err(de::Error::custom(format!(
            "must be from 1 to {MAX_MEMORY_MIB} (MiB)"
        )));
    }
    Ok(Some(n))
}

fn body_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match size(d)? {
        Some(0) => Err(de::Error::custom("must be more than 0")),
        Some(n) if n > MAX_BODY => Err(de::Error::custom("at most 1GiB")),
        other => Ok(other),
    }
}

fn request_body_size<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    match size(d)? {
        Some(0) => Err(de::Error::custom("must be more than 0")),
        other => Ok(other),
    }
}

fn header_name<'de, D: Deserializer<'de>>(d: D) -> Result<Option<HeaderName>, D::Error> {
    let s = String::deserialize(d)?;
    HeaderName::from_bytes(s.as_bytes())
        .map(Some)
        .map_err(|_| de::Error::custom(format!("not a header name: {s:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Method;

    fn parse(text: &str) -> Result<File, ConfigError> {
        File::parse(text, "larder.toml")
    }

    #[test]
    fn a_full_file_reads() {
        let f = parse(
            r#"
[proxy]
upstream = "http://127.0.0.1:8000"
listen = "127.0.0.1:9000"
access_log = "json"
max_request_body = "1MiB"

[cache]
memory_mib = 64
ignore_cookies = ["_ga*"]
fail_safe_throttle = "5s"

[limits]
header_read_timeout = "5s"
idle_timeout = 30

[[rule]]
path = "/users"
ttl = "1m"
stale = "10m"
query = ["skip", "limit"]

[[rule]]
path = "/admin"
bypass = true

[[rule]]
path = "/users"
methods = ["post", "PUT"]
invalidate = ["{path}", "/users"]
"#,
        )
        .unwrap();
        assert_eq!(f.proxy.access_log, Some(LogFormat::Json));
        assert_eq!(f.proxy.max_request_body, Some(1 << 20));
        assert_eq!(f.limits.idle_timeout, Some(Duration::from_secs(30)));
        assert_eq!(f.cache.fail_safe_throttle, Some(Duration::from_secs(5)));
        let rules = f.rules();
        assert_eq!(rules.len(), 3);
        assert_eq!(
            rules[0].to_string(),
            "GET,HEAD /users -> ttl 60s, stale 600s, query only [limit, skip], statuses [200, 203, 204, 301, 404, 410]"
        );
        assert!(rules[2].matches(&Method::POST, "/users/1"));
    }

    #[test]
    fn errors_point_at_line_and_column() {
        let err = parse("[cache]\nmemory_mib = 64\n\n[[rule]]\npath = \"users\"\nttl = \"1m\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("larder.toml:5:1:"), "at the key: {err}");
        assert!(err.contains("must start with '/'"), "{err}");

        // A rule's meaning, at the key that says it.
        let err = parse("[[rule]]\npath = \"/users\"\nttl = 60\ninvalidate = [\"/users\"]\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("larder.toml:4:1: invalidate:"), "{err}");
        // A rule an earlier one takes every request of, at its path.
        let err = parse(
            "[cache]\nmemory_mib = 64\n\n[[rule]]\npath = \"/\"\nttl = 60\n\n[[rule]]\nbypass = true\npath = \"/health\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.starts_with("larder.toml:10:1: rule 2 (/health) is never used"),
            "{err}"
        );

        let err = parse("[[rule]]\npath = \"/\"\nttl = \"soon\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("larder.toml:3:7:"), "{err}");
        assert!(err.contains("not a duration"), "{err}");

        let err = parse("[proxy]\nlisten = \"nowhere\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("larder.toml:2:10:"), "{err}");

        let err = parse("[cache]\nmemroy_mib = 1\n").unwrap_err().to_string();
        assert!(err.starts_with("larder.toml:2:1:"), "{err}");
        assert!(err.contains("memroy_mib"), "{err}");
    }

    #[test]
    fn rules_that_contradict_themselves_are_refused() {
        for bad in [
            "[[rule]]\npath = \"/\"\noverride = true\n",
            "[[rule]]\npath = \"/\"\nttl = 5\nsoft_timeout = \"1s\"\n",
            "[[rule]]\npath = \"/\"\nttl = 5\neager_refresh = 1.5\n",
            "[[rule]]\npath = \"/\"\nttl = 5\neager_refresh = 1.0\n",
            "[[rule]]\npath = \"/\"\nbypass = true\nttl = 5\n",
            "[[rule]]\npath = \"/\"\nquery = \"some\"\n",
            "[[rule]]\npath = \"/\"\nquery = []\nquery_except = []\n",
            "[[rule]]\npath = \"/\"\nstatuses = [99]\n",
            "[[rule]]\npath = \"/\"\nvary = [\"bad header\"]\n",
            "[[rule]]\npath = \"/\"\ninvalidate = [\"users\"]\n",
            "[[rule]]\npath = \"/\"\nmethods = [\"G E T\"]\n",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sizes_and_durations_read_as_people_write_them() {
        assert_eq!(parse_size("10MB"), Ok(10_000_000));
        assert_eq!(parse_size("1 KiB"), Ok(1024));
        assert!(parse_size("99999999999999GiB").is_err());
        assert_eq!(parse_duration("1h 30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
    }
}
