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
use tokio::runtime::Handle;
use tower_service::Service;

use crate::body::{BoxError, CacheBody};
use crate::directives::CacheControl;
use crate::fill;
use crate::forward::forward;
use crate::future::ResponseFuture;
use crate::headers::{CacheStatus, Outcome};
use crate::hit::fresh_memory_hit;
use crate::host::{self, BadHost};
use crate::key_bodies::permit::{Refused, Unkeyed};
use crate::key_bodies::{BodyPermit, KeyedBody, with_body_key};
use crate::state::LayerState;
use crate::stats::Event;

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
    pub(crate) state: Arc<LayerState>,
}

impl<S: Clone> Clone for CacheService<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            state: self.state.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for CacheService<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CacheService")
            .field("inner", &self.inner)
            .field("config", &self.state.config())
            .finish()
    }
}

impl<S> CacheService<S> {
    /// Whether to read this request's body before calling the service: `Some` for a POST a
    /// [`key_body`](crate::Rule::key_body) rule keys, which may be read (no credentials, a
    /// declared length within the rule's, room in the budget). Read the body (within the
    /// permit's idle timeout), make a [`KeyedBody`] of it with [`BodyPermit::accept`] or
    /// [`BodyPermit::read`], put that in the request's extensions and send the request with the
    /// same bytes as its body. `None`: send the request as it is; a `key_body` rule's POST
    /// then passes uncached, and this marks it with why. [`CacheLayer::key_bodies`] does all
    /// of this for a body type built from `Bytes`; this is for surfaces that read bodies their
    /// own way.
    ///
    /// [`CacheLayer::key_bodies`]: crate::CacheLayer::key_bodies
    ///
    /// ```
    /// # use std::time::Duration;
    /// # use tower_layer::Layer;
    /// let rule = larder_http::Rule::path("/search").unwrap().ttl(Duration::from_secs(60)).key_body(16);
    /// let svc = larder_http::CacheLayer::shared(larder::Cache::new())
    ///     .rules([rule])
    ///     .layer(tower::service_fn(|_: http::Request<()>| async {
    ///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
    ///     }));
    /// let mut big = http::Request::post("http://example.test/search").header("content-length", "100").body(()).unwrap();
    /// assert!(svc.body_permit(&mut big).is_none(), "past the rule's size: passes uncached");
    /// let mut get = http::Request::get("http://example.test/search").body(()).unwrap();
    /// assert!(svc.body_permit(&mut get).is_none(), "not a POST");
    /// ```
    pub fn body_permit<B>(&self, req: &mut Request<B>) -> Option<BodyPermit> {
        let permit = crate::key_bodies::permit(&self.state, req.method(), req.uri(), req.headers());
        if let Err(Refused::Pass(why)) = &permit {
            req.extensions_mut().insert(*why);
        }
        permit.ok()
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
        let compression = self.state.current().config.compression.clone();
        let out = crate::coding::Outgoing::of(&compression, req.method(), req.headers());
        let state = self.state.clone();
        self.answer(req).coded(out, &state)
    }
}

impl<S> CacheService<S> {
    /// The answer to `req`, before it is coded for its client.
    fn answer<ReqB, ResB>(&mut self, req: Request<ReqB>) -> ResponseFuture<ResB, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqB: Send + 'static,
        ResB: Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        // The clone takes the place of the service that was made ready; the ready one serves
        // this request (tower's usual dance).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        let state = self.state.clone();
        let (mut parts, body) = req.into_parts();

        let host = match host::request_host(&parts) {
            Ok(host) => host,
            Err(bad) => {
                state.counters.incr(Event::BadRequest);
                return ResponseFuture::ready(bad_request(&state, bad));
            }
        };
        if let Some((_, fixed)) = state.fixed_host() {
            pin_host(&mut parts, fixed);
        }
        // Fills record in a task of their own, and timeouts need tokio's timer: outside a
        // runtime the layer steps aside rather than panic.
        let Ok(rt) = Handle::try_current() else {
            warn_no_runtime();
            let cfg = state.current().config.clone();
            return ResponseFuture::running(forward(state, cfg, inner, parts, body, None));
        };
        // One canonical path for the rules, the key and the service (see `path.rs`); a path
        // with none, or whose other spellings would get another rule, passes uncached.
        let route = canonical_target(&mut parts)
            .and_then(|()| state.route(&parts.method, parts.uri.path()));
        let cfg = match &route {
            Ok(cfg) => cfg.clone(),
            Err(_) => state.current().config.clone(),
        };
        // A POST a `key_body` rule covers is a query, looked up by its body, not a write.
        let keyed_post = parts.method == Method::POST && cfg.key_body.is_some() && !cfg.bypass;
        if !matches!(parts.method, Method::GET | Method::HEAD) && !keyed_post {
            let unsafe_method = !matches!(parts.method, Method::OPTIONS | Method::TRACE);
            let invalidate = unsafe_method.then_some(host);
            return ResponseFuture::running(forward(state, cfg, inner, parts, body, invalidate));
        }
        if route.is_err() {
            state.counters.incr(Event::NonCanonical);
            return ResponseFuture::running(forward(state, cfg, inner, parts, body, None));
        }
        let key = if keyed_post {
            let Some(read) = parts.extensions.get::<KeyedBody>() else {
                if parts.extensions.get::<Unkeyed>().is_none() {
                    warn_body_unread();
                    parts.extensions.insert(Unkeyed("body-unread"));
                }
                return ResponseFuture::running(forward(state, cfg, inner, parts, body, None));
            };
            state
                .primary_key(&cfg, &parts, &host)
                .map(|k| with_body_key(k, read))
        } else {
            match bypass_reason(&parts.headers, true) {
                None if !cfg.bypass => state.primary_key(&cfg, &parts, &host),
                _ => None,
            }
        };
        let Some(key) = key else {
            return ResponseFuture::running(forward(state, cfg, inner, parts, body, None));
        };

        let request_cc = CacheControl::of_request_under(&cfg, &parts.headers);
        let hit = fresh_memory_hit(&state, &cfg, &key, &parts, &request_cc);
        // Built only when a fill needs it: a plain hit moves nothing.
        let miss = move || fill::Miss {
            state,
            cfg,
            rt,
            inner,
            parts,
            body,
            key,
        };
        if let Some(hit) = hit {
            if let Some((stored, index)) = hit.refresh {
                fill::refresh_early(miss(), stored, index);
            }
            return ResponseFuture::ready(hit.response);
        }
        ResponseFuture::running(fill::respond(miss(), request_cc))
    }
}

/// An answer the layer gives itself to a request it cannot send on (a bad `Host`, a body that
/// could not be read): `status`, the reason in plain text, the connection closed, and the
/// reason's name in `Cache-Status`.
pub(crate) fn refuse<B>(
    state: &LayerState,
    status: StatusCode,
    reason: impl std::fmt::Display,
    detail: &'static str,
) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(Bytes::from(format!("{reason}\n"))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
    crate::headers::mark(
        headers,
        &state.current().config,
        Outcome::from(CacheStatus::Bypass).detail(detail),
    );
    response
}

/// RFC 9112 §3.2: a request with no valid `Host`, or more than one, is answered 400 and goes
/// no further.
fn bad_request<B>(state: &LayerState, bad: BadHost) -> Response<CacheBody<B>> {
    let reason = format!("bad request: {}", bad.reason());
    refuse(state, StatusCode::BAD_REQUEST, reason, "bad-request")
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

/// Rewrites the request's path to its canonical form, so the service is sent the path the
/// rules matched and the key names; `Err` for a path that has none (it passes uncached, as
/// sent).
fn canonical_target(parts: &mut Parts) -> Result<(), crate::path::Unsafe> {
    let path = parts.uri.path();
    if !path.starts_with('/') {
        // `*` (OPTIONS) and authority-form targets (CONNECT): not paths, never keyed.
        return Ok(());
    }
    let canonical = match crate::path::canonical(path)? {
        std::borrow::Cow::Borrowed(_) => return Ok(()),
        std::borrow::Cow::Owned(p) => p,
    };
    let target = match parts.uri.query() {
        Some(q) => format!("{canonical}?{q}"),
        None => canonical,
    };
    // From a copy (it shares the original's bytes): on an error the request keeps its target.
    let mut uri = http::uri::Parts::from(parts.uri.clone());
    uri.path_and_query = Some(
        target
            .parse()
            .map_err(|_| crate::path::Unsafe("the canonical path is not a URI path"))?,
    );
    parts.uri = Uri::from_parts(uri).map_err(|_| crate::path::Unsafe("not a URI"))?;
    Ok(())
}

fn warn_no_runtime() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "larder-http: called outside a tokio runtime; passing requests by the cache uncached"
        );
    }
}

fn warn_body_unread() {
    static WARNED: AtomicBool = AtomicBool::new(false);
    if !WARNED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            "larder-http: a POST under a key_body rule came without its body read, so it passed \
             uncached: put the layer in with CacheLayer::key_bodies()"
        );
    }
}

/// Requests the cache stays out of: partial content, protocol upgrades (WebSocket), method and
/// path overrides that frameworks may honour (a GET the app treats as a POST, or as another URL,
/// must not be stored under this key), and, with `body`, requests with a body (a "fat GET" may
/// be answered from its body, which is not in the key).
pub(crate) fn bypass_reason(h: &http::HeaderMap, body: bool) -> Option<&'static str> {
    // One pass over the request's few fields, comparing names: cheaper on every hit than
    // hashing each of these names for a lookup.
    for (name, value) in h {
        let why = match name.as_str() {
            "range" => "range",
            "upgrade" => "upgrade",
            "x-http-method-override" | "x-http-method" | "x-method-override" => "method override",
            // Frameworks that rewrite the path from these would answer for another URL than
            // the key's.
            "x-original-url" | "x-rewrite-url" => "path override",
            "transfer-encoding" if body => "request body",
            "content-length" if body && value.as_bytes() != b"0" => "request body",
            _ => continue,
        };
        return Some(why);
    }
    None
}
