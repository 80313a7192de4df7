//! Fills that callers follow while they are produced: the flight for a value that is useful
//! before it is finished, such as an HTTP response recorded as it streams, which larder-http's
//! readers follow as it grows. They live in the same registry as `get_or_fetch`'s flights, so a
//! write, delete, clear or tag invalidation of the key (here, or on another node through the
//! backplane) supersedes a fill in flight exactly as it supersedes a fetch: the fill is not
//! stored, and callers after the change start a fill of their own.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

use crate::cache::{Cache, CacheValue};
use crate::error::Error;
use crate::flight::Ticket;
use crate::memory::AnyValue;
use crate::options::EntryOptions;
use crate::stats::Counter;

/// What [`Cache::join_fill`] made of a caller: the one that fills the key, or one that follows
/// the fill in flight.
#[derive(Debug)]
pub enum FillRole<V> {
    /// Fill the key; the [`FillLead`] keeps the fill registered until it is dropped or
    /// [ended](FillLead::end), and `V` is what followers get.
    Lead(FillLead, V),
    /// Follow this fill, which another caller is producing.
    Follow(V),
}

/// The hold of the caller that fills a key (see [`Cache::join_fill`]). Dropping it ends the
/// fill: later callers start their own.
#[derive(Debug)]
pub struct FillLead {
    ticket: Option<Ticket>,
    superseded: Superseded,
}

/// Whether the key changed (a write, delete, clear or tag invalidation) since a fill began,
/// for the value being produced to check before it is stored. Cheap to clone.
///
/// ```
/// let never = larder::engine::Superseded::never();
/// assert!(!never.is_set());
/// ```
#[derive(Debug, Clone, Default)]
pub struct Superseded(Option<Arc<AtomicBool>>);

impl Superseded {
    /// A flag that is never set: for a fill nobody else can join, which no change reaches.
    pub fn never() -> Self {
        Self(None)
    }

    /// Whether the key changed since the fill began.
    pub fn is_set(&self) -> bool {
        self.0.as_ref().is_some_and(|f| f.load(Relaxed))
    }
}

impl FillLead {
    /// Whether the key changed since the fill began: what it produces must not be stored.
    pub fn superseded(&self) -> bool {
        self.superseded.is_set()
    }

    /// The tags the fill learnt as it ran (say from a response's `Surrogate-Key`): invalidating
    /// any of them supersedes it, as it would the stored entry.
    pub fn set_tags(&self, tags: &[String]) {
        if let Some(t) = &self.ticket {
            t.set_tags(tags);
        }
    }

    /// Holds `lock` (from [`Cache::lock_key`]) for as long as the fill runs: it is released when
    /// the fill ends or is [ended](Self::end), and at once when a change supersedes the fill,
    /// so fills after the change, in this process or another, do not wait for a result that
    /// will never be stored.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use std::time::Duration;
    /// use larder::{Cache, engine::{FillRole, KeyLocked}};
    /// let cache = Cache::new();
    /// let FillRole::Lead(lead, _) = cache.join_fill("k", |_| ()) else { unreachable!() };
    /// // A memory-only cache has no locks to take; with a store, the lock would be held here.
    /// if let KeyLocked::Held(lock) = cache.lock_key::<u8>("k", Duration::from_secs(1), Duration::from_secs(5)).await {
    ///     lead.hold_lock(lock);
    /// }
    /// # }
    /// ```
    pub fn hold_lock(&self, lock: crate::engine::KeyLock) {
        if let Some(t) = &self.ticket {
            // Back only when the fill was superseded already: dropping it releases it.
            drop(t.hold_lock(lock));
        }
    }

    /// Unregisters the fill now: callers from here on start their own (say, because the value
    /// became unfit to share). Whether it is superseded still reads true after a change.
    pub fn end(&mut self) {
        self.ticket = None;
    }

    /// Whether later callers can still follow this fill.
    pub fn is_registered(&self) -> bool {
        self.ticket.is_some()
    }

    /// Stores the fill's result: [`Cache::set_with`] on `cache` (the handle the fill was
    /// joined through), except that the fill does not supersede itself, so it stays
    /// registered, and followable, until its lead is dropped. Under another key (a variant, an
    /// index) it is `set_with` itself.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// use larder::{Cache, EntryOptions, engine::FillRole};
    /// let cache = Cache::new();
    /// let FillRole::Lead(lead, _) = cache.join_fill("k", |_| ()) else { unreachable!() };
    /// lead.set_with(&cache, "k", 7u8, EntryOptions::new()).await.unwrap();
    /// assert!(!lead.superseded() && cache.fills_in_flight() == 1);
    /// assert_eq!(*cache.get::<u8>("k").await.unwrap().unwrap(), 7);
    /// # }
    /// ```
    pub async fn set_with<T: CacheValue>(
        &self,
        cache: &Cache,
        key: &str,
        value: T,
        opts: EntryOptions,
    ) -> Result<(), Error> {
        match &self.ticket {
            Some(t) => cache.set_with_except(key, value, opts, t.id()).await,
            None => cache.set_with(key, value, opts).await,
        }
    }
}

impl Cache {
    /// Joins the fill of `key` in flight in this process, or starts one whose followers get the
    /// value `make` builds (given the fill's [`Superseded`] flag), at once, while the leader is
    /// still producing it. The core's single-flight for values that are followed rather than
    /// awaited: `get_or_fetch` shares a finished value; a fill shares a handle to one being made.
    /// A key that a `get_or_fetch` fetch (or a fill of another value type) holds is filled by
    /// this caller alone.
    ///
    /// ```
    /// use std::sync::{Arc, Mutex};
    /// use larder::{Cache, engine::FillRole};
    ///
    /// type Recording = Arc<Mutex<Vec<u8>>>;
    /// let cache = Cache::new();
    /// let FillRole::Lead(lead, recording) = cache.join_fill("page", |_| Recording::default()) else {
    ///     unreachable!()
    /// };
    /// recording.lock().unwrap().extend_from_slice(b"<html>");
    /// // A second caller follows what the first is writing.
    /// let FillRole::Follow(same) = cache.join_fill("page", |_| Recording::default()) else {
    ///     unreachable!()
    /// };
    /// assert_eq!(&*same.lock().unwrap(), b"<html>");
    /// assert_eq!(cache.fills_in_flight(), 1);
    /// drop(lead);
    /// assert_eq!(cache.fills_in_flight(), 0);
    /// ```
    pub fn join_fill<V>(&self, key: &str, make: impl FnOnce(Superseded) -> V) -> FillRole<V>
    where
        V: Clone + Send + Sync + 'static,
    {
        self.join_fill_counted(key, make, false)
    }

    /// [`join_fill`](Self::join_fill) for a refresh of a value that is still fresh (eager
    /// refresh: a hit late in its lifetime): leading it counts an eager refresh in the stats.
    ///
    /// ```
    /// use larder::{Cache, engine::FillRole};
    /// let cache = Cache::new();
    /// let FillRole::Lead(_lead, _) = cache.join_fill_early("page", |_| ()) else { unreachable!() };
    /// assert_eq!(cache.stats().eager_refreshes, 1);
    /// ```
    pub fn join_fill_early<V>(&self, key: &str, make: impl FnOnce(Superseded) -> V) -> FillRole<V>
    where
        V: Clone + Send + Sync + 'static,
    {
        self.join_fill_counted(key, make, true)
    }

    /// Joins or leads the fill; the read path's counts are made here, where its role is known:
    /// a follower is a coalesced waiter, and an early refresh that leads is an eager refresh.
    fn join_fill_counted<V>(
        &self,
        key: &str,
        make: impl FnOnce(Superseded) -> V,
        early: bool,
    ) -> FillRole<V>
    where
        V: Clone + Send + Sync + 'static,
    {
        let ns = &self.defaults.namespace;
        let build = |flag: Arc<AtomicBool>| {
            let value = make(Superseded(Some(Arc::clone(&flag))));
            (AnyValue::new(Arc::new(value.clone())), (value, flag))
        };
        let (other, build) = match self.inner.flights.join_followed(ns, key, build) {
            Ok((ticket, (value, flag))) => {
                let lead = FillLead {
                    ticket: Some(ticket),
                    superseded: Superseded(Some(flag)),
                };
                if early {
                    self.inner.stats.incr(Counter::EagerRefresh);
                }
                return FillRole::Lead(lead, value);
            }
            Err(busy) => busy,
        };
        if let Some(value) = other.and_then(|v| v.downcast::<V>().ok()) {
            self.inner.stats.incr(Counter::Coalesced);
            return FillRole::Follow(V::clone(&value));
        }
        // A fetch, or a fill of another type, holds the key: fill alone, unregistered, with a
        // flag no change sets.
        let (_, (value, _)) = build(Arc::new(AtomicBool::new(false)));
        let lead = FillLead {
            ticket: None,
            superseded: Superseded::never(),
        };
        FillRole::Lead(lead, value)
    }

    /// How many fills ([`join_fill`](Self::join_fill)) of this handle's namespace are in
    /// flight in this process.
    ///
    /// ```
    /// assert_eq!(larder::Cache::new().fills_in_flight(), 0);
    /// ```
    pub fn fills_in_flight(&self) -> usize {
        self.inner.flights.followed_in(&self.defaults.namespace)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead<V: Clone + Send + Sync + 'static>(cache: &Cache, key: &str, v: V) -> (FillLead, V) {
        match cache.join_fill(key, |_| v) {
            FillRole::Lead(lead, v) => (lead, v),
            FillRole::Follow(_) => panic!("{key} was being filled"),
        }
    }

    #[tokio::test]
    async fn a_change_to_the_key_supersedes_the_fill_and_unregisters_it() {
        let cache = Cache::new();
        let (first, _) = lead(&cache, "k", 1u32);
        assert!(matches!(
            cache.join_fill("k", |_| 2u32),
            FillRole::Follow(1)
        ));
        cache.delete("k").await;
        assert!(first.superseded());
        // Callers after the change do not follow what was made before it.
        let (second, v) = lead(&cache, "k", 3u32);
        assert_eq!(v, 3);
        assert!(!second.superseded());
        drop(first); // the older lead leaving does not unregister the newer fill
        assert!(matches!(
            cache.join_fill("k", |_| 4u32),
            FillRole::Follow(3)
        ));

        cache.set("k", 9u32).await.unwrap();
        assert!(second.superseded());
        let (_third, _) = lead(&cache, "k", 5u32);
        cache.clear().await;
        assert_eq!(cache.fills_in_flight(), 0);
    }

    #[tokio::test]
    async fn a_tag_the_fill_learnt_supersedes_it() {
        let cache = Cache::new();
        let (a, _) = lead(&cache, "a", 1u8);
        let (b, _) = lead(&cache, "b", 1u8);
        a.set_tags(&["users".into()]);
        b.set_tags(&["orders".into()]);
        cache.invalidate_tag("users").await;
        assert!(a.superseded() && !b.superseded());
        assert_eq!(cache.fills_in_flight(), 1);
    }

    #[tokio::test]
    async fn a_fill_ends_when_its_lead_goes_and_other_namespaces_are_apart() {
        let cache = Cache::new();
        let other = cache.namespace("other");
        let (mut l, _) = lead(&cache, "k", "x".to_string());
        let (_o, _) = lead(&other, "k", "y".to_string());
        assert_eq!((cache.fills_in_flight(), other.fills_in_flight()), (1, 1));
        l.end();
        assert!(!l.is_registered());
        assert_eq!(cache.fills_in_flight(), 0);
        // Another value type under the same key: filled alone, not confused.
        let (_l, _) = lead(&cache, "k", 1u64);
        let FillRole::Lead(alone, v) = cache.join_fill("k", |_| 2u16) else {
            panic!("a fill of another type is not followed")
        };
        assert!(!alone.is_registered() && v == 2);
    }
}
