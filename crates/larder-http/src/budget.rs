//! The bytes recordings may hold: the layer's own budget across all its recordings, and the
//! cache's byte bound, which stored entries and recordings share (see
//! [`MemoryReservation`](larder::MemoryReservation)). A recording grows its [`Hold`] chunk by
//! chunk; once either says no, the recording stops keeping the whole body and only streams.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use larder::{Cache, MemoryReservation};

/// The layer's budget for bytes held by recordings, across all requests at once.
#[derive(Debug)]
pub(crate) struct Budget {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    pub fn new(limit: u64) -> Arc<Self> {
        Arc::new(Self {
            limit,
            used: AtomicU64::new(0),
        })
    }

    /// Bytes held now.
    pub fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    fn take(&self, bytes: u64) -> bool {
        self.used
            .fetch_update(Relaxed, Relaxed, |used| {
                used.checked_add(bytes).filter(|total| *total <= self.limit)
            })
            .is_ok()
    }

    fn give(&self, bytes: u64) {
        let _ = self
            .used
            .fetch_update(Relaxed, Relaxed, |used| Some(used.saturating_sub(bytes)));
    }
}

/// What one recording holds of both budgets; dropping it gives everything back.
#[derive(Debug)]
pub(crate) struct Hold {
    budget: Arc<Budget>,
    bytes: u64,
    reservation: Option<MemoryReservation>,
}

impl Hold {
    /// An empty hold on `budget` and on `cache`'s byte bound.
    pub fn new(budget: Arc<Budget>, cache: &Cache) -> Self {
        Self {
            budget,
            bytes: 0,
            reservation: cache.reserve_memory(0),
        }
    }

    /// Holds `more` bytes if both budgets have room; otherwise holds what it held.
    pub fn try_grow(&mut self, more: u64) -> bool {
        if !self.budget.take(more) {
            return false;
        }
        if let Some(r) = &mut self.reservation
            && !r.try_grow(more)
        {
            self.budget.give(more);
            return false;
        }
        self.bytes += more;
        true
    }

    /// Gives back all but `bytes`.
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes >= self.bytes {
            return;
        }
        self.budget.give(self.bytes - bytes);
        if let Some(r) = &mut self.reservation {
            r.shrink_to(bytes);
        }
        self.bytes = bytes;
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_budgets_must_have_room_and_everything_comes_back() {
        let cache = Cache::builder().max_bytes(1000).build();
        let budget = Budget::new(300);
        let mut a = Hold::new(budget.clone(), &cache);
        assert!(a.try_grow(200));
        let mut b = Hold::new(budget.clone(), &cache);
        assert!(!b.try_grow(200), "the layer's budget");
        assert!(b.try_grow(100));
        assert_eq!(budget.used(), 300);
        assert_eq!(cache.stats().reserved_bytes, 300);
        a.shrink_to(50);
        assert_eq!(budget.used(), 150);
        drop(a);
        drop(b);
        assert_eq!((budget.used(), cache.stats().reserved_bytes), (0, 0));

        let big = Budget::new(u64::MAX);
        let mut c = Hold::new(big.clone(), &cache);
        assert!(
            !c.try_grow(600),
            "the cache's bound: at most half for recordings"
        );
        assert_eq!(big.used(), 0, "a refusal takes nothing");
        assert!(c.try_grow(500));
    }
}
