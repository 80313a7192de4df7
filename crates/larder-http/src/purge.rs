//! Purging stored responses: by key, by URL, by tag, or all of a layer's.

use std::sync::Arc;

use crate::state::LayerState;
use crate::stats::LayerStats;

/// Why a purge could not run.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PurgeError {
    /// The URL given to [`Purger::purge_url`] does not parse.
    #[error("not a URL the cache could have stored: {url:?}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
    },
    /// A purge by prefix on a layer that does not tag entries by prefix
    /// ([`CacheLayer::prefix_purge_depth`](crate::CacheLayer::prefix_purge_depth) is 0).
    #[error("purging by prefix is off: set the layer's prefix_purge_depth")]
    PrefixesOff,
    /// A prefix with more path segments than entries are tagged with.
    #[error("the prefix {prefix:?} has more than {depth} path segments; purge it by URL or tag")]
    PrefixTooDeep {
        /// The prefix as given.
        prefix: String,
        /// The layer's prefix depth.
        depth: usize,
    },
}

/// Removes stored responses of one [`CacheLayer`](crate::CacheLayer), in this process's memory
/// tier and in the shared store, and stops fetches in flight for them from being stored; also
/// reports the layer's [`stats`](Self::stats).
///
/// Get one from [`CacheLayer::purger`](crate::CacheLayer::purger); clones share everything.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let layer = larder_http::CacheLayer::shared(larder::Cache::new());
/// let purger = layer.purger();
/// purger.purge_url("http://api.test/users?limit=10&skip=0").await.unwrap();
/// purger.purge_tag("user-42").await;
/// # }
/// ```
#[derive(Clone)]
pub struct Purger {
    pub(crate) state: Arc<LayerState>,
}

impl std::fmt::Debug for Purger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Purger")
            .field("namespace", &self.state.current().config.namespace)
            .finish()
    }
}

impl Purger {
    /// Removes the response(s) under a primary key, as the layer's key function builds it (the
    /// default is host + path + `?` + sorted query, e.g. `api.test/users?limit=10&skip=0`). Every
    /// variant of a `Vary` response goes with it. Whether anything was stored.
    pub async fn purge_key(&self, key: &str) -> bool {
        invalidate(&self.state, key).await
    }

    /// Removes the responses stored for a URL: absolute (`http://host/path?q`) or a path with
    /// query, where the host is then empty as for a request without `Host`. The query may be in
    /// any order and encoding; it is normalized as the request's was. With a custom key function,
    /// use [`purge_key`](Self::purge_key). Whether anything was stored.
    pub async fn purge_url(&self, url: &str) -> Result<bool, PurgeError> {
        let invalid = || PurgeError::InvalidUrl {
            url: url.to_owned(),
        };
        let (host, uri) = self.host_and_uri(url)?;
        let config = self.state.config_for(&http::Method::GET, uri.path());
        let key = crate::key::primary_key(&host, &uri, &config.query).ok_or_else(invalid)?;
        Ok(invalidate(&self.state, &key).await)
    }

    /// Removes every response stored under a path prefix, at segment boundaries: `/users`
    /// takes `/users`, `/users?skip=20` and `/users/42/orders`, not `/usersettings`. The
    /// prefix is a path or an absolute URL, as for [`purge_url`](Self::purge_url); `/` purges
    /// everything. Entries carry a tag per leading path segment, so it is one tag invalidation
    /// (in every process sharing the store); that needs
    /// [`CacheLayer::prefix_purge_depth`](crate::CacheLayer::prefix_purge_depth), and a prefix
    /// no deeper than it.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let purger = larder_http::CacheLayer::shared(larder::Cache::new()).prefix_purge_depth(3).purger();
    /// purger.purge_prefix("/users").await.unwrap();
    /// assert!(purger.purge_prefix("/a/b/c/d").await.is_err());
    /// # }
    /// ```
    pub async fn purge_prefix(&self, prefix: &str) -> Result<(), PurgeError> {
        let (host, uri) = self.host_and_uri(prefix)?;
        invalidate_prefix(&self.state, &host, uri.path()).await
    }

    /// The host a purged URL's keys use, and the URL parsed.
    fn host_and_uri(&self, url: &str) -> Result<(String, http::Uri), PurgeError> {
        let invalid = || PurgeError::InvalidUrl {
            url: url.to_owned(),
        };
        let uri: http::Uri = url.parse().map_err(|_| invalid())?;
        let host = match (self.state.fixed_host(), uri.authority()) {
            (Some((fixed, _)), _) => fixed.clone(),
            (None, Some(auth)) => {
                crate::host::normalize(auth.as_str(), uri.scheme_str()).ok_or_else(invalid)?
            }
            (None, None) => String::new(),
        };
        Ok((host, uri))
    }

    /// Removes every response the service tagged with `tag` (in the layer's tag header,
    /// `Surrogate-Key` by default).
    pub async fn purge_tag(&self, tag: &str) {
        self.state.cache.invalidate_tag(tag).await;
    }

    /// How many responses are being fetched and recorded right now, shared by the requests that
    /// asked for them (a gauge for metrics; tests wait for it to reach 0 before checking what
    /// was stored).
    ///
    /// ```
    /// let purger = larder_http::CacheLayer::shared(larder::Cache::new()).purger();
    /// assert_eq!(purger.fetches_in_flight(), 0);
    /// ```
    pub fn fetches_in_flight(&self) -> usize {
        self.state.recordings.len()
    }

    /// This layer's counters: fills, fills streamed unrecorded, stalled or abandoned, response
    /// timeouts, refused requests, and the bytes recordings hold now (see [`LayerStats`]).
    ///
    /// ```
    /// let purger = larder_http::CacheLayer::shared(larder::Cache::new()).purger();
    /// assert_eq!(purger.stats().fills_stalled, 0);
    /// ```
    pub fn stats(&self) -> LayerStats {
        LayerStats::read(
            &self.state.counters,
            self.state.budgets.layer.used(),
            self.state.recordings.len(),
        )
    }

    /// Removes every response this layer stored (its namespace of the cache).
    pub async fn purge_all(&self) {
        self.state.cache.clear().await;
    }
}

/// Removes a primary key's entry (a response, or the Vary index whose nonce its variants' keys
/// carry, which orphans them) and stops a fetch in flight for it from being stored.
pub(crate) async fn invalidate(state: &LayerState, key: &str) -> bool {
    if state.keys_bodies() {
        // The POSTs keyed on a body under this URL.
        state.cache.invalidate_tag(&crate::key::body_tag(key)).await;
    }
    state.cache.delete(key).await
}

/// Removes every entry under `path` on `host` (see [`Purger::purge_prefix`]).
pub(crate) async fn invalidate_prefix(
    state: &LayerState,
    host: &str,
    path: &str,
) -> Result<(), PurgeError> {
    let depth = state.current().config.prefix_purge_depth;
    if depth == 0 {
        return Err(PurgeError::PrefixesOff);
    }
    let invalid = || PurgeError::InvalidUrl {
        url: path.to_owned(),
    };
    let uri: http::Uri = path.parse().map_err(|_| invalid())?;
    let key =
        crate::key::primary_key(host, &uri, &crate::key::QueryKey::Ignore).ok_or_else(invalid)?;
    let prefix = key.trim_end_matches('?').trim_end_matches('/');
    let segments = prefix.len().saturating_sub(host.len());
    if segments == 0 {
        state.cache.clear().await;
        return Ok(());
    }
    let tags = crate::key::prefix_tags(prefix, depth + 1);
    if tags.len() > depth {
        return Err(PurgeError::PrefixTooDeep {
            prefix: path.to_owned(),
            depth,
        });
    }
    let Some(tag) = tags.last() else {
        return Err(invalid());
    };
    state.cache.invalidate_tag(tag).await;
    Ok(())
}
