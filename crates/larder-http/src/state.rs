//! What every service built from one layer shares: the cache, the settings (the layer's and each
//! rule's), the fills in flight, the budgets and the counters.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};
use http::Method;
use http::request::Parts;
use larder::Cache;

use crate::budget::{Budget, Budgets};
use crate::coalesce::Recordings;
use crate::config::Config;
use crate::host::RequestHost;
use crate::key;
use crate::recording::Limits;
use crate::rule::Rule;
use crate::stats::Counters;

/// How much of a streaming (no longer kept) body a recording may hold ahead of its slowest
/// reader: enough to keep a fast client busy, small enough to multiply by every connection.
const STREAM_WINDOW: usize = 32 << 10;

/// The store gate's size: the largest body stored, at least 1 MiB, within a semaphore's range.
pub(crate) fn gate_permits(max_body: usize) -> usize {
    max_body.clamp(1 << 20, u32::MAX as usize)
}

/// What every service built from one layer shares: the cache, the settings, the fetches in flight.
pub(crate) struct LayerState {
    pub cache: Cache,
    /// The settings and rules, swapped whole when the layer is reconfigured: each request
    /// reads the ones current when it came.
    routes: ArcSwap<Routes>,
    /// The host every request is keyed on, if fixed (it cannot change live: keys hold it).
    fixed_host: Option<(String, http::HeaderValue)>,
    pub recordings: Recordings,
    /// URLs whose responses were not storable just now (hit-for-pass).
    pub hit_for_pass: crate::remembered::Remembered,
    /// What recordings and bodies in delivery hold of.
    pub budgets: Budgets,
    pub counters: Arc<Counters>,
    /// Bytes of bodies being stored at once (see `write::StoreJob::turn`).
    pub store_gate: Arc<tokio::sync::Semaphore>,
}

/// The settings and rules of a layer, as one value.
pub(crate) struct Routes {
    /// The layer's settings: what a request no rule matches gets.
    pub config: Arc<Config>,
    /// Each rule with the settings a request it matches gets.
    rules: Vec<(Rule, Arc<Config>)>,
    /// Whether a rule's pattern has capital letters (then case can change a path's rule).
    rules_have_capitals: bool,
    /// Whether a rule keys POSTs on their bodies (and purges of a URL reach those entries).
    keys_bodies: bool,
}

impl Routes {
    fn new(config: Config) -> Self {
        Self {
            rules_have_capitals: config
                .rules
                .iter()
                .any(|r| r.pattern().bytes().any(|b| b.is_ascii_uppercase())),
            keys_bodies: config.rules.iter().any(|r| r.key_body.is_some()),
            rules: config
                .rules
                .iter()
                .map(|rule| (rule.clone(), Arc::new(config.with_rule(rule))))
                .collect(),
            config: Arc::new(config),
        }
    }

    /// The settings for a request to `path` (made canonical here): the first matching rule's,
    /// else the layer's.
    fn config_for(&self, method: &Method, path: &str) -> &Arc<Config> {
        if self.rules.is_empty() {
            return &self.config;
        }
        let Ok(path) = crate::path::canonical(path) else {
            return &self.config;
        };
        self.rule_for(method, &path, false)
            .map_or(&self.config, |i| &self.rules[i].1)
    }

    /// The settings for a request whose path is canonical, or `Err` when another spelling of
    /// it that an origin may route elsewhere would get another rule (see `path.rs`): such a
    /// request passes uncached, and no spelling of a path dodges its rules.
    fn route(&self, method: &Method, path: &str) -> Result<&Arc<Config>, crate::path::Unsafe> {
        if self.rules.is_empty() {
            return Ok(&self.config);
        }
        let chosen = self.rule_for(method, path, false);
        // The rule a spelling gets as written, and ignoring case where case can matter.
        let agrees = |p: &str| {
            self.rule_for(method, p, false) == chosen
                && (!self.fold_case(p) || self.rule_for(method, p, true) == chosen)
        };
        if !agrees(path) || !crate::path::other_spellings(path).iter().all(|p| agrees(p)) {
            return Err(crate::path::Unsafe(
                "a spelling of the path an origin may route elsewhere gets another rule",
            ));
        }
        Ok(chosen.map_or(&self.config, |i| &self.rules[i].1))
    }

    /// Whether letter case can change which rule a path gets: it has capitals, or a rule does.
    fn fold_case(&self, path: &str) -> bool {
        self.rules_have_capitals || path.bytes().any(|b| b.is_ascii_uppercase())
    }

    /// The index of the first rule matching a canonical path.
    fn rule_for(&self, method: &Method, path: &str, fold_case: bool) -> Option<usize> {
        self.rules.iter().position(|(rule, _)| {
            rule.methods.contains(method) && rule.matches_path(path, fold_case)
        })
    }
}

/// The settings that cannot change once a layer serves: its cache namespace, the budgets'
/// sizes and the fixed host (keys and budgets were made with them).
pub(crate) fn fixed_settings_changed(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.namespace != new.namespace {
        changed.push("namespace");
    }
    if old.max_body != new.max_body {
        changed.push("max_body");
    }
    if old.recording_budget != new.recording_budget {
        changed.push("recording_budget");
    }
    if old.fixed_host.as_ref().map(|h| &h.0) != new.fixed_host.as_ref().map(|h| &h.0) {
        changed.push("fixed_host");
    }
    changed
}

impl LayerState {
    pub fn new(base: &Cache, config: Config) -> Self {
        let budgets = Budgets {
            layer: Budget::new(config.recording_budget),
            // Bodies the memory bound cannot hold are worth holding for a remote store.
            oversize: base
                .remote_name()
                .map(|_| Budget::new(gate_permits(config.max_body) as u64)),
        };
        Self {
            cache: base.namespace(config.namespace.clone()),
            recordings: Recordings::new(base.namespace(config.namespace.clone())),
            hit_for_pass: Default::default(),
            budgets,
            counters: Arc::new(Counters::new(&config.namespace)),
            store_gate: Arc::new(tokio::sync::Semaphore::new(gate_permits(config.max_body))),
            fixed_host: config.fixed_host.clone(),
            routes: ArcSwap::from_pointee(Routes::new(config)),
        }
    }

    /// The settings and rules now: a guard to read them through (no reference count taken).
    pub fn current(&self) -> Guard<Arc<Routes>> {
        self.routes.load()
    }

    /// The layer's settings now, kept.
    pub fn config(&self) -> Arc<Config> {
        self.routes.load().config.clone()
    }

    /// Replaces the settings and rules for the requests that come next; those in flight keep
    /// theirs. The settings that cannot change live keep their values: their names come back.
    pub fn reconfigure(&self, mut config: Config) -> Vec<&'static str> {
        let now = self.config();
        let kept = fixed_settings_changed(&now, &config);
        config.namespace = now.namespace.clone();
        config.max_body = now.max_body;
        config.recording_budget = now.recording_budget;
        config.fixed_host = now.fixed_host.clone();
        self.routes.store(Arc::new(Routes::new(config)));
        kept
    }

    /// The settings for a request to `path` (made canonical here): the first matching rule's,
    /// else the layer's.
    pub fn config_for(&self, method: &Method, path: &str) -> Arc<Config> {
        self.routes.load().config_for(method, path).clone()
    }

    /// See [`Routes::route`].
    pub fn route(&self, method: &Method, path: &str) -> Result<Arc<Config>, crate::path::Unsafe> {
        self.routes.load().route(method, path).cloned()
    }

    /// The fixed host, and its `Host` value, if the layer has one.
    pub fn fixed_host(&self) -> Option<&(String, http::HeaderValue)> {
        self.fixed_host.as_ref()
    }

    /// Whether a rule keys POSTs on their bodies.
    pub fn keys_bodies(&self) -> bool {
        self.routes.load().keys_bodies
    }

    /// The host keys use for a request to `host`: the fixed one if set; none for a conflict.
    pub fn key_host<'a>(&'a self, host: &'a RequestHost) -> Option<&'a str> {
        match (&self.fixed_host, host) {
            (Some((fixed, _)), _) => Some(fixed),
            (None, RequestHost::Named(h)) => Some(h),
            (None, RequestHost::Conflicting) => None,
        }
    }

    /// The primary key of a request whose host is `host`, under the settings `cfg` (its
    /// rule's); `None` to pass it by uncached.
    pub fn primary_key(&self, cfg: &Config, parts: &Parts, host: &RequestHost) -> Option<String> {
        match &cfg.key_fn {
            Some(f) => f(parts),
            None => key::primary_key(self.key_host(host)?, &parts.uri, &cfg.query),
        }
    }

    pub fn limits(&self) -> Limits {
        let current = self.routes.load();
        Limits {
            cap: current.config.max_body,
            window: STREAM_WINDOW,
            finish_unread_below: current.config.finish_unread_below,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use proptest::prelude::*;
    use std::time::Duration;

    /// Rules as a FastAPI team writes them: a bypass, globs, a capital, and a catch-all ttl.
    fn state() -> LayerState {
        let ttl = Duration::from_secs(60);
        let mut config = Config::shared();
        config.rules = Arc::from(vec![
            Rule::path("/admin").unwrap().bypass(true),
            Rule::path("/api/*/private").unwrap().bypass(true),
            Rule::path("/Users/**").unwrap().ttl(ttl * 2),
            Rule::path("/assets/*-*.js").unwrap().ttl(ttl * 3),
            Rule::path("/").unwrap().ttl(ttl),
        ]);
        LayerState::new(&Cache::new(), config)
    }

    /// What the layer does with a GET of `path` as sent: `Some(rule's source)` when it is
    /// routed (the layer's own settings are `"-"`), `None` when it passes uncached.
    fn decision(state: &LayerState, path: &str) -> Option<String> {
        let path = crate::path::canonical(path).ok()?;
        let cfg = state.route(&Method::GET, &path).ok()?;
        Some(cfg.rule.as_deref().unwrap_or("-").to_owned())
    }

    fn bypassed(state: &LayerState, path: &str) -> bool {
        let Ok(path) = crate::path::canonical(path) else {
            return true;
        };
        state.route(&Method::GET, &path).is_ok_and(|c| c.bypass)
            || state.route(&Method::GET, &path).is_err()
    }

    /// The spellings of the findings: each reaches the `/admin` route of some origin (uvicorn
    /// decodes `%2F`, servlet containers drop `;` parameters, case-insensitive origins fold
    /// case, and most normalize dot segments and slashes), so none may be cached.
    #[test]
    fn no_spelling_of_a_bypassed_path_is_cached() {
        let s = state();
        for path in [
            "/admin",
            "/admin%2Fx",
            "/admin%2fx",
            "/./admin",
            "/z/../admin",
            "/%2e%2e/admin",
            "/z/%2E%2E/admin/users",
            "//admin",
            "/admin;jsessionid=1",
            "/public/..;/admin",
            "/ADMIN",
            "/Admin/x",
            "/%61dmin",
            "/api/v1%2Fprivate",
            "/api/v1/PRIVATE",
            "/admin%5Cx",
            "/admin%00.js",
        ] {
            assert!(
                bypassed(&s, path),
                "{path} would be cached: {:?}",
                decision(&s, path)
            );
        }
        assert_eq!(decision(&s, "/x/users").as_deref(), Some("/"));
        assert_eq!(decision(&s, "/Users/x").as_deref(), Some("/Users/**"));
        // A case-insensitive origin would serve `/Users/x` here: it is not `/`'s to cache.
        assert_eq!(decision(&s, "/users/x"), None);
        assert_eq!(
            decision(&s, "/assets/a-b.js").as_deref(),
            Some("/assets/*-*.js")
        );
        // A spelling whose every reading gets the same rule is routed, not passed.
        assert_eq!(decision(&s, "/x;v=2/y").as_deref(), Some("/"));
        assert_eq!(decision(&s, "/x%2Fy").as_deref(), Some("/"));
    }

    fn segment() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "admin", "api", "v1", "private", "Users", "users", "assets", "a-b.js", "x", "",
        ])
    }

    /// One way to spell a segment: as is, an unreserved character escaped (either hex case),
    /// or preceded by `./`, `z/../` or an empty segment. All are the same URI (RFC 3986
    /// §6.2.2, §5.2.4) and must get exactly the same rule.
    fn respell(segment: &str, how: u8, at: usize) -> String {
        match how % 6 {
            0 => segment.to_owned(),
            1 | 2 if !segment.is_empty() => {
                let i = at % segment.len();
                let b = segment.as_bytes()[i];
                let esc = if how % 6 == 1 {
                    format!("%{b:02X}")
                } else {
                    format!("%{b:02x}")
                };
                format!("{}{esc}{}", &segment[..i], &segment[i + 1..])
            }
            3 => format!("./{segment}"),
            4 => format!("z/%2e%2E/{segment}"),
            _ => format!("/{segment}"),
        }
    }

    /// A spelling some origins route to the same place and others do not: a `;` parameter, an
    /// encoded slash for a `/`, or capitals. The cache may pass it uncached, or give it the
    /// path's own rule; never another.
    fn origin_dependent(segments: &[&str], how: u8, at: usize) -> String {
        let mut path = String::new();
        for (i, s) in segments.iter().enumerate() {
            let sep = if i == at % segments.len().max(1) && i > 0 && how % 3 == 1 {
                "%2F"
            } else {
                "/"
            };
            path.push_str(sep);
            if i == at % segments.len().max(1) && how % 3 == 0 {
                path.push_str(s);
                path.push_str(";p=1");
            } else if how % 3 == 2 && i == at % segments.len().max(1) {
                path.push_str(&s.to_ascii_uppercase());
            } else {
                path.push_str(s);
            }
        }
        if path.is_empty() {
            path.push('/');
        }
        path
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        #[test]
        fn every_spelling_of_a_path_gets_the_canonical_paths_rule(
            segments in proptest::collection::vec(segment(), 0..5),
            hows in proptest::collection::vec((any::<u8>(), any::<usize>()), 5),
        ) {
            static STATE: std::sync::LazyLock<LayerState> = std::sync::LazyLock::new(state);
            let s = &*STATE;
            let target = crate::path::canonical(&format!("/{}", segments.join("/"))).unwrap().into_owned();
            let expected = decision(s, &target);
            let spelled: Vec<String> = segments
                .iter()
                .zip(&hows)
                .map(|(seg, (how, at))| respell(seg, *how, *at))
                .collect();
            let spelling = format!("/{}", spelled.join("/"));
            prop_assert_eq!(decision(s, &spelling), expected.clone(), "{} vs {}", spelling, target);

            let (how, at) = hows[0];
            let other = origin_dependent(&segments, how, at);
            let got = decision(s, &other);
            prop_assert!(got.is_none() || got == expected,
                "{} -> {:?}, {} -> {:?}", other, got, target, expected);
            if expected.as_deref() == Some("/admin") || expected.as_deref() == Some("/api/*/private") {
                prop_assert!(bypassed(s, &other), "{} is cached", other);
            }
        }
    }
}
