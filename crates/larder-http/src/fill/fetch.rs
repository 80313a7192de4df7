//! Calling the service for the cache: the conditional request, the response timeout, what is
//! stored (the plan, with the rule's and the layer's keyed inputs and tags), and starting the
//! recording that streams to the client; within a soft timeout when a stale copy may stand in.

use super::{Fill, Reply};
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};

use crate::answer::serve;
use crate::body::CacheBody;
use crate::budget::Hold;
use crate::coalesce::LeadGuard;
use crate::conditional;
use crate::directives::CacheControl;
use crate::headers::{self, CacheStatus, Outcome};
use crate::key;
use crate::origin::{Origin, OriginBody};
use crate::policy::{self, Exchange, Plan};
use crate::recording::Head;
use crate::stats::Event;
use crate::stored::Kept;
use crate::write::StoreJob;
use larder::engine::{Raced, SourceFailed, call_source, within_soft_timeout};

/// How the origin failed a fetch: its service's error, or a 5xx response (which, unless a stale
/// copy stands in, is passed on as it is).
enum Failed<R, E> {
    Service(E),
    Status(R),
}

impl Fill {
    /// Fetches; with a soft timeout and a stale copy that may stand in, the request waits no
    /// longer than the soft timeout: then it gets the stale copy, and the fetch goes on in its
    /// own task, to be recorded and stored for the requests after it.
    pub(super) async fn fetch_within_soft_timeout<S, ReqB, ResB>(
        self,
        inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Kept>,
        guard: LeadGuard,
    ) -> Reply<ResB, S::Error>
    where
        S: Origin<ReqB, ResB>,
        ReqB: Send + 'static,
        ResB: OriginBody,
    {
        let (Some(soft), Some(stale)) = (self.cfg.soft_timeout, self.stand_in(&prior)) else {
            return self.fetch(inner, parts, body, prior, guard).await;
        };
        let client = parts.clone();
        let (state, cfg, rt) = (self.state.clone(), self.cfg.clone(), self.rt.clone());
        // In a task of its own, so that the fetch goes on when the stale copy answers.
        let task = rt.spawn(self.fetch(inner, parts, body, prior, guard));
        match within_soft_timeout(Some(soft), Some(stale.clone()), task).await {
            Raced::Done(Ok(reply)) => reply,
            // The fetch panicked: the stale copy is what there is.
            Raced::Done(Err(_)) => Ok(serve(
                &state,
                &stale,
                &client,
                CacheStatus::Stale,
                cfg.now_ms(),
            )),
            Raced::StoodIn(stale) => {
                let outcome = Outcome::from(CacheStatus::Stale).detail("soft-timeout");
                Ok(serve(&state, &stale, &client, outcome, cfg.now_ms()))
            }
        }
    }

    /// Calls the service for the key (conditionally, when `prior` is a stale response with
    /// validators) and answers from what comes back: the refreshed `prior` on 304, `prior` again
    /// on an error it may stand in for, or the new response, streamed to the client while it is
    /// recorded.
    pub(super) fn fetch<S, ReqB, ResB>(
        self,
        mut inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Kept>,
        guard: LeadGuard,
    ) -> BoxFuture<'static, Reply<ResB, S::Error>>
    where
        S: Origin<ReqB, ResB>,
        ReqB: Send + 'static,
        ResB: OriginBody,
    {
        Box::pin(async move {
            let state = self.state.clone();
            let cfg = self.cfg.clone();
            let cfg = &*cfg;
            let client = parts.clone();
            let mut origin = parts;
            // A HEAD miss fetches the GET, so the full response can be stored for later GETs and
            // HEADs.
            if origin.method == Method::HEAD {
                origin.method = Method::GET;
            }
            // A POST keyed on its body is asked again whole: a precondition on a POST asks the
            // origin whether to act, not whether the copy is current (RFC 9110 §13.2.1).
            let revalidating = prior
                .as_deref()
                .filter(|p| p.has_validator() && origin.method == Method::GET);
            conditional::prepare_origin_request(&mut origin.headers, revalidating);
            // Asked in the coding copies are stored in: what the origin compresses itself is
            // stored as it sent it, and served to every client from that one copy.
            if let Some(coding) = crate::coding::fill_accept_encoding(&cfg.compression) {
                origin.headers.insert(http::header::ACCEPT_ENCODING, coding);
            }

            let request_ms = cfg.now_ms();
            // The response timeout is the hard timeout: within it, or within the deadline of
            // the fill this request followed before it had to fetch alone.
            let now = tokio::time::Instant::now();
            let due = now + cfg.response_timeout;
            let due = self.deadline.map_or(due, |d| d.min(due));
            let call = inner.call(Request::from_parts(origin, body));
            // A 5xx is a failure of the origin, counted as one, though it may still be passed on.
            let call = async move {
                match call.await {
                    Ok(r) if policy::is_origin_error(r.status()) => Err(Failed::Status(r)),
                    Ok(r) => Ok(r),
                    Err(e) => Err(Failed::Service(e)),
                }
            };
            let limit = due.saturating_duration_since(now);
            let called = call_source(&state.cache, Some(limit), call).await;
            let times = Exchange {
                request_ms,
                response_ms: cfg.now_ms(),
            };
            let response = match called {
                Ok(r) | Err(SourceFailed::Error(Failed::Status(r))) => r,
                Err(SourceFailed::Error(Failed::Service(e))) => {
                    return match prior.filter(|p| policy::may_serve_on_error(p, times.response_ms))
                    {
                        Some(p) => Ok(self.stood_in(
                            &p,
                            serve(
                                &state,
                                &p,
                                &client,
                                Outcome::from(CacheStatus::Stale).detail("origin-error"),
                                times.response_ms,
                            ),
                        )),
                        None => Err(e),
                    };
                }
                Err(SourceFailed::TimedOut(_)) => {
                    // Requests waiting on this fetch waited as long: they give up with it.
                    state.counters.incr(Event::ResponseTimeout);
                    guard.recording().fail();
                    return Ok(self.no_response(prior.as_ref(), &client));
                }
            };
            let (mut head, body) = response.into_parts();
            if let Some(p) = &prior {
                if head.status == StatusCode::NOT_MODIFIED && revalidating.is_some() {
                    let fresh =
                        Kept::new(self.refresh(p, &head.headers, &client, times, guard).await);
                    return Ok(serve(
                        &state,
                        &fresh,
                        &client,
                        Outcome::from(CacheStatus::Revalidated).fwd_status(head.status),
                        times.response_ms,
                    ));
                }
                if policy::is_origin_error(head.status)
                    && policy::may_serve_on_error(p, times.response_ms)
                {
                    return Ok(self.stood_in(
                        p,
                        serve(
                            &state,
                            p,
                            &client,
                            Outcome::from(CacheStatus::Stale).fwd_status(head.status),
                            times.response_ms,
                        ),
                    ));
                }
            }

            let tags = self.tags(&head.headers);
            if let Some(tag) = &cfg.tag_header {
                head.headers.remove(tag);
            }
            let declared = content_length(&head.headers);
            match self.storable(&head, &client.headers, declared, times) {
                Ok(plan) => {
                    let response = Response::from_parts(head, body);
                    Ok(self.record_and_reply(response, client, guard, plan, tags, times))
                }
                Err(why) => Ok(pass_unstored(&state, head, body, &client, guard, why)),
            }
        })
    }

    /// How the response is to be stored, or why it is not, as `Cache-Status` says it (then, if
    /// that is the response's doing, the key is remembered as hit-for-pass: the next requests go
    /// to the service at once rather than queue behind one another).
    fn storable(
        &self,
        head: &http::response::Parts,
        client: &HeaderMap,
        declared: Option<u64>,
        times: Exchange,
    ) -> Result<Plan, &'static str> {
        let cfg = &*self.cfg;
        let request_cc = CacheControl::of_request(client);
        let plan = policy::plan(
            cfg,
            &Method::GET,
            client,
            &request_cc,
            head.status,
            &head.headers,
            times,
        );
        let pass = |state: &crate::state::LayerState| {
            state
                .hit_for_pass
                .remember(&self.key, cfg.hit_for_pass, times.response_ms);
        };
        let plan = match plan {
            Ok(plan) => plan,
            Err(why) => {
                // Not storable because of the response (not of this request's credentials or
                // directives): the next requests need not wait for one another.
                if why.is_the_responses() && !request_cc.no_store {
                    pass(&self.state);
                }
                return Err(why.detail());
            }
        };
        if declared.is_some_and(|len| len > cfg.max_body as u64) {
            pass(&self.state);
            return Err("too-large");
        }
        let has_validator = [header::ETAG, header::LAST_MODIFIED]
            .iter()
            .any(|h| head.headers.contains_key(h));
        if plan.keep_secs(has_validator, cfg) == 0 {
            // Stale on arrival, with no window to serve it stale and nothing to revalidate it
            // with: no later request could use it, so it is neither recorded nor said stored.
            pass(&self.state);
            return Err(policy::NotStored::NoLifetime.detail());
        }
        Ok(self.with_keyed_inputs(plan, client))
    }

    /// Starts recording a storable response and replies with it as it streams: the body is
    /// pumped in a task of its own, recorded for the requests that share it and stored when it
    /// ends cleanly.
    fn record_and_reply<ResB: OriginBody>(
        self,
        response: Response<ResB>,
        client: Parts,
        guard: LeadGuard,
        plan: Plan,
        tags: Vec<String>,
        times: Exchange,
    ) -> Response<CacheBody<ResB>> {
        let (mut head, body) = response.into_parts();
        let state = self.state.clone();
        let cfg = &*self.cfg;
        let declared = content_length(&head.headers);
        let send_headers = headers::storable(&head.headers, &[]);
        state.hit_for_pass.forget(&self.key);
        let store_headers = headers::storable(&head.headers, &plan.strip);
        guard.set_tags(&tags);
        let recording = guard.recording().clone();
        state.counters.incr(Event::Fill);
        let kept = recording.keep(Hold::new(&state.budgets, &state.cache), declared);
        if !kept && declared.is_none_or(|len| len <= cfg.max_body as u64) {
            // No room to keep it whole: it streams to the requests that share it, unrecorded.
            state.counters.incr(Event::Unrecorded);
        }
        // Requests waiting on this fetch may use it only where a stored copy could answer
        // them without validation: fresh on arrival, and not `no-cache`.
        let shareable = plan.lifetime > plan.initial_age && !plan.rules.no_cache;
        let fresh_for = plan.lifetime as i64 - plan.initial_age as i64;
        recording.set_head(Arc::new(Head::planned(
            head.status,
            store_headers.clone(),
            shareable,
            &plan,
            &client.headers,
        )));
        // The client's own validators match the new response: a 304 for it, while the body
        // is still recorded and stored for everyone else.
        let not_modified =
            conditional::response_matches(&client.headers, head.status, &send_headers);
        let reply_body = match client.method {
            _ if not_modified => CacheBody::full(Bytes::new()),
            Method::HEAD => CacheBody::full(Bytes::new()),
            _ => recording
                .reader()
                .map_or_else(|| CacheBody::full(Bytes::new()), CacheBody::recorded),
        };
        let job = StoreJob {
            state: state.clone(),
            key: self.key,
            index: self.index,
            status: head.status,
            headers: store_headers,
            tags,
            client_headers: client.headers,
            times,
            plan,
        };
        self.rt
            .spawn(crate::pump::pump(body, guard, job, cfg.body_idle_timeout));

        // `stored` only when a later request can use it; otherwise why not (the body has no
        // room in the recording budgets, so it streams unrecorded and is not stored).
        let outcome = Outcome {
            stored: kept,
            ttl: Some(fresh_for),
            detail: (!kept).then_some("no-room"),
            ..Outcome::from(CacheStatus::Miss).fwd_status(head.status)
        };
        if not_modified {
            head.status = StatusCode::NOT_MODIFIED;
            head.headers = conditional::not_modified_headers(&send_headers);
            crate::coding::vary_like(&cfg.compression, &send_headers, &mut head.headers);
        } else {
            head.headers = send_headers;
        }
        headers::mark(&mut head.headers, &state.current().config, outcome);
        Response::from_parts(head, reply_body)
    }

    /// The plan, varying also by the layer's keyed headers and cookies where they apply: when
    /// the request carries one, or when the URL is indexed by them already (once a URL varies by
    /// them it always does, so requests with and without them never take turns evicting each
    /// other).
    pub(super) fn with_keyed_inputs(&self, mut plan: Plan, request: &HeaderMap) -> Plan {
        let cfg = &self.cfg;
        let indexed_by_them = self.index.as_ref().is_some_and(|i| {
            !i.cookies.is_empty() || cfg.keyed_headers.iter().any(|h| i.headers.contains(h))
        });
        let keyed = indexed_by_them || cfg.has_keyed_inputs(request);
        if !keyed && cfg.vary.is_empty() {
            return plan;
        }
        // A rule's varied headers apply always, as a Vary the response did not send.
        plan.vary.extend(cfg.vary.iter().cloned());
        if keyed {
            plan.vary.extend(cfg.keyed_headers.iter().cloned());
            plan.vary_cookies = cfg.cookies.keyed.clone();
        }
        plan.vary
            .sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        plan.vary.dedup();
        plan
    }

    /// The purge tags of a response: the service's (in the tag header), and the key's path
    /// prefixes where the layer tags them.
    pub(super) fn tags(&self, response: &HeaderMap) -> Vec<String> {
        let mut tags = headers::tags(response, self.cfg.tag_header.as_ref());
        if let Some((url, _)) = self.key.split_once("#b") {
            // A POST keyed on its body: purging the URL reaches it.
            tags.push(key::body_tag(url));
        }
        let depth = self.cfg.prefix_purge_depth;
        if depth > 0 && self.cfg.key_fn.is_none() {
            tags.extend(key::prefix_tags(&self.key, depth));
        }
        tags
    }
}

/// A response that is not to be stored: followers fetch on their own, and this client gets it
/// as it is.
fn pass_unstored<ResB: OriginBody>(
    state: &crate::state::LayerState,
    mut head: http::response::Parts,
    body: ResB,
    client: &Parts,
    guard: LeadGuard,
    why: &'static str,
) -> Response<CacheBody<ResB>> {
    guard
        .recording()
        .set_head(Arc::new(Head::unshareable(head.status)));
    drop(guard);
    head.headers = headers::storable(&head.headers, &[]);
    let outcome = Outcome::from(CacheStatus::Miss)
        .fwd_status(head.status)
        .detail(why);
    headers::mark(&mut head.headers, &state.current().config, outcome);
    let body = if client.method == Method::HEAD {
        CacheBody::full(Bytes::new())
    } else {
        CacheBody::passthrough(body)
    };
    Response::from_parts(head, body)
}

fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}
