//! Conformance, rule by rule: given these headers, is the response stored, is it fresh, and how
//! is the next request served? Each test names the RFC 9111 section it checks.

mod common;

use common::*;

const URL: &str = "http://api.test/r";

// §3: what may be stored

#[tokio::test]
async fn s3_a_response_with_max_age_is_stored_and_served_from_cache() {
    let mut h = harness(shared(), |_, n| {
        reply(200, &[("cache-control", "max-age=60")], &format!("v{n}"))
    });
    let a = h.get(URL).await;
    let b = h.get(URL).await;
    assert_eq!((a.cache(), b.cache()), ("MISS", "HIT"));
    assert_eq!(b.text(), "v0");
    assert_eq!(h.seen.count(), 1);
}

#[tokio::test]
async fn s3_no_store_and_private_are_never_stored_in_either_mode() {
    for cc in [
        "no-store",
        "private",
        "max-age=60, no-store",
        "max-age=60, private",
    ] {
        for layer in [shared(), app(60)] {
            let mut h = harness(layer, move |_, _| reply(200, &[("cache-control", cc)], "x"));
            h.get(URL).await;
            assert_eq!(h.get(URL).await.cache(), "MISS", "{cc}");
            assert_eq!(h.seen.count(), 2, "{cc}");
        }
    }
}

#[tokio::test]
async fn s3_request_no_store_forbids_storing_that_response() {
    let mut h = harness(shared(), |_, _| {
        reply(200, &[("cache-control", "max-age=60")], "x")
    });
    h.send(get(URL, &[("cache-control", "no-store")])).await;
    h.get(URL).await;
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn s3_without_explicit_freshness_or_validator_a_shared_cache_stores_nothing() {
    let mut h = harness(shared(), |_, _| reply(200, &[], "x"));
    h.get(URL).await;
    h.get(URL).await;
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn s3_only_understood_final_statuses_are_stored() {
    // 404 with max-age: stored. 500: not heuristically cacheable, but explicit max-age allows it.
    // 206: partial content is never stored here.
    for (status, stored) in [(404, true), (410, true), (206, false), (302, true)] {
        let mut h = harness(shared(), move |_, _| {
            reply(status, &[("cache-control", "max-age=60")], "x")
        });
        h.get(URL).await;
        let second = h.get(URL).await;
        assert_eq!(second.status.as_u16(), status);
        assert_eq!(h.seen.count() == 1, stored, "status {status}");
    }
    // Without explicit freshness, only heuristically cacheable statuses with Last-Modified.
    let lm = http_date(std::time::SystemTime::now() - std::time::Duration::from_secs(10_000));
    for (status, stored) in [(200, true), (404, true), (302, false), (500, false)] {
        let lm = lm.clone();
        let mut h = harness(shared(), move |_, _| {
            reply(status, &[("last-modified", &lm)], "x")
        });
        h.get(URL).await;
        h.get(URL).await;
        assert_eq!(h.seen.count() == 1, stored, "status {status} heuristically");
    }
}

#[tokio::test]
async fn s3_unsafe_methods_are_not_stored() {
    let mut h = harness(shared(), |_, _| {
        reply(200, &[("cache-control", "max-age=60")], "x")
    });
    let a = h.send(request("POST", URL, &[])).await;
    assert_eq!(a.cache(), "BYPASS");
    h.send(request("POST", URL, &[])).await;
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn s3_vary_star_is_never_stored() {
    let mut h = harness(shared(), |_, _| {
        reply(200, &[("cache-control", "max-age=60"), ("vary", "*")], "x")
    });
    h.get(URL).await;
    h.get(URL).await;
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn s3_1_hop_by_hop_fields_are_not_stored() {
    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("connection", "x-hop"),
                ("x-hop", "1"),
                ("x-end", "2"),
            ],
            "x",
        )
    });
    h.get(URL).await;
    let hit = h.get(URL).await;
    assert_eq!(hit.cache(), "HIT");
    assert!(hit.header("x-hop").is_none() && hit.header("connection").is_none());
    assert_eq!(hit.header("x-end"), Some("2"));
}

#[tokio::test]
async fn s3_qualified_private_and_no_cache_strip_the_named_fields() {
    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[
                (
                    "cache-control",
                    "max-age=60, private=\"x-user\", no-cache=\"set-cookie\"",
                ),
                ("x-user", "ada"),
                ("set-cookie", "s=1"),
            ],
            "x",
        )
    });
    let first = h.get(URL).await;
    assert_eq!(
        first.header("x-user"),
        Some("ada"),
        "the first client still gets its own fields"
    );
    let hit = h.get(URL).await;
    assert_eq!(hit.cache(), "HIT");
    assert!(hit.header("x-user").is_none() && hit.header("set-cookie").is_none());
}

// §3.5: Authorization

#[tokio::test]
async fn s3_5_responses_to_authorized_requests_need_public_s_maxage_or_must_revalidate() {
    for (cc, stored) in [
        ("max-age=60", false),
        ("max-age=60, public", true),
        ("s-maxage=60", true),
        ("max-age=60, must-revalidate", true),
    ] {
        let mut h = harness(shared(), move |_, _| {
            reply(200, &[("cache-control", cc)], "secret")
        });
        h.send(get(URL, &[("authorization", "Bearer a")])).await;
        let other = h.send(get(URL, &[("authorization", "Bearer b")])).await;
        assert_eq!(other.cache() == "HIT", stored, "{cc}");
    }
}

#[tokio::test]
async fn s3_5_an_authorized_request_is_not_served_a_response_stored_for_anyone() {
    let mut h = harness(shared(), |_, n| {
        reply(200, &[("cache-control", "max-age=60")], &format!("v{n}"))
    });
    h.get(URL).await;
    let authed = h.send(get(URL, &[("authorization", "Bearer x")])).await;
    assert_eq!(authed.cache(), "MISS");
    assert_eq!(h.seen.count(), 2);
    assert_eq!(
        h.get(URL).await.text(),
        "v0",
        "the stored response is untouched"
    );
}

// §4.1: Vary

#[tokio::test]
async fn s4_1_vary_keeps_one_variant_per_normalized_header_value() {
    let mut h = harness(shared(), |req, _| {
        let accept = req
            .headers()
            .get("accept")
            .map_or("none", |v| v.to_str().unwrap())
            .to_owned();
        reply(
            200,
            &[("cache-control", "max-age=60"), ("vary", "Accept")],
            &accept,
        )
    });
    let json = h.send(get(URL, &[("accept", "application/json")])).await;
    let csv = h.send(get(URL, &[("accept", "text/csv")])).await;
    assert_eq!((json.text(), csv.text()), ("application/json", "text/csv"));
    let json2 = h.send(get(URL, &[("accept", "Application/JSON ")])).await;
    let csv2 = h.send(get(URL, &[("accept", "text/csv")])).await;
    assert_eq!((json2.cache(), json2.text()), ("HIT", "application/json"));
    assert_eq!((csv2.cache(), csv2.text()), ("HIT", "text/csv"));
    let none = h.get(URL).await;
    assert_eq!((none.cache(), none.text()), ("MISS", "none"));
    assert_eq!(h.seen.count(), 3);
}

// §4.2: freshness

#[tokio::test]
async fn s4_2_1_s_maxage_wins_over_max_age_in_a_shared_cache() {
    let mut h = harness(shared(), |_, _| {
        reply(200, &[("cache-control", "max-age=10, s-maxage=100")], "x")
    });
    h.get(URL).await;
    h.clock.advance(50);
    assert_eq!(h.get(URL).await.cache(), "HIT");
    h.clock.advance(60);
    assert_eq!(h.get(URL).await.cache(), "MISS");
}

#[tokio::test]
async fn s4_2_1_expires_minus_date_gives_the_lifetime_and_a_bad_expires_means_stale() {
    let now = std::time::SystemTime::now();
    let date = http_date(now);
    let expires = http_date(now + std::time::Duration::from_secs(30));
    let mut h = harness(shared(), move |_, _| {
        reply(
            200,
            &[("date", &date), ("expires", &expires), ("etag", "\"e\"")],
            "x",
        )
    });
    h.get(URL).await;
    h.clock.advance(20);
    assert_eq!(h.get(URL).await.cache(), "HIT");
    h.clock.advance(20);
    assert_ne!(h.get(URL).await.cache(), "HIT");

    let mut h = harness(shared(), |_, _| {
        reply(200, &[("expires", "0"), ("etag", "\"e\"")], "x")
    });
    h.get(URL).await;
    assert_ne!(h.get(URL).await.cache(), "HIT");
}

#[tokio::test]
async fn s4_2_2_heuristic_freshness_is_a_fraction_of_last_modified_age() {
    let lm = http_date(std::time::SystemTime::now() - std::time::Duration::from_secs(1000));
    let mut h = harness(shared(), move |_, _| {
        reply(200, &[("last-modified", &lm)], "x")
    });
    h.get(URL).await;
    h.clock.advance(90);
    assert_eq!(h.get(URL).await.cache(), "HIT");
    h.clock.advance(20);
    assert_ne!(h.get(URL).await.cache(), "HIT");
}

#[tokio::test]
async fn s4_2_3_age_counts_upstream_age_and_time_in_cache() {
    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[("cache-control", "max-age=600"), ("age", "100")],
            "x",
        )
    });
    h.get(URL).await;
    h.clock.advance(7);
    let hit = h.get(URL).await;
    assert_eq!(hit.header("age"), Some("107"));
    h.clock.advance(600);
    assert_eq!(h.get(URL).await.cache(), "MISS", "age 707 > max-age 600");
}

// §5.2.1: request directives

#[tokio::test]
async fn s5_2_1_request_max_age_min_fresh_and_no_cache_send_it_to_the_origin() {
    let mut h = harness(shared(), |_, n| {
        reply(200, &[("cache-control", "max-age=100")], &format!("v{n}"))
    });
    h.get(URL).await;
    h.clock.advance(30);
    assert_eq!(
        h.send(get(URL, &[("cache-control", "max-age=40")]))
            .await
            .cache(),
        "HIT"
    );
    assert_eq!(
        h.send(get(URL, &[("cache-control", "max-age=20")]))
            .await
            .cache(),
        "MISS"
    );
    h.clock.advance(30);
    assert_eq!(
        h.send(get(URL, &[("cache-control", "min-fresh=80")]))
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(
        h.send(get(URL, &[("cache-control", "no-cache")]))
            .await
            .cache(),
        "MISS"
    );
    assert_eq!(
        h.send(get(URL, &[("pragma", "no-cache")])).await.cache(),
        "MISS"
    );
    assert_eq!(h.seen.count(), 5);
}

#[tokio::test]
async fn s5_2_1_max_stale_accepts_stale_unless_must_revalidate() {
    let mut h = harness(shared(), |_, n| {
        reply(200, &[("cache-control", "max-age=10")], &format!("v{n}"))
    });
    h.get(URL).await;
    h.clock.advance(30);
    let stale = h.send(get(URL, &[("cache-control", "max-stale=60")])).await;
    assert_eq!((stale.cache(), stale.text()), ("STALE", "v0"));
    assert_eq!(
        h.send(get(URL, &[("cache-control", "max-stale=5")]))
            .await
            .cache(),
        "MISS"
    );

    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[("cache-control", "max-age=10, must-revalidate")],
            "x",
        )
    });
    h.get(URL).await;
    h.clock.advance(30);
    assert_eq!(
        h.send(get(URL, &[("cache-control", "max-stale")]))
            .await
            .cache(),
        "MISS"
    );

    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[("cache-control", "max-age=10, proxy-revalidate")],
            "x",
        )
    });
    h.get(URL).await;
    h.clock.advance(30);
    assert_eq!(
        h.send(get(URL, &[("cache-control", "max-stale")]))
            .await
            .cache(),
        "MISS"
    );
}

#[tokio::test]
async fn s5_2_1_7_only_if_cached_gets_504_without_a_stored_response() {
    let mut h = harness(shared(), |_, _| {
        reply(200, &[("cache-control", "max-age=10")], "x")
    });
    let miss = h
        .send(get(URL, &[("cache-control", "only-if-cached")]))
        .await;
    assert_eq!(miss.status, 504);
    assert_eq!(h.seen.count(), 0);
    h.get(URL).await;
    let hit = h
        .send(get(URL, &[("cache-control", "only-if-cached")]))
        .await;
    assert_eq!((hit.status.as_u16(), hit.cache()), (200, "HIT"));
}

// §5.2.2: response directives

#[tokio::test]
async fn s5_2_2_4_no_cache_responses_are_revalidated_on_every_use() {
    let mut h = harness(shared(), |req, _| {
        if req
            .headers()
            .get("if-none-match")
            .is_some_and(|v| v == "\"v1\"")
        {
            return reply(304, &[("etag", "\"v1\"")], "");
        }
        reply(
            200,
            &[("cache-control", "no-cache"), ("etag", "\"v1\"")],
            "body",
        )
    });
    h.get(URL).await;
    let second = h.get(URL).await;
    assert_eq!((second.cache(), second.text()), ("REVALIDATED", "body"));
    assert_eq!(h.seen.last_headers()["if-none-match"], "\"v1\"");
    assert_eq!(h.seen.count(), 2);
}

// §4.3: validation

#[tokio::test]
async fn s4_3_a_stale_entry_is_revalidated_and_a_304_refreshes_it() {
    let mut h = harness(shared(), |req, n| {
        if req.headers().contains_key("if-none-match") {
            return reply(
                304,
                &[
                    ("cache-control", "max-age=10"),
                    ("etag", "\"a\""),
                    ("x-refreshed", &n.to_string()),
                ],
                "",
            );
        }
        reply(
            200,
            &[
                ("cache-control", "max-age=10"),
                ("etag", "\"a\""),
                ("content-length", "4"),
            ],
            "full",
        )
    });
    h.get(URL).await;
    h.clock.advance(15);
    let r = h.get(URL).await;
    assert_eq!(
        (r.cache(), r.text(), r.header("x-refreshed")),
        ("REVALIDATED", "full", Some("1"))
    );
    assert_eq!(r.header("content-length"), Some("4"));
    let hit = h.get(URL).await;
    assert_eq!(
        (hit.cache(), hit.text()),
        ("HIT", "full"),
        "fresh again after the 304"
    );
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn s4_3_revalidation_uses_last_modified_when_there_is_no_etag() {
    let lm = "Tue, 01 Jan 2030 00:00:00 GMT";
    let mut h = harness(shared(), move |req, _| {
        if req
            .headers()
            .get("if-modified-since")
            .is_some_and(|v| v == lm)
        {
            return reply(304, &[], "");
        }
        reply(
            200,
            &[("cache-control", "max-age=10"), ("last-modified", lm)],
            "full",
        )
    });
    h.get(URL).await;
    h.clock.advance(15);
    assert_eq!(h.get(URL).await.cache(), "REVALIDATED");
}

#[tokio::test]
async fn s4_3_a_new_200_on_revalidation_replaces_the_entry() {
    let mut h = harness(shared(), |_, n| {
        reply(
            200,
            &[
                ("cache-control", "max-age=10"),
                ("etag", &format!("\"{n}\"")),
            ],
            &format!("v{n}"),
        )
    });
    h.get(URL).await;
    h.clock.advance(15);
    let r = h.get(URL).await;
    assert_eq!((r.cache(), r.text()), ("MISS", "v1"));
    assert_eq!(h.get(URL).await.text(), "v1");
}

#[tokio::test]
async fn s4_3_2_client_validators_are_answered_with_304_from_cache() {
    let lm = "Tue, 01 Jan 2030 00:00:00 GMT";
    let mut h = harness(shared(), move |_, _| {
        reply(
            200,
            &[
                ("cache-control", "max-age=60"),
                ("etag", "W/\"x\""),
                ("last-modified", lm),
            ],
            "body",
        )
    });
    h.get(URL).await;
    let inm = h.send(get(URL, &[("if-none-match", "\"x\"")])).await;
    assert_eq!(
        (inm.status.as_u16(), inm.cache(), inm.body.len()),
        (304, "HIT", 0)
    );
    assert_eq!(inm.header("etag"), Some("W/\"x\""));
    assert!(inm.header("age").is_some());
    let ims = h.send(get(URL, &[("if-modified-since", lm)])).await;
    assert_eq!(ims.status, 304);
    let changed = h.send(get(URL, &[("if-none-match", "\"y\"")])).await;
    assert_eq!((changed.status.as_u16(), changed.text()), (200, "body"));
    assert_eq!(h.seen.count(), 1);
}

// RFC 5861

#[tokio::test]
async fn rfc5861_stale_while_revalidate_serves_stale_and_refreshes_in_the_background() {
    let mut h = harness(shared(), |_, n| {
        reply(
            200,
            &[("cache-control", "max-age=10, stale-while-revalidate=60")],
            &format!("v{n}"),
        )
    });
    h.get(URL).await;
    h.clock.advance(20);
    let stale = h.get(URL).await;
    assert_eq!((stale.cache(), stale.text()), ("STALE", "v0"));
    settle().await;
    let fresh = h.get(URL).await;
    assert_eq!((fresh.cache(), fresh.text()), ("HIT", "v1"));
    assert_eq!(h.seen.count(), 2);
}

#[tokio::test]
async fn rfc5861_stale_if_error_serves_stale_when_the_origin_fails() {
    let mut h = harness(shared(), |_, n| match n {
        0 => reply(
            200,
            &[("cache-control", "max-age=10, stale-if-error=60")],
            "good",
        ),
        _ => reply(503, &[], "down"),
    });
    h.get(URL).await;
    h.clock.advance(20);
    let r = h.get(URL).await;
    assert_eq!(
        (r.status.as_u16(), r.cache(), r.text()),
        (200, "STALE", "good")
    );
    h.clock.advance(100);
    assert_eq!(
        h.get(URL).await.status,
        503,
        "past the stale-if-error window"
    );

    let mut h = harness(shared(), |_, n| match n {
        0 => reply(
            200,
            &[(
                "cache-control",
                "max-age=10, stale-if-error=60, must-revalidate",
            )],
            "good",
        ),
        _ => reply(503, &[], "down"),
    });
    h.get(URL).await;
    h.clock.advance(20);
    assert_eq!(
        h.get(URL).await.status,
        503,
        "must-revalidate forbids serving stale"
    );
}

// §4.4: invalidation

#[tokio::test]
async fn s4_4_a_successful_unsafe_request_invalidates_its_target_and_locations() {
    let mut h = harness(shared(), |req, n| match *req.method() {
        http::Method::POST => reply(
            201,
            &[
                ("location", "/items/7"),
                ("content-location", "http://other.test/x"),
            ],
            "",
        ),
        http::Method::DELETE => reply(500, &[], ""),
        _ => reply(200, &[("cache-control", "max-age=60")], &format!("v{n}")),
    });
    h.get("http://api.test/items").await;
    h.get("http://api.test/items/7").await;
    h.send(request("DELETE", "http://api.test/items", &[]))
        .await;
    assert_eq!(
        h.get("http://api.test/items").await.cache(),
        "HIT",
        "a failed unsafe request changes nothing"
    );
    h.send(request("POST", "http://api.test/items", &[])).await;
    assert_eq!(h.get("http://api.test/items").await.cache(), "MISS");
    assert_eq!(h.get("http://api.test/items/7").await.cache(), "MISS");
}

// HEAD

#[tokio::test]
async fn head_is_answered_from_a_stored_get_and_a_head_miss_fills_the_cache() {
    let mut h = harness(shared(), |_, _| {
        reply(
            200,
            &[("cache-control", "max-age=60"), ("content-length", "4")],
            "body",
        )
    });
    let head = h.send(request("HEAD", URL, &[])).await;
    assert_eq!((head.cache(), head.body.len()), ("MISS", 0));
    assert_eq!(
        h.seen.last_method(),
        Some(http::Method::GET),
        "a HEAD miss fetches the GET"
    );
    let get = h.get(URL).await;
    assert_eq!((get.cache(), get.text()), ("HIT", "body"));
    let head = h.send(request("HEAD", URL, &[])).await;
    assert_eq!(
        (head.cache(), head.body.len(), head.header("content-length")),
        ("HIT", 0, Some("4"))
    );
    assert_eq!(h.seen.count(), 1);
}

// Application mode

#[tokio::test]
async fn application_mode_ttl_applies_where_the_response_is_silent() {
    let mut h = harness(app(30), |req, _| match req.uri().path() {
        "/short" => reply(200, &[("cache-control", "max-age=5")], "s"),
        _ => reply(200, &[], "x"),
    });
    h.get("/silent").await;
    h.get("/short").await;
    h.clock.advance(10);
    assert_eq!(h.get("/silent").await.cache(), "HIT");
    assert_eq!(
        h.get("/short").await.cache(),
        "MISS",
        "the response's own max-age wins"
    );
    h.clock.advance(30);
    assert_eq!(h.get("/silent").await.cache(), "MISS");
}

#[tokio::test]
async fn application_mode_can_add_a_strong_etag_and_answer_304() {
    let mut h = harness(app(30).etag_from_body(true), |_, _| {
        reply(200, &[], "payload")
    });
    h.get(URL).await;
    let hit = h.get(URL).await;
    let etag = hit
        .header("etag")
        .expect("an ETag from the body")
        .to_owned();
    assert!(etag.starts_with('"'), "strong: {etag}");
    let nm = h.send(get(URL, &[("if-none-match", &etag)])).await;
    assert_eq!(nm.status, 304);
}

#[tokio::test]
async fn set_cookie_responses_are_not_stored_by_default() {
    for layer in [shared(), app(30)] {
        let mut h = harness(layer, |_, _| {
            reply(
                200,
                &[("cache-control", "max-age=60"), ("set-cookie", "sid=1")],
                "x",
            )
        });
        h.get(URL).await;
        assert_eq!(h.get(URL).await.cache(), "MISS");
    }
    let mut h = harness(shared().store_set_cookie(true), |_, _| {
        reply(
            200,
            &[("cache-control", "max-age=60"), ("set-cookie", "sid=1")],
            "x",
        )
    });
    h.get(URL).await;
    assert_eq!(h.get(URL).await.cache(), "HIT");
}

// Headers on the way out

#[tokio::test]
async fn status_header_is_configurable_and_can_be_turned_off() {
    let name = http::HeaderName::from_static("x-larder");
    let mut h = harness(shared().status_header(Some(name)), |_, _| {
        reply(200, &[("cache-control", "max-age=60")], "x")
    });
    h.get(URL).await;
    let hit = h.get(URL).await;
    assert_eq!(hit.header("x-larder"), Some("HIT"));
    assert!(hit.header("x-cache").is_none());
    let mut h = harness(shared().status_header(None), |_, _| {
        reply(200, &[("cache-control", "max-age=60")], "x")
    });
    h.get(URL).await;
    let hit = h.get(URL).await;
    assert!(hit.header("x-cache").is_none());
    assert_eq!(hit.header("age"), Some("0"));
}

// Purge

#[tokio::test]
async fn purge_by_url_key_tag_and_all() {
    let mut h = harness(shared(), |req, _| {
        let tag = if req.uri().path().starts_with("/users") {
            "users"
        } else {
            "other"
        };
        reply(
            200,
            &[("cache-control", "max-age=60"), ("surrogate-key", tag)],
            "x",
        )
    });
    for u in [
        "http://api.test/users?b=2&a=1",
        "http://api.test/users/1",
        "http://api.test/page",
    ] {
        let first = h.get(u).await;
        assert!(
            first.header("surrogate-key").is_none(),
            "the tag header never leaves"
        );
    }
    assert!(
        h.purger
            .purge_url("http://api.test/users?a=1&b=%32")
            .await
            .unwrap()
    );
    assert_eq!(h.get("http://api.test/users?b=2&a=1").await.cache(), "MISS");
    h.purger.purge_tag("users").await;
    assert_eq!(h.get("http://api.test/users/1").await.cache(), "MISS");
    assert_eq!(h.get("http://api.test/page").await.cache(), "HIT");
    assert!(h.purger.purge_key("api.test/page?").await);
    assert_eq!(h.get("http://api.test/page").await.cache(), "MISS");
    h.purger.purge_all().await;
    assert_eq!(h.get("http://api.test/page").await.cache(), "MISS");
    assert!(h.purger.purge_url("http://[bad").await.is_err());
}

#[tokio::test]
async fn purging_a_vary_url_drops_every_variant() {
    let mut h = harness(shared(), |req, n| {
        let accept = req
            .headers()
            .get("accept")
            .map_or("-", |v| v.to_str().unwrap())
            .to_owned();
        reply(
            200,
            &[("cache-control", "max-age=60"), ("vary", "accept")],
            &format!("{accept}{n}"),
        )
    });
    h.send(get(URL, &[("accept", "a")])).await;
    h.send(get(URL, &[("accept", "b")])).await;
    h.purger.purge_url(URL).await.unwrap();
    h.send(get(URL, &[("accept", "a")])).await;
    let b = h.send(get(URL, &[("accept", "b")])).await;
    assert_eq!(
        (b.cache(), b.text()),
        ("MISS", "b3"),
        "the old variant is not found again"
    );
}

#[tokio::test]
async fn custom_key_function_and_namespace() {
    let cache = larder::Cache::new();
    let layer = larder_http::CacheLayer::shared(cache.clone())
        .namespace("pages")
        .key_fn(|parts| (parts.uri.path() != "/nocache").then(|| parts.uri.path().to_owned()));
    let mut h = harness(layer, |_, _| {
        reply(200, &[("cache-control", "max-age=60")], "x")
    });
    h.get("http://a.test/p?x=1").await;
    assert_eq!(
        h.get("http://b.test/p?y=2").await.cache(),
        "HIT",
        "the key is the path alone"
    );
    assert_eq!(h.get("/nocache").await.cache(), "BYPASS");
    assert!(cache.namespace("pages").contains("/p").await);
    assert!(!cache.contains("/p").await);
}
