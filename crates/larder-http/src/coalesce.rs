//! The responses in flight, by primary key: a request for a key that is already being fetched
//! reads that fetch's recording instead of calling the service again.
//!
//! The registry is the core's: a fill is a flight of the cache ([`larder::Cache::join_fill`])
//! whose value is the recording, published when the fetch starts and followed as it grows. So
//! a purge or a write of the key, by URL, prefix, tag or namespace, here or on another process
//! through the backplane, supersedes a fill in flight the way it supersedes a `get_or_fetch`
//! fetch: the recording is not stored, and requests after the change fetch afresh.

use std::sync::Arc;

use larder::{
    Cache,
    engine::{FillLead, FillRole},
};

use crate::recording::{Limits, Recording};

/// The fills of one layer: its namespace of the cache.
pub(crate) struct Recordings {
    cache: Cache,
}

/// What a request for a key should do.
pub(crate) enum Role {
    /// Fetch it; the guard keeps the key registered until dropped.
    Lead(LeadGuard),
    /// Read this recording.
    Follow(Arc<Recording>),
}

impl Recordings {
    /// The fills of `cache` (the layer's namespace handle).
    pub fn new(cache: Cache) -> Self {
        Self { cache }
    }

    pub fn join_or_lead(&self, key: &str, limits: Limits) -> Role {
        self.role(key, limits, false)
    }

    /// [`join_or_lead`](Self::join_or_lead) for a refresh of a response that is still fresh
    /// (the rule's eager refresh), which the core counts as one when it leads.
    pub fn join_or_lead_early(&self, key: &str, limits: Limits) -> Role {
        self.role(key, limits, true)
    }

    fn role(&self, key: &str, limits: Limits, early: bool) -> Role {
        let make = |changed| Recording::following(limits, changed);
        let role = if early {
            self.cache.join_fill_early(key, make)
        } else {
            self.cache.join_fill(key, make)
        };
        match role {
            FillRole::Lead(lead, recording) => Role::Lead(LeadGuard {
                lead: Some(lead),
                recording,
                lock: None,
            }),
            FillRole::Follow(recording) => Role::Follow(recording),
        }
    }

    /// Leads a fetch for `key` that later requests may join, or, when one is in flight already,
    /// fetches alone without joining it (a `no-cache` request wants a response the origin makes
    /// for it, not one that was on its way before it came).
    pub fn lead_or_detach(&self, key: &str, limits: Limits) -> LeadGuard {
        match self.join_or_lead(key, limits) {
            Role::Lead(guard) => guard,
            Role::Follow(_) => Self::detached(limits),
        }
    }

    /// A recording nobody else can join (for a request that must not share its fetch).
    pub fn detached(limits: Limits) -> LeadGuard {
        LeadGuard {
            lead: None,
            recording: Recording::new(limits),
            lock: None,
        }
    }

    /// The fills in flight.
    pub fn len(&self) -> usize {
        self.cache.fills_in_flight()
    }
}

/// The leader's hold on a key. Dropping it unregisters the key, and tells readers still waiting
/// for a head that none will come.
pub(crate) struct LeadGuard {
    lead: Option<FillLead>,
    recording: Arc<Recording>,
    /// The fill's lock across processes when no flight holds it, released when the fill is
    /// over (stored or not).
    lock: Option<larder::engine::KeyLock>,
}

impl LeadGuard {
    pub fn recording(&self) -> &Arc<Recording> {
        &self.recording
    }

    /// The core's hold on the fill, for storing its result as itself.
    pub fn lead(&self) -> Option<&FillLead> {
        self.lead.as_ref()
    }

    /// Holds `lock` for as long as this fill runs: a registered fill gives it to the core's
    /// flight, which releases it as soon as a purge or write supersedes the fill.
    pub fn hold(&mut self, lock: larder::engine::KeyLock) {
        match &self.lead {
            Some(lead) => lead.hold_lock(lock),
            None => self.lock = Some(lock),
        }
    }

    /// Tags learnt from the response head, so a purge by tag reaches the fill in flight.
    pub fn set_tags(&self, tags: &[String]) {
        if let Some(lead) = &self.lead {
            lead.set_tags(tags);
        }
    }

    /// Unregisters the key now, so new requests fetch afresh (the body passed the cap).
    pub fn release(&mut self) {
        if let Some(lead) = &mut self.lead {
            lead.end();
        }
    }
}

impl Drop for LeadGuard {
    fn drop(&mut self) {
        self.release();
        self.recording.abandon();
    }
}
