//! OCSF 1.8 facts the pipeline needs at run time: class and category names, activity
//! captions, severity captions, and which attributes each class requires or recommends.
//!
//! The table is `schemas/ocsf/classes.json`, generated from the OCSF schema by
//! `tools/gen_ocsf_classes.py` and embedded in the binary.

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

/// A known event class, by uid.
pub fn class(uid: u32) -> Option<&'static Class> {
    table().classes.get(&uid.to_string())
}

pub fn class_name(uid: u32) -> &'static str {
    if uid == 0 {
        return "Base Event";
    }
    class(uid).map(|c| c.name.as_str()).unwrap_or("Unknown")
}

pub fn category_name(uid: u32) -> &'static str {
    table()
        .categories
        .get(&uid.to_string())
        .map(String::as_str)
        .unwrap_or("Uncategorized")
}

pub fn activity_name(class_uid: u32, activity_id: i64) -> &'static str {
    match activity_id {
        0 => "Unknown",
        99 => "Other",
        _ => class(class_uid)
            .and_then(|c| c.activities.get(&activity_id.to_string()))
            .map(String::as_str)
            .unwrap_or("Other"),
    }
}

pub fn severity_name(severity_id: i64) -> &'static str {
    table()
        .severity
        .get(&severity_id.to_string())
        .map(String::as_str)
        .unwrap_or("Unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

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
