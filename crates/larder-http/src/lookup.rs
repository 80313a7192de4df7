//! Finding what the cache holds for a request through every tier (the async lookup; the
//! synchronous memory hit is in `hit`).

use http::HeaderMap;

use crate::config::Config;
use crate::key;
use crate::state::LayerState;
use crate::stored::{Kept, Stored, VaryIndex};

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
    match &*stored {
        // A response stored for requests without keyed inputs is not this request's variant.
        Stored::Response(_) if cfg.has_keyed_inputs(headers) => Found::default(),
        Stored::Response(_) => Found {
            index: None,
            response: Stored::kept(&stored),
        },
        Stored::Variants(index) => {
            let variant = key::variant_key(key, index.nonce, index.varied(), headers);
            let response = match state.cache.get::<Stored>(&variant).await {
                Ok(Some(v)) => Stored::kept(&v),
                _ => None,
            };
            Found {
                index: Some(index.clone()),
                response,
            }
        }
    }
}
