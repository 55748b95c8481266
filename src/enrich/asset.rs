//! Asset enricher: matches the IPs and host names an alert names against an asset inventory
//! (a CMDB export) and attaches the asset's record — owner, business unit, criticality,
//! environment, OS, tags — as an `asset` [`Entity`].
//!
//! Inventory columns: `asset_id` (required), `hostname`, `fqdn`, `ip` and `cidr` (several
//! `;`-separated), `owner`, `business_unit`, `criticality`, `environment`, `os`, `tags`
//! (`;`-separated). Every row needs at least one of `ip`, `cidr`, `hostname`, `fqdn`.
//!
//! Matching (`matched_by`):
//! - an IP: exact `ip`, else the longest `cidr` containing it (`cidr`); IPv4-mapped IPv6
//!   addresses match their IPv4 form;
//! - a host name, case-insensitively and without a trailing dot: the asset's `hostname`
//!   (`hostname`) or `fqdn` (`fqdn`); a short name equal to the first label of exactly one
//!   asset's FQDN (`short_name`); an FQDN whose first label is the `hostname` of an asset that
//!   has no FQDN, when its domain is one the inventory uses (`short_name`). An IP written in a
//!   host attribute is matched as an IP.
//!
//! An unmatched value is an `asset_unknown` miss only when the inventory should know it: an IP
//! in internal-use space (RFC 1918, CGNAT, IPv6 unique local), a short host name, or an FQDN
//! in one of the inventory's domains. Public IPs and foreign names are not gaps.
//!
//! When two rows claim the same IP, CIDR, host name or FQDN, the first row keeps it and the
//! load reports a warning; a short name shared by FQDNs in different domains matches nothing.

use super::definition::AssetDefinition;
use super::keyindex::KeyIndex;
use super::table::{for_each_row, row_error, split_list, Claims, Row};
use super::{attribute_paths, ipclass, parse_ip, present, EnrichOutput, Enricher, Entity, Miss};
use crate::path::{AlertView, JPath};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use prefix_trie::PrefixMap;
use rustc_hash::FxHashMap;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

/// The asset inventory in memory, indexed for every way a log names a host.
pub struct AssetEnricher {
    name: Arc<str>,
    version: String,
    ip_attributes: Vec<JPath>,
    host_attributes: Vec<JPath>,
    assets: Vec<Asset>,
    by_ip: FxHashMap<IpAddr, u32>,
    v4: PrefixMap<Ipv4Net, u32>,
    v6: PrefixMap<Ipv6Net, u32>,
    by_hostname: KeyIndex,
    by_fqdn: KeyIndex,
    /// First label of each FQDN; ambiguous when FQDNs in different domains share it.
    by_fqdn_label: KeyIndex,
    /// Domains (FQDN minus first label) the inventory uses.
    domains: BTreeSet<String>,
    /// The records matched most recently, parsed.
    recent: super::ContextCache,
}

struct Asset {
    /// Whether the row has an FQDN (a host name match on `name.domain` needs it not to).
    has_fqdn: bool,
    context: super::CompactContext,
}

/// A successful lookup: which asset, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AssetMatch {
    pub index: usize,
    pub matched_by: &'static str,
}

impl AssetEnricher {
    /// Load the inventory a definition names; `base` is the definition's directory. Returns
    /// the enricher and warnings about rows that lost a duplicate key.
    pub fn open(
        def: &AssetDefinition,
        base: &Path,
    ) -> anyhow::Result<(AssetEnricher, Vec<String>)> {
        let path = base.join(&def.path);
        let mut e = AssetEnricher {
            name: def.name.as_str().into(),
            version: String::new(),
            ip_attributes: attribute_paths(&def.ip_attributes),
            host_attributes: attribute_paths(&def.host_attributes),
            assets: Vec::new(),
            by_ip: FxHashMap::default(),
            v4: PrefixMap::new(),
            v6: PrefixMap::new(),
            by_hostname: KeyIndex::default(),
            by_fqdn: KeyIndex::default(),
            by_fqdn_label: KeyIndex::default(),
            domains: BTreeSet::new(),
            recent: super::ContextCache::new(),
        };
        let mut claims = Claims::new("asset");
        e.version = for_each_row(&path, def.format, &["asset_id"], |row| {
            e.add_row(&path, row, &mut claims)
        })?;
        e.by_ip.shrink_to_fit();
        for ix in [&mut e.by_hostname, &mut e.by_fqdn, &mut e.by_fqdn_label] {
            ix.shrink_to_fit();
        }
        e.assets.shrink_to_fit();
        Ok((e, claims.into_warnings()))
    }

    fn add_row(&mut self, path: &Path, row: &Row, claims: &mut Claims) -> anyhow::Result<()> {
        let id = row.get("asset_id").to_string();
        let mut hostname = row
            .get("hostname")
            .trim_end_matches('.')
            .to_ascii_lowercase();
        let mut fqdn = row.get("fqdn").trim_end_matches('.').to_ascii_lowercase();
        if fqdn.is_empty() && hostname.contains('.') {
            // A CMDB that writes the FQDN in the hostname column.
            fqdn = std::mem::take(&mut hostname);
            hostname = fqdn.split('.').next().unwrap_or_default().to_string();
        }
        let mut ips = Vec::new();
        for item in row.list("ip") {
            ips.push(
                parse_ip(&item)
                    .ok_or_else(|| row_error(path, row, format!("invalid ip {item:?}")))?,
            );
        }
        let mut nets = Vec::new();
        for item in row.list("cidr") {
            let net: IpNet = item.trim().parse().map_err(|_| {
                row_error(
                    path,
                    row,
                    format!("invalid cidr {item:?} (expected e.g. 10.30.5.0/24)"),
                )
            })?;
            nets.push(net.trunc());
        }
        if ips.is_empty() && nets.is_empty() && hostname.is_empty() && fqdn.is_empty() {
            return Err(row_error(
                path,
                row,
                format!("asset {id:?} has no ip, cidr, hostname or fqdn to match on"),
            ));
        }

        let row_id = claims.add_row(row, &id);
        let index = row_id as usize;
        let mut claim = |held, what: &str, shown: &dyn std::fmt::Display| {
            claims.claim(path, row, held, what, shown)
        };
        for ip in ips {
            if claim(self.by_ip.get(&ip).copied(), "ip", &ip) {
                self.by_ip.insert(ip, row_id);
            }
        }
        for net in nets {
            let held = match net {
                IpNet::V4(n) => self.v4.get(&n),
                IpNet::V6(n) => self.v6.get(&n),
            };
            if claim(held.copied(), "cidr", &net) {
                match net {
                    IpNet::V4(n) => self.v4.insert(n, row_id),
                    IpNet::V6(n) => self.v6.insert(n, row_id),
                };
            }
        }
        if !hostname.is_empty() {
            let held = self.by_hostname.insert_first(&hostname, index).err();
            claim(held, "hostname", &hostname);
        }
        let has_fqdn = !fqdn.is_empty();
        if has_fqdn {
            let held = self.by_fqdn.insert_first(&fqdn, index).err();
            if claim(held, "fqdn", &fqdn) {
                if let Some((label, domain)) = fqdn.split_once('.') {
                    self.domains.insert(domain.to_string());
                    let _ = self
                        .by_fqdn_label
                        .upsert(label, index, |slot, _| *slot = KeyIndex::AMBIGUOUS);
                }
            }
        }

        let mut ctx = Map::new();
        let text = |col: &str| Value::String(row.get(col).to_string());
        ctx.insert("id".into(), Value::String(id.clone()));
        for col in ["owner", "business_unit", "criticality", "environment", "os"] {
            if !row.get(col).is_empty() {
                ctx.insert(col.into(), text(col));
            }
        }
        let tags = split_list(row.get("tags"));
        if !tags.is_empty() {
            ctx.insert(
                "tags".into(),
                Value::Array(tags.into_iter().map(Value::String).collect()),
            );
        }
        self.assets.push(Asset {
            has_fqdn,
            context: super::CompactContext::new(&Value::Object(ctx)),
        });
        Ok(())
    }

    /// Number of inventory rows loaded.
    pub fn len(&self) -> usize {
        self.assets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.assets.is_empty()
    }

    /// The record of a matched asset.
    pub fn context(&self, index: usize) -> Value {
        self.assets[index].context.value()
    }

    /// Match an IP: exact address first, then the longest CIDR.
    pub fn match_ip(&self, ip: IpAddr) -> Option<AssetMatch> {
        let ip = ip.to_canonical();
        if let Some(&index) = self.by_ip.get(&ip) {
            return Some(AssetMatch {
                index: index as usize,
                matched_by: "ip",
            });
        }
        let hit = match ip {
            IpAddr::V4(a) => self.v4.get_lpm(&Ipv4Net::from(a)).map(|(_, &i)| i as usize),
            IpAddr::V6(a) => self.v6.get_lpm(&Ipv6Net::from(a)).map(|(_, &i)| i as usize),
        };
        hit.map(|index| AssetMatch {
            index,
            matched_by: "cidr",
        })
    }

    /// Match a host name as a log writes it (any case, optional trailing dot, or an IP).
    pub fn match_host(&self, name: &str) -> Option<AssetMatch> {
        match parse_ip(name) {
            Some(ip) => self.match_ip(ip),
            None => self.match_name(&normalize_host(name)),
        }
    }

    /// Match a host name already normalised ([`normalize_host`]) that is not an IP.
    fn match_name(&self, name: &str) -> Option<AssetMatch> {
        let found = |index: usize, matched_by| Some(AssetMatch { index, matched_by });
        if let Some(i) = self.by_hostname.get(name) {
            return found(i, "hostname");
        }
        if let Some(i) = self.by_fqdn.get(name) {
            return found(i, "fqdn");
        }
        match name.split_once('.') {
            Some((label, domain)) => {
                let i = self.by_hostname.get(label)?;
                let in_known_domain = self.domains.is_empty() || self.knows_domain(domain);
                (!self.assets[i].has_fqdn && in_known_domain).then_some(AssetMatch {
                    index: i,
                    matched_by: "short_name",
                })
            }
            None => self
                .by_fqdn_label
                .get(name)
                .and_then(|i| found(i, "short_name")),
        }
    }

    /// Whether a domain is one of the inventory's, or below one.
    fn knows_domain(&self, domain: &str) -> bool {
        let mut d = domain;
        loop {
            if self.domains.contains(d) {
                return true;
            }
            match d.split_once('.') {
                Some((_, parent)) => d = parent,
                None => return false,
            }
        }
    }

    /// Whether an unmatched value is a gap: something the inventory should know.
    fn should_know(&self, key: &HostKey) -> bool {
        match key {
            HostKey::Ip(ip) => ipclass::classify(*ip).is_some_and(ipclass::is_internal_use),
            HostKey::Name(name) => match name.split_once('.') {
                None => !name.is_empty(),
                Some((_, domain)) => self.knows_domain(domain),
            },
        }
    }

    /// Match what an attribute held, read once into its key.
    fn match_key(&self, key: &HostKey) -> Option<AssetMatch> {
        match key {
            HostKey::Ip(ip) => self.match_ip(*ip),
            HostKey::Name(name) => self.match_name(name),
        }
    }
}

/// A value an alert names a host by: an address (canonical) or a normalised name. Two
/// attributes holding the same key are looked up once.
#[derive(Debug, PartialEq)]
enum HostKey {
    Ip(IpAddr),
    Name(String),
}

fn normalize_host(name: &str) -> String {
    name.trim().trim_end_matches('.').to_ascii_lowercase()
}

impl Enricher for AssetEnricher {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "asset"
    }

    fn data_version(&self) -> &str {
        &self.version
    }

    fn enrich(&mut self, alert: &AlertView<'_>, out: &mut EnrichOutput) {
        let ip_attrs = &self.ip_attributes;
        let attrs = self.ip_attributes.iter().chain(self.host_attributes.iter());
        // IP attributes take IPs only; host attributes take names or IPs. One lookup per
        // distinct IP or (case-folded) name per event.
        let values = present(alert, attrs, |attr, value| match parse_ip(value) {
            Some(ip) => Some(HostKey::Ip(ip)),
            None if ip_attrs.iter().any(|a| a.raw() == attr) => None,
            None => Some(HostKey::Name(normalize_host(value))),
        });
        for p in values {
            match self.match_key(&p.key) {
                Some(m) => out.entities.push(Entity {
                    kind: "asset",
                    attribute: p.attribute.clone(),
                    value: p.value.into_owned(),
                    matched_by: m.matched_by,
                    enricher: self.name.clone(),
                    context: self.recent.get(m.index, &self.assets[m.index].context),
                }),
                None if self.should_know(&p.key) => out.misses.push(Miss {
                    attribute: p.attribute.clone(),
                    value: p.value.into_owned(),
                    enricher: self.name.clone(),
                    code: "asset_unknown",
                }),
                None => {}
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
asset_id,hostname,fqdn,ip,cidr,owner,business_unit,criticality,environment,os,tags
A-1,web01,web01.corp.example.com,10.10.1.10,,web-team,ecommerce,high,prod,Ubuntu 22.04,web;internet-facing
A-2,,db01.corp.example.com,10.10.2.20;10.10.2.21,,dba,payments,crown_jewel,prod,RHEL 9,
A-3,pay-segment,,,10.30.5.0/24,payments-ops,payments,crown_jewel,prod,,segment
A-4,servers,,,10.10.0.0/16,infra,it,medium,prod,,
A-5,pay-hsm,,10.30.5.7,10.30.5.0/28,payments-ops,payments,crown_jewel,prod,,hsm
A-6,v6srv01,v6srv01.corp.example.com,2001:db8:10::5,2001:db8:10::/48,infra,it,high,prod,Debian 12,ipv6
A-7,LAPTOP-77,,,,,sales,low,corp,Windows 11,
A-8,web01,web01.lab.example.com,10.99.0.1,,lab,it,low,dev,,
A-9,,mail.corp.example.com,10.10.3.3,,it,it,high,prod,,
A-10,,mail.dmz.example.com,192.0.2.25,,it,it,high,prod,,
";

    fn enricher(csv: &str) -> (AssetEnricher, Vec<String>) {
        let dir = definition_dir();
        write(dir.path(), "assets.csv", csv);
        let def: AssetDefinition =
            toml::from_str("name = \"cmdb\"\nkind = \"asset\"\npath = \"assets.csv\"\n").unwrap();
        AssetEnricher::open(&def, dir.path()).unwrap()
    }

    fn id_of(e: &AssetEnricher, m: Option<AssetMatch>) -> Option<(String, &'static str)> {
        m.map(|m| {
            (
                e.context(m.index)["id"].as_str().unwrap().to_string(),
                m.matched_by,
            )
        })
    }

    fn ip(e: &AssetEnricher, s: &str) -> Option<(String, &'static str)> {
        id_of(e, e.match_ip(s.parse().unwrap()))
    }

    fn host(e: &AssetEnricher, s: &str) -> Option<(String, &'static str)> {
        id_of(e, e.match_host(s))
    }

    fn m(id: &str, by: &'static str) -> Option<(String, &'static str)> {
        Some((id.to_string(), by))
    }

    #[test]
    fn ip_exact_beats_cidr_and_longest_prefix_wins() {
        let (e, warnings) = enricher(CSV);
        assert_eq!(e.len(), 10);
        // web01 appears twice as a hostname (A-1 and A-8).
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains(":9: hostname web01 already belongs to asset \"A-1\" (line 2)"),
            "{warnings:?}"
        );
        assert_eq!(ip(&e, "10.10.1.10"), m("A-1", "ip"));
        assert_eq!(ip(&e, "10.10.2.21"), m("A-2", "ip"));
        assert_eq!(ip(&e, "10.10.9.9"), m("A-4", "cidr"));
        assert_eq!(ip(&e, "10.30.5.200"), m("A-3", "cidr"));
        // /28 inside the /24: the longer prefix wins; the exact IP beats both.
        assert_eq!(ip(&e, "10.30.5.3"), m("A-5", "cidr"));
        assert_eq!(ip(&e, "10.30.5.7"), m("A-5", "ip"));
        assert_eq!(ip(&e, "::ffff:10.10.1.10"), m("A-1", "ip"));
        assert_eq!(ip(&e, "10.20.0.1"), None);
    }

    #[test]
    fn ipv6_exact_and_cidr() {
        let (e, _) = enricher(CSV);
        assert_eq!(ip(&e, "2001:db8:10::5"), m("A-6", "ip"));
        assert_eq!(ip(&e, "2001:DB8:10:0:0:0:0:5"), m("A-6", "ip"));
        assert_eq!(ip(&e, "2001:db8:10:ffff::1"), m("A-6", "cidr"));
        assert_eq!(ip(&e, "2001:db8:11::1"), None);
    }

    #[test]
    fn host_names_in_every_spelling() {
        let (e, _) = enricher(CSV);
        assert_eq!(host(&e, "WEB01"), m("A-1", "hostname"));
        assert_eq!(host(&e, "web01.corp.example.com."), m("A-1", "fqdn"));
        assert_eq!(host(&e, "Web01.Lab.Example.Com"), m("A-8", "fqdn"));
        // Short name → FQDN's first label.
        assert_eq!(host(&e, "DB01"), m("A-2", "short_name"));
        // FQDN → asset known only by its short hostname, in a domain the inventory uses.
        assert_eq!(
            host(&e, "laptop-77.corp.example.com"),
            m("A-7", "short_name")
        );
        assert_eq!(host(&e, "laptop-77.evil.example.net"), None);
        // FQDN whose first label is a hostname of an asset with a different FQDN: no match.
        assert_eq!(host(&e, "web01.other.example.com"), None);
        // "mail" is the first label of FQDNs in two domains: ambiguous, no match.
        assert_eq!(host(&e, "mail"), None);
        assert_eq!(host(&e, "mail.dmz.example.com"), m("A-10", "fqdn"));
        // An IP in a host attribute.
        assert_eq!(host(&e, "10.10.1.10"), m("A-1", "ip"));
    }

    #[test]
    fn enrich_orders_by_attribute_list_and_looks_up_once() {
        let (mut e, _) = enricher(CSV);
        let alert = json!({
            "src_endpoint": {"ip": "10.30.5.7", "hostname": "db01"},
            "dst_endpoint": {"ip": "10.10.77.1", "hostname": "ghost01"},
            "device": {"ip": "10.30.5.7", "hostname": "www.example.net"},
        });
        let mut out = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut out);
        let got: Vec<(&str, &str, &str)> = out
            .entities
            .iter()
            .map(|x| (&*x.attribute, x.value.as_str(), x.matched_by))
            .collect();
        assert_eq!(
            got,
            vec![
                ("src_endpoint.ip", "10.30.5.7", "ip"),
                ("dst_endpoint.ip", "10.10.77.1", "cidr"),
                ("src_endpoint.hostname", "db01", "short_name"),
            ]
        );
        assert_eq!(out.entities[0].kind, "asset");
        assert_eq!(&*out.entities[0].enricher, "cmdb");
        assert_eq!(
            *out.entities[0].context,
            json!({"id": "A-5", "owner": "payments-ops", "business_unit": "payments", "criticality": "crown_jewel",
                   "environment": "prod", "tags": ["hsm"]})
        );
        // ghost01 is a short name the inventory should know; www.example.net is not ours.
        let misses: Vec<(&str, &str, &str)> = out
            .misses
            .iter()
            .map(|x| (&*x.attribute, x.value.as_str(), x.code))
            .collect();
        assert_eq!(
            misses,
            vec![("dst_endpoint.hostname", "ghost01", "asset_unknown")]
        );

        let mut again = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut again);
        assert_eq!(out, again);
    }

    #[test]
    fn misses_only_for_what_the_inventory_should_know() {
        let (mut e, _) = enricher(CSV);
        let alert = json!({
            "src_endpoint": {"ip": "192.168.7.7", "hostname": "fileserver.corp.example.com"},
            "dst_endpoint": {"ip": "8.8.8.8", "hostname": "not-an-ip"},
            "device": {"ip": "garbage"},
        });
        let mut out = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut out);
        assert!(out.entities.is_empty());
        let misses: Vec<&str> = out.misses.iter().map(|x| &*x.attribute).collect();
        assert_eq!(
            misses,
            vec![
                "src_endpoint.ip",
                "src_endpoint.hostname",
                "dst_endpoint.hostname"
            ]
        );
    }

    #[test]
    fn bad_rows_name_file_and_line() {
        let dir = definition_dir();
        let def: AssetDefinition =
            toml::from_str("name = \"cmdb\"\nkind = \"asset\"\npath = \"a.csv\"\n").unwrap();
        for (csv, want) in [
            (
                "asset_id,ip\nA,10.0.0.1\nB,10.0.0.999\n",
                "a.csv:3: invalid ip \"10.0.0.999\"",
            ),
            ("asset_id,cidr\nA,10.0.0.0/33\n", "a.csv:2: invalid cidr"),
            (
                "asset_id,ip\nA,10.0.0.1\n,10.0.0.2\n",
                "a.csv:3: missing asset_id",
            ),
            ("asset_id,owner\nA,bob\n", "a.csv:2: asset \"A\" has no ip"),
            ("asset_id,ip\nA,10.0.0.1,extra\n", "a.csv:2:"),
        ] {
            write(dir.path(), "a.csv", csv);
            let err = format!("{:#}", AssetEnricher::open(&def, dir.path()).err().unwrap());
            assert!(err.contains(want), "{err} does not contain {want}");
        }
    }

    #[test]
    fn json_inventory() {
        let dir = definition_dir();
        write(
            dir.path(),
            "a.json",
            r#"[
  {"asset_id": "J-1", "hostname": "app01.corp.example.com", "ip": ["10.1.1.1", "10.1.1.2"], "tags": ["x", "y"]},
  {"asset_id": "J-2", "cidr": "10.2.0.0/16", "criticality": "low"}
]"#,
        );
        let def: AssetDefinition =
            toml::from_str("name = \"cmdb\"\nkind = \"asset\"\npath = \"a.json\"\n").unwrap();
        let (e, _) = AssetEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(ip(&e, "10.1.1.2"), m("J-1", "ip"));
        assert_eq!(host(&e, "app01"), m("J-1", "hostname"));
        assert_eq!(host(&e, "APP01.corp.example.com"), m("J-1", "fqdn"));
        assert_eq!(ip(&e, "10.2.3.4"), m("J-2", "cidr"));
        assert_eq!(e.context(0)["tags"], json!(["x", "y"]));

        write(dir.path(), "a.json", "[\n {\"asset_id\": \"J-1\", \"ip\": \"10.1.1.1\"},\n {\"asset_id\": \"J-2\", \"ip\": \"nope\"}\n]");
        let err = format!("{:#}", AssetEnricher::open(&def, dir.path()).err().unwrap());
        assert!(err.contains("a.json:3: invalid ip \"nope\""), "{err}");
    }
}
