//! An origin whose response bodies a test feeds chunk by chunk (or stalls), the layer in front of
//! it, and helpers to call it and read what comes back. Shared by the streaming and fill tests.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::{BodyExt, StreamBody};
use larder_http::{CacheBody, CacheLayer, CacheService};
use tokio::sync::mpsc;
use tower::{Service, ServiceExt};

type Chunk = Result<Bytes, io::Error>;

/// The bodies of the origin's calls, fed by the test: call `n` is the origin's `n`th call.
#[derive(Clone, Default)]
pub struct Feeds {
    senders: Arc<Mutex<Vec<mpsc::UnboundedSender<Chunk>>>>,
    calls: Arc<AtomicUsize>,
}

impl Feeds {
    pub fn send(&self, call: usize, chunk: impl Into<Bytes>) {
        let _ = self.senders.lock().unwrap()[call].send(Ok(chunk.into()));
    }

    pub fn fail(&self, call: usize) {
        let _ = self.senders.lock().unwrap()[call].send(Err(io::Error::other("upstream reset")));
    }

    pub fn end(&self, call: usize) {
        let (tx, _) = mpsc::unbounded_channel();
        self.senders.lock().unwrap()[call] = tx;
    }

    /// Whether the layer has let go of call `call`'s body (stopped downloading it).
    pub fn dropped(&self, call: usize) -> bool {
        self.senders.lock().unwrap()[call].is_closed()
    }

    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

pub type Origin = tower::util::BoxCloneSyncService<Request<Body>, Response<Body>, Infallible>;

/// An origin that answers each call after `head_delay` with `headers` and a body from `feeds`.
pub fn feeding_origin(
    feeds: Feeds,
    head_delay: Duration,
    headers: &'static [(&'static str, &'static str)],
) -> Origin {
    tower::util::BoxCloneSyncService::new(tower::service_fn(move |_req: Request<Body>| {
        let feeds = feeds.clone();
        async move {
            feeds.calls.fetch_add(1, Ordering::SeqCst);
            let (tx, rx) = mpsc::unbounded_channel::<Chunk>();
            feeds.senders.lock().unwrap().push(tx);
            tokio::time::sleep(head_delay).await;
            let stream = futures::stream::unfold(rx, |mut rx| async move {
                rx.recv().await.map(|c| (c.map(Frame::data), rx))
            });
            let mut b = Response::builder();
            for (n, v) in headers {
                b = b.header(*n, *v);
            }
            Ok::<_, Infallible>(b.body(Body::new(StreamBody::new(stream))).unwrap())
        }
    }))
}

pub const CACHEABLE: &[(&str, &str)] = &[("cache-control", "max-age=60")];

/// `layer` in front of a feeding origin whose responses are cacheable for a minute.
pub fn service(layer: &CacheLayer, feeds: &Feeds, head_delay: Duration) -> CacheService<Origin> {
    tower::Layer::layer(layer, feeding_origin(feeds.clone(), head_delay, CACHEABLE))
}

pub async fn call_with(
    svc: &mut CacheService<Origin>,
    headers: &[(&str, &str)],
) -> Response<CacheBody<Body>> {
    let mut req = Request::get("http://s.test/stream");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    svc.ready()
        .await
        .unwrap()
        .call(req.body(Body::empty()).unwrap())
        .await
        .unwrap()
}

pub async fn call(svc: &mut CacheService<Origin>) -> Response<CacheBody<Body>> {
    call_with(svc, &[]).await
}

/// The next data chunk, waiting at most 5 s (a liveness bound, not a speed check).
pub async fn next_chunk(body: &mut CacheBody<Body>) -> Option<Result<Bytes, String>> {
    let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("a chunk in time")?;
    Some(
        frame
            .map(|f| f.into_data().unwrap())
            .map_err(|e| e.to_string()),
    )
}

/// The whole body, or its error; at most 5 s (a liveness bound, not a speed check).
pub async fn rest(body: CacheBody<Body>) -> Result<Bytes, String> {
    tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the body ends in time")
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string())
}
