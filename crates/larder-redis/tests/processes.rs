//! Several OS processes sharing one Redis, as the replicas of an API do: every kind of
//! invalidation made by one reaches the memory tiers of the others; after Redis is killed and
//! restarted they drop what they held; and 4 processes x 250 concurrent callers of one cold key
//! run the factory once with the distributed lock (and more than once without it).
//!
//! The processes are this test binary started again: `child` below does nothing unless
//! `LARDER_TEST_CHILD` names a role. Parent and child talk in lines on stdin/stdout; the child's
//! answers follow `@@ `, so the test harness's own output is ignored.

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use larder::{Cache, EntryOptions};
use larder_testkit::{RedisServer, eventually};

const ROLE: &str = "LARDER_TEST_CHILD";
const REDIS: &str = "LARDER_TEST_REDIS";
const LOCK: &str = "LARDER_TEST_LOCK";

// ---- the child side -------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn child() {
    let Ok(role) = std::env::var(ROLE) else {
        return; // an ordinary test run: nothing to do
    };
    let url = std::env::var(REDIS).expect("the parent passes the Redis URL");
    let cache = Cache::builder()
        .remote_url(&url)
        .unwrap()
        .default_options(EntryOptions::new().ttl(Duration::from_secs(3600)))
        .build();
    assert!(
        eventually(Duration::from_secs(10), async || cache
            .stats()
            .backplane_connected)
        .await,
        "child never subscribed"
    );
    let stdin = stdin_lines();
    say("ready");
    match role.as_str() {
        "stampede" => stampede(&cache, &stdin).await,
        "replica" => replica(&cache, &stdin).await,
        other => panic!("unknown role {other}"),
    }
}

fn say(line: &str) {
    println!("@@ {line}");
    let _ = std::io::stdout().flush();
}

/// The child's stdin, read on a thread of its own so waiting for a line never blocks the runtime.
fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

async fn next_line(rx: &mpsc::Receiver<String>) -> String {
    loop {
        match rx.try_recv() {
            Ok(line) => return line,
            Err(mpsc::TryRecvError::Empty) => tokio::time::sleep(Duration::from_millis(1)).await,
            Err(mpsc::TryRecvError::Disconnected) => return "quit".into(),
        }
    }
}

/// On "go", 250 concurrent callers of one cold key; reports the factory runs here and the values.
async fn stampede(cache: &Cache, stdin: &mpsc::Receiver<String>) {
    assert_eq!(next_line(stdin).await, "go");
    let lock = std::env::var(LOCK).as_deref() == Ok("on");
    let opts = if lock {
        EntryOptions::new().distributed_lock(Duration::from_secs(20))
    } else {
        EntryOptions::new()
    };
    let runs = Arc::new(AtomicUsize::new(0));
    let pid = std::process::id();
    let calls: Vec<_> = (0..250)
        .map(|_| {
            let (cache, runs, opts) = (cache.clone(), runs.clone(), opts.clone());
            tokio::spawn(async move {
                cache
                    .get_or_fetch_with("the-report", opts, move || async move {
                        runs.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        Ok::<_, String>(format!("made-by-{pid}"))
                    })
                    .await
                    .map(|v| v.as_str().to_owned())
            })
        })
        .collect();
    let mut values = std::collections::BTreeSet::new();
    for c in calls {
        values.insert(c.await.unwrap().unwrap());
    }
    let values: Vec<String> = values.into_iter().collect();
    say(&format!(
        "runs {} values {}",
        runs.load(Ordering::SeqCst),
        values.join(",")
    ));
}

/// Answers reads of its own cache (memory first), so the parent can see what it serves.
async fn replica(cache: &Cache, stdin: &mpsc::Receiver<String>) {
    loop {
        let line = next_line(stdin).await;
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["get", ns, key] => say(&served(cache, ns, key).await),
            // Waits (up to 5 s) until it serves `want` ("none" for nothing).
            ["wait", ns, key, want] => {
                let ok = eventually(Duration::from_secs(5), async || {
                    served(cache, ns, key).await == *want
                })
                .await;
                say(if ok { "ok" } else { "timeout" });
            }
            // Waits (up to 5 s) until it has applied `n` messages from other nodes.
            ["heard", n] => {
                let n: u64 = n.parse().expect("a count");
                let ok = eventually(Duration::from_secs(5), async || {
                    cache.stats().backplane_received >= n
                })
                .await;
                say(if ok { "ok" } else { "timeout" });
            }
            ["quit"] => return,
            _ => say(&format!("unknown {line}")),
        }
    }
}

/// What `cache` serves under `ns`/`key` ("-" is the default namespace).
async fn served(cache: &Cache, ns: &str, key: &str) -> String {
    let handle = if ns == "-" {
        cache.clone()
    } else {
        cache.namespace(ns.to_owned())
    };
    match handle.get::<String>(key).await.unwrap() {
        Some(v) => v.as_str().to_owned(),
        None => "none".into(),
    }
}

// ---- the parent side ------------------------------------------------------------------------

/// A child process and the lines it answers.
struct Proc {
    child: Child,
    stdin: ChildStdin,
    answers: mpsc::Receiver<String>,
}

impl Proc {
    fn start(role: &str, redis: &str, lock: bool) -> Self {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["child", "--exact", "--nocapture", "--test-threads", "1"])
            .env(ROLE, role)
            .env(REDIS, redis)
            .env(LOCK, if lock { "on" } else { "off" })
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start a child process");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, answers) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                // The harness may print `test child ... ` on the line the first answer lands on.
                if let Some(at) = line.find("@@ ")
                    && tx.send(line[at + 3..].to_owned()).is_err()
                {
                    return;
                }
            }
        });
        Self {
            child,
            stdin,
            answers,
        }
    }

    fn send(&mut self, line: &str) {
        writeln!(self.stdin, "{line}").unwrap();
        self.stdin.flush().unwrap();
    }

    fn answer(&self) -> String {
        self.answers
            .recv_timeout(Duration::from_secs(30))
            .expect("the child answers within 30 s")
    }

    fn ask(&mut self, line: &str) -> String {
        self.send(line);
        self.answer()
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = writeln!(self.stdin, "quit");
        if !matches!(self.child.try_wait(), Ok(Some(_))) {
            std::thread::sleep(Duration::from_millis(200));
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// 4 processes x 250 callers, started together; the total factory runs and every value seen.
fn stampede_across_processes(redis: &RedisServer, lock: bool) -> (usize, Vec<String>) {
    let mut procs: Vec<Proc> = (0..4)
        .map(|_| Proc::start("stampede", &redis.url(), lock))
        .collect();
    for p in &procs {
        assert_eq!(p.answer(), "ready");
    }
    for p in &mut procs {
        p.send("go");
    }
    let (mut runs, mut values) = (0, Vec::new());
    for p in &procs {
        let answer = p.answer();
        let mut words = answer.split_whitespace();
        assert_eq!(words.next(), Some("runs"), "{answer}");
        runs += words.next().unwrap().parse::<usize>().unwrap();
        assert_eq!(words.next(), Some("values"), "{answer}");
        values.extend(words.next().unwrap().split(',').map(str::to_owned));
    }
    (runs, values)
}

#[test]
fn four_processes_of_250_callers_run_the_factory_once_with_the_lock() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let redis = RedisServer::start().expect("redis-server");
    let (runs, mut values) = stampede_across_processes(&redis, true);
    values.dedup();
    assert_eq!(runs, 1, "one run for 1,000 callers in 4 processes");
    assert_eq!(
        values.len(),
        1,
        "every caller got that run's value: {values:?}"
    );

    // The same without the lock: each process runs its own, which is what the lock saves.
    redis.command(&["FLUSHALL"]).unwrap();
    let (runs, _) = stampede_across_processes(&redis, false);
    assert!(
        runs > 1,
        "without the lock the processes each ran it ({runs})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalidations_reach_other_processes_and_a_restart_makes_them_resync() {
    if std::env::var(ROLE).is_ok() {
        return;
    }
    let mut redis = RedisServer::start().expect("redis-server");
    let writer = Cache::builder()
        .remote_url(&redis.url())
        .unwrap()
        .default_options(EntryOptions::new().ttl(Duration::from_secs(3600)))
        .build();
    assert!(
        eventually(Duration::from_secs(10), async || writer
            .stats()
            .backplane_connected)
        .await
    );
    let mut replicas: Vec<Proc> = (0..3)
        .map(|_| Proc::start("replica", &redis.url(), false))
        .collect();
    for r in &replicas {
        assert_eq!(r.answer(), "ready");
    }
    let all = |replicas: &mut Vec<Proc>, line: &str, want: &str| {
        for r in replicas.iter_mut() {
            assert_eq!(r.ask(line), want, "{line}");
        }
    };

    // Set: the replicas hold "v1" in memory; "v2" replaces it everywhere.
    writer.set("k", "v1".to_string()).await.unwrap();
    all(&mut replicas, "get - k", "v1");
    writer.set("k", "v2".to_string()).await.unwrap();
    all(&mut replicas, "wait - k v2", "ok");

    // Delete.
    writer.delete("k").await;
    all(&mut replicas, "wait - k none", "ok");

    // Namespace clear.
    let users = writer.namespace("users");
    users.set("1", "ada".to_string()).await.unwrap();
    all(&mut replicas, "get users 1", "ada");
    users.clear().await;
    all(&mut replicas, "wait users 1 none", "ok");

    // Tag invalidation.
    writer
        .set_with(
            "profile",
            "p".to_string(),
            EntryOptions::new()
                .ttl(Duration::from_secs(3600))
                .tags(["user:1"]),
        )
        .await
        .unwrap();
    all(&mut replicas, "get - profile", "p");
    writer.invalidate_tag("user:1").await;
    all(&mut replicas, "wait - profile none", "ok");

    // Resync: the replicas hold "kept" in memory; Redis dies and comes back empty, and they
    // must drop it (they cannot know what changed meanwhile).
    writer.set("kept", "before".to_string()).await.unwrap();
    // Every message the writer sent is behind the replicas before they read: one arriving after
    // the read would evict what they just read, and the outage would find their memory empty.
    let sent = writer.stats().backplane_published;
    all(&mut replicas, &format!("heard {sent}"), "ok");
    all(&mut replicas, "get - kept", "before");
    redis.kill();
    all(&mut replicas, "get - kept", "before"); // memory serves during the outage
    redis.restart().unwrap();
    all(&mut replicas, "wait - kept none", "ok");
}
