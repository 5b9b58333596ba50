//! Chunked snapshots: staged beside the replica, swapped in by the last chunk.

use std::collections::BTreeMap;

use super::super::{Adopted, Progress, Skip, Staged, Staging, StoreError};
use super::*;
use crate::domain::availability::Kind as LoadKind;
use crate::domain::contract::{Kind, SnapshotChunk};

const OLD: &str = "04000000000001";
const NEW: &str = "04000000000002";

fn chunk(id: &str, seq: u64, n: u32, of: u32, ops: Vec<Op>) -> SnapshotChunk {
    SnapshotChunk {
        v: 1,
        snapshot_id: id.into(),
        seq,
        chunk: n,
        chunks: of,
        ops,
    }
}

/// A user with one card: the ops of one chunk.
fn member(user_id: &str, uid: &str) -> Vec<Op> {
    vec![
        up(Record::User(user(user_id))),
        up(Record::Card(card(uid, user_id))),
    ]
}

/// A replica at seq 1 with user u-old holding card OLD.
fn with_old_replica() -> Db {
    let mut db = mem();
    db.apply_batch(&batch(1, member("u-old", OLD))).unwrap();
    db
}

/// The user a decision on `uid` finds.
fn holder(db: &Db, uid: &str) -> Option<String> {
    db.facts(uid, "main", now(), 15, 30)
        .unwrap()
        .user
        .map(|u| u.user_id)
}

/// Stages `c` as the link does: into the staging file, which replaces the
/// replica once complete.
fn stage(db: &mut Db, st: &mut Staging, c: &SnapshotChunk) -> Result<Staged, StoreError> {
    let staged = st.stage(c, db.replica_seq()?)?;
    if let Staged::Complete { seq } = staged {
        assert_eq!(db.adopt_snapshot(st)?, Adopted::Swapped { seq });
    }
    Ok(staged)
}

#[test]
fn chunks_out_of_order_complete_the_snapshot() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    let ids = ["u-a", "u-b", "u-c"];
    let uids = ["04000000000A01", "04000000000A02", "04000000000A03"];
    let order = [2, 0, 1];
    let mut results = Vec::new();
    for n in order {
        let ops = member(ids[n], uids[n]);
        results.push(stage(&mut db, &mut st, &chunk("s-1", 40, n as u32, 3, ops)).unwrap());
    }
    assert_eq!(
        results,
        vec![
            Staged::Partial { have: 1, of: 3 },
            Staged::Partial { have: 2, of: 3 },
            Staged::Complete { seq: 40 },
        ]
    );
    assert_eq!(db.replica_seq().unwrap(), 40);
    assert_eq!(count(&db, "users"), 3, "u-old is gone with the old replica");
    assert_eq!(holder(&db, uids[0]).as_deref(), Some("u-a"));
    assert_eq!(holder(&db, OLD), None);
    assert_eq!(st.progress().unwrap(), None);
    assert_eq!(st.count("users"), 0, "the twin is empty for the next one");
    // Change batches follow the snapshot's seq.
    let next = batch(41, vec![up(Record::User(user("u-d")))]);
    assert_eq!(
        db.apply_batch(&next).unwrap(),
        super::super::Applied::Applied { seq: 41 }
    );
}

#[test]
fn decisions_see_the_old_replica_until_the_last_chunk() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    let first = chunk("s-1", 40, 0, 2, member("u-new", NEW));
    assert_eq!(
        stage(&mut db, &mut st, &first).unwrap(),
        Staged::Partial { have: 1, of: 2 }
    );
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
    assert_eq!(holder(&db, NEW), None, "staged, not yet live");
    assert_eq!(db.replica_seq().unwrap(), 1);

    let last = chunk("s-1", 40, 1, 2, vec![up(Record::Plan(plan("u-new")))]);
    assert_eq!(
        stage(&mut db, &mut st, &last).unwrap(),
        Staged::Complete { seq: 40 }
    );
    assert_eq!(holder(&db, OLD), None);
    assert_eq!(holder(&db, NEW).as_deref(), Some("u-new"));
    let facts = db.facts(NEW, "main", now(), 15, 30).unwrap();
    assert_eq!(facts.plan, Some(plan("u-new")));
}

#[test]
fn a_repeated_chunk_is_ignored() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    let c0 = chunk("s-1", 40, 0, 2, member("u-a", NEW));
    stage(&mut db, &mut st, &c0).unwrap();
    // Redelivered, even with other content: the first copy stands.
    let again = chunk("s-1", 40, 0, 2, member("u-z", "04000000000F0F"));
    assert_eq!(
        stage(&mut db, &mut st, &again).unwrap(),
        Staged::Ignored(Skip::Repeated { chunk: 0 })
    );
    assert_eq!(st.count("users"), 1);
    let progress = st.progress().unwrap().unwrap();
    assert_eq!((progress.have, progress.chunks), (1, 2));
    let c1 = chunk("s-1", 40, 1, 2, vec![]);
    assert_eq!(
        stage(&mut db, &mut st, &c1).unwrap(),
        Staged::Complete { seq: 40 }
    );
    assert_eq!(holder(&db, NEW).as_deref(), Some("u-a"));
}

#[test]
fn a_new_snapshot_id_drops_the_abandoned_one() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    stage(
        &mut db,
        &mut st,
        &chunk("s-1", 40, 0, 2, member("u-a", NEW)),
    )
    .unwrap();
    let s2 = chunk("s-2", 45, 0, 2, member("u-b", "04000000000B01"));
    assert_eq!(
        stage(&mut db, &mut st, &s2).unwrap(),
        Staged::Partial { have: 1, of: 2 }
    );
    assert_eq!(st.count("users"), 1, "u-a's chunk was dropped");
    // The rest of s-1 arrives late: s-2 is newer, so s-1 stays abandoned.
    let late = chunk("s-1", 40, 1, 2, member("u-c", "04000000000C01"));
    assert_eq!(
        stage(&mut db, &mut st, &late).unwrap(),
        Staged::Ignored(Skip::Superseded {
            staging: 45,
            got: 40
        })
    );
    let s2_last = chunk("s-2", 45, 1, 2, vec![]);
    assert_eq!(
        stage(&mut db, &mut st, &s2_last).unwrap(),
        Staged::Complete { seq: 45 }
    );
    assert_eq!(holder(&db, "04000000000B01").as_deref(), Some("u-b"));
    assert_eq!(holder(&db, NEW), None);
    assert_eq!(count(&db, "users"), 1);
}

#[test]
fn abandon_snapshot_clears_staging_and_keeps_the_replica() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    stage(
        &mut db,
        &mut st,
        &chunk("s-1", 40, 0, 2, member("u-a", NEW)),
    )
    .unwrap();
    st.abandon().unwrap();
    assert_eq!(st.progress().unwrap(), None);
    assert_eq!((st.count("users"), st.count("cards")), (0, 0));
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
    // Its last chunk alone now starts staging afresh, one chunk in.
    let c1 = chunk("s-1", 40, 1, 2, vec![]);
    assert_eq!(
        stage(&mut db, &mut st, &c1).unwrap(),
        Staged::Partial { have: 1, of: 2 }
    );
}

#[test]
fn a_stale_snapshot_is_ignored() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    db.apply_batch(&batch(2, vec![])).unwrap();
    for seq in [1, 2] {
        let c = chunk("s-old", seq, 0, 1, member("u-a", NEW));
        assert_eq!(
            stage(&mut db, &mut st, &c).unwrap(),
            Staged::Ignored(Skip::Stale { have: 2, got: seq })
        );
    }
    assert_eq!(db.replica_seq().unwrap(), 2);
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
    assert_eq!(st.count("users"), 0);

    // Batches overtake a snapshot being staged: its next chunk is stale and
    // its staged rows go.
    stage(&mut db, &mut st, &chunk("s-1", 3, 0, 2, member("u-a", NEW))).unwrap();
    db.apply_batch(&batch(3, vec![])).unwrap();
    let c1 = chunk("s-1", 3, 1, 2, vec![]);
    assert_eq!(
        stage(&mut db, &mut st, &c1).unwrap(),
        Staged::Ignored(Skip::Stale { have: 3, got: 3 })
    );
    assert_eq!(st.progress().unwrap(), None);
    assert_eq!(st.count("users"), 0);
}

#[test]
fn malformed_chunks_are_rejected_and_change_nothing() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    stage(
        &mut db,
        &mut st,
        &chunk("s-1", 40, 0, 3, member("u-a", NEW)),
    )
    .unwrap();
    let before = st.progress().unwrap();
    let delete = Op::Delete {
        kind: Kind::User,
        key: "u-old".into(),
    };
    let mut wrong_v = chunk("s-1", 40, 1, 3, vec![]);
    wrong_v.v = 2;
    let bad = [
        (
            chunk("s-1", 40, 1, 3, vec![up(Record::User(user("u-b"))), delete]),
            1,
        ),
        (chunk("s-1", 40, 3, 3, vec![]), 0),
        (chunk("s-2", 50, 0, 0, vec![]), 0),
        (chunk("s-1", 40, 1, 4, vec![]), 0),
        (chunk("s-1", 41, 1, 3, vec![]), 0),
        (wrong_v, 0),
        // A bad record after a good one, and of a new snapshot_id: the good
        // one and the abandoning of s-1 roll back.
        (
            chunk(
                "s-2",
                50,
                0,
                2,
                vec![
                    up(Record::User(user("u-c"))),
                    up(Record::Card(card("zz", "u-c"))),
                ],
            ),
            1,
        ),
    ];
    for (c, at) in bad {
        match stage(&mut db, &mut st, &c) {
            Err(StoreError::Invalid { index, .. }) => assert_eq!(index, at, "{c:?}"),
            other => panic!("{c:?} gave {other:?}"),
        }
        assert_eq!(st.progress().unwrap(), before);
        assert_eq!(st.count("users"), 1);
    }
    assert_eq!(db.replica_seq().unwrap(), 1);
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
}

#[test]
fn staging_is_kept_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    let mut st = db.staging().unwrap();
    db.apply_batch(&batch(1, member("u-old", OLD))).unwrap();
    stage(
        &mut db,
        &mut st,
        &chunk("s-1", 40, 1, 2, member("u-a", NEW)),
    )
    .unwrap();
    drop(db);

    let mut db = Db::open(&path, ident()).unwrap();
    let mut st = db.staging().unwrap();
    let expected = Progress {
        snapshot_id: "s-1".into(),
        seq: 40,
        chunks: 2,
        have: 1,
    };
    assert_eq!(st.progress().unwrap(), Some(expected));
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
    // HQ redelivers what was not acknowledged, staged or not.
    let again = chunk("s-1", 40, 1, 2, member("u-a", NEW));
    assert_eq!(
        stage(&mut db, &mut st, &again).unwrap(),
        Staged::Ignored(Skip::Repeated { chunk: 1 })
    );
    let c0 = chunk("s-1", 40, 0, 2, vec![]);
    assert_eq!(
        stage(&mut db, &mut st, &c0).unwrap(),
        Staged::Complete { seq: 40 }
    );
    assert_eq!(holder(&db, NEW).as_deref(), Some("u-a"));
}

/// A table's columns and indexes.
fn shape(db: &Db, table: &str) -> Vec<String> {
    let rows = |sql: String| -> Vec<String> {
        let mut stmt = db.conn.prepare(&sql).unwrap();
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| {
                    r.get::<_, rusqlite::types::Value>(i)
                        .map(|v| format!("{v:?}"))
                })
                .collect::<Result<Vec<_>, _>>()
                .map(|v| v.join(","))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap()
    };
    let mut shape = rows(format!("PRAGMA table_xinfo({table})"));
    let strict: i64 = db
        .conn
        .query_row(
            "SELECT strict FROM pragma_table_list WHERE name = ?1",
            [table],
            |r| r.get(0),
        )
        .unwrap();
    shape.push(format!("strict={strict}"));
    let names: Vec<String> = db
        .conn
        .prepare("SELECT name FROM pragma_index_list(?1)")
        .unwrap()
        .query_map([table], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut indexes: Vec<String> = names
        .iter()
        .map(|name| {
            let flags = rows(format!(
                "SELECT \"unique\", origin, partial FROM pragma_index_list('{table}')
                 WHERE name = '{name}'"
            ));
            let cols = rows(format!("PRAGMA index_xinfo('{name}')"));
            format!("{flags:?} {cols:?}")
        })
        .collect();
    indexes.sort();
    shape.extend(indexes);
    shape
}

fn shapes(db: &Db) -> BTreeMap<String, Vec<String>> {
    ["users", "cards", "vehicles", "plans", "reservations"]
        .into_iter()
        .map(|t| (t.to_string(), shape(db, t)))
        .collect()
}

#[test]
fn a_second_snapshot_works_and_the_schema_is_as_fresh() {
    let fresh = shapes(&mem());
    assert!(fresh["reservations"].len() > 13, "indexes are in the shape");

    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    for (seq, id, uid) in [(40, "s-1", NEW), (50, "s-2", OLD), (60, "s-3", NEW)] {
        let ops = member(&format!("u-{seq}"), uid);
        assert_eq!(
            stage(&mut db, &mut st, &chunk(id, seq, 0, 1, ops)).unwrap(),
            Staged::Complete { seq }
        );
        assert_eq!(shapes(&db), fresh, "after {id}");
        assert_eq!(holder(&db, uid), Some(format!("u-{seq}")));
        assert_eq!(count(&db, "users"), 1);
    }
    let ok: String = db
        .conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn the_swap_makes_the_kept_load_again() {
    let mut db = with_old_replica();
    let mut st = db.staging().unwrap();
    let plain = LoadKind {
        class: VehicleClass::Standard,
        ada: false,
        ev: false,
    };
    let held = |db: &Db| {
        let facts = db.facts(OLD, "main", now(), 15, 30).unwrap();
        facts.load.counts.get(&plain).copied().unwrap_or(0)
    };
    assert_eq!(held(&db), 0);
    // A booking due now holds a spot: the new replica's load is one more.
    let due = reservation("r-1", "u-new", "v-1", now(), now() + minutes(60));
    let c = chunk("s-1", 40, 0, 1, vec![up(Record::Reservation(due))]);
    assert_eq!(
        stage(&mut db, &mut st, &c).unwrap(),
        Staged::Complete { seq: 40 }
    );
    assert_eq!(held(&db), 1);
}

#[test]
fn a_snapshot_completed_before_a_restart_is_adopted_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    db.apply_batch(&batch(1, member("u-old", OLD))).unwrap();
    let mut st = db.staging().unwrap();
    let c = chunk("s-1", 40, 0, 1, member("u-a", NEW));
    assert_eq!(st.stage(&c, 1).unwrap(), Staged::Complete { seq: 40 });
    drop((st, db)); // the power went before the swap

    let mut db = Db::open(&path, ident()).unwrap();
    assert_eq!(holder(&db, OLD).as_deref(), Some("u-old"));
    let mut st = db.staging().unwrap();
    assert_eq!(st.complete().unwrap(), Some(40));
    // A redelivered chunk of it changes nothing.
    assert_eq!(
        st.stage(&c, 1).unwrap(),
        Staged::Ignored(Skip::Stale { have: 40, got: 40 })
    );
    assert_eq!(
        db.adopt_snapshot(&mut st).unwrap(),
        Adopted::Swapped { seq: 40 }
    );
    assert_eq!(holder(&db, NEW).as_deref(), Some("u-a"));
    assert_eq!(db.replica_seq().unwrap(), 40);
    assert_eq!(db.adopt_snapshot(&mut st).unwrap(), Adopted::Nothing);
    // The next snapshot stages into a fresh file.
    assert_eq!(st.progress().unwrap(), None);
    assert_eq!(st.count("users"), 0);
}

#[test]
fn a_replica_another_process_holds_open_is_replaced_once_it_lets_go() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    db.apply_batch(&batch(1, member("u-old", OLD))).unwrap();
    // `parkgate events` or `report`, running at that moment.
    let cli = Db::open(&path, ident()).unwrap();
    let mut st = db.staging().unwrap();
    let c = chunk("s-1", 40, 0, 1, member("u-a", NEW));
    assert_eq!(st.stage(&c, 1).unwrap(), Staged::Complete { seq: 40 });
    assert_eq!(db.adopt_snapshot(&mut st).unwrap(), Adopted::Busy);
    assert_eq!(
        holder(&db, OLD).as_deref(),
        Some("u-old"),
        "still the old replica"
    );
    assert_eq!(holder(&cli, OLD).as_deref(), Some("u-old"));
    drop(cli);
    assert_eq!(
        db.adopt_snapshot(&mut st).unwrap(),
        Adopted::Swapped { seq: 40 }
    );
    assert_eq!(holder(&db, NEW).as_deref(), Some("u-a"));
    let ok: String = db
        .conn
        .query_row("PRAGMA replica.integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(ok, "ok");
}

#[test]
fn a_corrupt_staging_file_is_started_afresh() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let db = Db::open(&path, ident()).unwrap();
    std::fs::write(
        &db.files().staging,
        b"not a database, a power cut mid-write",
    )
    .unwrap();
    let mut st = db.staging().unwrap();
    assert_eq!(st.progress().unwrap(), None);
    let c = chunk("s-1", 40, 0, 2, member("u-a", NEW));
    assert_eq!(st.stage(&c, 0).unwrap(), Staged::Partial { have: 1, of: 2 });
}
