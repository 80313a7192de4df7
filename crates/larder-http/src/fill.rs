//! Everything past the synchronous hit: the async lookup (remote stores), judging a stored
//! response, coalescing misses onto one fetch, revalidation, stale-if-error, and recording and
//! storing the response as it streams to the client.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header;
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use larder::EntryOptions;
use tower_service::Service;

use crate::body::{BoxError, CacheBody};
use crate::coalesce::{LeadGuard, Recordings, Role};
use crate::conditional;
use crate::config::Mode;
use crate::directives::CacheControl;
use crate::headers::{self, CacheStatus};
use crate::key;
use crate::policy::{self, Exchange, Plan, Verdict};
use crate::recording::{BodyError, Head, Recording};
use crate::service::{Shared, serve};
use crate::stored::{CachedResponse, Stored, VaryIndex};

type Reply<B, E> = Result<Response<CacheBody<B>>, E>;

/// A request the cache does not answer. After an unsafe method succeeds, the stored responses
/// for its target, `Location` and `Content-Location` are invalidated (RFC 9111 §4.4).
pub(crate) fn forward<S, ReqB, ResB>(
    shared: Arc<Shared>,
    mut inner: S,
    parts: Parts,
    body: ReqB,
    invalidate: bool,
) -> BoxFuture<'static, Reply<ResB, S::Error>>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
{
    Box::pin(async move {
        let target = invalidate.then(|| parts.clone());
        let mut response = inner.call(Request::from_parts(parts, body)).await?;
        if let Some(target) = target
            && (response.status().is_success() || response.status().is_redirection())
        {
            invalidate_after_unsafe(&shared, &target, response.headers()).await;
        }
        let headers = response.headers_mut();
        if let Some(tag) = &shared.config.tag_header {
            headers.remove(tag);
        }
        headers::mark(headers, shared.status_header(), CacheStatus::Bypass, None);
        Ok(response.map(CacheBody::passthrough))
    })
}

async fn invalidate_after_unsafe(shared: &Shared, target: &Parts, response: &HeaderMap) {
    let mut keys: Vec<String> = shared.primary_key(target).into_iter().collect();
    for name in [header::LOCATION, header::CONTENT_LOCATION] {
        let related = response
            .get(name)
            .and_then(|v| v.to_str().ok())
            .and_then(|loc| key::related_parts(target, loc))
            .and_then(|p| shared.primary_key(&p));
        keys.extend(related);
    }
    for k in keys {
        crate::purge::invalidate(shared, &k).await;
    }
}

/// What the cache holds for a request: the Vary index (when the URL varies) and the response
/// that matches this request's variant.
#[derive(Default)]
struct Found {
    index: Option<VaryIndex>,
    response: Option<Arc<CachedResponse>>,
}

async fn lookup(shared: &Shared, key: &str, headers: &HeaderMap) -> Found {
    let Ok(Some(stored)) = shared.cache.get::<Stored>(key).await else {
        return Found::default();
    };
    match &*stored {
        Stored::Response(r) => Found {
            index: None,
            response: Some(r.clone()),
        },
        Stored::Variants(index) => {
            let variant = key::variant_key(key, index.nonce, &index.headers, headers);
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
pub(crate) fn respond<S, ReqB, ResB>(
    shared: Arc<Shared>,
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
        let found = lookup(&shared, &key, &parts.headers).await;
        let now = shared.config.now_ms();
        let auth = parts.headers.contains_key(header::AUTHORIZATION);
        let cap = shared.config.max_body;
        let mut prior = None;
        if let Some(stored) = found.response {
            match policy::judge(&stored, &request_cc, auth, now) {
                Verdict::Fresh => {
                    return Ok(serve(&shared, &stored, &parts, CacheStatus::Hit, now));
                }
                Verdict::StaleAllowed => {
                    return Ok(serve(&shared, &stored, &parts, CacheStatus::Stale, now));
                }
                Verdict::StaleWhileRevalidate => {
                    let reply = serve(&shared, &stored, &parts, CacheStatus::Stale, now);
                    if let Role::Lead(guard) = shared.recordings.join_or_lead(&key, cap) {
                        let job = fetch(
                            shared.clone(),
                            inner,
                            parts,
                            body,
                            key,
                            Some(stored),
                            found.index,
                            guard,
                        );
                        // The reply is dropped; the recording still completes and is stored.
                        tokio::spawn(async move { drop(job.await) });
                    }
                    return Ok(reply);
                }
                Verdict::Forbidden => {
                    let guard = Recordings::detached(cap);
                    return fetch(shared, inner, parts, body, key, None, found.index, guard).await;
                }
                Verdict::Revalidate => prior = Some(stored),
            }
        }
        if request_cc.only_if_cached {
            return Ok(gateway_timeout(&shared));
        }
        lead_or_follow(shared, inner, parts, body, key, prior, found.index).await
    })
}

/// §5.2.1.7: nothing stored may answer an only-if-cached request.
fn gateway_timeout<B>(shared: &Shared) -> Response<CacheBody<B>> {
    let mut response = Response::new(CacheBody::full(Bytes::new()));
    *response.status_mut() = StatusCode::GATEWAY_TIMEOUT;
    headers::mark(
        response.headers_mut(),
        shared.status_header(),
        CacheStatus::Miss,
        None,
    );
    response
}

/// Joins the fetch in flight for `key`, or starts one.
#[allow(clippy::too_many_arguments)]
async fn lead_or_follow<S, ReqB, ResB>(
    shared: Arc<Shared>,
    inner: S,
    parts: Parts,
    body: ReqB,
    key: String,
    prior: Option<Arc<CachedResponse>>,
    index: Option<VaryIndex>,
) -> Reply<ResB, S::Error>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
    ResB::Error: Into<BoxError>,
{
    let cap = shared.config.max_body;
    // A leader that leaves before its response arrives hands the key to the next request; after a
    // few such hand-overs, fetch alone rather than queue behind cancelled requests.
    for _ in 0..3 {
        match shared.recordings.join_or_lead(&key, cap) {
            Role::Lead(guard) => {
                return fetch(shared, inner, parts, body, key, prior, index, guard).await;
            }
            Role::Follow(recording) => match follow(&shared, &recording, &parts).await {
                Followed::Served(response) => return Ok(response),
                Followed::Alone => break,
                Followed::Retry => {}
            },
        }
    }
    let guard = Recordings::detached(cap);
    fetch(shared, inner, parts, body, key, prior, index, guard).await
}

enum Followed<B> {
    Served(Response<CacheBody<B>>),
    /// The response is not for this request (not shareable, another variant): fetch alone.
    Alone,
    /// The leader left without a response.
    Retry,
}

/// Waits for the head of the response in flight, then reads its body as it arrives.
async fn follow<B>(shared: &Shared, recording: &Arc<Recording>, parts: &Parts) -> Followed<B> {
    let Some(head) = poll_fn(|cx| recording.poll_head(cx)).await else {
        return Followed::Retry;
    };
    if !head.shareable
        || (parts.headers.contains_key(header::AUTHORIZATION) && !head.shareable_with_auth)
        || (!head.vary.is_empty()
            && key::vary_values(&head.vary, &parts.headers) != head.vary_values)
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
    headers::mark(
        response.headers_mut(),
        shared.status_header(),
        CacheStatus::Hit,
        Some(head.age),
    );
    Followed::Served(response)
}

/// Calls the service for `key` (conditionally, when `prior` is a stale response with validators)
/// and answers from what comes back: the refreshed `prior` on 304, `prior` again on an error it
/// may stand in for, or the new response, streamed to the client while it is recorded.
#[allow(clippy::too_many_arguments)]
async fn fetch<S, ReqB, ResB>(
    shared: Arc<Shared>,
    mut inner: S,
    parts: Parts,
    body: ReqB,
    key: String,
    prior: Option<Arc<CachedResponse>>,
    index: Option<VaryIndex>,
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
    let cfg = &shared.config;
    let client = parts.clone();
    let mut origin = parts;
    // A HEAD miss fetches the GET, so the full response can be stored for later GETs and HEADs.
    origin.method = Method::GET;
    let revalidating = prior.as_deref().filter(|p| p.has_validator());
    conditional::prepare_origin_request(&mut origin.headers, revalidating);

    let request_ms = cfg.now_ms();
    let result = inner.call(Request::from_parts(origin, body)).await;
    let times = Exchange {
        request_ms,
        response_ms: cfg.now_ms(),
    };
    let response = match result {
        Ok(r) => r,
        Err(e) => {
            return match prior.filter(|p| policy::may_serve_on_error(p, times.response_ms)) {
                Some(p) => Ok(serve(
                    &shared,
                    &p,
                    &client,
                    CacheStatus::Stale,
                    times.response_ms,
                )),
                None => Err(e),
            };
        }
    };
    let (mut head, body) = response.into_parts();
    if let Some(p) = &prior {
        if head.status == StatusCode::NOT_MODIFIED && revalidating.is_some() {
            let fresh = refresh(
                &shared,
                p,
                &head.headers,
                &client,
                &key,
                index,
                times,
                guard,
            )
            .await;
            return Ok(serve(
                &shared,
                &fresh,
                &client,
                CacheStatus::Revalidated,
                times.response_ms,
            ));
        }
        if policy::is_origin_error(head.status) && policy::may_serve_on_error(p, times.response_ms)
        {
            return Ok(serve(
                &shared,
                p,
                &client,
                CacheStatus::Stale,
                times.response_ms,
            ));
        }
    }

    let tags = headers::tags(&head.headers, cfg.tag_header.as_ref());
    if let Some(tag) = &cfg.tag_header {
        head.headers.remove(tag);
    }
    let request_cc = CacheControl::of_request(&client.headers);
    let plan = policy::plan(
        cfg,
        &Method::GET,
        &client.headers,
        &request_cc,
        head.status,
        &head.headers,
        times,
    )
    .ok()
    .filter(|_| content_length(&head.headers).is_none_or(|len| len <= cfg.max_body as u64));

    let send_headers = headers::storable(&head.headers, &[]);
    let Some(plan) = plan else {
        // Not storable: followers fetch on their own; this client gets the response as it is.
        guard
            .recording()
            .set_head(Arc::new(Head::unshareable(head.status)));
        drop(guard);
        head.headers = send_headers;
        headers::mark(
            &mut head.headers,
            shared.status_header(),
            CacheStatus::Miss,
            None,
        );
        let body = if client.method == Method::HEAD {
            CacheBody::full(Bytes::new())
        } else {
            CacheBody::passthrough(body)
        };
        return Ok(Response::from_parts(head, body));
    };

    let store_headers = headers::storable(&head.headers, &plan.strip);
    guard.set_tags(&tags);
    // Requests waiting on this fetch may use it only where a stored copy could answer them
    // without validation: fresh on arrival, and not `no-cache`.
    let shareable = plan.lifetime > plan.initial_age && !plan.rules.no_cache;
    guard.recording().set_head(Arc::new(Head::planned(
        head.status,
        store_headers.clone(),
        shareable,
        &plan,
        &client.headers,
    )));
    // The client's own validators match the new response: a 304 for it, while the body is
    // still recorded and stored for everyone else.
    let not_modified = conditional::response_matches(&client.headers, head.status, &send_headers);
    let reply_body = match client.method {
        _ if not_modified => CacheBody::full(Bytes::new()),
        Method::HEAD => CacheBody::full(Bytes::new()),
        _ => guard
            .recording()
            .reader()
            .map_or_else(|| CacheBody::full(Bytes::new()), CacheBody::recorded),
    };
    let job = StoreJob {
        shared: shared.clone(),
        key,
        index,
        status: head.status,
        headers: store_headers,
        tags,
        client_headers: client.headers,
        times,
        plan,
    };
    tokio::spawn(pump(body, guard, job));

    if not_modified {
        head.status = StatusCode::NOT_MODIFIED;
        head.headers = conditional::not_modified_headers(&send_headers);
    } else {
        head.headers = send_headers;
    }
    headers::mark(
        &mut head.headers,
        shared.status_header(),
        CacheStatus::Miss,
        None,
    );
    Ok(Response::from_parts(head, reply_body))
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

/// A 304 from the origin: the stored response, its header fields updated from the 304, stored
/// again with its new freshness and handed to the requests that waited for it.
#[allow(clippy::too_many_arguments)]
async fn refresh(
    shared: &Arc<Shared>,
    prior: &CachedResponse,
    update: &HeaderMap,
    client: &Parts,
    key: &str,
    index: Option<VaryIndex>,
    times: Exchange,
    guard: LeadGuard,
) -> CachedResponse {
    let cfg = &shared.config;
    let mut headers = prior.headers.clone();
    conditional::freshen(&mut headers, update);
    if !update.contains_key(header::DATE) {
        // The 304 is what was just received: a Date-less one is dated now (RFC 9110 §6.6.1),
        // or the stored Date would make the refreshed response look as old as the first.
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
    );
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
        recording.push(fresh.body.clone());
        recording.finish(Ok(()));
        if !recording.is_superseded() {
            write(shared, key, index, plan, &client.headers, fresh.clone()).await;
        }
    }
    drop(guard);
    fresh
}

fn set_date(headers: &mut HeaderMap, unix_ms: u64) {
    let at = UNIX_EPOCH + Duration::from_millis(unix_ms);
    if let Ok(v) = HeaderValue::from_str(&httpdate::fmt_http_date(at)) {
        headers.insert(header::DATE, v);
    }
}

/// Everything needed to store a recorded response once its body has ended.
struct StoreJob {
    shared: Arc<Shared>,
    key: String,
    index: Option<VaryIndex>,
    status: StatusCode,
    headers: HeaderMap,
    tags: Vec<String>,
    client_headers: HeaderMap,
    times: Exchange,
    plan: Plan,
}

impl StoreJob {
    async fn store(self, body: Bytes) {
        let cfg = &self.shared.config;
        let mut headers = self.headers;
        if !headers.contains_key(header::DATE) {
            // RFC 9110 §6.6.1: a recipient with a clock records when it received a response
            // that has no Date.
            set_date(&mut headers, self.times.response_ms);
        }
        if cfg.etag_from_body
            && matches!(cfg.mode, Mode::Application { .. })
            && self.status == StatusCode::OK
            && !headers.contains_key(header::ETAG)
        {
            headers.insert(header::ETAG, conditional::body_etag(&body));
        }
        let response = CachedResponse {
            status: self.status,
            headers,
            body,
            response_time_ms: self.times.response_ms,
            initial_age: self.plan.initial_age,
            lifetime: self.plan.lifetime,
            rules: self.plan.rules,
            tags: self.tags,
        };
        write(
            &self.shared,
            &self.key,
            self.index,
            &self.plan,
            &self.client_headers,
            response,
        )
        .await;
    }
}

/// Writes a response under its key (or under its variant's key, updating the Vary index).
async fn write(
    shared: &Shared,
    key: &str,
    index: Option<VaryIndex>,
    plan: &Plan,
    client_headers: &HeaderMap,
    response: CachedResponse,
) {
    let keep = plan.keep_secs(response.has_validator(), &shared.config);
    if keep == 0 {
        return;
    }
    let ttl = Duration::from_secs(keep);
    let opts = EntryOptions::new()
        .ttl(ttl)
        .tags(response.tags.iter().map(String::as_str));
    let value = Stored::Response(Arc::new(response));
    let cache = &shared.cache;
    let result = if plan.vary.is_empty() {
        cache.set_with(key, value, opts).await
    } else {
        let nonce = match index {
            Some(i) if i.headers == plan.vary => i.nonce,
            _ => {
                let index = VaryIndex {
                    headers: plan.vary.clone(),
                    nonce: new_nonce(),
                };
                let nonce = index.nonce;
                let index_ttl = ttl.saturating_add(shared.config.keep_stale);
                let index_opts = EntryOptions::new().ttl(index_ttl);
                if let Err(e) = cache
                    .set_with(key, Stored::Variants(index), index_opts)
                    .await
                {
                    tracing::warn!(key, error = %e, "larder-http: could not store a Vary index");
                    return;
                }
                nonce
            }
        };
        let variant = key::variant_key(key, nonce, &plan.vary, client_headers);
        cache.set_with(&variant, value, opts).await
    };
    if let Err(e) = result {
        tracing::warn!(key, error = %e, "larder-http: could not store a response");
    }
}

/// A nonce no other index is likely to have had: the clock mixed with a per-process random key.
fn new_nonce() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.finish()
}

/// Feeds the service's body into the recording until it ends, then stores it if it ended cleanly
/// within the cap. Runs as its own task, so a client that hangs up stops nobody else's response.
async fn pump<B>(body: B, mut guard: LeadGuard, job: StoreJob)
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    let recording = guard.recording().clone();
    let mut body = std::pin::pin!(body);
    loop {
        if !poll_fn(|cx| recording.poll_room(cx)).await {
            return;
        }
        // The error becomes text inside the poll, so the service's error type need not be Send.
        let frame = poll_fn(|cx| {
            body.as_mut()
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|e| Into::<BoxError>::into(e).to_string())))
        })
        .await;
        match frame {
            Some(Ok(frame)) => {
                // Trailers are neither stored nor forwarded by a recording.
                if let Ok(data) = frame.into_data()
                    && !data.is_empty()
                    && !recording.push(data)
                {
                    // Past the cap: later requests must not join a recording that lets go of
                    // its start.
                    guard.release();
                }
            }
            Some(Err(e)) => {
                recording.finish(Err(BodyError::Upstream(e.into())));
                return;
            }
            None => {
                recording.finish(Ok(()));
                if let Some(body) = recording.body_to_store() {
                    job.store(body).await;
                }
                return;
            }
        }
    }
}
