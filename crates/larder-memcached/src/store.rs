//! [`MemcachedStore`]: the [`Store`] trait over memcached's text protocol.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_memcached::{AsciiProtocol, Error as McError, MetaProtocol, Status};
use bytes::Bytes;
use larder_store::{Store, StoreEntry, StoreError, StoreFuture, StoreKey, percent_decode};

use crate::Error;
use crate::generations::KnownGenerations;
use crate::layout::Layout;
use crate::pool::{Pool, on};

/// Memcached reads an expiry above 30 days as a Unix time, not a duration.
const RELATIVE_EXPIRY_LIMIT: u64 = 60 * 60 * 24 * 30;

/// Bytes of namespace generation in front of every stored envelope.
const GENERATION_LEN: usize = 8;

/// A remote store on one memcached server.
///
/// Entries are larder envelopes stored with an expiry at the end of their stale window (rounded up
/// to whole seconds, memcached's granularity). `get` and `get_many` are one `get` each, which also
/// fetches the namespace generations the entries are checked against; a namespace is cleared by
/// bumping its generation and a tag is invalidated by bumping its version, so neither costs more
/// with more entries. Keys memcached cannot take (longer than 250 bytes, or with spaces or control
/// characters) are hashed with SHA-256, not rejected.
///
/// ```
/// use std::sync::Arc;
/// use larder::Cache;
/// use larder_memcached::MemcachedStore;
///
/// let store = MemcachedStore::open("memcached://127.0.0.1:11211?prefix=myapp:").unwrap();
/// let cache = Cache::builder().remote(Arc::new(store)).build();
/// # let _ = cache;
/// ```
pub struct MemcachedStore {
    pool: Pool,
    generations: KnownGenerations,
    layout: Layout,
    prefix: String,
}

/// Options for a [`MemcachedStore`] beyond its URL.
///
/// ```
/// use std::time::Duration;
/// let store = larder_memcached::MemcachedStore::builder("memcached://127.0.0.1:11211")
///     .prefix("api:")
///     .pool_size(16)
///     .connect_timeout(Duration::from_millis(300))
///     .build()
///     .unwrap();
/// assert_eq!(store.prefix(), "api:");
/// ```
#[derive(Debug, Clone)]
pub struct MemcachedStoreBuilder {
    url: String,
    prefix: Option<String>,
    pool_size: Option<usize>,
    connect_timeout: Duration,
}

impl MemcachedStoreBuilder {
    /// The prefix of every key (default `larder:`, or the URL's `prefix=`); printable ASCII
    /// without spaces, at most 100 bytes.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// How many connections to keep (default 8, or the URL's `pool=`). Memcached answers one
    /// request at a time per connection, so this bounds the store's concurrency.
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = Some(size);
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Checks the URL and options; does not connect.
    pub fn build(self) -> Result<MemcachedStore, Error> {
        let bad = |reason: &'static str| Error::InvalidUrl {
            url: self.url.clone(),
            reason,
        };
        let rest = self
            .url
            .strip_prefix("memcached://")
            .ok_or(bad("the scheme must be memcached://"))?;
        let (host, query) = rest.split_once('?').unwrap_or((rest, ""));
        let host = host.trim_end_matches('/');
        if host.is_empty() {
            return Err(bad("the URL has no host"));
        }
        if host.contains(',') || host.contains('/') {
            return Err(bad("one memcached server per store (host:port)"));
        }
        let host = if host.contains(':') {
            host.to_owned()
        } else {
            format!("{host}:11211")
        };
        let mut prefix = None;
        let mut pool_size = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            match pair.split_once('=').unwrap_or((pair, "")) {
                ("prefix", v) => {
                    prefix = Some(percent_decode(v).ok_or(bad("prefix is not valid UTF-8"))?);
                }
                ("pool", v) => {
                    pool_size = Some(
                        v.parse::<usize>()
                            .ok()
                            .filter(|n| (1..=1024).contains(n))
                            .ok_or(bad("pool must be a number from 1 to 1024"))?,
                    );
                }
                _ => return Err(bad("unknown parameter (known: prefix, pool)")),
            }
        }
        let prefix = self
            .prefix
            .or(prefix)
            .unwrap_or_else(|| "larder:".to_owned());
        if !Layout::prefix_is_valid(&prefix) {
            return Err(Error::InvalidPrefix(prefix));
        }
        let pool_size = self.pool_size.or(pool_size).unwrap_or(8);
        Ok(MemcachedStore {
            pool: Pool::new(format!("tcp://{host}"), pool_size, self.connect_timeout),
            generations: KnownGenerations::default(),
            layout: Layout::new(&prefix),
            prefix,
        })
    }
}

impl MemcachedStore {
    /// A store for `url` (`memcached://host[:port][?prefix=P&pool=N]`); does not connect.
    pub fn open(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Options beyond the URL.
    pub fn builder(url: impl Into<String>) -> MemcachedStoreBuilder {
        MemcachedStoreBuilder {
            url: url.into(),
            prefix: None,
            pool_size: None,
            connect_timeout: Duration::from_secs(1),
        }
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The current value of each counter key (a namespace generation or a tag version), creating
    /// the missing ones at the current time in nanoseconds.
    async fn counters(&self, keys: &[Vec<u8>]) -> Result<Vec<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await?;
        // Owned keys: borrowed ones make the future's Send bound fail to prove (a rustc limit).
        let owned: Vec<Vec<u8>> = keys.to_vec();
        let found = on!(conn, |c| c.get_multi(owned)).or_else(empty_on_not_found)?;
        let mut by_key: HashMap<Vec<u8>, u64> = HashMap::with_capacity(found.len());
        for value in found {
            if let Some(n) = value.data.as_deref().and_then(parse_counter) {
                by_key.insert(value.key, n);
            }
        }
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            if let Some(n) = by_key.get(key) {
                out.push(*n);
                continue;
            }
            let start = unix_nanos().to_string();
            let added = on!(conn, |c| c.add(key, start.as_str(), None, None));
            let n = match added {
                Ok(()) => parse_counter(start.as_bytes()),
                // Someone created it first: read theirs.
                Err(McError::Protocol(Status::NotStored | Status::Exists)) => {
                    let value = on!(conn, |c| c.get(key)).map_err(mc_error)?;
                    value.and_then(|v| v.data.as_deref().and_then(parse_counter))
                }
                Err(e) => return Err(mc_error(e)),
            };
            out.push(n.ok_or_else(|| {
                StoreError::Protocol("a counter key holds something other than a number".into())
            })?);
        }
        Ok(out)
    }

    /// Moves a counter on and returns its new value: `incr`, or if it is gone, creates it at the
    /// current time.
    async fn bump(&self, key: &[u8]) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await?;
        match on!(conn, |c| c.increment(key, 1)) {
            Ok(n) => Ok(n),
            Err(McError::Protocol(Status::NotFound)) => {
                let start = unix_nanos();
                let text = start.to_string();
                match on!(conn, |c| c.add(key, text.as_str(), None, None)) {
                    Ok(()) => Ok(start),
                    Err(McError::Protocol(Status::NotStored | Status::Exists)) => {
                        on!(conn, |c| c.increment(key, 1)).map_err(mc_error)
                    }
                    Err(e) => Err(mc_error(e)),
                }
            }
            Err(e) => Err(mc_error(e)),
        }
    }

    /// Reads entries with their namespaces' generations in one `get`.
    async fn read(&self, keys: &[StoreKey<'_>]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let mut namespaces: Vec<&str> = keys.iter().map(|k| k.namespace).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let generation_keys: Vec<Vec<u8>> = namespaces
            .iter()
            .map(|ns| self.layout.generation(ns))
            .collect();
        let entry_keys: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| self.layout.entry(k.namespace, k.key))
            .collect();
        let mut conn = self.pool.get().await?;
        let all: Vec<Vec<u8>> = generation_keys.iter().chain(&entry_keys).cloned().collect();
        let found = on!(conn, |c| c.get_multi(all)).or_else(empty_on_not_found)?;
        drop(conn);
        let by_key: HashMap<Vec<u8>, Vec<u8>> = found
            .into_iter()
            .filter_map(|v| Some((v.key, v.data?)))
            .collect();
        let generations: HashMap<&str, u64> = namespaces
            .iter()
            .zip(&generation_keys)
            .filter_map(|(ns, k)| Some((*ns, parse_counter(by_key.get(k)?)?)))
            .collect();
        for (ns, generation) in &generations {
            self.generations.put(ns, *generation);
        }
        Ok(keys
            .iter()
            .zip(&entry_keys)
            .map(|(key, physical)| {
                // A key asked for twice is answered twice: clone rather than take.
                let stored = by_key.get(physical)?;
                let current = generations.get(key.namespace)?;
                let (generation, envelope) = stored.split_at_checked(GENERATION_LEN)?;
                let generation = u64::from_be_bytes(generation.try_into().ok()?);
                (generation == *current).then(|| Bytes::copy_from_slice(envelope))
            })
            .collect())
    }

    /// Writes entries stamped with their namespaces' current generations.
    async fn write(&self, entries: Vec<StoreEntry<'_>>) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut namespaces: Vec<&str> = entries.iter().map(|e| e.key.namespace).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let mut generation_of: HashMap<&str, u64> = HashMap::with_capacity(namespaces.len());
        let mut unknown = Vec::new();
        for ns in namespaces {
            match self.generations.get(ns) {
                Some(generation) => {
                    generation_of.insert(ns, generation);
                }
                None => unknown.push(ns),
            }
        }
        if !unknown.is_empty() {
            let keys: Vec<Vec<u8>> = unknown
                .iter()
                .map(|ns| self.layout.generation(ns))
                .collect();
            let generations = self.counters(&keys).await?;
            for (ns, generation) in unknown.into_iter().zip(generations) {
                self.generations.put(ns, generation);
                generation_of.insert(ns, generation);
            }
        }
        let mut conn = self.pool.get().await?;
        for entry in entries {
            let generation = generation_of
                .get(entry.key.namespace)
                .copied()
                .unwrap_or_default();
            let mut stored = Vec::with_capacity(GENERATION_LEN + entry.value.len());
            stored.extend_from_slice(&generation.to_be_bytes());
            stored.extend_from_slice(&entry.value);
            let key = self.layout.entry(entry.key.namespace, entry.key.key);
            let expiry = expiry(entry.ttl);
            on!(conn, |c| c.set(&key, stored.as_slice(), Some(expiry), None)).map_err(mc_error)?;
        }
        Ok(())
    }
}

impl std::fmt::Debug for MemcachedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemcachedStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Store for MemcachedStore {
    fn name(&self) -> &str {
        "memcached"
    }

    fn get<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move { Ok(self.read(&[key]).await?.pop().flatten()) })
    }

    fn get_many<'a>(&'a self, keys: &'a [StoreKey<'a>]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.read(keys).await
        })
    }

    fn set<'a>(&'a self, key: StoreKey<'a>, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.write(vec![StoreEntry { key, value, ttl }]).await })
    }

    fn set_many<'a>(&'a self, entries: Vec<StoreEntry<'a>>) -> StoreFuture<'a, ()> {
        Box::pin(self.write(entries))
    }

    fn delete<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let physical = self.layout.entry(key.namespace, key.key);
            let mut conn = self.pool.get().await?;
            match on!(conn, |c| c.delete(&physical)) {
                Ok(()) => Ok(true),
                Err(McError::Protocol(Status::NotFound)) => Ok(false),
                Err(e) => Err(mc_error(e)),
            }
        })
    }

    fn clear_namespace<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let generation = self.bump(&self.layout.generation(namespace)).await?;
            self.generations.put(namespace, generation);
            Ok(())
        })
    }

    fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>> {
        Box::pin(async move {
            let keys: Vec<Vec<u8>> = tags.iter().map(|t| self.layout.tag(t)).collect();
            self.counters(&keys).await
        })
    }

    fn invalidate_tags<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            for tag in tags {
                self.bump(&self.layout.tag(tag)).await?;
            }
            Ok(())
        })
    }

    /// `add` with the lock's expiry (whole seconds, rounded up): it stores only when the key is
    /// absent, so exactly one caller gets the lock until it is released or expires.
    fn try_lock<'a>(
        &'a self,
        key: StoreKey<'a>,
        token: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let lock = self.layout.lock(key.namespace, key.key);
            let value = hex(token);
            let mut conn = self.pool.get().await?;
            match on!(conn, |c| c.add(
                &lock,
                value.as_str(),
                Some(expiry(ttl)),
                None
            )) {
                Ok(()) => Ok(true),
                Err(McError::Protocol(Status::NotStored | Status::Exists)) => Ok(false),
                Err(e) => Err(mc_error(e)),
            }
        })
    }

    /// Reads the lock with its CAS value and deletes it only if it still holds `token` and has
    /// not changed since (`md` with `C`), so a lock that expired and was taken by another
    /// process is never released by its former holder.
    fn unlock<'a>(&'a self, key: StoreKey<'a>, token: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let lock = self.layout.lock(key.namespace, key.key);
            let mut conn = self.pool.get().await?;
            let held = on!(conn, |c| c.meta_get(&lock, false, None, Some(&["v", "c"])))
                .map_err(mc_error)?;
            let Some(held) = held else {
                return Ok(());
            };
            if held.data.as_deref() != Some(hex(token).as_bytes()) {
                return Ok(());
            }
            let Some(cas) = held.cas else {
                return Ok(());
            };
            let compare = format!("C{cas}");
            match on!(conn, |c| c.meta_delete(
                &lock,
                false,
                None,
                Some(&[compare.as_str()])
            )) {
                Ok(_) | Err(McError::Protocol(Status::NotFound | Status::Exists)) => Ok(()),
                Err(e) => Err(mc_error(e)),
            }
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let mut conn = self.pool.get().await?;
            on!(conn, |c| c.version()).map(drop).map_err(mc_error)
        })
    }
}

/// `get_multi` reports "nothing found" as an error; it is an empty answer.
fn empty_on_not_found(e: McError) -> Result<Vec<async_memcached::Value>, StoreError> {
    match e {
        McError::Protocol(Status::NotFound) => Ok(Vec::new()),
        e => Err(mc_error(e)),
    }
}

fn parse_counter(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.trim().parse().ok()
}

/// Memcached's expiry for a ttl: whole seconds rounded up (at least 1), or a Unix time past 30 days.
fn expiry(ttl: Duration) -> i64 {
    let secs = ttl
        .as_secs()
        .saturating_add(u64::from(ttl.subsec_nanos() > 0))
        .max(1);
    let value = if secs > RELATIVE_EXPIRY_LIMIT {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        now.saturating_add(secs)
    } else {
        secs
    };
    // Memcached parses the expiry as a 32-bit number and rejects the command past it.
    i64::try_from(value)
        .unwrap_or(i64::MAX)
        .min(i64::from(i32::MAX))
}

/// A lock token as text memcached stores and compares byte for byte.
fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn mc_error(e: McError) -> StoreError {
    match e {
        McError::Protocol(_) => StoreError::server(e),
        _ => StoreError::connection(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_rounds_up_to_seconds_and_switches_to_unix_time_past_30_days() {
        assert_eq!(expiry(Duration::MAX), i64::from(i32::MAX));
        assert_eq!(expiry(Duration::from_millis(1)), 1);
        assert_eq!(expiry(Duration::from_millis(1_001)), 2);
        assert_eq!(expiry(Duration::from_secs(60)), 60);
        let long = expiry(Duration::from_secs(RELATIVE_EXPIRY_LIMIT + 10));
        assert!(long > 1_700_000_000, "{long}");
    }
}
