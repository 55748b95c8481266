//! IBM QRadar Log Event Extended Format (LEEF) 1.0 and 2.0.
//!
//! `LEEF:1.0|Vendor|Product|Version|EventID|attrs` or
//! `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attrs`. The header becomes
//! `leefVersion`, `vendor`, `product`, `productVersion` and `eventId`; the attributes
//! (`key=value`, separated by a tab in 1.0 and by default in 2.0, or by the 2.0 delimiter,
//! written as one character or as `xHH`/`0xHH` hex) land at the top level of the same object
//! (one that collides with a header key becomes `ext_<key>`). Values are not unescaped and
//! borrow from the input.
//!
//! Tolerated deviations: a 2.0 header without the delimiter field (attributes right after
//! the event id), a missing trailing pipe after the event id, attributes separated by `|`
//! (`...|EventID|cat=x|sev=8|src=1.2.3.4<TAB>...`, as some CyberArk products write), and a
//! piece without `=` (kept as part of the previous value, delimiter included).

use super::cef::{is_key_byte, split_pipes};
use super::{DecodeError, Object, Reason, Value};
use std::borrow::Cow;

const HEADER_KEYS: [&str; 5] = [
    "leefVersion",
    "vendor",
    "product",
    "productVersion",
    "eventId",
];

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError::new(Reason::InvalidLeef, message)
}

/// Parse a LEEF record. `body` must start with `LEEF:` (leading blanks are skipped).
pub fn parse(body: &str) -> Result<Object<'_>, DecodeError> {
    let body = body.trim_start();
    let rest = body
        .strip_prefix("LEEF:")
        .ok_or_else(|| err("record does not start with LEEF:"))?;
    let (fields, attrs) = split_pipes(rest, HEADER_KEYS.len());
    if fields.len() < HEADER_KEYS.len() {
        return Err(err(format!("LEEF header has {} of 5 fields", fields.len())));
    }
    let mut fields = fields.into_iter();
    let version = match fields.next().unwrap_or_default() {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    };
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err(format!("LEEF version {version:?} is not a number")));
    }
    let attrs = attrs.unwrap_or("").trim_end_matches(['\r', '\n']);
    let (delim, attrs) = if version.starts_with('2') {
        delimiter_field(attrs)?
    } else {
        ('\t', attrs)
    };

    let mut obj = Object::with_capacity_and_hasher(24, Default::default());
    obj.insert(Cow::Borrowed(HEADER_KEYS[0]), Value::String(version));
    for (key, val) in HEADER_KEYS.iter().skip(1).zip(fields) {
        obj.insert(Cow::Borrowed(*key), Value::String(val));
    }
    for (key, val) in parse_attributes(attrs, delim) {
        let key: Cow<'_, str> = if HEADER_KEYS.contains(&key) {
            Cow::Owned(format!("ext_{key}"))
        } else {
            Cow::Borrowed(key)
        };
        obj.insert(key, Value::String(Cow::Borrowed(val)));
    }
    Ok(obj)
}

/// Read the LEEF 2.0 delimiter field at the start of `s`; returns the delimiter and the
/// attributes after it. A field that is neither one character nor hex is taken to be the
/// first attribute of a header that left the delimiter out.
fn delimiter_field(s: &str) -> Result<(char, &str), DecodeError> {
    let (field, after) = match s.find('|') {
        Some(p) => (s.get(..p).unwrap_or(""), s.get(p + 1..).unwrap_or("")),
        None => (s, ""),
    };
    let mut chars = field.chars();
    match (chars.next(), chars.next()) {
        (None, _) => return Ok(('\t', after)),
        (Some(c), None) => return Ok((c, after)),
        _ => {}
    }
    if field == "\\t" {
        return Ok(('\t', after));
    }
    let hex = field
        .strip_prefix("0x")
        .or_else(|| field.strip_prefix("0X"))
        .or_else(|| field.strip_prefix('x'))
        .or_else(|| field.strip_prefix('X'))
        .or_else(|| field.strip_prefix("\\x"));
    if let Some(hex) = hex {
        if (1..=4).contains(&hex.len()) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            let code = u32::from_str_radix(hex, 16).map_err(|e| err(e.to_string()))?;
            let c = char::from_u32(code)
                .filter(|c| *c != '=')
                .ok_or_else(|| err(format!("bad LEEF delimiter {field:?}")))?;
            return Ok((c, after));
        }
        if !field.contains('=') {
            return Err(err(format!("bad LEEF delimiter {field:?}")));
        }
    }
    if field.contains('=') {
        // No delimiter field: the attributes start here, tab-separated.
        return Ok(('\t', s));
    }
    Err(err(format!("bad LEEF delimiter {field:?}")))
}

/// `key=` at the start of `s`?
fn starts_with_key(s: &str) -> bool {
    let n = s.bytes().take_while(|b| is_key_byte(*b)).count();
    n > 0 && s.as_bytes().get(n) == Some(&b'=')
}

/// Split LEEF attributes into `(key, value)` pairs, in input order.
pub fn parse_attributes(s: &str, delim: char) -> Vec<(&str, &str)> {
    // Piece boundaries: every delimiter, and every '|' followed by `key=`.
    let mut cuts: Vec<(usize, usize)> = Vec::new(); // (start of separator, its length)
    for (pos, c) in s.char_indices() {
        if c == delim {
            cuts.push((pos, c.len_utf8()));
        } else if c == '|' && delim != '|' && s.get(pos + 1..).is_some_and(starts_with_key) {
            cuts.push((pos, 1));
        }
    }
    let mut pairs: Vec<(&str, &str)> = Vec::new();
    // Byte range of the last value, so that a piece without '=' can extend it.
    let mut last: Option<(usize, usize)> = None;
    let mut start = 0;
    let ends = cuts.iter().copied().chain(std::iter::once((s.len(), 0)));
    for (end, sep_len) in ends {
        let piece = s.get(start..end).unwrap_or("");
        let eq = piece.find('=');
        let key = eq.and_then(|e| piece.get(..e)).map(str::trim);
        match key {
            Some(k) if !k.is_empty() && k.bytes().all(is_key_byte) => {
                let vstart = start + eq.unwrap_or(0) + 1;
                pairs.push((k, s.get(vstart..end).unwrap_or("")));
                last = Some((vstart, end));
            }
            _ if piece.is_empty() => {}
            _ => {
                // No key: continuation of the previous value (delimiter included).
                if let (Some((vstart, _)), Some(pair)) = (last, pairs.last_mut()) {
                    pair.1 = s.get(vstart..end).unwrap_or("");
                    last = Some((vstart, end));
                }
            }
        }
        start = end + sep_len;
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn get<'o>(o: &'o Object<'_>, k: &str) -> Option<&'o str> {
        o.get(k).and_then(|v| v.as_str())
    }

    #[test]
    fn leef1_tab_separated() {
        let line = "LEEF:1.0|Microsoft|MSExchange|2016|15345|src=10.50.1.1\tdst=2.10.20.20\tspt=1200\tusrName=CORP\\jsmith\tmsg=mail relay denied";
        let o = parse(line).unwrap();
        assert_eq!(get(&o, "leefVersion"), Some("1.0"));
        assert_eq!(get(&o, "vendor"), Some("Microsoft"));
        assert_eq!(get(&o, "product"), Some("MSExchange"));
        assert_eq!(get(&o, "productVersion"), Some("2016"));
        assert_eq!(get(&o, "eventId"), Some("15345"));
        assert_eq!(get(&o, "src"), Some("10.50.1.1"));
        assert_eq!(get(&o, "usrName"), Some("CORP\\jsmith"));
        assert_eq!(get(&o, "msg"), Some("mail relay denied"));
        assert_eq!(o.len(), 10);
        assert!(matches!(
            o.get("msg"),
            Some(Value::String(Cow::Borrowed(_)))
        ));
    }

    #[test]
    fn leef2_with_char_and_hex_delimiters() {
        let o = parse("LEEF:2.0|Lancope|StealthWatch|1.0|41|^|src=10.0.1.8^dst=10.0.0.5^sev=5^devTime=May 5 2024 10:00:00^msg=a=b").unwrap();
        assert_eq!(get(&o, "leefVersion"), Some("2.0"));
        assert_eq!(get(&o, "eventId"), Some("41"));
        assert_eq!(get(&o, "dst"), Some("10.0.0.5"));
        assert_eq!(get(&o, "devTime"), Some("May 5 2024 10:00:00"));
        assert_eq!(get(&o, "msg"), Some("a=b"));

        let o = parse("LEEF:2.0|Vendor|Prod|3.1|login|x09|usrName=bob\tsrc=192.0.2.4\t").unwrap();
        assert_eq!(get(&o, "usrName"), Some("bob"));
        assert_eq!(get(&o, "src"), Some("192.0.2.4"));

        let o = parse("LEEF:2.0|Vendor|Prod|3.1|login|0x7C|usrName=bob|src=192.0.2.4").unwrap();
        assert_eq!(get(&o, "usrName"), Some("bob"));
        assert_eq!(get(&o, "src"), Some("192.0.2.4"));

        // Delimiter field left out.
        let o = parse("LEEF:2.0|Vendor|Prod|3.1|login|usrName=bob\tsrc=192.0.2.4").unwrap();
        assert_eq!(get(&o, "usrName"), Some("bob"));
        assert_eq!(get(&o, "src"), Some("192.0.2.4"));
    }

    #[test]
    fn pipes_between_leading_attributes() {
        let line = "LEEF:1.0|CyberArk|PTA|12.6|3|cat=Privileged account anomaly|sev=6|src=10.0.0.7\tusrName=svc_backup\tdst=10.0.0.9";
        let o = parse(line).unwrap();
        assert_eq!(get(&o, "eventId"), Some("3"));
        assert_eq!(get(&o, "cat"), Some("Privileged account anomaly"));
        assert_eq!(get(&o, "sev"), Some("6"));
        assert_eq!(get(&o, "src"), Some("10.0.0.7"));
        assert_eq!(get(&o, "usrName"), Some("svc_backup"));
        assert_eq!(get(&o, "dst"), Some("10.0.0.9"));
    }

    #[test]
    fn continuation_pieces_and_edge_cases() {
        let o =
            parse("LEEF:1.0|V|P|1|E|msg=part one\tpart two\tsev=3\t\teventId=dup\tbroken key=x")
                .unwrap();
        assert_eq!(get(&o, "msg"), Some("part one\tpart two"));
        assert_eq!(get(&o, "sev"), Some("3"));
        assert_eq!(get(&o, "eventId"), Some("E"));
        // "broken key" is not a key, so that piece continues the previous value.
        assert_eq!(get(&o, "ext_eventId"), Some("dup\tbroken key=x"));
        // No attributes, no trailing pipe.
        let o = parse("LEEF:1.0|V|P|1|E").unwrap();
        assert_eq!(o.len(), 5);
        let o = parse("LEEF:1.0|V|P|1|E|").unwrap();
        assert_eq!(o.len(), 5);
        // Empty value.
        let o = parse("LEEF:1.0|V|P|1|E|a=\tb=2").unwrap();
        assert_eq!(get(&o, "a"), Some(""));
        assert_eq!(get(&o, "b"), Some("2"));
    }

    #[test]
    fn invalid_records() {
        for bad in [
            "",
            "LEEF",
            "LEEF:",
            "LEEF:1.0|V|P|1",
            "CEF:0|V|P|1|2|N|5|",
            "LEEF:v|V|P|1|E|a=b",
            "LEEF:2.0|V|P|1|E|xZZ|a=b",
            "LEEF:2.0|V|P|1|E|abc|a=b",
            "LEEF:2.0|V|P|1|E|x3D|a=b",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidLeef, "{bad:?}");
        }
    }

    #[test]
    fn odd_bytes_never_panic() {
        for s in [
            "LEEF:2.0|V|P|1|E|é|a=1éb=2",
            "LEEF:2.0|V|P|1|E|xD800|a=1",
            "LEEF:2.0|V|P|1|E|x|a=1",
            "LEEF:1.0|V|P|1|E|=\t==\t|=|",
            "LEEF:1.0|V|P|1|E||||",
            "LEEF:2.0|V|P|1|E|",
        ] {
            let _ = parse(s);
        }
        let o = parse("LEEF:2.0|V|P|1|E|é|a=1éb=2").unwrap();
        assert_eq!(get(&o, "a"), Some("1"));
        assert_eq!(get(&o, "b"), Some("2"));
    }
}
