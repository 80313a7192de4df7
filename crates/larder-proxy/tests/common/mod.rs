//! The proxy binary, really started, and a real origin server on loopback to put behind it.
#![allow(dead_code)]

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;

pub fn free_port() -> u16 {
    larder_testkit::free_port().expect("a free port")
}

/// A `larder-proxy` process on a free loopback port, killed on drop; its log kept in a file.
pub struct Proxy {
    child: Child,
    pub port: u16,
    /// The admin listener's port (0 when it is off).
    pub admin_port: u16,
    /// The TLS listener's port (0 without `[tls]`).
    pub tls_port: u16,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxy {
    pub fn start(upstream: SocketAddr, args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::start_with(upstream, args, env, None)
    }

    /// Starts the proxy under `ulimit -n nofile` when given (soft and hard limits both).
    pub fn start_with(
        upstream: SocketAddr,
        args: &[&str],
        env: &[(&str, &str)],
        nofile: Option<u32>,
    ) -> Self {
        let dir = tempfile::tempdir().expect("a temp dir");
        let log = dir.path().join("proxy.log");
        let out = std::fs::File::create(&log).expect("the log file");
        let mut all = vec![
            // Port 0: the proxy binds a port of the system's choosing and prints it, so no other
            // process can take it between choosing and binding.
            "--listen".to_owned(),
            "127.0.0.1:0".to_owned(),
        ];
        if !args.contains(&"--upstream") {
            all.extend(["--upstream".to_owned(), format!("http://{upstream}")]);
        }
        if !args.contains(&"--admin-listen") {
            all.extend(["--admin-listen".to_owned(), "127.0.0.1:0".to_owned()]);
        }
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let bin = env!("CARGO_BIN_EXE_larder-proxy");
        let mut cmd = match nofile {
            Some(n) => {
                let mut c = Command::new("bash");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(bin)
                    .args(&all);
                c
            }
            None => {
                let mut c = Command::new(bin);
                c.args(&all);
                c
            }
        };
        cmd.env("RUST_LOG", "info")
            .env_remove("LARDER_URL")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().expect("start larder-proxy");
        let mut proxy = Self {
            child,
            port: 0,
            admin_port: 0,
            tls_port: 0,
            log,
            _dir: dir,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = proxy.log_text();
            let port = text
                .split("caching proxy on http://127.0.0.1:")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|p| p.parse::<u16>().ok());
            if let Some(port) = port
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                proxy.port = port;
                proxy.admin_port = text
                    .split("(admin on http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split(')').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(0);
                proxy.tls_port = text
                    .split(" and https://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split(' ').next())
                    .and_then(|p| p.parse::<u16>().ok())
                    .unwrap_or(0);
                return proxy;
            }
            if let Ok(Some(status)) = proxy.child.try_wait() {
                panic!("the proxy exited with {status}: {text}");
            }
            assert!(Instant::now() < deadline, "the proxy did not start: {text}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.admin_port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `limit` for the process to exit; its status if it did.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A line of /proc/<pid>/status, in kB (VmHWM: peak resident set; VmRSS: now).
    pub fn status_kb(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))
            .expect("the proxy's /proc status");
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }

    /// User + system CPU time the proxy has used, in clock ticks.
    pub fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap();
        // Fields after the command name (which may hold spaces) start after the last ')'.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap()
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub type OriginBody = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;
pub type Handler = Arc<
    dyn Fn(Request<Incoming>) -> futures::future::BoxFuture<'static, Response<OriginBody>>
        + Send
        + Sync,
>;

/// A real HTTP/1.1 origin on a loopback port, answering with `handler`; stopped on drop.
pub struct Origin {
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Origin {
    pub async fn start(handler: Handler) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            // Connections live in the accept task's set: stopping the origin closes them all.
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                while connections.try_join_next().is_some() {}
                let handler = handler.clone();
                connections.spawn(async move {
                    let svc = hyper::service::service_fn(move |req| {
                        let fut = handler(req);
                        async move { Ok::<_, Infallible>(fut.await) }
                    });
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Self { addr, task }
    }
}

impl Drop for Origin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub fn full(status: u16, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Response<OriginBody> {
    let mut b = Response::builder().status(status);
    for (n, v) in headers {
        b = b.header(*n, *v);
    }
    b.body(
        Full::new(body.into())
            .map_err(|never| match never {})
            .boxed(),
    )
    .unwrap()
}

/// Sends raw bytes on a new connection and reads until the server closes it or `limit` passes;
/// returns what was read.
pub fn raw_exchange(port: u16, request: &[u8], limit: Duration) -> String {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(limit)).unwrap();
    s.write_all(request).unwrap();
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// A plain HTTP/1.1 GET with the given headers: status, headers and body.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> (u16, http::HeaderMap, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    let mut req = Request::get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = client
        .request(req.body(http_body_util::Empty::new()).unwrap())
        .await
        .expect("a response");
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (parts.status.as_u16(), parts.headers, body)
}

/// A GET's headers and its body (or the error that cut it).
pub async fn get_body(url: &str) -> (http::HeaderMap, Result<Bytes, String>) {
    let resp = request(url).await;
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .map_err(|e| e.to_string());
    (parts.headers, body)
}

/// A GET's headers, without waiting for its body.
pub async fn get_head(url: &str) -> http::HeaderMap {
    request(url).await.into_parts().0.headers
}

async fn request(url: &str) -> Response<Incoming> {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<http_body_util::Empty<Bytes>>();
    client
        .request(
            Request::get(url)
                .body(http_body_util::Empty::new())
                .unwrap(),
        )
        .await
        .expect("a response")
}

/// Any request: method, URL, headers and a body; status, headers and body back.
pub async fn send(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: &'static [u8],
) -> (u16, http::HeaderMap, Bytes) {
    let client = hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .build_http::<Full<Bytes>>();
    let mut req = Request::builder().method(method).uri(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from_static(body))).unwrap())
        .await
        .expect("a response");
    let (parts, body) = resp.into_parts();
    let body = body
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    (parts.status.as_u16(), parts.headers, body)
}

/// A configuration file in a temp dir, kept as long as the handle.
pub fn config_file(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("larder.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path)
}

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The Python with fastapi and uvicorn: `LARDER_PYTHON`, else the venv `scripts/test.sh` makes.
pub fn python() -> PathBuf {
    if let Ok(p) = std::env::var("LARDER_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join("target/venv/bin/python");
    assert!(
        venv.exists(),
        "no Python for the FastAPI tests: run scripts/test.sh (it makes target/venv with fastapi, \
         uvicorn and jinja2) or set LARDER_PYTHON"
    );
    venv
}

/// uvicorn serving a FastAPI app on a loopback socket this process bound (handed over as
/// `--fd 3`, so no other process can take the port in between); killed on drop.
pub struct Uvicorn {
    child: Child,
    pub port: u16,
}

impl Uvicorn {
    /// `app` (`module:attribute`) from the folder `dir` (relative to the repository), with `env`.
    pub fn start(dir: &str, app: &str, env: &[(&str, &str)]) -> Self {
        use std::os::fd::AsRawFd;
        use std::os::unix::process::CommandExt;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback socket");
        let port = listener.local_addr().unwrap().port();
        let fd = listener.as_raw_fd();
        let log = tempfile::NamedTempFile::new().unwrap();
        let mut cmd = Command::new(python());
        cmd.args(["-m", "uvicorn", app, "--fd", "3", "--log-level", "warning"])
            .current_dir(repo_root().join(dir))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log.reopen().unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        // SAFETY: between fork and exec only async-signal-safe calls: dup2 the bound socket to
        // fd 3 (dup2 clears close-on-exec on the copy).
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(fd, 3) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = cmd.spawn().expect("start uvicorn");
        drop(listener);
        let mut uvicorn = Self { child, port };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) {
                // The socket accepts as soon as it is bound: wait for uvicorn to answer.
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let _ =
                    s.write_all(b"GET /_calls HTTP/1.1\r\nHost: up\r\nConnection: close\r\n\r\n");
                let mut first = [0u8; 12];
                if s.read_exact(&mut first).is_ok() && first.starts_with(b"HTTP/1.1") {
                    break;
                }
            }
            if let Ok(Some(status)) = uvicorn.child.try_wait() {
                let err = std::fs::read_to_string(log.path()).unwrap_or_default();
                panic!("uvicorn exited with {status}: {err}");
            }
            assert!(Instant::now() < deadline, "uvicorn did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        uvicorn
    }

    pub fn addr(&self) -> SocketAddr {
        ([127, 0, 0, 1], self.port).into()
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Uvicorn {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The origin's side of an upgrade to a line echo protocol (`Upgrade: echo`): the 101, and a
/// task that echoes what comes through the upgraded connection.
pub fn echo_upgrade(req: &mut Request<Incoming>) -> Response<OriginBody> {
    let on = hyper::upgrade::on(req);
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let Ok(up) = on.await else { return };
        let mut io = TokioIo::new(up);
        let mut buf = [0u8; 64];
        while let Ok(n) = io.read(&mut buf).await {
            if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    full(101, &[("connection", "upgrade"), ("upgrade", "echo")], "")
}
