//! The glob matcher larder's rules used before issue 23, kept as the reference the compiled
//! automata are checked against (`rule.rs` tests) and measured beside (`benches/rules.rs`):
//! `**` takes any number of whole segments, `*` any run within one, trying every split.

/// Whether `path` matches `pattern`, both starting with `/`.
pub fn backtracking(pattern: &str, path: &str) -> bool {
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|k| segments(rest, &s[k..])),
            Some((first, rest)) => match s.split_first() {
                Some((seg, s_rest)) => {
                    one(first.as_bytes(), seg.as_bytes()) && segments(rest, s_rest)
                }
                None => false,
            },
        }
    }
    fn one(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|k| one(rest, &t[k..])),
            Some((c, rest)) => t.first() == Some(c) && one(rest, &t[1..]),
        }
    }
    let p: Vec<&str> = pattern[1..].split('/').collect();
    let s: Vec<&str> = path[1..].split('/').collect();
    segments(&p, &s)
}
