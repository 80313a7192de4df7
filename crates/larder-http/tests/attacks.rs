//! Attack suite, the Rust layer: the cases every surface runs (tests/attacks/cases.json), here
//! against `CacheLayer` in front of an origin that reflects every request header into its body
//! (as tests/attacks/reflect_app.py does for larder-proxy and larder.asgi). The same cases run
//! against larder-proxy (crates/larder-proxy/tests/attacks.rs) and larder.asgi
//! (crates/larder-py/tests/test_attack_http.py).

mod common;

use common::*;
use larder_http::{CacheLayer, KeyBodies, Rule};
use tower::Layer;

fn cases() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/attacks/cases.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The cases' rules and cookie settings on a shared (RFC 9111) layer.
fn layer(cases: &serde_json::Value) -> CacheLayer {
    let rules: Vec<Rule> = cases["rules"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::from_value(r.clone()).unwrap())
        .collect();
    let ignored: Vec<String> = cases["ignore_cookies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    CacheLayer::shared(larder::Cache::new())
        .rules(rules)
        .ignore_cookies(ignored)
}

/// Every header back in the body, and a count per call, with no Cache-Control (the rules
/// decide); `/admin/...` answers for itself.
fn reflect(req: &http::Request<axum::body::Body>, n: usize) -> http::Response<axum::body::Body> {
    let mut body = format!("{} #{n}\n", req.uri().path());
    for (name, value) in req.headers() {
        body.push_str(&format!(
            "{name}: {}\n",
            String::from_utf8_lossy(value.as_bytes())
        ));
    }
    reply(200, &[("content-type", "text/plain")], &body)
}

#[tokio::test]
async fn no_request_header_poisons_what_the_next_client_gets() {
    let cases = cases();
    let mut h = harness(layer(&cases), reflect);
    let posts_layer = layer(&cases);
    let purger = posts_layer.purger();
    let posts = posts_layer
        .key_bodies()
        .layer(origin(std::sync::Arc::new(reflect), Seen::default()));
    for (i, case) in cases["poisoning"].as_array().unwrap().iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let evil = case["evil"].as_str().unwrap_or("evil");
        let url = format!("http://api.test/poison/{i}");
        let mut attacker: Vec<(&str, &str)> = case["attacker"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        // An absolute target's host wins over a `Host` field that disagrees (refused, 400):
        // send the attacker's `Host` with a path.
        let target = if attacker.iter().any(|(k, _)| *k == "host") {
            format!("/poison/{i}")
        } else {
            attacker.push(("host", "api.test"));
            url.clone()
        };
        let a = h.send(get(&target, &attacker)).await;
        assert_eq!(a.status, 200, "{name}: the attacker's request");
        let v = h.get(&url).await;
        assert_eq!(v.status, 200, "{name}");
        assert!(
            !v.text().contains(evil),
            "{name}: the victim got the attacker's value ({}): {}",
            v.cache(),
            v.text()
        );
        assert_eq!(
            h.get(&url).await.cache(),
            "HIT",
            "{name}: plain requests share"
        );

        // The same as a POST keyed on its body: one question, the attacker asking first.
        let url = format!("http://api.test/ask/{i}");
        let target = target.replace("/poison/", "/ask/");
        let a = ask(&posts, &purger, &target, &attacker).await;
        assert_eq!(a.status, 200, "{name}: the attacker's POST");
        // (That the origin gets the body whole is tests/post_bodies.rs's business.)
        let v = ask(&posts, &purger, &url, &[]).await;
        assert_eq!(v.status, 200, "{name}");
        assert!(
            !v.text().contains(evil),
            "{name}: the victim's POST got the attacker's value ({}): {}",
            v.cache(),
            v.text()
        );
        assert_eq!(
            ask(&posts, &purger, &url, &[]).await.cache(),
            "HIT",
            "{name}: plain POSTs share"
        );
    }
}

/// A POST of one JSON body to `target` through the layer that reads bodies for keys.
async fn ask(
    svc: &KeyBodies<Origin>,
    purger: &larder_http::Purger,
    target: &str,
    headers: &[(&str, &str)],
) -> Got {
    use tower::ServiceExt;
    let question = r#"{"q": "same"}"#;
    let mut req = http::Request::post(target)
        .header("content-type", "application/json")
        .header("content-length", question.len());
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = svc
        .clone()
        .oneshot(req.body(axum::body::Body::from(question)).unwrap())
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX)
        .await
        .unwrap();
    // The store done before the next request, however busy the machine.
    for _ in 0..500 {
        settle().await;
        if purger.fetches_in_flight() == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

#[tokio::test]
async fn no_spelling_of_a_bypassed_route_is_cached() {
    let cases = cases();
    let mut h = harness(layer(&cases), reflect);
    for spelling in cases["bypassed_spellings"].as_array().unwrap() {
        let spelling = spelling.as_str().unwrap();
        for round in 0..2 {
            let got = h.get(&format!("http://api.test{spelling}")).await;
            assert!(
                !matches!(got.cache(), "HIT" | "STALE" | "REVALIDATED"),
                "{spelling} (round {round}) came from the cache"
            );
        }
    }
    // Spellings of one path share its entry, and the origin is sent the canonical path.
    let first = h.get("http://api.test/x/./y//z").await;
    assert_eq!(first.cache(), "MISS");
    assert!(first.text().starts_with("/x/y/z #"), "{}", first.text());
    assert_eq!(h.get("http://api.test/x/y/%7a").await.cache(), "HIT");
    assert_eq!(h.get("http://api.test/q/../x/y/z").await.cache(), "HIT");
}

/// Followers share their leader's deadline (issue 23, point 9). Before: the origin's answer to
/// the leader came just inside the response timeout but was not for sharing (an error marked
/// `no-store`, as a proxy's own 504 is), so each follower fetched alone with a fresh timeout
/// and waited twice as long. Now a follower that must fetch alone gets what is left of the
/// fill's deadline. Virtual time: the durations are exact.
#[tokio::test(start_paused = true)]
async fn a_follower_waits_no_longer_than_its_leaders_deadline() {
    use std::time::Duration;
    use tower::{Service, ServiceExt};
    let timeout = Duration::from_secs(10);
    let layer = CacheLayer::shared(larder::Cache::new()).response_timeout(timeout);
    let origin = tower::service_fn(|_req: http::Request<axum::body::Body>| async {
        tokio::time::sleep(Duration::from_secs(9)).await;
        Ok::<_, std::convert::Infallible>(reply(502, &[("cache-control", "no-store")], "down"))
    });
    let svc = tower::Layer::layer(&layer, origin);
    let status_of = |mut svc: larder_http::CacheService<_>| async move {
        let resp = svc.ready().await.unwrap();
        resp.call(get("http://a.test/x", &[]))
            .await
            .unwrap()
            .status()
    };
    let started = tokio::time::Instant::now();
    let lead = tokio::spawn(status_of(svc.clone()));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let status = status_of(svc.clone()).await;
    let waited = started.elapsed();
    assert_eq!(lead.await.unwrap(), 502);
    assert!(status == 502 || status == 504, "{status}");
    assert!(
        waited <= timeout,
        "the follower waited {waited:?}, past the fill's deadline of {timeout:?}"
    );
}

/// A `no-cache` flood on a hot URL collapses (issue 23, point 8). Before: each `no-cache`
/// request made its own origin call (100 clients, 10 s: 1,000 calls; nginx 0). Now a
/// `no-cache` request shares a fill that began after it arrived: about one call per response
/// time. Virtual time: the origin takes 100 ms, 100 clients reload for 2 s.
#[tokio::test(start_paused = true)]
async fn a_no_cache_flood_costs_one_origin_call_per_response_time() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;
    use tower::{Service, ServiceExt};
    for (ignore, most) in [(false, 2 * 20 + 2), (true, 1)] {
        let calls = Arc::new(AtomicUsize::new(0));
        let counted = calls.clone();
        let origin = tower::service_fn(move |_req: http::Request<axum::body::Body>| {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                Ok::<_, std::convert::Infallible>(reply(
                    200,
                    &[("cache-control", "max-age=600")],
                    &format!("version {n}"),
                ))
            }
        });
        let rule = Rule::path("/").unwrap().ignore_client_no_cache(ignore);
        let layer = CacheLayer::shared(larder::Cache::new()).rules([rule]);
        let svc = tower::Layer::layer(&layer, origin);
        let end = tokio::time::Instant::now() + Duration::from_secs(2);
        let mut clients = tokio::task::JoinSet::new();
        for c in 0..100 {
            let mut svc = svc.clone();
            clients.spawn(async move {
                let mut answered = 0;
                while tokio::time::Instant::now() < end {
                    let headers: &[(&str, &str)] = if c % 2 == 0 {
                        &[("cache-control", "no-cache")]
                    } else {
                        &[("pragma", "no-cache")]
                    };
                    let resp = svc
                        .ready()
                        .await
                        .unwrap()
                        .call(get("http://a.test/hot", headers))
                        .await
                        .unwrap();
                    assert_eq!(resp.status(), 200);
                    let _ =
                        axum::body::to_bytes(axum::body::Body::new(resp.into_body()), usize::MAX)
                            .await;
                    answered += 1;
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                answered
            });
        }
        let mut answered = 0;
        while let Some(n) = clients.join_next().await {
            answered += n.unwrap();
        }
        let calls = calls.load(Ordering::SeqCst);
        eprintln!("ignore_client_no_cache {ignore}: {calls} origin calls for {answered} reloads");
        assert!(
            calls <= most,
            "ignore_client_no_cache {ignore}: {calls} origin calls for {answered} reloads in 2 s"
        );
        assert!(answered >= 100 * 2, "{answered}");
    }
}
