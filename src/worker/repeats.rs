//! How often a repeating client error reaches the log: pure bookkeeping, no I/O.
//!
//! While a broker is unreachable librdkafka reports the same error (`AllBrokersDown`,
//! `BrokerTransportFailure`) through the error callback and the consumer's poll every few tens
//! of milliseconds: dozens of identical lines a second per worker, enough to bury everything
//! else in a log pipeline. [`Repeats`] lets the first occurrence of each error through, then at
//! most one line per `interval` for it, which says how many identical ones it stood for. The
//! metric `alertctx_kafka_client_errors_total` counts every occurrence.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Per-error log throttle.
#[derive(Debug)]
pub struct Repeats {
    interval: Duration,
    seen: HashMap<String, Seen>,
}

#[derive(Debug)]
struct Seen {
    logged_at: Instant,
    /// Occurrences since the last logged one.
    quiet: u64,
}

impl Repeats {
    pub fn new(interval: Duration) -> Repeats {
        Repeats {
            interval,
            seen: HashMap::new(),
        }
    }

    /// One occurrence of the error `key` at `now`. `Some(n)`: log it, saying it stands for `n`
    /// identical ones that were not logged; `None`: stay quiet.
    pub fn note(&mut self, key: &str, now: Instant) -> Option<u64> {
        match self.seen.get_mut(key) {
            None => {
                self.seen.insert(
                    key.to_string(),
                    Seen {
                        logged_at: now,
                        quiet: 0,
                    },
                );
                Some(0)
            }
            Some(s) if now.saturating_duration_since(s.logged_at) >= self.interval => {
                let quiet = s.quiet;
                s.logged_at = now;
                s.quiet = 0;
                Some(quiet)
            }
            Some(s) => {
                s.quiet += 1;
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SEC: Duration = Duration::from_secs(1);

    #[test]
    fn the_first_of_each_error_is_logged_and_repeats_wait_for_the_interval() {
        let t0 = Instant::now();
        let mut r = Repeats::new(30 * SEC);
        assert_eq!(r.note("AllBrokersDown", t0), Some(0));
        // A different error is not held back by the first one.
        assert_eq!(r.note("BrokerTransportFailure", t0), Some(0));
        for i in 1..=40 {
            assert_eq!(r.note("AllBrokersDown", t0 + SEC * i / 2), None);
        }
        // 30 s after the last logged line: one line standing for the 59 held back (40 above,
        // 19 more below).
        for i in 0..19 {
            assert_eq!(r.note("AllBrokersDown", t0 + 21 * SEC + SEC * i / 4), None);
        }
        assert_eq!(r.note("AllBrokersDown", t0 + 30 * SEC), Some(59));
        assert_eq!(r.note("AllBrokersDown", t0 + 31 * SEC), None);
        assert_eq!(r.note("BrokerTransportFailure", t0 + 31 * SEC), Some(0));
    }

    #[test]
    fn an_error_after_a_quiet_spell_is_logged_at_once() {
        let t0 = Instant::now();
        let mut r = Repeats::new(30 * SEC);
        assert_eq!(r.note("e", t0), Some(0));
        assert_eq!(r.note("e", t0 + 3600 * SEC), Some(0));
    }
}
