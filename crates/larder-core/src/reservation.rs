//! [`MemoryReservation`]: bytes an application holds outside the memory tier that the tier's
//! byte bound accounts for, so one bound covers both.

use std::fmt;
use std::sync::Arc;

use crate::cache::{Cache, Inner};

/// Bytes held outside the memory tier (a response body being recorded, say) that count against
/// the cache's byte bound ([`CacheBuilder::max_bytes`](crate::CacheBuilder::max_bytes)) for as
/// long as the reservation lives.
///
/// Entries and reservations share the bound: growing a reservation evicts entries to make room,
/// and reservations together may hold at most half of the bound, so a burst of large work in
/// flight never flushes more than half of what is cached. A cache without a byte bound (or
/// without a memory tier) grants every reservation and holds nothing for it. Dropping the
/// reservation gives its bytes back.
///
/// ```
/// let cache = larder::Cache::builder().max_bytes(1 << 20).build();
/// let mut held = cache.reserve_memory(64 << 10).expect("room for 64 KiB");
/// assert!(held.try_grow(256 << 10));
/// assert!(!held.try_grow(1 << 20), "past half the bound");
/// assert_eq!(cache.stats().reserved_bytes, 320 << 10);
/// drop(held);
/// assert_eq!(cache.stats().reserved_bytes, 0);
/// ```
pub struct MemoryReservation {
    inner: Arc<Inner>,
    bytes: u64,
}

impl Cache {
    /// Reserves `bytes` of the memory tier's byte bound; `None` when reservations would then hold
    /// more than half of it. See [`MemoryReservation`].
    ///
    /// ```
    /// let cache = larder::Cache::builder().max_bytes(1000).build();
    /// assert!(cache.reserve_memory(400).is_some());
    /// assert!(cache.reserve_memory(600).is_none());
    /// ```
    pub fn reserve_memory(&self, bytes: u64) -> Option<MemoryReservation> {
        let mut held = MemoryReservation {
            inner: Arc::clone(&self.inner),
            bytes: 0,
        };
        held.try_grow(bytes).then_some(held)
    }
}

impl Cache {
    /// The most one reservation can ever hold: half the memory tier's byte bound (reservations
    /// together take at most that); `None` when there is no byte bound, and every reservation
    /// is granted.
    ///
    /// ```
    /// assert_eq!(larder::Cache::builder().max_bytes(1000).build().max_reservation(), Some(500));
    /// assert_eq!(larder::Cache::new().max_reservation(), None);
    /// ```
    pub fn max_reservation(&self) -> Option<u64> {
        let memory = self.inner.memory.as_ref()?;
        memory.bounds().max_bytes.map(|b| b / 2)
    }
}

impl MemoryReservation {
    /// The bytes held now.
    ///
    /// ```
    /// let held = larder::Cache::new().reserve_memory(10).unwrap();
    /// assert_eq!(held.bytes(), 10);
    /// ```
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// Holds `more` bytes, evicting entries to make room; `false` (holding what it held) when
    /// reservations would then hold more than half the bound.
    ///
    /// ```
    /// let cache = larder::Cache::builder().max_bytes(100).build();
    /// let mut held = cache.reserve_memory(0).unwrap();
    /// assert!(held.try_grow(50));
    /// assert!(!held.try_grow(1));
    /// assert_eq!(held.bytes(), 50);
    /// ```
    pub fn try_grow(&mut self, more: u64) -> bool {
        let to = self.bytes.saturating_add(more);
        let granted = match &self.inner.memory {
            Some(memory) => memory.resize_reservation(self.bytes, to),
            None => true,
        };
        if granted {
            self.bytes = to;
        }
        granted
    }

    /// Gives back all but `bytes` (nothing if it holds no more than that).
    ///
    /// ```
    /// let mut held = larder::Cache::new().reserve_memory(100).unwrap();
    /// held.shrink_to(30);
    /// assert_eq!(held.bytes(), 30);
    /// ```
    pub fn shrink_to(&mut self, bytes: u64) {
        if bytes >= self.bytes {
            return;
        }
        if let Some(memory) = &self.inner.memory {
            memory.resize_reservation(self.bytes, bytes);
        }
        self.bytes = bytes;
    }
}

impl MemoryReservation {
    /// Its bytes, no longer given back on drop: the memory tier takes them over (an entry
    /// taking the place its reservation held).
    pub(crate) fn forget(mut self) -> u64 {
        std::mem::take(&mut self.bytes)
    }
}

impl Drop for MemoryReservation {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

impl fmt::Debug for MemoryReservation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryReservation")
            .field("cache", &self.inner.name)
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::Cache;

    #[tokio::test]
    async fn reservations_evict_entries_and_entries_make_way_for_them() {
        let cache = Cache::builder()
            .max_bytes(10_000)
            .weigher(|_, v: &Vec<u8>| v.len() as u64)
            .build();
        for i in 0..10 {
            cache.set(&i.to_string(), vec![0u8; 800]).await.unwrap();
        }
        let before = cache.stats();
        assert_eq!(before.entries, 10);
        let held = cache.reserve_memory(4_000).unwrap();
        let after = cache.stats();
        assert!(
            after.weight + after.reserved_bytes <= 10_000,
            "one bound over entries ({}) and reservations ({})",
            after.weight,
            after.reserved_bytes
        );
        assert!(after.evictions > before.evictions);
        // Entries written while it is held stay within what is left.
        for i in 10..30 {
            cache.set(&i.to_string(), vec![0u8; 800]).await.unwrap();
            let s = cache.stats();
            assert!(s.weight + s.reserved_bytes <= 10_000);
        }
        drop(held);
        assert_eq!(cache.stats().reserved_bytes, 0);
    }

    #[test]
    fn without_a_byte_bound_or_a_memory_tier_every_reservation_is_granted() {
        let cache = Cache::new();
        assert!(cache.reserve_memory(u64::MAX).is_some());
        let remote_only = Cache::builder()
            .memory(false)
            .remote(Arc::new(crate::InProcessStore::new()))
            .build();
        let mut held = remote_only.reserve_memory(1 << 40).unwrap();
        assert!(held.try_grow(u64::MAX));
        assert_eq!(held.bytes(), u64::MAX);
    }

    #[test]
    fn with_both_bounds_reservations_count_bytes() {
        let cache = Cache::builder()
            .max_entries(1_000)
            .max_bytes(1 << 20)
            .build();
        let held = cache.reserve_memory(100_000).unwrap();
        assert_eq!(cache.stats().reserved_bytes, 100_000);
        assert!(cache.reserve_memory(500_000).is_none());
        drop(held);
        assert!(cache.reserve_memory(500_000).is_some());
    }
}
