//! One server process on a loopback port: started, probed until it answers, killed, restarted on
//! the same port with the same data directory.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use crate::Error;
use crate::port::PortLease;

/// How long a server may take to start answering.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A server process we started and own; killed on drop.
#[derive(Debug)]
pub(crate) struct ServerProcess {
    program: &'static str,
    args: Vec<String>,
    dir: PathBuf,
    log: PathBuf,
    /// The port, ours until the process is dropped, so a restart finds it free.
    lease: PortLease,
    child: Option<Child>,
}

impl ServerProcess {
    /// Starts `program args` with its working directory in `dir` and waits until `ready` says the
    /// server answers on the leased port.
    pub(crate) fn start(
        program: &'static str,
        args: Vec<String>,
        dir: &Path,
        lease: PortLease,
        ready: fn(u16) -> bool,
    ) -> Result<Self, Error> {
        let port = lease.port();
        let mut process = Self {
            program,
            args,
            dir: dir.to_owned(),
            log: dir.join(format!("{program}-{port}.log")),
            lease,
            child: None,
        };
        process.spawn(ready)?;
        Ok(process)
    }

    pub(crate) fn port(&self) -> u16 {
        self.lease.port()
    }

    pub(crate) fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server at once (SIGKILL: no shutdown, no goodbye to clients).
    pub(crate) fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port with the same arguments and directory; the lease
    /// kept the port from everyone else meanwhile.
    pub(crate) fn restart(&mut self, ready: fn(u16) -> bool) -> Result<(), Error> {
        self.kill();
        self.spawn(ready)
    }

    fn spawn(&mut self, ready: fn(u16) -> bool) -> Result<(), Error> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(&self.log)
            .map_err(|source| Error::Io {
                what: "opening the server log",
                source,
            })?;
        let log_err = log.try_clone().map_err(|source| Error::Io {
            what: "opening the server log",
            source,
        })?;
        let child = Command::new(self.program)
            .args(&self.args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    Error::MissingBinary {
                        program: self.program,
                    }
                } else {
                    Error::Io {
                        what: "spawning the server",
                        source,
                    }
                }
            })?;
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if ready(self.port()) {
                return Ok(());
            }
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                self.child = None;
                return Err(self.failed(format!("exited with {status}")));
            }
            if Instant::now() > deadline {
                self.kill();
                return Err(self.failed(format!("did not answer within {START_TIMEOUT:?}")));
            }
            sleep(Duration::from_millis(20));
        }
    }

    fn failed(&self, why: String) -> Error {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        Error::StartFailed {
            program: self.program,
            port: self.port(),
            why,
            log: tail.join("\n"),
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A loopback port nobody listens on now, from the kernel's ephemeral range. Another process could
/// take it before the caller binds, and anyone may take it once the caller lets go: for processes
/// started once and never restarted on it (servers that restart lease theirs, [`PortLease`]).
pub(crate) fn free_port() -> Result<u16, Error> {
    let io = |source| Error::Io {
        what: "finding a free port",
        source,
    };
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).map_err(io)?;
    Ok(listener.local_addr().map_err(io)?.port())
}

/// Whether something accepts TCP connections on the port.
pub(crate) fn accepts(port: u16) -> bool {
    TcpStream::connect_timeout(
        &(Ipv4Addr::LOCALHOST, port).into(),
        Duration::from_millis(200),
    )
    .is_ok()
}
