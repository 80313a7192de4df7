//! Everything past the synchronous hit: the async lookup (remote stores), judging a stored
//! response, coalescing misses onto one fetch, revalidation and stale-if-error, and starting the
//! recording of a response as it streams to the client (the pump and the store are in `pump` and
//! `write`).

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response, StatusCode};
use http_body::Body;
use tokio::runtime::Handle;
use tower_service::Service;

use crate::body::{BoxError, CacheBody};
use crate::budget::Hold;
use crate::coalesce::{LeadGuard, Recordings, Role};
use crate::conditional;
use crate::config::Config;
use crate::directives::CacheControl;
use crate::headers::{self, CacheStatus, Outcome};
use crate::key;
use crate::policy::{self, Credentials, Exchange, Plan, Verdict};
use crate::recording::{Head, HeadNews, Recording};
use crate::service::{Shared, serve};
use crate::stats::Event;
use crate::stored::{CachedResponse, Stored, VaryIndex};
use crate::write::{StoreJob, set_date, write};
use larder::KeyLocked;
use larder::private::ReadEvent;

type Reply<B, E> = Result<Response<CacheBody<B>>, E>;

/// What the cache holds for a request: the Vary index (when the URL varies) and the response
/// that matches this request's variant.
#[derive(Default)]
struct Found {
    index: Option<VaryIndex>,
    response: Option<Arc<CachedResponse>>,
}

async fn lookup(shared: &Shared, cfg: &Config, key: &str, headers: &HeaderMap) -> Found {
    let Ok(Some(stored)) = shared.cache.get::<Stored>(key).await else {
        return Found::default();
    };
    match &*stored {
        // A response stored for requests without keyed inputs is not this request's variant.
        Stored::Response(_) if cfg.has_keyed_inputs(headers) => Found::default(),
        Stored::Response(r) => Found {
            index: None,
            response: Some(r.clone()),
        },
        Stored::Variants(index) => {
            let variant = key::variant_key(key, index.nonce, index.varied(), headers);
            let response = match shared.cache.get::<Stored>(&variant).await {
                Ok(Some(v)) => v.response(),
                _ => None,
            };
            Found {
                index: Some(index.clone()),
                response,
            }
        }
    }
}

/// A cacheable request that the memory tier did not answer fresh.
#[allow(clippy::too_many_arguments)] // one request's parts, each named
pub(crate) fn respond<S, ReqB, ResB>(
    shared: Arc<Shared>,
    cfg: Arc<Config>,
    rt: Handle,
    inner: S,
    parts: Parts,
    body: ReqB,
    key: String,
    request_cc: CacheControl,
) -> BoxFuture<'static, Reply<ResB, S::Error>>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    Box::pin(async move {
        let found = lookup(&shared, &cfg, &key, &parts.headers).await;
        let now = cfg.now_ms();
        let credentials = Credentials::of(&parts.headers, &cfg);
        let limits = shared.limits();
        let mut prior = None;
        let fill = Fill {
            shared: shared.clone(),
            cfg: cfg.clone(),
            rt: rt.clone(),
            key: key.clone(),
            index: found.index,
        };
        if let Some(stored) = found.response {
            match policy::judge(&stored, &request_cc, credentials, now) {
                Verdict::Fresh => {
                    return Ok(serve(&shared, &stored, &parts, CacheStatus::Hit, now));
                }
                Verdict::StaleAllowed => {
                    return Ok(serve(&shared, &stored, &parts, CacheStatus::Stale, now));
                }
                Verdict::StaleWhileRevalidate => {
                    let reply = serve(&shared, &stored, &parts, CacheStatus::Stale, now);
                    if let Role::Lead(guard) = shared.recordings.join_or_lead(&key, limits) {
                        let job = fill.fetch(inner, parts, body, Some(stored), guard);
                        // The reply is dropped; the recording still completes and is stored.
                        rt.spawn(async move { drop(job.await) });
                    }
                    return Ok(reply);
                }
                Verdict::Forbidden => {
                    let guard = Recordings::detached(limits);
                    return fill.fetch(inner, parts, body, None, guard).await;
                }
                Verdict::Revalidate => prior = Some(stored),
            }
        }
        if request_cc.only_if_cached {
            return Ok(gateway_timeout(&shared, "only-if-cached"));
        }
        fill.lead_or_follow(inner, parts, body, prior, !request_cc.no_cache)
            .await
    })
}

/// A response for which nothing is to be had in time: 504, for `only-if-cached` (§5.2.1.7) and
/// for a fetch that got no head within the response timeout.
fn gateway_timeout<B>(shared: &Shared, why: &'static str) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    let outcome = Outcome::from(CacheStatus::Miss).detail(why);
    headers::mark(response.headers_mut(), &shared.config, outcome);
    response
}

/// What the lock across processes gave a fill's leader.
enum Across<B> {
    /// Another process filled the key meanwhile: this response answers the request.
    Served(Response<CacheBody<B>>),
    /// This process fills the key, holding the lock.
    Held(larder::KeyLock),
    /// No lock to be had (none configured, no remote store, or the wait ran out): fill anyway.
    Alone,
}

enum Followed<B> {
    Served(Response<CacheBody<B>>),
    /// The response is not for this request (not shareable, another variant): fetch alone.
    Alone,
    /// The leader left without a response.
    Retry,
    /// The leader gave up waiting for the response head.
    Failed,
}

/// One fetch for the cache: the key it fills and what the cache held under it.
struct Fill {
    shared: Arc<Shared>,
    /// The settings for this request (its rule's).
    cfg: Arc<Config>,
    rt: Handle,
    key: String,
    index: Option<VaryIndex>,
}

impl Fill {
    /// Joins the fetch in flight for the key, or starts one. A request that may not join (a
    /// `no-cache` one) leads a fetch of its own.
    async fn lead_or_follow<S, ReqB, ResB>(
        self,
        inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Arc<CachedResponse>>,
        may_join: bool,
    ) -> Reply<ResB, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqB: Send + 'static,
        ResB: Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        let limits = self.shared.limits();
        if !may_join || self.shared.passes.passes(&self.key) {
            let guard = self.shared.recordings.lead_or_detach(&self.key, limits);
            return self.fetch(inner, parts, body, prior, guard).await;
        }
        // A leader that leaves before its response arrives hands the key to the next request;
        // after a few such hand-overs, fetch alone rather than queue behind cancelled requests.
        for _ in 0..3 {
            match self.shared.recordings.join_or_lead(&self.key, limits) {
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
                Role::Follow(recording) => {
                    match follow(&self.shared, &self.cfg, &recording, &parts).await {
                        Followed::Served(response) => return Ok(response),
                        Followed::Alone => break,
                        Followed::Retry => {}
                        Followed::Failed => return Ok(self.no_response(prior.as_deref(), &parts)),
                    }
                }
            }
        }
        let guard = Recordings::detached(limits);
        self.fetch(inner, parts, body, prior, guard).await
    }

    /// The fill's lock across processes (when the layer has one): taken, or another process's
    /// response, stored while this one waited, served here and to this process's followers.
    async fn across_processes<B>(&self, parts: &Parts, guard: &mut LeadGuard) -> Across<B> {
        let Some((wait, expiry)) = self.cfg.lock else {
            return Across::Alone;
        };
        let cache = &self.shared.cache;
        let stored = match cache.lock_key::<Stored>(&self.key, wait, expiry).await {
            KeyLocked::Held(lock) => return Across::Held(lock),
            KeyLocked::Found(stored) => stored,
            _ => return Across::Alone,
        };
        let (response, index) = match &*stored {
            Stored::Response(_) if self.cfg.has_keyed_inputs(&parts.headers) => {
                return Across::Alone;
            }
            Stored::Response(r) => (r.clone(), None),
            Stored::Variants(index) => {
                let variant =
                    key::variant_key(&self.key, index.nonce, index.varied(), &parts.headers);
                match cache.get::<Stored>(&variant).await {
                    Ok(Some(v)) => match v.response() {
                        Some(r) => (r, Some(index)),
                        None => return Across::Alone,
                    },
                    _ => return Across::Alone,
                }
            }
        };
        let unvaried = key::Varied {
            headers: &[],
            cookies: &[],
        };
        let varied = index.map_or(unvaried, VaryIndex::varied);
        let now = self.cfg.now_ms();
        let request_cc = CacheControl::of_request(&parts.headers);
        let credentials = Credentials::of(&parts.headers, &self.cfg);
        if policy::judge(&response, &request_cc, credentials, now) != Verdict::Fresh {
            return Across::Alone;
        }
        let recording = guard.recording();
        recording.set_head(Arc::new(Head::stored(
            &response,
            varied,
            &parts.headers,
            response.age(now),
        )));
        recording.replay(response.body.clone());
        let outcome = Outcome {
            collapsed: true,
            ..Outcome::from(CacheStatus::Hit)
        };
        Across::Served(serve(&self.shared, &response, parts, outcome, now))
    }

    /// Fetches; with a soft timeout and a stale copy that may stand in, the request waits no
    /// longer than the soft timeout: then it gets the stale copy, and the fetch goes on in its
    /// own task, to be recorded and stored for the requests after it.
    async fn fetch_within_soft_timeout<S, ReqB, ResB>(
        self,
        inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Arc<CachedResponse>>,
        guard: LeadGuard,
    ) -> Reply<ResB, S::Error>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqB: Send + 'static,
        ResB: Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        let now = self.cfg.now_ms();
        let stand_in = prior.clone().filter(|p| policy::may_serve_on_error(p, now));
        let (Some(soft), Some(stale)) = (self.cfg.soft_timeout, stand_in) else {
            return self.fetch(inner, parts, body, prior, guard).await;
        };
        let shared = self.shared.clone();
        let client = parts.clone();
        let rt = self.rt.clone();
        let mut task = rt.spawn(self.fetch(inner, parts, body, prior, guard));
        match tokio::time::timeout(soft, &mut task).await {
            Ok(Ok(reply)) => reply,
            // The fetch panicked: the stale copy is what there is.
            Ok(Err(_)) => Ok(serve(&shared, &stale, &client, CacheStatus::Stale, now)),
            Err(_) => {
                let outcome = Outcome::from(CacheStatus::Stale).detail("soft-timeout");
                Ok(serve(
                    &shared,
                    &stale,
                    &client,
                    outcome,
                    shared.config.now_ms(),
                ))
            }
        }
    }

    /// What answers a request whose fetch got no response head in time: the stale `prior` where
    /// it may stand in for an error, else 504.
    fn no_response<B>(
        &self,
        prior: Option<&CachedResponse>,
        client: &Parts,
    ) -> Response<CacheBody<B>> {
        let now = self.cfg.now_ms();
        match prior.filter(|p| policy::may_serve_on_error(p, now)) {
            Some(p) => {
                let outcome = Outcome::from(CacheStatus::Stale).detail("response-timeout");
                serve(&self.shared, p, client, outcome, now)
            }
            None => gateway_timeout(&self.shared, "response-timeout"),
        }
    }

    /// Calls the service for the key (conditionally, when `prior` is a stale response with
    /// validators) and answers from what comes back: the refreshed `prior` on 304, `prior` again
    /// on an error it may stand in for, or the new response, streamed to the client while it is
    /// recorded.
    fn fetch<S, ReqB, ResB>(
        self,
        mut inner: S,
        parts: Parts,
        body: ReqB,
        prior: Option<Arc<CachedResponse>>,
        guard: LeadGuard,
    ) -> BoxFuture<'static, Reply<ResB, S::Error>>
    where
        S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        ReqB: Send + 'static,
        ResB: Body<Data = Bytes> + Send + 'static,
        ResB::Error: Into<BoxError>,
    {
        Box::pin(async move {
            let shared = self.shared.clone();
            let cfg = self.cfg.clone();
            let cfg = &*cfg;
            let client = parts.clone();
            let mut origin = parts;
            // A HEAD miss fetches the GET, so the full response can be stored for later GETs and
            // HEADs.
            origin.method = Method::GET;
            let revalidating = prior.as_deref().filter(|p| p.has_validator());
            conditional::prepare_origin_request(&mut origin.headers, revalidating);

            let request_ms = cfg.now_ms();
            larder::private::count(&shared.cache, ReadEvent::FactoryRun);
            let call = inner.call(Request::from_parts(origin, body));
            let Ok(result) = tokio::time::timeout(cfg.response_timeout, call).await else {
                // Requests waiting on this fetch waited as long: they give up with it.
                shared.counters.incr(Event::ResponseTimeout);
                larder::private::count(&shared.cache, ReadEvent::FactoryError);
                guard.recording().fail();
                return Ok(self.no_response(prior.as_deref(), &client));
            };
            let times = Exchange {
                request_ms,
                response_ms: cfg.now_ms(),
            };
            let response = match result {
                Ok(r) => r,
                Err(e) => {
                    larder::private::count(&shared.cache, ReadEvent::FactoryError);
                    return match prior.filter(|p| policy::may_serve_on_error(p, times.response_ms))
                    {
                        Some(p) => Ok(serve(
                            &shared,
                            &p,
                            &client,
                            Outcome::from(CacheStatus::Stale).detail("origin-error"),
                            times.response_ms,
                        )),
                        None => Err(e),
                    };
                }
            };
            let (mut head, body) = response.into_parts();
            if policy::is_origin_error(head.status) {
                larder::private::count(&shared.cache, ReadEvent::FactoryError);
            }
            if let Some(p) = &prior {
                if head.status == StatusCode::NOT_MODIFIED && revalidating.is_some() {
                    let fresh = self.refresh(p, &head.headers, &client, times, guard).await;
                    return Ok(serve(
                        &shared,
                        &fresh,
                        &client,
                        Outcome::from(CacheStatus::Revalidated).fwd_status(head.status),
                        times.response_ms,
                    ));
                }
                if policy::is_origin_error(head.status)
                    && policy::may_serve_on_error(p, times.response_ms)
                {
                    return Ok(serve(
                        &shared,
                        p,
                        &client,
                        Outcome::from(CacheStatus::Stale).fwd_status(head.status),
                        times.response_ms,
                    ));
                }
            }

            let tags = self.tags(&head.headers);
            if let Some(tag) = &cfg.tag_header {
                head.headers.remove(tag);
            }
            let request_cc = CacheControl::of_request(&client.headers);
            let declared = content_length(&head.headers);
            let plan = policy::plan(
                cfg,
                &Method::GET,
                &client.headers,
                &request_cc,
                head.status,
                &head.headers,
                times,
            )
            .map_err(|why| {
                // Not storable because of the response (not of this request's credentials or
                // directives): the next requests need not wait for one another.
                if why.is_the_responses() && !request_cc.no_store {
                    shared.passes.remember(&self.key, cfg.hit_for_pass);
                }
            })
            .ok()
            .filter(|_| {
                let fits = declared.is_none_or(|len| len <= cfg.max_body as u64);
                if !fits {
                    shared.passes.remember(&self.key, cfg.hit_for_pass);
                }
                fits
            })
            .map(|plan| self.with_keyed_inputs(plan, &client.headers));

            let send_headers = headers::storable(&head.headers, &[]);
            let Some(plan) = plan else {
                // Not storable: followers fetch on their own; this client gets the response as
                // it is.
                guard
                    .recording()
                    .set_head(Arc::new(Head::unshareable(head.status)));
                drop(guard);
                head.headers = send_headers;
                let outcome = Outcome::from(CacheStatus::Miss).fwd_status(head.status);
                headers::mark(&mut head.headers, &shared.config, outcome);
                let body = if client.method == Method::HEAD {
                    CacheBody::full(Bytes::new())
                } else {
                    CacheBody::passthrough(body)
                };
                return Ok(Response::from_parts(head, body));
            };

            shared.passes.forget(&self.key);
            let store_headers = headers::storable(&head.headers, &plan.strip);
            guard.set_tags(&tags);
            let recording = guard.recording().clone();
            shared.counters.incr(Event::Fill);
            let kept = recording.keep(Hold::new(shared.budget.clone(), &shared.cache), declared);
            if !kept && declared.is_none_or(|len| len <= cfg.max_body as u64) {
                // No room to keep it whole: it streams to the requests that share it, unrecorded.
                shared.counters.incr(Event::Unrecorded);
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
                shared: shared.clone(),
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

            let outcome = Outcome {
                stored: kept,
                ttl: Some(fresh_for),
                ..Outcome::from(CacheStatus::Miss).fwd_status(head.status)
            };
            if not_modified {
                head.status = StatusCode::NOT_MODIFIED;
                head.headers = conditional::not_modified_headers(&send_headers);
            } else {
                head.headers = send_headers;
            }
            headers::mark(&mut head.headers, &shared.config, outcome);
            Ok(Response::from_parts(head, reply_body))
        })
    }

    /// The plan, varying also by the layer's keyed headers and cookies where they apply: when
    /// the request carries one, or when the URL is indexed by them already (once a URL varies by
    /// them it always does, so requests with and without them never take turns evicting each
    /// other).
    fn with_keyed_inputs(&self, mut plan: Plan, request: &HeaderMap) -> Plan {
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
    fn tags(&self, response: &HeaderMap) -> Vec<String> {
        let mut tags = headers::tags(response, self.cfg.tag_header.as_ref());
        let depth = self.cfg.prefix_purge_depth;
        if depth > 0 && self.cfg.key_fn.is_none() {
            tags.extend(key::prefix_tags(&self.key, depth));
        }
        tags
    }

    /// A 304 from the origin: the stored response, its header fields updated from the 304, stored
    /// again with its new freshness and handed to the requests that waited for it.
    async fn refresh(
        self,
        prior: &CachedResponse,
        update: &HeaderMap,
        client: &Parts,
        times: Exchange,
        guard: LeadGuard,
    ) -> CachedResponse {
        let shared = &self.shared;
        let cfg = &self.cfg;
        let mut headers = prior.headers.clone();
        conditional::freshen(&mut headers, update);
        if !update.contains_key(header::DATE) {
            // The 304 is what was just received: a Date-less one is dated now (RFC 9110
            // §6.6.1), or the stored Date would make the refreshed response look as old as the
            // first.
            set_date(&mut headers, times.response_ms);
        }
        let mut tags = prior.tags.clone();
        if let Some(tag) = &cfg.tag_header
            && headers.contains_key(tag)
        {
            tags = headers::tags(&headers, Some(tag));
            headers.remove(tag);
        }
        let request_cc = CacheControl::of_request(&client.headers);
        let plan = policy::plan(
            cfg,
            &Method::GET,
            &client.headers,
            &request_cc,
            prior.status,
            &headers,
            times,
        )
        .map(|plan| self.with_keyed_inputs(plan, &client.headers));
        let mut fresh = CachedResponse {
            status: prior.status,
            headers,
            body: prior.body.clone(),
            response_time_ms: times.response_ms,
            initial_age: 0,
            lifetime: 0,
            rules: prior.rules,
            tags,
        };
        let recording = guard.recording().clone();
        if let Ok(plan) = &plan {
            fresh.initial_age = plan.initial_age;
            fresh.lifetime = plan.lifetime;
            fresh.rules = plan.rules;
            recording.set_head(Arc::new(Head::planned(
                fresh.status,
                fresh.headers.clone(),
                true,
                plan,
                &client.headers,
            )));
            recording.replay(fresh.body.clone());
            if !recording.is_superseded() {
                write(
                    shared,
                    &self.key,
                    self.index,
                    plan,
                    &client.headers,
                    fresh.clone(),
                )
                .await;
            }
        }
        drop(guard);
        fresh
    }
}

/// Waits for the head of the response in flight, then reads its body as it arrives.
async fn follow<B>(
    shared: &Shared,
    cfg: &Config,
    recording: &Arc<Recording>,
    parts: &Parts,
) -> Followed<B> {
    let head = match poll_fn(|cx| recording.poll_head(cx)).await {
        HeadNews::Ready(head) => head,
        HeadNews::Gone => return Followed::Retry,
        HeadNews::Failed => return Followed::Failed,
    };
    if !head.shareable
        || !Credentials::of(&parts.headers, cfg).allow(&head.rules)
        || (!head.varied().is_empty()
            && key::vary_values(head.varied(), &parts.headers) != head.vary_values)
    {
        return Followed::Alone;
    }
    let body = if parts.method == Method::HEAD {
        CacheBody::full(Bytes::new())
    } else {
        match recording.reader() {
            Some(reader) => CacheBody::recorded(reader),
            None => return Followed::Alone,
        }
    };
    let mut response = Response::new(body);
    *response.status_mut() = head.status;
    *response.headers_mut() = head.headers.clone();
    let outcome = Outcome {
        age: Some(head.age),
        collapsed: true,
        ..Outcome::from(CacheStatus::Hit).fwd_status(head.status)
    };
    headers::mark(response.headers_mut(), &shared.config, outcome);
    larder::private::count(&shared.cache, ReadEvent::Coalesced);
    Followed::Served(response)
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
