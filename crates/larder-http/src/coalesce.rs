//! The responses in flight, by primary key: a request for a key that is already being fetched
//! reads that fetch's recording instead of calling the service again.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::recording::{Limits, Recording};

#[derive(Default)]
pub(crate) struct Recordings {
    map: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    recording: Arc<Recording>,
    /// Tags learnt from the response head, so a purge by tag reaches fetches in flight.
    tags: Vec<String>,
}

/// What a request for a key should do.
pub(crate) enum Role {
    /// Fetch it; the guard keeps the key registered until dropped.
    Lead(LeadGuard),
    /// Read this recording.
    Follow(Arc<Recording>),
}

impl Recordings {
    pub fn join_or_lead(self: &Arc<Self>, key: &str, limits: Limits) -> Role {
        match self.register(key, limits) {
            Ok(guard) => Role::Lead(guard),
            Err(in_flight) => Role::Follow(in_flight),
        }
    }

    /// Leads a fetch for `key` that later requests may join, or, when one is in flight already,
    /// fetches alone without joining it (a `no-cache` request wants a response the origin makes
    /// for it, not one that was on its way before it came).
    pub fn lead_or_detach(self: &Arc<Self>, key: &str, limits: Limits) -> LeadGuard {
        self.register(key, limits)
            .unwrap_or_else(|_| Self::detached(limits))
    }

    /// Registers a new recording for `key` and leads it, or returns the one in flight.
    fn register(self: &Arc<Self>, key: &str, limits: Limits) -> Result<LeadGuard, Arc<Recording>> {
        let mut map = self.map.lock();
        if let Some(e) = map.get(key) {
            return Err(e.recording.clone());
        }
        let recording = Recording::new(limits);
        map.insert(
            key.to_owned(),
            Entry {
                recording: recording.clone(),
                tags: Vec::new(),
            },
        );
        Ok(LeadGuard {
            registry: Some(self.clone()),
            key: key.to_owned(),
            recording,
            lock: None,
        })
    }

    /// A recording nobody else can join (for a request that must not share its fetch).
    pub fn detached(limits: Limits) -> LeadGuard {
        LeadGuard {
            registry: None,
            key: String::new(),
            recording: Recording::new(limits),
            lock: None,
        }
    }

    pub fn len(&self) -> usize {
        self.map.lock().len()
    }

    /// The fetch in flight for `key` (if any) will not be stored, and later requests do not join it.
    pub fn supersede(&self, key: &str) {
        if let Some(e) = self.map.lock().remove(key) {
            e.recording.supersede();
        }
    }

    pub fn supersede_tag(&self, tag: &str) {
        self.map.lock().retain(|_, e| {
            let hit = e.tags.iter().any(|t| t == tag);
            if hit {
                e.recording.supersede();
            }
            !hit
        });
    }

    pub fn supersede_all(&self) {
        for (_, e) in self.map.lock().drain() {
            e.recording.supersede();
        }
    }

    fn remove(&self, key: &str, recording: &Arc<Recording>) {
        let mut map = self.map.lock();
        if map
            .get(key)
            .is_some_and(|e| Arc::ptr_eq(&e.recording, recording))
        {
            map.remove(key);
        }
    }

    fn set_tags(&self, key: &str, recording: &Arc<Recording>, tags: &[String]) {
        if let Some(e) = self.map.lock().get_mut(key)
            && Arc::ptr_eq(&e.recording, recording)
        {
            e.tags = tags.to_vec();
        }
    }
}

/// The leader's hold on a key. Dropping it unregisters the key, and tells readers still waiting
/// for a head that none will come.
pub(crate) struct LeadGuard {
    registry: Option<Arc<Recordings>>,
    key: String,
    recording: Arc<Recording>,
    /// The fill's lock across processes, released when the fill is over (stored or not).
    lock: Option<larder::KeyLock>,
}

impl LeadGuard {
    pub fn recording(&self) -> &Arc<Recording> {
        &self.recording
    }

    /// Holds `lock` for as long as this fill runs.
    pub fn hold(&mut self, lock: larder::KeyLock) {
        self.lock = Some(lock);
    }

    pub fn set_tags(&self, tags: &[String]) {
        if let Some(r) = &self.registry {
            r.set_tags(&self.key, &self.recording, tags);
        }
    }

    /// Unregisters the key now, so new requests fetch afresh (the body passed the cap).
    pub fn release(&mut self) {
        if let Some(r) = self.registry.take() {
            r.remove(&self.key, &self.recording);
        }
    }
}

impl Drop for LeadGuard {
    fn drop(&mut self) {
        self.release();
        self.recording.abandon();
    }
}
