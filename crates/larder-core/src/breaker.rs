//! The circuit breaker in front of a remote store.
//!
//! Closed, it lets every call through and counts consecutive failures. After `threshold` of them it
//! opens: calls are skipped at once (the cache carries on with memory and factories) for a
//! back-off period, so callers stop each waiting out the store timeout. When the period ends one
//! call goes through as a probe: success closes the breaker, failure reopens it for twice as long
//! (up to a ceiling). The probe is an ordinary call, so recovery needs no timer task.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::clock;

/// Breaker settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 never opens it.
    pub(crate) threshold: u32,
    /// First back-off after opening.
    pub(crate) min_backoff: Duration,
    /// Ceiling of the doubling back-off.
    pub(crate) max_backoff: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            threshold: 3,
            min_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
        }
    }
}

pub(crate) struct Breaker {
    config: BreakerConfig,
    failures: AtomicU32,
    open: AtomicBool,
    /// Monotonic instant (ns) until which calls are skipped.
    open_until: AtomicU64,
    backoff_nanos: AtomicU64,
    probing: AtomicBool,
}

/// Whether a call may go to the store.
pub(crate) enum Admit<'a> {
    /// Closed: go ahead.
    Call,
    /// Open, back-off over: this call is the probe. Dropping the guard without reporting (the
    /// caller was cancelled) lets another call probe.
    Probe(ProbeGuard<'a>),
    /// Open: skip the store.
    Skip,
}

/// What a reported result changed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    None,
    Opened,
    Closed,
}

impl Breaker {
    pub(crate) fn new(config: BreakerConfig) -> Self {
        Self {
            config,
            failures: AtomicU32::new(0),
            open: AtomicBool::new(false),
            open_until: AtomicU64::new(0),
            backoff_nanos: AtomicU64::new(nanos(config.min_backoff)),
            probing: AtomicBool::new(false),
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.open.load(Relaxed)
    }

    #[inline]
    pub(crate) fn admit(&self) -> Admit<'_> {
        if !self.open.load(Relaxed) {
            return Admit::Call;
        }
        if clock::now_nanos() < self.open_until.load(Relaxed) {
            return Admit::Skip;
        }
        if self.probing.swap(true, Relaxed) {
            return Admit::Skip;
        }
        Admit::Probe(ProbeGuard {
            breaker: self,
            reported: false,
        })
    }

    pub(crate) fn success(&self) -> Transition {
        self.failures.store(0, Relaxed);
        if self.open.swap(false, Relaxed) {
            self.backoff_nanos
                .store(nanos(self.config.min_backoff), Relaxed);
            Transition::Closed
        } else {
            Transition::None
        }
    }

    /// A failed call that was not the probe.
    pub(crate) fn failure(&self) -> Transition {
        let failures = self.failures.fetch_add(1, Relaxed).saturating_add(1);
        let threshold = self.config.threshold;
        if threshold > 0 && failures >= threshold && !self.open.load(Relaxed) {
            let backoff = self.backoff_nanos.load(Relaxed);
            self.open_until
                .store(clock::now_nanos().saturating_add(backoff), Relaxed);
            if !self.open.swap(true, Relaxed) {
                return Transition::Opened;
            }
        }
        Transition::None
    }

    /// The probe failed: stay open, twice as long as last time.
    fn probe_failed(&self) {
        let max = nanos(self.config.max_backoff);
        let backoff = self.backoff_nanos.load(Relaxed).saturating_mul(2).min(max);
        self.backoff_nanos.store(backoff, Relaxed);
        self.open_until
            .store(clock::now_nanos().saturating_add(backoff), Relaxed);
    }
}

pub(crate) struct ProbeGuard<'a> {
    breaker: &'a Breaker,
    reported: bool,
}

impl ProbeGuard<'_> {
    pub(crate) fn success(mut self) -> Transition {
        self.reported = true;
        let t = self.breaker.success();
        self.breaker.probing.store(false, Relaxed);
        t
    }

    pub(crate) fn failure(mut self) {
        self.reported = true;
        self.breaker.probe_failed();
        self.breaker.probing.store(false, Relaxed);
    }
}

impl Drop for ProbeGuard<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.probing.store(false, Relaxed);
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(backoff_ms: u64) -> Breaker {
        Breaker::new(BreakerConfig {
            threshold: 3,
            min_backoff: Duration::from_millis(backoff_ms),
            max_backoff: Duration::from_millis(backoff_ms * 4),
        })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(10_000);
        assert_eq!(b.failure(), Transition::None);
        assert_eq!(b.failure(), Transition::None);
        assert_eq!(b.success(), Transition::None, "a success resets the count");
        assert_eq!(b.failure(), Transition::None);
        assert_eq!(b.failure(), Transition::None);
        assert_eq!(b.failure(), Transition::Opened);
        assert!(b.is_open());
        assert!(matches!(b.admit(), Admit::Skip));
    }

    #[test]
    fn after_the_backoff_one_probe_goes_through_and_closes_it() {
        let b = breaker(0);
        for _ in 0..3 {
            b.failure();
        }
        let Admit::Probe(probe) = b.admit() else {
            panic!("the back-off of 0 is over: expected a probe");
        };
        assert!(matches!(b.admit(), Admit::Skip), "one probe at a time");
        assert_eq!(probe.success(), Transition::Closed);
        assert!(matches!(b.admit(), Admit::Call));
    }

    #[test]
    fn a_failed_probe_doubles_the_backoff_and_a_dropped_one_frees_the_slot() {
        let b = breaker(1);
        for _ in 0..3 {
            b.failure();
        }
        std::thread::sleep(Duration::from_millis(30));
        let Admit::Probe(probe) = b.admit() else {
            panic!("expected a probe");
        };
        drop(probe);
        let Admit::Probe(probe) = b.admit() else {
            panic!("a cancelled probe lets the next call probe");
        };
        probe.failure();
        assert!(b.is_open());
        assert_eq!(b.backoff_nanos.load(Relaxed), 2_000_000);
    }
}
