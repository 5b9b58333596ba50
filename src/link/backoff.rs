//! How long to wait before the next connection attempt: doubling from
//! [`FIRST`] to [`MOST`], with jitter so that a hundred gates that lost the
//! broker together do not all knock again in the same second.

use std::time::Duration;

/// The first wait after a failure.
pub const FIRST: Duration = Duration::from_secs(1);
/// The longest wait.
pub const MOST: Duration = Duration::from_secs(60);

/// The backoff between connection attempts. Pure: the randomness comes in.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: FIRST }
    }
}

impl Backoff {
    /// The wait before the next attempt, given `random` in `[0, 1)`: a
    /// uniform pick from the upper half of the current step ("equal
    /// jitter"), so waits still grow but never line up.
    pub fn next(&mut self, random: f64) -> Duration {
        let step = self.next;
        self.next = (step * 2).min(MOST);
        step.mul_f64(0.5 + 0.5 * random.clamp(0.0, 1.0))
    }

    /// A connection was made: the next failure starts from [`FIRST`].
    pub fn reset(&mut self) {
        self.next = FIRST;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_a_minute_with_jitter_in_the_upper_half() {
        let mut b = Backoff::default();
        let lows: Vec<u64> = (0..9).map(|_| b.next(0.0).as_millis() as u64).collect();
        assert_eq!(
            lows,
            [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000]
        );
        let mut b = Backoff::default();
        assert_eq!(b.next(0.999_999).as_millis(), 999);
        b.reset();
        assert_eq!(b.next(0.5), Duration::from_millis(750));
    }
}
