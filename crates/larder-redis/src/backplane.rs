//! [`RedisBackplane`]: the larder backplane over Redis pub/sub, standalone or Cluster.
//!
//! Messages are published with `PUBLISH` through the store's own connection. Each subscribing
//! cache has a dedicated subscriber connection, run by a thread of its own (with a single-thread
//! runtime), so listening depends neither on the application's runtime nor on how and where the
//! cache was built. The listener pings every second; when the connection breaks or a ping goes
//! unanswered for three seconds, it reports the loss and reconnects with a back-off, trying each node of a cluster
//! in turn. A cluster forwards every `PUBLISH` to all its nodes, so one subscription anywhere hears
//! every message.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use larder_store::{Backplane, BackplaneEvent, BackplaneSink, StoreFuture, Subscription};
use redis::{Client, Value, cmd};
use tokio::sync::Notify;

use crate::connection::{Connector, Limits};

/// How often an idle subscriber connection proves it is alive.
const PING_EVERY: Duration = Duration::from_secs(1);
/// How long a ping may go unanswered before the connection counts as lost. A server that dies
/// closes the connection, which is noticed at once; this is for one that stops answering. Not one
/// second: on a machine whose cores are busy a live server's answer can take that long, and a
/// loss makes every node drop its memory tier when it resubscribes.
const PING_ANSWER_WITHIN: Duration = Duration::from_secs(3);
/// The first pause before reconnecting; it doubles up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A larder backplane over Redis pub/sub; made by
/// [`RedisStore::backplane`](crate::RedisStore::backplane), or set up by `Cache::from_url`.
///
/// ```
/// use std::sync::Arc;
/// let store = larder_redis::RedisStore::open("redis://127.0.0.1:6379?prefix=shop:").unwrap();
/// let backplane = store.backplane();
/// assert_eq!(backplane.channel(), b"shop:#backplane");
/// # let _ = Arc::new(backplane);
/// ```
pub struct RedisBackplane {
    name: &'static str,
    channel: Vec<u8>,
    publisher: Arc<Connector>,
    subscribers: Arc<[Client]>,
    limits: Limits,
}

impl RedisBackplane {
    pub(crate) fn new(
        name: &'static str,
        channel: Vec<u8>,
        publisher: Arc<Connector>,
        subscribers: Arc<[Client]>,
        limits: Limits,
    ) -> Self {
        Self {
            name,
            channel,
            publisher,
            subscribers,
            limits,
        }
    }

    /// The pub/sub channel.
    pub fn channel(&self) -> &[u8] {
        &self.channel
    }
}

impl std::fmt::Debug for RedisBackplane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisBackplane")
            .field("kind", &self.name)
            .field("channel", &String::from_utf8_lossy(&self.channel))
            .finish_non_exhaustive()
    }
}

impl Backplane for RedisBackplane {
    fn name(&self) -> &str {
        self.name
    }

    fn publish<'a>(&'a self, message: Bytes) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let mut c = cmd("PUBLISH");
            c.arg(&self.channel).arg(message.as_ref());
            self.publisher.query::<Value>(&c).await.map(drop)
        })
    }

    fn subscribe(&self, sink: BackplaneSink) -> Subscription {
        let stop = Arc::new(Stop::default());
        let listener = Listener {
            channel: self.channel.clone(),
            subscribers: Arc::clone(&self.subscribers),
            connect_timeout: self.limits.connect_timeout,
            sink,
            stop: Arc::clone(&stop),
        };
        let spawned = std::thread::Builder::new()
            .name("larder-backplane".into())
            .spawn(move || listener.run());
        if let Err(error) = spawned {
            tracing::error!(%error, "no thread for the backplane listener; this node will not hear other nodes");
        }
        Subscription::new(StopOnDrop(stop))
    }
}

/// Tells the listener to end.
#[derive(Default)]
struct Stop {
    stopped: AtomicBool,
    notify: Notify,
}

struct StopOnDrop(Arc<Stop>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stopped.store(true, SeqCst);
        // A stored permit: the listener sees it even if it is not waiting right now.
        self.0.notify.notify_one();
    }
}

struct Listener {
    channel: Vec<u8>,
    subscribers: Arc<[Client]>,
    connect_timeout: Duration,
    sink: BackplaneSink,
    stop: Arc<Stop>,
}

/// How one subscription ended.
enum Ended {
    Stopped,
    Broken,
}

impl Listener {
    fn run(self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build();
        match runtime {
            Ok(rt) => rt.block_on(self.listen()),
            Err(error) => {
                tracing::error!(%error, "no runtime for the backplane listener; this node will not hear other nodes");
            }
        }
    }

    async fn listen(self) {
        let mut backoff = FIRST_BACKOFF;
        let mut node = 0usize;
        while !self.stop.stopped.load(SeqCst) {
            let Some(client) = self.subscribers.get(node % self.subscribers.len().max(1)) else {
                return;
            };
            node = node.wrapping_add(1);
            let subscribed =
                tokio::time::timeout(self.connect_timeout, subscribe(client, &self.channel)).await;
            if let Ok(Ok(pubsub)) = subscribed {
                backoff = FIRST_BACKOFF;
                (self.sink)(BackplaneEvent::Subscribed);
                let ended = self.relay(pubsub).await;
                (self.sink)(BackplaneEvent::Lost);
                if let Ended::Stopped = ended {
                    return;
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(backoff) => {}
                _ = self.stop.notify.notified() => return,
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }

    /// Hands every message to the sink until the connection breaks or the listener is stopped.
    async fn relay(&self, pubsub: redis::aio::PubSub) -> Ended {
        let (mut sink, mut stream) = pubsub.split();
        let mut ping = tokio::time::interval(PING_EVERY);
        ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ping.tick().await;
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => (self.sink)(BackplaneEvent::Message(msg.get_payload_bytes())),
                    None => return Ended::Broken,
                },
                _ = ping.tick() => {
                    let alive = tokio::time::timeout(PING_ANSWER_WITHIN, sink.ping::<Value>()).await;
                    if !matches!(alive, Ok(Ok(_))) {
                        return Ended::Broken;
                    }
                }
                _ = self.stop.notify.notified() => return Ended::Stopped,
            }
        }
    }
}

async fn subscribe(client: &Client, channel: &[u8]) -> redis::RedisResult<redis::aio::PubSub> {
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}
