//! The written form of a mapping file, `schemas/mappings/<source>.toml`.
//!
//! A mapping names a source, says how to recognise its records, and lists, per event class,
//! which vendor fields fill which OCSF attributes. The doc comments here are the reference
//! for every key; `schemas/mappings/README.md` walks through an example.

use crate::cond::CondDef;
use serde::Deserialize;
use std::collections::BTreeMap;

/// One mapping file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    /// Source id, used in configuration routing, bundles and metrics (`suricata`, `okta`).
    pub id: String,
    /// Version of this mapping; bump it when output changes. Appears in provenance.
    pub version: String,
    /// Human-readable name of the source.
    pub name: String,
    /// Decoded forms this mapping accepts: `json`, `cef`, `leef`, `pan`, `syslog`, `text`,
    /// `zeek_tsv`, `winxml`. Defaults to `json`.
    #[serde(default = "default_formats")]
    pub formats: Vec<String>,
    /// Detection order among mappings: lower runs first. Default 100.
    #[serde(default = "default_priority")]
    pub priority: i32,
    /// `metadata.product` of every event of this source (`name`, `vendor_name`, ...).
    #[serde(default)]
    pub product: BTreeMap<String, toml::Value>,
    /// Shape test for automatic source detection; a mapping without one is used only when
    /// configuration routes an input to it.
    pub detect: Option<CondDef>,
    /// Values treated as absent in this source (besides null). Default `["", "-"]`.
    pub null_values: Option<Vec<String>>,
    /// Fields that shippers add (Logstash `@version`, collector tags). They stay in
    /// `unmapped` but do not count as unmapped vendor data in the quality score.
    #[serde(default)]
    pub transport: Vec<String>,
    /// Field rules applied to every class below; a class rule for the same target wins.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldDef>,
    /// Class rules, tried in order; the first whose `when` holds maps the record.
    #[serde(default, rename = "class")]
    pub classes: Vec<ClassDef>,
}

fn default_formats() -> Vec<String> {
    vec!["json".to_string()]
}

fn default_priority() -> i32 {
    100
}

/// One class rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClassDef {
    /// Short name of the rule, shown by `alertctx explain`.
    pub name: Option<String>,
    /// When this rule applies. Absent: always (use for the last, catch-all rule).
    pub when: Option<CondDef>,
    /// OCSF class uid (4001, 3002, ...).
    pub class_uid: u32,
    /// Constant activity id; a field rule for `activity_id` overrides it.
    pub activity_id: Option<i64>,
    /// Constant severity id; a field rule for `severity_id` overrides it. Default 1.
    pub severity_id: Option<i64>,
    /// Field rules for this class. The attributes OCSF derives from class, activity and
    /// severity (`crate::normalize::DERIVED`) cannot be targets: the normalizer writes them.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldDef>,
}

/// How one OCSF attribute (the key, a dotted path) is filled.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldDef {
    /// Shorthand: the vendor field's path, copied as it is.
    Path(String),
    /// The full form.
    Rule(Box<FieldRuleDef>),
}

/// The full form of a field rule. Steps run in this order: take the value (`from`, `const` or
/// `template`), `split`, `regex`, convert (`as`), `map`, then `default` if still absent.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct FieldRuleDef {
    /// One path, or several tried in order (the first present one wins).
    pub from: Option<PathList>,
    /// A constant.
    #[serde(rename = "const")]
    pub constant: Option<toml::Value>,
    /// A string with `{path}` placeholders; absent if any placeholder is absent.
    pub template: Option<String>,
    /// Split a string on this separator into an array of strings.
    pub split: Option<String>,
    /// Keep the first capture group (or the whole match) of this regular expression.
    pub regex: Option<String>,
    /// Look the text form up in this table; a value not in it is absent unless `map_default`.
    pub map: Option<BTreeMap<String, toml::Value>>,
    /// Value for a lookup that `map` does not contain.
    pub map_default: Option<toml::Value>,
    /// Keep the value as it is when `map` does not contain it (instead of `map_default`).
    #[serde(default)]
    pub map_keep_unknown: bool,
    /// Conversion: `string`, `int`, `float`, `bool`, `time` (epoch ms), `ip`, `port`,
    /// `lower`, `upper`, `json` (keep structure), `list` (a scalar becomes a one-item array). Default: keep the value's own type.
    #[serde(rename = "as")]
    pub conv: Option<String>,
    /// Value when absent after every other step.
    pub default: Option<toml::Value>,
    /// Apply this rule only when the condition holds.
    pub when: Option<CondDef>,
    /// For arrays: map each element with these rules (paths relative to the element; `.`
    /// is the element itself) into an array of objects. With `split`, a string is split into
    /// pieces first and each piece is an element.
    pub each: Option<BTreeMap<String, FieldDef>>,
}

/// One path or several.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum PathList {
    One(String),
    Many(Vec<String>),
}

impl PathList {
    pub fn paths(&self) -> Vec<&str> {
        match self {
            PathList::One(p) => vec![p.as_str()],
            PathList::Many(ps) => ps.iter().map(String::as_str).collect(),
        }
    }
}
