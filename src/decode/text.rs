//! Text lines: syslog header, then CEF, LEEF, PAN-OS CSV, or plain message.
//!
//! [`parse_line`] strips an optional syslog header ([`syslog::strip_header`]) and dispatches
//! on the body: `CEF:` → [`cef`], `LEEF:` → [`leef`], a PAN-OS CSV record → [`pan`],
//! anything else is a plain message. The result is one object holding the format's keys,
//! `syslog` (the header object) when there was a header, and `_format` (`cef`, `leef`, `pan`,
//! `syslog` for a plain message behind a syslog header, `text` for a bare line), which the
//! pipeline removes to choose a mapping. A plain message is under `message`.
//!
//! CEF and LEEF records are also found behind a tag the header parser did not take (`...
//! syslogng[9]: CEF:0|...`, `host CEF:0|...`): the first `CEF:<digit>` / `LEEF:<digit>` that
//! starts a word within the first [`MARKER_WINDOW`] bytes of the body is where the record
//! starts; the text before it is kept under `_prefix`.

use super::{cef, leef, pan, syslog, DecodeError, Object, Value};
use std::borrow::Cow;

/// How far into the body a `CEF:`/`LEEF:` marker is looked for.
pub const MARKER_WINDOW: usize = 200;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Marker {
    Cef,
    Leef,
}

/// `CEF:` or `LEEF:`, optional spaces, then a digit, at the start of `s`?
fn marker_at(s: &str) -> Option<Marker> {
    let (kind, rest) = if let Some(r) = s.strip_prefix("CEF:") {
        (Marker::Cef, r)
    } else if let Some(r) = s.strip_prefix("LEEF:") {
        (Marker::Leef, r)
    } else {
        return None;
    };
    rest.trim_start_matches(' ')
        .starts_with(|c: char| c.is_ascii_digit())
        .then_some(kind)
}

/// The first marker that starts a word within the window: its byte offset and kind.
fn find_marker(body: &str) -> Option<(usize, Marker)> {
    let b = body.as_bytes();
    let limit = b.len().min(MARKER_WINDOW);
    let mut i = 0;
    while i < limit {
        let c = b.get(i).copied()?;
        let word_start = i == 0 || b.get(i - 1).is_some_and(|p| p.is_ascii_whitespace());
        if (c == b'C' || c == b'L') && word_start {
            if let Some(kind) = body.get(i..).and_then(marker_at) {
                return Some((i, kind));
            }
        }
        i += 1;
    }
    None
}

fn insert_reserved<'a>(obj: &mut Object<'a>, key: &'static str, val: Value<'a>) {
    // A format key of the same name is kept under `ext_<key>`.
    if let Some(old) = obj.insert(Cow::Borrowed(key), val) {
        obj.insert(Cow::Owned(format!("ext_{key}")), old);
    }
}

/// Parse one text line into an object (see the module docs).
pub fn parse_line(line: &str) -> Result<Value<'_>, DecodeError> {
    let line = line.trim_end_matches(['\r', '\n']);
    let (header, body) = syslog::strip_header(line);
    let body = body.trim_start();

    let mut found = None;
    if let Some((pos, kind)) = find_marker(body) {
        let record = body.get(pos..).unwrap_or("");
        let parsed = match kind {
            Marker::Cef => cef::parse(record),
            Marker::Leef => leef::parse(record),
        };
        match parsed {
            Ok(mut obj) => {
                let prefix = body.get(..pos).unwrap_or("").trim();
                if !prefix.is_empty() {
                    insert_reserved(&mut obj, "_prefix", Value::String(Cow::Borrowed(prefix)));
                }
                let format = if kind == Marker::Cef { "cef" } else { "leef" };
                found = Some((format, obj));
            }
            // A body that starts with the marker is a broken record; a marker further in
            // may just be words in a message, which then stays a plain message.
            Err(e) if pos == 0 => return Err(e),
            Err(_) => {}
        }
    }
    let (format, mut obj) = match found {
        Some(f) => f,
        None if pan::looks_like_pan(body) => ("pan", pan::parse(body)?),
        None => {
            let mut obj = Object::with_capacity_and_hasher(3, Default::default());
            let text = if header.is_some() { body } else { line };
            obj.insert(Cow::Borrowed("message"), Value::String(Cow::Borrowed(text)));
            let format = if header.is_some() { "syslog" } else { "text" };
            (format, obj)
        }
    };
    if let Some(h) = header {
        insert_reserved(&mut obj, "syslog", h.to_value());
    }
    insert_reserved(&mut obj, "_format", Value::String(Cow::Borrowed(format)));
    Ok(Value::Object(Box::new(obj)))
}

/// Deterministic input mutations for the decoders' no-panic tests.
#[cfg(test)]
pub(crate) mod mutate {
    const PIECES: &[&str] = &[
        "|",
        "=",
        "\\",
        " ",
        "\t",
        "\"",
        ",",
        "<",
        ">",
        "[",
        "]",
        ":",
        "é",
        "&",
        "#",
        "0",
        "CEF:0|",
        "LEEF:2.0|",
        "\\x",
        "&amp;",
        "<Data Name=\"a\">",
        "</Data>",
        "<![CDATA[",
        "-",
        "(empty)",
        "TRAFFIC",
        "<13>",
        "Jan  1 00:00:00 ",
        "\u{FEFF}",
        "\r",
    ];

    /// `n` mutants of `seed` (pieces inserted, tails cut, ranges deleted or doubled).
    pub(crate) fn mutants(seed: &str, n: usize) -> Vec<String> {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15 ^ seed.len() as u64;
        let mut next = move |bound: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            if bound == 0 {
                0
            } else {
                (state % bound as u64) as usize
            }
        };
        (0..n)
            .map(|_| {
                let mut out = seed.to_string();
                for _ in 0..=next(3) {
                    let bounds: Vec<usize> = out
                        .char_indices()
                        .map(|(i, _)| i)
                        .chain([out.len()])
                        .collect();
                    let at = bounds.get(next(bounds.len())).copied().unwrap_or(0);
                    let to = bounds
                        .iter()
                        .copied()
                        .find(|&b| b > at + next(30))
                        .unwrap_or(out.len());
                    match next(4) {
                        0 => out
                            .insert_str(at, PIECES.get(next(PIECES.len())).copied().unwrap_or("")),
                        1 => out.truncate(at),
                        2 => out.replace_range(at..to, ""),
                        _ => {
                            let dup = out.get(at..to).unwrap_or("").to_string();
                            out.insert_str(at, &dup);
                        }
                    }
                }
                out
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::Reason;
    use simd_json::prelude::*;

    fn parsed(line: &str) -> Value<'_> {
        parse_line(line).unwrap_or_else(|e| panic!("{line}: {e}"))
    }

    fn s<'v>(v: &'v Value<'_>, path: &[&str]) -> Option<&'v str> {
        let mut cur = v;
        for k in path {
            cur = cur.as_object()?.get(*k)?;
        }
        cur.as_str()
    }

    #[test]
    fn bare_cef_line() {
        let v = parsed("CEF:0|Fortinet|FortiGate|7.2|0000000013|traffic:forward deny|3|src=10.1.1.5 dst=8.8.8.8 act=deny\r\n");
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["deviceProduct"]), Some("FortiGate"));
        assert_eq!(s(&v, &["act"]), Some("deny"));
        assert!(v.as_object().unwrap().get("syslog").is_none());
    }

    #[test]
    fn cef_behind_syslog_headers() {
        let v = parsed(
            "<134>Aug  3 10:49:35 waf01 CEF: 0|Acme|WAF|1.0|WAF|WAF|4| cat=TR src=198.51.100.4",
        );
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["syslog", "hostname"]), Some("waf01"));
        assert_eq!(
            v.as_object()
                .and_then(|o| o.get("syslog"))
                .and_then(|h| h.get("severity"))
                .and_then(|x| x.as_i64()),
            Some(6)
        );
        assert_eq!(s(&v, &["src"]), Some("198.51.100.4"));

        let v = parsed("Jul 25 09:56:42 syslog.example.net syslogng[9] CEF:0||||N/A|URL Access Violation|Substantial|cat=attack");
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["syslog", "app_name"]), Some("syslogng"));
        assert_eq!(s(&v, &["name"]), Some("URL Access Violation"));

        // A tag the header parser does not take: found by the marker search.
        let v = parsed("<14>Mar  1 12:00:00 fw01 : %FW: CEF:0|Acme|FW|1|7|Deny|5|src=10.0.0.1");
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["_prefix"]), Some(": %FW:"));
        assert_eq!(s(&v, &["src"]), Some("10.0.0.1"));

        // Host and CEF without a timestamp: no header, marker after a word.
        let v = parsed("fw-edge CEF:0|Acme|FW|1|7|Deny|5|src=10.0.0.1");
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["_prefix"]), Some("fw-edge"));
    }

    #[test]
    fn leef_lines() {
        let v = parsed("<13>Jan 18 11:07:53 qradar-src LEEF:2.0|Vendor|Proxy|1.1|access|^|src=10.2.2.2^usrName=amy");
        assert_eq!(s(&v, &["_format"]), Some("leef"));
        assert_eq!(s(&v, &["usrName"]), Some("amy"));
        assert_eq!(s(&v, &["syslog", "hostname"]), Some("qradar-src"));
        let v = parsed("LEEF:1.0|V|P|1|E|a=1\tb=2");
        assert_eq!(s(&v, &["_format"]), Some("leef"));
        assert_eq!(s(&v, &["b"]), Some("2"));
    }

    #[test]
    fn pan_lines() {
        let v = parsed("<14>Oct  4 18:54:26 pa-fw01 1,2024/10/04 18:54:26,013201004567,TRAFFIC,drop,2561,2024/10/04 18:54:25,203.0.113.50,10.1.1.10,0.0.0.0,0.0.0.0,interzone-default,,,not-applicable,vsys1,untrust,trust,ethernet1/1,,default,2024/10/04 18:54:25,0,1,61000,22,0,0,0x0,tcp,deny,60,60,0,1,2024/10/04 18:54:25,0,any,,1001,0x0,NL,10.0.0.0-10.255.255.255,,1,0,policy-deny");
        assert_eq!(s(&v, &["_format"]), Some("pan"));
        assert_eq!(s(&v, &["type"]), Some("TRAFFIC"));
        assert_eq!(s(&v, &["dport"]), Some("22"));
        assert_eq!(s(&v, &["session_end_reason"]), Some("policy-deny"));
        assert_eq!(s(&v, &["syslog", "hostname"]), Some("pa-fw01"));
    }

    #[test]
    fn plain_syslog_and_text() {
        let v = parsed("<38>Mar  7 09:03:11 bastion sshd[41522]: Failed password for root from 192.0.2.1 port 2222 ssh2");
        assert_eq!(s(&v, &["_format"]), Some("syslog"));
        assert_eq!(
            s(&v, &["message"]),
            Some("Failed password for root from 192.0.2.1 port 2222 ssh2")
        );
        assert_eq!(s(&v, &["syslog", "app_name"]), Some("sshd"));

        let v = parsed("just a line of text, mentioning CEF:xyz and LEEF: nothing");
        assert_eq!(s(&v, &["_format"]), Some("text"));
        assert_eq!(
            s(&v, &["message"]),
            Some("just a line of text, mentioning CEF:xyz and LEEF: nothing")
        );
        assert_eq!(v.as_object().unwrap().len(), 2);

        let v = parsed("");
        assert_eq!(s(&v, &["_format"]), Some("text"));
    }

    #[test]
    fn marker_outside_window_is_plain_text() {
        let mut line = "x".repeat(MARKER_WINDOW + 5);
        line.push_str(" CEF:0|V|P|1|2|N|5|a=b");
        let v = parsed(&line);
        assert_eq!(s(&v, &["_format"]), Some("text"));
    }

    #[test]
    fn broken_cef_leef_pan_are_errors() {
        assert_eq!(
            parse_line("CEF:0|V|P").unwrap_err().reason,
            Reason::InvalidCef
        );
        assert_eq!(
            parse_line("<13>Jan  1 00:00:00 h LEEF:1.0|V")
                .unwrap_err()
                .reason,
            Reason::InvalidLeef
        );
        // A broken marker further into a message leaves a plain message.
        let v = parsed("<13>Jan  1 00:00:00 h app: cannot forward CEF:0|truncated");
        assert_eq!(s(&v, &["_format"]), Some("syslog"));
        assert_eq!(s(&v, &["message"]), Some("cannot forward CEF:0|truncated"));
        assert_eq!(
            parse_line("1,2024/01/09 08:30:00,0132,THREAT,url,0,\"open")
                .unwrap_err()
                .reason,
            Reason::InvalidCsv
        );
    }

    #[test]
    fn reserved_keys_are_kept_aside() {
        let v = parsed("<13>Jan  1 00:00:00 h CEF:0|V|P|1|2|N|5|syslog=x _format=y");
        assert_eq!(s(&v, &["_format"]), Some("cef"));
        assert_eq!(s(&v, &["ext__format"]), Some("y"));
        assert_eq!(s(&v, &["ext_syslog"]), Some("x"));
        assert_eq!(s(&v, &["syslog", "hostname"]), Some("h"));
    }

    #[test]
    fn mutated_lines_never_panic() {
        let seeds = [
            "<134>Aug  3 10:49:35 waf01 CEF: 0|Acme|WAF|1.0|WAF|WAF|4| cat=TR cs1Label=App cs1=x y msg=a\\=b\\\\c",
            "<13>1 2024-01-01T00:00:00Z h app 12 ID [sd a=\"b\\\"]\"] LEEF:2.0|V|P|1|E|x5E|a=1^b=2",
            "Jul 25 09:56:42 relay syslogng[9] LEEF:1.0|V|P|1|E|cat=x|sev=3|src=1.2.3.4\tusrName=bob",
            "<14>Oct  4 18:54:26 pa 1,2024/10/04 18:54:26,0132,THREAT,url,2561,2024/10/04 18:54:25,1.2.3.4,5.6.7.8,,,r,,,web,vsys1,a,b,e1,e2,fw,,1,1,1,2,0,0,0x0,tcp,alert,\"x,\"\"y\",(9999),cat,low",
        ];
        for seed in seeds {
            for line in mutate::mutants(seed, 1500) {
                let _ = parse_line(&line);
            }
        }
    }

    #[test]
    fn multibyte_text_never_panics() {
        for line in [
            "ééééé CEF:0|é|é|é|é|é|é|é=é",
            "<13>Jan  1 00:00:00 ü LEEF:2.0|é|é|é|é|é|é=é",
            "€CEF:0|a",
            "\u{FEFF}CEF:0|V|P|1|2|N|5|",
            "CEF:",
            "LEEF:",
            " \t ",
        ] {
            let _ = parse_line(line);
        }
    }
}
