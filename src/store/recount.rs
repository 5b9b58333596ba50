//! Counting the lot's load in SQL: for a time other than now (availability
//! later today), and as the reference the kept load (`kept.rs`) is checked
//! against.

use rusqlite::{Connection, Row};

use super::codec::{col_enum, ms};
use super::{Db, StoreError};
use crate::domain::availability::{Kind, Load};
use crate::domain::model::Timestamp;

impl Db {
    /// The lot's load at `at`, as known at `now`: every vehicle inside, plus
    /// every booked reservation in `lot` that holds its spot at `at`.
    ///
    /// A reservation holds its spot from `start - early grace` until `end`,
    /// unless its vehicle is inside, a check_in already used it, or it is a
    /// no-show as of `now` (`now > start + late grace`). It counts as the
    /// reservation's class (the spot booked) with its vehicle's ADA/EV flags
    /// (none if the vehicle is unknown).
    ///
    /// At `now` this is the kept load; at another time it is counted, reading
    /// only the bookings that can last until `at` (the replica keeps the
    /// longest booking's length), so a time far ahead costs no more.
    pub fn load_at(
        &self,
        lot: &str,
        at: Timestamp,
        now: Timestamp,
        early_grace_min: u32,
        late_grace_min: u32,
    ) -> Result<Load, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let load = if at == now {
            self.kept_load(&tx, lot, now, early_grace_min, late_grace_min)?
        } else {
            let span: i64 = tx
                .prepare_cached("SELECT value FROM replica_meta WHERE key = 'reservation_span_ms'")?
                .query_row([], |r| r.get(0))?;
            let since = ms(&at).saturating_sub(span);
            let grace = (early_grace_min, late_grace_min);
            recount(&tx, lot, at, now, grace, since)?
        };
        tx.commit()?;
        Ok(load)
    }

    /// [`Db::load_at`] counted from scratch, every booking due considered:
    /// what the kept load must always equal (tests, benchmarks).
    pub fn recount(
        &self,
        lot: &str,
        at: Timestamp,
        now: Timestamp,
        early_grace_min: u32,
        late_grace_min: u32,
    ) -> Result<Load, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let grace = (early_grace_min, late_grace_min);
        let load = recount(&tx, lot, at, now, grace, i64::MIN)?;
        tx.commit()?;
        Ok(load)
    }
}

/// Counts the load; bookings starting before `since` are known not to
/// last until `at` and are not read.
fn recount(
    conn: &Connection,
    lot: &str,
    at: Timestamp,
    now: Timestamp,
    (early_grace_min, late_grace_min): (u32, u32),
    since: i64,
) -> Result<Load, StoreError> {
    let mut load = Load::default();
    let mut add = |r: &Row<'_>| -> rusqlite::Result<()> {
        let kind = Kind {
            class: col_enum(r, 0)?,
            ada: r.get(1)?,
            ev: r.get(2)?,
        };
        load.add(kind, r.get(3)?);
        Ok(())
    };
    let mut inside = conn
        .prepare_cached("SELECT class, ada, ev, COUNT(*) FROM presence GROUP BY class, ada, ev")?;
    let mut rows = inside.query([])?;
    while let Some(r) = rows.next()? {
        add(r)?;
    }
    // Bounded by the (lot, start_ms) index: a reservation can only hold a
    // spot if it starts between `now - late` (else a no-show) and
    // `at + early` (else not due yet), so history is never scanned.
    let mut held = conn.prepare_cached(
        "SELECT r.class, COALESCE(v.ada, 0), COALESCE(v.ev, 0), COUNT(*)
         FROM reservations r LEFT JOIN vehicles v ON v.vehicle_id = r.vehicle_id
         WHERE r.lot = ?1 AND r.start_ms BETWEEN MAX(?5 - ?4, ?6) AND ?2 + ?3
           AND r.end_ms > ?2 AND r.status = 'booked'
           AND NOT EXISTS (SELECT 1 FROM presence p WHERE p.vehicle_id = r.vehicle_id)
           AND NOT EXISTS (SELECT 1 FROM used_reservations u
                           WHERE u.reservation_id = r.reservation_id)
         GROUP BY 1, 2, 3",
    )?;
    let minute = 60_000_i64;
    let mut rows = held.query(rusqlite::params![
        lot,
        ms(&at),
        i64::from(early_grace_min) * minute,
        i64::from(late_grace_min) * minute,
        ms(&now),
        since,
    ])?;
    while let Some(r) = rows.next()? {
        add(r)?;
    }
    // What the gates' counters say is inside beyond the passages seen here
    // (a sibling's events lost, its retained counters not): counted as
    // vehicles of the class with no ADA or EV need.
    let own = super::counters::own_counters_sql();
    let mut counted = conn.prepare_cached(&format!(
        "SELECT c.class, MAX(c.n - COALESCE(p.n, 0), 0) FROM
           (SELECT class, SUM(CASE direction WHEN 'entered' THEN n ELSE -n END) AS n
            FROM ({own} UNION ALL SELECT direction, class, n FROM gate_counters)
            GROUP BY class) c
         LEFT JOIN (SELECT class, COUNT(*) AS n FROM presence GROUP BY class) p
           ON p.class = c.class"
    ))?;
    let mut rows = counted.query([])?;
    while let Some(r) = rows.next()? {
        let excess: i64 = r.get(1)?;
        if excess > 0 {
            let kind = Kind {
                class: col_enum(r, 0)?,
                ada: false,
                ev: false,
            };
            load.add(kind, u32::try_from(excess).unwrap_or(u32::MAX));
        }
    }
    Ok(load)
}
