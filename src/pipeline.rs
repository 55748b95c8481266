//! The core: one raw record in, bundles, counted duplicates and dead letters out.
//!
//! ```text
//! decode → unwrap envelope → normalize → sanitize → dedup → enrich → tag → score → bundle
//! ```
//!
//! Dedup runs right after normalize (the architecture sketch puts it after tagging): the
//! fingerprint reads only normalized attributes, so folding repeats first spares enrichment,
//! tagging and serialisation for about one record in five on a typical feed. Sanitising
//! comes before it, so that invisible characters cannot make repeats look different, and so
//! that no later stage reads text the sanitiser has not seen. A repeat of a recent record's
//! exact bytes skips everything before dedup: what those bytes gave is remembered
//! ([`crate::exact`]), and the window decides on that.
//!
//! [`Pipeline`] owns every stage's state and does no I/O; `alertctx process` and the Kafka
//! worker feed it records and act on the [`Outcome`]s. Every record ends as exactly one
//! outcome per record it holds (an envelope of N records gives N outcomes, or one dead letter).

use crate::bundle::{self, Bundle, PipelineInfo, Provenance, Quality, RefData};
use crate::config::Config;
use crate::decode::{self, framing::Framed, json, DecodeError, Limits, Value};
use crate::dedup::{Deduper, Verdict};
use crate::enrich::{EnrichOutput, Enricher};
use crate::exact::ExactRepeats;
use crate::normalize::Normalizer;
use crate::record::{Origin, RawRecord, RecordKind};
use crate::sanitize::Sanitizer;
use crate::score::{self, Gap, Scorer};
use crate::tag::Tagger;
use serde::Serialize;
use sha2::{Digest, Sha256};
use simd_json::prelude::*;

/// A dead-letter record: the original bytes, where they came from, and why.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct DeadLetter {
    pub reason: &'static str,
    pub message: String,
    pub origin: Origin,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The record's bytes as they arrived, as UTF-8 where they are valid.
    #[serde(serialize_with = "ser_bytes")]
    pub bytes: Vec<u8>,
}

fn ser_bytes<S: serde::Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
    match std::str::from_utf8(b) {
        Ok(text) => s.serialize_str(text),
        // Not UTF-8: keep every byte, hex-encoded, so the original can be recovered exactly.
        Err(_) => s.serialize_str(&format!("hex:{}", hex::encode(b))),
    }
}

impl DeadLetter {
    pub fn from_error(
        origin: Origin,
        index: Option<usize>,
        bytes: Vec<u8>,
        e: &DecodeError,
    ) -> DeadLetter {
        DeadLetter {
            reason: e.reason.as_str(),
            message: e.message.clone(),
            origin,
            index,
            bytes,
        }
    }
}

/// What the core reports about each bundle, for summaries and metrics.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub source: String,
    pub class_uid: u32,
    pub score: u8,
    pub gaps: Vec<&'static str>,
    pub time_ms: Option<i64>,
    /// (enricher name, hit) for every lookup attempted.
    pub lookups: Vec<(String, bool)>,
    /// Required/recommended attributes checked and whether each was present.
    pub fill: Vec<score::FieldFill>,
    /// The kind of every safety finding (`instruction_override`, `ascii_smuggling`, ...).
    pub safety_findings: Vec<&'static str>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Bundle {
        json: String,
        key: String,
        report: Report,
    },
    Duplicate {
        source: String,
        class_uid: u32,
        fingerprint: String,
    },
    DeadLetter(DeadLetter),
}

/// Per-record context from the shell.
#[derive(Debug, Clone, Copy, Default)]
pub struct RecordContext {
    /// Broker timestamp (ms), the reference for time checks in the Kafka worker.
    pub broker_ms: Option<i64>,
}

pub struct Pipeline {
    normalizer: Normalizer,
    sanitizer: Sanitizer,
    enrichers: Vec<Box<dyn Enricher>>,
    tagger: Tagger,
    deduper: Deduper,
    /// Records recently seen, by their bytes (`None`: `dedup.exact_repeats` is 0 or
    /// deduplication is off).
    exact: Option<ExactRepeats>,
    /// Duplicates folded by their bytes alone, since start.
    exact_folded: u64,
    scorer: Scorer,
    limits: Limits,
    info: PipelineInfo,
    reference: Vec<RefData>,
    /// `info` and `reference` as every bundle's provenance writes them.
    build_json: String,
    buf: Vec<u8>,
    /// Warnings from loading (optional reference data that was not there).
    pub warnings: Vec<String>,
}

impl Pipeline {
    /// Build the core from a configuration, loading mappings, enrichers and tag rules.
    pub fn from_config(cfg: &Config) -> anyhow::Result<Pipeline> {
        let mut hasher = Sha256::new();
        hasher.update(serde_json::to_vec(cfg)?);
        let normalizer = match &cfg.pipeline.mappings {
            Some(dir) => {
                for (name, text) in read_dir_sorted(dir)? {
                    hasher.update(name.as_bytes());
                    hasher.update(text.as_bytes());
                }
                Normalizer::from_dir(dir, cfg.routes.clone())?
            }
            None => {
                for (name, text) in crate::normalize::EMBEDDED_MAPPINGS {
                    hasher.update(name.as_bytes());
                    hasher.update(text.as_bytes());
                }
                Normalizer::embedded(cfg.routes.clone())?
            }
        };
        let tag_text = match &cfg.pipeline.tags {
            Some(p) => std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("reading {}: {e}", p.display()))?,
            None => crate::tag::EMBEDDED_RULES.to_string(),
        };
        hasher.update(tag_text.as_bytes());
        let tagger = Tagger::from_toml(&tag_text).map_err(|e| anyhow::anyhow!("tag rules: {e}"))?;
        let (enrichers, warnings) = match &cfg.pipeline.enrichers {
            Some(dir) => {
                // The definitions say which attributes each enricher reads, so they shape the
                // output as much as the data does: they are part of the configuration hash
                // (the data files' own sha256 is each reference data set's version).
                for (name, text) in read_dir_sorted(dir)? {
                    hasher.update(name.as_bytes());
                    hasher.update(text.as_bytes());
                }
                let loaded = crate::enrich::load_dir(dir)?;
                (loaded.enrichers, loaded.warnings)
            }
            None => (Vec::new(), Vec::new()),
        };
        let reference: Vec<RefData> = enrichers
            .iter()
            .map(|e| RefData {
                name: e.name().to_string(),
                kind: e.kind().to_string(),
                version: e.data_version().to_string(),
            })
            .collect();
        let info = PipelineInfo::new(format!("sha256:{}", hex::encode(hasher.finalize())));
        Ok(Pipeline {
            normalizer,
            sanitizer: Sanitizer::new(&cfg.safety)?,
            enrichers,
            tagger,
            deduper: Deduper::new(&cfg.dedup)?,
            exact: (cfg.dedup.enabled && cfg.dedup.exact_repeats > 0)
                .then(|| ExactRepeats::new(cfg.dedup.exact_repeats)),
            exact_folded: 0,
            scorer: Scorer::new(&cfg.quality)?,
            limits: cfg.limits(),
            build_json: bundle::build_members(&info, &reference),
            info,
            reference,
            buf: Vec::new(),
            warnings,
        })
    }

    pub fn info(&self) -> &PipelineInfo {
        &self.info
    }

    pub fn limits(&self) -> Limits {
        self.limits
    }

    pub fn normalizer(&self) -> &Normalizer {
        &self.normalizer
    }

    pub fn reference_data(&self) -> &[RefData] {
        &self.reference
    }

    /// (tag rule id, tag) for every tag the rules give this alert, for `explain`.
    pub fn tag_trace(
        &self,
        alert: &serde_json::Value,
        enrich: &EnrichOutput,
    ) -> Vec<(String, String)> {
        self.tagger.tag(alert, enrich).fired
    }

    /// Fingerprints the dedup window remembers.
    pub fn dedup_len(&self) -> usize {
        self.deduper.len()
    }

    /// Duplicates folded by their bytes alone ([`crate::exact`]), since start; they are among
    /// the duplicates, not in addition to them.
    pub fn exact_repeats_folded(&self) -> u64 {
        self.exact_folded
    }

    /// Handle a framing result: records are processed, framing errors dead-lettered.
    pub fn process_framed(&mut self, framed: Framed, ctx: RecordContext, out: &mut Vec<Outcome>) {
        match framed {
            Framed::Record(r) => self.process(&r, ctx, out),
            Framed::Error {
                origin,
                bytes,
                error,
            } => out.push(Outcome::DeadLetter(DeadLetter::from_error(
                origin, None, bytes, &error,
            ))),
        }
    }

    /// Process one record: all three stages in a row.
    ///
    /// A repeat of a recent record's exact bytes is first handed to the dedup window by what
    /// those bytes gave before ([`crate::exact`]); where the window folds it, that is its
    /// outcome, and nothing else runs.
    pub fn process(&mut self, record: &RawRecord, ctx: RecordContext, out: &mut Vec<Outcome>) {
        let key = self.exact.as_ref().and_then(|e| e.key(record));
        let mut decided = None;
        if let Some(seen) = key.and_then(|k| self.exact.as_mut()?.get(&k)) {
            match self.deduper.check_key(seen.dedup) {
                Verdict::Repeat { fingerprint, .. } => {
                    self.exact_folded += 1;
                    out.push(Outcome::Duplicate {
                        source: seen.source.to_string(),
                        class_uid: seen.class_uid,
                        fingerprint,
                    });
                    return;
                }
                // The window has passed: the whole way, with the decision already taken.
                first => decided = Some(first),
            }
        }
        let mut buf = std::mem::take(&mut self.buf);
        let mut prepared = Vec::new();
        self.prepare(record, &mut buf, &mut prepared);
        self.buf = buf;
        // Only a record that gives one alert is remembered (and so only such a record comes
        // back with a decision, for the one alert its bytes give again).
        let single = prepared.len() == 1;
        for p in prepared {
            let p = match p {
                Err(d) => {
                    out.push(Outcome::DeadLetter(d));
                    continue;
                }
                Ok(p) => p,
            };
            let verdict = match decided.take() {
                Some(v) => v,
                None => {
                    let class_uid = p.mapped.class_uid;
                    let dedup = self.deduper.key(&p.alert, class_uid, &p.source);
                    if let (Some(k), Some(exact), true) = (key, self.exact.as_mut(), single) {
                        exact.remember(k, dedup, class_uid, &p.source);
                    }
                    self.deduper.check_key(dedup)
                }
            };
            out.push(match self.fold_with(p, verdict) {
                Folded::Duplicate(o) => o,
                Folded::Kept(k) => self.finish(*k, ctx),
            });
        }
    }

    /// Process a batch of framed records with up to `threads` threads, giving exactly what
    /// [`process_framed`](Pipeline::process_framed) gives one by one, in the same order.
    /// Stages 1 and 3 run on slices of the batch in parallel; stage 2 (dedup, enrichment)
    /// runs on one thread in input order, so repeat counts cannot depend on scheduling. With
    /// more than one thread, exact repeats are folded after the whole path (stage 1 has run on
    /// them before stage 2 sees them), which gives the same outcomes.
    pub fn process_batch(
        &mut self,
        batch: Vec<Framed>,
        threads: usize,
        ctx: RecordContext,
        out: &mut Vec<Outcome>,
    ) {
        if threads <= 1 {
            // One thread: each record through all three stages before the next, as the Kafka
            // worker runs them. Stage by stage over a whole batch, every stage found the
            // batch's alerts gone from the cache (a batch of 2,048 alerts is several times
            // the L2 cache) and `process` took about 9% more CPU (benches/OPTIMISATIONS.md).
            for f in batch {
                self.process_framed(f, ctx, out);
            }
            return;
        }
        let this = &*self;
        let prepared = par_map(batch, threads, |chunk| {
            let (mut buf, mut v) = (Vec::new(), Vec::new());
            for f in chunk {
                match f {
                    Framed::Record(r) => this.prepare(&r, &mut buf, &mut v),
                    Framed::Error {
                        origin,
                        bytes,
                        error,
                    } => v.push(Err(DeadLetter::from_error(origin, None, bytes, &error))),
                }
            }
            v
        });
        let folded: Vec<Folded> = prepared
            .into_iter()
            .map(|p| match p {
                Err(d) => Folded::Duplicate(Outcome::DeadLetter(d)),
                Ok(p) => self.fold(p),
            })
            .collect();
        let this = &*self;
        out.extend(par_map(folded, threads, |chunk| {
            chunk
                .into_iter()
                .map(|f| match f {
                    Folded::Duplicate(o) => o,
                    Folded::Kept(k) => this.finish(*k, ctx),
                })
                .collect()
        }));
    }

    /// Stage 1, without shared state (any thread): decode, unwrap envelopes, normalize,
    /// sanitise. One entry per record the input holds, or one dead letter.
    pub fn prepare(
        &self,
        record: &RawRecord,
        buf: &mut Vec<u8>,
        out: &mut Vec<Result<Prepared, DeadLetter>>,
    ) {
        let dead = |e: &DecodeError| {
            DeadLetter::from_error(record.origin.clone(), None, record.bytes.clone(), e)
        };
        let value = match decode::decode_record(record, buf, &self.limits) {
            Err(e) => return out.push(Err(dead(&e))),
            Ok(v) => v,
        };
        let unwrapped = match record.kind {
            RecordKind::Json | RecordKind::ZeekBlock => json::unwrap_envelope(value),
            _ => Ok((vec![value], false)),
        };
        match unwrapped {
            Err(e) => out.push(Err(dead(&e))),
            Ok((items, envelope)) => {
                for (i, item) in items.into_iter().enumerate() {
                    out.push(Ok(self.prepare_one(item, record, envelope.then_some(i))));
                }
            }
        }
    }

    fn prepare_one(
        &self,
        mut value: Value<'_>,
        record: &RawRecord,
        index: Option<usize>,
    ) -> Prepared {
        let format = record_format(&record.kind, &mut value);
        let normalized = self
            .normalizer
            .map_record(&value, &format, record.origin.input_name());
        drop(value);
        let source = normalized.source_id().to_string();
        let mut mapped = normalized.mapped;
        let mut alert = serde_json::Value::Object(std::mem::take(&mut mapped.alert));
        let safety = self.sanitizer.sanitize(&mut alert);
        if let serde_json::Value::Object(a) = &mut alert {
            crate::normalize::derive(a, mapped.class_uid);
        }
        Prepared {
            origin: record.origin.clone(),
            index,
            source,
            mapping: normalized.mapping,
            mapped,
            alert,
            safety,
        }
    }

    /// Stage 2, in input order (state: the dedup window, the enrichers' caches): fold repeats,
    /// then enrich what is kept.
    pub fn fold(&mut self, p: Prepared) -> Folded {
        let verdict = self.deduper.check(&p.alert, p.mapped.class_uid, &p.source);
        self.fold_with(p, verdict)
    }

    /// [`fold`](Pipeline::fold) with the dedup window's decision taken.
    fn fold_with(&mut self, p: Prepared, verdict: Verdict) -> Folded {
        let class_uid = p.mapped.class_uid;
        let dedup = match verdict {
            Verdict::Repeat { fingerprint, .. } => {
                return Folded::Duplicate(Outcome::Duplicate {
                    source: p.source,
                    class_uid,
                    fingerprint,
                });
            }
            Verdict::First(info) => info,
        };
        let mut enrich = EnrichOutput::default();
        for e in &mut self.enrichers {
            e.enrich(&p.alert, &mut enrich);
        }
        Folded::Kept(Box::new(Kept {
            prepared: p,
            dedup,
            enrich,
        }))
    }

    /// Stage 3, without shared state (any thread): tag, score, and write the bundle.
    pub fn finish(&self, k: Kept, ctx: RecordContext) -> Outcome {
        let Kept {
            prepared: p,
            dedup,
            enrich,
        } = k;
        let Prepared {
            origin,
            index,
            source,
            mapping,
            mut mapped,
            alert,
            safety,
        } = p;
        let class_uid = mapped.class_uid;
        let mut tagged = self.tagger.tag(&alert, &enrich);
        // Safety tags come from code, not from the rules file, so that they cannot be turned off.
        for t in safety.tags() {
            tagged.tags.insert(t.to_string());
        }

        let mut gaps: Vec<Gap> = std::mem::take(&mut mapped.gaps);
        gaps.extend(safety.gaps());
        if mapped.unmapped_leaves > 0 {
            gaps.push(Gap::new(
                "fields_unmapped",
                Some("unmapped".into()),
                Some(mapped.unmapped_leaves.to_string()),
            ));
        }
        let mut fill = Vec::new();
        let reference_time = self.scorer.reference_ms(ctx.broker_ms);
        self.scorer
            .check(&alert, class_uid, reference_time, &mut gaps, &mut fill);
        for m in &enrich.misses {
            gaps.push(Gap::new(
                m.code,
                Some(m.attribute.clone()),
                Some(m.value.clone()),
            ));
        }
        score::sort_gaps(&mut gaps);
        let quality_score = score::score(&gaps);

        let mut lookups: Vec<(String, bool)> = Vec::new();
        for e in &enrich.entities {
            lookups.push((e.enricher.clone(), true));
        }
        for e in &enrich.enrichment {
            lookups.push((e.enricher.clone(), true));
        }
        for m in &enrich.misses {
            lookups.push((m.enricher.clone(), false));
        }

        let bundle_id = {
            let mut h = Sha256::new();
            h.update(serde_json::to_vec(&origin).unwrap_or_default());
            h.update(index.unwrap_or(0).to_le_bytes());
            h.update(dedup.fingerprint.as_bytes());
            hex::encode(&h.finalize()[..16])
        };
        let b = Bundle {
            schema: bundle::SCHEMA_ID,
            bundle_id,
            alert: &alert,
            entities: &enrich.entities,
            enrichment: &enrich.enrichment,
            tags: tagged.tags.iter().map(String::as_str).collect(),
            dedup: &dedup,
            quality: Quality {
                score: quality_score,
                gaps: &gaps,
            },
            safety: &safety,
            provenance: Provenance {
                input: &origin,
                index,
                source: &source,
                mapping_version: mapping.as_ref().map(|m| m.version.as_str()),
                class_rule: mapped.rule.as_deref(),
                reference_time,
                pipeline: &self.info,
                reference_data: &self.reference,
                build_json: Some(&self.build_json),
            },
        };
        let json = b.to_json();
        Outcome::Bundle {
            key: bundle::routing_key(&alert),
            json,
            report: Report {
                source,
                class_uid,
                score: quality_score,
                gaps: gaps.iter().map(|g| g.code).collect(),
                time_ms: alert.get("time").and_then(serde_json::Value::as_i64),
                lookups,
                fill,
                safety_findings: safety.finding_kinds(),
            },
        }
    }
}

/// The format name mappings select on (`json`, `winxml`, `zeek_tsv`, or the text decoder's
/// `cef`/`leef`/`pan`/...), taking the text decoder's `_format` marker out of the record.
pub fn record_format(kind: &RecordKind, value: &mut Value<'_>) -> String {
    match kind {
        RecordKind::Json => "json".into(),
        RecordKind::Xml => "winxml".into(),
        RecordKind::ZeekTsv(_) | RecordKind::ZeekBlock => "zeek_tsv".into(),
        RecordKind::Text => value
            .as_object_mut()
            .and_then(|o| o.remove("_format"))
            .and_then(|f| f.as_str().map(str::to_string))
            .unwrap_or_else(|| "text".into()),
    }
}

/// One record after stage 1: normalized and sanitised, not yet checked against the window.
pub struct Prepared {
    pub origin: Origin,
    /// Position in an envelope.
    pub index: Option<usize>,
    pub source: String,
    pub mapping: Option<std::sync::Arc<crate::normalize::engine::Mapping>>,
    pub mapped: crate::normalize::engine::Mapped,
    /// The OCSF event (`mapped.alert` moved out), sanitised.
    pub alert: serde_json::Value,
    pub safety: crate::sanitize::Safety,
}

/// A record kept by stage 2, with its repeat counts and enrichment.
pub struct Kept {
    pub prepared: Prepared,
    pub dedup: crate::dedup::DedupInfo,
    pub enrich: EnrichOutput,
}

/// What stage 2 decided.
pub enum Folded {
    /// Done already: a counted duplicate (or, inside a batch, a dead letter from stage 1).
    Duplicate(Outcome),
    Kept(Box<Kept>),
}

/// Split `items` into at most `threads` contiguous runs, map each on its own thread, and
/// concatenate the results in the original order.
fn par_map<T: Send, U: Send>(
    mut items: Vec<T>,
    threads: usize,
    f: impl Fn(Vec<T>) -> Vec<U> + Sync,
) -> Vec<U> {
    let threads = threads.clamp(1, items.len().max(1));
    if threads == 1 {
        return f(items);
    }
    let per = items.len().div_ceil(threads);
    let mut runs = Vec::with_capacity(threads);
    while items.len() > per {
        let rest = items.split_off(per);
        runs.push(std::mem::replace(&mut items, rest));
    }
    runs.push(items);
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = runs
            .into_iter()
            .map(|run| s.spawn(move || f(run)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a pipeline thread panicked"))
            .collect()
    })
}

fn read_dir_sorted(dir: &std::path::Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    for entry in
        std::fs::read_dir(dir).map_err(|e| anyhow::anyhow!("reading {}: {e}", dir.display()))?
    {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "toml") {
            files.push((
                path.file_name()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .to_string(),
                std::fs::read_to_string(&path)?,
            ));
        }
    }
    files.sort();
    Ok(files)
}
