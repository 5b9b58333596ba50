//! Chunked snapshots from HQ (CONTRACT.md, "Replica changes"), staged so
//! that a million users never hold the store thread for long.
//!
//! Each chunk is written, in its own short transaction, into `staging_*`
//! twins of the replica tables; decisions keep reading the live tables. The
//! transaction that stages the last chunk also swaps: it drops the live
//! tables and renames the twins over them, then creates empty twins for the
//! next snapshot. Renaming touches the schema, not the rows; but dropping the
//! old live tables frees their pages, which reads each of them once: a few
//! ms over a small replica, about half a second over a million users
//! (`benches/snapshot.rs`). Retiring the old tables and freeing them in
//! steps would remove that pause, at the price of a third set of tables.
//!
//! Rules, beyond the contract's:
//! - One snapshot is staged at a time. A chunk of another `snapshot_id`
//!   abandons the staged one (its rows are cleared, in the same transaction
//!   as the new chunk), unless its `seq` is older than the staged one's: then
//!   it is a late chunk of a snapshot HQ already replaced, and is ignored, so
//!   two snapshots whose chunks interleave cannot abandon each other forever.
//! - A snapshot not newer than the replica is stale and ignored; if it was
//!   the one being staged (change batches overtook it), staging is cleared.
//! - Staging is durable: after a restart the gate carries on with the chunks
//!   it has, and HQ's redelivered chunks count as repeats.

use rusqlite::{OptionalExtension, Transaction, TransactionBehavior, params};

use super::codec::{REPLICA_SEQ, col_u64, get_meta, int, set_meta};
use super::replica::{STAGING, apply_ops};
use super::{Db, StoreError};
use crate::domain::contract::{Op, SnapshotChunk, VERSION};

/// The replica tables a snapshot replaces; each has a `staging_` twin.
const TABLES: [&str; 5] = ["users", "cards", "vehicles", "plans", "reservations"];

/// What became of a snapshot chunk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Staged {
    /// Staged; `have` of the snapshot's `of` chunks are in.
    Partial { have: u32, of: u32 },
    /// That was the last chunk: the replica is now the snapshot, at `seq`.
    Complete { seq: u64 },
    /// Nothing changed, for this reason.
    Ignored(Skip),
}

/// Why a chunk was ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Skip {
    /// The snapshot is not newer than the replica (at `have`).
    Stale { have: u64, got: u64 },
    /// This chunk was staged before (a redelivery).
    Repeated { chunk: u32 },
    /// A newer snapshot (at `staging`) is being staged.
    Superseded { staging: u64, got: u64 },
}

/// The snapshot being staged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    pub snapshot_id: String,
    pub seq: u64,
    pub chunks: u32,
    /// How many distinct chunks are staged.
    pub have: u32,
}

impl Db {
    /// Stages one chunk; the last one of a snapshot replaces the replica.
    ///
    /// A chunk that breaks the contract (wrong `v`, `chunk >= chunks`, a
    /// `chunks` or `seq` other than its snapshot's earlier chunks said, a
    /// delete, a bad record) fails with [`StoreError::Invalid`] and changes
    /// nothing, staging included. `index` names the bad op, or 0 when the
    /// chunk itself is wrong.
    pub fn stage_chunk(&mut self, chunk: &SnapshotChunk) -> Result<Staged, StoreError> {
        check(chunk)?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let have = get_meta(&tx, REPLICA_SEQ)?;
        let staged = progress(&tx)?;
        let same = staged
            .as_ref()
            .is_some_and(|s| s.snapshot_id == chunk.snapshot_id);
        if chunk.seq <= have {
            if same {
                // It can never be of use now: free its rows.
                clear(&tx)?;
                tx.commit()?;
            }
            return Ok(Staged::Ignored(Skip::Stale {
                have,
                got: chunk.seq,
            }));
        }
        match &staged {
            Some(s) if same => {
                if (s.seq, s.chunks) != (chunk.seq, chunk.chunks) {
                    return Err(invalid(format!(
                        "snapshot {} chunk {} says seq {} of {} chunks; earlier chunks said seq {} of {}",
                        chunk.snapshot_id, chunk.chunk, chunk.seq, chunk.chunks, s.seq, s.chunks
                    )));
                }
                let seen: Option<i64> = tx
                    .prepare_cached("SELECT chunk FROM snapshot_chunks WHERE chunk = ?1")?
                    .query_row([chunk.chunk], |r| r.get(0))
                    .optional()?;
                if seen.is_some() {
                    return Ok(Staged::Ignored(Skip::Repeated { chunk: chunk.chunk }));
                }
            }
            Some(s) if chunk.seq < s.seq => {
                return Ok(Staged::Ignored(Skip::Superseded {
                    staging: s.seq,
                    got: chunk.seq,
                }));
            }
            Some(_) => {
                clear(&tx)?;
                begin(&tx, chunk)?;
            }
            None => begin(&tx, chunk)?,
        }
        apply_ops(&tx, &chunk.ops, &STAGING)?;
        tx.prepare_cached("INSERT INTO snapshot_chunks (chunk) VALUES (?1)")?
            .execute([chunk.chunk])?;
        let got: u32 = tx
            .prepare_cached("UPDATE snapshot_staging SET have = have + 1 RETURNING have")?
            .query_row([], |r| r.get(0))?;
        if got < chunk.chunks {
            tx.commit()?;
            return Ok(Staged::Partial {
                have: got,
                of: chunk.chunks,
            });
        }
        swap(&tx, chunk.seq)?;
        tx.commit()?;
        self.cool();
        Ok(Staged::Complete { seq: chunk.seq })
    }

    /// Drops the snapshot being staged, if any; the replica stays as it is.
    pub fn abandon_snapshot(&mut self) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        clear(&tx)?;
        tx.commit()?;
        Ok(())
    }

    /// The snapshot being staged, if any (after a restart too).
    pub fn snapshot_progress(&self) -> Result<Option<Progress>, StoreError> {
        progress(&self.conn)
    }
}

/// The checks that need no database: the chunk's own fields and its ops.
fn check(chunk: &SnapshotChunk) -> Result<(), StoreError> {
    if chunk.v != VERSION {
        return Err(invalid(format!(
            "snapshot v is {}, expected {VERSION}",
            chunk.v
        )));
    }
    if chunk.snapshot_id.is_empty() {
        return Err(invalid("empty snapshot_id".into()));
    }
    if chunk.chunk >= chunk.chunks {
        return Err(invalid(format!(
            "chunk {} is not below chunks {}",
            chunk.chunk, chunk.chunks
        )));
    }
    // A snapshot is the whole replica: there is nothing in it to delete.
    if let Some(index) = chunk
        .ops
        .iter()
        .position(|op| matches!(op, Op::Delete { .. }))
    {
        return Err(StoreError::Invalid {
            index,
            reason: "a snapshot holds upserts only, not deletes".into(),
        });
    }
    Ok(())
}

fn invalid(reason: String) -> StoreError {
    StoreError::Invalid { index: 0, reason }
}

fn progress(conn: &rusqlite::Connection) -> Result<Option<Progress>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT snapshot_id, seq, chunks, have FROM snapshot_staging")?
        .query_row([], |r| {
            Ok(Progress {
                snapshot_id: r.get(0)?,
                seq: col_u64(r, 1)?,
                chunks: r.get(2)?,
                have: r.get(3)?,
            })
        })
        .optional()?)
}

/// Starts staging `chunk`'s snapshot; staging must be empty.
fn begin(tx: &Transaction<'_>, chunk: &SnapshotChunk) -> Result<(), StoreError> {
    tx.execute(
        "INSERT INTO snapshot_staging (only, snapshot_id, seq, chunks, have)
         VALUES (1, ?1, ?2, ?3, 0)",
        params![chunk.snapshot_id, int(chunk.seq), chunk.chunks],
    )?;
    Ok(())
}

/// Empties the staging tables and their bookkeeping. A `DELETE` without
/// `WHERE` truncates (frees whole pages, no per-row index work).
fn clear(tx: &Transaction<'_>) -> Result<(), StoreError> {
    for table in TABLES {
        tx.execute(&format!("DELETE FROM staging_{table}"), [])?;
    }
    tx.execute_batch("DELETE FROM snapshot_staging; DELETE FROM snapshot_chunks;")?;
    Ok(())
}

/// Replaces each live table by its staged twin, makes an empty twin for the
/// next snapshot, and sets the replica's seq: all inside the caller's
/// transaction, so a crash leaves either the old replica or the new one.
fn swap(tx: &Transaction<'_>, seq: u64) -> Result<(), StoreError> {
    for table in TABLES {
        // Dropping the live table drops its indexes and frees their names,
        // which the new twin's indexes take.
        tx.execute_batch(&format!(
            "DROP TABLE {table}; ALTER TABLE staging_{table} RENAME TO {table};"
        ))?;
        new_twin(tx, table)?;
    }
    tx.execute_batch("DELETE FROM snapshot_staging; DELETE FROM snapshot_chunks;")?;
    set_meta(tx, REPLICA_SEQ, seq)?;
    Ok(())
}

/// Creates an empty `staging_{table}` like `table`, copying the columns and
/// indexes from the schema itself, so it follows the live table through any
/// later migration.
fn new_twin(tx: &Transaction<'_>, table: &str) -> Result<(), StoreError> {
    let sql: String = tx.query_row(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    tx.execute(
        &format!("CREATE TABLE staging_{table} {}", from_paren(&sql)?),
        [],
    )?;
    // `sql` is NULL for the primary key's automatic index, which the new
    // table has made by itself.
    let indexes: Vec<(String, String)> = tx
        .prepare(
            "SELECT name, sql FROM sqlite_schema
             WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
        )?
        .query_map([table], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (name, sql) in indexes {
        let unique = if sql.starts_with("CREATE UNIQUE") {
            "UNIQUE "
        } else {
            ""
        };
        tx.execute(
            &format!(
                "CREATE {unique}INDEX {} ON staging_{table} {}",
                twin_name(&name),
                from_paren(&sql)?
            ),
            [],
        )?;
    }
    Ok(())
}

/// The name the twin of index `name` takes: the other one of the pair
/// `name` / `name_alt`, which is free while `name` is in use.
fn twin_name(name: &str) -> String {
    match name.strip_suffix("_alt") {
        Some(base) => base.to_owned(),
        None => format!("{name}_alt"),
    }
}

/// A `CREATE` statement from its first parenthesis: the column list (and
/// what follows: `STRICT`, an index's `WHERE`).
fn from_paren(sql: &str) -> Result<&str, StoreError> {
    sql.find('(')
        .map(|at| &sql[at..])
        .ok_or_else(|| StoreError::Schema(format!("no column list in {sql:?}")))
}
