//! Whether a POST's body may be read for its key ([`permit`]), the room it takes while it is
//! held ([`BodyPermit`]), and the bytes read with their digest ([`KeyedBody`]).

use std::fmt::Write;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Method, Uri, header};
use http_body::Body;
use sha2::{Digest, Sha256};

use crate::budget::Hold;
use crate::policy::Credentials;
use crate::state::LayerState;

/// Why a POST under a `key_body` rule passes uncached, as its `Cache-Status` says it
/// (`detail=`); carried to the cache service in the request's extensions.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Unkeyed(pub &'static str);

/// What [`permit`] says of a request.
pub(crate) enum Refused {
    /// No `key_body` rule covers it: the cache treats it as any other request.
    NotKeyed,
    /// A `key_body` rule covers it, but this one passes uncached, for this reason.
    Pass(Unkeyed),
}

/// Leave to read one POST's body for its key: its declared length, the time the reader may
/// wait for each part of it, and the room it holds in the layer's recording budget and the
/// cache's byte bound until the [`KeyedBody`] made from it is dropped. From
/// [`CacheService::body_permit`](crate::CacheService::body_permit).
///
/// ```
/// # use std::time::Duration;
/// # use bytes::Bytes;
/// # use tower_layer::Layer;
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let rule = larder_http::Rule::path("/search").unwrap().ttl(Duration::from_secs(60)).key_body(1024);
/// let svc = larder_http::CacheLayer::shared(larder::Cache::new())
///     .rules([rule])
///     .layer(tower::service_fn(|_: http::Request<Bytes>| async {
///         Ok::<_, std::convert::Infallible>(http::Response::new(String::new()))
///     }));
/// let mut req = http::Request::post("http://example.test/search")
///     .header("content-length", "2")
///     .body(Bytes::from_static(b"hi"))
///     .unwrap();
/// let permit = svc.body_permit(&mut req).expect("a POST the rule keys");
/// assert_eq!(permit.len(), 2);
/// let keyed = permit.accept(req.body().clone()).unwrap();
/// req.extensions_mut().insert(keyed);
/// // `req` now goes to `svc`, looked up by its body.
/// # }
/// ```
#[derive(Debug)]
pub struct BodyPermit {
    len: usize,
    idle: Duration,
    hold: Hold,
    content_type: Vec<HeaderValue>,
    content_encoding: Vec<HeaderValue>,
}

/// Why a body could not be read for its key. The request cannot go on (part of its body is
/// gone): [`KeyBodies`](crate::KeyBodies) answers it 400 or 408.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BodyReadError {
    /// Reading it failed (the client reset, or sent a malformed body).
    #[error("the request body could not be read: {0}")]
    Broken(crate::BoxError),
    /// The client sent none of it for the body idle timeout.
    #[error("the request body stalled for {0:?}")]
    Stalled(Duration),
    /// It was not the length its `Content-Length` said.
    #[error("the request body was {got} bytes where Content-Length said {declared}")]
    Length {
        /// The declared length.
        declared: usize,
        /// What came (past the declared length, the count stops at the first extra part).
        got: usize,
    },
}

impl BodyPermit {
    /// The body's declared length, in bytes (the most a reader reads).
    #[allow(clippy::len_without_is_empty)]
    pub fn len(&self) -> usize {
        self.len
    }

    /// The longest wait for the next part of the body (the layer's body idle timeout).
    pub fn idle_timeout(&self) -> Duration {
        self.idle
    }

    /// Reads `body` whole, waiting at most the idle timeout for each part, and never past the
    /// declared length.
    pub async fn read<B>(self, body: B) -> Result<KeyedBody, BodyReadError>
    where
        B: Body,
        B::Error: Into<crate::BoxError>,
    {
        let mut body = std::pin::pin!(body);
        let mut bytes = BytesMut::with_capacity(self.len);
        loop {
            let next = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx));
            let frame = tokio::time::timeout(self.idle, next)
                .await
                .map_err(|_| BodyReadError::Stalled(self.idle))?;
            let Some(frame) = frame else { break };
            let frame = frame.map_err(|e| BodyReadError::Broken(e.into()))?;
            // Trailers are not part of the key; they are not forwarded either.
            if let Ok(data) = frame.into_data() {
                let got = bytes.len() + data.remaining();
                if got > self.len {
                    return Err(BodyReadError::Length {
                        declared: self.len,
                        got,
                    });
                }
                bytes.put(data);
            }
        }
        self.accept(bytes.freeze())
    }

    /// The body, read by the caller: it must be the declared length.
    pub fn accept(self, bytes: Bytes) -> Result<KeyedBody, BodyReadError> {
        if bytes.len() != self.len {
            return Err(BodyReadError::Length {
                declared: self.len,
                got: bytes.len(),
            });
        }
        let mut hash = Sha256::new();
        // Each input with its length first, so no two different inputs hash the same bytes;
        // every line of each field, since apps differ in which of several they read.
        for lines in [&self.content_type, &self.content_encoding] {
            hash.update((lines.len() as u64).to_le_bytes());
            for line in lines {
                hash.update((line.len() as u64).to_le_bytes());
                hash.update(line.as_bytes());
            }
        }
        hash.update((bytes.len() as u64).to_le_bytes());
        hash.update(&bytes);
        let mut digest = String::with_capacity(64);
        for b in hash.finalize() {
            let _ = write!(digest, "{b:02x}");
        }
        Ok(KeyedBody(Arc::new(Keyed {
            bytes,
            digest,
            _hold: self.hold,
        })))
    }
}

/// A POST's body, read for its key: goes in the request's extensions, with the same bytes as
/// the request's body, for the [`CacheService`](crate::CacheService) to look the request up
/// by. Made by a [`BodyPermit`].
#[derive(Debug, Clone)]
pub struct KeyedBody(Arc<Keyed>);

#[derive(Debug)]
struct Keyed {
    bytes: Bytes,
    /// SHA-256 of the content type, the content coding and the body, in hex.
    digest: String,
    /// The room the bytes take, given back when the last copy of the request goes.
    _hold: Hold,
}

impl KeyedBody {
    /// The body's bytes.
    pub fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }
}

/// The key of a POST whose body was read: its URL's key (`primary`), then `#b` and the
/// body's digest (`#` follows no request target, and a variant's part starts `#v`).
pub(crate) fn with_body_key(primary: String, body: &KeyedBody) -> String {
    let mut key = primary;
    key.push_str("#b");
    key.push_str(&body.0.digest);
    key
}

/// Whether the body of this request may be read for its key (see the module's docs).
pub(crate) fn permit(
    state: &LayerState,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<BodyPermit, Refused> {
    if method != Method::POST || !state.keys_bodies() {
        return Err(Refused::NotKeyed);
    }
    let pass = |why| Err(Refused::Pass(Unkeyed(why)));
    let Ok(path) = crate::path::canonical(uri.path()) else {
        return Err(Refused::NotKeyed);
    };
    let Ok(cfg) = state.route(&Method::POST, &path) else {
        return Err(Refused::NotKeyed);
    };
    let Some(max) = cfg.key_body.filter(|_| !cfg.bypass) else {
        return Err(Refused::NotKeyed);
    };
    if let Some(reason) = crate::service::bypass_reason(headers, false) {
        return pass(reason);
    }
    let credentials = Credentials::of(headers, &cfg);
    if credentials.authorization {
        return pass("authorization");
    }
    if credentials.cookie {
        return pass("cookie");
    }
    if is_conditional(headers) {
        return pass("conditional");
    }
    let Some(len) = declared_length(headers) else {
        return pass("body-unsized");
    };
    if len > max {
        return pass("body-too-large");
    }
    let mut hold = Hold::new(&state.budgets, &state.cache);
    if !hold.try_grow(len as u64) {
        return pass("no-room");
    }
    Ok(BodyPermit {
        len,
        idle: cfg.body_idle_timeout,
        hold,
        content_type: lines(headers, header::CONTENT_TYPE),
        content_encoding: lines(headers, header::CONTENT_ENCODING),
    })
}

fn lines(headers: &HeaderMap, name: header::HeaderName) -> Vec<HeaderValue> {
    headers.get_all(name).iter().cloned().collect()
}

/// Preconditions on a POST ask the origin to decide (RFC 9110 §13.2.1): never the cache.
fn is_conditional(headers: &HeaderMap) -> bool {
    [
        header::IF_MATCH,
        header::IF_NONE_MATCH,
        header::IF_MODIFIED_SINCE,
        header::IF_UNMODIFIED_SINCE,
        header::IF_RANGE,
    ]
    .iter()
    .any(|h| headers.contains_key(h))
}

/// One `Content-Length` of digits, without `Transfer-Encoding` (which would override it).
fn declared_length(headers: &HeaderMap) -> Option<usize> {
    if headers.contains_key(header::TRANSFER_ENCODING) {
        return None;
    }
    let mut values = headers.get_all(header::CONTENT_LENGTH).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let text = value.to_str().ok()?;
    if text.is_empty() || text.len() > 19 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_one_plain_content_length_is_a_declared_length() {
        let of = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (n, v) in pairs {
                h.append(
                    http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                    HeaderValue::from_str(v).unwrap(),
                );
            }
            declared_length(&h)
        };
        assert_eq!(of(&[("content-length", "12")]), Some(12));
        assert_eq!(of(&[("content-length", "0")]), Some(0));
        assert_eq!(of(&[]), None);
        assert_eq!(of(&[("content-length", "+1")]), None);
        assert_eq!(of(&[("content-length", "1, 1")]), None);
        assert_eq!(
            of(&[("content-length", "1"), ("content-length", "1")]),
            None
        );
        assert_eq!(of(&[("content-length", "99999999999999999999")]), None);
        assert_eq!(
            of(&[("content-length", "5"), ("transfer-encoding", "chunked")]),
            None
        );
    }
}
