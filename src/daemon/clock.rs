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
use crate::domain::time::{Mono, Now};

/// A source of time and of wake-ups.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's clocks: tokio's monotonic `Instant` from `origin`, and
    /// the wall clock stamped in the lot's zone.
    System {
        tz: Tz,
        origin: tokio::time::Instant,
    },
    /// A clock that moves only when told.
    Manual(Arc<ManualClock>),
}

impl Clock {
    /// The system clock, in the lot's zone.
    pub fn system(tz: Tz) -> Clock {
        Clock::System {
            tz,
            origin: tokio::time::Instant::now(),
        }
    }

    /// A manual clock starting at `start`, and the handle that moves it.
    pub fn manual(start: Timestamp, tz: Tz) -> (Clock, Arc<ManualClock>) {
        let m = Arc::new(ManualClock::new(start, tz));
        (Clock::Manual(m.clone()), m)
    }

    /// Both clocks now.
    pub fn now(&self) -> Now {
        match self {
            Clock::System { tz, origin } => {
                let now = Utc::now();
                let ms =
                    TimeDelta::nanoseconds(i64::from(now.timestamp_subsec_nanos() % 1_000_000));
                let mono = u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX);
                Now {
                    mono: Mono::from_ms(mono),
                    wall: (now - ms).with_timezone(tz).fixed_offset(),
                }
            }
            Clock::Manual(m) => m.now(),
        }
    }

    /// Resolves once the monotonic clock reads `at` or later.
    pub async fn sleep_until(&self, at: Mono) {
        match self {
            Clock::System { origin, .. } => {
                tokio::time::sleep_until(*origin + std::time::Duration::from_millis(at.as_ms()))
                    .await;
            }
            Clock::Manual(m) => m.reached(at).await,
        }
    }
}

/// A clock for demos and tests.
#[derive(Debug)]
pub struct ManualClock {
    tz: Tz,
    now: Mutex<Now>,
    tx: watch::Sender<Mono>,
}

impl ManualClock {
    pub fn new(start: Timestamp, tz: Tz) -> ManualClock {
        ManualClock {
            tz,
            now: Mutex::new(Now {
                mono: Mono::ZERO,
                wall: start,
            }),
            tx: watch::channel(Mono::ZERO).0,
        }
    }

    pub fn now(&self) -> Now {
        let now = *self.now.lock().unwrap_or_else(|e| e.into_inner());
        Now {
            wall: now.wall.with_timezone(&self.tz).fixed_offset(),
            ..now
        }
    }

    /// Moves both clocks forward (a negative step is ignored).
    pub fn advance(&self, by: TimeDelta) -> Now {
        {
            let mut now = self.now.lock().unwrap_or_else(|e| e.into_inner());
            let by = by.max(TimeDelta::zero());
            now.wall += by;
            now.mono = now.mono + by.to_std().unwrap_or_default();
            self.tx.send_replace(now.mono);
        }
        self.now()
    }

    /// Steps the wall clock only, either way.
    pub fn step_wall(&self, by: TimeDelta) -> Now {
        self.now.lock().unwrap_or_else(|e| e.into_inner()).wall += by;
        self.now()
    }

    async fn reached(&self, at: Mono) {
        let mut rx = self.tx.subscribe();
        let _ = rx.wait_for(|now| *now >= at).await;
    }
}
