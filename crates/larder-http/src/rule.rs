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
}

/// The paths a rule covers.
#[derive(Debug, Clone)]
enum PathPattern {
    /// The path itself and everything below it: `/users` covers `/users`, `/users/` and
    /// `/users/42`, not `/usersettings`.
    Prefix(String),
    /// Whole-path glob: `*` is any run within a segment, `**` any number of whole segments.
    Glob(Glob),
}

/// A glob compiled to an automaton, once as written and once ignoring ASCII case. The regex
/// crate's engines never backtrack: a match costs time linear in the path's length for any
/// pattern (a hand-written matcher backtracked: `/assets/*-*.js` took seconds on a 60 KB path).
#[derive(Debug, Clone)]
struct Glob {
    segments: Vec<String>,
    exact: regex::bytes::Regex,
    folded: regex::bytes::Regex,
}

impl PartialEq for PathPattern {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (Self::Prefix(a), Self::Prefix(b)) => a == b,
            (Self::Glob(a), Self::Glob(b)) => a.segments == b.segments,
            _ => false,
        }
    }
}

impl Eq for PathPattern {}

/// The longest path pattern a rule takes, so a configuration cannot build an automaton of
/// unbounded size.
const MAX_PATTERN: usize = 2048;

impl Glob {
    fn new(segments: Vec<String>) -> Result<Self, RuleError> {
        // `/a/**/b`: `**` is zero or more whole segments, each `/` and a run without `/`.
        let mut re = String::from("^");
        for segment in &segments {
            if segment == "**" {
                re.push_str("(?:/[^/]*)*");
                continue;
            }
            re.push('/');
            for (i, literal) in segment.split('*').enumerate() {
                if i > 0 {
                    re.push_str("[^/]*");
                }
                re.push_str(&regex::escape(literal));
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
        })
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
        // The pattern in the canonical form requests are matched in (escapes, dot segments,
        // doubled slashes), so a rule written `/%61dmin` or `/a//b` means what it says.
        let normalized =
            crate::path::canonical(pattern).map_err(|_| RuleError::Path(pattern.to_owned()))?;
        let path = if normalized.contains('*') {
            let segments: Vec<String> = normalized[1..].split('/').map(str::to_owned).collect();
            if segments.iter().any(|s| s.contains("**") && s != "**") {
                return Err(RuleError::DoubleStar(pattern.to_owned()));
            }
            PathPattern::Glob(Glob::new(segments)?)
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

    /// The statuses the rule's ttl applies to.
    pub(crate) fn ttl_statuses(&self) -> Vec<u16> {
        if self.statuses.is_empty() {
            DEFAULT_RULE_STATUSES.to_vec()
        } else {
            self.statuses.iter().map(StatusCode::as_u16).collect()
        }
    }
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
