//! What keeps the store bounded and safe over months: HQ command ids seen
//! (replay protection) and the journal's retention.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::codec::{col_u64, ms};
use super::{Db, StoreError};
use crate::domain::model::Timestamp;

/// What one [`Db::prune`] removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Delivered events older than the cutoff.
    pub events: usize,
    /// Applied passage records (own and siblings') older than the cutoff.
    pub applied: usize,
    /// Command ids whose command has expired.
    pub commands: usize,
}

impl Db {
    /// Notes that HQ command `command_id` (valid until `expires_at`) was
    /// received. Returns `false` if it was seen before: a replayed command,
    /// to be rejected. Kept across restarts until [`Db::prune`] drops it
    /// after it expired, when the expiry check alone rejects it.
    pub fn note_command(
        &mut self,
        command_id: &str,
        expires_at: Timestamp,
    ) -> Result<bool, StoreError> {
        let fresh = self.conn.execute(
            "INSERT OR IGNORE INTO commands_seen (command_id, expires_at_ms) VALUES (?1, ?2)",
            params![command_id, ms(&expires_at)],
        )?;
        Ok(fresh == 1)
    }

    /// The oldest `gate_seq` still in the journal (None if it is empty): a
    /// replay asking for less gets alert `replay_unavailable` naming this.
    pub fn first_seq(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .conn
            .query_row("SELECT MIN(gate_seq) FROM events", [], |r| {
                r.get::<_, Option<i64>>(0)?
                    .map(|_| col_u64(r, 0))
                    .transpose()
            })
            .optional()?
            .flatten())
    }

    /// Drops what is older than the retention: delivered events stamped
    /// before `cutoff` (undelivered ones are kept whatever their age: the
    /// outbox loses nothing), applied-passage records before `cutoff`, and
    /// command ids expired by `now`. One transaction.
    pub fn prune(&mut self, cutoff: Timestamp, now: Timestamp) -> Result<Pruned, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        super::journal::keep_seq_floor(&tx)?;
        let events = tx.execute(
            "DELETE FROM events WHERE delivered = 1 AND at_ms < ?1",
            [ms(&cutoff)],
        )?;
        // A vehicle still inside keeps its check_in's record (a void or a
        // sibling's redelivery of it must still find it).
        let applied = tx.execute(
            "DELETE FROM applied_events WHERE at_ms < ?1
               AND event_id NOT IN (SELECT event_id FROM presence)",
            [ms(&cutoff)],
        )?;
        // A void whose passage never came within the retention: it never will.
        tx.execute("DELETE FROM pending_voids WHERE at_ms < ?1", [ms(&cutoff)])?;
        tx.execute(
            "DELETE FROM used_reservations
             WHERE event_id NOT IN (SELECT event_id FROM applied_events)",
            [],
        )?;
        let commands = tx.execute(
            "DELETE FROM commands_seen WHERE expires_at_ms < ?1",
            [ms(&now)],
        )?;
        tx.commit()?;
        self.written(super::kept::Touched::Nothing);
        Ok(Pruned {
            events,
            applied,
            commands,
        })
    }
}
