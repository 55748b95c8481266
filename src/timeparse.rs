//! Event-time parsing: every timestamp shape the sources write, to epoch milliseconds (OCSF
//! `timestamp_t`).
//!
//! Numbers are epochs whose unit is inferred from magnitude (s, ms, µs, ns). Strings may be
//! numeric epochs, RFC 3339 / ISO 8601 with or without a colon in the offset, naive
//! `YYYY-MM-DD hh:mm:ss[.f]` (read as UTC, the convention of NXLog and Sysmon `UtcTime`), or
//! CEF's `Mmm dd yyyy hh:mm:ss`.

use chrono::format::{parse, Item, Parsed, StrftimeItems};
use chrono::{DateTime, TimeZone, Utc};

/// Convert an epoch number of unknown unit to milliseconds.
pub fn epoch_to_ms(n: f64) -> Option<i64> {
    if !n.is_finite() || n < 0.0 {
        return None;
    }
    let ms = if n < 1e11 {
        n * 1e3
    } else if n < 1e14 {
        n
    } else if n < 1e17 {
        n / 1e3
    } else {
        n / 1e6
    };
    Some(ms.round() as i64)
}

const OFFSET_FORMATS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f%z",
    "%Y-%m-%dT%H:%M:%S%.f%:z",
    "%Y-%m-%d %H:%M:%S%.f%z",
    "%Y-%m-%d %H:%M:%S%.f %z",
];
const NAIVE_FORMATS: [&str; 7] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%b %d %Y %H:%M:%S%.f",
    "%b %e %Y %H:%M:%S",
    "%Y/%m/%d %H:%M:%S",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
];

/// The formats above, each parsed once: `parse_from_str` parses its format string again on
/// every call, and a record whose time is not RFC 3339 tries several of them.
struct Compiled {
    offset: Vec<Vec<Item<'static>>>,
    naive: Vec<Vec<Item<'static>>>,
}

fn compiled() -> &'static Compiled {
    static C: std::sync::LazyLock<Compiled> = std::sync::LazyLock::new(|| {
        let items = |f: &'static str| {
            StrftimeItems::new(f)
                .parse()
                .expect("the built-in time formats are valid")
        };
        Compiled {
            offset: OFFSET_FORMATS.into_iter().map(items).collect(),
            naive: NAIVE_FORMATS.into_iter().map(items).collect(),
        }
    });
    &C
}

/// Parse a timestamp string to epoch milliseconds.
pub fn parse_str_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return epoch_to_ms(s.parse::<f64>().ok()?);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    parse_formatted(s)
}

/// The first of the formats above that reads `s`: what `DateTime::parse_from_str` and
/// `NaiveDateTime::parse_from_str` would give, with the formats parsed already.
fn parse_formatted(s: &str) -> Option<i64> {
    let c = compiled();
    for items in &c.offset {
        let mut parsed = Parsed::new();
        if parse(&mut parsed, s, items.iter()).is_ok() {
            if let Ok(dt) = parsed.to_datetime() {
                return Some(dt.timestamp_millis());
            }
        }
    }
    let naive = s.strip_suffix('Z').unwrap_or(s);
    for items in &c.naive {
        let mut parsed = Parsed::new();
        if parse(&mut parsed, naive, items.iter()).is_ok() {
            if let Ok(dt) = parsed.to_naive_datetime_with_offset(0) {
                return Some(Utc.from_utc_datetime(&dt).timestamp_millis());
            }
        }
    }
    None
}

/// Render epoch milliseconds as RFC 3339 UTC with millisecond precision.
pub fn ms_to_rfc3339(ms: i64) -> String {
    match Utc.timestamp_millis_opt(ms) {
        chrono::LocalResult::Single(dt) => dt.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        _ => ms.to_string(),
    }
}

/// Parse a duration such as `10m`, `7d`, `30s`, `2h`, `500ms` into milliseconds.
pub fn parse_duration_ms(s: &str) -> Option<i64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (num, unit) = s.split_at(split);
    let n: i64 = num.parse().ok()?;
    let mult = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(mult)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The compiled formats give what chrono's `parse_from_str` gives with the format
    /// strings, for strings of every shape, valid and not.
    #[test]
    fn compiled_formats_agree_with_parse_from_str() {
        use chrono::NaiveDateTime;
        let reference = |s: &str| -> Option<i64> {
            for f in OFFSET_FORMATS {
                if let Ok(dt) = DateTime::parse_from_str(s, f) {
                    return Some(dt.timestamp_millis());
                }
            }
            let naive = s.strip_suffix('Z').unwrap_or(s);
            for f in NAIVE_FORMATS {
                if let Ok(dt) = NaiveDateTime::parse_from_str(naive, f) {
                    return Some(Utc.from_utc_datetime(&dt).timestamp_millis());
                }
            }
            None
        };
        let samples = [
            "2022-02-08T09:40:29.080710-0500",
            "2022-02-08 09:40:29.080710 -0500",
            "2022-02-08 09:40:29-0500",
            "2022-02-08 14:40:29.080",
            "2022-02-08 14:40:29Z",
            "Feb 08 2022 14:40:29",
            "Feb  8 2022 14:40:29",
            "Feb 08 2022 14:40:29.5",
            "2022/02/08 14:40:29",
            "02/08/2022 14:40:29",
            "2/8/2022 2:40:29 PM",
            "2/8/2022 2:40:29 XM",
            "2022-02-30 14:40:29",
            "2022-02-08 25:40:29",
            "2022-02-08",
            "yesterday",
            "2022-02-08T14:40:29+25:00",
        ];
        for s in samples {
            let got = parse_formatted(s);
            assert_eq!(got, reference(s), "{s}");
        }
    }

    #[test]
    fn parses_the_shapes_sources_write() {
        let want = 1_644_331_229_080; // 2022-02-08T14:40:29.080Z
        assert_eq!(parse_str_ms("2022-02-08T09:40:29.080710-0500"), Some(want));
        assert_eq!(parse_str_ms("2022-02-08T09:40:29.080710-05:00"), Some(want));
        assert_eq!(parse_str_ms("2022-02-08T14:40:29.080Z"), Some(want));
        assert_eq!(parse_str_ms("2022-02-08 14:40:29.080"), Some(want));
        assert_eq!(parse_str_ms("2022-02-08T14:40:29.0801234Z"), Some(want));
        assert_eq!(parse_str_ms("1644331229.080"), Some(want));
        assert_eq!(parse_str_ms("1644331229080"), Some(want));
        assert_eq!(parse_str_ms("Feb 08 2022 14:40:29"), Some(want - 80));
        assert_eq!(parse_str_ms("2/8/2022 2:40:29 PM"), Some(want - 80));
        assert_eq!(parse_str_ms("not a time"), None);
        assert_eq!(parse_str_ms(""), None);
    }

    #[test]
    fn epoch_units_by_magnitude() {
        assert_eq!(epoch_to_ms(1_588_205_199.824_37), Some(1_588_205_199_824));
        assert_eq!(epoch_to_ms(1_588_205_199_824.0), Some(1_588_205_199_824));
        assert_eq!(
            epoch_to_ms(1_588_205_199_824_000.0),
            Some(1_588_205_199_824)
        );
        assert_eq!(epoch_to_ms(-1.0), None);
        assert_eq!(ms_to_rfc3339(1_588_205_199_824), "2020-04-30T00:06:39.824Z");
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration_ms("10m"), Some(600_000));
        assert_eq!(parse_duration_ms("7d"), Some(604_800_000));
        assert_eq!(parse_duration_ms("250ms"), Some(250));
        assert_eq!(parse_duration_ms("10 parsecs"), None);
    }
}
