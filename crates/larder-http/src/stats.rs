//! The layer's own counters: what happened to fills (the fetches it records for the cache) and to
//! requests it refused. The cache's counters (hits, misses, evictions, ...) stay in
//! [`larder::Stats`].

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// What is counted.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Event {
    /// A fetch whose response is recorded for the cache started streaming.
    Fill,
    /// A fill that streamed through without being recorded whole: the recording budget or the
    /// cache's byte bound had no room for it.
    Unrecorded,
    /// A fill whose upstream body sent nothing for longer than the body idle timeout.
    Stalled,
    /// A fill stopped because every client reading it left and it was past the size worth
    /// finishing for the cache alone.
    Abandoned,
    /// A fetch that got no response head within the response timeout.
    ResponseTimeout,
    /// A request refused with 400 (a malformed or repeated `Host`).
    BadRequest,
    /// A request passed uncached because its path has no canonical form, or a spelling of it
    /// an origin may route elsewhere gets another rule.
    NonCanonical,
}

const EVENTS: usize = 7;

const NAMES: [&str; EVENTS] = [
    "larder_http_fills_total",
    "larder_http_fills_unrecorded_total",
    "larder_http_fills_stalled_total",
    "larder_http_fills_abandoned_total",
    "larder_http_response_timeouts_total",
    "larder_http_bad_requests_total",
    "larder_http_non_canonical_paths_total",
];

pub(crate) struct Counters {
    counts: [AtomicU64; EVENTS],
    facade: [metrics::Counter; EVENTS],
}

impl Counters {
    /// `namespace` labels the metrics (`namespace="http"`).
    pub fn new(namespace: &str) -> Self {
        let label = namespace.to_owned();
        Self {
            counts: Default::default(),
            facade: NAMES.map(|n| metrics::counter!(n, "namespace" => label.clone())),
        }
    }

    pub fn incr(&self, event: Event) {
        self.counts[event as usize].fetch_add(1, Relaxed);
        self.facade[event as usize].increment(1);
    }

    fn get(&self, event: Event) -> u64 {
        self.counts[event as usize].load(Relaxed)
    }
}

/// A snapshot of one layer's counters, from [`Purger::stats`](crate::Purger::stats). They are
/// also sent to the `metrics` facade as `larder_http_<name>_total{namespace="..."}`.
///
/// ```
/// let purger = larder_http::CacheLayer::shared(larder::Cache::new()).purger();
/// let stats = purger.stats();
/// assert_eq!((stats.fills, stats.recording_bytes), (0, 0));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LayerStats {
    /// Fetches whose responses were recorded for the cache as they streamed.
    pub fills: u64,
    /// Fills that streamed to their clients unrecorded, from the start or part-way, because the
    /// bytes recordings may hold (the layer's recording budget, or the cache's byte bound) were
    /// taken.
    pub fills_unrecorded: u64,
    /// Fills cut because the upstream body sent nothing for the body idle timeout.
    pub fills_stalled: u64,
    /// Fills stopped because every client reading them left.
    pub fills_abandoned: u64,
    /// Fetches that got no response head within the response timeout.
    pub response_timeouts: u64,
    /// Requests refused with 400 for a malformed or repeated `Host`.
    pub bad_requests: u64,
    /// Requests passed uncached because their path has no canonical form, or a spelling of it
    /// that an origin may route elsewhere (`;` parameters, an encoded slash, letter case) gets
    /// another rule.
    pub non_canonical_paths: u64,
    /// Bytes of response bodies held by recordings now.
    pub recording_bytes: u64,
    /// Responses being fetched and recorded now, shared by the requests that asked for them.
    pub fetches_in_flight: usize,
}

impl LayerStats {
    pub(crate) fn read(c: &Counters, recording_bytes: u64, fetches_in_flight: usize) -> Self {
        Self {
            fills: c.get(Event::Fill),
            fills_unrecorded: c.get(Event::Unrecorded),
            fills_stalled: c.get(Event::Stalled),
            fills_abandoned: c.get(Event::Abandoned),
            response_timeouts: c.get(Event::ResponseTimeout),
            bad_requests: c.get(Event::BadRequest),
            non_canonical_paths: c.get(Event::NonCanonical),
            recording_bytes,
            fetches_in_flight,
        }
    }
}
