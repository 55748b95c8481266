//! Text lines (syslog header + CEF / LEEF / PAN-OS CSV / plain message) on arbitrary UTF-8.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(line) = std::str::from_utf8(data) {
        let _ = alertctx::decode::text::parse_line(line);
    }
});
