//! The demurrage formula (see `docs/turns.md#demurrage`): the fraction of an amount that
//! is left after a negative interest rate has acted on it for a period.

use chrono::TimeDelta;

/// Seconds in a year of 365.25 days (the SMP convention for annual interest rates).
pub const SECONDS_IN_YEAR: f64 = 365.25 * 24.0 * 60.0 * 60.0;

/// The fraction of an amount that is left after `period` at the annual interest `rate`
/// (percent, e.g. `-50.0`): `min(exp(k·t), 1)` with `k = ln(1 + rate/100) / year` and
/// `t = max(0, period)` in seconds; `0.0` for rates below `-99.9999`. Positive rates and
/// negative periods give `1.0`.
pub fn demurrage(rate: f64, period: TimeDelta) -> f64 {
    if rate < -99.9999 {
        return 0.0;
    }
    let k = (1.0 + rate / 100.0).ln() / SECONDS_IN_YEAR;
    let t = seconds(period).max(0.0);
    (k * t).exp().min(1.0)
}

/// `period` in seconds, with its microseconds (as a correctly rounded division for any
/// period shorter than 285 years).
fn seconds(period: TimeDelta) -> f64 {
    match period.num_microseconds() {
        Some(us) => us as f64 / 1e6,
        None => period.num_seconds() as f64,
    }
}

/// `ceil(x)` as an amount: values above `i64::MAX` become `i64::MAX`, values at or below
/// `i64::MIN` become `-i64::MAX` (amounts never hold `i64::MIN`).
pub fn contained_ceil(x: f64) -> i64 {
    const TWO_POW_63: f64 = 9_223_372_036_854_775_808.0;
    let c = x.ceil();
    if c >= TWO_POW_63 {
        i64::MAX
    } else if c <= -TWO_POW_63 {
        -i64::MAX
    } else {
        c as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn days(d: i64) -> TimeDelta {
        TimeDelta::days(d)
    }

    #[test]
    fn the_references_values() {
        // The reference computes these values exactly.
        assert_eq!(demurrage(-50.0, days(30)), 0.9446582976965447);
        assert_eq!(demurrage(-49.0, days(1000)), 0.15825985972421833);
        let p = days(30) + TimeDelta::hours(3) + TimeDelta::minutes(10);
        assert_eq!(demurrage(-20.0, p), 0.98175978199154);
        assert_eq!(
            demurrage(-50.0, days(365) + TimeDelta::hours(6)),
            0.5,
            "one year of -50 % halves the amount"
        );
        assert!((0.89..0.90).contains(&demurrage(-50.0, days(60))));
    }

    #[test]
    fn edge_cases() {
        assert_eq!(demurrage(-50.0, days(0)), 1.0);
        assert_eq!(demurrage(50.0, days(30)), 1.0);
        assert_eq!(demurrage(-50.0, days(-30)), 1.0);
        assert_eq!(demurrage(-99.99999999999, days(-30)), 0.0);
        assert_eq!(demurrage(-100.0, days(-30)), 0.0);
        assert_eq!(demurrage(-99.99999, days(1)), 0.0);
        assert_eq!(demurrage(-50.0, TimeDelta::MAX), 0.0);
    }

    #[test]
    fn locked_amounts_of_a_sell_offer() {
        // A sell offer of 30000 with a minimum trade of 1000, -50 % over 30 days.
        let w = demurrage(-50.0, days(30));
        assert_eq!(contained_ceil(1000.0 / w), 1059);
        assert_eq!(contained_ceil(30000.0 / w), 31758);
    }

    #[test]
    fn ceilings_are_contained() {
        assert_eq!(contained_ceil(1.5), 2);
        assert_eq!(contained_ceil(-1.5), -1);
        assert_eq!(contained_ceil(i64::MAX as f64), i64::MAX);
        assert_eq!(contained_ceil(1e300), i64::MAX);
        assert_eq!(contained_ceil(f64::INFINITY), i64::MAX);
        assert_eq!(contained_ceil(i64::MIN as f64), -i64::MAX);
        assert_eq!(contained_ceil(-1e300), -i64::MAX);
    }
}
