//! The futures returned by [`Cache::get`](crate::Cache::get) and
//! [`Cache::get_or_fetch`](crate::Cache::get_or_fetch).
//!
//! A memory hit is answered before the future is even polled; the future then only carries the
//! result (16 bytes: the `Arc` or an [`Error`], itself one pointer), so a hit moves almost nothing
//! around. Only a trip to the remote store or a fetch needs a state machine, boxed, off the hit
//! path.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::error::{Error, FetchError};

enum State<'a, R, O> {
    Ready(Result<R, Error>),
    Running(BoxFuture<'a, O>),
    Done,
}

impl<R, O> State<'_, R, O> {
    #[inline]
    fn poll_with(
        &mut self,
        cx: &mut Context<'_>,
        ready: impl FnOnce(Result<R, Error>) -> O,
    ) -> Poll<O> {
        match std::mem::replace(self, State::Done) {
            State::Ready(r) => Poll::Ready(ready(r)),
            State::Running(mut fut) => match fut.as_mut().poll(cx) {
                Poll::Ready(out) => Poll::Ready(out),
                Poll::Pending => {
                    *self = State::Running(fut);
                    Poll::Pending
                }
            },
            // Polled after completion: a caller bug, but not worth a panic in a library.
            State::Done => Poll::Pending,
        }
    }
}

/// The future of [`Cache::get`](crate::Cache::get).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = larder::Cache::new();
/// let pending: larder::Get<'_, u8> = cache.get::<u8>("k");
/// assert!(pending.await.unwrap().is_none());
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct Get<'a, T> {
    state: State<'a, Option<Arc<T>>, GetOutput<T>>,
}

type GetOutput<T> = Result<Option<Arc<T>>, Error>;

impl<'a, T> Get<'a, T> {
    pub(crate) fn ready(result: GetOutput<T>) -> Self {
        Self {
            state: State::Ready(result),
        }
    }

    pub(crate) fn running(fut: BoxFuture<'a, GetOutput<T>>) -> Self {
        Self {
            state: State::Running(fut),
        }
    }

    /// The result at once when the memory tier answered it; otherwise the future back, not yet
    /// polled (so no remote call has started). Lets a caller with a synchronous fast path, such
    /// as a tower service, answer a memory hit without boxing a future.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set("k", 7u8).await.unwrap();
    /// let hit = cache.get::<u8>("k").try_ready().ok().unwrap();
    /// assert_eq!(hit.unwrap().as_deref(), Some(&7));
    /// # }
    /// ```
    pub fn try_ready(self) -> Result<GetOutput<T>, Self> {
        match self.state {
            State::Ready(result) => Ok(result),
            state => Err(Self { state }),
        }
    }
}

impl<T> Future for Get<'_, T> {
    type Output = GetOutput<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().state.poll_with(cx, |r| r)
    }
}

/// The future of [`Cache::get_or_fetch`](crate::Cache::get_or_fetch).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use larder::{Cache, EntryOptions, GetOrFetch};
/// let cache = Cache::new();
/// let fut: GetOrFetch<'_, u8, ()> = cache.get_or_fetch("k", EntryOptions::new(), || async { Ok(1) });
/// assert_eq!(*fut.await.unwrap(), 1);
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct GetOrFetch<'a, T, E> {
    state: State<'a, Arc<T>, Result<Arc<T>, FetchError<E>>>,
}

impl<'a, T, E> GetOrFetch<'a, T, E> {
    pub(crate) fn ready(result: Result<Arc<T>, Error>) -> Self {
        Self {
            state: State::Ready(result),
        }
    }

    pub(crate) fn running(fut: BoxFuture<'a, Result<Arc<T>, FetchError<E>>>) -> Self {
        Self {
            state: State::Running(fut),
        }
    }
}

impl<T, E> Future for GetOrFetch<'_, T, E> {
    type Output = Result<Arc<T>, FetchError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .state
            .poll_with(cx, |r| r.map_err(FetchError::Cache))
    }
}
