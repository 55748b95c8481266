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

use crate::cond::{Cond, CondDef, Doc};
use crate::enrich::{EnrichOutput, Entity};
use crate::path::CPath;
use serde::Deserialize;
use serde_json::Value as Json;
use std::borrow::Cow;
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
    tags: Vec<String>,
    entity: Option<&'static str>,
    when: Option<Cond>,
}

/// Embedded default rules, used when the configuration names no rules file.
pub const EMBEDDED_RULES: &str = include_str!("../enrichers/tags.toml");

pub struct Tagger {
    rules: Vec<Rule>,
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
                tags: r.tags,
                entity,
                when,
            });
        }
        Ok(Tagger { rules })
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
        let mut out = Tagged::default();
        for rule in &self.rules {
            let views: Vec<View> = match rule.entity {
                None => vec![View {
                    alert,
                    derived: &derived,
                    entity: None,
                }],
                Some(kind) => enrich
                    .entities
                    .iter()
                    .filter(|e| e.kind == kind)
                    .map(|e| View {
                        alert,
                        derived: &derived,
                        entity: Some(e),
                    })
                    .collect(),
            };
            for view in views {
                if rule.when.as_ref().is_none_or(|w| w.eval(&view)) {
                    for t in &rule.tags {
                        if let Some(tag) = fill(t, &view) {
                            if out.tags.insert(tag.clone()) {
                                out.fired.push((rule.id.clone(), tag));
                            }
                        }
                    }
                }
            }
        }
        out
    }
}

struct Derived {
    hour: Option<String>,
    weekday: Option<&'static str>,
}

fn derive_time(alert: &Json) -> Derived {
    use chrono::{Datelike, TimeZone, Timelike};
    let dt = alert
        .get("time")
        .and_then(Json::as_i64)
        .and_then(|ms| chrono::Utc.timestamp_millis_opt(ms).single());
    Derived {
        hour: dt.map(|d| d.hour().to_string()),
        weekday: dt.map(|d| {
            ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
                [d.weekday().num_days_from_monday() as usize]
        }),
    }
}

struct View<'a> {
    alert: &'a Json,
    derived: &'a Derived,
    entity: Option<&'a Entity>,
}

impl Doc for View<'_> {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        let raw = path.raw();
        match raw {
            "event.hour_utc" => return self.derived.hour.as_deref().map(Cow::Borrowed),
            "event.weekday" => return self.derived.weekday.map(Cow::Borrowed),
            _ => {}
        }
        if let Some(e) = self.entity {
            if let Some(rest) = raw.strip_prefix(e.kind).and_then(|r| r.strip_prefix('.')) {
                if rest == "attribute" {
                    return Some(Cow::Borrowed(e.attribute.as_str()));
                }
                return match crate::path::get(&e.context, rest)? {
                    // Lists (asset tags, user groups) read as their items joined by commas.
                    Json::Array(items) => Some(Cow::Owned(
                        items
                            .iter()
                            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string))
                            .collect::<Vec<_>>()
                            .join(","),
                    )),
                    _ => e
                        .context
                        .text(&CPath::new(rest))
                        .map(|c| Cow::Owned(c.into_owned())),
                };
            }
        }
        self.alert.text(path)
    }

    fn present(&self, path: &CPath) -> bool {
        self.text(path).is_some() || self.alert.present(path)
    }
}

fn fill(template: &str, view: &View) -> Option<String> {
    if !template.contains('{') {
        return Some(template.to_string());
    }
    let mut out = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let value = view.text(&CPath::new(&rest[open + 1..close]))?;
        out.push_str(&value);
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    Some(out)
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
            context: json!({"criticality": crit, "business_unit": "payments"}),
        }
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
