//! When a new turn may start (see `docs/turns.md#turn-schedule`).

use chrono::{DateTime, TimeZone as _, Utc};

/// The first turn's starting point before the offset: Monday 2024-01-01 00:00 UTC.
pub fn epoch() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 1, 1, 0, 0, 0)
        .single()
        .expect("a valid date")
}

/// Whether a new turn may start at `now`, given the period, its offset and when the latest
/// turn started (`None` when there is none): only in the first half of a period after a
/// starting point (`epoch + offset + k × period`), and only when the latest turn started more
/// than half a period ago. Microsecond-exact; a zero period never starts a turn.
pub fn can_start_new_turn(
    period: std::time::Duration,
    offset: std::time::Duration,
    latest_started_at: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> bool {
    let period_us = i128::try_from(period.as_micros()).unwrap_or(i128::MAX);
    if period_us == 0 {
        return false;
    }
    let offset_us = i128::try_from(offset.as_micros()).unwrap_or(i128::MAX);
    let micros = |t: DateTime<Utc>| i128::from(t.timestamp_micros());
    let first = micros(epoch()) + offset_us;
    let overdue = (micros(now) - first).rem_euclid(period_us);
    let latest = latest_started_at.map_or(0, micros); // 1970-01-01 when there is no turn
    // `x < P/2` with P/2 exact: compare doubled values.
    2 * overdue < period_us && period_us < 2 * (micros(now) - latest)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn hours(h: i64) -> chrono::Duration {
        chrono::Duration::hours(h)
    }

    #[test]
    fn the_reference_examples() {
        // P = 1 d, O = 2 h, t = 2025-01-01T02:00Z.
        let p = Duration::from_secs(86_400);
        let o = Duration::from_secs(7_200);
        let t = Utc.with_ymd_and_hms(2025, 1, 1, 2, 0, 0).unwrap();
        assert!(!can_start_new_turn(p, o, Some(t), t));
        assert!(can_start_new_turn(p, o, Some(t - hours(1000)), t));
        assert!(can_start_new_turn(p, o, Some(t - hours(2)), t + hours(11)));
        assert!(!can_start_new_turn(
            p,
            o,
            Some(t - hours(1000)),
            t + hours(12)
        ));
        assert!(can_start_new_turn(p, o, Some(t + hours(11)), t + hours(24)));
        assert!(can_start_new_turn(p, o, Some(t + hours(22)), t + hours(35)));
        assert!(!can_start_new_turn(p, o, None, t + hours(36)));
        assert!(can_start_new_turn(p, o, None, t));
    }

    #[test]
    fn zero_period_never_starts_and_times_before_the_epoch_work() {
        let t = Utc.with_ymd_and_hms(2020, 6, 1, 0, 0, 0).unwrap();
        assert!(!can_start_new_turn(Duration::ZERO, Duration::ZERO, None, t));
        // 2020-06-01 is a whole number of days before 2024-01-01: a starting point.
        assert!(can_start_new_turn(
            Duration::from_secs(86_400),
            Duration::ZERO,
            None,
            t
        ));
        assert!(!can_start_new_turn(
            Duration::from_secs(86_400),
            Duration::ZERO,
            None,
            t - chrono::Duration::microseconds(1)
        ));
    }

    #[test]
    fn half_periods_are_exact_to_the_microsecond() {
        let p = Duration::from_micros(3); // P/2 = 1.5 µs
        let start = epoch();
        let at = |us: i64| start + chrono::Duration::microseconds(us);
        assert!(can_start_new_turn(p, Duration::ZERO, None, at(1)));
        assert!(!can_start_new_turn(p, Duration::ZERO, None, at(2)));
        // The latest turn 2 µs ago (> 1.5 µs): allowed; 1 µs ago: not.
        assert!(can_start_new_turn(p, Duration::ZERO, Some(at(1)), at(3)));
        assert!(!can_start_new_turn(p, Duration::ZERO, Some(at(2)), at(3)));
    }
}
