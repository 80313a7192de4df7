//! Keys of the memory tier: the stored key (namespace and key in one allocation, with the entry's
//! weight) and the borrowed form lookups use without allocating.

use std::hash::{Hash, Hasher};

use quick_cache::Equivalent;

/// The key as stored: `namespace ++ key` in one allocation, where the namespace ends, and the
/// entry's weight (the table's weigher reads it here, which keeps the entry itself small).
#[derive(Clone)]
pub(crate) struct MemKey {
    joined: Box<str>,
    ns_len: u32,
    /// Weight in the tier's internal units (see `Bounds::units`).
    pub weight: u64,
}

impl MemKey {
    /// `None` for a namespace over 4 GiB, which no lookup could have named anyway.
    pub(crate) fn new(ns: &str, key: &str, weight: u64) -> Option<Self> {
        let ns_len = u32::try_from(ns.len()).ok()?;
        let mut joined = String::with_capacity(ns.len() + key.len());
        joined.push_str(ns);
        joined.push_str(key);
        Some(Self {
            joined: joined.into_boxed_str(),
            ns_len,
            weight,
        })
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
    use std::hash::BuildHasher;

    use super::*;

    #[test]
    fn a_borrowed_key_finds_its_stored_key() {
        let s = quick_cache::DefaultHashBuilder::default();
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
        assert!(size_of::<MemKey>() <= 32);
    }
}
