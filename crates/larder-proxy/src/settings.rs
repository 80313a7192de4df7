//! The effective settings: the configuration file, overridden by flags and environment, over the
//! defaults, checked once, and described for `larder-proxy check` and the startup log.

use std::fmt::Write;
use std::net::SocketAddr;
use std::time::Duration;

use http::Method;
use http::{HeaderName, Uri};
use larder::Cache;
use larder_http::{CacheLayer, Rule};

use crate::config::{File, LogFormat};
use crate::server::{Certificate, Limits, TlsSettings};
use crate::upstream::{Timeouts, TrustRoots};

/// Why the settings cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// No upstream in the file or the flags.
    #[error("no upstream: give --upstream http://host:port or [proxy] upstream in the config")]
    NoUpstream,
    /// The admin listener's address is not an address.
    #[error("admin_listen: {0:?} is neither host:port nor \"off\"")]
    AdminListen(String),
    /// A flag or environment value that cannot work (a zero cap or timeout, a blank token, a
    /// store or upstream the binary cannot serve).
    #[error("{what}: {reason}")]
    Invalid {
        /// The flag or variable.
        what: &'static str,
        /// Why not.
        reason: String,
    },
    /// The admin listener would be reachable from other hosts without a token.
    #[error(
        "the admin listener on {0} is reachable from other hosts: set admin_token (or LARDER_ADMIN_TOKEN), or listen on a loopback address"
    )]
    AdminToken(SocketAddr),
}

/// Values given on the command line or in the environment; each wins over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--upstream`.
    pub upstream: Option<Uri>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--admin-listen` (`off` for none).
    pub admin_listen: Option<String>,
    /// `--admin-token` / `LARDER_ADMIN_TOKEN`.
    pub admin_token: Option<String>,
    /// `--store` / `LARDER_URL`.
    pub store: Option<String>,
    /// `--memory-mib`.
    pub memory_mib: Option<u64>,
    /// `--max-connections`.
    pub max_connections: Option<usize>,
    /// `--header-read-timeout`.
    pub header_read_timeout: Option<Duration>,
    /// `--idle-timeout`.
    pub idle_timeout: Option<Duration>,
    /// `--upstream-timeout`.
    pub response_timeout: Option<Duration>,
    /// `--body-idle-timeout`.
    pub body_idle_timeout: Option<Duration>,
    /// `--connect-timeout`.
    pub connect_timeout: Option<Duration>,
    /// `--access-log`.
    pub access_log: Option<LogFormat>,
    /// `--pass-host`.
    pub pass_host: Option<bool>,
}

/// Everything the proxy runs with.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// The origin (required to run, not to check).
    pub upstream: Option<Uri>,
    /// Where clients connect.
    pub listen: SocketAddr,
    /// The TLS listener, if any.
    pub tls: Option<TlsSettings>,
    /// The admin listener, if any.
    pub admin_listen: Option<SocketAddr>,
    /// Its bearer token.
    pub admin_token: Option<String>,
    /// The store URL.
    pub store: String,
    /// The memory tier's bound.
    pub memory_mib: u64,
    /// The largest body stored.
    pub max_body: u64,
    /// The response header with purge tags.
    pub tag_header: Option<HeaderName>,
    /// Path segments entries are tagged with for purges by prefix.
    pub purge_prefix_depth: usize,
    /// How long a miss waits for another instance's fill of the same URL (zero: no lock).
    pub lock_wait: Duration,
    /// How long a fill's lock outlives an instance that died holding it.
    pub lock_expiry: Duration,
    /// How long a stale copy that stood in for a failing upstream answers without asking it.
    pub fail_safe_throttle: Duration,
    /// Cookies that key every entry.
    pub key_cookies: Vec<String>,
    /// Cookies that never change a response.
    pub ignore_cookies: Vec<String>,
    /// Client connection limits (`max_connections` of `None`: from the descriptor limit).
    pub limits: Limits,
    /// `max_connections` as given, if it was.
    pub max_connections: Option<usize>,
    /// The descriptor budget's shares the configuration sets (the rest come from the limit).
    pub budget: crate::budget::Given,
    /// The upstream's timeouts and bounds.
    pub timeouts: Timeouts,
    /// The CA roots for an https upstream.
    pub roots: TrustRoots,
    /// Send the client's `Host` to the origin.
    pub pass_host: bool,
    /// The access log's format.
    pub access_log: LogFormat,
    /// Keep `X-Cache` beside `Cache-Status`.
    pub x_cache: bool,
    /// The name in `Cache-Status`.
    pub cache_status_name: String,
    /// The rules, in order.
    pub rules: Vec<Rule>,
    /// Response compression.
    pub compression: larder_http::Compression,
}

impl Overrides {
    /// What the file's checks refuse, refused from flags and the environment too.
    fn check(&self) -> Result<(), SettingsError> {
        let bad = |what, reason: &str| {
            Err(SettingsError::Invalid {
                what,
                reason: reason.to_owned(),
            })
        };
        if let Some(u) = &self.upstream {
            crate::config::check_upstream(&u.to_string()).map_err(|reason| {
                SettingsError::Invalid {
                    what: "--upstream",
                    reason,
                }
            })?;
        }
        if let Some(store) = &self.store {
            crate::config::check_store(store).map_err(|reason| SettingsError::Invalid {
                what: "--store / LARDER_URL",
                reason,
            })?;
        }
        if self
            .admin_token
            .as_ref()
            .is_some_and(|t| t.trim().is_empty())
        {
            return bad(
                "--admin-token / LARDER_ADMIN_TOKEN",
                "a blank admin token would let anyone purge: give one, or leave it unset",
            );
        }
        if self.max_connections == Some(0) {
            return bad("--max-connections", "must be at least 1");
        }
        if self
            .memory_mib
            .is_some_and(|m| !(1..=crate::config::MAX_MEMORY_MIB).contains(&m))
        {
            return bad("--memory-mib", "must be from 1 to 1048576");
        }
        for (what, t) in [
            ("--header-read-timeout", self.header_read_timeout),
            ("--idle-timeout", self.idle_timeout),
            ("--upstream-timeout", self.response_timeout),
            ("--body-idle-timeout", self.body_idle_timeout),
            ("--connect-timeout", self.connect_timeout),
        ] {
            if t.is_some_and(|t| t.is_zero()) {
                return bad(what, "must be more than 0");
            }
        }
        Ok(())
    }
}

impl Settings {
    /// The file's settings under the overrides, over the defaults.
    ///
    /// ```
    /// use larder_proxy::{config::File, settings::{Overrides, Settings}};
    /// let file = File::parse("[proxy]\nupstream = \"http://127.0.0.1:8000\"\n", "inline").unwrap();
    /// let settings = Settings::resolve(file, Overrides::default()).unwrap();
    /// assert_eq!(settings.listen.port(), 8080);
    /// ```
    pub fn resolve(file: File, o: Overrides) -> Result<Self, SettingsError> {
        o.check()?;
        let p = file.proxy;
        let c = file.cache;
        let l = file.limits;
        let u = file.upstream;
        let admin_listen = match o.admin_listen.or(p.admin_listen) {
            None => Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
            Some(s) if s == "off" => None,
            Some(s) => Some(s.parse().map_err(|_| SettingsError::AdminListen(s))?),
        };

        let admin_token = o.admin_token.or(p.admin_token);
        if let Some(addr) = admin_listen
            && !addr.ip().is_loopback()
            && admin_token.is_none()
        {
            return Err(SettingsError::AdminToken(addr));
        }
        let defaults = Limits::default();
        let limits = Limits {
            max_connections: o
                .max_connections
                .or(l.max_connections)
                .unwrap_or(defaults.max_connections),
            header_read_timeout: o
                .header_read_timeout
                .or(l.header_read_timeout)
                .unwrap_or(defaults.header_read_timeout),
            idle_timeout: o
                .idle_timeout
                .or(l.idle_timeout)
                .unwrap_or(defaults.idle_timeout),
            shutdown_grace: l.shutdown_grace.unwrap_or(defaults.shutdown_grace),
            max_h2_streams: l.max_h2_streams.unwrap_or(defaults.max_h2_streams),
            ..defaults
        };
        let budget = crate::budget::Given {
            client_connections: o.max_connections.or(l.max_connections),
            tunnels: u.max_tunnels,
            upstream_connections: u.max_connections,
            upstream_idle: u.pool_max_idle,
        };
        // What larder-http sets is its to default: one source for the proxy, Python and Rust.
        let d = larder_http::LayerSettings::default();
        let (default_wait, default_expiry) = d.distributed_lock.unwrap_or_default();
        let t = Timeouts::default();
        let timeouts = Timeouts {
            connect: o.connect_timeout.or(u.connect_timeout).unwrap_or(t.connect),
            response: o
                .response_timeout
                .or(u.response_timeout)
                .unwrap_or(t.response),
            body_idle: o
                .body_idle_timeout
                .or(u.body_idle_timeout)
                .unwrap_or(t.body_idle),
            pool_idle: u.pool_idle_timeout.unwrap_or(t.pool_idle),
            pool_max_idle: u.pool_max_idle.unwrap_or(t.pool_max_idle),
            max_request_body: p.max_request_body.unwrap_or(t.max_request_body),
            max_waiting: u.max_waiting.unwrap_or(t.max_waiting),
            ..t
        };
        Ok(Self {
            upstream: o.upstream.or(p.upstream),
            listen: o
                .listen
                .or(p.listen)
                .unwrap_or(SocketAddr::from(([127, 0, 0, 1], 8080))),
            tls: file.tls.map(|t| {
                let mut tls = TlsSettings::new(t.listen, Certificate::new(t.cert, t.key));
                tls.more = t
                    .certificates
                    .into_iter()
                    .map(|c| Certificate::new(c.cert, c.key))
                    .collect();
                tls.http2 = t.http2.unwrap_or(true);
                tls.min_version = t.min_version.unwrap_or_default();
                tls
            }),
            admin_listen,
            admin_token,
            store: o.store.or(c.store).unwrap_or_else(|| "memory://".into()),
            memory_mib: o.memory_mib.or(c.memory_mib).unwrap_or(256),
            max_body: c.max_body.unwrap_or(d.max_body as u64),
            tag_header: c.tag_header.or(d.tag_header),
            purge_prefix_depth: c.purge_prefix_depth.unwrap_or(d.prefix_purge_depth),
            lock_wait: c.lock_wait.unwrap_or(default_wait),
            lock_expiry: c.lock_expiry.unwrap_or(default_expiry),
            fail_safe_throttle: c.fail_safe_throttle.unwrap_or(d.fail_safe_throttle),
            key_cookies: c.key_cookies.unwrap_or(d.key_cookies),
            ignore_cookies: c.ignore_cookies.unwrap_or(d.ignore_cookies),
            max_connections: o.max_connections.or(l.max_connections),
            budget,
            limits,
            timeouts,
            roots: u
                .ca_file
                .map_or(TrustRoots::System, |f| TrustRoots::CaFile(f.into())),
            pass_host: o.pass_host.or(p.pass_host).unwrap_or(false),
            access_log: o.access_log.or(p.access_log).unwrap_or(LogFormat::Text),
            x_cache: p.x_cache.unwrap_or(true),
            cache_status_name: p.cache_status_name.or(d.cache_status).unwrap_or_default(),
            rules: file.rules,
            compression: file.compression.unwrap_or(d.compression),
        })
    }

    /// The cache layer these settings describe, on `cache`, in front of an upstream at
    /// `authority`.
    pub fn layer(&self, cache: Cache, authority: &str) -> CacheLayer {
        let layer = CacheLayer::shared(cache)
            .body_idle_timeout(self.timeouts.body_idle)
            .response_timeout(self.timeouts.response)
            .max_body_bytes(usize::try_from(self.max_body).unwrap_or(usize::MAX))
            .tag_header(self.tag_header.clone())
            .prefix_purge_depth(self.purge_prefix_depth)
            .key_cookies(self.key_cookies.clone())
            .ignore_cookies(self.ignore_cookies.clone())
            .cache_status(Some(&self.cache_status_name))
            .fail_safe_throttle(self.fail_safe_throttle)
            .rules(self.rules.clone())
            .compression(self.compression.clone());
        let layer = layer.distributed_lock(self.lock_wait, self.lock_expiry);
        if self.pass_host {
            layer
        } else {
            layer.fixed_host(authority)
        }
    }

    /// The settings `new` changes that the running proxy applies only when it restarts: its
    /// listeners, store, memory bound, the connection counts and the upstream's connection pool
    /// (the cache layer's rules and settings, the client timeouts and the upstream's waits apply
    /// live, see [`crate::reload`]).
    pub fn needs_restart(&self, new: &Settings) -> Vec<&'static str> {
        let (b, nb) = (&self.budget, &new.budget);
        let (t, nt) = (&self.timeouts, &new.timeouts);
        // The descriptor budget and the connection pool were sized by the counts and the pool's
        // settings; the other limits and the upstream's waits apply live (`LiveLimits`,
        // `Upstream::set_timeouts`).
        [
            ("upstream", self.upstream != new.upstream),
            ("listen", self.listen != new.listen),
            (
                "[tls] listen",
                self.tls.as_ref().map(|t| t.listen) != new.tls.as_ref().map(|t| t.listen),
            ),
            ("admin_listen", self.admin_listen != new.admin_listen),
            ("admin_token", self.admin_token != new.admin_token),
            ("store", self.store != new.store),
            ("memory_mib", self.memory_mib != new.memory_mib),
            (
                "[limits] max_connections",
                b.client_connections != nb.client_connections,
            ),
            (
                "[upstream] max_connections",
                b.upstream_connections != nb.upstream_connections,
            ),
            ("[upstream] max_tunnels", b.tunnels != nb.tunnels),
            (
                "[upstream] pool_max_idle",
                b.upstream_idle != nb.upstream_idle,
            ),
            ("[upstream] connect_timeout", t.connect != nt.connect),
            ("[upstream] pool_idle_timeout", t.pool_idle != nt.pool_idle),
            ("[upstream] ca_file", self.roots != new.roots),
            ("pass_host", self.pass_host != new.pass_host),
            ("access_log", self.access_log != new.access_log),
            ("x_cache", self.x_cache != new.x_cache),
        ]
        .into_iter()
        .filter_map(|(name, changed)| changed.then_some(name))
        .collect()
    }

    /// What the rules do with a request to `path` (as a client sends it), by method: the rule
    /// each method gets (the first that matches), or none. For `larder-proxy check`.
    ///
    /// ```
    /// use larder_proxy::config::File;
    /// use larder_proxy::settings::{Overrides, Settings};
    /// let file = File::parse("[[rule]]\npath = \"/users/{id}\"\nttl = 60\n", "inline").unwrap();
    /// let s = Settings::resolve(file, Overrides::default()).unwrap();
    /// assert!(s.explain("/users/3").contains("GET,HEAD -> rule 1: GET,HEAD /users/{id} -> ttl 60s"));
    /// ```
    pub fn explain(&self, path: &str) -> String {
        let mut out = format!("{path}\n");
        let methods = [
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ];
        // Methods in order, grouped by the rule they get (reads and writes apart when none):
        // (the rule's index, whether a read without one), and the methods.
        type Group<'a> = ((Option<usize>, bool), Vec<&'a str>);
        let mut groups: Vec<Group<'_>> = Vec::new();
        for m in &methods {
            let rule = self.rules.iter().position(|r| r.matches(m, path));
            let read = matches!(*m, Method::GET | Method::HEAD);
            let group = (rule, rule.is_none() && read);
            match groups.iter_mut().find(|(g, _)| *g == group) {
                Some((_, names)) => names.push(m.as_str()),
                None => groups.push((group, vec![m.as_str()])),
            }
        }
        for ((rule, read), names) in groups {
            let names = names.join(",");
            let _ = match rule {
                Some(i) => writeln!(out, "  {names} -> rule {}: {}", i + 1, self.rules[i]),
                None if read => writeln!(
                    out,
                    "  {names} -> no rule: stored only as the origin's headers allow (RFC 9111)"
                ),
                None => writeln!(
                    out,
                    "  {names} -> no rule: passed to the origin; after a success, the URL's \
                     stored responses are dropped"
                ),
            };
        }
        out
    }

    /// What the proxy will do, in a few lines: for `check` and the startup log.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        let upstream = self
            .upstream
            .as_ref()
            .map_or_else(|| "(not set: give --upstream)".to_owned(), Uri::to_string);
        let _ = writeln!(out, "upstream   {upstream}");
        let _ = writeln!(out, "listen     http://{}", self.listen);
        if let Some(tls) = &self.tls {
            let _ = writeln!(
                out,
                "listen     https://{} ({}, TLS {}+, {} certificate{})",
                tls.listen,
                if tls.http2 {
                    "HTTP/2 and HTTP/1.1 by ALPN"
                } else {
                    "HTTP/1.1"
                },
                if tls.min_version == crate::server::MinVersion::Tls13 {
                    "1.3"
                } else {
                    "1.2"
                },
                1 + tls.more.len(),
                if tls.more.is_empty() { "" } else { "s, by SNI" },
            );
        }
        let admin = self.admin_listen.map_or_else(
            || "off".to_owned(),
            |a| {
                let auth = if self.admin_token.is_some() {
                    "bearer token"
                } else {
                    "no token (loopback only)"
                };
                format!("http://{a} ({auth})")
            },
        );
        let _ = writeln!(out, "admin      {admin}");
        let _ = writeln!(
            out,
            "store      {} (memory tier {} MiB; bodies up to {} bytes stored)",
            self.store, self.memory_mib, self.max_body
        );
        if self.store != "memory://" && !self.lock_wait.is_zero() {
            let _ = writeln!(
                out,
                "fills      one per URL across every instance on this store (lock wait {:?}, expiry {:?})",
                self.lock_wait, self.lock_expiry
            );
        }
        let _ = writeln!(
            out,
            "timeouts   connect {:?}, response head {:?}, body idle {:?}; client header {:?}, idle {:?}",
            self.timeouts.connect,
            self.timeouts.response,
            self.timeouts.body_idle,
            self.limits.header_read_timeout,
            self.limits.idle_timeout
        );
        if self.rules.is_empty() {
            let _ = writeln!(
                out,
                "rules      none: a strict RFC 9111 shared cache (what the origin's Cache-Control and Expires allow)"
            );
        } else {
            let _ = writeln!(out, "rules      first match decides:");
            for (i, rule) in self.rules.iter().enumerate() {
                let _ = writeln!(out, "  {:>2}. {rule}", i + 1);
            }
            let _ = writeln!(
                out,
                "  otherwise: the origin's Cache-Control and Expires (RFC 9111 shared cache)"
            );
        }
        let c = &self.compression;
        let _ = if c.enabled {
            let codings: Vec<&str> = c.encodings.iter().map(|e| e.as_str()).collect();
            writeln!(
                out,
                "compress   {} stored once ({:?} level), also {}; {} types from {} bytes",
                codings.first().copied().unwrap_or("none"),
                c.level,
                codings.get(1..).unwrap_or_default().join(", "),
                c.types.len(),
                c.min_size
            )
        } else {
            writeln!(out, "compress   off: bodies pass with the origin's codings")
        };
        let cookies = if self.key_cookies.is_empty() && self.ignore_cookies.is_empty() {
            "every cookie is a credential".to_owned()
        } else {
            format!(
                "keyed {:?}, ignored {:?}, any other is a credential",
                self.key_cookies, self.ignore_cookies
            )
        };
        let _ = writeln!(
            out,
            "requests   with Authorization or a credential cookie get only responses marked public/s-maxage ({cookies})"
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> File {
        File::parse(text, "t").unwrap()
    }

    #[test]
    fn flags_win_over_the_file_and_the_file_over_defaults() {
        let f = file("[proxy]\nlisten = \"127.0.0.1:9000\"\n[cache]\nmemory_mib = 64\n");
        let s = Settings::resolve(
            f,
            Overrides {
                memory_mib: Some(32),
                ..Overrides::default()
            },
        )
        .unwrap();
        assert_eq!(s.listen.port(), 9000);
        assert_eq!(s.memory_mib, 32);
        assert_eq!(s.store, "memory://");
    }

    #[test]
    fn a_public_admin_listener_needs_a_token() {
        let err = Settings::resolve(
            file("[proxy]\nadmin_listen = \"0.0.0.0:8081\"\n"),
            Overrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, SettingsError::AdminToken(_)));
        let ok = Settings::resolve(
            file("[proxy]\nadmin_listen = \"0.0.0.0:8081\"\nadmin_token = \"t\"\n"),
            Overrides::default(),
        );
        assert!(ok.is_ok());
        let off = Settings::resolve(
            file("[proxy]\nadmin_listen = \"off\"\n"),
            Overrides::default(),
        )
        .unwrap();
        assert!(off.admin_listen.is_none());
    }

    /// One source of defaults: a proxy with no file and no flags runs larder-http's layer with
    /// every setting at larder-http's default (only the host it fixes to its upstream is its
    /// own). The whole settings struct is compared, so a setting added to larder-http later is
    /// covered without touching this test.
    #[test]
    fn every_layer_setting_the_proxy_does_not_set_is_the_layers_default() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let _guard = rt.enter();
        let cache = Cache::new();
        let s = Settings::resolve(File::default(), Overrides::default()).unwrap();
        let mut proxy = s.layer(cache.clone(), "127.0.0.1:8000").settings();
        assert_eq!(proxy.fixed_host.as_deref(), Some("127.0.0.1:8000"));
        proxy.fixed_host = None;
        assert_eq!(proxy, larder_http::CacheLayer::shared(cache).settings());
        assert_eq!(proxy, larder_http::LayerSettings::default());
        assert_eq!(s.timeouts.response, proxy.response_timeout);
        assert_eq!(s.timeouts.body_idle, proxy.body_idle_timeout);
    }

    #[test]
    fn describe_names_every_rule_and_the_default() {
        let s = Settings::resolve(
            file("[[rule]]\npath = \"/users\"\nttl = 60\n"),
            Overrides::default(),
        )
        .unwrap();
        let d = s.describe();
        assert!(d.contains("1. GET,HEAD /users -> ttl 60s"), "{d}");
        assert!(d.contains("otherwise: the origin's Cache-Control"), "{d}");
    }
}
