//! The namespace generations this process saw last, so a write needs one round trip, not two.
//!
//! Safe because reads never use it: every read fetches the current generation with the entries.
//! A write stamped with a generation that another process has since moved on is simply never read
//! (a miss), so a stale value here can lose a write for at most `MAX_AGE`, never serve old data.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const MAX_AGE: Duration = Duration::from_secs(1);

/// Past this many namespaces the map is emptied rather than grown.
const MAX_NAMESPACES: usize = 10_000;

#[derive(Default)]
pub(crate) struct KnownGenerations {
    map: Mutex<HashMap<String, (u64, Instant)>>,
}

impl KnownGenerations {
    pub(crate) fn get(&self, namespace: &str) -> Option<u64> {
        let map = self.map.lock().ok()?;
        let (generation, seen) = map.get(namespace)?;
        (seen.elapsed() < MAX_AGE).then_some(*generation)
    }

    pub(crate) fn put(&self, namespace: &str, generation: u64) {
        // A poisoned lock only means another thread panicked mid-insert; the map is still valid.
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_NAMESPACES && !map.contains_key(namespace) {
            map.clear();
        }
        match map.get_mut(namespace) {
            Some(slot) => *slot = (generation, Instant::now()),
            None => {
                map.insert(namespace.to_owned(), (generation, Instant::now()));
            }
        }
    }
}
