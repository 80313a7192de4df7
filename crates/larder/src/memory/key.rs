//! Keys of the memory tier: the stored key (namespace and key in one allocation, with the entry's
//! weight) in 24 bytes, and the borrowed form lookups use without allocating.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use papaya::Equivalent;

/// The key as stored: `namespace ++ key` in one allocation, where the namespace ends, and the
/// entry's weight (the table's weigher reads it here, which keeps the entry itself small).
#[derive(Clone)]
pub(crate) struct MemKey {
    joined: Arc<str>,
    ns_len: u32,
    /// Weight in the tier's internal units (see `Bounds::units`), in 32 bits.
    weight: Weight,
}

impl MemKey {
    /// `None` for a namespace over 4 GiB, which no lookup could have named anyway.
    pub(crate) fn new(ns: &str, key: &str, weight: u64) -> Option<Self> {
        let ns_len = u32::try_from(ns.len()).ok()?;
        let joined: Arc<str> = if ns.is_empty() {
            Arc::from(key)
        } else {
            Arc::from([ns, key].concat())
        };
        Some(Self {
            joined,
            ns_len,
            weight: Weight::new(weight),
        })
    }

    /// The entry's weight in units, as the table counts it.
    #[inline]
    pub(crate) fn weight(&self) -> u64 {
        self.weight.units()
    }

    /// The namespace and the key. The split is a char boundary by construction; were it not,
    /// the whole string would read as a key of the default namespace.
    #[inline]
    fn parts(&self) -> (&str, &str) {
        self.joined
            .split_at_checked(self.ns_len as usize)
            .unwrap_or(("", &self.joined))
    }

    /// Whether the key lives in namespace `ns`.
    /// The borrowed form, to look this key up.
    #[inline]
    pub(crate) fn borrowed(&self) -> KeyRef<'_> {
        let (ns, key) = self.parts();
        KeyRef::new(ns, key)
    }

    /// Whether `other` is this very key as inserted, not merely an equal one: each insert makes
    /// its own key, so this tells an entry from a later one under the same key.
    #[inline]
    pub(crate) fn is(&self, other: &MemKey) -> bool {
        Arc::ptr_eq(&self.joined, &other.joined)
    }

    pub(crate) fn in_namespace(&self, ns: &str) -> bool {
        self.parts().0 == ns
    }
}

impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.ns_len == other.ns_len && self.joined == other.joined
    }
}

impl Eq for MemKey {}

impl Hash for MemKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (ns, key) = self.parts();
        hash_parts(ns, key, state);
    }
}

/// A weight in 32 bits: exact below 2^31 units, above that a 24-bit mantissa and a shift, so
/// within 0.00001% (the table only needs each key to weigh the same every time it asks).
#[derive(Clone, Copy)]
struct Weight(u32);

impl Weight {
    const SCALED: u32 = 1 << 31;
    const MANTISSA_BITS: u32 = 24;

    fn new(units: u64) -> Self {
        if units < u64::from(Self::SCALED) {
            return Self(units as u32);
        }
        let shift = 64 - units.leading_zeros() - Self::MANTISSA_BITS;
        let mantissa = (units >> shift) as u32 & ((1 << Self::MANTISSA_BITS) - 1);
        Self(Self::SCALED | (shift << Self::MANTISSA_BITS) | mantissa)
    }

    fn units(self) -> u64 {
        if self.0 & Self::SCALED == 0 {
            return u64::from(self.0);
        }
        let shift = (self.0 & !Self::SCALED) >> Self::MANTISSA_BITS;
        let mantissa = u64::from(self.0 & ((1 << Self::MANTISSA_BITS) - 1));
        mantissa << shift.min(64 - Self::MANTISSA_BITS)
    }
}

/// A borrowed key for lookups; hashes exactly like [`MemKey`].
#[derive(Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    ns: &'a str,
    key: &'a str,
}

impl<'a> KeyRef<'a> {
    #[inline]
    pub(crate) fn new(ns: &'a str, key: &'a str) -> Self {
        Self { ns, key }
    }
}

impl Hash for KeyRef<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.ns, self.key, state);
    }
}

/// Most keys live in the default namespace: hash one string, not two. Keys that differ only in
/// how namespace and key split may collide in hash; equality still tells them apart.
#[inline]
fn hash_parts<H: Hasher>(ns: &str, key: &str, state: &mut H) {
    if !ns.is_empty() {
        ns.hash(state);
    }
    key.hash(state);
}

impl Equivalent<MemKey> for KeyRef<'_> {
    #[inline(always)]
    fn equivalent(&self, k: &MemKey) -> bool {
        // Most keys live in the default namespace: then it is one string comparison, as in a
        // plain string-keyed table (this runs inside the table's probe loop).
        if self.ns.is_empty() {
            return k.ns_len == 0 && *k.joined == *self.key;
        }
        self.equivalent_in_namespace(k)
    }
}

impl KeyRef<'_> {
    fn equivalent_in_namespace(&self, k: &MemKey) -> bool {
        let (ns, key, joined) = (self.ns.as_bytes(), self.key.as_bytes(), k.joined.as_bytes());
        k.ns_len as usize == ns.len()
            && joined.len() == ns.len() + key.len()
            // Key first: it tells entries apart; the namespace is usually the same short string.
            && joined
                .split_at_checked(ns.len())
                .is_some_and(|(n, k)| k == key && n == ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_borrowed_key_finds_its_stored_key() {
        let s = ahash::RandomState::new();
        for (ns, key) in [
            ("", "k"),
            ("users", "1"),
            ("a", "b:c"),
            ("a:b", "c"),
            ("", ""),
        ] {
            let stored = MemKey::new(ns, key, 1).unwrap();
            let borrowed = KeyRef::new(ns, key);
            assert_eq!(s.hash_one(&stored), s.hash_one(borrowed));
            assert!(borrowed.equivalent(&stored));
            assert!(stored.in_namespace(ns));
        }
    }

    #[test]
    fn the_split_tells_keys_apart() {
        let stored = MemKey::new("ab", "c", 1).unwrap();
        assert!(!KeyRef::new("a", "bc").equivalent(&stored));
        assert!(!KeyRef::new("", "abc").equivalent(&stored));
        assert!(!stored.in_namespace("a"));
        assert!(stored != MemKey::new("a", "bc", 1).unwrap());
    }

    #[test]
    fn a_key_stays_small() {
        assert_eq!(size_of::<MemKey>(), 24);
    }

    proptest::proptest! {
        #[test]
        fn a_weight_rounds_down_by_at_most_one_part_in_4_million(units in proptest::prelude::any::<u64>()) {
            let back = Weight::new(units).units();
            proptest::prop_assert!(back <= units && units - back <= units >> 22);
        }
    }

    #[test]
    fn weights_are_exact_then_close() {
        for units in [0, 1, 1000, (1 << 31) - 1] {
            assert_eq!(Weight::new(units).units(), units);
        }
        for units in [
            1 << 31,
            (1 << 31) + 12_345,
            3 << 40,
            u64::MAX >> 2,
            u64::MAX,
        ] {
            let back = Weight::new(units).units();
            assert!(
                back <= units && units - back <= units >> 22,
                "{units} → {back}"
            );
        }
    }
}
