//! The synchronous hit path: a response in the memory tier, fresh for this request, answered
//! without leaving `call`.

use http::Response;
use http::request::Parts;

use crate::answer::serve;
use crate::body::CacheBody;
use crate::config::Config;
use crate::directives::CacheControl;
use crate::headers::CacheStatus;
use crate::policy::{self, Credentials, Verdict};
use crate::state::LayerState;
use crate::stored::{CachedResponse, Kept, Stored};
use crate::vary::VaryIndex;
use crate::vary::{self, Select};

/// A hit, and the stored response again when it is due for an early refresh (the rule's
/// `eager_refresh`), with the URL's Vary index.
pub(crate) struct Hit<B> {
    pub response: Response<CacheBody<B>>,
    pub refresh: Option<(Kept, Option<VaryIndex>)>,
}

/// The synchronous hit path: a response in the memory tier, fresh for this request.
pub(crate) fn fresh_memory_hit<B>(
    state: &LayerState,
    cfg: &Config,
    key: &str,
    parts: &Parts,
    request_cc: &CacheControl,
) -> Option<Hit<B>> {
    let found = match state.cache.get::<Stored>(key).try_ready() {
        Ok(Ok(Some(found))) => found,
        _ => return None,
    };
    let (response, index) = match vary::select(cfg, key, &found, &parts.headers) {
        Select::Response(response) => (response, None),
        Select::Variant { index, key } => match state.cache.get::<Stored>(&key).try_ready() {
            Ok(Ok(Some(v))) => (Stored::kept(&v)?, Some(index)),
            _ => return None,
        },
        Select::Nothing => return None,
    };
    let now = cfg.now_ms();
    let credentials = Credentials::of(&parts.headers, cfg);
    match policy::judge(&response, request_cc, credentials, now) {
        Verdict::Fresh => Some(Hit {
            response: serve(state, &response, parts, CacheStatus::Hit, now),
            refresh: due_for_refresh(cfg, &response, now).then(|| (response, index.cloned())),
        }),
        Verdict::StaleAllowed => Some(Hit {
            response: serve(state, &response, parts, CacheStatus::Stale, now),
            refresh: None,
        }),
        _ => None,
    }
}

/// Whether a fresh response has lived the rule's eager-refresh fraction of its lifetime.
pub(crate) fn due_for_refresh(cfg: &Config, response: &CachedResponse, now_ms: u64) -> bool {
    cfg.eager_refresh.is_some_and(|fraction| {
        response.lifetime > 0 && response.age(now_ms) as f64 >= fraction * response.lifetime as f64
    })
}
