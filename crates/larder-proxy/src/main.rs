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
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use http::Uri;
use larder::Cache;
use larder_proxy::admin::Admin;
use larder_proxy::budget::Budget;
use larder_proxy::config::{File, LogFormat, parse_duration};
use larder_proxy::front::FrontLayer;
use larder_proxy::reload::Reloader;
use larder_proxy::server::{Limits, Server};
use larder_proxy::settings::{Overrides, Settings};
use larder_proxy::upstream::Upstream;
use tower::Layer;

#[derive(Parser, Debug)]
#[command(
    version,
    about = "A caching reverse proxy on larder-http: RFC 9111, plus rules for origins that send no Cache-Control",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Checks a configuration file and prints the effective settings and rules (exit 2 if bad);
    /// with sample paths, which rule each gets, by method, and what it does.
    Check {
        /// The configuration file (every key: docs/CONFIG.md).
        #[arg(long)]
        config: PathBuf,
        /// Sample request paths (`/users/3`, `/admin/x`) to explain.
        paths: Vec<String>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// A TOML configuration file: every key in docs/CONFIG.md, an example in
    /// examples/fastapi/larder.toml; flags win over it.
    #[arg(long, env = "LARDER_CONFIG")]
    config: Option<PathBuf>,
    /// Where to forward requests: `http://host:port` or `https://host`.
    #[arg(long, env = "LARDER_UPSTREAM")]
    upstream: Option<Uri>,
    /// The address to listen on (default 127.0.0.1:8080).
    #[arg(long)]
    listen: Option<SocketAddr>,
    /// The admin listener (purge, /stats, /metrics, /healthz; default 127.0.0.1:8081), or `off`.
    #[arg(long)]
    admin_listen: Option<String>,
    /// The bearer token the admin listener requires (required off loopback).
    #[arg(long, env = "LARDER_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The memory tier's bound, in MiB (default 256); it covers stored responses and bodies
    /// being recorded.
    #[arg(long)]
    memory_mib: Option<u64>,
    /// The store, shared by every instance that names it: memory:// (default), redis://,
    /// rediss://, redis+cluster://, memcached://.
    #[arg(long, env = "LARDER_URL")]
    store: Option<String>,
    /// Client connections open at once (default: half the descriptors the process may open, at
    /// most 4096).
    #[arg(long)]
    max_connections: Option<usize>,
    /// Time a client has to send a request head once it starts one ("10s").
    #[arg(long, value_parser = parse_duration)]
    header_read_timeout: Option<Duration>,
    /// Time a client connection may sit idle, or stall while a response is out ("60s").
    #[arg(long, value_parser = parse_duration)]
    idle_timeout: Option<Duration>,
    /// Time to wait for the upstream's response head ("60s").
    #[arg(long, value_parser = parse_duration)]
    upstream_timeout: Option<Duration>,
    /// Time the upstream may pause between two chunks of a body ("10s").
    #[arg(long, value_parser = parse_duration)]
    body_idle_timeout: Option<Duration>,
    /// Time to connect to the upstream ("5s").
    #[arg(long, value_parser = parse_duration)]
    connect_timeout: Option<Duration>,
    /// The access log: text (default), json or off.
    #[arg(long, value_enum)]
    access_log: Option<LogArg>,
    /// Send the client's Host to the origin and key on it (default: the upstream's host).
    #[arg(long, num_args = 0..=1, default_missing_value = "true")]
    pass_host: Option<bool>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogArg {
    Text,
    Json,
    Off,
}

impl From<LogArg> for LogFormat {
    fn from(a: LogArg) -> Self {
        match a {
            LogArg::Text => Self::Text,
            LogArg::Json => Self::Json,
            LogArg::Off => Self::Off,
        }
    }
}

/// Seconds: from a memory hit to an origin at its response timeout.
const LATENCY_BUCKETS: [f64; 16] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
];

/// The exit code for a configuration that cannot be used: nothing was started.
const BAD_CONFIG: u8 = 2;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Check { config, paths }) = cli.command {
        return check(&config, &paths);
    }
    let args = cli.run;
    let file = match &args.config {
        Some(path) => match File::load(path) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("larder-proxy: {e}");
                return ExitCode::from(BAD_CONFIG);
            }
        },
        None => File::default(),
    };
    let overrides = Overrides {
        upstream: args.upstream,
        listen: args.listen,
        admin_listen: args.admin_listen,
        admin_token: args.admin_token,
        store: args.store,
        memory_mib: args.memory_mib,
        max_connections: args.max_connections,
        header_read_timeout: args.header_read_timeout,
        idle_timeout: args.idle_timeout,
        response_timeout: args.upstream_timeout,
        body_idle_timeout: args.body_idle_timeout,
        connect_timeout: args.connect_timeout,
        access_log: args.access_log.map(Into::into),
        pass_host: args.pass_host,
    };
    // What a reload (SIGHUP, POST /reload) re-reads, with the same flags winning.
    let reload_from = args.config.clone().map(|path| (path, overrides.clone()));
    let settings = match Settings::resolve(file, overrides) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("larder-proxy: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    // A reload compares the file's new settings with these, as resolved (before the descriptor
    // budget fills in what they leave open).
    let reload_from = reload_from.map(|(path, overrides)| (path, overrides, settings.clone()));
    init_logging(settings.access_log);
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
    runtime.block_on(run(settings, reload_from))
}

/// `larder-proxy check --config FILE`.
fn check(path: &std::path::Path, samples: &[String]) -> ExitCode {
    let settings = File::load(path)
        .map_err(|e| e.to_string())
        .and_then(|f| Settings::resolve(f, Overrides::default()).map_err(|e| e.to_string()));
    // The certificates are read too: a file that checks must also start.
    let settings = settings.and_then(|s| match &s.tls {
        Some(tls) => larder_proxy::server::check_tls(tls)
            .map(|()| s)
            .map_err(|e| format!("[tls]: {e}")),
        None => Ok(s),
    });
    match settings {
        Ok(s) => {
            println!("{}: ok\n", path.display());
            print!("{}", s.describe());
            for sample in samples {
                print!("\n{}", s.explain(sample));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("larder-proxy: {e}");
            ExitCode::from(BAD_CONFIG)
        }
    }
}

fn init_logging(format: LogFormat) {
    let mut filter =
        tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    if format == LogFormat::Off
        && let Ok(off) = "larder_proxy::access=off".parse()
    {
        filter = filter.add_directive(off);
    }
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stdout());
    if format == LogFormat::Json {
        tracing_subscriber::fmt()
            .json()
            .with_env_filter(filter)
            .init();
    } else {
        tracing_subscriber::fmt()
            .with_ansi(ansi)
            .with_env_filter(filter)
            .init();
    }
}

async fn run(
    mut settings: Settings,
    reload_from: Option<(PathBuf, Overrides, Settings)>,
) -> ExitCode {
    let descriptors = raise_descriptor_limit();
    return_large_buffers_at_once();
    // One budget of descriptors for clients, tunnels and the origin's connections.
    let budget = Budget::share(descriptors, &settings.budget);
    if budget.descriptors_needed() > descriptors {
        tracing::warn!(
            descriptors,
            needed = budget.descriptors_needed(),
            "the configured connection limits need more descriptors than the process may open"
        );
    }
    settings.timeouts.max_connections = budget.upstream_connections;
    settings.timeouts.max_tunnels = budget.tunnels;
    settings.timeouts.pool_max_idle = budget.upstream_idle;
    let Some(upstream_url) = settings.upstream.clone() else {
        eprintln!(
            "larder-proxy: {}",
            larder_proxy::settings::SettingsError::NoUpstream
        );
        return ExitCode::from(BAD_CONFIG);
    };
    let upstream = match Upstream::with_roots(&upstream_url, settings.timeouts, &settings.roots) {
        Ok(u) => u.pass_host(settings.pass_host),
        Err(e) => {
            eprintln!("larder-proxy: upstream: {e}");
            return ExitCode::from(BAD_CONFIG);
        }
    };
    let cache = match Cache::builder()
        .name("proxy")
        .max_bytes(settings.memory_mib.saturating_mul(1 << 20))
        .remote_url(&settings.store)
    {
        Ok(b) => b.build(),
        Err(e) => {
            eprintln!("larder-proxy: the store {:?}: {e}", settings.store);
            return ExitCode::from(BAD_CONFIG);
        }
    };
    // Histograms with buckets (not summaries), so latencies aggregate across instances.
    let metrics = match metrics_exporter_prometheus::PrometheusBuilder::new()
        .set_buckets(&LATENCY_BUCKETS)
        .and_then(|b| b.install_recorder())
    {
        Ok(h) => h,
        Err(e) => {
            eprintln!("larder-proxy: cannot install the metrics recorder: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The recorder keeps histogram samples until upkeep folds them in: run it, or they grow
    // without bound between scrapes.
    let upkeep = metrics.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(Duration::from_secs(5));
        loop {
            every.tick().await;
            upkeep.run_upkeep();
        }
    });
    let layer = settings.layer(cache.clone(), upstream.authority());
    let purger = layer.purger();
    let reloader = reload_from.map(|(path, overrides, resolved)| {
        Arc::new(Reloader::new(
            path,
            overrides,
            resolved,
            layer.clone(),
            cache.clone(),
            upstream.clone(),
        ))
    });
    if let Some(reloader) = reloader.clone() {
        tokio::spawn(reload_on_hangup(reloader));
    }
    let client_reloader = reloader.clone();
    let front = FrontLayer::new(settings.x_cache, settings.access_log != LogFormat::Off);
    // The client's body streams to the origin, except a POST the cache keys on its body,
    // which is read first (`key_body` rules).
    let to_origin =
        tower::util::MapRequestLayer::new(|req: http::Request<hyper::body::Incoming>| {
            req.map(larder_proxy::request_body::RequestBody::from)
        });
    let service = front.layer(to_origin.layer(layer.key_bodies().layer(upstream)));
    let limits = Limits {
        max_connections: budget.client_connections,
        ..settings.limits
    };
    let listener = match tokio::net::TcpListener::bind(settings.listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("larder-proxy: cannot listen on {}: {e}", settings.listen);
            return ExitCode::FAILURE;
        }
    };
    let tls = match &settings.tls {
        None => None,
        Some(t) => {
            let config = match larder_proxy::server::Tls::load(t) {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("larder-proxy: [tls]: {e}");
                    return ExitCode::from(BAD_CONFIG);
                }
            };
            match tokio::net::TcpListener::bind(t.listen).await {
                Ok(l) => Some((l, config)),
                Err(e) => {
                    eprintln!("larder-proxy: cannot listen on {} (TLS): {e}", t.listen);
                    return ExitCode::FAILURE;
                }
            }
        }
    };
    let (stop_admin, admin_stopping) = tokio::sync::watch::channel(false);
    let mut admin_addr = None;
    let admin_task = match settings.admin_listen {
        None => None,
        Some(addr) => {
            let admin_listener = match tokio::net::TcpListener::bind(addr).await {
                Ok(l) => l,
                Err(e) => {
                    eprintln!("larder-proxy: cannot listen on {addr} (admin): {e}");
                    return ExitCode::FAILURE;
                }
            };
            admin_addr = Some(admin_listener.local_addr().unwrap_or(addr));
            let mut admin = Admin::new(cache, purger, metrics, settings.admin_token.clone());
            if let Some(reloader) = reloader {
                admin = admin.with_reloader(reloader);
            }
            let admin_limits = Limits {
                max_connections: 64,
                ..Limits::default()
            };
            let mut stopping = admin_stopping;
            Some(tokio::spawn(async move {
                Server::new(admin_listener, admin_limits)
                    .serve(admin, async move {
                        let _ = stopping.wait_for(|s| *s).await;
                    })
                    .await;
            }))
        }
    };
    // With port 0 the system picks one: say which, so whoever started us can connect.
    let listen = listener.local_addr().unwrap_or(settings.listen);
    for line in settings.describe().lines() {
        tracing::info!("{line}");
    }
    tracing::info!(
        %listen,
        descriptors,
        max_connections = budget.client_connections,
        max_tunnels = budget.tunnels,
        upstream_connections = budget.upstream_connections,
        upstream_idle = budget.upstream_idle,
        "larder-proxy: ready"
    );
    let https = tls
        .as_ref()
        .and_then(|(l, _)| l.local_addr().ok())
        .map(|a| format!(" and https://{a}"))
        .unwrap_or_default();
    match admin_addr {
        Some(admin) => println!(
            "caching proxy on http://{listen}{https} -> {upstream_url} (admin on http://{admin})"
        ),
        None => println!("caching proxy on http://{listen}{https} -> {upstream_url}"),
    }
    let mut server = Server::new(listener, limits);
    if let Some((listener, config)) = tls {
        if let Some(reloader) = &client_reloader {
            reloader.attach_tls(config.clone());
        }
        server = server.with_tls(listener, config);
    }
    if let Some(reloader) = &client_reloader {
        reloader.attach_limits(server.live_limits());
    }
    server.serve(service, shutdown_signal()).await;
    let _ = stop_admin.send(true);
    if let Some(task) = admin_task {
        let _ = task.await;
    }
    tracing::info!("larder-proxy: stopped");
    ExitCode::SUCCESS
}

/// Each SIGHUP re-reads the configuration file (nginx's `-s reload`).
async fn reload_on_hangup(reloader: Arc<Reloader>) {
    #[cfg(unix)]
    {
        let Ok(mut hangups) =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        else {
            tracing::warn!("larder-proxy: cannot listen for SIGHUP; reload with POST /reload");
            return;
        };
        while hangups.recv().await.is_some() {
            let r = reloader.clone();
            match tokio::task::spawn_blocking(move || r.reload()).await {
                Ok(Ok(done)) => tracing::info!("larder-proxy: {done} (SIGHUP)"),
                Ok(Err(e)) => tracing::error!(
                    "larder-proxy: reload refused, the running configuration stays: {e}"
                ),
                Err(_) => tracing::error!("larder-proxy: the reload panicked"),
            }
        }
    }
    #[cfg(not(unix))]
    drop(reloader);
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

/// Makes every allocation of 128 KiB or more its own mapping, given back to the system when it
/// is freed. glibc's default threshold rises to the size of the largest block freed (up to
/// 32 MiB), after which response bodies come from the heap arenas and their freed space stays
/// in the process: over Redis, 200 concurrent hits of 5 MB bodies peaked at 194 MiB of resident
/// memory with the moving threshold and 159 MiB with this one, under the same 64 MiB bound
/// (BENCHMARKS.md and TESTING.md).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_buffers_at_once() {
    // SAFETY: mallopt sets one allocator parameter; it is called before the proxy allocates
    // anything large, and any value is valid for M_MMAP_THRESHOLD up to its maximum.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 << 10);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_buffers_at_once() {}

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
