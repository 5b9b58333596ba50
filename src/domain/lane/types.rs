//! The lane's vocabulary: what the daemon tells it ([`Input`]), what it asks
//! the daemon to do ([`Action`]), and how it is configured and reported.
//!
//! These are the lane's own small types, not the hal crate's: the daemon maps
//! between the two, so the state machine stays independent of the hardware.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use ulid::Ulid;

use crate::domain::contract::EventBody;
use crate::domain::model::{Role, VehicleClass};
use crate::domain::policy::Decision;
use crate::domain::time::Mono;

/// How long the barrier arm is assumed to take to come down when nothing
/// reports it: a vehicle reaching the safety loop within this time after
/// `Barrier(Down)` makes the lane raise the arm again.
pub const DEFAULT_FALL_MS: u64 = 4000;

/// One of the lane's binary sensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sensor {
    /// The loop before the barrier: a vehicle is waiting to be let through.
    Arming,
    /// The loop under and just past the arm: the barrier must not come down on it.
    Safety,
    /// The optional limit switch that closes when the arm is fully up.
    BarrierUp,
}

/// What a sensor reports. `Fault` counts as `Occupied` everywhere (a broken
/// loop must never let the arm come down on a car).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SensorState {
    Clear,
    Occupied,
    Fault,
}

impl SensorState {
    /// Whether the sensor must be treated as "vehicle present" (or "arm up").
    pub fn is_set(self) -> bool {
        self != SensorState::Clear
    }
}

/// The sensors as they read when the lane starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sensors {
    /// The loop before the barrier.
    pub arming: SensorState,
    /// The loop under and just past the arm.
    pub safety: SensorState,
    /// `None`: the lane has no barrier-up switch, so the last command is
    /// taken as the arm's position (a later `BarrierUp` input turns it on).
    pub barrier_up: Option<SensorState>,
}

impl Default for Sensors {
    fn default() -> Self {
        Sensors {
            arming: SensorState::Clear,
            safety: SensorState::Clear,
            barrier_up: None,
        }
    }
}

/// A command to the lane: from HQ (signature, target and expiry already
/// checked by the link) or from a technician on the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// Let one vehicle through without a card.
    Open,
    /// Deny every credential (entries) until [`Command::Unlock`].
    Lockdown,
    /// End a lockdown.
    Unlock,
}

/// Who gave a [`Command`], for the alert that records it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// Head office, over the link.
    Hq,
    /// A technician on site, through the local control socket.
    Technician,
}

/// What the card reader says about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderHealth {
    /// Reading cards.
    Online,
    /// Not answering; why, for the technician.
    Offline(String),
}

/// Everything that can happen to a lane; fed to [`super::Lane::step`].
// `Decided` is large, but an input is built once and moved once: boxing it
// would only burden the daemon.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A sensor changed (repeats of the same state are harmless).
    Sensor(Sensor, SensorState),
    /// A card was read: its UID in upper-case hex.
    Card(String),
    /// A card gave this UID but failed authentication (a clone, a damaged
    /// card). It goes through the same lane rules as any other read.
    CardAuthFailed(String),
    /// Something was presented but not read cleanly.
    Misread,
    /// The reader went offline or came back (sent on a change).
    Reader(ReaderHealth),
    /// The answer to [`Action::Decide`].
    Decided(Decision),
    /// The answer to the oldest unanswered [`Action::Record`]: committed, or
    /// why the transaction failed.
    Committed(Result<(), String>),
    /// A command, and who gave it.
    Command(Command, By),
    /// The wall clock is in doubt (it stepped against the monotonic one, or
    /// the kernel says it is not synchronised): the sentence for the
    /// `clock_unsynced` alert.
    ClockUnsynced(String),
    /// An output (barrier relay) refused a command: why.
    OutputFailed(String),
    /// An alert raised outside the lane, e.g. by the HQ link (a replay it
    /// cannot serve, a malformed message): recorded like the lane's own.
    Raise(crate::domain::contract::Alert),
    /// A timer fired (or a periodic tick): `now` says what time it is.
    Tick,
}

/// Which way to drive the barrier arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BarrierCommand {
    Up,
    Down,
}

/// The colour of the lane's light.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Light {
    /// Dark.
    Off,
    Green,
    Red,
}

/// What the driver sees and hears.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    /// Green: drive on; red: stop.
    pub light: Light,
    /// A short buzz, for refusals.
    pub beep: bool,
    /// The display line, e.g. "Welcome Alice - spot B1-042".
    pub text: String,
}

/// What the lane asks the daemon to do, in order.
///
/// Every `Decide` is answered by exactly one [`Input::Decided`] and every
/// `Record` by exactly one [`Input::Committed`], in the order they were asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Read the store's facts on this credential, run `policy::decide` and
    /// answer [`Input::Decided`].
    Decide(String),
    /// Commit this in one store transaction (journal + outbox, and its
    /// effects) and answer [`Input::Committed`].
    Record(Commit),
    /// Drive the barrier arm.
    Barrier(BarrierCommand),
    /// Light, buzzer and display.
    Show(Signal),
    /// Send [`Input::Tick`] at this monotonic time. Replaces any earlier
    /// `WakeAt`; an extra or late tick is harmless.
    WakeAt(Mono),
}

/// One store transaction the lane asks for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Commit {
    /// The events, in order, each with the id the lane minted for it (so an
    /// alert names the passage it follows before either is committed).
    pub events: Vec<Draft>,
    /// Persist the lockdown flag (survives a restart) with these events.
    pub lockdown: Option<bool>,
}

/// An event as the lane makes it; the store adds the envelope (`gate_seq`,
/// the gate's names, the time and the clock's state).
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// A ULID, unique and the same on every retry.
    pub event_id: String,
    pub body: EventBody,
}

/// How one lane is set up.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneConfig {
    /// Entry, exit or both: what an HQ `Open` records and whether a refusal
    /// must still let a vehicle out.
    pub role: Role,
    /// The config file's `[lane]` section.
    pub timings: LaneTimings,
    /// HQ's lockdown as persisted across restarts.
    pub lockdown: bool,
    /// Time the arm takes to come down; see [`DEFAULT_FALL_MS`].
    pub fall_ms: u64,
    /// Where event ids start: the daemon passes a fresh ULID at start-up and
    /// the lane mints each next id by incrementing it (80 random bits, so ids
    /// stay unique across gates and restarts; `gate_seq` gives the order).
    pub first_id: Ulid,
}

impl LaneConfig {
    /// A lane of `role` with `timings`, not locked down, default fall
    /// time, ids from `first_id`.
    pub fn new(role: Role, timings: LaneTimings, first_id: Ulid) -> LaneConfig {
        LaneConfig {
            role,
            timings,
            lockdown: false,
            fall_ms: DEFAULT_FALL_MS,
            first_id,
        }
    }
}

/// This lane's vehicle counters per class (only ever growing, as the
/// contract's occupancy topic wants): a voided check_in counts as an exit and
/// a voided check_out as an entry, so `entered - exited` stays exact and a
/// sibling that keeps the highest counter seen never misses a correction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    /// Committed check_ins, plus voided check_outs.
    pub entered: BTreeMap<VehicleClass, u64>,
    /// Committed check_outs, plus voided check_ins.
    pub exited: BTreeMap<VehicleClass, u64>,
}

impl Counters {
    /// Net vehicles per class (`entered - exited`), every class listed.
    pub fn net(&self) -> BTreeMap<VehicleClass, i64> {
        let get = |m: &BTreeMap<VehicleClass, u64>, c| m.get(&c).copied().unwrap_or(0) as i64;
        VehicleClass::ALL
            .into_iter()
            .map(|c| (c, get(&self.entered, c) - get(&self.exited, c)))
            .collect()
    }
}

/// What the lane is doing, for the status topic and `parkgate status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Barrier down, waiting for a vehicle.
    Idle,
    /// Waiting for the policy's answer on a card.
    Deciding,
    /// Waiting for the store to commit a passage before raising the barrier.
    Committing,
    /// Barrier up for an authorised vehicle that has not passed yet.
    Open,
    /// The vehicle passed (or the arm reversed); waiting to lower the arm.
    Closing,
}

impl Phase {
    /// The status topic's `lane` string.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Idle => "idle",
            Phase::Deciding => "deciding",
            Phase::Committing => "committing",
            Phase::Open => "open",
            Phase::Closing => "closing",
        }
    }
}

/// A snapshot of the lane for status reports.
#[derive(Debug, Clone, PartialEq)]
pub struct LaneStatus {
    /// The status topic's `lane` field (see [`Phase::as_str`]).
    pub phase: Phase,
    /// The last command given to the arm.
    pub barrier: BarrierCommand,
    pub lockdown: bool,
    /// A loop or the barrier switch is in a fault episode.
    pub fault: bool,
    /// The card reader answers.
    pub reader_online: bool,
    /// Net vehicles per class through this lane (see [`Counters`]).
    pub occupancy: BTreeMap<VehicleClass, i64>,
}

/// Lane timings, all in milliseconds or seconds as named.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LaneTimings {
    /// Accept a card only while a vehicle is on the arming loop.
    pub require_vehicle: bool,
    /// The same card read again within this window is the same tap.
    pub repeat_read_ms: u64,
    /// An accepted vehicle that has not passed by then is voided.
    pub pass_timeout_s: u64,
    /// A barrier up this long with nothing passing raises `barrier_held_open`.
    pub held_open_s: u64,
    /// A loop occupied this long raises `loop_fault`.
    pub loop_fault_s: u64,
    /// Wait this long after the safety loop clears before lowering.
    pub close_delay_ms: u64,
    /// A passage's or a refusal's signal stays this long, then the lamps go
    /// back to `idle_light`.
    pub signal_s: u64,
    /// What the lamps show while nothing is happening.
    pub idle_light: IdleLight,
}

/// The lamps between vehicles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IdleLight {
    /// Both lamps off.
    Dark,
    /// Red: stop until a card is accepted.
    #[default]
    Red,
}

impl Default for LaneTimings {
    fn default() -> Self {
        LaneTimings {
            require_vehicle: true,
            repeat_read_ms: 3000,
            pass_timeout_s: 30,
            held_open_s: 60,
            loop_fault_s: 600,
            close_delay_ms: 500,
            signal_s: 5,
            idle_light: IdleLight::Red,
        }
    }
}
