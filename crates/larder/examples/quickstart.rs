//! The quickstart: an axum API whose slow async call is memoized with `get_or_fetch`.
//!
//! This is use case 000 (FastAPI + cachetools, where an async call cannot run inside a sync
//! `__missing__` hook) done with larder: the handler awaits the cache, the cache awaits the slow
//! call once per key per 5 minutes, and concurrent first requests for one key share that one call.
//!
//! ```text
//! cargo run --release --example quickstart          # listens on 127.0.0.1:3000 (PORT overrides)
//! curl 'http://127.0.0.1:3000/resource?key=apple'   # first time: ~2 s; then: instant
//! curl 'http://127.0.0.1:3000/stats'
//! ```
//!
//! The store comes from `LARDER_URL` (default `memory://`). With a shared store, several
//! processes share entries:
//!
//! ```text
//! LARDER_URL=redis://127.0.0.1:6379 PORT=3001 cargo run --release --example quickstart --features redis
//! LARDER_URL=redis://127.0.0.1:6379 PORT=3002 cargo run --release --example quickstart --features redis
//! ```

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use larder::{Cache, EntryOptions, key};
use serde::{Deserialize, Serialize};

/// What the slow upstream returns.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Resource {
    key: String,
    value: bool,
    /// When the upstream produced it (seconds since the epoch): stays the same while cached.
    produced_at: u64,
}

/// The expensive I/O-bound call: 2 seconds, as in the use case.
async fn expensive_resource(key: String) -> Result<Resource, std::io::Error> {
    tokio::time::sleep(Duration::from_secs(2)).await;
    let produced_at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    Ok(Resource {
        key,
        value: true,
        produced_at,
    })
}

#[derive(Deserialize)]
struct ResourceQuery {
    key: String,
}

#[derive(Serialize)]
struct ResourceReply {
    #[serde(flatten)]
    resource: Resource,
    /// How long this request took inside the handler.
    elapsed_ms: f64,
}

const MAX_KEY_LEN: usize = 256;

async fn resource(State(cache): State<Cache>, Query(q): Query<ResourceQuery>) -> Response {
    if q.key.is_empty() || q.key.len() > MAX_KEY_LEN {
        let msg = format!("key must be 1 to {MAX_KEY_LEN} bytes");
        return (StatusCode::BAD_REQUEST, msg).into_response();
    }
    let started = Instant::now();
    // The key is built from parts, never concatenated from raw input.
    let cache_key = key!("resource", q.key);
    let requested = q.key.clone();
    let opts = EntryOptions::new().ttl(Duration::from_secs(300));
    match cache
        .get_or_fetch_with(&cache_key, opts, move || expensive_resource(requested))
        .await
    {
        Ok(resource) => Json(ResourceReply {
            resource: (*resource).clone(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
        .into_response(),
        Err(error) => (StatusCode::BAD_GATEWAY, error.to_string()).into_response(),
    }
}

async fn stats(State(cache): State<Cache>) -> Json<larder::Stats> {
    Json(cache.stats())
}

fn app(cache: Cache) -> Router {
    Router::new()
        .route("/resource", get(resource))
        .route("/stats", get(stats))
        .with_state(cache)
}

#[tokio::main]
async fn main() {
    if let Err(error) = run().await {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
}

async fn run() -> Result<(), Box<dyn std::error::Error>> {
    let port = match std::env::var("PORT") {
        Ok(p) => p
            .parse::<u16>()
            .map_err(|e| format!("PORT must be a port number, got {p:?}: {e}"))?,
        Err(_) => 3000,
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let url = std::env::var("LARDER_URL").unwrap_or_else(|_| "memory://".to_owned());
    let cache = Cache::builder()
        .name("quickstart")
        .max_entries(10_000)
        .remote_url(&url)?
        .build();
    let store = match cache.remote_name() {
        Some(name) => format!("memory tier in front of {name}"),
        None => "memory store".to_owned(),
    };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e} (set PORT to use another port)"))?;
    println!("larder quickstart listening on http://{addr} ({store})");
    println!("try:");
    println!(
        "  curl 'http://{addr}/resource?key=apple'    # first call ~2 s, then instant for 5 min"
    );
    println!(
        "  curl 'http://{addr}/resource?key=apple' & curl 'http://{addr}/resource?key=apple'   # one upstream call"
    );
    println!("  curl 'http://{addr}/stats'");
    axum::serve(listener, app(cache)).await?;
    Ok(())
}
