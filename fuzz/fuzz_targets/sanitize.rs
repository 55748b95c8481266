//! The sanitiser on arbitrary UTF-8: never panics, stays within the cap, cleaning twice
//! changes nothing, and a field sanitised twice reports nothing the second time.
#![no_main]

use alertctx::sanitize::{clean, SafetyConfig, Sanitizer};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static SANITIZER: OnceLock<Sanitizer> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let cap = 16 + data.first().copied().unwrap_or(0) as usize;
    let c = clean(text, cap);
    assert!(c.text.chars().count() <= cap);
    let again = clean(&c.text, cap);
    assert_eq!(again.text, c.text);
    assert_eq!(again.counts, [0; 9]);
    assert!(again.truncated_from.is_none());

    let s = SANITIZER
        .get_or_init(|| Sanitizer::new(&SafetyConfig::default()).expect("default configuration"));
    for field in ["message", "unmapped.x"] {
        let (out, _) = s.sanitize_field(field, text);
        let (twice, second) = s.sanitize_field(field, &out);
        assert_eq!(twice, out);
        assert!(second.removals.is_empty() && second.truncations.is_empty());
    }
});
