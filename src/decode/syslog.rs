//! Syslog headers: recognise and strip an RFC 5424 or RFC 3164 (BSD) header from a text line.
//!
//! [`strip_header`] returns the header fields (borrowed from the line) and the rest of the
//! line, which the text decoder then dispatches on (CEF, LEEF, PAN-OS CSV, plain message).
//!
//! Recognised forms:
//!
//! * RFC 5424: `<PRI>1 TIMESTAMP HOST APP PROCID MSGID [SD...]|- MSG` (`-` is nil).
//! * RFC 3164 / BSD: `[<PRI>]Mmm dd hh:mm:ss [HOST] [TAG[pid]:] MSG`, where the timestamp may
//!   also be `Mmm dd yyyy hh:mm:ss` or an ISO 8601 / RFC 3339 timestamp (rsyslog's file
//!   format), and the tag may lack its colon when it carries a `[pid]`.
//! * `<PRI>` alone followed by anything: a header with only the priority.
//!
//! A body that starts with `CEF:` or `LEEF:` is never taken for a host name or a tag, so
//! `Aug  3 10:49:35 fw CEF: 0|...` keeps the whole CEF record as its body, and a bare
//! `CEF:0|...` line has no header at all.

use super::{Object, Value};
use simd_json::StaticNode;
use std::borrow::Cow;

/// The fields of a syslog header. Every string borrows from the line.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyslogHeader<'a> {
    /// The PRI value (`facility * 8 + severity`), 0..=191.
    pub pri: Option<u8>,
    /// The RFC 5424 version (`1`); `None` for BSD headers.
    pub version: Option<u8>,
    /// The timestamp exactly as written (`Aug  3 10:49:35`, `2024-01-15T10:22:33.123Z`).
    pub timestamp: Option<&'a str>,
    pub hostname: Option<&'a str>,
    /// APP-NAME (RFC 5424) or the TAG (RFC 3164) without its `[pid]` and colon.
    pub app_name: Option<&'a str>,
    pub procid: Option<&'a str>,
    /// RFC 5424 MSGID.
    pub msgid: Option<&'a str>,
    /// RFC 5424 structured data, raw (`[exampleSDID@32473 iut="3"]`), when not nil.
    pub structured_data: Option<&'a str>,
}

impl<'a> SyslogHeader<'a> {
    /// The facility code (`pri / 8`).
    pub fn facility(&self) -> Option<u8> {
        self.pri.map(|p| p >> 3)
    }

    /// The severity code (`pri % 8`).
    pub fn severity(&self) -> Option<u8> {
        self.pri.map(|p| p & 7)
    }

    /// The header as an object with the keys `facility`, `severity` (integers), `timestamp`,
    /// `hostname`, `app_name`, `procid`, `msgid` and `structured_data`, only those present.
    pub fn to_value(&self) -> Value<'a> {
        let mut obj = Object::default();
        let int = |n: u8| Value::Static(StaticNode::I64(i64::from(n)));
        if let Some(f) = self.facility() {
            obj.insert(Cow::Borrowed("facility"), int(f));
        }
        if let Some(s) = self.severity() {
            obj.insert(Cow::Borrowed("severity"), int(s));
        }
        let strings = [
            ("timestamp", self.timestamp),
            ("hostname", self.hostname),
            ("app_name", self.app_name),
            ("procid", self.procid),
            ("msgid", self.msgid),
            ("structured_data", self.structured_data),
        ];
        for (key, val) in strings {
            if let Some(v) = val {
                obj.insert(Cow::Borrowed(key), Value::String(Cow::Borrowed(v)));
            }
        }
        Value::Object(Box::new(obj))
    }
}

/// Recognise a syslog header at the start of `line`. Returns the header and the rest of the
/// line (the message), or `(None, line)` when the line has no header.
pub fn strip_header(line: &str) -> (Option<SyslogHeader<'_>>, &str) {
    let (pri, rest) = match parse_pri(line) {
        Some((p, r)) => (Some(p), r),
        None => (None, line),
    };
    if pri.is_some() {
        if let Some((h, body)) = parse_5424(pri, rest) {
            return (Some(h), body);
        }
    }
    if let Some((h, body)) = parse_3164(pri, rest) {
        return (Some(h), body);
    }
    if pri.is_some() {
        let header = SyslogHeader {
            pri,
            ..SyslogHeader::default()
        };
        return (Some(header), rest);
    }
    (None, line)
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// `<N>` with N in 0..=191.
fn parse_pri(s: &str) -> Option<(u8, &str)> {
    let rest = s.strip_prefix('<')?;
    let close = rest.as_bytes().iter().take(4).position(|&b| b == b'>')?;
    let digits = rest.get(..close)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u16 = digits.parse().ok()?;
    if n > 191 {
        return None;
    }
    Some((n as u8, rest.get(close + 1..)?))
}

/// Splits off one space-terminated token. The token must not be empty; the one space after
/// it is consumed.
fn token(s: &str) -> Option<(&str, &str)> {
    let end = s.find(' ').unwrap_or(s.len());
    if end == 0 {
        return None;
    }
    let tok = s.get(..end)?;
    let rest = s.get(end..)?;
    Some((tok, rest.strip_prefix(' ').unwrap_or(rest)))
}

fn nil(tok: &str) -> Option<&str> {
    (tok != "-").then_some(tok)
}

fn parse_5424(pri: Option<u8>, s: &str) -> Option<(SyslogHeader<'_>, &str)> {
    let (ver, rest) = token(s)?;
    if ver.is_empty()
        || ver.len() > 2
        || !ver.bytes().all(|b| b.is_ascii_digit())
        || ver.starts_with('0')
    {
        return None;
    }
    let version: u8 = ver.parse().ok()?;
    let (ts, rest) = token(rest)?;
    let (host, rest) = token(rest)?;
    let (app, rest) = token(rest)?;
    let (procid, rest) = token(rest)?;
    let (msgid, rest) = token(rest)?;
    if ts != "-" && !looks_like_5424_time(ts) {
        return None;
    }
    let (sd, msg) = if rest == "-" {
        (None, "")
    } else if let Some(after) = rest.strip_prefix("- ") {
        (None, after)
    } else if rest.starts_with('[') {
        match sd_len(rest) {
            Some(n) => {
                let sd = rest.get(..n)?;
                let after = rest.get(n..)?;
                (Some(sd), after.strip_prefix(' ').unwrap_or(after))
            }
            None => (None, rest),
        }
    } else {
        // Structured data left out altogether: tolerate it, the rest is the message.
        (None, rest)
    };
    let msg = msg.strip_prefix('\u{FEFF}').unwrap_or(msg);
    let header = SyslogHeader {
        pri,
        version: Some(version),
        timestamp: nil(ts),
        hostname: nil(host),
        app_name: nil(app),
        procid: nil(procid),
        msgid: nil(msgid),
        structured_data: sd,
    };
    Some((header, msg))
}

/// RFC 5424 timestamps are RFC 3339 (`2003-10-11T22:14:15.003Z`); a loose shape check.
fn looks_like_5424_time(ts: &str) -> bool {
    let b = ts.as_bytes();
    b.len() >= 19
        && b.iter().take(4).all(u8::is_ascii_digit)
        && b.get(4) == Some(&b'-')
        && b.get(10).is_some_and(|c| *c == b'T' || *c == b't')
}

/// Length of one or more SD-ELEMENTs (`[id k="v" ...]`) at the start of `s`, quoted values
/// with `\"`, `\\` and `\]` escapes. `None` if unterminated.
fn sd_len(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while b.get(i) == Some(&b'[') {
        i += 1;
        let mut quoted = false;
        loop {
            let c = *b.get(i)?;
            i += 1;
            match c {
                b'\\' if quoted => i += 1,
                b'"' => quoted = !quoted,
                b']' if !quoted => break,
                _ => {}
            }
        }
    }
    (i > 0 && s.is_char_boundary(i)).then_some(i)
}

/// Number of ASCII digits at `b[i..]`, if between `min` and `max`.
fn digits(b: &[u8], i: usize, min: usize, max: usize) -> Option<usize> {
    let n = b
        .get(i..)?
        .iter()
        .take(max)
        .take_while(|c| c.is_ascii_digit())
        .count();
    (n >= min).then_some(n)
}

/// `hh:mm:ss` with an optional `.fraction`, at `b[i..]`; returns the end index.
fn clock(b: &[u8], i: usize) -> Option<usize> {
    let mut i = i;
    for part in 0..3 {
        if part > 0 {
            if b.get(i) != Some(&b':') {
                return None;
            }
            i += 1;
        }
        if digits(b, i, 2, 2)? != 2 {
            return None;
        }
        i += 2;
    }
    if b.get(i) == Some(&b'.') || b.get(i) == Some(&b',') {
        let n = digits(b, i + 1, 1, 9)?;
        i += 1 + n;
    }
    Some(i)
}

/// `Mmm dd hh:mm:ss`, `Mmm  d hh:mm:ss`, `Mmm dd yyyy hh:mm:ss`; returns the end index.
fn bsd_timestamp(b: &[u8]) -> Option<usize> {
    let month = b.get(..3)?;
    if !MONTHS
        .iter()
        .any(|m| m.as_bytes().eq_ignore_ascii_case(month))
    {
        return None;
    }
    let mut i = 3;
    let spaces = b.get(i..)?.iter().take_while(|c| **c == b' ').count();
    if spaces == 0 || spaces > 2 {
        return None;
    }
    i += spaces;
    i += digits(b, i, 1, 2)?;
    if b.get(i) != Some(&b' ') {
        return None;
    }
    i += 1;
    if let Some(4) = digits(b, i, 4, 4) {
        if b.get(i + 4) == Some(&b' ') {
            i += 5;
        }
    }
    clock(b, i)
}

/// `yyyy-mm-ddThh:mm:ss[.frac][Z|±hh:mm]` (also with a space for `T`); returns the end index.
fn iso_timestamp(b: &[u8]) -> Option<usize> {
    if digits(b, 0, 4, 4)? != 4
        || b.get(4) != Some(&b'-')
        || digits(b, 5, 2, 2)? != 2
        || b.get(7) != Some(&b'-')
        || digits(b, 8, 2, 2)? != 2
        || !matches!(b.get(10), Some(b'T') | Some(b't') | Some(b' '))
    {
        return None;
    }
    let mut i = clock(b, 11)?;
    match b.get(i) {
        Some(b'Z') | Some(b'z') => i += 1,
        Some(b'+') | Some(b'-') => {
            let h = digits(b, i + 1, 2, 2)?;
            i += 1 + h;
            if b.get(i) == Some(&b':') {
                i += 1;
            }
            i += digits(b, i, 2, 2)?;
        }
        _ => {}
    }
    Some(i)
}

fn starts_with_cef_or_leef(s: &str) -> bool {
    s.starts_with("CEF:") || s.starts_with("LEEF:")
}

/// Host names, IPv4 and IPv6 addresses: letters, digits, `.-_:%` and brackets.
fn is_hostname(tok: &str) -> bool {
    !tok.is_empty()
        && tok.len() <= 255
        && !tok.ends_with(':')
        && !starts_with_cef_or_leef(tok)
        && tok.bytes().all(|b| {
            b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b':' | b'%' | b'[' | b']')
        })
}

/// A BSD TAG token: `name:`, `name[pid]:`, or (when `colon_optional`) `name[pid]`.
fn parse_tag(tok: &str, colon_optional: bool) -> Option<(&str, Option<&str>)> {
    let (core, had_colon) = match tok.strip_suffix(':') {
        Some(c) => (c, true),
        None => (tok, false),
    };
    let (name, pid) = match core.strip_suffix(']') {
        Some(c) => {
            let open = c.rfind('[')?;
            let pid = c.get(open + 1..)?;
            if pid.is_empty() || pid.contains(['[', ']']) {
                return None;
            }
            (c.get(..open)?, Some(pid))
        }
        None => (core, None),
    };
    if !(had_colon || (colon_optional && pid.is_some())) {
        return None;
    }
    let valid_name = !name.is_empty()
        && name.len() <= 64
        && name != "CEF"
        && name != "LEEF"
        && !name.contains(['[', ']', ':', '|', '=', ',', '"']);
    valid_name.then_some((name, pid))
}

fn parse_3164(pri: Option<u8>, s: &str) -> Option<(SyslogHeader<'_>, &str)> {
    let b = s.as_bytes();
    let end = bsd_timestamp(b).or_else(|| iso_timestamp(b))?;
    let ts = s.get(..end)?;
    let after = s.get(end..)?;
    let mut header = SyslogHeader {
        pri,
        timestamp: Some(ts),
        ..SyslogHeader::default()
    };
    if after.is_empty() {
        return Some((header, after));
    }
    // The timestamp must be followed by a space.
    let rest = after.strip_prefix(' ')?.trim_start_matches(' ');
    if starts_with_cef_or_leef(rest) {
        return Some((header, rest));
    }
    let Some((tok1, after1)) = token(rest) else {
        return Some((header, rest));
    };
    if let Some((app, pid)) = parse_tag(tok1, false) {
        // No host name: the first token is the tag.
        header.app_name = Some(app);
        header.procid = pid;
        return Some((header, after1));
    }
    if !is_hostname(tok1) {
        return Some((header, rest));
    }
    header.hostname = Some(tok1);
    let rest = after1.trim_start_matches(' ');
    if starts_with_cef_or_leef(rest) {
        return Some((header, rest));
    }
    if let Some((tok2, after2)) = token(rest) {
        if let Some((app, pid)) = parse_tag(tok2, true) {
            header.app_name = Some(app);
            header.procid = pid;
            return Some((header, after2));
        }
    }
    Some((header, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    #[test]
    fn rfc5424_full_header_with_structured_data() {
        let line = r#"<165>1 2024-03-05T14:22:10.512Z web-07.corp.example nginx 2211 ACCESS [meta@32473 seq="88" note="a \"quoted\" ]"][origin ip="10.1.2.3"] GET /login 200"#;
        let (h, body) = strip_header(line);
        let h = h.expect("header");
        assert_eq!(h.pri, Some(165));
        assert_eq!(h.facility(), Some(20));
        assert_eq!(h.severity(), Some(5));
        assert_eq!(h.version, Some(1));
        assert_eq!(h.timestamp, Some("2024-03-05T14:22:10.512Z"));
        assert_eq!(h.hostname, Some("web-07.corp.example"));
        assert_eq!(h.app_name, Some("nginx"));
        assert_eq!(h.procid, Some("2211"));
        assert_eq!(h.msgid, Some("ACCESS"));
        assert_eq!(
            h.structured_data,
            Some(r#"[meta@32473 seq="88" note="a \"quoted\" ]"][origin ip="10.1.2.3"]"#)
        );
        assert_eq!(body, "GET /login 200");
    }

    #[test]
    fn rfc5424_nil_fields_and_bom() {
        let (h, body) = strip_header("<14>1 - - - - - - \u{FEFF}hello world");
        let h = h.unwrap();
        assert_eq!(h.pri, Some(14));
        assert_eq!(h.timestamp, None);
        assert_eq!(h.hostname, None);
        assert_eq!(h.app_name, None);
        assert_eq!(h.msgid, None);
        assert_eq!(h.structured_data, None);
        assert_eq!(body, "hello world");

        let (h, body) = strip_header("<14>1 2024-01-01T00:00:00+01:00 host app - - -");
        assert_eq!(h.unwrap().hostname, Some("host"));
        assert_eq!(body, "");
    }

    #[test]
    fn rfc5424_with_cef_body() {
        let (h, body) = strip_header("<134>1 2024-05-01T08:00:00.000+02:00 fw01 CEF - - - CEF:0|Acme|FW|1|100|Blocked|5|src=1.2.3.4");
        let h = h.unwrap();
        assert_eq!(h.app_name, Some("CEF"));
        assert_eq!(body, "CEF:0|Acme|FW|1|100|Blocked|5|src=1.2.3.4");
    }

    #[test]
    fn bsd_header_with_tag_and_pid() {
        let (h, body) = strip_header("<38>Mar  7 09:03:11 bastion sshd[41522]: Accepted publickey for deploy from 198.51.100.23 port 50122 ssh2");
        let h = h.unwrap();
        assert_eq!(h.pri, Some(38));
        assert_eq!(h.facility(), Some(4));
        assert_eq!(h.severity(), Some(6));
        assert_eq!(h.timestamp, Some("Mar  7 09:03:11"));
        assert_eq!(h.hostname, Some("bastion"));
        assert_eq!(h.app_name, Some("sshd"));
        assert_eq!(h.procid, Some("41522"));
        assert_eq!(h.version, None);
        assert_eq!(
            body,
            "Accepted publickey for deploy from 198.51.100.23 port 50122 ssh2"
        );
    }

    #[test]
    fn bsd_header_without_pri_year_and_iso_variants() {
        let (h, body) = strip_header("Nov 30 2023 23:59:58 core-sw1 kernel: link down");
        let h = h.unwrap();
        assert_eq!(h.pri, None);
        assert_eq!(h.timestamp, Some("Nov 30 2023 23:59:58"));
        assert_eq!(h.hostname, Some("core-sw1"));
        assert_eq!(h.app_name, Some("kernel"));
        assert_eq!(h.procid, None);
        assert_eq!(body, "link down");

        let (h, body) = strip_header("2024-02-29T10:22:33.123456+01:00 db02 postgres[977]: FATAL:  password authentication failed");
        let h = h.unwrap();
        assert_eq!(h.timestamp, Some("2024-02-29T10:22:33.123456+01:00"));
        assert_eq!(h.hostname, Some("db02"));
        assert_eq!(h.app_name, Some("postgres"));
        assert_eq!(h.procid, Some("977"));
        assert_eq!(body, "FATAL:  password authentication failed");
    }

    #[test]
    fn bsd_header_without_host_or_tag() {
        // Tag straight after the timestamp.
        let (h, body) = strip_header("<13>Jan  5 01:02:03 cron[88]: job done");
        let h = h.unwrap();
        assert_eq!(h.hostname, None);
        assert_eq!(h.app_name, Some("cron"));
        assert_eq!(body, "job done");
        // Host, no tag.
        let (h, body) = strip_header("<13>Feb 15 17:32:18 10.0.0.99 Use the spare link");
        let h = h.unwrap();
        assert_eq!(h.hostname, Some("10.0.0.99"));
        assert_eq!(h.app_name, None);
        assert_eq!(body, "Use the spare link");
        // PAN-OS CSV straight after the timestamp: not a host name.
        let (h, body) =
            strip_header("Jul 13 20:39:44 1,2017/07/13 20:39:44,001801000001,TRAFFIC,end");
        assert_eq!(h.unwrap().hostname, None);
        assert_eq!(body, "1,2017/07/13 20:39:44,001801000001,TRAFFIC,end");
    }

    #[test]
    fn cef_is_not_a_tag_or_host() {
        let (h, body) = strip_header("CEF:0|Acme|IDS|2.1|42|Port scan|7|src=203.0.113.9");
        assert!(h.is_none());
        assert_eq!(body, "CEF:0|Acme|IDS|2.1|42|Port scan|7|src=203.0.113.9");

        let (h, body) = strip_header("Aug  3 10:49:35 waf01 CEF: 0|Acme|WAF|1.0|WAF|WAF|4| cat=TR");
        let h = h.unwrap();
        assert_eq!(h.hostname, Some("waf01"));
        assert_eq!(h.app_name, None);
        assert_eq!(body, "CEF: 0|Acme|WAF|1.0|WAF|WAF|4| cat=TR");

        let (h, body) = strip_header(
            "Jul 25 09:56:42 syslog.example.net syslogng[9] CEF:0||||N/A|x|High|cat=attack",
        );
        let h = h.unwrap();
        assert_eq!(h.hostname, Some("syslog.example.net"));
        assert_eq!(h.app_name, Some("syslogng"));
        assert_eq!(h.procid, Some("9"));
        assert_eq!(body, "CEF:0||||N/A|x|High|cat=attack");

        let (h, body) = strip_header("<12>Jan 18 11:07:53 LEEF:1.0|V|P|1|E|a=b");
        assert_eq!(h.unwrap().hostname, None);
        assert_eq!(body, "LEEF:1.0|V|P|1|E|a=b");
    }

    #[test]
    fn pri_only_and_no_header() {
        let (h, body) = strip_header("<190>something without a timestamp");
        assert_eq!(h.unwrap().pri, Some(190));
        assert_eq!(body, "something without a timestamp");

        for line in [
            "",
            "plain text line",
            "<192>out of range",
            "<abc>not a pri",
            "<1",
            "Mar is a month but not a timestamp",
            "Mar 12 12:3",
            "2024-01-01",
            "<",
            "<>",
        ] {
            let (h, body) = strip_header(line);
            assert!(h.is_none(), "{line:?}");
            assert_eq!(body, line);
        }
    }

    #[test]
    fn broken_headers_never_panic() {
        for line in [
            "<13>1 2024-01-01T00:00:00Z h a p m [unterminated sd",
            "<13>1",
            "<13>1 ",
            "<13>12 x",
            "<13>Jan  5 01:02:03",
            "<13>Jan  5 01:02:03 ",
            "<13>Jan  5 01:02:03 é[1]: x",
            "<13>Jan  5 01:02:03 h ñame[]: x",
            "Jan 99 99:99:99.",
            "<13>2024-01-01T00:00:00+0",
            "<0>é",
            "<13>1 2024-01-01T00:00:00Z h a p m [a k=\"\\",
        ] {
            let _ = strip_header(line);
        }
    }

    #[test]
    fn to_value_has_only_present_keys() {
        let (h, _) = strip_header("<38>Mar  7 09:03:11 bastion sshd[41522]: x");
        let v = h.unwrap().to_value();
        let o = v.as_object().unwrap();
        assert_eq!(o.get("facility").and_then(|v| v.as_i64()), Some(4));
        assert_eq!(o.get("severity").and_then(|v| v.as_i64()), Some(6));
        assert_eq!(o.get("hostname").and_then(|v| v.as_str()), Some("bastion"));
        assert_eq!(o.get("app_name").and_then(|v| v.as_str()), Some("sshd"));
        assert_eq!(o.get("procid").and_then(|v| v.as_str()), Some("41522"));
        assert!(o.get("msgid").is_none());
        assert_eq!(o.len(), 6);

        let (h, _) = strip_header("Mar  7 09:03:11 bastion x");
        let v = h.unwrap().to_value();
        let o = v.as_object().unwrap();
        assert!(o.get("facility").is_none());
        assert_eq!(o.len(), 2);
    }
}
