//! Where entries and tag versions live in the Redis keyspace.
//!
//! An entry of namespace `ns` and key `k` lives at `{prefix}{ns'}:{k}`, where `ns'` is the namespace
//! with `%`, `:` and `#` percent-escaped: the first `:` after the prefix therefore always ends the
//! namespace, so clearing namespace `a` (pattern `{prefix}a:*`) can never touch namespace `a:b`.
//! Tag versions live at `{prefix}#tag:{tag}`, distributed locks at `{prefix}#lock:{ns'}:{k}` and
//! the backplane's channel is `{prefix}#backplane`: no entry key can spell these, because an
//! escaped namespace never contains `#`.

use larder_store::escape_namespace;

/// The physical key layout of one store.
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
        let mut out = Vec::with_capacity(self.prefix.len() + namespace.len() + key.len() + 1);
        out.extend_from_slice(self.prefix.as_bytes());
        escape_namespace(&mut out, namespace);
        out.push(b':');
        out.extend_from_slice(key.as_bytes());
        out
    }

    pub(crate) fn tag(&self, tag: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + tag.len() + 5);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"#tag:");
        out.extend_from_slice(tag.as_bytes());
        out
    }

    /// The distributed lock of an entry.
    pub(crate) fn lock(&self, namespace: &str, key: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.prefix.len() + namespace.len() + key.len() + 7);
        out.extend_from_slice(self.prefix.as_bytes());
        out.extend_from_slice(b"#lock:");
        escape_namespace(&mut out, namespace);
        out.push(b':');
        out.extend_from_slice(key.as_bytes());
        out
    }

    /// The backplane's pub/sub channel: every store with this prefix shares it.
    pub(crate) fn channel(&self) -> Vec<u8> {
        let mut out = self.prefix.as_bytes().to_vec();
        out.extend_from_slice(b"#backplane");
        out
    }

    /// A SCAN MATCH pattern for every entry of `namespace` (glob characters escaped).
    pub(crate) fn namespace_pattern(&self, namespace: &str) -> Vec<u8> {
        let mut literal = Vec::with_capacity(self.prefix.len() + namespace.len() + 1);
        literal.extend_from_slice(self.prefix.as_bytes());
        escape_namespace(&mut literal, namespace);
        literal.push(b':');
        let mut pattern = Vec::with_capacity(literal.len() * 2 + 1);
        for b in literal {
            if matches!(b, b'*' | b'?' | b'[' | b']' | b'\\') {
                pattern.push(b'\\');
            }
            pattern.push(b);
        }
        pattern.push(b'*');
        pattern
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Redis glob matching, enough for the patterns we build (only `*` at the end, `\` escapes).
    fn matches(pattern: &[u8], key: &[u8]) -> bool {
        let mut literal = Vec::new();
        let mut i = 0;
        while i < pattern.len() {
            match pattern[i] {
                b'\\' => {
                    literal.push(pattern[i + 1]);
                    i += 2;
                }
                b'*' if i == pattern.len() - 1 => return key.starts_with(&literal),
                b => {
                    literal.push(b);
                    i += 1;
                }
            }
        }
        key == literal.as_slice()
    }

    #[test]
    fn clearing_a_namespace_never_matches_another_namespace_or_a_tag() {
        let layout = Layout::new("app:");
        let namespaces = ["", "a", "a:b", "a%3A", "#tag", "*", "a*", "[x]", "\\"];
        for ns in namespaces {
            let pattern = layout.namespace_pattern(ns);
            for other in namespaces {
                for key in ["", "k", ":k", "b:k", "#tag:x"] {
                    let hit = matches(&pattern, &layout.entry(other, key));
                    assert_eq!(
                        hit,
                        ns == other,
                        "clear({ns:?}) vs entry({other:?}, {key:?})"
                    );
                }
            }
            assert!(!matches(&pattern, &layout.tag("x")));
            assert!(!matches(&pattern, &layout.lock(ns, "k")));
            assert!(!matches(&pattern, &layout.channel()));
        }
    }

    #[test]
    fn entries_and_tags_never_share_a_key() {
        let layout = Layout::new("p:");
        assert_ne!(layout.entry("", "#tag:x"), layout.tag("x"));
        assert_ne!(layout.entry("#tag", "x"), layout.tag("x"));
        assert_ne!(layout.entry("#lock", "x"), layout.lock("", "x"));
        assert_ne!(layout.entry("", "#lock::x"), layout.lock("", "x"));
        assert_eq!(layout.entry("users", "42"), b"p:users:42");
    }
}
