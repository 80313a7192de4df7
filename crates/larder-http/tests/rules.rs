//! Rules: a ttl for responses that say nothing, overriding the origin, stale windows, the key's
//! query parameters and headers, statuses, bypass, and invalidation by prefix after a write.

mod common;

use std::time::Duration;

use common::*;
use http::{HeaderName, Method, StatusCode};
use larder_http::{QueryKey, Rule};

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A shared-mode layer (the proxy's default) with these rules, tagging two segments deep.
fn with_rules(rules: impl IntoIterator<Item = Rule>) -> larder_http::CacheLayer {
    shared().prefix_purge_depth(2).rules(rules)
}

fn shared_on(cache: larder::Cache) -> larder_http::CacheLayer {
    larder_http::CacheLayer::shared(cache)
}

#[tokio::test]
async fn a_rule_ttl_caches_responses_without_cache_control_for_that_long() {
    let mut h = harness(
        with_rules([Rule::path("/api").unwrap().ttl(secs(60))]),
        |_, n| reply(200, &[], &format!("v{n}")),
    );
    let miss = h.get("http://a.test/api/x").await;
    assert_eq!(miss.cache(), "MISS");
    assert_eq!(
        miss.header("cache-status"),
        Some("larder; fwd=uri-miss; fwd-status=200; ttl=60; stored")
    );
    h.clock.advance(15);
    let hit = h.get("http://a.test/api/x").await;
    assert_eq!((hit.cache(), hit.text()), ("HIT", "v0"));
    assert_eq!(hit.header("cache-status"), Some("larder; hit; ttl=45"));
    h.clock.advance(40);
    h.clock.advance(6);
    assert_eq!(h.get("http://a.test/api/x").await.cache(), "MISS");
    // Outside the rule the strict shared cache stores nothing without Cache-Control.
    h.get("http://a.test/other").await;
    assert_eq!(h.get("http://a.test/other").await.cache(), "MISS");
    assert_eq!(h.seen.count(), 4);
}

#[tokio::test]
async fn the_origin_wins_unless_the_rule_overrides_it() {
    for cc in ["no-store", "private", "no-cache", "max-age=0", "max-age=5"] {
        for override_origin in [false, true] {
            let rule = Rule::path("/")
                .unwrap()
                .ttl(secs(60))
                .override_origin(override_origin);
            let mut h = harness(with_rules([rule]), move |_, n| {
                reply(200, &[("cache-control", cc)], &format!("v{n}"))
            });
            h.get("http://a.test/p").await;
            h.clock.advance(10);
            let second = h.get("http://a.test/p").await;
            // With the override the rule's 60 s hold; without, the origin's word (5 s) does.
            let expect_hit = override_origin;
            assert_eq!(
                second.cache() == "HIT",
                expect_hit,
                "{cc} override={override_origin}"
            );
        }
    }
}

#[tokio::test]
async fn an_override_never_stores_a_response_that_sets_a_cookie() {
    let rule = Rule::path("/").unwrap().ttl(secs(60)).override_origin(true);
    let mut h = harness(with_rules([rule]), |_, n| {
        reply(
            200,
            &[("cache-control", "no-store"), ("set-cookie", "session=abc")],
            &format!("v{n}"),
        )
    });
    h.get("http://a.test/p").await;
    assert_eq!(h.get("http://a.test/p").await.cache(), "MISS");
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn the_rule_ttl_applies_to_its_statuses_only() {
    let rule = Rule::path("/").unwrap().ttl(secs(60));
    let mut h = harness(with_rules([rule]), |req, _| {
        let status = req.uri().path().trim_start_matches('/').parse().unwrap();
        reply(status, &[], "x")
    });
    for (status, cached) in [
        (200, true),
        (404, true),
        (410, true),
        (302, false),
        (500, false),
    ] {
        let url = format!("http://a.test/{status}");
        h.get(&url).await;
        assert_eq!(h.get(&url).await.cache() == "HIT", cached, "{status}");
    }
    let only_200 = Rule::path("/")
        .unwrap()
        .ttl(secs(60))
        .statuses([StatusCode::OK]);
    let mut h = harness(with_rules([only_200]), |_, _| reply(404, &[], "gone"));
    h.get("http://a.test/x").await;
    assert_eq!(h.get("http://a.test/x").await.cache(), "MISS");
}

#[tokio::test]
async fn the_first_matching_rule_decides_and_bypass_passes_by() {
    let mut h = harness(
        with_rules([
            Rule::path("/api/admin").unwrap().bypass(true),
            Rule::path("/api").unwrap().ttl(secs(60)),
        ]),
        |_, n| reply(200, &[("cache-control", "max-age=60")], &format!("v{n}")),
    );
    h.get("http://a.test/api/admin/users").await;
    let again = h.get("http://a.test/api/admin/users").await;
    assert_eq!(again.cache(), "BYPASS");
    assert_eq!(
        again.header("cache-status"),
        Some("larder; fwd=bypass; fwd-status=200")
    );
    // An escaped path is matched as the key would hold it: no way around the bypass.
    assert_eq!(
        h.get("http://a.test/api/%61dmin/users").await.cache(),
        "BYPASS"
    );
    h.get("http://a.test/api/users").await;
    assert_eq!(h.get("http://a.test/api/users").await.cache(), "HIT");
}

#[tokio::test]
async fn query_keys_all_sorted_some_or_none() {
    let mut h = harness(
        with_rules([
            Rule::path("/only")
                .unwrap()
                .ttl(secs(60))
                .query(QueryKey::Only(vec!["skip".into(), "limit".into()])),
            Rule::path("/except")
                .unwrap()
                .ttl(secs(60))
                .query(QueryKey::Except(vec!["utm_*".into()])),
            Rule::path("/none")
                .unwrap()
                .ttl(secs(60))
                .query(QueryKey::Ignore),
            Rule::path("/").unwrap().ttl(secs(60)),
        ]),
        |req, _| reply(200, &[], req.uri().query().unwrap_or("")),
    );
    h.get("http://a.test/all?b=2&a=1").await;
    assert_eq!(h.get("http://a.test/all?a=1&b=2").await.cache(), "HIT");
    assert_eq!(h.get("http://a.test/all?a=1&b=3").await.cache(), "MISS");

    h.get("http://a.test/only?skip=0&limit=10&cb=1").await;
    let hit = h.get("http://a.test/only?limit=10&skip=0&cb=2").await;
    assert_eq!(hit.cache(), "HIT");
    assert_eq!(
        h.get("http://a.test/only?limit=10&skip=10").await.cache(),
        "MISS"
    );

    h.get("http://a.test/except?q=x&utm_source=a").await;
    assert_eq!(
        h.get("http://a.test/except?utm_medium=b&q=x").await.cache(),
        "HIT"
    );
    assert_eq!(h.get("http://a.test/except?q=y").await.cache(), "MISS");

    h.get("http://a.test/none?x=1").await;
    assert_eq!(h.get("http://a.test/none?y=2").await.cache(), "HIT");
}

#[tokio::test]
async fn a_rule_varies_entries_by_its_headers() {
    let rule = Rule::path("/")
        .unwrap()
        .ttl(secs(60))
        .vary([HeaderName::from_static("x-tenant")]);
    let mut h = harness(with_rules([rule]), |req, _| {
        let tenant = req
            .headers()
            .get("x-tenant")
            .map_or("none", |v| v.to_str().unwrap());
        reply(200, &[], tenant)
    });
    let a = get("http://a.test/p", &[("x-tenant", "a")]);
    let b = get("http://a.test/p", &[("x-tenant", "b")]);
    assert_eq!(h.send(a).await.text(), "a");
    assert_eq!(h.send(b).await.text(), "b");
    let a_again = h.send(get("http://a.test/p", &[("x-tenant", "a")])).await;
    assert_eq!((a_again.cache(), a_again.text()), ("HIT", "a"));
    let none = h.get("http://a.test/p").await;
    assert_eq!((none.cache(), none.text()), ("MISS", "none"));
}

#[tokio::test]
async fn cookies_are_credentials_unless_the_rule_keys_them() {
    let keyed = Rule::path("/keyed")
        .unwrap()
        .ttl(secs(60))
        .key_cookies(["lang"]);
    let plain = Rule::path("/").unwrap().ttl(secs(60));
    let mut h = harness(with_rules([keyed, plain]), |req, n| {
        let cookie = req
            .headers()
            .get("cookie")
            .map_or("", |v| v.to_str().unwrap());
        reply(200, &[], &format!("{cookie} {n}"))
    });
    // A session cookie under a plain rule: never shared, never stored.
    let s1 = get("http://a.test/plain", &[("cookie", "session=alice")]);
    let s2 = get("http://a.test/plain", &[("cookie", "session=bob")]);
    h.send(s1).await;
    let bob = h.send(s2).await;
    assert_eq!(bob.cache(), "MISS");
    assert!(bob.text().starts_with("session=bob"));
    // A keyed cookie: one entry per value.
    let en = || get("http://a.test/keyed", &[("cookie", "lang=en")]);
    let fr = get("http://a.test/keyed", &[("cookie", "lang=fr")]);
    h.send(en()).await;
    let fr = h.send(fr).await;
    assert!(fr.text().starts_with("lang=fr"));
    let en_again = h.send(en()).await;
    assert_eq!(en_again.cache(), "HIT");
    assert!(en_again.text().starts_with("lang=en"));
}

#[tokio::test]
async fn the_rule_stale_window_serves_the_stored_copy_when_the_origin_fails() {
    let rule = Rule::path("/").unwrap().ttl(secs(10)).stale(secs(300));
    let mut h = harness(with_rules([rule]), |_, n| {
        if n == 0 {
            reply(200, &[], "good")
        } else {
            reply(503, &[], "down")
        }
    });
    h.get("http://a.test/p").await;
    h.clock.advance(100);
    let stale = h.get("http://a.test/p").await;
    assert_eq!(
        (stale.status.as_u16(), stale.cache(), stale.text()),
        (200, "STALE", "good")
    );
    assert_eq!(
        stale.header("cache-status"),
        Some("larder; fwd=stale; fwd-status=503; ttl=-90")
    );
    h.clock.advance(300);
    let gone = h.get("http://a.test/p").await;
    assert_eq!(gone.status.as_u16(), 503);
}

#[tokio::test]
async fn after_a_failure_the_stale_copy_answers_without_asking_until_the_throttle_ends() {
    let rule = Rule::path("/").unwrap().ttl(secs(10)).stale(secs(3600));
    // The throttle runs on the core's monotonic clock (an operational pause, which stepping the
    // wall clock must not change), not the layer's: a short one, waited out for real.
    let layer = with_rules([rule]).fail_safe_throttle(secs(2));
    let mut h = harness(layer, |_, n| match n {
        0 => reply(200, &[], "good"),
        1 | 2 => reply(503, &[], "down"),
        _ => reply(200, &[], "back"),
    });
    h.get("http://a.test/p").await;
    h.clock.advance(100);
    assert_eq!(h.get("http://a.test/p").await.cache(), "STALE");
    assert_eq!(h.seen.count(), 2, "the failure itself asked the origin");
    // Within the throttle: the stale copy, and the failing origin is left alone.
    for _ in 0..5 {
        let r = h.get("http://a.test/p").await;
        assert_eq!((r.cache(), r.text()), ("STALE", "good"));
        assert!(
            r.header("cache-status")
                .unwrap()
                .contains("detail=fail-safe")
        );
    }
    assert_eq!(h.seen.count(), 2);
    // A reload asks all the same (and the origin still fails).
    let reload = h
        .send(get("http://a.test/p", &[("cache-control", "no-cache")]))
        .await;
    assert_eq!((reload.cache(), reload.text()), ("STALE", "good"));
    assert_eq!(h.seen.count(), 3);
    // Past the throttle one request asks again; the origin is back.
    tokio::time::sleep(Duration::from_millis(2_100)).await;
    let back = h.get("http://a.test/p").await;
    assert_eq!((back.cache(), back.text()), ("MISS", "back"));
    assert_eq!(h.seen.count(), 4);

    // Zero turns it off: every request asks the failing origin.
    let rule = Rule::path("/").unwrap().ttl(secs(10)).stale(secs(3600));
    let mut h = harness(
        with_rules([rule]).fail_safe_throttle(Duration::ZERO),
        |_, n| match n {
            0 => reply(200, &[], "good"),
            _ => reply(503, &[], "down"),
        },
    );
    h.get("http://a.test/p").await;
    h.clock.advance(100);
    for _ in 0..3 {
        assert_eq!(h.get("http://a.test/p").await.cache(), "STALE");
    }
    assert_eq!(h.seen.count(), 4);
}

#[tokio::test]
async fn the_rule_stale_while_revalidate_answers_at_once_and_refreshes() {
    let rule = Rule::path("/")
        .unwrap()
        .ttl(secs(10))
        .stale_while_revalidate(secs(60));
    let mut h = harness(with_rules([rule]), |_, n| reply(200, &[], &format!("v{n}")));
    h.get("http://a.test/p").await;
    h.clock.advance(20);
    let stale = h.get("http://a.test/p").await;
    assert_eq!((stale.cache(), stale.text()), ("STALE", "v0"));
    let fresh = h.get("http://a.test/p").await;
    assert_eq!((fresh.cache(), fresh.text()), ("HIT", "v1"));
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn a_write_rule_invalidates_its_prefixes() {
    let rules = [
        Rule::path("/users")
            .unwrap()
            .methods([Method::POST, Method::PUT, Method::DELETE])
            .invalidate(["/users"]),
        Rule::path("/").unwrap().ttl(secs(600)),
    ];
    let mut h = harness(with_rules(rules), |_, n| reply(200, &[], &format!("v{n}")));
    for url in [
        "http://a.test/users?skip=0&limit=10",
        "http://a.test/users/42",
        "http://a.test/users/42/orders",
        "http://a.test/items/1",
    ] {
        h.get(url).await;
        assert_eq!(h.get(url).await.cache(), "HIT", "{url}");
    }
    let post = h.send(request("POST", "http://a.test/users/42", &[])).await;
    assert_eq!(post.cache(), "BYPASS");
    for url in [
        "http://a.test/users?skip=0&limit=10",
        "http://a.test/users/42",
        "http://a.test/users/42/orders",
    ] {
        assert_eq!(h.get(url).await.cache(), "MISS", "{url}");
    }
    assert_eq!(h.get("http://a.test/items/1").await.cache(), "HIT");
}

#[tokio::test]
async fn purge_by_prefix_takes_the_subtree_only() {
    let mut h = harness(
        with_rules([Rule::path("/").unwrap().ttl(secs(600))]),
        |_, n| reply(200, &[], &format!("v{n}")),
    );
    for url in ["/a", "/a/b?x=1", "/a/b/c/d", "/ab", "/z"] {
        h.get(&format!("http://a.test{url}")).await;
    }
    h.purger.purge_prefix("http://a.test/a").await.unwrap();
    for (url, hit) in [
        ("/a", false),
        ("/a/b?x=1", false),
        ("/a/b/c/d", false),
        ("/ab", true),
        ("/z", true),
    ] {
        let got = h.get(&format!("http://a.test{url}")).await;
        assert_eq!(got.cache() == "HIT", hit, "{url}");
    }
    let too_deep = h.purger.purge_prefix("http://a.test/a/b/c").await;
    assert!(matches!(
        too_deep,
        Err(larder_http::PurgeError::PrefixTooDeep { depth: 2, .. })
    ));
    h.purger.purge_prefix("http://a.test/").await.unwrap();
    assert_eq!(h.get("http://a.test/z").await.cache(), "MISS");
}

#[tokio::test]
async fn purge_by_url_keys_the_query_as_the_rule_does() {
    let rule = Rule::path("/only")
        .unwrap()
        .ttl(secs(60))
        .query(QueryKey::Only(vec!["q".into()]));
    let mut h = harness(with_rules([rule]), |_, n| reply(200, &[], &format!("v{n}")));
    h.get("http://a.test/only?q=1&cb=9").await;
    assert!(
        h.purger
            .purge_url("http://a.test/only?cb=1&q=1")
            .await
            .unwrap()
    );
    assert_eq!(h.get("http://a.test/only?q=1").await.cache(), "MISS");
}

/// Requests that join a fill in flight get what its leader gets: the stale copy at the soft
/// timeout, and the stale copy when the origin fails, without one more origin call each.
#[tokio::test]
async fn followers_of_a_fill_get_the_stale_copy_as_its_leader_does() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    for (soft, failing) in [(Some(Duration::from_millis(50)), false), (None, true)] {
        let calls = std::sync::Arc::new(AtomicUsize::new(0));
        let release = std::sync::Arc::new(tokio::sync::Notify::new());
        let (c, r) = (calls.clone(), release.clone());
        let origin = tower::service_fn(move |_req: http::Request<axum::body::Body>| {
            let (c, r) = (c.clone(), r.clone());
            async move {
                let n = c.fetch_add(1, Ordering::SeqCst);
                if n == 0 {
                    return Ok::<_, std::convert::Infallible>(reply(200, &[], "v0"));
                }
                // Slow, then (in the second round) failing.
                r.notified().await;
                Ok(reply(if failing { 503 } else { 200 }, &[], "v1"))
            }
        });
        let clock = Clock::default();
        let c = clock.clone();
        let mut rule = Rule::path("/").unwrap().ttl(secs(10)).stale(secs(300));
        if let Some(soft) = soft {
            rule = rule.soft_timeout(soft);
        }
        let layer = with_rules([rule]).clock(move || c.now());
        let svc = tower::Layer::layer(&layer, origin);
        let get = |svc| get_once(svc, "http://a.test/p");
        assert_eq!(get(svc.clone()).await.1, "v0");
        clock.advance(20);
        let burst = futures::future::join_all((0..5).map(|_| get(svc.clone())));
        let answered = async {
            if failing {
                // Let every request join the fill, then let the origin fail it.
                tokio::time::sleep(Duration::from_millis(100)).await;
                release.notify_one();
            }
            tokio::time::timeout(Duration::from_secs(5), burst).await
        };
        let answers = answered.await.expect("nobody waits on the held origin");
        for (h, body) in answers {
            assert_eq!(
                (h["x-cache"].to_str().unwrap(), &body[..]),
                ("STALE", &b"v0"[..]),
                "soft {soft:?}, failing {failing}: {:?}",
                h["cache-status"]
            );
        }
        assert_eq!(
            calls.load(Ordering::SeqCst),
            2,
            "one origin call for the five"
        );
        release.notify_one();
    }
}

#[tokio::test]
async fn past_the_soft_timeout_the_stale_copy_answers_and_the_refresh_lands_later() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let calls = std::sync::Arc::new(AtomicUsize::new(0));
    let release = std::sync::Arc::new(tokio::sync::Notify::new());
    let (c, r) = (calls.clone(), release.clone());
    let origin = tower::service_fn(move |_req: http::Request<axum::body::Body>| {
        let (c, r) = (c.clone(), r.clone());
        async move {
            let n = c.fetch_add(1, Ordering::SeqCst);
            if n > 0 {
                // The refresh is slow: it answers when the test says so.
                r.notified().await;
            }
            Ok::<_, std::convert::Infallible>(reply(200, &[], &format!("v{n}")))
        }
    });
    let clock = Clock::default();
    let c = clock.clone();
    let rule = Rule::path("/")
        .unwrap()
        .ttl(secs(10))
        .stale(secs(300))
        .soft_timeout(Duration::from_millis(50));
    let layer = with_rules([rule]).clock(move || c.now());
    let purger = layer.purger();
    let svc = tower::Layer::layer(&layer, origin);
    let get = |svc| get_once(svc, "http://a.test/p");
    assert_eq!(get(svc.clone()).await.1, "v0");
    clock.advance(20);
    // The origin holds the refresh: the request does not wait for it.
    let (h, body) = tokio::time::timeout(Duration::from_secs(5), get(svc.clone()))
        .await
        .expect("answered at the soft timeout");
    assert_eq!(
        (h["x-cache"].to_str().unwrap(), &body[..]),
        ("STALE", &b"v0"[..])
    );
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .ends_with("detail=soft-timeout")
    );
    // The refresh goes on, and is stored when it comes.
    release.notify_one();
    tokio::time::timeout(Duration::from_secs(5), async {
        while purger.fetches_in_flight() > 0 || calls.load(Ordering::SeqCst) < 2 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .unwrap();
    settle().await;
    let (h, body) = get(svc.clone()).await;
    assert_eq!(
        (h["x-cache"].to_str().unwrap(), &body[..]),
        ("HIT", &b"v1"[..])
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn eager_refresh_replaces_a_hot_entry_before_it_goes_stale() {
    let rule = Rule::path("/").unwrap().ttl(secs(100)).eager_refresh(0.5);
    let cache = larder::Cache::new();
    let layer = shared_on(cache.clone()).rules([rule]);
    let mut h = harness(layer, |_, n| reply(200, &[], &format!("v{n}")));
    assert_eq!(h.get("http://a.test/p").await.text(), "v0");
    h.clock.advance(30);
    // Before the refresh point: a plain hit.
    assert_eq!(h.get("http://a.test/p").await.text(), "v0");
    assert_eq!(h.seen.count(), 1);
    h.clock.advance(30);
    // Past it: still answered from the cache at once, and refreshed once behind the scenes.
    let hit = h.get("http://a.test/p").await;
    assert_eq!((hit.cache(), hit.text()), ("HIT", "v0"));
    let next = h.get("http://a.test/p").await;
    assert_eq!((next.cache(), next.text()), ("HIT", "v1"));
    assert_eq!(h.seen.count(), 2);
    assert_eq!(cache.stats().eager_refreshes, 1);
}

#[tokio::test]
async fn cache_status_says_stored_only_when_a_later_request_can_use_it() {
    // Each response as the origin sends it, and what the miss's Cache-Status must say.
    let cases: [(&[(&str, &str)], &str); 5] = [
        (
            &[("cache-control", "max-age=60")],
            "larder; fwd=uri-miss; fwd-status=200; ttl=60; stored",
        ),
        // No rule and no freshness: nothing a later request could use.
        (
            &[],
            "larder; fwd=uri-miss; fwd-status=200; detail=no-freshness",
        ),
        (
            &[("cache-control", "max-age=0")],
            "larder; fwd=uri-miss; fwd-status=200; detail=no-freshness",
        ),
        (
            &[("cache-control", "no-store, max-age=60")],
            "larder; fwd=uri-miss; fwd-status=200; detail=no-store",
        ),
        // Stale at once but revalidatable: stored, and a later request revalidates it.
        (
            &[("cache-control", "max-age=0"), ("etag", "\"v1\"")],
            "larder; fwd=uri-miss; fwd-status=200; ttl=0; stored",
        ),
    ];
    for (headers, says) in cases {
        let mut h = harness(with_rules([]), move |req, _| {
            match req.headers().get("if-none-match") {
                Some(_) => reply(304, &[("etag", "\"v1\"")], ""),
                None => reply(200, headers, "v"),
            }
        });
        let miss = h.get("http://a.test/p").await;
        assert_eq!(miss.header("cache-status"), Some(says), "{headers:?}");
        let next = h.get("http://a.test/p").await;
        // What was said stored answers the next request from the cache (fresh: a hit; stale
        // with a validator: a conditional request to revalidate it); what was not is fetched
        // afresh.
        let next_status = next.header("cache-status").unwrap_or_default().to_owned();
        match says {
            s if s.contains("ttl=60") => assert_eq!((next.cache(), h.seen.count()), ("HIT", 1)),
            s if s.ends_with("stored") => assert_eq!(next.cache(), "REVALIDATED", "{next_status}"),
            _ => assert!(
                next_status.contains("fwd=uri-miss"),
                "{headers:?}: {next_status}"
            ),
        }
    }
}

#[tokio::test]
async fn a_reconfigured_layer_keeps_its_cache_and_applies_new_rules_next() {
    use larder_http::CacheLayer;
    use tower::{Layer, Service, ServiceExt};
    let cache = larder::Cache::new();
    let running = CacheLayer::shared(cache.clone()).rules([Rule::path("/").unwrap().ttl(secs(60))]);
    let purger = running.purger();
    let seen = Seen::default();
    let mut svc = running.layer(origin(
        std::sync::Arc::new(|_: &http::Request<axum::body::Body>, n| {
            reply(200, &[], &format!("call {n}"))
        }),
        seen.clone(),
    ));
    let mut status = async |uri: &str| {
        let resp = svc
            .ready()
            .await
            .unwrap()
            .call(get(uri, &[]))
            .await
            .unwrap();
        let s = resp.headers()["x-cache"].to_str().unwrap().to_owned();
        let _ = axum::body::to_bytes(axum::body::Body::new(resp.into_body()), usize::MAX).await;
        // The store done before the next request, however busy the machine.
        for _ in 0..500 {
            settle().await;
            if purger.fetches_in_flight() == 0 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        s
    };
    status("http://a.test/kept").await;
    assert_eq!(status("http://a.test/kept").await, "HIT");
    let edited = CacheLayer::shared(cache.clone()).rules([
        Rule::path("/kept/private").unwrap().bypass(true),
        Rule::path("/").unwrap().ttl(secs(60)),
    ]);
    assert!(running.reconfigure(&edited).is_empty());
    assert_eq!(
        status("http://a.test/kept").await,
        "HIT",
        "the cache stayed"
    );
    assert_eq!(
        status("http://a.test/kept/private").await,
        "BYPASS",
        "the new rule"
    );
    // What cannot change live is named and keeps its value.
    let other = CacheLayer::shared(cache).max_body_bytes(1 << 10);
    assert_eq!(running.reconfigure(&other), ["max_body"]);
    assert_eq!(running.settings().max_body, 8 << 20);
}
