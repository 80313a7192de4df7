//! Time sources.
//!
//! The memory tier checks expiry on every hit, so its clock must cost far less than the lookup
//! itself. On Linux that is `CLOCK_MONOTONIC_COARSE`, read from the vDSO without touching the TSC
//! (a few nanoseconds, resolution of one scheduler tick, 1–4 ms); elsewhere `Instant`. Expiry by a
//! few milliseconds late is harmless for a cache; a full clock read per hit is not.
//!
//! Envelopes cross machines, so they carry wall-clock milliseconds since the Unix epoch instead.

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds since an arbitrary, process-wide origin.
#[inline]
pub(crate) fn now_nanos() -> u64 {
    imp::now_nanos()
}

/// `now_nanos() + d`, saturating, so a `Duration::MAX` ttl means "never".
#[inline]
pub(crate) fn deadline(now: u64, d: Duration) -> u64 {
    now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Wall-clock milliseconds since the Unix epoch (0 if the system clock is before 1970).
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Wall-clock microseconds since the Unix epoch (0 if the system clock is before 1970): fine
/// enough to order a write on one node before a fetch that another node starts after hearing it.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Converts wall-clock Unix milliseconds into a monotonic instant comparable with [`now_nanos`].
pub(crate) fn unix_millis_to_mono(unix_ms: u64, now_mono: u64, now_unix_ms: u64) -> u64 {
    if unix_ms >= now_unix_ms {
        now_mono.saturating_add((unix_ms - now_unix_ms).saturating_mul(1_000_000))
    } else {
        now_mono.saturating_sub((now_unix_ms - unix_ms).saturating_mul(1_000_000))
    }
}

/// `fut` bounded by `limit` on the tokio timer; `Err(())` when the limit passed first.
///
/// Outside a tokio runtime there is no timer to arm (tokio would panic), so the future runs
/// unbounded: a cache driven by another executor loses its timeouts, never its answers.
pub(crate) async fn timeout<F: Future>(limit: Duration, fut: F) -> Result<F::Output, ()> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Ok(fut.await);
    }
    tokio::time::timeout(limit, fut).await.map_err(|_| ())
}

/// Sleeps on the tokio timer; outside a runtime, where there is no timer (tokio would panic) and
/// the caller drives its future on a blocking executor, it blocks the thread instead.
pub(crate) async fn sleep(d: Duration) {
    if tokio::runtime::Handle::try_current().is_ok() {
        tokio::time::sleep(d).await;
    } else {
        std::thread::sleep(d);
    }
}

/// The fallback clock's origin, fixed on first use.
fn origin() -> Instant {
    static ORIGIN: OnceLock<Instant> = OnceLock::new();
    *ORIGIN.get_or_init(Instant::now)
}

#[cfg(target_os = "linux")]
mod imp {
    #[inline]
    pub(super) fn now_nanos() -> u64 {
        let mut ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: `ts` is a valid, writable timespec and CLOCK_MONOTONIC_COARSE exists on every
        // Linux since 2.6.32; the call only writes into `ts`.
        let rc = unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
        if rc != 0 {
            return super::origin().elapsed().as_nanos() as u64;
        }
        // Shift by one second so that 0 can never be a real reading (used as "unset").
        (ts.tv_sec as u64)
            .wrapping_add(1)
            .wrapping_mul(1_000_000_000)
            .wrapping_add(ts.tv_nsec as u64)
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    #[inline]
    pub(super) fn now_nanos() -> u64 {
        1_000_000_000 + super::origin().elapsed().as_nanos() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_and_advancing() {
        let a = now_nanos();
        std::thread::sleep(Duration::from_millis(20));
        let b = now_nanos();
        assert!(b > a, "clock did not advance: {a} -> {b}");
        assert!(b - a >= 10_000_000, "advanced only {} ns in 20 ms", b - a);
    }

    #[test]
    fn deadline_saturates() {
        assert_eq!(deadline(5, Duration::MAX), u64::MAX);
        assert_eq!(deadline(5, Duration::from_nanos(10)), 15);
    }

    #[test]
    fn unix_converts_to_mono() {
        let (m, u) = (10_000_000_000, 1_700_000_000_000);
        assert_eq!(unix_millis_to_mono(u + 1500, m, u), m + 1_500_000_000);
        assert_eq!(unix_millis_to_mono(u - 20, m, u), m - 20_000_000);
        assert_eq!(unix_millis_to_mono(u64::MAX, m, u), u64::MAX);
    }
}
