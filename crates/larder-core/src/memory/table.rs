//! The memory tier's table: a concurrent hash map whose reads take no lock, bounded by an
//! S3-FIFO eviction policy that only writers touch.
//!
//! Why not quick_cache, which this tier used before: a quick_cache hit takes its shard's read
//! lock and releases it, two locked instructions on a cache line that every reader of the shard
//! writes, around the lookup. papaya's reads are lock-free: seize's reclamation protects a reader
//! with a store to a slot of its own thread, so the one locked instruction left on a hit is the
//! `Arc` clone that every contestant pays (seize's exit is one more, on a line of the thread's
//! own). In the hit benches (BENCHMARKS.md), larder's `get` on quick_cache cost 1.35–1.9× a
//! bare quick_cache `get`; on this table, with the rest of the hit path trimmed, 0.9–1.25×.
//!
//! Writes (insert, remove, clear and eviction) take one mutex. That keeps the policy exact: every
//! live entry has exactly one item in a queue, and the weight is the sum of the live entries'
//! weights, so the bounds hold after every write. A cache is written after an expensive fetch, far
//! less often than it is read, and a write holds the lock only for its map insert, its queue push
//! and any evictions it causes.
//!
//! The policy is S3-FIFO (Yang et al., SOSP 2023): new keys enter a small FIFO queue holding a few
//! percent of the weight; a key read while there moves to the main queue, the others leave and are
//! remembered in a ghost queue of hashes, and a key written again while remembered enters the main
//! queue directly. The main queue gives a key one more pass per hit (up to three). One-hit
//! wonders and scans thus pass through the small queue without displacing the working set (the
//! paper reports hit ratios in W-TinyLFU's class), with no work on a hit beyond a counter in the
//! slot.

use std::collections::VecDeque;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ahash::HashMap;
use foldhash::fast::RandomState;
use parking_lot::Mutex;

use super::entry::{Entry, Slot};
use super::key::{KeyRef, MemKey};
use super::node::Node;

/// Keyed by the whole node, which holds its slot: see `node` for why.
type Map = papaya::HashMap<Node, (), RandomState>;
type Pinned<'a> = papaya::HashMapRef<'a, Node, (), RandomState, papaya::LocalGuard<'a>>;

pub(crate) struct Table {
    map: Map,
    policy: Mutex<Policy>,
    /// Hashes keys for the ghost queue (the map keeps its own hasher to itself).
    hasher: RandomState,
    /// In weight units; the sum of the live entries' weights stays at or below it.
    capacity: u64,
    /// The policy's totals, published after every write so `len` and `weight` need no lock.
    len: AtomicU64,
    weight: AtomicU64,
    /// Units held by memory reservations (bytes kept outside the table that its bound covers):
    /// the entries' weight stays within `capacity − reserved`. Raised only under the write lock,
    /// lowered without it (a release only loosens the bound).
    reserved: AtomicU64,
    /// Large entries: see [`Large`].
    large: Large,
}

/// What makes an entry large, in weight units: a large entry is never evicted while a caller
/// still uses its value (its bytes are still held, so dropping it from the table would only let
/// the bound forget them), and large entries that leave are freed eagerly.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Large {
    /// An entry weighing at least this is kept while in use.
    pub pin: u64,
    /// Once entries weighing this many units have left the map since the last flush, the writer
    /// flushes its retired nodes (see `Table::settle`).
    pub flush: u64,
}

impl Large {
    /// No entry is large: for tables without a byte bound.
    pub(crate) const NONE: Self = Self {
        pin: u64::MAX,
        flush: u64::MAX,
    };
}

impl Table {
    /// A table holding at most `capacity` weight units, sized at first for `expected` entries;
    /// `flush_units` is the weight of removed entries after which their memory is handed back
    /// eagerly (see `Table::settle`).
    pub(crate) fn new(capacity: u64, expected: usize, large: Large) -> Self {
        Self {
            map: papaya::HashMap::builder()
                .capacity(expected)
                .hasher(RandomState::default())
                .build(),
            policy: Mutex::new(Policy::default()),
            hasher: RandomState::default(),
            capacity,
            len: AtomicU64::new(0),
            weight: AtomicU64::new(0),
            reserved: AtomicU64::new(0),
            large,
        }
    }

    /// Hands back the memory of the entries that left the map, once they weigh enough.
    ///
    /// A removed node is retired, not freed: papaya frees it when no reader can still see it,
    /// in batches of 32 per thread. For large values that is far too much to hold past their
    /// eviction (32 bodies of 5 MB per thread outside the bound), so after removals that weigh
    /// `flush_units` the writer flushes its batch, and the values go as soon as the readers of
    /// the moment are done. Small entries keep the batching. Called after the write's own pin
    /// is dropped.
    fn settle(&self, flush: bool) {
        if flush {
            use seize::Guard;
            self.map.guard().flush();
        }
    }

    /// What the entries may weigh now: the capacity less what reservations hold.
    fn room(&self) -> u64 {
        self.capacity.saturating_sub(self.reserved.load(Relaxed))
    }

    /// Holds `units` more for a reservation, evicting entries to make room, unless reservations
    /// would then hold more than `limit` units. Returns whether it did, and how many entries it
    /// evicted.
    pub(crate) fn reserve(&self, units: u64, limit: u64) -> (bool, u64) {
        let map = self.map.pin();
        let mut policy = self.policy.lock();
        let held = self.reserved.load(Relaxed);
        let Some(total) = held.checked_add(units).filter(|t| *t <= limit) else {
            return (false, 0);
        };
        self.reserved.store(total, Relaxed);
        let evicted = policy.evict_over(self.room(), &map, &self.hasher, self.large.pin);
        // The entries in use could not make way: no room for the reservation.
        let granted = policy.weight <= self.room();
        if !granted {
            self.reserved.store(held, Relaxed);
        }
        policy.compact_if_needed(&map);
        self.publish(&policy);
        let flush = policy.due_flush(self.large.flush);
        drop((policy, map));
        self.settle(flush);
        (granted, evicted)
    }

    /// Gives back `units` a reservation held.
    pub(crate) fn release(&self, units: u64) {
        let _ = self
            .reserved
            .fetch_update(Relaxed, Relaxed, |r| Some(r.saturating_sub(units)));
    }

    /// The units reservations hold now.
    pub(crate) fn reserved(&self) -> u64 {
        self.reserved.load(Relaxed)
    }

    /// Runs `f` on the slot under `key`, counting the read for the eviction policy. Takes no
    /// lock: the slot stays valid while `f` runs even if a writer replaces it meanwhile.
    #[inline]
    pub(crate) fn read<R>(&self, key: KeyRef<'_>, f: impl FnOnce(&Slot) -> R) -> Option<R> {
        self.read_or(key, None, |slot| Some(f(slot)))
    }

    /// [`read`](Self::read) answering `absent` when there is no entry: the hit path uses it to
    /// keep its answer two words wide, which the caller gets in registers (an `Option` around it
    /// made it three, returned through memory, and a hit about 10 ns slower).
    #[inline(always)]
    pub(crate) fn read_or<R>(&self, key: KeyRef<'_>, absent: R, f: impl FnOnce(&Slot) -> R) -> R {
        let map = self.map.pin();
        match map.get_key_value(&key) {
            Some((node, ())) => {
                node.slot.touch();
                f(&node.slot)
            }
            None => absent,
        }
    }

    /// Inserts `entry` under `key`, replacing any entry there, then evicts down to the capacity.
    /// `reserved` units a reservation held for the entry are given back first, under the same
    /// lock, so that the room made for it is its own. An entry heavier than the whole table, or
    /// for which the entries in use leave no room, is not kept (and the one it replaces is
    /// dropped too, so a read never finds the older value). Returns how many entries were
    /// evicted, and whether the entry was kept.
    pub(crate) fn insert(&self, mut key: MemKey, entry: Entry, reserved: u64) -> (u64, bool) {
        let map = self.map.pin();
        let mut policy = self.policy.lock();
        if reserved > 0 {
            let _ = self
                .reserved
                .fetch_update(Relaxed, Relaxed, |r| Some(r.saturating_sub(reserved)));
        }
        let (evicted, kept) = if key.weight() > self.capacity {
            if let Some((old, ())) = map.remove_entry(&key.borrowed()) {
                policy.forget(&old.key);
            }
            (1, false)
        } else {
            if let Some((old, ())) = map.get_key_value(&key.borrowed()) {
                policy.forget(&old.key);
            }
            let hash = self.hasher.hash_one(key.borrowed());
            key.set_generation(policy.next_generation());
            let slot = Slot::new(entry);
            map.insert(
                Node {
                    key: key.clone(),
                    slot,
                },
                (),
            );
            policy.admit(key.clone(), hash);
            let evicted = policy.evict_over(self.room(), &map, &self.hasher, self.large.pin);
            if policy.weight > self.room() {
                // What is left is in use: this entry does not fit.
                if let Some((old, ())) = map.remove_entry(&key.borrowed()) {
                    policy.forget(&old.key);
                }
            }
            // Evicted by its own insert (the small queue's turn), or removed just above.
            (evicted, live(&map, &key).is_some())
        };
        policy.compact_if_needed(&map);
        self.publish(&policy);
        let flush = policy.due_flush(self.large.flush);
        drop((policy, map));
        self.settle(flush);
        (evicted, kept)
    }

    /// Removes the entry under `key`; whether there was one.
    pub(crate) fn remove(&self, key: KeyRef<'_>) -> bool {
        self.remove_if(key, |_| true)
    }

    /// Removes the entry under `key` if `pred` holds for it; whether it did.
    pub(crate) fn remove_if(&self, key: KeyRef<'_>, pred: impl FnOnce(&Slot) -> bool) -> bool {
        let map = self.map.pin();
        let mut policy = self.policy.lock();
        // Writers hold the lock, so the entry cannot change between this check and the removal.
        if !map
            .get_key_value(&key)
            .is_some_and(|(node, ())| pred(&node.slot))
        {
            return false;
        }
        let removed = map
            .remove_entry(&key)
            .map(|(old, ())| policy.forget(&old.key));
        self.publish(&policy);
        let flush = policy.due_flush(self.large.flush);
        drop((policy, map));
        self.settle(flush);
        removed.is_some()
    }

    /// Removes every entry whose key fails `keep`.
    pub(crate) fn retain(&self, mut keep: impl FnMut(&MemKey) -> bool) {
        let map = self.map.pin();
        let mut policy = self.policy.lock();
        let doomed: Vec<MemKey> = map
            .keys()
            .filter(|node| !keep(&node.key))
            .map(|node| node.key.clone())
            .collect();
        for key in doomed {
            if let Some((old, ())) = map.remove_entry(&key.borrowed()) {
                policy.forget(&old.key);
            }
        }
        policy.compact_if_needed(&map);
        self.publish(&policy);
    }

    /// Removes every entry.
    pub(crate) fn clear(&self) {
        let map = self.map.pin();
        let mut policy = self.policy.lock();
        map.clear();
        *policy = Policy::default();
        self.publish(&policy);
    }

    pub(crate) fn len(&self) -> u64 {
        self.len.load(Relaxed)
    }

    /// The live entries' total weight, in units.
    pub(crate) fn weight(&self) -> u64 {
        self.weight.load(Relaxed)
    }

    fn publish(&self, policy: &Policy) {
        self.len.store(policy.len, Relaxed);
        self.weight.store(policy.weight, Relaxed);
    }
}

/// A queue's record of one insert: the key as inserted, whose generation tells the entry it was
/// queued for from a later one under the same key.
type Item = MemKey;

/// The slot `item` was queued for, if it is still in the table (not removed, nor replaced by a
/// later write of its key).
fn live<'m>(map: &'m Pinned<'_>, item: &Item) -> Option<&'m Slot> {
    map.get_key_value(&item.borrowed())
        .filter(|(node, ())| node.key.generation() == item.generation())
        .map(|(node, ())| &node.slot)
}

/// The small queue's share of the capacity is `1 / SMALL_SHARE`, and the ghost queue holds half
/// as many keys as the main queue: quick_cache's defaults (3% and 50%). The paper's 10% and 100%
/// gave 1–2% fewer hits than quick_cache on `the_hit_ratio_on_skewed_workloads_beats_lru_and_matches_quick_cache`'s
/// Zipf streams; these give within 0.2%.
const SMALL_SHARE: u64 = 33;

/// S3-FIFO's queues and totals, behind the table's write lock.
#[derive(Default)]
struct Policy {
    small: Queue,
    main: Queue,
    ghost: Ghost,
    /// Live entries and their total weight.
    len: u64,
    weight: u64,
    /// Queue items whose entry was removed or replaced since; skipped when reached, and swept
    /// out when they outnumber the live ones (a cache below its bound never reaches them).
    dead: u64,
    /// Weight of the entries removed since the last flush (see `Table::settle`).
    retired: u64,
    /// The generation of the last insert. It wraps after 2^32 inserts: a queue item would have
    /// to wait that long for its key to come back with the same number to be taken for it, and
    /// then the slot would only be judged a pass early or late.
    generation: u32,
}

impl Policy {
    /// Accounts for a live entry that was just removed from the map; its queue item is now dead.
    fn forget(&mut self, key: &MemKey) {
        self.len = self.len.saturating_sub(1);
        self.weight = self.weight.saturating_sub(key.weight());
        self.retired = self.retired.saturating_add(key.weight());
        self.dead += 1;
    }

    /// Whether removals since the last flush weigh `units`; if so, counts from zero again.
    fn due_flush(&mut self, units: u64) -> bool {
        let due = self.retired >= units;
        if due {
            self.retired = 0;
        }
        due
    }

    fn next_generation(&mut self) -> u32 {
        self.generation = self.generation.wrapping_add(1);
        self.generation
    }

    /// Queues a key just inserted into the map.
    fn admit(&mut self, item: Item, hash: u64) {
        self.len += 1;
        self.weight = self.weight.saturating_add(item.weight());
        if self.ghost.take(hash) {
            self.main.push(item);
        } else {
            self.small.push(item);
        }
    }

    /// Evicts until the live weight is within `capacity`; how many entries it evicted.
    /// Never evicts an entry of at least `pin` units whose value is in use.
    fn evict_over(
        &mut self,
        capacity: u64,
        map: &Pinned<'_>,
        hasher: &RandomState,
        pin: u64,
    ) -> u64 {
        let mut evicted = 0;
        while self.weight > capacity && self.evict_one(capacity, map, hasher, pin) {
            evicted += 1;
        }
        evicted
    }

    /// Evicts one entry; `false` if the queues ran out first, or hold only entries in use.
    fn evict_one(
        &mut self,
        capacity: u64,
        map: &Pinned<'_>,
        hasher: &RandomState,
        pin: u64,
    ) -> bool {
        // Readers may keep raising counts while this runs; past this many steps the next live
        // item goes whatever its count, so eviction always ends.
        let items = self.small.items.len() + self.main.items.len();
        let mut budget = 4 * items + 8;
        // Large entries in use go to the back of the main queue; once every item has been seen
        // in use, nothing can be evicted.
        let mut in_use = 0;
        loop {
            let from_small = !self.small.items.is_empty()
                && (self.small.weight > capacity / SMALL_SHARE || self.main.items.is_empty());
            let queue = if from_small {
                &mut self.small
            } else {
                &mut self.main
            };
            let Some(item) = queue.pop() else {
                return false;
            };
            let Some(slot) = live(map, &item) else {
                self.dead = self.dead.saturating_sub(1);
                continue;
            };
            if item.weight() >= pin && slot.in_use() {
                self.main.push(item);
                in_use += 1;
                if in_use > items {
                    return false;
                }
                continue;
            }
            budget = budget.saturating_sub(1);
            if slot.freq() > 0 && budget > 0 {
                // Read since it was queued: a small-queue key joins the main queue, a main-queue
                // key gets another pass for one of its hits.
                if !from_small {
                    slot.spend_hit();
                }
                self.main.push(item);
                continue;
            }
            let key = item;
            map.remove(&key.borrowed());
            self.len = self.len.saturating_sub(1);
            self.weight = self.weight.saturating_sub(key.weight());
            self.retired = self.retired.saturating_add(key.weight());
            if from_small {
                let limit = (self.main.items.len() / 2).max(Ghost::MIN_LEN);
                self.ghost.remember(hasher.hash_one(key.borrowed()), limit);
            }
            return true;
        }
    }

    /// Sweeps dead items out of the queues once they outnumber the live entries.
    fn compact_if_needed(&mut self, map: &Pinned<'_>) {
        if self.dead <= self.len + 64 {
            return;
        }
        self.small.retain_live(map);
        self.main.retain_live(map);
        self.dead = 0;
    }
}

/// A FIFO queue of keys, with the total weight of its items (dead ones included, which only
/// steers the choice of queue to evict from).
#[derive(Default)]
struct Queue {
    items: VecDeque<Item>,
    weight: u64,
}

impl Queue {
    fn push(&mut self, item: Item) {
        self.weight = self.weight.saturating_add(item.weight());
        self.items.push_back(item);
    }

    fn pop(&mut self) -> Option<Item> {
        let item = self.items.pop_front()?;
        self.weight = self.weight.saturating_sub(item.weight());
        Some(item)
    }

    fn retain_live(&mut self, map: &Pinned<'_>) {
        self.items.retain(|item| live(map, item).is_some());
        self.weight = self
            .items
            .iter()
            .fold(0u64, |w, item| w.saturating_add(item.weight()));
    }
}

/// Hashes of keys recently evicted from the small queue, oldest first.
#[derive(Default)]
struct Ghost {
    order: VecDeque<u64>,
    /// How many times each hash is in `order`.
    members: HashMap<u64, u32>,
}

impl Ghost {
    /// The ghost queue remembers half as many keys as the main queue holds, and never fewer than
    /// this.
    const MIN_LEN: usize = 64;

    fn remember(&mut self, hash: u64, limit: usize) {
        *self.members.entry(hash).or_insert(0) += 1;
        self.order.push_back(hash);
        while self.order.len() > limit {
            let Some(old) = self.order.pop_front() else {
                break;
            };
            if let Some(n) = self.members.get_mut(&old) {
                *n -= 1;
                if *n == 0 {
                    self.members.remove(&old);
                }
            }
        }
    }

    /// Whether `hash` was remembered, forgetting it.
    fn take(&mut self, hash: u64) -> bool {
        self.members.remove(&hash).is_some()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::memory::{AnyValue, Origin};

    fn slot(v: u32) -> Entry {
        Entry::new(
            AnyValue::new(Arc::new(v)),
            Origin { at: 0, epoch: 0 },
            u64::MAX,
            u64::MAX,
            None,
        )
    }

    fn key(k: &str, weight: u64) -> MemKey {
        MemKey::new("", k, weight).unwrap()
    }

    fn has(t: &Table, k: &str) -> bool {
        t.read(KeyRef::new("", k), |_| ()).is_some()
    }

    /// A deterministic stream of key ranks, Zipf-distributed with exponent `s` over `n` keys.
    fn zipf(n: usize, s: f64, len: usize, mut seed: u64) -> Vec<usize> {
        let weights: Vec<f64> = (1..=n).map(|r| 1.0 / (r as f64).powf(s)).collect();
        let total: f64 = weights.iter().sum();
        let mut cdf = Vec::with_capacity(n);
        let mut acc = 0.0;
        for w in weights {
            acc += w / total;
            cdf.push(acc);
        }
        (0..len)
            .map(|_| {
                // xorshift64*: enough for a test's fixed stream.
                seed ^= seed >> 12;
                seed ^= seed << 25;
                seed ^= seed >> 27;
                let u =
                    (seed.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64;
                cdf.partition_point(|&c| c < u).min(n - 1)
            })
            .collect()
    }

    /// Hits of an exact LRU cache of `capacity` entries over `stream`.
    fn lru_hits(capacity: usize, stream: &[usize]) -> usize {
        let mut last_use: std::collections::HashMap<usize, usize> = Default::default();
        let mut by_age: std::collections::BTreeMap<usize, usize> = Default::default();
        let mut hits = 0;
        for (t, &k) in stream.iter().enumerate() {
            if let Some(old) = last_use.insert(k, t) {
                by_age.remove(&old);
                hits += 1;
            } else if last_use.len() > capacity {
                if let Some((_, victim)) = by_age.pop_first() {
                    last_use.remove(&victim);
                }
            }
            by_age.insert(t, k);
        }
        hits
    }

    #[test]
    fn the_hit_ratio_on_skewed_workloads_beats_lru_and_matches_quick_cache() {
        let (keys, capacity) = (20_000, 1_000);
        for (s, seed) in [(0.8, 7), (1.0, 11), (1.2, 13)] {
            // A skewed stream, with a scan of one-hit keys through its middle.
            let mut stream = zipf(keys, s, 100_000, seed);
            stream.splice(50_000..50_000, keys..keys + 5_000);
            let t = Table::new(capacity as u64, 16, Large::NONE);
            let mut hits = 0;
            for &k in &stream {
                let name = k.to_string();
                if has(&t, &name) {
                    hits += 1;
                } else {
                    t.insert(key(&name, 1), slot(0), 0);
                }
            }
            let lru = lru_hits(capacity, &stream);
            // quick_cache's S3-FIFO, which this table replaced, on the same stream.
            let quick = quick_cache::sync::Cache::<usize, ()>::new(capacity);
            let mut quick_hits = 0;
            for &k in &stream {
                if quick.get(&k).is_some() {
                    quick_hits += 1;
                } else {
                    quick.insert(k, ());
                }
            }
            assert!(
                hits >= lru && hits * 100 >= quick_hits * 99,
                "zipf {s}: {hits} hits, LRU {lru}, quick_cache {quick_hits} of {}",
                stream.len()
            );
        }
    }

    #[test]
    fn the_bound_holds_after_every_insert_and_evictions_are_counted() {
        let t = Table::new(100, 16, Large::NONE);
        let mut evicted = 0;
        for i in 0..1_000 {
            evicted += t.insert(key(&i.to_string(), 1), slot(i), 0).0;
            assert!(t.weight() <= 100 && t.len() <= 100);
        }
        assert_eq!(t.len(), 100);
        assert_eq!(evicted, 900);
    }

    #[test]
    fn reservations_and_entries_share_the_capacity() {
        let t = Table::new(100, 16, Large::NONE);
        for i in 0..10 {
            t.insert(key(&i.to_string(), 10), slot(i), 0);
        }
        assert_eq!(t.weight(), 100);
        // A reservation makes room by evicting entries.
        assert_eq!(t.reserve(30, 50), (true, 3));
        assert_eq!((t.weight(), t.reserved()), (70, 30));
        // Entries inserted meanwhile stay within what is left.
        t.insert(key("new", 10), slot(99), 0);
        assert!(t.weight() <= 70);
        // Reservations stop at their limit, whatever the entries hold.
        assert_eq!(t.reserve(30, 50), (false, 0));
        assert_eq!(t.reserved(), 30);
        t.release(30);
        assert_eq!(t.reserved(), 0);
        t.release(5);
        assert_eq!(t.reserved(), 0, "a release never goes below zero");
        for i in 10..30 {
            t.insert(key(&i.to_string(), 10), slot(i), 0);
        }
        assert_eq!(t.weight(), 100, "released room is the entries' again");
    }

    #[test]
    fn weights_are_summed_and_replacing_a_key_swaps_its_weight() {
        let t = Table::new(1_000, 16, Large::NONE);
        t.insert(key("a", 300), slot(1), 0);
        t.insert(key("b", 200), slot(2), 0);
        assert_eq!((t.len(), t.weight()), (2, 500));
        t.insert(key("a", 100), slot(3), 0);
        assert_eq!((t.len(), t.weight()), (2, 300));
        let read = t.read(KeyRef::new("", "a"), |s| {
            s.entry().value().downcast_ref::<u32>().copied()
        });
        assert_eq!(
            read,
            Some(Some(3)),
            "a read finds the new value, not the replaced one"
        );
        assert!(t.remove(KeyRef::new("", "b")));
        assert!(!t.remove(KeyRef::new("", "b")));
        assert_eq!((t.len(), t.weight()), (1, 100));
    }

    #[test]
    fn an_entry_heavier_than_the_table_is_not_kept_nor_is_the_one_it_replaces() {
        let t = Table::new(100, 16, Large::NONE);
        t.insert(key("k", 10), slot(1), 0);
        assert_eq!(t.insert(key("k", 101), slot(2), 0).0, 1);
        assert!(!has(&t, "k"));
        assert_eq!((t.len(), t.weight()), (0, 0));
    }

    #[test]
    fn a_read_key_survives_a_scan_of_one_hit_wonders() {
        let t = Table::new(100, 16, Large::NONE);
        for i in 0..50 {
            t.insert(key(&format!("hot{i}"), 1), slot(i), 0);
        }
        for _ in 0..2 {
            for i in 0..50 {
                assert!(has(&t, &format!("hot{i}")));
            }
        }
        // A scan ten times the cache's size, each key written once and never read.
        for i in 0..1_000 {
            t.insert(key(&format!("scan{i}"), 1), slot(i), 0);
        }
        let kept = (0..50).filter(|i| has(&t, &format!("hot{i}"))).count();
        assert_eq!(kept, 50, "the working set was flushed by a scan");
    }

    #[test]
    fn a_key_written_again_soon_after_eviction_enters_the_main_queue() {
        let t = Table::new(10, 16, Large::NONE);
        t.insert(key("again", 1), slot(0), 0);
        for i in 0..10 {
            t.insert(key(&i.to_string(), 1), slot(i), 0);
        }
        assert!(
            !has(&t, "again"),
            "never read: evicted from the small queue"
        );
        t.insert(key("again", 1), slot(1), 0);
        // Remembered by the ghost queue, so it skips the small queue and outlives a scan.
        for i in 10..30 {
            t.insert(key(&i.to_string(), 1), slot(i), 0);
        }
        assert!(has(&t, "again"));
    }

    #[test]
    fn dead_queue_items_are_swept_when_nothing_is_evicted() {
        let t = Table::new(1_000_000, 16, Large::NONE);
        for i in 0..10_000u32 {
            t.insert(key("same", 1), slot(i), 0);
        }
        assert_eq!(t.len(), 1);
        let p = t.policy.lock();
        assert!(p.small.items.len() + p.main.items.len() <= 1 + 64 + 1);
    }

    #[test]
    fn retain_and_clear_keep_the_totals_exact() {
        let t = Table::new(1_000, 16, Large::NONE);
        for i in 0..10 {
            t.insert(MemKey::new("a", &i.to_string(), 2).unwrap(), slot(i), 0);
            t.insert(MemKey::new("b", &i.to_string(), 3).unwrap(), slot(i), 0);
        }
        t.retain(|k| !k.in_namespace("a"));
        assert_eq!((t.len(), t.weight()), (10, 30));
        assert!(t.read(KeyRef::new("a", "1"), |_| ()).is_none());
        assert!(t.read(KeyRef::new("b", "1"), |_| ()).is_some());
        t.clear();
        assert_eq!((t.len(), t.weight()), (0, 0));
        assert!(t.read(KeyRef::new("b", "1"), |_| ()).is_none());
    }

    #[test]
    fn concurrent_writers_and_readers_keep_the_bound_and_the_totals() {
        let t = Arc::new(Table::new(64, 16, Large::NONE));
        let threads: Vec<_> = (0..4u32)
            .map(|n| {
                let t = Arc::clone(&t);
                std::thread::spawn(move || {
                    for i in 0..5_000u32 {
                        let k = ((i * 7 + n * 13) % 200).to_string();
                        match i % 4 {
                            0 => {
                                t.remove(KeyRef::new("", &k));
                            }
                            1 => {
                                t.read(KeyRef::new("", &k), |_| ());
                            }
                            _ => {
                                t.insert(key(&k, 1 + u64::from(i % 3)), slot(i), 0);
                            }
                        }
                        assert!(t.weight() <= 64);
                    }
                })
            })
            .collect();
        for th in threads {
            th.join().unwrap();
        }
        let map = t.map.pin();
        let (len, weight) = map
            .iter()
            .fold((0, 0), |(n, w), (node, ())| (n + 1, w + node.key.weight()));
        assert_eq!((t.len(), t.weight()), (len, weight));
    }
}
