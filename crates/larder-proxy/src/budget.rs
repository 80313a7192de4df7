//! One descriptor budget: how the descriptors the process may open are shared out between
//! client connections, tunnels, connections to the origin (busy and idle) and a reserve for the
//! rest (listeners, the admin listener's connections, the store, logs), so that no kind of
//! traffic can take the descriptors another needs.
//!
//! A client connection holds one descriptor; a request it makes to the origin may hold another,
//! and a tunnel (WebSocket) holds one of each for as long as it lives. So the client side gets
//! half of what is left after the reserve, the origin side the other half (busy connections,
//! tunnels included, and the idle ones the pool keeps), and tunnels at most half the client
//! side, so that ordinary requests always find room.

/// Descriptors kept for everything that is neither a client nor an origin connection.
pub const RESERVE: u64 = 128;

/// The most client connections a default budget allows, whatever the descriptor limit.
const MAX_CLIENTS: usize = 4096;
/// The most busy connections to the origin a default budget allows.
const MAX_UPSTREAM: usize = 4096;

/// The shares, each either as configured or derived from the descriptor limit.
///
/// ```
/// use larder_proxy::budget::Budget;
/// let b = Budget::share(1024, &Default::default());
/// assert_eq!((b.client_connections, b.tunnels), (448, 224));
/// assert_eq!((b.upstream_connections, b.upstream_idle), (336, 112));
/// assert!(b.descriptors_needed() <= 1024);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Client connections open at once (tunnels included).
    pub client_connections: usize,
    /// Tunnels open at once.
    pub tunnels: usize,
    /// Connections to the origin busy at once (tunnels included).
    pub upstream_connections: usize,
    /// Idle connections the pool keeps to the origin.
    pub upstream_idle: usize,
}

/// What the configuration sets itself; the rest is derived.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Given {
    /// `[limits] max_connections`.
    pub client_connections: Option<usize>,
    /// `[upstream] max_tunnels`.
    pub tunnels: Option<usize>,
    /// `[upstream] max_connections`.
    pub upstream_connections: Option<usize>,
    /// `[upstream] pool_max_idle`.
    pub upstream_idle: Option<usize>,
}

impl Budget {
    /// The shares of `limit` descriptors, with what `given` sets taken as it is.
    pub fn share(limit: u64, given: &Given) -> Self {
        let available =
            usize::try_from(limit.saturating_sub(RESERVE).max(64)).unwrap_or(usize::MAX);
        let half = available / 2;
        let client_connections = given
            .client_connections
            .unwrap_or_else(|| half.clamp(16, MAX_CLIENTS));
        let tunnels = given.tunnels.unwrap_or(client_connections / 2).max(1);
        let origin_side = available.saturating_sub(client_connections).max(16);
        let upstream_idle = given.upstream_idle.unwrap_or(256).min(origin_side / 4);
        let upstream_connections = given.upstream_connections.unwrap_or_else(|| {
            origin_side
                .saturating_sub(upstream_idle)
                .clamp(8, MAX_UPSTREAM)
        });
        Self {
            client_connections,
            tunnels,
            upstream_connections,
            upstream_idle,
        }
    }

    /// The descriptors the budget may hold at once, the reserve included.
    pub fn descriptors_needed(&self) -> u64 {
        RESERVE
            + self.client_connections as u64
            + self.upstream_connections as u64
            + self.upstream_idle as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_derived_budget_fits_the_limit_and_leaves_room_beside_tunnels() {
        for limit in [256, 1024, 4096, 65_536, 1 << 20] {
            let b = Budget::share(limit, &Given::default());
            assert!(
                b.descriptors_needed() <= limit.max(RESERVE + 64 + 16),
                "{limit}: {b:?}"
            );
            assert!(b.tunnels < b.client_connections, "{limit}: {b:?}");
            assert!(b.tunnels <= b.upstream_connections, "{limit}: {b:?}");
        }
    }

    #[test]
    fn what_is_given_is_kept() {
        let given = Given {
            client_connections: Some(100),
            upstream_connections: Some(10),
            ..Given::default()
        };
        let b = Budget::share(1024, &given);
        assert_eq!(
            (b.client_connections, b.upstream_connections, b.tunnels),
            (100, 10, 50)
        );
    }
}
