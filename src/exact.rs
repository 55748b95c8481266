//! Exact repeats: a record whose bytes were seen a short while ago is folded by what those
//! bytes gave then, without being decoded, normalized or sanitised again.
//!
//! Feeds repeat records byte for byte: a collector retries a batch it was not sure had been
//! delivered, two relays forward the same syslog stream, an upstream producer without
//! idempotence sends again after a timeout. The deduplication window folds such a repeat,
//! but only after the front of the pipeline has run on it, and decode, normalize, sanitise and
//! the fingerprint are about 70% of the core's instructions a record
//! (benches/OPTIMISATIONS.md).
//!
//! What those stages give is a function of the record's bytes, its kind and the name of its
//! input (which routes it to a source): they read no state and no clock. So is the dedup key
//! taken of their result ([`DedupKey`]: the fingerprint and the event time). [`ExactRepeats`]
//! remembers, for the records most recently seen, the dedup key, class and source their
//! bytes gave. The pipeline hands a repeat's remembered key to the deduplication window,
//! which decides as it would have after the whole path: where it folds the record, that is
//! the outcome; where it does not (the window has passed), the record goes the whole way, with
//! that decision.
//!
//! Records are remembered under a 128-bit SipHash-1-3 of the input name, the kind and the
//! bytes, keyed with a secret drawn from the operating system at start-up. A keyed hash
//! because log lines are written by attackers too: with a fast unkeyed hash, anyone who can
//! write a log line could write one whose hash equals an earlier record's and have their
//! alert folded into that one, unseen. Without the key they cannot; and that two different
//! records meet on one key by chance has a probability of 2⁻¹¹² for each record looked up
//! among 65,536 remembered.
//!
//! Only records that gave exactly one alert are remembered: an envelope's records and Zeek TSV
//! rows (whose meaning comes from a header read earlier in the stream) always go the whole way,
//! and so does every repeat of a record that was dead-lettered.

use crate::dedup::{DedupKey, FingerprintLru};
use crate::record::{RawRecord, RecordKind};
use siphasher::sip128::{Hasher128, SipHasher13};
use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;

/// Records most recently seen, by a keyed hash of their bytes: what their alert was.
pub struct ExactRepeats {
    /// The SipHash key, secret and different in every process.
    key: (u64, u64),
    seen: FingerprintLru<Remembered>,
    /// Source ids, each once; [`Remembered::source`] is a position here.
    sources: Vec<Arc<str>>,
}

/// What a record's bytes gave, as stored (a node of 64 bytes with the key and the links).
#[derive(Debug, Clone, Copy)]
struct Remembered {
    dedup: DedupKey,
    class_uid: u32,
    source: u16,
}

/// What a remembered record's bytes gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub dedup: DedupKey,
    pub class_uid: u32,
    pub source: Arc<str>,
}

impl ExactRepeats {
    /// Remember up to `capacity` records (at least one), least recently seen forgotten first.
    pub fn new(capacity: usize) -> ExactRepeats {
        // The standard library's `RandomState` is seeded from the operating system's random
        // source; two hashes of it make the key without another dependency.
        let state = std::collections::hash_map::RandomState::new();
        ExactRepeats {
            key: (state.hash_one(0u8), state.hash_one(1u8)),
            seen: FingerprintLru::new(capacity.max(1)),
            sources: Vec::new(),
        }
    }

    /// The key `record` is remembered under; `None` for the kinds never remembered.
    pub fn key(&self, record: &RawRecord) -> Option<[u8; 16]> {
        let kind: u8 = match record.kind {
            RecordKind::Json => 1,
            RecordKind::Xml => 2,
            RecordKind::Text => 3,
            RecordKind::ZeekTsv(_) | RecordKind::ZeekBlock => return None,
        };
        let input = record.origin.input_name().as_bytes();
        let mut h = SipHasher13::new_with_keys(self.key.0, self.key.1);
        // The input name's length first, so that no two (name, bytes) pairs write the same
        // sequence.
        h.write(&(input.len() as u64).to_le_bytes());
        h.write(input);
        h.write(&[kind]);
        h.write(&record.bytes);
        Some(h.finish128().as_u128().to_le_bytes())
    }

    /// What the record remembered under `key` gave, marking it most recently seen.
    pub fn get(&mut self, key: &[u8; 16]) -> Option<Seen> {
        let r = self.seen.get(key)?;
        Some(Seen {
            dedup: r.dedup,
            class_uid: r.class_uid,
            source: self.sources[r.source as usize].clone(),
        })
    }

    /// Whether a record is remembered under `key`, without marking it seen.
    pub fn contains(&self, key: &[u8; 16]) -> bool {
        self.seen.contains(key)
    }

    /// Remember what the record under `key` gave.
    pub fn remember(&mut self, key: [u8; 16], dedup: DedupKey, class_uid: u32, source: &str) {
        let source = match self.sources.iter().position(|s| &**s == source) {
            Some(i) => i,
            None if self.sources.len() < usize::from(u16::MAX) => {
                self.sources.push(Arc::from(source));
                self.sources.len() - 1
            }
            // More sources than any configuration has: not remembered, still correct.
            None => return,
        };
        let remembered = Remembered {
            dedup,
            class_uid,
            source: source as u16,
        };
        self.seen.put(key, remembered);
    }

    /// Records remembered.
    pub fn len(&self) -> usize {
        self.seen.len()
    }

    pub fn is_empty(&self) -> bool {
        self.seen.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::zeek_tsv::ZeekHeader;
    use crate::record::Origin;

    fn record(input: &str, kind: RecordKind, bytes: &[u8]) -> RawRecord {
        RawRecord {
            bytes: bytes.to_vec(),
            origin: Origin::Kafka {
                topic: Arc::from(input),
                partition: 3,
                offset: 17,
            },
            kind,
        }
    }

    fn dedup(n: u8) -> DedupKey {
        DedupKey {
            fingerprint: [n; 16],
            time: Some(i64::from(n) * 1000),
        }
    }

    #[test]
    fn the_key_covers_the_input_the_kind_and_every_byte() {
        let m = ExactRepeats::new(8);
        let line = br#"{"event_type":"alert","src_ip":"10.0.0.5"}"#;
        let base = m.key(&record("raw.ids", RecordKind::Json, line)).unwrap();
        // The same bytes from the same input, whatever partition and offset they came from.
        let mut again = record("raw.ids", RecordKind::Json, line);
        again.origin = Origin::File {
            input: Arc::from("raw.ids"),
            line: 9,
        };
        assert_eq!(m.key(&again), Some(base));
        assert_ne!(
            m.key(&record("raw.edr", RecordKind::Json, line)),
            Some(base)
        );
        assert_ne!(
            m.key(&record("raw.ids", RecordKind::Text, line)),
            Some(base)
        );
        for i in 0..line.len() {
            let mut changed = line.to_vec();
            changed[i] ^= 0x20;
            assert_ne!(
                m.key(&record("raw.ids", RecordKind::Json, &changed)),
                Some(base),
                "byte {i}"
            );
        }
        // Where the name ends and the bytes begin is part of what is hashed.
        assert_ne!(
            m.key(&record("ab", RecordKind::Text, b"c")),
            m.key(&record("a", RecordKind::Text, b"bc"))
        );
    }

    #[test]
    fn the_key_is_secret_to_each_memo() {
        // Another process (here, another memo) hashes the same record to another key, so no
        // key can be computed ahead of time from the outside.
        let r = record("raw.ids", RecordKind::Json, b"{}");
        assert_ne!(ExactRepeats::new(1).key(&r), ExactRepeats::new(1).key(&r));
    }

    #[test]
    fn a_remembered_record_takes_64_bytes() {
        // With the key and the links: 4 MiB for 65,536 records, and 5 bytes each in the table.
        assert_eq!(FingerprintLru::<Remembered>::NODE_BYTES, 64);
    }

    #[test]
    fn zeek_rows_and_blocks_are_never_keyed() {
        let m = ExactRepeats::new(8);
        let header = Arc::new(ZeekHeader::default());
        assert_eq!(
            m.key(&record("zeek", RecordKind::ZeekTsv(header), b"1\t2")),
            None
        );
        assert_eq!(m.key(&record("zeek", RecordKind::ZeekBlock, b"#x")), None);
        assert!(m
            .key(&record("zeek", RecordKind::Xml, b"<Event/>"))
            .is_some());
    }

    #[test]
    fn remembers_the_most_recent_records_with_their_sources() {
        let mut m = ExactRepeats::new(2);
        let k = |n: u8| [n; 16];
        m.remember(k(1), dedup(1), 4001, "zeek_conn");
        m.remember(k(2), dedup(2), 2004, "suricata_eve");
        let seen = m.get(&k(1)).unwrap();
        assert_eq!(
            seen,
            Seen {
                dedup: dedup(1),
                class_uid: 4001,
                source: Arc::from("zeek_conn"),
            }
        );
        // 1 was seen last: 2 is the one forgotten for 3.
        m.remember(k(3), dedup(3), 4001, "zeek_conn");
        assert_eq!(m.len(), 2);
        assert!(m.get(&k(2)).is_none());
        assert_eq!(m.get(&k(3)).unwrap().source.as_ref(), "zeek_conn");
        assert_eq!(m.sources.len(), 2, "each source id is kept once");
    }
}
