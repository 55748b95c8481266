//! JSON records: depth check, then simd-json's in-place borrowed parse; envelope unwrapping.

use super::{DecodeError, Limits, Reason, Value};
use simd_json::prelude::*;

/// Deepest nesting of arrays/objects in a JSON text, ignoring brackets inside strings.
/// Stops counting once `limit` is passed.
///
/// Most of a record's bytes are inside strings, which [`scan_string`] skips.
pub fn nesting_depth(bytes: &[u8], limit: usize) -> usize {
    let (mut depth, mut max, mut i) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        match bytes[i] {
            b'"' => match scan_string(bytes, i + 1) {
                StringScan::Closed(end) => i = end,
                // An unterminated string: nothing after it counts (the parser rejects it).
                StringScan::Open { .. } => return max,
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > max {
                    max = depth;
                    if max > limit {
                        return max;
                    }
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    max
}

/// Where a JSON string's contents end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StringScan {
    /// At this index, the closing `"`.
    Closed(usize),
    /// Not in this text. `escaped`: its last byte is a backslash, so the first byte of the
    /// text that follows (the framer's next line) is escaped.
    Open { escaped: bool },
}

/// Scan a string's contents from `from` (just after the opening `"`, or anywhere inside that
/// is not an escaped byte), honouring backslash escapes. Only `"` and `\\` matter there, so
/// the runs between them are skipped with `memchr2`. The depth check and the framer share it.
pub fn scan_string(bytes: &[u8], mut from: usize) -> StringScan {
    loop {
        let Some(k) = bytes
            .get(from..)
            .and_then(|rest| memchr::memchr2(b'"', b'\\', rest))
        else {
            return StringScan::Open { escaped: false };
        };
        let k = from + k;
        if bytes[k] == b'"' {
            return StringScan::Closed(k);
        }
        if k + 1 == bytes.len() {
            return StringScan::Open { escaped: true };
        }
        // A backslash escapes the next byte, whatever it is.
        from = k + 2;
    }
}

/// Parse one JSON record in place: `buf` is a copy of `original` (the record's bytes), which
/// simd-json may have changed by the time it fails.
pub fn parse<'a>(
    buf: &'a mut [u8],
    original: &[u8],
    limits: &Limits,
) -> Result<Value<'a>, DecodeError> {
    // Nesting passes the limit only in a text with more opening brackets than that (those
    // inside strings counted too), which most records are not: one vectorised count
    // dismisses them, and only the others are scanned bracket by bracket.
    let opening = memchr::memchr2_iter(b'{', b'[', buf)
        .take(limits.max_depth + 1)
        .count();
    if opening > limits.max_depth && nesting_depth(buf, limits.max_depth) > limits.max_depth {
        return Err(DecodeError::new(
            Reason::TooDeep,
            format!("nesting deeper than {}", limits.max_depth),
        ));
    }
    // simd-json validates UTF-8 while it finds the structure, so text is checked once, there;
    // only a record it rejects is checked again, for where its text stops being UTF-8 (the
    // reason and message a check in front of the parser gave, for one pass less over every
    // record).
    BUFFERS
        .with_borrow_mut(|b| simd_json::value::borrowed::to_value_with_buffers(buf, b))
        .map_err(|e| match std::str::from_utf8(original) {
            Err(u) => DecodeError::new(
                Reason::InvalidUtf8,
                format!("invalid UTF-8 at byte {}", u.valid_up_to()),
            ),
            Ok(_) => DecodeError::new(Reason::InvalidJson, e.to_string()),
        })
}

thread_local! {
    /// simd-json's scratch (structural indexes, stack, string buffer), kept from record to
    /// record on each thread instead of allocated, zeroed, for every one. It grows to the
    /// largest record the thread has parsed (at most `max_record_bytes` and its indexes).
    static BUFFERS: std::cell::RefCell<simd_json::Buffers> =
        std::cell::RefCell::new(simd_json::Buffers::default());
}

/// Split an envelope into its records: a top-level array, CloudTrail's `{"Records": [...]}`,
/// Azure Event Hub's `{"records": [...]}`, or Microsoft Graph's `{"value": [...],
/// "@odata.context": ...}`. Anything else is one record.
pub fn unwrap_envelope(v: Value<'_>) -> Result<(Vec<Value<'_>>, bool), DecodeError> {
    let items = match v {
        Value::Array(items) => *items,
        Value::Object(mut obj) => {
            // CloudTrail's S3 delivery `{"Records": [...]}` and Azure Monitor / Event Hub
            // batches `{"records": [...]}`.
            let batch_key = ["Records", "records"]
                .into_iter()
                .find(|k| obj.len() == 1 && obj.get(*k).is_some_and(|r| r.is_array()));
            let is_graph = obj.get("value").is_some_and(|r| r.is_array())
                && obj.keys().all(|k| k == "value" || k.starts_with("@odata"));
            let key = if let Some(k) = batch_key {
                k
            } else if is_graph {
                "value"
            } else {
                return Ok((vec![Value::Object(obj)], false));
            };
            match obj.remove(key) {
                Some(Value::Array(items)) => *items,
                _ => unreachable!("checked to be an array above"),
            }
        }
        other => {
            return Err(DecodeError::new(
                Reason::InvalidJson,
                format!(
                    "a record must be an object or an array of objects, found {:?}",
                    other.value_type()
                ),
            ))
        }
    };
    if items.is_empty() {
        return Err(DecodeError::new(
            Reason::EmptyEnvelope,
            "the envelope holds no records",
        ));
    }
    if let Some(pos) = items.iter().position(|i| !i.is_object()) {
        return Err(DecodeError::new(
            Reason::InvalidJson,
            format!("envelope element {pos} is not an object"),
        ));
    }
    Ok((items, true))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(s: &str) -> Result<usize, DecodeError> {
        let mut b = s.as_bytes().to_vec();
        let v = parse(
            &mut b,
            s.as_bytes(),
            &Limits {
                max_record_bytes: 1 << 20,
                max_depth: 4,
            },
        )?;
        let n = unwrap_envelope(v)?.0.len();
        Ok(n)
    }

    #[test]
    fn envelopes_and_errors() {
        assert_eq!(parse_str(r#"{"a":1}"#), Ok(1));
        assert_eq!(parse_str(r#"{"Records":[{"a":1},{"a":2}]}"#), Ok(2));
        assert_eq!(parse_str(r#"{"records":[{"a":1},{"a":2},{"a":3}]}"#), Ok(3));
        assert_eq!(
            parse_str(r#"{"@odata.context":"x","value":[{"a":1},{"b":2},{"c":3}]}"#),
            Ok(3)
        );
        assert_eq!(parse_str(r#"[{"a":1},{"a":2}]"#), Ok(2));
        assert_eq!(
            parse_str(r#"{"Records":[{"a":1}],"other":1}"#),
            Ok(1),
            "not an envelope"
        );
        assert_eq!(parse_str("[]").unwrap_err().reason, Reason::EmptyEnvelope);
        assert_eq!(parse_str("[1,2]").unwrap_err().reason, Reason::InvalidJson);
        assert_eq!(parse_str("42").unwrap_err().reason, Reason::InvalidJson);
        assert_eq!(
            parse_str(r#"{"a":}"#).unwrap_err().reason,
            Reason::InvalidJson
        );
        assert_eq!(
            parse_str(r#"{"a":[[[[[1]]]]]}"#).unwrap_err().reason,
            Reason::TooDeep
        );
        assert_eq!(
            parse_str(r#"{"a":"[[[[[[[["}"#),
            Ok(1),
            "brackets in strings do not count"
        );
        // At most `max_depth` opening brackets: no scan, and none is needed.
        assert_eq!(
            parse_str(r#"{"a":[[[1]]]}"#),
            Ok(1),
            "four levels, the limit"
        );
        assert_eq!(parse_str(r#"{"a":[1],"b":{"c":2}}"#), Ok(1));
        // More of them, but side by side: scanned, and shallow enough.
        assert_eq!(
            parse_str(r#"[{"a":1},{"a":2},{"a":3},{"a":4},{"a":5}]"#),
            Ok(5)
        );
        assert_eq!(
            parse_str(r#"{"a":[[[[1]]]]}"#).unwrap_err().reason,
            Reason::TooDeep,
            "five levels, five brackets"
        );
        // Text that is not UTF-8 is told apart from JSON that is not JSON, with where it went
        // wrong, whatever else is wrong with the record; simd-json finds both.
        for (text, reason, message) in [
            (
                &b"{\"a\":\"\xff\"}"[..],
                Reason::InvalidUtf8,
                Some("invalid UTF-8 at byte 6"),
            ),
            (
                b"{\"a\":\"\xff\"",
                Reason::InvalidUtf8,
                Some("invalid UTF-8 at byte 6"),
            ),
            (b"{\"a\" \"\xc3\xa9\"}", Reason::InvalidJson, None),
        ] {
            let mut buf = text.to_vec();
            let e = parse(&mut buf, text, &Limits::default()).unwrap_err();
            assert_eq!(e.reason, reason, "{}", String::from_utf8_lossy(text));
            if let Some(m) = message {
                assert_eq!(e.message, m);
            }
        }
    }

    /// The byte-by-byte scan `nesting_depth` replaced, kept as the reference it must agree with.
    fn depth_by_bytes(bytes: &[u8]) -> usize {
        let (mut depth, mut max, mut in_str, mut esc) = (0usize, 0usize, false, false);
        for &b in bytes {
            if in_str {
                match (esc, b) {
                    (true, _) => esc = false,
                    (false, b'\\') => esc = true,
                    (false, b'"') => in_str = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_str = true,
                b'{' | b'[' => {
                    depth += 1;
                    max = max.max(depth);
                }
                b'}' | b']' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        max
    }

    #[test]
    fn skipping_strings_finds_the_same_depth_as_reading_every_byte() {
        // Random texts over the bytes that matter (and one that does not), escapes at string
        // ends and unterminated strings included.
        let alphabet = b"{}[]\"\\\\a";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for len in 0..400 {
            let text: Vec<u8> = (0..len % 40)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    alphabet[(state % alphabet.len() as u64) as usize]
                })
                .collect();
            assert_eq!(
                nesting_depth(&text, usize::MAX),
                depth_by_bytes(&text),
                "{:?}",
                String::from_utf8_lossy(&text)
            );
        }
        assert_eq!(nesting_depth(br#"{"a\\\"[":[{"b":"\\"}]}"#, 64), 3);
    }
}
