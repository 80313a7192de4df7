//! Test helpers for larder: real `redis-server`, `memcached` and Redis Cluster processes, started on
//! free loopback ports in temporary directories, killed and restarted on demand for fault tests,
//! and stopped when dropped.
//!
//! A missing binary is an error that says what to install, never a silent skip:
//!
//! ```no_run
//! let redis = larder_testkit::RedisServer::start().expect("redis-server");
//! println!("test against {}", redis.url());
//! ```
#![warn(missing_docs)]

mod contract;
mod example;
mod load;
mod memcached;
mod port;
mod process;
mod redis;
mod throughput;
mod wait;
mod wire;

pub use contract::{check_lock_contract, check_store_contract};
pub use example::{ExampleProcess, free_port};
pub use load::{Load, LoadReport};
pub use memcached::MemcachedServer;
pub use redis::{RedisCluster, RedisServer, RedisServerBuilder};
pub use throughput::{BenchEnv, Throughput, measure};
pub use wait::eventually;

/// Why a test server could not be started or administered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The server's program is not installed.
    #[error(
        "`{program}` is not installed or not on PATH; run scripts/test.sh, which installs it with apt-get (packages redis-server, redis-tools, memcached)"
    )]
    MissingBinary {
        /// The program looked for.
        program: &'static str,
    },
    /// The server exited or never answered.
    #[error("{program} on 127.0.0.1:{port} {why}; its log ends with:\n{log}")]
    StartFailed {
        /// The program started.
        program: &'static str,
        /// Its port.
        port: u16,
        /// What went wrong.
        why: String,
        /// The last lines of its output.
        log: String,
    },
    /// No free loopback port was found.
    #[error("no free loopback port found")]
    NoFreePort,
    /// An I/O error while doing `what`.
    #[error("{what}: {source}")]
    Io {
        /// What the testkit was doing.
        what: &'static str,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A server answered a command with an error.
    #[error("server replied with an error: {0}")]
    Reply(String),
    /// A Redis Cluster did not settle.
    #[error("redis cluster did not become healthy: {0}")]
    Cluster(String),
}

/// How many times a start is tried with a fresh port, in case another process took the port
/// between our probe and the server's bind.
const START_ATTEMPTS: usize = 3;
