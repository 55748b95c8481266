//! Enrichment end to end: the example CMDB and directory plus geo/ASN databases built by the
//! test (a real MaxMind reader on real MMDB files), through the whole pipeline, into bundles.

mod common;
#[path = "common/mmdb.rs"]
mod mmdb;

use alertctx::config::Config;
use alertctx::pipeline::{Outcome, Pipeline};
use common::*;
use serde_json::Value;

fn pipeline_with_geo(dir: &std::path::Path) -> Pipeline {
    let mut cfg = Config::default();
    cfg.pipeline.enrichers = Some(mmdb::deployed_enrichers(dir));
    cfg.quality.reference_time = "none".into();
    Pipeline::from_config(&cfg).unwrap()
}

fn bundles(outcomes: Vec<Outcome>) -> Vec<Value> {
    outcomes
        .into_iter()
        .filter_map(|o| match o {
            Outcome::Bundle { json, .. } => Some(serde_json::from_str(&json).unwrap()),
            _ => None,
        })
        .collect()
}

#[test]
fn assets_users_geo_and_tags_reach_the_bundle() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline_with_geo(dir.path());
    assert!(p.warnings.is_empty(), "{:?}", p.warnings);
    let input = br#"{"timestamp":"2026-03-14T09:12:03Z","flow_id":1,"event_type":"alert","src_ip":"81.2.69.142","src_port":51544,"dest_ip":"10.30.5.10","dest_port":5432,"proto":"TCP","alert":{"signature_id":1,"signature":"ET EXPLOIT attempt","category":"Attempted Administrator Privilege Gain","severity":1}}
{"timestamp":"2026-03-14T09:13:03Z","flow_id":2,"event_type":"alert","src_ip":"8.8.8.8","src_port":53,"dest_ip":"192.168.1.5","dest_port":5353,"proto":"UDP","alert":{"signature_id":2,"signature":"ET INFO odd DNS","category":"Misc activity","severity":3}}
{"EventID":4624,"Channel":"Security","SourceName":"Microsoft-Windows-Security-Auditing","Hostname":"dc01.corp.example.com","EventTime":"2026-03-14 02:00:00","TargetUserName":"adm-asmith","TargetDomainName":"CORP","LogonType":10,"IpAddress":"10.20.3.42","IpPort":"50123","TargetLogonId":"0x1a2b"}
"#;
    let out = bundles(run(&mut p, "mixed.ndjson", input));
    assert_eq!(out.len(), 3);
    let schema = SchemaCheck::new();
    out.iter().for_each(|b| schema.check(b));

    // 1. Geo and ASN on the public source; the payment database by exact IP; tags from both.
    let b = &out[0];
    let geo = b["enrichment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["attribute"] == "src_endpoint.ip")
        .unwrap();
    assert_eq!(geo["enricher"], "geo");
    assert_eq!(geo["data"]["location"]["city"], "London");
    assert_eq!(geo["data"]["location"]["country"], "GB");
    assert!(
        geo["source"].as_str().unwrap().contains("Test-City"),
        "{}",
        geo["source"]
    );
    let asset = b["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "asset")
        .unwrap();
    assert_eq!(asset["attribute"], "dst_endpoint.ip");
    assert_eq!(asset["matched_by"], "ip");
    assert_eq!(asset["context"]["id"], "AST-0012");
    let tags: Vec<&str> = b["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(
        tags.contains(&"asset:crown_jewel") && tags.contains(&"asset:production"),
        "{tags:?}"
    );
    let refs: Vec<&str> = b["provenance"]["reference_data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    for name in ["cmdb", "directory", "geo"] {
        assert!(refs.contains(&name), "{refs:?}");
    }
    for r in b["provenance"]["reference_data"].as_array().unwrap() {
        assert!(r["version"].as_str().unwrap().starts_with("sha256:"), "{r}");
    }

    // 2. A public IP the database does not know is a gap; a private one is labelled internal.
    let b = &out[1];
    let gaps: Vec<(&str, &str)> = b["quality"]["gaps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["code"].as_str().unwrap(),
                g["field"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        gaps.contains(&("geo_unknown", "src_endpoint.ip")),
        "{gaps:?}"
    );
    let internal = b["enrichment"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["attribute"] == "dst_endpoint.ip")
        .unwrap();
    assert_eq!(internal["data"]["internal"], true);
    assert_eq!(internal["data"]["range"], "private");

    // 3. A privileged admin logging on remotely at 02:00 UTC from a known workstation.
    let b = &out[2];
    let user = b["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "user")
        .unwrap();
    assert_eq!(user["context"]["id"], "u1106");
    assert_eq!(user["context"]["privileged"], true);
    let tags: Vec<&str> = b["tags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t.as_str().unwrap())
        .collect();
    assert!(tags.contains(&"user:privileged"), "{tags:?}");
    assert!(tags.contains(&"time:off_hours_logon"), "{tags:?}");
    let ws = b["entities"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "asset" && e["value"] == "10.20.3.42")
        .unwrap();
    assert_eq!(ws["context"]["id"], "AST-0020");
}

#[test]
fn missing_optional_geo_database_is_a_warning_not_an_error() {
    let mut cfg = Config::default();
    cfg.pipeline.enrichers = Some(repo().join("enrichers"));
    let p = Pipeline::from_config(&cfg).unwrap();
    assert!(
        p.warnings.iter().any(|w| w.contains("geo")),
        "{:?}",
        p.warnings
    );
    assert!(p.reference_data().iter().any(|r| r.name == "cmdb"));
    assert!(!p.reference_data().iter().any(|r| r.name == "geo"));
}

#[test]
fn a_known_scanner_as_source_is_tagged_and_as_destination_is_not() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = pipeline_with_geo(dir.path());
    // nessus01 (AST-0009, inventory tag `scanner`) sweeping a server, then a workstation
    // reaching nessus01's web console.
    let input = br#"{"ts":1773479523.101,"uid":"CsCan1","id.orig_h":"10.10.6.40","id.orig_p":40112,"id.resp_h":"10.30.5.10","id.resp_p":22,"proto":"tcp","conn_state":"S0","_path":"conn"}
{"ts":1773479583.202,"uid":"CsCan2","id.orig_h":"10.20.3.42","id.orig_p":51200,"id.resp_h":"10.10.6.40","id.resp_p":8834,"proto":"tcp","service":"ssl","conn_state":"SF","_path":"conn"}
"#;
    let out = bundles(run(&mut p, "zeek-conn.ndjson", input));
    assert_eq!(out.len(), 2);
    let schema = SchemaCheck::new();
    out.iter().for_each(|b| schema.check(b));
    let tags = |b: &Value| -> Vec<String> {
        b["tags"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t.as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(out[0]["provenance"]["source"], "zeek");
    assert!(
        tags(&out[0]).contains(&"asset:known_scanner".to_string()),
        "{:?}",
        tags(&out[0])
    );
    assert!(
        !tags(&out[1]).contains(&"asset:known_scanner".to_string()),
        "the scanner as destination is not a scan: {:?}",
        tags(&out[1])
    );
    assert!(out[1]["entities"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["context"]["id"] == "AST-0009" && e["attribute"] == "dst_endpoint.ip"));
}

/// `process` prints the geo cache's counts under its summary, and they agree with the bundles
/// it wrote: each public address a bundle names went through the cache once, a miss the first
/// time the run saw it (and held from then on: the cache holds more than the run's addresses),
/// a hit every time after. The deployed `geo.toml` holds 16,384 addresses.
#[test]
fn process_reports_the_geo_cache_and_its_counts_agree_with_the_bundles() {
    let dir = tempfile::tempdir().unwrap();
    let defs = mmdb::deployed_enrichers(dir.path());
    let cfg = dir.path().join("alertctx.toml");
    // Dedup off: every record is enriched exactly once, so the bundles account for every lookup.
    std::fs::write(
        &cfg,
        format!(
            "[pipeline]\nenrichers = {:?}\n[quality]\nreference_time = \"none\"\n[dedup]\nenabled = false\n",
            defs.to_str().unwrap()
        ),
    )
    .unwrap();
    let records = dir.path().join("records.ndjson");
    let generated = succeed(alertctx().args(["generate", "--count", "1500", "--seed", "11"]));
    // The generator draws public addresses from the whole space, and repeats some records;
    // add alerts from addresses the City database places, so that answers occur.
    let mut input = generated.stdout.clone();
    for line in public_alerts().iter().chain(&public_alerts()[..1]) {
        input.extend_from_slice(line.as_bytes());
        input.push(b'\n');
    }
    std::fs::write(&records, &input).unwrap();
    let out = succeed(alertctx().args([
        "process",
        "--threads",
        "1",
        "--config",
        cfg.to_str().unwrap(),
        records.to_str().unwrap(),
    ]));

    // What the bundles say was looked up: per bundle, each public address once.
    let (mut lookups, mut found) = (0u64, 0u64);
    let mut seen = std::collections::HashSet::new();
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let (public, placed) = geo_lookups(&serde_json::from_str(line).unwrap());
        lookups += public.len() as u64;
        found += placed as u64;
        seen.extend(public);
    }
    let distinct = seen.len() as u64;
    assert!(
        found >= 3 && distinct > 100,
        "{found} found, {distinct} addresses"
    );

    let stderr = String::from_utf8(out.stderr).unwrap();
    let line = stderr
        .lines()
        .find(|l| l.starts_with("enricher geo:"))
        .unwrap_or_else(|| panic!("no geo line in the summary:\n{stderr}"));
    assert_eq!(
        line,
        format!(
            "enricher geo: {lookups} cache lookups, {} hits ({:.1}%), {distinct} of 16384 entries held; 0 lookup errors",
            lookups - distinct,
            100.0 * (lookups - distinct) as f64 / lookups as f64
        )
    );
    assert!(
        !stderr.contains("enricher cmdb") && !stderr.contains("enricher directory"),
        "tables in memory keep no cache counts:\n{stderr}"
    );
}
