//! How long a drain may still wait: pure time arithmetic, no Kafka.
//!
//! Shutdown drains in steps (flush the producer, commit, leave the group, and the revoke that
//! leaving triggers flushes and commits again). `drain_timeout` bounds all of them together,
//! not each one: the first step sets a deadline and every later step gets what is left of it.
//! A revoke outside a shutdown (a rebalance) has no deadline yet and gets the whole timeout.

use std::time::{Duration, Instant};

/// What a drain step may wait: the time left until `deadline`, or `full` when no shutdown
/// deadline is set. Never negative; zero once the deadline has passed.
pub fn budget(deadline: Option<Instant>, now: Instant, full: Duration) -> Duration {
    match deadline {
        Some(d) => d.saturating_duration_since(now),
        None => full,
    }
}

/// The deadline a shutdown starting at `now` sets, unless an earlier one is already set (a
/// second signal must not extend the first one's deadline).
pub fn deadline(current: Option<Instant>, now: Instant, full: Duration) -> Instant {
    current.map_or(now + full, |c| c.min(now + full))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rebalance_without_shutdown_gets_the_whole_timeout() {
        let now = Instant::now();
        assert_eq!(
            budget(None, now, Duration::from_secs(20)),
            Duration::from_secs(20)
        );
    }

    #[test]
    fn later_steps_get_what_is_left_and_nothing_after_the_deadline() {
        let t0 = Instant::now();
        let full = Duration::from_secs(20);
        let d = deadline(None, t0, full);
        assert_eq!(budget(Some(d), t0, full), full);
        assert_eq!(
            budget(Some(d), t0 + Duration::from_secs(15), full),
            Duration::from_secs(5)
        );
        assert_eq!(
            budget(Some(d), t0 + Duration::from_secs(25), full),
            Duration::ZERO
        );
    }

    #[test]
    fn a_second_signal_does_not_extend_the_deadline() {
        let t0 = Instant::now();
        let full = Duration::from_secs(20);
        let first = deadline(None, t0, full);
        let second = deadline(Some(first), t0 + Duration::from_secs(10), full);
        assert_eq!(second, first);
    }
}
