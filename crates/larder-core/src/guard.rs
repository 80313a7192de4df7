//! Time limits and a circuit breaker around the calls a cache makes to an outside service: the
//! remote store, and the backplane. A failing service costs callers at most one timeout before
//! the breaker opens, and nothing while it is open; it never fails a call.

use std::sync::Arc;
use std::time::Duration;

use crate::breaker::{Admit, Breaker, BreakerConfig, ProbeGuard, Transition};
use crate::clock;
use crate::stats::{Counter, Recorder};
use larder_store::{StoreError, StoreFuture};

pub(crate) struct Guard {
    timeout: Duration,
    breaker: Breaker,
    cache_name: Arc<str>,
    /// "remote store" or "backplane", for logs.
    role: &'static str,
    /// The service's own name ("redis", ...), for logs.
    service: Arc<str>,
    gauge: metrics::Gauge,
}

impl Guard {
    /// `gauge` names the 0/1 metric that shows the breaker's state.
    pub(crate) fn new(
        timeout: Duration,
        breaker: BreakerConfig,
        cache_name: Arc<str>,
        role: &'static str,
        service: &str,
        gauge: &'static str,
    ) -> Self {
        let gauge = metrics::gauge!(gauge, "cache" => cache_name.to_string());
        gauge.set(0.0);
        Self {
            timeout,
            breaker: Breaker::new(breaker),
            cache_name,
            role,
            service: Arc::from(service),
            gauge,
        }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.breaker.is_open()
    }

    /// Runs one call under the time limit and the circuit breaker. A failure is counted and
    /// becomes `None`, as does a call the open breaker skips: the caller carries on without the
    /// service. One warning when the breaker opens, one line when it closes.
    pub(crate) async fn call<R>(&self, stats: &Recorder, fut: StoreFuture<'_, R>) -> Option<R> {
        let probe = match self.breaker.admit() {
            Admit::Call => None,
            Admit::Probe(guard) => Some(guard),
            Admit::Skip => {
                stats.incr(Counter::StoreSkipped);
                return None;
            }
        };
        let result = match clock::timeout(self.timeout, fut).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Timeout(self.timeout)),
        };
        match result {
            Ok(r) => {
                self.answered(probe);
                Some(r)
            }
            // The service answered, with an error about this call (value too large, wrong type,
            // an operation it does not offer): it is up, so this must not open the breaker.
            Err(
                error @ (StoreError::Server(_)
                | StoreError::Protocol(_)
                | StoreError::Unsupported(_)),
            ) => {
                stats.incr(Counter::StoreError);
                tracing::debug!(cache = %self.cache_name, service = %self.service, %error, "{} refused a call", self.role);
                self.answered(probe);
                None
            }
            Err(error) => {
                stats.incr(Counter::StoreError);
                match probe {
                    Some(p) => p.failure(),
                    None => {
                        if self.breaker.failure() == Transition::Opened {
                            stats.incr(Counter::BreakerTrip);
                            self.gauge.set(1.0);
                            tracing::warn!(
                                cache = %self.cache_name, service = %self.service, %error,
                                "{} failing; circuit breaker open, carrying on without it until it recovers",
                                self.role
                            );
                        }
                    }
                }
                None
            }
        }
    }

    /// The service answered: the breaker closes if it was open.
    fn answered(&self, probe: Option<ProbeGuard<'_>>) {
        let transition = match probe {
            Some(p) => p.success(),
            None => self.breaker.success(),
        };
        if transition == Transition::Closed {
            self.gauge.set(0.0);
            // A warning like the one that opened it: whoever saw the outage sees its end.
            tracing::warn!(cache = %self.cache_name, service = %self.service, "{} recovered; circuit breaker closed", self.role);
        }
    }
}
