//! The connection behind a store: one multiplexed, self-reconnecting connection to a standalone
//! server (redis-rs's `ConnectionManager`), or a cluster connection that routes by hash slot.
//! Either is made on first use, so a store can be built before Redis is up (or outside a
//! runtime) and a failed first connection is retried by the next call.

use std::time::Duration;

use redis::aio::ConnectionManager;
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Client, Cmd, FromRedisValue, Pipeline, RedisResult};
use tokio::sync::OnceCell;

use crate::Error;

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
    pub(crate) async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> RedisResult<T> {
        match self {
            Self::Standalone(c) => cmd.query_async(c).await,
            Self::Cluster(c) => cmd.query_async(c).await,
        }
    }

    /// A pipeline; on a cluster all its keys must share one hash slot.
    pub(crate) async fn pipeline<T: FromRedisValue>(&mut self, pipe: &Pipeline) -> RedisResult<T> {
        match self {
            Self::Standalone(c) => pipe.query_async(c).await,
            Self::Cluster(c) => pipe.query_async(c).await,
        }
    }
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
