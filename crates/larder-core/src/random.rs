//! Random identifiers (a node on the backplane, a lock's token) without a dependency: the
//! standard library's per-process random hash keys, mixed with a counter and the clock.

use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// 64 random-looking bits, never the same twice in a process.
pub(crate) fn u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Relaxed));
    h.write_u64(crate::clock::unix_millis());
    h.write_u64(crate::clock::now_nanos());
    h.finish()
}

/// 128 random-looking bits, as bytes.
pub(crate) fn token() -> [u8; 16] {
    let mut out = [0; 16];
    out[..8].copy_from_slice(&u64().to_le_bytes());
    out[8..].copy_from_slice(&u64().to_le_bytes());
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn ids_differ() {
        let ids: std::collections::HashSet<u64> = (0..10_000).map(|_| super::u64()).collect();
        assert_eq!(ids.len(), 10_000);
    }
}
