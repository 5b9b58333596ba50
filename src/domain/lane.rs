//! The lane state machine: loops, barrier, timers, alerts.
//!
//! Pure, like rumqttc's `state.rs`: [`Lane::step`] takes one [`Input`] and
//! the time, updates the state and returns the [`Action`]s for the daemon to
//! carry out in order. No I/O, no clock, no tokio: a timer is
//! [`Action::WakeAt`] out and [`Input::Tick`] back in.
//!
//! One card read, end to end: `Card` → `Decide` → `Decided(Admit)` →
//! `Record([check_in, policy alerts...])` (one transaction; the store names
//! the check_in in each alert) → `Committed(Ok(ids))` → `Barrier(Up)` +
//! `Show` → the safety loop is occupied then cleared (the vehicle passed) →
//! after `close_delay_ms` `Barrier(Down)`.
//! The barrier never rises for an entry before its check_in is committed.
//!
//! Rules the lane keeps:
//! - One vehicle at a time. A card read while a decision, commit, open
//!   barrier or queued `Open` is in progress is ignored (not queued: the
//!   driver behind has not reached the arming loop yet and taps again). The
//!   same card within `repeat_read_ms` of its last read is ignored too.
//! - The arm never comes down on the safety loop while it is occupied or
//!   faulted, and goes back up if a vehicle reaches it while it falls.
//! - A vehicle passes when the safety loop, having seen `Occupied`, clears.
//!   It uses up the open authorisation, or else raises `tailgating` (the arm
//!   is still up after an authorised passage) or `unauthorized_vehicle`.
//! - Counters change only with committed events, so they always equal what
//!   the journal implies (see [`Counters`]).
//! - An exit never traps a car: a failed commit of a check_out still opens,
//!   and on an exit lane a refusal becomes a check_out of an unidentified
//!   vehicle (the refusal's alert is still recorded).

mod alerts;
mod flow;
mod guard;
#[cfg(test)]
mod guard_tests;
#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;
mod types;

use std::collections::VecDeque;

use chrono::TimeDelta;

pub use types::{
    Action, BarrierCommand, Command, Counters, DEFAULT_FALL_MS, Input, LaneConfig, LaneStatus,
    LaneTimings, Light, Phase, Sensor, SensorState, Sensors, Signal,
};

use self::alerts::About;
use crate::domain::contract::{Alert, EventBody};
use crate::domain::model::{Direction, Timestamp, VehicleClass};

/// Shown when the store cannot record an entry.
pub const OUT_OF_ORDER: &str = "Out of order - call security";
/// Shown for a card read with no vehicle on the arming loop.
pub const NO_VEHICLE: &str = "Drive onto the loop, then present your card";
/// Shown when HQ opens the barrier.
pub const OPENED: &str = "Opened by security - please drive through";

/// The lane: feed it inputs with [`Lane::step`], carry out its actions.
#[derive(Debug, Clone)]
pub struct Lane {
    cfg: LaneConfig,
    lockdown: bool,
    arming: SensorState,
    safety: SensorState,
    /// `None` until the lane hears of a barrier-up switch.
    switch: Option<SensorState>,
    arming_ep: Episode,
    safety_ep: Episode,
    switch_fault_alerted: bool,
    arm: Arm,
    recent: Option<RecentCard>,
    /// A `Decide` is out for this card.
    deciding: Option<String>,
    /// What each unanswered `Record` was for, oldest first.
    pending: VecDeque<Pending>,
    /// The authorisation the arm is up for, not yet used.
    grant: Option<Grant>,
    /// The last used authorisation, for a tailgating alert.
    passed: Option<About>,
    /// When to lower the arm after a passage.
    close_at: Option<Timestamp>,
    open_pending: bool,
    counters: Counters,
    /// The last `WakeAt` given.
    wake: Option<Timestamp>,
}

#[derive(Debug, Clone)]
struct RecentCard {
    card: String,
    at: Timestamp,
    /// Refused for no vehicle: a vehicle arriving may tap again at once.
    no_vehicle: bool,
}

/// What an unanswered `Record` was for.
#[derive(Debug, Clone)]
enum Pending {
    Passage(PendingPassage),
    /// A `denied` and its alert (if any), committed together; the alert is
    /// recorded alone if that commit fails.
    Denial(Option<Alert>),
    /// A `void` of a passage in this direction and class.
    Void(Direction, Option<VehicleClass>),
    /// Alerts: nothing waits on them.
    Note,
}

/// An admitted passage (or HQ open) whose event is being committed.
#[derive(Debug, Clone)]
struct PendingPassage {
    direction: Direction,
    class: Option<VehicleClass>,
    display: String,
    about: About,
    /// The policy's alerts, committed with the passage; kept to record them
    /// again (beside a `storage_fault`) if that commit fails.
    alerts: Vec<Alert>,
}

/// One vehicle may pass: the arm is up for it.
#[derive(Debug, Clone)]
struct Grant {
    direction: Direction,
    class: Option<VehicleClass>,
    /// `event_id` is `None` for an exit the store failed to record.
    about: About,
    at: Timestamp,
}

/// A loop's current spell of being set (occupied or faulted).
#[derive(Debug, Clone, Default)]
struct Episode {
    since: Option<Timestamp>,
    /// `Occupied` was seen (a fault alone is not a vehicle).
    saw_vehicle: bool,
    alerted: bool,
}

impl Episode {
    /// Follows a loop from `old` to `new`; true when a vehicle left it.
    fn track(&mut self, old: SensorState, new: SensorState, now: Timestamp) -> bool {
        if new.is_set() {
            if !old.is_set() {
                *self = Episode {
                    since: Some(now),
                    ..Episode::default()
                };
            }
            self.saw_vehicle |= new == SensorState::Occupied;
            false
        } else {
            let left = old.is_set() && self.saw_vehicle;
            *self = Episode::default();
            left
        }
    }
}

/// The barrier arm as commanded.
#[derive(Debug, Clone)]
struct Arm {
    commanded: BarrierCommand,
    at: Timestamp,
    /// Start of the current spell of "up with nothing passing" (or stuck up).
    held_since: Option<Timestamp>,
    held_alerted: bool,
}

fn ms(n: u64) -> TimeDelta {
    TimeDelta::milliseconds(i64::try_from(n).unwrap_or(i64::MAX / 2))
}

fn secs(n: u64) -> TimeDelta {
    ms(n.saturating_mul(1000))
}

fn show(light: Light, text: &str) -> Action {
    Action::Show(Signal {
        light,
        beep: light == Light::Red,
        text: text.to_string(),
    })
}

impl Lane {
    /// A lane as it starts: barrier assumed down (an arm reported up is
    /// treated as stuck), counters zero until [`Lane::seed_counters`]. Call
    /// `step(Input::Tick, now)` once next for startup alerts and the first
    /// `WakeAt`.
    pub fn new(cfg: LaneConfig, sensors: Sensors, now: Timestamp) -> Lane {
        let episode = |s: SensorState| Episode {
            since: s.is_set().then_some(now),
            saw_vehicle: s == SensorState::Occupied,
            alerted: false,
        };
        let stuck = sensors.barrier_up == Some(SensorState::Occupied);
        Lane {
            lockdown: cfg.lockdown,
            arming: sensors.arming,
            safety: sensors.safety,
            switch: sensors.barrier_up,
            arming_ep: episode(sensors.arming),
            safety_ep: episode(sensors.safety),
            switch_fault_alerted: false,
            arm: Arm {
                commanded: BarrierCommand::Down,
                // Long enough ago that it is not falling any more.
                at: now - ms(cfg.fall_ms),
                held_since: stuck.then_some(now),
                held_alerted: false,
            },
            recent: None,
            deciding: None,
            pending: VecDeque::new(),
            grant: None,
            passed: None,
            close_at: None,
            open_pending: false,
            counters: Counters::default(),
            wake: None,
            cfg,
        }
    }

    /// Replaces the counters, e.g. with what the store's journal implies
    /// after a restart.
    pub fn seed_counters(&mut self, counters: Counters) {
        self.counters = counters;
    }

    /// This lane's counters per class (see [`Counters`]).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Net vehicles per class through this lane (entered - exited), voided
    /// passages excluded; every class is listed.
    pub fn occupancy(&self) -> std::collections::BTreeMap<VehicleClass, i64> {
        self.counters.net()
    }

    /// Whether HQ has locked the lane down: the daemon passes it to the policy.
    pub fn lockdown(&self) -> bool {
        self.lockdown
    }

    /// What the lane is doing, for status reports.
    pub fn status(&self) -> LaneStatus {
        let phase = if self.grant.is_some() {
            Phase::Open
        } else if self.committing() {
            Phase::Committing
        } else if self.deciding.is_some() {
            Phase::Deciding
        } else if self.arm.commanded == BarrierCommand::Up {
            Phase::Closing
        } else {
            Phase::Idle
        };
        let fault = [
            self.arming,
            self.safety,
            self.switch.unwrap_or(SensorState::Clear),
        ]
        .contains(&SensorState::Fault)
            || self.arming_ep.alerted
            || self.safety_ep.alerted;
        LaneStatus {
            phase,
            barrier: self.arm.commanded,
            lockdown: self.lockdown,
            fault,
            occupancy: self.occupancy(),
        }
    }

    /// Feeds one input at time `now`; returns what to do, in order.
    pub fn step(&mut self, input: Input, now: Timestamp) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Sensor(sensor, state) => self.sensor(sensor, state, now, &mut out),
            Input::Card(card) => self.card(card, now, &mut out),
            Input::Decided(decision) => self.decided(decision, &mut out),
            Input::Committed(result) => self.committed(result, now, &mut out),
            Input::Command(Command::Open) => self.open_pending = true,
            Input::Command(Command::Lockdown) => self.lockdown = true,
            Input::Command(Command::Unlock) => self.lockdown = false,
            Input::Tick => {}
        }
        self.settle(now, &mut out);
        out
    }

    fn committing(&self) -> bool {
        self.pending
            .iter()
            .any(|p| matches!(p, Pending::Passage(_)))
    }

    /// Whether a vehicle is being handled: a new card must wait.
    fn busy(&self) -> bool {
        self.deciding.is_some() || self.grant.is_some() || self.open_pending || self.committing()
    }

    fn record(&mut self, events: Vec<EventBody>, pending: Pending, out: &mut Vec<Action>) {
        self.pending.push_back(pending);
        out.push(Action::Record(events));
    }

    fn count(&mut self, direction: Direction, class: Option<VehicleClass>) {
        let Some(class) = class else { return };
        let counter = match direction {
            Direction::In => &mut self.counters.entered,
            Direction::Out => &mut self.counters.exited,
        };
        *counter.entry(class).or_default() += 1;
    }
}
