//! The server that owns the proxy's client connections: every limit and timeout on them lives
//! here, once.
//!
//! - **A cap on connections**: past [`Limits::max_connections`] the accept loop waits for one to
//!   close; new clients queue in the kernel's backlog instead of taking descriptors. A
//!   connection keeps its slot while it lives on as a tunnel (WebSocket): each request that asks
//!   to upgrade carries the connection's [`ConnectionSlot`], and the tunnel holds it.
//! - **Header-read timeout**: a client must finish a request head within
//!   [`Limits::header_read_timeout`] of starting it, or of connecting (a socket that never sends
//!   a byte is closed then, not after the idle timeout), or its connection is closed
//!   (slowloris).
//! - **HTTP/2 streams**: at most [`Limits::max_h2_streams`] in flight per connection.
//! - **Idle timeout**: a connection with no request in flight and no bytes either way for
//!   [`Limits::idle_timeout`] is closed (HTTP/1.1 keep-alive, HTTP/2 with a GOAWAY).
//! - **An accept loop that backs off** when the process or the system is out of descriptors
//!   (`EMFILE`, `ENFILE`) or memory, with one warning per episode, not one per attempt.
//! - **HTTP/1.1 and HTTP/2**: over TCP, HTTP/2 by prior knowledge (h2c); over TLS
//!   ([`Server::with_tls`]), HTTP/2 when the client chose it by ALPN. A TLS handshake must end
//!   within the header-read timeout; the TLS and plain listeners share the connection cap.
//! - **Graceful shutdown**: stop accepting, let requests in flight finish up to a deadline.
//!
//! ```no_run
//! use std::convert::Infallible;
//! use larder_proxy::server::{Limits, Server};
//!
//! # #[tokio::main] async fn main() -> std::io::Result<()> {
//! let service = tower::service_fn(|_req: http::Request<hyper::body::Incoming>| async {
//!     Ok::<_, Infallible>(http::Response::new(http_body_util::Full::new(bytes::Bytes::from("hi"))))
//! });
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! Server::new(listener, Limits::default())
//!     .serve(service, async { let _ = tokio::signal::ctrl_c().await; })
//!     .await;
//! # Ok(()) }
//! ```

mod accept;
mod connection;
mod tls;

pub use connection::{ClientAddr, ClientTls};
pub use tls::{Certificate, MinVersion, Tls, TlsError, TlsSettings, check_tls};

/// A client connection's place under [`Limits::max_connections`], released when the last holder
/// drops it: the connection, and, for a connection that became a tunnel, the tunnel. A request
/// that asks to upgrade carries it in its extensions (as `Arc<ConnectionSlot>`).
#[derive(Debug)]
pub struct ConnectionSlot(#[allow(dead_code)] tokio::sync::OwnedSemaphorePermit);

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::BoxError;

/// The limits a [`Server`] keeps to on its client connections.
///
/// ```
/// use std::time::Duration;
/// let limits = larder_proxy::server::Limits {
///     max_connections: 2_000,
///     header_read_timeout: Duration::from_secs(5),
///     ..Default::default()
/// };
/// assert_eq!(limits.idle_timeout, Duration::from_secs(60));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Connections open at once (default 4,096). Each may also hold a connection to the
    /// upstream, so keep it under half the descriptors the process may open.
    pub max_connections: usize,
    /// From a request's first byte to the end of its head (default 10 s).
    pub header_read_timeout: Duration,
    /// A connection with nothing in flight and no traffic is closed after this (default 60 s).
    pub idle_timeout: Duration,
    /// On shutdown, how long requests in flight may take to finish (default 10 s).
    pub shutdown_grace: Duration,
    /// The largest request head, and each connection's read and write buffer bound (default
    /// 64 KiB; at least 8 KiB).
    pub max_buffer: usize,
    /// HTTP/2 streams in flight on one connection (default 128, nginx's): a client that opens
    /// more waits for one to end (`SETTINGS_MAX_CONCURRENT_STREAMS`).
    pub max_h2_streams: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 4_096,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_secs(10),
            max_buffer: 64 << 10,
            max_h2_streams: 128,
        }
    }
}

/// An HTTP server on one listener (and perhaps a TLS one beside it), with [`Limits`] on its
/// connections.
#[derive(Debug)]
pub struct Server {
    listeners: Vec<Listener>,
    limits: LiveLimits,
}

/// A listening socket, and the TLS its connections begin with, if any.
#[derive(Debug)]
struct Listener {
    socket: TcpListener,
    tls: Option<Tls>,
}

/// A server's limits, which a reload may change for the connections that come next: each
/// connection keeps the limits it was accepted under. `max_connections` and `max_buffer` keep
/// their first values (the accept loop's permits and the buffers were sized by them).
#[derive(Debug, Clone)]
pub struct LiveLimits(Arc<arc_swap::ArcSwap<Limits>>);

impl LiveLimits {
    /// Applies `new` to the connections accepted from now on; the names of the settings that
    /// keep their first values although `new` changes them come back.
    ///
    /// ```
    /// use std::time::Duration;
    /// use larder_proxy::server::{Limits, LiveLimits};
    /// let live = LiveLimits::new(Limits::default());
    /// let shorter = Limits { idle_timeout: Duration::from_secs(5), ..Limits::default() };
    /// assert!(live.set(shorter).is_empty());
    /// assert_eq!(live.get().idle_timeout, Duration::from_secs(5));
    /// ```
    pub fn set(&self, new: Limits) -> Vec<&'static str> {
        let now = self.get();
        let mut fixed = Vec::new();
        if now.max_connections != new.max_connections {
            fixed.push("max_connections");
        }
        self.0.store(Arc::new(Limits {
            max_connections: now.max_connections,
            max_buffer: now.max_buffer,
            ..new
        }));
        fixed
    }

    /// The limits now.
    pub fn get(&self) -> Limits {
        **self.0.load()
    }

    /// Limits that start as `limits`.
    pub fn new(limits: Limits) -> Self {
        Self(Arc::new(arc_swap::ArcSwap::from_pointee(limits)))
    }
}

impl Server {
    /// A server accepting on `listener`.
    pub fn new(listener: TcpListener, limits: Limits) -> Self {
        Self {
            listeners: vec![Listener {
                socket: listener,
                tls: None,
            }],
            limits: LiveLimits::new(limits),
        }
    }

    /// Also serves TLS clients on `listener`, under the same limits and within the same cap on
    /// connections; `tls` is the handle a reload swaps certificates through.
    pub fn with_tls(mut self, listener: TcpListener, tls: Tls) -> Self {
        self.listeners.push(Listener {
            socket: listener,
            tls: Some(tls),
        });
        self
    }

    /// The handle a reload changes the limits through.
    pub fn live_limits(&self) -> LiveLimits {
        self.limits.clone()
    }

    /// Serves `service` until `shutdown` completes, then stops accepting and gives the requests
    /// in flight up to [`Limits::shutdown_grace`] to finish.
    pub async fn serve<S, B>(self, service: S, shutdown: impl Future<Output = ()>)
    where
        S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let live = self.limits;
        let permits = Arc::new(Semaphore::new(live.get().max_connections.max(1)));
        let (stop, stopping) = watch::channel(false);
        let mut connections = JoinSet::new();
        let sockets: Vec<&TcpListener> = self.listeners.iter().map(|l| &l.socket).collect();
        let mut accept = accept::Acceptor::new(&sockets, permits);
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                () = &mut shutdown => break,
                accepted = accept.next() => {
                    let (stream, listener, permit) = accepted;
                    let service = service.clone();
                    // The limits now, for this connection's life.
                    let limits = live.0.load_full();
                    let stopping = stopping.clone();
                    let slot = Arc::new(ConnectionSlot(permit));
                    let tls = self.listeners[listener].tls.as_ref().map(Tls::acceptor);
                    connections.spawn(async move {
                        let peer = stream.peer_addr().ok().map(ClientAddr);
                        let Some(tls) = tls else {
                            let io = connection::Io { stream, peer, protocol: connection::Protocol::Any, tls: false };
                            return connection::serve(io, service, &limits, stopping, slot).await;
                        };
                        if let Some((stream, protocol)) = tls::handshake(tls, stream, limits.header_read_timeout).await {
                            let io = connection::Io { stream, peer, protocol, tls: true };
                            connection::serve(io, service, &limits, stopping, slot).await;
                        }
                    });
                }
                // Reap finished connections as they go, so the set stays the size of the live ones.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(accept);
        drop(sockets);
        drop(self.listeners);
        let _ = stop.send(true);
        let drained = async { while connections.join_next().await.is_some() {} };
        if tokio::time::timeout(live.get().shutdown_grace, drained)
            .await
            .is_err()
        {
            tracing::warn!(
                left = connections.len(),
                "shutdown grace over; closing the connections still busy"
            );
            connections.abort_all();
        }
    }
}
