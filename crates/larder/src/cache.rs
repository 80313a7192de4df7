//! The [`Cache`] handle and its builder.

use std::any::Any;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use serde::{Serialize, de::DeserializeOwned};

use crate::breaker::BreakerConfig;
use crate::codec::{EncodeOptions, Format};
use crate::error::Error;
use crate::flight::Flights;
use crate::future::Get;
use crate::memory::{Bounds, Entry, Lookup, MemoryTier, Origin, WeigherFn};
use crate::options::{EntryOptions, Resolved};
use crate::remote::Remote;
use crate::stats::{Counter, Recorder, Stats};
use crate::{clock, codec};
use larder_store::Store;

/// A value a [`Cache`] can hold: shared between threads and serializable for remote stores.
///
/// Implemented for every `T: Serialize + DeserializeOwned + Send + Sync + 'static`.
pub trait CacheValue: Serialize + DeserializeOwned + Send + Sync + 'static {}

impl<T: Serialize + DeserializeOwned + Send + Sync + 'static> CacheValue for T {}

/// An async cache with an in-process memory tier and an optional remote [`Store`].
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
///     .get_or_fetch("user:1", EntryOptions::new(), || async {
///         // the expensive call: runs once however many callers ask at the same time
///         Ok::<_, std::io::Error>(String::from("Ada"))
///     })
///     .await?;
/// assert_eq!(*user, "Ada");
/// assert_eq!(cache.get::<String>("user:1").await?.as_deref().map(String::as_str), Some("Ada"));
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Cache {
    pub(crate) inner: Arc<Inner>,
    pub(crate) defaults: Arc<Resolved>,
}

pub(crate) struct Inner {
    pub(crate) name: Arc<str>,
    pub(crate) memory: Option<MemoryTier>,
    pub(crate) remote: Option<Remote>,
    pub(crate) flights: Arc<Flights>,
    pub(crate) stats: Arc<Recorder>,
    pub(crate) encode: EncodeOptions,
    pub(crate) weigher: Option<Box<WeigherFn>>,
}

impl fmt::Debug for Cache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.inner.name)
            .field("namespace", &self.defaults.namespace)
            .field("memory", &self.inner.memory.as_ref().map(|m| m.bounds()))
            .field("remote", &self.inner.remote.as_ref().map(|r| r.name()))
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
    /// in memory as another type is an [`Error::TypeMismatch`]; a remote value that does not
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
    pub fn get<'a, T: CacheValue>(&'a self, key: &'a str) -> Get<'a, T> {
        // The memory tier answers synchronously; only a trip to the remote store needs a state
        // machine, so only that path pays for one (boxed, off the hit path).
        let ns = &self.defaults.namespace;
        if let Some(mem) = &self.inner.memory
            && let Lookup::Fresh(entry) = mem.lookup(ns, key, clock::now_nanos())
        {
            self.inner.stats.incr(Counter::Hit);
            return Get::ready(downcast(entry.value, key).map(Some));
        }
        let Some(remote) = &self.inner.remote else {
            self.inner.stats.incr(Counter::Miss);
            return Get::ready(Ok(None));
        };
        Get::running(
            async move {
                let found = remote.lookup::<T>(self, ns, key).await.fresh();
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

    /// Stores `value` under `key` with the handle's default options.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set("greeting", String::from("hi")).await.unwrap();
    /// # }
    /// ```
    pub async fn set<T: CacheValue>(&self, key: &str, value: T) -> Result<(), Error> {
        let opts = (*self.defaults).clone();
        self.inner.flights.supersede(&opts.namespace, key);
        self.store(key, Arc::new(value), &opts, self.origin()).await
    }

    /// Stores `value` under `key` with `opts` over the handle's defaults.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use larder::EntryOptions;
    /// let cache = larder::Cache::new();
    /// let opts = EntryOptions::new().ttl(Duration::from_secs(30)).tags(["user:1"]);
    /// cache.set_with("user:1:name", "Ada".to_string(), opts).await.unwrap();
    /// # }
    /// ```
    pub async fn set_with<T: CacheValue>(
        &self,
        key: &str,
        value: T,
        opts: EntryOptions,
    ) -> Result<(), Error> {
        let opts = opts.or(&self.defaults);
        self.inner.flights.supersede(&opts.namespace, key);
        self.store(key, Arc::new(value), &opts, self.origin()).await
    }

    /// Removes `key` from memory and from the remote store; whether either held it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set("k", 1u8).await.unwrap();
    /// assert!(cache.delete("k").await);
    /// assert!(!cache.contains("k").await);
    /// # }
    /// ```
    pub async fn delete(&self, key: &str) -> bool {
        let ns = &self.defaults.namespace;
        self.inner.flights.supersede(ns, key);
        let in_memory = self
            .inner
            .memory
            .as_ref()
            .is_some_and(|m| m.remove(ns, key));
        let in_remote = match &self.inner.remote {
            Some(remote) => remote.delete(self, ns, key).await,
            None => false,
        };
        in_memory || in_remote
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
        let now = clock::now_nanos();
        let mut out: Vec<Option<Arc<T>>> = Vec::with_capacity(keys.len());
        let mut missing = Vec::new();
        for (i, key) in keys.iter().enumerate() {
            let key = key.as_ref();
            match self.inner.memory.as_ref().map(|m| m.lookup(ns, key, now)) {
                Some(Lookup::Fresh(entry)) => out.push(Some(downcast(entry.value, key)?)),
                _ => {
                    out.push(None);
                    missing.push(i);
                }
            }
        }
        if let Some(remote) = &self.inner.remote
            && !missing.is_empty()
        {
            let wanted: Vec<&str> = missing.iter().map(|&i| keys[i].as_ref()).collect();
            let found = remote.lookup_many::<T>(self, ns, &wanted).await;
            for (slot, value) in missing.iter().zip(found) {
                out[*slot] = value;
            }
        }
        let hits = out.iter().filter(|v| v.is_some()).count() as u64;
        self.inner.stats.add(Counter::Hit, hits);
        self.inner.stats.add(Counter::Miss, out.len() as u64 - hits);
        Ok(out)
    }

    /// Stores many values with the handle's default options (pipelined to the remote store).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new();
    /// cache.set_many((0..3).map(|i| (format!("k{i}"), i))).await.unwrap();
    /// assert!(cache.contains("k2").await);
    /// # }
    /// ```
    pub async fn set_many<K, T, I>(&self, items: I) -> Result<(), Error>
    where
        K: AsRef<str>,
        T: CacheValue,
        I: IntoIterator<Item = (K, T)>,
    {
        let opts = &*self.defaults;
        let origin = self.origin();
        let items: Vec<(K, Arc<T>)> = items.into_iter().map(|(k, v)| (k, Arc::new(v))).collect();
        for (key, value) in &items {
            self.inner.flights.supersede(&opts.namespace, key.as_ref());
            self.store_memory(key.as_ref(), value, opts, origin, None);
        }
        if let Some(remote) = &self.inner.remote {
            remote.set_many(self, opts, &items).await?;
        }
        Ok(())
    }

    /// Empties this handle's namespace, in memory and in the remote store.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache = larder::Cache::new().namespace("pages");
    /// cache.set("home", "<html>".to_string()).await.unwrap();
    /// cache.clear().await;
    /// assert!(!cache.contains("home").await);
    /// # }
    /// ```
    pub async fn clear(&self) {
        let ns = &self.defaults.namespace;
        self.inner.flights.supersede_namespace(ns);
        if let Some(mem) = &self.inner.memory {
            mem.clear_namespace(ns);
        }
        if let Some(remote) = &self.inner.remote {
            remote.clear_namespace(self, ns).await;
        }
    }

    /// Invalidates every entry tagged `tag`, in every namespace, in memory and remote. O(1): no
    /// entry is visited; tagged entries written before now read as misses from now on.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use larder::EntryOptions;
    /// let cache = larder::Cache::new();
    /// cache.set_with("user:1:profile", 1u8, EntryOptions::new().tags(["user:1"])).await.unwrap();
    /// cache.invalidate_tag("user:1").await;
    /// assert!(!cache.contains("user:1:profile").await);
    /// # }
    /// ```
    pub async fn invalidate_tag(&self, tag: &str) {
        self.invalidate_tags(&[tag]).await
    }

    /// Invalidates every entry carrying any of `tags`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// larder::Cache::new().invalidate_tags(&["a", "b"]).await;
    /// # }
    /// ```
    pub async fn invalidate_tags(&self, tags: &[&str]) {
        if let Some(mem) = &self.inner.memory {
            mem.invalidate_tags(tags, clock::now_nanos());
        }
        if let Some(remote) = &self.inner.remote {
            remote.invalidate_tags(self, tags).await;
        }
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
        let breaker_open = self.inner.remote.as_ref().is_some_and(|r| r.breaker_open());
        self.inner.stats.snapshot(entries, weight, breaker_open)
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

    /// Writes a value to both tiers. `origin` carries the tag epoch of when the work that produced
    /// it started, so a tag invalidated while that work ran still applies to the result; the ttl
    /// counts from the write, in both tiers.
    pub(crate) async fn store<T: CacheValue>(
        &self,
        key: &str,
        value: Arc<T>,
        opts: &Resolved,
        origin: Origin,
    ) -> Result<(), Error> {
        match &self.inner.remote {
            Some(remote) => {
                let bytes = remote.set(self, key, &value, opts).await?;
                self.store_memory(key, &value, opts, origin, bytes);
            }
            None => self.store_memory(key, &value, opts, origin, None),
        }
        Ok(())
    }

    /// Inserts into the memory tier. `encoded` is the envelope size when one was made.
    pub(crate) fn store_memory<T: CacheValue>(
        &self,
        key: &str,
        value: &Arc<T>,
        opts: &Resolved,
        origin: Origin,
        encoded: Option<u64>,
    ) {
        let Some(mem) = &self.inner.memory else {
            return;
        };
        // Freshness counts from now, as in the remote envelope; only the tag epoch comes from when
        // the work started.
        let origin = Origin {
            at: clock::now_nanos(),
            ..origin
        };
        let fresh_until = clock::deadline(origin.at, opts.ttl);
        let stale_until = clock::deadline(fresh_until, opts.stale);
        let bytes = if mem.bounds().needs_bytes() {
            self.weigh(key, value, encoded)
        } else {
            0
        };
        let any: Arc<dyn Any + Send + Sync> = value.clone();
        let entry = Entry::new(any, origin, fresh_until, stale_until, opts.tags.clone());
        mem.insert(&opts.namespace, key, entry, bytes, clock::now_nanos());
    }

    fn weigh<T: CacheValue>(&self, key: &str, value: &Arc<T>, encoded: Option<u64>) -> u64 {
        const OVERHEAD: u64 = 96; // the entry, its key header and the Arc, roughly
        let user = self
            .inner
            .weigher
            .as_ref()
            .and_then(|w| w(key, &**value as &(dyn Any + Send + Sync)));
        let body = user.or(encoded).unwrap_or_else(|| {
            codec::encoded_len(&**value, Format::MessagePack).max(size_of::<T>() as u64)
        });
        body.saturating_add(key.len() as u64 + OVERHEAD)
    }
}

/// Turns a type-erased value into `Arc<T>`, or a typed error.
#[inline]
pub(crate) fn downcast<T: Send + Sync + 'static>(
    value: Arc<dyn Any + Send + Sync>,
    key: &str,
) -> Result<Arc<T>, Error> {
    value.downcast::<T>().map_err(|_| Error::TypeMismatch {
        key: key.to_owned(),
        expected: std::any::type_name::<T>(),
    })
}

/// Builds a [`Cache`].
///
/// ```
/// use std::time::Duration;
/// use larder::{Cache, EntryOptions};
///
/// let cache = Cache::builder()
///     .name("api")
///     .max_entries(50_000)
///     .max_bytes(256 << 20)
///     .weigher(|_key, value| value.downcast_ref::<Vec<u8>>().map(|b| b.len() as u64))
///     .default_options(EntryOptions::new().ttl(Duration::from_secs(60)).stale(Duration::from_secs(600)))
///     .build();
/// # let _ = cache;
/// ```
pub struct CacheBuilder {
    name: Arc<str>,
    bounds: Bounds,
    memory: bool,
    weigher: Option<Box<WeigherFn>>,
    defaults: EntryOptions,
    remote: Option<Arc<dyn Store>>,
    store_timeout: Duration,
    breaker: BreakerConfig,
    encode: EncodeOptions,
}

impl Default for CacheBuilder {
    fn default() -> Self {
        Self {
            name: Arc::from("default"),
            bounds: Bounds {
                max_entries: Some(100_000),
                max_bytes: None,
            },
            memory: true,
            weigher: None,
            defaults: EntryOptions::new(),
            remote: None,
            store_timeout: Duration::from_millis(250),
            breaker: BreakerConfig::default(),
            encode: EncodeOptions::default(),
        }
    }
}

impl fmt::Debug for CacheBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheBuilder")
            .field("name", &self.name)
            .field("bounds", &self.bounds)
            .field("memory", &self.memory)
            .field("defaults", &self.defaults)
            .field("remote", &self.remote.as_ref().map(|r| r.name().to_owned()))
            .field("store_timeout", &self.store_timeout)
            .field("breaker", &self.breaker)
            .field("encode", &self.encode)
            .finish_non_exhaustive()
    }
}

impl CacheBuilder {
    /// Names the cache; the name labels its metrics (`cache="name"`).
    pub fn name(mut self, name: impl Into<Arc<str>>) -> Self {
        self.name = name.into();
        self
    }

    /// Bounds the memory tier to `n` entries (default 100,000; at least 1).
    pub fn max_entries(mut self, n: u64) -> Self {
        self.bounds.max_entries = Some(n.max(1));
        self
    }

    /// Bounds the memory tier to `bytes` of estimated weight, in addition to the entry bound.
    /// Each entry weighs what the [`weigher`](Self::weigher) says, or else the size of its
    /// MessagePack encoding plus its key and a fixed overhead.
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.bounds.max_bytes = Some(bytes.max(1));
        self
    }

    /// Removes the entry-count bound (keep a byte bound then, or memory is unbounded).
    pub fn unbounded_entries(mut self) -> Self {
        self.bounds.max_entries = None;
        self
    }

    /// Weighs values for the byte bound: return `Some(bytes)` for the types you know, `None` to
    /// use the default estimate.
    pub fn weigher<F>(mut self, weigher: F) -> Self
    where
        F: Fn(&str, &(dyn Any + Send + Sync)) -> Option<u64> + Send + Sync + 'static,
    {
        self.weigher = Some(Box::new(weigher));
        self
    }

    /// Turns the memory tier off (remote store only); ignored when there is no remote store.
    pub fn memory(mut self, enabled: bool) -> Self {
        self.memory = enabled;
        self
    }

    /// The options every call inherits unless it overrides them.
    pub fn default_options(mut self, opts: EntryOptions) -> Self {
        self.defaults = opts;
        self
    }

    /// A remote store shared by every process, as the second tier (or the only one with
    /// `.memory(false)`).
    pub fn remote(mut self, store: Arc<dyn Store>) -> Self {
        self.remote = Some(store);
        self
    }

    /// The remote store a URL names (see [`Cache::from_url`]); `memory://` means none.
    ///
    /// ```
    /// # fn main() -> Result<(), larder::Error> {
    /// let url = std::env::var("LARDER_URL").unwrap_or_else(|_| "memory://".into());
    /// let cache = larder::Cache::builder().name("api").remote_url(&url)?.build();
    /// # let _ = cache;
    /// # Ok(())
    /// # }
    /// ```
    pub fn remote_url(mut self, url: &str) -> Result<Self, Error> {
        self.remote = crate::url::store_from_url(url)?;
        Ok(self)
    }

    /// How long any one remote store call may take before it counts as failed (default 250 ms).
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// After this many consecutive failed store calls (default 3) the circuit breaker opens and
    /// the cache stops calling the store for a back-off period, serving from memory and
    /// factories; 0 never opens it.
    ///
    /// ```
    /// use std::time::Duration;
    /// let cache = larder::Cache::builder()
    ///     .breaker_failures(5)
    ///     .breaker_backoff(Duration::from_millis(200), Duration::from_secs(10))
    ///     .build();
    /// assert!(!cache.stats().breaker_open);
    /// ```
    pub fn breaker_failures(mut self, failures: u32) -> Self {
        self.breaker.threshold = failures;
        self
    }

    /// How long an open breaker skips the store: `first` after opening (default 500 ms), then
    /// doubling after each failed probe up to `max` (default 30 s). One call probes the store
    /// when a back-off ends; its success closes the breaker.
    pub fn breaker_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.breaker.min_backoff = first;
        self.breaker.max_backoff = max.max(first);
        self
    }

    /// The payload codec of envelopes in the remote store (default MessagePack).
    pub fn format(mut self, format: Format) -> Self {
        self.encode.format = format;
        self
    }

    /// Compress payloads of at least this many bytes (default 4096; `None` never compresses).
    pub fn compress_above(mut self, bytes: Option<usize>) -> Self {
        self.encode.compress_above = bytes;
        self
    }

    /// Builds the cache.
    pub fn build(self) -> Cache {
        let stats = Arc::new(Recorder::new(&self.name));
        let memory = (self.memory || self.remote.is_none())
            .then(|| MemoryTier::new(self.bounds, Arc::clone(&stats)));
        let remote = self.remote.map(|store| {
            Remote::new(
                store,
                self.store_timeout,
                self.breaker,
                Arc::clone(&self.name),
            )
        });
        let defaults = self.defaults.or(&Resolved::builtin());
        Cache {
            inner: Arc::new(Inner {
                name: self.name,
                memory,
                remote,
                flights: Arc::new(Flights::new()),
                stats,
                encode: self.encode,
                weigher: self.weigher,
            }),
            defaults: Arc::new(defaults),
        }
    }
}
