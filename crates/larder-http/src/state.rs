//! What every service built from one layer shares: the cache, the settings (the layer's and each
//! rule's), the fills in flight, the budgets and the counters.

use std::sync::Arc;

use http::Method;
use http::request::Parts;
use larder::Cache;

use crate::budget::Budget;
use crate::coalesce::Recordings;
use crate::config::Config;
use crate::host::RequestHost;
use crate::key;
use crate::recording::Limits;
use crate::rule::Rule;
use crate::stats::Counters;

/// How much of a streaming (no longer kept) body a recording may hold ahead of its slowest
/// reader: enough to keep a fast client busy, small enough to multiply by every connection.
const STREAM_WINDOW: usize = 32 << 10;

/// The store gate's size: the largest body stored, at least 1 MiB, within a semaphore's range.
pub(crate) fn gate_permits(max_body: usize) -> usize {
    max_body.clamp(1 << 20, u32::MAX as usize)
}

/// What every service built from one layer shares: the cache, the settings, the fetches in flight.
pub(crate) struct LayerState {
    pub cache: Cache,
    /// The layer's settings: what a request no rule matches gets.
    pub config: Arc<Config>,
    /// Each rule with the settings a request it matches gets.
    rules: Vec<(Rule, Arc<Config>)>,
    pub recordings: Recordings,
    /// URLs whose responses were not storable just now (hit-for-pass).
    pub passes: crate::remembered::Remembered,
    /// URLs whose origin just failed: their stale copy answers without asking it again.
    pub failing: crate::remembered::Remembered,
    pub budget: Arc<Budget>,
    pub counters: Arc<Counters>,
    /// Bytes of bodies being stored at once (see `write::StoreJob::turn`).
    pub store_gate: Arc<tokio::sync::Semaphore>,
}

impl LayerState {
    pub fn new(base: &Cache, config: Config) -> Self {
        Self {
            cache: base.namespace(config.namespace.clone()),
            recordings: Recordings::new(base.namespace(config.namespace.clone())),
            passes: Default::default(),
            failing: Default::default(),
            budget: Budget::new(config.recording_budget),
            counters: Arc::new(Counters::new(&config.namespace)),
            store_gate: Arc::new(tokio::sync::Semaphore::new(gate_permits(config.max_body))),
            rules: config
                .rules
                .iter()
                .map(|rule| (rule.clone(), Arc::new(config.with_rule(rule))))
                .collect(),
            config: Arc::new(config),
        }
    }

    /// The settings for a request: the first matching rule's, else the layer's.
    pub fn config_for(&self, method: &Method, path: &str) -> &Arc<Config> {
        if self.rules.is_empty() {
            return &self.config;
        }
        let path = key::normalized_path(path);
        self.rules
            .iter()
            .find(|(rule, _)| rule.methods.contains(method) && rule.matches_path(&path))
            .map_or(&self.config, |(_, config)| config)
    }

    /// The host keys use for a request to `host`: the fixed one if set; none for a conflict.
    pub fn key_host<'a>(&'a self, host: &'a RequestHost) -> Option<&'a str> {
        match (&self.config.fixed_host, host) {
            (Some((fixed, _)), _) => Some(fixed),
            (None, RequestHost::Named(h)) => Some(h),
            (None, RequestHost::Conflicting) => None,
        }
    }

    /// The primary key of a request whose host is `host`, under the settings `cfg` (its
    /// rule's); `None` to pass it by uncached.
    pub fn primary_key(&self, cfg: &Config, parts: &Parts, host: &RequestHost) -> Option<String> {
        match &cfg.key_fn {
            Some(f) => f(parts),
            None => key::primary_key(self.key_host(host)?, &parts.uri, &cfg.query),
        }
    }

    pub fn limits(&self) -> Limits {
        Limits {
            cap: self.config.max_body,
            window: STREAM_WINDOW,
            finish_unread_below: self.config.finish_unread_below,
        }
    }
}
