//! Production-sized reference data for the benchmarks: 100k assets, 100k users (the
//! generator's own user names among them, so its records hit the directory) and a City
//! database of a million /24 networks, written deterministically into
//! `target/bench-data/v1/enrichers` on first use and reused after.

#[path = "../../tests/common/mmdb.rs"]
mod mmdb;

use std::path::{Path, PathBuf};

pub const ASSETS: usize = 100_000;
pub const USERS: usize = 100_000;
pub const NETWORKS: usize = 1_000_000;

/// Reference data at production size, written once.
pub fn bench_data() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-data/v1");
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
        "name = \"geo\"\nkind = \"geo\"\ncity = \"data/city.mmdb\"\nip_attributes = [\"src_endpoint.ip\", \"dst_endpoint.ip\"]\ncache_size = 100000\n",
    )
    .unwrap();
    defs
}

/// A City database with NETWORKS /24 networks spread over the public IPv4 space.
fn write_big_city(path: &Path) {
    let places: Vec<serde_json::Value> = (0..64)
        .map(|i| {
            mmdb::city_record(&mmdb::Place {
                continent: ("EU", "Europe"),
                country: (
                    ["DE", "FR", "US", "JP"][i % 4],
                    ["Germany", "France", "United States", "Japan"][i % 4],
                ),
                subdivision: None,
                city: Some(["Berlin", "Paris", "Boston", "Osaka"][i % 4]),
                latitude: 10.0 + i as f64,
                longitude: 20.0 + i as f64,
                accuracy_radius: 50,
            })
        })
        .collect();
    let mut nets = Vec::with_capacity(NETWORKS);
    let mut n: u32 = 1 << 24; // 1.0.0.0
    while nets.len() < NETWORKS {
        let a = n >> 24;
        if ![10, 100, 127, 169, 172, 192, 198, 203].contains(&a) && a < 224 {
            nets.push((
                format!("{}.{}.{}.0/24", a, (n >> 16) & 255, (n >> 8) & 255),
                places[nets.len() % places.len()].clone(),
            ));
        }
        n += 256 * 3; // every third /24
    }
    let refs: Vec<(&str, serde_json::Value)> =
        nets.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    mmdb::write_mmdb(path, "Bench-City", &refs).unwrap();
}
