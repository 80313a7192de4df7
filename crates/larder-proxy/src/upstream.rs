//! The upstream: a tower service that forwards each request to one origin (http, or https with
//! rustls) over a keep-alive pool, with every wait bounded (connect, response head, the body
//! between chunks, an idle tunnel) and every failure answered with the status that names it: 400
//! for a request body the client botched, 413 for one too large, 502 for an origin that failed,
//! 504 for one that took too long. It adds `Via`, `X-Forwarded-For` and `X-Forwarded-Proto`, and
//! passes `Upgrade` requests (WebSocket) through as a tunnel once the origin agrees.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::uri::{Authority, Scheme};
use http::{HeaderName, HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;

use crate::request_body::RequestBody;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use larder_http::remove_hop_by_hop;
use pin_project_lite::pin_project;
use tower_http::timeout::TimeoutBody;

use crate::BoxError;
use crate::server::ClientAddr;

/// The body of a response from the [`Upstream`].
pub type UpstreamBody = UnsyncBoxBody<Bytes, BoxError>;

/// Why an upstream URL cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UpstreamError {
    /// Not an absolute `http://host[:port]` URL.
    #[error(
        "the upstream must be an absolute http:// URL such as http://127.0.0.1:8000, not {0:?}"
    )]
    NotAbsolute(String),
    /// Neither `http://` nor `https://`.
    #[error("the upstream must be http:// or https://, not {0:?}")]
    Scheme(String),
    /// The CA file cannot be read or holds no certificate.
    #[error("the CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The system's trust roots cannot be loaded.
    #[error("no system trust roots for https: {0}")]
    Roots(String),
}

/// Which certificate authorities an https upstream is checked against.
///
/// ```
/// let roots = larder_proxy::upstream::TrustRoots::CaFile("/etc/ssl/internal-ca.pem".into());
/// # let _ = roots;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TrustRoots {
    /// The system's (default).
    #[default]
    System,
    /// The PEM certificates in this file, and no others.
    CaFile(std::path::PathBuf),
}

/// The upstream's timeouts and buffer bound.
///
/// ```
/// let t = larder_proxy::upstream::Timeouts::default();
/// assert_eq!(t.body_idle, std::time::Duration::from_secs(10));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open a TCP connection (default 5 s).
    pub connect: Duration,
    /// From sending a request to the response head (default 60 s).
    pub response: Duration,
    /// Between two chunks of a response body (default 10 s).
    pub body_idle: Duration,
    /// How long an unused pooled connection is kept (default 30 s).
    pub pool_idle: Duration,
    /// Each pooled connection's read buffer bound (default 32 KiB; at least 8 KiB). It is also
    /// the largest chunk a response body arrives in.
    pub max_buffer: usize,
    /// Idle connections the pool keeps (default 256).
    pub pool_max_idle: usize,
    /// The largest request body forwarded (default 10 MiB): a larger declared one is answered
    /// 413 at once, and a chunked one that grows past it is cut and answered 413.
    pub max_request_body: u64,
    /// A tunnel (an upgraded connection) with no bytes either way for this long is closed
    /// (default 5 minutes).
    pub tunnel_idle: Duration,
    /// Tunnels open at once (default 1,024; the proxy derives a lower one from its descriptor
    /// limit); past it an upgrade is answered 503.
    pub max_tunnels: usize,
    /// Connections to the origin busy at once, tunnels included (default 256; the proxy derives
    /// it from its descriptor limit). A request that finds them all busy waits its turn, within
    /// its response timeout.
    pub max_connections: usize,
    /// Requests waiting for a connection to the origin at once (default 1,024); past it a
    /// request is answered 503 at once instead of queueing.
    pub max_waiting: usize,
}

impl Default for Timeouts {
    fn default() -> Self {
        // The waits larder-http also applies to fills have its defaults.
        let layer = larder_http::LayerSettings::default();
        Self {
            connect: Duration::from_secs(5),
            response: layer.response_timeout,
            body_idle: layer.body_idle_timeout,
            pool_idle: Duration::from_secs(30),
            max_buffer: 32 << 10,
            pool_max_idle: 256,
            max_request_body: 10 << 20,
            tunnel_idle: Duration::from_secs(300),
            max_tunnels: 1024,
            max_connections: 256,
            max_waiting: 1024,
        }
    }
}

/// Forwards requests to one origin: same method, path and query; HTTP/1.1 whatever the client
/// spoke; the origin's `Host`; hop-by-hop fields removed both ways (RFC 9110 §7.6.1).
///
/// ```
/// let upstream = larder_proxy::upstream::Upstream::new(
///     &"http://127.0.0.1:8000".parse().unwrap(),
///     larder_proxy::upstream::Timeouts::default(),
/// ).unwrap();
/// assert_eq!(upstream.authority(), "127.0.0.1:8000");
/// ```
#[derive(Clone)]
pub struct Upstream {
    // One pointer: the service is cloned for every request, hits included.
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    client: Client<HttpsConnector<HttpConnector>, WatchedBody>,
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    /// Shared by every clone: a reload swaps the ones that can change live.
    timeouts: Arc<arc_swap::ArcSwap<Timeouts>>,
    /// Send the client's `Host` (and `X-Forwarded-Host`) instead of the upstream's.
    pass_host: bool,
    via: HeaderValue,
    tunnels: Arc<tokio::sync::Semaphore>,
    /// One permit per connection to the origin that may be busy at once.
    slots: Arc<tokio::sync::Semaphore>,
    /// Requests waiting for a slot now.
    waiting: Arc<std::sync::atomic::AtomicUsize>,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.inner.authority)
            .field("timeouts", &**self.inner.timeouts.load())
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream at `url` (`http://host[:port]` or `https://host[:port]`, checked against
    /// the system's roots; a path is ignored).
    pub fn new(url: &Uri, timeouts: Timeouts) -> Result<Self, UpstreamError> {
        Self::with_roots(url, timeouts, &TrustRoots::System)
    }

    /// An upstream at `url` whose https certificate is checked against `roots`.
    ///
    /// ```
    /// use larder_proxy::upstream::{Timeouts, TrustRoots, Upstream};
    /// let bad = Upstream::with_roots(
    ///     &"https://api.internal".parse().unwrap(),
    ///     Timeouts::default(),
    ///     &TrustRoots::CaFile("/nonexistent.pem".into()),
    /// );
    /// assert!(bad.is_err());
    /// ```
    pub fn with_roots(
        url: &Uri,
        timeouts: Timeouts,
        roots: &TrustRoots,
    ) -> Result<Self, UpstreamError> {
        let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
            return Err(UpstreamError::NotAbsolute(url.to_string()));
        };
        if *scheme != Scheme::HTTP && *scheme != Scheme::HTTPS {
            return Err(UpstreamError::Scheme(url.to_string()));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| UpstreamError::NotAbsolute(url.to_string()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect));
        connector.enforce_http(false);
        let tls = if *scheme == Scheme::HTTPS {
            tls_config(roots)?
        } else {
            // Never used for http://, but the connector type is one for both.
            rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map_err(|e| UpstreamError::Roots(e.to_string()))?
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(connector);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(timeouts.pool_idle)
            // Idle connections hold descriptors too: never more than may be busy.
            .pool_max_idle_per_host(timeouts.pool_max_idle.min(timeouts.max_connections.max(1)))
            .pool_timer(TokioTimer::new())
            .http1_max_buf_size(timeouts.max_buffer.max(8192))
            .build(connector);
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                scheme: scheme.clone(),
                authority: authority.clone(),
                host,
                timeouts: Arc::new(arc_swap::ArcSwap::from_pointee(timeouts)),
                pass_host: false,
                via: HeaderValue::from_static("1.1 larder"),
                tunnels: Arc::new(tokio::sync::Semaphore::new(timeouts.max_tunnels.max(1))),
                slots: Arc::new(tokio::sync::Semaphore::new(timeouts.max_connections.max(1))),
                waiting: Arc::default(),
            }),
        })
    }

    /// Sends the client's `Host` to the origin (and as `X-Forwarded-Host`) instead of the
    /// upstream's authority. Only safe when the cache keys on the client's host too (the layer
    /// without `fixed_host`), or a client could make the origin answer for a host it chose.
    ///
    /// ```
    /// let upstream = larder_proxy::upstream::Upstream::new(
    ///     &"http://127.0.0.1:8000".parse().unwrap(),
    ///     Default::default(),
    /// ).unwrap().pass_host(true);
    /// # let _ = upstream;
    /// ```
    pub fn pass_host(mut self, enabled: bool) -> Self {
        Arc::make_mut(&mut self.inner).pass_host = enabled;
        self
    }

    /// The name this proxy gives itself in `Via` (default `larder`).
    ///
    /// ```
    /// let upstream = larder_proxy::upstream::Upstream::new(
    ///     &"http://127.0.0.1:8000".parse().unwrap(),
    ///     Default::default(),
    /// ).unwrap().via_name("edge-1");
    /// # let _ = upstream;
    /// ```
    pub fn via_name(mut self, name: &str) -> Self {
        if let Ok(v) = HeaderValue::from_str(&format!("1.1 {name}")) {
            Arc::make_mut(&mut self.inner).via = v;
        }
        self
    }

    /// Applies `new`'s waits to the requests that come next (a reload): the response and body
    /// idle timeouts, the request body limit, the tunnel idle timeout and the waiting queue's
    /// length. The connection pool's settings and counts keep their values; the names of those
    /// `new` changes come back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder_proxy::upstream::{Timeouts, Upstream};
    /// let upstream = Upstream::new(&"http://127.0.0.1:8000".parse().unwrap(), Timeouts::default()).unwrap();
    /// let longer = Timeouts { response: Duration::from_secs(90), connect: Duration::from_secs(1), ..Timeouts::default() };
    /// assert_eq!(upstream.set_timeouts(longer), ["connect_timeout"]);
    /// ```
    pub fn set_timeouts(&self, new: Timeouts) -> Vec<&'static str> {
        let now = **self.inner.timeouts.load();
        let mut fixed = Vec::new();
        for (name, differs) in [
            ("connect_timeout", now.connect != new.connect),
            ("pool_idle_timeout", now.pool_idle != new.pool_idle),
            ("pool_max_idle", now.pool_max_idle != new.pool_max_idle),
            (
                "max_connections",
                now.max_connections != new.max_connections,
            ),
            ("max_tunnels", now.max_tunnels != new.max_tunnels),
        ] {
            if differs {
                fixed.push(name);
            }
        }
        self.inner.timeouts.store(Arc::new(Timeouts {
            response: new.response,
            body_idle: new.body_idle,
            max_request_body: new.max_request_body,
            tunnel_idle: new.tunnel_idle,
            max_waiting: new.max_waiting,
            ..now
        }));
        fixed
    }

    /// The origin's `host:port`, which is also the `Host` it is sent.
    pub fn authority(&self) -> &str {
        self.inner.authority.as_str()
    }

    async fn forward(self, req: Request<RequestBody>) -> Response<UpstreamBody> {
        let started = std::time::Instant::now();
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(self.inner.scheme.clone())
            .authority(self.inner.authority.clone())
            .path_and_query(path)
            .build();
        let Ok(uri) = uri else {
            return error(StatusCode::BAD_REQUEST, "bad request target");
        };
        parts.uri = uri;
        let declared = body.size_hint().exact();
        if declared.is_some_and(|len| len > self.inner.timeouts.load().max_request_body) {
            return error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large");
        }
        let client_version = parts.version;
        // The pool speaks HTTP/1.1 to the origin, whether the client spoke HTTP/2 or 1.0.
        parts.version = Version::HTTP_11;
        let has_body = !body.is_end_stream();
        let upgrade = upgrade_of(&parts);
        remove_hop_by_hop(&mut parts.headers);
        self.forwarding_headers(&mut parts, client_version);
        let client_upgrade = match &upgrade {
            Some(protocol) => {
                parts
                    .headers
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                parts.headers.insert(header::UPGRADE, protocol.clone());
                parts.extensions.remove::<hyper::upgrade::OnUpgrade>()
            }
            None => None,
        };
        if has_body && declared.is_none() && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            // hyper's client sends no body for a GET, HEAD or CONNECT without framing headers;
            // a body the client sent is forwarded, framed, whatever the method.
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        // The client's slot goes with the tunnel, if this becomes one; no request keeps it.
        let client_slot = parts
            .extensions
            .remove::<Arc<crate::server::ConnectionSlot>>();
        // One deadline for the wait for a connection and the response head.
        let deadline = tokio::time::Instant::now() + self.inner.timeouts.load().response;
        let slot = match self.slot(deadline).await {
            Ok(slot) => slot,
            Err(response) => return response,
        };
        let state = Arc::new(BodyState::default());
        let body = WatchedBody {
            inner: body,
            state: state.clone(),
            limit: self.inner.timeouts.load().max_request_body,
            seen: 0,
            idle: self.inner.timeouts.load().body_idle,
            stall: None,
        };
        let sent = self.inner.client.request(Request::from_parts(parts, body));
        let result = tokio::time::timeout_at(deadline, sent).await;
        metrics::histogram!("larder_proxy_origin_seconds").record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(resp)) => {
                if let Some(client) = client_upgrade
                    && resp.status() == StatusCode::SWITCHING_PROTOCOLS
                {
                    return self.tunnel(client, resp, slot, client_slot);
                }
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                parts.headers.append(header::VIA, self.inner.via.clone());
                // The connection is busy until its body is read or dropped: the slot goes with
                // the body (the closure owns it).
                let body = TimeoutBody::new(self.inner.timeouts.load().body_idle, body)
                    .map_frame(move |frame| {
                        let _busy = &slot;
                        frame
                    })
                    .boxed_unsync();
                Response::from_parts(parts, body)
            }
            Ok(Err(_)) if state.stalled.load(Ordering::Relaxed) => {
                error(StatusCode::REQUEST_TIMEOUT, "the request body stalled")
            }
            Ok(Err(_)) if state.too_large.load(Ordering::Relaxed) => {
                error(StatusCode::PAYLOAD_TOO_LARGE, "request body too large")
            }
            // The client's own body was malformed (bad chunking, cut short): its fault, a 400.
            Ok(Err(_)) if state.broken.load(Ordering::Relaxed) => {
                error(StatusCode::BAD_REQUEST, "malformed request body")
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "upstream request failed");
                error(StatusCode::BAD_GATEWAY, "the upstream failed")
            }
            Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "the upstream timed out"),
        }
    }

    /// A connection slot to the origin, waited for until `deadline` in a queue of bounded
    /// length: `Err` is the response to give instead (503 when the queue is full, 504 when the
    /// wait ran out).
    async fn slot(
        &self,
        deadline: tokio::time::Instant,
    ) -> Result<tokio::sync::OwnedSemaphorePermit, Response<UpstreamBody>> {
        if let Ok(slot) = self.inner.slots.clone().try_acquire_owned() {
            return Ok(slot);
        }
        let waiting = &self.inner.waiting;
        if waiting.fetch_add(1, Ordering::Relaxed) >= self.inner.timeouts.load().max_waiting {
            waiting.fetch_sub(1, Ordering::Relaxed);
            return Err(error(
                StatusCode::SERVICE_UNAVAILABLE,
                "too many requests waiting for the upstream",
            ));
        }
        let got = tokio::time::timeout_at(deadline, self.inner.slots.clone().acquire_owned()).await;
        waiting.fetch_sub(1, Ordering::Relaxed);
        match got {
            Ok(Ok(slot)) => Ok(slot),
            _ => Err(error(
                StatusCode::GATEWAY_TIMEOUT,
                "the upstream's connections stayed busy",
            )),
        }
    }

    /// `Host` (the upstream's, or the client's with `pass_host`), `Via`, and the
    /// `X-Forwarded-*` fields: the client's address appended to `X-Forwarded-For`, the scheme
    /// it spoke unless a proxy in front already said, the host it asked for when passed.
    fn forwarding_headers(&self, parts: &mut http::request::Parts, client_version: Version) {
        let headers = &mut parts.headers;
        let client_host = headers.get(header::HOST).cloned();
        match (&client_host, self.inner.pass_host) {
            (Some(host), true) => {
                headers.insert(X_FORWARDED_HOST, host.clone());
            }
            _ => {
                headers.insert(header::HOST, self.inner.host.clone());
            }
        }
        if let Some(peer) = parts.extensions.get::<ClientAddr>() {
            let ip = peer.0.ip().to_string();
            let value = match headers.get(X_FORWARDED_FOR).and_then(|v| v.to_str().ok()) {
                Some(prior) if !prior.trim().is_empty() => format!("{prior}, {ip}"),
                _ => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                headers.insert(X_FORWARDED_FOR, v);
            }
        }
        if !headers.contains_key(X_FORWARDED_PROTO) {
            headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("http"));
        }
        let via = match client_version {
            Version::HTTP_2 => HeaderValue::from_static("2 larder"),
            Version::HTTP_10 => HeaderValue::from_static("1.0 larder"),
            _ => self.inner.via.clone(),
        };
        headers.append(header::VIA, via);
    }

    /// The origin switched protocols: join the client's connection and the origin's, both ways,
    /// until either closes or neither moves for the tunnel idle timeout.
    /// The tunnel holds, for as long as it lives, its place among the tunnels, its connection
    /// to the origin's slot, and its client connection's slot.
    fn tunnel(
        &self,
        client: hyper::upgrade::OnUpgrade,
        resp: Response<Incoming>,
        origin_slot: tokio::sync::OwnedSemaphorePermit,
        client_slot: Option<Arc<crate::server::ConnectionSlot>>,
    ) -> Response<UpstreamBody> {
        let Ok(permit) = self.inner.tunnels.clone().try_acquire_owned() else {
            return error(StatusCode::SERVICE_UNAVAILABLE, "too many tunnels open");
        };
        let held = (permit, origin_slot, client_slot);
        let (mut parts, body) = resp.into_parts();
        let origin = hyper::upgrade::on(Response::from_parts(parts.clone(), body));
        let idle = self.inner.timeouts.load().tunnel_idle;
        tokio::spawn(async move {
            let (Ok(client), Ok(origin)) = tokio::join!(client, origin) else {
                return;
            };
            crate::tunnel::join(TokioIo::new(client), TokioIo::new(origin), idle).await;
            drop(held);
        });
        // The switch's own headers go back to the client as the origin sent them.
        parts.headers.remove(header::TRANSFER_ENCODING);
        let body = http_body_util::Empty::new()
            .map_err(|never| match never {})
            .boxed_unsync();
        Response::from_parts(parts, body)
    }
}

/// The protocol an HTTP/1.1 request asks to switch to (`Upgrade` with `Connection: upgrade`).
fn upgrade_of(parts: &http::request::Parts) -> Option<HeaderValue> {
    let connection_upgrade = parts
        .headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case("upgrade"));
    if !connection_upgrade || parts.version != Version::HTTP_11 {
        return None;
    }
    parts.headers.get(header::UPGRADE).cloned()
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The rustls settings for an https upstream: TLS 1.2 and 1.3 with ring, checked against
/// `roots`.
fn tls_config(roots: &TrustRoots) -> Result<rustls::ClientConfig, UpstreamError> {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut store = rustls::RootCertStore::empty();
    match roots {
        TrustRoots::System => {
            let found = rustls_native_certs::load_native_certs();
            for cert in found.certs {
                let _ = store.add(cert);
            }
            if store.is_empty() {
                let why = found
                    .errors
                    .first()
                    .map_or_else(|| "none found".to_owned(), ToString::to_string);
                return Err(UpstreamError::Roots(why));
            }
        }
        TrustRoots::CaFile(path) => {
            let bad = |reason: String| UpstreamError::CaFile {
                path: path.display().to_string(),
                reason,
            };
            let certs = CertificateDer::pem_file_iter(path)
                .map_err(|e| bad(e.to_string()))?
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| bad(e.to_string()))?;
            for cert in certs {
                store.add(cert).map_err(|e| bad(e.to_string()))?;
            }
            if store.is_empty() {
                return Err(bad("no certificate in it".into()));
            }
        }
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| UpstreamError::Roots(e.to_string()))?
    .with_root_certificates(store)
    .with_no_client_auth();
    Ok(config)
}

impl tower::Service<Request<RequestBody>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<RequestBody>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

/// What became of a request body on its way to the origin.
#[derive(Default)]
struct BodyState {
    /// Reading it from the client failed.
    broken: AtomicBool,
    /// It grew past the request-body limit.
    too_large: AtomicBool,
    /// The client sent none of it for the body idle timeout.
    stalled: AtomicBool,
}

pin_project! {
    /// The client's request body, cut at the limit, or when the client sends none of it for
    /// the body idle timeout (an upload that stalls must not hold a connection to the origin
    /// for the whole response timeout), noting why it failed.
    struct WatchedBody {
        #[pin]
        inner: RequestBody,
        state: Arc<BodyState>,
        limit: u64,
        seen: u64,
        idle: Duration,
        // Boxed: hyper's client wants the body `Unpin`.
        stall: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = match this.inner.poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                this.state.broken.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err(e.into())));
            }
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => {
                // The timer runs only while the origin waits on the client.
                let stall = this
                    .stall
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(*this.idle)));
                if stall.as_mut().poll(cx).is_ready() {
                    this.state.stalled.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err("the request body stalled".into())));
                }
                return Poll::Pending;
            }
        };
        *this.stall = None;
        if let Some(data) = frame.data_ref() {
            *this.seen += data.len() as u64;
            if *this.seen > *this.limit {
                this.state.too_large.store(true, Ordering::Relaxed);
                return Poll::Ready(Some(Err("request body too large".into())));
            }
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

fn error(status: StatusCode, msg: &'static str) -> Response<UpstreamBody> {
    let body = Full::new(Bytes::from_static(msg.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_absolute_http_urls_are_upstreams() {
        let t = Timeouts::default();
        assert!(Upstream::new(&"/path".parse().unwrap(), t).is_err());
        assert!(matches!(
            Upstream::new(&"ftp://a.test".parse().unwrap(), t),
            Err(UpstreamError::Scheme(_))
        ));
        let u = Upstream::new(&"http://a.test:81/ignored".parse().unwrap(), t).unwrap();
        assert_eq!(u.authority(), "a.test:81");
    }
}
