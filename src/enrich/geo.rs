//! Geo enricher: looks up the public IPs an alert names in MaxMind DB files (GeoIP2/GeoLite2
//! City, ASN and Anonymous-IP) and attaches the answer as an [`Enrichment`].
//!
//! Reserved addresses (see [`ipclass`]) are never looked up: they get
//! `data = {"internal": true, "range": "<label>"}` with source `iana-special-purpose`. A public
//! IP no configured database has a record for is a `geo_unknown` [`Miss`]. An answer's `data`
//! uses OCSF names where OCSF has them:
//!
//! ```json
//! {"location": {"city": "Boxford", "continent": "Europe", "continent_code": "EU",
//!               "country": "GB", "country_name": "United Kingdom",
//!               "region": "GB-ENG", "region_name": "England",
//!               "lat": 51.75, "long": -1.25, "accuracy_radius_km": 100},
//!  "autonomous_system": {"number": 29518, "name": "Bredband2 AB"},
//!  "anonymous": {"is_anonymous": false, "is_anonymous_vpn": false, "is_hosting_provider": false,
//!                "is_public_proxy": false, "is_residential_proxy": false, "is_tor_exit_node": false}}
//! ```
//!
//! Each block appears when its database is configured and has something for the IP
//! (`anonymous` appears on every answer when an Anonymous-IP database is configured: no record
//! there means no flag is set). `source` names each database by type and build epoch, joined
//! with `+` (`GeoLite2-City@1700000000+GeoLite2-ASN@1700000000`); the data version is the
//! sha256 of the database files' bytes, in the order city, asn, anonymous_ip.
//!
//! An LRU cache keyed by IP sits in front of the databases and remembers misses as well as
//! hits. Reserved addresses never reach it; with the cache off every lookup is a miss. A record
//! that fails to decode (a corrupt database) counts as no record and as a lookup error. Both
//! counts are the enricher's [`Enricher::stats`], which the worker exports as metrics.

use super::definition::GeoDefinition;
use super::{
    attribute_paths, ipclass, parse_ip, present, CompactContext, EnrichOutput, Enricher,
    EnricherStats, Enrichment, Miss,
};
use crate::jsonout::ObjectWriter;
use crate::path::{AlertView, JPath};
use anyhow::Context;
use lru::LruCache;
use maxminddb::{geoip2, Reader};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use std::num::NonZeroUsize;
use std::path::Path;
use std::sync::Arc;

/// `source` of the enrichment given to reserved addresses.
pub const RESERVED_SOURCE: &str = "iana-special-purpose";

/// MaxMind databases, a cache in front of them, and the attributes to read.
pub struct GeoEnricher {
    name: Arc<str>,
    version: String,
    source: String,
    attributes: Vec<JPath>,
    city: Option<Reader<Vec<u8>>>,
    asn: Option<Reader<Vec<u8>>>,
    anonymous: Option<Reader<Vec<u8>>>,
    /// Records as compact JSON text: a cached `serde_json::Value` costs about ten times the
    /// memory (a full cache of 100k addresses: ~20 MiB instead of ~200), and parsing the text
    /// back costs about what decoding the MMDB record again would.
    cache: Option<LruCache<IpAddr, Option<CompactContext>>>,
    /// The data given to reserved addresses, by range label, made once each.
    reserved: Vec<(&'static str, super::Context)>,
    /// The `location` block of the answer being written.
    scratch: Vec<u8>,
    hits: u64,
    misses: u64,
    errors: Errors,
}

/// What a lookup concluded about one IP.
#[derive(Debug, Clone, PartialEq)]
pub enum GeoLookup {
    /// A non-global address, with its range label; not looked up.
    Reserved(&'static str),
    /// The combined record (see the module docs for its shape).
    Found(super::Context),
    /// A public address no database has a record for.
    NotFound,
}

impl GeoEnricher {
    /// Open the databases a definition names; `base` is the definition's directory.
    pub fn open(def: &GeoDefinition, base: &Path) -> anyhow::Result<GeoEnricher> {
        let mut hasher = Sha256::new();
        let mut sources = Vec::new();
        let mut open =
            |file: &Option<std::path::PathBuf>| -> anyhow::Result<Option<Reader<Vec<u8>>>> {
                let Some(file) = file else { return Ok(None) };
                let path = base.join(file);
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                hasher.update(&bytes);
                let reader = Reader::from_source(bytes).map_err(|e| {
                    anyhow::anyhow!("{}: not a readable MaxMind DB: {e}", path.display())
                })?;
                sources.push(format!(
                    "{}@{}",
                    reader.metadata().database_type,
                    reader.metadata().build_epoch
                ));
                Ok(Some(reader))
            };
        let city = open(&def.city)?;
        let asn = open(&def.asn)?;
        let anonymous = open(&def.anonymous_ip)?;
        Ok(GeoEnricher {
            name: def.name.as_str().into(),
            version: format!("sha256:{}", hex::encode(hasher.finalize())),
            source: sources.join("+"),
            attributes: attribute_paths(&def.ip_attributes),
            city,
            asn,
            anonymous,
            cache: NonZeroUsize::new(def.cache_size).map(LruCache::new),
            reserved: Vec::new(),
            scratch: Vec::new(),
            hits: 0,
            misses: 0,
            errors: Errors::default(),
        })
    }

    /// The `source` written on enrichments from the databases.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The data of a reserved address in the range `label`.
    fn reserved_data(&mut self, label: &'static str) -> super::Context {
        if let Some((_, c)) = self.reserved.iter().find(|(l, _)| *l == label) {
            return c.clone();
        }
        let c = super::Context::new(json!({"internal": true, "range": label}));
        self.reserved.push((label, c.clone()));
        c
    }

    /// Look up one IP (IPv4-mapped IPv6 addresses as their IPv4).
    pub fn lookup(&mut self, ip: IpAddr) -> GeoLookup {
        let ip = ip.to_canonical();
        if let Some(label) = ipclass::classify(ip) {
            return GeoLookup::Reserved(label);
        }
        // A hit copies the record's text, which is what the bundle holds: it is not parsed.
        let cached = self
            .cache
            .as_mut()
            .and_then(|c| c.get(&ip).map(|r| r.as_ref().map(CompactContext::context)));
        let record = match cached {
            Some(record) => {
                self.hits += 1;
                record
            }
            None => {
                self.misses += 1;
                let record = self.query(ip);
                if let Some(c) = self.cache.as_mut() {
                    c.put(ip, record.as_ref().map(CompactContext::of));
                }
                record
            }
        };
        record.map_or(GeoLookup::NotFound, GeoLookup::Found)
    }

    /// Ask every database; `None` when none has anything for the IP. The answer is written
    /// as its compact JSON text directly (members in key order, as the canonical text of the
    /// value has them), not built as a `Value` first and written from that.
    fn query(&mut self, ip: IpAddr) -> Option<super::Context> {
        let city = self
            .city
            .as_ref()
            .and_then(|r| self.errors.count(read::<CityRecord>(r, ip)));
        let asn = self
            .asn
            .as_ref()
            .and_then(|r| self.errors.count(read::<geoip2::Asn>(r, ip)));
        let anonymous = self.anonymous.as_ref().and_then(|r| {
            self.errors
                .count(read::<geoip2::AnonymousIp>(r, ip).map(Some))
        });
        let mut location = std::mem::take(&mut self.scratch);
        location.clear();
        if let Some(city) = &city {
            write_location(city, &mut location);
        }
        let asn = asn.filter(|a| {
            a.autonomous_system_number.is_some() || a.autonomous_system_organization.is_some()
        });
        // An Anonymous-IP record is an answer on its own; its absence only qualifies others.
        let anonymous_record = matches!(anonymous, Some(Some(_)));
        let answer = (!location.is_empty() || asn.is_some() || anonymous_record).then(|| {
            let mut text = Vec::with_capacity(location.len() + 192);
            let mut o = ObjectWriter::new(&mut text);
            if let Some(found) = &anonymous {
                o.with("anonymous", |out| write_anonymous(found.as_ref(), out));
            }
            if let Some(a) = &asn {
                o.with("autonomous_system", |out| {
                    let mut o = ObjectWriter::new(out);
                    o.str_opt("name", a.autonomous_system_organization);
                    if let Some(n) = a.autonomous_system_number {
                        o.int("number", n);
                    }
                    o.end();
                });
            }
            if !location.is_empty() {
                o.raw(
                    "location",
                    std::str::from_utf8(&location).expect("written as UTF-8"),
                );
            }
            o.end();
            super::Context::from_string(String::from_utf8(text).expect("written as UTF-8"))
        });
        self.scratch = location;
        answer
    }
}

/// Lookup errors, counted where a database answers.
#[derive(Default)]
struct Errors(u64);

impl Errors {
    /// The record of a read, or `None` when there is none or it does not decode (counted).
    fn count<T>(&mut self, read: Result<Option<T>, ()>) -> Option<T> {
        read.unwrap_or_else(|()| {
            self.0 += 1;
            None
        })
    }
}

/// One record from one database; `Err` when it does not decode. An IPv6 address in an
/// IPv4-only database has no record.
fn read<'de, T: serde::Deserialize<'de>>(
    reader: &'de Reader<Vec<u8>>,
    ip: IpAddr,
) -> Result<Option<T>, ()> {
    if ip.is_ipv6() && reader.metadata().ip_version == 4 {
        return Ok(None);
    }
    reader
        .lookup(ip)
        .and_then(|found| found.decode::<T>())
        .map_err(|_| ())
}

/// The part of a City record the `location` block shows. A production City record names
/// every place in eight languages and carries postal codes, time zones, metro codes and the
/// registered country besides; `maxminddb::geoip2::City` decodes all of it. This reads the same
/// record and keeps the English names, the codes and the coordinates; maxminddb skips the rest
/// without decoding it. With a City database at production shape that is 188.9k instructions a
/// record for the whole core against 193.0k with `geoip2::City` (benches/OPTIMISATIONS.md,
/// fifteenth round). The fields it keeps have `geoip2::City`'s types, so a record it reads gives
/// the block `geoip2::City` would; a test holds it to the records as written.
#[derive(serde::Deserialize)]
struct CityRecord<'a> {
    #[serde(borrow)]
    city: Option<Place<'a>>,
    #[serde(borrow)]
    continent: Option<Place<'a>>,
    #[serde(borrow)]
    country: Option<Place<'a>>,
    #[serde(borrow)]
    subdivisions: Option<First<Place<'a>>>,
    location: Option<Location>,
}

/// A city, continent, country or subdivision: its code (`code` for a continent, `iso_code`
/// for the others) and its English name.
#[derive(serde::Deserialize)]
struct Place<'a> {
    #[serde(borrow)]
    code: Option<&'a str>,
    #[serde(borrow)]
    iso_code: Option<&'a str>,
    #[serde(borrow)]
    names: Option<English<'a>>,
}

/// A `names` map, of which only `en` is kept.
#[derive(serde::Deserialize)]
struct English<'a> {
    #[serde(borrow)]
    en: Option<&'a str>,
}

#[derive(serde::Deserialize)]
struct Location {
    accuracy_radius: Option<u16>,
    latitude: Option<f64>,
    longitude: Option<f64>,
}

/// The first element of an array, the rest walked over (the `location` block names the
/// first subdivision only); `None` for an empty array.
struct First<T>(Option<T>);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for First<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visit<T> {
            type Value = First<T>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<First<T>, A::Error> {
                let first = seq.next_element()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(First(first))
            }
        }
        d.deserialize_seq(Visit(std::marker::PhantomData))
    }
}

impl Place<'_> {
    fn name(&self) -> Option<&str> {
        self.names.as_ref().and_then(|n| n.en)
    }
}

/// The OCSF-shaped `location` block of a City record (English names), appended to `out` as
/// compact JSON text, members in key order; nothing when the record has none of them.
fn write_location(city: &CityRecord<'_>, out: &mut Vec<u8>) {
    let start = out.len();
    let country_iso = city.country.as_ref().and_then(|c| c.iso_code);
    let continent = city.continent.as_ref();
    let sub = city.subdivisions.as_ref().and_then(|s| s.0.as_ref());
    let location = city.location.as_ref();
    let mut o = ObjectWriter::new(out);
    if let Some(r) = location.and_then(|l| l.accuracy_radius) {
        o.int("accuracy_radius_km", r);
    }
    o.str_opt("city", city.city.as_ref().and_then(Place::name))
        .str_opt("continent", continent.and_then(Place::name))
        .str_opt("continent_code", continent.and_then(|c| c.code))
        .str_opt("country", country_iso)
        .str_opt("country_name", city.country.as_ref().and_then(Place::name));
    if let Some((lat, long)) = location.and_then(|l| l.latitude.zip(l.longitude)) {
        o.serde("lat", &lat).serde("long", &long);
    }
    if let Some(code) = sub.and_then(|s| s.iso_code) {
        match country_iso {
            Some(c) => o.str("region", &[c, "-", code].concat()),
            None => o.str("region", code),
        };
    }
    o.str_opt("region_name", sub.and_then(Place::name));
    o.end();
    if out.len() == start + 2 {
        // `{}`: the record has no part of the block.
        out.truncate(start);
    }
}

/// The Anonymous-IP block: every flag, `false` where the database has no record for the IP
/// or the record leaves the flag out (keys in order).
fn write_anonymous(found: Option<&geoip2::AnonymousIp>, out: &mut Vec<u8>) {
    let flag = |f: fn(&geoip2::AnonymousIp) -> Option<bool>| found.and_then(f).unwrap_or(false);
    let flags = [
        ("is_anonymous", flag(|a| a.is_anonymous)),
        ("is_anonymous_vpn", flag(|a| a.is_anonymous_vpn)),
        ("is_hosting_provider", flag(|a| a.is_hosting_provider)),
        ("is_public_proxy", flag(|a| a.is_public_proxy)),
        ("is_residential_proxy", flag(|a| a.is_residential_proxy)),
        ("is_tor_exit_node", flag(|a| a.is_tor_exit_node)),
    ];
    let mut o = ObjectWriter::new(out);
    for (key, set) in flags {
        o.raw(key, if set { "true" } else { "false" });
    }
    o.end();
}

impl Enricher for GeoEnricher {
    fn name(&self) -> &str {
        &self.name
    }

    fn kind(&self) -> &'static str {
        "geo"
    }

    fn data_version(&self) -> &str {
        &self.version
    }

    fn stats(&self) -> Option<EnricherStats> {
        Some(EnricherStats {
            hits: self.hits,
            misses: self.misses,
            entries: self.cache.as_ref().map_or(0, LruCache::len),
            capacity: self.cache.as_ref().map_or(0, |c| c.cap().get()),
            lookup_errors: self.errors.0,
        })
    }

    fn enrich(&mut self, alert: &AlertView<'_>, out: &mut EnrichOutput) {
        let attributes = std::mem::take(&mut self.attributes);
        let values = present(alert, &attributes, |_, value| parse_ip(value));
        for p in values {
            let (source, data) = match self.lookup(p.key) {
                GeoLookup::Reserved(label) => {
                    (RESERVED_SOURCE.to_string(), self.reserved_data(label))
                }
                GeoLookup::Found(data) => (self.source.clone(), data),
                GeoLookup::NotFound => {
                    out.misses.push(Miss {
                        attribute: p.attribute.clone(),
                        value: p.value.into_owned(),
                        enricher: self.name.clone(),
                        code: "geo_unknown",
                    });
                    continue;
                }
            };
            out.enrichment.push(Enrichment {
                attribute: p.attribute.clone(),
                value: p.value.into_owned(),
                enricher: self.name.clone(),
                source,
                data,
            });
        }
        self.attributes = attributes;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::enrich::testutil::{definition_dir, mmdb, write};
    use serde_json::Value;

    /// The cache's (hits, misses) so far.
    fn counts(e: &GeoEnricher) -> (u64, u64) {
        let s = e.stats().expect("geo has a cache");
        (s.hits, s.misses)
    }

    /// A City, an ASN and an Anonymous-IP database built for the test, and a definition.
    fn fixture(extra: &str) -> (tempfile::TempDir, GeoDefinition) {
        let dir = definition_dir();
        mmdb::write_test_city_db(&dir.path().join("city.mmdb")).unwrap();
        mmdb::write_test_asn_db(&dir.path().join("asn.mmdb")).unwrap();
        mmdb::write_test_anonymous_ip_db(&dir.path().join("anon.mmdb")).unwrap();
        let text = format!(
            "name = \"geo\"\nkind = \"geo\"\ncity = \"city.mmdb\"\nasn = \"asn.mmdb\"\n{extra}\nip_attributes = [\"src_endpoint.ip\", \"dst_endpoint.ip\", \"device.ip\"]\n"
        );
        (dir, toml::from_str(&text).unwrap())
    }

    /// The answer for `ip`, after checking that its text is the canonical text of its value
    /// (compact, keys in order: what the bundle writer and `serde_json` write for it).
    fn found(e: &mut GeoEnricher, ip: &str) -> Value {
        match e.lookup(ip.parse().unwrap()) {
            GeoLookup::Found(v) => {
                let value: Value = serde_json::from_str(v.text()).unwrap();
                assert_eq!(crate::jsonout::to_text(&value), v.text(), "{ip}");
                assert_eq!(serde_json::to_string(&value).unwrap(), v.text(), "{ip}");
                value
            }
            other => panic!("{ip}: {other:?}"),
        }
    }

    /// The `location` block [`write_location`] writes for a record, after checking that its
    /// text is canonical; `{}` for none.
    fn location(city: &CityRecord<'_>) -> Value {
        let mut out = Vec::new();
        write_location(city, &mut out);
        if out.is_empty() {
            return json!({});
        }
        let text = String::from_utf8(out).unwrap();
        assert_ne!(text, "{}", "an empty block is left out");
        let value: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&value).unwrap(), text);
        value
    }

    #[test]
    fn public_ipv4_and_ipv6_hits() {
        let (dir, def) = fixture("");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(
            e.source(),
            format!(
                "Test-City@{}+Test-ASN@{}",
                mmdb::BUILD_EPOCH,
                mmdb::BUILD_EPOCH
            )
        );
        assert_eq!(
            found(&mut e, "81.2.69.142"),
            json!({"location": {"city": "London", "continent": "Europe", "continent_code": "EU", "country": "GB",
                                "country_name": "United Kingdom", "region": "GB-ENG", "region_name": "England",
                                "lat": 51.5142, "long": -0.0931, "accuracy_radius_km": 10}})
        );
        assert_eq!(
            found(&mut e, "89.160.20.112"),
            json!({"location": {"city": "Linköping", "continent": "Europe", "continent_code": "EU", "country": "SE",
                                "country_name": "Sweden", "region": "SE-E", "region_name": "Östergötland County",
                                "lat": 58.4167, "long": 15.6167, "accuracy_radius_km": 76},
                   "autonomous_system": {"number": 29518, "name": "Bredband2 AB"}})
        );
        // Country-level IPv6 record, no city.
        assert_eq!(
            found(&mut e, "2001:218::1"),
            json!({"location": {"continent": "Asia", "continent_code": "AS", "country": "JP", "country_name": "Japan",
                                "lat": 35.68536, "long": 139.75309, "accuracy_radius_km": 100}})
        );
        // ASN only.
        assert_eq!(
            found(&mut e, "1.128.0.1"),
            json!({"autonomous_system": {"number": 1221, "name": "Telstra Pty Ltd"}})
        );
        // IPv4-mapped spelling finds the IPv4 record.
        assert_eq!(
            found(&mut e, "::ffff:81.2.69.142")["location"]["city"],
            "London"
        );
        assert_eq!(e.stats().unwrap().lookup_errors, 0);
    }

    /// The `location` block a GeoIP2 City record should give, read straight from the record
    /// as written: the oracle for [`CityRecord`]'s reading of the same record from a database.
    fn expected_location(record: &Value) -> Value {
        let mut loc = serde_json::Map::new();
        let mut put = |k: &str, v: Option<&Value>| {
            if let Some(v) = v {
                loc.insert(k.to_string(), v.clone());
            }
        };
        put("city", record.pointer("/city/names/en"));
        put("continent", record.pointer("/continent/names/en"));
        put("continent_code", record.pointer("/continent/code"));
        put("country", record.pointer("/country/iso_code"));
        put("country_name", record.pointer("/country/names/en"));
        if let Some(code) = record
            .pointer("/subdivisions/0/iso_code")
            .and_then(Value::as_str)
        {
            let region = match record.pointer("/country/iso_code").and_then(Value::as_str) {
                Some(c) => format!("{c}-{code}"),
                None => code.to_string(),
            };
            put("region", Some(&json!(region)));
        }
        put("region_name", record.pointer("/subdivisions/0/names/en"));
        if let (Some(lat), Some(long)) = (
            record.pointer("/location/latitude"),
            record.pointer("/location/longitude"),
        ) {
            put("lat", Some(lat));
            put("long", Some(long));
        }
        put(
            "accuracy_radius_km",
            record.pointer("/location/accuracy_radius"),
        );
        Value::Object(loc)
    }

    #[test]
    fn production_shaped_city_records_give_their_english_location() {
        // Records shaped as production City databases shape them (eight languages, postal
        // codes, time zones, registered countries), and records missing each part.
        let mut records: Vec<Value> = (0..40).map(mmdb::production_city_record).collect();
        records.extend([
            json!({"country": {"iso_code": "SE"}, "subdivisions": []}),
            json!({"city": {"names": {"de": "Wien"}}, "continent": {"code": "EU"}}),
            json!({"subdivisions": [{"iso_code": "A", "names": {"en": "First"}},
                                    {"iso_code": "B", "names": {"en": "Second"}}]}),
            json!({"location": {"latitude": 1.5, "accuracy_radius": 3}, "postal": {"code": "1"}}),
            json!({"postal": {"code": "1"}, "location": {"time_zone": "Europe/Vienna"}}),
        ]);
        let dir = definition_dir();
        let nets: Vec<(String, Value)> = records
            .iter()
            .enumerate()
            .map(|(i, r)| (format!("11.0.{i}.0/24"), r.clone()))
            .collect();
        let refs: Vec<(&str, Value)> = nets.iter().map(|(n, r)| (n.as_str(), r.clone())).collect();
        mmdb::write_mmdb(&dir.path().join("city.mmdb"), "Test-City", &refs).unwrap();
        let def: GeoDefinition = toml::from_str(
            "name = \"geo\"\nkind = \"geo\"\ncity = \"city.mmdb\"\nip_attributes = [\"src_endpoint.ip\"]\n",
        )
        .unwrap();
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        let reader = e.city.take().unwrap();
        for (i, record) in records.iter().enumerate() {
            let ip: IpAddr = format!("11.0.{i}.9").parse().unwrap();
            // What maxminddb's own model reads of it, for the production-shaped records: it
            // decodes, and names the city in every language the record holds.
            if i < 40 {
                let full = read::<geoip2::City>(&reader, ip).unwrap().unwrap();
                let names = full.city.names;
                assert!(names.german.is_some() && names.simplified_chinese.is_some());
            }
            let ours = read::<CityRecord>(&reader, ip).unwrap().unwrap();
            let block = location(&ours);
            assert_eq!(block, expected_location(record), "record {i}: {record}");
        }
        let block = location(
            &read::<CityRecord>(&reader, "11.0.8.1".parse().unwrap())
                .unwrap()
                .unwrap(),
        );
        assert_eq!(block["city"], "Munich");
        assert_eq!(block["region"], "DE-BY");
        assert_eq!(block["country_name"], "Germany");
        // A record with nothing the block shows is no answer (the database is the only one).
        e.city = Some(reader);
        let last = format!("11.0.{}.9", records.len() - 1);
        assert_eq!(e.lookup(last.parse().unwrap()), GeoLookup::NotFound);
        assert!(matches!(
            e.lookup("11.0.8.1".parse().unwrap()),
            GeoLookup::Found(_)
        ));
    }

    #[test]
    fn public_ip_without_record_is_a_miss() {
        let (dir, def) = fixture("");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(e.lookup("8.8.8.8".parse().unwrap()), GeoLookup::NotFound);
        assert_eq!(
            e.lookup("2a00:1450::1".parse().unwrap()),
            GeoLookup::NotFound
        );
        let mut out = EnrichOutput::default();
        e.enrich(
            &AlertView::new(&json!({"src_endpoint": {"ip": "8.8.8.8"}})),
            &mut out,
        );
        assert_eq!(
            out.misses,
            vec![Miss {
                attribute: "src_endpoint.ip".into(),
                value: "8.8.8.8".into(),
                enricher: "geo".into(),
                code: "geo_unknown"
            }]
        );
        assert!(out.enrichment.is_empty());
    }

    #[test]
    fn reserved_addresses_are_labelled_not_looked_up() {
        let (dir, def) = fixture("");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        for (ip, label) in [
            ("10.20.14.77", "private"),
            ("192.168.1.1", "private"),
            ("127.0.0.1", "loopback"),
            ("fe80::1", "link_local"),
            ("100.64.0.1", "cgnat"),
            ("::ffff:10.0.0.1", "private"),
            ("198.51.100.23", "documentation"),
            ("fd00::5", "unique_local"),
        ] {
            assert_eq!(
                e.lookup(ip.parse().unwrap()),
                GeoLookup::Reserved(label),
                "{ip}"
            );
        }
        assert_eq!(
            counts(&e),
            (0, 0),
            "reserved addresses never reach the cache"
        );

        let mut out = EnrichOutput::default();
        e.enrich(&AlertView::new(&json!({"src_endpoint": {"ip": "10.20.14.77"}, "dst_endpoint": {"ip": "::ffff:10.0.0.1"}})), &mut out);
        assert_eq!(out.enrichment.len(), 2);
        assert_eq!(out.enrichment[0].source, RESERVED_SOURCE);
        assert_eq!(
            *out.enrichment[0].data,
            json!({"internal": true, "range": "private"})
        );
        assert_eq!(&*out.enrichment[1].attribute, "dst_endpoint.ip");
        assert_eq!(out.enrichment[1].value, "::ffff:10.0.0.1");
        assert!(out.misses.is_empty());
        // The data of a range is made once and shared; each range has its own.
        assert!(std::ptr::eq(
            out.enrichment[0].data.value(),
            out.enrichment[1].data.value()
        ));
        let mut out = EnrichOutput::default();
        e.enrich(
            &AlertView::new(&json!({"src_endpoint": {"ip": "127.0.0.1"}})),
            &mut out,
        );
        assert_eq!(
            *out.enrichment[0].data,
            json!({"internal": true, "range": "loopback"})
        );
        assert_eq!(e.reserved.len(), 2);
    }

    #[test]
    fn cache_counts_hits_and_misses_for_found_and_unknown() {
        let (dir, def) = fixture("cache_size = 2");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        let first = e.lookup(ip("81.2.69.142"));
        let again = e.lookup(ip("81.2.69.142"));
        e.lookup(ip("8.8.8.8"));
        e.lookup(ip("8.8.8.8"));
        assert_eq!(counts(&e), (2, 2));
        // A hit carries the text the miss wrote, which parses to the same record.
        let (GeoLookup::Found(first), GeoLookup::Found(again)) = (first, again) else {
            panic!("81.2.69.142 is in the City test database");
        };
        assert_eq!(again.text(), first.text());
        assert_eq!(*again, *first);
        assert!(first["location"]["lat"].is_f64());
        // Capacity 2: a third address evicts the least recently used (81.2.69.142).
        e.lookup(ip("89.160.20.112"));
        e.lookup(ip("81.2.69.142"));
        assert_eq!(counts(&e), (2, 4));
        let s = e.stats().unwrap();
        assert_eq!((s.entries, s.capacity), (2, 2), "full, one evicted");
        e.lookup(ip("::ffff:81.2.69.142"));
        assert_eq!(
            counts(&e),
            (3, 4),
            "mapped spelling shares the IPv4 cache entry"
        );

        let (dir, def) = fixture("cache_size = 0");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        e.lookup(ip("81.2.69.142"));
        e.lookup(ip("81.2.69.142"));
        assert_eq!(counts(&e), (0, 2));
        let s = e.stats().unwrap();
        assert_eq!((s.entries, s.capacity), (0, 0), "no cache holds nothing");
    }

    #[test]
    fn enrich_orders_by_attributes_and_looks_up_once() {
        let (dir, def) = fixture("");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        let alert = json!({"device": {"ip": "81.2.69.142"}, "dst_endpoint": {"ip": "10.1.1.1"},
                           "src_endpoint": {"ip": "81.2.69.142"}, "unmapped": {"ip": "1.1.1.1"}});
        let mut out = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut out);
        let got: Vec<(&str, &str)> = out
            .enrichment
            .iter()
            .map(|x| (&*x.attribute, x.source.as_str()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("src_endpoint.ip", e.source()),
                ("dst_endpoint.ip", RESERVED_SOURCE)
            ]
        );
        assert_eq!(counts(&e), (0, 1));
        let mut again = EnrichOutput::default();
        e.enrich(&AlertView::new(&alert), &mut again);
        assert_eq!(out, again);
        assert_eq!(counts(&e), (1, 1));
    }

    #[test]
    fn anonymous_ip_flags() {
        let (dir, def) = fixture("anonymous_ip = \"anon.mmdb\"");
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        let v = found(&mut e, "81.2.69.142");
        assert_eq!(
            v["anonymous"],
            json!({"is_anonymous": true, "is_anonymous_vpn": true, "is_hosting_provider": true, "is_public_proxy": true,
                   "is_residential_proxy": true, "is_tor_exit_node": true})
        );
        assert_eq!(v["location"]["city"], "London");
        // Known to City but not to Anonymous-IP: every flag false.
        assert_eq!(
            found(&mut e, "89.160.20.112")["anonymous"]["is_anonymous"],
            false
        );
        // Only in Anonymous-IP: still an answer.
        assert_eq!(
            found(&mut e, "1.124.213.1"),
            json!({"anonymous": {"is_anonymous": true, "is_anonymous_vpn": true, "is_hosting_provider": false,
                                 "is_public_proxy": false, "is_residential_proxy": false, "is_tor_exit_node": true}})
        );
    }

    #[test]
    fn data_version_is_the_sha256_of_the_files() {
        let (dir, def) = fixture("");
        let e = GeoEnricher::open(&def, dir.path()).unwrap();
        let mut h = Sha256::new();
        h.update(std::fs::read(dir.path().join("city.mmdb")).unwrap());
        h.update(std::fs::read(dir.path().join("asn.mmdb")).unwrap());
        assert_eq!(
            e.data_version(),
            format!("sha256:{}", hex::encode(h.finalize()))
        );
        assert_eq!(e.kind(), "geo");
    }

    #[test]
    fn not_a_database_is_a_load_error() {
        let dir = definition_dir();
        write(dir.path(), "city.mmdb", "not an mmdb");
        let def: GeoDefinition =
            toml::from_str("name = \"geo\"\nkind = \"geo\"\ncity = \"city.mmdb\"\n").unwrap();
        let err = GeoEnricher::open(&def, dir.path())
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("city.mmdb: not a readable MaxMind DB"),
            "{err}"
        );
    }

    #[test]
    fn a_record_that_does_not_decode_is_a_lookup_error_not_an_answer() {
        // `accuracy_radius` stored as a uint64 (serde's width for every integer), where
        // MaxMind's files store a uint16: the reader rejects the record.
        let dir = definition_dir();
        let mut writer = mmdb_writer::Writer::builder("Test-City").build();
        let record = json!({"country": {"iso_code": "SE"}, "location": {"accuracy_radius": 5}});
        writer
            .insert(
                "11.0.0.0/24".parse::<mmdb_writer::ipnet::IpNet>().unwrap(),
                &record,
            )
            .unwrap();
        std::fs::write(dir.path().join("city.mmdb"), writer.to_bytes().unwrap()).unwrap();
        let def: GeoDefinition = toml::from_str(
            "name = \"geo\"\nkind = \"geo\"\ncity = \"city.mmdb\"\ncache_size = 0\n",
        )
        .unwrap();
        let mut e = GeoEnricher::open(&def, dir.path()).unwrap();
        assert_eq!(e.lookup("11.0.0.1".parse().unwrap()), GeoLookup::NotFound);
        assert_eq!(e.lookup("11.0.0.2".parse().unwrap()), GeoLookup::NotFound);
        assert_eq!(e.stats().unwrap().lookup_errors, 2);
    }
}
