//! The whole core on arbitrary input: framing, every decoder (JSON, envelopes, XML, Zeek TSV,
//! CEF/LEEF/PAN/syslog), every mapping, scoring and serialisation. Every framed record must
//! end as exactly the outcomes the pipeline reports; nothing may panic.
#![no_main]

use alertctx::config::Config;
use alertctx::decode::framing::frame_all;
use alertctx::pipeline::{Pipeline, RecordContext};
use libfuzzer_sys::fuzz_target;
use std::sync::{Mutex, OnceLock};

static PIPELINE: OnceLock<Mutex<Pipeline>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let p = PIPELINE.get_or_init(|| {
        let mut cfg = Config::default();
        cfg.quality.reference_time = "none".into();
        cfg.pipeline.max_record_bytes = 64 * 1024;
        Mutex::new(Pipeline::from_config(&cfg).expect("default pipeline"))
    });
    let mut p = p.lock().unwrap();
    let mut out = Vec::new();
    for f in frame_all("fuzz", data, p.limits()) {
        let before = out.len();
        p.process_framed(f, RecordContext::default(), &mut out);
        assert!(out.len() > before, "a framed record produced no outcome");
    }
});
