//! A 304 from the service: the stored response, refreshed by it, stored again and handed to the
//! requests that waited.

use super::Fill;
use std::sync::Arc;

use http::header;
use http::request::Parts;
use http::{HeaderMap, Method};

use crate::coalesce::LeadGuard;
use crate::conditional;
use crate::directives::CacheControl;
use crate::headers::{self};
use crate::policy::{self, Exchange};
use crate::recording::Head;
use crate::stored::CachedResponse;
use crate::write::{set_date, write};

impl Fill {
    /// A 304 from the origin: the stored response, its header fields updated from the 304, stored
    /// again with its new freshness and handed to the requests that waited for it.
    pub(super) async fn refresh(
        self,
        prior: &CachedResponse,
        update: &HeaderMap,
        client: &Parts,
        times: Exchange,
        guard: LeadGuard,
    ) -> CachedResponse {
        let state = &self.state;
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
                    state,
                    &self.key,
                    self.index,
                    plan,
                    &client.headers,
                    fresh.clone(),
                    guard.lead(),
                )
                .await;
            }
        }
        drop(guard);
        fresh
    }
}
