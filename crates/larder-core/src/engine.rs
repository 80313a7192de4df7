//! The pieces another surface on the cache builds on: larder-http's fills (a flight that is
//! followed while it is made), the distributed lock behind them, room reserved in the memory
//! tier for a body being recorded, and the read path's resilience, written once: the call of the
//! source under the hard timeout, the soft-timeout race and the fail-safe throttle's marks, each
//! counted in the cache's own stats where it is resolved. An application using [`Cache`] does
//! not need this module.

pub use crate::fill::{FillLead, FillRole, Superseded};
pub use crate::lock::{KeyLock, KeyLocked};
pub use crate::reservation::MemoryReservation;
pub use crate::resilience::{
    Raced, SourceFailed, call_source, standing_in, stood_in, within_soft_timeout,
};

use crate::Cache;

/// Counts a stale value served because the surface's own rules allowed it: for larder-http,
/// RFC 9111's (a client's `max-stale`, `stale-while-revalidate`, `stale-if-error`, a stale
/// copy standing in for a failing or slow origin), which the core does not decide. Everything
/// else the cache's [`Stats`](crate::Stats) count is counted where the core resolves it:
/// source calls and their failures in [`call_source`], coalesced waiters and eager refreshes in
/// [`Cache::join_fill`] and [`Cache::join_fill_early`].
///
/// ```
/// let cache = larder::Cache::new();
/// larder::engine::served_stale(&cache);
/// assert_eq!(cache.stats().stale_served, 1);
/// ```
pub fn served_stale(cache: &Cache) {
    cache.inner.stats.incr(crate::stats::Counter::StaleServed);
}

/// How long, after a failing source made the cache serve a stale value, the next reads get that
/// value without asking the source again: the cache's own fail-safe throttle
/// ([`EntryOptions::fail_safe_throttle`], default 30 s), which larder-http's fills obey too, so
/// one setting governs both read paths.
pub fn fail_safe_throttle(cache: &Cache) -> std::time::Duration {
    cache.defaults.fail_safe_throttle
}

/// The eager-refresh fraction a surface accepts, by the same rule as
/// [`EntryOptions::eager_refresh`](crate::EntryOptions::eager_refresh): in (0, 1), else `None`
/// (off). At 1 a value would be refreshed only once it has expired, which is no refresh ahead of
/// time at all; so one range, here, for the core, larder-http's rules, the proxy and Python.
///
/// ```
/// use larder::engine::eager_refresh_fraction;
/// assert_eq!(eager_refresh_fraction(0.8), Some(0.8));
/// assert_eq!(eager_refresh_fraction(1.0), None);
/// assert_eq!(eager_refresh_fraction(f64::NAN), None);
/// ```
pub fn eager_refresh_fraction(fraction: f64) -> Option<f64> {
    crate::options::valid_fraction(fraction)
}
