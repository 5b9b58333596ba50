//! The presence inputs: their state now and, while the technician drives
//! or walks over them, every change as it happens.

use std::io::Write;
use std::time::Duration;

use parkgate_hal::sim::SensorStates;
use parkgate_hal::{HalError, Presence, Sensor, SensorEvent, SensorState};
use tokio::time::{Instant, sleep_until};

use super::report::Check;
use super::session::Session;

/// The loops a vehicle must be seen on and off during the live test; the
/// barrier-up switch is exercised by the barrier test.
const LOOPS: [Sensor; 2] = [Sensor::Arming, Sensor::Safety];

/// What the inputs did while watched: prints changes, remembers states seen.
#[derive(Debug, Clone)]
pub struct LoopWatch {
    last: SensorStates,
    fitted: [bool; 3],
    seen: Vec<(Sensor, SensorState)>,
    changes: usize,
}

impl LoopWatch {
    /// Starts from the inputs as they read now.
    pub fn new(presence: &impl Presence) -> LoopWatch {
        let mut last = SensorStates::default();
        for s in Sensor::ALL {
            last.set(s, presence.current(s));
        }
        let seen = Sensor::ALL.iter().map(|&s| (s, last.get(s))).collect();
        LoopWatch {
            last,
            fitted: Sensor::ALL.map(|s| presence.fitted(s)),
            seen,
            changes: 0,
        }
    }

    /// Takes in an event; the line to show if it changed something (events
    /// are absolute, so one repeating the state is not a change).
    pub fn change(&mut self, e: SensorEvent) -> Option<String> {
        let before = self.last.get(e.sensor);
        if before == e.state {
            return None;
        }
        self.last.set(e.sensor, e.state);
        self.changes += 1;
        if !self.seen.contains(&(e.sensor, e.state)) {
            self.seen.push((e.sensor, e.state));
        }
        Some(format!("{} {before} -> {}", e.sensor, e.state))
    }

    /// The inputs as they read now: a fault fails (the lane treats a faulted
    /// loop as a vehicle for ever, so the barrier would never close).
    pub fn now(&self) -> Check {
        let text: Vec<String> = Sensor::ALL
            .iter()
            .zip(self.fitted)
            .map(|(&s, fitted)| match fitted {
                true => format!("{s} {}", self.last.get(s)),
                false => format!("{s} not fitted"),
            })
            .collect();
        let text = text.join(", ");
        let faulted: Vec<String> = Sensor::ALL
            .iter()
            .filter(|&&s| self.last.get(s) == SensorState::Fault)
            .map(|s| s.to_string())
            .collect();
        if faulted.is_empty() {
            Check::pass("loops", text)
        } else {
            Check::fail(
                "loops",
                text,
                format!(
                    "{} report(s) a fault: check the loop's wiring (an open or shorted loop), \
                     the detector's power and its fault output, and [hardware.gpio] polarity",
                    faulted.join(" and ")
                ),
            )
        }
    }

    /// The live test's verdict: each loop seen both occupied and clear.
    pub fn verdict(&self) -> Check {
        let mut missing = Vec::new();
        for s in LOOPS {
            for state in [SensorState::Occupied, SensorState::Clear] {
                if !self.seen.contains(&(s, state)) {
                    missing.push(format!("{s} never {state}"));
                }
            }
        }
        let faults: Vec<String> = LOOPS
            .iter()
            .filter(|&&s| self.seen.contains(&(s, SensorState::Fault)))
            .map(|s| format!("{s} faulted"))
            .collect();
        if missing.is_empty() && faults.is_empty() {
            return Check::pass(
                "loop test",
                format!(
                    "arming and safety each seen occupied and clear ({} change(s))",
                    self.changes
                ),
            );
        }
        let mut problems = faults;
        problems.extend(missing);
        Check::fail(
            "loop test",
            format!("{} ({} change(s) seen)", problems.join(", "), self.changes),
            "drive (or walk with a metal plate) over each loop and off it again; a loop that never \
             changes: check the detector's sensitivity, its relay output and the wiring to its pin",
        )
    }

    /// The state an input read last.
    pub fn state(&self, sensor: Sensor) -> SensorState {
        self.last.get(sensor)
    }
}

/// The inputs now, then (interactive) a live watch for `watch` or until Enter.
pub async fn check<P: Presence, W: Write>(s: &mut Session<W>, presence: &mut P, watch: Duration) {
    let mut seen = LoopWatch::new(presence);
    s.record(seen.now());
    if !s.interactive() {
        s.record(Check::skip(
            "loop test",
            "not watching the loops (--no-wait)",
        ));
        return;
    }
    s.prompt(
        "loop test",
        &format!(
            "drive or walk over the arming loop, then the safety loop; changes show here \
             (for {watch:?}; Enter to stop)"
        ),
    );
    let deadline = Instant::now() + watch;
    loop {
        tokio::select! {
            event = presence.next_event() => match event {
                Ok(e) => {
                    if let Some(text) = seen.change(e) {
                        s.note("loop test", &text);
                    }
                }
                Err(e) => {
                    s.record(Check::fail("loop test", format!("the inputs stopped: {e}"), "see the log"));
                    return;
                }
            },
            _ = s.console().enter() => break,
            _ = sleep_until(deadline) => break,
        }
    }
    s.record(seen.verdict());
}

/// Shows changes until `done` holds (`true`) or `deadline` passes (`false`).
/// `done` reads the inputs as they are now, so a change that happened
/// before the call counts.
pub async fn wait_until<P: Presence, W: Write>(
    s: &mut Session<W>,
    presence: &mut P,
    seen: &mut LoopWatch,
    name: &str,
    deadline: Instant,
    done: impl Fn(&P) -> bool,
) -> Result<bool, HalError> {
    loop {
        if done(presence) {
            return Ok(true);
        }
        tokio::select! {
            event = presence.next_event() => {
                if let Some(text) = seen.change(event?) {
                    s.note(name, &text);
                }
            }
            _ = sleep_until(deadline) => return Ok(done(presence)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fakes::World;
    use super::super::report::Outcome;
    use super::*;

    fn ev(sensor: Sensor, state: SensorState) -> SensorEvent {
        SensorEvent { sensor, state }
    }

    #[test]
    fn only_real_changes_are_shown() {
        let (_world, parts) = World::new(SensorStates::default());
        let mut w = LoopWatch::new(&parts.presence);
        assert_eq!(w.change(ev(Sensor::Arming, SensorState::Clear)), None);
        assert_eq!(
            w.change(ev(Sensor::Arming, SensorState::Occupied))
                .as_deref(),
            Some("arming clear -> occupied")
        );
        assert_eq!(w.change(ev(Sensor::Arming, SensorState::Occupied)), None);
    }

    #[test]
    fn the_live_test_needs_both_loops_on_and_off() {
        let (_world, parts) = World::new(SensorStates::default());
        let mut w = LoopWatch::new(&parts.presence);
        w.change(ev(Sensor::Arming, SensorState::Occupied));
        w.change(ev(Sensor::Arming, SensorState::Clear));
        let half = w.verdict();
        assert_eq!(half.outcome, Outcome::Fail);
        assert_eq!(half.detail, "safety never occupied (2 change(s) seen)");
        w.change(ev(Sensor::Safety, SensorState::Occupied));
        w.change(ev(Sensor::Safety, SensorState::Clear));
        assert_eq!(w.verdict().outcome, Outcome::Pass);
        w.change(ev(Sensor::Safety, SensorState::Fault));
        assert!(w.verdict().detail.starts_with("safety faulted"));
    }

    #[test]
    fn a_faulted_loop_fails_now() {
        let start = SensorStates {
            safety: SensorState::Fault,
            ..Default::default()
        };
        let (_world, parts) = World::new(start);
        let c = LoopWatch::new(&parts.presence).now();
        assert_eq!(c.outcome, Outcome::Fail);
        assert_eq!(c.detail, "arming clear, safety fault, barrier_up clear");
        assert!(c.hint.unwrap().starts_with("safety report(s) a fault"));
    }
}
