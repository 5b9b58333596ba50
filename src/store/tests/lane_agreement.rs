//! The lane and the store keep the gate's tallies apart: the lane counts
//! committed passages in memory (`Lane::counters`, published as occupancy),
//! the store moves its own counters and the presence table inside each
//! `Db::record` transaction (`apply_effect`). One random stream of inputs
//! goes to a `Lane`, whose `Record`s are carried out on a real in-memory
//! `Db` (or fail, answered `Committed(Err)` without touching it), and after
//! every step the two must agree:
//!
//! - `lane.counters()` equals `db.counters()`, entered and exited per class
//!   (a class never counted is absent on both sides; zeros are dropped
//!   before comparing, so that a representation choice cannot fail it);
//! - presence per class equals what was there before the run (a sibling's
//!   check_ins) plus the lane's net count (`lane.occupancy()`), up to a
//!   known drift: presence is a set of vehicles, the counters a tally of
//!   passages, so they part ways on passages the lot's state does not
//!   explain. A check_out of a vehicle not inside (no gate saw it enter)
//!   counts an exit but removes nobody (+1 to presence against the
//!   counters); a check_in of a vehicle already inside (soft anti-passback)
//!   counts an entry but replaces its row (-1). A void of such a passage
//!   undoes exactly its drift. The test notes each one as the store commits
//!   it, from the presence table just before the commit, and checks the
//!   equality with that drift: exact, and zero when the stream makes none.
//!
//! Decisions are shaped like the policy's: a passage names a registered
//! vehicle with its class, or no vehicle and no class (unidentified).
//! Cases: `PROPTEST_CASES`, or 128 (each step runs SQLite).

use std::collections::{BTreeMap, HashMap, VecDeque};

use proptest::prelude::*;

use crate::domain::lane::proptests::{cases, state};

use super::*;
use crate::domain::contract::{Alert, AlertKind, Clock, Denied, DenyReason, Severity};
use crate::domain::lane::{
    Action, By, Command, Counters, Draft, Input, Lane, LaneConfig, LaneTimings, Sensor,
    SensorState, Sensors,
};
use crate::domain::model::{Direction, Role};
use crate::domain::policy::Decision;
use crate::domain::time::Mono;

/// The registered vehicles: card `i` belongs to the user of vehicle `i`.
const FLEET: [(&str, VehicleClass); 4] = [
    ("v-0", VehicleClass::Standard),
    ("v-1", VehicleClass::Compact),
    ("v-2", VehicleClass::Motorcycle),
    ("v-3", VehicleClass::Standard),
];
/// Inside before the run, let in by a sibling gate.
const SEEDED: [usize; 2] = [0, 2];

#[derive(Debug, Clone)]
enum Step {
    Sensor(Sensor, SensorState),
    Card(usize),
    AuthFailed(usize),
    Command(Command),
    Tick,
    /// The daemon answers its oldest request; the number picks the answer.
    Reply(u32),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        2 => state().prop_map(|s| Step::Sensor(Sensor::Arming, s)),
        4 => state().prop_map(|s| Step::Sensor(Sensor::Safety, s)),
        6 => (0..FLEET.len()).prop_map(Step::Card),
        1 => (0..FLEET.len()).prop_map(Step::AuthFailed),
        1 => prop_oneof![
            3 => Just(Command::Open),
            1 => Just(Command::Lockdown),
            1 => Just(Command::Unlock),
        ]
        .prop_map(Step::Command),
        2 => Just(Step::Tick),
        10 => any::<u32>().prop_map(Step::Reply),
    ]
}

/// Milliseconds to the next input; sometimes past every timeout, so that
/// unused passages get voided.
fn delay() -> impl Strategy<Value = u64> {
    prop_oneof![6 => 0..3_000u64, 1 => 0..100_000u64]
}

fn role() -> impl Strategy<Value = Role> {
    prop_oneof![Just(Role::Entry), Just(Role::Exit), Just(Role::Both)]
}

fn card(i: usize) -> String {
    format!("C{i}")
}

/// A passage of vehicle `i` (or of nobody known) through `card`.
fn passage_of(card: &str, vehicle: Option<usize>) -> Passage {
    match vehicle {
        Some(i) => Passage {
            card: Some(card.to_string()),
            user_id: Some(format!("u-{i}")),
            user_name: Some(format!("User u-{i}")),
            vehicle_id: Some(FLEET[i].0.to_string()),
            vehicle_class: Some(FLEET[i].1),
            reservation_id: None,
            spot_id: None,
            plan: Some(PlanKind::Monthly),
            walk_in: true,
        },
        None => Passage::unidentified(Some(card.to_string()), None, None),
    }
}

/// Presence rows per class; every class listed.
fn presence_by_class(db: &Db) -> BTreeMap<VehicleClass, i64> {
    let mut by: BTreeMap<VehicleClass, i64> =
        VehicleClass::ALL.into_iter().map(|c| (c, 0)).collect();
    for p in db.presence().unwrap() {
        *by.entry(p.class).or_default() += 1;
    }
    by
}

/// Drops zero counts: "never counted" and "counted zero" are the same tally.
fn nonzero(m: &BTreeMap<VehicleClass, u64>) -> BTreeMap<VehicleClass, u64> {
    m.iter()
        .filter(|(_, n)| **n > 0)
        .map(|(c, n)| (*c, *n))
        .collect()
}

enum Request {
    Decide(String),
    Record(crate::domain::lane::Commit),
}

struct Gate {
    lane: Lane,
    db: Db,
    role: Role,
    now: u64,
    requests: VecDeque<Request>,
    /// Presence per class before the run.
    seed: BTreeMap<VehicleClass, i64>,
    /// Presence minus (seed + net counters), per class, as noted commit by
    /// commit (see the module doc).
    drift: BTreeMap<VehicleClass, i64>,
    /// The drift each committed passage made, for its void to undo.
    drift_of: HashMap<String, (VehicleClass, i64)>,
    /// Each committed passage of a known vehicle: check_in or not, its
    /// vehicle and class, for a late void (see `note_drift`).
    passages: HashMap<String, (bool, String, VehicleClass)>,
}

impl Gate {
    /// `require_vehicle`: the lane's setting (off: more cards are decided,
    /// so more passages reach the store).
    fn new(role: Role, require_vehicle: bool) -> Gate {
        let mut db = mem();
        let mut sibling = Db::open_in_memory(sibling("entry-2")).unwrap();
        for i in SEEDED {
            let theirs = sibling
                .record_bodies(
                    vec![check_in(passage_of("S", Some(i)))],
                    now(),
                    Clock::Synced,
                )
                .unwrap();
            assert!(db.apply_remote(&theirs[0]).unwrap());
        }
        let seed = presence_by_class(&db);
        let timings = LaneTimings {
            require_vehicle,
            ..LaneTimings::default()
        };
        let cfg = LaneConfig::new(role, timings, ulid::Ulid(7 << 100));
        let lane = Lane::new(cfg, Sensors::default(), Mono::ZERO);
        Gate {
            lane,
            db,
            role,
            now: 0,
            requests: VecDeque::new(),
            seed,
            drift: VehicleClass::ALL.into_iter().map(|c| (c, 0)).collect(),
            drift_of: HashMap::new(),
            passages: HashMap::new(),
        }
    }

    fn decision(&self, choice: u32, card: &str) -> Decision {
        let out = match self.role {
            Role::Entry => false,
            Role::Exit => true,
            Role::Both => (choice / 8) % 2 == 1,
        };
        // The card's own vehicle, mostly; sometimes none known.
        let i = card[1..].parse::<usize>().unwrap();
        let vehicle = (!(choice / 16).is_multiple_of(6)).then_some(i);
        let p = passage_of(card, vehicle);
        let (direction, event) = if out {
            (Direction::Out, check_out(p))
        } else {
            (Direction::In, check_in(p))
        };
        let refusal = |reason: DenyReason| Decision::Deny {
            denied: Denied {
                card: Some(card.to_string()),
                reason,
                user_id: None,
                user_name: None,
            },
            alert: None,
            display: "Card not valid - call security".into(),
        };
        match choice % 8 {
            0..=3 => Decision::Admit {
                direction,
                event,
                alerts: vec![],
                display: "Welcome".into(),
            },
            4 => Decision::Admit {
                direction,
                event,
                alerts: vec![Alert {
                    alert: AlertKind::AntiPassback,
                    severity: Severity::Warning,
                    message: "Badged in again.".into(),
                    card: Some(card.to_string()),
                    user_id: None,
                    related_event_id: None,
                }],
                display: "Welcome".into(),
            },
            // On an exit lane the lane turns these into unidentified exits.
            5 | 6 => refusal(DenyReason::UnknownCard),
            _ => refusal(DenyReason::NoCapacity),
        }
    }

    fn run(&mut self, step: Step) -> Result<(), TestCaseError> {
        match step {
            Step::Sensor(s, st) => self.input(Input::Sensor(s, st)),
            Step::Card(i) => self.input(Input::Card(card(i))),
            Step::AuthFailed(i) => self.input(Input::CardAuthFailed(card(i))),
            Step::Command(c) => self.input(Input::Command(c, By::Technician)),
            Step::Tick => self.input(Input::Tick),
            Step::Reply(choice) => self.reply(choice),
        }
    }

    fn reply(&mut self, choice: u32) -> Result<(), TestCaseError> {
        match self.requests.pop_front() {
            None => Ok(()),
            Some(Request::Decide(card)) => {
                let d = self.decision(choice, &card);
                self.input(Input::Decided(d))
            }
            // An injected storage error: the store is not even asked.
            Some(Request::Record(_)) if choice.is_multiple_of(5) => {
                self.input(Input::Committed(Err("disk I/O error".into())))
            }
            Some(Request::Record(commit)) => {
                self.note_drift(&commit.events);
                let at = now() + chrono::Duration::milliseconds(self.now as i64);
                let recorded = self.db.record(commit, at, Clock::Synced);
                prop_assert!(recorded.is_ok(), "the store refused: {recorded:?}");
                self.input(Input::Committed(Ok(())))
            }
        }
    }

    /// Notes the drift between presence and counters that `events` will
    /// make, from the presence table as it is before they commit.
    fn note_drift(&mut self, events: &[Draft]) {
        for Draft { event_id, body } in events {
            let inside = |v: &Option<String>| {
                v.as_ref().and_then(|v| {
                    self.db
                        .presence()
                        .unwrap()
                        .into_iter()
                        .find(|p| &p.vehicle_id == v)
                })
            };
            let made = match body {
                EventBody::CheckIn(p) => inside(&p.vehicle_id).map(|was| (was.class, -1)),
                EventBody::CheckOut(c) => {
                    match (&c.passage.vehicle_id, inside(&c.passage.vehicle_id)) {
                        (Some(_), None) => c.passage.vehicle_class.map(|class| (class, 1)),
                        _ => None,
                    }
                }
                EventBody::Void { related_event_id } => {
                    if let Some((class, d)) = self.drift_of.remove(related_event_id) {
                        *self.drift.get_mut(&class).unwrap() -= d;
                    } else if let Some((check_in, vehicle, class)) =
                        self.passages.get(related_event_id).cloned()
                    {
                        // A void committed late (a retry after a failed
                        // commit) finds the vehicle's row moved on: the store
                        // leaves presence alone, the counters take the
                        // passage back all the same.
                        let row = inside(&Some(vehicle));
                        let late = if check_in {
                            row.is_none_or(|r| &r.event_id != related_event_id)
                        } else {
                            row.is_some()
                        };
                        if late {
                            *self.drift.get_mut(&class).unwrap() += if check_in { 1 } else { -1 };
                        }
                    }
                    None
                }
                EventBody::Denied(_) | EventBody::Alert(_) => None,
            };
            if let Some((class, d)) = made {
                *self.drift.get_mut(&class).unwrap() += d;
                self.drift_of.insert(event_id.clone(), (class, d));
            }
            let passage = match body {
                EventBody::CheckIn(p) => Some((true, p)),
                EventBody::CheckOut(c) => Some((false, &c.passage)),
                _ => None,
            };
            if let Some((check_in, p)) = passage
                && let (Some(vehicle), Some(class)) = (&p.vehicle_id, p.vehicle_class)
            {
                self.passages
                    .insert(event_id.clone(), (check_in, vehicle.clone(), class));
            }
        }
    }

    fn input(&mut self, input: Input) -> Result<(), TestCaseError> {
        let actions = self.lane.step(input, Mono::from_ms(self.now));
        for action in actions {
            match action {
                Action::Decide(card) => self.requests.push_back(Request::Decide(card)),
                Action::Record(commit) => self.requests.push_back(Request::Record(commit)),
                Action::Barrier(_) | Action::Show(_) | Action::WakeAt(_) => {}
            }
        }
        self.check()
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let Counters { entered, exited } = self.lane.counters();
        let (db_entered, db_exited) = self.db.counters().unwrap();
        prop_assert_eq!(nonzero(entered), nonzero(&db_entered), "entered");
        prop_assert_eq!(nonzero(exited), nonzero(&db_exited), "exited");

        let net = self.lane.occupancy();
        let presence = presence_by_class(&self.db);
        for class in VehicleClass::ALL {
            prop_assert_eq!(
                presence[&class],
                self.seed[&class] + net[&class] + self.drift[&class],
                "presence of {:?}: seed {:?}, net {:?}, drift {:?}",
                class,
                self.seed,
                net,
                self.drift
            );
        }
        Ok(())
    }
}

fn agree(role: Role, require_vehicle: bool, steps: Vec<(u64, Step)>) -> Result<(), TestCaseError> {
    let mut gate = Gate::new(role, require_vehicle);
    gate.input(Input::Tick)?;
    for (delay, step) in steps {
        gate.now += delay;
        gate.run(step)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(128))]

    #[test]
    fn lane_counters_and_store_agree_step_by_step(
        role in role(),
        require_vehicle in any::<bool>(),
        steps in prop::collection::vec((delay(), step()), 1..300),
    ) {
        agree(role, require_vehicle, steps)?;
    }
}

/// The drift bookkeeping above is not vacuous: a stream that makes none
/// keeps presence equal to seed + net, and one exit of a vehicle nobody saw
/// enter makes exactly +1 that its void takes back.
#[test]
fn an_exit_nobody_saw_enter_drifts_until_voided() {
    let mut gate = Gate::new(Role::Exit, true);
    let go = |gate: &mut Gate, input: Input| gate.input(input).unwrap();
    go(&mut gate, Input::Tick);
    go(
        &mut gate,
        Input::Sensor(Sensor::Arming, SensorState::Occupied),
    );
    go(&mut gate, Input::Card(card(1)));
    // Choice 16: admit the card's own vehicle, v-1 (compact), not inside.
    gate.reply(16).unwrap();
    gate.reply(1).unwrap();
    assert_eq!(gate.drift[&VehicleClass::Compact], 1);
    assert_eq!(gate.lane.occupancy()[&VehicleClass::Compact], -1);
    assert_eq!(presence_by_class(&gate.db)[&VehicleClass::Compact], 0);
    // Nobody drives through: the passage is voided at the timeout.
    gate.now += 60_000;
    go(&mut gate, Input::Tick);
    gate.reply(1).unwrap();
    assert_eq!(gate.drift[&VehicleClass::Compact], 0);
    assert_eq!(gate.lane.occupancy()[&VehicleClass::Compact], 0);
}
