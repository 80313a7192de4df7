//! Cache poisoning: one client's request headers, outside the key, must never change what another
//! client is served. Each test sends an attacker's request first, then a victim's plain request,
//! against an origin that honours the attacker's header.

mod common;

use common::*;

const URL: &str = "http://api.test/page";

/// An origin that lets several request headers change its answer, as real frameworks do.
fn origin_honouring_everything(
    req: &http::Request<axum::body::Body>,
    _: usize,
) -> http::Response<axum::body::Body> {
    let h = req.headers();
    let cacheable = [("cache-control", "max-age=60"), ("etag", "\"page\"")];
    if h.contains_key("if-none-match") {
        return reply(304, &cacheable, "");
    }
    if h.contains_key("range") {
        return reply(
            206,
            &[
                ("cache-control", "max-age=60"),
                ("content-range", "bytes 0-1/6"),
            ],
            "EV",
        );
    }
    for name in ["x-http-method-override", "x-original-url", "content-length"] {
        if h.contains_key(name) {
            return reply(200, &cacheable, "EVIL");
        }
    }
    let host = h.get("host").map_or("", |v| v.to_str().unwrap());
    if host.contains("evil") {
        return reply(200, &cacheable, "EVIL");
    }
    reply(200, &cacheable, "normal")
}

async fn victim_after(attacker: http::Request<axum::body::Body>) -> (Got, Got, usize) {
    let mut h = harness(shared(), origin_honouring_everything);
    let a = h.send(attacker).await;
    let v = h.get(URL).await;
    let calls = h.seen.count();
    (a, v, calls)
}

#[tokio::test]
async fn a_conditional_request_never_stores_a_304_for_others() {
    let (a, v, calls) = victim_after(get(URL, &[("if-none-match", "\"page\"")])).await;
    assert_eq!(
        calls, 1,
        "the origin never saw the client's validator; the 200 was stored"
    );
    assert_eq!(
        a.status, 304,
        "the attacker's own validator is answered from the stored 200"
    );
    assert_eq!((v.status.as_u16(), v.text()), (200, "normal"));
}

#[tokio::test]
async fn a_range_request_is_not_stored() {
    let (a, v, _) = victim_after(get(URL, &[("range", "bytes=0-1")])).await;
    assert_eq!(a.cache(), "BYPASS");
    assert_eq!((v.status.as_u16(), v.text()), (200, "normal"));
}

#[tokio::test]
async fn method_and_path_overrides_bypass_the_cache() {
    for name in ["x-http-method-override", "x-original-url"] {
        let (a, v, _) = victim_after(get(URL, &[(name, "/admin")])).await;
        assert_eq!((a.cache(), a.text()), ("BYPASS", "EVIL"));
        assert_eq!(v.text(), "normal", "{name}");
    }
}

#[tokio::test]
async fn a_get_with_a_body_bypasses_the_cache() {
    let mut req = get(URL, &[("content-length", "4")]);
    *req.body_mut() = axum::body::Body::from("evil");
    let (a, v, _) = victim_after(req).await;
    assert_eq!(a.cache(), "BYPASS");
    assert_eq!(v.text(), "normal");
}

#[tokio::test]
async fn a_host_header_that_disagrees_with_the_target_is_not_cached() {
    let (a, v, _) = victim_after(get(URL, &[("host", "evil.test")])).await;
    assert_eq!(a.cache(), "BYPASS");
    assert_eq!(v.text(), "normal");
}

#[tokio::test]
async fn another_host_gets_another_key() {
    let mut h = harness(shared(), origin_honouring_everything);
    h.send(get("/page", &[("host", "evil.test")])).await;
    let v = h.send(get("/page", &[("host", "api.test")])).await;
    assert_eq!((v.cache(), v.text()), ("MISS", "normal"));
}

#[tokio::test]
async fn request_directives_affect_only_their_own_request() {
    let mut h = harness(shared(), |_, n| {
        reply(200, &[("cache-control", "max-age=60")], &format!("v{n}"))
    });
    h.get(URL).await;
    for cc in ["no-store", "max-age=0, min-fresh=999", "only-if-cached"] {
        h.send(get(URL, &[("cache-control", cc)])).await;
    }
    let v = h.get(URL).await;
    assert_eq!(v.cache(), "HIT");
    assert!(
        v.text() == "v0" || v.text() == "v1",
        "a refetch may refresh the entry, never empty it"
    );
    assert_eq!(v.body.len(), 2);
}

#[tokio::test]
async fn a_head_request_never_stores_an_empty_body_for_gets() {
    let mut h = harness(shared(), origin_honouring_everything);
    h.send(request("HEAD", URL, &[])).await;
    let v = h.get(URL).await;
    assert_eq!(v.text(), "normal");
}

#[tokio::test]
async fn unkeyed_headers_the_origin_declares_in_vary_split_the_entry() {
    let mut h = harness(shared(), |req, _| {
        let lang = req
            .headers()
            .get("accept-language")
            .map_or("en", |v| v.to_str().unwrap())
            .to_owned();
        reply(
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept-language")],
            &lang,
        )
    });
    h.send(get(URL, &[("accept-language", "xx-evil")])).await;
    let v = h.get(URL).await;
    assert_eq!(v.text(), "en");
}

#[tokio::test]
async fn repeated_query_names_in_another_order_do_not_share_an_entry() {
    let mut h = harness(shared(), |req, _| {
        // Like many frameworks: the first value of `id` wins.
        let first = req
            .uri()
            .query()
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        reply(200, &[("cache-control", "max-age=60")], &first)
    });
    h.get("http://api.test/p?id=evil&id=1").await;
    let v = h.get("http://api.test/p?id=1&id=evil").await;
    assert_eq!(v.text(), "id=1");
}

// Issue 15: keys that cannot collide, and inputs outside the key that cannot change what another
// client receives. Each attack runs against an origin that reflects the attacker's input into a
// cacheable response, attacker first, victim second.

/// An origin that builds its page from whatever the request says about where it was sent, who
/// sent it and how: as frameworks do for absolute links, redirects and greetings.
fn reflecting_origin(
    req: &http::Request<axum::body::Body>,
    _: usize,
) -> http::Response<axum::body::Body> {
    let h = req.headers();
    let get = |n: &str| h.get(n).map_or("-", |v| v.to_str().unwrap_or("?"));
    let body = format!(
        "host={} xfh={} xh={} fwd={} proto={} cookie={} auth={}",
        get("host"),
        get("x-forwarded-host"),
        get("x-host"),
        get("forwarded"),
        get("x-forwarded-proto"),
        get("cookie"),
        get("authorization"),
    );
    reply(200, &[("cache-control", "max-age=60")], &body)
}

/// The page a request for `URL` (absolute form, so no `Host` line) gets with nothing added.
const CLEAN: &str = "host=- xfh=- xh=- fwd=- proto=- cookie=- auth=-";

#[tokio::test]
async fn a_host_carrying_a_path_is_refused_and_poisons_nothing() {
    let mut h = harness(shared(), reflecting_origin);
    // The finding: `GET /page` with `Host: api.test/victim` was stored as `/victim/page`.
    let attack = h.send(get("/page", &[("host", "api.test/victim")])).await;
    assert_eq!(attack.status, 400);
    assert_eq!(h.seen.count(), 0, "the origin never saw it");
    let victim = h.send(get("/victim/page", &[("host", "api.test")])).await;
    assert_eq!(victim.cache(), "MISS");
    assert!(
        victim.text().starts_with("host=api.test "),
        "{}",
        victim.text()
    );
    for bad in [
        "api.test:80@evil.test",
        "api.test?",
        "evil.test#",
        "api.test:99999",
    ] {
        let r = h.send(get("/page", &[("host", bad)])).await;
        assert_eq!(r.status, 400, "{bad}");
    }
    assert_eq!(h.purger.stats().bad_requests, 5);
}

#[tokio::test]
async fn repeated_hosts_are_refused() {
    let mut h = harness(shared(), reflecting_origin);
    let mut req = get("/page", &[("host", "api.test")]);
    req.headers_mut()
        .append("host", http::HeaderValue::from_static("evil.test"));
    assert_eq!(h.send(req).await.status, 400);
    assert_eq!(h.seen.count(), 0);
}

#[tokio::test]
async fn reflected_forwarding_headers_key_the_entry() {
    for (name, value) in [
        ("x-forwarded-host", "evil.test"),
        ("x-host", "evil.test"),
        ("forwarded", "host=evil.test;proto=http"),
        ("x-forwarded-proto", "http"),
    ] {
        let mut h = harness(shared(), reflecting_origin);
        let attack = h.send(get(URL, &[(name, value)])).await;
        assert!(attack.text().contains("evil") || attack.text().contains("proto=http"));
        let victim = h.get(URL).await;
        assert_eq!(
            victim.text(),
            CLEAN,
            "{name}: the victim got the attacker's page"
        );
        // Both variants are cached, each for its own requests.
        assert_eq!(h.get(URL).await.cache(), "HIT", "{name}");
        let again = h.send(get(URL, &[(name, value)])).await;
        assert_eq!(
            (again.cache(), again.text()),
            ("HIT", attack.text()),
            "{name}"
        );
        assert_eq!(h.seen.count(), 2, "{name}");
        // A purge by URL reaches every variant.
        assert!(h.purger.purge_url(URL).await.unwrap());
        assert_eq!(h.get(URL).await.cache(), "MISS", "{name}");
        assert_eq!(
            h.send(get(URL, &[(name, value)])).await.cache(),
            "MISS",
            "{name}"
        );
    }
}

#[tokio::test]
async fn a_victim_first_then_a_keyed_header_gets_its_own_entry() {
    let mut h = harness(shared(), reflecting_origin);
    assert_eq!(h.get(URL).await.text(), CLEAN);
    let attack = h.send(get(URL, &[("x-forwarded-host", "evil.test")])).await;
    assert_eq!(attack.cache(), "MISS", "the plain entry is not its variant");
    assert!(attack.text().contains("xfh=evil.test"));
    let victim = h.get(URL).await;
    assert_eq!(victim.text(), CLEAN);
}

#[tokio::test]
async fn cookies_are_credentials_unless_the_layer_keys_on_them() {
    let mut h = harness(shared(), reflecting_origin);
    let attack = h.send(get(URL, &[("cookie", "session=attacker")])).await;
    assert!(attack.text().contains("cookie=session=attacker"));
    let victim = h.get(URL).await;
    assert_eq!((victim.cache(), victim.text()), ("MISS", CLEAN));
    // The stored page is not served to a request with a cookie either.
    let other = h.send(get(URL, &[("cookie", "session=other")])).await;
    assert_eq!(other.cache(), "MISS");
    assert!(other.text().contains("session=other"));

    let layer = shared().key_cookies(["lang"]).ignore_cookies(["_ga*"]);
    let mut h = harness(layer, reflecting_origin);
    let fr = h.send(get(URL, &[("cookie", "lang=fr; _ga=1")])).await;
    let en = h.send(get(URL, &[("cookie", "_ga_X=2; lang=en")])).await;
    assert_eq!((fr.cache(), en.cache()), ("MISS", "MISS"));
    let fr2 = h.send(get(URL, &[("cookie", "lang=fr")])).await;
    assert_eq!((fr2.cache(), fr2.text()), ("HIT", fr.text()));
    let none = h.get(URL).await;
    assert_eq!((none.cache(), none.text()), ("MISS", CLEAN));
    let session = h.send(get(URL, &[("cookie", "lang=fr; session=x")])).await;
    assert_eq!(session.cache(), "MISS", "an unkeyed cookie is a credential");
}

#[tokio::test]
async fn a_public_response_is_shared_whatever_the_cookies() {
    let mut h = harness(shared(), |req, _| {
        let cookie = req
            .headers()
            .get("cookie")
            .map_or("-", |v| v.to_str().unwrap());
        reply(
            200,
            &[("cache-control", "public, max-age=60")],
            &format!("made for {cookie}"),
        )
    });
    h.send(get(URL, &[("cookie", "session=a")])).await;
    let victim = h.get(URL).await;
    assert_eq!(
        (victim.cache(), victim.text()),
        ("HIT", "made for session=a"),
        "the origin said public: sharing is its call"
    );
}

#[tokio::test]
async fn authorization_is_not_served_nor_stored_without_the_origins_leave() {
    let mut h = harness(shared(), reflecting_origin);
    let attack = h
        .send(get(URL, &[("authorization", "Bearer attacker")]))
        .await;
    assert!(attack.text().contains("auth=Bearer attacker"));
    let victim = h.get(URL).await;
    assert_eq!((victim.cache(), victim.text()), ("MISS", CLEAN));
    let authed = h.send(get(URL, &[("authorization", "Bearer other")])).await;
    assert_eq!(authed.cache(), "MISS");
}

#[tokio::test]
async fn with_a_fixed_host_every_host_shares_one_entry_and_the_origin_sees_the_fixed_one() {
    let layer = shared().fixed_host("origin.internal:8000");
    let mut h = harness(layer, reflecting_origin);
    let attack = h.send(get("/page", &[("host", "evil.test")])).await;
    assert!(
        attack.text().starts_with("host=origin.internal:8000 "),
        "{}",
        attack.text()
    );
    let victim = h
        .send(get("http://api.test/page", &[("host", "api.test")]))
        .await;
    assert_eq!((victim.cache(), victim.text()), ("HIT", attack.text()));
    assert!(h.purger.purge_url("/page").await.unwrap());
    assert_eq!(
        h.send(get("/page", &[("host", "api.test")])).await.cache(),
        "MISS"
    );
}
