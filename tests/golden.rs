//! Golden-file tests: every fixture in tests/fixtures/<source>/ is run through the core and
//! compared, outcome by outcome, with tests/golden/<source>/<file>.ndjson. Every bundle is
//! validated against the published JSON Schema, and every record must be accounted for.
//!
//! After an intended change, regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and
//! review the diff.

mod common;

use alertctx::pipeline::{Outcome, Pipeline};
use common::*;
use serde_json::{json, Value};

/// One outcome as a golden line. Build commit and config hash change with every commit, so
/// they are masked.
fn golden_line(o: &Outcome) -> Value {
    match o {
        Outcome::Bundle { json, key, .. } => {
            let mut v: Value = serde_json::from_str(json).unwrap();
            v["provenance"]["pipeline"]["build_commit"] = json!("(masked)");
            v["provenance"]["pipeline"]["config_hash"] = json!("(masked)");
            json!({"bundle": v, "key": key})
        }
        Outcome::Duplicate {
            source,
            class_uid,
            fingerprint,
        } => {
            json!({"duplicate": {"source": source, "class_uid": class_uid, "fingerprint": fingerprint}})
        }
        Outcome::DeadLetter(d) => json!({"dead_letter": d}),
    }
}

#[test]
fn fixtures_match_golden_files() {
    let schema = SchemaCheck::new();
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut failures = Vec::new();
    let mut sources_seen = std::collections::BTreeSet::new();
    let files = fixture_files();
    assert!(!files.is_empty(), "no fixtures");
    for (source, path) in files {
        // A fresh pipeline per file, so dedup state does not leak between files.
        let mut pipeline = Pipeline::from_config(&test_config()).unwrap();
        let data = std::fs::read(&path).unwrap();
        let outcomes = run(&mut pipeline, &rel(&path), &data);
        assert!(!outcomes.is_empty(), "{} produced nothing", rel(&path));
        let mut text = String::new();
        for o in &outcomes {
            if let Outcome::Bundle { json, report, .. } = o {
                schema.check(&serde_json::from_str(json).unwrap());
                sources_seen.insert(report.source.clone());
            }
            text.push_str(&serde_json::to_string(&golden_line(o)).unwrap());
            text.push('\n');
        }
        let golden = repo().join("tests/golden").join(&source).join(format!(
            "{}.ndjson",
            path.file_name().unwrap().to_string_lossy()
        ));
        if update {
            std::fs::create_dir_all(golden.parent().unwrap()).unwrap();
            std::fs::write(&golden, &text).unwrap();
            continue;
        }
        match std::fs::read_to_string(&golden) {
            Ok(want) if want == text => {}
            Ok(want) => {
                let first_diff = want.lines().zip(text.lines()).position(|(a, b)| a != b);
                failures.push(format!(
                    "{}: differs from {} (first differing outcome: {:?}; {} vs {} lines)",
                    rel(&path),
                    rel(&golden),
                    first_diff.map(|i| i + 1),
                    want.lines().count(),
                    text.lines().count()
                ));
            }
            Err(_) => failures.push(format!(
                "{}: no golden file {} (run with UPDATE_GOLDEN=1)",
                rel(&path),
                rel(&golden)
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for m in alertctx::normalize::Normalizer::embedded(vec![])
        .unwrap()
        .mappings()
    {
        assert!(
            sources_seen.contains(&m.id),
            "mapping `{}` has no fixture that produces a bundle",
            m.id
        );
    }
}
