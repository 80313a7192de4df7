//! Rule globs on hostile paths: larder's automata beside globset (the field's glob matcher, on
//! the same regex engines) in the same run, and the backtracking matcher larder had before, on a
//! path 16 times shorter (on 64 KB it took seconds).
//!
//! `cargo bench -p larder-http --bench rules`

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use larder_http::Rule;
use std::hint::black_box;

/// The matcher larder had before issue 23: `*` tries every split, `**` every segment count.
fn backtracking(pattern: &str, path: &str) -> bool {
    fn segments(p: &[&str], s: &[&str]) -> bool {
        match p.split_first() {
            None => s.is_empty(),
            Some((&"**", rest)) => (0..=s.len()).any(|k| segments(rest, &s[k..])),
            Some((first, rest)) => match s.split_first() {
                Some((seg, s_rest)) => {
                    one(first.as_bytes(), seg.as_bytes()) && segments(rest, s_rest)
                }
                None => false,
            },
        }
    }
    fn one(p: &[u8], t: &[u8]) -> bool {
        match p.split_first() {
            None => t.is_empty(),
            Some((b'*', rest)) => (0..=t.len()).any(|k| one(rest, &t[k..])),
            Some((c, rest)) => t.first() == Some(c) && one(rest, &t[1..]),
        }
    }
    let p: Vec<&str> = pattern[1..].split('/').collect();
    let s: Vec<&str> = path[1..].split('/').collect();
    segments(&p, &s)
}

fn cases(kb: usize) -> Vec<(&'static str, String)> {
    vec![
        (
            "/assets/*-*.js",
            format!("/assets/{}x", "-".repeat(kb << 10)),
        ),
        ("/*-*-*", format!("/{}-", "a".repeat(kb << 10))),
        ("/**/a/**/*.js", format!("{}/x.css", "/a".repeat(kb << 9))),
    ]
}

fn bench(c: &mut Criterion) {
    let mut group = c.benchmark_group("glob on a hostile 64 KB path");
    for (pattern, path) in cases(64) {
        let rule = Rule::path(pattern).unwrap();
        group.bench_function(format!("larder {pattern}"), |b| {
            b.iter(|| black_box(rule.matches(&Method::GET, black_box(&path))))
        });
        let glob = globset::GlobBuilder::new(pattern)
            .literal_separator(true)
            .build()
            .unwrap()
            .compile_matcher();
        group.bench_function(format!("globset {pattern}"), |b| {
            b.iter(|| black_box(glob.is_match(black_box(&path))))
        });
    }
    group.finish();
    let mut before = c.benchmark_group("glob on a hostile 4 KB path");
    before.sample_size(10);
    for (pattern, path) in cases(4) {
        let rule = Rule::path(pattern).unwrap();
        before.bench_function(format!("larder {pattern}"), |b| {
            b.iter(|| black_box(rule.matches(&Method::GET, black_box(&path))))
        });
        before.bench_function(format!("backtracking (before) {pattern}"), |b| {
            b.iter(|| black_box(backtracking(pattern, black_box(&path))))
        });
    }
    before.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
