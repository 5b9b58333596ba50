//! Demo data: a handful of people, cards, vehicles, plans and reservations,
//! as one replica change batch, with times relative to `now` so the demo
//! works on any day.

use chrono::Duration;

use crate::domain::contract::{ChangeBatch, Op, Record, VERSION};
use crate::domain::model::{
    Card, CardStatus, Plan, PlanKind, PlanStatus, Reservation, ReservationStatus, Timestamp, User,
    UserStatus, Vehicle, VehicleClass,
};

/// Demo cards, named for the story they tell.
pub mod cards {
    /// Alice: monthly plan, reservation for spot B1-042 starting now.
    pub const ALICE: &str = "04A1B2C3D4E5F6";
    /// Bob: daily plan, no reservation (a walk-in who pays at the exit).
    pub const BOB: &str = "04B0B0B0B0B0B0";
    /// Carol: her card was revoked after she reported it stolen.
    pub const CAROL_REVOKED: &str = "04C4C4C4C4C4C4";
    /// Dan: motorcycle, monthly plan.
    pub const DAN: &str = "04D4D4D4D4D4D4";
    /// Not in the replica at all.
    pub const UNKNOWN: &str = "0BADC0DE";
}

/// The demo replica as batch `seq` 1 for `lot`.
pub fn replica(lot: &str, now: Timestamp) -> ChangeBatch {
    let year = Duration::days(365);
    let card = |card: &str, user: &str, status| Card {
        card: card.into(),
        user_id: user.into(),
        status,
        valid_from: Some(now - year),
        valid_until: Some(now + year),
    };
    let user = |id: &str, name: &str| User {
        user_id: id.into(),
        name: name.into(),
        company: Some("acme".into()),
        status: UserStatus::Active,
    };
    let vehicle = |id: &str, user: &str, plate: &str, class, ev| Vehicle {
        vehicle_id: id.into(),
        user_id: user.into(),
        plate: Some(plate.into()),
        class,
        ada: false,
        ev,
        primary: true,
    };
    let plan = |user: &str, kind| Plan {
        user_id: user.into(),
        kind,
        lots: vec![lot.into()],
        valid_until: Some(now + Duration::days(40)),
        status: PlanStatus::Paid,
    };
    let records = vec![
        Record::User(user("u-alice", "Alice Tran")),
        Record::User(user("u-bob", "Bob Nguyen")),
        Record::User(user("u-carol", "Carol Le")),
        Record::User(user("u-dan", "Dan Pham")),
        Record::Card(card(cards::ALICE, "u-alice", CardStatus::Active)),
        Record::Card(card(cards::BOB, "u-bob", CardStatus::Active)),
        Record::Card(card(cards::CAROL_REVOKED, "u-carol", CardStatus::Revoked)),
        Record::Card(card(cards::DAN, "u-dan", CardStatus::Active)),
        Record::Vehicle(vehicle(
            "v-alice",
            "u-alice",
            "51F-123.45",
            VehicleClass::Standard,
            true,
        )),
        Record::Vehicle(vehicle(
            "v-bob",
            "u-bob",
            "51G-678.90",
            VehicleClass::Compact,
            false,
        )),
        Record::Vehicle(vehicle(
            "v-carol",
            "u-carol",
            "30A-111.22",
            VehicleClass::Standard,
            false,
        )),
        Record::Vehicle(vehicle(
            "v-dan",
            "u-dan",
            "59X1-234.56",
            VehicleClass::Motorcycle,
            false,
        )),
        Record::Plan(plan("u-alice", PlanKind::Monthly)),
        Record::Plan(plan("u-bob", PlanKind::Daily)),
        Record::Plan(plan("u-dan", PlanKind::Monthly)),
        Record::Reservation(Reservation {
            reservation_id: "r-alice-1".into(),
            user_id: "u-alice".into(),
            vehicle_id: "v-alice".into(),
            lot: lot.into(),
            spot_id: Some("B1-042".into()),
            class: VehicleClass::Standard,
            start: now,
            end: now + Duration::hours(9),
            status: ReservationStatus::Booked,
        }),
    ];
    ChangeBatch {
        v: VERSION,
        seq: 1,
        at: now,
        ops: records.into_iter().map(Op::Upsert).collect(),
    }
}

mod script;
pub use script::{Scene, config_in, play, start};
