//! Time sources.
//!
//! The memory tier checks expiry on every hit, so its clock must cost far less than the lookup
//! itself. On Linux that is `CLOCK_MONOTONIC_COARSE`, read from the vDSO without touching the TSC
//! (a few nanoseconds, resolution of one scheduler tick, 1–4 ms); elsewhere `Instant`. Expiry by a
//! few milliseconds late is harmless for a cache; a full clock read per hit is not.
//!
//! Even that read is a third of a hash-table lookup, so a hit does not read the clock when it can
//! do without: a thread started with the first memory tier stores the time every [`TICK`], and
//! an entry that expires more than [`MARGIN`] after that reading (past [`SURE_UNTIL`]) is surely
//! fresh now. Only entries in their last [`MARGIN`] of freshness pay for a real reading, and
//! expiry stays exact for them. The reading can only lag behind the time, never run ahead;
//! it is wrong only if the ticker thread was not scheduled for over [`MARGIN`], as after the
//! whole process was stopped (SIGSTOP, a suspended VM): then, for at most one tick after it
//! resumes, an entry may be served up to that pause past its ttl.
//!
//! Envelopes cross machines, so they carry wall-clock milliseconds since the Unix epoch instead.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Once, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Monotonic nanoseconds since an arbitrary, process-wide origin.
#[inline]
pub(crate) fn now_nanos() -> u64 {
    imp::now_nanos()
}

/// How often the ticker thread stores the time.
const TICK: Duration = Duration::from_millis(10);

/// How far past the ticker's last reading a deadline must be to be surely in the future: the
/// ticker may be late by this much (less one tick) before a hit could be misjudged.
const MARGIN: u64 = 1_000_000_000;

/// The ticker's last reading of [`now_nanos`] plus [`MARGIN`]: a deadline past it is surely
/// ahead. Stored with the margin added, so a hit's check is one comparison. `u64::MAX` (nothing is
/// surely ahead) until the ticker runs, or if it could not start.
static SURE_UNTIL: AtomicU64 = AtomicU64::new(u64::MAX);

fn tick() {
    SURE_UNTIL.store(now_nanos().saturating_add(MARGIN), Relaxed);
}

/// Starts the ticker thread behind [`surely_before`], once per process. If the thread cannot be
/// spawned, every check falls back to a real clock reading.
pub(crate) fn start_ticker() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        tick();
        let spawned = std::thread::Builder::new()
            .name("larder-clock".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TICK);
                    tick();
                }
            });
        if spawned.is_err() {
            SURE_UNTIL.store(u64::MAX, Relaxed);
        }
    });
}

/// Whether `deadline` (a [`now_nanos`] instant) is surely still ahead, judged from the ticker's
/// last reading without reading the clock. `false` means "read the clock to know".
#[inline]
pub(crate) fn surely_before(deadline: u64) -> bool {
    deadline > SURE_UNTIL.load(Relaxed)
}

/// `now_nanos() + d`, saturating, so a `Duration::MAX` ttl means "never".
#[inline]
pub(crate) fn deadline(now: u64, d: Duration) -> u64 {
    now.saturating_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// Wall-clock milliseconds since the Unix epoch (0 if the system clock is before 1970).
pub(crate) fn unix_millis() -> u64 {
    unix_micros() / 1_000
}

/// Wall-clock microseconds since the Unix epoch (0 if the system clock is before 1970): fine
/// enough to order a write on one node before a fetch that another node starts after hearing it.
pub(crate) fn unix_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The instant `d` from now, or a century from now when `d` reaches past what an `Instant` can
/// hold (`Duration::MAX` means "no limit" to a caller, never a panic).
pub(crate) fn instant_after(d: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(d)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 86_400)))
        .unwrap_or(now)
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
    fn the_ticker_vouches_only_for_deadlines_past_its_margin() {
        start_ticker();
        let now = now_nanos();
        assert!(!surely_before(now), "the present is not surely ahead");
        assert!(
            !surely_before(now + MARGIN / 2),
            "inside the margin: read the clock"
        );
        assert!(surely_before(now + 2 * MARGIN));
        assert!(surely_before(u64::MAX));
        // The reading keeps up: a deadline just past the margin from a later time becomes
        // vouched for once the ticker has read that time.
        std::thread::sleep(Duration::from_millis(50));
        let later = now_nanos();
        assert!(
            SURE_UNTIL.load(Relaxed) - MARGIN / 2 > later,
            "the ticker lags"
        );
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
