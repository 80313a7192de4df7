//! The backplane: how the memory tiers of many processes stay coherent. Every write, delete,
//! namespace clear and tag invalidation is published as a small message; every other node evicts
//! what it names from its memory tier.

use std::any::Any;
use std::sync::Arc;

use bytes::Bytes;

use crate::StoreFuture;

/// What a backplane's subscription hears.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackplaneEvent<'a> {
    /// The subscription is established, the first time or again after it was lost. Messages
    /// published while it was down are gone, so a node drops what it may have missed.
    Subscribed,
    /// The subscription broke; the backplane is reconnecting.
    Lost,
    /// A message published by any node, this one included (a node tells its own apart).
    Message(&'a [u8]),
}

/// Receives a subscription's events, on a thread or task of the backplane's choosing. It must
/// not block for long: messages queue behind it.
pub type BackplaneSink = Arc<dyn Fn(BackplaneEvent<'_>) + Send + Sync>;

/// Keeps a subscription alive: dropping it stops the listening.
///
/// ```
/// let sub = larder_store::Subscription::new(());
/// drop(sub); // a backplane would stop its listener here
/// ```
pub struct Subscription(#[allow(dead_code)] Box<dyn Any + Send + Sync>);

impl Subscription {
    /// A subscription kept alive by `guard`, whose drop stops it.
    pub fn new(guard: impl Any + Send + Sync) -> Self {
        Self(Box::new(guard))
    }
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Subscription")
    }
}

/// A publish/subscribe channel shared by every node of an application.
///
/// Messages are opaque bytes written by the core. Delivery is at most once: a subscriber that
/// was disconnected reports [`BackplaneEvent::Subscribed`] again when it is back, and the core
/// then drops its memory tier, since it may have missed messages meanwhile.
///
/// A backplane that delivers in-process only, to show the shape of an implementation:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use bytes::Bytes;
/// use larder_store::{Backplane, BackplaneEvent, BackplaneSink, StoreFuture, Subscription};
///
/// #[derive(Default)]
/// struct Local(Arc<Mutex<Vec<BackplaneSink>>>);
///
/// impl Backplane for Local {
///     fn name(&self) -> &str { "local" }
///     fn publish<'a>(&'a self, message: Bytes) -> StoreFuture<'a, ()> {
///         for sink in self.0.lock().unwrap().iter() {
///             sink(BackplaneEvent::Message(&message));
///         }
///         Box::pin(async { Ok(()) })
///     }
///     fn subscribe(&self, sink: BackplaneSink) -> Subscription {
///         sink(BackplaneEvent::Subscribed);
///         self.0.lock().unwrap().push(sink);
///         Subscription::new(())
///     }
/// }
///
/// let bp = Local::default();
/// let heard = Arc::new(Mutex::new(Vec::new()));
/// let h = heard.clone();
/// let _sub = bp.subscribe(Arc::new(move |e| if let BackplaneEvent::Message(m) = e {
///     h.lock().unwrap().push(m.to_vec());
/// }));
/// futures::executor::block_on(bp.publish(Bytes::from_static(b"hi"))).unwrap();
/// assert_eq!(*heard.lock().unwrap(), vec![b"hi".to_vec()]);
/// ```
pub trait Backplane: Send + Sync + 'static {
    /// A short name for logs ("redis", ...).
    fn name(&self) -> &str;

    /// Sends `message` to every subscribed node.
    fn publish<'a>(&'a self, message: Bytes) -> StoreFuture<'a, ()>;

    /// Starts listening: `sink` hears [`BackplaneEvent::Subscribed`] once the subscription is up
    /// (again after every reconnection), every message, and [`BackplaneEvent::Lost`] when it
    /// breaks. The backplane runs the listener itself and reconnects by itself, until the
    /// returned [`Subscription`] is dropped.
    fn subscribe(&self, sink: BackplaneSink) -> Subscription;
}
