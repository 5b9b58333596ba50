use crate::domain::availability::{Kind, Load};
use crate::domain::contract::Clock;

use super::*;

use VehicleClass::{Compact, Standard};

const UID: &str = "04A1B2C3D4E5F6";
const EARLY: u32 = 15;
const LATE: u32 = 30;

fn kind(class: VehicleClass, ada: bool, ev: bool) -> Kind {
    Kind { class, ada, ev }
}

fn load(pairs: &[(Kind, u32)]) -> Load {
    Load {
        counts: pairs.iter().copied().collect(),
    }
}

#[test]
fn facts_gather_the_users_rows_in_one_read() {
    let mut db = mem();
    let mut primary = vehicle("v-1", "u-1", Standard);
    primary.primary = true;
    let second = vehicle("v-0", "u-1", Compact);
    let current = reservation(
        "r-now",
        "u-1",
        "v-1",
        now() + minutes(10),
        now() + minutes(600),
    );
    let cancelled = Reservation {
        status: ReservationStatus::Cancelled,
        ..reservation(
            "r-cancelled",
            "u-1",
            "v-1",
            now() - minutes(60),
            now() + minutes(60),
        )
    };
    let ended = reservation(
        "r-old",
        "u-1",
        "v-1",
        now() - minutes(3000),
        now() - minutes(1500),
    );
    let far = reservation(
        "r-far",
        "u-1",
        "v-1",
        now() + minutes(1500),
        now() + minutes(1600),
    );
    let annex = Reservation {
        lot: "annex".into(),
        ..reservation("r-annex", "u-1", "v-1", now(), now() + minutes(60))
    };
    let other = reservation("r-u2", "u-2", "v-2", now(), now() + minutes(60));
    let ops = vec![
        up(Record::User(user("u-1"))),
        up(Record::User(user("u-2"))),
        up(Record::Card(card(UID, "u-1"))),
        up(Record::Card(card("0A0B0C0D", "u-2"))),
        up(Record::Vehicle(primary.clone())),
        up(Record::Vehicle(second.clone())),
        up(Record::Vehicle(vehicle("v-2", "u-2", Standard))),
        up(Record::Plan(plan("u-1"))),
        up(Record::Plan(plan("u-2"))),
        up(Record::Reservation(current.clone())),
        up(Record::Reservation(cancelled.clone())),
        up(Record::Reservation(ended)),
        up(Record::Reservation(far)),
        up(Record::Reservation(annex)),
        up(Record::Reservation(other)),
    ];
    db.apply_batch(&batch(1, ops)).unwrap();
    let mut theirs = passage("v-2", Standard);
    theirs.user_id = Some("u-2".into());
    db.record_bodies(
        vec![check_in(passage("v-0", Compact)), check_in(theirs)],
        now() - minutes(5),
        Clock::Synced,
    )
    .unwrap();

    let f = db
        .facts("04a1b2c3d4e5f6", "main", now(), EARLY, LATE)
        .unwrap();
    assert_eq!(f.credential, UID);
    assert_eq!(f.card, Some(card(UID, "u-1")));
    assert_eq!(f.user, Some(user("u-1")));
    assert_eq!(f.vehicles, vec![primary, second], "primary first");
    assert_eq!(f.plan, Some(plan("u-1")));
    assert_eq!(f.reservations, vec![cancelled, current.clone()], "by start");
    let inside: Vec<_> = f.inside.iter().map(|p| p.vehicle_id.as_str()).collect();
    assert_eq!(inside, ["v-0"]);
    // Both vehicles inside, plus u-1's reservation due in 10 minutes (v-1 is
    // not inside); u-2's is not held: v-2 arrived.
    assert_eq!(
        f.load,
        load(&[
            (kind(Compact, false, false), 1),
            (kind(Standard, false, false), 2)
        ])
    );
    assert_eq!(
        f.load,
        db.load_at("main", now(), now(), EARLY, LATE).unwrap()
    );
}

/// The vehicles inside that a card's check_in named, as the facts of the
/// user's next card read see them.
fn inside_of(db: &Db, uid: &str) -> Vec<String> {
    let f = db.facts(uid, "main", now(), EARLY, LATE).unwrap();
    f.inside.into_iter().map(|p| p.vehicle_id).collect()
}

#[test]
fn a_vehicle_inside_is_found_by_the_user_its_latest_check_in_named() {
    let mut db = mem();
    let ops = vec![
        up(Record::User(user("u-1"))),
        up(Record::User(user("u-2"))),
        up(Record::Card(card(UID, "u-1"))),
        up(Record::Card(card("0A0B0C0D", "u-2"))),
    ];
    db.apply_batch(&batch(1, ops)).unwrap();
    // v-0 is registered to neither: only the check_in ties it to a user.
    db.record_bodies(
        vec![check_in(passage("v-0", Compact))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    assert_eq!(inside_of(&db, UID), ["v-0"]);
    assert!(inside_of(&db, "0A0B0C0D").is_empty());
    // A sibling lets v-0 in again, for u-2: the presence row is u-2's now.
    let mut theirs = passage("v-0", Compact);
    theirs.user_id = Some("u-2".into());
    let mut exit_gate = Db::open_in_memory(sibling("exit-1")).unwrap();
    let event = exit_gate
        .record_bodies(vec![check_in(theirs)], now(), Clock::Synced)
        .unwrap()
        .remove(0);
    assert!(db.apply_remote(&event).unwrap());
    assert!(inside_of(&db, UID).is_empty());
    assert_eq!(inside_of(&db, "0A0B0C0D"), ["v-0"]);
    let mut out = passage("v-0", Compact);
    out.user_id = Some("u-2".into());
    db.record_bodies(vec![check_out(out)], now(), Clock::Synced)
        .unwrap();
    assert!(inside_of(&db, "0A0B0C0D").is_empty());
}

#[test]
fn an_unknown_card_gives_empty_facts_with_the_load() {
    let mut db = mem();
    db.record_bodies(
        vec![check_in(passage("v-1", Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    let f = db.facts(" 0a0b0c0d ", "main", now(), EARLY, LATE).unwrap();
    assert_eq!(f.credential, "0A0B0C0D");
    assert_eq!((f.card, f.user, f.plan), (None, None, None));
    assert!(f.vehicles.is_empty() && f.reservations.is_empty() && f.inside.is_empty());
    assert_eq!(f.load, load(&[(kind(Standard, false, false), 1)]));
}

#[test]
fn load_holds_due_reservations_only() {
    let mut db = mem();
    let mut flagged = vehicle("v-ada", "u-1", Standard);
    flagged.ada = true;
    flagged.ev = true;
    let r = |id: &str, vehicle: &str, start: i64, end: i64| {
        reservation(
            id,
            "u-1",
            vehicle,
            now() + minutes(start),
            now() + minutes(end),
        )
    };
    let mut compact = r("r-compact", "v-unknown", 0, 40);
    compact.class = Compact;
    let ops = vec![
        up(Record::Vehicle(flagged)),
        up(Record::Vehicle(vehicle("v-in", "u-1", Standard))),
        // Held: starts within the early grace, flags from its vehicle.
        up(Record::Reservation(r("r-due", "v-ada", 10, 120))),
        // Held: started 20 minutes ago, still within the late grace.
        up(Record::Reservation(r("r-late", "v-a", -20, 120))),
        // Held: the vehicle is not in the replica: the reservation's class, no flags.
        up(Record::Reservation(compact)),
        // Not yet: starts in an hour.
        up(Record::Reservation(r("r-soon", "v-b", 60, 120))),
        // No-show: 40 minutes late.
        up(Record::Reservation(r("r-noshow", "v-c", -40, 120))),
        // Over.
        up(Record::Reservation(r("r-over", "v-d", -200, -1))),
        // Its vehicle is already inside.
        up(Record::Reservation(r("r-arrived", "v-in", 0, 120))),
        // Used by a check_in whose vehicle already left again.
        up(Record::Reservation(r("r-used", "v-e", -5, 120))),
        up(Record::Reservation(Reservation {
            status: ReservationStatus::Cancelled,
            ..r("r-cancelled", "v-f", 0, 120)
        })),
        up(Record::Reservation(Reservation {
            lot: "annex".into(),
            ..r("r-annex", "v-g", 0, 120)
        })),
    ];
    db.apply_batch(&batch(1, ops)).unwrap();
    let mut used = passage("v-e", Standard);
    used.reservation_id = Some("r-used".into());
    db.record_bodies(
        vec![
            check_in(passage("v-in", Standard)),
            check_in(used.clone()),
            check_out(used),
        ],
        now(),
        Clock::Synced,
    )
    .unwrap();

    let now_load = db.load_at("main", now(), now(), EARLY, LATE).unwrap();
    assert_eq!(
        now_load,
        load(&[
            (kind(Compact, false, false), 1),
            // v-in inside + r-late
            (kind(Standard, false, false), 2),
            (kind(Standard, true, true), 1),
        ])
    );

    // In 50 minutes r-soon is due too, r-late still held (it is judged a
    // no-show by `now`, not by `at`).
    let later = db
        .load_at("main", now() + minutes(50), now(), EARLY, LATE)
        .unwrap();
    assert_eq!(later.counts[&kind(Standard, false, false)], 3);
    // By then r-compact has ended.
    assert_eq!(later.counts.get(&kind(Compact, false, false)), None);
}
