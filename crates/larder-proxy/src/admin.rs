//! The admin listener: purge, stats, metrics and health, apart from client traffic.
//!
//! | request | what it does |
//! |---|---|
//! | `GET /healthz` | `200 {"status":"ok",...}`; the store's state is reported, never a failure: the cache is an optimisation |
//! | `GET /stats` | the cache's and the HTTP layer's counters, as JSON |
//! | `GET /metrics` | Prometheus text: requests by cache status, origin latency, bytes served, fills in flight, store and breaker state |
//! | `POST /purge?url=/users?skip=0` | drops one URL (query in any order) |
//! | `POST /purge?prefix=/users` | drops everything under a path prefix |
//! | `POST /purge?tag=user-42` | drops everything tagged `user-42` (`Surrogate-Key`) |
//! | `POST /purge?all=true` | drops everything |
//! | `POST /reload` | re-reads the configuration file (as SIGHUP does): `200 {"reloaded": true, "rules": N, "needs_restart": [...]}`, or `400 {"error": ...}` and nothing changed |
//!
//! With a token, every request must carry `Authorization: Bearer <token>`; without one the
//! listener must be on a loopback address (the binary refuses to start otherwise).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::future::BoxFuture;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::Full;
use hyper::body::Incoming;
use larder::Cache;
use larder_http::Purger;
use metrics_exporter_prometheus::PrometheusHandle;
use serde_json::json;

/// The admin service.
///
/// ```no_run
/// # fn f(cache: larder::Cache, purger: larder_http::Purger) {
/// let handle = metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder().unwrap();
/// let admin = larder_proxy::admin::Admin::new(cache, purger, handle, Some("s3cret".into()));
/// # let _ = admin;
/// # }
/// ```
#[derive(Clone)]
pub struct Admin {
    inner: Arc<Inner>,
}

struct Inner {
    cache: Cache,
    purger: Purger,
    metrics: PrometheusHandle,
    token: Option<String>,
    reloader: Option<Arc<crate::reload::Reloader>>,
}

impl Admin {
    /// An admin service over this cache and layer; `token` is the bearer token every request
    /// must carry, if any.
    pub fn new(
        cache: Cache,
        purger: Purger,
        metrics: PrometheusHandle,
        token: Option<String>,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                cache,
                purger,
                metrics,
                token,
                reloader: None,
            }),
        }
    }

    /// Answers `POST /reload` with `reloader` (a proxy started with a configuration file).
    pub fn with_reloader(self, reloader: Arc<crate::reload::Reloader>) -> Self {
        let inner = Inner {
            cache: self.inner.cache.clone(),
            purger: self.inner.purger.clone(),
            metrics: self.inner.metrics.clone(),
            token: self.inner.token.clone(),
            reloader: Some(reloader),
        };
        Self {
            inner: Arc::new(inner),
        }
    }
}

impl tower::Service<Request<Incoming>> for Admin {
    type Response = Response<Full<Bytes>>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request<Incoming>) -> Self::Future {
        let inner = self.inner.clone();
        Box::pin(async move { Ok(inner.handle(req).await) })
    }
}

impl Inner {
    async fn handle(&self, req: Request<Incoming>) -> Response<Full<Bytes>> {
        if !self.authorized(&req) {
            let mut r = reply(
                StatusCode::UNAUTHORIZED,
                json!({"error": "bearer token required"}),
            );
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return r;
        }
        let query = req.uri().query().unwrap_or("");
        match (req.method(), req.uri().path()) {
            (&Method::GET, "/healthz") => reply(StatusCode::OK, self.health()),
            (&Method::GET, "/stats") => reply(StatusCode::OK, self.stats()),
            (&Method::GET, "/metrics") => self.metrics(),
            (&Method::POST | &Method::DELETE, "/purge") => self.purge(query).await,
            (&Method::POST, "/reload") => self.reload().await,
            (_, "/healthz" | "/stats" | "/metrics" | "/purge" | "/reload") => reply(
                StatusCode::METHOD_NOT_ALLOWED,
                json!({"error": "GET /healthz, /stats, /metrics; POST /purge, /reload"}),
            ),
            _ => reply(StatusCode::NOT_FOUND, json!({"error": "not found"})),
        }
    }

    async fn reload(&self) -> Response<Full<Bytes>> {
        let Some(reloader) = self.reloader.clone() else {
            return reply(
                StatusCode::CONFLICT,
                json!({"error": "started without --config: there is no file to reload"}),
            );
        };
        // Reading the file blocks: off the runtime's workers.
        let done = tokio::task::spawn_blocking(move || reloader.reload()).await;
        match done {
            Ok(Ok(done)) => {
                tracing::info!("larder-proxy: {done} (admin)");
                reply(
                    StatusCode::OK,
                    json!({"reloaded": true, "rules": done.rules, "needs_restart": done.needs_restart}),
                )
            }
            Ok(Err(e)) => {
                tracing::error!(
                    "larder-proxy: reload refused, the running configuration stays: {e}"
                );
                reply(StatusCode::BAD_REQUEST, json!({"error": e}))
            }
            Err(_) => reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"error": "the reload panicked"}),
            ),
        }
    }

    fn authorized(&self, req: &Request<Incoming>) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        // Compared in time independent of where the first difference is.
        given.len() == token.len()
            && given
                .bytes()
                .zip(token.bytes())
                .fold(0u8, |acc, (a, b)| acc | (a ^ b))
                == 0
    }

    fn health(&self) -> serde_json::Value {
        let stats = self.cache.stats();
        let store = match self.cache.remote_name() {
            None => "none",
            Some(_) if stats.breaker_open => "down",
            Some(_) => "up",
        };
        json!({"status": "ok", "store": store})
    }

    fn stats(&self) -> serde_json::Value {
        let s = self.cache.stats();
        let h = self.purger.stats();
        json!({
            "cache": {
                "hits": s.hits,
                "misses": s.misses,
                "stale_served": s.stale_served,
                "evictions": s.evictions,
                "remote_hits": s.remote_hits,
                "remote_misses": s.remote_misses,
                "remote_reads_deferred": s.remote_reads_deferred,
                "store_errors": s.store_errors,
                "breaker_open": s.breaker_open,
                "breaker_trips": s.breaker_trips,
                "backplane_connected": s.backplane_connected,
                "entries": s.entries,
                "weight": s.weight,
                "reserved_bytes": s.reserved_bytes,
            },
            "http": {
                "fills": h.fills,
                "fills_unrecorded": h.fills_unrecorded,
                "fills_stalled": h.fills_stalled,
                "fills_abandoned": h.fills_abandoned,
                "response_timeouts": h.response_timeouts,
                "bad_requests": h.bad_requests,
                "non_canonical_paths": h.non_canonical_paths,
                "recording_bytes": h.recording_bytes,
                "fetches_in_flight": h.fetches_in_flight,
            },
        })
    }

    fn metrics(&self) -> Response<Full<Bytes>> {
        // Gauges read at scrape time: they are states, not events.
        let s = self.cache.stats();
        let h = self.purger.stats();
        metrics::gauge!("larder_proxy_fills_in_flight").set(h.fetches_in_flight as f64);
        metrics::gauge!("larder_proxy_recording_bytes").set(h.recording_bytes as f64);
        metrics::gauge!("larder_proxy_cache_entries").set(s.entries as f64);
        metrics::gauge!("larder_proxy_cache_bytes").set(s.weight as f64);
        let store_up = self.cache.remote_name().is_some() && !s.breaker_open;
        metrics::gauge!("larder_proxy_store_up").set(f64::from(u8::from(store_up)));
        metrics::gauge!("larder_proxy_breaker_open").set(f64::from(u8::from(s.breaker_open)));
        let mut r = Response::new(Full::new(Bytes::from(self.metrics.render())));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        );
        r
    }

    async fn purge(&self, query: &str) -> Response<Full<Bytes>> {
        let params: Vec<(String, String)> = query
            .split('&')
            .filter(|p| !p.is_empty())
            .map(|p| {
                let (k, v) = p.split_once('=').unwrap_or((p, ""));
                (percent_decode(k), percent_decode(v))
            })
            .collect();
        let Some((kind, value)) = params.first() else {
            return reply(
                StatusCode::BAD_REQUEST,
                json!({"error": "say what to purge: url=, prefix=, tag= or all=true"}),
            );
        };
        let result = match kind.as_str() {
            "url" => self
                .purger
                .purge_url(value)
                .await
                .map(|found| json!({"purged": "url", "url": value, "found": found})),
            "prefix" => self
                .purger
                .purge_prefix(value)
                .await
                .map(|()| json!({"purged": "prefix", "prefix": value})),
            "tag" => {
                self.purger.purge_tag(value).await;
                Ok(json!({"purged": "tag", "tag": value}))
            }
            "all" if value == "true" => {
                self.purger.purge_all().await;
                Ok(json!({"purged": "all"}))
            }
            _ => {
                return reply(
                    StatusCode::BAD_REQUEST,
                    json!({"error": "say what to purge: url=, prefix=, tag= or all=true"}),
                );
            }
        };
        match result {
            Ok(body) => {
                tracing::info!(purge = %body, "larder-proxy: purged");
                reply(StatusCode::OK, body)
            }
            Err(e) => reply(StatusCode::BAD_REQUEST, json!({"error": e.to_string()})),
        }
    }
}

fn reply(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string() + "\n")));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    r
}

/// Decodes `%XX` escapes and `+` (form encoding); a bad escape stays as written.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::percent_decode;

    #[test]
    fn purge_parameters_decode() {
        assert_eq!(percent_decode("%2Fusers%3Fskip%3D0"), "/users?skip=0");
        assert_eq!(percent_decode("a+b"), "a b");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%4"), "%4");
    }
}
