//! The two clocks a gate lives by.
//!
//! A Pi has no battery-backed clock: at boot its wall clock can be hours or
//! months off until NTP steps it, forwards or back. So every timer, timeout
//! and repeat window runs on [`Mono`], a monotonic reading that only moves
//! forward at the pace of real time; the wall clock ([`Timestamp`]) only
//! stamps events and feeds tariffs and reservations. [`Now`] carries both,
//! read together by the daemon's clock and passed in as an argument.

use std::ops::{Add, Sub};
use std::time::Duration;

use super::model::Timestamp;

/// A reading of the monotonic clock: milliseconds since an arbitrary origin
/// (the daemon's start). Never goes back; says nothing about the date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Mono(u64);

impl Mono {
    /// The origin.
    pub const ZERO: Mono = Mono(0);

    /// `ms` milliseconds after the origin.
    pub const fn from_ms(ms: u64) -> Mono {
        Mono(ms)
    }

    /// Milliseconds since the origin.
    pub const fn as_ms(self) -> u64 {
        self.0
    }

    /// Time from `earlier` to `self`; zero if `earlier` is later.
    pub fn since(self, earlier: Mono) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

impl Add<Duration> for Mono {
    type Output = Mono;
    fn add(self, d: Duration) -> Mono {
        Mono(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }
}

impl Sub<Mono> for Mono {
    type Output = Duration;
    /// Saturating: `a - b` is zero when `b` is later.
    fn sub(self, earlier: Mono) -> Duration {
        self.since(earlier)
    }
}

/// Both clocks, read at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Now {
    /// For timers and durations between readings.
    pub mono: Mono,
    /// For stamping events and for tariffs and reservations, with the lot's
    /// UTC offset at that instant.
    pub wall: Timestamp,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mono_arithmetic_saturates_instead_of_going_negative() {
        let a = Mono::from_ms(1_000);
        let b = a + Duration::from_millis(500);
        assert_eq!(b.as_ms(), 1_500);
        assert_eq!(b - a, Duration::from_millis(500));
        assert_eq!(a - b, Duration::ZERO);
        assert_eq!(
            Mono::from_ms(u64::MAX) + Duration::from_secs(1),
            Mono::from_ms(u64::MAX)
        );
    }
}
