//! One entry of the table as it lies in memory: the key and its slot, 64 bytes in one
//! allocation, which the map makes for each entry.
//!
//! A hit reads all of it and the value's `Arc` counts beside it. It was 72 bytes (80 from
//! `malloc`); the hit count and the insert's generation now fit in what was padding.
//!
//! Aligning it to 64 bytes, so that a hit reads one cache line of it instead of two, was measured
//! and dropped: `posix_memalign` leaves fragments that separate a node from the value allocated
//! just before it, and with 65,536 keys the lost locality cost more than the line saved (hit
//! 1.22× quick_cache's with the alignment, 0.95–1.05× without, filling each cache apart).
//!
//! The map is keyed by the whole node (its value is `()`), so the slot lies in the same
//! allocation as the key and a lookup that found the key has the slot at hand.

use std::hash::{Hash, Hasher};

use papaya::Equivalent;

use super::entry::Slot;
use super::key::{KeyRef, MemKey};

pub(crate) struct Node {
    pub key: MemKey,
    pub slot: Slot,
}

/// A node is known by its key alone: what is stored under the key is not part of it.
impl PartialEq for Node {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Node {}

impl Hash for Node {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
    }
}

impl Equivalent<Node> for KeyRef<'_> {
    #[inline(always)]
    fn equivalent(&self, node: &Node) -> bool {
        self.names(&node.key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_stays_small() {
        assert_eq!(size_of::<Node>(), 64);
    }
}
