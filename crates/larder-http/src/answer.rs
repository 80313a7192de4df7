//! Answering a request from a stored response: a 304 when its validators match, no body for
//! HEAD, `Age` and the cache-status headers set.

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response};

use crate::body::CacheBody;
use crate::headers::{CacheStatus, Outcome};
use crate::state::LayerState;
use crate::stored::Kept;

/// A stored response as it answers `parts`: a 304 when the client's validators match, no body
/// for HEAD, `Age` and the status header set.
pub(crate) fn serve<B>(
    state: &LayerState,
    stored: &Kept,
    parts: &Parts,
    outcome: impl Into<Outcome>,
    now_ms: u64,
) -> Response<CacheBody<B>> {
    let (code, mut headers, body) = if crate::conditional::not_modified(&parts.headers, stored) {
        let mut headers = crate::conditional::not_modified_headers(&stored.headers);
        let compression = &state.current().config.compression;
        crate::coding::vary_like(compression, &stored.headers, &mut headers);
        (http::StatusCode::NOT_MODIFIED, headers, Bytes::new())
    } else if parts.method == Method::HEAD {
        (stored.status, stored.headers.clone(), Bytes::new())
    } else {
        (stored.status, stored.headers.clone(), stored.body())
    };
    let age = stored.age(now_ms);
    let outcome: Outcome = outcome.into();
    if outcome.status == CacheStatus::Stale {
        // The one place larder-http counts a read itself: whether a stale response may answer
        // is RFC 9111's decision (max-stale, stale-while-revalidate, stale-if-error,
        // must-revalidate), made here and not in the core; everything else is counted where the
        // core resolves it (the origin call, the fill joined).
        larder::engine::served_stale(&state.cache);
    }
    let outcome = Outcome {
        age: Some(age),
        ttl: Some(stored.lifetime as i64 - age as i64),
        ..outcome
    };
    crate::headers::mark(&mut headers, &state.current().config, outcome);
    let body = if body.len() >= crate::deliver::LARGE {
        CacheBody::delivered(crate::deliver::Delivery::new(body))
    } else {
        CacheBody::full(body)
    };
    let mut response = Response::new(body);
    *response.status_mut() = code;
    *response.headers_mut() = headers;
    response
}
