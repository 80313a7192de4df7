//! Ports that stay ours from a server's first start to its last restart.
//!
//! A port found by binding port 0 comes from the kernel's ephemeral range: once the server on it
//! is killed, the kernel may hand the same port to anyone (another test's `bind(0)`, any outgoing
//! connection), and the restart then fails, or worse, a client reconnects to another test's
//! server. A [`PortLease`] is a port *below* the ephemeral range, which the kernel never picks by
//! itself, locked by a file lock under the temporary directory for as long as the lease lives, so
//! no other lease in this process or any other can take it, across kill and restart alike.

use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::Error;

/// The lowest port leased: clear of the well-known and registered services tests might run.
const LOWEST: u16 = 10_000;
/// How far the Redis Cluster bus port sits above its node's port.
const BUS_OFFSET: u16 = 10_000;

/// A loopback port held for one test server; released when dropped.
#[derive(Debug)]
pub(crate) struct PortLease {
    port: u16,
    /// Holds the port's lock file locked (`flock`), and so the port.
    _lock: File,
}

impl PortLease {
    /// Leases a free port outside the ephemeral range; with `with_bus`, its +10000 cluster-bus
    /// twin is outside it and free too.
    pub(crate) fn take(with_bus: bool) -> Result<Self, Error> {
        let (low, high) = ephemeral_range();
        let outside = |p: u32| p >= u32::from(LOWEST) && p <= 65_535 && (p < low || p > high);
        let candidates: Vec<u16> = (u32::from(LOWEST)..=65_535)
            .filter(|&p| outside(p) && (!with_bus || outside(p + u32::from(BUS_OFFSET))))
            .filter_map(|p| u16::try_from(p).ok())
            .collect();
        if candidates.is_empty() {
            return Err(Error::NoFreePort);
        }
        let dir = lock_dir()?;
        let start = seed() % candidates.len();
        for i in 0..candidates.len() {
            let port = candidates[(start + i) % candidates.len()];
            let Some(lock) = try_lock(&dir, port) else {
                continue;
            };
            let bus_free = !with_bus || bindable(port.saturating_add(BUS_OFFSET));
            if bindable(port) && bus_free {
                return Ok(Self { port, _lock: lock });
            }
        }
        Err(Error::NoFreePort)
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }
}

/// The kernel's ephemeral range (`ip_local_port_range`); Linux's default when unreadable.
fn ephemeral_range() -> (u32, u32) {
    let text =
        std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range").unwrap_or_default();
    let mut parts = text
        .split_whitespace()
        .filter_map(|p| p.parse::<u32>().ok());
    match (parts.next(), parts.next()) {
        (Some(low), Some(high)) if low <= high => (low, high),
        _ => (32_768, 60_999),
    }
}

fn lock_dir() -> Result<PathBuf, Error> {
    let dir = std::env::temp_dir().join("larder-testkit-ports");
    std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
        what: "creating the port lock directory",
        source,
    })?;
    Ok(dir)
}

/// The port's lock file, locked by us, or `None` when another lease holds it.
fn try_lock(dir: &std::path::Path, port: u16) -> Option<File> {
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(port.to_string()))
        .ok()?;
    file.try_lock().ok()?;
    Some(file)
}

/// Whether nothing listens on (or holds) the port now.
fn bindable(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// Where this process starts looking, so that concurrent test processes spread out.
fn seed() -> usize {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos as usize) ^ (std::process::id() as usize).wrapping_mul(2_654_435_761)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_are_distinct_while_held_and_outside_the_ephemeral_range() {
        let (low, high) = ephemeral_range();
        let leases: Vec<PortLease> = (0..20).map(|_| PortLease::take(true).unwrap()).collect();
        let mut ports: Vec<u16> = leases.iter().map(PortLease::port).collect();
        for &p in &ports {
            let (p, bus) = (u32::from(p), u32::from(p) + u32::from(BUS_OFFSET));
            assert!(p < low || p > high, "{p} in the ephemeral range");
            assert!(bus < low || bus > high, "bus {bus} in the ephemeral range");
        }
        ports.sort_unstable();
        ports.dedup();
        assert_eq!(ports.len(), 20, "a port leased twice");
    }

    #[test]
    fn a_held_port_is_not_leased_again_until_released() {
        let lease = PortLease::take(false).unwrap();
        let dir = lock_dir().unwrap();
        assert!(try_lock(&dir, lease.port()).is_none(), "held");
        let port = lease.port();
        drop(lease);
        assert!(try_lock(&dir, port).is_some(), "released");
    }
}
