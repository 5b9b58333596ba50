use rusqlite::Connection;

use super::super::schema::{MIGRATIONS, migrate_to};
use super::super::{Db, StoreError};
use super::*;
use crate::domain::contract::{Clock, Kind};

/// How many indexes `table` has.
fn indexes_on(db: &Db, table: &str) -> i64 {
    db.conn
        .query_row(
            "SELECT COUNT(*) FROM sqlite_schema WHERE tbl_name = ?1 AND type = 'index'",
            [table],
            |r| r.get(0),
        )
        .unwrap()
}

fn user_version(db: &Db) -> i64 {
    db.conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap()
}

#[test]
fn a_file_db_is_wal_with_full_sync_and_current_schema() {
    let dir = tempfile::tempdir().unwrap();
    // The parent directory does not exist yet: open creates it.
    let path = dir.path().join("state/gate.db");
    let db = Db::open(&path, ident()).unwrap();
    let mode: String = db
        .conn
        .pragma_query_value(None, "journal_mode", |r| r.get(0))
        .unwrap();
    let sync: i64 = db
        .conn
        .pragma_query_value(None, "synchronous", |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    assert_eq!(sync, 2, "synchronous=FULL");
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
}

#[test]
fn opening_twice_is_idempotent_and_keeps_data() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    db.apply_batch(&batch(1, vec![up(Record::User(user("u-1")))]))
        .unwrap();
    drop(db);
    let db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    assert_eq!(db.replica_seq().unwrap(), 1);
    assert_eq!(count(&db, "users"), 1);
}

#[test]
fn an_old_version_upgrades_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    {
        // A gate installed when the schema had only the replica (version 1).
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, 1).unwrap();
        conn.execute(
            "INSERT INTO users (user_id, name, status) VALUES ('u-1', 'Old', 'active')",
            [],
        )
        .unwrap();
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 1);
    }
    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    assert_eq!(count(&db, "users"), 1);
    // The tables of later versions work.
    let ev = db
        .record_bodies(
            vec![check_in(passage("v-1", VehicleClass::Standard))],
            now(),
            Clock::Synced,
        )
        .unwrap();
    assert_eq!(ev[0].gate_seq, 1);
    db.apply_batch(&batch(
        1,
        vec![Op::Delete {
            kind: Kind::User,
            key: "u-1".into(),
        }],
    ))
    .unwrap();
    assert_eq!(count(&db, "users"), 0);
}

#[test]
fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    match Db::open(&path, ident()) {
        Err(StoreError::TooNew { found: 99, known }) => assert_eq!(known, MIGRATIONS.len()),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a database from the future"),
    }
}

#[test]
fn a_version_5_store_moves_its_replica_to_the_replica_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    {
        // The last release: replica, its seq and snapshot staging in one file.
        let mut conn = Connection::open(&path).unwrap();
        migrate_to(&mut conn, 5).unwrap();
        conn.execute_batch(
            "INSERT INTO users (user_id, name, status) VALUES ('u-1', 'Old', 'active');
             INSERT INTO cards (card, user_id, status) VALUES ('04000000000001', 'u-1', 'active');
             INSERT INTO staging_users (user_id, name, status) VALUES ('u-9', 'Half', 'active');
             UPDATE meta SET value = 7 WHERE key = 'replica_seq';",
        )
        .unwrap();
    }
    let db = Db::open(&path, ident()).unwrap();
    assert_eq!(db.replica_seq().unwrap(), 7);
    assert_eq!(count(&db, "users"), 1);
    let holder = db.facts("04000000000001", "main", now(), 15, 30).unwrap();
    assert_eq!(holder.user.map(|u| u.user_id).as_deref(), Some("u-1"));
    let left: Vec<String> = db
        .conn
        .prepare(
            "SELECT name FROM main.sqlite_schema WHERE type = 'table'
             AND (name IN ('users', 'cards', 'vehicles', 'plans', 'reservations')
                  OR name LIKE 'staging_%' OR name LIKE 'snapshot_%')",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(left, Vec::<String>::new(), "the main file keeps no replica");
    let in_main: i64 = db
        .conn
        .query_row(
            "SELECT COUNT(*) FROM main.meta WHERE key = 'replica_seq'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(in_main, 0);
    drop(db);
    // The replica file stands on its own.
    let replica = Connection::open(dir.path().join("gate.db.replica")).unwrap();
    let users: i64 = replica
        .query_row("SELECT COUNT(*) FROM users", [], |r| r.get(0))
        .unwrap();
    assert_eq!(users, 1);
}

#[test]
fn a_version_7_store_keeps_its_passages_in_the_tables_keyed_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    {
        let mut db = Db::open(&path, ident()).unwrap();
        db.record_bodies(
            vec![check_in(Passage {
                reservation_id: Some("r-1".into()),
                ..passage("v-1", VehicleClass::Standard)
            })],
            now(),
            Clock::Synced,
        )
        .unwrap();
    }
    {
        // The same rows as version 7 kept them, in rowid tables.
        as_version_12(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE p AS SELECT * FROM presence; DROP TABLE presence;
             CREATE TABLE presence (vehicle_id TEXT PRIMARY KEY, user_id TEXT NOT NULL,
               class TEXT NOT NULL, ada INTEGER NOT NULL, ev INTEGER NOT NULL,
               since TEXT NOT NULL, since_ms INTEGER NOT NULL, reservation_id TEXT,
               spot_id TEXT, plan TEXT NOT NULL, event_id TEXT NOT NULL) STRICT;
             INSERT INTO presence SELECT * FROM p; DROP TABLE p;
             CREATE INDEX presence_user ON presence (user_id);
             PRAGMA user_version = 7;",
        )
        .unwrap();
    }
    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    for table in ["presence", "applied_events", "used_reservations"] {
        let sql = format!("SELECT rowid FROM {table}");
        assert!(db.conn.prepare(&sql).is_err(), "{table} has no rowid");
    }
    assert_eq!(count(&db, "presence"), 1);
    assert_eq!(count(&db, "used_reservations"), 1);
    // The passage's applied record moved to its journal row (13).
    assert_eq!(count(&db, "applied_events"), 0);
    // And the vehicle leaves as before.
    db.record_bodies(
        vec![check_out(passage("v-1", VehicleClass::Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    assert_eq!(count(&db, "presence"), 0);
}

#[test]
fn a_version_8_store_keeps_its_events_and_finds_its_outbox_from_a_floor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    for v in ["v-1", "v-2", "v-3", "v-4"] {
        db.record_bodies(
            vec![check_in(passage(v, VehicleClass::Standard))],
            now(),
            Clock::Synced,
        )
        .unwrap();
    }
    db.mark_all_delivered(&[1, 3]).unwrap();
    drop(db);
    {
        // The events table as version 8 had it: event_id UNIQUE, an index
        // of the undelivered, no floor.
        as_version_12(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE e AS SELECT * FROM events; DROP TABLE events;
             CREATE TABLE events (gate_seq INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,
               type TEXT NOT NULL, at TEXT NOT NULL, at_ms INTEGER NOT NULL,
               json TEXT NOT NULL, delivered INTEGER NOT NULL DEFAULT 0) STRICT;
             INSERT INTO events SELECT * FROM e; DROP TABLE e;
             CREATE INDEX events_outbox ON events (gate_seq) WHERE delivered = 0;
             CREATE INDEX events_prunable ON events (at_ms) WHERE delivered = 1;
             DELETE FROM meta WHERE key = 'outbox_floor';
             PRAGMA user_version = 8;",
        )
        .unwrap();
    }
    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    assert_eq!(count(&db, "events"), 4);
    let out: Vec<u64> = db.outbox(10).unwrap().iter().map(|e| e.gate_seq).collect();
    assert_eq!(out, [2, 4]);
    let indexes = indexes_on(&db, "events");
    assert_eq!(indexes, 1, "only the index of the prunable is left");
    db.mark_all_delivered(&[2, 4]).unwrap();
    assert_eq!(db.outbox_depth().unwrap(), 0);
    db.record_bodies(
        vec![check_out(passage("v-1", VehicleClass::Standard))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    let out: Vec<u64> = db.outbox(10).unwrap().iter().map(|e| e.gate_seq).collect();
    assert_eq!(out, [5]);
}

#[test]
fn a_version_9_store_drops_presence_by_user_and_still_finds_a_users_vehicle_inside() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let ops = vec![
        up(Record::User(user("u-1"))),
        up(Record::Card(card("04A1B2C3D4E5F6", "u-1"))),
    ];
    db.apply_batch(&batch(1, ops)).unwrap();
    db.record_bodies(
        vec![check_in(passage("v-0", VehicleClass::Compact))],
        now(),
        Clock::Synced,
    )
    .unwrap();
    drop(db);
    {
        as_version_12(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE INDEX presence_user ON presence (user_id);
             PRAGMA user_version = 9;",
        )
        .unwrap();
    }
    let db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    let indexes = indexes_on(&db, "presence");
    assert_eq!(indexes, 0);
    let f = db.facts("04A1B2C3D4E5F6", "main", now(), 15, 30).unwrap();
    let inside: Vec<_> = f.inside.iter().map(|p| p.vehicle_id.as_str()).collect();
    assert_eq!(
        inside,
        ["v-0"],
        "v-0 is registered to nobody: found by user"
    );
}

#[test]
fn a_version_10_store_lists_own_records_whose_journal_rows_went_and_indexes_siblings_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parkgate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let old = now() - chrono::Duration::days(40);
    // Parked 40 days ago, and a visit that came and went then.
    let visit = passage("v-1", VehicleClass::Standard);
    let journal = db
        .record_bodies(
            vec![
                check_in(passage("v-0", VehicleClass::Compact)),
                check_in(visit.clone()),
                check_out(visit),
            ],
            old,
            Clock::Synced,
        )
        .unwrap();
    drop(db);
    {
        // As version 10 pruned: records by time, the journal rows apart.
        as_version_12(&path);
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP INDEX applied_remote_at;
             DROP TABLE applied_kept;
             CREATE INDEX applied_events_at ON applied_events (at_ms);
             DELETE FROM events;
             PRAGMA user_version = 10;",
        )
        .unwrap();
    }
    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    assert_eq!(indexes_on(&db, "applied_events"), 1);
    assert_eq!(count(&db, "applied_kept"), 3, "all three rows went");
    // Prune goes on from there: the visit's records go, the parked car's
    // check_in stays while it is inside.
    let pruned = db.prune(now() - chrono::Duration::days(30), now()).unwrap();
    assert_eq!(pruned.applied, 2, "{pruned:?}");
    assert_eq!(count(&db, "applied_kept"), 1);
    assert!(!db.apply_remote(&journal[0]).unwrap(), "still applied once");
}

#[test]
fn a_version_12_store_moves_its_own_records_onto_their_journal_rows() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("parkgate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    // Parked 40 days ago (its journal row pruned since, its record kept),
    // a visit in and out today, and an entry turned away.
    let old = now() - chrono::Duration::days(40);
    let parked = db
        .record_bodies(
            vec![check_in(passage("v-0", VehicleClass::Compact))],
            old,
            Clock::Synced,
        )
        .unwrap();
    db.mark_delivered(parked[0].gate_seq).unwrap();
    db.prune(now() - chrono::Duration::days(30), now()).unwrap();
    let visit = passage("v-1", VehicleClass::Standard);
    let today = db
        .record_bodies(
            vec![
                check_in(visit.clone()),
                check_out(visit),
                check_in(passage("v-2", VehicleClass::Standard)),
            ],
            now(),
            Clock::Synced,
        )
        .unwrap();
    db.record_bodies(vec![void(&today[2].event_id)], now(), Clock::Synced)
        .unwrap();
    let (counters, presence) = (db.counters().unwrap(), db.presence().unwrap());
    drop(db);
    as_version_12(&path);

    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(user_version(&db), MIGRATIONS.len() as i64);
    assert_eq!(count(&db, "applied_events"), 1, "the parked car's, kept");
    assert_eq!(count(&db, "applied_kept"), 1);
    let on_rows: i64 = db
        .conn
        .query_row(
            "SELECT COUNT(*) FROM events WHERE class IS NOT NULL OR voided = 1",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(on_rows, 3, "the visit's two and the voided entry");
    assert_eq!(db.counters().unwrap(), counters);
    assert_eq!(db.presence().unwrap(), presence);
    // The moved records still do their job: a void of the visit's exit
    // puts it back, one of the voided entry changes nothing.
    db.record_bodies(
        vec![void(&today[1].event_id), void(&today[2].event_id)],
        now(),
        Clock::Synced,
    )
    .unwrap();
    let inside: Vec<_> = db
        .presence()
        .unwrap()
        .into_iter()
        .map(|p| p.vehicle_id)
        .collect();
    assert_eq!(inside, ["v-0", "v-1"]);
}
