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
    /// Says once per cache that a caller asked `get_or_fetch` for the distributed lock of a
    /// cache with no store to hold it. Only for that option: larder-http takes the lock through
    /// [`Cache::lock_key`] on every fill by default, which on a memory-only cache is rightly
    /// nothing, and not worth a warning in every app that runs one.
    pub(crate) fn warn_lock_without_store(&self) {
        if self.inner.remote.is_some() {
            return;
        }
        self.inner.lock_without_store.call_once(|| {
            tracing::warn!(
                cache = %self.inner.name,
                "distributed_lock is set on a cache without a remote store: there is nothing \
                 to hold the lock, so each process runs its own factory (callers in this \
                 process still share one run); said once per cache"
            );
        });
    }

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
        match self.read_remote::<T>(remote, ns, key).await {
            RemoteLookup::Fresh(v) => Some(AnyValue::new(v)),
            _ => None,
        }
    }
}

/// A distributed lock on one key, held in the remote store (Redis `SET NX PX`, memcached `add`)
/// until [`release`](Self::release)d, dropped, or expired. For work that is not a
/// `get_or_fetch` factory but must still run once across processes: larder-http holds one while
/// it fetches and stores a response.
///
/// Dropping it releases it in the background (inside a tokio runtime); a holder that dies leaves
/// it to expire.
#[must_use = "the lock is released when dropped"]
pub struct KeyLock {
    cache: Cache,
    opts: Box<Resolved>,
    key: String,
    held: Option<HeldLock>,
}

impl std::fmt::Debug for KeyLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyLock").field("key", &self.key).finish()
    }
}

impl KeyLock {
    /// Releases the lock now (if it is still this holder's: an expired lock that another
    /// process took is left alone).
    pub async fn release(mut self) {
        if let Some(held) = self.held.take() {
            self.cache.unlock(&self.opts, &self.key, held).await;
        }
    }
}

impl Drop for KeyLock {
    fn drop(&mut self) {
        let Some(held) = self.held.take() else {
            return;
        };
        let Ok(rt) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let cache = self.cache.clone();
        let opts = self.opts.clone();
        let key = std::mem::take(&mut self.key);
        rt.spawn(async move { cache.unlock(&opts, &key, held).await });
    }
}

/// What [`Cache::lock_key`] got: the lock, the value another holder stored meanwhile, or
/// neither (no remote store, no locks, or the wait ran out): go ahead without it.
#[derive(Debug)]
#[non_exhaustive]
pub enum KeyLocked<T> {
    /// This caller holds the lock.
    Held(KeyLock),
    /// Another process held the lock and stored a fresh value under the key.
    Found(Arc<T>),
    /// No lock to be had in time: run without it.
    Alone,
}

impl Cache {
    /// Takes the distributed lock for `key` (in this handle's namespace), or, while another
    /// process holds it, waits up to `wait` for that process's value to land in the store. The
    /// lock expires after `expiry` if its holder dies without releasing it. The same lock, wait
    /// and counters (`locks_acquired`, `lock_waits_served`, `lock_waits_given_up`) as
    /// [`EntryOptions::distributed_lock`](crate::EntryOptions::distributed_lock).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use larder::engine::KeyLocked;
    /// // Without a remote store there is nobody to share work with: run alone.
    /// let cache = larder::Cache::new();
    /// let got = cache.lock_key::<String>("report", Duration::from_secs(5), Duration::from_secs(30)).await;
    /// assert!(matches!(got, KeyLocked::Alone));
    /// # }
    /// ```
    pub async fn lock_key<T: CacheValue>(
        &self,
        key: &str,
        wait: Duration,
        expiry: Duration,
    ) -> KeyLocked<T> {
        let opts = crate::EntryOptions::new()
            .lock_expiry(expiry)
            .or(&self.defaults);
        match self.lock_or_wait::<T>(&opts, key, wait).await {
            LockWait::Acquired(held) => KeyLocked::Held(KeyLock {
                cache: self.clone(),
                opts: Box::new(opts),
                key: key.to_owned(),
                held: Some(held),
            }),
            LockWait::Found(value) => match value.downcast::<T>() {
                Ok(v) => KeyLocked::Found(v),
                Err(_) => KeyLocked::Alone,
            },
            LockWait::Alone => KeyLocked::Alone,
        }
    }
}
