//! One pipelined connection to memcached: many requests in flight at once, written in batches
//! and answered in order.
//!
//! Memcached answers a connection's requests in the order they arrive, so a connection does not
//! have to wait for one reply before sending the next request. A writer task gathers the
//! requests that are waiting into one buffer and writes it with one call; a reader task parses
//! the replies out of what it reads and hands each caller its own, in the order the requests
//! were written. Under load that is one write and one read for many requests, where a client
//! that waits for each reply makes two system calls per request (and the server as many).
//!
//! Bounded: at most `QUEUED` requests wait for the writer (callers beyond wait their turn, within
//! the cache's store timeout) and at most `IN_FLIGHT` replies are outstanding; a reply the
//! caller stopped waiting for is read and dropped. A broken stream (an I/O error, the server
//! gone, bytes that are not a reply) fails every request in flight on it, and the pool makes a
//! new connection for the next.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use bytes::BytesMut;
use larder_store::StoreError;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc, oneshot};

use crate::wire::{self, Reply};

/// Requests waiting for the writer.
const QUEUED: usize = 1024;
/// Replies outstanding on one connection.
const IN_FLIGHT: usize = 4096;
/// The writer sends what it has gathered once it holds this much.
const BATCH_BYTES: usize = 64 << 10;
/// A server that leaves requests unanswered (or unread) this long is taken for hung: the
/// connection is dropped (a healthy memcached answers in microseconds; the cache's own store timeout, much
/// shorter, has long given up on the callers by then).
const REPLY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a request gets back: its replies, in order.
pub(crate) type Replies = Result<Vec<Reply>, StoreError>;

struct Job {
    request: Vec<u8>,
    replies: usize,
    done: oneshot::Sender<Replies>,
}

/// A request written and waiting for its replies; holds its share of `IN_FLIGHT`.
struct Pending {
    replies: usize,
    done: oneshot::Sender<Replies>,
    _permit: OwnedSemaphorePermit,
}

/// A connection; cheap to share (`Arc`), any number of callers at once.
pub(crate) struct Connection {
    jobs: mpsc::Sender<Job>,
    broken: Arc<AtomicBool>,
}

impl Connection {
    /// Connects to `addr` (`host:port`) and starts its writer and reader.
    pub(crate) async fn open(addr: &str, connect_timeout: Duration) -> Result<Self, StoreError> {
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| StoreError::Timeout(connect_timeout))?
            .map_err(StoreError::connection)?;
        // Requests are gathered by the writer; Nagle's delay would only add latency.
        stream.set_nodelay(true).map_err(StoreError::connection)?;
        let (read, write) = stream.into_split();
        let (jobs, queued) = mpsc::channel(QUEUED);
        let (written, pending) = mpsc::unbounded_channel();
        let broken = Arc::new(AtomicBool::new(false));
        let permits = Arc::new(Semaphore::new(IN_FLIGHT));
        tokio::spawn(write_loop(write, queued, written, permits, broken.clone()));
        tokio::spawn(read_loop(read, pending, broken.clone()));
        Ok(Self { jobs, broken })
    }

    /// Sends `request` (one or more commands) and waits for its `replies` replies.
    pub(crate) async fn call(&self, request: Vec<u8>, replies: usize) -> Replies {
        let (done, answer) = oneshot::channel();
        let job = Job {
            request,
            replies: replies.max(1),
            done,
        };
        self.jobs.send(job).await.map_err(|_| closed())?;
        answer.await.map_err(|_| closed())?
    }

    /// Whether the stream broke: the pool replaces such a connection.
    pub(crate) fn is_broken(&self) -> bool {
        self.broken.load(Relaxed) || self.jobs.is_closed()
    }
}

fn closed() -> StoreError {
    StoreError::connection(std::io::Error::new(
        std::io::ErrorKind::ConnectionAborted,
        "the memcached connection closed",
    ))
}

/// Gathers waiting requests into one buffer and writes it; registers each with the reader
/// before its bytes leave, so a reply never arrives before the reader knows whose it is.
async fn write_loop(
    mut socket: OwnedWriteHalf,
    mut queued: mpsc::Receiver<Job>,
    written: mpsc::UnboundedSender<Pending>,
    permits: Arc<Semaphore>,
    broken: Arc<AtomicBool>,
) {
    let mut buf = Vec::with_capacity(BATCH_BYTES);
    // A request that did not fit in the last batch starts the next.
    let mut carried: Option<Job> = None;
    loop {
        let first = match carried.take() {
            Some(job) => job,
            None => match queued.recv().await {
                Some(job) => job,
                None => return,
            },
        };
        let mut next = Some(first);
        let mut alone = None;
        while let Some(job) = next.take() {
            // A request larger than the whole allowance still goes, alone.
            let want = u32::try_from(job.replies.min(IN_FLIGHT)).unwrap_or(u32::MAX);
            let permit = match permits.clone().try_acquire_many_owned(want) {
                Ok(permit) => permit,
                Err(_) => {
                    // The allowance is taken: what is gathered goes out first, since its
                    // replies are what frees the allowance (waiting with it unsent would wait
                    // forever).
                    if !flush(&mut socket, &mut buf).await {
                        broken.store(true, Relaxed);
                        return;
                    }
                    match permits.clone().acquire_many_owned(want).await {
                        Ok(permit) => permit,
                        Err(_) => return,
                    }
                }
            };
            // A request with nothing queued behind it goes out as it is, without a copy.
            let follower = queued.try_recv().ok();
            if follower.is_none() && buf.is_empty() {
                alone = Some(job.request);
            } else {
                buf.extend_from_slice(&job.request);
            }
            let pending = Pending {
                replies: job.replies,
                done: job.done,
                _permit: permit,
            };
            if let Err(lost) = written.send(pending) {
                let _ = lost.0.done.send(Err(closed()));
                broken.store(true, Relaxed);
                return;
            }
            if buf.len() < BATCH_BYTES {
                next = follower;
            } else {
                carried = follower;
            }
        }
        let sent = match alone {
            Some(request) => send(&mut socket, &request).await,
            None => flush(&mut socket, &mut buf).await,
        };
        if !sent {
            // The reader sees the stream end (or its own timeout) and fails what is in flight.
            broken.store(true, Relaxed);
            let _ = tokio::time::timeout(REPLY_TIMEOUT, socket.shutdown()).await;
            return;
        }
    }
}

/// Writes `buf` and empties it; whether it went out.
async fn flush(socket: &mut OwnedWriteHalf, buf: &mut Vec<u8>) -> bool {
    if buf.is_empty() {
        return true;
    }
    let sent = send(socket, buf).await;
    buf.clear();
    if buf.capacity() > 4 * BATCH_BYTES {
        buf.shrink_to(BATCH_BYTES);
    }
    sent
}

/// Writes `bytes`, bounded like the replies: a server that stops reading would hold the writer
/// (and the socket) forever once its buffers fill.
async fn send(socket: &mut OwnedWriteHalf, bytes: &[u8]) -> bool {
    matches!(
        tokio::time::timeout(REPLY_TIMEOUT, socket.write_all(bytes)).await,
        Ok(Ok(()))
    )
}

/// Reads replies and hands them out in order; on any failure, fails everything in flight.
async fn read_loop(
    mut socket: OwnedReadHalf,
    mut pending: mpsc::UnboundedReceiver<Pending>,
    broken: Arc<AtomicBool>,
) {
    let mut buf = BytesMut::with_capacity(BATCH_BYTES);
    let mut current: Option<(Pending, Vec<Reply>)> = None;
    let failure = 'read: loop {
        loop {
            if current.is_none() {
                match pending.try_recv() {
                    Ok(p) => {
                        let replies = Vec::with_capacity(p.replies.min(64));
                        current = Some((p, replies));
                    }
                    Err(_) if buf.is_empty() => break,
                    Err(mpsc::error::TryRecvError::Empty) => {
                        break 'read StoreError::Protocol(
                            "memcached sent a reply nobody asked for".into(),
                        );
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break 'read closed(),
                }
            }
            match wire::parse(&mut buf) {
                Ok(Some(reply)) => {
                    if let Some((p, replies)) = &mut current {
                        replies.push(reply);
                        if replies.len() == p.replies
                            && let Some((p, replies)) = current.take()
                        {
                            let _ = p.done.send(Ok(replies));
                        }
                    }
                }
                Ok(None) => break,
                Err(error) => break 'read StoreError::Protocol(error.to_string()),
            }
        }
        // Idle: wait for a request, but read the socket too, so that bytes nobody asked for (or
        // the server closing) are noticed now and not taken for the next request's reply.
        if current.is_none() && buf.is_empty() {
            tokio::select! {
                p = pending.recv() => match p {
                    Some(p) => {
                        let replies = Vec::with_capacity(p.replies.min(64));
                        current = Some((p, replies));
                    }
                    None => return,
                },
                read = socket.read_buf(&mut buf) => match read {
                    // The parse loop above sorts these bytes out: a reply to a request just
                    // registered, or one nobody asked for.
                    Ok(n) if n > 0 => continue,
                    Ok(_) => break closed(),
                    Err(e) => break StoreError::connection(e),
                },
            }
        }
        match tokio::time::timeout(REPLY_TIMEOUT, socket.read_buf(&mut buf)).await {
            Ok(Ok(0)) => break closed(),
            Ok(Ok(_)) => {}
            Ok(Err(e)) => break StoreError::connection(e),
            Err(_) => break StoreError::Timeout(REPLY_TIMEOUT),
        }
        if buf.len() > wire::MAX_VALUE + BATCH_BYTES {
            break StoreError::Protocol(
                "memcached sent more than one value's bound at once".into(),
            );
        }
    };
    broken.store(true, Relaxed);
    tracing::debug!(error = %failure, "memcached connection dropped");
    let message = failure.to_string();
    let fail = |p: Pending| {
        let _ = p
            .done
            .send(Err(StoreError::connection(std::io::Error::other(
                message.clone(),
            ))));
    };
    if let Some((p, _)) = current.take() {
        fail(p);
    }
    pending.close();
    while let Ok(p) = pending.try_recv() {
        fail(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;
    use tokio::net::TcpListener;

    /// A server that answers whatever it is asked with `reply`, once.
    async fn server(reply: &'static [u8]) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 64];
            let _ = socket.read(&mut request).await;
            let _ = socket.write_all(reply).await;
            // Keep the socket open: the client must not wait for it to close.
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        addr
    }

    #[tokio::test]
    async fn bytes_that_are_not_a_reply_fail_the_call_and_the_connection() {
        for reply in [&b"HELLO\r\n"[..], b"VA 3\r\nabcde", b"CLIENT_ERROR bad\r\n"] {
            let addr = server(reply).await;
            let c = Connection::open(&addr, Duration::from_secs(1))
                .await
                .unwrap();
            let mut request = Vec::new();
            crate::wire::noop(&mut request);
            let result = tokio::time::timeout(Duration::from_secs(2), c.call(request, 1)).await;
            assert!(matches!(result, Ok(Err(_))), "{reply:?}: {result:?}");
            assert!(c.is_broken(), "{reply:?}");
        }
    }

    #[tokio::test]
    async fn a_reply_nobody_asked_for_breaks_the_connection() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let _ = socket.write_all(b"HD\r\n").await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        let c = Connection::open(&addr, Duration::from_secs(1))
            .await
            .unwrap();
        let broke = async {
            while !c.is_broken() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        };
        assert!(
            tokio::time::timeout(Duration::from_secs(2), broke)
                .await
                .is_ok()
        );
    }
}
