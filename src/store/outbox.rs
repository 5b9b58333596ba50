//! The outbox as the HQ link reads it: journalled events as the exact bytes
//! to publish, a page at a time, and their delivery marks.
//!
//! The link never parses an event back: what it publishes (and replays) is
//! the JSON written in the event's transaction, byte for byte.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use rusqlite::Connection;

use super::codec::{OUTBOX_FLOOR, col_ts, col_u64, get_meta, int, set_meta};
use super::{Db, StoreError};
use crate::domain::model::Timestamp;

/// One journalled event, ready to publish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub gate_seq: u64,
    /// The event's `type`: the last part of its topic.
    pub type_name: String,
    /// The event as journalled.
    pub json: String,
}

/// What the link reports about the outbox.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct OutboxFacts {
    /// Events not yet acknowledged by the broker.
    pub depth: u64,
    /// The stamp of the oldest of them.
    pub oldest: Option<Timestamp>,
    /// The last replica batch applied (for the status topic).
    pub replica_seq: u64,
}

impl Db {
    /// Up to `limit` undelivered events after `gate_seq` `after`, in order.
    pub fn outbox_after(&self, after: u64, limit: usize) -> Result<Vec<Stored>, StoreError> {
        let after = after.max(outbox_floor(&self.conn)?);
        self.stored(
            "SELECT gate_seq, type, json FROM events
             WHERE gate_seq > ?1 AND delivered = 0 ORDER BY gate_seq LIMIT ?2",
            params![int(after), int(limit)],
        )
    }

    /// Up to `limit` journalled events with `from <= gate_seq <= to`, in
    /// order, delivered or not (a replay). Pruned ones are absent.
    pub fn journal_range(
        &self,
        from: u64,
        to: u64,
        limit: usize,
    ) -> Result<Vec<Stored>, StoreError> {
        self.stored(
            "SELECT gate_seq, type, json FROM events
             WHERE gate_seq BETWEEN ?1 AND ?2 ORDER BY gate_seq LIMIT ?3",
            params![int(from), int(to), int(limit)],
        )
    }

    /// The broker acknowledged these events: they leave the outbox, in one
    /// transaction.
    ///
    /// Committed without waiting for the disk (`synchronous=NORMAL` for this
    /// transaction only): a mark lost to a power cut only makes the link
    /// send those events again, which HQ removes by `event_id`; an fsync per
    /// window of acknowledgements would instead hold up every event commit
    /// queued behind it while a backlog drains. The database stays
    /// consistent either way (WAL), and the next event commit, at FULL,
    /// makes the marks durable too.
    pub fn mark_all_delivered(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        if seqs.is_empty() {
            return Ok(());
        }
        self.unsynced(|db| db.mark(seqs))
    }

    fn mark(&mut self, seqs: &[u64]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt =
                tx.prepare_cached("UPDATE events SET delivered = 1 WHERE gate_seq = ?1")?;
            for &seq in seqs {
                stmt.execute([int(seq)])?;
            }
        }
        raise_outbox_floor(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// Depth and age of the outbox, and the replica's seq.
    pub fn outbox_facts(&self) -> Result<OutboxFacts, StoreError> {
        let depth = self.outbox_depth()?;
        // MIN, not ORDER BY ... LIMIT 1: the same walk from the floor, but
        // SQLite keeps the statement prepared (it prepares one with ORDER
        // BY again at each run, tens of µs against this schema).
        let oldest = self
            .conn
            .prepare_cached(
                "SELECT at FROM events WHERE gate_seq =
                   (SELECT MIN(gate_seq) FROM events WHERE gate_seq > ?1 AND delivered = 0)",
            )?
            .query_row([int(outbox_floor(&self.conn)?)], |r| col_ts(r, 0))
            .optional()?;
        Ok(OutboxFacts {
            depth,
            oldest,
            replica_seq: self.replica_seq()?,
        })
    }

    fn stored(&self, sql: &str, params: impl rusqlite::Params) -> Result<Vec<Stored>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt
            .query_map(params, |r| {
                Ok(Stored {
                    gate_seq: col_u64(r, 0)?,
                    type_name: r.get(1)?,
                    json: r.get(2)?,
                })
            })?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

/// The outbox's floor: every event up to this `gate_seq` is delivered, so
/// the outbox's queries walk the journal's key from just after it. It takes
/// the place of an index of undelivered events, which cost every event's
/// commit (the one the barrier waits on) a page of WAL.
pub(super) fn outbox_floor(conn: &Connection) -> Result<u64, StoreError> {
    get_meta(conn, OUTBOX_FLOOR)
}

/// Moves the floor up to just before the oldest undelivered event (to the
/// last event if none is left), in the delivery marks' transaction. The
/// walk is short: acknowledgements come nearly in order, so few delivered
/// events lie between the floor and the first undelivered one.
pub(super) fn raise_outbox_floor(conn: &Connection) -> Result<(), StoreError> {
    let floor = outbox_floor(conn)?;
    let first: Option<u64> = conn
        .prepare_cached(
            "SELECT gate_seq FROM events WHERE gate_seq > ?1 AND delivered = 0
             ORDER BY gate_seq LIMIT 1",
        )?
        .query_row([int(floor)], |r| col_u64(r, 0))
        .optional()?;
    let raised = match first {
        Some(seq) => seq - 1,
        None => super::journal::last_seq(conn)?,
    };
    if raised > floor {
        set_meta(conn, OUTBOX_FLOOR, raised)?;
    }
    Ok(())
}
