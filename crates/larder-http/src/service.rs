//! The [`CacheService`]: sorts each request into bypass, unsafe (invalidating) or cacheable, and
//! answers fresh memory hits without leaving `call`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::header;
use http::request::Parts;
use http::{HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body;
use larder::Cache;
use larder::private::ReadEvent;
use tokio::runtime::Handle;
use tower_service::Service;

use crate::body::{BoxError, CacheBody};
use crate::budget::Budget;
use crate::coalesce::Recordings;
use crate::config::Config;
use crate::directives::CacheControl;
use crate::fill;
use crate::forward::forward;
use crate::future::ResponseFuture;
use crate::headers::{CacheStatus, Outcome};
use crate::host::{self, BadHost, RequestHost};
use crate::key;
use crate::policy::{self, Credentials, Verdict};
use crate::recording::Limits;
use crate::rule::Rule;
use crate::stats::{Counters, Event};
use crate::stored::{CachedResponse, Stored};

/// How much of a streaming (no longer kept) body a recording may hold ahead of its slowest
/// reader: enough to keep a fast client busy, small enough to multiply by every connection.
const STREAM_WINDOW: usize = 32 << 10;

/// The store gate's size: the largest body stored, at least 1 MiB, within a semaphore's range.
pub(crate) fn gate_permits(max_body: usize) -> usize {
    max_body.clamp(1 << 20, u32::MAX as usize)
}

/// What every service built from one layer shares: the cache, the settings, the fetches in flight.
pub(crate) struct Shared {
    pub cache: Cache,
    /// The layer's settings: what a request no rule matches gets.
    pub config: Arc<Config>,
    /// Each rule with the settings a request it matches gets.
    rules: Vec<(Rule, Arc<Config>)>,
    pub recordings: Arc<Recordings>,
    /// URLs whose responses were not storable just now (hit-for-pass).
    pub passes: crate::pass::Passes,
    pub budget: Arc<Budget>,
    pub counters: Arc<Counters>,
    /// Bytes of bodies being stored at once (see `write::StoreJob::turn`).
    pub store_gate: Arc<tokio::sync::Semaphore>,
}

impl Shared {
    pub fn new(base: &Cache, config: Config) -> Self {
        Self {
            cache: base.namespace(config.namespace.clone()),
            recordings: Arc::default(),
            passes: crate::pass::Passes::default(),
            budget: Budget::new(config.recording_budget),
            counters: Arc::new(Counters::new(&config.namespace)),
            store_gate: Arc::new(tokio::sync::Semaphore::new(gate_permits(config.max_body))),
            rules: config
                .rules
                .iter()
                .map(|rule| (rule.clone(), Arc::new(config.with_rule(rule))))
                .collect(),
            config: Arc::new(config),
        }
    }

    /// The settings for a request: the first matching rule's, else the layer's.
    pub fn config_for(&self, method: &Method, path: &str) -> &Arc<Config> {
        if self.rules.is_empty() {
            return &self.config;
        }
        let path = key::normalized_path(path);
        self.rules
            .iter()
            .find(|(rule, _)| rule.methods.contains(method) && rule.matches_path(&path))
            .map_or(&self.config, |(_, config)| config)
    }

    /// The host keys use for a request to `host`: the fixed one if set; none for a conflict.
    pub fn key_host<'a>(&'a self, host: &'a RequestHost) -> Option<&'a str> {
        match (&self.config.fixed_host, host) {
            (Some((fixed, _)), _) => Some(fixed),
            (None, RequestHost::Named(h)) => Some(h),
            (None, RequestHost::Conflicting) => None,
        }
    }

    /// The primary key of a request whose host is `host`, under the settings `cfg` (its
    /// rule's); `None` to pass it by uncached.
    pub fn primary_key(&self, cfg: &Config, parts: &Parts, host: &RequestHost) -> Option<String> {
        match &cfg.key_fn {
            Some(f) => f(parts),
            None => key::primary_key(self.key_host(host)?, &parts.uri, &cfg.query),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            cap: self.config.max_body,
            window: STREAM_WINDOW,
            finish_unread_below: self.config.finish_unread_below,
        }
    }
}

/// A tower [`Service`] that answers requests from a larder [`Cache`] where RFC 9111 (or the app's
/// ttl, in application mode) allows, and calls the inner service otherwise. Built by
/// [`CacheLayer`](crate::CacheLayer).
///
/// ```
/// use std::convert::Infallible;
/// use http::{Request, Response};
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let origin = tower::service_fn(|_req: Request<String>| async {
///     Ok::<_, Infallible>(Response::builder().header("cache-control", "max-age=60").body(String::from("hi")).unwrap())
/// });
/// let mut svc = larder_http::CacheLayer::shared(larder::Cache::new()).layer(origin);
/// let req = || Request::get("http://example.test/").body(String::new()).unwrap();
/// std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
/// assert_eq!(svc.call(req()).await.unwrap().headers()["x-cache"], "MISS");
/// # tokio::time::sleep(std::time::Duration::from_millis(10)).await; // the body is stored by a task
/// std::future::poll_fn(|cx| svc.poll_ready(cx)).await.unwrap();
/// assert_eq!(svc.call(req()).await.unwrap().headers()["x-cache"], "HIT");
/// # }
/// ```
pub struct CacheService<S> {
    pub(crate) inner: S,
    pub(crate) shared: Arc<Shared>,
}

impl<S: Clone> Clone for CacheService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            shared: self.shared.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .field("config", &self.shared.config)
            .finish()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for CacheService<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    type Response = Response<CacheBody<ResB>>;
    type Error = S::Error;
    type Future = ResponseFuture<ResB, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        // The clone takes the place of the service that was made ready; the ready one serves
        // this request (tower's usual dance).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        let (mut parts, body) = req.into_parts();

        let host = match host::request_host(&parts) {
            Ok(host) => host,
            Err(bad) => {
                shared.counters.incr(Event::BadRequest);
                return ResponseFuture::ready(bad_request(&shared, bad));
            }
        };
        if let Some((_, fixed)) = &shared.config.fixed_host {
            pin_host(&mut parts, fixed);
        }
        // Fills record in a task of their own, and timeouts need tokio's timer: outside a
        // runtime the layer steps aside rather than panic.
        let Ok(rt) = Handle::try_current() else {
            warn_no_runtime();
            let cfg = shared.config.clone();
            return ResponseFuture::running(forward(shared, cfg, inner, parts, body, None));
        };
        let cfg = shared.config_for(&parts.method, parts.uri.path()).clone();
        if !matches!(parts.method, Method::GET | Method::HEAD) {
            let unsafe_method = !matches!(parts.method, Method::OPTIONS | Method::TRACE);
            let invalidate = unsafe_method.then_some(host);
            return ResponseFuture::running(forward(shared, cfg, inner, parts, body, invalidate));
        }
        let key = match bypass_reason(&parts) {
            None if !cfg.bypass => shared.primary_key(&cfg, &parts, &host),
            _ => None,
        };
        let Some(key) = key else {
            return ResponseFuture::running(forward(shared, cfg, inner, parts, body, None));
        };

        let request_cc = CacheControl::of_request(&parts.headers);
        if let Some(hit) = fresh_memory_hit(&shared, &cfg, &key, &parts, &request_cc) {
            return ResponseFuture::ready(hit);
        }
        ResponseFuture::running(fill::respond(
            shared, cfg, rt, inner, parts, body, key, request_cc,
        ))
    }
}

/// RFC 9112 §3.2: a request with no valid `Host`, or more than one, is answered 400 and goes
/// no further.
fn bad_request<B>(shared: &Shared, bad: BadHost) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(Bytes::from(format!(
        "bad request: {}\n",
        bad.reason()
    ))));
    *response.status_mut() = StatusCode::BAD_REQUEST;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    crate::headers::mark(
        headers,
        &shared.config,
        Outcome::from(CacheStatus::Bypass).detail("bad-request"),
    );
    response
}

/// With a fixed host, the service sees the host its responses are keyed under, whatever the
/// client sent: the `Host` field is set to it and an absolute target loses its authority.
fn pin_host(parts: &mut Parts, fixed: &HeaderValue) {
    if parts.uri.authority().is_some()
        && let Some(pq) = parts.uri.path_and_query()
        && let Ok(uri) = pq.as_str().parse::<Uri>()
    {
        parts.uri = uri;
    }
    parts.headers.insert(header::HOST, fixed.clone());
}

fn warn_no_runtime() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "larder-http: called outside a tokio runtime; passing requests by the cache uncached"
        );
    }
}

/// Requests the cache stays out of: partial content, protocol upgrades (WebSocket), method and
/// path overrides that frameworks may honour (a GET the app treats as a POST, or as another URL,
/// must not be stored under this key), and GETs with a body.
fn bypass_reason(parts: &Parts) -> Option<&'static str> {
    let h = &parts.headers;
    if h.contains_key(header::RANGE) {
        return Some("range");
    }
    if h.contains_key(header::UPGRADE) {
        return Some("upgrade");
    }
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        if h.contains_key(name) {
            return Some("method override");
        }
    }
    // Frameworks that rewrite the path from these would answer for another URL than the key's.
    for name in ["x-original-url", "x-rewrite-url"] {
        if h.contains_key(name) {
            return Some("path override");
        }
    }
    // A GET with a body ("fat GET") may be answered from the body, which is not in the key.
    let has_body = h.contains_key(header::TRANSFER_ENCODING)
        || h.get(header::CONTENT_LENGTH)
            .is_some_and(|v| v.as_bytes() != b"0");
    if has_body {
        return Some("request body");
    }
    None
}

/// The synchronous hit path: a response in the memory tier, fresh for this request.
fn fresh_memory_hit<B>(
    shared: &Shared,
    cfg: &Config,
    key: &str,
    parts: &Parts,
    request_cc: &CacheControl,
) -> Option<Response<CacheBody<B>>> {
    let found = match shared.cache.get::<Stored>(key).try_ready() {
        Ok(Ok(Some(found))) => found,
        _ => return None,
    };
    let response = match &*found {
        // Stored for requests without keyed inputs: not this request's variant.
        Stored::Response(_) if cfg.has_keyed_inputs(&parts.headers) => return None,
        Stored::Response(r) => r.clone(),
        Stored::Variants(index) => {
            let variant = key::variant_key(key, index.nonce, index.varied(), &parts.headers);
            match shared.cache.get::<Stored>(&variant).try_ready() {
                Ok(Ok(Some(v))) => v.response()?,
                _ => return None,
            }
        }
    };
    let now = cfg.now_ms();
    let credentials = Credentials::of(&parts.headers, cfg);
    match policy::judge(&response, request_cc, credentials, now) {
        Verdict::Fresh => Some(serve(shared, &response, parts, CacheStatus::Hit, now)),
        Verdict::StaleAllowed => Some(serve(shared, &response, parts, CacheStatus::Stale, now)),
        _ => None,
    }
}

/// A stored response as it answers `parts`: a 304 when the client's validators match, no body
/// for HEAD, `Age` and the status header set.
pub(crate) fn serve<B>(
    shared: &Shared,
    stored: &CachedResponse,
    parts: &Parts,
    outcome: impl Into<Outcome>,
    now_ms: u64,
) -> Response<CacheBody<B>> {
    let (code, mut headers, body) = if crate::conditional::not_modified(&parts.headers, stored) {
        (
            http::StatusCode::NOT_MODIFIED,
            crate::conditional::not_modified_headers(&stored.headers),
            Bytes::new(),
        )
    } else if parts.method == Method::HEAD {
        (stored.status, stored.headers.clone(), Bytes::new())
    } else {
        (stored.status, stored.headers.clone(), stored.body.clone())
    };
    let age = stored.age(now_ms);
    let outcome: Outcome = outcome.into();
    if outcome.status == CacheStatus::Stale {
        larder::private::count(&shared.cache, ReadEvent::StaleServed);
    }
    let outcome = Outcome {
        age: Some(age),
        ttl: Some(stored.lifetime as i64 - age as i64),
        ..outcome
    };
    crate::headers::mark(&mut headers, &shared.config, outcome);
    let mut response = Response::new(CacheBody::full(body));
    *response.status_mut() = code;
    *response.headers_mut() = headers;
    response
}
