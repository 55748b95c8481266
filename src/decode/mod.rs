//! Decode: bytes → records → borrowed value trees.
//!
//! [`framing`] splits an input stream (a file, stdin, or one Kafka message) into
//! [`RawRecord`]s and guesses each one's kind. [`decode_record`]
//! then parses a record into a [`Value`] with the decoder for its kind. Every failure is a
//! [`DecodeError`] with a machine-readable [`Reason`]; decoders never panic.

pub mod framing;
pub mod json;
pub mod text;
pub mod zeek_tsv;

pub mod cef;
pub mod leef;
pub mod pan;
pub mod syslog;
pub mod winxml;

use crate::record::{RawRecord, RecordKind};

/// The decoded form of a record: simd-json's borrowed value. Strings borrow from the record's
/// bytes wherever no unescaping was needed.
pub type Value<'a> = simd_json::BorrowedValue<'a>;
/// An object of [`Value`]s.
pub type Object<'a> = simd_json::borrowed::Object<'a>;

/// Why a record could not be decoded. The `as_str` form is the dead-letter reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reason {
    InvalidJson,
    InvalidUtf8,
    TooLarge,
    TooDeep,
    Truncated,
    InvalidXml,
    InvalidCef,
    InvalidLeef,
    InvalidZeek,
    InvalidCsv,
    EmptyEnvelope,
}

impl Reason {
    pub const ALL: [Reason; 11] = [
        Reason::InvalidJson,
        Reason::InvalidUtf8,
        Reason::TooLarge,
        Reason::TooDeep,
        Reason::Truncated,
        Reason::InvalidXml,
        Reason::InvalidCef,
        Reason::InvalidLeef,
        Reason::InvalidZeek,
        Reason::InvalidCsv,
        Reason::EmptyEnvelope,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::InvalidJson => "invalid_json",
            Reason::InvalidUtf8 => "invalid_utf8",
            Reason::TooLarge => "too_large",
            Reason::TooDeep => "too_deep",
            Reason::Truncated => "truncated",
            Reason::InvalidXml => "invalid_xml",
            Reason::InvalidCef => "invalid_cef",
            Reason::InvalidLeef => "invalid_leef",
            Reason::InvalidZeek => "invalid_zeek",
            Reason::InvalidCsv => "invalid_csv",
            Reason::EmptyEnvelope => "empty_envelope",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A decode failure: the reason code and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}: {message}")]
pub struct DecodeError {
    pub reason: Reason,
    pub message: String,
}

impl DecodeError {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        DecodeError {
            reason,
            message: message.into(),
        }
    }
}

/// Limits every decoder honours.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Largest record, in bytes.
    pub max_record_bytes: usize,
    /// Deepest nesting of JSON arrays/objects (or XML elements).
    pub max_depth: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_record_bytes: 1 << 20,
            max_depth: 64,
        }
    }
}

/// Parse one framed record into a value tree. `buf` is a scratch copy of the record's bytes
/// that simd-json parses in place; the returned value borrows from it.
pub fn decode_record<'a>(
    record: &RawRecord,
    buf: &'a mut Vec<u8>,
    limits: &Limits,
) -> Result<Value<'a>, DecodeError> {
    if record.bytes.len() > limits.max_record_bytes {
        return Err(DecodeError::new(
            Reason::TooLarge,
            format!(
                "record is {} bytes, the limit is {}",
                record.bytes.len(),
                limits.max_record_bytes
            ),
        ));
    }
    buf.clear();
    buf.extend_from_slice(&record.bytes);
    match &record.kind {
        RecordKind::Json => json::parse(buf, &record.bytes, limits),
        RecordKind::Xml => {
            let text = utf8(buf)?;
            winxml::parse_event(text, limits.max_depth)
        }
        RecordKind::ZeekTsv(header) => {
            let text = utf8(buf)?;
            header.parse_row(text)
        }
        RecordKind::ZeekBlock => {
            let text = utf8(buf)?;
            zeek_tsv::parse_block(text)
        }
        RecordKind::Text => {
            // Text lines come over syslog from appliances that still write Latin-1 and the
            // like: a byte that is not UTF-8 becomes U+FFFD instead of costing the whole
            // alert, and the sanitiser removes and counts each one (`replacement_char` in
            // the bundle's `safety.removals`). Structured records (JSON, XML, Zeek) with
            // invalid UTF-8 are dead-lettered: their framing cannot be trusted.
            if let std::borrow::Cow::Owned(fixed) = String::from_utf8_lossy(buf) {
                *buf = fixed.into_bytes();
            }
            let text = utf8(buf)?;
            text::parse_line(text)
        }
    }
}

fn utf8(buf: &[u8]) -> Result<&str, DecodeError> {
    std::str::from_utf8(buf).map_err(|e| {
        DecodeError::new(
            Reason::InvalidUtf8,
            format!("invalid UTF-8 at byte {}", e.valid_up_to()),
        )
    })
}
