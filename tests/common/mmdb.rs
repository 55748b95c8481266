//! Builds small MaxMind DB (`.mmdb`) files for tests, so no test depends on MaxMind's own
//! test databases. Records are written with the `mmdb-writer` dev-dependency and read back by
//! the `maxminddb` crate like any GeoIP2/GeoLite2 file.
//!
//! Shared by the unit tests in `src/enrich/` (through `src/enrich/testutil.rs`) and by
//! integration tests, which include it with
//!
//! ```ignore
//! #[path = "common/mmdb.rs"]
//! mod mmdb;
//! ```
//!
//! It uses only external crates, never `crate::` or `alertctx::` paths, so it compiles in both
//! places. The test databases hold a handful of networks with GeoIP2-shaped records (nested
//! `names` maps, `subdivisions` arrays, doubles for coordinates):
//!
//! | network | City (`Test-City`) | ASN (`Test-ASN`) | Anonymous-IP (`Test-Anonymous-IP`) |
//! |---|---|---|---|
//! | 81.2.69.142/31 | London, GB, England | - | every flag |
//! | 89.160.20.112/28 | Linköping, SE, Östergötland County | AS29518 Bredband2 AB | - |
//! | 2001:218::/32 | JP (country only) | - | - |
//! | 1.128.0.0/11 | - | AS1221 Telstra Pty Ltd | - |
//! | 1.124.213.1/32 | - | - | anonymous, VPN, Tor exit |
//!
//! 8.8.8.8 and 2a00:1450::/32 are in none of them.
#![allow(dead_code)]

use mmdb_writer::ipnet::IpNet;
use mmdb_writer::Writer;
use serde_json::{json, Value};
use std::error::Error;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// Build epoch written into every test database's metadata.
pub const BUILD_EPOCH: u64 = 1_700_000_000;

/// Write an IPv6 (IPv4 reachable) database of `(network, record)` pairs. Records are JSON
/// values: objects become MMDB maps, floats doubles, non-negative integers unsigned integers
/// (MMDB has no signed 64-bit type, so negative integers are rejected — use floats).
pub fn write_mmdb(
    path: &Path,
    database_type: &str,
    records: &[(&str, Value)],
) -> Result<(), Box<dyn Error>> {
    let mut writer = Writer::builder(database_type)
        .languages(["en"])
        .description(&[("en", "alertctx test database")])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH))
        .build();
    for (network, record) in records {
        writer.insert(network.parse::<IpNet>()?, record)?;
    }
    std::fs::write(path, writer.to_bytes()?)?;
    Ok(())
}

/// Where a City record places an address.
#[derive(Debug, Clone, Copy)]
pub struct Place<'a> {
    /// Continent code and English name, e.g. `("EU", "Europe")`.
    pub continent: (&'a str, &'a str),
    /// ISO 3166-1 code and English name.
    pub country: (&'a str, &'a str),
    /// First subdivision: ISO 3166-2 code (without the country) and English name.
    pub subdivision: Option<(&'a str, &'a str)>,
    /// English city name.
    pub city: Option<&'a str>,
    pub latitude: f64,
    pub longitude: f64,
    /// Kilometres.
    pub accuracy_radius: u16,
}

/// A GeoIP2-City-shaped record for a place.
pub fn city_record(p: &Place) -> Value {
    let mut record = json!({
        "continent": {"code": p.continent.0, "geoname_id": 6255148, "names": {"en": p.continent.1, "de": p.continent.1}},
        "country": {"iso_code": p.country.0, "geoname_id": 2635167, "names": {"en": p.country.1}},
        "registered_country": {"iso_code": p.country.0, "geoname_id": 2635167, "names": {"en": p.country.1}},
        "location": {"latitude": p.latitude, "longitude": p.longitude, "accuracy_radius": p.accuracy_radius,
                     "time_zone": "UTC"},
    });
    if let Some((code, name)) = p.subdivision {
        record["subdivisions"] =
            json!([{"iso_code": code, "geoname_id": 6269131, "names": {"en": name}}]);
    }
    if let Some(city) = p.city {
        record["city"] = json!({"geoname_id": 2643743, "names": {"en": city}});
    }
    record
}

/// `Test-City`: see the module table.
pub fn write_test_city_db(path: &Path) -> Result<(), Box<dyn Error>> {
    let london = Place {
        continent: ("EU", "Europe"),
        country: ("GB", "United Kingdom"),
        subdivision: Some(("ENG", "England")),
        city: Some("London"),
        latitude: 51.5142,
        longitude: -0.0931,
        accuracy_radius: 10,
    };
    let linkoping = Place {
        continent: ("EU", "Europe"),
        country: ("SE", "Sweden"),
        subdivision: Some(("E", "Östergötland County")),
        city: Some("Linköping"),
        latitude: 58.4167,
        longitude: 15.6167,
        accuracy_radius: 76,
    };
    let japan = Place {
        continent: ("AS", "Asia"),
        country: ("JP", "Japan"),
        subdivision: None,
        city: None,
        latitude: 35.68536,
        longitude: 139.75309,
        accuracy_radius: 100,
    };
    write_mmdb(
        path,
        "Test-City",
        &[
            ("81.2.69.142/31", city_record(&london)),
            ("89.160.20.112/28", city_record(&linkoping)),
            ("2001:218::/32", city_record(&japan)),
        ],
    )
}

/// `Test-ASN`: see the module table.
pub fn write_test_asn_db(path: &Path) -> Result<(), Box<dyn Error>> {
    let asn = |n: u32, org: &str| json!({"autonomous_system_number": n, "autonomous_system_organization": org});
    write_mmdb(
        path,
        "Test-ASN",
        &[
            ("89.160.20.112/28", asn(29518, "Bredband2 AB")),
            ("1.128.0.0/11", asn(1221, "Telstra Pty Ltd")),
        ],
    )
}

/// `Test-Anonymous-IP`: see the module table.
pub fn write_test_anonymous_ip_db(path: &Path) -> Result<(), Box<dyn Error>> {
    write_mmdb(
        path,
        "Test-Anonymous-IP",
        &[
            (
                "81.2.69.142/31",
                json!({"is_anonymous": true, "is_anonymous_vpn": true, "is_hosting_provider": true,
                       "is_public_proxy": true, "is_residential_proxy": true, "is_tor_exit_node": true}),
            ),
            (
                "1.124.213.1/32",
                json!({"is_anonymous": true, "is_anonymous_vpn": true, "is_tor_exit_node": true}),
            ),
        ],
    )
}
