//! `alertctx explain`: replay one bundle from its provenance and say what made each part.
//!
//! A bundle names its input coordinates (file and line, or topic, partition and offset, plus
//! the index inside an envelope), the reference time its age checks used, and the versions of
//! everything that shaped it. `explain` reads the raw record back from those coordinates, runs
//! it through the same stages with the same reference time, compares the result with the
//! bundle byte for byte, and lists which mapping rule wrote each alert attribute, which
//! enricher added each entity and lookup, which tag rule fired each tag, and which stage
//! raised each gap.
//!
//! Repeat counts depend on everything the run saw before the record: to reproduce the `dedup`
//! layer exactly, pass the run's inputs in their order with `--input`. Without them (and
//! always for Kafka input) the record's own file or message is replayed and a difference
//! confined to `dedup` is reported as such.

use crate::config::Config;
use crate::decode::framing::{Framed, Framer};
use crate::decode::{self, json};
use crate::pipeline::{Folded, Kept, Outcome, Pipeline, Prepared, RecordContext};
use crate::record::{Origin, RawRecord, RecordKind};
use anyhow::{bail, Context};
use serde_json::Value as Json;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;

/// Arguments of `alertctx explain`.
#[derive(Debug, clap::Args)]
pub struct ExplainArgs {
    /// The configuration the bundle was made with (default: the embedded one).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Which line of BUNDLES to explain (1-based).
    #[arg(long, default_value_t = 1)]
    pub line: usize,
    /// The run's inputs, in order, to replay repeat counts exactly. Default: the file named
    /// in the bundle's provenance.
    #[arg(long = "input")]
    pub inputs: Vec<PathBuf>,
    /// Brokers to read a Kafka record back from (default: `kafka.brokers` of the configuration).
    #[arg(long)]
    pub brokers: Option<String>,
    /// A file of bundles (NDJSON), or `-` for stdin.
    pub bundles: PathBuf,
}

/// Where the replayed bundle stands against the one given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The same bytes.
    Identical,
    /// Different; the top-level layers that differ, and the first differing path.
    Differs { layers: Vec<String>, first: String },
    /// The replay folded the record as a repeat (the run's earlier inputs were not the same).
    Folded,
}

/// Everything `explain` found, for printing or for tests.
#[derive(Debug)]
pub struct Explanation {
    pub verdict: Verdict,
    /// (what, recorded, now) for every version the bundle names that differs now.
    pub mismatches: Vec<(String, String, String)>,
    /// Alert attribute (leaf path) → what wrote it.
    pub fields: BTreeMap<String, String>,
    /// (layer entry, enricher description).
    pub enrichment: Vec<(String, String)>,
    /// (tag, what gave it).
    pub tags: Vec<(String, String)>,
    /// (gap code, attribute, stage that raised it).
    pub gaps: Vec<(String, String, String)>,
    /// (field, what the sanitiser did there).
    pub safety: Vec<(String, String)>,
    /// Whether the `dedup` layer could be replayed exactly.
    pub dedup_replayed: bool,
}

/// `alertctx explain`: print the explanation.
pub fn run(args: &ExplainArgs) -> anyhow::Result<()> {
    let text = read_bundle_line(args)?;
    let e = explain(&text, args)?;
    print!("{}", render(&e, &serde_json::from_str(&text)?));
    Ok(())
}

fn read_bundle_line(args: &ExplainArgs) -> anyhow::Result<String> {
    let reader: Box<dyn Read> = if args.bundles.as_os_str() == "-" {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(
            std::fs::File::open(&args.bundles)
                .with_context(|| format!("opening {}", args.bundles.display()))?,
        )
    };
    let line = BufReader::new(reader)
        .lines()
        .nth(args.line.saturating_sub(1))
        .with_context(|| format!("{} has no line {}", args.bundles.display(), args.line))??;
    Ok(line)
}

/// Replay `bundle_text` (one bundle as written) and explain it.
pub fn explain(bundle_text: &str, args: &ExplainArgs) -> anyhow::Result<Explanation> {
    let given: Json = serde_json::from_str(bundle_text).context("the line is not a JSON bundle")?;
    let prov = given
        .get("provenance")
        .context("the bundle has no provenance")?;
    let cfg = match &args.config {
        Some(p) => Config::load(p)?,
        None => Config::default(),
    };
    let mut pipeline = Pipeline::from_config(&cfg)?;
    let mismatches = version_mismatches(prov, &pipeline);
    let index = prov.get("index").and_then(Json::as_u64).map(|i| i as usize);
    let input = prov
        .get("input")
        .context("provenance has no input coordinates")?;
    // The same reference time as the run: the clock or broker time it read then.
    let ctx = RecordContext {
        broker_ms: prov.get("reference_time").and_then(Json::as_i64),
    };

    let (target, earlier, dedup_replayed) =
        if let Some(topic) = input.get("topic").and_then(Json::as_str) {
            let partition = input
                .get("partition")
                .and_then(Json::as_i64)
                .context("provenance input has no partition")? as i32;
            let offset = input
                .get("offset")
                .and_then(Json::as_i64)
                .context("provenance input has no offset")?;
            let brokers = args
                .brokers
                .clone()
                .or_else(|| cfg.kafka.as_ref().map(|k| k.brokers.clone()))
                .context(
                    "the bundle came from Kafka: give --brokers (or a configuration with [kafka])",
                )?;
            let bytes = fetch_kafka(&brokers, topic, partition, offset)?;
            let origin = Origin::Kafka {
                topic: topic.into(),
                partition,
                offset,
            };
            (
                crate::decode::framing::frame_message(&bytes, origin),
                Vec::new(),
                false,
            )
        } else {
            let file = input
                .get("input")
                .and_then(Json::as_str)
                .context("provenance input names no file")?;
            let line = input
                .get("line")
                .and_then(Json::as_u64)
                .context("provenance input has no line")?;
            let inputs = if args.inputs.is_empty() {
                vec![PathBuf::from(file)]
            } else {
                args.inputs.clone()
            };
            let exact = !args.inputs.is_empty();
            let (target, earlier) = frame_until(&inputs, file, line, pipeline.limits())?;
            (target, earlier, exact)
        };

    // Earlier records only feed the dedup window (stages 1 and 2); their bundles are not needed.
    let mut buf = Vec::new();
    let mut prepared = Vec::new();
    for r in &earlier {
        pipeline.prepare(r, &mut buf, &mut prepared);
        for p in prepared.drain(..).flatten() {
            let _ = pipeline.fold(p);
        }
    }
    pipeline.prepare(&target, &mut buf, &mut prepared);
    let chosen: Prepared = prepared
        .into_iter()
        .nth(index.unwrap_or(0))
        .context("the replayed record does not hold the bundle's envelope index")?
        .map_err(|d| {
            anyhow::anyhow!(
                "the replayed record is now a dead letter: {} ({})",
                d.reason,
                d.message
            )
        })?;
    let trace = mapping_trace(&pipeline, &target, index);
    let mapping_gaps: Vec<(String, Option<String>)> = chosen
        .mapped
        .gaps
        .iter()
        .map(|g| (g.code.to_string(), g.field.as_deref().map(str::to_string)))
        .collect();
    let safety_gaps: Vec<(String, Option<String>)> = chosen
        .safety
        .gaps()
        .iter()
        .map(|g| (g.code.to_string(), g.field.as_deref().map(str::to_string)))
        .collect();

    let kept: Kept = match pipeline.fold(chosen) {
        Folded::Duplicate(_) => {
            return Ok(Explanation {
                verdict: Verdict::Folded,
                mismatches,
                fields: BTreeMap::new(),
                enrichment: Vec::new(),
                tags: Vec::new(),
                gaps: Vec::new(),
                safety: Vec::new(),
                dedup_replayed,
            })
        }
        Folded::Kept(k) => *k,
    };
    let fired = pipeline.tag_trace(&kept.prepared.alert, &kept.enrich);
    let misses: Vec<(String, String, String)> = kept
        .enrich
        .misses
        .iter()
        .map(|m| {
            (
                m.code.to_string(),
                m.attribute.to_string(),
                m.enricher.to_string(),
            )
        })
        .collect();
    let describe_enricher = |name: &str| -> String {
        match pipeline.reference_data().iter().find(|r| r.name == name) {
            Some(r) => format!("enricher `{}` ({}, data {})", r.name, r.kind, r.version),
            None => format!("enricher `{name}`"),
        }
    };
    let mut enrichment = Vec::new();
    for e in &kept.enrich.entities {
        enrichment.push((
            format!(
                "entity {} {} = {} (matched by {})",
                e.kind, e.attribute, e.value, e.matched_by
            ),
            describe_enricher(&e.enricher),
        ));
    }
    for e in &kept.enrich.enrichment {
        enrichment.push((
            format!("lookup {} = {} ({})", e.attribute, e.value, e.source),
            describe_enricher(&e.enricher),
        ));
    }
    let enrichment_misses: Vec<(String, String, String)> = misses
        .iter()
        .map(|(code, attr, name)| (code.clone(), attr.clone(), describe_enricher(name)))
        .collect();

    let replayed = match pipeline.finish(kept, ctx) {
        Outcome::Bundle { json, .. } => json,
        other => bail!("the replay did not give a bundle: {other:?}"),
    };
    let verdict = compare(bundle_text, &replayed)?;

    // Attribution of every alert leaf, from the given bundle (what the agent was shown).
    let mut fields = BTreeMap::new();
    let mut leaves = Vec::new();
    if let Some(alert) = given.get("alert") {
        leaf_paths(alert, String::new(), &mut leaves);
    }
    for leaf in leaves {
        fields.insert(leaf.clone(), attribute(&leaf, trace.as_ref()));
    }

    let mut gaps = Vec::new();
    for g in given
        .pointer("/quality/gaps")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let code = g
            .get("code")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_string();
        let field = g.get("field").and_then(Json::as_str).map(str::to_string);
        let key = (code.clone(), field.clone());
        let stage = if let Some((_, _, who)) = enrichment_misses
            .iter()
            .find(|(c, a, _)| *c == code && Some(a) == field.as_ref())
        {
            who.clone()
        } else if mapping_gaps.contains(&key) {
            format!("mapping `{}`", trace.as_ref().map_or("?", |t| t.0.as_str()))
        } else if safety_gaps.contains(&key) {
            "sanitiser".to_string()
        } else if code == "fields_unmapped" {
            "mapping: vendor fields no rule reads".to_string()
        } else {
            let group = crate::score::CODES
                .iter()
                .find(|c| c.code == code)
                .map_or("?", |c| c.group);
            format!("scorer ({group})")
        };
        gaps.push((code, field.unwrap_or_default(), stage));
    }

    let mut safety = Vec::new();
    for (kind, list) in [
        ("removed", "removals"),
        ("truncated", "truncations"),
        ("finding", "findings"),
    ] {
        for item in given
            .pointer(&format!("/safety/{list}"))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let field = item
                .get("field")
                .and_then(Json::as_str)
                .unwrap_or("?")
                .to_string();
            let mut rest = item.clone();
            if let Some(o) = rest.as_object_mut() {
                o.remove("field");
            }
            safety.push((field, format!("{kind}: {rest}")));
        }
    }

    Ok(Explanation {
        verdict,
        mismatches,
        fields,
        enrichment,
        tags: given
            .get("tags")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_str)
            .map(|t| {
                let who = match fired.iter().find(|(_, tag)| tag == t) {
                    Some((rule, _)) => format!("tag rule `{rule}`"),
                    None if t.starts_with("safety:") => "sanitiser (a safety finding)".to_string(),
                    None => "? (no rule gives it now)".to_string(),
                };
                (t.to_string(), who)
            })
            .collect(),
        gaps,
        safety,
        dedup_replayed,
    })
}

/// Frame `inputs` in order; return the record of `file` that starts on `line`, and every
/// record before it.
fn frame_until(
    inputs: &[PathBuf],
    file: &str,
    line: u64,
    limits: decode::Limits,
) -> anyhow::Result<(RawRecord, Vec<RawRecord>)> {
    let mut earlier = Vec::new();
    let mut framed = Vec::new();
    let mut buf = Vec::new();
    for path in inputs {
        let name = path.display().to_string();
        let f =
            std::fs::File::open(path).with_context(|| format!("opening {name} to replay it"))?;
        let mut reader = BufReader::new(f);
        let mut framer = Framer::new(&name, limits);
        loop {
            buf.clear();
            let n = reader.read_until(b'\n', &mut buf)?;
            if n == 0 {
                framer.finish(&mut framed);
            } else {
                framer.push_line(&buf, &mut framed);
            }
            for f in framed.drain(..) {
                if let Framed::Record(r) = f {
                    if let Origin::File { input, line: l } = &r.origin {
                        if input.as_ref() == file && *l == line {
                            return Ok((r, earlier));
                        }
                    }
                    earlier.push(r);
                }
            }
            if n == 0 {
                break;
            }
        }
    }
    bail!("no record starts on line {line} of {file} (is the file the one the run read?)")
}

/// Read one message back from Kafka.
fn fetch_kafka(brokers: &str, topic: &str, partition: i32, offset: i64) -> anyhow::Result<Vec<u8>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::Message;
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "alertctx-explain")
        .set("enable.auto.commit", "false")
        .create()?;
    let mut tpl = rdkafka::TopicPartitionList::new();
    tpl.add_partition_offset(topic, partition, rdkafka::Offset::Offset(offset))?;
    c.assign(&tpl)?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut last_error = None;
    while std::time::Instant::now() < deadline {
        match c.poll(std::time::Duration::from_millis(500)) {
            Some(Ok(m)) if m.offset() == offset => {
                return Ok(m.payload().unwrap_or_default().to_vec())
            }
            Some(Ok(_)) => {
                bail!("{topic}/{partition} has no message at offset {offset} any more (retention?)")
            }
            Some(Err(e)) if crate::worker::consume_errors::is_fatal(&e) => {
                bail!("reading {topic}/{partition}@{offset}: {e}")
            }
            // Connection trouble: librdkafka reconnects by itself; keep polling.
            Some(Err(e)) => last_error = Some(e),
            None => {}
        }
    }
    let last = last_error.map_or(String::new(), |e| format!(" (last error: {e})"));
    bail!("no message at {topic}/{partition}@{offset} within 30 s{last}")
}

/// The mapping's own account of the record: (mapping id, trace).
fn mapping_trace(
    p: &Pipeline,
    record: &RawRecord,
    index: Option<usize>,
) -> Option<(String, crate::normalize::engine::MappingTrace)> {
    let mut buf = Vec::new();
    let value = decode::decode_record(record, &mut buf, &p.limits()).ok()?;
    let items = match record.kind {
        RecordKind::Json | RecordKind::ZeekBlock => json::unwrap_envelope(value).ok()?.0,
        _ => vec![value],
    };
    let mut item = items.into_iter().nth(index.unwrap_or(0))?;
    let format = crate::pipeline::record_format(&record.kind, &mut item);
    let mapping = p
        .normalizer()
        .detect(&item, &format, record.origin.input_name())?;
    Some((mapping.id.clone(), mapping.trace(&item)))
}

/// What wrote one alert attribute.
fn attribute(
    leaf: &str,
    trace: Option<&(String, crate::normalize::engine::MappingTrace)>,
) -> String {
    let top = leaf.split(['.', '[']).next().unwrap_or(leaf);
    if top == "unmapped" {
        return "vendor field kept under unmapped".into();
    }
    if let Some((id, t)) = trace {
        let rule = t.class_rule.as_deref().unwrap_or("(source-wide fields)");
        let bare: String = strip_indices(leaf);
        // The longest rule target that is this attribute or one of its parents.
        let best = t
            .fields
            .iter()
            .filter(|(target, _)| bare == *target || bare.starts_with(&format!("{target}.")))
            .max_by_key(|(target, _)| target.len());
        if let Some((target, how)) = best {
            let whose = if target == &bare {
                String::new()
            } else {
                format!(" (part of `{target}`)")
            };
            return format!("mapping `{id}`, class rule `{rule}`: {how}{whose}");
        }
        if matches!(top, "class_uid" | "activity_id" | "severity_id") {
            return format!(
                "mapping `{id}`, class rule `{rule}` (class, activity, severity of the rule)"
            );
        }
        if bare.starts_with("metadata.product") {
            return format!("mapping `{id}`: product of the source");
        }
    }
    match top {
        "category_uid" | "category_name" | "class_name" | "activity_name" | "type_uid"
        | "type_name" | "severity" => {
            "normalizer: derived from class, activity and severity (OCSF 1.8 tables)".into()
        }
        "metadata" if leaf == "metadata.version" => "normalizer: the OCSF schema version".into(),
        _ => "normalizer".into(),
    }
}

fn strip_indices(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    let mut skip = false;
    for c in path.chars() {
        match c {
            '[' => skip = true,
            ']' => skip = false,
            _ if !skip => out.push(c),
            _ => {}
        }
    }
    out
}

fn leaf_paths(v: &Json, prefix: String, out: &mut Vec<String>) {
    match v {
        Json::Object(o) if !o.is_empty() => {
            for (k, child) in o {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                leaf_paths(child, p, out);
            }
        }
        Json::Array(a) if !a.is_empty() => {
            for (i, child) in a.iter().enumerate() {
                leaf_paths(child, format!("{prefix}[{i}]"), out);
            }
        }
        _ => out.push(prefix),
    }
}

/// Compare the given bundle with the replayed one.
fn compare(given: &str, replayed: &str) -> anyhow::Result<Verdict> {
    if given.trim_end() == replayed {
        return Ok(Verdict::Identical);
    }
    let a: Json = serde_json::from_str(given)?;
    let b: Json = serde_json::from_str(replayed)?;
    let mut layers = Vec::new();
    let (ao, bo) = (a.as_object(), b.as_object());
    let keys: std::collections::BTreeSet<&String> = ao
        .into_iter()
        .flat_map(|o| o.keys())
        .chain(bo.into_iter().flat_map(|o| o.keys()))
        .collect();
    for k in keys {
        if a.get(k) != b.get(k) {
            layers.push(k.clone());
        }
    }
    Ok(Verdict::Differs {
        first: first_difference(&a, &b, String::new()).unwrap_or_default(),
        layers,
    })
}

fn first_difference(a: &Json, b: &Json, path: String) -> Option<String> {
    match (a, b) {
        (Json::Object(x), Json::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => first_difference(p, q, format!("{path}/{k}")),
                (p, q) => (p != q).then(|| format!("{path}/{k}")),
            })
        }
        (Json::Array(x), Json::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (p, q))| first_difference(p, q, format!("{path}/{i}"))),
        _ => (a != b).then(|| format!("{path}: {a} → {b}")),
    }
}

fn version_mismatches(prov: &Json, p: &Pipeline) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let info = p.info();
    let mut check = |what: &str, recorded: Option<&str>, now: &str| {
        if let Some(r) = recorded {
            if r != now {
                out.push((what.to_string(), r.to_string(), now.to_string()));
            }
        }
    };
    check(
        "pipeline version",
        prov.pointer("/pipeline/version").and_then(Json::as_str),
        info.version,
    );
    check(
        "build commit",
        prov.pointer("/pipeline/build_commit")
            .and_then(Json::as_str),
        info.build_commit,
    );
    check(
        "configuration hash",
        prov.pointer("/pipeline/config_hash").and_then(Json::as_str),
        &info.config_hash,
    );
    if let Some(source) = prov.get("source").and_then(Json::as_str) {
        let now = p
            .normalizer()
            .mapping(source)
            .map_or("(no such mapping)".to_string(), |m| m.version.clone());
        check(
            &format!("mapping `{source}` version"),
            prov.get("mapping_version").and_then(Json::as_str),
            &now,
        );
    }
    for r in prov
        .get("reference_data")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let name = r.get("name").and_then(Json::as_str).unwrap_or("?");
        let now = p
            .reference_data()
            .iter()
            .find(|d| d.name == name)
            .map_or("(not loaded)".to_string(), |d| d.version.clone());
        check(
            &format!("reference data `{name}`"),
            r.get("version").and_then(Json::as_str),
            &now,
        );
    }
    out
}

/// The explanation as text.
pub fn render(e: &Explanation, bundle: &Json) -> String {
    let mut s = String::new();
    let prov = &bundle["provenance"];
    let _ = writeln!(
        s,
        "bundle {} — source `{}`, class {} {}, class rule `{}`",
        bundle["bundle_id"].as_str().unwrap_or("?"),
        prov["source"].as_str().unwrap_or("?"),
        bundle["alert"]["class_uid"],
        bundle["alert"]["class_name"].as_str().unwrap_or(""),
        prov["class_rule"].as_str().unwrap_or("-"),
    );
    let _ = writeln!(
        s,
        "input: {}{}",
        prov["input"],
        prov.get("index")
            .map_or(String::new(), |i| format!(" [index {i}]"))
    );
    let _ = match &e.verdict {
        Verdict::Identical => writeln!(s, "replay: identical, byte for byte"),
        Verdict::Folded => writeln!(s, "replay: the record was folded as a repeat; pass the run's inputs in order with --input"),
        Verdict::Differs { layers, first } => {
            let only_dedup = layers.iter().all(|l| l == "dedup");
            let why = if only_dedup && !e.dedup_replayed {
                " (only repeat counts, which depend on the run's earlier inputs: pass them with --input)"
            } else {
                ""
            };
            writeln!(s, "replay: differs in {}{why}; first difference at {first}", layers.join(", "))
        }
    };
    if e.mismatches.is_empty() {
        let _ = writeln!(
            s,
            "versions: pipeline, build, configuration, mapping and reference data as recorded"
        );
    }
    for (what, then, now) in &e.mismatches {
        let _ = writeln!(s, "versions: {what} was {then}, is {now}");
    }
    let section = |s: &mut String, title: &str, rows: Vec<(String, String)>| {
        if rows.is_empty() {
            return;
        }
        let _ = writeln!(s, "\n{title}");
        let width = rows
            .iter()
            .map(|(a, _)| a.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        for (a, b) in rows {
            let _ = writeln!(s, "  {a:<width$}  {b}");
        }
    };
    section(
        &mut s,
        "alert",
        e.fields
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    section(&mut s, "sanitiser", e.safety.clone());
    section(&mut s, "entities and enrichment", e.enrichment.clone());
    section(&mut s, "tags", e.tags.clone());
    section(
        &mut s,
        "quality gaps",
        e.gaps
            .iter()
            .map(|(c, f, w)| {
                (
                    if f.is_empty() {
                        c.clone()
                    } else {
                        format!("{c} {f}")
                    },
                    w.clone(),
                )
            })
            .collect(),
    );
    s
}
