//! Response compression: one stored copy, encoded once, served to every client as it accepts.
//!
//! On by default ([`Compression`]). A response of a compressible type (JSON, text, JavaScript,
//! XML, SVG, …) of at least 1 KiB that the origin sent uncompressed is **stored compressed
//! once**, in the first of the configured encodings (gzip by default). Every answer then goes
//! out as its client accepts:
//!
//! - the stored coding, when the client's `Accept-Encoding` allows it: the stored bytes as they
//!   are, no work per request (the hit path nginx's `gzip on` pays a compression for);
//! - else another configured coding the client accepts, encoded as it streams (fast level);
//! - else decoded.
//!
//! The origin is asked for the stored coding on fills (`Accept-Encoding: gzip`), so what it
//! compresses itself is stored as it sent it, and `Vary: Accept-Encoding` from the origin does
//! not split the cache: one copy serves all. Responses the cache does not store (a miss's first
//! client, uncacheable ones) are compressed as they stream too. Every answer that could have
//! been encoded says `Vary: Accept-Encoding`; an encoded or decoded answer's `ETag` is weak
//! (RFC 9110 §8.8.1: the bytes differ, the meaning does not), as nginx makes it. Left alone:
//! `Cache-Control: no-transform`, ranges (206, `Content-Range`), 204/304, `HEAD` bodies,
//! `text/event-stream` (its events must not wait in a compressor), codings other than gzip,
//! br and zstd. The working memory of each encoder and decoder is held from the same budget
//! and byte bound as bodies being recorded; an encoder that finds no room sends the response
//! uncompressed; a decoder that finds none answers 503.
//!
//! ```
//! use larder_http::{CacheLayer, Coding, Compression};
//! let layer = CacheLayer::shared(larder::Cache::new()).compression(Compression {
//!     encodings: vec![Coding::Brotli, Coding::Gzip],
//!     ..Compression::default()
//! });
//! assert_eq!(layer.settings().compression.encodings[0], Coding::Brotli);
//! let off = CacheLayer::shared(larder::Cache::new()).compression(Compression::off());
//! assert!(!off.settings().compression.enabled);
//! ```

mod body;
mod codec;
mod serde_in;

use std::str::FromStr;

use http::header::{self, HeaderMap, HeaderValue};
use http::{Method, Response, StatusCode};
use serde::Serialize;

use crate::body::CacheBody;
use crate::budget::Hold;
use crate::state::LayerState;

pub(crate) use body::Coded;
pub(crate) use codec::{Coder, compress};

/// A content coding the layer encodes and decodes.
///
/// ```
/// let c: larder_http::Coding = "br".parse().unwrap();
/// assert_eq!(c.as_str(), "br");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(into = "&'static str")]
pub enum Coding {
    /// `gzip` (every client that compresses accepts it).
    Gzip,
    /// `br`.
    Brotli,
    /// `zstd`.
    Zstd,
}

impl Coding {
    /// Its name in `Content-Encoding`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Gzip => "gzip",
            Self::Brotli => "br",
            Self::Zstd => "zstd",
        }
    }

    fn index(self) -> usize {
        self as usize
    }

    /// A coding named in `Content-Encoding` (`x-gzip` is gzip, RFC 9110 §8.4.1.3).
    fn of_token(t: &[u8]) -> Option<Self> {
        if t.eq_ignore_ascii_case(b"gzip") || t.eq_ignore_ascii_case(b"x-gzip") {
            Some(Self::Gzip)
        } else if t.eq_ignore_ascii_case(b"br") {
            Some(Self::Brotli)
        } else if t.eq_ignore_ascii_case(b"zstd") {
            Some(Self::Zstd)
        } else {
            None
        }
    }
}

impl From<Coding> for &'static str {
    fn from(c: Coding) -> Self {
        c.as_str()
    }
}

impl std::fmt::Display for Coding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not `gzip`, `br` or `zstd`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a coding larder compresses with: gzip, br or zstd")]
pub struct UnknownCoding(pub String);

impl FromStr for Coding {
    type Err = UnknownCoding;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::of_token(s.trim().as_bytes()).ok_or_else(|| UnknownCoding(s.to_owned()))
    }
}

/// How hard stored copies are compressed (what streams is compressed at the fastest level).
///
/// ```
/// assert_eq!(larder_http::CompressionLevel::default(), larder_http::CompressionLevel::Default);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressionLevel {
    /// gzip 1, br 1, zstd 1.
    Fastest,
    /// gzip 6, br 5, zstd 3: most of the gain for a fraction of `Best`'s time.
    #[default]
    Default,
    /// gzip 9, br 11, zstd 19: for origins whose responses live long.
    Best,
}

/// The media types compressed by default: text and the structured formats web APIs send.
/// A pattern is a full type (`application/json`), a type's every subtype (`text/*`) or a
/// structured suffix (`+json`: `application/problem+json`, `application/ld+json`, …).
pub const DEFAULT_COMPRESSIBLE_TYPES: [&str; 11] = [
    "text/*",
    "application/json",
    "application/javascript",
    "application/x-javascript",
    "application/xml",
    "application/wasm",
    "application/vnd.ms-fontobject",
    "+json",
    "+xml",
    "font/ttf",
    "font/otf",
];

/// The layer's compression settings ([`CacheLayer::compression`](crate::CacheLayer::compression)).
///
/// ```
/// let c = larder_http::Compression::default();
/// assert!(c.enabled);
/// assert_eq!(c.min_size, 1024);
/// assert!(c.compressible("application/json; charset=utf-8"));
/// assert!(c.compressible("application/problem+json"));
/// assert!(!c.compressible("image/png"));
/// assert!(!c.compressible("text/event-stream"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Compression {
    /// Whether the layer compresses at all (default true). Off, responses pass with the codings
    /// the origin chose, and `Accept-Encoding` varies them only as the origin's `Vary` says
    /// (normalized, so `gzip, br` and `br,gzip` share one variant).
    pub enabled: bool,
    /// The codings used, by preference; the first is the one stored copies are kept in
    /// (default gzip, br, zstd).
    pub encodings: Vec<Coding>,
    /// How hard stored copies are compressed.
    pub level: CompressionLevel,
    /// Smaller bodies are not worth it (default 1 KiB): below it a response passes as it is.
    pub min_size: u64,
    /// The media types compressed (patterns: [`DEFAULT_COMPRESSIBLE_TYPES`]).
    pub types: Vec<String>,
}

impl Default for Compression {
    fn default() -> Self {
        Self {
            enabled: true,
            encodings: vec![Coding::Gzip, Coding::Brotli, Coding::Zstd],
            level: CompressionLevel::Default,
            min_size: 1024,
            types: DEFAULT_COMPRESSIBLE_TYPES.map(str::to_owned).to_vec(),
        }
    }
}

impl Compression {
    /// No compression: responses pass with the codings the origin chose.
    pub fn off() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }

    /// Whether a response of this `Content-Type` is compressed.
    pub fn compressible(&self, content_type: &str) -> bool {
        let essence = content_type
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if essence == "text/event-stream" || !essence.contains('/') {
            return false;
        }
        self.types.iter().any(|p| {
            let p = p.trim();
            if let Some(suffix) = p.strip_prefix('+') {
                essence
                    .rsplit_once('+')
                    .is_some_and(|(_, s)| s.eq_ignore_ascii_case(suffix))
            } else if let Some(kind) = p.strip_suffix("/*") {
                essence
                    .split_once('/')
                    .is_some_and(|(t, _)| t.eq_ignore_ascii_case(kind))
            } else {
                essence.eq_ignore_ascii_case(p)
            }
        })
    }

    /// Checks the settings: at least one coding, each once, and type patterns that mean
    /// something.
    pub fn check(&self) -> Result<(), String> {
        if self.enabled && self.encodings.is_empty() {
            return Err(
                "encodings: name at least one of gzip, br, zstd (or set enabled = false)".into(),
            );
        }
        for (i, c) in self.encodings.iter().enumerate() {
            if self.encodings[..i].contains(c) {
                return Err(format!("encodings: {c} is named twice"));
            }
        }
        for t in &self.types {
            let t = t.trim();
            let ok = t.strip_prefix('+').map_or_else(
                || {
                    t.split_once('/')
                        .is_some_and(|(a, b)| !a.is_empty() && !b.is_empty() && a != "*")
                },
                |s| !s.is_empty() && !s.contains('/'),
            );
            if !ok {
                return Err(format!(
                    "types: {t:?} is not a media type (\"application/json\"), a type's subtypes (\"text/*\") or a suffix (\"+json\")"
                ));
            }
        }
        Ok(())
    }

    fn is_compressible(&self, headers: &HeaderMap) -> bool {
        headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|t| self.compressible(t))
    }
}

/// What a client accepts, from its `Accept-Encoding` (RFC 9110 §12.5.3): a weight per coding
/// the layer knows, in thousandths. No field at all accepts only identity, as browsers and
/// servers treat it (the RFC allows any coding; sending one to `curl` without `--compressed`
/// would print bytes).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Accepts {
    weight: [u16; 3],
}

impl Accepts {
    pub fn of(request: &HeaderMap) -> Self {
        let mut weight: [Option<u16>; 3] = [None; 3];
        let mut star = None;
        for line in request.get_all(header::ACCEPT_ENCODING) {
            for member in line.as_bytes().split(|b| *b == b',') {
                let mut parts = member.split(|b| *b == b';');
                let token = parts.next().unwrap_or_default().trim_ascii();
                if token.is_empty() {
                    continue;
                }
                let q = parts.find_map(qvalue).unwrap_or(1000);
                if token == b"*" {
                    star = Some(q);
                } else if let Some(c) = Coding::of_token(token) {
                    weight[c.index()] = Some(q);
                }
            }
        }
        Self {
            weight: weight.map(|w| w.or(star).unwrap_or(0)),
        }
    }

    pub fn accepts(self, c: Coding) -> bool {
        self.weight[c.index()] > 0
    }

    /// The configured coding this client prefers: the highest weight, ties to the first
    /// configured.
    fn best(self, encodings: &[Coding]) -> Option<Coding> {
        let mut best: Option<Coding> = None;
        for &c in encodings {
            let w = self.weight[c.index()];
            if w > 0 && best.is_none_or(|b| w > self.weight[b.index()]) {
                best = Some(c);
            }
        }
        best
    }

    /// The normalized `Accept-Encoding` a variant is keyed by when the origin varies on it:
    /// the known codings accepted, in a fixed order (`gzip, br` and `br;q=0.9, gzip` alike).
    pub fn normalized(self) -> &'static str {
        const NAMES: [&str; 8] = [
            "",
            "gzip",
            "br",
            "gzip,br",
            "zstd",
            "gzip,zstd",
            "br,zstd",
            "gzip,br,zstd",
        ];
        let bits = (0..3).fold(0, |acc, i| acc | (usize::from(self.weight[i] > 0) << i));
        NAMES[bits]
    }
}

/// `q=0.5` → 500; `None` for any other parameter or a malformed weight.
fn qvalue(param: &[u8]) -> Option<u16> {
    let param = param.trim_ascii();
    let value = param
        .strip_prefix(b"q=")
        .or_else(|| param.strip_prefix(b"Q="))?;
    let text = std::str::from_utf8(value).ok()?;
    let q: f32 = text.trim().parse().ok()?;
    (0.0..=1.0)
        .contains(&q)
        .then(|| (q * 1000.0).round() as u16)
}

/// What happens to one response's body on its way to one client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transform {
    None,
    Encode(Coding),
    Decode(Coding),
    Transcode(Coding, Coding),
}

/// The response's single content coding: `Ok(None)` for none (or `identity`), `Err` for one
/// the layer does not decode, or a stack of several.
fn content_coding(headers: &HeaderMap) -> Result<Option<Coding>, ()> {
    let mut found = None;
    for line in headers.get_all(header::CONTENT_ENCODING) {
        for t in line.as_bytes().split(|b| *b == b',') {
            let t = t.trim_ascii();
            if t.is_empty() || t.eq_ignore_ascii_case(b"identity") {
                continue;
            }
            match (found, Coding::of_token(t)) {
                (None, Some(c)) => found = Some(c),
                _ => return Err(()),
            }
        }
    }
    Ok(found)
}

fn no_transform(headers: &HeaderMap) -> bool {
    headers.get_all(header::CACHE_CONTROL).iter().any(|v| {
        v.as_bytes()
            .split(|b| *b == b',')
            .any(|d| d.trim_ascii().eq_ignore_ascii_case(b"no-transform"))
    })
}

fn declared_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// What to do with a response for a client that accepts `accepts`, and whether the answer
/// varies by `Accept-Encoding`.
pub(crate) fn decide(
    cfg: &Compression,
    status: StatusCode,
    headers: &HeaderMap,
    accepts: Accepts,
) -> (Transform, bool) {
    if !cfg.enabled || status.is_informational() || headers.contains_key(header::CONTENT_RANGE) {
        return (Transform::None, false);
    }
    let coding = content_coding(headers);
    let compressible = cfg.is_compressible(headers);
    let vary = matches!(coding, Ok(Some(_))) || (coding == Ok(None) && compressible);
    if matches!(
        status,
        StatusCode::NO_CONTENT | StatusCode::NOT_MODIFIED | StatusCode::PARTIAL_CONTENT
    ) || no_transform(headers)
    {
        return (Transform::None, vary);
    }
    let transform = match coding {
        Err(()) => Transform::None,
        Ok(Some(c)) if accepts.accepts(c) => Transform::None,
        Ok(Some(c)) => match accepts.best(&cfg.encodings) {
            Some(to) if compressible => Transform::Transcode(c, to),
            _ => Transform::Decode(c),
        },
        Ok(None) if compressible && declared_length(headers).is_none_or(|n| n >= cfg.min_size) => {
            accepts
                .best(&cfg.encodings)
                .map_or(Transform::None, Transform::Encode)
        }
        Ok(None) => Transform::None,
    };
    (transform, vary)
}

/// A 304's headers say the `Vary` the full response (`full`) would have said (RFC 9110
/// §15.4.5).
pub(crate) fn vary_like(cfg: &Compression, full: &HeaderMap, not_modified: &mut HeaderMap) {
    if decide(cfg, StatusCode::OK, full, Accepts::default()).1 {
        add_vary(not_modified);
    }
}

/// The response headers for `transform`, and `Vary: Accept-Encoding` when `vary`.
pub(crate) fn edit_headers(headers: &mut HeaderMap, transform: Transform, vary: bool) {
    if vary {
        add_vary(headers);
    }
    let to = match transform {
        Transform::None => return,
        Transform::Encode(to) | Transform::Transcode(_, to) => Some(to),
        Transform::Decode(_) => None,
    };
    match to {
        Some(c) => {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(c.as_str()),
            );
        }
        None => {
            headers.remove(header::CONTENT_ENCODING);
        }
    }
    headers.remove(header::CONTENT_LENGTH);
    // Ranges of these bytes are not ranges of the stored ones.
    headers.remove(header::ACCEPT_RANGES);
    weaken_etag(headers);
}

/// `"x"` → `W/"x"`: the same meaning in other bytes (RFC 9110 §8.8.1).
pub(crate) fn weaken_etag(headers: &mut HeaderMap) {
    if let Some(tag) = headers.get(header::ETAG)
        && !tag.as_bytes().starts_with(b"W/")
    {
        let mut weak = b"W/".to_vec();
        weak.extend_from_slice(tag.as_bytes());
        if let Ok(v) = HeaderValue::from_bytes(&weak) {
            headers.insert(header::ETAG, v);
        }
    }
}

fn add_vary(headers: &mut HeaderMap) {
    let has = headers.get_all(header::VARY).iter().any(|v| {
        v.as_bytes().split(|b| *b == b',').any(|m| {
            let m = m.trim_ascii();
            m == b"*" || m.eq_ignore_ascii_case(b"accept-encoding")
        })
    });
    if !has {
        headers.append(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
}

/// The `Accept-Encoding` a fill asks the origin with: the coding copies are stored in, so what
/// the origin compresses itself is stored as it sent it.
pub(crate) fn fill_accept_encoding(cfg: &Compression) -> Option<HeaderValue> {
    (cfg.enabled)
        .then(|| cfg.encodings.first())
        .flatten()
        .map(|c| HeaderValue::from_static(c.as_str()))
}

/// Whether a response with these headers may be stored compressed: uncompressed, of a
/// compressible type, not `no-transform`, at least `min_size`.
pub(crate) fn store_coding(
    cfg: &Compression,
    status: StatusCode,
    headers: &HeaderMap,
    len: usize,
) -> Option<Coding> {
    let ok = cfg.enabled
        && !matches!(
            status,
            StatusCode::NO_CONTENT | StatusCode::PARTIAL_CONTENT | StatusCode::NOT_MODIFIED
        )
        && len as u64 >= cfg.min_size
        && content_coding(headers) == Ok(None)
        && !headers.contains_key(header::CONTENT_RANGE)
        && !no_transform(headers)
        && cfg.is_compressible(headers);
    ok.then(|| cfg.encodings.first().copied()).flatten()
}

/// Whether the origin's `Vary: Accept-Encoding` may be left out of the key: the layer serves any
/// client from one copy in this coding.
pub(crate) fn serves_every_encoding(cfg: &Compression, headers: &HeaderMap) -> bool {
    cfg.enabled && content_coding(headers).is_ok()
}

/// What the layer needs to know of a request to code its answer.
pub(crate) struct Outgoing {
    accepts: Accepts,
    head: bool,
    cfg: std::sync::Arc<Compression>,
}

impl Outgoing {
    /// For a request with these method and headers; `None` when compression is off.
    pub fn of(
        cfg: &std::sync::Arc<Compression>,
        method: &Method,
        request: &HeaderMap,
    ) -> Option<Self> {
        cfg.enabled.then(|| Self {
            accepts: Accepts::of(request),
            head: method == Method::HEAD,
            cfg: cfg.clone(),
        })
    }

    /// The response as this client gets it: encoded, decoded or as it is, and `Vary` said.
    pub fn deliver<B>(
        &self,
        state: &LayerState,
        mut response: Response<CacheBody<B>>,
    ) -> Response<CacheBody<B>> {
        let (mut transform, vary) = decide(
            &self.cfg,
            response.status(),
            response.headers(),
            self.accepts,
        );
        if transform == Transform::None && !vary {
            return response;
        }
        if self.head || transform == Transform::None {
            edit_headers(response.headers_mut(), transform, vary);
            return response;
        }
        let hold = |c: Coding, encode: bool| {
            let mut hold = Hold::new(&state.budgets, &state.cache);
            hold.try_grow(Coder::memory(c, encode)).then_some(hold)
        };
        // Decoders first: without one a client that cannot read the coding gets nothing useful.
        let decoder = match transform {
            Transform::Decode(from) | Transform::Transcode(from, _) => match hold(from, false) {
                Some(h) => Some((Coder::decoder(from), h)),
                None => return no_room_to_decode(state, from),
            },
            _ => None,
        };
        let encoder = match transform {
            Transform::Encode(to) | Transform::Transcode(_, to) => {
                hold(to, true).map(|h| (Coder::encoder(to, CompressionLevel::Fastest, true), h))
            }
            _ => None,
        };
        if encoder.is_none() {
            // No room to encode: it goes out as stored, or just decoded.
            transform = match transform {
                Transform::Transcode(from, _) => Transform::Decode(from),
                Transform::Encode(_) => Transform::None,
                t => t,
            };
        }
        edit_headers(response.headers_mut(), transform, vary);
        let (parts, mut body) = response.into_parts();
        if let Some((coder, hold)) = decoder {
            body = body.coded(coder, hold);
        }
        if let Some((coder, hold)) = encoder {
            body = body.coded(coder, hold);
        }
        Response::from_parts(parts, body)
    }
}

/// 503 for a client that cannot read the stored coding, when the layer has no room to decode.
fn no_room_to_decode<B>(state: &LayerState, from: Coding) -> Response<CacheBody<B>> {
    let mut r = crate::service::refuse(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        format!("no room to decode {from} for a client that does not accept it; try again"),
        "no-room",
    );
    r.headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepts(v: &str) -> Accepts {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_str(v).unwrap());
        Accepts::of(&h)
    }

    fn head(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn accept_encoding_reads_weights_stars_and_aliases() {
        let a = accepts("gzip;q=0.5, br");
        let all = [Coding::Gzip, Coding::Brotli, Coding::Zstd];
        assert_eq!(a.best(&all), Some(Coding::Brotli));
        assert_eq!(accepts("x-gzip").best(&all), Some(Coding::Gzip));
        assert_eq!(accepts("*").best(&all), Some(Coding::Gzip));
        assert_eq!(accepts("*, gzip;q=0").best(&all), Some(Coding::Brotli));
        assert_eq!(accepts("identity").best(&all), None);
        assert_eq!(accepts("gzip;q=0").best(&all), None);
        assert_eq!(
            accepts("gzip;q=2").best(&all),
            Some(Coding::Gzip),
            "bad weight: 1"
        );
        assert_eq!(Accepts::of(&HeaderMap::new()).best(&all), None);
        assert_eq!(accepts("br;q=0.9, GZIP").normalized(), "gzip,br");
        assert_eq!(accepts("gzip, br").normalized(), "gzip,br");
    }

    #[test]
    fn the_decision_follows_the_client_and_the_response() {
        let cfg = Compression::default();
        let json = head(&[
            ("content-type", "application/json"),
            ("content-length", "5000"),
        ]);
        let gz = head(&[
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ]);
        let ok = StatusCode::OK;
        assert_eq!(
            decide(&cfg, ok, &json, accepts("gzip, br")),
            (Transform::Encode(Coding::Gzip), true)
        );
        assert_eq!(
            decide(&cfg, ok, &json, accepts("identity")),
            (Transform::None, true)
        );
        assert_eq!(
            decide(&cfg, ok, &gz, accepts("gzip")),
            (Transform::None, true)
        );
        assert_eq!(
            decide(&cfg, ok, &gz, accepts("")),
            (Transform::Decode(Coding::Gzip), true)
        );
        assert_eq!(
            decide(&cfg, ok, &gz, accepts("br")),
            (Transform::Transcode(Coding::Gzip, Coding::Brotli), true)
        );
        let small = head(&[("content-type", "text/plain"), ("content-length", "10")]);
        assert_eq!(
            decide(&cfg, ok, &small, accepts("gzip")),
            (Transform::None, true)
        );
        let png = head(&[("content-type", "image/png")]);
        assert_eq!(
            decide(&cfg, ok, &png, accepts("gzip")),
            (Transform::None, false)
        );
        let nt = head(&[
            ("content-type", "text/plain"),
            ("cache-control", "public, no-transform"),
        ]);
        assert_eq!(
            decide(&cfg, ok, &nt, accepts("gzip")),
            (Transform::None, true)
        );
        let stacked = head(&[
            ("content-type", "text/plain"),
            ("content-encoding", "gzip, br"),
        ]);
        assert_eq!(
            decide(&cfg, ok, &stacked, accepts("")),
            (Transform::None, false)
        );
        assert_eq!(
            decide(&cfg, StatusCode::NOT_MODIFIED, &gz, accepts("")),
            (Transform::None, true)
        );
        assert_eq!(
            decide(&Compression::off(), ok, &json, accepts("gzip")),
            (Transform::None, false)
        );
    }

    #[test]
    fn headers_say_what_was_done() {
        let mut h = head(&[
            ("content-type", "text/plain"),
            ("content-length", "5000"),
            ("etag", "\"v1\""),
            ("vary", "Accept-Encoding"),
        ]);
        edit_headers(&mut h, Transform::Encode(Coding::Brotli), true);
        assert_eq!(h["content-encoding"], "br");
        assert_eq!(h["etag"], "W/\"v1\"");
        assert!(!h.contains_key("content-length"));
        assert_eq!(h.get_all("vary").iter().count(), 1);
        edit_headers(&mut h, Transform::Decode(Coding::Brotli), true);
        assert!(!h.contains_key("content-encoding"));
        assert_eq!(h["etag"], "W/\"v1\"");
    }

    #[test]
    fn settings_are_checked() {
        assert!(Compression::default().check().is_ok());
        let twice = Compression {
            encodings: vec![Coding::Gzip, Coding::Gzip],
            ..Compression::default()
        };
        assert!(twice.check().is_err());
        for bad in ["json", "*/json", "+", "/x"] {
            let c = Compression {
                types: vec![bad.into()],
                ..Compression::default()
            };
            assert!(c.check().is_err(), "{bad}");
        }
    }
}
