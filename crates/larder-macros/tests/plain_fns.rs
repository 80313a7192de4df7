//! `#[cached]` on plain (synchronous) fns: single-flight across threads, companions, recursion,
//! borrowed arguments and methods on types that are not `Clone`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::Duration;

use larder::{Cache, cached};

static CACHE: LazyLock<Cache> = LazyLock::new(Cache::new);
static SLOW_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = CACHE.clone(), ttl = "1m")]
fn slow_square(n: u64) -> u64 {
    SLOW_RUNS.fetch_add(1, Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(150));
    n * n
}

#[test]
fn threads_calling_one_cold_plain_fn_share_one_run_and_companions_work() {
    let start = Arc::new(Barrier::new(8));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                slow_square(12)
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 144);
    }
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 1, "8 threads, one run");

    assert!(slow_square::invalidate(&12));
    assert!(!slow_square::invalidate(&12));
    assert_eq!(slow_square(12), 144);
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 2);
    assert_eq!(slow_square::refresh(12), 144);
    assert_eq!(SLOW_RUNS.load(Ordering::SeqCst), 3);
    assert_eq!(slow_square(12), 144);
    assert_eq!(
        SLOW_RUNS.load(Ordering::SeqCst),
        3,
        "refresh stored its value"
    );
}

static FIB_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = CACHE.clone())]
fn fib(n: u64) -> u64 {
    FIB_RUNS.fetch_add(1, Ordering::SeqCst);
    if n < 2 { n } else { fib(n - 1) + fib(n - 2) }
}

#[test]
fn recursive_plain_fib_90_runs_once_per_argument() {
    assert_eq!(fib(90), 2_880_067_194_370_816_120);
    assert_eq!(FIB_RUNS.load(Ordering::SeqCst), 91);
}

static SLUG_RUNS: AtomicUsize = AtomicUsize::new(0);

#[cached(cache = CACHE.clone(), key = "slug:{title}", unless = |s: &String| s.is_empty())]
fn slug(title: &str) -> String {
    SLUG_RUNS.fetch_add(1, Ordering::SeqCst);
    title.trim().to_lowercase().replace(' ', "-")
}

#[test]
fn borrowed_arguments_key_templates_and_unless() {
    assert_eq!(slug("Hello World"), "hello-world");
    assert_eq!(slug("Hello World"), "hello-world");
    assert_eq!(SLUG_RUNS.load(Ordering::SeqCst), 1);
    // The template names an ordinary key of the cache: found there without running anything.
    let direct = CACHE.get_or_compute::<String, (), _>("slug:Hello World", || Err(()));
    assert_eq!(direct.unwrap().as_str(), "hello-world");
    assert_eq!(slug("   "), "");
    assert_eq!(slug("   "), "");
    assert_eq!(
        SLUG_RUNS.load(Ordering::SeqCst),
        3,
        "empty slugs are not cached"
    );
}

#[derive(Debug, Clone, PartialEq)]
struct ParseError(String);

/// Not `Clone`, not `'static`-bound: a plain fn's method only borrows `self`.
struct Parser<'a> {
    cache: &'a Cache,
    runs: AtomicUsize,
}

impl Parser<'_> {
    #[cached(cache = self.cache, namespace = "parsed")]
    fn parse(&self, text: String) -> Result<u32, ParseError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        text.parse().map_err(|_| ParseError(text.clone()))
    }

    #[cached(cache = self.cache, cache_none)]
    fn first_word(&self, text: String) -> Option<String> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        text.split_whitespace().next().map(str::to_owned)
    }
}

#[test]
fn methods_results_and_options_on_plain_fns() {
    let cache = Cache::new();
    let parser = Parser {
        cache: &cache,
        runs: AtomicUsize::new(0),
    };
    assert_eq!(parser.parse("42".into()), Ok(42));
    assert_eq!(parser.parse("42".into()), Ok(42));
    assert_eq!(parser.runs.load(Ordering::SeqCst), 1);
    assert_eq!(parser.parse("x".into()), Err(ParseError("x".into())));
    assert_eq!(parser.parse("x".into()), Err(ParseError("x".into())));
    assert_eq!(
        parser.runs.load(Ordering::SeqCst),
        3,
        "errors are not cached"
    );
    assert!(parser.parse_invalidate(&"42".to_string()));
    assert!(!parser.parse_invalidate(&"42".to_string()));

    assert_eq!(parser.first_word("  ".into()), None);
    assert_eq!(parser.first_word("  ".into()), None);
    assert_eq!(
        parser.runs.load(Ordering::SeqCst),
        4,
        "cache_none keeps the None"
    );
}
