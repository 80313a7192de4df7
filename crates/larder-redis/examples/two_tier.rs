//! Two replicas of one API, each with its own memory tier in front of one shared Redis, kept
//! coherent by the backplane: an update through one replica is what the other serves at once,
//! although both hold the product in memory for ten minutes.
//!
//! ```text
//! cargo run -p larder-redis --example two_tier                # replicas on 127.0.0.1:3001 and :3002
//! PORTS=3001 cargo run -p larder-redis --example two_tier     # or one replica per process
//! REDIS_URL=redis://127.0.0.1:6380 ...                        # default redis://127.0.0.1:6379
//! ```
//!
//! Every replica's "database" starts with the same products and answers a read in 200 ms.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use larder::{Cache, EntryOptions, key};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Product {
    id: u64,
    name: String,
    price_cents: u64,
}

/// A slow database: every read takes 200 ms.
#[derive(Clone, Default)]
struct Db(Arc<Mutex<HashMap<u64, u64>>>);

impl Db {
    async fn product(&self, id: u64) -> Product {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let price = self.0.lock().map_or(None, |m| m.get(&id).copied());
        Product {
            id,
            name: format!("product {id}"),
            price_cents: price.unwrap_or(100 * id),
        }
    }

    fn set_price(&self, id: u64, cents: u64) {
        if let Ok(mut m) = self.0.lock() {
            m.insert(id, cents);
        }
    }
}

#[derive(Clone)]
struct Replica {
    name: Arc<str>,
    cache: Cache,
    db: Db,
}

#[derive(Serialize)]
struct Served {
    product: Product,
    served_by: Arc<str>,
    took_ms: f64,
}

fn ten_minutes() -> EntryOptions {
    EntryOptions::new().ttl(Duration::from_secs(600))
}

async fn read(State(r): State<Replica>, Path(id): Path<u64>) -> Response {
    let started = Instant::now();
    let db = r.db.clone();
    let product = r
        .cache
        .get_or_fetch_with(&key!("product", id), ten_minutes(), move || async move {
            Ok::<_, std::convert::Infallible>(db.product(id).await)
        })
        .await;
    match product {
        Ok(p) => Json(Served {
            product: (*p).clone(),
            served_by: r.name.clone(),
            took_ms: started.elapsed().as_secs_f64() * 1e3,
        })
        .into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct NewPrice {
    price_cents: u64,
}

/// Writes the database, then the cache: this replica's memory, Redis, and through the backplane
/// every other replica's memory.
async fn update(
    State(r): State<Replica>,
    Path(id): Path<u64>,
    Query(new): Query<NewPrice>,
) -> Response {
    r.db.set_price(id, new.price_cents);
    let product = Product {
        id,
        name: format!("product {id}"),
        price_cents: new.price_cents,
    };
    match r
        .cache
        .set_with(&key!("product", id), product.clone(), ten_minutes())
        .await
    {
        Ok(()) => Json(product).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

async fn stats(State(r): State<Replica>) -> Json<larder::Stats> {
    Json(r.cache.stats())
}

async fn serve(port: u16, redis: &str) -> Result<(), Box<dyn std::error::Error>> {
    // Each replica its own cache: its own memory tier, connections and backplane subscription.
    let cache = Cache::builder()
        .name(format!("replica-{port}"))
        .remote_url(redis)?
        .build();
    // Take traffic once coherent: the backplane's first subscription drops the memory tier.
    if !cache.backplane_ready(Duration::from_secs(5)).await {
        eprintln!("replica on port {port}: backplane not subscribed yet; serving anyway");
    }
    let replica = Replica {
        name: Arc::from(format!("127.0.0.1:{port}")),
        cache,
        db: Db::default(),
    };
    let app = Router::new()
        .route("/products/{id}", get(read).put(update))
        .route("/stats", get(stats))
        .with_state(replica);
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    axum::serve(listener, app).await?;
    Ok(())
}

fn ports() -> Result<Vec<u16>, String> {
    let spec = std::env::var("PORTS").unwrap_or_else(|_| "3001,3002".into());
    spec.split(',')
        .map(|p| {
            p.trim().parse().map_err(|_| {
                format!("PORTS must be port numbers separated by commas, not {spec:?}")
            })
        })
        .collect()
}

#[tokio::main]
async fn main() {
    let redis = std::env::var("REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let ports = match ports() {
        Ok(p) if !p.is_empty() => p,
        Ok(_) => {
            eprintln!("PORTS names no port");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    println!("replicas sharing {}", larder_store::redact_url(&redis));
    for p in &ports {
        println!("  http://127.0.0.1:{p}");
    }
    let (a, b) = (ports[0], *ports.last().unwrap_or(&ports[0]));
    println!("try:");
    println!("  curl -s 127.0.0.1:{a}/products/7          # 200 ms: from the database");
    println!("  curl -s 127.0.0.1:{b}/products/7          # from Redis, then from memory");
    println!("  curl -s -X PUT '127.0.0.1:{a}/products/7?price_cents=999'");
    println!("  curl -s 127.0.0.1:{b}/products/7          # 999 at once");
    println!("  curl -s 127.0.0.1:{b}/stats");
    let servers = ports.iter().map(|&port| {
        let redis = redis.clone();
        tokio::spawn(async move {
            if let Err(e) = serve(port, &redis).await {
                eprintln!("replica on port {port}: {e}");
                std::process::exit(1);
            }
        })
    });
    for s in futures::future::join_all(servers).await {
        if let Err(e) = s {
            eprintln!("a replica stopped: {e}");
        }
    }
}
