//! The `api` example, really started (cargo test builds it), driven over loopback HTTP. (The
//! caching reverse proxy is the `larder-proxy` crate now, tested there.)

use std::time::Duration;

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use larder_testkit::ExampleProcess;

fn free_port() -> u16 {
    larder_testkit::free_port().expect("a free port")
}

fn start(name: &str, args: &[&str], env: &[(&str, String)]) -> ExampleProcess {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    ExampleProcess::start(name, args, &env)
        .unwrap_or_else(|e| panic!("start the {name} example: {e}"))
}

type HttpClient = Client<HttpConnector, Empty<Bytes>>;

async fn get(
    client: &HttpClient,
    url: &str,
    headers: &[(&str, &str)],
) -> (StatusCode, http::HeaderMap, Bytes) {
    let mut req = Request::get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .expect("a response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("a whole body").to_bytes();
    (parts.status, parts.headers, body)
}

async fn wait_up(client: &HttpClient, url: &str) {
    for _ in 0..200 {
        let req = Request::get(url).body(Empty::new()).unwrap();
        if client.request(req).await.is_ok() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("nothing answered on {url}");
}

fn cache_status(h: &http::HeaderMap) -> &str {
    h.get("x-cache").map_or("", |v| v.to_str().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_example_caches_purges_and_streams() {
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();
    let port = free_port();
    let _api = start("api", &[], &[("PORT", port.to_string())]);
    let base = format!("http://127.0.0.1:{port}");
    wait_up(&client, &format!("{base}/report")).await;

    let (_, h, a) = get(&client, &format!("{base}/users?skip=0&limit=2"), &[]).await;
    assert_eq!(cache_status(&h), "MISS");
    let (_, h, b) = get(&client, &format!("{base}/users?limit=2&skip=0"), &[]).await;
    assert_eq!((cache_status(&h), &b), ("HIT", &a));
    let etag = h
        .get("etag")
        .expect("application mode adds an ETag")
        .to_str()
        .unwrap()
        .to_owned();
    let (s, _, _) = get(
        &client,
        &format!("{base}/users?limit=2&skip=0"),
        &[("if-none-match", &etag)],
    )
    .await;
    assert_eq!(s, StatusCode::NOT_MODIFIED);

    let purge = Request::post(format!("{base}/purge/tag/users"))
        .body(Empty::new())
        .unwrap();
    assert_eq!(
        client.request(purge).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let (_, h, _) = get(&client, &format!("{base}/users?limit=2&skip=0"), &[]).await;
    assert_eq!(cache_status(&h), "MISS", "purged by tag");

    let (_, h, body) = get(&client, &format!("{base}/stream"), &[]).await;
    assert_eq!(cache_status(&h), "MISS");
    assert_eq!(body.iter().filter(|b| **b == b'\n').count(), 10);
    let (_, h, again) = get(&client, &format!("{base}/stream"), &[]).await;
    assert_eq!((cache_status(&h), again), ("HIT", body));
}
