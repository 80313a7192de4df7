//! The fill's lock across processes sharing the store: taken by this process's leader, or the
//! response another process stored while this one waited, served here.

use super::Fill;
use std::sync::Arc;

use http::Response;
use http::request::Parts;

use crate::answer::serve;
use crate::body::CacheBody;
use crate::coalesce::LeadGuard;
use crate::directives::CacheControl;
use crate::headers::{CacheStatus, Outcome};
use crate::policy::{self, Credentials, Verdict};
use crate::recording::Head;
use crate::stored::Stored;
use crate::vary::{self, Select, VaryIndex};
use larder::engine::KeyLocked;

/// What the lock across processes gave a fill's leader.
pub(super) enum Across<B> {
    /// Another process filled the key meanwhile: this response answers the request.
    Served(Response<CacheBody<B>>),
    /// This process fills the key, holding the lock.
    Held(larder::engine::KeyLock),
    /// No lock to be had (none configured, no remote store, or the wait ran out): fill anyway.
    Alone,
}

impl Fill {
    /// The fill's lock across processes (when the layer has one): taken, or another process's
    /// response, stored while this one waited, served here and to this process's followers.
    pub(super) async fn across_processes<B>(
        &self,
        parts: &Parts,
        guard: &mut LeadGuard,
    ) -> Across<B> {
        let Some((wait, expiry)) = self.cfg.lock else {
            return Across::Alone;
        };
        let cache = &self.state.cache;
        let stored = match cache.lock_key::<Stored>(&self.key, wait, expiry).await {
            KeyLocked::Held(lock) => return Across::Held(lock),
            KeyLocked::Found(stored) => stored,
            _ => return Across::Alone,
        };
        let (response, index) = match vary::select(&self.cfg, &self.key, &stored, &parts.headers) {
            Select::Response(response) => (response, None),
            Select::Variant { index, key } => {
                match cache
                    .get::<Stored>(&key)
                    .await
                    .ok()
                    .flatten()
                    .as_ref()
                    .and_then(Stored::kept)
                {
                    Some(response) => (response, Some(index)),
                    None => return Across::Alone,
                }
            }
            Select::Nothing => return Across::Alone,
        };
        let unvaried = crate::vary::Varied {
            headers: &[],
            cookies: &[],
        };
        let varied = index.map_or(unvaried, VaryIndex::varied);
        let now = self.cfg.now_ms();
        let request_cc = CacheControl::of_request(&parts.headers);
        let credentials = Credentials::of(&parts.headers, &self.cfg);
        if policy::judge(&response, &request_cc, credentials, now) != Verdict::Fresh {
            return Across::Alone;
        }
        let recording = guard.recording();
        recording.set_head(Arc::new(Head::stored(
            &response,
            varied,
            &parts.headers,
            response.age(now),
        )));
        recording.replay(response.body());
        let outcome = Outcome {
            collapsed: true,
            ..Outcome::from(CacheStatus::Hit)
        };
        Across::Served(serve(&self.state, &response, parts, outcome, now))
    }
}
