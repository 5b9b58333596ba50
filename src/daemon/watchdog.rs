//! When to feed systemd's watchdog: only while the lane loop and the store
//! thread both work.
//!
//! A ping from a timer task of its own would prove only that tokio runs.
//! Instead, every [`Watchdog::probe_every`] the lane loop sends the store
//! thread a job that does nothing, behind whatever the loop already asked
//! of it, and pings when the loop itself takes the answer, if it came back
//! within [`Watchdog::bound`]. A hung store thread (a commit stuck on a dead
//! SD card, a deadlock) or a stuck loop then stops the pings, and systemd
//! restarts the daemon (`Restart=always`).
//!
//! The timing, for systemd's `WATCHDOG_USEC` = W: a probe every W/4, which
//! must come back within W/2. Between two pings there are then at most
//! W/4 + W/2 = 3W/4 while all is well, so a healthy gate is never killed;
//! a store that takes longer than W/2 for its queue is treated as hung (it
//! holds up every card decision meanwhile). Only one probe is out at a
//! time: a hung store does not collect more of them.
//!
//! Pure: the caller reads the monotonic clock and passes it in.

use std::time::Duration;

use crate::domain::time::Mono;

/// The watchdog's state: whether a probe is out, and since when.
#[derive(Debug, Clone)]
pub struct Watchdog {
    bound: Duration,
    out: Option<Mono>,
}

/// What to do at a probe tick.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tick {
    /// Send a probe through the store, stamped with this reading.
    Probe(Mono),
    /// A probe is out and not late yet: wait for it.
    Wait,
    /// A probe has been out this long, past the bound: the watchdog goes
    /// hungry until it comes back (say so in the log).
    Late(Duration),
}

impl Watchdog {
    /// The watchdog for systemd's `WATCHDOG_USEC` = `interval`.
    pub fn new(interval: Duration) -> Watchdog {
        Watchdog {
            bound: interval / 2,
            out: None,
        }
    }

    /// How often to tick: a quarter of systemd's interval.
    pub fn probe_every(interval: Duration) -> Duration {
        (interval / 4).max(Duration::from_millis(1))
    }

    /// How long a probe may take to come back and still earn a ping.
    pub fn bound(&self) -> Duration {
        self.bound
    }

    /// A probe tick at `now`.
    pub fn tick(&mut self, now: Mono) -> Tick {
        match self.out {
            None => {
                self.out = Some(now);
                Tick::Probe(now)
            }
            Some(sent) if now - sent > self.bound => Tick::Late(now - sent),
            Some(_) => Tick::Wait,
        }
    }

    /// The probe stamped `sent` came back at `now`: whether to send
    /// `WATCHDOG=1`. A late answer earns nothing, but frees the next probe.
    pub fn answered(&mut self, sent: Mono, now: Mono) -> bool {
        if self.out == Some(sent) {
            self.out = None;
        }
        now - sent <= self.bound
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const W: Duration = Duration::from_secs(20);

    fn ms(ms: u64) -> Mono {
        Mono::from_ms(ms)
    }

    #[test]
    fn a_healthy_gate_pings_well_within_the_interval() {
        assert_eq!(Watchdog::probe_every(W), Duration::from_secs(5));
        let mut w = Watchdog::new(W);
        assert_eq!(w.bound(), Duration::from_secs(10));
        let mut pings = Vec::new();
        // A probe every 5 s, the store answering in 1 ms to just under the bound.
        for (i, took) in [1, 4_000, 9_999, 10_000, 3].into_iter().enumerate() {
            let at = ms(i as u64 * 20_000);
            let Tick::Probe(sent) = w.tick(at) else {
                panic!("probe {i} not sent");
            };
            if w.answered(sent, at + Duration::from_millis(took)) {
                pings.push(at.as_ms() + took);
            }
        }
        assert_eq!(pings.len(), 5, "every answer within the bound earns a ping");
    }

    #[test]
    fn a_hung_store_starves_the_watchdog_and_a_late_answer_earns_nothing() {
        let mut w = Watchdog::new(W);
        let Tick::Probe(sent) = w.tick(ms(0)) else {
            panic!()
        };
        // The store does not answer: no second probe piles up behind it.
        assert_eq!(w.tick(ms(5_000)), Tick::Wait);
        assert_eq!(w.tick(ms(10_000)), Tick::Wait);
        assert_eq!(
            w.tick(ms(10_001)),
            Tick::Late(Duration::from_millis(10_001))
        );
        assert_eq!(w.tick(ms(60_000)), Tick::Late(Duration::from_secs(60)));
        // It comes back after a minute: too late for a ping...
        assert!(!w.answered(sent, ms(60_001)));
        // ...but the next probe goes out and, answered in time, pings.
        let Tick::Probe(next) = w.tick(ms(65_000)) else {
            panic!("a new probe after the late one came back")
        };
        assert!(w.answered(next, ms(65_002)));
    }

    #[test]
    fn the_worst_gap_between_pings_is_under_the_interval() {
        // Answered at once, then the next as late as allowed.
        let mut w = Watchdog::new(W);
        let every = Watchdog::probe_every(W);
        let Tick::Probe(a) = w.tick(ms(0)) else {
            panic!()
        };
        assert!(w.answered(a, ms(0)));
        let second = ms(0) + every;
        let Tick::Probe(b) = w.tick(second) else {
            panic!()
        };
        let answered = second + w.bound();
        assert!(w.answered(b, answered));
        assert!(answered - ms(0) < W, "{:?}", answered - ms(0));
    }
}
