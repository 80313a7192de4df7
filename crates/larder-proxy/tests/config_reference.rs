//! docs/CONFIG.md against the configuration schema: every key the proxy reads is in the
//! reference, every key in the reference is one it reads, and every example parses.

mod common;

use std::collections::BTreeSet;

use larder_proxy::config::File;

/// The reference's rows by section: (section header, key, example fragments).
fn reference() -> Vec<(String, String, Vec<String>)> {
    let text = std::fs::read_to_string(common::repo_root().join("docs/CONFIG.md")).unwrap();
    let mut section = String::new();
    let mut rows = Vec::new();
    for line in text.lines() {
        if let Some(title) = line.strip_prefix("## ") {
            section = title.trim_matches('`').to_owned();
            continue;
        }
        if !line.starts_with("| `") {
            continue;
        }
        let cells: Vec<&str> = line.split(" | ").collect();
        let key = cells[0]
            .trim_start_matches("| ")
            .trim_matches('`')
            .to_owned();
        let example = cells[3]
            .split("<br>")
            .map(|f| f.trim().trim_matches('`').to_owned())
            .collect();
        rows.push((section.clone(), key, example));
    }
    rows
}

/// The keys the schema takes in a section, as serde lists them for an unknown one.
fn schema_keys(section: &str) -> BTreeSet<String> {
    let text = match section {
        "[[rule]]" => "[[rule]]\npath = \"/\"\nnot_a_key = 1\n".to_owned(),
        s => format!("{s}\nnot_a_key = 1\n"),
    };
    let err = File::parse(&text, "schema").unwrap_err().to_string();
    // serde lists the keys as "expected one of `a`, `b`" or "expected `a` or `b`".
    let (_, listed) = err.split_once("expected").expect(&err);
    let listed = listed.trim_start().trim_start_matches("one of");
    listed
        .split([','])
        .flat_map(|k| k.split(" or "))
        .map(|k| k.trim().trim_matches('`').to_owned())
        .collect()
}

#[test]
fn every_key_is_documented_and_every_documented_key_exists() {
    let rows = reference();
    for section in [
        "[proxy]",
        "[cache]",
        "[limits]",
        "[upstream]",
        "[tls]",
        "[[tls.certificate]]",
        "[compression]",
        "[[rule]]",
    ] {
        let documented: BTreeSet<String> = rows
            .iter()
            .filter(|(s, _, _)| s == section)
            .map(|(_, k, _)| k.clone())
            .collect();
        assert_eq!(documented, schema_keys(section), "{section}");
    }
}

#[test]
fn every_example_parses() {
    for (section, key, example) in reference() {
        assert!(
            example[0].starts_with(&format!("{key} =")),
            "{section} {key}: the example sets another key: {example:?}"
        );
        let mut text = format!("{section}\n");
        // What the section requires beside the key shown.
        let required: &[&str] = match section.as_str() {
            "[[rule]]" => &["path = \"/\""],
            "[tls]" => &[
                "listen = \"127.0.0.1:8443\"",
                "cert = \"c.pem\"",
                "key = \"k.pem\"",
            ],
            "[[tls.certificate]]" => {
                text = "[tls]\nlisten = \"127.0.0.1:8443\"\ncert = \"c.pem\"\nkey = \"k.pem\"\n[[tls.certificate]]\n".to_owned();
                &[]
            }
            _ => &[],
        };
        for r in required {
            let name = r.split(" =").next().unwrap_or_default();
            if !example.iter().any(|f| f.starts_with(&format!("{name} ="))) {
                text.push_str(r);
                text.push('\n');
            }
        }
        for fragment in &example {
            text.push_str(fragment);
            text.push('\n');
        }
        if let Err(e) = File::parse(&text, "CONFIG.md") {
            panic!("{section} {key}: {e}\n{text}");
        }
    }
}
