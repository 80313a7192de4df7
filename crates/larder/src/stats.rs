//! Counters: kept per cache in sharded atomics (so two threads hitting the cache never contend on
//! one cache line), read as a [`Stats`] snapshot, and mirrored to the `metrics` facade.

use std::cell::Cell;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// What is counted. The order is the layout of a shard.
#[derive(Debug, Clone, Copy)]
#[repr(usize)]
pub(crate) enum Counter {
    Hit,
    Miss,
    StaleServed,
    Coalesced,
    FactoryRun,
    FactoryError,
    Eviction,
    RemoteHit,
    RemoteMiss,
    StoreError,
    DecodeError,
    EagerRefresh,
}

const COUNTERS: usize = 12;

const NAMES: [&str; COUNTERS] = [
    "larder_hits_total",
    "larder_misses_total",
    "larder_stale_served_total",
    "larder_coalesced_waiters_total",
    "larder_factory_runs_total",
    "larder_factory_errors_total",
    "larder_evictions_total",
    "larder_remote_hits_total",
    "larder_remote_misses_total",
    "larder_store_errors_total",
    "larder_decode_errors_total",
    "larder_eager_refreshes_total",
];

/// One shard on its own pair of cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard([AtomicU64; COUNTERS]);

pub(crate) struct Recorder {
    shards: Box<[Shard]>,
    mask: usize,
    facade: [metrics::Counter; COUNTERS],
}

impl Recorder {
    /// `name` labels the metrics (`cache="name"`). Handles are taken now, so a `metrics` recorder
    /// must be installed before the cache is built for the facade to see anything.
    pub(crate) fn new(name: &str) -> Self {
        let shards = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(4)
            .saturating_mul(2)
            .next_power_of_two()
            .clamp(4, 128);
        let label = name.to_owned();
        Self {
            shards: (0..shards).map(|_| Shard::default()).collect(),
            mask: shards - 1,
            facade: NAMES.map(|n| metrics::counter!(n, "cache" => label.clone())),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        let shard = &self.shards[thread_slot() & self.mask];
        shard.0[counter as usize].fetch_add(n, Relaxed);
        self.facade[counter as usize].increment(n);
    }

    #[inline]
    pub(crate) fn incr(&self, counter: Counter) {
        self.add(counter, 1);
    }

    fn sum(&self, counter: Counter) -> u64 {
        self.shards
            .iter()
            .map(|s| s.0[counter as usize].load(Relaxed))
            .fold(0u64, u64::wrapping_add)
    }

    pub(crate) fn snapshot(&self, entries: u64, weight: u64) -> Stats {
        Stats {
            hits: self.sum(Counter::Hit),
            misses: self.sum(Counter::Miss),
            stale_served: self.sum(Counter::StaleServed),
            coalesced_waiters: self.sum(Counter::Coalesced),
            factory_runs: self.sum(Counter::FactoryRun),
            factory_errors: self.sum(Counter::FactoryError),
            evictions: self.sum(Counter::Eviction),
            eager_refreshes: self.sum(Counter::EagerRefresh),
            remote_hits: self.sum(Counter::RemoteHit),
            remote_misses: self.sum(Counter::RemoteMiss),
            store_errors: self.sum(Counter::StoreError),
            decode_errors: self.sum(Counter::DecodeError),
            entries,
            weight,
        }
    }
}

/// A per-thread index into the shards, handed out round-robin on first use.
#[inline]
fn thread_slot() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local!(static SLOT: Cell<usize> = const { Cell::new(usize::MAX) });
    SLOT.with(|slot| {
        let s = slot.get();
        if s != usize::MAX {
            return s;
        }
        let s = NEXT.fetch_add(1, Relaxed);
        slot.set(s);
        s
    })
}

/// A snapshot of a cache's counters, from [`Cache::stats`](crate::Cache::stats).
///
/// The same counters go to the `metrics` facade as `larder_<name>_total` with a `cache` label.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache = larder::Cache::new();
/// cache.set("k", 1u32).await.unwrap();
/// let _ = cache.get::<u32>("k").await;
/// let _ = cache.get::<u32>("missing").await;
/// let stats = cache.stats();
/// assert_eq!((stats.hits, stats.misses), (1, 1));
/// # }
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Stats {
    /// Reads answered by a fresh entry (memory or remote).
    pub hits: u64,
    /// Reads that found no fresh entry.
    pub misses: u64,
    /// Stale values served by fail-safe or a soft timeout.
    pub stale_served: u64,
    /// `get_or_fetch` callers that joined a fetch already in flight instead of starting one.
    pub coalesced_waiters: u64,
    /// Factory runs started (including eager refreshes).
    pub factory_runs: u64,
    /// Factory runs that failed, timed out or panicked.
    pub factory_errors: u64,
    /// Entries the memory tier evicted to stay within its bounds.
    pub evictions: u64,
    /// Background refreshes started by eager refresh.
    pub eager_refreshes: u64,
    /// Reads answered by the remote store.
    pub remote_hits: u64,
    /// Remote store reads that found nothing usable.
    pub remote_misses: u64,
    /// Remote store calls that failed.
    pub store_errors: u64,
    /// Remote entries that could not be decoded (counted as misses, overwritten on the next set).
    pub decode_errors: u64,
    /// Entries in the memory tier now.
    pub entries: u64,
    /// Total weight of the memory tier now.
    pub weight: u64,
}

impl Stats {
    /// `hits / (hits + misses)`, or 0 before any read.
    pub fn hit_ratio(&self) -> f64 {
        let total = self.hits + self.misses;
        if total == 0 {
            0.0
        } else {
            self.hits as f64 / total as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads_add_up() {
        let rec = std::sync::Arc::new(Recorder::new("t"));
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let rec = rec.clone();
                std::thread::spawn(move || {
                    for _ in 0..1000 {
                        rec.incr(Counter::Hit);
                    }
                })
            })
            .collect();
        for h in handles {
            h.join().unwrap();
        }
        assert_eq!(rec.snapshot(0, 0).hits, 8000);
    }
}
