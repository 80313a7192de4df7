//! The bytes recordings hold of response bodies. Each [`Hold`] counts against the layer's own
//! budget across all requests and against the cache's byte bound, which stored entries share
//! (see [`MemoryReservation`](larder::engine::MemoryReservation)), so that the bound covers entries and
//! the bodies being recorded together. A recording grows its hold chunk by chunk; once a budget says no,
//! the recording stops keeping the whole body and only streams.
//!
//! With a remote store, a body the cache's bound cannot hold (more than the half of it that
//! holds may take) is still worth recording: the store keeps it. Such a hold moves to the
//! oversize pool, which holds at most one largest body (`max_body`) at a time, a fixed amount
//! beside the bound.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use larder::{Cache, engine::MemoryReservation};

/// A budget for bytes held, across all requests at once.
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

/// The budgets a layer's holds draw on.
#[derive(Debug, Clone)]
pub(crate) struct Budgets {
    /// The layer's own (`recording_budget`).
    pub layer: Arc<Budget>,
    /// For bodies the cache's bound cannot hold, when a remote store can keep them.
    pub oversize: Option<Arc<Budget>>,
}

/// What one recording holds of the budgets; dropping it gives everything back.
#[derive(Debug)]
pub(crate) struct Hold {
    budgets: Budgets,
    bytes: u64,
    reservation: Option<MemoryReservation>,
    /// The bytes are held in the oversize pool instead of the cache's bound.
    oversize: bool,
}

impl Hold {
    /// An empty hold on `budgets` and on `cache`'s byte bound.
    pub fn new(budgets: &Budgets, cache: &Cache) -> Self {
        Self {
            budgets: budgets.clone(),
            bytes: 0,
            reservation: cache.reserve_memory(0),
            oversize: false,
        }
    }

    /// Holds `more` bytes if the budgets have room; otherwise holds what it held.
    pub fn try_grow(&mut self, more: u64) -> bool {
        let layer = &self.budgets.layer;
        if !layer.take(more) {
            return false;
        }
        let granted = if self.oversize {
            self.budgets.oversize.as_ref().is_some_and(|p| p.take(more))
        } else if self.reservation.as_mut().is_none_or(|r| r.try_grow(more)) {
            true
        } else {
            // The bound cannot hold it; the oversize pool takes all of it, if it can.
            let all = self.bytes + more;
            let moved = self.budgets.oversize.as_ref().is_some_and(|p| p.take(all));
            if moved {
                self.reservation = None;
                self.oversize = true;
            }
            moved
        };
        if !granted {
            layer.give(more);
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
        let freed = self.bytes - bytes;
        self.budgets.layer.give(freed);
        if self.oversize {
            if let Some(pool) = &self.budgets.oversize {
                pool.give(freed);
            }
        } else if let Some(r) = &mut self.reservation {
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
        let budgets = |layer: &Arc<Budget>| Budgets {
            layer: layer.clone(),
            oversize: None,
        };
        let mut a = Hold::new(&budgets(&budget), &cache);
        assert!(a.try_grow(200));
        let mut b = Hold::new(&budgets(&budget), &cache);
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
        let mut c = Hold::new(&budgets(&big), &cache);
        assert!(
            !c.try_grow(600),
            "the cache's bound: at most half for recordings"
        );
        assert_eq!(big.used(), 0, "a refusal takes nothing");
        assert!(c.try_grow(500));
    }

    #[test]
    fn with_an_oversize_pool_a_body_past_the_bound_moves_there_whole() {
        let cache = Cache::builder().max_bytes(1000).build();
        let pool = Budget::new(800);
        let budgets = Budgets {
            layer: Budget::new(u64::MAX),
            oversize: Some(pool.clone()),
        };
        let mut a = Hold::new(&budgets, &cache);
        assert!(a.try_grow(400));
        assert_eq!(cache.stats().reserved_bytes, 400);
        assert!(
            a.try_grow(300),
            "past half the bound: the pool takes all 700"
        );
        assert_eq!((cache.stats().reserved_bytes, pool.used()), (0, 700));
        assert!(!a.try_grow(200), "past the pool");
        let mut b = Hold::new(&budgets, &cache);
        assert!(b.try_grow(400), "the bound again");
        assert!(!b.try_grow(200), "the pool is taken");
        drop(a);
        assert_eq!(pool.used(), 0);
    }
}
