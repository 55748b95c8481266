//! Framing: split an input stream into records, and say what kind each one is.
//!
//! Files and stdin are read line by line. A line whose first non-blank byte is `{` or `[`
//! starts a JSON value, which may span lines (pretty-printed or concatenated values); `<Event`
//! starts a Windows event in XML; Zeek `#separator`/`#fields` headers switch to Zeek TSV rows
//! until `#close`; any other non-blank line is one text record (CEF, LEEF, syslog, PAN-OS CSV).
//! Blank lines are not records.
//!
//! A JSON value still open at the end of input, or one that is broken off by a new top-level
//! object at column 0, is a `truncated` dead letter with its bytes; one that grows past the
//! size cap is a `too_large` dead letter. A Kafka message is framed by [`frame_message`]: one
//! record (which may still be an envelope of several).

use super::json::{scan_string, StringScan};
use super::zeek_tsv::ZeekHeader;
use super::{DecodeError, Limits, Reason};
use crate::record::{Origin, RawRecord, RecordKind};
use std::sync::Arc;

/// A framing result: a record, or bytes that could not be framed and why.
#[derive(Debug)]
pub enum Framed {
    Record(RawRecord),
    Error {
        origin: Origin,
        bytes: Vec<u8>,
        error: DecodeError,
    },
}

#[derive(Debug, Default, PartialEq, Eq)]
struct JsonScan {
    depth: usize,
    in_str: bool,
    esc: bool,
    /// Whether each open container is an object (`true`) or an array.
    objects: Vec<bool>,
    /// Last significant byte outside strings (`"` for a string's end).
    last: u8,
}

impl JsonScan {
    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if self.in_str {
                if self.esc {
                    self.esc = false;
                    i += 1;
                    continue;
                }
                match scan_string(bytes, i) {
                    StringScan::Closed(k) => {
                        self.in_str = false;
                        self.last = b'"';
                        i = k + 1;
                    }
                    StringScan::Open { escaped } => {
                        self.esc = escaped;
                        return;
                    }
                }
                continue;
            }
            let b = bytes[i];
            i += 1;
            match b {
                b'"' => self.in_str = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    // The stack only decides recovery; past 256 levels the record is too deep anyway.
                    if self.objects.len() < 256 {
                        self.objects.push(b == b'{');
                    }
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    self.objects.pop();
                }
                _ => {}
            }
            if !b.is_ascii_whitespace() {
                self.last = b;
            }
        }
    }

    /// Whether a line starting with `{` or `[` cannot continue the open value: inside an
    /// object a value may only follow `:`, so such a line starts a new record.
    fn breaks_on_new_value(&self) -> bool {
        self.depth > 0 && !self.in_str && self.objects.last() == Some(&true) && self.last != b':'
    }
}

enum State {
    Idle,
    Json {
        start: u64,
        buf: Vec<u8>,
        scan: JsonScan,
        oversize: bool,
    },
    Xml {
        start: u64,
        buf: Vec<u8>,
    },
}

/// Line-driven framer for one input (a file or stdin).
pub struct Framer {
    input: Arc<str>,
    limits: Limits,
    line_no: u64,
    state: State,
    zeek_building: ZeekHeader,
    zeek: Option<Arc<ZeekHeader>>,
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

impl Framer {
    pub fn new(input: &str, limits: Limits) -> Framer {
        Framer {
            input: Arc::from(input),
            limits,
            line_no: 0,
            state: State::Idle,
            zeek_building: ZeekHeader::default(),
            zeek: None,
        }
    }

    fn origin(&self, line: u64) -> Origin {
        Origin::File {
            input: self.input.clone(),
            line,
        }
    }

    /// Feed one line (its `\n` or `\r\n` may be present or not).
    pub fn push_line(&mut self, line: &[u8], out: &mut Vec<Framed>) {
        self.line_no += 1;
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => self.start(line, out),
            State::Json {
                start,
                mut buf,
                mut scan,
                oversize,
            } => {
                let head = trim_start(line);
                if matches!(head.first(), Some(b'{') | Some(b'[')) && scan.breaks_on_new_value() {
                    // A new top-level object: the open one was broken off.
                    self.json_error(
                        start,
                        buf,
                        oversize,
                        Reason::Truncated,
                        "JSON value broken off by a new record",
                        out,
                    );
                    return self.start(line, out);
                }
                if head.is_empty() && scan.depth == 0 {
                    return;
                }
                let oversize = oversize || buf.len() + line.len() > self.limits.max_record_bytes;
                if !oversize || buf.len() < 4 * self.limits.max_record_bytes {
                    buf.push(b'\n');
                    buf.extend_from_slice(line);
                }
                scan.feed(line);
                self.after_json_line(start, buf, scan, oversize, out);
            }
            State::Xml { start, mut buf } => {
                buf.push(b'\n');
                buf.extend_from_slice(line);
                self.after_xml_line(start, buf, out);
            }
        }
    }

    fn start(&mut self, line: &[u8], out: &mut Vec<Framed>) {
        let head = trim_start(line);
        let start = self.line_no;
        match head.first() {
            None => {}
            Some(b'{') | Some(b'[') => {
                let mut scan = JsonScan::default();
                scan.feed(line);
                let oversize = line.len() > self.limits.max_record_bytes;
                self.after_json_line(start, line.to_vec(), scan, oversize, out);
            }
            Some(b'<') if is_xml_start(head) => {
                if head.starts_with(b"<?xml")
                    || head.starts_with(b"<Events")
                    || head.starts_with(b"</Events")
                {
                    // Prolog and wrapper of an XML event export; each <Event> inside is a record.
                    if let Some(pos) = find(head, b"<Event ").or_else(|| find(head, b"<Event>")) {
                        return self.start(&head[pos..], out);
                    }
                    return;
                }
                self.after_xml_line(start, line.to_vec(), out);
            }
            Some(b'#') if self.zeek_directive(head) => {}
            Some(_) => {
                let kind = match &self.zeek {
                    Some(h) => RecordKind::ZeekTsv(h.clone()),
                    None => RecordKind::Text,
                };
                out.push(Framed::Record(RawRecord {
                    bytes: line.to_vec(),
                    origin: self.origin(start),
                    kind,
                }));
            }
        }
    }

    fn zeek_directive(&mut self, head: &[u8]) -> bool {
        let Ok(text) = std::str::from_utf8(head) else {
            return false;
        };
        if text.starts_with("#separator") {
            self.zeek_building = ZeekHeader::default();
        }
        if !self.zeek_building.apply_directive(text) {
            return false;
        }
        if text.starts_with("#close") {
            self.zeek = None;
            self.zeek_building = ZeekHeader::default();
        } else if self.zeek_building.is_ready() {
            self.zeek = Some(Arc::new(self.zeek_building.clone()));
        }
        true
    }

    fn after_json_line(
        &mut self,
        start: u64,
        buf: Vec<u8>,
        scan: JsonScan,
        oversize: bool,
        out: &mut Vec<Framed>,
    ) {
        if scan.in_str {
            // JSON strings cannot hold a raw line break: this record is broken.
            return self.json_error(
                start,
                buf,
                oversize,
                Reason::InvalidJson,
                "line break inside a JSON string",
                out,
            );
        }
        if scan.depth > 0 {
            self.state = State::Json {
                start,
                buf,
                scan,
                oversize,
            };
            return;
        }
        if oversize {
            return self.json_error(start, buf, oversize, Reason::TooLarge, "", out);
        }
        out.push(Framed::Record(RawRecord {
            bytes: buf,
            origin: self.origin(start),
            kind: RecordKind::Json,
        }));
    }

    fn json_error(
        &self,
        start: u64,
        bytes: Vec<u8>,
        oversize: bool,
        reason: Reason,
        msg: &str,
        out: &mut Vec<Framed>,
    ) {
        let error = if oversize {
            DecodeError::new(
                Reason::TooLarge,
                format!(
                    "record is over the {} byte limit",
                    self.limits.max_record_bytes
                ),
            )
        } else {
            DecodeError::new(reason, msg)
        };
        out.push(Framed::Error {
            origin: self.origin(start),
            bytes,
            error,
        });
    }

    fn after_xml_line(&mut self, start: u64, buf: Vec<u8>, out: &mut Vec<Framed>) {
        if let Some(end) = find(&buf, b"</Event>") {
            let end = end + b"</Event>".len();
            let mut buf = buf;
            buf.truncate(end);
            out.push(Framed::Record(RawRecord {
                bytes: buf,
                origin: self.origin(start),
                kind: RecordKind::Xml,
            }));
        } else if buf.len() > self.limits.max_record_bytes {
            out.push(Framed::Error {
                origin: self.origin(start),
                bytes: buf,
                error: DecodeError::new(Reason::TooLarge, "XML event over the size limit"),
            });
        } else {
            self.state = State::Xml { start, buf };
        }
    }

    /// End of input: whatever is still open is a truncated record.
    pub fn finish(&mut self, out: &mut Vec<Framed>) {
        match std::mem::replace(&mut self.state, State::Idle) {
            State::Idle => {}
            State::Json {
                start,
                buf,
                oversize,
                ..
            } => self.json_error(
                start,
                buf,
                oversize,
                Reason::Truncated,
                "input ended inside a JSON value",
                out,
            ),
            State::Xml { start, buf } => out.push(Framed::Error {
                origin: self.origin(start),
                bytes: buf,
                error: DecodeError::new(Reason::Truncated, "input ended inside an XML event"),
            }),
        }
    }
}

/// XML starts with a prolog or an Event element; `<134>Mar 14 ...` is a syslog priority.
fn is_xml_start(head: &[u8]) -> bool {
    head.starts_with(b"<?xml") || head.starts_with(b"<Event") || head.starts_with(b"</Events")
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    memchr::memmem::find(hay, needle)
}

/// Frame one Kafka message: one record, whose kind is read from its first non-blank byte. A
/// message that starts with a Zeek `#separator` or `#fields` header is a block of TSV rows.
pub fn frame_message(bytes: &[u8], origin: Origin) -> RawRecord {
    let head = trim_start(bytes);
    let kind = match head.first() {
        Some(b'{') | Some(b'[') => RecordKind::Json,
        Some(b'<') if is_xml_start(head) => RecordKind::Xml,
        Some(b'#') if head.starts_with(b"#separator") || head.starts_with(b"#fields") => {
            RecordKind::ZeekBlock
        }
        _ => RecordKind::Text,
    };
    let mut end = bytes.len();
    while end > 0 && matches!(bytes[end - 1], b'\n' | b'\r') {
        end -= 1;
    }
    RawRecord {
        bytes: bytes[..end].to_vec(),
        origin,
        kind,
    }
}

/// Frame a whole in-memory input (tests, benchmarks).
pub fn frame_all(input: &str, data: &[u8], limits: Limits) -> Vec<Framed> {
    let mut f = Framer::new(input, limits);
    let mut out = Vec::new();
    for line in data.split_inclusive(|b| *b == b'\n') {
        f.push_line(line, &mut out);
    }
    f.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(data: &str) -> Vec<String> {
        frame_all(
            "t",
            data.as_bytes(),
            Limits {
                max_record_bytes: 200,
                max_depth: 8,
            },
        )
        .into_iter()
        .map(|f| match f {
            Framed::Record(r) => {
                let Origin::File { line, .. } = r.origin else {
                    unreachable!()
                };
                format!(
                    "{line}:{:?}:{}",
                    r.kind,
                    String::from_utf8_lossy(&r.bytes).replace('\n', "⏎")
                )
            }
            Framed::Error {
                origin: Origin::File { line, .. },
                error,
                ..
            } => format!("{line}:ERR:{}", error.reason),
            Framed::Error { .. } => unreachable!(),
        })
        .collect()
    }

    #[test]
    fn ndjson_and_multiline_json() {
        let got =
            summary("{\"a\":1}\r\n\n{\n  \"b\": {\"c\": \"}\"}\n}\n[{\"x\":1},\n{\"y\":2}]\n");
        assert_eq!(
            got,
            vec![
                "1:Json:{\"a\":1}",
                "3:Json:{⏎  \"b\": {\"c\": \"}\"}⏎}",
                "6:Json:[{\"x\":1},⏎{\"y\":2}]"
            ]
        );
    }

    #[test]
    fn broken_json_is_recovered_at_the_next_record() {
        let got = summary("{\"R\": [\n{\"x\":1},\n{\"y\":\n{\"z\":2}}]}\n");
        assert_eq!(
            got,
            vec!["1:Json:{\"R\": [⏎{\"x\":1},⏎{\"y\":⏎{\"z\":2}}]}"],
            "legal layouts are never broken off"
        );
        let got = summary("{\"a\": 1,\n{\"b\":2}\n{\"c\": \"open string\n{\"d\":4}\n{\"e\": [1,\n");
        assert_eq!(
            got,
            vec![
                "1:ERR:truncated",
                "2:Json:{\"b\":2}",
                "3:ERR:invalid_json",
                "4:Json:{\"d\":4}",
                "5:ERR:truncated"
            ]
        );
    }

    #[test]
    fn oversize_records_are_dead_lettered_whole() {
        let big = format!("{{\"a\":\"{}\"}}\n{{\"ok\":1}}\n", "x".repeat(300));
        let got = summary(&big);
        assert_eq!(got[0], "1:ERR:too_large");
        assert_eq!(got[1], "2:Json:{\"ok\":1}");
        let big = format!(
            "{{\n\"a\":\"{}\",\n\"b\":\"{}\"\n}}\n{{\"ok\":1}}\n",
            "x".repeat(150),
            "y".repeat(150)
        );
        let got = summary(&big);
        assert_eq!(got, vec!["1:ERR:too_large", "5:Json:{\"ok\":1}"]);
    }

    #[test]
    fn text_and_xml() {
        let got = summary("<134>Mar 14 09:20:11 fw01 app[1]: hello\nCEF:0|a|b|1|2|n|5|src=1.2.3.4\n<?xml version=\"1.0\"?>\n<Events>\n<Event xmlns='x'><System/>\n</Event>\n</Events>\n");
        assert_eq!(
            got,
            vec![
                "1:Text:<134>Mar 14 09:20:11 fw01 app[1]: hello",
                "2:Text:CEF:0|a|b|1|2|n|5|src=1.2.3.4",
                "5:Xml:<Event xmlns='x'><System/>⏎</Event>"
            ]
        );
    }

    #[test]
    fn kafka_messages_are_one_record() {
        let o = Origin::Kafka {
            topic: "t".into(),
            partition: 0,
            offset: 1,
        };
        assert_eq!(
            frame_message(b"  {\"a\":1}\n", o.clone()).kind,
            RecordKind::Json
        );
        assert_eq!(frame_message(b"<Event/>", o.clone()).kind, RecordKind::Xml);
        assert_eq!(
            frame_message(b"<13>1 2026-01-01T00:00:00Z h a - - - x", o.clone()).kind,
            RecordKind::Text
        );
        let r = frame_message(b"CEF:0|x\r\n", o);
        assert_eq!((r.kind, r.bytes), (RecordKind::Text, b"CEF:0|x".to_vec()));
    }

    #[test]
    fn the_json_scan_state_does_not_depend_on_where_lines_are_cut() {
        let text = br#"{"a":"x\\\"{[","b":[1,{"c":"\\"}],"d":"q\"
  more"} "#;
        let mut whole = JsonScan::default();
        whole.feed(text);
        assert_eq!((whole.depth, whole.in_str, whole.last), (0, false, b'}'));
        for cut in 0..text.len() {
            let mut parts = JsonScan::default();
            parts.feed(&text[..cut]);
            parts.feed(&text[cut..]);
            assert_eq!(parts, whole, "cut at {cut}");
        }
        let mut open = JsonScan::default();
        open.feed(br#"{"a":["b\"#);
        assert_eq!((open.depth, open.in_str, open.esc), (2, true, true));
    }
}
