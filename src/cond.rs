//! Conditions shared by mapping files (`when`, `detect`) and tag rules.
//!
//! A condition is written as a small TOML table:
//!
//! ```toml
//! when = { field = "event_type", eq = "alert" }
//! when = { field = "EventID", in = [4624, 4625] }
//! when = { field = "eventType", prefix = "user.session.", ci = true }
//! when = { all = [{ has = "flow_id" }, { not = { has = "alert" } }] }
//! when = { field = "severity_id", gte = 4 }
//! ```
//!
//! Values compare by their text form, so `4624` and `"4624"` are equal; that is what logs
//! that write numbers as strings need. Conditions are compiled once into [`Cond`] and
//! evaluated against any [`Doc`].

use crate::path::CPath;
use regex::Regex;
use serde::Deserialize;
use std::borrow::Cow;

/// The written form of a condition.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum CondDef {
    /// Every condition holds.
    All { all: Vec<CondDef> },
    /// At least one condition holds.
    Any { any: Vec<CondDef> },
    /// The condition does not hold.
    Not { not: Box<CondDef> },
    /// The path holds a present, non-empty value.
    Has { has: String },
    /// A test on one field's value.
    Field(FieldTest),
}

/// A test on one field. Exactly one operator besides `field` (and `ci`) should be given.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldTest {
    /// Dotted path of the field.
    pub field: String,
    /// Equal to this value (text form).
    pub eq: Option<toml::Value>,
    /// Equal to one of these values.
    #[serde(rename = "in")]
    pub one_of: Option<Vec<toml::Value>>,
    /// Starts with.
    pub prefix: Option<String>,
    /// Ends with.
    pub suffix: Option<String>,
    /// Contains.
    pub contains: Option<String>,
    /// Matches this regular expression (Rust `regex` syntax, unanchored).
    pub matches: Option<String>,
    /// Numerically greater than or equal.
    pub gte: Option<f64>,
    /// Numerically less than or equal.
    pub lte: Option<f64>,
    /// Compare case-insensitively (eq, in, prefix, suffix, contains).
    #[serde(default)]
    pub ci: bool,
}

/// Anything conditions can read fields from.
pub trait Doc {
    /// The text form of a scalar at `path`; `None` when absent, null, or a container.
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>>;
    /// Whether `path` holds a present, non-empty value.
    fn present(&self, path: &CPath) -> bool;
}

/// A compiled condition.
#[derive(Debug, Clone)]
pub enum Cond {
    All(Vec<Cond>),
    Any(Vec<Cond>),
    Not(Box<Cond>),
    Has(CPath),
    Test(CPath, Op, bool),
}

#[derive(Debug, Clone)]
pub enum Op {
    Eq(String),
    In(Vec<String>),
    Prefix(String),
    Suffix(String),
    Contains(String),
    Matches(Regex),
    Gte(f64),
    Lte(f64),
    Range(f64, f64),
}

/// Text form of a TOML scalar as conditions compare it.
pub fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Cond {
    pub fn compile(def: &CondDef) -> anyhow::Result<Cond> {
        Ok(match def {
            CondDef::All { all } => {
                Cond::All(all.iter().map(Cond::compile).collect::<Result<_, _>>()?)
            }
            CondDef::Any { any } => {
                Cond::Any(any.iter().map(Cond::compile).collect::<Result<_, _>>()?)
            }
            CondDef::Not { not } => Cond::Not(Box::new(Cond::compile(not)?)),
            CondDef::Has { has } => Cond::Has(CPath::new(has)),
            CondDef::Field(t) => {
                let fold = |s: String| if t.ci { s.to_lowercase() } else { s };
                let mut ops = Vec::new();
                if let Some(v) = &t.eq {
                    ops.push(Op::Eq(fold(toml_text(v))));
                }
                if let Some(vs) = &t.one_of {
                    ops.push(Op::In(vs.iter().map(|v| fold(toml_text(v))).collect()));
                }
                if let Some(s) = &t.prefix {
                    ops.push(Op::Prefix(fold(s.clone())));
                }
                if let Some(s) = &t.suffix {
                    ops.push(Op::Suffix(fold(s.clone())));
                }
                if let Some(s) = &t.contains {
                    ops.push(Op::Contains(fold(s.clone())));
                }
                if let Some(r) = &t.matches {
                    let re = shared_regex(r, t.ci)?;
                    ops.push(Op::Matches(re));
                }
                match (t.gte, t.lte) {
                    (Some(lo), Some(hi)) => ops.push(Op::Range(lo, hi)),
                    (Some(lo), None) => ops.push(Op::Gte(lo)),
                    (None, Some(hi)) => ops.push(Op::Lte(hi)),
                    (None, None) => {}
                }
                if ops.len() != 1 {
                    anyhow::bail!(
                        "condition on `{}` needs exactly one operator (eq, in, prefix, suffix, contains, matches, gte/lte), found {}",
                        t.field,
                        ops.len()
                    );
                }
                Cond::Test(CPath::new(&t.field), ops.pop().expect("one op"), t.ci)
            }
        })
    }

    /// Every path the condition reads.
    pub fn paths(&self, out: &mut Vec<String>) {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| c.paths(out)),
            Cond::Not(c) => c.paths(out),
            Cond::Has(p) | Cond::Test(p, _, _) => out.push(p.raw().to_string()),
        }
    }

    pub fn eval(&self, doc: &dyn Doc) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval(doc)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(doc)),
            Cond::Not(c) => !c.eval(doc),
            Cond::Has(p) => doc.present(p),
            Cond::Test(p, op, ci) => {
                let Some(text) = doc.text(p) else {
                    return false;
                };
                let text: Cow<str> = if *ci && !matches!(op, Op::Matches(_)) {
                    Cow::Owned(text.to_lowercase())
                } else {
                    text
                };
                match op {
                    Op::Eq(v) => text == v.as_str(),
                    Op::In(vs) => vs.iter().any(|v| text == v.as_str()),
                    Op::Prefix(v) => text.starts_with(v.as_str()),
                    Op::Suffix(v) => text.ends_with(v.as_str()),
                    Op::Contains(v) => text.contains(v.as_str()),
                    Op::Matches(re) => re.is_match(&text),
                    Op::Gte(lo) => text.parse::<f64>().is_ok_and(|n| n >= *lo),
                    Op::Lte(hi) => text.parse::<f64>().is_ok_and(|n| n <= *hi),
                    Op::Range(lo, hi) => text.parse::<f64>().is_ok_and(|n| n >= *lo && n <= *hi),
                }
            }
        }
    }
}

impl Doc for serde_json::Value {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        match crate::path::get(self, path.raw())? {
            serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
            serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
            serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            _ => None,
        }
    }
    fn present(&self, path: &CPath) -> bool {
        crate::path::is_present(self, path.raw())
    }
}

/// A compiled regular expression, shared with every other rule that uses the same pattern.
///
/// Mapping and rule files repeat a few patterns many times (the file name after the last
/// backslash appears 58 times across the Windows mappings): 330 expressions, 112 distinct.
/// A `Regex` clone shares its compiled program, so compiling each distinct pattern once saves
/// most of the memory the expressions took (about 13 of 20 MB for the embedded mappings),
/// and start-up time with it. Each clone keeps its own search cache, so sharing is invisible
/// to matching.
pub fn shared_regex(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<(String, bool), Regex>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .expect("regex cache lock");
    let key = (pattern.to_string(), case_insensitive);
    if let Some(re) = cache.get(&key) {
        return Ok(re.clone());
    }
    let re = regex::RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .build()?;
    cache.insert(key, re.clone());
    Ok(re)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cond(src: &str) -> Cond {
        #[derive(Deserialize)]
        struct W {
            when: CondDef,
        }
        let w: W = toml::from_str(src).unwrap();
        Cond::compile(&w.when).unwrap()
    }

    #[test]
    fn operators() {
        let doc = json!({"EventID": 4624, "name": "PowerShell.exe", "sev": "4", "flow": {"id": 1}});
        assert!(cond(r#"when = { field = "EventID", eq = "4624" }"#).eval(&doc));
        assert!(cond(r#"when = { field = "EventID", in = [4625, 4624] }"#).eval(&doc));
        assert!(!cond(r#"when = { field = "EventID", in = [4625] }"#).eval(&doc));
        assert!(cond(r#"when = { field = "name", suffix = "shell.EXE", ci = true }"#).eval(&doc));
        assert!(!cond(r#"when = { field = "name", suffix = "shell.EXE" }"#).eval(&doc));
        assert!(cond(r#"when = { field = "name", matches = "^power" , ci = true }"#).eval(&doc));
        assert!(cond(r#"when = { field = "sev", gte = 3 }"#).eval(&doc));
        assert!(!cond(r#"when = { field = "sev", lte = 3 }"#).eval(&doc));
        assert!(
            cond(r#"when = { all = [{ has = "flow.id" }, { not = { has = "alert" } }] }"#)
                .eval(&doc)
        );
        assert!(cond(
            r#"when = { any = [{ has = "nope" }, { field = "name", contains = "Shell" }] }"#
        )
        .eval(&doc));
        assert!(!cond(r#"when = { field = "missing", eq = "x" }"#).eval(&doc));
    }

    #[test]
    fn a_test_needs_exactly_one_operator() {
        #[derive(Deserialize)]
        struct W {
            when: CondDef,
        }
        let w: W = toml::from_str(r#"when = { field = "a", eq = 1, prefix = "x" }"#).unwrap();
        assert!(Cond::compile(&w.when).is_err());
        let w: W = toml::from_str(r#"when = { field = "a" }"#).unwrap();
        assert!(Cond::compile(&w.when).is_err());
    }
}
