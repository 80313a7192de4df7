//! Hit-for-pass: URLs whose last response could not be stored go to the service at once for a
//! while, on the layer's clock, instead of queueing behind one another (Varnish's hit-for-miss
//! objects). The fail-safe throttle is not here: it is the core's one map
//! (`larder::engine::stood_in`), shared with `get_or_fetch`.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;

/// At most this many keys are remembered; past it, expired ones are dropped, then all of them
/// (forgetting only costs one more request to the service).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
pub(crate) struct Remembered {
    /// Until when (the layer's clock, ms) each key is remembered.
    until: Mutex<HashMap<String, u64>>,
}

impl Remembered {
    /// Remembers `key` for `period` from `now_ms`.
    pub fn remember(&self, key: &str, period: Duration, now_ms: u64) {
        if period.is_zero() {
            return;
        }
        let until = now_ms.saturating_add(period.as_millis().min(u64::MAX as u128) as u64);
        let mut map = self.until.lock();
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, t| *t > now_ms);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(key.to_owned(), until);
    }

    /// Forgets `key` (its response is storable again).
    pub fn forget(&self, key: &str) {
        let mut map = self.until.lock();
        if !map.is_empty() {
            map.remove(key);
        }
    }

    /// Whether `key` is remembered at `now_ms`.
    pub fn holds(&self, key: &str, now_ms: u64) -> bool {
        let map = self.until.lock();
        if map.is_empty() {
            return false;
        }
        map.get(key).is_some_and(|until| *until > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_held_for_its_period_and_forgotten_on_request() {
        let r = Remembered::default();
        assert!(!r.holds("k", 0));
        r.remember("k", Duration::from_secs(60), 1_000);
        assert!(r.holds("k", 1_000) && r.holds("k", 60_999));
        assert!(!r.holds("k", 61_000));
        r.forget("k");
        assert!(!r.holds("k", 1_000));
        r.remember("k", Duration::ZERO, 1_000);
        assert!(!r.holds("k", 1_000));
    }

    #[test]
    fn the_memory_is_bounded() {
        let r = Remembered::default();
        for i in 0..MAX_REMEMBERED + 10 {
            r.remember(&i.to_string(), Duration::from_secs(60), 0);
        }
        assert!(r.until.lock().len() <= MAX_REMEMBERED);
    }
}
