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
    iso(s.as_bytes()).or_else(|| parse_chrono(s))
}

/// What chrono makes of `s`: RFC 3339, then the formats above.
fn parse_chrono(s: &str) -> Option<i64> {
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_millis());
    }
    parse_formatted(s)
}

/// The shape most sources write, read directly: `YYYY-MM-DD`, `T` or a space,
/// `hh:mm:ss`, an optional fraction of 1 to 9 digits, then `Z`, `±hh:mm`, `±hhmm` or
/// nothing (UTC). `None` for anything else, including leap seconds, which chrono then
/// reads; where this returns a time it is the one chrono gives (tested below). Chrono
/// walks a list of format items for every string; this costs a few comparisons a byte.
fn iso(b: &[u8]) -> Option<i64> {
    fn num(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    if b[10] != b'T' && b[10] != b' ' {
        return None;
    }
    let mut rest = &b[19..];
    let mut millis = 0;
    if let Some((b'.', frac)) = rest.split_first() {
        let digits = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 || digits > 9 {
            return None;
        }
        // Milliseconds are the first three digits: chrono truncates, it does not round.
        for i in 0..3 {
            millis = millis * 10
                + frac
                    .get(i)
                    .filter(|_| i < digits)
                    .map_or(0, |c| u32::from(c - b'0'));
        }
        rest = &frac[digits..];
    }
    let offset_secs = match rest {
        [] | [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] | [sign @ (b'+' | b'-'), h1, h2, m1, m2] => {
            let (h, m) = (num(&[*h1, *h2])?, num(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let secs = i64::from(h * 3600 + m * 60);
            if *sign == b'-' {
                -secs
            } else {
                secs
            }
        }
        _ => return None,
    };
    // chrono checks the date and the time of day (no 24:00, no leap second) and counts days.
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::try_from(num(&b[0..4])?).ok()?,
        num(&b[5..7])?,
        num(&b[8..10])?,
    )?;
    let time = chrono::NaiveTime::from_hms_milli_opt(
        num(&b[11..13])?,
        num(&b[14..16])?,
        num(&b[17..19])?,
        millis,
    )?;
    Some(date.and_time(time).and_utc().timestamp_millis() - offset_secs * 1000)
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

    /// Where the direct reader returns a time, it is chrono's; and it reads the usual shapes.
    /// Strings are built from parts of every kind (valid and invalid dates, separators,
    /// fractions of 0 to 12 digits, zones valid and not) by a seeded generator.
    #[test]
    fn direct_reader_agrees_with_chrono() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let pick = |rng: &mut rand_chacha::ChaCha8Rng, xs: &[&str]| {
            xs[rng.random_range(0..xs.len())].to_string()
        };
        let (mut read, mut total) = (0, 0);
        for _ in 0..60_000 {
            let year = pick(
                &mut rng,
                &[
                    "1969", "1970", "2000", "2024", "2100", "1900", "0001", "9999", "0000", "202",
                ],
            );
            let month = pick(&mut rng, &["01", "02", "03", "12", "13", "00", "1", "06"]);
            let day = pick(&mut rng, &["01", "28", "29", "30", "31", "00", "32", "15"]);
            let sep = pick(&mut rng, &["T", " ", "t", "_", "T"]);
            let hour = pick(&mut rng, &["00", "09", "23", "24", "7"]);
            let minute = pick(&mut rng, &["00", "59", "60", "30"]);
            let second = pick(&mut rng, &["00", "59", "60", "61", "07"]);
            let digits = rng.random_range(0..=12);
            let frac = match digits {
                0 => String::new(),
                n => format!(
                    ".{}",
                    (0..n)
                        .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
                        .collect::<String>()
                ),
            };
            let zone = pick(
                &mut rng,
                &[
                    "", "Z", "z", "+00:00", "-05:00", "+0530", "-0000", "+23:59", "+24:00",
                    "-05:60", "+5:00", " +0100", "+01", "Z ", "ZZ",
                ],
            );
            let s = format!("{year}-{month}-{day}{sep}{hour}:{minute}:{second}{frac}{zone}");
            total += 1;
            if let Some(ms) = iso(s.as_bytes()) {
                read += 1;
                assert_eq!(Some(ms), parse_chrono(&s), "{s}");
            }
        }
        assert!(
            read > 1_000,
            "the direct reader should read many of them: {read} of {total}"
        );
        for s in [
            "2022-02-08T14:40:29.080Z",
            "2022-02-08 14:40:29",
            "2022-02-08T09:40:29.080710-05:00",
            "1969-12-31T23:59:59.5Z",
            "2024-02-29T00:00:00+0100",
        ] {
            assert_eq!(iso(s.as_bytes()), parse_chrono(s), "{s}");
            assert!(iso(s.as_bytes()).is_some(), "{s}");
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
