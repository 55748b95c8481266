//! The commands a newcomer meets first: `alertctx demo` (the README's first command) and
//! `alertctx validate`.

mod common;

use common::{alertctx, repo, succeed};

#[test]
fn demo_accounts_for_every_example_record() {
    let listen = common::kafka::free_addr();
    let out = alertctx()
        .current_dir(repo())
        .args(["demo", "--metrics-listen", &listen, "--timeout", "120"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("every record accounted for"), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    for source in [
        "suricata",
        "windows_security",
        "okta",
        "cloudtrail",
        "cef",
        "zeek",
    ] {
        assert!(
            stdout.lines().any(|l| l.starts_with(source)),
            "no {source} bundle printed:\n{stdout}"
        );
    }
    assert!(
        stdout.contains("dead letter:"),
        "the examples hold broken records"
    );
}

#[test]
fn validate_reports_every_problem_with_its_location() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(
        &good,
        "[kafka]\nbrokers = \"127.0.0.1:9092\"\ngroup_id = \"g\"\ntopics = [\"raw\"]\noutput_topic = \"out\"\ndlq_topic = \"dlq\"\n",
    )
    .unwrap();
    succeed(alertctx().args(["validate", "--config"]).arg(&good));

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "[[routes]]\ninput = \"raw.x\"\nsource = \"nosuch\"\n[dedup]\nwindow = \"soon\"\n[quality]\nmax_age = \"old\"\n[metrics]\nlisten = \"everywhere\"\n[kafka]\nbrokers = \"\"\ngroup_id = \"g\"\ntopics = [\"raw\"]\noutput_topic = \"raw\"\ndlq_topic = \"dlq\"\ncommit_interval = \"often\"\n[kafka.consumer]\n\"no.such.property\" = \"1\"\n",
    )
    .unwrap();
    let res = alertctx()
        .args(["validate", "--config"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    for location in [
        "[quality]",
        "[dedup]",
        "[[routes]]",
        "[metrics].listen",
        "[kafka].brokers",
        "[kafka].output_topic",
        "[kafka].commit_interval",
        "[kafka].consumer",
    ] {
        assert!(
            err.contains(location),
            "no problem reported at {location}:\n{err}"
        );
    }
    assert!(err.lines().count() >= 8, "{err}");

    let typo = dir.path().join("typo.toml");
    std::fs::write(
        &typo,
        "[kafka]\nbrokerz = \"x\"\n\n[dedup]\ncapacity = \"many\"\n",
    )
    .unwrap();
    let res = alertctx()
        .args(["validate", "--config"])
        .arg(&typo)
        .output()
        .unwrap();
    assert!(!res.status.success());
    let err = String::from_utf8_lossy(&res.stderr);
    assert!(
        err.contains("brokerz") && err.contains("line 2"),
        "unknown keys are errors with a location: {err}"
    );
    assert!(
        err.contains("line 5") && err.contains("capacity"),
        "every structural problem is reported, not only the first: {err}"
    );
}
