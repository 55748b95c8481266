//! Criterion benchmarks of the core, one group per stage, on the seeded generated corpus
//! (`alertctx generate`), with production-sized reference data: 100k assets, 100k users and a
//! City database of a million networks, all generated deterministically into
//! `target/bench-data/` on first use.
//!
//! Run: `cargo bench --bench core` (all groups) or `cargo bench --bench core -- core/` (one).

#[path = "../tests/common/mmdb.rs"]
mod mmdb;

use alertctx::config::Config;
use alertctx::decode::framing::{frame_all, Framed};
use alertctx::decode::{decode_record, Limits};
use alertctx::enrich::EnrichOutput;
use alertctx::generate::Generator;
use alertctx::normalize::Normalizer;
use alertctx::pipeline::{Outcome, Pipeline, RecordContext};
use alertctx::record::{RawRecord, RecordKind};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;
use std::path::{Path, PathBuf};

const CORPUS: usize = 20_000;
const ASSETS: usize = 100_000;
const USERS: usize = 100_000;
const NETWORKS: usize = 1_000_000;

fn corpus() -> Vec<RawRecord> {
    let mut text = String::new();
    for r in Generator::new(1).take(CORPUS) {
        text.push_str(&r.line);
        text.push('\n');
    }
    frame_all("bench", text.as_bytes(), Limits::default())
        .into_iter()
        .filter_map(|f| match f {
            Framed::Record(r) => Some(r),
            Framed::Error { .. } => None,
        })
        .collect()
}

fn bytes_of(records: &[RawRecord]) -> u64 {
    records.iter().map(|r| r.bytes.len() as u64).sum()
}

/// Reference data at production size, written once.
fn bench_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/v1");
    let defs = dir.join("enrichers");
    if defs.join("geo.toml").exists() {
        return defs;
    }
    std::fs::create_dir_all(defs.join("data")).unwrap();
    let mut assets = String::from(
        "asset_id,hostname,fqdn,ip,cidr,owner,business_unit,criticality,environment,os,tags\n",
    );
    for i in 0..ASSETS {
        let (b, c) = (i / 250 % 250, i % 250 + 2);
        let net = [10, 10, 10, 172][i % 4];
        assets.push_str(&format!(
            "A{i:06},host{i:06},host{i:06}.corp.example.com,{net}.{}.{b}.{c},,team{},bu{},{},prod,Windows 11,tag{}\n",
            i / 62_500 + 20,
            i % 97,
            i % 13,
            ["low", "medium", "high", "crown_jewel"][i % 4],
            i % 7
        ));
    }
    assets.push_str("SEG1,,,,10.0.0.0/8,infra,it,medium,prod,,segment\n");
    std::fs::write(defs.join("data/assets.csv"), assets).unwrap();
    let mut users = String::from("user_id,sam_account_name,upn,email,sid,display_name,department,title,manager,privileged,status,groups,domain\n");
    for i in 0..USERS {
        users.push_str(&format!(
            "u{i},user{i},user{i}@corp.example.com,user{i}@example.com,S-1-5-21-1-2-3-{},User {i},dept{},title,mgr,{},enabled,g{};h{},CORP\n",
            10_000 + i,
            i % 40,
            if i % 50 == 0 { "yes" } else { "no" },
            i % 9,
            i % 11
        ));
    }
    // The generator's own user names, so its records hit the directory too.
    for (i, u) in [
        "jdoe",
        "asmith",
        "rlee",
        "mgarcia",
        "dbrown",
        "lchen",
        "ejohnson",
        "fschmidt",
        "ctaylor",
        "svc-backup",
        "adm-asmith",
        "administrator",
    ]
    .iter()
    .enumerate()
    {
        users.push_str(&format!("g{i},{u},{u}@corp.example.com,,S-1-5-21-1111111111-2222222222-3333333333-{},{u},IT,,,no,enabled,,CORP\n", 1100 + i));
    }
    std::fs::write(defs.join("data/users.csv"), users).unwrap();
    for f in ["assets.toml", "users.toml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("enrichers")
                .join(f),
            defs.join(f),
        )
        .unwrap();
    }
    write_big_city(&defs.join("data/city.mmdb"));
    std::fs::write(
        defs.join("geo.toml"),
        "name = \"geo\"\nkind = \"geo\"\ncity = \"data/city.mmdb\"\nip_attributes = [\"src_endpoint.ip\", \"dst_endpoint.ip\"]\ncache_size = 100000\n",
    )
    .unwrap();
    defs
}

/// A City database with NETWORKS /24 networks spread over the public IPv4 space.
fn write_big_city(path: &Path) {
    let places: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            mmdb::city_record(&mmdb::Place {
                continent: ("EU", "Europe"),
                country: (
                    ["DE", "FR", "US", "JP"][i % 4],
                    ["Germany", "France", "United States", "Japan"][i % 4],
                ),
                subdivision: None,
                city: Some(["Berlin", "Paris", "Boston", "Osaka"][i % 4]),
                latitude: 10.0 + i as f64,
                longitude: 20.0 + i as f64,
                accuracy_radius: 50,
            })
        })
        .collect();
    let mut nets = Vec::with_capacity(NETWORKS);
    let mut n: u32 = 1 << 24; // 1.0.0.0
    while nets.len() < NETWORKS {
        let a = n >> 24;
        if ![10, 100, 127, 169, 172, 192, 198, 203].contains(&a) && a < 224 {
            nets.push((
                format!("{}.{}.{}.0/24", a, (n >> 16) & 255, (n >> 8) & 255),
                places[nets.len() % places.len()].clone(),
            ));
        }
        n += 256 * 3; // every third /24
    }
    let refs: Vec<(&str, serde_json::Value)> =
        nets.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    mmdb::write_mmdb(path, "Bench-City", &refs).unwrap();
}

fn pipeline(enrich: bool) -> Pipeline {
    let mut cfg = Config::default();
    cfg.quality.reference_time = "none".into();
    if enrich {
        cfg.pipeline.enrichers = Some(bench_data());
    }
    Pipeline::from_config(&cfg).unwrap()
}

fn bench_stages(c: &mut Criterion) {
    let records = corpus();
    let n = records.len() as u64;
    let limits = Limits::default();

    let mut g = c.benchmark_group("decode");
    g.throughput(Throughput::Bytes(bytes_of(&records)));
    g.bench_function("mixed", |b| {
        let mut buf = Vec::new();
        b.iter(|| {
            for r in &records {
                let v = decode_record(r, &mut buf, &limits).unwrap();
                black_box(&v);
            }
        })
    });
    g.finish();

    let normalizer = Normalizer::embedded(vec![]).unwrap();
    let mut g = c.benchmark_group("normalize");
    for source in [
        "zeek",
        "suricata",
        "windows_security",
        "okta",
        "cloudtrail",
        "cef",
    ] {
        let subset: Vec<&RawRecord> = records
            .iter()
            .filter(|r| {
                let mut buf = Vec::new();
                let v = decode_record(r, &mut buf, &limits).unwrap();
                let fmt = if r.kind == RecordKind::Text {
                    "cef"
                } else {
                    "json"
                };
                normalizer
                    .detect(&v, fmt, "bench")
                    .is_some_and(|m| m.id == source)
            })
            .collect();
        g.throughput(Throughput::Elements(subset.len() as u64));
        g.bench_function(source, |b| {
            let mut buf = Vec::new();
            b.iter(|| {
                for r in &subset {
                    let v = decode_record(r, &mut buf, &limits).unwrap();
                    let fmt = if r.kind == RecordKind::Text {
                        "cef"
                    } else {
                        "json"
                    };
                    black_box(normalizer.normalize(&v, fmt, "bench"));
                }
            })
        });
    }
    g.finish();

    // Normalized alerts for the later stages.
    let alerts: Vec<(serde_json::Value, u32, String)> = records
        .iter()
        .map(|r| {
            let mut buf = Vec::new();
            let v = decode_record(r, &mut buf, &limits).unwrap();
            let fmt = if r.kind == RecordKind::Text {
                "cef"
            } else {
                "json"
            };
            let out = normalizer.normalize(&v, fmt, "bench");
            (
                serde_json::Value::Object(out.mapped.alert.clone()),
                out.mapped.class_uid,
                out.source_id().to_string(),
            )
        })
        .collect();

    let mut loaded = alertctx::enrich::load_dir(&bench_data()).unwrap();
    let mut g = c.benchmark_group("enrich");
    g.throughput(Throughput::Elements(n));
    for e in loaded.enrichers.iter_mut() {
        let name = e.name().to_string();
        g.bench_function(&name, |b| {
            b.iter(|| {
                for (a, _, _) in &alerts {
                    let mut out = EnrichOutput::default();
                    e.enrich(a, &mut out);
                    black_box(out);
                }
            })
        });
    }
    // Geo on a cold cache: every lookup goes to the million-network tree.
    let geo_dir = bench_data();
    g.bench_function("geo_cache_miss", |b| {
        b.iter_batched(
            || {
                alertctx::enrich::load_definition(&geo_dir.join("geo.toml"))
                    .unwrap()
                    .enrichers
                    .pop()
                    .unwrap()
            },
            |mut e| {
                for (a, _, _) in alerts.iter().take(2000) {
                    let mut out = EnrichOutput::default();
                    e.enrich(a, &mut out);
                    black_box(out);
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let tagger = alertctx::tag::Tagger::embedded().unwrap();
    let mut g = c.benchmark_group("tag");
    g.throughput(Throughput::Elements(n));
    g.bench_function("embedded_rules", |b| {
        let empty = EnrichOutput::default();
        b.iter(|| {
            for (a, _, _) in &alerts {
                black_box(tagger.tag(a, &empty));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("dedup");
    g.throughput(Throughput::Elements(n));
    g.bench_function("check", |b| {
        b.iter_batched(
            || alertctx::dedup::Deduper::new(&Default::default()).unwrap(),
            |mut d| {
                for (a, class, source) in &alerts {
                    black_box(d.check(a, *class, source));
                }
            },
            BatchSize::LargeInput,
        )
    });
    g.finish();

    let scorer = alertctx::score::Scorer::new(&alertctx::score::QualityConfig {
        reference_time: "none".into(),
        ..Default::default()
    })
    .unwrap();
    let mut g = c.benchmark_group("score");
    g.throughput(Throughput::Elements(n));
    g.bench_function("check", |b| {
        b.iter(|| {
            for (a, class, _) in &alerts {
                let (mut gaps, mut fill) = (Vec::new(), Vec::new());
                scorer.check(a, *class, None, &mut gaps, &mut fill);
                black_box(alertctx::score::score(&gaps));
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("serialize");
    g.throughput(Throughput::Elements(n));
    g.bench_function("alert_json", |b| {
        b.iter(|| {
            for (a, _, _) in &alerts {
                black_box(serde_json::to_string(a).unwrap());
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    for (name, enrich) in [("no_enrichment", false), ("full", true)] {
        g.bench_function(name, |b| {
            b.iter_batched(
                || pipeline(enrich),
                |mut p| {
                    let mut out = Vec::with_capacity(4);
                    let mut bundles = 0;
                    for r in &records {
                        p.process(r, RecordContext::default(), &mut out);
                        bundles += out
                            .iter()
                            .filter(|o| matches!(o, Outcome::Bundle { .. }))
                            .count();
                        out.clear();
                    }
                    black_box(bundles)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, bench_stages);
criterion_main!(benches);
