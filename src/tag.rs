//! Tag: declarative rules (`enrichers/tags.toml`) that attach namespaced tags such as
//! `attack:T1059.001`, `asset:crown_jewel` or `user:privileged`.
//!
//! A rule's `when` is a [condition](crate::cond) over a view of the event:
//! - OCSF attributes of the alert at their paths (`class_uid`, `process.cmd_line`, ...);
//! - `event.hour_utc` (0–23) and `event.weekday` (`mon`..`sun`) derived from `time`;
//! - with `entity = "asset"` or `"user"`, the rule is tried once per matched entity of that
//!   kind and `asset.<field>` / `user.<field>` read that entity's inventory record, plus
//!   `asset.attribute` / `user.attribute`, the alert attribute it was matched on.
//!
//! A tag may hold `{path}` placeholders filled from the view; a tag whose placeholder is
//! absent is not attached.

use crate::cond::{Cond, CondDef, Doc, Op};
use crate::enrich::{EnrichOutput, Entity};
use crate::path::{CPath, TemplatePart as Part};
use rustc_hash::FxHashMap;
use serde::Deserialize;
use serde_json::Value as Json;
use std::borrow::Cow;
use std::cell::Cell;
use std::collections::BTreeSet;

/// A rules file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulesFile {
    #[serde(default, rename = "rule")]
    pub rules: Vec<RuleDef>,
}

/// One tag rule.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Unique id, shown by `alertctx explain`.
    pub id: String,
    /// What the rule means, for people.
    #[serde(default)]
    pub description: String,
    /// Tags to attach, `namespace:value`, optionally with `{path}` placeholders.
    pub tags: Vec<String>,
    /// `asset` or `user`: evaluate once per matched entity of that kind.
    pub entity: Option<String>,
    /// When the rule holds. Absent: always.
    pub when: Option<CondDef>,
}

struct Rule {
    id: String,
    tags: Vec<Template>,
    entity: Option<&'static str>,
    when: Option<Cond>,
    /// The `class_uid` the condition requires, as text, when it requires one (an `eq` on
    /// `class_uid` among its top-level `all`): for an alert of another class the condition is
    /// false, and it is not evaluated. Seven of the sixteen embedded rules have one.
    class: Option<String>,
}

/// The path of an alert's class.
const CLASS_UID: &str = "class_uid";

/// The text an `eq` on `class_uid` at the top of `when` compares with (see [`Rule::class`]).
fn required_class(when: Option<&Cond>) -> Option<String> {
    let conds = match when? {
        Cond::All(cs) => cs.as_slice(),
        c => std::slice::from_ref(c),
    };
    conds.iter().find_map(|c| match c {
        Cond::Test(p, Op::Eq(v), false) if p.raw() == CLASS_UID => Some(v.clone()),
        _ => None,
    })
}

/// A tag as written, split at its `{path}` placeholders when the rules are loaded.
enum Template {
    /// No placeholder: the tag itself.
    Plain(String),
    /// Text and placeholders in order.
    Parts(Vec<Part>),
    /// A `{` with no `}` after it: never attached.
    Unclosed,
}

impl Template {
    fn new(tag: &str) -> Template {
        if !tag.contains('{') {
            return Template::Plain(tag.to_string());
        }
        match crate::path::template_parts(tag) {
            Some(parts) => Template::Parts(parts),
            None => Template::Unclosed,
        }
    }

    /// The tag for one view; `None` when a placeholder is absent.
    fn fill(&self, view: &View) -> Option<String> {
        match self {
            Template::Plain(tag) => Some(tag.clone()),
            Template::Unclosed => None,
            Template::Parts(parts) => {
                let mut out = String::new();
                for part in parts {
                    match part {
                        Part::Lit(t) => out.push_str(t),
                        Part::Field(p) => out.push_str(&view.text(p)?),
                    }
                }
                Some(out)
            }
        }
    }
}

/// Embedded default rules, used when the configuration names no rules file.
pub const EMBEDDED_RULES: &str = include_str!("../enrichers/tags.toml");

pub struct Tagger {
    rules: Vec<Rule>,
    /// Every path the rules read, each once: the alert's values there are looked up at most
    /// once a record ([`Reads`]).
    paths: Vec<String>,
    /// The rules' compiled paths, by [`path_identity`], to their index in `paths`: a rule
    /// finds its value's slot with one probe instead of comparing its path with every other.
    slots: FxHashMap<usize, usize>,
}

/// Which compiled path this is: the address of its text, which stays where it is for as long
/// as the path lives (the rules own theirs, so no other path can be at that address while
/// the [`Tagger`] exists). A path built elsewhere is not in the map and is looked up by name.
fn path_identity(p: &CPath) -> usize {
    p.raw().as_ptr() as usize
}

/// Tags of one event and the rules that produced them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Tagged {
    pub tags: BTreeSet<String>,
    pub fired: Vec<(String, String)>,
}

impl Tagger {
    pub fn from_toml(text: &str) -> anyhow::Result<Tagger> {
        let file: RulesFile = toml::from_str(text)?;
        let mut rules = Vec::new();
        let mut ids = BTreeSet::new();
        for r in file.rules {
            if !ids.insert(r.id.clone()) {
                anyhow::bail!("two tag rules share the id `{}`", r.id);
            }
            let entity = match r.entity.as_deref() {
                None => None,
                Some("asset") => Some("asset"),
                Some("user") => Some("user"),
                Some(other) => anyhow::bail!(
                    "rule `{}`: entity must be asset or user, not `{other}`",
                    r.id
                ),
            };
            for t in &r.tags {
                if !t.contains(':') {
                    anyhow::bail!(
                        "rule `{}`: tag `{t}` has no namespace (write `namespace:value`)",
                        r.id
                    );
                }
            }
            let when = r
                .when
                .as_ref()
                .map(Cond::compile)
                .transpose()
                .map_err(|e| anyhow::anyhow!("rule `{}`: {e}", r.id))?;
            rules.push(Rule {
                id: r.id,
                tags: r.tags.iter().map(|t| Template::new(t)).collect(),
                entity,
                class: required_class(when.as_ref()),
                when,
            });
        }
        // Every path the rules read, each once, and each compiled path, by identity, to its
        // slot among them.
        let mut paths: Vec<String> = Vec::new();
        let mut slots = FxHashMap::default();
        for rule in &rules {
            rule.for_each_path(&mut |p| {
                let i = paths.iter().position(|q| q == p.raw()).unwrap_or_else(|| {
                    paths.push(p.raw().to_string());
                    paths.len() - 1
                });
                slots.insert(path_identity(p), i);
            });
        }
        Ok(Tagger {
            rules,
            paths,
            slots,
        })
    }

    pub fn embedded() -> anyhow::Result<Tagger> {
        Self::from_toml(EMBEDDED_RULES)
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn tag(&self, alert: &Json, enrich: &EnrichOutput) -> Tagged {
        let derived = derive_time(alert);
        let reads = Reads {
            alert,
            paths: &self.paths,
            slots: &self.slots,
            values: vec![Cell::new(None); self.paths.len()],
        };
        // The alert's class as `class_uid` conditions read it (the same text): one lookup for
        // every rule that names a class.
        let class = alert.get(CLASS_UID).and_then(crate::cond::json_text);
        let mut out = Tagged::default();
        for rule in &self.rules {
            if rule.class.is_some() && rule.class.as_deref() != class.as_deref() {
                continue;
            }
            let view = |entity| View {
                reads: &reads,
                derived: &derived,
                entity,
            };
            match rule.entity {
                None => rule.apply(&view(None), &mut out),
                Some(kind) => {
                    for e in enrich.entities.iter().filter(|e| e.kind == kind) {
                        rule.apply(&view(Some(e)), &mut out);
                    }
                }
            }
        }
        out
    }
}

impl Rule {
    /// Every compiled path the rule reads: its condition's, then its tags' placeholders.
    fn for_each_path<'r>(&'r self, f: &mut dyn FnMut(&'r CPath)) {
        if let Some(when) = &self.when {
            when.for_each_path(f);
        }
        for t in &self.tags {
            if let Template::Parts(parts) = t {
                for part in parts {
                    if let Part::Field(p) = part {
                        f(p);
                    }
                }
            }
        }
    }

    /// Attach the rule's tags when it holds for `view`.
    fn apply(&self, view: &View, out: &mut Tagged) {
        if self.when.as_ref().is_none_or(|w| w.eval(view)) {
            for t in &self.tags {
                if let Some(tag) = t.fill(view) {
                    if out.tags.insert(tag.clone()) {
                        out.fired.push((self.id.clone(), tag));
                    }
                }
            }
        }
    }
}

struct Derived {
    hour: Option<&'static str>,
    weekday: Option<&'static str>,
}

/// `event.hour_utc` as text, by hour.
const HOURS: [&str; 24] = [
    "0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
    "17", "18", "19", "20", "21", "22", "23",
];

fn derive_time(alert: &Json) -> Derived {
    use chrono::{Datelike, TimeZone, Timelike};
    let dt = alert
        .get("time")
        .and_then(Json::as_i64)
        .and_then(|ms| chrono::Utc.timestamp_millis_opt(ms).single());
    Derived {
        hour: dt.map(|d| HOURS[d.hour() as usize]),
        weekday: dt.map(|d| {
            ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                [d.weekday().num_days_from_monday() as usize]
        }),
    }
}

/// The alert of one record, with the values at the rules' paths kept once looked up: rules
/// test the same few attributes (`class_uid` in seven of the embedded ones), and each lookup
/// is a tree search per segment.
struct Reads<'a> {
    alert: &'a Json,
    /// [`Tagger::paths`].
    paths: &'a [String],
    /// [`Tagger::slots`].
    slots: &'a FxHashMap<usize, usize>,
    /// By index in `paths`: `None` until looked up, then what the lookup found.
    values: Vec<Cell<Option<Option<&'a Json>>>>,
}

impl<'a> Reads<'a> {
    /// The alert's value at `path`, as [`crate::path::get_cpath`] finds it.
    fn get(&self, path: &CPath) -> Option<&'a Json> {
        let raw = path.raw();
        let slot = match self.slots.get(&path_identity(path)) {
            // The identity is checked against the name, which costs one comparison.
            Some(&i) if self.paths[i] == raw => Some(i),
            _ => self.paths.iter().position(|p| p == raw),
        };
        let Some(i) = slot else {
            return crate::path::get_cpath(self.alert, path);
        };
        if let Some(found) = self.values[i].get() {
            return found;
        }
        let found = crate::path::get_cpath(self.alert, path);
        self.values[i].set(Some(found));
        found
    }
}

struct View<'a> {
    reads: &'a Reads<'a>,
    derived: &'a Derived,
    entity: Option<&'a Entity>,
}

/// Where a view reads a path from.
enum Source<'e, 'p> {
    /// `event.hour_utc`, `event.weekday`.
    Derived(Option<&'static str>),
    /// `asset.<rest>` or `user.<rest>` of the view's entity.
    Entity(&'e Entity, &'p str),
    /// Anything else: the alert.
    Alert,
}

impl View<'_> {
    fn source<'p>(&self, path: &'p CPath) -> Source<'_, 'p> {
        let raw = path.raw();
        match raw {
            "event.hour_utc" => return Source::Derived(self.derived.hour),
            "event.weekday" => return Source::Derived(self.derived.weekday),
            _ => {}
        }
        if let Some(e) = self.entity {
            if let Some(rest) = raw.strip_prefix(e.kind).and_then(|r| r.strip_prefix('.')) {
                return Source::Entity(e, rest);
            }
        }
        Source::Alert
    }
}

impl Doc for View<'_> {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        match self.source(path) {
            Source::Derived(t) => t.map(Cow::Borrowed),
            Source::Entity(e, "attribute") => Some(Cow::Borrowed(&e.attribute)),
            Source::Entity(e, rest) => match crate::path::get(e.context.value(), rest)? {
                // Lists (asset tags, user groups) read as their items joined by commas.
                Json::Array(items) => Some(Cow::Owned(
                    items
                        .iter()
                        .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                        .collect::<Vec<_>>()
                        .join(","),
                )),
                found => crate::cond::json_text(found),
            },
            Source::Alert => crate::cond::json_text(self.reads.get(path)?),
        }
    }

    fn present(&self, path: &CPath) -> bool {
        self.test_text(path, &mut |_| true).is_some()
            || crate::path::holds_value(self.reads.get(path))
    }

    fn test_text(&self, path: &CPath, test: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        match self.source(path) {
            Source::Alert => crate::cond::test_json_text(self.reads.get(path)?, test),
            _ => self.text(path).map(|t| test(&t)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const RULES: &str = r#"
[[rule]]
id = "powershell"
tags = ["attack:T1059.001"]
when = { all = [{ field = "class_uid", eq = 1007 }, { field = "process.file.name", eq = "powershell.exe", ci = true }] }

[[rule]]
id = "crown-jewel"
entity = "asset"
tags = ["asset:crown_jewel", "asset:{asset.business_unit}"]
when = { field = "asset.criticality", eq = "crown_jewel" }

[[rule]]
id = "off-hours"
tags = ["time:off_hours"]
when = { all = [{ field = "class_uid", eq = 3002 }, { any = [{ field = "event.hour_utc", lte = 5 }, { field = "event.hour_utc", gte = 20 }] }] }
"#;

    fn entity(crit: &str) -> Entity {
        Entity {
            kind: "asset",
            attribute: "dst_endpoint.ip".into(),
            value: "10.30.5.10".into(),
            matched_by: "ip",
            enricher: "cmdb".into(),
            context: crate::enrich::Context::new(
                json!({"criticality": crit, "business_unit": "payments"}),
            ),
        }
    }

    #[test]
    fn rules_for_another_class_are_passed_over_with_the_outcome_of_evaluating_them() {
        let gated = Tagger::embedded().unwrap();
        let classes: Vec<_> = gated
            .rules
            .iter()
            .filter_map(|r| r.class.as_deref())
            .collect();
        assert_eq!(
            classes,
            ["3002", "1007", "1007", "1007", "2004", "3002", "3002"]
        );
        // A rule whose condition names its class anywhere but at the top of an `all` (or
        // with `ci`) is evaluated as it is.
        let t = Tagger::from_toml(
            r#"
[[rule]]
id = "any"
tags = ["t:any"]
when = { any = [{ field = "class_uid", eq = 1007 }, { field = "x", eq = 1 }] }
[[rule]]
id = "ci"
tags = ["t:ci"]
when = { field = "class_uid", eq = "3002", ci = true }
[[rule]]
id = "alone"
tags = ["t:alone"]
when = { field = "class_uid", eq = 3002 }
"#,
        )
        .unwrap();
        let found: Vec<_> = t.rules.iter().map(|r| r.class.as_deref()).collect();
        assert_eq!(found, [None, None, Some("3002")]);
        // Every rule evaluated, as before the class was looked at: the reference.
        let mut all = Tagger::embedded().unwrap();
        all.rules.iter_mut().for_each(|r| r.class = None);
        let asset = entity("crown_jewel");
        let class_values = [
            json!(3002),
            json!(1007),
            json!(2004),
            json!(4001),
            json!("3002"),
            json!("1007"),
            json!(3002.0),
            json!(true),
            json!(null),
            json!([3002]),
            json!({"a": 1}),
        ];
        let mut fired = 0;
        for class in class_values.iter().map(Some).chain([None]) {
            for (status, activity, product, file) in [
                (2, 1, "Microsoft Windows", "powershell.exe"),
                (1, 1, "AWS CloudTrail", "CMD.EXE"),
                (1, 2, "Okta", "bash"),
            ] {
                let mut alert = json!({
                    "status_id": status, "activity_id": activity, "time": 1700000000000u64,
                    "metadata": {"product": {"name": product}, "event_code": "4672"},
                    "process": {"file": {"name": file}, "cmd_line": "powershell -enc AAAA"},
                    "finding_info": {"title": "ET SCAN nmap"},
                });
                if let Some(c) = class {
                    alert["class_uid"] = c.clone();
                }
                let enrich = EnrichOutput {
                    entities: vec![asset.clone()],
                    ..Default::default()
                };
                let want = all.tag(&alert, &enrich);
                assert_eq!(gated.tag(&alert, &enrich), want, "{alert}");
                fired += want.fired.len();
            }
        }
        assert!(fired > 40, "the alerts fire {fired} rules");
    }

    #[test]
    fn every_path_a_rule_reads_has_its_slot() {
        let t = Tagger::embedded().unwrap();
        let mut read = 0;
        for rule in &t.rules {
            rule.for_each_path(&mut |p| {
                read += 1;
                let i = t.slots[&path_identity(p)];
                assert_eq!(t.paths[i], p.raw());
            });
        }
        assert!(read > 20, "the embedded rules read {read} paths");
        // A path compiled elsewhere, with a name the rules use, finds the same slot by name.
        let alert = json!({"class_uid": 3002, "metadata": {"event_code": "4672"}});
        let reads = Reads {
            alert: &alert,
            paths: &t.paths,
            slots: &t.slots,
            values: vec![Cell::new(None); t.paths.len()],
        };
        let elsewhere = CPath::new("metadata.event_code");
        assert!(!t.slots.contains_key(&path_identity(&elsewhere)));
        assert_eq!(reads.get(&elsewhere), Some(&json!("4672")));
        assert_eq!(reads.get(&CPath::new("not.read.by.rules")), None);
    }

    #[test]
    fn rules_fire_on_alert_entities_and_time() {
        let t = Tagger::from_toml(RULES).unwrap();
        let alert = json!({"class_uid": 1007, "process": {"file": {"name": "PowerShell.EXE"}}});
        let out = t.tag(&alert, &EnrichOutput::default());
        assert_eq!(
            out.tags.iter().collect::<Vec<_>>(),
            vec!["attack:T1059.001"]
        );

        let enrich = EnrichOutput {
            entities: vec![entity("low"), entity("crown_jewel")],
            ..Default::default()
        };
        let out = t.tag(&json!({"class_uid": 4001}), &enrich);
        assert_eq!(
            out.tags.iter().cloned().collect::<Vec<_>>(),
            vec!["asset:crown_jewel", "asset:payments"]
        );
        assert_eq!(out.fired[0].0, "crown-jewel");

        // 2024-01-01T02:00:00Z is 02h UTC: off hours.
        let out = t.tag(
            &json!({"class_uid": 3002, "time": 1_704_074_400_000i64}),
            &EnrichOutput::default(),
        );
        assert!(out.tags.contains("time:off_hours"));
        let out = t.tag(
            &json!({"class_uid": 3002, "time": 1_704_110_400_000i64}),
            &EnrichOutput::default(),
        );
        assert!(out.tags.is_empty(), "12h UTC is office hours");
    }

    #[test]
    fn templates_and_paths_read_by_several_rules() {
        let t = Tagger::from_toml(
            r#"
[[rule]]
id = "a"
tags = ["class:{class_uid}", "dev:{device.hostname}-{activity_id}!", "bad:{class_uid", "gone:{nope}"]
when = { field = "class_uid", eq = 1007 }

[[rule]]
id = "b"
tags = ["b:{device.hostname}"]
when = { all = [{ has = "class_uid" }, { field = "class_uid", in = [1, 1007] }, { not = { has = "nope" } }] }

[[rule]]
id = "c"
tags = ["c:x"]
when = { field = "class_uid", eq = 3002 }

[[rule]]
id = "d"
tags = ["d:{resources.1.uid}"]
when = { field = "device.hostname", prefix = "WS-", ci = true }
"#,
        )
        .unwrap();
        let alert = json!({"class_uid": 1007, "activity_id": 1, "device": {"hostname": "ws-1"},
            "resources": [{"uid": "r0"}, {"uid": "r1"}]});
        let out = t.tag(&alert, &EnrichOutput::default());
        assert_eq!(
            out.fired,
            [
                ("a".to_string(), "class:1007".to_string()),
                ("a".to_string(), "dev:ws-1-1!".to_string()),
                ("b".to_string(), "b:ws-1".to_string()),
                ("d".to_string(), "d:r1".to_string()),
            ]
        );
        assert!(t.tag(&json!({}), &EnrichOutput::default()).tags.is_empty());
    }

    #[test]
    fn rejects_bad_rules() {
        assert!(Tagger::from_toml("[[rule]]\nid='a'\ntags=['nonamespace']").is_err());
        assert!(Tagger::from_toml("[[rule]]\nid='a'\ntags=['a:b']\nentity='host'").is_err());
        assert!(Tagger::from_toml(
            "[[rule]]\nid='a'\ntags=['a:b']\n[[rule]]\nid='a'\ntags=['a:c']"
        )
        .is_err());
    }

    #[test]
    fn embedded_rules_load() {
        assert!(!Tagger::embedded().unwrap().is_empty());
    }
}
