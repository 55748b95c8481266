//! Deduplicate: fold repeats of the same alert inside an event-time window.
//!
//! A fingerprint is a hash of the class, the source and the key fields chosen for the class
//! (configurable; [`default_fields`] lists the defaults). The first occurrence passes and opens
//! a window; repeats inside the window are folded and counted; the first occurrence after the
//! window passes again and reports how many were folded since the previous bundle. Time is
//! event time; a record with no time uses the latest event time seen (the watermark), so the
//! outcome depends only on the input. Memory is bounded by an LRU of `capacity` fingerprints
//! ([`FingerprintLru`]: 56 bytes a fingerprint plus 5 bytes a hash bucket).
//!
//! [`decide`] is the pure decision; [`Deduper`] holds the state around it.

use crate::path::JPath;
use hashbrown::HashTable;
use serde::{Deserialize, Serialize};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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
    /// Records remembered by their bytes, so that an exact repeat of one (the same bytes from
    /// the same input) is folded without being decoded, normalized or sanitised again, with
    /// the outcome the whole path gives it (`src/exact.rs`). About 70 bytes a record; 0 turns
    /// it off. Deduplication turned off turns it off too.
    pub exact_repeats: usize,
}

impl Default for DedupConfig {
    fn default() -> Self {
        DedupConfig {
            enabled: true,
            window: "10m".into(),
            capacity: 1_000_000,
            fields: BTreeMap::new(),
            exact_repeats: 65_536,
        }
    }
}

/// Default key fields per class.
pub fn default_fields(class_uid: u32) -> &'static [&'static str] {
    DEFAULT_FIELDS
        .iter()
        .find(|(uid, _)| *uid == class_uid)
        .map_or(&[], |(_, fields)| fields)
}

/// The classes with default key fields, and their fields.
const DEFAULT_FIELDS: &[(u32, &[&str])] = &[
    (
        2004,
        &[
            "finding_info.uid",
            "finding_info.title",
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "device.hostname",
            "device.uid",
        ],
    ),
    (
        3002,
        &[
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
    ),
    (
        4001,
        &[
            "activity_id",
            "device.hostname",
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "dst_endpoint.port",
            "connection_info.protocol_name",
        ],
    ),
    (
        4002,
        &[
            "src_endpoint.ip",
            "dst_endpoint.ip",
            "http_request.http_method",
            "http_request.url.hostname",
            "http_request.url.path",
            "http_response.code",
        ],
    ),
    (
        4003,
        &[
            "device.hostname",
            "src_endpoint.ip",
            "src_endpoint.hostname",
            "query.hostname",
            "query.type",
            "rcode_id",
        ],
    ),
    (
        1007,
        &[
            "activity_id",
            "device.hostname",
            "process.cmd_line",
            "process.file.path",
            "actor.process.file.path",
        ],
    ),
    (
        1001,
        &[
            "activity_id",
            "device.hostname",
            "file.path",
            "actor.process.file.path",
        ],
    ),
    (
        6003,
        &[
            "api.operation",
            "api.service.name",
            "resources.0.uid",
            "resources.0.name",
            "actor.user.uid",
            "actor.user.name",
            "src_endpoint.ip",
            "status_id",
        ],
    ),
];

/// What the dedup layer of a bundle says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DedupInfo {
    pub fingerprint: HexId,
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

/// State for one fingerprint: 32 bytes, so that a remembered fingerprint (key, entry and the
/// LRU's two links) takes 56. Counts saturate at `u32::MAX` (four billion occurrences of one
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
    let values = fields.iter().map(|f| crate::path::get(alert, f.as_ref()));
    digest(alert, class_uid, source, values, &mut Vec::new())
}

/// [`fingerprint`] with the key fields compiled, the hashed bytes gathered in `buf` (left
/// holding them): the same digest.
fn fingerprint_compiled(
    alert: &Json,
    class_uid: u32,
    source: &str,
    fields: &[JPath],
    buf: &mut Vec<u8>,
) -> [u8; 16] {
    // Key fields share first segments (`user.name`, `user.uid`, `user.domain`): a view looks
    // each up once.
    let view = crate::path::AlertView::new(alert);
    let values = fields.iter().map(|f| f.get_in(&view));
    digest(alert, class_uid, source, values, buf)
}

/// The fingerprint of an alert whose key fields hold `values`: SHA-256 of the class, the
/// source, and each value as its compact JSON text (what `to_string` writes), first gathered
/// in `buf` so that the hash is fed once.
fn digest<'v>(
    alert: &Json,
    class_uid: u32,
    source: &str,
    values: impl ExactSizeIterator<Item = Option<&'v Json>>,
    buf: &mut Vec<u8>,
) -> [u8; 16] {
    buf.clear();
    buf.extend_from_slice(&class_uid.to_le_bytes());
    buf.extend_from_slice(source.as_bytes());
    buf.push(0);
    if values.len() == 0 {
        // No key fields (Base Event, unknown classes): the whole normalized event is the key.
        crate::jsonout::write_value(buf, alert);
    }
    for v in values {
        match v {
            Some(v) => {
                buf.push(1);
                crate::jsonout::write_value(buf, v);
            }
            None => buf.push(2),
        }
        buf.push(0);
    }
    let digest = Sha256::digest(&buf[..]);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// What a dedup decision reads of an alert ([`Deduper::key`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DedupKey {
    pub fingerprint: [u8; 16],
    /// The alert's `time` (ms), when it has one.
    pub time: Option<i64>,
}

/// The outcome the pipeline acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    First(DedupInfo),
    Repeat { fingerprint: HexId, count: u64 },
}

/// Fingerprints most recently seen, at most `capacity` of them, in one vector of nodes linked
/// by index (most recent first) and a hash table of node indices. Against `lru::LruCache`
/// (a 64-byte allocation per key and a 16-byte bucket) a million fingerprints take about
/// 63 MiB instead of 98 MiB, and a new fingerprint allocates nothing once the window is full.
///
/// A key is 16 bytes of a cryptographic digest or keyed hash, whose first eight bytes serve as
/// the hash; `V` is what is remembered under it (the window's [`Entry`] here, what a record's
/// bytes gave in [`crate::exact`]).
pub struct FingerprintLru<V = Entry> {
    nodes: Vec<Node<V>>,
    table: HashTable<u32>,
    /// Most and least recently used node; `NIL` when empty.
    head: u32,
    tail: u32,
    capacity: usize,
}

struct Node<V> {
    key: [u8; 16],
    entry: V,
    prev: u32,
    next: u32,
}

const NIL: u32 = u32::MAX;

/// Most fingerprints a [`FingerprintLru`] can hold (node indices are `u32`).
pub const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

/// Nodes reserved up front: untouched reserved pages cost no memory, and reserving saves the
/// copy (and the moment of holding old and new vectors both) when the vector doubles.
const RESERVE_NODES: usize = 1 << 22;

impl<V> FingerprintLru<V> {
    /// What one remembered key takes, besides its 5 bytes in the hash table.
    pub const NODE_BYTES: usize = std::mem::size_of::<Node<V>>();

    pub fn new(capacity: usize) -> FingerprintLru<V> {
        assert!((1..=MAX_CAPACITY).contains(&capacity));
        FingerprintLru {
            nodes: Vec::with_capacity(capacity.min(RESERVE_NODES)),
            table: HashTable::new(),
            head: NIL,
            tail: NIL,
            capacity,
        }
    }

    /// The key is a digest already: its first bytes are the hash.
    fn hash(key: &[u8; 16]) -> u64 {
        u64::from_le_bytes(key[..8].try_into().expect("8 bytes"))
    }

    fn find(&self, key: &[u8; 16]) -> Option<u32> {
        let nodes = &self.nodes;
        self.table
            .find(Self::hash(key), |&i| nodes[i as usize].key == *key)
            .copied()
    }

    fn unlink(&mut self, i: u32) {
        let (prev, next) = {
            let n = &self.nodes[i as usize];
            (n.prev, n.next)
        };
        match prev {
            NIL => self.head = next,
            p => self.nodes[p as usize].next = next,
        }
        match next {
            NIL => self.tail = prev,
            n => self.nodes[n as usize].prev = prev,
        }
    }

    fn push_front(&mut self, i: u32) {
        let old = self.head;
        {
            let n = &mut self.nodes[i as usize];
            n.prev = NIL;
            n.next = old;
        }
        match old {
            NIL => self.tail = i,
            o => self.nodes[o as usize].prev = i,
        }
        self.head = i;
    }

    /// Whether `key` is remembered, without marking it used.
    pub fn contains(&self, key: &[u8; 16]) -> bool {
        self.find(key).is_some()
    }

    /// The entry for `key`, without marking it used.
    pub fn peek(&self, key: &[u8; 16]) -> Option<&V> {
        self.find(key).map(|i| &self.nodes[i as usize].entry)
    }

    /// The entry for `key`, marked most recently used, to read or replace in place.
    pub fn get_mut(&mut self, key: &[u8; 16]) -> Option<&mut V> {
        let i = self.find(key)?;
        if self.head != i {
            self.unlink(i);
            self.push_front(i);
        }
        Some(&mut self.nodes[i as usize].entry)
    }

    /// The entry for `key`, marking it most recently used.
    pub fn get(&mut self, key: &[u8; 16]) -> Option<V>
    where
        V: Clone,
    {
        self.get_mut(key).map(|e| e.clone())
    }

    /// Store `entry` under `key` as the most recently used; when `key` is new and the LRU is
    /// full, the least recently used fingerprint is forgotten and its node reused.
    pub fn put(&mut self, key: [u8; 16], entry: V) {
        match self.get_mut(&key) {
            Some(e) => *e = entry,
            None => self.insert_new(key, entry),
        }
    }

    /// [`put`](FingerprintLru::put) for a key known to be absent.
    fn insert_new(&mut self, key: [u8; 16], entry: V) {
        let i = if self.nodes.len() < self.capacity {
            self.nodes.push(Node {
                key,
                entry,
                prev: NIL,
                next: NIL,
            });
            (self.nodes.len() - 1) as u32
        } else {
            let i = self.tail;
            let old = self.nodes[i as usize].key;
            self.table
                .find_entry(Self::hash(&old), |&j| j == i)
                .expect("every node is in the table")
                .remove();
            self.unlink(i);
            let n = &mut self.nodes[i as usize];
            n.key = key;
            n.entry = entry;
            i
        };
        self.push_front(i);
        let nodes = &self.nodes;
        self.table
            .insert_unique(Self::hash(&key), i, |&j| Self::hash(&nodes[j as usize].key));
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

pub struct Deduper {
    enabled: bool,
    window_ms: i64,
    /// Key fields by class uid: the defaults, replaced by the configured ones. Classes not
    /// here have none (the whole event is the key).
    fields: BTreeMap<u32, Vec<JPath>>,
    seen: FingerprintLru,
    watermark: i64,
    /// The bytes of the last fingerprint, kept for their allocation.
    scratch: Vec<u8>,
}

impl Deduper {
    pub fn new(cfg: &DedupConfig) -> anyhow::Result<Deduper> {
        let window_ms = crate::timeparse::parse_duration_ms(&cfg.window).ok_or_else(|| {
            anyhow::anyhow!("dedup.window: `{}` is not a duration like 10m", cfg.window)
        })?;
        let capacity = cfg.capacity;
        if !(1..=MAX_CAPACITY).contains(&capacity) {
            anyhow::bail!("dedup.capacity must be between 1 and {MAX_CAPACITY}");
        }
        let mut fields: BTreeMap<u32, Vec<JPath>> = DEFAULT_FIELDS
            .iter()
            .map(|(uid, list)| (*uid, list.iter().map(|f| JPath::new(f)).collect()))
            .collect();
        for (class, list) in &cfg.fields {
            let uid: u32 = class
                .parse()
                .map_err(|_| anyhow::anyhow!("dedup.fields: `{class}` is not a class uid"))?;
            fields.insert(uid, list.iter().map(|f| JPath::new(f)).collect());
        }
        Ok(Deduper {
            enabled: cfg.enabled,
            window_ms,
            fields,
            seen: FingerprintLru::new(capacity),
            watermark: 0,
            scratch: Vec::new(),
        })
    }

    /// Remembered fingerprints.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }

    /// Fold or keep an alert: [`key`](Deduper::key), then [`check_key`](Deduper::check_key).
    pub fn check(&mut self, alert: &Json, class_uid: u32, source: &str) -> Verdict {
        let key = self.key(alert, class_uid, source);
        self.check_key(key)
    }

    /// All that the decision about an alert reads of it: its fingerprint and its time.
    pub fn key(&mut self, alert: &Json, class_uid: u32, source: &str) -> DedupKey {
        let fields = self.fields.get(&class_uid).map_or(&[][..], Vec::as_slice);
        DedupKey {
            fingerprint: fingerprint_compiled(alert, class_uid, source, fields, &mut self.scratch),
            time: alert.get("time").and_then(Json::as_i64),
        }
    }

    /// The decision for an alert with this key, the window updated: what [`check`] gives
    /// for the alert the key was taken of.
    ///
    /// [`check`]: Deduper::check
    pub fn check_key(&mut self, key: DedupKey) -> Verdict {
        let fp = key.fingerprint;
        let t = match key.time {
            Some(t) => {
                self.watermark = self.watermark.max(t);
                t
            }
            None => self.watermark,
        };
        if !self.enabled {
            return unfolded(fp, t);
        }
        // One lookup: the remembered entry is replaced in place, or a new one inserted.
        let slot = self.seen.get_mut(&fp);
        let (verdict, stored) = verdict_of(fp, t, slot.as_deref().copied(), self.window_ms);
        match slot {
            Some(s) => *s = stored,
            None => self.seen.insert_new(fp, stored),
        }
        verdict
    }

    /// The decision [`check_key`](Deduper::check_key) would take for `key` if the alerts
    /// whose decisions `pending` holds (fingerprint → the entry each left) were checked
    /// first, without changing the window: `pending` takes this alert's entry instead.
    /// `None` for an alert without a time of its own, whose decision reads the watermark,
    /// which every earlier alert moves.
    ///
    /// The pipeline uses it to finish alerts before their turn in input order
    /// ([`crate::pipeline::Pipeline::process_grouped`]) and confirms each guess with
    /// `check_key` in input order. The guess is right when every earlier alert of the run
    /// with the fingerprint was guessed before it, in input order (an exact repeat, folded
    /// by its bytes, is not guessed), and the window forgets none of their entries in
    /// between; a wrong guess costs the alert's work again, never a different outcome.
    pub fn speculate(&self, key: DedupKey, pending: &mut Pending) -> Option<Verdict> {
        let t = key.time?;
        let fp = key.fingerprint;
        if !self.enabled {
            return Some(unfolded(fp, t));
        }
        let prev = match pending.get(&fp) {
            Some(e) => Some(*e),
            None => self.seen.peek(&fp).copied(),
        };
        let (verdict, stored) = verdict_of(fp, t, prev, self.window_ms);
        pending.insert(fp, stored);
        Some(verdict)
    }
}

/// Fingerprint → the entry its latest speculated decision left ([`Deduper::speculate`]).
pub type Pending = rustc_hash::FxHashMap<[u8; 16], Entry>;

/// A fingerprint (or any 16 bytes) in lower-case hex, as `hex::encode` writes it: 32 ASCII
/// digits held inline. A record's decision, the guess at it and its bundle id each wrote one,
/// as a `String` of its own until the twenty-first round (three allocations a record, and
/// `hex::encode`, which builds its string a `char` at a time, about 900 instructions for 16
/// bytes before that).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HexId([u8; 32]);

impl HexId {
    pub fn as_str(&self) -> &str {
        // SAFETY: `hex16` is the only way to make a `HexId`, and it fills all 32 bytes with
        // hex digits, which are ASCII.
        unsafe { std::str::from_utf8_unchecked(&self.0) }
    }
}

impl std::ops::Deref for HexId {
    type Target = str;
    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl std::fmt::Display for HexId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for HexId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for HexId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// `bytes` in lower-case hex ([`HexId`]).
pub fn hex16(bytes: &[u8; 16]) -> HexId {
    let mut buf = [0u8; 32];
    hex::encode_to_slice(bytes, &mut buf).expect("32 digits for 16 bytes");
    HexId(buf)
}

/// What a window that is turned off says of an alert at `t`: a first, alone.
fn unfolded(fp: [u8; 16], t: i64) -> Verdict {
    Verdict::First(DedupInfo {
        fingerprint: hex16(&fp),
        count: 1,
        folded_since_previous: 0,
        first_seen: t,
        last_seen: t,
        window_ms: 0,
    })
}

/// [`decide`], as the verdict the pipeline acts on and the entry to remember.
fn verdict_of(fp: [u8; 16], t: i64, prev: Option<Entry>, window_ms: i64) -> (Verdict, Entry) {
    let hex = hex16(&fp);
    match decide(prev, t, window_ms) {
        Decision::Fold(e) => (
            Verdict::Repeat {
                fingerprint: hex,
                count: e.count.into(),
            },
            e,
        ),
        Decision::Emit(e) => {
            let verdict = Verdict::First(DedupInfo {
                fingerprint: hex,
                count: e.count.into(),
                folded_since_previous: e.folded.into(),
                first_seen: e.first_seen,
                last_seen: e.last_seen,
                window_ms,
            });
            (verdict, Entry { folded: 0, ..e })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn hex16_writes_what_hex_encode_writes() {
        for start in (0..=255u8).step_by(16) {
            let bytes: [u8; 16] = std::array::from_fn(|i| start.wrapping_add(i as u8 * 17));
            assert_eq!(hex16(&bytes).as_str(), hex::encode(bytes));
        }
        assert_eq!(hex16(&[0xAB; 16]).as_str(), "ab".repeat(16));
    }

    const W: i64 = 600_000;

    #[test]
    fn a_remembered_fingerprint_takes_56_bytes() {
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<Node<Entry>>(), 56);
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

    fn key(n: u32) -> [u8; 16] {
        // Digest-like keys: spread over the first eight bytes, which are the hash.
        let mut k = [0u8; 16];
        k[..8].copy_from_slice(&(u64::from(n).wrapping_mul(0x9E37_79B9_7F4A_7C15)).to_le_bytes());
        k[12..].copy_from_slice(&n.to_le_bytes());
        k
    }

    fn entry(n: u32) -> Entry {
        Entry {
            window_start: n.into(),
            first_seen: 0,
            last_seen: 0,
            count: n,
            folded: 0,
        }
    }

    #[test]
    fn lru_forgets_the_least_recently_used() {
        let mut lru: FingerprintLru = FingerprintLru::new(3);
        for n in 0..3 {
            lru.put(key(n), entry(n));
        }
        assert_eq!(
            lru.get(&key(0)).map(|e| e.count),
            Some(0),
            "0 is now the most recent"
        );
        lru.put(key(3), entry(3)); // forgets 1
        assert_eq!(lru.len(), 3);
        assert_eq!(lru.get(&key(1)), None);
        lru.put(key(2), entry(20)); // an update, not an insert: nothing forgotten
        assert_eq!(lru.len(), 3);
        lru.put(key(4), entry(4)); // forgets 0 (3, 2 and 4 are more recent)
        assert_eq!(lru.get(&key(0)), None);
        let counts: Vec<_> = [2, 3, 4]
            .map(|n| lru.get(&key(n)).map(|e| e.count))
            .to_vec();
        assert_eq!(counts, [Some(20), Some(3), Some(4)]);
    }

    #[test]
    fn lru_agrees_with_a_naive_model_under_churn() {
        // The model: a vector of (key, value), most recent last.
        let cap = 64;
        let mut lru: FingerprintLru = FingerprintLru::new(cap);
        let mut model: Vec<(u32, u32)> = Vec::new();
        let mut x: u64 = 7;
        for step in 0..20_000u32 {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let k = ((x >> 33) % 150) as u32;
            if x & 1 == 0 {
                let got = lru.get(&key(k)).map(|e| e.count);
                let want = model.iter().position(|&(mk, _)| mk == k).map(|p| {
                    let kv = model.remove(p);
                    model.push(kv);
                    kv.1
                });
                assert_eq!(got, want, "get {k} at step {step}");
            } else {
                lru.put(key(k), entry(step));
                if let Some(p) = model.iter().position(|&(mk, _)| mk == k) {
                    model.remove(p);
                } else if model.len() == cap {
                    model.remove(0);
                }
                model.push((k, step));
            }
            assert_eq!(lru.len(), model.len());
        }
    }

    #[test]
    fn capacity_bounds_are_checked() {
        for capacity in [0, MAX_CAPACITY + 1] {
            let err = Deduper::new(&DedupConfig {
                capacity,
                ..Default::default()
            })
            .err()
            .expect("refused");
            assert!(err.to_string().contains("dedup.capacity"), "{err}");
        }
    }

    #[test]
    fn a_guess_in_input_order_is_the_decision() {
        // Keys of four fingerprints at times spread over three windows, in a fixed order.
        let keys: Vec<DedupKey> = (0..400u32)
            .map(|i| DedupKey {
                fingerprint: key(i * 7 % 4),
                time: Some(i64::from(i * 7919 % 400) * W / 100),
            })
            .collect();
        let cfg = |capacity| DedupConfig {
            capacity,
            ..DedupConfig::default()
        };
        let mut real = Deduper::new(&cfg(100)).unwrap();
        let guesser = Deduper::new(&cfg(100)).unwrap();
        let mut pending = Pending::default();
        let mut firsts = 0;
        for (i, k) in keys.iter().enumerate() {
            let guess = guesser.speculate(*k, &mut pending);
            let decision = real.check_key(*k);
            firsts += usize::from(matches!(decision, Verdict::First(_)));
            assert_eq!(guess, Some(decision), "key {i}");
        }
        assert!(
            (20..380).contains(&firsts),
            "{firsts} firsts: both outcomes are tested"
        );
        assert_eq!(guesser.len(), 0, "guessing leaves the window as it was");
        // Without a time of its own, an alert's decision reads the watermark: no guess.
        let untimed = DedupKey {
            fingerprint: key(1),
            time: None,
        };
        assert_eq!(guesser.speculate(untimed, &mut pending), None);
        // A window that forgets an entry between the guess and the decision: the guess was
        // taken on what was remembered, the decision on nothing.
        let mut small = Deduper::new(&cfg(1)).unwrap();
        let at = |n, t| DedupKey {
            fingerprint: key(n),
            time: Some(t),
        };
        small.check_key(at(1, 0));
        let guess = small.speculate(at(1, 5), &mut Pending::default());
        assert!(matches!(guess, Some(Verdict::Repeat { count: 2, .. })));
        small.check_key(at(2, 3));
        assert!(matches!(small.check_key(at(1, 5)), Verdict::First(_)));
        // Off: every alert is a first, guessed or not.
        let mut off = Deduper::new(&DedupConfig {
            enabled: false,
            ..DedupConfig::default()
        })
        .unwrap();
        let guess = off.speculate(at(1, 5), &mut Pending::default());
        assert_eq!(guess, Some(off.check_key(at(1, 5))));
        assert_eq!(guess, Some(off.check_key(at(1, 5))));
    }

    proptest::proptest! {
        /// Guessed in input order, with a window that forgets nothing, every guess is the
        /// decision: any number of fingerprints' alerts, interleaved, at any times, early or
        /// late, in windows of any length.
        #[test]
        fn guesses_in_input_order_are_the_decisions(
            alerts in proptest::collection::vec((0u32..6, 0i64..50), 1..300),
            window_s in 1u32..40,
        ) {
            let cfg = DedupConfig {
                capacity: 6,
                window: format!("{window_s}s"),
                ..DedupConfig::default()
            };
            let mut real = Deduper::new(&cfg).unwrap();
            let guesser = Deduper::new(&cfg).unwrap();
            let mut pending = Pending::default();
            for (fp, t) in alerts {
                let k = DedupKey { fingerprint: key(fp), time: Some(t * 1_000) };
                let guess = guesser.speculate(k, &mut pending);
                proptest::prop_assert_eq!(guess, Some(real.check_key(k)));
            }
        }
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

    /// The fingerprint as it was first written: each value rendered to a `String` first.
    fn reference_fingerprint(
        alert: &Json,
        class_uid: u32,
        source: &str,
        fields: &[&str],
    ) -> [u8; 16] {
        let mut h = Sha256::new();
        h.update(class_uid.to_le_bytes());
        h.update(source.as_bytes());
        h.update([0]);
        if fields.is_empty() {
            h.update(alert.to_string().as_bytes());
        }
        for f in fields {
            match crate::path::get(alert, f) {
                Some(v) => {
                    h.update([1]);
                    h.update(v.to_string().as_bytes());
                }
                None => h.update([2]),
            }
            h.update([0]);
        }
        let mut out = [0u8; 16];
        out.copy_from_slice(&h.finalize()[..16]);
        out
    }

    #[test]
    fn fingerprints_hash_the_text_of_the_values() {
        let alerts = [
            json!({}),
            json!({"a": "plain", "b": {"c": [1, -2, 3.5, 1e300, null, true]}, "list": [{"uid": "r\"1\\\n\u{1}é"}]}),
            json!({"a": "", "b": {}, "list": [], "n": null, "u": u64::MAX, "i": i64::MIN}),
            json!({"a": "x".repeat(300), "b": {"c": "y"}, "time": 1_704_074_400_000i64}),
        ];
        let field_sets: [&[&str]; 5] = [
            &[],
            &["a"],
            &[
                "a",
                "b",
                "b.c",
                "b.c.2",
                "list.0.uid",
                "missing",
                "n",
                "u",
                "i",
            ],
            &["", ".", "list.x", "b.c.9"],
            default_fields(6003),
        ];
        for (n, alert) in alerts.iter().enumerate() {
            for fields in field_sets {
                let compiled: Vec<JPath> = fields.iter().map(|f| JPath::new(f)).collect();
                let want = reference_fingerprint(alert, 6003, "src", fields);
                assert_eq!(
                    fingerprint(alert, 6003, "src", fields),
                    want,
                    "{n} {fields:?}"
                );
                let mut buf = b"left over".to_vec();
                assert_eq!(
                    fingerprint_compiled(alert, 6003, "src", &compiled, &mut buf),
                    want,
                    "{n} {fields:?}"
                );
            }
        }
    }

    #[test]
    fn configured_fields_replace_the_defaults_of_their_class_only() {
        let alert = json!({"src_endpoint": {"ip": "10.0.0.1"}, "query": {"hostname": "h"}, "x": 1});
        let fp = |d: &mut Deduper, class| match d.check(&alert, class, "s") {
            Verdict::First(info) => info.fingerprint.to_string(),
            Verdict::Repeat { fingerprint, .. } => fingerprint.to_string(),
        };
        let mut fields = BTreeMap::new();
        fields.insert("4003".to_string(), vec!["x".to_string()]);
        fields.insert("9999".to_string(), vec!["query.hostname".to_string()]);
        fields.insert("1007".to_string(), Vec::new());
        let mut d = Deduper::new(&DedupConfig {
            fields,
            ..Default::default()
        })
        .unwrap();
        let hex = |f: [u8; 16]| hex::encode(f);
        assert_eq!(
            fp(&mut d, 4003),
            hex(fingerprint(&alert, 4003, "s", &["x"]))
        );
        assert_eq!(
            fp(&mut d, 9999),
            hex(fingerprint(&alert, 9999, "s", &["query.hostname"]))
        );
        let none: &[&str] = &[];
        assert_eq!(fp(&mut d, 1007), hex(fingerprint(&alert, 1007, "s", none)));
        assert_eq!(
            fp(&mut d, 4001),
            hex(fingerprint(&alert, 4001, "s", default_fields(4001)))
        );
        assert_eq!(fp(&mut d, 42), hex(fingerprint(&alert, 42, "s", none)));
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
