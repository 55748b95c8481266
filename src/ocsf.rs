//! OCSF 1.8 facts the pipeline needs at run time: class and category names, activity
//! captions, severity captions, and which attributes each class requires or recommends.
//!
//! The table is `schemas/ocsf/classes.json`, generated from the OCSF schema by
//! `tools/gen_ocsf_classes.py` and embedded in the binary.

use rustc_hash::FxHashMap;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The OCSF version bundles declare in `metadata.version`.
pub const VERSION: &str = "1.8.0";

#[derive(Debug, Deserialize)]
pub struct Class {
    pub name: String,
    pub category_uid: u32,
    pub activities: BTreeMap<String, String>,
    pub required: Vec<String>,
    pub recommended: Vec<String>,
}

#[derive(Debug, Deserialize)]
pub struct Table {
    pub ocsf_version: String,
    pub severity: BTreeMap<String, String>,
    pub categories: BTreeMap<String, String>,
    pub classes: BTreeMap<String, Class>,
}

/// The embedded table.
pub fn table() -> &'static Table {
    static TABLE: OnceLock<Table> = OnceLock::new();
    TABLE.get_or_init(|| {
        serde_json::from_str(include_str!("../schemas/ocsf/classes.json"))
            .expect("schemas/ocsf/classes.json is embedded at build time and valid")
    })
}

/// The table keyed by number, built once: captions are read for every record (four in
/// [`crate::normalize::derive`], the class again for its checks), and each read used to
/// format the number and search a map of strings.
struct Index {
    classes: FxHashMap<u32, (&'static Class, FxHashMap<i64, &'static str>)>,
    categories: FxHashMap<u32, &'static str>,
    severity: FxHashMap<i64, &'static str>,
}

fn index() -> &'static Index {
    static INDEX: OnceLock<Index> = OnceLock::new();
    INDEX.get_or_init(|| {
        let t = table();
        Index {
            classes: by_number(&t.classes)
                .map(|(uid, c)| (uid, (c, names(&c.activities))))
                .collect(),
            categories: names(&t.categories),
            severity: names(&t.severity),
        }
    })
}

/// The entries of a table keyed by numbers written as text, keyed by the numbers; an entry
/// whose key is not a number is left out.
fn by_number<K: std::str::FromStr, V>(
    m: &'static BTreeMap<String, V>,
) -> impl Iterator<Item = (K, &'static V)> {
    m.iter().filter_map(|(k, v)| Some((k.parse().ok()?, v)))
}

/// [`by_number`] for a table of names.
fn names<K: std::str::FromStr + std::hash::Hash + Eq>(
    m: &'static BTreeMap<String, String>,
) -> FxHashMap<K, &'static str> {
    by_number(m).map(|(k, v)| (k, v.as_str())).collect()
}

/// Every known class with its uid.
pub fn classes() -> impl Iterator<Item = (u32, &'static Class)> {
    index().classes.iter().map(|(&uid, (c, _))| (uid, *c))
}

/// A known event class, by uid.
pub fn class(uid: u32) -> Option<&'static Class> {
    index().classes.get(&uid).map(|(c, _)| *c)
}

pub fn class_name(uid: u32) -> &'static str {
    if uid == 0 {
        return "Base Event";
    }
    class(uid).map(|c| c.name.as_str()).unwrap_or("Unknown")
}

pub fn category_name(uid: u32) -> &'static str {
    index()
        .categories
        .get(&uid)
        .copied()
        .unwrap_or("Uncategorized")
}

pub fn activity_name(class_uid: u32, activity_id: i64) -> &'static str {
    match activity_id {
        0 => "Unknown",
        99 => "Other",
        _ => index()
            .classes
            .get(&class_uid)
            .and_then(|(_, activities)| activities.get(&activity_id))
            .copied()
            .unwrap_or("Other"),
    }
}

pub fn severity_name(severity_id: i64) -> &'static str {
    index()
        .severity
        .get(&severity_id)
        .copied()
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captions_read_by_number_match_the_table() {
        let t = table();
        for (uid, c) in &t.classes {
            let uid: u32 = uid.parse().unwrap();
            assert_eq!(class_name(uid), c.name);
            assert_eq!(
                category_name(c.category_uid),
                t.categories[&c.category_uid.to_string()]
            );
            for (id, name) in &c.activities {
                let id: i64 = id.parse().unwrap();
                if id != 0 && id != 99 {
                    assert_eq!(activity_name(uid, id), name);
                }
            }
        }
        for (id, name) in &t.severity {
            assert_eq!(severity_name(id.parse().unwrap()), name);
        }
        assert_eq!(activity_name(4001, 12345), "Other");
        assert_eq!(class_name(4242), "Unknown");
        assert_eq!(severity_name(-3), "Unknown");
    }

    #[test]
    fn table_has_the_classes_the_mappings_use() {
        for uid in [1001, 1007, 2004, 3002, 4001, 4002, 4003, 6003] {
            let c = class(uid).unwrap_or_else(|| panic!("class {uid}"));
            assert!(c.required.iter().any(|a| a == "time"), "{uid}");
            assert_eq!(c.category_uid, uid / 1000);
        }
        assert_eq!(class_name(3002), "Authentication");
        assert_eq!(activity_name(3002, 1), "Logon");
        assert_eq!(activity_name(3002, 99), "Other");
        assert_eq!(severity_name(5), "Critical");
        assert_eq!(category_name(4), "Network Activity");
        assert_eq!(table().ocsf_version, VERSION);
    }
}
