//! The contestants of the memory-hit benches: the same keys and values in larder, quick_cache and
//! moka, each read in a loop of its own.

use std::future::Future;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use larder::Cache;

/// Working sets: 1,024 keys stay in the CPU caches, so the figure is the lookup's own work;
/// 65,536 keys spill to DRAM, as a large cache does. Powers of two: picking a key is a mask.
pub const WORKING_SETS: [usize; 2] = [1 << 10, 1 << 16];

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("user:{i}:profile")).collect()
}

fn value(i: usize) -> String {
    format!("{i:0>64}")
}

/// Polls a future that must complete at once.
fn ready<F: Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    match fut.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a hit must not wait"),
    }
}

/// The contestants, each a function from key index to "found".
pub struct Subjects {
    keys: Vec<String>,
    mask: usize,
    larder: Cache,
    quick: quick_cache::sync::Cache<String, Arc<String>>,
    moka: moka::future::Cache<String, Arc<String>>,
}

impl Subjects {
    pub fn new(n: usize) -> Self {
        let keys = keys(n);
        let larder = Cache::builder().max_entries(2 * n as u64).build();
        let quick = quick_cache::sync::Cache::new(2 * n);
        let moka = moka::future::Cache::new(2 * n as u64);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            for (i, k) in keys.iter().enumerate() {
                larder.set(k, value(i)).await.unwrap();
                quick.insert(k.clone(), Arc::new(value(i)));
                moka.insert(k.clone(), Arc::new(value(i))).await;
            }
            moka.run_pending_tasks().await;
        });
        Self {
            keys,
            mask: n - 1,
            larder,
            quick,
            moka,
        }
    }

    /// Reads `iters` keys with `subject`, starting at `offset` in the stride; how many were found.
    /// Each contestant gets a loop of its own, so none pays for choosing among them per read.
    pub fn run(&self, subject: &str, offset: usize, iters: usize) -> usize {
        match subject {
            "larder_get" => self.each(offset, iters, |k| {
                ready(self.larder.get::<String>(k)).is_ok_and(|v| v.is_some())
            }),
            "larder_get_or_fetch" => self.each(offset, iters, |k| {
                ready(
                    self.larder
                        .get_or_fetch(k, || async { Ok::<String, std::io::Error>(String::new()) }),
                )
                .is_ok()
            }),
            "quick_cache_get" => self.each(offset, iters, |k| self.quick.get(k).is_some()),
            "moka_get" => self.each(offset, iters, |k| ready(self.moka.get(k)).is_some()),
            _ => unreachable!(),
        }
    }

    #[inline(always)]
    fn each(&self, offset: usize, iters: usize, mut read: impl FnMut(&str) -> bool) -> usize {
        let mut found = 0usize;
        for i in 0..iters {
            found += read(&self.keys[index(i + offset) & self.mask]) as usize;
        }
        found
    }
}

pub const SUBJECTS: [&str; 4] = [
    "quick_cache_get",
    "larder_get",
    "larder_get_or_fetch",
    "moka_get",
];

/// Spreads consecutive iterations over the key space.
fn index(i: usize) -> usize {
    i.wrapping_mul(7919)
}

/// Pins reader `t` of `threads` to a core of its own, the last cores first (the first tends to
/// take the machine's interrupts). Unpinned, the scheduler moves a reader between cores mid-run
/// and the reader pays for a cold cache: on a 2-core host that made single-thread rounds vary by
/// a third, pinned by a few percent. Where pinning is not possible the reader runs unpinned.
pub fn pin(threads: usize, t: usize) {
    let Some(cores) = core_affinity::get_core_ids() else {
        return;
    };
    let index = threads
        .checked_sub(t)
        .and_then(|from_end| cores.len().checked_sub(from_end));
    if let Some(core) = index.and_then(|i| cores.get(i)) {
        core_affinity::set_for_current(*core);
    }
}
