//! Helpers shared by the integration tests.
#![allow(dead_code)]

pub mod kafka;
pub mod watchdog;

use alertctx::config::Config;
use alertctx::decode::framing::frame_all;
use alertctx::pipeline::{Outcome, Pipeline, RecordContext};
use std::path::{Path, PathBuf};

/// The `alertctx` binary this test build made.
pub fn alertctx() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_alertctx"))
}

/// A configuration file in `dir` with the repository's example reference data and the given
/// `quality.reference_time` (`wall`, `none` or an RFC 3339 time).
pub fn config_with_reference_time(dir: &Path, reference_time: &str) -> PathBuf {
    let cfg = dir.join("alertctx.toml");
    std::fs::write(
        &cfg,
        format!(
            "[pipeline]\nenrichers = {:?}\n[quality]\nreference_time = {reference_time:?}\n",
            repo().join("enrichers").to_str().unwrap()
        ),
    )
    .unwrap();
    cfg
}

/// Suricata alerts from public addresses, one a line: two the test City database places
/// (London and Linköping, `common/mmdb.rs`), one in no test database (8.8.8.8), and London's
/// neighbour. The examples and fixtures use documentation and private addresses only, which
/// geo never looks up; these make it look up.
pub fn public_alerts() -> Vec<String> {
    ["81.2.69.142", "89.160.20.115", "8.8.8.8", "81.2.69.143"]
        .iter()
        .enumerate()
        .map(|(i, ip)| {
            format!(
                "{{\"timestamp\":\"2026-03-14T09:1{i}:03Z\",\"flow_id\":{i},\"event_type\":\"alert\",\"src_ip\":\"{ip}\",\"src_port\":4431,\"dest_ip\":\"10.30.5.10\",\"dest_port\":443,\"proto\":\"TCP\",\"alert\":{{\"signature_id\":{},\"signature\":\"ET POLICY test {i}\",\"category\":\"Misc activity\",\"severity\":3}}}}",
                2_100_000 + i
            )
        })
        .collect()
}

/// The public addresses a bundle shows the geo enricher looked up, each once, canonical
/// (mapped IPv6 spelled as IPv4, as the cache keys them), and how many of them it found: the
/// addresses of its geo enrichments that are not reserved, and of its `geo_unknown` gaps.
pub fn geo_lookups(bundle: &serde_json::Value) -> (Vec<std::net::IpAddr>, usize) {
    let ip = |v: &serde_json::Value| {
        v.as_str()
            .unwrap()
            .parse::<std::net::IpAddr>()
            .unwrap()
            .to_canonical()
    };
    let found: Vec<_> = bundle["enrichment"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["enricher"] == "geo" && e["source"] != "iana-special-purpose")
        .map(|e| ip(&e["value"]))
        .collect();
    let n = found.len();
    let unknown = bundle["quality"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["code"] == "geo_unknown")
        .map(|g| ip(&g["detail"]));
    (found.into_iter().chain(unknown).collect(), n)
}

/// Run a command to its end; its output, after checking it succeeded.
pub fn succeed(cmd: &mut std::process::Command) -> std::process::Output {
    let res = cmd.output().unwrap();
    assert!(
        res.status.success(),
        "{}",
        String::from_utf8_lossy(&res.stderr)
    );
    res
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The configuration golden tests run with: example enrichers, no wall clock.
pub fn test_config() -> Config {
    Config::load(&repo().join("tests/golden.toml")).expect("tests/golden.toml")
}

/// Run a whole in-memory input through a pipeline.
pub fn run(pipeline: &mut Pipeline, name: &str, data: &[u8]) -> Vec<Outcome> {
    let mut out = Vec::new();
    for f in frame_all(name, data, pipeline.limits()) {
        pipeline.process_framed(f, RecordContext::default(), &mut out);
    }
    out
}

/// Validates bundles against schemas/bundle.schema.json.
pub struct SchemaCheck(jsonschema::Validator);

impl SchemaCheck {
    pub fn new() -> SchemaCheck {
        let schema: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(repo().join("schemas/bundle.schema.json")).unwrap(),
        )
        .unwrap();
        SchemaCheck(
            jsonschema::options()
                .should_validate_formats(true)
                .build(&schema)
                .expect("bundle schema compiles"),
        )
    }

    pub fn check(&self, bundle: &serde_json::Value) {
        let errors: Vec<String> = self
            .0
            .iter_errors(bundle)
            .map(|e| format!("{} at {}", e, e.instance_path))
            .collect();
        assert!(
            errors.is_empty(),
            "bundle does not match schemas/bundle.schema.json: {errors:#?}\n{bundle}"
        );
    }
}

/// Every fixture file, sorted, as (source dir name, path).
pub fn fixture_files() -> Vec<(String, PathBuf)> {
    let mut out = Vec::new();
    let root = repo().join("tests/fixtures");
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let source = dir.file_name().unwrap().to_string_lossy().to_string();
        for f in std::fs::read_dir(&dir).unwrap() {
            out.push((source.clone(), f.unwrap().path()));
        }
    }
    out.sort();
    out
}

pub fn rel(p: &Path) -> String {
    p.strip_prefix(repo()).unwrap_or(p).display().to_string()
}
