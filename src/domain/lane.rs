//! The lane state machine: loops, barrier, timers, alerts.
//!
//! Pure, like rumqttc's `state.rs`: [`Lane::step`] takes one [`Input`] and
//! the time, updates the state and returns the [`Action`]s for the daemon to
//! carry out in order. No I/O, no clock, no tokio: a timer is
//! [`Action::WakeAt`] out and [`Input::Tick`] back in.
//!
//! One card read, end to end: `Card` → `Decide` → `Decided(Admit)` →
//! `Record([check_in, policy alerts...])` (one transaction; the lane mints
//! every event id, so each alert already names its check_in) →
//! `Committed(Ok)` → `Barrier(Up)` + `Show` → the safety loop is occupied
//! then cleared (the vehicle passed) → after `close_delay_ms`
//! `Barrier(Down)`, and the lamps go back to idle.
//! The barrier never rises for an entry before its check_in is committed.
//!
//! Time is [`Mono`], a monotonic clock: every timer, timeout and repeat
//! window is immune to the wall clock being stepped. The lane never sees the
//! wall clock; the daemon stamps events with it.
//!
//! Rules the lane keeps:
//! - One vehicle at a time. A card read (clean, failed authentication or
//!   garbled) while a decision, commit, open barrier or queued `Open` is in
//!   progress is ignored (not queued: the driver behind has not reached the
//!   arming loop yet and taps again). The same card within `repeat_read_ms`
//!   of its last read is ignored too.
//! - A card read with no vehicle on the arming loop is refused with
//!   `no_vehicle_present`, naming the card's user if the store knows it.
//! - The arm never comes down on the safety loop while it is occupied or
//!   faulted, and goes back up if a vehicle reaches it while it falls.
//! - A vehicle passes when the safety loop, having seen `Occupied`, clears.
//!   It uses up the open authorisation, or else raises `tailgating` (the arm
//!   is still up after an authorised passage) or `unauthorized_vehicle`.
//! - Counters change only with committed events, so they always equal what
//!   the journal implies (see [`Counters`]).
//! - No event is lost to a failed commit: denials, alerts and voids are
//!   committed again, under the same ids, [`RETRY_MS`] later (a passage's
//!   own failure is the `storage_fault` alert beside it).
//! - An exit never traps a car: a failed commit of a check_out still opens,
//!   and on an exit lane a refusal (an unknown, cloned or unreadable card)
//!   becomes a check_out of an unidentified vehicle (the refusal's alert is
//!   still recorded).
//! - A signal shows for `signal_s`, then the lamps go back to the idle
//!   light; a green never stays lit over a lowered arm.
//! - A lane that starts with the arm up (its switch says so) keeps it up
//!   while a vehicle is under it, then lowers it; a vehicle found on a loop
//!   at start-up is nobody's passage and raises no alert when it leaves.

mod alerts;
#[cfg(test)]
mod field_tests;
mod flow;
mod guard;
#[cfg(test)]
mod guard_tests;
mod ids;
#[cfg(test)]
pub(crate) mod proptests;
#[cfg(test)]
mod tests;
mod types;

use std::collections::VecDeque;
use std::time::Duration;

pub use types::{
    Action, BarrierCommand, By, Command, Commit, Counters, DEFAULT_FALL_MS, Draft, IdleLight,
    Input, LaneConfig, LaneStatus, LaneTimings, Light, Phase, ReaderHealth, Sensor, SensorState,
    Sensors, Signal,
};

use self::alerts::About;
use self::ids::Ids;
use crate::domain::contract::EventBody;
use crate::domain::model::{Direction, VehicleClass};
use crate::domain::time::Mono;

pub use crate::domain::policy::OUT_OF_ORDER;
/// Shown for a card read with no vehicle on the arming loop.
pub const NO_VEHICLE: &str = "Drive onto the loop, then present your card";
/// Shown when HQ opens the barrier.
pub const OPENED: &str = "Opened by security - please drive through";
/// Shown for a garbled read.
pub const TAP_AGAIN: &str = "Please tap your card again";
/// Shown between vehicles.
pub const IDLE_TEXT: &str = "Please present your card";

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
    /// A `Decide` is out.
    deciding: Option<flow::Deciding>,
    /// What each unanswered `Record` was for, oldest first.
    pending: VecDeque<Pending>,
    /// The authorisation the arm is up for, not yet used.
    grant: Option<Grant>,
    /// The last used authorisation, for a tailgating alert.
    passed: Option<About>,
    /// When to lower the arm after a passage.
    close_at: Option<Mono>,
    open_pending: bool,
    counters: Counters,
    /// The last `WakeAt` given.
    wake: Option<Mono>,
    reader_online: bool,
    /// What the lamps show now (`None` before the first signal).
    light: Option<Light>,
    /// When the current signal gives way to the idle light.
    signal_until: Option<Mono>,
    ids: Ids,
    /// Events whose commit failed, to be committed again at `retry_at`.
    unrecorded: Events,
    retry_at: Option<Mono>,
}

/// How long after a failed commit its events are tried again.
pub const RETRY_MS: u64 = 5_000;
/// At most this many failed events are kept for another try (the oldest go
/// first): a store that never recovers must not grow the lane for ever.
pub const MAX_UNRECORDED: usize = 10_000;

#[derive(Debug, Clone)]
struct RecentCard {
    card: String,
    at: Mono,
    /// Refused for no vehicle: a vehicle arriving may tap again at once.
    no_vehicle: bool,
}

/// What an unanswered `Record` was for.
#[derive(Debug, Clone)]
enum Pending {
    Passage(PendingPassage),
    /// Events nothing waits on (denials, alerts, voids): committed again
    /// later if this commit fails, so a full disk loses none of them.
    Events(Events),
}

/// Events nothing waits on, as committed together.
#[derive(Debug, Clone, Default)]
struct Events {
    /// Each event, and for a `void` what it undoes once committed.
    drafts: Vec<(Draft, Option<Voided>)>,
    /// They carry a lockdown change: persist the lane's flag with them.
    lockdown: bool,
}

/// The direction and class of a voided passage, to count back.
type Voided = (Direction, Option<VehicleClass>);

impl Events {
    fn of(drafts: Vec<Draft>) -> Events {
        Events {
            drafts: drafts.into_iter().map(|d| (d, None)).collect(),
            lockdown: false,
        }
    }
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
    alerts: Vec<Draft>,
}

/// One vehicle may pass: the arm is up for it.
#[derive(Debug, Clone)]
struct Grant {
    direction: Direction,
    class: Option<VehicleClass>,
    /// `event_id` is `None` for an exit the store failed to record.
    about: About,
    at: Mono,
}

/// A loop's current spell of being set (occupied or faulted).
#[derive(Debug, Clone, Default)]
struct Episode {
    since: Option<Mono>,
    /// `Occupied` was seen (a fault alone is not a vehicle).
    saw_vehicle: bool,
    alerted: bool,
    /// Set at start-up: a vehicle there then is nobody's passage.
    inherited: bool,
}

impl Episode {
    /// Follows a loop from `old` to `new`; true when a vehicle (not one
    /// found there at start-up) left it.
    fn track(&mut self, old: SensorState, new: SensorState, now: Mono) -> bool {
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
            let left = old.is_set() && self.saw_vehicle && !self.inherited;
            *self = Episode::default();
            left
        }
    }
}

/// The barrier arm as commanded.
#[derive(Debug, Clone)]
struct Arm {
    commanded: BarrierCommand,
    /// When this lane gave the command (`None`: the position it found).
    at: Option<Mono>,
    /// Start of the current spell of "up with nothing passing" (or stuck up).
    held_since: Option<Mono>,
    held_alerted: bool,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

impl Lane {
    /// A lane as it starts from its sensors: the arm is taken to be where
    /// its switch says (down without a switch), counters zero until
    /// [`Lane::seed_counters`]. Call `step(Input::Tick, now)` once next for
    /// the idle lamps, startup alerts and the first `WakeAt`.
    ///
    /// An arm found up is left up (no command: the daemon must not pulse an
    /// output as it starts) and lowered like any other once nothing is under
    /// it; vehicles found on the loops are nobody's passage.
    pub fn new(cfg: LaneConfig, sensors: Sensors, now: Mono) -> Lane {
        let episode = |s: SensorState| Episode {
            since: s.is_set().then_some(now),
            saw_vehicle: s == SensorState::Occupied,
            alerted: false,
            inherited: s.is_set(),
        };
        let up = sensors.barrier_up == Some(SensorState::Occupied);
        Lane {
            lockdown: cfg.lockdown,
            arming: sensors.arming,
            safety: sensors.safety,
            switch: sensors.barrier_up,
            arming_ep: episode(sensors.arming),
            safety_ep: episode(sensors.safety),
            switch_fault_alerted: false,
            arm: Arm {
                commanded: if up {
                    BarrierCommand::Up
                } else {
                    BarrierCommand::Down
                },
                // Not commanded by this lane, so not falling either.
                at: None,
                held_since: up.then_some(now),
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
            reader_online: true,
            light: None,
            signal_until: None,
            ids: Ids::new(cfg.first_id),
            unrecorded: Events::default(),
            retry_at: None,
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
            reader_online: self.reader_online,
            occupancy: self.occupancy(),
        }
    }

    /// Feeds one input at monotonic time `now`; returns what to do, in order.
    pub fn step(&mut self, input: Input, now: Mono) -> Vec<Action> {
        let mut out = Vec::new();
        match input {
            Input::Sensor(sensor, state) => self.sensor(sensor, state, now, &mut out),
            Input::Card(card) => self.card(card, false, now, &mut out),
            Input::CardAuthFailed(card) => self.card(card, true, now, &mut out),
            Input::Misread => self.misread(now, &mut out),
            Input::Reader(health) => self.reader(health, &mut out),
            Input::Decided(decision) => self.decided(decision, now, &mut out),
            Input::Committed(result) => self.committed(result, now, &mut out),
            Input::Command(command, by) => self.command(command, by, &mut out),
            Input::ClockUnsynced(message) => {
                let alert = alerts::clock_unsynced(message);
                self.note(vec![alert], &mut out);
            }
            Input::OutputFailed(why) => {
                let alert = alerts::output_failed(&why);
                self.note(vec![alert], &mut out);
            }
            Input::Raise(alert) => self.note(vec![EventBody::Alert(alert)], &mut out),
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

    /// Asks for a passage's events to be committed, each under its minted
    /// id (see [`Lane::mint`]).
    fn record(&mut self, events: Vec<Draft>, pending: PendingPassage, out: &mut Vec<Action>) {
        self.pending.push_back(Pending::Passage(pending));
        out.push(Action::Record(Commit {
            events,
            lockdown: None,
        }));
    }

    /// Asks for events nothing waits on to be committed.
    fn record_events(&mut self, events: Events, out: &mut Vec<Action>) {
        out.push(Action::Record(Commit {
            events: events.drafts.iter().map(|(d, _)| d.clone()).collect(),
            lockdown: events.lockdown.then_some(self.lockdown),
        }));
        self.pending.push_back(Pending::Events(events));
    }

    /// Records alerts that nothing waits on.
    fn note(&mut self, events: Vec<EventBody>, out: &mut Vec<Action>) {
        let drafts = events.into_iter().map(|e| self.mint(e)).collect();
        self.record_events(Events::of(drafts), out);
    }

    /// Keeps events whose commit failed for another try at `retry_at`.
    fn unrecorded(&mut self, events: Events, now: Mono) {
        self.unrecorded.drafts.extend(events.drafts);
        self.unrecorded.lockdown |= events.lockdown;
        let excess = self.unrecorded.drafts.len().saturating_sub(MAX_UNRECORDED);
        self.unrecorded.drafts.drain(..excess);
        self.retry_at.get_or_insert(now + ms(RETRY_MS));
    }

    /// Gives `body` the next event id.
    fn mint(&mut self, body: EventBody) -> Draft {
        Draft {
            event_id: self.ids.next(),
            body,
        }
    }

    /// Shows `text` in `light` (a red one beeps) for `signal_s`.
    fn show(&mut self, light: Light, text: &str, now: Mono, out: &mut Vec<Action>) {
        out.push(Action::Show(Signal {
            light,
            beep: light == Light::Red,
            text: text.to_string(),
        }));
        self.light = Some(light);
        self.signal_until = Some(now + secs(self.cfg.timings.signal_s));
    }

    /// Back to the idle lamps, unless they already show.
    fn idle(&mut self, out: &mut Vec<Action>) {
        let light = match self.cfg.timings.idle_light {
            IdleLight::Dark => Light::Off,
            IdleLight::Red => Light::Red,
        };
        self.signal_until = None;
        if self.light == Some(light) {
            return;
        }
        self.light = Some(light);
        out.push(Action::Show(Signal {
            light,
            beep: false,
            text: IDLE_TEXT.to_string(),
        }));
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
