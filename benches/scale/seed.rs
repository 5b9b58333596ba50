//! Seeding the store at scale: the replica as one staged snapshot (users,
//! their card, vehicle and plan; a month of reservations), then the vehicles
//! inside as one recorded commit.

use chrono::{DateTime, Duration};
use parkgate::domain::contract::{Clock, EventBody, Op, Passage, Record, SnapshotChunk, VERSION};
use parkgate::domain::lane::{Commit, Draft};
use parkgate::domain::model::*;
use parkgate::store::{Adopted, Db, Staged};

/// Upserts per staged chunk.
const CHUNK: usize = 20_000;
pub const SPOTS: usize = 1_000;
pub const DAYS: i64 = 30;
const CLASSES: [VehicleClass; 5] = [
    VehicleClass::Standard,
    VehicleClass::Standard,
    VehicleClass::Standard,
    VehicleClass::Compact,
    VehicleClass::Motorcycle,
];

pub struct Scale {
    pub users: usize,
    pub per_day: usize,
    pub inside: usize,
}

pub fn ts(s: &str) -> Timestamp {
    DateTime::parse_from_rfc3339(s).unwrap()
}

/// User `i`'s card: a scattered 7-byte UID (an odd multiplier is a
/// bijection modulo 2^48).
pub fn uid(i: usize) -> String {
    let x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xFFFF_FFFF_FFFF;
    format!("04{x:012X}")
}

fn user(i: usize) -> [Record; 4] {
    let user_id = format!("u-{i:07}");
    [
        Record::User(User {
            user_id: user_id.clone(),
            name: format!("User {i}"),
            company: Some("acme".into()),
            status: UserStatus::Active,
        }),
        Record::Card(Card {
            card: uid(i),
            user_id: user_id.clone(),
            status: CardStatus::Active,
            valid_from: None,
            valid_until: None,
        }),
        Record::Vehicle(Vehicle {
            vehicle_id: format!("v-{i:07}"),
            user_id: user_id.clone(),
            plate: Some(format!("51F-{:03}.{:02}", i / 100 % 1000, i % 100)),
            class: CLASSES[i % 5],
            ada: i.is_multiple_of(50),
            ev: i.is_multiple_of(20),
            primary: true,
        }),
        Record::Plan(Plan {
            user_id,
            kind: if i.is_multiple_of(3) {
                PlanKind::Daily
            } else {
                PlanKind::Monthly
            },
            lots: vec!["main".into()],
            valid_until: None,
            status: PlanStatus::Paid,
        }),
    ]
}

/// Reservation `r` of the day starting at `midnight`: spread over the
/// whole day, 15 minutes each, one spot in `SPOTS`, one in ten cancelled.
fn reservation(s: &Scale, day: i64, r: usize, midnight: Timestamp) -> Record {
    let u = (r * 7 + day as usize * 13) % s.users;
    let start = midnight + Duration::seconds((r as i64 * 86_400) / s.per_day as i64);
    Record::Reservation(Reservation {
        reservation_id: format!("r-{day}-{r}"),
        user_id: format!("u-{u:07}"),
        vehicle_id: format!("v-{u:07}"),
        lot: "main".into(),
        spot_id: Some(format!("S-{}", r % SPOTS)),
        class: CLASSES[u % 5],
        start,
        end: start + Duration::minutes(15),
        status: if r.is_multiple_of(10) {
            ReservationStatus::Cancelled
        } else {
            ReservationStatus::Booked
        },
    })
}

/// Stages the whole replica as one snapshot and adopts it, then records
/// users `0..inside` as checked in an hour before `now`.
pub fn populate(db: &mut Db, s: &Scale, now: Timestamp) {
    // Days from 29 days ago up to today, in local midnights (+07:00).
    let today = now - Duration::hours(9);
    let users = (0..s.users).flat_map(user);
    let reservations = (0..DAYS).rev().flat_map(|day| {
        let midnight = today - Duration::days(day);
        (0..s.per_day).map(move |r| reservation(s, day, r, midnight))
    });
    let mut ops = users.chain(reservations).map(Op::Upsert);
    let total = 4 * s.users + DAYS as usize * s.per_day;
    let chunks = total.div_ceil(CHUNK);
    let mut staging = db.staging().unwrap();
    for n in 0..chunks {
        let chunk = SnapshotChunk {
            v: VERSION,
            snapshot_id: "seed".into(),
            seq: 1,
            chunk: n as u32,
            chunks: chunks as u32,
            ops: ops.by_ref().take(CHUNK).collect(),
        };
        let staged = staging.stage(&chunk, 0).unwrap();
        assert!(!matches!(staged, Staged::Ignored(_)), "{staged:?}");
    }
    assert_eq!(
        db.adopt_snapshot(&mut staging).unwrap(),
        Adopted::Swapped { seq: 1 }
    );
    db.files().remove_retired().unwrap();
    let first = ulid::Ulid::new();
    let events = (0..s.inside)
        .map(|u| Draft {
            event_id: ulid::Ulid(first.0 + u as u128).to_string(),
            body: EventBody::CheckIn(Passage {
                card: Some(uid(u)),
                user_id: Some(format!("u-{u:07}")),
                user_name: Some(format!("User {u}")),
                vehicle_id: Some(format!("v-{u:07}")),
                vehicle_class: Some(CLASSES[u % 5]),
                reservation_id: None,
                spot_id: None,
                plan: Some(PlanKind::Monthly),
                walk_in: true,
            }),
        })
        .collect();
    let commit = Commit {
        events,
        lockdown: None,
    };
    db.record(commit, now - Duration::hours(1), Clock::Synced)
        .unwrap();
}
