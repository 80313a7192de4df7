//! Per-entry options: how long an entry is fresh, how long it may serve as a fallback, how long a
//! factory may take, when to refresh early, its tags and namespace.

use std::sync::Arc;
use std::time::Duration;

/// Options for an entry. Set on the cache as defaults with
/// [`CacheBuilder::default_options`](crate::CacheBuilder::default_options); any field set on a
/// per-call `EntryOptions` overrides the default, unset fields inherit it.
///
/// ```
/// use std::time::Duration;
/// use larder::EntryOptions;
///
/// let opts = EntryOptions::new()
///     .ttl(Duration::from_secs(300))
///     .stale(Duration::from_secs(3600)) // serve up to 1 h past ttl if the source fails
///     .soft_timeout(Duration::from_millis(100))
///     .hard_timeout(Duration::from_secs(2))
///     .eager_refresh(0.8)
///     .tags(["user:42"]);
/// assert_eq!(opts.ttl_ref(), Some(&Duration::from_secs(300)));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EntryOptions {
    pub(crate) ttl: Option<Duration>,
    pub(crate) stale: Option<Duration>,
    pub(crate) soft_timeout: Option<Duration>,
    pub(crate) hard_timeout: Option<Duration>,
    pub(crate) eager_refresh: Option<f64>,
    pub(crate) fail_safe_throttle: Option<Duration>,
    pub(crate) remote_write: Option<RemoteWrite>,
    pub(crate) lock_wait: Option<Duration>,
    pub(crate) lock_expiry: Option<Duration>,
    pub(crate) tags: Option<Arc<[Arc<str>]>>,
    pub(crate) namespace: Option<Arc<str>>,
}

/// When a write to a two-tier cache reaches the remote store, relative to the call that made it.
///
/// ```
/// use larder::{EntryOptions, RemoteWrite};
/// // Return as soon as this node's memory holds the value; the store and the backplane follow.
/// let opts = EntryOptions::new().remote_write(RemoteWrite::Background);
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum RemoteWrite {
    /// The call returns once the store has the value and the backplane has been told (default):
    /// any process that reads after that sees it.
    #[default]
    Awaited,
    /// The call returns once this node's memory has the value; the store write and the
    /// backplane message run in a task of their own. Faster writes, and other processes catch up
    /// a moment later. Outside a tokio runtime the write is awaited anyway.
    Background,
}

impl EntryOptions {
    /// No field set: everything is inherited from the cache's defaults.
    pub const fn new() -> Self {
        Self {
            ttl: None,
            stale: None,
            soft_timeout: None,
            hard_timeout: None,
            eager_refresh: None,
            fail_safe_throttle: None,
            remote_write: None,
            lock_wait: None,
            lock_expiry: None,
            tags: None,
            namespace: None,
        }
    }

    /// How long the entry is fresh. `Duration::MAX` means it never expires.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = Some(ttl);
        self
    }

    /// The fail-safe window: how long past its ttl the entry is kept to be served when the factory
    /// fails or times out. `Duration::ZERO` (the default) turns fail-safe off.
    pub fn stale(mut self, stale: Duration) -> Self {
        self.stale = Some(stale);
        self
    }

    /// When a stale value is at hand and the factory has not answered after this long, return the
    /// stale value and let the factory finish in the background.
    pub fn soft_timeout(mut self, timeout: Duration) -> Self {
        self.soft_timeout = Some(timeout);
        self
    }

    /// Stop the factory after this long: the caller gets the stale value if there is one, or
    /// [`FetchError::Timeout`](crate::FetchError::Timeout).
    pub fn hard_timeout(mut self, timeout: Duration) -> Self {
        self.hard_timeout = Some(timeout);
        self
    }

    /// A hit on an entry older than this fraction of its ttl (0.0 < f < 1.0) returns the value and
    /// starts one background refresh. Values outside (0, 1) turn eager refresh off.
    pub fn eager_refresh(mut self, fraction: f64) -> Self {
        self.eager_refresh = Some(fraction);
        self
    }

    /// After fail-safe served a stale value because the factory failed or hit its hard timeout,
    /// keep serving that value as if fresh for this long (default 30 s, never past its stale
    /// window) instead of calling the failing source again on the next request. One call per
    /// window then retries the source. `Duration::ZERO` retries on every request.
    ///
    /// Applies to the memory tier (the stale value is not written back to a remote store, where
    /// another process may hold a fresh one).
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = larder::EntryOptions::new()
    ///     .stale(Duration::from_secs(3600))
    ///     .fail_safe_throttle(Duration::from_secs(5));
    /// # let _ = opts;
    /// ```
    pub fn fail_safe_throttle(mut self, throttle: Duration) -> Self {
        self.fail_safe_throttle = Some(throttle);
        self
    }

    /// Whether writes wait for the remote store and the backplane (the default) or leave them to a
    /// background task; see [`RemoteWrite`].
    pub fn remote_write(mut self, mode: RemoteWrite) -> Self {
        self.remote_write = Some(mode);
        self
    }

    /// Stampede protection across processes: on a miss, take a lock in the remote store before
    /// running the factory, so that of all the processes missing this key at once, one runs it
    /// and the others wait up to `wait` and then read its value from the store. The lock expires
    /// after [`lock_expiry`](Self::lock_expiry) if its holder dies; a caller that cannot get the
    /// lock or the value within `wait` runs the factory itself. Never a deadlock, never an error.
    ///
    /// Within one process callers already share one run; this extends that to every process that
    /// shares the store. It needs a store with locks (Redis, Memcached); on a cache without a
    /// remote store it does nothing beyond that, and the cache logs a warning saying so, once.
    /// `Duration::ZERO` turns it off.
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = larder::EntryOptions::new()
    ///     .distributed_lock(Duration::from_secs(5))
    ///     .lock_expiry(Duration::from_secs(10));
    /// # let _ = opts;
    /// ```
    pub fn distributed_lock(mut self, wait: Duration) -> Self {
        self.lock_wait = Some(wait);
        self
    }

    /// How long a distributed lock lives if its holder never releases it (default 30 s). Set it
    /// above the factory's longest run: past it, another process may run the factory too.
    pub fn lock_expiry(mut self, expiry: Duration) -> Self {
        self.lock_expiry = Some(expiry);
        self
    }

    /// Tags for [`Cache::invalidate_tag`](crate::Cache::invalidate_tag).
    pub fn tags<I, S>(mut self, tags: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<Arc<str>>,
    {
        self.tags = Some(tags.into_iter().map(Into::into).collect());
        self
    }

    /// The namespace the key lives in; [`Cache::clear`](crate::Cache::clear) empties one.
    pub fn namespace(mut self, namespace: impl Into<Arc<str>>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// The ttl, if set. (`_ref`, as `http::request::Builder::method_ref`: `ttl` is the setter.)
    ///
    /// ```
    /// use std::time::Duration;
    /// let opts = larder::EntryOptions::new().ttl(Duration::from_secs(9));
    /// assert_eq!(opts.ttl_ref(), Some(&Duration::from_secs(9)));
    /// ```
    pub fn ttl_ref(&self) -> Option<&Duration> {
        self.ttl.as_ref()
    }

    /// The namespace, if set.
    ///
    /// ```
    /// let opts = larder::EntryOptions::new().namespace("users");
    /// assert_eq!(opts.namespace_ref(), Some("users"));
    /// ```
    pub fn namespace_ref(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    /// Fields set in `self` win; unset ones come from `defaults`.
    pub(crate) fn or(&self, defaults: &Resolved) -> Resolved {
        Resolved {
            ttl: self.ttl.unwrap_or(defaults.ttl),
            stale: self.stale.unwrap_or(defaults.stale),
            soft_timeout: self.soft_timeout.or(defaults.soft_timeout),
            hard_timeout: self.hard_timeout.or(defaults.hard_timeout),
            eager_refresh: match self.eager_refresh {
                Some(f) => valid_fraction(f),
                None => defaults.eager_refresh,
            },
            fail_safe_throttle: self
                .fail_safe_throttle
                .unwrap_or(defaults.fail_safe_throttle),
            remote_write: self.remote_write.unwrap_or(defaults.remote_write),
            lock_wait: match self.lock_wait {
                Some(w) => (!w.is_zero()).then_some(w),
                None => defaults.lock_wait,
            },
            lock_expiry: self.lock_expiry.unwrap_or(defaults.lock_expiry),
            tags: self.tags.clone().or_else(|| defaults.tags.clone()),
            namespace: self
                .namespace
                .clone()
                .unwrap_or_else(|| defaults.namespace.clone()),
        }
    }
}

/// An eager-refresh fraction, or `None` (off) when it is outside (0, 1) or NaN.
pub(crate) fn valid_fraction(f: f64) -> Option<f64> {
    (f > 0.0 && f < 1.0).then_some(f)
}

/// Options with every field decided.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub ttl: Duration,
    pub stale: Duration,
    pub soft_timeout: Option<Duration>,
    pub hard_timeout: Option<Duration>,
    pub eager_refresh: Option<f64>,
    pub fail_safe_throttle: Duration,
    pub remote_write: RemoteWrite,
    /// How long a miss waits on another process's distributed lock; `None`: no lock.
    pub lock_wait: Option<Duration>,
    pub lock_expiry: Duration,
    pub tags: Option<Arc<[Arc<str>]>>,
    pub namespace: Arc<str>,
}

impl Resolved {
    /// The built-in defaults: 5 minutes fresh, no fail-safe (a 30 s throttle once it is on), no
    /// timeouts, no eager refresh.
    pub(crate) fn builtin() -> Self {
        Self {
            ttl: Duration::from_secs(300),
            stale: Duration::ZERO,
            soft_timeout: None,
            hard_timeout: None,
            eager_refresh: None,
            fail_safe_throttle: Duration::from_secs(30),
            remote_write: RemoteWrite::Awaited,
            lock_wait: None,
            lock_expiry: Duration::from_secs(30),
            tags: None,
            namespace: Arc::from(""),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_call_fields_override_defaults_and_unset_ones_inherit() {
        let defaults = EntryOptions::new()
            .ttl(Duration::from_secs(10))
            .stale(Duration::from_secs(20))
            .namespace("app")
            .or(&Resolved::builtin());
        let r = EntryOptions::new()
            .ttl(Duration::from_secs(1))
            .or(&defaults);
        assert_eq!(r.ttl, Duration::from_secs(1));
        assert_eq!(r.stale, Duration::from_secs(20));
        assert_eq!(&*r.namespace, "app");
    }

    #[test]
    fn eager_refresh_outside_unit_interval_is_off() {
        let base = Resolved::builtin();
        assert_eq!(
            EntryOptions::new()
                .eager_refresh(1.5)
                .or(&base)
                .eager_refresh,
            None
        );
        assert_eq!(
            EntryOptions::new()
                .eager_refresh(0.0)
                .or(&base)
                .eager_refresh,
            None
        );
        assert_eq!(
            EntryOptions::new()
                .eager_refresh(f64::NAN)
                .or(&base)
                .eager_refresh,
            None
        );
        assert_eq!(
            EntryOptions::new()
                .eager_refresh(0.5)
                .or(&base)
                .eager_refresh,
            Some(0.5)
        );
    }
}
