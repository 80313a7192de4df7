//! A response as it arrives from the service: its head, then its body chunks, readable by every
//! request that asked for it while it is still arriving.
//!
//! One task (the pump) feeds the recording from the service's body; each client reads it through
//! its own [`Reader`] at its own pace. Until the body passes the size cap every chunk is kept (the
//! whole body gets stored when it ends); past the cap the recording keeps only what some reader
//! has yet to read, and the pump waits while that exceeds the cap, so a slow client holds back
//! the service instead of filling memory.

use std::collections::VecDeque;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, StatusCode};
use parking_lot::Mutex;

/// The head of a recorded response, as every reader sends it.
#[derive(Debug)]
pub(crate) struct Head {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// Whether requests other than the leader's may use this response (it is storable for them).
    pub shareable: bool,
    /// The headers the response varies by, and the leader's request's normalized values of them:
    /// a follower whose values differ must not use the response.
    pub vary: Vec<HeaderName>,
    pub vary_values: String,
    /// Whether the response may answer a request that carries Authorization.
    pub shareable_with_auth: bool,
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
            vary_values: String::new(),
            shareable_with_auth: false,
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
            vary_values: crate::key::vary_values(&plan.vary, leader_request),
            shareable_with_auth: plan.rules.shareable_with_auth,
            age: plan.initial_age,
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
    /// The response was dropped before it ended (the request serving it was cancelled).
    #[error("the upstream response was abandoned before it ended")]
    Abandoned,
}

enum HeadState {
    Pending,
    Ready(Arc<Head>),
    Gone,
}

struct State {
    head: HeadState,
    chunks: VecDeque<Bytes>,
    /// Absolute index of `chunks[0]`.
    base: usize,
    retained: usize,
    total: usize,
    end: Option<Result<(), BodyError>>,
    overflowed: bool,
    superseded: bool,
    /// Each live reader's next absolute chunk index.
    readers: Vec<Option<usize>>,
    waiters: Vec<Waker>,
    pump: Option<Waker>,
}

pub(crate) struct Recording {
    state: Mutex<State>,
    cap: usize,
}

impl Recording {
    pub fn new(cap: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(State {
                head: HeadState::Pending,
                chunks: VecDeque::new(),
                base: 0,
                retained: 0,
                total: 0,
                end: None,
                overflowed: false,
                superseded: false,
                readers: Vec::new(),
                waiters: Vec::new(),
                pump: None,
            }),
            cap,
        })
    }

    fn wake_all(state: &mut State) {
        for w in state.waiters.drain(..) {
            w.wake();
        }
    }

    pub fn set_head(&self, head: Arc<Head>) {
        let mut s = self.state.lock();
        s.head = HeadState::Ready(head);
        Self::wake_all(&mut s);
    }

    /// The leader went away: readers waiting for a head are told to fetch on their own, and
    /// readers of an unfinished body get an error.
    pub fn abandon(&self) {
        let mut s = self.state.lock();
        match s.head {
            HeadState::Pending => s.head = HeadState::Gone,
            HeadState::Ready(_) if s.end.is_none() => s.end = Some(Err(BodyError::Abandoned)),
            _ => {}
        }
        Self::wake_all(&mut s);
    }

    /// The head once known; `None` when the leader left without one.
    pub fn poll_head(&self, cx: &mut Context<'_>) -> Poll<Option<Arc<Head>>> {
        let mut s = self.state.lock();
        match &s.head {
            HeadState::Ready(h) => Poll::Ready(Some(h.clone())),
            HeadState::Gone => Poll::Ready(None),
            HeadState::Pending => {
                s.waiters.push(cx.waker().clone());
                Poll::Pending
            }
        }
    }

    /// A reader from the first chunk; `None` past the cap, where chunks may have been let go.
    pub fn reader(self: &Arc<Self>) -> Option<Reader> {
        let mut s = self.state.lock();
        if s.overflowed || s.base != 0 {
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

    /// Records a chunk; whether the recording is still within the cap.
    pub fn push(&self, chunk: Bytes) -> bool {
        let mut s = self.state.lock();
        s.total += chunk.len();
        s.retained += chunk.len();
        s.chunks.push_back(chunk);
        if s.total > self.cap {
            s.overflowed = true;
            Self::trim(&mut s);
        }
        Self::wake_all(&mut s);
        !s.overflowed
    }

    pub fn finish(&self, result: Result<(), BodyError>) {
        let mut s = self.state.lock();
        if s.end.is_none() {
            s.end = Some(result);
        }
        Self::wake_all(&mut s);
    }

    /// No stored result will come of this recording (a purge or a write for its key won).
    pub fn supersede(&self) {
        self.state.lock().superseded = true;
    }

    pub fn is_superseded(&self) -> bool {
        self.state.lock().superseded
    }

    /// For the pump: whether to keep reading the service's body. Nobody left to read it and no
    /// chance to store it means stop; too much unread past the cap means wait.
    pub fn poll_room(&self, cx: &mut Context<'_>) -> Poll<bool> {
        let mut s = self.state.lock();
        let readers = s.readers.iter().any(Option::is_some);
        if !readers && (s.overflowed || s.superseded) {
            return Poll::Ready(false);
        }
        if s.overflowed && s.retained > self.cap {
            s.pump = Some(cx.waker().clone());
            return Poll::Pending;
        }
        Poll::Ready(true)
    }

    /// The whole body, when it ended cleanly within the cap and nothing superseded it.
    pub fn body_to_store(&self) -> Option<Bytes> {
        let s = self.state.lock();
        if s.overflowed || s.superseded || !matches!(s.end, Some(Ok(()))) {
            return None;
        }
        let mut body = Vec::with_capacity(s.total);
        for c in &s.chunks {
            body.extend_from_slice(c);
        }
        Some(Bytes::from(body))
    }

    /// Past the cap, lets go of every chunk all readers have read.
    fn trim(s: &mut State) {
        let min = s.readers.iter().flatten().copied().min();
        let keep_from = min.unwrap_or(s.base + s.chunks.len());
        while s.base < keep_from {
            let Some(c) = s.chunks.pop_front() else { break };
            s.retained -= c.len();
            s.base += 1;
        }
        if let Some(w) = s.pump.take() {
            w.wake();
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
            if s.overflowed {
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
        if s.overflowed {
            Recording::trim(&mut s);
        } else if let Some(w) = s.pump.take() {
            w.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
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

    #[test]
    fn late_readers_get_everything_and_the_body_is_stored_whole() {
        let rec = Recording::new(100);
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
    }

    #[test]
    fn past_the_cap_nothing_is_stored_and_read_chunks_are_let_go() {
        let rec = Recording::new(4);
        let mut a = rec.reader().unwrap();
        assert!(rec.push(Bytes::from_static(b"abc")));
        assert!(!rec.push(Bytes::from_static(b"def")));
        assert!(
            rec.reader().is_none(),
            "no new reader once chunks may be gone"
        );
        assert_eq!(read_all(&mut a).0, b"abcdef");
        assert_eq!(rec.state.lock().retained, 0);
        rec.finish(Ok(()));
        assert!(rec.body_to_store().is_none());
        drop(a);
        assert_eq!(
            rec.poll_room(&mut cx()),
            Poll::Ready(false),
            "nobody left to read it"
        );
    }

    #[test]
    fn a_slow_reader_past_the_cap_holds_the_pump_back() {
        let rec = Recording::new(4);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"abcde"));
        assert_eq!(rec.poll_room(&mut cx()), Poll::Pending);
        read_all(&mut a);
        assert_eq!(rec.poll_room(&mut cx()), Poll::Ready(true));
    }

    #[test]
    fn errors_and_abandonment_reach_readers_and_prevent_storing() {
        let rec = Recording::new(100);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"ab"));
        rec.finish(Err(BodyError::Upstream("reset".into())));
        assert_eq!(
            read_all(&mut a),
            (b"ab".to_vec(), Some(BodyError::Upstream("reset".into())))
        );
        assert!(rec.body_to_store().is_none());

        let rec = Recording::new(100);
        rec.abandon();
        assert!(matches!(rec.poll_head(&mut cx()), Poll::Ready(None)));
    }

    #[test]
    fn superseded_recordings_serve_readers_but_are_not_stored() {
        let rec = Recording::new(100);
        let mut a = rec.reader().unwrap();
        rec.push(Bytes::from_static(b"ab"));
        rec.supersede();
        rec.finish(Ok(()));
        assert_eq!(read_all(&mut a).0, b"ab");
        assert!(rec.body_to_store().is_none());
    }
}
