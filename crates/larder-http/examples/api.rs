//! The use cases' API, every endpoint cached by the larder-http layer (application mode).
//!
//! ```text
//! cargo run --release -p larder-http --example api            # 127.0.0.1:3000 (PORT overrides)
//! curl -i 'http://127.0.0.1:3000/slow'                        # 1 s, then instant (x-cache: HIT)
//! curl -i 'http://127.0.0.1:3000/users?skip=40&limit=20'      # same entry as ?limit=20&skip=40
//! curl -i -H 'accept: text/csv' 'http://127.0.0.1:3000/report'
//! curl -N 'http://127.0.0.1:3000/stream'                      # chunks arrive as produced
//! curl -X POST 'http://127.0.0.1:3000/purge/tag/users'
//! ```
//!
//! - `LARDER_URL` picks the store, as in the quickstart: `memory://` (default), `redis://…`,
//!   `memcached://…`. Several instances on one Redis share their responses.
//! - `LARDER_HTTP=off` serves the same app without the layer (the benchmark's baseline).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use larder::Cache;
use larder_http::{CacheLayer, Purger};
use serde::{Deserialize, Serialize};

const USERS: usize = 20_000;
const MAX_LIMIT: usize = 1_000;

#[derive(Clone, Serialize)]
struct User {
    id: usize,
    name: String,
    email: String,
}

#[derive(Clone)]
struct App {
    users: Arc<Vec<User>>,
    templates: Arc<minijinja::Environment<'static>>,
}

const PAGE: &str = r#"<!doctype html>
<html><head><title>{{ title }}</title></head>
<body>
<h1>{{ title }}</h1>
<p>Rendered at {{ rendered_at }} (cached: reload and the time stays).</p>
<ul>{% for u in users %}<li>{{ u.name }} &lt;{{ u.email }}&gt;</li>{% endfor %}</ul>
</body></html>
"#;

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A slow upstream call returning JSON.
async fn slow() -> Json<serde_json::Value> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Json(serde_json::json!({ "answer": 42, "computed_at": now_secs() }))
}

/// An HTML page rendered from a template.
async fn page(State(app): State<App>) -> Response {
    let ctx = minijinja::context! {
        title => "Team",
        rendered_at => now_secs(),
        users => &app.users[..10],
    };
    match app
        .templates
        .get_template("page")
        .and_then(|t| t.render(ctx))
    {
        Ok(html) => Html(html).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

#[derive(Deserialize)]
struct Page {
    #[serde(default)]
    skip: usize,
    #[serde(default = "default_limit")]
    limit: usize,
}

fn default_limit() -> usize {
    20
}

/// A page of the 20,000 users, tagged `users` for purging.
async fn users(State(app): State<App>, Query(p): Query<Page>) -> Response {
    if p.limit == 0 || p.limit > MAX_LIMIT {
        let msg = format!("limit must be between 1 and {MAX_LIMIT}");
        return (
            StatusCode::BAD_REQUEST,
            Json(serde_json::json!({ "error": msg })),
        )
            .into_response();
    }
    let start = p.skip.min(USERS);
    let end = start.saturating_add(p.limit).min(USERS);
    let mut resp = Json(&app.users[start..end]).into_response();
    resp.headers_mut()
        .insert("surrogate-key", header::HeaderValue::from_static("users"));
    resp
}

/// One report, as JSON or CSV by `Accept`; `Vary: Accept` keeps one entry per format.
async fn report(headers: HeaderMap) -> Response {
    let rows = [("apples", 3), ("pears", 5), ("plums", 8)];
    let wants_csv = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/csv"));
    let mut resp = if wants_csv {
        let mut csv = String::from("fruit,count\n");
        for (f, c) in rows {
            csv.push_str(&format!("{f},{c}\n"));
        }
        ([(header::CONTENT_TYPE, "text/csv")], csv).into_response()
    } else {
        let json: Vec<_> = rows
            .iter()
            .map(|(f, c)| serde_json::json!({ "fruit": f, "count": c }))
            .collect();
        Json(json).into_response()
    };
    resp.headers_mut()
        .insert(header::VARY, header::HeaderValue::from_static("accept"));
    resp
}

/// A chunked body produced over a second: the first client sees each chunk as it is made, and
/// requests arriving meanwhile read the same recording.
async fn stream() -> Response {
    let chunks = futures::stream::unfold(0u32, |i| async move {
        if i == 10 {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        Some((
            Ok::<_, std::io::Error>(format!("chunk {i} at {}\n", now_secs())),
            i + 1,
        ))
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain")
        .body(Body::from_stream(chunks))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(Deserialize)]
struct PurgeUrl {
    url: String,
}

async fn purge_url(State(p): State<Purger>, Query(q): Query<PurgeUrl>) -> Response {
    match p.purge_url(&q.url).await {
        Ok(found) => Json(serde_json::json!({ "purged": found })).into_response(),
        Err(e) => (StatusCode::BAD_REQUEST, e.to_string()).into_response(),
    }
}

async fn purge_tag(State(p): State<Purger>, Path(tag): Path<String>) -> StatusCode {
    p.purge_tag(&tag).await;
    StatusCode::NO_CONTENT
}

async fn purge_all(State(p): State<Purger>) -> StatusCode {
    p.purge_all().await;
    StatusCode::NO_CONTENT
}

fn app(cache: Option<Cache>) -> Router {
    let all_users = (0..USERS)
        .map(|id| User {
            id,
            name: format!("User {id}"),
            email: format!("user{id}@example.com"),
        })
        .collect();
    let mut templates = minijinja::Environment::new();
    if let Err(e) = templates.add_template("page", PAGE) {
        eprintln!("template: {e}");
    }
    let state = App {
        users: Arc::new(all_users),
        templates: Arc::new(templates),
    };
    let routes = Router::new()
        .route("/slow", get(slow))
        .route("/page", get(page))
        .route("/users", get(users))
        .route("/report", get(report))
        .route("/stream", get(stream))
        .with_state(state)
        .layer(axum::middleware::from_fn(public_for_a_minute));
    let Some(cache) = cache else {
        return routes;
    };
    let layer = CacheLayer::application(cache, Duration::from_secs(60)).etag_from_body(true);
    let purger = layer.purger();
    let purge = Router::new()
        .route("/purge/url", post(purge_url))
        .route("/purge/tag/{tag}", post(purge_tag))
        .route("/purge/all", post(purge_all))
        .with_state(purger);
    routes.layer(layer).merge(purge)
}

/// Downstream caches (a CDN, the proxy example) may keep successful responses for a minute too.
async fn public_for_a_minute(
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let mut resp = next.run(req).await;
    if resp.status().is_success() && !resp.headers().contains_key(header::CACHE_CONTROL) {
        resp.headers_mut().insert(
            header::CACHE_CONTROL,
            header::HeaderValue::from_static("public, max-age=60"),
        );
    }
    resp
}

#[tokio::main]
async fn main() {
    let port: u16 = match std::env::var("PORT") {
        Ok(p) => match p.parse() {
            Ok(p) => p,
            Err(_) => return eprintln!("PORT must be a port number, got {p:?}"),
        },
        Err(_) => 3000,
    };
    let cached = std::env::var("LARDER_HTTP").map_or(true, |v| v != "off");
    let cache = if cached {
        let url = std::env::var("LARDER_URL").unwrap_or_else(|_| "memory://".into());
        match Cache::builder().max_bytes(256 << 20).remote_url(&url) {
            Ok(b) => Some(b.build()),
            Err(e) => return eprintln!("LARDER_URL: {e}"),
        }
    } else {
        None
    };
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = match tokio::net::TcpListener::bind(addr).await {
        Ok(l) => l,
        Err(e) => return eprintln!("cannot listen on {addr}: {e}"),
    };
    let layer = if cached {
        "with the larder-http layer"
    } else {
        "without a cache layer"
    };
    println!("api example on http://{addr} ({layer})");
    if let Err(e) = axum::serve(listener, app(cache)).await {
        eprintln!("server error: {e}");
    }
}
