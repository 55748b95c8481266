//! Raw input records and where they came from.
//!
//! A [`RawRecord`] is the unit the pipeline accounts for: every one ends as a bundle, a
//! counted duplicate, or a dead letter. [`Origin`] travels with it into provenance and into
//! dead-letter records.

use serde::Serialize;
use std::sync::Arc;

/// Where one raw record came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Origin {
    /// A file (or `-` for stdin) and the 1-based line the record starts on.
    File { input: Arc<str>, line: u64 },
    /// A Kafka message.
    Kafka {
        topic: Arc<str>,
        partition: i32,
        offset: i64,
    },
}

impl Origin {
    /// The input name (file path or topic) used for source routing.
    pub fn input_name(&self) -> &str {
        match self {
            Origin::File { input, .. } => input,
            Origin::Kafka { topic, .. } => topic,
        }
    }
}

/// How the framer recognised a record; decides which decoder parses it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKind {
    /// One JSON value (object, array or envelope).
    Json,
    /// One Windows event as XML (`<Event ...>...</Event>`).
    Xml,
    /// One Zeek TSV row, with the header in force for it.
    ZeekTsv(Arc<crate::decode::zeek_tsv::ZeekHeader>),
    /// A Zeek TSV block (header lines, then rows) in one Kafka message: an envelope of rows.
    ZeekBlock,
    /// One line of text: CEF, LEEF, PAN-OS CSV, possibly wrapped in a syslog header.
    Text,
}

/// One framed record: bytes plus origin. The bytes are exactly what the input held.
#[derive(Debug, Clone)]
pub struct RawRecord {
    pub bytes: Vec<u8>,
    pub origin: Origin,
    pub kind: RecordKind,
}
