//! The accept loop: a connection permit first, then a connection; and when accepting fails for
//! want of descriptors or memory, a pause that doubles up to a second, with one warning per
//! episode. Retrying at once would spin a core on an error that only time (connections closing)
//! can clear, and log it thousands of times a second. At the edge of the limit accepting flaps
//! (one connection closes, one is accepted, the next fails): an episode ends only after
//! [`QUIET`] without a failure, so the flapping is one warning too.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const MAX_PAUSE: Duration = Duration::from_secs(1);
/// How long without a failed accept ends an episode of exhaustion.
const QUIET: Duration = Duration::from_secs(10);

/// An episode of failed accepts: its failures so far, the last one's time, and whether the
/// recovery was logged.
struct Episode {
    failures: u64,
    last: Instant,
    recovered: bool,
}

/// Accepts on every listener of a server, one permit for the next connection on any of them (so
/// the cap holds across them, and a busy listener cannot hold permits the other waits for).
pub(super) struct Acceptor<'a> {
    listeners: &'a [&'a TcpListener],
    /// The listener asked first next time: each in turn, so none starves the others.
    first: usize,
    permits: Arc<Semaphore>,
    pause: Duration,
    episode: Option<Episode>,
}

impl<'a> Acceptor<'a> {
    pub(super) fn new(listeners: &'a [&'a TcpListener], permits: Arc<Semaphore>) -> Self {
        Self {
            listeners,
            first: 0,
            permits,
            pause: FIRST_PAUSE,
            episode: None,
        }
    }

    /// A connection from whichever listener has one first, and that listener's index.
    async fn accept(&mut self) -> (io::Result<TcpStream>, usize) {
        let n = self.listeners.len();
        let first = self.first;
        self.first = (first + 1) % n.max(1);
        std::future::poll_fn(|cx| {
            for i in (0..n).map(|k| (first + k) % n) {
                if let std::task::Poll::Ready(r) = self.listeners[i].poll_accept(cx) {
                    return std::task::Poll::Ready((r.map(|(s, _)| s), i));
                }
            }
            std::task::Poll::Pending
        })
        .await
    }

    /// The next connection, the index of the listener it came to, and the permit it holds
    /// while open. Never returns an error: every failure is either one client's (skipped) or
    /// the process's (waited out).
    pub(super) async fn next(&mut self) -> (TcpStream, usize, OwnedSemaphorePermit) {
        loop {
            // The semaphore is never closed, so this cannot fail; if it did, waiting a moment
            // and retrying is all there is to do.
            let Ok(permit) = self.permits.clone().acquire_owned().await else {
                tokio::time::sleep(MAX_PAUSE).await;
                continue;
            };
            match self.accept().await {
                (Ok(stream), listener) => {
                    if let Some(e) = &mut self.episode
                        && !e.recovered
                    {
                        e.recovered = true;
                        tracing::info!(failed_accepts = e.failures, "accepting connections again");
                    }
                    self.pause = FIRST_PAUSE;
                    let _ = stream.set_nodelay(true);
                    return (stream, listener, permit);
                }
                (Err(e), _) if is_exhaustion(&e) => {
                    let now = Instant::now();
                    match &mut self.episode {
                        Some(ep) if now.duration_since(ep.last) < QUIET => {
                            ep.failures += 1;
                            ep.last = now;
                        }
                        _ => {
                            tracing::warn!(
                                error = %e,
                                "cannot accept connections (out of descriptors or memory); pausing until some close"
                            );
                            self.episode = Some(Episode {
                                failures: 1,
                                last: now,
                                recovered: false,
                            });
                        }
                    }
                    drop(permit);
                    tokio::time::sleep(self.pause).await;
                    self.pause = (self.pause * 2).min(MAX_PAUSE);
                }
                // One client's trouble (it reset before we accepted, say): the next one is fine.
                (Err(e), _) => tracing::debug!(error = %e, "accept failed"),
            }
        }
    }
}

/// Errors that say the process or the system is out of something, not that one client failed.
fn is_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptor_and_memory_exhaustion_are_told_apart_from_one_clients_failure() {
        for code in [libc::EMFILE, libc::ENFILE, libc::ENOBUFS, libc::ENOMEM] {
            assert!(is_exhaustion(&io::Error::from_raw_os_error(code)));
        }
        for code in [libc::ECONNABORTED, libc::ECONNRESET, libc::EPERM] {
            assert!(!is_exhaustion(&io::Error::from_raw_os_error(code)));
        }
    }
}
