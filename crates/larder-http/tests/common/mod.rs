//! A scripted origin behind the layer, a movable clock, and request helpers.
#![allow(dead_code)]

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::body::Body;
use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use larder_http::{CacheLayer, CacheService};
use tower::{Service, ServiceExt};

pub type Handler = Arc<dyn Fn(&Request<Body>, usize) -> Response<Body> + Send + Sync>;

/// What the origin saw: every request's method, URI and headers.
#[derive(Clone, Default)]
pub struct Seen {
    pub requests: Arc<Mutex<Vec<(http::Method, String, HeaderMap)>>>,
}

impl Seen {
    pub fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    pub fn last_headers(&self) -> HeaderMap {
        self.requests
            .lock()
            .unwrap()
            .last()
            .map(|r| r.2.clone())
            .unwrap_or_default()
    }

    pub fn last_method(&self) -> Option<http::Method> {
        self.requests.lock().unwrap().last().map(|r| r.0.clone())
    }
}

/// A clock the test moves by hand.
#[derive(Clone, Default)]
pub struct Clock(Arc<AtomicU64>);

impl Clock {
    pub fn advance(&self, secs: u64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }

    pub fn now(&self) -> SystemTime {
        SystemTime::now() + Duration::from_secs(self.0.load(Ordering::SeqCst))
    }
}

pub type Origin = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// An origin answering with `handler(request, call_number)` (the first call is 0).
pub fn origin(handler: Handler, seen: Seen) -> Origin {
    let calls = Arc::new(AtomicUsize::new(0));
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |req: Request<Body>| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        seen.requests.lock().unwrap().push((
            req.method().clone(),
            req.uri().to_string(),
            req.headers().clone(),
        ));
        let resp = handler(&req, n);
        async move { Ok::<_, Infallible>(resp) }
    }))
}

pub struct Harness {
    pub svc: CacheService<Origin>,
    pub seen: Seen,
    pub clock: Clock,
    pub purger: larder_http::Purger,
}

/// `layer` (its clock replaced by a test clock) in front of an origin answering with `handler`.
pub fn harness(
    layer: CacheLayer,
    handler: impl Fn(&Request<Body>, usize) -> Response<Body> + Send + Sync + 'static,
) -> Harness {
    let clock = Clock::default();
    let c = clock.clone();
    let layer = layer.clock(move || c.now());
    let seen = Seen::default();
    let svc = tower::Layer::layer(&layer, origin(Arc::new(handler), seen.clone()));
    Harness {
        svc,
        seen,
        clock,
        purger: layer.purger(),
    }
}

/// A response with these headers and body.
pub fn reply(status: u16, headers: &[(&str, &str)], body: &str) -> Response<Body> {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Body::from(body.to_owned())).unwrap()
}

pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn cache(&self) -> &str {
        self.headers
            .get("x-cache")
            .map_or("", |v| v.to_str().unwrap())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

impl Harness {
    pub async fn send(&mut self, req: Request<Body>) -> Got {
        let resp = self.svc.ready().await.unwrap().call(req).await.unwrap();
        let (parts, body) = resp.into_parts();
        let body = axum::body::to_bytes(Body::new(body), usize::MAX)
            .await
            .unwrap();
        // Let the recording's task finish storing before the next request.
        settle().await;
        for _ in 0..500 {
            if self.purger.fetches_in_flight() == 0 {
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

    pub async fn get(&mut self, uri: &str) -> Got {
        self.send(get(uri, &[])).await
    }
}

/// Lets spawned tasks (the body pump, its store) run to completion.
pub async fn settle() {
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
}

pub fn get(uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    request("GET", uri, headers)
}

pub fn request(method: &str, uri: &str, headers: &[(&str, &str)]) -> Request<Body> {
    let mut b = Request::builder().method(method).uri(uri);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(Body::empty()).unwrap()
}

pub fn shared() -> CacheLayer {
    CacheLayer::shared(larder::Cache::new())
}

pub fn app(ttl_secs: u64) -> CacheLayer {
    CacheLayer::application(larder::Cache::new(), Duration::from_secs(ttl_secs))
}

pub fn http_date(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// One GET of `uri` through a clone of a layered service: the response's headers and whole body.
pub async fn get_once<S>(mut svc: CacheService<S>, uri: &str) -> (HeaderMap, Bytes)
where
    S: Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let resp = svc
        .ready()
        .await
        .unwrap()
        .call(get(uri, &[]))
        .await
        .unwrap();
    let (parts, body) = resp.into_parts();
    let body = axum::body::to_bytes(Body::new(body), usize::MAX)
        .await
        .unwrap();
    (parts.headers, body)
}
