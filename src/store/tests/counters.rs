//! This gate's counters: the table plus the journal's tail (`counters.rs`).

use std::collections::BTreeMap;
use std::time::Instant;

use rusqlite::Connection;

use super::super::codec::{COUNTERS_SEQ, get_meta};
use super::super::counters::{FOLD_AFTER, fold};
use super::*;
use crate::domain::contract::Clock;

use VehicleClass::{Compact, Standard};

type Counts = BTreeMap<VehicleClass, u64>;

fn record(db: &mut Db, body: EventBody) -> crate::domain::contract::Event {
    db.record_bodies(vec![body], now(), Clock::Synced)
        .unwrap()
        .remove(0)
}

fn table_rows(db: &Db) -> i64 {
    db.conn
        .query_row("SELECT COUNT(*) FROM counters", [], |r| r.get(0))
        .unwrap()
}

/// Passages, voids of them and an exit counted as the class it entered
/// as: entered and exited come to Compact 1, Standard 3 each.
fn traffic(db: &mut Db) {
    record(db, check_in(passage("v-1", Standard)));
    record(db, check_in(passage("v-2", Standard)));
    record(db, check_out(passage("v-1", Standard)));
    let turned_away = record(db, check_in(passage("v-3", Compact)));
    record(db, void(&turned_away.event_id));
    let exit = record(db, check_out(passage("v-2", Standard)));
    record(db, void(&exit.event_id));
    let mut unknown = passage("v-2", Standard);
    unknown.vehicle_class = None;
    record(db, check_out(unknown));
}

fn expected() -> (Counts, Counts) {
    let sums = BTreeMap::from([(Compact, 1), (Standard, 3)]);
    (sums.clone(), sums)
}

#[test]
fn a_passage_writes_no_counters_row_and_is_counted_again_after_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    record(&mut db, check_in(passage("v-1", Standard)));
    record(&mut db, check_in(passage("v-2", Compact)));
    record(&mut db, check_out(passage("v-1", Standard)));
    // The commit the barrier waits on wrote the journal and presence only.
    assert_eq!(table_rows(&db), 0);
    let counted = (
        BTreeMap::from([(Compact, 1), (Standard, 1)]),
        BTreeMap::from([(Standard, 1)]),
    );
    assert_eq!(db.counters().unwrap(), counted);
    drop(db);
    let db = Db::open(&path, ident()).unwrap();
    assert_eq!(db.counters().unwrap(), counted);
    assert_eq!(db.tail.len, 3, "the tail's length is read at start-up");
}

#[test]
fn a_long_tail_is_folded_between_jobs_and_the_sums_stay() {
    let mut db = mem();
    traffic(&mut db);
    assert_eq!(db.counters().unwrap(), expected());
    db.between_jobs(Instant::now());
    let short = table_rows(&db);
    assert!(
        short <= 2,
        "the voids' rows alone ({short}): not folded yet"
    );

    let alerts = vec![alert(); FOLD_AFTER as usize];
    db.record_bodies(alerts, now(), Clock::Synced).unwrap();
    db.between_jobs(Instant::now());
    assert_eq!(db.tail.len, 0);
    assert_eq!(
        get_meta(&db.conn, COUNTERS_SEQ).unwrap(),
        db.last_seq().unwrap()
    );
    assert_eq!(table_rows(&db), 4, "both directions of both classes");
    assert_eq!(db.counters().unwrap(), expected());

    // A void of a folded passage counts in the table, as before.
    let (mut entered, mut exited) = expected();
    let late = record(&mut db, check_in(passage("v-4", Compact)));
    record(&mut db, void(&late.event_id));
    *entered.get_mut(&Compact).unwrap() += 1;
    *exited.get_mut(&Compact).unwrap() += 1;
    assert_eq!(db.counters().unwrap(), (entered, exited));
}

#[test]
fn a_tail_another_process_wrote_into_is_read_back_when_folded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    // Folded once: from here on this store counts its passages as they commit.
    db.tail.len = FOLD_AFTER;
    db.between_jobs(Instant::now());
    assert!(db.tail.sums().is_some());
    record(&mut db, check_in(passage("v-1", Standard)));
    // Another process (a CLI on the same file) journals a passage too.
    let mut other = Db::open(&path, ident()).unwrap();
    record(&mut other, check_in(passage("v-2", Compact)));
    drop(other);
    record(&mut db, check_out(passage("v-1", Standard)));
    assert!(
        db.tail.sums().is_none(),
        "a seq this store did not give out"
    );
    let counted = (
        BTreeMap::from([(Compact, 1), (Standard, 1)]),
        BTreeMap::from([(Standard, 1)]),
    );
    assert_eq!(db.counters().unwrap(), counted);
    db.tail.len = FOLD_AFTER;
    db.between_jobs(Instant::now());
    assert_eq!(db.counters().unwrap(), counted, "the other's passage too");
    assert_eq!(
        get_meta(&db.conn, COUNTERS_SEQ).unwrap(),
        db.last_seq().unwrap()
    );
}

#[test]
fn pruning_folds_the_tail_before_it_deletes_the_journal() {
    let mut db = mem();
    traffic(&mut db);
    let seqs: Vec<u64> = (1..=db.last_seq().unwrap()).collect();
    db.mark_all_delivered(&seqs).unwrap();
    let pruned = db.prune(now() + minutes(1), now()).unwrap();
    assert_eq!(pruned.events, seqs.len());
    assert!(db.events(10).unwrap().is_empty());
    assert_eq!(db.counters().unwrap(), expected());
    assert_eq!(db.tail.len, 0);
}

#[test]
fn a_version_11_store_keeps_its_counters_in_the_table() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    traffic(&mut db);
    // As version 11 left it: every passage in the table, no floor.
    fold(&db.conn, None).unwrap();
    drop(db);
    as_version_12(&path);
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DELETE FROM meta WHERE key = 'counters_seq'; PRAGMA user_version = 11;")
        .unwrap();
    drop(conn);
    let db = Db::open(&path, ident()).unwrap();
    assert_eq!(db.counters().unwrap(), expected(), "none counted twice");
    assert_eq!(
        get_meta(&db.conn, COUNTERS_SEQ).unwrap(),
        db.last_seq().unwrap()
    );
}
