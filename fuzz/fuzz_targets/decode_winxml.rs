//! Windows event XML.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(xml) = std::str::from_utf8(data) {
        let _ = alertctx::decode::winxml::parse_event(xml, 64);
    }
});
