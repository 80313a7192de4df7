//! Attack suite, larder-proxy: the cases every surface runs (tests/attacks/cases.json) against a
//! real proxy process in front of a real FastAPI app under uvicorn (tests/attacks/reflect_app.py),
//! and the proxy's own limits under attack. The same cases run against the Rust layer
//! (crates/larder-http/tests/attacks.rs) and larder.asgi (crates/larder-py/tests/test_attack_http.py).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;

fn cases() -> serde_json::Value {
    let text = std::fs::read_to_string(repo_root().join("tests/attacks/cases.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The cases' rules and cookie settings as larder-proxy's configuration file.
fn config(cases: &serde_json::Value) -> String {
    let mut out = String::from("[cache]\nignore_cookies = [");
    for (i, c) in cases["ignore_cookies"]
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
    {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&c.to_string());
    }
    out.push_str("]\n");
    for rule in cases["rules"].as_array().unwrap() {
        out.push_str("\n[[rule]]\n");
        for (k, v) in rule.as_object().unwrap() {
            out.push_str(&format!("{k} = {v}\n"));
        }
    }
    out
}

fn text(b: &bytes::Bytes) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Attacker first, then a victim with a plain request for the same URL: the victim never gets
/// the attacker's value, whichever header carried it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_header_poisons_what_the_next_client_gets() {
    let cases = cases();
    let app = Uvicorn::start("tests/attacks", "reflect_app:app", &[]);
    let (_dir, file) = config_file(&config(&cases));
    let proxy = Proxy::start(app.addr(), &["--config", file.to_str().unwrap()], &[]);
    for (i, case) in cases["poisoning"].as_array().unwrap().iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        let evil = case["evil"].as_str().unwrap_or("evil");
        let url = proxy.url(&format!("/poison/{i}"));
        let attacker: Vec<(&str, &str)> = case["attacker"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str().unwrap()))
            .collect();
        let (status, _, _) = get(&url, &attacker).await;
        assert_eq!(status, 200, "{name}: the attacker's request");
        let (status, headers, body) = get(&url, &[]).await;
        assert_eq!(status, 200, "{name}");
        assert!(
            !text(&body).contains(evil),
            "{name}: the victim got the attacker's value ({:?}): {}",
            headers.get("x-cache"),
            text(&body)
        );
        // The victim's own response is stored and served to the next plain request.
        let (_, again, _) = get(&url, &[]).await;
        assert_eq!(
            again["x-cache"], "HIT",
            "{name}: plain requests still share"
        );

        // The same as a POST keyed on its body: one question, the attacker asking first.
        let url = proxy.url(&format!("/ask/{i}"));
        let question: &[u8] = br#"{"q": "same"}"#;
        let json = ("content-type", "application/json");
        let mut attacker_post = attacker.clone();
        attacker_post.push(json);
        let (status, _, _) = send("POST", &url, &attacker_post, question).await;
        assert_eq!(status, 200, "{name}: the attacker's POST");
        let (status, headers, body) = send("POST", &url, &[json], question).await;
        assert_eq!(status, 200, "{name}");
        assert!(text(&body).contains("same"), "{name}: the app got the body");
        assert!(
            !text(&body).contains(evil),
            "{name}: the victim's POST got the attacker's value ({:?}): {}",
            headers.get("x-cache"),
            text(&body)
        );
        let (_, again, _) = send("POST", &url, &[json], question).await;
        assert_eq!(again["x-cache"], "HIT", "{name}: plain POSTs still share");
    }
}

/// Every spelling of a bypassed route that some origin routes to it (FastAPI under uvicorn
/// decodes `%2F`; others normalize dot segments, slashes, `;` parameters or case) is passed to
/// the app every time: never stored, never served from the cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_spelling_of_a_bypassed_route_is_cached() {
    let cases = cases();
    let app = Uvicorn::start("tests/attacks", "reflect_app:app", &[]);
    let (_dir, file) = config_file(&config(&cases));
    let proxy = Proxy::start(app.addr(), &["--config", file.to_str().unwrap()], &[]);
    for spelling in cases["bypassed_spellings"].as_array().unwrap() {
        let spelling = spelling.as_str().unwrap();
        for round in 0..2 {
            let (status, headers, body) = get(&proxy.url(spelling), &[]).await;
            let served = headers
                .get("x-cache")
                .map(|v| v.to_str().unwrap().to_owned());
            assert!(
                !matches!(served.as_deref(), Some("HIT" | "STALE" | "REVALIDATED")),
                "{spelling} (round {round}, status {status}) came from the cache: {}",
                text(&body)
            );
        }
    }
    // The route itself, plainly: answered by the app each time.
    let (_, _, one) = get(&proxy.url("/admin/secret"), &[]).await;
    let (_, _, two) = get(&proxy.url("/admin/secret"), &[]).await;
    assert_ne!(one, two, "the admin route is called every time");
}

/// An origin for the descriptor tests: `/ws` switches to an echo protocol, a POST reads its whole
/// body, `/slow/...` answers after a second, `/hot` is cacheable. It counts the connections open to it now, and the most
/// ever.
struct CountingOrigin {
    addr: std::net::SocketAddr,
    most_open: Arc<AtomicUsize>,
    /// Requests for `/reload` (answered after 100 ms).
    reloads: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingOrigin {
    async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (open, most_open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let most = most_open.clone();
        let reloads = Arc::new(AtomicUsize::new(0));
        let counted = reloads.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let now = open.fetch_add(1, Ordering::SeqCst) + 1;
                most.fetch_max(now, Ordering::SeqCst);
                let open = open.clone();
                let counted = counted.clone();
                tokio::spawn(async move {
                    let svc = hyper::service::service_fn(
                        move |mut req: http::Request<hyper::body::Incoming>| {
                            let counted = counted.clone();
                            async move {
                                let path = req.uri().path().to_owned();
                                let resp = if path == "/reload" {
                                    counted.fetch_add(1, Ordering::SeqCst);
                                    tokio::time::sleep(Duration::from_millis(100)).await;
                                    full(200, &[("cache-control", "max-age=600")], "reloaded")
                                } else if path == "/ws" {
                                    echo_upgrade(&mut req)
                                } else if req.method() == http::Method::POST {
                                    use http_body_util::BodyExt;
                                    match req.into_body().collect().await {
                                        Ok(body) => full(200, &[], body.to_bytes()),
                                        Err(_) => full(400, &[], "cut"),
                                    }
                                } else if path.starts_with("/slow/") {
                                    tokio::time::sleep(Duration::from_secs(1)).await;
                                    full(200, &[("cache-control", "max-age=600")], "slow")
                                } else {
                                    full(200, &[("cache-control", "max-age=600")], "hot")
                                };
                                Ok::<_, std::convert::Infallible>(resp)
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                        .with_upgrades()
                        .await;
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        Self {
            addr,
            most_open,
            reloads,
            task,
        }
    }
}

impl Drop for CountingOrigin {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Raises this test process's own descriptor limit to its hard limit: it holds both ends of
/// hundreds of connections.
fn raise_own_limit() {
    let mut l = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write the struct they are given and nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut l) == 0 && l.rlim_cur < l.rlim_max {
            l.rlim_cur = l.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &l);
        }
    }
}

/// Opens a tunnel through the proxy: `Some(stream)` once it switched, `None` if refused.
fn open_tunnel(port: u16) -> Option<std::net::TcpStream> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    s.write_all(b"GET /ws HTTP/1.1\r\nhost: x\r\nconnection: upgrade\r\nupgrade: echo\r\n\r\n")
        .ok()?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        s.read_exact(&mut byte).ok()?;
        head.push(byte[0]);
    }
    head.starts_with(b"HTTP/1.1 101").then_some(s)
}

/// One descriptor budget (issue 23, point 4). Under `ulimit -n 1024`, before: ~500 WebSocket
/// tunnels, or 6 h2c connections x 200 streams to distinct slow URLs (each opening its own
/// origin connection), or silent sockets held for the idle timeout, took every descriptor and
/// normal requests failed until they closed. Now tunnels keep their client slot and have a cap
/// below the client cap, origin connections are capped with a bounded queue, h2 streams per
/// connection are capped, and a socket that sends nothing is closed at the header timeout: the
/// proxy never runs out of descriptors and a cached URL keeps being served throughout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnels_streams_and_silent_sockets_past_every_limit_leave_room_for_normal_requests() {
    raise_own_limit();
    let origin = CountingOrigin::start().await;
    let proxy = Proxy::start_with(
        origin.addr,
        &["--header-read-timeout", "2s", "--upstream-timeout", "5s"],
        &[],
        Some(1024),
    );
    let log = proxy.log_text();
    let budget = |name: &str| -> usize {
        log.split(&format!("{name}="))
            .nth(1)
            .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} in the startup log: {log}"))
    };
    let (tunnels_cap, upstream_cap, idle_cap) = (
        budget("max_tunnels"),
        budget("upstream_connections"),
        budget("upstream_idle"),
    );
    assert!(tunnels_cap < budget("max_connections"));
    let hot = proxy.url("/hot");
    assert_eq!(get(&hot, &[]).await.0, 200);
    assert_eq!(get(&hot, &[]).await.1["x-cache"], "HIT");

    // 300 tunnels: past the tunnel cap, upgrades are refused; those open keep their slots.
    let port = proxy.port;
    let tunnels: Vec<std::net::TcpStream> =
        tokio::task::spawn_blocking(move || (0..300).filter_map(|_| open_tunnel(port)).collect())
            .await
            .unwrap();
    assert_eq!(
        tunnels.len(),
        tunnels_cap,
        "tunnels past the cap are refused"
    );

    // 6 h2c connections x 200 streams to distinct slow URLs.
    let mut streams = tokio::task::JoinSet::new();
    for c in 0..6 {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .unwrap();
        let (sender, conn) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(tcp),
        )
        .await
        .unwrap();
        tokio::spawn(conn);
        for s in 0..200 {
            let mut sender = sender.clone();
            streams.spawn(async move {
                let req = http::Request::get(format!("http://x/slow/{c}/{s}"))
                    .body(http_body_util::Empty::<bytes::Bytes>::new())
                    .unwrap();
                match sender.send_request(req).await {
                    Ok(resp) => resp.status().as_u16(),
                    Err(_) => 0,
                }
            });
        }
    }
    // 600 sockets that never send a byte.
    let silent: Vec<std::net::TcpStream> = (0..600)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();

    // Meanwhile, a cached URL keeps being served on new connections.
    for round in 0..20 {
        let got = tokio::time::timeout(Duration::from_secs(30), get(&hot, &[])).await;
        let (status, headers, _) = got.unwrap_or_else(|_| panic!("round {round}: no answer"));
        assert_eq!(status, 200, "round {round}");
        assert_eq!(headers["x-cache"], "HIT", "round {round}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    while let Some(status) = streams.join_next().await {
        *statuses.entry(status.unwrap()).or_default() += 1;
    }
    assert!(statuses.get(&200).copied().unwrap_or(0) > 0, "{statuses:?}");
    assert!(
        statuses.keys().all(|s| [200, 503, 504].contains(s)),
        "streams get an answer or a clear refusal: {statuses:?}"
    );
    let most = origin.most_open.load(Ordering::SeqCst);
    eprintln!(
        "tunnels {} (cap {tunnels_cap}), h2 streams {statuses:?}, origin connections at most {most} (cap {upstream_cap} + {idle_cap} idle)",
        tunnels.len()
    );
    assert!(
        most <= upstream_cap + idle_cap,
        "{most} connections to the origin, past the cap {upstream_cap} (+{idle_cap} idle)"
    );
    let log = proxy.log_text();
    assert!(
        !log.contains("cannot accept connections"),
        "the proxy ran out of descriptors:\n{log}"
    );
    drop((silent, tunnels));
}

/// Configuration that cannot work is refused by `check` (exit 2), each with the file, line and
/// column of the value at fault; before, all of these were accepted (and some made the proxy
/// exit at start, or answer 200 with an empty body).
#[test]
fn check_refuses_configuration_that_cannot_work_at_its_line_and_column() {
    let cases: &[(&str, &str, &str)] = &[
        ("[limits]\nmax_connections = 0\n", "2:19", "at least 1"),
        ("[limits]\nidle_timeout = 0\n", "2:16", "more than 0"),
        (
            "[limits]\nheader_read_timeout = \"0s\"\n",
            "2:23",
            "more than 0",
        ),
        ("[upstream]\nresponse_timeout = 0\n", "2:20", "more than 0"),
        ("[upstream]\nmax_connections = 0\n", "2:19", "at least 1"),
        ("[limits]\nmax_h2_streams = 0\n", "2:18", "at least 1"),
        (
            "[cache]\npurge_prefix_depth = 18446744073709551615\n",
            "2:22",
            "at most 16",
        ),
        ("[cache]\nmemory_mib = 0\n", "2:14", "from 1"),
        ("[cache]\nmax_body = \"2GiB\"\n", "2:12", "at most 1GiB"),
        (
            "[cache]\nstore = \"postgres://db\"\n",
            "2:9",
            "unknown scheme",
        ),
        ("[cache]\nstore = \"memory\"\n", "2:9", "not a store URL"),
        ("[proxy]\nupstream = \"ftp://origin\"\n", "2:12", "http://"),
        ("[proxy]\nadmin_token = \"  \"\n", "2:15", "blank"),
        (
            "[proxy]\nadmin_listen = \"everywhere\"\n",
            "2:16",
            "admin_listen",
        ),
        // Rules that would surprise: at the key that says what is wrong.
        (
            "[[rule]]\npath = \"/\"\nttl = 60\n\n[[rule]]\npath = \"/health\"\nbypass = true\n",
            "6:1",
            "rule 2 (/health) is never used: rule 1 (/)",
        ),
        (
            "[[rule]]\npath = \"/users\"\nttl = 60\ninvalidate = [\"/users\"]\n",
            "4:1",
            "invalidate: it acts after a successful write",
        ),
        (
            "[[rule]]\npath = \"/\"\nmethods = [\"GETT\"]\n",
            "3:1",
            "\"GETT\" is not an HTTP method",
        ),
        (
            "[[rule]]\nttl = 5\npath = \"/users/{id:number}\"\n",
            "3:1",
            "the convertors are",
        ),
    ];
    for (text, at, says) in cases {
        let (_dir, file) = config_file(text);
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_larder-proxy"))
            .args(["check", "--config", file.to_str().unwrap()])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text:?} was accepted");
        assert!(
            err.contains(&format!("larder.toml:{at}:")) && err.contains(says),
            "{text:?}: {err}"
        );
    }
    // Bytes that are not UTF-8: the offset of the first.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("larder.toml");
    std::fs::write(&path, b"[cache]\nmemory_mib = 1 # \xff\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_larder-proxy"))
        .args(["check", "--config", path.to_str().unwrap()])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("larder.toml:2:18:") && err.contains("byte 25"),
        "{err}"
    );
    // And the same values from flags.
    for flags in [
        &["--max-connections", "0"][..],
        &["--idle-timeout", "0s"],
        &["--store", "postgres://db"],
        &["--admin-token", ""],
        &["--upstream", "ftp://x"],
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_larder-proxy"));
        cmd.args(flags)
            .args(["--listen", "127.0.0.1:0", "--admin-listen", "off"])
            .env_remove("LARDER_URL");
        if !flags.contains(&"--upstream") {
            cmd.args(["--upstream", "http://127.0.0.1:9"]);
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flags:?}: {err}");
        assert!(
            err.starts_with("larder-proxy: ") && err.contains(flags[0]),
            "{flags:?}: {err}"
        );
    }
}

/// An upload toward the origin that stalls is cut at the body idle timeout (408), freeing its
/// connection to the origin. Before: 200 slow upload bodies held 200 origin connections for the
/// whole response timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_uploads_are_cut_at_the_body_idle_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    raise_own_limit();
    let origin = CountingOrigin::start().await;
    let proxy = Proxy::start(
        origin.addr,
        &["--body-idle-timeout", "1s", "--upstream-timeout", "60s"],
        &[],
    );
    let mut uploads = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let port = proxy.port;
        uploads.spawn(async move {
            let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .unwrap();
            s.write_all(
                b"POST /upload HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n0123456789",
            )
            .await
            .unwrap();
            let mut reply = vec![0u8; 12];
            // Bounded only so a regression fails instead of hanging: the response timeout is 60 s.
            match tokio::time::timeout(Duration::from_secs(30), s.read_exact(&mut reply)).await {
                Ok(Ok(_)) => String::from_utf8_lossy(&reply).into_owned(),
                Ok(Err(e)) => format!("error: {e}"),
                Err(_) => "no answer in 30 s".to_owned(),
            }
        });
    }
    while let Some(reply) = uploads.join_next().await {
        let reply = reply.unwrap();
        assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    }
}

/// A reload flood collapses (issue 23, point 8): 100 clients sending `Cache-Control: no-cache`
/// or `Pragma: no-cache` to one hot URL for 3 s. Before: one origin call per request (1,000 in
/// 10 s; nginx `proxy_cache` 0). Now about one per response time (the origin takes 100 ms, so
/// at most one call per 100 ms of the flood, and a few at its edges); with the rule's
/// `ignore_client_no_cache`, none after the first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_flood_costs_about_one_origin_call_per_response_time() {
    for (ignore, label) in [(false, "no-cache heeded"), (true, "ignore_client_no_cache")] {
        let origin = CountingOrigin::start().await;
        let (_dir, file) = config_file(&format!(
            "[[rule]]\npath = \"/\"\nignore_client_no_cache = {ignore}\n"
        ));
        let proxy = Proxy::start(origin.addr, &["--config", file.to_str().unwrap()], &[]);
        let url = proxy.url("/reload");
        assert_eq!(get(&url, &[]).await.0, 200);
        let started = std::time::Instant::now();
        let mut clients = tokio::task::JoinSet::new();
        for c in 0..100 {
            let url = url.clone();
            clients.spawn(async move {
                let header = if c % 2 == 0 {
                    ("cache-control", "no-cache")
                } else {
                    ("pragma", "no-cache")
                };
                let mut answered = 0;
                while started.elapsed() < Duration::from_secs(3) {
                    assert_eq!(get(&url, &[header]).await.0, 200);
                    answered += 1;
                }
                answered
            });
        }
        let mut answered = 0;
        while let Some(n) = clients.join_next().await {
            answered += n.unwrap();
        }
        // Each call takes the origin 100 ms and calls do not overlap: the flood's length
        // bounds them (twice over, for calls at its edges).
        let calls = origin.reloads.load(Ordering::SeqCst) - 1;
        let bound = if ignore {
            0
        } else {
            2 * (started.elapsed().as_millis() / 100) as usize + 2
        };
        eprintln!("{label}: {calls} origin calls for {answered} reloads");
        assert!(
            calls <= bound,
            "{label}: {calls} origin calls for {answered} reloads (bound {bound})"
        );
        assert!(answered > 200, "{label}: {answered}");
    }
}

/// A body too large for the memory tier but within `max_body` is stored in, and served from,
/// the remote store (issue 23, point 7). Before: with `--memory-mib 4` and Redis, a 3 MB body
/// (more than half the memory bound, which recordings may hold) was stored nowhere, and every
/// request went to the origin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_too_large_for_memory_is_stored_in_and_served_from_redis() {
    let redis = larder_testkit::RedisServer::start().expect("redis-server");
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = calls.clone();
    let body = bytes::Bytes::from(vec![b'z'; 3 << 20]);
    let origin = Origin::start(Arc::new(move |_req| {
        counted.fetch_add(1, Ordering::SeqCst);
        let body = body.clone();
        Box::pin(async move { full(200, &[("cache-control", "max-age=600")], body) })
    }))
    .await;
    let url = redis.url();
    let proxy = Proxy::start(origin.addr, &["--memory-mib", "4"], &[("LARDER_URL", &url)]);
    let (status, headers, body) = get(&proxy.url("/large"), &[]).await;
    assert_eq!((status, body.len()), (200, 3 << 20));
    assert_eq!(headers["x-cache"], "MISS");
    let mut served = None;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, headers, body) = get(&proxy.url("/large"), &[]).await;
        assert_eq!((status, body.len()), (200, 3 << 20));
        if headers["x-cache"] == "HIT" {
            served = Some(headers);
            break;
        }
    }
    assert!(
        served.is_some(),
        "never served from the store: {} origin calls",
        calls.load(Ordering::SeqCst)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    // A second proxy on the same Redis serves it without asking the origin.
    let other = Proxy::start(origin.addr, &["--memory-mib", "4"], &[("LARDER_URL", &url)]);
    let (_, headers, body) = get(&other.url("/large"), &[]).await;
    assert_eq!(
        (headers["x-cache"].to_str().unwrap(), body.len()),
        ("HIT", 3 << 20)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}
