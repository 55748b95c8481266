//! Alerts' maps kept for the next alert of the same shape.
//!
//! Every alert of a class rule has nearly the same keys, and records of one source come
//! together. When a bundle has been written, its alert's map is put aside here, under its
//! class rule; the next alert of that rule is built into it
//! ([`Builder::into_map_reusing`](crate::path::Builder::into_map_reusing)), keeping every key and
//! tree node whose place is the same and taking only the new values. One map a rule and a
//! thread is kept, the latest.

use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};
use std::cell::RefCell;

thread_local! {
    static SPARE: RefCell<FxHashMap<usize, Map<String, Json>>> = RefCell::default();
}

/// What a spare map may hold beyond the keys its next alert's rules write: the captions
/// [`derive`](super::derive) writes after sanitising, which the map kept from last time. They
/// are set to null until `derive` writes them again, so that the sanitiser sees nothing there.
pub const LEFTOVER: &[(Option<&str>, &str)] = &[
    (None, "category_uid"),
    (None, "category_name"),
    (None, "class_name"),
    (None, "activity_name"),
    (None, "type_uid"),
    (None, "type_name"),
    (None, "severity"),
    (Some("metadata"), "version"),
];

/// Put `alert` aside for the next alert of `shape` (a class rule's identity; 0: none).
pub fn put(shape: usize, alert: Json) {
    if shape == 0 {
        return;
    }
    if let Json::Object(map) = alert {
        SPARE.with_borrow_mut(|s| s.insert(shape, map));
    }
}

/// The map put aside for `shape`, if any.
pub fn take(shape: usize) -> Option<Map<String, Json>> {
    SPARE.with_borrow_mut(|s| s.remove(&shape))
}

/// How many maps the thread holds.
pub fn held() -> usize {
    SPARE.with_borrow(|s| s.len())
}
