//! `#[cached]`: memoize a function in a larder `Cache`. Use it as `#[larder::cached]` (the
//! `macros` feature of `larder`); the documentation with examples is on that re-export.

use proc_macro::TokenStream;

mod expand;
mod options;
mod signature;
mod template;

/// Memoizes a function in a larder `Cache`: one line, and every call goes through the cache's
/// read path. So single-flight (concurrent callers of a cold call share one run), fail-safe,
/// stats and every store apply.
///
/// - An `async fn` goes through `Cache::get_or_fetch`: every store (memory, Redis, Memcached,
///   two-tier), timeouts and eager refresh apply.
/// - A plain `fn` goes through `Cache::get_or_compute`: its body runs on the caller's thread,
///   other threads asking for the same call wait for that run, and the result lives in the
///   cache's memory tier (the remote store is async, so plain fns do not use it).
///
/// ```
/// use larder::cached;
///
/// #[derive(Clone, serde::Serialize, serde::Deserialize)]
/// struct Weather { city: String, celsius: i32 }
///
/// #[derive(Clone, Debug)]
/// enum ApiError { Upstream(String), TimedOut }
///
/// impl From<larder::Timeout> for ApiError {
///     fn from(_: larder::Timeout) -> Self { ApiError::TimedOut }
/// }
///
/// // One entry per city for an hour; `request_id` is not part of the key; a call that takes
/// // over 2 s is stopped and answers `Err(ApiError::TimedOut)` (or a stale value, with `stale`).
/// #[cached(key = "weather:{city}", ttl = "1h", hard_timeout = "2s", skip(request_id))]
/// async fn weather(city: &str, request_id: u64) -> Result<Weather, ApiError> {
///     // the slow upstream call
///     Ok(Weather { city: city.to_owned(), celsius: 21 })
/// }
///
/// #[cached]
/// async fn fib(n: u64) -> u64 {
///     if n < 2 { n } else { fib(n - 1).await + fib(n - 2).await }
/// }
///
/// // A plain fn: synchronous work, memoized in the memory tier.
/// #[cached(ttl = "10m")]
/// fn slug(title: &str) -> String {
///     title.to_lowercase().replace(' ', "-")
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(weather("Berlin", 1).await.unwrap().celsius, 21);
/// assert!(weather::invalidate("Berlin").await);       // companion: drop one entry
/// let fresh = weather::refresh("Berlin", 2).await;    // companion: run now and store
/// assert_eq!(fib(90).await, 2_880_067_194_370_816_120); // 91 runs, not 2^90
/// assert_eq!(slug("Hello World"), "hello-world");
/// assert!(slug::invalidate("Hello World"));            // a plain fn's companions are plain too
/// # let _ = fresh;
/// # }
/// ```
///
/// A hit returns a clone of the cached value. Return `Arc<T>` (alone, or in an `Option` or
/// `Result`) to get the cache's own `Arc` instead, with no clone: the value is stored as `T`
/// (the body's `Arc` is unwrapped, so `T: Clone` is needed but not used when the body keeps no
/// other reference).
///
/// # Options
///
/// - `cache = EXPR`: the cache, any expression of type `Cache` (cloned; `self.cache` works in
///   methods). Without it, `larder::default_cache()` (set once with `larder::set_default_cache`).
/// - `key = "template"`: `{arg}` placeholders formatted with `Display`. The default key is the
///   module path, the function name, and every argument's `Debug` form, escaped so that no two
///   argument lists share a key.
/// - `skip(a, b)`: arguments left out of the default key (a request, a database handle).
/// - `ttl`, `stale`: a duration, `"500ms"`, `"30s"`, `"5m"`, `"1h"`, `"1d"` or any `Duration`
///   expression. `namespace = "weather"`, `tags = ["user:{id}"]` (templates over the arguments).
/// - Async fns only: `soft_timeout`, `eager_refresh = 0.8`, and `hard_timeout`, which needs a
///   `Result<T, E>` return with `E: From<larder::Timeout>`: a call that runs past it answers
///   `Err(E::from(Timeout))`, or a stale value within `stale`.
/// - `unless = |v: &T| ...`: do not cache this value (it is still returned).
/// - `cache_none`: for `Option<T>`, cache `None` too (by default only `Some` is cached).
/// - `cache_err = |e: &E| ...`: for `Result<T, E>`, also cache the errors this accepts (such
///   as a "not found"); `E` must then be serializable too.
///
/// # What is cached
///
/// - `Result<T, E>`: `Ok` values only (and the errors `cache_err` accepts); another `Err`
///   reaches every waiter of that run and is not cached. `E` must be `Clone`, because one error
///   is shared by every waiter.
/// - `Option<T>`: `Some` values (and `None` with `cache_none`).
/// - Anything else: every value.
///
/// The cached type must be `Clone + Serialize + DeserializeOwned + Send + Sync + 'static`.
/// An async fn's arguments are moved, or for `&T` copied with `ToOwned`, into the run, which has
/// its own task: a caller that is cancelled cancels no other caller. Its methods take `&self`
/// with `Self: Clone + Send + Sync + 'static` (a handle such as an `Arc`-backed service). A
/// plain fn borrows its arguments; its methods take any `&self`.
///
/// # Companions
///
/// For a free function `f`, a module `f` holds `f::invalidate(&key args) -> bool` and
/// `f::refresh(args) -> Ret` (async for an async fn, plain for a plain one). For a method `m`,
/// they are the methods `m_invalidate` and `m_refresh`.
///
/// A memoized async fn returns a boxed `Send` future (it is still called with `.await`).
/// That box is what lets a memoized function call itself, as `fib` does. If the body panics, the
/// panic reaches the caller, as it would without the cache; so does a timeout that the error
/// type cannot carry.
#[proc_macro_attribute]
pub fn cached(attr: TokenStream, item: TokenStream) -> TokenStream {
    let mut opts = options::Options::default();
    let parser = syn::meta::parser(|meta| opts.parse(meta));
    syn::parse_macro_input!(attr with parser);
    let func = syn::parse_macro_input!(item as syn::ItemFn);
    match expand::expand(opts, func) {
        Ok(t) => t.into(),
        Err(e) => e.to_compile_error().into(),
    }
}
