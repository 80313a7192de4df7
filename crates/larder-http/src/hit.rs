//! The synchronous hit path: a response in the memory tier, fresh for this request, answered
//! without leaving `call`.

use http::Response;
use http::request::Parts;

use crate::answer::serve;
use crate::body::CacheBody;
use crate::config::Config;
use crate::directives::CacheControl;
use crate::headers::CacheStatus;
use crate::key;
use crate::policy::{self, Credentials, Verdict};
use crate::state::LayerState;
use crate::stored::Stored;

/// The synchronous hit path: a response in the memory tier, fresh for this request.
pub(crate) fn fresh_memory_hit<B>(
    state: &LayerState,
    cfg: &Config,
    key: &str,
    parts: &Parts,
    request_cc: &CacheControl,
) -> Option<Response<CacheBody<B>>> {
    let found = match state.cache.get::<Stored>(key).try_ready() {
        Ok(Ok(Some(found))) => found,
        _ => return None,
    };
    let response = match &*found {
        // Stored for requests without keyed inputs: not this request's variant.
        Stored::Response(_) if cfg.has_keyed_inputs(&parts.headers) => return None,
        Stored::Response(r) => r.clone(),
        Stored::Variants(index) => {
            let variant = key::variant_key(key, index.nonce, index.varied(), &parts.headers);
            match state.cache.get::<Stored>(&variant).try_ready() {
                Ok(Ok(Some(v))) => v.response()?,
                _ => return None,
            }
        }
    };
    let now = cfg.now_ms();
    let credentials = Credentials::of(&parts.headers, cfg);
    match policy::judge(&response, request_cc, credentials, now) {
        Verdict::Fresh => Some(serve(state, &response, parts, CacheStatus::Hit, now)),
        Verdict::StaleAllowed => Some(serve(state, &response, parts, CacheStatus::Stale, now)),
        _ => None,
    }
}
