//! The testkit's servers really start, answer, die and come back.

use larder_testkit::{MemcachedServer, RedisCluster, RedisServer};

#[test]
fn redis_server_starts_kills_and_restarts_on_its_port() {
    let mut redis = RedisServer::start().expect("redis-server");
    let port = redis.port();
    redis.command(&["SET", "k", "v"]).unwrap();
    assert_eq!(redis.command(&["GET", "k"]).unwrap(), "v");
    redis.kill();
    assert!(!redis.is_running());
    assert!(
        redis.command(&["PING"]).is_err(),
        "a killed server answers nothing"
    );
    redis.restart().unwrap();
    assert_eq!(redis.port(), port);
    assert_eq!(
        redis.command(&["GET", "k"]).unwrap(),
        "",
        "nothing survives a restart"
    );
}

#[test]
fn redis_password_is_required() {
    let redis = RedisServer::builder().password("pw").start().unwrap();
    assert!(redis.url().contains(":pw@"));
    let err = redis.command(&["GET", "k"]).unwrap_err().to_string();
    assert!(err.contains("NOAUTH"), "{err}");
}

#[test]
fn memcached_starts_and_restarts() {
    let mut mc = MemcachedServer::start().expect("memcached");
    assert!(mc.url().starts_with("memcached://127.0.0.1:"));
    mc.kill();
    mc.restart().unwrap();
    assert!(mc.is_running());
}

#[test]
fn cluster_of_three_masters_survives_a_node_restart() {
    let mut cluster = RedisCluster::start(3).expect("redis cluster");
    assert_eq!(cluster.len(), 3);
    let info = cluster.command(0, &["CLUSTER", "INFO"]).unwrap();
    assert!(info.contains("cluster_size:3"), "{info}");
    cluster.kill_node(2);
    cluster.restart_node(2).unwrap();
    assert!(cluster.url().starts_with("redis+cluster://127.0.0.1:"));
}
