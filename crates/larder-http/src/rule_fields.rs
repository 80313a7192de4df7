//! How a [`Rule`] is written down: the fields of larder-proxy's `[[rule]]` tables and of larder
//! for Python's rule dicts. Read by serde and checked as they are read, so every surface accepts
//! the same rules and refuses the same mistakes in the same words.

use std::time::Duration;

use http::{HeaderName, Method, StatusCode};
use serde::Deserialize;
use serde::de::{self, Deserializer};

use crate::key::QueryKey;
use crate::rule::Rule;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFields {
    path: String,
    #[serde(default)]
    exact: bool,
    methods: Option<Vec<String>>,
    #[serde(default, deserialize_with = "duration")]
    ttl: Option<Duration>,
    #[serde(default, rename = "override")]
    override_origin: bool,
    #[serde(default, deserialize_with = "duration")]
    stale: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    stale_while_revalidate: Option<Duration>,
    #[serde(default, deserialize_with = "duration")]
    soft_timeout: Option<Duration>,
    eager_refresh: Option<f64>,
    query: Option<QueryField>,
    query_except: Option<Vec<String>>,
    #[serde(default)]
    vary: Vec<String>,
    #[serde(default)]
    cookies: Vec<String>,
    statuses: Option<Vec<u16>>,
    #[serde(default)]
    bypass: bool,
    #[serde(default)]
    invalidate: Vec<String>,
    #[serde(default)]
    ignore_client_no_cache: bool,
    key_body: Option<KeyBodyField>,
}

/// `key_body = true` (the default size) or the largest body keyed, as a size.
#[derive(Deserialize)]
#[serde(untagged)]
enum KeyBodyField {
    On(bool),
    Bytes(u64),
    Text(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum QueryField {
    Word(String),
    Names(Vec<String>),
}

impl TryFrom<RuleFields> for Rule {
    type Error = String;

    fn try_from(f: RuleFields) -> Result<Self, String> {
        let path = match f.exact {
            true if f.path.starts_with('=') => {
                return Err("exact: the path says `= ` already; give one of the two".into());
            }
            true => format!("= {}", f.path),
            false => f.path.clone(),
        };
        let mut rule = Rule::path(&path).map_err(|e| format!("path: {e}"))?;
        if let Some(methods) = f.methods {
            // The methods of RFC 9110 and PATCH: a misspelling ("GETT") is an error here, not
            // a rule that never matches.
            const KNOWN: [Method; 9] = [
                Method::GET,
                Method::HEAD,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
                Method::OPTIONS,
                Method::TRACE,
                Method::CONNECT,
            ];
            let methods = methods
                .iter()
                .map(|m| {
                    KNOWN
                        .iter()
                        .find(|k| k.as_str().eq_ignore_ascii_case(m))
                        .cloned()
                        .ok_or_else(|| {
                            format!(
                                "methods: {m:?} is not an HTTP method (GET, HEAD, POST, PUT, \
                                 PATCH, DELETE, OPTIONS, TRACE, CONNECT)"
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            rule = rule.methods(methods);
        }
        if f.override_origin && f.ttl.is_none() {
            return Err("override: override = true needs a ttl to override with".into());
        }
        if f.bypass && (f.ttl.is_some() || f.stale.is_some()) {
            return Err("bypass: a bypass rule caches nothing: drop its ttl and stale".into());
        }
        if let Some(ttl) = f.ttl {
            rule = rule.ttl(ttl).override_origin(f.override_origin);
        }
        if f.ignore_client_no_cache && f.bypass {
            return Err(
                "ignore_client_no_cache: a bypass rule answers nothing from the cache: drop \
                 ignore_client_no_cache"
                    .into(),
            );
        }
        rule = rule.ignore_client_no_cache(f.ignore_client_no_cache);
        if let Some(stale) = f.stale {
            rule = rule.stale(stale);
        }
        if let Some(swr) = f.stale_while_revalidate {
            rule = rule.stale_while_revalidate(swr);
        }
        if let Some(fraction) = f.eager_refresh {
            if larder::engine::eager_refresh_fraction(fraction).is_none() {
                return Err(format!(
                    "eager_refresh: a fraction of the lifetime, in (0, 1) (0.8 is common), not {fraction}"
                ));
            }
            rule = rule.eager_refresh(fraction);
        }
        if let Some(soft) = f.soft_timeout {
            if f.stale.is_none() {
                return Err(
                    "soft_timeout: it serves the stale copy, so it needs a stale window".into(),
                );
            }
            rule = rule.soft_timeout(soft);
        }
        let query = match (f.query, f.query_except) {
            (Some(_), Some(_)) => {
                return Err("query_except: give query or query_except, not both".into());
            }
            (None, Some(names)) => QueryKey::Except(names),
            (None, None) => QueryKey::All,
            (Some(QueryField::Names(names)), None) => QueryKey::Only(names),
            (Some(QueryField::Word(w)), None) => match w.as_str() {
                "all" => QueryKey::All,
                "none" => QueryKey::Ignore,
                _ => {
                    return Err(format!(
                        "query: \"all\", \"none\" or a list of parameter names, not {w:?}"
                    ));
                }
            },
        };
        rule = rule.query(query);
        let vary = f
            .vary
            .iter()
            .map(|h| HeaderName::from_bytes(h.as_bytes()).map_err(|_| h.clone()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|h| format!("vary: not a header name: {h:?}"))?;
        rule = rule.vary(vary).key_cookies(f.cookies);
        if let Some(statuses) = f.statuses {
            let statuses = statuses
                .iter()
                .map(|s| {
                    StatusCode::from_u16(*s)
                        .ok()
                        .filter(|c| !c.is_informational())
                        .ok_or(*s)
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|s| format!("statuses: {s} is not a final HTTP status"))?;
            rule = rule.statuses(statuses);
        }
        let key_body = match f.key_body {
            None | Some(KeyBodyField::On(false)) => None,
            Some(KeyBodyField::On(true)) => Some(crate::key_bodies::DEFAULT_KEY_BODY_MAX as u64),
            Some(KeyBodyField::Bytes(b)) => Some(b),
            Some(KeyBodyField::Text(t)) => {
                Some(parse_size(&t).map_err(|e| format!("key_body: {e}"))?)
            }
        };
        if let Some(max) = key_body {
            if f.bypass {
                return Err("key_body: a bypass rule caches nothing: drop key_body".into());
            }
            if f.invalidate.iter().len() > 0 {
                return Err(
                    "key_body: a key_body rule's POSTs are queries, which invalidate nothing: \
                     put the invalidation in a rule of its own"
                        .into(),
                );
            }
            if max > MAX_KEY_BODY {
                return Err(format!(
                    "key_body: at most {} MiB is read for a key, not {max} bytes",
                    MAX_KEY_BODY >> 20
                ));
            }
            rule = rule.key_body(max as usize);
        }
        check_invalidate(&rule, &f.invalidate)?;
        Ok(rule.bypass(f.bypass).invalidate(f.invalidate))
    }
}

/// A duration as it is written in a rule: seconds (an integer or a float) or a string
/// ([`parse_duration`]). For `#[serde(deserialize_with = "…")]` on `Option<Duration>` fields.
///
/// ```
/// use std::time::Duration;
/// #[derive(serde::Deserialize)]
/// struct Timeouts {
///     #[serde(default, deserialize_with = "larder_http::deserialize_duration")]
///     connect: Option<Duration>,
/// }
/// let t: Timeouts = serde_json::from_str(r#"{"connect": "1m 30s"}"#).unwrap();
/// assert_eq!(t.connect, Some(Duration::from_secs(90)));
/// let t: Timeouts = serde_json::from_str(r#"{"connect": 0.25}"#).unwrap();
/// assert_eq!(t.connect, Some(Duration::from_millis(250)));
/// ```
pub fn deserialize_duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    duration(d)
}

fn duration<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Secs(u64),
        Float(f64),
        Text(String),
    }
    Ok(Some(match Raw::deserialize(d)? {
        Raw::Secs(s) => Duration::from_secs(s),
        Raw::Float(f) => Duration::try_from_secs_f64(f)
            .map_err(|_| de::Error::custom(format!("not a duration: {f}")))?,
        Raw::Text(t) => parse_duration(&t).map_err(de::Error::custom)?,
    }))
}

/// A rule's `invalidate` entries: path prefixes starting with `/` (or `{path}`), naming only
/// variables of the rule's path template, on a rule for writes (invalidation follows a
/// successful unsafe request; on a rule for GET it would never fire).
fn check_invalidate(rule: &Rule, entries: &[String]) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    let writes = [Method::POST, Method::PUT, Method::PATCH, Method::DELETE];
    if !rule.methods.iter().any(|m| writes.contains(m)) {
        return Err(
            "invalidate: it acts after a successful write, and this rule matches only GET and \
             HEAD: give it methods = [\"POST\", \"PUT\", \"PATCH\", \"DELETE\"] (the ones that \
             change what it covers)"
                .into(),
        );
    }
    for entry in entries {
        let mut rest = entry.as_str();
        while let Some(open) = rest.find('{') {
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("invalidate: an unclosed '{{' in {entry:?}"))?;
            let name = &after[..close];
            if name != "path" && !rule.variables().iter().any(|v| v == name) {
                return Err(format!(
                    "invalidate: {{{name}}} in {entry:?} is not a variable of the rule's path \
                     ({}); {{path}} is the request's whole path",
                    rule.pattern()
                ));
            }
            rest = &after[close + 1..];
        }
        if !entry.starts_with('/') && !entry.starts_with("{path}") {
            return Err(format!(
                "invalidate: a path prefix starting with '/' or \"{{path}}\", not {entry:?}"
            ));
        }
    }
    Ok(())
}

/// The largest body a rule's `key_body` may read (16 MiB): a key's body is held in memory whole.
const MAX_KEY_BODY: u64 = 16 << 20;

/// A size as bytes or with a unit (`KiB`, `MiB`, `GiB`, or `KB`, `MB`, `GB` in powers of ten),
/// as rules and larder-proxy's configuration write them.
///
/// ```
/// assert_eq!(larder_http::parse_size("8MiB"), Ok(8 << 20));
/// assert_eq!(larder_http::parse_size("1500"), Ok(1500));
/// assert!(larder_http::parse_size("lots").is_err());
/// ```
pub fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("not a size: {text:?}; write \"512KiB\" or \"8MiB\""))?;
    let scale: u64 = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        "KB" | "kB" => 1_000,
        "MB" => 1_000_000,
        "GB" => 1_000_000_000,
        other => return Err(format!("unknown size unit {other:?} in {text:?}")),
    };
    number
        .checked_mul(scale)
        .ok_or_else(|| format!("too large: {text:?}"))
}

/// A duration as `"90s"`, `"5m"`, `"1h 30m"` or plain seconds.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(larder_http::parse_duration("5m"), Ok(Duration::from_secs(300)));
/// assert_eq!(larder_http::parse_duration("90"), Ok(Duration::from_secs(90)));
/// assert!(larder_http::parse_duration("soon").is_err());
/// ```
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(Duration::from_secs(secs));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("not a duration ({e}): {text:?}; write \"90s\", \"5m\" or \"1h\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(json: &str) -> Result<Rule, String> {
        serde_json::from_str::<Rule>(json).map_err(|e| e.to_string())
    }

    #[test]
    fn a_rule_reads_from_its_written_form() {
        let rule = read(
            r#"{"path": "/users", "ttl": "60s", "stale": 600, "query": ["skip", "limit"],
                "methods": ["get"], "vary": ["accept-language"]}"#,
        )
        .unwrap();
        let built = Rule::path("/users")
            .unwrap()
            .methods([Method::GET])
            .ttl(Duration::from_secs(60))
            .stale(Duration::from_secs(600))
            .query(QueryKey::Only(vec!["skip".into(), "limit".into()]))
            .vary([HeaderName::from_static("accept-language")]);
        assert!(rule == built, "{rule:?} != {built:?}");
    }

    #[test]
    fn exact_paths_and_templates() {
        let home = read(r#"{"path": "/", "exact": true}"#).unwrap();
        assert!(home.matches(&Method::GET, "/") && !home.matches(&Method::GET, "/users"));
        assert!(home == read(r#"{"path": "= /"}"#).unwrap());
        let user = read(r#"{"path": "/users/{id:int}", "methods": ["PUT"], "invalidate": ["/users/{id}", "/users"]}"#).unwrap();
        assert!(user.matches(&Method::PUT, "/users/3"));
        assert!(
            !user.matches(&Method::PUT, "/users/x")
                && !user.matches(&Method::PUT, "/users/3/orders")
        );
        assert_eq!(user.captures("/users/42"), [("id", "42")]);
        let files = read(r#"{"path": "/files/{rest:path}"}"#).unwrap();
        assert!(files.matches(&Method::GET, "/files/a/b.txt"));
        assert_eq!(files.captures("/files/a/b.txt"), [("rest", "a/b.txt")]);
    }

    #[test]
    fn key_body_takes_a_switch_or_a_size_and_adds_post() {
        let on = read(r#"{"path": "/search", "ttl": 60, "key_body": true}"#).unwrap();
        assert_eq!(on.key_body, Some(crate::key_bodies::DEFAULT_KEY_BODY_MAX));
        assert!(on.matches(&Method::POST, "/search"));
        let sized = read(r#"{"path": "/search", "key_body": "1KiB"}"#).unwrap();
        assert_eq!(sized.key_body, Some(1024));
        let off = read(r#"{"path": "/search", "key_body": false}"#).unwrap();
        assert_eq!(off.key_body, None);
        assert!(!off.matches(&Method::POST, "/search"));
        for (json, says) in [
            (
                r#"{"path": "/", "key_body": "lots"}"#,
                "key_body: not a size",
            ),
            (r#"{"path": "/", "key_body": "1GiB"}"#, "at most 16 MiB"),
            (
                r#"{"path": "/", "key_body": true, "bypass": true}"#,
                "drop key_body",
            ),
            (
                r#"{"path": "/", "key_body": true, "invalidate": ["/a"]}"#,
                "invalidate nothing",
            ),
        ] {
            let err = read(json).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
    }

    #[test]
    fn mistakes_are_refused_in_words() {
        for (json, says) in [
            (r#"{"path": "users"}"#, "must start with '/'"),
            (r#"{"path": "/", "tll": "5s"}"#, "unknown field `tll`"),
            (r#"{"path": "/", "override": true}"#, "needs a ttl"),
            (
                r#"{"path": "/", "bypass": true, "ttl": 5}"#,
                "caches nothing",
            ),
            (
                r#"{"path": "/", "soft_timeout": "1s"}"#,
                "needs a stale window",
            ),
            (r#"{"path": "/", "eager_refresh": 1.5}"#, "in (0, 1)"),
            // The core's range: at 1 nothing is refreshed ahead of time.
            (r#"{"path": "/", "eager_refresh": 1.0}"#, "in (0, 1)"),
            (
                r#"{"path": "/", "query": "some"}"#,
                "a list of parameter names",
            ),
            (
                r#"{"path": "/", "query": [], "query_except": []}"#,
                "not both",
            ),
            (
                r#"{"path": "/", "statuses": [100]}"#,
                "not a final HTTP status",
            ),
            (
                r#"{"path": "/", "methods": ["POST"], "invalidate": ["users"]}"#,
                "starting with '/'",
            ),
            (r#"{"path": "/", "ttl": "soon"}"#, "not a duration"),
            (
                r#"{"path": "/users", "invalidate": ["/users"]}"#,
                "invalidate: it acts after a successful write",
            ),
            (
                r#"{"path": "/users/{id}", "methods": ["PUT"], "invalidate": ["/users/{uid}"]}"#,
                "{uid} in \"/users/{uid}\" is not a variable",
            ),
            (r#"{"path": "/users/{id:number}"}"#, "the convertors are"),
            (r#"{"path": "= /users/*"}"#, "an exact path has no"),
            (
                r#"{"path": "= /users", "exact": true}"#,
                "give one of the two",
            ),
            (
                r#"{"path": "/", "methods": ["GETT"]}"#,
                "\"GETT\" is not an HTTP method",
            ),
            (
                r#"{"path": "/", "vary": ["bad header"]}"#,
                "not a header name",
            ),
        ] {
            let err = read(json).unwrap_err();
            assert!(err.contains(says), "{json}: {err}");
        }
    }
}
