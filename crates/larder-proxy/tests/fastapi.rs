//! The FastAPI example for real: examples/fastapi/app.py under uvicorn, behind larder-proxy with
//! examples/fastapi/larder.toml, exactly as the README tells FastAPI users to run it.
//!
//! Needs a Python with fastapi, uvicorn and jinja2: `scripts/test.sh` makes one in target/venv;
//! `LARDER_PYTHON` names another.

mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;

/// How many times the app was called for `path` (its own counter, read past the cache).
async fn origin_calls(proxy: &Proxy, path: &str) -> u64 {
    let (_, _, body) = get(&proxy.url("/_test/calls"), &[]).await;
    let calls: serde_json::Value = serde_json::from_slice(&body).unwrap();
    calls[path].as_u64().unwrap_or(0)
}

fn text(b: &Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fastapi_example_behind_larder_proxy() {
    let mut app = Uvicorn::start("examples/fastapi", "app:app", &[("SLOW_SECONDS", "2")]);
    let config = repo_root().join("examples/fastapi/larder.toml");
    let proxy = Proxy::start(app.addr(), &["--config", config.to_str().unwrap()], &[]);

    // 50 concurrent cold requests for the 2-second endpoint: one call to the app.
    let cold: Vec<_> = (0..50)
        .map(|_| {
            let url = proxy.url("/?key=a");
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    for r in cold {
        let (status, _, body) = r.await.unwrap();
        assert_eq!((status, text(&body).as_str()), (200, "true"));
    }
    assert_eq!(origin_calls(&proxy, "/").await, 1);

    // The next request is a hit, far from the app's 2 seconds: the best of three under 50 ms.
    let mut best = Duration::MAX;
    for _ in 0..3 {
        let started = Instant::now();
        let (_, h, _) = get(&proxy.url("/?key=a"), &[]).await;
        best = best.min(started.elapsed());
        assert_eq!(h["x-cache"], "HIT");
    }
    assert!(best < Duration::from_millis(50), "a hit took {best:?}");
    assert_eq!(origin_calls(&proxy, "/").await, 1);

    // Query order (and a parameter the rule does not key on) gives one entry.
    get(&proxy.url("/users?skip=0&limit=10"), &[]).await;
    let (_, h, _) = get(&proxy.url("/users?limit=10&skip=0&_=123"), &[]).await;
    assert_eq!(h["x-cache"], "HIT");
    assert_eq!(origin_calls(&proxy, "/users").await, 1);

    // A POST that changes user 3 drops the user's page and the lists.
    let (_, _, before) = get(&proxy.url("/users/3"), &[]).await;
    assert!(text(&before).contains("user 3"));
    let (_, h, _) = get(&proxy.url("/users/3"), &[]).await;
    assert_eq!(h["x-cache"], "HIT");
    let (status, _, _) = send(
        "POST",
        &proxy.url("/users/3"),
        &[("content-type", "application/json")],
        b"{\"name\": \"renamed\"}",
    )
    .await;
    assert_eq!(status, 200);
    let (_, h, after) = get(&proxy.url("/users/3"), &[]).await;
    assert_eq!(h["x-cache"], "MISS");
    assert!(text(&after).contains("renamed"));
    let (_, h, list) = get(&proxy.url("/users?skip=0&limit=10"), &[]).await;
    assert_eq!(h["x-cache"], "MISS");
    assert!(text(&list).contains("renamed"));

    // The Jinja page is rendered once.
    get(&proxy.url("/page/home"), &[]).await;
    let (_, h, page) = get(&proxy.url("/page/home"), &[]).await;
    assert_eq!(h["x-cache"], "HIT");
    assert!(text(&page).contains("<h1>home</h1>"));

    // The stream reaches the client unbuffered: its first chunk arrives while the app holds the
    // rest back (a proxy that buffered would deliver nothing until the release).
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let resp = client
        .get(proxy.url("/stream").parse().unwrap())
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-cache"], "MISS");
    let mut body = resp.into_body();
    let first = tokio::time::timeout(Duration::from_secs(10), body.frame())
        .await
        .expect("the first chunk before the stream ends")
        .unwrap()
        .unwrap()
        .into_data()
        .unwrap();
    assert_eq!(&first[..], b"chunk 0\n");
    send("POST", &proxy.url("/_test/release"), &[], b"").await;
    let rest = body.collect().await.unwrap().to_bytes();
    assert_eq!(text(&rest), "chunk 1\nchunk 2\nchunk 3\nchunk 4\n");
    // ... and it was recorded: the next client gets it whole from the cache.
    let (_, h, whole) = get(&proxy.url("/stream"), &[]).await;
    assert_eq!(h["x-cache"], "HIT");
    assert_eq!(
        text(&whole),
        "chunk 0\nchunk 1\nchunk 2\nchunk 3\nchunk 4\n"
    );
    assert_eq!(origin_calls(&proxy, "/stream").await, 1);

    // The app dies: what is stored is still served, and a request that insists on a fresh copy
    // (max-age=0) gets the stored one, marked stale, instead of an error.
    app.kill();
    // Age counts in whole seconds: let the list be a second old, so max-age=0 refuses it.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, h, _) = get(&proxy.url("/?key=a"), &[]).await;
    assert_eq!((status, h["x-cache"].to_str().unwrap()), (200, "HIT"));
    let (status, h, list_again) = get(
        &proxy.url("/users?skip=0&limit=10"),
        &[("cache-control", "max-age=0")],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(h["x-cache"], "STALE");
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .contains("fwd=stale; fwd-status=502")
    );
    assert_eq!(list_again, list);
    // Nothing stored: the app's absence is an honest 502.
    let (status, _, _) = get(&proxy.url("/?key=never-seen"), &[]).await;
    assert_eq!(status, 502);
}

/// The example's `/search` (a POST whose question is its JSON body) under its `key_body` rule.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_search_is_cached_by_its_body() {
    let app = Uvicorn::start("examples/fastapi", "app:app", &[("SLOW_SECONDS", "1")]);
    let config = repo_root().join("examples/fastapi/larder.toml");
    let proxy = Proxy::start(app.addr(), &["--config", config.to_str().unwrap()], &[]);
    const JSON: &[(&str, &str)] = &[("content-type", "application/json")];
    let json = JSON;
    let search = |body: &'static [u8], headers: &'static [(&'static str, &'static str)]| {
        let url = proxy.url("/search");
        async move { send("POST", &url, headers, body).await }
    };

    // 20 concurrent askers of one question: one call to the app, one answer for all.
    let asks: Vec<_> = (0..20)
        .map(|_| tokio::spawn(search(br#"{"q": "user 1", "limit": 2}"#, json)))
        .collect();
    let mut answers = Vec::new();
    for a in asks {
        let (status, _, body) = a.await.unwrap();
        assert_eq!(status, 200);
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]));
    assert!(text(&answers[0]).contains("\"q\":\"user 1\""));
    assert_eq!(origin_calls(&proxy, "/search").await, 1);
    let (_, h, again) = search(br#"{"q": "user 1", "limit": 2}"#, json).await;
    assert_eq!(h["x-cache"], "HIT");
    assert_eq!(again, answers[0]);

    // Another question is another call; so is the same one with credentials, every time.
    let (_, h, other) = search(br#"{"q": "user 2", "limit": 2}"#, json).await;
    assert_eq!(h["x-cache"], "MISS");
    assert!(text(&other).contains("\"q\":\"user 2\""));
    for _ in 0..2 {
        let (_, h, _) = search(
            br#"{"q": "user 1", "limit": 2}"#,
            &[
                ("content-type", "application/json"),
                ("authorization", "Bearer t"),
            ],
        )
        .await;
        assert!(
            h["cache-status"]
                .to_str()
                .unwrap()
                .contains("detail=authorization")
        );
    }
    assert_eq!(origin_calls(&proxy, "/search").await, 4);

    // A body past the rule's 64 KiB reaches the app whole, uncached.
    let big = format!(r#"{{"q": "user 3", "pad": "{}"}}"#, "x".repeat(70_000));
    let big: &'static [u8] = big.leak().as_bytes();
    let (status, h, answer) = search(big, json).await;
    assert_eq!(status, 200);
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .contains("detail=body-too-large")
    );
    let size: serde_json::Value = serde_json::from_slice(&answer).unwrap();
    assert!(size["size"].as_u64().unwrap() > 70_000, "{size}");
    // A GET of the URL is not any POST's answer.
    let (status, h, _) = get(&proxy.url("/search"), &[]).await;
    assert_eq!(status, 405);
    assert_ne!(h["x-cache"], "HIT");
}
