//! Attack suite, larder-proxy: the cases every surface runs (tests/attacks/cases.json) against a
//! real proxy process in front of a real FastAPI app under uvicorn (tests/attacks/reflect_app.py),
//! and the proxy's own limits under attack. The same cases run against the Rust layer
//! (crates/larder-http/tests/attacks.rs) and larder.asgi (crates/larder-py/tests/test_attack_http.py).

mod common;

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
