//! Following a fill in flight in this process: waiting for its head, then reading its body as it
//! is recorded.

use std::future::poll_fn;
use std::sync::Arc;

use bytes::Bytes;
use http::request::Parts;
use http::{Method, Response};

use crate::body::CacheBody;
use crate::config::Config;
use crate::headers::{self, CacheStatus, Outcome};
use crate::policy::Credentials;
use crate::recording::{HeadNews, Recording};
use crate::state::LayerState;

pub(super) enum Followed<B> {
    Served(Response<CacheBody<B>>),
    /// The response is not for this request (not shareable, another variant): fetch alone.
    Alone,
    /// The leader left without a response.
    Retry,
    /// The leader gave up waiting for the response head.
    Failed,
}

/// Waits for the head of the response in flight, then reads its body as it arrives.
pub(super) async fn follow<B>(
    state: &LayerState,
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
            && crate::vary::vary_values(head.varied(), &parts.headers) != head.vary_values)
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
    // Counted as a coalesced waiter by the core when it joined the fill.
    headers::mark(response.headers_mut(), &state.current().config, outcome);
    Followed::Served(response)
}
