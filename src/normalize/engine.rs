//! The mapping engine: compiles a [`MappingDef`] once into field extractors and runs them
//! over decoded records to build the OCSF event.

use super::cut::Cut;
use super::spec::{ClassDef, FieldDef, FieldRuleDef, MappingDef};
use super::value::{present, text, to_json, Record};
use crate::cond::Cond;
use crate::decode::Value;
use crate::path::{self, CPath, TemplatePart as TplPart};
use crate::score::Gap;
use anyhow::{bail, Context};
use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// A mapping ready to run.
#[derive(Debug)]
pub struct Mapping {
    pub id: String,
    pub version: String,
    pub name: String,
    pub formats: Vec<String>,
    pub priority: i32,
    pub detect: Option<Cond>,
    product: Json,
    /// `metadata.product`, where `product` goes.
    product_path: path::SetPath,
    null_values: Vec<String>,
    classes: Vec<CompiledClass>,
    /// The source-wide `fields` alone, for records no class rule matches.
    fallback: CompiledClass,
}

#[derive(Debug)]
struct CompiledClass {
    /// Shared: each alert of the class rule names it ([`Mapped::rule`]).
    name: Arc<str>,
    when: Option<Cond>,
    class_uid: u32,
    activity_id: Option<i64>,
    severity_id: Option<i64>,
    rules: Vec<Rule>,
    /// What the unmapped walk needs to know of a record path: whether a rule reads it (its
    /// value is mapped, not unmapped), whether it is a transport field (copied whole, not
    /// counted), and whether a longer path of either kind lies beneath it.
    paths: PathNode,
}

/// What a record path is to the unmapped walk ([`CompiledClass::paths`]).
#[derive(Debug, Clone, Copy, Default)]
struct PathRole {
    consumed: bool,
    transport: bool,
    /// Some consumed or transport path starts with this one and a `.`.
    above: bool,
}

/// The paths a class reads, as a tree of their dotted segments: the unmapped walk goes down it
/// beside the record, one key at a time, instead of spelling each record path out and looking
/// the whole string up (the walk cost 8.2k instructions a record that way).
#[derive(Debug, Default)]
struct PathNode {
    role: PathRole,
    children: FxHashMap<Box<str>, PathNode>,
}

impl PathNode {
    /// The node of `key` beneath this one. A key that holds dots (Zeek's `id.orig_h`) names
    /// the path its segments spell, as a path written in a mapping does.
    fn child(&self, key: &str) -> Option<&PathNode> {
        // Segments hold no dot, so a key that does is never found whole: it is split only
        // then, and only when this node has children at all.
        if let Some(node) = self.children.get(key) {
            return Some(node);
        }
        if self.children.is_empty() {
            return None;
        }
        // A byte search: `split_once('.')` went through `CharSearcher` (about 100
        // instructions a call for these short keys, which mostly hold no dot).
        let dot = key.bytes().position(|b| b == b'.')?;
        self.children.get(&key[..dot])?.child(&key[dot + 1..])
    }
}

/// The roles of the paths `consumed` (read by a class's rules) and `transport` (the source's
/// transport fields), and of every dotted prefix of them.
fn path_roles<'a>(consumed: impl IntoIterator<Item = &'a str>, transport: &[String]) -> PathNode {
    let mut root = PathNode::default();
    let mut add = |path: &str, set: fn(&mut PathRole)| {
        let mut node = &mut root;
        let mut segments = path.split('.').peekable();
        while let Some(segment) = segments.next() {
            node = node.children.entry(segment.into()).or_default();
            if segments.peek().is_some() {
                node.role.above = true;
            }
        }
        set(&mut node.role);
    };
    for path in consumed {
        add(path, |r| r.consumed = true);
    }
    for path in transport {
        add(path, |r| r.transport = true);
    }
    root
}

#[derive(Debug)]
struct Rule {
    target: String,
    /// `target`, split and parsed once.
    target_path: path::SetPath,
    source: Source,
    split: Option<String>,
    regex: Option<Cut>,
    map: Option<FxHashMap<String, Json>>,
    map_default: Option<Json>,
    map_keep_unknown: bool,
    conv: Conv,
    default: Option<Json>,
    when: Option<Cond>,
    each: Option<Vec<Rule>>,
}

#[derive(Debug)]
enum Source {
    Paths(Vec<CPath>),
    Const(Json),
    Template(Vec<TplPart>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Conv {
    Keep,
    String,
    Int,
    Float,
    Bool,
    Time,
    Ip,
    Port,
    Lower,
    Upper,
    Json,
    List,
}

/// What mapping one record produced.
#[derive(Debug)]
pub struct Mapped {
    pub alert: Map<String, Json>,
    /// The class rule that built the alert, as [`spare`](super::spare) files its map (0: none).
    pub shape: usize,
    pub class_uid: u32,
    /// Name of the class rule that matched (`None`: no rule matched, Base Event).
    pub rule: Option<Arc<str>>,
    /// Unmapped vendor leaves, not counting transport fields.
    pub unmapped_leaves: usize,
    pub gaps: Vec<Gap>,
}

/// What [`Mapping::trace`] found: the class rule that matched (`None`: the source-wide
/// fields only) and, for every attribute a rule wrote, the rule's target and how it got it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MappingTrace {
    pub class_rule: Option<String>,
    pub class_uid: u32,
    pub fields: Vec<(String, String)>,
}

pub fn toml_to_json(v: &toml::Value) -> Json {
    match v {
        toml::Value::String(s) => Json::String(s.clone()),
        toml::Value::Integer(i) => Json::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
        toml::Value::Boolean(b) => Json::Bool(*b),
        toml::Value::Datetime(d) => Json::String(d.to_string()),
        toml::Value::Array(a) => Json::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Json::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

impl Mapping {
    pub fn compile(def: &MappingDef) -> anyhow::Result<Mapping> {
        if def.classes.is_empty() {
            bail!("mapping `{}` has no [[class]] rules", def.id);
        }
        let mut classes = Vec::new();
        for (i, class) in def.classes.iter().enumerate() {
            classes.push(
                compile_class(def, class)
                    .with_context(|| format!("class rule #{} ({})", i + 1, class.class_uid))?,
            );
        }
        let fallback_def = ClassDef {
            name: Some(format!("{}:unclassified", def.id)),
            when: None,
            class_uid: 0,
            activity_id: Some(0),
            severity_id: Some(0),
            fields: BTreeMap::new(),
        };
        let fallback = compile_class(def, &fallback_def).context("source-wide fields")?;
        Ok(Mapping {
            id: def.id.clone(),
            version: def.version.clone(),
            name: def.name.clone(),
            formats: def.formats.clone(),
            priority: def.priority,
            detect: def
                .detect
                .as_ref()
                .map(Cond::compile)
                .transpose()
                .context("detect")?,
            product_path: path::SetPath::new("metadata.product"),
            product: Json::Object(
                def.product
                    .iter()
                    .map(|(k, v)| (k.clone(), toml_to_json(v)))
                    .collect(),
            ),
            null_values: def
                .null_values
                .clone()
                .unwrap_or_else(|| vec![String::new(), "-".to_string()]),
            classes,
            fallback,
        })
    }

    /// Map one record. Never fails: a record no class rule matches becomes a Base Event with
    /// the source-wide fields mapped, the rest under `unmapped`, and a `class_unmapped` gap.
    pub fn apply(&self, record: &Value<'_>) -> Mapped {
        self.apply_indexed(&Record::new(record), false)
    }

    /// [`apply`](Mapping::apply) to a record already indexed. With `spare`, the alert is built
    /// into the map the thread keeps for its class rule ([`spare`](super::spare)), where there
    /// is one: the same alert, except that it may hold the keys of the captions
    /// [`derive`](super::derive) writes, as null, until `derive` writes them.
    pub fn apply_indexed(&self, record: &Record<'_, '_>, spare: bool) -> Mapped {
        let matched = self
            .classes
            .iter()
            .find(|c| c.when.as_ref().is_none_or(|w| w.eval(record)));
        let class = matched.unwrap_or(&self.fallback);
        let mut alert = path::Builder::with_capacity(32);
        let mut gaps = Vec::new();
        alert.insert("class_uid", Json::from(class.class_uid));
        alert.insert("activity_id", Json::from(class.activity_id.unwrap_or(0)));
        alert.insert("severity_id", Json::from(class.severity_id.unwrap_or(1)));
        for rule in &class.rules {
            if let Some(v) = self.run_rule(rule, record, &mut gaps) {
                set(&mut alert, &rule.target_path, v);
            }
        }
        let mut leaves = 0;
        if let Some(unmapped) = self.unmapped(record.root(), Some(&class.paths), &mut leaves) {
            alert.insert_object("unmapped", unmapped);
        }
        if matched.is_none() {
            gaps.push(Gap::new(
                "class_unmapped",
                None,
                Some(format!("no class rule of `{}` matched", self.id)),
            ));
            // Everything beyond the source-wide fields is unmapped by definition; the
            // class_unmapped gap already says so.
            leaves = 0;
        }
        if self.product.as_object().is_some_and(|p| !p.is_empty()) {
            alert.set_const(&self.product_path, &self.product);
        }
        let shape = std::ptr::from_ref(class) as usize;
        Mapped {
            alert: match spare.then(|| super::spare::take(shape)).flatten() {
                Some(spare) => alert.into_map_reusing(spare, &super::spare::LEFTOVER),
                None => alert.into_map(),
            },
            shape,
            class_uid: class.class_uid,
            rule: matched.map(|c| c.name.clone()),
            unmapped_leaves: leaves,
            gaps,
        }
    }

    fn is_null(&self, v: &Value<'_>) -> bool {
        if !present(v) {
            return true;
        }
        matches!(v, Value::String(s) if self.null_values.iter().any(|n| n == s.as_ref()))
    }

    /// The value `rule` gives for `record`, if any: borrowed where it is the rule's own (a
    /// constant, a value of its `map`, its default), which the alert takes without a copy
    /// when its spare map holds it already ([`path::Builder::set_const`]).
    fn run_rule<'m>(
        &'m self,
        rule: &'m Rule,
        record: &Record<'_, '_>,
        gaps: &mut Vec<Gap>,
    ) -> Option<Cow<'m, Json>> {
        if let Some(w) = &rule.when {
            if !w.eval(record) {
                return None;
            }
        }
        let out = self.rule_value(rule, record, gaps);
        out.or_else(|| rule.default.as_ref().map(Cow::Borrowed))
    }

    fn rule_value<'m>(
        &'m self,
        rule: &'m Rule,
        record: &Record<'_, '_>,
        gaps: &mut Vec<Gap>,
    ) -> Option<Cow<'m, Json>> {
        let mut regex_done = false;
        let mut value: Json = match &rule.source {
            Source::Const(c) => return Some(Cow::Borrowed(c)),
            Source::Paths(paths) => {
                let found = paths
                    .iter()
                    .filter_map(|p| record.lookup(p))
                    .find(|v| !self.is_null(v))?;
                if let Some(each) = &rule.each {
                    // With `split`, a string is split first and each piece mapped.
                    let pieces: Vec<Value<'_>> = match (&rule.split, found) {
                        (Some(sep), Value::String(s)) => s
                            .split(sep.as_str())
                            .map(str::trim)
                            .filter(|p| !p.is_empty())
                            .map(|p| Value::String(std::borrow::Cow::Borrowed(p)))
                            .collect(),
                        _ => Vec::new(),
                    };
                    let items: Vec<&Value<'_>> = match found {
                        _ if !pieces.is_empty() => pieces.iter().collect(),
                        Value::Array(a) => a.iter().collect(),
                        other => vec![other],
                    };
                    let mut out = Vec::new();
                    for item in items {
                        let item = Record::plain(item);
                        let mut obj = path::Builder::new();
                        for sub in each {
                            if let Some(v) = self.run_rule(sub, &item, gaps) {
                                set(&mut obj, &sub.target_path, v);
                            }
                        }
                        if !obj.is_empty() {
                            out.push(Json::Object(obj.into_map()));
                        }
                    }
                    return (!out.is_empty()).then_some(Cow::Owned(Json::Array(out)));
                }
                match (&rule.regex, &rule.split, found) {
                    // A string cut by a regex: the capture is copied out of the record, not
                    // the whole string first.
                    (Some(re), None, Value::String(s)) => {
                        regex_done = true;
                        Json::String(re.capture(s)?.to_string())
                    }
                    _ => to_json(found),
                }
            }
            Source::Template(parts) => {
                let mut s = String::new();
                for part in parts {
                    match part {
                        TplPart::Lit(l) => s.push_str(l),
                        TplPart::Field(p) => {
                            let v = record.lookup(p).filter(|v| !self.is_null(v))?;
                            s.push_str(&text(v)?);
                        }
                    }
                }
                Json::String(s)
            }
        };
        if let (Some(sep), Json::String(s)) = (&rule.split, &value) {
            value = Json::Array(
                s.split(sep.as_str())
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(|p| Json::String(p.to_string()))
                    .collect(),
            );
        }
        if let Some(re) = rule.regex.as_ref().filter(|_| !regex_done) {
            let kept = re.capture(&json_str(&value)?)?.to_string();
            value = Json::String(kept);
        }
        value = match convert(rule.conv, value) {
            Ok(v) => v,
            Err(bad) => {
                let code = if rule.target == "time" {
                    "time_unparseable"
                } else {
                    "value_invalid"
                };
                gaps.push(Gap::new(
                    code,
                    Some(rule.target.clone()),
                    Some(truncate_detail(&bad)),
                ));
                return None;
            }
        };
        if let Some(map) = &rule.map {
            return match map.get(&*json_str(&value)?) {
                Some(v) => Some(Cow::Borrowed(v)),
                None if rule.map_keep_unknown => Some(Cow::Owned(value)),
                None => rule.map_default.as_ref().map(Cow::Borrowed),
            };
        }
        Some(Cow::Owned(value))
    }

    /// The part of `v` no rule consumed, with the count of its leaves (added to `leaves`).
    /// `at` is `v`'s node in the tree of the paths the class reads ([`PathNode`]); it is
    /// `None` beneath a member that no read or transport path lies under, where there is
    /// nothing to look up and all but the null values is unmapped.
    fn unmapped<'r>(
        &self,
        v: &'r Value<'_>,
        at: Option<&PathNode>,
        leaves: &mut usize,
    ) -> Option<path::Object<'r>> {
        let Value::Object(obj) = v else { return None };
        // Collected with the record's keys, and made a map with the alert's (into its spare
        // map's, where the keys are there already: `path::Builder::into_map_reusing`).
        let mut out = path::Object::with_capacity(obj.len());
        for (k, child) in obj.iter() {
            if self.is_null(child) {
                continue;
            }
            let node = at.and_then(|n| n.child(k));
            let role = node.map(|n| n.role).unwrap_or_default();
            if role.consumed {
                // Mapped: not unmapped.
            } else if role.transport {
                out.push(k, to_json(child));
            } else if !matches!(child, Value::Object(_)) {
                *leaves += count_leaves(child);
                out.push(k, to_json(child));
            } else {
                let beneath = if role.above { node } else { None };
                if let Some(rest) = self.unmapped(child, beneath, leaves) {
                    out.push_object(k, rest);
                }
            }
        }
        (!out.is_empty()).then_some(out)
    }

    /// Which rule wrote which attribute for this record: the same choices [`apply`] makes,
    /// described for `alertctx explain`. `apply` itself stays free of bookkeeping.
    ///
    /// [`apply`]: Mapping::apply
    pub fn trace(&self, record: &Value<'_>) -> MappingTrace {
        let record = &Record::new(record);
        let matched = self
            .classes
            .iter()
            .find(|c| c.when.as_ref().is_none_or(|w| w.eval(record)));
        let class = matched.unwrap_or(&self.fallback);
        let mut fields = Vec::new();
        for rule in &class.rules {
            let mut scratch = Vec::new();
            if self.run_rule(rule, record, &mut scratch).is_none() {
                continue;
            }
            let found = match &rule.source {
                Source::Paths(paths) => paths
                    .iter()
                    .find(|p| record.lookup(p).is_some_and(|v| !self.is_null(v))),
                _ => None,
            };
            let mut how = match (&rule.source, found) {
                (Source::Const(c), _) => format!("constant {c}"),
                (Source::Paths(_), Some(p)) => format!("from `{}`", p.raw()),
                (Source::Paths(_), None) => format!(
                    "default {}",
                    rule.default.as_ref().map_or("?".into(), Json::to_string)
                ),
                (Source::Template(parts), _) => {
                    let t: String = parts
                        .iter()
                        .map(|p| match p {
                            TplPart::Lit(l) => l.clone(),
                            TplPart::Field(f) => format!("{{{}}}", f.raw()),
                        })
                        .collect();
                    format!("template `{t}`")
                }
            };
            let mut steps = Vec::new();
            if let Some(sep) = &rule.split {
                steps.push(format!("split on {sep:?}"));
            }
            if let Some(re) = &rule.regex {
                steps.push(format!("regex `{}`", re.as_str()));
            }
            if rule.map.is_some() {
                steps.push("value map".to_string());
            }
            if rule.conv != Conv::Keep {
                steps.push(format!("as {:?}", rule.conv).to_lowercase());
            }
            if let Some(each) = &rule.each {
                steps.push(format!("each item through {} sub-rules", each.len()));
            }
            if !steps.is_empty() {
                how = format!("{how}, {}", steps.join(", "));
            }
            fields.push((rule.target.clone(), how));
        }
        MappingTrace {
            class_rule: matched.map(|c| c.name.to_string()),
            class_uid: class.class_uid,
            fields,
        }
    }

    /// Names of the class rules, in order, for `explain`.
    pub fn class_rule_names(&self) -> Vec<String> {
        self.classes.iter().map(|c| c.name.to_string()).collect()
    }
}

fn count_leaves(v: &Value<'_>) -> usize {
    match v {
        Value::Object(o) => o.values().map(count_leaves).sum(),
        Value::Array(a) => a.iter().map(count_leaves).sum::<usize>().max(1),
        _ => 1,
    }
}

fn truncate_detail(s: &str) -> String {
    let mut out: String = s.chars().take(64).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

/// [`json_text`] borrowed where the value is a string already.
fn json_str(v: &Json) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Json::String(s) => Some(std::borrow::Cow::Borrowed(s)),
        other => json_text(other).map(std::borrow::Cow::Owned),
    }
}

fn json_text(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(s.clone()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `lower`/`upper`: ASCII text, the usual case, changes case in place (what the full
/// conversion would give it); other scalars are converted from their text.
fn recase(v: Json, ascii: fn(&mut str), full: fn(&str) -> String) -> Result<Json, String> {
    Ok(Json::String(match v {
        Json::String(mut s) if s.is_ascii() => {
            ascii(&mut s);
            s
        }
        v => full(&json_text(&v).ok_or_else(|| v.to_string())?),
    }))
}

/// Apply a conversion; `Err` carries the offending text.
fn convert(conv: Conv, v: Json) -> Result<Json, String> {
    let bad = |v: &Json| json_text(v).unwrap_or_else(|| v.to_string());
    Ok(match conv {
        Conv::Keep | Conv::Json => v,
        Conv::List => match v {
            Json::Array(_) => v,
            other => Json::Array(vec![other]),
        },
        Conv::String => match &v {
            Json::String(_) => v,
            Json::Number(_) | Json::Bool(_) => Json::String(json_text(&v).unwrap_or_default()),
            _ => Json::String(v.to_string()),
        },
        Conv::Lower => recase(v, str::make_ascii_lowercase, str::to_lowercase)?,
        Conv::Upper => recase(v, str::make_ascii_uppercase, str::to_uppercase)?,
        Conv::Int | Conv::Port => {
            let n = match &v {
                Json::Number(n) => n
                    .as_i64()
                    .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
                Json::String(s) => parse_int(s),
                Json::Bool(b) => Some(*b as i64),
                _ => None,
            }
            .ok_or_else(|| bad(&v))?;
            if conv == Conv::Port && !(0..=65535).contains(&n) {
                return Err(bad(&v));
            }
            Json::from(n)
        }
        Conv::Float => {
            let f = match &v {
                Json::Number(n) => n.as_f64(),
                Json::String(s) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .ok_or_else(|| bad(&v))?;
            serde_json::Number::from_f64(f)
                .map(Json::Number)
                .ok_or_else(|| bad(&v))?
        }
        Conv::Bool => match json_text(&v).map(|s| s.to_ascii_lowercase()).as_deref() {
            Some("true" | "t" | "1" | "yes" | "y" | "success") => Json::Bool(true),
            Some("false" | "f" | "0" | "no" | "n" | "failure") => Json::Bool(false),
            _ => return Err(bad(&v)),
        },
        Conv::Time => {
            let ms = match &v {
                Json::Number(n) => n.as_f64().and_then(crate::timeparse::epoch_to_ms),
                Json::String(s) => crate::timeparse::parse_str_ms(s),
                _ => None,
            }
            .ok_or_else(|| bad(&v))?;
            Json::from(ms)
        }
        Conv::Ip => {
            let Json::String(s) = &v else {
                return Err(bad(&v));
            };
            let t = s.trim().trim_start_matches('[').trim_end_matches(']');
            let t = t
                .strip_prefix("::ffff:")
                .filter(|r| r.contains('.'))
                .unwrap_or(t);
            // IPv4 is read as the standard parser reads it (`iptext::ipv4`), which takes only
            // the canonical dotted-decimal form (four decimal octets, no leading zeros), what
            // `to_string` writes: the text is kept instead of formatted again (tested below).
            // Anything else is IPv6 text or not an address.
            if crate::iptext::ipv4(t.as_bytes()).is_some() {
                if t.len() == s.len() {
                    v
                } else {
                    Json::String(t.to_string())
                }
            } else {
                let ip = t.parse::<std::net::Ipv6Addr>().map_err(|_| s.clone())?;
                Json::String(ip.to_string())
            }
        }
    })
}

fn parse_int(s: &str) -> Option<i64> {
    let s = s.trim();
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return i64::from_str_radix(hex, 16).ok();
    }
    s.parse::<i64>().ok().or_else(|| {
        s.parse::<f64>()
            .ok()
            .filter(|f| f.fract() == 0.0 && f.is_finite())
            .map(|f| f as i64)
    })
}

fn parse_conv(s: Option<&str>) -> anyhow::Result<Conv> {
    Ok(match s {
        None => Conv::Keep,
        Some("string") => Conv::String,
        Some("int") => Conv::Int,
        Some("float") => Conv::Float,
        Some("bool") => Conv::Bool,
        Some("time") => Conv::Time,
        Some("ip") => Conv::Ip,
        Some("port") => Conv::Port,
        Some("lower") => Conv::Lower,
        Some("upper") => Conv::Upper,
        Some("json") => Conv::Json,
        Some("list") => Conv::List,
        Some(other) => bail!("unknown conversion `as = \"{other}\"`"),
    })
}

fn compile_rule(target: &str, def: &FieldDef, reads: &mut Vec<String>) -> anyhow::Result<Rule> {
    let full;
    let def: &FieldRuleDef = match def {
        FieldDef::Path(p) => {
            full = FieldRuleDef {
                from: Some(super::spec::PathList::One(p.clone())),
                ..Default::default()
            };
            &full
        }
        FieldDef::Rule(r) => r,
    };
    let sources = [
        def.from.is_some(),
        def.constant.is_some(),
        def.template.is_some(),
    ];
    if sources.iter().filter(|s| **s).count() != 1 {
        bail!("`{target}`: give exactly one of `from`, `const`, `template`");
    }
    let source = if let Some(from) = &def.from {
        let paths = from.paths();
        reads.extend(paths.iter().map(|p| p.to_string()));
        Source::Paths(paths.into_iter().map(CPath::new).collect())
    } else if let Some(c) = &def.constant {
        Source::Const(toml_to_json(c))
    } else {
        let t = def.template.as_deref().unwrap_or_default();
        let parts =
            path::template_parts(t).with_context(|| format!("unclosed `{{` in template `{t}`"))?;
        for p in &parts {
            if let TplPart::Field(p) = p {
                reads.push(p.raw().to_string());
            }
        }
        Source::Template(parts)
    };
    let when = def.when.as_ref().map(Cond::compile).transpose()?;
    if let Some(w) = &when {
        w.paths(reads);
    }
    let each = match &def.each {
        Some(sub) => {
            let mut ignored = Vec::new();
            Some(
                sub.iter()
                    .map(|(t, d)| compile_rule(t, d, &mut ignored))
                    .collect::<anyhow::Result<Vec<_>>>()?,
            )
        }
        None => None,
    };
    Ok(Rule {
        target: target.to_string(),
        target_path: path::SetPath::new(target),
        source,
        split: def.split.clone(),
        regex: def
            .regex
            .as_deref()
            .map(|r| crate::cond::shared_regex(r, false).map(Cut::new))
            .transpose()
            .with_context(|| format!("`{target}`: regex"))?,
        map: def.map.as_ref().map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect()
        }),
        map_default: def.map_default.as_ref().map(toml_to_json),
        map_keep_unknown: def.map_keep_unknown,
        conv: parse_conv(def.conv.as_deref()).with_context(|| format!("`{target}`"))?,
        default: def.default.as_ref().map(toml_to_json),
        when,
        each,
    })
}

fn compile_class(def: &MappingDef, class: &ClassDef) -> anyhow::Result<CompiledClass> {
    if class.class_uid != 0 && crate::ocsf::class(class.class_uid).is_none() {
        bail!(
            "class_uid {} is not an OCSF 1.8 class this build knows",
            class.class_uid
        );
    }
    let mut merged: BTreeMap<&str, &FieldDef> =
        def.fields.iter().map(|(k, v)| (k.as_str(), v)).collect();
    for (k, v) in &class.fields {
        merged.insert(k.as_str(), v);
    }
    let mut reads = Vec::new();
    let when = class
        .when
        .as_ref()
        .map(Cond::compile)
        .transpose()
        .context("when")?;
    if let Some(w) = &when {
        w.paths(&mut reads);
    }
    let mut rules = Vec::new();
    for (target, fd) in merged {
        if super::DERIVED.contains(&target) {
            bail!("`{target}` is derived from class_uid, activity_id and severity_id; a mapping cannot set it");
        }
        rules.push(compile_rule(target, fd, &mut reads)?);
    }
    let paths = path_roles(reads.iter().map(String::as_str), &def.transport);
    let name = class.name.clone().unwrap_or_else(|| {
        format!(
            "{}:{}",
            def.id,
            crate::ocsf::class_name(class.class_uid)
                .to_lowercase()
                .replace(' ', "_")
        )
    });
    Ok(CompiledClass {
        name: name.into(),
        when,
        class_uid: class.class_uid,
        activity_id: class.activity_id,
        severity_id: class.severity_id,
        rules,
        paths,
    })
}

/// Write a rule's value: a borrowed one by reference ([`path::Builder::set_const`]).
fn set<'m>(alert: &mut path::Builder<'m>, target: &'m path::SetPath, v: Cow<'m, Json>) {
    match v {
        Cow::Borrowed(c) => alert.set_const(target, c),
        Cow::Owned(v) => alert.set(target, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mapping(src: &str) -> Mapping {
        let def: MappingDef = toml::from_str(src).unwrap();
        Mapping::compile(&def).unwrap()
    }

    fn run(m: &Mapping, json: &str) -> Mapped {
        let mut buf = json.as_bytes().to_vec();
        let v = simd_json::to_borrowed_value(&mut buf).unwrap();
        m.apply(&v)
    }

    const M: &str = r#"
id = "t"
version = "1"
name = "test"
product = { name = "Test", vendor_name = "Acme" }
transport = ["@version"]
[fields]
time = { from = ["ts", "timestamp"], as = "time" }
"src_endpoint.ip" = { from = "src", as = "ip" }
[[class]]
when = { field = "kind", eq = "login" }
class_uid = 3002
activity_id = 1
[class.fields]
"user.name" = { template = "{dom}\\{user}" }
"status_id" = { from = "ok", as = "bool", map = { "true" = 1, "false" = 2 } }
"severity_id" = { from = "sev", map = { "high" = 4 }, map_default = 2 }
"user.groups" = { from = "groups", split = ";", each = { name = "." } }
"logon_type_id" = { from = "lt", as = "int" }
"auth_protocol" = { from = "proto", as = "upper", map = { NTLM = "NTLM" }, map_keep_unknown = true }
"file.hashes" = { from = "hashes", split = ",", each = { algorithm = { from = ".", regex = "^([^=]+)=" }, value = { from = ".", regex = "=(.+)$" } } }
[[class]]
class_uid = 4001
activity_id = 6
[class.fields]
"dst_endpoint.port" = { from = "dport", as = "port" }
"#;

    /// The unmapped walk over every kind of member: read by a rule (left out), a transport
    /// field nested in an object (copied whole, not counted), an object partly read, an object
    /// nothing beneath is read from (copied without its null values), a key holding a dot next
    /// to the nested object of the same path, and null values at every depth.
    #[test]
    fn the_unmapped_walk_leaves_out_what_is_read_and_keeps_the_rest() {
        let m = mapping(
            r#"
id = "u"
version = "1"
name = "unmapped"
transport = ["env.meta", "v"]
[fields]
"src_endpoint.ip" = "net.src"
"user.name" = "who.name"
"device.name" = "a.b"
"dst_endpoint.hostname" = "net.peer.name"
[[class]]
class_uid = 4001
"#,
        );
        let out = run(
            &m,
            r#"{"net":{"src":"10.0.0.1","dst":"10.0.0.2","deep":{"x":1,"y":null},"peer.name":"db1","peer.os":"linux"},
                "env":{"meta":{"k":[1,2],"n":null},"host":"h1"},"v":"2",
                "who":{"name":"ann","id":"-"},
                "a.b":"dotted","a":{"b":"nested","c":3},
                "raw":{"one":{"two":{"three":"t","gone":""}},"none":{"x":null}},
                "z":null}"#,
        );
        let a = Json::Object(out.alert);
        assert_eq!(a["src_endpoint"]["ip"], "10.0.0.1");
        assert_eq!(
            a["device"]["name"], "nested",
            "the nested object is tried before a key holding the dot"
        );
        assert_eq!(
            a["unmapped"],
            serde_json::json!({
                "net": {"dst": "10.0.0.2", "deep": {"x": 1}, "peer.os": "linux"},
                "env": {"meta": {"k": [1, 2], "n": null}, "host": "h1"},
                "v": "2",
                "a": {"c": 3},
                "raw": {"one": {"two": {"three": "t"}}},
            })
        );
        // A key holding dots beneath an object is the path its segments spell: `peer.name`
        // is read, `peer.os` is not.
        assert_eq!(a["dst_endpoint"]["hostname"], "db1");
        // dst, deep.x, peer.os, host, a.c and raw's three: transport fields are not counted.
        assert_eq!(out.unmapped_leaves, 6);
    }

    #[test]
    fn maps_fields_and_computes_unmapped() {
        let m = mapping(M);
        let out = run(
            &m,
            r#"{"kind":"login","ts":"2024-01-02T03:04:05Z","src":"10.1.2.3","dom":"CORP","user":"ann",
                "ok":"true","sev":"odd","lt":"0x3","proto":"kerberos","hashes":"SHA1=ab12,MD5=cd34","extra":{"a":1,"b":"-"},"@version":"1","groups":"a;b"}"#,
        );
        assert_eq!(out.class_uid, 3002);
        let a = Json::Object(out.alert);
        assert_eq!(a["time"], 1_704_164_645_000i64);
        assert_eq!(a["user"]["name"], "CORP\\ann");
        assert_eq!(a["status_id"], 1);
        assert_eq!(a["severity_id"], 2);
        assert_eq!(a["logon_type_id"], 3);
        assert_eq!(
            a["auth_protocol"], "KERBEROS",
            "map_keep_unknown keeps what the map lacks"
        );
        assert_eq!(
            a["file"]["hashes"],
            serde_json::json!([{"algorithm": "SHA1", "value": "ab12"}, {"algorithm": "MD5", "value": "cd34"}])
        );
        assert_eq!(a["src_endpoint"]["ip"], "10.1.2.3");
        assert_eq!(a["metadata"]["product"]["vendor_name"], "Acme");
        assert_eq!(
            a["unmapped"],
            serde_json::json!({"extra": {"a": 1}, "@version": "1"})
        );
        assert_eq!(out.unmapped_leaves, 1, "transport fields are not counted");
        assert!(out.gaps.is_empty(), "{:?}", out.gaps);
    }

    #[test]
    fn second_rule_catches_the_rest_and_bad_values_become_gaps() {
        let m = mapping(M);
        let out = run(
            &m,
            r#"{"kind":"flow","timestamp":"yesterday","src":"not-an-ip","dport":70000}"#,
        );
        assert_eq!(out.class_uid, 4001);
        let codes: Vec<_> = out
            .gaps
            .iter()
            .map(|g| (g.code, g.field.clone().unwrap()))
            .collect();
        assert!(codes.contains(&("time_unparseable", "time".into())));
        assert!(codes.contains(&("value_invalid", "src_endpoint.ip".into())));
        assert!(codes.contains(&("value_invalid", "dst_endpoint.port".into())));
        let a = Json::Object(out.alert);
        assert!(a.get("time").is_none());
    }

    #[test]
    fn no_matching_class_is_a_base_event_with_everything_unmapped() {
        let src = M.replace(
            "[[class]]\nclass_uid = 4001",
            "[[class]]\nwhen = { has = \"never\" }\nclass_uid = 4001",
        );
        let m = mapping(&src);
        let out = run(&m, r#"{"kind":"other","x":1}"#);
        assert_eq!(out.class_uid, 0);
        assert_eq!(out.gaps[0].code, "class_unmapped");
        assert_eq!(Json::Object(out.alert)["unmapped"]["x"], 1);
    }

    #[test]
    fn bad_definitions_are_rejected() {
        let bad = M.replace("as = \"port\"", "as = \"portal\"");
        assert!(Mapping::compile(&toml::from_str(&bad).unwrap()).is_err());
        let bad = M.replace("class_uid = 4001", "class_uid = 4242");
        assert!(Mapping::compile(&toml::from_str(&bad).unwrap()).is_err());
        let bad = M.replace("\"logon_type_id\" =", "\"type_name\" =");
        let err = Mapping::compile(&toml::from_str(&bad).unwrap()).unwrap_err();
        assert!(format!("{err:#}").contains("derived"), "{err:#}");
    }

    /// `as = "ip"` keeps an IPv4 text as it came only because the standard parser accepts
    /// nothing but the form `to_string` writes: checked over octets written with leading
    /// zeros, signs, spaces, too many or too few parts and out-of-range values.
    #[test]
    fn ipv4_texts_the_parser_accepts_are_the_canonical_form() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let pieces = [
            "0", "00", "01", "1", "9", "10", "099", "255", "256", "300", "+1", " 1", "", "1a",
            "0x1",
        ];
        let mut accepted = 0;
        for _ in 0..20_000 {
            let parts = rng.random_range(3..=5);
            let text: Vec<String> = (0..parts)
                .map(|_| match rng.random_range(0..3) {
                    0 => pieces[rng.random_range(0..pieces.len())].to_string(),
                    _ => rng.random_range(0..=260u32).to_string(),
                })
                .collect();
            let text = text.join(".");
            if let Ok(ip) = text.parse::<std::net::Ipv4Addr>() {
                accepted += 1;
                assert_eq!(ip.to_string(), text);
            }
        }
        assert!(
            accepted > 1_000,
            "the sample should hold many valid addresses: {accepted}"
        );
    }

    #[test]
    fn ip_lower_and_upper_conversions() {
        let ip = |s: Json| convert(Conv::Ip, s);
        assert_eq!(ip(Json::from("10.1.2.3")), Ok(Json::from("10.1.2.3")));
        assert_eq!(ip(Json::from(" [10.1.2.3] ")), Ok(Json::from("10.1.2.3")));
        assert_eq!(
            ip(Json::from("::ffff:10.1.2.3")),
            Ok(Json::from("10.1.2.3"))
        );
        assert_eq!(
            ip(Json::from("::FFFF:10.1.2.3")),
            Ok(Json::from("::ffff:10.1.2.3"))
        );
        assert_eq!(ip(Json::from("[FE80:0:0::1]")), Ok(Json::from("fe80::1")));
        assert_eq!(ip(Json::from("010.1.2.3")), Err("010.1.2.3".to_string()));
        assert_eq!(ip(Json::from(7)), Err("7".to_string()));
        assert_eq!(ip(Json::Null), Err("null".to_string()));
        for text in ["Admin", "ÄRGER Straße", "ǅ", "MiXeD-42", ""] {
            let lower = convert(Conv::Lower, Json::from(text));
            assert_eq!(lower, Ok(Json::from(text.to_lowercase())), "{text}");
            let upper = convert(Conv::Upper, Json::from(text));
            assert_eq!(upper, Ok(Json::from(text.to_uppercase())), "{text}");
        }
        assert_eq!(convert(Conv::Lower, Json::from(12)), Ok(Json::from("12")));
        assert_eq!(convert(Conv::Upper, Json::Null), Err("null".to_string()));
    }

    /// A regex applied to a string straight from the record and to a value built first
    /// (a number's text, a template) keeps the same part.
    #[test]
    fn regex_on_record_strings_and_on_other_values() {
        let m = mapping(
            r#"
id = "r"
version = "1"
name = "r"
product = { name = "R", vendor_name = "R" }
[[class]]
class_uid = 1007
activity_id = 1
[class.fields]
"process.name" = { from = "image", regex = '([^\\]+)$' }
"process.pid" = { from = "pid", regex = '^(\d\d)', as = "int" }
"process.uid" = { template = "{image}", regex = '^([A-Z]):' }
"process.file.name" = { from = "empty", regex = '(x*)', default = "none" }
"#,
        );
        let out = Json::Object(
            run(
                &m,
                r#"{"image":"C:\\Windows\\cmd.exe","pid":4321,"empty":"abc"}"#,
            )
            .alert,
        );
        assert_eq!(out["process"]["name"], "cmd.exe");
        assert_eq!(out["process"]["pid"], 43);
        assert_eq!(out["process"]["uid"], "C");
        assert_eq!(out["process"]["file"]["name"], "none");
    }
}
