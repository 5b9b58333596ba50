//! The checkpoint thread's growing of the main file's WAL (`checkpoint.rs`).

use std::path::Path;
use std::time::Duration;

use rusqlite::Connection;

use super::super::checkpoint::{GROWN_PAGES, grow_wal, wal_size};
use super::*;
use crate::domain::contract::Clock;

/// A database in WAL mode at `path` that never checkpoints on its own, so
/// its commits stay in the WAL, as on a power cut before a checkpoint.
fn wal_db(path: &Path) -> Connection {
    let conn = Connection::open(path).unwrap();
    conn.pragma_update(None, "journal_mode", "WAL").unwrap();
    conn.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    conn.pragma_update(None, "synchronous", "FULL").unwrap();
    conn.execute_batch("CREATE TABLE t (n INTEGER PRIMARY KEY, pad TEXT)")
        .unwrap();
    conn
}

fn insert(conn: &Connection, from: i64, to: i64) {
    for n in from..to {
        conn.execute("INSERT INTO t VALUES (?1, printf('%.500c', 'x'))", [n])
            .unwrap();
    }
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

#[test]
fn the_wal_grows_a_step_at_a_time_up_to_its_size_and_no_further() {
    let dir = tempfile::tempdir().unwrap();
    let conn = wal_db(&dir.path().join("a.db"));
    insert(&conn, 0, 10);
    let wal = dir.path().join("a.db-wal");
    let start = len(&wal);
    let step = 100_000;
    let want = start + 2 * step + 1234;
    assert_eq!(grow_wal(&conn, &wal, want, step).unwrap(), start + step);
    assert_eq!(len(&wal), start + step);
    assert_eq!(grow_wal(&conn, &wal, want, step).unwrap(), start + 2 * step);
    assert_eq!(grow_wal(&conn, &wal, want, step).unwrap(), want);
    assert_eq!(grow_wal(&conn, &wal, want, step).unwrap(), want);
    assert_eq!(len(&wal), want);
}

/// What a power cut leaves (the files as they are, the WAL never
/// checkpointed) opens with every commit, those before the zeros and
/// those written over them, and nothing else.
#[test]
fn a_grown_wal_keeps_every_commit_through_a_power_cut() {
    let dir = tempfile::tempdir().unwrap();
    let conn = wal_db(&dir.path().join("a.db"));
    insert(&conn, 0, 50);
    let wal = dir.path().join("a.db-wal");
    let want = len(&wal) + 4 * 1024 * 1024;
    assert_eq!(grow_wal(&conn, &wal, want, want).unwrap(), want);
    insert(&conn, 50, 120);
    assert_eq!(
        len(&wal),
        want,
        "the later commits were written over the zeros"
    );

    let cut = tempfile::tempdir().unwrap();
    for name in ["a.db", "a.db-wal"] {
        std::fs::copy(dir.path().join(name), cut.path().join(name)).unwrap();
    }
    let after = Connection::open(cut.path().join("a.db")).unwrap();
    let (rows, last): (i64, i64) = after
        .query_row("SELECT count(*), max(n) FROM t", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((rows, last), (120, 119));
    let check: String = after
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
}

/// Zeros appended while another connection writes could be overwritten
/// by, or overwrite, its frames: growing waits for SQLite's write lock.
#[test]
fn growing_waits_for_the_write_lock() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.db");
    let writer = wal_db(&path);
    insert(&writer, 0, 10);
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    let other = Connection::open(&path).unwrap();
    other.busy_timeout(Duration::ZERO).unwrap();
    let wal = dir.path().join("a.db-wal");
    let before = len(&wal);
    assert!(grow_wal(&other, &wal, before + 1_000_000, 1_000_000).is_err());
    assert_eq!(len(&wal), before);
    writer.execute_batch("COMMIT").unwrap();
    assert_eq!(
        grow_wal(&other, &wal, before + 1_000_000, 1_000_000).unwrap(),
        before + 1_000_000
    );
    // Grown already: another process's checkpoint thread does not even
    // take the lock (the daemon's commits would wait for it).
    writer.execute_batch("BEGIN IMMEDIATE").unwrap();
    assert_eq!(
        grow_wal(&other, &wal, before + 1_000_000, 1_000_000).unwrap(),
        before + 1_000_000
    );
    writer.execute_batch("COMMIT").unwrap();
}

/// The store's own thread grows the WAL soon after the store opens, and
/// the store goes on recording over it.
#[tokio::test]
async fn the_checkpoint_thread_grows_the_stores_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gate.db");
    let mut db = Db::open(&path, ident()).unwrap();
    db.record_bodies(vec![alert()], now(), Clock::Synced)
        .unwrap();
    let wal = dir.path().join("gate.db-wal");
    let want = wal_size(GROWN_PAGES, 4096);
    let mut rx = db.wal().expect("a file store has a checkpoint thread");
    // Reports come every 100 ms, each after that period's step; the guard
    // only keeps a broken thread from hanging the test.
    tokio::time::timeout(Duration::from_secs(60), async {
        while len(&wal) < want {
            rx.changed().await.unwrap();
        }
    })
    .await
    .expect("the WAL grown");
    assert_eq!(len(&wal), want);
    db.record_bodies(vec![alert(); 3], now(), Clock::Synced)
        .unwrap();
    assert_eq!(count(&db, "events"), 4);
}
