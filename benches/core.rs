//! Criterion benchmarks of the core, one group per stage, on the seeded generated corpus
//! (`alertctx generate`), with production-sized reference data: 100k assets, 100k users and a
//! City database of a million networks, all generated deterministically into
//! `target/bench-data/` on first use.
//!
//! Run: `cargo bench --bench core` (all groups) or `cargo bench --bench core -- core/` (one).

#[path = "common/refdata.rs"]
mod refdata;

/// The allocator the binary uses (src/main.rs), so these figures are the binary's.
#[global_allocator]
static ALLOC: alertctx::alloc::MiMalloc = alertctx::alloc::MiMalloc;

use alertctx::config::Config;
use alertctx::decode::framing::{frame_all, Framed};
use alertctx::decode::{decode_record, Limits};
use alertctx::enrich::EnrichOutput;
use alertctx::generate::Generator;
use alertctx::normalize::Normalizer;
use alertctx::pipeline::{Outcome, Pipeline, RecordContext, GROUP_RUN};
use alertctx::record::{RawRecord, RecordKind};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::hint::black_box;

const CORPUS: usize = 20_000;

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

fn pipeline(enrich: bool) -> Pipeline {
    pipeline_with(enrich, true)
}

/// `exact`: exact repeats folded by their bytes (`dedup.exact_repeats`, on by default).
fn pipeline_with(enrich: bool, exact: bool) -> Pipeline {
    let mut cfg = Config::default();
    cfg.quality.reference_time = "none".into();
    if enrich {
        cfg.pipeline.enrichers = Some(refdata::bench_data());
    }
    if !exact {
        cfg.dedup.exact_repeats = 0;
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

    let mut loaded = alertctx::enrich::load_dir(&refdata::bench_data()).unwrap();
    let mut g = c.benchmark_group("enrich");
    g.throughput(Throughput::Elements(n));
    for e in loaded.enrichers.iter_mut() {
        let name = e.name().to_string();
        g.bench_function(&name, |b| {
            b.iter(|| {
                for (a, _, _) in &alerts {
                    let mut out = EnrichOutput::default();
                    e.enrich(&alertctx::path::AlertView::new(a), &mut out);
                    black_box(out);
                }
            })
        });
    }
    // Geo on a cold cache: every lookup goes to the million-network tree. A fresh enricher
    // for each batch of 2,000 alerts, so the throughput is per alert of that batch.
    g.throughput(Throughput::Elements(2000));
    let geo_dir = refdata::bench_data();
    g.bench_function("geo_cache_miss", |b| {
        // `_ref`: the enricher (its database and cache) is dropped outside the timing.
        b.iter_batched_ref(
            || {
                alertctx::enrich::load_definition(&geo_dir.join("geo.toml"))
                    .unwrap()
                    .enrichers
                    .pop()
                    .unwrap()
            },
            |e| {
                for (a, _, _) in alerts.iter().take(2000) {
                    let mut out = EnrichOutput::default();
                    e.enrich(&alertctx::path::AlertView::new(a), &mut out);
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
        // `_ref`: the window is dropped outside the timing.
        b.iter_batched_ref(
            || alertctx::dedup::Deduper::new(&Default::default()).unwrap(),
            |d| {
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

    // The alert as the bundle writes it (src/jsonout.rs), and as serde_json would: the same
    // bytes.
    let mut g = c.benchmark_group("serialize");
    g.throughput(Throughput::Elements(n));
    g.bench_function("alert_json", |b| {
        let mut out = Vec::new();
        b.iter(|| {
            for (a, _, _) in &alerts {
                out.clear();
                alertctx::jsonout::write_value(&mut out, a);
                black_box(&out);
            }
        })
    });
    g.bench_function("alert_serde_json", |b| {
        b.iter(|| {
            for (a, _, _) in &alerts {
                black_box(serde_json::to_string(a).unwrap());
            }
        })
    });
    g.finish();

    // Counting outcomes in the worker's metrics, in steady state (every series seen before),
    // of the pipeline with the reference data, as the worker runs it (enrichment lookups are
    // counted too).
    let outcomes: Vec<Outcome> = {
        let mut p = pipeline(true);
        let mut out = Vec::new();
        for r in &records {
            p.process(r, RecordContext::default(), &mut out);
        }
        out
    };
    let metrics = alertctx::metrics::Metrics::new();
    let mut g = c.benchmark_group("metrics");
    g.throughput(Throughput::Elements(outcomes.len() as u64));
    g.bench_function("observe", |b| {
        b.iter(|| {
            for o in &outcomes {
                metrics.observe(o, 1);
            }
        })
    });
    g.finish();

    let mut g = c.benchmark_group("core");
    g.throughput(Throughput::Elements(n));
    g.sample_size(10);
    // The last: every record decoded, exact repeats too (what the whole path costs them).
    for (name, enrich, exact) in [
        ("no_enrichment", false, true),
        ("full", true, true),
        ("no_enrichment_no_exact_repeats", false, false),
    ] {
        g.bench_function(name, |b| {
            // `_ref`: the pipeline is dropped outside the timing. With `iter_batched` it was
            // dropped inside, and dropping the production-size reference data cost `full`
            // more than its 20,000 records' enrichment (benches/OPTIMISATIONS.md, ninth round).
            b.iter_batched_ref(
                || pipeline_with(enrich, exact),
                |p| {
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
    // As the worker and `process` run it: in runs of `GROUP_RUN` records, source by source
    // (`Pipeline::process_grouped`), the same outcomes.
    for (name, enrich) in [("no_enrichment_grouped", false), ("full_grouped", true)] {
        g.bench_function(name, |b| {
            b.iter_batched_ref(
                || {
                    let runs: Vec<Vec<(Framed, RecordContext)>> = records
                        .chunks(GROUP_RUN)
                        .map(|run| {
                            run.iter()
                                .map(|r| (Framed::Record(r.clone()), RecordContext::default()))
                                .collect()
                        })
                        .collect();
                    (pipeline_with(enrich, true), runs)
                },
                |(p, runs)| {
                    let (mut out, mut ends) = (Vec::new(), Vec::new());
                    let mut bundles = 0;
                    for run in std::mem::take(runs) {
                        p.process_grouped(run, &mut out, &mut ends);
                        bundles += out
                            .iter()
                            .filter(|o| matches!(o, Outcome::Bundle { .. }))
                            .count();
                        out.clear();
                        ends.clear();
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
