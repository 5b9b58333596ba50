//! The event journal: every event this gate emits, numbered by `gate_seq`,
//! kept as the exact JSON that is published (and replayed). An event not yet
//! acknowledged by the broker is in the outbox (`delivered = 0`).

use rusqlite::{Connection, TransactionBehavior, params};

use super::codec::{
    GATE_SEQ, LOCKDOWN, col_json, col_u64, exec, get_meta, int, ms, set_meta, ts_text,
};
use super::counters::ENTERED;
use super::outbox::{outbox_floor, raise_outbox_floor};
use super::presence::{Applied, Record, Whose, apply_effect};
use super::{Db, StoreError};
use crate::domain::contract::{Clock, Event, VERSION};
use crate::domain::lane::{Commit, Draft};
use crate::domain::model::Timestamp;

impl Db {
    /// Journals the lane's `commit` as events stamped `at` (and `clock`, the
    /// wall clock's state), in one transaction, together with their effect on
    /// presence, and the lockdown flag if the commit sets it. This gate's
    /// counters read its passages from the journal (`counters.rs`).
    ///
    /// Each event keeps the id the lane minted and gets the next `gate_seq`
    /// (1, 2, 3, ... across restarts, never reused), and waits in the outbox.
    pub fn record(
        &mut self,
        commit: Commit,
        at: Timestamp,
        clock: Clock,
    ) -> Result<Vec<Event>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut seq = last_seq(&tx)?;
        let first = seq + 1;
        let mut events: Vec<Event> = Vec::with_capacity(commit.events.len());
        let mut counted = Vec::new();
        for Draft { event_id, body } in commit.events {
            seq += 1;
            let event = Event {
                v: VERSION,
                event_id,
                gate_seq: seq,
                site: self.ident.site.clone(),
                lot: self.ident.lot.clone(),
                gate: self.ident.gate.clone(),
                at,
                clock,
                body,
            };
            // A passage's applied record rides on its row (`presence.rs`).
            let record = Record::of(&tx, &event)?;
            let (class, before) = match &record {
                Some(r) => (r.class_text(), r.before_json()?),
                None => (None, None),
            };
            exec(
                &tx,
                "INSERT INTO events
                     (gate_seq, event_id, type, at, at_ms, json, vehicle_id, class, before)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    int(seq),
                    event.event_id,
                    event.type_name(),
                    ts_text(&at),
                    ms(&at),
                    serde_json::to_string(&event)?,
                    record.as_ref().and_then(|r| r.vehicle.as_deref()),
                    class,
                    before,
                ],
            )?;
            if let Some(record) = record
                && let Applied::Counted(direction, class) =
                    apply_effect(&tx, &event, record, Whose::Own(seq))?
            {
                counted.push((direction, class));
            }
            events.push(event);
        }
        if let Some(on) = commit.lockdown {
            set_meta(&tx, LOCKDOWN, u64::from(on))?;
        }
        if let Some(hook) = &mut self.before_commit {
            hook();
        }
        tx.commit()?;
        self.tail.committed(first, seq, &counted);
        // Before `written`, which reads all counters again (exact, these
        // passages included) if a void in this commit wrote the table.
        if let Some(k) = self.kept.get_mut() {
            for (direction, class) in counted {
                k.count_own(direction == ENTERED, class);
            }
        }
        self.written(super::kept::Touched::Nothing);
        Ok(events)
    }

    /// The last `gate_seq` given out (0 before the first event); pruning
    /// never lowers it.
    pub fn last_seq(&self) -> Result<u64, StoreError> {
        last_seq(&self.conn)
    }

    /// Whether the gate was left in lockdown (by HQ or a technician).
    pub fn lockdown(&self) -> Result<bool, StoreError> {
        Ok(get_meta(&self.conn, LOCKDOWN)? == 1)
    }

    /// Up to `limit` events not yet acknowledged by the broker, oldest first
    /// (`gate_seq` order, the order they must be published in).
    pub fn outbox(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        read_events(
            &self.conn,
            "SELECT json FROM events WHERE gate_seq > ?1 AND delivered = 0
             ORDER BY gate_seq LIMIT ?2",
            params![int(outbox_floor(&self.conn)?), int(limit)],
        )
    }

    /// How many events wait in the outbox.
    pub fn outbox_depth(&self) -> Result<u64, StoreError> {
        Ok(self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM events WHERE gate_seq > ?1 AND delivered = 0")?
            .query_row([int(outbox_floor(&self.conn)?)], |r| col_u64(r, 0))?)
    }

    /// The broker acknowledged event `gate_seq`: it leaves the outbox (and
    /// stays in the journal for replays). Marking it twice is harmless.
    pub fn mark_delivered(&mut self, gate_seq: u64) -> Result<(), StoreError> {
        let tx = self.conn.transaction()?;
        exec(
            &tx,
            "UPDATE events SET delivered = 1 WHERE gate_seq = ?1",
            [int(gate_seq)],
        )?;
        raise_outbox_floor(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The `limit` most recent events, newest first.
    pub fn events(&self, limit: usize) -> Result<Vec<Event>, StoreError> {
        read_events(
            &self.conn,
            "SELECT json FROM events ORDER BY gate_seq DESC LIMIT ?1",
            params![int(limit)],
        )
    }

    /// The journalled events with `from_seq <= gate_seq <= to_seq`, in order
    /// (a replay). Pruned ones are simply absent: the caller compares.
    pub fn events_range(&self, from_seq: u64, to_seq: u64) -> Result<Vec<Event>, StoreError> {
        read_events(
            &self.conn,
            "SELECT json FROM events WHERE gate_seq BETWEEN ?1 AND ?2 ORDER BY gate_seq",
            params![int(from_seq), int(to_seq)],
        )
    }
}

fn read_events(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Event>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let events = stmt
        .query_map(params, |r| col_json::<Event>(r, 0))?
        .collect::<Result<_, _>>()?;
    Ok(events)
}

/// The last `gate_seq` handed out: the journal's highest, or, if pruning
/// took the journal's newest events, the floor it kept in `meta` first
/// ([`keep_seq_floor`]). Read rather than counted in `meta` on each commit:
/// one page fewer for the fsync the barrier waits on.
pub(super) fn last_seq(conn: &Connection) -> Result<u64, StoreError> {
    let newest: Option<i64> = conn
        .prepare_cached("SELECT MAX(gate_seq) FROM events")?
        .query_row([], |r| r.get(0))?;
    let newest = newest.map_or(0, |n| u64::try_from(n).unwrap_or(0));
    Ok(get_meta(conn, GATE_SEQ)?.max(newest))
}

/// Before events are deleted: keeps the last `gate_seq` in `meta`, so that
/// no seq is ever handed out twice.
pub(super) fn keep_seq_floor(conn: &Connection) -> Result<(), StoreError> {
    set_meta(conn, GATE_SEQ, last_seq(conn)?)
}
