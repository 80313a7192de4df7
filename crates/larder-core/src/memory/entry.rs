//! One entry of the memory tier, kept small: the table's slots are what a lookup pays for in
//! memory traffic. Measured on the hit bench's own keys and values, a quick_cache holding a
//! 48-byte entry and a 32-byte key took 35 ns a hit, one holding a 32-byte entry and a 24-byte
//! key 24 ns, beside 21 ns for `String` → `Arc<String>`. The table now stores it as a [`Slot`]
//! (the same words, plus the eviction policy's count and the insert's generation in what was
//! padding) and serves a hit from where it lies.
//!
//! So an entry is the value, its exact `fresh_until`, and one word packing everything else: the
//! stale window and the ttl as [`Span`]s, and two flags. The rare parts live elsewhere: a tagged
//! entry's value is wrapped with its tags (see [`Tagged`]), so untagged entries carry nothing for
//! tags and a hit on one clones nothing but its value.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::AnyValue;
use crate::clock;

/// When the work behind an entry started: an instant (for its ttl) and the tag epoch (to order it
/// against tag invalidations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub at: u64,
    pub epoch: u64,
}

/// A tagged entry's tags, with the tag epoch in which the work behind it started.
pub(crate) struct TagSet {
    pub epoch: u64,
    pub names: Arc<[Arc<str>]>,
}

/// What a tagged entry stores in place of its value: the value and its tags together.
struct Tagged {
    tags: TagSet,
    value: AnyValue,
}

/// One cached value and its lifetimes (monotonic nanoseconds, see `clock`).
#[derive(Clone)]
pub(crate) struct Entry {
    /// The value, or for a tagged entry a [`Tagged`] holding it.
    stored: AnyValue,
    fresh_until: u64,
    meta: Meta,
}

/// Flags, stale window, ttl and (in a [`Slot`]) the eviction policy's hit count in one word:
/// bit 63 tagged, bit 62 throttled, bits 32..62 the stale window past `fresh_until`, bits 2..32
/// the ttl, bits 0..2 the hit count (always 0 in an [`Entry`]).
#[derive(Clone, Copy)]
struct Meta(u64);

impl Meta {
    const TAGGED: u64 = 1 << 63;
    /// A stale value that stands in for its failing source (the fail-safe throttle: see
    /// `failing.rs`), as a lookup found it: served without calling the source again, counted as
    /// stale, never eagerly refreshed. Set only on an entry copied out of its slot, never on the
    /// slot itself: the mark lives in the cache's one map.
    const THROTTLED: u64 = 1 << 62;
    const SPAN_MASK: u64 = (1 << Span::BITS) - 1;
    const TTL_SHIFT: u32 = 2;
    const STALE_SHIFT: u32 = Self::TTL_SHIFT + Span::BITS;
    const FREQ_MASK: u64 = (1 << Self::TTL_SHIFT) - 1;

    fn new(tagged: bool, stale: Span, ttl: Span) -> Self {
        let flag = if tagged { Self::TAGGED } else { 0 };
        Self(
            flag | (u64::from(stale.0) << Self::STALE_SHIFT)
                | (u64::from(ttl.0) << Self::TTL_SHIFT),
        )
    }

    fn stale(self) -> Span {
        Span(((self.0 >> Self::STALE_SHIFT) & Self::SPAN_MASK) as u32)
    }

    fn ttl(self) -> Span {
        Span(((self.0 >> Self::TTL_SHIFT) & Self::SPAN_MASK) as u32)
    }

    fn freq(self) -> u8 {
        (self.0 & Self::FREQ_MASK) as u8
    }

    /// The entry's own part, without the hit count.
    fn of_entry(self) -> Self {
        Self(self.0 & !Self::FREQ_MASK)
    }
}

impl Entry {
    pub(crate) fn new(
        value: AnyValue,
        origin: Origin,
        fresh_until: u64,
        stale_until: u64,
        tags: Option<Arc<[Arc<str>]>>,
    ) -> Self {
        let stale = Span::until(fresh_until, stale_until.max(fresh_until));
        let ttl = Span::from_nanos(fresh_until.saturating_sub(origin.at));
        let (stored, tagged): (AnyValue, bool) = match tags {
            Some(names) => {
                let tags = TagSet {
                    epoch: origin.epoch,
                    names,
                };
                (AnyValue::new(Arc::new(Tagged { tags, value })), true)
            }
            None => (value, false),
        };
        Self {
            stored,
            fresh_until,
            meta: Meta::new(tagged, stale, ttl),
        }
    }

    /// The cached value.
    #[inline]
    pub(crate) fn value(self) -> AnyValue {
        if !self.is_tagged() {
            return self.stored;
        }
        match self.stored.downcast::<Tagged>() {
            Ok(tagged) => tagged.value.clone(),
            // Unreachable by construction: only `new` sets the flag, with a `Tagged` beside it.
            Err(stored) => stored,
        }
    }

    /// The address of the value's allocation: what a fail-safe mark names.
    pub(crate) fn value_addr(&self) -> usize {
        match self.tagged() {
            Some(tagged) => tagged.value.addr(),
            None => self.stored.addr(),
        }
    }

    pub(crate) fn tags(&self) -> Option<&TagSet> {
        self.tagged().map(|t| &t.tags)
    }

    fn tagged(&self) -> Option<&Tagged> {
        if self.is_tagged() {
            self.stored.downcast_ref::<Tagged>()
        } else {
            None
        }
    }

    #[inline]
    pub(crate) fn is_tagged(&self) -> bool {
        self.meta.0 & Meta::TAGGED != 0
    }

    #[inline]
    pub(crate) fn is_throttled(&self) -> bool {
        self.meta.0 & Meta::THROTTLED != 0
    }

    #[inline]
    pub(crate) fn fresh_until(&self) -> u64 {
        self.fresh_until
    }

    pub(crate) fn stale_until(&self) -> u64 {
        self.meta.stale().after(self.fresh_until)
    }

    #[inline]
    pub(crate) fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
    }

    /// This stale entry as it stands in for its failing source (the fail-safe throttle).
    pub(crate) fn throttled(mut self) -> Self {
        self.meta.0 |= Meta::THROTTLED;
        self
    }

    /// Whether a hit now is past `fraction` of the entry's ttl. Reads the clock only when the
    /// ticker cannot vouch that the refresh point is still ahead.
    pub(crate) fn wants_refresh(&self, fraction: f64) -> bool {
        self.refresh_point(fraction)
            .is_some_and(|due| !clock::surely_before(due) && clock::now_nanos() >= due)
    }

    /// The instant from which a hit should refresh the entry: `fraction` of its ttl after it was
    /// written; `None` if it never should.
    fn refresh_point(&self, fraction: f64) -> Option<u64> {
        if self.fresh_until == u64::MAX || self.is_throttled() {
            // Never expires: nothing to refresh ahead of. Throttled: the source just failed.
            return None;
        }
        let ttl = self.meta.ttl().nanos();
        let created = self.fresh_until.saturating_sub(ttl);
        // `fraction` is in (0, 1), so the product stays within the ttl's own range.
        Some(created.saturating_add(((ttl as f64) * fraction) as u64))
    }
}

/// An entry as the table holds it: the same three words, with the eviction policy's hit count
/// in the low bits of the meta word, which is atomic so that readers can count hits in place.
/// 32 bytes: with its key, 64 (`node`). Nothing else of a slot changes once it is written: a
/// write replaces the slot.
///
/// A reader is served from the slot where it lies (only the value's `Arc` is cloned); nothing
/// else is copied out on a hit.
pub(crate) struct Slot {
    stored: AnyValue,
    fresh_until: u64,
    /// [`Meta`]. Every write of it is a read-modify-write (readers raise the hit count, the
    /// policy lowers it), so none undoes another.
    meta: AtomicU64,
}

impl Slot {
    /// S3-FIFO caps the count at 3: enough to tell one-hit wonders from the working set, small
    /// enough that a key that went cold leaves the main queue within three passes.
    pub(crate) const MAX_FREQ: u8 = Meta::FREQ_MASK as u8;

    pub(crate) fn new(entry: Entry) -> Self {
        Self {
            stored: entry.stored,
            fresh_until: entry.fresh_until,
            meta: AtomicU64::new(entry.meta.of_entry().0),
        }
    }

    /// The value if the entry is untagged and surely fresh without reading the clock: the
    /// whole of a hit's check, made on the slot itself.
    #[inline(always)]
    pub(crate) fn plainly_fresh(&self) -> Option<&AnyValue> {
        let meta = self.meta.load(Ordering::Relaxed);
        (meta & Meta::TAGGED == 0 && clock::surely_before(self.fresh_until)).then_some(&self.stored)
    }

    /// Whether the value is in use outside the table: a caller still holds what it got (a
    /// response body being sent, say). The slot's own reference (or, tagged, its wrapper's) is
    /// the one expected; a reader's clone of a moment ago counts too, which only delays its
    /// eviction.
    pub(crate) fn in_use(&self) -> bool {
        if Meta(self.meta.load(Ordering::Relaxed)).0 & Meta::TAGGED == 0 {
            return self.stored.is_shared();
        }
        self.stored
            .downcast_ref::<Tagged>()
            .is_some_and(|t| t.value.is_shared())
    }

    /// The entry as it is now.
    pub(crate) fn entry(&self) -> Entry {
        let fresh_until = self.fresh_until;
        Entry {
            stored: self.stored.clone(),
            fresh_until,
            meta: Meta(self.meta.load(Ordering::Relaxed)).of_entry(),
        }
    }

    /// Whether `other` is this very entry as written (a write since would differ).
    pub(crate) fn same_as(&self, other: &Entry) -> bool {
        self.stored.ptr_eq(&other.stored) && self.fresh_until == other.fresh_until
    }

    /// Counts a hit for the eviction policy. Once the count is saturated, as it soon is for a hot
    /// key, only a load: hot keys do not bounce their cache line between cores. Below that a
    /// compare-exchange, so the count never undoes the policy's lowering of it; one lost to a race only makes the
    /// policy a little less sure of a key.
    #[inline(always)]
    pub(crate) fn touch(&self) {
        let m = self.meta.load(Ordering::Relaxed);
        if Meta(m).freq() < Self::MAX_FREQ {
            self.count_hit(m);
        }
    }

    #[cold]
    #[inline(never)]
    fn count_hit(&self, m: u64) {
        let _ = self
            .meta
            .compare_exchange(m, m + 1, Ordering::Relaxed, Ordering::Relaxed);
    }

    /// The hit count, for the policy.
    pub(crate) fn freq(&self) -> u8 {
        Meta(self.meta.load(Ordering::Relaxed)).freq()
    }

    /// Takes one hit off the count, for the policy, which holds the table's write lock: readers
    /// only raise the count meanwhile, so a count the policy saw above 0 stays so until this.
    pub(crate) fn spend_hit(&self) {
        self.meta.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A duration in 30 bits: two bits of unit (ns, µs, ms, s) and 28 of count, so exact below
/// 0.26 s and within 4 ppm above, up to 8.5 years; all ones is "forever". Rounds down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u32);

impl Span {
    const BITS: u32 = 30;
    const COUNT_BITS: u32 = 28;
    const MAX_COUNT: u64 = (1 << Self::COUNT_BITS) - 1;
    const FOREVER: Span = Span((1 << Self::BITS) - 1);
    /// Nanoseconds per unit.
    const UNITS: [u64; 4] = [1, 1_000, 1_000_000, 1_000_000_000];

    fn from_nanos(nanos: u64) -> Self {
        for (unit, per) in Self::UNITS.iter().enumerate() {
            let count = nanos / per;
            if count <= Self::MAX_COUNT {
                return Self(((unit as u32) << Self::COUNT_BITS) | count as u32);
            }
        }
        // Beyond 8.5 years: the longest finite span, one below "forever".
        Self(Self::FOREVER.0 - 1)
    }

    /// The span from `from` to `until`; "forever" when `until` is the end of time.
    fn until(from: u64, until: u64) -> Self {
        if until == u64::MAX {
            return Self::FOREVER;
        }
        Self::from_nanos(until.saturating_sub(from))
    }

    /// The instant this span after `from`.
    fn after(self, from: u64) -> u64 {
        if self == Self::FOREVER {
            return u64::MAX;
        }
        from.saturating_add(self.nanos())
    }

    fn nanos(self) -> u64 {
        let unit = (self.0 >> Self::COUNT_BITS) as usize & 3;
        (u64::from(self.0) & Self::MAX_COUNT) * Self::UNITS[unit]
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_span_rounds_down_by_at_most_4_ppm(nanos in any::<u64>()) {
            let back = Span::from_nanos(nanos).nanos();
            prop_assert!(back <= nanos);
            if nanos < 8 * 365 * 86_400 * 1_000_000_000 {
                prop_assert!(nanos - back <= nanos / 250_000, "{} -> {}", nanos, back);
            }
        }

        #[test]
        fn an_entry_keeps_its_instants(fresh in any::<u64>(), extra in any::<u64>(), tagged: bool) {
            let stale = fresh.saturating_add(extra);
            let tags = tagged.then(|| Arc::from([Arc::from("t")]));
            let e = Entry::new(AnyValue::new(Arc::new(())), Origin { at: 0, epoch: 0 }, fresh, stale, tags);
            prop_assert_eq!(e.fresh_until(), fresh);
            prop_assert!(e.stale_until() <= stale && e.stale_until() >= fresh);
            prop_assert_eq!(e.stale_until() == u64::MAX, stale == u64::MAX);
            prop_assert_eq!(e.is_tagged(), tagged);
        }
    }

    #[test]
    fn an_entry_stays_small() {
        assert_eq!(size_of::<Entry>(), 32);
        assert_eq!(size_of::<Slot>(), 32);
    }

    #[test]
    fn spans_are_exact_below_a_quarter_second_then_within_4_ppm() {
        for nanos in [0, 1, 10, 999_999, 268_435_455] {
            assert_eq!(Span::from_nanos(nanos).nanos(), nanos);
        }
        for nanos in [
            268_435_456,
            536_870_912,
            300_000_000_123,
            30 * 86_400 * 1_000_000_000u64 + 17,
            8 * 365 * 86_400 * 1_000_000_000u64,
        ] {
            let back = Span::from_nanos(nanos).nanos();
            assert!(
                back <= nanos && nanos - back <= nanos / 250_000,
                "{nanos} → {back}"
            );
        }
        let long = Span::from_nanos(u64::MAX);
        assert_ne!(long, Span::FOREVER);
        assert!(long.nanos() > 8 * 365 * 86_400 * 1_000_000_000);
        assert_eq!(Span::until(5, u64::MAX).after(7), u64::MAX);
        assert_eq!(Span::until(5, 9).after(7), 11);
    }

    fn entry(tags: Option<Arc<[Arc<str>]>>) -> Entry {
        Entry::new(
            AnyValue::new(Arc::new(7u32)),
            Origin {
                at: 1_000,
                epoch: 3,
            },
            2_000,
            5_000,
            tags,
        )
    }

    #[test]
    fn an_entry_keeps_its_lifetimes_and_value() {
        for tags in [None, Some(Arc::from([Arc::from("t")]))] {
            let tagged = tags.is_some();
            let e = entry(tags);
            assert_eq!((e.fresh_until(), e.stale_until()), (2_000, 5_000));
            assert_eq!(e.is_tagged(), tagged);
            assert_eq!(e.tags().map(|t| t.epoch), tagged.then_some(3));
            assert!(!e.is_throttled());
            let value = e.clone().value();
            assert_eq!(e.value_addr(), value.addr());
            assert_ne!(e.value_addr(), AnyValue::new(Arc::new(7u32)).addr());
            assert_eq!(value.downcast_ref::<u32>(), Some(&7));
        }
    }

    #[test]
    fn a_throttled_copy_keeps_its_lifetimes_and_is_never_refreshed_early() {
        let e = entry(Some(Arc::from([Arc::from("t")]))).throttled();
        assert_eq!((e.fresh_until(), e.stale_until()), (2_000, 5_000));
        assert!(e.is_throttled() && e.is_tagged());
        assert_eq!(e.refresh_point(0.5), None);
    }

    #[test]
    fn a_slot_counts_hits_up_to_the_cap() {
        let slot = Slot::new(entry(None));
        assert_eq!(slot.freq(), 0);
        for _ in 0..5 {
            slot.touch();
        }
        assert_eq!(slot.freq(), Slot::MAX_FREQ);
        slot.spend_hit();
        assert_eq!(slot.freq(), Slot::MAX_FREQ - 1);
        let e = slot.entry();
        assert_eq!((e.fresh_until(), e.stale_until()), (2_000, 5_000));
        assert_eq!(e.meta.freq(), 0, "an entry copied out carries no hit count");
        assert!(slot.same_as(&e));
    }

    #[test]
    fn eager_refresh_point_follows_the_ttl() {
        let e = Entry::new(
            AnyValue::new(Arc::new(1u8)),
            Origin {
                at: 1_000_000_000,
                epoch: 0,
            },
            1_000_000_000 + 100_000_000,
            u64::MAX,
            None,
        );
        assert_eq!(e.stale_until(), u64::MAX);
        assert_eq!(e.refresh_point(0.8), Some(1_080_000_000));
        assert_eq!(e.refresh_point(1.0), Some(1_100_000_000));
    }
}
