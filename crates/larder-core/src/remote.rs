//! The cache's side of a remote [`Store`]: time limits, envelope encoding and decoding, tag
//! checks, and degrading quietly when the store fails. It returns what it read; where a value
//! goes next (the memory tier) is the read path's business (`tiers.rs`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::breaker::BreakerConfig;
use crate::cache::{Cache, CacheValue};
use crate::clock;
use crate::codec::Envelope;
use crate::engine::MemoryReservation;
use crate::error::{Error, ErrorKind};
use crate::guard::Guard;
use crate::options::Resolved;
use crate::stats::Counter;
use larder_store::{Store, StoreEntry, StoreFuture, StoreKey, StoreRead};

/// Envelopes up to this long are read whole in one round trip; longer ones are read within the
/// read budget.
const WHOLE: usize = 256 << 10;
/// The default bytes of large envelopes being read and decoded at once.
pub(crate) const READ_BUDGET: usize = 8 << 20;
/// The longest a large read waits for its turn within the budget before it reads as a miss.
const READ_WAIT: Duration = Duration::from_secs(5);

pub(crate) struct Remote {
    store: Arc<dyn Store>,
    guard: Guard,
    /// Permits of the read budget, one per byte (capped at `u32::MAX`).
    reads: Arc<tokio::sync::Semaphore>,
    read_budget: u32,
}

/// What the remote store holds under a key.
pub(crate) enum RemoteLookup<T> {
    Fresh(Arc<T>),
    /// Past its ttl, inside its stale window, with that window's end (monotonic).
    Stale(Arc<T>, u64),
    Miss,
}

/// What a read of the store decoded: the value with its instants and tags, for the read path
/// to put in the memory tier (or not) and hand out.
pub(crate) enum Read<T> {
    Found(Found<T>),
    /// Nothing usable (missing, undecodable, expired, an old tag): counted as a remote miss.
    Miss,
    /// A large value that found no turn in the read budget or no room in time: a miss, counted.
    Deferred,
}

pub(crate) struct Found<T> {
    pub(crate) value: Arc<T>,
    /// Monotonic instants.
    pub(crate) fresh_until: u64,
    pub(crate) stale_until: u64,
    pub(crate) fresh: bool,
    pub(crate) tags: Option<Arc<[Arc<str>]>>,
    /// The payload's length before compression: what the value weighs, held decoded.
    pub(crate) decoded_len: u64,
    /// The envelope was large (64 KiB or more): such a value is handed out only if the memory
    /// tier keeps it, where the bound counts it while it is in use.
    pub(crate) large: bool,
    /// Room it reserved in the memory bound before it was read, if any.
    pub(crate) room: Option<MemoryReservation>,
}

impl<T> RemoteLookup<T> {
    pub(crate) fn fresh(self) -> Option<Arc<T>> {
        match self {
            Self::Fresh(v) => Some(v),
            _ => None,
        }
    }
}

impl Remote {
    pub(crate) fn new(
        store: Arc<dyn Store>,
        timeout: Duration,
        breaker: BreakerConfig,
        cache_name: Arc<str>,
        read_budget: usize,
    ) -> Self {
        let guard = Guard::new(
            timeout,
            breaker,
            cache_name,
            "remote store",
            store.name(),
            "larder_breaker_open",
        );
        let read_budget = u32::try_from(read_budget).unwrap_or(u32::MAX);
        Self {
            store,
            guard,
            reads: Arc::new(tokio::sync::Semaphore::new(read_budget as usize)),
            read_budget,
        }
    }

    pub(crate) fn breaker_open(&self) -> bool {
        self.guard.is_open()
    }

    pub(crate) fn name(&self) -> &str {
        self.store.name()
    }

    /// One store call under the time limit and the circuit breaker; `None` if it failed or was
    /// skipped (see [`Guard::call`]).
    pub(crate) async fn call<R>(&self, cache: &Cache, fut: StoreFuture<'_, R>) -> Option<R> {
        self.guard.call(&cache.inner.stats, fut).await
    }

    pub(crate) async fn lookup<T: CacheValue>(
        &self,
        cache: &Cache,
        ns: &Arc<str>,
        key: &str,
    ) -> Read<T> {
        let read = self
            .call(cache, self.store.get_within(StoreKey::new(ns, key), WHOLE))
            .await
            .flatten();
        let len = match read {
            Some(StoreRead::Whole(bytes)) => {
                return self.decode(cache, key, Some(bytes), None).await;
            }
            Some(StoreRead::Longer(len)) => len,
            _ => return self.decode(cache, key, None, None).await,
        };
        // A large envelope: its turn within the read budget first, so concurrent reads of large
        // values hold at most the budget being read and decoded (what is decoded then goes to
        // the memory tier, within its bound).
        let want = u32::try_from(len).unwrap_or(u32::MAX).min(self.read_budget);
        let deadline = clock::instant_after(READ_WAIT);
        let turn = clock::timeout(READ_WAIT, self.reads.clone().acquire_many_owned(want));
        let Ok(Ok(_turn)) = turn.await else {
            return Read::Deferred;
        };
        // And room for the value in the memory bound, before it is read: a large value is only
        // handed out from the memory tier, where the bound counts it while it is in use.
        let room = match cache.max_reservation() {
            Some(most) if len <= most => match wait_for_room(cache, len, deadline).await {
                Some(room) => Some(room),
                None => return Read::Deferred,
            },
            // Larger than a reservation may be: it takes its chance with the entries.
            _ => None,
        };
        let bytes = self
            .call(cache, self.store.get(StoreKey::new(ns, key)))
            .await;
        self.decode(cache, key, bytes.flatten(), room).await
    }

    pub(crate) async fn lookup_many<T: CacheValue>(
        &self,
        cache: &Cache,
        ns: &Arc<str>,
        keys: &[&str],
    ) -> Vec<Read<T>> {
        let store_keys: Vec<StoreKey<'_>> = keys.iter().map(|k| StoreKey::new(ns, k)).collect();
        let Some(found) = self.call(cache, self.store.get_many(&store_keys)).await else {
            return keys.iter().map(|_| Read::Miss).collect();
        };
        let mut out = Vec::with_capacity(keys.len());
        for (i, key) in keys.iter().enumerate() {
            let bytes = found.get(i).cloned().flatten();
            out.push(self.decode::<T>(cache, key, bytes, None).await);
        }
        out
    }

    /// Decodes what the store returned and checks its expiry and tags.
    async fn decode<T: CacheValue>(
        &self,
        cache: &Cache,
        key: &str,
        bytes: Option<Bytes>,
        room: Option<MemoryReservation>,
    ) -> Read<T> {
        let Some(bytes) = bytes else {
            return Read::Miss;
        };
        let large = bytes.len() as u64 >= crate::memory::LARGE_ENTRY;
        let decoded = Envelope::decode(&bytes).and_then(|env| Ok((env.value::<T>()?, env)));
        let (value, env) = match decoded {
            Ok(v) => v,
            Err(error) => {
                tracing::debug!(cache = %cache.inner.name, key, %error, "undecodable remote entry");
                cache.inner.stats.incr(Counter::DecodeError);
                return Read::Miss;
            }
        };
        let now_unix = clock::unix_millis();
        if now_unix >= env.stale_until_ms || !self.tags_current(cache, &env).await {
            return Read::Miss;
        }
        let now = clock::now_nanos();
        let tags = (!env.tags.is_empty()).then(|| {
            env.tags
                .iter()
                .map(|(t, _)| Arc::from(t.as_ref()))
                .collect()
        });
        Read::Found(Found {
            value: Arc::new(value),
            fresh_until: clock::unix_millis_to_mono(env.fresh_until_ms, now, now_unix),
            stale_until: clock::unix_millis_to_mono(env.stale_until_ms, now, now_unix),
            fresh: now_unix < env.fresh_until_ms,
            tags,
            decoded_len: env.payload.len() as u64,
            large,
            room,
        })
    }

    /// Whether every tag of the envelope still has the version it was written under.
    async fn tags_current(&self, cache: &Cache, env: &Envelope<'_>) -> bool {
        if env.tags.is_empty() {
            return true;
        }
        let names: Vec<&str> = env.tags.iter().map(|(t, _)| t.as_ref()).collect();
        match self.call(cache, self.store.tag_versions(&names)).await {
            Some(current) => {
                current.len() == env.tags.len()
                    && env.tags.iter().zip(current).all(|((_, v), c)| *v == c)
            }
            None => false,
        }
    }

    pub(crate) async fn contains(&self, cache: &Cache, ns: &str, key: &str) -> bool {
        let Some(Some(bytes)) = self
            .call(cache, self.store.get(StoreKey::new(ns, key)))
            .await
        else {
            return false;
        };
        match Envelope::decode(&bytes) {
            Ok(env) => {
                clock::unix_millis() < env.fresh_until_ms && self.tags_current(cache, &env).await
            }
            Err(_) => false,
        }
    }

    /// Encodes and writes one value; returns the size of its payload before compression (what
    /// it weighs decoded, near enough), or `None` if nothing was encoded (a ttl of zero, or tag
    /// versions the store could not give).
    pub(crate) async fn set<T: CacheValue>(
        &self,
        cache: &Cache,
        key: &str,
        value: &Arc<T>,
        opts: &Resolved,
    ) -> Result<Option<u64>, Error> {
        let Some((bytes, ttl)) = self.encode(cache, key, &**value, opts).await? else {
            return Ok(None);
        };
        let len = crate::codec::payload_len(&bytes).unwrap_or(bytes.len() as u64);
        let key = StoreKey::new(&opts.namespace, key);
        self.call(cache, self.store.set(key, bytes, ttl)).await;
        Ok(Some(len))
    }

    pub(crate) async fn set_many<K: AsRef<str>, T: CacheValue>(
        &self,
        cache: &Cache,
        opts: &Resolved,
        items: &[(K, Arc<T>)],
    ) -> Result<(), Error> {
        let mut entries = Vec::with_capacity(items.len());
        for (key, value) in items {
            if let Some((bytes, ttl)) = self.encode(cache, key.as_ref(), &**value, opts).await? {
                entries.push(StoreEntry {
                    key: StoreKey::new(&opts.namespace, key.as_ref()),
                    value: bytes,
                    ttl,
                });
            }
        }
        if !entries.is_empty() {
            self.call(cache, self.store.set_many(entries)).await;
        }
        Ok(())
    }

    /// The envelope and its physical ttl (end of the stale window).
    async fn encode<T: CacheValue>(
        &self,
        cache: &Cache,
        key: &str,
        value: &T,
        opts: &Resolved,
    ) -> Result<Option<(Bytes, Duration)>, Error> {
        let physical = opts.ttl.saturating_add(opts.stale);
        if physical.is_zero() {
            return Ok(None);
        }
        let tag_names: Vec<&str> = opts
            .tags
            .iter()
            .flat_map(|t| t.iter().map(|s| &**s))
            .collect();
        let versions = if tag_names.is_empty() {
            Vec::new()
        } else {
            // Without the current versions a tagged entry could outlive an invalidation: skip it.
            match self.call(cache, self.store.tag_versions(&tag_names)).await {
                Some(v) if v.len() == tag_names.len() => v,
                _ => return Ok(None),
            }
        };
        let tags: Vec<(&str, u64)> = tag_names.iter().copied().zip(versions).collect();
        let now = clock::unix_millis();
        let fresh_until = now.saturating_add(millis(opts.ttl));
        let stale_until = fresh_until.saturating_add(millis(opts.stale));
        let bytes = Envelope::encode(value, fresh_until, stale_until, &tags, cache.inner.encode)
            .map_err(|source| {
                Error::from(ErrorKind::Encode {
                    key: key.to_owned(),
                    source,
                })
            })?;
        Ok(Some((bytes, physical)))
    }

    /// Takes the distributed lock of `key` marked with `token`; `None` if the store could not say
    /// (down, breaker open, no locks).
    pub(crate) async fn try_lock(
        &self,
        cache: &Cache,
        ns: &str,
        key: &str,
        token: &[u8],
        ttl: Duration,
    ) -> Option<bool> {
        let lock = self.store.try_lock(StoreKey::new(ns, key), token, ttl);
        self.call(cache, lock).await
    }

    /// Releases the lock of `key` if `token` still holds it.
    pub(crate) async fn unlock(&self, cache: &Cache, ns: &str, key: &str, token: &[u8]) {
        let unlock = self.store.unlock(StoreKey::new(ns, key), token);
        self.call(cache, unlock).await;
    }

    pub(crate) async fn delete(&self, cache: &Cache, ns: &str, key: &str) -> bool {
        self.call(cache, self.store.delete(StoreKey::new(ns, key)))
            .await
            .unwrap_or(false)
    }

    pub(crate) async fn clear_namespace(&self, cache: &Cache, ns: &str) {
        self.call(cache, self.store.clear_namespace(ns)).await;
    }

    pub(crate) async fn invalidate_tags(&self, cache: &Cache, tags: &[&str]) {
        self.call(cache, self.store.invalidate_tags(tags)).await;
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// A reservation of `len` bytes of the memory bound, waited for until `deadline`: taking it
/// evicts entries not in use; while the bound is all in use (reservations, or entries a caller
/// still holds), it is retried as room comes back.
async fn wait_for_room(
    cache: &Cache,
    len: u64,
    deadline: std::time::Instant,
) -> Option<crate::engine::MemoryReservation> {
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(room) = cache.reserve_memory(len) {
            return Some(room);
        }
        if std::time::Instant::now() + pause > deadline {
            return None;
        }
        clock::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}
