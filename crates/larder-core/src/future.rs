//! The futures returned by [`Cache::get`](crate::Cache::get) and
//! [`Cache::get_or_fetch`](crate::Cache::get_or_fetch).
//!
//! A memory hit is answered before the future is even polled; the future then only carries the
//! answer (two words: the `Arc` or an [`Error`], itself one pointer, and which of them), so a hit
//! moves almost nothing around. Only a trip to the remote store or a fetch needs a state machine,
//! boxed, off the hit path.

use std::future::Future;
use std::mem::ManuallyDrop;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;

use crate::error::{Error, FetchError};

/// Two words: a 16-byte future is returned in registers and stays there when the caller polls
/// it at once, where a third word sent the hit through the stack. Hence the two separate
/// outcomes (a flat enum fits beside the pointers' niches) and the extra box around a running
/// future: its fat pointer would need two words of its own. That box is one more small
/// allocation on a path that already allocates its state machine and then waits on I/O or a
/// fetch.
enum State<'a, V, O> {
    /// Answered before the first poll.
    Ready(V),
    Failed(Error),
    Running(Box<BoxFuture<'a, O>>),
    Done,
}

impl<'a, V, O> State<'a, V, O> {
    #[inline]
    fn answered(result: Result<V, Error>) -> Self {
        match result {
            Ok(v) => State::Ready(v),
            Err(e) => State::Failed(e),
        }
    }

    fn running(fut: BoxFuture<'a, O>) -> Self {
        State::Running(Box::new(fut))
    }

    #[inline]
    fn poll_with(
        &mut self,
        cx: &mut Context<'_>,
        ready: impl FnOnce(Result<V, Error>) -> O,
    ) -> Poll<O> {
        match std::mem::replace(self, State::Done) {
            State::Ready(v) => Poll::Ready(ready(Ok(v))),
            State::Failed(e) => Poll::Ready(ready(Err(e))),
            State::Running(mut fut) => match (*fut).as_mut().poll(cx) {
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

/// A [`State`] whose drop is a check inline, and the work out of line only if there is any. The
/// compiler's own drop of a `State` is an out-of-line call on every hit (17 instructions a
/// `get`, counted with callgrind), though a polled future holds `Done` and nothing to drop.
struct Held<'a, V, O>(ManuallyDrop<State<'a, V, O>>);

impl<'a, V, O> Held<'a, V, O> {
    #[inline]
    fn new(state: State<'a, V, O>) -> Self {
        Self(ManuallyDrop::new(state))
    }

    #[inline]
    fn take(&mut self) -> State<'a, V, O> {
        std::mem::replace(&mut self.0, State::Done)
    }
}

impl<V, O> Drop for Held<'_, V, O> {
    #[inline]
    fn drop(&mut self) {
        if !matches!(*self.0, State::Done) {
            drop_state(&mut self.0);
        }
    }
}

/// Drops what `state` holds, leaving `Done`, which owns nothing: so the `ManuallyDrop` around it
/// leaks nothing.
#[cold]
#[inline(never)]
fn drop_state<V, O>(state: &mut State<'_, V, O>) {
    drop(std::mem::replace(state, State::Done));
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
    state: Held<'a, Option<Arc<T>>, GetOutput<T>>,
}

type GetOutput<T> = Result<Option<Arc<T>>, Error>;

impl<'a, T> Get<'a, T> {
    pub(crate) fn ready(result: GetOutput<T>) -> Self {
        Self {
            state: Held::new(State::answered(result)),
        }
    }

    pub(crate) fn running(fut: BoxFuture<'a, GetOutput<T>>) -> Self {
        Self {
            state: Held::new(State::running(fut)),
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
    pub fn try_ready(mut self) -> Result<GetOutput<T>, Self> {
        match self.state.take() {
            State::Ready(v) => Ok(Ok(v)),
            State::Failed(e) => Ok(Err(e)),
            state => Err(Self {
                state: Held::new(state),
            }),
        }
    }
}

impl<T> Future for Get<'_, T> {
    type Output = GetOutput<T>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut().state.0.poll_with(cx, |r| r)
    }
}

/// The future of [`Cache::get_or_fetch`](crate::Cache::get_or_fetch).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use larder::{Cache, EntryOptions, GetOrFetch};
/// let cache = Cache::new();
/// let fut: GetOrFetch<'_, u8, ()> = cache.get_or_fetch("k", || async { Ok(1) });
/// assert_eq!(*fut.await.unwrap(), 1);
/// # }
/// ```
#[must_use = "futures do nothing unless awaited"]
pub struct GetOrFetch<'a, T, E> {
    state: Held<'a, Arc<T>, Result<Arc<T>, FetchError<E>>>,
}

impl<'a, T, E> GetOrFetch<'a, T, E> {
    pub(crate) fn ready(result: Result<Arc<T>, Error>) -> Self {
        Self {
            state: Held::new(State::answered(result)),
        }
    }

    pub(crate) fn running(fut: BoxFuture<'a, Result<Arc<T>, FetchError<E>>>) -> Self {
        Self {
            state: Held::new(State::running(fut)),
        }
    }
}

impl<T, E> Future for GetOrFetch<'_, T, E> {
    type Output = Result<Arc<T>, FetchError<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.get_mut()
            .state
            .0
            .poll_with(cx, |r| r.map_err(FetchError::Cache))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answered_future_is_two_words() {
        assert_eq!(size_of::<Get<'_, String>>(), 16);
        assert_eq!(size_of::<GetOrFetch<'_, String, std::io::Error>>(), 16);
    }
}
