//! The pieces another surface on the cache builds on: larder-http's fills (a flight that is
//! followed while it is made), the distributed lock behind them, room reserved in the memory
//! tier for a body being recorded, and the read events such a surface counts in the cache's own
//! stats. An application using [`Cache`] does not need this module.

pub use crate::fill::{FillLead, FillRole, Superseded};
pub use crate::lock::{KeyLock, KeyLocked};
pub use crate::reservation::MemoryReservation;

use crate::Cache;

/// The read-path events another surface on the cache (larder-http's fills, the Python
/// bindings) counts in the cache's own [`Stats`](crate::Stats) and metrics, so one set of
/// numbers describes every way the cache is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReadEvent {
    /// The source was called for the cache (an HTTP fill: the origin was asked).
    FactoryRun,
    /// That call failed or timed out.
    FactoryError,
    /// A caller shared another's call instead of making its own.
    Coalesced,
    /// A stale value answered in place of a failed or slow source.
    StaleServed,
    /// A fresh value's source was called early, in the background (eager refresh).
    EagerRefresh,
}

/// Counts `event` in `cache`'s stats (and the `larder_*_total` metrics).
pub fn count(cache: &Cache, event: ReadEvent) {
    use crate::stats::Counter;
    let counter = match event {
        ReadEvent::FactoryRun => Counter::FactoryRun,
        ReadEvent::FactoryError => Counter::FactoryError,
        ReadEvent::Coalesced => Counter::Coalesced,
        ReadEvent::StaleServed => Counter::StaleServed,
        ReadEvent::EagerRefresh => Counter::EagerRefresh,
    };
    cache.inner.stats.incr(counter);
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
