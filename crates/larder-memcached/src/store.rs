//! [`MemcachedStore`]: the [`Store`] trait over memcached's text protocol.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use larder_store::{Store, StoreEntry, StoreError, StoreFuture, StoreKey, percent_decode};

use crate::Error;
use crate::generations::KnownGenerations;
use crate::layout::Layout;
use crate::pool::Pool;
use crate::wire::{self, Reply};

/// Memcached reads an expiry above 30 days as a Unix time, not a duration.
const RELATIVE_EXPIRY_LIMIT: u64 = 60 * 60 * 24 * 30;

/// Bytes of namespace generation in front of every stored envelope.
const GENERATION_LEN: usize = 8;

/// Connections per store (`pool=`): measured in BENCHMARKS.md ("Memcached store throughput").
const DEFAULT_POOL: usize = 4;

/// A remote store on one memcached server, over its meta protocol (memcached 1.6 or later), on a
/// few pipelined connections: requests from many callers share a connection and go out in one
/// write (see `connection.rs`).
///
/// Entries are larder envelopes stored with an expiry at the end of their stale window (rounded up
/// to whole seconds, memcached's granularity). `get` and `get_many` are one round trip each, which
/// also fetches the namespace generations the entries are checked against; a namespace is cleared by
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

    /// How many connections to keep (default 4, or the URL's `pool=`). Each carries any number
    /// of requests at once (pipelined), so this spreads the load over memcached's threads rather
    /// than bounding concurrency.
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
        let pool_size = self.pool_size.or(pool_size).unwrap_or(DEFAULT_POOL);
        Ok(MemcachedStore {
            pool: Pool::new(host, pool_size, self.connect_timeout),
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

    /// Sends `request` and waits for its `n` replies; a `SERVER_ERROR` among them is the error.
    async fn call(&self, request: Vec<u8>, n: usize) -> Result<Vec<Reply>, StoreError> {
        let replies = self.pool.call(request, n).await?;
        if let Some(Reply::Failed(text)) = replies.iter().find(|r| matches!(r, Reply::Failed(_))) {
            return Err(StoreError::server(std::io::Error::other(text.clone())));
        }
        Ok(replies)
    }

    /// One command, one reply.
    async fn one(&self, write: impl FnOnce(&mut Vec<u8>)) -> Result<Reply, StoreError> {
        let mut request = Vec::with_capacity(64);
        write(&mut request);
        let mut replies = self.call(request, 1).await?;
        replies.pop().ok_or_else(|| unexpected("no reply"))
    }

    /// The current value of each counter key (a namespace generation or a tag version), creating
    /// the missing ones at the current time in nanoseconds.
    async fn counters(&self, keys: &[Vec<u8>]) -> Result<Vec<u64>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut request = Vec::with_capacity(keys.len() * 64);
        for key in keys {
            wire::get(&mut request, key, false);
        }
        let replies = self.call(request, keys.len()).await?;
        let mut out = Vec::with_capacity(keys.len());
        for (key, reply) in keys.iter().zip(replies) {
            let n = match reply {
                Reply::Value { data, .. } => parse_counter(&data),
                Reply::Miss => self.create_counter(key).await?,
                other => return Err(unexpected_reply(&other)),
            };
            out.push(n.ok_or_else(not_a_counter)?);
        }
        Ok(out)
    }

    /// Creates a counter at the current time in nanoseconds; if another process created it
    /// first, reads theirs.
    async fn create_counter(&self, key: &[u8]) -> Result<Option<u64>, StoreError> {
        let start = unix_nanos().to_string();
        match self
            .one(|r| wire::set(r, key, &[start.as_bytes()], 0, true))
            .await?
        {
            Reply::Done => Ok(parse_counter(start.as_bytes())),
            Reply::NotStored | Reply::Exists => match self.one(|r| wire::get(r, key, false)).await?
            {
                Reply::Value { data, .. } => Ok(parse_counter(&data)),
                other => Err(unexpected_reply(&other)),
            },
            other => Err(unexpected_reply(&other)),
        }
    }

    /// Moves a counter on and returns its new value: increments it, or if it is gone, creates it
    /// at the current time.
    async fn bump(&self, key: &[u8]) -> Result<u64, StoreError> {
        match self.one(|r| wire::increment(r, key)).await? {
            Reply::Value { data, .. } => parse_counter(&data).ok_or_else(not_a_counter),
            Reply::NotFound => {
                let start = unix_nanos();
                let text = start.to_string();
                match self
                    .one(|r| wire::set(r, key, &[text.as_bytes()], 0, true))
                    .await?
                {
                    Reply::Done => Ok(start),
                    Reply::NotStored | Reply::Exists => {
                        match self.one(|r| wire::increment(r, key)).await? {
                            Reply::Value { data, .. } => {
                                parse_counter(&data).ok_or_else(not_a_counter)
                            }
                            other => Err(unexpected_reply(&other)),
                        }
                    }
                    other => Err(unexpected_reply(&other)),
                }
            }
            other => Err(unexpected_reply(&other)),
        }
    }

    /// `read` of one key, the common case, without the bookkeeping of many namespaces.
    async fn read_one(&self, key: StoreKey<'_>) -> Result<Option<Bytes>, StoreError> {
        let generation_key = self.layout.generation(key.namespace);
        let entry_key = self.layout.entry(key.namespace, key.key);
        let mut request = Vec::with_capacity(generation_key.len() + entry_key.len() + 16);
        wire::get(&mut request, &generation_key, false);
        wire::get(&mut request, &entry_key, false);
        let mut replies = self.call(request, 2).await?.into_iter();
        let (Some(generation), Some(entry)) = (replies.next(), replies.next()) else {
            return Err(unexpected("too few replies"));
        };
        let current = match generation {
            Reply::Value { data, .. } => parse_counter(&data),
            Reply::Miss => None,
            other => return Err(unexpected_reply(&other)),
        };
        if let Some(current) = current {
            self.generations.put(key.namespace, current);
        }
        let data = match entry {
            Reply::Value { data, .. } => data,
            Reply::Miss => return Ok(None),
            other => return Err(unexpected_reply(&other)),
        };
        Ok(current.and_then(|current| stamped_with(data, current)))
    }

    /// Reads entries with their namespaces' generations in one round trip.
    async fn read(&self, keys: &[StoreKey<'_>]) -> Result<Vec<Option<Bytes>>, StoreError> {
        let mut namespaces: Vec<&str> = keys.iter().map(|k| k.namespace).collect();
        namespaces.sort_unstable();
        namespaces.dedup();
        let mut request = Vec::with_capacity((namespaces.len() + keys.len()) * 64);
        for ns in &namespaces {
            wire::get(&mut request, &self.layout.generation(ns), false);
        }
        for key in keys {
            wire::get(
                &mut request,
                &self.layout.entry(key.namespace, key.key),
                false,
            );
        }
        let mut replies = self.call(request, namespaces.len() + keys.len()).await?;
        let entries = replies.split_off(namespaces.len());
        let mut generations: Vec<(&str, u64)> = Vec::with_capacity(namespaces.len());
        for (ns, reply) in namespaces.iter().zip(replies) {
            match reply {
                Reply::Value { data, .. } => {
                    if let Some(generation) = parse_counter(&data) {
                        self.generations.put(ns, generation);
                        generations.push((ns, generation));
                    }
                }
                Reply::Miss => {}
                other => return Err(unexpected_reply(&other)),
            }
        }
        keys.iter()
            .zip(entries)
            .map(|(key, reply)| {
                let data = match reply {
                    Reply::Value { data, .. } => data,
                    Reply::Miss => return Ok(None),
                    other => return Err(unexpected_reply(&other)),
                };
                let current = generations.iter().find(|(ns, _)| *ns == key.namespace);
                Ok(current.and_then(|&(_, current)| stamped_with(data, current)))
            })
            .collect()
    }

    /// Writes entries stamped with their namespaces' current generations, in one round trip.
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
        let size: usize = entries.iter().map(|e| e.value.len() + 96).sum();
        let mut request = Vec::with_capacity(size);
        for entry in &entries {
            let generation = generation_of
                .get(entry.key.namespace)
                .copied()
                .unwrap_or_default();
            let key = self.layout.entry(entry.key.namespace, entry.key.key);
            let parts: [&[u8]; 2] = [&generation.to_be_bytes(), &entry.value];
            wire::set(&mut request, &key, &parts, expiry(entry.ttl), false);
        }
        for reply in self.call(request, entries.len()).await? {
            if reply != Reply::Done {
                return Err(unexpected_reply(&reply));
            }
        }
        Ok(())
    }
}

/// The envelope in a stored entry, if it was written under the namespace's `current`
/// generation (an older one reads as a miss: the namespace was cleared since).
fn stamped_with(data: Bytes, current: u64) -> Option<Bytes> {
    let stamp: [u8; GENERATION_LEN] = data.get(..GENERATION_LEN)?.try_into().ok()?;
    (u64::from_be_bytes(stamp) == current).then(|| data.slice(GENERATION_LEN..))
}

fn unexpected(what: &str) -> StoreError {
    StoreError::Protocol(format!("memcached: {what}"))
}

fn unexpected_reply(reply: &Reply) -> StoreError {
    match reply {
        Reply::Failed(text) => StoreError::server(std::io::Error::other(text.clone())),
        other => unexpected(&format!("unexpected reply {other:?}")),
    }
}

fn not_a_counter() -> StoreError {
    unexpected("a counter key holds something other than a number")
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
        Box::pin(self.read_one(key))
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
            match self.one(|r| wire::delete(r, &physical, None)).await? {
                Reply::Done => Ok(true),
                Reply::NotFound => Ok(false),
                other => Err(unexpected_reply(&other)),
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

    /// An "add" (`ms` with `ME`) with the lock's expiry (whole seconds, rounded up): it stores
    /// only when the key is absent, so exactly one caller gets the lock until it is released or
    /// expires.
    fn try_lock<'a>(
        &'a self,
        key: StoreKey<'a>,
        token: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let lock = self.layout.lock(key.namespace, key.key);
            let value = hex(token);
            match self
                .one(|r| wire::set(r, &lock, &[value.as_bytes()], expiry(ttl), true))
                .await?
            {
                Reply::Done => Ok(true),
                Reply::NotStored | Reply::Exists => Ok(false),
                other => Err(unexpected_reply(&other)),
            }
        })
    }

    /// Reads the lock with its CAS value and deletes it only if it still holds `token` and has
    /// not changed since (`md` with `C`), so a lock that expired and was taken by another
    /// process is never released by its former holder.
    fn unlock<'a>(&'a self, key: StoreKey<'a>, token: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let lock = self.layout.lock(key.namespace, key.key);
            let (data, cas) = match self.one(|r| wire::get(r, &lock, true)).await? {
                Reply::Value { data, cas } => (data, cas),
                Reply::Miss => return Ok(()),
                other => return Err(unexpected_reply(&other)),
            };
            if data.as_ref() != hex(token).as_bytes() {
                return Ok(());
            }
            let Some(cas) = cas else {
                return Ok(());
            };
            match self.one(|r| wire::delete(r, &lock, Some(cas))).await? {
                Reply::Done | Reply::NotFound | Reply::Exists => Ok(()),
                other => Err(unexpected_reply(&other)),
            }
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            match self.one(wire::noop).await? {
                Reply::NoOp => Ok(()),
                other => Err(unexpected_reply(&other)),
            }
        })
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
