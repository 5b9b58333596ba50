//! Tests of the store, split by topic; shared builders here.

mod actor;
mod checkpoint;
mod counters;
mod facts;
mod housekeeping;
mod journal;
mod kept;
mod lane_agreement;
mod outbox;
mod replica;
mod schema;
mod snapshot;

use chrono::DateTime;

use super::{Db, Ident};
use crate::domain::contract::{ChangeBatch, CheckOut, EventBody, Op, Passage, Record};
use crate::domain::model::{
    Card, CardStatus, Plan, PlanKind, PlanStatus, Reservation, ReservationStatus, Timestamp, User,
    UserStatus, Vehicle, VehicleClass,
};

fn ident() -> Ident {
    Ident {
        site: "b1".into(),
        lot: "main".into(),
        gate: "entry-1".into(),
    }
}

fn sibling(gate: &str) -> Ident {
    Ident {
        gate: gate.into(),
        ..ident()
    }
}

fn mem() -> Db {
    Db::open_in_memory(ident()).unwrap()
}

/// Records events as the lane would, each under a fresh id.
trait RecordBodies {
    fn record_bodies(
        &mut self,
        bodies: Vec<EventBody>,
        at: Timestamp,
        clock: crate::domain::contract::Clock,
    ) -> Result<Vec<crate::domain::contract::Event>, super::StoreError>;
}

impl RecordBodies for Db {
    fn record_bodies(
        &mut self,
        bodies: Vec<EventBody>,
        at: Timestamp,
        clock: crate::domain::contract::Clock,
    ) -> Result<Vec<crate::domain::contract::Event>, super::StoreError> {
        let commit = crate::domain::lane::Commit {
            events: bodies
                .into_iter()
                .map(|body| crate::domain::lane::Draft {
                    event_id: ulid::Ulid::new().to_string(),
                    body,
                })
                .collect(),
            lockdown: None,
        };
        self.record(commit, at, clock)
    }
}

fn ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// A fixed "now" for the tests.
fn now() -> Timestamp {
    ts("2026-11-22T08:00:00+07:00")
}

fn minutes(n: i64) -> chrono::Duration {
    chrono::Duration::minutes(n)
}

fn user(id: &str) -> User {
    User {
        user_id: id.into(),
        name: format!("User {id}"),
        company: Some("acme".into()),
        status: UserStatus::Active,
    }
}

fn card(uid: &str, user: &str) -> Card {
    Card {
        card: uid.into(),
        user_id: user.into(),
        status: CardStatus::Active,
        valid_from: Some(ts("2026-01-01T00:00:00+07:00")),
        valid_until: None,
    }
}

fn vehicle(id: &str, user: &str, class: VehicleClass) -> Vehicle {
    Vehicle {
        vehicle_id: id.into(),
        user_id: user.into(),
        plate: Some(format!("51F-{id}")),
        class,
        ada: false,
        ev: false,
        primary: false,
    }
}

fn plan(user: &str) -> Plan {
    Plan {
        user_id: user.into(),
        kind: PlanKind::Monthly,
        lots: vec!["main".into()],
        valid_until: Some(ts("2026-12-31T23:59:59+07:00")),
        status: PlanStatus::Paid,
    }
}

fn reservation(
    id: &str,
    user: &str,
    vehicle: &str,
    start: Timestamp,
    end: Timestamp,
) -> Reservation {
    Reservation {
        reservation_id: id.into(),
        user_id: user.into(),
        vehicle_id: vehicle.into(),
        lot: "main".into(),
        spot_id: Some(format!("B1-{id}")),
        class: VehicleClass::Standard,
        start,
        end,
        status: ReservationStatus::Booked,
    }
}

fn up(record: Record) -> Op {
    Op::Upsert(record)
}

fn batch(seq: u64, ops: Vec<Op>) -> ChangeBatch {
    ChangeBatch {
        v: 1,
        seq,
        at: now(),
        ops,
    }
}

/// A passage of `vehicle` (of user u-1) as a lane would report it.
fn passage(vehicle: &str, class: VehicleClass) -> Passage {
    Passage {
        card: Some("04A1B2C3D4E5F6".into()),
        user_id: Some("u-1".into()),
        user_name: Some("User u-1".into()),
        vehicle_id: Some(vehicle.into()),
        vehicle_class: Some(class),
        reservation_id: None,
        spot_id: None,
        plan: Some(PlanKind::Monthly),
        walk_in: true,
    }
}

/// An event that is not a passage.
fn alert() -> EventBody {
    use crate::domain::contract::{Alert, AlertKind, Severity};
    EventBody::Alert(Alert {
        alert: AlertKind::ReaderOnline,
        severity: Severity::Info,
        message: "The reader is back.".into(),
        card: None,
        user_id: None,
        related_event_id: None,
    })
}

fn check_in(p: Passage) -> EventBody {
    EventBody::CheckIn(p)
}

fn check_out(p: Passage) -> EventBody {
    EventBody::CheckOut(CheckOut {
        passage: p,
        check_in_at: None,
        duration_s: None,
        fee: None,
        overstay_s: 0,
    })
}

fn void(related: &str) -> EventBody {
    EventBody::Void {
        related_event_id: related.into(),
    }
}

/// Rows in a table (tests look behind the API to prove nothing was written).
fn count(db: &Db, table: &str) -> i64 {
    db.conn
        .query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
        .unwrap()
}

/// Takes a store file back to version 12 as far as migration 13 changed
/// it: this gate's applied records back in `applied_events`, the journal
/// without the columns that carry them. For the tests of older versions,
/// which start from a current store.
fn as_version_12(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(
        "INSERT INTO applied_events
             (event_id, gate, type, own, vehicle_id, class, before, voided, at_ms)
         SELECT event_id, json_extract(json, '$.gate'), type, 1, vehicle_id, class,
                before, voided, at_ms
         FROM events WHERE type IN ('check_in', 'check_out', 'void');
         ALTER TABLE events DROP COLUMN vehicle_id;
         ALTER TABLE events DROP COLUMN class;
         ALTER TABLE events DROP COLUMN before;
         ALTER TABLE events DROP COLUMN voided;
         PRAGMA user_version = 12;",
    )
    .unwrap();
}
