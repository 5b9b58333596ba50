//! Keeping [`Kept`] in step with the database: made on first use, brought
//! up to date after each of this store's writes by re-reading only the rows
//! the write touched, read again whole if another process wrote.

use std::collections::HashSet;
use std::time::Instant;

use rusqlite::{Connection, OptionalExtension, Row, params};

use super::{AHEAD_MS, For, Held, Kept};
use crate::domain::availability::{Kind, Load};
use crate::domain::contract::{self, Op, Record};
use crate::domain::model::{ReservationStatus, Timestamp, VehicleClass};
use crate::store::codec::{col_enum, ms};
use crate::store::{Db, StoreError};

/// Set up on every connection (`Db::init`): writes to the tables the load
/// reads from note the key they touched, in the writer's transaction.
pub(in crate::store) const TRIGGERS: &str = r#"
    PRAGMA temp_store = MEMORY;
    -- No key: a conflict clause in a trigger gives way to the writing
    -- statement's (an upsert's), so repeats are kept and read DISTINCT.
    CREATE TEMP TABLE IF NOT EXISTS load_dirty (
        what TEXT NOT NULL,
        key  TEXT NOT NULL
    );
    CREATE TEMP TRIGGER IF NOT EXISTS load_presence_ins AFTER INSERT ON main.presence
    BEGIN INSERT INTO load_dirty VALUES ('inside', new.vehicle_id); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_presence_del AFTER DELETE ON main.presence
    BEGIN INSERT INTO load_dirty VALUES ('inside', old.vehicle_id); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_presence_upd AFTER UPDATE ON main.presence
    BEGIN
        INSERT INTO load_dirty VALUES ('inside', old.vehicle_id);
        INSERT INTO load_dirty VALUES ('inside', new.vehicle_id);
    END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_used_ins AFTER INSERT ON main.used_reservations
    BEGIN INSERT INTO load_dirty VALUES ('used', new.reservation_id); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_used_del AFTER DELETE ON main.used_reservations
    BEGIN INSERT INTO load_dirty VALUES ('used', old.reservation_id); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_used_upd AFTER UPDATE ON main.used_reservations
    BEGIN
        INSERT INTO load_dirty VALUES ('used', old.reservation_id);
        INSERT INTO load_dirty VALUES ('used', new.reservation_id);
    END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_counters_ins AFTER INSERT ON main.counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_counters_upd AFTER UPDATE ON main.counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_counters_del AFTER DELETE ON main.counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_gate_counters_ins AFTER INSERT ON main.gate_counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_gate_counters_upd AFTER UPDATE ON main.gate_counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
    CREATE TEMP TRIGGER IF NOT EXISTS load_gate_counters_del AFTER DELETE ON main.gate_counters
    BEGIN INSERT INTO load_dirty VALUES ('counters', ''); END;
"#;

/// For a transaction that moves counts between this gate's counters table
/// and the journal's tail without changing any sum (the fold,
/// `counters.rs`): the kept load is in step already, and is spared reading
/// every counter again after the commit.
pub(in crate::store) fn sums_unchanged(conn: &Connection) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM temp.load_dirty WHERE what = 'counters'")?
        .execute([])?;
    Ok(())
}

/// What a replica write touched, which the triggers do not see (the
/// replica file is swapped whole by a snapshot, so its tables carry none).
pub(in crate::store) enum Touched<'a> {
    /// Nothing of the replica (a passage, a sibling's counters, pruning).
    Nothing,
    /// A change batch's ops.
    Ops(&'a [Op]),
    /// All of it (a snapshot): the kept load is made again.
    All,
}

impl Db {
    /// The lot's load at `now` for a decision, from the kept load: made if
    /// there is none (or it is for other grace windows, or another process
    /// wrote), its window extended to cover `now`.
    pub(in crate::store) fn kept_load(
        &self,
        conn: &Connection,
        lot: &str,
        now: Timestamp,
        early_min: u32,
        late_min: u32,
    ) -> Result<Load, StoreError> {
        let to = For {
            lot: lot.to_owned(),
            early: i64::from(early_min) * 60_000,
            late: i64::from(late_min) * 60_000,
        };
        let now = ms(&now);
        let mut kept = self.kept.borrow_mut();
        let versions = versions(conn)?;
        let current = matches!(&*kept, Some(k) if k.to == to && k.versions == versions);
        if !current {
            *kept = None;
            *kept = Some(build(conn, to, now, versions)?);
        }
        let k = kept.as_mut().expect("made above");
        cover(conn, k, now)?;
        *self.last_decision.borrow_mut() = Some((now, Instant::now()));
        Ok(k.load(now))
    }

    /// Brings the kept load in step with a write this store just committed.
    /// If that fails the kept load is dropped, and made again when next
    /// needed: never wrong, at worst slower once.
    pub(in crate::store) fn written(&mut self, touched: Touched<'_>) {
        if !matches!(touched, Touched::Nothing) {
            self.replica_written = true;
        }
        if let Err(e) = self.sync(touched) {
            tracing::warn!(error = %e, "the kept load is read again after a failed update");
            *self.kept.get_mut() = None;
        }
    }

    fn sync(&mut self, touched: Touched<'_>) -> Result<(), StoreError> {
        let conn = &self.conn;
        // Deduplicated here: DISTINCT would have SQLite build a temporary
        // index at every run, on the path to the barrier.
        let mut dirty: Vec<(String, String)> = conn
            .prepare_cached("SELECT what, key FROM temp.load_dirty")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<Result<_, _>>()?;
        dirty.sort_unstable();
        dirty.dedup();
        if !dirty.is_empty() {
            conn.prepare_cached("DELETE FROM temp.load_dirty")?
                .execute([])?;
        }
        if matches!(touched, Touched::All) {
            *self.kept.get_mut() = None;
        }
        let Some(k) = self.kept.get_mut() else {
            return Ok(());
        };
        for (what, key) in dirty {
            match what.as_str() {
                "inside" => {
                    let now = inside_kind(conn, &key)?;
                    k.set_inside(&key, now.as_ref().map(|(kind, user)| (*kind, &**user)));
                }
                "used" => {
                    if k.window.get(&key).is_some() {
                        k.window.set_used(&key, is_used(conn, &key)?);
                    }
                }
                _ => (k.counters, k.siblings) = counters(conn)?,
            }
        }
        if let Touched::Ops(ops) = touched {
            replica_ops(conn, k, ops)?;
        }
        Ok(())
    }

    /// While the store thread is idle (`now`: the monotonic clock): reads
    /// ahead the bookings the next decisions will need, forgets those past,
    /// and reads everything again if another process wrote, so that a
    /// decision seldom waits for either.
    pub fn tick(&self, now: Instant) -> Result<(), StoreError> {
        let Some((at, when)) = *self.last_decision.borrow() else {
            return Ok(());
        };
        let mut kept = self.kept.borrow_mut();
        let Some(k) = kept.as_mut() else {
            return Ok(());
        };
        let elapsed = i64::try_from(now.saturating_duration_since(when).as_millis()).unwrap_or(0);
        let wall = at + elapsed;
        let versions = versions(&self.conn)?;
        if versions != k.versions {
            let to = k.to.clone();
            *kept = None;
            *kept = Some(build(&self.conn, to, wall, versions)?);
            return Ok(());
        }
        if k.window.hi < wall + k.to.early + AHEAD_MS / 2 {
            cover(&self.conn, k, wall + AHEAD_MS / 2)?;
        }
        k.window.trim(at - k.to.late);
        Ok(())
    }
}

/// SQLite's `data_version` of both files: it changes when another
/// connection commits to that file, never for this one's own commits.
fn versions(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let main = conn
        .prepare_cached("PRAGMA main.data_version")?
        .query_row([], |r| r.get(0))?;
    let replica = conn
        .prepare_cached("PRAGMA replica.data_version")?
        .query_row([], |r| r.get(0))?;
    Ok((main, replica))
}

/// Reads the whole kept load for `to` around `now` (ms).
fn build(conn: &Connection, to: For, now: i64, versions: (i64, i64)) -> Result<Kept, StoreError> {
    conn.prepare_cached("DELETE FROM temp.load_dirty")?
        .execute([])?;
    let (lo, hi) = (now - to.late, now + to.early + AHEAD_MS);
    let mut k = Kept::new(to, (lo, lo - 1), versions);
    let mut inside =
        conn.prepare_cached("SELECT vehicle_id, class, ada, ev, user_id FROM presence")?;
    let rows = inside.query_map([], |r| {
        Ok((r.get::<_, String>(0)?, kind(r, 1)?, r.get::<_, String>(4)?))
    })?;
    for row in rows {
        let (vehicle, kind, user) = row?;
        k.set_inside(&vehicle, Some((kind, &user)));
    }
    (k.counters, k.siblings) = counters(conn)?;
    extend(conn, &mut k, lo, hi)?;
    Ok(k)
}

/// Extends the window to cover `[now - late, now + early]`, reading ahead.
fn cover(conn: &Connection, k: &mut Kept, now: i64) -> Result<(), StoreError> {
    let (from, to) = (now - k.to.late, now + k.to.early);
    if from < k.window.lo {
        extend(conn, k, from, k.window.lo - 1)?;
    }
    if to > k.window.hi {
        extend(conn, k, k.window.hi + 1, to + AHEAD_MS)?;
    }
    if from > k.window.lo + AHEAD_MS {
        k.window.trim(from);
    }
    Ok(())
}

/// Reads the reservations starting in `[lo, hi]`, just outside the window,
/// into it. All read before any is kept: a failure changes nothing.
fn extend(conn: &Connection, k: &mut Kept, lo: i64, hi: i64) -> Result<(), StoreError> {
    let sql =
        format!("{HELD} WHERE r.lot = ?1 AND r.start_ms BETWEEN ?2 AND ?3 AND r.status = 'booked'");
    let rows: Vec<Held> = conn
        .prepare_cached(&sql)?
        .query_map(params![k.to.lot, lo, hi], held)?
        .collect::<Result<_, _>>()?;
    for mut h in rows {
        h.inside = k.is_inside(&h.vehicle);
        k.window.put(h);
    }
    k.window.lo = k.window.lo.min(lo);
    k.window.hi = k.window.hi.max(hi);
    Ok(())
}

/// Applies a change batch's reservation and vehicle ops to the window,
/// reading back only what may be in it.
fn replica_ops(conn: &Connection, k: &mut Kept, ops: &[Op]) -> Result<(), StoreError> {
    let mut vehicles = HashSet::new();
    for op in ops {
        match op {
            Op::Upsert(Record::Reservation(r)) => {
                let start = ms(&r.start);
                let may_hold = r.lot == k.to.lot
                    && r.status == ReservationStatus::Booked
                    && (k.window.lo..=k.window.hi).contains(&start);
                k.window.remove(&r.reservation_id);
                if may_hold {
                    reread(conn, k, &r.reservation_id)?;
                }
            }
            Op::Delete {
                kind: contract::Kind::Reservation,
                key,
            } => {
                k.window.remove(key);
            }
            Op::Upsert(Record::Vehicle(v)) => {
                vehicles.insert(v.vehicle_id.as_str());
            }
            Op::Delete {
                kind: contract::Kind::Vehicle,
                key,
            } => {
                vehicles.insert(key.as_str());
            }
            _ => {}
        }
    }
    if vehicles.is_empty() {
        return Ok(());
    }
    for vehicle in vehicles {
        for id in k.window.of_vehicle(vehicle) {
            reread(conn, k, &id)?;
        }
    }
    Ok(())
}

/// Reads one reservation again into the window (or out of it).
fn reread(conn: &Connection, k: &mut Kept, id: &str) -> Result<(), StoreError> {
    let sql = format!("{HELD} WHERE r.reservation_id = ?1 AND r.lot = ?2 AND r.status = 'booked'");
    let row = conn
        .prepare_cached(&sql)?
        .query_row(params![id, k.to.lot], held)
        .optional()?;
    k.window.remove(id);
    if let Some(mut h) = row
        && (k.window.lo..=k.window.hi).contains(&h.start)
    {
        h.inside = k.is_inside(&h.vehicle);
        k.window.put(h);
    }
    Ok(())
}

/// A reservation with its vehicle's flags and whether a check_in used it.
const HELD: &str = "SELECT r.reservation_id, r.start_ms, r.end_ms, r.vehicle_id, r.class,
        COALESCE(v.ada, 0), COALESCE(v.ev, 0),
        EXISTS (SELECT 1 FROM used_reservations u WHERE u.reservation_id = r.reservation_id)
    FROM reservations r LEFT JOIN vehicles v ON v.vehicle_id = r.vehicle_id";

fn held(r: &Row<'_>) -> rusqlite::Result<Held> {
    Ok(Held {
        id: r.get::<_, String>(0)?.into(),
        start: r.get(1)?,
        end: r.get(2)?,
        vehicle: r.get::<_, String>(3)?.into(),
        kind: kind(r, 4)?,
        used: r.get(7)?,
        inside: false,
    })
}

/// A [`Kind`] from three columns starting at `at`: class, ada, ev.
fn kind(r: &Row<'_>, at: usize) -> rusqlite::Result<Kind> {
    Ok(Kind {
        class: col_enum(r, at)?,
        ada: r.get(at + 1)?,
        ev: r.get(at + 2)?,
    })
}

/// How `vehicle` is counted inside, and for which user; none if it is not.
fn inside_kind(conn: &Connection, vehicle: &str) -> Result<Option<(Kind, String)>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT class, ada, ev, user_id FROM presence WHERE vehicle_id = ?1")?
        .query_row([vehicle], |r| Ok((kind(r, 0)?, r.get(3)?)))
        .optional()?)
}

fn is_used(conn: &Connection, reservation: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT 1 FROM used_reservations WHERE reservation_id = ?1")?
        .exists([reservation])?)
}

/// Entered minus exited per class, over this gate's and its siblings'
/// counters, and how many siblings sent theirs: a few dozen rows, summed
/// here (a GROUP BY or DISTINCT would build a temporary index at every run,
/// like the DISTINCT `sync` avoids).
type Counters = (std::collections::BTreeMap<VehicleClass, i64>, u32);
fn counters(conn: &Connection) -> Result<Counters, StoreError> {
    let own = crate::store::counters::own_counters_sql();
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT NULL, direction, class, n FROM ({own})
         UNION ALL SELECT gate, direction, class, n FROM gate_counters"
    ))?;
    let mut sums = std::collections::BTreeMap::new();
    let mut gates = std::collections::BTreeSet::new();
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let (gate, direction, n): (Option<String>, String, i64) = (r.get(0)?, r.get(1)?, r.get(3)?);
        let signed = if direction == "entered" { n } else { -n };
        *sums.entry(col_enum(r, 2)?).or_insert(0) += signed;
        gates.extend(gate);
    }
    Ok((sums, u32::try_from(gates.len()).unwrap_or(u32::MAX)))
}
