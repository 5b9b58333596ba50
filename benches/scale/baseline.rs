//! The baseline of the full-scale benches (`scale`, `daemon`): an indexed
//! lookup among `rows` plus an fsync'd one-row insert, in a scratch SQLite
//! file (WAL, `synchronous=FULL`). Timed one sample at a time between the
//! figures it is compared with, so both see the disk in the same state
//! (this machine's fsync time drifts by a factor of several over minutes).

use std::path::Path;
use std::time::Instant;

use rusqlite::{Connection, params};

use super::seed;

pub struct Baseline {
    conn: Connection,
    rows: usize,
}

impl Baseline {
    pub fn new(dir: &Path, rows: usize) -> Baseline {
        let mut conn = Connection::open(dir.join("baseline.db")).unwrap();
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
            .unwrap();
        conn.pragma_update(None, "synchronous", "FULL").unwrap();
        conn.execute_batch(
            "CREATE TABLE cards (card TEXT PRIMARY KEY, user_id TEXT NOT NULL);
             CREATE TABLE log (id INTEGER PRIMARY KEY, card TEXT, at TEXT, json TEXT);",
        )
        .unwrap();
        let tx = conn.transaction().unwrap();
        for i in 0..rows {
            tx.execute(
                "INSERT INTO cards VALUES (?1, ?2)",
                params![seed::uid(i), i as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        Baseline { conn, rows }
    }

    /// One lookup and insert, in µs.
    pub fn sample(&self, i: usize) -> f64 {
        let card = seed::uid(i * 7919 % self.rows);
        let t = Instant::now();
        let user: String = self
            .conn
            .prepare_cached("SELECT user_id FROM cards WHERE card = ?1")
            .unwrap()
            .query_row([&card], |r| r.get(0))
            .unwrap();
        self.conn
            .prepare_cached("INSERT INTO log (card, at, json) VALUES (?1, ?2, ?3)")
            .unwrap()
            .execute(params![card, "2026-11-23T09:00:00+07:00", user])
            .unwrap();
        t.elapsed().as_secs_f64() * 1e6
    }
}
