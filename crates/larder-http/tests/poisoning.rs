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
