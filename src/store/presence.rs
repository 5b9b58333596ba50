//! Which vehicles are inside the lot, kept from the passage events of every
//! gate of the lot: `check_in` puts a vehicle in, `check_out` takes it out,
//! `void` undoes either.
//!
//! The same code applies this gate's own events (in [`Db::record`]'s
//! transaction) and its siblings' (through [`Db::apply_remote`]). Each
//! applied event leaves a record: what it replaced (`before`), so that a
//! void can put it back, and whether it was voided.
//! - A sibling's record is a row of `applied_events`, keyed by `event_id`:
//!   a redelivered event changes nothing.
//! - This gate's rides on the event's journal row (columns `vehicle_id`,
//!   `class`, `before`, `voided`), written in the same page of WAL as the
//!   row itself: an admitted passage's commit, which the barrier waits on,
//!   writes one b-tree fewer. Its echo from the broker is ignored, and the
//!   lane's void, seconds later, finds it among the last events
//!   ([`RECENT`]). When pruning takes the row of a check_in whose vehicle
//!   is still inside, the record moves to `applied_events` (`housekeeping.rs`).

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::codec::{col_enum, col_ts, col_u64, enum_text, exec, int, ms, ts_text};
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
        // This gate's own events come back through the lot's topics: they
        // were applied when journalled.
        if event.site != self.ident.site
            || event.lot != self.ident.lot
            || event.gate == self.ident.gate
        {
            return Ok(false);
        }
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let Some(record) = Record::of(&tx, event)? else {
            return Ok(false);
        };
        let applied = apply_effect(&tx, event, record, Whose::Sibling)?;
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

/// Whose event [`apply_effect`] applies, and so where its applied record
/// goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Whose {
    /// This gate's, just journalled at this `gate_seq`: the record rides on
    /// its journal row (the same page of WAL), and counts in this gate's
    /// counters (`counters.rs` reads `class` there).
    Own(u64),
    /// A sibling gate's: a row of `applied_events`, once per `event_id`.
    Sibling,
}

/// An event's applied record, as it is written: the vehicle, the class it
/// counts as, and its presence before the event (what a void puts back).
#[derive(Debug)]
pub(super) struct Record {
    pub vehicle: Option<String>,
    pub class: Option<VehicleClass>,
    pub before: Option<Presence>,
}

impl Record {
    /// The record `event` leaves, read from presence before it is applied;
    /// None for events that change no presence (denials, alerts).
    pub fn of(conn: &Connection, event: &Event) -> Result<Option<Record>, StoreError> {
        let passage = match &event.body {
            EventBody::CheckIn(p) => Some(p),
            EventBody::CheckOut(c) => Some(&c.passage),
            EventBody::Void { .. } => None,
            EventBody::Denied(_) | EventBody::Alert(_) => return Ok(None),
        };
        let vehicle = passage.and_then(|p| p.vehicle_id.clone());
        let before = match &vehicle {
            Some(v) => presence_of(conn, v)?,
            None => None,
        };
        // The class counted: the passage's, else (an unidentified exit) the
        // one the vehicle entered as.
        let class = passage
            .and_then(|p| p.vehicle_class)
            .or(before.as_ref().map(|b| b.class));
        Ok(Some(Record {
            vehicle,
            class,
            before,
        }))
    }

    /// `class` as stored.
    pub fn class_text(&self) -> Option<&'static str> {
        self.class.map(VehicleClass::as_str)
    }

    /// `before` as stored (JSON).
    pub fn before_json(&self) -> Result<Option<String>, StoreError> {
        Ok(self
            .before
            .as_ref()
            .map(serde_json::to_string)
            .transpose()?)
    }
}

/// Applies a passage event's effect, unless this `event_id` was applied
/// before, given the `record` it leaves ([`Record::of`]). A sibling's
/// record is written here, once per `event_id`; this gate's was written
/// with its journal row (`journal.rs`), so the barrier's commit writes it
/// in the page it writes anyway.
pub(super) fn apply_effect(
    conn: &Connection,
    event: &Event,
    record: Record,
    whose: Whose,
) -> Result<Applied, StoreError> {
    let own = matches!(whose, Whose::Own(_));
    let Record { vehicle, class, .. } = &record;
    let fresh = match whose {
        Whose::Own(_) => 1,
        Whose::Sibling => exec(
            conn,
            "INSERT OR IGNORE INTO applied_events
                 (event_id, gate, type, own, vehicle_id, at_ms, class, before)
             VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6, ?7)",
            params![
                event.event_id,
                event.gate,
                event.type_name(),
                vehicle,
                ms(&event.at),
                record.class_text(),
                record.before_json()?,
            ],
        )?,
    };
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
        let at = match whose {
            Whose::Own(seq) => At::Journal(seq),
            Whose::Sibling => At::Applied,
        };
        mark_voided(conn, &at, &event.event_id, Forget::All)?;
        return Ok(Applied::Fresh);
    }
    let counted = |direction| match (own, *class) {
        (true, Some(class)) => Applied::Counted(direction, class),
        _ => Applied::Fresh,
    };
    match &event.body {
        EventBody::CheckIn(p) => {
            if let (Some(v), Some(class)) = (vehicle, p.vehicle_class) {
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
            if let Some(v) = vehicle {
                exec(conn, "DELETE FROM presence WHERE vehicle_id = ?1", [v])?;
            }
            Ok(counted(EXITED))
        }
        EventBody::Void { related_event_id } => {
            void(conn, event, whose, related_event_id)?;
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
fn void(conn: &Connection, event: &Event, whose: Whose, related: &str) -> Result<(), StoreError> {
    let Some(found) = find_applied(conn, whose, related)? else {
        // Not seen yet (the void overtook its passage on the way from
        // another gate): kept, and applied when the passage comes. Pruned:
        // this changes nothing either.
        exec(
            conn,
            "INSERT OR IGNORE INTO pending_voids (related_event_id, void_event_id, at_ms)
             VALUES (?1, ?2, ?3)",
            params![related, event.event_id, ms(&event.at)],
        )?;
        return Ok(());
    };
    let Found {
        at,
        own,
        row:
            AppliedRow {
                kind,
                vehicle,
                class,
                before,
                voided,
            },
    } = found;
    // Undone already, or not a passage (a void of a void undoes nothing).
    if voided || !matches!(kind.as_str(), "check_in" | "check_out") {
        return Ok(());
    }
    mark_voided(conn, &at, related, Forget::Nothing)?;
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
        _ => return Ok(()),
    };
    if let (true, Some(class)) = (own, class) {
        bump(conn, direction, class, 1)?;
    }
    Ok(())
}

/// Where a passage's applied record is: on this gate's journal row, or
/// in `applied_events` (a sibling's, or this gate's own kept after its
/// journal row was pruned while its vehicle stayed inside).
enum At {
    Journal(u64),
    Applied,
}

/// What marking a record voided drops with it.
enum Forget {
    /// Nothing: the void undoes the passage from its class and prior
    /// presence, and they stay for the record.
    Nothing,
    /// Its class and prior presence: a passage whose void came first
    /// counted nothing and replaced nothing.
    All,
}

/// Marks the applied record of `event_id`, at `at`, voided.
fn mark_voided(
    conn: &Connection,
    at: &At,
    event_id: &str,
    forget: Forget,
) -> Result<(), StoreError> {
    let set = match forget {
        Forget::Nothing => "voided = 1",
        Forget::All => "voided = 1, class = NULL, before = NULL",
    };
    match at {
        At::Journal(seq) => exec(
            conn,
            &format!("UPDATE events SET {set} WHERE gate_seq = ?1"),
            [int(*seq)],
        )?,
        At::Applied => exec(
            conn,
            &format!("UPDATE applied_events SET {set} WHERE event_id = ?1"),
            [event_id],
        )?,
    };
    Ok(())
}

/// A passage's applied record, on its journal row or in `applied_events`:
/// the columns `type, vehicle_id, class, before, voided`, in that order, of
/// either.
pub(super) struct AppliedRow {
    pub kind: String,
    pub vehicle: Option<String>,
    pub class: Option<String>,
    pub before: Option<String>,
    pub voided: bool,
}

impl AppliedRow {
    /// Reads the record's columns from `first` on.
    pub(super) fn read(r: &rusqlite::Row<'_>, first: usize) -> rusqlite::Result<AppliedRow> {
        Ok(AppliedRow {
            kind: r.get(first)?,
            vehicle: r.get(first + 1)?,
            class: r.get(first + 2)?,
            before: r.get(first + 3)?,
            voided: r.get(first + 4)?,
        })
    }
}

/// An applied record found for a void.
struct Found {
    at: At,
    own: bool,
    row: AppliedRow,
}

/// The events before a void of this gate's that are searched first for
/// the passage it undoes: the lane voids a passage seconds after it, so
/// it is always among these, and the journal (no index by event id, which
/// would cost every event's commit a page) is walked whole only if not.
const RECENT: u64 = 1_000;

/// The applied record of `related`, voided or not. A void names a
/// passage of its own gate: this gate's are on its journal rows.
fn find_applied(
    conn: &Connection,
    whose: Whose,
    related: &str,
) -> Result<Option<Found>, StoreError> {
    let applied = || -> Result<Option<Found>, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT own, type, vehicle_id, class, before, voided FROM applied_events
                 WHERE event_id = ?1",
            )?
            .query_row([related], |r| {
                Ok(Found {
                    at: At::Applied,
                    own: r.get(0)?,
                    row: AppliedRow::read(r, 1)?,
                })
            })
            .optional()?)
    };
    let Whose::Own(seq) = whose else {
        return applied();
    };
    let journal = |after: u64| -> Result<Option<Found>, StoreError> {
        Ok(conn
            .prepare_cached(
                "SELECT gate_seq, type, vehicle_id, class, before, voided FROM events
                 WHERE gate_seq > ?1 AND event_id = ?2",
            )?
            .query_row(params![int(after), related], |r| {
                Ok(Found {
                    at: At::Journal(col_u64(r, 0)?),
                    own: true,
                    row: AppliedRow::read(r, 1)?,
                })
            })
            .optional()?)
    };
    let recent = seq.saturating_sub(RECENT);
    match journal(recent)? {
        Some(found) => Ok(Some(found)),
        None => match applied()? {
            Some(found) => Ok(Some(found)),
            None if recent > 0 => journal(0),
            None => Ok(None),
        },
    }
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
