//! Single-flight: one factory run per cold key, shared by every caller that wants it.
//!
//! The first caller of a cold key registers a flight and spawns the fetch as a task of its own;
//! every caller, the first included, awaits the task's result through a shared future. So dropping
//! any caller cancels nobody else, and the task always reports an outcome: a value, an error, a
//! contained panic, or — if the runtime drops the task — `Cancelled`, never a hang.

use std::any::Any;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::thread::ThreadId;
use std::time::Duration;

use ahash::HashMap;
use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::memory::AnyValue;

/// What a flight produced.
#[derive(Clone)]
pub(crate) enum Outcome {
    /// A value, and where it came from.
    Value {
        value: AnyValue,
        source: Source,
    },
    /// The factory's own error (type-erased `E`).
    Factory(Arc<dyn Any + Send + Sync>),
    Timeout(Duration),
    Panicked(Arc<str>),
    Cancelled,
}

/// Where a flight's value came from.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Source {
    /// Found fresh in memory by the flight's own re-check (another flight just filled it).
    Memory,
    /// Found fresh in the remote store.
    Remote,
    /// Produced by the factory.
    Factory,
    /// A stale fallback served because the factory failed or timed out.
    Stale,
}

pub(crate) type SharedOutcome = Shared<BoxFuture<'static, Outcome>>;

type FlightKey = (Arc<str>, Box<str>);

struct Flight {
    id: u64,
    led: Led,
    outcome: SharedOutcome,
    /// Set by a `set`, `delete` or namespace clear while the fetch runs: its result is still handed
    /// to the waiters but no longer written, so the newer write (or the removal) wins.
    superseded: Arc<AtomicBool>,
    /// Wall-clock microseconds when the fetch began, to tell another node's change that happened
    /// before it (its message merely arrived late) from one that happened during it.
    began: u64,
    /// A fill's value, published when it began, which later callers follow while it is
    /// produced (`Cache::join_fill`: an HTTP response recorded as it streams). `None` for a
    /// `get_or_fetch` flight, whose callers await its outcome.
    followed: Option<AnyValue>,
    /// Tags the fill learnt as it ran (an HTTP response's `Surrogate-Key`): invalidating one
    /// supersedes it.
    tags: Vec<String>,
    /// The distributed lock a fill holds while it runs (`FillLead::hold_lock`). It goes with the
    /// entry: released when the fill ends, and at once when a change supersedes the fill, so the
    /// fills that follow the change (here or on another process) need not wait for one whose
    /// result will never be stored.
    lock: Option<crate::lock::KeyLock>,
}

impl Flight {
    /// The registry's entry for the flight `ticket` leads.
    fn new(ticket: &Ticket, led: Led, outcome: SharedOutcome, followed: Option<AnyValue>) -> Self {
        Self {
            id: ticket.id,
            led,
            outcome,
            superseded: Arc::clone(&ticket.superseded),
            began: crate::clock::unix_micros(),
            followed,
            tags: Vec::new(),
            lock: None,
        }
    }

    /// Marks the flight superseded; whether it is to leave the registry too. A followed fill
    /// does: a caller that comes after the change must not follow what was made before it. A
    /// `get_or_fetch` flight stays for the callers already waiting, and is not written.
    fn supersede(&self) -> bool {
        self.superseded.store(true, Relaxed);
        self.followed.is_some()
    }
}

/// The in-flight fetches of one cache.
pub(crate) struct Flights {
    shards: Box<[Mutex<HashMap<FlightKey, Flight>>]>,
    next_id: AtomicU64,
}

/// Handed to the caller that started a flight: the task must report through it.
pub(crate) struct Ticket {
    flights: Arc<Flights>,
    key: FlightKey,
    id: u64,
    tx: Option<oneshot::Sender<Outcome>>,
    superseded: Arc<AtomicBool>,
}

impl std::fmt::Debug for Ticket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ticket")
            .field("key", &self.key)
            .field("id", &self.id)
            .finish()
    }
}

impl Ticket {
    /// The flight's id, unique in its cache.
    pub(crate) fn id(&self) -> u64 {
        self.id
    }

    /// Gives the flight the lock it holds (see `Flights::hold_lock`).
    pub(crate) fn hold_lock(&self, lock: crate::lock::KeyLock) -> Option<crate::lock::KeyLock> {
        self.flights.hold_lock(self, lock)
    }

    /// Records the tags the flight learnt (see `Flights::set_tags`).
    pub(crate) fn set_tags(&self, tags: &[String]) {
        self.flights.set_tags(self, tags);
    }

    /// Whether a write, delete or clear of the key happened since the flight began.
    pub(crate) fn superseded(&self) -> bool {
        self.superseded.load(Relaxed)
    }

    /// Ends the flight: later callers no longer join it (they will see whatever the task wrote to
    /// the cache), and every waiter receives `outcome`.
    pub(crate) fn finish(mut self, outcome: Outcome) {
        self.flights.remove(&self.key, self.id);
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(outcome);
        }
    }
}

impl Drop for Ticket {
    // Reached without `finish` only if the task was dropped mid-way (runtime shutdown): unregister
    // so the next caller starts afresh; waiters see the closed channel as `Cancelled`.
    fn drop(&mut self) {
        if self.tx.is_some() {
            self.flights.remove(&self.key, self.id);
        }
    }
}

/// Who runs a flight: a task of its own (`get_or_fetch`), or a caller's thread, inline
/// (`get_or_compute`). A blocking caller may wait only for a flight another thread runs: waiting
/// on a task could stall the very runtime thread that task needs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Led {
    ByTask,
    ByThread(ThreadId),
}

/// The result of joining: either this caller must start the fetch, or it is already running.
pub(crate) enum Join {
    Leader(Ticket, SharedOutcome),
    Follower(SharedOutcome, Led),
}

impl Flights {
    pub(crate) fn new() -> Self {
        let shards = std::thread::available_parallelism()
            .map(|n| n.get() * 4)
            .unwrap_or(16)
            .next_power_of_two();
        Self {
            shards: (0..shards)
                .map(|_| Mutex::new(HashMap::default()))
                .collect(),
            next_id: AtomicU64::new(1),
        }
    }

    fn shard(&self, ns: &str, key: &str) -> &Mutex<HashMap<FlightKey, Flight>> {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut h = ahash::RandomState::with_seeds(1, 2, 3, 4).build_hasher();
        ns.hash(&mut h);
        key.hash(&mut h);
        &self.shards[(h.finish() as usize) & (self.shards.len() - 1)]
    }

    /// Joins the flight for `(ns, key)`, registering a new one, `led` as given, if none is
    /// running.
    pub(crate) fn join(self: &Arc<Self>, ns: &Arc<str>, key: &str, led: Led) -> Join {
        let mut map = self.shard(ns, key).lock();
        let flight_key: FlightKey = (Arc::clone(ns), key.into());
        let held = match map.get(&flight_key) {
            Some(f) if f.followed.is_none() => return Join::Follower(f.outcome.clone(), f.led),
            // A followed fill (`join_fill`) holds the key, and has no outcome to share: this
            // fetch runs on its own, unregistered (its ticket's id is in no map).
            Some(_) => true,
            None => false,
        };
        let (ticket, outcome) = self.ticket(flight_key);
        if !held {
            let flight = Flight::new(&ticket, led, outcome.clone(), None);
            map.insert(ticket.key.clone(), flight);
        }
        Join::Leader(ticket, outcome)
    }

    /// Registers a followed fill for `(ns, key)` with the value `make` builds (given the fill's
    /// superseded flag; it returns what to register and what to hand the caller), or returns
    /// the value of the one in flight and `make` unused. `None` for the value when a
    /// `get_or_fetch` flight holds the key: the caller fills alone, unregistered.
    #[allow(clippy::type_complexity)] // the two outcomes, each with what the caller needs
    pub(crate) fn join_followed<F, R>(
        self: &Arc<Self>,
        ns: &Arc<str>,
        key: &str,
        make: F,
    ) -> Result<(Ticket, R), (Option<AnyValue>, F)>
    where
        F: FnOnce(Arc<AtomicBool>) -> (AnyValue, R),
    {
        let mut map = self.shard(ns, key).lock();
        let flight_key: FlightKey = (Arc::clone(ns), key.into());
        if let Some(f) = map.get(&flight_key) {
            return Err((f.followed.clone(), make));
        }
        // Nobody awaits a followed fill's outcome; the channel is there for the shape.
        let (ticket, outcome) = self.ticket(flight_key);
        let (value, for_caller) = make(Arc::clone(&ticket.superseded));
        let flight = Flight::new(&ticket, Led::ByTask, outcome, Some(value));
        map.insert(ticket.key.clone(), flight);
        Ok((ticket, for_caller))
    }

    /// A new flight's ticket for `key`, and the outcome it reports into.
    fn ticket(self: &Arc<Self>, key: FlightKey) -> (Ticket, SharedOutcome) {
        let (tx, rx) = oneshot::channel();
        let outcome = rx.map(|r| r.unwrap_or(Outcome::Cancelled)).boxed().shared();
        let ticket = Ticket {
            flights: Arc::clone(self),
            key,
            id: self.next_id.fetch_add(1, Relaxed),
            tx: Some(tx),
            superseded: Arc::new(AtomicBool::new(false)),
        };
        (ticket, outcome)
    }

    /// Records the tags a fill learnt, so invalidating one of them supersedes it.
    pub(crate) fn set_tags(&self, ticket: &Ticket, tags: &[String]) {
        let mut map = self.shard(&ticket.key.0, &ticket.key.1).lock();
        if let Some(f) = map.get_mut(&ticket.key).filter(|f| f.id == ticket.id) {
            f.tags = tags.to_vec();
        }
    }

    /// Gives the flight `ticket` leads the lock it holds (see `Flight::lock`); the lock back when
    /// the flight is no longer registered (superseded already), for the caller to release.
    pub(crate) fn hold_lock(
        &self,
        ticket: &Ticket,
        lock: crate::lock::KeyLock,
    ) -> Option<crate::lock::KeyLock> {
        let mut map = self.shard(&ticket.key.0, &ticket.key.1).lock();
        match map.get_mut(&ticket.key).filter(|f| f.id == ticket.id) {
            Some(f) => {
                f.lock = Some(lock);
                None
            }
            None => Some(lock),
        }
    }

    /// The followed fills in flight in namespace `ns`.
    pub(crate) fn followed_in(&self, ns: &str) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let map = s.lock();
                map.iter()
                    .filter(|((f_ns, _), f)| &**f_ns == ns && f.followed.is_some())
                    .count()
            })
            .sum()
    }

    /// Marks the fetch in flight for `(ns, key)`, if any, as superseded.
    pub(crate) fn supersede(&self, ns: &str, key: &str) {
        self.supersede_begun_by(ns, key, u64::MAX);
    }

    /// As `supersede`, except for the flight `own` (a fill storing its own result).
    pub(crate) fn supersede_other(&self, ns: &str, key: &str, own: u64) {
        let mut map = self.shard(ns, key).lock();
        if map.is_empty() {
            return;
        }
        map.retain(|(f_ns, f_key), flight| {
            !(&**f_ns == ns && &**f_key == key && flight.id != own && flight.supersede())
        });
    }

    /// Marks the fetch in flight for `(ns, key)` as superseded if it began at or before `at`
    /// (wall-clock microseconds): for a change another node made at `at`.
    pub(crate) fn supersede_begun_by(&self, ns: &str, key: &str, at: u64) {
        let mut map = self.shard(ns, key).lock();
        // Looking up by the owned key type needs an allocation; flights are few, so scan instead
        // only when the shard is not empty.
        if map.is_empty() {
            return;
        }
        map.retain(|(f_ns, f_key), flight| {
            !(&**f_ns == ns && &**f_key == key && flight.began <= at && flight.supersede())
        });
    }

    /// Marks every fetch in flight in namespace `ns` that began at or before `at` as superseded.
    pub(crate) fn supersede_namespace(&self, ns: &str, at: u64) {
        for shard in &*self.shards {
            shard.lock().retain(|(f_ns, _), flight| {
                !(&**f_ns == ns && flight.began <= at && flight.supersede())
            });
        }
    }

    /// Marks every fetch in flight that learnt one of `tags` as superseded.
    pub(crate) fn supersede_tags(&self, tags: &[&str]) {
        for shard in &*self.shards {
            shard.lock().retain(|_, flight| {
                !(flight.tags.iter().any(|t| tags.contains(&t.as_str())) && flight.supersede())
            });
        }
    }

    fn remove(&self, key: &FlightKey, id: u64) {
        let mut map = self.shard(&key.0, &key.1).lock();
        if map.get(key).is_some_and(|f| f.id == id) {
            map.remove(key);
        }
    }
}

/// Runs `fut` on the current tokio runtime, or — outside one — returns it for the caller to drive,
/// so a cache used without a runtime degrades (the fetch is tied to its caller) instead of panicking.
pub(crate) fn spawn_or_inline(fut: BoxFuture<'static, ()>) -> Option<BoxFuture<'static, ()>> {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(fut);
            None
        }
        Err(_) => Some(fut),
    }
}

/// Turns a panic payload into a message.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&str>() {
        Arc::from(*s)
    } else if let Some(s) = payload.downcast_ref::<String>() {
        Arc::from(s.as_str())
    } else {
        Arc::from("non-string panic payload")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lead(flights: &Arc<Flights>, key: &str) -> Ticket {
        match flights.join(&Arc::from("ns"), key, Led::ByTask) {
            Join::Leader(ticket, _) => ticket,
            Join::Follower(..) => panic!("a flight for {key} was already running"),
        }
    }

    #[test]
    fn a_change_made_before_a_fetch_began_does_not_supersede_it() {
        let flights = Arc::new(Flights::new());
        let before = crate::clock::unix_micros().saturating_sub(1);
        let ticket = lead(&flights, "k");
        flights.supersede_begun_by("ns", "k", before);
        flights.supersede_namespace("ns", before);
        assert!(!ticket.superseded());
        flights.supersede_begun_by("ns", "other", u64::MAX);
        assert!(!ticket.superseded());
        flights.supersede_begun_by("ns", "k", crate::clock::unix_micros());
        assert!(ticket.superseded());
    }

    #[test]
    fn a_change_made_during_a_fetch_supersedes_it() {
        let flights = Arc::new(Flights::new());
        let (one, two) = (lead(&flights, "a"), lead(&flights, "b"));
        flights.supersede_namespace("other", u64::MAX);
        assert!(!one.superseded() && !two.superseded());
        flights.supersede_namespace("ns", crate::clock::unix_micros());
        assert!(one.superseded() && two.superseded());
        let three = lead(&flights, "c");
        flights.supersede("ns", "c");
        assert!(three.superseded());
    }
}
