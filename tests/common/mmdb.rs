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
use std::collections::HashMap;
use std::error::Error;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

/// A copy of the repository's `enrichers/` directory (definitions, and the example CMDB and
/// directory under `data/`) in `dir`, with the test City and ASN databases written under the
/// file names its `geo.toml` gives: the reference data as deployed, geo included instead of
/// left out for want of MaxMind's files. Returns the copy's path.
pub fn deployed_enrichers(dir: &Path) -> std::path::PathBuf {
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("enrichers");
    let to = dir.join("enrichers");
    for sub in ["", "data"] {
        std::fs::create_dir_all(to.join(sub)).unwrap();
        for entry in std::fs::read_dir(from.join(sub)).unwrap() {
            let path = entry.unwrap().path();
            if path.is_file() {
                std::fs::copy(&path, to.join(sub).join(path.file_name().unwrap())).unwrap();
            }
        }
    }
    write_test_city_db(&to.join("data/GeoLite2-City.mmdb")).unwrap();
    write_test_asn_db(&to.join("data/GeoLite2-ASN.mmdb")).unwrap();
    to
}

/// Build epoch written into every test database's metadata.
pub const BUILD_EPOCH: u64 = 1_700_000_000;

/// Write an IPv6 (IPv4 reachable) database of `(network, record)` pairs. Records are JSON
/// values: objects become MMDB maps, non-negative integers unsigned integers of the width
/// GeoIP2 databases use for the member ([`typed`]), other numbers doubles.
pub fn write_mmdb(
    path: &Path,
    database_type: &str,
    records: &[(&str, Value)],
) -> Result<(), Box<dyn Error>> {
    write_networks(path, database_type, records.iter().map(|(n, r)| (*n, r)))
}

/// [`write_mmdb`] from `(network, record)` pairs as they come, so that a database of millions
/// of networks sharing a few records needs no copy of a record per network.
pub fn write_networks<'r, N: AsRef<str>>(
    path: &Path,
    database_type: &str,
    records: impl IntoIterator<Item = (N, &'r Value)>,
) -> Result<(), Box<dyn Error>> {
    let mut writer = Writer::builder(database_type)
        .languages(["en"])
        .description(&[("en", "alertctx test database")])
        .build_epoch(UNIX_EPOCH + Duration::from_secs(BUILD_EPOCH))
        .build();
    // Records shared by many networks are converted once.
    let mut converted: HashMap<*const Value, mmdb_writer::Value> = HashMap::new();
    for (network, record) in records {
        let value = converted
            .entry(record as *const Value)
            .or_insert_with(|| typed(record, ""))
            .clone();
        writer.insert_value(network.as_ref().parse::<IpNet>()?, value)?;
    }
    std::fs::write(path, writer.to_bytes()?)?;
    Ok(())
}

/// A JSON record as MaxMind's own databases type it: unsigned integers as `uint16` where
/// GeoIP2 stores them so (`accuracy_radius`, `metro_code`), `uint32` otherwise (`geoname_id`,
/// `autonomous_system_number`), `uint64` only beyond that; other numbers as doubles. (Written
/// through serde, every integer would be a `uint64`, which a strict reader rejects for a
/// `u16` field.) `key` is the member the value is held under.
fn typed(v: &Value, key: &str) -> mmdb_writer::Value {
    use mmdb_writer::Value as M;
    match v {
        Value::String(s) => M::String(s.clone()),
        Value::Bool(b) => M::Bool(*b),
        Value::Number(n) => match n.as_u64() {
            Some(u) if matches!(key, "accuracy_radius" | "metro_code") => {
                M::U16(u16::try_from(u).expect("a uint16 field"))
            }
            Some(u) => u32::try_from(u).map(M::U32).unwrap_or(M::U64(u)),
            None => M::Double(n.as_f64().expect("a number")),
        },
        Value::Array(items) => M::Array(items.iter().map(|i| typed(i, key)).collect()),
        Value::Object(map) => M::Map(map.iter().map(|(k, v)| (k.clone(), typed(v, k))).collect()),
        Value::Null => panic!("MMDB has no null (under `{key}`)"),
    }
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

/// The languages a GeoLite2/GeoIP2 City record names every place in, in this order.
pub const LANGUAGES: [&str; 8] = ["de", "en", "es", "fr", "ja", "pt-BR", "ru", "zh-CN"];

/// A place's names in [`LANGUAGES`]' order.
type Names = [&'static str; 8];

/// A city as a production City database describes it: every place named in eight
/// languages, with the country's continent and first subdivision.
struct World {
    city: Names,
    subdivision: (&'static str, Names),
    country: (&'static str, Names),
    continent: (&'static str, Names),
    lat_long: (f64, f64),
    time_zone: &'static str,
    in_eu: bool,
}

#[rustfmt::skip]
const EUROPE: (&str, Names) = ("EU", ["Europa", "Europe", "Europa", "Europe", "ヨーロッパ", "Europa", "Европа", "欧洲"]);
#[rustfmt::skip]
const NORTH_AMERICA: (&str, Names) = ("NA", ["Nordamerika", "North America", "Norteamérica", "Amérique du Nord", "北アメリカ", "América do Norte", "Северная Америка", "北美洲"]);
#[rustfmt::skip]
const ASIA: (&str, Names) = ("AS", ["Asien", "Asia", "Asia", "Asie", "アジア", "Ásia", "Азия", "亚洲"]);
#[rustfmt::skip]
const SOUTH_AMERICA: (&str, Names) = ("SA", ["Südamerika", "South America", "Sudamérica", "Amérique du Sud", "南アメリカ", "América do Sul", "Южная Америка", "南美洲"]);
#[rustfmt::skip]
const OCEANIA: (&str, Names) = ("OC", ["Ozeanien", "Oceania", "Oceanía", "Océanie", "オセアニア", "Oceania", "Океания", "大洋洲"]);

#[rustfmt::skip]
const GERMANY: (&str, Names) = ("DE", ["Deutschland", "Germany", "Alemania", "Allemagne", "ドイツ連邦共和国", "Alemanha", "Германия", "德国"]);

/// Eight cities, each named as a production City database names it.
#[rustfmt::skip]
const WORLD: [World; 8] = [
    World {
        city: ["München", "Munich", "Múnich", "Munich", "ミュンヘン", "Munique", "Мюнхен", "慕尼黑"],
        subdivision: ("BY", ["Bayern", "Bavaria", "Baviera", "Bavière", "バイエルン州", "Baviera", "Бавария", "巴伐利亚"]),
        country: GERMANY,
        continent: EUROPE, lat_long: (48.137, 11.575), time_zone: "Europe/Berlin", in_eu: true,
    },
    World {
        city: ["Paris", "Paris", "París", "Paris", "パリ", "Paris", "Париж", "巴黎"],
        subdivision: ("IDF", ["Île-de-France", "Île-de-France", "Isla de Francia", "Île-de-France", "イル＝ド＝フランス地域圏", "Ilha de França", "Иль-де-Франс", "法兰西岛大区"]),
        country: ("FR", ["Frankreich", "France", "Francia", "France", "フランス共和国", "França", "Франция", "法国"]),
        continent: EUROPE, lat_long: (48.857, 2.352), time_zone: "Europe/Paris", in_eu: true,
    },
    World {
        city: ["London", "London", "Londres", "Londres", "ロンドン", "Londres", "Лондон", "伦敦"],
        subdivision: ("ENG", ["England", "England", "Inglaterra", "Angleterre", "イングランド", "Inglaterra", "Англия", "英格兰"]),
        country: ("GB", ["Vereinigtes Königreich", "United Kingdom", "Reino Unido", "Royaume-Uni", "イギリス", "Reino Unido", "Великобритания", "英国"]),
        continent: EUROPE, lat_long: (51.507, -0.128), time_zone: "Europe/London", in_eu: false,
    },
    World {
        city: ["Boston", "Boston", "Boston", "Boston", "ボストン", "Boston", "Бостон", "波士顿"],
        subdivision: ("MA", ["Massachusetts", "Massachusetts", "Massachusetts", "Massachusetts", "マサチューセッツ州", "Massachusetts", "Массачусетс", "马萨诸塞州"]),
        country: ("US", ["USA", "United States", "Estados Unidos", "États Unis", "アメリカ合衆国", "EUA", "США", "美国"]),
        continent: NORTH_AMERICA, lat_long: (42.360, -71.058), time_zone: "America/New_York", in_eu: false,
    },
    World {
        city: ["Osaka", "Osaka", "Osaka", "Osaka", "大阪市", "Osaka", "Осака", "大阪"],
        subdivision: ("27", ["Präfektur Osaka", "Osaka", "Osaka", "Préfecture d'Osaka", "大阪府", "Osaka", "Осака", "大阪府"]),
        country: ("JP", ["Japan", "Japan", "Japón", "Japon", "日本", "Japão", "Япония", "日本"]),
        continent: ASIA, lat_long: (34.694, 135.502), time_zone: "Asia/Tokyo", in_eu: false,
    },
    World {
        city: ["São Paulo", "São Paulo", "São Paulo", "São Paulo", "サンパウロ", "São Paulo", "Сан-Паулу", "圣保罗"],
        subdivision: ("SP", ["São Paulo", "São Paulo", "São Paulo", "São Paulo", "サンパウロ州", "São Paulo", "Сан-Паулу", "圣保罗州"]),
        country: ("BR", ["Brasilien", "Brazil", "Brasil", "Brésil", "ブラジル連邦共和国", "Brasil", "Бразилия", "巴西"]),
        continent: SOUTH_AMERICA, lat_long: (-23.550, -46.633), time_zone: "America/Sao_Paulo", in_eu: false,
    },
    World {
        city: ["Sydney", "Sydney", "Sídney", "Sydney", "シドニー", "Sydney", "Сидней", "悉尼"],
        subdivision: ("NSW", ["New South Wales", "New South Wales", "Nueva Gales del Sur", "Nouvelle-Galles du Sud", "ニューサウスウェールズ州", "Nova Gales do Sul", "Новый Южный Уэльс", "新南威尔士州"]),
        country: ("AU", ["Australien", "Australia", "Australia", "Australie", "オーストラリア", "Austrália", "Австралия", "澳大利亚"]),
        continent: OCEANIA, lat_long: (-33.869, 151.209), time_zone: "Australia/Sydney", in_eu: false,
    },
    World {
        city: ["Berlin", "Berlin", "Berlín", "Berlin", "ベルリン", "Berlim", "Берлин", "柏林"],
        subdivision: ("BE", ["Berlin", "Land Berlin", "Berlín", "Berlin", "ベルリン", "Berlim", "Берлин", "柏林"]),
        country: GERMANY,
        continent: EUROPE, lat_long: (52.520, 13.405), time_zone: "Europe/Berlin", in_eu: true,
    },
];

fn names(n: &Names) -> Value {
    Value::Object(
        LANGUAGES
            .iter()
            .zip(n)
            .map(|(lang, name)| (lang.to_string(), json!(name)))
            .collect(),
    )
}

/// The `i`-th of a set of City records shaped as a production GeoLite2/GeoIP2 City database
/// shapes them (every place named in eight languages; `postal`, `time_zone`, `metro_code`,
/// `is_in_european_union`, `registered_country`), so that reading one costs what it costs
/// there. Records differ in their coordinates, postal code and ids (so a database of many is
/// not one record pointed at from every network); places repeat every eight.
pub fn production_city_record(i: usize) -> Value {
    let w = &WORLD[i % WORLD.len()];
    let k = (i / WORLD.len()) as f64;
    let country = |c: &(&str, Names), id: u64| {
        let mut v = json!({"geoname_id": id, "iso_code": c.0, "names": names(&c.1)});
        if w.in_eu {
            v["is_in_european_union"] = json!(true);
        }
        v
    };
    let country_id = 2_900_000 + (i % WORLD.len()) as u64;
    let mut record = json!({
        "city": {"geoname_id": 3_000_000 + i as u64, "names": names(&w.city)},
        "continent": {"code": w.continent.0, "geoname_id": 6_255_140 + (i % 5) as u64, "names": names(&w.continent.1)},
        "country": country(&w.country, country_id),
        "registered_country": country(&w.country, country_id),
        "location": {
            "accuracy_radius": 5 + (i % 200) as u64,
            "latitude": w.lat_long.0 + (k * 0.001) % 1.0,
            "longitude": w.lat_long.1 + (k * 0.0007) % 1.0,
            "time_zone": w.time_zone,
        },
        "postal": {"code": format!("{:05}", (i * 37) % 100_000)},
        "subdivisions": [{"geoname_id": 2_800_000 + (i % WORLD.len()) as u64, "iso_code": w.subdivision.0, "names": names(&w.subdivision.1)}],
    });
    if w.country.0 == "US" {
        record["location"]["metro_code"] = json!(506);
    }
    record
}
