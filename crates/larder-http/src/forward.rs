//! Requests the cache does not answer: passed to the service as they are, marked `BYPASS`, and,
//! after a successful unsafe method, the stored responses for its target, `Location` and
//! `Content-Location` invalidated (RFC 9111 §4.4).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header;
use http::request::Parts;
use http::{HeaderMap, Request, Response};
use http_body::Body;
use tower_service::Service;

use crate::body::CacheBody;
use crate::headers::{self, CacheStatus};
use crate::host::RequestHost;
use crate::key;
use crate::service::Shared;

type Reply<B, E> = Result<Response<CacheBody<B>>, E>;

/// Passes a request by the cache; `invalidate` names the request's host when it is unsafe and
/// its targets' stored responses are to be invalidated once it succeeds.
pub(crate) fn forward<S, ReqB, ResB>(
    shared: Arc<Shared>,
    mut inner: S,
    parts: Parts,
    body: ReqB,
    invalidate: Option<RequestHost>,
) -> BoxFuture<'static, Reply<ResB, S::Error>>
where
    S: Service<Request<ReqB>, Response = Response<ResB>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
{
    Box::pin(async move {
        let target = invalidate.map(|host| (parts.clone(), host));
        let mut response = inner.call(Request::from_parts(parts, body)).await?;
        if let Some((target, host)) = target
            && (response.status().is_success() || response.status().is_redirection())
        {
            invalidate_after_unsafe(&shared, &target, &host, response.headers()).await;
        }
        let headers = response.headers_mut();
        if let Some(tag) = &shared.config.tag_header {
            headers.remove(tag);
        }
        headers::mark(headers, shared.status_header(), CacheStatus::Bypass, None);
        Ok(response.map(CacheBody::passthrough))
    })
}

async fn invalidate_after_unsafe(
    shared: &Shared,
    target: &Parts,
    host: &RequestHost,
    response: &HeaderMap,
) {
    let mut keys: Vec<String> = shared.primary_key(target, host).into_iter().collect();
    if let Some(host) = shared.key_host(host) {
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let related = response
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| key::related_parts(target, host, loc))
                .and_then(|p| shared.primary_key(&p, &RequestHost::Named(host.to_owned())));
            keys.extend(related);
        }
    }
    for k in keys {
        crate::purge::invalidate(shared, &k).await;
    }
}
