//! The rows of `memory_hit`, measured so that a burst of load from other tenants of a shared
//! machine hits every contestant alike: in each round every contestant reads the same number of
//! keys, one after the other, and the figure is the best round of each (the round least
//! disturbed), with the median beside it. Criterion measures each contestant for seconds on end,
//! so there one contestant can take a burst that the next one misses. With 2 threads, both read
//! at once and a round takes as long as the slower one.
//!
//! Each reader is pinned to a core of its own (see `common::pin`).
//!
//! Run: `cargo bench -p larder-core --bench memory_hit_rounds` (`LARDER_ROUNDS`, default 31).

use std::time::Instant;

mod common;
use common::{SUBJECTS, Subjects, WORKING_SETS, pin};

/// Reads per contestant and round: about 0.1 s in cache, more out of it.
const READS: usize = 4_000_000;

fn main() {
    // `cargo bench` passes `--bench`; a filter or other flags are not used here.
    let rounds: usize = std::env::var("LARDER_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(31);
    for n in WORKING_SETS {
        let subjects = Subjects::new(n);
        for threads in [1usize, 2] {
            report(&subjects, n, threads, rounds);
        }
    }
}

fn report(subjects: &Subjects, n: usize, threads: usize, rounds: usize) {
    let reads = if n > 4096 { READS / 8 } else { READS };
    let mut times: Vec<Vec<f64>> = vec![Vec::with_capacity(rounds); SUBJECTS.len()];
    for round in 0..rounds {
        for (s, name) in SUBJECTS.iter().enumerate() {
            let elapsed = std::thread::scope(|scope| {
                let readers: Vec<_> = (0..threads)
                    .map(|t| {
                        scope.spawn(move || {
                            pin(threads, t);
                            let start = Instant::now();
                            let found = subjects.run(name, (round + t) * 104_729, reads);
                            assert_eq!(found, reads, "{name} missed");
                            start.elapsed()
                        })
                    })
                    .collect();
                readers.into_iter().filter_map(|r| r.join().ok()).max()
            });
            let Some(elapsed) = elapsed else {
                panic!("a {name} reader panicked");
            };
            times[s].push(elapsed.as_nanos() as f64 / reads as f64);
        }
    }
    println!(
        "memory_hit_rounds {n} keys, {threads} thread(s), {rounds} rounds of {reads} reads each:"
    );
    println!(
        "{:<22} {:>9} {:>9} {:>13} {:>13}",
        "contestant", "best ns", "median ns", "best ratio", "median ratio"
    );
    let stats: Vec<(f64, f64)> = times
        .iter_mut()
        .map(|t| {
            t.sort_by(f64::total_cmp);
            (t[0], t[t.len() / 2])
        })
        .collect();
    let (quick_best, quick_median) = stats[0];
    for (name, (best, median)) in SUBJECTS.iter().zip(&stats) {
        println!(
            "{name:<22} {best:>9.1} {median:>9.1} {:>12.2}x {:>12.2}x",
            best / quick_best,
            median / quick_median
        );
    }
    println!();
}
