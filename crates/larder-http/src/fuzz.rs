//! Entry points for the fuzz targets in `fuzz/` (feature `fuzzing`, not part of the public API):
//! each feeds arbitrary bytes to one parser and checks the properties it promises beyond "no
//! panic". The unit tests below run each on its seeds and on random bytes, so `cargo test` keeps
//! them working between fuzzing runs. See TESTING.md.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode};

use crate::config::Config;
use crate::directives::{CacheControl, DELTA_MAX};
use crate::policy::{self, Credentials, Exchange};
use crate::stored::{CachedResponse, Stored};

/// Header lines from `data`: each line (split on `\n`) that is a valid field value becomes a line
/// of `name`.
fn lines(name: &'static str, data: &[u8]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for line in data.split(|b| *b == b'\n') {
        if let Ok(v) = HeaderValue::from_bytes(line) {
            h.append(HeaderName::from_static(name), v);
        }
    }
    h
}

/// Splits `data` in two at its first NUL (the rest empty if there is none).
fn halves(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// `Cache-Control` (and `Pragma`) in requests and responses: every delta-seconds is at most
/// 2^31, and parsing is a pure function of the field lines.
pub fn cache_control(data: &[u8]) {
    let (cc, pragma) = halves(data);
    let mut h = lines("cache-control", cc);
    for (_, v) in lines("pragma", pragma).iter() {
        h.append(http::header::PRAGMA, v.clone());
    }
    let req = CacheControl::of_request(&h);
    let resp = CacheControl::of_response(&h);
    for d in [
        req.max_age,
        req.min_fresh,
        resp.s_maxage,
        resp.stale_while_revalidate,
        resp.stale_if_error,
        req.max_stale.flatten(),
    ]
    .into_iter()
    .flatten()
    {
        assert!(d <= DELTA_MAX);
    }
    assert_eq!(resp, CacheControl::of_response(&h));
}

/// `Age`, `Date`, `Expires` and `Last-Modified` through the storage decision: a plan's ages and
/// lifetimes stay within what the RFC lets a cache represent, in both modes, and an `Age` that
/// overflows never leaves a response fresh.
pub fn ages_and_dates(data: &[u8]) {
    let mut h = HeaderMap::new();
    for (i, line) in data.split(|b| *b == b'\n').take(8).enumerate() {
        let name = ["age", "date", "expires", "last-modified", "cache-control"][i % 5];
        if let Ok(v) = HeaderValue::from_bytes(line) {
            h.append(HeaderName::from_static(name), v);
        }
    }
    let now = 1_700_000_000_000;
    for cfg in [
        Config::shared(),
        Config::application(Duration::from_secs(60)),
    ] {
        let times = Exchange {
            request_ms: now - 1000,
            response_ms: now,
        };
        let req = HeaderMap::new();
        let cc = CacheControl::of_request(&req);
        if let Ok(plan) = policy::plan(&cfg, &Method::GET, &req, &cc, StatusCode::OK, &h, times) {
            let age = h
                .get(http::header::AGE)
                .and_then(|v| v.to_str().ok())
                .map(str::trim);
            let overflows = age.is_some_and(|a| {
                !a.is_empty()
                    && a.bytes().all(|b| b.is_ascii_digit())
                    && (a.trim_start_matches('0').len() > 19
                        || a.parse::<u64>().is_ok_and(|v| v >= DELTA_MAX))
            });
            if overflows {
                assert!(
                    plan.initial_age >= DELTA_MAX,
                    "an Age of 2^31 or more is 2^31"
                );
            }
            let _ = plan.keep_secs(true, &cfg);
        }
    }
}

/// `Vary`: a response's varied names parse to valid, sorted, unique names or to `*`, and a
/// request's variant key is a pure function of the request's values of them.
pub fn vary(data: &[u8]) {
    let (vary, request) = halves(data);
    let response = lines("vary", vary);
    let Some(names) = crate::vary::vary_names(&response) else {
        return;
    };
    assert!(names.windows(2).all(|w| w[0].as_str() < w[1].as_str()));
    let mut req = HeaderMap::new();
    for (i, line) in request.split(|b| *b == b'\n').enumerate() {
        if let (Some(name), Ok(v)) = (
            names.get(i % names.len().max(1)),
            HeaderValue::from_bytes(line),
        ) {
            req.append(name.clone(), v);
        }
    }
    let varied = crate::vary::Varied {
        headers: &names,
        cookies: &[],
    };
    let a = crate::vary::variant_key("k", 1, varied, &req);
    assert_eq!(a, crate::vary::variant_key("k", 1, varied, &req));
    assert!(a.starts_with("k#v1"));
    assert_eq!(
        a.matches('#').count(),
        1,
        "values never hold the separator: {a}"
    );
}

/// Validators: `If-None-Match` / `If-Modified-Since` against a stored `ETag` / `Last-Modified`;
/// `*` matches any 200 with an ETag, and only 200s ever match.
pub fn etag(data: &[u8]) {
    let (request, stored) = halves(data);
    let mut req = lines("if-none-match", request);
    if let Ok(v) = HeaderValue::from_bytes(request) {
        req.insert(http::header::IF_MODIFIED_SINCE, v);
    }
    let mut headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_bytes(stored) {
        headers.insert(http::header::ETAG, v.clone());
        headers.insert(http::header::LAST_MODIFIED, v);
    }
    for status in [StatusCode::OK, StatusCode::NOT_FOUND] {
        let matched = crate::conditional::response_matches(&req, status, &headers);
        if status != StatusCode::OK {
            assert!(!matched);
        }
    }
    let mut star = HeaderMap::new();
    star.insert(http::header::IF_NONE_MATCH, HeaderValue::from_static("*"));
    if headers.contains_key(http::header::ETAG) {
        assert!(crate::conditional::response_matches(
            &star,
            StatusCode::OK,
            &headers
        ));
    }
}

/// The key builder: a request is refused, bypassed or keyed; a key starts with its host, holds
/// no `#`, and its path starts right after the host; an equivalent request (host in upper case)
/// gets the same key.
pub fn key(data: &[u8]) {
    let (host, target) = halves(data);
    let Ok(uri) = std::str::from_utf8(target)
        .unwrap_or("")
        .parse::<http::Uri>()
    else {
        return;
    };
    let mut req = http::Request::builder()
        .uri(uri)
        .body(())
        .unwrap_or_default();
    if let Ok(v) = HeaderValue::from_bytes(host) {
        req.headers_mut().insert(http::header::HOST, v);
    }
    let (parts, ()) = req.into_parts();
    let Ok(crate::host::RequestHost::Named(name)) = crate::host::request_host(&parts) else {
        return;
    };
    assert!(!name.contains(['/', '?', '#', '@']), "{name:?}");
    let Some(key) = crate::key::primary_key(&name, &parts.uri, &crate::key::QueryKey::All) else {
        return;
    };
    assert!(!key.contains('#'), "{key}");
    assert!(key.starts_with(&name));
    assert!(key[name.len()..].starts_with('/'), "{key}");
    let mut upper = parts.clone();
    if let Ok(v) = HeaderValue::from_str(&name.to_ascii_uppercase()) {
        upper.headers.insert(http::header::HOST, v);
        if let Ok(crate::host::RequestHost::Named(n)) = crate::host::request_host(&upper) {
            assert_eq!(
                crate::key::primary_key(&n, &upper.uri, &crate::key::QueryKey::All).as_deref(),
                Some(&*key)
            );
        }
    }
}

/// The stored-response decoder, on bytes from a (hostile) store: as an envelope and as each
/// payload codec directly. Whatever decodes can be judged and served without panicking.
pub fn stored(data: &[u8]) {
    let mut found: Vec<Stored> = Vec::new();
    if let Ok(env) = larder::codec::Envelope::decode(data)
        && let Ok(s) = env.value::<Stored>()
    {
        found.push(s);
    }
    for format in [
        larder::codec::Format::MessagePack,
        larder::codec::Format::Json,
    ] {
        if let Ok(s) = format.deserialize::<Stored>(data) {
            found.push(s);
        }
    }
    for s in found {
        if let Stored::Response(r) = s {
            exercise(&r);
        }
    }
}

fn exercise(r: &CachedResponse) {
    let cc = CacheControl::default();
    for now in [0, r.response_time_ms, u64::MAX] {
        let _ = policy::judge(r, &cc, Credentials::default(), now);
        let _ = policy::may_serve_on_error(r, now);
        let _ = r.age(now);
    }
    let _ = crate::conditional::not_modified(&HeaderMap::new(), r);
    let _: Bytes = r.body.clone();
}

/// Inputs that reach deep into each target, the starting corpus of a fuzzing run
/// (`fuzz/seeds/<target>/`).
pub fn seeds(target: &str) -> Vec<Vec<u8>> {
    let text = |items: &[&str]| items.iter().map(|s| s.as_bytes().to_vec()).collect();
    match target {
        "cache_control" => text(&[
            "max-age=60, s-maxage=\"120\", public\nmust-revalidate,stale-while-revalidate=5",
            "no-cache=\"set-cookie, x-a\", private=\"x\"\0no-cache",
            "max-stale, min-fresh=3, only-if-cached, max-age=99999999999999999999",
        ]),
        "ages_and_dates" => text(&[
            "5\nTue, 14 Nov 2023 22:13:20 GMT\nTue, 14 Nov 2023 23:13:20 GMT\nMon, 13 Nov 2023 22:13:20 GMT\nmax-age=60",
            "99999999999999999999\n\n0\n\nmax-age=60, public",
            "2147483648\nSunday, 06-Nov-94 08:49:37 GMT\nSun Nov  6 08:49:37 1994\n\ns-maxage=1",
        ]),
        "vary" => text(&[
            "accept, accept-encoding\nx-tenant\0text/html\ngzip, br\nacme",
            "*\0x",
            "Accept-Language\0en-US,en;q=0.9",
        ]),
        "etag" => text(&[
            "\"v1\", W/\"v2\"\0\"v2\"",
            "*\0W/\"a,b\"",
            "Tue, 14 Nov 2023 22:13:20 GMT\0Tue, 14 Nov 2023 22:13:20 GMT",
        ]),
        "key" => text(&[
            "api.test:8080\0/users?skip=0&limit=10&q=a%2fb+c",
            "API.test:80\0http://api.test/p?a=1&a=2&flag",
            "127.0.0.1:8080/victim\0/page",
            "[::1]:443\0https://[::1]/x%41?%zz",
        ]),
        "stored" | "envelope" => stored_seeds(),
        _ => Vec::new(),
    }
}

fn stored_seeds() -> Vec<Vec<u8>> {
    use larder::codec::{EncodeOptions, Envelope, Format};
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("text/plain"));
    headers.append("x-a", HeaderValue::from_static("1"));
    let response = Stored::Response(std::sync::Arc::new(CachedResponse {
        status: StatusCode::OK,
        headers,
        body: Bytes::from_static(b"hello, world"),
        response_time_ms: 1_700_000_000_000,
        initial_age: 3,
        lifetime: 60,
        rules: crate::stored::Rules::default(),
        tags: vec!["t".into()],
    }));
    let index = Stored::Variants(crate::vary::VaryIndex {
        headers: vec![http::header::ACCEPT],
        cookies: vec!["lang".into()],
        nonce: 7,
    });
    let mut out = Vec::new();
    for value in [&response, &index] {
        for format in [Format::MessagePack, Format::Json] {
            for compress_above in [None, Some(1)] {
                let opts = EncodeOptions {
                    format,
                    compress_above,
                };
                if let Ok(b) = Envelope::encode(value, 1, 2, &[("tag", 1)], opts) {
                    out.push(b.to_vec());
                }
            }
        }
        if let Ok(json) = serde_json::to_vec(value) {
            out.push(json);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    type Target = (&'static str, fn(&[u8]));

    const TARGETS: [Target; 6] = [
        ("cache_control", super::cache_control),
        ("ages_and_dates", super::ages_and_dates),
        ("vary", super::vary),
        ("etag", super::etag),
        ("key", super::key),
        ("stored", super::stored),
    ];

    #[test]
    fn every_target_takes_its_seeds() {
        for (name, target) in TARGETS {
            let seeds = super::seeds(name);
            assert!(!seeds.is_empty(), "{name}");
            for seed in seeds {
                target(&seed);
            }
        }
    }

    /// Writes the seed corpus to `$FUZZ_SEEDS` (`scripts/fuzz.sh` does, before a run).
    #[test]
    #[ignore = "writes files; run by scripts/fuzz.sh"]
    fn write_seed_corpus() {
        let Some(dir) = std::env::var_os("FUZZ_SEEDS") else {
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        for name in TARGETS.iter().map(|t| t.0).chain(["envelope"]) {
            let d = dir.join(name);
            std::fs::create_dir_all(&d).unwrap();
            for (i, seed) in super::seeds(name).iter().enumerate() {
                std::fs::write(d.join(format!("seed-{i}")), seed).unwrap();
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        /// Random bytes, and seeds with random bytes spliced in, through every target.
        #[test]
        fn every_target_survives_random_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..256),
            which in 0..6usize,
            splice in any::<u16>(),
        ) {
            let (name, target) = TARGETS[which];
            target(&data);
            for mut seed in super::seeds(name) {
                let at = usize::from(splice) % (seed.len() + 1);
                seed.splice(at..at, data.iter().copied().take(16));
                target(&seed);
            }
        }
    }
}
