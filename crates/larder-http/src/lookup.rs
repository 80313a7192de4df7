//! Finding what the cache holds for a request through every tier (the async lookup; the
//! synchronous memory hit is in `hit`).

use http::HeaderMap;

use crate::config::Config;
use crate::state::LayerState;
use crate::stored::{Kept, Stored};
use crate::vary::VaryIndex;
use crate::vary::{self, Select};

/// What the cache holds for a request: the Vary index (when the URL varies) and the response
/// that matches this request's variant.
#[derive(Default)]
pub(crate) struct Found {
    pub index: Option<VaryIndex>,
    pub response: Option<Kept>,
}

pub(crate) async fn lookup(
    state: &LayerState,
    cfg: &Config,
    key: &str,
    headers: &HeaderMap,
) -> Found {
    let Ok(Some(stored)) = state.cache.get::<Stored>(key).await else {
        return Found::default();
    };
    match vary::select(cfg, key, &stored, headers) {
        Select::Response(response) => Found {
            index: None,
            response: Some(response),
        },
        Select::Variant { index, key } => Found {
            index: Some(index.clone()),
            response: match state.cache.get::<Stored>(&key).await {
                Ok(Some(v)) => Stored::kept(&v),
                _ => None,
            },
        },
        Select::Nothing => Found::default(),
    }
}
