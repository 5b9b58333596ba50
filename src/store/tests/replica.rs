use super::super::{Applied, StoreError};
use super::*;
use crate::domain::contract::{Clock, Kind};

const UID: &str = "04A1B2C3D4E5F6";

fn facts(db: &Db, credential: &str) -> crate::domain::policy::Facts {
    db.facts(credential, "main", now(), 15, 30).unwrap()
}

#[test]
fn batches_apply_in_order_and_duplicates_are_ignored() {
    let mut db = mem();
    assert_eq!(db.replica_seq().unwrap(), 0);
    let b1 = batch(
        1,
        vec![
            up(Record::User(user("u-1"))),
            up(Record::Card(card(UID, "u-1"))),
        ],
    );
    assert_eq!(db.apply_batch(&b1).unwrap(), Applied::Applied { seq: 1 });
    let b2 = batch(2, vec![up(Record::User(user("u-2")))]);
    assert_eq!(db.apply_batch(&b2).unwrap(), Applied::Applied { seq: 2 });
    assert_eq!(db.replica_seq().unwrap(), 2);

    // Batch 1 again, changed in transit or not: ignored.
    let b1_again = batch(
        1,
        vec![Op::Delete {
            kind: Kind::User,
            key: "u-1".into(),
        }],
    );
    assert_eq!(
        db.apply_batch(&b1_again).unwrap(),
        Applied::Duplicate { seq: 1 }
    );
    assert_eq!(db.replica_seq().unwrap(), 2);
    assert_eq!(count(&db, "users"), 2);
    assert_eq!(facts(&db, UID).user, Some(user("u-1")));
}

#[test]
fn a_gap_is_reported_and_nothing_applied() {
    let mut db = mem();
    db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))]))
        .unwrap();
    let b3 = batch(3, vec![up(Record::User(user("u-3")))]);
    assert_eq!(
        db.apply_batch(&b3).unwrap(),
        Applied::Gap { have: 1, got: 3 }
    );
    assert_eq!(db.replica_seq().unwrap(), 1);
    assert_eq!(count(&db, "users"), 1);
}

#[test]
fn a_bad_op_in_the_middle_changes_nothing() {
    let mut db = mem();
    let bad = batch(
        1,
        vec![
            up(Record::User(user("u-1"))),
            up(Record::Card(card("not-a-uid", "u-1"))),
            up(Record::User(user("u-2"))),
        ],
    );
    match db.apply_batch(&bad) {
        Err(StoreError::Invalid { index: 1, .. }) => {}
        other => panic!("expected Invalid at op 1, got {other:?}"),
    }
    // The first op had been written inside the transaction: rolled back.
    assert_eq!(count(&db, "users"), 0);
    assert_eq!(count(&db, "cards"), 0);
    assert_eq!(db.replica_seq().unwrap(), 0);
    // The corrected batch 1 still applies.
    let good = batch(1, vec![up(Record::User(user("u-1")))]);
    assert_eq!(db.apply_batch(&good).unwrap(), Applied::Applied { seq: 1 });
}

#[test]
fn a_batch_of_another_version_is_refused() {
    let mut db = mem();
    let mut b = batch(1, vec![up(Record::User(user("u-1")))]);
    b.v = 2;
    assert!(matches!(
        db.apply_batch(&b),
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(db.replica_seq().unwrap(), 0);
}

#[test]
fn an_upsert_replaces_the_whole_record() {
    let mut db = mem();
    let mut v = vehicle("v-1", "u-1", VehicleClass::Standard);
    v.ada = true;
    v.primary = true;
    db.apply_batch(&batch(
        1,
        vec![
            up(Record::User(user("u-1"))),
            up(Record::Card(card(UID, "u-1"))),
            up(Record::Vehicle(v.clone())),
        ],
    ))
    .unwrap();
    assert_eq!(facts(&db, UID).vehicles, vec![v]);

    // The new record leaves out plate and flags: they are gone, not merged.
    let v2 = Vehicle {
        plate: None,
        ..vehicle("v-1", "u-1", VehicleClass::Compact)
    };
    let u2 = User {
        company: None,
        status: UserStatus::Suspended,
        ..user("u-1")
    };
    db.apply_batch(&batch(
        2,
        vec![
            up(Record::Vehicle(v2.clone())),
            up(Record::User(u2.clone())),
        ],
    ))
    .unwrap();
    let f = facts(&db, UID);
    assert_eq!(f.vehicles, vec![v2]);
    assert_eq!(f.user, Some(u2));
}

#[test]
fn deletes_remove_each_kind_by_its_key() {
    let mut db = mem();
    let r = reservation("r-1", "u-1", "v-1", now(), now() + minutes(60));
    db.apply_batch(&batch(
        1,
        vec![
            up(Record::User(user("u-1"))),
            up(Record::Card(card(UID, "u-1"))),
            up(Record::Vehicle(vehicle(
                "v-1",
                "u-1",
                VehicleClass::Standard,
            ))),
            up(Record::Plan(plan("u-1"))),
            up(Record::Reservation(r)),
            up(Record::User(user("u-2"))),
        ],
    ))
    .unwrap();
    let del = |kind, key: &str| Op::Delete {
        kind,
        key: key.into(),
    };
    db.apply_batch(&batch(
        2,
        vec![
            del(Kind::User, "u-1"),
            // Any case names the same card.
            del(Kind::Card, &UID.to_ascii_lowercase()),
            del(Kind::Vehicle, "v-1"),
            del(Kind::Plan, "u-1"),
            del(Kind::Reservation, "r-1"),
            // Deleting what is not there is fine.
            del(Kind::Reservation, "r-404"),
        ],
    ))
    .unwrap();
    for table in ["cards", "vehicles", "plans", "reservations"] {
        assert_eq!(count(&db, table), 0, "{table}");
    }
    assert_eq!(count(&db, "users"), 1, "u-2 stays");
}

#[test]
fn card_uids_are_kept_upper_case() {
    let mut db = mem();
    db.apply_batch(&batch(
        1,
        vec![
            up(Record::User(user("u-1"))),
            up(Record::Card(card(&UID.to_ascii_lowercase(), "u-1"))),
        ],
    ))
    .unwrap();
    let f = facts(&db, &UID.to_ascii_lowercase());
    assert_eq!(f.credential, UID);
    assert_eq!(f.card.map(|c| c.card), Some(UID.to_string()));
}

#[test]
fn a_snapshot_replaces_the_replica_but_not_presence() {
    let mut db = mem();
    db.apply_batch(&batch(
        1,
        vec![up(Record::User(user("u-1"))), up(Record::User(user("u-2")))],
    ))
    .unwrap();
    db.record_bodies(
        vec![check_in(passage("v-1", VehicleClass::Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    db.apply_snapshot(
        40,
        &[
            up(Record::User(user("u-3"))),
            up(Record::Card(card(UID, "u-3"))),
        ],
    )
    .unwrap();
    assert_eq!(db.replica_seq().unwrap(), 40);
    assert_eq!(count(&db, "users"), 1);
    assert_eq!(facts(&db, UID).user, Some(user("u-3")));
    assert_eq!(db.presence().unwrap().len(), 1);
    // The next batch follows the snapshot's seq.
    let b = batch(41, vec![up(Record::User(user("u-4")))]);
    assert_eq!(db.apply_batch(&b).unwrap(), Applied::Applied { seq: 41 });
}

#[test]
fn a_bad_snapshot_keeps_the_old_replica() {
    let mut db = mem();
    db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))]))
        .unwrap();
    let bad = [
        up(Record::User(user("u-3"))),
        up(Record::Card(card("zz", "u-3"))),
    ];
    assert!(matches!(
        db.apply_snapshot(40, &bad),
        Err(StoreError::Invalid { index: 1, .. })
    ));
    assert_eq!(db.replica_seq().unwrap(), 1);
    assert_eq!(count(&db, "users"), 1);
}
