//! Hit-for-pass: URLs whose last response could not be stored, remembered for a short while, so
//! the next requests for them go to the service at once instead of queueing behind one another
//! (each waiting for the head of a fill it cannot use), as Varnish's hit-for-miss objects do.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// At most this many URLs are remembered; past it, expired ones are dropped, then all of them
/// (forgetting only costs a queue of one round trip).
const MAX_REMEMBERED: usize = 10_000;

#[derive(Default)]
pub(crate) struct Passes {
    until: Mutex<HashMap<String, Instant>>,
}

impl Passes {
    /// Requests for `key` skip coalescing for `period`.
    pub fn remember(&self, key: &str, period: Duration) {
        if period.is_zero() {
            return;
        }
        let now = Instant::now();
        let mut map = self.until.lock();
        if map.len() >= MAX_REMEMBERED {
            map.retain(|_, until| *until > now);
            if map.len() >= MAX_REMEMBERED {
                map.clear();
            }
        }
        map.insert(key.to_owned(), now + period);
    }

    /// `key`'s response is storable again.
    pub fn forget(&self, key: &str) {
        let mut map = self.until.lock();
        if !map.is_empty() {
            map.remove(key);
        }
    }

    /// Whether requests for `key` should go to the service without joining a fill.
    pub fn passes(&self, key: &str) -> bool {
        let map = self.until.lock();
        if map.is_empty() {
            return false;
        }
        map.get(key).is_some_and(|until| *until > Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pass_lasts_its_period_and_is_forgotten_when_storable_again() {
        let p = Passes::default();
        assert!(!p.passes("k"));
        p.remember("k", Duration::from_secs(60));
        assert!(p.passes("k"));
        p.forget("k");
        assert!(!p.passes("k"));
        p.remember("k", Duration::ZERO);
        assert!(!p.passes("k"));
        p.remember("gone", Duration::from_nanos(1));
        std::thread::sleep(Duration::from_millis(1));
        assert!(!p.passes("gone"));
    }

    #[test]
    fn the_memory_is_bounded() {
        let p = Passes::default();
        for i in 0..MAX_REMEMBERED + 10 {
            p.remember(&i.to_string(), Duration::from_secs(60));
        }
        assert!(p.until.lock().len() <= MAX_REMEMBERED);
    }
}
