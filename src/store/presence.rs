//! Which vehicles are inside the lot, kept from the passage events of every
//! gate of the lot: `check_in` puts a vehicle in, `check_out` takes it out,
//! `void` undoes either.
//!
//! The same code applies this gate's own events (in [`Db::record`]'s
//! transaction) and its siblings' (through [`Db::apply_remote`]). Each event
//! is applied once, by `event_id`, so redelivered or self-echoed events change
//! nothing. What an event replaced is kept (`applied_events.before`) so that a
//! void can put it back.

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::codec::{col_enum, col_ts, enum_text, exec, ms, ts_text};
use super::counters::{ENTERED, EXITED, bump};
use super::{Db, StoreError};
use crate::domain::contract::{Event, EventBody, Passage};
use crate::domain::model::{PlanKind, Presence, VehicleClass};

impl Db {
    /// Applies a sibling gate's `check_in`, `check_out` or `void` to presence,
    /// once per `event_id`. Returns whether it changed anything: `false` for
    /// an event seen before (this gate's own, echoed by the broker, included),
    /// for other types, and for events of another site or lot.
    pub fn apply_remote(&mut self, event: &Event) -> Result<bool, StoreError> {
        if event.site != self.ident.site || event.lot != self.ident.lot {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let applied = apply_effect(&tx, event, false)?;
        tx.commit()?;
        self.written(super::kept::Touched::Nothing);
        Ok(!matches!(applied, Applied::Seen))
    }

    /// Every vehicle believed inside the lot, longest there first.
    pub fn presence(&self) -> Result<Vec<Presence>, StoreError> {
        let sql = format!("SELECT {PRESENCE_COLS} FROM presence ORDER BY since_ms, vehicle_id");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], read_presence)?;
        Ok(rows.collect::<Result<_, _>>()?)
    }
}

/// The columns [`read_presence`] expects, in order.
pub(super) const PRESENCE_COLS: &str =
    "vehicle_id, user_id, class, ada, ev, since, reservation_id, spot_id, plan, event_id";

/// A presence row selected with [`PRESENCE_COLS`].
pub(super) fn read_presence(r: &rusqlite::Row<'_>) -> rusqlite::Result<Presence> {
    Ok(Presence {
        vehicle_id: r.get(0)?,
        user_id: r.get(1)?,
        class: col_enum(r, 2)?,
        ada: r.get(3)?,
        ev: r.get(4)?,
        since: col_ts(r, 5)?,
        reservation_id: r.get(6)?,
        spot_id: r.get(7)?,
        plan: col_enum(r, 8)?,
        event_id: r.get(9)?,
    })
}

/// What [`apply_effect`] did with an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Applied {
    /// Nothing: seen before, or not a passage or void.
    Seen,
    /// Applied, and counts in no counters row (a sibling's, a void).
    Fresh,
    /// This gate's own passage, counted from the journal's tail in
    /// `direction` (`counters.rs`): no counters row was written.
    Counted(&'static str, VehicleClass),
}

/// Applies a passage event's effect, unless this `event_id` was applied
/// before. `own`: recorded by this gate, so it counts in this gate's
/// counters: its applied record says so (`own`, `class`), which is how the
/// journal's tail counts it (`counters.rs`).
pub(super) fn apply_effect(
    conn: &Connection,
    event: &Event,
    own: bool,
) -> Result<Applied, StoreError> {
    let passage = match &event.body {
        EventBody::CheckIn(p) => Some(p),
        EventBody::CheckOut(c) => Some(&c.passage),
        EventBody::Void { .. } => None,
        EventBody::Denied(_) | EventBody::Alert(_) => return Ok(Applied::Seen),
    };
    let vehicle = passage.and_then(|p| p.vehicle_id.clone());
    let before = match &vehicle {
        Some(v) => presence_of(conn, v)?,
        None => None,
    };
    // The class counted: the passage's, else (an unidentified exit) the one
    // the vehicle entered as.
    let class = passage
        .and_then(|p| p.vehicle_class)
        .or(before.as_ref().map(|b| b.class));
    // One statement: the record is written once, with what a void of it
    // needs to undo it.
    let fresh = exec(
        conn,
        "INSERT OR IGNORE INTO applied_events
             (event_id, gate, type, own, vehicle_id, at_ms, class, before)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            event.event_id,
            event.gate,
            event.type_name(),
            own,
            vehicle,
            ms(&event.at),
            class.map(VehicleClass::as_str),
            before.as_ref().map(serde_json::to_string).transpose()?,
        ],
    )?;
    if fresh == 0 {
        return Ok(Applied::Seen);
    }
    // Its void came first: the passage is recorded as voided and has no effect.
    let voided_already = exec(
        conn,
        "DELETE FROM pending_voids WHERE related_event_id = ?1",
        [&event.event_id],
    )?;
    if voided_already > 0 {
        exec(
            conn,
            "UPDATE applied_events SET voided = 1, class = NULL, before = NULL
             WHERE event_id = ?1",
            [&event.event_id],
        )?;
        return Ok(Applied::Fresh);
    }
    let counted = |direction| match (own, class) {
        (true, Some(class)) => Applied::Counted(direction, class),
        _ => Applied::Fresh,
    };
    match &event.body {
        EventBody::CheckIn(p) => {
            if let (Some(v), Some(class)) = (&vehicle, p.vehicle_class) {
                put_presence(conn, &in_presence(conn, event, p, v, class)?)?;
            }
            if let Some(r) = &p.reservation_id {
                exec(
                    conn,
                    "INSERT INTO used_reservations (event_id, reservation_id) VALUES (?1, ?2)",
                    params![event.event_id, r],
                )?;
            }
            Ok(counted(ENTERED))
        }
        EventBody::CheckOut(_) => {
            if let Some(v) = &vehicle {
                exec(conn, "DELETE FROM presence WHERE vehicle_id = ?1", [v])?;
            }
            Ok(counted(EXITED))
        }
        EventBody::Void { related_event_id } => {
            void(conn, event, related_event_id)?;
            Ok(Applied::Fresh)
        }
        EventBody::Denied(_) | EventBody::Alert(_) => Ok(Applied::Seen),
    }
}

/// The presence row a check_in creates.
///
/// The ADA and EV flags (which spots it may take) come from the replica's
/// vehicle record: the contract's check_in does not carry them, and every
/// gate of the lot has the same replica.
fn in_presence(
    conn: &Connection,
    event: &Event,
    p: &Passage,
    vehicle: &str,
    class: VehicleClass,
) -> Result<Presence, StoreError> {
    let (ada, ev) = conn
        .prepare_cached("SELECT ada, ev FROM vehicles WHERE vehicle_id = ?1")?
        .query_row([vehicle], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?
        .unwrap_or((false, false));
    Ok(Presence {
        vehicle_id: vehicle.to_owned(),
        user_id: p.user_id.clone().unwrap_or_default(),
        class,
        ada,
        ev,
        since: event.at,
        reservation_id: p.reservation_id.clone(),
        spot_id: p.spot_id.clone(),
        // The contract: a user without a plan parks on the daily tariff.
        plan: p.plan.unwrap_or(PlanKind::Daily),
        event_id: event.event_id.clone(),
    })
}

/// Undoes the effect of `related`: a check_in that never passed takes its
/// vehicle out again (restoring what it replaced); a check_out that never
/// passed puts the vehicle back. Only once, and only if the state is still
/// the one that event made.
fn void(conn: &Connection, event: &Event, related: &str) -> Result<(), StoreError> {
    type Row = (String, bool, Option<String>, Option<String>, Option<String>);
    let row: Option<Row> = conn
        .prepare_cached(
            "SELECT type, own, vehicle_id, class, before FROM applied_events
             WHERE event_id = ?1 AND voided = 0",
        )?
        .query_row([related], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
        })
        .optional()?;
    let Some((kind, own, vehicle, class, before)) = row else {
        // Not seen yet (the void overtook its passage on the way from
        // another gate): kept, and applied when the passage comes. Already
        // voided, or pruned: this changes nothing either.
        let seen: bool = conn
            .prepare_cached("SELECT 1 FROM applied_events WHERE event_id = ?1")?
            .exists([related])?;
        if !seen {
            exec(
                conn,
                "INSERT OR IGNORE INTO pending_voids (related_event_id, void_event_id, at_ms)
                 VALUES (?1, ?2, ?3)",
                params![related, event.event_id, ms(&event.at)],
            )?;
        }
        return Ok(());
    };
    exec(
        conn,
        "UPDATE applied_events SET voided = 1 WHERE event_id = ?1",
        [related],
    )?;
    let before: Option<Presence> = before.map(|b| serde_json::from_str(&b)).transpose()?;
    let current = match &vehicle {
        Some(v) => presence_of(conn, v)?,
        None => None,
    };
    let class = class.and_then(|c| VehicleClass::parse(&c));
    let direction = match kind.as_str() {
        "check_in" => {
            exec(
                conn,
                "DELETE FROM used_reservations WHERE event_id = ?1",
                [related],
            )?;
            if let (Some(v), Some(cur)) = (&vehicle, &current)
                && cur.event_id == related
            {
                exec(conn, "DELETE FROM presence WHERE vehicle_id = ?1", [v])?;
                if let Some(b) = &before {
                    put_presence(conn, b)?;
                }
            }
            // Counters only grow (the contract): an entry undone is an exit.
            EXITED
        }
        "check_out" => {
            if let (None, Some(b)) = (&current, &before) {
                put_presence(conn, b)?;
            }
            ENTERED
        }
        // A void of a void undoes nothing: voids are not passages.
        _ => return Ok(()),
    };
    if let (true, Some(class)) = (own, class) {
        bump(conn, direction, class, 1)?;
    }
    Ok(())
}

fn presence_of(conn: &Connection, vehicle: &str) -> Result<Option<Presence>, StoreError> {
    let sql = format!("SELECT {PRESENCE_COLS} FROM presence WHERE vehicle_id = ?1");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row([vehicle], read_presence)
        .optional()?)
}

fn put_presence(conn: &Connection, p: &Presence) -> Result<(), StoreError> {
    exec(
        conn,
        "INSERT OR REPLACE INTO presence (vehicle_id, user_id, class, ada, ev, since,
           since_ms, reservation_id, spot_id, plan, event_id)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
        params![
            p.vehicle_id,
            p.user_id,
            p.class.as_str(),
            p.ada,
            p.ev,
            ts_text(&p.since),
            ms(&p.since),
            p.reservation_id,
            p.spot_id,
            enum_text(&p.plan)?,
            p.event_id,
        ],
    )?;
    Ok(())
}
