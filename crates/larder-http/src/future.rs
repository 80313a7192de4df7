//! The [`ResponseFuture`] of [`CacheService`](crate::CacheService).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use http::Response;

use std::sync::Arc;

use crate::body::CacheBody;
use crate::state::LayerState;

/// The future of [`CacheService::call`](crate::CacheService): already resolved for a fresh hit in
/// the memory tier (nothing boxed, nothing to wait for), a boxed state machine otherwise.
#[must_use = "futures do nothing unless polled"]
pub struct ResponseFuture<B, E> {
    state: State<B, E>,
    /// How the answer is coded for its client, applied when it resolves (compression on).
    coding: Option<(crate::coding::Outgoing, Arc<LayerState>)>,
}

enum State<B, E> {
    Ready(Option<Response<CacheBody<B>>>),
    Running(BoxFuture<'static, Result<Response<CacheBody<B>>, E>>),
}

impl<B, E> ResponseFuture<B, E> {
    pub(crate) fn ready(response: Response<CacheBody<B>>) -> Self {
        Self {
            state: State::Ready(Some(response)),
            coding: None,
        }
    }

    /// This future, its answer coded for the client `out` describes.
    pub(crate) fn coded(
        mut self,
        out: Option<crate::coding::Outgoing>,
        state: &Arc<LayerState>,
    ) -> Self {
        let Some(out) = out else { return self };
        if let State::Ready(Some(response)) = &mut self.state {
            // Answered already: coded now, so `take_ready` hands out the final response.
            let taken =
                std::mem::replace(response, Response::new(CacheBody::full(Default::default())));
            *response = out.deliver(state, taken);
            return self;
        }
        self.coding = Some((out, state.clone()));
        self
    }

    /// Takes the response when `call` answered it at once (a fresh hit in the memory tier),
    /// which leaves the future spent; `None` when it has to be awaited. For bridges that answer hits on the caller's own thread without an
    /// executor, as larder for Python's ASGI middleware does.
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
    /// let mut miss = svc.call(req());
    /// assert!(miss.take_ready().is_none(), "a miss waits for the origin");
    /// drop(miss.await.unwrap());
    /// # tokio::time::sleep(std::time::Duration::from_millis(10)).await; // stored by a task
    /// let hit = svc.call(req()).take_ready().expect("a hit is answered at once");
    /// assert_eq!(hit.headers()["x-cache"], "HIT");
    /// # }
    /// ```
    pub fn take_ready(&mut self) -> Option<Response<CacheBody<B>>> {
        match &mut self.state {
            State::Ready(response) => response.take(),
            State::Running(_) => None,
        }
    }

    pub(crate) fn running(fut: BoxFuture<'static, Result<Response<CacheBody<B>>, E>>) -> Self {
        Self {
            state: State::Running(fut),
            coding: None,
        }
    }
}

// The response is moved out, never pinned in place, so the future is Unpin whatever `B` is.
impl<B, E> Unpin for ResponseFuture<B, E> {}

impl<B, E> Future for ResponseFuture<B, E> {
    type Output = Result<Response<CacheBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        match &mut this.state {
            State::Ready(response) => match response.take() {
                Some(r) => Poll::Ready(Ok(r)),
                // Polled after completion: a caller bug, not worth a panic in a library.
                None => Poll::Pending,
            },
            State::Running(fut) => {
                let result = std::task::ready!(fut.as_mut().poll(cx));
                Poll::Ready(match (result, &this.coding) {
                    (Ok(response), Some((out, state))) => Ok(out.deliver(state, response)),
                    (result, _) => result,
                })
            }
        }
    }
}

impl<B, E> std::fmt::Debug for ResponseFuture<B, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = match self.state {
            State::Ready(_) => "Ready",
            State::Running(_) => "Running",
        };
        f.debug_tuple("ResponseFuture").field(&state).finish()
    }
}
