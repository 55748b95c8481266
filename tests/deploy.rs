//! The deployment files in `deploy/` are checked, not just written:
//!
//! - the alert rules pass `promtool check rules` and their unit tests (`promtool test rules`),
//!   with a firing and a quiet case for every alert, and the README lists every alert;
//! - every manifest, compose and provisioning file parses, and they agree with each other and
//!   with the code: the configuration they carry is a valid alertctx `Config`, ports, paths,
//!   images, topics and names match the Dockerfile, and the Dockerfile copies what exists;
//! - a real Prometheus (Debian's binary, with `alerts.yml` loaded) scrapes a real worker
//!   consuming from the test broker: its API reports exactly what the test sent, every rule
//!   evaluates without error, every dashboard query runs and returns data, and every metric a
//!   rule or a panel names is one the worker exports.
//!
//! `scripts/test` installs `prometheus` and `promtool` (apt-get) and starts the broker. A
//! missing tool fails these tests; nothing is skipped.

mod common;
#[path = "common/mmdb.rs"]
mod mmdb;

use alertctx::config::Config;
use alertctx::decode::framing::frame_message;
use alertctx::metrics::Metrics;
use alertctx::pipeline::{Outcome, Pipeline, RecordContext};
use alertctx::record::Origin;
use common::kafka::*;
use common::repo;
use serde::Deserialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------
// Helpers: tools, files, the Dockerfile.

/// An executable on PATH; a missing one fails the test.
fn tool(name: &str) -> PathBuf {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "`{name}` is not installed: scripts/test installs it (apt-get install prometheus)"
            )
        })
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// Every YAML document of a file, as JSON values.
fn yaml_docs(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_norway::Deserializer::from_str(&text)
        .map(|doc| {
            Value::deserialize(doc)
                .unwrap_or_else(|e| panic!("{} does not parse as YAML: {e}", path.display()))
        })
        .collect()
}

fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(&repo().join(rel));
    assert_eq!(docs.len(), 1, "{rel}: one YAML document expected");
    docs.remove(0)
}

fn s(v: &Value) -> &str {
    v.as_str()
        .unwrap_or_else(|| panic!("expected a string, found {v}"))
}

/// A duration such as `20s` or `1m` in seconds.
fn seconds(d: &str) -> f64 {
    alertctx::timeparse::parse_duration_ms(d).unwrap_or_else(|| panic!("`{d}` is not a duration"))
        as f64
        / 1000.0
}

/// The Dockerfile's instructions as (KEYWORD, arguments), continuation lines joined.
fn dockerfile() -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in read("deploy/Dockerfile").lines() {
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        if let Some(head) = t.strip_suffix('\\') {
            cur.push_str(head);
            cur.push(' ');
            continue;
        }
        cur.push_str(t);
        let (k, rest) = cur
            .split_once(char::is_whitespace)
            .unwrap_or((cur.as_str(), ""));
        out.push((k.to_uppercase(), rest.trim().to_string()));
        cur.clear();
    }
    out
}

fn instruction(df: &[(String, String)], keyword: &str) -> Vec<String> {
    df.iter()
        .filter(|(k, _)| k == keyword)
        .map(|(_, a)| a.clone())
        .collect()
}

/// What the image expects at run time, read from the Dockerfile.
struct Image {
    /// `--config` in CMD.
    config_path: String,
    /// The EXPOSEd port.
    port: u16,
    /// USER uid.
    uid: u64,
    /// HEALTHCHECK's command (exec form).
    healthcheck: Vec<String>,
}

fn image() -> Image {
    let df = dockerfile();
    let cmd: Vec<String> = serde_json::from_str(&instruction(&df, "CMD").pop().expect("CMD"))
        .expect("CMD in exec form");
    let config_path = cmd
        .windows(2)
        .find(|w| w[0] == "--config")
        .map(|w| w[1].clone())
        .expect("CMD passes --config");
    let port = instruction(&df, "EXPOSE")
        .pop()
        .expect("EXPOSE")
        .parse()
        .expect("one EXPOSEd port");
    let user = instruction(&df, "USER").pop().expect("USER");
    let uid = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("USER is a numeric uid, so runAsNonRoot can verify it");
    let hc = instruction(&df, "HEALTHCHECK").pop().expect("HEALTHCHECK");
    let healthcheck = serde_json::from_str(hc.split_once("CMD").expect("HEALTHCHECK CMD").1.trim())
        .expect("HEALTHCHECK CMD in exec form");
    Image {
        config_path,
        port,
        uid,
        healthcheck,
    }
}

/// The enricher directory every configuration in deploy/ uses inside the container.
const ENRICHERS_DIR: &str = "/etc/alertctx/enrichers";

fn listen_port(cfg: &Config, what: &str) -> u16 {
    let addr: std::net::SocketAddr = cfg
        .metrics
        .listen
        .parse()
        .unwrap_or_else(|e| panic!("{what}: [metrics] listen: {e}"));
    assert!(
        addr.ip().is_unspecified(),
        "{what}: [metrics] listen must be 0.0.0.0 in a container, not {addr}"
    );
    addr.port()
}

/// Does a Kafka `topics` entry (a name, or a regex when it starts with ^) take this topic?
fn subscribes(topics: &[String], topic: &str) -> bool {
    topics.iter().any(|t| match t.strip_prefix('^') {
        Some(_) => regex::Regex::new(t).unwrap().is_match(topic),
        None => t == topic,
    })
}

/// Every string under `key` anywhere in a JSON value.
fn strings_under(v: &Value, key: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::String(s) if k == key => out.push(s.clone()),
                    _ => strings_under(x, key, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| strings_under(x, key, out)),
        _ => {}
    }
}

/// The alert rules: name → rule.
fn alert_rules() -> BTreeMap<String, Value> {
    let rules = yaml("deploy/prometheus/alerts.yml");
    let mut out = BTreeMap::new();
    for g in rules["groups"].as_array().expect("groups") {
        for r in g["rules"].as_array().expect("rules") {
            let name = s(&r["alert"]).to_string();
            assert!(
                out.insert(name.clone(), r.clone()).is_none(),
                "alert {name} defined twice"
            );
        }
    }
    out
}

/// The scrape job the alert rules expect (`up{job="..."}`), which prometheus.yml must define.
fn scrape_job() -> String {
    let prom = yaml("deploy/prometheus/prometheus.yml");
    let jobs: Vec<&str> = prom["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| s(&j["job_name"]))
        .collect();
    let re = regex::Regex::new(r#"up\{job="([^"]+)"\}"#).unwrap();
    let rules = read("deploy/prometheus/alerts.yml");
    let job = re.captures(&rules).expect("alerts.yml selects up{job=...}")[1].to_string();
    assert!(
        jobs.contains(&job.as_str()),
        "alerts.yml selects up{{job=\"{job}\"}} but prometheus.yml has jobs {jobs:?}"
    );
    job
}

// ---------------------------------------------------------------------------------------
// promtool

fn promtool(args: &[&str]) {
    let out = Command::new(tool("promtool"))
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "promtool {}: {}\n{}{}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn alert_rules_pass_promtool_and_every_alert_is_tested_and_documented() {
    promtool(&["check", "rules", "deploy/prometheus/alerts.yml"]);
    promtool(&["test", "rules", "deploy/prometheus/alerts_test.yml"]);
    promtool(&["check", "config", "deploy/prometheus/prometheus.yml"]);

    let rules = alert_rules();
    assert!(rules.len() >= 10, "{} alerts", rules.len());
    let tests = yaml("deploy/prometheus/alerts_test.yml");
    let mut firing = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for t in tests["tests"].as_array().unwrap() {
        for a in t["alert_rule_test"].as_array().into_iter().flatten() {
            let name = s(&a["alertname"]).to_string();
            assert!(
                rules.contains_key(&name),
                "alerts_test.yml tests {name}, which alerts.yml does not define"
            );
            match a["exp_alerts"].as_array() {
                Some(e) if !e.is_empty() => firing.insert(name),
                _ => quiet.insert(name),
            };
        }
    }
    let readme = read("README.md");
    for (name, r) in &rules {
        assert!(
            firing.contains(name),
            "alerts_test.yml has no case where {name} fires"
        );
        assert!(
            quiet.contains(name),
            "alerts_test.yml has no case where {name} stays quiet"
        );
        for key in ["summary", "description", "runbook"] {
            assert!(
                r["annotations"][key].is_string(),
                "{name} has no {key} annotation"
            );
        }
        assert!(
            matches!(s(&r["labels"]["severity"]), "warning" | "critical"),
            "{name}: severity"
        );
        let runbook = s(&r["annotations"]["runbook"]);
        let row = readme
            .lines()
            .find(|l| l.starts_with(&format!("| `{name}` |")))
            .unwrap_or_else(|| panic!("README's alert table lacks {name}"));
        assert!(
            row.contains(runbook),
            "README's row for {name} does not carry its runbook line:\n{row}\n{runbook}"
        );
    }
    scrape_job();
}

// ---------------------------------------------------------------------------------------
// Static agreement: Dockerfile, Kubernetes, compose, Grafana.

#[test]
fn every_deploy_file_parses() {
    let mut seen = 0;
    let mut stack = vec![repo().join("deploy")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            match p.extension().and_then(|e| e.to_str()) {
                _ if p.is_dir() => stack.push(p),
                Some("yml" | "yaml") => {
                    assert!(!yaml_docs(&p).is_empty(), "{} is empty", p.display());
                    seen += 1;
                }
                Some("json") => {
                    serde_json::from_str::<Value>(&std::fs::read_to_string(&p).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    seen += 1;
                }
                Some("toml") => {
                    toml::from_str::<toml::Table>(&std::fs::read_to_string(&p).unwrap())
                        .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                    seen += 1;
                }
                _ => {}
            }
        }
    }
    assert!(seen >= 15, "{seen} files");
}

#[test]
fn dockerfile_copies_what_exists_and_what_the_build_reads() {
    let df = dockerfile();
    let froms = instruction(&df, "FROM");
    let builder = froms
        .iter()
        .find(|f| f.contains(" AS builder"))
        .expect("a builder stage");
    assert!(
        builder.starts_with("rust:${RUST_VERSION}-bookworm"),
        "{builder}"
    );
    let rust: Vec<u32> = instruction(&df, "ARG")
        .iter()
        .find_map(|a| a.strip_prefix("RUST_VERSION="))
        .expect("ARG RUST_VERSION")
        .split('.')
        .map(|x| x.parse().unwrap())
        .collect();
    let manifest: toml::Table = toml::from_str(&read("Cargo.toml")).unwrap();
    let msrv: Vec<u32> = manifest["package"]["rust-version"]
        .as_str()
        .unwrap()
        .split('.')
        .map(|x| x.parse().unwrap())
        .collect();
    assert!(
        rust >= msrv,
        "the builder's Rust {rust:?} is older than rust-version {msrv:?}"
    );
    assert_eq!(froms.last().unwrap(), "debian:bookworm-slim");
    let runtime_deps = instruction(&df, "RUN")
        .into_iter()
        .find(|r| r.contains("libssl3"))
        .expect("the runtime installs libssl3");
    assert!(runtime_deps.contains("ca-certificates"));

    // COPY sources exist and the build context lets them through.
    let ignore: Vec<String> = read(".dockerignore")
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(String::from)
        .collect();
    let excluded = |path: &str| {
        let mut out = false;
        for p in &ignore {
            let (neg, pat) = match p.strip_prefix('!') {
                Some(x) => (true, x.trim_end_matches('/')),
                None => (false, p.trim_end_matches('/')),
            };
            if pat == "*" || path == pat || path.starts_with(&format!("{pat}/")) {
                out = !neg;
            }
        }
        out
    };
    let mut copied = Vec::new();
    for c in instruction(&df, "COPY") {
        let args: Vec<&str> = c.split_whitespace().collect();
        if args.iter().any(|a| a.starts_with("--from")) {
            continue;
        }
        let args: Vec<&str> = args.into_iter().filter(|a| !a.starts_with("--")).collect();
        for src in &args[..args.len() - 1] {
            let src = src.trim_end_matches('/');
            assert!(
                repo().join(src).exists(),
                "Dockerfile copies {src}, which does not exist"
            );
            assert!(
                !excluded(src),
                "Dockerfile copies {src}, which .dockerignore leaves out of the context"
            );
            copied.push(src.to_string());
        }
    }
    assert!(
        excluded("target") && excluded(".git"),
        ".dockerignore must keep target/ and .git/ out"
    );
    // Everything the release build reads: files embedded by src/, directories build.rs reads.
    let covered = |rel: &str| {
        copied
            .iter()
            .any(|c| rel == c || rel.starts_with(&format!("{c}/")))
    };
    let include = regex::Regex::new(r#"include_(?:str|bytes)!\("([^"]+)"\)"#).unwrap();
    let mut stack = vec![repo().join("src")];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|e| e == "rs") {
                for cap in include.captures_iter(&std::fs::read_to_string(&p).unwrap()) {
                    let target = p.parent().unwrap().join(&cap[1]);
                    let target = std::fs::canonicalize(&target)
                        .unwrap_or_else(|e| panic!("{}: {}: {e}", p.display(), &cap[1]));
                    let rel = target
                        .strip_prefix(repo().canonicalize().unwrap())
                        .unwrap()
                        .to_string_lossy()
                        .to_string();
                    assert!(
                        covered(&rel),
                        "{} embeds {rel}, which the Dockerfile does not copy",
                        p.display()
                    );
                }
            }
        }
    }
    for cap in regex::Regex::new(r#"Path::new\("([^"]+)"\)"#)
        .unwrap()
        .captures_iter(&read("build.rs"))
    {
        assert!(
            covered(&cap[1]),
            "build.rs reads {}, which the Dockerfile does not copy",
            &cap[1]
        );
    }

    let img = image();
    assert_eq!(img.config_path, "/etc/alertctx/alertctx.toml");
    assert!(img.uid > 0, "the image runs as root");
    assert!(
        instruction(&df, "RUN")
            .iter()
            .any(|r| r.contains(&format!("mkdir -p {ENRICHERS_DIR}"))),
        "the image creates {ENRICHERS_DIR}"
    );
    let hc = img.healthcheck.join(" ");
    assert!(
        hc.contains("/healthz") && hc.contains(&img.port.to_string()),
        "HEALTHCHECK asks /healthz on the exposed port: {hc}"
    );
}

/// Copy like Docker's COPY: a directory's contents into `dst`, a file to `dst`.
fn docker_copy(src: &Path, dst: &Path) {
    if src.is_dir() {
        std::fs::create_dir_all(dst).unwrap();
        for e in std::fs::read_dir(src).unwrap() {
            let e = e.unwrap();
            docker_copy(&e.path(), &dst.join(e.file_name()));
        }
    } else {
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap();
    }
}

/// `cargo fetch` parses the manifest as a build does (every declared target's path must
/// exist) and checks Cargo.lock, without compiling: the command line, for `sh`.
fn cargo_fetch() -> String {
    let host =
        String::from_utf8(Command::new("rustc").arg("-vV").output().unwrap().stdout).unwrap();
    let host = host
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .unwrap()
        .to_string();
    format!(
        "'{}' fetch --offline --locked --target {host}",
        env!("CARGO")
    )
}

/// Run a shell script in `dir` (as Docker's RUN does): Err(stderr) when it fails.
fn sh(dir: &Path, script: &str) -> Result<(), String> {
    let out = Command::new("sh")
        .args(["-c", script])
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

#[test]
fn dockerfile_builder_stages_give_cargo_a_buildable_tree() {
    // Replay the builder stage's file operations in a temporary directory: the COPYs, and the
    // placeholder RUN with its `cargo build` swapped for `cargo fetch`. Cargo must accept the
    // tree at both builds (a target Cargo.toml declares but the context lacks fails here, as it
    // would in `docker build`).
    let df = dockerfile();
    let start = df
        .iter()
        .position(|(k, a)| k == "FROM" && a.contains(" AS builder"))
        .unwrap();
    let end = start
        + 1
        + df[start + 1..]
            .iter()
            .position(|(k, _)| k == "FROM")
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut builds = 0;
    for (k, args) in &df[start..end] {
        match k.as_str() {
            "COPY" => {
                let parts: Vec<&str> = args
                    .split_whitespace()
                    .filter(|a| !a.starts_with("--"))
                    .collect();
                let (dst, srcs) = parts.split_last().unwrap();
                for src in srcs {
                    let to = if dst.ends_with('/') {
                        dir.path()
                            .join(dst)
                            .join(Path::new(src).file_name().unwrap())
                    } else {
                        dir.path().join(dst)
                    };
                    docker_copy(&repo().join(src), &to);
                }
            }
            "RUN" if args.contains("cargo build") => {
                builds += 1;
                let build = "cargo build --release --locked --bin alertctx";
                assert!(args.contains(build), "{args}");
                if args.contains("fn main() {}") {
                    // The placeholder layer, up to and including its build.
                    let script = args.replace(build, &cargo_fetch());
                    sh(dir.path(), &script)
                        .unwrap_or_else(|e| panic!("the dependency layer does not build:\n{e}"));
                } else {
                    sh(dir.path(), &cargo_fetch())
                        .unwrap_or_else(|e| panic!("the real build's tree does not build:\n{e}"));
                }
            }
            _ => {}
        }
    }
    assert_eq!(builds, 2, "a dependency build and the real build");
    assert!(dir.path().join("src/main.rs").is_file() && dir.path().join("build.rs").is_file());
}

/// Kubernetes objects of deploy/k8s by kind.
fn k8s() -> BTreeMap<String, Value> {
    let k = yaml("deploy/k8s/kustomization.yaml");
    let mut out = BTreeMap::new();
    for r in k["resources"].as_array().unwrap() {
        let path = repo().join("deploy/k8s").join(s(r));
        for doc in yaml_docs(&path) {
            let kind = s(&doc["kind"]).to_string();
            assert!(
                out.insert(kind.clone(), doc).is_none(),
                "two {kind} objects"
            );
        }
    }
    out
}

fn labels_match(selector: &Value, labels: &Value) {
    let sel = selector.as_object().expect("a label selector");
    assert!(!sel.is_empty());
    for (k, v) in sel {
        assert_eq!(
            &labels[k], v,
            "selector {k}={v} does not select the pods ({labels})"
        );
    }
}

#[test]
fn kubernetes_manifests_agree_with_the_image_and_the_configuration() {
    let img = image();
    let kust = yaml("deploy/k8s/kustomization.yaml");
    let objs = k8s();
    for kind in [
        "Namespace",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "ScaledObject",
    ] {
        assert!(objs.contains_key(kind), "deploy/k8s has no {kind}");
    }

    // The generated ConfigMaps: their files exist; the configuration is a valid Config.
    let mut generated: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for g in kust["configMapGenerator"].as_array().unwrap() {
        let files = g["files"].as_array().unwrap().iter().map(|f| {
            let p = repo().join("deploy/k8s").join(s(f));
            assert!(
                p.is_file(),
                "configMapGenerator file {} does not exist",
                p.display()
            );
            (p.file_name().unwrap().to_string_lossy().to_string(), p)
        });
        generated.insert(s(&g["name"]).to_string(), files.collect());
    }
    let config_text =
        std::fs::read_to_string(&generated["alertctx-config"]["alertctx.toml"]).unwrap();
    let cfg = Config::parse(&config_text, Vec::new())
        .expect("the ConfigMap's alertctx.toml is a valid configuration");
    let kafka = cfg.kafka.clone().expect("[kafka]");
    let port = listen_port(&cfg, "deploy/k8s/alertctx.toml");
    assert_eq!(
        port, img.port,
        "the metrics port is the port the image exposes"
    );
    assert_eq!(
        cfg.pipeline.enrichers.as_deref(),
        Some(Path::new(ENRICHERS_DIR))
    );
    assert!(
        !subscribes(&kafka.topics, &kafka.output_topic)
            && !subscribes(&kafka.topics, &kafka.dlq_topic),
        "the raw topics must not take the output topics"
    );

    // The example reference data is the repository's, byte for byte.
    for (name, path) in &generated["alertctx-enrichers"] {
        let rel = path.strip_prefix(repo().join("deploy/k8s")).unwrap();
        assert!(
            std::fs::read(path).unwrap() == std::fs::read(repo().join(rel)).unwrap(),
            "deploy/k8s/{0} differs from {0}: copy it again (cp {0} deploy/k8s/{0})",
            rel.display()
        );
        assert!(name.ends_with(".toml") || name.ends_with(".csv"));
    }

    // The Deployment.
    let d = &objs["Deployment"];
    let pod = &d["spec"]["template"];
    labels_match(
        &d["spec"]["selector"]["matchLabels"],
        &pod["metadata"]["labels"],
    );
    assert!(
        d["spec"]["replicas"].is_null(),
        "KEDA owns the replica count"
    );
    let spec = &pod["spec"];
    let grace = spec["terminationGracePeriodSeconds"]
        .as_f64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace > seconds(&kafka.drain_timeout) + 5.0,
        "grace period {grace}s must exceed drain_timeout {} with room for the commit",
        kafka.drain_timeout
    );
    assert_eq!(spec["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        spec["securityContext"]["runAsUser"].as_u64(),
        Some(img.uid),
        "runAsUser is the image's user"
    );
    let containers = spec["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let images: Vec<&str> = kust["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| s(&i["name"]))
        .collect();
    assert!(
        images.contains(&s(&c["image"])),
        "the container image {} is not rewritten by kustomization images {images:?}",
        c["image"]
    );
    let args: Vec<&str> = c["args"].as_array().unwrap().iter().map(s).collect();
    assert_eq!(args, ["run", "--config", img.config_path.as_str()]);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    let ports = c["ports"].as_array().unwrap();
    let metrics = ports
        .iter()
        .find(|p| p["containerPort"].as_u64() == Some(port as u64))
        .expect("the metrics port is a container port");
    let port_name = s(&metrics["name"]);
    for (probe, path) in [
        ("startupProbe", "/healthz"),
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
    ] {
        let h = &c[probe]["httpGet"];
        assert_eq!(s(&h["path"]), path, "{probe}");
        assert!(
            h["port"] == port_name || h["port"].as_u64() == Some(port as u64),
            "{probe} port {}",
            h["port"]
        );
    }
    assert!(
        c["resources"]["requests"]["cpu"].is_string()
            && c["resources"]["limits"]["memory"].is_string()
    );

    // Volumes: the config file and the reference data where the image and the config expect them.
    let volumes: BTreeMap<&str, &Value> = spec["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| (s(&v["name"]), v))
        .collect();
    let mounts: BTreeMap<&str, &Value> = c["volumeMounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (s(&m["mountPath"]), m))
        .collect();
    let config_mount = mounts
        .get(img.config_path.as_str())
        .expect("the configuration is mounted where CMD reads it");
    let config_volume = volumes[s(&config_mount["name"])];
    assert_eq!(s(&config_volume["configMap"]["name"]), "alertctx-config");
    assert_eq!(s(&config_mount["subPath"]), "alertctx.toml");
    let enr_mount = mounts
        .get(ENRICHERS_DIR)
        .expect("the reference data is mounted at [pipeline] enrichers");
    let enr_volume = volumes[s(&enr_mount["name"])];
    let enr_map = s(&enr_volume["configMap"]["name"]);
    assert!(mounts.values().all(|m| m["readOnly"] == true));

    // The reference-data volume as the kubelet lays it out loads, with the ConfigMap's
    // configuration, in `alertctx validate`.
    let dir = tempfile::tempdir().unwrap();
    for item in enr_volume["configMap"]["items"].as_array().unwrap() {
        let src = generated[enr_map]
            .get(s(&item["key"]))
            .unwrap_or_else(|| panic!("volume item {} is not a key of {enr_map}", item["key"]));
        let dst = dir.path().join("enrichers").join(s(&item["path"]));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(src, dst).unwrap();
    }
    let local = dir.path().join("alertctx.toml");
    let enr_line = format!("enrichers = \"{ENRICHERS_DIR}\"");
    assert!(config_text.contains(&enr_line));
    std::fs::write(
        &local,
        config_text.replace(
            &enr_line,
            &format!("enrichers = {:?}", dir.path().join("enrichers")),
        ),
    )
    .unwrap();
    let problems = alertctx::cli::validate_config(&local);
    assert!(
        problems.is_empty(),
        "alertctx validate on the ConfigMap and its reference data: {problems:#?}"
    );
    let loaded = alertctx::enrich::load_dir(&dir.path().join("enrichers")).unwrap();
    assert!(
        loaded.warnings.is_empty() && loaded.enrichers.len() >= 2,
        "{:?}",
        loaded.warnings
    );

    // Service, PodDisruptionBudget, ScaledObject.
    let svc = &objs["Service"];
    labels_match(&svc["spec"]["selector"], &pod["metadata"]["labels"]);
    let sp = &svc["spec"]["ports"][0];
    assert_eq!(sp["port"].as_u64(), Some(port as u64));
    assert!(sp["targetPort"] == port_name || sp["targetPort"].as_u64() == Some(port as u64));
    let ann = &svc["metadata"]["annotations"];
    assert_eq!(s(&ann["prometheus.io/scrape"]), "true");
    assert_eq!(s(&ann["prometheus.io/port"]), port.to_string());
    assert_eq!(s(&ann["prometheus.io/path"]), "/metrics");
    labels_match(
        &objs["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"],
        &pod["metadata"]["labels"],
    );
    let so = &objs["ScaledObject"];
    assert_eq!(so["spec"]["scaleTargetRef"]["name"], d["metadata"]["name"]);
    let partitions: u64 =
        s(&so["metadata"]["annotations"]["alertctx.example.com/raw-topic-partitions"])
            .parse()
            .unwrap();
    let (min, max) = (
        so["spec"]["minReplicaCount"].as_u64().unwrap(),
        so["spec"]["maxReplicaCount"].as_u64().unwrap(),
    );
    assert!(
        1 <= min && min <= max && max <= partitions,
        "replicas {min}..{max} with {partitions} partitions per raw topic"
    );
    let trigger = &so["spec"]["triggers"][0];
    assert_eq!(s(&trigger["type"]), "kafka");
    assert_eq!(s(&trigger["metadata"]["consumerGroup"]), kafka.group_id);
    assert_eq!(s(&trigger["metadata"]["bootstrapServers"]), kafka.brokers);
    assert_eq!(s(&trigger["metadata"]["allowIdleConsumers"]), "false");
}

#[test]
fn compose_stack_agrees_with_the_image_the_configuration_and_prometheus() {
    let img = image();
    let compose = yaml("deploy/compose/compose.yaml");
    let base = repo().join("deploy/compose");
    let services = compose["services"].as_object().unwrap();
    for name in [
        "kafka",
        "topic-init",
        "producer",
        "worker",
        "prometheus",
        "grafana",
    ] {
        assert!(
            services.contains_key(name),
            "compose.yaml has no service {name}"
        );
    }
    // Images: pinned third-party images, and the alertctx image built from deploy/Dockerfile.
    for (name, svc) in services {
        let image = s(&svc["image"]);
        let tag = image
            .rsplit_once(':')
            .map(|(_, t)| t)
            .unwrap_or_else(|| panic!("{name}: image {image} has no tag"));
        assert_ne!(tag, "latest", "{name}: pin the image");
    }
    assert!(s(&services["kafka"]["image"]).starts_with("apache/kafka:"));
    assert_eq!(services["topic-init"]["image"], services["kafka"]["image"]);
    for name in ["worker", "producer"] {
        let svc = &services[name];
        assert_eq!(svc["image"], services["worker"]["image"]);
        let ctx = base
            .join(s(&svc["build"]["context"]))
            .canonicalize()
            .unwrap();
        assert_eq!(
            ctx,
            repo().canonicalize().unwrap(),
            "{name} builds from the repository root"
        );
        assert!(ctx
            .join(s(&svc["build"]["dockerfile"]))
            .ends_with("deploy/Dockerfile"));
        assert!(ctx.join(s(&svc["build"]["dockerfile"])).is_file());
    }
    // Host paths of every bind mount exist.
    let mut binds: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (name, svc) in services {
        for v in svc["volumes"].as_array().into_iter().flatten() {
            let parts: Vec<&str> = s(v).split(':').collect();
            if parts[0].starts_with('.') {
                let host = base.join(parts[0]);
                assert!(
                    host.exists(),
                    "{name} mounts {}, which does not exist",
                    parts[0]
                );
                binds
                    .entry(name.clone())
                    .or_default()
                    .insert(parts[1].to_string(), host.canonicalize().unwrap());
            }
        }
    }

    // The workers: the image's paths, a valid configuration, the broker's listener.
    let worker = &services["worker"];
    let replicas = worker["deploy"]["replicas"].as_u64().unwrap();
    assert!((2..=3).contains(&replicas));
    let wb = &binds["worker"];
    let cfg_host = wb
        .get(&img.config_path)
        .expect("the worker's configuration is mounted where CMD reads it");
    assert_eq!(
        wb.get(ENRICHERS_DIR),
        Some(&repo().join("enrichers").canonicalize().unwrap())
    );
    let cmd: Vec<&str> = worker["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(cmd, ["run", "--config", img.config_path.as_str()]);
    let text = std::fs::read_to_string(cfg_host).unwrap();
    let cfg = Config::parse(&text, Vec::new())
        .expect("deploy/compose/alertctx.toml is a valid configuration");
    let kafka = cfg.kafka.clone().unwrap();
    let port = listen_port(&cfg, "deploy/compose/alertctx.toml");
    assert_eq!(port, img.port);
    assert_eq!(
        cfg.pipeline.enrichers.as_deref(),
        Some(Path::new(ENRICHERS_DIR))
    );
    let advertised = s(&services["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]);
    assert!(
        advertised
            .split(',')
            .any(|l| l.ends_with(&format!("://{}", kafka.brokers))),
        "{} is not advertised: {advertised}",
        kafka.brokers
    );
    assert!(seconds(s(&worker["stop_grace_period"])) > seconds(&kafka.drain_timeout));
    let local = tempfile::tempdir().unwrap();
    let local_cfg = local.path().join("alertctx.toml");
    std::fs::write(
        &local_cfg,
        text.replace(
            &format!("\"{ENRICHERS_DIR}\""),
            &format!("{:?}", repo().join("enrichers")),
        ),
    )
    .unwrap();
    let problems = alertctx::cli::validate_config(&local_cfg);
    assert!(
        problems.is_empty(),
        "alertctx validate on deploy/compose/alertctx.toml: {problems:#?}"
    );

    // Topics: topic-init creates raw.<dir> for every fixture directory plus the output topics;
    // the producer sends every example source to raw.<source>; the workers take exactly those.
    let init = services["topic-init"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect::<Vec<_>>()
        .join("\n");
    let fixtures = binds["topic-init"]
        .iter()
        .find(|(_, h)| **h == repo().join("tests/fixtures").canonicalize().unwrap())
        .expect("topic-init reads tests/fixtures")
        .0;
    assert!(
        init.contains(&format!("{fixtures}/*/")) && init.contains("\"raw.$$(basename"),
        "{init}"
    );
    for t in [&kafka.output_topic, &kafka.dlq_topic] {
        assert!(
            init.contains(&format!("create {t}\n")),
            "topic-init does not create {t}"
        );
        assert!(
            !subscribes(&kafka.topics, t),
            "the workers would consume their own output topic {t}"
        );
    }
    let producer: Vec<&str> = services["producer"]["command"]
        .as_array()
        .unwrap()
        .iter()
        .map(s)
        .collect();
    assert_eq!(producer[0], "produce");
    let arg = |k: &str| {
        producer
            .windows(2)
            .find(|w| w[0] == k)
            .map(|w| w[1])
            .unwrap_or_else(|| panic!("producer has no {k}"))
    };
    assert_eq!(arg("--brokers"), kafka.brokers);
    assert_eq!(arg("--topic-prefix"), "raw.");
    let mut sources: BTreeSet<String> = alertctx::demo::EXAMPLES
        .iter()
        .map(|(src, _, _)| src.to_string())
        .collect();
    for d in std::fs::read_dir(repo().join("tests/fixtures")).unwrap() {
        let d = d.unwrap().path();
        if d.is_dir() {
            sources.insert(d.file_name().unwrap().to_string_lossy().to_string());
        }
    }
    for (topic, _) in alertctx::produce::messages(arg("--topic-prefix")) {
        assert!(
            sources.contains(topic.strip_prefix("raw.").unwrap()),
            "the producer sends to {topic}, which topic-init does not create"
        );
    }
    for src in &sources {
        assert!(
            subscribes(&kafka.topics, &format!("raw.{src}")),
            "the workers do not consume raw.{src}"
        );
    }

    // Prometheus scrapes the workers on the metrics port, with the rules loaded.
    let pb = &binds["prometheus"];
    let prom_cfg = pb
        .get("/etc/prometheus/prometheus.yml")
        .expect("prometheus.yml mounted");
    assert!(prom_cfg.ends_with("deploy/prometheus/prometheus.yml"));
    let prom = yaml("deploy/prometheus/prometheus.yml");
    for rf in prom["rule_files"].as_array().unwrap() {
        let inside = Path::new("/etc/prometheus").join(s(rf));
        let host = pb
            .get(inside.to_str().unwrap())
            .unwrap_or_else(|| panic!("rule file {} is not mounted", inside.display()));
        assert!(host.ends_with("deploy/prometheus/alerts.yml"));
    }
    let job = scrape_job();
    let jc = prom["scrape_configs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| s(&j["job_name"]) == job)
        .unwrap();
    let sd = &jc["dns_sd_configs"][0];
    assert_eq!(sd["port"].as_u64(), Some(port as u64));
    assert!(
        sd["names"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| services.contains_key(s(n))),
        "scrape targets name compose services"
    );

    // Grafana: provisioning and the dashboard where the provider looks.
    let gb = &binds["grafana"];
    let prov = gb
        .get("/etc/grafana/provisioning")
        .expect("provisioning mounted");
    let ds = yaml_docs(&prov.join("datasources/prometheus.yaml")).remove(0);
    let url = s(&ds["datasources"][0]["url"]);
    assert_eq!(url, "http://prometheus:9090");
    assert!(services["prometheus"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| s(p).ends_with(":9090")));
    let providers = yaml_docs(&prov.join("dashboards/alertctx.yaml")).remove(0);
    let dash_dir = s(&providers["providers"][0]["options"]["path"]);
    let (inside, host) = gb
        .iter()
        .find(|(_, h)| h.ends_with("deploy/grafana/alertctx.json"))
        .expect("dashboard mounted");
    assert_eq!(Path::new(inside).parent().unwrap(), Path::new(dash_dir));
    assert_eq!(
        s(&services["grafana"]["environment"]["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]),
        inside.as_str()
    );
    let dash: Value = serde_json::from_str(&std::fs::read_to_string(host).unwrap()).unwrap();
    let mut uids = Vec::new();
    strings_under(&dash, "uid", &mut uids);
    assert!(
        uids.iter()
            .filter(|u| u.starts_with('$'))
            .all(|u| u == "${datasource}"),
        "{uids:?}"
    );
    assert!(dash["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .any(|v| v["name"] == "datasource" && v["query"] == "prometheus"));
}

// ---------------------------------------------------------------------------------------
// A real Prometheus scraping a real worker.

/// A Prometheus server on a free loopback port, killed when dropped.
struct Prometheus {
    child: std::process::Child,
    addr: String,
    dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(job: &str, target: &str) -> Prometheus {
        let bin = tool("prometheus");
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\nrule_files:\n  - {rules:?}\nscrape_configs:\n  - job_name: {job}\n    static_configs:\n      - targets: [\"{target}\"]\n",
            rules = repo().join("deploy/prometheus/alerts.yml").display().to_string(),
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let addr = free_addr();
        let log = std::fs::File::create(dir.path().join("prometheus.log")).unwrap();
        let child = Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        let p = Prometheus { child, addr, dir };
        let deadline = Instant::now() + Duration::from_secs(60);
        while get10(&p.addr, "/-/ready").map(|(st, _)| st) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "Prometheus did not become ready:\n{}",
                p.log()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("prometheus.log")).unwrap_or_default()
    }

    /// An instant query: Ok(result vector) or Err(error text).
    fn query(&self, q: &str) -> Result<Vec<Value>, String> {
        let (status, body) = get10(&self.addr, &format!("/api/v1/query?query={}", urlencode(q)))
            .ok_or("no answer")?;
        let v: Value = serde_json::from_str(&body).map_err(|e| format!("{e}: {body}"))?;
        if status != 200 || v["status"] != "success" {
            return Err(format!("{status}: {body}"));
        }
        Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
    }

    fn scalar(&self, q: &str) -> Option<f64> {
        let r = self.query(q).unwrap_or_else(|e| panic!("{q}: {e}"));
        r.first()
            .and_then(|s| s["value"][1].as_str())
            .and_then(|v| v.parse().ok())
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HTTP/1.0 GET (no chunked encoding): (status, body), None when nothing answers.
fn get10(addr: &str, path: &str) -> Option<(u16, String)> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").ok()?;
    let mut buf = String::new();
    s.read_to_string(&mut buf).ok()?;
    let status = buf.split_whitespace().nth(1)?.parse().ok()?;
    Some((
        status,
        buf.split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default(),
    ))
}

fn urlencode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Metric names exported in a scrape, with their types.
fn exported(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .map(|(n, t)| (n.to_string(), t.to_string()))
        .collect()
}

/// Every `alertctx_*` name a file mentions that the scrape does not export (histogram series
/// `_bucket`, `_sum`, `_count` count as their histogram).
fn unknown_metrics(text: &str, exported: &BTreeMap<String, String>) -> BTreeSet<String> {
    let re = regex::Regex::new(r"alertctx_[a-z_]+").unwrap();
    re.find_iter(text)
        .map(|m| m.as_str().to_string())
        .filter(|name| {
            if exported.contains_key(name) {
                return false;
            }
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suf| name.strip_suffix(suf));
            let histogram_series =
                base.is_some_and(|b| exported.get(b).is_some_and(|t| t == "histogram"));
            !histogram_series
        })
        .collect()
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
struct Counts {
    bundles: u64,
    duplicates: u64,
    dead_letters: u64,
}

/// What the worker must make of the messages: the same pipeline, offline, in offset order.
fn expected(cfg: &Config, topic: &str, payloads: &[Vec<u8>]) -> Counts {
    let mut pipeline = Pipeline::from_config(cfg).unwrap();
    let mut out = Vec::new();
    let mut c = Counts::default();
    let now = chrono::Utc::now().timestamp_millis();
    for (i, p) in payloads.iter().enumerate() {
        let rec = frame_message(
            p,
            Origin::Kafka {
                topic: topic.into(),
                partition: 0,
                offset: i as i64,
            },
        );
        pipeline.process(
            &rec,
            RecordContext {
                broker_ms: Some(now),
            },
            &mut out,
        );
        for o in out.drain(..) {
            match o {
                Outcome::Bundle { .. } => c.bundles += 1,
                Outcome::Duplicate { .. } => c.duplicates += 1,
                Outcome::DeadLetter(_) => c.dead_letters += 1,
            }
        }
    }
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_scrapes_a_worker_and_reports_what_was_sent() {
    tool("prometheus"); // fail early, before the broker work, when it is missing
    let b = brokers();
    // Topics under a unique prefix, subscribed by pattern as deploy/'s configurations do.
    let prefix = unique("deploy");
    let raw = format!("{prefix}-raw.examples");
    let (out, dlq, group) = (
        format!("{prefix}-bundles"),
        format!("{prefix}-dlq"),
        format!("{prefix}-group"),
    );
    create_topics(&b, &[(&raw, 1), (&out, 2), (&dlq, 2)]).await;
    // Twice over, so repeats are folded; one partition, so the offline count sees the same order.
    // With alerts from public addresses, which geo looks up (the examples have none).
    let mut payloads = example_payloads(2);
    payloads.extend(common::public_alerts().into_iter().map(String::into_bytes));
    let n = produce(&b, &raw, &payloads) as f64;

    let listen = free_addr();
    let mut cfg = worker_config(&b, &group, &raw, &out, &dlq, true, &listen);
    // The reference data as deployed, geo included (on test databases).
    let reference = tempfile::tempdir().unwrap();
    cfg.pipeline.enrichers = Some(mmdb::deployed_enrichers(reference.path()));
    cfg.quality.reference_time = "wall".into(); // the examples are old: time gaps get counted
    let k = cfg.kafka.as_mut().unwrap();
    k.topics = vec![format!("^{}-raw\\..+", regex::escape(&prefix))];
    k.consumer
        .insert("statistics.interval.ms".into(), "1000".into()); // consumer lag every second
    let want = expected(&cfg, &raw, &payloads);
    assert!(
        want.bundles > 0 && want.duplicates > 0 && want.dead_letters > 0,
        "{want:?}"
    );

    let job = scrape_job();
    let prom = Arc::new(Prometheus::start(&job, &listen));
    let scraped = Arc::new(Mutex::new(String::new()));

    let (p2, s2, l2, b2, g2, r2) = (
        prom.clone(),
        scraped.clone(),
        listen.clone(),
        b.clone(),
        group.clone(),
        raw.clone(),
    );
    let shutdown = async move {
        // 1. The worker has consumed and committed everything and reports its lag.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let (l, b, g, r) = (l2.clone(), b2.clone(), g2.clone(), r2.clone());
            let (text, caught_up) = tokio::task::spawn_blocking(move || {
                let text = get10(&l, "/metrics").map(|(_, t)| t).unwrap_or_default();
                (text, committed(&b, &g, &r, 1) == end_offsets(&b, &r, 1))
            })
            .await
            .unwrap();
            let consumed = metric_sum(&text, "alertctx_input_messages_total", &[]);
            let in_flight = metric_sum(&text, "alertctx_in_flight_messages", &[]);
            if consumed >= n
                && in_flight == 0.0
                && caught_up
                && text.contains("alertctx_consumer_lag_messages{")
            {
                break;
            }
            assert!(Instant::now() < deadline, "worker did not catch up: consumed {consumed} of {n}, in flight {in_flight}, committed: {caught_up}");
        }
        // 2. Prometheus, queried while the worker still runs.
        tokio::task::spawn_blocking(move || {
            let prom = p2;
            let deadline = Instant::now() + Duration::from_secs(60);
            // Scraped after the last message: the input count is all of it.
            while prom.scalar("sum(alertctx_input_messages_total)") != Some(n) {
                assert!(Instant::now() < deadline, "Prometheus never saw {n} input messages:\n{}", prom.log());
                std::thread::sleep(Duration::from_millis(500));
            }
            assert_eq!(prom.scalar(&format!("sum(alertctx_input_messages_total{{topic={raw:?}}})", raw = r2)), Some(n));
            assert_eq!(prom.scalar("sum(alertctx_bundles_total)"), Some(want.bundles as f64), "bundles");
            assert_eq!(prom.scalar("sum(alertctx_duplicates_folded_total)"), Some(want.duplicates as f64), "folded duplicates");
            assert_eq!(prom.scalar("sum(alertctx_dead_letters_total)"), Some(want.dead_letters as f64), "dead letters");
            assert_eq!(prom.scalar("sum(alertctx_records_total)"), Some((want.bundles + want.duplicates) as f64), "records");
            assert_eq!(prom.scalar("sum(alertctx_quality_score_count)"), Some(want.bundles as f64), "scored bundles");
            assert_eq!(prom.scalar(&format!("up{{job={job:?}}}")), Some(1.0), "the scrape job the alert rules select");
            assert_eq!(prom.scalar("alertctx_ready"), Some(1.0));
            assert_eq!(prom.scalar("alertctx_assigned_partitions"), Some(1.0));

            // Every alert rule evaluates on live data without error.
            let rules = loop {
                let (_, body) = get10(&prom.addr, "/api/v1/rules").expect("rules API");
                let v: Value = serde_json::from_str(&body).unwrap();
                let rules: Vec<Value> = v["data"]["groups"].as_array().unwrap().iter().flat_map(|g| g["rules"].as_array().unwrap().clone()).collect();
                if rules.iter().all(|r| r["health"] == "ok") {
                    break rules;
                }
                let bad: Vec<String> = rules.iter().filter(|r| r["health"] == "err").map(|r| format!("{}: {}", r["name"], r["lastError"])).collect();
                assert!(bad.is_empty(), "alert rules fail to evaluate: {bad:#?}");
                assert!(Instant::now() < deadline, "alert rules never evaluated:\n{}", prom.log());
                std::thread::sleep(Duration::from_millis(500));
            };
            assert_eq!(rules.len(), alert_rules().len(), "Prometheus loaded every rule of alerts.yml");

            // Every dashboard query runs and returns data.
            let dash: Value = serde_json::from_str(&read("deploy/grafana/alertctx.json")).unwrap();
            let mut exprs = Vec::new();
            strings_under(&dash, "expr", &mut exprs);
            assert!(exprs.len() >= 20, "{} panel queries", exprs.len());
            // Rates need two samples inside their window: wait for a few scrapes.
            std::thread::sleep(Duration::from_secs(3));
            for e in &exprs {
                let q = e.replace("$__rate_interval", "1m").replace("$__range", "1h").replace("$__interval", "15s").replace("$source", ".*");
                assert!(!q.contains('$'), "unknown dashboard variable in {e}");
                let r = prom.query(&q).unwrap_or_else(|err| panic!("dashboard query fails: {q}\n{err}"));
                assert!(!r.is_empty(), "dashboard query returns nothing on a worker that processed every example: {q}");
            }
            eprintln!(
                "deploy: {n} messages -> {want:?}, as Prometheus reports; {} alert rules evaluated, {} dashboard queries returned data",
                rules.len(),
                exprs.len()
            );
            *s2.lock().unwrap() = get10(&l2, "/metrics").expect("metrics").1;
        })
        .await
        .unwrap();
    };
    let stats = alertctx::worker::run(&cfg, Arc::new(Metrics::new()), shutdown)
        .await
        .unwrap();
    drop(prom); // stops Prometheus (and would on a failed assertion too, as the test unwinds)

    assert_eq!(stats.messages as f64, n);
    assert_eq!(
        Counts {
            bundles: stats.bundles,
            duplicates: stats.duplicates,
            dead_letters: stats.dead_letters
        },
        want
    );

    // Every metric the dashboard and the alert rules name is one the worker exports.
    let text = scraped.lock().unwrap().clone();
    let exp = exported(&text);
    for f in [
        "deploy/grafana/alertctx.json",
        "deploy/prometheus/alerts.yml",
    ] {
        let unknown = unknown_metrics(&read(f), &exp);
        assert!(
            unknown.is_empty(),
            "{f} names metrics the worker does not export: {unknown:?}\nexported: {:?}",
            exp.keys().collect::<Vec<_>>()
        );
    }
    assert!(
        !unknown_metrics("alertctx_no_such_metric_total", &exp).is_empty(),
        "the name check can fail"
    );
}

#[test]
fn the_image_healthcheck_asks_a_live_worker() {
    // The HEALTHCHECK command of the Dockerfile, pointed at a worker's endpoint on a free port.
    let img = image();
    let b = brokers();
    let listen = free_addr();
    let port = listen.rsplit_once(':').unwrap().1.to_string();
    let (template, image_port) = (img.healthcheck.clone(), img.port.to_string());
    let hc = move |port: &str| -> bool {
        let cmd: Vec<String> = template
            .iter()
            .map(|a| a.replace(&image_port, port))
            .collect();
        Command::new(&cmd[0])
            .args(&cmd[1..])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    };
    assert!(!hc(&port), "the healthcheck passes with nothing listening");
    let prefix = unique("health");
    let (raw, out, dlq) = (
        format!("{prefix}-raw"),
        format!("{prefix}-out"),
        format!("{prefix}-dlq"),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(create_topics(&b, &[(&raw, 1), (&out, 1), (&dlq, 1)]));
    let cfg = worker_config(
        &b,
        &format!("{prefix}-group"),
        &raw,
        &out,
        &dlq,
        false,
        &listen,
    );
    let ok = Arc::new(Mutex::new(false));
    let ok2 = ok.clone();
    let shutdown = async move {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (port, hc) = (port.clone(), hc.clone());
            if tokio::task::spawn_blocking(move || hc(&port))
                .await
                .unwrap()
            {
                *ok2.lock().unwrap() = true;
                return;
            }
            if Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    };
    rt.block_on(alertctx::worker::run(
        &cfg,
        Arc::new(Metrics::new()),
        shutdown,
    ))
    .unwrap();
    assert!(
        *ok.lock().unwrap(),
        "the Dockerfile's HEALTHCHECK never passed against a running worker"
    );
}
