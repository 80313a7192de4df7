//! RFC 9111 decisions: may a response be stored (§3), for how long is it fresh (§4.2), and may a
//! stored response answer this request (§4.2, §4.2.4, RFC 5861)?

use http::header::{self, CONTENT_TYPE, DATE, EXPIRES, LAST_MODIFIED, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::config::{Config, Mode, unix_ms};
use crate::directives::{CacheControl, delta_seconds};
use crate::stored::{CachedResponse, Rules};

/// Status codes a cache may store and give a heuristic lifetime (RFC 9110 §15.1).
fn heuristically_cacheable(status: StatusCode) -> bool {
    matches!(
        status.as_u16(),
        200 | 203 | 204 | 300 | 301 | 308 | 404 | 405 | 410 | 414 | 501
    )
}

/// Why a response is not stored: said in its `Cache-Status` (`detail=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotStored {
    Method,
    Status,
    NoStore,
    Private,
    Authorization,
    Cookie,
    SetCookie,
    EventStream,
    VaryStar,
    NoLifetime,
}

impl NotStored {
    /// Whether the response itself is why (so the next request for the URL will not be
    /// stored either), not the request's method, credentials or directives.
    pub fn is_the_responses(self) -> bool {
        !matches!(self, Self::Method | Self::Authorization | Self::Cookie)
    }

    /// The reason as `Cache-Status` gives it.
    pub fn detail(self) -> &'static str {
        match self {
            Self::Method => "method",
            Self::Status => "status-not-cacheable",
            Self::NoStore => "no-store",
            Self::Private => "private",
            Self::Authorization => "authorization",
            Self::Cookie => "cookie",
            Self::SetCookie => "set-cookie",
            Self::EventStream => "event-stream",
            Self::VaryStar => "vary-star",
            Self::NoLifetime => "no-freshness",
        }
    }
}

/// How to store a response that may be stored.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub lifetime: u64,
    pub initial_age: u64,
    pub rules: Rules,
    /// Fields to drop before storing (qualified `private`/`no-cache`).
    pub strip: Vec<String>,
    /// The varied request headers, lower-case and sorted; empty when the response has no Vary
    /// (the layer adds its keyed headers where they apply).
    pub vary: Vec<HeaderName>,
    /// The keyed cookies the entry varies by, where they apply.
    pub vary_cookies: Vec<String>,
}

/// The credentials a request carries, each of which limits the stored responses it may be served
/// and what may be stored from its response.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Credentials {
    /// `Authorization` (RFC 9111 §3.5).
    pub authorization: bool,
    /// A cookie the layer neither keys on nor ignores.
    pub cookie: bool,
}

impl Credentials {
    pub fn of(request: &HeaderMap, cfg: &Config) -> Self {
        Self {
            authorization: request.contains_key(header::AUTHORIZATION),
            cookie: cfg.cookies.credentialed(request),
        }
    }

    /// Whether a response with these rules may answer (or be stored from) such a request.
    pub fn allow(self, rules: &Rules) -> bool {
        (!self.authorization || rules.shareable_with_auth)
            && (!self.cookie || rules.shared_explicitly)
    }
}

impl Plan {
    pub fn varied(&self) -> crate::vary::Varied<'_> {
        crate::vary::Varied {
            headers: &self.vary,
            cookies: &self.vary_cookies,
        }
    }

    /// How long the cache should keep the entry, in seconds: its remaining freshness, plus as
    /// long as a stale copy stays useful (to revalidate it, or to serve it under
    /// stale-while-revalidate / stale-if-error). Zero means not worth storing.
    pub fn keep_secs(&self, has_validator: bool, cfg: &Config) -> u64 {
        let fresh_left = self.lifetime.saturating_sub(self.initial_age);
        let mut stale = self
            .rules
            .stale_while_revalidate
            .max(self.rules.stale_if_error);
        if has_validator {
            stale = stale.max(cfg.keep_stale.as_secs());
        }
        fresh_left.saturating_add(stale)
    }
}

/// The times around one exchange with the origin, in Unix milliseconds.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exchange {
    pub request_ms: u64,
    pub response_ms: u64,
}

/// Decides whether a response to `method` with these request headers may be stored, and how.
pub(crate) fn plan(
    cfg: &Config,
    method: &Method,
    request: &HeaderMap,
    request_cc: &CacheControl,
    status: StatusCode,
    response: &HeaderMap,
    times: Exchange,
) -> Result<Plan, NotStored> {
    // A POST only under a `key_body` rule, which keyed it on its body (RFC 9111 §4.1 has no
    // room for it otherwise: the key would not hold what the response answers).
    if method != Method::GET && !(method == Method::POST && cfg.key_body.is_some()) {
        return Err(NotStored::Method);
    }
    // 206 and 304 need special handling we do not do; 1xx never reach a service's response.
    if status == StatusCode::PARTIAL_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status.is_informational()
    {
        return Err(NotStored::Status);
    }
    if request_cc.no_store {
        return Err(NotStored::NoStore);
    }
    let cc = CacheControl::of_response(response);
    // A rule that overrides the origin sets the lifetime whatever the response says; only what
    // protects other clients (Set-Cookie, the request's credentials) still stands.
    let app_ttl = match cfg.mode {
        Mode::Application { ttl } if ttl_applies(cfg, status) => Some(ttl),
        _ => None,
    };
    let overriding = cfg.override_origin && app_ttl.is_some();
    if cc.no_store && !overriding {
        return Err(NotStored::NoStore);
    }
    if cc.private && !overriding {
        return Err(NotStored::Private);
    }
    let rules = Rules {
        no_cache: cc.no_cache && !overriding,
        must_revalidate: (cc.must_revalidate || cc.proxy_revalidate) && !overriding,
        shareable_with_auth: cc.public || cc.s_maxage.is_some() || cc.must_revalidate,
        shared_explicitly: cc.public || cc.s_maxage.is_some(),
        stale_while_revalidate: cc
            .stale_while_revalidate
            .unwrap_or(0)
            .max(cfg.stale_while_revalidate),
        stale_if_error: cc.stale_if_error.unwrap_or(0).max(cfg.stale_if_error),
    };
    let credentials = Credentials::of(request, cfg);
    if credentials.authorization && !rules.shareable_with_auth {
        return Err(NotStored::Authorization);
    }
    if credentials.cookie && !rules.shared_explicitly {
        return Err(NotStored::Cookie);
    }
    if is_event_stream(response) {
        // A stream of events never ends as one response; replaying one to others is wrong.
        return Err(NotStored::EventStream);
    }
    if response.contains_key(SET_COOKIE)
        && !cfg.store_set_cookie
        && !cc.no_cache_fields.iter().any(|f| f == "set-cookie")
        && !cc.private_fields.iter().any(|f| f == "set-cookie")
    {
        return Err(NotStored::SetCookie);
    }
    let mut vary = crate::vary::vary_names(response).ok_or(NotStored::VaryStar)?;
    if crate::coding::serves_every_encoding(&cfg.compression, response) {
        // One copy answers every Accept-Encoding, coded for each client as it goes out.
        vary.retain(|h| h != http::header::ACCEPT_ENCODING);
    }

    let date = date_ms(response.get(DATE)).unwrap_or(times.response_ms);
    let explicit = explicit_lifetime(&cc, response, date);
    let lifetime = match (explicit, app_ttl) {
        (_, Some(ttl)) if overriding => ttl.as_secs(),
        (Some(l), _) => l,
        // The app's (or the rule's) ttl stands in where the response says nothing.
        (None, Some(ttl)) => ttl.as_secs(),
        (None, _) if heuristically_cacheable(status) || cc.public => heuristic(response, date, cfg),
        (None, _) => return Err(NotStored::Status),
    };
    if rules.no_cache
        && !response.contains_key(header::ETAG)
        && !response.contains_key(LAST_MODIFIED)
    {
        // Every use must revalidate, and there is nothing to revalidate with.
        return Err(NotStored::NoLifetime);
    }

    let initial_age = initial_age(response, date, times);
    let mut strip = cc.private_fields;
    strip.extend(cc.no_cache_fields);
    Ok(Plan {
        lifetime,
        initial_age,
        rules,
        strip,
        vary,
        vary_cookies: Vec::new(),
    })
}

/// Whether the app's (or a rule's) ttl applies to a response with this status.
fn ttl_applies(cfg: &Config, status: StatusCode) -> bool {
    match &cfg.ttl_statuses {
        Some(statuses) => statuses.contains(&status.as_u16()),
        None => heuristically_cacheable(status),
    }
}

fn is_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .is_some_and(|t| t.trim().eq_ignore_ascii_case("text/event-stream"))
        })
}

/// s-maxage (a shared cache's own), then max-age, then Expires − Date (§4.2.1). An Expires that
/// does not parse means already expired.
fn explicit_lifetime(cc: &CacheControl, headers: &HeaderMap, date_ms: u64) -> Option<u64> {
    if let Some(s) = cc.s_maxage {
        return Some(s);
    }
    if let Some(m) = cc.max_age {
        return Some(m);
    }
    let expires = headers.get(EXPIRES)?;
    Some(match date_ms_of(expires) {
        Some(e) => e.saturating_sub(date_ms) / 1000,
        None => 0,
    })
}

/// A heuristic lifetime (§4.2.2): a fraction of the time since Last-Modified, capped; none
/// without Last-Modified.
fn heuristic(headers: &HeaderMap, date: u64, cfg: &Config) -> u64 {
    let Some(lm) = date_ms(headers.get(LAST_MODIFIED)) else {
        return 0;
    };
    let since = date.saturating_sub(lm) / 1000;
    ((since as f64 * cfg.heuristic_fraction) as u64).min(cfg.heuristic_max.as_secs())
}

/// corrected_initial_age (§4.2.3): the larger of the apparent age and the origin's Age plus the
/// time the response took to arrive. An `Age` too large to represent counts as 2^31 (§1.2.2), so
/// an overflowing one makes the response stale, never fresh; one that is no number is ignored.
fn initial_age(headers: &HeaderMap, date_ms: u64, times: Exchange) -> u64 {
    let age_value = headers
        .get(header::AGE)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| delta_seconds(s.trim()))
        .unwrap_or(0);
    let apparent = times.response_ms.saturating_sub(date_ms) / 1000;
    let delay = times.response_ms.saturating_sub(times.request_ms) / 1000;
    apparent.max(age_value.saturating_add(delay))
}

fn date_ms(value: Option<&HeaderValue>) -> Option<u64> {
    date_ms_of(value?)
}

fn date_ms_of(value: &HeaderValue) -> Option<u64> {
    let t = httpdate::parse_http_date(value.to_str().ok()?).ok()?;
    Some(unix_ms(t))
}

/// How a stored response may answer a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Fresh enough for this request: serve it.
    Fresh,
    /// Stale, but the client said it accepts that (`max-stale`): serve it, marked STALE.
    StaleAllowed,
    /// Stale within stale-while-revalidate: serve it and revalidate in the background.
    StaleWhileRevalidate,
    /// Must be validated with (or fetched again from) the origin before use.
    Revalidate,
    /// The request carries credentials this response may not answer: go to the origin.
    Forbidden,
}

/// Judges a stored response for a request (§4, §4.2.4 and the request directives of §5.2.1).
pub(crate) fn judge(
    stored: &CachedResponse,
    request_cc: &CacheControl,
    credentials: Credentials,
    now_ms: u64,
) -> Verdict {
    if !credentials.allow(&stored.rules) {
        return Verdict::Forbidden;
    }
    if request_cc.no_cache || stored.rules.no_cache {
        return Verdict::Revalidate;
    }
    let age = stored.age(now_ms);
    if request_cc.max_age.is_some_and(|max| age > max) {
        return Verdict::Revalidate;
    }
    if age < stored.lifetime {
        let left = stored.lifetime - age;
        if request_cc.min_fresh.is_some_and(|min| left < min) {
            return Verdict::Revalidate;
        }
        return Verdict::Fresh;
    }
    if stored.rules.must_revalidate {
        return Verdict::Revalidate;
    }
    let staleness = age - stored.lifetime;
    match request_cc.max_stale {
        Some(None) => return Verdict::StaleAllowed,
        Some(Some(max)) if staleness <= max => return Verdict::StaleAllowed,
        _ => {}
    }
    if staleness < stored.rules.stale_while_revalidate {
        return Verdict::StaleWhileRevalidate;
    }
    Verdict::Revalidate
}

/// Whether a stale response may stand in for a failed revalidation (RFC 5861 stale-if-error;
/// never under must-revalidate).
pub(crate) fn may_serve_on_error(stored: &CachedResponse, now_ms: u64) -> bool {
    if stored.rules.must_revalidate {
        return false;
    }
    let staleness = stored.age(now_ms).saturating_sub(stored.lifetime);
    staleness <= stored.rules.stale_if_error && stored.rules.stale_if_error > 0
}

/// Statuses that count as an origin error for stale-if-error.
pub(crate) fn is_origin_error(status: StatusCode) -> bool {
    matches!(status.as_u16(), 500 | 502 | 503 | 504)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, SystemTime};

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    const NOW: u64 = 1_700_000_000_000;
    const NONE: Credentials = Credentials {
        authorization: false,
        cookie: false,
    };
    const AUTH: Credentials = Credentials {
        authorization: true,
        cookie: false,
    };
    const COOKIE: Credentials = Credentials {
        authorization: false,
        cookie: true,
    };

    fn plan_of(
        cfg: &Config,
        req: &[(&str, &str)],
        resp: &[(&str, &str)],
    ) -> Result<Plan, NotStored> {
        let req = headers(req);
        let cc = CacheControl::of_request(&req);
        let times = Exchange {
            request_ms: NOW,
            response_ms: NOW,
        };
        plan(
            cfg,
            &Method::GET,
            &req,
            &cc,
            StatusCode::OK,
            &headers(resp),
            times,
        )
    }

    fn date(offset_secs: i64) -> String {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(NOW);
        let t = if offset_secs >= 0 {
            t + Duration::from_secs(offset_secs as u64)
        } else {
            t - Duration::from_secs((-offset_secs) as u64)
        };
        httpdate::fmt_http_date(t)
    }

    #[test]
    fn lifetime_prefers_s_maxage_then_max_age_then_expires() {
        let cfg = Config::shared();
        let d = date(0);
        let e = date(100);
        assert_eq!(
            plan_of(&cfg, &[], &[("cache-control", "max-age=10, s-maxage=20")])
                .unwrap()
                .lifetime,
            20
        );
        assert_eq!(
            plan_of(
                &cfg,
                &[],
                &[("cache-control", "max-age=10"), ("expires", &e)]
            )
            .unwrap()
            .lifetime,
            10
        );
        assert_eq!(
            plan_of(&cfg, &[], &[("date", &d), ("expires", &e)])
                .unwrap()
                .lifetime,
            100
        );
        assert_eq!(
            plan_of(&cfg, &[], &[("date", &d), ("expires", "0")])
                .unwrap()
                .lifetime,
            0
        );
    }

    #[test]
    fn heuristic_only_with_last_modified_and_capped() {
        let cfg = Config::shared();
        let lm = date(-1000);
        assert_eq!(
            plan_of(&cfg, &[], &[("last-modified", &lm)])
                .unwrap()
                .lifetime,
            100
        );
        let old = date(-100_000_000);
        assert_eq!(
            plan_of(&cfg, &[], &[("last-modified", &old)])
                .unwrap()
                .lifetime,
            86_400
        );
        assert_eq!(plan_of(&cfg, &[], &[]).unwrap().lifetime, 0);
    }

    #[test]
    fn application_ttl_fills_silence_only() {
        let cfg = Config::application(Duration::from_secs(30));
        assert_eq!(plan_of(&cfg, &[], &[]).unwrap().lifetime, 30);
        assert_eq!(
            plan_of(&cfg, &[], &[("cache-control", "max-age=5")])
                .unwrap()
                .lifetime,
            5
        );
        assert_eq!(
            plan_of(&cfg, &[], &[("cache-control", "private")]).unwrap_err(),
            NotStored::Private
        );
        assert_eq!(
            plan_of(&cfg, &[], &[("cache-control", "no-store")]).unwrap_err(),
            NotStored::NoStore
        );
    }

    #[test]
    fn refusals() {
        let cfg = Config::shared();
        let auth = [("authorization", "Bearer x")];
        assert_eq!(
            plan_of(&cfg, &auth, &[("cache-control", "max-age=5")]).unwrap_err(),
            NotStored::Authorization
        );
        assert!(plan_of(&cfg, &auth, &[("cache-control", "max-age=5, public")]).is_ok());
        assert!(plan_of(&cfg, &auth, &[("cache-control", "s-maxage=5")]).is_ok());
        assert!(
            plan_of(
                &cfg,
                &auth,
                &[("cache-control", "max-age=5, must-revalidate")]
            )
            .is_ok()
        );
        assert_eq!(
            plan_of(
                &cfg,
                &[],
                &[("cache-control", "max-age=5"), ("vary", "accept, *")]
            )
            .unwrap_err(),
            NotStored::VaryStar
        );
        assert_eq!(
            plan_of(
                &cfg,
                &[],
                &[("cache-control", "max-age=5"), ("set-cookie", "a=b")]
            )
            .unwrap_err(),
            NotStored::SetCookie
        );
        let p = plan_of(
            &cfg,
            &[],
            &[
                ("cache-control", "max-age=5, no-cache=\"set-cookie\""),
                ("set-cookie", "a=b"),
            ],
        )
        .unwrap();
        assert_eq!(p.strip, ["set-cookie"]);
        assert_eq!(
            plan_of(
                &cfg,
                &[("cache-control", "no-store")],
                &[("cache-control", "max-age=5")]
            )
            .unwrap_err(),
            NotStored::NoStore
        );
    }

    #[test]
    fn cookies_are_credentials_unless_keyed_or_ignored() {
        let mut cfg = Config::shared();
        let cookie = [("cookie", "session=abc")];
        assert_eq!(
            plan_of(&cfg, &cookie, &[("cache-control", "max-age=5")]).unwrap_err(),
            NotStored::Cookie
        );
        assert_eq!(
            plan_of(
                &cfg,
                &cookie,
                &[("cache-control", "max-age=5, must-revalidate")]
            )
            .unwrap_err(),
            NotStored::Cookie,
            "must-revalidate lets Authorization through (§3.5), not a cookie"
        );
        assert!(plan_of(&cfg, &cookie, &[("cache-control", "max-age=5, public")]).is_ok());
        assert!(plan_of(&cfg, &cookie, &[("cache-control", "s-maxage=5")]).is_ok());
        cfg.cookies.ignored = vec!["session".into()];
        assert!(plan_of(&cfg, &cookie, &[("cache-control", "max-age=5")]).is_ok());
        let app = Config::application(Duration::from_secs(30));
        assert_eq!(plan_of(&app, &cookie, &[]).unwrap_err(), NotStored::Cookie);

        let public = Rules {
            shared_explicitly: true,
            shareable_with_auth: true,
            ..Rules::default()
        };
        assert_eq!(
            judge(
                &stored(60, 0, Rules::default()),
                &CacheControl::default(),
                COOKIE,
                NOW
            ),
            Verdict::Forbidden
        );
        assert_eq!(
            judge(
                &stored(60, 0, public),
                &CacheControl::default(),
                COOKIE,
                NOW
            ),
            Verdict::Fresh
        );
    }

    #[test]
    fn event_streams_are_never_stored() {
        let cfg = Config::application(Duration::from_secs(30));
        assert_eq!(
            plan_of(
                &cfg,
                &[],
                &[("content-type", "Text/Event-Stream; charset=utf-8")]
            )
            .unwrap_err(),
            NotStored::EventStream
        );
    }

    #[test]
    fn an_age_too_large_to_represent_counts_as_two_to_the_31() {
        let cfg = Config::shared();
        for age in ["99999999999999999999", "2147483648", "99999999999"] {
            let p = plan_of(&cfg, &[], &[("cache-control", "max-age=60"), ("age", age)]).unwrap();
            assert_eq!(p.initial_age, 2_147_483_648, "{age}");
            assert!(p.initial_age > p.lifetime, "stale, never fresh");
        }
        for ignored in ["-5", "+5", "5s", "", "0x10"] {
            let p = plan_of(
                &cfg,
                &[],
                &[("cache-control", "max-age=60"), ("age", ignored)],
            )
            .unwrap();
            assert_eq!(p.initial_age, 0, "{ignored:?}");
        }
    }

    #[test]
    fn age_is_corrected_for_apparent_age_and_transit() {
        let cfg = Config::shared();
        let req = HeaderMap::new();
        let cc = CacheControl::default();
        let resp = headers(&[
            ("cache-control", "max-age=60"),
            ("age", "5"),
            ("date", &date(-20)),
        ]);
        let times = Exchange {
            request_ms: NOW - 3000,
            response_ms: NOW,
        };
        let p = plan(&cfg, &Method::GET, &req, &cc, StatusCode::OK, &resp, times).unwrap();
        assert_eq!(p.initial_age, 20);
        let resp = headers(&[
            ("cache-control", "max-age=60"),
            ("age", "30"),
            ("date", &date(0)),
        ]);
        let p = plan(&cfg, &Method::GET, &req, &cc, StatusCode::OK, &resp, times).unwrap();
        assert_eq!(p.initial_age, 33);
    }

    fn stored(lifetime: u64, age_secs: u64, rules: Rules) -> CachedResponse {
        CachedResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: bytes::Bytes::new(),
            response_time_ms: NOW - age_secs * 1000,
            initial_age: 0,
            lifetime,
            rules,
            tags: Vec::new(),
        }
    }

    fn req_cc(v: &str) -> CacheControl {
        CacheControl::of_request(&headers(&[("cache-control", v)]))
    }

    #[test]
    fn verdicts_follow_request_directives() {
        let none = CacheControl::default();
        let s = stored(60, 10, Rules::default());
        assert_eq!(judge(&s, &none, NONE, NOW), Verdict::Fresh);
        assert_eq!(
            judge(&s, &req_cc("max-age=5"), NONE, NOW),
            Verdict::Revalidate
        );
        assert_eq!(
            judge(&s, &req_cc("min-fresh=55"), NONE, NOW),
            Verdict::Revalidate
        );
        assert_eq!(
            judge(&s, &req_cc("no-cache"), NONE, NOW),
            Verdict::Revalidate
        );
        assert_eq!(judge(&s, &none, AUTH, NOW), Verdict::Forbidden);

        let stale = stored(60, 70, Rules::default());
        assert_eq!(judge(&stale, &none, NONE, NOW), Verdict::Revalidate);
        assert_eq!(
            judge(&stale, &req_cc("max-stale"), NONE, NOW),
            Verdict::StaleAllowed
        );
        assert_eq!(
            judge(&stale, &req_cc("max-stale=5"), NONE, NOW),
            Verdict::Revalidate
        );
        assert_eq!(
            judge(&stale, &req_cc("max-stale=10"), NONE, NOW),
            Verdict::StaleAllowed
        );
        let must = Rules {
            must_revalidate: true,
            ..Rules::default()
        };
        assert_eq!(
            judge(&stored(60, 70, must), &req_cc("max-stale"), NONE, NOW),
            Verdict::Revalidate
        );
        let swr = Rules {
            stale_while_revalidate: 30,
            ..Rules::default()
        };
        assert_eq!(
            judge(&stored(60, 70, swr), &none, NONE, NOW),
            Verdict::StaleWhileRevalidate
        );
        assert_eq!(
            judge(&stored(60, 95, swr), &none, NONE, NOW),
            Verdict::Revalidate
        );
    }

    #[test]
    fn stale_if_error_window() {
        let sie = Rules {
            stale_if_error: 30,
            ..Rules::default()
        };
        assert!(may_serve_on_error(&stored(60, 80, sie), NOW));
        assert!(!may_serve_on_error(&stored(60, 100, sie), NOW));
        assert!(!may_serve_on_error(&stored(60, 80, Rules::default()), NOW));
        let both = Rules {
            must_revalidate: true,
            ..sie
        };
        assert!(!may_serve_on_error(&stored(60, 80, both), NOW));
    }
}
