//! The workspace's example programs, started by tests as a user would start them.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use crate::Error;

/// An example binary of the calling crate (`cargo test` builds them), running until dropped.
///
/// ```no_run
/// let port = larder_testkit::free_port().unwrap();
/// let api = larder_testkit::ExampleProcess::start("api", &[], &[("PORT", &port.to_string())])
///     .expect("the api example");
/// # drop(api);
/// ```
#[derive(Debug)]
pub struct ExampleProcess(Child);

impl ExampleProcess {
    /// Starts example `name` with `args` and environment `env`; its stdout is discarded, its
    /// stderr goes to the test's.
    pub fn start(name: &str, args: &[&str], env: &[(&str, &str)]) -> Result<Self, Error> {
        let mut cmd = Command::new(path(name)?);
        cmd.args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.spawn().map(Self).map_err(|source| Error::Io {
            what: "starting an example program",
            source,
        })
    }
}

impl Drop for ExampleProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `target/<profile>/examples/<name>`, found from the running test binary
/// (`target/<profile>/deps/<test>`).
fn path(name: &str) -> Result<PathBuf, Error> {
    let exe = std::env::current_exe().map_err(|source| Error::Io {
        what: "finding the test binary",
        source,
    })?;
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .ok_or(Error::Io {
            what: "finding the target directory",
            source: std::io::Error::other("the test binary has no grandparent directory"),
        })?;
    Ok(profile.join("examples").join(name))
}

/// A loopback port nobody listens on now (another process could take it before it is used).
///
/// ```
/// let port = larder_testkit::free_port().unwrap();
/// assert!(port > 0);
/// ```
pub fn free_port() -> Result<u16, Error> {
    crate::process::free_port()
}
