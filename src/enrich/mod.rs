//! Enrich: what the organisation knows about the things an alert names. Asset inventory
//! (CMDB) and identity directory records become [`Entity`]s, geo/ASN lookups become
//! [`Enrichment`]s, and every attribute an enricher had no answer for becomes a [`Miss`]
//! that scoring turns into a data gap.
//!
//! An enricher is one [`Enricher`] implementation plus a TOML definition file naming its
//! `kind`, its reference data and the alert attributes it reads (see [`definition`] and
//! `enrichers/README.md`). [`load_dir`] loads every definition in a directory.
//!
//! Output is deterministic: outputs follow the definition's attribute order, an attribute is
//! read only when present, and a value seen under several attributes of one event is looked
//! up once (the first attribute carrying it owns the result).

pub mod asset;
pub mod definition;
pub mod geo;
pub mod ipclass;
pub mod keyindex;
pub mod table;
#[cfg(test)]
mod testutil;
pub mod user;

use anyhow::{bail, Context as _};
use serde::Serialize;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::path::{AlertView, JPath};

pub use definition::Definition;

/// What enrichers contribute for one event; the pipeline turns it into bundle layers.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct EnrichOutput {
    pub entities: Vec<Entity>,
    pub enrichment: Vec<Enrichment>,
    pub misses: Vec<Miss>,
}

/// An asset or user the alert involves, with its inventory/directory record.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entity {
    /// `asset` or `user`.
    pub kind: &'static str,
    /// The alert attribute that matched, e.g. `src_endpoint.ip`. Shared with the enricher's
    /// compiled path (as `enricher` is with the enricher): a clone is a count, not a copy.
    pub attribute: Arc<str>,
    /// The value seen there, as written in the log.
    pub value: String,
    /// How it matched: `ip`, `cidr`, `fqdn`, `hostname`, `short_name` (assets); `sid`, `upn`,
    /// `email`, `sam`, `domain_sam`, `uid` (users).
    pub matched_by: &'static str,
    /// Enricher name from its definition.
    pub enricher: Arc<str>,
    /// The record, keys sorted. Asset: `id, owner, business_unit, criticality, environment,
    /// os, tags`; user: `id, display_name, department, title, manager, privileged, status,
    /// groups`. Empty cells are left out.
    pub context: Context,
}

/// A lookup result attached to one attribute (geo/ASN and future lookups).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Enrichment {
    pub attribute: Arc<str>,
    pub value: String,
    pub enricher: Arc<str>,
    /// Where the answer came from, e.g. `GeoLite2-City@1700000000`.
    pub source: String,
    pub data: Context,
}

/// An attribute an enricher was asked about and had no answer for. `code` is a gap code.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Miss {
    pub attribute: Arc<str>,
    pub value: String,
    pub enricher: Arc<str>,
    /// `asset_unknown`, `user_unknown` or `geo_unknown`.
    pub code: &'static str,
}

/// An inventory or directory record's context, kept as compact JSON text. As a
/// `serde_json::Value` each row costs a dozen small allocations (about 2 KB); as text about
/// 200 bytes, which is what lets 100k assets and 100k users fit in the worker's memory
/// budget. It is parsed back only when an alert matches the record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactContext(Box<str>);

impl CompactContext {
    pub fn new(v: &serde_json::Value) -> CompactContext {
        CompactContext(crate::jsonout::to_text(v).into_boxed_str())
    }

    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.0).expect("written by CompactContext::new")
    }

    /// The record as a bundle carries it: its text copied, parsed when something reads it.
    pub fn context(&self) -> Context {
        Context::from_text(&self.0)
    }

    /// A bundle's context kept as text (the same text: no writing again).
    pub fn of(c: &Context) -> CompactContext {
        CompactContext(c.text().into())
    }
}

/// Reference data as a bundle carries it (an entity's `context`, an enrichment's `data`): the
/// compact JSON text `serde_json` writes for the value (keys sorted), which the bundle writer
/// copies as it is, and the value itself, parsed from the text the first time something reads
/// it (tag rules read an entity's). Clones share both.
///
/// Parsing a record back into a `serde_json::Value` for every match, and writing the value
/// out again, was about a fifth of what enrichment cost a bundle (benches/OPTIMISATIONS.md,
/// eleventh round); geo data is now never parsed on the way to a bundle, and an inventory or
/// directory record is parsed once while it stays in its enricher's cache of parsed records
/// (`ContextCache`).
#[derive(Clone)]
pub struct Context(Arc<ContextInner>);

struct ContextInner {
    text: Box<str>,
    value: OnceLock<serde_json::Value>,
}

impl Context {
    /// The context of a value (its text written now).
    pub fn new(value: serde_json::Value) -> Context {
        Context(Arc::new(ContextInner {
            text: crate::jsonout::to_text(&value).into_boxed_str(),
            value: OnceLock::from(value),
        }))
    }

    /// The context whose compact JSON text is `text`, as [`Context::new`] writes it.
    pub fn from_text(text: &str) -> Context {
        Context(Arc::new(ContextInner {
            text: text.into(),
            value: OnceLock::new(),
        }))
    }

    /// The context whose compact JSON text is `text`, taken as it is (no copy).
    pub fn from_string(text: String) -> Context {
        Context(Arc::new(ContextInner {
            text: text.into_boxed_str(),
            value: OnceLock::new(),
        }))
    }

    /// The compact JSON text: what the bundle holds, byte for byte.
    pub fn text(&self) -> &str {
        &self.0.text
    }

    /// The value, parsed on first use.
    pub fn value(&self) -> &serde_json::Value {
        self.0.value.get_or_init(|| {
            serde_json::from_str(&self.0.text).expect("context text is written by serde_json")
        })
    }
}

impl std::ops::Deref for Context {
    type Target = serde_json::Value;
    fn deref(&self) -> &serde_json::Value {
        self.value()
    }
}

impl PartialEq for Context {
    /// The text is canonical (keys sorted, compact), so equal texts are equal values.
    fn eq(&self, other: &Context) -> bool {
        self.text() == other.text()
    }
}

impl std::fmt::Debug for Context {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Context").field(&self.text()).finish()
    }
}

impl Serialize for Context {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.value().serialize(s)
    }
}

/// The contexts of the records an enricher matched most recently, parsed, keyed by row: an
/// alert stream names the same servers and accounts again and again, and a hit costs a
/// reference count instead of a parse. With 1,024 records in each of the asset and user
/// enrichers' caches, the worker's peak RSS rose by 3–5 MiB (benches/OPTIMISATIONS.md).
pub(crate) struct ContextCache {
    /// Fx-hashed: the keys are row numbers below the table's size, and the table holds at most
    /// [`ContextCache::CAPACITY`] of them, so no input can make its probes long.
    lru: lru::LruCache<u32, Context, rustc_hash::FxBuildHasher>,
}

impl ContextCache {
    const CAPACITY: usize = 1024;

    pub(crate) fn new() -> ContextCache {
        ContextCache {
            lru: lru::LruCache::with_hasher(
                std::num::NonZeroUsize::new(Self::CAPACITY).expect("a positive capacity"),
                rustc_hash::FxBuildHasher,
            ),
        }
    }

    /// The parsed context of row `index`, whose stored text is `row`.
    pub(crate) fn get(&mut self, index: usize, row: &CompactContext) -> Context {
        let key = index as u32;
        if let Some(c) = self.lru.get(&key) {
            return c.clone();
        }
        let c = row.context();
        c.value();
        self.lru.put(key, c.clone());
        c
    }
}

/// One source of context. Implementations keep their reference data in memory and must give
/// the same output for the same alert and data.
pub trait Enricher: Send + Sync {
    /// The definition's `name`.
    fn name(&self) -> &str;
    /// `asset`, `user` or `geo`.
    fn kind(&self) -> &'static str;
    /// Version of the reference data for provenance, e.g. `sha256:<hex of the file(s)>`.
    fn data_version(&self) -> &str;
    /// Append what this enricher knows about `alert` to `out`, reading the alert through the
    /// view (`JPath::get_in`, `present`), which every enricher of the alert shares.
    fn enrich(&mut self, alert: &AlertView<'_>, out: &mut EnrichOutput);
    /// Running counts of its cache and of records it could not read, for an enricher that
    /// has a cache of answers and reference data that can fail to read (geo); `None` for one
    /// whose answers come from tables in memory (asset, user).
    fn stats(&self) -> Option<EnricherStats> {
        None
    }
}

/// What an enricher with a cache in front of its reference data has counted since it was
/// loaded. The worker exports it (`alertctx_enrichment_cache_lookups_total`,
/// `alertctx_enrichment_cache_entries`, `alertctx_enrichment_cache_capacity`,
/// `alertctx_enrichment_lookup_errors_total`) and `process` prints it under its summary, so
/// that a cache size is chosen from a feed's hit ratio rather than guessed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnricherStats {
    /// Lookups the cache answered.
    pub hits: u64,
    /// Lookups that went to the reference data (every lookup, when the cache is off).
    pub misses: u64,
    /// Answers held now.
    pub entries: usize,
    /// Answers it can hold (`cache_size`; 0 when the cache is off).
    pub capacity: usize,
    /// Records the reference data holds but that could not be read (a corrupt or
    /// wrongly-typed database); each made the lookup an answer without that database's part.
    pub lookup_errors: u64,
}

/// What loading definitions produced: the enrichers, in file-name order, and warnings about
/// optional reference data that was not there or rows that were ignored.
pub struct Loaded {
    pub enrichers: Vec<Box<dyn Enricher>>,
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.enrichers.iter().map(|e| e.name()).collect();
        f.debug_struct("Loaded")
            .field("enrichers", &names)
            .field("warnings", &self.warnings)
            .finish()
    }
}

/// Load every `*.toml` enricher definition in `dir`, sorted by file name.
///
/// A file without a top-level `kind` but with `[[rule]]` tables is a tag-rule file
/// (`enrichers/tags.toml` lives alongside the definitions) and is skipped; any other file
/// without `kind` is an error. Names must be unique. An `optional = true` definition whose
/// data file is missing is left out with a warning instead of failing the load.
pub fn load_dir(dir: &Path) -> anyhow::Result<Loaded> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.is_file() && path.extension().is_some_and(|e| e == "toml") {
            files.push(path);
        }
    }
    files.sort();
    let mut loaded = Loaded {
        enrichers: Vec::new(),
        warnings: Vec::new(),
    };
    let mut names = BTreeSet::new();
    for path in files {
        let Some(def) = Definition::read(&path)? else {
            continue;
        };
        if !names.insert(def.name().to_string()) {
            bail!(
                "{}: enricher name {:?} is already used by another definition",
                path.display(),
                def.name()
            );
        }
        let one = def.load(&path)?;
        loaded.enrichers.extend(one.enrichers);
        loaded.warnings.extend(one.warnings);
    }
    Ok(loaded)
}

/// Load one definition file. The result holds its enricher, or none and a warning when the
/// definition is `optional` and its data file is missing; load warnings (ignored duplicate
/// rows) are passed on too. A file that is not an enricher definition is an error.
pub fn load_definition(path: &Path) -> anyhow::Result<Loaded> {
    match Definition::read(path)? {
        Some(def) => def.load(path),
        None => bail!("{}: not an enricher definition (no `kind`)", path.display()),
    }
}

/// The present attributes of `alert` among `attributes`, in order, with their values as
/// written (numbers rendered) and their keys. `key(attribute, value)` normalises a value for
/// the once-per-event rule: an attribute whose key was already seen is dropped, and so is one
/// whose key is `None` (a value the enricher cannot use). The key goes with the value, so
/// that what the key took to compute (an address parsed, a name folded) is done once.
pub(crate) fn present<'a, 'v, K: PartialEq>(
    alert: &AlertView<'v>,
    attributes: impl IntoIterator<Item = &'a JPath>,
    mut key: impl FnMut(&str, &str) -> Option<K>,
) -> Vec<Present<'a, 'v, K>> {
    // An enricher reads a handful of attributes: a scan of what is kept beats a set.
    let mut out: Vec<Present<'a, 'v, K>> = Vec::new();
    for attr in attributes {
        if let Some(value) = attr.text_in(alert) {
            if let Some(k) = key(attr.raw(), &value) {
                if !out.iter().any(|p| p.key == k) {
                    out.push(Present {
                        attribute: attr.shared_raw(),
                        value,
                        key: k,
                    });
                }
            }
        }
    }
    out
}

/// One attribute [`present`] found.
#[derive(Debug, PartialEq)]
pub(crate) struct Present<'a, 'v, K> {
    pub attribute: &'a Arc<str>,
    /// The value as written: borrowed from the alert where it is a string.
    pub value: std::borrow::Cow<'v, str>,
    pub key: K,
}

/// Attribute names compiled for reading, repeats removed (first occurrence kept).
pub(crate) fn attribute_paths(attrs: &[String]) -> Vec<JPath> {
    definition::unique(attrs)
        .iter()
        .map(|a| JPath::new(a))
        .collect()
}

/// Parse an IP address as logs write it: trimmed, optionally in brackets, with an IPv6 zone
/// (`fe80::1%eth0`) dropped. IPv4-mapped IPv6 addresses become IPv4.
pub fn parse_ip(text: &str) -> Option<std::net::IpAddr> {
    // Most values need no trimming: `trim` (about 50 instructions) only when an end is not a
    // visible ASCII character.
    let visible = |c: Option<&u8>| c.is_some_and(u8::is_ascii_graphic);
    let b = text.as_bytes();
    let t = if visible(b.first()) && visible(b.last()) {
        text
    } else {
        text.trim()
    };
    let t = t
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(t);
    // The zone, after the first `%` (an ASCII byte, so a character boundary), is dropped.
    let t = match t.bytes().position(|c| c == b'%') {
        Some(i) => &t[..i],
        None => t,
    };
    // IPv4 text first, by hand; IPv6 text always holds a colon and goes to the standard
    // parser; anything else (a host name, most often) is neither. Parsing every value as
    // `IpAddr`, which tries both forms in turn, cost about 450 instructions a value with the
    // trimming and the zone.
    if let Some(v4) = crate::iptext::ipv4(t.as_bytes()) {
        Some(std::net::IpAddr::V4(v4))
    } else if t.bytes().any(|c| c == b':') {
        t.parse::<std::net::Ipv6Addr>()
            .ok()
            .map(|ip| std::net::IpAddr::V6(ip).to_canonical())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::testutil::{definition_dir, mmdb, write};
    use super::*;
    use serde_json::json;

    fn names(loaded: &Loaded) -> Vec<(&str, &str)> {
        loaded
            .enrichers
            .iter()
            .map(|e| (e.name(), e.kind()))
            .collect()
    }

    #[test]
    fn compact_contexts_give_back_exactly_what_they_were_given() {
        // Coordinates are floats: the text must parse back to the same bits, or a cached
        // geo record would differ from a fresh one.
        let mut x: u64 = 0x2545_F491_4F6C_DD1D;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let lat = (x % 180_000_000) as f64 / 1e6 - 90.0 + (x >> 40) as f64 * 1e-17;
            let lon = f64::from_bits(x >> 2) % 180.0;
            let v = json!({"location": {"lat": lat, "lon": lon, "radius_km": 20}, "asn": {"org": "Ex"}});
            let compact = CompactContext::new(&v);
            assert_eq!(compact.0.as_ref(), serde_json::to_string(&v).unwrap());
            assert_eq!(compact.value(), v, "{lat} {lon}");
        }
    }

    #[test]
    fn a_context_is_its_text_and_the_value_the_text_parses_to() {
        let v = json!({"b": [1, 2.5, "x\u{7}"], "a": {"ok": true, "n": null}});
        let made = Context::new(v.clone());
        assert_eq!(made.text(), serde_json::to_string(&v).unwrap());
        let read = Context::from_text(made.text());
        assert_eq!(*read, v);
        assert_eq!(read, made);
        assert_eq!(serde_json::to_value(&read).unwrap(), v);
        assert_ne!(Context::new(json!({"a": 1})), Context::new(json!({"a": 2})));
        // Clones share the parsed value.
        let c = read.clone();
        assert!(std::ptr::eq(c.value(), read.value()));
    }

    #[test]
    fn the_context_cache_gives_what_parsing_the_row_gives() {
        let rows: Vec<CompactContext> = (0..3 * ContextCache::CAPACITY)
            .map(|i| CompactContext::new(&json!({"id": format!("A{i}"), "n": i})))
            .collect();
        let mut cache = ContextCache::new();
        // Every row twice over, the second pass after the first has pushed the early rows
        // out; a few hot rows in between stay.
        for pass in 0..2 {
            for (i, row) in rows.iter().enumerate() {
                let got = cache.get(i, row);
                assert_eq!(*got, row.value(), "row {i}, pass {pass}");
                assert_eq!(got.text(), &*row.0);
                let hot = cache.get(7, &rows[7]);
                assert_eq!(hot["id"], "A7");
            }
        }
        // A hit is the cached context itself, not a new parse.
        let a = cache.get(7, &rows[7]);
        let b = cache.get(7, &rows[7]);
        assert!(std::ptr::eq(a.value(), b.value()));
        assert!(cache.lru.len() <= ContextCache::CAPACITY);
    }

    #[test]
    fn load_dir_sorts_skips_tag_rules_and_warns_on_optional_data() {
        let dir = definition_dir();
        let d = dir.path();
        write(
            d,
            "b-users.toml",
            "name = \"ad\"\nkind = \"user\"\npath = \"data/u.csv\"\n",
        );
        write(d, "data/u.csv", "user_id,sam_account_name\nu1,jdoe\n");
        write(
            d,
            "a-assets.toml",
            "name = \"cmdb\"\nkind = \"asset\"\npath = \"data/a.json\"\n",
        );
        write(
            d,
            "data/a.json",
            "[{\"asset_id\": \"A1\", \"ip\": \"10.0.0.1\"}]",
        );
        write(
            d,
            "c-geo.toml",
            "name = \"geo\"\nkind = \"geo\"\ncity = \"data/nope.mmdb\"\noptional = true\n",
        );
        write(d, "tags.toml", "[[rule]]\nid = \"r\"\ntags = [\"a:b\"]\n");
        write(d, "notes.txt", "not a definition");
        let loaded = load_dir(d).unwrap();
        assert_eq!(names(&loaded), vec![("cmdb", "asset"), ("ad", "user")]);
        assert_eq!(loaded.warnings.len(), 1);
        assert!(
            loaded.warnings[0].contains("optional enricher \"geo\" left out: missing"),
            "{:?}",
            loaded.warnings
        );
        assert!(loaded.warnings[0].contains("nope.mmdb"));
        let hash = table::sha256_version(b"user_id,sam_account_name\nu1,jdoe\n");
        assert_eq!(loaded.enrichers[1].data_version(), hash);

        // The same definition on its own.
        let one = load_definition(&d.join("c-geo.toml")).unwrap();
        assert!(one.enrichers.is_empty());
        assert_eq!(one.warnings, loaded.warnings);
        assert!(load_definition(&d.join("tags.toml")).is_err());

        // Once the database is there, the geo enricher loads.
        mmdb::write_test_city_db(&d.join("data/nope.mmdb")).unwrap();
        let loaded = load_dir(d).unwrap();
        assert_eq!(
            names(&loaded),
            vec![("cmdb", "asset"), ("ad", "user"), ("geo", "geo")]
        );
        assert!(loaded.warnings.is_empty());
        assert!(loaded.enrichers[2].data_version().starts_with("sha256:"));
    }

    #[test]
    fn load_dir_errors() {
        let dir = definition_dir();
        let d = dir.path();
        write(
            d,
            "a.toml",
            "name = \"x\"\nkind = \"asset\"\npath = \"missing.csv\"\n",
        );
        let err = format!("{:#}", load_dir(d).unwrap_err());
        assert!(
            err.contains("a.toml") && err.contains("missing.csv"),
            "{err}"
        );

        write(
            d,
            "a.toml",
            "name = \"x\"\nkind = \"asset\"\npath = \"a.csv\"\n",
        );
        write(d, "a.csv", "asset_id,ip\nA,10.0.0.1\n");
        write(
            d,
            "b.toml",
            "name = \"x\"\nkind = \"asset\"\npath = \"a.csv\"\n",
        );
        let err = format!("{:#}", load_dir(d).unwrap_err());
        assert!(
            err.contains("b.toml") && err.contains("already used"),
            "{err}"
        );

        write(d, "b.toml", "name = \"y\"\n");
        let err = format!("{:#}", load_dir(d).unwrap_err());
        assert!(
            err.contains("b.toml") && err.contains("missing `kind`"),
            "{err}"
        );

        write(
            d,
            "b.toml",
            "name = \"y\"\nkind = \"asset\"\npath = \"b.csv\"\n",
        );
        write(d, "b.csv", "asset_id,ip\nB,10.0.0.1\nC,300.0.0.1\n");
        let err = format!("{:#}", load_dir(d).unwrap_err());
        assert!(err.contains("b.csv:3: invalid ip"), "{err}");
    }

    /// The example definitions in `enrichers/` load, and the example data answers the
    /// questions the README's bundle example asks.
    #[test]
    fn example_enrichers_load() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("enrichers");
        let mut loaded = load_dir(&dir).unwrap();
        assert_eq!(
            names(&loaded),
            vec![("cmdb", "asset"), ("directory", "user")]
        );
        // geo.toml is optional and the MaxMind files are not shipped.
        assert_eq!(loaded.warnings.len(), 1, "{:?}", loaded.warnings);
        assert!(loaded.warnings[0].contains("\"geo\""));

        let alert = json!({
            "src_endpoint": {"ip": "10.20.14.77", "hostname": "ws-0042"},
            "dst_endpoint": {"ip": "10.30.5.10"},
            "device": {"ip": "192.0.2.10"},
            "user": {"name": "jdoe", "domain": "CORP"},
            "actor": {"user": {"name": "CORP\\adm-asmith", "uid": "S-1-5-21-1111111111-2222222222-3333333333-1116"}},
        });
        let mut out = EnrichOutput::default();
        for e in &mut loaded.enrichers {
            e.enrich(&AlertView::new(&alert), &mut out);
        }
        let got: Vec<(&str, &str, &str)> = out
            .entities
            .iter()
            .map(|e| {
                (
                    &*e.attribute,
                    e.matched_by,
                    e.context["id"].as_str().unwrap(),
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                ("src_endpoint.ip", "cidr", "AST-0024"),
                ("dst_endpoint.ip", "ip", "AST-0012"),
                ("device.ip", "ip", "AST-0016"),
                ("src_endpoint.hostname", "hostname", "AST-0020"),
                ("user.name", "domain_sam", "u1104"),
                ("actor.user.name", "domain_sam", "u1106"),
                ("actor.user.uid", "sid", "u1116"),
            ]
        );
        assert_eq!(out.entities[1].context["criticality"], "crown_jewel");
        assert_eq!(out.entities[5].context["privileged"], true);
        assert_eq!(out.entities[6].context["status"], "disabled");
        assert!(out.misses.is_empty(), "{:?}", out.misses);
    }

    #[test]
    fn present_reads_in_order_and_once_per_value() {
        let alert = json!({"a": {"ip": "10.0.0.1"}, "b": {"ip": "10.0.0.1"}, "c": {"ip": ""}, "d": {"ip": 7}, "e": {"ip": true}});
        let attrs = attribute_paths(&strings(&[
            "d.ip", "a.ip", "c.ip", "b.ip", "x.ip", "a.ip", "e.ip",
        ]));
        let got: Vec<(&str, String)> =
            present(&AlertView::new(&alert), &attrs, |_, v| Some(v.to_string()))
                .into_iter()
                .map(|p| (&**p.attribute, p.value.into_owned()))
                .collect();
        assert_eq!(
            got,
            vec![
                ("d.ip", "7".to_string()),
                ("a.ip", "10.0.0.1".to_string()),
                ("e.ip", "true".to_string())
            ]
        );
        // A key of `None` leaves the attribute out; keys, not values, decide repeats.
        let got = present(&AlertView::new(&alert), &attrs, |attr, v| {
            (attr != "d.ip").then_some(v.len() > 4)
        });
        let kept: Vec<&str> = got.iter().map(|p| &**p.attribute).collect();
        assert_eq!(kept, vec!["a.ip", "e.ip"]);
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn parse_ip_takes_what_the_address_parser_takes() {
        // Telling IPv4 and IPv6 text apart first must not change what is taken.
        let by_parser = |t: &str| {
            let t = t.trim();
            let t = t
                .strip_prefix('[')
                .and_then(|r| r.strip_suffix(']'))
                .unwrap_or(t);
            let t = t.split_once('%').map_or(t, |(addr, _)| addr);
            t.parse::<std::net::IpAddr>()
                .ok()
                .map(|ip| ip.to_canonical())
        };
        for t in [
            "",
            ".",
            "1",
            "1.2.3",
            "1.2.3.4",
            "01.2.3.4",
            "1..2.3",
            "1.2.3.4.5",
            "256.1.1.1",
            "255.255.255.255",
            " 10.0.0.1\t",
            "+1.2.3.4",
            "1e3",
            "\u{661}.2.3.4",
            "::",
            "::1",
            "1::",
            ":",
            "a:b",
            "::ffff:1.2.3.4",
            "::ffff:10.0.0.1",
            "1.2.3.4:80",
            "[::1]",
            "[1.2.3.4]",
            "fe80::1%eth0",
            "fe80::1%",
            "%eth0",
            "dead:beef::",
            "DEAD:BEEF::1",
            "2001:db8::1.2.3.4",
            "host",
            "WS-0177.corp.example.com",
            "\u{3000}1.2.3.4",
            "1.2.3.4\u{a0}",
            "\u{a0}",
            " ",
            "1.2.3.4%eth0",
            "[1.2.3.4%x]",
            "%",
            "1.2.3.4%",
            "é",
            "1.2.3.é",
            "12345",
            "1.2.3.4/24",
            "::g",
        ] {
            assert_eq!(parse_ip(t), by_parser(t), "{t:?}");
        }
    }

    #[test]
    fn parse_ip_accepts_log_spellings() {
        assert_eq!(parse_ip(" 10.0.0.1 "), Some("10.0.0.1".parse().unwrap()));
        assert_eq!(
            parse_ip("[2001:db8::1]"),
            Some("2001:db8::1".parse().unwrap())
        );
        assert_eq!(parse_ip("fe80::1%eth0"), Some("fe80::1".parse().unwrap()));
        assert_eq!(
            parse_ip("::ffff:10.0.0.1"),
            Some("10.0.0.1".parse().unwrap())
        );
        assert_eq!(parse_ip("web01"), None);
        assert_eq!(parse_ip("10.0.0.256"), None);
    }
}
