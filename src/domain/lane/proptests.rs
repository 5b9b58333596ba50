//! Random input sequences against the lane, with the daemon played by a
//! `World` that answers `Decide` and `Record` and keeps its own journal, and
//! the safety loop watched by an [`Oracle`] written apart from the lane.
//!
//! Each run starts the lane from random sensors (a vehicle or a fault may
//! already be on a loop, the arm may be up), then feeds up to 200 inputs:
//! loop and switch changes (faults included), clean reads, reads that failed
//! authentication, garbled reads, reader health, HQ's and a technician's
//! commands, clock steps, output failures, ticks, and the daemon's answers.
//! In half the runs the daemon delivers every `WakeAt` on time; in the others
//! only the random ticks come (a late tick is allowed by the contract).
//!
//! Checked after every step, by the oracle:
//! - every vehicle that passes (a spell of the safety loop in which
//!   `Occupied` was seen, not there at start-up, now clear) is, in the step
//!   it clears, exactly one of: the use of the open authorisation (a
//!   committed, not voided check_in or check_out for which the arm went
//!   up), or one `tailgating` / `unauthorized_vehicle` alert in that step's
//!   actions; no such alert is ever asked for without a passage; a used
//!   authorisation is never voided; a tailgating alert names the
//!   authorisation the vehicle followed;
//! - the arm is never commanded down while the safety loop holds something
//!   (a fault counts), nor left falling onto it;
//! - an authorisation opens (arm up) only on a committed passage, one at a
//!   time; and ends only by its use, or by its void along with the arm
//!   coming down.
//!
//! And by the world: the arm only rises for a commit or to spare a vehicle
//! under it; the lane's counters equal what the world's journal implies and
//! never go negative. At the end of a run without storage errors, the
//! totals agree too: vehicles passed = passages kept + stray alerts.
//!
//! Storage errors (a `Committed(Err)`; a decision the store could not read
//! facts for). The oracle checks what the lane *asks for*, so its per-passage
//! rule holds unchanged: a stray vehicle's alert is still asked for, even if
//! that commit later fails (the lane asks for it again, under the same id,
//! `RETRY_MS` later: the oracle counts each id once; the end-of-run totals
//! are only checked without errors, as the last retry may still fail). A check_in that fails to commit opens nothing (the arm stays
//! down, `storage_fault` is asked for). A check_out that fails still opens
//! the arm (an exit never traps a car): its authorisation has no event, and
//! the `storage_fault` alert asked for in that same step is the record of the
//! vehicle that uses it. A void asked for ends the authorisation whether or
//! not its commit succeeds; if it fails, the journal keeps a passage no
//! vehicle made, and the counters go on agreeing with the journal.
//!
//! Cases: `PROPTEST_CASES`, or 256 (see README, "Run the tests", for a
//! million-sequence run).

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};

use proptest::prelude::*;

use super::tests::{admit, at, config, deny, drafts, policy_alert};
use super::*;
use crate::domain::contract::{Alert, AlertKind, DenyReason};
use crate::domain::model::Role;
use crate::domain::policy::{self, Decision};

const CARDS: [&str; 3] = ["04A1", "04B2", "04C3"];
const CLASSES: [VehicleClass; 3] = [
    VehicleClass::Standard,
    VehicleClass::Compact,
    VehicleClass::Motorcycle,
];
/// What the store holds for an exit lane before the run (see `World::new`).
const SEED: i64 = 2;
/// The test config's `fall_ms` (see `tests::config`).
const FALL_MS: i64 = 4000;

/// The proptest config: `PROPTEST_CASES` if set, else `default` cases. Read
/// here rather than left to proptest's own precedence rules between an
/// explicit config and the variable, which changed across 1.x.
pub(crate) fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        ..ProptestConfig::default()
    }
}

#[derive(Debug, Clone)]
enum Op {
    Sensor(Sensor, SensorState),
    Card(usize),
    /// A read of this card that failed authentication.
    AuthFailed(usize),
    Misread,
    /// The reader is online (true) or went offline.
    Reader(bool),
    Command(Command, By),
    ClockUnsynced,
    OutputFailed,
    Tick,
    /// The daemon answers its oldest request; the number picks the answer.
    Reply(u32),
}

/// A loop's reading: mostly occupied or clear, sometimes a fault.
pub(crate) fn state() -> impl Strategy<Value = SensorState> {
    prop_oneof![6 => Just(SensorState::Occupied), 6 => Just(SensorState::Clear), 1 => Just(SensorState::Fault)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => state().prop_map(|s| Op::Sensor(Sensor::Arming, s)),
        5 => state().prop_map(|s| Op::Sensor(Sensor::Safety, s)),
        1 => state().prop_map(|s| Op::Sensor(Sensor::BarrierUp, s)),
        3 => (0..CARDS.len()).prop_map(Op::Card),
        1 => (0..CARDS.len()).prop_map(Op::AuthFailed),
        1 => Just(Op::Misread),
        1 => any::<bool>().prop_map(Op::Reader),
        1 => (
            prop_oneof![
                3 => Just(Command::Open),
                1 => Just(Command::Lockdown),
                1 => Just(Command::Unlock),
            ],
            prop_oneof![Just(By::Hq), Just(By::Technician)],
        )
            .prop_map(|(c, by)| Op::Command(c, by)),
        1 => prop_oneof![Just(Op::ClockUnsynced), Just(Op::OutputFailed)],
        2 => Just(Op::Tick),
        8 => any::<u32>().prop_map(Op::Reply),
    ]
}

/// Milliseconds to the next input: mostly a car's pace, sometimes long
/// enough for every timeout.
fn delay() -> impl Strategy<Value = i64> {
    prop_oneof![6 => 0..3_000i64, 1 => 0..200_000i64]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Entry), Just(Role::Exit), Just(Role::Both)]
}

/// The sensors at start-up: mostly clear, sometimes a vehicle or a fault on
/// a loop, the arm up, or no switch at all.
fn sensors() -> impl Strategy<Value = Sensors> {
    let start = || prop_oneof![4 => Just(SensorState::Clear), 1 => Just(SensorState::Occupied), 1 => Just(SensorState::Fault)];
    (start(), start(), prop::option::of(start())).prop_map(|(arming, safety, barrier_up)| Sensors {
        arming,
        safety,
        barrier_up,
    })
}

/// One run's set-up.
#[derive(Debug, Clone)]
struct Start {
    role: Role,
    sensors: Sensors,
    /// The daemon delivers every `WakeAt` on time (else only random ticks).
    punctual: bool,
}

fn start() -> impl Strategy<Value = Start> {
    (role(), sensors(), any::<bool>()).prop_map(|(role, sensors, punctual)| Start {
        role,
        sensors,
        punctual,
    })
}

fn ops() -> impl Strategy<Value = Vec<(i64, Op)>> {
    prop::collection::vec((delay(), op()), 1..200)
}

/// Whether a loop reading means "something is there". The oracle's own
/// rule, not `SensorState::is_set`: a fault may be a vehicle the loop cannot
/// see, so it holds the arm like one.
fn holds(state: SensorState) -> bool {
    match state {
        SensorState::Occupied | SensorState::Fault => true,
        SensorState::Clear => false,
    }
}

/// One spell of the safety loop holding something.
#[derive(Debug, Clone, Copy)]
struct Spell {
    /// `Occupied` was read during the spell (a fault alone is no vehicle).
    vehicle: bool,
    /// Already there at start-up: nobody's passage.
    inherited: bool,
}

/// An authorisation the arm is up for.
#[derive(Debug, Clone)]
struct Auth {
    /// The committed check_in or check_out; `None` for a check_out the store
    /// failed to record (the vehicle is let out anyway).
    event_id: Option<String>,
}

/// The alerts of `kinds` that `actions` ask to record.
fn alerts_of(actions: &[Action], kinds: &[AlertKind]) -> Vec<Alert> {
    drafts(actions)
        .into_iter()
        .filter_map(|d| match d.body {
            EventBody::Alert(a) if kinds.contains(&a.alert) => Some(a),
            _ => None,
        })
        .collect()
}

/// The alerts that stand for a vehicle passing without an authorisation.
const STRAYS: [AlertKind; 2] = [AlertKind::Tailgating, AlertKind::UnauthorizedVehicle];

/// Watches the safety loop and the lane's authorisations from the inputs and
/// actions alone (see the module doc for the rules). It shares no code with
/// the lane's `Episode`, `Grant` or `SensorState::is_set`.
#[derive(Debug)]
struct Oracle {
    safety: SensorState,
    spell: Option<Spell>,
    open: Option<Auth>,
    /// The last authorisation a vehicle used, since the last one opened:
    /// what a tailgating alert must name.
    followed: Option<Option<String>>,
    /// Event ids of the authorisations vehicles used: never to be voided.
    used: HashSet<String>,
    /// Vehicles that passed.
    passages: i64,
    /// Ids of every event the lane asked for: one asked for again is a
    /// retry of a failed commit, not a new event.
    asked: HashSet<String>,
}

impl Oracle {
    fn new(sensors: Sensors) -> Oracle {
        Oracle {
            safety: sensors.safety,
            spell: holds(sensors.safety).then_some(Spell {
                vehicle: sensors.safety == SensorState::Occupied,
                inherited: true,
            }),
            open: None,
            followed: None,
            used: HashSet::new(),
            passages: 0,
            asked: HashSet::new(),
        }
    }

    /// `actions` less the events asked for before (retries): each `Record`
    /// keeps only the events it asks for the first time.
    fn fresh(&mut self, actions: &[Action]) -> Vec<Action> {
        actions
            .iter()
            .map(|a| match a {
                Action::Record(commit) => {
                    let mut commit = commit.clone();
                    commit
                        .events
                        .retain(|d| self.asked.insert(d.event_id.clone()));
                    Action::Record(commit)
                }
                other => other.clone(),
            })
            .collect()
    }

    /// Whether the safety loop holds something now.
    fn held(&self) -> bool {
        holds(self.safety)
    }

    /// Follows the safety loop to `new`; true when a vehicle passed.
    fn safety_to(&mut self, new: SensorState) -> bool {
        self.safety = new;
        match (holds(new), &mut self.spell) {
            (true, Some(spell)) => {
                spell.vehicle |= new == SensorState::Occupied;
                false
            }
            (true, None) => {
                self.spell = Some(Spell {
                    vehicle: new == SensorState::Occupied,
                    inherited: false,
                });
                false
            }
            (false, spell) => spell.take().is_some_and(|s| s.vehicle && !s.inherited),
        }
    }

    /// Checks one step: `input` went in, `answered` is the `Record` a
    /// `Committed` input answered (its events, and whether it committed),
    /// `actions` came out.
    fn step(
        &mut self,
        input: &Input,
        answered: Option<(&[Draft], bool)>,
        actions: &[Action],
    ) -> Result<(), TestCaseError> {
        let fresh = self.fresh(actions);
        let actions = &fresh[..];
        let passed = match input {
            Input::Sensor(Sensor::Safety, new) => self.safety_to(*new),
            _ => false,
        };
        let strays = alerts_of(actions, &STRAYS);
        if passed {
            self.passages += 1;
            if let Some(auth) = self.open.take() {
                prop_assert!(strays.is_empty(), "an authorised vehicle raised {strays:?}");
                self.used.extend(auth.event_id.clone());
                self.followed = Some(auth.event_id);
            } else {
                prop_assert_eq!(
                    strays.len(),
                    1,
                    "a vehicle passed with no open authorisation: {:?}",
                    actions
                );
                if strays[0].alert == AlertKind::Tailgating {
                    prop_assert!(
                        self.followed.as_ref() == Some(&strays[0].related_event_id),
                        "tailgating names {:?}, the vehicle followed {:?}",
                        strays[0].related_event_id,
                        self.followed
                    );
                }
            }
        } else {
            prop_assert!(strays.is_empty(), "{strays:?} without a passage");
        }

        let up = actions.contains(&Action::Barrier(BarrierCommand::Up));
        if let Some((events, committed)) = answered {
            let first = events.first().map(|d| (&d.event_id, &d.body));
            let (id, exit) = match first {
                Some((id, EventBody::CheckIn(_))) => (id, false),
                Some((id, EventBody::CheckOut(_))) => (id, true),
                _ => {
                    prop_assert!(!up, "raised on the commit of a non-passage");
                    return self.ends(actions);
                }
            };
            if !committed {
                prop_assert!(
                    !alerts_of(actions, &[AlertKind::StorageFault]).is_empty(),
                    "a failed passage without storage_fault"
                );
            }
            if committed || exit {
                prop_assert!(up, "a passage opened without raising the arm");
                prop_assert!(
                    self.open.is_none(),
                    "a second authorisation while {:?} is open",
                    self.open
                );
                self.open = Some(Auth {
                    event_id: committed.then(|| id.clone()),
                });
                self.followed = None;
            } else {
                prop_assert!(!up, "raised for an entry the store did not record");
            }
        }
        self.ends(actions)
    }

    /// Voids and the arm coming down end the open authorisation; never
    /// onto the safety loop.
    fn ends(&mut self, actions: &[Action]) -> Result<(), TestCaseError> {
        for action in actions {
            match action {
                Action::Record(commit) => {
                    for draft in &commit.events {
                        if let EventBody::Void { related_event_id } = &draft.body {
                            prop_assert!(
                                !self.used.contains(related_event_id),
                                "voided {related_event_id}, which a vehicle used"
                            );
                            let open = self.open.take();
                            prop_assert!(
                                open.as_ref().and_then(|a| a.event_id.as_ref())
                                    == Some(related_event_id),
                                "voided {related_event_id}, the open one is {open:?}"
                            );
                        }
                    }
                }
                Action::Barrier(BarrierCommand::Down) => {
                    prop_assert!(!self.held(), "Down with the safety loop {:?}", self.safety);
                    // An unrecorded exit's authorisation has nothing to void.
                    prop_assert!(
                        self.open.as_ref().is_none_or(|a| a.event_id.is_none()),
                        "Down on an open authorisation, not voided: {:?}",
                        self.open
                    );
                    self.open = None;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An outstanding request from the lane.
#[derive(Debug)]
enum Request {
    Decide(String),
    Record(Vec<Draft>),
}

struct World {
    lane: Lane,
    oracle: Oracle,
    role: Role,
    errors: bool,
    punctual: bool,
    now: i64,
    /// The last `WakeAt` not yet delivered.
    wake: Option<i64>,
    requests: VecDeque<Request>,
    /// Committed check_ins and check_outs by event id.
    journal: HashMap<String, (Direction, Option<VehicleClass>)>,
    /// Net vehicles per class, as the journal says.
    net: BTreeMap<VehicleClass, i64>,
    /// The passages whose void the lane asked for and the store has not
    /// committed yet.
    voiding: HashSet<String>,
    passages: i64,
    voids: i64,
    strays: i64,
    arm: BarrierCommand,
    arm_at: i64,
}

impl World {
    fn new(start: &Start, errors: bool) -> World {
        let mut lane = Lane::new(config(start.role), start.sensors, at(0));
        let mut net: BTreeMap<VehicleClass, i64> =
            VehicleClass::ALL.into_iter().map(|c| (c, 0)).collect();
        if start.role == Role::Exit {
            // An exit lane alone only counts down: start from vehicles that
            // came in through a sibling, as the store would seed it.
            let mut seed = Counters::default();
            for c in VehicleClass::ALL {
                seed.entered.insert(c, SEED as u64);
                net.insert(c, SEED);
            }
            lane.seed_counters(seed);
        }
        let up = start.sensors.barrier_up == Some(SensorState::Occupied);
        World {
            lane,
            oracle: Oracle::new(start.sensors),
            role: start.role,
            errors,
            punctual: start.punctual,
            now: 0,
            wake: None,
            requests: VecDeque::new(),
            journal: HashMap::new(),
            net,
            voiding: HashSet::new(),
            passages: 0,
            voids: 0,
            strays: 0,
            arm: if up {
                BarrierCommand::Up
            } else {
                BarrierCommand::Down
            },
            arm_at: -1_000_000,
        }
    }

    /// Moves the clock on by `delay`, delivering the wake-ups due meanwhile
    /// when the daemon is punctual.
    fn advance(&mut self, delay: i64) -> Result<(), TestCaseError> {
        let until = self.now + delay;
        while self.punctual
            && let Some(wake) = self.wake.filter(|&w| w <= until)
        {
            // A timer fires once; the tick may set the next one.
            self.wake = None;
            self.now = wake;
            self.input(Input::Tick)?;
        }
        self.now = until;
        Ok(())
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        let card = |i: usize| CARDS[i].to_string();
        match op {
            Op::Sensor(s, st) => self.input(Input::Sensor(s, st)),
            Op::Card(i) => self.input(Input::Card(card(i))),
            Op::AuthFailed(i) => self.input(Input::CardAuthFailed(card(i))),
            Op::Misread => self.input(Input::Misread),
            Op::Reader(true) => self.input(Input::Reader(ReaderHealth::Online)),
            Op::Reader(false) => self.input(Input::Reader(ReaderHealth::Offline(
                "no answer on /dev/ttyUSB0".into(),
            ))),
            Op::Command(c, by) => self.input(Input::Command(c, by)),
            Op::ClockUnsynced => self.input(Input::ClockUnsynced("The clock jumped.".into())),
            Op::OutputFailed => self.input(Input::OutputFailed("relay 1 refused".into())),
            Op::Tick => self.input(Input::Tick),
            Op::Reply(choice) => self.reply(choice),
        }
    }

    /// Vehicles of `class` that may leave: inside by the journal, less
    /// check_ins whose void is on its way (asked for, and not committed
    /// yet: in a request, or kept by the lane for another try).
    fn may_leave(&self, class: VehicleClass) -> bool {
        let voiding = self
            .voiding
            .iter()
            .filter(|id| self.journal.get(*id) == Some(&(Direction::In, Some(class))))
            .count() as i64;
        self.net[&class] - voiding > 0
    }

    fn decision(&self, choice: u32, card: &str) -> Decision {
        let out = match self.role {
            Role::Entry => false,
            Role::Exit => true,
            Role::Both => (choice / 8) % 2 == 1,
        };
        let class = CLASSES[(choice / 16) as usize % CLASSES.len()];
        let class = (!(choice / 64).is_multiple_of(5)).then_some(class);
        let (direction, class) = if out {
            (Direction::Out, class.filter(|&c| self.may_leave(c)))
        } else {
            (Direction::In, class)
        };
        match choice % 8 {
            0..=2 => admit(direction, card, class, vec![]),
            3 => admit(
                direction,
                card,
                class,
                vec![policy_alert(AlertKind::AntiPassback, card)],
            ),
            4 | 5 => deny(card, DenyReason::UnknownCard),
            6 => deny(card, DenyReason::NoCapacity),
            // The store could not be read for this card's facts.
            _ if self.errors => policy::unreadable(card, "disk I/O error"),
            _ => deny(card, DenyReason::Lockdown),
        }
    }

    fn reply(&mut self, choice: u32) -> Result<(), TestCaseError> {
        let Some(request) = self.requests.pop_front() else {
            return Ok(());
        };
        match request {
            Request::Decide(card) => {
                let d = self.decision(choice, &card);
                self.input(Input::Decided(d))
            }
            Request::Record(events) => {
                if self.errors && choice.is_multiple_of(5) {
                    let failed = Input::Committed(Err("disk I/O error".into()));
                    self.step(failed, Some((&events, false)))?;
                    return Ok(());
                }
                for draft in &events {
                    self.journal_apply(&draft.event_id, &draft.body)?;
                }
                self.step(Input::Committed(Ok(())), Some((&events, true)))?;
                Ok(())
            }
        }
    }

    fn journal_apply(&mut self, id: &str, event: &EventBody) -> Result<(), TestCaseError> {
        let passage = match event {
            EventBody::CheckIn(p) => Some((Direction::In, p.vehicle_class)),
            EventBody::CheckOut(c) => Some((Direction::Out, c.passage.vehicle_class)),
            EventBody::Void { related_event_id } => {
                self.voiding.remove(related_event_id);
                let voided = self.journal.get(related_event_id).copied();
                prop_assert!(
                    voided.is_some(),
                    "void of {related_event_id}, not a committed passage"
                );
                let (direction, class) = voided.unwrap();
                if let Some(c) = class {
                    *self.net.get_mut(&c).unwrap() -=
                        if direction == Direction::In { 1 } else { -1 };
                }
                self.voids += 1;
                None
            }
            EventBody::Alert(a) if STRAYS.contains(&a.alert) => {
                self.strays += 1;
                None
            }
            _ => None,
        };
        if let Some((direction, class)) = passage {
            if let Some(c) = class {
                *self.net.get_mut(&c).unwrap() += if direction == Direction::In { 1 } else { -1 };
            }
            self.passages += 1;
            self.journal.insert(id.to_string(), (direction, class));
        }
        Ok(())
    }

    /// An input other than a `Committed`: the arm may only rise to spare a
    /// vehicle reaching the safety loop.
    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let reversal = matches!(input, Input::Sensor(Sensor::Safety, s) if holds(s));
        let actions = self.step(input, None)?;
        if actions.contains(&Action::Barrier(BarrierCommand::Up)) {
            prop_assert!(
                reversal,
                "raised without a commit or a vehicle under the arm: {actions:?}"
            );
        }
        Ok(())
    }

    /// One step, checked by the oracle and against the world's journal.
    fn step(
        &mut self,
        input: Input,
        answered: Option<(&[Draft], bool)>,
    ) -> Result<Vec<Action>, TestCaseError> {
        let actions = self.lane.step(input.clone(), at(self.now));
        self.oracle.step(&input, answered, &actions)?;
        for action in &actions {
            match action {
                Action::Decide(card) => self.requests.push_back(Request::Decide(card.clone())),
                Action::Record(commit) => {
                    for draft in &commit.events {
                        if let EventBody::Void { related_event_id } = &draft.body {
                            self.voiding.insert(related_event_id.clone());
                        }
                    }
                    self.requests
                        .push_back(Request::Record(commit.events.clone()));
                }
                Action::Barrier(b) => {
                    self.arm = *b;
                    self.arm_at = self.now;
                }
                Action::WakeAt(t) => {
                    prop_assert!(*t > at(self.now), "a wake-up in the past");
                    self.wake = Some(t.as_ms() as i64);
                }
                Action::Show(_) => {}
            }
        }
        let falling = self.arm == BarrierCommand::Down && self.now - self.arm_at < FALL_MS;
        prop_assert!(
            !(falling && self.oracle.held()),
            "arm left falling onto {:?}",
            self.oracle.safety
        );
        let occupancy = self.lane.occupancy();
        prop_assert_eq!(&occupancy, &self.net, "counters differ from the journal");
        prop_assert!(
            occupancy.values().all(|&n| n >= 0),
            "negative occupancy {:?}",
            occupancy
        );
        Ok(actions)
    }

    /// Clears the loops and lets every request and timer run out.
    fn drain(&mut self) -> Result<(), TestCaseError> {
        self.advance(1)?;
        self.input(Input::Sensor(Sensor::Safety, SensorState::Clear))?;
        self.input(Input::Sensor(Sensor::Arming, SensorState::Clear))?;
        for _ in 0..20 {
            while !self.requests.is_empty() {
                self.reply(6)?; // deny, or commit
            }
            self.advance(1_000_000)?;
            self.input(Input::Tick)?;
        }
        prop_assert!(self.requests.is_empty());
        prop_assert_eq!(self.lane.status().phase, Phase::Idle);
        prop_assert!(
            self.oracle.open.is_none(),
            "an authorisation outlived every timeout: {:?}",
            self.oracle.open
        );
        Ok(())
    }
}

fn run(start: Start, errors: bool, ops: Vec<(i64, Op)>) -> Result<(), TestCaseError> {
    let mut world = World::new(&start, errors);
    // As the daemon does right after `Lane::new`.
    world.input(Input::Tick)?;
    for (delay, op) in ops {
        world.advance(delay)?;
        world.run(op)?;
    }
    world.drain()?;
    if !errors {
        prop_assert_eq!(
            world.oracle.passages,
            world.passages - world.voids + world.strays,
            "vehicles passed vs passages kept + tailgating/unauthorized alerts"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(256))]

    #[test]
    fn every_vehicle_is_accounted_for(start in start(), ops in ops()) {
        run(start, false, ops)?;
    }

    #[test]
    fn storage_errors_never_endanger_or_miscount(start in start(), ops in ops()) {
        run(start, true, ops)?;
    }
}
