//! The context bundle: one per alert, in layers an agent reads in order of trust, and its
//! serialisation. The published JSON Schema is `schemas/bundle.schema.json`.
//!
//! Field order is fixed by the struct; objects inside `alert` are sorted by key. With the
//! same input, reference data and configuration the bytes are the same.

use crate::dedup::DedupInfo;
use crate::enrich::{Enrichment, Entity};
use crate::record::Origin;
use crate::sanitize::Safety;
use crate::score::Gap;
use serde::Serialize;
use serde_json::Value as Json;

/// Identifies the bundle format; bumped when a consumer would need to change.
pub const SCHEMA_ID: &str = "alertctx.bundle/v1";

#[derive(Debug, Serialize)]
pub struct Bundle<'a> {
    pub schema: &'static str,
    /// Stable id: a hash of the input coordinates and the fingerprint.
    pub bundle_id: crate::dedup::HexId,
    /// Layer 1: the normalized OCSF event.
    pub alert: &'a Json,
    /// Layer 2: assets and users the alert involves, with inventory/directory context.
    pub entities: &'a [Entity],
    /// Layer 3: lookups (geo/ASN, ...), each naming the attribute it enriched.
    pub enrichment: &'a [Enrichment],
    /// Layer 4: what tag rules concluded.
    pub tags: Vec<&'a str>,
    /// Layer 5: fingerprint and repeat counts.
    pub dedup: &'a DedupInfo,
    /// Layer 6: score and every data gap.
    pub quality: Quality<'a>,
    /// Layer 7: which fields are untrusted free text, what was removed or cut from them, and
    /// instruction-like or hidden content found in them.
    pub safety: &'a Safety,
    /// Layer 8: where it came from and what made it.
    pub provenance: Provenance<'a>,
}

#[derive(Debug, Serialize)]
pub struct Quality<'a> {
    pub score: u8,
    pub gaps: &'a [Gap],
}

#[derive(Debug, Serialize)]
pub struct Provenance<'a> {
    pub input: &'a Origin,
    /// Position inside an envelope (`{"Records": [...]}`, arrays); absent for single records.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    pub source: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mapping_version: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class_rule: Option<&'a str>,
    /// The time (ms since the epoch) age and clock-skew checks were measured against: the
    /// broker timestamp in the worker, the clock or a fixed time in `process`; absent when
    /// `quality.reference_time = "none"`. A replay needs it to reproduce the quality layer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_time: Option<i64>,
    pub pipeline: &'a PipelineInfo,
    pub reference_data: &'a [RefData],
    /// `pipeline` and `reference_data` as [`build_members`] writes them, when the caller has
    /// them written already: they are the same in every bundle of a pipeline, about 450 bytes
    /// of hashes and names that the writer would otherwise scan for escapes every time.
    #[serde(skip)]
    pub build_json: Option<&'a str>,
}

/// What built the bundle.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct PipelineInfo {
    pub version: &'static str,
    pub build_commit: &'static str,
    /// sha256 of the effective configuration and the mapping and rule files.
    pub config_hash: String,
}

/// One reference data set and its version.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RefData {
    pub name: String,
    pub kind: String,
    pub version: String,
}

impl Bundle<'_> {
    /// The bundle as one line of compact JSON: the bytes `serde_json::to_string` gives for
    /// this struct (a test holds them equal), written with [`crate::jsonout`] instead of
    /// serde's serialiser, which spent most of its time escaping short strings byte by byte.
    /// Safety removals, truncations and findings, rare and small, still go through serde.
    pub fn to_json(&self) -> String {
        use crate::jsonout::{write_array, write_str, ObjectWriter};
        let mut out = Vec::with_capacity(4096);
        let mut o = ObjectWriter::new(&mut out);
        o.str("schema", self.schema)
            .str("bundle_id", &self.bundle_id)
            .value("alert", self.alert)
            .with("entities", |out| {
                write_array(out, self.entities, |out, e| {
                    let mut o = ObjectWriter::new(out);
                    o.str("kind", e.kind)
                        .str("attribute", &e.attribute)
                        .str("value", &e.value)
                        .str("matched_by", e.matched_by)
                        .str("enricher", &e.enricher)
                        .raw("context", e.context.text());
                    o.end();
                })
            })
            .with("enrichment", |out| {
                write_array(out, self.enrichment, |out, e| {
                    let mut o = ObjectWriter::new(out);
                    o.str("attribute", &e.attribute)
                        .str("value", &e.value)
                        .str("enricher", &e.enricher)
                        .str("source", &e.source)
                        .raw("data", e.data.text());
                    o.end();
                })
            })
            .with("tags", |out| {
                write_array(out, &self.tags, |out, t| write_str(out, t))
            })
            .with("dedup", |out| {
                let d = self.dedup;
                let mut o = ObjectWriter::new(out);
                o.str("fingerprint", &d.fingerprint)
                    .int("count", d.count)
                    .int("folded_since_previous", d.folded_since_previous)
                    .int("first_seen", d.first_seen)
                    .int("last_seen", d.last_seen)
                    .int("window_ms", d.window_ms);
                o.end();
            })
            .with("quality", |out| {
                let mut o = ObjectWriter::new(out);
                o.int("score", self.quality.score).with("gaps", |out| {
                    write_array(out, self.quality.gaps, |out, g| {
                        let mut o = ObjectWriter::new(out);
                        o.str("code", g.code);
                        if let Some(f) = &g.field {
                            o.str("field", f);
                        }
                        if let Some(d) = &g.detail {
                            o.str("detail", d);
                        }
                        o.end();
                    })
                });
                o.end();
            })
            .with("safety", |out| {
                let s = self.safety;
                let mut o = ObjectWriter::new(out);
                o.with("untrusted", |out| {
                    write_array(out, &s.untrusted, |out, u| write_str(out, u))
                })
                .serde("removals", &s.removals)
                .serde("truncations", &s.truncations)
                .serde("findings", &s.findings);
                o.end();
            })
            .with("provenance", |out| {
                let p = &self.provenance;
                let mut o = ObjectWriter::new(out);
                o.with("input", |out| write_origin(out, p.input));
                if let Some(i) = p.index {
                    o.int("index", i);
                }
                o.str("source", p.source);
                if let Some(v) = p.mapping_version {
                    o.str("mapping_version", v);
                }
                if let Some(r) = p.class_rule {
                    o.str("class_rule", r);
                }
                if let Some(t) = p.reference_time {
                    o.int("reference_time", t);
                }
                match p.build_json {
                    Some(written) => {
                        o.members(written);
                    }
                    None => write_build(&mut o, p.pipeline, p.reference_data),
                }
                o.end();
            });
        o.end();
        debug_assert!(std::str::from_utf8(&out).is_ok(), "the writer wrote UTF-8");
        // SAFETY: every byte above is ASCII (punctuation, digits, escapes) or was copied from
        // a `&str`: whole (`write_str`, `raw`, `members`), written by serde_json (UTF-8), or
        // split by `write_escaped` only at the ASCII bytes it escapes, never inside a
        // multi-byte character. Validating the ~3.7 KB again took about 1.4k instructions a
        // bundle (benches/OPTIMISATIONS.md); the unit tests compare these bytes with
        // serde_json's own string for text of every kind.
        unsafe { String::from_utf8_unchecked(out) }
    }
}

/// The members `pipeline` and `reference_data` of a bundle's provenance, as JSON text
/// (`"pipeline":{..},"reference_data":[..]`) for [`Provenance::build_json`].
pub fn build_members(pipeline: &PipelineInfo, reference_data: &[RefData]) -> String {
    let mut out = Vec::new();
    let mut o = crate::jsonout::ObjectWriter::new(&mut out);
    write_build(&mut o, pipeline, reference_data);
    o.end();
    // Without the braces `ObjectWriter` put around them.
    String::from_utf8(out[1..out.len() - 1].to_vec()).expect("JSON written from strings is UTF-8")
}

fn write_build(
    o: &mut crate::jsonout::ObjectWriter<'_>,
    pipeline: &PipelineInfo,
    reference_data: &[RefData],
) {
    use crate::jsonout::{write_array, ObjectWriter};
    o.with("pipeline", |out| {
        let mut o = ObjectWriter::new(out);
        o.str("version", pipeline.version)
            .str("build_commit", pipeline.build_commit)
            .str("config_hash", &pipeline.config_hash);
        o.end();
    })
    .with("reference_data", |out| {
        write_array(out, reference_data, |out, r| {
            let mut o = ObjectWriter::new(out);
            o.str("name", &r.name)
                .str("kind", &r.kind)
                .str("version", &r.version);
            o.end();
        })
    });
}

impl PipelineInfo {
    pub fn new(config_hash: String) -> PipelineInfo {
        PipelineInfo {
            version: env!("CARGO_PKG_VERSION"),
            build_commit: env!("ALERTCTX_BUILD_COMMIT"),
            config_hash,
        }
    }
}

/// An origin as JSON, the bytes `serde_json::to_vec` gives for it (the bundle's
/// `provenance.input`, and what its id hashes).
pub fn write_origin(out: &mut Vec<u8>, origin: &Origin) {
    let mut o = crate::jsonout::ObjectWriter::new(out);
    match origin {
        Origin::File { input, line } => {
            o.str("input", input).int("line", *line);
        }
        Origin::Kafka {
            topic,
            partition,
            offset,
        } => {
            o.str("topic", topic)
                .int("partition", *partition)
                .int("offset", *offset);
        }
    }
    o.end();
}

/// The Kafka key for a bundle: the entity the alert is about, so one host's or user's alerts
/// stay in order on one partition: the device, else the source endpoint, else the user.
pub fn routing_key(alert: &Json) -> String {
    static KEYS: std::sync::LazyLock<[crate::path::JPath; 7]> = std::sync::LazyLock::new(|| {
        [
            "device.hostname",
            "device.ip",
            "src_endpoint.hostname",
            "src_endpoint.ip",
            "user.name",
            "actor.user.name",
            "dst_endpoint.ip",
        ]
        .map(crate::path::JPath::new)
    });
    let view = crate::path::AlertView::new(alert);
    KEYS.iter()
        .find_map(|k| k.text_in(&view))
        .map_or_else(String::new, |v| v.to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn an_origin_is_written_as_serde_json_writes_it() {
        use crate::record::Origin;
        for origin in [
            Origin::File {
                input: "logs/a \"b\"\t\u{e9}.json".into(),
                line: u64::MAX,
            },
            Origin::File {
                input: "-".into(),
                line: 1,
            },
            Origin::Kafka {
                topic: "raw.edr".into(),
                partition: -1,
                offset: i64::MIN,
            },
        ] {
            let mut out = Vec::new();
            write_origin(&mut out, &origin);
            assert_eq!(out, serde_json::to_vec(&origin).unwrap());
        }
    }

    #[test]
    fn the_fast_writer_gives_serde_json_bytes() {
        use crate::enrich::{Enrichment, Entity};
        use crate::record::Origin;
        let alert = json!({"class_uid": 2004, "message": "tab\there \"quoted\" \u{7}", "time": -5,
                           "finding_info": {"title": "ET \u{e9}t\u{e9}", "score": 0.25}});
        let entities = vec![Entity {
            kind: "asset",
            attribute: "src_endpoint.ip".into(),
            value: "10.0.0.1".into(),
            matched_by: "cidr",
            enricher: "cmdb".into(),
            context: crate::enrich::Context::new(json!({"owner": "ann", "tags": ["a", "b"]})),
        }];
        let enrichment = vec![Enrichment {
            attribute: "dst_endpoint.ip".into(),
            value: "8.8.8.8".into(),
            enricher: "geo".into(),
            source: "City@1".into(),
            data: crate::enrich::Context::new(json!({"location": {"lat": 1.5, "long": -0.1}})),
        }];
        let dedup = DedupInfo {
            fingerprint: crate::dedup::hex16(&[0xab; 16]),
            count: 2,
            folded_since_previous: 1,
            first_seen: 1,
            last_seen: 2,
            window_ms: 600_000,
        };
        let gaps = vec![
            Gap::new("time_missing", Some("time".into()), None),
            Gap::new("fields_unmapped", None, Some("3".into())),
        ];
        let safety = Safety {
            untrusted: vec!["message".into(), "unmapped.*".into()],
            removals: vec![crate::sanitize::Removal {
                field: "message".into(),
                kind: crate::sanitize::RemovalKind::ALL[0],
                count: 2,
            }],
            truncations: vec![crate::sanitize::Truncation {
                field: "message".into(),
                original_length: 9000,
                kept_length: 4096,
            }],
            findings: vec![crate::sanitize::Finding {
                field: "message".into(),
                kind: crate::sanitize::FindingKind::ALL[0],
                pattern: Some("p"),
                excerpt: Some("ex".into()),
                hidden: None,
                in_hidden: true,
            }],
        };
        let origin = Origin::Kafka {
            topic: "raw.suricata".into(),
            partition: 3,
            offset: -1,
        };
        let info = PipelineInfo::new("sha256:00".into());
        let refs = [RefData {
            name: "cmdb".into(),
            kind: "asset".into(),
            version: "sha256:11".into(),
        }];
        let b = Bundle {
            schema: SCHEMA_ID,
            bundle_id: crate::dedup::hex16(&[0x1d; 16]),
            alert: &alert,
            entities: &entities,
            enrichment: &enrichment,
            tags: vec!["attack:T1071", "x\"y"],
            dedup: &dedup,
            quality: Quality {
                score: 90,
                gaps: &gaps,
            },
            safety: &safety,
            provenance: Provenance {
                input: &origin,
                index: Some(1),
                source: "suricata",
                mapping_version: Some("2"),
                class_rule: None,
                reference_time: Some(7),
                pipeline: &info,
                reference_data: &refs,
                build_json: None,
            },
        };
        assert_eq!(b.to_json(), serde_json::to_string(&b).unwrap());
        // With the build members written beforehand, the same bytes.
        let expected = serde_json::to_string(&b).unwrap();
        let written = build_members(&info, &refs);
        let b = Bundle {
            provenance: Provenance {
                build_json: Some(&written),
                ..b.provenance
            },
            ..b
        };
        assert_eq!(b.to_json(), expected);
        // The other shapes of the optional parts.
        let origin = Origin::File {
            input: "x.json".into(),
            line: 3,
        };
        let b = Bundle {
            entities: &[],
            enrichment: &[],
            tags: vec![],
            safety: &Safety::default(),
            provenance: Provenance {
                input: &origin,
                index: None,
                mapping_version: None,
                class_rule: Some("r"),
                reference_time: None,
                ..b.provenance
            },
            ..b
        };
        assert_eq!(b.to_json(), serde_json::to_string(&b).unwrap());
    }

    #[test]
    fn routing_key_prefers_the_device() {
        assert_eq!(
            routing_key(
                &json!({"device": {"hostname": "WS-01"}, "src_endpoint": {"ip": "10.0.0.1"}})
            ),
            "ws-01"
        );
        assert_eq!(
            routing_key(&json!({"src_endpoint": {"ip": "10.0.0.1"}})),
            "10.0.0.1"
        );
        assert_eq!(
            routing_key(&json!({"device": {"hostname": ""}, "user": {"name": "Ann"}})),
            "ann",
            "an empty value is no key"
        );
        assert_eq!(routing_key(&json!({"device": {"ip": 7}})), "7");
        assert_eq!(routing_key(&json!({})), "");
    }
}
