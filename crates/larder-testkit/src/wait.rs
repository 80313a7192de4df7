//! Waiting for something that happens elsewhere (another process, a pub/sub message, a restart).

use std::time::{Duration, Instant};

/// Polls `check` every 20 ms until it holds or `limit` passes; whether it held.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let start = std::time::Instant::now();
/// let ok = larder_testkit::eventually(std::time::Duration::from_secs(1), async || {
///     start.elapsed() > std::time::Duration::from_millis(50)
/// })
/// .await;
/// assert!(ok);
/// # }
/// ```
pub async fn eventually(limit: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if check().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
