//! `alertctx explain`: bundles replayed from their provenance come out byte for byte the same,
//! including with the wall clock as reference time; a changed bundle is caught; and the
//! attribution names the rules, enrichers and checks that made each part.

mod common;

use alertctx::explain::{explain, ExplainArgs, Verdict};
use common::*;
use std::path::PathBuf;

fn args(config: Option<PathBuf>, inputs: Vec<PathBuf>) -> ExplainArgs {
    ExplainArgs {
        config,
        line: 1,
        inputs,
        brokers: None,
        bundles: PathBuf::from("-"),
    }
}

/// Run `alertctx process` (with the clock as reference time) over `inputs`; its bundles.
fn process(config: &std::path::Path, inputs: &[PathBuf]) -> Vec<String> {
    let res = succeed(
        alertctx()
            .current_dir(repo())
            .args(["process", "--quiet", "--threads", "2", "--config"])
            .arg(config)
            .args(inputs),
    );
    String::from_utf8(res.stdout)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn wall_clock_config(dir: &std::path::Path) -> PathBuf {
    config_with_reference_time(dir, "wall")
}

#[test]
fn every_bundle_of_a_run_replays_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wall_clock_config(dir.path());
    // Relative paths, as an operator would type them; the provenance keeps them as given, and
    // explain opens them from the working directory (the repository root under cargo test).
    let inputs: Vec<PathBuf> = fixture_files()
        .into_iter()
        .map(|(_, p)| PathBuf::from(rel(&p)))
        .collect();
    let bundles = process(&cfg, &inputs);
    assert!(bundles.len() > 300);
    let mut checked = 0;
    let mut envelopes = 0;
    // Every 7th bundle (each replay re-reads the inputs up to its record), and the last.
    for (i, b) in bundles
        .iter()
        .enumerate()
        .filter(|(i, _)| i % 7 == 0 || *i == bundles.len() - 1)
    {
        let v: serde_json::Value = serde_json::from_str(b).unwrap();
        assert!(
            v["provenance"]["reference_time"].as_i64().is_some(),
            "the clock reading is recorded"
        );
        let e = explain(b, &args(Some(cfg.clone()), inputs.clone())).unwrap();
        assert_eq!(e.verdict, Verdict::Identical, "bundle {i}: {b}");
        assert!(e.mismatches.is_empty(), "{:?}", e.mismatches);
        assert!(e.dedup_replayed);
        // Every alert attribute is attributed, and a mapped record names its mapping rule.
        assert!(!e.fields.is_empty());
        if v["provenance"]["class_rule"].is_string() {
            let source = v["provenance"]["source"].as_str().unwrap();
            assert!(
                e.fields
                    .values()
                    .any(|w| w.contains(&format!("mapping `{source}`"))),
                "{:?}",
                e.fields
            );
        }
        // Every gap and every tag is attributed to a stage.
        assert_eq!(e.gaps.len(), v["quality"]["gaps"].as_array().unwrap().len());
        assert!(
            e.tags.iter().all(|(_, who)| !who.starts_with('?')),
            "{:?}",
            e.tags
        );
        assert_eq!(
            e.enrichment.len(),
            v["entities"].as_array().unwrap().len() + v["enrichment"].as_array().unwrap().len()
        );
        if v["provenance"]["index"].is_u64() {
            envelopes += 1;
        }
        checked += 1;
    }
    assert!(
        checked > 40 && envelopes > 0,
        "{checked} bundles, {envelopes} from envelopes"
    );
}

#[test]
fn a_changed_bundle_or_configuration_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wall_clock_config(dir.path());
    let input = PathBuf::from("tests/fixtures/suricata/eve.ndjson");
    let bundles = process(&cfg, std::slice::from_ref(&input));
    let alert = bundles
        .iter()
        .find(|b| b.contains("\"class_uid\":2004"))
        .unwrap();

    // An edited severity: the replay differs in the alert layer, at that attribute.
    let mut v: serde_json::Value = serde_json::from_str(alert).unwrap();
    let old = v["alert"]["severity_id"].as_i64().unwrap();
    v["alert"]["severity_id"] = serde_json::json!(old % 5 + 1);
    let e = explain(
        &serde_json::to_string(&v).unwrap(),
        &args(Some(cfg.clone()), vec![]),
    )
    .unwrap();
    match e.verdict {
        Verdict::Differs { layers, first } => {
            assert_eq!(layers, vec!["alert".to_string()]);
            assert!(first.starts_with("/alert/severity_id"), "{first}");
        }
        other => panic!("{other:?}"),
    }

    // The embedded configuration (no enrichers) is not the one the bundle names.
    let e = explain(alert, &args(None, vec![])).unwrap();
    let what: Vec<&str> = e.mismatches.iter().map(|(w, _, _)| w.as_str()).collect();
    assert!(
        what.contains(&"configuration hash") && what.contains(&"reference data `cmdb`"),
        "{what:?}"
    );
    assert!(matches!(e.verdict, Verdict::Differs { .. }));
}

#[test]
fn explain_prints_the_attribution() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = wall_clock_config(dir.path());
    let bundles = process(&cfg, &[PathBuf::from("tests/fixtures/suricata/eve.ndjson")]);
    let file = dir.path().join("bundles.ndjson");
    std::fs::write(&file, bundles.join("\n")).unwrap();
    let line = bundles
        .iter()
        .position(|b| b.contains("\"class_uid\":2004"))
        .unwrap()
        + 1;
    let res = succeed(
        alertctx()
            .current_dir(repo())
            .args(["explain", "--line", &line.to_string(), "--config"])
            .arg(&cfg)
            .arg(&file),
    );
    let out = String::from_utf8(res.stdout).unwrap();
    assert!(out.contains("replay: identical, byte for byte"), "{out}");
    assert!(
        out.contains("src_endpoint.ip") && out.contains("from `src_ip`, as ip"),
        "{out}"
    );
    assert!(out.contains("tag rule `"), "{out}");
    assert!(
        out.contains("enricher `cmdb` (asset, data sha256:"),
        "{out}"
    );
}
