//! larder-proxy as an operator runs it: a config file with rules, `check`, the admin listener
//! (purge, stats, metrics, health, token), Cache-Status, the forwarding headers, the request
//! body limit, WebSocket-style upgrades, an https upstream, and stale copies when the origin
//! goes away. Every test starts the real binary and a real origin.

mod common;

use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::*;
use http::Response;

fn counting_origin(
    calls: Arc<AtomicUsize>,
) -> impl Fn(
    http::Request<hyper::body::Incoming>,
) -> futures::future::BoxFuture<'static, Response<OriginBody>>
+ Send
+ Sync
+ 'static {
    move |req| {
        let n = calls.fetch_add(1, Ordering::SeqCst);
        let path = req.uri().to_string();
        let headers = format!("{:?}", req.headers());
        Box::pin(async move {
            // No Cache-Control, like a FastAPI handler returning JSON.
            full(
                200,
                &[("content-type", "application/json")],
                format!("{{\"call\":{n},\"uri\":\"{path}\",\"headers\":{headers:?}}}"),
            )
        })
    }
}

const RULES: &str = r#"
[cache]
purge_prefix_depth = 3

[[rule]]
path = "/admin"
bypass = true

[[rule]]
path = "/users"
methods = ["POST", "PUT", "PATCH", "DELETE"]
invalidate = ["/users"]

[[rule]]
path = "/"
ttl = "60s"
stale = "10m"
"#;

#[tokio::test]
async fn rules_from_the_config_cache_an_origin_that_sends_no_cache_control() {
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = Origin::start(Arc::new(counting_origin(calls.clone()))).await;
    let (_dir, path) = config_file(RULES);
    let proxy = Proxy::start(origin.addr, &["--config", path.to_str().unwrap()], &[]);

    let (_, miss, _) = get(&proxy.url("/users?skip=0&limit=10"), &[]).await;
    assert_eq!(
        miss["cache-status"],
        "larder; fwd=uri-miss; fwd-status=200; ttl=60; stored"
    );
    let (_, hit, body) = get(&proxy.url("/users?limit=10&skip=0"), &[]).await;
    assert_eq!(hit["x-cache"], "HIT");
    assert!(
        hit["cache-status"]
            .to_str()
            .unwrap()
            .starts_with("larder; hit; ttl=")
    );
    assert!(String::from_utf8_lossy(&body).contains("\"call\":0"));
    get(&proxy.url("/admin/x"), &[]).await;
    let (_, bypass, _) = get(&proxy.url("/admin/x"), &[]).await;
    assert_eq!(bypass["x-cache"], "BYPASS");
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    // A write under /users drops the lists and the user's pages.
    get(&proxy.url("/users/42"), &[]).await;
    let (status, _, _) = send("POST", &proxy.url("/users/42"), &[], b"{}").await;
    assert_eq!(status, 200);
    let (_, after, _) = get(&proxy.url("/users?skip=0&limit=10"), &[]).await;
    assert_eq!(after["x-cache"], "MISS");
    let (_, after, _) = get(&proxy.url("/users/42"), &[]).await;
    assert_eq!(after["x-cache"], "MISS");
    assert!(proxy.log_text().contains("1. GET,HEAD /admin -> bypass"));
}

#[test]
fn check_prints_the_rules_or_points_at_the_error() {
    let bin = env!("CARGO_BIN_EXE_larder-proxy");
    let (_dir, good) = config_file(RULES);
    let out = Command::new(bin)
        .args(["check", "--config", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("3. GET,HEAD / -> ttl 60s, stale 600s"),
        "{text}"
    );

    let (_dir, bad) =
        config_file("[cache]\nmemory_mib = 64\n\n[[rule]]\npath = \"/\"\nttl = \"soon\"\n");
    let out = Command::new(bin)
        .args(["check", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("larder.toml:6:7: not a duration"), "{err}");

    // The same file refuses to run: nothing is started.
    let out = Command::new(bin)
        .args([
            "--upstream",
            "http://127.0.0.1:1",
            "--config",
            bad.to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn the_admin_listener_purges_reports_and_needs_its_token() {
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = Origin::start(Arc::new(counting_origin(calls.clone()))).await;
    let (_dir, path) = config_file(RULES);
    let proxy = Proxy::start(
        origin.addr,
        &[
            "--config",
            path.to_str().unwrap(),
            "--admin-token",
            "s3cret",
        ],
        &[],
    );
    let auth = [("authorization", "Bearer s3cret")];
    let (status, _, _) = get(&proxy.admin_url("/stats"), &[]).await;
    assert_eq!(status, 401);
    let (status, _, _) = get(
        &proxy.admin_url("/stats"),
        &[("authorization", "Bearer nope!")],
    )
    .await;
    assert_eq!(status, 401);

    for p in ["/a?x=1", "/a/b", "/c"] {
        get(&proxy.url(p), &[]).await;
    }
    let hit = |p: &'static str| {
        let url = proxy.url(p);
        async move { get(&url, &[]).await.1["x-cache"] == "HIT" }
    };
    assert!(hit("/a?x=1").await && hit("/a/b").await && hit("/c").await);

    let (s, _, body) = send(
        "POST",
        &proxy.admin_url("/purge?url=%2Fa%3Fx%3D1"),
        &auth,
        b"",
    )
    .await;
    assert_eq!(s, 200, "{body:?}");
    assert!(!hit("/a?x=1").await);
    get(&proxy.url("/a?x=1"), &[]).await;
    let (s, _, _) = send("POST", &proxy.admin_url("/purge?prefix=/a"), &auth, b"").await;
    assert_eq!(s, 200);
    assert!(!hit("/a?x=1").await && !hit("/a/b").await && hit("/c").await);
    let (s, _, _) = send("POST", &proxy.admin_url("/purge?all=true"), &auth, b"").await;
    assert_eq!(s, 200);
    assert!(!hit("/c").await);
    let (s, _, _) = send(
        "POST",
        &proxy.admin_url("/purge?prefix=/a/b/c/d"),
        &auth,
        b"",
    )
    .await;
    assert_eq!(s, 400);

    let (s, _, stats) = get(&proxy.admin_url("/stats"), &auth).await;
    assert_eq!(s, 200);
    let stats: serde_json::Value = serde_json::from_slice(&stats).unwrap();
    assert!(stats["http"]["fills"].as_u64().unwrap() >= 3, "{stats}");
    let (_, _, metrics) = get(&proxy.admin_url("/metrics"), &auth).await;
    let metrics = String::from_utf8_lossy(&metrics);
    for name in [
        "larder_proxy_requests_total{cache=\"HIT\"}",
        "larder_proxy_requests_total{cache=\"MISS\"}",
        "larder_proxy_origin_seconds_bucket{le=\"0.005\"}",
        "larder_proxy_response_bytes_total",
        "larder_proxy_fills_in_flight",
        "larder_proxy_store_up",
        "larder_proxy_breaker_open",
    ] {
        assert!(metrics.contains(name), "{name} missing from:\n{metrics}");
    }
    let (s, _, health) = get(&proxy.admin_url("/healthz"), &auth).await;
    assert_eq!(s, 200);
    assert!(String::from_utf8_lossy(&health).contains("\"status\":\"ok\""));
}

#[test]
fn a_public_admin_listener_without_a_token_does_not_start() {
    let out = Command::new(env!("CARGO_BIN_EXE_larder-proxy"))
        .args([
            "--upstream",
            "http://127.0.0.1:1",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "0.0.0.0:0",
        ])
        .env_remove("LARDER_ADMIN_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("admin_token"));
}

#[tokio::test]
async fn the_origin_sees_forwarding_headers_and_the_client_sees_via() {
    let seen = Arc::new(std::sync::Mutex::new(http::HeaderMap::new()));
    let s = seen.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            *s.lock().unwrap() = req.headers().clone();
            Box::pin(async { full(200, &[], "ok") }) as futures::future::BoxFuture<'static, _>
        },
    ))
    .await;
    let proxy = Proxy::start(origin.addr, &["--access-log", "json"], &[]);
    let (_, headers, _) = get(&proxy.url("/x"), &[("x-forwarded-for", "10.0.0.1")]).await;
    assert_eq!(headers["via"], "1.1 larder");
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen["x-forwarded-for"], "10.0.0.1, 127.0.0.1");
        assert_eq!(seen["x-forwarded-proto"], "http");
        assert_eq!(seen["via"], "1.1 larder");
        assert_eq!(seen["host"], origin.addr.to_string().as_str());
        assert!(!seen.contains_key("x-forwarded-host"));
    }
    // The access log, as JSON, one line per request.
    let log = proxy.log_text();
    let line = log
        .lines()
        .find(|l| l.contains("larder_proxy::access"))
        .expect("an access log line");
    let v: serde_json::Value = serde_json::from_str(line).unwrap();
    assert_eq!(v["fields"]["status"], 200);
    assert_eq!(v["fields"]["uri"], "/x");

    // With pass_host the client's Host goes through (and keys the entry).
    let proxy = Proxy::start(origin.addr, &["--pass-host"], &[]);
    get(&proxy.url("/x"), &[("host", "api.example")]).await;
    let seen = seen.lock().unwrap();
    assert_eq!(seen["host"], "api.example");
    assert_eq!(seen["x-forwarded-host"], "api.example");
}

#[tokio::test]
async fn x_cache_can_be_turned_off_and_cache_status_stays() {
    let origin = Origin::start(Arc::new(|_req| {
        Box::pin(async { full(200, &[("cache-control", "max-age=60")], "ok") })
            as futures::future::BoxFuture<'static, _>
    }))
    .await;
    let (_dir, path) = config_file("[proxy]\nx_cache = false\ncache_status_name = \"edge\"\n");
    let proxy = Proxy::start(origin.addr, &["--config", path.to_str().unwrap()], &[]);
    get(&proxy.url("/"), &[]).await;
    let (_, h, _) = get(&proxy.url("/"), &[]).await;
    assert!(!h.contains_key("x-cache"));
    assert!(h["cache-status"].to_str().unwrap().starts_with("edge; hit"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_past_the_limit_get_413() {
    let origin = Origin::start(Arc::new(|req: http::Request<hyper::body::Incoming>| {
        Box::pin(async move {
            use http_body_util::BodyExt;
            let n = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes().len())
                .unwrap_or(0);
            full(200, &[], n.to_string())
        }) as futures::future::BoxFuture<'static, _>
    }))
    .await;
    let (_dir, path) = config_file("[proxy]\nmax_request_body = \"1KiB\"\n");
    let proxy = Proxy::start(origin.addr, &["--config", path.to_str().unwrap()], &[]);
    let (s, _, body) = send("POST", &proxy.url("/upload"), &[], &[b'x'; 1000]).await;
    assert_eq!((s, &body[..]), (200, &b"1000"[..]));
    let (s, _, _) = send("POST", &proxy.url("/upload"), &[], &[b'x'; 2000]).await;
    assert_eq!(s, 413);
    // Chunked, with no length to judge up front: cut where it passes the limit.
    let chunked = b"POST /upload HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n400\r\n"
        .iter()
        .copied()
        .chain([b'x'; 1024])
        .chain(*b"\r\n400\r\n")
        .chain([b'x'; 1024])
        .chain(*b"\r\n0\r\n\r\n")
        .collect::<Vec<u8>>();
    let reply = raw_exchange(proxy.port, &chunked, std::time::Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
}

// Multi-threaded: the test talks to the proxy with blocking reads while the origin runs here.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upgrade_requests_pass_through_as_a_tunnel() {
    // An origin that switches to a line echo protocol.
    let origin = Origin::start(Arc::new(|mut req: http::Request<hyper::body::Incoming>| {
        Box::pin(async move {
            if req.headers().get("upgrade").map(|v| v.as_bytes()) != Some(b"echo") {
                return full(400, &[], "no upgrade");
            }
            echo_upgrade(&mut req)
        }) as futures::future::BoxFuture<'static, _>
    }))
    .await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if let Err(e) = s.read_exact(&mut byte) {
            panic!(
                "{e}: got {:?}; log: {}",
                String::from_utf8_lossy(&head),
                proxy.log_text()
            );
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    s.write_all(b"ping").unwrap();
    let mut echo = [0u8; 4];
    s.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"ping");
}

#[tokio::test]
async fn the_stale_copy_answers_when_the_origin_is_gone() {
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = Origin::start(Arc::new(counting_origin(calls.clone()))).await;
    let (_dir, path) = config_file("[[rule]]\npath = \"/\"\nttl = 1\nstale = \"10m\"\n");
    let proxy = Proxy::start(origin.addr, &["--config", path.to_str().unwrap()], &[]);
    let (_, _, first) = get(&proxy.url("/report"), &[]).await;
    drop(origin);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, h, body) = get(&proxy.url("/report"), &[]).await;
    assert_eq!(status, 200);
    assert_eq!(h["x-cache"], "STALE");
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .contains("fwd=stale; fwd-status=502")
    );
    assert_eq!(body, first);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_accepting_and_finishes_what_is_in_flight() {
    let origin = Origin::start(Arc::new(|_req| {
        Box::pin(async {
            tokio::time::sleep(std::time::Duration::from_millis(800)).await;
            full(200, &[], "finished")
        }) as futures::future::BoxFuture<'static, _>
    }))
    .await;
    let mut proxy = Proxy::start(origin.addr, &[], &[]);
    let url = proxy.url("/slow");
    let in_flight = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    // SAFETY: kill sends a signal to the child process this test started; no memory is touched.
    assert_eq!(unsafe { libc::kill(proxy.pid() as i32, libc::SIGTERM) }, 0);
    let (status, _, body) = in_flight.await.unwrap();
    assert_eq!((status, &body[..]), (200, &b"finished"[..]));
    let exit = tokio::task::spawn_blocking(move || {
        let exit = proxy.wait_exit(std::time::Duration::from_secs(10));
        (exit, proxy)
    })
    .await
    .unwrap();
    let (exit, proxy) = exit;
    assert!(exit.expect("the proxy exits").success());
    assert!(std::net::TcpStream::connect(("127.0.0.1", proxy.port)).is_err());
    assert!(proxy.log_text().contains("shutting down"));
}

/// Resilience per rule against a real origin: a 503 behind a stored copy gets the copy, and an
/// origin slower than the rule's soft timeout gets the copy at once while the refresh lands later.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_stale_window_covers_a_503_and_a_slow_origin() {
    let calls = Arc::new(AtomicUsize::new(0));
    let c = calls.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let path = req.uri().path().to_owned();
            Box::pin(async move {
                match (path.as_str(), n) {
                    ("/flaky", _) if n > 0 => full(503, &[], "down"),
                    ("/slow", _) if n > 1 => {
                        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                        full(200, &[], "fresh")
                    }
                    _ => full(200, &[], "first"),
                }
            }) as futures::future::BoxFuture<'static, _>
        },
    ))
    .await;
    // The slow origin's refresh takes 1.5 s, which counts into its age (RFC 9111 §4.2.3): a
    // 3-second ttl leaves it fresh when it lands.
    let (_dir, path) =
        config_file("[[rule]]\npath = \"/\"\nttl = 3\nstale = \"10m\"\nsoft_timeout = \"200ms\"\n");
    let proxy = Proxy::start(origin.addr, &["--config", path.to_str().unwrap()], &[]);
    let (_, _, body) = get(&proxy.url("/flaky"), &[]).await;
    assert_eq!(&body[..], b"first");
    let (_, _, body) = get(&proxy.url("/slow"), &[]).await;
    assert_eq!(&body[..], b"first");
    tokio::time::sleep(std::time::Duration::from_millis(3100)).await;

    let (status, h, body) = get(&proxy.url("/flaky"), &[]).await;
    assert_eq!((status, &body[..]), (200, &b"first"[..]));
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .contains("fwd=stale; fwd-status=503")
    );

    let (status, h, body) = get(&proxy.url("/slow"), &[]).await;
    assert_eq!((status, &body[..]), (200, &b"first"[..]));
    // Answered at the soft timeout, not after the origin's 1.5 s.
    assert!(
        h["cache-status"]
            .to_str()
            .unwrap()
            .ends_with("detail=soft-timeout")
    );
    tokio::time::sleep(std::time::Duration::from_millis(1800)).await;
    let (_, h, body) = get(&proxy.url("/slow"), &[]).await;
    assert_eq!(
        (h["x-cache"].to_str().unwrap(), &body[..]),
        ("HIT", &b"fresh"[..])
    );
}

/// Rules an operator can predict: an exact path, FastAPI-style templates (a write to
/// `/users/{id}` drops that user and the lists), and `check` explaining sample paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exact_paths_and_templates_do_what_check_says() {
    let rules = r#"
[[rule]]
path = "= /"
ttl = "60s"

[[rule]]
path = "/users/{id}"
methods = ["PUT", "DELETE"]
invalidate = ["/users/{id}", "/users"]

[[rule]]
path = "/users/{id:int}"
ttl = "60s"

[[rule]]
path = "/users"
ttl = "60s"
"#;
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = Origin::start(Arc::new(counting_origin(calls.clone()))).await;
    let (_dir, file) = config_file(rules);
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    let cache = |h: &http::HeaderMap| h["x-cache"].to_str().unwrap().to_owned();

    // `= /` is the home page alone: another path gets no rule (and this origin no freshness).
    get(&proxy.url("/"), &[]).await;
    assert_eq!(cache(&get(&proxy.url("/"), &[]).await.1), "HIT");
    get(&proxy.url("/about"), &[]).await;
    assert_eq!(cache(&get(&proxy.url("/about"), &[]).await.1), "MISS");
    // `{id:int}` takes numbers only; `/users/me` falls to the `/users` prefix.
    for path in ["/users/3", "/users/4", "/users?page=2", "/users/me"] {
        get(&proxy.url(path), &[]).await;
        assert_eq!(cache(&get(&proxy.url(path), &[]).await.1), "HIT", "{path}");
    }
    // A PUT to user 3 drops user 3 and everything under /users, by the template's {id}.
    let (status, _, _) = send("PUT", &proxy.url("/users/3"), &[], b"{}").await;
    assert_eq!(status, 200);
    assert_eq!(cache(&get(&proxy.url("/users/3"), &[]).await.1), "MISS");
    assert_eq!(
        cache(&get(&proxy.url("/users?page=2"), &[]).await.1),
        "MISS"
    );

    let out = Command::new(env!("CARGO_BIN_EXE_larder-proxy"))
        .args([
            "check",
            "--config",
            file.to_str().unwrap(),
            "/users/3",
            "/users/me",
            "/about",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    for says in [
        "/users/3\n  GET,HEAD -> rule 3: GET,HEAD /users/{id:int} -> ttl 60s",
        "PUT,DELETE -> rule 2: PUT,DELETE /users/{id} -> origin's headers, invalidates [/users/{id}, /users]",
        "/users/me\n  GET,HEAD -> rule 4: GET,HEAD /users -> ttl 60s",
        "/about\n  GET,HEAD -> no rule: stored only as the origin's headers allow",
    ] {
        assert!(text.contains(says), "{says:?} not in:\n{text}");
    }
}

/// A POST under a `key_body` rule whose body stalls is answered 408 at the body idle timeout,
/// and nothing half-read reaches the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keyed_post_whose_body_stalls_is_answered_408() {
    let calls = Arc::new(AtomicUsize::new(0));
    let origin = Origin::start(Arc::new(counting_origin(calls.clone()))).await;
    let (_dir, file) = config_file(
        "[upstream]\nbody_idle_timeout = \"1s\"\n\n[[rule]]\npath = \"/search\"\nttl = 60\nkey_body = true\n",
    );
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    let port = proxy.port;
    let answer = tokio::task::spawn_blocking(move || {
        raw_exchange(
            port,
            b"POST /search HTTP/1.1\r\nhost: t\r\ncontent-type: application/json\r\ncontent-length: 10\r\n\r\n{\"q\"",
            std::time::Duration::from_secs(20),
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("detail=body-stalled"), "{answer}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // A whole one is cached by its body.
    for expect in ["MISS", "HIT"] {
        let (_, h, _) = send(
            "POST",
            &proxy.url("/search"),
            &[("content-type", "application/json")],
            b"{\"q\": 1}",
        )
        .await;
        assert_eq!(h["x-cache"], expect);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// SIGHUP while requests are in flight: they finish, the cache stays, the new rules apply to
/// the next requests; a file that does not check changes nothing (POST /reload says why); a
/// setting that needs a restart is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_applies_new_rules_and_keeps_the_cache_and_requests_in_flight() {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            let slow = req.uri().path() == "/slow";
            Box::pin(async move {
                if slow {
                    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
                }
                full(200, &[], format!("call {n}"))
            }) as futures::future::BoxFuture<'static, Response<OriginBody>>
        },
    ))
    .await;
    let v1 = "[[rule]]\npath = \"/\"\nttl = \"60s\"\n";
    let (dir, file) = config_file(v1);
    let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
    let status = |h: &http::HeaderMap| h["x-cache"].to_str().unwrap().to_owned();
    get(&proxy.url("/a"), &[]).await;
    assert_eq!(status(&get(&proxy.url("/a"), &[]).await.1), "HIT");

    // Five requests for a slow URL in flight, then the file changes and SIGHUP comes.
    let slow: Vec<_> = (0..5)
        .map(|_| {
            let url = proxy.url("/slow");
            tokio::spawn(async move { get(&url, &[]).await })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let v2 =
        "[[rule]]\npath = \"/private\"\nbypass = true\n\n[[rule]]\npath = \"/\"\nttl = \"60s\"\n";
    std::fs::write(dir.path().join("larder.toml"), v2).unwrap();
    let hup = Command::new("kill")
        .args(["-HUP", &proxy.pid().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    for r in slow {
        let (code, _, body) = r.await.unwrap();
        assert_eq!(code, 200, "a request in flight finished");
        assert!(String::from_utf8_lossy(&body).starts_with("call "));
    }
    for _ in 0..100 {
        if proxy.log_text().contains("reloaded: 2 rules in force") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(
        proxy
            .log_text()
            .contains("reloaded: 2 rules in force (SIGHUP)"),
        "{}",
        proxy.log_text()
    );
    // The cache stayed; the fill in flight was stored; the new rule applies.
    assert_eq!(status(&get(&proxy.url("/a"), &[]).await.1), "HIT");
    assert_eq!(status(&get(&proxy.url("/slow"), &[]).await.1), "HIT");
    for _ in 0..2 {
        assert_eq!(
            status(&get(&proxy.url("/private/x"), &[]).await.1),
            "BYPASS"
        );
    }
    let before = calls.load(Ordering::SeqCst);

    // A file that does not check: refused, said, and the running rules stay.
    let bad = "[[rule]]\npath = \"/\"\nttl = 60\n\n[[rule]]\npath = \"/private\"\nbypass = true\n";
    std::fs::write(dir.path().join("larder.toml"), bad).unwrap();
    let (code, _, body) = send("POST", &proxy.admin_url("/reload"), &[], b"").await;
    assert_eq!(code, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("rule 2 (/private) is never used"));
    assert_eq!(
        status(&get(&proxy.url("/private/x"), &[]).await.1),
        "BYPASS"
    );
    assert!(proxy.log_text().contains("reload refused"));

    // A setting that takes a restart is named; the rest applies: here the upstream's response
    // timeout, shorter than the slow URL takes (`listen` comes from a flag, which wins).
    let moved = format!(
        "[limits]\nidle_timeout = \"30s\"\n\n[upstream]\nresponse_timeout = \"500ms\"\nconnect_timeout = \"1s\"\n\n{v1}"
    );
    std::fs::write(dir.path().join("larder.toml"), moved).unwrap();
    let (code, _, body) = send("POST", &proxy.admin_url("/reload"), &[], b"").await;
    let body = String::from_utf8_lossy(&body).into_owned();
    assert_eq!(code, 200, "{body}");
    assert!(
        body.contains("\"needs_restart\":[\"[upstream] connect_timeout\"]"),
        "{body}"
    );
    let (code, _, _) = get(&proxy.url("/slow?new=1"), &[]).await;
    assert_eq!(
        code, 504,
        "the new response timeout applies to the next request"
    );
    get(&proxy.url("/private/y"), &[]).await;
    assert_eq!(
        status(&get(&proxy.url("/private/y"), &[]).await.1),
        "HIT",
        "v1's rules again"
    );
    assert!(calls.load(Ordering::SeqCst) >= before);
}
