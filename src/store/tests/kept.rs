//! The kept load against a full recount, after every step of random
//! sequences of passages (own and siblings'), voids, replica batches,
//! sibling counters, pruning and clock moves; and a write by another
//! process, which the kept load cannot see happen.
//!
//! The grace windows are 15 minutes early and 30 late; bookings start
//! within a few hours of the start time and the clock wanders over that
//! span (backwards too), so bookings keep entering and leaving the window
//! the kept load reads ahead.

use chrono::Duration;
use proptest::prelude::*;

use crate::domain::availability::{Kind, Load};
use crate::domain::contract::{self, Clock, Event, Occupancy};
use crate::domain::model::ReservationStatus;

use super::*;

const EARLY: u32 = 15;
const LATE: u32 = 30;
const CLASSES: [VehicleClass; 3] = [
    VehicleClass::Standard,
    VehicleClass::Compact,
    VehicleClass::Motorcycle,
];

#[derive(Debug, Clone)]
enum Step {
    /// A booking (re)written: id, vehicle, start and length in minutes
    /// from the start time, class, booked or cancelled, this lot or another.
    Book(u8, u8, i64, i64, u8, bool, bool),
    Unbook(u8),
    /// A vehicle's record: id, class, ADA, EV.
    Vehicle(u8, u8, bool, bool),
    Unregister(u8),
    /// This gate's check_in of a vehicle, maybe on a booking.
    In(u8, Option<u8>),
    Out(u8),
    /// A sibling's check_in or check_out of a vehicle.
    SiblingIn(u8, Option<u8>),
    SiblingOut(u8),
    /// A void of the n-th passage so far (modulo their number).
    Void(usize),
    /// A sibling's counters: entered and exited of one class.
    Counters(u8, u8, u8),
    /// Pruning what is older than this many minutes.
    Prune(i64),
    /// The store thread folds this gate's counters' tail into the table.
    Fold,
    /// The wall clock moves (minutes, either way).
    Clock(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        4 => (0..8u8, 0..6u8, -240..240i64, 1..300i64, 0..3u8, any::<bool>(), prop::bool::weighted(0.9))
            .prop_map(|(r, v, s, l, c, b, m)| Step::Book(r, v, s, l, c, b, m)),
        1 => (0..8u8).prop_map(Step::Unbook),
        2 => (0..6u8, 0..3u8, any::<bool>(), any::<bool>())
            .prop_map(|(v, c, a, e)| Step::Vehicle(v, c, a, e)),
        1 => (0..6u8).prop_map(Step::Unregister),
        3 => (0..6u8, prop::option::of(0..8u8)).prop_map(|(v, r)| Step::In(v, r)),
        2 => (0..6u8).prop_map(Step::Out),
        1 => (0..6u8, prop::option::of(0..8u8)).prop_map(|(v, r)| Step::SiblingIn(v, r)),
        1 => (0..6u8).prop_map(Step::SiblingOut),
        2 => any::<usize>().prop_map(Step::Void),
        1 => (0..3u8, 0..12u8, 0..12u8).prop_map(|(c, e, x)| Step::Counters(c, e, x)),
        1 => (0..300i64).prop_map(Step::Prune),
        1 => Just(Step::Fold),
        3 => (-90..240i64).prop_map(Step::Clock),
    ]
}

/// A world driving one store through the steps.
struct World {
    db: Db,
    now: Timestamp,
    seq: u64,
    passages: Vec<String>,
    sibling_seq: u64,
}

impl World {
    fn new() -> World {
        World {
            db: mem(),
            now: now(),
            seq: 0,
            passages: vec![],
            sibling_seq: 0,
        }
    }

    fn batch(&mut self, ops: Vec<Op>) {
        self.seq += 1;
        let applied = self.db.apply_batch(&batch(self.seq, ops)).unwrap();
        assert!(matches!(applied, crate::store::Applied::Applied { .. }));
    }

    fn passage(v: u8, r: Option<u8>, class: VehicleClass) -> Passage {
        Passage {
            reservation_id: r.map(|r| format!("r-{r}")),
            ..passage(&format!("v-{v}"), class)
        }
    }

    fn record(&mut self, body: EventBody) {
        let events = self
            .db
            .record_bodies(vec![body], self.now, Clock::Synced)
            .unwrap();
        self.passages.push(events[0].event_id.clone());
        // Delivered, so that pruning may take it.
        self.db.mark_delivered(events[0].gate_seq).unwrap();
    }

    fn sibling(&mut self, body: EventBody) {
        self.sibling_seq += 1;
        let event = Event {
            v: 1,
            event_id: ulid::Ulid::new().to_string(),
            gate_seq: self.sibling_seq,
            site: "b1".into(),
            lot: "main".into(),
            gate: "exit-1".into(),
            at: self.now,
            clock: Clock::Synced,
            body,
        };
        self.passages.push(event.event_id.clone());
        self.db.apply_remote(&event).unwrap();
    }

    fn apply(&mut self, step: &Step) {
        let start = now();
        match *step {
            Step::Book(r, v, s, len, c, booked, here) => {
                let mut res = reservation(
                    &format!("r-{r}"),
                    &format!("u-{v}"),
                    &format!("v-{v}"),
                    start + Duration::minutes(s),
                    start + Duration::minutes(s + len),
                );
                res.class = CLASSES[usize::from(c)];
                if !booked {
                    res.status = ReservationStatus::Cancelled;
                }
                if !here {
                    res.lot = "annex".into();
                }
                self.batch(vec![up(Record::Reservation(res))]);
            }
            Step::Unbook(r) => self.batch(vec![Op::Delete {
                kind: contract::Kind::Reservation,
                key: format!("r-{r}"),
            }]),
            Step::Vehicle(v, c, ada, ev) => {
                let mut veh = vehicle(
                    &format!("v-{v}"),
                    &format!("u-{v}"),
                    CLASSES[usize::from(c)],
                );
                (veh.ada, veh.ev) = (ada, ev);
                self.batch(vec![up(Record::Vehicle(veh))]);
            }
            Step::Unregister(v) => self.batch(vec![Op::Delete {
                kind: contract::Kind::Vehicle,
                key: format!("v-{v}"),
            }]),
            Step::In(v, r) => {
                let p = World::passage(v, r, CLASSES[usize::from(v) % 3]);
                self.record(check_in(p));
            }
            Step::Out(v) => self.record(check_out(World::passage(v, None, CLASSES[0]))),
            Step::SiblingIn(v, r) => {
                let p = World::passage(v, r, CLASSES[usize::from(v) % 3]);
                self.sibling(check_in(p));
            }
            Step::SiblingOut(v) => self.sibling(check_out(World::passage(v, None, CLASSES[0]))),
            Step::Void(n) if !self.passages.is_empty() => {
                let related = self.passages[n % self.passages.len()].clone();
                self.record(void(&related));
            }
            Step::Void(_) => {}
            Step::Counters(c, entered, exited) => {
                let class = CLASSES[usize::from(c)];
                let occupancy = Occupancy {
                    v: 1,
                    gate: "exit-1".into(),
                    at: self.now,
                    entered: [(class, u64::from(entered))].into(),
                    exited: [(class, u64::from(exited))].into(),
                };
                self.db.merge_occupancy(&occupancy).unwrap();
            }
            Step::Prune(m) => {
                self.db
                    .prune(self.now - Duration::minutes(m), self.now)
                    .unwrap();
            }
            Step::Fold => {
                // Folding moves counts from the journal's tail into the
                // table, from the sums counted at commit when it has them:
                // no sum may change.
                let before = self.db.counters().unwrap();
                self.db.tail.len = crate::store::counters::FOLD_AFTER;
                self.db.between_jobs(std::time::Instant::now());
                assert_eq!(self.db.tail.len, 0, "folded");
                assert_eq!(
                    self.db.counters().unwrap(),
                    before,
                    "the fold kept the sums"
                );
            }
            Step::Clock(m) => self.now += Duration::minutes(m),
        }
    }

    /// The kept load (through a decision's facts and `load_at`) and the
    /// bounded count at later times, each against a full recount.
    fn check(&self) -> Result<(), TestCaseError> {
        let recount = |at| self.db.recount("main", at, self.now, EARLY, LATE).unwrap();
        let facts = self
            .db
            .facts("UNKNOWN", "main", self.now, EARLY, LATE)
            .unwrap();
        prop_assert_eq!(&facts.load, &recount(self.now), "decision at {}", self.now);
        let now_load = self.db.load_at("main", self.now, self.now, EARLY, LATE);
        prop_assert_eq!(now_load.unwrap(), recount(self.now));
        for later in [7, 45, 200] {
            let at = self.now + Duration::minutes(later);
            let load = self.db.load_at("main", at, self.now, EARLY, LATE).unwrap();
            prop_assert_eq!(load, recount(at), "availability at {}", at);
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(crate::domain::lane::proptests::cases(200))]

    #[test]
    fn the_kept_load_always_equals_a_recount(steps in prop::collection::vec(step(), 1..60)) {
        let mut world = World::new();
        world.check()?;
        for step in &steps {
            world.apply(step);
            world.check()?;
            // The idle store thread's read-ahead changes nothing either.
            world.db.tick(std::time::Instant::now()).unwrap();
            world.check()?;
        }
    }
}

fn plain(n: u32) -> Load {
    let mut load = Load::default();
    let kind = Kind {
        class: VehicleClass::Standard,
        ada: false,
        ev: false,
    };
    load.add(kind, n);
    load
}

#[test]
fn a_write_by_another_process_is_seen_by_the_next_decision() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let r1 = reservation("r-1", "u-1", "v-1", now(), now() + minutes(60));
    db.apply_batch(&batch(1, vec![up(Record::Reservation(r1))]))
        .unwrap();
    let load = |db: &Db| {
        db.facts("UNKNOWN", "main", now(), EARLY, LATE)
            .unwrap()
            .load
    };
    assert_eq!(load(&db), plain(1));
    // The CLI (`parkgate replica apply`) writes the same files meanwhile.
    let mut cli = Db::open(&path, ident()).unwrap();
    let r2 = reservation("r-2", "u-2", "v-2", now(), now() + minutes(60));
    cli.apply_batch(&batch(2, vec![up(Record::Reservation(r2))]))
        .unwrap();
    cli.record_bodies(
        vec![check_in(passage("v-9", VehicleClass::Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    drop(cli);
    assert_eq!(load(&db), plain(3));
}

#[test]
fn the_longest_booking_bounds_a_later_count() {
    let mut db = mem();
    let long = reservation("r-1", "u-1", "v-1", now(), now() + Duration::days(3));
    db.apply_batch(&batch(1, vec![up(Record::Reservation(long))]))
        .unwrap();
    // Two days on, a booking that started three days before the time
    // asked about still holds its spot: the bound must reach back to it.
    let at = now() + Duration::days(2);
    assert_eq!(
        db.load_at("main", at, now(), EARLY, LATE).unwrap(),
        plain(1)
    );
    let span: i64 = db
        .conn
        .query_row(
            "SELECT value FROM replica_meta WHERE key = 'reservation_span_ms'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(span, Duration::days(3).num_milliseconds());
}
