//! # larder-core
//!
//! The engine of [larder](https://docs.rs/larder): the typed async [`Cache`], its memory tier,
//! the read path ([`Cache::get_or_fetch`]), single-flight, fail-safe, timeouts and codecs.
//! Applications depend on `larder`, which re-exports all of this and adds the stores, `#[cached]`
//! and the HTTP layer behind features; this crate exists so that the HTTP layer (`larder-http`)
//! can build on the engine while `larder` re-exports it (`larder::http`) without a package cycle.
#![forbid(unsafe_op_in_unsafe_fn)]
#![warn(missing_docs)]

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
mod backplane;
mod breaker;
mod builder;
mod cache;
mod clock;
pub mod codec;
mod compute;
pub mod engine;
mod error;
mod failing;
mod fetch;
mod fill;
mod flight;
mod future;
mod global;
mod guard;
mod in_process;
mod key;
mod lock;
mod memory;
mod options;
mod random;
mod remote;
mod reservation;
mod resilience;
mod stats;
mod tiers;
mod url;
mod write;

pub use builder::CacheBuilder;
pub use cache::{Cache, CacheValue};
pub use error::{Error, ErrorKind, FetchError, Timeout};
pub use future::{Get, GetOrFetch};
pub use global::{default_cache, set_default_cache};
pub use in_process::InProcessStore;
pub use key::{KEY_SEPARATOR, KeyBuilder, escape_key_part};
pub use larder_store::{
    Backplane, BackplaneEvent, BackplaneSink, Store, StoreEntry, StoreError, StoreFuture, StoreKey,
    StoreRead, Subscription,
};

pub use options::{EntryOptions, RemoteWrite};
pub use stats::Stats;
