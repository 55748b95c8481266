//! Score data gaps: every problem an agent should know about, as a machine-readable code
//! with the field it concerns, and one 0–100 score per bundle.
//!
//! Gaps come from five places: the mapping engine (unparseable values, unmapped sources),
//! the class's OCSF requirements (checked here), event time (checked here against a
//! reference time), enrichers (unknown asset, user, geo), and the sanitiser (values cut to
//! their cap, text with findings). [`CODES`] is the catalogue,
//! with each code's weight; the README's gap table is generated from the same facts.

use crate::ocsf;
use crate::path::JPath;
use serde::Serialize;
use serde_json::Value as Json;
use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// One data gap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Gap {
    pub code: &'static str,
    /// The code's place in [`CODES`], looked up once when the gap is made: gaps are sorted
    /// and counted by it (`u8::MAX` for a code not in the catalogue). Sorting compared the
    /// codes' places found anew for each comparison, about 850 instructions a bundle.
    #[serde(skip)]
    rank: u8,
    /// Borrowed when the name is the program's own (an OCSF attribute of a class's
    /// requirements, `time`, `unmapped`): a bundle has a dozen such gaps, and copying each name
    /// into a string of its own cost about 0.8k instructions a bundle.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<Cow<'static, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

impl Gap {
    pub fn new(code: &'static str, field: Option<String>, detail: Option<String>) -> Gap {
        Gap {
            code,
            rank: rank(code),
            field: field.map(Cow::Owned),
            detail,
        }
    }

    /// A gap about a field the program names itself.
    pub fn at(code: &'static str, field: &'static str, detail: Option<String>) -> Gap {
        Gap {
            code,
            rank: rank(code),
            field: Some(Cow::Borrowed(field)),
            detail,
        }
    }
}

/// The place of `code` in [`CODES`].
fn rank(code: &str) -> u8 {
    CODES
        .iter()
        .position(|i| i.code == code)
        .map_or(u8::MAX, |p| p as u8)
}

/// A gap code: what it means, what one occurrence costs, and the most all occurrences of
/// it may cost together.
#[derive(Debug, Clone, Copy)]
pub struct GapCode {
    pub code: &'static str,
    pub group: &'static str,
    pub weight: u32,
    pub cap: u32,
    pub meaning: &'static str,
}

/// Every gap code alertctx emits.
pub const CODES: &[GapCode] = &[
    GapCode { code: "source_unmapped", group: "mapping", weight: 60, cap: 60, meaning: "No mapping recognised the record; it is a Base Event with everything under `alert.unmapped`." },
    GapCode { code: "class_unmapped", group: "mapping", weight: 40, cap: 40, meaning: "The source was recognised but none of its class rules matched this kind of record." },
    GapCode { code: "fields_unmapped", group: "mapping", weight: 5, cap: 5, meaning: "Vendor fields with no OCSF place were kept under `alert.unmapped` (detail: how many)." },
    GapCode { code: "value_invalid", group: "mapping", weight: 3, cap: 15, meaning: "A vendor value could not be converted (an IP that is not an IP, a port over 65535); the attribute was left out." },
    GapCode { code: "value_truncated", group: "mapping", weight: 2, cap: 10, meaning: "A value was longer than its cap and was cut (detail: original length)." },
    GapCode { code: "required_missing", group: "schema", weight: 15, cap: 45, meaning: "An attribute OCSF requires for the class is absent." },
    GapCode { code: "recommended_missing", group: "schema", weight: 2, cap: 16, meaning: "An attribute OCSF recommends for the class is absent." },
    GapCode { code: "time_missing", group: "time", weight: 25, cap: 25, meaning: "The record carries no event time." },
    GapCode { code: "time_unparseable", group: "time", weight: 25, cap: 25, meaning: "The event time is in a format no parser understood." },
    GapCode { code: "time_future", group: "time", weight: 15, cap: 15, meaning: "The event time is later than the reference time plus the allowed skew." },
    GapCode { code: "time_too_old", group: "time", weight: 10, cap: 10, meaning: "The event time is older than the reference time minus `max_age`." },
    GapCode { code: "asset_unknown", group: "enrichment", weight: 5, cap: 10, meaning: "An IP or host name the asset inventory should know is not in it." },
    GapCode { code: "user_unknown", group: "enrichment", weight: 5, cap: 10, meaning: "A user the identity directory should know is not in it." },
    GapCode { code: "geo_unknown", group: "enrichment", weight: 3, cap: 6, meaning: "A public IP has no record in the geo database." },
    GapCode { code: "unsafe_text", group: "safety", weight: 10, cap: 20, meaning: "A field holds instruction-like or hidden text (detail: the finding kinds; see `safety.findings`); the bundle is tagged `safety:*`." },
];
// A gap's rank is a byte, and `u8::MAX` means "not in the catalogue".
const _: () = assert!(CODES.len() < u8::MAX as usize);

pub fn code_info(code: &str) -> Option<&'static GapCode> {
    CODES.iter().find(|c| c.code == code)
}

/// Quality settings (`[quality]` in the configuration).
#[derive(Debug, Clone, serde::Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QualityConfig {
    /// Events older than this before the reference time get `time_too_old`.
    pub max_age: String,
    /// Events later than the reference time by more than this get `time_future`.
    pub future_skew: String,
    /// What "now" is for the time checks: `none` (the default: skip the future/too-old checks,
    /// so output depends only on input, configuration and reference data), `wall` (the clock;
    /// output then depends on when it ran, and each bundle records the reading), or a fixed
    /// RFC 3339 time. In the Kafka worker the broker timestamp of each message is the
    /// reference, whatever this says.
    pub reference_time: String,
    /// Recommended attributes not to report as gaps (alertctx does not build them yet).
    pub ignore_recommended: Vec<String>,
}

impl Default for QualityConfig {
    fn default() -> Self {
        QualityConfig {
            max_age: "7d".into(),
            future_skew: "5m".into(),
            reference_time: "none".into(),
            ignore_recommended: vec!["observables".into(), "timezone_offset".into()],
        }
    }
}

/// Whether one required or recommended attribute was filled, for fill-ratio metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldFill {
    pub attribute: &'static str,
    pub requirement: &'static str,
    pub present: bool,
}

/// Compiled quality settings.
#[derive(Debug, Clone)]
pub struct Scorer {
    max_age_ms: i64,
    future_skew_ms: i64,
    reference: Reference,
    /// The attribute checks of every known class, by class uid.
    classes: BTreeMap<u32, ClassChecks>,
}

/// The required and recommended attributes of one class, compiled once: what
/// [`Scorer::check`] reports, in its order, with the ignored recommended ones left out.
#[derive(Debug, Clone)]
struct ClassChecks {
    checks: Vec<AttrCheck>,
    /// Indices into `checks` of the top-level attributes (no dot), sorted by name: they are
    /// all looked up in one walk over the alert's keys, which are sorted too.
    top_level: Vec<usize>,
}

#[derive(Debug, Clone)]
struct AttrCheck {
    attribute: &'static str,
    requirement: &'static str,
    /// The gap an absence is reported as; `None` for the required `time`, which the time
    /// checks report.
    gap: Option<&'static str>,
    /// The path of a nested attribute; `None` for a top-level one.
    nested: Option<JPath>,
}

impl ClassChecks {
    fn new(class: &'static ocsf::Class, ignore_recommended: &[String]) -> ClassChecks {
        let check = |attr: &'static String, requirement, gap| AttrCheck {
            attribute: attr.as_str(),
            requirement,
            gap,
            nested: attr.contains('.').then(|| JPath::new(attr)),
        };
        let mut checks: Vec<AttrCheck> = class
            .required
            .iter()
            .map(|a| check(a, "required", (a != "time").then_some("required_missing")))
            .collect();
        checks.extend(
            class
                .recommended
                .iter()
                .filter(|a| !ignore_recommended.contains(a))
                .map(|a| check(a, "recommended", Some("recommended_missing"))),
        );
        let mut top_level: Vec<usize> = (0..checks.len())
            .filter(|&i| checks[i].nested.is_none())
            .collect();
        top_level.sort_by_key(|&i| checks[i].attribute);
        ClassChecks { checks, top_level }
    }

    /// Push one [`FieldFill`] per attribute and a gap per absent one.
    fn check(&self, alert: &Json, gaps: &mut Vec<Gap>, fill: &mut Vec<FieldFill>) {
        let start = fill.len();
        fill.extend(self.checks.iter().map(|c| FieldFill {
            attribute: c.attribute,
            requirement: c.requirement,
            present: match &c.nested {
                Some(path) => path.is_present(alert),
                None => false,
            },
        }));
        let filled = &mut fill[start..];
        if let Json::Object(map) = alert {
            // Keys and names in the same (byte) order: one walk over the keys answers every
            // name, a comparison a step instead of a tree search per attribute.
            let mut entries = map.iter();
            let mut entry = entries.next();
            'names: for &i in &self.top_level {
                let name = self.checks[i].attribute;
                while let Some((key, value)) = entry {
                    match key.as_str().cmp(name) {
                        Ordering::Less => entry = entries.next(),
                        Ordering::Equal => {
                            filled[i].present = crate::path::holds_value(Some(value));
                            continue 'names;
                        }
                        Ordering::Greater => continue 'names,
                    }
                }
                break;
            }
        }
        for (c, f) in self.checks.iter().zip(filled.iter()) {
            if let (false, Some(code)) = (f.present, c.gap) {
                gaps.push(Gap::at(code, c.attribute, None));
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Reference {
    Wall,
    None,
    Fixed(i64),
}

impl Scorer {
    pub fn new(cfg: &QualityConfig) -> anyhow::Result<Scorer> {
        let dur = |s: &str, key: &str| {
            crate::timeparse::parse_duration_ms(s).ok_or_else(|| {
                anyhow::anyhow!("quality.{key}: `{s}` is not a duration like 10m or 7d")
            })
        };
        let reference = match cfg.reference_time.as_str() {
            "wall" => Reference::Wall,
            "none" => Reference::None,
            other => Reference::Fixed(crate::timeparse::parse_str_ms(other).ok_or_else(|| {
                anyhow::anyhow!(
                    "quality.reference_time: `{other}` is not `wall`, `none` or an RFC 3339 time"
                )
            })?),
        };
        Ok(Scorer {
            max_age_ms: dur(&cfg.max_age, "max_age")?,
            future_skew_ms: dur(&cfg.future_skew, "future_skew")?,
            reference,
            classes: ocsf::classes()
                .map(|(uid, class)| (uid, ClassChecks::new(class, &cfg.ignore_recommended)))
                .collect(),
        })
    }

    /// The reference time for a record: the broker timestamp when there is one, else the
    /// configured reference.
    pub fn reference_ms(&self, broker_ms: Option<i64>) -> Option<i64> {
        broker_ms.or(match self.reference {
            Reference::Wall => Some(chrono::Utc::now().timestamp_millis()),
            Reference::None => None,
            Reference::Fixed(ms) => Some(ms),
        })
    }

    /// Gaps from the class's OCSF requirements and from event time. `fill` receives, for
    /// every required and recommended attribute checked, whether it was present.
    pub fn check(
        &self,
        alert: &Json,
        class_uid: u32,
        reference_ms: Option<i64>,
        gaps: &mut Vec<Gap>,
        fill: &mut Vec<FieldFill>,
    ) {
        if let Some(class) = self.classes.get(&class_uid) {
            class.check(alert, gaps, fill);
        }
        let already_unparseable = gaps.iter().any(|g| g.code == "time_unparseable");
        match alert.get("time").and_then(Json::as_i64) {
            None if !already_unparseable => gaps.push(Gap::at("time_missing", "time", None)),
            None => {}
            Some(t) => {
                if let Some(now) = reference_ms {
                    if t > now + self.future_skew_ms {
                        gaps.push(Gap::at(
                            "time_future",
                            "time",
                            Some(format!("{} s ahead", (t - now) / 1000)),
                        ));
                    } else if t < now - self.max_age_ms {
                        gaps.push(Gap::at(
                            "time_too_old",
                            "time",
                            Some(format!("{} h old", (now - t) / 3_600_000)),
                        ));
                    }
                }
            }
        }
    }
}

/// The score: 100 minus each code's weight per occurrence, each code capped, floored at 0.
pub fn score(gaps: &[Gap]) -> u8 {
    let mut counts = [0u32; CODES.len()];
    for g in gaps {
        if let Some(n) = counts.get_mut(usize::from(g.rank)) {
            *n += 1;
        }
    }
    let total: u32 = CODES
        .iter()
        .zip(counts)
        .map(|(info, n)| (n * info.weight).min(info.cap))
        .sum();
    100u32.saturating_sub(total) as u8
}

/// Sort gaps into their stable order: by code catalogue position, then field.
pub fn sort_gaps(gaps: &mut [Gap]) {
    gaps.sort_by(|a, b| (a.rank, &a.field, &a.detail).cmp(&(b.rank, &b.field, &b.detail)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scorer(reference: &str) -> Scorer {
        Scorer::new(&QualityConfig {
            reference_time: reference.into(),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn weights_and_caps() {
        assert_eq!(score(&[]), 100);
        let g = |c| Gap::new(c, None, None);
        assert_eq!(score(&[g("required_missing")]), 85);
        assert_eq!(
            score(&vec![g("recommended_missing"); 20]),
            84,
            "capped at 16"
        );
        assert_eq!(
            score(&[
                g("source_unmapped"),
                g("time_missing"),
                g("required_missing"),
                g("required_missing")
            ]),
            0
        );
        assert!(CODES.iter().all(|c| c.weight <= c.cap));
    }

    #[test]
    fn class_requirements_and_time() {
        let s = scorer("2024-01-01T00:00:00Z");
        let now = s.reference_ms(None).unwrap();
        let alert = json!({"class_uid": 3002, "time": now - 60_000, "user": {"name": "ann"}, "src_endpoint": {"ip": "10.0.0.1"}});
        let mut gaps = Vec::new();
        let mut fill = Vec::new();
        s.check(&alert, 3002, Some(now), &mut gaps, &mut fill);
        assert!(fill
            .iter()
            .any(|f| f.attribute == "user" && f.requirement == "required" && f.present));
        assert!(fill
            .iter()
            .any(|f| f.attribute == "dst_endpoint" && !f.present));
        assert!(gaps
            .iter()
            .all(|g| g.code != "required_missing" || g.field.as_deref() != Some("user")));
        assert!(gaps
            .iter()
            .any(|g| g.code == "required_missing" && g.field.as_deref() == Some("metadata")));
        assert!(
            gaps.iter()
                .any(|g| g.code == "recommended_missing"
                    && g.field.as_deref() == Some("dst_endpoint"))
        );
        assert!(!gaps
            .iter()
            .any(|g| g.field.as_deref() == Some("src_endpoint")));
        assert!(!gaps.iter().any(|g| g.code.starts_with("time_")));

        let mut gaps = Vec::new();
        s.check(
            &json!({"time": now + 3_600_000}),
            0,
            Some(now),
            &mut gaps,
            &mut Vec::new(),
        );
        assert_eq!(gaps[0].code, "time_future");
        let mut gaps = Vec::new();
        s.check(
            &json!({"time": now - 30 * 86_400_000i64}),
            0,
            Some(now),
            &mut gaps,
            &mut Vec::new(),
        );
        assert_eq!(gaps[0].code, "time_too_old");
        let mut gaps = Vec::new();
        s.check(&json!({}), 0, Some(now), &mut gaps, &mut Vec::new());
        assert_eq!(gaps[0].code, "time_missing");
        let mut gaps = Vec::new();
        scorer("none").check(&json!({"time": 1}), 0, None, &mut gaps, &mut Vec::new());
        assert!(gaps.is_empty(), "no reference time, no age checks");
    }

    /// The attribute checks as they were written before they were compiled: a path lookup
    /// per attribute.
    fn reference_check(
        alert: &Json,
        class_uid: u32,
        ignore_recommended: &[String],
    ) -> (Vec<Gap>, Vec<FieldFill>) {
        let (mut gaps, mut fill) = (Vec::new(), Vec::new());
        if let Some(class) = ocsf::class(class_uid) {
            for attr in &class.required {
                let present = crate::path::is_present(alert, attr);
                fill.push(FieldFill {
                    attribute: attr,
                    requirement: "required",
                    present,
                });
                if attr != "time" && !present {
                    gaps.push(Gap::new("required_missing", Some(attr.clone()), None));
                }
            }
            for attr in &class.recommended {
                if ignore_recommended.contains(attr) {
                    continue;
                }
                let present = crate::path::is_present(alert, attr);
                fill.push(FieldFill {
                    attribute: attr,
                    requirement: "recommended",
                    present,
                });
                if !present {
                    gaps.push(Gap::new("recommended_missing", Some(attr.clone()), None));
                }
            }
        }
        (gaps, fill)
    }

    #[test]
    fn compiled_checks_report_what_path_lookups_report() {
        let values = [
            json!(null),
            json!(""),
            json!([]),
            json!({}),
            json!(0),
            json!("x"),
            json!(false),
            json!({"a": 1}),
        ];
        let ignores: [Vec<String>; 3] = [
            QualityConfig::default().ignore_recommended,
            Vec::new(),
            vec!["time".into(), "message".into(), "metadata".into()],
        ];
        for ignore in &ignores {
            let s = Scorer::new(&QualityConfig {
                ignore_recommended: ignore.clone(),
                ..Default::default()
            })
            .unwrap();
            for (uid, class) in &ocsf::table().classes {
                let uid: u32 = uid.parse().unwrap();
                let attrs: Vec<&String> = class.required.iter().chain(&class.recommended).collect();
                // Every attribute in turn absent, or holding each kind of value; keys the
                // class does not name around and between them.
                for (k, _) in attrs.iter().enumerate() {
                    for (n, v) in values.iter().enumerate() {
                        let mut m = serde_json::Map::new();
                        m.insert("".into(), json!(1));
                        m.insert("~last".into(), json!(1));
                        for (j, a) in attrs.iter().enumerate() {
                            if j == k {
                                m.insert(a.to_string(), v.clone());
                            } else if (j + n) % 3 != 0 {
                                m.insert(a.to_string(), values[(j + n) % values.len()].clone());
                            }
                            m.insert(format!("{a}_"), json!("decoy"));
                        }
                        let alert = Json::Object(m);
                        let (mut gaps, mut fill) =
                            (vec![Gap::new("value_invalid", None, None)], Vec::new());
                        s.check(&alert, uid, None, &mut gaps, &mut fill);
                        let (want_gaps, want_fill) = reference_check(&alert, uid, ignore);
                        assert_eq!(fill, want_fill, "class {uid}, attribute {k}, value {n}");
                        assert_eq!(gaps[0].code, "value_invalid", "gaps are appended");
                        let attr_gaps: Vec<Gap> = gaps[1..]
                            .iter()
                            .filter(|g| !g.code.starts_with("time_"))
                            .cloned()
                            .collect();
                        assert_eq!(attr_gaps, want_gaps, "class {uid}");
                    }
                }
                for alert in [json!({}), json!([1]), json!("text")] {
                    let mut fill = Vec::new();
                    s.check(&alert, uid, None, &mut Vec::new(), &mut fill);
                    assert_eq!(fill, reference_check(&alert, uid, ignore).1);
                }
            }
        }
    }

    #[test]
    fn nested_attributes_are_looked_up_by_path() {
        let class: &'static ocsf::Class = Box::leak(Box::new(ocsf::Class {
            name: "Test".into(),
            category_uid: 0,
            activities: Default::default(),
            required: vec!["time".into(), "b.c".into(), "a".into()],
            recommended: vec!["d.0".into(), "e".into(), "skip".into()],
        }));
        let checks = ClassChecks::new(class, &["skip".to_string()]);
        let alert = json!({"a": 1, "b": {"c": ""}, "d": ["x"], "e": null});
        let (mut gaps, mut fill) = (Vec::new(), Vec::new());
        checks.check(&alert, &mut gaps, &mut fill);
        let got: Vec<_> = fill
            .iter()
            .map(|f| (f.attribute, f.requirement, f.present))
            .collect();
        assert_eq!(
            got,
            [
                ("time", "required", false),
                ("b.c", "required", false),
                ("a", "required", true),
                ("d.0", "recommended", true),
                ("e", "recommended", false),
            ]
        );
        let got: Vec<_> = gaps
            .iter()
            .map(|g| (g.code, g.field.as_deref().unwrap()))
            .collect();
        assert_eq!(
            got,
            [("required_missing", "b.c"), ("recommended_missing", "e")]
        );
    }

    #[test]
    fn bad_settings_are_errors() {
        assert!(Scorer::new(&QualityConfig {
            max_age: "soon".into(),
            ..Default::default()
        })
        .is_err());
        assert!(Scorer::new(&QualityConfig {
            reference_time: "yesterday".into(),
            ..Default::default()
        })
        .is_err());
    }
}
