//! Small pieces every store needs alike: reading its URL and laying out its keys.

/// Decodes `%XX` escapes and `+` (as a space) in a URL query value, as store URLs use them
/// (`?prefix=app%3A`); `None` if an escape is malformed or the result is not UTF-8.
///
/// ```
/// assert_eq!(larder_store::percent_decode("app%3A+v1").as_deref(), Some("app: v1"));
/// assert_eq!(larder_store::percent_decode("bad%4"), None);
/// ```
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                let digit = |b: u8| char::from(b).to_digit(16);
                out.push(u8::try_from(digit(hex[0])? * 16 + digit(hex[1])?).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// The URL with its password replaced by `***`, fit for an error message or a log line.
///
/// ```
/// assert_eq!(larder_store::redact_url("redis://u:secret@h:6379/0"), "redis://u:***@h:6379/0");
/// assert_eq!(larder_store::redact_url("redis://h:6379"), "redis://h:6379");
/// ```
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, _)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{}", &rest[userinfo.len() + 1..])
        }
        _ => url.to_owned(),
    }
}

/// Appends `namespace` with `%`, `:` and `#` percent-escaped. In a key laid out as
/// `{prefix}{escaped namespace}:{key}` the first `:` after the prefix then always ends the
/// namespace (so clearing `a` never touches `a:b`), and no escaped namespace starts with `#`,
/// which leaves `{prefix}#...` free for a store's own bookkeeping keys.
///
/// ```
/// let mut key = b"app:".to_vec();
/// larder_store::escape_namespace(&mut key, "a:b#%");
/// assert_eq!(key, b"app:a%3Ab%23%25");
/// ```
pub fn escape_namespace(out: &mut Vec<u8>, namespace: &str) {
    for b in namespace.bytes() {
        match b {
            b'%' => out.extend_from_slice(b"%25"),
            b':' => out.extend_from_slice(b"%3A"),
            b'#' => out.extend_from_slice(b"%23"),
            _ => out.push(b),
        }
    }
}
