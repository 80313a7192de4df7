//! Rule globs on hostile paths: larder's automata beside globset (the field's glob matcher, on
//! the same regex engines) in the same run, and the backtracking matcher larder had before, on a
//! path 16 times shorter (on 64 KB it took seconds).
//!
//! `cargo bench -p larder-http --bench rules`

use criterion::{Criterion, criterion_group, criterion_main};
use http::Method;
use larder_http::Rule;
use std::hint::black_box;

#[path = "../src/glob_reference.rs"]
mod glob_reference;
use glob_reference::backtracking;

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
