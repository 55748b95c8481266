//! ArcSight Common Event Format (CEF): `CEF:Version|Vendor|Product|Version|SignatureID|Name|Severity|Extension`.
//!
//! The seven header fields become `cefVersion`, `deviceVendor`, `deviceProduct`,
//! `deviceVersion`, `deviceEventClassId`, `name` and `severity` (`\|` and `\\` unescaped).
//! The extension is `key=value` pairs separated by spaces; values may hold spaces, so a value
//! runs until the next ` key=` (key made of `[A-Za-z0-9_.\[\]-]`). `\=`, `\\`, `\n` and `\r`
//! are unescaped in values. Every extension key lands at the top level of the same object,
//! verbatim (one that collides with a header key becomes `ext_<key>`), and the custom
//! label pairs (`cs1Label=Policy cs1=Block`, in either order) are gathered in `custom`
//! (`custom.Policy = "Block"`). Strings borrow from the input unless unescaping was needed.
//!
//! Tolerated deviations: `CEF: 0` (spaces before the version), a missing pipe after the
//! severity, leading spaces in the extension, text before the first key (kept as
//! `ext_unparsed`).

use super::{DecodeError, Object, Reason, Value};
use std::borrow::Cow;

/// Output keys of the seven header fields, in order.
pub const HEADER_KEYS: [&str; 7] = [
    "cefVersion",
    "deviceVendor",
    "deviceProduct",
    "deviceVersion",
    "deviceEventClassId",
    "name",
    "severity",
];

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError::new(Reason::InvalidCef, message)
}

/// Parse a CEF record. `body` must start with `CEF:` (leading blanks are skipped).
pub fn parse(body: &str) -> Result<Object<'_>, DecodeError> {
    let body = body.trim_start();
    let rest = body
        .strip_prefix("CEF:")
        .ok_or_else(|| err("record does not start with CEF:"))?;
    let (fields, ext) = split_pipes(rest, HEADER_KEYS.len());
    if fields.len() < HEADER_KEYS.len() {
        return Err(err(format!("CEF header has {} of 7 fields", fields.len())));
    }
    let ext = ext.unwrap_or("");
    let mut fields = fields.into_iter();
    let version = trim_cow(fields.next().unwrap_or_default());
    if !version.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(err(format!("CEF version {version:?} is not a number")));
    }
    let mut obj = Object::with_capacity_and_hasher(24, Default::default());
    obj.insert(Cow::Borrowed(HEADER_KEYS[0]), Value::String(version));
    for (key, val) in HEADER_KEYS.iter().skip(1).zip(fields) {
        obj.insert(Cow::Borrowed(*key), Value::String(val));
    }

    let pairs = parse_extension(ext);
    let custom = custom_labels(&pairs);
    for (key, val) in pairs {
        let key: Cow<'_, str> = if HEADER_KEYS.contains(&key) || key == "custom" {
            Cow::Owned(format!("ext_{key}"))
        } else {
            Cow::Borrowed(key)
        };
        obj.insert(key, Value::String(val));
    }
    if !custom.is_empty() {
        obj.insert(Cow::Borrowed("custom"), Value::Object(Box::new(custom)));
    }
    Ok(obj)
}

fn trim_cow(c: Cow<'_, str>) -> Cow<'_, str> {
    match c {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) => Cow::Owned(s.trim().to_string()),
    }
}

/// Split `s` at unescaped `|` into at most `n` fields, unescaping `\|` and `\\` (any other
/// backslash is kept). Returns the fields and, when the `n`-th field was closed by a pipe,
/// the rest of `s` after it. Shared with the LEEF decoder.
pub(crate) fn split_pipes(s: &str, n: usize) -> (Vec<Cow<'_, str>>, Option<&str>) {
    let b = s.as_bytes();
    let mut fields = Vec::with_capacity(n);
    let mut field_start = 0;
    let mut seg_start = 0;
    let mut owned: Option<String> = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if matches!(b.get(i + 1), Some(b'|') | Some(b'\\')) => {
                let o = owned.get_or_insert_with(String::new);
                o.push_str(s.get(seg_start..i).unwrap_or(""));
                o.push(if b.get(i + 1) == Some(&b'|') {
                    '|'
                } else {
                    '\\'
                });
                i += 2;
                seg_start = i;
                continue;
            }
            b'|' => {
                let field = match owned.take() {
                    Some(mut o) => {
                        o.push_str(s.get(seg_start..i).unwrap_or(""));
                        Cow::Owned(o)
                    }
                    None => Cow::Borrowed(s.get(field_start..i).unwrap_or("")),
                };
                fields.push(field);
                i += 1;
                field_start = i;
                seg_start = i;
                if fields.len() == n {
                    return (fields, s.get(i..));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    let last = match owned.take() {
        Some(mut o) => {
            o.push_str(s.get(seg_start..).unwrap_or(""));
            Cow::Owned(o)
        }
        None => Cow::Borrowed(s.get(field_start..).unwrap_or("")),
    };
    if fields.len() < n && !(last.is_empty() && fields.is_empty()) {
        fields.push(last);
    }
    (fields, None)
}

/// Bytes allowed in extension keys.
pub(crate) fn is_key_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'[' | b']' | b'-')
}

/// Split a CEF extension into `(key, value)` pairs, in input order.
pub fn parse_extension(ext: &str) -> Vec<(&str, Cow<'_, str>)> {
    let ext = ext.trim_end_matches([' ', '\t', '\r', '\n']);
    let b = ext.as_bytes();
    // (key start, '=' index) of every real key.
    let mut keys: Vec<(usize, usize)> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' => {
                i += 2;
                continue;
            }
            b'=' => {
                let mut k = i;
                while k > 0 && b.get(k - 1).is_some_and(|c| is_key_byte(*c)) {
                    k -= 1;
                }
                let at_boundary = k == 0 || matches!(b.get(k - 1), Some(b' ') | Some(b'\t'));
                if k < i && at_boundary {
                    keys.push((k, i));
                }
            }
            _ => {}
        }
        i += 1;
    }
    let mut pairs = Vec::with_capacity(keys.len() + 1);
    if let Some(&(first, _)) = keys.first() {
        let prefix = ext.get(..first).unwrap_or("").trim();
        if !prefix.is_empty() {
            pairs.push(("ext_unparsed", unescape_value(prefix)));
        }
    } else if !ext.trim().is_empty() {
        pairs.push(("ext_unparsed", unescape_value(ext.trim())));
    }
    for (idx, &(k, eq)) in keys.iter().enumerate() {
        let end = keys.get(idx + 1).map_or(ext.len(), |&(next_k, _)| next_k);
        let key = ext.get(k..eq).unwrap_or("");
        let raw = ext
            .get(eq + 1..end)
            .unwrap_or("")
            .trim_end_matches([' ', '\t']);
        pairs.push((key, unescape_value(raw)));
    }
    pairs
}

/// Unescape a CEF extension value: `\=`, `\\`, `\|`, `\n`, `\r`. Other backslashes stay.
pub fn unescape_value(raw: &str) -> Cow<'_, str> {
    if !raw.contains('\\') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('=') => out.push('='),
            Some('\\') => out.push('\\'),
            Some('|') => out.push('|'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => {
                out.push('\\');
                out.push(other);
            }
            None => out.push('\\'),
        }
    }
    Cow::Owned(out)
}

/// Keys whose meaning is given by a `<key>Label` pair.
fn is_custom_value_key(key: &str) -> bool {
    let numbered = |prefix: &str, max: u8| {
        key.strip_prefix(prefix).is_some_and(|n| {
            n.len() == 1
                && n.as_bytes()
                    .first()
                    .is_some_and(|d| (b'1'..=b'0' + max).contains(d))
        })
    };
    numbered("cs", 6)
        || numbered("cn", 3)
        || numbered("cfp", 4)
        || numbered("c6a", 4)
        || numbered("deviceCustomDate", 2)
        || numbered("flexString", 2)
        || numbered("flexNumber", 2)
        || numbered("flexDate", 1)
}

/// `label → value` for every custom pair whose label and value are both present.
fn custom_labels<'a>(pairs: &[(&'a str, Cow<'a, str>)]) -> Object<'a> {
    // At most 26 distinct custom keys exist, so a small list is enough; the last label of a
    // key wins, like the last value does.
    let mut labels: Vec<(&str, &Cow<'a, str>)> = Vec::new();
    for (key, label) in pairs {
        let Some(base) = key.strip_suffix("Label") else {
            continue;
        };
        if !is_custom_value_key(base) {
            continue;
        }
        match labels.iter_mut().find(|(k, _)| *k == base) {
            Some(slot) => slot.1 = label,
            None => labels.push((base, label)),
        }
    }
    let mut custom = Object::default();
    if labels.is_empty() {
        return custom;
    }
    for (key, val) in pairs {
        if let Some((_, label)) = labels.iter().find(|(k, _)| k == key) {
            if !label.is_empty() {
                custom.insert((*label).clone(), Value::String(val.clone()));
            }
        }
    }
    custom
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn get<'o>(o: &'o Object<'_>, k: &str) -> Option<&'o str> {
        o.get(k).and_then(|v| v.as_str())
    }

    fn is_borrowed(o: &Object<'_>, k: &str) -> bool {
        matches!(o.get(k), Some(Value::String(Cow::Borrowed(_))))
    }

    #[test]
    fn header_and_simple_extension() {
        let line = "CEF:0|Trend Micro|Deep Security Agent|20.0.877|4000000|Eicar_test_file|6|cn1=1 cn1Label=Host ID dvchost=hostname cs1=Real-Time cs1Label=Scan Type act=Quarantine fname=eicar.exe filePath=C:\\\\Users\\\\alice\\\\Downloads\\\\eicar.exe msg=Realtime";
        let o = parse(line).unwrap();
        assert_eq!(get(&o, "cefVersion"), Some("0"));
        assert_eq!(get(&o, "deviceVendor"), Some("Trend Micro"));
        assert_eq!(get(&o, "deviceProduct"), Some("Deep Security Agent"));
        assert_eq!(get(&o, "deviceVersion"), Some("20.0.877"));
        assert_eq!(get(&o, "deviceEventClassId"), Some("4000000"));
        assert_eq!(get(&o, "name"), Some("Eicar_test_file"));
        assert_eq!(get(&o, "severity"), Some("6"));
        assert_eq!(get(&o, "cn1Label"), Some("Host ID"));
        assert_eq!(get(&o, "dvchost"), Some("hostname"));
        assert_eq!(get(&o, "cs1Label"), Some("Scan Type"));
        assert_eq!(
            get(&o, "filePath"),
            Some("C:\\Users\\alice\\Downloads\\eicar.exe")
        );
        assert_eq!(get(&o, "msg"), Some("Realtime"));
        let custom = o.get("custom").and_then(|c| c.as_object()).unwrap();
        assert_eq!(get(custom, "Host ID"), Some("1"));
        assert_eq!(get(custom, "Scan Type"), Some("Real-Time"));
        assert!(is_borrowed(&o, "deviceVendor"));
        assert!(is_borrowed(&o, "dvchost"));
        assert!(!is_borrowed(&o, "filePath"));
    }

    #[test]
    fn header_escapes_and_spaces_in_values() {
        let line = r"CEF:1|Acme\|Labs|Sensor \\ X|3.2|sig\|1|Port scan from 10.0.0.1|High|src=10.0.0.1 msg=Detected a scan of 1000 ports dst=10.0.0.2 request=https://example.com/a?b\=c&d\=e";
        let o = parse(line).unwrap();
        assert_eq!(get(&o, "deviceVendor"), Some("Acme|Labs"));
        assert_eq!(get(&o, "deviceProduct"), Some("Sensor \\ X"));
        assert_eq!(get(&o, "deviceEventClassId"), Some("sig|1"));
        assert_eq!(get(&o, "severity"), Some("High"));
        assert_eq!(get(&o, "msg"), Some("Detected a scan of 1000 ports"));
        assert_eq!(get(&o, "request"), Some("https://example.com/a?b=c&d=e"));
        assert_eq!(get(&o, "dst"), Some("10.0.0.2"));
    }

    #[test]
    fn newline_escapes_equals_inside_values_and_empty_values() {
        let line = r"CEF:0|V|P|1|2|N|3|msg=line one\nline two\r end=lang=en cs2= cs2Label=Empty suser= duser=x ad.key[0]=v  spaced=a  ";
        let o = parse(line).unwrap();
        assert_eq!(get(&o, "msg"), Some("line one\nline two\r"));
        // "end=lang=en": the second '=' is not preceded by a space, so it is part of the value.
        assert_eq!(get(&o, "end"), Some("lang=en"));
        assert_eq!(get(&o, "cs2"), Some(""));
        assert_eq!(get(&o, "suser"), Some(""));
        assert_eq!(get(&o, "duser"), Some("x"));
        assert_eq!(get(&o, "ad.key[0]"), Some("v"));
        assert_eq!(get(&o, "spaced"), Some("a"));
        let custom = o.get("custom").and_then(|c| c.as_object()).unwrap();
        assert_eq!(get(custom, "Empty"), Some(""));
    }

    #[test]
    fn tolerated_variants() {
        // "CEF: 0", extension starting with a space, label after value.
        let o = parse("CEF: 0|Vendor|WAF|1.0|WAF|WAF|4| cat=TR cs1=My App cs1Label=appName flexNumber1Label=Time(ms) flexNumber1=12 deviceCustomDate1=Sep 13 2023 10:35:34 deviceCustomDate1Label=Timestamp").unwrap();
        assert_eq!(get(&o, "cefVersion"), Some("0"));
        assert_eq!(get(&o, "cat"), Some("TR"));
        let custom = o.get("custom").and_then(|c| c.as_object()).unwrap();
        assert_eq!(get(custom, "appName"), Some("My App"));
        assert_eq!(get(custom, "Time(ms)"), Some("12"));
        assert_eq!(get(custom, "Timestamp"), Some("Sep 13 2023 10:35:34"));
        // No pipe after the severity, no extension.
        let o = parse("CEF:0|V|P|1|2|N|5").unwrap();
        assert_eq!(get(&o, "severity"), Some("5"));
        assert_eq!(o.len(), 7);
        // Empty header fields.
        let o = parse("CEF:0||||N/A|URL Access Violation|Substantial|cat=attack").unwrap();
        assert_eq!(get(&o, "deviceVendor"), Some(""));
        assert_eq!(get(&o, "deviceEventClassId"), Some("N/A"));
        // Text before the first key, and header-named keys.
        let o = parse("CEF:0|V|P|1|2|N|5|garbage here name=shadow severity=9 custom=c").unwrap();
        assert_eq!(get(&o, "ext_unparsed"), Some("garbage here"));
        assert_eq!(get(&o, "name"), Some("N"));
        assert_eq!(get(&o, "ext_name"), Some("shadow"));
        assert_eq!(get(&o, "ext_severity"), Some("9"));
        assert_eq!(get(&o, "ext_custom"), Some("c"));
        assert!(o.get("custom").is_none());
    }

    #[test]
    fn label_without_value_and_non_custom_labels() {
        let o = parse("CEF:0|V|P|1|2|N|5|cs3Label=Orphan cmdLineLabel=Command Line cmdLine=whoami cs7=x cs7Label=NotCustom").unwrap();
        assert_eq!(get(&o, "cs3Label"), Some("Orphan"));
        assert_eq!(get(&o, "cmdLine"), Some("whoami"));
        assert!(o.get("custom").is_none());
    }

    #[test]
    fn invalid_records() {
        for bad in [
            "",
            "CEF",
            "CEF:",
            "CEF:0|V|P|1|2|N",
            "CEF:0|V",
            "LEEF:1.0|V|P|1|E|",
            "CEF:x|V|P|1|2|N|5|a=b",
            "CEF:|V|P|1|2|N|5|a=b",
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidCef, "{bad:?}");
        }
    }

    #[test]
    fn odd_bytes_never_panic() {
        for s in [
            "CEF:0|V|P|1|2|N|5|\\",
            "CEF:0|V|P|1|2|N|5|=",
            "CEF:0|V|P|1|2|N|5|==== = =a= b=",
            "CEF:0|V|P|1|2|N|5|é=ü ß=\\é",
            "CEF:0|\\|\\|\\|\\|\\|\\|",
            "CEF:0|a\\",
            "CEF:0|V|P|1|2|N|5|k=v\\",
        ] {
            let _ = parse(s);
        }
        let o = parse("CEF:0|V|P|1|2|N|5|k=v\\").unwrap();
        assert_eq!(get(&o, "k"), Some("v\\"));
    }
}
