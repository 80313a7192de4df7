//! The upstream: a tower service that forwards each request to one origin over a keep-alive
//! pool, with every wait bounded (connect, response head, and the body between chunks) and every
//! failure answered with the status that names it: 400 for a request body the client botched,
//! 502 for an origin that failed, 504 for one that took too long.

use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::uri::{Authority, Scheme};
use http::{HeaderValue, Request, Response, StatusCode, Uri, Version, header};
use http_body::{Body, Frame, SizeHint};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use larder_http::remove_hop_by_hop;
use pin_project_lite::pin_project;
use tower_http::timeout::TimeoutBody;

use crate::BoxError;

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
    /// An `https://` upstream (TLS to the upstream comes with larder-proxy's next release).
    #[error("the upstream must be plain http:// for now; {0:?} is not")]
    Scheme(String),
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
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            response: Duration::from_secs(60),
            body_idle: Duration::from_secs(10),
            pool_idle: Duration::from_secs(30),
            max_buffer: 32 << 10,
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
    client: Client<HttpConnector, WatchedBody>,
    scheme: Scheme,
    authority: Authority,
    host: HeaderValue,
    timeouts: Timeouts,
}

impl std::fmt::Debug for Upstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upstream")
            .field("authority", &self.authority)
            .field("timeouts", &self.timeouts)
            .finish_non_exhaustive()
    }
}

impl Upstream {
    /// An upstream at `url` (`http://host[:port]`; a path is ignored).
    pub fn new(url: &Uri, timeouts: Timeouts) -> Result<Self, UpstreamError> {
        let (Some(scheme), Some(authority)) = (url.scheme(), url.authority()) else {
            return Err(UpstreamError::NotAbsolute(url.to_string()));
        };
        if *scheme != Scheme::HTTP {
            return Err(UpstreamError::Scheme(url.to_string()));
        }
        let host = HeaderValue::from_str(authority.as_str())
            .map_err(|_| UpstreamError::NotAbsolute(url.to_string()))?;
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(timeouts.connect));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(timeouts.pool_idle)
            .pool_timer(TokioTimer::new())
            .http1_max_buf_size(timeouts.max_buffer.max(8192))
            .build(connector);
        Ok(Self {
            client,
            scheme: scheme.clone(),
            authority: authority.clone(),
            host,
            timeouts,
        })
    }

    /// The origin's `host:port`, which is also the `Host` it is sent.
    pub fn authority(&self) -> &str {
        self.authority.as_str()
    }

    async fn forward(self, req: Request<Incoming>) -> Response<UpstreamBody> {
        let (mut parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build();
        let Ok(uri) = uri else {
            return error(StatusCode::BAD_REQUEST, "bad request target");
        };
        parts.uri = uri;
        // The pool speaks HTTP/1.1 to the origin, whether the client spoke HTTP/2 or 1.0.
        parts.version = Version::HTTP_11;
        let has_body = !body.is_end_stream();
        let exact = body.size_hint().exact();
        remove_hop_by_hop(&mut parts.headers);
        parts.headers.insert(header::HOST, self.host.clone());
        if has_body && exact.is_none() && !parts.headers.contains_key(header::CONTENT_LENGTH) {
            // hyper's client sends no body for a GET, HEAD or CONNECT without framing headers;
            // a body the client sent is forwarded, framed, whatever the method.
            parts.headers.insert(
                header::TRANSFER_ENCODING,
                HeaderValue::from_static("chunked"),
            );
        }
        let broken = Arc::new(AtomicBool::new(false));
        let body = WatchedBody {
            inner: body,
            broken: broken.clone(),
        };
        let sent = self.client.request(Request::from_parts(parts, body));
        match tokio::time::timeout(self.timeouts.response, sent).await {
            Ok(Ok(resp)) => {
                let (mut parts, body) = resp.into_parts();
                remove_hop_by_hop(&mut parts.headers);
                let body = TimeoutBody::new(self.timeouts.body_idle, body)
                    .map_err(|e| -> BoxError { e })
                    .boxed_unsync();
                Response::from_parts(parts, body)
            }
            // The client's own body was malformed (bad chunking, cut short): its fault, a 400.
            Ok(Err(_)) if broken.load(Ordering::Relaxed) => {
                error(StatusCode::BAD_REQUEST, "malformed request body")
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "upstream request failed");
                error(StatusCode::BAD_GATEWAY, "the upstream failed")
            }
            Err(_) => error(StatusCode::GATEWAY_TIMEOUT, "the upstream timed out"),
        }
    }
}

impl tower::Service<Request<Incoming>> for Upstream {
    type Response = Response<UpstreamBody>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move { Ok(this.forward(req).await) })
    }
}

pin_project! {
    /// The client's request body, noting whether reading it failed.
    struct WatchedBody {
        #[pin]
        inner: Incoming,
        broken: Arc<AtomicBool>,
    }
}

impl Body for WatchedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.project();
        let frame = this.inner.poll_frame(cx);
        if let Poll::Ready(Some(Err(_))) = &frame {
            this.broken.store(true, Ordering::Relaxed);
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
            Upstream::new(&"https://a.test".parse().unwrap(), t),
            Err(UpstreamError::Scheme(_))
        ));
        let u = Upstream::new(&"http://a.test:81/ignored".parse().unwrap(), t).unwrap();
        assert_eq!(u.authority(), "a.test:81");
    }
}
