//! [`RedisStore`]: the [`Store`] trait over Redis, standalone or Cluster.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use larder_store::{Store, StoreEntry, StoreError, StoreFuture, StoreKey};
use redis::cluster::ClusterClient;
use redis::cluster_routing::{RoutingInfo, SingleNodeRoutingInfo};
use redis::{Client, Cmd, ErrorKind, RedisError, Value, cmd};

use crate::Error;
use crate::backplane::RedisBackplane;
use crate::connection::{Conn, Connector, Limits, Recipe};
use crate::layout::Layout;
use crate::url::Target;

/// Deletes the lock `KEYS[1]` only if it still holds this caller's token `ARGV[1]`.
const UNLOCK_SCRIPT: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// How many keys one SCAN step asks for while clearing a namespace.
const SCAN_COUNT: u64 = 1_000;

/// A remote store on Redis or Redis Cluster.
///
/// Entries are larder envelopes stored with `SET .. PX`, where the expiry is the end of the entry's
/// stale window. `get_many` is one `MGET` (split by hash slot on a cluster), `set_many` one
/// pipeline (on a cluster, concurrent `SET`s that the client batches per node), a namespace is
/// cleared with `SCAN MATCH` + `UNLINK` on every master (never `KEYS`), and a tag is a version
/// counter (`INCR`) checked when an entry is read, so invalidating a tag costs one command however
/// many entries carry it.
///
/// The connection is made on first use and remade by itself after a failure, so a store can be
/// built while Redis is down.
///
/// ```
/// use std::sync::Arc;
/// use larder::Cache;
/// use larder_redis::RedisStore;
///
/// let store = RedisStore::open("redis://127.0.0.1:6379/0?prefix=myapp:").unwrap();
/// assert_eq!(store.prefix(), "myapp:");
/// let cache = Cache::builder().remote(Arc::new(store)).build();
/// # let _ = cache;
/// ```
pub struct RedisStore {
    connector: Arc<Connector>,
    layout: Layout,
    prefix: String,
    name: &'static str,
    /// One client per node, for the backplane's dedicated subscriber connection.
    subscribers: Arc<[Client]>,
    limits: Limits,
    backplane: bool,
}

/// Options for a [`RedisStore`] beyond what its URL says.
///
/// ```
/// use std::time::Duration;
/// let store = larder_redis::RedisStore::builder("redis+cluster://127.0.0.1:7000,127.0.0.1:7001")
///     .prefix("api:")
///     .connect_timeout(Duration::from_millis(500))
///     .build()
///     .unwrap();
/// assert!(store.is_cluster());
/// ```
#[derive(Debug, Clone)]
pub struct RedisStoreBuilder {
    url: String,
    prefix: Option<String>,
    root_cert: Option<Vec<u8>>,
    limits: Limits,
}

impl RedisStoreBuilder {
    /// The prefix of every key this store writes (default `larder:`, or the URL's `prefix=`).
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = Some(prefix.into());
        self
    }

    /// Trusts this CA (PEM) instead of the system's roots for `rediss://` (same as the URL's
    /// `ca_file=`).
    pub fn tls_root_cert(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.root_cert = Some(pem.into());
        self
    }

    /// How long one connection attempt may take (default 1 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.limits.connect_timeout = timeout;
        self
    }

    /// How long the client waits for a reply before giving up on it (default 2 s). The cache's
    /// `store_timeout` is usually tighter; this bounds work left inside the client.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.limits.response_timeout = timeout;
        self
    }

    /// Checks the URL and options; does not connect.
    pub fn build(self) -> Result<RedisStore, Error> {
        let target = Target::parse(&self.url)?;
        if target.nodes.iter().any(|n| n.starts_with("rediss://")) {
            install_crypto_provider()?;
        }
        let root_cert = match (self.root_cert, &target.ca_file) {
            (Some(pem), _) => Some(pem),
            (None, Some(path)) => Some(std::fs::read(path).map_err(|source| Error::CaFile {
                path: path.clone(),
                source,
            })?),
            (None, None) => None,
        };
        let subscribers = target
            .nodes
            .iter()
            .map(|url| match &root_cert {
                Some(pem) => client_with_root_cert(url, pem.clone()),
                None => Ok(Client::open(url.as_str())?),
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let recipe = if target.cluster {
            let mut builder = ClusterClient::builder(target.nodes.iter().map(String::as_str))
                .connection_timeout(self.limits.connect_timeout)
                .response_timeout(self.limits.response_timeout)
                .retries(2)
                .min_retry_wait(20)
                .max_retry_wait(200);
            if let Some(pem) = root_cert {
                builder = builder.certs(tls_certificates(pem)?);
            }
            Recipe::Cluster(builder.build()?)
        } else {
            let url = target.nodes.first().ok_or(Error::InvalidUrl {
                url: larder_store::redact_url(&self.url),
                reason: "the URL has no host",
            })?;
            let client = match root_cert {
                Some(pem) => client_with_root_cert(url, pem)?,
                None => Client::open(url.as_str())?,
            };
            Recipe::Standalone(client)
        };
        let prefix = self.prefix.unwrap_or(target.prefix);
        Ok(RedisStore {
            name: if target.cluster {
                "redis-cluster"
            } else {
                "redis"
            },
            connector: Arc::new(Connector::new(recipe, self.limits)),
            layout: Layout::new(&prefix),
            prefix,
            subscribers: subscribers.into(),
            limits: self.limits,
            backplane: target.backplane,
        })
    }
}

/// rustls needs a process-wide crypto provider; pick ring unless the application chose one.
#[cfg(feature = "tls")]
fn install_crypto_provider() -> Result<(), Error> {
    // Err means another provider is installed already, which is as good.
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(())
}

#[cfg(not(feature = "tls"))]
fn install_crypto_provider() -> Result<(), Error> {
    Err(Error::TlsNotCompiled)
}

#[cfg(feature = "tls")]
fn tls_certificates(pem: Vec<u8>) -> Result<redis::TlsCertificates, Error> {
    Ok(redis::TlsCertificates {
        client_tls: None,
        root_cert: Some(pem),
    })
}

#[cfg(not(feature = "tls"))]
fn tls_certificates(_: Vec<u8>) -> Result<std::convert::Infallible, Error> {
    Err(Error::TlsNotCompiled)
}

#[cfg(feature = "tls")]
fn client_with_root_cert(url: &str, pem: Vec<u8>) -> Result<Client, Error> {
    Ok(Client::build_with_tls(url, tls_certificates(pem)?)?)
}

#[cfg(not(feature = "tls"))]
fn client_with_root_cert(_: &str, _: Vec<u8>) -> Result<Client, Error> {
    Err(Error::TlsNotCompiled)
}

impl RedisStore {
    /// A store for `url` with default options (see [`RedisStoreBuilder`]); does not connect.
    pub fn open(url: &str) -> Result<Self, Error> {
        Self::builder(url).build()
    }

    /// Options beyond the URL.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            prefix: None,
            root_cert: None,
            limits: Limits::default(),
        }
    }

    /// The prefix of every key this store writes.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// Whether this store talks to a Redis Cluster.
    pub fn is_cluster(&self) -> bool {
        self.connector.is_cluster()
    }

    /// A backplane over this store's Redis: pub/sub on the channel `{prefix}#backplane`, shared by
    /// every store with the same prefix. It publishes through this store's connection and
    /// subscribes on a connection of its own.
    ///
    /// ```
    /// use std::sync::Arc;
    /// let store = larder_redis::RedisStore::open("redis://127.0.0.1:6379").unwrap();
    /// let backplane = store.backplane();
    /// let cache = larder::Cache::builder()
    ///     .remote(Arc::new(store))
    ///     .backplane(Arc::new(backplane))
    ///     .build();
    /// # let _ = cache;
    /// ```
    pub fn backplane(&self) -> RedisBackplane {
        RedisBackplane::new(
            self.name,
            self.layout.channel(),
            Arc::clone(&self.connector),
            Arc::clone(&self.subscribers),
            self.limits,
        )
    }

    /// Whether the URL asked for a backplane (`backplane=off` says no); `Cache::from_url` reads it.
    ///
    /// ```
    /// let store = larder_redis::RedisStore::open("redis://127.0.0.1?backplane=off").unwrap();
    /// assert!(!store.wants_backplane());
    /// ```
    pub fn wants_backplane(&self) -> bool {
        self.backplane
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.connector.conn().await
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.connector.query(cmd).await
    }

    /// `MGET` of `keys` (none: no round trip), checked to answer one value per key.
    async fn mget<T: redis::FromRedisValue>(
        &self,
        keys: impl ExactSizeIterator<Item = Vec<u8>>,
    ) -> Result<Vec<Option<T>>, StoreError> {
        let asked = keys.len();
        if asked == 0 {
            return Ok(Vec::new());
        }
        let mut c = cmd("MGET");
        for key in keys {
            c.arg(key);
        }
        let values: Vec<Option<T>> = self.query(&c).await?;
        if values.len() != asked {
            return Err(StoreError::Protocol(format!(
                "MGET of {asked} keys returned {} values",
                values.len()
            )));
        }
        Ok(values)
    }

    /// Runs independent write commands: one pipeline on a standalone server; on a cluster, where
    /// a pipeline must stay in one slot, concurrent commands that the client batches per node.
    async fn run_all(&self, cmds: Vec<Cmd>) -> Result<(), StoreError> {
        if cmds.is_empty() {
            return Ok(());
        }
        match self.conn().await? {
            mut conn @ Conn::Standalone(_) => {
                let mut pipe = redis::pipe();
                for cmd in cmds {
                    pipe.add_command(cmd).ignore();
                }
                conn.pipeline::<()>(&pipe).await.map_err(store_error)
            }
            conn @ Conn::Cluster(_) => {
                let calls = cmds.into_iter().map(|cmd| {
                    let mut conn = conn.clone();
                    async move { conn.query::<Value>(&cmd).await.map(drop) }
                });
                for result in futures::future::join_all(calls).await {
                    result.map_err(store_error)?;
                }
                Ok(())
            }
        }
    }

    fn set_cmd(&self, key: StoreKey<'_>, value: Bytes, ttl: Duration) -> Cmd {
        let mut c = cmd("SET");
        c.arg(self.layout.entry(key.namespace, key.key))
            .arg(value.as_ref())
            .arg("PX")
            .arg(px(ttl));
        c
    }

    /// Every key matching `pattern` on one node (or the standalone server), unlinked in batches
    /// as the scan goes.
    async fn unlink_matching(
        &self,
        conn: &mut Conn,
        node: Option<(String, u16)>,
        pattern: &[u8],
    ) -> Result<(), StoreError> {
        let mut cursor: u64 = 0;
        loop {
            let mut scan = cmd("SCAN");
            scan.arg(cursor)
                .arg("MATCH")
                .arg(pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT);
            let (next, keys): (u64, Vec<Vec<u8>>) = match (&mut *conn, &node) {
                (Conn::Cluster(c), Some((host, port))) => {
                    let routing = RoutingInfo::SingleNode(SingleNodeRoutingInfo::ByAddress {
                        host: host.clone(),
                        port: *port,
                    });
                    let reply = c.route_command(scan, routing).await.map_err(store_error)?;
                    redis::from_redis_value(reply)
                        .map_err(|e| StoreError::Protocol(e.to_string()))?
                }
                (conn, _) => conn.query(&scan).await.map_err(store_error)?,
            };
            if !keys.is_empty() {
                // On a cluster the client splits a multi-key UNLINK by hash slot.
                let mut unlink = cmd("UNLINK");
                unlink.arg(keys);
                conn.query::<Value>(&unlink).await.map_err(store_error)?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    /// Creates a missing tag counter at the current time (or reads the one a racing writer
    /// created first).
    async fn create_counter(&self, tag: &str) -> Result<u64, StoreError> {
        let key = self.layout.tag(tag);
        let mut pipe = redis::pipe();
        pipe.cmd("SET")
            .arg(&key)
            .arg(unix_nanos())
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key);
        let (version,): (Option<u64>,) = self
            .conn()
            .await?
            .pipeline(&pipe)
            .await
            .map_err(store_error)?;
        version.ok_or_else(|| StoreError::Protocol("a tag counter vanished as it was made".into()))
    }

    /// The masters of the cluster, from `CLUSTER NODES`.
    async fn masters(&self, conn: &mut Conn) -> Result<Vec<(String, u16)>, StoreError> {
        let nodes: String = conn
            .query(cmd("CLUSTER").arg("NODES"))
            .await
            .map_err(store_error)?;
        let mut masters = Vec::new();
        for line in nodes.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (Some(addr), Some(flags)) = (fields.get(1), fields.get(2)) else {
                continue;
            };
            if !flags.split(',').any(|f| f == "master") || flags.contains("fail") {
                continue;
            }
            // ip:port@cport[,hostname]
            let hostport = addr.split(['@', ',']).next().unwrap_or("");
            if let Some((host, port)) = hostport.rsplit_once(':')
                && let Ok(port) = port.parse()
                && !host.is_empty()
            {
                masters.push((host.to_owned(), port));
            }
        }
        if masters.is_empty() {
            return Err(StoreError::Protocol(
                "CLUSTER NODES listed no reachable master".to_owned(),
            ));
        }
        Ok(masters)
    }
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("kind", &self.name)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Store for RedisStore {
    fn name(&self) -> &str {
        self.name
    }

    fn get<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, Option<Bytes>> {
        Box::pin(async move {
            let mut c = cmd("GET");
            c.arg(self.layout.entry(key.namespace, key.key));
            let value: Option<Vec<u8>> = self.query(&c).await?;
            Ok(value.map(Bytes::from))
        })
    }

    /// `STRLEN` and `GETRANGE 0 limit-1` in one pipeline (one key, so one slot on a cluster):
    /// a value within the limit comes whole in one round trip, and a longer one is not read.
    fn get_within<'a>(
        &'a self,
        key: StoreKey<'a>,
        limit: usize,
    ) -> StoreFuture<'a, Option<larder_store::StoreRead>> {
        Box::pin(async move {
            let entry = self.layout.entry(key.namespace, key.key);
            let mut pipe = redis::pipe();
            pipe.cmd("STRLEN").arg(&entry);
            pipe.cmd("GETRANGE")
                .arg(&entry)
                .arg(0)
                .arg(limit.saturating_sub(1));
            let mut conn = self.conn().await?;
            let (len, head): (u64, Vec<u8>) = conn.pipeline(&pipe).await.map_err(store_error)?;
            Ok(match len {
                // No envelope is empty: a missing key reads as length 0.
                0 => None,
                n if n as usize <= limit && head.len() as u64 == n => {
                    Some(larder_store::StoreRead::Whole(Bytes::from(head)))
                }
                // Longer, or it changed between the two commands: only its length.
                n => Some(larder_store::StoreRead::Longer(n.max(head.len() as u64))),
            })
        })
    }

    fn get_many<'a>(&'a self, keys: &'a [StoreKey<'a>]) -> StoreFuture<'a, Vec<Option<Bytes>>> {
        Box::pin(async move {
            let physical = keys.iter().map(|k| self.layout.entry(k.namespace, k.key));
            let values: Vec<Option<Vec<u8>>> = self.mget(physical).await?;
            Ok(values.into_iter().map(|v| v.map(Bytes::from)).collect())
        })
    }

    fn set<'a>(&'a self, key: StoreKey<'a>, value: Bytes, ttl: Duration) -> StoreFuture<'a, ()> {
        Box::pin(async move { self.query::<()>(&self.set_cmd(key, value, ttl)).await })
    }

    fn set_many<'a>(&'a self, entries: Vec<StoreEntry<'a>>) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let cmds = entries
                .into_iter()
                .map(|e| self.set_cmd(e.key, e.value, e.ttl))
                .collect();
            self.run_all(cmds).await
        })
    }

    fn delete<'a>(&'a self, key: StoreKey<'a>) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = cmd("UNLINK");
            c.arg(self.layout.entry(key.namespace, key.key));
            let removed: u64 = self.query(&c).await?;
            Ok(removed > 0)
        })
    }

    fn clear_namespace<'a>(&'a self, namespace: &'a str) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let pattern = self.layout.namespace_pattern(namespace);
            let mut conn = self.conn().await?;
            if matches!(conn, Conn::Cluster(_)) {
                for master in self.masters(&mut conn).await? {
                    self.unlink_matching(&mut conn, Some(master), &pattern)
                        .await?;
                }
                Ok(())
            } else {
                self.unlink_matching(&mut conn, None, &pattern).await
            }
        })
    }

    fn tag_versions<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, Vec<u64>> {
        Box::pin(async move {
            let found: Vec<Option<u64>> =
                self.mget(tags.iter().map(|t| self.layout.tag(t))).await?;
            let mut versions = Vec::with_capacity(tags.len());
            for (tag, version) in tags.iter().zip(found) {
                versions.push(match version {
                    Some(v) => v,
                    None => self.create_counter(tag).await?,
                });
            }
            Ok(versions)
        })
    }

    fn invalidate_tags<'a>(&'a self, tags: &'a [&'a str]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let conn = self.conn().await?;
            let calls = tags.iter().map(|tag| {
                let key = self.layout.tag(tag);
                let mut pipe = redis::pipe();
                // A counter that is gone (evicted, flushed) restarts at the current time, never
                // at a version it had before.
                pipe.cmd("SET")
                    .arg(&key)
                    .arg(unix_nanos())
                    .arg("NX")
                    .ignore()
                    .cmd("INCR")
                    .arg(&key)
                    .ignore();
                let mut conn = conn.clone();
                async move { conn.pipeline::<()>(&pipe).await }
            });
            for result in futures::future::join_all(calls).await {
                result.map_err(store_error)?;
            }
            Ok(())
        })
    }

    fn try_lock<'a>(
        &'a self,
        key: StoreKey<'a>,
        token: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        Box::pin(async move {
            let mut c = cmd("SET");
            c.arg(self.layout.lock(key.namespace, key.key))
                .arg(token)
                .arg("NX")
                .arg("PX")
                .arg(px(ttl));
            let taken: Option<String> = self.query(&c).await?;
            Ok(taken.is_some())
        })
    }

    fn unlock<'a>(&'a self, key: StoreKey<'a>, token: &'a [u8]) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            // Compare and delete in one step: a lock that expired and was taken by another
            // process since is not ours to release.
            let mut c = cmd("EVAL");
            c.arg(UNLOCK_SCRIPT)
                .arg(1)
                .arg(self.layout.lock(key.namespace, key.key))
                .arg(token);
            self.query::<Value>(&c).await.map(drop)
        })
    }

    fn ping(&self) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            let reply: String = self.query(&cmd("PING")).await?;
            if reply == "PONG" {
                Ok(())
            } else {
                Err(StoreError::Protocol(format!("PING answered {reply:?}")))
            }
        })
    }
}

fn unix_nanos() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The longest `PX` sent: a century. Redis rejects an expiry whose deadline overflows its
/// millisecond clock, and a caller's `Duration::MAX` means "as long as possible", not an error.
const PX_MAX: u64 = 100 * 365 * 86_400 * 1000;

/// Milliseconds for `PX`, at least 1 (Redis rejects 0) and at most [`PX_MAX`].
fn px(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, PX_MAX)
}

pub(crate) fn store_error(e: RedisError) -> StoreError {
    if e.is_io_error()
        || e.is_timeout()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_cluster_error()
    {
        return StoreError::connection(e);
    }
    match e.kind() {
        ErrorKind::Parse | ErrorKind::UnexpectedReturnType => StoreError::Protocol(e.to_string()),
        ErrorKind::Io | ErrorKind::ClusterConnectionNotFound => StoreError::connection(e),
        _ => StoreError::server(e),
    }
}
