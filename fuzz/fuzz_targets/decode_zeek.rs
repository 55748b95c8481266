//! Zeek TSV rows under a fixed conn.log-like header.
#![no_main]

use alertctx::decode::zeek_tsv::ZeekHeader;
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const HEADER: [&str; 7] = [
    "#separator \\x09",
    "#set_separator\t,",
    "#empty_field\t(empty)",
    "#unset_field\t-",
    "#path\tconn",
    "#fields\tts\tuid\tid.orig_h\tid.orig_p\tproto\tduration\torig_bytes\tlocal_orig\thistory\ttunnel_parents\tTTLs",
    "#types\ttime\tstring\taddr\tport\tenum\tinterval\tcount\tbool\tstring\tset[string]\tvector[interval]",
];

fn header() -> &'static ZeekHeader {
    static HEADER_CELL: OnceLock<ZeekHeader> = OnceLock::new();
    HEADER_CELL.get_or_init(|| {
        let mut h = ZeekHeader::default();
        for line in HEADER {
            assert!(h.apply_directive(line), "{line}");
        }
        h
    })
}

fuzz_target!(|data: &[u8]| {
    if let Ok(row) = std::str::from_utf8(data) {
        let _ = header().parse_row(row);
    }
});
