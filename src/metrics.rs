//! Every metric alertctx exports, defined in one place, and how the core's outcomes feed them.
//!
//! Names follow Prometheus conventions: `alertctx_` prefix, base units, `_total` for
//! counters. Ratios (field fill, enrichment hit ratio) are exported as pairs of counters so
//! they can be computed over any window in PromQL.

use crate::enrich::EnricherStats;
use crate::keyed::{by_name, by_str};
use crate::pipeline::Outcome;
use crate::score::FieldFill;
use prometheus::core::Collector;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};
use rustc_hash::FxHashMap;
use std::sync::Mutex;

pub struct Metrics {
    registry: Registry,
    pub input_messages: IntCounterVec,
    pub records: IntCounterVec,
    pub bundles: IntCounterVec,
    pub duplicates: IntCounterVec,
    pub dead_letters: IntCounterVec,
    pub quality_score: HistogramVec,
    pub gaps: IntCounterVec,
    pub safety_findings: IntCounterVec,
    pub fields_checked: IntCounterVec,
    pub fields_present: IntCounterVec,
    pub enrichment_lookups: IntCounterVec,
    pub enrichment_cache: IntCounterVec,
    pub enrichment_cache_entries: IntGaugeVec,
    pub enrichment_cache_capacity: IntGaugeVec,
    pub enrichment_lookup_errors: IntCounterVec,
    pub source_last_seen: IntGaugeVec,
    pub consumer_lag: IntGaugeVec,
    pub latency: HistogramVec,
    pub produced: IntCounterVec,
    pub commits: IntCounterVec,
    pub client_errors: IntCounterVec,
    pub in_flight: IntGauge,
    pub dedup_keys: IntGauge,
    pub exact_repeats: IntCounter,
    pub dedup_guesses: IntCounterVec,
    pub ready: IntGauge,
    pub assigned_partitions: IntGauge,
    /// Handles of the per-outcome series: see [`SourceSeries`].
    series: Mutex<Series>,
}

/// The handles [`Metrics::observe`] keeps.
#[derive(Default)]
struct Series {
    /// By source.
    sources: FxHashMap<String, SourceSeries>,
    /// By enricher ([`by_name`]): the `hit` and `miss` series of `enrichment_lookups_total`,
    /// each made when first needed.
    lookups: Vec<(std::sync::Arc<str>, [Option<Count>; 2])>,
}

/// A counter series and what has been counted for it since it was last brought up to date.
///
/// A bundle adds to 25 to 45 series; as atomic adds to the counters themselves, those were
/// most of what counting an outcome cost once the handles were kept. The counts wait here,
/// behind the lock [`Metrics::observe`] takes anyway, and [`Metrics::encode`] adds them to the
/// counters under the same lock before it reads them: a scrape sees every outcome observed
/// before it, as when each was added at once.
struct Count {
    series: IntCounter,
    unsent: u64,
}

impl Count {
    fn new(series: IntCounter) -> Count {
        Count { series, unsent: 0 }
    }

    fn inc(&mut self) {
        self.unsent += 1;
    }

    fn send(&mut self) {
        if self.unsent > 0 {
            self.series.inc_by(self.unsent);
            self.unsent = 0;
        }
    }
}

impl Series {
    /// Add every waiting count to its counter.
    fn send(&mut self) {
        for (_, results) in &mut self.lookups {
            results.iter_mut().flatten().for_each(Count::send);
        }
        for s in self.sources.values_mut() {
            s.gaps.values_mut().for_each(Count::send);
            s.findings.values_mut().for_each(Count::send);
            for c in s.classes.values_mut() {
                [&mut c.records, &mut c.bundles, &mut c.duplicates]
                    .into_iter()
                    .flatten()
                    .for_each(Count::send);
                for f in &mut c.fields {
                    f.checked.send();
                    f.present.iter_mut().for_each(Count::send);
                }
            }
        }
    }
}

/// The series one source's outcomes update, looked up by label values once instead of for
/// every outcome. `with_label_values` hashes each label value, takes the family's lock and
/// clones the handle; a bundle updates 25 to 45 series (one pair per required and
/// recommended attribute checked), all of that for every record. A handle is made when its
/// series is first needed, exactly as `with_label_values` would make it, so the exposition is
/// the same; the counts themselves wait in [`Count`]s until a scrape.
#[derive(Default)]
struct SourceSeries {
    quality: Option<Histogram>,
    last_seen: Option<IntGauge>,
    gaps: FxHashMap<&'static str, Count>,
    findings: FxHashMap<&'static str, Count>,
    classes: FxHashMap<u32, ClassSeries>,
}

/// The series of one (source, class).
#[derive(Default)]
struct ClassSeries {
    records: Option<Count>,
    bundles: Option<Count>,
    duplicates: Option<Count>,
    /// One per attribute a bundle of the class reports the fill of, in the order its checks
    /// report them. That order is the same for every bundle of a class, so a bundle's 20 to 40
    /// attributes are counted by position, each confirmed by its (static) name, instead of
    /// looked up by hashing the pair of names.
    fields: Vec<FieldSeries>,
}

/// The checked and present series of one (attribute, requirement) of a (source, class).
struct FieldSeries {
    attribute: &'static str,
    requirement: &'static str,
    checked: Count,
    /// Made the first time the attribute is present.
    present: Option<Count>,
}

impl FieldSeries {
    fn is(&self, f: &FieldFill) -> bool {
        // The names come from the class's checks: the same `&'static str` every time, so the
        // pointers match; the text comparison is for a name spelled elsewhere.
        (std::ptr::eq(self.attribute, f.attribute) || self.attribute == f.attribute)
            && (std::ptr::eq(self.requirement, f.requirement) || self.requirement == f.requirement)
    }
}

/// Where `f`'s series is in `fields`, which `f` is the `i`-th of a bundle's fill of: at `i`
/// when the bundle reports the class's attributes in the order of the bundles before it
/// (always, in practice), else wherever it is, else none yet.
fn field_at(fields: &[FieldSeries], i: usize, f: &FieldFill) -> Option<usize> {
    if fields.get(i).is_some_and(|s| s.is(f)) {
        return Some(i);
    }
    fields.iter().position(|s| s.is(f))
}

/// `metric` registered with `r` (each name once); the handle is returned to update it.
fn registered<M: Collector + Clone + 'static>(r: &Registry, metric: prometheus::Result<M>) -> M {
    let m = metric.expect("metric definition");
    r.register(Box::new(m.clone()))
        .expect("metric registered once");
    m
}

fn opts(name: &str, help: &str) -> Opts {
    Opts::new(name, help).namespace("alertctx")
}

fn counter(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    registered(r, IntCounterVec::new(opts(name, help), labels))
}

fn counter_one(r: &Registry, name: &str, help: &str) -> IntCounter {
    registered(r, IntCounter::with_opts(opts(name, help)))
}

fn gauge_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntGaugeVec {
    registered(r, IntGaugeVec::new(opts(name, help), labels))
}

fn gauge(r: &Registry, name: &str, help: &str) -> IntGauge {
    registered(r, IntGauge::with_opts(opts(name, help)))
}

fn histogram(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
    buckets: Vec<f64>,
) -> HistogramVec {
    let opts = HistogramOpts::from(opts(name, help)).buckets(buckets);
    registered(r, HistogramVec::new(opts, labels))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let r = Registry::new();
        Metrics {
            input_messages: counter(&r, "input_messages_total", "Kafka messages consumed from raw topics.", &["topic"]),
            records: counter(&r, "records_total", "Records normalized (bundles plus folded duplicates), by source and OCSF class.", &["source", "class"]),
            bundles: counter(&r, "bundles_total", "Context bundles written, by source and OCSF class.", &["source", "class"]),
            duplicates: counter(&r, "duplicates_folded_total", "Repeats folded into an earlier bundle by deduplication.", &["source", "class"]),
            dead_letters: counter(&r, "dead_letters_total", "Records dead-lettered, by reason code and input topic (or file).", &["reason", "topic"]),
            quality_score: histogram(&r, "quality_score", "Quality score (0-100) of each bundle.", &["source"], vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]),
            gaps: counter(&r, "gaps_total", "Data gaps found, by source and gap code (time_future and time_too_old count late and future events).", &["source", "code"]),
            safety_findings: counter(&r, "safety_findings_total", "Instruction-like or hidden text found in bundles, by source and finding kind.", &["source", "kind"]),
            fields_checked: counter(&r, "fields_checked_total", "Required/recommended OCSF attributes checked, by source, class, attribute and requirement.", &["source", "class", "attribute", "requirement"]),
            fields_present: counter(&r, "fields_present_total", "Required/recommended OCSF attributes found present; divide by fields_checked_total for the fill ratio.", &["source", "class", "attribute", "requirement"]),
            enrichment_lookups: counter(&r, "enrichment_lookups_total", "Enrichment lookups by enricher and result (hit or miss).", &["enricher", "result"]),
            enrichment_cache: counter(&r, "enrichment_cache_lookups_total", "Lookups that reached an enricher's cache of answers (geo: public addresses), by enricher and result: hit (answered from the cache) or miss (read from the reference data; every lookup when the cache is off).", &["enricher", "result"]),
            enrichment_cache_entries: gauge_vec(&r, "enrichment_cache_entries", "Answers an enricher's cache holds now.", &["enricher"]),
            enrichment_cache_capacity: gauge_vec(&r, "enrichment_cache_capacity", "Answers an enricher's cache can hold (its cache_size; 0 when off).", &["enricher"]),
            enrichment_lookup_errors: counter(&r, "enrichment_lookup_errors_total", "Reference-data records an enricher found but could not read (a corrupt or wrongly typed database): the answer went out without that database's part.", &["enricher"]),
            source_last_seen: gauge_vec(&r, "source_last_seen_timestamp_seconds", "Wall-clock time a record of this source was last processed.", &["source"]),
            consumer_lag: gauge_vec(&r, "consumer_lag_messages", "Messages between the committed position and the end of each assigned partition.", &["topic", "partition"]),
            latency: histogram(&r, "end_to_end_latency_seconds", "Broker timestamp of the input message to acknowledgement of its last output.", &["topic"], vec![0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0]),
            produced: counter(&r, "produced_messages_total", "Output messages acknowledged or failed, by topic and result.", &["topic", "result"]),
            commits: counter(&r, "offset_commits_total", "Offset commits, by result.", &["result"]),
            client_errors: counter(&r, "kafka_client_errors_total", "Errors librdkafka reported to the worker's consumer and producer (connection trouble, mostly), by client (consumer, producer, poll: the consumer's message stream) and librdkafka error name.", &["client", "error"]),
            in_flight: gauge(&r, "in_flight_messages", "Consumed messages whose outputs are not all acknowledged yet."),
            dedup_keys: gauge(&r, "dedup_keys", "Fingerprints the deduplication window remembers."),
            exact_repeats: counter_one(&r, "exact_repeats_folded_total", "Duplicates recognised by their bytes (a repeat of a recent record from the same input) and folded without being decoded; they are counted in duplicates_folded_total too."),
            dedup_guesses: counter(&r, "dedup_guesses_total", "Alerts finished before the dedup window's decision, on a guess of it, by result: right, or wrong (made again on the decision taken: the same outcome, the work done twice).", &["result"]),
            ready: gauge(&r, "ready", "1 when /readyz answers 200: partitions assigned, not draining, nothing failed."),
            assigned_partitions: gauge(&r, "assigned_partitions", "Partitions of the raw topics assigned to this member."),
            series: Mutex::default(),
            registry: r,
        }
    }

    /// Count one outcome of the core.
    pub fn observe(&self, o: &Outcome, now_s: i64) {
        let (source, class_uid) = match o {
            Outcome::Bundle { report, .. } => (report.source.as_str(), report.class_uid),
            Outcome::Duplicate {
                source, class_uid, ..
            } => (source.as_str(), *class_uid),
            Outcome::DeadLetter(d) => {
                return self
                    .dead_letters
                    .with_label_values(&[d.reason, d.origin.input_name()])
                    .inc()
            }
        };
        let mut guard = self.series.lock().unwrap_or_else(|e| e.into_inner());
        let Series { sources, lookups } = &mut *guard;
        let s = by_str(sources, source, SourceSeries::default);
        let c = s.classes.entry(class_uid).or_default();
        let class = || class_uid.to_string();
        c.records
            .get_or_insert_with(|| Count::new(self.records.with_label_values(&[source, &class()])))
            .inc();
        match o {
            Outcome::Bundle { report, .. } => {
                c.bundles
                    .get_or_insert_with(|| {
                        Count::new(self.bundles.with_label_values(&[source, &class()]))
                    })
                    .inc();
                for (i, f) in report.fill.iter().enumerate() {
                    let labels = || {
                        [
                            source.to_string(),
                            class(),
                            f.attribute.into(),
                            f.requirement.into(),
                        ]
                    };
                    let at = field_at(&c.fields, i, f).unwrap_or_else(|| {
                        c.fields.push(FieldSeries {
                            attribute: f.attribute,
                            requirement: f.requirement,
                            checked: Count::new(self.fields_checked.with_label_values(&labels())),
                            present: None,
                        });
                        c.fields.len() - 1
                    });
                    let series = &mut c.fields[at];
                    series.checked.inc();
                    if f.present {
                        series
                            .present
                            .get_or_insert_with(|| {
                                Count::new(self.fields_present.with_label_values(&labels()))
                            })
                            .inc();
                    }
                }
                s.quality
                    .get_or_insert_with(|| self.quality_score.with_label_values(&[source]))
                    .observe(report.score as f64);
                for &g in &report.gaps {
                    s.gaps
                        .entry(g)
                        .or_insert_with(|| Count::new(self.gaps.with_label_values(&[source, g])))
                        .inc();
                }
                for &k in &report.safety_findings {
                    s.findings
                        .entry(k)
                        .or_insert_with(|| {
                            Count::new(self.safety_findings.with_label_values(&[source, k]))
                        })
                        .inc();
                }
                for (enricher, hit) in &report.lookups {
                    let (_, counts) =
                        by_name(lookups, enricher, || (enricher.clone(), [None, None]));
                    let result = if *hit { "hit" } else { "miss" };
                    counts[usize::from(!*hit)]
                        .get_or_insert_with(|| {
                            Count::new(
                                self.enrichment_lookups
                                    .with_label_values(&[&**enricher, result]),
                            )
                        })
                        .inc();
                }
            }
            _ => c
                .duplicates
                .get_or_insert_with(|| {
                    Count::new(self.duplicates.with_label_values(&[source, &class()]))
                })
                .inc(),
        }
        s.last_seen
            .get_or_insert_with(|| self.source_last_seen.with_label_values(&[source]))
            .set(now_s);
    }

    /// The series of one enricher's [`EnricherStats`], made (at zero, so that alerts on them
    /// have a series to read from the start) when the worker starts.
    pub fn enricher(&self, name: &str) -> EnricherSeries {
        EnricherSeries {
            hits: self.enrichment_cache.with_label_values(&[name, "hit"]),
            misses: self.enrichment_cache.with_label_values(&[name, "miss"]),
            entries: self.enrichment_cache_entries.with_label_values(&[name]),
            capacity: self.enrichment_cache_capacity.with_label_values(&[name]),
            errors: self.enrichment_lookup_errors.with_label_values(&[name]),
            counted: EnricherStats::default(),
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        self.series.lock().unwrap_or_else(|e| e.into_inner()).send();
        let mut buf = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buf)
            .expect("text encoding never fails");
        String::from_utf8(buf).expect("exposition is UTF-8")
    }
}

/// Add to `counter` what `total` (a running count kept elsewhere) has gained since `counted`,
/// the part of it already added; a total that went down (a restarted count) adds nothing.
pub fn count_since(counter: &IntCounter, total: u64, counted: &mut u64) {
    if total > *counted {
        counter.inc_by(total - *counted);
        *counted = total;
    }
}

/// One enricher's series, and how much of its running counts they already hold: the enricher
/// counts as it works (in the core, without touching a metric), and the worker passes the
/// counts on after each batch.
pub struct EnricherSeries {
    hits: IntCounter,
    misses: IntCounter,
    entries: IntGauge,
    capacity: IntGauge,
    errors: IntCounter,
    counted: EnricherStats,
}

impl EnricherSeries {
    /// Bring the series up to `now`, the enricher's counts since it was loaded.
    pub fn update(&mut self, now: &EnricherStats) {
        count_since(&self.hits, now.hits, &mut self.counted.hits);
        count_since(&self.misses, now.misses, &mut self.counted.misses);
        count_since(
            &self.errors,
            now.lookup_errors,
            &mut self.counted.lookup_errors,
        );
        self.entries.set(now.entries as i64);
        self.capacity.set(now.capacity as i64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::{DeadLetter, Report};
    use crate::record::Origin;

    /// A bundle outcome with `report` (its text and key are not counted).
    fn bundle_of(report: Report) -> Outcome {
        Outcome::Bundle {
            json: String::new(),
            key: String::new(),
            report,
        }
    }

    /// A report of `source` and `class_uid` with no gaps, lookups, fill or findings.
    fn report(source: &str, class_uid: u32, score: u8) -> Report {
        Report {
            source: source.into(),
            class_uid,
            score,
            gaps: vec![],
            time_ms: None,
            lookups: vec![],
            fill: vec![],
            safety_findings: vec![],
        }
    }

    #[test]
    fn an_enricher_s_counts_reach_its_series_once() {
        let m = Metrics::new();
        let mut geo = m.enricher("geo");
        assert!(
            m.encode()
                .contains("alertctx_enrichment_lookup_errors_total{enricher=\"geo\"} 0"),
            "the series exist from the start"
        );
        let at = |hits, misses, entries, lookup_errors| EnricherStats {
            hits,
            misses,
            entries,
            capacity: 16,
            lookup_errors,
        };
        geo.update(&at(5, 3, 3, 0));
        geo.update(&at(5, 3, 3, 0));
        geo.update(&at(9, 20, 16, 1));
        let text = m.encode();
        for line in [
            "alertctx_enrichment_cache_lookups_total{enricher=\"geo\",result=\"hit\"} 9",
            "alertctx_enrichment_cache_lookups_total{enricher=\"geo\",result=\"miss\"} 20",
            "alertctx_enrichment_cache_entries{enricher=\"geo\"} 16",
            "alertctx_enrichment_cache_capacity{enricher=\"geo\"} 16",
            "alertctx_enrichment_lookup_errors_total{enricher=\"geo\"} 1",
        ] {
            assert!(text.contains(line), "{line} in\n{text}");
        }
    }

    #[test]
    fn count_since_adds_only_what_a_total_gained() {
        let m = Metrics::new();
        let mut counted = 0;
        for total in [3, 3, 7, 2, 8] {
            count_since(&m.exact_repeats, total, &mut counted);
        }
        assert_eq!(m.exact_repeats.get(), 8);
        assert_eq!(counted, 8);
    }

    #[test]
    fn outcomes_feed_the_counters() {
        let m = Metrics::new();
        let report = Report {
            source: "suricata".into(),
            class_uid: 2004,
            score: 85,
            gaps: vec!["fields_unmapped"],
            time_ms: Some(1),
            lookups: vec![("cmdb".into(), true), ("geo".into(), false)],
            fill: vec![FieldFill {
                attribute: "finding_info",
                requirement: "required",
                present: true,
            }],
            safety_findings: vec![
                "instruction_override",
                "ascii_smuggling",
                "instruction_override",
            ],
        };
        m.observe(&bundle_of(report), 1000);
        m.observe(
            &Outcome::Duplicate {
                source: "suricata".into(),
                class_uid: 2004,
                fingerprint: crate::dedup::hex16(&[0xf; 16]),
            },
            1000,
        );
        m.observe(
            &Outcome::DeadLetter(DeadLetter {
                reason: "invalid_json",
                message: String::new(),
                origin: Origin::Kafka {
                    topic: "t".into(),
                    partition: 0,
                    offset: 0,
                },
                index: None,
                bytes: vec![],
            }),
            1000,
        );
        let text = m.encode();
        for line in [
            "alertctx_records_total{class=\"2004\",source=\"suricata\"} 2",
            "alertctx_bundles_total{class=\"2004\",source=\"suricata\"} 1",
            "alertctx_duplicates_folded_total{class=\"2004\",source=\"suricata\"} 1",
            "alertctx_dead_letters_total{reason=\"invalid_json\",topic=\"t\"} 1",
            "alertctx_gaps_total{code=\"fields_unmapped\",source=\"suricata\"} 1",
            "alertctx_safety_findings_total{kind=\"instruction_override\",source=\"suricata\"} 2",
            "alertctx_safety_findings_total{kind=\"ascii_smuggling\",source=\"suricata\"} 1",
            "alertctx_enrichment_lookups_total{enricher=\"geo\",result=\"miss\"} 1",
            "alertctx_fields_present_total{attribute=\"finding_info\",class=\"2004\",requirement=\"required\",source=\"suricata\"} 1",
            "alertctx_quality_score_bucket{source=\"suricata\",le=\"90\"} 1",
            "alertctx_source_last_seen_timestamp_seconds{source=\"suricata\"} 1000",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
    }

    #[test]
    fn cached_series_keep_counting_and_absent_attributes_get_no_present_series() {
        let m = Metrics::new();
        let bundle = |source: &str, class_uid, present| {
            bundle_of(Report {
                gaps: vec!["required_missing", "required_missing"],
                fill: vec![FieldFill {
                    attribute: "src_endpoint",
                    requirement: "recommended",
                    present,
                }],
                ..report(source, class_uid, 40)
            })
        };
        for _ in 0..3 {
            m.observe(&bundle("zeek", 4001, false), 5);
            m.observe(&bundle("zeek", 4003, true), 6);
            m.observe(&bundle("okta", 4001, false), 7);
        }
        let text = m.encode();
        for line in [
            "alertctx_records_total{class=\"4001\",source=\"zeek\"} 3",
            "alertctx_records_total{class=\"4003\",source=\"zeek\"} 3",
            "alertctx_records_total{class=\"4001\",source=\"okta\"} 3",
            "alertctx_gaps_total{code=\"required_missing\",source=\"zeek\"} 12",
            "alertctx_gaps_total{code=\"required_missing\",source=\"okta\"} 6",
            "alertctx_fields_checked_total{attribute=\"src_endpoint\",class=\"4001\",requirement=\"recommended\",source=\"zeek\"} 3",
            "alertctx_fields_present_total{attribute=\"src_endpoint\",class=\"4003\",requirement=\"recommended\",source=\"zeek\"} 3",
            "alertctx_quality_score_count{source=\"zeek\"} 6",
            "alertctx_source_last_seen_timestamp_seconds{source=\"zeek\"} 6",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        // Never present: no fields_present series at all (as with_label_values would leave it).
        assert!(!text
            .contains("alertctx_fields_present_total{attribute=\"src_endpoint\",class=\"4001\""));
        assert!(!text.contains("alertctx_duplicates_folded_total"));
    }

    /// Fill counted by position stays right when a bundle reports a class's attributes in
    /// another order, or more or fewer of them, than the bundles before it.
    #[test]
    fn fill_is_counted_by_attribute_whatever_the_order() {
        let m = Metrics::new();
        let fill = |names: &[(&'static str, bool)]| {
            names
                .iter()
                .map(|&(attribute, present)| FieldFill {
                    attribute,
                    requirement: "required",
                    present,
                })
                .collect::<Vec<_>>()
        };
        let bundle = |fill, lookups| {
            bundle_of(Report {
                lookups,
                fill,
                ..report("okta", 3002, 90)
            })
        };
        // A name spelled at run time, not the `&'static str` of the checks: equal text counts.
        let user: &'static str = String::from("user").leak();
        let seen = [
            fill(&[("time", true), ("user", true), ("status", false)]),
            fill(&[("time", true), (user, false), ("status", true)]),
            fill(&[("status", true), ("time", false)]),
            fill(&[
                ("user", true),
                ("time", true),
                ("status", true),
                ("actor", true),
            ]),
        ];
        let lookups = |hit| vec![("geo".into(), hit), ("cmdb".into(), true)];
        for (i, f) in seen.into_iter().enumerate() {
            m.observe(&bundle(f, lookups(i % 2 == 0)), 1);
        }
        let text = m.encode();
        let get = |family: &str, attribute: &str| {
            let key = format!(
                "{family}{{attribute=\"{attribute}\",class=\"3002\",requirement=\"required\",source=\"okta\"}} "
            );
            text.lines()
                .find_map(|l| l.strip_prefix(&key))
                .map(|v| v.parse::<u64>().unwrap())
        };
        let checked = |a| get("alertctx_fields_checked_total", a);
        let present = |a| get("alertctx_fields_present_total", a);
        assert_eq!((checked("time"), present("time")), (Some(4), Some(3)));
        assert_eq!((checked("user"), present("user")), (Some(3), Some(2)));
        assert_eq!((checked("status"), present("status")), (Some(4), Some(3)));
        assert_eq!((checked("actor"), present("actor")), (Some(1), Some(1)));
        for line in [
            "alertctx_enrichment_lookups_total{enricher=\"geo\",result=\"hit\"} 2",
            "alertctx_enrichment_lookups_total{enricher=\"geo\",result=\"miss\"} 2",
            "alertctx_enrichment_lookups_total{enricher=\"cmdb\",result=\"hit\"} 4",
        ] {
            assert!(text.contains(line), "missing {line} in\n{text}");
        }
        assert!(
            !text.contains("enricher=\"cmdb\",result=\"miss\""),
            "a series is made when first needed"
        );
    }
}
