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
    /// `test` applied to [`text`](Doc::text): `None` exactly when `text` is. For documents
    /// that can lend the text of a number from the stack instead of a new `String`, which
    /// is what conditions on `class_uid` and the like read.
    fn test_text(&self, path: &CPath, test: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        self.text(path).map(|t| test(&t))
    }
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
        self.for_each_path(&mut |p| out.push(p.raw().to_string()));
    }

    /// Every compiled path the condition reads, in order.
    pub fn for_each_path<'c>(&'c self, f: &mut dyn FnMut(&'c CPath)) {
        match self {
            Cond::All(cs) | Cond::Any(cs) => cs.iter().for_each(|c| c.for_each_path(f)),
            Cond::Not(c) => c.for_each_path(f),
            Cond::Has(p) | Cond::Test(p, _, _) => f(p),
        }
    }

    pub fn eval(&self, doc: &dyn Doc) -> bool {
        match self {
            Cond::All(cs) => cs.iter().all(|c| c.eval(doc)),
            Cond::Any(cs) => cs.iter().any(|c| c.eval(doc)),
            Cond::Not(c) => !c.eval(doc),
            Cond::Has(p) => doc.present(p),
            Cond::Test(p, op, ci) => doc
                .test_text(p, &mut |text| op.holds(text, *ci))
                .unwrap_or(false),
        }
    }
}

impl Op {
    /// Whether a field's text passes the operator. With `ci` the text is compared as
    /// `to_lowercase` makes it (the operands were lowercased when compiled), except by
    /// regular expressions, which were built case-insensitive. ASCII text is compared
    /// byte by byte without being copied, with the same outcome.
    fn holds(&self, text: &str, ci: bool) -> bool {
        if !ci || matches!(self, Op::Matches(_)) {
            return self.holds_exact(text);
        }
        if text.is_ascii() {
            let t = text.as_bytes();
            match self {
                Op::Eq(v) => return eq_lowered(t, v.as_bytes()),
                Op::In(vs) => return vs.iter().any(|v| eq_lowered(t, v.as_bytes())),
                Op::Prefix(v) => {
                    return t.len() >= v.len() && eq_lowered(&t[..v.len()], v.as_bytes())
                }
                Op::Suffix(v) => {
                    return t.len() >= v.len() && eq_lowered(&t[t.len() - v.len()..], v.as_bytes())
                }
                Op::Contains(v) => {
                    return v.is_empty() || t.windows(v.len()).any(|w| eq_lowered(w, v.as_bytes()))
                }
                Op::Matches(_) | Op::Gte(_) | Op::Lte(_) | Op::Range(..) => {}
            }
        }
        self.holds_exact(&text.to_lowercase())
    }

    /// [`holds`](Op::holds) on the text as it is.
    fn holds_exact(&self, text: &str) -> bool {
        match self {
            Op::Eq(v) => text == v,
            Op::In(vs) => vs.iter().any(|v| text == v),
            Op::Prefix(v) => text.starts_with(v.as_str()),
            Op::Suffix(v) => text.ends_with(v.as_str()),
            Op::Contains(v) => text.contains(v.as_str()),
            Op::Matches(re) => re.is_match(text),
            Op::Gte(lo) => text.parse::<f64>().is_ok_and(|n| n >= *lo),
            Op::Lte(hi) => text.parse::<f64>().is_ok_and(|n| n <= *hi),
            Op::Range(lo, hi) => text.parse::<f64>().is_ok_and(|n| n >= *lo && n <= *hi),
        }
    }
}

/// Whether ASCII `text`, lowercased, is `lowered`: `text.to_lowercase() == lowered` without
/// the copy (for ASCII, `to_lowercase` only maps `A`–`Z`).
fn eq_lowered(text: &[u8], lowered: &[u8]) -> bool {
    text.len() == lowered.len()
        && text
            .iter()
            .zip(lowered)
            .all(|(a, b)| a.to_ascii_lowercase() == *b)
}

/// `test` applied to the text of `n` as `to_string` writes it. Integers, what conditions
/// read (`class_uid`, `activity_id`, ports), are written on the stack by `itoa` (the digits
/// `to_string` writes); floats, rare in conditions, through `to_string`.
fn test_number(n: &serde_json::Number, test: &mut dyn FnMut(&str) -> bool) -> bool {
    let mut digits = itoa::Buffer::new();
    if let Some(u) = n.as_u64() {
        return test(digits.format(u));
    }
    if let Some(i) = n.as_i64() {
        return test(digits.format(i));
    }
    test(&n.to_string())
}

impl Doc for serde_json::Value {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        json_text(crate::path::get_cpath(self, path)?)
    }
    fn present(&self, path: &CPath) -> bool {
        crate::path::holds_value(crate::path::get_cpath(self, path))
    }
    fn test_text(&self, path: &CPath, test: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
        test_json_text(crate::path::get_cpath(self, path)?, test)
    }
}

/// The text form of a JSON scalar, as conditions read it; `None` for null and containers.
pub fn json_text(v: &serde_json::Value) -> Option<Cow<'_, str>> {
    match v {
        serde_json::Value::String(s) => Some(Cow::Borrowed(s.as_str())),
        serde_json::Value::Number(n) => Some(Cow::Owned(n.to_string())),
        serde_json::Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
        _ => None,
    }
}

/// `test` applied to [`json_text`], numbers written on the stack.
pub fn test_json_text(v: &serde_json::Value, test: &mut dyn FnMut(&str) -> bool) -> Option<bool> {
    match v {
        serde_json::Value::String(s) => Some(test(s)),
        serde_json::Value::Number(n) => Some(test_number(n, test)),
        serde_json::Value::Bool(b) => Some(test(if *b { "true" } else { "false" })),
        _ => None,
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
    fn case_insensitive_tests_agree_with_lowercasing() {
        let doc =
            json!({"a": "PowerShell.EXE", "u": "ÉCOLE Straße", "k": "\u{212A}elvin", "e": ""});
        let holds = |src: &str| cond(src).eval(&doc);
        // ASCII text: compared without a copy.
        assert!(holds(
            r#"when = { field = "a", eq = "powershell.exe", ci = true }"#
        ));
        assert!(holds(
            r#"when = { field = "a", eq = "POWERSHELL.exe", ci = true }"#
        ));
        assert!(!holds(
            r#"when = { field = "a", eq = "powershell.ex", ci = true }"#
        ));
        assert!(holds(
            r#"when = { field = "a", in = ["x", "PowerShell.exe"], ci = true }"#
        ));
        assert!(holds(
            r#"when = { field = "a", prefix = "POWER", ci = true }"#
        ));
        assert!(!holds(
            r#"when = { field = "a", prefix = "PowerShell.EXE!", ci = true }"#
        ));
        assert!(holds(
            r#"when = { field = "a", suffix = ".Exe", ci = true }"#
        ));
        assert!(holds(
            r#"when = { field = "a", contains = "SHELL", ci = true }"#
        ));
        assert!(holds(r#"when = { field = "a", contains = "", ci = true }"#));
        assert!(!holds(
            r#"when = { field = "a", contains = "shellx", ci = true }"#
        ));
        assert!(holds(r#"when = { field = "e", eq = "", ci = true }"#));
        // Text that lowercases to ASCII from elsewhere (KELVIN SIGN is `k`).
        assert!(holds(r#"when = { field = "k", eq = "kelvin", ci = true }"#));
        // Non-ASCII text: lowercased as before.
        assert!(holds(
            r#"when = { field = "u", eq = "école straße", ci = true }"#
        ));
        assert!(holds(r#"when = { field = "u", prefix = "éc", ci = true }"#));
        assert!(!holds(r#"when = { field = "u", eq = "école straße" }"#));
        // Every operator, on a set of texts, against the rule it replaces.
        let texts = [
            "PowerShell.EXE",
            "",
            "A",
            "ÉCOLE",
            "\u{212A}",
            "1E3",
            "INF",
            "x-Y_z",
        ];
        let operands = [
            "",
            "a",
            "powershell.exe",
            "shell",
            ".exe",
            "école",
            "k",
            "1e3",
            "inf",
        ];
        for t in texts {
            for v in operands {
                let ops = [
                    Op::Eq(v.into()),
                    Op::In(vec!["zz".into(), v.into()]),
                    Op::Prefix(v.into()),
                    Op::Suffix(v.into()),
                    Op::Contains(v.into()),
                    Op::Gte(1.0),
                    Op::Lte(1e4),
                    Op::Range(0.0, 1e9),
                ];
                for op in ops {
                    let want = op.holds_exact(&t.to_lowercase());
                    assert_eq!(op.holds(t, true), want, "{op:?} on {t:?}");
                    assert_eq!(op.holds(t, false), op.holds_exact(t), "{op:?} on {t:?}");
                }
            }
        }
    }

    #[test]
    fn numbers_are_tested_in_their_text_form() {
        let doc = json!({"i": 4624, "neg": -12, "big": u64::MAX, "f": 1.5, "tiny": 1e-300,
            "t": true, "s": "x", "n": null, "o": {"a": 1}, "l": [1]});
        for p in [
            "i", "neg", "big", "f", "tiny", "t", "s", "n", "o", "l", "missing",
        ] {
            let path = CPath::new(p);
            let mut seen = None;
            let got = doc.test_text(&path, &mut |t| {
                seen = Some(t.to_string());
                true
            });
            let want = doc.text(&path).map(|t| t.into_owned());
            assert_eq!(got.is_some(), want.is_some(), "{p}");
            assert_eq!(seen, want, "{p}");
        }
        let ints = json!([
            0,
            7,
            10,
            -1,
            -10,
            4624,
            i64::MIN,
            i64::MAX,
            u64::MAX,
            -0.0,
            0.5
        ]);
        for (k, n) in ints.as_array().unwrap().iter().enumerate() {
            let mut seen = String::new();
            test_number(n.as_number().unwrap(), &mut |t| {
                seen = t.to_string();
                true
            });
            assert_eq!(seen, n.to_string(), "item {k}");
        }
        assert!(cond(r#"when = { field = "big", eq = "18446744073709551615" }"#).eval(&doc));
        assert!(cond(r#"when = { field = "f", eq = "1.5" }"#).eval(&doc));
        assert!(cond(r#"when = { field = "tiny", eq = "1e-300" }"#).eval(&doc));
        assert!(cond(r#"when = { field = "neg", in = [-12] }"#).eval(&doc));
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
