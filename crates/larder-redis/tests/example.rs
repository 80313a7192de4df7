//! The `two_tier` example, really started (cargo test builds it) as two processes sharing a
//! redis-server: an update through one replica is what the other serves, at once.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use larder_testkit::{ExampleProcess, RedisServer, free_port};

fn replica(port: u16, redis: &str) -> ExampleProcess {
    let port = port.to_string();
    ExampleProcess::start("two_tier", &[], &[("PORTS", &port), ("REDIS_URL", redis)])
        .expect("start the two_tier example")
}

/// One HTTP/1.1 exchange; the status and the body.
fn http(method: &str, port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut raw = String::new();
    s.read_to_string(&mut raw).ok()?;
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    let body = raw.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

fn wait_up(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if http("GET", port, "/stats").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no replica answered on port {port}");
}

fn price(port: u16) -> String {
    let (status, body) = http("GET", port, "/products/7").expect("an answer");
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    v["product"]["price_cents"].to_string()
}

#[test]
fn an_update_through_one_replica_is_served_by_the_other() {
    let redis = RedisServer::start().expect("redis-server");
    let (pa, pb) = (free_port().unwrap(), free_port().unwrap());
    let _a = replica(pa, &redis.url());
    let _b = replica(pb, &redis.url());
    wait_up(pa);
    wait_up(pb);

    assert_eq!(price(pa), "700", "from the database");
    assert_eq!(price(pb), "700", "from Redis, now in b's memory too");
    let (status, _) = http("PUT", pa, "/products/7?price_cents=999").unwrap();
    assert_eq!(status, 200);
    // b's memory held 700 for ten minutes; the backplane message makes it let go.
    let deadline = Instant::now() + Duration::from_secs(2);
    while price(pb) != "999" {
        assert!(Instant::now() < deadline, "b still serves the old price");
        std::thread::sleep(Duration::from_millis(5));
    }

    let (status, _) = http("GET", pa, "/products/abc").unwrap();
    assert_eq!(status, 400, "a bad id is a clear error");
    let (status, _) = http("PUT", pa, "/products/7?price_cents=-1").unwrap();
    assert_eq!(status, 400);
}
