//! Storing a response once it is complete: under its key, or under its variant's key with the
//! URL's Vary index beside it.

use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode, header};
use larder::EntryOptions;

use crate::conditional;
use crate::config::Mode;
use crate::policy::{Exchange, Plan};
use crate::state::LayerState;
use crate::stored::{CachedResponse, Stored};
use crate::vary::VaryIndex;

/// Everything needed to store a recorded response once its body has ended.
pub(crate) struct StoreJob {
    pub state: Arc<LayerState>,
    pub key: String,
    pub index: Option<VaryIndex>,
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub tags: Vec<String>,
    pub client_headers: HeaderMap,
    pub times: Exchange,
    pub plan: Plan,
}

impl StoreJob {
    /// Waits for this body's turn to be stored.
    ///
    /// Storing copies the body where no budget holds the copies: into one piece, and for a
    /// remote store into the encoded envelope and the store client's command. Large bodies take
    /// turns, so those copies stay within one store gate (the largest body stored, at least
    /// 1 MiB) across all fills, instead of one set per fill finishing at once. The turn is taken
    /// before the body is put in one piece, so a fill waiting for it holds only its recording,
    /// which the budgets count. Small bodies take few permits and rarely wait.
    pub async fn turn(&self, len: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        let want = len.clamp(
            1,
            crate::state::gate_permits(self.state.current().config.max_body),
        );
        self.state
            .store_gate
            .clone()
            .acquire_many_owned(u32::try_from(want).unwrap_or(u32::MAX))
            .await
            .ok()
    }

    /// Stores the recorded response; `lead` is the fill's hold on its key, so storing does not
    /// supersede the fill itself.
    pub async fn store(self, body: Bytes, lead: Option<&larder::engine::FillLead>) {
        let cfg = self.state.config();
        let mut headers = self.headers;
        if !headers.contains_key(header::DATE) {
            // RFC 9110 §6.6.1: a recipient with a clock records when it received a response
            // that has no Date.
            set_date(&mut headers, self.times.response_ms);
        }
        if cfg.etag_from_body
            && matches!(cfg.mode, Mode::Application { .. })
            && self.status == StatusCode::OK
            && !headers.contains_key(header::ETAG)
        {
            headers.insert(header::ETAG, conditional::body_etag(&body));
        }
        let body = compress_stored(&cfg.compression, self.status, &mut headers, body).await;
        let response = CachedResponse {
            status: self.status,
            headers,
            body,
            response_time_ms: self.times.response_ms,
            initial_age: self.plan.initial_age,
            lifetime: self.plan.lifetime,
            rules: self.plan.rules,
            tags: self.tags,
        };
        write(
            &self.state,
            &self.key,
            self.index,
            &self.plan,
            &self.client_headers,
            response,
            lead,
        )
        .await;
    }
}

/// Writes a response under its key (or under its variant's key, updating the Vary index).
pub(crate) async fn write(
    state: &LayerState,
    key: &str,
    index: Option<VaryIndex>,
    plan: &Plan,
    client_headers: &HeaderMap,
    response: CachedResponse,
    lead: Option<&larder::engine::FillLead>,
) {
    let keep = plan.keep_secs(response.has_validator(), &state.current().config);
    if keep == 0 {
        return;
    }
    let ttl = Duration::from_secs(keep);
    let opts = EntryOptions::new()
        .ttl(ttl)
        .tags(response.tags.iter().map(String::as_str));
    let value = Stored::Response(Arc::new(response));
    let cache = &state.cache;
    // Under the primary key, the fill stores as itself (it does not supersede itself); a
    // variant's key has no fill of its own.
    let result = if plan.varied().is_empty() {
        match lead {
            Some(lead) => lead.set_with(cache, key, value, opts).await,
            None => cache.set_with(key, value, opts).await,
        }
    } else {
        let nonce = match index {
            Some(i) if i.headers == plan.vary && i.cookies == plan.vary_cookies => i.nonce,
            _ => {
                let index = VaryIndex {
                    headers: plan.vary.clone(),
                    cookies: plan.vary_cookies.clone(),
                    nonce: new_nonce(),
                };
                let nonce = index.nonce;
                let index_ttl = ttl.saturating_add(state.current().config.keep_stale);
                let index_opts = EntryOptions::new().ttl(index_ttl);
                let stored = Stored::Variants(index);
                let written = match lead {
                    Some(lead) => lead.set_with(cache, key, stored, index_opts).await,
                    None => cache.set_with(key, stored, index_opts).await,
                };
                if let Err(e) = written {
                    tracing::warn!(key, error = %e, "larder-http: could not store a Vary index");
                    return;
                }
                nonce
            }
        };
        let variant = crate::vary::variant_key(key, nonce, plan.varied(), client_headers);
        cache.set_with(&variant, value, opts).await
    };
    if let Err(e) = result {
        tracing::warn!(key, error = %e, "larder-http: could not store a response");
    }
}

/// The body as it is stored: compressed once, in the first configured coding, when it is of a
/// compressible type and the origin sent it uncompressed (see `coding`); the headers say so. A
/// large body is compressed on a blocking thread, not on the runtime's.
async fn compress_stored(
    cfg: &crate::Compression,
    status: StatusCode,
    headers: &mut HeaderMap,
    body: Bytes,
) -> Bytes {
    let Some(coding) = crate::coding::store_coding(cfg, status, headers, body.len()) else {
        return body;
    };
    let level = cfg.level;
    let packed = if body.len() < 64 << 10 {
        crate::coding::compress(coding, level, &body)
    } else {
        let whole = body.clone();
        tokio::task::spawn_blocking(move || crate::coding::compress(coding, level, &whole))
            .await
            .unwrap_or_else(|_| Err(std::io::Error::other("the compression task failed")))
    };
    match packed {
        // Worth it only when smaller (an already compressed payload in a text type is not).
        Ok(packed) if packed.len() < body.len() => {
            headers.insert(
                header::CONTENT_ENCODING,
                HeaderValue::from_static(coding.as_str()),
            );
            if headers.contains_key(header::CONTENT_LENGTH) {
                headers.insert(header::CONTENT_LENGTH, HeaderValue::from(packed.len()));
            }
            headers.remove(header::ACCEPT_RANGES);
            crate::coding::weaken_etag(headers);
            Bytes::from(packed)
        }
        Ok(_) => body,
        Err(e) => {
            tracing::warn!(error = %e, "larder-http: could not compress a body; stored as it came");
            body
        }
    }
}

pub(crate) fn set_date(headers: &mut HeaderMap, unix_ms: u64) {
    let at = UNIX_EPOCH + Duration::from_millis(unix_ms);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
        headers.insert(header::DATE, v);
    }
}

/// A nonce no other index is likely to have had: the clock mixed with a per-process random key.
fn new_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}
