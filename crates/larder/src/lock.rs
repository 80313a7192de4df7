//! Stampede protection across processes: a lock in the remote store around a factory run.
//!
//! ```text
//! try the lock ── taken ──> (not the first try: the value may have landed meanwhile) run
//!      │ held elsewhere
//!      v
//! the value in the store? ── yes ──> serve it
//!      │ no
//!      v
//! past the wait? ── yes ──> run without the lock
//!      │ no
//!      v
//! sleep until the holder's backplane message or a short poll, then try the lock again
//! ```
//!
//! A store that cannot lock (down, breaker open, no locks) means running alone: the lock only
//! ever saves work, it never fails or stalls a caller beyond its wait.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheValue};
use crate::memory::AnyValue;
use crate::options::Resolved;
use crate::random;
use crate::remote::RemoteLookup;
use crate::stats::Counter;

/// The first poll of the store while another process holds the lock; it doubles up to
/// `MAX_POLL`. With a backplane, the holder's write wakes waiters before that.
const FIRST_POLL: Duration = Duration::from_millis(5);
const MAX_POLL: Duration = Duration::from_millis(100);

/// What a miss does after asking for the lock.
pub(crate) enum LockWait {
    /// This caller holds the lock: run the factory, then [`Cache::unlock`].
    Acquired(HeldLock),
    /// Another process ran the factory: its value, from the store.
    Found(AnyValue),
    /// No lock and no value in time, or no locks to be had: run the factory anyway.
    Alone,
}

/// Proof of holding a lock, with the token that releases it.
pub(crate) struct HeldLock {
    token: [u8; 16],
}

impl Cache {
    /// Takes the distributed lock for `key`, or waits up to `wait` for the process holding it.
    pub(crate) async fn lock_or_wait<T: CacheValue>(
        &self,
        opts: &Resolved,
        key: &str,
        wait: Duration,
    ) -> LockWait {
        let Some(remote) = &self.inner.remote else {
            return LockWait::Alone;
        };
        let ns = &opts.namespace;
        let stats = &self.inner.stats;
        let token = random::token();
        let deadline = crate::clock::instant_after(wait);
        let watch = self.inner.coherence.as_ref().map(|c| c.watch(ns, key));
        let mut pause = FIRST_POLL;
        let mut first = true;
        loop {
            match remote
                .try_lock(self, ns, key, &token, opts.lock_expiry)
                .await
            {
                Some(true) => {
                    let held = HeldLock { token };
                    // The holder before us may have written its value and released the lock
                    // between our last look and this try.
                    if !first && let Some(value) = self.look::<T>(ns, key).await {
                        self.unlock(opts, key, held).await;
                        stats.incr(Counter::LockWaited);
                        return LockWait::Found(value);
                    }
                    stats.incr(Counter::LockAcquired);
                    return LockWait::Acquired(held);
                }
                Some(false) => {}
                None => return LockWait::Alone,
            }
            first = false;
            // Armed before looking, so a write that lands in between still wakes us.
            let notified = watch.as_ref().map(|n| n.notified());
            tokio::pin!(notified);
            if let Some(n) = notified.as_mut().as_pin_mut() {
                n.enable();
            }
            if let Some(value) = self.look::<T>(ns, key).await {
                stats.incr(Counter::LockWaited);
                return LockWait::Found(value);
            }
            let now = Instant::now();
            if now >= deadline {
                stats.incr(Counter::LockGaveUp);
                tracing::debug!(cache = %self.inner.name, key, ?wait, "gave up waiting for the distributed lock; running the factory here");
                return LockWait::Alone;
            }
            let nap = pause.min(deadline - now);
            match notified.as_pin_mut() {
                Some(n) => {
                    let _ = crate::clock::timeout(nap, n).await;
                }
                None => crate::clock::sleep(nap).await,
            }
            pause = (pause * 2).min(MAX_POLL);
        }
    }

    /// Releases a lock this caller holds (if it is still its own).
    pub(crate) async fn unlock(&self, opts: &Resolved, key: &str, held: HeldLock) {
        if let Some(remote) = &self.inner.remote {
            remote.unlock(self, &opts.namespace, key, &held.token).await;
        }
    }

    /// A fresh value in the store, if there is one.
    async fn look<T: CacheValue>(&self, ns: &Arc<str>, key: &str) -> Option<AnyValue> {
        let remote = self.inner.remote.as_ref()?;
        match remote.lookup::<T>(self, ns, key).await {
            RemoteLookup::Fresh(v) => Some(AnyValue::new(v)),
            _ => None,
        }
    }
}
