//! Alerts' maps kept for the next alert of the same shape.
//!
//! Every alert of a class rule has nearly the same keys, and records of one source come
//! together. When a bundle has been written, its alert's map is put aside here, under its
//! class rule; the next alert of that rule is built into it
//! ([`Builder::into_map_reusing`](crate::path::Builder::into_map_reusing)), keeping every key and
//! tree node whose place is the same and taking only the new values. One map a rule and a
//! thread is kept, the latest. A kept map holds the captions [`derive`](super::derive) wrote
//! after sanitising ([`DERIVED`](super::DERIVED)); the next alert keeps them in place as null,
//! which the sanitiser passes by, until `derive` writes them again.

use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};
use std::cell::RefCell;
use std::sync::LazyLock;

thread_local! {
    static SPARE: RefCell<FxHashMap<usize, Map<String, Json>>> = RefCell::default();
}

/// [`DERIVED`](super::DERIVED) as [`Builder::into_map_reusing`](crate::path::Builder::into_map_reusing)
/// takes it: (parent, key), no parent at the top.
pub static LEFTOVER: LazyLock<Vec<(Option<&str>, &str)>> = LazyLock::new(|| {
    super::DERIVED
        .iter()
        .map(|d| match d.split_once('.') {
            Some((parent, key)) => (Some(parent), key),
            None => (None, *d),
        })
        .collect()
});

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
