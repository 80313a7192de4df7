//! A small caching reverse proxy: the larder-http layer, in shared-cache mode (RFC 9111), in
//! front of a hyper client that forwards to one upstream.
//!
//! ```text
//! cargo run --release -p larder-http --example proxy -- --upstream http://127.0.0.1:3000 --listen 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/users?limit=5     # cached as the upstream's Cache-Control allows
//! ```
//!
//! `LARDER_URL` picks the store (default `memory://`), so several proxies can share one Redis.
//! What is stored, for how long, and how it is revalidated is decided by the upstream's headers
//! alone; an unreachable upstream is a 502 (which `stale-if-error` may cover).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use axum::http::uri::{Authority, Scheme};
use bytes::Bytes;
use clap::Parser;
use http::{HeaderValue, Request, Response, StatusCode, Uri, header};
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use larder::Cache;
use larder_http::CacheLayer;
use tower::Layer;

#[derive(Parser, Debug)]
#[command(about = "A caching reverse proxy on larder-http (RFC 9111 shared cache)")]
struct Args {
    /// Where to forward requests: `http://host:port` (plain HTTP).
    #[arg(long)]
    upstream: Uri,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The memory tier's bound, in MiB.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// How long to wait for the upstream's response head, in seconds.
    #[arg(long, default_value_t = 30)]
    upstream_timeout: u64,
}

type ProxyBody = UnsyncBoxBody<Bytes, hyper::Error>;

/// Forwards each request to the upstream: same path and query, the upstream's Host, hop-by-hop
/// fields removed (RFC 9110 §7.6.1).
#[derive(Clone)]
struct Forward {
    client: Client<HttpConnector, Incoming>,
    scheme: Scheme,
    authority: Authority,
    timeout: Duration,
}

impl tower::Service<Request<Incoming>> for Forward {
    type Response = Response<ProxyBody>;
    type Error = Infallible;
    type Future = futures::future::BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Infallible>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (mut parts, body) = req.into_parts();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            let uri = Uri::builder()
                .scheme(this.scheme.clone())
                .authority(this.authority.clone())
                .path_and_query(path)
                .build();
            let Ok(uri) = uri else {
                return Ok(error(StatusCode::BAD_REQUEST, "bad request target"));
            };
            parts.uri = uri;
            strip_hop_by_hop(&mut parts.headers);
            if let Ok(host) = HeaderValue::from_str(this.authority.as_str()) {
                parts.headers.insert(header::HOST, host);
            }
            let sent = this.client.request(Request::from_parts(parts, body));
            match tokio::time::timeout(this.timeout, sent).await {
                Ok(Ok(resp)) => {
                    let (mut parts, body) = resp.into_parts();
                    strip_hop_by_hop(&mut parts.headers);
                    Ok(Response::from_parts(parts, body.boxed_unsync()))
                }
                Ok(Err(e)) => Ok(error(StatusCode::BAD_GATEWAY, &format!("upstream: {e}"))),
                Err(_) => Ok(error(StatusCode::GATEWAY_TIMEOUT, "upstream timed out")),
            }
        })
    }
}

fn strip_hop_by_hop(headers: &mut http::HeaderMap) {
    let named: Vec<String> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|n| n.trim().to_ascii_lowercase())
        .collect();
    for n in named {
        headers.remove(n.as_str());
    }
    for n in [
        "connection",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ] {
        headers.remove(n);
    }
}

fn error(status: StatusCode, msg: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(msg.to_owned()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp
}

#[tokio::main]
async fn main() {
    let args = Args::parse();
    let (Some(scheme), Some(authority)) = (
        args.upstream.scheme().cloned(),
        args.upstream.authority().cloned(),
    ) else {
        return eprintln!("--upstream must be an absolute URL such as http://127.0.0.1:3000");
    };
    if scheme != Scheme::HTTP {
        return eprintln!("--upstream must be plain http:// (TLS to the upstream is not built in)");
    }
    let url = std::env::var("LARDER_URL").unwrap_or_else(|_| "memory://".into());
    let cache = match Cache::builder()
        .max_bytes(args.memory_mib << 20)
        .remote_url(&url)
    {
        Ok(b) => b.build(),
        Err(e) => return eprintln!("LARDER_URL: {e}"),
    };
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client = Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector);
    let forward = Forward {
        client,
        scheme,
        authority,
        timeout: Duration::from_secs(args.upstream_timeout),
    };
    let service = CacheLayer::shared(cache).layer(forward);

    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => return eprintln!("cannot listen on {}: {e}", args.listen),
    };
    println!(
        "caching proxy on http://{} -> {}",
        args.listen, args.upstream
    );
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("accept: {e}");
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(service.clone());
        tokio::spawn(async move {
            let conn = auto::Builder::new(TokioExecutor::new());
            if let Err(e) = conn.serve_connection(TokioIo::new(stream), service).await {
                tracing_log(e);
            }
        });
    }
}

/// Connection errors (a client hanging up) are routine for a proxy; only print them when asked.
fn tracing_log(e: Box<dyn std::error::Error + Send + Sync>) {
    if std::env::var_os("PROXY_DEBUG").is_some() {
        eprintln!("connection: {e}");
    }
}
