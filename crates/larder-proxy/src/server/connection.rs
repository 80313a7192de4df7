//! One client connection: served by hyper (HTTP/1.1, or HTTP/2 by prior knowledge or by ALPN
//! over TLS) and watched, so that no phase of it can last without bound.
//!
//! The watch tells four phases apart from the bytes that cross the socket and the requests that
//! cross the service:
//! - *reading a head*: bytes came in while no request was in flight; the head must be complete
//!   (the service called) within the header-read timeout, or the connection is closed;
//! - *sending a response*: a response body is out; if no byte moves either way for the idle
//!   timeout, the client stopped reading (or nothing is coming) and the connection is closed;
//! - *waiting for the service*: bounded by the service's own timeouts, not here;
//! - *idle*: nothing in flight and no traffic for the idle timeout: closed gracefully.
//!
//! The watch costs a request almost nothing: bytes crossing the socket only set a flag (no clock
//! is read per read or write), the timer is moved only when a head begins, and the watch looks at
//! the flag when its timer fires. So a quiet connection is judged idle (or stuck) between one and
//! two idle timeouts after its last byte; the header-read timeout is exact.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::watch;
use tokio::time::Instant;
use tower::ServiceExt;

use super::Limits;
use crate::BoxError;

/// Which HTTP a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Protocol {
    /// Plain TCP: HTTP/2 if the client opens with its preface (h2c), else HTTP/1.1.
    Any,
    /// TLS without `h2` chosen by ALPN.
    Http1,
    /// TLS with `h2` chosen by ALPN.
    Http2,
}

/// A client's byte stream, where it came from, and what it speaks.
pub(super) struct Io<I> {
    pub(super) stream: I,
    pub(super) peer: Option<ClientAddr>,
    pub(super) protocol: Protocol,
    /// Whether the stream is TLS (requests carry [`ClientTls`]).
    pub(super) tls: bool,
}

/// Serves one connection until it ends, a limit closes it, or shutdown drains it.
pub(super) async fn serve<I, S, B>(
    io: Io<I>,
    service: S,
    limits: &Limits,
    mut stopping: watch::Receiver<bool>,
    slot: Arc<super::ConnectionSlot>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let activity = Arc::new(Activity::new());
    let Io {
        stream,
        peer,
        protocol,
        tls,
    } = io;
    let io = TokioIo::new(Watched {
        inner: stream,
        activity: activity.clone(),
    });
    let service = Tracked {
        inner: service,
        activity: activity.clone(),
        peer,
        tls,
        slot,
    };
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder = match protocol {
        Protocol::Any => builder,
        Protocol::Http1 => builder.http1_only(),
        Protocol::Http2 => builder.http2_only(),
    };
    builder
        .http1()
        .max_buf_size(limits.max_buffer.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(limits.max_h2_streams.max(1))
        .max_header_list_size(u32::try_from(limits.max_buffer).unwrap_or(u32::MAX));
    // Upgrades (WebSocket) hand the socket to the service once the origin agreed; the
    // connection's watch ends with the HTTP exchange, and the tunnel bounds itself.
    let conn = builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let stop = async move {
        while stopping.changed().await.is_ok() {
            if *stopping.borrow() {
                return;
            }
        }
    };
    tokio::pin!(stop);
    // One timer, armed for the earliest moment the phase could change, and moved earlier only
    // when that moment comes earlier (a head begins): a busy connection costs no timer work per
    // request. Every change of phase happens while hyper polls the connection (its reads and
    // writes, the service calls and bodies it drives), so the deadline is read again after each
    // poll, without a wake-up of its own.
    let far = Instant::now() + Duration::from_secs(365 * 86_400);
    let timer = tokio::time::sleep_until(far);
    tokio::pin!(timer);
    let mut armed = far;
    let mut draining = false;
    std::future::poll_fn(|cx| {
        loop {
            if let Poll::Ready(result) = conn.as_mut().poll(cx) {
                if let Err(e) = result {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return Poll::Ready(());
            }
            if !draining && stop.as_mut().poll(cx).is_ready() {
                conn.as_mut().graceful_shutdown();
                draining = true;
                continue;
            }
            let deadline = activity.deadline(limits).unwrap_or(far);
            if deadline < armed {
                timer.as_mut().reset(deadline);
                armed = deadline;
            }
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            activity.look();
            match activity.phase(limits) {
                // Dropping the connection closes the socket: a client this slow gets no goodbye.
                Phase::SlowHead | Phase::Stuck => return Poll::Ready(()),
                Phase::Idle if !draining => {
                    conn.as_mut().graceful_shutdown();
                    draining = true;
                }
                _ => {}
            }
            // Not yet (traffic moved the deadline on), or draining: look again later, never in
            // a tight loop.
            let next = activity
                .deadline(limits)
                .unwrap_or(far)
                .max(Instant::now() + Duration::from_millis(100));
            timer.as_mut().reset(next);
            armed = next;
        }
    })
    .await;
}

/// What a connection is doing, judged at one moment.
#[derive(Debug, PartialEq, Eq)]
enum Phase {
    /// A head started arriving longer than the header-read timeout ago and is not complete.
    SlowHead,
    /// A response is out and no byte has moved for the idle timeout.
    Stuck,
    /// Nothing in flight, no traffic for the idle timeout.
    Idle,
    /// None of the above (yet).
    Busy,
}

/// The connection's traffic and requests; instants in milliseconds since it opened.
struct Activity {
    opened: Instant,
    /// Set when bytes cross the socket or a response ends; the watch clears it when it looks.
    moved: AtomicBool,
    /// When the watch last saw the connection move (only the watch writes it).
    quiet_since: AtomicU64,
    /// When the bytes of a head began to arrive with nothing in flight, plus one (0: none).
    head_started: AtomicU64,
    /// Requests whose service call began and whose response has not ended.
    in_flight: AtomicUsize,
    /// Responses whose body is out.
    sending: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            moved: AtomicBool::new(false),
            quiet_since: AtomicU64::new(0),
            // A new connection owes its first head from the start: one that never sends a byte
            // is closed at the header-read timeout, not held for the idle timeout.
            head_started: AtomicU64::new(1),
            in_flight: AtomicUsize::new(0),
            sending: AtomicUsize::new(0),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    fn read(&self) {
        self.moved.store(true, Relaxed);
        if self.in_flight.load(Relaxed) == 0 && self.head_started.load(Relaxed) == 0 {
            // Once per request: the one clock read on a request's path.
            self.head_started.store(self.now() + 1, Relaxed);
        }
    }

    fn wrote(&self) {
        self.moved.store(true, Relaxed);
    }

    fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.head_started.store(0, Relaxed);
    }

    fn request_ended(&self) {
        self.moved.store(true, Relaxed);
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// The watch's look: traffic since the last look means quiet only from now.
    fn look(&self) {
        if self.moved.swap(false, Relaxed) {
            self.quiet_since.store(self.now(), Relaxed);
        }
    }

    /// The next moment the phase could change for lack of activity; `None` while the service
    /// is working (its own timeouts bound that).
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let head = self.head_started.load(Relaxed);
        if head != 0 {
            return Some(self.at(head - 1 + limits.header_read_timeout.as_millis() as u64));
        }
        let waiting = self.in_flight.load(Relaxed) > 0 && self.sending.load(Relaxed) == 0;
        if waiting {
            return None;
        }
        let idle = self.quiet_since.load(Relaxed) + limits.idle_timeout.as_millis() as u64;
        Some(self.at(idle))
    }

    /// The phase as of the last [`look`](Self::look).
    fn phase(&self, limits: &Limits) -> Phase {
        let now = self.now();
        let head = self.head_started.load(Relaxed);
        if head != 0 && now >= head - 1 + limits.header_read_timeout.as_millis() as u64 {
            return Phase::SlowHead;
        }
        let quiet = !self.moved.load(Relaxed)
            && now >= self.quiet_since.load(Relaxed) + limits.idle_timeout.as_millis() as u64;
        if !quiet || head != 0 {
            return Phase::Busy;
        }
        if self.sending.load(Relaxed) > 0 {
            Phase::Stuck
        } else if self.in_flight.load(Relaxed) == 0 {
            Phase::Idle
        } else {
            Phase::Busy
        }
    }
}

pin_project! {
    /// The socket, noting when bytes cross it.
    struct Watched<I> {
        #[pin]
        inner: I,
        activity: Arc<Activity>,
    }
}

impl<I: AsyncRead> AsyncRead for Watched<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.project();
        let before = buf.filled().len();
        let result = this.inner.poll_read(cx, buf);
        if matches!(result, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.activity.read();
        }
        result
    }
}

impl<I: AsyncWrite> AsyncWrite for Watched<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write(cx, buf);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.project();
        let result = this.inner.poll_write_vectored(cx, bufs);
        if matches!(result, Poll::Ready(Ok(n)) if n > 0) {
            this.activity.wrote();
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.project().inner.poll_shutdown(cx)
    }
}

/// The address a request's connection came from, in its extensions.
///
/// ```
/// let addr = larder_proxy::server::ClientAddr("127.0.0.1:50000".parse().unwrap());
/// assert_eq!(addr.0.port(), 50000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// In a request's extensions when its connection is TLS (the proxy tells the origin
/// `X-Forwarded-Proto: https`, and keys it apart from plain HTTP's).
///
/// ```
/// let req = http::Request::new(());
/// assert!(req.extensions().get::<larder_proxy::server::ClientTls>().is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientTls;

/// The service, noting when requests start and when their responses end.
#[derive(Clone)]
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
    peer: Option<ClientAddr>,
    tls: bool,
    /// The connection's slot, handed to a request that may become a tunnel.
    slot: Arc<super::ConnectionSlot>,
}

/// A request in flight, and once its body is out, a response sending; its drop ends both.
struct InFlight {
    activity: Arc<Activity>,
    sending: bool,
}

impl InFlight {
    fn sending(mut self) -> Self {
        self.activity.sending.fetch_add(1, Relaxed);
        self.sending = true;
        self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.sending {
            self.activity.sending.fetch_sub(1, Relaxed);
        }
        self.activity.request_ended();
    }
}

impl<S, B> hyper::service::Service<Request<Incoming>> for Tracked<S>
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<TrackedBody<B>>;
    type Error = BoxError;
    type Future = TrackedCall<tower::util::Oneshot<S, Request<Incoming>>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        self.activity.request_started();
        if let Some(peer) = self.peer {
            req.extensions_mut().insert(peer);
        }
        if self.tls {
            req.extensions_mut().insert(ClientTls);
        }
        if req.headers().contains_key(http::header::UPGRADE) {
            req.extensions_mut().insert(self.slot.clone());
        }
        TrackedCall {
            call: self.inner.clone().oneshot(req),
            in_flight: Some(InFlight {
                activity: self.activity.clone(),
                sending: false,
            }),
        }
    }
}

pin_project! {
    /// The service's future, handing the request's guard to the response body.
    struct TrackedCall<F> {
        #[pin]
        call: F,
        in_flight: Option<InFlight>,
    }
}

impl<F, B, E> Future for TrackedCall<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<TrackedBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = std::task::ready!(this.call.poll(cx)).map_err(Into::into)?;
        let guard = this.in_flight.take().map(InFlight::sending);
        Poll::Ready(Ok(response.map(|body| TrackedBody { body, guard })))
    }
}

pin_project! {
    /// A response body that ends its request when it ends or is dropped.
    struct TrackedBody<B> {
        #[pin]
        body: B,
        guard: Option<InFlight>,
    }
}

impl<B> Body for TrackedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let frame = this.body.poll_frame(cx);
        if matches!(frame, Poll::Ready(None | Some(Err(_)))) {
            this.guard.take();
        }
        frame.map_err(Into::into)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits() -> Limits {
        Limits {
            header_read_timeout: Duration::from_millis(100),
            idle_timeout: Duration::from_millis(300),
            ..Limits::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn phases_follow_the_traffic() {
        let a = Activity::new();
        let l = limits();
        a.look();
        assert_eq!(a.phase(&l), Phase::Busy, "just opened");
        tokio::time::advance(Duration::from_millis(101)).await;
        a.look();
        assert_eq!(a.phase(&l), Phase::SlowHead, "opened and never spoke");

        a.request_started();
        a.request_ended();
        a.look();
        tokio::time::advance(Duration::from_millis(301)).await;
        a.look();
        assert_eq!(a.phase(&l), Phase::Idle, "a request, then silence");

        a.read();
        assert_eq!(a.deadline(&l), Some(a.at(a.now() + 100)));
        tokio::time::advance(Duration::from_millis(101)).await;
        a.look();
        assert_eq!(a.phase(&l), Phase::SlowHead);

        a.request_started();
        assert_eq!(a.deadline(&l), None, "the service's time is its own");
        tokio::time::advance(Duration::from_secs(3600)).await;
        a.look();
        assert_eq!(a.phase(&l), Phase::Busy);

        a.sending.fetch_add(1, Relaxed);
        a.wrote();
        a.look();
        assert_eq!(a.phase(&l), Phase::Busy, "bytes just moved");
        tokio::time::advance(Duration::from_millis(301)).await;
        a.look();
        assert_eq!(a.phase(&l), Phase::Stuck, "the client stopped reading");
        a.sending.fetch_sub(1, Relaxed);
        a.request_ended();
        a.read();
        a.look();
        assert_eq!(
            a.phase(&l),
            Phase::Busy,
            "the next request's head is arriving"
        );
    }
}
