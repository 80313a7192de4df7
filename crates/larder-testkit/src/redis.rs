//! `redis-server` processes of our own: one standalone server (optionally with a password or
//! TLS), or a Redis Cluster of several masters.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread::sleep;
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::port::PortLease;
use crate::process::{ServerProcess, accepts};
use crate::wire::{redis, redis_answers};
use crate::{Error, START_ATTEMPTS};

/// A standalone `redis-server` on a free loopback port, keeping nothing on disk; killed when
/// dropped.
///
/// ```no_run
/// let mut redis = larder_testkit::RedisServer::start().unwrap();
/// let url = redis.url(); // redis://127.0.0.1:PORT
/// redis.kill();
/// redis.restart().unwrap(); // same port, empty
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisServer {
    process: ServerProcess,
    password: Option<String>,
    tls: Option<PathBuf>,
    dir: TempDir,
}

/// Options for a [`RedisServer`].
///
/// ```no_run
/// let redis = larder_testkit::RedisServer::builder()
///     .password("s3cret")
///     .tls(true)
///     .start()
///     .unwrap();
/// assert!(redis.url().starts_with("rediss://:s3cret@"));
/// ```
#[derive(Debug, Default, Clone)]
pub struct RedisServerBuilder {
    password: Option<String>,
    tls: bool,
}

impl RedisServerBuilder {
    /// Requires this password (`requirepass`) from clients.
    pub fn password(mut self, password: impl Into<String>) -> Self {
        self.password = Some(password.into());
        self
    }

    /// Serves TLS only, with a certificate for 127.0.0.1 signed by a throwaway CA (see
    /// [`RedisServer::ca_cert_path`]). Needs the `openssl` command.
    pub fn tls(mut self, tls: bool) -> Self {
        self.tls = tls;
        self
    }

    /// Starts the server and waits until it answers.
    pub fn start(self) -> Result<RedisServer, Error> {
        let dir = tempdir()?;
        let tls = if self.tls {
            Some(make_certificates(dir.path())?)
        } else {
            None
        };
        let mut last = Error::NoFreePort;
        for _ in 0..START_ATTEMPTS {
            let lease = PortLease::take(false)?;
            let port = lease.port();
            let mut args = base_args(port);
            if let Some(pw) = &self.password {
                args.extend(["--requirepass".to_owned(), pw.clone()]);
            }
            let ready: fn(u16) -> bool = if tls.is_some() {
                args.extend(
                    [
                        "--port",
                        "0",
                        "--tls-port",
                        &port.to_string(),
                        "--tls-cert-file",
                        "server.crt",
                        "--tls-key-file",
                        "server.key",
                        "--tls-ca-cert-file",
                        "ca.crt",
                        "--tls-auth-clients",
                        "no",
                    ]
                    .map(str::to_owned),
                );
                accepts
            } else {
                redis_answers
            };
            match ServerProcess::start("redis-server", args, dir.path(), lease, ready) {
                Ok(process) => {
                    return Ok(RedisServer {
                        process,
                        password: self.password,
                        tls,
                        dir,
                    });
                }
                Err(e @ Error::MissingBinary { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }
}

impl RedisServer {
    /// Starts a plain server (no password, no TLS).
    pub fn start() -> Result<Self, Error> {
        Self::builder().start()
    }

    /// Options: password, TLS.
    pub fn builder() -> RedisServerBuilder {
        RedisServerBuilder::default()
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// Its URL: `redis://127.0.0.1:PORT`, or `rediss://` with TLS, with the password if any.
    pub fn url(&self) -> String {
        let scheme = if self.tls.is_some() {
            "rediss"
        } else {
            "redis"
        };
        let auth = self
            .password
            .as_ref()
            .map(|p| format!(":{p}@"))
            .unwrap_or_default();
        format!("{scheme}://{auth}127.0.0.1:{}", self.port())
    }

    /// The PEM file of the CA that signed the server's certificate (TLS servers only).
    pub fn ca_cert_path(&self) -> Option<&Path> {
        self.tls.as_deref()
    }

    /// Runs one command on it (not over TLS) and returns the reply as text.
    pub fn command(&self, args: &[&str]) -> Result<String, Error> {
        redis(self.port(), args)
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port; it comes back empty.
    pub fn restart(&mut self) -> Result<(), Error> {
        let ready = if self.tls.is_some() {
            accepts
        } else {
            redis_answers
        };
        self.process.restart(ready)
    }

    /// Whether it is running (not killed).
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// The directory it runs in.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

/// A Redis Cluster of masters without replicas, each a `redis-server` on a free loopback port,
/// joined with `redis-cli --cluster create`; killed when dropped.
///
/// Nodes keep serving their own slots while another is down (`cluster-require-full-coverage no`),
/// and a restarted node rejoins with its slots from its `nodes.conf`.
///
/// ```no_run
/// let mut cluster = larder_testkit::RedisCluster::start(3).unwrap();
/// let url = cluster.url(); // redis+cluster://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3
/// cluster.kill_node(1);
/// cluster.restart_node(1).unwrap();
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<ServerProcess>,
    _dir: TempDir,
}

/// How long a cluster may take to agree that it is healthy.
const CLUSTER_SETTLE: Duration = Duration::from_secs(30);

impl RedisCluster {
    /// Starts `masters` nodes (at least 3, as Redis requires), creates the cluster, and waits until
    /// every node reports `cluster_state:ok`.
    pub fn start(masters: usize) -> Result<Self, Error> {
        if masters < 3 {
            return Err(Error::Cluster(format!(
                "a cluster needs at least 3 masters, not {masters}"
            )));
        }
        let dir = tempdir()?;
        let mut nodes = Vec::with_capacity(masters);
        while nodes.len() < masters {
            nodes.push(start_cluster_node(dir.path())?);
        }
        let addrs: Vec<String> = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect();
        let output = Command::new("redis-cli")
            .arg("--cluster")
            .arg("create")
            .args(&addrs)
            .args(["--cluster-replicas", "0", "--cluster-yes"])
            .output()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::MissingBinary {
                        program: "redis-cli",
                    }
                } else {
                    Error::Io {
                        what: "running redis-cli --cluster create",
                        source,
                    }
                }
            })?;
        if !output.status.success() {
            return Err(Error::Cluster(format!(
                "redis-cli --cluster create failed: {}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )));
        }
        let cluster = Self { nodes, _dir: dir };
        cluster.wait_healthy()?;
        Ok(cluster)
    }

    /// `redis+cluster://127.0.0.1:P1,127.0.0.1:P2,...`, the form larder's `Cache::from_url` takes.
    pub fn url(&self) -> String {
        format!("redis+cluster://{}", self.addrs().join(","))
    }

    /// `redis://127.0.0.1:P` for each node.
    pub fn node_urls(&self) -> Vec<String> {
        self.addrs()
            .iter()
            .map(|a| format!("redis://{a}"))
            .collect()
    }

    fn addrs(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port()))
            .collect()
    }

    /// The number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// Always false: a cluster has at least three nodes.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Runs one command on node `i` and returns the reply as text.
    pub fn command(&self, i: usize, args: &[&str]) -> Result<String, Error> {
        let node = self.node(i)?;
        redis(node.port(), args)
    }

    /// Kills node `i` at once (SIGKILL). Its slots are unavailable until it is restarted.
    pub fn kill_node(&mut self, i: usize) {
        if let Some(node) = self.nodes.get_mut(i) {
            node.kill();
        }
    }

    /// Restarts node `i` on its port with its `nodes.conf` (it comes back with its slots but no
    /// data) and waits until the whole cluster is healthy again.
    pub fn restart_node(&mut self, i: usize) -> Result<(), Error> {
        let node = self
            .nodes
            .get_mut(i)
            .ok_or_else(|| Error::Cluster(format!("no node {i}")))?;
        node.restart(redis_answers)?;
        self.wait_healthy()
    }

    fn node(&self, i: usize) -> Result<&ServerProcess, Error> {
        self.nodes
            .get(i)
            .ok_or_else(|| Error::Cluster(format!("no node {i}")))
    }

    /// Waits until every running node reports `cluster_state:ok` and knows every node.
    pub fn wait_healthy(&self) -> Result<(), Error> {
        let deadline = Instant::now() + CLUSTER_SETTLE;
        let want_nodes = format!("cluster_known_nodes:{}", self.nodes.len());
        loop {
            let mut last = String::new();
            let healthy = self
                .nodes
                .iter()
                .all(|n| match redis(n.port(), &["CLUSTER", "INFO"]) {
                    Ok(info) => {
                        let ok = info.contains("cluster_state:ok")
                            && info.contains("cluster_slots_assigned:16384")
                            && info.contains(&want_nodes);
                        if !ok {
                            last = info;
                        }
                        ok
                    }
                    Err(e) => {
                        last = e.to_string();
                        false
                    }
                });
            if healthy {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err(Error::Cluster(last));
            }
            sleep(Duration::from_millis(50));
        }
    }
}

fn start_cluster_node(dir: &Path) -> Result<ServerProcess, Error> {
    let mut last = Error::NoFreePort;
    for _ in 0..START_ATTEMPTS {
        let lease = PortLease::take(true)?;
        let port = lease.port();
        let mut args = base_args(port);
        args.extend(
            [
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                &format!("nodes-{port}.conf"),
                "--cluster-node-timeout",
                "2000",
                "--cluster-require-full-coverage",
                "no",
            ]
            .map(str::to_owned),
        );
        match ServerProcess::start("redis-server", args, dir, lease, redis_answers) {
            Ok(p) => return Ok(p),
            Err(e @ Error::MissingBinary { .. }) => return Err(e),
            Err(e) => last = e,
        }
    }
    Err(last)
}

fn base_args(port: u16) -> Vec<String> {
    [
        "--port",
        &port.to_string(),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    .map(str::to_owned)
    .to_vec()
}

fn tempdir() -> Result<TempDir, Error> {
    tempfile::tempdir().map_err(|source| Error::Io {
        what: "creating a temporary directory",
        source,
    })
}

/// A throwaway CA and a server certificate for 127.0.0.1 / localhost signed by it, in `dir`
/// (`ca.crt`, `server.crt`, `server.key`). Returns the CA's path.
fn make_certificates(dir: &Path) -> Result<PathBuf, Error> {
    std::fs::write(
        dir.join("server.ext"),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
    )
    .map_err(|source| Error::Io {
        what: "writing the certificate extensions",
        source,
    })?;
    let steps: [&[&str]; 4] = [
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.crt",
            "-days",
            "2",
            "-subj",
            "/CN=larder-test-ca",
        ],
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=localhost",
        ],
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.crt",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ],
        &["verify", "-CAfile", "ca.crt", "server.crt"],
    ];
    for args in steps {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::MissingBinary { program: "openssl" }
                } else {
                    Error::Io {
                        what: "running openssl",
                        source,
                    }
                }
            })?;
        if !out.status.success() {
            return Err(Error::StartFailed {
                program: "openssl",
                port: 0,
                why: format!("`openssl {}` failed", args.join(" ")),
                log: String::from_utf8_lossy(&out.stderr).into_owned(),
            });
        }
    }
    Ok(dir.join("ca.crt"))
}
