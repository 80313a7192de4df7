//! The front of the proxy: what every response passes on its way to the client. It writes the
//! access log line and the request metrics (by cache status, bytes, time) once the body has
//! gone, and drops `X-Cache` where the operator asked for `Cache-Status` alone.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::Bytes;
use http::{HeaderName, Method, Request, Response, Uri, Version};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

use crate::server::ClientAddr;

/// How the front treats responses.
///
/// ```
/// let front = larder_proxy::front::FrontLayer { x_cache: false, access_log: true };
/// # let _ = front;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrontLayer {
    /// Keep the `X-Cache` header on responses (`Cache-Status` is always there).
    pub x_cache: bool,
    /// Write one access log line per request (target `larder_proxy::access`).
    pub access_log: bool,
}

impl<S> tower::Layer<S> for FrontLayer {
    type Service = Front<S>;

    fn layer(&self, inner: S) -> Front<S> {
        Front {
            inner,
            settings: *self,
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

/// What the log line and the metrics say about one request.
struct Exchange {
    started: Instant,
    client: Option<ClientAddr>,
    method: Method,
    uri: Uri,
    version: Version,
    status: u16,
    cache: &'static str,
    access_log: bool,
}

impl<S, ReqB, ResB> tower::Service<Request<ReqB>> for Front<S>
where
    S: tower::Service<Request<ReqB>, Response = Response<ResB>>,
    S::Future: Send + 'static,
    ResB: Body<Data = Bytes>,
{
    type Response = Response<Logged<ResB>>;
    type Error = S::Error;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqB>) -> Self::Future {
        let settings = self.settings;
        let mut exchange = Exchange {
            started: Instant::now(),
            client: req.extensions().get::<ClientAddr>().copied(),
            method: req.method().clone(),
            uri: req.uri().clone(),
            version: req.version(),
            status: 0,
            cache: "BYPASS",
            access_log: settings.access_log,
        };
        let call = self.inner.call(req);
        Box::pin(async move {
            let mut response = call.await?;
            exchange.status = response.status().as_u16();
            let headers = response.headers_mut();
            exchange.cache = match headers.get(&X_CACHE).map(|v| v.as_bytes()) {
                Some(b"HIT") => "HIT",
                Some(b"MISS") => "MISS",
                Some(b"STALE") => "STALE",
                Some(b"REVALIDATED") => "REVALIDATED",
                _ => "BYPASS",
            };
            if !settings.x_cache {
                headers.remove(&X_CACHE);
            }
            Ok(response.map(|inner| Logged {
                inner,
                bytes: 0,
                exchange: Some(exchange),
            }))
        })
    }
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
        let elapsed = self.started.elapsed();
        metrics::counter!("larder_proxy_requests_total", "cache" => self.cache).increment(1);
        metrics::counter!("larder_proxy_response_bytes_total").increment(bytes);
        metrics::histogram!("larder_proxy_request_seconds").record(elapsed.as_secs_f64());
        if !self.access_log {
            return;
        }
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
            cache = self.cache,
            bytes,
            ms = elapsed.as_secs_f64() * 1000.0,
        );
    }
}
