//! The front of the proxy: what every request and response passes first and last. A request that
//! came over TLS is marked `X-Forwarded-Proto: https` (unless a proxy in front already said),
//! before the cache sees it, so the origin's answers for https (absolute links, redirects) are
//! keyed apart from plain HTTP's. On the way out it writes the access log line and the request
//! metrics (by cache status, bytes, time) once the body has gone, and drops `X-Cache` where the
//! operator asked for `Cache-Status` alone.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::server::{ClientAddr, ClientTls};

/// How the front treats responses.
///
/// ```
/// let front = larder_proxy::front::FrontLayer::new(false, true);
/// # let _ = front;
/// ```
#[derive(Debug, Clone)]
pub struct FrontLayer {
    x_cache: bool,
    access_log: bool,
    metrics: Arc<Metrics>,
}

impl FrontLayer {
    /// `x_cache`: keep the `X-Cache` header on responses (`Cache-Status` is always there);
    /// `access_log`: one log line per request (target `larder_proxy::access`). The metrics are
    /// registered with the recorder installed now, so install it first.
    pub fn new(x_cache: bool, access_log: bool) -> Self {
        Self {
            x_cache,
            access_log,
            metrics: Arc::new(Metrics::register()),
        }
    }
}

/// The request metrics, registered once: a request only bumps atomics.
#[derive(Debug)]
struct Metrics {
    /// By cache status, in the order of [`CACHE_STATUSES`].
    requests: [metrics::Counter; 5],
    bytes: metrics::Counter,
}

const CACHE_STATUSES: [&str; 5] = ["HIT", "MISS", "STALE", "REVALIDATED", "BYPASS"];

impl Metrics {
    fn register() -> Self {
        Self {
            requests: CACHE_STATUSES
                .map(|status| metrics::counter!("larder_proxy_requests_total", "cache" => status)),
            bytes: metrics::counter!("larder_proxy_response_bytes_total"),
        }
    }
}

impl<S> tower::Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            settings: self.clone(),
        }
    }
}

/// The [`FrontLayer`]'s service.
#[derive(Debug, Clone)]
pub struct Front<S> {
    inner: S,
    settings: FrontLayer,
}

const X_CACHE: HeaderName = HeaderName::from_static("x-cache");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// What the log line and the metrics say about one request.
struct Exchange {
    /// When the request came (with the access log: its line says how long it took).
    started: Option<Instant>,
    client: Option<ClientAddr>,
    method: Method,
    uri: Uri,
    version: Version,
    status: u16,
    /// Index into [`CACHE_STATUSES`].
    cache: usize,
    access_log: bool,
    metrics: Arc<Metrics>,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for Front<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<Logged<ResB>>;
    type Error = S::Error;
    type Future = FrontFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<ReqB>) -> Self::Future {
        if req.extensions().get::<ClientTls>().is_some() {
            req.headers_mut()
                .entry(X_FORWARDED_PROTO)
                .or_insert(HeaderValue::from_static("https"));
        }
        let settings = &self.settings;
        // The log line needs the request's target; the metrics alone do not.
        let (method, uri) = if settings.access_log {
            (req.method().clone(), req.uri().clone())
        } else {
            (Method::GET, Uri::default())
        };
        let exchange = Exchange {
            started: settings.access_log.then(Instant::now),
            client: req.extensions().get::<ClientAddr>().copied(),
            method,
            uri,
            version: req.version(),
            status: 0,
            cache: 4,
            access_log: settings.access_log,
            metrics: settings.metrics.clone(),
        };
        FrontFuture {
            inner: self.inner.call(req),
            exchange: Some(exchange),
            x_cache: settings.x_cache,
        }
    }
}

pin_project! {
    /// The [`Front`]'s response future.
    pub struct FrontFuture<F> {
        #[pin]
        inner: F,
        exchange: Option<Exchange>,
        x_cache: bool,
    }
}

impl<F, B, E> std::future::Future for FrontFuture<F>
where
    F: std::future::Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<Logged<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = match this.inner.poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Ready(Ok(r)) => r,
        };
        let mut exchange = this.exchange.take();
        if let Some(ex) = &mut exchange {
            ex.cache = cache_status(response.headers());
            ex.status = response.status().as_u16();
        }
        if !*this.x_cache {
            response.headers_mut().remove(&X_CACHE);
        }
        Poll::Ready(Ok(response.map(|inner| Logged {
            inner,
            bytes: 0,
            exchange,
        })))
    }
}

/// The cache status the layer set, as an index of [`CACHE_STATUSES`] (BYPASS when none).
fn cache_status(headers: &http::HeaderMap) -> usize {
    headers
        .get(&X_CACHE)
        .and_then(|v| {
            CACHE_STATUSES
                .iter()
                .position(|s| s.as_bytes() == v.as_bytes())
        })
        .unwrap_or(4)
}

pin_project! {
    /// A response body that counts its bytes and reports the exchange when it ends or is
    /// dropped (a client that left).
    pub struct Logged<B> {
        #[pin]
        inner: B,
        bytes: u64,
        exchange: Option<Exchange>,
    }

    impl<B> PinnedDrop for Logged<B> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(exchange) = this.exchange.take() {
                exchange.report(*this.bytes);
            }
        }
    }
}

impl<B: Body<Data = Bytes>> Body for Logged<B> {
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        match &frame {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(data) = f.data_ref() {
                    *this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) => {
                if let Some(exchange) = this.exchange.take() {
                    exchange.report(*this.bytes);
                }
            }
            _ => {}
        }
        frame
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Exchange {
    fn report(self, bytes: u64) {
        self.metrics.requests[self.cache].increment(1);
        self.metrics.bytes.increment(bytes);
        let Some(started) = self.started.filter(|_| self.access_log) else {
            return;
        };
        let elapsed = started.elapsed();
        let client = self
            .client
            .map_or_else(|| "-".to_owned(), |c| c.0.ip().to_string());
        tracing::info!(
            target: "larder_proxy::access",
            client = %client,
            method = %self.method,
            uri = %self.uri,
            version = ?self.version,
            status = self.status,
            cache = CACHE_STATUSES[self.cache],
            bytes,
            ms = elapsed.as_secs_f64() * 1000.0,
        );
    }
}
