//! `larder-proxy`: a caching reverse proxy in front of one HTTP origin.
//!
//! ```text
//! larder-proxy --upstream http://127.0.0.1:8000 --listen 127.0.0.1:8080 --memory-mib 256
//! LARDER_URL=redis://127.0.0.1:6379 larder-proxy --upstream http://127.0.0.1:8000
//! ```
//!
//! Without configuration it is a strict RFC 9111 shared cache: it stores what the origin's
//! headers allow, for as long as they say, keyed on path and query (every client host shares the
//! origin's entries).

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use http::Uri;
use larder::Cache;
use larder_http::CacheLayer;
use larder_proxy::server::{Limits, Server};
use larder_proxy::upstream::{Timeouts, Upstream};
use tower::Layer;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A caching reverse proxy on larder-http (RFC 9111 shared cache)"
)]
struct Args {
    /// Where to forward requests: `http://host:port`.
    #[arg(long)]
    upstream: Uri,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The memory tier's bound, in MiB; it covers stored responses and bodies being recorded.
    #[arg(long, default_value_t = 256)]
    memory_mib: u64,
    /// The store, shared by every instance that names it: memory://, redis://, rediss://,
    /// redis+cluster://, memcached://.
    #[arg(long, env = "LARDER_URL", default_value = "memory://")]
    store: String,
    /// Client connections open at once (default: half the descriptors the process may open, at
    /// most 4096).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Seconds a client has to send a request head once it starts one.
    #[arg(long, default_value_t = 10)]
    header_read_timeout: u64,
    /// Seconds a client connection may sit idle (or stall while a response is out).
    #[arg(long, default_value_t = 60)]
    idle_timeout: u64,
    /// Seconds to wait for the upstream's response head.
    #[arg(long, default_value_t = 60)]
    upstream_timeout: u64,
    /// Seconds the upstream may pause between two chunks of a body.
    #[arg(long, default_value_t = 10)]
    body_idle_timeout: u64,
    /// Seconds to connect to the upstream.
    #[arg(long, default_value_t = 5)]
    connect_timeout: u64,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("larder-proxy: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(args))
}

async fn run(args: Args) -> ExitCode {
    let descriptors = raise_descriptor_limit();
    let timeouts = Timeouts {
        connect: Duration::from_secs(args.connect_timeout),
        response: Duration::from_secs(args.upstream_timeout),
        body_idle: Duration::from_secs(args.body_idle_timeout),
        ..Timeouts::default()
    };
    let upstream = match Upstream::new(&args.upstream, timeouts) {
        Ok(u) => u,
        Err(e) => {
            eprintln!("larder-proxy: --upstream: {e}");
            return ExitCode::from(2);
        }
    };
    let cache = match Cache::builder()
        .name("proxy")
        .max_bytes(args.memory_mib.saturating_mul(1 << 20))
        .remote_url(&args.store)
    {
        Ok(b) => b.build(),
        Err(e) => {
            eprintln!("larder-proxy: the store {:?}: {e}", args.store);
            return ExitCode::from(2);
        }
    };
    let layer = CacheLayer::shared(cache)
        .fixed_host(upstream.authority())
        .body_idle_timeout(timeouts.body_idle)
        .response_timeout(timeouts.response);
    let service = layer.layer(upstream);
    let limits = Limits {
        max_connections: args
            .max_connections
            .unwrap_or_else(|| (descriptors.saturating_sub(64) / 2).clamp(16, 4096) as usize),
        header_read_timeout: Duration::from_secs(args.header_read_timeout),
        idle_timeout: Duration::from_secs(args.idle_timeout),
        ..Limits::default()
    };
    let listener = match tokio::net::TcpListener::bind(args.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("larder-proxy: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    // With port 0 the system picks one: say which, so whoever started us can connect.
    let listen = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(
        %listen,
        upstream = %args.upstream,
        store = %args.store,
        memory_mib = args.memory_mib,
        max_connections = limits.max_connections,
        "larder-proxy: caching what the upstream's Cache-Control allows (RFC 9111 shared cache)"
    );
    println!("caching proxy on http://{listen} -> {}", args.upstream);
    Server::new(listener, limits)
        .serve(service, shutdown_signal())
        .await;
    tracing::info!("larder-proxy: stopped");
    ExitCode::SUCCESS
}

/// SIGTERM or SIGINT (Ctrl-C).
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
    tracing::info!("larder-proxy: shutting down; finishing requests in flight");
}

/// Raises the soft limit on open descriptors to the hard one, as nginx's `worker_rlimit_nofile`
/// and Go's runtime do; returns the limit in force.
#[cfg(unix)]
fn raise_descriptor_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to the hard
        // one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit = raised;
        }
    }
    limit.rlim_cur
}

#[cfg(not(unix))]
fn raise_descriptor_limit() -> u64 {
    1024
}
