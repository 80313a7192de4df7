//! The [`KeyBodies`] service: reads a POST's body for its key, then asks the cache.

use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body::Body;
use tower_service::Service;

use super::permit::{Refused, permit};
use super::{BodyReadError, KeyedBody};
use crate::body::{BoxError, CacheBody};
use crate::future::ResponseFuture;
use crate::service::CacheService;
use crate::state::LayerState;

/// A [`CacheService`] behind a reader of the POST bodies its `key_body` rules key on; built by
/// [`KeyBodiesLayer`](crate::KeyBodiesLayer). A body that cannot be read whole (the client
/// stalls past the body idle timeout, resets, or sends more than it declared) is answered 408
/// or 400 here, since part of it is gone.
///
/// ```
/// use std::convert::Infallible;
/// use std::time::Duration;
/// use bytes::Bytes;
/// use http::{Request, Response};
/// use http_body_util::Full;
/// use tower::{Layer, ServiceExt};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let origin = tower::service_fn(|req: Request<Full<Bytes>>| async move {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"answer"))))
/// });
/// let rule = larder_http::Rule::path("/ask").unwrap().ttl(Duration::from_secs(60)).key_body(1024);
/// let svc = larder_http::CacheLayer::shared(larder::Cache::new()).rules([rule]).key_bodies().layer(origin);
/// let ask = || Request::post("http://example.test/ask").header("content-length", "2").body(Full::new(Bytes::from_static(b"hi"))).unwrap();
/// let first = svc.clone().oneshot(ask()).await.unwrap();
/// assert_eq!(first.headers()["x-cache"], "MISS");
/// # drop(first);
/// # tokio::time::sleep(Duration::from_millis(10)).await;
/// assert_eq!(svc.oneshot(ask()).await.unwrap().headers()["x-cache"], "HIT");
/// # }
/// ```
pub struct KeyBodies<S> {
    pub(crate) inner: CacheService<S>,
}

impl<S: Clone> Clone for KeyBodies<S> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<S: std::fmt::Debug> std::fmt::Debug for KeyBodies<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("KeyBodies").field(&self.inner).finish()
    }
}

impl<S, ReqB, ResB> Service<Request<ReqB>> for KeyBodies<S>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Body + From<Bytes> + Send + 'static,
    ReqB::Error: Into<BoxError>,
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
        if req.method() != http::Method::POST {
            return self.inner.call(req);
        }
        let (mut parts, body) = req.into_parts();
        let permit = match permit(&self.inner.state, &parts.method, &parts.uri, &parts.headers) {
            Ok(permit) => permit,
            Err(refused) => {
                if let Refused::Pass(why) = refused {
                    parts.extensions.insert(why);
                }
                return self.inner.call(Request::from_parts(parts, body));
            }
        };
        // The ready service serves the request once its body is in (tower's usual dance).
        let clone = self.inner.clone();
        let mut ready = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::running(Box::pin(async move {
            match permit.read(body).await {
                Ok(keyed) => {
                    let bytes = keyed.bytes().clone();
                    parts.extensions.insert::<KeyedBody>(keyed);
                    ready
                        .call(Request::from_parts(parts, ReqB::from(bytes)))
                        .await
                }
                Err(e) => Ok(unreadable(&ready.state, &e)),
            }
        }))
    }
}

/// The answer to a request whose body could not be read whole: it cannot be sent on.
fn unreadable<B>(state: &LayerState, error: &BodyReadError) -> Response<CacheBody<B>> {
    let (status, detail) = match error {
        BodyReadError::Stalled(_) => (StatusCode::REQUEST_TIMEOUT, "body-stalled"),
        _ => (StatusCode::BAD_REQUEST, "body-unreadable"),
    };
    crate::service::refuse(state, status, error, detail)
}
