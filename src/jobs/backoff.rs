//! The one back-off policy of the service's long-running tasks: a pause that starts at
//! `min`, doubles after each consecutive failure up to `max`, and starts again at `min` after
//! a success.

use std::time::Duration;

/// A growing pause between attempts.
#[derive(Debug, Clone)]
pub struct Backoff {
    min: Duration,
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// The pause after a first failure of a task.
    pub const MIN: Duration = Duration::from_secs(1);
    /// The longest pause.
    pub const MAX: Duration = Duration::from_secs(60);

    /// Pauses from `min`, doubling, up to `max`.
    pub const fn new(min: Duration, max: Duration) -> Self {
        Self {
            min,
            max,
            next: min,
        }
    }

    /// The pause before the next attempt; the one after it is twice as long (up to `max`).
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(self.max);
        pause
    }

    /// Starts again from `min` (after a success).
    pub fn reset(&mut self) {
        self.next = self.min;
    }
}

impl Default for Backoff {
    /// 1 s, 2 s, 4 s, … up to 60 s.
    fn default() -> Self {
        Self::new(Self::MIN, Self::MAX)
    }
}

/// `pause` scaled by a random factor in `[1 − fraction, 1 + fraction]`, so that processes
/// started together do not keep hitting the database at the same instants.
pub fn with_jitter(pause: Duration, fraction: f64) -> Duration {
    let fraction = fraction.clamp(0.0, 1.0);
    let factor = 1.0 + fraction * (2.0 * rand::random::<f64>() - 1.0);
    pause.mul_f64(factor.max(0.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_double_up_to_the_maximum_and_reset() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(5));
        let pauses: Vec<u64> = (0..5).map(|_| b.next_pause().as_secs()).collect();
        assert_eq!(pauses, [1, 2, 4, 5, 5]);
        b.reset();
        assert_eq!(b.next_pause(), Duration::from_secs(1));
        assert_eq!(Backoff::default().next_pause(), Backoff::MIN);
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let base = Duration::from_secs(10);
        for _ in 0..1000 {
            let p = with_jitter(base, 0.1).as_secs_f64();
            assert!((9.0..=11.0).contains(&p), "{p}");
        }
        assert_eq!(with_jitter(base, 0.0), base);
    }
}
