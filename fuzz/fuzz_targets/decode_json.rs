//! Framing and the JSON decoder alone, on arbitrary bytes: whatever the framer cuts out of
//! the input (NDJSON lines, values spanning lines, envelopes, XML, Zeek TSV, text) is decoded
//! with small limits, so the size and depth caps are reached often. A decode may fail with a
//! reason; it may not panic.
#![no_main]

use alertctx::decode::framing::{frame_all, Framed};
use alertctx::decode::{decode_record, Limits};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let limits = Limits {
        max_record_bytes: 16 * 1024,
        max_depth: 32,
    };
    let mut buf = Vec::new();
    for f in frame_all("fuzz", data, limits) {
        if let Framed::Record(r) = f {
            let _ = decode_record(&r, &mut buf, &limits);
        }
    }
});
