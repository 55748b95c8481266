//! Classifies IP addresses against the IANA special-purpose address registries (RFC 6890 and
//! its updates) so that geo lookups skip addresses no geo database can place, and the asset
//! enricher can tell an internal address from a public one.
//!
//! [`classify`] returns a short label (`private`, `loopback`, `cgnat`, ...) for any address that
//! is not globally reachable, and `None` for a global one. The tables below are the whole
//! policy: the most specific matching entry wins, and an entry with no label marks a block
//! inside a special-purpose range that the registry lists as globally reachable (for example
//! the PCP and TURN anycast addresses inside 192.0.0.0/24).
//!
//! IPv4-mapped IPv6 addresses (`::ffff:a.b.c.d`) are classified by their IPv4 address, so
//! `::ffff:10.0.0.1` is `private` and `::ffff:8.8.8.8` is global. In IPv6, everything outside
//! global unicast (`2000::/3`) that has no more specific entry is `reserved`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One IPv4 table row: network, prefix length, label (`None`: globally reachable).
type V4Entry = (Ipv4Addr, u8, Option<&'static str>);
/// One IPv6 table row: network, prefix length, label (`None`: globally reachable).
type V6Entry = (Ipv6Addr, u8, Option<&'static str>);

/// IPv4 special-purpose blocks (IANA IPv4 Special-Purpose Address Registry, plus multicast
/// and the former class E space).
const V4: &[V4Entry] = &[
    (Ipv4Addr::new(0, 0, 0, 0), 8, Some("this_network")),
    (Ipv4Addr::new(0, 0, 0, 0), 32, Some("unspecified")),
    (Ipv4Addr::new(10, 0, 0, 0), 8, Some("private")),
    (Ipv4Addr::new(100, 64, 0, 0), 10, Some("cgnat")),
    (Ipv4Addr::new(127, 0, 0, 0), 8, Some("loopback")),
    (Ipv4Addr::new(169, 254, 0, 0), 16, Some("link_local")),
    (Ipv4Addr::new(172, 16, 0, 0), 12, Some("private")),
    (Ipv4Addr::new(192, 0, 0, 0), 24, Some("ietf_protocol")),
    // Port Control Protocol anycast and TURN anycast: globally reachable.
    (Ipv4Addr::new(192, 0, 0, 9), 32, None),
    (Ipv4Addr::new(192, 0, 0, 10), 32, None),
    (Ipv4Addr::new(192, 0, 2, 0), 24, Some("documentation")),
    (Ipv4Addr::new(192, 88, 99, 0), 24, Some("6to4_relay")),
    (Ipv4Addr::new(192, 168, 0, 0), 16, Some("private")),
    (Ipv4Addr::new(198, 18, 0, 0), 15, Some("benchmarking")),
    (Ipv4Addr::new(198, 51, 100, 0), 24, Some("documentation")),
    (Ipv4Addr::new(203, 0, 113, 0), 24, Some("documentation")),
    (Ipv4Addr::new(224, 0, 0, 0), 4, Some("multicast")),
    (Ipv4Addr::new(233, 252, 0, 0), 24, Some("documentation")),
    (Ipv4Addr::new(240, 0, 0, 0), 4, Some("reserved")),
    (Ipv4Addr::new(255, 255, 255, 255), 32, Some("broadcast")),
];

/// IPv6 special-purpose blocks (IANA IPv6 Special-Purpose Address Registry, plus multicast,
/// the deprecated site-local block and the space outside global unicast).
const V6: &[V6Entry] = &[
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0), 0, Some("reserved")),
    (
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 0),
        128,
        Some("unspecified"),
    ),
    (Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1), 128, Some("loopback")),
    (Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, 0, 0), 96, None), // NAT64 well-known prefix
    (
        Ipv6Addr::new(0x64, 0xff9b, 1, 0, 0, 0, 0, 0),
        48,
        Some("nat64_local"),
    ),
    (
        Ipv6Addr::new(0x100, 0, 0, 0, 0, 0, 0, 0),
        64,
        Some("discard"),
    ),
    (Ipv6Addr::new(0x100, 0, 0, 1, 0, 0, 0, 0), 64, Some("dummy")),
    (Ipv6Addr::new(0x2000, 0, 0, 0, 0, 0, 0, 0), 3, None), // global unicast
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        23,
        Some("ietf_protocol"),
    ),
    (
        Ipv6Addr::new(0x2001, 0, 0, 0, 0, 0, 0, 0),
        32,
        Some("teredo"),
    ),
    // Anycast and AS112/AMT/ORCHIDv2/DET blocks the registry marks globally reachable.
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 1), 128, None),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 2), 128, None),
    (Ipv6Addr::new(0x2001, 1, 0, 0, 0, 0, 0, 3), 128, None),
    (
        Ipv6Addr::new(0x2001, 2, 0, 0, 0, 0, 0, 0),
        48,
        Some("benchmarking"),
    ),
    (Ipv6Addr::new(0x2001, 3, 0, 0, 0, 0, 0, 0), 32, None),
    (Ipv6Addr::new(0x2001, 4, 0x112, 0, 0, 0, 0, 0), 48, None),
    (
        Ipv6Addr::new(0x2001, 0x10, 0, 0, 0, 0, 0, 0),
        28,
        Some("reserved"),
    ), // ORCHID (deprecated)
    (Ipv6Addr::new(0x2001, 0x20, 0, 0, 0, 0, 0, 0), 28, None),
    (Ipv6Addr::new(0x2001, 0x30, 0, 0, 0, 0, 0, 0), 28, None),
    (
        Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0),
        32,
        Some("documentation"),
    ),
    (
        Ipv6Addr::new(0x3fff, 0, 0, 0, 0, 0, 0, 0),
        20,
        Some("documentation"),
    ),
    (
        Ipv6Addr::new(0x5f00, 0, 0, 0, 0, 0, 0, 0),
        16,
        Some("segment_routing"),
    ),
    (
        Ipv6Addr::new(0xfc00, 0, 0, 0, 0, 0, 0, 0),
        7,
        Some("unique_local"),
    ),
    (
        Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 0),
        10,
        Some("link_local"),
    ),
    (
        Ipv6Addr::new(0xfec0, 0, 0, 0, 0, 0, 0, 0),
        10,
        Some("site_local"),
    ),
    (
        Ipv6Addr::new(0xff00, 0, 0, 0, 0, 0, 0, 0),
        8,
        Some("multicast"),
    ),
];

/// The reserved-range label of a non-global address, `None` for a globally reachable one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => classify_v4(v4),
            None => classify_v6(v6),
        },
    }
}

/// Whether a label names address space an organisation uses for its own hosts (RFC 1918,
/// shared CGNAT space, IPv6 unique local): an asset inventory is expected to know these.
pub fn is_internal_use(label: &str) -> bool {
    matches!(label, "private" | "cgnat" | "unique_local")
}

/// For each first octet, the entries of [`V4`] that cover any address starting with it, as a
/// range of the table: `V4` is in address order, so they lie together (test
/// `the_first_octet_ranges_never_change_an_answer`). Most addresses an alert names are global
/// ones whose first octet no entry covers (an empty range); the rest go through one to four
/// entries. Trying the whole table took about 415 instructions a lookup, this about 90.
const V4_BY_FIRST_OCTET: [(u8, u8); 256] = {
    let mut ranges = [(0u8, 0u8); 256];
    let mut i = 0;
    while i < V4.len() {
        let (net, len, _) = V4[i];
        let first = (net.to_bits() >> 24) as usize;
        let span = if len >= 8 { 1 } else { 1 << (8 - len) };
        let mut k = 0;
        while k < span {
            let r = &mut ranges[first + k];
            if r.0 == r.1 {
                *r = (i as u8, i as u8 + 1);
            } else {
                r.1 = i as u8 + 1;
            }
            k += 1;
        }
        i += 1;
    }
    ranges
};

// The ranges index `V4` with bytes.
const _: () = assert!(V4.len() < u8::MAX as usize);

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let bits = ip.to_bits();
    let (from, to) = V4_BY_FIRST_OCTET[(bits >> 24) as usize];
    longest(
        V4[usize::from(from)..usize::from(to)]
            .iter()
            .map(|&(net, len, label)| {
                let mask = if len == 0 {
                    0
                } else {
                    u32::MAX << (32 - u32::from(len))
                };
                (bits & mask == net.to_bits(), len, label)
            }),
    )
}

fn classify_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let bits = ip.to_bits();
    longest(V6.iter().map(|&(net, len, label)| {
        let mask = if len == 0 {
            0
        } else {
            u128::MAX << (128 - u32::from(len))
        };
        (bits & mask == net.to_bits(), len, label)
    }))
}

/// The label of the longest matching entry (`None` when it is a global entry or none match).
fn longest(
    entries: impl Iterator<Item = (bool, u8, Option<&'static str>)>,
) -> Option<&'static str> {
    entries
        .filter(|&(hit, _, _)| hit)
        .max_by_key(|&(_, len, _)| len)
        .and_then(|(_, _, label)| label)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Option<&'static str> {
        classify(s.parse().unwrap())
    }

    #[test]
    fn the_first_octet_ranges_never_change_an_answer() {
        // The whole table, as classify_v4 read it before the first-octet ranges.
        let by_table = |ip: Ipv4Addr| {
            let bits = ip.to_bits();
            longest(V4.iter().map(|&(net, len, label)| {
                let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
                (bits & mask == net.to_bits(), len, label)
            }))
        };
        let mut addresses = Vec::new();
        for first in 0..=255u8 {
            for rest in [
                [0, 0, 0],
                [0, 0, 1],
                [0, 0, 9],
                [0, 2, 0],
                [64, 0, 1],
                [255, 255, 255],
            ] {
                addresses.push(Ipv4Addr::new(first, rest[0], rest[1], rest[2]));
            }
        }
        for &(net, len, _) in V4 {
            let host = u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
            addresses.push(net);
            addresses.push(Ipv4Addr::from_bits(net.to_bits() | host));
            addresses.push(Ipv4Addr::from_bits((net.to_bits() | host).wrapping_add(1)));
            addresses.push(Ipv4Addr::from_bits(net.to_bits().wrapping_sub(1)));
        }
        let mut labelled = 0;
        for ip in addresses {
            assert_eq!(classify_v4(ip), by_table(ip), "{ip}");
            labelled += usize::from(by_table(ip).is_some());
        }
        assert!(
            labelled > 200,
            "the sweep reaches the table's entries: {labelled}"
        );
    }

    #[test]
    fn tables_hold_network_addresses() {
        for &(net, len, _) in V4 {
            let mask = if len == 0 {
                0
            } else {
                u32::MAX << (32 - u32::from(len))
            };
            assert_eq!(
                net.to_bits() & mask,
                net.to_bits(),
                "{net}/{len} has host bits"
            );
        }
        for &(net, len, _) in V6 {
            let mask = if len == 0 {
                0
            } else {
                u128::MAX << (128 - u32::from(len))
            };
            assert_eq!(
                net.to_bits() & mask,
                net.to_bits(),
                "{net}/{len} has host bits"
            );
        }
    }

    #[test]
    fn ipv4_special_purpose_ranges() {
        let cases = [
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("this_network")),
            ("10.0.0.1", Some("private")),
            ("10.255.255.255", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("172.32.0.1", None),
            ("192.168.1.10", Some("private")),
            ("100.64.0.1", Some("cgnat")),
            ("100.127.255.255", Some("cgnat")),
            ("100.128.0.1", None),
            ("127.0.0.1", Some("loopback")),
            ("169.254.10.20", Some("link_local")),
            ("192.0.0.8", Some("ietf_protocol")),
            ("192.0.0.9", None),
            ("192.0.0.10", None),
            ("192.0.2.44", Some("documentation")),
            ("198.51.100.23", Some("documentation")),
            ("203.0.113.7", Some("documentation")),
            ("192.88.99.1", Some("6to4_relay")),
            ("198.18.0.1", Some("benchmarking")),
            ("198.19.255.255", Some("benchmarking")),
            ("198.20.0.1", None),
            ("224.0.0.251", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("233.252.0.1", Some("documentation")),
            ("240.0.0.1", Some("reserved")),
            ("255.255.255.254", Some("reserved")),
            ("255.255.255.255", Some("broadcast")),
            ("8.8.8.8", None),
            ("81.2.69.142", None),
            ("1.1.1.1", None),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_special_purpose_ranges() {
        let cases = [
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("::2", Some("reserved")),
            ("fe80::1", Some("link_local")),
            ("febf::1", Some("link_local")),
            ("fec0::1", Some("site_local")),
            ("fc00::1", Some("unique_local")),
            ("fd12:3456::1", Some("unique_local")),
            ("ff02::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("2001::1", Some("teredo")),
            ("2001:2::1", Some("benchmarking")),
            ("2001:1::1", None),
            ("2001:4:112::1", None),
            ("2001:1ff::1", Some("ietf_protocol")),
            ("2001:200::1", None),
            ("2001:218::1", None),
            ("100::1", Some("discard")),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::1", Some("nat64_local")),
            ("5f00::1", Some("segment_routing")),
            ("2a00:1450:4001::1", None),
            ("4000::1", Some("reserved")),
            ("e000::1", Some("reserved")),
        ];
        for (ip, want) in cases {
            assert_eq!(c(ip), want, "{ip}");
        }
    }

    #[test]
    fn ipv4_mapped_addresses_take_their_ipv4_label() {
        assert_eq!(c("::ffff:10.0.0.1"), Some("private"));
        assert_eq!(c("::ffff:127.0.0.1"), Some("loopback"));
        assert_eq!(c("::ffff:100.64.0.1"), Some("cgnat"));
        assert_eq!(c("::ffff:8.8.8.8"), None);
    }

    #[test]
    fn internal_use_labels() {
        assert!(is_internal_use("private"));
        assert!(is_internal_use("cgnat"));
        assert!(is_internal_use("unique_local"));
        assert!(!is_internal_use("loopback"));
        assert!(!is_internal_use("documentation"));
    }
}
