//! The proxy's server as a hostile client and an unlucky operator meet it: slowloris heads,
//! idle keep-alive connections, a connection cap, a descriptor limit, HTTP/2 by prior knowledge,
//! malformed request bodies, GETs with bodies, and an origin that stalls mid-body. Every test runs
//! the real `larder-proxy` binary in front of a real origin on loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use http_body_util::BodyExt;

/// An origin with a few routes: `/ok` (cacheable), `/echo` (says what body it got), `/stall`
/// (half a body, then nothing), anything else 404.
async fn origin() -> (Origin, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let seen = calls.clone();
    let origin = Origin::start(Arc::new(
        move |req: http::Request<hyper::body::Incoming>| {
            let n = seen.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                match req.uri().path() {
                    "/ok" => full(200, &[("cache-control", "max-age=60")], "ok"),
                    "/echo" => {
                        let method = req.method().clone();
                        let body = req.into_body().collect().await;
                        match body {
                            Ok(b) => full(
                                200,
                                &[],
                                format!("{method} with {} bytes", b.to_bytes().len()),
                            ),
                            Err(e) => full(500, &[], format!("bad body: {e}")),
                        }
                    }
                    "/stall" => {
                        let (tx, rx) =
                            tokio::sync::mpsc::channel::<Result<http_body::Frame<Bytes>, _>>(1);
                        let _ = tx
                            .send(Ok(http_body::Frame::data(Bytes::from_static(b"half "))))
                            .await;
                        tokio::spawn(async move {
                            // Holds the body open, sending nothing more, for longer than any test.
                            tokio::time::sleep(Duration::from_secs(600)).await;
                            drop(tx);
                        });
                        let body = http_body_util::StreamBody::new(tokio_stream(rx))
                            .map_err(
                                |e: std::io::Error| -> Box<dyn std::error::Error + Send + Sync> {
                                    Box::new(e)
                                },
                            )
                            .boxed();
                        http::Response::builder()
                            .header("cache-control", "max-age=60")
                            .header("x-call", n.to_string())
                            .body(body)
                            .unwrap()
                    }
                    _ => full(404, &[], "no"),
                }
            })
        },
    ))
    .await;
    (origin, calls)
}

fn tokio_stream<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> + Send {
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|v| (v, rx)) })
}

/// Whether the server closed `s` (EOF or reset) within `limit`.
fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    s.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_head_is_cut_at_the_header_read_timeout_while_others_are_served() {
    let (origin, _) = origin().await;
    let proxy = Proxy::start(
        origin.addr,
        &["--header-read-timeout", "1", "--idle-timeout", "30"],
        &[],
    );
    let mut slow: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
            s.write_all(b"GET /ok HTTP/1.1\r\nHost: a.test\r\nX-Slow: ")
                .unwrap();
            s
        })
        .collect();
    // Meanwhile a normal client is served.
    let (status, _, body) = get(&proxy.url("/ok"), &[]).await;
    assert_eq!((status, &body[..]), (200, &b"ok"[..]));
    let started = Instant::now();
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(10)),
            "a slowloris connection stayed open"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let (origin, _) = origin().await;
    let proxy = Proxy::start(origin.addr, &["--idle-timeout", "1"], &[]);
    let mut s = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    s.write_all(b"GET /ok HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert!(
        closed_within(&mut s, Duration::from_secs(10)),
        "kept open past the idle timeout"
    );
    // A connection that never says anything goes the same way.
    let mut silent = TcpStream::connect(("127.0.0.1", proxy.port)).unwrap();
    assert!(closed_within(&mut silent, Duration::from_secs(10)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_cap_new_clients_wait_for_a_slot() {
    let (origin, _) = origin().await;
    let proxy = Proxy::start(
        origin.addr,
        &["--max-connections", "4", "--idle-timeout", "3"],
        &[],
    );
    let held: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).unwrap())
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let url = proxy.url("/ok");
    let fifth = tokio::spawn(async move { get(&url, &[]).await.0 });
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !fifth.is_finished(),
        "served while four connections held every slot"
    );
    drop(held);
    let status = tokio::time::timeout(Duration::from_secs(10), fifth)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn out_of_descriptors_the_accept_loop_waits_quietly_and_recovers() {
    let (origin, _) = origin().await;
    // 64 descriptors, and a connection cap the limit cannot honour: accept() must hit EMFILE.
    let proxy = Proxy::start_with(
        origin.addr,
        &[
            "--max-connections",
            "1000",
            "--idle-timeout",
            "30",
            "--header-read-timeout",
            "30",
        ],
        &[],
        Some(64),
    );
    let flood: Vec<TcpStream> = (0..120)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", proxy.port)).ok())
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = proxy.cpu_ticks();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = proxy.cpu_ticks() - before;
    // Clock ticks are 10 ms: a loop retrying accept() at once burns ~200 in 2 s.
    assert!(used < 50, "the accept loop spun: {used} ticks in 2 s");
    let log = proxy.log_text();
    let warnings = log.matches("cannot accept connections").count();
    assert_eq!(
        warnings,
        1,
        "one warning per episode ({} connections open):\n{log}",
        flood.len()
    );
    drop(flood);
    let url = proxy.url("/ok");
    let status = tokio::time::timeout(Duration::from_secs(10), async move {
        loop {
            let s = get(&url, &[]).await.0;
            if s == 200 {
                return s;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await
    .expect("served again once descriptors were free");
    assert_eq!(status, 200);
    assert!(proxy.log_text().contains("accepting connections again"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_by_prior_knowledge_is_served_and_cached() {
    let (origin, calls) = origin().await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<http_body_util::Empty<Bytes>>();
    for expected in ["MISS", "HIT"] {
        let resp = client
            .request(
                http::Request::get(proxy.url("/ok"))
                    .body(http_body_util::Empty::new())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["x-cache"], expected);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
    }
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_chunked_body_is_a_400_not_a_502() {
    let (origin, _) = origin().await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    let port = proxy.port;
    let reply = tokio::task::spawn_blocking(move || {
        raw_exchange(
            port,
            b"POST /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot hex\r\n",
            Duration::from_secs(10),
        )
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_get_with_a_chunked_body_reaches_the_origin_whole() {
    let (origin, _) = origin().await;
    let proxy = Proxy::start(origin.addr, &[], &[]);
    let port = proxy.port;
    let reply = tokio::task::spawn_blocking(move || {
        raw_exchange(
            port,
            b"GET /echo HTTP/1.1\r\nHost: a.test\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n4\r\nbody\r\n0\r\n\r\n",
            Duration::from_secs(10),
        )
    })
    .await
    .unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("GET with 4 bytes"), "{reply}");
    assert!(
        reply.to_ascii_lowercase().contains("x-cache: bypass"),
        "{reply}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_body_that_stalls_upstream_cuts_its_readers_and_the_next_request_refetches() {
    let (origin, calls) = origin().await;
    let proxy = Proxy::start(origin.addr, &["--body-idle-timeout", "1"], &[]);
    let url = proxy.url("/stall");
    let readers: Vec<_> = (0..3)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { get_body(&url).await.1 })
        })
        .collect();
    for r in readers {
        let cut = tokio::time::timeout(Duration::from_secs(10), r)
            .await
            .expect("cut in time")
            .unwrap();
        assert!(
            cut.is_err(),
            "a stalled body must end in an error, not look complete"
        );
    }
    let before = calls.load(Ordering::SeqCst);
    assert!(before >= 1);
    let again = tokio::time::timeout(Duration::from_secs(10), get_head(&url))
        .await
        .expect("a head in time");
    assert_eq!(again["x-cache"], "MISS", "nothing stalled was stored");
    assert_eq!(calls.load(Ordering::SeqCst), before + 1, "a fresh fill");
}
