//! User enricher: matches the users an alert names against an identity-directory export and
//! attaches the user's record — display name, department, title, manager, privileged, status,
//! groups — as a `user` [`Entity`].
//!
//! Directory columns: `user_id` (required), `sam_account_name`, `upn`, `email`, `sid`,
//! `display_name`, `department`, `title`, `manager`, `privileged` (`true/false/yes/no/1/0`,
//! empty = false), `status` (`enabled`, `disabled`, `locked`, ...; lowercased), `groups`
//! (`;`-separated) and `domain` (the NetBIOS domain, e.g. `CORP`).
//!
//! A value is matched by its shape, case-insensitively (`matched_by`):
//! - `S-1-…`: the `sid` column (`sid`);
//! - `DOMAIN\name`: `sam_account_name` within that domain, the domain being the NetBIOS
//!   `domain` or the UPN suffix (`domain_sam`); a name in another domain never falls back to
//!   a bare-name match;
//! - `name@suffix`: `upn`, then `email` (`email` first for attributes ending in `email_addr`);
//! - a bare name: `sam_account_name` (`sam`), then `user_id` (`uid`) — `user_id` first for
//!   attributes ending in `.uid`. A bare name held by accounts in two domains matches nothing;
//! - with a `domain_attributes` pairing, a bare name whose paired domain attribute is present
//!   is looked up as `DOMAIN\name` only.
//!
//! Built-in and machine identities are skipped without a miss: `-`, `SYSTEM`, `LOCAL SERVICE`,
//! `NETWORK SERVICE`, `ANONYMOUS LOGON`, `DWM-n`/`UMFD-n`, anything in the `NT AUTHORITY`,
//! `Window Manager` or `Font Driver Host` domains, accounts ending in `$`, and the SIDs
//! S-1-5-18/19/20, S-1-5-7 and S-1-0-0.
//!
//! An unmatched user is a `user_unknown` miss only when the directory should know it: a bare
//! name, a `DOMAIN\name` or `name@suffix` in one of the directory's domains, or a SID in one
//! of the directory's domain SIDs. External senders and other machines' local accounts are
//! not gaps.

use super::definition::UserDefinition;
use super::keyindex::KeyIndex;
use super::table::{for_each_row, row_error, split_list, Claims, Row};
use super::{attribute_paths, present, EnrichOutput, Enricher, Entity, Miss};
use crate::path::{AlertView, JPath};
use serde_json::{Map, Value};
use std::borrow::Cow;
use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;

/// The directory in memory, indexed for every spelling of a user.
pub struct UserEnricher {
    name: Arc<str>,
    version: String,
    attributes: Vec<JPath>,
    /// (user attribute, the attribute holding its domain), from `domain_attributes`.
    domain_attributes: Vec<(String, JPath)>,
    contexts: Vec<super::CompactContext>,
    by_uid: KeyIndex,
    by_sid: KeyIndex,
    by_upn: KeyIndex,
    by_email: KeyIndex,
    by_domain_sam: KeyIndex,
    /// Bare names; ambiguous when accounts in different domains share one.
    by_sam: KeyIndex,
    /// NetBIOS domains and UPN/e-mail suffixes, lowercased.
    domains: BTreeSet<String>,
    /// Domain SIDs (`s-1-5-21-a-b-c`, lowercased) of the directory's accounts.
    sid_domains: BTreeSet<String>,
    /// The records matched most recently, parsed.
    recent: super::ContextCache,
}

/// A successful lookup: which directory record, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UserMatch {
    pub index: usize,
    pub matched_by: &'static str,
}

/// What a lookup concluded about one value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup {
    Found(UserMatch),
    /// Not in the directory, and the directory should know it: a gap.
    Unknown,
    /// Not in the directory, and not the directory's business (foreign domain, external
    /// address) — no gap.
    Foreign,
    /// A bare name several accounts (in different domains) share: no single record, and not
    /// a gap either.
    Ambiguous,
    /// A built-in or machine identity: not looked up.
    Skipped,
}

const SKIP_NAMES: &[&str] = &[
    "-",
    "n/a",
    "system",
    "local service",
    "localservice",
    "network service",
    "networkservice",
    "anonymous logon",
];
const SKIP_DOMAINS: &[&str] = &["nt authority", "window manager", "font driver host"];
const SKIP_SIDS: &[&str] = &["s-1-5-18", "s-1-5-19", "s-1-5-20", "s-1-5-7", "s-1-0-0"];

/// Whether a user value names a built-in or machine identity that is not looked up.
pub fn is_builtin(value: &str) -> bool {
    let v = value.trim();
    // The lists are ASCII, and ASCII text lower-cases byte by byte: compared without a
    // lower-cased copy (about 540 instructions a lookup with the copy). Other text is
    // lower-cased first, since some characters lower-case to ASCII (the Kelvin sign to `k`).
    if !v.is_ascii() {
        return builtin_lowercase(&v.to_lowercase());
    }
    builtin_lowercase(v)
}

/// Whether `list` (lower-case ASCII) holds `s`, which is lower-case or ASCII.
fn one_of(list: &[&str], s: &str) -> bool {
    list.iter().any(|x| x.eq_ignore_ascii_case(s))
}

/// Whether a domain names built-in identities (`NT AUTHORITY`), whatever its case: without a
/// lower-cased copy for ASCII text, as [`is_builtin`] compares.
fn is_skipped_domain(domain: &str) -> bool {
    if domain.is_ascii() {
        one_of(SKIP_DOMAINS, domain)
    } else {
        one_of(SKIP_DOMAINS, &domain.to_lowercase())
    }
}

/// [`is_builtin`] for text that is lower-case or ASCII.
fn builtin_lowercase(v: &str) -> bool {
    if v.is_empty() || one_of(SKIP_SIDS, v) {
        return true;
    }
    let name = match v.split_once('\\') {
        Some((domain, name)) => {
            if one_of(SKIP_DOMAINS, domain) {
                return true;
            }
            name
        }
        None => v.split_once('@').map_or(v, |(local, _)| local),
    };
    name.is_empty()
        || one_of(SKIP_NAMES, name)
        || name.ends_with('$')
        || is_virtual_session_account(name)
}

/// `DWM-3`, `UMFD-0`: per-session Desktop Window Manager and font-driver accounts.
fn is_virtual_session_account(name: &str) -> bool {
    ["dwm-", "umfd-"].iter().any(|p| {
        name.get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p))
            && name.len() > p.len()
            && name.as_bytes()[p.len()..].iter().all(u8::is_ascii_digit)
    })
}

fn parse_bool(text: &str) -> Option<bool> {
    match text.to_ascii_lowercase().as_str() {
        "" | "false" | "no" | "0" | "n" => Some(false),
        "true" | "yes" | "1" | "y" => Some(true),
        _ => None,
    }
}

/// `s-1-5-21-a-b-c` for a domain account SID `S-1-5-21-a-b-c-rid`.
fn sid_domain(sid: &str) -> Option<String> {
    let sid = sid.to_ascii_lowercase();
    let (domain, rid) = sid.rsplit_once('-')?;
    (domain.starts_with("s-1-5-21-") && rid.bytes().all(|b| b.is_ascii_digit()))
        .then(|| domain.to_string())
}

impl UserEnricher {
    /// Load the directory a definition names; `base` is the definition's directory. Returns
    /// the enricher and warnings about rows that lost a duplicate key.
    pub fn open(def: &UserDefinition, base: &Path) -> anyhow::Result<(UserEnricher, Vec<String>)> {
        let path = base.join(&def.path);
        let mut e = UserEnricher {
            name: def.name.as_str().into(),
            version: String::new(),
            attributes: attribute_paths(&def.user_attributes),
            domain_attributes: def
                .domain_attributes
                .iter()
                .map(|(user, domain)| (user.clone(), JPath::new(domain)))
                .collect(),
            contexts: Vec::new(),
            by_uid: KeyIndex::default(),
            by_sid: KeyIndex::default(),
            by_upn: KeyIndex::default(),
            by_email: KeyIndex::default(),
            by_domain_sam: KeyIndex::default(),
            by_sam: KeyIndex::default(),
            domains: BTreeSet::new(),
            sid_domains: BTreeSet::new(),
            recent: super::ContextCache::new(),
        };
        let mut claims = Claims::new("user");
        e.version = for_each_row(&path, def.format, &["user_id"], |row| {
            e.add_row(&path, row, &mut claims)
        })?;
        for ix in [
            &mut e.by_uid,
            &mut e.by_sid,
            &mut e.by_upn,
            &mut e.by_email,
            &mut e.by_domain_sam,
            &mut e.by_sam,
        ] {
            ix.shrink_to_fit();
        }
        e.contexts.shrink_to_fit();
        Ok((e, claims.into_warnings()))
    }

    fn add_row(&mut self, path: &Path, row: &Row, claims: &mut Claims) -> anyhow::Result<()> {
        let id = row.get("user_id").to_string();
        let lower = |col: &str| row.get(col).to_lowercase();
        let (sam, upn, email, sid, domain) = (
            lower("sam_account_name"),
            lower("upn"),
            lower("email"),
            lower("sid"),
            lower("domain"),
        );
        for (col, v) in [("upn", &upn), ("email", &email)] {
            if !v.is_empty() && !v.contains('@') {
                return Err(row_error(path, row, format!("{col} {v:?} has no @")));
            }
        }
        if !sid.is_empty() && !sid.starts_with("s-1-") {
            return Err(row_error(
                path,
                row,
                format!("sid {:?} does not start with S-1-", row.get("sid")),
            ));
        }
        if sam.contains('\\') || sam.contains('@') {
            return Err(row_error(
                path,
                row,
                format!("sam_account_name {sam:?} should be the bare account name"),
            ));
        }
        let privileged = parse_bool(row.get("privileged")).ok_or_else(|| {
            row_error(
                path,
                row,
                format!(
                    "privileged {:?} is not true/false/yes/no/1/0",
                    row.get("privileged")
                ),
            )
        })?;

        let index = claims.add_row(row, &id) as usize;
        let mut claim = |ix: &mut KeyIndex, key: &str, what: &str, shown: &str| {
            let held = ix.insert_first(key, index).err();
            claims.claim(path, row, held, what, &shown)
        };
        claim(&mut self.by_uid, &id.to_lowercase(), "user_id", &id);
        if !sid.is_empty() && claim(&mut self.by_sid, &sid, "sid", &sid) {
            self.sid_domains.extend(sid_domain(&sid));
        }
        if !upn.is_empty() {
            claim(&mut self.by_upn, &upn, "upn", &upn);
        }
        if !email.is_empty() {
            claim(&mut self.by_email, &email, "email", &email);
        }
        let suffix = |addr: &str| addr.split_once('@').map(|(_, s)| s.to_string());
        self.domains
            .extend([suffix(&upn), suffix(&email)].into_iter().flatten());
        if !sam.is_empty() {
            let mut user_domains: Vec<String> = Vec::new();
            if !domain.is_empty() {
                user_domains.push(domain.clone());
            }
            user_domains.extend(suffix(&upn));
            for (n, d) in user_domains.iter().enumerate() {
                let key = format!("{d}\\{sam}");
                if n == 0 {
                    // Only the NetBIOS spelling reports a duplicate.
                    claim(&mut self.by_domain_sam, &key, "account", &key);
                } else {
                    // The UPN-suffix spelling is an alias that silently keeps the first.
                    let _ = self.by_domain_sam.insert_first(&key, index);
                }
            }
            self.domains.extend(user_domains.iter().cloned());
            let _ = self.by_sam.upsert(&sam, index, |slot, new| {
                if *slot != new {
                    *slot = KeyIndex::AMBIGUOUS;
                }
            });
        }

        let mut ctx = Map::new();
        ctx.insert("id".into(), Value::String(id.clone()));
        for col in ["display_name", "department", "title", "manager"] {
            if !row.get(col).is_empty() {
                ctx.insert(col.into(), Value::String(row.get(col).to_string()));
            }
        }
        ctx.insert("privileged".into(), Value::Bool(privileged));
        if !row.get("status").is_empty() {
            ctx.insert(
                "status".into(),
                Value::String(row.get("status").to_lowercase()),
            );
        }
        let groups = split_list(row.get("groups"));
        if !groups.is_empty() {
            ctx.insert(
                "groups".into(),
                Value::Array(groups.into_iter().map(Value::String).collect()),
            );
        }
        self.contexts
            .push(super::CompactContext::new(&Value::Object(ctx)));
        Ok(())
    }

    /// Number of directory rows loaded.
    pub fn len(&self) -> usize {
        self.contexts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contexts.is_empty()
    }

    /// The record of a matched user.
    pub fn context(&self, index: usize) -> Value {
        self.contexts[index].value()
    }

    /// Look up a user value as written in `attribute`, with the paired domain value if any.
    pub fn lookup(&self, attribute: &str, value: &str, domain: Option<&str>) -> Lookup {
        let v = value.trim();
        let domain = domain.map(str::trim).filter(|d| !d.is_empty());
        if is_builtin(v) || domain.is_some_and(is_skipped_domain) {
            return Lookup::Skipped;
        }
        let v = v.to_lowercase();
        let found = |index: usize, matched_by| Lookup::Found(UserMatch { index, matched_by });
        let gap = |known: bool| {
            if known {
                Lookup::Unknown
            } else {
                Lookup::Foreign
            }
        };

        if v.starts_with("s-1-") {
            return match self.by_sid.get(&v) {
                Some(i) => found(i, "sid"),
                None => gap(sid_domain(&v).is_some_and(|d| self.sid_domains.contains(&d))),
            };
        }
        let qualified = match (v.split_once('\\'), domain) {
            (Some((d, name)), _) => Some((d.to_string(), name.to_string())),
            (None, Some(d)) if !v.contains('@') => Some((d.to_lowercase(), v.clone())),
            _ => None,
        };
        if let Some((d, name)) = qualified {
            return match self.by_domain_sam.get(&format!("{d}\\{name}")) {
                Some(i) => found(i, "domain_sam"),
                None => gap(self.domains.contains(&d)),
            };
        }
        if let Some((_, suffix)) = v.split_once('@') {
            let upn = self.by_upn.get(&v).map(|i| (i, "upn"));
            let email = self.by_email.get(&v).map(|i| (i, "email"));
            let hit = if attribute.ends_with("email_addr") {
                email.or(upn)
            } else {
                upn.or(email)
            };
            return match hit {
                Some((i, by)) => found(i, by),
                None => gap(self.domains.contains(suffix)),
            };
        }
        let sam = self.by_sam.get(&v).map(|i| (i, "sam"));
        let uid = self.by_uid.get(&v).map(|i| (i, "uid"));
        let hit = if attribute.ends_with(".uid") || attribute == "uid" {
            uid.or(sam)
        } else {
            sam.or(uid)
        };
        match hit {
            Some((i, by)) => found(i, by),
            None if self.by_sam.contains(&v) => Lookup::Ambiguous,
            None => Lookup::Unknown,
        }
    }
}

/// A user as [`present`] tells repeats apart: the folded, domain-qualified name alone. The
/// domain attribute read for it rides along to the lookup.
struct UserKey<'v> {
    folded: String,
    domain: Option<Cow<'v, str>>,
}

impl PartialEq for UserKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.folded == other.folded
    }
}

impl Enricher for UserEnricher {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "user"
    }

    fn data_version(&self) -> &str {
        &self.version
    }

    fn enrich(&mut self, alert: &AlertView<'_>, out: &mut EnrichOutput) {
        let domain_of = |attr: &str| {
            self.domain_attributes
                .iter()
                .find(|(a, _)| a == attr)
                .and_then(|(_, d)| d.text_in(alert))
        };
        // Once per distinct (domain-qualified, case-folded) user per event.
        let values = present(alert, &self.attributes, |attr, value| {
            let v = value.trim().to_lowercase();
            let domain = domain_of(attr);
            let folded = match &domain {
                Some(d) if !v.contains('\\') && !v.contains('@') && !v.starts_with("s-1-") => {
                    format!("{}\\{v}", d.trim().to_lowercase())
                }
                _ => v,
            };
            Some(UserKey { folded, domain })
        });
        for p in &values {
            match self.lookup(p.attribute, &p.value, p.key.domain.as_deref()) {
                Lookup::Found(m) => out.entities.push(Entity {
                    kind: "user",
                    attribute: p.attribute.clone(),
                    value: p.value.to_string(),
                    matched_by: m.matched_by,
                    enricher: self.name.clone(),
                    context: self.recent.get(m.index, &self.contexts[m.index]),
                }),
                Lookup::Unknown => out.misses.push(Miss {
                    attribute: p.attribute.clone(),
                    value: p.value.to_string(),
                    enricher: self.name.clone(),
                    code: "user_unknown",
                }),
                Lookup::Foreign | Lookup::Ambiguous | Lookup::Skipped => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testutil::{definition_dir, write};
    use serde_json::json;

    const CSV: &str = "\
user_id,sam_account_name,upn,email,sid,display_name,department,title,manager,privileged,status,groups,domain
u-1001,jdoe,jdoe@corp.example.com,john.doe@example.com,S-1-5-21-1111111111-2222222222-3333333333-1104,John Doe,Finance,Analyst,asmith,no,enabled,Finance Users;VPN Users,CORP
u-1002,adm-asmith,adm-asmith@corp.example.com,,S-1-5-21-1111111111-2222222222-3333333333-1105,Alice Smith (admin),IT,Domain Admin,cio,yes,Enabled,Domain Admins,CORP
u-1003,bgone,bgone@corp.example.com,bob.gone@example.com,S-1-5-21-1111111111-2222222222-3333333333-1190,Bob Gone,Sales,Rep,,0,disabled,,CORP
u-2001,svc-backup,svc-backup@lab.example.com,,S-1-5-21-4444444444-5555555555-6666666666-2001,Backup Service,IT,,,1,enabled,Backup Operators,LAB
u-2002,jdoe,jdoe@lab.example.com,,,John Doe (lab),IT,,,false,enabled,,LAB
u-3001,okta-only,,kim@example.com,,Kim,HR,,,,,,
";

    fn enricher() -> UserEnricher {
        let dir = definition_dir();
        write(dir.path(), "users.csv", CSV);
        let def: UserDefinition =
            toml::from_str("name = \"ad\"\nkind = \"user\"\npath = \"users.csv\"\n").unwrap();
        let (e, warnings) = UserEnricher::open(&def, dir.path()).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        e
    }

    fn who(
        e: &UserEnricher,
        attr: &str,
        v: &str,
        domain: Option<&str>,
    ) -> Option<(String, &'static str)> {
        match e.lookup(attr, v, domain) {
            Lookup::Found(m) => Some((
                e.context(m.index)["id"].as_str().unwrap().to_string(),
                m.matched_by,
            )),
            _ => None,
        }
    }

    fn m(id: &str, by: &'static str) -> Option<(String, &'static str)> {
        Some((id.to_string(), by))
    }

    #[test]
    fn every_spelling_of_a_user() {
        let e = enricher();
        assert_eq!(
            who(&e, "user.name", "CORP\\jdoe", None),
            m("u-1001", "domain_sam")
        );
        assert_eq!(
            who(&e, "user.name", "corp\\JDOE", None),
            m("u-1001", "domain_sam")
        );
        assert_eq!(
            who(&e, "user.name", "lab\\jdoe", None),
            m("u-2002", "domain_sam")
        );
        assert_eq!(
            who(&e, "user.name", "corp.example.com\\jdoe", None),
            m("u-1001", "domain_sam")
        );
        assert_eq!(
            who(&e, "user.name", "JDoe@Corp.Example.com", None),
            m("u-1001", "upn")
        );
        assert_eq!(
            who(&e, "user.name", "john.doe@example.com", None),
            m("u-1001", "email")
        );
        assert_eq!(
            who(&e, "user.email_addr", "john.doe@example.com", None),
            m("u-1001", "email")
        );
        assert_eq!(
            who(
                &e,
                "user.uid",
                "s-1-5-21-1111111111-2222222222-3333333333-1104",
                None
            ),
            m("u-1001", "sid")
        );
        assert_eq!(who(&e, "user.name", "adm-asmith", None), m("u-1002", "sam"));
        assert_eq!(who(&e, "user.uid", "U-1003", None), m("u-1003", "uid"));
        assert_eq!(who(&e, "user.name", "u-3001", None), m("u-3001", "uid"));
        assert_eq!(
            who(&e, "user.name", "kim@example.com", None),
            m("u-3001", "email")
        );
        // Bare "jdoe" exists in CORP and LAB: ambiguous; with a paired domain it resolves.
        assert_eq!(who(&e, "user.name", "jdoe", None), None);
        assert_eq!(e.lookup("user.name", "jdoe", None), Lookup::Ambiguous);
        assert_eq!(
            who(&e, "user.name", "jdoe", Some("CORP")),
            m("u-1001", "domain_sam")
        );
        assert_eq!(
            who(&e, "user.name", "jdoe", Some("lab")),
            m("u-2002", "domain_sam")
        );
        // A known name in another domain does not fall back to the bare name.
        assert_eq!(who(&e, "user.name", "WS-0042\\adm-asmith", None), None);
    }

    #[test]
    fn records_carry_the_directory_context() {
        let e = enricher();
        let Lookup::Found(m) = e.lookup("user.name", "CORP\\adm-asmith", None) else {
            panic!()
        };
        assert_eq!(
            e.context(m.index),
            json!({"id": "u-1002", "display_name": "Alice Smith (admin)", "department": "IT", "title": "Domain Admin",
                    "manager": "cio", "privileged": true, "status": "enabled", "groups": ["Domain Admins"]})
        );
        let Lookup::Found(m) = e.lookup("user.name", "bgone", None) else {
            panic!()
        };
        assert_eq!(e.context(m.index)["status"], "disabled");
        assert_eq!(e.context(m.index)["privileged"], false);
        assert!(e.context(m.index).get("groups").is_none());
    }

    #[test]
    fn builtin_and_machine_accounts_are_skipped() {
        let e = enricher();
        for v in [
            "-",
            "SYSTEM",
            "NT AUTHORITY\\SYSTEM",
            "LOCAL SERVICE",
            "NT AUTHORITY\\NETWORK SERVICE",
            "ANONYMOUS LOGON",
            "WS-0042$",
            "CORP\\WS-0042$",
            "ws-0042$@corp.example.com",
            "S-1-5-18",
            "s-1-5-19",
            "S-1-5-20",
            "S-1-0-0",
            "DWM-3",
            "Window Manager\\DWM-1",
            "UMFD-0",
        ] {
            assert_eq!(e.lookup("user.name", v, None), Lookup::Skipped, "{v}");
        }
        assert_eq!(
            e.lookup("user.name", "SYSTEM", Some("NT AUTHORITY")),
            Lookup::Skipped
        );
        assert_eq!(
            e.lookup("user.name", "LocalAdmin", Some("NT AUTHORITY")),
            Lookup::Skipped
        );
        assert!(is_builtin("CORP\\"));
        // The paired domain: the same answers as lower-casing a copy.
        for d in [
            "NT AUTHORITY",
            "nt authority",
            "Window Manager",
            "FONT DRIVER HOST",
            "CORP",
            "nt authorİty",
            "\u{ff2e}T AUTHORITY",
            "",
        ] {
            assert_eq!(
                is_skipped_domain(d),
                SKIP_DOMAINS.contains(&d.to_lowercase().as_str()),
                "{d:?}"
            );
        }
        // The same answers as lower-casing a copy first, which is what it did before.
        let by_copy = |value: &str| {
            let v = value.trim().to_lowercase();
            if v.is_empty() || SKIP_SIDS.contains(&v.as_str()) {
                return true;
            }
            let name = match v.split_once('\\') {
                Some((domain, name)) => {
                    if SKIP_DOMAINS.contains(&domain) {
                        return true;
                    }
                    name
                }
                None => v.split_once('@').map_or(v.as_str(), |(local, _)| local),
            };
            name.is_empty()
                || SKIP_NAMES.contains(&name)
                || name.ends_with('$')
                || ["dwm-", "umfd-"].iter().any(|p| {
                    name.strip_prefix(p)
                        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                })
        };
        for v in [
            "",
            "  ",
            "SYSTEM",
            " system ",
            "Systemd",
            "NT AUTHORITY\\anyone",
            "nt authority\\SYSTEM",
            "Window Manager\\DWM-1",
            "CORP\\SYSTEM",
            "CORP\\",
            "CORP\\alice",
            "S-1-5-18",
            "s-1-5-19",
            "S-1-5-21-1-2-3-500",
            "DWM-3",
            "dwm-",
            "dwm-x",
            "DWM-12a",
            "UMFD-0",
            "umfd-",
            "PC01$",
            "CORP\\PC01$",
            "alice@corp.example.com",
            "SYSTEM@corp",
            "@corp",
            "-",
            "N/A",
            "Local Service",
            "LOCALSERVICE",
            "network service",
            "anonymous logon",
            "NETWOR\u{212A} SERVICE",
            "\u{212A}",
            "DWM-\u{0663}",
            "İ",
            "nt authorİty\\x",
            "ANONYMOUS LOGON@x",
            "a\\b\\c",
            "Ünïcode user",
        ] {
            assert_eq!(is_builtin(v), by_copy(v), "{v:?}");
        }
        assert!(!is_builtin("dwm-x"));
        assert!(!is_builtin("systemd"));
    }

    #[test]
    fn gaps_only_for_what_the_directory_should_know() {
        let e = enricher();
        assert_eq!(e.lookup("user.name", "ghost", None), Lookup::Unknown);
        assert_eq!(e.lookup("user.name", "CORP\\ghost", None), Lookup::Unknown);
        assert_eq!(
            e.lookup("user.name", "ghost@corp.example.com", None),
            Lookup::Unknown
        );
        assert_eq!(
            e.lookup(
                "user.uid",
                "S-1-5-21-1111111111-2222222222-3333333333-9999",
                None
            ),
            Lookup::Unknown
        );
        assert_eq!(
            e.lookup("user.name", "WS-0042\\localadmin", None),
            Lookup::Foreign
        );
        assert_eq!(
            e.lookup("user.email_addr", "attacker@evil.example.net", None),
            Lookup::Foreign
        );
        assert_eq!(
            e.lookup("user.uid", "S-1-5-21-9-9-9-500", None),
            Lookup::Foreign
        );
        assert_eq!(e.lookup("user.uid", "S-1-5-32-544", None), Lookup::Foreign);
    }

    #[test]
    fn enrich_pairs_domains_orders_and_dedups() {
        let mut e = enricher();
        let alert = json!({
            "user": {"name": "jdoe", "domain": "CORP", "uid": "S-1-5-21-1111111111-2222222222-3333333333-1104",
                     "email_addr": "nobody@corp.example.com"},
            "actor": {"user": {"name": "CORP\\JDOE", "uid": "SYSTEM", "email_addr": "x@gmail.example"}},
        });
        let mut out = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut out);
        let got: Vec<(&str, &str, &str)> = out
            .entities
            .iter()
            .map(|x| (&*x.attribute, x.value.as_str(), x.matched_by))
            .collect();
        // actor.user.name is the same user as user.name+user.domain: looked up once.
        assert_eq!(
            got,
            vec![
                ("user.name", "jdoe", "domain_sam"),
                (
                    "user.uid",
                    "S-1-5-21-1111111111-2222222222-3333333333-1104",
                    "sid"
                )
            ]
        );
        assert!(out
            .entities
            .iter()
            .all(|x| x.kind == "user" && &*x.enricher == "ad"));
        let misses: Vec<(&str, &str)> =
            out.misses.iter().map(|x| (&*x.attribute, x.code)).collect();
        assert_eq!(misses, vec![("user.email_addr", "user_unknown")]);
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = definition_dir();
        let def: UserDefinition =
            toml::from_str("name = \"ad\"\nkind = \"user\"\npath = \"u.csv\"\n").unwrap();
        for (csv, want) in [
            (
                "user_id,privileged\nu1,yes\nu2,maybe\n",
                "u.csv:3: privileged \"maybe\"",
            ),
            ("user_id,upn\nu1,jdoe\n", "u.csv:2: upn \"jdoe\" has no @"),
            ("user_id,sid\nu1,1-5-21\n", "u.csv:2: sid"),
            (
                "user_id,sam_account_name\nu1,CORP\\jdoe\n",
                "u.csv:2: sam_account_name",
            ),
            ("sam_account_name\njdoe\n", "u.csv:2: missing user_id"),
        ] {
            write(dir.path(), "u.csv", csv);
            let err = format!("{:#}", UserEnricher::open(&def, dir.path()).err().unwrap());
            assert!(err.contains(want), "{err} does not contain {want}");
        }
        write(
            dir.path(),
            "u.csv",
            "user_id,upn\nu1,a@x.example\nu2,A@X.example\n",
        );
        let (_, warnings) = UserEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0]
                .contains("u.csv:3: upn a@x.example already belongs to user \"u1\" (line 2)"),
            "{warnings:?}"
        );
    }

    #[test]
    fn json_directory() {
        let dir = definition_dir();
        write(
            dir.path(),
            "u.json",
            r#"[{"user_id": "u1", "sam_account_name": "jdoe", "domain": "CORP", "privileged": true, "groups": ["A", "B"]}]"#,
        );
        let def: UserDefinition =
            toml::from_str("name = \"ad\"\nkind = \"user\"\npath = \"u.json\"\n").unwrap();
        let (e, _) = UserEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(
            who(&e, "user.name", "corp\\jdoe", None),
            m("u1", "domain_sam")
        );
        assert_eq!(e.context(0)["groups"], json!(["A", "B"]));
        assert_eq!(e.context(0)["privileged"], true);
    }
}
