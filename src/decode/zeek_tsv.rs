//! Zeek TSV logs (the ASCII writer): `#separator`/`#fields`/`#types` headers, one row a record.
//!
//! [`ZeekHeader::apply_directive`] consumes the `#...` lines at the top of a log (and the
//! `#open`/`#close` lines, which carry nothing a row needs); once `#fields` is known,
//! [`ZeekHeader::parse_row`] turns a row into an object keyed by the field names, kept flat
//! (`id.orig_h` is one key), with `_path` from `#path`. Values are typed by `#types`:
//! `count`/`int`/`port` as integers, `double`/`interval`/`time` as floats (`ts` stays float
//! seconds), `bool` `T`/`F` as booleans, `set[..]`/`vector[..]` as arrays split on the set
//! separator (the empty field is an empty array), anything else as a string with Zeek's
//! `\xHH` escapes undone. Unset fields (`-`) are left out. A value that does not parse as its
//! type is kept as a string.

use super::{DecodeError, Object, Reason, Value};
use simd_json::StaticNode;
use std::borrow::Cow;

/// The header in force for a block of Zeek TSV rows. The separators and placeholders are
/// `None` until a directive sets them; the accessors give Zeek's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ZeekHeader {
    /// `#separator` (default tab).
    pub separator: Option<String>,
    /// `#set_separator` (default `,`).
    pub set_separator: Option<String>,
    /// `#empty_field` (default `(empty)`).
    pub empty_field: Option<String>,
    /// `#unset_field` (default `-`).
    pub unset_field: Option<String>,
    /// `#path` (`conn`, `dns`, ...).
    pub path: Option<String>,
    /// `#fields`.
    pub fields: Vec<String>,
    /// `#types`, one per field.
    pub types: Vec<String>,
}

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError::new(Reason::InvalidZeek, message)
}

/// Undo Zeek's escapes: `\xHH` (any byte) and `\\`. Borrowed when there is none; if the
/// unescaped bytes are not UTF-8 the text is kept as written.
pub fn unescape(s: &str) -> Cow<'_, str> {
    if !s.contains('\\') {
        return Cow::Borrowed(s);
    }
    let b = s.as_bytes();
    let mut out: Vec<u8> = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        if c == b'\\' {
            if b.get(i + 1) == Some(&b'\\') {
                out.push(b'\\');
                i += 2;
                continue;
            }
            if matches!(b.get(i + 1), Some(b'x') | Some(b'X')) {
                let hex = b
                    .get(i + 2..i + 4)
                    .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                    .and_then(|h| std::str::from_utf8(h).ok());
                if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                    out.push(byte);
                    i += 4;
                    continue;
                }
            }
        }
        out.push(c);
        i += 1;
    }
    match String::from_utf8(out) {
        Ok(s) => Cow::Owned(s),
        Err(_) => Cow::Borrowed(s),
    }
}

impl ZeekHeader {
    pub fn separator(&self) -> &str {
        self.separator.as_deref().unwrap_or("\t")
    }

    pub fn set_separator(&self) -> &str {
        self.set_separator.as_deref().unwrap_or(",")
    }

    pub fn empty_field(&self) -> &str {
        self.empty_field.as_deref().unwrap_or("(empty)")
    }

    pub fn unset_field(&self) -> &str {
        self.unset_field.as_deref().unwrap_or("-")
    }

    /// Consume one `#...` header line. Returns `false` for a line that is not a Zeek
    /// directive. `#separator` starts a new header (everything else is reset); `#open` and
    /// `#close` are accepted and change nothing.
    pub fn apply_directive(&mut self, line: &str) -> bool {
        let line = line.trim_end_matches(['\r', '\n']);
        let Some(body) = line.strip_prefix('#') else {
            return false;
        };
        if let Some(value) = body.strip_prefix("separator") {
            // Written with a space, since the separator is not known yet.
            let Some(value) = value.strip_prefix([' ', '\t']) else {
                return false;
            };
            let sep = unescape(value).into_owned();
            if sep.is_empty() {
                return false;
            }
            *self = ZeekHeader {
                separator: Some(sep),
                ..ZeekHeader::default()
            };
            return true;
        }
        let sep = self.separator().to_string();
        let (name, value) = match body.split_once(sep.as_str()) {
            Some(nv) => nv,
            // Tolerate a header written with spaces by hand.
            None => match body.split_once([' ', '\t']) {
                Some(nv) => nv,
                None => (body, ""),
            },
        };
        match name {
            "set_separator" => self.set_separator = Some(unescape(value).into_owned()),
            "empty_field" => self.empty_field = Some(unescape(value).into_owned()),
            "unset_field" => self.unset_field = Some(unescape(value).into_owned()),
            "path" => self.path = Some(unescape(value).into_owned()),
            "fields" => {
                self.fields = split_nonempty(value, &sep);
            }
            "types" => {
                self.types = split_nonempty(value, &sep);
            }
            "open" | "close" => {}
            _ => return false,
        }
        true
    }

    /// Are the field names known (rows can be parsed)?
    pub fn is_ready(&self) -> bool {
        !self.fields.is_empty()
    }

    /// Parse one row into an object keyed by the `#fields` names.
    pub fn parse_row<'a>(&self, line: &'a str) -> Result<Value<'a>, DecodeError> {
        if !self.is_ready() {
            return Err(err("row before the #fields header"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let sep = self.separator();
        let unset = self.unset_field();
        let cols = line.split(sep).count();
        if cols != self.fields.len() {
            return Err(err(format!(
                "row has {cols} columns, the #fields header has {}",
                self.fields.len()
            )));
        }
        let mut obj = Object::with_capacity_and_hasher(self.fields.len() + 1, Default::default());
        if let Some(path) = &self.path {
            obj.insert(
                Cow::Borrowed("_path"),
                Value::String(Cow::Owned(path.clone())),
            );
        }
        for (idx, raw) in line.split(sep).enumerate() {
            if raw == unset {
                continue;
            }
            let Some(name) = self.fields.get(idx) else {
                continue;
            };
            let ty = self.types.get(idx).map_or("string", String::as_str);
            obj.insert(Cow::Owned(name.clone()), self.typed(ty, raw));
        }
        Ok(Value::Object(Box::new(obj)))
    }

    fn typed<'a>(&self, ty: &str, raw: &'a str) -> Value<'a> {
        let inner = ty
            .strip_prefix("set[")
            .or_else(|| ty.strip_prefix("vector["))
            .or_else(|| ty.strip_prefix("table["))
            .and_then(|t| t.strip_suffix(']'));
        match inner {
            Some(inner) => {
                if raw == self.empty_field() {
                    return Value::Array(Box::default());
                }
                let items: Vec<Value<'a>> = raw
                    .split(self.set_separator())
                    .map(|item| scalar(inner, item, self.empty_field()))
                    .collect();
                Value::Array(Box::new(items))
            }
            None => scalar(ty, raw, self.empty_field()),
        }
    }
}

fn split_nonempty(value: &str, sep: &str) -> Vec<String> {
    if value.is_empty() {
        return Vec::new();
    }
    value.split(sep).map(|f| unescape(f).into_owned()).collect()
}

fn scalar<'a>(ty: &str, raw: &'a str, empty: &str) -> Value<'a> {
    match ty {
        "count" | "int" | "port" => {
            if let Ok(n) = raw.parse::<i64>() {
                return Value::Static(StaticNode::I64(n));
            }
            if let Ok(n) = raw.parse::<u64>() {
                return Value::Static(StaticNode::U64(n));
            }
        }
        "double" | "interval" | "time" => {
            if let Ok(f) = raw.parse::<f64>() {
                if f.is_finite() {
                    return Value::Static(StaticNode::F64(f));
                }
            }
        }
        "bool" => match raw {
            "T" => return Value::Static(StaticNode::Bool(true)),
            "F" => return Value::Static(StaticNode::Bool(false)),
            _ => {}
        },
        _ => {
            if raw == empty {
                return Value::String(Cow::Borrowed(""));
            }
        }
    }
    Value::String(unescape(raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    const CONN_HEADER: &str = "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tconn
#open\t2024-04-02-10-00-00
#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\tlocal_orig\tmissed_bytes\thistory\ttunnel_parents\tip_proto
#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tbool\tcount\tstring\tset[string]\tcount";

    fn header(text: &str) -> ZeekHeader {
        let mut h = ZeekHeader::default();
        for line in text.lines() {
            assert!(h.apply_directive(line), "{line}");
        }
        h
    }

    #[test]
    fn header_directives() {
        let h = header(CONN_HEADER);
        assert_eq!(h.separator(), "\t");
        assert_eq!(h.separator.as_deref(), Some("\t"));
        assert_eq!(h.set_separator(), ",");
        assert_eq!(h.empty_field(), "(empty)");
        assert_eq!(h.unset_field(), "-");
        assert_eq!(h.path.as_deref(), Some("conn"));
        assert_eq!(h.fields.len(), 17);
        assert_eq!(h.types.len(), 17);
        assert_eq!(h.fields.get(2).map(String::as_str), Some("id.orig_h"));
        assert!(h.is_ready());

        let mut h2 = h.clone();
        assert!(h2.apply_directive("#close\t2024-04-02-11-00-00"));
        assert_eq!(h2, h);
        assert!(!h2.apply_directive("#comment that is not zeek"));
        assert!(!h2.apply_directive("not a directive"));
        assert!(!h2.apply_directive("#separator"));
        // A new #separator starts over.
        assert!(h2.apply_directive("#separator \\x7c"));
        assert_eq!(h2.separator(), "|");
        assert!(!h2.is_ready());
        assert!(h2.path.is_none());

        let defaults = ZeekHeader::default();
        assert_eq!(defaults.separator(), "\t");
        assert_eq!(defaults.set_separator(), ",");
        assert!(!defaults.is_ready());
    }

    #[test]
    fn typed_conn_row() {
        let h = header(CONN_HEADER);
        let row = "1712052001.123456\tCk3Vb41bqWZq6vJv3e\t192.168.10.24\t51532\t104.16.249.249\t443\ttcp\tssl\t12.504311\t1480\t5623\tSF\tT\t0\tShADadFf\t(empty)\t6";
        let v = h.parse_row(row).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.get("_path").and_then(|v| v.as_str()), Some("conn"));
        assert_eq!(
            o.get("ts").and_then(|v| v.as_f64()),
            Some(1712052001.123456)
        );
        assert_eq!(
            o.get("uid").and_then(|v| v.as_str()),
            Some("Ck3Vb41bqWZq6vJv3e")
        );
        assert_eq!(
            o.get("id.orig_h").and_then(|v| v.as_str()),
            Some("192.168.10.24")
        );
        assert_eq!(o.get("id.orig_p").and_then(|v| v.as_i64()), Some(51532));
        assert_eq!(o.get("id.resp_p").and_then(|v| v.as_i64()), Some(443));
        assert_eq!(o.get("duration").and_then(|v| v.as_f64()), Some(12.504311));
        assert_eq!(o.get("orig_bytes").and_then(|v| v.as_i64()), Some(1480));
        assert_eq!(o.get("local_orig").and_then(|v| v.as_bool()), Some(true));
        assert_eq!(o.get("history").and_then(|v| v.as_str()), Some("ShADadFf"));
        assert_eq!(
            o.get("tunnel_parents")
                .and_then(|v| v.as_array())
                .map(|a| a.len()),
            Some(0)
        );
        assert!(matches!(
            o.get("uid"),
            Some(Value::String(Cow::Borrowed(_)))
        ));
    }

    #[test]
    fn unset_fields_sets_and_escapes() {
        let h = header(CONN_HEADER);
        let row = "1712052002.5\tCx1\t10.0.0.5\t5353\t224.0.0.251\t5353\tudp\t-\t-\t-\t-\tS0\tF\t0\tD\tCa1,Cb2\\x2cx\t17";
        let v = h.parse_row(row).unwrap();
        let o = v.as_object().unwrap();
        for k in ["service", "duration", "orig_bytes", "resp_bytes"] {
            assert!(o.get(k).is_none(), "{k}");
        }
        assert_eq!(o.get("local_orig").and_then(|v| v.as_bool()), Some(false));
        let set = o.get("tunnel_parents").and_then(|v| v.as_array()).unwrap();
        let set: Vec<&str> = set.iter().filter_map(|v| v.as_str()).collect();
        assert_eq!(set, vec!["Ca1", "Cb2,x"]);
    }

    #[test]
    fn dns_row_with_vectors_and_hex_escapes() {
        let h = header(
            "#separator \\x09
#set_separator\t,
#empty_field\t(empty)
#unset_field\t-
#path\tdns
#fields\tts\tuid\tquery\tqtype\tAA\tanswers\tTTLs\trejected
#types\ttime\tstring\tstring\tcount\tbool\tvector[string]\tvector[interval]\tbool",
        );
        let row = "1712052003.000001\tCq9\twww.ex\\x09ample\\x5cq.com\t1\tF\t93.184.216.34,www.example.com\t3600.000000,60.000000\tX";
        let v = h.parse_row(row).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(
            o.get("query").and_then(|v| v.as_str()),
            Some("www.ex\tample\\q.com")
        );
        assert_eq!(o.get("qtype").and_then(|v| v.as_i64()), Some(1));
        let ttls: Vec<f64> = o
            .get("TTLs")
            .and_then(|v| v.as_array())
            .unwrap()
            .iter()
            .filter_map(|v| v.as_f64())
            .collect();
        assert_eq!(ttls, vec![3600.0, 60.0]);
        assert_eq!(
            o.get("answers").and_then(|v| v.as_array()).map(|a| a.len()),
            Some(2)
        );
        // Not T or F: kept as the string it is.
        assert_eq!(o.get("rejected").and_then(|v| v.as_str()), Some("X"));
    }

    #[test]
    fn bad_rows() {
        let h = header(CONN_HEADER);
        let e = h.parse_row("1712052001.1\tC\t1.2.3.4").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidZeek);
        let e = h.parse_row("").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidZeek);
        let e = ZeekHeader::default().parse_row("a\tb").unwrap_err();
        assert_eq!(e.reason, Reason::InvalidZeek);
        // Values that do not parse as their type stay strings.
        let row = "notatime\tC\t1.2.3.4\t99999999999999999999999\t5.6.7.8\t-1\ttcp\t-\tNaN\t-\t-\tS0\tT\t0\t-\t-\t-";
        let v = h.parse_row(row).unwrap();
        let o = v.as_object().unwrap();
        assert_eq!(o.get("ts").and_then(|v| v.as_str()), Some("notatime"));
        assert_eq!(
            o.get("id.orig_p").and_then(|v| v.as_str()),
            Some("99999999999999999999999")
        );
        assert_eq!(o.get("id.resp_p").and_then(|v| v.as_i64()), Some(-1));
        assert_eq!(o.get("duration").and_then(|v| v.as_str()), Some("NaN"));
    }

    #[test]
    fn mutated_rows_and_headers_never_panic() {
        let h = header(CONN_HEADER);
        let row = "1712052002.5\tCx1\t10.0.0.5\t5353\t224.0.0.251\t5353\tudp\t-\t-\t-\t-\tS0\tF\t0\tD\tCa1,Cb2\\x2cx\t17";
        for line in crate::decode::text::mutate::mutants(row, 2000) {
            let _ = h.parse_row(&line);
        }
        for line in crate::decode::text::mutate::mutants("#set_separator\t,", 300) {
            let mut h2 = h.clone();
            h2.apply_directive(&line);
            let _ = h2.parse_row(row);
        }
    }

    #[test]
    fn unescape_edge_cases() {
        assert_eq!(unescape("plain"), "plain");
        assert_eq!(unescape("a\\x41b"), "aAb");
        assert_eq!(unescape("\\x"), "\\x");
        assert_eq!(unescape("\\xZZ"), "\\xZZ");
        assert_eq!(unescape("\\x4"), "\\x4");
        assert_eq!(unescape("\\"), "\\");
        assert_eq!(unescape("é\\x"), "é\\x");
        assert_eq!(unescape("\\xé"), "\\xé");
        assert_eq!(unescape("\\x+f"), "\\x+f");
        // Invalid UTF-8 after unescaping: kept as written.
        assert_eq!(unescape("\\xff\\xfe"), "\\xff\\xfe");
        assert_eq!(unescape("\\xc3\\xa9"), "é");
    }
}

/// A whole Zeek TSV log (header directives, then rows) as one array of row objects: how a
/// Kafka message carrying a chunk of a Zeek log is read. Any bad row fails the block.
pub fn parse_block(text: &str) -> Result<Value<'_>, DecodeError> {
    let mut header = ZeekHeader::default();
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.starts_with('#') {
            if line.starts_with("#separator") {
                header = ZeekHeader::default();
            }
            if header.apply_directive(line) {
                continue;
            }
        }
        if !header.is_ready() {
            return Err(DecodeError::new(
                Reason::InvalidZeek,
                format!("line {}: a row before the #fields header", i + 1),
            ));
        }
        let row = header
            .parse_row(line)
            .map_err(|e| DecodeError::new(e.reason, format!("line {}: {}", i + 1, e.message)))?;
        rows.push(row);
    }
    if rows.is_empty() {
        return Err(DecodeError::new(
            Reason::EmptyEnvelope,
            "the Zeek log holds no rows",
        ));
    }
    Ok(Value::Array(Box::new(rows)))
}

#[cfg(test)]
mod block_tests {
    use super::*;
    use simd_json::prelude::*;

    #[test]
    fn a_block_is_an_array_of_rows() {
        let text = "#separator \\x09\n#fields\tts\tuid\n#types\ttime\tstring\n1.5\tC1\n2.5\tC2\n#close\t2026\n";
        let v = parse_block(text).unwrap();
        let rows = v.as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].get("uid").and_then(|u| u.as_str()), Some("C2"));
        assert_eq!(
            parse_block("#separator \\x09\n#fields\ta\n")
                .unwrap_err()
                .reason,
            Reason::EmptyEnvelope
        );
        assert_eq!(
            parse_block("1\t2\n").unwrap_err().reason,
            Reason::InvalidZeek
        );
        assert_eq!(
            parse_block("#separator \\x09\n#fields\ta\tb\n1\n")
                .unwrap_err()
                .reason,
            Reason::InvalidZeek
        );
    }
}
