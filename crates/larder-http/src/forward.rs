//! Requests the cache does not answer: passed to the service as they are, marked `BYPASS`, and,
//! after a successful unsafe method, the stored responses for its target, `Location` and
//! `Content-Location` invalidated (RFC 9111 §4.4).

use std::sync::Arc;

use bytes::Bytes;
use futures::future::BoxFuture;
use http::header;
use http::request::Parts;
use http::{HeaderMap, Method, Request, Response};
use http_body::Body;

use crate::body::CacheBody;
use crate::config::Config;
use crate::headers::{self, CacheStatus, Outcome};
use crate::host::RequestHost;
use crate::key;
use crate::key_bodies::permit::Unkeyed;
use crate::origin::Origin;
use crate::state::LayerState;

type Reply<B, E> = Result<Response<CacheBody<B>>, E>;

/// Passes a request by the cache; `invalidate` names the request's host when it is unsafe and
/// its targets' stored responses are to be invalidated once it succeeds.
pub(crate) fn forward<S, ReqB, ResB>(
    state: Arc<LayerState>,
    cfg: Arc<Config>,
    mut inner: S,
    parts: Parts,
    body: ReqB,
    invalidate: Option<RequestHost>,
) -> BoxFuture<'static, Reply<ResB, S::Error>>
where
    S: Origin<ReqB, ResB>,
    ReqB: Send + 'static,
    ResB: Body<Data = Bytes> + Send + 'static,
{
    Box::pin(async move {
        let target = invalidate.map(|host| (parts.clone(), host));
        // Why a request the cache could have keyed passes (a POST's body it could not read).
        let why = parts.extensions.get::<Unkeyed>().map(|u| u.0);
        let mut response = inner.call(Request::from_parts(parts, body)).await?;
        if let Some((target, host)) = target
            && (response.status().is_success() || response.status().is_redirection())
        {
            invalidate_after_unsafe(&state, &cfg, &target, &host, response.headers()).await;
        }
        let status = response.status();
        let headers = response.headers_mut();
        if let Some(tag) = &state.current().config.tag_header {
            headers.remove(tag);
        }
        let mut outcome = Outcome::from(CacheStatus::Bypass).fwd_status(status);
        if let Some(why) = why {
            outcome = outcome.detail(why);
        }
        headers::mark(headers, &state.current().config, outcome);
        Ok(response.map(CacheBody::passthrough))
    })
}

/// After a successful unsafe request: its target's entry, those of its `Location` and
/// `Content-Location` (each keyed as a GET of it would be), and the prefixes its rule names.
async fn invalidate_after_unsafe(
    state: &LayerState,
    cfg: &Config,
    target: &Parts,
    host: &RequestHost,
    response: &HeaderMap,
) {
    let get_key = |parts: &Parts, host: &RequestHost| {
        let get_cfg = state.config_for(&Method::GET, parts.uri.path());
        state.primary_key(&get_cfg, parts, host)
    };
    let mut keys: Vec<String> = get_key(target, host).into_iter().collect();
    if let Some(host) = state.key_host(host) {
        for name in [header::LOCATION, header::CONTENT_LOCATION] {
            let related = response
                .get(name)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| key::related_parts(target, host, loc))
                .and_then(|p| get_key(&p, &RequestHost::Named(host.to_owned())));
            keys.extend(related);
        }
        for prefix in &cfg.invalidate {
            let prefix = invalidated_prefix(prefix, cfg, target.uri.path());
            if let Err(e) = crate::purge::invalidate_prefix(state, host, &prefix).await {
                tracing::warn!(prefix, error = %e, "larder-http: a rule's invalidation failed");
            }
        }
    }
    for k in keys {
        crate::purge::invalidate(state, &k).await;
    }
}

/// A rule's `invalidate` entry for a request to `path`: each `{name}` of the rule's path
/// template replaced by the value the path gave it (`/users/{id}` on `/users/3`), and `{path}`,
/// unless the template names a variable so, by the whole path.
pub(crate) fn invalidated_prefix(entry: &str, cfg: &Config, path: &str) -> String {
    let captures = cfg
        .matched
        .as_ref()
        .map(|r| r.captures(path))
        .unwrap_or_default();
    let mut out = String::with_capacity(entry.len() + path.len());
    let mut rest = entry;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else {
            out.push('{');
            rest = after;
            break;
        };
        let name = &after[..close];
        match captures.iter().find(|(n, _)| *n == name) {
            Some((_, value)) => out.push_str(value),
            None if name == "path" => out.push_str(path),
            // Checked when the rule was read: not reached by a rule from a configuration.
            None => {}
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalidate_entries_take_the_templates_variables() {
        let rule = crate::Rule::path("/users/{id}/orders/{order}")
            .unwrap()
            .methods([Method::PUT]);
        let cfg = Config::shared().with_rule(&rule);
        let path = "/users/3/orders/9";
        assert_eq!(invalidated_prefix("/users/{id}", &cfg, path), "/users/3");
        assert_eq!(invalidated_prefix("{path}", &cfg, path), path);
        assert_eq!(invalidated_prefix("/o/{order}/x", &cfg, path), "/o/9/x");
        assert_eq!(invalidated_prefix("/plain", &cfg, path), "/plain");
        assert_eq!(invalidated_prefix("/open{", &cfg, path), "/open{");
    }
}
