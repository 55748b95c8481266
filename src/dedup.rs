//! Deduplicate: fold repeats of the same alert inside an event-time window.
//!
//! A fingerprint is a hash of the class, the source and the key fields chosen for the class
//! (configurable; [`default_fields`] lists the defaults). The first occurrence passes and opens
//! a window; repeats inside the window are folded and counted; the first occurrence after the
//! window passes again and reports how many were folded since the previous bundle. Time is
//! event time; a record with no time uses the latest event time seen (the watermark), so the
//! outcome depends only on the input. Memory is bounded by an LRU of `capacity` fingerprints.
//!
//! [`decide`] is the pure decision; [`Deduper`] holds the state around it.

use lru::LruCache;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::num::NonZeroUsize;

/// `[dedup]` settings.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DedupConfig {
    /// Turn deduplication off: every record becomes a bundle.
    pub enabled: bool,
    /// Window length, event time (`10m`, `1h`).
    pub window: String,
    /// Most fingerprints remembered; the least recently seen is forgotten first.
    pub capacity: usize,
    /// Key fields per class uid, replacing the defaults for that class.
    pub fields: BTreeMap<String, Vec<String>>,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: true,
            window: "10m".into(),
            capacity: 1_000_000,
            fields: BTreeMap::new(),
        }
    }
}

/// Default key fields per class.
pub fn default_fields(class_uid: u32) -> &'static [&'static str] {
    match class_uid {
        2004 => &[
            "finding_info.uid",
            "finding_info.title",
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "device.hostname",
            "device.uid",
        ],
        3002 => &[
            "metadata.event_code",
            "activity_id",
            "status_id",
            "user.name",
            "user.uid",
            "user.domain",
            "logon_type_id",
            "src_endpoint.ip",
            "dst_endpoint.hostname",
            "device.hostname",
        ],
        4001 => &[
            "activity_id",
            "device.hostname",
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "dst_endpoint.port",
            "connection_info.protocol_name",
        ],
        4002 => &[
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "http_request.http_method",
            "http_request.url.hostname",
            "http_request.url.path",
            "http_response.code",
        ],
        4003 => &[
            "device.hostname",
            "src_endpoint.ip",
            "src_endpoint.hostname",
            "query.hostname",
            "query.type",
            "rcode_id",
        ],
        1007 => &[
            "activity_id",
            "device.hostname",
            "process.cmd_line",
            "process.file.path",
            "actor.process.file.path",
        ],
        1001 => &[
            "activity_id",
            "device.hostname",
            "file.path",
            "actor.process.file.path",
        ],
        6003 => &[
            "api.operation",
            "api.service.name",
            "resources.0.uid",
            "resources.0.name",
            "actor.user.uid",
            "actor.user.name",
            "src_endpoint.ip",
            "status_id",
        ],
        _ => &[],
    }
}

/// What the dedup layer of a bundle says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DedupInfo {
    pub fingerprint: String,
    /// Occurrences of this fingerprint seen so far, this one included.
    pub count: u64,
    /// Repeats folded since the previous bundle with this fingerprint.
    pub folded_since_previous: u64,
    /// Event time (ms) of the first remembered occurrence.
    pub first_seen: i64,
    /// Event time (ms) of this occurrence.
    pub last_seen: i64,
    pub window_ms: i64,
}

/// State for one fingerprint. 32 bytes, so that a remembered fingerprint (key, entry and the
/// LRU's two links) fits a 64-byte allocation: a million of them cost about 64 MiB plus the
/// hash table, not 80 MiB. Counts saturate at `u32::MAX` (four billion occurrences of one
/// fingerprint while it stays remembered).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry {
    pub window_start: i64,
    pub first_seen: i64,
    pub last_seen: i64,
    pub count: u32,
    pub folded: u32,
}

/// The outcome for one occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Emit a bundle; the entry to store afterwards.
    Emit(Entry),
    /// Fold into the open window; the entry to store afterwards.
    Fold(Entry),
}

/// Decide what one occurrence at event time `t` is, given what is remembered.
pub fn decide(prev: Option<Entry>, t: i64, window_ms: i64) -> Decision {
    match prev {
        None => Decision::Emit(Entry {
            window_start: t,
            first_seen: t,
            last_seen: t,
            count: 1,
            folded: 0,
        }),
        Some(e) if (t - e.window_start).abs() < window_ms => Decision::Fold(Entry {
            last_seen: e.last_seen.max(t),
            first_seen: e.first_seen.min(t),
            count: e.count.saturating_add(1),
            folded: e.folded.saturating_add(1),
            ..e
        }),
        Some(e) => Decision::Emit(Entry {
            window_start: t,
            first_seen: e.first_seen.min(t),
            last_seen: t,
            count: e.count.saturating_add(1),
            folded: e.folded,
        }),
    }
}

/// Hash the class, source and key fields of an alert. Absent fields hash as absent, so two
/// alerts that differ only in which fields are missing do not collide.
pub fn fingerprint(
    alert: &Json,
    class_uid: u32,
    source: &str,
    fields: &[impl AsRef<str>],
) -> [u8; 16] {
    let mut h = Sha256::new();
    h.update(class_uid.to_le_bytes());
    h.update(source.as_bytes());
    h.update([0]);
    if fields.is_empty() {
        // No key fields (Base Event, unknown classes): the whole normalized event is the key.
        h.update(alert.to_string().as_bytes());
    }
    for f in fields {
        match crate::path::get(alert, f.as_ref()) {
            Some(v) => {
                h.update([1]);
                h.update(v.to_string().as_bytes());
            }
            None => h.update([2]),
        }
        h.update([0]);
    }
    let digest = h.finalize();
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The outcome the pipeline acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    First(DedupInfo),
    Repeat { fingerprint: String, count: u64 },
}

pub struct Deduper {
    enabled: bool,
    window_ms: i64,
    fields: BTreeMap<u32, Vec<String>>,
    /// Grows with use up to `capacity` (an `LruCache::new(capacity)` would allocate the whole
    /// table up front: tens of MB for the default million keys).
    seen: LruCache<[u8; 16], Entry>,
    capacity: usize,
    watermark: i64,
}

impl Deduper {
    pub fn new(cfg: &DedupConfig) -> anyhow::Result<Deduper> {
        let window_ms = crate::timeparse::parse_duration_ms(&cfg.window).ok_or_else(|| {
            anyhow::anyhow!("dedup.window: `{}` is not a duration like 10m", cfg.window)
        })?;
        let capacity = NonZeroUsize::new(cfg.capacity)
            .ok_or_else(|| anyhow::anyhow!("dedup.capacity must be at least 1"))?
            .get();
        let mut fields = BTreeMap::new();
        for (class, list) in &cfg.fields {
            let uid: u32 = class
                .parse()
                .map_err(|_| anyhow::anyhow!("dedup.fields: `{class}` is not a class uid"))?;
            fields.insert(uid, list.clone());
        }
        Ok(Deduper {
            enabled: cfg.enabled,
            window_ms,
            fields,
            seen: LruCache::unbounded(),
            capacity,
            watermark: 0,
        })
    }

    /// Remembered fingerprints.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    pub fn check(&mut self, alert: &Json, class_uid: u32, source: &str) -> Verdict {
        let fp = match self.fields.get(&class_uid) {
            Some(list) => fingerprint(alert, class_uid, source, list),
            None => fingerprint(alert, class_uid, source, default_fields(class_uid)),
        };
        let hex = hex::encode(fp);
        let t = match alert.get("time").and_then(Json::as_i64) {
            Some(t) => {
                self.watermark = self.watermark.max(t);
                t
            }
            None => self.watermark,
        };
        if !self.enabled {
            return Verdict::First(DedupInfo {
                fingerprint: hex,
                count: 1,
                folded_since_previous: 0,
                first_seen: t,
                last_seen: t,
                window_ms: 0,
            });
        }
        match decide(self.seen.get(&fp).copied(), t, self.window_ms) {
            Decision::Fold(e) => {
                self.seen.put(fp, e);
                Verdict::Repeat {
                    fingerprint: hex,
                    count: e.count.into(),
                }
            }
            Decision::Emit(e) => {
                let folded = e.folded;
                self.seen.put(fp, Entry { folded: 0, ..e });
                while self.seen.len() > self.capacity {
                    self.seen.pop_lru();
                }
                Verdict::First(DedupInfo {
                    fingerprint: hex,
                    count: e.count.into(),
                    folded_since_previous: folded.into(),
                    first_seen: e.first_seen,
                    last_seen: e.last_seen,
                    window_ms: self.window_ms,
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const W: i64 = 600_000;

    #[test]
    fn an_entry_and_its_key_fit_a_64_byte_lru_node() {
        // key + entry + the LRU list's prev/next pointers.
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert!(16 + std::mem::size_of::<Entry>() + 2 * std::mem::size_of::<usize>() <= 64);
        let e = Entry {
            window_start: 0,
            first_seen: 0,
            last_seen: 0,
            count: u32::MAX,
            folded: u32::MAX,
        };
        let Decision::Fold(f) = decide(Some(e), 1, W) else {
            panic!()
        };
        assert_eq!((f.count, f.folded), (u32::MAX, u32::MAX), "counts saturate");
    }

    #[test]
    fn decide_windows() {
        let Decision::Emit(e) = decide(None, 1_000, W) else {
            panic!()
        };
        assert_eq!((e.count, e.folded), (1, 0));
        let Decision::Fold(e) = decide(Some(e), 1_000 + W - 1, W) else {
            panic!()
        };
        assert_eq!((e.count, e.folded, e.last_seen), (2, 1, 1_000 + W - 1));
        let Decision::Emit(e2) = decide(Some(e), 1_000 + W, W) else {
            panic!()
        };
        assert_eq!(
            (e2.count, e2.folded, e2.first_seen, e2.window_start),
            (3, 1, 1_000, 1_000 + W)
        );
        // A late occurrence inside the window still folds and never moves last_seen back.
        let Decision::Fold(e3) = decide(Some(e2), 1_000 + W - 10, W) else {
            panic!()
        };
        assert_eq!(e3.last_seen, 1_000 + W);
    }

    #[test]
    fn fingerprints_use_key_fields_only() {
        let a = json!({"src_endpoint": {"ip": "10.0.0.1"}, "query": {"hostname": "x.example"}, "time": 1});
        let b = json!({"src_endpoint": {"ip": "10.0.0.1"}, "query": {"hostname": "x.example"}, "time": 2});
        let c = json!({"src_endpoint": {"ip": "10.0.0.2"}, "query": {"hostname": "x.example"}, "time": 1});
        let f = default_fields(4003);
        assert_eq!(
            fingerprint(&a, 4003, "zeek", f),
            fingerprint(&b, 4003, "zeek", f)
        );
        assert_ne!(
            fingerprint(&a, 4003, "zeek", f),
            fingerprint(&c, 4003, "zeek", f)
        );
        assert_ne!(
            fingerprint(&a, 4003, "zeek", f),
            fingerprint(&a, 4003, "suricata", f)
        );
        assert_ne!(
            fingerprint(&json!({"a": 1}), 4003, "s", &["a", "b"]),
            fingerprint(&json!({"b": 1}), 4003, "s", &["a", "b"])
        );
    }

    #[test]
    fn deduper_counts_and_bounds_memory() {
        let mut d = Deduper::new(&DedupConfig {
            capacity: 2,
            ..Default::default()
        })
        .unwrap();
        let ev = |ip: &str, t: i64| json!({"src_endpoint": {"ip": ip}, "query": {"hostname": "h"}, "time": t});
        assert!(matches!(
            d.check(&ev("1.1.1.1", 0), 4003, "s"),
            Verdict::First(_)
        ));
        assert!(matches!(
            d.check(&ev("1.1.1.1", 10), 4003, "s"),
            Verdict::Repeat { count: 2, .. }
        ));
        assert!(
            matches!(
                d.check(
                    &json!({"src_endpoint": {"ip": "1.1.1.1"}, "query": {"hostname": "h"}}),
                    4003,
                    "s"
                ),
                Verdict::Repeat { count: 3, .. }
            ),
            "no time: watermark"
        );
        let Verdict::First(info) = d.check(&ev("1.1.1.1", W + 5), 4003, "s") else {
            panic!()
        };
        assert_eq!(
            (info.count, info.folded_since_previous, info.first_seen),
            (4, 2, 0)
        );
        d.check(&ev("2.2.2.2", 0), 4003, "s");
        d.check(&ev("3.3.3.3", 0), 4003, "s");
        assert_eq!(d.len(), 2);
        assert!(
            matches!(d.check(&ev("1.1.1.1", W + 6), 4003, "s"), Verdict::First(_)),
            "evicted, so new again"
        );
    }
}
