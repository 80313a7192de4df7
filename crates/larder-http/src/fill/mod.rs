//! Everything past the synchronous hit: judging what the lookup found, then filling the key:
//! joining the fill in flight in this process (`follow`), taking the fill's lock across processes
//! (`across`), or fetching from the service (`fetch`, and `revalidate` for a 304).
//!
//! ```text
//! lookup (memory, then remote) -> judge (RFC 9111 and the request's rule)
//!   fresh, or stale and allowed     -> serve it
//!   within stale-while-revalidate   -> serve it; one background fetch
//!   stale, its origin failing       -> serve it, without asking again (the fail-safe throttle:
//!                                      the core's one map, `standing_in`)
//!   forbidden for its credentials   -> fetch alone
//!   missing, or must revalidate     -> lead_or_follow:
//!       a fill in flight here       -> follow its recording as it grows (within the rule's soft
//!                                      timeout; its origin failing -> the stale copy, as the
//!                                      leader got)
//!       hit-for-pass                -> fetch alone, at once
//!       leading                     -> the lock across processes (another's response: serve it)
//!                                      -> fetch: `call_source` under the response timeout
//!                                         (within the rule's soft timeout when a stale copy may
//!                                         stand in: `within_soft_timeout`); the origin failing
//!                                         -> the stale copy (marked: `stood_in`), or its error
//! ```
//!
//! RFC 9111 decides here what may be served stale, not the core's fail-safe window:
//! `must-revalidate` forbids it whatever the window, and the windows are the response's
//! `stale-if-error` and `stale-while-revalidate` or the rule's (`Fill::stand_in`); and so the
//! stale answers are counted here (`answer::serve`). The core provides the rest, through
//! `larder::engine`: the flight (`Cache::join_fill`: `coalesce.rs` registers each fill's
//! recording there; joining counts a coalesced waiter), the lock (`Cache::lock_key`), the call
//! of the origin under the response timeout, counted (`call_source`), the soft-timeout race
//! (`within_soft_timeout`, for leaders and followers alike) and the fail-safe throttle's one map
//! (`stood_in` / `standing_in`); see the read path in larder-core's `fetch.rs`.

mod across;
mod fetch;
mod follow;
mod revalidate;

use crate::lookup::lookup;
use crate::origin::{Origin, OriginBody};
use across::Across;
use follow::{Followed, follow};
use larder::engine::{Raced, within_soft_timeout};

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::request::Parts;
use http::{Response, StatusCode};
use tokio::runtime::Handle;

use crate::answer::serve;
use crate::body::CacheBody;
use crate::coalesce::{Recordings, Role};
use crate::config::Config;
use crate::directives::CacheControl;
use crate::headers::{self, CacheStatus, Outcome};
use crate::policy::{self, Credentials, Verdict};
use crate::state::LayerState;
use crate::stored::Kept;
use crate::vary::VaryIndex;

/// A cacheable request the memory tier did not answer (or answered with a response due for an
/// early refresh): everything a fill needs of it, passed as one.
pub(crate) struct Miss<S, ReqB> {
    pub state: Arc<LayerState>,
    /// The settings for this request (its rule's).
    pub cfg: Arc<Config>,
    pub rt: Handle,
    pub inner: S,
    pub parts: Parts,
    pub body: ReqB,
    /// Its primary key.
    pub key: String,
}

impl<S, ReqB> Miss<S, ReqB> {
    /// The fill of this request's key, with what the cache held under it.
    fn fill(&self, index: Option<VaryIndex>) -> Fill {
        Fill {
            state: self.state.clone(),
            cfg: self.cfg.clone(),
            rt: self.rt.clone(),
            key: self.key.clone(),
            index,
            deadline: None,
        }
    }
}

/// One background refresh of a response still fresh but past the rule's eager-refresh point,
/// unless a fill for the key is in flight already. Requests keep getting the stored response
/// meanwhile; the refresh (conditional when it has validators) replaces it when it lands.
pub(crate) fn refresh_early<S, ReqB, ResB>(
    miss: Miss<S, ReqB>,
    stored: Kept,
    index: Option<VaryIndex>,
) where
    S: Origin<ReqB, ResB>,
    ReqB: Send + 'static,
    ResB: OriginBody,
{
    let fill = miss.fill(index);
    fill.refresh_in_background(miss.inner, miss.parts, miss.body, stored, Refresh::Early);
}

pub(super) type Reply<B, E> = Result<Response<CacheBody<B>>, E>;

/// A cacheable request that the memory tier did not answer fresh.
pub(crate) fn respond<S, ReqB, ResB>(
    miss: Miss<S, ReqB>,
    request_cc: CacheControl,
) -> BoxFuture<'static, Reply<ResB, S::Error>>
where
    S: Origin<ReqB, ResB>,
    ReqB: Send + 'static,
    ResB: OriginBody,
{
    Box::pin(async move {
        let found = lookup(&miss.state, &miss.cfg, &miss.key, &miss.parts.headers).await;
        let fill = miss.fill(found.index);
        let Miss {
            state,
            cfg,
            inner,
            parts,
            body,
            ..
        } = miss;
        let now = cfg.now_ms();
        let credentials = Credentials::of(&parts.headers, &cfg);
        let limits = state.limits();
        let mut prior = None;
        if let Some(stored) = found.response {
            match policy::judge(&stored, &request_cc, credentials, now) {
                Verdict::Fresh => {
                    let reply = serve(&state, &stored, &parts, CacheStatus::Hit, now);
                    if crate::hit::due_for_refresh(&cfg, &stored, now) {
                        // The fill refreshes in the background; this reply is served now.
                        fill.refresh_in_background(inner, parts, body, stored, Refresh::Early);
                    }
                    return Ok(reply);
                }
                Verdict::StaleAllowed => {
                    return Ok(serve(&state, &stored, &parts, CacheStatus::Stale, now));
                }
                Verdict::StaleWhileRevalidate => {
                    let reply = serve(&state, &stored, &parts, CacheStatus::Stale, now);
                    fill.refresh_in_background(inner, parts, body, stored, Refresh::Stale);
                    return Ok(reply);
                }
                Verdict::Forbidden => {
                    let guard = Recordings::detached(limits);
                    return fill.fetch(inner, parts, body, None, guard).await;
                }
                Verdict::Revalidate => prior = Some(stored),
            }
        }
        // A `no-cache` request asks the origin even while it is failing.
        if !request_cc.no_cache
            && let Some(stale) = fill.fail_safe(&prior, &parts)
        {
            return Ok(stale);
        }
        if request_cc.only_if_cached {
            return Ok(gateway_timeout(&state, "only-if-cached"));
        }
        // A `no-cache` request may share only a response the origin made after it arrived.
        let arrived = request_cc.no_cache.then(tokio::time::Instant::now);
        fill.lead_or_follow(inner, parts, body, prior, arrived)
            .await
    })
}

/// A response for which nothing is to be had in time: 504, for `only-if-cached` (§5.2.1.7) and
/// for a fetch that got no head within the response timeout.
fn gateway_timeout<B>(state: &LayerState, why: &'static str) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    let outcome = Outcome::from(CacheStatus::Miss).detail(why);
    headers::mark(response.headers_mut(), &state.current().config, outcome);
    response
}

/// Why a response is refreshed in the background.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Still fresh, past the rule's eager-refresh point.
    Early,
    /// Stale, served within its stale-while-revalidate window.
    Stale,
}

/// One fetch for the cache: the key it fills and what the cache held under it.
struct Fill {
    state: Arc<LayerState>,
    /// The settings for this request (its rule's).
    cfg: Arc<Config>,
    rt: Handle,
    key: String,
    index: Option<VaryIndex>,
    /// When the origin's answer is due: a request that followed a fill and must now fetch
    /// alone (the response was not for it, or its leader left) shares the deadline of the fill
    /// it waited on, so no request waits more than one response timeout for a head.
    deadline: Option<tokio::time::Instant>,
}

impl Fill {
    /// One fetch of the key in a task of its own, refreshing `stored`, unless a fill of the key
    /// is in flight already (which refreshes it just as well). Nobody reads its reply: the
    /// recording still completes and is stored.
    fn refresh_in_background<S, ReqB, ResB>(
        self,
        inner: S,
        parts: Parts,
        body: ReqB,
        stored: Kept,
        why: Refresh,
    ) where
        S: Origin<ReqB, ResB>,
        ReqB: Send + 'static,
        ResB: OriginBody,
    {
        let (recordings, limits) = (&self.state.recordings, self.state.limits());
        let role = match why {
            Refresh::Early => recordings.join_or_lead_early(&self.key, limits),
            Refresh::Stale => recordings.join_or_lead(&self.key, limits),
        };
        let Role::Lead(guard) = role else {
            return;
        };
        let rt = self.rt.clone();
        let job = self.fetch(inner, parts, body, Some(stored), guard);
        rt.spawn(async move { drop(job.await) });
    }

    /// Joins the fetch in flight for the key, or starts one. A `no-cache` request (`arrived`
    /// when it came) joins only a fetch that began after it arrived: it waits for one that
    /// began before to end, then leads the next or joins it, so a flood of reloads costs the
    /// origin about one call per response time rather than one per request.
    pub(super) async fn lead_or_follow<S, ReqB, ResB>(
        mut self,
        inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Kept>,
        arrived: Option<tokio::time::Instant>,
    ) -> Reply<ResB, S::Error>
    where
        S: Origin<ReqB, ResB>,
        ReqB: Send + 'static,
        ResB: OriginBody,
    {
        let limits = self.state.limits();
        if self.state.hit_for_pass.holds(&self.key, self.cfg.now_ms()) {
            let guard = self.state.recordings.lead_or_detach(&self.key, limits);
            return self.fetch(inner, parts, body, prior, guard).await;
        }
        // A leader that leaves before its response arrives hands the key to the next request;
        // after a few such hand-overs, fetch alone rather than queue behind cancelled requests.
        for _ in 0..3 {
            match self.state.recordings.join_or_lead(&self.key, limits) {
                Role::Lead(mut guard) => {
                    match self.across_processes(&parts, &mut guard).await {
                        Across::Served(response) => return Ok(response),
                        Across::Held(lock) => guard.hold(lock),
                        Across::Alone => {}
                    }
                    return self
                        .fetch_within_soft_timeout(inner, parts, body, prior, guard)
                        .await;
                }
                Role::Follow(recording) if arrived.is_some_and(|t| recording.started() < t) => {
                    // Made for requests before this one: wait for it to end (within its
                    // deadline), then take the next.
                    let due = recording.started() + self.cfg.response_timeout;
                    let ended = poll_fn(|cx| recording.poll_lead_gone(cx));
                    if tokio::time::timeout_at(due, ended).await.is_err() {
                        return Ok(self.no_response(prior.as_ref(), &parts));
                    }
                }
                Role::Follow(recording) => {
                    let due = recording.started() + self.cfg.response_timeout;
                    self.deadline = Some(self.deadline.map_or(due, |d| d.min(due)));
                    let following = follow(&self.state, &self.cfg, &recording, &parts);
                    // Like the leader, and like every caller of `get_or_fetch`: no longer than
                    // the soft timeout when a stale copy may stand in.
                    let soft = self.cfg.soft_timeout;
                    let followed =
                        match within_soft_timeout(soft, self.stand_in(&prior), following).await {
                            Raced::Done(followed) => followed,
                            Raced::StoodIn(stale) => return Ok(self.soft_timed_out(&stale, &parts)),
                        };
                    match followed {
                        Followed::Served(response) => return Ok(response),
                        Followed::Alone => break,
                        Followed::Retry => {
                            // The leader left without a response: if the origin failed it, the
                            // stale copy that answered the leader answers here too, instead of
                            // one more call to a failing origin per waiting request.
                            if let Some(stale) = self.fail_safe(&prior, &parts) {
                                return Ok(stale);
                            }
                        }
                        Followed::Failed => return Ok(self.no_response(prior.as_ref(), &parts)),
                    }
                }
            }
        }
        let guard = Recordings::detached(limits);
        self.fetch(inner, parts, body, prior, guard).await
    }

    /// The stale copy, answering a request whose fetch or fill ran past the soft timeout.
    pub(super) fn soft_timed_out<B>(&self, stale: &Kept, client: &Parts) -> Response<CacheBody<B>> {
        let outcome = Outcome::from(CacheStatus::Stale).detail("soft-timeout");
        serve(&self.state, stale, client, outcome, self.cfg.now_ms())
    }

    /// What answers a request whose fetch got no response head in time: the stale `prior` where
    /// it may stand in for an error, else 504.
    pub(super) fn no_response<B>(
        &self,
        prior: Option<&Kept>,
        client: &Parts,
    ) -> Response<CacheBody<B>> {
        let now = self.cfg.now_ms();
        match prior.filter(|p| policy::may_serve_on_error(p, now)) {
            Some(p) => {
                let outcome = Outcome::from(CacheStatus::Stale).detail("response-timeout");
                self.stood_in(p, serve(&self.state, p, client, outcome, now))
            }
            None => gateway_timeout(&self.state, "response-timeout"),
        }
    }

    /// `prior`, if it may stand in for the origin now (RFC 9111: not `must-revalidate`, within
    /// its stale-if-error window or the rule's).
    fn stand_in(&self, prior: &Option<Kept>) -> Option<Kept> {
        let now = self.cfg.now_ms();
        prior.clone().filter(|p| policy::may_serve_on_error(p, now))
    }

    /// The fail-safe throttle: the origin failed for this URL moments ago and this stale copy
    /// stood in; it stands in again without asking, as `get_or_fetch`'s fail-safe does (the
    /// core's one map), within what RFC 9111 allows (`stand_in` refuses `must-revalidate` and
    /// copies past their window).
    fn fail_safe<B>(&self, prior: &Option<Kept>, client: &Parts) -> Option<Response<CacheBody<B>>> {
        let stale = prior.as_ref()?;
        if !larder::engine::standing_in(&self.state.cache, &self.key, stale.stored()) {
            return None;
        }
        let stale = self.stand_in(prior)?;
        let outcome = Outcome::from(CacheStatus::Stale).detail("fail-safe");
        Some(serve(
            &self.state,
            &stale,
            client,
            outcome,
            self.cfg.now_ms(),
        ))
    }

    /// `stale` answered because the origin failed: for the fail-safe throttle, later requests
    /// get it without asking the origin until the period ends (a newer response ends it).
    pub(super) fn stood_in<B>(
        &self,
        stale: &Kept,
        response: Response<CacheBody<B>>,
    ) -> Response<CacheBody<B>> {
        let period = self.cfg.fail_safe_throttle;
        larder::engine::stood_in(&self.state.cache, &self.key, stale.stored(), period);
        response
    }
}
