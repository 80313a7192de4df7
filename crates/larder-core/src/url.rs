//! The store (and backplane) a URL names, for [`Cache::from_url`](crate::Cache::from_url).

use std::sync::Arc;

use larder_store::{Backplane, Store};

use crate::error::{Error, ErrorKind};

/// What a URL sets up besides the memory tier.
#[derive(Default)]
pub(crate) struct Links {
    pub store: Option<Arc<dyn Store>>,
    pub backplane: Option<Arc<dyn Backplane>>,
}

/// The remote store a URL names, and for Redis its backplane too (unless `backplane=off`).
pub(crate) fn links_from_url(url: &str) -> Result<Links, Error> {
    let scheme = url.split_once("://").map_or(url, |(s, _)| s);
    if !matches!(
        scheme,
        "redis" | "rediss" | "redis+cluster" | "rediss+cluster" | "redis+unix" | "unix"
    ) {
        return Ok(Links {
            store: store_from_url(url)?,
            backplane: None,
        });
    }
    redis(url).map_err(|e| {
        e.unwrap_or_else(|| {
            Error::from(ErrorKind::Url {
                url: larder_store::redact_url(url),
                reason: "Redis support is not compiled in: enable larder's `redis` feature",
            })
        })
    })
}

/// `None` for the memory tier alone, else the remote store.
fn store_from_url(url: &str) -> Result<Option<Arc<dyn Store>>, Error> {
    let unusable = |reason| {
        Error::from(ErrorKind::Url {
            url: larder_store::redact_url(url),
            reason,
        })
    };
    let Some((scheme, _)) = url.split_once("://") else {
        // "memory" or "redis" alone: a scheme is what a URL starts with, then "://".
        return Err(unusable(
            "not a URL: write scheme://..., such as memory:// or redis://127.0.0.1:6379",
        ));
    };
    match scheme {
        "memory" => Ok(None),
        "memcached" => memcached(url).map_err(|e| {
            e.unwrap_or_else(|| {
                unusable(
                    "Memcached support is not compiled in: enable larder's `memcached` feature",
                )
            })
        }),
        _ => Err(unusable(
            "unknown scheme (memory://, redis://, rediss://, redis+cluster://, memcached://)",
        )),
    }
}

/// `Err(None)`: the feature is off.
#[cfg(feature = "redis")]
fn redis(url: &str) -> Result<Links, Option<Error>> {
    let store = larder_redis::RedisStore::open(url)
        .map_err(|e| Some(ErrorKind::Store(Arc::new(e)).into()))?;
    let backplane: Option<Arc<dyn Backplane>> = store
        .wants_backplane()
        .then(|| Arc::new(store.backplane()) as Arc<dyn Backplane>);
    Ok(Links {
        store: Some(Arc::new(store)),
        backplane,
    })
}

#[cfg(not(feature = "redis"))]
fn redis(_: &str) -> Result<Links, Option<Error>> {
    Err(None)
}

#[cfg(feature = "memcached")]
fn memcached(url: &str) -> Result<Option<Arc<dyn Store>>, Option<Error>> {
    match larder_memcached::MemcachedStore::open(url) {
        Ok(store) => Ok(Some(Arc::new(store))),
        Err(e) => Err(Some(ErrorKind::Store(Arc::new(e)).into())),
    }
}

#[cfg(not(feature = "memcached"))]
fn memcached(_: &str) -> Result<Option<Arc<dyn Store>>, Option<Error>> {
    Err(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_needs_no_store_and_unknown_schemes_are_errors() {
        assert!(store_from_url("memory://").unwrap().is_none());
        assert!(links_from_url("memory://").unwrap().backplane.is_none());
        for bare in ["memory", "memory:/", ""] {
            let err = store_from_url(bare).err().unwrap().to_string();
            assert!(err.contains("scheme://"), "{bare}: {err}");
        }
        let err = store_from_url("ftp://user:secret@h/x")
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("unknown scheme") && !err.contains("secret"),
            "{err}"
        );
    }
}
