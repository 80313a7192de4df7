//! The order of the tiers on a read: the memory tier first (the callers look there themselves,
//! without an await), then the remote store, whose value is put in the memory tier before it is
//! handed out. `remote.rs` reads and decodes; this file decides where what it read goes.

use std::sync::Arc;

use crate::cache::{Cache, CacheValue};
use crate::clock;
use crate::memory::{AnyValue, Entry};
use crate::remote::{Read, Remote, RemoteLookup};
use crate::stats::Counter;

impl Cache {
    /// `key` from the remote store, kept in the memory tier on the way.
    pub(crate) async fn read_remote<T: CacheValue>(
        &self,
        remote: &Remote,
        ns: &Arc<str>,
        key: &str,
    ) -> RemoteLookup<T> {
        let read = remote.lookup::<T>(self, ns, key).await;
        self.keep(ns, key, read)
    }

    /// Fresh values of `keys` from the remote store, kept in the memory tier on the way.
    pub(crate) async fn read_remote_many<T: CacheValue>(
        &self,
        remote: &Remote,
        ns: &Arc<str>,
        keys: &[&str],
    ) -> Vec<Option<Arc<T>>> {
        let reads = remote.lookup_many::<T>(self, ns, keys).await;
        keys.iter()
            .zip(reads)
            .map(|(key, read)| self.keep(ns, key, read).fresh())
            .collect()
    }

    /// Puts what the store gave in the memory tier, and says what the caller gets: a large value
    /// only if the memory tier kept it, since elsewhere nothing would count its bytes while it is
    /// in use.
    fn keep<T: CacheValue>(&self, ns: &Arc<str>, key: &str, read: Read<T>) -> RemoteLookup<T> {
        let stats = &self.inner.stats;
        let found = match read {
            Read::Found(found) => found,
            Read::Miss => {
                stats.incr(Counter::RemoteMiss);
                return RemoteLookup::Miss;
            }
            Read::Deferred => return self.deferred(),
        };
        if let Some(mem) = &self.inner.memory {
            let now = clock::now_nanos();
            let entry = Entry::new(
                AnyValue::new(found.value.clone()),
                mem.origin(now),
                found.fresh_until,
                found.stale_until,
                found.tags,
            );
            // Weighed as it is held, decoded: the envelope may be compressed far below that.
            let held = if mem.bounds().needs_bytes() {
                self.weigh(key, &found.value, Some(found.decoded_len))
            } else {
                0
            };
            let kept = mem.insert_reserved(ns, key, entry, held, now, found.room);
            if !kept && found.large && mem.bounds().needs_bytes() {
                // The entries in use leave it no room: handing it out would hold its bytes
                // where the bound cannot see them.
                return self.deferred();
            }
        }
        if found.fresh {
            stats.incr(Counter::RemoteHit);
            RemoteLookup::Fresh(found.value)
        } else {
            stats.incr(Counter::RemoteMiss);
            RemoteLookup::Stale(found.value, found.stale_until)
        }
    }

    /// A large read that found no turn, no room, or no place in the tier: a miss, counted.
    fn deferred<T>(&self) -> RemoteLookup<T> {
        self.inner.stats.incr(Counter::RemoteReadDeferred);
        self.inner.stats.incr(Counter::RemoteMiss);
        RemoteLookup::Miss
    }
}
