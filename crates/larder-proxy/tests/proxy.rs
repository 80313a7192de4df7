//! `larder-proxy` in front of an API, as a user runs it: it caches what the origin's headers
//! allow, keys on path and normalized query (whatever the client's host), keeps variants apart,
//! passes errors through, and keeps serving what it stored when the origin goes away.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;

/// An API in the shape of the use cases': a paged list, a report varying on `Accept`, a page.
async fn api() -> (Origin, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let accept = req
                .headers()
                .get("accept")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let host = req
                .headers()
                .get("host")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("")
                .to_owned();
            let query = req.uri().query().unwrap_or("").to_owned();
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                let cacheable = [("cache-control", "public, max-age=60")];
                match path.as_str() {
                    "/users" if query.contains("limit=0") => {
                        full(400, &[], "limit must be positive")
                    }
                    "/users" => full(200, &cacheable, format!("users for {query} via {host}")),
                    "/report" if accept.contains("csv") => full(
                        200,
                        &[("cache-control", "max-age=60"), ("vary", "accept")],
                        "fruit,count\napple,3\n",
                    ),
                    "/report" => full(
                        200,
                        &[("cache-control", "max-age=60"), ("vary", "accept")],
                        "[{\"fruit\":\"apple\",\"count\":3}]",
                    ),
                    "/page" => full(200, &[], "no freshness given"),
                    _ => full(404, &[], "not found"),
                }
            })
        },
    ))
    .await;
    (origin, calls)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_caches_its_upstream_by_its_headers() {
    let (origin, calls) = api().await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    let base = proxy.url("");

    let (s, h, first) = get(&format!("{base}/users?skip=5&limit=3"), &[]).await;
    assert_eq!((s, h["x-cache"].to_str().unwrap()), (200, "MISS"));
    assert!(
        first.ends_with(origin.addr.to_string().as_bytes()),
        "the origin sees its own authority as Host: {first:?}"
    );
    let (_, h, hit) = get(
        &format!("{base}/users?limit=3&skip=5"),
        &[("host", "another-name.test")],
    )
    .await;
    assert_eq!(
        h["x-cache"].to_str().unwrap(),
        "HIT",
        "one origin: any client host shares its entries"
    );
    assert_eq!(hit, first);
    assert!(h.contains_key("age"));

    let (_, _, json) = get(&format!("{base}/report"), &[("accept", "application/json")]).await;
    let (_, h, csv) = get(&format!("{base}/report"), &[("accept", "text/csv")]).await;
    assert_eq!(
        h["x-cache"].to_str().unwrap(),
        "MISS",
        "another Accept is another variant"
    );
    assert!(csv.starts_with(b"fruit,count") && json.starts_with(b"["));
    let (_, h, csv2) = get(&format!("{base}/report"), &[("accept", "text/csv")]).await;
    assert_eq!((h["x-cache"].to_str().unwrap(), csv2), ("HIT", csv));

    let (s, _, _) = get(&format!("{base}/users?limit=0"), &[]).await;
    assert_eq!(s, 400, "errors pass through");
    let (_, h, _) = get(&format!("{base}/page"), &[]).await;
    assert_eq!(
        h["x-cache"].to_str().unwrap(),
        "MISS",
        "no freshness, no heuristic: not stored"
    );
    // And it does not say it was: Cache-Status gives the reason (the same words as larder.asgi).
    let status = h["cache-status"].to_str().unwrap();
    assert!(
        status.ends_with("detail=no-freshness") && !status.contains("stored"),
        "{status}"
    );
    let before = calls.load(Ordering::SeqCst);

    drop(origin);
    let (_, h, still) = get(&format!("{base}/users?skip=5&limit=3"), &[]).await;
    assert_eq!(
        (h["x-cache"].to_str().unwrap(), still),
        ("HIT", first),
        "stored responses outlive the origin"
    );
    let (s, _, _) = get(&format!("{base}/page"), &[]).await;
    assert_eq!(s, 502, "an unreachable upstream is a 502");
    assert_eq!(calls.load(Ordering::SeqCst), before);
}
