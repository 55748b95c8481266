//! End-to-end tests of the core and of `alertctx process`: dead letters for every bad-input
//! reason, accounting, determinism.

mod common;

use alertctx::config::Config;
use alertctx::pipeline::{Outcome, Pipeline};
use common::*;

fn small_limits_config() -> Config {
    let mut cfg = Config::default();
    cfg.pipeline.max_record_bytes = 4096;
    cfg.pipeline.max_depth = 16;
    cfg.quality.reference_time = "none".into();
    cfg
}

fn dead_letters(outcomes: &[Outcome]) -> Vec<(&'static str, u64, String)> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::DeadLetter(d) => {
                let line = match &d.origin {
                    alertctx::record::Origin::File { line, .. } => *line,
                    _ => 0,
                };
                Some((
                    d.reason,
                    line,
                    String::from_utf8_lossy(&d.bytes).into_owned(),
                ))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn every_bad_input_reason_is_a_dead_letter_with_the_original_bytes() {
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(40), "]".repeat(40));
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(5000));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("invalid_json", b"{\"event_type\": \"alert\", \"src_ip\": }".to_vec()),
        ("invalid_utf8", b"{\"event_type\": \"alert\", \"x\": \"\xff\xfe\"}".to_vec()),
        ("too_large", big.into_bytes()),
        ("too_deep", deep.into_bytes()),
        ("empty_envelope", b"{\"Records\": []}".to_vec()),
        ("invalid_cef", b"CEF:0|Vendor|only three fields".to_vec()),
        ("invalid_leef", b"LEEF:1.0|Vendor".to_vec()),
        ("invalid_xml", b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4624</System></Event>".to_vec()),
        ("invalid_utf8", b"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><EventID>4624</EventID><Computer>caf\xe9</Computer></System></Event>".to_vec()),
    ];
    for (reason, bytes) in cases {
        let mut pipeline = Pipeline::from_config(&small_limits_config()).unwrap();
        let mut input = b"{\"ok\": 1}\n".to_vec();
        input.extend_from_slice(&bytes);
        input.extend_from_slice(b"\n{\"ok\": 2}\n");
        let outcomes = run(&mut pipeline, "bad.log", &input);
        assert_eq!(
            outcomes.len(),
            3,
            "{reason}: every record accounted for: {outcomes:#?}"
        );
        let dls = dead_letters(&outcomes);
        assert_eq!(dls.len(), 1, "{reason}: {dls:?}");
        assert_eq!(dls[0].0, reason);
        assert_eq!(dls[0].1, 2, "{reason}: line of the bad record");
        assert_eq!(
            dls[0].2.as_bytes(),
            String::from_utf8_lossy(&bytes).as_bytes(),
            "{reason}: original bytes kept"
        );
    }
}

#[test]
fn truncated_records_and_zeek_rows_that_do_not_fit_their_header() {
    let mut pipeline = Pipeline::from_config(&small_limits_config()).unwrap();
    let zeek = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n#fields\tts\tuid\tid.orig_h\n#types\ttime\tstring\taddr\n1773479523.118\tCx1\t10.20.1.1\n1773479523.200\tCx2\n";
    let outcomes = run(&mut pipeline, "conn.log", zeek.as_bytes());
    let dls = dead_letters(&outcomes);
    assert_eq!(outcomes.len(), 2);
    assert_eq!(dls.len(), 1);
    assert_eq!((dls[0].0, dls[0].1), ("invalid_zeek", 9));

    let outcomes = run(&mut pipeline, "t.json", b"{\"a\": 1}\n{\n  \"b\": [1,\n");
    let dls = dead_letters(&outcomes);
    assert_eq!(outcomes.len(), 2);
    assert_eq!((dls[0].0, dls[0].1), ("truncated", 2));
    assert_eq!(dls[0].2, "{\n  \"b\": [1,");
}

#[test]
fn envelopes_give_one_bundle_per_record_with_its_index() {
    let mut pipeline = Pipeline::from_config(&small_limits_config()).unwrap();
    let env = br#"{"Records": [{"eventVersion": "1.08", "eventTime": "2026-03-14T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "jdoe"}, "eventID": "e1"},
{"eventVersion": "1.08", "eventTime": "2026-03-14T10:00:01Z", "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "jdoe"}, "eventID": "e2"}]}"#;
    let outcomes = run(&mut pipeline, "ct.json", env);
    assert_eq!(outcomes.len(), 2);
    for (i, o) in outcomes.iter().enumerate() {
        let Outcome::Bundle { json, .. } = o else {
            panic!("{o:?}")
        };
        let v: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(v["provenance"]["index"], i);
        assert_eq!(v["provenance"]["input"]["line"], 1);
    }
}

#[test]
fn process_command_writes_bundles_dead_letters_and_a_summary() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("mixed.ndjson");
    let fixture = std::fs::read(repo().join("tests/fixtures/suricata/eve.ndjson")).unwrap();
    let mut data = fixture.clone();
    data.extend_from_slice(b"{\"broken\": \n");
    std::fs::write(&input, &data).unwrap();
    let (out, dlq) = (dir.path().join("out.ndjson"), dir.path().join("dlq.ndjson"));
    let res = succeed(
        alertctx()
            .args([
                "process",
                "--config",
                repo().join("tests/golden.toml").to_str().unwrap(),
                "--output",
            ])
            .arg(&out)
            .arg("--dlq")
            .arg(&dlq)
            .arg(&input),
    );
    let stderr = String::from_utf8_lossy(&res.stderr);
    let bundles = std::fs::read_to_string(&out).unwrap().lines().count();
    let dead = std::fs::read_to_string(&dlq).unwrap().lines().count();
    // The summary's totals row: records = bundles + duplicates + dead letters.
    let total: Vec<u64> = stderr
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap()
        .split_whitespace()
        .skip(1)
        .take(4)
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!(total[1], bundles as u64);
    assert_eq!(total[3], dead as u64);
    assert_eq!(total[0], total[1] + total[2] + total[3]);
    assert!(
        stderr.lines().any(|l| l.starts_with("suricata")),
        "{stderr}"
    );
    assert!(
        dead >= 2,
        "the fixture's own broken record and the one added"
    );
}

#[test]
fn process_is_deterministic_and_reads_stdin() {
    // Input: every fixture, a generated corpus (repeats, envelopes of many sources), and lines
    // that must be dead-lettered; configuration: the example reference data and a fixed
    // reference time, so age checks are part of what must come out the same.
    let dir = tempfile::tempdir().unwrap();
    let corpus = dir.path().join("corpus.ndjson");
    let gen = alertctx()
        .args(["generate", "--count", "3000", "--seed", "7", "--output"])
        .arg(&corpus)
        .output()
        .unwrap();
    assert!(gen.status.success());
    let bad = dir.path().join("bad.log");
    std::fs::write(
        &bad,
        "{\"src_ip\": }\nCEF:0|Vendor|only three fields\n{\"ok\": 1}\n",
    )
    .unwrap();
    let cfg = config_with_reference_time(dir.path(), "2026-03-15T00:00:00Z");
    let mut inputs: Vec<_> = fixture_files().into_iter().map(|(_, p)| p).collect();
    inputs.push(corpus);
    inputs.push(bad);
    let run_with = |threads: &str, batch: &str| {
        let dlq = dir.path().join(format!("dlq-{threads}-{batch}"));
        let res = succeed(
            alertctx()
                .args([
                    "process",
                    "--threads",
                    threads,
                    "--batch-size",
                    batch,
                    "--config",
                ])
                .arg(&cfg)
                .arg("--dlq")
                .arg(&dlq)
                .args(&inputs),
        );
        // The summary's last line: total, records, bundles, duplicates, dead letters, score.
        let summary = String::from_utf8_lossy(&res.stderr)
            .lines()
            .last()
            .unwrap()
            .to_string();
        let dups: u64 = summary.split_whitespace().nth(3).unwrap().parse().unwrap();
        (res.stdout, std::fs::read(&dlq).unwrap(), dups)
    };
    let (a, a_dlq, dups) = run_with("1", "1");
    assert!(dups > 300, "repeats were folded: {dups}");
    let bundles: Vec<serde_json::Value> = String::from_utf8(a.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(bundles.len() > 2000);
    let schema = SchemaCheck::new();
    for b in &bundles {
        schema.check(b);
    }
    assert!(bundles
        .iter()
        .all(|b| b["provenance"]["reference_time"] == 1773532800000i64));
    assert!(
        bundles
            .iter()
            .any(|b| !b["entities"].as_array().unwrap().is_empty()),
        "enrichment took part"
    );
    assert_eq!(
        String::from_utf8_lossy(&a_dlq)
            .lines()
            .filter(|l| l.contains("bad.log"))
            .count(),
        2
    );
    for (threads, batch) in [("1", "1"), ("2", "7"), ("3", "5000"), ("0", "2048")] {
        let (b, b_dlq, _) = run_with(threads, batch);
        assert!(
            a == b,
            "--threads {threads} --batch-size {batch}: the same bundles, byte for byte"
        );
        assert!(
            a_dlq == b_dlq,
            "--threads {threads} --batch-size {batch}: the same dead letters"
        );
    }

    let mut child = alertctx()
        .args(["process", "--quiet"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&std::fs::read(repo().join("tests/fixtures/suricata/eve.ndjson")).unwrap())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).lines().count() >= 10);
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[dedup]\nwindwo = \"5m\"\n").unwrap();
    let res = alertctx()
        .args(["process", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(err.contains("windwo"), "{err}");
}

#[test]
fn a_route_pins_an_input_to_its_source() {
    // The same record: detected from its shape as Okta without a route; pinned to CloudTrail
    // by a route on the input name, it is read with CloudTrail's mapping (and, being no
    // CloudTrail event, gets no class of it).
    let record = br#"{"uuid":"a1b2c3d4-0000-4000-8000-000000000001","published":"2026-03-14T09:00:00.000Z","eventType":"user.session.start","displayMessage":"User login to Okta","severity":"INFO","actor":{"id":"00u1","type":"User","alternateId":"jdoe@example.com","displayName":"J Doe"},"outcome":{"result":"SUCCESS"},"client":{"ipAddress":"198.51.100.7"}}
"#;
    let source_of = |cfg: &Config, input: &str| -> String {
        let mut p = Pipeline::from_config(cfg).unwrap();
        let out = run(&mut p, input, record);
        let Outcome::Bundle { json, .. } = &out[0] else {
            panic!("{out:?}")
        };
        let b: serde_json::Value = serde_json::from_str(json).unwrap();
        b["provenance"]["source"].as_str().unwrap().to_string()
    };
    let mut cfg = Config::default();
    cfg.quality.reference_time = "none".into();
    assert_eq!(source_of(&cfg, "okta/system.log"), "okta");
    cfg.routes = vec![alertctx::normalize::Route {
        input: "trail-*.json".into(),
        source: "cloudtrail".into(),
    }];
    assert_eq!(
        source_of(&cfg, "okta/system.log"),
        "okta",
        "the route does not match"
    );
    assert_eq!(source_of(&cfg, "exports/trail-0001.json"), "cloudtrail");
}

#[test]
fn a_text_line_that_is_not_utf8_keeps_its_alert_and_counts_the_bytes() {
    // A Latin-1 CEF line from an old appliance: two bytes that are not UTF-8.
    let mut pipeline = Pipeline::from_config(&small_limits_config()).unwrap();
    let out = run(
        &mut pipeline,
        "cef.log",
        b"CEF:0|Acme|IDS|1.0|100|caf\xe9 attack on r\xe9seau|5|src=10.0.0.1 dst=10.0.0.2\n",
    );
    assert_eq!(out.len(), 1);
    let Outcome::Bundle { json, .. } = &out[0] else {
        panic!("a bundle, not {out:?}")
    };
    let b: serde_json::Value = serde_json::from_str(json).unwrap();
    SchemaCheck::new().check(&b);
    assert_eq!(b["provenance"]["source"], "cef");
    assert_eq!(b["alert"]["finding_info"]["title"], "caf attack on rseau");
    let removals = b["safety"]["removals"].as_array().unwrap();
    assert!(
        removals.iter().any(|r| r["field"] == "finding_info.title"
            && r["kind"] == "replacement_char"
            && r["count"] == 2),
        "{removals:?}"
    );
}

/// Outcomes with the configuration's hash masked: it covers `dedup.exact_repeats` too.
fn masked(outcomes: Vec<Outcome>) -> Vec<Outcome> {
    outcomes
        .into_iter()
        .map(|o| match o {
            Outcome::Bundle { json, key, report } => {
                let mut v: serde_json::Value = serde_json::from_str(&json).unwrap();
                v["provenance"]["pipeline"]["config_hash"] = "(masked)".into();
                Outcome::Bundle {
                    json: v.to_string(),
                    key,
                    report,
                }
            }
            other => other,
        })
        .collect()
}

fn with_exact_repeats(n: usize) -> Pipeline {
    let mut cfg = small_limits_config();
    cfg.dedup.exact_repeats = n;
    Pipeline::from_config(&cfg).unwrap()
}

#[test]
fn exact_repeats_are_folded_by_their_bytes_as_the_whole_path_folds_them() {
    // A Suricata alert at 10:00, and the same alert at 10:11: other bytes, the same
    // fingerprint, outside the 10-minute window of the first.
    let alert = |t: &str| {
        format!(
            r#"{{"timestamp":"2026-03-14T{t}:00.000000+0000","flow_id":1830044182231507,"event_type":"alert","src_ip":"203.0.113.45","src_port":51544,"dest_ip":"10.10.4.21","dest_port":22,"proto":"TCP","alert":{{"action":"allowed","gid":1,"signature_id":2001219,"rev":20,"signature":"ET SCAN Potential SSH Scan","category":"Attempted Information Leak","severity":2}},"host":"ids-01"}}"#
        )
    };
    let (a, b) = (alert("10:00"), alert("10:11"));
    let input = [&a, &a, &b, &a, &a].map(|l| format!("{l}\n")).concat();

    let mut on = with_exact_repeats(16);
    let outcomes = run(&mut on, "eve.json", input.as_bytes());
    let kinds: Vec<&str> = outcomes
        .iter()
        .map(|o| match o {
            Outcome::Bundle { .. } => "bundle",
            Outcome::Duplicate { .. } => "duplicate",
            Outcome::DeadLetter(_) => "dead letter",
        })
        .collect();
    // The second record is folded by its bytes; the fourth, a repeat of the first whose
    // window the third has moved on, is recognised by its bytes but becomes a bundle again;
    // the fifth falls in the window the fourth opened.
    assert_eq!(
        kinds,
        ["bundle", "duplicate", "bundle", "bundle", "duplicate"]
    );
    assert_eq!(on.exact_repeats_folded(), 2);
    let mut off = with_exact_repeats(0);
    let whole_path = run(&mut off, "eve.json", input.as_bytes());
    assert_eq!(off.exact_repeats_folded(), 0);
    assert_eq!(masked(outcomes), masked(whole_path));
}

#[test]
fn exact_repeats_change_no_outcome_of_a_generated_corpus() {
    // The generated mix (every source, about one record in five an exact repeat of a recent
    // one), then repeats of records the memo leaves alone: a dead letter, an envelope, Zeek
    // rows.
    let mut input: Vec<u8> = alertctx::generate::Generator::new(11)
        .take(3000)
        .flat_map(|g| (g.line + "\n").into_bytes())
        .collect();
    let extra = concat!(
        "{\"event_type\": \"alert\", \"src_ip\": }\n",
        r#"{"Records": [{"eventVersion": "1.08", "eventTime": "2026-03-14T10:00:00Z", "eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "jdoe"}, "eventID": "e1"}, {"eventVersion": "1.08", "eventTime": "2026-03-14T10:00:01Z", "eventSource": "s3.amazonaws.com", "eventName": "PutObject", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.9", "userIdentity": {"type": "IAMUser", "userName": "jdoe"}, "eventID": "e2"}]}"#,
        "\n"
    );
    input.extend_from_slice(extra.repeat(2).as_bytes());
    let zeek = "#separator \\x09\n#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n#types\ttime\tstring\taddr\tport\taddr\tport\tenum\n1773479523.118\tCx1\t10.20.1.1\t50000\t10.20.1.2\t443\ttcp\n1773479523.118\tCx1\t10.20.1.1\t50000\t10.20.1.2\t443\ttcp\n";

    let mut on = with_exact_repeats(1 << 16);
    let mut off = with_exact_repeats(0);
    let mut with_memo = run(&mut on, "mixed.ndjson", &input);
    with_memo.extend(run(&mut on, "conn.log", zeek.as_bytes()));
    let mut without = run(&mut off, "mixed.ndjson", &input);
    without.extend(run(&mut off, "conn.log", zeek.as_bytes()));
    assert_eq!(with_memo.len(), without.len());
    let duplicates = with_memo
        .iter()
        .filter(|o| matches!(o, Outcome::Duplicate { .. }))
        .count() as u64;
    let dead = dead_letters(&with_memo);
    assert!(
        on.exact_repeats_folded() > 400 && on.exact_repeats_folded() <= duplicates,
        "{} folded by their bytes, {duplicates} duplicates",
        on.exact_repeats_folded()
    );
    // The repeated dead letter went the whole way again, with its own line.
    let broken: Vec<u64> = dead
        .iter()
        .filter(|d| d.2.contains("\"src_ip\": }"))
        .map(|d| d.1)
        .collect();
    assert_eq!(broken.len(), 2, "{dead:?}");
    assert_ne!(broken[0], broken[1]);
    assert_eq!(masked(with_memo), masked(without));
}
