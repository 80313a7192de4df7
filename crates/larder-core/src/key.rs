//! Building cache keys from parts without collisions.
//!
//! Joining `("a:b", "c")` and `("a", "b:c")` with `:` would give the same key. Each part is escaped
//! (`\` → `\\`, `:` → `\:`) before it is joined, so distinct part lists always give distinct keys,
//! while keys stay readable in `redis-cli`.

use std::fmt::{self, Write};

/// The separator between key parts.
pub const KEY_SEPARATOR: char = ':';

/// Builds a key from parts, escaping each so that different part lists never collide.
///
/// ```
/// use larder::KeyBuilder;
///
/// let key = KeyBuilder::new().part("user").part(42).part("posts").build();
/// assert_eq!(key, "user:42:posts");
/// // Parts containing the separator are escaped, so these two differ:
/// assert_ne!(
///     KeyBuilder::new().part("a:b").part("c").build(),
///     KeyBuilder::new().part("a").part("b:c").build(),
/// );
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyBuilder {
    buf: String,
    first: bool,
}

impl KeyBuilder {
    /// An empty key.
    pub fn new() -> Self {
        Self {
            buf: String::new(),
            first: true,
        }
    }

    /// Appends one part, formatted with `Display` and escaped.
    pub fn part(mut self, part: impl fmt::Display) -> Self {
        self.push(part);
        self
    }

    /// Appends one part in place.
    pub fn push(&mut self, part: impl fmt::Display) {
        if !self.first {
            self.buf.push(KEY_SEPARATOR);
        }
        self.first = false;
        let mut escaper = Escaper(&mut self.buf);
        // Writing into a String cannot fail; a Display impl that reports an error just leaves the
        // part truncated, which still yields a well-formed (escaped) key.
        let _ = write!(escaper, "{part}");
    }

    /// The finished key.
    pub fn build(self) -> String {
        self.buf
    }
}

/// Escapes one key part: `\` → `\\`, `:` → `\:`.
///
/// ```
/// assert_eq!(larder::escape_key_part("a:b\\c"), "a\\:b\\\\c");
/// ```
pub fn escape_key_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    let _ = Escaper(&mut out).write_str(part);
    out
}

struct Escaper<'a>(&'a mut String);

impl Write for Escaper<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if c == '\\' || c == KEY_SEPARATOR {
                self.0.push('\\');
            }
            self.0.push(c);
        }
        Ok(())
    }
}

/// Builds a cache key from any number of `Display` parts, escaping each part.
///
/// ```
/// use larder::key;
///
/// let id = 7;
/// assert_eq!(key!("user", id), "user:7");
/// assert_ne!(key!("a:b", "c"), key!("a", "b:c"));
/// ```
#[macro_export]
macro_rules! key {
    ($($part:expr),+ $(,)?) => {{
        let mut builder = $crate::KeyBuilder::new();
        $( builder.push(&$part); )+
        builder.build()
    }};
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn join(parts: &[String]) -> String {
        let mut b = KeyBuilder::new();
        for p in parts {
            b.push(p);
        }
        b.build()
    }

    #[test]
    fn separator_inside_parts_does_not_collide() {
        assert_eq!(key!("a:b", "c"), "a\\:b:c");
        assert_eq!(key!("a", "b:c"), "a:b\\:c");
        assert_ne!(key!("a\\", ":b"), key!("a\\:", "b"));
    }

    proptest! {
        #[test]
        fn distinct_part_lists_give_distinct_keys(
            a in proptest::collection::vec("[a-c:\\\\]{0,4}", 1..4),
            b in proptest::collection::vec("[a-c:\\\\]{0,4}", 1..4),
        ) {
            if a != b {
                prop_assert_ne!(join(&a), join(&b));
            }
        }
    }
}
