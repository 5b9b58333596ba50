//! The loops and the barrier-up switch on GPIO inputs: polarity, debounce,
//! and the [`Presence`] the lane reads.
//!
//! Inputs are sampled every [`POLL`] rather than woken by edge interrupts: a
//! register read costs nothing, the time base is tokio's (so tests run on a
//! paused clock), and a level that settles without a clean edge is still seen.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

use super::seam::{InputLine, Level};
use crate::{HalError, Presence, Sensor, SensorEvent, SensorState};

/// How often the inputs are sampled. Well under any useful debounce time,
/// and 200 register reads a second are nothing to a Pi.
pub const POLL: Duration = Duration::from_millis(5);

/// Debouncing that errs on the side of a vehicle: a reading that something
/// is there (occupied, or a fault, which the lane counts as a vehicle)
/// counts at once, so a car arriving under the barrier is never seen late;
/// "clear" counts only once it has held for `hold`, so a contact bounce or
/// a gap between a car and its trailer never reads as an empty loop.
#[derive(Debug, Clone)]
pub struct Debounce {
    stable: SensorState,
    candidate: Option<(SensorState, Instant)>,
    hold: Duration,
}

impl Debounce {
    /// Starts settled at `start`: the state read at start-up counts at once,
    /// since the lane must start from the real state, not wait for it.
    pub fn new(start: SensorState, hold: Duration) -> Debounce {
        Debounce {
            stable: start,
            candidate: None,
            hold,
        }
    }

    /// The state that counts.
    pub fn state(&self) -> SensorState {
        self.stable
    }

    /// Takes a raw reading made at `now`; returns the new state if this
    /// reading made it count.
    pub fn sample(&mut self, raw: SensorState, now: Instant) -> Option<SensorState> {
        if raw == self.stable {
            self.candidate = None;
            return None;
        }
        if raw != SensorState::Clear {
            self.stable = raw;
            self.candidate = None;
            return Some(raw);
        }
        let since = match self.candidate {
            Some((state, since)) if state == raw => since,
            _ => {
                self.candidate = Some((raw, now));
                now
            }
        };
        if now.saturating_duration_since(since) >= self.hold {
            self.stable = raw;
            self.candidate = None;
            return Some(raw);
        }
        None
    }
}

/// What one line says, given the level at which it means "there": a line
/// that cannot be read is a fault, which the lane counts as a vehicle.
pub fn reading<I: InputLine>(line: &I, active: Level) -> (SensorState, Option<String>) {
    match line.read() {
        Ok(level) if level == active => (SensorState::Occupied, None),
        Ok(_) => (SensorState::Clear, None),
        Err(e) => (SensorState::Fault, Some(e.to_string())),
    }
}

struct Input<I> {
    sensor: Sensor,
    line: I,
    active: Level,
    debounce: Debounce,
    /// The last read error, logged when the input turns to a fault.
    error: Option<String>,
}

/// The fitted inputs of a lane, debounced ([`Presence`]).
pub struct GpioPresence<I> {
    inputs: Vec<Input<I>>,
    /// Changes found by one sampling round and not handed out yet.
    pending: VecDeque<SensorEvent>,
    tick: Interval,
}

impl<I: InputLine> GpioPresence<I> {
    /// Reads each line once: that is [`Presence::current`] until a change
    /// has held for `hold`. Must be called inside a tokio runtime.
    pub fn new(lines: Vec<(Sensor, I, Level)>, hold: Duration) -> GpioPresence<I> {
        let inputs = lines
            .into_iter()
            .map(|(sensor, line, active)| {
                let (state, error) = reading(&line, active);
                if let Some(error) = &error {
                    tracing::warn!(%sensor, %error, "input unreadable at start: a fault");
                }
                Input {
                    sensor,
                    line,
                    active,
                    debounce: Debounce::new(state, hold),
                    error,
                }
            })
            .collect();
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
        GpioPresence {
            inputs,
            pending: VecDeque::new(),
            tick,
        }
    }

    /// Reads every input once, queueing what changed.
    fn sample(&mut self, now: Instant) {
        for input in &mut self.inputs {
            let (raw, error) = reading(&input.line, input.active);
            if error.is_some() {
                input.error = error;
            }
            if let Some(state) = input.debounce.sample(raw, now) {
                if state == SensorState::Fault {
                    let error = input.error.as_deref().unwrap_or("?");
                    tracing::warn!(sensor = %input.sensor, %error, "input unreadable: a fault");
                }
                self.pending.push_back(SensorEvent {
                    sensor: input.sensor,
                    state,
                });
            }
        }
    }
}

impl<I: InputLine> Presence for GpioPresence<I> {
    async fn next_event(&mut self) -> Result<SensorEvent, HalError> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Ok(event);
            }
            // Cancel-safe: a dropped tick loses nothing, and sampling happens
            // only after it, synchronously, with its results kept in `pending`.
            self.tick.tick().await;
            self.sample(Instant::now());
        }
    }

    fn current(&self, sensor: Sensor) -> SensorState {
        self.inputs
            .iter()
            .find(|i| i.sensor == sensor)
            .map_or(SensorState::Clear, |i| i.debounce.state())
    }

    fn fitted(&self, sensor: Sensor) -> bool {
        self.inputs.iter().any(|i| i.sensor == sensor)
    }
}
