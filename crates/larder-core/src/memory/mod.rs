//! The in-process tier: decoded values (`Arc<T>` behind an [`AnyValue`]), bounded by entry count and by weight,
//! in a table whose reads take no lock, evicted by S3-FIFO (scan-resistant; on skewed workloads
//! within 1% of quick_cache's hits, see `table`).
//!
//! An entry stays in memory until the end of its stale window so that fail-safe has something to
//! serve; readers decide fresh vs stale from its two instants. Tags are checked lazily: each tag
//! invalidation bumps a logical epoch and records it against the tag, and a tagged entry whose work
//! started in an earlier epoch reads as absent. That keeps `invalidate_tag` O(1) whatever the number
//! of tagged entries, and orders writes and invalidations exactly even within one clock tick.

use std::any::{Any, TypeId};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed};

use ahash::HashMap;
use parking_lot::RwLock;

use crate::clock;
use crate::failing::Failing;
use crate::stats::{Counter, Recorder};

mod entry;
mod key;
mod node;
mod table;
mod value;

use entry::Slot;
pub(crate) use entry::{Entry, Origin};
use key::{KeyRef, MemKey};
use table::{Large, Table};
pub(crate) use value::AnyValue;

/// The user's weighers, one per value type (`CacheBuilder::weigher`).
#[derive(Default)]
pub(crate) struct Weighers {
    /// Each a `Box<TypedWeigher<T>>` under `TypeId::of::<T>()`.
    by_type: HashMap<TypeId, Box<dyn Any + Send + Sync>>,
}

type TypedWeigher<T> = dyn Fn(&str, &T) -> u64 + Send + Sync;

impl Weighers {
    pub(crate) fn insert<T: 'static>(&mut self, weigher: Box<TypedWeigher<T>>) {
        self.by_type.insert(TypeId::of::<T>(), Box::new(weigher));
    }

    /// What the user's weigher for `T` says `value` weighs, if there is one.
    pub(crate) fn weigh<T: 'static>(&self, key: &str, value: &T) -> Option<u64> {
        let weigher = self.by_type.get(&TypeId::of::<T>())?;
        let weigher = weigher.downcast_ref::<Box<TypedWeigher<T>>>()?;
        Some(weigher(key, value))
    }
}

/// The memory tier's limits. Both bounds hold at once: each entry weighs
/// `max(max_bytes, bytes × max_entries)` units against a capacity of `max_entries × max_bytes`
/// units, so the sum of weights within capacity implies both `count ≤ max_entries` and
/// `Σ bytes ≤ max_bytes`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bounds {
    pub max_entries: Option<u64>,
    pub max_bytes: Option<u64>,
}

impl Bounds {
    /// Capacity in units, and the right shift applied to keep units within u64.
    fn capacity(&self) -> (u64, u32) {
        match (self.max_entries, self.max_bytes) {
            (Some(e), None) => (e, 0),
            (None, Some(b)) => (b, 0),
            (Some(e), Some(b)) => {
                let full = u128::from(e) * u128::from(b);
                let shift = (128 - full.leading_zeros()).saturating_sub(62);
                ((full >> shift) as u64, shift)
            }
            (None, None) => (u64::MAX >> 2, 0),
        }
    }

    pub(crate) fn needs_bytes(&self) -> bool {
        self.max_bytes.is_some()
    }

    /// The units `bytes` held by a reservation take: `bytes × max_entries` like an entry's, but
    /// without an entry's minimum, since a reservation is no entry. `None` without a byte bound.
    fn reserved_units(&self, bytes: u64, shift: u32) -> Option<u64> {
        let units = match (self.max_entries, self.max_bytes) {
            (_, None) => return None,
            (None, Some(_)) => u128::from(bytes),
            (Some(e), Some(_)) => u128::from(bytes) * u128::from(e),
        };
        Some(u64::try_from(units >> shift).unwrap_or(u64::MAX))
    }

    /// The weight in units of an entry of `bytes` bytes.
    fn units(&self, bytes: u64, shift: u32) -> u64 {
        let units = match (self.max_entries, self.max_bytes) {
            (Some(_), None) | (None, None) => 1,
            (None, Some(_)) => u128::from(bytes),
            (Some(e), Some(b)) => (u128::from(bytes) * u128::from(e)).max(u128::from(b)),
        };
        u64::try_from(units >> shift).unwrap_or(u64::MAX).max(1)
    }
}

/// Entries of at least this many bytes are large: kept while a caller uses their value, so the
/// byte bound covers them until their last user lets go (see `table::Large`).
pub(crate) const LARGE_ENTRY: u64 = 64 << 10;

/// The most tag stamps kept (each a tag name and two numbers): past it the oldest half go, and
/// tagged entries older than them read as invalidated.
const MAX_TAG_STAMPS: usize = 65_536;

/// What a lookup found.
pub(crate) enum Lookup {
    Fresh(Entry),
    /// Past its ttl but inside its stale window: usable as a fail-safe fallback.
    Stale(Entry),
    Miss,
}

pub(crate) struct MemoryTier {
    table: Table,
    bounds: Bounds,
    shift: u32,
    /// Tag → (epoch, instant) of its last invalidation.
    tag_stamps: RwLock<HashMap<Arc<str>, (u64, u64)>>,
    /// The number of stamps past which the next invalidation prunes them: twice what was left
    /// after the last prune, so pruning costs a constant per invalidation, amortized.
    prune_at: std::sync::atomic::AtomicUsize,
    /// Bumped by every tag invalidation.
    epoch: AtomicU64,
    /// Tagged entries whose work started before this epoch read as invalidated: what is left of
    /// the stamps dropped to keep their number bounded (see `MAX_TAG_STAMPS`).
    floor: AtomicU64,
    /// The longest remaining lifetime any entry was inserted with, to prune old tag stamps.
    max_lifetime: AtomicU64,
    stats: Arc<Recorder>,
    /// The fail-safe throttle's marks (the cache's): a marked stale entry is served as fresh.
    failing: Arc<Failing>,
}

impl MemoryTier {
    pub(crate) fn new(bounds: Bounds, recorder: Arc<Recorder>, failing: Arc<Failing>) -> Self {
        let (capacity, shift) = bounds.capacity();
        clock::start_ticker();
        // The map's first size: it grows as needed, so a large bound costs nothing up front.
        let expected = bounds.max_entries.unwrap_or(1024).clamp(16, 4096) as usize;
        Self {
            // Under a byte bound, entries of 64 KiB and more are kept while in use, and removed
            // ones weighing 1 MiB are handed back eagerly.
            table: Table::new(
                capacity.max(1),
                expected,
                if bounds.needs_bytes() {
                    Large {
                        pin: bounds.units(LARGE_ENTRY, shift),
                        flush: bounds.units(1 << 20, shift),
                    }
                } else {
                    Large::NONE
                },
            ),
            bounds,
            shift,
            tag_stamps: RwLock::new(HashMap::default()),
            prune_at: std::sync::atomic::AtomicUsize::new(1024),
            epoch: AtomicU64::new(0),
            floor: AtomicU64::new(0),
            max_lifetime: AtomicU64::new(0),
            stats: recorder,
            failing,
        }
    }

    /// The origin of work starting now.
    pub(crate) fn origin(&self, now: u64) -> Origin {
        Origin {
            at: now,
            epoch: self.epoch.load(Acquire),
        }
    }

    pub(crate) fn bounds(&self) -> Bounds {
        self.bounds
    }

    /// The value under `key` if it is fresh, counted as a hit: the hit path of `Cache::get`.
    ///
    /// The hit is counted here, before the value's `Arc` is cloned, rather than by the caller
    /// after: a hit then took about 0.8 ns less (3%) in the hit loop, and callers cannot forget.
    ///
    /// It checks the slot where it lies and returns the value alone, two words in registers: an
    /// `Entry` handed between functions goes through memory, and copying it back cost more than
    /// the checks; so did a three-word answer. That is why it repeats `lookup_now`'s fast check
    /// rather than calling it. Always inlined into the caller: kept out of line, a hit took about
    /// 56 ns in a loop where inlined it took 40.
    #[inline(always)]
    pub(crate) fn fresh(&self, ns: &str, key: &str) -> Option<AnyValue> {
        let k = KeyRef::new(ns, key);
        self.table
            .read_or(k, None, |slot| match slot.plainly_fresh() {
                Some(value) => {
                    self.stats.incr(Counter::Hit);
                    Some(value.clone())
                }
                None => self.fresh_slow(k, slot),
            })
    }

    /// An entry that is tagged, throttled or near the end of its ttl: judged at the present time.
    #[cold]
    #[inline(never)]
    fn fresh_slow(&self, k: KeyRef<'_>, slot: &Slot) -> Option<AnyValue> {
        match self.judge(k, slot.entry(), clock::now_nanos()) {
            Lookup::Fresh(entry) => {
                self.stats.incr(Counter::Hit);
                Some(self.serve(entry))
            }
            _ => None,
        }
    }

    /// [`lookup`](Self::lookup) at the present time, reading the clock only for an entry near
    /// the end of its ttl or a tagged one (see `clock::surely_before`): the hit paths use this.
    #[inline]
    pub(crate) fn lookup_now(&self, ns: &str, key: &str) -> Lookup {
        let k = KeyRef::new(ns, key);
        let Some(entry) = self.table.read(k, Slot::entry) else {
            return Lookup::Miss;
        };
        if !entry.is_tagged() && clock::surely_before(entry.fresh_until()) {
            return Lookup::Fresh(entry);
        }
        self.judge(k, entry, clock::now_nanos())
    }

    /// The value of a fresh entry about to be served, counting a throttled one as stale served.
    #[inline]
    pub(crate) fn serve(&self, entry: Entry) -> AnyValue {
        if entry.is_throttled() {
            self.stats.incr(Counter::StaleServed);
        }
        entry.value()
    }

    /// Looks up `key`, dropping it if it outlived its stale window or one of its tags was
    /// invalidated after it was created.
    #[inline]
    pub(crate) fn lookup(&self, ns: &str, key: &str, now: u64) -> Lookup {
        let k = KeyRef::new(ns, key);
        let Some(entry) = self.table.read(k, Slot::entry) else {
            return Lookup::Miss;
        };
        self.judge(k, entry, now)
    }

    /// Fresh, stale or gone at `now`; drops an entry past its stale window or of an invalidated
    /// tag.
    #[inline]
    fn judge(&self, k: KeyRef<'_>, entry: Entry, now: u64) -> Lookup {
        if entry.is_fresh(now) && !entry.is_tagged() {
            return Lookup::Fresh(entry);
        }
        self.judge_slow(k, entry, now)
    }

    #[cold]
    fn judge_slow(&self, k: KeyRef<'_>, entry: Entry, now: u64) -> Lookup {
        if now >= entry.stale_until() || self.tag_invalidated(&entry) {
            // Only if it is still this very entry: a write may have replaced it meanwhile.
            self.table.remove_if(k, |slot| slot.same_as(&entry));
            return Lookup::Miss;
        }
        if entry.is_fresh(now) {
            return Lookup::Fresh(entry);
        }
        let (ns, key) = k.parts();
        if self.failing.holds(ns, key, entry.value_addr(), now) {
            // The fail-safe throttle: it stands in for its failing source, served as fresh.
            Lookup::Fresh(entry.throttled())
        } else {
            Lookup::Stale(entry)
        }
    }

    fn tag_invalidated(&self, entry: &Entry) -> bool {
        let Some(tags) = entry.tags() else {
            return false;
        };
        if tags.epoch < self.floor.load(Acquire) {
            return true;
        }
        let stamps = self.tag_stamps.read();
        if stamps.is_empty() {
            return false;
        }
        tags.names
            .iter()
            .any(|t| stamps.get(t).is_some_and(|&(epoch, _)| epoch > tags.epoch))
    }

    /// Inserts `entry`, weighing it with `bytes` (only consulted under a byte bound); whether
    /// it was kept (not when the entries in use leave no room for it).
    pub(crate) fn insert(&self, ns: &str, key: &str, entry: Entry, bytes: u64, now: u64) -> bool {
        self.insert_reserved(ns, key, entry, bytes, now, None)
    }

    /// [`insert`](Self::insert) of an entry whose room `reservation` held: its bytes are given
    /// back as the entry takes their place, under one lock.
    pub(crate) fn insert_reserved(
        &self,
        ns: &str,
        key: &str,
        entry: Entry,
        bytes: u64,
        now: u64,
        reservation: Option<crate::engine::MemoryReservation>,
    ) -> bool {
        let weight = self.bounds.units(bytes, self.shift);
        let Some(key) = MemKey::new(ns, key, weight) else {
            return false; // a namespace over 4 GiB: not cached, as if evicted at once
        };
        let released = reservation.map_or(0, |r| {
            self.bounds
                .reserved_units(r.forget(), self.shift)
                .unwrap_or(0)
        });
        self.max_lifetime
            .fetch_max(entry.stale_until().saturating_sub(now), Relaxed);
        let (evicted, kept) = self.table.insert(key, entry, released);
        if evicted > 0 {
            self.stats.add(Counter::Eviction, evicted);
        }
        kept
    }

    pub(crate) fn remove(&self, ns: &str, key: &str) -> bool {
        self.table.remove(KeyRef::new(ns, key))
    }

    /// Drops every entry.
    pub(crate) fn clear(&self) {
        self.table.clear();
    }

    pub(crate) fn clear_namespace(&self, ns: &str) {
        self.table.retain(|k| !k.in_namespace(ns));
    }

    pub(crate) fn invalidate_tags(&self, tags: &[&str], now: u64) {
        let mut stamps = self.tag_stamps.write();
        let epoch = self.epoch.fetch_add(1, AcqRel) + 1;
        for tag in tags {
            stamps.insert(Arc::from(*tag), (epoch, now));
        }
        if stamps.len() <= self.prune_at.load(Relaxed) {
            return;
        }
        // A stamp older than the longest-lived entry can no longer match anything.
        let horizon = now.saturating_sub(self.max_lifetime.load(Relaxed));
        stamps.retain(|_, (_, at)| *at >= horizon);
        // Still too many (distinct tags purged faster than entries expire): keep the newest
        // half and raise the floor to the oldest epoch kept, so the tagged entries that any
        // dropped stamp could have matched (and a few more) read as invalidated. A miss more,
        // never a stale answer, and the stamps stay bounded.
        if stamps.len() > MAX_TAG_STAMPS {
            let mut epochs: Vec<u64> = stamps.values().map(|&(e, _)| e).collect();
            epochs.sort_unstable();
            let cut = epochs[epochs.len() - MAX_TAG_STAMPS / 2];
            stamps.retain(|_, (e, _)| *e >= cut);
            self.floor.fetch_max(cut, AcqRel);
        }
        self.prune_at
            .store((stamps.len() * 2).clamp(1024, MAX_TAG_STAMPS), Relaxed);
    }

    pub(crate) fn len(&self) -> u64 {
        self.table.len()
    }

    /// Changes what a reservation holds from `from` to `to` bytes. Growing evicts entries to make
    /// room, and is refused (returning `false`) when reservations would then hold more than half
    /// the byte bound: a burst of large fetches can never flush more than half of what is cached.
    /// Without a byte bound nothing is held and growing always succeeds.
    pub(crate) fn resize_reservation(&self, from: u64, to: u64) -> bool {
        let (Some(old), Some(new)) = (
            self.bounds.reserved_units(from, self.shift),
            self.bounds.reserved_units(to, self.shift),
        ) else {
            return true;
        };
        if new <= old {
            self.table.release(old - new);
            return true;
        }
        let (capacity, _) = self.bounds.capacity();
        let (granted, evicted) = self.table.reserve(new - old, capacity / 2);
        if evicted > 0 {
            self.stats.add(Counter::Eviction, evicted);
        }
        granted
    }

    /// Bytes held by reservations now (0 without a byte bound).
    pub(crate) fn reserved_bytes(&self) -> u64 {
        let units = self.table.reserved() << self.shift;
        match (self.bounds.max_entries, self.bounds.max_bytes) {
            (_, None) => 0,
            (Some(e), Some(_)) => units / e.max(1),
            (None, Some(_)) => units,
        }
    }

    /// Total weight, in bytes where a byte bound is set, in entries otherwise.
    pub(crate) fn weight(&self) -> u64 {
        let units = self.table.weight() << self.shift;
        match (self.bounds.max_entries, self.bounds.max_bytes) {
            (Some(e), Some(_)) => units / e.max(1),
            _ => units,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(bounds: Bounds) -> MemoryTier {
        MemoryTier::new(bounds, Arc::new(Recorder::new("test")), Default::default())
    }

    fn entry(v: u32, now: u64, ttl: u64, stale: u64) -> Entry {
        Entry::new(
            AnyValue::new(Arc::new(v)),
            Origin { at: now, epoch: 0 },
            now + ttl,
            now + ttl + stale,
            None,
        )
    }

    #[test]
    fn fresh_then_stale_then_gone() {
        let t = tier(Bounds {
            max_entries: Some(100),
            max_bytes: None,
        });
        let ns: Arc<str> = Arc::from("");
        t.insert(&ns, "k", entry(1, 1000, 10, 10), 0, 1000);
        assert!(matches!(t.lookup("", "k", 1005), Lookup::Fresh(_)));
        assert!(matches!(t.lookup("", "k", 1015), Lookup::Stale(_)));
        assert!(matches!(t.lookup("", "k", 1020), Lookup::Miss));
        assert_eq!(t.len(), 0, "an expired entry is dropped when found");
    }

    #[test]
    fn namespaces_are_separate() {
        let t = tier(Bounds {
            max_entries: Some(100),
            max_bytes: None,
        });
        t.insert(&Arc::from("a"), "k", entry(1, 0, 100, 0), 0, 0);
        assert!(matches!(t.lookup("b", "k", 1), Lookup::Miss));
        assert!(matches!(t.lookup("a", "k", 1), Lookup::Fresh(_)));
        t.clear_namespace("a");
        assert!(matches!(t.lookup("a", "k", 1), Lookup::Miss));
    }

    #[test]
    fn both_bounds_hold_at_once() {
        let b = Bounds {
            max_entries: Some(10),
            max_bytes: Some(1000),
        };
        let (cap, shift) = b.capacity();
        // 10 small entries fill the count bound...
        assert!(10 * b.units(1, shift) <= cap && 11 * b.units(1, shift) > cap);
        // ...and 2 entries of 500 bytes fill the byte bound.
        assert!(2 * b.units(500, shift) <= cap && 3 * b.units(500, shift) > cap);
    }

    /// The finding: distinct tag purges grew the stamps without bound (8 to 23 MiB after
    /// 115,000). They stay bounded, and what they invalidated stays invalidated.
    #[test]
    fn distinct_tag_purges_keep_the_stamps_bounded_and_never_revive_an_entry() {
        let t = tier(Bounds {
            max_entries: Some(100),
            max_bytes: None,
        });
        let ns: Arc<str> = Arc::from("");
        let tagged = |t: &MemoryTier, name: &str, now: u64| {
            Entry::new(
                AnyValue::new(Arc::new(1u8)),
                t.origin(now),
                now + 1_000_000,
                now + 1_000_000,
                Some(Arc::from(vec![Arc::<str>::from(name)])),
            )
        };
        t.insert(&ns, "old", tagged(&t, "kept", 1), 0, 1);
        t.insert(&ns, "gone", tagged(&t, "t0", 1), 0, 1);
        for i in 0..200_000u64 {
            t.invalidate_tags(&[&format!("t{i}")], 2);
        }
        assert!(t.tag_stamps.read().len() <= MAX_TAG_STAMPS);
        assert!(
            matches!(t.lookup("", "gone", 3), Lookup::Miss),
            "t0 was purged"
        );
        // An entry older than dropped stamps reads as invalidated too: a miss more, never stale.
        assert!(matches!(t.lookup("", "old", 3), Lookup::Miss));
        t.insert(&ns, "new", tagged(&t, "t5", 3), 0, 3);
        assert!(
            matches!(t.lookup("", "new", 4), Lookup::Fresh(_)),
            "written after the purges"
        );
    }

    /// A large entry whose value a caller still holds (a body being sent) is not evicted: its
    /// bytes are still in memory, and evicting it would only let the bound forget them. Room is
    /// made from entries not in use; when there is none, a new entry is not kept and a
    /// reservation is refused.
    #[test]
    fn large_entries_in_use_stay_counted_until_let_go() {
        let mb = 1u64 << 20;
        let t = tier(Bounds {
            max_entries: Some(1000),
            max_bytes: Some(4 * mb),
        });
        let ns: Arc<str> = Arc::from("");
        let value = |n: u32| AnyValue::new(Arc::new(n));
        let plain =
            |v: AnyValue| Entry::new(v, Origin { at: 0, epoch: 0 }, u64::MAX, u64::MAX, None);
        let held = value(1);
        assert!(t.insert(&ns, "held", plain(held.clone()), mb, 0));
        assert!(t.insert(&ns, "idle", plain(value(2)), mb, 0));
        assert!(t.insert(&ns, "more", plain(value(3)), mb, 0));
        // Room for 2 MiB more: the idle ones go, the one in use stays.
        assert!(t.insert(&ns, "new", plain(value(4)), 2 * mb, 0));
        assert!(matches!(t.lookup("", "held", 1), Lookup::Fresh(_)));
        assert!(matches!(t.lookup("", "idle", 1), Lookup::Miss));
        // Everything in use: a new entry is not kept, a reservation not granted.
        let new = match t.lookup("", "new", 1) {
            Lookup::Fresh(e) => e.value(),
            _ => panic!("new is there"),
        };
        assert!(!t.insert(&ns, "late", plain(value(5)), 2 * mb, 0));
        assert!(matches!(t.lookup("", "late", 1), Lookup::Miss));
        assert!(!t.resize_reservation(0, 2 * mb), "3 MiB in use leave 1");
        assert!(t.weight() <= 4 * mb);
        // Let go: room again.
        drop((held, new));
        assert!(t.resize_reservation(0, 2 * mb));
        assert!(t.insert(&ns, "late", plain(value(5)), 2 * mb, 0));
    }

    #[test]
    fn huge_bounds_do_not_overflow() {
        let b = Bounds {
            max_entries: Some(u64::MAX),
            max_bytes: Some(u64::MAX),
        };
        let (cap, shift) = b.capacity();
        assert!(cap > 0 && shift > 0);
        assert!(b.units(u64::MAX, shift) >= 1);
    }
}
