//! The URLs a [`RedisStore`](crate::RedisStore) accepts:
//!
//! - `redis://[user:password@]host[:port][/db][?prefix=P]`
//! - `rediss://...` for TLS, optionally with `ca_file=/path/ca.pem` for a private CA
//! - `redis+cluster://[user:password@]host1:port1,host2:port2[/?prefix=P]` (and `rediss+cluster`)
//!
//! `prefix`, `ca_file` and `backplane` (`on`, the default, or `off`: whether `Cache::from_url`
//! sets up the pub/sub backplane) are larder's own parameters and are taken out; any other
//! parameter (`protocol=resp3`, ...) is passed on to redis-rs.

use std::path::PathBuf;

use larder_store::{percent_decode, redact_url};

use crate::Error;

/// The store's default key prefix.
pub(crate) const DEFAULT_PREFIX: &str = "larder:";

/// What a URL asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// One redis-rs URL per node (one for a standalone server).
    pub(crate) nodes: Vec<String>,
    pub(crate) cluster: bool,
    pub(crate) prefix: String,
    pub(crate) ca_file: Option<PathBuf>,
    /// Whether a cache built from this URL keeps its memory tier coherent over pub/sub.
    pub(crate) backplane: bool,
}

impl Target {
    pub(crate) fn parse(url: &str) -> Result<Self, Error> {
        let bad = |reason: &'static str| Error::InvalidUrl {
            url: redact_url(url),
            reason,
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad("expected scheme://..."))?;
        let (body, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        let mut prefix = DEFAULT_PREFIX.to_owned();
        let mut ca_file = None;
        let mut backplane = true;
        let mut passed_on = Vec::new();
        for pair in query.into_iter().flat_map(|q| q.split('&')) {
            if pair.is_empty() {
                continue;
            }
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "prefix" => {
                    prefix = percent_decode(value).ok_or(bad("prefix is not valid UTF-8"))?
                }
                "ca_file" => {
                    let path = percent_decode(value).ok_or(bad("ca_file is not valid UTF-8"))?;
                    ca_file = Some(PathBuf::from(path));
                }
                "backplane" => {
                    backplane = match value {
                        "on" | "true" | "1" => true,
                        "off" | "false" | "0" => false,
                        _ => return Err(bad("backplane must be on or off")),
                    }
                }
                _ => passed_on.push(pair),
            }
        }
        let query = if passed_on.is_empty() {
            String::new()
        } else {
            format!("?{}", passed_on.join("&"))
        };
        let (node_scheme, cluster) = match scheme {
            "redis+cluster" => ("redis", true),
            "rediss+cluster" => ("rediss", true),
            "redis" | "rediss" | "redis+unix" | "unix" => (scheme, false),
            _ => {
                return Err(bad(
                    "the scheme must be redis, rediss, redis+unix, unix, redis+cluster or rediss+cluster",
                ));
            }
        };
        if ca_file.is_some() && node_scheme != "rediss" {
            return Err(bad("ca_file only applies to TLS (rediss://) URLs"));
        }
        let nodes = if cluster {
            let (authority, path) = body.split_once('/').unwrap_or((body, ""));
            if !matches!(path, "" | "0") {
                return Err(bad("Redis Cluster has only database 0"));
            }
            let (userinfo, hosts) = match authority.rsplit_once('@') {
                Some((u, h)) => (format!("{u}@"), h),
                None => (String::new(), authority),
            };
            let nodes: Vec<String> = hosts
                .split(',')
                .filter(|h| !h.is_empty())
                .map(|h| format!("{node_scheme}://{userinfo}{h}{query}"))
                .collect();
            if nodes.is_empty() {
                return Err(bad("a cluster URL needs at least one host"));
            }
            nodes
        } else {
            if body.is_empty() {
                return Err(bad("the URL has no host"));
            }
            vec![format!("{scheme}://{body}{query}")]
        };
        Ok(Self {
            nodes,
            cluster,
            prefix,
            ca_file,
            backplane,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standalone_urls_keep_what_redis_rs_needs() {
        let t = Target::parse("redis://:pw@127.0.0.1:6380/2?prefix=app%3A&protocol=resp3").unwrap();
        assert_eq!(t.nodes, ["redis://:pw@127.0.0.1:6380/2?protocol=resp3"]);
        assert_eq!(t.prefix, "app:");
        assert!(!t.cluster);
        assert!(t.backplane, "on unless the URL says off");
        assert_eq!(Target::parse("redis://h").unwrap().prefix, DEFAULT_PREFIX);
        let t = Target::parse("redis://h?backplane=off&db=1").unwrap();
        assert!(!t.backplane);
        assert_eq!(t.nodes, ["redis://h?db=1"]);
    }

    #[test]
    fn cluster_urls_become_one_url_per_node() {
        let t = Target::parse("redis+cluster://u:p@h1:7000,h2:7001/?prefix=x").unwrap();
        assert!(t.cluster);
        assert_eq!(t.nodes, ["redis://u:p@h1:7000", "redis://u:p@h2:7001"]);
        assert_eq!(t.prefix, "x");
        let t = Target::parse("rediss+cluster://h1,h2?ca_file=%2Ftmp%2Fca.pem").unwrap();
        assert_eq!(t.nodes, ["rediss://h1", "rediss://h2"]);
        assert_eq!(t.ca_file, Some(PathBuf::from("/tmp/ca.pem")));
    }

    #[test]
    fn bad_urls_are_errors_that_hide_the_password() {
        for url in [
            "http://h",
            "redis+cluster:///",
            "redis+cluster://h1,h2/3",
            "redis://",
            "nonsense",
            "redis://h?ca_file=/x",
            "redis://h?prefix=%FF",
            "redis://h?prefix=%4",
            "redis://h?backplane=maybe",
        ] {
            assert!(Target::parse(url).is_err(), "{url}");
        }
        let err = Target::parse("http://user:secret@h/")
            .unwrap_err()
            .to_string();
        assert!(!err.contains("secret"), "{err}");
        assert!(err.contains("user:***@h/"), "{err}");
    }
}
