//! A [`Store`] kept in this process: bytes in a map, with real expiry and tag versions.
//!
//! It exists to exercise the two-tier read path (envelopes, remote fill, tag versions) without a
//! server, and as a reference implementation of the trait. It is not shared between processes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ahash::HashMap;
use bytes::Bytes;
use parking_lot::Mutex;

use larder_store::{Store, StoreEntry, StoreError, StoreFuture, StoreKey};

/// A lock's holder (its token) and when the lock expires.
type Held = (Vec<u8>, Instant);

/// An in-process byte store, cloneable (clones share the same data).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// use std::sync::Arc;
/// use larder::{Cache, InProcessStore};
///
/// let store = InProcessStore::new();
/// let a = Cache::builder().remote(Arc::new(store.clone())).build();
/// let b = Cache::builder().remote(Arc::new(store.clone())).build();
/// a.set("greeting", "hello".to_string()).await.unwrap();
/// // `b` has its own memory tier; it finds the value in the shared store.
/// assert_eq!(b.get::<String>("greeting").await.unwrap().as_deref().map(String::as_str), Some("hello"));
/// # }
/// ```
#[derive(Clone, Default)]
pub struct InProcessStore {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    data: Mutex<HashMap<(String, String), (Bytes, Instant)>>,
    tags: Mutex<HashMap<String, u64>>,
    /// Distributed locks: (namespace, key) -> (token, expiry).
    locks: Mutex<HashMap<(String, String), Held>>,
    failing: AtomicBool,
}

impl InProcessStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Makes every call fail (or succeed again), to test how a cache behaves when its store is
    /// down.
    pub fn set_failing(&self, failing: bool) {
        self.inner.failing.store(failing, Ordering::SeqCst);
    }

    /// Writes raw bytes under a key, bypassing the envelope (to test corrupt entries).
    pub fn put_raw(&self, namespace: &str, key: &str, bytes: Bytes, ttl: Duration) {
        self.inner.data.lock().insert(
            (namespace.to_owned(), key.to_owned()),
            (bytes, crate::clock::instant_after(ttl)),
        );
    }

    /// The number of live entries.
    pub fn len(&self) -> usize {
        let now = Instant::now();
        self.inner
            .data
            .lock()
            .values()
            .filter(|(_, exp)| *exp > now)
            .count()
    }

    /// Whether the store holds no live entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn check(&self) -> Result<(), StoreError> {
        if self.inner.failing.load(Ordering::SeqCst) {
            Err(StoreError::Connection(
                "in-process store set to fail".into(),
            ))
        } else {
            Ok(())
        }
    }

    fn read(&self, key: StoreKey<'_>) -> Option<Bytes> {
        let now = Instant::now();
        let data = self.inner.data.lock();
        data.get(&(key.namespace.to_owned(), key.key.to_owned()))
            .filter(|(_, exp)| *exp > now)
            .map(|(b, _)| b.clone())
    }

    fn write(&self, key: StoreKey<'_>, value: Bytes, ttl: Duration) {
        let exp = crate::clock::instant_after(ttl);
        self.inner
            .data
            .lock()
            .insert((key.namespace.to_owned(), key.key.to_owned()), (value, exp));
    }
}

impl Store for InProcessStore {
    fn name(&self) -> &str {
        "in-process"
    }

    fn get<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            self.check()?;
            Ok(self.read(key))
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [StoreKey<'a>]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            self.check()?;
            Ok(keys.iter().map(|k| self.read(*k)).collect())
        })
    }

    fn set<'a>(&'a self, key: StoreKey<'a>, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.write(key, value, ttl);
            Ok(())
        })
    }

    fn set_many<'a>(&'a self, entries: Vec<StoreEntry<'a>>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            for e in entries {
                self.write(e.key, e.value, e.ttl);
            }
            Ok(())
        })
    }

    fn delete<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            self.check()?;
            let k = (key.namespace.to_owned(), key.key.to_owned());
            Ok(self.inner.data.lock().remove(&k).is_some())
        })
    }

    fn clear_namespace<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            self.inner.data.lock().retain(|(ns, _), _| ns != namespace);
            Ok(())
        })
    }

    fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>> {
        Box::pin(async move {
            self.check()?;
            let map = self.inner.tags.lock();
            Ok(tags
                .iter()
                .map(|t| map.get(*t).copied().unwrap_or(0))
                .collect())
        })
    }

    fn invalidate_tags<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            self.check()?;
            let mut map = self.inner.tags.lock();
            for t in tags {
                *map.entry((*t).to_owned()).or_insert(0) += 1;
            }
            Ok(())
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: StoreKey<'a>,
        token: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let result = self.check().map(|()| {
            let now = Instant::now();
            let mut locks = self.inner.locks.lock();
            let slot = (key.namespace.to_owned(), key.key.to_owned());
            match locks.get(&slot) {
                Some((_, expiry)) if *expiry > now => false,
                _ => {
                    locks.insert(slot, (token.to_vec(), crate::clock::instant_after(ttl)));
                    true
                }
            }
        });
        Box::pin(async move { result })
    }

    fn unlock<'a>(&'a self, key: StoreKey<'a>, token: &'a [u8]) -> StoreFuture<'a, ()> {
        let result = self.check().map(|()| {
            let mut locks = self.inner.locks.lock();
            let slot = (key.namespace.to_owned(), key.key.to_owned());
            if locks.get(&slot).is_some_and(|(t, _)| t == token) {
                locks.remove(&slot);
            }
        });
        Box::pin(async move { result })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move { self.check() })
    }
}
