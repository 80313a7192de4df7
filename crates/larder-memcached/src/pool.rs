//! A few pipelined connections, taken in turn. Each carries any number of requests at once
//! (`connection.rs`), so the count spreads the load over memcached's worker threads rather than
//! bounding concurrency; a broken one is replaced on its next use, which is how the store
//! reconnects after an outage.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;

use larder_store::StoreError;
use parking_lot::Mutex;

use crate::connection::{Connection, Replies};

pub(crate) struct Pool {
    addr: String,
    slots: Box<[Slot]>,
    next: AtomicUsize,
    connect_timeout: Duration,
}

#[derive(Default)]
struct Slot {
    live: Mutex<Option<Arc<Connection>>>,
    /// Held while connecting, so that one caller connects and the others wait for it.
    connecting: tokio::sync::Mutex<()>,
}

impl Pool {
    pub(crate) fn new(addr: String, size: usize, connect_timeout: Duration) -> Self {
        Self {
            addr,
            slots: (0..size.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            connect_timeout,
        }
    }

    /// Sends `request` on the next connection in turn and waits for its `replies` replies.
    pub(crate) async fn call(&self, request: Vec<u8>, replies: usize) -> Replies {
        let slot = &self.slots[self.next.fetch_add(1, Relaxed) % self.slots.len()];
        let live = slot.live.lock().clone();
        let connection = match live {
            Some(c) if !c.is_broken() => c,
            _ => self.connect(slot).await?,
        };
        connection.call(request, replies).await
    }

    async fn connect(&self, slot: &Slot) -> Result<Arc<Connection>, StoreError> {
        let _turn = slot.connecting.lock().await;
        let live = slot.live.lock().clone();
        if let Some(c) = live
            && !c.is_broken()
        {
            return Ok(c); // another caller connected meanwhile
        }
        // The connection's tasks are tokio's; without a runtime spawning them would panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(StoreError::connection(std::io::Error::other(
                "the memcached store needs a tokio runtime",
            )));
        }
        let connection = Arc::new(Connection::open(&self.addr, self.connect_timeout).await?);
        *slot.live.lock() = Some(connection.clone());
        Ok(connection)
    }
}
