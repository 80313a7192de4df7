//! The fail-safe throttle's one map: keys whose source failed moments ago, each with the stale
//! value that stood in for it and until when it keeps standing in without the source being
//! asked again.
//!
//! Every read path marks and consults it: `get_or_fetch` and `get_or_compute` (the memory tier
//! serves a marked stale entry as if fresh, counted as stale served) and larder-http's fills,
//! whose stale response stands in while its origin fails (through `larder::engine`). A mark
//! names the very value that stood in (by its allocation), so a write of the key since, here or
//! through the backplane, ends it: the new value is not the one marked.
//!
//! Instants are the core's monotonic clock: the throttle is an operational pause, which a wall
//! clock stepped by NTP must not lengthen or cut short.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use parking_lot::Mutex;

/// At most this many keys are marked at once; past it, expired marks are dropped, then all of
/// them (forgetting a mark costs one more call to a failing source, nothing else).
const MAX_MARKS: usize = 10_000;

/// Until when, and for which value, a key's stale value stands in.
#[derive(Clone, Copy)]
struct Mark {
    /// The core clock's nanoseconds.
    until: u64,
    /// The stand-in's allocation: compared, never dereferenced.
    stand_in: usize,
}

#[derive(Default)]
pub(crate) struct Failing {
    /// By namespace and key: the namespace's length, the namespace, the key.
    marks: Mutex<HashMap<Box<[u8]>, Mark>>,
    /// How many marks there are, read without the lock: the common case is none.
    len: AtomicUsize,
}

impl Failing {
    /// Marks `key`'s source as failing until `until`, with `stand_in` (an allocation's address)
    /// as the value that answers meanwhile.
    pub(crate) fn mark(&self, ns: &[u8], key: &[u8], stand_in: usize, until: u64, now: u64) {
        let mut marks = self.marks.lock();
        if marks.len() >= MAX_MARKS {
            marks.retain(|_, m| m.until > now);
            if marks.len() >= MAX_MARKS {
                marks.clear();
            }
        }
        marks.insert(joined(ns, key), Mark { until, stand_in });
        self.len.store(marks.len(), Relaxed);
    }

    /// Whether `stand_in` stands in for `key` at `now`.
    #[inline]
    pub(crate) fn holds(&self, ns: &[u8], key: &[u8], stand_in: usize, now: u64) -> bool {
        if self.len.load(Relaxed) == 0 {
            return false;
        }
        self.holds_slow(ns, key, stand_in, now)
    }

    #[cold]
    fn holds_slow(&self, ns: &[u8], key: &[u8], stand_in: usize, now: u64) -> bool {
        let mut marks = self.marks.lock();
        let k = joined(ns, key);
        match marks.get(&k) {
            Some(m) if m.until > now && m.stand_in == stand_in => true,
            Some(m) if m.until <= now => {
                marks.remove(&k);
                self.len.store(marks.len(), Relaxed);
                false
            }
            _ => false,
        }
    }
}

fn joined(ns: &[u8], key: &[u8]) -> Box<[u8]> {
    let mut k = Vec::with_capacity(8 + ns.len() + key.len());
    k.extend_from_slice(&(ns.len() as u64).to_le_bytes());
    k.extend_from_slice(ns);
    k.extend_from_slice(key);
    k.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mark_holds_for_its_value_until_its_end() {
        let f = Failing::default();
        assert!(!f.holds(b"", b"k", 1, 0));
        f.mark(b"", b"k", 1, 100, 0);
        assert!(f.holds(b"", b"k", 1, 99));
        assert!(!f.holds(b"", b"k", 2, 50), "another value: a write since");
        assert!(!f.holds(b"ns", b"k", 1, 50), "another namespace");
        assert!(!f.holds(b"", b"k", 1, 100));
        assert_eq!(
            f.len.load(Relaxed),
            0,
            "an expired mark is dropped when seen"
        );
    }

    #[test]
    fn the_marks_are_bounded() {
        let f = Failing::default();
        for i in 0..MAX_MARKS + 10 {
            f.mark(b"", i.to_string().as_bytes(), 1, 100, 0);
        }
        assert!(f.marks.lock().len() <= MAX_MARKS);
    }
}
