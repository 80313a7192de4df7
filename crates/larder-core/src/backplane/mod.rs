//! Coherence of many nodes' memory tiers through a [`Backplane`].
//!
//! After every write, delete, namespace clear or tag invalidation has reached the remote store,
//! the node publishes what changed; every other node drops it from its memory tier, so its next
//! read goes to the store. A node ignores its own messages. Each time its subscription is
//! (re)established it drops its whole memory tier, since it may have missed messages while it
//! was down; and it wakes callers waiting on another node's distributed lock when that node's
//! write arrives.
//!
//! A fetch running on this node when another node's change arrives is superseded (its result is
//! served but not stored) only if it began before the change: messages carry the sender's wall
//! clock, so a fetch started after a delete whose message was slow still stores what it read.
//! Clocks apart by more than a message's delay blur that line: a fetch is then either kept from
//! storing once (harmless), or stores a value read just before the change, as any cache without
//! this check would.

mod message;

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Weak};

use bytes::Bytes;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::cache::Inner;
use crate::clock;
use crate::guard::Guard;
use crate::stats::{Counter, Recorder};
use larder_store::{Backplane, BackplaneEvent, BackplaneSink, Subscription};

pub(crate) use message::{Message, Op};

/// A cache's side of its backplane.
pub(crate) struct Coherence {
    backplane: Arc<dyn Backplane>,
    guard: Guard,
    /// This node (cache instance) on the backplane.
    node: u64,
    shared: Arc<Shared>,
    subscription: Mutex<Option<Subscription>>,
}

/// What the listener and the cache both see.
#[derive(Default)]
struct Shared {
    connected: AtomicBool,
    /// Callers waiting for another node to write a key, by `(namespace, key)`.
    watchers: Mutex<HashMap<(String, String), Weak<Notify>>>,
}

impl Coherence {
    pub(crate) fn new(backplane: Arc<dyn Backplane>, guard: Guard) -> Self {
        Self {
            backplane,
            guard,
            node: crate::random::u64(),
            shared: Arc::default(),
            subscription: Mutex::new(None),
        }
    }

    /// Starts listening; the listener reaches the cache through `inner` for as long as it lives.
    pub(crate) fn start(&self, inner: Weak<Inner>) {
        let (node, shared) = (self.node, Arc::clone(&self.shared));
        let sink: BackplaneSink = Arc::new(move |event| {
            if let Some(inner) = inner.upgrade() {
                hear(&inner, node, &shared, event);
            }
        });
        *self.subscription.lock() = Some(self.backplane.subscribe(sink));
    }

    pub(crate) fn connected(&self) -> bool {
        self.shared.connected.load(Relaxed)
    }

    pub(crate) fn name(&self) -> &str {
        self.backplane.name()
    }

    /// Tells the other nodes what changed. Never fails the caller: a failure is counted, and the
    /// breaker stops trying for a while if the backplane is down.
    pub(crate) async fn publish(&self, stats: &Recorder, op: Op<'_>) {
        let message = Message {
            node: self.node,
            at: clock::unix_micros(),
            op,
        };
        let bytes = match message.encode() {
            Ok(b) => Bytes::from(b),
            Err(error) => {
                tracing::warn!(%error, "backplane message not encoded");
                return;
            }
        };
        if self
            .guard
            .call(stats, self.backplane.publish(bytes))
            .await
            .is_some()
        {
            stats.incr(Counter::BackplanePublished);
        }
    }

    /// A handle woken when another node writes `(ns, key)`, or when the subscription comes back.
    pub(crate) fn watch(&self, ns: &str, key: &str) -> Arc<Notify> {
        let mut watchers = self.shared.watchers.lock();
        let slot = (ns.to_owned(), key.to_owned());
        if let Some(existing) = watchers.get(&slot).and_then(Weak::upgrade) {
            return existing;
        }
        if watchers.len() >= 1024 {
            watchers.retain(|_, w| w.strong_count() > 0);
        }
        let notify = Arc::new(Notify::new());
        watchers.insert(slot, Arc::downgrade(&notify));
        notify
    }
}

/// What the listener does with one event.
fn hear(inner: &Inner, node: u64, shared: &Shared, event: BackplaneEvent<'_>) {
    match event {
        BackplaneEvent::Subscribed => {
            let was = shared.connected.swap(true, Relaxed);
            // Whatever this node holds may have been changed elsewhere while it was not
            // listening (or before it first listened): drop it all. Fetches in flight are left
            // alone: what they bring comes from the source now, not from before the gap.
            if let Some(mem) = &inner.memory {
                mem.clear();
            }
            inner.stats.incr(Counter::BackplaneResync);
            wake_all(shared);
            if !was {
                tracing::info!(cache = %inner.name, "backplane subscribed; memory tier dropped to resync");
            }
        }
        BackplaneEvent::Lost => {
            if shared.connected.swap(false, Relaxed) {
                tracing::warn!(cache = %inner.name, "backplane connection lost; reconnecting");
            }
        }
        BackplaneEvent::Message(bytes) => match Message::decode(bytes) {
            Ok(m) if m.node == node => {}
            Ok(m) => {
                apply(inner, shared, m.op, m.at);
                inner.stats.incr(Counter::BackplaneReceived);
            }
            Err(error) => {
                inner.stats.incr(Counter::DecodeError);
                tracing::debug!(cache = %inner.name, %error, "backplane message ignored");
            }
        },
    }
}

/// Drops from this node's memory what another node changed.
fn apply(inner: &Inner, shared: &Shared, op: Op<'_>, at: u64) {
    match op {
        Op::Evict { ns, keys } => {
            for key in &keys {
                if let Some(mem) = &inner.memory {
                    mem.remove(&ns, key);
                }
                // A fetch of it that began here before that write must not win; one that began
                // after it (the message was merely slow) reads what that write left.
                inner.flights.supersede_begun_by(&ns, key, at);
            }
            let watchers = shared.watchers.lock();
            if !watchers.is_empty() {
                for key in keys {
                    let slot = (ns.clone().into_owned(), key.into_owned());
                    if let Some(n) = watchers.get(&slot).and_then(Weak::upgrade) {
                        n.notify_waiters();
                    }
                }
            }
        }
        Op::Clear { ns } => {
            if let Some(mem) = &inner.memory {
                mem.clear_namespace(&ns);
            }
            inner.flights.supersede_namespace(&ns, at);
        }
        Op::Tags { tags } => {
            let tags: Vec<&str> = tags.iter().map(Cow::as_ref).collect();
            inner.flights.supersede_tags(&tags);
            if let Some(mem) = &inner.memory {
                mem.invalidate_tags(&tags, clock::now_nanos());
            }
        }
    }
}

fn wake_all(shared: &Shared) {
    for n in shared.watchers.lock().values().filter_map(Weak::upgrade) {
        n.notify_waiters();
    }
}
