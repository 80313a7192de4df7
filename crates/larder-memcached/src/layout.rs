//! Where entries, namespace generations and tag versions live among memcached keys.
//!
//! Memcached cannot list keys, so a namespace is cleared by moving its *generation*: every entry
//! is stored with the generation current when it was written (8 bytes in front of the envelope)
//! and read together with the generation key in one `get`; an entry of an older generation reads
//! as a miss and ages out by its expiry. Generations and tag versions start at the current time in
//! nanoseconds, so a counter that memcached evicted and that is created again never repeats a value
//! it had before.
//!
//! Keys: `{prefix}{ns'}:{key}` for entries, `{prefix}#ns:{ns'}` for generations, `{prefix}#tag:{tag}`
//! for tag versions, `{prefix}#lock:{ns'}:{key}` for locks, where `ns'` escapes `%`, `:` and `#`. A key memcached cannot take (over 250
//! bytes, or with spaces or control bytes) is replaced by `{prefix}#h:{sha256 hex}` of itself; no
//! plain key can spell that, because an escaped namespace never starts with `#`.

use larder_store::escape_namespace;
use sha2::{Digest, Sha256};

/// Memcached's longest key.
const MAX_KEY: usize = 250;

#[derive(Debug, Clone)]
pub(crate) struct Layout {
    prefix: String,
}

impl Layout {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn entry(&self, namespace: &str, key: &str) -> Vec<u8> {
        let mut out = self.start(namespace.len() + key.len() + 1);
        escape_namespace(&mut out, namespace);
        out.push(b':');
        out.extend_from_slice(key.as_bytes());
        self.fit(out)
    }

    pub(crate) fn generation(&self, namespace: &str) -> Vec<u8> {
        let mut out = self.start(namespace.len() + 4);
        out.extend_from_slice(b"#ns:");
        escape_namespace(&mut out, namespace);
        self.fit(out)
    }

    pub(crate) fn lock(&self, namespace: &str, key: &str) -> Vec<u8> {
        let mut out = self.start(namespace.len() + key.len() + 7);
        out.extend_from_slice(b"#lock:");
        escape_namespace(&mut out, namespace);
        out.push(b':');
        out.extend_from_slice(key.as_bytes());
        self.fit(out)
    }

    pub(crate) fn tag(&self, tag: &str) -> Vec<u8> {
        let mut out = self.start(tag.len() + 5);
        out.extend_from_slice(b"#tag:");
        out.extend_from_slice(tag.as_bytes());
        self.fit(out)
    }

    fn start(&self, extra: usize) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + extra);
        out.extend_from_slice(self.prefix.as_bytes());
        out
    }

    /// The key itself if memcached takes it, else its hash.
    fn fit(&self, key: Vec<u8>) -> Vec<u8> {
        if key.len() <= MAX_KEY && key.iter().all(|&b| b > 0x20 && b != 0x7f) {
            return key;
        }
        let digest = Sha256::digest(&key);
        let mut out = self.start(3 + 64);
        out.extend_from_slice(b"#h:");
        for b in digest {
            out.extend_from_slice(format!("{b:02x}").as_bytes());
        }
        out
    }

    /// Whether the prefix itself is a valid start of a memcached key.
    pub(crate) fn prefix_is_valid(prefix: &str) -> bool {
        prefix.len() <= 100 && prefix.bytes().all(|b| b > 0x20 && b != 0x7f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_memcached_would_reject_is_hashed_to_a_valid_one() {
        let layout = Layout::new("app:");
        let long = "x".repeat(400);
        for key in [
            "with space",
            "tab\t",
            "nl\r\n",
            "\0",
            &long,
            "caf\u{e9} \u{1f511}",
        ] {
            let physical = layout.entry("ns", key);
            assert!(physical.len() <= MAX_KEY, "{key:?}");
            assert!(physical.iter().all(|&b| b > 0x20 && b != 0x7f), "{key:?}");
            assert!(physical.starts_with(b"app:#h:"));
        }
        assert_eq!(layout.entry("ns", "plain"), b"app:ns:plain");
        assert_ne!(layout.entry("a", &long), layout.entry("b", &long));
    }

    #[test]
    fn entries_generations_and_tags_never_share_a_key() {
        let layout = Layout::new("p:");
        let mut seen = std::collections::HashSet::new();
        for ns in ["", "#ns", "a", "a:b", "#tag", "#h"] {
            for key in ["", "#ns:a", "#tag:t", "t", "#h:00"] {
                assert!(seen.insert(layout.entry(ns, key)), "{ns:?} {key:?}");
            }
            assert!(seen.insert(layout.generation(ns)), "generation {ns:?}");
        }
        for tag in ["t", "a", ""] {
            assert!(seen.insert(layout.tag(tag)), "tag {tag:?}");
        }
    }
}
