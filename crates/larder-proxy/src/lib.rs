//! # larder-proxy
//!
//! A caching reverse proxy: [larder-http](larder_http)'s RFC 9111 cache in front of one HTTP
//! origin, on a larder [`Cache`](larder::Cache) (memory, Redis, Redis Cluster or Memcached, so
//! several instances can share one store).
//!
//! The binary (`cargo install --path crates/larder-proxy`) is the product; this library holds its
//! parts so they are written once and tested on their own:
//! - [`server`]: the connections, with every limit and timeout a public listener needs;
//! - [`upstream`]: the forwarding client, with bounded waits and honest error statuses.
//!
//! ```text
//! larder-proxy --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod admin;
pub mod budget;
pub mod config;
pub mod front;
pub mod reload;
pub mod request_body;
pub mod server;
pub mod settings;
mod tunnel;
pub mod upstream;

/// The error type bodies and services in the proxy share.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
