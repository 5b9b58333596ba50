//! The warm load: reused while fresh, dropped by every write, warmed when idle.

use crate::domain::availability::Kind;
use crate::domain::contract::Clock;

use super::*;

use VehicleClass::Standard;

const PLAIN: Kind = Kind {
    class: Standard,
    ada: false,
    ev: false,
};

fn inside(db: &Db, at: Timestamp) -> u32 {
    let facts = db.facts("UNKNOWN", "main", at, 15, 30).unwrap();
    facts.load.counts.get(&PLAIN).copied().unwrap_or(0)
}

/// Puts a vehicle inside behind the store's back (no write method, so the
/// warm load is not told): shows which reads count and which reuse.
fn sneak_in(db: &Db, vehicle: &str) {
    db.conn
        .execute(
            "INSERT INTO presence (vehicle_id, user_id, class, ada, ev, since, since_ms, plan, event_id)
             VALUES (?1, 'u', 'standard', 0, 0, '2026-11-22T07:00:00+07:00', 0, 'daily', ?1)",
            [vehicle],
        )
        .unwrap();
}

#[test]
fn a_fresh_load_is_reused_and_a_stale_one_counted_again() {
    let db = mem();
    assert_eq!(inside(&db, now()), 0);
    sneak_in(&db, "v-1");
    // Within FRESH of the last count: the warm copy answers.
    assert_eq!(inside(&db, now() + chrono::Duration::seconds(4)), 0);
    // At FRESH: counted again.
    assert_eq!(inside(&db, now() + crate::store::warm::FRESH), 1);
    // A clock that went back never reuses a count from its future.
    sneak_in(&db, "v-2");
    assert_eq!(inside(&db, now()), 2);
}

#[test]
fn every_write_drops_the_warm_load() {
    let mut db = mem();
    assert_eq!(inside(&db, now()), 0);
    db.record_bodies(
        vec![EventBody::CheckIn(passage("v-1", Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    assert_eq!(inside(&db, now()), 1, "a passage is seen at once");
    sneak_in(&db, "v-2");
    db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))]))
        .unwrap();
    assert_eq!(inside(&db, now()), 2, "a replica batch drops it too");
}

#[test]
fn warming_up_recounts_a_stale_load_in_the_background() {
    let mut db = mem();
    assert_eq!(inside(&db, now()), 0);
    db.record_bodies(
        vec![EventBody::CheckIn(passage("v-1", Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    db.warm_up().unwrap();
    sneak_in(&db, "v-2");
    // The warm-up counted after the write (one inside) and is what a
    // decision right after reads, without counting itself.
    assert_eq!(inside(&db, now() + chrono::Duration::seconds(4)), 1);
}
