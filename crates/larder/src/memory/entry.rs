//! One entry of the memory tier, kept small: every hit copies it out of the table, and in a
//! cache larger than the CPU's caches its size is what a lookup pays for in memory traffic
//! (48 bytes, where a naive layout of the same facts takes 80).

use std::sync::Arc;

use super::AnyValue;
use crate::clock;

/// When the work behind an entry started: an instant (for its ttl) and the tag epoch (to order it
/// against tag invalidations).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin {
    pub at: u64,
    pub epoch: u64,
}

/// A tagged entry's tags, with the tag epoch in which the work behind it started. Only tagged
/// entries carry one, so untagged entries pay nothing for tags.
pub(crate) struct TagSet {
    pub epoch: u64,
    pub names: Arc<[Arc<str>]>,
}

/// One cached value and its lifetimes (monotonic nanoseconds, see `clock`).
#[derive(Clone)]
pub(crate) struct Entry {
    pub value: AnyValue,
    pub fresh_until: u64,
    pub stale_until: u64,
    pub tags: Option<Arc<TagSet>>,
    /// The ttl the entry was written with, for eager refresh.
    ttl: Span,
    /// A stale value put back as fresh for the fail-safe throttle after its factory failed: served
    /// without calling the source again, counted as stale, never eagerly refreshed.
    pub throttled: bool,
}

impl Entry {
    pub(crate) fn new(
        value: AnyValue,
        origin: Origin,
        fresh_until: u64,
        stale_until: u64,
        tags: Option<Arc<[Arc<str>]>>,
    ) -> Self {
        Self {
            value,
            fresh_until,
            stale_until: stale_until.max(fresh_until),
            tags: tags.map(|names| {
                Arc::new(TagSet {
                    epoch: origin.epoch,
                    names,
                })
            }),
            ttl: Span::from_nanos(fresh_until.saturating_sub(origin.at)),
            throttled: false,
        }
    }

    #[inline]
    pub(crate) fn is_fresh(&self, now: u64) -> bool {
        now < self.fresh_until
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
        if self.fresh_until == u64::MAX || self.throttled {
            // Never expires: nothing to refresh ahead of. Throttled: the source just failed.
            return None;
        }
        let ttl = self.ttl.nanos();
        let created = self.fresh_until.saturating_sub(ttl);
        // `fraction` is in (0, 1], so the product stays within the ttl's own range.
        Some(created.saturating_add(((ttl as f64) * fraction) as u64))
    }
}

/// A duration in 32 bits: milliseconds up to 2^31 ms (24 days), seconds above (to 68 years).
/// Precise enough to place an eager refresh; half the size of a u64 of nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span(u32);

impl Span {
    const SECONDS: u32 = 1 << 31;

    fn from_nanos(nanos: u64) -> Self {
        let millis = nanos / 1_000_000;
        if millis < u64::from(Self::SECONDS) {
            return Self(millis as u32);
        }
        let secs = (nanos / 1_000_000_000).min(u64::from(Self::SECONDS - 1));
        Self(Self::SECONDS | secs as u32)
    }

    fn nanos(self) -> u64 {
        if self.0 & Self::SECONDS == 0 {
            u64::from(self.0) * 1_000_000
        } else {
            u64::from(self.0 & !Self::SECONDS) * 1_000_000_000
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_stays_small() {
        assert!(
            size_of::<Entry>() <= 48,
            "Entry grew to {} bytes",
            size_of::<Entry>()
        );
    }

    #[test]
    fn spans_keep_milliseconds_then_seconds() {
        assert_eq!(Span::from_nanos(1_500_000).nanos(), 1_000_000);
        assert_eq!(Span::from_nanos(300_000_000_000).nanos(), 300_000_000_000);
        let month = 30 * 86_400 * 1_000_000_000u64;
        assert_eq!(Span::from_nanos(month).nanos(), month);
        assert!(Span::from_nanos(u64::MAX).nanos() > 60 * 365 * 86_400 * 1_000_000_000);
    }

    #[test]
    fn eager_refresh_point_follows_the_ttl() {
        let e = Entry::new(
            Arc::new(1u8),
            Origin {
                at: 1_000_000_000,
                epoch: 0,
            },
            1_000_000_000 + 100_000_000,
            u64::MAX,
            None,
        );
        let due = e.refresh_point(0.8).unwrap();
        assert!((1_079_000_000..=1_080_000_001).contains(&due), "{due}");
        assert_eq!(e.refresh_point(1.0), Some(1_100_000_000));
    }
}
