//! Where the daemon's "now" comes from.
//!
//! Logic never reads the time itself: the daemon asks a [`Clock`] and passes
//! `now` in. In production that is the wall clock in the lot's zone; the demo
//! and the black-box tests use a [`ManualClock`] that only moves when told,
//! so a 30-second pass timeout is tested by advancing 30 s, not by waiting.

use std::sync::{Arc, Mutex};

use chrono::{TimeDelta, Utc};
use chrono_tz::Tz;
use tokio::sync::watch;

use crate::domain::model::Timestamp;

/// A source of time and of wake-ups.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's wall clock, stamped in the lot's zone.
    System(Tz),
    /// A clock that moves only when [`ManualClock::advance`] is called.
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// The current time, with the lot's UTC offset.
    pub fn now(&self) -> Timestamp {
        match self {
            // Milliseconds are what the contract's timestamps and the store keep.
            Clock::System(tz) => {
                let now = Utc::now();
                let ms =
                    TimeDelta::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000_000));
                (now - ms).with_timezone(tz).fixed_offset()
            }
            Clock::Manual(m) => m.now(),
        }
    }

    /// Resolves once the clock reads `at` or later.
    pub async fn sleep_until(&self, at: Timestamp) {
        match self {
            Clock::System(_) => {
                let wait = (at - self.now()).to_std().unwrap_or_default();
                tokio::time::sleep(wait).await;
            }
            Clock::Manual(m) => m.reached(at).await,
        }
    }
}

/// A clock for demos and tests: starts at a given instant and moves forward
/// only through [`ManualClock::advance`]; sleepers wake when it passes them.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<Timestamp>,
    tx: watch::Sender<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Mutex::new(start),
            tx: watch::channel(start).0,
        }
    }

    pub fn now(&self) -> Timestamp {
        *self.now.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Moves the clock forward (a negative step is ignored: time never runs back).
    pub fn advance(&self, by: TimeDelta) -> Timestamp {
        let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
        *now += by.max(TimeDelta::zero());
        self.tx.send_replace(*now);
        *now
    }

    async fn reached(&self, at: Timestamp) {
        let mut rx = self.tx.subscribe();
        // The sender lives as long as self, so wait_for only ends by the predicate.
        let _ = rx.wait_for(|now| *now >= at).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Timestamp {
        chrono::DateTime::parse_from_rfc3339("2026-11-23T08:00:00+07:00").unwrap()
    }

    #[tokio::test]
    async fn manual_sleepers_wake_only_when_advanced_past() {
        let clock = Arc::new(ManualClock::new(t0()));
        let c = Clock::Manual(clock.clone());
        let target = t0() + TimeDelta::seconds(30);
        let sleeper = tokio::spawn(async move { c.sleep_until(target).await });
        tokio::task::yield_now().await;
        clock.advance(TimeDelta::seconds(29));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(TimeDelta::seconds(1));
        sleeper.await.unwrap();
        assert_eq!(clock.now(), target);
    }

    #[test]
    fn manual_clock_never_runs_back() {
        let clock = ManualClock::new(t0());
        assert_eq!(clock.advance(TimeDelta::seconds(-5)), t0());
    }

    #[test]
    fn system_clock_uses_the_lot_offset_and_whole_milliseconds() {
        let now = Clock::System(chrono_tz::Asia::Ho_Chi_Minh).now();
        assert_eq!(now.offset().local_minus_utc(), 7 * 3600);
        assert_eq!(now.timestamp_subsec_nanos() % 1_000_000, 0);
    }
}
