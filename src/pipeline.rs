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
use crate::dedup::{DedupKey, Deduper, Pending, Verdict};
use crate::enrich::{EnrichOutput, Enricher, EnricherStats};
use crate::exact::ExactRepeats;
use crate::normalize::Normalizer;
use crate::path::AlertView;
use crate::record::{Origin, RawRecord, RecordKind};
use crate::sanitize::Sanitizer;
use crate::score::{self, Gap, Scorer};
use crate::tag::Tagger;
use serde::Serialize;
use sha2::{Digest, Sha256};
use simd_json::prelude::*;
use std::hash::BuildHasher;

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
    pub lookups: Vec<(std::sync::Arc<str>, bool)>,
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
        fingerprint: crate::dedup::HexId,
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
    /// Alerts finished on a guess of the window's decision ([`Pipeline::process_grouped`]),
    /// since start, and those of them whose guess the window did not take, made again.
    guesses: u64,
    guesses_wrong: u64,
    scorer: Scorer,
    limits: Limits,
    info: PipelineInfo,
    reference: Vec<RefData>,
    /// `info` and `reference` as every bundle's provenance writes them.
    build_json: String,
    buf: Vec<u8>,
    /// The threads of [`Pipeline::process_batch`], started at its first call with more than
    /// one thread and kept for as long as the pipeline ([`new_pool`]).
    pool: Option<rayon::ThreadPool>,
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
            guesses: 0,
            guesses_wrong: 0,
            scorer: Scorer::new(&cfg.quality)?,
            limits: cfg.limits(),
            build_json: bundle::build_members(&info, &reference),
            info,
            reference,
            buf: Vec::new(),
            pool: None,
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

    /// Alerts [`process_grouped`](Pipeline::process_grouped) finished on a guess of the
    /// window's decision, since start, and how many of the guesses proved wrong (those alerts
    /// were made again). Outcomes do not depend on either; wrong guesses are work done twice.
    pub fn guesses(&self) -> (u64, u64) {
        (self.guesses, self.guesses_wrong)
    }

    /// The counts of each enricher that keeps any ([`Enricher::stats`]: geo's cache and
    /// lookup errors), by name, in load order.
    pub fn enricher_stats(&self) -> impl Iterator<Item = (&str, EnricherStats)> + '_ {
        self.enrichers
            .iter()
            .filter_map(|e| Some((e.name(), e.stats()?)))
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
        let decided = match self.exact_check(key) {
            ExactCheck::Folded(repeat) => return out.push(repeat),
            ExactCheck::Go(decided) => decided,
        };
        let keyed = self.prepare_keyed(record);
        let mut decided_all = Vec::new();
        self.decide(keyed, key, decided, &mut decided_all);
        for d in decided_all {
            out.push(self.fold_finish(d, ctx));
        }
    }

    /// The exact-repeat check, in input order.
    fn exact_check(&mut self, key: Option<[u8; 16]>) -> ExactCheck {
        let Some(seen) = key.and_then(|k| self.exact.as_mut()?.get(&k)) else {
            return ExactCheck::Go(None);
        };
        match self.deduper.check_key(seen.dedup) {
            Verdict::Repeat { fingerprint, .. } => {
                self.exact_folded += 1;
                ExactCheck::Folded(Outcome::Duplicate {
                    source: seen.source.to_string(),
                    class_uid: seen.class_uid,
                    fingerprint,
                })
            }
            // The window has passed: the whole way, with the decision already taken.
            first => ExactCheck::Go(Some(first)),
        }
    }

    /// Stage 1 with the pipeline's own decode buffer, and each alert's dedup key.
    fn prepare_keyed(&mut self, record: &RawRecord) -> Vec<Result<Keyed, DeadLetter>> {
        let mut buf = std::mem::take(&mut self.buf);
        let mut prepared = Vec::new();
        self.prepare(record, &mut buf, &mut prepared);
        self.buf = buf;
        prepared
            .into_iter()
            .map(|p| p.map(|p| self.keyed(p)))
            .collect()
    }

    /// An alert with what the dedup window will read of it (order-free: stage 1's end).
    fn keyed(&mut self, p: Prepared) -> Keyed {
        let dedup = self.deduper.key(&p.alert, p.mapped.class_uid, &p.source);
        Keyed { prepared: p, dedup }
    }

    /// The dedup window's decision for each alert one record gave, in input order: dead
    /// letters pass through; `decided` (the decision [`exact_check`](Pipeline::exact_check)
    /// took) is the first alert's. A record that gives one alert is remembered by its bytes
    /// (`key`), and so only such a record comes back with a decision, for the one alert its
    /// bytes give again.
    fn decide(
        &mut self,
        keyed: Vec<Result<Keyed, DeadLetter>>,
        key: Option<[u8; 16]>,
        mut decided: Option<Verdict>,
        out: &mut Vec<Decided>,
    ) {
        let single = keyed.len() == 1;
        for k in keyed {
            let Keyed { prepared: p, dedup } = match k {
                Err(d) => {
                    out.push(Err(d));
                    continue;
                }
                Ok(k) => k,
            };
            let verdict = match decided.take() {
                Some(v) => v,
                None => {
                    let key = key.filter(|_| single);
                    self.window(key, dedup, p.mapped.class_uid, &p.source)
                }
            };
            out.push(Ok((p, verdict)));
        }
    }

    /// The window's decision for one alert, in input order; a record that gives that alert
    /// alone is remembered by its bytes (`key`) with its dedup key.
    fn window(
        &mut self,
        key: Option<[u8; 16]>,
        dedup: DedupKey,
        class_uid: u32,
        source: &str,
    ) -> Verdict {
        if let (Some(k), Some(exact)) = (key, self.exact.as_mut()) {
            exact.remember(k, dedup, class_uid, source);
        }
        self.deduper.check_key(dedup)
    }

    /// Stages 2 and 3 after the decision: a repeat is counted, a first alert enriched,
    /// tagged, scored and written.
    fn fold_finish(&mut self, d: Decided, ctx: RecordContext) -> Outcome {
        match d {
            Err(dead) => Outcome::DeadLetter(dead),
            Ok((p, verdict)) => match self.fold_with(p, verdict) {
                Folded::Duplicate(o) => o,
                Folded::Kept(k) => self.finish(*k, ctx),
            },
        }
    }

    /// Process a batch on this thread with exactly the outcomes, in exactly the order, that
    /// [`process_framed`](Pipeline::process_framed) gives record by record, but with the
    /// records of one source taken together. `ends[i]` is where record `i`'s outcomes end in
    /// `out` (both are appended to).
    ///
    /// Each source runs its own mapping rules, paths, regexes, tag conditions and checks; in
    /// a feed that interleaves sources record by record (the generated corpus, or one topic
    /// that many collectors write), every record finds the previous record's source's
    /// descriptors in the caches and its own evicted. Taken source by source, the same
    /// instructions run in about two thirds of the time (benches/OPTIMISATIONS.md, twelfth
    /// round). So stage 1 (decode, normalize, sanitise, the dedup key) runs over the batch in
    /// the order of [`group_key`], a guess at each record's source from its first bytes, and
    /// stage 2 (the exact-repeat memo and the dedup window's decisions, which read the keys
    /// alone) runs in input order, so every decision is the one record-by-record processing
    /// takes. Stage 3 (enrich, tag, score, write) runs for most alerts right after stage 1,
    /// on a guess of the decision stage 2 will take, which stage 2 then checks: an alert
    /// guessed wrong is made again from its record, on the decision taken (see
    /// [`Deduper::speculate`] for when a guess can be wrong). The rest (envelopes, alerts
    /// without a time of their own) wait for stage 2 and are finished after it, in stage 1's
    /// order backwards. Neither guess, of a record's source or of an alert's decision,
    /// changes a result: a wrong one costs time.
    ///
    /// A record whose bytes repeat one remembered at the start of the batch, or one earlier in
    /// the batch, skips stage 1 as in [`process`](Pipeline::process), and runs it in stage 2
    /// if the window does not fold it after all.
    pub fn process_grouped(
        &mut self,
        batch: Vec<(Framed, RecordContext)>,
        out: &mut Vec<Outcome>,
        ends: &mut Vec<usize>,
    ) {
        let n = batch.len();
        // Stage 0: the exact-repeat keys, and which records will be folded by them (or
        // nearly all of them: the window decides in stage 2).
        let mut keys: Vec<Option<[u8; 16]>> = vec![None; n];
        let mut skip = vec![false; n];
        if let Some(exact) = &self.exact {
            let mut in_batch = rustc_hash::FxHashSet::default();
            for (i, (f, _)) in batch.iter().enumerate() {
                if let Framed::Record(r) = f {
                    if let Some(k) = exact.key(r) {
                        keys[i] = Some(k);
                        skip[i] = !in_batch.insert(k) || exact.contains(&k);
                    }
                }
            }
        }
        // Stage 1 by guessed source, and stage 3 straight after it for each alert whose
        // decision can be guessed (see `early`).
        let order = by_key(&batch, |i, (f, _)| match f {
            Framed::Record(r) if !skip[i] => Some(group_key(r)),
            _ => None,
        });
        let mut early: Vec<Early> = (0..n).map(|_| Early::NotRun).collect();
        let mut pending = Pending::default();
        for &i in &order {
            if let (Framed::Record(r), ctx) = &batch[i] {
                early[i] = self.early(r, *ctx, &mut pending);
            }
        }
        // Stage 2, in input order: the window's decisions. It reads the dedup keys alone; an
        // alert finished on a guess keeps its outcome where the decision is the guess, and
        // is made again from its record where it is not.
        let mut items: Vec<Item> = Vec::with_capacity(n);
        let mut spans: Vec<(usize, usize)> = Vec::with_capacity(n);
        let mut decided_all = Vec::new();
        for (i, (f, ctx)) in batch.into_iter().enumerate() {
            let start = items.len();
            match f {
                Framed::Error {
                    origin,
                    bytes,
                    error,
                } => items.push(Item::Done(Outcome::DeadLetter(DeadLetter::from_error(
                    origin, None, bytes, &error,
                )))),
                Framed::Record(r) => match self.exact_check(keys[i]) {
                    ExactCheck::Folded(repeat) => items.push(Item::Done(repeat)),
                    ExactCheck::Go(decided) => {
                        let early = std::mem::take(&mut early[i]);
                        match self.settle(early, keys[i], decided, &r) {
                            Ok(done) => items.push(Item::Done(done)),
                            Err((k, decided)) => {
                                self.decide(k, keys[i], decided, &mut decided_all);
                                items.extend(decided_all.drain(..).map(|d| Item::Todo(d, ctx)));
                            }
                        }
                    }
                },
            }
            spans.push((start, items.len()));
        }
        // Stage 3 for the rest: source by source, stage 1's order backwards, so that the
        // alerts stage 1 left in the caches most recently come first; then the few that
        // stage 2 prepared.
        // (`as_slice`: simd-json's prelude gives `Vec` an `iter` of its own.)
        for &i in order.as_slice().iter().rev() {
            let (start, end) = spans[i];
            self.finish_items(&mut items[start..end]);
        }
        self.finish_items(&mut items);
        let mut items = items.into_iter();
        for (start, end) in spans {
            for item in items.by_ref().take(end - start) {
                match item {
                    Item::Done(o) => out.push(o),
                    _ => unreachable!("every alert was finished above"),
                }
            }
            ends.push(out.len());
        }
    }

    /// Stage 2 for a record [`early`](Pipeline::early) took, in input order: its outcome,
    /// where a dead letter or a guess that the window's decision (taken here) confirms made
    /// it; otherwise its alerts and the decision for the first of them, if taken, for
    /// [`decide`](Pipeline::decide). An alert guessed wrong is made again from its record.
    fn settle(
        &mut self,
        early: Early,
        key: Option<[u8; 16]>,
        decided: Option<Verdict>,
        record: &RawRecord,
    ) -> Result<Outcome, Undecided> {
        match early {
            Early::Dead(o) => Ok(o),
            Early::Finished(guess, outcome) if decided.is_none() => {
                let verdict = self.window(key, guess.dedup, guess.class_uid, &guess.source);
                if verdict == guess.verdict {
                    return Ok(outcome);
                }
                self.guesses_wrong += 1;
                Err((self.prepare_keyed(record), Some(verdict)))
            }
            Early::Held(keyed) => Err((keyed, decided)),
            Early::NotRun | Early::Finished(..) => Err((self.prepare_keyed(record), decided)),
        }
    }

    /// Stage 1 for a record of [`process_grouped`](Pipeline::process_grouped), and stage 3
    /// too where the record gives one alert with a time of its own: on the decision the
    /// window will take for it in input order, as [`Deduper::speculate`] guesses it, while
    /// the alert is still in the caches. Finished this way, a run's alerts are not held
    /// between the stages (about 8 MiB for 1,024 records), only their outcomes; the time it
    /// saves was small, about 2% of `process` (benches/OPTIMISATIONS.md, fourteenth round).
    fn early(&mut self, r: &RawRecord, ctx: RecordContext, pending: &mut Pending) -> Early {
        let mut keyed = self.prepare_keyed(r);
        if keyed.len() != 1 {
            return Early::Held(keyed);
        }
        let k = match keyed.pop().expect("one entry") {
            Err(d) => return Early::Dead(Outcome::DeadLetter(d)),
            Ok(k) => k,
        };
        let Some(verdict) = self.deduper.speculate(k.dedup, pending) else {
            return Early::Held(vec![Ok(k)]);
        };
        let guess = Guess {
            dedup: k.dedup,
            class_uid: k.prepared.mapped.class_uid,
            source: k.prepared.source.clone(),
            verdict: verdict.clone(),
        };
        self.guesses += 1;
        let outcome = self.fold_finish(Ok((k.prepared, verdict)), ctx);
        Early::Finished(Box::new(guess), outcome)
    }

    /// Stage 3 for the alerts among `items` not finished yet.
    fn finish_items(&mut self, items: &mut [Item]) {
        for item in items {
            if let Item::Todo(..) = item {
                let Item::Todo(d, ctx) = std::mem::replace(item, Item::Finishing) else {
                    unreachable!("matched above")
                };
                *item = Item::Done(self.fold_finish(d, ctx));
            }
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
        if threads <= 1 || !self.start_pool(threads) {
            // One thread: source by source in runs of [`GROUP_RUN`] records (the outcomes
            // and their order are those of `process_framed` record by record).
            let mut ends = Vec::new();
            let mut batch = batch.into_iter().peekable();
            while batch.peek().is_some() {
                let run = batch.by_ref().take(GROUP_RUN).map(|f| (f, ctx)).collect();
                self.process_grouped(run, out, &mut ends);
                ends.clear();
            }
            return;
        }
        let this = &*self;
        let pool = this.pool.as_ref().expect("started above");
        // Each thread takes its slice source by source too (see `process_grouped`), and gives
        // its results back in input order.
        let prepared = par_map(batch, pool, |chunk| {
            let mut buf = Vec::new();
            let mut each: Vec<Vec<Result<Prepared, DeadLetter>>> =
                (0..chunk.len()).map(|_| Vec::new()).collect();
            let order = by_key(&chunk, |_, f| match f {
                Framed::Record(r) => Some(group_key(r)),
                Framed::Error { .. } => None,
            });
            for i in order {
                if let Framed::Record(r) = &chunk[i] {
                    this.prepare(r, &mut buf, &mut each[i]);
                }
            }
            for (f, v) in chunk.into_iter().zip(&mut each) {
                if let Framed::Error {
                    origin,
                    bytes,
                    error,
                } = f
                {
                    v.push(Err(DeadLetter::from_error(origin, None, bytes, &error)));
                }
            }
            each.into_iter().flatten().collect()
        });
        let folded: Vec<Folded> = prepared
            .into_iter()
            .map(|p| match p {
                Err(d) => Folded::Duplicate(Outcome::DeadLetter(d)),
                Ok(p) => self.fold(p),
            })
            .collect();
        let this = &*self;
        let pool = this.pool.as_ref().expect("started above");
        out.extend(par_map(folded, pool, |chunk| {
            let order = by_key(&chunk, |_, f| match f {
                Folded::Kept(k) => Some(source_key(&k.prepared)),
                Folded::Duplicate(_) => None,
            });
            let mut slots: Vec<Option<Folded>> = chunk.into_iter().map(Some).collect();
            let mut done: Vec<Option<Outcome>> = (0..slots.len()).map(|_| None).collect();
            for i in order {
                if let Some(Folded::Kept(k)) = slots[i].take() {
                    done[i] = Some(this.finish(*k, ctx));
                }
            }
            slots
                .into_iter()
                .zip(done)
                .map(|(slot, done)| match (slot, done) {
                    (_, Some(o)) | (Some(Folded::Duplicate(o)), None) => o,
                    _ => unreachable!("every kept alert was finished above"),
                })
                .collect()
        }));
    }

    /// Have `threads` threads ready for [`Pipeline::process_batch`] (kept from an earlier
    /// batch when there are as many). `false` when they cannot be started; the batch then
    /// runs on the calling thread, with the same outcomes.
    fn start_pool(&mut self, threads: usize) -> bool {
        if self
            .pool
            .as_ref()
            .is_some_and(|p| p.current_num_threads() == threads)
        {
            return true;
        }
        self.pool = None;
        match new_pool(threads) {
            Ok(p) => self.pool = Some(p),
            Err(e) => {
                tracing::warn!(threads, error = %e, "could not start the core's threads; processing on one")
            }
        }
        self.pool.is_some()
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
                crate::normalize::spare::put(p.mapped.shape, p.alert);
                return Folded::Duplicate(Outcome::Duplicate {
                    source: p.source,
                    class_uid,
                    fingerprint,
                });
            }
            Verdict::First(info) => info,
        };
        let mut enrich = EnrichOutput::default();
        if !self.enrichers.is_empty() {
            let alert = AlertView::new(&p.alert);
            for e in &mut self.enrichers {
                e.enrich(&alert, &mut enrich);
            }
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
            gaps.push(Gap::at(
                "fields_unmapped",
                "unmapped",
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
                Some(m.attribute.to_string()),
                Some(m.value.clone()),
            ));
        }
        score::sort_gaps(&mut gaps);
        let quality_score = score::score(&gaps);

        let mut lookups: Vec<(std::sync::Arc<str>, bool)> = Vec::new();
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
            let mut text = Vec::with_capacity(96);
            bundle::write_origin(&mut text, &origin);
            h.update(&text);
            h.update(index.unwrap_or(0).to_le_bytes());
            h.update(dedup.fingerprint.as_bytes());
            let digest = h.finalize();
            crate::dedup::hex16(
                digest[..16]
                    .try_into()
                    .expect("a SHA-256 digest is 32 bytes"),
            )
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
        let outcome = Outcome::Bundle {
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
        };
        crate::normalize::spare::put(mapped.shape, alert);
        outcome
    }
}

/// Records taken source by source at a time ([`Pipeline::process_grouped`]) by
/// [`Pipeline::process_batch`] on one thread and by the Kafka worker. Over 50,000 generated
/// records with the production-size reference data, `process` took 2.96–3.19 s of CPU record
/// by record, 2.52–2.63 s in runs of 512, 2.45–2.54 s in runs of 1,024 and 2.37–2.47 s in runs
/// of 2,048. Runs of 2,048, with most alerts finished in stage 1 and so not held, still took
/// the worker's peak memory to 288–294 MiB, too close to its 300 MiB target for a gain its runs
/// could not tell (benches/OPTIMISATIONS.md, twelfth and fourteenth rounds).
pub const GROUP_RUN: usize = 1024;

/// A guess at a record's source from its first bytes, for [`Pipeline::process_grouped`] to
/// take records of one source together: its input and kind, and for JSON the first key (a
/// feed writes its keys in one order), otherwise the text up to the first space, `|` or `,`
/// (`CEF:0`, `LEEF:1.0`, a syslog priority, a firewall's first column). Only an order: a
/// wrong guess costs time, never a different result.
pub fn group_key(r: &RawRecord) -> u64 {
    let b = &r.bytes[..r.bytes.len().min(64)];
    let head = if b.starts_with(b"{\"") {
        b[2..]
            .iter()
            .position(|&c| c == b'"')
            .map_or(b, |e| &b[..e + 3])
    } else {
        let end = b
            .iter()
            .position(|c| b" |,".contains(c))
            .unwrap_or(b.len().min(16));
        &b[..end]
    };
    let kind: u8 = match r.kind {
        RecordKind::Json => 0,
        RecordKind::Xml => 1,
        RecordKind::Text => 2,
        RecordKind::ZeekTsv(_) => 3,
        RecordKind::ZeekBlock => 4,
    };
    rustc_hash::FxBuildHasher.hash_one((r.origin.input_name(), kind, head))
}

/// The positions of `items` that `key` gives a key, ordered by it (ties in input order).
fn by_key<T>(items: &[T], key: impl Fn(usize, &T) -> Option<u64>) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| Some((key(i, item)?, i)))
        .collect();
    order.sort_unstable();
    order.into_iter().map(|(_, i)| i).collect()
}

/// The source and class an alert was mapped as, for stage 3 to take them together.
fn source_key(p: &Prepared) -> u64 {
    rustc_hash::FxBuildHasher.hash_one((&p.source, p.mapped.class_uid))
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

/// What the exact-repeat check found of a record.
enum ExactCheck {
    /// The window folds it by its bytes alone: its outcome, and nothing else runs.
    Folded(Outcome),
    /// The whole way, with the window's decision if the check took it (the record's bytes
    /// were remembered and the window has passed).
    Go(Option<Verdict>),
}

/// An alert of stage 1 with its dedup key.
struct Keyed {
    prepared: Prepared,
    dedup: crate::dedup::DedupKey,
}

/// What [`Pipeline::process_grouped`] did with a record before stage 2.
#[derive(Default)]
enum Early {
    /// Nothing: an exact repeat, which stage 2 folds (or prepares, if the window has passed).
    #[default]
    NotRun,
    /// Stage 1 only: the decision must wait for stage 2 (an envelope, or an alert without a
    /// time of its own).
    Held(Vec<Result<Keyed, DeadLetter>>),
    /// A dead letter, final whatever the window decides.
    Dead(Outcome),
    /// Finished on a guessed decision, for stage 2 to confirm.
    Finished(Box<Guess>, Outcome),
}

/// A record's alerts after stage 1, with the window's decision for the first if it was taken.
type Undecided = (Vec<Result<Keyed, DeadLetter>>, Option<Verdict>);

/// An alert finished before its turn: what the window is asked in stage 2, and the decision
/// its outcome was made on.
struct Guess {
    dedup: DedupKey,
    class_uid: u32,
    source: String,
    verdict: Verdict,
}

/// An alert with the window's decision, or a record's dead letter.
type Decided = Result<(Prepared, Verdict), DeadLetter>;

/// One outcome of [`Pipeline::process_grouped`] on its way: decided, being finished (moved
/// out for a moment), or made.
enum Item {
    Todo(Decided, RecordContext),
    Finishing,
    Done(Outcome),
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

/// The threads of [`Pipeline::process_batch`], kept for as long as the pipeline.
///
/// Each thread keeps what it learns in thread-local memos (the sanitiser's detection, the
/// mappings' regex cuts: [`crate::memo`]). Threads started afresh for every batch began with
/// empty memos, set up about 1.2 MiB of slots again and took a new allocator heap: 0.8 s of
/// system time over 400,000 records with two threads, against 0.3 s with the pool
/// (benches/OPTIMISATIONS.md, eighteenth round).
fn new_pool(threads: usize) -> Result<rayon::ThreadPool, rayon::ThreadPoolBuildError> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("alertctx-core-{i}"))
        .build()
}

/// Split `items` into at most as many contiguous runs as `pool` has threads, map each on a
/// thread of `pool`, and concatenate the results in the original order.
fn par_map<T: Send, U: Send>(
    mut items: Vec<T>,
    pool: &rayon::ThreadPool,
    f: impl Fn(Vec<T>) -> Vec<U> + Sync,
) -> Vec<U> {
    use rayon::prelude::*;
    let threads = pool.current_num_threads().clamp(1, items.len().max(1));
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
    // One task a run (`with_max_len(1)`), collected in the runs' order.
    let done: Vec<Vec<U>> = pool.install(|| runs.into_par_iter().with_max_len(1).map(&f).collect());
    done.into_iter().flatten().collect()
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::framing::frame_all;
    use crate::generate::Generator;

    /// An outcome as text, to compare whole runs.
    fn render(o: &Outcome) -> String {
        match o {
            Outcome::Bundle { json, key, .. } => format!("bundle {key} {json}"),
            Outcome::Duplicate {
                source,
                class_uid,
                fingerprint,
            } => format!("duplicate {source} {class_uid} {fingerprint}"),
            Outcome::DeadLetter(d) => format!("dead {}", serde_json::to_string(d).unwrap()),
        }
    }

    #[test]
    fn grouped_runs_give_what_record_by_record_gives() {
        // Generated records of every source (repeats, envelopes), each tenth one again verbatim
        // a few hundred records later, and records that are dead-lettered.
        let lines: Vec<String> = Generator::new(11).take(2500).map(|r| r.line).collect();
        let mut text = String::new();
        for (i, line) in lines.iter().enumerate() {
            text.push_str(line);
            text.push('\n');
            if i >= 300 && i % 10 == 0 {
                text.push_str(&lines[i - 300]);
                text.push('\n');
            }
            if i % 500 == 7 {
                text.push_str("{\"src_ip\": }\nCEF:0|Vendor|only three fields\n");
            }
        }
        // The defaults; then a window, a fingerprint memory and an exact-repeat memory small
        // enough that what was remembered at the start of a run is forgotten during it.
        for (capacity, exact, window, least_exact) in
            [(1_000_000, 65_536, "10m", 500), (300, 40, "1m", 40)]
        {
            let mut cfg = Config::default();
            cfg.quality.reference_time = "none".into();
            cfg.dedup.capacity = capacity;
            cfg.dedup.exact_repeats = exact;
            cfg.dedup.window = window.into();
            let (one, expected) = one_by_one(&cfg, &text);
            let dead = expected
                .iter()
                .filter(|o| matches!(o, Outcome::DeadLetter(_)))
                .count();
            assert_eq!(dead, 10, "the broken records");
            assert!(one.exact_repeats_folded() > least_exact);
            for run in [1, 7, 256, GROUP_RUN, 5000] {
                let (grouped, out) = in_runs(&cfg, &text, run);
                assert_eq!(out.len(), expected.len(), "run {run}");
                for (i, (a, b)) in expected.iter().zip(&out).enumerate() {
                    assert_eq!(render(a), render(b), "outcome {i}, run {run}");
                }
                assert_eq!(
                    grouped.exact_repeats_folded(),
                    one.exact_repeats_folded(),
                    "run {run}"
                );
                // More than half of the 2,500 alerts were finished on a guess (the rest have
                // no time of their own or were folded by their bytes); with the small memory,
                // alerts whose entry the window forgot during the run were guessed wrong and
                // made again.
                let (made, wrong) = grouped.guesses();
                assert!(made > 1250, "{made} guesses, run {run}");
                if capacity == 300 && run >= 256 {
                    assert!(wrong > 0, "no wrong guess, run {run}");
                }
            }
        }
    }

    #[test]
    fn alerts_built_into_spare_maps_are_the_alerts_built_anew() {
        // Generated records of every source, every seventh JSON one with a key the sanitiser
        // renames (so that a spare's keys differ from the next alert's), through one pipeline
        // on this thread, which keeps each class rule's last alert to build the next one
        // into, and through another with each record on a thread of its own, which has none.
        let mut text = String::new();
        for (i, r) in Generator::new(13).take(3000).enumerate() {
            match r.line.strip_prefix('{') {
                Some(rest) if i % 7 == 0 => {
                    text.push_str("{\"odd\\u200bkey\u{7}\": \"x\", ");
                    text.push_str(rest);
                }
                _ => text.push_str(&r.line),
            }
            text.push('\n');
        }
        let mut cfg = Config::default();
        cfg.quality.reference_time = "none".into();
        let (_, reused) = one_by_one(&cfg, &text);
        assert!(
            crate::normalize::spare::held() > 20,
            "{} spare maps",
            crate::normalize::spare::held()
        );
        let mut fresh = Pipeline::from_config(&cfg).unwrap();
        let mut anew = Vec::new();
        for f in frame_all("gen", text.as_bytes(), fresh.limits()) {
            std::thread::scope(|s| {
                s.spawn(|| {
                    assert_eq!(crate::normalize::spare::held(), 0, "a new thread's");
                    fresh.process_framed(f, RecordContext::default(), &mut anew);
                });
            });
        }
        assert_eq!(reused.len(), anew.len());
        let renamed = reused.iter().filter(|o| render(o).contains("odd")).count();
        assert!(renamed > 200, "{renamed} bundles with the renamed key");
        for (i, (a, b)) in reused.iter().zip(&anew).enumerate() {
            assert_eq!(render(a), render(b), "outcome {i}");
        }
    }

    #[test]
    fn par_map_keeps_the_order_and_its_threads_from_call_to_call() {
        use std::collections::HashSet;
        use std::sync::Mutex;
        let pool = new_pool(2).unwrap();
        let seen = Mutex::new(HashSet::new());
        let caller = std::thread::current().id();
        for len in [0, 1, 2, 3, 1000, 1001] {
            let items: Vec<usize> = (0..len).collect();
            let out = par_map(items, &pool, |run| {
                // Fewer than two items are mapped on the caller's thread, unsplit.
                let here = std::thread::current().id();
                if len >= 2 {
                    seen.lock().unwrap().insert(here);
                } else {
                    assert_eq!(here, caller, "{len} items");
                }
                run.into_iter().map(|i| i * 3).collect()
            });
            assert_eq!(
                out,
                (0..len).map(|i| i * 3).collect::<Vec<_>>(),
                "{len} items"
            );
        }
        // Four calls split their items (two runs each); the runs ran on the pool's two
        // threads, not on threads of their own, and never on the caller's.
        let seen = seen.into_inner().unwrap();
        assert!(
            !seen.is_empty() && seen.len() <= 2,
            "{} threads",
            seen.len()
        );
        assert!(!seen.contains(&caller));
    }

    #[test]
    fn batches_on_kept_threads_give_what_one_thread_gives() {
        let lines: Vec<String> = Generator::new(12).take(3000).map(|r| r.line).collect();
        let text = lines.join("\n") + "\n{broken\n";
        let mut cfg = Config::default();
        cfg.quality.reference_time = "none".into();
        let (_, expected) = one_by_one(&cfg, &text);
        let mut p = Pipeline::from_config(&cfg).unwrap();
        let mut framed = frame_all("gen", text.as_bytes(), p.limits()).into_iter();
        let mut out = Vec::new();
        // Batches of 500 on two threads, then on three: the pool is started once for each
        // count and kept between batches.
        for n in 0.. {
            let batch: Vec<Framed> = framed.by_ref().take(500).collect();
            if batch.is_empty() {
                break;
            }
            let threads = if n < 3 { 2 } else { 3 };
            p.process_batch(batch, threads, RecordContext::default(), &mut out);
            assert_eq!(
                p.pool.as_ref().map(rayon::ThreadPool::current_num_threads),
                Some(threads)
            );
        }
        assert_eq!(out.len(), expected.len());
        assert!(out.iter().any(|o| matches!(o, Outcome::DeadLetter(_))));
        for (i, (a, b)) in expected.iter().zip(&out).enumerate() {
            assert_eq!(render(a), render(b), "outcome {i}");
        }
    }

    /// `text`'s records one by one ([`Pipeline::process_framed`]).
    fn one_by_one(cfg: &Config, text: &str) -> (Pipeline, Vec<Outcome>) {
        let mut one = Pipeline::from_config(cfg).unwrap();
        let mut out = Vec::new();
        for f in frame_all("gen", text.as_bytes(), one.limits()) {
            one.process_framed(f, RecordContext::default(), &mut out);
        }
        (one, out)
    }

    /// `text`'s records through [`Pipeline::process_grouped`] in runs of `run`, checking the
    /// ends it reports.
    fn in_runs(cfg: &Config, text: &str, run: usize) -> (Pipeline, Vec<Outcome>) {
        let mut grouped = Pipeline::from_config(cfg).unwrap();
        let frames = frame_all("gen", text.as_bytes(), grouped.limits());
        let (mut out, mut ends) = (Vec::new(), Vec::new());
        let mut frames = frames.into_iter().peekable();
        let mut records = 0;
        while frames.peek().is_some() {
            let batch: Vec<_> = frames
                .by_ref()
                .take(run)
                .map(|f| (f, RecordContext::default()))
                .collect();
            records += batch.len();
            grouped.process_grouped(batch, &mut out, &mut ends);
        }
        assert_eq!(ends.len(), records, "an end for each record (run {run})");
        assert!(ends.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(ends.last().copied(), Some(out.len()));
        (grouped, out)
    }

    #[test]
    fn alerts_guessed_out_of_input_order_are_made_again() {
        // The same JSON records twice over, once with their keys as the generator wrote them
        // and once sorted: the same alerts, but a different first key, so that stage 1 takes
        // the two spellings in different groups, and the guesses for one fingerprint are not
        // made in input order. Each record four times: sorted, as written, sorted, as written.
        let mut text = String::new();
        let mut pairs: u64 = 0;
        for r in Generator::new(5).take(400) {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&r.line) else {
                continue;
            };
            let sorted = serde_json::to_string(&v).unwrap();
            let first_key = |l: &str| l.split('"').nth(1).map(str::to_string);
            if !v.is_object() || first_key(&sorted) == first_key(&r.line) {
                continue;
            }
            pairs += 1;
            for line in [&sorted, &r.line, &sorted, &r.line] {
                text.push_str(line);
                text.push('\n');
            }
        }
        assert!(pairs > 50, "{pairs} records whose first key sorting moves");
        let mut cfg = Config::default();
        cfg.quality.reference_time = "none".into();
        let (_, expected) = one_by_one(&cfg, &text);
        let (grouped, out) = in_runs(&cfg, &text, GROUP_RUN);
        assert_eq!(out.len(), expected.len());
        for (i, (a, b)) in expected.iter().zip(&out).enumerate() {
            assert_eq!(render(a), render(b), "outcome {i}");
        }
        let (made, wrong) = grouped.guesses();
        assert!(
            wrong > pairs / 2,
            "{wrong} of {made} guesses wrong, {pairs} records"
        );
        // The repeats were counted: every record's second, third and fourth spelling.
        let duplicates = out
            .iter()
            .filter(|o| matches!(o, Outcome::Duplicate { .. }))
            .count() as u64;
        assert!(duplicates >= 3 * pairs * 9 / 10, "{duplicates} duplicates");
    }

    #[test]
    fn the_source_guess_reads_the_first_key_or_the_first_word() {
        let rec = |s: &str, kind| RawRecord {
            bytes: s.as_bytes().to_vec(),
            origin: Origin::File {
                input: "in".into(),
                line: 1,
            },
            kind,
        };
        let json = |s: &str| group_key(&rec(s, RecordKind::Json));
        let text = |s: &str| group_key(&rec(s, RecordKind::Text));
        assert_eq!(json(r#"{"actor":{"id":1},"x":2}"#), json(r#"{"actor":3}"#));
        assert_ne!(json(r#"{"actor":3}"#), json(r#"{"EventTime":3}"#));
        assert_eq!(text("CEF:0|A|B|1|2|x|3|"), text("CEF:0|C|D|1|2|y|3|"));
        assert_ne!(text("CEF:0|A|B|1|2|x|3|"), text("LEEF:1.0|A|B|1|x|"));
        assert_ne!(json(r#"{"a":1}"#), text(r#"{"a":1}"#), "the kind counts");
    }
}
