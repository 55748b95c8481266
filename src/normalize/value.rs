//! Reading decoded records: path lookups in borrowed values, their text form, and
//! conversion to `serde_json` for the bundle.

use crate::cond::Doc;
use crate::decode::Value;
use crate::path::{key_hash, CPath};
use simd_json::prelude::*;
use simd_json::StaticNode;
use std::borrow::Cow;

/// A decoded record with its top-level members indexed by key hash, for the many path
/// lookups mapping it takes.
///
/// Shape detection, conditions and rules look up about seventy paths in a record (callgrind,
/// generated corpus), most of them at its top level and many of them absent (the names other
/// variants of a source use).
/// simd-json keeps an object of up to 32 members as a vector, so each lookup was a scan
/// comparing keys, the whole vector for every absent one; a larger object is a hash map, where
/// each lookup hashed the key again (about 170 instructions a lookup in a flat Windows event
/// of 40 to 60 members). The index is built once a record (hash each top-level key into a
/// table of one-byte slots, at most half of them filled) and answers with a probe or two; a
/// path carries its first keys' hashes from compile time ([`CPath::top_keys`]).
/// Lookups give exactly what [`lookup`] gives, first member first when a key repeats. (In a
/// hash map, which of two equal keys a lookup finds is the map's business: a record whose
/// large top level repeats a key is not indexed.)
pub struct Record<'v, 'a> {
    root: &'v Value<'a>,
    top: Option<TopIndex<'v, 'a>>,
}

/// The most members indexed: a slot holds 1 + a position in one byte, and the table keeps
/// at least half of its slots empty.
const MAX_INDEXED: usize = 127;
/// Slots of the largest table. Objects of up to 32 members (the vectors) use the first 64.
const SLOTS: usize = 256;

struct TopIndex<'v, 'a> {
    /// Slot → 1 + position in `members`; 0 when empty. The first `mask + 1` are used.
    slots: [u8; SLOTS],
    mask: usize,
    members: Vec<(u64, &'v str, &'v Value<'a>)>,
}

impl<'v, 'a> TopIndex<'v, 'a> {
    fn slot(&self, hash: u64) -> usize {
        // The hash's top bits: FxHash mixes its input into them.
        (hash >> 56) as usize & self.mask
    }

    fn build(obj: &'v simd_json::value::borrowed::Object<'a>) -> Option<TopIndex<'v, 'a>> {
        if obj.len() > MAX_INDEXED {
            return None;
        }
        let mut index = TopIndex {
            slots: [0; SLOTS],
            mask: if obj.len() <= 32 { 63 } else { SLOTS - 1 },
            members: Vec::with_capacity(obj.len()),
        };
        'members: for (key, value) in obj.iter() {
            let hash = key_hash(key);
            // The probe for a free slot passes every member filed under the same slots, so
            // it finds a repeated key too.
            let mut i = index.slot(hash);
            while index.slots[i] != 0 {
                let (h, k, _) = index.members[index.slots[i] as usize - 1];
                if h == hash && k == key.as_ref() {
                    if obj.is_map() {
                        // See the type's documentation.
                        return None;
                    }
                    // A repeated key: lookups find the first one, as in the object itself.
                    continue 'members;
                }
                i = (i + 1) & index.mask;
            }
            index.members.push((hash, key.as_ref(), value));
            index.slots[i] = index.members.len() as u8;
        }
        Some(index)
    }

    #[inline]
    fn get(&self, key: &str, hash: u64) -> Option<&'v Value<'a>> {
        let mut i = self.slot(hash);
        loop {
            let n = self.slots[i];
            if n == 0 {
                return None;
            }
            let (h, k, v) = self.members[n as usize - 1];
            if h == hash && k == key {
                return Some(v);
            }
            i = (i + 1) & self.mask;
        }
    }
}

impl<'v, 'a> Record<'v, 'a> {
    /// Index a record's top level (objects of up to `MAX_INDEXED` members, unless a large one
    /// repeats a key; anything else is read as it is).
    pub fn new(root: &'v Value<'a>) -> Record<'v, 'a> {
        let top = match root {
            Value::Object(obj) => TopIndex::build(obj),
            _ => None,
        };
        Record { root, top }
    }

    /// A value read without an index: for a part of a record looked into a few times only.
    pub fn plain(root: &'v Value<'a>) -> Record<'v, 'a> {
        Record { root, top: None }
    }

    pub fn root(&self) -> &'v Value<'a> {
        self.root
    }

    /// [`lookup`] through the index.
    ///
    /// Inlined for the path of most rules, one segment, which the index answers with a probe
    /// or two; the rest is out of line, so that this answer costs no call (as a function of
    /// its own, every lookup saved and restored six registers).
    #[inline]
    pub fn lookup(&self, path: &CPath) -> Option<&'v Value<'a>> {
        if let Some(top) = &self.top {
            if let ([key], [hash]) = path.top_keys() {
                // One segment: the member itself, no further step.
                return top.get(key, *hash);
            }
        }
        self.lookup_further(path)
    }

    #[inline(never)]
    fn lookup_further(&self, path: &CPath) -> Option<&'v Value<'a>> {
        let Some(top) = &self.top else {
            return lookup(self.root, path);
        };
        if path.is_empty() {
            return Some(self.root);
        }
        let (keys, hashes) = path.top_keys();
        for (k, (key, &hash)) in keys.iter().zip(hashes).enumerate() {
            if let Some(v) = top.get(key, hash) {
                if let Some(found) = lookup_from(v, path, k + 1) {
                    return Some(found);
                }
            }
        }
        None
    }
}

impl Doc for Record<'_, '_> {
    fn text(&self, path: &CPath) -> Option<Cow<'_, str>> {
        text(self.lookup(path)?)
    }
    fn present(&self, path: &CPath) -> bool {
        self.lookup(path).is_some_and(present)
    }
}

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
                    if next == path.len() {
                        // The last step: the member itself, without a call to say so.
                        return Some(v);
                    }
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

    /// The indexed lookup against the plain one, over objects of every size around the
    /// vector/hash-map boundary, with repeated keys (simd-json keeps both), dotted keys next
    /// to nested objects of the same path, and paths present and absent.
    #[test]
    fn an_indexed_record_finds_what_a_plain_lookup_finds() {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let names = [
            "a",
            "b",
            "id",
            "id.orig_h",
            "orig_h",
            "k",
            "@timestamp",
            "x.y",
            "y",
        ];
        for round in 0..440 {
            let members = [0, 1, 5, 31, 32, 33, 40, 100, 127, 128, 200][round % 11];
            let mut text = String::from("{");
            for i in 0..members {
                let key = if next(3) == 0 {
                    format!("m{i}")
                } else {
                    names[next(names.len() as u64) as usize].to_string()
                };
                let value = match next(3) {
                    0 => format!("{i}"),
                    1 => format!("{{\"orig_h\":\"n{i}\",\"y\":{i}}}"),
                    _ => format!("\"s{i}\""),
                };
                text.push_str(&format!("\"{key}\":{value},"));
            }
            if text.ends_with(',') {
                text.pop();
            }
            text.push('}');
            let mut bytes = text.clone().into_bytes();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            let indexed = Record::new(&v);
            let paths = names.iter().map(|n| n.to_string()).chain(
                ["id.orig_h", "x.y", "b.y", "m3", "m32", "m39", ".", "zz"].map(String::from),
            );
            for p in paths {
                let path = CPath::new(&p);
                let want = lookup(&v, &path).map(|x| x as *const Value<'_>);
                let got = indexed.lookup(&path).map(|x| x as *const Value<'_>);
                assert_eq!(got, want, "{p} in {text}");
            }
        }
    }

    /// A flat record larger than simd-json's vectors (a Windows event of 40 to 60 members) is
    /// indexed; one whose large top level repeats a key is not (see [`Record`]), and one past
    /// [`MAX_INDEXED`] members is not.
    #[test]
    fn large_top_levels_are_indexed_unless_a_key_repeats() {
        let flat = |n: usize, repeat: bool| {
            let mut members: Vec<String> = (0..n).map(|i| format!("\"Field{i}\":{i}")).collect();
            if repeat {
                members.push("\"Field7\":\"again\"".into());
            }
            format!("{{{}}}", members.join(","))
        };
        for (n, repeat, indexed) in [
            (60, false, true),
            (60, true, false),
            (MAX_INDEXED, false, true),
            (MAX_INDEXED + 1, false, false),
        ] {
            let mut bytes = flat(n, repeat).into_bytes();
            let v = simd_json::to_borrowed_value(&mut bytes).unwrap();
            let record = Record::new(&v);
            assert_eq!(
                record.top.is_some(),
                indexed,
                "{n} members, repeat {repeat}"
            );
            let path = CPath::new("Field7");
            assert_eq!(
                record.lookup(&path).map(|x| x as *const Value<'_>),
                lookup(&v, &path).map(|x| x as *const Value<'_>)
            );
        }
    }

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
