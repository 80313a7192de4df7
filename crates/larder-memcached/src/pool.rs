//! A small pool of memcached connections. The client speaks one request at a time per
//! connection, so concurrency comes from several connections; a broken one is dropped and remade
//! on its next use, which is how the store reconnects after an outage.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use async_memcached::Client;
use larder_store::StoreError;
use tokio::sync::{Mutex, MutexGuard};

pub(crate) struct Pool {
    dsn: String,
    slots: Box<[Mutex<Option<Client>>]>,
    next: AtomicUsize,
    connect_timeout: Duration,
}

/// One connection, held exclusively until dropped.
pub(crate) struct Pooled<'a> {
    guard: MutexGuard<'a, Option<Client>>,
}

impl Pool {
    pub(crate) fn new(dsn: String, size: usize, connect_timeout: Duration) -> Self {
        Self {
            dsn,
            slots: (0..size.max(1)).map(|_| Mutex::new(None)).collect(),
            next: AtomicUsize::new(0),
            connect_timeout,
        }
    }

    /// A free connection if there is one, else the next in turn once it is free; connected now if
    /// it was not.
    pub(crate) async fn get(&self) -> Result<Pooled<'_>, StoreError> {
        let start = self.next.fetch_add(1, Relaxed);
        let n = self.slots.len();
        let mut guard = None;
        for i in 0..n {
            if let Ok(g) = self.slots[(start + i) % n].try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut guard = match guard {
            Some(g) => g,
            None => self.slots[start % n].lock().await,
        };
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = None;
            // The client's sockets are tokio's; without a runtime connecting would panic.
            if tokio::runtime::Handle::try_current().is_err() {
                return Err(StoreError::connection(std::io::Error::other(
                    "the memcached store needs a tokio runtime",
                )));
            }
            let client = tokio::time::timeout(self.connect_timeout, Client::new(&self.dsn))
                .await
                .map_err(|_| StoreError::Timeout(self.connect_timeout))?
                .map_err(StoreError::connection)?;
            *guard = Some(client);
        }
        Ok(Pooled { guard })
    }
}

impl Pooled<'_> {
    /// The client, unless `check` dropped it.
    pub(crate) fn client(&mut self) -> Result<&mut Client, StoreError> {
        self.guard.as_mut().ok_or_else(|| {
            StoreError::connection(std::io::Error::other("memcached connection was dropped"))
        })
    }

    /// Drops the connection if `error` means it is no longer usable.
    pub(crate) fn check(&mut self, error: &async_memcached::Error) {
        use async_memcached::Error as E;
        if matches!(
            error,
            E::Io(_) | E::Connect(_) | E::ConnectionClosed | E::ParseError(_)
        ) {
            *self.guard = None;
        }
    }
}

/// Runs one client call on a pooled connection, dropping the connection if the call broke it.
macro_rules! on {
    ($conn:expr, |$c:ident| $call:expr) => {{
        let $c = $conn.client()?;
        let result = $call.await;
        if let Err(e) = &result {
            $conn.check(e);
        }
        result
    }};
}
pub(crate) use on;
