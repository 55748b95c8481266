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
    pub bundle_id: String,
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

impl PipelineInfo {
    pub fn new(config_hash: String) -> PipelineInfo {
        PipelineInfo {
            version: env!("CARGO_PKG_VERSION"),
            build_commit: env!("ALERTCTX_BUILD_COMMIT"),
            config_hash,
        }
    }
}

/// The Kafka key for a bundle: the entity the alert is about, so one host's or user's alerts
/// stay in order on one partition: the device, else the source endpoint, else the user.
pub fn routing_key(alert: &Json) -> String {
    const KEYS: [&str; 7] = [
        "device.hostname",
        "device.ip",
        "src_endpoint.hostname",
        "src_endpoint.ip",
        "user.name",
        "actor.user.name",
        "dst_endpoint.ip",
    ];
    for k in KEYS {
        if let Some(v) = crate::path::get_str(alert, k) {
            return v.to_lowercase();
        }
    }
    String::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

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
        assert_eq!(routing_key(&json!({})), "");
    }
}
