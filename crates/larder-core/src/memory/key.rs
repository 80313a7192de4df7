//! Keys of the memory tier: the stored key (namespace and key, inline when short, with the
//! entry's weight and the insert's generation) in 32 bytes, and the borrowed form lookups use
//! without allocating.
//!
//! A short key is stored in the table's entry itself, so a hit compares it without a trip to a
//! separate allocation, which is a cache miss when the table does not fit in the CPU's caches.
//! With 65,536 keys (`memory_hit_rounds`) that took a hit from 1.19–1.25× quick_cache's to
//! 1.08–1.14×; in cache it changed nothing measurable.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// The key as stored: `namespace ++ key` with where the namespace ends, the entry's weight (the
/// table's weigher reads it here, which keeps the entry itself small), and the insert that stored
/// it: 32 bytes, so that with its slot the table's entry is 64 (see `node`).
#[derive(Clone)]
pub(crate) struct MemKey {
    text: Text,
    /// Weight in the tier's internal units (see `Bounds::units`), in 32 bits.
    weight: Weight,
    /// Which insert stored this key, set by the table: its queue items tell the entry they were
    /// queued for from a later one under the same key by it.
    generation: u32,
}

/// `namespace ++ key` and the namespace's length: in place up to [`Text::INLINE`] bytes, shared
/// beyond (the eviction queue holds a copy of every key, so a long one is shared rather than
/// copied).
#[derive(Clone)]
enum Text {
    Inline {
        len: u8,
        ns_len: u8,
        bytes: [u8; Text::INLINE],
    },
    Shared {
        ns_len: u32,
        bytes: Arc<[u8]>,
    },
}

impl Text {
    /// The most that fits beside the tag and the two lengths in the 24 bytes the shared form
    /// takes.
    const INLINE: usize = 21;

    /// `None` for a namespace over 4 GiB, which no lookup could have named anyway.
    fn new(ns: &[u8], key: &[u8]) -> Option<Self> {
        let len = ns.len() + key.len();
        if len <= Self::INLINE {
            let mut bytes = [0u8; Self::INLINE];
            bytes[..ns.len()].copy_from_slice(ns);
            bytes[ns.len()..len].copy_from_slice(key);
            return Some(Text::Inline {
                len: len as u8,
                ns_len: ns.len() as u8,
                bytes,
            });
        }
        Some(Text::Shared {
            ns_len: u32::try_from(ns.len()).ok()?,
            bytes: Arc::from([ns, key].concat()),
        })
    }

    #[inline(always)]
    fn bytes(&self) -> &[u8] {
        match self {
            Text::Inline { len, bytes, .. } => bytes.get(..usize::from(*len)).unwrap_or(bytes),
            Text::Shared { bytes, .. } => bytes,
        }
    }

    #[inline(always)]
    fn ns_len(&self) -> usize {
        match self {
            Text::Inline { ns_len, .. } => usize::from(*ns_len),
            Text::Shared { ns_len, .. } => *ns_len as usize,
        }
    }
}

impl MemKey {
    /// `None` for a namespace over 4 GiB, which no lookup could have named anyway.
    pub(crate) fn new(ns: &str, key: &str, weight: u64) -> Option<Self> {
        Some(Self {
            text: Text::new(ns.as_bytes(), key.as_bytes())?,
            weight: Weight::new(weight),
            generation: 0,
        })
    }

    /// The entry's weight in units, as the table counts it.
    #[inline]
    pub(crate) fn weight(&self) -> u64 {
        self.weight.units()
    }

    /// Which insert stored this key (0 until the table sets it).
    #[inline]
    pub(crate) fn generation(&self) -> u32 {
        self.generation
    }

    pub(crate) fn set_generation(&mut self, generation: u32) {
        self.generation = generation;
    }

    /// The namespace and the key. The split is within the text by construction; were it not,
    /// the whole text would read as a key of the default namespace.
    #[inline]
    fn parts(&self) -> (&[u8], &[u8]) {
        let text = self.text.bytes();
        text.split_at_checked(self.text.ns_len())
            .unwrap_or((&[], text))
    }

    /// The borrowed form, to look this key up.
    #[inline]
    pub(crate) fn borrowed(&self) -> KeyRef<'_> {
        let (ns, key) = self.parts();
        KeyRef { ns, key }
    }

    /// Whether the key lives in namespace `ns`.
    pub(crate) fn in_namespace(&self, ns: &str) -> bool {
        self.parts().0 == ns.as_bytes()
    }
}

/// Equal when namespace and key are: weight and generation are what is stored under the key,
/// not part of it.
impl PartialEq for MemKey {
    fn eq(&self, other: &Self) -> bool {
        self.text.ns_len() == other.text.ns_len() && self.text.bytes() == other.text.bytes()
    }
}

impl Eq for MemKey {}

impl Hash for MemKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let (ns, key) = self.parts();
        hash_parts(ns, key, state);
    }
}

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
    ns: &'a [u8],
    key: &'a [u8],
}

impl<'a> KeyRef<'a> {
    /// The namespace and the key, as bytes.
    pub(crate) fn parts(&self) -> (&'a [u8], &'a [u8]) {
        (self.ns, self.key)
    }

    #[inline]
    pub(crate) fn new(ns: &'a str, key: &'a str) -> Self {
        Self {
            ns: ns.as_bytes(),
            key: key.as_bytes(),
        }
    }
}

impl Hash for KeyRef<'_> {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_parts(self.ns, self.key, state);
    }
}

/// Most keys live in the default namespace: hash one string, not two. No terminator byte is
/// written: the table's hasher (foldhash) mixes each write's length in, and keys whose hashes
/// collide anyway are told apart by equality. Hashing one byte string, with no extra byte to
/// mix and fold in, is a tenth of a hit's instructions less.
#[inline]
fn hash_parts<H: Hasher>(ns: &[u8], key: &[u8], state: &mut H) {
    if !ns.is_empty() {
        state.write(ns);
    }
    state.write(key);
}

impl KeyRef<'_> {
    /// Whether this names `k`. Most keys live in the default namespace: then it is one
    /// byte-string comparison, as in a plain string-keyed table (this runs inside the table's
    /// probe loop).
    #[inline(always)]
    pub(crate) fn names(&self, k: &MemKey) -> bool {
        if self.ns.is_empty()
            && let Text::Inline { len, ns_len, bytes } = &k.text
        {
            return *ns_len == 0
                && usize::from(*len) == self.key.len()
                && bytes
                    .get(..self.key.len())
                    .is_some_and(|stored| short_eq(stored, self.key));
        }
        self.names_in_namespace(k)
    }

    fn names_in_namespace(&self, k: &MemKey) -> bool {
        let text = k.text.bytes();
        k.text.ns_len() == self.ns.len()
            && text.len() == self.ns.len() + self.key.len()
            // Key first: it tells entries apart; the namespace is usually the same short string.
            && text
                .split_at_checked(self.ns.len())
                .is_some_and(|(n, k)| k == self.key && n == self.ns)
    }
}

/// `a == b` for byte strings of one length, up to 24 bytes, in at most three pairs of
/// overlapping word loads rather than a call to `memcmp`: the comparison on every hit, where the
/// call and its length dispatch were about a tenth of the hit's instructions.
#[inline(always)]
fn short_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if let (Some(a0), Some(b0), Some(az), Some(bz)) = (
        a.first_chunk::<8>(),
        b.first_chunk::<8>(),
        a.last_chunk::<8>(),
        b.last_chunk::<8>(),
    ) {
        return match a.len() {
            ..=16 => a0 == b0 && az == bz,
            17..=24 => a0 == b0 && az == bz && a[8..].first_chunk::<8>() == b[8..].first_chunk(),
            _ => a == b,
        };
    }
    if let (Some(a0), Some(b0), Some(az), Some(bz)) = (
        a.first_chunk::<4>(),
        b.first_chunk::<4>(),
        a.last_chunk::<4>(),
        b.last_chunk::<4>(),
    ) {
        return a0 == b0 && az == bz;
    }
    a.iter().zip(b).all(|(x, y)| x == y)
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn short_eq_is_byte_equality(
            a in proptest::collection::vec(0u8..4, 0..30),
            b in proptest::collection::vec(0u8..4, 0..30),
            at in proptest::prelude::any::<proptest::sample::Index>(),
        ) {
            proptest::prop_assert_eq!(short_eq(&a, &b), a == b);
            let mut c = a.clone();
            proptest::prop_assert!(short_eq(&a, &c));
            if !c.is_empty() {
                // One byte different, anywhere: every word of the comparison is checked.
                c[at.index(a.len())] ^= 1;
                proptest::prop_assert!(!short_eq(&a, &c));
            }
        }
    }

    #[test]
    fn a_borrowed_key_finds_its_stored_key() {
        let s = ahash::RandomState::new();
        for (ns, key) in [
            ("", "k"),
            ("users", "1"),
            ("a", "b:c"),
            ("a:b", "c"),
            ("", ""),
            ("", "twenty-one bytes: yes"),
            ("", "twenty-two bytes: no!!"),
            ("ns", "nineteen bytes, too"),
            ("", "a key of more than twenty-two bytes, stored apart"),
            ("tenant-7", "a key that, with its namespace, is long"),
        ] {
            let stored = MemKey::new(ns, key, 1).unwrap();
            let borrowed = KeyRef::new(ns, key);
            assert_eq!(s.hash_one(&stored), s.hash_one(borrowed));
            assert!(borrowed.names(&stored));
            assert!(stored.in_namespace(ns));
        }
    }

    #[test]
    fn the_split_tells_keys_apart() {
        let stored = MemKey::new("ab", "c", 1).unwrap();
        assert!(!KeyRef::new("a", "bc").names(&stored));
        assert!(!KeyRef::new("", "abc").names(&stored));
        assert!(!stored.in_namespace("a"));
        assert!(stored != MemKey::new("a", "bc", 1).unwrap());
    }

    #[test]
    fn a_key_stays_small() {
        assert_eq!(size_of::<MemKey>(), 32);
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
