//! Vary (RFC 9111 §4.1), in one place: which request inputs a URL's responses vary by (the
//! response's `Vary` plus the layer's keyed headers and cookies, kept as a [`VaryIndex`] under the
//! URL's primary key), the key of one variant, and the one lookup of the variant that answers a
//! request ([`select`]), which the synchronous hit, the async lookup and the fill across
//! processes all take.

use std::fmt::Write as _;
use std::sync::Arc;

use http::header::VARY;
use http::{HeaderMap, HeaderName};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::key::push_escape;
use crate::stored::{Kept, Stored, header_names};

/// The request inputs a URL's responses vary by: the header fields the latest response's `Vary`
/// named plus the layer's keyed headers, and the layer's keyed cookies.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct VaryIndex {
    #[serde(with = "header_names")]
    pub headers: Vec<HeaderName>,
    #[serde(default)]
    pub cookies: Vec<String>,
    /// Part of every variant key: a purge drops the index, and the next index gets a new nonce,
    /// so variants stored before the purge can never be found again.
    pub nonce: u64,
}

impl VaryIndex {
    pub fn varied(&self) -> Varied<'_> {
        Varied {
            headers: &self.headers,
            cookies: &self.cookies,
        }
    }
}

/// What a stored response varies by: request header fields (its `Vary`, and the layer's keyed
/// headers) and the layer's keyed cookies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Varied<'a> {
    pub headers: &'a [HeaderName],
    pub cookies: &'a [String],
}

impl Varied<'_> {
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty() && self.cookies.is_empty()
    }
}

/// The secondary key of one variant: the primary key, the index's nonce (so a purged index
/// orphans its old variants), then each varied header's and cookie's normalized value from the
/// request.
pub(crate) fn variant_key(
    primary: &str,
    nonce: u64,
    varied: Varied<'_>,
    request: &HeaderMap,
) -> String {
    let mut key = String::with_capacity(primary.len() + 24 + varied.headers.len() * 24);
    key.push_str(primary);
    let _ = write!(key, "#v{nonce:x}");
    push_varied(varied, request, &mut key);
    key
}

/// The normalized values of the varied inputs alone, to compare two requests' variants.
pub(crate) fn vary_values(varied: Varied<'_>, request: &HeaderMap) -> String {
    let mut out = String::new();
    push_varied(varied, request, &mut out);
    out
}

/// `|name` then `!` (absent) or `=` and the value, for each header; `|c:name` and the same for
/// each cookie (no header name holds a `:`). Names and values are escaped by [`push_escaped`].
fn push_varied(varied: Varied<'_>, request: &HeaderMap, out: &mut String) {
    for name in varied.headers {
        out.push('|');
        // A token may hold `|` or `#` (RFC 9110 §5.6.2): escaped like values.
        push_escaped(name.as_str().as_bytes(), out);
        push_vary_value(name, request, out);
    }
    for name in varied.cookies {
        out.push_str("|c:");
        push_escaped(name.as_bytes(), out);
        let mut values = crate::cookies::values(request, name).peekable();
        if values.peek().is_none() {
            out.push('!');
            continue;
        }
        out.push('=');
        for (i, value) in values.enumerate() {
            if i > 0 {
                out.push(',');
            }
            push_escaped(value, out);
        }
    }
}

/// The normalized value of a varied header (§4.1): all field lines joined as one list, members
/// trimmed and empty ones dropped, whitespace runs collapsed, and for the `Accept*` family, whose
/// values are case-insensitive tokens, lower-cased. An absent header differs from an empty one.
fn push_vary_value(name: &HeaderName, headers: &HeaderMap, out: &mut String) {
    let mut lines = headers.get_all(name).iter().peekable();
    if lines.peek().is_none() {
        out.push('!');
        return;
    }
    if name == http::header::ACCEPT_ENCODING {
        // The codings accepted, not their spelling: `gzip, br`, `br;q=0.9,gzip` and
        // `gzip, deflate, br` get one variant, not one each (compression off, or a coding the
        // layer cannot decode).
        out.push('=');
        out.push_str(crate::coding::Accepts::of(headers).normalized());
        return;
    }
    out.push('=');
    let fold_case = name.as_str().starts_with("accept");
    let mut first = true;
    for line in lines {
        for member in line.as_bytes().split(|b| *b == b',') {
            let member = member.trim_ascii();
            if member.is_empty() {
                continue;
            }
            if !first {
                out.push(',');
            }
            first = false;
            let mut last_space = false;
            for &b in member {
                if b.is_ascii_whitespace() {
                    if !last_space {
                        out.push(' ');
                    }
                    last_space = true;
                    continue;
                }
                last_space = false;
                let b = if fold_case { b.to_ascii_lowercase() } else { b };
                push_escaped(&[b], out);
            }
        }
    }
}

/// Appends `bytes`, escaping as `%XX` every byte that is not visible ASCII and each of the key's
/// own separators (`%`, `|`, `,`, `#`), so that no value can read as another or as structure.
fn push_escaped(bytes: &[u8], out: &mut String) {
    for &b in bytes {
        match b {
            b'%' | b'|' | b',' | b'#' => push_escape(out, b),
            0x21..=0x7e => out.push(b as char),
            _ => push_escape(out, b),
        }
    }
}

/// The response's varied request headers, lower-case, sorted, deduplicated; `None` for `Vary: *`.
pub(crate) fn vary_names(headers: &HeaderMap) -> Option<Vec<HeaderName>> {
    let mut names = Vec::new();
    for line in headers.get_all(VARY) {
        let Ok(line) = line.to_str() else {
            // A Vary we cannot read could name anything: treat it like `*`.
            return None;
        };
        for member in line.split(',').map(str::trim).filter(|m| !m.is_empty()) {
            if member == "*" {
                return None;
            }
            names.push(HeaderName::from_bytes(member.as_bytes()).ok()?);
        }
    }
    names.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
    names.dedup();
    Some(names)
}

/// What answers a request, given what is stored under its URL's primary key.
pub(crate) enum Select<'a> {
    /// The response stored there.
    Response(Kept),
    /// The URL varies: the response is the one stored under `key`, this request's variant.
    Variant { index: &'a VaryIndex, key: String },
    /// Nothing here answers this request: a response stored for requests without keyed inputs
    /// (a cookie or header the layer keys by) is not this request's variant.
    Nothing,
}

/// The one variant lookup: what under `primary` (holding `stored`) answers a request with
/// `headers`. The caller reads the variant's key itself, at once (the hit) or awaiting the
/// remote store (the lookup, the fill across processes).
pub(crate) fn select<'a>(
    cfg: &Config,
    primary: &str,
    stored: &'a Arc<Stored>,
    headers: &HeaderMap,
) -> Select<'a> {
    match &**stored {
        Stored::Response(_) if cfg.has_keyed_inputs(headers) => Select::Nothing,
        Stored::Response(_) => Stored::kept(stored).map_or(Select::Nothing, Select::Response),
        Stored::Variants(index) => Select::Variant {
            index,
            key: variant_key(primary, index.nonce, index.varied(), headers),
        },
    }
}
