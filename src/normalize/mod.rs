//! Normalize: decoded vendor records → OCSF 1.8 events.
//!
//! [`Normalizer`] holds every compiled mapping (`schemas/mappings/*.toml`, see [`spec`] for
//! the file format). For each record it picks the source — by configured route (input name
//! or topic), else by each mapping's `detect` shape test in priority order — runs that
//! mapping ([`engine`]), and fills the attributes OCSF derives from the class
//! (`category_uid`, `type_uid`, the `*_name` captions, `metadata.version`). A record no
//! mapping recognises is still an event: Base Event (class 0), whole record under `unmapped`,
//! gap `source_unmapped`.

pub mod cut;
pub mod engine;
pub mod spare;
pub mod spec;
pub mod value;

use crate::decode::Value;
use crate::ocsf;
use crate::score::Gap;
use anyhow::Context;
use engine::{Mapped, Mapping};
use serde_json::{Map, Value as Json};
use std::path::Path;
use std::sync::Arc;

/// Mapping files compiled into the binary, so `alertctx` works with no files around it.
pub const EMBEDDED_MAPPINGS: &[(&str, &str)] = &include!(concat!(env!("OUT_DIR"), "/mappings.rs"));

/// A configured route: inputs whose name matches `input` (a glob with `*`) are `source`.
#[derive(Debug, Clone, serde::Deserialize, serde::Serialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// Glob over the input name: a file path, its file name, or a Kafka topic.
    pub input: String,
    /// Mapping id to use.
    pub source: String,
}

/// The result of normalizing one record.
#[derive(Debug)]
pub struct Normalized {
    /// The mapping used; `None` when no source was recognised.
    pub mapping: Option<Arc<Mapping>>,
    pub mapped: Mapped,
}

impl Normalized {
    pub fn source_id(&self) -> &str {
        self.mapping.as_ref().map_or("unknown", |m| m.id.as_str())
    }
}

pub struct Normalizer {
    mappings: Vec<Arc<Mapping>>,
    routes: Vec<Route>,
}

impl Normalizer {
    /// Compile the given mapping files (name, TOML text).
    pub fn from_sources<'a>(
        files: impl IntoIterator<Item = (&'a str, &'a str)>,
        routes: Vec<Route>,
    ) -> anyhow::Result<Normalizer> {
        let mut mappings = Vec::new();
        for (name, text) in files {
            let def: spec::MappingDef =
                toml::from_str(text).with_context(|| format!("mapping file {name}"))?;
            mappings.push(Arc::new(
                Mapping::compile(&def).with_context(|| format!("mapping file {name}"))?,
            ));
        }
        mappings.sort_by(|a, b| (a.priority, &a.id).cmp(&(b.priority, &b.id)));
        for w in mappings.windows(2) {
            if w[0].id == w[1].id {
                anyhow::bail!("two mappings share the id `{}`", w[0].id);
            }
        }
        for r in &routes {
            if !mappings.iter().any(|m| m.id == r.source) {
                anyhow::bail!(
                    "route `{}` names source `{}`, which no mapping defines",
                    r.input,
                    r.source
                );
            }
        }
        Ok(Normalizer { mappings, routes })
    }

    /// The mappings compiled into the binary.
    pub fn embedded(routes: Vec<Route>) -> anyhow::Result<Normalizer> {
        Self::from_sources(EMBEDDED_MAPPINGS.iter().copied(), routes)
    }

    /// Every `*.toml` in a directory.
    pub fn from_dir(dir: &Path, routes: Vec<Route>) -> anyhow::Result<Normalizer> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "toml") {
                let text = std::fs::read_to_string(&path)?;
                files.push((path.display().to_string(), text));
            }
        }
        files.sort();
        Self::from_sources(files.iter().map(|(n, t)| (n.as_str(), t.as_str())), routes)
    }

    pub fn mappings(&self) -> &[Arc<Mapping>] {
        &self.mappings
    }

    pub fn mapping(&self, id: &str) -> Option<&Arc<Mapping>> {
        self.mappings.iter().find(|m| m.id == id)
    }

    /// Pick the mapping for a record: configured route first, then shape detection.
    pub fn detect(&self, record: &Value<'_>, format: &str, input: &str) -> Option<&Arc<Mapping>> {
        self.detect_indexed(&value::Record::new(record), format, input)
    }

    fn detect_indexed(
        &self,
        record: &value::Record<'_, '_>,
        format: &str,
        input: &str,
    ) -> Option<&Arc<Mapping>> {
        if let Some(source) = routed_source(&self.routes, input) {
            return self.mapping(source);
        }
        self.mappings.iter().find(|m| {
            m.formats.iter().any(|f| f == format)
                && m.detect.as_ref().is_some_and(|d| d.eval(record))
        })
    }

    /// Normalize one decoded record: [`map_record`](Normalizer::map_record), then
    /// [`derive`](fn@derive).
    pub fn normalize(&self, record: &Value<'_>, format: &str, input: &str) -> Normalized {
        let mut n = self.map_record(record, format, input);
        derive(&mut n.mapped.alert, n.mapped.class_uid);
        n
    }

    /// Pick the mapping and run it, without the attributes [`derive`](fn@derive) adds. The pipeline
    /// derives them after sanitising: they are captions from the OCSF tables, not text from
    /// the record, so the sanitiser has nothing to look for in them. The alert is built into
    /// the thread's spare map for its class rule ([`spare`]), and so may hold their keys
    /// already, as null.
    pub fn map_record(&self, record: &Value<'_>, format: &str, input: &str) -> Normalized {
        let indexed = value::Record::new(record);
        let mapping = self.detect_indexed(&indexed, format, input).cloned();
        let mapped = match &mapping {
            Some(m) => m.apply_indexed(&indexed, true),
            None => {
                let mut alert = Map::new();
                alert.insert("class_uid".into(), Json::from(0));
                alert.insert("activity_id".into(), Json::from(0));
                alert.insert("severity_id".into(), Json::from(0));
                alert.insert("unmapped".into(), value::to_json(record));
                Mapped {
                    alert,
                    shape: 0,
                    class_uid: 0,
                    rule: None,
                    unmapped_leaves: 0,
                    gaps: vec![Gap::new(
                        "source_unmapped",
                        None,
                        Some(format!("no mapping recognised this {format} record")),
                    )],
                }
            }
        };
        Normalized { mapping, mapped }
    }
}

/// Attributes OCSF derives from `class_uid`, `activity_id` and `severity_id` (and the schema
/// version), which [`derive`](fn@derive) writes. Mappings cannot set them. An alert built into
/// a kept map ([`spare`]) holds them from the last alert, as null, until `derive` writes them.
/// The top-level captions come first, in the order `derive` makes them; `metadata.version`
/// last.
pub const DERIVED: &[&str] = &[
    "category_uid",
    "category_name",
    "class_name",
    "activity_name",
    "type_uid",
    "type_name",
    "severity",
    "metadata.version",
];

/// How many of [`DERIVED`] are top-level captions: all but the last, `metadata.version`.
const CAPTIONS: usize = DERIVED.len() - 1;

/// Fill what OCSF derives from class, activity and severity ([`DERIVED`]).
///
/// One walk over the alert's top level finds the two ids it reads and the places it writes
/// (a kept map holds them all: [`spare`]), rather than a search of the map for each: ten
/// searches of a B-tree of about twenty keys were 4.1k instructions an alert. A place not
/// there (a map built anew) is inserted after the walk.
pub fn derive(a: &mut Map<String, Json>, class_uid: u32) {
    let (mut activity_id, mut severity_id, mut metadata) = (None, None, None);
    // The captions' places, in `DERIVED`'s order.
    let mut places: [Option<&mut Json>; CAPTIONS] = Default::default();
    for (k, v) in a.iter_mut() {
        match k.as_str() {
            "activity_id" => activity_id = Some(&*v),
            "severity_id" => severity_id = Some(&*v),
            "metadata" => metadata = Some(v),
            k => {
                if let Some(at) = DERIVED[..CAPTIONS].iter().position(|d| *d == k) {
                    places[at] = Some(v);
                }
            }
        }
    }
    let activity_id = activity_id.and_then(Json::as_i64).unwrap_or(0);
    let severity_id = severity_id.and_then(Json::as_i64).unwrap_or(0);
    let category_uid = if class_uid == 0 { 0 } else { class_uid / 1000 };
    let class_name = ocsf::class_name(class_uid);
    let activity_name = ocsf::activity_name(class_uid, activity_id);
    // Joined by hand: `format!` costs several hundred instructions a record here, and
    // `[..].concat()` about 120 more than this (callgrind, nineteenth round's review).
    let mut type_name = String::with_capacity(class_name.len() + 2 + activity_name.len());
    type_name.push_str(class_name);
    type_name.push_str(": ");
    type_name.push_str(activity_name);
    // In `DERIVED`'s order.
    let captions: [Json; CAPTIONS] = [
        Json::from(category_uid),
        Json::from(ocsf::category_name(category_uid)),
        Json::from(class_name),
        Json::from(activity_name),
        Json::from(class_uid as i64 * 100 + activity_id),
        Json::from(type_name),
        Json::from(ocsf::severity_name(severity_id)),
    ];
    // `path::set(a, "metadata.version", ..)` without parsing the path for every record
    // (an array there gets the version appended, a scalar is replaced, as `set` does).
    let version = Json::from(ocsf::VERSION);
    let mut missing = Vec::new();
    for ((place, caption), &key) in places.into_iter().zip(captions).zip(DERIVED) {
        match place {
            Some(old) => *old = caption,
            None => missing.push((key, caption)),
        }
    }
    // An object holding only the version, where `metadata` is absent or neither an object
    // nor an array.
    let only_version = |v| Json::Object(Map::from_iter([("version".into(), v)]));
    match metadata {
        Some(Json::Object(m)) => put(m, "version", version),
        Some(Json::Array(items)) => items.push(version),
        Some(other) => *other = only_version(version),
        None => missing.push(("metadata", only_version(version))),
    }
    for (key, v) in missing {
        a.insert(key.to_string(), v);
    }
}

/// `map[key] = v`, the key allocated only when it is not there yet (a map built into a spare
/// one already holds it: [`spare`]).
fn put(map: &mut Map<String, Json>, key: &str, v: Json) {
    match map.get_mut(key) {
        Some(old) => *old = v,
        None => {
            map.insert(key.to_string(), v);
        }
    }
}

/// The source the first matching `[[routes]]` entry pins `input` to, if any.
pub fn routed_source<'r>(routes: &'r [Route], input: &str) -> Option<&'r str> {
    routes
        .iter()
        .find(|r| route_matches(&r.input, input))
        .map(|r| r.source.as_str())
}

/// Glob match with `*` over the whole input name or its last path component.
pub fn route_matches(glob: &str, input: &str) -> bool {
    let file_name = input.rsplit(['/', '\\']).next().unwrap_or(input);
    glob_match(glob.as_bytes(), input.as_bytes())
        || glob_match(glob.as_bytes(), file_name.as_bytes())
}

fn glob_match(pat: &[u8], s: &[u8]) -> bool {
    match pat.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob_match(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob_match(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(route_matches("raw.suricata*", "raw.suricata.eve"));
        assert!(route_matches("*.cef", "/var/log/fw.cef"));
        assert!(route_matches("fw.cef", "/var/log/fw.cef"));
        assert!(!route_matches("*.cef", "/var/log/fw.leef"));
        assert!(route_matches("*", "anything"));
    }

    #[test]
    fn embedded_mappings_compile() {
        let n = Normalizer::embedded(vec![]).unwrap();
        assert!(!n.mappings().is_empty());
    }

    #[test]
    fn derive_writes_the_version_as_path_set_would() {
        use serde_json::json;
        for metadata in [
            None,
            Some(json!({"uid": "x"})),
            Some(json!([1])),
            Some(json!("s")),
        ] {
            let mut a = Map::new();
            a.insert("activity_id".into(), json!(1));
            if let Some(m) = &metadata {
                a.insert("metadata".into(), m.clone());
            }
            let mut expect = a.clone();
            crate::path::set(&mut expect, "metadata.version", json!(ocsf::VERSION));
            derive(&mut a, 4001);
            assert_eq!(a["metadata"], expect["metadata"], "{metadata:?}");
            assert_eq!(a["type_name"], "Network Activity: Open");
            assert_eq!(a["type_uid"], 400101);
        }
    }

    /// The one walk of `derive` writes what writing each caption at its path writes, whether
    /// the alert holds the captions' places already (as null: a map built into a spare one;
    /// or as another alert's captions) or not, and whatever else sits between them.
    #[test]
    fn derive_writes_each_caption_as_path_set_would() {
        use serde_json::json;
        let cases = [
            (4001, 1, 1),
            (3002, 2, 4),
            (2004, 99, 6),
            (0, 0, 0),
            (6003, 7, 99),
        ];
        for (class_uid, activity_id, severity_id) in cases {
            for places in ["absent", "null", "stale"] {
                let mut a = Map::new();
                for k in [
                    "time",
                    "actor",
                    "src_endpoint",
                    "zzz",
                    "aaa",
                    "severity_idx",
                ] {
                    a.insert(k.into(), json!(k));
                }
                a.insert("activity_id".into(), json!(activity_id));
                a.insert("severity_id".into(), json!(severity_id));
                a.insert("metadata".into(), json!({"product": {"name": "P"}}));
                for d in DERIVED.iter().filter(|d| !d.contains('.')) {
                    match places {
                        "null" => crate::path::set(&mut a, d, Json::Null),
                        "stale" => crate::path::set(&mut a, d, json!("from another alert")),
                        _ => {}
                    }
                }
                let mut expect = a.clone();
                let category_uid = class_uid / 1000;
                let class_name = ocsf::class_name(class_uid);
                let activity_name = ocsf::activity_name(class_uid, activity_id);
                let captions = [
                    ("category_uid", json!(category_uid)),
                    ("category_name", json!(ocsf::category_name(category_uid))),
                    ("class_name", json!(class_name)),
                    ("activity_name", json!(activity_name)),
                    ("type_uid", json!(i64::from(class_uid) * 100 + activity_id)),
                    ("type_name", json!(format!("{class_name}: {activity_name}"))),
                    ("severity", json!(ocsf::severity_name(severity_id))),
                    ("metadata.version", json!(ocsf::VERSION)),
                ];
                assert_eq!(captions.len(), DERIVED.len());
                assert!(
                    DERIVED[..CAPTIONS].iter().all(|d| !d.contains('.')),
                    "`derive` takes all of DERIVED but the last for top-level captions"
                );
                for (path, v) in captions {
                    assert!(DERIVED.contains(&path), "{path}");
                    crate::path::set(&mut expect, path, v);
                }
                derive(&mut a, class_uid);
                assert_eq!(a, expect, "class {class_uid}, places {places}");
            }
        }
    }

    #[test]
    fn unknown_shapes_become_base_events() {
        let n = Normalizer::embedded(vec![]).unwrap();
        let mut buf = br#"{"completely":"unknown","shape":[1,2]}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut buf).unwrap();
        let out = n.normalize(&v, "json", "x.json");
        assert!(out.mapping.is_none());
        assert_eq!(out.mapped.class_uid, 0);
        assert_eq!(out.mapped.gaps[0].code, "source_unmapped");
        assert_eq!(out.mapped.alert["type_uid"], 0);
        assert_eq!(out.mapped.alert["unmapped"]["completely"], "unknown");
    }
}
