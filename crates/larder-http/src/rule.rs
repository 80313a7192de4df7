//! Rules: which requests a setting covers (method and path), and how the cache treats them.
//!
//! A rule is what nginx's `location` + `proxy_cache_valid` and Varnish's `vcl_backend_response`
//! give an operator: a ttl for responses that say nothing about freshness, a stale window, the
//! key's inputs, the statuses worth caching, or no caching at all. The first rule that matches a
//! request decides; a request no rule matches gets the layer's own settings.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::{HeaderName, Method, StatusCode};

use crate::key::QueryKey;

/// Why a rule cannot be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RuleError {
    /// A path pattern must start with `/`.
    #[error("a rule's path must start with '/': {0:?}")]
    Path(String),
    /// `**` only stands for whole segments: `/a/**` or `/a/**/b`, not `/a**`.
    #[error("'**' must stand alone between slashes in {0:?}")]
    DoubleStar(String),
    /// The pattern is longer than a rule takes, or cannot be compiled.
    #[error("the path pattern cannot be used: {0}")]
    Pattern(String),
    /// A rule is never used: an earlier one matches every request it would (see
    /// [`Rule::check_order`]).
    #[error(
        "rule {later} ({later_path}) is never used: rule {earlier} ({earlier_path}) before it \
         matches every request it would; put the narrower rule first"
    )]
    Shadowed {
        /// The unused rule's place in the list, from 1.
        later: usize,
        /// Its path as written.
        later_path: String,
        /// The rule that takes its requests, from 1.
        earlier: usize,
        /// Its path as written.
        earlier_path: String,
    },
}

/// The paths a rule covers.
#[derive(Debug, Clone)]
enum PathPattern {
    /// The path itself and everything below it: `/users` covers `/users`, `/users/` and
    /// `/users/42`, not `/usersettings`.
    Prefix(String),
    /// The path alone (`= /`, nginx's `location = /`).
    Exact(String),
    /// Whole-path pattern: `*` is any run within a segment, `**` any number of whole segments,
    /// `{name}` one segment and `{name:path}` the rest (FastAPI's and Starlette's templates).
    Glob(Glob),
}

/// A pattern compiled to an automaton, once as written and once ignoring ASCII case. The regex
/// crate's engines never backtrack: a match costs time linear in the path's length for any
/// pattern (a hand-written matcher backtracked: `/assets/*-*.js` took seconds on a 60 KB path).
#[derive(Debug, Clone)]
struct Glob {
    segments: Vec<String>,
    /// The names of the template's variables, in order.
    names: Vec<String>,
    exact: regex::bytes::Regex,
    folded: regex::bytes::Regex,
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Prefix(a), Self::Prefix(b)) | (Self::Exact(a), Self::Exact(b)) => a == b,
            (Self::Glob(a), Self::Glob(b)) => a.segments == b.segments,
            _ => false,
        }
    }
}

impl Eq for PathPattern {}

/// The longest path pattern a rule takes, so a configuration cannot build an automaton of
/// unbounded size.
const MAX_PATTERN: usize = 2048;

/// What a template variable matches, by its convertor (Starlette's).
fn convertor(name: &str, kind: &str, pattern: &str) -> Result<&'static str, RuleError> {
    Ok(match kind {
        "" | "str" => "[^/]+",
        "int" => "[0-9]+",
        "float" => r"[0-9]+(?:\.[0-9]+)?",
        "uuid" => "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
        "path" => ".*",
        other => {
            return Err(RuleError::Pattern(format!(
                "{{{name}:{other}}} in {pattern:?}: the convertors are str, int, float, uuid \
                 and path"
            )));
        }
    })
}

impl Glob {
    fn new(segments: Vec<String>, pattern: &str) -> Result<Self, RuleError> {
        // `/a/**/b`: `**` is zero or more whole segments, each `/` and a run without `/`.
        let mut re = String::from("^");
        let mut names: Vec<String> = Vec::new();
        for segment in &segments {
            if segment == "**" {
                re.push_str("(?:/[^/]*)*");
                continue;
            }
            re.push('/');
            let mut rest = segment.as_str();
            while !rest.is_empty() {
                let cut = rest.find(['*', '{']).unwrap_or(rest.len());
                re.push_str(&regex::escape(&rest[..cut]));
                rest = &rest[cut..];
                if let Some(after) = rest.strip_prefix('*') {
                    re.push_str("[^/]*");
                    rest = after;
                } else if let Some(after) = rest.strip_prefix('{') {
                    let close = after.find('}').ok_or_else(|| {
                        RuleError::Pattern(format!("an unclosed '{{' in {pattern:?}"))
                    })?;
                    let (name, kind) = after[..close]
                        .split_once(':')
                        .unwrap_or((&after[..close], ""));
                    let ident = !name.is_empty()
                        && !name.starts_with(|c: char| c.is_ascii_digit())
                        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
                    if !ident {
                        return Err(RuleError::Pattern(format!(
                            "{{{name}}} in {pattern:?}: a variable is a name of letters, digits \
                             and '_'"
                        )));
                    }
                    if names.iter().any(|n| n == name) {
                        return Err(RuleError::Pattern(format!(
                            "{{{name}}} twice in {pattern:?}"
                        )));
                    }
                    re.push_str(&format!("(?P<{name}>{})", convertor(name, kind, pattern)?));
                    names.push(name.to_owned());
                    rest = &after[close + 1..];
                }
            }
        }
        re.push('$');
        let build = |case_insensitive: bool| {
            regex::bytes::RegexBuilder::new(&re)
                .unicode(false)
                .case_insensitive(case_insensitive)
                .build()
                .map_err(|e| RuleError::Pattern(e.to_string()))
        };
        Ok(Self {
            exact: build(false)?,
            folded: build(true)?,
            segments,
            names,
        })
    }

    /// The path the pattern's matches all start with, up to its first wildcard's segment.
    fn literal_prefix(&self) -> String {
        let mut out = String::new();
        for segment in &self.segments {
            if segment.contains(['*', '{']) {
                break;
            }
            out.push('/');
            out.push_str(segment);
        }
        out
    }
}

/// A rule for the requests whose method and path it matches. Build one with
/// [`Rule::path`], then say what it changes; rules go to
/// [`CacheLayer::rules`](crate::CacheLayer::rules) in order, and the first match decides.
///
/// Paths are matched after percent-escapes of unreserved characters are decoded (as the key
/// is built), so `/us%65rs` cannot slip past a rule for `/users`.
///
/// ```
/// use std::time::Duration;
/// use larder_http::{QueryKey, Rule};
///
/// let rules = [
///     Rule::path("/admin")?.bypass(true),
///     Rule::path("/users")?
///         .ttl(Duration::from_secs(60))
///         .stale(Duration::from_secs(600))
///         .query(QueryKey::Only(vec!["skip".into(), "limit".into()])),
///     Rule::path("/items/*/reviews")?.ttl(Duration::from_secs(5)),
/// ];
/// assert!(rules[1].matches(&http::Method::GET, "/users/42"));
/// assert!(!rules[1].matches(&http::Method::GET, "/usersettings"));
/// # Ok::<(), larder_http::RuleError>(())
/// ```
#[derive(Clone, PartialEq, serde::Deserialize)]
#[serde(try_from = "crate::rule_fields::RuleFields")]
pub struct Rule {
    pub(crate) source: Arc<str>,
    path: PathPattern,
    pub(crate) methods: Vec<Method>,
    pub(crate) ttl: Option<Duration>,
    pub(crate) override_origin: bool,
    pub(crate) stale: Option<Duration>,
    pub(crate) stale_while_revalidate: Option<Duration>,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) eager_refresh: Option<f64>,
    pub(crate) query: QueryKey,
    pub(crate) vary: Vec<HeaderName>,
    pub(crate) key_cookies: Vec<String>,
    pub(crate) statuses: Vec<StatusCode>,
    pub(crate) bypass: bool,
    pub(crate) invalidate: Vec<String>,
    pub(crate) ignore_client_no_cache: bool,
    pub(crate) key_body: Option<usize>,
}

/// The statuses a rule's ttl applies to unless it names its own: those nginx and Varnish cache
/// by default, minus the redirects that are often per-client (302, 307).
pub const DEFAULT_RULE_STATUSES: [u16; 6] = [200, 203, 204, 301, 404, 410];

impl Rule {
    /// A rule for `pattern`: a path prefix (`/users` covers `/users` and everything below it)
    /// or, with `*`, a glob over the whole path (`/items/*/reviews`, `/static/**`). It matches
    /// GET and HEAD until [`methods`](Self::methods) says otherwise, and changes nothing until
    /// told what to.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/static/**")?;
    /// assert!(rule.matches(&http::Method::HEAD, "/static/css/site.css"));
    /// assert!(larder_http::Rule::path("static").is_err());
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn path(pattern: &str) -> Result<Self, RuleError> {
        if pattern.len() > MAX_PATTERN {
            return Err(RuleError::Pattern(format!(
                "longer than {MAX_PATTERN} bytes"
            )));
        }
        // `= /path`: that path alone, as nginx writes it.
        if let Some(exact) = pattern.strip_prefix('=') {
            let mut rule = Self::path(exact.trim_start())?;
            rule.path = match rule.path {
                PathPattern::Prefix(_) => {
                    PathPattern::Exact(canonical_pattern(exact.trim_start())?)
                }
                _ => {
                    return Err(RuleError::Pattern(format!(
                        "{pattern:?}: an exact path has no '*' or '{{name}}'"
                    )));
                }
            };
            rule.source = Arc::from(pattern);
            return Ok(rule);
        }
        let normalized = canonical_pattern(pattern)?;
        let path = if normalized.contains(['*', '{', '}']) {
            let segments: Vec<String> = normalized[1..].split('/').map(str::to_owned).collect();
            if segments.iter().any(|s| s.contains("**") && s != "**") {
                return Err(RuleError::DoubleStar(pattern.to_owned()));
            }
            PathPattern::Glob(Glob::new(segments, pattern)?)
        } else {
            let trimmed = normalized.trim_end_matches('/');
            PathPattern::Prefix(trimmed.to_owned())
        };
        Ok(Self {
            source: Arc::from(pattern),
            path,
            methods: vec![Method::GET, Method::HEAD],
            ttl: None,
            override_origin: false,
            stale: None,
            stale_while_revalidate: None,
            soft_timeout: None,
            eager_refresh: None,
            query: QueryKey::All,
            vary: Vec::new(),
            key_cookies: Vec::new(),
            statuses: Vec::new(),
            bypass: false,
            invalidate: Vec::new(),
            ignore_client_no_cache: false,
            key_body: None,
        })
    }

    /// A rule for the path `path` alone (nginx's `location = /`): `Rule::exact("/")` is the
    /// home page, not every path. The same as `Rule::path("= /")`.
    ///
    /// ```
    /// let home = larder_http::Rule::exact("/")?;
    /// assert!(home.matches(&http::Method::GET, "/"));
    /// assert!(!home.matches(&http::Method::GET, "/users"));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn exact(path: &str) -> Result<Self, RuleError> {
        Self::path(&format!("= {path}"))
    }

    /// The methods the rule matches (default GET and HEAD). A rule for unsafe methods (POST,
    /// PUT, PATCH, DELETE) is there for [`invalidate`](Self::invalidate).
    ///
    /// ```
    /// use http::Method;
    /// let rule = larder_http::Rule::path("/users")?.methods([Method::POST, Method::PUT]);
    /// assert!(rule.matches(&Method::POST, "/users/42"));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn methods(mut self, methods: impl IntoIterator<Item = Method>) -> Self {
        self.methods = methods.into_iter().collect();
        if self.methods.contains(&Method::GET) && !self.methods.contains(&Method::HEAD) {
            // A HEAD is answered from the GET's entry: it follows the GET's rule.
            self.methods.push(Method::HEAD);
        }
        self
    }

    /// How long a response that says nothing about its freshness (no `max-age`, `s-maxage` or
    /// `Expires`) is fresh, for the [statuses](Self::statuses) the rule caches: what nginx's
    /// `proxy_cache_valid` and Varnish's `default_ttl` do. The origin's `no-store`, `private`
    /// and explicit lifetimes still win unless [`override_origin`](Self::override_origin).
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/")?.ttl(std::time::Duration::from_secs(300));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// Makes the rule's ttl win over what the origin says: its `max-age`, `s-maxage`,
    /// `Expires`, `no-cache`, `private` and `no-store` are ignored (nginx's
    /// `proxy_ignore_headers Cache-Control Expires`). A response that sets a cookie is still
    /// never stored, and neither is one the request's credentials forbid sharing.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rule = larder_http::Rule::path("/")?.ttl(Duration::from_secs(60)).override_origin(true);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn override_origin(mut self, enabled: bool) -> Self {
        self.override_origin = enabled;
        self
    }

    /// How long past its freshness a stored response may still be served when the origin
    /// fails (refused, reset, a 500/502/503/504, or past the response timeout), as nginx's
    /// `proxy_cache_use_stale error timeout http_5xx` does. The origin's own `stale-if-error`
    /// counts when longer; `must-revalidate` still forbids it.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/")?.stale(std::time::Duration::from_secs(3600));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn stale(mut self, window: Duration) -> Self {
        self.stale = Some(window);
        self
    }

    /// How long past its freshness a stored response is served at once while one background
    /// request refreshes it (RFC 5861). The origin's own `stale-while-revalidate` counts when
    /// longer.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/")?.stale_while_revalidate(std::time::Duration::from_secs(30));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn stale_while_revalidate(mut self, window: Duration) -> Self {
        self.stale_while_revalidate = Some(window);
        self
    }

    /// With a stale copy at hand (within the [`stale`](Self::stale) window), the longest a
    /// request waits for the origin to refresh it: past this, the request gets the stale copy
    /// and the refresh goes on in the background, to be stored for the next requests.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rule = larder_http::Rule::path("/")?
    ///     .ttl(Duration::from_secs(60))
    ///     .stale(Duration::from_secs(3600))
    ///     .soft_timeout(Duration::from_millis(300));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// After this fraction of a response's lifetime (in (0, 1); 0.8 is common), the next hit
    /// starts one background refresh while it and every later request are still served the
    /// stored response, so a popular URL never goes stale. A fraction outside (0, 1) leaves it
    /// off: the same range as the core's `EntryOptions::eager_refresh`
    /// (`larder::engine::eager_refresh_fraction`).
    ///
    /// ```
    /// use std::time::Duration;
    /// let rule = larder_http::Rule::path("/")?.ttl(Duration::from_secs(60)).eager_refresh(0.8);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_refresh = larder::engine::eager_refresh_fraction(fraction);
        self
    }

    /// Which query parameters key the entry (default all, sorted).
    ///
    /// ```
    /// use larder_http::{QueryKey, Rule};
    /// let rule = Rule::path("/search")?.query(QueryKey::Except(vec!["utm_*".into()]));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn query(mut self, query: QueryKey) -> Self {
        self.query = match query {
            QueryKey::Only(names) => QueryKey::Only(normalize_names(names)),
            QueryKey::Except(names) => QueryKey::Except(normalize_names(names)),
            other => other,
        };
        self
    }

    /// Request headers that vary every entry the rule covers, as if each response said
    /// `Vary` with them (a tenant header, `Accept-Language`).
    ///
    /// ```
    /// use http::header::ACCEPT_LANGUAGE;
    /// let rule = larder_http::Rule::path("/")?.vary([ACCEPT_LANGUAGE]);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn vary(mut self, headers: impl IntoIterator<Item = HeaderName>) -> Self {
        self.vary = headers.into_iter().collect();
        self.vary
            .sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        self.vary.dedup();
        self
    }

    /// Cookies whose values key the entries the rule covers, beside the layer's
    /// [`key_cookies`](crate::CacheLayer::key_cookies). A request whose cookies are all keyed or
    /// ignored is served shared entries; one with any other cookie is not (see the layer's docs).
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/")?.key_cookies(["lang"]);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn key_cookies<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.key_cookies = names.into_iter().map(Into::into).collect();
        self
    }

    /// The statuses the rule's ttl applies to (default 200, 203, 204, 301, 404, 410). Other
    /// statuses are stored only where the origin's own headers allow.
    ///
    /// ```
    /// use http::StatusCode;
    /// let rule = larder_http::Rule::path("/")?.statuses([StatusCode::OK]);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn statuses(mut self, statuses: impl IntoIterator<Item = StatusCode>) -> Self {
        self.statuses = statuses.into_iter().collect();
        self
    }

    /// Passes the requests the rule covers by the cache: nothing is looked up or stored.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/admin")?.bypass(true);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn bypass(mut self, enabled: bool) -> Self {
        self.bypass = enabled;
        self
    }

    /// Answers requests that say `Cache-Control: no-cache`, `max-age=0` or `Pragma: no-cache`
    /// (a browser's reload) from the cache as if they said nothing, as nginx does by default:
    /// for URLs whose clients cannot be allowed to make the origin work (a hot page under a
    /// reload flood). Without it, such a request gets a response the origin made after it
    /// arrived, shared with the other requests waiting for one.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/")?.ttl(std::time::Duration::from_secs(60)).ignore_client_no_cache(true);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn ignore_client_no_cache(mut self, enabled: bool) -> Self {
        self.ignore_client_no_cache = enabled;
        self
    }

    /// Caches the POST requests the rule covers, keyed on their body (beside the URL): a SHA-256
    /// of the body, its `Content-Type` and `Content-Encoding`, and the rule's
    /// [`vary`](Self::vary) headers as for any entry. For search and inference endpoints whose
    /// question is a JSON body. Adds POST to the rule's methods; a POST it covers is a query,
    /// so it invalidates nothing. Coalesced like a GET: concurrent POSTs with one body make one
    /// call.
    ///
    /// The body must be read before the cache can look it up: use
    /// [`CacheLayer::key_bodies`](crate::CacheLayer::key_bodies) (larder-proxy and larder for
    /// Python do). A POST passes uncached, as sent, when its body is past `max_bytes` or has no
    /// `Content-Length`, when it carries credentials (`Authorization`, a cookie neither keyed
    /// nor ignored) or a precondition (`If-Match`, ...), or when the recording budget has no
    /// room for it. Without a [`ttl`](Self::ttl), only responses whose own headers give a
    /// lifetime are stored.
    ///
    /// ```
    /// use std::time::Duration;
    /// let rule = larder_http::Rule::path("/search")?.ttl(Duration::from_secs(60)).key_body(64 << 10);
    /// assert!(rule.matches(&http::Method::POST, "/search"));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn key_body(mut self, max_bytes: usize) -> Self {
        self.key_body = Some(max_bytes);
        if !self.methods.contains(&Method::POST) {
            self.methods.push(Method::POST);
        }
        self
    }

    /// Path prefixes whose stored responses a successful unsafe request (POST, PUT, PATCH,
    /// DELETE) matching this rule purges, beside its own URL (which RFC 9111 §4.4 purges
    /// anyway). `{path}` stands for the request's path. Needs the layer's
    /// [`prefix_purge_depth`](crate::CacheLayer::prefix_purge_depth).
    ///
    /// ```
    /// use http::Method;
    /// // Changing a user drops the user's pages and every list of users.
    /// let rule = larder_http::Rule::path("/users")?
    ///     .methods([Method::POST, Method::PUT, Method::PATCH, Method::DELETE])
    ///     .invalidate(["{path}", "/users"]);
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn invalidate<I, S>(mut self, prefixes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.invalidate = prefixes.into_iter().map(Into::into).collect();
        self
    }

    /// Whether the rule covers a request with this method and path (the path as sent; it is
    /// made canonical first, as the layer does: escapes normalized, dot segments removed,
    /// doubled slashes merged). A path with no canonical form matches nothing.
    ///
    /// ```
    /// let rule = larder_http::Rule::path("/a/*/c")?;
    /// assert!(rule.matches(&http::Method::GET, "/a/b/c"));
    /// assert!(rule.matches(&http::Method::GET, "/a/x/../b//c"));
    /// assert!(!rule.matches(&http::Method::GET, "/a/b/x/c"));
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn matches(&self, method: &Method, path: &str) -> bool {
        if !self.methods.contains(method) {
            return false;
        }
        crate::path::canonical(path).is_ok_and(|path| self.matches_path(&path, false))
    }

    /// Whether the rule covers a canonical path; `fold_case` compares letters without case.
    pub(crate) fn matches_path(&self, path: &str, fold_case: bool) -> bool {
        match &self.path {
            PathPattern::Exact(exact) if fold_case => exact.eq_ignore_ascii_case(path),
            PathPattern::Exact(exact) => exact == path,
            PathPattern::Prefix(prefix) => {
                let Some(head) = path.as_bytes().get(..prefix.len()) else {
                    return false;
                };
                let same = if fold_case {
                    head.eq_ignore_ascii_case(prefix.as_bytes())
                } else {
                    head == prefix.as_bytes()
                };
                same && matches!(path.as_bytes().get(prefix.len()), None | Some(b'/'))
            }
            PathPattern::Glob(glob) if fold_case => glob.folded.is_match(path.as_bytes()),
            PathPattern::Glob(glob) => glob.exact.is_match(path.as_bytes()),
        }
    }

    /// The path pattern as given.
    ///
    /// ```
    /// assert_eq!(larder_http::Rule::path("/users")?.pattern(), "/users");
    /// # Ok::<(), larder_http::RuleError>(())
    /// ```
    pub fn pattern(&self) -> &str {
        &self.source
    }

    /// The values a canonical path gives the rule's template variables (`/users/{id}` on
    /// `/users/3`: `id` = `3`), as they appear in the path.
    pub(crate) fn captures<'p>(&self, path: &'p str) -> Vec<(&str, &'p str)> {
        let PathPattern::Glob(glob) = &self.path else {
            return Vec::new();
        };
        let Some(found) = glob.exact.captures(path.as_bytes()) else {
            return Vec::new();
        };
        glob.names
            .iter()
            .filter_map(|name| {
                let m = found.name(name)?;
                Some((name.as_str(), &path[m.start()..m.end()]))
            })
            .collect()
    }

    /// The names of the rule's template variables (`{id}` in `/users/{id}`).
    pub(crate) fn variables(&self) -> &[String] {
        match &self.path {
            PathPattern::Glob(glob) => &glob.names,
            _ => &[],
        }
    }

    /// Whether every request `later` matches, this rule matches too, so that after this one
    /// `later` is never used. Decided where it can be: prefixes, exact paths, and patterns
    /// under a prefix or the same as another; otherwise not (never a false alarm).
    pub fn shadows(&self, later: &Rule) -> bool {
        if !later.methods.iter().all(|m| self.methods.contains(m)) {
            return false;
        }
        let under = |prefix: &str, path: &str| {
            prefix.is_empty()
                || path == prefix
                || path
                    .strip_prefix(prefix)
                    .is_some_and(|rest| rest.starts_with('/'))
        };
        match (&self.path, &later.path) {
            (PathPattern::Prefix(p), PathPattern::Prefix(q) | PathPattern::Exact(q)) => under(p, q),
            // Every path a pattern matches is its literal prefix or below it.
            (PathPattern::Prefix(p), PathPattern::Glob(g)) => under(p, &g.literal_prefix()),
            (PathPattern::Exact(a), PathPattern::Exact(b)) => a == b,
            (PathPattern::Glob(g), PathPattern::Exact(e)) => g.exact.is_match(e.as_bytes()),
            (PathPattern::Glob(a), PathPattern::Glob(b)) => a.segments == b.segments,
            _ => false,
        }
    }

    /// Checks a list of rules as the layer uses them (the first match decides): an error for
    /// the first rule an earlier one [shadows](Self::shadows), which would never be used (a
    /// `/health` bypass written after `/`). larder-proxy and larder for Python refuse such a
    /// list; `CacheLayer::rules` logs it.
    ///
    /// ```
    /// use larder_http::{Rule, RuleError};
    /// let all = Rule::path("/")?;
    /// let health = Rule::path("/health")?.bypass(true);
    /// assert!(Rule::check_order(&[health.clone(), all.clone()]).is_ok());
    /// assert!(matches!(Rule::check_order(&[all, health]), Err(RuleError::Shadowed { later: 2, .. })));
    /// # Ok::<(), RuleError>(())
    /// ```
    pub fn check_order(rules: &[Rule]) -> Result<(), RuleError> {
        for (j, later) in rules.iter().enumerate() {
            if let Some(i) = rules[..j].iter().position(|earlier| earlier.shadows(later)) {
                return Err(RuleError::Shadowed {
                    later: j + 1,
                    later_path: later.source.to_string(),
                    earlier: i + 1,
                    earlier_path: rules[i].source.to_string(),
                });
            }
        }
        Ok(())
    }

    /// The statuses the rule's ttl applies to.
    pub(crate) fn ttl_statuses(&self) -> Vec<u16> {
        if self.statuses.is_empty() {
            DEFAULT_RULE_STATUSES.to_vec()
        } else {
            self.statuses.iter().map(StatusCode::as_u16).collect()
        }
    }
}

/// The pattern in the canonical form requests are matched in (escapes, dot segments, doubled
/// slashes), so a rule written `/%61dmin` or `/a//b` means what it says.
fn canonical_pattern(pattern: &str) -> Result<String, RuleError> {
    crate::path::canonical(pattern)
        .map(|p| p.into_owned())
        .map_err(|_| RuleError::Path(pattern.to_owned()))
}

fn normalize_names(names: Vec<String>) -> Vec<String> {
    let mut out: Vec<String> = names
        .into_iter()
        .map(|n| {
            let (stem, star) = match n.strip_suffix('*') {
                Some(stem) => (stem, "*"),
                None => (n.as_str(), ""),
            };
            let mut s = String::new();
            crate::key::normalize_percent(stem, &mut s, true);
            s.push_str(star);
            s
        })
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

impl fmt::Debug for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Rule({self})")
    }
}

/// One line, as `larder-proxy check` prints it.
impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let methods: Vec<&str> = self.methods.iter().map(Method::as_str).collect();
        write!(f, "{} {}", methods.join(","), self.source)?;
        if self.bypass {
            return write!(f, " -> bypass");
        }
        match self.ttl {
            Some(ttl) => write!(f, " -> ttl {}s", ttl.as_secs())?,
            None => write!(f, " -> origin's headers")?,
        }
        if self.override_origin {
            write!(f, " (overrides the origin)")?;
        }
        if let Some(s) = self.stale {
            write!(f, ", stale {}s", s.as_secs())?;
        }
        if let Some(s) = self.stale_while_revalidate {
            write!(f, ", stale-while-revalidate {}s", s.as_secs())?;
        }
        if let Some(s) = self.soft_timeout {
            write!(f, ", soft timeout {s:?}")?;
        }
        if let Some(e) = self.eager_refresh {
            write!(f, ", eager refresh at {:.0}%", e * 100.0)?;
        }
        match &self.query {
            QueryKey::All => {}
            QueryKey::Only(n) => write!(f, ", query only [{}]", n.join(", "))?,
            QueryKey::Except(n) => write!(f, ", query except [{}]", n.join(", "))?,
            QueryKey::Ignore => write!(f, ", query ignored")?,
        }
        if !self.vary.is_empty() {
            let names: Vec<&str> = self.vary.iter().map(HeaderName::as_str).collect();
            write!(f, ", vary [{}]", names.join(", "))?;
        }
        if !self.key_cookies.is_empty() {
            write!(f, ", cookies [{}]", self.key_cookies.join(", "))?;
        }
        if self.ttl.is_some() {
            let statuses: Vec<String> = self.ttl_statuses().iter().map(u16::to_string).collect();
            write!(f, ", statuses [{}]", statuses.join(", "))?;
        }
        if !self.invalidate.is_empty() {
            write!(f, ", invalidates [{}]", self.invalidate.join(", "))?;
        }
        if self.ignore_client_no_cache {
            write!(f, ", ignores the client's no-cache")?;
        }
        if let Some(max) = self.key_body {
            write!(f, ", POST keyed on bodies up to {max} bytes")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(rule: &Rule, path: &str) -> bool {
        rule.matches(&Method::GET, path)
    }

    #[test]
    fn prefixes_stop_at_segment_boundaries() {
        let r = Rule::path("/users").unwrap();
        assert!(get(&r, "/users"));
        assert!(get(&r, "/users/"));
        assert!(get(&r, "/users/42/orders"));
        assert!(!get(&r, "/usersettings"));
        assert!(!get(&r, "/"));
        let root = Rule::path("/").unwrap();
        assert!(get(&root, "/") && get(&root, "/anything/at/all"));
        let slash = Rule::path("/users/").unwrap();
        assert!(get(&slash, "/users/42") && !get(&slash, "/usersx"));
    }

    #[test]
    fn escapes_cannot_slip_past_a_rule() {
        let r = Rule::path("/admin").unwrap();
        assert!(get(&r, "/%61dmin/users"));
        assert!(get(&r, "/adm%69n"));
        // A reserved character stays encoded: `%2F` is not a segment boundary.
        assert!(!get(&r, "/admin%2Fx"));
    }

    #[test]
    fn globs_match_segments() {
        let r = Rule::path("/items/*/reviews").unwrap();
        assert!(get(&r, "/items/7/reviews"));
        assert!(!get(&r, "/items/7/8/reviews"));
        assert!(!get(&r, "/items/reviews"));
        let deep = Rule::path("/static/**").unwrap();
        assert!(get(&deep, "/static/a/b/c.css"));
        assert!(get(&deep, "/static"));
        assert!(!get(&deep, "/staticx/a"));
        let ext = Rule::path("/**/*.png").unwrap();
        assert!(get(&ext, "/a/b/logo.png") && get(&ext, "/logo.png"));
        assert!(!get(&ext, "/a/logo.jpg"));
        assert_eq!(
            Rule::path("/a**").unwrap_err(),
            RuleError::DoubleStar("/a**".into())
        );
    }

    /// The patterns that backtracked (`/assets/*-*.js` cost 6 s of CPU on a 60 KB path), on
    /// 64 KB paths built to make a backtracking matcher try every split. The automata answer
    /// in time linear in the path (BENCHMARKS.md, `cargo bench -p larder-http --bench rules`,
    /// measures it beside globset); here, that they answer right.
    #[test]
    fn globs_that_backtracked_answer_on_64_kb_paths() {
        let dashes = format!("/assets/{}x", "-".repeat(64 << 10));
        let r = Rule::path("/assets/*-*.js").unwrap();
        assert!(!get(&r, &dashes));
        assert!(get(&r, &format!("{}.js", &dashes[..dashes.len() - 1])));
        let triple = Rule::path("/*-*-*").unwrap();
        assert!(!get(&triple, &format!("/{}-", "a".repeat(64 << 10))));
        assert!(get(&triple, &format!("/{}", "-".repeat(64 << 10))));
        let deep = Rule::path("/**/a/**/*.js").unwrap();
        let segments = format!("{}/x.css", "/a".repeat(32 << 10));
        assert!(!get(&deep, &segments));
        assert!(get(&deep, &format!("{}/x.js", "/a".repeat(32 << 10))));
    }

    use crate::glob_reference::backtracking as reference;

    proptest::proptest! {
        /// The automata accept exactly what the old matcher accepted, on short paths where it
        /// was quick.
        #[test]
        fn globs_match_what_the_reference_matches(
            pattern in "(/(\\*\\*|[ab*-]{1,3})){1,4}",
            path in "(/[ab-]{0,3}){1,5}",
        ) {
            proptest::prop_assume!(pattern.contains('*'));
            let Ok(rule) = Rule::path(&pattern) else { return Ok(()); };
            let canonical = crate::path::canonical(&path).unwrap();
            proptest::prop_assert_eq!(get(&rule, &path), reference(&pattern, &canonical), "{} vs {}", pattern, path);
        }
    }

    #[test]
    fn a_rule_every_request_of_which_an_earlier_one_takes_is_an_error() {
        let r = |p: &str| Rule::path(p).unwrap();
        let writes = [Method::POST, Method::PUT];
        for (earlier, later, shadowed) in [
            (r("/"), r("/health"), true),
            (r("/users"), r("/users/{id}"), true),
            (r("/users"), r("/users/*/orders"), true),
            (r("/users"), r("/usersettings"), false),
            (r("/users/{id}"), r("/users"), false),
            (r("= /"), r("/"), false),
            (r("/"), r("= /"), true),
            (r("= /a"), r("= /a"), true),
            (r("/a/*"), r("= /a/b"), true),
            (r("/a/*"), r("/a/{x}"), false),
            (r("/**/*.png"), r("/**/*.png"), true),
            (r("/*.png"), r("/a"), false),
            // Methods: an earlier rule for reads leaves a later rule's writes to it.
            (r("/"), r("/users").methods(writes.clone()), false),
            (
                r("/").methods(writes.clone()),
                r("/users").methods(writes.clone()),
                true,
            ),
            (r("/"), r("/search").key_body(1024), false),
        ] {
            assert_eq!(earlier.shadows(&later), shadowed, "{earlier} / {later}");
        }
        let err = Rule::check_order(&[r("/admin").bypass(true), r("/"), r("/health").bypass(true)])
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "rule 3 (/health) is never used: rule 2 (/) before it matches every request it \
             would; put the narrower rule first"
        );
    }

    #[test]
    fn methods_default_to_get_and_head() {
        let r = Rule::path("/").unwrap();
        assert!(r.matches(&Method::HEAD, "/"));
        assert!(!r.matches(&Method::POST, "/"));
        let w = Rule::path("/").unwrap().methods([Method::GET]);
        assert!(w.matches(&Method::HEAD, "/"));
    }

    #[test]
    fn query_names_match_normalized_and_by_prefix() {
        let r = Rule::path("/")
            .unwrap()
            .query(QueryKey::Except(vec!["utm_*".into(), "f%62clid".into()]));
        assert!(!r.query.keeps("utm_source"));
        assert!(!r.query.keeps("fbclid"));
        assert!(r.query.keeps("page"));
        assert!(!QueryKey::Ignore.keeps("page"));
        assert!(QueryKey::Only(vec!["a".into()]).keeps("a"));
        assert!(!QueryKey::Only(vec!["a".into()]).keeps("ab"));
    }

    #[test]
    fn display_says_what_the_rule_does() {
        let r = Rule::path("/users")
            .unwrap()
            .ttl(Duration::from_secs(60))
            .stale(Duration::from_secs(600))
            .query(QueryKey::Only(vec!["skip".into(), "limit".into()]));
        assert_eq!(
            r.to_string(),
            "GET,HEAD /users -> ttl 60s, stale 600s, query only [limit, skip], statuses [200, 203, 204, 301, 404, 410]"
        );
        assert_eq!(
            Rule::path("/admin").unwrap().bypass(true).to_string(),
            "GET,HEAD /admin -> bypass"
        );
    }
}
