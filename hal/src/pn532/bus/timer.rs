//! The count-down timer the pn532 crate needs, on std's monotonic clock.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use pn532::CountDown;

/// How long [`StdTimer::wait`] sleeps while its time has not run out. The
/// crate polls the PN532's ready status between two waits: without a pause
/// it would spin a core and flood the bus for the length of every command.
/// A PN532 answers within milliseconds, so 1 ms costs no noticeable latency.
const TICK: Duration = Duration::from_millis(1);

/// A [`CountDown`] that runs out `count` after [`CountDown::start`].
#[derive(Debug)]
pub struct StdTimer {
    deadline: Instant,
    tick: Duration,
}

impl StdTimer {
    /// A timer that has already run out.
    pub fn new() -> StdTimer {
        StdTimer {
            deadline: Instant::now(),
            tick: TICK,
        }
    }
}

impl Default for StdTimer {
    fn default() -> Self {
        StdTimer::new()
    }
}

impl CountDown for StdTimer {
    type Time = Duration;

    fn start<T>(&mut self, count: T)
    where
        T: Into<Duration>,
    {
        self.deadline = Instant::now() + count.into();
    }

    /// `Ok` once the count has run out; before that, pauses up to a tick
    /// (never past the deadline) and says to come back.
    fn wait(&mut self) -> pn532::nb::Result<(), Infallible> {
        let now = Instant::now();
        if now >= self.deadline {
            return Ok(());
        }
        std::thread::sleep(self.tick.min(self.deadline - now));
        Err(pn532::nb::Error::WouldBlock)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_runs_out_no_sooner_than_started_for() {
        let mut timer = StdTimer::new();
        assert!(timer.wait().is_ok(), "a new timer has run out");
        let count = Duration::from_millis(15);
        let started = Instant::now();
        timer.start(count);
        let mut waits = 0;
        while timer.wait().is_err() {
            waits += 1;
        }
        assert!(started.elapsed() >= count);
        // It paused between waits instead of spinning.
        assert!((1..=100).contains(&waits), "{waits} waits");
    }
}
