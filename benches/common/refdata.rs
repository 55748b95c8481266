//! Production-sized reference data for the benchmarks: 100k assets, 100k users (the
//! generator's own user names among them, so its records hit the directory) and a City
//! database of about three million networks tiling the public IPv4 space, written
//! deterministically into `target/bench-data/v4/enrichers` on first use and reused after.

#[path = "../../tests/common/mmdb.rs"]
mod mmdb;

use std::path::{Path, PathBuf};

pub const ASSETS: usize = 100_000;
pub const USERS: usize = 100_000;
/// Networks in the City database: seven in every /19 of the public IPv4 space (the 215 first
/// octets the generator draws public addresses from).
pub const NETWORKS: usize = 215 * 2048 * 7;
/// Distinct records in the City database: a production file has a record per city and
/// postal area, each network pointing at one.
pub const CITY_RECORDS: usize = 100_000;

/// Reference data at production size, written once.
pub fn bench_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/v4");
    let defs = dir.join("enrichers");
    if defs.join("geo.toml").exists() {
        return defs;
    }
    std::fs::create_dir_all(defs.join("data")).unwrap();
    let mut assets = String::from(
        "asset_id,hostname,fqdn,ip,cidr,owner,business_unit,criticality,environment,os,tags\n",
    );
    for i in 0..ASSETS {
        let (b, c) = (i / 250 % 250, i % 250 + 2);
        let net = [10, 10, 10, 172][i % 4];
        assets.push_str(&format!(
            "A{i:06},host{i:06},host{i:06}.corp.example.com,{net}.{}.{b}.{c},,team{},bu{},{},prod,Windows 11,tag{}\n",
            i / 62_500 + 20,
            i % 97,
            i % 13,
            ["low", "medium", "high", "crown_jewel"][i % 4],
            i % 7
        ));
    }
    assets.push_str("SEG1,,,,10.0.0.0/8,infra,it,medium,prod,,segment\n");
    std::fs::write(defs.join("data/assets.csv"), assets).unwrap();
    let mut users = String::from("user_id,sam_account_name,upn,email,sid,display_name,department,title,manager,privileged,status,groups,domain\n");
    for i in 0..USERS {
        users.push_str(&format!(
            "u{i},user{i},user{i}@corp.example.com,user{i}@example.com,S-1-5-21-1-2-3-{},User {i},dept{},title,mgr,{},enabled,g{};h{},CORP\n",
            10_000 + i,
            i % 40,
            if i % 50 == 0 { "yes" } else { "no" },
            i % 9,
            i % 11
        ));
    }
    // The generator's own user names, so its records hit the directory too.
    for (i, u) in alertctx::generate::USERS.iter().enumerate() {
        users.push_str(&format!("g{i},{u},{u}@corp.example.com,,S-1-5-21-1111111111-2222222222-3333333333-{},{u},IT,,,no,enabled,,CORP\n", 1100 + i));
    }
    std::fs::write(defs.join("data/users.csv"), users).unwrap();
    for f in ["assets.toml", "users.toml"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("enrichers")
                .join(f),
            defs.join(f),
        )
        .unwrap();
    }
    write_big_city(&defs.join("data/city.mmdb"));
    std::fs::write(
        defs.join("geo.toml"),
        "name = \"geo\"\nkind = \"geo\"\ncity = \"data/city.mmdb\"\nip_attributes = [\"src_endpoint.ip\", \"dst_endpoint.ip\"]\ncache_size = 16384\n",
    )
    .unwrap();
    defs
}

/// A City database shaped as a production GeoLite2/GeoIP2 City file: networks of /21 to /23
/// that tile the whole public IPv4 space (so that, as in production, nearly every public
/// address has a record; the generator spreads its public addresses over that space), NETWORKS
/// of them, pointing at CITY_RECORDS distinct records shaped as production's
/// (`production_city_record`: every place named in eight languages, postal codes, time zones,
/// registered countries).
fn write_big_city(path: &Path) {
    // Each /19 is cut into seven networks, each aligned on its own size: /21, /22, /22, /21,
    // /23, /23, /22 (offsets in /24s: 0, 8, 12, 16, 24, 26, 28).
    const CUTS: [(u32, u32); 7] = [
        (0, 21),
        (8, 22),
        (12, 22),
        (16, 21),
        (24, 23),
        (26, 23),
        (28, 22),
    ];
    let mut nets = Vec::with_capacity(NETWORKS);
    for a in 1u32..224 {
        if [10, 100, 127, 169, 172, 192, 198, 203].contains(&a) {
            continue;
        }
        for block in 0..2048u32 {
            let base = (a << 24) | (block << 13);
            for (offset, len) in CUTS {
                let n = base | (offset << 8);
                nets.push(format!(
                    "{}.{}.{}.0/{len}",
                    n >> 24,
                    (n >> 16) & 255,
                    (n >> 8) & 255
                ));
            }
        }
    }
    assert_eq!(nets.len(), NETWORKS);
    let records: Vec<serde_json::Value> = (0..CITY_RECORDS)
        .map(mmdb::production_city_record)
        .collect();
    // Neighbouring networks point at different records, as a real file's do.
    let pairs = nets
        .iter()
        .enumerate()
        .map(|(i, net)| (net, &records[i * 7919 % CITY_RECORDS]));
    mmdb::write_networks(path, "Bench-City", pairs).unwrap();
}
