//! The write paths of a [`Cache`]: set, delete, clear, tag invalidation. Each changes this
//! node's memory tier, then the remote store, then tells the other nodes through the backplane,
//! in that order, so a node that drops its copy on the message reads the new state from the store.

use std::borrow::Cow;
use std::sync::Arc;

use crate::backplane::Op;
use crate::cache::{Cache, CacheValue};
use crate::clock;
use crate::codec::{self, Format};
use crate::error::Error;
use crate::memory::{AnyValue, Entry, Origin};
use crate::options::{EntryOptions, RemoteWrite, Resolved};

impl Cache {
    /// Stores `value` under `key` with the handle's default options.
    ///
    /// In a two-tier cache the value reaches this node's memory, the remote store and (with a
    /// backplane) every other node, which drops its own copy; see [`RemoteWrite`] for returning
    /// before the store write.
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

    /// `set_with` by the fill `own` of this key (`FillLead::set_with`): it supersedes any other
    /// fetch of the key, not the fill storing its result.
    pub(crate) async fn set_with_except<T: CacheValue>(
        &self,
        key: &str,
        value: T,
        opts: EntryOptions,
        own: u64,
    ) -> Result<(), Error> {
        let opts = opts.or(&self.defaults);
        self.inner
            .flights
            .supersede_other(&opts.namespace, key, own);
        self.store(key, Arc::new(value), &opts, self.origin()).await
    }

    /// Removes `key` from memory, from the remote store and (with a backplane) from every other
    /// node's memory; whether this node's memory or the store held it.
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
        self.publish(evict(ns, [key])).await;
        in_memory || in_remote
    }

    /// Stores many values with the handle's default options (pipelined to the remote store, one
    /// backplane message for all of them).
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
        let items: Vec<(String, Arc<T>)> = items
            .into_iter()
            .map(|(k, v)| (k.as_ref().to_owned(), Arc::new(v)))
            .collect();
        for (key, value) in &items {
            self.inner.flights.supersede(&opts.namespace, key);
            self.store_memory(key, value, opts, origin, None);
        }
        if opts.remote_write == RemoteWrite::Background
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            let (cache, opts) = (self.clone(), opts.clone());
            runtime.spawn(async move {
                if let Err(error) = cache.set_many_remote(&opts, &items).await {
                    tracing::warn!(cache = %cache.inner.name, %error, "background write not stored");
                }
            });
            return Ok(());
        }
        self.set_many_remote(opts, &items).await
    }

    async fn set_many_remote<T: CacheValue>(
        &self,
        opts: &Resolved,
        items: &[(String, Arc<T>)],
    ) -> Result<(), Error> {
        if let Some(remote) = &self.inner.remote {
            remote.set_many(self, opts, items).await?;
        }
        self.publish(evict(
            &opts.namespace,
            items.iter().map(|(k, _)| k.as_str()),
        ))
        .await;
        Ok(())
    }

    /// Empties this handle's namespace, in memory, in the remote store and (with a backplane) in
    /// every other node's memory.
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
        self.inner.flights.supersede_namespace(ns, u64::MAX);
        if let Some(mem) = &self.inner.memory {
            mem.clear_namespace(ns);
        }
        if let Some(remote) = &self.inner.remote {
            remote.clear_namespace(self, ns).await;
        }
        self.publish(Op::Clear {
            ns: Cow::Borrowed(ns),
        })
        .await;
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

    /// Invalidates every entry carrying any of `tags`, here and (with a backplane) on every other
    /// node.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// larder::Cache::new().invalidate_tags(&["a", "b"]).await;
    /// # }
    /// ```
    pub async fn invalidate_tags(&self, tags: &[&str]) {
        self.inner.flights.supersede_tags(tags);
        if let Some(mem) = &self.inner.memory {
            mem.invalidate_tags(tags, clock::now_nanos());
        }
        if let Some(remote) = &self.inner.remote {
            remote.invalidate_tags(self, tags).await;
        }
        self.publish(Op::Tags {
            tags: tags.iter().map(|t| Cow::Borrowed(*t)).collect(),
        })
        .await;
    }

    /// Stores a value in the memory tier only (no remote write), superseding a run in flight;
    /// other nodes drop their own copy.
    pub(crate) fn remember<T: CacheValue>(&self, key: &str, value: T, opts: EntryOptions) {
        let opts = opts.or(&self.defaults);
        self.inner.flights.supersede(&opts.namespace, key);
        self.store_memory(key, &Arc::new(value), &opts, self.origin(), None);
        self.publish_in_background(&opts.namespace, key);
    }

    /// Removes `key` from the memory tier only (not from the remote store); whether it was there.
    /// Other nodes drop their own copy.
    pub(crate) fn forget(&self, key: &str) -> bool {
        let ns = &self.defaults.namespace;
        self.inner.flights.supersede(ns, key);
        let found = self
            .inner
            .memory
            .as_ref()
            .is_some_and(|m| m.remove(ns, key));
        self.publish_in_background(ns, key);
        found
    }

    /// Writes a value to both tiers and tells the other nodes. `origin` carries the tag epoch of
    /// when the work that produced it started, so a tag invalidated while that work ran still
    /// applies to the result; the ttl counts from the write, in both tiers.
    pub(crate) async fn store<T: CacheValue>(
        &self,
        key: &str,
        value: Arc<T>,
        opts: &Resolved,
        origin: Origin,
    ) -> Result<(), Error> {
        let Some(remote) = &self.inner.remote else {
            self.store_memory(key, &value, opts, origin, None);
            self.publish(evict(&opts.namespace, [key])).await;
            return Ok(());
        };
        if opts.remote_write == RemoteWrite::Background
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            self.store_memory(key, &value, opts, origin, None);
            let (cache, key, opts) = (self.clone(), key.to_owned(), opts.clone());
            runtime.spawn(async move {
                if let Some(remote) = &cache.inner.remote
                    && let Err(error) = remote.set(&cache, &key, &value, &opts).await
                {
                    tracing::warn!(cache = %cache.inner.name, key, %error, "background write not stored");
                }
                cache.publish(evict(&opts.namespace, [key.as_str()])).await;
            });
            return Ok(());
        }
        let bytes = remote.set(self, key, &value, opts).await?;
        self.store_memory(key, &value, opts, origin, bytes);
        self.publish(evict(&opts.namespace, [key])).await;
        Ok(())
    }

    /// Inserts into the memory tier. `encoded` is the payload's size before compression when an
    /// envelope was made.
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
        let entry = Entry::new(
            AnyValue::new(value.clone()),
            origin,
            fresh_until,
            stale_until,
            opts.tags.clone(),
        );
        mem.insert(&opts.namespace, key, entry, bytes, clock::now_nanos());
    }

    /// What `value` weighs held in the memory tier: the weigher's answer, else `decoded` (the
    /// size of its payload before compression) when an envelope was made, else the size of its
    /// MessagePack encoding; plus its key and a fixed overhead.
    pub(crate) fn weigh<T: CacheValue>(
        &self,
        key: &str,
        value: &Arc<T>,
        decoded: Option<u64>,
    ) -> u64 {
        const OVERHEAD: u64 = 96; // the entry, its key and the Arc's counts, roughly
        let user = self.inner.weighers.weigh::<T>(key, value);
        let body = user.or(decoded).unwrap_or_else(|| {
            codec::encoded_len(&**value, Format::MessagePack).max(size_of::<T>() as u64)
        });
        body.saturating_add(key.len() as u64 + OVERHEAD)
    }

    /// Tells the other nodes through the backplane, if there is one.
    pub(crate) async fn publish(&self, op: Op<'_>) {
        if let Some(coherence) = &self.inner.coherence {
            coherence.publish(&self.inner.stats, op).await;
        }
    }

    /// [`publish`](Self::publish) an eviction from synchronous code: in a task of its own when a
    /// runtime is at hand; outside one there is no way to reach the backplane, and it is skipped.
    fn publish_in_background(&self, ns: &str, key: &str) {
        if self.inner.coherence.is_none() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let (cache, ns, key) = (self.clone(), ns.to_owned(), key.to_owned());
            runtime.spawn(async move { cache.publish(evict(&ns, [key.as_str()])).await });
        }
    }
}

/// The message that drops `keys` of namespace `ns` on other nodes.
fn evict<'a>(ns: &'a str, keys: impl IntoIterator<Item = &'a str>) -> Op<'a> {
    Op::Evict {
        ns: Cow::Borrowed(ns),
        keys: keys.into_iter().map(Cow::Borrowed).collect(),
    }
}
