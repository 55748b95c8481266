//! Palo Alto Networks PAN-OS syslog CSV (the default, non-CEF log format), TRAFFIC and THREAT.
//!
//! Fields are named as PAN-OS documents them for syslog (`receive_time`, `serial`, `type`,
//! `subtype`, `time_generated`, `src`, `dst`, ..., `bytes`, ... for TRAFFIC; `misc`,
//! `threatid`, `severity`, ... for THREAT), in the PAN-OS 8.x–11.x field order; newer
//! releases only append fields. Fields past the known ones are kept as `field_<index>`
//! (0-based CSV column), as are all fields after `time_generated` for the other log types
//! (SYSTEM, CONFIG, ...). `FUTURE_USE` columns and empty fields are left out. Values stay
//! strings, borrowed from the input unless a quoted field held a doubled quote.
//!
//! CSV: fields may be double-quoted (commas inside, `""` for a quote); an unterminated quote
//! is `invalid_csv`.

use super::{DecodeError, Object, Reason, Value};
use std::borrow::Cow;

/// Log types that PAN-OS writes in the 4th CSV column.
const LOG_TYPES: [&str; 15] = [
    "TRAFFIC",
    "THREAT",
    "SYSTEM",
    "CONFIG",
    "HIPMATCH",
    "GLOBALPROTECT",
    "USERID",
    "DECRYPTION",
    "AUTHENTICATION",
    "TUNNEL",
    "IPTAG",
    "CORRELATION",
    "SCTP",
    "GTP",
    "AUDIT",
];

/// Marks a FUTURE_USE column: not output.
const FU: &str = "";

/// Columns 0..=30, shared by TRAFFIC and THREAT (0..=6 by every log type).
const COMMON: [&str; 31] = [
    FU,
    "receive_time",
    "serial",
    "type",
    "subtype",
    FU,
    "time_generated",
    "src",
    "dst",
    "natsrc",
    "natdst",
    "rule",
    "srcuser",
    "dstuser",
    "app",
    "vsys",
    "from",
    "to",
    "inbound_if",
    "outbound_if",
    "log_action",
    FU,
    "sessionid",
    "repeatcnt",
    "sport",
    "dport",
    "natsport",
    "natdport",
    "flags",
    "proto",
    "action",
];

/// TRAFFIC columns from 31 on.
const TRAFFIC: [&str; 84] = [
    "bytes",
    "bytes_sent",
    "bytes_received",
    "packets",
    "start",
    "elapsed",
    "category",
    FU,
    "seqno",
    "actionflags",
    "srcloc",
    "dstloc",
    FU,
    "pkts_sent",
    "pkts_received",
    "session_end_reason",
    "dg_hier_level_1",
    "dg_hier_level_2",
    "dg_hier_level_3",
    "dg_hier_level_4",
    "vsys_name",
    "device_name",
    "action_source",
    "src_uuid",
    "dst_uuid",
    "tunnelid",
    "monitortag",
    "parent_session_id",
    "parent_start_time",
    "tunnel",
    "assoc_id",
    "chunks",
    "chunks_sent",
    "chunks_received",
    "rule_uuid",
    "http2_connection",
    "link_change_count",
    "policy_id",
    "link_switches",
    "sdwan_cluster",
    "sdwan_device_type",
    "sdwan_cluster_type",
    "sdwan_site",
    "dynusergroup_name",
    "xff_ip",
    "src_category",
    "src_profile",
    "src_model",
    "src_vendor",
    "src_osfamily",
    "src_osversion",
    "src_host",
    "src_mac",
    "dst_category",
    "dst_profile",
    "dst_model",
    "dst_vendor",
    "dst_osfamily",
    "dst_osversion",
    "dst_host",
    "dst_mac",
    "container_id",
    "pod_namespace",
    "pod_name",
    "src_edl",
    "dst_edl",
    "hostid",
    "serialnumber",
    "src_dag",
    "dst_dag",
    "session_owner",
    "high_res_timestamp",
    "nssai_sst",
    "nssai_sd",
    "subcategory_of_app",
    "category_of_app",
    "technology_of_app",
    "risk_of_app",
    "characteristic_of_app",
    "container_of_app",
    "tunneled_app",
    "is_saas_of_app",
    "sanctioned_state_of_app",
    "offloaded",
];

/// THREAT columns from 31 on.
const THREAT: [&str; 89] = [
    "misc",
    "threatid",
    "category",
    "severity",
    "direction",
    "seqno",
    "actionflags",
    "srcloc",
    "dstloc",
    FU,
    "contenttype",
    "pcap_id",
    "filedigest",
    "cloud",
    "url_idx",
    "user_agent",
    "filetype",
    "xff",
    "referer",
    "sender",
    "subject",
    "recipient",
    "reportid",
    "dg_hier_level_1",
    "dg_hier_level_2",
    "dg_hier_level_3",
    "dg_hier_level_4",
    "vsys_name",
    "device_name",
    FU,
    "src_uuid",
    "dst_uuid",
    "http_method",
    "tunnelid",
    "monitortag",
    "parent_session_id",
    "parent_start_time",
    "tunnel",
    "thr_category",
    "contentver",
    FU,
    "assoc_id",
    "ppid",
    "http_headers",
    "url_category_list",
    "rule_uuid",
    "http2_connection",
    "dynusergroup_name",
    "xff_ip",
    "src_category",
    "src_profile",
    "src_model",
    "src_vendor",
    "src_osfamily",
    "src_osversion",
    "src_host",
    "src_mac",
    "dst_category",
    "dst_profile",
    "dst_model",
    "dst_vendor",
    "dst_osfamily",
    "dst_osversion",
    "dst_host",
    "dst_mac",
    "container_id",
    "pod_namespace",
    "pod_name",
    "src_edl",
    "dst_edl",
    "hostid",
    "serialnumber",
    "domain_edl",
    "src_dag",
    "dst_dag",
    "partial_hash",
    "high_res_timestamp",
    "reason",
    "justification",
    "nssai_sst",
    "subcategory_of_app",
    "category_of_app",
    "technology_of_app",
    "risk_of_app",
    "characteristic_of_app",
    "container_of_app",
    "tunneled_app",
    "is_saas_of_app",
    "sanctioned_state_of_app",
];

fn err(message: impl Into<String>) -> DecodeError {
    DecodeError::new(Reason::InvalidCsv, message)
}

/// Is this body a PAN-OS syslog CSV record? (The 4th column is a PAN-OS log type and the
/// 2nd, the receive time, starts with a digit.)
pub fn looks_like_pan(body: &str) -> bool {
    let mut cols = body.trim_start().splitn(6, ',');
    let (Some(_), Some(recv), Some(_serial), Some(kind), Some(_), Some(_)) = (
        cols.next(),
        cols.next(),
        cols.next(),
        cols.next(),
        cols.next(),
        cols.next(),
    ) else {
        return false;
    };
    recv.starts_with(|c: char| c.is_ascii_digit()) && LOG_TYPES.contains(&kind)
}

/// Split one CSV line. Quoted fields may hold commas and `""`; a quote inside an unquoted
/// field, or one not followed by a comma, is kept as a character.
pub fn split_csv(line: &str) -> Result<Vec<Cow<'_, str>>, DecodeError> {
    let b = line.as_bytes();
    let mut out = Vec::with_capacity(64);
    let mut i = 0;
    loop {
        if b.get(i) == Some(&b'"') {
            // Quoted field.
            let start = i + 1;
            let mut j = start;
            let mut owned: Option<String> = None;
            let mut seg = start;
            loop {
                match b.get(j) {
                    None => return Err(err(format!("unterminated quote in column {}", out.len()))),
                    Some(b'"') if b.get(j + 1) == Some(&b'"') => {
                        let o = owned.get_or_insert_with(String::new);
                        o.push_str(line.get(seg..j).unwrap_or(""));
                        o.push('"');
                        j += 2;
                        seg = j;
                    }
                    Some(b'"') if matches!(b.get(j + 1), None | Some(b',')) => break,
                    Some(_) => j += 1,
                }
            }
            let field = match owned {
                Some(mut o) => {
                    o.push_str(line.get(seg..j).unwrap_or(""));
                    Cow::Owned(o)
                }
                None => Cow::Borrowed(line.get(start..j).unwrap_or("")),
            };
            out.push(field);
            i = j + 1; // at ',' or end
        } else {
            let end = memchr::memchr(b',', b.get(i..).unwrap_or(&[])).map_or(b.len(), |p| i + p);
            out.push(Cow::Borrowed(line.get(i..end).unwrap_or("")));
            i = end;
        }
        if i >= b.len() {
            break;
        }
        // b[i] is ','.
        i += 1;
        if i == b.len() {
            out.push(Cow::Borrowed(""));
            break;
        }
    }
    Ok(out)
}

/// The field name of a column for a log type, `None` for FUTURE_USE columns.
fn column_name(kind: &str, idx: usize) -> Option<Cow<'static, str>> {
    let named = match (kind, idx) {
        (_, 0..=6) => COMMON.get(idx).copied(),
        ("TRAFFIC" | "THREAT", 7..=30) => COMMON.get(idx).copied(),
        ("TRAFFIC", _) => idx.checked_sub(31).and_then(|i| TRAFFIC.get(i)).copied(),
        ("THREAT", _) => idx.checked_sub(31).and_then(|i| THREAT.get(i)).copied(),
        _ => None,
    };
    match named {
        Some(FU) => None,
        Some(name) => Some(Cow::Borrowed(name)),
        None => Some(Cow::Owned(format!("field_{idx}"))),
    }
}

/// Parse a PAN-OS CSV record into named fields.
pub fn parse(body: &str) -> Result<Object<'_>, DecodeError> {
    let body = body.trim_start().trim_end_matches(['\r', '\n']);
    let cols = split_csv(body)?;
    if cols.len() < 7 {
        return Err(err(format!(
            "PAN-OS record has {} columns, at least 7 expected",
            cols.len()
        )));
    }
    let kind: String = cols.get(3).map(|c| c.to_string()).unwrap_or_default();
    let mut obj = Object::with_capacity_and_hasher(cols.len(), Default::default());
    for (idx, val) in cols.into_iter().enumerate() {
        if val.is_empty() {
            continue;
        }
        if let Some(name) = column_name(&kind, idx) {
            obj.insert(name, Value::String(val));
        }
    }
    Ok(obj)
}

#[cfg(test)]
mod tests {
    use super::*;
    use simd_json::prelude::*;

    fn get<'o>(o: &'o Object<'_>, k: &str) -> Option<&'o str> {
        o.get(k).and_then(|v| v.as_str())
    }

    // PAN-OS 10.1 TRAFFIC end log, 115 columns.
    const TRAFFIC_END: &str = "1,2024/03/11 09:15:42,013201004567,TRAFFIC,end,2562,2024/03/11 09:15:41,10.20.30.41,93.184.216.34,198.51.100.7,93.184.216.34,Allow-Web-Out,corp\\mlopez,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-to-SIEM,2024/03/11 09:15:41,884213,1,53122,443,41877,443,0x40001c,tcp,allow,18344,2311,16033,41,2024/03/11 09:14:58,38,computer-and-internet-info,,7312451190023,0x8000000000000000,10.0.0.0-10.255.255.255,United States,,19,22,tcp-fin,0,0,0,0,,PA-3220-DC1,from-policy,,,0,,0,,N/A,0,0,0,0,5b1e77a2-0c3d-4e5f-9a41-6d2f7b0c9e11,0,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,2024-03-11T09:15:42.117+01:00,,,encrypted-tunnel,networking,browser-based,4,\"used-by-malware,able-to-transfer-file\",,ssl,no,no,0";

    // PAN-OS 9.1 TRAFFIC deny log, fewer columns.
    const TRAFFIC_DENY: &str = "1,2021/07/02 23:01:07,007051000113358,TRAFFIC,deny,2304,2021/07/02 23:01:07,185.220.101.5,203.0.113.20,0.0.0.0,0.0.0.0,Block-Inbound,,,not-applicable,vsys1,untrust,dmz,ethernet1/1,,default,2021/07/02 23:01:07,0,1,44112,3389,0,0,0x0,tcp,deny,74,74,0,1,2021/07/02 23:01:07,0,any,0,1209332,0x0,DE,203.0.113.0-203.0.113.255,0,1,0,policy-deny,0,0,0,0,,fw-edge-01,from-policy,,,0,,0,,N/A,0,0,0,0,,0";

    // PAN-OS 10.2 THREAT vulnerability log with a quoted threat name and URL.
    const THREAT_VULN: &str = "1,2024/02/20 14:02:11,013201004567,THREAT,vulnerability,2562,2024/02/20 14:02:10,45.155.205.233,10.20.5.17,45.155.205.233,192.0.2.80,Inbound-Web,,,web-browsing,vsys1,untrust,dmz,ethernet1/1,ethernet1/3,Forward-to-SIEM,2024/02/20 14:02:10,1102933,1,51544,80,0,8080,0x2000,tcp,reset-both,\"/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id>/tmp/x)\",TP-Link Archer AX21 Command Injection Vulnerability(92960),any,critical,client-to-server,7290011,0x8000000000000000,Netherlands,10.0.0.0-10.255.255.255,,,0,,,0,\"Mozilla/5.0 (compatible, scanner)\",,,,,,,0,0,0,0,0,,PA-3220-DC1,,,,get,0,,0,,N/A,code-execution,8795-8509,0x0,0,4294967295,,\"any,unknown\",c0ffee00-1111-2222-3333-444455556666,0,,,,,,,,,,,,,,,,,,,,,,,,,,,,,,2024-02-20T14:02:11.004+01:00,,,,,,,,,,,,";

    // PAN-OS 10.1 THREAT url log (subtype url), quote inside a quoted field.
    const THREAT_URL: &str = "1,2024/01/09 08:30:00,013201004567,THREAT,url,2561,2024/01/09 08:29:59,10.20.30.77,104.18.32.7,198.51.100.7,104.18.32.7,Allow-Web-Out,corp\\jdoe,,web-browsing,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Forward-to-SIEM,2024/01/09 08:29:59,993100,1,60211,80,22011,80,0x40b000,tcp,block-url,\"free-games.example/play?\"\"x\"\"=1\",(9999),gambling,informational,client-to-server,7290112,0x8000000000000000,10.0.0.0-10.255.255.255,United States,,text/html,0,,,1,\"Mozilla/5.0 (Windows NT 10.0; Win64; x64)\",,,,,,,0,0,0,0,0,,PA-3220-DC1,,,,get";

    #[test]
    fn detects_pan_records() {
        assert!(looks_like_pan(TRAFFIC_END));
        assert!(looks_like_pan(TRAFFIC_DENY));
        assert!(looks_like_pan(THREAT_VULN));
        assert!(looks_like_pan(THREAT_URL));
        assert!(looks_like_pan(
            "1,2024/01/09 08:30:00,0132,SYSTEM,general,0,2024/01/09 08:30:00,,eventid"
        ));
        assert!(!looks_like_pan("a,b,c,d,e,f,g"));
        assert!(!looks_like_pan("1,2024/01/09,x,TRAFFIC"));
        assert!(!looks_like_pan("CEF:0|a|b|c|d|e|f|"));
        assert!(!looks_like_pan(""));
    }

    #[test]
    fn traffic_end_pan_os_10() {
        let o = parse(TRAFFIC_END).unwrap();
        assert_eq!(get(&o, "receive_time"), Some("2024/03/11 09:15:42"));
        assert_eq!(get(&o, "serial"), Some("013201004567"));
        assert_eq!(get(&o, "type"), Some("TRAFFIC"));
        assert_eq!(get(&o, "subtype"), Some("end"));
        assert_eq!(get(&o, "time_generated"), Some("2024/03/11 09:15:41"));
        assert_eq!(get(&o, "src"), Some("10.20.30.41"));
        assert_eq!(get(&o, "dst"), Some("93.184.216.34"));
        assert_eq!(get(&o, "natsrc"), Some("198.51.100.7"));
        assert_eq!(get(&o, "rule"), Some("Allow-Web-Out"));
        assert_eq!(get(&o, "srcuser"), Some("corp\\mlopez"));
        assert!(o.get("dstuser").is_none());
        assert_eq!(get(&o, "app"), Some("ssl"));
        assert_eq!(get(&o, "from"), Some("trust"));
        assert_eq!(get(&o, "to"), Some("untrust"));
        assert_eq!(get(&o, "log_action"), Some("Forward-to-SIEM"));
        assert_eq!(get(&o, "sessionid"), Some("884213"));
        assert_eq!(get(&o, "sport"), Some("53122"));
        assert_eq!(get(&o, "dport"), Some("443"));
        assert_eq!(get(&o, "proto"), Some("tcp"));
        assert_eq!(get(&o, "action"), Some("allow"));
        assert_eq!(get(&o, "bytes"), Some("18344"));
        assert_eq!(get(&o, "bytes_sent"), Some("2311"));
        assert_eq!(get(&o, "bytes_received"), Some("16033"));
        assert_eq!(get(&o, "packets"), Some("41"));
        assert_eq!(get(&o, "start"), Some("2024/03/11 09:14:58"));
        assert_eq!(get(&o, "elapsed"), Some("38"));
        assert_eq!(get(&o, "category"), Some("computer-and-internet-info"));
        assert_eq!(get(&o, "dstloc"), Some("United States"));
        assert_eq!(get(&o, "pkts_sent"), Some("19"));
        assert_eq!(get(&o, "pkts_received"), Some("22"));
        assert_eq!(get(&o, "session_end_reason"), Some("tcp-fin"));
        assert_eq!(get(&o, "device_name"), Some("PA-3220-DC1"));
        assert_eq!(
            get(&o, "rule_uuid"),
            Some("5b1e77a2-0c3d-4e5f-9a41-6d2f7b0c9e11")
        );
        assert_eq!(
            get(&o, "high_res_timestamp"),
            Some("2024-03-11T09:15:42.117+01:00")
        );
        assert_eq!(get(&o, "risk_of_app"), Some("4"));
        assert_eq!(
            get(&o, "characteristic_of_app"),
            Some("used-by-malware,able-to-transfer-file")
        );
        assert_eq!(get(&o, "tunneled_app"), Some("ssl"));
        assert_eq!(get(&o, "offloaded"), Some("0"));
        // FUTURE_USE columns are not output; nothing past the known columns here.
        assert!(o.keys().all(|k| !k.starts_with("field_")));
        assert!(matches!(
            o.get("src"),
            Some(Value::String(Cow::Borrowed(_)))
        ));
    }

    #[test]
    fn traffic_deny_pan_os_9() {
        let o = parse(TRAFFIC_DENY).unwrap();
        assert_eq!(get(&o, "subtype"), Some("deny"));
        assert_eq!(get(&o, "app"), Some("not-applicable"));
        assert_eq!(get(&o, "dport"), Some("3389"));
        assert_eq!(get(&o, "action"), Some("deny"));
        assert_eq!(get(&o, "bytes_received"), Some("0"));
        assert_eq!(get(&o, "srcloc"), Some("DE"));
        assert_eq!(get(&o, "session_end_reason"), Some("policy-deny"));
        assert_eq!(get(&o, "device_name"), Some("fw-edge-01"));
        assert!(o.get("outbound_if").is_none());
    }

    #[test]
    fn threat_vulnerability() {
        let o = parse(THREAT_VULN).unwrap();
        assert_eq!(get(&o, "type"), Some("THREAT"));
        assert_eq!(get(&o, "subtype"), Some("vulnerability"));
        assert_eq!(get(&o, "natdport"), Some("8080"));
        assert_eq!(get(&o, "action"), Some("reset-both"));
        assert_eq!(
            get(&o, "misc"),
            Some("/cgi-bin/luci/;stok=/locale?form=country&operation=write&country=$(id>/tmp/x)")
        );
        assert_eq!(
            get(&o, "threatid"),
            Some("TP-Link Archer AX21 Command Injection Vulnerability(92960)")
        );
        assert_eq!(get(&o, "category"), Some("any"));
        assert_eq!(get(&o, "severity"), Some("critical"));
        assert_eq!(get(&o, "direction"), Some("client-to-server"));
        assert_eq!(get(&o, "srcloc"), Some("Netherlands"));
        assert_eq!(
            get(&o, "user_agent"),
            Some("Mozilla/5.0 (compatible, scanner)")
        );
        assert_eq!(get(&o, "device_name"), Some("PA-3220-DC1"));
        assert_eq!(get(&o, "http_method"), Some("get"));
        assert_eq!(get(&o, "thr_category"), Some("code-execution"));
        assert_eq!(get(&o, "ppid"), Some("4294967295"));
        assert_eq!(get(&o, "contentver"), Some("8795-8509"));
        assert_eq!(get(&o, "url_category_list"), Some("any,unknown"));
        assert_eq!(
            get(&o, "rule_uuid"),
            Some("c0ffee00-1111-2222-3333-444455556666")
        );
        assert_eq!(
            get(&o, "high_res_timestamp"),
            Some("2024-02-20T14:02:11.004+01:00")
        );
    }

    #[test]
    fn threat_url_with_doubled_quotes() {
        let o = parse(THREAT_URL).unwrap();
        assert_eq!(get(&o, "subtype"), Some("url"));
        assert_eq!(get(&o, "misc"), Some("free-games.example/play?\"x\"=1"));
        assert!(matches!(o.get("misc"), Some(Value::String(Cow::Owned(_)))));
        assert_eq!(get(&o, "threatid"), Some("(9999)"));
        assert_eq!(get(&o, "category"), Some("gambling"));
        assert_eq!(get(&o, "severity"), Some("informational"));
        assert_eq!(get(&o, "contenttype"), Some("text/html"));
        assert_eq!(get(&o, "url_idx"), Some("1"));
        assert_eq!(get(&o, "srcuser"), Some("corp\\jdoe"));
        assert_eq!(
            get(&o, "user_agent"),
            Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)")
        );
        assert_eq!(get(&o, "device_name"), Some("PA-3220-DC1"));
        assert_eq!(get(&o, "http_method"), Some("get"));
    }

    #[test]
    fn trailing_and_other_types_use_field_index() {
        let mut line = String::from(TRAFFIC_END);
        line.push_str(",extra1,,extra3");
        let o = parse(&line).unwrap();
        assert_eq!(get(&o, "field_115"), Some("extra1"));
        assert!(o.get("field_116").is_none());
        assert_eq!(get(&o, "field_117"), Some("extra3"));

        let o = parse("1,2024/01/09 08:30:00,0132,SYSTEM,general,0,2024/01/09 08:30:01,,general,,0,0,general,informational,\"User admin logged in, via Web\",123").unwrap();
        assert_eq!(get(&o, "type"), Some("SYSTEM"));
        assert_eq!(get(&o, "time_generated"), Some("2024/01/09 08:30:01"));
        assert_eq!(get(&o, "field_14"), Some("User admin logged in, via Web"));
        assert!(o.get("src").is_none());
    }

    #[test]
    fn csv_edge_cases() {
        let cols = split_csv("a,\"b,c\",,\"\",\"d\"\"e\",f\"g,").unwrap();
        let cols: Vec<&str> = cols.iter().map(|c| c.as_ref()).collect();
        assert_eq!(cols, vec!["a", "b,c", "", "", "d\"e", "f\"g", ""]);
        let cols = split_csv("").unwrap();
        assert_eq!(cols.len(), 1);
        let cols = split_csv("\"a\"b\",c").unwrap();
        assert_eq!(cols.first().map(|c| c.as_ref()), Some("a\"b"));
        assert_eq!(
            split_csv("a,\"unterminated").unwrap_err().reason,
            Reason::InvalidCsv
        );
        assert_eq!(split_csv("\"").unwrap_err().reason, Reason::InvalidCsv);
    }

    #[test]
    fn invalid_records() {
        assert_eq!(parse("1,2,3").unwrap_err().reason, Reason::InvalidCsv);
        assert_eq!(
            parse("1,2024/01/09 08:30:00,0132,TRAFFIC,end,0,\"open")
                .unwrap_err()
                .reason,
            Reason::InvalidCsv
        );
        for s in [
            "",
            ",",
            "\"\"\"",
            ",,,,,,,,",
            "é,é,é,TRAFFIC,é,é,é,\"é\"\"é\"",
        ] {
            let _ = parse(s);
        }
    }
}
