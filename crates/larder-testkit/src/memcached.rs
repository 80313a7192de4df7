//! A `memcached` of our own.

use tempfile::TempDir;

use crate::port::PortLease;
use crate::process::ServerProcess;
use crate::wire::memcached_answers;
use crate::{Error, START_ATTEMPTS};

/// A `memcached` process on a free loopback port, killed when dropped.
///
/// ```no_run
/// let mut mc = larder_testkit::MemcachedServer::start().unwrap();
/// let url = mc.url(); // memcached://127.0.0.1:PORT
/// mc.kill();
/// mc.restart().unwrap(); // same port, empty
/// # let _ = url;
/// ```
#[derive(Debug)]
pub struct MemcachedServer {
    process: ServerProcess,
    _dir: TempDir,
}

impl MemcachedServer {
    /// Starts memcached (64 MiB, items up to 2 MiB, TCP only) and waits until it answers.
    pub fn start() -> Result<Self, Error> {
        let dir = tempfile::tempdir().map_err(|source| Error::Io {
            what: "creating a temporary directory",
            source,
        })?;
        let mut last = Error::NoFreePort;
        for _ in 0..START_ATTEMPTS {
            let lease = PortLease::take(false)?;
            let port = lease.port();
            let mut args = vec![
                "-l".to_owned(),
                "127.0.0.1".to_owned(),
                "-p".to_owned(),
                port.to_string(),
                "-U".to_owned(),
                "0".to_owned(),
                "-m".to_owned(),
                "64".to_owned(),
                "-t".to_owned(),
                "2".to_owned(),
                // Items up to 2 MiB, so a 1 MiB value plus larder's header fits.
                "-I".to_owned(),
                "2m".to_owned(),
            ];
            // memcached refuses to run as root unless told which user to be.
            if is_root() {
                args.extend(["-u".to_owned(), "root".to_owned()]);
            }
            match ServerProcess::start("memcached", args, dir.path(), lease, memcached_answers) {
                Ok(process) => return Ok(Self { process, _dir: dir }),
                Err(e @ Error::MissingBinary { .. }) => return Err(e),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// `memcached://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("memcached://127.0.0.1:{}", self.port())
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// Kills it at once (SIGKILL).
    pub fn kill(&mut self) {
        self.process.kill();
    }

    /// Starts it again on the same port (memcached keeps nothing: it comes back empty).
    pub fn restart(&mut self) -> Result<(), Error> {
        self.process.restart(memcached_answers)
    }

    /// Whether it is running (not killed).
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }
}

fn is_root() -> bool {
    std::env::var("USER").is_ok_and(|u| u == "root")
        || std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .is_some_and(|l| l.split_whitespace().nth(1) == Some("0"))
        })
}
