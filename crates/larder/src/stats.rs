//! Counters: kept per cache in per-thread shards (so a hit costs a plain store and two threads
//! never contend on one cache line), read as a [`Stats`] snapshot, and mirrored to the `metrics`
//! facade.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

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
    StoreSkipped,
    BreakerTrip,
}

const COUNTERS: usize = 14;

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
    "larder_store_calls_skipped_total",
    "larder_breaker_trips_total",
];

/// One shard on its own pair of cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard([AtomicU64; COUNTERS]);

/// Threads that own a slot (see [`thread_slot`]); the rest share one atomic shard.
const EXCLUSIVE_SLOTS: usize = 64;

pub(crate) struct Recorder {
    /// `EXCLUSIVE_SLOTS` shards each written by one thread only, then one shared shard.
    shards: Box<[Shard]>,
    facade: [metrics::Counter; COUNTERS],
}

impl Recorder {
    /// `name` labels the metrics (`cache="name"`). Handles are taken now, so a `metrics` recorder
    /// must be installed before the cache is built for the facade to see anything.
    pub(crate) fn new(name: &str) -> Self {
        let label = name.to_owned();
        Self {
            shards: (0..=EXCLUSIVE_SLOTS).map(|_| Shard::default()).collect(),
            facade: NAMES.map(|n| metrics::counter!(n, "cache" => label.clone())),
        }
    }

    #[inline]
    pub(crate) fn add(&self, counter: Counter, n: u64) {
        match thread_slot() {
            // Only this thread writes this shard: a plain load and store, no locked instruction.
            Some(slot) => {
                let cell = &self.shards[slot].0[counter as usize];
                cell.store(cell.load(Relaxed).wrapping_add(n), Relaxed);
            }
            None => {
                self.shards[EXCLUSIVE_SLOTS].0[counter as usize].fetch_add(n, Relaxed);
            }
        }
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

    pub(crate) fn snapshot(&self, entries: u64, weight: u64, breaker_open: bool) -> Stats {
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
            store_calls_skipped: self.sum(Counter::StoreSkipped),
            breaker_trips: self.sum(Counter::BreakerTrip),
            breaker_open,
            entries,
            weight,
        }
    }
}

/// The slot this thread owns exclusively, if any. Slots are handed out lowest-free-first and given
/// back when the thread exits, so live threads never share one; past `EXCLUSIVE_SLOTS` live
/// threads (or while a thread is being torn down) there is none and the shared shard is used.
#[inline]
fn thread_slot() -> Option<usize> {
    thread_local!(static SLOT: SlotGuard = SlotGuard::acquire());
    SLOT.try_with(|s| s.0).ok().flatten()
}

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

struct SlotGuard(Option<usize>);

impl SlotGuard {
    fn acquire() -> Self {
        if let Some(slot) = FREE_SLOTS.lock().pop() {
            return Self(Some(slot));
        }
        let slot = NEXT_SLOT.fetch_add(1, Relaxed);
        Self((slot < EXCLUSIVE_SLOTS).then_some(slot))
    }
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        if let Some(slot) = self.0 {
            FREE_SLOTS.lock().push(slot);
        }
    }
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
    /// Remote store calls not made because the circuit breaker was open.
    pub store_calls_skipped: u64,
    /// Times the circuit breaker opened.
    pub breaker_trips: u64,
    /// Whether the circuit breaker is open now (the store is being skipped).
    pub breaker_open: bool,
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
        // More threads than exclusive slots, so both the owned and the shared shards are used.
        let handles: Vec<_> = (0..EXCLUSIVE_SLOTS + 16)
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
        assert_eq!(
            rec.snapshot(0, 0, false).hits,
            (EXCLUSIVE_SLOTS as u64 + 16) * 1000
        );
    }
}
