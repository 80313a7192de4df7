//! What the layer keeps in the [`Cache`](larder::Cache): a response, or the Vary index that
//! points at a URL's variants.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::vary::VaryIndex;

/// The value under a key: the response itself, or, when the URL's response varies by request
/// headers, which headers, and the nonce of its variants' keys.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Stored {
    Response(Arc<CachedResponse>),
    Variants(VaryIndex),
}

impl Stored {
    /// The response, when this is one (a variant key never holds an index), held as the cache
    /// holds it.
    pub fn kept(this: &Arc<Self>) -> Option<Kept> {
        match &**this {
            Self::Response(r) => Some(Kept {
                stored: this.clone(),
                response: r.clone(),
            }),
            Self::Variants(_) => None,
        }
    }
}

/// A stored response, with the very value the memory tier holds it in: while a `Kept` (or a
/// piece of its [`body`](Self::body)) lives, the cache sees its entry in use and does not evict
/// it, so its bytes stay counted under the memory bound until they are sent (see larder's
/// `table::Large`).
#[derive(Debug, Clone)]
pub(crate) struct Kept {
    /// The value as the cache holds it: its count tells the memory tier the response is in
    /// use, and its allocation names it in the core's fail-safe map.
    stored: Arc<Stored>,
    response: Arc<CachedResponse>,
}

impl Kept {
    /// The value as the cache holds it.
    pub fn stored(&self) -> &Arc<Stored> {
        &self.stored
    }

    /// A response not (yet) in the cache.
    pub fn new(response: CachedResponse) -> Self {
        let response = Arc::new(response);
        Self {
            stored: Arc::new(Stored::Response(response.clone())),
            response,
        }
    }

    /// A weak handle on the value the cache holds (for tests: whether anything still holds it).
    #[cfg(test)]
    pub fn weak(&self) -> std::sync::Weak<Stored> {
        Arc::downgrade(&self.stored)
    }

    /// The body, as bytes that keep this response held while any slice of them lives (no copy);
    /// a small body as it is (the memory tier does not keep small entries in use).
    pub fn body(&self) -> Bytes {
        if self.response.body.len() < crate::deliver::LARGE {
            return self.response.body.clone();
        }
        Bytes::from_owner(KeptBody(self.clone()))
    }
}

impl std::ops::Deref for Kept {
    type Target = CachedResponse;

    fn deref(&self) -> &CachedResponse {
        &self.response
    }
}

/// A kept response as the owner of its body's bytes.
struct KeptBody(Kept);

impl AsRef<[u8]> for KeptBody {
    fn as_ref(&self) -> &[u8] {
        &self.0.response.body
    }
}

/// A stored response: head, body and the numbers freshness is computed from.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct CachedResponse {
    #[serde(with = "status")]
    pub status: StatusCode,
    /// Headers as they go out, minus hop-by-hop fields, the tag header and fields a qualified
    /// `private`/`no-cache` named.
    #[serde(with = "header_map")]
    pub headers: HeaderMap,
    pub body: Bytes,
    /// When the response was received, in Unix milliseconds.
    pub response_time_ms: u64,
    /// The response's age when received (RFC 9111 §4.2.3), in seconds.
    pub initial_age: u64,
    /// How long it is fresh from its origin's view, in seconds (§4.2.1, or the app's ttl).
    pub lifetime: u64,
    pub rules: Rules,
    /// Purge tags the service gave it.
    pub tags: Vec<String>,
}

/// What the response's `Cache-Control` says about serving it later.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub(crate) struct Rules {
    /// `no-cache`: every use needs a successful revalidation.
    pub no_cache: bool,
    /// `must-revalidate` or `proxy-revalidate`: never served stale, whatever the client allows.
    pub must_revalidate: bool,
    /// `public`, `s-maxage` or `must-revalidate`: may answer a request that has Authorization
    /// (RFC 9111 §3.5).
    pub shareable_with_auth: bool,
    /// `public` or `s-maxage`: the origin says outright that shared caches may serve it, so it
    /// may answer a request that carries cookies the layer does not key on.
    #[serde(default)]
    pub shared_explicitly: bool,
    pub stale_while_revalidate: u64,
    pub stale_if_error: u64,
}

impl CachedResponse {
    /// Its current age in seconds at `now_ms` (§4.2.3).
    pub fn age(&self, now_ms: u64) -> u64 {
        // Saturating: the numbers may come from a store, and a corrupt one must not overflow.
        self.initial_age
            .saturating_add(now_ms.saturating_sub(self.response_time_ms) / 1000)
    }

    pub fn etag(&self) -> Option<&HeaderValue> {
        self.headers.get(http::header::ETAG)
    }

    pub fn last_modified(&self) -> Option<&HeaderValue> {
        self.headers.get(http::header::LAST_MODIFIED)
    }

    /// Whether a stale copy can be revalidated rather than fetched again.
    pub fn has_validator(&self) -> bool {
        self.etag().is_some() || self.last_modified().is_some()
    }
}

mod status {
    use super::*;

    pub fn serialize<S: Serializer>(s: &StatusCode, ser: S) -> Result<S::Ok, S::Error> {
        s.as_u16().serialize(ser)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<StatusCode, D::Error> {
        let code = u16::deserialize(de)?;
        StatusCode::from_u16(code).map_err(serde::de::Error::custom)
    }
}

pub(crate) mod header_names {
    use super::*;

    pub fn serialize<S: Serializer>(names: &[HeaderName], ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(names.iter().map(HeaderName::as_str))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Vec<HeaderName>, D::Error> {
        let names = Vec::<String>::deserialize(de)?;
        names
            .iter()
            .map(|n| HeaderName::from_bytes(n.as_bytes()).map_err(serde::de::Error::custom))
            .collect()
    }
}

/// A header map as a list of (name, value bytes) pairs; a stored map that no longer parses is a
/// decode error, which the cache treats as a miss.
mod header_map {
    use super::*;

    pub fn serialize<S: Serializer>(map: &HeaderMap, ser: S) -> Result<S::Ok, S::Error> {
        ser.collect_seq(
            map.iter()
                .map(|(n, v)| (n.as_str(), serde_bytes_ref(v.as_bytes()))),
        )
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<HeaderMap, D::Error> {
        let pairs = Vec::<(String, Bytes)>::deserialize(de)?;
        let mut map = HeaderMap::with_capacity(pairs.len());
        for (name, value) in pairs {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(serde::de::Error::custom)?;
            let value = HeaderValue::from_maybe_shared(value).map_err(serde::de::Error::custom)?;
            map.append(name, value);
        }
        Ok(map)
    }

    /// Serializes a byte slice as bytes (a MessagePack bin), not as a list of numbers.
    fn serde_bytes_ref(b: &[u8]) -> Bytes {
        Bytes::copy_from_slice(b)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A 200 with this body, for tests.
    pub(crate) fn response(body: Vec<u8>) -> CachedResponse {
        CachedResponse {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            body: Bytes::from(body),
            response_time_ms: 0,
            initial_age: 0,
            lifetime: 60,
            rules: Rules::default(),
            tags: Vec::new(),
        }
    }

    #[test]
    fn a_response_survives_both_codecs() {
        let mut headers = HeaderMap::new();
        headers.append("x-a", HeaderValue::from_static("1"));
        headers.append("x-a", HeaderValue::from_static("2"));
        headers.insert("content-type", HeaderValue::from_static("text/plain"));
        let resp = Stored::Response(Arc::new(CachedResponse {
            status: StatusCode::NOT_FOUND,
            headers,
            body: Bytes::from_static(b"\x00\xffbody"),
            response_time_ms: 5,
            initial_age: 1,
            lifetime: 60,
            rules: Rules::default(),
            tags: vec!["t".into()],
        }));
        for format in [
            larder::codec::Format::Json,
            larder::codec::Format::MessagePack,
        ] {
            let opts = larder::codec::EncodeOptions {
                format,
                compress_above: None,
            };
            let bytes = larder::codec::Envelope::encode(&resp, 1, 2, &[], opts).unwrap();
            let env = larder::codec::Envelope::decode(&bytes).unwrap();
            let Stored::Response(back) = env.value::<Stored>().unwrap() else {
                panic!("variant changed")
            };
            assert_eq!(back.status, StatusCode::NOT_FOUND);
            assert_eq!(back.body.as_ref(), b"\x00\xffbody");
            let values: Vec<_> = back.headers.get_all("x-a").iter().collect();
            assert_eq!(values, ["1", "2"]);
            assert_eq!(back.tags, ["t"]);
        }
    }

    #[test]
    fn a_corrupt_header_is_a_decode_error_not_a_panic() {
        let bad = r#"{"Variants":{"headers":["bad name"],"nonce":1}}"#;
        assert!(serde_json::from_str::<Stored>(bad).is_err());
    }
}
