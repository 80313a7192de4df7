//! A response as it arrives from the service: its head, then its body chunks, readable by every
//! request that asked for it while it is still arriving.
//!
//! One task (the pump) feeds the recording from the service's body; each client reads it through
//! its own [`Reader`] at its own pace. While it *keeps* the body, every chunk stays (the whole body
//! gets stored when it ends) and is paid for from a [`Hold`] on the layer's and the cache's
//! budgets. Past the size cap, or once a budget says no, it only *streams*: it keeps what some
//! reader has yet to read, and the pump waits while that exceeds a small window, so a slow client
//! holds back the service instead of filling memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use parking_lot::Mutex;

use crate::budget::Hold;
use crate::stored::Rules;

/// The head of a recorded response, as every reader sends it.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Whether requests other than the leader's may use this response (it is storable for them).
    pub shareable: bool,
    /// The inputs the response varies by, and the leader's request's normalized values of them:
    /// a follower whose values differ must not use the response.
    pub vary: Vec<HeaderName>,
    pub vary_cookies: Vec<String>,
    pub vary_values: String,
    /// What the response allows for requests with credentials.
    pub rules: Rules,
    /// Its age when it arrived, for the followers' `Age`.
    pub age: u64,
}

impl Head {
    /// The head of a response only its own request may use: waiting requests fetch their own.
    pub fn unshareable(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            shareable: false,
            vary: Vec::new(),
            vary_cookies: Vec::new(),
            vary_values: String::new(),
            rules: Rules::default(),
            age: 0,
        }
    }

    /// The head of a storable response, as its plan and the leader's request describe it.
    pub fn planned(
        status: StatusCode,
        headers: HeaderMap,
        shareable: bool,
        plan: &crate::policy::Plan,
        leader_request: &HeaderMap,
    ) -> Self {
        Self {
            status,
            headers,
            shareable,
            vary: plan.vary.clone(),
            vary_cookies: plan.vary_cookies.clone(),
            vary_values: crate::vary::vary_values(plan.varied(), leader_request),
            rules: plan.rules,
            age: plan.initial_age,
        }
    }

    /// The head of a response already stored (by another process that held the fill's lock),
    /// `age` seconds old.
    pub fn stored(
        response: &crate::stored::CachedResponse,
        varied: crate::vary::Varied<'_>,
        leader_request: &HeaderMap,
        age: u64,
    ) -> Self {
        Self {
            status: response.status,
            headers: response.headers.clone(),
            shareable: true,
            vary: varied.headers.to_vec(),
            vary_cookies: varied.cookies.to_vec(),
            vary_values: crate::vary::vary_values(varied, leader_request),
            rules: response.rules,
            age,
        }
    }

    pub fn varied(&self) -> crate::vary::Varied<'_> {
        crate::vary::Varied {
            headers: &self.vary,
            cookies: &self.vary_cookies,
        }
    }
}

/// Why a reader got no (more) body.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum BodyError {
    /// The service's body failed part-way; the response is incomplete and was not stored.
    #[error("the upstream body failed: {0}")]
    Upstream(Arc<str>),
    /// The response was dropped before it ended (the request serving it was cancelled, or
    /// every client reading it left).
    #[error("the upstream response was abandoned before it ended")]
    Abandoned,
    /// The service's body sent nothing for longer than the body idle timeout; the response is
    /// incomplete and was not stored.
    #[error("the upstream body stalled")]
    Stalled,
}

enum HeadState {
    Pending,
    Ready(Arc<Head>),
    /// The leader left without a head: waiting requests fetch on their own.
    Gone,
    /// The leader gave up waiting for the head (the response timeout): waiting requests, which
    /// waited as long, give up too.
    Failed,
}

/// What a request waiting on a recording learns about its head.
pub(crate) enum HeadNews {
    Ready(Arc<Head>),
    Gone,
    Failed,
}

/// The limits a recording keeps to, from the layer's settings.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// The largest body kept whole (and so stored).
    pub cap: usize,
    /// Once streaming, how much unread body the pump may run ahead of the slowest reader.
    pub window: usize,
    /// With no client left to read it, a body is still finished (to be stored) up to this size.
    pub finish_unread_below: u64,
}

/// What recording a chunk did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pushed {
    /// The whole body is still kept.
    Kept,
    /// This chunk made the recording stop keeping the body: from now on it only streams.
    Stopped(Stop),
    /// It was only streaming already.
    Streaming,
}

/// Why a recording stopped keeping its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// The body passed the size cap.
    OverCap,
    /// The recording budget or the cache's byte bound had no more room.
    OutOfRoom,
}

/// What the pump should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Room {
    /// Read the next chunk.
    Go,
    /// Stop: nobody will read or store the rest.
    Stop,
}

struct State {
    head: HeadState,
    chunks: VecDeque<Bytes>,
    /// Absolute index of `chunks[0]`.
    base: usize,
    retained: usize,
    total: usize,
    /// The body's declared length, when the head gave one.
    expected: Option<u64>,
    end: Option<Result<(), BodyError>>,
    /// Whether the whole body is still kept; streaming keeps nothing past what readers need.
    keeping: bool,
    /// What the kept (or, once streaming, the retained) bytes hold of the budgets.
    hold: Option<Hold>,
    /// Each live reader's next absolute chunk index.
    readers: Vec<Option<usize>>,
    waiters: Vec<Waker>,
    pump: Option<Waker>,
    /// The fill's leader is gone (its fill ended and left the registry).
    lead_gone: bool,
}

impl State {
    fn keeps_all(&self) -> bool {
        self.keeping
    }
}

pub(crate) struct Recording {
    state: Mutex<State>,
    limits: Limits,
    /// The core's flag for the fill this recording is the value of: set by a purge or write of
    /// the key (here or on another process), after which nothing of it is stored.
    changed: larder::engine::Superseded,
    /// When the fill began: requests that follow it share its deadline.
    started: tokio::time::Instant,
}

impl Recording {
    /// When the fill this records began.
    pub fn started(&self) -> tokio::time::Instant {
        self.started
    }

    /// A recording that streams only, until [`keep`](Self::keep) gives it a hold.
    pub fn new(limits: Limits) -> Arc<Self> {
        Self::following(limits, larder::engine::Superseded::never())
    }

    /// A recording that is the value of a fill of the cache, superseded with it.
    pub fn following(limits: Limits, changed: larder::engine::Superseded) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                head: HeadState::Pending,
                chunks: VecDeque::new(),
                base: 0,
                retained: 0,
                total: 0,
                expected: None,
                end: None,
                keeping: false,
                hold: None,
                readers: Vec::new(),
                waiters: Vec::new(),
                pump: None,
                lead_gone: false,
            }),
            limits,
            changed,
            started: tokio::time::Instant::now(),
        })
    }

    fn wake_all(state: &mut State) {
        for w in state.waiters.drain(..) {
            w.wake();
        }
    }

    /// Keeps the whole body (to store it), paid for from `hold`, whose first growth covers the
    /// declared length when there is one. `false` when the budgets have no room: the recording
    /// then only streams.
    pub fn keep(&self, mut hold: Hold, expected: Option<u64>) -> bool {
        let mut s = self.state.lock();
        s.expected = expected;
        let upfront = expected.unwrap_or(0);
        if upfront > self.limits.cap as u64 || !hold.try_grow(upfront) {
            return false;
        }
        s.hold = Some(hold);
        s.keeping = true;
        true
    }

    pub fn set_head(&self, head: Arc<Head>) {
        let mut s = self.state.lock();
        s.head = HeadState::Ready(head);
        Self::wake_all(&mut s);
    }

    /// The leader gave up waiting for a head.
    pub fn fail(&self) {
        let mut s = self.state.lock();
        if matches!(s.head, HeadState::Pending) {
            s.head = HeadState::Failed;
        }
        Self::wake_all(&mut s);
    }

    /// The leader went away: readers waiting for a head are told to fetch on their own, and
    /// readers of an unfinished body get an error.
    pub fn abandon(&self) {
        let mut s = self.state.lock();
        s.lead_gone = true;
        match s.head {
            HeadState::Pending => s.head = HeadState::Gone,
            HeadState::Ready(_) if s.end.is_none() => s.end = Some(Err(BodyError::Abandoned)),
            _ => {}
        }
        // A body kept whole to its clean end stays readable for the requests that joined it and
        // have yet to start reading (they hold the recording; the last one frees it). Anything
        // else is let go of now.
        let complete = s.keeping && matches!(s.end, Some(Ok(())));
        if !complete {
            Self::release_unread(&mut s);
        }
        Self::wake_all(&mut s);
    }

    /// Ready once the fill's leader is gone: the fill has ended (stored or not) and a request
    /// for the key now starts or joins another.
    pub fn poll_lead_gone(&self, cx: &mut Context<'_>) -> Poll<()> {
        let mut s = self.state.lock();
        if s.lead_gone {
            return Poll::Ready(());
        }
        s.waiters.push(cx.waker().clone());
        Poll::Pending
    }

    /// The head once known, or why there will be none.
    pub fn poll_head(&self, cx: &mut Context<'_>) -> Poll<HeadNews> {
        let mut s = self.state.lock();
        match &s.head {
            HeadState::Ready(h) => Poll::Ready(HeadNews::Ready(h.clone())),
            HeadState::Gone => Poll::Ready(HeadNews::Gone),
            HeadState::Failed => Poll::Ready(HeadNews::Failed),
            HeadState::Pending => {
                s.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// A reader from the first chunk; `None` once a chunk may have been let go.
    pub fn reader(self: &Arc<Self>) -> Option<Reader> {
        let mut s = self.state.lock();
        if s.base != 0 {
            return None;
        }
        let slot = match s.readers.iter().position(Option::is_none) {
            Some(i) => {
                s.readers[i] = Some(0);
                i
            }
            None => {
                s.readers.push(Some(0));
                s.readers.len() - 1
            }
        };
        Some(Reader {
            recording: self.clone(),
            slot,
        })
    }

    /// Records a chunk; says whether the recording still keeps the whole body, and if this chunk
    /// made it stop, why.
    pub fn push(&self, chunk: Bytes) -> Pushed {
        let mut s = self.state.lock();
        let len = chunk.len();
        s.total += len;
        s.retained += len;
        s.chunks.push_back(chunk);
        let mut pushed = Pushed::Streaming;
        if s.keeps_all() {
            // The declared length was held up front; only what goes past it is held now.
            let already = s.expected.unwrap_or(0);
            let more = (s.total as u64).saturating_sub(already.max((s.total - len) as u64));
            pushed = if s.total > self.limits.cap {
                Pushed::Stopped(Stop::OverCap)
            } else if s.hold.as_mut().is_some_and(|h| h.try_grow(more)) {
                Pushed::Kept
            } else {
                Pushed::Stopped(Stop::OutOfRoom)
            };
            // Once it stops keeping, what is retained stays held until readers have read it.
            s.keeping = pushed == Pushed::Kept;
        }
        if !s.keeps_all() {
            Self::trim(&mut s);
        }
        Self::wake_all(&mut s);
        pushed
    }

    /// Serves `body`, already held elsewhere (a stored response a 304 confirmed), to the requests
    /// that waited: kept whole for them without holding budget for it twice, and ended.
    pub fn replay(&self, body: Bytes) {
        let mut s = self.state.lock();
        s.total += body.len();
        s.retained += body.len();
        s.chunks.push_back(body);
        s.keeping = true;
        if s.end.is_none() {
            s.end = Some(Ok(()));
        }
        Self::wake_all(&mut s);
    }

    pub fn finish(&self, result: Result<(), BodyError>) {
        let mut s = self.state.lock();
        if s.end.is_none() {
            s.end = Some(result);
        }
        Self::wake_all(&mut s);
    }

    /// Whether a purge or a write of its key won: no stored result will come of it.
    pub fn is_superseded(&self) -> bool {
        self.changed.is_set()
    }

    /// For the pump: whether to keep reading the service's body. With nobody left to read it,
    /// stop unless the body is still worth finishing for the cache (kept whole, not superseded,
    /// and small); while streaming, wait when the slowest reader is a window behind.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<Room> {
        let mut s = self.state.lock();
        let readers = s.readers.iter().any(Option::is_some);
        if !readers {
            let small = self.limits.finish_unread_below;
            let worth_finishing = s.keeps_all()
                && !self.changed.is_set()
                && match s.expected {
                    Some(len) => len <= small,
                    None => s.total as u64 <= small,
                };
            if !worth_finishing {
                return Poll::Ready(Room::Stop);
            }
        }
        if !s.keeps_all() && s.retained > self.limits.window {
            s.pump = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(Room::Go)
    }

    /// The body's length so far.
    pub fn total(&self) -> usize {
        self.state.lock().total
    }

    /// The whole body, when it ended cleanly, was kept whole, and nothing superseded it.
    pub fn body_to_store(&self) -> Option<Bytes> {
        let s = self.state.lock();
        if !s.keeps_all() || self.changed.is_set() || !matches!(s.end, Some(Ok(()))) {
            return None;
        }
        if s.chunks.len() == 1 {
            return s.chunks.front().cloned();
        }
        let mut body = Vec::with_capacity(s.total);
        for c in &s.chunks {
            body.extend_from_slice(c);
        }
        Some(Bytes::from(body))
    }

    /// While streaming, lets go of every chunk all readers have read, and of what it held for
    /// them.
    fn trim(s: &mut State) {
        let min = s.readers.iter().flatten().copied().min();
        let keep_from = min.unwrap_or(s.base + s.chunks.len());
        while s.base < keep_from {
            let Some(c) = s.chunks.pop_front() else { break };
            s.retained -= c.len();
            s.base += 1;
        }
        let retained = s.retained as u64;
        if let Some(h) = &mut s.hold {
            h.shrink_to(retained);
        }
        if let Some(w) = s.pump.take() {
            w.wake();
        }
    }

    /// Once the body will never be stored (abandoned), nothing need be kept for readers that
    /// are gone.
    fn release_unread(s: &mut State) {
        if s.readers.iter().all(Option::is_none) {
            s.keeping = false;
            Self::trim(s);
        }
    }
}

/// One client's position in a recording.
pub(crate) struct Reader {
    recording: Arc<Recording>,
    slot: usize,
}

impl Reader {
    pub fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        let mut s = self.recording.state.lock();
        let Some(Some(pos)) = s.readers.get(self.slot).copied() else {
            return Poll::Ready(None);
        };
        if let Some(chunk) = pos.checked_sub(s.base).and_then(|i| s.chunks.get(i)) {
            let chunk = chunk.clone();
            s.readers[self.slot] = Some(pos + 1);
            if !s.keeps_all() {
                Recording::trim(&mut s);
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match &s.end {
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(e)) => Poll::Ready(Some(Err(e.clone()))),
            None => {
                s.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// Whether every chunk has been read and the body ended cleanly.
    pub fn is_end(&self) -> bool {
        let s = self.recording.state.lock();
        let pos = s.readers.get(self.slot).copied().flatten();
        matches!(s.end, Some(Ok(()))) && pos == Some(s.base + s.chunks.len())
    }
}

impl Drop for Reader {
    fn drop(&mut self) {
        let mut s = self.recording.state.lock();
        if let Some(slot) = s.readers.get_mut(self.slot) {
            *slot = None;
        }
        if !s.keeps_all() {
            Recording::trim(&mut s);
        } else if let Some(w) = s.pump.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::budget::Budget;
    use futures::task::noop_waker;

    fn cx() -> Context<'static> {
        Context::from_waker(Box::leak(Box::new(noop_waker())))
    }

    fn read_all(r: &mut Reader) -> (Vec<u8>, Option<BodyError>) {
        let mut out = Vec::new();
        loop {
            match r.poll_chunk(&mut cx()) {
                Poll::Ready(Some(Ok(c))) => out.extend_from_slice(&c),
                Poll::Ready(Some(Err(e))) => return (out, Some(e)),
                Poll::Ready(None) | Poll::Pending => return (out, None),
            }
        }
    }

    fn limits(cap: usize) -> Limits {
        Limits {
            cap,
            window: 4,
            finish_unread_below: 10,
        }
    }

    /// A recording that keeps its body, on a budget of `budget` bytes.
    fn kept(cap: usize, budget: u64) -> (Arc<Recording>, Arc<Budget>) {
        let budget = Budget::new(budget);
        let rec = Recording::new(limits(cap));
        assert!(rec.keep(
            Hold::new(
                &crate::budget::Budgets {
                    layer: budget.clone(),
                    oversize: None
                },
                &larder::Cache::new()
            ),
            None
        ));
        (rec, budget)
    }

    #[test]
    fn late_readers_get_everything_and_the_body_is_stored_whole() {
        let (rec, budget) = kept(100, 1000);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"ab"));
        assert_eq!(read_all(&mut a).0, b"ab");
        rec.push(Bytes::from_static(b"cd"));
        let mut b = rec.reader().unwrap();
        rec.finish(Ok(()));
        assert_eq!(read_all(&mut b).0, b"abcd");
        assert_eq!(read_all(&mut a).0, b"cd");
        assert!(a.is_end() && b.is_end());
        assert_eq!(rec.body_to_store().unwrap().as_ref(), b"abcd");
        assert_eq!(budget.used(), 4, "what is kept is held");
        drop((a, b));
        drop(rec);
        assert_eq!(budget.used(), 0);
    }

    /// Requests that joined a fill and learn its head only after it ended and its leader let go
    /// (a replayed or very fast fill) still read it whole, instead of fetching on their own.
    #[test]
    fn a_complete_recording_stays_readable_after_its_leader_lets_go() {
        let (rec, budget) = kept(100, 1000);
        rec.replay(Bytes::from_static(b"whole"));
        rec.abandon();
        let mut late = rec.reader().expect("a reader from the first chunk");
        assert_eq!(read_all(&mut late).0, b"whole");
        drop(late);
        drop(rec);
        assert_eq!(budget.used(), 0);
        // An unfinished one is let go of as before.
        let (rec, _budget) = kept(100, 1000);
        rec.push(Bytes::from_static(b"part"));
        rec.abandon();
        assert!(rec.reader().is_none());
    }

    #[test]
    fn past_the_cap_nothing_is_stored_and_read_chunks_are_let_go() {
        let (rec, budget) = kept(4, 1000);
        let mut a = rec.reader().unwrap();
        assert_eq!(rec.push(Bytes::from_static(b"abc")), Pushed::Kept);
        assert_eq!(
            rec.push(Bytes::from_static(b"def")),
            Pushed::Stopped(Stop::OverCap)
        );
        assert_eq!(rec.push(Bytes::from_static(b"g")), Pushed::Streaming);
        assert_eq!(read_all(&mut a).0, b"abcdefg");
        assert!(rec.reader().is_none(), "no new reader once chunks are gone");
        assert_eq!(rec.state.lock().retained, 0);
        assert_eq!(budget.used(), 0, "nothing retained, nothing held");
        rec.finish(Ok(()));
        assert!(rec.body_to_store().is_none());
        drop(a);
        assert_eq!(
            rec.poll_room(&mut cx()),
            Poll::Ready(Room::Stop),
            "nobody left to read it"
        );
    }

    #[test]
    fn a_full_budget_turns_the_recording_into_a_stream() {
        let (rec, budget) = kept(100, 5);
        let mut a = rec.reader().unwrap();
        assert_eq!(rec.push(Bytes::from_static(b"abc")), Pushed::Kept);
        assert_eq!(
            rec.push(Bytes::from_static(b"def")),
            Pushed::Stopped(Stop::OutOfRoom)
        );
        assert_eq!(read_all(&mut a).0, b"abcdef");
        assert_eq!(budget.used(), 0);
        rec.finish(Ok(()));
        assert!(rec.body_to_store().is_none());

        // No room at all: it streams from the start, and readers that joined before any chunk
        // was let go still share it.
        let budget = Budget::new(0);
        let rec = Recording::new(limits(100));
        assert!(!rec.keep(
            Hold::new(
                &crate::budget::Budgets {
                    layer: budget,
                    oversize: None
                },
                &larder::Cache::new()
            ),
            Some(3)
        ));
        let (mut x, mut y) = (rec.reader().unwrap(), rec.reader().unwrap());
        rec.push(Bytes::from_static(b"xyz"));
        assert_eq!(read_all(&mut x).0, b"xyz");
        assert_eq!(read_all(&mut y).0, b"xyz");
    }

    #[test]
    fn a_slow_reader_of_a_stream_holds_the_pump_back() {
        let (rec, _) = kept(4, 1000);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"abcde"));
        assert_eq!(rec.poll_room(&mut cx()), Poll::Pending);
        read_all(&mut a);
        assert_eq!(rec.poll_room(&mut cx()), Poll::Ready(Room::Go));
    }

    #[test]
    fn with_every_client_gone_only_a_small_kept_body_is_finished() {
        let (rec, _) = kept(100, 1000);
        rec.push(Bytes::from_static(b"0123456789"));
        assert_eq!(
            rec.poll_room(&mut cx()),
            Poll::Ready(Room::Go),
            "within 10 bytes"
        );
        rec.push(Bytes::from_static(b"!"));
        assert_eq!(rec.poll_room(&mut cx()), Poll::Ready(Room::Stop), "past it");

        let budget = Budget::new(1000);
        let rec = Recording::new(limits(100));
        assert!(rec.keep(
            Hold::new(
                &crate::budget::Budgets {
                    layer: budget,
                    oversize: None
                },
                &larder::Cache::new()
            ),
            Some(50)
        ));
        assert_eq!(
            rec.poll_room(&mut cx()),
            Poll::Ready(Room::Stop),
            "a declared length past it stops at once"
        );
    }

    #[test]
    fn errors_and_abandonment_reach_readers_and_prevent_storing() {
        let (rec, _) = kept(100, 1000);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"ab"));
        rec.finish(Err(BodyError::Upstream("reset".into())));
        assert_eq!(
            read_all(&mut a),
            (b"ab".to_vec(), Some(BodyError::Upstream("reset".into())))
        );
        assert!(rec.body_to_store().is_none());

        let rec = Recording::new(limits(100));
        rec.abandon();
        assert!(matches!(
            rec.poll_head(&mut cx()),
            Poll::Ready(HeadNews::Gone)
        ));
        let rec = Recording::new(limits(100));
        rec.fail();
        assert!(matches!(
            rec.poll_head(&mut cx()),
            Poll::Ready(HeadNews::Failed)
        ));
    }

    #[tokio::test]
    async fn superseded_recordings_serve_readers_but_are_not_stored() {
        let cache = larder::Cache::new();
        let larder::engine::FillRole::Lead(_lead, rec) =
            cache.join_fill("k", |changed| Recording::following(limits(100), changed))
        else {
            panic!("nothing else fills k")
        };
        assert!(rec.keep(
            Hold::new(
                &crate::budget::Budgets {
                    layer: Budget::new(1000),
                    oversize: None
                },
                &cache
            ),
            None
        ));
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"ab"));
        cache.delete("k").await; // a purge of the key while it is recorded
        assert!(rec.is_superseded());
        rec.finish(Ok(()));
        assert_eq!(read_all(&mut a).0, b"ab");
        assert!(rec.body_to_store().is_none());
    }
}
