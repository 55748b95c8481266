//! Address text: dotted-quad IPv4 read by hand, for the places that parse an address of every
//! record (the mapping engine's `as = "ip"`, the enrichers' `parse_ip`). The standard parser,
//! general over address forms, took about 250 instructions an address; this reads exactly
//! what `Ipv4Addr`'s parser takes (test `ipv4_reads_what_the_standard_parser_reads`). IPv6
//! text is left to the standard parser.

/// Dotted-quad IPv4 text as `Ipv4Addr`'s parser reads it: four decimal octets of at most 255,
/// without leading zeros, and nothing else; read in one pass (see the module documentation).
pub fn ipv4(b: &[u8]) -> Option<std::net::Ipv4Addr> {
    let mut octets = [0u8; 4];
    let (mut at, mut value, mut digits) = (0usize, 0u32, 0u32);
    for &c in b {
        if c == b'.' {
            if digits == 0 || at == 3 {
                return None;
            }
            octets[at] = value as u8;
            (at, value, digits) = (at + 1, 0, 0);
        } else {
            let d = c.wrapping_sub(b'0');
            // Not a digit, a leading zero, or past 255.
            if d > 9 || (digits == 1 && value == 0) {
                return None;
            }
            value = value * 10 + u32::from(d);
            digits += 1;
            if value > 255 {
                return None;
            }
        }
    }
    if at != 3 || digits == 0 {
        return None;
    }
    octets[3] = value as u8;
    Some(std::net::Ipv4Addr::from(octets))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv4_reads_what_the_standard_parser_reads() {
        // Texts of up to fifteen characters, mostly digits and dots, that the sweep below
        // makes, dotted numbers, and the edges of the form.
        let alphabet = b"0123456789.:a -";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut texts: Vec<String> = [
            "0.0.0.0",
            "255.255.255.255",
            "256.0.0.0",
            "1.2.3.4",
            "01.2.3.4",
            "1.2.3.04",
            "1.2.3.00",
            "00.0.0.0",
            "1.2.3",
            "1.2.3.4.",
            ".1.2.3.4",
            "1..2.3",
            "999.1.1.1",
            "1.2.3.1000",
            "100.200.250.255",
            "10.0.0.1",
            "1.2.3.4.5",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        for _ in 0..200_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let len = (state % 16) as usize;
            let text: String = (0..len)
                .map(|i| {
                    let pick = (state.rotate_left(i as u32 * 5) % 22) as usize;
                    // Dots a little less often than digits, so that many texts have four parts.
                    alphabet[if pick >= alphabet.len() {
                        pick % 10
                    } else {
                        pick
                    }] as char
                })
                .collect();
            texts.push(text);
            // And dotted numbers: mostly four, some out of range, padded or missing.
            let parts = [3, 4, 4, 4, 4, 5][(state % 6) as usize];
            let text: Vec<String> = (0..parts)
                .map(|i| {
                    let r = state.rotate_left(i * 16);
                    let n = if r % 4 == 0 { r % 1000 } else { r % 256 };
                    match (r >> 12) % 20 {
                        0 => format!("0{n}"),
                        1 => String::new(),
                        _ => n.to_string(),
                    }
                })
                .collect();
            texts.push(text.join("."));
        }
        let mut accepted = 0;
        for t in &texts {
            let want = t.parse::<std::net::Ipv4Addr>().ok();
            assert_eq!(ipv4(t.as_bytes()), want, "{t:?}");
            accepted += usize::from(want.is_some());
        }
        assert!(
            accepted > 10_000,
            "the sweep makes valid addresses too: {accepted}"
        );
    }
}
