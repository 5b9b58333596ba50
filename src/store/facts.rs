//! Reads for the decisions: the [`Facts`] about one credential and the lot's
//! [`Load`] at a time. Each is one read transaction, so a decision never sees
//! half of a replica batch or of a passage.

use chrono::Duration;
use rusqlite::{Connection, OptionalExtension, Row};

use super::codec::{col_enum, col_json, col_ts, col_ts_opt, ms};
use super::presence::{PRESENCE_COLS, read_presence};
use super::{Db, StoreError};
use crate::domain::availability::{Kind, Load};
use crate::domain::model::{Card, Plan, Reservation, Timestamp, User, Vehicle};
use crate::domain::policy::Facts;

/// How far around now a user's reservations are fetched for the policy.
const RESERVATION_HORIZON: Duration = Duration::days(1);

impl Db {
    /// Everything the policy needs about `credential` (a card UID, any case)
    /// at `now` at a lane of `lot`. An unknown card gives `card: None` and
    /// empty user data; `load` is filled either way.
    pub fn facts(
        &self,
        credential: &str,
        lot: &str,
        now: Timestamp,
        early_grace_min: u32,
        late_grace_min: u32,
    ) -> Result<Facts, StoreError> {
        // Deferred and only reading: in WAL mode this is one consistent
        // snapshot that never blocks the writer.
        let tx = self.conn.unchecked_transaction()?;
        let credential = credential.trim().to_ascii_uppercase();
        let mut facts = Facts {
            card: one(
                &tx,
                &format!("SELECT {CARD_COLS} FROM cards WHERE card = ?1"),
                &credential,
                read_card,
            )?,
            credential,
            ..Facts::default()
        };
        if let Some(user_id) = facts.card.as_ref().map(|c| c.user_id.clone()) {
            facts.user = one(
                &tx,
                &format!("SELECT {USER_COLS} FROM users WHERE user_id = ?1"),
                &user_id,
                read_user,
            )?;
            facts.plan = one(
                &tx,
                &format!("SELECT {PLAN_COLS} FROM plans WHERE user_id = ?1"),
                &user_id,
                read_plan,
            )?;
            facts.vehicles = tx
                .prepare_cached(&format!(
                    "SELECT {VEHICLE_COLS} FROM vehicles WHERE user_id = ?1
                     ORDER BY is_primary DESC, vehicle_id"
                ))?
                .query_map([&user_id], read_vehicle)?
                .collect::<Result<_, _>>()?;
            // Bounded by the (user_id, lot, start_ms) index: only bookings
            // starting within a day of now can be due (grace windows are at
            // most a day).
            facts.reservations = tx
                .prepare_cached(&format!(
                    "SELECT {RESERVATION_COLS} FROM reservations
                     WHERE user_id = ?1 AND lot = ?2 AND start_ms BETWEEN ?3 AND ?4
                     ORDER BY start_ms, reservation_id"
                ))?
                .query_map(
                    rusqlite::params![
                        user_id,
                        lot,
                        ms(&(now - RESERVATION_HORIZON)),
                        ms(&(now + RESERVATION_HORIZON))
                    ],
                    read_reservation,
                )?
                .collect::<Result<_, _>>()?;
            // The user's vehicles inside: by the user the check_in named, or
            // by a vehicle now registered to the user. (Two indexed reads:
            // cheaper than one OR or UNION, which sorts in a temp b-tree.)
            let by_user = format!("SELECT {PRESENCE_COLS} FROM presence WHERE user_id = ?1");
            facts.inside = tx
                .prepare_cached(&by_user)?
                .query_map([&user_id], read_presence)?
                .collect::<Result<_, _>>()?;
            let by_vehicle = format!("SELECT {PRESENCE_COLS} FROM presence WHERE vehicle_id = ?1");
            for v in &facts.vehicles {
                if !facts.inside.iter().any(|p| p.vehicle_id == v.vehicle_id) {
                    facts
                        .inside
                        .extend(one(&tx, &by_vehicle, &v.vehicle_id, read_presence)?);
                }
            }
            facts
                .inside
                .sort_by(|a, b| (a.since, &a.vehicle_id).cmp(&(b.since, &b.vehicle_id)));
            // The booking a vehicle inside entered on prices its overstay at
            // the exit, however long ago it started.
            let by_id =
                format!("SELECT {RESERVATION_COLS} FROM reservations WHERE reservation_id = ?1");
            for id in facts
                .inside
                .iter()
                .filter_map(|p| p.reservation_id.as_ref())
            {
                if !facts.reservations.iter().any(|r| &r.reservation_id == id) {
                    facts
                        .reservations
                        .extend(one(&tx, &by_id, id, read_reservation)?);
                }
            }
        }
        facts.load = self.load_now(&tx, lot, now, early_grace_min, late_grace_min)?;
        facts.siblings = tx
            .prepare_cached("SELECT COUNT(DISTINCT gate) FROM gate_counters")?
            .query_row([], |r| r.get(0))?;
        tx.commit()?;
        Ok(facts)
    }

    /// The lot's load at `at`, as known at `now`: every vehicle inside, plus
    /// every booked reservation in `lot` that holds its spot at `at`.
    ///
    /// A reservation holds its spot from `start - early grace` until `end`,
    /// unless its vehicle is inside, a check_in already used it, or it is a
    /// no-show as of `now` (`now > start + late grace`). It counts as the
    /// reservation's class (the spot booked) with its vehicle's ADA/EV flags
    /// (none if the vehicle is unknown).
    pub fn load_at(
        &self,
        lot: &str,
        at: Timestamp,
        now: Timestamp,
        early_grace_min: u32,
        late_grace_min: u32,
    ) -> Result<Load, StoreError> {
        let tx = self.conn.unchecked_transaction()?;
        let load = load(&tx, lot, at, now, early_grace_min, late_grace_min)?;
        tx.commit()?;
        Ok(load)
    }
}

pub(super) fn load(
    conn: &Connection,
    lot: &str,
    at: Timestamp,
    now: Timestamp,
    early_grace_min: u32,
    late_grace_min: u32,
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
         WHERE r.lot = ?1 AND r.start_ms BETWEEN ?5 - ?4 AND ?2 + ?3
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
    ])?;
    while let Some(r) = rows.next()? {
        add(r)?;
    }
    // What the gates' counters say is inside beyond the passages seen here
    // (a sibling's events lost, its retained counters not): counted as
    // vehicles of the class with no ADA or EV need.
    let mut counted = conn.prepare_cached(
        "SELECT c.class, MAX(c.n - COALESCE(p.n, 0), 0) FROM
           (SELECT class, SUM(CASE direction WHEN 'entered' THEN n ELSE -n END) AS n
            FROM (SELECT direction, class, n FROM counters
                  UNION ALL SELECT direction, class, n FROM gate_counters)
            GROUP BY class) c
         LEFT JOIN (SELECT class, COUNT(*) AS n FROM presence GROUP BY class) p
           ON p.class = c.class",
    )?;
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

/// At most one row by key.
fn one<T>(
    conn: &Connection,
    sql: &str,
    key: &str,
    read: fn(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    Ok(conn
        .prepare_cached(sql)?
        .query_row([key], read)
        .optional()?)
}

const USER_COLS: &str = "user_id, name, company, status";
fn read_user(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        user_id: r.get(0)?,
        name: r.get(1)?,
        company: r.get(2)?,
        status: col_enum(r, 3)?,
    })
}

const CARD_COLS: &str = "card, user_id, status, valid_from, valid_until";
fn read_card(r: &Row<'_>) -> rusqlite::Result<Card> {
    Ok(Card {
        card: r.get(0)?,
        user_id: r.get(1)?,
        status: col_enum(r, 2)?,
        valid_from: col_ts_opt(r, 3)?,
        valid_until: col_ts_opt(r, 4)?,
    })
}

const VEHICLE_COLS: &str = "vehicle_id, user_id, plate, class, ada, ev, is_primary";
fn read_vehicle(r: &Row<'_>) -> rusqlite::Result<Vehicle> {
    Ok(Vehicle {
        vehicle_id: r.get(0)?,
        user_id: r.get(1)?,
        plate: r.get(2)?,
        class: col_enum(r, 3)?,
        ada: r.get(4)?,
        ev: r.get(5)?,
        primary: r.get(6)?,
    })
}

const PLAN_COLS: &str = "user_id, kind, lots, valid_until, status";
fn read_plan(r: &Row<'_>) -> rusqlite::Result<Plan> {
    Ok(Plan {
        user_id: r.get(0)?,
        kind: col_enum(r, 1)?,
        lots: col_json(r, 2)?,
        valid_until: col_ts_opt(r, 3)?,
        status: col_enum(r, 4)?,
    })
}

const RESERVATION_COLS: &str =
    "reservation_id, user_id, vehicle_id, lot, spot_id, class, start_at, end_at, status";
fn read_reservation(r: &Row<'_>) -> rusqlite::Result<Reservation> {
    Ok(Reservation {
        reservation_id: r.get(0)?,
        user_id: r.get(1)?,
        vehicle_id: r.get(2)?,
        lot: r.get(3)?,
        spot_id: r.get(4)?,
        class: col_enum(r, 5)?,
        start: col_ts(r, 6)?,
        end: col_ts(r, 7)?,
        status: col_enum(r, 8)?,
    })
}
