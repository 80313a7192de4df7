//! [`CacheBuilder`]: bounds, default options, the remote store and the backplane.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::backplane::Coherence;
use crate::breaker::BreakerConfig;
use crate::cache::{Cache, Inner};
use crate::codec::{EncodeOptions, Format};
use crate::error::Error;
use crate::failing::Failing;
use crate::flight::Flights;
use crate::guard::Guard;
use crate::memory::{Bounds, MemoryTier, Weighers};
use crate::options::{EntryOptions, Resolved};
use crate::remote::Remote;
use crate::stats::Recorder;
use larder_store::{Backplane, Store};

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
///     .weigher(|_key, page: &Vec<u8>| page.len() as u64)
///     .default_options(EntryOptions::new().ttl(Duration::from_secs(60)).stale(Duration::from_secs(600)))
///     .build();
/// # let _ = cache;
/// ```
pub struct CacheBuilder {
    name: Arc<str>,
    bounds: Bounds,
    memory: bool,
    weighers: Weighers,
    defaults: EntryOptions,
    remote: Option<Arc<dyn Store>>,
    backplane: Option<Arc<dyn Backplane>>,
    store_timeout: Duration,
    breaker: BreakerConfig,
    encode: EncodeOptions,
    read_budget: usize,
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
            weighers: Weighers::default(),
            defaults: EntryOptions::new(),
            remote: None,
            backplane: None,
            store_timeout: Duration::from_millis(250),
            breaker: BreakerConfig::default(),
            encode: EncodeOptions::default(),
            read_budget: crate::remote::READ_BUDGET,
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
            .field(
                "backplane",
                &self.backplane.as_ref().map(|b| b.name().to_owned()),
            )
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
    ///
    /// The bound counts what is held, not only what is cached: an entry of 64 KiB or more is not
    /// evicted while a caller still holds its value (the `Arc<T>` a `get` returned, a response
    /// body being sent), since its bytes are still in memory; room is made from entries nobody
    /// holds, and when every large entry is held, a new one is not kept. Memory reservations
    /// ([`Cache::reserve_memory`]) share the bound too.
    ///
    /// ```
    /// let cache = larder::Cache::builder().max_bytes(256 << 20).build();
    /// assert_eq!(cache.max_reservation(), Some(128 << 20));
    /// ```
    pub fn max_bytes(mut self, bytes: u64) -> Self {
        self.bounds.max_bytes = Some(bytes.max(1));
        self
    }

    /// Removes the entry-count bound (keep a byte bound then, or memory is unbounded).
    pub fn unbounded_entries(mut self) -> Self {
        self.bounds.max_entries = None;
        self
    }

    /// Weighs values of type `T` for the byte bound: what one value held in memory costs, in
    /// bytes (the key and the entry's own overhead are added). Call it once per type; values of
    /// a type without a weigher weigh the size of their MessagePack encoding.
    ///
    /// ```
    /// use std::sync::Arc;
    ///
    /// struct Thumbnail { pixels: Vec<u8> }
    ///
    /// let cache = larder::Cache::builder()
    ///     .max_bytes(64 << 20)
    ///     .weigher(|_key, page: &String| page.len() as u64)
    ///     .weigher(|_key, image: &Arc<Thumbnail>| image.pixels.len() as u64)
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn weigher<T, F>(mut self, weigher: F) -> Self
    where
        T: 'static,
        F: Fn(&str, &T) -> u64 + Send + Sync + 'static,
    {
        self.weighers.insert::<T>(Box::new(weigher));
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
        let links = crate::url::links_from_url(url)?;
        self.remote = links.store;
        self.backplane = links.backplane;
        Ok(self)
    }

    /// A backplane that keeps this node's memory tier coherent with every other node's: each
    /// write, delete, namespace clear and tag invalidation is published after it reaches the
    /// remote store, and other nodes drop what it names from memory. `Cache::from_url` with a
    /// `redis://` URL sets one up by itself (`?backplane=off` to do without).
    ///
    /// ```no_run
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use std::sync::Arc;
    /// # #[cfg(feature = "redis")] {
    /// let store = larder::redis::RedisStore::open("redis://127.0.0.1:6379")?;
    /// let backplane = store.backplane();
    /// let cache = larder::Cache::builder()
    ///     .remote(Arc::new(store))
    ///     .backplane(Arc::new(backplane))
    ///     .build();
    /// # let _ = cache; }
    /// # Ok(()) }
    /// ```
    pub fn backplane(mut self, backplane: Arc<dyn Backplane>) -> Self {
        self.backplane = Some(backplane);
        self
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

    /// The bytes of large envelopes (over 256 KiB) read from the remote store and decoded at
    /// once (default 16 MiB). A read of a large value first learns its length, then waits its
    /// turn within this budget (up to five seconds, else it reads as a miss), so any number of
    /// concurrent remote hits of large values hold at most this much being read and decoded,
    /// beside the memory bound. An envelope larger than the budget is read alone.
    ///
    /// ```
    /// let cache = larder::Cache::builder().remote_read_budget(64 << 20).build();
    /// # let _ = cache;
    /// ```
    pub fn remote_read_budget(mut self, bytes: usize) -> Self {
        self.read_budget = bytes.max(1);
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
        let failing = Arc::new(Failing::default());
        let memory = (self.memory || self.remote.is_none())
            .then(|| MemoryTier::new(self.bounds, Arc::clone(&stats), Arc::clone(&failing)));
        let remote = self.remote.map(|store| {
            Remote::new(
                store,
                self.store_timeout,
                self.breaker,
                Arc::clone(&self.name),
                self.read_budget,
            )
        });
        let coherence = self.backplane.map(|backplane| {
            let guard = Guard::new(
                self.store_timeout,
                self.breaker,
                Arc::clone(&self.name),
                "backplane",
                backplane.name(),
                "larder_backplane_breaker_open",
            );
            Coherence::new(backplane, guard)
        });
        let defaults = self.defaults.or(&Resolved::builtin());
        let inner = Arc::new(Inner {
            name: self.name,
            memory,
            remote,
            coherence,
            flights: Arc::new(Flights::new()),
            failing,
            stats,
            encode: self.encode,
            weighers: self.weighers,
            lock_without_store: std::sync::Once::new(),
        });
        if let Some(coherence) = &inner.coherence {
            // The listener holds the cache weakly: dropping the last handle stops it.
            coherence.start(Arc::downgrade(&inner));
        }
        Cache {
            inner,
            defaults: Arc::new(defaults),
        }
    }
}
