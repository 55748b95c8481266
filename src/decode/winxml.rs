//! Windows event XML: one `<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">`
//! element as `wevtutil qe /f:xml`, `Get-WinEvent ... .ToXml()` or Windows Event Forwarding
//! write it.
//!
//! The element tree becomes nested objects: an element's attributes and child elements are
//! its keys, and an element with neither is its text (`<Channel>Security</Channel>` →
//! `"Security"`); text beside attributes or children is kept under `#text`; a child name
//! that repeats becomes an array. On top of that generic rule:
//!
//! * `System.EventID` is an integer (its `Qualifiers` attribute, if any, goes to
//!   `System.Qualifiers`);
//! * `EventData` is `{Name: value}` from `<Data Name="X">value</Data>`; `Data` elements
//!   without a name go, in order, into the array `EventData.Data`;
//! * `System`, `EventData`, `UserData` and `RenderingInfo` are always objects, even empty;
//! * namespace declarations (`xmlns`, `xmlns:*`) are dropped and element names lose their
//!   prefix.
//!
//! Strings borrow from the input unless an entity had to be unescaped. Nesting deeper than
//! `max_depth` elements is `too_deep`; malformed XML or a root other than `Event` is
//! `invalid_xml`.

use super::{DecodeError, Object, Reason, Value};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use simd_json::StaticNode;
use std::borrow::Cow;

fn invalid(message: impl Into<String>) -> DecodeError {
    DecodeError::new(Reason::InvalidXml, message)
}

/// Elements that are always objects.
const CONTAINERS: [&str; 4] = ["System", "EventData", "UserData", "RenderingInfo"];

/// Re-borrow `part`, a slice of `src`'s bytes, as a `&'a str` of `src`; `None` if it is not
/// one (quick-xml handed out a copy) or does not fall on character boundaries.
fn reborrow<'a>(src: &'a str, part: &[u8]) -> Option<&'a str> {
    let start = (part.as_ptr() as usize).checked_sub(src.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    src.get(start..end)
}

/// Bytes of the input as a string with the input's lifetime, copied if need be.
fn text_of<'a>(src: &'a str, part: &[u8]) -> Result<Cow<'a, str>, DecodeError> {
    match reborrow(src, part) {
        Some(s) => Ok(Cow::Borrowed(s)),
        None => std::str::from_utf8(part)
            .map(|s| Cow::Owned(s.to_string()))
            .map_err(|e| invalid(e.to_string())),
    }
}

struct Frame<'a> {
    name: Cow<'a, str>,
    /// `Name` attribute of a `Data` element.
    data_name: Option<Cow<'a, str>>,
    /// `Qualifiers` attribute of an `EventID` element.
    qualifiers: Option<Cow<'a, str>>,
    obj: Object<'a>,
    has_attrs: bool,
    has_children: bool,
    text: Option<Cow<'a, str>>,
}

impl<'a> Frame<'a> {
    fn push_text(&mut self, t: Cow<'a, str>) {
        self.text = Some(match self.text.take() {
            None => t,
            Some(prev) => Cow::Owned(format!("{prev}{t}")),
        });
    }
}

fn open_frame<'a>(
    src: &'a str,
    e: &BytesStart<'_>,
    parent: Option<&Frame<'a>>,
) -> Result<Frame<'a>, DecodeError> {
    let name = text_of(src, e.local_name().into_inner())?;
    let in_event_data = parent.is_some_and(|p| p.name == "EventData");
    let mut frame = Frame {
        name,
        data_name: None,
        qualifiers: None,
        obj: Object::default(),
        has_attrs: false,
        has_children: false,
        text: None,
    };
    for attr in e.attributes() {
        let attr = attr.map_err(|e| invalid(e.to_string()))?;
        let key = attr.key.as_ref();
        if key == b"xmlns" || key.starts_with(b"xmlns:") {
            continue;
        }
        let value: Cow<'a, str> = if attr.value.contains(&b'&') {
            Cow::Owned(
                attr.unescape_value()
                    .map_err(|e| invalid(e.to_string()))?
                    .into_owned(),
            )
        } else {
            text_of(src, &attr.value)?
        };
        if in_event_data && frame.name == "Data" && key == b"Name" {
            frame.data_name = Some(value);
            continue;
        }
        if frame.name == "EventID" && key == b"Qualifiers" {
            frame.qualifiers = Some(value);
            continue;
        }
        frame.has_attrs = true;
        frame.obj.insert(text_of(src, key)?, Value::String(value));
    }
    Ok(frame)
}

/// Insert `val` under `key`; a repeated key turns into an array.
fn insert_child<'a>(obj: &mut Object<'a>, key: Cow<'a, str>, val: Value<'a>) {
    match obj.get_mut(&key) {
        Some(Value::Array(items)) => items.push(val),
        Some(existing) => {
            let first = std::mem::replace(existing, Value::Static(StaticNode::Null));
            *existing = Value::Array(Box::new(vec![first, val]));
        }
        None => {
            obj.insert(key, val);
        }
    }
}

/// Close `frame` and attach it to `parent` (or return it as the root's value).
fn close_frame<'a>(frame: Frame<'a>, parent: Option<&mut Frame<'a>>) -> Option<Value<'a>> {
    let Frame {
        name,
        data_name,
        qualifiers,
        mut obj,
        has_attrs,
        has_children,
        text,
    } = frame;
    let text_value = || Value::String(text.clone().unwrap_or(Cow::Borrowed("")));

    let Some(parent) = parent else {
        if let Some(t) = text.as_ref().filter(|t| !t.trim().is_empty()) {
            obj.insert(Cow::Borrowed("#text"), Value::String(t.clone()));
        }
        return Some(Value::Object(Box::new(obj)));
    };
    parent.has_children = true;

    if parent.name == "EventData" && name == "Data" {
        match data_name {
            Some(n) => {
                parent.obj.insert(n, text_value());
            }
            None => match parent.obj.get_mut("Data") {
                Some(Value::Array(items)) => items.push(text_value()),
                _ => {
                    parent.obj.insert(
                        Cow::Borrowed("Data"),
                        Value::Array(Box::new(vec![text_value()])),
                    );
                }
            },
        }
        return None;
    }

    if parent.name == "System" && name == "EventID" {
        let raw = text.as_deref().unwrap_or("").trim();
        let val = match raw.parse::<i64>() {
            Ok(n) => Value::Static(StaticNode::I64(n)),
            Err(_) => text_value(),
        };
        insert_child(&mut parent.obj, name, val);
        if let Some(q) = qualifiers {
            parent
                .obj
                .insert(Cow::Borrowed("Qualifiers"), Value::String(q));
        }
        return None;
    }

    let val = if has_attrs || has_children || CONTAINERS.contains(&name.as_ref()) {
        if let Some(t) = text.as_ref().filter(|t| !t.trim().is_empty()) {
            obj.insert(Cow::Borrowed("#text"), Value::String(t.clone()));
        }
        if let Some(q) = qualifiers {
            obj.insert(Cow::Borrowed("Qualifiers"), Value::String(q));
        }
        Value::Object(Box::new(obj))
    } else {
        text_value()
    };
    insert_child(&mut parent.obj, name, val);
    None
}

/// Parse one `<Event>` element (an XML prolog and comments before it are allowed; anything
/// after its end tag is ignored).
pub fn parse_event(xml: &str, max_depth: usize) -> Result<Value<'_>, DecodeError> {
    let mut reader = Reader::from_str(xml);
    {
        let config = reader.config_mut();
        config.trim_text(false);
        config.expand_empty_elements = false;
        config.check_end_names = true;
    }
    let mut stack: Vec<Frame<'_>> = Vec::new();
    let mut root_seen = false;
    loop {
        let pos = reader.buffer_position();
        let event = reader
            .read_event()
            .map_err(|e| invalid(format!("at byte {pos}: {e}")))?;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                if stack.is_empty() {
                    if root_seen {
                        return Err(invalid("more than one root element"));
                    }
                    root_seen = true;
                    if e.local_name().as_ref() != b"Event" {
                        let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                        return Err(invalid(format!("root element is <{name}>, not <Event>")));
                    }
                }
                if stack.len() >= max_depth {
                    return Err(DecodeError::new(
                        Reason::TooDeep,
                        format!("XML nesting deeper than {max_depth}"),
                    ));
                }
                let frame = open_frame(xml, e, stack.last())?;
                if matches!(event, Event::Empty(_)) {
                    if let Some(root) = close_frame(frame, stack.last_mut()) {
                        return Ok(root);
                    }
                } else {
                    stack.push(frame);
                }
            }
            Event::End(_) => {
                let frame = stack.pop().ok_or_else(|| invalid("unexpected end tag"))?;
                if let Some(root) = close_frame(frame, stack.last_mut()) {
                    return Ok(root);
                }
            }
            Event::Text(t) => {
                let text = match t.unescape() {
                    Ok(s) => s,
                    Err(e) => return Err(invalid(format!("at byte {pos}: {e}"))),
                };
                match stack.last_mut() {
                    Some(frame) => frame.push_text(text),
                    None if text.trim().is_empty() => {}
                    None => return Err(invalid("text outside the root element")),
                }
            }
            Event::CData(c) => {
                let inner = c.into_inner();
                let text = text_of(xml, &inner)?;
                match stack.last_mut() {
                    Some(frame) => frame.push_text(text),
                    None => return Err(invalid("CDATA outside the root element")),
                }
            }
            Event::Eof => {
                return Err(invalid(if root_seen {
                    "input ended inside <Event>"
                } else {
                    "no <Event> element"
                }));
            }
            Event::Comment(_) | Event::Decl(_) | Event::PI(_) | Event::DocType(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn get<'v>(v: &'v Value<'_>, path: &[&str]) -> Option<&'v Value<'v>> {
        let mut cur = v;
        for k in path {
            cur = cur.as_object()?.get(*k)?;
        }
        Some(cur)
    }

    fn s<'v>(v: &'v Value<'_>, path: &[&str]) -> Option<&'v str> {
        get(v, path)?.as_str()
    }

    const LOGON_4624: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
  <System>
    <Provider Name="Microsoft-Windows-Security-Auditing" Guid="{54849625-5478-4994-a5ba-3e3b0328c30d}" />
    <EventID>4624</EventID>
    <Version>2</Version>
    <Level>0</Level>
    <Task>12544</Task>
    <Opcode>0</Opcode>
    <Keywords>0x8020000000000000</Keywords>
    <TimeCreated SystemTime="2024-03-12T08:41:17.5532291Z" />
    <EventRecordID>1187345</EventRecordID>
    <Correlation ActivityID="{a1b2c3d4-0001-0002-0003-00000000abcd}" />
    <Execution ProcessID="748" ThreadID="3312" />
    <Channel>Security</Channel>
    <Computer>WS-FIN-022.corp.example.com</Computer>
    <Security />
  </System>
  <EventData>
    <Data Name="SubjectUserSid">S-1-5-18</Data>
    <Data Name="SubjectUserName">WS-FIN-022$</Data>
    <Data Name="SubjectDomainName">CORP</Data>
    <Data Name="SubjectLogonId">0x3e7</Data>
    <Data Name="TargetUserSid">S-1-5-21-1004336348-1177238915-682003330-1512</Data>
    <Data Name="TargetUserName">m.garcia</Data>
    <Data Name="TargetDomainName">CORP</Data>
    <Data Name="TargetLogonId">0x9a1f2c4</Data>
    <Data Name="LogonType">10</Data>
    <Data Name="LogonProcessName">User32 </Data>
    <Data Name="AuthenticationPackageName">Negotiate</Data>
    <Data Name="WorkstationName">WS-FIN-022</Data>
    <Data Name="LogonGuid">{00000000-0000-0000-0000-000000000000}</Data>
    <Data Name="TransmittedServices">-</Data>
    <Data Name="LmPackageName">-</Data>
    <Data Name="KeyLength">0</Data>
    <Data Name="ProcessId">0x2f4</Data>
    <Data Name="ProcessName">C:\Windows\System32\svchost.exe</Data>
    <Data Name="IpAddress">198.51.100.77</Data>
    <Data Name="IpPort">0</Data>
    <Data Name="ImpersonationLevel">%%1833</Data>
    <Data Name="RestrictedAdminMode">%%1843</Data>
    <Data Name="TargetOutboundUserName">-</Data>
    <Data Name="TargetOutboundDomainName">-</Data>
    <Data Name="VirtualAccount">%%1843</Data>
    <Data Name="TargetLinkedLogonId">0x0</Data>
    <Data Name="ElevatedToken">%%1842</Data>
  </EventData>
  <RenderingInfo Culture="en-US">
    <Message>An account was successfully logged on.&#13;

Subject:&#13;
	Security ID:		SYSTEM</Message>
    <Level>Information</Level>
    <Task>Logon</Task>
    <Opcode>Info</Opcode>
    <Channel>Security</Channel>
    <Provider>Microsoft Windows security auditing.</Provider>
    <Keywords>
      <Keyword>Audit Success</Keyword>
    </Keywords>
  </RenderingInfo>
</Event>"#;

    const PROCESS_4688: &str = r#"<Event xmlns='http://schemas.microsoft.com/win/2004/08/events/event'><System><Provider Name='Microsoft-Windows-Security-Auditing' Guid='{54849625-5478-4994-a5ba-3e3b0328c30d}'/><EventID>4688</EventID><Version>2</Version><Level>0</Level><Task>13312</Task><Opcode>0</Opcode><Keywords>0x8020000000000000</Keywords><TimeCreated SystemTime='2024-03-12T09:02:44.1189023Z'/><EventRecordID>1187911</EventRecordID><Correlation/><Execution ProcessID='4' ThreadID='9120'/><Channel>Security</Channel><Computer>WS-FIN-022.corp.example.com</Computer><Security/></System><EventData><Data Name='SubjectUserSid'>S-1-5-21-1004336348-1177238915-682003330-1512</Data><Data Name='SubjectUserName'>m.garcia</Data><Data Name='SubjectDomainName'>CORP</Data><Data Name='SubjectLogonId'>0x9a1f2c4</Data><Data Name='NewProcessId'>0x1d3c</Data><Data Name='NewProcessName'>C:\Windows\System32\cmd.exe</Data><Data Name='TokenElevationType'>%%1938</Data><Data Name='ProcessId'>0x2a10</Data><Data Name='CommandLine'>cmd.exe /c "whoami /priv &amp;&amp; net group &quot;Domain Admins&quot; /domain &gt; C:\Users\Public\o.txt"</Data><Data Name='TargetUserSid'>S-1-0-0</Data><Data Name='TargetUserName'>-</Data><Data Name='TargetDomainName'>-</Data><Data Name='TargetLogonId'>0x0</Data><Data Name='ParentProcessName'>C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE</Data><Data Name='MandatoryLabel'>S-1-16-8192</Data></EventData></Event>"#;

    const SYSMON_1: &str = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event">
<System><Provider Name="Microsoft-Windows-Sysmon" Guid="{5770385f-c22a-43e0-bf4c-06f5698ffbd9}"/><EventID>1</EventID><Version>5</Version><Level>4</Level><Task>1</Task><Opcode>0</Opcode><Keywords>0x8000000000000000</Keywords><TimeCreated SystemTime="2024-03-12T09:02:44.1203377Z"/><EventRecordID>50231</EventRecordID><Correlation/><Execution ProcessID="3044" ThreadID="4180"/><Channel>Microsoft-Windows-Sysmon/Operational</Channel><Computer>WS-FIN-022.corp.example.com</Computer><Security UserID="S-1-5-18"/></System>
<EventData>
<Data Name="RuleName">technique_id=T1059.003,technique_name=Windows Command Shell</Data>
<Data Name="UtcTime">2024-03-12 09:02:44.118</Data>
<Data Name="ProcessGuid">{8c1d7a2e-1a54-65f0-5c03-000000001f00}</Data>
<Data Name="ProcessId">7484</Data>
<Data Name="Image">C:\Windows\System32\cmd.exe</Data>
<Data Name="FileVersion">10.0.19041.3636 (WinBuild.160101.0800)</Data>
<Data Name="Description">Windows Command Processor</Data>
<Data Name="Product">Microsoft® Windows® Operating System</Data>
<Data Name="Company">Microsoft Corporation</Data>
<Data Name="OriginalFileName">Cmd.Exe</Data>
<Data Name="CommandLine">cmd.exe /c "whoami /priv"</Data>
<Data Name="CurrentDirectory">C:\Users\m.garcia\Documents\</Data>
<Data Name="User">CORP\m.garcia</Data>
<Data Name="LogonGuid">{8c1d7a2e-0b11-65f0-c4f2-a10900000000}</Data>
<Data Name="LogonId">0x9a1f2c4</Data>
<Data Name="TerminalSessionId">1</Data>
<Data Name="IntegrityLevel">Medium</Data>
<Data Name="Hashes">SHA256=B99D114B267FFD068C3289199B6DF95A9F9E64872D6C2B666D63974BBCE75BF2,IMPHASH=272245E2988E1E430500B852C4FB5E18</Data>
<Data Name="ParentProcessGuid">{8c1d7a2e-1a40-65f0-4f03-000000001f00}</Data>
<Data Name="ParentProcessId">10768</Data>
<Data Name="ParentImage">C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE</Data>
<Data Name="ParentCommandLine">"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE" /n "C:\Users\m.garcia\Downloads\invoice_0312.docm"</Data>
<Data Name="ParentUser">CORP\m.garcia</Data>
</EventData>
</Event>"#;

    #[test]
    fn logon_4624() {
        let v = parse_event(LOGON_4624, 64).unwrap();
        assert_eq!(
            s(&v, &["System", "Provider", "Name"]),
            Some("Microsoft-Windows-Security-Auditing")
        );
        assert_eq!(
            s(&v, &["System", "Provider", "Guid"]),
            Some("{54849625-5478-4994-a5ba-3e3b0328c30d}")
        );
        assert_eq!(
            get(&v, &["System", "EventID"]).and_then(|x| x.as_i64()),
            Some(4624)
        );
        assert_eq!(s(&v, &["System", "Version"]), Some("2"));
        assert_eq!(s(&v, &["System", "Level"]), Some("0"));
        assert_eq!(s(&v, &["System", "Task"]), Some("12544"));
        assert_eq!(s(&v, &["System", "Keywords"]), Some("0x8020000000000000"));
        assert_eq!(
            s(&v, &["System", "TimeCreated", "SystemTime"]),
            Some("2024-03-12T08:41:17.5532291Z")
        );
        assert_eq!(s(&v, &["System", "EventRecordID"]), Some("1187345"));
        assert_eq!(
            s(&v, &["System", "Correlation", "ActivityID"]),
            Some("{a1b2c3d4-0001-0002-0003-00000000abcd}")
        );
        assert_eq!(s(&v, &["System", "Execution", "ProcessID"]), Some("748"));
        assert_eq!(s(&v, &["System", "Execution", "ThreadID"]), Some("3312"));
        assert_eq!(s(&v, &["System", "Channel"]), Some("Security"));
        assert_eq!(
            s(&v, &["System", "Computer"]),
            Some("WS-FIN-022.corp.example.com")
        );
        assert_eq!(s(&v, &["System", "Security"]), Some(""));
        assert_eq!(s(&v, &["EventData", "TargetUserName"]), Some("m.garcia"));
        assert_eq!(s(&v, &["EventData", "LogonType"]), Some("10"));
        // Data values are kept exactly, trailing space included.
        assert_eq!(s(&v, &["EventData", "LogonProcessName"]), Some("User32 "));
        assert_eq!(
            s(&v, &["EventData", "ProcessName"]),
            Some("C:\\Windows\\System32\\svchost.exe")
        );
        assert_eq!(s(&v, &["EventData", "IpAddress"]), Some("198.51.100.77"));
        assert_eq!(
            get(&v, &["EventData"])
                .and_then(|e| e.as_object())
                .map(|o| o.len()),
            Some(27)
        );
        assert_eq!(s(&v, &["RenderingInfo", "Culture"]), Some("en-US"));
        assert_eq!(s(&v, &["RenderingInfo", "Task"]), Some("Logon"));
        assert_eq!(
            s(&v, &["RenderingInfo", "Keywords", "Keyword"]),
            Some("Audit Success")
        );
        let msg = s(&v, &["RenderingInfo", "Message"]).unwrap();
        assert!(msg
            .starts_with("An account was successfully logged on.\r\n\nSubject:\r\n\tSecurity ID:"));
        // Borrowed where nothing was unescaped.
        let data = get(&v, &["EventData", "TargetUserName"]).unwrap();
        assert!(matches!(data, Value::String(Cow::Borrowed(_))));
        let name = get(&v, &["System", "Provider", "Name"]).unwrap();
        assert!(matches!(name, Value::String(Cow::Borrowed(_))));
    }

    #[test]
    fn process_creation_4688_with_entities() {
        let v = parse_event(PROCESS_4688, 64).unwrap();
        assert_eq!(
            get(&v, &["System", "EventID"]).and_then(|x| x.as_i64()),
            Some(4688)
        );
        assert_eq!(s(&v, &["System", "Correlation"]), Some(""));
        assert_eq!(
            s(&v, &["EventData", "CommandLine"]),
            Some(
                r#"cmd.exe /c "whoami /priv && net group "Domain Admins" /domain > C:\Users\Public\o.txt""#
            )
        );
        assert_eq!(
            s(&v, &["EventData", "NewProcessName"]),
            Some("C:\\Windows\\System32\\cmd.exe")
        );
        assert_eq!(
            s(&v, &["EventData", "ParentProcessName"]),
            Some("C:\\Program Files\\Microsoft Office\\root\\Office16\\WINWORD.EXE")
        );
        assert_eq!(s(&v, &["EventData", "TokenElevationType"]), Some("%%1938"));
        assert!(get(&v, &["RenderingInfo"]).is_none());
    }

    #[test]
    fn sysmon_event_1() {
        let v = parse_event(SYSMON_1, 64).unwrap();
        assert_eq!(
            get(&v, &["System", "EventID"]).and_then(|x| x.as_i64()),
            Some(1)
        );
        assert_eq!(
            s(&v, &["System", "Channel"]),
            Some("Microsoft-Windows-Sysmon/Operational")
        );
        assert_eq!(s(&v, &["System", "Security", "UserID"]), Some("S-1-5-18"));
        assert_eq!(
            s(&v, &["EventData", "Image"]),
            Some("C:\\Windows\\System32\\cmd.exe")
        );
        assert_eq!(
            s(&v, &["EventData", "Product"]),
            Some("Microsoft® Windows® Operating System")
        );
        assert_eq!(
            s(&v, &["EventData", "CommandLine"]),
            Some("cmd.exe /c \"whoami /priv\"")
        );
        assert_eq!(s(&v, &["EventData", "ParentProcessId"]), Some("10768"));
        assert!(s(&v, &["EventData", "Hashes"])
            .unwrap()
            .starts_with("SHA256=B99D"));
        assert_eq!(
            get(&v, &["EventData"])
                .and_then(|e| e.as_object())
                .map(|o| o.len()),
            Some(23)
        );
    }

    #[test]
    fn unnamed_data_user_data_and_qualifiers() {
        let xml = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><Provider Name="Service Control Manager" EventSourceName="Service Control Manager"/><EventID Qualifiers="16384">7036</EventID><Channel>System</Channel></System><EventData><Data>Windows Update</Data><Data>running</Data><Data/><Binary>770075006100</Binary></EventData></Event>"#;
        let v = parse_event(xml, 64).unwrap();
        assert_eq!(
            get(&v, &["System", "EventID"]).and_then(|x| x.as_i64()),
            Some(7036)
        );
        assert_eq!(s(&v, &["System", "Qualifiers"]), Some("16384"));
        let data: Vec<&str> = get(&v, &["EventData", "Data"])
            .and_then(|d| d.as_array())
            .unwrap()
            .iter()
            .filter_map(|x| x.as_str())
            .collect();
        assert_eq!(data, vec!["Windows Update", "running", ""]);
        assert_eq!(s(&v, &["EventData", "Binary"]), Some("770075006100"));

        let xml = r#"<Event xmlns="http://schemas.microsoft.com/win/2004/08/events/event"><System><EventID>1102</EventID></System><UserData><LogFileCleared xmlns="http://manifests.microsoft.com/win/2004/08/windows/eventlog"><SubjectUserSid>S-1-5-21-1-2-3-500</SubjectUserSid><SubjectUserName>admin</SubjectUserName><Item>a</Item><Item>b</Item></LogFileCleared></UserData><EventData/></Event>"#;
        let v = parse_event(xml, 64).unwrap();
        assert_eq!(
            s(&v, &["UserData", "LogFileCleared", "SubjectUserName"]),
            Some("admin")
        );
        assert!(get(&v, &["UserData", "LogFileCleared", "xmlns"]).is_none());
        assert_eq!(
            get(&v, &["UserData", "LogFileCleared", "Item"])
                .and_then(|x| x.as_array())
                .map(|a| a.len()),
            Some(2)
        );
        assert_eq!(
            get(&v, &["EventData"])
                .and_then(|x| x.as_object())
                .map(|o| o.len()),
            Some(0)
        );
    }

    #[test]
    fn cdata_and_prefixed_names() {
        let xml = r#"<!-- exported --><e:Event xmlns:e="http://schemas.microsoft.com/win/2004/08/events/event"><e:System><e:EventID>4104</e:EventID></e:System><e:EventData><e:Data Name="ScriptBlockText"><![CDATA[Write-Host "<hi>" & exit]]></e:Data></e:EventData></e:Event>"#;
        let v = parse_event(xml, 64).unwrap();
        assert_eq!(
            get(&v, &["System", "EventID"]).and_then(|x| x.as_i64()),
            Some(4104)
        );
        assert_eq!(
            s(&v, &["EventData", "ScriptBlockText"]),
            Some("Write-Host \"<hi>\" & exit")
        );
    }

    #[test]
    fn depth_limit() {
        let xml = "<Event><UserData><A><B><C>x</C></B></A></UserData></Event>";
        assert!(parse_event(xml, 5).is_ok());
        assert_eq!(parse_event(xml, 4).unwrap_err().reason, Reason::TooDeep);
        assert_eq!(
            parse_event("<Event/>", 0).unwrap_err().reason,
            Reason::TooDeep
        );
        let deep = format!(
            "<Event>{}{}</Event>",
            "<a>".repeat(10_000),
            "</a>".repeat(10_000)
        );
        assert_eq!(parse_event(&deep, 64).unwrap_err().reason, Reason::TooDeep);
    }

    #[test]
    fn mutated_events_never_panic() {
        let seed = r#"<Event xmlns="x"><System><Provider Name="P" Guid="{1}"/><EventID Qualifiers="1">4624</EventID><Security UserID="S-1"/></System><EventData><Data Name="A">a &amp; b</Data><Data>u</Data><Data/></EventData><UserData><X xmlns="y"><Y>1</Y><Y>2</Y></X></UserData><RenderingInfo Culture="en"><Message>m&#13;<![CDATA[<c>]]></Message></RenderingInfo></Event>"#;
        for xml in crate::decode::text::mutate::mutants(seed, 3000) {
            let _ = parse_event(&xml, 6);
        }
    }

    #[test]
    fn malformed_xml() {
        for bad in [
            "",
            "   ",
            "not xml",
            "<Events><Event/></Events>",
            "<Event><System></Event>",
            "<Event><System>",
            "<Event>",
            "</Event>",
            "<Event><Data Name=\"a\" Name=\"b\">x</Data></Event>",
            "<Event><Data Name=noquotes>x</Data></Event>",
            "junk<Event/>",
            "<Event>&bogus;</Event>",
            "<Event><System><EventID>1</EventID></System></Event",
        ] {
            let e = parse_event(bad, 64).unwrap_err();
            assert_eq!(e.reason, Reason::InvalidXml, "{bad:?}: {e}");
        }
        // Trailing content after the root is ignored.
        assert!(parse_event("<Event/><Event/>", 64).is_ok());
        assert!(parse_event("<?xml version=\"1.0\"?>\n<Event/>\n", 64).is_ok());
    }
}
