//! Counters: kept per cache in per-thread shards (so a hit costs a plain store and two threads
//! never contend on one cache line), read as a [`Stats`] snapshot, and mirrored to the `metrics`
//! facade.

use std::cell::Cell;
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
    BackplanePublished,
    BackplaneReceived,
    BackplaneResync,
    LockAcquired,
    LockWaited,
    LockGaveUp,
    RemoteReadDeferred,
}

const COUNTERS: usize = 21;

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
    "larder_backplane_published_total",
    "larder_backplane_received_total",
    "larder_backplane_resyncs_total",
    "larder_locks_acquired_total",
    "larder_lock_waits_served_total",
    "larder_lock_waits_given_up_total",
    "larder_remote_reads_deferred_total",
];

/// One shard on its own pair of cache lines.
#[repr(align(128))]
#[derive(Default)]
struct Shard([AtomicU64; COUNTERS]);

/// Threads that own a slot (see [`thread_slot`]); the rest share one atomic shard.
const EXCLUSIVE_SLOTS: usize = 64;

pub(crate) struct Recorder {
    /// `EXCLUSIVE_SLOTS` shards each written by one thread only, then one shared shard. An array
    /// of known length: a slot below `EXCLUSIVE_SLOTS` needs no bounds check on a hit.
    shards: Box<[Shard; EXCLUSIVE_SLOTS + 1]>,
    facade: [metrics::Counter; COUNTERS],
}

impl Recorder {
    /// `name` labels the metrics (`cache="name"`). Handles are taken now, so a `metrics` recorder
    /// must be installed before the cache is built for the facade to see anything.
    pub(crate) fn new(name: &str) -> Self {
        let label = name.to_owned();
        Self {
            shards: Box::new(std::array::from_fn(|_| Shard::default())),
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

    pub(crate) fn snapshot(&self, entries: u64, weight: u64, links: Links) -> Stats {
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
            breaker_open: links.breaker_open,
            backplane_published: self.sum(Counter::BackplanePublished),
            backplane_received: self.sum(Counter::BackplaneReceived),
            backplane_resyncs: self.sum(Counter::BackplaneResync),
            backplane_connected: links.backplane_connected,
            locks_acquired: self.sum(Counter::LockAcquired),
            lock_waits_served: self.sum(Counter::LockWaited),
            lock_waits_given_up: self.sum(Counter::LockGaveUp),
            remote_reads_deferred: self.sum(Counter::RemoteReadDeferred),
            entries,
            weight,
            reserved_bytes: links.reserved_bytes,
        }
    }
}

/// The state of a cache's links to other services, for a snapshot.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Links {
    pub breaker_open: bool,
    pub backplane_connected: bool,
    pub reserved_bytes: u64,
}

/// The slot this thread owns exclusively, if any. Slots are handed out lowest-free-first and given
/// back when the thread exits, so live threads never share one; past `EXCLUSIVE_SLOTS` live
/// threads (or while a thread is being torn down) there is none and the shared shard is used.
///
/// The slot number sits in a const-initialized cell with no destructor, so reading it is one
/// thread-local load; the guard that gives the slot back is registered once, on first use.
#[inline]
fn thread_slot() -> Option<usize> {
    let slot = SLOT.with(Cell::get);
    if slot < EXCLUSIVE_SLOTS {
        return Some(slot);
    }
    if slot == UNSET {
        return claim_slot();
    }
    None
}

const UNSET: usize = usize::MAX;
const SHARED: usize = usize::MAX - 1;

thread_local! {
    static SLOT: Cell<usize> = const { Cell::new(UNSET) };
    static GUARD: SlotGuard = const { SlotGuard };
}

#[cold]
fn claim_slot() -> Option<usize> {
    let slot = FREE_SLOTS.lock().pop().or_else(|| {
        let next = NEXT_SLOT.fetch_add(1, Relaxed);
        (next < EXCLUSIVE_SLOTS).then_some(next)
    });
    // Registering the guard fails only while the thread is being torn down: then the slot goes
    // back at once and this thread uses the shared shard from now on.
    if GUARD.try_with(|_| ()).is_err() {
        if let Some(s) = slot {
            FREE_SLOTS.lock().push(s);
        }
        let _ = SLOT.try_with(|c| c.set(SHARED));
        return None;
    }
    let _ = SLOT.try_with(|c| c.set(slot.unwrap_or(SHARED)));
    slot
}

static FREE_SLOTS: Mutex<Vec<usize>> = Mutex::new(Vec::new());
static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

/// Gives this thread's slot back when it exits.
struct SlotGuard;

impl Drop for SlotGuard {
    fn drop(&mut self) {
        let slot = SLOT.try_with(|c| c.replace(SHARED)).unwrap_or(SHARED);
        if slot < EXCLUSIVE_SLOTS {
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
    /// Backplane messages this node published (its writes, deletes, clears, tag invalidations).
    pub backplane_published: u64,
    /// Backplane messages from other nodes that this node applied to its memory tier.
    pub backplane_received: u64,
    /// Times the backplane subscription was (re)established and the memory tier dropped,
    /// since messages may have been missed while it was down.
    pub backplane_resyncs: u64,
    /// Whether the backplane subscription is up now.
    pub backplane_connected: bool,
    /// Distributed locks this node took to run a factory.
    pub locks_acquired: u64,
    /// Misses that waited on another process's lock and got its value from the store.
    pub lock_waits_served: u64,
    /// Misses that waited on another process's lock in vain and ran the factory themselves.
    pub lock_waits_given_up: u64,
    /// Remote reads of large values that found the read budget taken for a second and read as
    /// misses (see `CacheBuilder::remote_read_budget`).
    pub remote_reads_deferred: u64,
    /// Entries in the memory tier now.
    pub entries: u64,
    /// Total weight of the memory tier now.
    pub weight: u64,
    /// Bytes held now by [`MemoryReservation`](crate::engine::MemoryReservation)s, which share the
    /// memory tier's byte bound with its entries (0 without a byte bound).
    pub reserved_bytes: u64,
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
            rec.snapshot(0, 0, Links::default()).hits,
            (EXCLUSIVE_SLOTS as u64 + 16) * 1000
        );
    }
}
