//! The [`Cache`] handle: reads, stats and what the other parts share (the builder is in
//! `builder.rs`, the write paths in `write.rs`, the read-through paths in `fetch.rs` and
//! `compute.rs`).

use std::fmt;
use std::sync::Arc;

use futures::FutureExt;
use serde::{Serialize, de::DeserializeOwned};

use crate::backplane::Coherence;
use crate::builder::CacheBuilder;
use crate::clock;
use crate::codec::EncodeOptions;
use crate::error::{Error, ErrorKind};
use crate::flight::Flights;
use crate::future::Get;
use crate::memory::{AnyValue, Lookup, MemoryTier, Origin, Weighers};
use crate::options::{EntryOptions, Resolved};
use crate::remote::Remote;
use crate::stats::{Counter, Links, Recorder, Stats};

/// A value a [`Cache`] can hold: shared between threads and serializable for remote stores.
///
/// Implemented for every `T: Serialize + DeserializeOwned + Send + Sync + 'static`.
pub trait CacheValue: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> CacheValue for T {}

/// An async cache with an in-process memory tier and an optional remote [`Store`](crate::Store).
///
/// Cheap to clone (two `Arc`s); clones share everything. Values are kept decoded as `Arc<T>` in
/// memory, so a hit neither deserializes nor clones `T`.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use larder::{Cache, EntryOptions};
///
/// let cache = Cache::builder()
///     .max_entries(10_000)
///     .default_options(EntryOptions::new().ttl(Duration::from_secs(60)))
///     .build();
///
/// let user = cache
///     .get_or_fetch("user:1", || async {
///         // the expensive call: runs once however many callers ask at the same time
///         Ok::<_, std::io::Error>(String::from("Ada"))
///     })
///     .await?;
/// assert_eq!(*user, "Ada");
/// assert_eq!(cache.get::<String>("user:1").await?.as_deref().map(String::as_str), Some("Ada"));
/// # Ok(()) }
/// ```
///
/// # What writes return
///
/// The cache is an optimisation, so a store that fails never fails a call: the write reaches
/// this node's memory, the failure is counted (and trips the breaker), and the entry's expiry
/// bounds how long another node may serve the old value. What a write returns is therefore only
/// what the caller can act on: `set`, `set_with` and `set_many` return `Err` when the value cannot
/// be encoded (a bug to fix, not a condition to retry); `delete` returns whether there was
/// anything to delete; `clear`, `invalidate_tag` and `invalidate_tags` have nothing to report and
/// return `()`. [`stats`](Cache::stats) says how the store is doing.
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
    pub(crate) defaults: Arc<Resolved>,
}

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    pub(crate) memory: Option<MemoryTier>,
    pub(crate) remote: Option<Remote>,
    pub(crate) coherence: Option<Coherence>,
    pub(crate) flights: Arc<Flights>,
    /// The fail-safe throttle's marks, shared with the memory tier, which consults them.
    pub(crate) failing: Arc<crate::failing::Failing>,
    pub(crate) stats: Arc<Recorder>,
    pub(crate) encode: EncodeOptions,
    pub(crate) weighers: Weighers,
    /// Said once: a distributed lock was asked of a cache with no store to hold it.
    pub(crate) lock_without_store: std::sync::Once,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("namespace", &self.defaults.namespace)
            .field("memory", &self.inner.memory.as_ref().map(|m| m.bounds()))
            .field("remote", &self.inner.remote.as_ref().map(|r| r.name()))
            .field(
                "backplane",
                &self.inner.coherence.as_ref().map(|c| c.name()),
            )
            .finish()
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}

impl Cache {
    /// A memory-only cache with the default bounds (100,000 entries) and options (5 minutes fresh).
    ///
    /// ```
    /// let cache = larder::Cache::new();
    /// # let _ = cache;
    /// ```
    pub fn new() -> Self {
        Self::builder().build()
    }

    /// A cache whose store a URL names, with the default bounds and options:
    ///
    /// - `memory://`: the memory tier alone;
    /// - `redis://[user:password@]host[:port][/db][?prefix=P]`, `rediss://...` (TLS; a private CA
    ///   with `ca_file=/path/ca.pem`), `redis+cluster://host1:port1,host2:port2`: the memory tier
    ///   in front of Redis (feature `redis`);
    /// - `memcached://host[:port][?prefix=P&pool=N]`: the memory tier in front of memcached
    ///   (feature `memcached`).
    ///
    /// Nothing connects here: the store connects on first use and reconnects by itself, so an
    /// application starts even while its store is down. For other settings use
    /// [`CacheBuilder::remote_url`].
    ///
    /// ```
    /// let cache = larder::Cache::from_url("memory://").unwrap();
    /// assert_eq!(cache.remote_name(), None);
    /// assert!(larder::Cache::from_url("ftp://example.com").is_err());
    /// ```
    pub fn from_url(url: &str) -> Result<Self, Error> {
        Ok(Self::builder().remote_url(url)?.build())
    }

    /// A builder to set bounds, default options and a remote store.
    ///
    /// ```
    /// let cache = larder::Cache::builder().name("users").max_bytes(64 << 20).build();
    /// # let _ = cache;
    /// ```
    pub fn builder() -> CacheBuilder {
        CacheBuilder::default()
    }

    /// A handle on the same cache whose operations use `namespace` by default.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// let users = cache.namespace("users");
    /// users.set("1", 1u8).await.unwrap();
    /// assert!(cache.get::<u8>("1").await.unwrap().is_none()); // other namespace
    /// users.clear().await;
    /// assert!(users.get::<u8>("1").await.unwrap().is_none());
    /// # }
    /// ```
    pub fn namespace(&self, namespace: impl Into<Arc<str>>) -> Cache {
        self.with_options(EntryOptions::new().namespace(namespace))
    }

    /// A handle on the same cache whose default options are `opts` over the current ones.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::new();
    /// let short = cache.with_options(larder::EntryOptions::new().ttl(Duration::from_secs(5)));
    /// # let _ = short;
    /// ```
    pub fn with_options(&self, opts: EntryOptions) -> Cache {
        Cache {
            inner: Arc::clone(&self.inner),
            defaults: Arc::new(opts.or(&self.defaults)),
        }
    }

    /// The fresh value under `key`, if any.
    ///
    /// Looks in memory, then in the remote store (filling memory on a remote hit). A value stored
    /// in memory as another type is an [`ErrorKind::TypeMismatch`]; a remote value that does not
    /// decode as `T` is a miss (counted in `decode_errors`) and is overwritten by the next set.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set("n", 5u64).await.unwrap();
    /// assert_eq!(cache.get::<u64>("n").await.unwrap().as_deref(), Some(&5));
    /// assert!(cache.get::<String>("n").await.is_err()); // wrong type: an error, not a panic
    /// # }
    /// ```
    #[inline(always)]
    pub fn get<'a, T: CacheValue>(&'a self, key: &'a str) -> Get<'a, T> {
        // The memory tier answers synchronously; only a trip to the remote store needs a state
        // machine, so only that path pays for one (boxed, built out of line).
        let ns = &self.defaults.namespace;
        if let Some(mem) = &self.inner.memory
            && let Some(value) = mem.fresh(ns, key)
        {
            return Get::ready(downcast(value, key).map(Some));
        }
        self.get_slow(key)
    }

    #[inline(never)]
    fn get_slow<'a, T: CacheValue>(&'a self, key: &'a str) -> Get<'a, T> {
        let ns = &self.defaults.namespace;
        let Some(remote) = &self.inner.remote else {
            self.inner.stats.incr(Counter::Miss);
            return Get::ready(Ok(None));
        };
        Get::running(
            async move {
                let found = self.read_remote::<T>(remote, ns, key).await.fresh();
                self.inner.stats.incr(if found.is_some() {
                    Counter::Hit
                } else {
                    Counter::Miss
                });
                Ok(found)
            }
            .boxed(),
        )
    }

    /// Whether a fresh entry exists under `key` (memory, then remote), without decoding it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set("k", true).await.unwrap();
    /// assert!(cache.contains("k").await);
    /// assert!(!cache.contains("other").await);
    /// # }
    /// ```
    pub async fn contains(&self, key: &str) -> bool {
        let ns = &self.defaults.namespace;
        if let Some(mem) = &self.inner.memory
            && matches!(mem.lookup(ns, key, clock::now_nanos()), Lookup::Fresh(_))
        {
            return true;
        }
        match &self.inner.remote {
            Some(remote) => remote.contains(self, ns, key).await,
            None => false,
        }
    }

    /// The fresh values under `keys`, in order (one remote round trip for the memory misses).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set_many([("a", 1u32), ("b", 2u32)]).await.unwrap();
    /// let got = cache.get_many::<u32>(&["a", "x", "b"]).await.unwrap();
    /// assert_eq!(got.iter().map(|v| v.as_deref().copied()).collect::<Vec<_>>(), [Some(1), None, Some(2)]);
    /// # }
    /// ```
    pub async fn get_many<T: CacheValue>(
        &self,
        keys: &[impl AsRef<str>],
    ) -> Result<Vec<Option<Arc<T>>>, Error> {
        let ns = &self.defaults.namespace;
        let mut out: Vec<Option<Arc<T>>> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
            match self.inner.memory.as_ref().and_then(|m| m.fresh(ns, key)) {
                Some(value) => out.push(Some(downcast(value, key)?)),
                None => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        // The memory tier counted its own hits; what it missed counts here.
        let mut remote_hits = 0u64;
        if let Some(remote) = &self.inner.remote
            && !missing.is_empty()
        {
            let wanted: Vec<&str> = missing.iter().map(|&i| keys[i].as_ref()).collect();
            let found = self.read_remote_many::<T>(remote, ns, &wanted).await;
            for (slot, value) in missing.iter().zip(found) {
                remote_hits += u64::from(value.is_some());
                out[*slot] = value;
            }
        }
        self.inner.stats.add(Counter::Hit, remote_hits);
        self.inner
            .stats
            .add(Counter::Miss, missing.len() as u64 - remote_hits);
        Ok(out)
    }

    /// A snapshot of the counters and the memory tier's size.
    ///
    /// ```
    /// let stats = larder::Cache::new().stats();
    /// assert_eq!(stats.entries, 0);
    /// ```
    pub fn stats(&self) -> Stats {
        let (entries, weight) = self
            .inner
            .memory
            .as_ref()
            .map_or((0, 0), |m| (m.len(), m.weight()));
        let links = Links {
            breaker_open: self.inner.remote.as_ref().is_some_and(|r| r.breaker_open()),
            backplane_connected: self.inner.coherence.as_ref().is_some_and(|c| c.connected()),
            reserved_bytes: self.inner.memory.as_ref().map_or(0, |m| m.reserved_bytes()),
        };
        self.inner.stats.snapshot(entries, weight, links)
    }

    /// Waits, at most `limit`, until the backplane subscription is up; whether it is (at once
    /// `true` for a cache without a backplane).
    ///
    /// A node drops its memory tier each time its subscription is established, the first time
    /// included, since it cannot know what it missed before it listened. An application that
    /// waits for this before it takes traffic (a readiness probe) starts coherent and keeps what
    /// it caches from its first request.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// assert!(cache.backplane_ready(std::time::Duration::from_secs(5)).await);
    /// # }
    /// ```
    pub async fn backplane_ready(&self, limit: std::time::Duration) -> bool {
        let Some(coherence) = &self.inner.coherence else {
            return true;
        };
        let deadline = clock::instant_after(limit);
        loop {
            if coherence.connected() {
                return true;
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return false;
            }
            clock::sleep((deadline - now).min(std::time::Duration::from_millis(10))).await;
        }
    }

    /// The name of the remote store ("redis", "redis-cluster", "memcached", ...), if there is one.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let cache = larder::Cache::builder().remote(Arc::new(larder::InProcessStore::new())).build();
    /// assert_eq!(cache.remote_name(), Some("in-process"));
    /// ```
    pub fn remote_name(&self) -> Option<&str> {
        self.inner.remote.as_ref().map(|r| r.name())
    }

    /// The cache's name (the `cache` label of its metrics).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Where new work starts from: now, in the current tag epoch.
    pub(crate) fn origin(&self) -> Origin {
        let now = clock::now_nanos();
        match &self.inner.memory {
            Some(mem) => mem.origin(now),
            None => Origin { at: now, epoch: 0 },
        }
    }
}

/// Turns a type-erased value into `Arc<T>`, or a typed error.
#[inline]
pub(crate) fn downcast<T: Send + Sync + 'static>(
    value: AnyValue,
    key: &str,
) -> Result<Arc<T>, Error> {
    value.downcast::<T>().map_err(|_| mismatch::<T>(key))
}

#[cold]
#[inline(never)]
fn mismatch<T>(key: &str) -> Error {
    ErrorKind::TypeMismatch {
        key: key.to_owned(),
        expected: std::any::type_name::<T>(),
    }
    .into()
}
