//! Random input sequences against the lane, with the daemon played by an
//! oracle that answers `Decide` and `Record` and keeps its own journal.
//!
//! Checked after every step: the arm is never told to come down, nor left
//! falling, while the safety loop is occupied or faulted; it only rises for a
//! committed passage (or an exit the store failed to record) or to spare a
//! vehicle under it; the lane's counters equal what the oracle's journal
//! implies and never go negative. At the end of a run without storage
//! errors: every vehicle that passed is exactly one (unvoided) check_in or
//! check_out, or one tailgating or unauthorized_vehicle alert. With storage
//! errors that last one cannot hold (a failed alert is simply lost), so only
//! the others are checked.

use std::collections::{BTreeMap, HashMap, VecDeque};

use proptest::prelude::*;

use super::tests::{admit, at, config, deny, policy_alert};
use super::*;
use crate::domain::contract::{AlertKind, DenyReason};
use crate::domain::model::Role;
use crate::domain::policy::Decision;

const CARDS: [&str; 3] = ["04A1", "04B2", "04C3"];
const CLASSES: [VehicleClass; 3] = [
    VehicleClass::Standard,
    VehicleClass::Compact,
    VehicleClass::Motorcycle,
];
/// What the store holds for an exit lane before the run (see `World::new`).
const SEED: i64 = 2;

#[derive(Debug, Clone)]
enum Op {
    Sensor(Sensor, SensorState),
    Card(usize),
    Command(Command),
    Tick,
    /// The daemon answers its oldest request; the number picks the answer.
    Reply(u32),
}

fn state() -> impl Strategy<Value = SensorState> {
    prop_oneof![6 => Just(SensorState::Occupied), 6 => Just(SensorState::Clear), 1 => Just(SensorState::Fault)]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => state().prop_map(|s| Op::Sensor(Sensor::Arming, s)),
        5 => state().prop_map(|s| Op::Sensor(Sensor::Safety, s)),
        1 => state().prop_map(|s| Op::Sensor(Sensor::BarrierUp, s)),
        3 => (0..CARDS.len()).prop_map(Op::Card),
        1 => prop_oneof![
            3 => Just(Command::Open),
            1 => Just(Command::Lockdown),
            1 => Just(Command::Unlock),
        ]
        .prop_map(Op::Command),
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

/// An outstanding request from the lane.
#[derive(Debug)]
enum Request {
    Decide(String),
    Record(Vec<Draft>),
}

struct World {
    lane: Lane,
    role: Role,
    errors: bool,
    now: i64,
    requests: VecDeque<Request>,
    /// Committed check_ins and check_outs by event id.
    journal: HashMap<String, (Direction, Option<VehicleClass>)>,
    /// Net vehicles per class, as the journal says.
    net: BTreeMap<VehicleClass, i64>,
    passages: i64,
    voids: i64,
    strays: i64,
    passes: i64,
    safety: SensorState,
    safety_saw_vehicle: bool,
    arm: BarrierCommand,
    arm_at: i64,
}

impl World {
    fn new(role: Role, errors: bool) -> World {
        let mut lane = Lane::new(config(role), Sensors::default(), at(0));
        let mut net: BTreeMap<VehicleClass, i64> =
            VehicleClass::ALL.into_iter().map(|c| (c, 0)).collect();
        if role == Role::Exit {
            // An exit lane alone only counts down: start from vehicles that
            // came in through a sibling, as the store would seed it.
            let mut seed = Counters::default();
            for c in VehicleClass::ALL {
                seed.entered.insert(c, SEED as u64);
                net.insert(c, SEED);
            }
            lane.seed_counters(seed);
        }
        World {
            lane,
            role,
            errors,
            now: 0,
            requests: VecDeque::new(),
            journal: HashMap::new(),
            net,
            passages: 0,
            voids: 0,
            strays: 0,
            passes: 0,
            safety: SensorState::Clear,
            safety_saw_vehicle: false,
            arm: BarrierCommand::Down,
            arm_at: -1_000_000,
        }
    }

    fn run(&mut self, op: Op) -> Result<(), TestCaseError> {
        match op {
            Op::Sensor(s, st) => self.input(Input::Sensor(s, st)),
            Op::Card(i) => self.input(Input::Card(CARDS[i].to_string())),
            Op::Command(c) => self.input(Input::Command(c, By::Hq)),
            Op::Tick => self.input(Input::Tick),
            Op::Reply(choice) => self.reply(choice),
        }
    }

    /// Vehicles of `class` that may leave: inside by the journal, less
    /// check_ins whose void is on its way.
    fn may_leave(&self, class: VehicleClass) -> bool {
        let voiding = self
            .requests
            .iter()
            .flat_map(|r| match r {
                Request::Record(events) => events.as_slice(),
                Request::Decide(_) => &[],
            })
            .map(|d| &d.body)
            .filter(|e| {
                matches!(e, EventBody::Void { related_event_id }
                    if self.journal.get(related_event_id) == Some(&(Direction::In, Some(class))))
            })
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
                let passage = matches!(
                    events.first().map(|d| &d.body),
                    Some(EventBody::CheckIn(_) | EventBody::CheckOut(_))
                );
                if self.errors && choice.is_multiple_of(5) {
                    let entry =
                        matches!(events.first().map(|d| &d.body), Some(EventBody::CheckIn(_)));
                    let actions = self.step(Input::Committed(Err("disk I/O error".into())))?;
                    prop_assert!(
                        !(entry && actions.contains(&Action::Barrier(BarrierCommand::Up))),
                        "raised for an unrecorded entry"
                    );
                    return self.check_up(&actions, passage);
                }
                for draft in &events {
                    self.journal_apply(&draft.event_id, &draft.body)?;
                }
                let actions = self.step(Input::Committed(Ok(())))?;
                self.check_up(&actions, passage)
            }
        }
    }

    fn journal_apply(&mut self, id: &str, event: &EventBody) -> Result<(), TestCaseError> {
        let passage = match event {
            EventBody::CheckIn(p) => Some((Direction::In, p.vehicle_class)),
            EventBody::CheckOut(c) => Some((Direction::Out, c.passage.vehicle_class)),
            EventBody::Void { related_event_id } => {
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
            EventBody::Alert(a)
                if matches!(
                    a.alert,
                    AlertKind::Tailgating | AlertKind::UnauthorizedVehicle
                ) =>
            {
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

    /// The arm rises only in answer to a passage's commit.
    fn check_up(&self, actions: &[Action], passage: bool) -> Result<(), TestCaseError> {
        if actions.contains(&Action::Barrier(BarrierCommand::Up)) {
            prop_assert!(
                passage,
                "raised on the commit of a non-passage: {actions:?}"
            );
        }
        Ok(())
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let reversal = matches!(input, Input::Sensor(Sensor::Safety, s) if s.is_set());
        let actions = self.step(input)?;
        if actions.contains(&Action::Barrier(BarrierCommand::Up)) {
            prop_assert!(
                reversal,
                "raised without a commit or a vehicle under the arm: {actions:?}"
            );
        }
        Ok(())
    }

    /// One step with the per-step invariants.
    fn step(&mut self, input: Input) -> Result<Vec<Action>, TestCaseError> {
        if let Input::Sensor(Sensor::Safety, new) = input {
            let old = std::mem::replace(&mut self.safety, new);
            match (old.is_set(), new) {
                (_, SensorState::Occupied) => self.safety_saw_vehicle = true,
                (true, SensorState::Clear) => {
                    self.passes += i64::from(self.safety_saw_vehicle);
                    self.safety_saw_vehicle = false;
                }
                _ => {}
            }
        }
        let actions = self.lane.step(input, at(self.now));
        for action in &actions {
            match action {
                Action::Decide(card) => self.requests.push_back(Request::Decide(card.clone())),
                Action::Record(commit) => self
                    .requests
                    .push_back(Request::Record(commit.events.clone())),
                Action::Barrier(b) => {
                    prop_assert!(
                        !(*b == BarrierCommand::Down && self.safety.is_set()),
                        "Down with the safety loop {:?}",
                        self.safety
                    );
                    self.arm = *b;
                    self.arm_at = self.now;
                }
                Action::WakeAt(t) => prop_assert!(*t > at(self.now), "a wake-up in the past"),
                Action::Show(_) => {}
            }
        }
        let falling = self.arm == BarrierCommand::Down && self.now - self.arm_at < 4000;
        prop_assert!(
            !(falling && self.safety.is_set()),
            "arm left falling onto {:?}",
            self.safety
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
        self.now += 1;
        self.input(Input::Sensor(Sensor::Safety, SensorState::Clear))?;
        self.input(Input::Sensor(Sensor::Arming, SensorState::Clear))?;
        for _ in 0..20 {
            while !self.requests.is_empty() {
                self.reply(6)?; // deny, or commit
            }
            self.now += 1_000_000;
            self.input(Input::Tick)?;
        }
        prop_assert!(self.requests.is_empty());
        prop_assert_eq!(self.lane.status().phase, Phase::Idle);
        Ok(())
    }
}

fn run(role: Role, errors: bool, ops: Vec<(i64, Op)>) -> Result<(), TestCaseError> {
    let mut world = World::new(role, errors);
    for (delay, op) in ops {
        world.now += delay;
        world.run(op)?;
    }
    world.drain()?;
    if !errors {
        prop_assert_eq!(
            world.passes,
            world.passages - world.voids + world.strays,
            "vehicles passed vs passages kept + tailgating/unauthorized alerts"
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn every_vehicle_is_accounted_for(role in role(), ops in prop::collection::vec((delay(), op()), 1..200)) {
        run(role, false, ops)?;
    }

    #[test]
    fn storage_errors_never_endanger_or_miscount(role in role(), ops in prop::collection::vec((delay(), op()), 1..200)) {
        run(role, true, ops)?;
    }
}
