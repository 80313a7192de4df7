//! The connection behind a store: one multiplexed, self-reconnecting connection to a standalone
//! server (redis-rs's `ConnectionManager`), or a cluster connection that routes by hash slot.
//! Either is made on first use, so a store can be built before Redis is up (or outside a
//! runtime) and a failed first connection is retried by the next call.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, FromRedisValue, Pipeline, RedisError, RedisResult};
use tokio::sync::OnceCell;

use larder_store::StoreError;

use crate::Error;
use crate::store::store_error;

/// Time limits and retries for the connection. The cache in front of the store has its own,
/// usually tighter, per-call timeout; these only stop work piling up inside the client.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) connect_timeout: Duration,
    pub(crate) response_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(2),
        }
    }
}

/// How to make the connection.
pub(crate) enum Recipe {
    Standalone(Client),
    /// Built with its limits already (`ClusterClient::builder(..).connection_timeout(..)`).
    Cluster(ClusterClient),
}

/// A cheap clone of the live connection.
#[derive(Clone)]
pub(crate) enum Conn {
    Standalone(ConnectionManager),
    Cluster(ClusterConnection),
}

impl Conn {
    /// Runs `cmd`. On a standalone server a command that meets a connection the server dropped
    /// (a restart, say) is sent once more, on the connection the manager makes in its place:
    /// otherwise the first write after a restart would be lost. Every command the store sends is
    /// safe to repeat. A cluster connection retries by itself.
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Self::Standalone(c) => match cmd.query_async(c).await {
                Err(e) if dropped(&e) => cmd.query_async(c).await,
                result => result,
            },
            Self::Cluster(c) => cmd.query_async(c).await,
        }
    }

    /// A pipeline; on a cluster all its keys must share one hash slot. Retried as `query` is.
    pub(crate) async fn pipeline<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> RedisResult<T> {
        match self {
            Self::Standalone(c) => match pipe.query_async(c).await {
                Err(e) if dropped(&e) => pipe.query_async(c).await,
                result => result,
            },
            Self::Cluster(c) => pipe.query_async(c).await,
        }
    }
}

/// Whether `e` means an established connection is gone: not that the server refused a new one
/// (it is down, and a second try would only wait) or answered slowly.
fn dropped(e: &RedisError) -> bool {
    (e.is_connection_dropped() || e.is_io_error()) && !e.is_connection_refusal()
}

pub(crate) struct Connector {
    recipe: Recipe,
    limits: Limits,
    conn: OnceCell<Conn>,
}

impl Connector {
    pub(crate) fn new(recipe: Recipe, limits: Limits) -> Self {
        Self {
            recipe,
            limits,
            conn: OnceCell::new(),
        }
    }

    pub(crate) fn is_cluster(&self) -> bool {
        matches!(self.recipe, Recipe::Cluster(_))
    }

    /// The connection as a store sees it: any failure to make it is a [`StoreError`].
    pub(crate) async fn conn(&self) -> Result<Conn, StoreError> {
        self.get().await.map_err(|e| match e {
            Error::Redis(e) => store_error(e),
            other => StoreError::connection(other),
        })
    }

    /// Runs one command, with its errors as a store reports them.
    pub(crate) async fn query<T: FromRedisValue>(&self, cmd: &Cmd) -> Result<T, StoreError> {
        self.conn().await?.query(cmd).await.map_err(store_error)
    }

    /// The connection, made now if this is the first call (or the last attempt failed).
    pub(crate) async fn get(&self) -> Result<Conn, Error> {
        if let Some(conn) = self.conn.get() {
            return Ok(conn.clone());
        }
        // redis-rs spawns its connection tasks on tokio; without a runtime it would panic.
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(Error::NoRuntime);
        }
        self.conn.get_or_try_init(|| self.connect()).await.cloned()
    }

    async fn connect(&self) -> Result<Conn, Error> {
        let Limits {
            connect_timeout,
            response_timeout,
        } = self.limits;
        match &self.recipe {
            Recipe::Standalone(client) => {
                // Lazy: the manager connects on the first command and reconnects by itself
                // after any I/O error, with a short back-off so a restarted server is found soon.
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(connect_timeout))
                    .set_response_timeout(Some(response_timeout))
                    .set_number_of_retries(2)
                    .set_min_delay(Duration::from_millis(50))
                    .set_max_delay(Duration::from_millis(500));
                let manager = ConnectionManager::new_lazy_with_config(client.clone(), config)?;
                Ok(Conn::Standalone(manager))
            }
            Recipe::Cluster(client) => Ok(Conn::Cluster(client.get_async_connection().await?)),
        }
    }
}
