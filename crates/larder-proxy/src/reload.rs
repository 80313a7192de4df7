//! Reloading the configuration file while the proxy serves (SIGHUP, or `POST /reload` on the
//! admin listener): the new rules and cache settings, the client connections' timeouts, the
//! upstream's waits and the TLS certificates (read again from their files, so a renewed
//! certificate is served without a restart) apply to the requests (and connections) that come
//! next; the cache, the
//! connections and the fills in flight stay. A file that does not check changes
//! nothing, and the error is logged (and returned to the admin call).

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use larder::Cache;
use larder_http::CacheLayer;

use crate::config::File;
use crate::server::{LiveLimits, Tls};
use crate::settings::{Overrides, Settings};
use crate::upstream::Upstream;

/// Re-reads one configuration file into a running proxy's cache layer.
///
/// ```no_run
/// # fn f(settings: larder_proxy::settings::Settings, layer: larder_http::CacheLayer, cache: larder::Cache, upstream: larder_proxy::upstream::Upstream) {
/// let reloader = larder_proxy::reload::Reloader::new(
///     "larder.toml".into(), Default::default(), settings, layer, cache, upstream,
/// );
/// match reloader.reload() {
///     Ok(done) => println!("{done}"),
///     Err(e) => eprintln!("kept the running configuration: {e}"),
/// }
/// # }
/// ```
pub struct Reloader {
    path: PathBuf,
    overrides: Overrides,
    running: Mutex<Settings>,
    layer: CacheLayer,
    cache: Cache,
    upstream: Upstream,
    limits: OnceLock<LiveLimits>,
    tls: OnceLock<Tls>,
}

/// What a reload changed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reloaded {
    /// The rules now in force.
    pub rules: usize,
    /// Settings the file changed that take a restart to apply (they keep their running value).
    pub needs_restart: Vec<&'static str>,
}

impl std::fmt::Display for Reloaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reloaded: {} rules in force", self.rules)?;
        if !self.needs_restart.is_empty() {
            write!(
                f,
                "; changed but applied only by a restart: {}",
                self.needs_restart.join(", ")
            )?;
        }
        Ok(())
    }
}

impl Reloader {
    /// A reloader of the file at `path` (flags in `overrides` still win over it) into `layer`,
    /// which the running proxy serves with `running`'s settings on `cache`, in front of
    /// `upstream`.
    pub fn new(
        path: PathBuf,
        overrides: Overrides,
        running: Settings,
        layer: CacheLayer,
        cache: Cache,
        upstream: Upstream,
    ) -> Self {
        Self {
            path,
            overrides,
            running: Mutex::new(running),
            layer,
            cache,
            upstream,
            limits: OnceLock::new(),
            tls: OnceLock::new(),
        }
    }

    /// The client listener's limits, once its server is made: a reload changes them too.
    pub fn attach_limits(&self, limits: LiveLimits) {
        let _ = self.limits.set(limits);
    }

    /// The TLS listener's configuration, if it has one: a reload reads its files again.
    pub fn attach_tls(&self, tls: Tls) {
        let _ = self.tls.set(tls);
    }

    /// Re-reads the file and applies what can change live; `Err` (and nothing changed) when it
    /// does not check.
    pub fn reload(&self) -> Result<Reloaded, String> {
        let file = File::load(&self.path).map_err(|e| e.to_string())?;
        let new = Settings::resolve(file, self.overrides.clone()).map_err(|e| e.to_string())?;
        let mut running = self
            .running
            .lock()
            .map_err(|_| "a reload panicked".to_owned())?;
        let mut needs_restart = running.needs_restart(&new);
        // The one step that reads more files, and so the one that can still fail: first, so a
        // bad certificate changes nothing at all.
        if let (Some(tls), Some(settings)) = (self.tls.get(), &new.tls) {
            tls.reload(settings).map_err(|e| format!("[tls]: {e}"))?;
        }
        let edited = new.layer(self.cache.clone(), self.upstream.authority());
        needs_restart.extend(self.layer.reconfigure(&edited));
        // Counts and pool settings keep their running values (named above, from the settings
        // as written: the running ones were sized from the descriptor limit).
        let _ = self.upstream.set_timeouts(new.timeouts);
        if let Some(limits) = self.limits.get() {
            let _ = limits.set(new.limits);
        }
        let done = Reloaded {
            rules: new.rules.len(),
            needs_restart,
        };
        *running = new;
        Ok(done)
    }
}
