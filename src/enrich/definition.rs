//! Enricher definition files: the TOML that names an enricher, its `kind`, its reference data
//! and the alert attributes it reads. One struct per kind; unknown keys are errors. Every key
//! is documented on its field here and in `enrichers/README.md`.
//!
//! Paths in a definition are relative to the definition file's directory.

use super::table::TableFormat;
use super::Loaded;
use anyhow::{anyhow, bail, Context};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The kinds of enricher a definition can name.
pub const KINDS: &[&str] = &["asset", "user", "geo"];

/// A parsed definition of any kind.
#[derive(Debug, Clone, PartialEq)]
pub enum Definition {
    Asset(AssetDefinition),
    User(UserDefinition),
    Geo(GeoDefinition),
}

/// `kind = "asset"`: an asset inventory (CMDB export).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AssetDefinition {
    /// Unique enricher name; appears in bundles (`entities[].enricher`) and provenance.
    pub name: String,
    /// `"asset"`.
    pub kind: String,
    /// The inventory: one CSV file (header row) or JSON file (array of objects) with columns
    /// `asset_id, hostname, fqdn, ip, cidr, owner, business_unit, criticality, environment,
    /// os, tags`.
    pub path: PathBuf,
    /// `csv` or `json`; default: `json` for a `.json` file name, otherwise `csv`.
    #[serde(default)]
    pub format: Option<TableFormat>,
    /// Alert attributes holding IP addresses, matched by exact IP, then by the longest CIDR.
    #[serde(default = "default_asset_ip_attributes")]
    pub ip_attributes: Vec<String>,
    /// Alert attributes holding host names or FQDNs (an IP written there is matched as an IP).
    #[serde(default = "default_host_attributes")]
    pub host_attributes: Vec<String>,
    /// When true, a missing inventory file leaves the enricher out with a warning.
    #[serde(default)]
    pub optional: bool,
}

/// `kind = "user"`: an identity directory export.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserDefinition {
    /// Unique enricher name; appears in bundles (`entities[].enricher`) and provenance.
    pub name: String,
    /// `"user"`.
    pub kind: String,
    /// The directory: one CSV or JSON file with columns `user_id, sam_account_name, upn,
    /// email, sid, display_name, department, title, manager, privileged, status, groups,
    /// domain`.
    pub path: PathBuf,
    /// `csv` or `json`; default: `json` for a `.json` file name, otherwise `csv`.
    #[serde(default)]
    pub format: Option<TableFormat>,
    /// Alert attributes naming a user, in any spelling (`CORP\jdoe`, `jdoe@corp.example.com`,
    /// an e-mail address, a SID, `jdoe`, a directory user id).
    #[serde(default = "default_user_attributes")]
    pub user_attributes: Vec<String>,
    /// Pairs a user attribute with the attribute holding its domain: when both are present,
    /// a bare name is looked up as `DOMAIN\name` only. Keys must be in `user_attributes`.
    #[serde(default = "default_domain_attributes")]
    pub domain_attributes: BTreeMap<String, String>,
    /// When true, a missing directory file leaves the enricher out with a warning.
    #[serde(default)]
    pub optional: bool,
}

/// `kind = "geo"`: MaxMind DB (GeoIP2/GeoLite2) lookups. At least one database is required.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeoDefinition {
    /// Unique enricher name; appears in bundles (`enrichment[].enricher`) and provenance.
    pub name: String,
    /// `"geo"`.
    pub kind: String,
    /// A City (or Country) database: country, city, subdivision, location, continent.
    #[serde(default)]
    pub city: Option<PathBuf>,
    /// An ASN database: autonomous system number and organisation.
    #[serde(default)]
    pub asn: Option<PathBuf>,
    /// An Anonymous-IP database: VPN, hosting, proxy, Tor exit flags.
    #[serde(default)]
    pub anonymous_ip: Option<PathBuf>,
    /// Alert attributes holding IP addresses to look up.
    #[serde(default = "default_geo_ip_attributes")]
    pub ip_attributes: Vec<String>,
    /// Lookups remembered (LRU, keyed by IP; hits and misses alike). 0 disables the cache.
    /// An IP a City database places costs about 350 bytes here (its answer as compact text,
    /// the key, the list node): the default of 16,384 about 6 MiB. A lookup the cache saves
    /// costs about 4 µs of CPU in a City database at production shape (README, "The geo
    /// database at production shape"). Raise it for feeds that name the same outside
    /// addresses again and again, where the memory buys CPU back.
    #[serde(default = "default_cache_size")]
    pub cache_size: usize,
    /// When true, a missing database file leaves the whole enricher out with a warning
    /// (alertctx does not ship MaxMind databases).
    #[serde(default)]
    pub optional: bool,
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn default_asset_ip_attributes() -> Vec<String> {
    strings(&["src_endpoint.ip", "dst_endpoint.ip", "device.ip"])
}

fn default_host_attributes() -> Vec<String> {
    strings(&[
        "device.hostname",
        "src_endpoint.hostname",
        "dst_endpoint.hostname",
    ])
}

fn default_user_attributes() -> Vec<String> {
    strings(&[
        "user.name",
        "user.uid",
        "user.email_addr",
        "actor.user.name",
        "actor.user.uid",
        "actor.user.email_addr",
    ])
}

fn default_domain_attributes() -> BTreeMap<String, String> {
    [
        ("user.name", "user.domain"),
        ("actor.user.name", "actor.user.domain"),
    ]
    .into_iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect()
}

fn default_geo_ip_attributes() -> Vec<String> {
    strings(&["src_endpoint.ip", "dst_endpoint.ip"])
}

fn default_cache_size() -> usize {
    16_384
}

impl Definition {
    /// Read a definition file. `Ok(None)` for a tag-rule file (no `kind`, has `rule`).
    pub fn read(path: &Path) -> anyhow::Result<Option<Definition>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        Definition::parse(&text).map_err(|e| anyhow!("{}: {e:#}", path.display()))
    }

    /// Parse definition text. `Ok(None)` for a tag-rule file (no `kind`, has `rule`).
    pub fn parse(text: &str) -> anyhow::Result<Option<Definition>> {
        let table: toml::Table = text.parse()?;
        let kind = match table.get("kind") {
            Some(toml::Value::String(k)) => k.as_str(),
            Some(_) => bail!("`kind` must be a string, one of {KINDS:?}"),
            None if table.contains_key("rule") => return Ok(None),
            None => bail!("missing `kind` (one of {KINDS:?})"),
        };
        let def = match kind {
            "asset" => Definition::Asset(toml::from_str(text)?),
            "user" => Definition::User(toml::from_str(text)?),
            "geo" => Definition::Geo(toml::from_str(text)?),
            other => bail!("unknown kind {other:?} (expected one of {KINDS:?})"),
        };
        def.validate()?;
        Ok(Some(def))
    }

    /// The enricher name.
    pub fn name(&self) -> &str {
        match self {
            Definition::Asset(d) => &d.name,
            Definition::User(d) => &d.name,
            Definition::Geo(d) => &d.name,
        }
    }

    /// Whether missing data files are a warning rather than an error.
    pub fn optional(&self) -> bool {
        match self {
            Definition::Asset(d) => d.optional,
            Definition::User(d) => d.optional,
            Definition::Geo(d) => d.optional,
        }
    }

    /// The reference-data files, as written in the definition.
    pub fn data_files(&self) -> Vec<&Path> {
        match self {
            Definition::Asset(d) => vec![d.path.as_path()],
            Definition::User(d) => vec![d.path.as_path()],
            Definition::Geo(d) => [&d.city, &d.asn, &d.anonymous_ip]
                .into_iter()
                .flatten()
                .map(PathBuf::as_path)
                .collect(),
        }
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.name().trim().is_empty() {
            bail!("`name` must not be empty");
        }
        let lists: Vec<(&str, &[String])> = match self {
            Definition::Asset(d) => vec![
                ("ip_attributes", &d.ip_attributes),
                ("host_attributes", &d.host_attributes),
            ],
            Definition::User(d) => vec![("user_attributes", &d.user_attributes)],
            Definition::Geo(d) => vec![("ip_attributes", &d.ip_attributes)],
        };
        for (key, attrs) in &lists {
            if let Some(bad) = attrs
                .iter()
                .find(|a| a.is_empty() || a.split('.').any(str::is_empty))
            {
                bail!("`{key}` holds an invalid attribute path {bad:?}");
            }
        }
        if lists.iter().all(|(_, attrs)| attrs.is_empty()) {
            bail!("no attributes to look at");
        }
        match self {
            Definition::User(d) => {
                for (user_attr, domain_attr) in &d.domain_attributes {
                    if !d.user_attributes.contains(user_attr) {
                        bail!("`domain_attributes` pairs {user_attr:?}, which is not in `user_attributes`");
                    }
                    if domain_attr.is_empty() || domain_attr.split('.').any(str::is_empty) {
                        bail!(
                            "`domain_attributes` holds an invalid attribute path {domain_attr:?}"
                        );
                    }
                }
            }
            Definition::Geo(d)
                if d.city.is_none() && d.asn.is_none() && d.anonymous_ip.is_none() =>
            {
                bail!("a geo definition needs at least one of `city`, `asn`, `anonymous_ip`");
            }
            _ => {}
        }
        Ok(())
    }

    /// Open the reference data. `path` is the definition file (data paths are relative to its
    /// directory).
    pub fn load(self, path: &Path) -> anyhow::Result<Loaded> {
        let base = path.parent().unwrap_or(Path::new("."));
        let missing: Vec<PathBuf> = self
            .data_files()
            .into_iter()
            .map(|f| base.join(f))
            .filter(|f| !f.exists())
            .collect();
        if !missing.is_empty() {
            let list = missing
                .iter()
                .map(|m| m.display().to_string())
                .collect::<Vec<_>>()
                .join(", ");
            if self.optional() {
                return Ok(Loaded {
                    enrichers: Vec::new(),
                    warnings: vec![format!(
                        "{}: optional enricher {:?} left out: missing {list}",
                        path.display(),
                        self.name()
                    )],
                });
            }
            bail!(
                "{}: enricher {:?}: missing {list}",
                path.display(),
                self.name()
            );
        }
        let context = || format!("{}: enricher {:?}", path.display(), self.name());
        let (enricher, warnings): (Box<dyn super::Enricher>, Vec<String>) = match &self {
            Definition::Asset(d) => {
                let (e, w) = super::asset::AssetEnricher::open(d, base).with_context(context)?;
                (Box::new(e), w)
            }
            Definition::User(d) => {
                let (e, w) = super::user::UserEnricher::open(d, base).with_context(context)?;
                (Box::new(e), w)
            }
            Definition::Geo(d) => (
                Box::new(super::geo::GeoEnricher::open(d, base).with_context(context)?),
                Vec::new(),
            ),
        };
        Ok(Loaded {
            enrichers: vec![enricher],
            warnings,
        })
    }
}

/// Attribute names with repeats removed, first occurrence kept.
pub(crate) fn unique(attrs: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(attrs.len());
    for a in attrs {
        if !out.contains(a) {
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind_with_defaults() {
        let d =
            Definition::parse("name = \"cmdb\"\nkind = \"asset\"\npath = \"data/assets.csv\"\n")
                .unwrap()
                .unwrap();
        let Definition::Asset(a) = d else {
            panic!("not an asset definition")
        };
        assert_eq!(a.ip_attributes, default_asset_ip_attributes());
        assert_eq!(a.format, None);
        assert!(!a.optional);

        let d = Definition::parse(
            "name = \"ad\"\nkind = \"user\"\npath = \"u.json\"\nformat = \"json\"\nuser_attributes = [\"actor.user.name\"]\n[domain_attributes]\n\"actor.user.name\" = \"actor.user.domain\"\n",
        )
        .unwrap()
        .unwrap();
        let Definition::User(u) = d else {
            panic!("not a user definition")
        };
        assert_eq!(u.format, Some(TableFormat::Json));
        assert_eq!(
            u.domain_attributes
                .get("actor.user.name")
                .map(String::as_str),
            Some("actor.user.domain")
        );

        let d = Definition::parse(
            "name = \"geo\"\nkind = \"geo\"\ncity = \"c.mmdb\"\noptional = true\n",
        )
        .unwrap()
        .unwrap();
        let Definition::Geo(g) = d else {
            panic!("not a geo definition")
        };
        assert_eq!(g.cache_size, 16_384);
        assert!(g.optional);
        assert_eq!(Definition::Geo(g).data_files(), vec![Path::new("c.mmdb")]);
    }

    #[test]
    fn rejects_bad_definitions() {
        let err = |text: &str| Definition::parse(text).unwrap_err().to_string();
        assert!(
            err("name = \"x\"\nkind = \"asset\"\npath = \"a.csv\"\nip_atributes = []\n")
                .contains("unknown field")
        );
        assert!(err("name = \"x\"\nkind = \"dns\"\n").contains("unknown kind"));
        assert!(err("name = \"x\"\n").contains("missing `kind`"));
        assert!(err("name = \"x\"\nkind = \"geo\"\n").contains("at least one"));
        assert!(err("name = \"\"\nkind = \"asset\"\npath = \"a.csv\"\n").contains("name"));
        assert!(err(
            "name = \"x\"\nkind = \"asset\"\npath = \"a.csv\"\nip_attributes = [\"a..b\"]\n"
        )
        .contains("invalid attribute"));
        assert!(err("name = \"x\"\nkind = \"user\"\npath = \"u.csv\"\nuser_attributes = [\"user.name\"]\ndomain_attributes = { \"actor.user.name\" = \"actor.user.domain\" }\n")
            .contains("not in `user_attributes`"));
    }

    #[test]
    fn tag_rule_files_are_not_definitions() {
        let text = "[[rule]]\nid = \"x\"\ntags = [\"a:b\"]\n";
        assert_eq!(Definition::parse(text).unwrap(), None);
    }

    #[test]
    fn unique_keeps_first_occurrence() {
        let v = strings(&["a", "b", "a", "c", "b"]);
        assert_eq!(unique(&v), strings(&["a", "b", "c"]));
    }
}
