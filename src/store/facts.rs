//! Reads for the decisions: the [`Facts`] about one credential and the lot's
//! [`Load`] at a time. Each is one read transaction, so a decision never sees
//! half of a replica batch or of a passage.

use chrono::Duration;
use rusqlite::{Connection, OptionalExtension, Row};

use super::codec::{col_enum, col_json, col_ts, col_ts_opt, ms};
use super::presence::{PRESENCE_COLS, read_presence};
use super::{Db, StoreError};
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
        // First: the kept load also knows whose vehicles are inside.
        let load = self.kept_load(&tx, lot, now, early_grace_min, late_grace_min)?;
        let kept = self.kept.borrow();
        let kept = kept.as_ref().expect("kept_load made it");
        let mut facts = Facts {
            load,
            siblings: kept.siblings,
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
            // Sorted here, not by ORDER BY: this SQLite build prepares a
            // statement with ORDER BY again at every run (tens of µs).
            facts.vehicles = tx
                .prepare_cached(&format!(
                    "SELECT {VEHICLE_COLS} FROM vehicles WHERE user_id = ?1"
                ))?
                .query_map([&user_id], read_vehicle)?
                .collect::<Result<_, _>>()?;
            facts
                .vehicles
                .sort_by(|a, b| (!a.primary, &a.vehicle_id).cmp(&(!b.primary, &b.vehicle_id)));
            // Bounded by the (user_id, lot, start_ms) index: only bookings
            // starting within a day of now can be due (grace windows are at
            // most a day).
            facts.reservations = tx
                .prepare_cached(&format!(
                    "SELECT {RESERVATION_COLS} FROM reservations
                     WHERE user_id = ?1 AND lot = ?2 AND start_ms BETWEEN ?3 AND ?4"
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
            facts
                .reservations
                .sort_by(|a, b| (a.start, &a.reservation_id).cmp(&(b.start, &b.reservation_id)));
            // The user's vehicles inside: by the user the check_in named (the
            // kept load's mirror of presence knows them), or by a vehicle now
            // registered to the user.
            let by_vehicle = format!("SELECT {PRESENCE_COLS} FROM presence WHERE vehicle_id = ?1");
            let named = kept.inside_of(&user_id).iter();
            for v in named.chain(facts.vehicles.iter().map(|v| &v.vehicle_id)) {
                if !facts.inside.iter().any(|p| &p.vehicle_id == v) {
                    facts
                        .inside
                        .extend(one(&tx, &by_vehicle, v, read_presence)?);
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
        tx.commit()?;
        Ok(facts)
    }
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
