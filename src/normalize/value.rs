//! Reading decoded records: path lookups in borrowed values, their text form, and
//! conversion to `serde_json` for the bundle.

use crate::cond::Doc;
use crate::decode::Value;
use crate::path::CPath;
use simd_json::prelude::*;
use simd_json::StaticNode;
use std::borrow::Cow;

/// Look up a compiled path. `.` (empty path) is the value itself.
pub fn lookup<'v, 'a>(root: &'v Value<'a>, path: &CPath) -> Option<&'v Value<'a>> {
    lookup_from(root, path, 0)
}

fn lookup_from<'v, 'a>(cur: &'v Value<'a>, path: &CPath, i: usize) -> Option<&'v Value<'a>> {
    if i == path.len() {
        return Some(cur);
    }
    match cur {
        Value::Object(map) => {
            for (key, next) in path.keys_at(i) {
                if let Some(v) = map.get(key) {
                    if let Some(found) = lookup_from(v, path, next) {
                        return Some(found);
                    }
                }
            }
            None
        }
        Value::Array(items) => {
            let (seg, next) = path.keys_at(i).next()?;
            let idx: usize = seg.parse().ok()?;
            lookup_from(items.get(idx)?, path, next)
        }
        _ => None,
    }
}

/// The text form of a scalar; `None` for null and containers.
pub fn text<'v>(v: &'v Value<'_>) -> Option<Cow<'v, str>> {
    match v {
        Value::String(s) => Some(Cow::Borrowed(s.as_ref())),
        Value::Static(StaticNode::Null) => None,
        Value::Static(StaticNode::Bool(b)) => {
            Some(Cow::Borrowed(if *b { "true" } else { "false" }))
        }
        Value::Static(StaticNode::I64(n)) => Some(Cow::Owned(n.to_string())),
        Value::Static(StaticNode::U64(n)) => Some(Cow::Owned(n.to_string())),
        Value::Static(StaticNode::F64(n)) => Some(Cow::Owned(n.to_string())),
        _ => None,
    }
}

/// Convert a decoded value to `serde_json`, keys sorted (serde_json's map is a BTreeMap),
/// so that output does not depend on the decoder's hash order.
pub fn to_json(v: &Value<'_>) -> serde_json::Value {
    match v {
        Value::Static(StaticNode::Null) => serde_json::Value::Null,
        Value::Static(StaticNode::Bool(b)) => serde_json::Value::Bool(*b),
        Value::Static(StaticNode::I64(n)) => serde_json::Value::from(*n),
        Value::Static(StaticNode::U64(n)) => serde_json::Value::from(*n),
        Value::Static(StaticNode::F64(n)) => serde_json::Number::from_f64(*n)
            .map(serde_json::Value::Number)
            .unwrap_or(serde_json::Value::Null),
        Value::String(s) => serde_json::Value::String(s.to_string()),
        Value::Array(items) => serde_json::Value::Array(items.iter().map(to_json).collect()),
        Value::Object(map) => serde_json::Value::Object(
            map.iter()
                .map(|(k, v)| (k.to_string(), to_json(v)))
                .collect(),
        ),
    }
}

/// Whether a value counts as present: not null, not an empty string/array/object.
pub fn present(v: &Value<'_>) -> bool {
    match v {
        Value::Static(StaticNode::Null) => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(o) => !o.is_empty(),
        _ => true,
    }
}

impl Doc for Value<'_> {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        text(lookup(self, path)?)
    }
    fn present(&self, path: &CPath) -> bool {
        lookup(self, path).is_some_and(present)
    }
}

/// Number of object keys at the top level (0 for non-objects).
pub fn top_level_len(v: &Value<'_>) -> usize {
    v.as_object().map_or(0, |o| o.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_keys_and_nesting_both_resolve() {
        let mut flat = br#"{"id.orig_h":"10.0.0.1","a":{"b":[{"c":1}]},"@timestamp":"t"}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut flat).unwrap();
        assert_eq!(
            text(lookup(&v, &CPath::new("id.orig_h")).unwrap()).unwrap(),
            "10.0.0.1"
        );
        assert_eq!(
            text(lookup(&v, &CPath::new("a.b.0.c")).unwrap()).unwrap(),
            "1"
        );
        assert_eq!(
            text(lookup(&v, &CPath::new("@timestamp")).unwrap()).unwrap(),
            "t"
        );
        assert!(lookup(&v, &CPath::new("a.x")).is_none());
        // Past 32 members an object is a hash map; both forms find the same members.
        let big: String = (0..40).map(|i| format!("\"k{i}\":{i},")).collect();
        let mut wide = format!("{{{big}\"k\":\"last\"}}").into_bytes();
        let v = simd_json::to_borrowed_value(&mut wide).unwrap();
        assert_eq!(text(lookup(&v, &CPath::new("k39")).unwrap()).unwrap(), "39");
        assert_eq!(text(lookup(&v, &CPath::new("k")).unwrap()).unwrap(), "last");
        assert!(lookup(&v, &CPath::new("k40")).is_none());
        let mut nested = br#"{"id":{"orig_h":"10.0.0.2"}}"#.to_vec();
        let v = simd_json::to_borrowed_value(&mut nested).unwrap();
        assert_eq!(
            text(lookup(&v, &CPath::new("id.orig_h")).unwrap()).unwrap(),
            "10.0.0.2"
        );
    }
}
